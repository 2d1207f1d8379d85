"""Benchmark: reading an E01 through ``bitwitness mount`` against reading it directly and
through ``ewfmount`` (libewf's FUSE mount), same image, same run.

Usage: ``python bench/bench_mount.py [--size 1GiB] [--repeat 3] [--dir DIR]`` (as root, or
wherever FUSE mounts are allowed)

Makes a disk-like media, acquires it into an E01 with ``bitwitness acquire``, then per round:

* direct: BitWitness reads the whole media from the E01 (``open_image(...).iter_blocks``);
* mount: ``bitwitness mount --background``, 1 MiB reads of ``media.raw``, ``bitwitness umount``;
* ewfmount: ``ewfmount``, 1 MiB reads of ``ewf1``, ``fusermount3 -u``;

every reader hashes what it reads with the same SHA-256 (Python's hashlib, OpenSSL) in a process
of its own: coreutils' ``sha256sum`` here hashes at a quarter of OpenSSL's speed and would make
both mounts look slower than they are;

each mount freshly made, so that no round reads from the previous one's page cache; only the
reading is timed (not starting a process, opening the image, mounting). Then 2000
random 4 KiB reads (same offsets for both mounts) on fresh mounts. Every read's SHA-256 is
compared with the media's. Prints MiB/s, reads/s and the ratios against the targets: sequential
through the mount at least 0.8x direct and at least ewfmount's.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _args import BenchParser, work_folder
from _data import make_disk_file
from _tool import REPO, bitwitness_command

RANDOM_READS = 2000
DIRECT = """
import hashlib, sys, time
from bitwitness.image import open_image
h = hashlib.sha256()
with open_image(sys.argv[1]) as s:
    start = time.perf_counter()
    for block in s.iter_blocks(1 << 20):
        h.update(block)
    print(h.hexdigest(), time.perf_counter() - start)
"""


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def timed(func: Callable[[], str]) -> tuple[float, str]:
    start = time.perf_counter()
    result = func()
    return time.perf_counter() - start, result


Reading = Callable[[], tuple[float, str]]


SEQUENTIAL = """
import hashlib, sys
h = hashlib.sha256()
buffer = memoryview(bytearray(1 << 20))
with open(sys.argv[1], "rb", buffering=0) as fh:
    while n := fh.readinto(buffer):
        h.update(buffer[:n])
print(h.hexdigest())
"""


def read_sha256(path: Path) -> str:
    """Read ``path`` sequentially in 1 MiB reads (as dd bs=1M would) and hash it, in a process
    of its own, as the direct reading does."""
    return subprocess.run([sys.executable, "-c", SEQUENTIAL, str(path)], capture_output=True,
                          text=True, check=True).stdout.strip()


def random_reads(path: Path, offsets: list[int]) -> str:
    h = hashlib.sha256()
    fd = os.open(path, os.O_RDONLY)
    try:
        for offset in offsets:
            h.update(os.pread(fd, 4096, offset))
    finally:
        os.close(fd)
    return h.hexdigest()


class Mounts:
    """Fresh mounts of the E01 by BitWitness and by ewfmount."""

    def __init__(self, image: Path, work: Path) -> None:
        self.image = image
        self.work = work
        self.bw = bitwitness_command()

    def ours(self) -> tuple[Path, Callable[[], None]]:
        mnt = self.work / "mnt-bitwitness"
        mnt.mkdir(exist_ok=True)
        subprocess.run([*self.bw, "mount", str(self.image), str(mnt), "--background"],
                       check=True, capture_output=True)
        return mnt / "media.raw", lambda: subprocess.run(
            [*self.bw, "umount", str(mnt)], check=True, capture_output=True) and None

    def ewfmount(self) -> tuple[Path, Callable[[], None]]:
        mnt = self.work / "mnt-ewfmount"
        mnt.mkdir(exist_ok=True)
        subprocess.run(["ewfmount", str(self.image), str(mnt)], check=True, capture_output=True)
        tool = shutil.which("fusermount3") or shutil.which("fusermount") or "umount"
        args = [tool, "-u", str(mnt)] if "fusermount" in tool else [tool, str(mnt)]
        return mnt / "ewf1", lambda: subprocess.run(args, check=True, capture_output=True) \
            and None


def mounted(open_mount: Callable[[], tuple[Path, Callable[[], None]]],
            read: Callable[[Path], str]) -> Reading:
    """Mount, time ``read`` alone (not the mount and unmount around it), unmount."""
    def run() -> tuple[float, str]:
        path, close = open_mount()
        try:
            return timed(lambda: read(path))
        finally:
            close()

    return run


class MismatchError(Exception):
    """A reader returned other bytes than the direct read."""


def prepare(work: Path, size: int) -> tuple[Path, int]:
    """The E01 (made on the first run) and its media size."""
    bw = bitwitness_command()
    image = work / "image.E01"
    if not image.exists():
        media = work / "media.raw"
        make_disk_file(media, size)
        subprocess.run([*bw, "acquire", str(media), "-o", str(work / "image")],
                       check=True, capture_output=True)
        media.unlink()
    info = subprocess.run([*bw, "info", "--json", str(image)], capture_output=True, text=True,
                          check=True)
    return image, int(json.loads(info.stdout).get("media_size", size))


def direct_read(image: Path) -> tuple[float, str]:
    """BitWitness reading the E01 in a process of its own; the reading loop alone is timed."""
    digest, seconds = subprocess.run([sys.executable, "-c", DIRECT, str(image)],
                                     capture_output=True, text=True, check=True,
                                     cwd=REPO).stdout.split()
    return float(seconds), digest


def best_times(tools: dict[str, Reading], repeat: int) -> dict[str, float]:
    """Best time of each tool over ``repeat`` interleaved rounds; all must agree on the bytes."""
    best: dict[str, float] = {}
    digests: set[str] = set()
    for _ in range(repeat):
        for name, run in tools.items():
            seconds, digest = run()
            best[name] = min(best.get(name, seconds), seconds)
            digests.add(digest)
            if len(digests) != 1:
                raise MismatchError(f"{name} read other bytes than the tools before it")
    return best


def main() -> int:
    parser = BenchParser(__doc__, size="1GiB", repeat=3,
                         dir_help="work folder, kept, its E01 reused by the next run (default: "
                                  "a temporary folder, removed at the end)")
    args = parser.parse()
    missing = [tool for tool in ("ewfmount",) if shutil.which(tool) is None]
    if missing or not Path("/dev/fuse").exists():
        print(f"cannot run here: {', '.join(missing) or '/dev/fuse'} missing", file=sys.stderr)
        return 2
    with work_folder(args.dir, "bw-bench-mount-") as work:
        try:
            image, size = prepare(work, args.size)
            mounts = Mounts(image, work)
            rng = random.Random(20)
            offsets = [rng.randrange(0, max(1, size - 4096)) // 512 * 512
                       for _ in range(RANDOM_READS)]
            try:
                best = best_times({"direct": lambda: direct_read(image),
                                   "mount": mounted(mounts.ours, read_sha256),
                                   "ewfmount": mounted(mounts.ewfmount, read_sha256)}, args.repeat)
                scattered = best_times(
                    {name: mounted(opener, lambda path: random_reads(path, offsets))
                     for name, opener in (("mount", mounts.ours), ("ewfmount", mounts.ewfmount))},
                    args.repeat)
            except MismatchError as exc:
                print(str(exc), file=sys.stderr)
                return 1
            return report(image, size, args.repeat, best, scattered)
        finally:
            for name in ("mnt-bitwitness", "mnt-ewfmount"):
                folder = work / name
                if folder.is_dir() and os.path.ismount(folder):
                    subprocess.run(["umount", "-l", str(folder)], check=False)


def report(image: Path, size: int, repeat: int, best: dict[str, float],
           scattered: dict[str, float]) -> int:
    mib = size / (1 << 20)
    print(f"media {mib:.0f} MiB, E01 {image.stat().st_size / (1 << 20):.0f} MiB "
          f"(bitwitness acquire), best of {repeat}, fresh mount each round")
    for name, label in (("direct", "bitwitness reading the E01"),
                        ("mount", "media.raw via bitwitness mount"),
                        ("ewfmount", "ewf1 via ewfmount")):
        print(f"{label:40} {best[name]:7.2f} s  {mib / best[name]:8.1f} MiB/s")
    for name, seconds in scattered.items():
        print(f"{RANDOM_READS} random 4 KiB reads via {name:9} {seconds:7.2f} s "
              f"({RANDOM_READS / seconds:8.0f} reads/s)")
    vs_direct = best["direct"] / best["mount"]
    vs_ewfmount = best["ewfmount"] / best["mount"]
    ok = vs_direct >= 0.8 and vs_ewfmount >= 1.0
    print(f"mount/direct {vs_direct:.2f}x (target >= 0.8x), mount/ewfmount "
          f"{vs_ewfmount:.2f}x (target >= 1.0x): {'OK' if ok else 'BELOW TARGET'}")
    return 0 if ok else 1

if __name__ == "__main__":
    sys.exit(main())
