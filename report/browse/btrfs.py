"""btrfs (one device) behind the browsing interface, read by our own code from the on-disk format
(the kernel's btrfs documentation, "On-disk Format"): neither The Sleuth Kit nor any libyal
library reads btrfs, the default of Fedora, openSUSE and Synology boxes.

What is read, in order: the superblock at 64 KiB (magic, crc32c), its ``sys_chunk_array`` and
then the chunk tree (logical -> physical: SINGLE and DUP, DUP read from its first copy; RAID
profiles and file systems of several devices are refused, their bytes are not all here), the
root tree, and the FS tree of the default subvolume. Folders list DIR_INDEX items (directory
order); a subvolume or snapshot linked into a folder is shown as a folder and read from its
own FS tree. File content comes from EXTENT_DATA: inline, regular, prealloc (zeros), holes
(zeros), zlib, zstd and LZO compression (LZO by our own decoder, btrfs_lzo.py: no LZO library
is a dependency). Data checksums (the csum tree) are not verified.

Entries look as ``fls -p`` would print them: the inode is the inode number inside its
subvolume; an inode of another subvolume than the default one is ``tree << 48 | inode`` so
that every address names one inode. There are no deleted entries: nothing here recovers
unlinked names or old tree nodes.

Hostile input fails closed: every node's bytenr, level, fsid and crc32c are checked, a tree is
at most 8 levels deep, each child's keys must lie in the range its parent gives it (so a node
cannot be reached twice in one walk, and no loop exists), sizes are checked against what the
format allows before anything is allocated, and every failure is a one-line
:class:`~bitwitness.errors.FileSystemError` naming the logical address or inode.
"""

from __future__ import annotations

import hashlib
import io
import stat as statmod
import struct
import zlib
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bitwitness.errors import FileSystemError
from bitwitness.images.crc32c import crc32c
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
from bitwitness.report.browse.safenames import shown
from bitwitness.report.browse.volumes import Partition
from bitwitness.stream import ImageStream

MAGIC = b"_BHRfS_M"
SUPERBLOCK_OFFSET = 0x10000
_SUPER_SIZE = 4096
#: the deepest tree the format allows (BTRFS_MAX_LEVEL)
MAX_LEVEL = 8
_HEADER = 0x65
_KEY = struct.Struct("<QBQ")
_ITEM = struct.Struct("<QBQII")  # key, data offset, data size
_PTR = struct.Struct("<QBQQQ")  # key, block pointer, generation
_MAX_KEY = (2**64 - 1, 255, 2**64 - 1)
#: item types
_INODE_ITEM, _INODE_REF, _DIR_ITEM, _DIR_INDEX, _EXTENT_DATA = 1, 12, 84, 96, 108
_ROOT_ITEM, _CHUNK_ITEM = 132, 228
_FS_TREE, _ROOT_TREE_DIR = 5, 6
_FIRST_CHUNK_TREE = 256
#: block group profile bits (BTRFS_BLOCK_GROUP_*)
_DUP = 0x20
_RAID = {0x8: "RAID0", 0x10: "RAID1", 0x40: "RAID10", 0x80: "RAID5", 0x100: "RAID6",
         0x200: "RAID1C3", 0x400: "RAID1C4"}
_INCOMPAT_METADATA_UUID = 1 << 10
#: compressed extents are at most 128 KiB of data (BTRFS_MAX_COMPRESSED) on disk and in memory
MAX_COMPRESSED = 128 << 10
#: tree nodes kept in memory (16 MiB at the usual 16 KiB nodes)
_NODE_CACHE = 1024
#: Runs shown by ``stat``: a fragmented file's extents beyond this are left out of the listing
MAX_RUNS = 4096
_INODE_SHIFT = 48
#: a folder entry naming a subvolume: its root folder's inode is in the subvolume's root item
_SUBVOLUME = -1
_FILE_TYPES = {1: "r", 2: "d", 3: "c", 4: "b", 5: "p", 6: "s", 7: "l"}
_MODE_TYPES = {statmod.S_IFREG: "r", statmod.S_IFDIR: "d", statmod.S_IFLNK: "l",
               statmod.S_IFIFO: "p", statmod.S_IFCHR: "c", statmod.S_IFBLK: "b",
               statmod.S_IFSOCK: "s"}
_COMPRESSION = {0: None, 1: "zlib", 2: "lzo", 3: "zstd"}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

Key = tuple[int, int, int]


def is_btrfs(stream: ImageStream) -> bool:
    """Whether ``stream`` holds a btrfs superblock magic at 64 KiB (checked fully on open)."""
    if stream.size < SUPERBLOCK_OFFSET + _SUPER_SIZE:
        return False
    return stream.pread(SUPERBLOCK_OFFSET + 0x40, 8) == MAGIC


@dataclass(frozen=True)
class _Chunk:
    logical: int
    length: int
    physical: int  #: where its first (for DUP: its first copy's) bytes lie on the device
    profile: str


@dataclass(frozen=True)
class _Node:
    level: int
    keys: tuple[Key, ...]
    #: leaf: each item's data; node: each child's (block pointer, as int)
    values: tuple[bytes, ...] | tuple[int, ...]


@dataclass(frozen=True)
class _Inode:
    size: int
    nlink: int
    uid: int
    gid: int
    mode: int
    flags: int
    times: Times
    nbytes: int


@dataclass(frozen=True)
class _Extent:
    offset: int  #: in the file
    length: int  #: bytes of the file it gives
    kind: int  #: 0 inline, 1 regular, 2 prealloc
    compression: int
    inline: bytes
    ram_bytes: int
    disk_bytenr: int  #: logical; 0 for a hole
    disk_num_bytes: int
    disk_offset: int  #: into the (decompressed) extent


def _u64(data: bytes, at: int) -> int:
    return int.from_bytes(data[at:at + 8], "little")


class BtrfsFileSystem:
    """One btrfs file system in ``stream`` (a partition or a whole image), read-only."""

    type = "btrfs"

    def __init__(self, stream: ImageStream, partition: Partition) -> None:
        self.partition = partition
        self._stream = stream
        self._nodes: OrderedDict[int, _Node] = OrderedDict()
        self._chunks: list[_Chunk] = []
        self._starts: list[int] = []
        self._superblock()
        self._chunk_tree()
        self._trees: dict[int, tuple[int, int, int]] = {}
        self._default = self._default_tree()

    # --- superblock and chunks ----------------------------------------------------------------

    def _superblock(self) -> None:
        if self._stream.size < SUPERBLOCK_OFFSET + _SUPER_SIZE:
            raise FileSystemError("btrfs: the volume ends before its superblock at 64 KiB")
        sb = self._stream.pread(SUPERBLOCK_OFFSET, _SUPER_SIZE)
        if sb[0x40:0x48] != MAGIC:
            raise FileSystemError("btrfs: no superblock magic _BHRfS_M at byte 65600")
        self._csum_type = int.from_bytes(sb[0xC4:0xC6], "little")
        if not self._checksum_ok(sb):
            raise FileSystemError("btrfs: the superblock at byte 65536 fails its checksum")
        self.fsid = sb[0x20:0x30]
        incompat = _u64(sb, 0xBC)
        self._meta_fsid = sb[0x23B:0x24B] if incompat & _INCOMPAT_METADATA_UUID else self.fsid
        num_devices = _u64(sb, 0x88)
        if num_devices != 1:
            raise FileSystemError(f"btrfs: a file system of {num_devices} devices; only "
                                  "single-device btrfs is read")
        self.sectorsize = int.from_bytes(sb[0x90:0x94], "little")
        self.nodesize = int.from_bytes(sb[0x94:0x98], "little")
        if self.sectorsize not in (4096, 8192, 16384, 32768, 65536):
            raise FileSystemError(f"btrfs: sector size {self.sectorsize} is not one btrfs uses")
        if not (self.sectorsize <= self.nodesize <= 65536
                and self.nodesize & (self.nodesize - 1) == 0):
            raise FileSystemError(f"btrfs: node size {self.nodesize} is not one btrfs uses")
        self._root = (_u64(sb, 0x50), sb[0xC6])
        self._chunk_root = (_u64(sb, 0x58), sb[0xC7])
        self._root_dir = _u64(sb, 0x80) or _ROOT_TREE_DIR
        self._devid = _u64(sb, 0xC9)
        self.label = sb[0x12B:0x22B].split(b"\0")[0].decode("utf-8", "replace")
        size = int.from_bytes(sb[0xA0:0xA4], "little")
        if size > 0x800:
            raise FileSystemError(f"btrfs: sys_chunk_array of {size} bytes (at most 2048)")
        self._sys_chunks(sb[0x32B:0x32B + size])

    def _sys_chunks(self, array: bytes) -> None:
        """The chunks of the superblock's ``sys_chunk_array`` (those holding the chunk tree)."""
        at = 0
        while at < len(array):
            if at + 17 + 48 > len(array):
                raise FileSystemError("btrfs: sys_chunk_array ends inside a chunk")
            key = _KEY.unpack_from(array, at)
            if key[1] != _CHUNK_ITEM:
                raise FileSystemError(f"btrfs: sys_chunk_array holds item type {key[1]}, not "
                                      "a chunk")
            stripes = int.from_bytes(array[at + 17 + 44:at + 17 + 46], "little")
            end = at + 17 + 48 + 32 * stripes
            if stripes == 0 or end > len(array):
                raise FileSystemError("btrfs: sys_chunk_array ends inside a chunk")
            self._add_chunk(key[2], array[at + 17:end])
            at = end

    def _checksum_ok(self, block: bytes) -> bool:
        """The block's checksum (bytes 32 on) against its first 32 bytes: crc32c (the default),
        SHA-256 or BLAKE2b-256; xxHash64 has no decoder here and is refused."""
        body = block[0x20:]
        if self._csum_type == 0:
            return block[:4] == crc32c(body).to_bytes(4, "little")
        if self._csum_type == 2:
            return block[:32] == hashlib.sha256(body).digest()
        if self._csum_type == 3:
            return block[:32] == hashlib.blake2b(body, digest_size=32).digest()
        names = {1: "xxhash64"}
        raise FileSystemError(f"btrfs: checksum type {names.get(self._csum_type, self._csum_type)}"
                              " cannot be verified here; refused")

    def _add_chunk(self, logical: int, item: bytes) -> None:
        if len(item) < 48 + 32:
            raise FileSystemError(f"btrfs: chunk at logical {logical} is cut short")
        length, _owner, _stripe_len, kind = struct.unpack_from("<QQQQ", item, 0)
        stripes = int.from_bytes(item[44:46], "little")
        raid = [name for bit, name in _RAID.items() if kind & bit]
        if raid:
            raise FileSystemError(f"btrfs: chunk at logical {logical} uses the {raid[0]} "
                                  "profile; only SINGLE and DUP are read")
        if stripes < 1 or len(item) < 48 + 32 * stripes:
            raise FileSystemError(f"btrfs: chunk at logical {logical} has no stripe")
        devid, physical = struct.unpack_from("<QQ", item, 48)
        if devid != self._devid:
            raise FileSystemError(f"btrfs: chunk at logical {logical} lies on device {devid}, "
                                  "not this one")
        if length == 0 or logical + length > 2**64 or physical + length > 2**64:
            raise FileSystemError(f"btrfs: chunk at logical {logical} ({length} bytes at "
                                  f"physical {physical}) is not one btrfs writes")
        # A chunk reaching past the media is kept: an image cut short still shows what it
        # holds, and a read past its end is refused then (read_logical).
        chunk = _Chunk(logical, length, physical, "DUP" if kind & _DUP else "SINGLE")
        at = bisect_right(self._starts, logical)
        if at and self._chunks[at - 1].logical == logical:
            return  # the same chunk from the sys array and the chunk tree
        if (at and self._chunks[at - 1].logical + self._chunks[at - 1].length > logical) or (
                at < len(self._chunks) and logical + length > self._chunks[at].logical):
            raise FileSystemError(f"btrfs: chunk at logical {logical} overlaps another")
        self._chunks.insert(at, chunk)
        self._starts.insert(at, logical)

    def _chunk_tree(self) -> None:
        for key, data in self._items(self._chunk_root, (_FIRST_CHUNK_TREE, _CHUNK_ITEM, 0),
                                     (_FIRST_CHUNK_TREE, _CHUNK_ITEM, _MAX_KEY[2])):
            self._add_chunk(key[2], data)

    def _physical(self, logical: int, size: int) -> Iterator[tuple[int, int]]:
        """(physical offset, bytes) pieces of ``size`` bytes at logical ``logical``."""
        while size > 0:
            at = bisect_right(self._starts, logical) - 1
            chunk = self._chunks[at] if at >= 0 else None
            if chunk is None or logical >= chunk.logical + chunk.length:
                raise FileSystemError(f"btrfs: logical address {logical} lies in no chunk")
            inside = logical - chunk.logical
            take = min(size, chunk.length - inside)
            yield chunk.physical + inside, take
            logical += take
            size -= take

    def read_logical(self, logical: int, size: int) -> bytes:
        out = bytearray()
        for physical, take in self._physical(logical, size):
            data = self._stream.pread(physical, take)
            if len(data) != take:
                raise FileSystemError(f"btrfs: logical address {logical} maps to physical "
                                      f"{physical}, past the media's end "
                                      f"({self._stream.size} bytes; cut short?)")
            out += data
        return bytes(out)

    # --- trees --------------------------------------------------------------------------------

    def _node(self, bytenr: int, level: int) -> _Node:
        cached = self._nodes.get(bytenr)
        if cached is not None:
            self._nodes.move_to_end(bytenr)
            if cached.level != level:
                raise FileSystemError(f"btrfs: tree node at logical {bytenr} is at level "
                                      f"{cached.level}, its parent says {level}")
            return cached
        node = self._parse_node(bytenr, level)
        self._nodes[bytenr] = node
        if len(self._nodes) > _NODE_CACHE:
            self._nodes.popitem(last=False)
        return node

    def _parse_node(self, bytenr: int, level: int) -> _Node:
        where = f"btrfs: tree node at logical {bytenr}"
        block = self.read_logical(bytenr, self.nodesize)
        if not self._checksum_ok(block):
            raise FileSystemError(f"{where} fails its checksum")
        if block[0x20:0x30] != self._meta_fsid:
            raise FileSystemError(f"{where} belongs to another file system (fsid)")
        if _u64(block, 0x30) != bytenr:
            raise FileSystemError(f"{where} says it is at {_u64(block, 0x30)}")
        count = int.from_bytes(block[0x60:0x64], "little")
        if block[0x64] != level:
            raise FileSystemError(f"{where} is at level {block[0x64]}, its parent says {level}")
        keys: list[Key] = []
        values = (self._leaf(block, count, keys, where) if level == 0
                  else self._pointers(block, count, keys, where))
        if any(keys[n] >= keys[n + 1] for n in range(len(keys) - 1)):
            raise FileSystemError(f"{where}: its keys are out of order")
        return _Node(level, tuple(keys), values)

    def _leaf(self, block: bytes, count: int, keys: list[Key], where: str) -> tuple[bytes, ...]:
        if _HEADER + count * _ITEM.size > self.nodesize:
            raise FileSystemError(f"{where} claims {count} items, more than fit")
        data: list[bytes] = []
        for n in range(count):
            objectid, kind, offset, start, size = _ITEM.unpack_from(block, _HEADER + 25 * n)
            if _HEADER + start + size > self.nodesize:
                raise FileSystemError(f"{where}: item {n} lies outside the node")
            keys.append((objectid, kind, offset))
            data.append(block[_HEADER + start:_HEADER + start + size])
        return tuple(data)

    def _pointers(self, block: bytes, count: int, keys: list[Key],
                  where: str) -> tuple[int, ...]:
        if count == 0 or _HEADER + count * _PTR.size > self.nodesize:
            raise FileSystemError(f"{where} claims {count} children")
        children: list[int] = []
        for n in range(count):
            objectid, kind, offset, child, _gen = _PTR.unpack_from(block, _HEADER + 33 * n)
            keys.append((objectid, kind, offset))
            children.append(child)
        return tuple(children)

    def _items(self, root: tuple[int, int], low: Key, high: Key) -> Iterator[tuple[Key, bytes]]:
        """Items with ``low <= key <= high`` of the tree at ``root`` (bytenr, level), in key
        order. Each child must keep to the key range its parent gives it: a node pointing at
        itself or at an ancestor, or one reached twice, breaks that and is refused."""
        bytenr, level = root
        if level >= MAX_LEVEL:
            raise FileSystemError(f"btrfs: tree at logical {bytenr} claims level {level} "
                                  f"(at most {MAX_LEVEL - 1})")
        yield from self._descend(bytenr, level, low, high, lo_bound=(0, 0, 0),
                                 hi_bound=_MAX_KEY, path=set())

    def _descend(self, bytenr: int, level: int, low: Key, high: Key, *, lo_bound: Key,
                 hi_bound: Key, path: set[int]) -> Iterator[tuple[Key, bytes]]:
        if bytenr in path:
            raise FileSystemError(f"btrfs: tree node at logical {bytenr} points back to itself"
                                  " or an ancestor")
        node = self._node(bytenr, level)
        if node.keys and (node.keys[0] < lo_bound or node.keys[-1] > hi_bound):
            raise FileSystemError(f"btrfs: tree node at logical {bytenr} holds keys outside "
                                  "the range its parent gives it")
        if level == 0:
            for key, value in zip(node.keys, node.values, strict=True):
                if key > high:
                    return
                if key >= low:
                    assert isinstance(value, bytes)
                    yield key, value
            return
        path.add(bytenr)
        try:
            for n, key in enumerate(node.keys):
                nxt = node.keys[n + 1] if n + 1 < len(node.keys) else hi_bound
                if key > high:
                    return
                if n + 1 < len(node.keys) and nxt <= low:
                    continue
                child = node.values[n]
                assert isinstance(child, int)
                yield from self._descend(child, level - 1, low, high, lo_bound=key,
                                         hi_bound=nxt, path=path)
        finally:
            path.discard(bytenr)

    def _tree(self, tree: int) -> tuple[int, int, int]:
        """(root bytenr, level, root folder inode) of subvolume tree ``tree``."""
        found = self._trees.get(tree)
        if found is not None:
            return found
        for _key, data in self._items(self._root, (tree, _ROOT_ITEM, 0),
                                      (tree, _ROOT_ITEM, _MAX_KEY[2])):
            if len(data) < 239:
                raise FileSystemError(f"btrfs: root item of tree {tree} is cut short")
            found = (_u64(data, 176), data[238], _u64(data, 168) or 256)
        if found is None:
            raise FileSystemError(f"btrfs: tree {tree} is not in the root tree")
        if len(self._trees) < 4096:
            self._trees[tree] = found
        return found

    def _default_tree(self) -> int:
        """The default subvolume: the root tree's ``default`` name, else the FS tree (5)."""
        for _key, data in self._items(self._root, (self._root_dir, _DIR_ITEM, 0),
                                      (self._root_dir, _DIR_ITEM, _MAX_KEY[2])):
            for name, location, _kind in _dir_items(data):
                if name == b"default" and location[1] == _ROOT_ITEM:
                    self._tree(location[0])
                    return location[0]
        self._tree(_FS_TREE)
        return _FS_TREE

    # --- inodes -------------------------------------------------------------------------------

    def _address(self, tree: int, ino: int) -> int:
        if tree == self._default:
            return ino
        if ino >> _INODE_SHIFT:
            raise FileSystemError(f"btrfs: inode {ino} of tree {tree} is beyond what an "
                                  "address can name")
        return tree << _INODE_SHIFT | ino

    def _split(self, address: int) -> tuple[int, int]:
        if address >> _INODE_SHIFT:
            return address >> _INODE_SHIFT, address & ((1 << _INODE_SHIFT) - 1)
        return self._default, address

    def _inode(self, tree: int, ino: int) -> _Inode:
        root = self._tree(tree)
        for _key, data in self._items(root[:2], (ino, _INODE_ITEM, 0), (ino, _INODE_ITEM, 0)):
            if len(data) < 160:
                raise FileSystemError(f"btrfs: inode {ino} of tree {tree} is cut short")
            size, nbytes = _u64(data, 16), _u64(data, 24)
            nlink, uid, gid, mode = struct.unpack_from("<IIII", data, 40)
            times = Times(_time(data, 136, ino), _time(data, 112, ino), _time(data, 124, ino),
                          _time(data, 148, ino))
            return _Inode(size, nlink, uid, gid, mode, _u64(data, 64), times, nbytes)
        raise FileSystemError(f"btrfs: inode {ino} does not exist in tree {tree}")

    def _entry(self, tree: int, ino: int, path: str, name: str, name_type: str) -> Entry:
        inode = self._inode(tree, ino)
        kind = _MODE_TYPES.get(statmod.S_IFMT(inode.mode), "-")
        link = None
        if kind == "l":
            raw = b"".join(self._pieces(tree, ino, inode.size, 0, min(inode.size, 4096)))
            link = raw.decode("utf-8", "surrogateescape")
        return Entry(path=path, name=name, inode=self._address(tree, ino), attr_type=None,
                     attr_id=None, stream=None, name_type=name_type or kind, meta_type=kind,
                     deleted=False, realloc=False, size=inode.size, times=inode.times,
                     mode=inode.mode & 0o7777, uid=inode.uid, gid=inode.gid, link=link)

    def _resolve(self, tree: int, ino: int) -> int:
        return self._tree(tree)[2] if ino == _SUBVOLUME else ino

    def _children(self, tree: int, ino: int) -> Iterator[tuple[str, int, int, str]]:
        """(name, tree, inode, name type) of a folder's entries in DIR_INDEX order; a
        subvolume linked here is its own tree's root folder, inode :data:`_SUBVOLUME` until
        :meth:`_resolve` reads its root item (so that one missing subvolume, a deleted one
        the kernel has not yet cleaned, costs only its own entry)."""
        root = self._tree(tree)
        for _key, data in self._items(root[:2], (ino, _DIR_INDEX, 0),
                                      (ino, _DIR_INDEX, _MAX_KEY[2])):
            for raw, location, kind in _dir_items(data):
                name = raw.decode("utf-8", "surrogateescape")
                if location[1] == _ROOT_ITEM:
                    yield name, location[0], _SUBVOLUME, "d"
                else:
                    yield name, tree, location[0], _FILE_TYPES.get(kind, "-")

    # --- listing and lookup -------------------------------------------------------------------

    def walk(self, path: str = "/", *, recursive: bool = False,
             selection: Selection = Selection.ALLOCATED, mediator: Mediator | None = None,
             file_names: bool = False) -> Iterator[Entry]:
        """Entries of a folder in directory order (no deleted entries are recovered)."""
        mediator = mediator or NullMediator()
        start = self.lookup(path)
        if not start.is_dir:
            raise FileSystemError(f"{shown(start.display_path)}: not a directory")
        if selection is Selection.DELETED:
            return
        prefix = "" if start.path == "/" else start.path
        tree, ino = self._split(start.inode)
        yield from self._walk(tree, ino, prefix, recursive=recursive, mediator=mediator,
                              stack=[(tree, ino)])

    def _walk(self, tree: int, ino: int, prefix: str, *, recursive: bool, mediator: Mediator,
              stack: list[tuple[int, int]]) -> Iterator[Entry]:
        try:
            children = list(self._children(tree, ino))
        except FileSystemError as exc:
            mediator.notice(f"{shown(prefix or '/')}: directory not readable: {exc}",
                            level=UNREAD)
            return
        for name, child_tree, linked, name_type in children:
            try:
                child = self._resolve(child_tree, linked)
                entry = self._entry(child_tree, child, f"{prefix}/{name}", name, name_type)
            except FileSystemError as exc:
                mediator.notice(f"{shown(prefix or '/')}: entry {shown(name)} not readable: "
                                f"{exc}", level=UNREAD)
                continue
            yield entry
            if recursive and entry.is_dir and (child_tree, child) not in stack:
                if len(stack) >= MAX_DEPTH:
                    mediator.notice(f"{shown(entry.path)}: deeper than {MAX_DEPTH} folders, "
                                    "not walked", level=UNREAD)
                    continue
                stack.append((child_tree, child))
                yield from self._walk(child_tree, child, entry.path, recursive=recursive,
                                      mediator=mediator, stack=stack)
                stack.pop()

    def lookup(self, path: str) -> Entry:
        tree = self._default
        ino = self._tree(tree)[2]
        name_type = "d"
        walked = ""
        for part in split_path(path):
            for name, child_tree, child, kind in self._children(tree, ino):
                if name == part:
                    tree, ino, name_type = child_tree, self._resolve(child_tree, child), kind
                    break
            else:
                raise FileSystemError(f"{shown(walked)}/{shown(part)}: no such file or folder")
            walked = f"{walked}/{part}"
        name = walked.rpartition("/")[2]
        return self._entry(tree, ino, walked or "/", name, name_type)

    def names(self, path: str) -> list[str]:
        """The components of ``path``: names here are looked up only as they are stored."""
        self.lookup(path)
        return split_path(path)

    def by_address(self, address: str) -> Entry:
        text = address.strip()
        if not text.isdigit() or not text.isascii():
            raise FileSystemError(f"{address!r} is not an inode number")
        tree, ino = self._split(int(text))
        return self._entry(tree, ino, "", "", "")

    def target(self, path: str | None = None, address: str | None = None) -> Entry:
        if (path is None) == (address is None):
            raise FileSystemError("give either a path or an inode, not both")
        return self.lookup(path) if path is not None else self.by_address(address or "")

    # --- content ------------------------------------------------------------------------------

    def _extents(self, tree: int, ino: int) -> Iterator[_Extent]:
        root = self._tree(tree)
        for key, data in self._items(root[:2], (ino, _EXTENT_DATA, 0),
                                     (ino, _EXTENT_DATA, _MAX_KEY[2])):
            yield _extent(key[2], data, ino, self.sectorsize)

    def _pieces(self, tree: int, ino: int, size: int, start: int, end: int, *,
                block: int = 1 << 20) -> Iterator[bytes]:
        """The bytes ``start``..``end`` of the file, in pieces of at most ``block`` (holes and
        the tail past the last extent read as zeros)."""
        end = min(end, size)
        pos = start
        for ext in self._extents(tree, ino):
            if pos >= end:
                return
            ext_end = min(ext.offset + ext.length, end)
            if ext_end <= pos:
                continue
            while pos < min(ext.offset, end):
                take = min(block, ext.offset - pos, end - pos)
                yield bytes(take)
                pos += take
            yield from self._extent_bytes(ext, ino, pos, ext_end, block)
            pos = ext_end
        while pos < end:
            take = min(block, end - pos)
            yield bytes(take)
            pos += take

    def _extent_bytes(self, ext: _Extent, ino: int, start: int, end: int,
                      block: int) -> Iterator[bytes]:
        inside = start - ext.offset
        want = end - start
        if ext.kind == 0:
            data = ext.inline if not ext.compression else _decompress(
                ext.compression, ext.inline, ext.ram_bytes, ino=ino, offset=ext.offset,
                sectorsize=self.sectorsize)
            yield data[inside:inside + want].ljust(want, b"\0")
            return
        if ext.kind == 2 or ext.disk_bytenr == 0:
            while want > 0:
                take = min(block, want)
                yield bytes(take)
                want -= take
            return
        if ext.compression:
            raw = self.read_logical(ext.disk_bytenr, ext.disk_num_bytes)
            data = _decompress(ext.compression, raw, ext.ram_bytes, ino=ino, offset=ext.offset,
                               sectorsize=self.sectorsize)
            at = ext.disk_offset + inside
            yield data[at:at + want].ljust(want, b"\0")
            return
        logical = ext.disk_bytenr + ext.disk_offset + inside
        while want > 0:
            take = min(block, want)
            yield self.read_logical(logical, take)
            logical += take
            want -= take

    def iter_content(self, entry: Entry, block: int = 1 << 20) -> Iterator[bytes]:
        if entry.is_dir:
            raise FileSystemError(f"{shown(entry.display_path) or entry.address}: is a folder")
        tree, ino = self._split(entry.inode)
        yield from self._pieces(tree, ino, entry.size, 0, entry.size, block=max(1, block))

    def read(self, entry: Entry, offset: int = 0, size: int = 4096) -> bytes:
        if entry.is_dir or offset >= entry.size:
            return b""
        tree, ino = self._split(entry.inode)
        return b"".join(self._pieces(tree, ino, entry.size, offset, offset + size))

    def stat(self, entry: Entry) -> FileStat:
        """The inode's fields and the file's extents: (first block, blocks) in sectors of the
        volume where the data lies (physical, through the chunk map), None for a hole or a
        preallocated range; compressed extents give their bytes on disk."""
        tree, ino = self._split(entry.inode)
        inode = self._inode(tree, ino)
        runs: list[tuple[int | None, int]] = []
        for ext in self._extents(tree, ino):
            if len(runs) >= MAX_RUNS or ext.kind == 0:
                continue
            blocks = -(-(ext.disk_num_bytes if ext.compression else ext.length)
                       // self.sectorsize)
            if ext.kind == 2 or ext.disk_bytenr == 0:
                runs.append((None, blocks))
                continue
            first = ext.disk_bytenr + (0 if ext.compression else ext.disk_offset)
            physical = next(self._physical(first, 1))[0]
            runs.append((physical // self.sectorsize, blocks))
        attributes: tuple[Attribute, ...] = ()
        if runs:
            attributes = (Attribute(type=1, id=0, name=None, size=entry.size, resident=False,
                                    runs=tuple(runs)),)
        return FileStat(entry=entry, filesystem=self.type, allocated=True,
                        mode=permissions(entry.mode), uid=inode.uid, gid=inode.gid,
                        links=inode.nlink, attributes=attributes)

    def content_note(self, entry: Entry) -> str | None:
        return None  # only allocated files are listed: their content is theirs

    def file_name_times(self, entry: Entry) -> Times | None:
        return None


def _time(data: bytes, at: int, ino: int) -> datetime | None:
    seconds = int.from_bytes(data[at:at + 8], "little", signed=True)
    nanos = int.from_bytes(data[at + 8:at + 12], "little")
    if seconds == 0 and nanos == 0:
        return None
    try:
        return _EPOCH + timedelta(seconds=seconds, microseconds=nanos // 1000)
    except OverflowError:
        raise FileSystemError(f"btrfs: inode {ino} holds a time of {seconds} s, beyond what "
                              "a date can show") from None


def _dir_items(data: bytes) -> Iterator[tuple[bytes, Key, int]]:
    """(name, location key, file type) of each entry packed in a DIR_ITEM/DIR_INDEX item."""
    at = 0
    while at + 30 <= len(data):
        location = _KEY.unpack_from(data, at)
        data_len, name_len = struct.unpack_from("<HH", data, at + 25)
        kind = data[at + 29]
        end = at + 30 + name_len + data_len
        if end > len(data):
            raise FileSystemError("btrfs: a directory item runs past its leaf item")
        yield data[at + 30:at + 30 + name_len], location, kind
        at = end


def _extent(offset: int, data: bytes, ino: int, sectorsize: int) -> _Extent:
    where = f"btrfs: inode {ino}, extent at file offset {offset}"
    if len(data) < 21:
        raise FileSystemError(f"{where} is cut short")
    ram_bytes = _u64(data, 8)
    compression, encryption = data[16], data[17]
    kind = data[20]
    if encryption or int.from_bytes(data[18:20], "little"):
        raise FileSystemError(f"{where} is encrypted or encoded; refused")
    if compression not in _COMPRESSION:
        raise FileSystemError(f"{where} has unknown compression {compression}")
    if kind == 0:
        inline = data[21:]
        limit = sectorsize if compression else len(inline)
        if ram_bytes > max(limit, sectorsize) or (not compression and ram_bytes != len(inline)):
            raise FileSystemError(f"{where}: inline extent of {ram_bytes} bytes is not one "
                                  f"btrfs writes")
        return _Extent(offset, ram_bytes, 0, compression, inline, ram_bytes, 0, 0, 0)
    if kind not in (1, 2):
        raise FileSystemError(f"{where} has unknown type {kind}")
    if len(data) < 53:
        raise FileSystemError(f"{where} is cut short")
    bytenr, num_bytes, extent_offset, length = struct.unpack_from("<QQQQ", data, 21)
    if compression and (num_bytes > MAX_COMPRESSED or ram_bytes > MAX_COMPRESSED
                        or extent_offset + length > ram_bytes):
        raise FileSystemError(f"{where}: compressed extent of {num_bytes} -> {ram_bytes} bytes"
                              f" is larger than btrfs writes ({MAX_COMPRESSED})")
    if offset + length > 2**63:
        raise FileSystemError(f"{where} reaches past the largest file")
    return _Extent(offset, length, kind, compression, b"", ram_bytes, bytenr, num_bytes,
                   extent_offset)


def _decompress(method: int, data: bytes, ram_bytes: int, *, ino: int, offset: int,
                sectorsize: int) -> bytes:
    where = f"btrfs: inode {ino}, extent at file offset {offset}"
    name = _COMPRESSION[method]
    try:
        if name == "zlib":
            return zlib.decompressobj().decompress(data, ram_bytes)
        if name == "zstd":
            import zstandard

            # a reader asked for at most the extent's size: a bomb stops there
            source = io.BytesIO(data)
            with zstandard.ZstdDecompressor().stream_reader(source) as reader:
                return reader.read(ram_bytes)
    except (zlib.error, ValueError) as exc:
        raise FileSystemError(f"{where}: {name} data does not decompress ({exc})") from None
    except Exception as exc:  # zstandard.ZstdError has no stable import path
        if type(exc).__name__ == "ZstdError":
            raise FileSystemError(f"{where}: zstd data does not decompress") from None
        raise
    from bitwitness.report.browse.btrfs_lzo import LzoError, btrfs_lzo

    try:
        return btrfs_lzo(data, ram_bytes, sectorsize)
    except LzoError as exc:
        raise FileSystemError(f"{where}: lzo data does not decompress ({exc})") from None

