"""A bounded chunk cache in front of an image stream, for the many small reads of a mount.

A FUSE mount is read by tools we do not control: ``mmls`` and ``fls`` jump around in 512-byte
and 4 KiB reads, the kernel's read-ahead asks for 128 KiB pieces, several of them at once from
several threads. :class:`CachedStream` serves all of them from fixed-size chunks kept in a
least-recently-used cache whose size is fixed in bytes, so memory stays bounded whatever the
image. The stream behind it is only ever read under one lock, because not every container
reader (the libyal bindings among them) may be read from two threads at once; cache hits do not
take that lock.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from bitwitness.stream import ImageStream, StreamInfo

#: Bytes per chunk: a multiple of every sector size and of EWF's 32 KiB chunks.
CHUNK_SIZE = 128 * 1024
#: Default cache size in bytes (512 chunks).
CACHE_BYTES = 64 * 1024 * 1024


class ChunkCache:
    """Least-recently-used map of chunk index -> bytes, at most ``capacity`` chunks."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("a chunk cache holds at least one chunk")
        self.capacity = capacity
        self._chunks: OrderedDict[int, bytes] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, index: int) -> bytes | None:
        with self._lock:
            data = self._chunks.get(index)
            if data is None:
                self.misses += 1
                return None
            self._chunks.move_to_end(index)
            self.hits += 1
            return data

    def put(self, index: int, data: bytes) -> None:
        with self._lock:
            self._chunks[index] = data
            self._chunks.move_to_end(index)
            while len(self._chunks) > self.capacity:
                self._chunks.popitem(last=False)

    def __len__(self) -> int:
        with self._lock:
            return len(self._chunks)


class CachedStream(ImageStream):
    """``parent`` read through a :class:`ChunkCache`; the parent stays the caller's to close."""

    def __init__(self, parent: ImageStream, *, chunk_size: int = CHUNK_SIZE,
                 cache_bytes: int = CACHE_BYTES) -> None:
        super().__init__(parent.size, sector_size=parent.sector_size)
        if chunk_size <= 0 or chunk_size % 512:
            raise ValueError("the chunk size must be a positive multiple of 512")
        self.alignment = 1
        self.chunk_size = chunk_size
        self.cache = ChunkCache(max(1, cache_bytes // chunk_size))
        self._parent = parent
        self._source_lock = threading.Lock()

    @property
    def parent(self) -> ImageStream:
        return self._parent

    @property
    def info(self) -> StreamInfo:
        return self._parent.info

    def chunk(self, index: int) -> bytes:
        """Chunk ``index`` of the media (short at the media's end), from the cache if it is there.

        Errors of the stream behind (a corrupt EWF chunk) propagate and nothing is cached.
        """
        data = self.cache.get(index)
        if data is not None:
            return data
        with self._source_lock:
            data = self.cache.get(index)  # another thread may have read it while we waited
            if data is None:
                data = self._parent.pread(index * self.chunk_size, self.chunk_size)
                self.cache.put(index, data)
        return data

    def _read_aligned(self, offset: int, length: int) -> bytes:
        size = self.chunk_size
        end = offset + length
        first, last = offset // size, (end - 1) // size
        if first == last:
            base = first * size
            return self.chunk(first)[offset - base : end - base]
        parts = []
        for index in range(first, last + 1):
            base = index * size
            data = self.chunk(index)
            parts.append(data[max(offset, base) - base : min(end, base + size) - base])
        return b"".join(parts)
