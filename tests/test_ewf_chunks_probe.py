"""The ``fast`` incompressibility probe and the zero-block shortcut of chunk encoding.

Checked against stdlib ``zlib`` (an independent inflate and Adler-32): what we compress must
inflate to the chunk, what we store raw must carry the chunk's Adler-32, and the probe may only
skip chunks that a full deflate could not have shrunk much.
"""

from __future__ import annotations

import os
import random
import zlib

from conftest import make_disk_bytes

from bitwitness.ewf import Compression, encode_chunk, encode_chunks

CHUNK = 32768


def _check(chunk: bytes, compression: Compression = Compression.FAST) -> bool:
    """Encode, check the encoding independently, return whether it was compressed."""
    encoded = encode_chunk(chunk, compression)
    assert encoded.raw_length == len(chunk)
    if encoded.compressed:
        assert zlib.decompress(encoded.payload) == chunk
        assert len(encoded.payload) < len(chunk)
    else:
        assert encoded.payload[:-4] == chunk
        assert encoded.payload[-4:] == zlib.adler32(chunk).to_bytes(4, "little")
    return encoded.compressed


def test_random_chunk_is_stored_raw() -> None:
    assert not _check(os.urandom(CHUNK))


def test_random_start_with_zero_slack_still_compresses() -> None:
    """A file's last cluster: random bytes, then zeros to the end of the chunk."""
    for slack in (512, 4096, 16384):
        chunk = os.urandom(CHUNK - slack) + bytes(slack)
        assert _check(chunk), slack


def test_compressible_middle_or_start_is_found() -> None:
    rng = random.Random(3)
    words = b"evidence sector custody witness journal inode cluster partition".split()
    text = b" ".join(rng.choice(words) for _ in range(4000))[:8192]
    assert _check(os.urandom(12288) + text + os.urandom(12288))
    assert _check(text + os.urandom(CHUNK - len(text)))
    assert _check(bytes(CHUNK - 512) + os.urandom(512))


def test_best_finds_what_the_probe_misses() -> None:
    """A compressible stretch between the probe's spots is the probe's documented blind spot
    under ``fast``; ``best`` stores a chunk raw only when a level-1 deflate of the whole chunk
    cannot shrink it either, so it finds the stretch."""
    chunk = os.urandom(2048) + bytes(4096) + os.urandom(CHUNK - 6144)
    assert _check(chunk, Compression.BEST)
    _check(chunk, Compression.FAST)  # either way, a correct encoding
    assert not _check(os.urandom(CHUNK), Compression.BEST)


def test_best_is_never_larger_than_zlib_9() -> None:
    """What ``ewfacquire -c deflate:best`` stores (zlib level 9 per chunk, raw when it does not
    shrink), on disk-like data (a third zeros), on near-random data (deflate streams of text,
    which the probe calls incompressible but which still shrink a little) and on zeros."""
    rng = random.Random(5)
    words = b"evidence sector custody witness journal inode cluster partition 2026".split()
    text = b" ".join(rng.choice(words) for _ in range(400_000))
    packed = b"".join(zlib.compress(text[i:i + 50_000], 1) for i in range(0, len(text), 50_000))
    for data in (make_disk_bytes(4 << 20, 12), packed[:len(packed) - len(packed) % CHUNK],
                 bytes(4 * CHUNK)):
        ours = sum(c.stored_size for c in encode_chunks(data, CHUNK, Compression.BEST))
        reference = 0
        for i in range(0, len(data), CHUNK):
            chunk = data[i:i + CHUNK]
            deflated = zlib.compress(chunk, 9)
            reference += len(deflated) if len(deflated) < len(chunk) else len(chunk) + 4
        assert ours <= reference


def test_size_close_to_a_full_deflate_on_disk_like_data() -> None:
    """Against stdlib zlib level 1 on every chunk (stored raw when it does not shrink)."""
    data = make_disk_bytes(8 << 20, 11)
    ours = sum(len(c.payload) for c in encode_chunks(data, CHUNK, Compression.FAST))
    reference = 0
    for i in range(0, len(data), CHUNK):
        chunk = data[i:i + CHUNK]
        packed = zlib.compress(chunk, 1)
        reference += len(packed) if len(packed) < len(chunk) else len(chunk) + 4
    assert abs(ours - reference) / reference < 0.05


def test_zero_block_and_mixed_blocks_round_trip() -> None:
    for block in (bytes(1 << 20), bytes(CHUNK * 3) + os.urandom(CHUNK) + bytes(CHUNK),
                  bytes((1 << 20) - 4096)):
        for compression in Compression:
            encoded = encode_chunks(block, CHUNK, compression)
            assert len(encoded) == -(-len(block) // CHUNK)
            out = b"".join(zlib.decompress(c.payload) if c.compressed else c.payload[:-4]
                           for c in encoded)
            assert out == block, compression
