"""Reading E01 sets: a read-only :class:`ImageStream` with per-chunk checks and a parallel scan.

Random access (pytsk3, export) goes through ``pread``: chunk-aligned reads, one ``os.pread`` per
contiguous run of chunks, decoded chunks kept in a small LRU cache. Sequential verification goes
through :meth:`EwfImage.scan`: spans of many chunks are read with one ``os.pread`` and decoded in a
thread pool (isal and hashlib release the GIL), in order. A chunk that fails its check is never
returned as data: ``read`` raises :class:`CorruptImageError` (or yields zeros when the image was
opened with ``zero_bad_chunks=True``) and ``scan`` yields zeros plus a :class:`ChunkProblem`.
"""

from __future__ import annotations

import bisect
import os
import threading
import uuid
from array import array
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from bitwitness.errors import CorruptImageError
from bitwitness.ewf import libdeflate
from bitwitness.ewf import structures as st
from bitwitness.ewf.chunks import ChunkDecodeError, decode_chunk, zeros_of
from bitwitness.ewf.headers import acquired_time, format_name, header_values
from bitwitness.ewf.layout import ChunkGroup, SectionProblem, load_layout, read_entries
from bitwitness.images.raw import open_readonly
from bitwitness.stream import ImageStream, StreamInfo
from bitwitness.threadpriority import step_aside

if TYPE_CHECKING:
    from concurrent.futures import Future

#: Stored bytes read per ``os.pread`` (and decoded per worker task) during a scan.
SCAN_SPAN = 4 << 20
CACHE_CHUNKS = 64
#: ... and at most this many bytes of them (a crafted image may declare 16 MiB chunks).
CACHE_BYTES = 16 << 20
#: Decoded bytes a scan keeps in flight at most (runs submitted ahead of the consumer).
SCAN_WINDOW_BYTES = 64 << 20
MAX_OPEN_FILES = 64
#: Table entries (4 bytes each) of recently used groups kept in memory: a group's entries are
#: read again from its table when one of its chunks is first needed (see
#: :mod:`bitwitness.ewf.layout`). 256 Ki entries (1 MiB) hold 4 of ewfacquire's 65 534-entry
#: tables or 16 of our writer's largest (16 375), more than a scan has in flight (~2 000 chunks);
#: a group evicted and needed again costs one ``pread`` of its entries.
ENTRY_CACHE = 1 << 18
#: A stored chunk is at most the chunk size + this (Adler-32 trailer, zlib overhead, padding).
MAX_CHUNK_OVERHEAD = 1024
#: A compressed chunk this small that decodes to zeros is remembered (stored bytes -> zeros):
#: decoding is a function of the stored bytes, so a later chunk whose stored bytes are
#: identical decodes to the same zeros, and is given them without inflating again. Why: a third
#: or more of a disk is zeros, every such chunk stored alike by one writer (~50 bytes of
#: deflate for 32 KiB): inflating each costs ~0.5 s per GiB of zeros for the same answer.
ZERO_MEMO_MAX = 4096


_T = TypeVar("_T")

#: A SMART header's compression letter (``r``) -> the volume level it stands for (§12.1).
_SMART_LEVELS = {"n": 0, "f": 1, "b": 2}


def default_workers() -> int:
    """Decoding threads for a scan: one core is left to the hashing threads that consume it."""
    return max(1, min(8, (os.cpu_count() or 2) - 1))


@dataclass(frozen=True)
class ChunkProblem:
    """A chunk that fails its check: where it is in the media and in the container file."""

    chunk: int
    media_offset: int
    first_sector: int
    last_sector: int
    segment: Path
    file_offset: int
    reason: str


@dataclass(frozen=True)
class ScanBlock:
    """A run of media bytes from :meth:`EwfImage.scan`; ``problem`` set means ``data`` is zeros."""

    offset: int
    data: bytes
    problem: ChunkProblem | None = None


@dataclass(frozen=True)
class _IntoRun:
    """A run being decoded into one buffer (:meth:`EwfImage._decode_run_into`): its stored
    bytes from file offset ``span_start``, the output, and libdeflate's inflater into it."""

    span: bytes
    span_start: int
    out: bytearray
    into: libdeflate.Into


@dataclass(frozen=True)
class _Where:
    segment: int
    start: int
    end: int
    compressed: bool


class EwfImage(ImageStream):
    """The media of an E01 set; open it with :func:`open_ewf`."""

    def __init__(self, path: Path, *, allow_incomplete: bool = False,
                 zero_bad_chunks: bool = False) -> None:
        layout = load_layout(Path(path), allow_incomplete=allow_incomplete)
        volume = layout.volume
        assert volume is not None
        self.segments: list[Path] = layout.segments
        self.volume = volume
        self.chunk_size = volume.chunk_size
        self.bytes_per_sector = volume.bytes_per_sector
        self.sectors_per_chunk = volume.sectors_per_chunk
        self.complete = layout.complete
        self.incomplete_reason = layout.incomplete_reason
        #: an unfinished set's missing sectors (first, last), as ewfverify names them
        self.missing_sectors: tuple[int, int] | None = layout.missing_sectors
        self.zero_bad_chunks = zero_bad_chunks
        self.section_problems: list[SectionProblem] = layout.problems
        self.read_problems: list[ChunkProblem] = []
        self.stored_hashes: dict[str, str] = dict(layout.hashes)
        self.error_ranges: list[tuple[int, int]] = [
            (first, count) for first, count in layout.error_ranges]
        fields = layout.header2 or layout.header or {}
        self.header_values: dict[str, str] = header_values(fields)
        self.acquired: datetime | None = acquired_time(fields)
        self.smart = volume.smart
        self.format_name = format_name(layout.header2, layout.header, layout.header_style,
                                       smart=volume.smart)
        level = volume.compression_level
        if volume.smart:  # no level in a SMART volume; the header's ``r`` letter says (§12.1)
            level = _SMART_LEVELS.get(fields.get("r", "").strip().lower(), -1)
        self.compression = st.COMPRESSION_LEVEL_NAMES.get(level, "unknown")
        self.media_type = st.MEDIA_TYPE_NAMES.get(volume.media_type,
                                                  f"type 0x{volume.media_type:02x}")
        self.physical = bool(volume.media_flags & st.FLAG_PHYSICAL)
        #: None for SMART, whose volume section has no set identifier
        self.guid = None if volume.smart else str(uuid.UUID(bytes_le=volume.guid))
        self._groups: list[ChunkGroup] = layout.groups
        self._firsts = [g.first_chunk for g in layout.groups]
        stored = layout.chunk_total
        media = volume.media_size
        if self.complete:
            needed = -(-media // self.chunk_size)
            if stored < needed:
                raise CorruptImageError(
                    f"the tables list {stored} chunks but the media of {media} bytes needs "
                    f"{needed}", path=self.segments[0])
            size = media
        else:
            size = min(media, stored * self.chunk_size) if media else stored * self.chunk_size
        self.chunk_count = -(-size // self.chunk_size)
        self._init_caches()
        super().__init__(size, sector_size=self.bytes_per_sector)
        self.alignment = self.chunk_size

    def _init_caches(self) -> None:
        """Descriptors, decoded chunks and table entries kept between reads (all bounded)."""
        self._fds: OrderedDict[int, int] = OrderedDict()
        self._fd_lock = threading.Lock()
        self._fd_users: dict[int, int] = {}
        self._lru: OrderedDict[int, bytes] = OrderedDict()
        self._lru_bytes = 0
        self._lru_lock = threading.Lock()
        #: group index -> its entries, most recently used last (bounded by ENTRY_CACHE)
        self._entry_cache: OrderedDict[int, array[int]] = OrderedDict()
        self._entry_count = 0
        self._entry_lock = threading.Lock()
        #: (stored bytes, media bytes) of a full-size compressed chunk that decoded to zeros
        self._zero_memo: tuple[bytes, bytes] | None = None

    @property
    def media_size(self) -> int:
        return self.size

    # --- locating and decoding chunks ------------------------------------------------------

    def _group_of(self, chunk: int) -> int:
        return bisect.bisect_right(self._firsts, chunk) - 1

    def _entries(self, g: int) -> array[int]:
        """Group ``g``'s table entries, from the cache or read (and checked) again."""
        with self._entry_lock:
            entries = self._entry_cache.get(g)
            if entries is not None:
                self._entry_cache.move_to_end(g)
                return entries
        group = self._groups[g]
        entries = self._with_fd(group.segment, lambda fd: read_entries(
            fd, group, self.segments[group.segment]))
        with self._entry_lock:
            if g not in self._entry_cache:
                self._entry_cache[g] = entries
                self._entry_count += len(entries)
            while self._entry_count > ENTRY_CACHE and len(self._entry_cache) > 1:
                self._entry_count -= len(self._entry_cache.popitem(last=False)[1])
        return entries

    def _wheres(self, first: int, last: int) -> list[_Where]:
        """Where chunks ``first..last`` (one group) lie."""
        g = self._group_of(first)
        group = self._groups[g]
        entries = self._entries(g)
        base, mask, flag = group.base, st.OFFSET_MASK, st.COMPRESSED_FLAG
        out = []
        for i in range(first - group.first_chunk, last - group.first_chunk + 1):
            entry = entries[i]
            end = (base + (entries[i + 1] & mask)) if i + 1 < group.count else group.end
            out.append(_Where(group.segment, base + (entry & mask), end, bool(entry & flag)))
        return out

    def _expected(self, chunk: int) -> int:
        return min(self.chunk_size, self.size - chunk * self.chunk_size)

    def _pread(self, segment: int, length: int, offset: int) -> bytes:
        """``os.pread`` on a segment (see :meth:`_with_fd`)."""
        return self._with_fd(segment, lambda fd: os.pread(fd, length, offset))

    def _with_fd(self, segment: int, use: Callable[[int], _T]) -> _T:
        """``use(fd)`` on a segment's descriptor; descriptors are cached, and one in use is
        never closed."""
        with self._fd_lock:
            fd = self._fds.get(segment)
            if fd is None:
                fd = open_readonly(self.segments[segment])
                self._fds[segment] = fd
            self._fds.move_to_end(segment)
            self._fd_users[segment] = self._fd_users.get(segment, 0) + 1
        try:
            return use(fd)
        finally:
            with self._fd_lock:
                self._fd_users[segment] -= 1
                idle = [s for s in self._fds if not self._fd_users.get(s)]
                for old in idle[: max(0, len(self._fds) - MAX_OPEN_FILES)]:
                    os.close(self._fds.pop(old))

    def _problem(self, chunk: int, where: _Where | None, reason: str) -> ChunkProblem:
        first = chunk * self.sectors_per_chunk
        count = max(1, self._expected(chunk) // self.bytes_per_sector)
        segment = self.segments[where.segment if where else 0]
        return ChunkProblem(chunk, chunk * self.chunk_size, first, first + count - 1, segment,
                            where.start if where else 0, reason)

    def _decode_run(self, first: int, last: int
                    ) -> list[tuple[bytes | memoryview, ChunkProblem | None]]:
        """Decode chunks ``first..last`` (inclusive, one group), reading them with one
        ``os.pread`` when their stored bytes lie together.

        What is read is bounded by the chunks themselves: a chunk the table gives more than
        ``chunk size + MAX_CHUNK_OVERHEAD`` bytes is damaged and never read, and when a damaged
        table scatters the chunks (a span longer than the run could hold), each is read alone.
        """
        wheres = self._wheres(first, last)
        limit = self.chunk_size + MAX_CHUNK_OVERHEAD
        sane = [w for w in wheres if 0 < w.end - w.start <= limit]
        span_start = min((w.start for w in sane), default=0)
        span_end = max((w.end for w in sane), default=0)
        if span_end - span_start > limit * len(wheres):
            return [self._decode_alone(k, w, limit)
                    for k, w in zip(range(first, last + 1), wheres, strict=True)]
        out: list[tuple[bytes | memoryview, ChunkProblem | None]] = []
        try:
            span = memoryview(self._pread(wheres[0].segment, span_end - span_start,
                                          span_start))
        except OSError as exc:
            reason = f"cannot read the segment ({exc.strerror or exc})"
            return [(bytes(self._expected(k)), self._problem(k, w, reason))
                    for k, w in zip(range(first, last + 1), wheres, strict=True)]
        for k, w in zip(range(first, last + 1), wheres, strict=True):
            out.append(self._decode_in(k, w, limit, span, span_start))
        return out

    def _decode_run_into(self, first: int, last: int) -> bytearray | None:
        """The media of chunks ``first..last`` (one group) decoded into one buffer, each
        fastest-compressed chunk inflated by libdeflate straight into its place; None where
        any chunk has a problem to report or the table scatters the chunks, which
        :meth:`_decode_run` then decodes (and names) chunk by chunk.

        Why: a scan hands its runs to hashers and writers whole. Decoded chunk by chunk, each
        chunk's bytes were copied three times on the way (the stream out of the span, the
        output out of libdeflate's buffer, the run joined), and four Python calls a chunk
        were a tenth of a one-core verification. Every chunk is checked as
        :meth:`_decode_in` checks it; what libdeflate does not inflate to exactly the chunk's
        size goes through :func:`decode_chunk`, and a chunk that fails there sends the whole
        run the general way."""
        wheres = self._wheres(first, last)
        limit = self.chunk_size + MAX_CHUNK_OVERHEAD
        span_start = wheres[0].start
        previous = span_start
        for w in wheres:  # in file order, one after another: the layout every writer makes
            if w.start != previous or not 0 < w.end - w.start <= limit:
                return None
            previous = w.end
        try:
            span = self._pread(wheres[0].segment, previous - span_start, span_start)
        except OSError:
            return None
        if len(span) < previous - span_start:
            return None
        out = bytearray(sum(self._expected(k) for k in range(first, last + 1)))
        run = _IntoRun(span, span_start, out, libdeflate.Into(span, out, self.chunk_size))
        try:
            at = 0
            for k, w in zip(range(first, last + 1), wheres, strict=True):
                expected = self._expected(k)
                if not self._chunk_into(run, k, w, at, expected):
                    return None
                at += expected
        finally:
            run.into.close()
        return out

    def _chunk_into(self, run: _IntoRun, k: int, w: _Where, at: int, expected: int) -> bool:
        """Chunk ``k`` decoded into ``run.out[at:at + expected]`` (zeros there already);
        False where it does not decode."""
        full = self.chunk_size
        start, end = w.start - run.span_start, w.end - run.span_start
        stored = memoryview(run.span)[start:end]
        whole = w.compressed and expected == full and k != self.chunk_count - 1
        if whole:
            if self._memo_zeros(stored):
                return True  # the very stream that decoded to zeros: zeros, already there
            if libdeflate.fastest_stream(stored[:3]) and \
                    run.into.inflate(start, end, at, expected):
                self._remember_zeros(stored, memoryview(run.out)[at:at + expected])
                return True
        try:
            data = decode_chunk(stored, w.compressed, expected,
                                allow_longer=k == self.chunk_count - 1, limit=full)
        except ChunkDecodeError:
            return False
        run.out[at:at + expected] = data
        if whole:
            self._remember_zeros(stored, data)
        return True

    def _memo_zeros(self, stored: bytes | memoryview) -> bool:
        """Whether ``stored`` (a whole chunk's compressed bytes) are the very bytes the zero
        memo holds, which decoded to zeros: decoding is a function of the stored bytes."""
        memo = self._zero_memo
        return memo is not None and len(stored) == len(memo[0]) and stored == memo[0]

    def _remember_zeros(self, stored: bytes | memoryview, data: bytes | memoryview) -> None:
        """Make ``stored`` the zero memo where it is the first small whole chunk seen that
        decoded (to ``data``) to zeros."""
        if self._zero_memo is None and len(stored) <= ZERO_MEMO_MAX and \
                zeros_of(self.chunk_size) == data:
            self._zero_memo = (bytes(stored), bytes(self.chunk_size))

    def _decode_alone(self, chunk: int, where: _Where, limit: int
                      ) -> tuple[bytes | memoryview, ChunkProblem | None]:
        if not 0 < where.end - where.start <= limit:
            return self._decode_in(chunk, where, limit, memoryview(b""), where.start)
        try:
            stored = memoryview(self._pread(where.segment, where.end - where.start,
                                            where.start))
        except OSError as exc:
            reason = f"cannot read the segment ({exc.strerror or exc})"
            return bytes(self._expected(chunk)), self._problem(chunk, where, reason)
        return self._decode_in(chunk, where, limit, stored, where.start)

    def _decode_in(self, k: int, w: _Where, limit: int, span: memoryview, span_start: int
                   ) -> tuple[bytes | memoryview, ChunkProblem | None]:
        """Decode chunk ``k`` from ``span`` (the stored bytes from file offset ``span_start``)."""
        expected = self._expected(k)
        if w.end <= w.start or w.start < span_start:
            reason = "table offsets do not increase (damaged table)"
        elif w.end - w.start > limit:
            reason = f"the table gives this chunk {w.end - w.start} bytes (damaged table)"
        elif w.end - span_start > len(span):
            reason = "the segment file ends inside this chunk (truncated)"
        else:
            stored = span[w.start - span_start:w.end - span_start]
            whole = w.compressed and expected == self.chunk_size
            memo = self._zero_memo
            if whole and memo is not None and self._memo_zeros(stored):
                return memo[1], None  # the very bytes that decoded to zeros: zeros again
            try:
                data = decode_chunk(stored, w.compressed, expected,
                                    allow_longer=k == self.chunk_count - 1,
                                    limit=self.chunk_size)
            except ChunkDecodeError as exc:
                reason = str(exc)
            else:
                if whole:
                    self._remember_zeros(stored, data)
                return data, None
        return bytes(expected), self._problem(k, w, reason)

    def _runs(self, first: int, last: int, span: int) -> Iterator[tuple[int, int]]:
        """Split chunks ``first..last`` into runs within one group of about ``span`` bytes."""
        k = first
        while k <= last:
            group = self._groups[self._group_of(k)]
            group_last = min(last, group.first_chunk + group.count - 1)
            per_chunk = max(1, self.chunk_size)
            stop = min(group_last, k + max(1, span // per_chunk) - 1)
            yield k, stop
            k = stop + 1

    # --- the ImageStream contract ----------------------------------------------------------

    def _read_aligned(self, offset: int, length: int) -> bytes:
        first = offset // self.chunk_size
        last = (offset + length - 1) // self.chunk_size
        with self._lru_lock:
            cached = {k: self._lru[k] for k in range(first, last + 1) if k in self._lru}
        missing = [k for k in range(first, last + 1) if k not in cached]
        if missing:
            for run_first, run_last in self._runs(missing[0], missing[-1], SCAN_SPAN):
                for k, (data, problem) in zip(range(run_first, run_last + 1),
                                              self._decode_run(run_first, run_last),
                                              strict=True):
                    if problem is not None:
                        self._bad_chunk(problem)
                    cached[k] = bytes(data)
                    if problem is None:
                        self._remember(k, cached[k])
        parts = [cached[k] for k in range(first, last + 1)]
        return b"".join(parts)

    def _remember(self, chunk: int, data: bytes) -> None:
        with self._lru_lock:
            if chunk in self._lru:
                self._lru_bytes -= len(self._lru[chunk])
            self._lru[chunk] = data
            self._lru_bytes += len(data)
            self._lru.move_to_end(chunk)
            while len(self._lru) > CACHE_CHUNKS or (self._lru_bytes > CACHE_BYTES
                                                     and len(self._lru) > 1):
                self._lru_bytes -= len(self._lru.popitem(last=False)[1])

    def _bad_chunk(self, problem: ChunkProblem) -> None:
        with self._lru_lock:
            if problem not in self.read_problems:
                self.read_problems.append(problem)
        if not self.zero_bad_chunks:
            raise CorruptImageError(
                f"chunk {problem.chunk} is damaged: {problem.reason}", path=problem.segment,
                offset=problem.file_offset, media_offset=problem.media_offset,
                sectors=(problem.first_sector, problem.last_sector))

    def scan(self, *, workers: int | None = None, start: int = 0,
             end: int | None = None) -> Iterator[ScanBlock]:
        """Yield the media in order, every chunk checked; bad chunks come as zeros + problem.

        ``start``/``end`` (bytes, chunk-aligned start) limit the scan, e.g. to re-hash the part of
        an interrupted image that :meth:`EwfWriter.resume` keeps.
        """
        stop = self.size if end is None else min(end, self.size)
        if stop <= start:
            return
        first = start // self.chunk_size
        last = (stop - 1) // self.chunk_size
        workers = workers or default_workers()
        run_bytes = max(SCAN_SPAN, self.chunk_size)
        ahead = max(1, min(2 * workers, SCAN_WINDOW_BYTES // run_bytes))
        from concurrent.futures import ThreadPoolExecutor  # a scan's, not every opening's (info)

        window: deque[Future[list[ScanBlock]]] = deque()
        # the workers inflate beside the hashing threads: they step aside for MD5's
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ewf-scan",
                                  initializer=step_aside)
        try:
            for run in self._runs(first, last, SCAN_SPAN):
                window.append(pool.submit(self._scan_run, *run))
                if len(window) >= ahead:
                    yield from self._trim(window.popleft().result(), start, stop)
            while window:
                yield from self._trim(window.popleft().result(), start, stop)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    @staticmethod
    def _trim(blocks: list[ScanBlock], start: int, stop: int) -> Iterator[ScanBlock]:
        for block in blocks:
            lo = max(start, block.offset)
            hi = min(stop, block.offset + len(block.data))
            if lo >= hi:
                continue
            if lo == block.offset and hi == block.offset + len(block.data):
                yield block
            else:
                yield ScanBlock(lo, block.data[lo - block.offset:hi - block.offset],
                                block.problem)

    def _scan_run(self, first: int, last: int) -> list[ScanBlock]:
        whole = self._decode_run_into(first, last)
        if whole is not None:
            return [ScanBlock(first * self.chunk_size, whole)]  # type: ignore[arg-type]
        blocks: list[ScanBlock] = []
        good: list[bytes | memoryview] = []
        good_start = first * self.chunk_size
        for k, (data, problem) in zip(range(first, last + 1), self._decode_run(first, last),
                                      strict=True):
            if problem is None:
                good.append(data)
                continue
            if good:
                blocks.append(ScanBlock(good_start, b"".join(good)))
                good = []
            blocks.append(ScanBlock(k * self.chunk_size, bytes(data), problem))
            good_start = (k + 1) * self.chunk_size
        if good:
            blocks.append(ScanBlock(good_start, b"".join(good)))
        return blocks

    def iter_blocks(self, block_size: int = 1 << 20, start: int = 0,
                    end: int | None = None) -> Iterator[bytes]:
        """Sequential reading through the parallel scan; a bad chunk raises (or yields zeros)."""
        if start % self.chunk_size:
            yield from super().iter_blocks(block_size, start, end)
            return
        for block in self.scan(start=start, end=end):
            if block.problem is not None:
                self._bad_chunk(block.problem)
            yield block.data

    # --- description -----------------------------------------------------------------------

    @property
    def info(self) -> StreamInfo:
        details: dict[str, Any] = {
            "format": self.format_name, "complete": self.complete,
            "bytes_per_sector": self.bytes_per_sector,
            "sectors_per_chunk": self.sectors_per_chunk, "chunk_count": self.chunk_count,
            "compression": self.compression, "media_type": self.media_type,
            "physical": self.physical, "guid": self.guid, "header_values": self.header_values,
            "stored_hashes": self.stored_hashes, "error_ranges": self.error_ranges,
        }
        return StreamInfo(format="ewf", files=tuple(self.segments), media_size=self.size,
                          sector_size=self.bytes_per_sector, details=details)

    def close(self) -> None:
        with self._fd_lock:
            for fd in self._fds.values():
                os.close(fd)
            self._fds.clear()
        super().close()


def open_ewf(path: Path, *, allow_incomplete: bool = False,
             zero_bad_chunks: bool = False) -> EwfImage:
    """Open the E01 set that ``path`` (any of its segments) belongs to, read-only.

    Raises :class:`~bitwitness.errors.IncompleteImageError` for an unfinished set unless
    ``allow_incomplete``, :class:`~bitwitness.errors.MissingSegmentError` for a gap,
    :class:`~bitwitness.errors.CorruptImageError` for damage that cannot be worked around, and
    :class:`~bitwitness.errors.UnsupportedFormatError` for Ex01/L01 (see
    :mod:`bitwitness.images.ewf` for the pyewf fallback).
    """
    return EwfImage(Path(path), allow_incomplete=allow_incomplete,
                    zero_bad_chunks=zero_bad_chunks)
