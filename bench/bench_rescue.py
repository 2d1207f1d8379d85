"""Rescuing a failing drive: ``bitwitness acquire --rescue`` against GNU ddrescue, same drive.

    sudo python bench/bench_rescue.py [--size 256MiB] [--repeat 1] [--dir DIR]

The drive is the test suite's faulty drive (tests/faultydrive: a loop device over a FUSE file)
with 1% of its sectors unreadable in clusters of 8-64 sectors, each failing read taking 10 ms
longer (a drive retrying internally). Two measures, each tool as a separate process, both
reading with O_DIRECT (``ddrescue -d``), best of ``--repeat`` interleaved rounds:

* **readable data secured**: no retries (``ddrescue -r0``, ``--retries 0``): the time to
  read everything readable and map the rest (BitWitness also hashes the image at the end);
  target: at most 1.5x ddrescue;
* **with retries**: ``ddrescue -r2`` against ``--retries 2`` (the default).

Both images are checked against each other and the drive's true bytes (a benchmark that
compared wrong results would mean nothing). Needs root, /dev/fuse, loop devices and ddrescue
(``scripts/install-tools.sh --test``). Timing lives here, never in the tests.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _args import BenchParser, work_folder
from _tool import bitwitness_command

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
from faultydrive.drive import drives, unavailable  # noqa: E402
from faultydrive.faultmap import FaultMap, Slow, clustered_bad  # noqa: E402

ERROR_DELAY = 0.01


def _run(cmd: list[str], cwd: Path) -> float:
    began = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    took = time.perf_counter() - began
    if proc.returncode not in (0, 1):
        sys.exit(f"{cmd[0]} failed ({proc.returncode}): {proc.stderr.strip()[-500:]}")
    return took


def _round(device: str, work: Path, retries: int, expected: bytes) -> tuple[float, float]:
    for old in work.glob("*"):
        old.unlink()
    ours = _run([*bitwitness_command(), "acquire", device, "-o", str(work / "bw"), "--rescue",
                 "--retries", str(retries), "--hash", "md5"], work)
    theirs = _run(["ddrescue", "-d", "-q", f"-r{retries}", device, str(work / "dd.img"),
                   str(work / "dd.map")], work)
    ours_image = (work / "bw.raw").read_bytes()
    if ours_image != expected or (work / "dd.img").read_bytes() != expected:
        sys.exit("the images differ from the drive's readable bytes: no timing reported")
    return ours, theirs


def main() -> None:
    parser = BenchParser(__doc__, size="256MiB", repeat=1,
                         dir_help="where the temporary work folder is made (default: "
                                  "/var/tmp, on disk)")
    opts = parser.parse()
    reason = unavailable()
    if reason:
        sys.exit(f"cannot make a faulty drive here: {reason}")
    if shutil.which("ddrescue") is None:
        sys.exit("ddrescue is not installed (Debian package gddrescue)")
    with work_folder(opts.dir, "bw-bench-rescue-", inside=True) as folder:
        bad = clustered_bad(opts.size // 512, 0.01)
        faults = FaultMap(bad=bad, slow=tuple(Slow(a, n, ERROR_DELAY) for a, n in bad))
        factory = drives(folder)
        make = next(factory)
        try:
            drive = make(faults, size=opts.size)
            expected = drive.expected_image()
            work = folder / "work"
            work.mkdir()
            for retries, label in ((0, "readable data secured (no retries)"),
                                   (2, "with 2 retry passes")):
                best_ours, best_theirs = float("inf"), float("inf")
                for _ in range(opts.repeat):
                    ours, theirs = _round(drive.device, work, retries, expected)
                    best_ours, best_theirs = min(best_ours, ours), min(best_theirs, theirs)
                ratio = best_ours / best_theirs
                verdict = "" if ratio <= 1.5 else "  BELOW TARGET"
                print(f"{label}: bitwitness {best_ours:.2f} s, ddrescue {best_theirs:.2f} s, "
                      f"ratio {ratio:.2f}x (target <= 1.5x){verdict}")
            print(f"drive: {opts.size} bytes, {sum(n for _, n in bad)} bad sectors in "
                  f"{len(bad)} clusters, {ERROR_DELAY * 1000:g} ms per failing read")
        finally:
            next(factory, None)


if __name__ == "__main__":
    main()
