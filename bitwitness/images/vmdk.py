"""VMDK (VMware virtual disk): the on-disk structures and the reader.

A VMDK is a text *descriptor* naming one or more *extents*:

* ``SPARSE``: a hosted sparse extent file (magic ``KDMV``): a 512-byte header, an embedded
  descriptor (monolithicSparse keeps it inside the extent), a grain directory (GD) of 32-bit
  sector offsets of grain tables (GT), and GTs of 32-bit sector offsets of grains (64 KiB by
  default). A GT entry of 0 is a grain never written and 1 a grain known to be zero: both read as
  zeros. streamOptimized extents store each grain deflate-compressed behind a 12-byte marker
  (LBA, size), and may keep the GD at the end (header ``gdOffset`` = -1, real one in the footer);
* ``FLAT``: a raw file (``x-flat.vmdk``) from a byte offset;
* ``ZERO``: media that reads as zeros;
* ``SESPARSE``: an ESXi 6.5+ snapshot extent (:mod:`bitwitness.images.vmdk_sesparse`).

Offsets and sizes in the structures are in 512-byte sectors. The structures are declared here once;
:mod:`bitwitness.acquire.convert.vmdk_writer` packs them with the same definitions.
A child disk (a parent CID other than ``ffffffff``) is read here, over its parent, when its
descriptor names an SEsparse extent: grains the child does not hold are the parent's (found by
``parentFileNameHint`` inside the child's folder, its CID the one the child records; a parent
may be a child itself). Other children are refused here and read through libvmdk
(:mod:`bitwitness.images.vmdk_libyal`).
"""

from __future__ import annotations

import bisect
import os
import re
import struct
import sys
import zlib
from array import array
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from bitwitness.errors import (
    CorruptImageError,
    InputError,
    UnsupportedFormatError,
)
from bitwitness.evidence_io import (
    MAX_OFFSET,
    check_span,
    confine_part,
    open_readonly,
    pread_checked,
    read_head,
)
from bitwitness.images.checks import ContainerCheck
from bitwitness.images.truncation import Truncation, TruncationScan, require_present
from bitwitness.images.vmdk_sesparse import SESparseExtent
from bitwitness.stream import ImageStream, StreamInfo

MAGIC = b"KDMV"
SECTOR = 512
DESCRIPTOR_MARK = b"# Disk DescriptorFile"
FLAG_NEWLINE_TEST = 1 << 0
FLAG_REDUNDANT_GT = 1 << 1
FLAG_ZERO_GTE = 1 << 2
FLAG_COMPRESSED = 1 << 16
FLAG_MARKERS = 1 << 17
GD_AT_END = 0xFFFF_FFFF_FFFF_FFFF
NO_PARENT = "ffffffff"
#: Hosted sparse extent header: magic, version, flags, capacity, grain size, descriptor offset,
#: descriptor size, GTEs per GT, redundant GD offset, GD offset, overhead, unclean shutdown,
#: the four newline-detection characters, compression algorithm; 433 bytes of padding.
HEADER = struct.Struct("<4sIIQQQQIQQQB4sH433x")
NEWLINE_CHARS = b"\n \r\n"
#: A descriptor larger than this is not a descriptor (it is read whole).
MAX_DESCRIPTOR = 1 << 20
#: Bounds on what a header may declare. VMware's specification fixes 512 GTEs per GT (qemu
#: refuses more) and asks for a power-of-two grain; VMware, VirtualBox and qemu all write
#: 128-sector (64 KiB) grains, the specification's default. The limits keep every buffer small
#: (a grain 64 KiB, a grain table 2 KiB) and what a header can claim tied to the file: a 4-byte
#: directory entry covers at most 32 MiB of media (512 grains of 64 KiB), so a small file
#: cannot pose as a vast disk.
MAX_GRAIN_SECTORS = 128
MAX_GTES_PER_GT = 512
#: Grain tables kept decoded (each at most 512 entries, 2 KiB).
GT_CACHE = 64
#: A compressed grain's stored size may exceed the grain (incompressible data, deflate's
#: framing) by at most this much.
GRAIN_OVERHEAD = 4096
#: Differing grain-table entries named one by one in a failed check (the rest are counted).
REPORTED_DIFFERENCES = 5


@dataclass(frozen=True)
class SparseHeader:
    """The fields of a hosted sparse extent header (sizes and offsets in sectors)."""

    capacity: int
    grain_size: int = 128
    descriptor_offset: int = 0
    descriptor_size: int = 0
    gtes_per_gt: int = 512
    rgd_offset: int = 0
    gd_offset: int = 0
    overhead: int = 0
    flags: int = FLAG_NEWLINE_TEST
    version: int = 1
    unclean_shutdown: int = 0
    compress_algorithm: int = 0
    line_ends: bytes = NEWLINE_CHARS  #: the four line-end test bytes as found


def pack_header(h: SparseHeader) -> bytes:
    return HEADER.pack(MAGIC, h.version, h.flags, h.capacity, h.grain_size, h.descriptor_offset,
                       h.descriptor_size, h.gtes_per_gt, h.rgd_offset, h.gd_offset, h.overhead,
                       h.unclean_shutdown, NEWLINE_CHARS, h.compress_algorithm)


def unpack_header(data: bytes) -> SparseHeader:
    if len(data) < HEADER.size or not data.startswith(MAGIC):
        raise CorruptImageError("no VMDK sparse extent header (magic 'KDMV' missing)")
    (_, version, flags, capacity, grain, desc_off, desc_size, gtes, rgd, gd, overhead, unclean,
     line_ends, compress) = HEADER.unpack(data[:HEADER.size])
    if (not 0 < grain <= MAX_GRAIN_SECTORS or grain & (grain - 1)
            or not 0 < gtes <= MAX_GTES_PER_GT):
        raise CorruptImageError(f"VMDK header has grain size {grain} sectors and {gtes} GTEs "
                                f"per GT (a power of two up to {MAX_GRAIN_SECTORS}, and at "
                                f"most {MAX_GTES_PER_GT})")
    if capacity > MAX_OFFSET // SECTOR:
        raise CorruptImageError(f"VMDK header declares {capacity} sectors, beyond any "
                                "possible disk")
    return SparseHeader(capacity=capacity, grain_size=grain, descriptor_offset=desc_off,
                        descriptor_size=desc_size, gtes_per_gt=gtes, rgd_offset=rgd,
                        gd_offset=gd, overhead=overhead, flags=flags, version=version,
                        unclean_shutdown=unclean, compress_algorithm=compress,
                        line_ends=line_ends)


@dataclass(frozen=True)
class Extent:
    """One line of a descriptor's extent description."""

    access: str  #: RW, RDONLY or NOACCESS
    sectors: int
    kind: str  #: SPARSE, FLAT, ZERO, VMFS
    file: str = ""
    offset: int = 0  #: sectors into the file (FLAT)


@dataclass(frozen=True)
class Descriptor:
    """A parsed descriptor: its key/value lines, its extents, and the DDB entries."""

    values: dict[str, str]
    extents: tuple[Extent, ...]
    ddb: dict[str, str] = field(default_factory=dict)

    @property
    def create_type(self) -> str:
        return self.values.get("createType", "")


_EXTENT = re.compile(r'^(RW|RDONLY|NOACCESS)\s+(\d+)\s+(\w+)(?:\s+"([^"]*)"(?:\s+(\d+))?)?\s*$')
_VALUE = re.compile(r'^([\w.]+)\s*=\s*"?([^"]*)"?\s*$')


def parse_descriptor(text: str) -> Descriptor:
    """Parse descriptor text; unknown lines are ignored as VMware does."""
    values: dict[str, str] = {}
    ddb: dict[str, str] = {}
    extents: list[Extent] = []
    for raw_line in text.splitlines():
        line = raw_line.strip().strip("\0")
        if not line or line.startswith("#"):
            continue
        if m := _EXTENT.match(line):
            access, sectors, kind, name, offset = m.groups()
            extents.append(Extent(access, int(sectors), kind.upper(), name or "",
                                  int(offset or 0)))
        elif m := _VALUE.match(line):
            key, value = m.groups()
            (ddb if key.startswith("ddb.") else values)[key] = value
    return Descriptor(values, tuple(extents), ddb)


class ExtentReader(Protocol):
    """Reads ``length`` bytes at byte ``offset`` of one extent's share of the media."""

    size: int
    files: tuple[Path, ...]

    def read(self, offset: int, length: int) -> bytes: ...

    def close(self) -> None: ...


class ZeroExtent:
    files: tuple[Path, ...] = ()

    def __init__(self, size: int) -> None:
        self.size = size

    def read(self, offset: int, length: int) -> bytes:
        return bytes(length)

    def close(self) -> None:
        pass


class FlatExtent:
    """A raw file, from ``offset`` sectors on."""

    def __init__(self, path: Path, size: int, offset_sectors: int) -> None:
        self.path = path
        self.size = size
        self.files: tuple[Path, ...] = (path,)
        self._start = offset_sectors * SECTOR
        self._fd = open_readonly(path)
        have = self._have = os.fstat(self._fd).st_size
        if have < self._start + size:
            os.close(self._fd)
            raise CorruptImageError(
                f"flat extent holds {have} bytes, the descriptor needs {self._start + size}",
                path=path)

    def read(self, offset: int, length: int) -> bytes:
        return pread_checked(self._fd, self._start + offset, length, self._have,
                             path=self.path, what="VMDK flat extent data")

    def close(self) -> None:
        os.close(self._fd)


class SparseExtent:
    """A hosted sparse extent (monolithicSparse, twoGbMaxExtentSparse, streamOptimized)."""

    def __init__(self, path: Path, size: int | None = None,
                 window: tuple[int, int] | None = None, member: str = "") -> None:
        """``window``: (file offset, length) of the extent inside ``path`` when it is one
        member of an archive (an OVA's disk, named ``member``) rather than the whole file;
        nothing outside the window is read, and offsets in errors count from its start."""
        self.path = path
        #: what errors name: the file, or the archive and the member inside it
        self.where: Path | str = path if window is None else \
            f"{path} (member {member!r} at file offset {window[0]})"
        #: how checks name the extent: the file's name, or the member's, whose offsets they
        #: give from the member's start
        self.label = path.name if window is None else \
            f"{path.name} member {member!r} (offsets from its start, file offset {window[0]})"
        self.files: tuple[Path, ...] = (path,)
        self._start = 0 if window is None else window[0]
        self._fd = open_readonly(path)
        try:
            self._load(size, window)
        except Exception:
            os.close(self._fd)
            raise

    def _load(self, size: int | None, window: tuple[int, int] | None) -> None:
        whole = os.fstat(self._fd).st_size
        if window is not None:
            check_span(window[0], window[1], whole, path=self.where, what="VMDK extent member")
        self.file_size = whole if window is None else window[1]
        header = unpack_header(self._pread(0, SECTOR, "header"))
        if header.gd_offset == GD_AT_END:  # streamOptimized: the footer holds the real header
            header = unpack_header(self._pread(self.file_size - 2 * SECTOR, SECTOR, "footer"))
        self.header = header
        if size is not None and size > header.capacity * SECTOR:
            # Past its capacity an extent has no grain directory entries: the descriptor
            # would conjure zeros that no structure of the file holds.
            raise CorruptImageError(
                f"the descriptor gives this sparse extent {size} bytes; its header's capacity "
                f"is {header.capacity * SECTOR}", path=self.where)
        self.size = header.capacity * SECTOR if size is None else size
        self.grain_bytes = header.grain_size * SECTOR
        self.compressed = bool(header.flags & FLAG_COMPRESSED)
        self._gtes = header.gtes_per_gt
        span = header.gtes_per_gt * header.grain_size
        gt_count = -(-header.capacity // span)
        # The grain directory is read whole, so it must lie in the file before it is sized;
        # grain tables are read on demand, each checked to lie in the file here.
        gd = array("I")
        gd.frombytes(self._pread(header.gd_offset * SECTOR, gt_count * 4, "grain directory"))
        if sys.byteorder == "big":
            gd.byteswap()
        for index, gt_sector in enumerate(gd):
            if gt_sector:
                check_span(gt_sector * SECTOR, self._gtes * 4, self.file_size, path=self.where,
                           what=f"VMDK grain table {index}")
        self._gd = gd
        self._gt_cache: OrderedDict[int, array[int]] = OrderedDict()

    def descriptor_text(self) -> str:
        h = self.header
        if not h.descriptor_offset or not h.descriptor_size:
            return ""
        if h.descriptor_size * SECTOR > MAX_DESCRIPTOR:
            raise CorruptImageError(f"VMDK embedded descriptor claims {h.descriptor_size} "
                                    f"sectors (at most {MAX_DESCRIPTOR // SECTOR})",
                                    path=self.where, offset=h.descriptor_offset * SECTOR)
        raw = self._pread(h.descriptor_offset * SECTOR, h.descriptor_size * SECTOR, "descriptor")
        return raw.split(b"\0", 1)[0].decode("utf-8", "replace")

    def _pread(self, offset: int, length: int, what: str) -> bytes:
        """``length`` bytes at ``offset`` of the extent (of its window), checked to lie in it."""
        check_span(offset, length, self.file_size, path=self.where, what=f"VMDK {what}")
        return pread_checked(self._fd, self._start + offset, length,
                             self._start + self.file_size, path=self.where, what=f"VMDK {what}")

    def _table(self, gt: int) -> array[int] | None:
        """Grain table ``gt`` (``None`` when the directory has none: every grain reads 0)."""
        if gt >= len(self._gd) or not self._gd[gt]:
            return None
        table = self._gt_cache.get(gt)
        if table is None:
            table = array("I")
            table.frombytes(self._pread(self._gd[gt] * SECTOR, self._gtes * 4, "grain table"))
            if sys.byteorder == "big":
                table.byteswap()
            self._gt_cache[gt] = table
            if len(self._gt_cache) > GT_CACHE:
                self._gt_cache.popitem(last=False)
        return table

    def _grain_sector(self, index: int) -> int:
        table = self._table(index // self._gtes)
        return 0 if table is None else table[index % self._gtes]

    def _grain(self, index: int) -> bytes | None:
        """The grain's bytes, or ``None`` for a grain that reads as zeros."""
        sector = self._grain_sector(index)
        if sector in (0, 1):
            return None
        offset = sector * SECTOR
        media = index * self.grain_bytes
        if not self.compressed:
            require_present(offset, self.grain_bytes, self.file_size, path=self.where,
                            what=f"VMDK grain {index}", media_size=self.size, media_offset=media)
            return self._pread(offset, self.grain_bytes, "grain")
        require_present(offset, 12, self.file_size, path=self.where,
                        what=f"VMDK compressed grain {index}", media_size=self.size,
                        media_offset=media)
        _lba, size = struct.unpack("<QI", self._pread(offset, 12, "grain marker"))
        if size == 0:  # a metadata marker (end of stream, table, footer), not a grain
            raise CorruptImageError(
                f"grain table entry of grain {index} points at a marker of 0 stored bytes, "
                "not at a compressed grain", path=self.where, offset=offset,
                media_offset=index * self.grain_bytes)
        if size > self.grain_bytes + GRAIN_OVERHEAD:
            raise CorruptImageError(
                f"compressed grain {index} claims {size} stored bytes for a grain of "
                f"{self.grain_bytes}", path=self.where, offset=offset)
        require_present(offset, 12 + size, self.file_size, path=self.where,
                        what=f"VMDK compressed grain {index}", media_size=self.size,
                        media_offset=media)
        stored = self._pread(offset + 12, size, "compressed grain")
        inflater = zlib.decompressobj()
        try:
            data = inflater.decompress(stored, self.grain_bytes + 1)
        except zlib.error as exc:
            raise CorruptImageError(
                f"compressed grain {index} does not inflate ({exc})", path=self.where,
                offset=offset, media_offset=index * self.grain_bytes) from None
        if len(data) > self.grain_bytes:
            raise CorruptImageError(
                f"compressed grain {index} inflates to more than its {self.grain_bytes} bytes",
                path=self.where, offset=offset, media_offset=index * self.grain_bytes)
        return data.ljust(self.grain_bytes, b"\0")

    def truncation(self, start: int) -> Truncation | None:
        """This extent's file where cut short, its media counted from ``start`` (where the
        extent begins in the disk): every grain table read once (each was checked to lie in
        the file at open), each grain's place compared with the file's size. A compressed
        grain's stored length is in its marker, beside its data: only the one that starts
        last before the end of the file has its marker read."""
        scan = TruncationScan(self.path, self.file_size, start + self.size, SECTOR)
        bound = 12 + self.grain_bytes + GRAIN_OVERHEAD  # a compressed grain's largest
        for gt in range(len(self._gd)):
            table = self._table(gt)
            if table is None:
                continue
            first = gt * self._gtes
            for i, sector in enumerate(table):
                if sector > 1:
                    media = start + (first + i) * self.grain_bytes
                    scan.unit(sector * SECTOR, bound if self.compressed else self.grain_bytes,
                              media, self.grain_bytes, exact=not self.compressed)
        return scan.result(self._whole_marked)

    def _whole_marked(self, offset: int) -> bool:
        """Whether the compressed grain at ``offset`` lies whole in the file, by its marker."""
        if offset + 12 > self.file_size:
            return False
        _lba, size = struct.unpack("<QI", self._pread(offset, 12, "grain marker"))
        return offset + 12 + size <= self.file_size

    def read(self, offset: int, length: int) -> bytes:
        parts: list[bytes] = []
        while length > 0:
            index, inner = divmod(offset, self.grain_bytes)
            n = min(length, self.grain_bytes - inner)
            grain = self._grain(index)
            parts.append(bytes(n) if grain is None else grain[inner:inner + n])
            offset += n
            length -= n
        return b"".join(parts)

    @property
    def allocated_grains(self) -> int:
        """Grains stored in the file (every grain table read once, each checked at open)."""
        return self.grain_counts()[0]

    def grain_counts(self) -> tuple[int, int]:
        """(allocated, zeroed) grain-table entries, every table read once. Zeroed: entries of
        1, "zeroed grain" (QEMU writes them with ``zeroed_grain=on`` for ``write -z`` and
        discards, VMware for zeroed space), counted where the header sets the zeroed-grain
        flag. libvmdk reads such an entry as sector 1 (the header's and descriptor's bytes),
        so a disk holding them has QEMU, which reads them as zeros as this reader does, as
        its second reader."""
        allocated = zeroed = 0
        for gt in range(len(self._gd)):
            table = self._table(gt)
            if table is not None:
                ones = table.count(1)
                zeroed += ones
                allocated += len(table) - table.count(0) - ones
        return allocated, (zeroed if self.header.flags & FLAG_ZERO_GTE else 0)

    def _raw_table(self, sector: int, what: str) -> array[int]:
        """The grain table at ``sector``, read directly (never from the cache of the primary
        tables: the redundant copy is read for itself)."""
        table = array("I")
        table.frombytes(self._pread(sector * SECTOR, self._gtes * 4, what))
        if sys.byteorder == "big":
            table.byteswap()
        return table

    def header_check(self) -> ContainerCheck:
        """The header's own consistency: its line-end test bytes (there to catch a copy made
        in text mode, which rewrites line ends in the grains too) and a compression algorithm
        VMware defines (0 none, 1 deflate, the one compressed grains need). The reader reads
        compressed grains as deflate whatever the field says; a failed check says the header
        is not as written."""
        h, name = self.header, self.label
        what = "VMDK sparse extent header"
        if h.flags & FLAG_NEWLINE_TEST and h.line_ends != NEWLINE_CHARS:
            return ContainerCheck(what, False, f"{name}: the line-end test bytes (offset 73) are "
                                  f"{h.line_ends.hex(' ')}, not {NEWLINE_CHARS.hex(' ')}: a "
                                  "text-mode copy or damage")
        if h.compress_algorithm not in (0, 1) or (h.flags & FLAG_COMPRESSED
                                                  and h.compress_algorithm != 1):
            return ContainerCheck(what, False, f"{name}: compression algorithm "
                                  f"{h.compress_algorithm} (offset 77) with flags {h.flags:#x}; "
                                  "VMware defines 0 (none) and 1 (deflate, for compressed "
                                  "grains)")
        return ContainerCheck(what, True, f"{name}: line-end test bytes and compression "
                              "algorithm as VMware writes them")

    def redundant_check(self) -> ContainerCheck:
        """The grain directory and grain tables against their redundant copies, entry by entry.

        VMware (and qemu) write every grain-table update to both copies, so any entry on which
        they disagree is damage or tampering with the file's map of the media: the reader uses
        the primary copy only. One table of each copy is held at a time (2 KiB each); the
        redundant directory, like the primary one, is read whole after its span is checked
        against the file."""
        what = "VMDK redundant grain tables"
        h, name = self.header, self.label
        if not h.flags & FLAG_REDUNDANT_GT or not h.rgd_offset:
            return ContainerCheck(what, True, f"{name}: the header records no redundant grain "
                                  f"directory (flags {h.flags:#x}); nothing to compare")
        try:
            return self._compare_redundant(what)
        except CorruptImageError as exc:  # a copy's span lies past the end of the file
            return ContainerCheck(what, False, f"{name}: {exc}")

    def _compare_redundant(self, what: str) -> ContainerCheck:
        """Every difference counted, the first few named: one damaged table can differ in all
        its 512 entries, and the detail stays one readable line."""
        h, name = self.header, self.label
        rgd = array("I")
        rgd.frombytes(self._pread(h.rgd_offset * SECTOR, len(self._gd) * 4,
                                  "redundant grain directory"))
        if sys.byteorder == "big":
            rgd.byteswap()
        differences: list[str] = []
        count = 0
        for difference in self._differences(rgd):
            count += 1
            if len(differences) < REPORTED_DIFFERENCES:
                differences.append(difference)
        where = (f"grain directory at file offset {h.gd_offset * SECTOR}, redundant one at "
                 f"{h.rgd_offset * SECTOR}")
        if count:
            more = f"; {count - len(differences)} more" if count > len(differences) else ""
            return ContainerCheck(what, False, f"{name}: {count} grain-table entries differ "
                                  f"from their redundant copy ({where}): "
                                  f"{'; '.join(differences)}{more}")
        return ContainerCheck(what, True, f"{name}: the grain directory's {len(self._gd)} "
                              f"entries and their grain tables agree with the redundant copy "
                              f"({where})")

    def _differences(self, rgd: array[int]) -> Iterator[str]:
        """Each directory or table entry on which the two copies disagree, in grain order,
        said with its grain, media offset and both file offsets; one pair of tables at a
        time."""
        for gt, (primary, redundant) in enumerate(zip(self._gd, rgd, strict=True)):
            if not primary and not redundant:
                continue
            first = gt * self._gtes
            if not primary or not redundant:
                yield (f"grain table {gt} (grains {first}-{first + self._gtes - 1}, media "
                       f"offset {first * self.grain_bytes}): the directory records it at "
                       f"sector {primary}, the redundant directory at sector {redundant}")
                continue
            ours = self._raw_table(primary, f"grain table {gt}")
            theirs = self._raw_table(redundant, f"redundant grain table {gt}")
            if ours == theirs:
                continue
            for i, (a, b) in enumerate(zip(ours, theirs, strict=True)):
                if a != b:
                    grain = first + i
                    yield (f"grain {grain} (media offset {grain * self.grain_bytes}): sector "
                           f"{a} in the grain table at file offset {primary * SECTOR + 4 * i}, "
                           f"sector {b} in its redundant copy at file offset "
                           f"{redundant * SECTOR + 4 * i}")

    def close(self) -> None:
        os.close(self._fd)


def vmdk_checks(path: Path) -> tuple[ContainerCheck, ...]:
    """What a hosted sparse extent records about itself: its header's line-end test bytes and
    compression algorithm (:meth:`SparseExtent.header_check`), and its redundant grain
    directory and tables, which must match the primary ones the reader follows. A file that
    is no sparse extent (a descriptor, a flat extent) records nothing to check."""
    if not read_head(path, len(MAGIC)).startswith(MAGIC):
        return ()
    extent = SparseExtent(path)
    try:
        return (extent.header_check(), extent.redundant_check())
    finally:
        extent.close()


class VmdkStream(ImageStream):
    """The media of a VMDK: its extents one after the other."""

    alignment = SECTOR

    def __init__(self, path: Path, descriptor: Descriptor, extents: list[ExtentReader],
                 parent: VmdkStream | None = None) -> None:
        self.path = path
        self.descriptor = descriptor
        self._extents = extents
        self._starts: list[int] = []
        #: The parent disk a child reads its unallocated grains from, and the chain's files.
        self.parent = parent
        self.parents: tuple[Path, ...] = (
            () if parent is None else (parent.path, *parent.parents))
        total = 0
        for extent in extents:
            self._starts.append(total)
            if isinstance(extent, SESparseExtent) and parent is not None:
                extent.backing = self._backing(total)
            total += extent.size
        super().__init__(total)

    def _backing(self, start: int) -> Callable[[int, int], bytes]:
        """The parent's media from byte ``start`` on; past the parent's end zeros, as QEMU
        reads a backing disk smaller than its child."""
        parent = self.parent
        assert parent is not None

        def read(offset: int, length: int) -> bytes:
            data = parent.pread(start + offset, length)
            return data + bytes(length - len(data))

        return read

    def _read_aligned(self, offset: int, length: int) -> bytes:
        parts: list[bytes] = []
        while length > 0:
            i = bisect.bisect_right(self._starts, offset) - 1
            extent = self._extents[i]
            inner = offset - self._starts[i]
            n = min(length, extent.size - inner)
            parts.append(extent.read(inner, n))
            offset += n
            length -= n
        return b"".join(parts)

    def truncation(self) -> list[Truncation]:
        """Every sparse extent of this disk whose file is cut short (its own media only: a
        parent's files are not walked)."""
        found = (extent.truncation(start) for extent, start in zip(self._extents, self._starts,
                                                                     strict=True)
                 if isinstance(extent, SparseExtent))
        return [t for t in found if t is not None]

    @property
    def files(self) -> tuple[Path, ...]:
        seen: list[Path] = [self.path]
        for extent in self._extents:
            seen.extend(f for f in extent.files if f not in seen)
        if self.parent is not None:
            seen.extend(f for f in self.parent.files if f not in seen)
        return tuple(seen)

    def close(self) -> None:
        if not self.closed:
            for extent in self._extents:
                extent.close()
            if self.parent is not None:
                self.parent.close()
        super().close()

    @property
    def info(self) -> StreamInfo:
        details: dict[str, object] = {
            "create_type": self.descriptor.create_type,
            "extents": [{"kind": e.kind, "sectors": e.sectors, "file": e.file}
                        for e in self.descriptor.extents],
        }
        sparse = [e for e in self._extents if isinstance(e, SparseExtent)]
        if sparse:
            details["grain_size"] = sparse[0].grain_bytes
            counts = [e.grain_counts() for e in sparse]
            details["allocated_grains"] = sum(allocated for allocated, _ in counts)
            zeroed = sum(zeroed for _, zeroed in counts)
            if zeroed:
                details["zeroed_grains"] = zeroed
            details["compressed"] = any(e.compressed for e in sparse)
        if any(isinstance(e, SESparseExtent) for e in self._extents):
            details["sesparse"] = True
        if self.parents:
            details["parents"] = [str(p) for p in self.parents]
        return StreamInfo(format="vmdk", files=self.files, media_size=self.size,
                          sector_size=self.sector_size, details=details)


def _open_extent(folder: Path, extent: Extent) -> ExtentReader:
    size = extent.sectors * SECTOR
    if extent.kind == "ZERO":
        return ZeroExtent(size)
    if extent.access == "NOACCESS":
        raise UnsupportedFormatError(f"VMDK extent {extent.file!r} is marked NOACCESS")
    path = confine_part(folder, extent.file, what="VMDK extent file")
    if extent.kind in ("FLAT", "VMFS"):
        return FlatExtent(path, size, extent.offset)
    if extent.kind == "SPARSE":
        return SparseExtent(path, size)
    if extent.kind == "SESPARSE":
        return SESparseExtent(path, size)
    raise UnsupportedFormatError(f"VMDK extent type {extent.kind} is not supported")


def _open_parent(path: Path, descriptor: Descriptor, chain: tuple[Path, ...]) -> VmdkStream:
    """The parent a child's descriptor names (``parentFileNameHint``), opened with its own
    parents; its CID must be the ``parentCID`` the child records."""
    from bitwitness.images.libyal import find_parent

    hint = descriptor.values.get("parentFileNameHint", "")
    if not hint:
        raise CorruptImageError("a child VMDK whose descriptor names no parent "
                                "(parentFileNameHint)", path=path)
    parent_path = find_parent(path, hint, [*chain, path])
    parent = open_vmdk(parent_path, (*chain, path))
    want = _cid(descriptor.values.get("parentCID", ""))
    got = _cid(parent.descriptor.values.get("CID", ""))
    if got is None or got != want:
        parent.close()
        shown = "missing" if got is None else f"{got:08x}"
        raise CorruptImageError(f"{parent_path.name} is not this VMDK's parent (its CID is "
                                f"{shown}, the child records parentCID "
                                f"{descriptor.values.get('parentCID', '')})", path=path)
    return parent


def _cid(text: str) -> int | None:
    """A descriptor's CID as a number: VMware writes eight hex digits, QEMU drops leading
    zeros (``CID=ce314c3``); ``None`` when it is no hex number."""
    return int(text, 16) if re.fullmatch(r"[0-9a-fA-F]{1,8}", text) else None


def _parent_of(path: Path, descriptor: Descriptor, extents: list[ExtentReader],
               chain: tuple[Path, ...]) -> VmdkStream | None:
    """A child's parent when this reader reads the child: one made of SEsparse extents only
    (a hosted sparse child reads its unallocated grains from its parent too, which
    :class:`SparseExtent` does not do: libvmdk reads those)."""
    if descriptor.values.get("parentCID", NO_PARENT).lower() == NO_PARENT:
        return None
    if not extents or not all(isinstance(e, SESparseExtent) for e in extents):
        raise UnsupportedFormatError(
            f"{path}: a child (snapshot) VMDK needs its parent; "
            "merge it with 'qemu-img convert -O raw' first")
    return _open_parent(path, descriptor, chain)


def open_vmdk(path: Path, chain: tuple[Path, ...] = ()) -> VmdkStream:
    """Open a VMDK read-only, from its descriptor or its (monolithic) sparse extent.

    The extents a descriptor names are read only from the descriptor's own folder (see
    :func:`bitwitness.evidence_io.confine_part`). ``chain``: the children above ``path`` when
    it is opened as a parent.
    """
    head = read_head(path, SECTOR)
    extents: list[ExtentReader] = []
    try:
        if head.startswith(MAGIC):
            sparse = SparseExtent(path)
            extents.append(sparse)
            text = sparse.descriptor_text()
            descriptor = parse_descriptor(text) if text else Descriptor({}, ())
            if len(descriptor.extents) > 1:
                raise UnsupportedFormatError(
                    f"{path}: this sparse extent is one of several; open the descriptor file")
        else:
            raw_text = read_head(path, MAX_DESCRIPTOR + 1)
            if len(raw_text) > MAX_DESCRIPTOR:
                raise UnsupportedFormatError(f"{path}: not a VMDK descriptor (too large)")
            descriptor = parse_descriptor(raw_text.decode("utf-8", errors="replace"))
            if not descriptor.extents:
                raise UnsupportedFormatError(f"{path}: VMDK descriptor names no extents")
            for extent in descriptor.extents:
                extents.append(_open_extent(path.parent, extent))
        total = sum(extent.size for extent in extents)
        if total > MAX_OFFSET:
            raise CorruptImageError(f"VMDK extents add up to {total} bytes, beyond any "
                                    "possible disk", path=path)
        parent = _parent_of(path, descriptor, extents, chain)
    except Exception:
        for reader in extents:
            reader.close()
        raise
    return VmdkStream(path, descriptor, extents, parent)


class VmdkFormat:
    name = "vmdk"

    def probe(self, path: Path, head: bytes) -> bool:
        return head.startswith(MAGIC) or head.lstrip().startswith(DESCRIPTOR_MARK)

    def claims_name(self, path: Path) -> bool:
        # "x-flat.vmdk" is the raw media of a flat VMDK: raw, the last resort, reads it as is.
        name = path.name.lower()
        return name.endswith(".vmdk") and not name.endswith("-flat.vmdk")

    def files(self, path: Path) -> list[Path]:
        with open_vmdk(path) as stream:
            return list(stream.files)

    def truncation(self, path: Path, stream: ImageStream) -> list[Truncation]:
        """The sparse extents cut short (:meth:`VmdkStream.truncation`)."""
        return stream.truncation() if isinstance(stream, VmdkStream) else []

    def open(self, path: Path) -> ImageStream:
        try:
            return open_vmdk(path)
        except CorruptImageError as exc:
            if exc.path is None:
                raise CorruptImageError(str(exc), path=path) from exc
            raise
        except OSError as exc:
            raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from exc


FORMAT = VmdkFormat()
