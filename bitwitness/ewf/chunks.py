"""Chunk encoding and decoding: zlib stream or raw bytes + Adler-32 trailer (§6.1).

:func:`encode_chunk` is pure and thread-safe; isal releases the GIL, so the acquisition pipeline
runs it in its worker pool and hands the results to :meth:`EwfWriter.write_encoded` in media order.
:func:`decode_chunk` is what the reader runs per chunk, also from worker threads.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import StrEnum
from functools import cache

from isal import isal_zlib


class Compression(StrEnum):
    """Chunk compression levels, as ewfacquire names them."""

    NONE = "none"
    EMPTY = "empty"  #: only all-zero chunks are compressed
    FAST = "fast"
    BEST = "best"


#: isal levels per compression (isal has 0..3; 3 is its best).
_ISAL_LEVEL = {Compression.EMPTY: 1, Compression.FAST: 1, Compression.BEST: 3}
#: The volume section's compression-level byte (§6.2): empty-block records 0 as ewfacquire does.
VOLUME_LEVEL = {Compression.NONE: 0, Compression.EMPTY: 0, Compression.FAST: 1,
                Compression.BEST: 2}


@dataclass(frozen=True)
class EncodedChunk:
    """A chunk as stored: ``payload`` is the zlib stream, or the raw bytes + LE Adler-32."""

    payload: bytes
    compressed: bool
    raw_length: int


@cache
def _zeros(length: int) -> bytes:
    return bytes(length)


@cache
def _zero_chunk(length: int, level: int) -> bytes:
    return isal_zlib.compress(bytes(length), level)


def _stored(data: bytes) -> EncodedChunk:
    return EncodedChunk(data + struct.pack("<I", isal_zlib.adler32(data) & 0xFFFF_FFFF), False,
                        len(data))


def encode_chunk(data: bytes | bytearray | memoryview, compression: Compression) -> EncodedChunk:
    """Encode one chunk; a chunk that does not shrink is stored raw with its Adler-32."""
    compression = Compression(compression)
    if not isinstance(data, bytes):
        data = bytes(data)
    if compression is Compression.NONE:
        return _stored(data)
    length = len(data)
    zero = data == _zeros(length)  # a memcmp: practically free
    if compression is Compression.EMPTY and not zero:
        return _stored(data)
    level = _ISAL_LEVEL[compression]
    payload = _zero_chunk(length, level) if zero else isal_zlib.compress(data, level)
    if len(payload) < length:
        return EncodedChunk(payload, True, length)
    return _stored(data)


def encode_chunks(data: bytes, chunk_size: int, compression: Compression) -> list[EncodedChunk]:
    """Encode a block of consecutive chunks in one call (one worker task per block, not per
    chunk, keeps the pool's per-task overhead off the critical path); the last may be short."""
    view = memoryview(data)
    return [encode_chunk(bytes(view[i:i + chunk_size]), compression)
            for i in range(0, len(data), chunk_size)]


class ChunkDecodeError(ValueError):
    """A stored chunk fails its check; the message says how (the caller adds where)."""


def decode_chunk(stored: bytes | memoryview, compressed: bool, expected: int, *,
                 allow_longer: bool = False) -> bytes | memoryview:
    """The ``expected`` media bytes of one stored chunk, or :class:`ChunkDecodeError`.

    ``allow_longer`` is for the media's last chunk: some writers store more bytes there than the
    sector count covers (§9.1); the chunk is still checked whole, and only ``expected`` returned,
    as libewf does. A raw chunk comes back as a view into ``stored`` (no copy).
    """
    if compressed:
        try:
            data = isal_zlib.decompress(stored)
        except (isal_zlib.error, ValueError) as exc:
            raise ChunkDecodeError(f"deflate stream does not decode ({exc})") from None
    else:
        if len(stored) < 4:
            raise ChunkDecodeError(f"stored chunk is only {len(stored)} bytes")
        data = memoryview(stored)[:-4]
        trailer = int.from_bytes(stored[-4:], "little")
        if isal_zlib.adler32(data) & 0xFFFF_FFFF != trailer:
            raise ChunkDecodeError("stored chunk fails its Adler-32 checksum")
    if len(data) == expected:
        return data
    if allow_longer and len(data) > expected:
        return data[:expected]
    raise ChunkDecodeError(f"chunk holds {len(data)} bytes, expected {expected}")
