"""Parallels disk images: bundles through libphdi (pyphdi), lone sparse extents by our reader.

A Parallels disk is a ``.hdd`` folder holding ``DiskDescriptor.xml`` and one or more extent files.
The descriptor names its extents; each is opened by us, inside the folder only, and handed to
libphdi as a file object. libphdi opens descriptors only, so a lone sparse extent file (``.hds``,
signature ``WithoutFreeSpace`` or ``WithouFreSpacExt``, as ``qemu-img convert -O parallels``
writes it) is read by :class:`SparseExtentStream`: a 64-byte little-endian header, then one 32-bit
entry per cluster giving where the cluster's data lies (0: never written, reads as zeros). In the
``WithouFreSpacExt`` variant an entry counts clusters, in the older one sectors.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import Any

from bitwitness.errors import CorruptImageError, InputError
from bitwitness.images.libyal import (
    LibyalStream,
    binding,
    contained,
    first_line,
    open_file_object,
    open_handle,
)
from bitwitness.images.raw import open_readonly, read_exact
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


class SparseExtentStream(ImageStream):
    """A lone Parallels sparse extent, read by our own code."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = open_readonly(path)
        try:
            self._load()
        except BaseException:
            os.close(self._fd)
            raise
        super().__init__(self._media)

    def _load(self) -> None:
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
        self._media = sectors * SECTOR
        unit = self._cluster if magic == _MAGIC_CLUSTERS else SECTOR
        table = read_exact(self._fd, _HEADER.size, 4 * entries, self.path)
        self._offsets = [v * unit for v in struct.unpack(f"<{entries}I", table)]
        for index, offset in enumerate(self._offsets):
            if offset and offset + self._cluster > file_size:
                raise CorruptImageError(f"cluster {index} lies past the end of the file "
                                        f"(file offset {offset})", path=self.path)
        self.alignment = self._cluster

    def _read_aligned(self, offset: int, length: int) -> bytes:
        parts = []
        end = offset + length
        while offset < end:
            index, within = divmod(offset, self._cluster)
            n = min(self._cluster - within, end - offset)
            stored = self._offsets[index]
            parts.append(read_exact(self._fd, stored + within, n, self.path) if stored
                         else bytes(n))
            offset += n
        return b"".join(parts)

    def close(self) -> None:
        if not self.closed:
            os.close(self._fd)
        super().close()

    @property
    def info(self) -> StreamInfo:
        allocated = sum(1 for o in self._offsets if o)
        return StreamInfo(format="parallels", files=(self.path,), media_size=self.size,
                          sector_size=self.sector_size,
                          details={"reader": "bitwitness", "cluster_size": self._cluster,
                                   "allocated_clusters": allocated})


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
            extent = contained(entry.parent, str(descriptor.filename))
            if not extent.is_file():
                raise InputError(f"{entry}: Parallels extent {descriptor.filename!r} is "
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
        return open_phdi(path)

    def second_reader(self, path: Path, stream: ImageStream) -> ImageStream | None:
        """QEMU's parallels driver for a lone extent (ours read it); bundles have none."""
        from bitwitness.images.qemu import QemuNbdStream

        return QemuNbdStream(path, "parallels") if isinstance(stream, SparseExtentStream) else None


FORMAT = ParallelsFormat()
