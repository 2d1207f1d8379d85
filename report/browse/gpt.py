"""A GUID partition table read by our own code, where The Sleuth Kit refuses the whole table.

TSK checks every entry of a GPT against the image's size and gives up on the table when one
starts past the end ("Starting sector too large for image"), then on the backup header, which
sits in the disk's last sector. An image cut short (an acquisition stopped on a failing drive,
a split set missing its last segments, a download that ended early) is exactly that: its GPT
is whole at the start of the image, but TSK, and ``mmls``, see only the protective MBR, one
partition covering the disk, and every real partition and file system is lost.

Here the primary header (LBA 1, in 512- or 4096-byte sectors) is read as UEFI 2.x section 5.3
lays it out: signature ``EFI PART``, header CRC32, ``MyLBA`` 1, entries of 128 bytes or a
multiple of it, the entry array's CRC32. Only a header and table that check out are used (a
damaged one stays TSK's business and the MBR's), and the rows come out as TSK builds them for
a GPT it accepts (the same kinds, descriptions, slots and unallocated gaps, in its order), so
the table reads as ``mmls`` would print it if the image were whole; rows past the end are kept
and the volume tree counts what is missing of them.
"""

from __future__ import annotations

import struct
import uuid
import zlib

from bitwitness.report.browse.units import Row
from bitwitness.stream import ImageStream

SIGNATURE = b"EFI PART"
#: Sector sizes tried for the header's LBA 1.
SECTOR_SIZES = (512, 4096)
#: The most entries read (as TSK, 8192); 128 is what every tool writes.
MAX_ENTRIES = 8192
#: The largest entry read (UEFI: 128 * 2^n; every tool writes 128).
MAX_ENTRY_SIZE = 1024
_HEADER = struct.Struct("<8sIIIIQQQQ16sQIII")  # through the entry array's CRC32 (92 bytes)
_ENTRY = struct.Struct("<16s16sQQQ72s")


def read_gpt(stream: ImageStream) -> tuple[int, list[Row]] | None:
    """The sector size and the rows of the GPT at the start of ``stream``, or None when there
    is no primary GPT whose header and entry array check out."""
    for sector in SECTOR_SIZES:
        rows = _rows(stream, sector)
        if rows is not None:
            return sector, rows
    return None


def disk_sectors(stream: ImageStream, sector: int) -> int | None:
    """How many sectors the disk had that the primary GPT was written for (its backup header
    lies in the disk's last sector, ``AlternateLBA``), or None without a valid primary header.
    An image holding fewer was cut short, whether or not a partition reaches the missing part."""
    head = _header(stream, sector)
    return None if head is None else _HEADER.unpack_from(head)[6] + 1


def _header(stream: ImageStream, sector: int) -> bytes | None:
    """The primary GPT header in ``sector``-byte sectors, if its signature, size, own LBA and
    CRC32 check out."""
    head = stream.pread(sector, sector)
    if len(head) < _HEADER.size or head[:8] != SIGNATURE:
        return None
    _, _, size, crc, _, mine, *_ = _HEADER.unpack_from(head)
    if not _HEADER.size <= size <= sector or mine != 1:
        return None
    if zlib.crc32(head[:16] + b"\0\0\0\0" + head[20:size]) != crc:
        return None
    return head


def entries(stream: ImageStream) -> tuple[int, list[tuple[str, int, int]]] | None:
    """The sector size and the used entries of the primary GPT, each as (partition type GUID,
    first LBA, last LBA), for readers that go by type (the LDM partitions of a Windows
    dynamic disk: ldm.py); None where no header and entry array check out."""
    for sector in SECTOR_SIZES:
        found = _entries(stream, sector)
        if found is not None:
            return sector, [(str(uuid.UUID(bytes_le=kind)), first, last)
                            for kind, first, last, _, _ in found[1]]
    return None


def _entries(stream: ImageStream,
             sector: int) -> tuple[bytes, list[tuple[bytes, int, int, str, int]]] | None:
    """The header and the used entries (type, first, last, name, number) of the GPT in
    ``sector``-byte sectors, when header and entry array check out."""
    head = _header(stream, sector)
    if head is None:
        return None
    (_, _, _, _, _, _, _, _, _, _, entries_at, count, entry_size,
     entries_crc) = _HEADER.unpack_from(head)
    if (entry_size < _ENTRY.size or entry_size % _ENTRY.size or entry_size > MAX_ENTRY_SIZE
            or not 0 < count <= MAX_ENTRIES):
        return None  # (the table read below is at most 8192 * 1024 bytes)
    table = stream.pread(entries_at * sector, count * entry_size)
    if len(table) < count * entry_size or zlib.crc32(table) != entries_crc:
        return None
    used = []
    for number in range(count):
        kind, _, first, last, _, name = _ENTRY.unpack_from(table, number * entry_size)
        if kind == bytes(16) or last < first:
            continue
        text = name.decode("utf-16-le", "replace").split("\0", 1)[0]
        used.append((kind, first, last, text, number))
    return head, used


def _rows(stream: ImageStream, sector: int) -> list[Row] | None:
    found = _entries(stream, sector)
    if found is None:
        return None
    head, used = found
    entries_at, count, entry_size = _HEADER.unpack_from(head)[10:13]
    media_sectors = stream.size // sector
    meta = [Row("meta", 0, 1, "Safety Table", "Meta"), Row("meta", 1, 1, "GPT Header", "Meta"),
            Row("meta", entries_at, -(-count * entry_size // sector), "Partition Table",
                "Meta")]
    parts = [Row("partition", first, last - first + 1, text, f"{number:03d}")
             for _, first, last, text, number in used]
    return _with_gaps(meta, parts, media_sectors)


def _with_gaps(meta: list[Row], parts: list[Row], media_sectors: int) -> list[Row]:
    """``meta`` and ``parts`` with the unallocated gaps between the partitions (from sector 0
    to the media's last sector), in TSK's order: by start, a meta row before a gap at the same
    sector."""
    gaps: list[Row] = []
    at = 0
    for part in sorted(parts, key=lambda p: p.start):
        if part.start > at:
            gaps.append(Row("unallocated", at, part.start - at, "Unallocated"))
        at = max(at, part.start + part.length)
    if at < media_sectors:
        gaps.append(Row("unallocated", at, media_sectors - at, "Unallocated"))
    return sorted([*meta, *gaps, *parts], key=lambda r: (r.start, r.kind != "meta",
                                                         r.kind != "unallocated"))
