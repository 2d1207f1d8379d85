"""The second, independent reader: libewf through pyewf.

``--libewf`` recomputes the media hashes through libewf and compares everything it produces (media
size, stored hashes, computed hashes) with what our own reader produced. Two implementations that
agree are far stronger evidence than one; any disagreement is an error, never averaged away.
pyewf's ``OSError``/``IOError`` are caught here, once, and become the record's ``error``.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bitwitness.errors import Interrupted
from bitwitness.hashing import ThreadedHasher
from bitwitness.progress import ProgressTask
from bitwitness.verify.model import ReaderCheck

BLOCK_SIZE = 4 << 20


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


def read_with_libewf(segments: Sequence[Path], algorithms: Sequence[str], task: ProgressTask,
                     cancel: threading.Event | None = None) -> tuple[int, dict[str, str],
                                                                       dict[str, str]]:
    """Media size, stored hashes and recomputed hashes, as libewf sees the set.

    Raises ``OSError`` (from pyewf) or :class:`ImportError`; :func:`libewf_check` records them.
    Raises :class:`~bitwitness.images.ewf_ltree.LtreeBudgetError` before libewf opens a set whose
    file list (ltree) it would need too much memory to parse.
    """
    import pyewf

    from bitwitness.evidence_io import open_file_objects
    from bitwitness.images.ewf_ltree import check_ltree

    names = pyewf.glob(str(segments[0]))
    check_ltree(names)  # libewf parses any file list (ltree) in the set while opening it
    handle = pyewf.handle()
    # libewf reads through descriptors of the evidence opener (O_NOATIME), not its own opens.
    files = open_file_objects(names)
    try:
        handle.open_file_objects(files, "r")
    except BaseException:
        for file in files:
            file.close()
        raise
    try:
        size = handle.get_media_size()
        stored = _stored(handle)
        hasher = ThreadedHasher(algorithms, depth=4)
        try:
            offset = 0
            while offset < size:
                if cancel is not None and cancel.is_set():
                    raise Interrupted("verification interrupted")
                data = handle.read_buffer_at_offset(min(BLOCK_SIZE, size - offset), offset)
                if not data:
                    raise OSError(f"libewf returned no data at media offset {offset}")
                hasher.update(data)
                offset += len(data)
                task.advance(len(data))
        finally:
            hashes = hasher.close()
    finally:
        handle.close()
        for file in files:
            file.close()
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


class LibewfPass:
    """libewf reading the set on its own thread while our reader's pass runs.

    Why a thread: the two readers then consume the image in the same pass (the segment files
    come from disk once, for whichever reader gets there first), and libewf's decompression and
    hashing (pyewf releases the GIL while it reads) use the core our pass leaves idle, instead of
    a second pass after the first. ``cancel`` stops it; :meth:`result` waits for it.
    """

    def __init__(self, segments: Sequence[Path], algorithms: Sequence[str], task: ProgressTask,
                 cancel: threading.Event) -> None:
        self._outcome: LibewfOutcome | BaseException | None = None
        # run in a copy of the caller's context: the examiner's --max-ltree applies there too
        context = contextvars.copy_context()
        self._thread = threading.Thread(target=context.run, name="libewf-pass", daemon=True,
                                        args=(self._run, segments, algorithms, task, cancel))
        self._thread.start()

    def _run(self, segments: Sequence[Path], algorithms: Sequence[str], task: ProgressTask,
             cancel: threading.Event) -> None:
        try:
            self._outcome = read_outcome(segments, algorithms, task, cancel)
        except BaseException as exc:  # Interrupted or a bug: raised again by result()
            self._outcome = exc

    def result(self) -> LibewfOutcome:
        """What libewf gave, once it has read everything; re-raises ``Interrupted`` or a bug."""
        self._thread.join()
        outcome = self._outcome
        if isinstance(outcome, (OSError, ImportError, tuple)):
            return outcome
        assert outcome is not None
        raise outcome


def libewf_check(segments: Sequence[Path], algorithms: Sequence[str], *, media_size: int,
                 stored: dict[str, str], computed: dict[str, str], task: ProgressTask,
                 cancel: threading.Event | None = None) -> ReaderCheck:
    """Read the set through libewf and compare every result with our reader's."""
    return libewf_compare(read_outcome(segments, algorithms, task, cancel),
                          media_size=media_size, stored=stored, computed=computed)


def libewf_compare(outcome: LibewfOutcome, *, media_size: int, stored: dict[str, str],
                   computed: dict[str, str]) -> ReaderCheck:
    """Compare what libewf gave (media size, stored and computed hashes) with our reader's."""
    reader = libewf_version()
    if not isinstance(outcome, tuple):
        return ReaderCheck(reader=reader, media_size=None, hashes={}, stored_hashes={},
                           agree=False, error=str(outcome),
                           differences=(f"libewf could not read the image: {_short(outcome)}",))
    size, their_stored, hashes = outcome
    differences = []
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
