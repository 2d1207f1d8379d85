"""Chunk encoding and decoding: zlib stream or raw bytes + Adler-32 trailer (docs/EWF.md §6.1;
the § numbers below refer to that file).

:func:`encode_chunk` is pure and thread-safe; isal releases the GIL, so the acquisition pipeline
runs it in its worker pool and hands the results to :meth:`EwfWriter.write_encoded` in media order.
:func:`decode_chunk` is what the reader runs per chunk, also from worker threads.
"""

from __future__ import annotations

from functools import cache
from typing import NamedTuple

import deflate
from isal import isal_zlib

from bitwitness.ewf import libdeflate
from bitwitness.ewf.options import Compression

#: isal levels per compression (isal has 0..3); ``best`` is libdeflate's (:data:`BEST_LEVEL`).
_ISAL_LEVEL = {Compression.EMPTY: 1, Compression.FAST: 1}
#: libdeflate's level for ``best``: the cheapest that is still smaller than zlib level 9 (what
#: ``ewfacquire -c deflate:best`` writes) on every data set measured. On 32 KiB chunks of the
#: bench/_data.py disk-like media, a tar of shared libraries and a tar of /usr/share/doc, man
#: pages and headers (mostly .gz, so near-random), level 7 is 0.9982x, 0.9923x and 0.9962x zlib
#: 9's size in 0.60x, 0.12x and ~0.3x of its CPU time; level 9 gains another 0.05-0.2% for 1.4x
#: level 7's time; level 6 is 0.8% *larger* than zlib 9 on the disk-like media. isal's level 3
#: is 4% larger than zlib level 9. Skipping the full deflate on chunks the ``fast`` probe calls
#: incompressible would save a fifth of the time but loses what libdeflate gets from near-random
#: chunks (the documentation tar came out 1.0007x zlib 9): ``best`` stores such a chunk raw only
#: when libdeflate's level 1 cannot shrink it either (:func:`_encode_best`).
BEST_LEVEL = 7
#: The volume section's compression-level byte (§6.2): empty-block records 0 as ewfacquire does.
VOLUME_LEVEL = {Compression.NONE: 0, Compression.EMPTY: 0, Compression.FAST: 1,
                Compression.BEST: 2}


class EncodedChunk(NamedTuple):
    """A chunk as stored: ``body`` then ``trailer`` (§6.1).

    A compressed chunk's body is its zlib stream and the trailer is empty; a raw chunk's body is
    the media bytes themselves and the trailer their LE Adler-32. Why two parts: a raw chunk's
    body is a view into the caller's buffer (no copy on the encoder's side); such a chunk is
    valid only while that buffer is, and :meth:`EwfWriter.write_chunks` either copies what it
    keeps or borrows the buffer until the chunk is on the file (its ``keep``). A named tuple,
    not a dataclass: ~30 000 are made per GiB of media, and a frozen dataclass costs three
    times as much to create.
    """

    body: bytes | bytearray | memoryview
    compressed: bool
    raw_length: int
    trailer: bytes = b""

    @property
    def stored_size(self) -> int:
        """Bytes the chunk takes in the segment file."""
        return len(self.body) + len(self.trailer)

    @property
    def payload(self) -> bytes:
        """The stored bytes as one object (for tests and small callers; copies a raw chunk)."""
        return bytes(self.body) + self.trailer


@cache
def _zeros(length: int) -> bytearray:
    """A zero buffer to compare with. A bytearray on purpose: ``bytearray == anything with the
    buffer protocol`` is one ``memcmp``, where a memoryview compares element by element (~40x
    slower) and bytes refuses other types. Never handed out, never changed."""
    return bytearray(length)


def zeros_of(length: int) -> bytearray:
    """A zero buffer to compare with (``zeros_of(n) == data`` is one ``memcmp``); never change
    it."""
    return _zeros(length)


@cache
def _zero_encoded(length: int, compression: Compression) -> EncodedChunk:
    """The one encoding shared by every all-zero chunk of this size (a third of a disk).

    ``best`` takes libdeflate's, like its other chunks: isal's level 3 makes 126 bytes of a
    32 KiB zero chunk where libdeflate (and zlib 9) make 52, ~0.07% of a disk that is a third
    zeros, enough to make ``best`` larger than ``ewfacquire -c deflate:best``."""
    zeros = bytes(length)
    body = (deflate.zlib_compress(zeros, BEST_LEVEL) if compression is Compression.BEST
            else isal_zlib.compress(zeros, _ISAL_LEVEL.get(compression, 0)))
    return EncodedChunk(body, True, length)


#: The incompressibility probe (``fast`` only): this many bytes from each of ``_PROBE_SPOTS``
#: places (start, quarters, end), joined and deflated at isal level 0 (static Huffman codes, no
#: per-call table building: ~3 us, where level 1 costs ~12 us on such a small input). Random
#: data comes out ~1.31x its size; a sample that grows by 25% or more is taken as random, and the
#: chunk is stored raw without the full deflate (~31 us per 32 KiB chunk, for nothing).
#: Calibrated on bench/_data.py media and on a 200 MB ext4 image of binaries, Python sources
#: and docs: chunks at >= 1.25 would have gained 0.00% and 0.2% of their size from a full
#: deflate; below 1.25 they are compressed in full. A compressible stretch inside a chunk is
#: lost only when it misses all five spots (so a random start with zero slack still compresses).
_PROBE_BYTES = 256
_PROBE_SPOTS = 5
_PROBE_MIN_CHUNK = 4 * _PROBE_BYTES * _PROBE_SPOTS


def _looks_incompressible(data: bytes | bytearray | memoryview) -> bool:
    """True when every probed spot of ``data`` is incompressible (see ``_PROBE_BYTES``)."""
    length = len(data)
    if length < _PROBE_MIN_CHUNK:
        return False
    last = length - _PROBE_BYTES
    sample = b"".join([data[at:at + _PROBE_BYTES] for at in _probe_spots(last)])
    return len(isal_zlib.compress(sample, 0)) * 4 >= len(sample) * 5


@cache
def _probe_spots(last: int) -> tuple[int, ...]:
    return tuple(last * i // (_PROBE_SPOTS - 1) for i in range(_PROBE_SPOTS))


def _stored(data: bytes | bytearray | memoryview) -> EncodedChunk:
    trailer = (isal_zlib.adler32(data) & 0xFFFF_FFFF).to_bytes(4, "little")
    return EncodedChunk(data, False, len(data), trailer)


def encode_chunk(data: bytes | bytearray | memoryview, compression: Compression) -> EncodedChunk:
    """Encode one chunk; a chunk that does not shrink is stored raw with its Adler-32.

    ``fast`` stores a chunk raw at once when a small probe says it is incompressible (random,
    encrypted, already compressed): deflating it in full would cost as much as text and give
    nothing back; it deflates the others with isal. ``best`` deflates with libdeflate
    (:data:`BEST_LEVEL`) every chunk but those that the probe and a quick level-1 deflate both
    find incompressible (:func:`_encode_best`).
    """
    compression = Compression(compression)
    return _encode(data, compression, _ISAL_LEVEL.get(compression, 0))


def _encode(data: bytes | bytearray | memoryview, compression: Compression,
            level: int) -> EncodedChunk:
    if compression is Compression.NONE:
        return _stored(data)
    length = len(data)
    if _zeros(length) == data:
        encoded = _zero_encoded(length, compression)
        return encoded if len(encoded.body) < length else _stored(data)
    if compression is Compression.BEST:
        return _encode_best(data, length)
    if compression is Compression.EMPTY or _looks_incompressible(data):
        return _stored(data)
    payload = isal_zlib.compress(data, level)
    if len(payload) < length:
        return EncodedChunk(payload, True, length)
    return _stored(data)


def _encode_best(data: bytes | bytearray | memoryview, length: int) -> EncodedChunk:
    """libdeflate at :data:`BEST_LEVEL`, except on a chunk that the probe calls incompressible
    *and* that libdeflate's level 1 cannot shrink by a byte: such a chunk is stored raw.

    Why the second test: the probe alone would store raw some chunks that libdeflate shrinks
    (near-random .gz members shrink by ~1%; see :data:`BEST_LEVEL`), but level 1 finds those
    too, at a fraction of level 7's cost on random data. Measured on the three data sets of
    :data:`BEST_LEVEL`: the same bytes as level 7 on every chunk, 10% less deflate time on the
    disk-like media (a third random), the same elsewhere.
    """
    if _looks_incompressible(data) and len(deflate.zlib_compress(data, 1)) >= length:
        return _stored(data)
    payload = deflate.zlib_compress(data, BEST_LEVEL)
    if len(payload) < length:
        return EncodedChunk(payload, True, length)
    return _stored(data)


def encode_chunks(data: bytes | bytearray | memoryview, chunk_size: int,
                  compression: Compression) -> list[EncodedChunk]:
    """Encode a block of consecutive chunks in one call (one worker task per block, not per
    chunk, keeps the pool's per-task overhead off the critical path); the last may be short.

    A block of zeros (a third of a typical disk) costs one compare: every chunk of it shares the
    constant encoding of a zero chunk. Raw chunks are views into ``data`` (see
    :class:`EncodedChunk`).
    """
    compression = Compression(compression)
    level = _ISAL_LEVEL.get(compression, 0)
    view = memoryview(data)
    length = len(view)
    if (compression is not Compression.NONE and length and length % chunk_size == 0
            and _zeros(length) == view):
        zero = _zero_encoded(chunk_size, compression)
        if zero.stored_size < chunk_size:
            return [zero] * (length // chunk_size)
    return [_encode(view[i:i + chunk_size], compression, level)
            for i in range(0, length, chunk_size)]


class ChunkDecodeError(ValueError):
    """A stored chunk fails its check; the message says how (the caller adds where)."""


def inflate_bounded(stored: bytes | bytearray | memoryview, limit: int) -> bytes:
    """Inflate one zlib stream into at most ``limit`` bytes, or :class:`ChunkDecodeError`.

    Why bounded: the evidence decides what a stream inflates to, and deflate reaches ~1000:1;
    a 16 MiB stored chunk could otherwise ask for 16 GiB. Output stops one byte past ``limit``,
    so that a stream longer than the format allows is reported, never held in memory.

    A stream whose header declares the fastest compression (``ewfacquire -c deflate:fast``'s)
    goes to libdeflate first (:mod:`.libdeflate`, faster on those); whatever it does not
    inflate whole, checked and within ``limit``, comes here to isal, which decides.
    """
    if libdeflate.fastest_stream(stored):
        data = libdeflate.inflate(stored, limit)
        if data is not None:
            return data
    inflater = isal_zlib.decompressobj()
    try:
        data = inflater.decompress(stored, limit + 1)
    except (isal_zlib.error, ValueError) as exc:  # type: ignore[misc]  # isal's stub types it loosely
        raise ChunkDecodeError(f"deflate stream does not decode ({exc})") from None
    if len(data) > limit:
        raise ChunkDecodeError(f"deflate stream inflates to more than {limit} bytes")
    if not inflater.eof:
        raise ChunkDecodeError("deflate stream does not decode (cut short)")
    return data


def decode_chunk(stored: bytes | memoryview, compressed: bool, expected: int, *,
                 allow_longer: bool = False, limit: int | None = None) -> bytes | memoryview:
    """The ``expected`` media bytes of one stored chunk, or :class:`ChunkDecodeError`.

    ``allow_longer`` is for the media's last chunk: some writers store more bytes there than the
    sector count covers (§9); the chunk is still checked whole, and only ``expected`` returned,
    as libewf does. ``limit`` (the chunk size) bounds what such a chunk may hold; a compressed
    chunk never inflates past it. A raw chunk comes back as a view into ``stored`` (no copy).
    """
    bound = max(expected, limit or 0) if allow_longer else expected
    data: bytes | memoryview
    if compressed:
        data = inflate_bounded(stored, bound)
    else:
        if len(stored) < 4:
            raise ChunkDecodeError(f"stored chunk is only {len(stored)} bytes")
        data = memoryview(stored)[:-4]
        trailer = int.from_bytes(stored[-4:], "little")
        if isal_zlib.adler32(data) & 0xFFFF_FFFF != trailer:
            raise ChunkDecodeError("stored chunk fails its Adler-32 checksum")
    if len(data) == expected:
        return data
    if allow_longer and expected < len(data) <= bound:
        return data[:expected]
    raise ChunkDecodeError(f"chunk holds {len(data)} bytes, expected {expected}")
