"""The one byte-stream contract every image, device and partition slice follows.

An :class:`ImageStream` is a read-only, seekable file-like over the *media* of an image: a raw
file, a split raw set, an E01 set, a block device, a slice of one of those. A format implements a
single method, :meth:`ImageStream._read_aligned`, and this base does the bounds, the alignment,
the position and a one-block cache. Everyone above (hashing, pytsk3, export, verification)
sees the same behaviour:

* ``read(n)`` returns at most ``n`` bytes, fewer only at the end of the media, ``b""`` past it;
* ``seek`` accepts any offset >= 0 (past the end is allowed, reads there return ``b""``);
  a negative result raises :class:`ValueError` and leaves the position unchanged;
* an error while reading leaves the position unchanged;
* ``pread(offset, n)`` reads without moving the position and is safe from several threads
  when the format's ``_read_aligned`` is (all of ours are).

Nothing here ever opens anything for writing.
"""

from __future__ import annotations

import bisect
import io
import os
import threading
from abc import abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class StreamInfo:
    """What a format knows about the image it opened, for ``info`` and the logs."""

    format: str  #: short format name: "raw", "split-raw", "ewf", "vhd", "device", ...
    files: tuple[Path, ...]  #: every container file, in order
    media_size: int
    sector_size: int = 512
    details: dict[str, Any] = field(default_factory=dict)
    #: When the container files *are* the media (raw, split raw, a device): the media byte range
    #: each file holds, in file order. ``None`` for containers, whose files hold structures.
    pieces: tuple[tuple[int, int], ...] | None = None


class ImageStream(io.RawIOBase):
    """Read-only seekable view of a media; subclasses implement :meth:`_read_aligned`."""

    #: reads handed to ``_read_aligned`` start and (except at the end) stop on this boundary
    alignment: int = 512

    def __init__(self, size: int, *, sector_size: int = 512) -> None:
        super().__init__()
        if size < 0:
            raise ValueError("media size must not be negative")
        self._size = size
        self.sector_size = sector_size
        self._pos = 0
        self._cache_lock = threading.Lock()
        self._cache: tuple[int, bytes] | None = None

    # --- what a format implements ----------------------------------------------------------

    @abstractmethod
    def _read_aligned(self, offset: int, length: int) -> bytes:
        """Return exactly ``length`` bytes at ``offset``.

        ``offset`` is a multiple of :attr:`alignment`; ``length`` is too, unless the read ends at
        the media's end. Both are within the media. Raise a :class:`~bitwitness.errors.
        BitWitnessError` (never return wrong bytes) when the data cannot be produced.
        """

    @property
    def info(self) -> StreamInfo:
        """Description of the image; formats override to add files and details."""
        return StreamInfo(format="stream", files=(), media_size=self._size,
                          sector_size=self.sector_size)

    # --- the contract ----------------------------------------------------------------------

    @property
    def size(self) -> int:
        """Media size in bytes."""
        return self._size

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def writable(self) -> bool:
        return False

    def tell(self) -> int:
        self._check_open()
        return self._pos

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        self._check_open()
        if whence == os.SEEK_SET:
            new = offset
        elif whence == os.SEEK_CUR:
            new = self._pos + offset
        elif whence == os.SEEK_END:
            new = self._size + offset
        else:
            raise ValueError(f"invalid whence: {whence}")
        if new < 0:
            raise ValueError(f"negative seek position {new}")
        self._pos = new
        return new

    def read(self, size: int | None = -1) -> bytes:
        self._check_open()
        if size is None or size < 0:
            size = max(0, self._size - self._pos)
        data = self.pread(self._pos, size)
        self._pos += len(data)
        return data

    def readall(self) -> bytes:
        return self.read(-1)

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self.read(len(view))
        view[: len(data)] = data
        return len(data)

    def pread(self, offset: int, size: int) -> bytes:
        """Read ``size`` bytes at ``offset`` without moving the position."""
        self._check_open()
        if offset < 0:
            raise ValueError(f"negative read offset {offset}")
        if size <= 0 or offset >= self._size:
            return b""
        end = min(offset + size, self._size)
        align = self.alignment
        first = offset - offset % align
        last = min(-(-end // align) * align, self._size)
        if last - first <= align:  # one block (``last`` is aligned, or the media's end)
            block = self._cached_block(first, last - first)
        else:
            block = self._read_aligned(first, last - first)
        return block[offset - first : end - first]

    def _cached_block(self, offset: int, length: int) -> bytes:
        with self._cache_lock:
            cached = self._cache
        if cached is not None and cached[0] == offset and len(cached[1]) == length:
            return cached[1]
        block = self._read_aligned(offset, length)
        with self._cache_lock:
            self._cache = (offset, block)
        return block

    def iter_blocks(self, block_size: int = 1 << 20, start: int = 0,
                    end: int | None = None) -> Iterator[bytes]:
        """Yield the media from ``start`` to ``end`` in blocks of ``block_size`` (last short).

        Formats with a faster sequential path (parallel decompression) override this.
        """
        stop = self._size if end is None else min(end, self._size)
        pos = start
        while pos < stop:
            data = self.pread(pos, min(block_size, stop - pos))
            if not data:
                break
            yield data
            pos += len(data)

    def _check_open(self) -> None:
        if self.closed:
            raise ValueError("I/O operation on closed image stream")

    def _unmade(self) -> None:
        """Mark closed a stream whose constructor is failing, once it has released what it
        opened: call this just before the constructor re-raises.

        Why: IOBase's finaliser calls ``close()`` on every object not marked closed, a half-made
        one too (it lives while the error's traceback does), and a ``close()`` that releases
        descriptors would release their numbers a second time, silently (the finaliser
        swallows errors), after other files may have been given them: the next format tried,
        another image, an output being written (``tests/test_stream_unmade.py``)."""
        io.RawIOBase.close(self)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} size={self._size}>"


class SliceStream(ImageStream):
    """A window ``[start, start + length)`` of another stream: a partition, a file's extent."""

    def __init__(self, parent: ImageStream, start: int, length: int) -> None:
        if start < 0 or length < 0 or start + length > parent.size:
            raise ValueError(
                f"slice {start}+{length} lies outside the media of {parent.size} bytes"
            )
        super().__init__(length, sector_size=parent.sector_size)
        self.alignment = 1
        self._parent = parent
        self._start = start

    def _read_aligned(self, offset: int, length: int) -> bytes:
        return self._parent.pread(self._start + offset, length)

    @property
    def info(self) -> StreamInfo:
        parent = self._parent.info
        return StreamInfo(format=f"{parent.format}-slice", files=parent.files,
                          media_size=self.size, sector_size=self.sector_size,
                          details={"start": self._start})


class ConcatStream(ImageStream):
    """Several streams end to end, read as one: a volume made of extents in several places (a
    Windows spanned volume's partitions, report/browse/ldm.py). A read that crosses from one
    piece into the next is served from both; a piece's own errors pass through unchanged."""

    def __init__(self, pieces: list[ImageStream]) -> None:
        if not pieces:
            raise ValueError("a concatenation needs at least one piece")
        self._pieces = list(pieces)
        self._starts: list[int] = []
        total = 0
        for piece in self._pieces:
            self._starts.append(total)
            total += piece.size
        super().__init__(total, sector_size=self._pieces[0].sector_size)
        self.alignment = 1

    def _read_aligned(self, offset: int, length: int) -> bytes:
        out = bytearray()
        index = bisect.bisect_right(self._starts, offset) - 1
        while length > 0 and index < len(self._pieces):
            piece, start = self._pieces[index], self._starts[index]
            data = piece.pread(offset - start, min(length, start + piece.size - offset))
            if not data:  # an empty piece
                index += 1
                continue
            out += data
            offset += len(data)
            length -= len(data)
            index += 1
        return bytes(out)

    @property
    def info(self) -> StreamInfo:
        first = self._pieces[0].info
        return StreamInfo(format=f"{first.format}-concatenation", files=first.files,
                          media_size=self.size, sector_size=self.sector_size,
                          details={"pieces": len(self._pieces)})


class BytesStream(ImageStream):
    """An in-memory media, for tests and for tiny generated images."""

    def __init__(self, data: bytes, *, sector_size: int = 512) -> None:
        super().__init__(len(data), sector_size=sector_size)
        self._data = bytes(data)

    def _read_aligned(self, offset: int, length: int) -> bytes:
        return self._data[offset : offset + length]

    @property
    def info(self) -> StreamInfo:
        return StreamInfo(format="memory", files=(), media_size=self.size,
                          sector_size=self.sector_size)
