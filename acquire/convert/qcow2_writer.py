"""QCOW2 (version 3) writer: the media as a sparse QCOW2 that QEMU/KVM boot and ``qemu-img check``
accepts, written in one sequential pass.

Layout, in 64 KiB clusters: the header (cluster 0), the L1 table, every L2 table the media can
need, the refcount table, the refcount blocks for the largest file the media can make, then the
data clusters in media order. All-zero clusters are not stored (their L2 entry stays 0, which
reads as zeros). The metadata area is reserved up front, sized from the media size alone, and
filled in at the end, when it is known which clusters hold data; reserved clusters left unused
have refcount 0 and are holes in the file. Every used cluster has refcount 1, so L1 and L2
entries carry the "copied" flag (bit 63). Structures are big-endian, as
:mod:`bitwitness.images.qcow` reads them.
"""

from __future__ import annotations

import os
import struct
from array import array
from pathlib import Path

from bitwitness.acquire.convert.outputs import close_synced, create_output, pwrite_all
from bitwitness.errors import UsageError

CLUSTER_BITS = 16
CLUSTER = 1 << CLUSTER_BITS
L2_ENTRIES = CLUSTER // 8
REFCOUNT_ORDER = 4  #: 16-bit refcounts
REFCOUNTS_PER_BLOCK = CLUSTER * 8 // (1 << REFCOUNT_ORDER)
COPIED = 1 << 63
_HEADER = struct.Struct(">4sIQIIQIIQQIIQQQQII")


def _clusters(n_bytes: int) -> int:
    return -(-n_bytes // CLUSTER)


class Qcow2Layout:
    """Where the metadata of a QCOW2 of ``media_size`` bytes lives (cluster numbers)."""

    def __init__(self, media_size: int) -> None:
        self.media_size = media_size
        self.data_clusters = _clusters(media_size)
        self.l2_tables = -(-self.data_clusters // L2_ENTRIES)
        self.l1_clusters = max(1, _clusters(8 * self.l2_tables))
        self.l1 = 1
        self.l2 = self.l1 + self.l1_clusters
        self.refcount_table = self.l2 + self.l2_tables
        blocks = 1
        while True:  # the refcount blocks count themselves among the clusters they cover
            table = max(1, _clusters(8 * blocks))
            total = self.refcount_table + table + blocks + self.data_clusters
            needed = -(-total // REFCOUNTS_PER_BLOCK)
            if needed <= blocks:
                break
            blocks = needed
        self.refcount_table_clusters = table
        self.refcount_blocks = blocks
        self.refcount_block = self.refcount_table + table
        self.first_data = self.refcount_block + blocks


class Qcow2Writer:
    """Sink that writes ``BASE.qcow2`` from the media, written in order."""

    def __init__(self, path: Path, media_size: int, *, overwrite: bool = False) -> None:
        if media_size <= 0:
            raise UsageError("an empty media cannot be written as QCOW2")
        self.path = path
        self.media_size = media_size
        self.layout = Qcow2Layout(media_size)
        self._fd: int | None = create_output(path, overwrite=overwrite)
        self._pending = bytearray()
        self._written = 0
        self._next_cluster = self.layout.first_data
        self._guest = 0  #: guest clusters stored so far
        #: 1 for each guest cluster stored (16 MiB per TiB of media), 0 for one left out
        self._stored = bytearray(self.layout.data_clusters)

    def write(self, data: bytes | memoryview) -> None:
        if self._written + len(data) > self.media_size:
            raise UsageError("more media than announced was written to the QCOW2")
        self._written += len(data)
        self._pending += data
        full = len(self._pending) // CLUSTER * CLUSTER
        for start in range(0, full, CLUSTER):
            self._store(bytes(self._pending[start : start + CLUSTER]))
        del self._pending[:full]

    def _store(self, cluster: bytes) -> None:
        """The next guest cluster: stored after the previous one, or left out when all zero."""
        if any(cluster):
            assert self._fd is not None
            pwrite_all(self._fd, cluster, self._next_cluster * CLUSTER, self.path)
            self._stored[self._guest] = 1
            self._next_cluster += 1
        self._guest += 1

    def finish(self) -> list[Path]:
        if self._written != self.media_size:
            self.abort()
            raise UsageError(
                f"QCOW2 incomplete: {self._written} of {self.media_size} bytes were written")
        if self._pending:
            self._store(bytes(self._pending).ljust(CLUSTER, b"\0"))
            self._pending.clear()
        assert self._fd is not None
        for offset, data in self._metadata():
            pwrite_all(self._fd, data, offset, self.path)
        fd, self._fd = self._fd, None
        close_synced(fd, self.path)
        return [self.path]

    def _metadata(self) -> list[tuple[int, bytes]]:
        """Every metadata structure and where it goes, now that the stored clusters are known."""
        lay = self.layout
        used = {0, *range(lay.l1, lay.l1 + lay.l1_clusters),
                *range(lay.refcount_table, lay.refcount_table + lay.refcount_table_clusters)}
        l1, out = self._l2_tables(used)
        out += self._refcounts(used)
        out.append((lay.l1 * CLUSTER, struct.pack(f">{len(l1)}Q", *l1)))
        header = _HEADER.pack(b"QFI\xfb", 3, 0, 0, CLUSTER_BITS, self.media_size, 0,
                              lay.l2_tables, lay.l1 * CLUSTER, lay.refcount_table * CLUSTER,
                              lay.refcount_table_clusters, 0, 0, 0, 0, 0, REFCOUNT_ORDER, 104)
        out.append((0, header.ljust(CLUSTER, b"\0")))
        return out

    def _l2_tables(self, used: set[int]) -> tuple[list[int], list[tuple[int, bytes]]]:
        """The L1 entries and the L2 tables that map a stored cluster (added to ``used``)."""
        lay = self.layout
        l1 = [0] * lay.l2_tables
        out: list[tuple[int, bytes]] = []
        host = lay.first_data  # data clusters were stored in media order, one after another
        for index in range(lay.l2_tables):
            flags = self._stored[index * L2_ENTRIES : (index + 1) * L2_ENTRIES]
            if not any(flags):
                continue
            entries = array("Q", bytes(8 * L2_ENTRIES))
            for i, stored in enumerate(flags):
                if stored:
                    entries[i] = host * CLUSTER | COPIED
                    host += 1
            entries.byteswap()
            l1[index] = (lay.l2 + index) * CLUSTER | COPIED
            used.add(lay.l2 + index)
            out.append(((lay.l2 + index) * CLUSTER, entries.tobytes()))
        return l1, out

    def _refcounts(self, used: set[int]) -> list[tuple[int, bytes]]:
        """The refcount blocks (refcount 1 for every used metadata cluster, every data cluster
        and each block itself) and the refcount table pointing at them."""
        lay = self.layout
        data = range(lay.first_data, self._next_cluster)
        blocks: set[int] = set()
        while True:  # a refcount block is itself a used cluster, possibly of another block
            needed = {c // REFCOUNTS_PER_BLOCK for c in used}
            if data:
                needed |= set(range(data.start // REFCOUNTS_PER_BLOCK,
                                    (data.stop - 1) // REFCOUNTS_PER_BLOCK + 1))
            if needed <= blocks:
                break
            blocks |= needed
            used.update(lay.refcount_block + b for b in blocks)
        pointers = [0] * (lay.refcount_table_clusters * CLUSTER // 8)
        out: list[tuple[int, bytes]] = []
        for block in sorted(blocks):
            first = block * REFCOUNTS_PER_BLOCK
            counts = array("H", bytes(2 * REFCOUNTS_PER_BLOCK))
            low, high = max(data.start, first), min(data.stop, first + REFCOUNTS_PER_BLOCK)
            if low < high:
                counts[low - first : high - first] = array("H", [1]) * (high - low)
            for c in used:
                if first <= c < first + REFCOUNTS_PER_BLOCK:
                    counts[c - first] = 1
            counts.byteswap()
            pointers[block] = (lay.refcount_block + block) * CLUSTER
            out.append((pointers[block], counts.tobytes()))
        out.append((lay.refcount_table * CLUSTER, struct.pack(f">{len(pointers)}Q", *pointers)))
        return out

    def abort(self) -> list[Path]:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        return [self.path]
