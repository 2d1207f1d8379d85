"""Android sparse images (``system.img``, ``userdata.img``, ``super.img`` of factory images and
fastboot, many mobile-forensic exports), read by our own code; ``simg2img`` is the second reader.

Why a reader and not raw: the file is not the media. It is a 28-byte header, then chunks, each a
12-byte chunk header and its payload, that describe the media block by block:

* the header (little-endian): magic ``0xED26FF3A``, major and minor version (1.0), the sizes of
  the file header and of a chunk header (28 and 12 in every writer so far; larger ones are
  allowed by the format and their extra bytes skipped), the block size (a multiple of 4, 4096
  in practice), the media's size in blocks, the number of chunks, and a CRC-32 of the whole
  media (0: none recorded);
* a chunk header: its type, a reserved 16-bit field, its length in media blocks and its length
  in the file (header included). ``RAW`` (0xCAC1) holds its blocks' bytes; ``FILL`` (0xCAC2) a
  4-byte pattern repeated over its blocks; ``DONT_CARE`` (0xCAC3) nothing: the writer did not
  keep those blocks (read as zeros, as ``simg2img`` and fastboot do, and said in ``info``: they
  are not evidence); ``CRC32`` (0xCAC4) the CRC-32 of all the media before it, covers no block.

The chunks are walked once when the image is opened: every length is checked against the
format's rules and the file before it is used, and the media each chunk covers is indexed in
four arrays (first block, file offset or pattern, kind, piece: 15 bytes a chunk, about 32
while the index is built), so that a read finds its chunk by bisection whatever the number
of chunks. What does not add up fails
closed, in one line naming the chunk and its file offset: a chunk whose length in the file
is not what its type and block count make, one that runs past the file, chunks that cover
more or fewer blocks than the header declares, more chunks declared than the file has room
for (or than :data:`MAX_CHUNKS`), a block size that is not a multiple of 4.

``verify`` checks what the image records about its media (:func:`sparse_checks`): each CRC32
chunk against the CRC-32 of the media before it, and the header's image checksum when it is
not zero. The CRC-32 over a FILL or DONT_CARE run is computed from the pattern by polynomial
arithmetic (:func:`_crc_repeat`), so a run of terabytes of zeros costs microseconds.
"""

from __future__ import annotations

import heapq
import os
import re
import shutil
import struct
import subprocess
import zlib
from array import array
from bisect import bisect_right
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from bitwitness.errors import (
    CorruptImageError,
    InputError,
    MissingSegmentError,
    UnsupportedFormatError,
)
from bitwitness.evidence_io import confine_part, open_readonly, read_head
from bitwitness.images.checks import ContainerCheck, Findings
from bitwitness.images.raw import read_exact
from bitwitness.images.restored import RestoredStream
from bitwitness.stream import ImageStream, StreamInfo

MAGIC = 0xED26FF3A
MAGIC_BYTES = struct.pack("<I", MAGIC)
#: magic, major, minor, file header size, chunk header size, block size, total blocks,
#: total chunks, image checksum
HEADER = struct.Struct("<IHHHHIIII")
#: type, reserved, blocks in the media, bytes in the file (header included)
CHUNK = struct.Struct("<HHII")
RAW = 0xCAC1
FILL = 0xCAC2
DONT_CARE = 0xCAC3
CRC32 = 0xCAC4
_NAMES = {RAW: "RAW", FILL: "FILL", DONT_CARE: "DONT_CARE", CRC32: "CRC32"}
#: Kinds as the index stores them (one byte a chunk).
_K_RAW, _K_FILL, _K_ZERO = 0, 1, 2

#: Chunks indexed at most (in one image, or in all the pieces of a set): about 32 bytes each
#: while the index is built, 256 MiB for this many. A real image has far fewer (a chunk per
#: run of written, filled or skipped blocks: tens of thousands in a phone's userdata); a
#: header declaring more is refused in one line rather than indexed.
MAX_CHUNKS = 1 << 23
#: Chunk headers are read from the file this many bytes at a time.
_WINDOW = 1 << 20
#: The unsigned 32-bit array type (4 bytes) for the index's first blocks.
_U32 = "I" if array("I").itemsize == 4 else "L"


@dataclass(frozen=True)
class SparseHeader:
    """The file header, as read (not yet trusted)."""

    major: int
    minor: int
    file_header_size: int
    chunk_header_size: int
    block_size: int
    total_blocks: int
    total_chunks: int
    image_checksum: int

    @property
    def media_size(self) -> int:
        return self.block_size * self.total_blocks


class Chunk(NamedTuple):
    """One chunk as the walk meets it: its ordinal, type, media blocks, where its header lies,
    and its 4-byte value (FILL pattern as a little-endian number, CRC32 value; else 0)."""

    number: int  #: its place among the chunks, from 0
    kind: int
    blocks: int
    at: int
    first_block: int
    value: int


def read_header(fd: int, path: Path, file_size: int) -> SparseHeader:
    """The file header, checked: what this reader reads, or one line saying why not."""
    if file_size < HEADER.size:
        raise CorruptImageError(f"Android sparse header: the file of {file_size} bytes is "
                                f"shorter than the {HEADER.size}-byte header", path=path)
    (magic, major, minor, file_hdr, chunk_hdr, block, blocks, chunks,
     checksum) = HEADER.unpack(read_exact(fd, 0, HEADER.size, path))
    if magic != MAGIC:
        raise CorruptImageError("no Android sparse magic 0xED26FF3A at offset 0", path=path)
    if major != 1:
        raise UnsupportedFormatError(
            f"{path}: Android sparse image version {major}.{minor} is not read by BitWitness "
            "(1.x is)")
    header = SparseHeader(major, minor, file_hdr, chunk_hdr, block, blocks, chunks, checksum)
    _check_header(header, path, file_size)
    return header


def _check_header(header: SparseHeader, path: Path, file_size: int) -> None:
    """The header's sizes against the format's rules and the file."""
    file_hdr, chunk_hdr = header.file_header_size, header.chunk_header_size
    block, chunks = header.block_size, header.total_chunks

    def fail(what: str, at: int) -> CorruptImageError:
        return CorruptImageError(f"Android sparse header: {what}", path=path, offset=at)

    if file_hdr < HEADER.size:
        raise fail(f"file header size {file_hdr} is smaller than the format's {HEADER.size}", 8)
    if chunk_hdr < CHUNK.size:
        raise fail(f"chunk header size {chunk_hdr} is smaller than the format's {CHUNK.size}",
                   10)
    if block == 0 or block % 4:
        raise fail(f"block size {block} is not a multiple of 4 (4096 expected)", 12)
    if file_hdr > file_size:
        raise fail(f"file header size {file_hdr} runs past the end of the {file_size}-byte "
                   "file", 8)
    room = (file_size - file_hdr) // chunk_hdr
    if chunks > room:
        raise fail(f"declares {chunks} chunks; the {file_size}-byte file has room for at most "
                   f"{room} chunk headers of {chunk_hdr} bytes", 20)
    if chunks > MAX_CHUNKS:
        raise UnsupportedFormatError(
            f"{path}: the Android sparse image declares {chunks} chunks, more than the "
            f"{MAX_CHUNKS} BitWitness indexes (convert it to raw with simg2img)")


def walk(fd: int, path: Path, header: SparseHeader, file_size: int
         ) -> Iterator[tuple[Chunk, int]]:
    """Every chunk in file order with the file offset of its payload, each checked against
    the format's rules and the file before it is given; the blocks they cover checked against
    the header's total at the end. Chunk headers are read a window at a time, so a file of
    millions of small chunks costs one read per :data:`_WINDOW` bytes, not one per chunk."""
    hdr = header.chunk_header_size
    at, first_block = header.file_header_size, 0
    window, window_at = b"", 0
    for index in range(header.total_chunks):
        if at + hdr > file_size:
            raise CorruptImageError(
                f"Android sparse chunk {index} of {header.total_chunks}: its header runs past "
                f"the end of the {file_size}-byte file", path=path, offset=at)
        rel = at - window_at
        if rel < 0 or rel + hdr + 4 > len(window):
            window = os.pread(fd, _WINDOW, at)
            window_at, rel = at, 0
        kind, _reserved, blocks, total = CHUNK.unpack_from(window, rel)
        covered = _check_chunk(header, index, at, (kind, blocks, total),
                               first_block=first_block, file_size=file_size, path=path)
        value = 0
        if kind in (FILL, CRC32):
            (value,) = struct.unpack_from("<I", window, rel + hdr)
        yield Chunk(index, kind, covered, at, first_block, value), at + hdr
        first_block += covered
        at += total
    if first_block != header.total_blocks:
        raise CorruptImageError(
            f"Android sparse chunks cover {first_block} blocks; the header declares "
            f"{header.total_blocks}", path=path, offset=16)


def _check_chunk(header: SparseHeader, index: int, at: int, fields: tuple[int, int, int], *,
                 first_block: int, file_size: int, path: Path) -> int:
    """One chunk header (``fields``: type, blocks, bytes in the file) against the format's
    rules, the file and the header's total of blocks; returns the media blocks it covers."""
    kind, blocks, total = fields
    hdr, block_size = header.chunk_header_size, header.block_size
    payload = _payload(kind, blocks, block_size)
    name = _NAMES.get(kind)

    def fail(what: str) -> CorruptImageError:
        return CorruptImageError(f"Android sparse chunk {index}: {what}", path=path, offset=at)

    if payload is None:
        raise fail(f"type 0x{kind:04X} is none the format defines (RAW 0xCAC1, FILL "
                   "0xCAC2, DONT_CARE 0xCAC3, CRC32 0xCAC4)")
    if total != hdr + payload:
        raise fail(f"a {name} chunk of {blocks} blocks of {block_size} bytes takes "
                   f"{hdr + payload} bytes in the file; its header says {total}")
    if at + total > file_size:
        raise fail(f"its {total} bytes run past the end of the {file_size}-byte file")
    covered = 0 if kind == CRC32 else blocks
    if first_block + covered > header.total_blocks:
        raise fail(f"it ends at block {first_block + covered}, past the "
                   f"{header.total_blocks} blocks the header declares")
    return covered


def _payload(kind: int, blocks: int, block_size: int) -> int | None:
    """Bytes of payload a chunk of ``kind`` must carry (``None``: no such type)."""
    if kind == RAW:
        return blocks * block_size
    if kind in (FILL, CRC32):
        return 4
    if kind == DONT_CARE:
        return 0
    return None


def _data_chunks(fd: int, path: Path, header: SparseHeader, file_size: int,
                 counts: dict[int, int]) -> tuple[tuple[array[int], array[int], array[int],
                                                        array[int]], int]:
    """One file's RAW and FILL chunks, walked and checked: first blocks, block counts, file
    offsets or FILL words, kinds (arrays); and the file offset past its last chunk. Chunks of
    each type are counted into ``counts``."""
    starts, lengths, where, kinds = array(_U32), array(_U32), array("Q"), array("B")
    end = header.file_header_size
    for chunk, data_at in walk(fd, path, header, file_size):
        counts[chunk.kind] += 1
        end = data_at + (_payload(chunk.kind, chunk.blocks, header.block_size) or 0)
        if chunk.blocks and chunk.kind in (RAW, FILL):
            starts.append(chunk.first_block)
            lengths.append(chunk.blocks)
            where.append(data_at if chunk.kind == RAW else chunk.value)
            kinds.append(_K_RAW if chunk.kind == RAW else _K_FILL)
    return (starts, lengths, where, kinds), end


def _numbered(starts: array[int], piece: int) -> Iterator[tuple[int, int, int]]:
    """(first block, piece, index) of each of a piece's data chunks, in order."""
    for i, start in enumerate(starts):
        yield start, piece, i


def _index(per_piece: list[tuple[array[int], array[int], array[int], array[int]]],
           header: SparseHeader, pieces: list[Path]
           ) -> tuple[array[int], array[int], array[int], array[int]]:
    """The media's index over every piece: the data chunks in block order (merged, each
    piece's already being in order), the blocks no piece holds as zero entries between them.
    Returns first blocks, file offsets or FILL words, kinds, pieces (arrays)."""
    starts, where, kinds, owner = array(_U32), array("Q"), array("B"), array("H")
    merged = (_numbered(per_piece[0][0], 0) if len(per_piece) == 1 else  # no heap for one
              heapq.merge(*(_numbered(arrays[0], n) for n, arrays in enumerate(per_piece))))
    block, last_piece = 0, 0
    for start, piece, i in merged:
        if start < block:
            raise CorruptImageError(
                f"Android sparse pieces {last_piece} ({pieces[last_piece].name}) and {piece} "
                f"({pieces[piece].name}) both hold block {start}: not pieces of one image "
                "(a copy of one under a name without the number is read alone)",
                path=pieces[piece])
        if start > block:
            starts.append(block)
            where.append(0)
            kinds.append(_K_ZERO)
            owner.append(0)
        arrays = per_piece[piece]
        starts.append(start)
        where.append(arrays[2][i])
        kinds.append(arrays[3][i])
        owner.append(piece)
        block, last_piece = start + arrays[1][i], piece
    if block < header.total_blocks:
        starts.append(block)
        where.append(0)
        kinds.append(_K_ZERO)
        owner.append(0)
    return starts, where, kinds, owner


class AndroidSparseStream(ImageStream):
    """The media of an Android sparse image, or of a set of pieces of one (``simg2simg``'s
    ``NAME.0``, ``NAME.1``...; Motorola's ``system.img_sparsechunk.0``...): each piece
    describes the whole media and holds RAW and FILL chunks for its share of it, DONT_CARE for
    the rest, as a flash or ``simg2img`` writes them one over the other. A block that two
    pieces both hold is refused: no writer of a set makes one."""

    def __init__(self, path: Path, pieces: list[Path] | None = None) -> None:
        self.path = path
        self.pieces = pieces or [path]
        self._fds: list[int] = []
        try:
            for piece in self.pieces:
                self._fds.append(open_readonly(piece))
            self._load()
        except BaseException:
            for fd in self._fds:
                os.close(fd)
            self._unmade()
            raise
        super().__init__(self._header.media_size)
        self.alignment = 1

    def _load(self) -> None:
        counts = {RAW: 0, FILL: 0, DONT_CARE: 0, CRC32: 0}
        per_piece = []
        self._trailing = 0
        header: SparseHeader | None = None
        for number, (piece, fd) in enumerate(zip(self.pieces, self._fds, strict=True)):
            file_size = os.fstat(fd).st_size
            this = read_header(fd, piece, file_size)
            if header is None:
                header = this
            elif (this.block_size, this.total_blocks) != (header.block_size,
                                                          header.total_blocks):
                raise CorruptImageError(
                    f"Android sparse piece {number} declares {this.total_blocks} blocks of "
                    f"{this.block_size} bytes; piece 0 ({self.pieces[0].name}) declares "
                    f"{header.total_blocks} of {header.block_size}: not pieces of one image",
                    path=piece)
            declared = sum(counts.values()) + this.total_chunks
            if declared > MAX_CHUNKS:
                raise UnsupportedFormatError(
                    f"{piece}: the Android sparse set declares {declared} chunks or more, "
                    f"more than the {MAX_CHUNKS} BitWitness indexes (convert it to raw with "
                    "simg2img)")
            data, end = _data_chunks(fd, piece, this, file_size, counts)
            per_piece.append(data)
            self._trailing += file_size - end
        assert header is not None
        self._header = header
        self._counts = counts
        self._starts, self._where, self._kinds, self._piece = _index(per_piece, header,
                                                                     self.pieces)
        self._covered = {RAW: 0, FILL: 0, DONT_CARE: 0}
        for i, kind in enumerate(self._kinds):
            end = (self._starts[i + 1] if i + 1 < len(self._starts)
                   else header.total_blocks)
            self._covered[(RAW, FILL, DONT_CARE)[kind]] += end - self._starts[i]

    def _read_aligned(self, offset: int, length: int) -> bytes:
        """The media at ``offset``, assembled in one buffer (zeros to begin with, so DONT_CARE
        costs nothing): a read spanning a million one-block chunks makes no object per chunk."""
        block_size, starts, kinds, where = (self._header.block_size, self._starts, self._kinds,
                                            self._where)
        out = bytearray(length)
        i = bisect_right(starts, offset // block_size) - 1
        pos = 0
        while pos < length:
            at = offset + pos
            chunk_end = starts[i + 1] * block_size if i + 1 < len(starts) else self.size
            n = min(chunk_end - at, length - pos)
            kind = kinds[i]
            if kind == _K_RAW:
                piece = self._piece[i]
                out[pos:pos + n] = read_exact(self._fds[piece],
                                              where[i] + at - starts[i] * block_size, n,
                                              self.pieces[piece])
            elif kind == _K_FILL:
                out[pos:pos + n] = _repeat(where[i].to_bytes(4, "little"),
                                           (at - starts[i] * block_size) % 4, n)
            pos += n
            i += 1
        return bytes(out)

    @property
    def records_crc(self) -> bool:
        """Whether the image records a CRC-32 of its media (CRC32 chunks, image checksum)."""
        return bool(self._counts[CRC32] or self._header.image_checksum)

    def close(self) -> None:
        if not self.closed:
            for fd in self._fds:
                os.close(fd)
        super().close()

    @property
    def info(self) -> StreamInfo:
        header, counts, covered = self._header, self._counts, self._covered
        block = header.block_size
        details: dict[str, object] = {
            "reader": "bitwitness",
            "sparse_version": f"{header.major}.{header.minor}",
            "block_size": block,
            "blocks": header.total_blocks,
            "chunks": (f"{sum(counts.values())}: {counts[RAW]} RAW, {counts[FILL]} FILL, "
                       f"{counts[DONT_CARE]} DONT_CARE, {counts[CRC32]} CRC32"),
            "stored_bytes": f"{covered[RAW] * block} in RAW chunks",
            "filled_bytes": f"{covered[FILL] * block} in FILL chunks (a 4-byte pattern)",
            "dont_care_bytes": (f"{covered[DONT_CARE] * block} bytes no "
                                f"{'piece' if len(self.pieces) > 1 else 'chunk'} holds "
                                "(DONT_CARE), read as zeros: the writer did not keep them, "
                                "they are not evidence"),
            "image_checksum": (f"0x{header.image_checksum:08x} (CRC-32 of the media)"
                               if header.image_checksum else "none recorded"),
        }
        if len(self.pieces) > 1:
            details["pieces"] = (f"{len(self.pieces)}, each DONT_CARE where another holds the "
                                 "data")
        if self._trailing:
            details["bytes_after_the_chunks"] = (f"{self._trailing} (not part of the media, "
                                                 "not read)")
        return StreamInfo(format="android-sparse", files=tuple(self.pieces),
                          media_size=self.size, sector_size=self.sector_size, details=details)


def _repeat(pattern: bytes, phase: int, n: int) -> bytes:
    """``n`` bytes of ``pattern`` repeated, starting ``phase`` bytes into it."""
    return (pattern * ((phase + n) // 4 + 1))[phase:phase + n]


# --- CRC-32 of long repeated runs -------------------------------------------------------------
# The CRC-32 of zlib and of the sparse format (IEEE 802.3, reflected) is affine in its start
# value: crc32(data, c) = x^(8 len) * c + crc32(data, 0), the product taken modulo the CRC
# polynomial. A run of k copies of a unit is that map applied k times, which square-and-multiply
# gives in O(log k) products. Polynomials are held reflected, as the CRC register holds them:
# bit 31 is x^0.

_POLY = 0xEDB88320
_ONE = 1 << 31  #: the polynomial 1 (x^0)


def _multiply(a: int, b: int) -> int:
    """``a * b`` modulo the CRC polynomial (both reflected)."""
    product = 0
    mask = _ONE
    while a:
        if a & mask:
            product ^= b
            a ^= mask
        mask >>= 1
        b = (b >> 1) ^ _POLY if b & 1 else b >> 1
    return product


def _powers() -> list[int]:
    """``x^(2^k)`` for k from 0 to 31 (x has an order dividing 2^32 - 1, so the table cycles)."""
    table = [_ONE >> 1]
    for _ in range(31):
        table.append(_multiply(table[-1], table[-1]))
    return table


_X2N = _powers()


def _shift(length: int) -> int:
    """``x^(8 length)``: what crc32 multiplies its start value by over ``length`` bytes."""
    power, k, n = _ONE, 3, length
    while n:
        if n & 1:
            power = _multiply(_X2N[k & 31], power)
        n >>= 1
        k += 1
    return power


#: Runs shorter than this are handed to zlib as bytes (faster than the arithmetic there).
_DIRECT = 1 << 20


def _crc_repeat(crc: int, unit: bytes, count: int) -> int:
    """``zlib.crc32(unit * count, crc)`` without making ``unit * count``."""
    if len(unit) * count <= _DIRECT:
        return zlib.crc32(unit * count, crc)
    # the affine map c -> a*c + b of one unit, raised to the count-th power
    a, b = _shift(len(unit)), zlib.crc32(unit)
    ra, rb = _ONE, 0
    while count:
        if count & 1:
            ra, rb = _multiply(a, ra), _multiply(a, rb) ^ b
        a, b = _multiply(a, a), _multiply(a, b) ^ b
        count >>= 1
    return _multiply(ra, crc) ^ rb


# --- what verify checks -----------------------------------------------------------------------


def sparse_checks(path: Path) -> tuple[ContainerCheck, ...]:
    """Each CRC32 chunk against the CRC-32 of the media before it (the format's definition:
    every expanded block so far, DONT_CARE counted as zeros), and the header's image checksum,
    when not zero, against the CRC-32 of the whole media. An image that records neither has
    nothing checked here. Each mismatch names the chunk, its file offset and the media offset
    it covers; the RAW data is read from the file a MiB at a time."""
    fd = open_readonly(path)
    try:
        file_size = os.fstat(fd).st_size
        header = read_header(fd, path, file_size)
        chunks = list(_crc_chunks(fd, path, header, file_size))
        if not chunks and not header.image_checksum:
            return ()
        findings = Findings()
        crc, checked = 0, 0
        zero = bytes(4)
        for chunk, data_at in walk(fd, path, header, file_size):
            size = chunk.blocks * header.block_size
            if chunk.kind == RAW:
                for piece_at in range(0, size, _DIRECT):
                    n = min(_DIRECT, size - piece_at)
                    crc = zlib.crc32(read_exact(fd, data_at + piece_at, n, path), crc)
            elif chunk.kind == FILL:
                crc = _crc_repeat(crc, chunk.value.to_bytes(4, "little"), size // 4)
            elif chunk.kind == DONT_CARE:
                crc = _crc_repeat(crc, zero, size // 4)
            else:
                checked += 1
                if chunk.value != crc:
                    findings.add(_crc_mismatch(chunk, chunk.first_block * header.block_size,
                                               crc))
        if header.image_checksum:
            checked += 1
            if header.image_checksum != crc:
                findings.add(f"the header (file offset 24) records an image checksum of "
                             f"0x{header.image_checksum:08x}; the media gives 0x{crc:08x}")
    finally:
        os.close(fd)
    return (findings.check("Android sparse CRC-32", path.name,
                           f"{checked} recorded CRC-32 value{'s' if checked != 1 else ''} "
                           f"match the media (0x{crc:08x})"),)


def _crc_mismatch(chunk: Chunk, media_at: int, computed: int) -> Callable[[], str]:
    """The words for one CRC32 chunk that does not match (made only if named)."""
    return lambda: (f"CRC32 chunk {chunk.number} (file offset {chunk.at}) records "
                    f"0x{chunk.value:08x}; the media before it (up to media offset {media_at}) "
                    f"gives 0x{computed:08x}")


def _crc_chunks(fd: int, path: Path, header: SparseHeader, file_size: int
                ) -> Iterator[Chunk]:
    """The CRC32 chunks (a first walk, headers only, to know whether there is anything to
    check before reading the RAW data)."""
    for chunk, _data_at in walk(fd, path, header, file_size):
        if chunk.kind == CRC32:
            yield chunk


# --- the second reader ------------------------------------------------------------------------


def _libsparse_version() -> str:
    """``"simg2img (android-sdk-libsparse-utils 1:29.0.6-28)"``, or just ``"simg2img"``."""
    out = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "android-sdk-libsparse-utils"],
                         capture_output=True, text=True, check=False) if shutil.which(
                             "dpkg-query") else None
    if out is not None and out.returncode == 0 and out.stdout.strip():
        return f"simg2img (android-sdk-libsparse-utils {out.stdout.strip()})"
    return "simg2img"


class Simg2imgStream(RestoredStream):
    """The media as Android's libsparse reads it: ``simg2img`` writes it to a temporary raw
    file (DONT_CARE runs are holes) from copies of the pieces (:class:`RestoredStream`)."""

    program = "simg2img"
    package = "android-sdk-libsparse-utils"
    format_name = "android-sparse"

    def command(self, exe: str, copies: list[Path], media: Path, folder: Path) -> list[str]:
        return [exe, *map(str, copies), str(media)]

    def version(self, exe: str, said: str) -> str:
        return _libsparse_version()


#: A piece of a set: ``NAME.N`` (simg2simg writes ``OUT.0``, ``OUT.1``...; Motorola's factory
#: images ``system.img_sparsechunk.0``...).
_PIECE = re.compile(r"^(?P<base>.+)\.(?P<number>\d{1,4})$")


def set_pieces(path: Path) -> list[Path]:
    """Every piece of the set ``path`` belongs to, in order (``[path]`` alone when its name
    is not a piece's or it has no sibling): the files of its folder named like it with
    another number that are Android sparse images too. The numbers must run without a gap
    from 0 or 1; a gap is a missing piece, named."""
    found = _PIECE.match(path.name)
    if found is None:
        return [path]
    base = found["base"]
    numbered: dict[int, Path] = {}
    for sibling in path.parent.iterdir():
        match = _PIECE.match(sibling.name)
        if match is None or match["base"] != base:
            continue
        if sibling == path or _is_sparse(sibling):
            numbered[int(match["number"])] = confine_part(path.parent, sibling.name,
                                                          what="Android sparse piece")
    if len(numbered) < 2:
        return [path]
    numbers = sorted(numbered)
    first = min(numbers[0], 1)
    missing = sorted(set(range(first, numbers[-1] + 1)) - set(numbers))
    if missing:
        raise MissingSegmentError(
            f"{path}: piece {base}.{missing[0]} of the Android sparse set is missing "
            f"({len(numbers)} pieces found, numbered {numbers[0]} to {numbers[-1]})")
    return [numbered[n] for n in numbers]


def _is_sparse(path: Path) -> bool:
    try:
        return path.is_file() and read_head(path, 4) == MAGIC_BYTES
    except (OSError, InputError):
        return False


class AndroidSparseFormat:
    name = "android-sparse"
    containers = ("android-sparse",)

    def probe(self, path: Path, head: bytes) -> bool:
        return head.startswith(MAGIC_BYTES)

    def claims_name(self, path: Path) -> bool:
        return False

    def files(self, path: Path) -> list[Path]:
        return set_pieces(path)

    def open(self, path: Path) -> ImageStream:
        pieces = set_pieces(path)
        return AndroidSparseStream(pieces[0], pieces)

    def second_reader(self, path: Path, stream: ImageStream) -> ImageStream | None:
        """Android's own libsparse, through ``simg2img``: it shares no code with ours."""
        return Simg2imgStream(set_pieces(path), stream.size)

    def self_checks(self, path: Path, stream: ImageStream) -> tuple[ContainerCheck, ...]:
        """The CRC-32 values each piece records (:func:`sparse_checks`); none to check, as
        the opened stream already knows, costs no second walk of the chunks."""
        if isinstance(stream, AndroidSparseStream) and not stream.records_crc:
            return ()
        return tuple(check for piece in set_pieces(path) for check in sparse_checks(piece))


FORMAT = AndroidSparseFormat()
