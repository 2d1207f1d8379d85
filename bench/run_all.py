"""Every job against its peer, in one table: ratio, CPU per GiB, peak memory, lower bound, target.

    python bench/run_all.py [--size 512MiB] [--repeat 1] [--files N] [--dir DIR]
                            [--pin both|only|off] [--scale]

Generates one disk-like media (bench/_data.py), its E01 (ewfacquire), an ext4 file system of
``--files`` small files and one of a single large file (each in an E01 made by ewfacquire) and a
1 MiB E01, then runs each job and its peer on them, every tool a separate process started from
the repository root (bench/_jobs.py):

* acquire E01 fast / best + MD5/SHA-1  vs ``ewfacquire -c deflate:fast|best -d sha1``
* acquire raw + MD5/SHA-1             vs ``dc3dd hash=md5 hash=sha1``
* verify an ewfacquire E01            vs ``ewfverify -d sha1``
* verify --second-reader (libewf)     vs ``ewfverify -d sha1``
* convert E01 -> raw                  vs ``ewfexport -f raw -d sha1``
* convert raw -> E01 fast             vs ``ewfacquire -c deflate:fast -d sha1``
* ls -r --all / timeline / export --all on the ext4 of many files, and on an NTFS of the same
  files, a tenth of them deleted (mkntfs, written through ntfs-3g: as root with /dev/fuse, else
  those rows are left out and the output says why)
                                      vs ``fls -r -p`` / ``fls -r -m /`` / ``tsk_recover -a``
* cat of the large file               vs ``icat``
* with ``--scale``: bench/bench_scale.py's rows (``info`` on a 1 TiB E01 of zeros vs ``ewfinfo``;
  acquire + verify of a mostly-zero source at 256 MiB, 1, 4 and 16 GiB: cost per GiB, peak memory)
* start-up: ``--version`` and ``info`` on the 1 MiB E01, from a non-editable install made for
  the run (``pip install`` of a copy of the checkout), timed with hyperfine where it is
  installed, vs ``ewfinfo -V`` and ``ewfinfo``

Each row gives the ratio (peer wall time / BitWitness wall time: above 1, BitWitness is faster),
both wall times, the CPU seconds per GiB of the data the job reads (user + system of the process
and its threads, from ``os.wait4``), the peak memory of both (``ru_maxrss``), the job's lower
bound in seconds per GiB and how far BitWitness is from it (``ours ÷ bound``), the output sizes
(ours ÷ peer's) where both write an E01, and issue 21's target with whether it is met. The bound
is BitWitness's CPU ÷ the cores it had, raised to ``md5sum`` of the media alone for a job that
computes MD5 of the media, and further to ``cp`` + ``sync`` of the media for one that writes a
raw copy of it (the raw floor: max(MD5 alone, copying the file to the disk)).

The work folder is on disk (default: a temporary folder under /var/tmp, removed at the end).
With ``--pin both`` (the default) every pair runs a second time with both tools pinned to one
core (``taskset -c 0``): a loaded machine gives a job one core, and the ratios must hold there
too. Wall times include a final ``sync`` for every tool (BitWitness fsyncs its outputs; the peers
do not). Rounds interleave the tools and keep each one's best wall time; each pair's outputs are
compared after its rounds (the same listing as fls, the same files as tsk_recover, the same bytes
as icat), so a fast wrong answer fails the run (exit 1). The load average is printed before and
after, as timings on a shared machine mean little. Timing lives here, never in the tests.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _args import BenchParser, work_folder
from _jobs import NTFS_DELETED, Job, Sources, jobs, prepare
from _measure import (
    MeasureError,
    Run,
    Startup,
    best,
    installed_copy,
    measure,
    pinned,
    startup_times,
)
from _tool import bitwitness_command

REPO = Path(__file__).resolve().parent.parent
_GIB = 1 << 30
_MIB = 1 << 20
#: Tools every row needs; taskset is added unless --pin off.
NEEDED = ("ewfacquire", "ewfverify", "ewfexport", "ewfinfo", "dc3dd", "md5sum", "cp", "fls",
          "icat", "tsk_recover", "mkfs.ext4")
#: Issue 21's start-up targets, in seconds (hyperfine's mean).
VERSION_TARGET, INFO_TARGET = 0.080, 0.150


@dataclass(frozen=True)
class Row:
    """One job's figures on one pinning."""

    job: Job
    pin: bool
    ours: Run
    theirs: Run
    bound: float  #: seconds
    size: float | None  #: our output bytes ÷ the peer's


@dataclass(frozen=True)
class Floors:
    """The media's floors on one pinning: ``md5sum`` alone and ``cp`` + ``sync``, wall seconds."""

    md5: float
    copy: float


def _fresh(folder: Path) -> Path:
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    return folder


def _warm(*paths: Path) -> None:
    for path in paths:
        for part in sorted(path.parent.glob(path.stem + ".*")):
            with part.open("rb") as fh:
                while fh.read(8 << 20):
                    pass


def _output_bytes(folder: Path, pattern: str) -> int:
    return sum(p.stat().st_size for p in folder.glob(pattern))


def floors(media: Path, work: Path, pin: bool, repeat: int) -> Floors:
    """``md5sum`` of ``media`` alone and ``cp`` of it to the work folder's disk with ``sync``."""
    md5: list[Run] = []
    copy: list[Run] = []
    for _ in range(repeat):
        md5.append(measure(["md5sum", str(media)], work, pin))
        out = _fresh(work / "floor")
        copy.append(measure(["cp", str(media), str(out / "copy.raw")], work, pin))
    shutil.rmtree(work / "floor")
    return Floors(best(md5).wall, best(copy).wall)


def run_job(job: Job, work: Path, *, pin: bool, repeat: int, floor: Floors, cores: int) -> Row:
    """``repeat`` interleaved rounds of the pair (a busy moment hits both alike), the best of
    each; then the check of the last round's outputs."""
    ours: list[Run] = []
    theirs: list[Run] = []
    mine = peer = work
    for _ in range(repeat):
        peer = _fresh(work / "peer")
        theirs.append(measure(job.theirs(peer), peer, pin,
                              peer / "stdout" if job.stdout else None))
        mine = _fresh(work / "ours")
        ours.append(measure(job.ours(mine), mine, pin, mine / "stdout" if job.stdout else None,
                            ok=job.ours_ok))
    if job.check is not None:
        problem = job.check(mine, peer)
        if problem is not None:
            raise MeasureError(f"{job.name}: {problem}")
    size = None
    if job.output is not None:
        size = _output_bytes(mine, job.output[0]) / _output_bytes(peer, job.output[1])
    fastest = best(ours)
    bound = fastest.cpu / cores
    if job.bound in ("md5", "floor"):
        bound = max(bound, floor.md5)
    if job.bound == "floor":
        bound = max(bound, floor.copy)
    return Row(job, pin, fastest, best(theirs), bound, size)


def _verdict(met: bool | None) -> str:
    return "—" if met is None else ("met" if met else "**NOT MET**")


def table(rows: list[Row]) -> list[str]:
    """The throughput table, in Markdown: one line per (job, pinning)."""
    lines = ["| job | peer | ratio | ours s | peer s | ours CPU s/GiB | peer CPU s/GiB | "
             "ours peak MiB | peer peak MiB | bound s/GiB | ours ÷ bound | size ours÷peer | "
             "target | |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|"]
    for row in rows:
        gib = row.job.data / _GIB
        ratio = row.theirs.wall / row.ours.wall
        over = row.ours.wall / row.bound
        target = (row.job.pinned_target or row.job.target) if row.pin else row.job.target
        size = "" if row.size is None else f"{row.size:.3f}"
        lines.append(
            f"| {row.job.name}{' (1 core)' if row.pin else ''} | {row.job.peer} | "
            f"{ratio:.2f}x | {row.ours.wall:.2f} | {row.theirs.wall:.2f} | "
            f"{row.ours.cpu / gib:.2f} | {row.theirs.cpu / gib:.2f} | "
            f"{row.ours.rss / _MIB:.0f} | {row.theirs.rss / _MIB:.0f} | {row.bound / gib:.2f} | "
            f"{over:.2f} | {size} | {target.text} | "
            f"{_verdict(target.met(ratio, over, row.size))} |")
    return lines


def startup(src: Sources, work: Path, pins: tuple[bool, ...], runs: int) -> list[str]:
    """Start-up times of a non-editable install against ewfinfo's, as a Markdown table."""
    script = installed_copy(REPO, _fresh(work / "install"))
    if script is None:
        bw, origin = [*bitwitness_command()], "the checkout (pip could not install a copy)"
    else:
        bw, origin = [str(script)], "a non-editable install of the checkout (pip install .)"
    small = src.small.name  # run in its folder: the table shows the commands as they ran
    pairs = [("--version", [*bw, "--version"], ["ewfinfo", "-V"], VERSION_TARGET),
             (f"info {small}", [*bw, "info", small], ["ewfinfo", small], INFO_TARGET)]
    here = src.small.parent
    peaks = [measure(ours, here, pin=False).rss for _, ours, _, _ in pairs]
    lines: list[str] = []
    method = ""
    for pin in pins:
        commands = [pinned(cmd, pin) for _, ours, theirs, _ in pairs for cmd in (ours, theirs)]
        times, method = startup_times(commands, runs, here)
        for (name, _, theirs, target), peak, mine, peer in zip(
                pairs, peaks, times[0::2], times[1::2], strict=True):
            lines.append(
                f"| `bitwitness {name}`{' (1 core)' if pin else ''} | `{' '.join(theirs)}` | "
                f"{peer.mean / mine.mean:.2f}x | {_ms(mine)} | {_ms(peer)} | "
                f"{mine.cpu * 1000:.1f} | {peer.cpu * 1000:.1f} | {peak / _MIB:.0f} | "
                f"< {target * 1000:.0f} ms | {_verdict(mine.mean < target)} |")
    return [f"start-up, from {origin}, timed with {method} ({runs} runs after 3 warm-up runs; "
            f"wall mean ± standard deviation (fastest); CPU = user + system, mean; {small} holds "
            "1 MiB of media):", "",
            "| command | peer | ratio | ours ms | peer ms | ours CPU ms | peer CPU ms | "
            "ours peak MiB | target (mean wall) | |",
            "|---|---|---:|---:|---:|---:|---:|---:|---|---|", *lines]


def scale(work: Path, pins: tuple[bool, ...], repeat: int) -> list[str]:
    """bench/bench_scale.py's rows (info at 1 TiB; acquire + verify at four sizes), per
    pinning, as Markdown lines."""
    from bench_scale import DEFAULT_INFO_SIZE, DEFAULT_SIZES, info_row, scale_rows

    lines: list[str] = []
    for pin in pins:
        folder = _fresh(work / "scale")
        info_lines, _ = info_row(folder, DEFAULT_INFO_SIZE, max(repeat, 2), pin)
        rows, _ = scale_rows(folder, list(DEFAULT_SIZES), repeat, pin)
        lines += [*info_lines, "", *rows, ""]
        shutil.rmtree(folder)
    return lines


def _ms(t: Startup) -> str:
    return f"{t.mean * 1000:.1f} ± {t.stddev * 1000:.1f} ({t.fastest * 1000:.1f})"


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _pyewf_inflate() -> str:
    """Which inflate libewf uses under ``verify --second-reader`` (it sets that row): zlib once
    scripts/build-pyewf.sh has rebuilt pyewf, libewf's own (~3x the CPU) in PyPI's wheel."""
    try:
        import pyewf
    except ImportError:
        return "pyewf: not installed"
    proc = subprocess.run(["ldd", str(pyewf.__file__)], capture_output=True, text=True,
                          check=False)
    how = ("zlib" if "libz.so" in proc.stdout
           else "libewf's own code (PyPI's wheel; scripts/build-pyewf.sh links zlib)")
    return f"pyewf {pyewf.get_version()} (second reader) inflates with {how}"


def _options() -> tuple[int, int, int, Path | None, str, bool]:
    parser = BenchParser(__doc__, size="512MiB", repeat=1,
                         dir_help="where the temporary work folder is made (default: /var/tmp, "
                                  "on disk)")
    parser.add_argument("--files", type=int, metavar="N",
                        help="files in the browsing file system (default: one per 4 KiB of "
                             "--size, at most 100,000)")
    parser.add_argument("--pin", choices=("both", "only", "off"), default="both",
                        help="run each pair also (both), only (only) or never (off) pinned to "
                             "one core with taskset (default both)")
    parser.add_argument("--scale", action="store_true",
                        help="add bench/bench_scale.py's rows: info on a 1 TiB E01 of zeros "
                             "against ewfinfo, acquire + verify at 256 MiB, 1, 4 and 16 GiB "
                             "(several more minutes, ~2 GB of disk at a time)")
    options = parser.parse()
    extra: argparse.Namespace = parser.parse_args()
    files = extra.files or min(100_000, options.size // 4096)
    return (options.size - options.size % 512, options.repeat, max(1, files), options.dir,
            extra.pin, extra.scale)


def main() -> int:
    size, repeat, files, parent, pin_mode, with_scale = _options()
    needed = [*NEEDED, *(("taskset",) if pin_mode != "off" else ())]
    missing = [tool for tool in needed if shutil.which(tool) is None]
    if missing:
        print(f"not installed: {', '.join(missing)} (scripts/install-tools.sh --test)",
              file=sys.stderr)
        return 2
    pins = {"both": (False, True), "only": (True,), "off": (False,)}[pin_mode]
    load_before = _load()
    started = time.gmtime()
    rows: list[Row] = []
    with work_folder(parent, "bw-bench-all-", inside=True) as work:
        src = prepare(work, size, files)
        bw = bitwitness_command()
        try:
            floor_lines = []
            for pin in pins:
                cores = 1 if pin else (os.cpu_count() or 1)
                _warm(src.media, src.e01, src.browse, src.catfs,
                      *([src.browse_ntfs] if src.browse_ntfs is not None else []))
                floor = floors(src.media, work, pin, repeat)
                floor_lines.append(
                    f"floors{' (1 core)' if pin else ''}: md5sum alone "
                    f"{floor.md5 / (size / _GIB):.2f} s/GiB, cp + sync "
                    f"{floor.copy / (size / _GIB):.2f} s/GiB")
                rows.extend(run_job(job, work, pin=pin, repeat=repeat, floor=floor,
                                    cores=cores)
                            for job in jobs(src, bw))
            start_lines = startup(src, work, pins, max(10, 10 * repeat))
            scale_lines = scale(work, pins, repeat) if with_scale else []
        except MeasureError as exc:
            print(str(exc), file=sys.stderr)
            return 1
    print(f"date: {time.strftime('%Y-%m-%d %H:%M UTC', started)}; cores: {os.cpu_count()}; "
          f"load average (1, 5, 15 min) before: {load_before}, after: {_load()}")
    print(f"media: {size} bytes of disk-like data (1/3 zeros, 1/3 random, 1/3 text), on disk; "
          f"ext4 of {files:,} files ({src.browse_size >> 20} MiB), "
          + (f"and NTFS of the same, {NTFS_DELETED}% of them deleted"
             if src.browse_ntfs is not None
             else f"no NTFS ({src.ntfs_note})")
          + f"; best of {repeat} interleaved round(s), each with a final sync")
    print(_pyewf_inflate())
    print("ratio = peer wall time / BitWitness wall time (above 1: BitWitness is faster); CPU "
          "s/GiB of the data each job reads (the media; the file system; the file); bound = "
          "BitWitness CPU / cores, raised to MD5 alone (md5) and to cp + sync (raw writes)")
    print("\n".join(floor_lines))
    print()
    print("\n".join(table(rows)))
    print()
    print("\n".join(start_lines))
    if scale_lines:
        print()
        print("\n".join(scale_lines))
    unmet = [line.split(" | ")[0].lstrip("| ") for line in [*table(rows), *start_lines]
             if "NOT MET" in line]
    unmet += [line.split(":")[0] for line in scale_lines
              if "NOT LINEAR" in line or "NOT FLAT" in line]
    print()
    print(f"targets not met: {', '.join(unmet)}" if unmet else "every target met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
