"""File systems whose boot sector is damaged, read through the copy the file system keeps.

NTFS and exFAT keep a second copy of their boot sector: NTFS in the volume's last sector,
exFAT as a whole backup boot region (sectors 12 to 23). The Sleuth Kit reads the first copy
only (for FAT32 it tries sector 6 itself, and for exFAT sector 12, which does not open the
volume), so a volume whose first sector was wiped, overwritten or cut (a wiper, a partition
tool gone wrong, a bad sector) shows no file system at all, though everything else of it is
intact; ``fls`` sees nothing there either. The best recovery tools (TestDisk, the commercial
suites) read the backup: so do we, and say so. Where TSK itself read a FAT32 through its
backup, :func:`first_sector_damaged` lets the volume tree say that too.

How: where a partition (or the whole image) holds no file system TSK recognises and its first
sector is not a boot sector of the kind, the backup is looked for where each kind keeps it, and
checked as the kind requires (signature, 0x55AA, sector size, a volume size that fits). The
volume is then read through :class:`BootOverlay`: the same bytes, but for its first sectors,
which come from the backup. Nothing is written anywhere: the overlay exists in memory only.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from bitwitness.stream import ImageStream, StreamInfo

_SECTOR_SIZES = (512, 1024, 2048, 4096)


@dataclass(frozen=True)
class Backup:
    """A boot sector copy found: which kind, where (byte offset in the volume) and its bytes
    (``sectors`` of them replace the volume's first ones)."""

    kind: str  #: "ntfs", "exfat", "ext"
    offset: int
    data: bytes
    at: int = 0  #: where in the volume the copy stands in for the original
    what: str = "boot sector"  #: "boot sector", "superblock"

    def describe(self, sector_size: int) -> str:
        return (f"its {self.what} is damaged: read with the backup copy at sector "
                f"{self.offset // sector_size} of the volume")


class BootOverlay(ImageStream):
    """``parent``'s bytes with those from ``at`` on replaced by ``head`` (in memory only)."""

    def __init__(self, parent: ImageStream, at: int, head: bytes) -> None:
        super().__init__(parent.size, sector_size=parent.sector_size)
        self.alignment = 1
        self._parent = parent
        self._at = at
        self._head = head

    def _read_aligned(self, offset: int, length: int) -> bytes:
        data = self._parent.pread(offset, length)
        low, high = max(offset, self._at), min(offset + len(data), self._at + len(self._head))
        if low >= high:
            return data
        out = bytearray(data)
        out[low - offset:high - offset] = self._head[low - self._at:high - self._at]
        return bytes(out)

    @property
    def info(self) -> StreamInfo:
        parent = self._parent.info
        return StreamInfo(format=f"{parent.format}-backup-boot", files=parent.files,
                          media_size=self.size, sector_size=self.sector_size,
                          details={"boot sector from": "backup"})


def find_backup(stream: ImageStream) -> Backup | None:
    """The boot sector copy of an NTFS or exFAT volume in ``stream`` whose own first sector is
    not one, or the backup superblock of an ext volume whose own is not one; None when there
    is none."""
    head = stream.pread(0, 512)
    if len(head) < 512:
        return None
    for finder in (_ntfs, _exfat, _ext):
        found = finder(stream, head)
        if found is not None:
            return found
    return None


def first_sector_damaged(stream: ImageStream, kind: str) -> bool:
    """Whether a FAT32 or exFAT volume TSK opened lacks its own boot sector (TSK then read
    the backup copy and says nothing)."""
    head = stream.pread(0, 512)
    if kind == "fat32":
        return not (head[82:90] == b"FAT32   " and _boot_signature(head))
    if kind == "exfat":
        return not (head[3:11] == b"EXFAT   " and _boot_signature(head))
    return False


def _boot_signature(sector: bytes) -> bool:
    return len(sector) >= 512 and sector[510:512] == b"\x55\xaa"


def _ntfs(stream: ImageStream, head: bytes) -> Backup | None:
    if head[3:11] == b"NTFS    " and _boot_signature(head):
        return None  # the first copy is there: whatever TSK refused, it is not this
    for sector in _SECTOR_SIZES:
        if stream.size < 2 * sector:
            continue
        at = (stream.size // sector - 1) * sector  # the last sector of the volume
        copy = stream.pread(at, sector)
        if copy[3:11] != b"NTFS    " or not _boot_signature(copy):
            continue
        per_sector = struct.unpack_from("<H", copy, 11)[0]
        total = struct.unpack_from("<Q", copy, 40)[0]
        if per_sector == sector and 0 < total < stream.size // sector:
            return Backup("ntfs", at, copy)
    return None


def _exfat(stream: ImageStream, head: bytes) -> Backup | None:
    if head[3:11] == b"EXFAT   " and _boot_signature(head):
        return None
    for sector in _SECTOR_SIZES:
        copy = stream.pread(12 * sector, 12 * sector)  # the backup boot region
        if copy[3:11] != b"EXFAT   " or not _boot_signature(copy):
            continue
        shift = copy[108]
        length = struct.unpack_from("<Q", copy, 72)[0]
        if 1 << shift == sector and 0 < length <= stream.size // sector:
            return Backup("exfat", 12 * sector, copy)
    return None


#: ext's superblock: where it lies, its size, its magic's place and value
_EXT_AT, _EXT_SIZE, _EXT_MAGIC_AT, _EXT_MAGIC = 1024, 1024, 56, 0xEF53


def _ext(stream: ImageStream, head: bytes) -> Backup | None:
    """The first backup superblock of an ext2/3/4 volume (block group 1, where ``mke2fs``
    always writes one and ``e2fsck -b`` looks first) whose primary superblock is gone."""
    del head
    primary = stream.pread(_EXT_AT, _EXT_SIZE)
    if len(primary) == _EXT_SIZE and struct.unpack_from("<H", primary, _EXT_MAGIC_AT)[0] == \
            _EXT_MAGIC:
        return None
    for block in (1024, 2048, 4096, 65536):
        first_data = 1 if block == 1024 else 0
        at = (8 * block + first_data) * block  # group 1 with the default group size
        copy = stream.pread(at, _EXT_SIZE)
        if len(copy) < _EXT_SIZE or struct.unpack_from("<H", copy, _EXT_MAGIC_AT)[0] != \
                _EXT_MAGIC:
            continue
        log_block, = struct.unpack_from("<I", copy, 24)
        per_group, = struct.unpack_from("<I", copy, 32)
        group, = struct.unpack_from("<H", copy, 90)
        blocks, = struct.unpack_from("<I", copy, 4)
        if 1024 << min(log_block, 16) == block and per_group == 8 * block and group == 1 \
                and blocks > 0 and stream.size >= at + _EXT_SIZE:
            return Backup("ext", at, copy, at=_EXT_AT, what="superblock")
    return None
