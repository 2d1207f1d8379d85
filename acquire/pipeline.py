"""The acquisition pipeline: reader thread -> hash threads + encoder pool -> in-order writer.

Why this shape: on a few cores the work is reading (I/O), hashing (hashlib releases the GIL: the
costliest algorithm, MD5, in a thread of its own, the others in the reader right after each read)
and compressing (isal releases the GIL). The reader reads blocks of
whole chunks (with retries, zero-fill) and hands each block to the hashers and to a bounded queue;
the calling thread submits blocks to the encoder pool and writes the encoded results strictly in
media order. Every queue is bounded, so memory stays at a few tens of MiB whatever the media size.

No copies: a block is read (``preadv``) into one of a fixed set of reusable buffers and every
stage works on views of it: the hash threads, the encoder (raw chunks stay views) and the sinks,
which write it out before returning, or borrow it (``keep``) when they write it later: the E01
writer keeps a group's raw chunks until the group is written whole. A buffer goes back into
service when the last of them is done with it (:class:`_Lease`); a borrowed one is replaced at
once, so the reader never waits on a sink's loan. Allocating a fresh 1 MiB object per block
instead costs page faults and copies worth more CPU than the read itself, on a job that is
CPU-bound.

Checkpoints (``checkpoint``): every few hundred MiB the caller marks what the outputs hold, in the
writing thread between two blocks, and hands back the slow part (waiting until that is on the disk,
then recording it in the log), which runs in a thread of its own (:class:`_Checkpoints`) while the
pipeline goes on; in the writing thread, the fsyncs and the log writes had stopped every stage for
~50-70 ms per checkpoint.

Stopping: setting ``stop`` makes the reader end after its current block; blocks already read are
still written, so the output always ends on a block boundary that the caller records for resume.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from bitwitness.acquire.encoders import EncoderPool, Pending
from bitwitness.acquire.retry import StopRequested, read_into_with_retries
from bitwitness.acquire.sinks import Keep, Sink
from bitwitness.hashing import ThreadedHasher
from bitwitness.progress import ProgressTask
from bitwitness.ranges import merge_ranges
from bitwitness.threadpriority import slowest

DEFAULT_BLOCK = 1 << 20
#: Media bytes between two checkpoints of an acquisition (outputs fsynced, progress logged).
CHECKPOINT_EVERY = 256 << 20
#: Blocks between the reader and the writer, and waiting per hash thread.
QUEUE_DEPTH = 4
#: Reusable block buffers: enough for the queue, the hash thread's backlog and the encoder's
#: blocks in flight. Why so few: every stage touches each block, and a block that is still in
#: the CPU caches costs them less; a deep backlog (24 MiB) measured 5-10% more CPU in all.
BUFFERS = 12
#: Loans of block buffers to the sinks at a time (each replaced in circulation, so up to this many
#: MiB more): enough for the E01 group being filled (4 blocks of random data) and the groups
#: queued behind it for the segment writer (up to its 48 MiB of batches). A sink refused a loan
#: copies what it keeps, as it would without ``keep``.
SINK_LOANS = 48
_END = object()

#: A checkpoint's slow half: waits until what was marked is on the disk, and returns the function
#: that records it (see :class:`Pipeline`).
CheckpointWait = Callable[[], Callable[[], None]]


class PipelineSource(Protocol):
    """What the pipeline reads from (a :class:`Source` or a :class:`FaultySource`); one with a
    ``readinto(offset, view)`` method as well is read straight into the block buffers."""

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


class _Buffers:
    """The reusable block buffers; taking one waits while all are in use (the memory bound)."""

    def __init__(self, count: int, size: int) -> None:
        self._size = size
        self._free: queue.SimpleQueue[bytearray] = queue.SimpleQueue()
        for _ in range(count):
            self._free.put(bytearray(size))
        self._spares: list[bytearray] = []  #: back from a loan, kept for the next one

    def take(self, stop: threading.Event) -> bytearray | None:
        """A free buffer, or ``None`` once ``stop`` is set (consumers may have given up)."""
        while not stop.is_set():
            try:
                return self._free.get(timeout=0.1)
            except queue.Empty:
                continue
        return None

    def give(self, buffer: bytearray) -> None:
        self._free.put(buffer)

    def replace(self) -> None:
        """A buffer is lent out for longer: put another into circulation in its place (called
        from one thread only, the writing one)."""
        self._free.put(self._spares.pop() if self._spares else bytearray(self._size))

    def retire(self, buffer: bytearray) -> None:
        """A lent buffer is back: it waits for the next :meth:`replace` (it was replaced)."""
        self._spares.append(buffer)


class _Lease:
    """One buffer shared by the stages of one block: back to the pool when the last lets go.

    The reader holds it while handing the block out (so that no early release can free it),
    every consumer holds it until done, then calls :meth:`release`. A sink that keeps the block
    after its ``write`` borrows it (:meth:`lend`): the buffer is then replaced in circulation at
    once, and retired to the spares when the last holder lets go.
    """

    __slots__ = ("_buffer", "_buffers", "_count", "_lent", "_lock")

    def __init__(self, buffer: bytearray, buffers: _Buffers) -> None:
        self._buffer = buffer
        self._buffers = buffers
        self._count = 1
        self._lent = False
        self._lock = threading.Lock()

    def hold(self, count: int = 1) -> None:
        with self._lock:
            self._count += count

    def lend(self) -> None:
        """One more holder, one that may keep the buffer for long (a sink)."""
        with self._lock:
            self._count += 1
            first = not self._lent
            self._lent = True
        if first:
            self._buffers.replace()

    def release(self) -> None:
        with self._lock:
            self._count -= 1
            last = self._count == 0
        if last:
            if self._lent:
                self._buffers.retire(self._buffer)
            else:
                self._buffers.give(self._buffer)


class _Checkpoints:
    """Runs each checkpoint's slow half in a thread of its own, one checkpoint at a time and in
    order. An error (a failed fsync or log write) is raised in the writing thread, at the next
    checkpoint or at the end of the pass, as it was when the checkpoint ran there."""

    def __init__(self) -> None:
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._lock = threading.Lock()  #: held while a checkpoint records itself
        self._dropped = False

    def start(self, wait: CheckpointWait) -> None:
        self.finish()  # the previous one first: a later record never precedes an earlier one
        self._thread = threading.Thread(target=self._run, args=(wait,), name="checkpoint",
                                        daemon=True)
        self._thread.start()

    def _run(self, wait: CheckpointWait) -> None:
        try:
            record = wait()
            with self._lock:
                if not self._dropped:
                    record()
        except BaseException as exc:  # raised in the writing thread by finish()
            self._error = exc

    def finish(self) -> None:
        """Wait for the checkpoint in progress, if any; raise its error."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def drop(self, patience: float) -> None:
        """The pass failed or stopped: the checkpoint in progress records nothing once this
        returns (the job writes its own log next), and its error is not raised. Waits at most
        ``patience`` seconds for a record being written (a disk that hangs is not waited out)."""
        self._dropped = True
        if self._lock.acquire(timeout=patience):
            self._lock.release()


@dataclass
class _Block:
    offset: int
    data: memoryview
    lease: _Lease
    read: int  #: of its bytes, those the source delivered (not zero-filled, not padding)


def _inline_algorithms(algorithms: Sequence[str]) -> tuple[str, ...]:
    """The algorithms the reader thread hashes itself, right after each read.

    Why: the slowest on this machine (MD5, ~1.4 s per GiB and serial by nature, where the CPU
    hashes SHA in hardware; SHA-256 where it does not: :func:`~.threadpriority.slowest`
    measures them) bounds the whole pass, so it gets a thread (and a core) of its own. The
    others are cheaper, and hashing a block in the thread that has just read it, while it is
    in that core's cache, costs measurably less than handing it to yet another thread on the
    other core.
    """
    threaded = slowest(algorithms)
    return tuple(name for name in algorithms if name != threaded)


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
                 workers: int | None = None, encode: bool = True,
                 checkpoint: Callable[[Pipeline], CheckpointWait] | None = None,
                 checkpoint_every: int = CHECKPOINT_EVERY) -> None:
        """``checkpoint(pipeline)`` is called from the writing thread every ``checkpoint_every``
        media bytes handed to the sinks (the acquisition records a resumable point there): it
        marks what the sinks hold, waiting for nothing, and returns the rest, which runs in
        another thread (see the module); :meth:`run` returns only once the last one is done."""
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
        inline = _inline_algorithms(algorithms)
        self.media_hasher = ThreadedHasher(algorithms, depth=QUEUE_DEPTH, inline=inline)
        padded = media_size > source.size
        self.source_hasher = ThreadedHasher(algorithms, depth=QUEUE_DEPTH, inline=inline) \
            if padded else None
        self.bad: list[tuple[int, int]] = []
        self.bad_sectors = 0
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=QUEUE_DEPTH)
        self._buffers = _Buffers(BUFFERS, block_size)
        self._loans = threading.BoundedSemaphore(SINK_LOANS)
        self._reader_error: BaseException | None = None
        self.done = 0  #: media bytes handed to every sink so far
        #: source bytes this pass read and handed on: ``done`` less a resumed prefix, less what
        #: was zero-filled as unreadable or padded; the progress task counts these
        self.bytes_read = 0
        self.checkpoint = checkpoint
        self.checkpoint_every = max(1, checkpoint_every)
        self._checkpointed = 0
        self._checkpoints = _Checkpoints()

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

    def _hash(self, offset: int, data: bytes | memoryview, lease: _Lease | None = None) -> None:
        """Hand ``data`` to the hash threads; with a ``lease``, each thread holds it until done."""
        done = None
        if lease is not None:
            lease.hold(self.media_hasher.width)
            done = lease.release
        self.media_hasher.update(data, done)
        if self.source_hasher is not None:
            real = self.source.size - offset
            part = data if real >= len(data) else data[:max(real, 0)]
            if len(part):
                if lease is not None:
                    lease.hold(self.source_hasher.width)
                self.source_hasher.update(part, done)

    def _read_loop(self, start: int) -> None:
        try:
            pos = start
            while pos < self.media_size and not self.stop.is_set():
                buffer = self._buffers.take(self.stop)
                if buffer is None:
                    break
                lease = _Lease(buffer, self._buffers)
                length = min(self.block_size, self.media_size - pos)
                real = max(0, min(length, self.source.size - pos))
                view = memoryview(buffer)[:length]
                read = real
                if real:
                    try:
                        outcome = read_into_with_retries(self.source, pos, view[:real],
                                                         sector_size=self.granularity,
                                                         retries=self.retries, stop=self.stop)
                    except StopRequested:
                        break  # the block is dropped whole: the output ends before it
                    if outcome.bad:
                        read -= self._record_bad(outcome.bad)
                if real < length:
                    view[real:] = bytes(length - real)  # pad the media to whole sectors
                self._hash(pos, view, lease)
                # the writer's hold: the reader's own
                self._queue.put(_Block(pos, view, lease, read))
                pos += length
        except BaseException as exc:  # handed to the writer thread, re-raised there
            self._reader_error = exc
        finally:
            self._queue.put(_END)

    def _record_bad(self, sector_ranges: Sequence[tuple[int, int]]) -> int:
        """Note zero-filled sectors; returns how many source bytes they are."""
        total = 0
        for first, count in sector_ranges:
            offset = first * self.granularity
            length = min(count * self.granularity, self.source.size - offset)
            self.bad.append((offset, length))
            self.bad_sectors += count
            total += length
        self.task.set_errors(self.bad_sectors)
        return total

    def run(self, start: int = 0) -> PipelineOutcome:
        """Read, hash, encode and write from ``start``; returns when done or stopped."""
        reader = threading.Thread(target=self._read_loop, args=(start,), name="acquire-reader",
                                  daemon=True)
        self.done = self._checkpointed = start
        pool = EncoderPool(self.sinks[0].encode, self.workers) if self.encode else None
        reader.start()
        try:
            done = self._consume(pool, start)
        except BaseException as exc:
            self._abandon(reader, exc)
            raise
        finally:
            if pool is not None:
                pool.shutdown()
        reader.join()  # it has sent _END: it is ending
        if self._reader_error is not None:
            self._checkpoints.drop(_patience(self._reader_error))
            self._close_hashers()
            raise self._reader_error
        complete = done >= self.media_size
        hashes = self.media_hasher.close()
        source_hashes = self.source_hasher.close() if self.source_hasher else None
        self._checkpoints.finish()
        return PipelineOutcome(done, tuple(_merge_bytes(self.bad)), hashes, source_hashes,
                               complete)

    def _consume(self, pool: EncoderPool | None, start: int) -> int:
        """Take blocks from the reader until it ends; encode in ``pool``; write in order."""
        done = start
        pending: deque[tuple[_Block, Pending | None]] = deque()
        depth = 2 * self.workers + 2
        while True:
            item = self._queue.get()
            if item is _END:
                break
            encoding = pool.submit(item.data) if pool else None
            pending.append((item, encoding))
            while pending and (len(pending) > depth or _ready(pending[0][1])):
                done = self._write(*pending.popleft())
        while pending:
            done = self._write(*pending.popleft())
        return done

    def _keeper(self, lease: _Lease) -> Keep:
        """The ``keep`` a sink calls to borrow this block's buffer past its ``write``: returns
        the function that gives it back, or ``None`` when SINK_LOANS are all out (copy then)."""
        loans = self._loans

        def keep() -> Callable[[], None] | None:
            if not loans.acquire(blocking=False):
                return None
            lease.lend()

            def give_back() -> None:
                lease.release()
                loans.release()
            return give_back
        return keep

    def _abandon(self, reader: threading.Thread, exc: BaseException) -> None:
        """Stop after a failure; a second Ctrl-C means "now": never wait for a read that hangs
        in the kernel (the reader is a daemon thread and dies with the process)."""
        self.stop.set()
        self._checkpoints.drop(_patience(exc))
        _drain(self._queue, reader, patience=_patience(exc))
        self._close_hashers()

    def _close_hashers(self) -> None:
        self.media_hasher.close()
        if self.source_hasher is not None:
            self.source_hasher.close()

    def _write(self, block: _Block, encoding: Pending | None) -> int:
        encoded = encoding.result() if encoding is not None else None
        keep = self._keeper(block.lease)
        for sink in self.sinks:
            sink.write(encoded, block.data, keep)
        block.lease.release()  # every sink wrote, copied or borrowed the block (the Sink contract)
        self.task.advance(block.read)
        self.bytes_read += block.read
        self.done = block.offset + len(block.data)
        if self.checkpoint is not None and self.done - self._checkpointed >= self.checkpoint_every:
            self._checkpointed = self.done
            self._checkpoints.start(self.checkpoint(self))
        return self.done


def _patience(exc: BaseException) -> float:
    """Seconds to wait for other threads after ``exc``: none after a second Ctrl-C ("now")."""
    return 0.0 if isinstance(exc, KeyboardInterrupt) else 30.0


def _ready(encoding: Pending | None) -> bool:
    return encoding is None or encoding.ready()


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
