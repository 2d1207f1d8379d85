"""Appending to an image file around the page cache (``O_DIRECT``).

Why: on the virtual disks this runs on, a buffered ``write`` costs ~2.4 CPU-seconds per GiB in the
kernel (copying into the page cache, then writeback), more than MD5 of the same bytes, and varies
from run to run (800 MiB of ``dd`` took 1.35 s and 5.45 s of system time on the same idle
machine); an ``O_DIRECT`` write of the same data costs ~0.2 and finishes sooner (measured with
``dd bs=4M``: 1.33 s and 1.28 s of system time buffered, 0.40 s and 0.10 s direct, for 512 MiB).
An acquisition or a conversion writes each byte of its output once and never reads it back while
writing, so the page cache gains it nothing: raw images (:mod:`bitwitness.acquire.directsink`)
and E01 segments (:class:`bitwitness.ewf.gather.GatherWriter`) are written through
:class:`DirectFile`.

``O_DIRECT`` wants the buffer, the file offset and the length aligned (to the device's logical
block size; :data:`ALIGN` covers 512 and 4096): the media is staged in a page-aligned buffer and
written from it in whole blocks. The bytes are the same; only the way to the disk differs. A file
system that refuses ``O_DIRECT`` (tmpfs, some FUSE ones: ``EINVAL``) gets buffered writes instead,
on the same descriptor.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import mmap
import os
import threading
from collections.abc import Callable
from pathlib import Path

from bitwitness.fileio import pwrite_all

#: Offsets and lengths of direct writes are multiples of this.
ALIGN = 4096
#: Bytes staged before a write: large enough that each write streams, small enough to stay cheap.
STAGE = 8 << 20


class DirectFile:
    """Appends to ``path`` from offset 0 through ``O_DIRECT`` (``OSError`` when it cannot be
    opened so; the caller writes buffered then).

    :meth:`write` stages; a full staging buffer is written by a thread of its own while the other
    buffer fills (a direct write returns only once the disk has the data: done inline, it would
    stall the whole pipeline behind it). :meth:`flush` puts everything staged on the file, a last
    partial block too (padded with zeros, then the file cut back to the bytes written);
    :meth:`close` flushes and closes. A failed write raises from the next call. One writer.

    The file's own descriptor (its owner's, buffered) may write it too, for the few bytes an
    owner rewrites in place (:meth:`patched`); Linux keeps the two coherent (a direct write
    writes back and drops the cached pages it covers). ``fsync`` on either descriptor puts the
    file on the disk.
    """

    def __init__(self, path: Path) -> None:
        flags = os.O_WRONLY | getattr(os, "O_CLOEXEC", 0) | os.O_DIRECT
        self._fd = os.open(path, flags)
        self._buffers = [mmap.mmap(-1, STAGE) for _ in range(2)]  # page-aligned, as O_DIRECT needs
        self._views = [memoryview(b) for b in self._buffers]
        self._view = self._views[0]  #: the buffer being filled
        self._base = 0  #: file offset of its first byte (a multiple of ALIGN)
        self._held = 0  #: bytes staged in it
        self._pending: _Write | None = None  #: the other buffer's write, in flight
        self._on_file = 0  #: bytes given that writes have put on the file (see on_file)
        self._flushed = True  #: nothing given or patched since the last flush
        self.direct = True  #: False once the file system refused a direct write

    @property
    def on_file(self) -> int:
        """How many of the bytes given so far are on the file (written; ``fsync`` makes them
        durable): all of them right after :meth:`flush`, fewer while some are staged."""
        return self._on_file

    def write(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data).cast("B")
        if view:
            self._flushed = False
        while view:
            take = min(len(view), STAGE - self._held)
            self._view[self._held:self._held + take] = view[:take]
            self._held += take
            view = view[take:]
            if self._held == STAGE:
                self._wait()
                self._pending = _Write(self._put, self._view, STAGE, self._base)
                self._view = self._views[1] if self._view is self._views[0] else self._views[0]
                self._base += STAGE
                self._held = 0

    def flush(self) -> None:
        """Write what is staged; the file then holds exactly the bytes given so far."""
        self.flush_soon()
        self._wait()

    def flush_soon(self) -> Callable[[], int]:
        """:meth:`flush` without waiting here: the staged bytes (a last partial block padded
        with zeros, the file then cut back to the bytes given) are written by the writing
        thread, after what it is writing already, while staging goes on in the other buffer.
        Returns a function, to call once from any thread, that waits for that write and returns
        how many bytes given the file then holds (all those given before this call).

        Why: an acquisition's checkpoint asks for this between two blocks; waiting there for
        the disk would stall the whole pipeline (see :mod:`bitwitness.acquire.pipeline`)."""
        self._wait()  # the other buffer's write (done by now, unless the disk lags)
        if self._flushed:
            on_file = self._on_file
            return lambda: on_file
        held, base, view = self._held, self._base, self._view
        size = -(-held // ALIGN) * ALIGN
        whole = held - held % ALIGN
        other = self._views[1] if view is self._views[0] else self._views[0]
        other[:held - whole] = view[whole:held]  # the partial block goes on being staged
        view[held:size] = bytes(size - held)
        pending = self._pending = _Write(self._put_last, view, size, base, held)
        self._view, self._base, self._held = other, base + whole, held - whole
        self._flushed = True

        def wait() -> int:
            pending.result()
            return base + held
        return wait

    def _put_last(self, view: memoryview, size: int, offset: int, length: int) -> None:
        """Write the last staged bytes, ``length`` given ones padded to ``size``, and cut the
        file back to them."""
        if size:
            self._put(view, size, offset, length=length)
        if size != length:
            os.ftruncate(self._fd, offset + length)

    def patched(self, data: bytes | bytearray | memoryview, offset: int) -> None:
        """The owner rewrote ``data`` at ``offset`` of the file (after :meth:`flush`, through
        its own descriptor): the staged copy of those bytes takes them too, or the next write of
        the last partial block would put the old ones back."""
        lo, hi = max(offset, self._base), min(offset + len(data), self._base + self._held)
        if lo < hi:
            self._view[lo - self._base:hi - self._base] = memoryview(data)[lo - offset:hi - offset]
            self._flushed = False

    def close(self) -> None:
        """Flush and close (the caller fsyncs the file)."""
        try:
            self.flush()
        finally:
            self._wait_quietly()
            os.close(self._fd)
            for view, buffer in zip(self._views, self._buffers, strict=True):
                view.release()
                # after a failed write, its traceback still holds a view of the buffer: the
                # mapping is then freed with the traceback, not here
                with contextlib.suppress(BufferError):
                    buffer.close()

    def _wait(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def _wait_quietly(self) -> None:
        """Wait for a write in flight without raising (a failure is being raised already)."""
        with contextlib.suppress(BaseException):
            self._wait()

    def _put(self, view: memoryview, size: int, offset: int, length: int | None = None) -> None:
        """Write ``size`` bytes of ``view`` at ``offset``, of which the first ``length`` (all by
        default) are bytes given, the rest padding."""
        try:
            pwrite_all(self._fd, view[:size], offset)
        except OSError as exc:
            if exc.errno != errno.EINVAL or not self.direct:
                raise
            # this file system takes no direct write of this shape: buffered from now on
            flags = fcntl.fcntl(self._fd, fcntl.F_GETFL)
            fcntl.fcntl(self._fd, fcntl.F_SETFL, flags & ~os.O_DIRECT)
            self.direct = False
            pwrite_all(self._fd, view[:size], offset)
        self._on_file = max(self._on_file, offset + (size if length is None else length))


class _Write(threading.Thread):
    """One write, in a thread of its own, started at once; :meth:`result` waits and raises its
    error. Why not a pool: at most one write is in flight, and an acquisition loads no
    ``concurrent.futures`` (its import costs every run; tests/test_startup.py)."""

    def __init__(self, write: Callable[..., None], *args: object) -> None:
        super().__init__(name="direct-write", daemon=True)
        self._write = write
        self._args = args
        self._error: BaseException | None = None
        self.start()

    def run(self) -> None:
        try:
            self._write(*self._args)
        except BaseException as exc:  # re-raised by result(), in the waiting thread
            self._error = exc

    def result(self) -> None:
        self.join()
        if self._error is not None:
            raise self._error
