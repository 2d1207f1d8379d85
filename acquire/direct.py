"""Sector-exact reads that bypass the page cache (``O_DIRECT``), for reading around bad sectors.

Why: a buffered read of a block device goes through its page cache, which fills whole pages
and readahead windows; one unreadable sector then fails the whole page (8 sectors) or window
(128 and more), and those readable neighbours would be zero-filled. With ``O_DIRECT`` the read
reaches the drive with exactly the offset and length asked for, so narrowing down a failed
block finds the very sectors the drive cannot read, as ``dd iflag=direct`` or ddrescue do.

``O_DIRECT`` needs the buffer, offset and length aligned to the logical sector size: reads go
through one page-aligned anonymous mapping. Where a source cannot do direct I/O (some file
systems refuse ``O_DIRECT`` with EINVAL, a file's size may end mid-sector), :class:`DirectReader`
says so (``available`` false, or ``None`` from :meth:`DirectReader.read`) and the caller reads
through its ordinary descriptor instead.
"""

from __future__ import annotations

import contextlib
import errno
import mmap
import os
import threading
from pathlib import Path

#: The aligned buffer: the most one direct read transfers (longer reads are split).
DIRECT_BUFFER = 1 << 20


class DirectReader:
    """Reads of ``path`` with ``O_DIRECT``; raises ``OSError`` as the drive reports it."""

    def __init__(self, path: str | Path, sector_size: int, size: int) -> None:
        self.sector_size = max(sector_size, 512)
        self.size = size
        self._fd: int | None = None
        self._buffer: mmap.mmap | None = None
        self._lock = threading.Lock()
        flags = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_DIRECT", 0)
        if not getattr(os, "O_DIRECT", 0):
            return
        try:
            try:
                self._fd = os.open(path, flags | getattr(os, "O_NOATIME", 0))
            except PermissionError:
                self._fd = os.open(path, flags)
        except OSError:  # EINVAL: this file system cannot do direct I/O
            self._fd = None
            return
        self._buffer = mmap.mmap(-1, DIRECT_BUFFER)

    @property
    def available(self) -> bool:
        return self._fd is not None

    def read(self, offset: int, length: int) -> bytes | None:
        """Exactly ``length`` bytes at ``offset``; ``None`` when this read cannot be done with
        direct I/O (unaligned, past a partial last sector, or refused): read it buffered.

        Raises ``OSError`` (EIO, ENODEV, ...) when the drive fails the read."""
        if self._fd is None or self._buffer is None:
            return None
        ss = self.sector_size
        if offset % ss or length % ss or offset + length > self.size - self.size % ss:
            return None
        fd, buffer = self._fd, self._buffer
        own = self._lock.acquire(blocking=False)
        if not own:  # another read holds the buffer (it may hang in a stalled drive): a fresh one
            buffer = mmap.mmap(-1, -(-min(length, DIRECT_BUFFER) // mmap.PAGESIZE)
                               * mmap.PAGESIZE)
        try:
            return self._read_locked(fd, buffer, offset, length)
        except OSError as exc:
            if exc.errno != errno.EINVAL:
                raise
            self._fd = None  # direct I/O refused after all: buffered from now on
            with contextlib.suppress(OSError):
                os.close(fd)
            return None
        finally:
            if own:
                self._lock.release()
            else:
                buffer.close()

    def _read_locked(self, fd: int, buffer: mmap.mmap, offset: int, length: int) -> bytes | None:
        out = bytearray()
        with memoryview(buffer) as view:
            while len(out) < length:
                want = min(length - len(out), len(buffer))
                got = os.preadv(fd, [view[:want]], offset + len(out))
                if got <= 0 or got % self.sector_size:
                    return None  # short at the end of the device: the caller decides
                out += view[:got]
        return bytes(out)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._buffer is not None:
            self._buffer.close()
            self._buffer = None
