"""The list TSK's orphan search starts from, collected by a walk that already read every folder.

TSK finds the files of ``$OrphanFiles`` by walking every unallocated inode and keeping those
that no name points to. The "named" side is a list of the unallocated inodes that names point
to (``TSK_FS_INFO.list_inum_named``), which TSK builds by walking every folder from the root
(``tsk_fs_dir_load_inum_named``) unless a recursive ``tsk_fs_dir_walk`` from the root (what
``fls -r`` makes) collected it on its way. BitWitness walks the folders itself
(:meth:`~.filesystem.FileSystem._walk_records`), so a whole ``ls -r``, ``timeline`` or
``export`` read every folder a second time when it came to ``$OrphanFiles``: on NTFS of
100,000 files, a third of the MFT's reads of the whole listing.

:class:`NamedList` collects the same addresses while the walk reads each folder (our pytsk3
build's eighth change: ``records(attributes, named)`` loads each name's inode as TSK's walk
loads it, which keeps a deleted NTFS file's inode the record leaves out) and hands them to TSK
(``FS_Info.name_unallocated``, the same change) only when the walk read
every folder TSK's own walk reads: the names of a folder only BitWitness enters (a deleted
folder whose inode it reads where TSK loaded none) are left out, as TSK never lists them; a
folder TSK enters and the walk does not (unreadable, a loop, too deep), or one near TSK's depth
or path-length limits (where TSK's walk stops a folder's listing early), drops the list. TSK
then walks as before, so the orphans found are TSK's in every case.
"""

from __future__ import annotations

from typing import Any

from bitwitness.report.browse.tsk import RECORD_META, Record
from bitwitness.report.browse.tskenters import enters

_DOTS = (b".", b"..")
#: tsk_fs_dir_walk's MAX_DEPTH and DIR_STRSZ (fs_dir.c): past them it stops listing the folder
#: it is in. A walk that comes within these margins of them is not handed over.
TSK_MAX_DEPTH = 128
TSK_DIR_STRSZ = 4096
_DEPTH_MARGIN = 8
_PATH_MARGIN = 512


def tsk_enters(record: Record, walked: tuple[int, int] | None = None) -> bool:
    """Whether ``tsk_fs_dir_walk`` with recursion enters the name of ``record``: the rule of
    :func:`~.tskenters.enters`, for an inode it loaded, and not ``.`` or ``..`` (it enters
    ``$OrphanFiles`` too, unless told not to). ``walked``: the (type, flags) of the inode the
    walk loads where the record has none."""
    if record[RECORD_META] is not None:
        walked = (record[RECORD_META + 1], record[RECORD_META + 2])
    return walked is not None and record[0] not in _DOTS and enters(record[3], record[2],
                                                                    *walked)


class NamedList:
    """The unallocated inodes the names of a walk from the root point to, while the walk stays
    the one TSK makes (:attr:`whole`)."""

    __slots__ = ("addresses", "whole")

    def __init__(self) -> None:
        #: what ``records(attributes, named)`` appends to for each folder TSK's walk lists
        #: (:func:`~.tsk.records_of`): the inodes that walk loads, as it loads them, and finds
        #: unallocated; dots included
        self.addresses: list[int] = []
        self.whole = True  #: False once the walk left TSK's way; nothing is handed over then

    def give_up(self) -> None:
        """The walk cannot follow TSK's way (a folder unreadable or too deep for it): nothing
        is handed over."""
        self.whole = False

    def check(self, record: Record, *, enters: bool, path: str, depth: int,
              walked: tuple[int, int] | None = None) -> bool:
        """Whether TSK's walk enters the name of ``record`` (then its folder's names count),
        given the walk's own choice (``enters``), at ``path`` with ``depth`` folders open from
        the root. A folder TSK enters and the walk does not, or one near TSK's limits, ends
        the list (:meth:`give_up`); one the walk enters and TSK does not (a deleted folder
        whose inode only BitWitness reads) is walked, its names left out. ``walked``: as
        :func:`tsk_enters` takes it."""
        if not tsk_enters(record, walked):
            return False
        if not enters or (depth >= TSK_MAX_DEPTH - _DEPTH_MARGIN
                          # four bytes at most per character of the UTF-8 TSK measures
                          or 4 * len(path) >= TSK_DIR_STRSZ - _PATH_MARGIN):
            self.whole = False
            return False
        return self.whole

    def hand_over(self, fs: Any) -> bool:
        """Give TSK the list (``fs`` a pytsk3 ``FS_Info``) if the walk stayed TSK's and the
        binding takes one; whether TSK took it (it keeps a list it has already). Once only:
        the list counts nothing afterwards."""
        name_unallocated = getattr(fs, "name_unallocated", None)
        whole, self.whole = self.whole, False  # handed over once; nothing more is counted
        if not whole or name_unallocated is None:
            return False
        return bool(name_unallocated(sorted(set(self.addresses))))
