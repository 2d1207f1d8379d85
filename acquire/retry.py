"""Reading through bad sectors: retry, narrow down to single sectors, zero-fill, record ranges.

A failed read of a block is retried whole (``retries`` more times); if it still fails, the block
is halved and each half read again, down to single sectors. A sector still unreadable after
``1 + retries`` attempts is replaced by zeros and recorded. The caller gets exactly the bytes it
asked for plus the list of zero-filled sector ranges, so the image stays aligned with the source
and the log says precisely which sectors are not evidence. A ``stop`` event set meanwhile ends
the narrowing at once (:class:`StopRequested`); the caller then drops the whole block.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from bitwitness.errors import ReadError
from bitwitness.ranges import merge_ranges

_T = TypeVar("_T")


class Reader(Protocol):
    """Anything that reads exactly ``length`` bytes at ``offset`` or raises :class:`ReadError`."""

    def read(self, offset: int, length: int) -> bytes: ...


@dataclass(frozen=True)
class ReadOutcome:
    """The bytes of a block (zeros where unreadable) and the unreadable sector ranges."""

    data: bytes
    bad: tuple[tuple[int, int], ...]  #: (first_sector, sector_count), merged, in order
    attempts: int  #: number of reads issued (1 when everything read at once)


class StopRequested(Exception):  # noqa: N818 - a request, not an error
    """Raised out of :func:`read_with_retries` when ``stop`` was set while narrowing down: a
    failing drive can take seconds per read, and the user must not wait for a whole block."""


def _attempt(read: Callable[[int, int], _T], offset: int, length: int, tries: int,
             stop: threading.Event | None = None) -> tuple[_T | None, int]:
    for attempt in range(1, tries + 1):
        if stop is not None and attempt > 1 and stop.is_set():
            raise StopRequested
        try:
            return read(offset, length), attempt
        except ReadError:
            continue
    return None, tries


def read_with_retries(reader: Reader, offset: int, length: int, *, sector_size: int,
                      retries: int, stop: threading.Event | None = None) -> ReadOutcome:
    """Read ``length`` bytes at ``offset``; ``offset`` must be sector-aligned.

    The last sector may be short (a file whose size is not a whole number of sectors).
    """
    _check_aligned(offset, sector_size)
    data, attempts = _attempt(reader.read, offset, length, 1 + retries, stop)
    if data is not None:
        return ReadOutcome(data, (), attempts)
    return ReadOutcome(*_narrowed(reader, offset, length, sector_size=sector_size,
                                  retries=retries, stop=stop, attempts=attempts))


def _check_aligned(offset: int, sector_size: int) -> None:
    if offset % sector_size:
        raise ValueError(f"offset {offset} is not a multiple of the sector size {sector_size}")


def _narrowed(reader: Reader, offset: int, length: int, *, sector_size: int, retries: int,
              stop: threading.Event | None,
              attempts: int) -> tuple[bytes, tuple[tuple[int, int], ...], int]:
    """After ``attempts`` whole-block reads failed: the block narrowed down, its zero-filled
    sector ranges, and the reads issued in all."""
    ctx = _Narrowing(reader, sector_size, retries, stop,
                     read=getattr(reader, "read_direct", reader.read))
    total = attempts + _narrow(ctx, offset, length)
    return b"".join(ctx.parts), tuple(merge_ranges(ctx.bad)), total


class IntoReader(Reader, Protocol):
    """A :class:`Reader` that can also fill a caller's buffer (see :meth:`Source.readinto`)."""

    def readinto(self, offset: int, view: memoryview) -> None: ...


@dataclass(frozen=True)
class FillOutcome:
    """What :func:`read_into_with_retries` did: the zero-filled ranges and the reads issued."""

    bad: tuple[tuple[int, int], ...]  #: (first_sector, sector_count), merged, in order
    attempts: int


def read_into_with_retries(reader: Reader | IntoReader, offset: int, view: memoryview, *,
                           sector_size: int, retries: int,
                           stop: threading.Event | None = None) -> FillOutcome:
    """:func:`read_with_retries` into ``view`` (its length is the read's length).

    The whole-block attempts read straight into the buffer when the reader can; only a block
    that keeps failing is narrowed down through :func:`read_with_retries`' logic and copied in.
    The attempts and their order are exactly those of :func:`read_with_retries`.
    """
    readinto = getattr(reader, "readinto", None)
    if readinto is None:
        outcome = read_with_retries(reader, offset, len(view), sector_size=sector_size,
                                    retries=retries, stop=stop)
        data, bad, total = outcome.data, outcome.bad, outcome.attempts
    else:
        _check_aligned(offset, sector_size)

        def fill(at: int, length: int) -> bool:  # the whole-block attempts, into the buffer
            readinto(at, view)
            return True

        filled, attempts = _attempt(fill, offset, len(view), 1 + retries, stop)
        if filled:
            return FillOutcome((), attempts)
        data, bad, total = _narrowed(reader, offset, len(view), sector_size=sector_size,
                                     retries=retries, stop=stop, attempts=attempts)
    view[:] = data
    return FillOutcome(bad, total)


@dataclass
class _Narrowing:
    """State of one narrowing-down: where the pieces and the bad sectors go."""

    reader: Reader
    sector_size: int
    retries: int
    stop: threading.Event | None = None
    #: the read used while narrowing: the reader's page-cache-bypassing ``read_direct`` where
    #: it has one, so that a failure means these very sectors (bitwitness.acquire.direct)
    read: Callable[[int, int], bytes] | None = None
    parts: list[bytes] = field(default_factory=list)
    bad: list[tuple[int, int]] = field(default_factory=list)


def _narrow(ctx: _Narrowing, offset: int, length: int) -> int:
    """Halve a failed range until single sectors; append data/zeros in order; return reads."""
    if ctx.stop is not None and ctx.stop.is_set():
        raise StopRequested
    if length <= ctx.sector_size:
        data, attempts = _attempt(ctx.read or ctx.reader.read, offset, length, 1 + ctx.retries,
                                 ctx.stop)
        if data is None:
            ctx.parts.append(bytes(length))
            ctx.bad.append((offset // ctx.sector_size, 1))
        else:
            ctx.parts.append(data)
        return attempts
    sectors = -(-length // ctx.sector_size)
    half = (sectors // 2) * ctx.sector_size
    reads = 0
    for start, size in ((offset, half), (offset + half, length - half)):
        if size <= ctx.sector_size:  # single sectors get their full share of attempts
            reads += _narrow(ctx, start, size)
            continue
        data, attempts = _attempt(ctx.read or ctx.reader.read, start, size, 1)
        reads += attempts
        if data is not None:
            ctx.parts.append(data)
        else:
            reads += _narrow(ctx, start, size)
    return reads


def count_sectors(ranges: Iterable[tuple[int, int]]) -> int:
    """How many sectors the ranges cover."""
    return sum(count for _, count in ranges)
