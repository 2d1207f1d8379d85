"""QED (QEMU enhanced disk), read by our own code; QEMU's ``qed`` driver is the second reader.

Layout (little-endian; QEMU's docs/interop/qed_spec.rst): the first cluster opens with a header
of the magic ``QED\\0``, the cluster size (a power of two from 4 KiB to 64 MiB), the table size
in clusters (a power of two from 1 to 16), the header size in clusters, three feature bitmaps,
the L1 table's file offset, the media size and, with the backing-file feature, where the backing
file's name lies in the header. Two levels of tables map the media, each table holding
``table size * cluster size / 8`` file offsets: the L1 entry of a guest cluster names an L2
table, whose entry names the data cluster. An L2 offset of 0 is a table never written, a data
offset of 0 a cluster never written (both read from the backing file, or as zeros without one),
a data offset of 1 a cluster of zeros.

What the header declares bounds nothing here: tables are read a page at a time as reads need
them (a table may declare 1 GiB), every offset is checked to be cluster-aligned and inside the
file before it is read, and a read takes from a cluster only the bytes asked for. Feature bits
the format does not define are refused, as the specification asks of a reader. The
"needs a check" bit (QEMU stopped without closing the image) is shown in ``info``, and
:func:`qed_checks` checks the tables as QEMU's check does: every offset aligned and in the file,
no cluster named twice.
"""

from __future__ import annotations

import os
import struct
import sys
import threading
from array import array
from collections import OrderedDict
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

from bitwitness.errors import BitWitnessError, CorruptImageError, UnsupportedFormatError
from bitwitness.images.checks import ContainerCheck, Findings
from bitwitness.images.filestream import FileImageStream
from bitwitness.images.libyal import find_parent
from bitwitness.images.raw import read_at, read_exact
from bitwitness.images.truncation import (
    MissingDataError,
    Truncation,
    TruncationScan,
    reach,
    require_present,
)
from bitwitness.stream import ImageStream, StreamInfo

MAGIC = b"QED\x00"
#: magic, cluster size, table size, header size, features, compat features, autoclear
#: features, L1 table offset, media size, backing name offset, backing name size
_HEADER = struct.Struct("<4sIIIQQQQQII")
F_BACKING_FILE = 0x01
F_NEED_CHECK = 0x02
F_BACKING_FORMAT_NO_PROBE = 0x04  #: the backing file is raw: not probed for a format
_KNOWN_FEATURES = F_BACKING_FILE | F_NEED_CHECK | F_BACKING_FORMAT_NO_PROBE
ZERO_CLUSTER = 1  #: a data offset that reads as zeros and stops the backing file
MIN_CLUSTER = 4096
MAX_CLUSTER = 64 << 20
_WORD = "Q" if array("Q").itemsize == 8 else "L"  #: the array type of a 64-bit table entry
MAX_TABLE_CLUSTERS = 16
#: A backing file name longer than this is damage (QEMU keeps it inside the header clusters).
MAX_BACKING_NAME = 4096
#: Table bytes read at a time, and how many such pages are kept (16 MiB at most).
TABLE_PAGE = 64 << 10
_PAGES_KEPT = 256


class QedStream(FileImageStream):
    """The media of a QED file; ``backing`` is the stream beneath it, if it names one."""

    alignment = 1

    def __init__(self, path: Path) -> None:
        self.backing: ImageStream | None = None
        self.parents: tuple[Path, ...] = ()
        self._pages: OrderedDict[tuple[int, int], bytes] = OrderedDict()
        self._pages_lock = threading.Lock()
        super().__init__(path)

    def _fail(self, what: str, offset: int | None = None) -> CorruptImageError:
        return CorruptImageError(f"QED header: {what}", path=self.path, offset=offset)

    def _load(self) -> int:
        self.file_size = os.fstat(self._fd).st_size
        head = read_exact(self._fd, 0, _HEADER.size, self.path) \
            if self.file_size >= _HEADER.size else b""
        if len(head) < _HEADER.size or not head.startswith(MAGIC):
            raise self._fail(f"no QED header (the file holds {self.file_size} bytes)")
        (_, cluster, table, header_clusters, features, _compat, _autoclear, l1_at, media,
         name_at, name_size) = _HEADER.unpack(head)
        if not MIN_CLUSTER <= cluster <= MAX_CLUSTER or cluster & (cluster - 1):
            raise self._fail(f"cluster size {cluster} (a power of two from {MIN_CLUSTER} to "
                             f"{MAX_CLUSTER} expected)", 4)
        if not 1 <= table <= MAX_TABLE_CLUSTERS or table & (table - 1):
            raise self._fail(f"table size {table} clusters (a power of two from 1 to "
                             f"{MAX_TABLE_CLUSTERS} expected)", 8)
        if features & ~_KNOWN_FEATURES:
            raise UnsupportedFormatError(
                f"{self.path}: QED feature bits {features & ~_KNOWN_FEATURES:#x} that the "
                "format does not define: a reader must not open such an image")
        header_bytes = header_clusters * cluster
        if header_clusters < 1 or header_bytes > self.file_size:
            raise self._fail(f"a header of {header_clusters} clusters of {cluster} bytes in a "
                             f"file of {self.file_size}", 12)
        self.cluster_size, self.table_clusters = cluster, table
        self.header_bytes = header_bytes
        self.entries = table * cluster // 8  #: entries of a table (L1 or L2)
        self.table_bytes = table * cluster
        if media % 512:
            raise self._fail(f"media size {media} is not a multiple of 512", 48)
        if media > self.entries * self.entries * cluster:
            raise self._fail(f"media size {media} is more than its tables can map "
                             f"({self.entries} x {self.entries} clusters of {cluster} bytes)",
                             48)
        self.l1_at = l1_at
        self._check_table(l1_at, "the L1 table", 40)
        #: L1 entries that map the media (the rest of the table maps nothing)
        self.l1_used = -(-media // (self.entries * cluster))
        self.needs_check = bool(features & F_NEED_CHECK)
        self.backing_raw = bool(features & F_BACKING_FORMAT_NO_PROBE)
        self.backing_name = ""
        if features & F_BACKING_FILE:
            if not 0 < name_size <= MAX_BACKING_NAME or name_at + name_size > header_bytes:
                raise self._fail(f"a backing file name of {name_size} bytes at header offset "
                                 f"{name_at}, outside the {header_bytes} header bytes", 56)
            self.backing_name = read_exact(self._fd, name_at, name_size,
                                           self.path).decode("utf-8", "replace")
        return media

    def table_fits(self, offset: int) -> bool:
        """Whether a table may lie at file ``offset``: cluster-aligned, past the header
        clusters and wholly inside the file."""
        return not (offset % self.cluster_size or offset < self.header_bytes
                    or offset + self.table_bytes > self.file_size)

    def placed(self, offset: int) -> bool:
        """Whether file ``offset`` is a place the format allows a cluster or table to start:
        cluster-aligned and past the header (inside the file or not)."""
        return not (offset % self.cluster_size or offset < self.header_bytes)

    def _check_table(self, offset: int, what: str, entry_at: int | None = None,
                     media_offset: int | None = None) -> None:
        """:meth:`table_fits`, or why not: a :class:`MissingDataError` for a well-placed
        table past the end of the file (cut short), a :class:`CorruptImageError` else."""
        if (media_offset is not None and self.placed(offset) and not self.table_fits(offset)
                and offset + self.table_bytes <= reach(self.size)):
            raise MissingDataError(f"QED {what}", path=self.path, file_offset=offset,
                                   file_size=self.file_size, media_offset=media_offset)
        if not self.table_fits(offset):
            raise CorruptImageError(
                f"QED {what} at file offset {offset} ({self.table_bytes} bytes) is not a "
                f"cluster-aligned table past the header, inside the {self.file_size}-byte "
                "file",
                path=self.path, offset=entry_at)

    def _entry(self, table_at: int, index: int) -> int:
        """Entry ``index`` of the table at file offset ``table_at`` (already checked), read
        with the rest of its page."""
        page, within = divmod(8 * index, TABLE_PAGE)
        key = (table_at, page)
        with self._pages_lock:
            data = self._pages.get(key)
            if data is not None:
                self._pages.move_to_end(key)
        if data is None:
            start = table_at + page * TABLE_PAGE
            data = read_exact(self._fd, start, min(TABLE_PAGE, self.table_bytes
                                                   - page * TABLE_PAGE), self.path)
            with self._pages_lock:
                self._pages[key] = data
                while len(self._pages) > _PAGES_KEPT:
                    self._pages.popitem(last=False)
        return int.from_bytes(data[within:within + 8], "little")

    def data_offset(self, cluster: int) -> int:
        """Where guest ``cluster`` lies in the file; 0 where it was never written (the
        backing file's, or zeros) and 1 where it reads as zeros."""
        l1_index, l2_index = divmod(cluster, self.entries)
        l2_at = self._entry(self.l1_at, l1_index)
        if not l2_at:
            return 0
        self._check_table(l2_at, f"L2 table {l1_index}", self.l1_at + 8 * l1_index,
                          l1_index * self.entries * self.cluster_size)
        at = self._entry(l2_at, l2_index)
        if at > ZERO_CLUSTER and (at % self.cluster_size or at < self.header_bytes):
            raise CorruptImageError(
                f"QED guest cluster {cluster} is mapped to file offset {at}, which is not a "
                "cluster-aligned offset past the header", path=self.path,
                offset=l2_at + 8 * l2_index, media_offset=cluster * self.cluster_size)
        return at

    def table(self, table_at: int, count: int) -> Iterator[tuple[int, int]]:
        """The non-zero entries among the first ``count`` of the table at file offset
        ``table_at`` (already checked), as (index, offset), read a page at a time and never
        kept: what the checks walk."""
        for page_at in range(0, 8 * count, TABLE_PAGE):
            data = read_exact(self._fd, table_at + page_at, min(TABLE_PAGE, 8 * count - page_at),
                              self.path)
            if data.count(0) == len(data):
                continue  # a page of unwritten entries
            words = array(_WORD, data)
            if sys.byteorder != "little":
                words.byteswap()
            first = page_at // 8
            for i, value in enumerate(words):
                if value:
                    yield first + i, value

    def _read_aligned(self, offset: int, length: int) -> bytes:
        parts = []
        end = offset + length
        size = self.cluster_size
        while offset < end:
            cluster, within = divmod(offset, size)
            n = min(size - within, end - offset)
            at = self.data_offset(cluster)
            if at == ZERO_CLUSTER:
                parts.append(bytes(n))
            elif not at:
                parts.append(self._from_backing(offset, n))
            else:
                require_present(at + within, n, self.file_size, path=self.path,
                                what=f"QED guest cluster {cluster}", media_size=self.size,
                                media_offset=cluster * size)
                parts.append(read_exact(self._fd, at + within, n, self.path))
            offset += n
        return b"".join(parts)

    def truncation(self) -> Truncation | None:
        """This file where cut short: the L1 table and every L2 table it names read once (a
        page at a time), each data cluster's place compared with the file's size; a table
        past the end leaves every cluster it maps missing. Misplaced entries are the checks'
        business (:func:`qed_checks`), not counted here."""
        size = self.cluster_size
        span = self.entries * size
        scan = TruncationScan(self.path, self.file_size, self.size, self.sector_size)
        for l1_index, l2_at in self.table(self.l1_at, self.l1_used):
            if not self.placed(l2_at):
                continue
            if not self.table_fits(l2_at):
                scan.unit(l2_at, self.table_bytes, l1_index * span, span,
                          what=f"QED L2 table {l1_index} (L1 entry {l1_index})")
                continue
            for l2_index, at in self.table(l2_at, self.entries):
                if at > ZERO_CLUSTER and self.placed(at):
                    scan.unit(at, size, (l1_index * self.entries + l2_index) * size, size)
        return scan.result()

    def _from_backing(self, offset: int, length: int) -> bytes:
        if self.backing is None:
            return bytes(length)
        data = self.backing.pread(offset, length)
        return data + bytes(length - len(data))  # past the backing file's end: zeros

    def close(self) -> None:
        try:
            if not self.closed and self.backing is not None:
                self.backing.close()
        finally:
            super().close()

    @property
    def info(self) -> StreamInfo:
        details: dict[str, Any] = {"reader": "bitwitness", "cluster_size": self.cluster_size,
                                   "table_clusters": self.table_clusters}
        if self.needs_check:
            details["needs_check"] = True
        if self.parents:
            details["parents"] = [str(p) for p in self.parents]
        return StreamInfo(format="qed", files=(self.path, *self.parents), media_size=self.size,
                          sector_size=self.sector_size, details=details)


def open_qed(path: Path, chain: tuple[Path, ...] = ()) -> QedStream:
    """A QED image and the backing chain it names (looked for in its own folder only)."""
    top = QedStream(path)
    if not top.backing_name:
        return top
    try:
        parent = find_parent(path, top.backing_name, [*chain, path])
        if top.backing_raw:
            from bitwitness.image import open_image

            backing: ImageStream = open_image(parent, "raw")
        elif read_at(parent, 0, 4) == MAGIC:
            backing = open_qed(parent, (*chain, path))
        else:
            from bitwitness.image import open_image

            backing = open_image(parent)
    except BaseException:
        top.close()
        raise
    top.backing = backing
    top.parents = (parent, *getattr(backing, "parents", ()))
    return top


def qed_checks(path: Path, cut_short: bool = False) -> tuple[ContainerCheck, ...]:
    """The tables of the QED file ``path``, as QEMU's check reads them: every L2 table and
    data cluster offset aligned and inside the file, and no cluster (table or data) named twice
    or lying in the header or the L1 table. The reader refuses only what it reads; this walks
    every table. Problems name the table entry and its file offset. ``cut_short``: the file
    is known to be cut short, so well-placed tables and clusters past its end are its missing
    end (``verify``: INCOMPLETE), not damage."""
    what = f"QED tables of {path.name}"
    try:
        image = QedStream(path)
    except BitWitnessError as exc:
        return (ContainerCheck(what, False, str(exc)),)
    try:
        return (_check_tables(image, what, cut_short),)
    finally:
        image.close()


def _check_tables(image: QedStream, what: str, cut_short: bool = False) -> ContainerCheck:
    findings = Findings()
    size, file_size = image.cluster_size, image.file_size
    used = bytearray(file_size // size // 8 + 1)  # a bit per cluster of the file: named yet?

    def claim(at: int, count: int, who: Callable[[], str]) -> bool:
        """Mark ``count`` clusters from ``at`` as named; False (a problem) where one was."""
        for cluster in range(at // size, at // size + count):
            byte, bit = divmod(cluster, 8)
            if used[byte] >> bit & 1:
                findings.add(partial(_named_twice, who, cluster * size))
                return False
            used[byte] |= 1 << bit
        return True

    claim(image.l1_at, image.table_clusters, partial(str, "the header (L1 table)"))
    tables = data = beyond = 0  # beyond: well-placed tables and clusters past a cut's end
    for l1_index, l2_at in image.table(image.l1_at, image.l1_used):
        where = partial(_l1_entry, image.l1_at, l1_index)
        if cut_short and image.placed(l2_at) and not image.table_fits(l2_at):
            beyond += 1
            continue
        if not image.table_fits(l2_at):
            findings.add(partial(_misplaced, where, "an L2 table", l2_at))
            continue
        tables += 1
        if not claim(l2_at, image.table_clusters, where):
            continue  # walked already, in whole or part: each table once, whatever L1 says
        stored, past = _check_l2(image, l1_index, l2_at, claim, findings,
                                 cut_short=cut_short)
        data, beyond = data + stored, beyond + past
    clean = (f"{tables} L2 tables, {data} data clusters: each cluster-aligned, past the header, "
             "inside the file and named once")
    if beyond:
        clean += (f"; {beyond} more lie past the end of the file, which is cut short: not "
                  "checked")
    return findings.check(what, image.path.name, clean)


def _check_l2(image: QedStream, l1_index: int, l2_at: int,
              claim: Callable[[int, int, Callable[[], str]], bool], findings: Findings, *,
              cut_short: bool) -> tuple[int, int]:
    """The data clusters of one L2 table, each placed and claimed; returns how many it
    stores inside the file and how many past the end of a file cut short."""
    size, file_size, header_end = image.cluster_size, image.file_size, image.header_bytes
    data = beyond = 0
    for l2_index, at in image.table(l2_at, image.entries):
        if at <= ZERO_CLUSTER:
            continue
        entry = partial(_l2_entry, l2_at, l1_index, l2_index)
        if cut_short and image.placed(at) and at >= file_size:
            beyond += 1
        elif at % size or at < header_end or at >= file_size:
            findings.add(partial(_misplaced, entry, "a data cluster", at))
        else:
            data += 1
            claim(at, 1, entry)
    return data, beyond


def _l1_entry(l1_at: int, index: int) -> str:
    return f"L1 entry {index} (file offset {l1_at + 8 * index})"


def _l2_entry(l2_at: int, table: int, index: int) -> str:
    return f"L2 entry {index} of table {table} (file offset {l2_at + 8 * index})"


def _misplaced(who: Callable[[], str], what: str, at: int) -> str:
    return (f"{who()} names {what} at file offset {at}: not cluster-aligned, in the header or "
            "past the end of the file")


def _named_twice(who: Callable[[], str], at: int) -> str:
    return f"{who()} names file offset {at}, which an entry before it names too"


class QedFormat:
    """QED images (QEMU's enhanced disk, 2010-2017: KVM hosts and oVirt of those years)."""

    name = "qed"
    containers = ("qed",)

    def probe(self, path: Path, head: bytes) -> bool:
        return head.startswith(MAGIC)

    def claims_name(self, path: Path) -> bool:
        return False  # recognised by its signature only

    def files(self, path: Path) -> list[Path]:
        with open_qed(path) as stream:
            return list(stream.info.files)

    def open(self, path: Path) -> ImageStream:
        return open_qed(path)

    def second_reader(self, path: Path, stream: ImageStream) -> ImageStream | None:
        """QEMU's qed driver, given the backing chain our reader resolved (QEMU then follows
        no recorded path of its own); a chain with a backing file of another format than
        QED or raw has none."""
        from bitwitness.images.qemu import QemuNbdStream

        chain = [path]
        drivers = ["qed"]
        below = getattr(stream, "backing", None)
        for parent in getattr(stream, "parents", ()):
            if isinstance(below, QedStream):
                drivers.append("qed")
            elif below is not None and below.info.format == "raw":
                drivers.append("raw")
            else:
                return None
            chain.append(parent)
            below = getattr(below, "backing", None)
        return QemuNbdStream(path, "qed", chain, drivers)

    def self_checks(self, path: Path, stream: ImageStream) -> tuple[ContainerCheck, ...]:
        """The tables of the image and of each QED file of its chain (:func:`qed_checks`)."""
        cut = {t.file for t in self.truncation(path, stream)}
        return tuple(check for p in stream.info.files if read_at(p, 0, 4) == MAGIC
                     for check in qed_checks(p, p in cut))

    def truncation(self, path: Path, stream: ImageStream) -> list[Truncation]:
        """The image file cut short (:meth:`QedStream.truncation`); its backing chain is not
        walked."""
        found = stream.truncation() if isinstance(stream, QedStream) else None
        return [] if found is None else [found]


FORMAT = QedFormat()
