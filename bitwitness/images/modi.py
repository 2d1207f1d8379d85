"""Apple disk images read through libmodi (pymodi): UDIF ``.dmg`` (raw, zlib, bzip2, LZFSE and
ADC blocks), ``.sparseimage`` and ``.sparsebundle`` folders.

A sparse bundle is a folder (``Info.plist`` and ``bands/``); it is opened from the folder or from
its ``Info.plist``. Its band files are named by their index in hexadecimal (``0`` ... ``a`` ...
``10``; some writers pad to eight digits); a band never written has no file and reads as zeros.
The bands are opened by us and handed to libmodi as file objects, an absent band as an empty one:
libmodi's own band lookup expects padded names only and reads unpadded bundles as all zeros.
Single-file images are handed to libmodi opened read-only by us too.
"""

from __future__ import annotations

import io
import os
import plistlib
import struct
import threading
import zlib
from collections import OrderedDict
from pathlib import Path
from typing import Any

from bitwitness.errors import (
    BitWitnessError,
    CorruptImageError,
    NoSecondReader,
    UnsupportedFormatError,
)
from bitwitness.images import signatures
from bitwitness.images.checks import ContainerCheck
from bitwitness.images.libyal import (
    LibyalStream,
    binding,
    first_line,
    open_handle,
)
from bitwitness.images.raw import open_readonly, read_at
from bitwitness.images.udif import PLIST_ERRORS
from bitwitness.stream import ImageStream

_PLIST_LIMIT = 64 * 1024
#: Band files kept open at once (the rest are opened again when read).
_OPEN_BANDS = 32
#: More bands than this (a million files) is a hostile or broken Info.plist.
_MAX_BANDS = 1 << 20
_LABELS = {"dmg": "Apple disk image (UDIF)", "sparseimage": "Apple sparse image",
           "sparsebundle": "Apple sparse bundle"}


def _bundle_of(path: Path) -> Path | None:
    if path.is_dir():
        return path
    if path.name == "Info.plist" and signatures.identify_directory(path.parent) is not None:
        return path.parent
    return None


def bundle_sizes(bundle: Path) -> tuple[int, int]:
    """Band size and media size, as ``Info.plist`` declares them."""
    plist = bundle / "Info.plist"
    if plist.stat().st_size > _PLIST_LIMIT:
        raise CorruptImageError("Info.plist is too large for a sparse bundle", path=plist)
    try:
        values = plistlib.loads(read_at(plist, 0, _PLIST_LIMIT))
        band, size = int(values["band-size"]), int(values["size"])
    except PLIST_ERRORS as exc:
        raise CorruptImageError(f"Info.plist declares no band size and media size "
                                f"({type(exc).__name__}: {str(exc)[:200]})", path=plist) from exc
    if band <= 0 or size < 0 or -(-size // band) > _MAX_BANDS:
        raise CorruptImageError(f"implausible sparse bundle: band size {band}, size {size}",
                                path=plist)
    return band, size


def band_files(bundle: Path, count: int) -> dict[int, Path]:
    """The band files of ``bundle`` by band index (hexadecimal names, padded or not); a band
    beyond the ``count`` the media needs is ignored."""
    folder = bundle / "bands"
    present = {}
    if folder.is_dir():
        for entry in folder.iterdir():
            try:
                index = int(entry.name, 16)
            except ValueError:
                continue
            if entry.is_file() and entry.name.isalnum() and index < count:
                present[index] = entry
    return present


def _open_bands(bundle: Path, owned: list[Any]) -> tuple[list[Any], list[Path]]:
    """One file object per band, in band order; an empty one for a band never written."""
    band_size, size = bundle_sizes(bundle)
    present = band_files(bundle, -(-size // band_size))
    bands: list[Any] = []
    paths: list[Path] = []
    absent = io.BytesIO(b"")  # one empty object for every band never written
    owned.append(absent)
    descriptors = _DescriptorCache()
    for index in range(-(-size // band_size)):
        path = present.get(index)
        if path is None:
            bands.append(absent)
            continue
        band = _Band(path, descriptors)
        if band.get_size() > band_size:
            raise CorruptImageError(f"band {path.name} is larger than the band size "
                                    f"{band_size}", path=path)
        owned.append(band)
        bands.append(band)
        paths.append(path)
    return bands, paths


class _DescriptorCache:
    """Read-only descriptors of the band files, at most :data:`_OPEN_BANDS` open at once: a
    bundle of a large disk has thousands of bands, more than a process may keep open."""

    def __init__(self) -> None:
        self._open: OrderedDict[Path, int] = OrderedDict()
        self._lock = threading.Lock()

    def pread(self, path: Path, length: int, offset: int) -> bytes:
        with self._lock:
            fd = self._open.get(path)
            if fd is None:
                fd = open_readonly(path)
                self._open[path] = fd
                while len(self._open) > _OPEN_BANDS:
                    os.close(self._open.popitem(last=False)[1])
            else:
                self._open.move_to_end(path)
            return os.pread(fd, length, offset)

    def close(self, path: Path) -> None:
        with self._lock:
            fd = self._open.pop(path, None)
            if fd is not None:
                os.close(fd)


class _Band:
    """A band file as the file object libmodi reads through, opened only while it is read."""

    def __init__(self, path: Path, descriptors: _DescriptorCache) -> None:
        self.path = path
        self._descriptors = descriptors
        self._size = path.stat().st_size
        self._pos = 0

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = max(0, self._size - self._pos)
        data = self._descriptors.pread(self.path, size, self._pos)
        self._pos += len(data)
        return data

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._pos, os.SEEK_END: self._size}[whence]
        self._pos = base + offset
        return self._pos

    def tell(self) -> int:
        return self._pos

    def get_size(self) -> int:
        return self._size

    def close(self) -> None:
        self._descriptors.close(self.path)


def _kind(path: Path) -> str:
    bundle = _bundle_of(path)
    if bundle is not None:
        return "sparsebundle"
    head = read_at(path, 0, 4)
    return "sparseimage" if head == b"sprs" else "dmg"


def open_modi(path: Path) -> ImageStream:
    kind = _kind(path)
    if kind == "dmg":
        ours = _lzma_udif(path)
        if ours is not None:
            return ours
    return _open_libmodi(path, kind)


def _lzma_udif(path: Path) -> ImageStream | None:
    """Our UDIF reader, for an image holding LZMA chunks (macOS's ULMO images): libmodi's
    builds on PyPI decode none ("missing support for LZMA compression") and would call valid
    evidence corrupt. ``None`` for every other image, and for one our reader refuses (libmodi
    then says what it makes of it), except one whose trailer declares another media size than
    its block tables describe (:class:`~bitwitness.images.udif.SectorCountError`): libmodi
    reads what the tables hold without a word, and ``convert`` would copy less (or more) than
    the image declares, so the image is refused as our reader refuses it."""
    from bitwitness.images.udif import LZMA, SectorCountError, UdifStream

    try:
        ours = UdifStream(path)
    except SectorCountError:
        raise
    except BitWitnessError:
        return None
    if LZMA in ours.kinds():
        return ours
    ours.close()
    return None


def _open_libmodi(path: Path, kind: str) -> ImageStream:
    pymodi = binding("pymodi", "libmodi-python", f"{path}: {_LABELS[kind]}")
    reader = f"libmodi {pymodi.get_version()}"
    bundle = _bundle_of(path)
    owned: list[Any] = []
    if bundle is not None:
        handle, fobj = open_handle(pymodi.handle, bundle / "Info.plist", _LABELS[kind])
        owned.append(fobj)
        try:
            bands, band_files = _open_bands(bundle, owned)
            handle.open_band_data_files_as_file_objects(bands)
        except (OSError, ValueError, TypeError) as exc:
            handle.close()
            for item in owned:
                item.close()
            raise CorruptImageError(f"the sparse bundle cannot be read: {first_line(exc)}",
                                    path=bundle) from exc
        files = [bundle / "Info.plist", *band_files]
    else:
        handle, fobj = open_handle(pymodi.handle, path, _LABELS[kind])
        owned.append(fobj)
        files = [path]
    try:
        return LibyalStream(handle, fmt=kind, files=files, reader=reader, owned=owned)
    except BaseException:
        handle.close()
        for item in owned:
            item.close()
        raise


#: UDIF trailer fields read for the self-check: data fork offset and length (at 24), checksum
#: type and size in bits (at 80) and the first word of the checksum (at 88).
_KOLY_FORK = struct.Struct(">QQ")
_KOLY_CHECKSUM = struct.Struct(">III")
_CRC32 = 2
_CHUNK = 4 << 20


def udif_checks(path: Path) -> tuple[ContainerCheck, ...]:
    """The UDIF data fork's CRC-32, as the ``koly`` trailer records it (type 2), recomputed."""
    koly = read_at(path, -512, 512)
    if len(koly) != 512 or not koly.startswith(b"koly"):
        return ()
    offset, length = _KOLY_FORK.unpack_from(koly, 24)
    kind, bits, recorded = _KOLY_CHECKSUM.unpack_from(koly, 80)
    what = "UDIF data fork CRC-32"
    if kind != _CRC32 or bits != 32:
        return ()  # no checksum recorded (0), or one of a kind not computed here
    fd = open_readonly(path)
    try:
        if offset + length > os.fstat(fd).st_size:
            return (ContainerCheck(what, False, f"the data fork ({length} bytes at {offset}) "
                                   "runs past the end of the file"),)
        crc, done = 0, 0
        while done < length:
            data = os.pread(fd, min(_CHUNK, length - done), offset + done)
            if not data:
                break
            crc = zlib.crc32(data, crc)
            done += len(data)
    finally:
        os.close(fd)
    ok = crc == recorded
    return (ContainerCheck(what, ok, f"recorded {recorded:08x}, computed {crc:08x}"),)


class ModiFormat:
    """macOS disk images: UDIF, sparse image, sparse bundle."""

    name = "dmg"
    containers = ("dmg", "sparseimage", "sparsebundle")
    qemu_driver = "dmg"

    def probe(self, path: Path, head: bytes) -> bool:
        return head.startswith(b"sprs")

    def claims_name(self, path: Path) -> bool:
        return False

    def files(self, path: Path) -> list[Path]:
        with open_modi(path) as stream:
            return list(stream.info.files)

    def open(self, path: Path) -> ImageStream:
        return open_modi(path)

    def second_reader(self, path: Path, stream: ImageStream) -> ImageStream | None:
        """QEMU's dmg driver for UDIF images whose chunks it decodes (raw, zeros, zlib); our own
        UDIF reader for the others (ADC, bzip2, LZFSE) and for sparse images and bundles, which
        QEMU does not read; libmodi for the LZMA images our reader reads first, when its build
        decodes LZMA (none when neither does: QEMU decodes no LZMA either)."""
        from bitwitness.images.apple_sparse import SparseBundleStream, SparseImageStream
        from bitwitness.images.qemu import QemuNbdStream
        from bitwitness.images.udif import QEMU_READS, UdifStream

        kind = stream.info.format
        if isinstance(stream, UdifStream):  # LZMA chunks: libmodi, where it decodes them
            return _libmodi_reading_lzma(path, stream)
        if kind == "sparseimage":
            return SparseImageStream(path)
        if kind == "sparsebundle":
            bundle = _bundle_of(path)
            return None if bundle is None else SparseBundleStream(bundle)
        try:
            ours = UdifStream(path)
        except UnsupportedFormatError:
            return None  # a chunk codec neither QEMU nor our reader decodes (LZMA, ...)
        if ours.kinds() <= QEMU_READS:
            ours.close()
            return QemuNbdStream(path, "dmg")
        return ours

    def self_checks(self, path: Path, stream: ImageStream) -> tuple[ContainerCheck, ...]:
        """A UDIF image's data-fork checksum; sparse images and bundles record none."""
        return udif_checks(path) if stream.info.format == "dmg" else ()


def _libmodi_reading_lzma(path: Path, ours: ImageStream) -> ImageStream | None:
    """libmodi on ``path`` if it decodes the image's first LZMA chunk; otherwise there is no
    second reader, and the note says why."""
    from bitwitness.images.udif import LZMA, UdifStream

    first = ours.first_sector(LZMA) if isinstance(ours, UdifStream) else None
    if first is None:
        return None
    obstacle = ("no second reader for a UDIF image of LZMA chunks: QEMU decodes none, and "
                "neither does this build of libmodi")
    try:
        theirs = _open_libmodi(path, "dmg")
    except BitWitnessError as exc:
        raise NoSecondReader(obstacle) from exc
    try:
        theirs.pread(first * 512, 512)
    except BitWitnessError as exc:
        theirs.close()
        raise NoSecondReader(obstacle) from exc
    return theirs


FORMAT = ModiFormat()
