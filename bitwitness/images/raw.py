"""Raw media: a plain image file (``.dd``, ``.raw``, ``.img``) or a block device, read-only.

Files and devices are opened through :func:`bitwitness.evidence_io.open_readonly` (``O_RDONLY``
and, where the kernel allows it, ``O_NOATIME``), so that reading evidence does not even change its
access time; ``open_readonly`` stays importable from here for the callers that always had it.
"""

from __future__ import annotations

import fcntl
import os
import stat
import struct
from pathlib import Path

from bitwitness.errors import InputError
from bitwitness.evidence_io import open_readonly
from bitwitness.stream import ImageStream, StreamInfo

BLKGETSIZE64 = 0x80081272
BLKSSZGET = 0x1268

RAW_SUFFIXES = {".dd", ".raw", ".img", ".bin", ".iso"}

#: What BitWitness appends to raw output until the acquisition finishes (``BASE.raw.partial``,
#: ``BASE.001.partial``); the files are renamed only once the acquisition is complete.
PARTIAL_SUFFIX = ".partial"


def read_at(path: Path, offset: int, length: int) -> bytes:
    """Up to ``length`` bytes of ``path`` at ``offset`` (fewer at its end; ``offset < 0``
    counts from the end), read as evidence is read: read-only, the access time untouched."""
    fd = open_readonly(path)
    try:
        if offset < 0:
            offset = max(0, fd_size(fd) + offset)
        return os.pread(fd, length, offset)
    finally:
        os.close(fd)


def fd_size(fd: int) -> int:
    """Size in bytes of an open regular file or block device."""
    mode = os.fstat(fd).st_mode
    if stat.S_ISBLK(mode):
        buf = fcntl.ioctl(fd, BLKGETSIZE64, b"\0" * 8)
        return int(struct.unpack("<Q", buf)[0])
    return os.fstat(fd).st_size


def device_sector_size(fd: int) -> int:
    """Logical sector size of a block device (512 for regular files)."""
    if stat.S_ISBLK(os.fstat(fd).st_mode):
        buf = fcntl.ioctl(fd, BLKSSZGET, b"\0" * 4)
        return int(struct.unpack("<i", buf)[0])
    return 512


def read_exact(fd: int, offset: int, length: int, path: Path) -> bytes:
    """``os.pread`` until ``length`` bytes are read; a short file is corruption of the set."""
    data = os.pread(fd, length, offset)
    if len(data) == length:
        return data
    parts = [data]
    got = len(data)
    while got < length:
        more = os.pread(fd, length - got, offset + got)
        if not more:
            raise InputError(f"{path}: file ended at {offset + got}, expected {offset + length}")
        parts.append(more)
        got += len(more)
    return b"".join(parts)


class RawStream(ImageStream):
    """A raw file or block device."""

    alignment = 1

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._fd = open_readonly(self.path)
        try:
            size = fd_size(self._fd)
            sector = device_sector_size(self._fd)
            self.is_device = stat.S_ISBLK(os.fstat(self._fd).st_mode)
        except OSError as exc:
            os.close(self._fd)
            self._unmade()
            raise InputError(f"{self.path}: cannot query size ({exc.strerror or exc})") from exc
        super().__init__(size, sector_size=sector)

    def _read_aligned(self, offset: int, length: int) -> bytes:
        return read_exact(self._fd, offset, length, self.path)

    def fileno(self) -> int:
        return self._fd

    def close(self) -> None:
        if not self.closed:
            os.close(self._fd)
        super().close()

    @property
    def info(self) -> StreamInfo:
        return StreamInfo(format="device" if self.is_device else "raw", files=(self.path,),
                          media_size=self.size, sector_size=self.sector_size,
                          pieces=((0, self.size),))


class RawFormat:
    """Raw is never detected by magic; it claims common raw suffixes and is the last resort."""

    name = "raw"

    def probe(self, path: Path, head: bytes) -> bool:
        return False

    def claims_name(self, path: Path) -> bool:
        """``x.dd``, ``x.raw``, ...; also our unfinished ``x.raw.partial``, which is raw too."""
        return Path(path.name.removesuffix(PARTIAL_SUFFIX)).suffix.lower() in RAW_SUFFIXES

    def files(self, path: Path) -> list[Path]:
        return [path]

    def open(self, path: Path) -> ImageStream:
        return RawStream(path)


FORMAT = RawFormat()
