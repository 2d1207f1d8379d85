"""A test-only writer of UDF 2.50 volumes with a Metadata Partition, built from ECMA-167 3rd
edition and OSTA UDF 2.60, because no tool here writes one: ``mkudffs`` cannot make a metadata
partition (its manual says so), ``genisoimage -udf`` writes UDF 1.02, and the kernel here has
no udf module to fill a volume through a mount. 7-Zip reads what this writes: it is the
independent check of the writer (tests/test_fs_udf.py), our reader is checked against 7-Zip.

What it writes, 2048-byte sectors: the Volume Recognition Sequence (BEA01, NSR03, TEA01) at
sector 16, a Main and a Reserve Volume Descriptor Sequence (PVD, IUVD, PD, LVD, USD, TD), the
Logical Volume Integrity Descriptor, anchors at 256 and N-1, and one physical partition holding
the metadata file's and its mirror's Extended File Entries (types 250, 251) and their bytes
(the metadata partition: File Set Descriptor, every ICB, folders' File Identifiers, Allocation
Extent Descriptors), then the files' data. Options make what a reader must handle: data
embedded in the ICB, several extents with the later ones in an AED, an unrecorded extent
(zeros), hard links (two File Identifiers to one ICB), symbolic links (path components),
deleted File Identifiers (their ICB kept, or gone), names in 8- and 16-bit OSTA compressed
Unicode, times recorded in a time zone other than UTC.
"""

from __future__ import annotations

import struct
from binascii import crc_hqx
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

BS = 2048
PART_START = 288
META_BLOCKS = 96
_CS0 = b"\0" + b"OSTA Compressed Unicode".ljust(63, b"\0")
_REVISION = 0x0250


@dataclass
class File:
    name: str
    data: bytes = b""
    embedded: bool = False  #: the data inside the ICB
    pieces: int = 1  #: extents the data is cut into; past the second, they go to an AED
    hole: int = 0  #: an unrecorded extent of this many bytes after the first piece
    deleted: bool = False  #: its File Identifier is marked deleted (the ICB is kept)
    gone: bool = False  #: deleted, and its File Identifier points nowhere
    link_to: str | None = None  #: a hard link: the path (from the root) of the file it names
    symlink: str | None = None  #: a symbolic link to this target
    #: named streams (UDF 2.00+: the EFE's stream directory), each one's data in its ICB
    streams: dict[str, bytes] = field(default_factory=dict)
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    when: datetime = datetime(2024, 3, 5, 7, 9, 11, 123400, tzinfo=UTC)


@dataclass
class Folder:
    name: str
    children: list[File | Folder] = field(default_factory=list)
    mode: int = 0o755
    when: datetime = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)


def _tag(ident: int, body: bytes, location: int) -> bytes:
    crc = crc_hqx(body, 0)
    head = bytearray(struct.pack("<HHBBHHHI", ident, 3, 0, 0, 1, crc, len(body), location))
    head[4] = (sum(head[0:4]) + sum(head[5:16])) & 0xFF
    return bytes(head) + body


def _regid(ident: bytes, suffix: bytes = b"") -> bytes:
    assert len(ident) <= 23
    assert len(suffix) <= 8
    return b"\0" + ident.ljust(23, b"\0") + suffix.ljust(8, b"\0")


def _udf_suffix() -> bytes:
    return struct.pack("<H", _REVISION)


def _osta(text: str) -> bytes:
    if all(ord(c) < 256 for c in text):
        return b"\x08" + text.encode("latin-1")
    return b"\x10" + text.encode("utf-16-be")


def _dstring(text: str, size: int) -> bytes:
    raw = _osta(text) if text else b""
    return raw.ljust(size - 1, b"\0") + bytes([len(raw)])


def _time(moment: datetime, zone: int) -> bytes:
    local = moment.astimezone(UTC) + timedelta(minutes=zone)
    return struct.pack("<Hh8B", (1 << 12) | (zone & 0xFFF), local.year, local.month, local.day,
                       local.hour, local.minute, local.second, local.microsecond // 10000,
                       local.microsecond // 100 % 100, local.microsecond % 100)


def _perms(mode: int) -> int:
    return ((mode >> 6 & 7) << 10 | (mode >> 3 & 7) << 5 | (mode & 7)) | 0x18 << 10


def _long_ad(length: int, block: int, ref: int, kind: int = 0) -> bytes:
    return struct.pack("<IIH6x", kind << 30 | length, block, ref)


class _Volume:
    def __init__(self, zone: int, ref: int) -> None:
        self.zone = zone
        self.ref = ref  #: partition reference of the metadata: 1, or 0 without the partition
        self.meta: dict[int, bytes] = {}  #: metadata partition block -> bytes
        self.next_meta = 2  # 0: FSD, 1: TD
        self.data = bytearray()  #: physical blocks of file data, from DATA_START
        self.data_start = 2 + 2 * META_BLOCKS
        self.unique = 16
        self.icbs: dict[str, int] = {}
        self.links: dict[str, int] = {}

    def meta_block(self) -> int:
        block = self.next_meta
        self.next_meta += 1
        assert self.next_meta <= META_BLOCKS, "more metadata than the builder reserves"
        return block

    def put_data(self, data: bytes) -> int:
        block = self.data_start + len(self.data) // BS
        self.data += data + bytes(-len(data) % BS)
        return block

    def efe(self, block: int, *, file_type: int, form: int, size: int, ads: bytes, mode: int,
            uid: int, gid: int, links: int, when: datetime, recorded: int,
            stream_dir: int | None = None) -> None:
        zone = self.zone
        self.unique += 1
        body = bytearray(216 - 16)
        icb_tag = struct.pack("<IHHHBB6sH", 0, 4, 0, 1, 0, file_type, bytes(6), form)
        body[0:20] = icb_tag
        struct.pack_into("<IIIHBBIQQQ", body, 20, uid, gid, _perms(mode), links, 0, 0, 0,
                         size, size, recorded)
        for at, moment in ((64, when + timedelta(seconds=7)), (76, when),
                           (88, when - timedelta(days=1)), (100, when + timedelta(seconds=3))):
            body[at:at + 12] = _time(moment, zone)
        struct.pack_into("<I", body, 112, 1)
        if stream_dir is not None:
            body[136:152] = _long_ad(BS, stream_dir, self.ref)
        body[152:184] = _regid(b"*BitWitness tests")
        struct.pack_into("<QII", body, 184, self.unique, 0, len(ads))
        self.meta[block] = _tag(266, bytes(body) + ads, block)

    def fids(self, entries: list[tuple[int, str, int, int]], first_block: int) -> bytes:
        """File Identifiers (characteristics, name, ICB block, ICB length) laid out from the
        start of ``first_block``: each tag gives the block it starts in."""
        out = bytearray()
        for chars, name, icb, length in entries:
            raw = _osta(name) if name else b""
            body = bytearray(struct.pack("<HBB", 1, chars, len(raw)))
            body += _long_ad(length, icb, self.ref) + struct.pack("<H", 0) + raw
            body += bytes(-(16 + len(body)) % 4)
            out += _tag(257, bytes(body), first_block + len(out) // BS)
        return bytes(out)

    def folder(self, node: Folder, block: int, parent: int, path: str) -> None:
        slots: list[tuple[File | Folder, int | None]] = []
        for child in node.children:
            if isinstance(child, File) and child.link_to is not None:
                slots.append((child, None))
                continue
            slots.append((child, self.meta_block()))
            if isinstance(child, File):
                self.icbs[f"{path}/{child.name}"] = self.next_meta - 1
        entries = [(0x0A, "", parent, BS)] + [self._entry(c, b) for c, b in slots]
        for child, child_block in slots:
            if isinstance(child, Folder) and child_block is not None:
                self.folder(child, child_block, block, f"{path}/{child.name}")
        self._folder_data(node, block, entries)
        for child, child_block in slots:
            if isinstance(child, File) and child_block is not None:
                self.file(child, child_block, f"{path}/{child.name}")

    def _entry(self, child: File | Folder, block: int | None) -> tuple[int, str, int, int]:
        """(characteristics, name, ICB block, ICB length) of one File Identifier."""
        if isinstance(child, Folder):
            return 0x02, child.name, block or 0, BS
        chars = 0x04 if child.deleted or child.gone else 0
        if child.gone:
            return chars, child.name, 0, 0
        if block is None:
            target = child.link_to or ""
            self.links[target] = self.links.get(target, 1) + 1
            return chars, child.name, self.icbs[target], BS
        return chars, child.name, block, BS

    def _folder_data(self, node: Folder, block: int,
                     entries: list[tuple[int, str, int, int]]) -> None:
        """The folder's File Identifiers, in metadata blocks of their own (so identifiers
        crossing a block boundary, and their tag locations, are exercised), and its EFE."""
        size = len(self.fids(entries, 0))
        first = self.next_meta
        for _ in range(-(-size // BS)):
            self.meta_block()
        data = self.fids(entries, first)
        for n in range(-(-size // BS)):
            self.meta[first + n] = data[n * BS:(n + 1) * BS]
        self.efe(block, file_type=4, form=0, size=size,
                 ads=struct.pack("<II", size, first), mode=node.mode, uid=0, gid=0,
                 links=1 + sum(isinstance(c, Folder) for c in node.children), when=node.when,
                 recorded=-(-size // BS))

    def _streams(self, node: File, owner: int) -> int | None:
        """The stream directory (file type 13, its identifiers in its ICB) of a file with
        named streams, each stream an EFE with its data embedded; None without streams."""
        if not node.streams:
            return None
        directory = self.meta_block()
        entries = [(0x0A, "", owner, BS)]
        for name, data in node.streams.items():
            block = self.meta_block()
            self.efe(block, file_type=5, form=3, size=len(data), ads=data, mode=node.mode,
                     uid=node.uid, gid=node.gid, links=1, when=node.when, recorded=0)
            entries.append((0, name, block, BS))
        fids = self.fids(entries, directory)
        self.efe(directory, file_type=13, form=3, size=len(fids), ads=fids, mode=node.mode,
                 uid=node.uid, gid=node.gid, links=1, when=node.when, recorded=0)
        return directory

    def file(self, node: File, block: int, path: str) -> None:
        links = self.links.get(path, 1)
        common = {"mode": node.mode, "uid": node.uid, "gid": node.gid, "links": links,
                  "when": node.when, "stream_dir": self._streams(node, block)}
        if node.symlink is not None:
            parts = b""
            target = node.symlink
            if target.startswith("/"):
                parts += struct.pack("<BBH", 2, 0, 0)
            for part in target.strip("/").split("/"):
                kind = {"..": 3, ".": 4}.get(part, 5)
                raw = _osta(part) if kind == 5 else b""
                parts += struct.pack("<BBH", kind, len(raw), 0) + raw
            self.efe(block, file_type=12, form=3, size=len(parts), ads=parts, recorded=0,
                     **common)  # type: ignore[arg-type]
            return
        if node.embedded:
            self.efe(block, file_type=5, form=3, size=len(node.data), ads=node.data,
                     recorded=0, **common)  # type: ignore[arg-type]
            return
        data = node.data
        cut = -(-len(data) // node.pieces // BS) * BS or BS
        pieces = [data[n:n + cut] for n in range(0, len(data), cut)] or []
        ads = []
        for n, piece in enumerate(pieces):
            ads.append(_long_ad(len(piece), self.put_data(piece), 0))
            self.put_data(b"\xee" * BS)  # a block of other bytes between extents
            if n == 0 and node.hole:
                ads.append(_long_ad(node.hole, 0, 0, kind=2))
        size = len(data) + node.hole
        if len(ads) > 2:
            aed = self.meta_block()
            rest = b"".join(ads[1:])
            self.meta[aed] = _tag(258, struct.pack("<II", 0, len(rest)) + rest, aed)
            ads = [ads[0], _long_ad(BS, aed, self.ref, kind=3)]
        self.efe(block, file_type=5, form=1, size=size, ads=b"".join(ads),
                 recorded=-(-len(data) // BS), **common)  # type: ignore[arg-type]


def build_udf(path: Path, root: Folder, *, zone: int = 60, label: str = "BW UDF250",
              blocks: int = 4096, metadata: bool = True) -> Path:
    """Write a UDF 2.50 volume of ``blocks`` 2048-byte sectors holding ``root`` to ``path``;
    every time is recorded in ``zone`` (minutes east of UTC). Without ``metadata`` the same
    tree is written with one type 1 partition (the ICBs in it, from its block 0), as UDF 2.01
    writes it: what 7-Zip reads when it does not read a metadata partition."""
    ref = 1 if metadata else 0
    vol = _Volume(zone, ref)
    root_block = vol.meta_block()
    vol.folder(root, root_block, root_block, "")
    part_length = blocks - PART_START - 1
    assert vol.data_start + len(vol.data) // BS <= part_length, "files do not fit"
    fsd = bytearray(512 - 16)
    fsd[0:12] = _time(root.when, zone)
    struct.pack_into("<HHII II", fsd, 12, 3, 3, 1, 1, 0, 0)
    fsd[32:96] = _CS0
    fsd[96:224] = _dstring(label, 128)
    fsd[224:288] = _CS0
    fsd[288:320] = _dstring(label, 32)
    fsd[384:400] = _long_ad(BS, root_block, ref)
    fsd[400:432] = _regid(b"*OSTA UDF Compliant", _udf_suffix())
    vol.meta[0] = _tag(256, bytes(fsd), 0)
    vol.meta[1] = _tag(8, bytes(496), 1)
    meta = bytearray(META_BLOCKS * BS)
    for block, data in vol.meta.items():
        meta[block * BS:block * BS + len(data)] = data
    image = bytearray(blocks * BS)

    def physical(block: int, data: bytes) -> None:
        at = (PART_START + block) * BS
        image[at:at + len(data)] = data

    physical(2 if metadata else 0, bytes(meta))
    physical(vol.data_start, bytes(vol.data))
    if metadata:
        physical(2 + META_BLOCKS, bytes(meta))
    for block, kind, start in ((0, 250, 2), (1, 251, 2 + META_BLOCKS))[:2 * ref]:
        vol.meta.clear()
        vol.efe(block, file_type=kind, form=0, size=META_BLOCKS * BS,
                ads=struct.pack("<II", META_BLOCKS * BS, start), mode=0, uid=0, gid=0, links=1,
                when=root.when, recorded=META_BLOCKS)
        physical(block, vol.meta[block])
    for n, ident in enumerate((b"BEA01", b"NSR03", b"TEA01")):
        image[(16 + n) * BS:(16 + n) * BS + 7] = b"\0" + ident + b"\x01"
    for start in (32, 48):
        _descriptors(image, start, label=label, when=root.when, zone=zone,
                     part_length=part_length, metadata=metadata)
    lvid = bytearray(512 - 16)
    lvid[0:12] = _time(root.when, zone)
    struct.pack_into("<I", lvid, 12, 1)  # closed
    lvid[24:32] = struct.pack("<Q", vol.unique + 1)
    struct.pack_into("<II", lvid, 56, 2, 46)
    struct.pack_into("<IIII", lvid, 64, 0, 0, part_length, META_BLOCKS)
    lvid[80:112] = _regid(b"*BitWitness tests")
    struct.pack_into("<IIHHH", lvid, 112, 0, 0, _REVISION, _REVISION, _REVISION)
    image[64 * BS:64 * BS + 512] = _tag(9, bytes(lvid), 64)
    for sector in (256, blocks - 1):
        avdp = struct.pack("<IIII", 16 * BS, 32, 16 * BS, 48).ljust(496, b"\0")
        image[sector * BS:sector * BS + 512] = _tag(2, avdp, sector)
    path.write_bytes(bytes(image))
    return path


def _descriptors(image: bytearray, start: int, *, label: str, when: datetime, zone: int,
                 part_length: int, metadata: bool) -> None:
    def put(offset: int, ident: int, body: bytes) -> None:
        sector = start + offset
        image[sector * BS:sector * BS + 16 + len(body)] = _tag(ident, body, sector)

    pvd = bytearray(496)
    struct.pack_into("<II", pvd, 0, 1, 0)
    pvd[8:40] = _dstring(label, 32)
    struct.pack_into("<HHHHII", pvd, 40, 1, 1, 2, 3, 1, 1)
    pvd[56:184] = _dstring("6B14CB3A00000FD9 BitWitness", 128)
    pvd[184:248] = _CS0
    pvd[248:312] = _CS0
    pvd[360:372] = _time(when, zone)
    pvd[372:404] = _regid(b"*BitWitness tests")
    put(0, 1, bytes(pvd))
    iuvd = bytearray(496)
    struct.pack_into("<I", iuvd, 0, 2)
    iuvd[4:36] = _regid(b"*UDF LV Info", _udf_suffix())
    iuvd[36:100] = _CS0
    iuvd[100:228] = _dstring(label, 128)
    put(1, 4, bytes(iuvd))
    pd = bytearray(496)
    struct.pack_into("<IHH", pd, 0, 3, 1, 0)
    pd[8:40] = _regid(b"+NSR03")
    struct.pack_into("<III", pd, 168, 1, PART_START, part_length)
    pd[180:212] = _regid(b"*BitWitness tests")
    put(2, 5, bytes(pd))
    maps = struct.pack("<BBHH", 1, 6, 1, 0)
    metamap = bytearray(64)
    metamap[0:2] = b"\x02\x40"
    metamap[4:36] = _regid(b"*UDF Metadata Partition", _udf_suffix())
    struct.pack_into("<HHIIIIHB", metamap, 36, 1, 0, 0, 1, 0xFFFFFFFF, 32, 1, 0)
    if metadata:
        maps += bytes(metamap)
    lvd = bytearray(440 - 16 + len(maps))
    struct.pack_into("<I", lvd, 0, 4)
    lvd[4:68] = _CS0
    lvd[68:196] = _dstring(label, 128)
    struct.pack_into("<I", lvd, 196, BS)
    lvd[200:232] = _regid(b"*OSTA UDF Compliant", _udf_suffix())
    lvd[232:248] = _long_ad(BS, 0, 1 if metadata else 0)
    struct.pack_into("<II", lvd, 248, len(maps), 2 if metadata else 1)
    lvd[256:288] = _regid(b"*BitWitness tests")
    struct.pack_into("<II", lvd, 416, BS, 64)
    lvd[424:] = maps
    put(3, 6, bytes(lvd))
    usd = bytearray(496)
    struct.pack_into("<II", usd, 0, 5, 0)
    put(4, 7, bytes(usd))
    put(5, 8, bytes(496))
