"""The VHDX log (MS-VHDX section 2.3), replayed in memory, never into the evidence.

A VHDX whose current header names a log (a non-zero LogGuid) was not closed cleanly: metadata
writes (BAT entries, region tables, metadata items) were recorded in the log and may never have
reached their place in the file. Hyper-V replays the log when it opens the disk, so the disk's
last state is the file *with the log replayed*; libvhdi ignores the log, and QEMU replays it only
by writing into the file (it refuses such an image read-only). The specification foresees our
case (its note 5 to 2.3.3: read-only media "cannot allow reads from the virtual disk without
replaying the log in memory"). :func:`replay` finds what to replay; :class:`Replay` is the
overlay every read of the file then goes through.

Layout (little-endian), each log entry a run of 4 KiB sectors in the ring buffer of ``LogLength``
bytes at ``LogOffset`` (an entry may wrap past the log's end to its start):

* the entry header (64 bytes): ``loge``, CRC-32C over the whole entry (``EntryLength`` bytes,
  the checksum field counted as 0), ``EntryLength`` and ``Tail`` (multiples of 4 KiB; the tail
  is the log offset of the oldest entry of the sequence this entry ends), ``SequenceNumber``
  (> 0), ``DescriptorCount``, reserved, ``LogGuid`` (must be the header's), ``FlushedFileOffset``
  (the file was at least this long when the entry was written: a shorter file was truncated),
  ``LastFileOffset`` (every structure fits below it: the file is at least this long after
  replay);
* descriptors, 32 bytes each, from byte 64 of the first sector on (126 fit beside the header,
  128 in each further descriptor sector): ``zero`` (reserved, ``ZeroLength``, ``FileOffset``,
  sequence number) or ``desc`` (``TrailingBytes`` (4), ``LeadingBytes`` (8), ``FileOffset``,
  sequence number), each sequence number the entry's;
* after the descriptor sectors, one data sector per ``desc`` descriptor, in order: ``data``, the
  sequence number's high 32 bits, bytes 8-4091 of the 4 KiB update, its low 32 bits. The
  update is ``LeadingBytes`` + those 4084 bytes + ``TrailingBytes``.

The active sequence is found as 2.3.3 describes: starting at log offset 0, the longest run of
valid entries with consecutive sequence numbers; it is valid if its last (head) entry's tail is
one of its entries; the valid run whose head has the highest sequence number wins; an invalid
or empty run moves the start on by 4 KiB, a valid one to just past it, until the start wraps.
An entry with a bad checksum, a foreign LogGuid or any bad field is invalid and so ends a run.
No valid sequence, or a file shorter than the head's ``FlushedFileOffset``, fails to open (the
specification's word). Replay applies every descriptor of the entries from the head's tail
entry to the head, in order; the file then reads as at least ``LastFileOffset`` long (past its
real end: zeros, unless a descriptor wrote there).

Bounds (hostile logs): a log above :data:`MAX_LOG_LENGTH` is refused; the entries checked while
searching may cost at most :data:`CHECK_BUDGET` times the log's length of checksumming; the
active sequence may hold at most :data:`MAX_DESCRIPTORS` descriptors. The overlay holds no data:
a written sector is remembered by where its data sector lies in the log (and its 12 removed
bytes), a zeroed range by its bounds, so its memory is bounded by the descriptor count. A
descriptor aimed at the file identifier and headers (which the log never updates) or at the log
itself makes its entry invalid.
"""

from __future__ import annotations

import heapq
import struct
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from bitwitness.errors import CorruptImageError, UnsupportedFormatError
from bitwitness.images.crc32c import crc32c_update

KiB, MiB, GiB = 1024, 1024 * 1024, 1024**3
SECTOR = 4 * KiB
ENTRY_HEADER = 64
DESCRIPTOR = 32
#: Descriptors beside the entry header in its first sector; each further sector holds 128.
FIRST_SECTOR_DESCRIPTORS = (SECTOR - ENTRY_HEADER) // DESCRIPTOR
#: The largest log replayed (Hyper-V and QEMU write 1 MiB).
MAX_LOG_LENGTH = GiB
#: The most descriptors the active sequence may hold: as many as data sectors fit in the
#: largest log. The overlay keeps a small record per descriptor (about 40 MiB at this count).
MAX_DESCRIPTORS = MAX_LOG_LENGTH // SECTOR
#: Searching may checksum at most this many times the log's length (each entry once is 1).
CHECK_BUDGET = 4
#: The file identifier and both headers, which are updated in place, never through the log.
PROTECTED = 192 * KiB
#: No descriptor may reach past this file offset (1 PiB; the largest VHDX is 64 TiB of media).
MAX_FILE_OFFSET = 1 << 50

#: (file offset, length) -> bytes of the file as it lies on disk, checked against its size.
RawRead = Callable[[int, int, str], bytes]


@dataclass(frozen=True)
class _Entry:
    """A valid entry: where it lies in the log and the header fields replay needs."""

    position: int
    length: int
    tail: int
    sequence: int
    flushed: int
    last: int


@dataclass(frozen=True)
class _Zero:
    offset: int
    length: int


@dataclass(frozen=True)
class _Data:
    offset: int
    sector: int  #: log offset of its data sector
    leading: bytes
    trailing: bytes


class _Log:
    """The ring buffer, read through ``raw``; entries checked once each, within a budget."""

    def __init__(self, raw: RawRead, path: Path, guid: bytes, offset: int, length: int) -> None:
        self.raw, self.path, self.guid = raw, path, guid
        self.offset, self.length = offset, length
        self.budget = CHECK_BUDGET * length
        self.checked: dict[int, _Entry | None] = {}

    def pieces(self, position: int, length: int) -> Iterator[tuple[int, int]]:
        """File (offset, length) pieces of ``length`` bytes from log offset ``position``,
        wrapping at the log's end, at most 1 MiB each."""
        while length > 0:
            n = min(length, self.length - position, MiB)
            yield self.offset + position, n
            length -= n
            position = (position + n) % self.length

    def read(self, position: int, length: int) -> bytes:
        return b"".join(self.raw(o, n, "log") for o, n in self.pieces(position, length))

    def entry(self, position: int) -> _Entry | None:
        if position not in self.checked:
            self.checked[position] = self._check(position)
        return self.checked[position]

    def _check(self, position: int) -> _Entry | None:
        head = self.read(position, ENTRY_HEADER)
        if not head.startswith(b"loge"):
            return None
        checksum, length, tail, sequence, count = struct.unpack_from("<IIIQI", head, 4)
        flushed, last = struct.unpack_from("<QQ", head, 48)
        if (head[32:48] != self.guid or sequence == 0 or length == 0 or length % SECTOR
                or length > self.length or tail % SECTOR or tail >= self.length
                or last > MAX_FILE_OFFSET or descriptor_sectors(count) * SECTOR > length):
            return None
        if not self._checksum_matches(position, length, checksum):
            return None
        if count > MAX_DESCRIPTORS:
            raise UnsupportedFormatError(
                f"{self.path}: VHDX log entry at log offset {position} has {count} "
                f"descriptors, more than this reader replays ({MAX_DESCRIPTORS})")
        entry = _Entry(position, length, tail, sequence, flushed, last)
        try:
            for _ in self.descriptors(entry, count):
                pass
        except _InvalidEntry:
            return None
        return entry

    def _checksum_matches(self, position: int, length: int, checksum: int) -> bool:
        self.budget -= length
        if self.budget < 0:
            raise CorruptImageError(
                f"VHDX log ({self.length} bytes at file offset {self.offset}): its entries "
                f"would take more than {CHECK_BUDGET} times its length to check; refused as "
                "hostile", path=self.path)
        crc, first = 0, True
        for offset, n in self.pieces(position, length):
            data = self.raw(offset, n, "log entry")
            if first:
                data = data[:4] + bytes(4) + data[8:]
                first = False
            crc = crc32c_update(crc, data)
        return crc == checksum

    def descriptors(self, entry: _Entry, count: int | None = None) -> Iterator[_Zero | _Data]:
        """The entry's descriptors in order; :class:`_InvalidEntry` at the first bad one."""
        if count is None:
            count = struct.unpack_from("<I", self.read(entry.position, ENTRY_HEADER), 24)[0]
        table = self.read(entry.position, descriptor_sectors(count) * SECTOR)
        data_sector = descriptor_sectors(count)
        high, low = struct.pack("<I", entry.sequence >> 32), struct.pack("<I", entry.sequence
                                                                          & 0xFFFFFFFF)
        for i in range(count):
            kind, small, big, offset, sequence = struct.unpack_from(
                "<4sIQQQ", table, ENTRY_HEADER + DESCRIPTOR * i)
            if sequence != entry.sequence or offset % SECTOR:
                raise _InvalidEntry
            if kind == b"zero":
                if big % SECTOR:
                    raise _InvalidEntry
                self._target(offset, big)
                yield _Zero(offset, big)
            elif kind == b"desc":
                if (data_sector + 1) * SECTOR > entry.length:
                    raise _InvalidEntry
                self._target(offset, SECTOR)
                position = (entry.position + data_sector * SECTOR) % self.length
                sector = self.read(position, SECTOR)
                if sector[:4] != b"data" or sector[4:8] != high or sector[4092:] != low:
                    raise _InvalidEntry
                yield _Data(offset, position, struct.pack("<Q", big), struct.pack("<I", small))
                data_sector += 1
            else:
                raise _InvalidEntry

    def _target(self, offset: int, length: int) -> None:
        """A descriptor may not reach the identifier and headers, the log, or past 1 PiB."""
        end = offset + length
        if (offset < PROTECTED or end > MAX_FILE_OFFSET
                or (offset < self.offset + self.length and end > self.offset)):
            raise _InvalidEntry


class _InvalidEntry(Exception):  # noqa: N818 - internal signal, never leaves this module
    """A descriptor or data sector fails the specification's rules: the entry is invalid."""


def descriptor_sectors(count: int) -> int:
    """Sectors holding the entry header and ``count`` descriptors."""
    beyond = max(0, count - FIRST_SECTOR_DESCRIPTORS)
    return 1 + -(-beyond // (SECTOR // DESCRIPTOR))


def _run_from(log: _Log, start: int) -> tuple[list[_Entry], int]:
    """The longest run of valid entries with consecutive sequence numbers from ``start``, and
    the log offset just past it."""
    run: list[_Entry] = []
    position, total = start, 0
    while True:
        entry = log.entry(position)
        if entry is None or (run and entry.sequence != run[-1].sequence + 1):
            break
        if total + entry.length > log.length:
            break
        run.append(entry)
        total += entry.length
        position = (position + entry.length) % log.length
    return run, position


def active_sequence(log: _Log) -> list[_Entry]:
    """The active sequence (MS-VHDX 2.3.3), from its tail entry to its head; empty if none."""
    candidate: list[_Entry] = []
    tail = old = 0
    while True:
        run, after = _run_from(log, tail)
        tails = [i for i, e in enumerate(run) if e.position == run[-1].tail] if run else []
        if tails and (not candidate or run[-1].sequence > candidate[-1].sequence):
            candidate = run[tails[0]:]
        tail = after if tails else (tail + SECTOR) % log.length
        if tail <= old:
            return candidate
        old = tail


@dataclass(frozen=True)
class Replay:
    """The file as it reads once the log is replayed: sectors written, ranges zeroed, size."""

    entries: int
    first_sequence: int
    last_sequence: int
    log_offset: int
    log_length: int
    real_size: int
    size: int  #: the file's size after replay (at least the head's LastFileOffset)
    written: dict[int, _Data]  #: file offset of a 4 KiB sector -> its last write
    written_at: list[int]  #: ``written``'s keys, sorted
    zero_starts: list[int]  #: disjoint zeroed ranges, sorted, not counting later writes
    zero_ends: list[int]

    @property
    def summary(self) -> str:
        return (f"log replayed in memory: {self.entries} entries, sequence "
                f"{self.first_sequence}..{self.last_sequence} (log of {self.log_length} bytes "
                f"at file offset {self.log_offset})")

    def read(self, raw: RawRead, offset: int, length: int, what: str) -> bytes:
        """``length`` bytes at ``offset`` of the replayed file (the caller checked the span
        against :attr:`size`)."""
        parts: list[bytes] = []
        end = offset + length
        while offset < end:
            sector = offset - offset % SECTOR
            data = self.written.get(sector)
            if data is not None:
                stop = min(end, sector + SECTOR)
                parts.append(self._sector(raw, data)[offset - sector:stop - sector])
                offset = stop
                continue
            i = bisect_left(self.written_at, offset)
            next_write = self.written_at[i] if i < len(self.written_at) else end
            z = bisect_right(self.zero_starts, offset) - 1
            if z >= 0 and self.zero_ends[z] > offset:
                stop = min(end, next_write, self.zero_ends[z])
                parts.append(bytes(stop - offset))
            else:
                following = self.zero_starts[z + 1] if z + 1 < len(self.zero_starts) else end
                stop = min(end, next_write, following)
                stored = max(0, min(stop, self.real_size) - offset)
                if stored:
                    parts.append(raw(offset, stored, what))
                parts.append(bytes(stop - offset - stored))
            offset = stop
        return b"".join(parts)

    def _sector(self, raw: RawRead, data: _Data) -> bytes:
        stored = raw(self.log_offset + data.sector, SECTOR, "log data sector")
        return data.leading + stored[8:SECTOR - 4] + data.trailing


def replay(raw: RawRead, path: Path, *, size: int, guid: bytes, log_offset: int,
           log_length: int) -> Replay:
    """Find the active sequence of the log the current header names and build its overlay.

    Raises :class:`CorruptImageError` when the log lies outside the file, holds no valid
    sequence or the file was truncated, :class:`UnsupportedFormatError` when the log or its
    active sequence is larger than this reader replays."""
    if log_length > MAX_LOG_LENGTH:
        raise UnsupportedFormatError(f"{path}: VHDX log of {log_length} bytes, more than this "
                                     f"reader replays ({MAX_LOG_LENGTH} bytes)")
    if log_length < SECTOR or log_length % SECTOR or log_offset < PROTECTED:
        raise CorruptImageError(f"VHDX log of {log_length} bytes at file offset {log_offset} "
                                "is not a log (MS-VHDX: a multiple of 1 MiB, after the "
                                "headers)", path=path, offset=log_offset)
    if log_offset + log_length > size:
        raise CorruptImageError(f"VHDX log of {log_length} bytes at file offset {log_offset} "
                                f"runs past the end of the file ({size} bytes)", path=path,
                                offset=log_offset)
    log = _Log(raw, path, guid, log_offset, log_length)
    active = active_sequence(log)
    if not active:
        raise CorruptImageError(f"VHDX log ({log_length} bytes at file offset {log_offset}) "
                                "holds no valid sequence of entries to replay: the file is "
                                "corrupt (MS-VHDX 2.3.3)", path=path, offset=log_offset)
    head = active[-1]
    if size < head.flushed:
        raise CorruptImageError(f"VHDX file of {size} bytes is shorter than the "
                                f"{head.flushed} bytes its log records (sequence "
                                f"{head.sequence}): it was truncated", path=path)
    return _overlay(log, active, size)


def _overlay(log: _Log, active: list[_Entry], size: int) -> Replay:
    written: dict[int, tuple[int, _Data]] = {}
    zeros: list[tuple[int, int, int]] = []
    end = max(size, active[-1].last)
    order = 0
    for entry in active:
        try:
            descriptors = list(log.descriptors(entry))
        except _InvalidEntry as exc:  # pragma: no cover - checked valid in the search
            raise CorruptImageError("VHDX log changed while read", path=log.path) from exc
        for d in descriptors:
            order += 1
            if order > MAX_DESCRIPTORS:
                raise UnsupportedFormatError(
                    f"{log.path}: the VHDX log's active sequence has more than "
                    f"{MAX_DESCRIPTORS} descriptors, more than this reader replays")
            if isinstance(d, _Data):
                written[d.offset] = (order, d)
                end = max(end, d.offset + SECTOR)
            elif d.length:
                zeros.append((d.offset, d.offset + d.length, order))
                end = max(end, d.offset + d.length)
    kept = _drop_zeroed(written, zeros)
    starts: list[int] = []
    ends: list[int] = []
    for start, stop, _ in sorted(zeros):
        if ends and start <= ends[-1]:
            ends[-1] = max(ends[-1], stop)
        else:
            starts.append(start)
            ends.append(stop)
    return Replay(entries=len(active), first_sequence=active[0].sequence,
                  last_sequence=active[-1].sequence, log_offset=log.offset,
                  log_length=log.length, real_size=size, size=end, written=kept,
                  written_at=sorted(kept), zero_starts=starts, zero_ends=ends)


def _drop_zeroed(written: dict[int, tuple[int, _Data]],
                 zeros: list[tuple[int, int, int]]) -> dict[int, _Data]:
    """The last write of each sector, unless a later zero descriptor covers it: a sweep over
    the sectors in order keeping the zeroed ranges begun so far in a heap, latest first."""
    by_start = sorted(zeros)
    active: list[tuple[int, int]] = []  # (-order, end)
    kept: dict[int, _Data] = {}
    i = 0
    for offset in sorted(written):
        order, data = written[offset]
        while i < len(by_start) and by_start[i][0] <= offset:
            heapq.heappush(active, (-by_start[i][2], by_start[i][1]))
            i += 1
        while active and active[0][1] <= offset:
            heapq.heappop(active)
        if not active or -active[0][0] < order:
            kept[offset] = data
    return kept
