"""The zones of FAT, exFAT and ISO 9660 times: the one TSK reads them in, and the offsets
exFAT and ISO 9660 record, which The Sleuth Kit does not apply.

These file systems record wall-clock times. TSK turns them into epoch seconds with the C
library's ``mktime``, that is in the zone of the *process* reading the image (the ``TZ`` of the
examiner's machine), and its tools set that zone from ``-z`` (``istat -z UTC``). Read through
pytsk3 without care, the same image would show different "UTC" times on differently
configured machines (sleuthkit issue 2317, pytsk issue 75). :func:`~.tsk.pin_utc` fixes the
process zone to UTC before TSK reads anything, so that a wall-clock time is shown exactly as
recorded, as ``istat -z UTC`` shows it: what FAT records carries no zone at all, and the
examiner who knows the original machine's zone applies it.

exFAT and ISO 9660 do record the zone, and TSK (4.11, and the 4.15 inside pytsk3) ignores it:

- exFAT: each file entry (type 0x85, 0x05 once deleted) holds one UtcOffset byte per time
  (offset 22 creation, 23 modification, 24 access): bit 7 says the offset is valid, bits 0-6
  are a signed count of 15-minute steps east of UTC (exFAT specification, 7.4.10). A time
  whose offset is valid is local time of that offset; UTC is the time minus the offset.
  Without the valid bit the zone is unknown and the time stays as recorded.
- ISO 9660: the recording date of a directory record (7 bytes at offset 18) ends with the
  offset from Greenwich in 15-minute steps, signed (ECMA-119, 9.1.5). TSK reads the first six.

:class:`ExfatZones` and :class:`IsoZones` read those bytes and move TSK's times to UTC.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from bitwitness.errors import BitWitnessError
from bitwitness.report.browse.entries import Times
from bitwitness.stream import ImageStream

_QUARTER = timedelta(minutes=15)
_EXFAT_FILE = (0x85, 0x05)  #: file directory entry, in use and deleted
_EXFAT_FIRST_INODE = 3  #: TSK numbers the entry at slot i of sector s as (s - heap) * n + 3 + i
_ISO_SECTOR = 2048
#: Bounds on what an ISO 9660 image may make us read to find its records' zones (a crafted
#: image can chain directories without end): past them, the rest keeps TSK's times.
#: (16 MiB of records is some 400,000 files in two name trees; the map stays under 100 MiB)
MAX_ISO_DIRECTORIES = 65536
MAX_ISO_DIRECTORY_BYTES = 16 << 20
#: exFAT sectors of directory entries kept: a listing reads its entries folder by folder
_EXFAT_SECTORS_KEPT = 64


def _signed_quarters(value: int) -> int:
    """A 7-bit two's-complement count of 15-minute steps (exFAT UtcOffset bits 0-6)."""
    value &= 0x7F
    return value - 0x80 if value & 0x40 else value


def _shift(moment: datetime | None, quarters: int) -> datetime | None:
    return None if moment is None else moment - quarters * _QUARTER


class ExfatZones:
    """The UtcOffset bytes of exFAT file entries, found by TSK's inode address."""

    def __init__(self, stream: ImageStream, byte_offset: int) -> None:
        self._stream = stream
        self._base = byte_offset
        self._sectors: dict[int, bytes] = {}
        boot = self.read(0, 512)
        shift = boot[108] if len(boot) == 512 else 0
        self._sector = 1 << shift if 9 <= shift <= 12 else 0
        self._heap = struct.unpack_from("<I", boot, 88)[0] if self._sector else 0

    def read(self, offset: int, size: int) -> bytes:
        """``size`` bytes at ``offset`` of the volume (fewer, or none, where it cannot be
        read); exfatraw.py reads through it too."""
        try:
            return self._stream.pread(self._base + offset, size)
        except (BitWitnessError, ValueError):
            return b""

    def _sector_at(self, number: int) -> bytes:
        data = self._sectors.get(number)
        if data is None:
            data = self.read(number * self._sector, self._sector)
            if len(self._sectors) >= _EXFAT_SECTORS_KEPT:
                del self._sectors[next(iter(self._sectors))]
            self._sectors[number] = data
        return data

    def offsets(self, inode: int) -> tuple[int | None, int | None, int | None]:
        """The (creation, modification, access) offsets in 15-minute steps of the file entry
        at ``inode``; None where the entry marks none valid or the slot holds no file entry."""
        raw = self.entry(inode)
        if len(raw) < 32 or raw[0] not in _EXFAT_FILE:
            return None, None, None
        found = tuple(_signed_quarters(b) if b & 0x80 else None for b in raw[22:25])
        return found[0], found[1], found[2]

    def entry(self, inode: int) -> bytes:
        """The 32-byte directory entry TSK numbers ``inode`` (b"" where there is none)."""
        if not self._sector or inode < _EXFAT_FIRST_INODE:
            return b""
        sector, slot = divmod(inode - _EXFAT_FIRST_INODE, self._sector // 32)
        return self._sector_at(self._heap + sector)[slot * 32 : slot * 32 + 32]

    def name(self, inode: int) -> str | None:
        """The name in the entry set of the file entry at ``inode``, every UTF-16 unit kept
        (a lone surrogate half as its WTF-8 bytes: ``ntfs.wtf8_name``), or None when the set
        cannot be read whole here (its entries follow the file entry in TSK's numbering, which
        holds within a cluster) or its checksum does not match."""
        from bitwitness.report.browse.ntfs import wtf8_name

        first = self.entry(inode)
        if len(first) < 32 or first[0] not in _EXFAT_FILE:
            return None
        count = first[1]
        entries = [first] + [self.entry(inode + n) for n in range(1, count + 1)]
        if count < 2 or any(len(e) < 32 for e in entries) or entries[1][0] & 0x7F != 0x40:
            return None
        whole = b"".join(entries)
        if _set_checksum(whole) != struct.unpack_from("<H", first, 2)[0]:
            return None
        length = entries[1][3]
        units = b"".join(e[2:32] for e in entries[2:] if e[0] & 0x7F == 0x41)
        if len(units) < 2 * length:
            return None
        return wtf8_name(units[: 2 * length])

    def _recorded(self, inode: int, times: Times) -> Times:
        """``times`` with those TSK gives none of read from the file entry: TSK's 32-bit
        seconds end in 2106, and a date of 2107 (the last exFAT's 7-bit year holds) came out
        as no time at all. Wall clock, as TSK's; :meth:`adjust` applies the offsets after."""
        raw = self.entry(inode)
        if len(raw) < 32 or raw[0] not in _EXFAT_FILE:
            return times
        created, modified, accessed = struct.unpack_from("<III", raw, 8)
        return replace(times, born=times.born or _exfat_time(created, raw[20]),
                       modified=times.modified or _exfat_time(modified, raw[21]),
                       accessed=times.accessed or _exfat_time(accessed))

    def adjust(self, inode: int, times: Times,
               extent: Callable[[], tuple[int, int] | None]) -> Times:
        """``times`` as TSK read them (wall clock) moved to UTC by the entry's offsets."""
        del extent  # exFAT entries are found by address
        if times.born is None or times.modified is None or times.accessed is None:
            times = self._recorded(inode, times)
        born, modified, accessed = self.offsets(inode)
        return replace(times,
                       born=times.born if born is None else _shift(times.born, born),
                       modified=(times.modified if modified is None
                                 else _shift(times.modified, modified)),
                       accessed=(times.accessed if accessed is None
                                 else _shift(times.accessed, accessed)))


def _exfat_time(stamp: int, hundredths: int = 0) -> datetime | None:
    """An exFAT timestamp (DOS date and time: years 1980 to 2107) with its 10 ms increment
    (0-199), as wall-clock time; None for 0 or a date that does not exist."""
    if stamp == 0:
        return None
    date, time = stamp >> 16, stamp & 0xFFFF
    try:
        moment = datetime(1980 + (date >> 9), (date >> 5) & 0xF, date & 0x1F, time >> 11,
                          (time >> 5) & 0x3F, (time & 0x1F) * 2, tzinfo=UTC)
    except ValueError:
        return None
    return moment + timedelta(milliseconds=10 * hundredths) if hundredths < 200 else moment


def _set_checksum(entries: bytes) -> int:
    """exFAT's SetChecksum over a file's entry set (its own two bytes left out)."""
    total = 0
    for index, byte in enumerate(entries):
        if index in (2, 3):
            continue
        total = (((total << 15) | (total >> 1)) + byte) & 0xFFFF
    return total


class IsoZones:
    """The Greenwich offsets of an ISO 9660 image's directory records.

    TSK numbers ISO files in its own order and keeps no record address we can ask for, so
    records are matched by what TSK itself matches Joliet and primary records by: the first
    block of the extent and the size. Read once, on first use. When every record holds the
    same offset (one mastering run: the common case), that offset applies to every file.
    """

    def __init__(self, stream: ImageStream, byte_offset: int) -> None:
        self._stream = stream
        self._base = byte_offset
        self._by_extent: dict[tuple[int, int], int] | None = None
        self._only: int | None = None

    def _read(self, offset: int, size: int) -> bytes:
        try:
            return self._stream.pread(self._base + offset, size)
        except (BitWitnessError, ValueError):
            return b""

    def _roots(self) -> list[bytes]:
        """Root directory records of the Joliet supplementary descriptors, then of the
        primary one: the order TSK loads them in, so that the first record found wins."""
        joliet, primary = [], []
        for number in range(16, 16 + 64):
            descriptor = self._read(number * _ISO_SECTOR, _ISO_SECTOR)
            if len(descriptor) < 190 or descriptor[1:6] != b"CD001" or descriptor[0] == 255:
                break
            if descriptor[0] == 1:
                primary.append(descriptor[156:190])
            elif descriptor[0] == 2 and descriptor[88:90] == b"%/" and (
                    descriptor[90:91] in (b"@", b"C", b"E")):
                joliet.append(descriptor[156:190])
        return joliet + primary

    def _load(self) -> dict[tuple[int, int], int]:
        found: dict[tuple[int, int], int] = {}
        seen: set[int] = set()
        budget = MAX_ISO_DIRECTORY_BYTES
        for root in self._roots():
            pending = [root]
            while pending and len(seen) < MAX_ISO_DIRECTORIES and budget > 0:
                record = pending.pop()
                extent, size = struct.unpack_from("<I", record, 2)[0], struct.unpack_from(
                    "<I", record, 10)[0]
                found.setdefault((extent, size), struct.unpack_from("b", record, 24)[0])
                if extent in seen:
                    continue
                seen.add(extent)
                size = min(size, budget)
                budget -= size
                pending.extend(self._children(extent, size, found))
        self._by_extent = found
        offsets = set(found.values())
        self._only = offsets.pop() if len(offsets) == 1 else None
        return found

    def _children(self, extent: int, size: int,
                  found: dict[tuple[int, int], int]) -> list[bytes]:
        """Records of the directory at ``extent``; files are noted, folders returned."""
        folders = []
        data = self._read(extent * _ISO_SECTOR, size)
        for start in range(0, len(data), _ISO_SECTOR):
            sector = data[start : start + _ISO_SECTOR]
            at = 0
            while at + 34 <= len(sector) and sector[at] >= 34 and at + sector[at] <= len(sector):
                record = sector[at : at + sector[at]]
                at += sector[at]
                if record[32] == 1 and record[33] in (0, 1):
                    continue  # "." and ".."
                key = (struct.unpack_from("<I", record, 2)[0],
                       struct.unpack_from("<I", record, 10)[0])
                if record[25] & 0x02:
                    folders.append(record)
                else:
                    found.setdefault(key, struct.unpack_from("b", record, 24)[0])
        return folders

    def adjust(self, inode: int, times: Times,
               extent: Callable[[], tuple[int, int] | None]) -> Times:
        """``times`` as TSK read them moved to UTC by the offset of the file's record.

        ``extent`` gives the file's first block and size (asked only when records disagree);
        a file no record matches keeps TSK's times."""
        del inode  # TSK's ISO inode numbers do not locate a record
        by_extent = self._by_extent if self._by_extent is not None else self._load()
        quarters = self._only
        if quarters is None and by_extent:
            key = extent()
            quarters = None if key is None else by_extent.get(key)
        if not quarters:
            return times
        return replace(times, born=_shift(times.born, quarters),
                       modified=_shift(times.modified, quarters),
                       accessed=_shift(times.accessed, quarters),
                       changed=_shift(times.changed, quarters))

