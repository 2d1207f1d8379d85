"""The one bridge between our byte streams and The Sleuth Kit (pytsk3).

pytsk3 reads images through an ``Img_Info`` object; :class:`TskImage` is that object for any
:class:`~bitwitness.stream.ImageStream` (raw, split raw, E01, VHD, a block device), so TSK only
ever sees our read-only streams and never opens an evidence file itself. Making one pins the
process's zone to UTC (:func:`pin_utc`), the zone TSK reads zone-less times in.

pytsk3 reports TSK's failures as ``OSError``/``IOError`` with TSK's message, and some as
``RuntimeError`` (:data:`TSK_FAILURES`). :func:`tsk_errors` turns those into
:class:`~bitwitness.errors.FileSystemError` once, here; when the failure was
really our stream failing (a corrupt E01 chunk, a missing segment), the stream's own
:class:`~bitwitness.errors.BitWitnessError` is raised instead, because TSK only sees "read
failed" and would hide the evidence problem behind a file-system message.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any

import pytsk3

from bitwitness import installed
from bitwitness.errors import BitWitnessError, FileSystemError
from bitwitness.report.browse.ntfs import ATTR_FILE_NAME
from bitwitness.stream import ImageStream

#: What pytsk3 raises when TSK fails on what it reads (a crafted or damaged volume).
TSK_FAILURES: tuple[type[Exception], ...] = (OSError, RuntimeError)


class TskImage(pytsk3.Img_Info):  # type: ignore[misc]  # pytsk3 ships no type information
    """``Img_Info`` reading through ``stream.pread``; remembers the last stream error."""

    def __init__(self, stream: ImageStream) -> None:
        self.stream = stream
        self._local = threading.local()
        pin_utc()
        # TSK_IMG_TYPE_EXTERNAL: TSK calls read() and get_size() below instead of opening a file.
        super().__init__(url="", type=pytsk3.TSK_IMG_TYPE_EXTERNAL)

    def read(self, offset: int, size: int) -> bytes:
        try:
            return self.stream.pread(offset, size)
        except BitWitnessError as exc:
            self._local.error = exc
            raise OSError(str(exc)) from exc

    def get_size(self) -> int:
        return self.stream.size

    def close(self) -> None:  # the stream belongs to the caller, who closes it
        pass

    def take_error(self) -> BitWitnessError | None:
        """The stream error behind the last TSK failure in this thread, if any (and forget it)."""
        error: BitWitnessError | None = getattr(self._local, "error", None)
        self._local.error = None
        return error


#: The local version label scripts/build-pytsk3.sh gives the pytsk3 it builds with its fixes
#: (see that script for the bugs), and the least fix count we need: 9, TSK built with zlib, its
#: decmpfs sizes guarded, HFS+ names converted leniently, and an ext directory read no further
#: than the blocks it holds (a damaged size of terabytes was read a block of zeros at a time).
FIX_LABEL = "bitwitness."
FIXES_NEEDED = 9

#: The file systems whose files TSK maps through indirect blocks (ext4 too, for inodes without
#: extents): with an unfixed TSK, one large or fragmented file among them costs hours of CPU.
INDIRECT_TYPES = ("ext2", "ext3", "ext4", "ffs1", "ffs1b", "ffs2")
#: HFS+: PyPI's TSK is built without zlib and reads zlib-compressed files empty, allocates
#: whatever size a decmpfs record declares when it lists a folder holding it, and fails a whole
#: folder's listing over one name holding a lone surrogate half.
DECMPFS_TYPES = ("hfs",)


@cache
def has_indirect_fix() -> bool:
    """Whether the pytsk3 in use was built by scripts/build-pytsk3.sh with every fix we need
    (its version ends ``+bitwitness.N``, N at least :data:`FIXES_NEEDED`); PyPI's wheels were
    not."""
    try:
        version = installed.version("pytsk3")
    except LookupError:
        return False
    local = version.partition("+")[2]
    count = local.removeprefix(FIX_LABEL)
    return local.startswith(FIX_LABEL) and count.isdigit() and int(count) >= FIXES_NEEDED


def require_fixes(fs_type: str) -> None:
    """Refuse a file system of ``fs_type`` that a pytsk3 without our build mishandles.

    ext and UFS: past the triple-indirect pointer (a file beyond 4 GiB + 4 MiB on 4 KiB
    blocks, 64 MiB on 1 KiB blocks) TSK's walk grows with the square of the pointers per
    block, and with the number of runs of a fragmented file; pytsk3 makes that walk for every
    entry it lists: a clear error now is better than a listing that never ends and ignores
    SIGTERM while it runs in C. HFS+: TSK without zlib, and without the guards on the sizes a
    decmpfs record declares, lists a crafted compressed file by allocating gigabytes.
    """
    if has_indirect_fix():
        return
    if fs_type in INDIRECT_TYPES:
        raise FileSystemError(
            f"this pytsk3 lacks the fixes an {fs_type} file system needs (an unfixed TSK can "
            f"spend hours on one large file or one damaged folder): run "
            f"scripts/build-pytsk3.sh")
    if fs_type in DECMPFS_TYPES:
        raise FileSystemError(
            "this pytsk3 lacks zlib and the decmpfs size guards an HFS+ file system needs (an "
            "unfixed TSK allocates whatever size a compressed file declares): run "
            "scripts/build-pytsk3.sh")


def pin_utc() -> None:
    """Make UTC the process's local zone (``TZ=UTC``), as ``istat -z UTC`` does for itself.

    TSK converts the wall-clock times of FAT, exFAT and ISO 9660 to epoch seconds with
    ``mktime``, in the process's zone: left to the examiner's ``TZ``, one image would show
    different times on different machines (see :mod:`.zones`). Every time BitWitness shows is
    UTC, so nothing else in the process depends on the local zone.
    """
    if os.environ.get("TZ") != "UTC":
        os.environ["TZ"] = "UTC"
        time.tzset()


def text(value: bytes | str | None) -> str:
    """A name from TSK (UTF-8 bytes) as text; undecodable bytes survive as surrogate escapes."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return value.decode("utf-8", "surrogateescape")


#: One listed entry as ``Directory.records()`` gives it (the sixth change of
#: scripts/build-pytsk3.sh): the name's ``name``, ``meta_addr``, ``flags`` and ``type``, then the
#: inode's ``addr``, ``type``, ``flags``, ``size``, ``mode``, ``uid``, ``gid``, the four times
#: (seconds, nanoseconds: mtime, atime, ctime, crtime), ``link`` and its attributes
#: (:data:`RECORD_ATTRIBUTES`); the inode's seventeen fields are None where TSK loaded no inode
#: for the name.
Record = tuple[Any, ...]
#: Where the inode's fields begin in a :data:`Record`.
RECORD_META = 4
#: Where a record holds the inode's attributes when they were asked for (``records(True)``): a
#: tuple of ``(type, id, flags, size, name, content)``, ``content`` the first 4096 bytes of a
#: resident, uncompressed, unencrypted ``$FILE_NAME`` and None for any other attribute; None
#: where they were not asked for, the name has no inode or TSK failed to give them.
RECORD_ATTRIBUTES = 20
_RESIDENT_ONLY = (int(pytsk3.TSK_FS_ATTR_RES),
                  int(pytsk3.TSK_FS_ATTR_COMP) | int(pytsk3.TSK_FS_ATTR_ENC))


def record_of(file: Any, *, attributes: bool = False) -> Record:
    """The :data:`Record` of one listed pytsk3 ``File``, read through its attributes (with
    ``attributes``, its inode's attributes too).

    Why both: a pytsk3 without ``records()`` (PyPI's) lists the slow way through this, and the
    tests hold ``records()`` equal to it, field for field."""
    info = file.info  # each read of a pytsk3 attribute makes a new wrapper: read once
    name, meta = info.name, info.meta
    head = (name.name, int(name.meta_addr), int(name.flags), int(name.type))
    if meta is None:
        return (*head, *(None,) * 17)
    return (*head, *inode_fields(file, meta, attributes=attributes))


def inode_fields(file: Any, meta: Any, *, attributes: bool = False) -> tuple[Any, ...]:
    """The seventeen inode fields of a :data:`Record` (from :data:`RECORD_META` on) of a
    pytsk3 ``File`` whose inode is loaded (a listed name's, or one ``open_meta`` opened),
    ``meta`` its ``info.meta``."""
    return (int(meta.addr), int(meta.type), int(meta.flags), int(meta.size),
            int(meta.mode), int(meta.uid), int(meta.gid), int(meta.mtime),
            int(meta.mtime_nano), int(meta.atime), int(meta.atime_nano), int(meta.ctime),
            int(meta.ctime_nano), int(meta.crtime), int(meta.crtime_nano), meta.link,
            attributes_of(file) if attributes else None)


def attributes_of(file: Any) -> tuple[tuple[Any, ...], ...] | None:
    """The attributes of a pytsk3 ``File`` as a record holds them (:data:`RECORD_ATTRIBUTES`),
    or None where TSK fails to give them."""
    found = []
    try:
        for attr in file:
            info = attr.info
            kind, flags, size = int(info.type), int(info.flags), int(info.size)
            content = None
            if (kind == ATTR_FILE_NAME and flags & _RESIDENT_ONLY[0]
                    and not flags & _RESIDENT_ONLY[1] and size > 0):
                content = bytes(file.read_random(0, min(size, 4096), kind, int(info.id)))
            found.append((kind, int(info.id), flags, size, info.name, content))
    except TSK_FAILURES:
        return None
    return tuple(found)


def records_of(directory: Iterable[Any], *, attributes: bool = False) -> list[Record]:
    """Every entry of an opened pytsk3 ``Directory`` (or a list of its files) as a
    :data:`Record`, in TSK's order (with ``attributes``, each inode's attributes too).

    Why: iterating a folder makes a ``File``, its name and its inode as Python objects, and
    each field read one more, for every name of a listing; our build's ``records()`` reads the
    same fields in C."""
    records = getattr(directory, "records", None)
    if records is not None and (not attributes or "attributes" in (records.__doc__ or "")):
        found: list[Record] = records(True) if attributes else records()
        return found
    return [record_of(file, attributes=attributes) for file in directory]


def records_and_named(directory: Any, *, attributes: bool, named: list[int],
                      walked: list[tuple[int, int, int]]) -> list[Record] | None:
    """:func:`records_of`, and the folder's part of TSK's list of named unallocated inodes
    appended to ``named``, with (index, inode type, inode flags) of each name whose inode TSK's
    walk loads where the record has none appended to ``walked`` (see :mod:`.namedlist`); None
    where the binding cannot (a pytsk3 without our build's eighth change)."""
    records = getattr(directory, "records", None)
    if records is None or "walked" not in (records.__doc__ or ""):
        return None
    found: list[Record] = records(attributes, named, walked)
    return found


@contextmanager
def tsk_errors(image: TskImage, what: str) -> Iterator[None]:
    """Run pytsk3 calls; turn their failures into one clear :class:`FileSystemError`.

    ``what`` names the operation for the message ("open the file system at sector 2048").
    """
    image.take_error()
    try:
        yield
    except TSK_FAILURES as exc:
        cause = image.take_error()
        if cause is not None:
            raise cause from exc
        raise FileSystemError(f"cannot {what}: {_tsk_message(exc)}") from exc


def _tsk_message(exc: Exception) -> str:
    """TSK's messages span lines and repeat the call; keep the informative part."""
    message = _CALL_SITE.sub("", " ".join(str(exc).split()))
    if "with error: " in message:
        message = message.split("with error: ", 1)[1]
    return message.strip() or "The Sleuth Kit reported an unspecified error"


#: "FS_Info_Con: (tsk3.cpp:327) " - where inside pytsk3 the error was raised, noise for a user.
_CALL_SITE = re.compile(r"^\w+: \(tsk3\.cpp:\d+\) ")
