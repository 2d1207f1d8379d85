"""File systems TSK lacks behind the browsing interface, read with libyal: APFS (pyfsapfs),
XFS (pyfsxfs) and ext4 with a feature TSK cannot read (pyfsext, :class:`ExtLibyalFileSystem`;
which ext file systems: ``extfeatures.py``), whose file-entry objects answer the same calls.

The Sleuth Kit reads APFS only given the volume's superblock block (``fls -P apfs -B N``), which
is what the tests check APFS against; XFS is checked against the kernel's own driver. Entries
look as ``fls -p`` prints them: the inode is the file system's inode number (APFS: the object
identifier), name and meta types come from the inode's mode, and there are no deleted entries
(none of the readers recovers unallocated names). ext through libfsext is checked against the
kernel's ext4 driver and ``debugfs``; libfsext gives a folder's size as 0 (the inode records
the bytes of its blocks, which ``debugfs`` and the kernel show).
"""

from __future__ import annotations

import re
import stat as statmod
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from bitwitness.errors import FileSystemError
from bitwitness.progress import UNREAD, Mediator, NullMediator
from bitwitness.report.browse.entries import (
    Attribute,
    Entry,
    FileStat,
    Selection,
    Times,
    permissions,
)
from bitwitness.report.browse.filesystem import MAX_DEPTH, split_path
from bitwitness.report.browse.libyalio import short_reason
from bitwitness.report.browse.safenames import shown
from bitwitness.report.browse.volumes import Partition
from bitwitness.stream import ImageStream

_ADDRESS = re.compile(r"^\d+$")
_TYPES = {statmod.S_IFREG: "r", statmod.S_IFDIR: "d", statmod.S_IFLNK: "l",
          statmod.S_IFIFO: "p", statmod.S_IFCHR: "c", statmod.S_IFBLK: "b",
          statmod.S_IFSOCK: "s"}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: libfsext's extent flag for a run without data on disk (sparse, or unwritten: reads as zeros)
_EXTENT_SPARSE = 0x1
#: Runs shown by ``stat``: a fragmented file's extents beyond this are left out of the listing
MAX_RUNS = 4096
#: The type TSK gives an ext file's data (TSK_FS_ATTR_TYPE_DEFAULT), as ``istat`` lists it
_TSK_DEFAULT_ATTRIBUTE = 1


def _ns(value: int | None) -> datetime | None:
    if not value:
        return None
    return _EPOCH + timedelta(microseconds=int(value) // 1000)


#: What the libyal bindings raise on a damaged or crafted volume (``IOError`` mostly; values
#: out of range as ``ValueError``/``OverflowError``; a hostile size as ``MemoryError``).
_LIBYAL_FAILURES: tuple[type[Exception], ...] = (OSError, ValueError, TypeError, MemoryError,
                                                 RuntimeError)


class LibyalFileSystem:
    """One file system read by a libyal volume object (owned by the volume tree)."""

    def __init__(self, volume: Any, partition: Partition, fs_type: str,
                 stream: ImageStream | None = None) -> None:
        """``stream``: the volume's bytes, for what libyal leaves out (an XFS folder's size)."""
        self.type = fs_type
        self.partition = partition
        self._volume = volume
        self._stream = stream
        self._xfs: XfsInodes | None = None
        by_identifier = getattr(volume, "get_file_entry_by_identifier", None)
        self._by_inode = by_identifier or volume.get_file_entry_by_inode

    def _inode(self, obj: Any) -> int:
        getter = getattr(obj, "get_identifier", None) or obj.get_inode_number
        return int(self._call("read an inode number", getter))

    # --- reading libfsapfs -----------------------------------------------------------------

    def _call(self, what: str, func: Any, *args: Any) -> Any:
        try:
            return func(*args)
        except _LIBYAL_FAILURES as exc:
            raise FileSystemError(f"cannot {what}: {short_reason(exc)}") from None

    def _entry(self, obj: Any, path: str) -> Entry:
        if obj is None:  # a damaged volume: libyal answered with no entry rather than an error
            raise FileSystemError(f"{shown(path)}: the file system gives no entry there")
        mode = int(self._call("read an inode's mode", obj.get_file_mode) or 0)
        kind = _TYPES.get(statmod.S_IFMT(mode), "-")
        link = None
        if kind == "l":
            link = self._call("read a link target", obj.get_symbolic_link_target)
        times = Times(
            _ns(self._call("read times", obj.get_modification_time_as_integer)),
            _ns(self._call("read times", obj.get_access_time_as_integer)),
            _ns(self._call("read times", obj.get_inode_change_time_as_integer)),
            _ns(self._call("read times", obj.get_creation_time_as_integer)))
        name = path.rpartition("/")[2] if path != "/" else ""
        if not path:  # found by inode: its own name is all the inode knows
            name = str(self._call("read a name", obj.get_name) or "")
        inode = self._inode(obj)
        size = int(self._call("read a size", obj.get_size) or 0)
        if kind == "d" and size == 0 and self.type == "xfs":
            size = self._xfs_folder_size(inode)
        return Entry(path=path, name=name, inode=inode, attr_type=None,
                     attr_id=None, stream=None, name_type=kind, meta_type=kind, deleted=False,
                     realloc=False, size=size,
                     times=times, mode=mode & 0o7777,
                     uid=int(self._call("read an owner", obj.get_owner_identifier) or 0),
                     gid=int(self._call("read a group", obj.get_group_identifier) or 0),
                     link=link)

    def _xfs_folder_size(self, inode: int) -> int:
        """An XFS folder's size as its inode records it (``di_size``, what the kernel shows):
        libfsxfs gives 0 for every folder. 0 where the inode cannot be read."""
        if self._stream is None:
            return 0
        if self._xfs is None:
            self._xfs = XfsInodes(self._stream)
        return self._xfs.size(inode)

    def _object(self, entry: Entry) -> Any:
        return self._call(f"open inode {entry.inode}", self._by_inode, entry.inode)

    # --- listing and lookup ----------------------------------------------------------------

    def walk(self, path: str = "/", *, recursive: bool = False,
             selection: Selection = Selection.ALLOCATED, mediator: Mediator | None = None,
             file_names: bool = False) -> Iterator[Entry]:
        """Entries of a folder in directory order (APFS has no deleted entries to list)."""
        mediator = mediator or NullMediator()
        start = self.lookup(path)
        if not start.is_dir:
            raise FileSystemError(f"{shown(start.display_path)}: not a directory")
        if selection is Selection.DELETED:
            return
        prefix = "" if start.path == "/" else start.path
        yield from self._walk(self._object(start), prefix, recursive, mediator, [start.inode])

    def _walk(self, folder: Any, prefix: str, recursive: bool, mediator: Mediator,
              stack: list[int]) -> Iterator[Entry]:
        try:
            count = int(folder.get_number_of_sub_file_entries())
        except _LIBYAL_FAILURES as exc:
            mediator.notice(f"{prefix or '/'}: directory not readable: {short_reason(exc)}",
                            level=UNREAD)
            return
        for index in range(count):
            try:
                child = self._call(f"read {prefix or '/'}", folder.get_sub_file_entry, index)
                name = self._call("read a name", child.get_name) or ""
                entry = self._entry(child, f"{prefix}/{name}")
            except FileSystemError as exc:
                # one inode the reader refuses (libfsext: a time after 2262) must not hide the
                # rest of the folder; the analyst is told which entry is missing
                mediator.notice(f"{prefix or '/'}: entry {index + 1} of {count} not readable: "
                                f"{exc}", level=UNREAD)
                continue
            yield entry
            if recursive and entry.is_dir and entry.inode not in stack:
                if len(stack) >= MAX_DEPTH:
                    mediator.notice(f"{shown(entry.path)}: deeper than {MAX_DEPTH} folders, "
                                    "not walked", level=UNREAD)
                    continue
                stack.append(entry.inode)
                yield from self._walk(child, entry.path, recursive, mediator, stack)
                stack.pop()

    def lookup(self, path: str) -> Entry:
        current = self._call("open the root folder", self._volume.get_root_directory)
        walked = ""
        for part in split_path(path):
            found = self._child_named(current, part, walked)
            if found is None:
                raise FileSystemError(f"{walked}/{part}: no such file or folder")
            current, walked = found, f"{walked}/{part}"
        return self._entry(current, walked or "/")

    def names(self, path: str) -> list[str]:
        """The components of ``path``: names here are looked up only as they are stored."""
        self.lookup(path)
        return split_path(path)

    def _child_named(self, folder: Any, name: str, walked: str) -> Any:
        """The entry ``name`` of ``folder``: libyal's lookup, else a scan of the folder (libfsxfs
        fails some lookups by name in short-form directories that it lists correctly)."""
        try:
            found = folder.get_sub_file_entry_by_name(name)
        except _LIBYAL_FAILURES:
            found = None
        if found is not None:
            return found
        count = int(self._call(f"read {walked or '/'}", folder.get_number_of_sub_file_entries))
        for index in range(count):
            child = self._call(f"read {walked or '/'}", folder.get_sub_file_entry, index)
            if self._call("read a name", child.get_name) == name:
                return child
        return None

    def by_address(self, address: str) -> Entry:
        if not _ADDRESS.match(address.strip()):
            raise FileSystemError(f"{address!r} is not an inode number")
        inum = int(address)
        obj = self._call(f"open inode {inum}", self._by_inode, inum)
        if obj is None:
            raise FileSystemError(f"inode {inum} does not exist in this {self.type} volume")
        return self._entry(obj, "")

    def target(self, path: str | None = None, address: str | None = None) -> Entry:
        if (path is None) == (address is None):
            raise FileSystemError("give either a path or an inode, not both")
        return self.lookup(path) if path is not None else self.by_address(address or "")

    # --- metadata and content --------------------------------------------------------------

    def stat(self, entry: Entry) -> FileStat:
        obj = self._object(entry)
        attributes = []
        for index in range(int(self._call("count attributes",
                                          obj.get_number_of_extended_attributes))):
            xattr = self._call("read an attribute", obj.get_extended_attribute, index)
            attributes.append(Attribute(
                type=0, id=index, name=str(self._call("read an attribute", xattr.get_name)),
                size=int(self._call("read an attribute", xattr.get_size)), resident=True))
        return FileStat(entry=entry, filesystem=self.type, allocated=True,
                        mode=permissions(entry.mode),
                        uid=entry.uid, gid=entry.gid,
                        links=int(self._call("read links", obj.get_number_of_links) or 0),
                        attributes=tuple(attributes))

    def iter_content(self, entry: Entry, block: int = 1 << 20) -> Iterator[bytes]:
        if entry.is_dir:
            raise FileSystemError(f"{shown(entry.display_path) or entry.address}: is a folder")
        if (target := _link_bytes(entry)) is not None:
            yield target
            return
        obj = self._object(entry)
        offset = 0
        while offset < entry.size:
            want = min(block, entry.size - offset)
            data = self._call(f"read {entry.display_path or entry.address} at byte {offset}",
                              obj.read_buffer_at_offset, want, offset)
            if not data:
                break
            yield bytes(data)
            offset += len(data)

    def read(self, entry: Entry, offset: int = 0, size: int = 4096) -> bytes:
        if entry.is_dir or offset >= entry.size:
            return b""
        if (target := _link_bytes(entry)) is not None:
            return target[offset:offset + size]
        obj = self._object(entry)
        return bytes(self._call(f"read {entry.display_path or entry.address}",
                                obj.read_buffer_at_offset, min(size, entry.size - offset),
                                offset))

    def content_note(self, entry: Entry) -> str | None:
        return None  # only allocated files are listed: their content is theirs

    def file_name_times(self, entry: Entry) -> Times | None:
        return None


class ExtLibyalFileSystem(LibyalFileSystem):
    """An ext file system read by libfsext: ``stat`` adds what ``istat`` shows of an ext inode
    and libfsext gives, the deletion time and the data's runs (libfsext's extents, in bytes,
    as blocks of the file system; unwritten and sparse extents have no first block). Folders
    list only live names (libfsext recovers no deleted one); an inode asked for by number may
    be a free one, and is then shown deleted."""

    def __init__(self, volume: Any, partition: Partition, fs_type: str,
                 block_size: int = 1024) -> None:
        super().__init__(volume, partition, fs_type)
        self.block_size = block_size

    def by_address(self, address: str) -> Entry:
        """The inode ``address``; one that is free (no links, a deletion time: how the kernel
        leaves a deleted inode) is marked deleted, as TSK marks an unallocated inode."""
        entry = super().by_address(address)
        obj = self._object(entry)
        links = int(self._call("read links", obj.get_number_of_links) or 0)
        deleted = int(self._call("read a deletion time", obj.get_deletion_time_as_integer) or 0)
        return replace(entry, deleted=True) if links == 0 and deleted else entry

    def content_note(self, entry: Entry) -> str | None:
        """As TSK's: a deleted inode whose size was cleared (ext4 clears it and its extents on
        delete) has nothing of the file left to read."""
        if entry.deleted and not entry.is_dir and entry.size == 0:
            return "not recoverable: the deleted inode records no content (size 0)"
        return None

    def stat(self, entry: Entry) -> FileStat:
        found = replace(super().stat(entry), allocated=not entry.deleted,
                        note=self.content_note(entry))
        obj = self._object(entry)
        deleted = int(self._call("read a deletion time", obj.get_deletion_time_as_integer) or 0)
        runs: list[tuple[int | None, int]] = []
        count = int(self._call("count extents", obj.get_number_of_extents) or 0)
        for index in range(min(count, MAX_RUNS)):
            offset, size, flags = self._call("read an extent", obj.get_extent, index)
            first = None if int(flags) & _EXTENT_SPARSE else int(offset) // self.block_size
            runs.append((first, -(-int(size) // self.block_size)))
        data = Attribute(type=_TSK_DEFAULT_ATTRIBUTE, id=0, name=None, size=entry.size,
                         resident=False, runs=tuple(runs))
        return replace(found, attributes=(*found.attributes, data) if runs else found.attributes,
                       deleted_time=_EPOCH + timedelta(seconds=deleted) if deleted else None)


def _link_bytes(entry: Entry) -> bytes | None:
    """A symbolic link's content: its target, as ``icat`` gives an ext link's (libfsxfs and
    libfsapfs refuse to read a link's data: "not a regular file"); None for other entries."""
    if entry.kind != "link" or entry.link is None:
        return None
    return entry.link.encode("utf-8", "surrogateescape")


class XfsInodes:
    """Where XFS keeps an inode, from the superblock's geometry (big-endian: block size at 4,
    blocks per allocation group at 84, inode size at 104, log2 of inodes per block at 123 and
    of blocks per group at 124): an inode number is (group, block in the group, inode in the
    block) in those bit widths; the inode core opens with ``IN`` and holds ``di_size`` at 56."""

    def __init__(self, stream: ImageStream) -> None:
        self._stream = stream
        sb = stream.pread(0, 128)
        self.valid = len(sb) == 128 and sb[:4] == b"XFSB"
        if self.valid:
            self.block = int.from_bytes(sb[4:8], "big")
            self.ag_blocks = int.from_bytes(sb[84:88], "big")
            self.inode_size = int.from_bytes(sb[104:106], "big")
            self.inop_log, self.agblk_log = sb[123], sb[124]
            self.valid = (512 <= self.block <= 65536 and self.ag_blocks > 0
                          and 256 <= self.inode_size <= self.block
                          and self.inop_log < 16 and self.agblk_log < 40)

    def size(self, inode: int) -> int:
        if not self.valid:
            return 0
        per_group = self.agblk_log + self.inop_log
        group, in_group = inode >> per_group, inode & ((1 << per_group) - 1)
        block, slot = in_group >> self.inop_log, in_group & ((1 << self.inop_log) - 1)
        at = (group * self.ag_blocks + block) * self.block + slot * self.inode_size
        if at + 64 > self._stream.size:
            return 0
        core = self._stream.pread(at, 64)
        if len(core) < 64 or core[:2] != b"IN":
            return 0
        return int.from_bytes(core[56:64], "big")
