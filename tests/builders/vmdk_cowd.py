"""An ESX/ESXi ``vmfsSparse`` VMDK: a descriptor naming a COWD sparse extent (``NAME-delta.vmdk``),
alone or as the snapshot (redo log) of a ``vmfs`` flat base disk. No tool here writes one (QEMU
reads COWD extents but writes none), so it is built from the format's public description
(libvmdk's "VMware Virtual Disk (VMDK) format", section "The COWD sparse extent data file").

A COWD extent (little-endian) starts with a 2048-byte header: ``COWD``, version 1, flags 3, the
capacity in sectors, the grain size in sectors, the grain directory's sector, its number of
entries and the next free sector; a root extent then gives its geometry, and every extent its
generation, name and description. Each directory entry is the sector of a grain table of 4096
32-bit entries, each the sector of one grain; 0 is a grain (or a table of grains) never written,
read from the parent disk, or as zeros without one.
"""

from __future__ import annotations

import struct
from pathlib import Path

SECTOR = 512
GTES = 4096
HEADER_SECTORS = 4  # 2048 bytes


def cowd_extent(media: bytes, grain_sectors: int, written: list[tuple[int, int]]) -> bytes:
    """A COWD extent of ``len(media)`` bytes storing the grains that hold any byte of the
    ``written`` (offset, length) ranges of ``media``; every other grain is left unallocated."""
    assert len(media) % SECTOR == 0
    capacity = len(media) // SECTOR
    grain = grain_sectors * SECTOR
    grains = -(-capacity // grain_sectors)
    tables = -(-grains // GTES)
    gd_sectors = -(-4 * tables // SECTOR)
    gt_sectors = 4 * GTES // SECTOR
    stored = sorted({g for off, n in written for g in range(off // grain, -(-(off + n) // grain))})
    used_tables = sorted({g // GTES for g in stored})
    gd_at = HEADER_SECTORS
    next_free = gd_at + gd_sectors
    gd = [0] * tables
    for t in used_tables:
        gd[t] = next_free
        next_free += gt_sectors
    gts = {t: [0] * GTES for t in used_tables}
    body = bytearray()
    data_at = next_free
    for g in stored:
        gts[g // GTES][g % GTES] = next_free
        body += media[g * grain : (g + 1) * grain].ljust(grain, b"\0")
        next_free += grain_sectors
    header = bytearray(HEADER_SECTORS * SECTOR)
    struct.pack_into("<4sIIIIIII", header, 0, b"COWD", 1, 3, capacity, grain_sectors, gd_at,
                     tables, next_free)
    struct.pack_into("<III", header, 32, capacity // (16 * 63) or 1, 16, 63)
    struct.pack_into("<I", header, 1060, 1)  # generation
    out = bytearray(header)
    out += struct.pack(f"<{tables}I", *gd).ljust(gd_sectors * SECTOR, b"\0")
    for t in used_tables:
        out += struct.pack(f"<{GTES}I", *gts[t])
    assert len(out) == data_at * SECTOR
    return bytes(out + body)


def descriptor(extent: str, sectors: int, kind: str, *, create_type: str, cid: int,
               parent_cid: int = 0xFFFFFFFF, parent: str | None = None) -> str:
    """A descriptor as ESXi writes it: one extent, the DDB with an ESX adapter type."""
    hint = f'parentFileNameHint="{parent}"\n' if parent else ""
    return ("# Disk DescriptorFile\nversion=1\nencoding=\"UTF-8\"\n"
            f"CID={cid:08x}\nparentCID={parent_cid:08x}\nisNativeSnapshot=\"no\"\n"
            f"createType=\"{create_type}\"\n{hint}\n# Extent description\n"
            f"RW {sectors} {kind} \"{extent}\"\n\n# The Disk Data Base\n#DDB\n\n"
            'ddb.adapterType = "lsilogic"\nddb.virtualHWVersion = "13"\n')


def build_vmfs_sparse(folder: Path, name: str, media: bytes, *, grain_sectors: int = 1,
                      written: list[tuple[int, int]] | None = None,
                      parent: Path | None = None, parent_cid: int = 0xFFFFFFFF) -> Path:
    """``folder/NAME.vmdk`` (createType vmfsSparse) and ``folder/NAME-delta.vmdk`` (COWD).
    Without ``parent`` every non-zero grain of ``media`` is stored; with one (a descriptor, its
    CID ``parent_cid``) only the ``written`` ranges are, the rest reads from the parent."""
    if written is None:
        grain = grain_sectors * SECTOR
        written = [(o, grain) for o in range(0, len(media), grain) if any(media[o : o + grain])]
    delta = folder / f"{name}-delta.vmdk"
    delta.write_bytes(cowd_extent(media, grain_sectors, written))
    path = folder / f"{name}.vmdk"
    path.write_text(descriptor(delta.name, len(media) // SECTOR, "VMFSSPARSE",
                               create_type="vmfsSparse", cid=0x2B1C0DE5, parent_cid=parent_cid,
                               parent=parent.name if parent else None))
    return path


def build_vmfs_flat(folder: Path, name: str, media: bytes, cid: int = 0x0BA5EC1D) -> Path:
    """``folder/NAME.vmdk`` (createType vmfs) and its flat extent ``NAME-flat.vmdk``."""
    flat = folder / f"{name}-flat.vmdk"
    flat.write_bytes(media)
    path = folder / f"{name}.vmdk"
    path.write_text(descriptor(flat.name, len(media) // SECTOR, "VMFS", create_type="vmfs",
                               cid=cid))
    return path
