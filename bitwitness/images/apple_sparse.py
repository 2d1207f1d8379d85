"""Apple sparse images and sparse bundles read by our own code: the independent second reader
of what libmodi reads first (:mod:`bitwitness.images.modi`).

* ``.sparseimage``: a 4096-byte big-endian header: ``sprs``, version, sectors per band (offset
  8), the media size in sectors (offset 16), and from offset 64 the band numbers: the k-th
  32-bit entry is the media band (counting from 1; 0: unused) that the k-th stored band holds.
  Stored bands follow the header, one band size each; a media band no entry names reads as
  zeros.
* ``.sparsebundle``: a folder; ``Info.plist`` gives the band size and the media size, and
  ``bands/`` holds one file per written band, named by its index in hexadecimal (a band with
  no file reads as zeros, a short one is zero-filled). The folder's band names are listed by
  :func:`bitwitness.images.modi.band_files` for both readers; each band is then read here by
  us and there by libmodi.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

from bitwitness.errors import CorruptImageError
from bitwitness.images.filestream import FileImageStream
from bitwitness.images.raw import open_readonly, read_exact
from bitwitness.stream import ImageStream, StreamInfo

HEADER_SIZE = 4096
SECTOR = 512
_HEADER = struct.Struct(">4sIIII")
#: Bands the 4096-byte header can name (after its 64-byte fixed part).
_MAX_BANDS = (HEADER_SIZE - 64) // 4


class SparseImageStream(FileImageStream):
    """A ``.sparseimage`` file, assembled band by band through its header's band numbers."""

    def _load(self) -> int:
        path = self.path
        file_size = os.fstat(self._fd).st_size
        header = read_exact(self._fd, 0, min(HEADER_SIZE, file_size), path)
        if len(header) < HEADER_SIZE:
            raise CorruptImageError("sparse image header is cut short", path=self.path)
        magic, _version, band_sectors, _flags, sectors = _HEADER.unpack_from(header)
        if magic != b"sprs" or band_sectors == 0:
            raise CorruptImageError(f"implausible sparse image header (band of "
                                    f"{band_sectors} sectors)", path=self.path)
        self.band_size = band_sectors * SECTOR
        bands = -(-sectors * SECTOR // self.band_size)
        self._where: dict[int, int] = {}
        numbers = struct.unpack_from(f">{_MAX_BANDS}I", header, 64)
        for stored, number in enumerate(numbers):
            if number == 0:
                continue
            offset = HEADER_SIZE + stored * self.band_size
            if number > bands:
                raise CorruptImageError(
                    f"band table entry {stored} (file offset {64 + 4 * stored}) names band "
                    f"{number}, past the {bands} bands of the media", path=self.path)
            if number - 1 in self._where:
                raise CorruptImageError(
                    f"band {number} is stored twice (band table entry {stored}, file "
                    f"offset {64 + 4 * stored})", path=self.path)
            if offset >= file_size:
                raise CorruptImageError(f"stored band {stored} lies past the end of the "
                                        "file", path=self.path, offset=offset)
            self._where[number - 1] = offset
        self._file_size = file_size
        return sectors * SECTOR

    def _read_aligned(self, offset: int, length: int) -> bytes:
        parts = []
        while length > 0:
            band, inner = divmod(offset, self.band_size)
            n = min(length, self.band_size - inner)
            stored = self._where.get(band)
            if stored is None:
                parts.append(bytes(n))
            else:
                start = stored + inner
                have = max(0, min(n, self._file_size - start))
                data = read_exact(self._fd, start, have, self.path) if have else b""
                parts.append(data + bytes(n - have))  # a last stored band may be cut short
            offset += n
            length -= n
        return b"".join(parts)

    @property
    def info(self) -> StreamInfo:
        return StreamInfo(format="sparseimage", files=(self.path,), media_size=self.size,
                          sector_size=self.sector_size,
                          details={"reader": "bitwitness", "band_size": self.band_size,
                                   "stored_bands": len(self._where)})


class SparseBundleStream(ImageStream):
    """A ``.sparsebundle`` folder, band files read as they are needed."""

    def __init__(self, bundle: Path) -> None:
        from bitwitness.images.modi import band_files, bundle_sizes

        self.bundle = bundle
        self.band_size, size = bundle_sizes(bundle)
        self._bands = band_files(bundle, -(-size // self.band_size))
        super().__init__(size)

    def _read_aligned(self, offset: int, length: int) -> bytes:
        parts = []
        while length > 0:
            band, inner = divmod(offset, self.band_size)
            n = min(length, self.band_size - inner)
            path = self._bands.get(band)
            data = b""
            if path is not None:
                fd = open_readonly(path)
                try:
                    have = max(0, min(n, os.fstat(fd).st_size - inner))
                    data = read_exact(fd, inner, have, path) if have else b""
                finally:
                    os.close(fd)
            parts.append(data + bytes(n - len(data)))
            offset += n
            length -= n
        return b"".join(parts)

    @property
    def info(self) -> StreamInfo:
        files = (self.bundle / "Info.plist", *(self._bands[i] for i in sorted(self._bands)))
        return StreamInfo(format="sparsebundle", files=files, media_size=self.size,
                          sector_size=self.sector_size,
                          details={"reader": "bitwitness", "band_size": self.band_size})
