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
from dataclasses import dataclass

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
        rows = primary_rows(stream, sector)
        if rows is not None:
            return sector, rows
    return None


def disk_sectors(stream: ImageStream, sector: int) -> int | None:
    """How many sectors the disk had that the primary GPT was written for (its backup header
    lies in the disk's last sector, ``AlternateLBA``), or None without a valid primary header.
    An image holding fewer was cut short, whether or not a partition reaches the missing part."""
    head = _header(stream, sector)
    return None if head is None else _HEADER.unpack_from(head)[6] + 1


def _header(stream: ImageStream, sector: int, lba: int = 1) -> bytes | None:
    """The GPT header in ``sector``-byte sectors at ``lba`` (1: the primary; the disk's last
    sector: the backup), if its signature, size, own LBA and CRC32 check out."""
    return _header_why(stream, sector, lba)[0]


def _header_why(stream: ImageStream, sector: int, lba: int) -> tuple[bytes | None, str]:
    """The header at ``lba`` as :func:`_header` takes it, else None and what fails (``""``:
    no GPT signature there at all)."""
    head = stream.pread(lba * sector, sector)
    if len(head) < _HEADER.size or head[:8] != SIGNATURE:
        return None, ""
    _, _, size, crc, _, mine, *_ = _HEADER.unpack_from(head)
    if not _HEADER.size <= size <= sector:
        return None, f"its header size {size} is not valid"
    if mine != lba:
        return None, f"it says it lies at sector {mine}"
    if zlib.crc32(head[:16] + b"\0\0\0\0" + head[20:size]) != crc:
        return None, "its header's CRC32 does not match its bytes"
    return head, ""


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


def _entries(stream: ImageStream, sector: int,
             lba: int = 1) -> tuple[bytes, list[tuple[bytes, int, int, str, int]]] | None:
    """The header and the used entries (type, first, last, name, number) of the GPT in
    ``sector``-byte sectors whose header lies at ``lba``, when header and entry array check
    out."""
    found, _ = _table(stream, sector, lba)
    return found


_Entries = list[tuple[bytes, int, int, str, int]]


def _entry_array(stream: ImageStream, sector: int,
                 head: bytes) -> tuple[bytes | None, str]:
    """The entry array ``head`` points at, its sizes checked (at most 8192 * 1024 bytes read),
    or None and why not; its CRC32 is the caller's to check."""
    entries_at, count, entry_size = _HEADER.unpack_from(head)[10:13]
    if (entry_size < _ENTRY.size or entry_size % _ENTRY.size or entry_size > MAX_ENTRY_SIZE
            or not 0 < count <= MAX_ENTRIES):
        return None, f"its entry array ({count} entries of {entry_size} bytes) is not valid"
    table = stream.pread(entries_at * sector, count * entry_size)
    if len(table) < count * entry_size:
        return None, f"its entry array at sector {entries_at} lies past the end of the image"
    return table, ""


def _decoded(table: bytes, entry_size: int) -> _Entries:
    """Every entry of ``table`` that has a type (type, first, last, name, number), those whose
    last sector lies before their first included."""
    found = []
    for number in range(len(table) // entry_size):
        kind, _, first, last, _, name = _ENTRY.unpack_from(table, number * entry_size)
        if kind != bytes(16):
            text = name.decode("utf-16-le", "replace").split("\0", 1)[0]
            found.append((kind, first, last, text, number))
    return found


def _used(entries: _Entries) -> _Entries:
    """The entries that are partitions: a last sector before the first is none."""
    return [entry for entry in entries if entry[2] >= entry[1]]


def _table(stream: ImageStream, sector: int,
           lba: int) -> tuple[tuple[bytes, _Entries] | None, str]:
    """:func:`_entries`, or None and what fails (``""``: no GPT signature at ``lba``)."""
    head, why = _header_why(stream, sector, lba)
    if head is None:
        return None, why
    table, why = _entry_array(stream, sector, head)
    if table is None:
        return None, why
    entries_at, entry_size, entries_crc = (_HEADER.unpack_from(head)[i] for i in (10, 12, 13))
    if zlib.crc32(table) != entries_crc:
        return None, f"its entry array's CRC32 (at sector {entries_at}) does not match"
    return (head, _used(_decoded(table, entry_size))), ""


def _backwards(stream: ImageStream, sector: int, lba: int) -> list[str]:
    """Entries of the GPT at ``lba`` whose last sector lies before their first: no tool can
    read such a partition (TSK lists it with a length that wraps round 2^64)."""
    head = _header(stream, sector, lba)
    table = None if head is None else _entry_array(stream, sector, head)[0]
    if head is None or table is None:
        return []
    return [f"GPT entry {number + 1} ends at sector {last}, before it starts (sector "
            f"{first}): it is not a partition any system reads"
            for _, first, last, _, number in _decoded(table, _HEADER.unpack_from(head)[12])
            if last < first]


@dataclass(frozen=True)
class GptAudit:
    """What the two copies of a GPT say beside the table shown (UEFI 2.x section 5.3.2: the
    primary is used when its header and entry array check out, else the backup)."""

    notes: tuple[str, ...] = ()  #: one line each, for every command to say
    #: the backup's rows, where the primary fails its checks and the backup holds: the table
    #: firmware and operating systems read, shown instead of the damaged primary's
    backup_rows: list[Row] | None = None


def audit(stream: ImageStream, sector: int) -> GptAudit:
    """Check both copies of the GPT of ``stream`` (``sector``-byte sectors) against their
    CRC32s and each other. TSK, and ``mmls``, read the primary without its entry array's CRC32
    and fall back to the backup silently: an entry changed after the table was written, or a
    damaged header, passed unsaid."""
    media = stream.size // sector
    if media < 3:  # no room for a header and its backup
        return GptAudit()
    primary, why = _table(stream, sector, 1)
    head = _header(stream, sector, 1)
    alternate = _HEADER.unpack_from(head)[6] if head is not None else media - 1
    if head is not None and alternate >= media:  # cut short: the tree says so, once
        return GptAudit(tuple(_backwards(stream, sector, 1)))
    if alternate <= 1:
        alternate = media - 1
    backup, backup_why = _table(stream, sector, alternate)
    if backup is None and alternate != media - 1:
        backup, backup_why = _table(stream, sector, media - 1)
        alternate = media - 1
    notes = _backwards(stream, sector, 1 if primary is not None or backup is None else alternate)
    if primary is not None and backup is not None:
        if primary[1] != backup[1]:
            notes.insert(0, f"the backup GPT (sector {alternate}) lists other partitions than "
                         "the primary, which is the one read: "
                         f"{_differences(primary[1], backup[1], ('primary', 'backup'))}")
        return GptAudit(tuple(notes))
    if primary is not None:
        notes.insert(0, f"the backup GPT at sector {alternate} "
                     f"{'is missing' if not backup_why else 'is damaged: ' + backup_why}")
        return GptAudit(tuple(notes))
    if backup is None:
        return GptAudit(tuple(notes))
    damaged = f"is damaged: {why}" if why else "is missing (no signature at sector 1)"
    rows = _rows_of(stream, sector, backup, alternate)
    found = _table_anyway(stream, sector)
    change = "" if found is None or found == backup[1] else (
        f" ({_differences(backup[1], found, ('backup', 'damaged primary'))})")
    notes.insert(0, f"the primary GPT {damaged}; firmware and operating systems read the "
                 f"backup GPT (sector {alternate}){change}")
    return GptAudit(tuple(notes), rows)


def _table_anyway(stream: ImageStream, sector: int) -> _Entries | None:
    """The primary's used entries read without its CRC32s: what a damaged (or altered)
    primary says, for the note that names how it differs from the backup."""
    head = stream.pread(sector, sector)
    if len(head) < _HEADER.size or head[:8] != SIGNATURE:
        return None
    table, _ = _entry_array(stream, sector, head)
    return None if table is None else _used(_decoded(table, _HEADER.unpack_from(head)[12]))


def _differences(shown: _Entries, other: _Entries, names: tuple[str, str],
                 most: int = 4) -> str:
    """``entry 1: sectors 20480-36863 in the backup, 21000-36863 in the damaged primary;
    ...`` (``names``: what ``shown`` and ``other`` are; GPT entries numbered from 1, as
    sgdisk numbers them)."""
    mine = {e[4]: e for e in shown}
    theirs = {e[4]: e for e in other}
    said = []
    for number in sorted(set(mine) | set(theirs)):
        a, b = mine.get(number), theirs.get(number)
        if a == b:
            continue
        where = (lambda e: "none" if e is None else f"sectors {e[1]}-{e[2]}")  # noqa: E731
        if a is not None and b is not None and a[1:3] == b[1:3]:
            said.append(f"entry {number + 1}: its type or name differs")
        else:
            said.append(f"entry {number + 1}: {where(a)} in the {names[0]}, {where(b)} in the "
                        f"{names[1]}")
    more = f" (and {len(said) - most} more)" if len(said) > most else ""
    return "; ".join(said[:most]) + more


def primary_rows(stream: ImageStream, sector: int) -> list[Row] | None:
    """The rows of the primary GPT in ``sector``-byte sectors, as TSK builds them, or None
    where its header and entry array do not check out."""
    found = _entries(stream, sector)
    return None if found is None else _rows_of(stream, sector, found, 1)


def _rows_of(stream: ImageStream, sector: int, found: tuple[bytes, _Entries],
             lba: int) -> list[Row]:
    """The rows of the GPT whose header lies at ``lba``: a primary's as TSK builds them, with
    the Safety Table (the protective MBR) first; a backup's with its header and table."""
    head, used = found
    entries_at, count, entry_size = _HEADER.unpack_from(head)[10:13]
    media_sectors = stream.size // sector
    table = Row("meta", entries_at, -(-count * entry_size // sector), "Partition Table", "Meta")
    meta = ([Row("meta", 0, 1, "Safety Table", "Meta"), Row("meta", 1, 1, "GPT Header", "Meta"),
             table] if lba == 1 else [table, Row("meta", lba, 1, "GPT Header", "Meta")])
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
