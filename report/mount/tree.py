"""What a mount shows, as a tree of read-only nodes built from BitWitness's own readers.

::

    media.raw                 the whole media of the image (any format BitWitness opens)
    partitions/2.raw          one file per partition, named by the index ``partitions`` prints
    files/2/...               with --files: the allocated tree of partition 2's file system
    files/2.deleted/...       its deleted entries, at their former paths; where the content
                              is not theirs (inode reused or cleared, FAT clusters given to
                              another file) the name keeps the size the file system records,
                              opening it fails with EIO and the extended attribute
                              ``user.bitwitness.content`` says why (see :data:`CONTENT_XATTR`);
                              a served file whose bytes may not all be its own (unreadable
                              sectors, NTFS clusters allocated again) says so in
                              ``user.bitwitness.doubts`` (:data:`DOUBTS_XATTR`)
    files/2/...:Zone.Identifier   NTFS alternate data streams, as ``name:stream``
    files/0_bde1/...          with --files: a file system inside a volume of the volume tree
                              (decrypted BitLocker or LUKS, LVM, shadow copy, APFS), named by
                              its tree path with ``_`` for ``/``; partitions/0_bde1.raw its bytes

A logical evidence file (L01, Lx01) holds files, not a disk, and is shown as ``ls``/``export``
show it (:mod:`bitwitness.report.browse.logical`)::

    media.raw                 what libewf calls the media: the files' contents end to end, the
                              bytes the set's stored MD5/SHA-1 cover (``ewfexport -f raw``)
    files/0/...               with --files: the file tree libewf reads from the set's ltree
                              (``-p 0``), contents read through pyewf's file entries

and no ``partitions/``: TSK is not asked for a partition table or a file system in the media,
because the media is no disk (a disk image stored as the first file would pass for the
evidence's own), nor is there a ``files/0.deleted/`` (the format records no deleted entry).

Everything is read through one :class:`~bitwitness.report.mount.cache.CachedStream`; pytsk3 is
called under one lock, because neither TSK nor our callbacks into it are meant for two threads.
A logical evidence file's files are read under the cache's own source lock instead: pyewf's file
entries read through the libewf handle that also reads ``media.raw``, which must never serve two
threads at once.
File-system trees are walked the first time their folder is looked at, so mounting a large disk
is immediate and only the file systems someone opens cost a walk. A walk stops after
:data:`MAX_ENTRIES` entries (a hostile or broken file system must not exhaust memory).

Names come from the evidence: ``/`` and NUL (impossible in a path) are escaped as ``%2F`` and
``%00``, ``.`` and ``..`` as ``%2E`` and ``%2E%2E``; a name that is already taken in its folder
(a deleted file beside a live one of the same name) gets ``~`` and its inode address appended.
"""

from __future__ import annotations

import stat
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bitwitness.errors import BitWitnessError, InputError, NotRecoveredError
from bitwitness.report.browse.doubts import UnreadableSectors, doubts, unreadable_sectors
from bitwitness.report.browse.entries import NO_TIMES, Entry, Selection, Times
from bitwitness.report.browse.filesystem import FileSystem
from bitwitness.report.browse.interface import BrowsableFileSystem
from bitwitness.report.browse.tsk import TskImage
from bitwitness.report.browse.volumes import PartitionKind, VolumeLayout, read_layout
from bitwitness.report.browse.volumetree import (
    VolumeNode,
    VolumeTree,
    by_libyal,
    open_node,
    read_tree,
)
from bitwitness.report.mount.cache import CachedStream

#: Entries of one file system's tree (live and deleted each) beyond which the walk stops.
MAX_ENTRIES = 1_000_000
MEDIA_NAME = "media.raw"
PARTITIONS = "partitions"
FILES = "files"
DELETED_SUFFIX = ".deleted"
#: The extended attribute that says why a file's content is not served (``getfattr -n``): the
#: same text ``cat`` and ``stat`` give (``content_note`` of the file system, or its
#: ``compressed_note``: an HFS+ file compressed with a method BitWitness does not decode).
CONTENT_XATTR = "user.bitwitness.content"
#: The extended attribute that says why a served file's bytes may not all be its own (some lie
#: in sectors the acquisition could not read, or a deleted NTFS file's clusters are allocated
#: again): the doubts ``cat`` and ``stat`` name (:mod:`~bitwitness.report.browse.doubts`).
DOUBTS_XATTR = "user.bitwitness.doubts"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

Reader = Callable[[int, int], bytes]
Notice = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class Stamp:
    """Modification, access and change time in nanoseconds since the epoch."""

    mtime: int
    atime: int
    ctime: int

    @staticmethod
    def of(times: Times, default: Stamp) -> Stamp:
        def ns(value: datetime | None, fallback: int) -> int:
            if value is None:
                return fallback
            delta = value - _EPOCH
            return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + \
                delta.microseconds * 1000

        return Stamp(ns(times.modified, default.mtime), ns(times.accessed, default.atime),
                     ns(times.changed, default.ctime))


#: The stamp of a time the evidence does not record.
NO_TIME = Stamp(0, 0, 0)


@dataclass(slots=True)
class Node:
    """A folder (``children``) or a file (``reader``) of the mount; all read-only. Slotted: a
    mount keeps one per entry of every file system walked."""

    name: str
    stamp: Stamp
    size: int = 0
    mode: int = 0o444
    children: dict[str, Node] | None = None
    reader: Reader | None = None
    #: why the content is not this file's (a deleted name whose inode or clusters were reused):
    #: the file is listed but cannot be opened
    note: str | None = None
    #: fills ``children`` the first time the folder is looked at (file-system trees)
    fill: Callable[[Node], None] | None = field(default=None, repr=False)
    #: the doubts about a served file's bytes, asked when an attribute is read; None where
    #: none can arise (set only for deleted NTFS files and where sectors were unreadable)
    doubts: Callable[[], list[str]] | None = field(default=None, repr=False)

    @property
    def is_dir(self) -> bool:
        return self.children is not None

    def add(self, node: Node, address: str = "") -> Node:
        """Add ``node`` under a free name (``~address`` appended when its own is taken)."""
        assert self.children is not None
        name = node.name
        if name in self.children:
            base = f"{name}~{address}" if address else f"{name}~"
            name, n = base, 1
            while name in self.children:
                n += 1
                name = f"{base}~{n}"
            node.name = name
        self.children[name] = node
        return node


def folder(name: str, stamp: Stamp, fill: Callable[[Node], None] | None = None) -> Node:
    return Node(name=name, stamp=stamp, mode=0o555, children={}, fill=fill)


def volume_name(path: str) -> str:
    """A volume-tree path as one component: ``0/bde1`` -> ``0_bde1``."""
    return path.replace("/", "_")


def mount_name(name: str) -> str:
    """A name from the evidence as one path component of the mount (see the module's notes)."""
    out = name.replace("%", "%25") if ("/" in name or "\0" in name) else name
    out = out.replace("/", "%2F").replace("\0", "%00")
    if out in ("", ".", ".."):
        return "%2E" * len(out) if out else "%00"
    return out


class MountTree:
    """The tree for one opened image; ``stream`` is the cached media and stays the caller's."""

    def __init__(self, stream: CachedStream, image: Path, *, files: bool = False,
                 notice: Notice | None = None, keys: Any = None) -> None:
        self.stream = stream
        self.image = image
        self.notice: Notice = notice or (lambda _message: None)
        #: a logical evidence file (L01, Lx01): files, not a disk (see the module's notes)
        self.logical = bool(getattr(stream.parent, "logical", False))
        #: what file contents are read under: TSK's lock, or for a logical evidence file the
        #: cache's source lock (one libewf handle reads the files and the media)
        self.reader_lock: threading.RLock = (stream.source_lock if self.logical
                                             else threading.RLock())
        self._fill_lock = threading.Lock()
        try:
            st = image.stat()
            self.stamp = Stamp(st.st_mtime_ns, st.st_atime_ns, st.st_ctime_ns)
        except OSError:
            self.stamp = Stamp(0, 0, 0)
        self.root = folder("", self.stamp)
        self.root.add(Node(MEDIA_NAME, self.stamp, size=stream.size, reader=stream.pread))
        self.volumes: VolumeTree | None = None
        self._tsk: TskImage | None = None
        #: the media's unreadable sectors, for the doubts of the files (with --files)
        self.unreadable: UnreadableSectors | None = None
        if self.logical:
            self.layout = VolumeLayout("logical", stream.sector_size, stream.size, ())
            if files:
                self.volumes = self._logical_tree()
                self.root.add(self._files())
            return
        self._tsk = TskImage(stream)
        self.layout = self._read_layout()
        # With --files, the volume tree too: a wrong key fails here, before anything is mounted
        if files:
            from bitwitness.report.browse.volumekeys import NO_KEYS

            try:
                self.volumes = read_tree(stream, keys if keys is not None else NO_KEYS)
            except InputError:
                raise
            except (BitWitnessError, OSError, RuntimeError) as exc:
                self.notice(f"volumes inside the partitions not read: "
                            f"{' '.join(str(exc).split())}")
        self.root.add(self._partitions())
        if files:
            self.unreadable = unreadable_sectors(image, stream)
            self.root.add(self._files())

    def _logical_tree(self) -> VolumeTree | None:
        """The one node of a logical evidence file (its file tree, listed now by libewf); None,
        said through ``notice``, when libewf cannot list it (``files/`` is then empty)."""
        try:
            return read_tree(self.stream.parent)
        except (BitWitnessError, OSError) as exc:
            self.notice(f"files not read: {' '.join(str(exc).split())}")
            return None

    def close(self) -> None:
        if self.volumes is not None:
            self.volumes.close()

    def _read_layout(self) -> VolumeLayout:
        """The partition table; when it cannot be read (a damaged area TSK probes), the mount
        still shows ``media.raw`` and says why ``partitions/`` is empty."""
        assert self._tsk is not None
        try:
            with self.reader_lock:
                return read_layout(self._tsk)
        except (BitWitnessError, OSError, RuntimeError) as exc:  # pytsk3 raises RuntimeError
            self.notice(f"partitions not read: {' '.join(str(exc).split())}")
            return VolumeLayout("none", self.stream.sector_size, self.stream.size, ())

    # --- lookup ----------------------------------------------------------------------------

    def lookup(self, path: str) -> Node | None:
        """The node at ``path`` (``/`` separated, from the mount's root), or None."""
        node = self.root
        for part in path.split("/"):
            if not part:
                continue
            children = self.children(node)
            if children is None:
                return None
            found = children.get(part)
            if found is None:
                return None
            node = found
        return node

    def children(self, node: Node) -> dict[str, Node] | None:
        """A folder's entries (walking its file system the first time); None for a file."""
        if node.fill is not None:
            with self._fill_lock:
                fill, node.fill = node.fill, None
                if fill is not None:
                    fill(node)
        return node.children

    # --- partitions/ -----------------------------------------------------------------------

    def _partitions(self) -> Node:
        top = folder(PARTITIONS, self.stamp)
        sector_size = self.layout.sector_size
        for part in self.layout.partitions:
            if part.kind not in (PartitionKind.PARTITION, PartitionKind.WHOLE):
                continue
            start = part.start * sector_size
            length = min(part.length * sector_size, max(0, self.stream.size - start))
            top.add(Node(f"{part.index}.raw", self.stamp, size=length,
                         reader=self._slice(start, length)))
        for node in self._inner_volumes():
            assert node.stream is not None
            top.add(Node(f"{volume_name(node.path)}.raw", self.stamp, size=node.stream.size,
                         reader=node.stream.pread))
        return top

    def _inner_volumes(self) -> list[VolumeNode]:
        """Volumes of the tree below the partition rows that have bytes of their own."""
        if self.volumes is None:
            return []
        return [n for n in self.volumes.walk() if "/" in n.path and n.stream is not None]

    def _slice(self, start: int, length: int) -> Reader:
        def read(offset: int, size: int) -> bytes:
            if offset >= length:
                return b""
            return self.stream.pread(start + offset, min(size, length - offset))

        return read

    # --- files/ ----------------------------------------------------------------------------

    def _files(self) -> Node:
        top = folder(FILES, self.stamp)
        if self.logical:
            # files/0/ as 'ls -p 0' lists it; no 0.deleted/: the format records no deleted entry
            for node in self.volumes.walk() if self.volumes is not None else ():
                top.add(folder(volume_name(node.path), self.stamp,
                               self._filler(node.path, {}, Selection.ALLOCATED)))
            return top
        for part in self.layout.filesystems:
            if self._not_tsks(part.index):
                continue  # TSK names it but another reader opens it (Rock Ridge): added below
            holder: dict[str, BrowsableFileSystem | None] = {}
            top.add(folder(str(part.index), self.stamp,
                           self._filler(part.index, holder, Selection.ALLOCATED)))
            top.add(folder(f"{part.index}{DELETED_SUFFIX}", self.stamp,
                           self._filler(part.index, holder, Selection.DELETED)))
        if self.volumes is not None:
            for node in self.volumes.walk():
                # a row of the table is above unless TSK did not open it (read by libyal)
                if not node.filesystem or ("/" not in node.path and not by_libyal(node)):
                    continue
                inner: dict[str, BrowsableFileSystem | None] = {}
                name = volume_name(node.path)
                top.add(folder(name, self.stamp,
                               self._filler(node.path, inner, Selection.ALLOCATED)))
                top.add(folder(f"{name}{DELETED_SUFFIX}", self.stamp,
                               self._filler(node.path, inner, Selection.DELETED)))
        return top

    def _not_tsks(self, index: int) -> bool:
        """Whether row ``index`` is one TSK opens but the volume tree hands to another reader
        (an ISO 9660 with Rock Ridge): served once, by that reader, from the volume tree."""
        if self.volumes is None:
            return False
        node = next((n for n in self.volumes.nodes if n.path == str(index)), None)
        return node is not None and by_libyal(node)

    def _filler(self, where: int | str, holder: dict[str, BrowsableFileSystem | None],
                selection: Selection) -> Callable[[Node], None]:
        def fill(node: Node) -> None:
            with self.reader_lock:
                if "fs" not in holder:
                    holder["fs"] = self._open_fs(where)
                fs = holder["fs"]
                if fs is not None:
                    self._walk_into(node, fs, selection)

        return fill

    def _open_fs(self, where: int | str) -> BrowsableFileSystem | None:
        """Partition row ``where`` (an int) or the volume-tree node at path ``where``."""
        try:
            if isinstance(where, str):
                assert self.volumes is not None
                return open_node(self.volumes, self.volumes.find(where))
            part = next(p for p in self.layout.partitions if p.index == where)
            assert self._tsk is not None
            return FileSystem(self._tsk, part)
        except BitWitnessError as exc:
            self.notice(f"volume {where}: file system not opened: {exc}")
            return None

    def _walk_into(self, top: Node, fs: BrowsableFileSystem, selection: Selection) -> None:
        """Every entry of ``fs`` the selection wants, under ``top`` at its path in the fs."""
        dirs: dict[str, Node] = {"": top}
        count = 0
        try:
            for entry in fs.walk("/", recursive=True, selection=selection):
                count += 1
                if count > MAX_ENTRIES:
                    self.notice(f"partition {fs.partition.index}: more than {MAX_ENTRIES} "
                                f"{selection.value} entries; the rest are not shown")
                    break
                self._place(dirs, top, fs, entry)
        except BitWitnessError as exc:
            self.notice(f"partition {fs.partition.index}: listing stopped: {exc}")

    def _place(self, dirs: dict[str, Node], top: Node, fs: BrowsableFileSystem,
               entry: Entry) -> None:
        # The folder's path, without the name: a name may itself hold "/" (hostile), so the
        # path is not split at its last "/".
        cut = len(entry.path) - len(entry.name) - 1
        parent_path = entry.path[:cut] if cut >= 0 and entry.path.endswith(
            entry.name) else entry.path.rpartition("/")[0]
        parent = dirs.get(parent_path) or self._virtual_dirs(dirs, top, parent_path)
        name = mount_name(entry.name)
        if entry.stream is not None:
            name = f"{name}:{mount_name(entry.stream)}"
        # a time the evidence does not record (NTFS $MFT's zeros, FAT's $MBR) is the epoch,
        # as timeline writes it, never the image file's own time
        stamp = Stamp.of(entry.times, NO_TIME)
        mode = entry.mode & 0o555
        if entry.is_dir:
            # The walk gives a folder's entries right after the folder itself, so the latest
            # folder seen at a path is the one its following entries belong to.
            dirs[entry.path] = parent.add(Node(name, stamp, mode=mode or 0o555, children={}),
                                          entry.address)
        else:
            size = len(entry.link.encode("utf-8", "surrogateescape")) if (
                entry.link is not None and entry.meta_type == "l") else entry.size
            note = fs.content_note(entry)
            if note is None and (compressed := getattr(fs, "compressed_note", None)) is not None:
                # an HFS+ file compressed with a method we do not decode: no byte of it is
                # read, so it is refused as a file with no content of its own is
                note = compressed(entry)
            doubted = None
            if note is None and (self.unreadable is not None or (
                    entry.deleted and (fs.type == "ntfs" or fs.type.startswith("ext")))):
                doubted = self._doubts(fs, entry)
            parent.add(Node(name, stamp, size=size, mode=mode or 0o444, note=note,
                            reader=self._content(fs, entry, note), doubts=doubted),
                       entry.address)

    def _virtual_dirs(self, dirs: dict[str, Node], top: Node, path: str) -> Node:
        """Folders on the way to a deleted entry whose parent is not listed (the parent lives)."""
        node, walked = top, ""
        for part in path.split("/")[1:]:
            walked = f"{walked}/{part}"
            known = dirs.get(walked)
            if known is None:
                known = node.add(folder(mount_name(part), self.stamp))
                dirs[walked] = known
            node = known
        return node

    def _doubts(self, fs: BrowsableFileSystem, entry: Entry) -> Callable[[], list[str]]:
        """The doubts about ``entry``'s bytes, asked under the reader lock (TSK is not
        thread-safe) when its attribute is read."""
        def ask() -> list[str]:
            with self.reader_lock:
                return doubts(fs, entry, self.unreadable)

        return ask

    def _content(self, fs: BrowsableFileSystem, entry: Entry, note: str | None) -> Reader:
        if note is not None:
            # a deleted name whose inode was reused or cleared: its bytes would be another
            # file's (or nothing), never this one's. Opening it already fails; a read never
            # gets here, and would fail too rather than hand out an empty or foreign file.
            def refuse(_offset: int, _size: int) -> bytes:
                raise NotRecoveredError(note)

            return refuse
        if entry.link is not None and entry.meta_type == "l":
            # TSK reads a symbolic link stored in its inode as zeros; its target is the content.
            target = entry.link.encode("utf-8", "surrogateescape")
            return lambda offset, size: target[offset : offset + size]

        # the node has its own times; the reader needs the entry's address, not its times (the
        # entry is kept as long as the mount serves: ~250 bytes less per file)
        kept = replace(entry, times=NO_TIMES, file_name_times=None)

        sparse = getattr(fs, "sparse_throughout", None)

        def read(offset: int, size: int) -> bytes:
            with self.reader_lock:
                data = fs.read(kept, offset, size)
                if len(data) < size and sparse is not None and sparse(kept):
                    return data + bytes(size - len(data))  # zeros no cluster holds
            return data

        return read


def file_type(node: Node) -> int:
    """``st_mode`` of a node: a folder or a regular file, never writable."""
    kind = stat.S_IFDIR if node.is_dir else stat.S_IFREG
    return kind | (node.mode & 0o555)
