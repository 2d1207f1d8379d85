"""The file tree of an EWF logical evidence file (L01, Lx01), as libewf reads it.

A logical evidence file holds files, not a disk: EnCase and FTK Imager copy the selected files'
contents end to end into the "media" (chunks and media hashes as in an E01/Ex01) and describe
them in a UTF-16 text (the ``ltree`` section of an L01, the single files section 0x20 of an
Lx01): names, sizes, the four times, the stored MD5/SHA-1 of each file and where its bytes lie
in the media. libewf parses that text when it opens the set and hands the tree out through
pyewf's file entries (``handle.get_root_file_entry()``, ``get_sub_file_entry(i)``, ``read``).

This module walks those entries once, depth first, and numbers them in that order (the root is
1): the number is the entry's "inode" for the browsing commands, stable for a given file and
reproducible with pyewf alone. Per entry only three numbers are kept (12 bytes: its subtree's
size, its parent's number, its index among the parent's sub entries), so memory stays small
however many files the set lists; an entry is found again by descending from the root along
those indexes, one pyewf call per level (a mount reads any of 100 000 files without walking
their folders again). A tree deeper than :data:`MAX_DEPTH` or with more than
:data:`MAX_ENTRIES` entries is refused as hostile: libewf has parsed it, but we would not list it
in bounded time.

pyewf does not say whether an entry is a folder (libewf keeps the ltree's ``p`` value to
itself): an entry with sub entries is a folder; one without, with data or a stored MD5 (``ha``,
which EnCase writes for every hashed file) is a file; one with neither is an empty folder or an
empty, unhashed file, and is shown as a folder (:attr:`LogicalEntry.is_dir`), with the ambiguity
said in ``kind_guessed``.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bitwitness.errors import CorruptImageError

#: Folders inside folders deeper than this are not a real acquisition of selected files.
MAX_DEPTH = 256
#: More entries than this in one logical evidence file is refused (EnCase's own listing of ten
#: million entries would be minutes of work; a crafted ltree can declare any number).
MAX_ENTRIES = 10_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: What pyewf raises on a damaged set or a value it cannot convert.
_PYEWF_FAILURES: tuple[type[Exception], ...] = (OSError, ValueError, TypeError, OverflowError,
                                                MemoryError)


def _message(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


@dataclass(frozen=True)
class LogicalEntry:
    """One file or folder of the logical evidence file, as libewf reads it."""

    number: int  #: position in the tree, depth first, the root being 1
    path: str  #: "/Evidence/docs/readme.txt" (names joined as stored; "/" for the root)
    name: str  #: as stored ("" for the root)
    size: int  #: bytes of data (0 for a folder)
    is_dir: bool
    kind_guessed: bool  #: neither children, data nor a stored hash says folder or file
    children: int
    created: datetime | None
    accessed: datetime | None
    modified: datetime | None  #: last written
    changed: datetime | None  #: the entry (metadata) last changed
    md5: str | None  #: the MD5 the ltree stores for the file (``ha``), lower-case hex
    sha1: str | None


def _time(value: Any) -> datetime | None:
    seconds = int(value or 0)
    if seconds <= 0:
        return None
    try:
        return _EPOCH + timedelta(seconds=seconds)
    except OverflowError:
        return None


def _hash(entry: Any, getter: str) -> str | None:
    try:
        value = getattr(entry, getter)()
    except _PYEWF_FAILURES:
        return None  # not stored (pyewf raises rather than return None)
    text = str(value or "").strip().lower()
    return text if text and text.strip("0") else None


class LogicalTree:
    """The entries of a logical evidence file; ``root`` is pyewf's root file entry.

    Not thread-safe (neither is the pyewf handle behind it); the caller serialises access.
    """

    def __init__(self, root: Any, where: str) -> None:
        self._root = root
        self._where = where  #: the first segment's name, for messages
        self._sizes = array("I")  #: subtree size (itself included) per entry, depth first
        self._parents = array("I")  #: the parent's number per entry (0 for the root)
        self._slots = array("I")  #: the entry's index among its parent's sub entries
        self.files = 0
        self.folders = 0
        self.data_bytes = 0
        self._index()

    def _call(self, what: str, func: Any, *args: Any) -> Any:
        try:
            return func(*args)
        except _PYEWF_FAILURES as exc:
            raise CorruptImageError(f"libewf cannot {what} in the logical evidence file: "
                                    f"{_message(exc)}", path=self._where) from None

    def _index(self) -> None:
        """One depth-first pass: subtree sizes, and the counts ``info`` shows."""
        sizes, parents, slots = self._sizes, self._parents, self._slots
        stack: list[tuple[Any, int, int, int]] = []  # (entry, children, next child, slot)

        def enter(entry: Any, index: int) -> None:
            if len(sizes) >= MAX_ENTRIES:
                raise CorruptImageError(f"the logical evidence file lists more than "
                                        f"{MAX_ENTRIES} entries", path=self._where)
            if len(stack) > MAX_DEPTH:
                raise CorruptImageError(f"the logical evidence file nests folders deeper than "
                                        f"{MAX_DEPTH}", path=self._where)
            count = int(self._call("count sub entries", entry.get_number_of_sub_file_entries))
            sizes.append(1)
            parents.append(stack[-1][3] + 1 if stack else 0)
            slots.append(index)
            stack.append((entry, count, 0, len(sizes) - 1))
            if len(stack) > 1:
                size = int(self._call("read a size", entry.get_size) or 0)
                if count or self._looks_like_folder(entry, size):
                    self.folders += 1
                else:
                    self.files += 1
                    self.data_bytes += size

        enter(self._root, 0)
        while stack:
            entry, count, nxt, slot = stack[-1]
            if nxt < count:
                stack[-1] = (entry, count, nxt + 1, slot)
                enter(self._call("read a sub entry", entry.get_sub_file_entry, nxt), nxt)
                continue
            stack.pop()
            if stack:
                sizes[stack[-1][3]] += sizes[slot]

    @staticmethod
    def _looks_like_folder(entry: Any, size: int) -> bool:
        return size == 0 and _hash(entry, "get_hash_value_md5") is None

    @property
    def count(self) -> int:
        """Entries below the root."""
        return len(self._sizes) - 1

    # --- entries ---------------------------------------------------------------------------

    def entry(self, obj: Any, number: int, path: str) -> LogicalEntry:
        children = int(self._call("count sub entries", obj.get_number_of_sub_file_entries))
        size = int(self._call("read a size", obj.get_size) or 0)
        md5 = _hash(obj, "get_hash_value_md5")
        is_dir = number == 1 or children > 0 or (size == 0 and md5 is None)
        guessed = number != 1 and children == 0 and size == 0 and md5 is None
        name = "" if number == 1 else str(self._call("read a name", obj.get_name) or "")
        return LogicalEntry(
            number=number, path=path or "/", name=name, size=0 if is_dir else size,
            is_dir=is_dir, kind_guessed=guessed, children=children,
            created=_time(self._call("read times", obj.get_creation_time_as_integer)),
            accessed=_time(self._call("read times", obj.get_access_time_as_integer)),
            modified=_time(self._call("read times", obj.get_modification_time_as_integer)),
            changed=_time(self._call("read times", obj.get_entry_modification_time_as_integer)),
            md5=md5, sha1=_hash(obj, "get_hash_value_sha1"))

    def root(self) -> tuple[Any, LogicalEntry]:
        return self._root, self.entry(self._root, 1, "/")

    def children(self, obj: Any, number: int, path: str) -> Iterator[tuple[Any, LogicalEntry]]:
        """The sub entries of the entry ``number`` (pyewf object ``obj``) at ``path``."""
        count = int(self._call("count sub entries", obj.get_number_of_sub_file_entries))
        child_number = number + 1
        prefix = "" if path == "/" else path
        for index in range(count):
            child = self._call("read a sub entry", obj.get_sub_file_entry, index)
            name = str(self._call("read a name", child.get_name) or "")
            yield child, self.entry(child, child_number, f"{prefix}/{name}")
            child_number += self._subtree(child_number)

    def _subtree(self, number: int) -> int:
        if not 1 <= number <= len(self._sizes):
            raise CorruptImageError("the logical evidence file changed while it was read",
                                    path=self._where)
        return int(self._sizes[number - 1])

    def by_number(self, number: int) -> tuple[Any, LogicalEntry] | None:
        """The entry numbered ``number`` (and its path), or None when there is none: one
        pyewf call per folder on its path, from the root down."""
        if not 1 <= number <= len(self._sizes):
            return None
        chain = []
        at = number
        while at != 1:
            chain.append(at)
            at = int(self._parents[at - 1])
        obj, names = self._root, []
        for at in reversed(chain):
            obj = self._call("read a sub entry", obj.get_sub_file_entry,
                             int(self._slots[at - 1]))
            names.append(str(self._call("read a name", obj.get_name) or ""))
        return obj, self.entry(obj, number, "/" + "/".join(names))

    def read(self, obj: Any, offset: int, size: int, what: str) -> bytes:
        """``size`` bytes of an entry's data from ``offset`` (all of them, or an error)."""
        data = bytes(self._call(f"read {what} at byte {offset}", obj.read_buffer_at_offset,
                                size, offset))
        if len(data) != size:
            raise CorruptImageError(f"libewf gave {len(data)} of {size} bytes of {what} at byte "
                                    f"{offset}", path=self._where)
        return data
