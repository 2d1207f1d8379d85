"""Apple UDIF (``.dmg``) read by our own code: the independent second reader, after libmodi, of
images whose chunks QEMU's dmg driver here does not decode (ADC, LZFSE, bzip2).

Layout (big-endian): the file ends with a 512-byte ``koly`` trailer giving the data fork (offset
at 24, length at 32), the XML property list (offset at 216, length at 224) and the media size in
sectors (at 492). The property list's ``resource-fork/blkx`` entries each hold a ``mish`` block
table: its first media sector (at 8), its data offset within the data fork (at 24), the chunk
count (at 200) and from 204 one 40-byte entry per chunk: type, comment, first sector (relative to
the table's), sector count, stored offset (relative to the data fork plus the table's data
offset), stored length. Chunk types: 1 raw, 0 and 2 zeros (2: "ignored", also zeros),
0x80000004 ADC, 0x80000005 zlib, 0x80000006 bzip2, 0x80000007 LZFSE, 0x80000008 LZMA (an xz
stream: macOS's ULMO images), 0x7FFFFFFE a comment, 0xFFFFFFFF the end.

Every decoder is bounded by the chunk's declared sector count: zlib, bzip2 and LZMA stop at it
(LZMA's dictionary also bounded, by :data:`LZMA_MEMLIMIT`), ADC is
decoded here, and an LZFSE stream's blocks are walked (their declared raw sizes summed, the
stream bounded to the stored bytes) before the reference implementation (the ``lzfse``
package) decodes it.
"""

from __future__ import annotations

import bisect
import bz2
import lzma
import os
import plistlib
import struct
import threading
import zlib
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from xml.parsers.expat import ExpatError

from bitwitness.errors import CorruptImageError, UnsupportedFormatError
from bitwitness.images.filestream import FileImageStream
from bitwitness.images.raw import read_exact
from bitwitness.stream import StreamInfo

SECTOR = 512
KOLY_SIZE = 512
RAW, ZEROS, IGNORED, ADC, ZLIB, BZIP2, LZFSE, LZMA = 1, 0, 2, 0x80000004, 0x80000005, \
    0x80000006, 0x80000007, 0x80000008
#: Memory an LZMA chunk's decoder may take: Apple writes xz streams of the default preset
#: (an 8 MiB dictionary, ~9 MiB to decode); a header asking for more is refused, not obeyed.
LZMA_MEMLIMIT = 64 << 20
COMMENT, END = 0x7FFFFFFE, 0xFFFFFFFF
#: Chunk types QEMU's dmg driver decodes on every build (bzip2 and LZFSE are optional modules).
QEMU_READS = frozenset({RAW, ZEROS, IGNORED, ZLIB, COMMENT, END})
#: Largest chunk decoded (sectors); Apple's tools write 2048.
MAX_CHUNK_SECTORS = 1 << 16
#: Largest property list read.
MAX_XML = 64 << 20
_MISH_HEADER = 204
_CHUNK = struct.Struct(">IIQQQQ")
_CACHE = 8
#: What parsing a hostile property list, and looking into what it gave, can raise: a bad
#: document (plistlib, expat), an encoding its XML declaration names that Python lacks
#: (LookupError), nesting deeper than the interpreter's stack (RecursionError), a missing key
#: or a value of another type than asked for.
PLIST_ERRORS = (plistlib.InvalidFileException, ExpatError, LookupError, RecursionError,
                KeyError, TypeError, ValueError)


class SectorCountError(CorruptImageError):
    """The trailer's media size (SectorCount) is not what the block tables describe. A reader
    going by the tables alone (libmodi) gives other media than the image declares, silently:
    the image is refused whichever reader would read it."""


@dataclass(frozen=True)
class Chunk:
    start: int  #: first media sector
    sectors: int
    kind: int
    offset: int  #: file offset of the stored bytes
    length: int


def read_chunks(fd: int, path: Path, file_size: int) -> tuple[int, list[Chunk]]:
    """The media size in sectors and every chunk, in media order, as the trailer and the block
    tables declare them (each checked against the file)."""
    if file_size < KOLY_SIZE:
        raise CorruptImageError("too short for a UDIF trailer", path=path)
    koly = read_exact(fd, file_size - KOLY_SIZE, KOLY_SIZE, path)
    if not koly.startswith(b"koly"):
        raise UnsupportedFormatError(f"{path}: no UDIF 'koly' trailer")
    fork_offset, fork_length = struct.unpack_from(">QQ", koly, 24)
    xml_offset, xml_length = struct.unpack_from(">QQ", koly, 216)
    sectors, = struct.unpack_from(">Q", koly, 492)
    if xml_length > MAX_XML or xml_offset + xml_length > file_size:
        raise CorruptImageError(f"the property list ({xml_length} bytes at {xml_offset}) lies "
                                "outside the file", path=path, offset=file_size - KOLY_SIZE)
    if fork_offset + fork_length > file_size:
        raise CorruptImageError("the data fork runs past the end of the file", path=path)
    chunks: list[Chunk] = []
    tables = _block_tables(read_exact(fd, xml_offset, xml_length, path), path, xml_offset)
    for number, table in enumerate(tables):
        chunks += _table(table, number, fork_offset, fork_length, path)
    chunks.sort(key=lambda c: c.start)
    position = 0
    for chunk in chunks:
        if chunk.start != position:
            raise CorruptImageError(f"the block tables leave sectors {position}-"
                                    f"{chunk.start - 1} undescribed or overlapping", path=path)
        position += chunk.sectors
    if position != sectors:
        raise SectorCountError(f"the block tables describe {position} sectors, the trailer "
                               f"declares {sectors} (SectorCount, file offset "
                               f"{file_size - KOLY_SIZE + 492}): the media the tables hold is "
                               "not the media the image declares", path=path)
    return sectors, chunks


def _block_tables(document: bytes, path: Path, offset: int) -> list[bytes]:
    """The ``mish`` tables of the property list (``resource-fork/blkx/*/Data``), each checked
    to be data: ``bytes()`` of an ``<integer>`` there would allocate that many bytes."""
    try:
        plist = plistlib.loads(document)
        tables = [entry["Data"] for entry in plist["resource-fork"]["blkx"]]
    except PLIST_ERRORS as exc:
        raise CorruptImageError(f"the property list holds no block tables "
                                f"({type(exc).__name__}: {str(exc)[:200]})", path=path,
                                offset=offset) from exc
    for number, table in enumerate(tables):
        if not isinstance(table, bytes):
            raise CorruptImageError(f"block table {number} of the property list is "
                                    f"{type(table).__name__}, not data", path=path,
                                    offset=offset)
    return tables


def _table(table: bytes, number: int, fork_offset: int, fork_length: int,
           path: Path) -> list[Chunk]:
    if len(table) < _MISH_HEADER or not table.startswith(b"mish"):
        raise CorruptImageError(f"block table {number} is no 'mish' table", path=path)
    first, = struct.unpack_from(">Q", table, 8)
    data_offset, = struct.unpack_from(">Q", table, 24)
    count, = struct.unpack_from(">I", table, 200)
    if _MISH_HEADER + count * _CHUNK.size > len(table):
        raise CorruptImageError(f"block table {number} declares {count} chunks it does not "
                                "hold", path=path)
    out = []
    for i in range(count):
        kind, _, start, sectors, stored, length = _CHUNK.unpack_from(
            table, _MISH_HEADER + i * _CHUNK.size)
        if kind in (COMMENT, END) or sectors == 0:
            continue
        if kind not in (RAW, ZEROS, IGNORED, ADC, ZLIB, BZIP2, LZFSE, LZMA):
            raise UnsupportedFormatError(f"{path}: block table {number}, chunk {i}: chunk type "
                                         f"{kind:#010x}, which BitWitness does not decode")
        if sectors > MAX_CHUNK_SECTORS:
            raise CorruptImageError(f"block table {number}, chunk {i} spans {sectors} sectors",
                                    path=path)
        where = data_offset + stored
        if kind not in (ZEROS, IGNORED) and where + length > fork_length:
            raise CorruptImageError(f"block table {number}, chunk {i} ({length} bytes at data "
                                    f"fork offset {where}) lies outside the data fork",
                                    path=path)
        out.append(Chunk(first + start, sectors, kind, fork_offset + where, length))
    return out


def adc_decompress(data: bytes, size: int) -> bytes:
    """Apple Data Compression: literal runs (top bit: low 7 bits + 1 bytes follow), two-byte
    copies (bits 2-5 + 3 bytes from (bits 0-1 << 8 | next byte) + 1 back) and three-byte copies
    (bit 6: low 6 bits + 4 bytes from (next two bytes) + 1 back); at most ``size`` bytes out."""
    out = bytearray()
    i, n = 0, len(data)
    while i < n and len(out) < size:
        b = data[i]
        if b & 0x80:
            count = (b & 0x7F) + 1
            if i + 1 + count > n:
                raise ValueError("ADC literal run past the end of the chunk")
            out += data[i + 1:i + 1 + count]
            i += 1 + count
            continue
        if b & 0x40:
            if i + 3 > n:
                raise ValueError("ADC copy past the end of the chunk")
            count, back = (b & 0x3F) + 4, (data[i + 1] << 8 | data[i + 2]) + 1
            i += 3
        else:
            if i + 2 > n:
                raise ValueError("ADC copy past the end of the chunk")
            count, back = ((b & 0x3C) >> 2) + 3, ((b & 0x03) << 8 | data[i + 1]) + 1
            i += 2
        if back > len(out):
            raise ValueError("ADC copy from before the start of the chunk")
        for _ in range(count):
            out.append(out[-back])
    return bytes(out[:size])


def lzfse_raw_size(data: bytes) -> int:
    """The bytes an LZFSE stream declares it decodes to, summed over its blocks, walking their
    headers (``bvx-`` stored, ``bvx2`` LZFSE, ``bvxn`` LZVN, ``bvx$`` the end; the older
    ``bvx1`` block, which the reference encoder no longer writes, is not walked here)."""
    pos, total = 0, 0
    while True:
        magic = data[pos:pos + 4]
        if magic == b"bvx$":
            return total
        if len(data) < pos + 8:
            raise ValueError("LZFSE stream cut short")
        raw, = struct.unpack_from("<I", data, pos + 4)
        total += raw
        if magic == b"bvx-":
            size = 8 + raw
        elif magic == b"bvxn":
            size = 12 + struct.unpack_from("<I", data, pos + 8)[0]
        elif magic == b"bvx2":
            if len(data) < pos + 32:
                raise ValueError("LZFSE stream cut short")
            f0, f1, f2 = struct.unpack_from("<QQQ", data, pos + 8)
            literal_payload = f0 >> 20 & 0xFFFFF
            lmd_payload = f1 >> 40 & 0xFFFFF
            size = (f2 & 0xFFFFFFFF) + literal_payload + lmd_payload
        else:
            raise ValueError(f"unknown LZFSE block {magic!r}")
        if size <= 0:
            raise ValueError("empty LZFSE block")
        pos += size


class UdifStream(FileImageStream):
    """A UDIF image read chunk by chunk (decoded chunks cached)."""

    alignment = SECTOR

    def __init__(self, path: Path) -> None:
        self._chunk_cache: OrderedDict[int, bytes] = OrderedDict()
        self._lock = threading.Lock()
        super().__init__(path)

    def _load(self) -> int:
        sectors, self._chunks = read_chunks(self._fd, self.path, os.fstat(self._fd).st_size)
        self._starts = [c.start for c in self._chunks]
        return sectors * SECTOR

    def _decoded(self, index: int) -> bytes:
        with self._lock:
            cached = self._chunk_cache.get(index)
            if cached is not None:
                self._chunk_cache.move_to_end(index)
                return cached
        chunk = self._chunks[index]
        size = chunk.sectors * SECTOR
        if chunk.kind in (ZEROS, IGNORED):
            return bytes(size)
        stored = read_exact(self._fd, chunk.offset, chunk.length, self.path)
        try:
            data = self._decode(chunk.kind, stored, size)
        except (zlib.error, lzma.LZMAError, OSError, ValueError, EOFError,
                struct.error) as exc:
            raise CorruptImageError(f"chunk at file offset {chunk.offset} does not decode "
                                    f"({exc})", path=self.path,
                                    media_offset=chunk.start * SECTOR) from exc
        if len(data) != size:
            raise CorruptImageError(f"chunk at file offset {chunk.offset} decodes to "
                                    f"{len(data)} bytes, not {size}", path=self.path,
                                    media_offset=chunk.start * SECTOR)
        with self._lock:
            self._chunk_cache[index] = data
            while len(self._chunk_cache) > _CACHE:
                self._chunk_cache.popitem(last=False)
        return data

    @staticmethod
    def _decode(kind: int, stored: bytes, size: int) -> bytes:
        if kind == RAW:
            return stored[:size]
        if kind == ZLIB:
            return zlib.decompressobj().decompress(stored, size)
        if kind == BZIP2:
            return bz2.BZ2Decompressor().decompress(stored, size)
        if kind == ADC:
            return adc_decompress(stored, size)
        if kind == LZMA:  # an xz stream (ULMO images; FORMAT_AUTO also takes a .lzma one)
            return lzma.LZMADecompressor(lzma.FORMAT_AUTO, memlimit=LZMA_MEMLIMIT).decompress(
                stored, size)
        declared = lzfse_raw_size(stored)
        if declared != size:
            raise ValueError(f"the LZFSE stream declares {declared} bytes")
        try:
            import lzfse
        except ImportError as exc:
            raise UnsupportedFormatError("LZFSE chunks need the Python package lzfse "
                                         "(pip install lzfse)") from exc
        try:
            return bytes(lzfse.decompress(stored))
        except lzfse.error as exc:
            raise ValueError(f"LZFSE: {exc}") from exc

    def _read_aligned(self, offset: int, length: int) -> bytes:
        parts = []
        while length > 0:
            sector = offset // SECTOR
            index = bisect.bisect_right(self._starts, sector) - 1
            chunk = self._chunks[index]
            inner = offset - chunk.start * SECTOR
            n = min(length, chunk.sectors * SECTOR - inner)
            parts.append(self._decoded(index)[inner:inner + n])
            offset += n
            length -= n
        return b"".join(parts)

    def kinds(self) -> set[int]:
        """The chunk types the image uses."""
        return {c.kind for c in self._chunks}

    def first_sector(self, kind: int) -> int | None:
        """The media sector where the image's first chunk of ``kind`` starts (None: none)."""
        return min((c.start for c in self._chunks if c.kind == kind), default=None)

    @property
    def info(self) -> StreamInfo:
        return StreamInfo(format="dmg", files=(self.path,), media_size=self.size,
                          sector_size=self.sector_size,
                          details={"reader": "bitwitness", "chunks": len(self._chunks)})
