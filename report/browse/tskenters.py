"""Which names ``tsk_fs_dir_walk`` enters when it walks recursively (fs_dir.c's rule).

Four walks follow the rule: the listing from pytsk3 objects and the one from records
(:mod:`.filesystem`), the orphan search that stands in where libtsk cannot build
``$OrphanFiles`` (:mod:`.orphans`), and the list handed to TSK's orphan search
(:mod:`.namedlist`). Each reads the four fields from its own objects and asks :func:`enters`;
what a walk adds to the rule (``.``/``..``, loops, ``$OrphanFiles``) stays with it.
"""

from __future__ import annotations

import pytsk3

_NAME_ALLOC = int(pytsk3.TSK_FS_NAME_FLAG_ALLOC)
_NAME_UNALLOC = int(pytsk3.TSK_FS_NAME_FLAG_UNALLOC)
_META_UNALLOC = int(pytsk3.TSK_FS_META_FLAG_UNALLOC)

#: TSK_FS_IS_DIR_NAME, and TSK_FS_NAME_TYPE_UNDEF that tsk_fs_dir_walk enters too (a name of
#: any other type it never enters, so a walk can test this first and ask nothing more)
ENTERED_NAME_TYPES = frozenset({int(pytsk3.TSK_FS_NAME_TYPE_DIR),
                                 int(pytsk3.TSK_FS_NAME_TYPE_VIRT_DIR),
                                 int(pytsk3.TSK_FS_NAME_TYPE_UNDEF)})
#: TSK_FS_IS_DIR_META
DIR_META_TYPES = frozenset({int(pytsk3.TSK_FS_META_TYPE_DIR),
                            int(pytsk3.TSK_FS_META_TYPE_VIRT_DIR)})


def enters(name_type: int, name_flags: int, meta_type: int, meta_flags: int) -> bool:
    """Whether the walk enters a name of these fields whose inode it loaded: name of folder
    (or undefined) type, inode a folder, and the name allocated or name and inode both
    unallocated (a deleted name whose inode a new file took is not followed)."""
    if name_type not in ENTERED_NAME_TYPES or meta_type not in DIR_META_TYPES:
        return False
    return bool(name_flags & _NAME_ALLOC) or bool(
        name_flags & _NAME_UNALLOC and meta_flags & _META_UNALLOC)
