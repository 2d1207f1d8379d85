"""The FUSE operations of a mount: lookups and reads over a :class:`MountTree`, nothing else.

The kernel already refuses writes to a file system mounted ``ro``; every operation that could
change something is still implemented here, to refuse with ``EROFS`` should a request ever get
through (another FUSE library, a remount). Reads of evidence that fail (a corrupt EWF chunk)
answer ``EIO`` and are reported through ``notice``, never as made-up bytes; so do reads the
file system answers with fewer bytes than the size it records for the file (a FAT cluster chain
that ends early), which would otherwise end the file early for the reader.

A deleted file whose content is not recoverable (its inode or clusters went to another file)
is listed with the size its file system records, but opening it answers ``EIO``: ``cat``,
``cp``, ``sha256sum`` and ``rsync`` then report an error for that file and go on with the
others, where an empty file would pass silently as its content (with the empty file's hash).
Why is the extended attribute :data:`~bitwitness.report.mount.tree.CONTENT_XATTR`
(``getfattr -n user.bitwitness.content FILE``), said once per file through ``notice`` too.

mfusepy (ctypes over the system's libfuse) is the binding: it works with libfuse 3 and 2, needs
no compiler, and its operations are plain methods, easy to test without a kernel.
"""

from __future__ import annotations

import errno
import os
import threading
from collections.abc import Callable
from typing import Any

from bitwitness.errors import BitWitnessError
from bitwitness.report.mount.tree import (
    CONTENT_XATTR,
    DOUBTS_XATTR,
    MountTree,
    Node,
    Notice,
    file_type,
)

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_TRUNC | os.O_APPEND | os.O_CREAT


def _oserror(code: int) -> OSError:
    return OSError(code, os.strerror(code))


def _refuse(*_args: Any, **_kwargs: Any) -> int:
    raise _oserror(errno.EROFS)


class EvidenceOperations:
    """Operations object for :class:`mfusepy.FUSE`: read-only access to one image's tree.

    ``on_init`` runs once the kernel has the mount (used to record the custody event);
    ``on_first_request`` with the first request after it (when the kernel has set the mount up).
    """

    use_ns = True  #: times are handed to FUSE as integer nanoseconds

    def __init__(self, tree: MountTree, *, notice: Notice | None = None,
                 on_init: Callable[[], None] | None = None,
                 on_first_request: Callable[[], object] | None = None) -> None:
        self.tree = tree
        self.notice: Notice = notice or (lambda _message: None)
        self._on_init = on_init
        self._on_first_request = on_first_request
        self._first_lock = threading.Lock()
        self._noted: set[str] = set()  #: paths whose "not recoverable" was said already
        self._uid = os.getuid()
        self._gid = os.getgid()

    # --- life ------------------------------------------------------------------------------

    def init(self, path: str) -> None:
        if self._on_init is not None:
            self._on_init()

    # --- lookups ---------------------------------------------------------------------------

    def _node(self, path: str) -> Node:
        node = self.tree.lookup(path)
        if node is None:
            raise _oserror(errno.ENOENT)
        return node

    def getattr(self, path: str, fh: int | None = None) -> dict[str, int]:
        if self._on_first_request is not None:
            with self._first_lock:
                hook, self._on_first_request = self._on_first_request, None
            if hook is not None:
                hook()
        node = self._node(path)
        attrs = {
            "st_mode": file_type(node), "st_size": node.size,
            "st_nlink": 2 if node.is_dir else 1, "st_uid": self._uid, "st_gid": self._gid,
            "st_mtime": node.stamp.mtime, "st_atime": node.stamp.atime,
            "st_ctime": node.stamp.ctime, "st_blksize": 4096,
        }
        attrs["st_blocks"] = -(-node.size // 512)
        return attrs

    def readdir(self, path: str, fh: int) -> list[str]:
        node = self._node(path)
        children = self.tree.children(node)
        if children is None:
            raise _oserror(errno.ENOTDIR)
        return [".", "..", *children]

    def open(self, path: str, flags: int) -> int:
        node = self._node(path)
        if flags & _WRITE_FLAGS:
            raise _oserror(errno.EROFS)
        if node.is_dir:
            raise _oserror(errno.EISDIR)
        if node.note is not None:
            self._say_once(path, node.note)
            raise _oserror(errno.EIO)
        return 0

    def _say_once(self, path: str, note: str) -> None:
        with self._first_lock:
            if path in self._noted:
                return
            self._noted.add(path)
        self.notice(f"{path}: content {note}; not served (EIO)")

    def read(self, path: str, size: int, offset: int, fh: int) -> bytes:
        node = self._node(path)
        if node.reader is None:
            raise _oserror(errno.EISDIR)
        if node.note is not None:  # open refuses it already; no handle reads it either
            raise _oserror(errno.EIO)
        if offset >= node.size or size <= 0:
            return b""
        wanted = min(size, node.size - offset)
        try:
            data = node.reader(offset, wanted)
        except BitWitnessError as exc:
            self.notice(f"{path}: read at byte {offset} failed: {exc}")
            raise _oserror(errno.EIO) from exc
        if len(data) < wanted:
            # the file system gave fewer bytes than the size it records: a short read would
            # end the file early for the reader (cp would copy it short, without a word)
            self.notice(f"{path}: read at byte {offset}: the file system gave only "
                        f"{len(data):,} of {wanted:,} bytes of its recorded size")
            raise _oserror(errno.EIO)
        return data

    def getxattr(self, path: str, name: str, position: int = 0) -> bytes:
        """The reason a file is not served (:data:`CONTENT_XATTR`) or why its bytes may not all
        be its own (:data:`DOUBTS_XATTR`); no other attribute."""
        node = self._node(path)
        if name == CONTENT_XATTR and node.note is not None:
            return node.note.encode("utf-8")
        if name == DOUBTS_XATTR and (said := self._doubts(path, node)):
            return said.encode("utf-8")
        raise _oserror(errno.ENODATA)

    def listxattr(self, path: str) -> list[str]:
        node = self._node(path)
        if node.note is not None:
            return [CONTENT_XATTR]
        return [DOUBTS_XATTR] if self._doubts(path, node) else []

    def _doubts(self, path: str, node: Node) -> str:
        """The node's doubts joined by ``; `` (empty when none); a failure to tell is noticed
        and reads as no doubt claimed."""
        if node.doubts is None:
            return ""
        try:
            return "; ".join(node.doubts())
        except BitWitnessError as exc:
            self.notice(f"{path}: doubts not read: {exc}")
            return ""

    def access(self, path: str, amode: int) -> int:
        self._node(path)
        if amode & os.W_OK:
            raise _oserror(errno.EROFS)
        return 0

    def statfs(self, path: str) -> dict[str, int]:
        size = self.tree.stream.size
        return {"f_bsize": 4096, "f_frsize": 4096, "f_blocks": -(-size // 4096), "f_bfree": 0,
                "f_bavail": 0, "f_files": 0, "f_ffree": 0, "f_namemax": 1024}

    # --- everything that would change something: refused ----------------------------------

    write = _refuse
    truncate = _refuse
    create = _refuse
    mkdir = _refuse
    mknod = _refuse
    unlink = _refuse
    rmdir = _refuse
    rename = _refuse
    symlink = _refuse
    link = _refuse
    chmod = _refuse
    chown = _refuse
    utimens = _refuse
    setxattr = _refuse
    removexattr = _refuse
    fallocate = _refuse
