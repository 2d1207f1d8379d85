"""What libewf's parse of an L01 file list (ltree) costs in memory, against our estimate.

    python bench/bench_ltree_memory.py [--dir DIR] [--scale 1.0]

Writes L01 files with tests/builders/logical.py whose ltree text has a chosen shape, opens each
with pyewf in a fresh process (nothing of BitWitness loaded) and prints the peak RSS the open
added, beside :func:`bitwitness.images.ewf_ltree.text_cost`'s estimate for the same text. The
estimate must stay above every measured cost (the ``margin`` column above 1): this is where the
constants of ``ewf_ltree`` come from. Shapes:

* ``encase6`` / ``encase7``: what EnCase writes (all tags, 1000 files per folder);
* ``dense``: one entry per two lines of a few characters, the most entries per byte;
* ``sources``: the same density in the ``srce`` category;
* ``names``: few entries with names of 16 000 CJK characters;
* ``attributes``: extended attributes (hex in the text, one structure per 13 bytes).

The largest shapes take ~300 MiB while they are measured; ``--scale`` shrinks or grows them.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "bench"))
from _args import work_folder  # noqa: E402
from builders.logical import Item, build_l01  # noqa: E402

from bitwitness.images.ewf_ltree import count_lines, ltree_sections, text_cost  # noqa: E402

_HEAD = ["rec", "tb\tcl", "1\t1", ""]
_PERM = ["perm", "0\t1", "p\tn\ts\tpr\tnta\tnti", "0\t0", "1\t\t\t10\t\t", ""]
_SRCE = ["srce", "1\t1", "p\tn\tid\tev\ttb\tlo\tpo\tah\tsh\tgu\taq", "0\t1",
         "1\t\t\t\t\t-1\t-1\t\t\t\t", "0\t0", "\ts\t1\tE\t1\t-1\t-1\t\t\t0\t0", ""]
_SUB = ["sub", "1\t1", "p\tn\tid\tnu\tco\tgu", "0\t1", "1\t\t\t\t\t", "0\t0", "\ts\t1\t1\t\t0",
        ""]
# VmHWM, not ru_maxrss: a child's ru_maxrss starts at its parent's peak (kept across exec)
_MEASURE = """
import re, sys
import pyewf
def peak():
    with open("/proc/self/status") as status:
        return int(re.search(r"VmHWM:\\s+(\\d+) kB", status.read()).group(1)) * 1024
before = peak()
handle = pyewf.handle()
handle.open([sys.argv[1]])
print(peak() - before)
"""


def _entries(n: int, value: str, types: str = "p\tn") -> list[str]:
    root = "1" + "\t" * types.count("\t")
    return ["entry", f"{n + 1}\t1", types, f"0\t{n}", root, *(["0\t0", value] * n), "", ""]


def _text(body: list[str]) -> str:
    return "\n".join(["5", *body])


def _dense(n: int) -> str:
    return _text([*_HEAD, *_PERM, *_SRCE, *_SUB, *_entries(n, "\ta")])


def _sources(n: int) -> str:
    rows = [x for i in range(n) for x in ("0\t0", f"\ts\t{i + 1}")]
    srce = ["srce", f"{n}\t1", "p\tn\tid", f"0\t{n}", "1\t\t", *rows, ""]
    return _text([*_HEAD, *_PERM, *srce, *_SUB, *_entries(1, "\ta")])


def _names(n: int) -> str:
    return _text([*_HEAD, *_PERM, *_SRCE, *_SUB, *_entries(n, "\t" + "文" * 16_000)])


def _attributes(n: int) -> str:
    header = bytes([0, 0, 0, 0, 1, 0x0B, 0, 0, 0, 1, 0, 0, 0]) + "Attributes\0".encode(
        "utf-16-le") + bytes(2)
    value = (header + bytes(13) * 20_000).hex()
    return _text([*_HEAD, *_PERM, *_SRCE, *_SUB, *_entries(n, "\ta\t" + value, "p\tn\tea")])


def _real(encase7: bool) -> Callable[[Path, int], None]:
    def build(path: Path, n: int) -> None:
        items = []
        for folder in range(-(-n // 1000)):
            items.append(Item(f"dir{folder:05d}", None))
            items += [Item(f"dir{folder:05d}/file{f:05d}.txt", f"{folder}-{f}\n".encode())
                      for f in range(min(1000, n - folder * 1000))]
        build_l01(path, items, encase7=encase7)

    return build


def _override(make: Callable[[int], str]) -> Callable[[Path, int], None]:
    def build(path: Path, n: int) -> None:
        build_l01(path, [Item("x", b"y")], ltree_override=make(n))

    return build


SHAPES: dict[str, tuple[Callable[[Path, int], None], int]] = {
    "encase6": (_real(False), 100_000),
    "encase7": (_real(True), 100_000),
    "dense": (_override(_dense), 400_000),
    "sources": (_override(_sources), 100_000),
    "names": (_override(_names), 4_000),
    "attributes": (_override(_attributes), 100),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=None,
                        help="where the temporary work folder is made (default: /var/tmp, on "
                             "disk)")
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies each shape's size")
    args = parser.parse_args()
    with work_folder(args.dir, "bw-bench-ltree-", inside=True) as folder:
        print(f"{'shape':<11} {'count':>8} {'text bytes':>12} {'lines':>9} {'estimate':>12} "
              f"{'measured':>12} {'margin':>7}")
        for name, (build, count) in SHAPES.items():
            n = max(1, int(count * args.scale))
            path = Path(folder) / f"{name}.L01"
            build(path, n)
            sections = ltree_sections(path)
            size = sum(s.size for s in sections)
            lines = sum(count_lines(s) for s in sections)
            estimate = text_cost(size, lines)
            done = subprocess.run([sys.executable, "-c", _MEASURE, str(path)],
                                  capture_output=True, text=True, check=True)
            measured = int(done.stdout)
            print(f"{name:<11} {n:>8} {size:>12} {lines:>9} {estimate >> 20:>9} MiB "
                  f"{measured >> 20:>9} MiB {estimate / max(measured, 1):>7.2f}")
            path.unlink()


if __name__ == "__main__":
    main()
