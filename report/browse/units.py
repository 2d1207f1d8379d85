"""Partition tables counted in the media's own sector size (4096-byte logical sectors).

An MBR counts in logical sectors of the disk it is on. The Sleuth Kit reads an image in 512-byte
units unless told otherwise (``mmls -b 4096``), and pytsk3 cannot tell it; GPT it recognises in
any unit by itself, but an MBR on a disk of 4096-byte sectors it reads in 512-byte units: the
partitions start at an eighth of their offset and the table seems to run past the media's end.
When the image declares larger sectors (an E01's volume section, a VHDX's metadata, a block
device), the DOS rows are re-read in that unit here: the table's numbers stay, their unit
changes, and the unallocated gaps are computed again up to the media's last sector, as ``mmls``
computes them (gaps between the non-meta rows, meta rows first where starts tie).

Logical partitions are found by following extended boot records at offsets TSK computed in the
wrong unit, so a table with an extended partition is refused rather than shown wrongly.
"""

from __future__ import annotations

from dataclasses import dataclass

from bitwitness.errors import FileSystemError


@dataclass(frozen=True)
class Row:
    """A volume-system row before file systems are probed."""

    kind: str  #: "partition", "unallocated", "meta"
    start: int
    length: int
    description: str
    table: int = 0  #: which table of the chain it came from (0: the primary table)


def needs_rescaling(scheme: str, table_unit: int, media_sector: int) -> bool:
    return scheme == "dos" and media_sector > table_unit


def rescaled(rows: list[Row], media_sector: int, media_size: int) -> list[Row]:
    """``rows`` (a DOS table read in 512-byte units) in units of ``media_sector``."""
    if any(r.table > 0 for r in rows if r.kind != "unallocated"):
        raise FileSystemError(
            f"this DOS partition table has an extended partition on a media of {media_sector}"
            "-byte sectors; its logical partitions cannot be read here (read the primary "
            "partitions with --offset, or use 'mmls -b' on the raw media)")
    kept = [r for r in rows if r.kind != "unallocated"]
    last = media_size // media_sector - 1
    gaps: list[Row] = []
    cursor = 0
    for row in sorted((r for r in kept if r.kind == "partition"), key=lambda r: r.start):
        if row.start > cursor:
            gaps.append(Row("unallocated", cursor, row.start - cursor, "Unallocated"))
        cursor = max(cursor, row.start + row.length)
    if cursor <= last:
        gaps.append(Row("unallocated", cursor, last - cursor + 1, "Unallocated"))
    return sorted(kept + gaps, key=lambda r: r.start)
