"""A bounded chunk cache in front of an image stream, for the many small reads of a mount.

A FUSE mount is read by tools we do not control: ``mmls`` and ``fls`` jump around in 512-byte
and 4 KiB reads, the kernel's read-ahead asks for 128 KiB pieces, several of them at once from
several threads. :class:`CachedStream` serves all of them from fixed-size chunks kept in a
least-recently-used cache whose size is fixed in bytes, so memory stays bounded whatever the
image. The stream behind it is only ever read under one lock, because not every container
reader (the libyal bindings among them) may be read from two threads at once; cache hits do not
take that lock.

Sequential reading (``sha256sum``, ``dd``, a hypervisor booting) is detected and read ahead on a
background thread through the stream's own ``iter_blocks``, which for EWF decompresses chunks
on several threads: the next window is in the cache before the kernel asks for it. A failed
read-ahead is dropped; the same read on demand raises the error to the reader that wants it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from bitwitness.stream import ImageStream, StreamInfo

#: Bytes per chunk: a multiple of every sector size, and EWF's usual chunk, so that a random
#: 4 KiB read decodes one EWF chunk, not four.
CHUNK_SIZE = 32 * 1024
#: Default cache size in bytes (512 chunks).
CACHE_BYTES = 64 * 1024 * 1024
#: How far the read-ahead runs ahead of a sequential reader (at most half the cache).
READ_AHEAD = 8 * 1024 * 1024
#: A read-ahead whose reader has not read for this long ends.
IDLE_SECONDS = 2.0
#: Bytes read in a row (consecutive chunks) before reading counts as sequential, unless the
#: reader starts at the media's first chunk: a small read across a chunk boundary touches two
#: chunks in a row and must not start decoding megabytes ahead.
STREAK_BYTES = 512 * 1024


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

    def peek(self, index: int) -> bool:
        """Whether chunk ``index`` is cached (without counting a hit or refreshing it)."""
        with self._lock:
            return index in self._chunks

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
                 cache_bytes: int = CACHE_BYTES, read_ahead: int = READ_AHEAD) -> None:
        super().__init__(parent.size, sector_size=parent.sector_size)
        if chunk_size <= 0 or chunk_size % 512:
            raise ValueError("the chunk size must be a positive multiple of 512")
        self.alignment = 1
        self.chunk_size = chunk_size
        self.cache = ChunkCache(max(1, cache_bytes // chunk_size))
        self._parent = parent
        self._source_lock = threading.RLock()
        self._chunks = -(-parent.size // chunk_size)
        self._window = max(0, min(read_ahead, cache_bytes // 2) // chunk_size)
        self._ahead_lock = threading.Lock()
        self._ahead_cond = threading.Condition(self._ahead_lock)
        self._ahead_range = (0, 0)  #: chunks the read-ahead in progress is producing
        self._expected = 0  #: the chunk a sequential reader asks for next
        self._streak = 0  #: consecutive chunks read so far
        self._streak_needed = max(1, STREAK_BYTES // chunk_size)
        self._ahead_stop = False  #: tells the read-ahead to end (the reader jumped away)
        self._ahead: threading.Thread | None = None

    @property
    def parent(self) -> ImageStream:
        return self._parent

    @property
    def source_lock(self) -> threading.RLock:
        """The lock every read of the stream behind is made under (re-entrant). A caller that
        reaches the same reader another way (an L01's files through the libewf handle that
        also reads its media) holds it too, so that the reader never serves two threads."""
        return self._source_lock

    def stop_read_ahead(self, timeout: float | None = None) -> None:
        """End the read-ahead in progress, if any, and wait for it (tests, closing)."""
        with self._ahead_cond:
            self._ahead_stop = True
            self._ahead_cond.notify_all()
            thread = self._ahead
        if thread is not None:
            thread.join(timeout)

    @property
    def info(self) -> StreamInfo:
        return self._parent.info

    def chunk(self, index: int) -> bytes:
        """Chunk ``index`` of the media (short at the media's end), from the cache if it is there.

        Errors of the stream behind (a corrupt EWF chunk) propagate and nothing is cached.
        """
        data = self.cache.get(index)
        self._follow(index)
        if data is None:
            data = self._from_read_ahead(index)
        if data is not None:
            return data
        with self._source_lock:
            data = self.cache.get(index)  # another thread may have read it while we waited
            if data is None:
                data = self._parent.pread(index * self.chunk_size, self.chunk_size)
                self.cache.put(index, data)
        return data

    def _follow(self, index: int) -> None:
        """Note a read of chunk ``index``: start the read-ahead when reading turns sequential,
        stop it when the reader jumps away from it, and let it run on as the reader advances."""
        if not self._window:
            return
        with self._ahead_cond:
            in_step = self._expected - 1 <= index <= self._expected + 1
            self._streak = self._streak + 1 if in_step else 0
            sequential = index == 0 or self._streak >= self._streak_needed
            self._expected = index + 1
            self._ahead_cond.notify_all()  # a read-ahead waiting for the reader may go on
            if self._ahead is not None and self._ahead.is_alive():
                low, high = self._ahead_range
                if not low - 1 <= index <= high + self._window:
                    self._ahead_stop = True
                return
            if not sequential or index + 1 >= self._chunks:
                return
            self._ahead_stop = False
            self._ahead_range = (index + 1, index + 1)
            self._ahead = threading.Thread(target=self._read_ahead, args=(index + 1,),
                                           name="mount-read-ahead", daemon=True)
            self._ahead.start()

    def _from_read_ahead(self, index: int) -> bytes | None:
        """Chunk ``index`` once the read-ahead in progress has produced it (rather than decoding
        it a second time), or None when the read-ahead will not produce it soon."""
        with self._ahead_cond:
            while True:
                low, high = self._ahead_range
                running = self._ahead is not None and self._ahead.is_alive()
                if not running or self._ahead_stop or not low <= index < high + self._window:
                    return None
                if self.cache.peek(index):
                    break
                self._ahead_cond.wait(timeout=1.0)
        return self.cache.get(index)

    def _may_go_on(self, index: int) -> bool:
        """Wait while the read-ahead is a window ahead of the reader; False when it should stop
        (the reader jumped away, or has not read for :data:`IDLE_SECONDS`)."""
        with self._ahead_cond:
            waited = 0.0
            while not self._ahead_stop and index - self._expected > self._window:
                if waited >= IDLE_SECONDS:
                    return False
                self._ahead_cond.wait(timeout=0.5)
                waited += 0.5
            return not self._ahead_stop

    def _read_ahead(self, start: int) -> None:
        """Cache the media from chunk ``start`` on, through the stream's ``iter_blocks``, staying
        at most a window ahead of the reader.

        One ``iter_blocks`` runs for the whole sequential read, so that a stream which decodes
        ahead on its own (EWF's parallel scan) keeps doing so. The source lock is taken per
        block, so that a reader who needs another part of the media waits for one block at most.
        (A stream whose ``iter_blocks`` keeps working between blocks is one whose reads are
        thread-safe in the first place.)
        """
        size = self.chunk_size
        blocks = self._parent.iter_blocks(size, start * size, self.size)
        index, pending = start, b""
        try:
            while self._may_go_on(index):
                with self._source_lock:
                    block = next(blocks, None)
                if block is None:
                    break
                view = memoryview(block)
                if pending:  # complete the chunk the previous block began
                    take = size - len(pending)
                    pending, view = pending + bytes(view[:take]), view[take:]
                    if len(pending) < size:
                        continue
                    self.cache.put(index, pending)
                    index, pending = index + 1, b""
                whole = len(view) - len(view) % size
                for at in range(0, whole, size):  # one copy per byte, no regrouping
                    self.cache.put(index, bytes(view[at : at + size]))
                    index += 1
                pending = bytes(view[whole:])
                if pending and index * size + len(pending) >= self.size:
                    self.cache.put(index, pending)  # the media's short last chunk
                    index, pending = index + 1, b""
                with self._ahead_cond:
                    self._ahead_range = (start, index)
                    self._ahead_cond.notify_all()
        except Exception:  # speculative: the same read on demand raises it to its reader
            return
        finally:
            close = getattr(blocks, "close", None)
            if close is not None:
                with self._source_lock:
                    close()
            with self._ahead_cond:
                self._ahead_range = (0, 0)
                self._ahead_cond.notify_all()

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
