"""Run the fuzz targets: ``python -m fuzz.run TARGET --minutes N`` or ``--all --seconds 5``.

Each target runs in its own process under atheris (libFuzzer), one after the other, so that
fuzzing takes one core. The working corpus lives in ``fuzz/corpus/TARGET`` (seeded by
:mod:`fuzz.seeds` when empty); inputs that fail land in ``fuzz/findings/TARGET/`` and are
turned into regression inputs under ``fuzz/regressions/TARGET/``, which the test suite replays.
Limits passed to libFuzzer: 300 MiB of RSS (the bound every parser must keep) and 10 s per
input. The summary gives each target's execution count and its findings.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

from fuzz.targets import CHECKSUMMED, TARGETS, environment

HERE = Path(__file__).resolve().parent
RSS_LIMIT_MB = 300
TIMEOUT_S = 10

#: Every module a target reaches, imported under atheris's instrumentation (coverage).
_INSTRUMENTED = (
    "bitwitness.evidence_io", "bitwitness.image", "bitwitness.images.raw",
    "bitwitness.images.splitraw", "bitwitness.images.vhd", "bitwitness.images.vmdk",
    "bitwitness.images.vmdk_sesparse",
    "bitwitness.images.ewf", "bitwitness.ewf.structures", "bitwitness.ewf.headers",
    "bitwitness.ewf.chunks", "bitwitness.ewf.layout", "bitwitness.ewf.reader",
    "bitwitness.ewf.naming", "bitwitness.verify.logs", "bitwitness.verify.references",
    "bitwitness.report.browse.tsk", "bitwitness.report.browse.volumes", "bitwitness.case",
    "bitwitness.custody", "bitwitness.templates", "bitwitness.images.signatures",
    "bitwitness.images.checks", "bitwitness.images.libyal", "bitwitness.images.qcow",
    "bitwitness.images.vhdx", "bitwitness.images.vhdx_log", "bitwitness.images.crc32c",
    "bitwitness.images.vdi", "bitwitness.images.qed", "bitwitness.images.android_sparse",
    "bitwitness.images.ntfsclone",
    "bitwitness.images.partclone",
    "bitwitness.images.udif",
    "bitwitness.images.modi", "bitwitness.images.apple_sparse", "bitwitness.images.parallels",
    "bitwitness.images.ewf2", "bitwitness.images.aff", "bitwitness.images.aff4",
    "bitwitness.images.aff4_zip", "bitwitness.images.aff4_streams",
    "bitwitness.report.browse.zones", "bitwitness.report.browse.moretimes",
    "bitwitness.report.browse.extfeatures", "bitwitness.report.browse.volumetree",
    "bitwitness.report.browse.fs_libyal", "bitwitness.report.browse.libyalio",
    "bitwitness.report.browse.filesystem", "bitwitness.report.browse.fatraw",
    "bitwitness.report.browse.ntfs", "bitwitness.report.browse.entries",
    "bitwitness.report.browse.safenames", "bitwitness.report.browse.export",
    "bitwitness.report.browse.extalloc", "bitwitness.report.browse.btrfs",
    "bitwitness.report.browse.btrfs_lzo", "bitwitness.report.browse.gpt",
    "bitwitness.report.browse.bootbackup", "bitwitness.report.browse.wof",
    "bitwitness.report.browse.iso9660", "bitwitness.report.browse.iso_rockridge",
    "bitwitness.report.browse.udf", "bitwitness.report.browse.udf_structures",
    "bitwitness.report.browse.mdraid", "bitwitness.report.browse.unreadable",
    "bitwitness.report.browse.ldm", "bitwitness.stream",
)


def worker(target: str, libfuzzer_args: list[str]) -> None:
    """Inside the fuzzing process: instrument, then hand the target to libFuzzer."""
    import importlib

    import atheris

    with atheris.instrument_imports(include=["bitwitness", "fuzz"]):
        from fuzz import targets
        from fuzz.checksums import fix

        for module in _INSTRUMENTED:
            importlib.import_module(module)
    function = targets.TARGETS[target][0]

    def mutate(data: bytes, max_size: int, seed: int) -> bytes:
        mutated = atheris.Mutate(data, max_size)
        return fix(target, mutated)[:max_size] if seed % 4 else mutated

    custom = {"custom_mutator": mutate} if target in CHECKSUMMED else {}
    atheris.Setup([sys.argv[0], *libfuzzer_args], function, **custom)
    atheris.Fuzz()


def run_target(target: str, *, seconds: int | None, runs: int | None,
               corpus_root: Path, findings_root: Path) -> tuple[int, list[Path], int]:
    """Fuzz ``target`` in a child process; (executions, new findings, exit status)."""
    from fuzz.seeds import build

    corpus = corpus_root / target
    if not corpus.is_dir() or not any(corpus.iterdir()):
        build(target, corpus)
    findings = findings_root / target
    findings.mkdir(parents=True, exist_ok=True)
    before = set(findings.iterdir())
    args = [f"-rss_limit_mb={RSS_LIMIT_MB}", f"-timeout={TIMEOUT_S}",
            f"-max_len={TARGETS[target][1]}", "-print_final_stats=1",
            f"-artifact_prefix={findings}/", str(corpus)]
    if seconds is not None:
        args.append(f"-max_total_time={seconds}")
    if runs is not None:
        args.append(f"-runs={runs}")
    log = findings_root / f"{target}.log"
    with log.open("w") as out:
        proc = subprocess.run([sys.executable, "-m", "fuzz.run", "--worker", target, "--", *args],
                              stdout=out, stderr=subprocess.STDOUT, env=environment(),
                              cwd=HERE.parent, check=False)
    text = log.read_text(errors="replace")
    counts = re.findall(r"stat::number_of_executed_units:\s*(\d+)", text)
    executed = int(counts[-1]) if counts else 0
    new = sorted(set(findings.iterdir()) - before)
    return executed, new, proc.returncode


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--worker"]:
        target = argv[1]
        rest = argv[3:] if argv[2:3] == ["--"] else argv[2:]
        worker(target, rest)
        return 0
    parser = argparse.ArgumentParser(prog="python -m fuzz.run", description=__doc__.split("\n")[0])
    parser.add_argument("targets", nargs="*", metavar="TARGET",
                        help=f"one or more of: {', '.join(TARGETS)}")
    parser.add_argument("--all", action="store_true", help="every target, one after the other")
    when = parser.add_mutually_exclusive_group()
    when.add_argument("--seconds", type=int, help="run each target this long")
    when.add_argument("--minutes", type=int, help="run each target this long")
    parser.add_argument("--runs", type=int, help="stop each target after this many executions")
    parser.add_argument("--corpus", type=Path, default=HERE / "corpus")
    parser.add_argument("--findings", type=Path, default=HERE / "findings")
    options = parser.parse_args(argv)
    chosen = list(TARGETS) if options.all else options.targets
    if not chosen:
        parser.error("name a TARGET or give --all")
    unknown = [t for t in chosen if t not in TARGETS]
    if unknown:
        parser.error(f"unknown target(s) {', '.join(unknown)}; targets: {', '.join(TARGETS)}")
    seconds = options.seconds if options.minutes is None else options.minutes * 60
    if seconds is None and options.runs is None:
        seconds = 60
    failed = False
    for target in chosen:
        executed, new, status = run_target(target, seconds=seconds, runs=options.runs,
                                           corpus_root=options.corpus,
                                           findings_root=options.findings)
        state = "ok" if status == 0 and not new else f"FAILED (exit {status})"
        print(f"{target}: {executed} executions, {len(new)} finding(s): {state}")
        for path in new:
            print(f"  {path}")
        failed |= state != "ok"
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
