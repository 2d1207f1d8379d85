"""The files of an EWF logical evidence file (L01, Lx01) behind the browsing interface.

A logical evidence file is a file tree without a file system: libewf reads the tree (names,
sizes, times, stored hashes, where each file's bytes lie) and pyewf hands it out as file entries
(:mod:`bitwitness.images.ewf_logical`). ``ls``, ``stat``, ``cat``, ``export``, ``timeline`` and
the browser read it through the same :class:`~bitwitness.report.browse.interface.
BrowsableFileSystem` methods as a TSK file system; the volume tree gives it as its only node
(``-p 0``), so TSK never looks at the media for a partition table (a disk image stored as the
first file would otherwise be taken for the evidence's own disk).

The "inode" of an entry is its position in the tree, depth first, the root being 1 (what
``--inode`` takes). There is no deleted entry and no owner or mode: an L01 records neither.
Paths are looked up as stored, then by the spellings listings and export manifests print
(:func:`~bitwitness.report.browse.safenames.spellings`): a name holding ``/``, or ``..``, is
reached only as ``%2F``/``%2E%2E``.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

from bitwitness.errors import FileSystemError
from bitwitness.images.ewf_logical import MAX_DEPTH, LogicalEntry, LogicalTree
from bitwitness.progress import UNREAD, Mediator
from bitwitness.report.browse.entries import Entry, FileStat, Selection, Times
from bitwitness.report.browse.filesystem import split_path
from bitwitness.report.browse.safenames import shown, spellings
from bitwitness.report.browse.volumes import Partition

_NUMBER = re.compile(r"^\d+$")
#: pyewf objects of entries recently listed or looked up, kept so that reading them right after
#: (export, cat) does not walk the tree again; bounded whatever the number of files.
_KEEP = 4096


def to_entry(entry: LogicalEntry) -> Entry:
    kind = "d" if entry.is_dir else "r"
    return Entry(path=entry.path, name=entry.name, inode=entry.number, attr_type=None,
                 attr_id=None, stream=None, name_type=kind, meta_type=kind, deleted=False,
                 realloc=False, size=entry.size,
                 times=Times(entry.modified, entry.accessed, entry.changed, entry.created))


class LogicalFileSystem:
    """The file tree of one logical evidence file, read-only."""

    def __init__(self, tree: LogicalTree, partition: Partition, fs_type: str) -> None:
        self.type = fs_type  #: "l01" or "lx01"
        self.partition = partition
        self._tree = tree
        self._objects: OrderedDict[int, tuple[Any, LogicalEntry]] = OrderedDict()

    def _keep(self, obj: Any, entry: LogicalEntry) -> None:
        self._objects[entry.number] = (obj, entry)
        self._objects.move_to_end(entry.number)
        while len(self._objects) > _KEEP:
            self._objects.popitem(last=False)

    def _object(self, entry: Entry) -> tuple[Any, LogicalEntry]:
        kept = self._objects.get(entry.inode)
        if kept is not None:
            return kept
        found = self._tree.by_number(entry.inode)
        if found is None:
            raise FileSystemError(f"entry {entry.inode} does not exist in this {self.type}")
        self._keep(*found)
        return found

    # --- listing and lookup ----------------------------------------------------------------

    def walk(self, path: str = "/", *, recursive: bool = False,
             selection: Selection = Selection.ALLOCATED, mediator: Mediator | None = None,
             file_names: bool = False) -> Iterator[Entry]:
        """Entries of a folder (and below it, depth first), in the ltree's order."""
        start = self.lookup(path)
        if not start.is_dir:
            raise FileSystemError(f"{shown(start.path)}: not a directory")
        if selection is Selection.DELETED:
            return  # a logical evidence file records no deleted entry
        obj, logical = self._object(start)
        pending = [self._tree.children(obj, logical.number, logical.path)]
        while pending:
            child = next(pending[-1], None)
            if child is None:
                pending.pop()
                continue
            self._keep(*child)
            entry = to_entry(child[1])
            yield entry
            if recursive and entry.is_dir and child[1].children:
                if len(pending) >= MAX_DEPTH:
                    if mediator is not None:
                        mediator.notice(f"{shown(entry.path)}: deeper than {MAX_DEPTH} folders, "
                                        "not walked", level=UNREAD)
                    continue
                pending.append(self._tree.children(child[0], entry.inode, entry.path))

    def lookup(self, path: str) -> Entry:
        return to_entry(self._resolve(path)[-1][1])

    def names(self, path: str) -> list[str]:
        return [logical.name for _, logical in self._resolve(path)[1:]]

    def _resolve(self, path: str) -> list[tuple[Any, LogicalEntry]]:
        """The chain of entries from the root to ``path``."""
        chain = [self._tree.root()]
        for part in split_path(path):
            obj, logical = chain[-1]
            if not logical.is_dir:
                raise FileSystemError(f"{shown(logical.path)}: not a directory")
            chain.append(self._child(obj, logical, part))
        self._keep(*chain[-1])
        return chain

    def _child(self, obj: Any, folder: LogicalEntry, part: str) -> tuple[Any, LogicalEntry]:
        """The child ``part`` names: as stored, else by one of the printed spellings (a spelling
        that fits two different names is refused)."""
        children = list(self._tree.children(obj, folder.number, folder.path))
        where = f"{'' if folder.path == '/' else folder.path}/{part}"
        plain = [c for c in children if c[1].name not in (".", "..")]
        for pool, matches in ((plain, lambda n: n == part),
                              (children, lambda n: part in spellings(n))):
            found = [c for c in pool if matches(c[1].name)]
            if not found:
                continue
            if len({c[1].name for c in found}) > 1:
                choices = ", ".join(f"{shown(c[1].name)!r} (inode {c[1].number})" for c in found)
                raise FileSystemError(f"{shown(where)} names more than one entry: {choices}; "
                                      "give it by --inode")
            return found[0]
        raise FileSystemError(f"{shown(where)}: no such file or folder")

    def by_address(self, address: str) -> Entry:
        if not _NUMBER.match(address.strip()):
            raise FileSystemError(f"{address!r} is not an entry number (its inode in listings)")
        found = self._tree.by_number(int(address))
        if found is None:
            raise FileSystemError(f"inode {int(address)} does not exist in this {self.type} "
                                  f"(1-{self._tree.count + 1})")
        self._keep(*found)
        return to_entry(found[1])

    def target(self, path: str | None = None, address: str | None = None) -> Entry:
        if (path is None) == (address is None):
            raise FileSystemError("give either a path or an inode, not both")
        return self.lookup(path) if path is not None else self.by_address(address or "")

    # --- metadata and content --------------------------------------------------------------

    def stored_hashes(self, entry: Entry) -> dict[str, str]:
        """The MD5/SHA-1 the evidence file records for a file (``ha``/``sha``), as libewf reads
        them: what an export of its bytes must reproduce."""
        _, logical = self._object(entry)
        return {alg: value for alg, value in (("md5", logical.md5), ("sha1", logical.sha1))
                if value}

    def stat(self, entry: Entry) -> FileStat:
        _, logical = self._object(entry)
        note = ("neither children, data nor a stored hash says whether this is an empty folder "
                "or an empty file; shown as a folder" if logical.kind_guessed else None)
        return FileStat(entry=entry, filesystem=self.type, allocated=True, mode="---------",
                        uid=0, gid=0, links=1, attributes=(), note=note)

    def iter_content(self, entry: Entry, block: int = 1 << 20) -> Iterator[bytes]:
        if entry.is_dir:
            raise FileSystemError(f"{shown(entry.path or entry.address)}: is a folder")
        obj, logical = self._object(entry)
        what = shown(logical.path)
        offset = 0
        while offset < logical.size:
            want = min(block, logical.size - offset)
            yield self._tree.read(obj, offset, want, what)
            offset += want

    def read(self, entry: Entry, offset: int = 0, size: int = 4096) -> bytes:
        if entry.is_dir or offset >= entry.size:
            return b""
        obj, logical = self._object(entry)
        return self._tree.read(obj, offset, min(size, logical.size - offset), shown(logical.path))

    def content_note(self, entry: Entry) -> str | None:
        return None  # every entry is a file the examiner selected: its bytes are its own

    def file_name_times(self, entry: Entry) -> Times | None:
        return None
