"""Builders of disks whose partitions claim a file system with garbage fields (issue 14).

Each disk has a DOS partition table (written by ``sfdisk``) and three partitions whose first
sectors carry the signatures The Sleuth Kit probes for, NTFS, FAT and ext, with the fields
around them made absurd (zero or huge sector and cluster sizes, tables past the end, a block
size of 2^40) or filled with seeded random bytes. Browsing commands must end in a listing, "no
file system", or one line: never an internal error. Run as a script to write them to a folder::

    python tests/hostile_volumes.py OUT_DIR
"""

from __future__ import annotations

import random
import struct
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

SECTOR = 512
#: Partition starts (sectors) and length; the disk is 8 MiB.
STARTS = (2048, 6144, 10240)
LENGTH = 4096
DISK_SECTORS = 16384


def _ntfs(rnd: random.Random) -> bytes:
    boot = bytearray(rnd.randbytes(SECTOR))
    boot[0:3] = b"\xeb\x52\x90"
    boot[3:11] = b"NTFS    "
    struct.pack_into("<HB", boot, 11, rnd.choice((0, 1, 513, 0xFFFF)), rnd.choice((0, 3, 255)))
    struct.pack_into("<QQQ", boot, 40, rnd.choice((0, 1 << 62)), rnd.getrandbits(64),
                     rnd.getrandbits(64))
    boot[64] = rnd.choice((0, 0x7F, 0x80, 0xE1))  # clusters per MFT record (or 2^-n bytes)
    boot[510:512] = b"\x55\xaa"
    return bytes(boot)


def _fat(rnd: random.Random) -> bytes:
    boot = bytearray(rnd.randbytes(SECTOR))
    boot[0:3] = b"\xeb\x3c\x90"
    boot[3:11] = b"MSDOS5.0"
    struct.pack_into("<HBHBH", boot, 11, rnd.choice((0, 512, 4096, 0xFFFF)),
                     rnd.choice((0, 3, 128, 255)), rnd.choice((0, 0xFFFF)),
                     rnd.choice((0, 2, 255)), rnd.choice((0, 0xFFFF)))
    boot[54:62] = b"FAT16   "
    boot[510:512] = b"\x55\xaa"
    return bytes(boot)


def _ext(rnd: random.Random) -> bytes:
    area = bytearray(rnd.randbytes(2048))
    sb = 1024
    struct.pack_into("<II", area, sb, rnd.choice((0, 1, 0xFFFFFFFF)), rnd.getrandbits(32))
    struct.pack_into("<I", area, sb + 24, rnd.choice((0, 10, 30, 0xFFFFFFFF)))  # log block size
    struct.pack_into("<III", area, sb + 32, rnd.choice((0, 1, 0xFFFFFFFF)), 0,
                     rnd.choice((0, 0xFFFFFFFF)))  # blocks, frags, inodes per group
    struct.pack_into("<H", area, sb + 56, 0xEF53)
    struct.pack_into("<I", area, sb + 76, rnd.choice((0, 1)))  # revision
    struct.pack_into("<H", area, sb + 88, rnd.choice((0, 1, 0xFFFF)))  # inode size
    return bytes(area)


def disk(path: Path, seed: int) -> Path:
    """An 8 MiB disk: a DOS table (sfdisk) and NTFS, FAT and ext partitions with hostile
    fields, made from ``seed``."""
    rnd = random.Random(seed)
    image = bytearray(DISK_SECTORS * SECTOR)
    path.write_bytes(bytes(image))
    table = "label: dos\n" + "".join(
        f"start={start}, size={LENGTH}, type={kind}\n"
        for start, kind in zip(STARTS, ("7", "6", "83"), strict=True))
    subprocess.run(["sfdisk", "-q", str(path)], input=table, text=True, check=True,
                   capture_output=True)
    image = bytearray(path.read_bytes())
    for start, build in zip(STARTS, (_ntfs, _fat, _ext), strict=True):
        data = build(rnd)
        image[start * SECTOR:start * SECTOR + len(data)] = data
        # the sectors behind the boot sector: where the tables would be, garbage too
        tail = rnd.randbytes(8 * SECTOR)
        at = start * SECTOR + 2048
        image[at:at + len(tail)] = tail
    path.write_bytes(bytes(image))
    return path


#: Builders by name: each seed gives another combination of absurd fields.
BUILDERS: dict[str, Callable[[Path], Path]] = {
    f"garbage-{seed}": (lambda folder, seed=seed: disk(folder / f"garbage-{seed}.img", seed))
    for seed in range(4)
}


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__)
        return 2
    out = Path(argv[0])
    out.mkdir(parents=True, exist_ok=True)
    for name, build in BUILDERS.items():
        print(f"{name}: {build(out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
