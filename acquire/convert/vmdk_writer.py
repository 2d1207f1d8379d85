"""VMDK writers: monolithicSparse (one file, zero grains left out) and monolithicFlat.

*Sparse* (the default) lays out, in 512-byte sectors::

    0                 header (KDMV)
    1 .. 20           embedded descriptor
    redundant GD, redundant GTs, GD, GTs
    overhead          (rounded up to a whole grain) the first grain
    ...               grains that hold any non-zero byte, in media order

The media size is known before the first byte, so every table has its place from the start and
the writer streams: grains are appended as they come, their table entries kept in memory (4 bytes
per 64 KiB grain) and written at :meth:`finish`. A grain of zeros is not stored at all (GT entry
0 reads as zeros), which is why an evidence copy of a mostly empty disk stays small. The last grain
is padded with zeros beyond the media; the descriptor's capacity stops readers at the media's end.

*Flat* writes ``BASE-flat.vmdk`` (the raw media, byte for byte) and a text descriptor
``BASE.vmdk`` that points to it.
"""

from __future__ import annotations

import os
import random
from array import array
from pathlib import Path

from bitwitness.acquire.convert.outputs import (
    FileSink,
    close_synced,
    create_output,
    pwrite_all,
    write_all,
)
from bitwitness.errors import UsageError
from bitwitness.images.vmdk import (
    FLAG_NEWLINE_TEST,
    FLAG_REDUNDANT_GT,
    SECTOR,
    SparseHeader,
    pack_header,
)

GRAIN_SECTORS = 128  #: 64 KiB grains, VMware's default
GTES_PER_GT = 512
DESCRIPTOR_SECTORS = 20
#: The largest capacity a hosted sparse extent addresses with 32-bit sector offsets.
MAX_SPARSE_SIZE = (2**32 - 1) * SECTOR


def ide_geometry(sectors: int) -> tuple[int, int, int]:
    """(cylinders, heads, sectors per track) as VMware writes them for an IDE disk."""
    return min(sectors // (16 * 63), 16383), 16, 63


def descriptor_text(*, sectors: int, create_type: str, extent_line: str,
                    comment: str = "") -> str:
    """The text descriptor: identity, the extent line, and the disk database (geometry)."""
    cylinders, heads, spt = ide_geometry(sectors)
    cid = f"{random.getrandbits(32) or 1:08x}"
    lines = [
        "# Disk DescriptorFile",
        "version=1",
        'encoding="UTF-8"',
        f"CID={cid}",
        "parentCID=ffffffff",
        f'createType="{create_type}"',
        "",
        "# Extent description",
        extent_line,
        "",
        "# The Disk Data Base",
        "#DDB",
        "",
        'ddb.virtualHWVersion = "4"',
        f'ddb.geometry.cylinders = "{cylinders}"',
        f'ddb.geometry.heads = "{heads}"',
        f'ddb.geometry.sectors = "{spt}"',
        'ddb.adapterType = "ide"',
    ]
    if comment:
        safe = comment.replace('"', "'").replace("\n", " ")
        lines.append(f'ddb.comment = "{safe}"')
    return "\n".join(lines) + "\n"


def _sectors_of(size: int, what: str) -> int:
    if size % SECTOR:
        raise UsageError(f"a VMDK holds whole 512-byte sectors; the media has {size} bytes")
    if size > MAX_SPARSE_SIZE and what == "sparse":
        raise UsageError(f"the media ({size} bytes) is too large for one sparse extent; "
                         "use the flat VMDK")
    return size // SECTOR


class VmdkSparseWriter:
    """Sink that writes a monolithicSparse ``BASE.vmdk``."""

    def __init__(self, path: Path, media_size: int, *, overwrite: bool = False,
                 comment: str = "") -> None:
        self.path = path
        self.media_size = media_size
        self.capacity = _sectors_of(media_size, "sparse")
        self.grain_bytes = GRAIN_SECTORS * SECTOR
        grains = -(-self.capacity // GRAIN_SECTORS)
        self.gt_count = max(1, -(-grains // GTES_PER_GT))
        gd_sectors = -(-self.gt_count * 4 // SECTOR)
        gt_sectors = GTES_PER_GT * 4 // SECTOR
        self.rgd_offset = 1 + DESCRIPTOR_SECTORS
        self.gd_offset = self.rgd_offset + gd_sectors + self.gt_count * gt_sectors
        end = self.gd_offset + gd_sectors + self.gt_count * gt_sectors
        self.overhead = -(-end // GRAIN_SECTORS) * GRAIN_SECTORS
        self._gd_sectors = gd_sectors
        self._gt_sectors = gt_sectors
        self._table = array("I", bytes(4 * self.gt_count * GTES_PER_GT))
        self._next_sector = self.overhead
        self._grain_index = 0
        self._pending = bytearray()
        # a bytearray: ``bytearray != memoryview`` is one memcmp, where bytes falls back to the
        # memoryview's element-by-element compare (~40x slower on every grain)
        self._zero = bytearray(self.grain_bytes)
        self._written = 0
        self.header = SparseHeader(
            capacity=self.capacity, grain_size=GRAIN_SECTORS, descriptor_offset=1,
            descriptor_size=DESCRIPTOR_SECTORS, gtes_per_gt=GTES_PER_GT,
            rgd_offset=self.rgd_offset, gd_offset=self.gd_offset, overhead=self.overhead,
            flags=FLAG_NEWLINE_TEST | FLAG_REDUNDANT_GT)
        text = descriptor_text(sectors=self.capacity, create_type="monolithicSparse",
                               extent_line=f'RW {self.capacity} SPARSE "{path.name}"',
                               comment=comment).encode()
        if len(text) > DESCRIPTOR_SECTORS * SECTOR:
            raise UsageError("the VMDK descriptor comment is too long")
        self._descriptor = text.ljust(DESCRIPTOR_SECTORS * SECTOR, b"\0")
        self._fd: int | None = create_output(path, overwrite=overwrite)
        # The header and descriptor first; tables at finish(); grains from the overhead on.
        pwrite_all(self._fd, pack_header(self.header) + self._descriptor, 0, path)
        pwrite_all(self._fd, bytes(0), self.overhead * SECTOR, path)

    @property
    def allocated_grains(self) -> int:
        return sum(1 for v in self._table if v)

    def _put_grain(self, grain: bytes | memoryview) -> None:
        assert self._fd is not None, "sink already closed"
        if self._zero != grain:
            self._table[self._grain_index] = self._next_sector
            pwrite_all(self._fd, bytes(grain), self._next_sector * SECTOR, self.path)
            self._next_sector += GRAIN_SECTORS
        self._grain_index += 1

    def write(self, data: bytes | memoryview) -> None:
        if self._written + len(data) > self.media_size:
            raise UsageError("more media than announced was written to the VMDK")
        self._written += len(data)
        view = memoryview(data)
        if self._pending:
            take = min(len(view), self.grain_bytes - len(self._pending))
            self._pending += view[:take]
            view = view[take:]
            if len(self._pending) < self.grain_bytes:
                return
            self._put_grain(bytes(self._pending))
            self._pending.clear()
        while len(view) >= self.grain_bytes:
            self._put_grain(view[: self.grain_bytes])
            view = view[self.grain_bytes :]
        self._pending += view

    def finish(self) -> list[Path]:
        assert self._fd is not None, "sink already closed"
        if self._written != self.media_size:
            self.abort()
            raise UsageError(
                f"VMDK incomplete: {self._written} of {self.media_size} bytes were written")
        if self._pending:
            self._put_grain(bytes(self._pending).ljust(self.grain_bytes, b"\0"))
            self._pending.clear()
        fd = self._fd
        for gd_offset in (self.rgd_offset, self.gd_offset):
            first_gt = gd_offset + self._gd_sectors
            gd = array("I", (first_gt + i * self._gt_sectors for i in range(self.gt_count)))
            pwrite_all(fd, gd.tobytes(), gd_offset * SECTOR, self.path)
            pwrite_all(fd, self._table.tobytes(), first_gt * SECTOR, self.path)
        # A file that ends in sparse grains must still reach its last grain's end.
        size = max(self._next_sector, self.overhead) * SECTOR

        os.ftruncate(fd, size)
        self._fd = None
        close_synced(fd, self.path)
        return [self.path]

    def abort(self) -> list[Path]:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        return [self.path]


def flat_name(path: Path) -> Path:
    """``x.vmdk`` -> ``x-flat.vmdk``, VMware's name for a flat extent."""
    return path.with_name(f"{path.stem}-flat.vmdk")


class VmdkFlatWriter:
    """Sink that writes ``BASE-flat.vmdk`` (raw media) and the descriptor ``BASE.vmdk``."""

    def __init__(self, path: Path, media_size: int, *, overwrite: bool = False,
                 comment: str = "") -> None:
        self.path = path
        self.media_size = media_size
        self.capacity = _sectors_of(media_size, "flat")
        self.data_path = flat_name(path)
        self._descriptor = descriptor_text(
            sectors=self.capacity, create_type="monolithicFlat",
            extent_line=f'RW {self.capacity} FLAT "{self.data_path.name}" 0',
            comment=comment).encode()
        # Claim the descriptor's name first, so an existing one is refused before any data.
        self._desc_fd: int | None = create_output(path, overwrite=overwrite)
        self._raw = FileSink(self.data_path, overwrite=overwrite)
        self._written = 0

    def write(self, data: bytes | memoryview) -> None:
        if self._written + len(data) > self.media_size:
            raise UsageError("more media than announced was written to the VMDK")
        self._raw.write(data)
        self._written += len(data)

    def finish(self) -> list[Path]:
        assert self._desc_fd is not None, "sink already closed"
        if self._written != self.media_size:
            self.abort()
            raise UsageError(
                f"VMDK incomplete: {self._written} of {self.media_size} bytes were written")
        files = self._raw.finish()
        fd, self._desc_fd = self._desc_fd, None
        write_all(fd, self._descriptor, self.path)
        close_synced(fd, self.path)
        return [self.path, *files]

    def abort(self) -> list[Path]:
        if self._desc_fd is not None:
            import os

            os.close(self._desc_fd)
            self._desc_fd = None
        return [self.path, *self._raw.abort()]
