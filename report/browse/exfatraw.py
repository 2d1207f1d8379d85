"""exFAT files whose directory entry is in use where the allocation bitmap says their clusters
are free: read along their FAT chain, as the file system does.

The Sleuth Kit decides whether an exFAT file is allocated from the allocation bitmap, not from
the in-use bit of its directory entry (type 0x85 in use, 0x05 deleted). A damaged bitmap (a
zeroed sector, which ``fsck.exfat`` reports) then turns every live file into a "deleted" one:
``fls`` and our listings hid them, and TSK reads a "deleted" file's content as contiguous
clusters from its first one, so a fragmented live file came out as other files' bytes with no
error. The directory entry is what the file system itself goes by (exFAT specification 6.2:
the bitmap only tracks cluster allocation), so such a file is live here, and its content is
read from its stream extension entry (type 0xC0: flags, first cluster, data length) along the
FAT chain, or contiguously where the NoFatChain flag says the FAT holds no chain for it.

Bounded: a chain that loops or leaves the cluster heap stops the read with a
:class:`~bitwitness.errors.ContentReadError` naming the cluster.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from bitwitness.errors import ContentReadError
from bitwitness.report.browse.zones import ExfatZones

_IN_USE_FILE = 0x85
_STREAM = 0xC0
_NO_FAT_CHAIN = 0x02
#: FAT values from this one on end a chain (0xFFFFFFF7 marks a bad cluster: no data either)
_CHAIN_END = 0xFFFFFFF7


class ExfatVolume:
    """The boot sector's geometry and the directory entries of one exFAT volume."""

    def __init__(self, entries: ExfatZones) -> None:
        self._entries = entries
        self._read = entries.read
        self._root = 0
        self._bitmap: tuple[int, int] | bool | None = False  # (first cluster, bytes); unread
        boot = self._read(0, 512)
        if len(boot) < 512 or boot[3:11] != b"EXFAT   ":
            self.ok = False
            return
        sector_shift, cluster_shift = boot[108], boot[109]
        self.ok = 9 <= sector_shift <= 12 and sector_shift + cluster_shift <= 25
        self.sector = 1 << sector_shift
        self.cluster_bytes = self.sector << cluster_shift
        self.fat_start, self.heap, self.clusters = struct.unpack_from("<I4xII", boot, 80)
        self._root = struct.unpack_from("<I", boot, 96)[0]

    def in_use(self, inode: int) -> bool:
        """Whether TSK's ``inode`` is a file directory entry marked in use (0x85)."""
        raw = self._entries.entry(inode)
        return self.ok and len(raw) == 32 and raw[0] == _IN_USE_FILE

    def _stream_entry(self, inode: int) -> tuple[int, int, int] | None:
        """(flags, first cluster, data length) of the stream extension (in use or deleted)
        that follows the file entry ``inode``; None where the slot after it holds none."""
        raw = self._entries.entry(inode + 1)
        if len(raw) != 32 or raw[0] & 0x7F != _STREAM & 0x7F:  # in use (0xC0) or deleted
            return None
        first, length = struct.unpack_from("<IQ", raw, 20)
        return raw[1], first, length

    def content(self, inode: int, size: int, block: int = 1 << 20) -> Iterator[bytes]:
        """``size`` bytes of the file at ``inode`` (at most its data length), from its
        clusters in chain order, ``block`` bytes at most at a time."""
        found = self._stream_entry(inode)
        if found is None:
            raise ContentReadError(f"inode {inode}: no stream extension entry follows its "
                                   "file entry")
        flags, first, length = found
        if length and not 2 <= first < self.clusters + 2:
            raise ContentReadError(f"inode {inode}: its stream extension records {length} bytes "
                                   f"from cluster {first}, outside the cluster heap (2-"
                                   f"{self.clusters + 1}): nothing of it can be read")
        left = min(size, length)
        contiguous = bool(flags & _NO_FAT_CHAIN)
        cluster, seen = first, 0
        mark, power = cluster, 1  # a chain that comes back to a cluster (Brent's loop check)
        while left > 0:
            if not 2 <= cluster < self.clusters + 2 or seen > self.clusters:
                raise ContentReadError(f"inode {inode}: its cluster chain leaves the cluster "
                                       f"heap at cluster {cluster} with {left} bytes still "
                                       "to read")
            offset = (self.heap * self.sector) + (cluster - 2) * self.cluster_bytes
            want = min(left, self.cluster_bytes)
            for at in range(0, want, block):
                data = self._read(offset + at, min(block, want - at))
                if len(data) != min(block, want - at):
                    raise ContentReadError(f"inode {inode}: cluster {cluster} lies beyond the "
                                           "end of the image")
                yield data
            left -= want
            seen += 1
            if left > 0:
                cluster = cluster + 1 if contiguous else self._next(cluster, inode, left)
                if cluster == mark:
                    raise ContentReadError(f"inode {inode}: the cluster chain loops back to "
                                           f"cluster {cluster} with {left} bytes still to read")
                if seen == power:
                    mark, power = cluster, power * 2

    def _next(self, cluster: int, inode: int, left: int) -> int:
        raw = self._read(self.fat_start * self.sector + cluster * 4, 4)
        if len(raw) != 4:
            raise ContentReadError(f"inode {inode}: the FAT is cut short at cluster {cluster}")
        value = int.from_bytes(raw, "little")
        if value >= _CHAIN_END:
            raise ContentReadError(f"inode {inode}: the cluster chain ends with {left} bytes "
                                   "still to read")
        return value

    def _bitmap_place(self) -> tuple[int, int] | None:
        """(first cluster, length in bytes) of the allocation bitmap, from its directory entry
        (type 0x81) in the root folder's first cluster; None where there is none."""
        if self._bitmap is False:
            self._bitmap = None
            if self.ok and 2 <= self._root < self.clusters + 2:
                root = self._read(self.heap * self.sector
                                  + (self._root - 2) * self.cluster_bytes,
                                  min(self.cluster_bytes, 1 << 16))
                for at in range(0, len(root) - 31, 32):
                    if root[at] == 0x81:
                        first, length = struct.unpack_from("<IQ", root, at + 20)
                        self._bitmap = (first, length)
                        break
        return self._bitmap if isinstance(self._bitmap, tuple) else None

    def allocated_sectors(self, first: int, count: int) -> int | None:
        """How many of sectors ``first`` .. ``first + count - 1`` (TSK's exFAT blocks are
        sectors) lie in clusters the allocation bitmap marks allocated; None where the bitmap
        cannot be read. Sectors before the cluster heap, and clusters past the bitmap, count as
        allocated. The bitmap is read 64 KiB at a time (a hostile run as long as the volume
        costs one pass over it, not a read per cluster)."""
        place = self._bitmap_place()
        if place is None:
            return None
        per_cluster = self.cluster_bytes // self.sector
        end = first + count
        taken = max(0, min(end, self.heap) - first)  # before the heap: metadata
        first = max(first, self.heap)
        if first >= end:
            return taken
        low, high = (first - self.heap) // per_cluster, (end - 1 - self.heap) // per_cluster
        allocated = self._allocated_clusters(low, high + 1, place)
        # the first and last clusters may be covered in part: count their sectors exactly
        for index in {low, high}:
            if self._allocated_clusters(index, index + 1, place):
                lo = max(first, self.heap + index * per_cluster)
                hi = min(end, self.heap + (index + 1) * per_cluster)
                taken += hi - lo
                allocated -= 1
        return taken + allocated * per_cluster  # the clusters between, whole

    def _allocated_clusters(self, low: int, high: int, place: tuple[int, int]) -> int:
        """How many of cluster indexes ``low`` .. ``high - 1`` (cluster number - 2) the bitmap
        marks allocated; indexes past the bitmap count as allocated."""
        start, length = place
        at = self.heap * self.sector + (start - 2) * self.cluster_bytes
        past = max(0, high - max(low, length * 8))
        high = min(high, length * 8)
        total = past
        index = low
        while index < high:
            stop = min(high, (index // 8 + (1 << 16)) * 8)
            raw = self._read(at + index // 8, (stop - 1) // 8 - index // 8 + 1)
            if not raw:
                return total + high - index
            bits = int.from_bytes(raw, "little") >> (index % 8)
            total += (bits & ((1 << (stop - index)) - 1)).bit_count()
            index = stop
        return total

    def first_cluster_allocated(self, inode: int) -> bool | None:
        """Whether the first cluster of the (deleted) file at ``inode`` is allocated now, per
        the bitmap; None where its entries or the bitmap cannot be read."""
        found = self._stream_entry(inode)
        place = self._bitmap_place()
        if found is None or place is None:
            return None
        _flags, first, length = found
        if length == 0 or not 2 <= first < self.clusters + 2:
            return None
        return self._allocated_clusters(first - 2, first - 1, place) == 1
