"""FAT directory entries that The Sleuth Kit leaves out, read from the raw directory.

TSK drops an 8.3 entry whose name bytes it judges invalid (``../../X TXT``, ``/ETC/PW TXT``,
``..\\..\\X TXT``): ``fls`` does not show it and ``icat`` refuses its address, although the
entry holds a file. A crafted image can hide data that way, so the listing reads each
directory's bytes (the sectors TSK gives for it) and adds every entry that TSK did not list,
allocated or deleted, with the content read here.

The layout, from the boot sector: bytes per sector (offset 11), sectors per cluster (13),
reserved sectors (14), number of FATs (16), root entries (17), FAT size (22, or 36 on FAT32),
root cluster (44, FAT32). A 32-byte directory entry holds the 11 name bytes (the first one
0xE5 once deleted, 0x05 for a real 0xE5), attributes (11), the case flags (12: 0x08 base and
0x10 extension in lower case), creation time and date (14, 16), access date (18), high cluster
word (20, FAT32), modification time and date (22, 24), low cluster word (26) and size (28).

A long (VFAT) name is held by entries of attribute 0x0F just before its short entry, last part
first: each has its sequence number (0x40 on the last part; 0xE5 once deleted), 13 UTF-16
characters (offsets 1, 14, 28) ending with 0x0000 and padded with 0xFFFF, and a checksum of the
short entry's 11 name bytes (13). A long name is used only when its checksum matches the short
entry it precedes (for a deleted entry, whose first byte is lost, with that byte taken from the
long name's first character); otherwise it belongs to another entry and the short name stands.

Names are given as ``fls`` gives them: the long name, else the 8.3 name with its case flags
applied and a deleted entry's first character as ``_``; bytes outside ASCII in a short name are
read as code page 437, the code page Linux and mtools assume (TSK prints each as ``^``, which
loses the name), and the case flags lower them too, as Windows and mtools show them
(``élan.txt``, not ``Élan.txt``). TSK numbers the entry in sector ``s`` at slot
``i`` as inode ``(s - first_data) * (bytes_per_sector / 32) + 3 + i``, ``first_data`` being the
sector after the FATs: the same address is given here, so that the entry is named the way TSK
names its neighbours.

A deleted file's clusters are no longer chained; its content is recovered as TSK recovers it:
from its first cluster on, skipping clusters now allocated, as long as the first one is free.
"""

from __future__ import annotations

import array
import struct
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bitwitness.errors import ContentReadError, FileSystemError
from bitwitness.stream import ImageStream

_ATTR_VOLUME = 0x08
_ATTR_DIRECTORY = 0x10
_ATTR_LONG_NAME = 0x0F
_FREE = 0xE5
_LAST_PART = 0x40
_LOWER_BASE, _LOWER_EXT = 0x08, 0x10
_FIRST_INODE = 3
#: FAT bytes read at a time when looking for free clusters
_FAT_WINDOW = 64 << 10
#: Characters of one long-name entry: 5 at offset 1, 6 at 14, 2 at 28 (UTF-16LE)
_LFN_SLICES = ((1, 11), (14, 26), (28, 32))


@dataclass(frozen=True)
class RawFatEntry:
    """A short entry read from the raw directory, with its long name when one belongs to it."""

    inode: int  #: TSK's address for the entry's slot
    name: str  #: as fls names it: the long name, else the 8.3 name (see the module docstring)
    short_name: str  #: ``NAME.EXT`` from the 11 bytes (code page 437), ``_`` first if deleted
    long_name: str | None  #: the VFAT name whose checksum matches this entry, if any
    deleted: bool  #: the first name byte is 0xE5
    is_dir: bool
    first_cluster: int
    size: int
    modified: datetime | None
    accessed: datetime | None
    born: datetime | None


def _dos_time(date: int, time: int = 0, hundredths: int = 0) -> datetime | None:
    """A DOS date and time; ``hundredths``: the creation time's byte 13, tens of milliseconds
    (0-199) added to its two-second time, as TSK adds them (a larger value is ignored, as by
    the Linux kernel's vfat)."""
    if date == 0:
        return None
    try:
        moment = datetime(1980 + (date >> 9), (date >> 5) & 0xF, date & 0x1F, time >> 11,
                          (time >> 5) & 0x3F, (time & 0x1F) * 2, tzinfo=UTC)
    except ValueError:
        return None
    if hundredths < 200:
        moment += timedelta(milliseconds=10 * hundredths)
    return moment


#: The largest FAT whose two copies are compared when the volume is opened (16 MiB: FAT12 and
#: FAT16 always, FAT32 up to some 4 million clusters); a larger one is left unchecked.
MAX_FAT_COMPARED = 16 << 20


def _fat_value(table: bytes, n: int, bits: int) -> int:
    """Entry ``n`` of a FAT of ``bits``-bit entries held in ``table``."""
    if bits == 12:
        pair = int.from_bytes(table[n * 3 // 2:n * 3 // 2 + 2], "little")
        return pair >> 4 if n & 1 else pair & 0xFFF
    width = bits // 8
    value = int.from_bytes(table[n * width:n * width + width], "little")
    return value & 0x0FFFFFFF if bits == 32 else value


class FatVolume:
    """The geometry of one FAT file system and reads along its cluster chains."""

    def __init__(self, stream: ImageStream, byte_offset: int, kind: str) -> None:
        self.stream = stream
        self.base = byte_offset
        boot = stream.pread(byte_offset, 512)
        if len(boot) < 512:
            raise FileSystemError("FAT boot sector cut short")
        self.sector = struct.unpack_from("<H", boot, 11)[0]
        self.per_cluster = boot[13]
        reserved, fats = struct.unpack_from("<H", boot, 14)[0], boot[16]
        root_entries = struct.unpack_from("<H", boot, 17)[0]
        fat_size = struct.unpack_from("<H", boot, 22)[0] or struct.unpack_from("<I", boot, 36)[0]
        total = struct.unpack_from("<H", boot, 19)[0] or struct.unpack_from("<I", boot, 32)[0]
        if self.sector not in (512, 1024, 2048, 4096) or not self.per_cluster or not fats:
            raise FileSystemError("FAT boot sector holds an impossible geometry")
        self.bits = {"fat12": 12, "fat16": 16}.get(kind, 32)
        self.fat_start = reserved
        root_sectors = (root_entries * 32 + self.sector - 1) // self.sector
        self.first_data = reserved + fats * fat_size + root_sectors
        self.clusters = max(0, (total - self.first_data) // self.per_cluster)
        if self.bits == 32:
            root_cluster = struct.unpack_from("<I", boot, 44)[0]
            self.root_sector = self.first_data + (root_cluster - 2) * self.per_cluster
        else:
            self.root_sector = reserved + fats * fat_size

        self.inode_base = reserved + fats * fat_size  #: TSK's first data sector
        self.fats, self.fat_size = fats, fat_size  #: copies of the FAT, sectors each
        #: FAT32's mirroring off (BPB_ExtFlags bit 7): each copy may then hold what it holds
        self.unmirrored = self.bits == 32 and bool(struct.unpack_from("<H", boot, 40)[0] & 0x80)
        #: whether enough clusters are free for a deleted file, by (first cluster, count)
        self._recoverable: dict[tuple[int, int], bool] = {}

    def copies_differ(self) -> int | None:
        """How many cluster entries (2 on; 0 and 1 hold the media byte and the dirty flags
        that only the first copy may carry) the second FAT holds otherwise than the first, as
        ``fsck.fat`` reports "FATs differ"; None where nothing was compared (one copy, FAT32's
        mirroring off, a FAT of more than :data:`MAX_FAT_COMPARED`, or a copy not readable)."""
        size = self.fat_size * self.sector
        if self.fats < 2 or self.unmirrored or size > MAX_FAT_COMPARED:
            return None
        first = self.base + self.fat_start * self.sector
        one, two = self.stream.pread(first, size), self.stream.pread(first + size, size)
        if len(one) != size or len(two) != size:
            return None
        if one == two:
            return 0
        entries = min(self.clusters + 2, size * 8 // self.bits)
        return sum(1 for n in range(2, entries)
                   if _fat_value(one, n, self.bits) != _fat_value(two, n, self.bits))

    def inode_of(self, sector: int, slot: int) -> int:
        return (sector - self.inode_base) * (self.sector // 32) + _FIRST_INODE + slot

    def entries(self, runs: list[tuple[int, int]]) -> Iterator[RawFatEntry]:
        """Short entries (allocated and deleted) of the directory held in ``runs`` (sector,
        count), each with the long name that precedes it when its checksum matches."""
        per_sector = self.sector // 32
        parts: list[bytes] = []  # the long-name entries read since the last short entry
        for start, count in runs:
            for sector in range(start, start + count):
                data = self.stream.pread(self.base + sector * self.sector, self.sector)
                for slot in range(min(per_sector, len(data) // 32)):
                    raw = data[slot * 32 : slot * 32 + 32]
                    if raw[0] == 0:
                        return  # the end of the directory
                    if (raw[11] & _ATTR_LONG_NAME) == _ATTR_LONG_NAME:
                        parts.append(raw)
                        continue
                    entry = self._entry(raw, self.inode_of(sector, slot), parts)
                    parts = []
                    if entry is not None:
                        yield entry

    def entry_at(self, inode: int) -> RawFatEntry | None:
        """The short entry at TSK address ``inode`` (with the long name in the slots before
        it, in the same sector), if that slot holds one."""
        per_sector = self.sector // 32
        if inode < _FIRST_INODE:
            return None
        sector = self.inode_base + (inode - _FIRST_INODE) // per_sector
        slot = (inode - _FIRST_INODE) % per_sector
        data = self.stream.pread(self.base + sector * self.sector, self.sector)
        raw = data[slot * 32 : slot * 32 + 32]
        if len(raw) < 32 or raw[0] == 0 or (raw[11] & _ATTR_LONG_NAME) == _ATTR_LONG_NAME:
            return None
        parts: list[bytes] = []
        for before in range(slot - 1, -1, -1):
            prior = data[before * 32 : before * 32 + 32]
            if (prior[11] & _ATTR_LONG_NAME) != _ATTR_LONG_NAME:
                break
            parts.insert(0, prior)
        return self._entry(raw, inode, parts)

    def _entry(self, raw: bytes, inode: int, parts: list[bytes]) -> RawFatEntry | None:
        attr = raw[11]
        if attr & 0xC0 or attr & _ATTR_VOLUME or any(b < 0x20 for b in raw[1:11]):
            return None
        deleted = raw[0] == _FREE
        stored = bytes([0xE5]) + raw[1:11] if raw[0] == 0x05 else raw[:11]
        case = raw[12]
        base, ext = stored[:8].rstrip(b" ").decode("cp437"), stored[8:].rstrip(b" ").decode(
            "cp437")
        if deleted:
            base = "_" + base[1:]
        if case & _LOWER_BASE:
            base = base.lower()
        if case & _LOWER_EXT:
            ext = ext.lower()
        short = base + ("." + ext if ext else "")
        long_name = _long_name(parts, stored, deleted)
        cluster = struct.unpack_from("<H", raw, 26)[0]
        if self.bits == 32:
            cluster |= struct.unpack_from("<H", raw, 20)[0] << 16
        ctime, cdate, adate, mtime, mdate = struct.unpack_from("<HHH", raw, 14) + \
            struct.unpack_from("<HH", raw, 22)
        return RawFatEntry(inode=inode, name=long_name or short, short_name=short,
                           long_name=long_name, deleted=deleted,
                           is_dir=bool(attr & _ATTR_DIRECTORY),
                           first_cluster=cluster, size=struct.unpack_from("<I", raw, 28)[0],
                           modified=_dos_time(mdate, mtime), accessed=_dos_time(adate),
                           born=_dos_time(cdate, ctime, raw[13]))

    def is_free(self, cluster: int) -> bool:
        """The FAT marks ``cluster`` unallocated (0)."""
        return self._next(cluster) == 0

    def recovered_clusters(self, entry: RawFatEntry) -> Iterator[int]:
        """The clusters TSK reads for a deleted file: from its first one on, those the FAT
        marks free, enough for its size. Raises (before yielding any) when the first one is
        allocated again or the volume ends first (nothing of it is then recoverable this way).
        An empty file (size 0) needs no cluster, and its first cluster is 0: none.

        The FAT is read a window at a time (:data:`_FAT_WINDOW`) and each answer kept, so
        that a deleted entry claiming 4 GiB in 512-byte clusters costs one pass over the FAT
        (at most), not a read per cluster, for every time its doubts are asked."""
        cluster_bytes = self.sector * self.per_cluster
        wanted = (entry.size + cluster_bytes - 1) // cluster_bytes
        if wanted == 0:
            return iter(())
        first = entry.first_cluster
        if not 2 <= first < self.clusters + 2 or not self.is_free(first):
            raise FileSystemError(f"inode {entry.inode}: not recoverable: the first cluster "
                                  f"({first}) of the deleted file is allocated or invalid")
        key = (first, wanted)
        if key not in self._recoverable:
            self._recoverable[key] = self._enough_free(first, wanted)
        if not self._recoverable[key]:
            raise FileSystemError(f"inode {entry.inode}: not recoverable: too few free "
                                  "clusters after its first one for its size")
        return self._free_clusters(first, wanted)

    def _enough_free(self, first: int, wanted: int) -> bool:
        """At least ``wanted`` clusters from ``first`` on are free."""
        found = 0
        for _ in self._free_clusters(first, wanted):
            found += 1
        return found >= wanted

    def _free_clusters(self, first: int, wanted: int) -> Iterator[int]:
        """Up to ``wanted`` free clusters from ``first`` on, in order, to the volume's end."""
        per_window = _FAT_WINDOW * 8 // self.bits // 2 * 2  # even: FAT12 pairs stay whole
        found = 0
        start = first - first % 2
        last = self.clusters + 2
        while found < wanted and start < last:
            count = min(per_window, last - start)
            for index, value in enumerate(self._window(start, count)):
                cluster = start + index
                if cluster >= first and value == 0:
                    yield cluster
                    found += 1
                    if found >= wanted:
                        return
            start += count

    def _window(self, start: int, count: int) -> list[int]:
        """The FAT entries of clusters ``start`` .. ``start + count - 1`` (``start`` even);
        those past the end of the FAT as read read as allocated (1)."""
        if self.bits == 12:
            data = self.stream.pread(self.base + self.fat_start * self.sector + start * 3 // 2,
                                     (count + 1) // 2 * 3)
            values: list[int] = []
            for at in range(0, len(data) - 2, 3):
                pair = int.from_bytes(data[at : at + 3], "little")
                values += (pair & 0xFFF, pair >> 12)
        else:
            width = self.bits // 8
            data = self.stream.pread(self.base + self.fat_start * self.sector + start * width,
                                     count * width)
            table = array.array("H" if width == 2 else "I")
            table.frombytes(data[: len(data) // width * width])
            if sys.byteorder != "little":
                table.byteswap()
            mask = 0xFFFF if width == 2 else 0x0FFFFFFF
            values = [v & mask for v in table]
        return (values + [1] * count)[:count]

    def folder_runs(self, entry: RawFatEntry) -> list[tuple[int, int]]:
        """The sectors of a folder's cluster chain, as (first sector, count) runs; bounded by
        the number of clusters, so a looping chain ends."""
        runs: list[tuple[int, int]] = []
        cluster, seen = entry.first_cluster, set()
        end = (1 << self.bits) - 8 if self.bits < 32 else 0x0FFFFFF8
        while 2 <= cluster < self.clusters + 2 and cluster not in seen:
            seen.add(cluster)
            runs.append((self.first_data + (cluster - 2) * self.per_cluster, self.per_cluster))
            cluster = self._next(cluster)
            if cluster >= end:
                break
        return runs

    def _next(self, cluster: int) -> int:
        if self.bits == 12:
            at = cluster + cluster // 2
            pair = struct.unpack("<H", self._fat(at, 2))[0]
            return pair >> 4 if cluster & 1 else pair & 0xFFF
        if self.bits == 16:
            return int(struct.unpack("<H", self._fat(cluster * 2, 2))[0])
        return int(struct.unpack("<I", self._fat(cluster * 4, 4))[0]) & 0x0FFFFFFF

    def _fat(self, at: int, size: int) -> bytes:
        data = self.stream.pread(self.base + self.fat_start * self.sector + at, size)
        if len(data) < size:
            raise FileSystemError("the FAT is cut short")
        return data

    def content(self, entry: RawFatEntry, block: int = 1 << 20) -> Iterator[bytes]:
        """The file's bytes along its cluster chain, ``size`` of them; a broken chain raises,
        and so does one that loops (found within twice its length, so that a size of 4 GiB
        over a chain of one cluster pointing at itself ends after a few reads). A deleted
        file's come from the clusters :meth:`recovered_clusters` gives."""
        cluster_bytes = self.sector * self.per_cluster
        if entry.deleted:
            yield from self._recovered_content(entry)
            return
        left, cluster, seen = entry.size, entry.first_cluster, 0
        end = (1 << self.bits) - 8 if self.bits < 32 else 0x0FFFFFF8
        mark, power = cluster, 1  # a chain that comes back to a cluster (Brent's loop check)
        while left > 0:
            if not 2 <= cluster < self.clusters + 2 or seen > self.clusters:
                raise ContentReadError(f"inode {entry.inode}: the cluster chain breaks at "
                                      f"cluster {cluster} with {left} bytes still to read")
            want = min(left, cluster_bytes)
            yield self._cluster_data(entry, cluster, want)
            left -= want
            seen += 1
            if left > 0:
                cluster = self._next(cluster)
                if cluster >= end:
                    raise ContentReadError(f"inode {entry.inode}: the cluster chain ends with "
                                          f"{left} bytes still to read")
                if cluster == mark:
                    raise ContentReadError(f"inode {entry.inode}: the cluster chain loops back "
                                          f"to cluster {cluster} with {left} bytes still to "
                                          "read")
                if seen == power:
                    mark, power = cluster, power * 2

    def _recovered_content(self, entry: RawFatEntry) -> Iterator[bytes]:
        """A deleted file's bytes, from the clusters :meth:`recovered_clusters` gives."""
        cluster_bytes = self.sector * self.per_cluster
        left = entry.size
        for cluster in self.recovered_clusters(entry):
            want = min(left, cluster_bytes)
            yield self._cluster_data(entry, cluster, want)
            left -= want

    def _cluster_data(self, entry: RawFatEntry, cluster: int, want: int) -> bytes:
        """The first ``want`` bytes of data cluster ``cluster`` of ``entry``'s content."""
        offset = self.base + (self.first_data + (cluster - 2) * self.per_cluster) * self.sector
        data = self.stream.pread(offset, want)
        if len(data) < want:
            raise ContentReadError(f"inode {entry.inode}: cluster {cluster} lies beyond the end "
                                  "of the image")
        return data


def lfn_checksum(name11: bytes) -> int:
    """The checksum a long-name entry keeps of its short entry's 11 name bytes."""
    total = 0
    for byte in name11:
        total = (((total & 1) << 7) + (total >> 1) + byte) & 0xFF
    return total


def _long_name(parts: list[bytes], stored: bytes, deleted: bool) -> str | None:
    """The long name ``parts`` (the entries before the short one, in directory order) spell,
    when they form one name whose checksum matches the short entry; else None."""
    if not parts:
        return None
    checksum = parts[-1][13]
    run: list[bytes] = []
    for part in reversed(parts):  # the parts right before the short entry, sharing a checksum
        if part[13] != checksum:
            break
        run.insert(0, part)
    if not deleted:
        numbers = [p[0] for p in run]
        expected = [len(run) | _LAST_PART, *range(len(run) - 1, 0, -1)]
        if numbers != expected or lfn_checksum(stored) != checksum:
            return None
    units = b"".join(p[a:b] for p in reversed(run) for a, b in _LFN_SLICES)
    name = units.decode("utf-16-le", "surrogatepass")
    name = name.split("\0", 1)[0]
    # a lone surrogate half kept as its WTF-8 bytes, as NTFS names are (ntfs.wtf8_name)
    name = name.encode("utf-8", "surrogatepass").decode("utf-8", "surrogateescape")
    if not name:
        return None
    if deleted:  # the first short byte is lost: try those the long name would have given
        trimmed = name.lstrip(". ") or name
        firsts = {c.upper() if c.isascii() else "_" for c in (name[0], trimmed[0])}
        if not any(lfn_checksum(c.encode("ascii", "replace") + stored[1:]) == checksum
                   for c in firsts):
            return None
    return name
