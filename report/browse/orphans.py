"""The ``$OrphanFiles`` folder of an ext2/3/4 file system, where libtsk fails to build it.

An orphan is an unallocated inode that was used once (TSK's ``USED`` flag) and that no name
reaches: ``fls`` lists it as ``$OrphanFiles/OrphanFile-N``. The libtsk that pytsk3 bundles
(4.15) fails to open that folder as a whole ("Unable to open directory", no reason given) as
soon as one orphan is a deleted folder whose inode records no content (ext2 and ext4 clear
size and blocks of a removed folder, so every ``rm -r`` leaves one): TSK walks each orphan
folder to learn which inodes it still names, and that walk now fails where earlier releases
(``fls`` 4.11) read an empty folder. One such folder hid every orphan of the file system.

:func:`find_orphans` builds the folder the way ``tsk_fs_dir_find_orphans`` does, with the
unreadable orphan folder read as empty (as 4.11 reads it):

1. every inode a name reaches is collected by a walk from the root (``$OrphanFiles`` itself
   left out), recursing where TSK's directory walk recurses; of those, the unallocated ones
   are "named";
2. the inodes ``first_inum`` .. ``last_inum - 1`` that are unallocated, used and not named
   are the orphans, in inode order; each orphan folder is walked (its deleted names only, as
   TSK asks) and the inodes it names are not orphans of their own, being reachable through
   it. TSK drops those from its list by moving its last entry into the freed place; so does
   this, so that the order matches ``fls``.

The entries are :class:`OrphanFile` objects: what pytsk3's directory iteration gives (``info``
with ``name`` and ``meta``, iteration over the attributes), with the name TSK makes up.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytsk3

from bitwitness.report.browse.tsk import TSK_FAILURES
from bitwitness.report.browse.tskenters import enters

_NAME_UNALLOC = int(pytsk3.TSK_FS_NAME_FLAG_UNALLOC)
_META_ALLOC = int(pytsk3.TSK_FS_META_FLAG_ALLOC)
_META_UNALLOC = int(pytsk3.TSK_FS_META_FLAG_UNALLOC)
_META_USED = int(pytsk3.TSK_FS_META_FLAG_USED)
_DIR_META = int(pytsk3.TSK_FS_META_TYPE_DIR)
_UNDEF_NAME = int(pytsk3.TSK_FS_NAME_TYPE_UNDEF)
#: Folder depth TSK's walk stops at (``MAX_DEPTH`` in tsk_fs_i.h is 128)
_MAX_DEPTH = 128


@dataclass(frozen=True)
class OrphanName:
    """The made-up directory entry of an orphan, with the fields pytsk3's ``TSK_FS_NAME`` has."""

    name: bytes
    meta_addr: int
    meta_seq: int
    flags: int = _NAME_UNALLOC
    type: int = _UNDEF_NAME
    par_addr: int = 0


@dataclass(frozen=True)
class OrphanInfo:
    name: OrphanName
    meta: Any


class OrphanFile:
    """An orphan as a listed pytsk3 file: its inode's file with the made-up name."""

    def __init__(self, file: Any, name: OrphanName) -> None:
        self._file = file
        self.info = OrphanInfo(name, file.info.meta)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._file)

    def __getattr__(self, attr: str) -> Any:  # read_random and the like: the inode's file
        return getattr(self._file, attr)


def find_orphans(fs: Any, *, root_inum: int, first_inum: int, last_inum: int,
                 scan_end: int | None = None) -> list[Any]:
    """The entries of ``$OrphanFiles`` (inode ``last_inum``) of the pytsk3 file system ``fs``.

    Costs one walk of the whole tree and one inode lookup per inode of the file system; only
    used where libtsk's own folder fails to open. ``scan_end``: where the lookups stop when
    fewer inodes can exist than the superblock declares (their tables must lie in the volume).
    """
    named = _named_unallocated(fs, root_inum, orphan_inum=last_inum)
    orphans: list[OrphanFile] = []
    reachable: set[int] = set()
    end = last_inum if scan_end is None else min(last_inum, scan_end)
    for inum in range(first_inum, end):
        file = _open_meta(fs, inum)
        meta = file.info.meta if file is not None else None
        if meta is None:
            continue
        flags = int(meta.flags)
        if not (flags & _META_UNALLOC and flags & _META_USED):
            continue
        addr = int(meta.addr)
        if addr in named or addr in reachable:
            continue
        name = OrphanName(name=f"OrphanFile-{addr}".encode(), meta_addr=addr,
                          meta_seq=int(meta.seq) - 1)
        orphans.append(OrphanFile(file, name))
        if int(meta.type) == _DIR_META:
            _mark_reachable(fs, addr, reachable, last_inum)
    return _without_reachable(orphans, reachable)


def _without_reachable(orphans: list[OrphanFile], reachable: set[int]) -> list[Any]:
    """TSK's clean-up: an orphan a later orphan folder names is replaced by the list's last
    entry (the list shrinking by one), except when it is the last entry itself."""
    i = 0
    while i < len(orphans):
        if orphans[i].info.name.meta_addr in reachable and i != len(orphans) - 1:
            orphans[i] = orphans[-1]
            orphans.pop()
        i += 1
    return list(orphans)


def _open_meta(fs: Any, inum: int) -> Any | None:
    try:
        return fs.open_meta(inode=inum)
    except TSK_FAILURES:
        return None


def _entries(fs: Any, inum: int) -> list[Any]:
    """The entries of folder ``inum``; none where libtsk cannot read it (TSK goes on too)."""
    try:
        return list(fs.open_dir(inode=inum))
    except TSK_FAILURES:
        return []


def _descends(name: Any, meta: Any, orphan_inum: int) -> bool:
    """Whether TSK's recursive walk enters this entry (the rule of ``fls -r``)."""
    if meta is None or name.name in (b".", b"..") or int(name.meta_addr) == orphan_inum:
        return False
    return enters(int(name.type), int(name.flags), int(meta.type), int(meta.flags))


def _named_unallocated(fs: Any, root_inum: int, *, orphan_inum: int) -> set[int]:
    """Unallocated inodes that some name under the root reaches."""
    named: set[int] = set()
    stack: list[int] = [root_inum]

    def walk(inum: int) -> None:
        for file in _entries(fs, inum):
            name, meta = file.info.name, file.info.meta
            if name is None:
                continue
            if meta is not None and int(meta.flags) & _META_UNALLOC:
                named.add(int(meta.addr))
            child = int(name.meta_addr)
            if (_descends(name, meta, orphan_inum) and child not in stack
                    and len(stack) < _MAX_DEPTH):
                stack.append(child)
                walk(child)
                stack.pop()

    walk(root_inum)
    return named


def _mark_reachable(fs: Any, folder: int, reachable: set[int], orphan_inum: int) -> None:
    """Add the inodes the deleted names under orphan ``folder`` reach to ``reachable``.

    As TSK's walk of an orphan folder: it stops at the first allocated inode or at an inode
    already seen (a loop), and a folder that cannot be read is empty."""
    stack: list[int] = [folder]

    def walk(inum: int) -> bool:
        for file in _entries(fs, inum):
            name, meta = file.info.name, file.info.meta
            if name is None:
                continue
            if (int(name.flags) & _NAME_UNALLOC and name.name not in (b".", b"..")
                    and meta is not None):
                if int(meta.flags) & _META_ALLOC or int(meta.addr) in reachable:
                    return False
                reachable.add(int(meta.addr))
            child = int(name.meta_addr)
            if (_descends(name, meta, orphan_inum) and child not in stack
                    and len(stack) < _MAX_DEPTH):
                stack.append(child)
                if not walk(child):
                    return False
                stack.pop()
        return True

    walk(folder)
