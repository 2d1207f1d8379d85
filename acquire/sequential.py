"""Reading an image stream in media order through its own sequential path.

Why: a job that reads an image from the first byte to the last (convert, restore, acquiring an
already-open image) asks the :class:`~bitwitness.acquire.source.Source` for one block after the
other by offset. ``pread`` decodes each block on the calling thread; a format with a faster
sequential path (EWF's ``iter_blocks`` decodes chunk runs on several threads ahead of the reader)
is only used when the reads come through ``iter_blocks``. :class:`SequentialReads` serves reads
that continue where the previous one ended from one ``iter_blocks`` run and sends every other read
(a retry narrowing down a damaged chunk, a resume elsewhere) to ``pread``, so the bytes and the
errors are the same either way: an error inside the run ends the run and the read is repeated by
``pread``, which raises it with its location.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

from bitwitness.errors import BitWitnessError
from bitwitness.stream import ImageStream


def has_sequential_path(stream: ImageStream) -> bool:
    """Whether ``stream``'s format reads in order faster than by ``pread`` (it overrides
    ``iter_blocks``)."""
    return type(stream).iter_blocks is not ImageStream.iter_blocks


class SequentialReads:
    """``pread`` of ``stream``, with reads in media order served from one ``iter_blocks``.

    Reads are taken one at a time (a lock); at most one block of the run is held here.
    """

    def __init__(self, stream: ImageStream) -> None:
        self._stream = stream
        self._blocks: Iterator[bytes] | None = None
        self._held = memoryview(b"")  #: the start of the run's current block not yet handed out
        self._next = -1  #: the offset the run continues at
        self._lock = threading.Lock()

    def pread(self, offset: int, length: int) -> bytes:
        """Exactly what ``stream.pread(offset, length)`` returns (errors included)."""
        if length <= 0:
            return b""
        with self._lock:
            return self._read(offset, length)

    def _read(self, offset: int, length: int) -> bytes:
        if offset != self._next or self._blocks is None:
            self._start(offset)
        parts: list[memoryview] = []
        wanted = length
        try:
            while wanted:
                if not self._held:
                    assert self._blocks is not None
                    block = next(self._blocks, None)
                    if block is None:
                        break  # the media ends: a short read, as pread gives
                    self._held = memoryview(block)
                take = self._held[:wanted]
                parts.append(take)
                self._held = self._held[len(take):]
                wanted -= len(take)
        except BitWitnessError:
            self._end()  # pread repeats the read and raises the error with its location
            return self._stream.pread(offset, length)
        self._next = offset + length - wanted
        return parts[0].tobytes() if len(parts) == 1 else b"".join(parts)

    def readinto(self, offset: int, view: memoryview) -> int:
        """:meth:`pread` into ``view``: the bytes copied once, from the run's blocks into the
        caller's buffer (no joined copy in between); returns how many (short at the end).
        Errors as :meth:`pread`'s."""
        length = len(view)
        if length <= 0:
            return 0
        with self._lock:
            if offset != self._next or self._blocks is None:
                self._start(offset)
            got = 0
            try:
                while got < length:
                    if not self._held:
                        assert self._blocks is not None
                        block = next(self._blocks, None)
                        if block is None:
                            break
                        self._held = memoryview(block)
                    take = min(len(self._held), length - got)
                    view[got:got + take] = self._held[:take]
                    self._held = self._held[take:]
                    got += take
            except BitWitnessError:
                self._end()
                data = self._stream.pread(offset, length)
                view[:len(data)] = data
                return len(data)
            self._next = offset + got
            return got

    def _start(self, offset: int) -> None:
        self._end()
        self._blocks = self._stream.iter_blocks(1 << 20, offset, None)
        self._next = offset

    def close(self) -> None:
        """End the run in progress (its decoding threads stop)."""
        with self._lock:
            self._end()

    def _end(self) -> None:
        blocks, self._blocks = self._blocks, None
        self._held = memoryview(b"")
        self._next = -1
        close = getattr(blocks, "close", None)
        if close is not None:
            close()
