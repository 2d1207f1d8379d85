"""The second, independent reader: libewf through pyewf.

``--libewf`` reads the media through libewf in the same pass as our reader, range by range, and
compares everything it produces (media size, stored hashes, every media byte, hence the hashes)
with what our own reader produced (:class:`LibewfPass`). Two implementations that
agree are far stronger evidence than one; any disagreement is an error, never averaged away.
pyewf's ``OSError``/``IOError`` are caught here, once, and become the record's ``error``.
"""

from __future__ import annotations

import contextvars
import os
import queue
import threading
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

from bitwitness.errors import Interrupted
from bitwitness.hashing import ThreadedHasher
from bitwitness.progress import NullMediator, ProgressTask
from bitwitness.verify.model import ReaderCheck

BLOCK_SIZE = 4 << 20
#: Differing media ranges listed at most (beyond, counted in bytes only).
MAX_RANGES = 1000


def libewf_version() -> str:
    """``"pyewf 20240506"`` (or why it cannot be loaded)."""
    try:
        import pyewf
    except ImportError:
        return "pyewf (not installed)"
    return f"pyewf {pyewf.get_version()}"


def _stored(handle: Any) -> dict[str, str]:
    stored = {}
    for alg, name in (("md5", "MD5"), ("sha1", "SHA1"), ("sha256", "SHA256")):
        value = handle.get_hash_value(name)
        if value:
            stored[alg] = value.lower()
    return stored


def _open_libewf(segments: Sequence[Path]) -> tuple[Any, list[Any]]:
    """A pyewf handle on the set, reading through descriptors of the evidence opener (O_NOATIME),
    and those file objects (the caller closes both).

    Raises :class:`~bitwitness.images.ewf_ltree.LtreeBudgetError` before libewf opens a set whose
    file list (ltree) it would need too much memory to parse, ``OSError`` (pyewf) and
    :class:`ImportError`.
    """
    import pyewf

    from bitwitness.evidence_io import open_file_objects
    from bitwitness.images.ewf_ltree import check_ltree

    names = pyewf.glob(str(segments[0]))
    check_ltree(names)  # libewf parses any file list (ltree) in the set while opening it
    handle = pyewf.handle()
    files = open_file_objects(names)
    try:
        handle.open_file_objects(files, "r")
    except BaseException:
        for file in files:
            file.close()
        raise
    return handle, files


def _close_libewf(handle: Any, files: Sequence[Any]) -> None:
    try:
        handle.close()
    finally:
        for file in files:
            file.close()


def _read_range(handle: Any, offset: int, length: int) -> bytes:
    """Exactly ``length`` media bytes at ``offset`` as libewf reads them (``OSError`` when it
    returns nothing before the end)."""
    data = handle.read_buffer_at_offset(length, offset)
    if len(data) == length:
        return data
    parts = [data]
    got = len(data)
    while got < length:
        more = handle.read_buffer_at_offset(length - got, offset + got)
        if not more:
            raise OSError(f"libewf returned no data at media offset {offset + got}")
        parts.append(more)
        got += len(more)
    return b"".join(parts)


def read_with_libewf(segments: Sequence[Path], algorithms: Sequence[str], task: ProgressTask,
                     cancel: threading.Event | None = None) -> tuple[int, dict[str, str],
                                                                       dict[str, str]]:
    """Media size, stored hashes and recomputed hashes, as libewf sees the set, in a pass of
    its own (what :class:`LibewfPass` falls back to when libewf's bytes differ from ours).

    Raises ``OSError`` (from pyewf), :class:`ImportError` or
    :class:`~bitwitness.images.ewf_ltree.LtreeBudgetError` (see :func:`_open_libewf`).
    """
    handle, files = _open_libewf(segments)
    try:
        size = handle.get_media_size()
        stored = _stored(handle)
        hasher = ThreadedHasher(algorithms, depth=4)
        try:
            offset = 0
            while offset < size:
                if cancel is not None and cancel.is_set():
                    raise Interrupted("verification interrupted")
                data = _read_range(handle, offset, min(BLOCK_SIZE, size - offset))
                hasher.update(data)
                offset += len(data)
                task.advance(len(data))
        finally:
            hashes = hasher.close()
    finally:
        _close_libewf(handle, files)
    return size, stored, hashes


#: What reading through libewf gave: (media size, stored hashes, computed hashes), or the error
#: pyewf raised (``OSError``) or that it is not installed (``ImportError``).
LibewfOutcome = tuple[int, dict[str, str], dict[str, str]] | OSError | ImportError


def read_outcome(segments: Sequence[Path], algorithms: Sequence[str], task: ProgressTask,
                 cancel: threading.Event | None = None) -> LibewfOutcome:
    """:func:`read_with_libewf`, its errors returned rather than raised (``Interrupted`` still
    raises); the task is finished either way."""
    try:
        return read_with_libewf(segments, algorithms, task, cancel)
    except (OSError, ImportError) as exc:  # pyewf raises IOError/OSError for everything
        return exc
    finally:
        task.finish()


#: Our reader's blocks held while libewf reads the same ranges (each ~4 MiB): how far libewf's
#: requests run ahead of the comparison, so that its thread never waits for one.
AHEAD = 4
#: libewf readers (each its own handle, taking ranges in turn): libewf costs ~2.3x our decoding
#: with zlib's inflate (scripts/build-pyewf.sh) and ~7x with its own (PyPI's wheel), so on two
#: cores or more a second one keeps it off the critical path.
READERS = 2
_END = object()


def _reader_count(segments: Sequence[Path]) -> int:
    """:data:`READERS` handles, or one for a set that carries a file list (ltree): each handle
    parses the whole list and keeps it (bounded per handle by ``check_ltree``, not twice)."""
    from bitwitness.images.ewf_ltree import ltree_sections

    if any(ltree_sections(Path(segment)) for segment in segments):
        return 1
    return max(1, min(READERS, os.cpu_count() or 1))


class LibewfPass:
    """libewf reading the very ranges our reader's pass yields, on threads of its own, compared
    byte for byte with ours as they come: one pass, two readers.

    Why bytes, not hashes: two equal byte strings have equal digests, so libewf's hashes are
    ours whenever every range agrees, and a comparison (``memcmp``) costs a fraction of hashing
    the media a second time (MD5 alone bounds a verification); it is the stronger check too (no
    collision can hide a difference) and it says where the readers part: the differing chunks'
    media ranges. Only when something differs (bytes or media size) is the set read once more
    through libewf, hashing what it returns (:func:`read_with_libewf`), so that the record holds
    libewf's own digests beside ours.

    Our pass calls :meth:`update` with each block (offset, bytes) in media order; the block is
    sent to libewf's thread as a request and kept until libewf's bytes for it arrive, at most
    :data:`AHEAD` blocks (bounded memory). libewf's decompression runs while our pass decodes
    and hashes the following blocks (pyewf releases the GIL while it reads). ``cancel`` stops
    the thread; :meth:`result` waits for it.
    """

    def __init__(self, segments: Sequence[Path], algorithms: Sequence[str], task: ProgressTask,
                 cancel: threading.Event, *, chunk_size: int,
                 interrupt: threading.Event | None = None) -> None:
        """``cancel`` ends libewf's threads (set by :meth:`stop`); ``interrupt`` (the caller's
        own stop event, never set here) also stops a re-read after a disagreement."""
        self._segments = list(segments)
        self._algorithms = tuple(algorithms)
        self._task = task
        self._cancel = cancel
        self._interrupt = interrupt or cancel
        self._chunk_size = max(1, chunk_size)
        count = _reader_count(self._segments)
        self._requests: list[queue.Queue[object]] = [queue.Queue() for _ in range(count)]
        self._replies: list[queue.Queue[object]] = [queue.Queue() for _ in range(count)]
        self._turn = 0  #: the reader the next request goes to (they take turns)
        self._pending: deque[tuple[int, bytes | bytearray | memoryview, int]] = deque()
        self._size: int | None = None
        self._stored: dict[str, str] = {}
        self._failure: BaseException | None = None
        self._compared = 0  #: media bytes compared with ours
        self.differing: list[tuple[int, int]] = []  #: media byte ranges [start, end) that differ
        self._differing_bytes = 0
        self._differing_chunks = 0
        self._ended = False
        # run in a copy of the caller's context: the examiner's --max-ltree applies there too
        context = contextvars.copy_context()
        self._threads = [threading.Thread(target=context.copy().run, name="libewf-pass",
                                          daemon=True, args=(self._run, n))
                         for n in range(count)]
        for thread in self._threads:
            thread.start()

    # --- libewf's thread -------------------------------------------------------------------

    def _run(self, n: int) -> None:
        replies = self._replies[n]
        try:
            handle, files = _open_libewf(self._segments)
        except BaseException as exc:  # OSError, ImportError, LtreeBudgetError or a bug
            replies.put(exc)
            return
        try:
            size = handle.get_media_size()
            if n == 0:
                self._size, self._stored = size, _stored(handle)
            while True:
                request = self._requests[n].get()
                if request is _END or self._cancel.is_set():
                    break
                offset, length = cast("tuple[int, int]", request)
                length = max(0, min(length, size - offset))
                data = _read_range(handle, offset, length) if length else b""
                self._task.advance(len(data))
                replies.put(data)
        except BaseException as exc:
            replies.put(exc)
        finally:
            _close_libewf(handle, files)

    # --- our pass's side ---------------------------------------------------------------------

    def update(self, offset: int, data: bytes | bytearray | memoryview) -> None:
        """Our reader's block at media ``offset``: libewf reads the same range; compared once
        its bytes are back (waits while :data:`AHEAD` blocks are already waiting)."""
        if self._failure is not None or self._ended:
            return
        n = self._turn
        self._turn = (n + 1) % len(self._requests)
        self._requests[n].put((offset, len(data)))
        self._pending.append((offset, data, n))
        while len(self._pending) > AHEAD and self._failure is None:
            self._compare_next()

    def _reply(self, n: int) -> object:
        while True:
            try:
                return self._replies[n].get(timeout=0.1)
            except queue.Empty:
                if self._cancel.is_set() and not self._threads[n].is_alive():
                    raise Interrupted("verification interrupted") from None

    def _compare_next(self) -> None:
        offset, ours, n = self._pending.popleft()
        reply = self._reply(n)
        if isinstance(reply, BaseException):
            self._failure = reply
            self._pending.clear()
            return
        theirs = cast("bytes", reply)
        self._compared += len(theirs)
        same = (theirs == ours) if isinstance(ours, (bytes, bytearray)) else \
            (theirs == bytes(ours))
        if not same:
            self._locate(offset, ours, theirs)

    def _locate(self, offset: int, ours: bytes | bytearray | memoryview, theirs: bytes) -> None:
        """Record the chunk-sized media ranges of this block where the readers differ (a
        shorter reply, libewf's media ending early, is the media-size difference instead)."""
        a, b = memoryview(ours), memoryview(theirs)
        step = self._chunk_size - offset % self._chunk_size
        pos = 0
        while pos < len(b):
            end = min(pos + step, len(b))
            if a[pos:end].tobytes() != b[pos:end].tobytes():
                self._differing_bytes += end - pos
                self._differing_chunks += 1
                start = offset + pos
                if self.differing and self.differing[-1][1] == start:
                    self.differing[-1] = (self.differing[-1][0], offset + end)
                elif len(self.differing) < MAX_RANGES:
                    self.differing.append((start, offset + end))
            pos, step = end, self._chunk_size

    def finish(self) -> None:
        """Compare what is still waiting and let libewf's thread end (our pass is over)."""
        if self._ended:
            return
        self._ended = True
        while self._pending and self._failure is None:
            self._compare_next()
        for requests in self._requests:
            requests.put(_END)

    def stop(self) -> None:
        """Our pass failed or was interrupted: end libewf's thread without comparing."""
        self._cancel.set()
        self._task.finish()
        self._ended = True
        for requests in self._requests:
            requests.put(_END)
        for thread in self._threads:
            thread.join()

    def result(self, computed: dict[str, str], media_size: int) -> LibewfOutcome:
        """What libewf gave once it has read everything: media size, stored hashes and its
        hashes (ours when every byte agreed; else from a pass of its own). Re-raises
        ``Interrupted`` or a bug."""
        try:
            self.finish()
            for thread in self._threads:
                thread.join()
            failure = self._failure
            for replies in self._replies:  # a reader that failed after its last range
                while failure is None and not replies.empty():
                    left = replies.get()
                    if isinstance(left, BaseException):
                        failure = left
            if isinstance(failure, (OSError, ImportError)):
                return failure
            if failure is not None:
                raise failure
            assert self._size is not None
            if self.differing or self._size != media_size or self._compared != min(
                    self._size, media_size):
                # libewf's own digests for the record: read again, hashing (a disagreement only)
                try:
                    return read_with_libewf(self._segments, self._algorithms,
                                            NullMediator().begin("libewf", 0), self._interrupt)
                except (OSError, ImportError) as exc:
                    return exc
            return self._size, self._stored, {alg: computed[alg] for alg in self._algorithms}
        finally:
            self._task.finish()

    def byte_differences(self, sector_size: int) -> tuple[str, ...]:
        """The differing media ranges, in words (empty when libewf's bytes equal ours)."""
        if not self.differing:
            return ()
        shown = ", ".join(f"media offset {start} (sectors {start // sector_size}-"
                          f"{(end - 1) // sector_size})" for start, end in self.differing[:10])
        more = "" if len(self.differing) <= 10 else f" and {len(self.differing) - 10} more"
        return (f"media bytes: libewf's differ from ours in {self._differing_chunks} chunk(s) "
                f"({self._differing_bytes} bytes of media), at {shown}{more}",)


def libewf_check(segments: Sequence[Path], algorithms: Sequence[str], *, media_size: int,
                 stored: dict[str, str], computed: dict[str, str], task: ProgressTask,
                 cancel: threading.Event | None = None) -> ReaderCheck:
    """Read the set through libewf and compare every result with our reader's."""
    return libewf_compare(read_outcome(segments, algorithms, task, cancel),
                          media_size=media_size, stored=stored, computed=computed)


def libewf_compare(outcome: LibewfOutcome, *, media_size: int, stored: dict[str, str],
                   computed: dict[str, str], byte_differences: Sequence[str] = ()) -> ReaderCheck:
    """Compare what libewf gave (media size, stored and computed hashes) with our reader's;
    ``byte_differences`` are the media ranges where its bytes differ (:class:`LibewfPass`)."""
    reader = libewf_version()
    if not isinstance(outcome, tuple):
        return ReaderCheck(reader=reader, media_size=None, hashes={}, stored_hashes={},
                           agree=False, error=str(outcome),
                           differences=(f"libewf could not read the image: {_short(outcome)}",))
    size, their_stored, hashes = outcome
    differences = list(byte_differences)
    if size != media_size:
        differences.append(f"media size: ours {media_size}, libewf {size}")
    for alg in sorted(set(stored) | set(their_stored)):
        ours, theirs = stored.get(alg), their_stored.get(alg)
        if ours != theirs:
            differences.append(f"stored {alg}: ours {ours or 'none'}, libewf {theirs or 'none'}")
    for alg in sorted(hashes):
        if computed.get(alg) != hashes[alg]:
            differences.append(f"computed {alg}: ours {computed.get(alg)}, libewf {hashes[alg]}")
    return ReaderCheck(reader=reader, media_size=size, hashes=hashes, stored_hashes=their_stored,
                       agree=not differences, differences=tuple(differences))


def _short(exc: BaseException) -> str:
    """libewf chains its messages from the outermost call inwards; the useful part is the
    innermost cause, which comes second (the first only names the Python binding)."""
    parts = [p.strip() for p in str(exc).split(". ") if p.strip()]
    return parts[1] if len(parts) > 1 else str(exc)
