"""Windows dynamic disks (Logical Disk Manager): the volumes of the database at the disk's end.

Why: a Windows disk converted to "dynamic" keeps its volumes in the LDM database, not in the
partition table. An MBR dynamic disk's table holds one row of type 0x42 over the whole disk;
The Sleuth Kit (and ``mmls``) sees that row and, at most, the file system at its start. Volumes
made after the conversion (D:, E:...) and the second part of a spanned volume lie in no row at
all: an examiner would miss them. This module reads the database and gives each volume's
extents on the disk; the volume tree (volumetree.py) makes each volume a child ``N/ldmK`` of the
0x42 row, read like any volume.

The layout, every integer big-endian, sectors of the disk's sector size:

* PRIVHEAD (sector 6; copies 1856 and 2047 sectors into the database): the disk's and its disk
  group's GUIDs (as text), where the data area starts and how long it is, where the database
  starts and how long it is (on MBR disks: the disk's last 2048 sectors).
* TOCBLOCK (1 or 2 sectors into the database; copies at 2045 and 2046): where the "config"
  area, which starts with the VMDB, lies in the database.
* VMDB: the VBLK size (128 bytes), where the first VBLK lies, how many volume, component,
  partition and disk records are committed.
* VBLKs: fixed-size blocks, each a 16-byte head (magic, sequence, record id, piece number, piece
  count) and a piece of a record; a record longer than one block is split over several with the
  same record id and joined in piece order. A record: status, flags, type (low nibble) and
  revision (high nibble), size, then fields of which most are variable-length (a count byte,
  then that many bytes).
* Records: a volume has components (one per plex: two for a mirror); a component has
  partitions, each ``size`` sectors at ``start`` sectors into the data area of one disk, at
  ``offset`` sectors into its volume.

Simple and spanned volumes (partitions end to end, all on this disk) are read; a mirror is read
from a plex that lies whole on this disk; striped and RAID-5 volumes, and volumes with a part on
another disk, need the other disks' images: they are named, with the disks, and not read. A
database that does not hold together raises :class:`~bitwitness.errors.FileSystemError`; every
count, length and offset is bounded by the database or the disk before it is used.

Read from the Linux kernel's LDM documentation and libldm's description of the records; written
here. ``ldmtool`` (libldm) is the test oracle.
"""

from __future__ import annotations

import bisect
import itertools
import struct
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from bitwitness.errors import FileSystemError
from bitwitness.report.browse.gpt import entries as read_gpt_entries
from bitwitness.stream import ImageStream

#: The partition type of an MBR row holding a dynamic disk.
MBR_TYPE = 0x42
#: GPT partition types of a dynamic disk: its database (PRIVHEAD in the last sector), its volumes
LDM_METADATA = "5808c8aa-7e8f-42e0-85d2-e1e90434cfb3"
LDM_DATA = "af9b60a0-1431-4f62-bc68-3311714a69ad"
_PRIVHEAD_SECTOR = 6
#: PRIVHEAD copies and TOCBLOCKs, in sectors from the database's start (an MBR disk's 2048).
_PRIVHEAD_COPIES = (1856, 2047)
_TOCBLOCKS = (2, 1, 2045, 2046)
#: A database larger than this (Windows writes 1 MiB) is not read: it is held in memory.
MAX_DATABASE = 16 << 20
#: More records than this in one database is not a real one (Windows: at most ~2,000 volumes).
MAX_RECORDS = 65536
_VBLK_HEAD = 16
#: The VMDB's own bytes: VBLKs start after them.
_VMDB_SIZE = 197
_RECORD_HEAD = 8
_TYPES = {1: "volume", 2: "component", 3: "partition", 4: "disk", 5: "disk group"}
#: component types
_STRIPED, _SPANNED, _RAID = 1, 2, 3
#: volume types of the volume record
_GEN, _RAID5 = 3, 4


@dataclass(frozen=True)
class Extent:
    """One partition of a volume on the disk: bytes from the disk's start."""

    name: str  #: the partition's name in the database ("Disk1-01")
    offset: int  #: first byte on the disk
    size: int  #: bytes


@dataclass(frozen=True)
class LdmVolume:
    """One volume of the disk group, as far as reading it needs."""

    number: int  #: 1, 2...: the volumes in the order of their object ids (of their making)
    name: str  #: "Volume1", as Windows names it (evidence: escaped where printed)
    layout: str  #: "simple", "spanned", "mirrored", "striped", "RAID-5"
    size: int  #: bytes
    guid: str
    hint: str | None  #: the drive letter Windows last gave it ("E:"), or None
    extents: tuple[Extent, ...]  #: the bytes of the volume end to end on this disk; () if unread
    unread: str | None = None  #: why the volume is not read from this disk (other disks...)
    disks: tuple[str, ...] = ()  #: the disks its partitions lie on, by name
    #: how it is read when that needs saying (a mirror: from which copy)
    note: str | None = None

    def describe(self, sector: int = 512) -> str:
        """``LDM spanned volume 'Volume2' (E:), 2 extents: ...`` for the tree's descriptions;
        sectors (of ``sector`` bytes) are the disk's, as ``fls -o`` takes them."""
        letter = f" ({self.hint})" if self.hint else ""
        said = f"LDM {self.layout} volume '{self.name}'{letter}"
        if self.unread is not None:
            return f"{said}: {self.unread} (not read by BitWitness)"
        where = ", ".join(f"{e.offset // sector}-{(e.offset + e.size) // sector - 1}"
                          for e in self.extents)
        count = len(self.extents)
        note = f"; {self.note}" if self.note else ""
        return f"{said}, {count} extent{'s' if count > 1 else ''} (disk sectors {where}){note}"


@dataclass(frozen=True)
class LdmDisk:
    """The database of one dynamic disk, read through its PRIVHEAD."""

    group: str  #: the disk group's name ("WIN-HOSTDg0")
    group_guid: str
    disk_guid: str
    disk_name: str  #: this disk's name in the database ("Disk1"); "?" if no record names it
    data_start: int  #: bytes from the disk's start
    data_size: int  #: bytes
    volumes: tuple[LdmVolume, ...]
    notes: tuple[str, ...] = field(default=())  #: what was read from a copy, and why

    def describe(self) -> str:
        count = len(self.volumes)
        return (f"Windows dynamic disk (LDM) {self.disk_name} of disk group '{self.group}': "
                f"{count} volume{'s' if count != 1 else ''}")


@dataclass(frozen=True)
class _Privhead:
    disk_guid: str
    group_guid: str
    group: str
    data_start: int  #: sectors
    data_size: int
    config_start: int
    config_size: int


def ldm_rows(stream: ImageStream) -> list[int]:
    """The first sectors of the rows of type 0x42 in the MBR of ``stream`` (signed 0x55AA):
    one read; [] on a disk that is not an MBR dynamic disk."""
    sector = stream.pread(0, 512)
    if len(sector) < 512 or sector[510:512] != b"\x55\xaa":
        return []
    return [struct.unpack_from("<I", sector, 446 + 16 * slot + 8)[0] for slot in range(4)
            if sector[446 + 16 * slot + 4] == MBR_TYPE]


def host_rows(stream: ImageStream) -> list[int]:
    """The first sectors of the partitions that hold a dynamic disk's volumes: the MBR's 0x42
    rows, or on a GPT disk the "LDM data" partitions."""
    rows = ldm_rows(stream)
    if rows:
        return rows
    found = read_gpt_entries(stream)
    return [first for kind, first, _ in found[1] if kind == LDM_DATA] if found else []


def read_disk(stream: ImageStream, sector: int = 512) -> LdmDisk | None:
    """The LDM database of the dynamic disk ``stream`` (MBR or GPT); None when no PRIVHEAD is
    found (not a dynamic disk). Raises :class:`FileSystemError` when a PRIVHEAD is found but
    what it points to does not hold together."""
    if sector not in (512, 4096):
        return None
    notes: list[str] = []
    if ldm_rows(stream):
        head = _mbr_privhead(stream, sector, notes)
        if head is None:
            raise FileSystemError("LDM: no PRIVHEAD in sector 6 nor in its copies at the "
                                  "disk's end")
    else:
        head, sector = _gpt_privhead(stream)
    if head is None:
        return None
    database = stream.pread(head.config_start * sector, head.config_size * sector)
    if len(database) != head.config_size * sector:
        raise FileSystemError(f"LDM database: sectors {head.config_start}-"
                              f"{head.config_start + head.config_size - 1} lie past the end "
                              "of the image (cut short?)")
    area, vblk_size, first, counts = _config_area(database, sector, notes)
    records = _records(area, vblk_size, first)
    return _assemble(records, counts, head, disk_size=stream.size, sector=sector,
                     notes=tuple(notes))


def _mbr_privhead(stream: ImageStream, sector: int, notes: list[str]) -> _Privhead | None:
    """Sector 6's PRIVHEAD, else one of its copies in the database at the disk's end."""
    head = _privhead(stream.pread(_PRIVHEAD_SECTOR * sector, 512), sector)
    if head is not None:
        return head
    config = stream.size // sector - 2048
    for at in _PRIVHEAD_COPIES if config > _PRIVHEAD_SECTOR else ():
        head = _privhead(stream.pread((config + at) * sector, 512), sector)
        if head is not None:
            notes.append(f"PRIVHEAD in sector 6 damaged; read from its copy at sector "
                         f"{config + at}")
            return head
    return None


def _gpt_privhead(stream: ImageStream) -> tuple[_Privhead | None, int]:
    """The PRIVHEAD in the last sector of a GPT disk's "LDM metadata" partition (where the
    database lies too), and the GPT's sector size."""
    found = read_gpt_entries(stream)
    if found is None:
        return None, 512
    sector, used = found
    metadata = [last for kind, _, last in used if kind == LDM_METADATA]
    for last in metadata:
        head = _privhead(stream.pread(last * sector, 512), sector)
        if head is not None:
            return head, sector
    if metadata:
        raise FileSystemError(f"LDM: no PRIVHEAD in the last sector ({metadata[0]}) of the "
                              "LDM metadata partition")
    return None, sector


def _privhead(block: bytes, sector: int) -> _Privhead | None:
    """A PRIVHEAD whose magic, version and GUIDs hold and whose database is at most
    :data:`MAX_DATABASE`; None otherwise. Its data area may run past the image's end (an image
    cut short): the volumes there are named, not read."""
    if len(block) < 512 or block[:8] != b"PRIVHEAD":
        return None
    (major,) = struct.unpack_from(">H", block, 12)
    data_start, data_size, config_start, config_size = struct.unpack_from(">QQQQ", block, 283)
    if major != 2 or not 0 < config_size <= MAX_DATABASE // sector:
        return None
    try:
        disk_guid = str(uuid.UUID(_cstring(block[48:112])))
        group_guid = str(uuid.UUID(_cstring(block[176:240])))
    except ValueError:
        return None
    return _Privhead(disk_guid=disk_guid, group_guid=group_guid, group=_cstring(block[240:272]),
                     data_start=data_start, data_size=data_size, config_start=config_start,
                     config_size=config_size)


def _config_area(database: bytes, sector: int,
                 notes: list[str]) -> tuple[bytes, int, int, tuple[int, int, int, int]]:
    """The config area (from the VMDB to its end), its VBLK size, where the first VBLK lies in
    it and the VMDB's committed counts (volumes, components, partitions, disks)."""
    for number, at in enumerate(_TOCBLOCKS):
        toc = database[at * sector:at * sector + 512]
        if len(toc) < 96 or toc[:8] != b"TOCBLOCK":
            continue
        for slot in (36, 70):
            if _cstring(toc[slot:slot + 8]) != "config":
                continue
            start, size = struct.unpack_from(">QQ", toc, slot + 10)
            if start == 0 or start >= len(database) // sector:
                continue
            size = min(size, len(database) // sector - start)
            area = database[start * sector:(start + size) * sector]
            if len(area) < 512 or area[:4] != b"VMDB":
                continue
            if number:
                notes.append(f"TOCBLOCK {_TOCBLOCKS[0]} damaged; read from its copy at {at}")
            return _vmdb(area)
    raise FileSystemError("LDM database: no TOCBLOCK leads to a VMDB")


def _vmdb(area: bytes) -> tuple[bytes, int, int, tuple[int, int, int, int]]:
    vblk_size, first = struct.unpack_from(">II", area, 8)
    counts = struct.unpack_from(">IIII", area, 133)
    if not (32 <= vblk_size <= 65536 and vblk_size % 16 == 0):
        raise FileSystemError(f"LDM database: VBLK size {vblk_size} out of range")
    if not _VMDB_SIZE <= first < len(area):
        raise FileSystemError(f"LDM database: first VBLK at {first}, outside its area")
    if any(count > MAX_RECORDS for count in counts):
        raise FileSystemError("LDM database: the VMDB counts more records than a database holds")
    return area, vblk_size, first, (counts[0], counts[1], counts[2], counts[3])


def _records(area: bytes, vblk_size: int, first: int) -> list[tuple[int, int, int, bytes]]:
    """Every record as (type, revision, flags, body), pieces joined; VBLKs are read from
    ``first`` until a block without the magic (as Windows leaves the area's end) or the area's
    end. A piece out of order, a piece twice or a record missing a piece is refused."""
    whole: list[bytes] = []
    pieces: dict[int, tuple[int, dict[int, bytes]]] = {}
    for at in range(first, len(area) - vblk_size + 1, vblk_size):
        block = area[at:at + vblk_size]
        if block[:4] != b"VBLK":
            break
        record_id, number, total = struct.unpack_from(">IHH", block, 8)
        if total <= 1:
            whole.append(block[_VBLK_HEAD:])
        else:
            _piece(pieces, record_id, number, total, block[_VBLK_HEAD:])
        if len(whole) + len(pieces) > MAX_RECORDS:
            raise FileSystemError("LDM database: more records than a database holds")
    for record_id, (total, got) in pieces.items():
        if len(got) != total:
            raise FileSystemError(f"LDM database: record {record_id} has {len(got)} of its "
                                  f"{total} pieces")
        whole.append(b"".join(got[n] for n in range(total)))
    out = []
    for data in whole:
        flags, kind = data[2], data[3]
        if kind & 0x0F:  # 0: a blank VBLK
            out.append((kind & 0x0F, kind >> 4, flags, data[_RECORD_HEAD:]))
    return out


def _piece(pieces: dict[int, tuple[int, dict[int, bytes]]], record_id: int, number: int,
           total: int, data: bytes) -> None:
    """Keep one piece of a split record; a piece beyond the record's count, a piece seen twice
    or a record whose pieces disagree on their count is refused."""
    if number >= total:
        raise FileSystemError(f"LDM database: VBLK piece {number} of a record of {total}")
    count, got = pieces.setdefault(record_id, (total, {}))
    if count != total or number in got:
        raise FileSystemError(f"LDM database: record {record_id} is split two ways")
    got[number] = data


class _Cursor:
    """Fields of a record, read in order; reading past its end is a damaged record."""

    def __init__(self, data: bytes, what: str) -> None:
        self.data, self.at, self.what = data, 0, what

    def take(self, length: int) -> bytes:
        if length < 0 or self.at + length > len(self.data):
            raise FileSystemError(f"LDM database: a {self.what} record ends too early")
        chunk = self.data[self.at:self.at + length]
        self.at += length
        return chunk

    def number(self, limit: int = 8) -> int:
        """A variable-length number: its byte count (at most ``limit``), then big-endian."""
        length = self.take(1)[0]
        if length > limit:
            raise FileSystemError(f"LDM database: a {self.what} record has a {length}-byte "
                                  "number")
        return int.from_bytes(self.take(length), "big")

    def text(self) -> str:
        return self.take(self.take(1)[0]).decode("utf-8", "replace")

    def byte(self) -> int:
        return self.take(1)[0]


@dataclass
class _Volume:
    object_id: int
    name: str
    kind: int
    children: int
    size: int
    guid: str
    hint: str | None
    plexes: list[_Component] = field(default_factory=list)


@dataclass
class _Component:
    object_id: int
    kind: int
    count: int
    parent: int
    parts: list[_Part] = field(default_factory=list)


@dataclass(frozen=True)
class _Part:
    object_id: int
    name: str
    start: int
    volume_offset: int
    size: int
    parent: int
    disk: int
    index: int


def _volume(revision: int, flags: int, body: bytes) -> _Volume:
    if revision != 5:
        raise FileSystemError(f"LDM database: volume record revision {revision} is not read")
    c = _Cursor(body, "volume")
    object_id, name = c.number(4), c.text()
    c.text()  # "gen" or "raid5": the type byte below says the same
    c.text()  # unknown, "8000000000000000" on recent Windows
    c.take(14)  # the volume's state
    kind = c.byte()
    c.take(6)  # unknown, the volume's number, zeros, flags
    children = c.number(4)
    c.take(16)  # log commit id, an id
    size = c.number()
    c.take(5)  # zeros, the partition type
    guid = str(uuid.UUID(bytes=c.take(16)))
    hint = None
    if flags & 0x08:
        c.text()
    if flags & 0x20:
        c.text()
    if flags & 0x80:
        c.number()
    if flags & 0x02:
        hint = c.text()
    return _Volume(object_id, name, kind, children, size, guid, hint)


def _component(revision: int, flags: int, body: bytes) -> _Component:
    if revision != 3:
        raise FileSystemError(f"LDM database: component record revision {revision} is not read")
    del flags
    c = _Cursor(body, "component")
    object_id = c.number(4)
    c.text()  # name
    c.text()  # state
    kind = c.byte()
    c.take(4)
    count = c.number(4)
    c.take(16)  # log commit id, zeros
    parent = c.number(4)
    return _Component(object_id, kind, count, parent)


def _partition(revision: int, flags: int, body: bytes) -> _Part:
    if revision != 3:
        raise FileSystemError(f"LDM database: partition record revision {revision} is not read")
    c = _Cursor(body, "partition")
    object_id, name = c.number(4), c.text()
    c.take(12)  # zeros, log commit id
    start, offset = struct.unpack(">QQ", c.take(16))
    size, parent, disk = c.number(), c.number(4), c.number(4)
    index = c.number(4) if flags & 0x08 else 0
    return _Part(object_id, name, start, offset, size, parent, disk, index)


def _disk(revision: int, body: bytes) -> tuple[int, str, str]:
    c = _Cursor(body, "disk")
    object_id, name = c.number(4), c.text()
    try:
        if revision == 3:
            guid = str(uuid.UUID(c.text()))
        elif revision == 4:
            guid = str(uuid.UUID(bytes=c.take(16)))
        else:
            raise FileSystemError(f"LDM database: disk record revision {revision} is not read")
    except ValueError:
        raise FileSystemError(f"LDM database: disk {object_id} has no valid GUID") from None
    return object_id, name, guid


@dataclass
class _Objects:
    """The records of a database by kind, object ids as keys."""

    volumes: dict[int, _Volume] = field(default_factory=dict)
    components: dict[int, _Component] = field(default_factory=dict)
    parts: list[_Part] = field(default_factory=list)
    disks: dict[int, tuple[str, str]] = field(default_factory=dict)  #: name, GUID

    def add(self, kind: int, revision: int, flags: int, body: bytes) -> None:
        if kind == 1:
            volume = _volume(revision, flags, body)
            _unique(volume.object_id, self.volumes, "volume")
            self.volumes[volume.object_id] = volume
        elif kind == 2:
            component = _component(revision, flags, body)
            _unique(component.object_id, self.components, "component")
            self.components[component.object_id] = component
        elif kind == 3:
            self.parts.append(_partition(revision, flags, body))
        elif kind == 4:
            object_id, name, guid = _disk(revision, body)
            _unique(object_id, self.disks, "disk")
            self.disks[object_id] = (name, guid)
        elif kind != 5:
            raise FileSystemError(f"LDM database: record type {kind} is not an LDM record")

    def link(self, counts: tuple[int, int, int, int]) -> None:
        """Partitions into their components, components into their volumes; every reference
        must name a record of the database and every count must hold."""
        found = (len(self.volumes), len(self.components), len(self.parts), len(self.disks))
        if found != counts:
            raise FileSystemError(
                f"LDM database: the VMDB counts {counts[0]} volumes, {counts[1]} components, "
                f"{counts[2]} partitions, {counts[3]} disks; the records are {found[0]}, "
                f"{found[1]}, {found[2]}, {found[3]}")
        for part in self.parts:
            if part.parent not in self.components or part.disk not in self.disks:
                raise FileSystemError(f"LDM database: partition '{part.name}' belongs to no "
                                      "component or disk of the database")
            self.components[part.parent].parts.append(part)
        for component in self.components.values():
            if component.parent not in self.volumes or len(component.parts) != component.count:
                raise FileSystemError(f"LDM database: component {component.object_id} has no "
                                      "volume, or not the partitions it counts")
            component.parts.sort(key=lambda p: (p.index, p.volume_offset))
            self.volumes[component.parent].plexes.append(component)


@dataclass
class _Place:
    """This disk, as resolving a volume needs it: bytes, and the extents given out so far."""

    this: int | None  #: this disk's object id in the database
    disks: dict[int, tuple[str, str]]
    data_start: int
    data_size: int  #: sectors
    disk_size: int
    sector: int
    #: (start, end, volume name) of the extents given out, sorted and not overlapping
    taken: list[tuple[int, int, str]] = field(default_factory=list)

    def clash(self, extents: tuple[Extent, ...]) -> str | None:
        """Why ``extents`` cannot be a volume's: two of them overlap, or one overlaps a volume
        given out before; None when they do not. Binary search: a database of thousands of
        volumes stays fast."""
        own = sorted((e.offset, e.offset + e.size) for e in extents)
        if any(later[0] < earlier[1] for earlier, later in itertools.pairwise(own)):
            return "two of its partitions overlap"
        for start, end in own:
            at = bisect.bisect_left(self.taken, (end,))  # the extents starting before ``end``
            if at and self.taken[at - 1][1] > start:
                return f"its partitions overlap those of volume '{self.taken[at - 1][2]}'"
        return None

    def take(self, extents: tuple[Extent, ...], name: str) -> None:
        for e in extents:
            bisect.insort(self.taken, (e.offset, e.offset + e.size, name))


def _assemble(records: list[tuple[int, int, int, bytes]], counts: tuple[int, int, int, int],
              head: _Privhead, *, disk_size: int, sector: int,
              notes: tuple[str, ...]) -> LdmDisk:
    """Volumes from their components and partitions, checked against the VMDB's counts."""
    objects = _Objects()
    for record in records:
        objects.add(*record)
    objects.link(counts)
    disks = objects.disks
    this = next((oid for oid, (_, guid) in disks.items() if guid == head.disk_guid), None)
    place = _Place(this=this, disks=disks, data_start=head.data_start * sector,
                   data_size=head.data_size, disk_size=disk_size, sector=sector)
    ordered = sorted(objects.volumes.values(), key=lambda v: v.object_id)  # creation order
    volumes = tuple(_resolve(number, volume, place)
                    for number, volume in enumerate(ordered, start=1))
    return LdmDisk(group=head.group, group_guid=head.group_guid, disk_guid=head.disk_guid,
                   disk_name=disks[this][0] if this is not None else "?",
                   data_start=head.data_start * sector, data_size=head.data_size * sector,
                   volumes=volumes, notes=notes)


def _unique(object_id: int, seen: Mapping[int, object], what: str) -> None:
    if object_id in seen:
        raise FileSystemError(f"LDM database: two {what} records with object id {object_id}")


def _layout(volume: _Volume) -> str:
    kinds = {c.kind for c in volume.plexes}
    if volume.kind == _RAID5:
        return "RAID-5"
    if kinds == {_STRIPED}:
        return "striped"
    if len(volume.plexes) > 1:
        return "mirrored"
    if volume.plexes and len(volume.plexes[0].parts) > 1:
        return "spanned"
    return "simple"


def _resolve(number: int, volume: _Volume, place: _Place) -> LdmVolume:
    """The volume's extents on this disk, or why it is not read from this disk."""
    layout = _layout(volume)
    disks, this, sector = place.disks, place.this, place.sector
    names = tuple(sorted({disks[p.disk][0] for c in volume.plexes for p in c.parts}))
    base = LdmVolume(number=number, name=volume.name, layout=layout, size=volume.size * sector,
                     guid=volume.guid, hint=volume.hint, extents=(), disks=names)
    if len(volume.plexes) != volume.children or not volume.plexes:
        return replace(base, unread=f"the database gives it {len(volume.plexes)} of its "
                                    f"{volume.children} components")
    if layout in ("striped", "RAID-5") or any(c.kind != _SPANNED for c in volume.plexes):
        return replace(base, unread=f"its data is striped over {', '.join(names)}: it needs "
                                    "every disk's image")
    why = "no plex lies whole on this disk"
    for plex in volume.plexes:
        if any(p.disk != this for p in plex.parts):
            elsewhere = sorted({disks[p.disk][0] for p in plex.parts if p.disk != this})
            why = f"it lies on {', '.join(elsewhere)}, not on this disk"
            continue
        problem = _plex_problem(plex, volume.size, place.data_size)
        if problem is not None:
            why = problem
            continue
        extents = tuple(Extent(p.name, place.data_start + p.start * sector, p.size * sector)
                        for p in plex.parts)
        if any(e.offset + e.size > place.disk_size for e in extents):
            why = "its partitions lie past the end of the image"
            continue
        clash = place.clash(extents)
        if clash is not None:
            why = clash
            continue
        place.take(extents, volume.name)
        others = sorted(set(names) - {disks[this][0]}) if this is not None else []
        note = (f"read from its copy on this disk, not compared with the copy on "
                f"{', '.join(others)}" if layout == "mirrored" and others else None)
        return replace(base, extents=extents, note=note)
    return replace(base, unread=why)


def _plex_problem(plex: _Component, size: int, data_size: int) -> str | None:
    """Why a plex's partitions do not make its volume, in the data area, end to end."""
    at = 0
    for part in plex.parts:
        if part.volume_offset != at or part.size == 0:
            return f"partition '{part.name}' is not where the partitions before it end"
        if part.start + part.size > data_size:
            return f"partition '{part.name}' lies outside the disk's data area"
        at += part.size
    if at != size:
        return f"its partitions hold {at} of its {size} sectors"
    return None


def _cstring(raw: bytes) -> str:
    return raw.split(b"\x00", 1)[0].decode("utf-8", "replace")
