"""Benchmark: cost against media size (issue 21, item 7).

Usage: ``python bench/bench_scale.py [--size 1TiB] [--sizes 256MiB,1GiB,4GiB,16GiB]
[--repeat 3] [--dir DIR] [--pin]``

1. ``info``: writes a ``--size`` E01 of zeros (bench/_zero_e01.py: BitWitness's own writer, the
   tables and segments of a real acquisition of that size, ~2 GB of files per TiB), then times
   ``bitwitness info`` against ``ewfinfo`` on it (best of ``--repeat``, interleaved) with their
   peak memory. Target: under 2 s and under 100 MiB.
2. acquisition and verification at each of ``--sizes``: a sparse source file, mostly zeros
   (16 MiB of random bytes at its start, middle and end: the rest holes, so the disk holds
   little), acquired to E01 (``--compress fast --hash md5,sha1``) and verified, each timed with
   its peak memory. Prints seconds and CPU seconds per GiB and peak MiB per size: cost per GiB
   should stay level (linear) and memory flat. Every acquisition must end VERIFIED.

With ``--pin`` every command runs pinned to one core (``taskset -c 1``), the same for both
tools. The load average is printed before and after: timings on a shared machine mean little.
Exit 1 when a target is missed or a command fails.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _args import work_folder
from _measure import MeasureError, Run, best, measure
from _tool import bitwitness_command
from _zero_e01 import write_zero_e01

from bitwitness.sizes import format_size, parse_size

_GIB = 1 << 30
_MIB = 1 << 20
INFO_SECONDS, INFO_MIB = 2.0, 100
#: Random bytes written at the start, middle and end of each sparse source.
ISLAND = 16 << 20
#: Memory is "flat" when the largest size's peak is within this factor of the smallest's.
FLAT = 1.25
#: Cost is "linear" when seconds per GiB at the largest size stay within this factor of the
#: smallest's (the smallest pays start-up over less data, so it is the dearer per GiB).
LINEAR = 1.25


#: The defaults: the E01 info opens, and the sizes acquired and verified.
DEFAULT_INFO_SIZE = parse_size("1TiB")
DEFAULT_SIZES = (parse_size("256MiB"), _GIB, 4 * _GIB, 16 * _GIB)


def _sizes(text: str) -> list[int]:
    return [parse_size(part) for part in text.split(",") if part.strip()]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=(__doc__ or "").strip().split("\n\n")[0])
    parser.add_argument("--size", type=parse_size, default=DEFAULT_INFO_SIZE,
                        help="media size of the E01 that info opens (default 1TiB)")
    parser.add_argument("--sizes", type=_sizes, default=list(DEFAULT_SIZES),
                        help="media sizes acquired and verified (default "
                             "256MiB,1GiB,4GiB,16GiB)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds, best kept (default 3)")
    parser.add_argument("--dir", type=Path, help="work folder (default: a temporary folder "
                        "under /var/tmp, removed at the end)")
    parser.add_argument("--pin", action="store_true", help="pin every command to core 1")
    return parser


def _pin(cmd: list[str], pin: bool) -> list[str]:
    return ["taskset", "-c", "1", *cmd] if pin else cmd


def _load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def info_row(work: Path, size: int, repeat: int, pin: bool) -> tuple[list[str], bool]:
    """Write the big E01, time info against ewfinfo: Markdown lines, and whether the targets
    are met."""
    base = work / "zeros"
    segments = write_zero_e01(base, size)
    stored = sum(p.stat().st_size for p in segments)
    lines = [f"info on {format_size(size)} of zeros ({len(segments)} segment(s), "
             f"{stored / _MIB:.0f} MiB of files, BitWitness's E01 writer), best of {repeat}"
             f"{', pinned to core 1' if pin else ''}:", "",
             "| job | ours s | ours peak MiB | ewfinfo s | ewfinfo peak MiB | target | |",
             "|---|---:|---:|---:|---:|---|---|"]
    bw = bitwitness_command()
    ours: list[Run] = []
    theirs: list[Run] = []
    for _ in range(repeat):
        theirs.append(measure(_pin(["ewfinfo", str(segments[0])], pin), work, pin=False))
        ours.append(measure(_pin([*bw, "info", str(segments[0])], pin), work, pin=False))
    mine, peer = best(ours), best(theirs)
    met = mine.wall < INFO_SECONDS and mine.rss < INFO_MIB * _MIB
    lines.append(f"| info {format_size(size)} | {mine.wall:.2f} | {mine.rss / _MIB:.0f} | "
                 f"{peer.wall:.2f} | {peer.rss / _MIB:.0f} | < {INFO_SECONDS:g} s and "
                 f"< {INFO_MIB} MiB | {'met' if met else '**NOT MET**'} |")
    for path in segments:
        path.unlink()
    return lines, met


def _sparse_source(path: Path, size: int) -> None:
    with path.open("wb") as fh:
        fh.truncate(size)
        for at in (0, size // 2, max(0, size - ISLAND)):
            fh.seek(at - at % 512)
            fh.write(os.urandom(min(ISLAND, size)))


def scale_rows(work: Path, sizes: list[int], repeat: int,
               pin: bool) -> tuple[list[str], bool]:
    """Acquire and verify a mostly-zero source at each size: Markdown lines, and whether cost
    stays linear and memory flat."""
    bw = bitwitness_command()
    lines = [f"acquire (E01 fast, MD5 + SHA-1) and verify of a sparse, mostly-zero source, best "
             f"of {repeat}{', pinned to core 1' if pin else ''}:", "",
             "| size | acquire s | s/GiB | CPU s/GiB | peak MiB | verify s | s/GiB | CPU s/GiB | "
             "peak MiB |", "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    rows: list[tuple[int, Run, Run]] = []
    for size in sizes:
        source = work / "source.raw"
        _sparse_source(source, size)
        acquired: list[Run] = []
        verified: list[Run] = []
        for _ in range(repeat):
            out = work / "out"
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir()
            acquired.append(measure(_pin([*bw, "acquire", str(source), "-o", str(out / "x"),
                                          "--compress", "fast", "--hash", "md5,sha1", "--json"],
                                         pin), out, pin=False))
            report = out / "verify.json"
            verified.append(measure(_pin([*bw, "verify", "--json", str(out / "x.E01")], pin),
                                    out, pin=False, stdout=report))
            verdict = json.loads(report.read_text())["images"][0]["verdict"]
            if verdict != "VERIFIED":
                raise MeasureError(f"verify of the {format_size(size)} acquisition: {verdict}")
        source.unlink()
        shutil.rmtree(work / "out", ignore_errors=True)
        a, v = best(acquired), best(verified)
        gib = size / _GIB
        lines.append(f"| {format_size(size)} | {a.wall:.2f} | {a.wall / gib:.2f} | "
                     f"{a.cpu / gib:.2f} | {a.rss / _MIB:.0f} | {v.wall:.2f} | "
                     f"{v.wall / gib:.2f} | {v.cpu / gib:.2f} | {v.rss / _MIB:.0f} |")
        rows.append((size, a, v))
    ok = True
    for name, runs in (("acquire", [a for _, a, _ in rows]), ("verify", [v for _, _, v in rows])):
        per_first = runs[0].cpu / (rows[0][0] / _GIB)
        per_last = runs[-1].cpu / (rows[-1][0] / _GIB)
        peaks = [r.rss for r in runs]
        linear = per_last <= per_first * LINEAR
        flat = max(peaks) <= min(peaks) * FLAT
        ok = ok and linear and flat
        lines.append(f"{name}: CPU s/GiB {per_first:.2f} at {format_size(rows[0][0])}, "
                     f"{per_last:.2f} at {format_size(rows[-1][0])} "
                     f"({'linear' if linear else '**NOT LINEAR**'}); peak "
                     f"{min(peaks) / _MIB:.0f}-{max(peaks) / _MIB:.0f} MiB "
                     f"({'flat' if flat else '**NOT FLAT**'})")
    return lines, ok


def main() -> int:
    args = _parser().parse_args()
    for tool in ("ewfinfo", *(("taskset",) if args.pin else ())):
        if shutil.which(tool) is None:
            print(f"{tool} is not installed", file=sys.stderr)
            return 2
    print(f"load average before: {_load()}{' (pinned to core 1)' if args.pin else ''}")
    with work_folder(args.dir, "bw-bench-scale-", inside=True) as work:
        try:
            info_lines, met = info_row(work, args.size, args.repeat, args.pin)
            print("\n".join(info_lines), end="\n\n", flush=True)
            scale_lines, linear = scale_rows(work, args.sizes, args.repeat, args.pin)
            print("\n".join(scale_lines))
        except MeasureError as exc:
            print(exc, file=sys.stderr)
            return 1
    print(f"load average after: {_load()}")
    print("every target met" if met and linear else
          f"BELOW TARGET: {', '.join(n for n, ok in (('info', met), ('scale', linear)) if not ok)}")
    return 0 if met and linear else 1


if __name__ == "__main__":
    sys.exit(main())
