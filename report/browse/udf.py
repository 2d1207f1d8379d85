"""UDF (optical discs, Windows installation ISOs, DVD-Video, Blu-ray, packet writing) behind the
browsing interface, read by our own code from ECMA-167 and OSTA UDF 2.60: The Sleuth Kit reads
no UDF, and on a bridge disc its ISO 9660 side often holds a single README.

What is read, in order: the Volume Recognition Sequence at byte 32768 (an NSR02 or NSR03
descriptor between BEA01 and TEA01), the Anchor Volume Descriptor Pointer at sector 256 (else
N-256, else N-1; sectors of 2048, 512, 4096 or 1024 bytes, as the anchor's tag location says),
the Main Volume Descriptor Sequence (the Reserve one when the Main fails), its Partition
Descriptors and Logical Volume Descriptor with the partition maps: type 1, sparable (CD-RW,
DVD-RW: packets moved to spares by the sparing table), virtual (CD-R, DVD-R, BD-R written
incrementally: blocks looked up in the Virtual Allocation Table at the last written sector) and
the UDF 2.50 Metadata Partition (its metadata file, the mirror when the file fails). Then the
File Set Descriptor, the root folder's ICB, and from there File Entries and Extended File
Entries, their allocation descriptors (short, long, extended, embedded data, Allocation Extent
Descriptor chains) and folders' File Identifier Descriptors, deleted ones included (listed as
deleted, as ``fls`` lists deleted names), and named streams (an EFE's stream directory), listed
as ``fls`` lists NTFS streams.

An entry's address is its ICB's logical block in the root folder's partition; an ICB in another
partition is ``(reference + 1) << 32 | block``.

Hostile input fails closed: every descriptor's tag checksum, CRC and location are checked; an
AED chain, an ICB indirection and a folder's bytes are bounded; extents must lie inside their
partition and the image; a folder cycle is not walked twice; every failure is a one-line
:class:`~bitwitness.errors.FileSystemError` naming the structure and its block.
"""

from __future__ import annotations

import struct
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass

from bitwitness.errors import FileSystemError
from bitwitness.progress import UNREAD, Mediator, NullMediator
from bitwitness.report.browse import udf_structures as s
from bitwitness.report.browse.entries import (
    NO_TIMES,
    Attribute,
    Entry,
    FileStat,
    Selection,
    Times,
    make_entry,
    permissions,
)
from bitwitness.report.browse.filesystem import MAX_DEPTH, split_path
from bitwitness.report.browse.safenames import shown
from bitwitness.report.browse.volumes import Partition
from bitwitness.stream import ImageStream

VRS_OFFSET = 32768
ANCHOR_SECTOR = 256
SECTOR_SIZES = (2048, 512, 4096, 1024)
#: descriptors read from one volume descriptor sequence, pointers followed from it
MAX_VDS_BLOCKS, MAX_VDS_HOPS = 512, 16
MAX_PARTITION_MAPS = 64
#: Allocation Extent Descriptors followed for one file, extents kept for one file
MAX_AEDS, MAX_EXTENTS = 4096, 1 << 18
#: entries followed to the latest of one ICB (indirect entries, strategy 4096 rewrites)
MAX_INDIRECT = 1024
#: a folder's bytes read at once; larger folders are refused (32 MiB is half a million names)
MAX_FOLDER = 32 << 20
#: a symbolic link's bytes
MAX_LINK = 64 << 10
#: a Virtual Allocation Table's bytes (a million blocks), and how far from the image's end its
#: ICB is looked for past trailing zeros
MAX_VAT, MAX_VAT_SEARCH = 4 << 20, 64 << 20
_VAT150 = b"*UDF Virtual Alloc Tbl"
_ICB_CACHE = 4096
_VRS_KNOWN = (b"BEA01", b"NSR02", b"NSR03", b"TEA01", b"CD001", b"CDW02", b"BOOT2")
_METADATA, _VIRTUAL, _SPARABLE = (b"*UDF Metadata Partition", b"*UDF Virtual Partition",
                                  b"*UDF Sparable Partition")


def _has_nsr(stream: ImageStream) -> bool:
    """Whether the Volume Recognition Sequence names an NSR (UDF) descriptor. Descriptors are
    2048 bytes apart, or a sector apart on media with larger sectors."""
    for stride in (2048, 4096):
        for n in range(64):
            at = VRS_OFFSET + n * stride
            head = stream.pread(at, 7)
            if len(head) < 7 or head[1:6] not in _VRS_KNOWN:
                break
            if head[1:6] in (b"NSR02", b"NSR03"):
                return True
            if head[1:6] == b"TEA01":
                break
    return False


def find_anchor(stream: ImageStream) -> tuple[int, int] | None:
    """(sector size, anchor's sector) of the first Anchor Volume Descriptor Pointer found: at
    sector 256, else at N-256 or N-1, each sector size tried; the tag must say where it is."""
    for size in SECTOR_SIZES:
        sectors = stream.size // size
        for sector in (ANCHOR_SECTOR, sectors - 256, sectors - 1):
            if sector < ANCHOR_SECTOR:
                continue
            block = stream.pread(sector * size, 512)
            try:
                s.check_tag(block, (s.AVDP,), sector, "anchor")
            except FileSystemError:
                continue
            return size, sector
    return None


def is_udf(stream: ImageStream) -> bool:
    """Whether ``stream`` holds a UDF volume: an NSR descriptor and an anchor (checked fully
    when opened)."""
    if stream.size < VRS_OFFSET + 2048:
        return False
    return _has_nsr(stream) and find_anchor(stream) is not None


@dataclass(frozen=True)
class _Map:
    """One partition map: a physical partition (``start``, ``length`` in sectors), or the
    metadata partition whose blocks are the bytes of the metadata file (``extents``)."""

    kind: str  #: "physical", "sparable", "virtual" or "metadata"
    start: int = 0
    length: int = 0
    packet: int = 0  #: sparable: blocks per packet
    spares: dict[int, int] | None = None  #: sparable: a packet's first block -> its sector
    #: virtual: the physical partition's block of each virtual block (the VAT's entries)
    table: tuple[int, ...] = ()
    physical_ref: int = 0  #: metadata: the partition reference of its physical partition
    offsets: tuple[int, ...] = ()  #: metadata: where each extent starts in the file (bytes)
    extents: tuple[s.Extent, ...] = ()


class UdfFileSystem:
    """One UDF volume in ``stream`` (a disc image or a partition), read-only."""

    type = "udf"

    def __init__(self, stream: ImageStream, partition: Partition) -> None:
        self.partition = partition
        self._stream = stream
        self._icbs: OrderedDict[tuple[int, int], s.Icb] = OrderedDict()
        if not _has_nsr(stream):
            raise FileSystemError("udf: no NSR02/NSR03 descriptor in the volume recognition "
                                  "sequence at byte 32768")
        anchor = find_anchor(stream)
        if anchor is None:
            raise FileSystemError("udf: no anchor volume descriptor pointer at sector 256, "
                                  "N-256 or N-1")
        self.block_size, where = anchor
        block = stream.pread(where * self.block_size, 512)
        main = (s.u32(block, 20), s.u32(block, 16))
        reserve = (s.u32(block, 28), s.u32(block, 24))
        try:
            self._volume(*main)
        except FileSystemError as exc:
            self._icbs.clear()  # read through the main sequence's partition maps
            try:
                self._volume(*reserve)
            except FileSystemError:
                raise exc from None
        self._root = self._file_set()

    # --- volume descriptors -------------------------------------------------------------------

    def _sector(self, sector: int, count: int = 1) -> bytes:
        data = self._stream.pread(sector * self.block_size, count * self.block_size)
        if len(data) != count * self.block_size:
            raise FileSystemError(f"udf: sector {sector} lies past the image's end "
                                  f"({self._stream.size} bytes; cut short?)")
        return data

    def _volume(self, start: int, length: int) -> None:
        """The Partition and Logical Volume Descriptors of a descriptor sequence (the ones of
        the highest sequence number win, as ECMA-167 3/8.4.3 says), then the partition maps."""
        partitions: dict[int, tuple[int, bytes]] = {}
        lvd: tuple[int, bytes] | None = None
        self.label = ""
        sector, left, hops, seen = start, length // self.block_size, 0, 0
        while left > 0 and seen < MAX_VDS_BLOCKS:
            block = self._sector(sector)
            ident = s.check_tag(block, (s.PVD, s.VDP, s.IUVD, s.PD, s.LVD, s.USD, s.TD),
                                sector, f"volume descriptor at sector {sector}")
            seen += 1
            if ident == s.TD:
                break
            if ident == s.VDP:
                hops += 1
                if hops > MAX_VDS_HOPS:
                    raise FileSystemError(f"udf: more than {MAX_VDS_HOPS} volume descriptor "
                                          "pointers; a loop?")
                sector, left = s.u32(block, 24), s.u32(block, 20) // self.block_size
                continue
            number = s.u32(block, 16)
            if ident == s.PD:
                key = s.u16(block, 22)
                if key not in partitions or partitions[key][0] <= number:
                    partitions[key] = (number, block)
            elif ident == s.LVD and (lvd is None or lvd[0] <= number):
                lvd = (number, block)
            elif ident == s.PVD:
                self.label = s.dstring(block[24:56], f"primary volume descriptor at {sector}")
            sector += 1
            left -= 1
        if lvd is None:
            raise FileSystemError(f"udf: no logical volume descriptor in the sequence at "
                                  f"sector {start}")
        self._logical_volume(lvd[1], {k: v[1] for k, v in partitions.items()})

    def _logical_volume(self, lvd: bytes, partitions: dict[int, bytes]) -> None:
        size = s.u32(lvd, 212)
        if size != self.block_size:
            raise FileSystemError(f"udf: logical block size {size} differs from the sector "
                                  f"size {self.block_size}; not read")
        label = s.dstring(lvd[84:212], "logical volume descriptor")
        self.label = label or self.label
        self._fsd = s.long_ad(lvd, 248)
        table, count = s.u32(lvd, 264), s.u32(lvd, 268)
        if count > MAX_PARTITION_MAPS or 440 + table > len(lvd):
            raise FileSystemError(f"udf: {count} partition maps in {table} bytes do not fit "
                                  "the logical volume descriptor")
        self._partition_maps(lvd[440:440 + table], count, partitions)

    def _partition_maps(self, table: bytes, count: int, partitions: dict[int, bytes]) -> None:
        """Each map's partition: type 1 maps first (a metadata map names one of them)."""
        raw: list[tuple[int, bytes]] = []
        at = 0
        for n in range(count):
            kind, length = (table[at], table[at + 1]) if at + 1 < len(table) else (0, 0)
            if length < 6 or at + length > len(table):
                raise FileSystemError(f"udf: partition map {n} runs past the map table")
            raw.append((kind, table[at:at + length]))
            at += length
        self._maps: list[_Map] = []
        numbers: list[int] = []
        for n, (kind, body) in enumerate(raw):
            number = s.u16(body, 4) if kind == 1 else s.u16(body, 38) if len(body) >= 40 else -1
            numbers.append(number)
            if number not in partitions:
                raise FileSystemError(f"udf: partition map {n} names partition {number}, "
                                      "which has no partition descriptor")
            pd = partitions[number]
            self._maps.append(_Map("physical", start=s.u32(pd, 188), length=s.u32(pd, 192)))
        for n, (kind, body) in enumerate(raw):
            if kind != 1:
                self._maps[n] = self._type2_map(n, kind, body, raw, numbers)

    def _type2_map(self, n: int, kind: int, body: bytes, raw: list[tuple[int, bytes]],
                   numbers: list[int]) -> _Map:
        """A type 2 map: the metadata partition is read, virtual and sparable are refused."""
        ident = body[5:28].rstrip(b"\0")
        if kind != 2 or len(body) < 64:
            raise FileSystemError(f"udf: partition map {n} is of unknown type {kind}")
        if ident == _VIRTUAL:
            physical = next((m for m, (k, _b) in enumerate(raw)
                             if k == 1 and numbers[m] == numbers[n]), None)
            if physical is None:
                raise FileSystemError(f"udf: virtual partition map {n} names partition "
                                      f"{numbers[n]}, which no type 1 map names")
            return self._virtual_map(physical)
        if ident == _SPARABLE:
            return self._sparable_map(n, body)
        if ident != _METADATA:
            raise FileSystemError(f"udf: partition map {n} is {shown(ident.decode('latin-1'))}"
                                  "; not read")
        physical = next((m for m, (k, _b) in enumerate(raw)
                         if k == 1 and numbers[m] == numbers[n]), None)
        if physical is None:
            raise FileSystemError(f"udf: metadata partition map {n} names partition "
                                  f"{numbers[n]}, which no type 1 map names")
        return self._metadata_map(body, physical)

    def _virtual_map(self, physical: int) -> _Map:
        """A virtual partition (UDF 2.60 2.2.8, CD-R and DVD-R written incrementally): its
        blocks are looked up in the Virtual Allocation Table, a file whose ICB is the last
        written sector of the medium (the image's last sector that is not zeros, within the
        last :data:`MAX_VAT_SEARCH` bytes; the few sectors before it are tried too, for
        run-out blocks)."""
        part = self._maps[physical]
        last = self._last_written()
        failure = ""
        for sector in range(last, max(part.start, last - 32) - 1, -1):
            try:
                icb = self._icb(physical, sector - part.start)
                if icb.file_type not in (0, 248):
                    raise FileSystemError(f"udf: sector {sector}: a file entry, not the VAT's")
                raw = b"".join(self._content(icb, 0, min(icb.size, MAX_VAT)))
                table = _vat_entries(raw, icb.file_type, sector)
            except FileSystemError as exc:
                failure = failure or str(exc)
                continue
            return _Map("virtual", start=part.start, length=len(table), physical_ref=physical,
                        table=table)
        raise FileSystemError(f"udf: no virtual allocation table at the last written sector "
                              f"({last}): {failure.removeprefix('udf: ')}")

    def _last_written(self) -> int:
        """The last sector of the image that holds anything but zeros."""
        size = self._stream.size - self._stream.size % self.block_size
        end = size
        chunk = 1 << 20
        while end > 0 and size - end < MAX_VAT_SEARCH:
            start = max(0, end - chunk)
            data = self._stream.pread(start, end - start).rstrip(b"\0")
            if data:
                return (start + len(data) - 1) // self.block_size
            end = start
        raise FileSystemError(f"udf: a virtual partition, and the last {MAX_VAT_SEARCH >> 20} "
                              "MiB of the image are zeros: no VAT found")

    def _sparable_map(self, n: int, body: bytes) -> _Map:
        """A sparable partition (UDF 2.60 2.2.9, CD-RW and DVD-RW): the partition's blocks,
        each packet of them read from its spare where the first readable Sparing Table
        (2.2.12) moved it. Without a readable table the volume is refused: a moved packet
        would otherwise be read from its defective place."""
        physical = self._maps[n]
        packet, count, size = s.u16(body, 40), body[42], s.u32(body, 44)
        if not 1 <= packet <= 1024 or not 1 <= count <= 4 or not 56 <= size <= 1 << 20:
            raise FileSystemError(f"udf: sparable partition map {n}: packets of {packet} "
                                  f"blocks, {count} sparing tables of {size} bytes; not a "
                                  "map UDF writes")
        failure = ""
        for table in range(count):
            sector = s.u32(body, 48 + 4 * table)
            where = f"sparing table at sector {sector}"
            try:
                data = self._sector(sector, -(-size // self.block_size))[:size]
                s.check_tag(data, (0,), sector, where)
                if data[17:35] != b"*UDF Sparing Table":
                    raise FileSystemError(f"udf: {where}: not a sparing table")
            except FileSystemError as exc:
                failure = failure or str(exc)
                continue
            entries = min(s.u16(data, 48), (len(data) - 56) // 8)
            spares = {}
            for at in range(56, 56 + 8 * entries, 8):
                original, mapped = struct.unpack_from("<II", data, at)
                if original < 0xFFFFFFF0:
                    spares[original] = mapped
            return _Map("sparable", start=physical.start, length=physical.length,
                        packet=packet, spares=spares)
        raise FileSystemError(f"udf: no sparing table of partition map {n} is readable: "
                              f"{failure.removeprefix('udf: ')}")

    def _metadata_map(self, body: bytes, physical: int) -> _Map:
        """The metadata partition: its blocks are the metadata file's bytes, the file's ICB
        lying in the physical partition (its mirror's when the file's own fails)."""
        main, mirror = s.u32(body, 40), s.u32(body, 44)
        failure: FileSystemError | None = None
        for where in (main, mirror):
            try:
                icb = self._icb(physical, where, (250, 251))
                extents = self._extents(icb)
                if any(ext.ref != physical for ext in extents):
                    # its bytes must lie in the physical partition: anywhere else (the
                    # metadata partition itself) is a loop
                    raise FileSystemError(f"udf: metadata file at block {where} has an extent "
                                          "outside its physical partition")
            except FileSystemError as exc:
                failure = failure or exc
                continue
            offsets, at = [], 0
            for ext in extents:
                offsets.append(at)
                at += ext.length
            return _Map("metadata", physical_ref=physical, offsets=tuple(offsets),
                        extents=tuple(extents), length=icb.size // self.block_size)
        assert failure is not None
        raise FileSystemError(f"udf: metadata file and its mirror unreadable: "
                              f"{str(failure).removeprefix('udf: ')}")

    def _file_set(self) -> tuple[int, int]:
        _kind, _length, block, ref = self._fsd
        data = self._read_blocks(ref, block, 1)
        s.check_tag(data, (s.FSD,), block, f"file set descriptor at block {block}")
        _kind, _length, root, root_ref = s.long_ad(data, 400)
        self._root_ref = root_ref
        self._icb(root_ref, root)
        return root_ref, root

    # --- partitions ---------------------------------------------------------------------------

    def _map(self, ref: int) -> _Map:
        if not 0 <= ref < len(self._maps):
            raise FileSystemError(f"udf: partition reference {ref} names no partition map")
        return self._maps[ref]

    def _pieces(self, ref: int, block: int, size: int) -> Iterator[tuple[int, int]]:
        """(byte offset in the image, bytes) of ``size`` bytes from logical block ``block`` of
        partition ``ref``; outside the partition is refused."""
        part = self._map(ref)
        if part.kind == "virtual":
            yield from self._virtual(part, block, size)
            return
        if part.kind == "sparable":
            yield from self._spared(part, ref, block, size)
            return
        if part.kind == "physical":
            if block + -(-size // self.block_size) > part.length:
                raise FileSystemError(f"udf: blocks {block}+{size} bytes lie outside partition "
                                      f"{ref} ({part.length} blocks)")
            yield (part.start + block) * self.block_size, size
            return
        at = block * self.block_size
        while size > 0:
            n = bisect_right(part.offsets, at) - 1
            if n < 0 or at >= part.offsets[n] + part.extents[n].length:
                raise FileSystemError(f"udf: block {block} lies outside the metadata file")
            ext = part.extents[n]
            inside = at - part.offsets[n]
            take = min(size, ext.length - inside)
            if ext.kind != s.RECORDED:
                raise FileSystemError(f"udf: block {block} of the metadata partition is not "
                                      "recorded")
            yield from self._pieces(ext.ref, ext.block + inside // self.block_size, take)
            at += take
            size -= take

    def _virtual(self, part: _Map, block: int, size: int) -> Iterator[tuple[int, int]]:
        """The pieces of a read in a virtual partition, block by block through the VAT."""
        while size > 0:
            if block >= len(part.table) or part.table[block] == 0xFFFFFFFF:
                raise FileSystemError(f"udf: virtual block {block} is not in the VAT "
                                      f"({len(part.table)} entries)")
            take = min(size, self.block_size)
            yield from self._pieces(part.physical_ref, part.table[block], take)
            block += 1
            size -= take

    def _spared(self, part: _Map, ref: int, block: int, size: int) -> Iterator[tuple[int, int]]:
        """The pieces of a read in a sparable partition, packet by packet."""
        if block + -(-size // self.block_size) > part.length:
            raise FileSystemError(f"udf: blocks {block}+{size} bytes lie outside partition "
                                  f"{ref} ({part.length} blocks)")
        assert part.spares is not None
        while size > 0:
            first, inside = divmod(block, part.packet)
            take = min(size, (part.packet - inside) * self.block_size)
            mapped = part.spares.get(first * part.packet)
            sector = part.start + block if mapped is None else mapped + inside
            yield sector * self.block_size, take
            block += -(-take // self.block_size)
            size -= take

    def _read_blocks(self, ref: int, block: int, count: int) -> bytes:
        return self._read(ref, block, count * self.block_size)

    def _read(self, ref: int, block: int, size: int) -> bytes:
        out = bytearray()
        for offset, take in self._pieces(ref, block, size):
            data = self._stream.pread(offset, take)
            if len(data) != take:
                raise FileSystemError(f"udf: block {block} of partition {ref} lies past the "
                                      f"image's end ({self._stream.size} bytes; cut short?)")
            out += data
        return bytes(out)

    # --- ICBs and their extents ---------------------------------------------------------------

    def _icb(self, ref: int, block: int, types: tuple[int, ...] | None = None) -> s.Icb:
        """The File Entry or Extended File Entry at ``block`` of partition ``ref``, following
        indirect entries (ICB strategy 4096) a bounded number of times."""
        key = (ref, block)
        cached = self._icbs.get(key)
        if cached is None:
            cached = self._read_icb(ref, block)
            self._icbs[key] = cached
            if len(self._icbs) > _ICB_CACHE:
                self._icbs.popitem(last=False)
        else:
            self._icbs.move_to_end(key)
        if types is not None and cached.file_type not in types:
            raise FileSystemError(f"udf: file entry at block {block} is of type "
                                  f"{cached.file_type}, not {types[0]}")
        return cached

    def _read_icb(self, ref: int, block: int) -> s.Icb:
        """The latest entry of the ICB at ``block``: an indirect entry there is followed, and
        under strategy 4096 (ECMA-167 4/A.6, write-once media) so is the indirect entry in the
        block after a direct one, which a writer records when it rewrites the file's entry
        elsewhere; each block once, at most :data:`MAX_INDIRECT` of them."""
        where_ref, where_block = ref, block
        seen: set[tuple[int, int]] = set()
        while len(seen) < MAX_INDIRECT:
            if (where_ref, where_block) in seen:
                break
            seen.add((where_ref, where_block))
            where = f"file entry at block {where_block} of partition {where_ref}"
            data = self._read_blocks(where_ref, where_block, 1)
            ident = s.check_tag(data, (s.FE, s.EFE, s.IE), where_block, where)
            if ident == s.IE:
                _kind, length, where_block, where_ref = s.long_ad(data, 36)
                if not length:
                    raise FileSystemError(f"udf: {where}: an indirect entry pointing nowhere")
                continue
            newer = self._newer_entry(where_ref, where_block) if s.u16(data, 20) == 4096 \
                else None
            if newer is None:
                return s.parse_icb(data, where_ref, where_block, where)
            where_ref, where_block = newer
        raise FileSystemError(f"udf: file entry at block {block}: its indirect entries loop or "
                              f"are more than {MAX_INDIRECT}")

    def _newer_entry(self, ref: int, block: int) -> tuple[int, int] | None:
        """Where the indirect entry after a strategy-4096 direct entry points, or None when
        there is none (the block unrecorded, or anything else: the direct entry is then the
        latest)."""
        try:
            data = self._read_blocks(ref, block + 1, 1)
            s.check_tag(data, (s.IE,), block + 1, "indirect entry")
        except FileSystemError:
            return None
        _kind, length, target, target_ref = s.long_ad(data, 36)
        return (target_ref, target) if length else None

    def _extents(self, icb: s.Icb) -> list[s.Extent]:
        """Every extent of the file, Allocation Extent Descriptor chains followed (each AED
        once, at most :data:`MAX_AEDS`)."""
        where = f"file entry at block {icb.block}"
        if icb.form == s.EMBEDDED:
            return []
        found: list[s.Extent] = []
        area, seen = icb.ad_area, set[tuple[int, int]]()
        while True:
            follow = None
            for ext in s.allocation_descriptors(area, icb.form, icb.ref, where):
                if ext.kind == s.NEXT:
                    follow = ext
                    break
                found.append(ext)
                if len(found) > MAX_EXTENTS:
                    raise FileSystemError(f"udf: {where}: more than {MAX_EXTENTS} extents")
            if follow is None:
                return found
            key = (follow.ref, follow.block)
            if key in seen or len(seen) >= MAX_AEDS:
                raise FileSystemError(f"udf: {where}: allocation extent chain loops or is "
                                      f"longer than {MAX_AEDS}")
            seen.add(key)
            data = self._read(follow.ref, follow.block,
                              min(max(follow.length, 24), self.block_size))
            s.check_tag(data, (s.AED,), follow.block,
                        f"allocation extent descriptor at block {follow.block}")
            length = s.u32(data, 20)
            if 24 + length > len(data):
                raise FileSystemError(f"udf: allocation extent descriptor at block "
                                      f"{follow.block} holds {length} bytes, more than its block")
            area = data[24:24 + length]

    def _content(self, icb: s.Icb, start: int, end: int,
                 block: int = 1 << 20) -> Iterator[bytes]:
        """The file's bytes ``start``..``end`` in pieces of at most ``block``; unrecorded extents
        read as zeros. Extents shorter than the file are refused before any byte is given."""
        end = min(end, icb.size)
        where = f"file entry at block {icb.block}"
        if icb.form == s.EMBEDDED:
            if icb.size > len(icb.ad_area):
                raise FileSystemError(f"udf: {where}: {icb.size} bytes, {len(icb.ad_area)} "
                                      "embedded")
            if start < end:
                yield icb.ad_area[start:end]
            return
        extents = self._extents(icb)
        if sum(ext.length for ext in extents) < icb.size:
            raise FileSystemError(f"udf: {where}: its extents hold fewer bytes than its "
                                  f"length ({icb.size})")
        pos = 0
        for ext in extents:
            if pos >= end:
                return
            ext_end = pos + ext.length
            if ext_end > start:
                lo, hi = max(pos, start), min(ext_end, end)
                yield from self._extent_bytes(ext, lo - pos, hi - lo, block)
            pos = ext_end

    def _extent_bytes(self, ext: s.Extent, inside: int, want: int,
                      block: int) -> Iterator[bytes]:
        while want > 0:
            take = min(block, want)
            if ext.kind != s.RECORDED:
                yield bytes(take)
            else:
                first, skip = divmod(inside, self.block_size)
                yield self._read(ext.ref, ext.block + first, skip + take)[skip:]
            inside += take
            want -= take

    # --- folders ------------------------------------------------------------------------------

    def _folder(self, icb: s.Icb) -> Iterator[s.FileId]:
        """The File Identifier Descriptors of a folder, in their order; each tag checked, its
        location the block it starts in."""
        where = f"folder at block {icb.block}"
        if icb.size > MAX_FOLDER:
            raise FileSystemError(f"udf: {where}: {icb.size} bytes, more than the "
                                  f"{MAX_FOLDER >> 20} MiB read")
        data = b"".join(self._content(icb, 0, icb.size))
        starts, blocks, pos = [], [], 0
        if icb.form != s.EMBEDDED:
            for ext in self._extents(icb):
                starts.append(pos)
                blocks.append(ext.block)
                pos += ext.length
        at = 0
        while at + 38 <= len(data):
            name_length, iu_length = data[at + 19], s.u16(data, at + 36)
            end = at + 38 + iu_length + name_length
            if end > len(data):
                raise FileSystemError(f"udf: {where}: file identifier at byte {at} runs past "
                                      "the folder")
            if icb.form == s.EMBEDDED:
                location = icb.block
            else:
                n = bisect_right(starts, at) - 1
                location = blocks[n] + (at - starts[n]) // self.block_size
            # the padding to four bytes is part of the descriptor (its CRC covers it)
            s.check_tag(data[at:(end + 3) & ~3], (s.FID,), location,
                        f"{where}: file identifier at byte {at}")
            raw = data[end - name_length:end]
            name = s.osta_name(raw, f"{where}: file identifier at byte {at}")
            yield s.FileId(data[at + 18], name, s.long_ad(data, at + 20), at)
            at = (end + 3) & ~3

    # --- entries ------------------------------------------------------------------------------

    def _address(self, ref: int, block: int) -> int:
        return block if ref == self._root_ref else (ref + 1) << 32 | block

    def _split(self, address: int) -> tuple[int, int]:
        high = address >> 32
        return (self._root_ref, address) if high == 0 else (high - 1, address & 0xFFFFFFFF)

    def _link(self, icb: s.Icb) -> str:
        if icb.size > MAX_LINK:
            raise FileSystemError(f"udf: symbolic link at block {icb.block} of {icb.size} bytes")
        raw = b"".join(self._content(icb, 0, icb.size))
        return s.path_components(raw, f"symbolic link at block {icb.block}")

    def _entry(self, icb: s.Icb, path: str, name: str, name_type: str,
               deleted: bool = False) -> Entry:
        kind = s.FILE_TYPES.get(icb.file_type, "-")
        link = self._link(icb) if kind == "l" else None
        return make_entry(path=path, name=name, inode=self._address(icb.ref, icb.block),
                          attr_type=None, attr_id=None, stream=None,
                          name_type=name_type or kind, meta_type=kind, deleted=deleted,
                          realloc=False, size=icb.size, times=icb.times, mode=icb.mode,
                          uid=icb.uid, gid=icb.gid, link=link)

    def _fid_entry(self, fid: s.FileId, prefix: str) -> Entry:
        """The entry a File Identifier names. A deleted name whose ICB is gone (no longer a
        file entry) is listed without metadata, as ``fls`` lists a deleted name."""
        name_type = "d" if fid.characteristics & s.FID_DIRECTORY else "r"
        path = f"{prefix}/{fid.name}"
        _kind, length, block, ref = fid.icb
        try:
            if not length:
                raise FileSystemError(f"udf: {shown(path)}: its file identifier names no ICB")
            icb = self._icb(ref, block)
        except FileSystemError:
            if not fid.deleted:
                raise
            return make_entry(path=path, name=fid.name, inode=self._address(ref, block)
                              if 0 <= ref < 0xFFFF else 0, attr_type=None, attr_id=None,
                              stream=None, name_type=name_type, meta_type="-", deleted=True,
                              realloc=False, size=0, times=NO_TIMES, mode=0, uid=0, gid=0,
                              link=None)
        # a file identifier tells only folders from the rest: any other type is the ICB's (a
        # symbolic link is l/l, as Rock Ridge's and ext's are listed, not r/l)
        return self._entry(icb, path, fid.name, "d" if name_type == "d" else "", fid.deleted)

    def walk(self, path: str = "/", *, recursive: bool = False,
             selection: Selection = Selection.ALLOCATED, mediator: Mediator | None = None,
             file_names: bool = False) -> Iterator[Entry]:
        """Entries of a folder in the order of its File Identifiers, deleted ones as
        ``selection`` asks; the parent entry is not listed."""
        mediator = mediator or NullMediator()
        start = self.lookup(path)
        if not start.is_dir:
            raise FileSystemError(f"{shown(start.display_path)}: not a directory")
        prefix = "" if start.path == "/" else start.path
        yield from self._walk(start.inode, prefix, recursive=recursive, selection=selection,
                              mediator=mediator, stack=[start.inode])

    def _walk(self, address: int, prefix: str, *, recursive: bool, selection: Selection,
              mediator: Mediator, stack: list[int]) -> Iterator[Entry]:
        try:
            icb = self._icb(*self._split(address))
            fids = [f for f in self._folder(icb) if not f.parent]
        except FileSystemError as exc:
            mediator.notice(f"{shown(prefix or '/')}: directory not readable: {exc}",
                            level=UNREAD)
            return
        for fid in fids:
            if not selection.wants(fid.deleted) and not (recursive and fid.characteristics
                                                         & s.FID_DIRECTORY):
                continue
            try:
                entry = self._fid_entry(fid, prefix)
            except FileSystemError as exc:
                mediator.notice(f"{shown(prefix or '/')}: entry {shown(fid.name)} not readable:"
                                f" {exc}", level=UNREAD)
                continue
            if selection.wants(fid.deleted):
                yield entry
                yield from self._stream_entries(entry, mediator)
            if recursive and entry.is_dir and entry.meta_type != "-":
                if entry.inode in stack:
                    continue
                if len(stack) >= MAX_DEPTH:
                    mediator.notice(f"{shown(entry.path)}: deeper than {MAX_DEPTH} folders, "
                                    "not walked", level=UNREAD)
                    continue
                stack.append(entry.inode)
                yield from self._walk(entry.inode, entry.path, recursive=recursive,
                                      selection=selection, mediator=mediator, stack=stack)
                stack.pop()

    def _named_streams(self, owner: Entry) -> list[tuple[str, s.Icb]]:
        """(name, ICB) of each named stream of ``owner`` (its EFE's stream directory, UDF
        2.00+), deleted stream names left out."""
        if owner.meta_type == "-" or owner.stream is not None:
            return []
        icb = self._icb(*self._split(owner.inode))
        if icb.stream_dir is None:
            return []
        _kind, _length, block, ref = icb.stream_dir
        directory = self._icb(ref, block, (s.TYPE_STREAM_DIR,))
        return [(fid.name, self._icb(fid.icb[3], fid.icb[2])) for fid in self._folder(directory)
                if not fid.parent and not fid.deleted and fid.icb[1]]

    def _stream_entry(self, owner: Entry, name: str, icb: s.Icb) -> Entry:
        """A named stream listed as ``fls`` lists an NTFS stream: the file's path and name,
        ``stream`` its name, the stream's own ICB its address."""
        return make_entry(path=owner.path, name=owner.name,
                          inode=self._address(icb.ref, icb.block), attr_type=None,
                          attr_id=None, stream=name, name_type="r", meta_type="r",
                          deleted=owner.deleted, realloc=False, size=icb.size, times=icb.times,
                          mode=icb.mode, uid=icb.uid, gid=icb.gid, link=None,
                          folder_stream=owner.is_dir)

    def _stream_entries(self, owner: Entry, mediator: Mediator) -> Iterator[Entry]:
        try:
            streams = self._named_streams(owner)
        except FileSystemError as exc:
            mediator.notice(f"{shown(owner.path)}: named streams not readable: {exc}",
                            level=UNREAD)
            return
        for name, icb in streams:
            yield self._stream_entry(owner, name, icb)

    def lookup(self, path: str) -> Entry:
        """The entry at ``path`` (``name:stream`` for a named stream, when no name is that
        whole); an allocated name is preferred to a deleted one."""
        icb = self._icb(*self._root)
        entry = self._entry(icb, "/", "", "d")
        walked = ""
        parts = split_path(path)
        for n, part in enumerate(parts):
            if not entry.is_dir:
                raise FileSystemError(f"{shown(walked)}: not a directory")
            fids = [f for f in self._folder(self._icb(*self._split(entry.inode)))
                    if f.name == part and not f.parent]
            if not fids and ":" in part and n == len(parts) - 1:
                base, _sep, stream = part.rpartition(":")
                owner = self.lookup(f"{walked}/{base}")
                found = [(name, one) for name, one in self._named_streams(owner)
                         if name == stream]
                if found:
                    return self._stream_entry(owner, *found[0])
            if not fids:
                raise FileSystemError(f"{shown(walked)}/{shown(part)}: no such file or folder")
            fid = next((f for f in fids if not f.deleted), fids[0])
            entry = self._fid_entry(fid, walked)
            walked = entry.path
        return entry

    def names(self, path: str) -> list[str]:
        """The components of ``path``: names are looked up only as they are stored."""
        self.lookup(path)
        return split_path(path)

    def by_address(self, address: str) -> Entry:
        text = address.strip()
        if not text.isdigit() or not text.isascii() or int(text) >= 1 << 48:
            raise FileSystemError(f"{address!r} is not a UDF address (an ICB's block)")
        icb = self._icb(*self._split(int(text)))
        return self._entry(icb, "", "", "")

    def target(self, path: str | None = None, address: str | None = None) -> Entry:
        if (path is None) == (address is None):
            raise FileSystemError("give either a path or an inode, not both")
        return self.lookup(path) if path is not None else self.by_address(address or "")

    # --- content ------------------------------------------------------------------------------

    def _file_icb(self, entry: Entry) -> s.Icb:
        if entry.is_dir:
            raise FileSystemError(f"{shown(entry.display_path) or entry.address}: is a folder")
        if entry.meta_type == "-":
            raise FileSystemError(f"{shown(entry.display_path)}: deleted, its file entry is "
                                  "gone")
        return self._icb(*self._split(entry.inode))

    def iter_content(self, entry: Entry, block: int = 1 << 20) -> Iterator[bytes]:
        icb = self._file_icb(entry)
        yield from self._content(icb, 0, icb.size, max(1, block))

    def read(self, entry: Entry, offset: int = 0, size: int = 4096) -> bytes:
        if entry.is_dir or entry.meta_type == "-" or offset >= entry.size:
            return b""
        icb = self._file_icb(entry)
        return b"".join(self._content(icb, offset, offset + size))

    def stat(self, entry: Entry) -> FileStat:
        """The file entry's fields and its extents as (first sector of the image, sectors),
        None for an extent that is allocated but not recorded (reads as zeros)."""
        if entry.meta_type == "-":
            return FileStat(entry=entry, filesystem=self.type, allocated=False,
                            mode=permissions(0), uid=0, gid=0, links=0, attributes=(),
                            note=self.content_note(entry))
        icb = self._icb(*self._split(entry.inode))
        runs: list[tuple[int | None, int]] = []
        for ext in self._extents(icb)[:4096]:
            blocks = -(-ext.length // self.block_size)
            if ext.kind != s.RECORDED:
                runs.append((None, blocks))
                continue
            offset = next(self._pieces(ext.ref, ext.block, 1))[0]
            runs.append((offset // self.block_size, blocks))
        attribute = Attribute(type=1, id=0, name=None, size=icb.size,
                              resident=icb.form == s.EMBEDDED, runs=tuple(runs))
        times = (entry.times.modified, entry.times.accessed, entry.times.changed,
                 entry.times.born)
        zones = tuple((name, _zone(zone)) for name, zone, moment in zip(
            ("modified", "accessed", "changed", "born"), icb.zones, times, strict=True)
            if moment is not None)
        return FileStat(entry=entry, filesystem=self.type, allocated=True,
                        mode=permissions(icb.mode), uid=icb.uid, gid=icb.gid, links=icb.links,
                        attributes=(attribute,), note=self.content_note(entry),
                        time_zones=zones)

    def content_note(self, entry: Entry) -> str | None:
        if not entry.deleted:
            return None
        if entry.meta_type == "-":
            return "deleted name; its file entry is gone"
        return "deleted name; its file entry may since have been reused by another file"

    def file_name_times(self, entry: Entry) -> Times | None:
        return None


def _zone(minutes: int | None) -> str:
    """``+01:00`` for a zone 60 minutes east of UTC; ``unspecified`` where the writer left the
    zone out (the time is then read as UTC). Why shown: times are UTC everywhere, and the zone a
    disc was written in says where (or on which clock) it was written."""
    if minutes is None:
        return "unspecified"
    sign = "-" if minutes < 0 else "+"
    hours, rest = divmod(abs(minutes), 60)
    return f"{sign}{hours:02d}:{rest:02d}"



def _vat_entries(raw: bytes, file_type: int, sector: int) -> tuple[int, ...]:
    """The entries of a Virtual Allocation Table: UDF 2.00+ (file type 248: a header of
    ``L_HD`` bytes first) or UDF 1.50 (file type 0: the entries, then its regid and the
    previous VAT's place in the last 36 bytes)."""
    where = f"udf: virtual allocation table at sector {sector}"
    if file_type == 248:
        header = s.u16(raw, 0) if len(raw) >= 2 else 0
        if header < 152 or header > len(raw):
            raise FileSystemError(f"{where}: a header of {header} bytes")
        body = raw[header:]
    else:
        if len(raw) < 36 or raw[-35:-35 + len(_VAT150)] != _VAT150:
            raise FileSystemError(f"{where}: not a VAT (no {_VAT150.decode()} identifier)")
        body = raw[:-36]
    count = len(body) // 4
    return struct.unpack_from(f"<{count}I", body)
