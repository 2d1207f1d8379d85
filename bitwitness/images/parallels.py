"""Parallels disk images: bundles through libphdi (pyphdi), lone sparse extents by our reader.

A Parallels disk is a ``.hdd`` folder holding ``DiskDescriptor.xml`` and one or more extent files.
The descriptor names its extents; each is opened by us, inside the folder only, and handed to
libphdi as a file object. :class:`ParallelsBundleStream` reads a bundle of one snapshot by our own
code (its storages in order, sparse or plain): the second reader of what libphdi reads.
libphdi opens descriptors only, so a lone sparse extent file (``.hds``,
signature ``WithoutFreeSpace`` or ``WithouFreSpacExt``, as ``qemu-img convert -O parallels``
writes it) is read by :class:`SparseExtentStream`: a 64-byte little-endian header, then one 32-bit
entry per cluster giving where the cluster's data lies (0: never written, reads as zeros). In the
``WithouFreSpacExt`` variant an entry counts clusters, in the older one sectors.

The table is never held whole: a real file may declare 64M entries (256 MiB), which as Python
integers would take gigabytes. It is checked at open a piece at a time (each entry must name a
cluster inside the file) and each read fetches just the entries it needs, so memory stays small
whatever the header declares. :func:`parallels_checks` checks the table for ``verify`` the same
way, a piece at a time.
"""

from __future__ import annotations

import os
import struct
import sys
from array import array
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bitwitness.errors import CorruptImageError, InputError, UnsupportedFormatError
from bitwitness.evidence_io import read_head
from bitwitness.images.checks import (
    ContainerCheck,
    Findings,
    check_entries,
    check_overlaps,
    table_pieces,
)
from bitwitness.images.filestream import FileImageStream
from bitwitness.images.libyal import (
    LibyalStream,
    binding,
    contained,
    first_line,
    open_file_object,
    open_handle,
)
from bitwitness.images.raw import read_exact
from bitwitness.stream import ImageStream, StreamInfo

DESCRIPTOR = "DiskDescriptor.xml"
SECTOR = 512
#: magic, version, heads, cylinders, sectors per cluster, BAT entries, media sectors, in use,
#: first data sector, flags, extension offset.
_HEADER = struct.Struct("<16sIIIIIQIIIQ")
_MAGIC_SECTORS = b"WithoutFreeSpace"
_MAGIC_CLUSTERS = b"WithouFreSpacExt"
#: Largest BAT read into memory (4 bytes an entry): a hostile header cannot ask for more.
_MAX_BAT_ENTRIES = 64 << 20
#: Table entries checked at a time when the extent is opened (1 MiB of table).
_SCAN_ENTRIES = 1 << 18
#: The array type of a 32-bit unsigned entry ("I" is 4 bytes on every platform CPython runs on
#: that we support; "L" where it is not).
_ENTRY_TYPE = "I" if array("I").itemsize == 4 else "L"


class SparseExtentStream(FileImageStream):
    """A lone Parallels sparse extent, read by our own code."""

    def _load(self) -> int:
        file_size = os.fstat(self._fd).st_size
        header = read_exact(self._fd, 0, _HEADER.size, self.path)
        (magic, _version, _heads, _cyl, cluster_sectors, entries, sectors, _inuse, _data_off,
         _flags, _ext) = _HEADER.unpack(header)
        if magic not in (_MAGIC_SECTORS, _MAGIC_CLUSTERS):
            raise CorruptImageError("no Parallels signature", path=self.path)
        if cluster_sectors == 0 or entries > _MAX_BAT_ENTRIES:
            raise CorruptImageError(f"implausible header: {cluster_sectors} sectors a cluster, "
                                    f"{entries} table entries", path=self.path)
        self._cluster = cluster_sectors * SECTOR
        if sectors * SECTOR > entries * self._cluster:
            raise CorruptImageError(f"the table of {entries} clusters cannot hold "
                                    f"{sectors} sectors", path=self.path)
        media = sectors * SECTOR
        self._unit = self._cluster if magic == _MAGIC_CLUSTERS else SECTOR
        # a table cannot be larger than the file holding it: checked before anything is read
        if _HEADER.size + 4 * entries > file_size:
            raise CorruptImageError(f"the table of {entries} entries ({4 * entries} bytes) runs "
                                    f"past the end of the {file_size}-byte file",
                                    path=self.path)
        self._entries = entries
        self._allocated = 0
        for first in range(0, entries, _SCAN_ENTRIES):
            piece = self._table(first, min(_SCAN_ENTRIES, entries - first))
            self._allocated += len(piece) - piece.count(0)
            # an entry's cluster end grows with its value: checking the largest checks all
            if piece and max(piece) * self._unit + self._cluster > file_size:
                index, value = next((i, v) for i, v in enumerate(piece)
                                    if v * self._unit + self._cluster > file_size)
                raise CorruptImageError(f"cluster {first + index} lies past the end of the "
                                        f"file (file offset {value * self._unit})",
                                        path=self.path)
        # reads need not be whole clusters (_read_aligned takes any sector range): a header
        # may declare a cluster of 2^32 sectors, which must never be allocated whole
        self.alignment = SECTOR
        return media

    def _table(self, first: int, count: int) -> array[int]:
        """Entries ``first`` to ``first + count`` of the table, as stored (little-endian)."""
        table = array(_ENTRY_TYPE, read_exact(self._fd, _HEADER.size + 4 * first, 4 * count,
                                              self.path))
        if sys.byteorder == "big":
            table.byteswap()
        return table

    def _read_aligned(self, offset: int, length: int) -> bytes:
        parts = []
        end = offset + length
        if length <= 0:
            return b""
        first = offset // self._cluster
        table = self._table(first, (end - 1) // self._cluster - first + 1)
        while offset < end:
            index, within = divmod(offset, self._cluster)
            n = min(self._cluster - within, end - offset)
            stored = table[index - first] * self._unit
            parts.append(read_exact(self._fd, stored + within, n, self.path) if stored
                         else bytes(n))
            offset += n
        return b"".join(parts)

    @property
    def info(self) -> StreamInfo:
        return StreamInfo(format="parallels", files=(self.path,), media_size=self.size,
                          sector_size=self.sector_size,
                          details={"reader": "bitwitness", "cluster_size": self._cluster,
                                   "allocated_clusters": self._allocated})


def parallels_checks(path: Path) -> tuple[ContainerCheck, ...]:
    """A sparse extent's cluster table against its header and the file: as many entries as
    clusters of the declared size (QEMU and Parallels write exactly that many), the table in
    the file, every allocated cluster after the header, the table and the first data sector
    the header records, and inside the file, no two clusters overlapping (two stretches of
    the media reading the same data), no entry past the disk's last cluster allocated. The
    reader refuses only a cluster past the end of the file. Read a piece at a time, as the
    reader does; each problem names the entry's index and file offset. A file without the
    signature (a plain extent) records nothing to check."""
    head = read_head(path, _HEADER.size)
    if len(head) < _HEADER.size or not head.startswith((_MAGIC_SECTORS, _MAGIC_CLUSTERS)):
        return ()
    (magic, _version, _heads, _cyl, cluster_sectors, entries, sectors, _inuse, data_off,
     _flags, _ext) = _HEADER.unpack(head)
    what, findings = "Parallels cluster table", Findings()
    file_size = path.stat().st_size
    if cluster_sectors == 0:
        findings.add("the header (file offset 28) records clusters of 0 sectors")
        return (findings.check(what, path.name, ""),)
    cluster = cluster_sectors * SECTOR
    unit = cluster if magic == _MAGIC_CLUSTERS else SECTOR
    needed = -(-sectors // cluster_sectors)
    if entries != needed:
        findings.add(f"the header (file offset 32) records {entries} table entries; "
                     f"{needed} clusters of {cluster} bytes hold the {sectors}-sector disk")
    fits = min(entries, (file_size - _HEADER.size) // 4)
    if fits < entries:
        findings.add(f"the table ({entries} entries at file offset {_HEADER.size}) runs past "
                     f"the end of the {file_size}-byte file; {fits} entries checked")
    table_end = _HEADER.size + 4 * fits
    first_data = max(table_end, data_off * SECTOR)

    def where(index: int, value: int) -> str:
        return (f"entry {index} (file offset {_HEADER.size + 4 * index}: cluster at file "
                f"offset {value * unit})")

    def judge(index: int, value: int) -> Iterator[Callable[[], str]]:
        start = value * unit
        if start < first_data:
            yield lambda: (f"{where(index, value)} lies inside the header or the table, "
                           f"before the data's first byte (file offset {first_data})")
        elif start + cluster > file_size:
            yield lambda: (f"{where(index, value)} runs past the end of the {file_size}-byte "
                           "file")
        if index >= needed:
            yield lambda: (f"{where(index, value)} is allocated past the disk's last cluster "
                           f"({needed - 1})")

    pieces = table_pieces(path, _HEADER.size, fits, big_endian=False)
    check_entries(findings, pieces, frozenset((0,)), judge,
                  (-(-first_data // unit), (file_size - cluster) // unit, needed))
    check_overlaps(findings, pieces, frozenset((0,)), cluster // unit, where)
    return (findings.check(what, path.name, f"{entries} entries of {cluster}-byte clusters: "
                           "every allocated cluster inside the file after the table, none "
                           "overlapping another, the count matching the disk size"),)


def _entry(path: Path) -> Path:
    """The file libphdi opens: the descriptor of a ``.hdd`` folder, else the file itself."""
    if path.is_dir():
        return path / DESCRIPTOR
    if path.name != DESCRIPTOR and (path.parent / DESCRIPTOR).is_file():
        return path.parent / DESCRIPTOR
    return path


def open_phdi(path: Path) -> ImageStream:
    """Open a Parallels bundle through libphdi (a lone extent through our reader)."""
    entry = _entry(path)
    if entry.name != DESCRIPTOR:
        return SparseExtentStream(entry)
    pyphdi = binding("pyphdi", "libphdi-python", f"{path}: Parallels disk image")
    owned: list[Any] = []
    handle, fobj = open_handle(pyphdi.handle, entry, "the Parallels disk")
    owned.append(fobj)
    files = [entry]
    try:
        objects = []
        for descriptor in handle.extent_descriptors:
            extent = contained(entry.parent, _extent_name(descriptor))
            if not extent.is_file():
                raise InputError(f"{entry}: Parallels extent {_extent_name(descriptor)!r} is "
                                 f"missing (looked for {extent})")
            objects.append(open_file_object(extent))
            files.append(extent)
        owned.extend(objects)
        try:
            handle.open_extent_data_files_as_file_objects(objects)
        except (OSError, ValueError, TypeError) as exc:
            raise CorruptImageError(f"libphdi cannot open the extents: {first_line(exc)}",
                                    path=entry) from exc
        return LibyalStream(handle, fmt="parallels", files=files,
                            reader=f"libphdi {pyphdi.get_version()}", owned=owned)
    except BaseException:
        handle.close()
        for item in reversed(owned):
            item.close()
        raise


#: The largest DiskDescriptor.xml read (real ones are a few KiB).
_DESCRIPTOR_LIMIT = 1 << 20


def _parse_descriptor(entry: Path) -> Any:
    """The parsed ``DiskDescriptor.xml``: bounded in size, and refused when it declares a
    document type or entities (so no entity expansion can happen in the parser)."""
    import xml.etree.ElementTree as ET

    from bitwitness.images.raw import read_at

    if entry.stat().st_size > _DESCRIPTOR_LIMIT:
        raise CorruptImageError("DiskDescriptor.xml is too large", path=entry)
    text = read_at(entry, 0, _DESCRIPTOR_LIMIT)
    if b"<!DOCTYPE" in text or b"<!ENTITY" in text:
        raise CorruptImageError("DiskDescriptor.xml declares a document type or entities",
                                path=entry)
    try:
        return ET.fromstring(text)  # noqa: S314 - no DTD/entities (refused above), bounded size
    except (ET.ParseError, LookupError, ValueError) as exc:  # an encoding expat cannot take
        raise CorruptImageError(f"DiskDescriptor.xml cannot be read ({exc})",
                                path=entry) from exc


def _descriptor_extents(entry: Path) -> tuple[int, list[tuple[int, int, str, Path]]]:
    """The media size in bytes and, for the snapshot in use, each storage's (first byte, end
    byte, image type, file) as ``DiskDescriptor.xml`` declares them (one snapshot only)."""
    root = _parse_descriptor(entry)
    if len(root.findall("Snapshots/Shot")) > 1:
        raise UnsupportedFormatError(f"{entry}: a Parallels disk with snapshots, which "
                                     "BitWitness reads through libphdi only")
    extents = []
    try:
        size = int(root.findtext("Disk_Parameters/Disk_size") or "")
        for storage in root.findall("StorageData/Storage"):
            images = storage.findall("Image")
            if len(images) != 1:
                raise UnsupportedFormatError(f"{entry}: a storage with {len(images)} images")
            start, end = int(storage.findtext("Start") or ""), int(storage.findtext("End") or "")
            extents.append((start * SECTOR, end * SECTOR, images[0].findtext("Type") or "",
                            contained(entry.parent, images[0].findtext("File") or "")))
    except ValueError as exc:
        raise CorruptImageError(f"DiskDescriptor.xml declares no sizes ({exc})",
                                path=entry) from exc
    position = 0
    for start, end, kind, path in extents:
        if start != position or end <= start or kind not in ("Compressed", "Plain"):
            raise CorruptImageError(f"storage {path.name}: sectors {start // SECTOR}-"
                                    f"{end // SECTOR} of type {kind!r} do not follow on",
                                    path=entry)
        if not path.is_file():
            raise InputError(f"{entry}: Parallels extent {path.name!r} is missing (looked "
                             f"for {path})")
        position = end
    if position != size * SECTOR:
        raise CorruptImageError(f"the storages cover {position} bytes of a {size * SECTOR}-byte "
                                "disk", path=entry)
    return size * SECTOR, extents


class ParallelsBundleStream(ImageStream):
    """A ``.hdd`` bundle read by our own code: its storages in order, each a sparse extent
    (:class:`SparseExtentStream`) or plain bytes."""

    def __init__(self, entry: Path) -> None:
        from bitwitness.images.raw import RawStream

        self.entry = entry
        size, declared = _descriptor_extents(entry)
        self._parts: list[tuple[int, int, ImageStream]] = []
        try:
            for start, end, kind, path in declared:
                part: ImageStream = (SparseExtentStream(path) if kind == "Compressed"
                                     else RawStream(path))
                self._parts.append((start, end, part))
                if part.size < end - start:
                    raise CorruptImageError(f"extent {path.name} holds {part.size} bytes of "
                                            f"its {end - start}", path=path)
        except BaseException:
            for _, _, opened in self._parts:
                opened.close()
            raise
        super().__init__(size)

    def _read_aligned(self, offset: int, length: int) -> bytes:
        out = []
        end = offset + length
        for start, stop, part in self._parts:
            if stop <= offset or start >= end:
                continue
            lo, hi = max(offset, start), min(end, stop)
            data = part.pread(lo - start, hi - lo)
            out.append(data + bytes(hi - lo - len(data)))
        return b"".join(out)

    @property
    def info(self) -> StreamInfo:
        files = (self.entry, *(f for _, _, p in self._parts for f in p.info.files))
        return StreamInfo(format="parallels", files=files, media_size=self.size,
                          sector_size=self.sector_size, details={"reader": "bitwitness"})

    def close(self) -> None:
        if not self.closed:
            for _, _, part in self._parts:
                part.close()
        super().close()


class ParallelsFormat:
    name = "parallels"
    containers = ("parallels",)
    qemu_driver = "parallels"

    def probe(self, path: Path, head: bytes) -> bool:
        return head.startswith((_MAGIC_SECTORS, _MAGIC_CLUSTERS))

    def claims_name(self, path: Path) -> bool:
        return False

    def files(self, path: Path) -> list[Path]:
        with open_phdi(path) as stream:
            return list(stream.info.files)

    def open(self, path: Path) -> ImageStream:
        """libphdi for a bundle; where it refuses one as damaged (it opens no bundle of several
        plain extents), our own bundle reader when that reads it."""
        try:
            return open_phdi(path)
        except CorruptImageError as theirs:
            entry = _entry(path)
            if entry.name != DESCRIPTOR:
                raise
            try:
                return ParallelsBundleStream(entry)
            except (CorruptImageError, UnsupportedFormatError, InputError):
                raise theirs from None

    def second_reader(self, path: Path, stream: ImageStream) -> ImageStream | None:
        """QEMU's parallels driver for a lone extent (ours read it); our own bundle reader for
        a bundle libphdi read (QEMU reads no bundle); none for one only ours reads."""
        from bitwitness.images.qemu import QemuNbdStream

        if isinstance(stream, SparseExtentStream):
            return QemuNbdStream(path, "parallels")
        if isinstance(stream, LibyalStream):
            return ParallelsBundleStream(_entry(path))
        return None

    def self_checks(self, path: Path, stream: ImageStream) -> tuple[ContainerCheck, ...]:
        """The cluster table of every sparse extent (:func:`parallels_checks`)."""
        return tuple(c for p in stream.info.files if p.name != DESCRIPTOR
                     for c in parallels_checks(p))


FORMAT = ParallelsFormat()


def _extent_name(descriptor: Any) -> str:
    """An extent descriptor's file name. libphdi-python marks ``get_filename`` deprecated but
    offers nothing in its place (20260902), so its warning is kept out of the examiner's
    output."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return str(descriptor.filename)

