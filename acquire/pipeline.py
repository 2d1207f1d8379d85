"""The acquisition pipeline: reader thread -> hash threads + encoder pool -> in-order writer.

Why this shape: on a few cores the work is reading (I/O), hashing (one thread per algorithm,
hashlib releases the GIL) and compressing (isal releases the GIL). The reader reads blocks of
whole chunks (with retries, zero-fill) and hands each block to the hashers and to a bounded queue;
the calling thread submits blocks to the encoder pool and writes the encoded results strictly in
media order. Every queue is bounded, so memory stays at a few tens of MiB whatever the media size.

Stopping: setting ``stop`` makes the reader end after its current block; blocks already read are
still written, so the output always ends on a block boundary that the caller records for resume.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections import deque
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

from bitwitness.acquire.retry import StopRequested, merge_ranges, read_with_retries
from bitwitness.acquire.sinks import Sink
from bitwitness.hashing import ThreadedHasher
from bitwitness.progress import ProgressTask

DEFAULT_BLOCK = 1 << 20
_END = object()


class PipelineSource(Protocol):
    """What the pipeline reads from (a :class:`Source` or a :class:`FaultySource`)."""

    @property
    def size(self) -> int: ...

    def read(self, offset: int, length: int) -> bytes: ...


@dataclass(frozen=True)
class PipelineOutcome:
    """What one pass produced."""

    media_bytes_done: int  #: media bytes handed to every sink (from 0, including a resumed prefix)
    bad_byte_ranges: tuple[tuple[int, int], ...]  #: (offset, length) zero-filled in the media
    hashes: dict[str, str]  #: of the media (only meaningful when complete)
    source_hashes: dict[str, str] | None  #: of the source's true bytes, when the media is padded
    complete: bool


@dataclass
class _Block:
    offset: int
    data: bytes


def block_size_for(chunk_size: int, preferred: int = DEFAULT_BLOCK) -> int:
    """A read block: whole chunks, about ``preferred`` bytes."""
    return max(chunk_size, preferred - preferred % chunk_size)


def byte_ranges_to_sectors(ranges: Iterable[tuple[int, int]],
                           sector_size: int) -> list[tuple[int, int]]:
    """Byte ranges (offset, length) to covering ``(first_sector, count)`` ranges, merged."""
    out = []
    for offset, length in ranges:
        first = offset // sector_size
        last = -(-(offset + length) // sector_size)
        out.append((first, last - first))
    return merge_ranges(out)


class Pipeline:
    """One pass over ``[start, media_size)`` of the media into every sink."""

    def __init__(self, *, source: PipelineSource, sinks: Sequence[Sink], media_size: int,
                 read_granularity: int, retries: int, algorithms: Sequence[str],
                 task: ProgressTask, stop: threading.Event, block_size: int = DEFAULT_BLOCK,
                 workers: int | None = None, encode: bool = True) -> None:
        self.source = source
        self.sinks = list(sinks)
        self.media_size = media_size
        self.granularity = read_granularity
        self.retries = retries
        self.task = task
        self.stop = stop
        self.block_size = block_size
        self.workers = workers or max(1, os.cpu_count() or 1)
        self.encode = encode
        self.media_hasher = ThreadedHasher(algorithms, depth=8)
        padded = media_size > source.size
        self.source_hasher = ThreadedHasher(algorithms, depth=8) if padded else None
        self.bad: list[tuple[int, int]] = []
        self.bad_sectors = 0
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=8)
        self._reader_error: BaseException | None = None
        self.done = 0  #: media bytes handed to every sink so far

    # --- resume ------------------------------------------------------------------------------

    def feed_prefix(self, blocks: Iterable[bytes]) -> int:
        """Hash media bytes that are already in the output (resume); returns how many."""
        done = 0
        for block in blocks:
            if self.stop.is_set():  # re-hashing a big prefix takes a while: stay stoppable
                self._close_hashers()
                raise StopRequested
            self._hash(done, block)
            done += len(block)
            self.task.advance(len(block))
        self.done = done
        return done

    def add_known_errors(self, byte_ranges: Iterable[tuple[int, int]]) -> None:
        """Errors recorded by the interrupted run, kept in the final list."""
        for offset, length in byte_ranges:
            self.bad.append((offset, length))
            self.bad_sectors += -(-length // self.granularity)
        self.task.set_errors(self.bad_sectors)

    # --- the pass ----------------------------------------------------------------------------

    def _hash(self, offset: int, data: bytes) -> None:
        self.media_hasher.update(data)
        if self.source_hasher is not None:
            real = self.source.size - offset
            if real >= len(data):
                self.source_hasher.update(data)
            elif real > 0:
                self.source_hasher.update(data[:real])

    def _read_loop(self, start: int) -> None:
        try:
            pos = start
            while pos < self.media_size and not self.stop.is_set():
                length = min(self.block_size, self.media_size - pos)
                real = max(0, min(length, self.source.size - pos))
                data = b""
                if real:
                    try:
                        outcome = read_with_retries(self.source, pos, real,
                                                    sector_size=self.granularity,
                                                    retries=self.retries, stop=self.stop)
                    except StopRequested:
                        break  # the block is dropped whole: the output ends before it
                    data = outcome.data
                    if outcome.bad:
                        self._record_bad(outcome.bad)
                if real < length:
                    data += bytes(length - real)  # pad the media to whole sectors
                self._hash(pos, data)
                self._queue.put(_Block(pos, data))
                pos += length
        except BaseException as exc:  # handed to the writer thread, re-raised there
            self._reader_error = exc
        finally:
            self._queue.put(_END)

    def _record_bad(self, sector_ranges: Sequence[tuple[int, int]]) -> None:
        for first, count in sector_ranges:
            offset = first * self.granularity
            length = min(count * self.granularity, self.source.size - offset)
            self.bad.append((offset, length))
            self.bad_sectors += count
        self.task.set_errors(self.bad_sectors)

    def run(self, start: int = 0) -> PipelineOutcome:
        """Read, hash, encode and write from ``start``; returns when done or stopped."""
        reader = threading.Thread(target=self._read_loop, args=(start,), name="acquire-reader",
                                  daemon=True)
        self.done = start
        pool = ThreadPoolExecutor(self.workers, thread_name_prefix="encode") \
            if self.encode else None
        reader.start()
        try:
            done = self._consume(pool, start)
        except BaseException as exc:
            self._abandon(reader, exc)
            raise
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
        reader.join()  # it has sent _END: it is ending
        if self._reader_error is not None:
            self._close_hashers()
            raise self._reader_error
        complete = done >= self.media_size
        hashes = self.media_hasher.close()
        source_hashes = self.source_hasher.close() if self.source_hasher else None
        return PipelineOutcome(done, tuple(_merge_bytes(self.bad)), hashes, source_hashes,
                               complete)

    def _consume(self, pool: ThreadPoolExecutor | None, start: int) -> int:
        """Take blocks from the reader until it ends; encode in ``pool``; write in order."""
        done = start
        pending: deque[tuple[_Block, Future[Any] | None]] = deque()
        depth = 2 * self.workers + 2
        while True:
            item = self._queue.get()
            if item is _END:
                break
            future = pool.submit(self.sinks[0].encode, item.data) if pool else None
            pending.append((item, future))
            while pending and (len(pending) > depth or _ready(pending[0][1])):
                done = self._write(*pending.popleft())
        while pending:
            done = self._write(*pending.popleft())
        return done

    def _abandon(self, reader: threading.Thread, exc: BaseException) -> None:
        """Stop after a failure; a second Ctrl-C means "now": never wait for a read that hangs
        in the kernel (the reader is a daemon thread and dies with the process)."""
        self.stop.set()
        _drain(self._queue, reader, patience=0.0 if isinstance(exc, KeyboardInterrupt) else 30.0)
        self._close_hashers()

    def _close_hashers(self) -> None:
        self.media_hasher.close()
        if self.source_hasher is not None:
            self.source_hasher.close()

    def _write(self, block: _Block, future: Future[Any] | None) -> int:
        encoded = future.result() if future is not None else None
        for sink in self.sinks:
            sink.write(encoded, block.data)
        self.task.advance(len(block.data))
        self.done = block.offset + len(block.data)
        return self.done


def _ready(future: Future[Any] | None) -> bool:
    return future is None or future.done()


def _drain(q: queue.Queue[Any], reader: threading.Thread, patience: float) -> None:
    """Empty the queue until the reader has ended (so that it never blocks on a full queue),
    for at most ``patience`` seconds: a read hung in the kernel cannot be waited out."""
    deadline = time.monotonic() + patience
    while reader.is_alive() or not q.empty():
        try:
            if q.get(timeout=0.1) is _END:
                return
        except queue.Empty:
            if time.monotonic() > deadline:
                return


def _merge_bytes(ranges: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for offset, length in sorted(r for r in ranges if r[1] > 0):
        if merged and offset <= merged[-1][0] + merged[-1][1]:
            last_offset, last_length = merged[-1]
            end = max(last_offset + last_length, offset + length)
            merged[-1] = (last_offset, end - last_offset)
        else:
            merged.append((offset, length))
    return merged
