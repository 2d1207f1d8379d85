"""Appending many small pieces to a file with ``writev``, hashed on the way, off the caller's
thread.

Why: the EWF writer emits a piece per chunk (a deflate stream, or the raw chunk and its Adler-32)
and small descriptors between them, and writes a whole sectors group at once when it closes. A
buffered file would copy each piece into its buffer before the kernel copies the buffer again;
here the pieces are handed to the kernel as they are, in ``writev`` calls.

It can also hash the file as it goes (``hash_algorithms``): each piece is hashed just before it is
written, in file order, so the hash of a file written front to back costs no reading back. A
positional write (:meth:`GatherWriter.patch`) breaks that order, and the hash is then dropped.

With ``background=True`` the hashing and writing run in a thread of their own, fed through a
bounded queue: closing a group (tens of MiB to hash and write) then does not stall the
acquisition's ordering thread, which would leave the reader, the hash threads and the encoders
idle meanwhile. Pieces handed over must then never change (bytes, not views of reused buffers).
A write error in that thread is raised by the next call in the caller's thread.

With ``direct=True`` a new file (opened at offset 0) is written around the page cache: the pieces
are copied into the aligned staging buffers of a :class:`~bitwitness.directwrite.DirectFile`
instead of going to ``writev`` (why: see :mod:`bitwitness.directwrite`; the kernel's copy into the
page cache cost more CPU than the copy into the staging buffer, and the acquisition is CPU-bound).
What reaches the file is the same: :meth:`GatherWriter.drain`, :meth:`GatherWriter.sync_point` and
:meth:`GatherWriter.patch` put every staged byte on it first.

Pieces may be views of buffers their owner wants back: :meth:`GatherWriter.after_written` takes
functions to call once everything handed over so far has been written (or dropped after a
failure), which is when such a buffer may be reused. That is how the acquisition lends its block
buffers to the E01 writer instead of copying the raw chunks it keeps.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import queue
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import BinaryIO, Final

from bitwitness.directwrite import DirectFile
from bitwitness.fileio import WriteBehind, pwrite_all
from bitwitness.threadpriority import step_aside

#: Pieces per ``writev`` call (the kernel's limit, 1024 on Linux).
IOV_MAX: Final = min(1024, os.sysconf("SC_IOV_MAX") if hasattr(os, "sysconf") else 1024)
#: Pending bytes that trigger a flush: large writes, few calls, little memory held.
FLUSH_BYTES: Final = 1 << 20
#: Flushed batches (about ``FLUSH_BYTES`` each) waiting for the background thread: the memory
#: bound when the destination is slower than the source.
BACKGROUND_DEPTH: Final = 48

Piece = bytes | bytearray | memoryview
#: Pieces, the functions to call once they are written, and whether staged bytes must then be
#: on the file (a sync point's) rather than merely taken (a lent buffer's).
Batch = tuple[list[Piece], list[Callable[[], None]], bool]


class GatherWriter:
    """An unbuffered binary file that gathers appended pieces and writes them in batches.

    Offers what :class:`bitwitness.ewf.writer.EwfWriter` uses of a file: ``write``, ``flush``,
    ``drain``, ``patch``, ``fileno`` and ``close``. ``file`` must be empty and positioned at 0
    for the hashes to be those of the file (a file opened to continue it gets no
    ``hash_algorithms``). ``direct``: write it through ``O_DIRECT`` where the file is new (at
    offset 0) and its file system takes direct writes; buffered otherwise.
    """

    def __init__(self, file: BinaryIO, hash_algorithms: Sequence[str] = (), *,
                 background: bool = False, direct: bool = False) -> None:
        self._file = file
        self._fd = file.fileno()
        self._pieces: list[Piece] = []
        self._pending = 0
        self._callbacks: list[Callable[[], None]] = []
        self._hashes = {name: hashlib.new(name) for name in hash_algorithms}
        self._patched = False
        name = getattr(file, "name", None)
        path = Path(name) if isinstance(name, (str, os.PathLike)) else None
        self._direct: DirectFile | None = None
        if direct and path is not None and hasattr(os, "O_DIRECT") and file.tell() == 0:
            with contextlib.suppress(OSError):  # EINVAL: no O_DIRECT here, buffered it is
                self._direct = DirectFile(path)
        #: a buffered file put on the disk as it is written (its owner fsyncs it at the end)
        self._behind = WriteBehind(path) if path is not None and self._direct is None else None
        self._error: BaseException | None = None
        self._queue: queue.Queue[Batch | None] | None = None
        self._thread: threading.Thread | None = None
        if background:
            self._queue = queue.Queue(maxsize=BACKGROUND_DEPTH)
            self._thread = threading.Thread(target=self._run, name="segment-writer",
                                            daemon=True)
            self._thread.start()

    def fileno(self) -> int:
        return self._fd

    def write(self, data: Piece) -> None:
        """Append ``data``; it must stay unchanged until it is written (see the module)."""
        size = len(data)
        if not size:
            return
        self._pieces.append(data)
        self._pending += size
        if self._pending >= FLUSH_BYTES or len(self._pieces) >= IOV_MAX:
            self.flush()

    def after_written(self, callbacks: Iterable[Callable[[], None]]) -> None:
        """Call each of ``callbacks`` once every piece given so far is written (or, for a
        direct write, copied into its staging buffer), or dropped after a failed write, or at
        :meth:`close`: never twice, never before. They run in the
        background thread when there is one, so they must be thread-safe and must not raise."""
        self._callbacks.extend(callbacks)
        self.flush()

    def flush(self, *, to_file: bool = False) -> None:
        """Hand the pending pieces over: written here, or queued for the background thread.
        ``to_file``: the callbacks wait until staged bytes are on the file too."""
        pieces, self._pieces, self._pending = self._pieces, [], 0
        callbacks, self._callbacks = self._callbacks, []
        if self._error is not None:  # nothing more is written; what was lent is given back
            _call_all(callbacks)
            raise self._error
        if not pieces and not callbacks:
            return
        if self._queue is None:
            try:
                self._write_out(pieces, to_file)
            finally:
                _call_all(callbacks)
        else:
            self._queue.put((pieces, callbacks, to_file))

    def sync_point(self) -> Callable[[], None]:
        """A function that, called from any thread, returns once everything given so far is
        written and fsynced (or raises the write's or the fsync's error); this call itself
        waits for nothing.

        Why: an acquisition's checkpoint makes its outputs durable every few hundred MiB.
        Draining and fsyncing in the caller's thread stopped the whole pipeline for the time
        the disk took (~50 ms each, 5-10% of a run); the checkpoint now waits in a thread of its
        own. The fsync goes to a duplicate of the file descriptor, which stays valid even if
        the file is closed meanwhile (closing drains and fsyncs it anyway).
        """
        written = threading.Event()
        fd = os.dup(self._fd)
        try:
            self._callbacks.append(written.set)
            self.flush(to_file=True)
        except BaseException:
            os.close(fd)
            raise

        def wait() -> None:
            try:
                written.wait()
                self._raise_failure()  # the write error is set before the callbacks run
                os.fsync(fd)
            finally:
                os.close(fd)
        return wait

    def drain(self) -> None:
        """Return once every piece given so far is on the file (raises a failed write)."""
        self.flush()
        if self._queue is not None:
            self._queue.join()
        self._raise_failure()
        if self._direct is not None:  # the background thread is idle: the queue is empty
            self._direct.flush()
        if self._behind is not None:
            self._behind.finish()

    def _raise_failure(self) -> None:
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        assert self._queue is not None
        step_aside()  # hashing and writing the segment beside the media's MD5 thread
        while True:
            batch = self._queue.get()
            try:
                if batch is None:
                    return
                pieces, callbacks, to_file = batch
                try:
                    if self._error is None:  # after a failure, the rest is dropped
                        self._write_out(pieces, to_file)
                except BaseException as exc:  # re-raised in the caller's thread
                    self._error = exc  # set before the callbacks run: see sync_point
                _call_all(callbacks)
            except BaseException as exc:
                self._error = exc
            finally:
                self._queue.task_done()

    def _write_out(self, pieces: list[Piece], to_file: bool = False) -> None:
        """Hash, then write all of ``pieces``, or stage them for direct writes (then put on the
        file too when ``to_file``)."""
        for h in self._hashes.values():
            for piece in pieces:
                h.update(piece)
        if self._direct is not None:
            for piece in pieces:
                self._direct.write(piece)
            if to_file:
                self._direct.flush()
            return
        if self._behind is not None:
            self._behind.wrote(sum(len(piece) for piece in pieces))
        _writev_all(self._fd, pieces)

    def patch(self, data: bytes, offset: int) -> None:
        """Overwrite ``data`` at ``offset`` (after draining); the running hashes no longer
        describe the file, so :meth:`hexdigests` gives ``None`` from now on."""
        self.drain()
        pwrite_all(self._fd, data, offset)
        if self._direct is not None:
            self._direct.patched(data, offset)
        self._patched = True

    def hexdigests(self) -> dict[str, str] | None:
        """Hashes of everything written so far, or ``None``: no algorithms were asked for, or a
        patch made them stale."""
        self.drain()
        if not self._hashes or self._patched:
            return None
        return {name: h.hexdigest() for name, h in self._hashes.items()}

    def close(self) -> None:
        """Drain, then close; the file is closed (and the thread ended) even when a write
        failed (a full disk), and that failure is raised."""
        try:
            self.drain()
        finally:
            self._pieces = []
            self._pending = 0
            _call_all(self._callbacks)  # left when draining failed: nothing more is written
            self._callbacks = []
            if self._thread is not None and self._queue is not None:
                self._queue.put(None)
                self._thread.join()
                self._thread = None
            direct, self._direct = self._direct, None
            try:
                if direct is not None:
                    direct.close()
            finally:
                self._file.close()


def _call_all(callbacks: list[Callable[[], None]]) -> None:
    for callback in callbacks:
        callback()


def _writev_all(fd: int, pieces: list[Piece]) -> None:
    """``writev`` all of ``pieces`` (whatever the kernel takes per call); empties the list."""
    while pieces:
        batch = pieces[:IOV_MAX]
        written = os.writev(fd, batch)
        done = 0
        for piece in batch:  # drop what was written whole; cut the piece written in part
            size = len(piece)
            if written < size:
                if written:
                    pieces[done] = memoryview(piece)[written:]
                break
            written -= size
            done += 1
        del pieces[:done]
