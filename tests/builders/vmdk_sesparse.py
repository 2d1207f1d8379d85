"""An ESXi 6.5+ (VMFS6) ``seSparse`` snapshot: a descriptor (``createType="seSparse"``) naming
an SEsparse extent (``NAME-sesparse.vmdk``) over a parent disk. No tool here writes one (QEMU
reads SEsparse but writes none), so it is built from the format's one public description:
QEMU's ``block/vmdk.c`` (the ``VMDKSESparseConstHeader``/``VMDKSESparseVolatileHeader``
structures, the header checks of its first submission, and ``get_cluster_offset``'s reading of
64-bit directory and table entries). Written independently of BitWitness' reader.

Layout (offsets and sizes in 512-byte sectors, as ESXi lays it out and QEMU's first patch
checked): constant header at 0 (magic ``0xCAFEBABE``, version ``0x200000001``, capacity,
grain size 8, grain table size 64, flags 0, four reserved zeros, then offset/size pairs),
volatile header at 1 (magic ``0xCAFECAFE``, ..., replay-journal flag), journal header at 2
(2 sectors), journal at 2048 (2048), grain directory at 4096 (its size rounded up to 2048),
then the grain tables, the free bitmap, the backmap (each rounded up to 2048) and the grains
area (``capacity`` sectors). A directory entry is ``0x10000000 << 32 | table number``; a table
entry ``0`` (unallocated: the parent's grain), ``1 << 60`` (unmapped), ``2 << 60`` (zero) or
``3 << 60 | (n & 0xfff) << 48 | n >> 12`` for grain ``n`` of the grains area.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

SECTOR = 512
GRAIN = 4096
GTES = 4096
GT_SECTORS = 64
COVERAGE = GTES * GRAIN  # media per grain table: 16 MiB
ALIGN = 2048  # sectors: ESXi rounds every area to 1 MiB

UNMAPPED = "unmapped"
ZERO = "zero"


def _round(sectors: int) -> int:
    return -(-sectors // ALIGN) * ALIGN


@dataclass
class Layout:
    """Where each area lies (sectors), computed from the capacity as ESXi does."""

    capacity: int
    gd: tuple[int, int] = (0, 0)
    gts: tuple[int, int] = (0, 0)
    bitmap: tuple[int, int] = (0, 0)
    backmap: tuple[int, int] = (0, 0)
    grains: tuple[int, int] = (0, 0)
    tables: int = 0
    #: Every area right after the one before, unpadded (the fuzz seed: QEMU does not require
    #: ESXi's 1 MiB alignment, and a fuzz input must stay small).
    compact: bool = False

    def __post_init__(self) -> None:
        self.tables = -(-self.capacity * SECTOR // COVERAGE)
        gd_sectors = -(-self.tables * 8 // SECTOR)
        if self.compact:
            self.gd = (2, gd_sectors)
            self.gts = (2 + gd_sectors, self.tables * GT_SECTORS)
            self.bitmap = (self.gts[0] + self.gts[1], 0)
            self.backmap = (self.bitmap[0], 0)
            self.grains = (self.bitmap[0], self.capacity)
            return
        self.gd = (4096, _round(gd_sectors))
        self.gts = (self.gd[0] + self.gd[1], _round(self.tables * GT_SECTORS))
        bitmap_bytes = -(-self.capacity // 8 // 8)
        self.bitmap = (self.gts[0] + self.gts[1], _round(-(-bitmap_bytes // SECTOR)))
        self.backmap = (self.bitmap[0] + self.bitmap[1], self.gts[1])
        self.grains = (self.backmap[0] + self.backmap[1], self.capacity)


def sesparse_extent(capacity_bytes: int, grains: dict[int, bytes | str], *,
                    order: list[int] | None = None, replay_journal: int = 0,
                    header_fields: dict[int, int] | None = None,
                    compact: bool = False) -> bytes:
    """The extent's bytes. ``grains`` maps a media grain number (4 KiB) to its 4096 bytes
    (stored), :data:`ZERO` or :data:`UNMAPPED`; every other grain is unallocated. Stored grains
    take grains-area numbers in ``order`` (default: the order of ``grains``), so that the
    area's order differs from the media's. ``header_fields`` overrides constant-header fields
    by index (hostile variants); ``replay_journal`` sets the volatile header's flag;
    ``compact`` packs the areas without ESXi's padding (see :class:`Layout`)."""
    assert capacity_bytes % COVERAGE == 0
    lay = Layout(capacity_bytes // SECTOR, compact=compact)
    stored = [g for g, v in grains.items() if isinstance(v, bytes)]
    numbers = order if order is not None else list(range(len(stored)))
    assert len(numbers) == len(stored)
    tables: dict[int, list[int]] = {}
    out = bytearray()

    def put(sector: int, data: bytes, at: int = 0) -> None:
        start = sector * SECTOR + at
        end = start + len(data)
        if len(out) < end:
            out.extend(bytes(end - len(out)))
        out[start:end] = data

    for g, value in grains.items():
        assert 0 <= g < capacity_bytes // GRAIN, g
        table = tables.setdefault(g // GTES, [0] * GTES)
        if isinstance(value, bytes):
            assert len(value) == GRAIN
            n = numbers[stored.index(g)]
            table[g % GTES] = 3 << 60 | (n & 0xFFF) << 48 | n >> 12
            put(lay.grains[0] + n * 8, value)
        else:
            table[g % GTES] = (2 if value == ZERO else 1) << 60
    # Grain tables take table numbers in reverse media order (the directory maps them).
    for number, t in enumerate(sorted(tables, reverse=True)):
        put(lay.gd[0], struct.pack("<Q", 0x1000_0000 << 32 | number), at=t * 8)
        put(lay.gts[0] + number * GT_SECTORS, struct.pack(f"<{GTES}Q", *tables[t]))
    journal = (0, 0, 0, 0) if compact else (2, 2, 2048, 2048)
    fields = [0xCAFEBABE, 0x2_0000_0001, lay.capacity, 8, GT_SECTORS, 0, 0, 0, 0, 0,
              1, 1, *journal, *lay.gd, *lay.gts, *lay.bitmap, *lay.backmap, *lay.grains]
    for index, value in (header_fields or {}).items():
        fields[index] = value
    put(0, struct.pack("<26Q", *fields).ljust(SECTOR, b"\0"))
    put(1, struct.pack("<4Q", 0xCAFECAFE, 0, 1, replay_journal).ljust(SECTOR, b"\0"))
    # The file reaches at least the end of the backmap, as ESXi preallocates the metadata.
    put(lay.grains[0], b"")
    return bytes(out)


def descriptor(extent: str, sectors: int, *, cid: int, parent_cid: int,
               parent: str | None) -> str:
    """The descriptor ESXi writes for an SEsparse snapshot."""
    hint = f'parentFileNameHint="{parent}"\n' if parent else ""
    return ("# Disk DescriptorFile\nversion=1\nencoding=\"UTF-8\"\n"
            f"CID={cid:08x}\nparentCID={parent_cid:08x}\nisNativeSnapshot=\"no\"\n"
            f"createType=\"seSparse\"\n{hint}\n# Extent description\n"
            f"RW {sectors} SESPARSE \"{extent}\"\n\n# The Disk Data Base\n#DDB\n\n"
            'ddb.adapterType = "lsilogic"\nddb.grain = "8"\n'
            'ddb.longContentID = "0123456789abcdef0123456789abcdef"\n'
            'ddb.virtualHWVersion = "14"\n')


def cid_of(vmdk: Path) -> int:
    """The CID a VMDK's descriptor records (a descriptor file, or a monolithic sparse file's
    embedded descriptor), as a snapshot's ``parentCID`` must repeat it."""
    head = vmdk.read_bytes()[: 1 << 20]
    start = head.find(b"CID=") + 4
    return int(head[start : head.index(b"\n", start)], 16)


def build_sesparse(folder: Path, name: str, capacity: int, grains: dict[int, bytes | str], *,
                   parent: Path | None, order: list[int] | None = None,
                   replay_journal: int = 0, header_fields: dict[int, int] | None = None,
                   cid: int = 0x5E5BA55E) -> Path:
    """``folder/NAME.vmdk`` and ``folder/NAME-sesparse.vmdk``: a snapshot of ``parent`` (its
    CID read from it), or a disk without a parent when ``parent`` is None."""
    extent = folder / f"{name}-sesparse.vmdk"
    extent.write_bytes(sesparse_extent(capacity, grains, order=order,
                                       replay_journal=replay_journal,
                                       header_fields=header_fields))
    path = folder / f"{name}.vmdk"
    path.write_text(descriptor(extent.name, capacity // SECTOR, cid=cid,
                               parent_cid=cid_of(parent) if parent else 0xFFFFFFFF,
                               parent=parent.name if parent else None))
    return path
