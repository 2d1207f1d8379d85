"""Benchmark: ``bitwitness convert`` against libewf's tools on the same generated data.

* E01 -> raw: ``bitwitness convert X.E01 --to raw`` against ``ewfexport -f raw``;
* raw -> E01: ``bitwitness convert X.raw --to e01`` against ``ewfacquire`` (same compression).

Both sides compute MD5 and SHA-1 (BitWitness adds SHA-256 too, and checks them against the
source's record). Prints the wall-clock times (best of ``--repeat`` rounds, alternating) and
BitWitness/peer ratios (lower is better). Every run ends with ``sync``, timed with it: BitWitness
makes its output durable (fsync) before it says done, the libewf tools do not, and an output
still in the page cache is not yet on the disk.
Usage: ``python bench/bench_convert.py [--size 512MiB] [--repeat 1] [--dir DIR]``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _args import BenchParser, work_folder
from _data import make_disk_file
from _tool import bitwitness_command


def _timed(cmd: list[str]) -> float:
    subprocess.run(["sync"], check=True)
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    subprocess.run(["sync"], check=True)
    return time.perf_counter() - start


def _bw(*args: str) -> list[str]:
    return [*bitwitness_command(), *args]


def _clear(work: Path, name: str) -> None:
    """Remove what an earlier round wrote as ``name.*``: the tools refuse to overwrite."""
    for path in work.glob(f"{name}.*"):
        path.unlink()


def main() -> None:
    parser = BenchParser(__doc__, size="512MiB", repeat=1,
                         dir_help="where the temporary work folder is made (default: "
                                  "/var/tmp, on disk)")
    parser.deprecated_mib()
    args = parser.parse()
    size = args.size
    mib = size / (1 << 20)
    for tool in ("ewfacquire", "ewfexport"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not installed")
    with work_folder(args.dir, "bw-bench-convert-", inside=True) as work:
        raw = make_disk_file(work / "disk.raw", size)
        # raw -> E01
        peer = ours = float("inf")
        for _ in range(args.repeat):  # alternate and keep the best: the box may be shared
            _clear(work, "peer")
            peer = min(peer, _timed(["ewfacquire", "-u", "-q", "-c", "deflate:fast", "-d", "sha1",
                                     "-S", "1.4GiB", "-t", str(work / "peer"), str(raw)]))
            _clear(work, "ours")
            ours = min(ours, _timed(_bw("convert", str(raw), "-o", str(work / "ours"), "--to",
                                        "e01", "--compress", "fast", "--hash", "md5,sha1")))
        print(f"raw -> E01   {mib:g} MiB: bitwitness {ours:.2f} s, ewfacquire {peer:.2f} s, "
              f"ratio {ours / peer:.2f}")
        # E01 -> raw (both read the E01 ewfacquire wrote)
        source = work / "peer.E01"
        peer = ours = float("inf")
        for _ in range(args.repeat):
            _clear(work, "exported")
            peer = min(peer, _timed(["ewfexport", "-u", "-q", "-f", "raw", "-d", "sha1",
                                     "-t", str(work / "exported"), str(source)]))
            _clear(work, "converted")
            ours = min(ours, _timed(_bw("convert", str(source), "-o", str(work / "converted"),
                                        "--to", "raw", "--hash", "md5,sha1")))
        print(f"E01 -> raw   {mib:g} MiB: bitwitness {ours:.2f} s, ewfexport {peer:.2f} s, "
              f"ratio {ours / peer:.2f}")


if __name__ == "__main__":
    main()
