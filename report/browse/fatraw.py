"""FAT directory entries that The Sleuth Kit leaves out, read from the raw directory.

TSK drops an 8.3 entry whose name bytes it judges invalid (``../../X TXT``, ``/ETC/PW TXT``,
``..\\..\\X TXT``): ``fls`` does not show it and ``icat`` refuses its address, although the
entry is allocated and its clusters hold a file. A crafted image can hide data that way, so the
listing reads each directory's bytes (the sectors TSK gives for it) and adds every allocated
short entry that TSK did not list, with the content read by following the FAT chain here.

The layout, from the boot sector: bytes per sector (offset 11), sectors per cluster (13),
reserved sectors (14), number of FATs (16), root entries (17), FAT size (22, or 36 on FAT32),
root cluster (44, FAT32). A 32-byte directory entry holds the 11 name bytes, attributes (11),
creation time and date (14, 16), access date (18), high cluster word (20, FAT32), modification
time and date (22, 24), low cluster word (26) and size (28). TSK numbers the entry in sector
``s`` at slot ``i`` as inode ``(s - root_sector) * (bytes_per_sector / 32) + 3 + i``: the same
address is given here, so that the entry is named the way TSK names its neighbours.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from bitwitness.errors import FileSystemError
from bitwitness.stream import ImageStream

_ATTR_VOLUME = 0x08
_ATTR_DIRECTORY = 0x10
_ATTR_LONG_NAME = 0x0F
_FREE = 0xE5
_FIRST_INODE = 3


@dataclass(frozen=True)
class RawFatEntry:
    """An allocated 8.3 entry read from the raw directory."""

    inode: int  #: TSK's address for the entry's slot
    name: str  #: ``NAME.EXT`` from the 11 bytes (code page 437: every byte maps to a character)
    is_dir: bool
    first_cluster: int
    size: int
    modified: datetime | None
    accessed: datetime | None
    born: datetime | None


def _dos_time(date: int, time: int = 0) -> datetime | None:
    if date == 0:
        return None
    try:
        return datetime(1980 + (date >> 9), (date >> 5) & 0xF, date & 0x1F, time >> 11,
                        (time >> 5) & 0x3F, (time & 0x1F) * 2, tzinfo=UTC)
    except ValueError:
        return None


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

    def inode_of(self, sector: int, slot: int) -> int:
        return (sector - self.root_sector) * (self.sector // 32) + _FIRST_INODE + slot

    def entries(self, runs: list[tuple[int, int]]) -> Iterator[RawFatEntry]:
        """Allocated short entries of the directory held in ``runs`` (sector, count)."""
        per_sector = self.sector // 32
        for start, count in runs:
            for sector in range(start, start + count):
                data = self.stream.pread(self.base + sector * self.sector, self.sector)
                for slot in range(min(per_sector, len(data) // 32)):
                    raw = data[slot * 32 : slot * 32 + 32]
                    if raw[0] == 0:
                        return  # the end of the directory
                    entry = self._entry(raw, self.inode_of(sector, slot))
                    if entry is not None:
                        yield entry

    def entry_at(self, inode: int) -> RawFatEntry | None:
        """The allocated short entry at TSK address ``inode``, if that slot holds one."""
        per_sector = self.sector // 32
        if inode < _FIRST_INODE:
            return None
        sector = self.root_sector + (inode - _FIRST_INODE) // per_sector
        slot = (inode - _FIRST_INODE) % per_sector
        raw = self.stream.pread(self.base + sector * self.sector + slot * 32, 32)
        if len(raw) < 32 or raw[0] == 0:
            return None
        return self._entry(raw, inode)

    def _entry(self, raw: bytes, inode: int) -> RawFatEntry | None:
        attr = raw[11]
        if raw[0] == _FREE or attr & 0xC0 or (attr & _ATTR_LONG_NAME) == _ATTR_LONG_NAME:
            return None
        if attr & _ATTR_VOLUME or any(b < 0x20 for b in raw[1:11]):
            return None
        first = bytes([0xE5]) + raw[1:11] if raw[0] == 0x05 else raw[:11]
        base, ext = first[:8].rstrip(b" "), first[8:].rstrip(b" ")
        name = (base + (b"." + ext if ext else b"")).decode("cp437")
        cluster = struct.unpack_from("<H", raw, 26)[0]
        if self.bits == 32:
            cluster |= struct.unpack_from("<H", raw, 20)[0] << 16
        ctime, cdate, adate, mtime, mdate = struct.unpack_from("<HHH", raw, 14) + \
            struct.unpack_from("<HH", raw, 22)
        return RawFatEntry(inode=inode, name=name, is_dir=bool(attr & _ATTR_DIRECTORY),
                           first_cluster=cluster, size=struct.unpack_from("<I", raw, 28)[0],
                           modified=_dos_time(mdate, mtime), accessed=_dos_time(adate),
                           born=_dos_time(cdate, ctime))

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
        """The file's bytes along its cluster chain, ``size`` of them; a broken chain raises."""
        cluster_bytes = self.sector * self.per_cluster
        left, cluster, seen = entry.size, entry.first_cluster, 0
        end = (1 << self.bits) - 8 if self.bits < 32 else 0x0FFFFFF8
        while left > 0:
            if not 2 <= cluster < self.clusters + 2 or seen > self.clusters:
                raise FileSystemError(f"inode {entry.inode}: the cluster chain breaks at "
                                      f"cluster {cluster} with {left} bytes still to read")
            offset = self.base + (self.first_data + (cluster - 2) * self.per_cluster) * (
                self.sector)
            want = min(left, cluster_bytes)
            data = self.stream.pread(offset, want)
            if len(data) < want:
                raise FileSystemError(f"inode {entry.inode}: cluster {cluster} lies beyond the "
                                      "end of the image")
            yield data
            left -= want
            seen += 1
            if left > 0:
                cluster = self._next(cluster)
                if cluster >= end:
                    raise FileSystemError(f"inode {entry.inode}: the cluster chain ends with "
                                          f"{left} bytes still to read")
