"""ISO 9660 with Rock Ridge behind the browsing interface, read by our own code (ECMA-119,
SUSP IEEE P1281, RRIP IEEE P1282): The Sleuth Kit ignores Rock Ridge, so on an ISO made on
Linux (``xorriso -as mkisofs -R``, ``genisoimage -R``) it shows the 8.3 names of the primary
tree (``A_LONG_F/A_VERY_L.TXT``), every symbolic link, device and FIFO as a regular file, no
modes, owners or times but the recording date; with Joliet it shows the Joliet names and no
symbolic link at all. The volume tree hands a volume to this reader when its root's ``.``
record announces SUSP (SP) and Rock Ridge (volumetree.py, ``reader = "rockridge"``); any other
ISO stays with TSK.

What is read: the primary volume descriptor's tree, each name from ``NM`` (pieces, CE
continuation areas), type, mode, links, owner and group from ``PX``, devices from ``PN``,
link targets from ``SL``, times from ``TF`` (short and long forms, with their offsets; without
a creation time the record's recording date stands for it, as TSK shows it), folders moved
to ``rr_moved`` by ``RE``/``CL`` shown where they belong (the relocated record itself not
shown), files of several extents (flag 0x80, over 4 GiB) as one file, zisofs (``ZF`` ``pz``) and
zisofs2 with zlib (``ZF`` or ``Z2`` ``PZ``) content decompressed.

Addresses are The Sleuth Kit's, so that ``istat``/``icat`` check what we show: TSK numbers
records as it loads them (Joliet descriptors' path tables first, then the primary's, each
folder's records in order; a later descriptor's folders not at all and its file dropped when
its extent and non-zero size equal an earlier one's), and :class:`_TskNumbers` repeats that
walk. A Rock Ridge file TSK numbered has TSK's number (its own record's, or the Joliet record
it was dropped for); a folder of the primary tree TSK did not number is matched to its Joliet
twin; anything else (a symbolic link only in the primary tree of a Joliet ISO) gets a number
past TSK's last (its ``$OrphanFiles``), colliding with none. ``$OrphanFiles`` is listed at the
root as ``fls`` lists it. A session of a multi-session image that TSK does not read (it reads
the one at sector 16; iso_sessions.py) is numbered the same way plus ``K << 32``.

Hostile input fails closed. Damage to one record is that entry's (as TSK takes it): a file
whose extent lies outside the image is listed and its content refused, a folder reached twice
(a loop) or whose records cannot be read is listed empty, each named in a warning where it is
walked (UNREAD: the listing is incomplete, exit 1). What bounds the whole volume ends the
reading with a one-line :class:`~bitwitness.errors.FileSystemError`: a root that cannot be
read, more than :data:`MAX_ENTRIES` files or :data:`MAX_DIRECTORY_BYTES` of folders, and the
SUSP bounds of iso_rockridge.py.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime

from bitwitness.errors import FileSystemError
from bitwitness.progress import UNREAD, Mediator
from bitwitness.report.browse import iso_rockridge as rrip
from bitwitness.report.browse.entries import (
    Attribute,
    Entry,
    FileStat,
    Selection,
    Times,
    make_entry,
    permissions,
)
from bitwitness.report.browse.filesystem import MAX_DEPTH, split_path
from bitwitness.report.browse.iso_sessions import IsoSession
from bitwitness.report.browse.safenames import shown, spellings
from bitwitness.report.browse.volumes import Partition
from bitwitness.stream import ImageStream

SECTOR = 2048
_FIRST_DESCRIPTOR = 16
#: volume descriptors read before the set terminator must have come
MAX_DESCRIPTORS = 64
#: files and folders one volume may have: each costs some 900 bytes in memory (its times
#: decoded), so the whole tree stays under about 450 MiB
MAX_ENTRIES = 500_000
#: bytes of folder records read in all, both trees (some 2 million records)
MAX_DIRECTORY_BYTES = 256 << 20
#: one folder's records at most (a real one of 100,000 files has some 6 MiB)
MAX_DIRECTORY = 32 << 20
_RECORD = 33  # fixed part of a directory record
_DIR, _MULTI = 0x02, 0x80
_JOLIET = (b"%/@", b"%/C", b"%/E")
ORPHANS = "$OrphanFiles"


@dataclass(frozen=True)
class _ZisofsLayout:
    """One zisofs version's file header: its magic, pointer width and block sizes (log2)."""

    magic: bytes
    pointer: int
    blocks: tuple[int, ...]
    version: int

    def header(self, head: bytes) -> tuple[int, int, int]:
        """(pointer table offset, uncompressed size, log2 block) of a file's first bytes;
        offset -1 when they are no such header. zisofs 1: size LE32 at 8, header/4 at 12,
        log2 at 13. zisofs2: header version 0 at 8, header/4 at 9, algorithm 1 (zlib) at 10,
        log2 at 11, size LE64 at 12."""
        if len(head) < 16 or head[:8] != self.magic:
            return -1, 0, 0
        if self.version == 1:
            return head[12] * 4, int.from_bytes(head[8:12], "little"), head[13]
        if len(head) < 24 or head[8] != 0 or head[10] != 1:
            return -1, 0, 0
        return head[9] * 4, int.from_bytes(head[12:20], "little"), head[11]


#: zisofs by the algorithm its Rock Ridge entry names: zisofs 1 ("pz") and zisofs2 with zlib
#: ("PZ"); zisofs2's other algorithms (xz, lz4, zstd, bzip2) are refused by name
_ZISOFS_LAYOUTS = {
    b"pz": _ZisofsLayout(b"\x37\xe4\x53\x96\xc9\xdb\xd6\x07", 4, (15, 16, 17), 1),
    b"PZ": _ZisofsLayout(b"\xef\x22\x55\xa1\xbc\x1b\x95\xa0", 8, (15, 16, 17, 18, 19, 20), 2),
}


def _be32(data: bytes, at: int) -> int:
    return int.from_bytes(data[at:at + 4], "big")


def _le32(data: bytes, at: int) -> int:
    return int.from_bytes(data[at:at + 4], "little")


@dataclass(frozen=True)
class _Descriptors:
    primary: bytes
    joliet: tuple[bytes, ...]
    primaries: tuple[bytes, ...]
    blocks: int  #: volume space size of the primary descriptor (TSK's block count)


def read_descriptors(stream: ImageStream, first: int = _FIRST_DESCRIPTOR) -> _Descriptors | None:
    """The volume descriptors from sector ``first`` (16, or a later session's start + 16) to
    the set terminator, or None (no ISO 9660 there)."""
    primaries: list[bytes] = []
    joliet: list[bytes] = []
    for number in range(first, first + MAX_DESCRIPTORS):
        block = stream.pread(number * SECTOR, SECTOR)
        if len(block) < SECTOR or block[1:6] != b"CD001":
            break
        if block[0] == 255:
            break
        if block[0] == 1:
            primaries.append(block)
        elif block[0] == 2 and block[88:91] in _JOLIET:
            joliet.append(block)
    if not primaries:
        return None
    return _Descriptors(primaries[0], tuple(joliet), tuple(primaries), _le32(primaries[0], 80))


def _su_area(record: bytes) -> bytes:
    """The System Use area of a directory record: after the name and its padding byte."""
    fi_len = record[32]
    start = _RECORD + fi_len + (0 if fi_len % 2 else 1)
    return record[start:]


def has_rock_ridge(stream: ImageStream, session: IsoSession | None = None) -> bool:
    """Whether ``stream`` is an ISO 9660 volume whose root announces SUSP and Rock Ridge (the
    volume tree then reads it here instead of with TSK); ``session``: that session's root
    rather than the one the descriptors at sector 16 give. Never raises on damage: a volume
    whose root cannot be read is TSK's to refuse."""
    try:
        found = read_descriptors(stream, _FIRST_DESCRIPTOR if session is None
                                 else session.descriptors)
        if found is None:
            return False
        root = found.primary[156:190]
        dot = stream.pread(_le32(root, 2) * SECTOR, SECTOR)
        if len(dot) < 34 or dot[0] < 34 or dot[0] > len(dot):
            return False
        susp = rrip.root_susp(_su_area(dot[:dot[0]]), stream.pread, stream.size)
        return susp is not None and susp.rock_ridge
    except (FileSystemError, ValueError, OSError):
        return False


def joliet_loses_names(stream: ImageStream) -> bool:
    """Whether TSK's loader would drop records of this ISO's Joliet tree: it stops a sector
    at a Joliet name longer than 128 bytes of UTF-8 (43 or more CJK characters, which Joliet
    allows up to 64, or 103 with ``-joliet-long``), so that file, and every record after it in
    the sector, is listed only under ``$OrphanFiles`` or not at all. Such an ISO without Rock
    Ridge is read here, through its Joliet tree. Never raises on damage (TSK's to refuse)."""
    try:
        found = read_descriptors(stream)
        if found is None or not found.joliet:
            return False
        budget = MAX_DIRECTORY_BYTES
        descriptor = found.joliet[0]
        size, location = _le32(descriptor, 132), _be32(descriptor, 148)
        if size > MAX_DIRECTORY or location * SECTOR + size > stream.size:
            return False
        table = stream.pread(location * SECTOR, size)
        at = 0
        while at + 8 <= len(table):
            extent, length = _be32(table, at + 2), table[at]
            at += 8 + length + (length % 2)
            first = stream.pread(extent * SECTOR, SECTOR)
            if len(first) < SECTOR or first[0] < _RECORD:
                continue
            folder = min(_be32(first, 14), MAX_DIRECTORY)
            budget -= folder
            if budget < 0:
                return False
            data = stream.pread(extent * SECTOR, folder)
            if any(_sector_drops_a_name(data[base:base + SECTOR])
                   for base in range(0, len(data) - SECTOR + 1, SECTOR)):
                return True
        return False
    except (FileSystemError, ValueError, OSError):
        return False


def _sector_drops_a_name(buf: bytes) -> bool:
    """Whether TSK's loader stops this Joliet folder sector at a name it cannot take."""
    spot = 0
    while spot < SECTOR and (record := buf[spot]) >= _RECORD:
        if spot + record > SECTOR:
            return False
        if not (buf[spot + 32] == 1 and buf[spot + 33] in (0, 1)) and \
                not _tsk_name_ok(buf, spot, record, buf[spot + 32], True):
            return True
        spot += record
    return False


@dataclass(slots=True)
class _Node:
    """One file or folder of the Rock Ridge tree."""

    name: str
    kind: str  #: TSK type letter
    record: int  #: byte offset of its (first) directory record in the volume
    extents: list[tuple[int, int]]  #: (first block of data, bytes)
    rr: rrip.RockRidge
    recorded: datetime | None
    folder_extent: int | None = None  #: a folder's records' first block
    folder_size: int = 0
    relocated: bool = False  #: an RE folder no CL claimed, shown where it is
    ext_attr: int = 0  #: blocks of extended attribute record before the data
    address: int = -1
    parent: _Node | None = None
    children: list[_Node] | None = None  #: a folder's, in directory order
    #: what is wrong with this entry's records (data past the image's end, a folder reached
    #: twice or not readable): said where the entry is listed, the rest of the tree browsed
    damage: str | None = None

    @property
    def size(self) -> int:
        if self.rr.zisofs is not None:
            return self.rr.zisofs[3]
        return sum(size for _block, size in self.extents)


@dataclass
class _TskNumbers:
    """The inode numbers The Sleuth Kit gives the records of an ISO (see the module's doc)."""

    by_record: dict[int, int] = field(default_factory=dict)  #: record offset -> inode
    by_extent: dict[tuple[int, int], int] = field(default_factory=dict)  #: (block, size)
    folders: dict[int, int] = field(default_factory=dict)  #: a folder's first block -> inode
    count: int = 0  #: the next number: TSK's $OrphanFiles


class Iso9660FileSystem:
    """An ISO 9660 volume with Rock Ridge in ``stream``, read-only; or, without Rock Ridge,
    through its Joliet tree (where TSK would drop names: :func:`joliet_loses_names`).

    ``session``: one session of a multi-session image (iso_sessions.py) other than the one
    TSK reads: its descriptors at its start + 16, its tree with Rock Ridge, else Joliet, else
    the plain primary tree (names as stored, TSK's way), its inode numbers those TSK would
    give it plus :attr:`IsoSession.address_base` (``number << 32``), so that they never name
    a file of TSK's session or of another. ``stream`` is the whole image either way: a
    session's block addresses count from the image's start."""

    type = "iso9660"
    block_size = SECTOR

    def __init__(self, stream: ImageStream, partition: Partition,
                 session: IsoSession | None = None) -> None:
        self.partition = partition
        self.session = session
        self._stream = stream
        self._budget = MAX_DIRECTORY_BYTES
        first = _FIRST_DESCRIPTOR if session is None else session.descriptors
        found = read_descriptors(stream, first)
        if found is None:
            raise FileSystemError(f"iso9660: no primary volume descriptor at sector {first}")
        own = session is not None and not session.head
        if own:
            assert session is not None
            # its volume space counts from its start: TSK's bound on extents, made absolute
            found = replace(found, blocks=session.start + found.blocks)
        #: added to every inode number (0: TSK's session; see IsoSession.address_base)
        self._base = session.address_base if session is not None else 0
        self._descriptors = found
        root_record = found.primary[156:190]
        root_extent = _le32(root_record, 2)
        dot = self._folder_records(root_extent, min(_le32(root_record, 10), SECTOR), "/")
        if not dot:
            raise FileSystemError(f"iso9660: the root folder at block {root_extent} is empty")
        susp = rrip.root_susp(_su_area(dot[0][1]), self._read_at, stream.size)
        self._rr = susp is not None and susp.rock_ridge
        #: no Rock Ridge: the Joliet tree is the one read (its names, see joliet_loses_names),
        #: or in a session TSK does not read, without Joliet either, the plain primary tree
        self._joliet = not self._rr and bool(found.joliet)
        if not self._rr and not found.joliet and not own:
            raise FileSystemError("iso9660: the root folder announces no Rock Ridge (SUSP "
                                  "SP) and there is no Joliet tree")
        if self._joliet:
            root_record = found.joliet[0][156:190]
            root_extent = _le32(root_record, 2)
            dot = self._folder_records(root_extent, min(_le32(root_record, 10), SECTOR),
                                       "Joliet /")
            if not dot:
                raise FileSystemError(f"iso9660: the Joliet root folder at block {root_extent} "
                                      "is empty")
        self._skip = susp.skip if susp is not None else 0
        self._entries = 0
        self._seen: set[int] = set()
        #: folders marked RE (moved to rr_moved): (record offset, record, parent's path)
        self._moved: list[tuple[int, bytes, str]] = []
        self._tsk = _TskNumbers()
        self._by_address: dict[int, tuple[_Node, str]] | None = None
        self._file_twins: dict[int, int] = {}  # primary record offset -> Joliet record's inode
        self._number_as_tsk()
        self.root = self._root(root_record, dot[0])
        self._load(self.root, "")
        self._unclaimed()
        self._addresses()

    # --- reading ------------------------------------------------------------------------------

    def _read_at(self, offset: int, size: int) -> bytes:
        return self._stream.pread(offset, size) if offset < self._stream.size else b""

    def _folder_records(self, extent: int, size: int, where: str) -> list[tuple[int, bytes]]:
        """(byte offset, record) of every record of the folder at ``extent`` (ECMA-119 6.8.1:
        records never cross a sector; a zero length ends the sector's records)."""
        if size > MAX_DIRECTORY or size > self._budget:
            raise FileSystemError(f"iso9660: folder {shown(where)} at block {extent} claims "
                                  f"{size} bytes of records, beyond what is read "
                                  f"({min(MAX_DIRECTORY, self._budget)})")
        start = extent * SECTOR
        if start + size > self._stream.size:
            raise FileSystemError(f"iso9660: folder {shown(where)} at block {extent} ({size} "
                                  "bytes) lies past the image's end")
        self._budget -= size
        data = self._stream.pread(start, -(-size // SECTOR) * SECTOR)
        records = []
        for base in range(0, min(len(data), size), SECTOR):
            at = base
            end = base + SECTOR
            while at < end:
                length = data[at]
                if length == 0:
                    break
                if length < _RECORD + 1 or at + length > end or _RECORD + data[at + 32] > length:
                    break  # damaged: the rest of the sector is not records
                records.append((start + at, data[at:at + length]))
                at += length
        return records

    def _rock_ridge(self, record: bytes, where: str, *, skip: bool = True) -> rrip.RockRidge:
        """The Rock Ridge fields of ``record``: its System Use area past the bytes SP says to
        skip (SUSP 5.3: every area but the root's "." one, where SP itself lies)."""
        if not self._rr:
            return rrip.RockRidge()
        area = _su_area(record)[self._skip if skip else 0:]
        listed = rrip.entries(area, self._read_at, where, self._stream.size)
        return rrip.rock_ridge(listed, where)

    def _root(self, root_record: bytes, dot: tuple[int, bytes]) -> _Node:
        rr = self._rock_ridge(dot[1], "root folder", skip=False)
        node = _Node(name="", kind="d", record=dot[0], extents=[], rr=rr,
                     recorded=rrip.short_date(root_record[18:25]),
                     folder_extent=_le32(root_record, 2), folder_size=_le32(dot[1], 10))
        node.address = self._base
        return node

    def _load(self, folder: _Node, path: str) -> None:
        """Every folder below ``folder``, depth first, each read once (a second visit of the
        same records is a loop: refused)."""
        pending = [(folder, path)]
        while pending:
            node, where = pending.pop()
            assert node.folder_extent is not None
            if node.folder_extent in self._seen:
                node.children = []
                node.damage = (f"folder at block {node.folder_extent} is reached twice (a "
                               "loop): not walked again")
                continue
            self._seen.add(node.folder_extent)
            try:
                node.children = self._children(node, where)
            except FileSystemError as exc:
                if self._entries > MAX_ENTRIES or node is self.root:
                    raise  # the bounds of the whole volume, and its root, end the reading
                node.children, node.damage = [], f"folder not readable: {exc}"
                continue
            pending.extend((child, f"{where}/{child.name}") for child in
                           reversed(node.children) if child.folder_extent is not None)

    def _unclaimed(self) -> None:
        """Folders marked RE that no CL record claimed: shown where they are rather than
        hidden (a crafted image could hide files so), unless empty once the folders CL
        records claimed are left out (``rr_moved`` itself, which libisofs marks RE)."""
        while self._moved:
            offset, record, where = self._moved.pop(0)
            if _le32(record, 2) in self._seen:
                continue
            parent, _where = self._find(where or "/")
            if parent is None or parent.children is None:
                continue
            node = self._node([(offset, record)], where, relocated_ok=True)
            assert node is not None
            node.parent = parent
            self._load(node, f"{where}/{node.name}")
            if node.children:
                parent.children.append(node)

    def _children(self, folder: _Node, where: str) -> list[_Node]:
        assert folder.folder_extent is not None
        records = self._folder_records(folder.folder_extent, folder.folder_size, where or "/")
        children: list[_Node] = []
        pieces: list[tuple[int, bytes]] = []
        for offset, record in records:
            if record[32] == 1 and record[33] in (0, 1):
                continue  # "." and ".."
            pieces.append((offset, record))
            if record[25] & _MULTI:
                continue  # the file goes on in the next record
            node = self._node(pieces, where)
            pieces = []
            if node is None:
                continue
            node.parent = folder
            children.append(node)
            self._entries += 1
            if self._entries > MAX_ENTRIES:
                raise FileSystemError(f"iso9660: more than {MAX_ENTRIES} files and folders")
        if pieces:
            raise FileSystemError(f"iso9660: folder {shown(where or '/')}: a file of several "
                                  "extents whose last record never comes")
        return children

    def _node(self, pieces: list[tuple[int, bytes]], where: str, *,
              relocated_ok: bool = False) -> _Node | None:
        offset, record = pieces[0]
        raw_name = record[33:33 + record[32]]
        label = f"iso9660: folder {shown(where or '/')}, record at byte {offset}"
        rr = self._rock_ridge(record, label)
        folder = bool(record[25] & _DIR)
        if rr.relocated and folder and not relocated_ok:
            self._moved.append((offset, record, where))
            return None  # shown where its CL record stands (see _unclaimed)
        if self._joliet:
            name = _joliet_name(record)
        else:
            name_bytes = rr.name if rr.name is not None else _plain_name(raw_name)
            # kept as stored, "/" or "." included (names are data): safenames spells them
            name = name_bytes.decode("utf-8", "surrogateescape")
        extents = []
        damage = None
        for piece_offset, piece in pieces:
            block = _le32(piece, 2) + piece[1]
            size = _le32(piece, 10)
            if size and (block * SECTOR + size > self._stream.size):
                damage = (f"its record at byte {piece_offset} puts {size} bytes at block "
                          f"{block}, past the image's end: its content is not read")
            extents.append((block, size))
        node = _Node(name=name, kind=rrip.kind_of(rr.mode, folder), record=offset,
                     extents=extents, rr=rr, recorded=rrip.short_date(record[18:25]),
                     relocated=relocated_ok, ext_attr=record[1], damage=damage)
        if rr.child is not None:
            self._relocated_folder(node, rr.child, label)
        elif folder:
            node.folder_extent, node.folder_size = _le32(record, 2), _le32(record, 10)
            node.extents = []
        return node

    def _relocated_folder(self, node: _Node, block: int, label: str) -> None:
        """A CL record: the folder lives at ``block`` (in ``rr_moved``); its own ``.`` record
        there gives its size and its Rock Ridge fields."""
        dot = self._read_at(block * SECTOR, SECTOR)
        if len(dot) < 34 or dot[0] < 34 or dot[0] > len(dot) or dot[32] != 1:
            raise FileSystemError(f"{label}: its relocated folder (CL) at block {block} has no "
                                  "'.' record")
        rr = self._rock_ridge(dot[:dot[0]], f"{label}, relocated folder at block {block}")
        rr.name, rr.child = node.rr.name, block
        node.rr = rr
        node.kind = rrip.kind_of(rr.mode, True)
        node.folder_extent, node.folder_size = block, _le32(dot, 10)
        node.recorded = rrip.short_date(dot[18:25]) or node.recorded
        node.extents = []

    # --- TSK's numbers ------------------------------------------------------------------------

    def _number_as_tsk(self) -> None:
        """Number the records as TSK's ``iso9660_load_inodes_pt`` does (see the module doc)."""
        first = True
        for descriptor in self._descriptors.joliet:
            self._number_tree(descriptor, utf16=True, first=first)
            first = False
        for descriptor in self._descriptors.primaries:
            self._number_tree(descriptor, utf16=False, first=first)
            first = False

    def _path_table(self, descriptor: bytes) -> Iterator[int]:
        """The folders' first blocks, as the type M (big-endian) path table lists them."""
        size = _le32(descriptor, 132)
        location = _be32(descriptor, 148)
        if size > MAX_DIRECTORY or location * SECTOR + size > self._stream.size:
            raise FileSystemError(f"iso9660: path table of {size} bytes at block {location} "
                                  "lies past the image's end or beyond what is read")
        table = self._stream.pread(location * SECTOR, size)
        at = 0
        while at + 8 <= len(table):
            length = table[at]
            yield _be32(table, at + 2)
            at += 8 + length + (length % 2)

    def _number_tree(self, descriptor: bytes, *, utf16: bool, first: bool) -> None:
        for extent in self._path_table(descriptor):
            self._number_folder(extent, utf16=utf16, first=first)

    def _number_folder(self, extent: int, *, utf16: bool, first: bool) -> None:
        """One folder's records, sector by sector; the first record (``.``) says how many
        sectors there are (its size, rounded down, as TSK reads it)."""
        sectors = 1
        index = 0
        while index < sectors:
            if index > MAX_DIRECTORY // SECTOR:
                raise FileSystemError(f"iso9660: folder at block {extent} claims more than "
                                      f"{MAX_DIRECTORY} bytes")
            base = (extent + index) * SECTOR
            buf = self._read_at(base, SECTOR)
            if len(buf) < SECTOR:
                raise FileSystemError(f"iso9660: folder at block {extent + index} lies past "
                                      "the image's end")
            self._budget -= SECTOR
            if self._budget < 0:
                raise FileSystemError(f"iso9660: more than {MAX_DIRECTORY_BYTES} bytes of "
                                      "folder records")
            sectors = self._number_sector(buf, base, index == 0, utf16=utf16, first=first,
                                          sectors=sectors)
            index += 1

    def _number_sector(self, buf: bytes, base: int, opening: bool, *, utf16: bool, first: bool,
                       sectors: int) -> int:
        """The records of one sector as TSK's loader takes them (it stops the sector at the
        first record it cannot use); the folder's sector count, updated by its ``.``."""
        at = 0
        while at < SECTOR:
            length = buf[at]
            if length == 0:
                at += 2
                continue
            if length < _RECORD or at + length > SECTOR:
                break
            if (buf[at + 25] & _DIR and not first) or (opening and at == 0 and buf[at + 32] > 1):
                at += length  # a later descriptor's folders (TSK takes the first's), a bad "."
                continue
            if opening and at == 0:
                sectors = _be32(buf, at + 14) // SECTOR
                if self._tsk.count != 0:  # "." and ".." of any folder but the first root
                    at += length
                    at += buf[at] if at < SECTOR else 0
                    continue
            elif not _tsk_name_ok(buf, at, length, buf[at + 32], utf16):
                break
            if not self._tsk_number(buf, at, base + at, first):
                break
            if opening and at == 0 and self._tsk.count == 1 and at + length < SECTOR:
                at += length  # the root's "..", skipped
                length = buf[at]
            at += length
        return sectors

    def _tsk_number(self, buf: bytes, at: int, offset: int, first: bool) -> bool:
        """Number the record at ``at`` (byte ``offset`` of the volume) as TSK does; False where
        TSK stops the sector (an extent starting or ending past the volume)."""
        tsk = self._tsk
        blocks = self._descriptors.blocks
        block, size = _be32(buf, at + 6), _be32(buf, at + 14)
        if block > blocks - 1 or size + block * SECTOR > blocks * SECTOR:
            return False
        key = (block, size)
        if not first and size and key in tsk.by_extent:
            return True  # the same file as an earlier descriptor's: dropped, not numbered
        tsk.by_record[offset] = tsk.count
        tsk.by_extent.setdefault(key, tsk.count)
        if buf[at + 25] & _DIR:
            tsk.folders.setdefault(block, tsk.count)
        tsk.count += 1
        return True

    # --- addresses ----------------------------------------------------------------------------

    def _addresses(self) -> None:
        """TSK's number for each node; folders of a Joliet ISO by their Joliet twin; the rest
        numbered past TSK's ``$OrphanFiles``; each plus the session's base (0 where TSK reads
        the session)."""
        own = self._tsk.count + 1
        twins = self._joliet_twins() if self._descriptors.joliet and not self._joliet else {}
        used: set[int] = set()
        pending = [self.root]
        while pending:
            node = pending.pop()
            for child in node.children or ():
                address = self._tsk_address(child, twins)
                if address is None or (address in used and child.kind != "r"):
                    address = own
                    own += 1
                child.address = self._base + address
                used.add(address)
                if child.children is not None:
                    pending.append(child)

    def _tsk_address(self, node: _Node, twins: dict[int, int]) -> int | None:
        tsk = self._tsk
        if node.folder_extent is not None:
            if node.folder_extent in twins:
                return twins[node.folder_extent]
            if node.rr.child is not None or node.relocated:
                return tsk.folders.get(node.folder_extent)
            return tsk.by_record.get(node.record)
        found = self._file_twins.get(node.record, tsk.by_record.get(node.record))
        if found is None and node.extents and node.extents[0][1]:
            block, size = node.extents[0]
            found = tsk.by_extent.get((block, size))
        return found

    def _joliet_twins(self) -> dict[int, int]:
        """Primary folder block -> TSK's number of the Joliet folder holding the same files
        (the trees share file extents, not folder records): matched from the root down, by
        name where the Joliet name is the Rock Ridge one or a cut form of it, else by the
        files both hold."""
        twins: dict[int, int] = {}
        hidden: list[tuple[_Node, int, bytes, str]] = []
        first = self._descriptors.joliet[0][156:190]
        pending = [(self.root, _le32(first, 2), _le32(first, 10))]
        while pending:
            ours, extent, size = pending.pop()
            theirs = [(offset, record) for offset, record in
                      self._folder_records(extent, size, "Joliet folder")
                      if not (record[32] == 1 and record[33] in (0, 1))]
            folders = [(offset, record, _joliet_name(record)) for offset, record in theirs
                       if record[25] & _DIR]
            files: dict[tuple[int, int], list[tuple[int, bytes, str]]] = {}
            for offset, record in theirs:
                if not record[25] & _DIR:
                    files.setdefault((_le32(record, 2), _le32(record, 10)), []).append(
                        (offset, record, _joliet_name(record)))
            for child in ours.children or ():
                if child.folder_extent is None:
                    self._file_twin(child, files)
                    continue
                if child.children is None:
                    continue
                match = _twin(child, folders)
                if match is None:
                    continue
                offset, record, _name = match
                folders.remove(match)
                address = self._tsk.by_record.get(offset)
                if address is not None:
                    twins[child.folder_extent] = address
                pending.append((child, _le32(record, 2), _le32(record, 10)))
            hidden.extend((ours, offset, record, name) for same in files.values()
                          for offset, record, name in same)
            hidden.extend((ours, offset, record, name) for offset, record, name in folders)
        self._joliet_only(hidden)
        return twins

    def _joliet_only(self, hidden: list[tuple[_Node, int, bytes, str]]) -> None:
        """Files of the Joliet tree that the Rock Ridge tree does not hold (``xorriso -hide
        iso_rr`` makes them; a writer can hide evidence so): added to the folder their Joliet
        folder stands for, by their Joliet name, as TSK lists them. An empty file matches no
        extent and is not told from a file the Rock Ridge tree names differently: left out."""
        visible: set[tuple[int, int]] = set()
        pending = [self.root]
        while pending:
            folder = pending.pop()
            for child in folder.children or ():
                visible.update(child.extents)
                if child.children is not None:
                    pending.append(child)
        seen: set[int] = set()
        for folder, offset, record, name in hidden:
            node = self._joliet_node(folder, offset, record, name, visible=visible, seen=seen,
                                     depth=0)
            if node is not None and folder.children is not None:
                folder.children.append(node)

    def _joliet_node(self, parent: _Node, offset: int, record: bytes, name: str, *,
                     visible: set[tuple[int, int]], seen: set[int], depth: int) -> _Node | None:
        """A Joliet-only file, or a Joliet folder no Rock Ridge folder matched, kept only
        when it holds a file whose bytes the Rock Ridge tree does not show (an unmatched
        folder may be a twin whose name did not match: its files are shown already)."""
        recorded = rrip.short_date(record[18:25])
        if not record[25] & _DIR:
            key = (_le32(record, 2) + record[1], _le32(record, 10))
            if not key[1] or key in visible:
                return None
            visible.add(key)
            return self._counted(_Node(name=name, kind="r", record=offset, extents=[key],
                                       rr=rrip.RockRidge(), recorded=recorded, parent=parent))
        extent, size = _le32(record, 2), _le32(record, 10)
        if extent in seen or extent in self._seen:
            return None  # a loop, or a folder shown already
        if depth > MAX_DEPTH:
            raise FileSystemError(f"iso9660: Joliet folder {shown(name)} at block {extent} "
                                  f"lies deeper than {MAX_DEPTH} folders")
        seen.add(extent)
        node = _Node(name=name, kind="d", record=offset, extents=[], rr=rrip.RockRidge(),
                     recorded=recorded, folder_extent=extent, folder_size=size, parent=parent,
                     children=[])
        for child_offset, child in self._folder_records(extent, size, f"Joliet folder {name}"):
            if child[32] == 1 and child[33] in (0, 1):
                continue
            found = self._joliet_node(node, child_offset, child, _joliet_name(child),
                                      visible=visible, seen=seen, depth=depth + 1)
            if found is not None and node.children is not None:
                node.children.append(found)
        return self._counted(node) if node.children else None

    def _counted(self, node: _Node) -> _Node:
        self._entries += 1
        if self._entries > MAX_ENTRIES:
            raise FileSystemError(f"iso9660: more than {MAX_ENTRIES} files and folders")
        return node

    def _file_twin(self, child: _Node,
                   files: dict[tuple[int, int], list[tuple[int, bytes, str]]]) -> None:
        """The Joliet record of the same file (same extent and size, by name first): its
        number is the one ``fls`` lists the file by. ``files``: the Joliet folder's files not
        matched yet, by (extent, size)."""
        if not child.extents or child.kind != "r":
            return  # Joliet has only files and folders
        key = (child.extents[0][0] - _ext_attr(child), child.extents[0][1])
        same = files.get(key, [])
        # empty files share whatever extent the writer gave them: only the name tells
        fallback = same[0] if same and key[1] else None
        match = next((f for f in same if f[2] == child.name), fallback)
        if match is None:
            return
        same.remove(match)
        address = self._tsk.by_record.get(match[0])
        if address is not None:
            self._file_twins[child.record] = address

    # --- entries ------------------------------------------------------------------------------

    def _entry(self, node: _Node, path: str) -> Entry:
        rr = node.rr
        times = rr.times
        born = times.get("created") or node.recorded
        mode = rr.mode if rr.mode is not None else (0o555 if node.kind == "d" else 0o444)
        link = None
        if rr.link is not None and node.kind == "l":
            link = rr.link.decode("utf-8", "surrogateescape")
        return make_entry(path=path or "/", name=node.name, inode=node.address, attr_type=None,
                          attr_id=None, stream=None, name_type=node.kind, meta_type=node.kind,
                          deleted=False, realloc=False,
                          size=node.size if node.kind in ("r", "l") else
                          (node.folder_size if node.kind == "d" else 0),
                          # without TF's modification time the recording date stands for
                          # it, as the kernel and libisofs show it (writers record mtime so)
                          times=Times(times.get("modified") or node.recorded,
                                      times.get("accessed"), times.get("attributes"), born),
                          mode=mode & 0o7777, uid=rr.uid or 0, gid=rr.gid or 0, link=link)

    def _orphans(self) -> Entry:
        return make_entry(path=f"/{ORPHANS}", name=ORPHANS, inode=self._orphans_number,
                          attr_type=None, attr_id=None, stream=None, name_type="V",
                          meta_type="V", deleted=False, realloc=False, size=0,
                          times=Times(None, None, None, None), mode=0, uid=0, gid=0, link=None)

    def walk(self, path: str = "/", *, recursive: bool = False,
             selection: Selection = Selection.ALLOCATED, mediator: Mediator | None = None,
             file_names: bool = False) -> Iterator[Entry]:
        """Entries of a folder in directory order, then ``$OrphanFiles`` at the root (empty:
        the files TSK puts there are shown where they are). Nothing here is deleted."""
        node, where = self._find(path)
        if node is None:
            return  # $OrphanFiles
        if node.children is None:
            raise FileSystemError(f"{shown(where)}: not a directory")
        if selection is Selection.DELETED:
            return
        stack: list[tuple[_Node, str, int]] = [(node, "" if where == "/" else where, 0)]
        while stack:
            folder, prefix, at = stack.pop()
            children = folder.children or []
            if at < len(children):
                stack.append((folder, prefix, at + 1))
                child = children[at]
                entry = self._entry(child, f"{prefix}/{child.name}")
                yield entry
                if child.damage is not None and mediator is not None:
                    mediator.notice(f"{shown(entry.path)}: {child.damage}", level=UNREAD)
                if recursive and child.children is not None:
                    stack.append((child, entry.path, 0))
            elif folder is self.root:
                yield self._orphans()

    def _find(self, path: str) -> tuple[_Node | None, str]:
        """The node at ``path`` and its path as stored: each component as stored, else
        ignoring case, else as safenames spells names (``%2F``, ``\\xNN``, ``^``); a spelling
        fitting two names is refused."""
        node = self.root
        walked = ""
        for part in split_path(path):
            if node is self.root and part == ORPHANS:
                return None, f"/{ORPHANS}"
            children = node.children
            if children is None:
                raise FileSystemError(f"{shown(walked)}/{shown(part)}: no such file or folder")
            match = ([c for c in children if c.name == part]
                     or [c for c in children if c.name.casefold() == part.casefold()]
                     or [c for c in children if part in spellings(c.name)])
            if len(match) != 1:
                problem = "names several files" if match else "no such file or folder"
                raise FileSystemError(f"{shown(walked)}/{shown(part)}: {problem}")
            node = match[0]
            walked = f"{walked}/{node.name}"
        return node, walked or "/"

    def lookup(self, path: str) -> Entry:
        node, where = self._find(path)
        if node is None:
            return self._orphans()
        return self._entry(node, where)

    def names(self, path: str) -> list[str]:
        node, where = self._find(path)
        found: list[str] = []
        while node is not None and node is not self.root:
            found.insert(0, node.name)
            node = node.parent
        return found or split_path(where)

    def by_address(self, address: str) -> Entry:
        text = address.strip()
        if not text.isdigit() or not text.isascii():
            raise FileSystemError(f"{address!r} is not an inode number")
        wanted = int(text)
        if wanted == self._orphans_number:
            return self._orphans()
        if wanted == self._base:
            return self._entry(self.root, "/")
        found = self._index().get(wanted)
        if found is None:
            raise FileSystemError(f"inode {wanted}: no such file in this ISO 9660 volume")
        return self._entry(*found)

    def _index(self) -> dict[int, tuple[_Node, str]]:
        """Address -> (node, path), made on first use: export and cat look files up by
        address once each, which a walk of the tree per lookup would make quadratic."""
        if self._by_address is None:
            index: dict[int, tuple[_Node, str]] = {}
            aliases: list[tuple[int, tuple[_Node, str]]] = []
            stack: list[tuple[_Node, str]] = [(self.root, "")]
            while stack:
                folder, prefix = stack.pop()
                for child in folder.children or ():
                    found = (child, f"{prefix}/{child.name}")
                    index.setdefault(child.address, found)
                    # the number TSK gave the record itself, where the file is listed by
                    # another (its Joliet twin's): istat and icat take both
                    own = self._tsk.by_record.get(child.record)
                    if own is not None and self._base + own != child.address:
                        aliases.append((self._base + own, found))
                    if child.children is not None:
                        stack.append(found)
            for number, found in aliases:
                index.setdefault(number, found)
            self._by_address = index
        return self._by_address

    def target(self, path: str | None = None, address: str | None = None) -> Entry:
        if (path is None) == (address is None):
            raise FileSystemError("give either a path or an inode, not both")
        return self.lookup(path) if path is not None else self.by_address(address or "")

    # --- content ------------------------------------------------------------------------------

    @property
    def _orphans_number(self) -> int:
        """``$OrphanFiles``: TSK's last number, plus the session's base."""
        return self._base + self._tsk.count

    def _node_of(self, entry: Entry) -> _Node | None:
        if entry.inode == self._orphans_number:
            return None
        if entry.inode == self._base:
            return self.root
        found = self._index().get(entry.inode)
        return None if found is None else found[0]

    def iter_content(self, entry: Entry, block: int = 1 << 20) -> Iterator[bytes]:
        if entry.is_dir:
            raise FileSystemError(f"{shown(entry.display_path) or entry.address}: is a folder")
        node = self._node_of(entry)
        if node is None or node.kind != "r":
            return
        if node.rr.zisofs is not None:
            yield from self._zisofs(node, entry)
            return
        if node.rr.sparse:
            raise FileSystemError(f"{shown(entry.display_path)}: a Rock Ridge sparse file (SF), "
                                  "whose layout is not read here; refused rather than its "
                                  "stored bytes given as its content")
        block = max(1, block)
        for first, size in node.extents:
            at = first * SECTOR
            left = size
            while left > 0:
                take = min(block, left)
                data = self._read_at(at, take)
                if len(data) != take:
                    raise FileSystemError(f"{shown(entry.display_path)}: its data at block "
                                          f"{first} lies past the image's end")
                yield data
                at += take
                left -= take

    def read(self, entry: Entry, offset: int = 0, size: int = 4096) -> bytes:
        """Up to ``size`` bytes from ``offset``, read where they lie (a mount reads at any
        offset: a read from the start each time would make reading a file quadratic)."""
        if entry.is_dir or offset >= entry.size or size <= 0:
            return b""
        node = self._node_of(entry)
        if node is None or node.kind != "r":
            return b""
        if node.rr.zisofs is not None or node.rr.sparse:
            return self._read_through(entry, offset, size)
        out = bytearray()
        position = 0
        for first, length in node.extents:
            if position + length > offset and len(out) < size:
                inside = max(0, offset - position)
                take = min(length - inside, size - len(out))
                data = self._read_at(first * SECTOR + inside, take)
                if len(data) != take:
                    raise FileSystemError(f"{shown(entry.display_path)}: its data at block "
                                          f"{first} lies past the image's end")
                out += data
            position += length
        return bytes(out)

    def _read_through(self, entry: Entry, offset: int, size: int) -> bytes:
        out = bytearray()
        position = 0
        for piece in self.iter_content(entry):
            end = position + len(piece)
            if end > offset:
                out += piece[max(0, offset - position):offset + size - position]
            position = end
            if position >= offset + size:
                break
        return bytes(out[:size])

    def _zisofs(self, node: _Node, entry: Entry) -> Iterator[bytes]:
        """A zisofs file: a header, block pointers, each block zlib data; equal neighbouring
        pointers are a block of zeros. zisofs 1 (``pz``: 32-bit pointers, blocks of 2^15 to
        2^17) and zisofs2 with zlib (``PZ``, as xorriso's ``-zisofs version_2=on`` writes it:
        its own magic, 64-bit size and pointers, blocks of 2^15 to 2^20). The header must
        agree with the Rock Ridge entry (size, block size); pointers are read a batch at a
        time and each block's bytes alone, so memory stays bounded at any stored size."""
        assert node.rr.zisofs is not None
        algorithm, _, log2, size = node.rr.zisofs
        where = f"{shown(entry.display_path)}: zisofs"
        layout = _ZISOFS_LAYOUTS.get(algorithm)
        if layout is None or log2 not in layout.blocks or len(node.extents) != 1:
            raise FileSystemError(f"{where} of algorithm {algorithm!r}, block 2^{log2}: not "
                                  "read here (only zlib: zisofs 1 'pz', zisofs2 'PZ'); "
                                  "refused")
        first, stored = node.extents[0]
        base = first * SECTOR
        head = self._read_at(base, min(stored, 24))
        table, declared, head_log2 = layout.header(head)
        if table < 0:
            raise FileSystemError(f"{where}: no zisofs header at block {first}")
        if (declared, head_log2) != (size, log2):
            raise FileSystemError(f"{where}: its header declares {declared} bytes in blocks of "
                                  f"2^{head_log2}, its Rock Ridge entry {size} in 2^{log2}; "
                                  "refused")
        unit = 1 << log2
        blocks = -(-size // unit)
        width = layout.pointer
        if table + width * (blocks + 1) > stored:
            raise FileSystemError(f"{where}: its block pointers run past its {stored} bytes")
        left = size
        pointers = self._zisofs_pointers(base + table, width, blocks + 1)
        start = next(pointers)
        for n, end in enumerate(pointers):
            want = min(unit, left)
            if start == end:
                yield bytes(want)
            else:
                if not table <= start < end <= stored or end - start > unit + unit // 8 + 64:
                    raise FileSystemError(f"{where}: block {n} at bytes {start}-{end} lies "
                                          f"outside its {stored} bytes or exceeds a block")
                try:
                    data = zlib.decompressobj().decompress(
                        self._read_at(base + start, end - start), want)
                except zlib.error as exc:
                    raise FileSystemError(f"{where}: block {n} does not decompress ({exc})"
                                          ) from None
                if len(data) != want:
                    raise FileSystemError(f"{where}: block {n} gives {len(data)} bytes, not "
                                          f"{want}")
                yield data
            left -= want
            start = end

    def _zisofs_pointers(self, at: int, width: int, count: int) -> Iterator[int]:
        """``count`` little-endian pointers of ``width`` bytes from byte ``at``, read 8,192 at
        a time."""
        batch = 8192
        for first in range(0, count, batch):
            n = min(batch, count - first)
            raw = self._read_at(at + first * width, n * width)
            if len(raw) != n * width:
                raise FileSystemError("zisofs: its block pointers lie past the image's end")
            for k in range(0, len(raw), width):
                yield int.from_bytes(raw[k:k + width], "little")

    def stat(self, entry: Entry) -> FileStat:
        """PX fields and the file's extents (first block, blocks of 2048 bytes)."""
        node = self._node_of(entry)
        if node is None:
            return FileStat(entry=entry, filesystem=self.type, allocated=True,
                            mode=permissions(0), uid=0, gid=0, links=1, attributes=())
        runs = tuple((first, -(-size // SECTOR)) for first, size in node.extents if size)
        if node.folder_extent is not None:
            runs = ((node.folder_extent, -(-node.folder_size // SECTOR)),)
        attributes: tuple[Attribute, ...] = ()
        if runs:
            stored = sum(size for _f, size in node.extents) if node.extents else node.folder_size
            attributes = (Attribute(type=1, id=0, name=None, size=stored, resident=False,
                                    runs=runs),)
        device = None
        if node.rr.device is not None and node.kind in ("c", "b"):
            device = _major_minor(node.rr.device)
        return FileStat(entry=entry, filesystem=self.type, allocated=True,
                        mode=permissions(entry.mode), uid=entry.uid, gid=entry.gid,
                        links=node.rr.nlink if node.rr.nlink is not None else 1,
                        attributes=attributes, device=device)

    def content_note(self, entry: Entry) -> str | None:
        return None  # no deleted files are listed

    def file_name_times(self, entry: Entry) -> Times | None:
        return None


def _ext_attr(node: _Node) -> int:
    """Blocks of extended attribute record before the data (ECMA-119 9.5), read back from
    the record's second byte; the extents hold where the data starts."""
    return node.ext_attr


def _major_minor(device: tuple[int, int]) -> tuple[int, int]:
    """(major, minor) of a PN entry's two halves of a ``dev_t`` (RRIP 4.1.2), in the
    encoding Linux and glibc use (12-bit major and 20-bit minor split around the low byte),
    which is what libisofs and mkisofs on Linux write."""
    dev = device[0] << 32 | device[1]
    major = ((dev >> 8) & 0xFFF) | ((dev >> 32) & ~0xFFF)
    minor = (dev & 0xFF) | ((dev >> 12) & ~0xFF)
    return major, minor


def _plain_name(raw: bytes) -> bytes:
    """An ISO 9660 file identifier without its version (``;1``) and an empty extension's dot."""
    name = raw.split(b";", 1)[0]
    return name[:-1] if name.endswith(b".") else name


def _joliet_name(record: bytes) -> str:
    raw = record[33:33 + record[32]]
    return _plain_name(raw.decode("utf-16-be", "replace").encode("utf-8", "replace")).decode(
        "utf-8", "replace")


def _twin(child: _Node, folders: list[tuple[int, bytes, str]]) -> tuple[int, bytes, str] | None:
    exact = [f for f in folders if f[2] == child.name]
    if len(exact) == 1:
        return exact[0]
    cut = [f for f in folders if f[2] and child.name.startswith(f[2]) and len(f[2]) >= 31]
    if len(cut) == 1:
        return cut[0]
    return None


def _tsk_name_ok(buf: bytes, at: int, length: int, fi_len: int, utf16: bool) -> bool:
    """Whether TSK's loader takes the record at ``at`` (it stops the sector where it does
    not: a name that does not fit, converts to nothing, or is longer than 128 bytes)."""
    if length < _RECORD + fi_len:
        return False
    raw = buf[at + _RECORD:at + _RECORD + fi_len]
    if utf16:
        if at >= SECTOR - _RECORD or fi_len % 2 or fi_len > SECTOR - _RECORD - at:
            return False
        text = raw.decode("utf-16-be", "replace").encode("utf-8", "replace")
        if len(text) > 128:
            return False
        name = text
    else:
        name = raw[:128]
    name = name.split(b"\0", 1)[0].split(b";", 1)[0]
    if name.endswith(b"."):
        name = name[:-1]
    return bool(name)
