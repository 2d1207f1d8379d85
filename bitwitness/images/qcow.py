"""QCOW (version 1) and QCOW2 (versions 2 and 3): our own reader, libqcow for what it leaves out.

Layout (big-endian). The header gives the cluster size (``1 << cluster_bits``), the virtual
size, the backing file's name and the L1 table. An L1 entry points at an L2 table (one cluster of
64-bit entries); an L2 entry maps one guest cluster:

* QCOW2: bit 62 marks a compressed cluster, whose low ``62 - (cluster_bits - 8)`` bits are the
  byte offset of its deflate stream and the bits above (to 61) the number of 512-byte sectors it
  spans after the first; otherwise bits 9-55 are the host offset of the cluster, and (version 3)
  bit 0 says the cluster reads as zeros. An entry of 0 is a cluster never written: it reads from
  the backing file, or as zeros without one.
* QCOW version 1: bit 63 marks a compressed cluster, whose low ``63 - cluster_bits`` bits are
  the offset and the bits above its compressed size; otherwise the entry is the host offset.

The reader is our own rather than libqcow because libqcow (20260703) returns zeros, silently, for
compressed clusters whose deflate stream starts inside a sector after another one (as
``qemu-img convert -c`` packs small ones). QEMU through ``qemu-nbd`` is the independent second
reader. Encrypted images, zstd-compressed clusters, external data files and extended L2 entries
are refused by name. A backing file is looked for in the overlay's
own folder only (:func:`~bitwitness.images.libyal.find_parent`) and may be any format the
registry reads.
"""

from __future__ import annotations

import os
import struct
import threading
import zlib
from collections import OrderedDict
from pathlib import Path
from typing import Any

from bitwitness.errors import BitWitnessError, CorruptImageError, UnsupportedFormatError
from bitwitness.images.checks import ContainerCheck
from bitwitness.images.libyal import find_parent
from bitwitness.images.raw import open_readonly, read_at, read_exact
from bitwitness.stream import ImageStream, StreamInfo

MAGIC = b"QFI\xfb"
_V1_HEADER = struct.Struct(">4sIQIIQBBxxIQ")
_V2_HEADER = struct.Struct(">4sIQIIQIIQQIIQ")
_V3_TAIL = struct.Struct(">QQQII")
#: Incompatible feature bits of version 3 (bit 0, "dirty", only says refcounts may leak).
_CORRUPT, _EXTERNAL_DATA, _COMPRESSION_TYPE, _EXTENDED_L2 = 1 << 1, 1 << 2, 1 << 3, 1 << 4
_KNOWN_INCOMPATIBLE = 1 | _CORRUPT | _EXTERNAL_DATA | _COMPRESSION_TYPE | _EXTENDED_L2
_OFFSET_MASK = 0x00FF_FFFF_FFFF_FE00
#: Largest L1 table read into memory (8 bytes an entry): a hostile header cannot ask for more.
_MAX_L1_ENTRIES = 4 << 20
_L2_CACHE = 64
_MAX_BACKING_NAME = 1023
_BACKING_FORMAT = 0xE2792ACA
#: Backing-file format names as QEMU records them -> the registry's format names.
_QEMU_FORMATS = {"raw": "raw", "qcow": "qcow", "qcow2": "qcow", "vpc": "vhd", "vhdx": "vhdx",
                 "vmdk": "vmdk", "parallels": "parallels", "dmg": "dmg"}


class QcowStream(ImageStream):
    """A QCOW v1/v2/v3 image, read by our own code; ``backing`` is the stream beneath it."""

    def __init__(self, path: Path, backing: ImageStream | None = None,
                 parents: tuple[Path, ...] = ()) -> None:
        self.path = path
        self._fd = open_readonly(path)
        self._file_size = os.fstat(self._fd).st_size
        self._l2_lock = threading.Lock()
        self._l2: OrderedDict[int, tuple[int, ...]] = OrderedDict()
        self.backing = backing
        self.parents = parents
        self.backing_format: str | None = None
        try:
            self._load()
        except BaseException:
            os.close(self._fd)
            raise
        super().__init__(self._size_bytes)
        self.alignment = self.cluster_size

    # --- header ---------------------------------------------------------------------------

    def _load(self) -> None:
        head = read_exact(self._fd, 0, min(self._file_size, 112), self.path)
        if len(head) < _V1_HEADER.size or not head.startswith(MAGIC):
            raise CorruptImageError("no QCOW header", path=self.path)
        (self.version,) = struct.unpack(">I", head[4:8])
        if self.version == 1:
            self._load_v1(head)
        elif self.version in (2, 3):
            self._load_v2(head)
        else:
            raise UnsupportedFormatError(f"{self.path}: QCOW version {self.version} is unknown")
        if not 9 <= self.cluster_bits <= 21:
            raise CorruptImageError(f"implausible cluster size 2^{self.cluster_bits}",
                                    path=self.path)
        self.cluster_size = 1 << self.cluster_bits
        self._l2_entries = 1 << self.l2_bits
        needed = -(-self._size_bytes // (self.cluster_size * self._l2_entries))
        if self.l1_size < needed or self.l1_size > _MAX_L1_ENTRIES:
            raise CorruptImageError(f"the L1 table of {self.l1_size} entries cannot map "
                                    f"{self._size_bytes} bytes", path=self.path)
        self._check_range(self.l1_offset, 8 * needed, "L1 table")
        table = read_exact(self._fd, self.l1_offset, 8 * needed, self.path)
        self._l1 = struct.unpack(f">{needed}Q", table)

    def _load_v1(self, head: bytes) -> None:
        (_, _, backing_offset, backing_size, _mtime, size, cluster_bits, l2_bits, crypt,
         l1_offset) = _V1_HEADER.unpack(head[:_V1_HEADER.size])
        if crypt:
            raise UnsupportedFormatError(f"{self.path}: encrypted QCOW image (BitWitness "
                                         "reads no encrypted QCOW)")
        self.cluster_bits, self.l2_bits = cluster_bits, l2_bits
        if not 9 <= l2_bits <= 21:
            raise CorruptImageError(f"implausible L2 table size 2^{l2_bits}", path=self.path)
        self._size_bytes, self.l1_offset = size, l1_offset
        shift = cluster_bits + l2_bits
        self.l1_size = -(-size // (1 << shift)) if shift < 64 else 1
        self.backing_name = self._backing_name(backing_offset, backing_size)

    def _load_v2(self, head: bytes) -> None:
        if len(head) < _V2_HEADER.size:
            raise CorruptImageError("truncated QCOW2 header", path=self.path)
        (_, _, backing_offset, backing_size, cluster_bits, size, crypt, l1_size, l1_offset,
         self.refcount_offset, self.refcount_clusters, self.snapshots,
         self.snapshots_offset) = _V2_HEADER.unpack(head[:_V2_HEADER.size])
        self.refcount_order, self.header_length = 4, _V2_HEADER.size
        if self.version == 3 and len(head) >= 104:
            self.refcount_order, self.header_length = struct.unpack(">II", head[96:104])
        if crypt:
            raise UnsupportedFormatError(f"{self.path}: encrypted QCOW2 image (BitWitness "
                                         "reads no encrypted QCOW2)")
        if self.version == 3:
            self._check_features(head)
        self.cluster_bits, self.l2_bits = cluster_bits, cluster_bits - 3
        self._size_bytes, self.l1_size, self.l1_offset = size, l1_size, l1_offset
        self.backing_name = self._backing_name(backing_offset, backing_size)
        if self.backing_name:
            start = 72 if self.version == 2 else struct.unpack(">I", head[100:104])[0]
            self.backing_format = self._backing_format(start, cluster_bits)

    def _check_features(self, head: bytes) -> None:
        """Version 3's incompatible features: those this reader does not implement are refused
        by name, a header that marks the image corrupt is corrupt."""
        if len(head) < _V2_HEADER.size + _V3_TAIL.size:
            raise CorruptImageError("truncated QCOW2 version 3 header", path=self.path)
        incompatible = _V3_TAIL.unpack(head[72:72 + _V3_TAIL.size])[0]
        if incompatible & _CORRUPT:
            raise CorruptImageError("the image marks itself corrupt", path=self.path)
        if incompatible & ~_KNOWN_INCOMPATIBLE:
            raise UnsupportedFormatError(
                f"{self.path}: QCOW2 with unknown incompatible features "
                f"{incompatible & ~_KNOWN_INCOMPATIBLE:#x}")
        for bit, what in ((_EXTERNAL_DATA, "an external data file"),
                          (_EXTENDED_L2, "extended L2 entries (subclusters)")):
            if incompatible & bit:
                raise UnsupportedFormatError(f"{self.path}: QCOW2 image with {what}, "
                                             "which BitWitness does not read")
        if incompatible & _COMPRESSION_TYPE and head[104:105] not in (b"", b"\0"):
            raise UnsupportedFormatError(
                f"{self.path}: QCOW2 image with zstd-compressed clusters, which BitWitness "
                "does not read (convert it with 'qemu-img convert -O raw')")

    def _backing_format(self, start: int, cluster_bits: int) -> str | None:
        """The backing file's format as the header extension records it (``qemu-img create -F``),
        or ``None`` when none is recorded."""
        end = min(self._file_size, 1 << cluster_bits if 9 <= cluster_bits <= 21 else 512)
        if not 72 <= start < end:
            return None
        area = read_exact(self._fd, start, end - start, self.path)
        pos = 0
        while pos + 8 <= len(area):
            kind, length = struct.unpack_from(">II", area, pos)
            if kind == 0:
                break
            data = area[pos + 8 : pos + 8 + length]
            if len(data) != length:
                raise CorruptImageError("a header extension runs past the first cluster",
                                        path=self.path)
            if kind == _BACKING_FORMAT:
                return data.decode("ascii", "replace")
            pos += 8 + -(-length // 8) * 8
        return None

    def _backing_name(self, offset: int, size: int) -> str:
        if not offset or not size:
            return ""
        if size > _MAX_BACKING_NAME:
            raise CorruptImageError(f"a backing file name of {size} bytes", path=self.path)
        self._check_range(offset, size, "backing file name")
        return read_exact(self._fd, offset, size, self.path).decode("utf-8", "replace")

    def _check_range(self, offset: int, length: int, what: str) -> None:
        if offset < 0 or offset + length > self._file_size:
            raise CorruptImageError(f"the {what} ({length} bytes at file offset {offset}) lies "
                                    f"past the end of the file ({self._file_size} bytes)",
                                    path=self.path)

    # --- reading --------------------------------------------------------------------------

    def _l2_table(self, offset: int) -> tuple[int, ...]:
        with self._l2_lock:
            table = self._l2.get(offset)
            if table is not None:
                self._l2.move_to_end(offset)
                return table
        size = 8 * self._l2_entries
        self._check_range(offset, size, "L2 table")
        table = struct.unpack(f">{self._l2_entries}Q", read_exact(self._fd, offset, size,
                                                                  self.path))
        with self._l2_lock:
            self._l2[offset] = table
            while len(self._l2) > _L2_CACHE:
                self._l2.popitem(last=False)
        return table

    def _entry(self, cluster: int) -> int:
        l1 = self._l1[cluster >> self.l2_bits]
        l2_offset = l1 & (_OFFSET_MASK if self.version >= 2 else (1 << 63) - 1)
        if not l2_offset:
            return 0
        return self._l2_table(l2_offset)[cluster & (self._l2_entries - 1)]

    def _cluster(self, cluster: int) -> bytes:
        """The ``cluster_size`` bytes of one guest cluster."""
        entry = self._entry(cluster)
        size = self.cluster_size
        if self.version == 1:
            if entry >> 63:
                bits = 63 - self.cluster_bits
                return self._inflate(cluster, entry & ((1 << bits) - 1),
                                     (entry >> bits) & (size - 1))
            offset = entry
        else:
            if entry >> 62 & 1:
                bits = 62 - (self.cluster_bits - 8)
                offset = entry & ((1 << bits) - 1)
                sectors = (entry >> bits) & ((1 << (self.cluster_bits - 8)) - 1)
                return self._inflate(cluster, offset, (sectors + 1) * 512 - (offset & 511))
            if self.version == 3 and entry & 1:
                return bytes(size)
            offset = entry & _OFFSET_MASK
        if not offset:
            return self._from_backing(cluster)
        self._check_range(offset, size, f"cluster {cluster}")
        return read_exact(self._fd, offset, size, self.path)

    def _inflate(self, cluster: int, offset: int, length: int) -> bytes:
        length = min(length, self._file_size - offset)
        if offset <= 0 or length <= 0:
            raise CorruptImageError(f"compressed cluster {cluster} lies outside the file",
                                    path=self.path, media_offset=cluster * self.cluster_size)
        stored = read_exact(self._fd, offset, length, self.path)
        inflater = zlib.decompressobj(-15)
        try:
            data = inflater.decompress(stored, self.cluster_size)
        except zlib.error as exc:
            raise CorruptImageError(f"compressed cluster {cluster} does not inflate ({exc})",
                                    path=self.path,
                                    media_offset=cluster * self.cluster_size) from exc
        if len(data) != self.cluster_size:
            raise CorruptImageError(f"compressed cluster {cluster} inflates to {len(data)} "
                                    f"bytes, not {self.cluster_size}", path=self.path,
                                    media_offset=cluster * self.cluster_size)
        return data

    def _from_backing(self, cluster: int) -> bytes:
        start = cluster * self.cluster_size
        if self.backing is None:
            return bytes(self.cluster_size)
        data = self.backing.pread(start, self.cluster_size)
        return data + bytes(self.cluster_size - len(data))  # past the backing file: zeros

    def _read_aligned(self, offset: int, length: int) -> bytes:
        first = offset // self.cluster_size
        last = -(-(offset + length) // self.cluster_size)
        data = b"".join(self._cluster(c) for c in range(first, last))
        return data[:length]

    @property
    def info(self) -> StreamInfo:
        details: dict[str, Any] = {"reader": "bitwitness", "qcow_version": self.version,
                                   "cluster_size": self.cluster_size}
        if self.parents:
            details["parents"] = [str(p) for p in self.parents]
        files = (self.path, *(self.backing.info.files if self.backing is not None else ()))
        return StreamInfo(format="qcow2" if self.version >= 2 else "qcow", files=files,
                          media_size=self.size, sector_size=self.sector_size, details=details)

    def close(self) -> None:
        if not self.closed:
            os.close(self._fd)
            if self.backing is not None:
                self.backing.close()
        super().close()


class _Consistency:
    """What a QCOW image's tables record about each other, checked as ``qemu-img check`` does
    for corruption (not for leaks): the header's tables lie inside the file at cluster
    boundaries, every L2 table and data cluster the active L1 table reaches lies inside the file,
    no two guest clusters share a host cluster, and (QCOW2) every such cluster has a reference
    count of at least one."""

    def __init__(self, image: QcowStream) -> None:
        self.image = image
        self.problems: list[str] = []
        self._refblocks: dict[int, bytes | None] = {}
        self._reftable: tuple[int, ...] = ()

    def run(self) -> list[str]:
        image = self.image
        if image.version >= 2:
            self._header()
        if self.problems:
            return self.problems
        used: set[int] = set()
        size = image.cluster_size
        for index, l1 in enumerate(image._l1):
            l2_offset = l1 & (_OFFSET_MASK if image.version >= 2 else (1 << 63) - 1)
            if not l2_offset:
                continue
            where = f"L1 entry {index} (file offset {image.l1_offset + 8 * index})"
            if not self._cluster_ok(l2_offset, where, "L2 table", used):
                continue
            table = image._l2_table(l2_offset)
            for sub, entry in enumerate(table):
                guest = (index << image.l2_bits) + sub
                where = f"L2 entry {sub} of the table at file offset {l2_offset} (guest " \
                        f"cluster {guest}, media offset {guest * size})"
                self._data_entry(entry, where, used)
                if len(self.problems) >= 10:
                    return self.problems
        if image.version >= 2:
            self._refcounts(used, [image.l1_offset + i * size for i in
                                   range(-(-8 * image.l1_size // size))])
        return self.problems

    def _header(self) -> None:
        image, size = self.image, self.image.cluster_size
        if image.version == 3 and not 104 <= image.header_length <= size:
            self.problems.append(f"header length {image.header_length} (file offset 100) is "
                                 f"not between 104 and the cluster size {size}")
        if image.version == 3 and not 0 <= image.refcount_order <= 6:
            self.problems.append(f"refcount order {image.refcount_order} (file offset 96) is "
                                 "above 6")
        for what, offset, length, at in (
                ("L1 table", image.l1_offset, 8 * image.l1_size, 40),
                ("refcount table", image.refcount_offset, image.refcount_clusters * size, 48),
                ("snapshot table", image.snapshots_offset, 0 if not image.snapshots else 1,
                 64)):
            if not length:
                continue
            if offset % size:
                self.problems.append(f"the {what} offset {offset} (header, file offset {at}) "
                                     "is not at a cluster boundary")
            elif offset + length > image._file_size:
                self.problems.append(f"the {what} ({length} bytes at file offset {offset}, "
                                     f"header file offset {at}) runs past the end of the file "
                                     f"({image._file_size} bytes)")

    def _cluster_ok(self, offset: int, where: str, what: str, used: set[int]) -> bool:
        image = self.image
        if offset % image.cluster_size:
            self.problems.append(f"{where}: the {what} at file offset {offset} is not at a "
                                 "cluster boundary")
            return False
        if offset + image.cluster_size > image._file_size:
            self.problems.append(f"{where}: the {what} at file offset {offset} lies past the "
                                 f"end of the file ({image._file_size} bytes)")
            return False
        if offset in used:
            self.problems.append(f"{where}: the {what} at file offset {offset} is also used by "
                                 "another guest cluster or table")
            return False
        used.add(offset)
        return True

    def _data_entry(self, entry: int, where: str, used: set[int]) -> None:
        image = self.image
        if image.version == 1:
            if entry >> 63:
                offset = entry & ((1 << (63 - image.cluster_bits)) - 1)
                if offset >= image._file_size:
                    self.problems.append(f"{where}: compressed data at file offset {offset} "
                                         "lies past the end of the file")
            elif entry:
                self._cluster_ok(entry, where, "data cluster", used)
            return
        if entry >> 62 & 1:
            offset = entry & ((1 << (62 - (image.cluster_bits - 8))) - 1)
            if offset >= image._file_size:
                self.problems.append(f"{where}: compressed data at file offset {offset} lies "
                                     "past the end of the file")
            return
        offset = entry & _OFFSET_MASK
        if offset:
            if entry & 0x1FF & ~1:
                self.problems.append(f"{where}: reserved bits are set ({entry:#018x})")
            self._cluster_ok(offset, where, "data cluster", used)

    def _refcounts(self, used: set[int], l1_clusters: list[int]) -> None:
        image = self.image
        order = image.refcount_order
        if order < 3 or order > 6 or not image.refcount_clusters:
            return
        size = image.cluster_size
        table_bytes = read_exact(image._fd, image.refcount_offset,
                                 image.refcount_clusters * size, image.path)
        self._reftable = struct.unpack(f">{len(table_bytes) // 8}Q", table_bytes)
        per_block = size * 8 >> order
        fmt = {3: ">B", 4: ">H", 5: ">I", 6: ">Q"}[order]
        width = 1 << (order - 3)
        for offset in sorted({*used, *l1_clusters}):
            cluster = offset // size
            index, within = divmod(cluster, per_block)
            block = self._refblock(index)
            count = 0 if block is None else struct.unpack_from(fmt, block, within * width)[0]
            if count == 0:
                self.problems.append(f"the cluster at file offset {offset} is in use but its "
                                     "reference count is 0 (refcount table entry "
                                     f"{index} at file offset {image.refcount_offset + 8 * index})")
                if len(self.problems) >= 10:
                    return

    def _refblock(self, index: int) -> bytes | None:
        if index in self._refblocks:
            return self._refblocks[index]
        image = self.image
        entry = self._reftable[index] & ~0x1FF if index < len(self._reftable) else 0
        block = None
        if entry and entry + image.cluster_size <= image._file_size:
            block = read_exact(image._fd, entry, image.cluster_size, image.path)
        self._refblocks[index] = block
        return block


def qcow_checks(paths: list[Path]) -> tuple[ContainerCheck, ...]:
    """The table consistency of every QCOW file among ``paths`` (an image and its backing
    chain), each as one check saying where the first problems lie."""
    checks = []
    for path in paths:
        if not _is_qcow(path):
            continue
        what = f"QCOW tables of {path.name}"
        try:
            image = QcowStream(path)
        except BitWitnessError as exc:
            checks.append(ContainerCheck(what, False, str(exc)))
            continue
        try:
            problems = _Consistency(image).run()
        except BitWitnessError as exc:
            problems = [str(exc)]
        finally:
            image.close()
        detail = "; ".join(problems) if problems else (
            "header, L1/L2 tables and reference counts consistent")
        checks.append(ContainerCheck(what, not problems, detail))
    return tuple(checks)


def _open_ours(path: Path, chain: list[Path]) -> QcowStream:
    """Our reader on ``path``, with its backing chain (``chain``: the files above it)."""
    top = QcowStream(path)
    if not top.backing_name:
        return top
    try:
        parent = find_parent(path, top.backing_name, [*chain, path])
        backing = _open_backing(top, parent, [*chain, path])
    except BaseException:
        top.close()
        raise
    top.backing = backing
    below = backing.parents if isinstance(backing, QcowStream) else ()
    top.parents = (parent, *below)
    return top


def _open_backing(top: QcowStream, parent: Path, chain: list[Path]) -> ImageStream:
    """The backing file, read as the format the overlay records for it. Its content is probed
    only when no format is recorded: a raw backing file whose bytes happen to look like QCOW
    (a guest can write such bytes to its own disk) must stay raw."""
    from bitwitness.image import open_image

    recorded = top.backing_format
    if recorded is None:
        return _open_ours(parent, chain) if _is_qcow(parent) else open_image(parent)
    name = _QEMU_FORMATS.get(recorded)
    if name is None:
        raise UnsupportedFormatError(f"{top.path}: its backing file {parent.name} is recorded as "
                                     f"{recorded!r}, a format BitWitness does not read")
    if name == "qcow":
        return _open_ours(parent, chain)
    return open_image(parent, name)


def _is_qcow(path: Path) -> bool:
    return read_at(path, 0, 4) == MAGIC


def _version(path: Path) -> int:
    return int.from_bytes(read_at(path, 4, 4), "big")


def open_qcow(path: Path) -> ImageStream:
    """Open a QCOW image and its backing chain read-only."""
    try:
        return _open_ours(path, [])
    except CorruptImageError as exc:
        if exc.path is None:
            raise CorruptImageError(str(exc), path=path) from exc
        raise


class QcowFormat:
    """QCOW v1/v2/v3 images (QEMU, KVM, OpenStack and most cloud disks)."""

    name = "qcow"
    containers = ("qcow", "qcow2")

    def probe(self, path: Path, head: bytes) -> bool:
        return head.startswith(MAGIC)

    def claims_name(self, path: Path) -> bool:
        return False  # recognised by its signature only

    def files(self, path: Path) -> list[Path]:
        with open_qcow(path) as stream:
            return list(stream.info.files)

    def open(self, path: Path) -> ImageStream:
        return open_qcow(path)

    def second_reader(self, path: Path, stream: ImageStream) -> ImageStream | None:
        """QEMU's qcow/qcow2 drivers, given the backing chain our reader resolved (QEMU then
        follows no recorded path of its own). A chain with a non-QCOW backing file has none."""
        from bitwitness.images.qemu import QemuNbdStream

        chain = [path, *getattr(stream, "parents", ())]
        if any(not _is_qcow(p) for p in chain):
            return None
        drivers = ["qcow2" if _version(p) >= 2 else "qcow" for p in chain]
        return QemuNbdStream(path, drivers[0], chain, drivers)

    def self_checks(self, path: Path, stream: ImageStream) -> tuple[ContainerCheck, ...]:
        """Header and table consistency of the image and each QCOW file of its chain."""
        return qcow_checks(list(stream.info.files))


FORMAT = QcowFormat()
