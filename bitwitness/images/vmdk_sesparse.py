"""VMDK SEsparse ("space-efficient sparse") extents: ESXi 6.5+ (VMFS6) snapshots.

VMware publishes no specification of SEsparse; the public description is QEMU's
``block/vmdk.c`` (read-only support since QEMU 4.1), which this module follows, learnt from and
written anew. An SEsparse extent is a child: it holds the grains written since the snapshot and
reads every other grain from its parent (the disk its descriptor's ``parentFileNameHint``
names). All offsets and sizes in the structures are 512-byte sectors; numbers little-endian.

* *Constant header* (sector 0; 26 64-bit numbers, then zeros): magic ``0xCAFEBABE``, version
  ``0x200000001`` (2.1), capacity, grain size (8 sectors: 4 KiB grains), grain table size
  (64 sectors: 4096 entries), flags (0), four reserved numbers, then the offset and size of the
  volatile header, the journal header, the journal, the grain directory, the grain tables, the
  free bitmap, the backmap and the grains area.
* *Volatile header*: magic ``0xCAFECAFE``, free grain-table number, next transaction number,
  and a flag saying the journal must be replayed (a snapshot not closed cleanly: its tables
  are not to be trusted until the journal is applied, which BitWitness does not do).
* *Grain directory* (GD) entries are 64-bit: 0 for a grain table never allocated (its 16 MiB of
  media read from the parent), else ``0x1000_0000`` in the top 32 bits and, below, the table's
  number in the grain-tables area.
* *Grain table* (GT) entries are 64-bit with their kind in the top four bits: 0 unallocated
  (the whole entry 0: the parent's grain), 1 unmapped by the guest (SCSI UNMAP) and 2 a zero
  grain (both read as zeros), 3 allocated: the grain's number in the grains area is the entry's
  bits 48-59 as its low 12 bits and bits 0-47 above them (QEMU's reading; any other kind is
  corruption).

Bounds: the header's grain and table sizes are the only ones QEMU and ESXi use (anything else
is refused by name), the part of the grain directory the capacity needs must lie in the file
(so 8 bytes of file cover at most 16 MiB of media), every grain table and grain must lie
in its declared area and in the file, and at most :data:`GT_CACHE` tables (32 KiB each) are
held.
"""

from __future__ import annotations

import os
import struct
import sys
from array import array
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bitwitness.errors import CorruptImageError, NoReaderError
from bitwitness.evidence_io import MAX_OFFSET, check_span, open_readonly, pread_checked

SECTOR = 512
MAGIC = 0xCAFEBABE
VERSION = 0x2_0000_0001
VOLATILE_MAGIC = 0xCAFECAFE
#: The extent's first bytes: the constant header's magic as a little-endian 64-bit number.
HEAD = MAGIC.to_bytes(8, "little")
#: The constant header: 26 little-endian 64-bit fields, then 304 bytes of zeros.
CONST_HEADER = struct.Struct("<26Q304x")
#: The volatile header: magic, free GT number, next transaction number, replay-journal flag.
VOLATILE_HEADER = struct.Struct("<4Q480x")
#: The only grain size (sectors) and grain-table size (sectors) ESXi writes and QEMU reads.
GRAIN_SECTORS = 8
GT_SECTORS = 64
GTES_PER_GT = GT_SECTORS * SECTOR // 8
GRAIN_BYTES = GRAIN_SECTORS * SECTOR
#: Media one grain table covers (16 MiB).
GT_COVERAGE = GTES_PER_GT * GRAIN_BYTES
#: Grain tables kept decoded (32 KiB each).
GT_CACHE = 64
GD_ALLOCATED = 0x1000_0000
KIND_UNALLOCATED = 0
KIND_UNMAPPED = 1
KIND_ZERO = 2
KIND_ALLOCATED = 3

#: Reads a span of the extent's media from its parent (extent-relative byte offset, length).
Backing = Callable[[int, int], bytes]


@dataclass(frozen=True)
class SESparseHeader:
    """The constant header's fields (sizes and offsets in sectors)."""

    capacity: int
    grain_size: int
    grain_table_size: int
    flags: int
    reserved: tuple[int, int, int, int]
    volatile_header: tuple[int, int]
    journal_header: tuple[int, int]
    journal: tuple[int, int]
    grain_dir: tuple[int, int]
    grain_tables: tuple[int, int]
    free_bitmap: tuple[int, int]
    backmap: tuple[int, int]
    grains: tuple[int, int]


def unpack_const_header(data: bytes, path: Path | None = None) -> SESparseHeader:
    """The constant header, its magic and version checked; features BitWitness does not read
    (another grain or table size, flags) refused by name (:class:`NoReaderError`)."""
    if len(data) < CONST_HEADER.size:
        raise CorruptImageError("SEsparse constant header is truncated", path=path, offset=0)
    f = CONST_HEADER.unpack(data[:CONST_HEADER.size])
    if f[0] != MAGIC:
        raise CorruptImageError(f"no SEsparse constant header (magic {f[0]:#x}, expected "
                                f"{MAGIC:#x})", path=path, offset=0)
    pairs = [(f[i], f[i + 1]) for i in range(10, 26, 2)]
    header = SESparseHeader(f[2], f[3], f[4], f[5], (f[6], f[7], f[8], f[9]), *pairs)
    if f[1] != VERSION:
        raise NoReaderError(f"{path}: VMDK SEsparse extent of version {f[1]:#x}; BitWitness "
                            f"reads version {VERSION:#x} (2.1) only")
    if header.grain_size != GRAIN_SECTORS or header.grain_table_size != GT_SECTORS:
        raise NoReaderError(
            f"{path}: VMDK SEsparse extent with grains of {header.grain_size} sectors and "
            f"grain tables of {header.grain_table_size} sectors; BitWitness reads the "
            f"{GRAIN_SECTORS} and {GT_SECTORS} ESXi writes")
    if header.flags or any(header.reserved):
        raise NoReaderError(f"{path}: VMDK SEsparse extent with flags {header.flags:#x} or "
                            "reserved fields set, a variant BitWitness does not read")
    if header.capacity > MAX_OFFSET // SECTOR:
        raise CorruptImageError(f"SEsparse header declares {header.capacity} sectors, beyond "
                                "any possible disk", path=path, offset=16)
    return header


class SESparseExtent:
    """One SEsparse extent file, read-only; grains it does not hold come from ``backing``.

    ``backing`` (set by the stream that owns the extent) reads the parent's media for the
    extent's span; ``None`` (a disk without a parent) reads those grains as zeros, as VMware
    and QEMU do."""

    kind = "SESPARSE"

    def __init__(self, path: Path, size: int | None = None) -> None:
        self.path = path
        self.files: tuple[Path, ...] = (path,)
        self.backing: Backing | None = None
        self._fd = open_readonly(path)
        try:
            self._load(size)
        except Exception:
            os.close(self._fd)
            raise

    def _pread(self, offset: int, length: int, what: str) -> bytes:
        return pread_checked(self._fd, offset, length, self.file_size, path=self.path,
                             what=f"SEsparse {what}")

    def _load(self, size: int | None) -> None:
        self.file_size = os.fstat(self._fd).st_size
        h = self.header = unpack_const_header(self._pread(0, SECTOR, "constant header"),
                                              self.path)
        if size is not None and size > h.capacity * SECTOR:
            raise CorruptImageError(
                f"the descriptor gives this SEsparse extent {size} bytes; its header's "
                f"capacity is {h.capacity * SECTOR}", path=self.path)
        self.size = h.capacity * SECTOR if size is None else size
        magic, _free, _txn, replay = VOLATILE_HEADER.unpack(
            self._pread(h.volatile_header[0] * SECTOR, SECTOR, "volatile header"))
        if magic != VOLATILE_MAGIC:
            raise CorruptImageError(f"SEsparse volatile header has magic {magic:#x}, expected "
                                    f"{VOLATILE_MAGIC:#x}", path=self.path,
                                    offset=h.volatile_header[0] * SECTOR)
        if replay:
            raise NoReaderError(
                f"{self.path}: VMDK SEsparse extent whose journal needs replaying (the "
                "snapshot was not closed cleanly); BitWitness does not replay SEsparse "
                "journals, so its grain tables cannot be trusted as they are")
        self._gt_count = -(-self.size // GT_COVERAGE)
        if h.grain_dir[1] * SECTOR // 8 < self._gt_count:
            raise CorruptImageError(
                f"SEsparse grain directory holds {h.grain_dir[1] * SECTOR // 8} entries; the "
                f"capacity needs {self._gt_count}", path=self.path,
                offset=h.grain_dir[0] * SECTOR)
        self._gd_at = h.grain_dir[0] * SECTOR
        # The directory is read an entry at a time, on demand; the part the media needs must
        # still lie in the file, which ties the media declared to the file's size.
        check_span(self._gd_at, self._gt_count * 8, self.file_size, path=self.path,
                   what="SEsparse grain directory")
        self._tables_in_area = h.grain_tables[1] // GT_SECTORS
        self._grains_in_area = h.grains[1] // GRAIN_SECTORS
        self._gt_cache: OrderedDict[int, array[int] | None] = OrderedDict()

    def _table(self, gt: int) -> array[int] | None:
        """Grain table ``gt``'s entries, or ``None`` when the directory has none."""
        if gt in self._gt_cache:
            self._gt_cache.move_to_end(gt)
            return self._gt_cache[gt]
        at = self._gd_at + gt * 8
        entry = int.from_bytes(self._pread(at, 8, "grain directory entry"), "little")
        table: array[int] | None = None
        if entry:
            number = entry & 0xFFFF_FFFF
            if entry >> 32 != GD_ALLOCATED or number >= self._tables_in_area:
                raise CorruptImageError(
                    f"SEsparse grain directory entry {gt} is {entry:#018x}: not a grain table "
                    f"of the {self._tables_in_area} the grain-tables area holds",
                    path=self.path, offset=at, media_offset=gt * GT_COVERAGE)
            table = array("Q")
            table.frombytes(self._pread(
                (self.header.grain_tables[0] + number * GT_SECTORS) * SECTOR,
                GTES_PER_GT * 8, f"grain table {number}"))
            if sys.byteorder == "big":
                table.byteswap()
        self._gt_cache[gt] = table
        if len(self._gt_cache) > GT_CACHE:
            self._gt_cache.popitem(last=False)
        return table

    def _locate(self, grain: int) -> tuple[int, int]:
        """(kind, byte offset in the file of an allocated grain, else 0) of media grain
        ``grain``; a grain of a table never allocated is ``(KIND_UNALLOCATED, -1)``."""
        table = self._table(grain // GTES_PER_GT)
        if table is None:
            return KIND_UNALLOCATED, -1
        entry = table[grain % GTES_PER_GT]
        kind = entry >> 60
        if kind == KIND_ALLOCATED:
            number = ((entry >> 48) & 0xFFF) | ((entry & 0xFFFF_FFFF_FFFF) << 12)
            if number >= self._grains_in_area:
                raise CorruptImageError(
                    f"SEsparse grain {grain} is stored as grain {number} of a grains area of "
                    f"{self._grains_in_area}", path=self.path,
                    media_offset=grain * GRAIN_BYTES)
            return kind, (self.header.grains[0] + number * GRAIN_SECTORS) * SECTOR
        if kind in (KIND_UNMAPPED, KIND_ZERO) or entry == 0:
            return kind, 0
        raise CorruptImageError(f"SEsparse grain table entry {entry:#018x} of grain {grain} "
                                "has no known kind", path=self.path,
                                media_offset=grain * GRAIN_BYTES)

    def read(self, offset: int, length: int) -> bytes:
        """Media bytes: runs of grains of one kind (stored grains contiguous in the file) are
        read with one call each."""
        parts: list[bytes] = []
        run_kind, run_start, run_file, run_length = -1, offset, 0, 0
        while length > 0:
            grain, inner = divmod(offset, GRAIN_BYTES)
            n = min(length, GRAIN_BYTES - inner)
            kind, at = self._locate(grain)
            if at < 0:  # no grain table: the rest of its 16 MiB in one step
                n, at = min(length, GT_COVERAGE - offset % GT_COVERAGE), 0
            if kind == KIND_UNMAPPED:
                kind = KIND_ZERO
            contiguous = kind != KIND_ALLOCATED or at + inner == run_file + run_length
            if kind == run_kind and contiguous:
                run_length += n
            else:
                if run_length:
                    parts.append(self._run(run_kind, run_start, run_file, run_length))
                run_kind, run_start, run_file, run_length = kind, offset, at + inner, n
            offset += n
            length -= n
        if run_length:
            parts.append(self._run(run_kind, run_start, run_file, run_length))
        return b"".join(parts)

    def _run(self, kind: int, media: int, at: int, length: int) -> bytes:
        if kind == KIND_ALLOCATED:
            return self._pread(at, length, "grain")
        if kind == KIND_UNALLOCATED and self.backing is not None:
            return self.backing(media, length)
        return bytes(length)

    def close(self) -> None:
        os.close(self._fd)
