"""Benchmark: ``bitwitness verify`` against ``ewfverify -d sha1`` on the same E01, same run.

Usage: ``python bench/bench_verify.py [--size 1GiB] [--repeat 3] [--dir DIR]``

Makes a disk-like media (zeros, random runs and text, as real disks compress), acquires it with
``ewfacquire -c deflate:fast -d sha1`` (so the E01 stores MD5 and SHA-1), then times both tools
verifying it (best of ``--repeat``, alternating, page cache warm for both). Both must compute MD5
and SHA-1 and report success. Prints MiB/s for each and the ratio (target: >= 1.3).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _args import BenchParser, work_folder
from _data import make_disk_file
from _tool import bitwitness_command


def timed(cmd: list[str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    return time.perf_counter() - start, proc


def main() -> int:
    parser = BenchParser(__doc__, size="1GiB", repeat=3,
                         dir_help="work folder, kept, its E01 reused by the next run (default: "
                                  "a temporary folder under /var/tmp, removed at the end)")
    parser.deprecated_option("--runs", "--repeat")
    parser.deprecated_option("--workdir", "--dir")
    args = parser.parse()
    size = args.size
    for tool in ("ewfacquire", "ewfverify"):
        if shutil.which(tool) is None:
            print(f"{tool} is not installed", file=sys.stderr)
            return 2
    with work_folder(args.dir, "bw-bench-verify-") as work:
        media, image = work / "media.raw", work / "image.E01"
        if not image.exists():
            make_disk_file(media, size)
            subprocess.run(["ewfacquire", "-u", "-q", "-t", str(work / "image"), "-c",
                            "deflate:fast", "-d", "sha1", "-S", "8GiB", str(media)],
                           capture_output=True, check=True)
            media.unlink()
        ours_cmd = [*bitwitness_command(), "verify", "--json", str(image)]
        theirs_cmd = ["ewfverify", "-q", "-d", "sha1", str(image)]
        ours, theirs = [], []
        for _ in range(args.repeat):
            t, proc = timed(theirs_cmd)
            if proc.returncode != 0 or "SUCCESS" not in proc.stdout:
                print(f"ewfverify failed: {proc.stdout}{proc.stderr}", file=sys.stderr)
                return 1
            theirs.append(t)
            t, proc = timed(ours_cmd)
            doc = json.loads(proc.stdout) if proc.stdout else {}
            result = (doc.get("images") or [{}])[0]
            if proc.returncode != 0 or set(result.get("computed", {})) != {"md5", "sha1"}:
                print(f"bitwitness verify failed: {proc.stdout}{proc.stderr}", file=sys.stderr)
                return 1
            ours.append(t)
        mib = size / (1 << 20)
        best_ours, best_theirs = min(ours), min(theirs)
        print(f"media {mib:.0f} MiB, E01 {image.stat().st_size / (1 << 20):.0f} MiB "
              f"(ewfacquire -c deflate:fast -d sha1), best of {args.repeat}")
        print(f"ewfverify -d sha1   {best_theirs:7.2f} s  {mib / best_theirs:8.1f} MiB/s")
        print(f"bitwitness verify   {best_ours:7.2f} s  {mib / best_ours:8.1f} MiB/s  "
              "(MD5 + SHA-1, every chunk checked)")
        ratio = best_theirs / best_ours
        print(f"ratio {ratio:.2f}x (target >= 1.3x): {'OK' if ratio >= 1.3 else 'BELOW TARGET'}")
        return 0 if ratio >= 1.3 else 1


if __name__ == "__main__":
    sys.exit(main())
