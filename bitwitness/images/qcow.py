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
reader. Version 3's optional layouts are read as QEMU writes them: zstd-compressed clusters
(``compression_type`` 1, decoded by the ``zstandard`` package with the output and the window
bounded by the cluster size), extended L2 entries (128-bit entries whose second half maps 32
subclusters each as allocated, zeros or left to the backing file) and an external data file
(guest clusters kept at their own offsets in a second file, looked for in the image's own folder
only, as backing files are). Encrypted images are refused by name. A backing file is looked for
in the overlay's own folder only (:func:`~bitwitness.images.libyal.find_parent`) and may be any
format the registry reads.
"""

from __future__ import annotations

import itertools
import os
import struct
import threading
import zlib
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bitwitness.errors import (
    BitWitnessError,
    CorruptImageError,
    InputError,
    UnsupportedFormatError,
)
from bitwitness.images.checks import ContainerCheck
from bitwitness.images.libyal import contained, find_parent
from bitwitness.images.qemu import partial_sector_note
from bitwitness.images.raw import open_readonly, read_at, read_exact
from bitwitness.images.snapshot_choice import chosen_snapshot, current_state
from bitwitness.images.truncation import (
    MissingDataError,
    Truncation,
    TruncationScan,
    reach,
    require_present,
)
from bitwitness.stream import ImageStream, StreamInfo

MAGIC = b"QFI\xfb"
_V1_HEADER = struct.Struct(">4sIQIIQBBxxIQ")
_V2_HEADER = struct.Struct(">4sIQIIQIIQQIIQ")
_V3_TAIL = struct.Struct(">QQQII")
#: A QCOW2 snapshot table entry's fixed part: L1 table offset, L1 size, ID length, name length,
#: date (seconds, nanoseconds), VM clock (ns), VM state size, extra data size; then the extra
#: data, the ID and the name, the entry padded to 8 bytes (QEMU's docs/interop/qcow2.txt).
_SNAPSHOT = struct.Struct(">QIHHIIQII")
#: Snapshots QEMU allows in one image (QCOW_MAX_SNAPSHOTS), and those ``info`` names.
_MAX_SNAPSHOTS = 65536
_SHOWN_SNAPSHOTS = 20
#: Extra data, ID and name bytes of one entry read at most (QEMU's own limits are smaller).
_MAX_SNAPSHOT_EXTRA = 1024
_MAX_SNAPSHOT_TEXT = 4096
#: Incompatible feature bits of version 3. Bit 0, "dirty", says the reference counts may be
#: inconsistent: an image with lazy refcounts that was not closed cleanly (a host crash), which
#: QEMU repairs when it opens the image for writing. It is no damage to the data tables.
_DIRTY, _CORRUPT, _EXTERNAL_DATA, _COMPRESSION_TYPE, _EXTENDED_L2 = \
    1, 1 << 1, 1 << 2, 1 << 3, 1 << 4
_KNOWN_INCOMPATIBLE = _DIRTY | _CORRUPT | _EXTERNAL_DATA | _COMPRESSION_TYPE | _EXTENDED_L2
#: Refcount disagreements of a dirty image named in its check (the rest are counted).
_NAMED_DIRTY = 3
_OFFSET_MASK = 0x00FF_FFFF_FFFF_FE00
#: Largest L1 table read into memory (8 bytes an entry): a hostile header cannot ask for more.
_MAX_L1_ENTRIES = 4 << 20
_L2_CACHE = 64
_MAX_BACKING_NAME = 1023
_BACKING_FORMAT = 0xE2792ACA
_DATA_FILE = 0x44415441  #: header extension naming the external data file ("DATA")
_RAW_DATA = 1 << 1  #: autoclear bit: the external data file is itself the whole raw disk
#: Subclusters of a cluster with extended L2 entries, and the bitmap of all of them
_SUBCLUSTERS = 32
_ALL_SUBCLUSTERS = (1 << _SUBCLUSTERS) - 1
_COMPRESSION_TYPES = {0: "zlib", 1: "zstd"}
#: Backing-file format names as QEMU records them -> the registry's format names.
_QEMU_FORMATS = {"raw": "raw", "qcow": "qcow", "qcow2": "qcow", "vpc": "vhd", "vhdx": "vhdx",
                 "vmdk": "vmdk", "parallels": "parallels", "dmg": "dmg"}


@dataclass(frozen=True)
class Snapshot:
    """One entry of a QCOW2 image's snapshot table: a state of the disk kept in the file."""

    number: int  #: position in the table, from 0
    at: int  #: file offset of the entry
    ident: bytes  #: the ID QEMU gave it ("1", "2", ...)
    name: bytes  #: the name it was given (QEMU's "tag")
    l1_offset: int
    l1_size: int
    seconds: int  #: when it was taken (Unix time)
    clock_ns: int  #: the VM's clock then
    #: the disk's size when it was taken (extra data, QEMU 1.1 and later); None: not recorded
    disk_size: int | None

    @property
    def label(self) -> str:
        """``ID 1 'name'``, as text."""
        return f"ID {_printable(self.ident)} {_printable(self.name)!r}"

    def describe(self) -> str:
        """``ID 1 'name' taken 2026-12-07T17:22:29Z, VM clock 00:00:00``, as text."""
        when = datetime.fromtimestamp(self.seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        clock_s = self.clock_ns // 1_000_000_000
        return (f"{self.label} taken {when}, VM clock "
                f"{clock_s // 3600:02d}:{clock_s // 60 % 60:02d}:{clock_s % 60:02d}")


class QcowStream(ImageStream):
    """A QCOW v1/v2/v3 image, read by our own code; ``backing`` is the stream beneath it."""

    def __init__(self, path: Path, backing: ImageStream | None = None,
                 parents: tuple[Path, ...] = (), snapshot: str | None = None) -> None:
        """``snapshot``: the ID or name of the internal snapshot to read instead of the
        current state (:meth:`_choose_snapshot`)."""
        self.path = path
        #: the internal snapshot read, None: the current state
        self.snapshot: Snapshot | None = None
        self._wanted_snapshot = snapshot
        self._fd = open_readonly(path)
        self._file_size = os.fstat(self._fd).st_size
        self._l2_lock = threading.Lock()
        self._l2: OrderedDict[int, tuple[int, ...]] = OrderedDict()
        self.backing = backing
        self.parents = parents
        self.backing_format: str | None = None
        self.compression = "zlib"  #: how compressed clusters are stored (zlib or zstd)
        self.extended_l2 = False  #: 128-bit L2 entries mapping subclusters
        self.data_name: str | None = None  #: the external data file as the header names it
        self.data_path: Path | None = None  #: that file, found in the image's folder
        self.data_raw = False  #: the data file is marked a complete raw image of the disk
        self.dirty = False  #: the dirty bit: reference counts may be inconsistent (_DIRTY)
        self._data_fd: int | None = None
        self._data_size = 0
        self._truncation: list[Truncation] | None = None
        try:
            self._load()
        except BaseException:
            self._close_files()
            self._unmade()
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
        self.l1_where = "header, file offset 40"
        if self._wanted_snapshot is not None:
            self._choose_snapshot(self._wanted_snapshot)
        self._l2_entries = 1 << self.l2_bits
        self._l2_shift = 1 if self.extended_l2 else 0  #: 64-bit words per entry, as a shift
        needed = -(-self._size_bytes // (self.cluster_size * self._l2_entries))
        if self.l1_size < needed or self.l1_size > _MAX_L1_ENTRIES:
            raise CorruptImageError(f"the L1 table of {self.l1_size} entries ({self.l1_where}) "
                                    f"cannot map {self._size_bytes} bytes", path=self.path)
        self._check_range(self.l1_offset, 8 * needed, f"L1 table ({self.l1_where})")
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
        if crypt > 2:  # 1 AES, 2 LUKS: QEMU defines no other method
            raise CorruptImageError(f"encryption method {crypt} (file offset 32) is none QEMU "
                                    "defines", path=self.path)
        if crypt:
            raise UnsupportedFormatError(f"{self.path}: encrypted QCOW2 image (BitWitness "
                                         "reads no encrypted QCOW2)")
        if self.version == 3:
            self._check_features(head, cluster_bits)
        self.cluster_bits = cluster_bits
        self.l2_bits = cluster_bits - (4 if self.extended_l2 else 3)
        self._size_bytes, self.l1_size, self.l1_offset = size, l1_size, l1_offset
        self.backing_name = self._backing_name(backing_offset, backing_size)
        if self.backing_name or self.data_name is not None:
            start = 72 if self.version == 2 else self.header_length
            extensions = self._extensions(start, cluster_bits)
            recorded = extensions.get(_BACKING_FORMAT)
            self.backing_format = recorded.decode("ascii", "replace") if recorded else None
            if self.data_name is not None:
                self._open_data_file(extensions.get(_DATA_FILE))

    def _check_features(self, head: bytes, cluster_bits: int) -> None:
        """Version 3's incompatible features: unknown ones are refused by name, a header that
        marks the image corrupt is corrupt, and the known ones set how clusters are read."""
        if len(head) < _V2_HEADER.size + _V3_TAIL.size:
            raise CorruptImageError("truncated QCOW2 version 3 header", path=self.path)
        incompatible, _, autoclear, _, _ = _V3_TAIL.unpack(head[72:72 + _V3_TAIL.size])
        if incompatible & _CORRUPT:
            raise CorruptImageError("the image marks itself corrupt", path=self.path)
        self.dirty = bool(incompatible & _DIRTY)
        if incompatible & ~_KNOWN_INCOMPATIBLE:
            raise UnsupportedFormatError(
                f"{self.path}: QCOW2 with unknown incompatible features "
                f"{incompatible & ~_KNOWN_INCOMPATIBLE:#x}")
        # compression_type (byte 104) exists when the header reaches past it
        kind = head[104] if self.header_length > 104 and len(head) > 104 else 0
        if bool(incompatible & _COMPRESSION_TYPE) != bool(kind):
            raise CorruptImageError(f"compression type {kind} (file offset 104) disagrees with "
                                    "the compression type feature bit", path=self.path)
        if kind not in _COMPRESSION_TYPES:
            raise UnsupportedFormatError(f"{self.path}: QCOW2 image with compression type "
                                         f"{kind}, which BitWitness does not know")
        self.compression = _COMPRESSION_TYPES[kind]
        if incompatible & _EXTENDED_L2:
            if cluster_bits < 14:
                raise CorruptImageError(f"extended L2 entries with clusters of 2^{cluster_bits}"
                                        " bytes (at least 2^14 are required)", path=self.path)
            self.extended_l2 = True
        if incompatible & _EXTERNAL_DATA:
            self.data_name = ""  # named by a header extension, read with the others
            self.data_raw = bool(autoclear & _RAW_DATA)

    def _extensions(self, start: int, cluster_bits: int) -> dict[int, bytes]:
        """The header extensions (type -> data) between the header and the end of the first
        cluster, where the specification keeps them."""
        end = min(self._file_size, 1 << cluster_bits if 9 <= cluster_bits <= 21 else 512)
        found: dict[int, bytes] = {}
        if not 72 <= start < end:
            return found
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
            found.setdefault(kind, data)
            pos += 8 + -(-length // 8) * 8
        return found

    def _open_data_file(self, recorded: bytes | None) -> None:
        """Find and open (read-only) the external data file, in the image's own folder only:
        a recorded path elsewhere is not followed, as for backing files."""
        if not recorded:
            raise UnsupportedFormatError(f"{self.path}: QCOW2 image whose clusters lie in an "
                                         "external data file it does not name")
        self.data_name = recorded.decode("utf-8", "replace")
        self.data_path = contained(self.path.parent, self.data_name)
        if not self.data_path.is_file():
            raise InputError(f"{self.path}: its external data file {self.data_name!r} is not "
                             f"in the image's folder (looked for {self.data_path}); the "
                             "image's clusters lie there: put it beside the image")
        self._data_fd = open_readonly(self.data_path)
        self._data_size = os.fstat(self._data_fd).st_size

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
        words = self._l2_entries << self._l2_shift
        require_present(offset, 8 * words, self._file_size, path=self.path,
                        what=f"the L2 table at file offset {offset}",
                        media_size=self._size_bytes)
        table = struct.unpack(f">{words}Q", read_exact(self._fd, offset, 8 * words, self.path))
        with self._l2_lock:
            self._l2[offset] = table
            while len(self._l2) > _L2_CACHE:
                self._l2.popitem(last=False)
        return table

    def _entry(self, cluster: int) -> tuple[int, int]:
        """The L2 entry of guest ``cluster`` and, with extended L2 entries, its subcluster
        bitmap (0 otherwise)."""
        l1 = self._l1[cluster >> self.l2_bits]
        l2_offset = l1 & (_OFFSET_MASK if self.version >= 2 else (1 << 63) - 1)
        if not l2_offset:
            return 0, 0
        table = self._l2_table(l2_offset)
        index = cluster & (self._l2_entries - 1)
        if self.extended_l2:
            return table[2 * index], table[2 * index + 1]
        return table[index], 0

    def _cluster(self, cluster: int) -> bytes:
        """The ``cluster_size`` bytes of one guest cluster."""
        if self.version == 1:
            entry = self._entry(cluster)[0]
            if entry >> 63:
                bits = 63 - self.cluster_bits
                return self._inflate(cluster, entry & ((1 << bits) - 1),
                                     (entry >> bits) & (self.cluster_size - 1))
            return self._plain(cluster, entry)
        return self._cluster_v2(cluster)

    def _plain(self, cluster: int, offset: int) -> bytes:
        """A cluster at host ``offset`` of the image file (0: not written here)."""
        if not offset:
            return self._from_backing(cluster)
        require_present(offset, self.cluster_size, self._file_size, path=self.path,
                        what=f"cluster {cluster}", media_size=self._size_bytes,
                        media_offset=cluster * self.cluster_size)
        return read_exact(self._fd, offset, self.cluster_size, self.path)

    def _cluster_v2(self, cluster: int) -> bytes:
        entry, bitmap = self._entry(cluster)
        size = self.cluster_size
        if entry >> 62 & 1:
            if bitmap or self.data_name is not None:
                raise CorruptImageError(
                    f"compressed cluster {cluster} in an image whose "
                    f"{'subcluster bitmap' if bitmap else 'external data file'} rules "
                    "compressed clusters out", path=self.path, media_offset=cluster * size)
            bits = 62 - (self.cluster_bits - 8)
            offset = entry & ((1 << bits) - 1)
            sectors = (entry >> bits) & ((1 << (self.cluster_bits - 8)) - 1)
            return self._inflate(cluster, offset, (sectors + 1) * 512 - (offset & 511))
        if self.extended_l2:
            return self._subclusters(cluster, entry, bitmap)
        if self.version == 3 and entry & 1:
            return bytes(size)
        offset = entry & _OFFSET_MASK
        if self.data_name is not None and (offset or entry >> 63):
            return self._data(cluster, offset, 0, size)
        return self._plain(cluster, offset)

    def _subclusters(self, cluster: int, entry: int, bitmap: int) -> bytes:
        """A cluster of 32 subclusters, each read from the host cluster (allocated), as zeros,
        or from the backing file (neither)."""
        size = self.cluster_size
        allocated, zeros = bitmap & _ALL_SUBCLUSTERS, bitmap >> _SUBCLUSTERS
        if allocated & zeros:
            raise CorruptImageError(f"subclusters {allocated & zeros:#010x} of cluster {cluster} "
                                    "are marked both allocated and zero", path=self.path,
                                    media_offset=cluster * size)
        if zeros == _ALL_SUBCLUSTERS:
            return bytes(size)
        offset = entry & _OFFSET_MASK
        if allocated and not (offset or (self.data_name is not None and entry >> 63)):
            raise CorruptImageError(f"cluster {cluster} has allocated subclusters but no host "
                                    "cluster", path=self.path, media_offset=cluster * size)
        below = (self._from_backing(cluster) if ~(allocated | zeros) & _ALL_SUBCLUSTERS
                 else b"")
        sub = size // _SUBCLUSTERS
        # each subcluster's kind: 0 allocated, 1 zeros, 2 the backing file's
        kinds = [0 if allocated >> n & 1 else 1 if zeros >> n & 1 else 2
                 for n in range(_SUBCLUSTERS)]
        parts, n = [], 0
        for kind, run in itertools.groupby(kinds):  # a run of one kind is read at once
            start, length = n * sub, len(list(run)) * sub
            if kind == 0:
                parts.append(self._host(cluster, offset, start, length))
            elif kind == 1:
                parts.append(bytes(length))
            else:
                parts.append(below[start:start + length])
            n += length // sub
        return b"".join(parts)

    def _host(self, cluster: int, offset: int, start: int, length: int) -> bytes:
        """``length`` bytes from ``start`` within the host cluster at ``offset``."""
        if self.data_name is not None:
            return self._data(cluster, offset, start, length)
        require_present(offset + start, length, self._file_size, path=self.path,
                        what=f"cluster {cluster}", media_size=self._size_bytes,
                        media_offset=cluster * self.cluster_size)
        return read_exact(self._fd, offset + start, length, self.path)

    def _data(self, cluster: int, offset: int, start: int, length: int) -> bytes:
        """Bytes of guest ``cluster`` from the external data file, where a cluster lies at its
        own guest offset (the specification requires the L2 entry to say so)."""
        guest = cluster * self.cluster_size
        if offset != guest:
            raise CorruptImageError(f"cluster {cluster} maps to data file offset {offset}, not "
                                    f"to its guest offset {guest}", path=self.path,
                                    media_offset=guest)
        assert self._data_fd is not None
        assert self.data_path is not None
        require_present(guest + start, length, self._data_size, path=self.data_path,
                        what=f"cluster {cluster} in the external data file",
                        media_size=self._size_bytes, media_offset=guest)
        return read_exact(self._data_fd, guest + start, length, self.data_path)

    def _inflate(self, cluster: int, offset: int, length: int) -> bytes:
        """A compressed cluster from its ``length`` stored bytes at ``offset`` (QCOW2: an upper
        bound, the sectors the entry counts; the last stream may end before it). A stream that
        starts past the end of the file, or that the end of the file cuts off before it
        decodes, is missing data (:class:`MissingDataError`), not damage."""
        if offset <= 0 or offset >= reach(self._size_bytes):
            raise CorruptImageError(f"compressed cluster {cluster} lies outside the file",
                                    path=self.path, media_offset=cluster * self.cluster_size)
        missing = MissingDataError(f"compressed cluster {cluster}", path=self.path,
                                   file_offset=offset, file_size=self._file_size,
                                   media_offset=cluster * self.cluster_size)
        if offset >= self._file_size or (self.version == 1
                                         and offset + length > self._file_size):
            raise missing
        cut = offset + length > self._file_size
        stored = read_exact(self._fd, offset, min(length, self._file_size - offset), self.path)
        try:
            return self._decompress(cluster, stored)
        except CorruptImageError:
            if cut:  # the stream ran into the end of the file: its rest was cut off
                raise missing from None
            raise

    def _decompress(self, cluster: int, stored: bytes) -> bytes:
        """One cluster from its stored (zlib or zstd) bytes; anything but a whole cluster is
        a :class:`CorruptImageError`."""
        if self.compression == "zstd":
            data = self._unzstd(cluster, stored)
        else:
            inflater = zlib.decompressobj(-15)
            try:
                data = inflater.decompress(stored, self.cluster_size)
            except zlib.error as exc:
                raise CorruptImageError(f"compressed cluster {cluster} does not inflate "
                                        f"({exc})", path=self.path,
                                        media_offset=cluster * self.cluster_size) from exc
        if len(data) != self.cluster_size:
            raise CorruptImageError(f"compressed cluster {cluster} inflates to {len(data)} "
                                    f"bytes, not {self.cluster_size}", path=self.path,
                                    media_offset=cluster * self.cluster_size)
        return data

    def _unzstd(self, cluster: int, stored: bytes) -> bytes:
        """A zstd-compressed cluster: one frame, decoded up to one cluster (the stored sectors
        may end with another cluster's bytes); a frame asking for a window larger than a
        cluster is refused, so a hostile image cannot make us allocate more."""
        import io

        import zstandard

        window = max(1 << 20, self.cluster_size)
        reader = zstandard.ZstdDecompressor(max_window_size=window).stream_reader(
            io.BytesIO(stored), read_across_frames=False)
        try:
            return reader.read(self.cluster_size)
        except zstandard.ZstdError as exc:
            raise CorruptImageError(f"zstd-compressed cluster {cluster} does not decompress "
                                    f"({exc})", path=self.path,
                                    media_offset=cluster * self.cluster_size) from exc

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

    def truncation(self) -> list[Truncation]:
        """Cached :meth:`_truncation`: ``verify`` asks, then its table check asks again."""
        if self._truncation is None:
            self._truncation = self._find_truncation()
        return self._truncation

    def _find_truncation(self) -> list[Truncation]:
        """This file (and its external data file) where cut short: the L1 table and every L2
        table it reaches read once, each data cluster's place compared with the file's size
        (never a read of the data, but for the one compressed cluster the cut may split).
        An L2 table past the end leaves every cluster it maps missing. The backing chain is
        not walked: what a backing file lacks is that file's own question."""
        size = self.cluster_size
        own = TruncationScan(self.path, self._file_size, self.size, self.sector_size)
        data = (None if self.data_path is None else
                TruncationScan(self.data_path, self._data_size, self.size, self.sector_size))
        span = size << self.l2_bits
        words = self._l2_entries << self._l2_shift
        for index, l1 in enumerate(self._l1):
            l2_offset = l1 & (_OFFSET_MASK if self.version >= 2 else (1 << 63) - 1)
            if not l2_offset:
                continue
            if l2_offset + 8 * words > self._file_size:
                own.unit(l2_offset, 8 * words, index * span, span, what=f"L2 table {index}")
                continue
            table = self._l2_table(l2_offset)
            for sub in range(self._l2_entries):
                entry = table[sub << self._l2_shift]
                bitmap = table[(sub << self._l2_shift) + 1] if self._l2_shift else 0
                if entry or bitmap:
                    self._scan_entry(own, data, (index << self.l2_bits) + sub, entry, bitmap)
        found = [own.result(self._whole_compressed)]
        if data is not None:
            found.append(data.result())
        return [t for t in found if t is not None]

    def _scan_entry(self, own: TruncationScan, data: TruncationScan | None, cluster: int,
                    entry: int, bitmap: int) -> None:
        """One L2 entry's stored bytes, if any, given to the scan of the file holding them."""
        size = self.cluster_size
        guest = cluster * size
        if self.version == 1:
            if entry >> 63:
                bits = 63 - self.cluster_bits
                own.unit(entry & ((1 << bits) - 1), (entry >> bits) & (size - 1), guest, size)
            else:
                own.unit(entry, size, guest, size)
            return
        if entry >> 62 & 1:
            bits = 62 - (self.cluster_bits - 8)
            offset = entry & ((1 << bits) - 1)
            sectors = (entry >> bits) & ((1 << (self.cluster_bits - 8)) - 1)
            own.unit(offset, (sectors + 1) * 512 - (offset & 511), guest, size, exact=False)
            return
        offset = entry & _OFFSET_MASK
        length = size
        if self.extended_l2:  # the host cluster is needed as far as its last allocated part
            length = (bitmap & _ALL_SUBCLUSTERS).bit_length() * (size // _SUBCLUSTERS)
            if not length:
                return
        elif self.version == 3 and entry & 1:
            return  # reads as zeros
        if data is not None:
            if offset or entry >> 63:
                data.unit(guest, length, guest, size)
        elif offset:
            own.unit(offset, length, guest, size)

    def _whole_compressed(self, offset: int) -> bool:
        """Whether the compressed cluster at ``offset``, the last one before the end of the
        file, still decodes to a whole cluster from the bytes the file holds."""
        stored = read_exact(self._fd, offset, min(self.cluster_size * 2,
                                                  self._file_size - offset), self.path)
        try:
            self._decompress(0, stored)
        except CorruptImageError:
            return False
        return True

    @property
    def info(self) -> StreamInfo:
        details: dict[str, Any] = {"reader": "bitwitness", "qcow_version": self.version,
                                   "cluster_size": self.cluster_size}
        if self.compression != "zlib":
            details["compression"] = self.compression
        if self.extended_l2:
            details["extended_l2"] = True
        if self.data_path is not None:
            details["data_file"] = str(self.data_path)
            details["data_file_raw"] = self.data_raw
        if self.parents:
            details["parents"] = [str(p) for p in self.parents]
        if self.snapshot is not None:
            details["snapshot"] = (f"{self.snapshot.describe()}: the disk as it was then "
                                   "(--snapshot), not its current state")
        if self.version >= 2 and self.snapshots:
            details["internal_snapshots"] = self._snapshots_note()
        if self.dirty:
            details["refcounts_dirty"] = (
                "the header's dirty bit is set (lazy refcounts): the image was not closed "
                "cleanly and its reference counts may be inconsistent; QEMU rebuilds them "
                "when it opens the image for writing. Only the reference counts are in "
                "question: the media is read through the L1/L2 tables, which verify checks")
        note = partial_sector_note(self.size, "down")
        if note is not None:
            details["media_size_note"] = note
        own = (self.path,) if self.data_path is None else (self.path, self.data_path)
        files = (*own, *(self.backing.info.files if self.backing is not None else ()))
        return StreamInfo(format="qcow2" if self.version >= 2 else "qcow", files=files,
                          media_size=self.size, sector_size=self.sector_size, details=details)

    def _snapshots_note(self) -> str:
        """What ``info`` says of the image's internal snapshots: earlier states of the disk,
        kept inside the file beside the current one (the media read here, unless a snapshot
        was chosen). Not evidence to pass over: a VM's disk before an event. Named (ID, name,
        date, VM clock), the first :data:`_SHOWN_SNAPSHOTS` of them; a table that cannot be
        read is said, not raised."""
        count = self.snapshots
        plural = "s" if count != 1 else ""
        if self.snapshot is None:
            what = (f"{count} internal snapshot{plural}: other states of the disk kept inside "
                    "the image, not the media read here (--snapshot ID reads one)")
        else:
            what = (f"{count} internal snapshot{plural}: states of the disk kept inside the "
                    f"image; the media read here is ID {_printable(self.snapshot.ident)}'s, "
                    "not the current state")
        try:
            named = [entry.describe() for entry in self._snapshot_entries(_SHOWN_SNAPSHOTS)]
        except BitWitnessError as exc:
            return f"{what}; the snapshot table cannot be read: {exc}"
        more = f"; and {count - len(named)} more" if count > len(named) else ""
        return f"{what}: {'; '.join(named)}{more}"

    def _snapshot_entries(self, limit: int = _MAX_SNAPSHOTS) -> list[Snapshot]:
        """The first ``limit`` entries of the snapshot table, each read with every length
        checked against the file before it is read."""
        count = self.snapshots if self.version >= 2 else 0
        if count > _MAX_SNAPSHOTS:
            raise CorruptImageError(f"{count} snapshots recorded (QEMU allows "
                                    f"{_MAX_SNAPSHOTS})", path=self.path)
        entries, at = [], self.snapshots_offset
        for number in range(min(count, limit)):
            self._check_range(at, _SNAPSHOT.size, f"snapshot table entry {number}")
            (l1_offset, l1_size, id_size, name_size, seconds, _nanoseconds, clock, _state,
             extra) = _SNAPSHOT.unpack(read_exact(self._fd, at, _SNAPSHOT.size, self.path))
            if extra > _MAX_SNAPSHOT_EXTRA or id_size + name_size > _MAX_SNAPSHOT_TEXT:
                raise CorruptImageError(
                    f"snapshot table entry {number} (file offset {at}) declares {extra} bytes "
                    f"of extra data and {id_size + name_size} of ID and name", path=self.path)
            self._check_range(at + _SNAPSHOT.size, extra + id_size + name_size,
                              f"snapshot table entry {number}")
            rest = read_exact(self._fd, at + _SNAPSHOT.size, extra + id_size + name_size,
                              self.path)
            # extra data: the VM state's 64-bit size, then the disk's size (QEMU 1.1 on)
            disk_size = struct.unpack_from(">Q", rest, 8)[0] if extra >= 16 else None
            entries.append(Snapshot(number, at, rest[extra:extra + id_size],
                                    rest[extra + id_size:], l1_offset, l1_size, seconds, clock,
                                    disk_size))
            at += -(-(_SNAPSHOT.size + extra + id_size + name_size) // 8) * 8  # padded to 8
        return entries

    def _choose_snapshot(self, wanted: str) -> None:
        """Read snapshot ``wanted`` instead of the current state: its L1 table, and the disk's
        size when it was taken, as ``qemu-img snapshot -a`` restores it (QEMU looks a snapshot
        up by ID first, then by name; so do we, refusing one that several entries answer to).
        """
        if self.version < 2:
            raise InputError(f"{self.path}: a QCOW version 1 image keeps no internal snapshots "
                             f"(--snapshot {_printable(wanted.encode())})")
        key = wanted.encode("utf-8", "surrogateescape")
        entries = self._snapshot_entries()
        found = [e for e in entries if e.ident == key] or [e for e in entries if e.name == key]
        if not found:
            known = ", ".join(f"ID {_printable(e.ident)} {_printable(e.name)!r}"
                              for e in entries[:_SHOWN_SNAPSHOTS]) or "none"
            more = f" and {len(entries) - _SHOWN_SNAPSHOTS} more" \
                if len(entries) > _SHOWN_SNAPSHOTS else ""
            raise InputError(f"{self.path}: no internal snapshot has the ID or name "
                             f"{_printable(key)!r}; the image keeps: {known}{more}")
        if len(found) > 1:
            raise InputError(f"{self.path}: {len(found)} internal snapshots answer to "
                             f"{_printable(key)!r} (IDs "
                             f"{', '.join(_printable(e.ident) for e in found[:10])}); name one "
                             "by an ID only it has")
        chosen = found[0]
        self.snapshot = chosen
        self.l1_offset, self.l1_size = chosen.l1_offset, chosen.l1_size
        self.l1_where = f"snapshot table entry {chosen.number}, file offset {chosen.at}"
        if chosen.disk_size is not None:
            self._size_bytes = chosen.disk_size

    def _close_files(self) -> None:
        os.close(self._fd)
        if self._data_fd is not None:
            os.close(self._data_fd)
            self._data_fd = None

    def close(self) -> None:
        if not self.closed:
            self._close_files()
            if self.backing is not None:
                self.backing.close()
        super().close()


class _Consistency:
    """What a QCOW image's tables record about each other, checked as ``qemu-img check`` does
    for corruption (not for leaks): the header's tables lie inside the file at cluster
    boundaries, every L2 table and data cluster the active L1 table reaches lies inside the file,
    no two guest clusters share a host cluster, and (QCOW2) every such cluster has a reference
    count of at least one."""

    def __init__(self, image: QcowStream, cut_short: bool = False) -> None:
        """``cut_short``: the file is known to be cut short (:meth:`QcowStream.truncation`),
        so a data cluster or L2 table lying past its end is the missing end, counted in a
        note, not table damage."""
        self.image = image
        self.cut_short = cut_short
        self.beyond = 0  #: clusters and tables past the end of a file cut short
        self.problems: list[str] = []
        #: what the check says without failing (reference counts left dirty)
        self.notes: list[str] = []
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
            shift = image._l2_shift
            for sub in range(image._l2_entries):
                entry = table[sub << shift]
                bitmap = table[(sub << shift) + 1] if shift else 0
                if not (entry or bitmap):
                    continue
                guest = (index << image.l2_bits) + sub
                where = f"L2 entry {sub} of the table at file offset {l2_offset} (guest " \
                        f"cluster {guest}, media offset {guest * size})"
                self._data_entry(entry, bitmap, guest, where, used)
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
        for what, offset, length, where in (
                ("L1 table", image.l1_offset, 8 * image.l1_size, image.l1_where),
                ("refcount table", image.refcount_offset, image.refcount_clusters * size,
                 "header, file offset 48"),
                ("snapshot table", image.snapshots_offset, 0 if not image.snapshots else 1,
                 "header, file offset 64")):
            if not length:
                continue
            if offset % size:
                self.problems.append(f"the {what} offset {offset} ({where}) "
                                     "is not at a cluster boundary")
            elif offset + length > image._file_size:
                self.problems.append(f"the {what} ({length} bytes at file offset {offset}, "
                                     f"{where}) runs past the end of the file "
                                     f"({image._file_size} bytes)")

    def _cluster_ok(self, offset: int, where: str, what: str, used: set[int],
                    length: int | None = None) -> bool:
        """The cluster at ``offset`` is aligned, unshared and inside the file up to ``length``
        bytes (the whole cluster unless said: a cluster of subclusters needs only those
        allocated in it, and QEMU extends the file no further than the last one written)."""
        image = self.image
        length = image.cluster_size if length is None else length
        if offset % image.cluster_size:
            self.problems.append(f"{where}: the {what} at file offset {offset} is not at a "
                                 "cluster boundary")
            return False
        if offset + length > image._file_size:
            if self.cut_short:
                self.beyond += 1
            else:
                self.problems.append(f"{where}: the {what} at file offset {offset} lies past "
                                     f"the end of the file ({image._file_size} bytes)")
            return False
        if offset in used:
            self.problems.append(f"{where}: the {what} at file offset {offset} is also used by "
                                 "another guest cluster or table")
            return False
        used.add(offset)
        return True

    def _data_entry(self, entry: int, bitmap: int, guest: int, where: str,
                    used: set[int]) -> None:
        image = self.image
        if image.version == 1:
            self._v1_entry(entry, where, used)
            return
        if entry >> 62 & 1:
            offset = entry & ((1 << (62 - (image.cluster_bits - 8))) - 1)
            if bitmap or image.data_name is not None:
                self.problems.append(f"{where}: a compressed cluster where the image rules "
                                     "them out (subcluster bitmap or external data file)")
            elif offset >= image._file_size:
                self._past_end(where, offset)
            return
        if bitmap & _ALL_SUBCLUSTERS & bitmap >> _SUBCLUSTERS:
            self.problems.append(f"{where}: subclusters marked both allocated and zero "
                                 f"({bitmap:#018x})")
        offset = entry & _OFFSET_MASK
        if image.data_name is not None:  # clusters in the data file are not refcounted
            self._data_file_entry(entry, guest, where)
        elif offset:
            if entry & 0x1FF & ~1:
                self.problems.append(f"{where}: reserved bits are set ({entry:#018x})")
            allocated = bitmap & _ALL_SUBCLUSTERS
            length = (allocated.bit_length() * (image.cluster_size // _SUBCLUSTERS)
                      if image.extended_l2 else None)
            self._cluster_ok(offset, where, "data cluster", used, length)

    def _v1_entry(self, entry: int, where: str, used: set[int]) -> None:
        image = self.image
        if entry >> 63:
            offset = entry & ((1 << (63 - image.cluster_bits)) - 1)
            if offset >= image._file_size:
                self._past_end(where, offset)
        elif entry:
            self._cluster_ok(entry, where, "data cluster", used)

    def _past_end(self, where: str, offset: int) -> None:
        if self.cut_short:
            self.beyond += 1
        else:
            self.problems.append(f"{where}: compressed data at file offset {offset} lies past "
                                 "the end of the file")

    def _data_file_entry(self, entry: int, guest: int, where: str) -> None:
        """A cluster in the external data file must lie at its own guest offset."""
        offset, expected = entry & _OFFSET_MASK, guest * self.image.cluster_size
        if (offset or entry >> 63) and offset != expected:
            self.problems.append(f"{where}: data file offset {offset} is not the guest offset "
                                 f"{expected}")

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
        unrecorded: list[str] = []
        count_zero = 0
        for offset in sorted({*used, *l1_clusters}):
            cluster = offset // size
            index, within = divmod(cluster, per_block)
            block = self._refblock(index)
            count = 0 if block is None else struct.unpack_from(fmt, block, within * width)[0]
            if count == 0:
                count_zero += 1
                if len(unrecorded) < (_NAMED_DIRTY if image.dirty else 10):
                    unrecorded.append(f"the cluster at file offset {offset} is in use but its "
                                      "reference count is 0 (refcount table entry "
                                      f"{index} at file offset "
                                      f"{image.refcount_offset + 8 * index})")
                if not image.dirty and len(self.problems) + len(unrecorded) >= 10:
                    break
        if image.dirty:
            self._dirty_note(count_zero, unrecorded)
        else:
            self.problems += unrecorded

    def _dirty_note(self, count: int, named: list[str]) -> None:
        """With the dirty bit set, reference counts that disagree with the tables are what a
        crash under lazy refcounts leaves (QEMU counts them again when it next opens the image
        for writing, and ``qemu-img check`` calls them leaks and errors until then): said, not
        failed. Only the reference counts are excused; every other problem still fails."""
        said = ("the reference counts were left dirty (the header's dirty bit: lazy refcounts "
                "after an unclean shutdown, not repaired)")
        if count:
            more = f"; {count - len(named)} more" if count > len(named) else ""
            said += (f": {count} clusters in use have a reference count of 0, which is no "
                     f"damage here: {'; '.join(named)}{more}")
        else:
            said += ", though they agree with the tables"
        self.notes.append(said)

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


def qcow_checks(paths: list[Path], snapshot: str | None = None,
                cut_short: frozenset[Path] = frozenset()) -> tuple[ContainerCheck, ...]:
    """The table consistency of every QCOW file among ``paths`` (an image and its backing
    chain), each as one check saying where the first problems lie; ``snapshot``: the internal
    snapshot of the first file whose tables are walked instead of the current state's.
    ``cut_short``: files known to be cut short, whose clusters past the end are the missing
    end (``verify`` says INCOMPLETE with the sectors), not damage to the tables."""
    checks = []
    for number, path in enumerate(paths):
        if not _is_qcow(path):
            continue
        chosen = snapshot if number == 0 else None
        what = f"QCOW tables of {path.name}" + (
            "" if chosen is None else f" (snapshot ID {_printable(chosen.encode())})")
        try:
            image = QcowStream(path, snapshot=chosen)
        except BitWitnessError as exc:
            checks.append(ContainerCheck(what, False, str(exc)))
            continue
        consistency = _Consistency(image, path in cut_short)
        try:
            problems = consistency.run()
        except BitWitnessError as exc:
            problems = [str(exc)]
        finally:
            image.close()
        if consistency.beyond:
            consistency.notes.append(f"{consistency.beyond} data clusters or L2 tables lie past "
                                     "the end of the file, which is cut short: not checked")
        if problems:
            detail = "; ".join([*problems, *consistency.notes])
        elif consistency.notes:
            detail = "header and L1/L2 tables consistent; " + "; ".join(consistency.notes)
        else:
            detail = "header, L1/L2 tables and reference counts consistent"
        checks.append(ContainerCheck(what, not problems, detail))
    return tuple(checks)


def _open_ours(path: Path, chain: list[Path], snapshot: str | None = None) -> QcowStream:
    """Our reader on ``path``, with its backing chain (``chain``: the files above it);
    ``snapshot``: the internal snapshot of ``path`` to read (its backing files are read in
    their current state, as QEMU reads them under a snapshot)."""
    top = QcowStream(path, snapshot=snapshot)
    if not top.backing_name:
        return top
    try:
        parent = find_parent(path, top.backing_name, [*chain, path])
        with current_state():
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
    """Open a QCOW image and its backing chain read-only, in the state the command chose
    (:func:`~bitwitness.images.snapshot_choice.chosen_snapshot`)."""
    try:
        return _open_ours(path, [], chosen_snapshot())
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
        data_files: list[Path | None] = []
        below: ImageStream | None = stream
        for _ in chain:  # each image's external data file, as our reader found it
            data_files.append(below.data_path if isinstance(below, QcowStream) else None)
            below = below.backing if isinstance(below, QcowStream) else None
        return QemuNbdStream(path, drivers[0], chain, drivers, data_files,
                             snapshot=_chosen_id(stream))

    def self_checks(self, path: Path, stream: ImageStream) -> tuple[ContainerCheck, ...]:
        """Header and table consistency of the image and each QCOW file of its chain; of the
        image, the tables of the state read (a snapshot's L1 table where one was chosen)."""
        cut = frozenset(t.file for t in self.truncation(path, stream))
        return qcow_checks(list(stream.info.files), _chosen_id(stream), cut)

    def truncation(self, path: Path, stream: ImageStream) -> list[Truncation]:
        """The image file, or its external data file, cut short (:meth:`QcowStream.truncation`
        of the state read)."""
        return stream.truncation() if isinstance(stream, QcowStream) else []


FORMAT = QcowFormat()


def _chosen_id(stream: ImageStream) -> str | None:
    """The ID of the internal snapshot ``stream`` reads (as ``--snapshot`` takes it, and QEMU),
    or None for the current state."""
    chosen = stream.snapshot if isinstance(stream, QcowStream) else None
    return None if chosen is None else chosen.ident.decode("utf-8", "surrogateescape")


def _printable(data: bytes) -> str:
    """An ID or name the image records, as text that cannot pass for anything else: bytes
    that are not printable UTF-8 shown as escapes, the whole cut at 64 characters."""
    text = data.decode("utf-8", "backslashreplace")
    shown = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text)
    return shown if len(shown) <= 64 else shown[:63] + "…"
