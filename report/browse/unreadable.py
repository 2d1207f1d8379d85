"""What a volume holds when no reader here opens it: the file systems, swap areas and RAID or
pool members BitWitness does not read, named by their on-disk signatures.

Why: a partition of a Linux server's disk shown as "-" (no file system) invites the reading
"empty" or "wiped", where it holds swap (memory pages, often evidence), an F2FS or ReiserFS file
system, a ZFS pool member or one disk of a software RAID. Naming what is there, and that it is
not read, tells the examiner which other tool to take; nothing is read beyond the few fixed
places the signatures lie at (bounded, whatever the volume's size).

Each signature is the one its format's own tools and libblkid (``blkid -p``, the test oracle)
look for; where a magic is short, a second field of the same header is checked with it.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from bitwitness.stream import ImageStream

#: Where a ZFS vdev label's uberblock array lies (128 KiB into the label at the volume's start)
#: and how much of it is searched (uberblocks are 1 KiB apart, or 4-8 KiB with larger ashift).
_ZFS_UBERBLOCKS = 128 * 1024
_ZFS_SPAN = 128 * 1024
_ZFS_MAGIC = 0x00BAB10C
#: Linux software RAID (md) superblock magic, at 4 KiB (v1.2), at 0 (v1.1) or near the end.
_MD_MAGIC = 0xA92B4EFC
#: Bytes of the volume's start read once for the fixed-offset signatures (ReiserFS's lies at
#: 64 KiB + 52, Reiser4's at 64 KiB, swap's at the end of the first page, pages up to 64 KiB).
_HEAD = 64 * 1024 + 64
#: VMFS's LVM header opens the volume's second MiB with this magic: read on its own, not as
#: part of the head (a MiB decoded, on an E01, for four bytes).
_VMFS_AT = 1 << 20
_VMFS_MAGIC = 0xC001D00D


def _at(head: bytes, offset: int, magic: bytes) -> bool:
    return head[offset:offset + len(magic)] == magic


def _u32(head: bytes, offset: int) -> int | None:
    return struct.unpack_from("<I", head, offset)[0] if len(head) >= offset + 4 else None


def _u16be(head: bytes, offset: int) -> int | None:
    return struct.unpack_from(">H", head, offset)[0] if len(head) >= offset + 2 else None


def _page_end(head: bytes, marks: tuple[bytes, ...]) -> bool:
    """One of ``marks`` ending the first page, for each page size Linux uses (4-64 KiB)."""
    return any(head[page - 10:page] in marks for page in (4096, 8192, 16384, 32768, 65536))


def _reiserfs(head: bytes) -> bool:
    """ReiserFS 3.5/3.6 (and with a journal elsewhere) at 64 KiB; 3.5 at 8 KiB in the oldest."""
    return any(_at(head, at + 52, magic) for at in (65536, 8192)
               for magic in (b"ReIsErFs\x00", b"ReIsEr2Fs\x00", b"ReIsEr3Fs\x00"))


def _classic_hfs(head: bytes) -> bool:
    """An HFS (not HFS+) master directory block at 1 KiB with allocation blocks, and not the
    wrapper of an HFS+ volume (which TSK would have opened)."""
    blocks = _u16be(head, 1024 + 0x12)
    return (_at(head, 1024, b"BD") and blocks is not None and blocks > 0
            and head[1024 + 0x7C:1024 + 0x7E] not in (b"H+", b"HX"))


#: Minix versions 1 and 2 by their superblock magic (14- and 30-character names).
_MINIX_MAGICS = {0x137F: 1, 0x138F: 1, 0x2468: 2, 0x2478: 2}


def _u16(head: bytes, offset: int) -> int | None:
    return struct.unpack_from("<H", head, offset)[0] if len(head) >= offset + 2 else None


def _minix(head: bytes) -> str | None:
    """A Minix superblock at 1 KiB, its version: the magic (two bytes) with the inode and
    zone bitmaps it must have, and no zone size but a block's (as libblkid checks them);
    version 3 keeps its magic at offset 24 and a power-of-two block size at 28."""
    sb = 1024
    magic = _u16(head, sb + 16)
    if magic in _MINIX_MAGICS:
        if _u16(head, sb) and _u16(head, sb + 4) and _u16(head, sb + 6) and \
                _u16(head, sb + 10) == 0:
            return f"Minix file system (version {_MINIX_MAGICS[magic]})"
        return None
    block = _u16(head, sb + 28)
    if (_u16(head, sb + 24) == 0x4D5A and _u32(head, sb) and _u16(head, sb + 6)
            and _u16(head, sb + 8) and block is not None and 512 <= block <= 65536
            and not block & (block - 1)):
        return "Minix file system (version 3)"
    return None


def _bfs(head: bytes) -> bool:
    """SCO UnixWare's boot file system: the magic 0x1BADFACE opening the volume, its data
    area's start (bytes) before its end."""
    start, end = _u32(head, 4), _u32(head, 8)
    return _u32(head, 0) == 0x1BADFACE and start is not None and end is not None and \
        0 < start <= end


#: (what it is, its signature in the volume's first :data:`_HEAD` bytes), in this order.
_AT_START: tuple[tuple[str, Callable[[bytes], bool]], ...] = (
    # partition tables The Sleuth Kit does not read (blkid's PTTYPE sgi, amiga): the disk is
    # not "without a partition table"; its partitions are for another tool
    ("SGI disk volume header (a partition table)", lambda h: _at(h, 0, b"\x0b\xe5\xa9\x41")),
    ("Amiga Rigid Disk Block (a partition table)",
     lambda h: any(_at(h, sector * 512, b"RDSK") for sector in range(16))),
    ("ReFS file system", lambda h: _at(h, 3, b"ReFS\x00\x00\x00\x00") and _at(h, 16, b"FSRS")),
    ("F2FS file system", lambda h: _u32(h, 1024) == 0xF2F52010),
    ("EROFS file system", lambda h: _u32(h, 1024) == 0xE0F5E1E2),
    ("JFS file system", lambda h: _at(h, 32768, b"JFS1")),
    ("ReiserFS file system", _reiserfs),
    ("Reiser4 file system", lambda h: _at(h, 65536, b"ReIsEr4\x00")),
    # NILFS2: revision 2 and the magic 0x3434 in the superblock at 1 KiB
    ("NILFS2 file system", lambda h: _u32(h, 1024) == 2 and h[1030:1032] == b"\x34\x34"),
    ("SquashFS file system", lambda h: h[:4] in (b"hsqs", b"sqsh")),
    ("cramfs file system", lambda h: 0x28CD3D45 in (_u32(h, 0), _u32(h, 512))),
    ("classic HFS (Mac OS Standard) file system", _classic_hfs),
    ("SCO BFS (boot file system)", _bfs),
    ("Linux software RAID (md) member", lambda h: _MD_MAGIC in (_u32(h, 4096), _u32(h, 0))),
    ("Linux swap space", lambda h: _page_end(h, (b"SWAPSPACE2", b"SWAP-SPACE"))),
    ("Linux swap space holding a hibernation image",
     lambda h: _page_end(h, (b"S1SUSPEND\x00", b"S2SUSPEND\x00", b"ULSUSPEND\x00",
                             b"LINHIB0001"))),
)


def unreadable_kind(stream: ImageStream) -> str | None:
    """What ``stream`` (a volume no reader opened) holds, by its signature, or None when no
    signature known here is found. A few small reads at fixed places."""
    head = stream.pread(0, min(stream.size, _HEAD))
    for name, found in _AT_START:
        if found(head):
            return name
    if (minix := _minix(head)) is not None:
        return minix
    if _u32(stream.pread(_VMFS_AT, 4), 0) == _VMFS_MAGIC:
        return "VMware VMFS volume"
    if _zfs(stream):
        return "ZFS pool member (vdev)"
    if _md_at_end(stream):
        return "Linux software RAID (md) member"
    return None


def _zfs(stream: ImageStream) -> bool:
    """A ZFS vdev label at the start: an uberblock whose magic (in either byte order, as the
    pool's host wrote it) opens one of the slots of the label's uberblock array."""
    area = stream.pread(_ZFS_UBERBLOCKS, _ZFS_SPAN)
    return any(_ZFS_MAGIC in (struct.unpack_from("<Q", area, at)[0],
                              struct.unpack_from(">Q", area, at)[0])
               for at in range(0, len(area) - 7, 1024))


def _md_at_end(stream: ImageStream) -> bool:
    """An md superblock of metadata 0.90 (64 KiB-aligned, 64 KiB from the end; its magic in
    the host's byte order) or 1.0 (8 KiB from the end, 4 KiB-aligned)."""
    size = stream.size
    for at in ((size & ~0xFFFF) - 0x10000, (size - 8192) & ~4095):
        if at < 0:
            continue
        word = stream.pread(at, 4)
        if len(word) == 4 and _MD_MAGIC in (struct.unpack("<I", word)[0],
                                            struct.unpack(">I", word)[0]):
            return True
    return False
