"""Inflating stored chunks: libdeflate (through ctypes) for the fastest zlib streams, isal for
the rest and for every stream libdeflate does not inflate whole.

Checked against stdlib ``zlib`` (an independent inflater) and against the isal-only path: for
any stream, good, damaged, cut short, padded or too long for its limit, :func:`inflate_bounded`
gives the same bytes or the same error with libdeflate as without it.
"""

from __future__ import annotations

import random
import threading
import zlib
from collections.abc import Callable

import pytest
from conftest import make_disk_bytes
from hypothesis import given, settings
from hypothesis import strategies as st

from bitwitness.ewf import libdeflate
from bitwitness.ewf.chunks import ChunkDecodeError, inflate_bounded

CHUNK = 32768


def _outcome(inflate: Callable[[bytes, int], bytes], stored: bytes, limit: int) -> object:
    try:
        return bytes(inflate(stored, limit))
    except ChunkDecodeError as exc:
        return ("error", str(exc))


def _isal_only(stored: bytes, limit: int) -> bytes:
    """``inflate_bounded`` as it is without libdeflate."""
    saved = libdeflate.fastest_stream
    libdeflate.fastest_stream = lambda _stored: False  # type: ignore[assignment]
    try:
        return inflate_bounded(stored, limit)
    finally:
        libdeflate.fastest_stream = saved  # type: ignore[assignment]


def test_libdeflate_is_found_here() -> None:
    """The ``deflate`` wheel exports libdeflate's functions: where a later wheel stops doing so,
    verification silently loses its faster inflater, and this says so."""
    assert libdeflate.available()


@pytest.mark.parametrize("level", range(10))
def test_every_zlib_level_inflates_to_the_chunk(level: int) -> None:
    """Chunks of disk-like data compressed by stdlib zlib at every level (levels 0 and 1 declare
    the fastest compression: libdeflate's) inflate to the chunk, as zlib inflates them."""
    data = make_disk_bytes(16 * CHUNK, seed=level)
    fastest = 0
    for at in range(0, len(data), CHUNK):
        chunk = data[at:at + CHUNK]
        stored = zlib.compress(chunk, level)
        fastest += libdeflate.fastest_stream(stored)
        assert inflate_bounded(stored, CHUNK) == chunk == zlib.decompress(stored)
    assert fastest == (16 if level <= 1 else 0)


def test_libdeflate_gives_what_zlib_gives() -> None:
    """The libdeflate call itself (not the isal fallback) inflates fastest streams right."""
    data = make_disk_bytes(8 * CHUNK, seed=7)
    for at in range(0, len(data), CHUNK):
        stored = zlib.compress(data[at:at + CHUNK], 1)
        assert libdeflate.inflate(stored, CHUNK) == zlib.decompress(stored)
        assert libdeflate.inflate(memoryview(stored), CHUNK) == zlib.decompress(stored)


_DAMAGE = st.sampled_from(["none", "flip", "cut", "pad", "tight", "header"])


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=3000), st.integers(0, 9), _DAMAGE, st.integers(0, 1 << 16),
       st.integers(1, 4))
def test_same_outcome_as_isal_alone(content: bytes, level: int, damage: str, where: int,
                                    repeat: int) -> None:
    """Whatever the stream, the result (bytes, or the error and its message) is the one the
    isal-only path gives: a flipped bit (bad data or a wrong Adler-32), a stream cut short,
    bytes after its end, a limit one byte short of what it inflates to, a damaged header."""
    chunk = content * repeat
    stored = bytearray(zlib.compress(chunk, level))
    limit = max(len(chunk), 1)
    if damage == "flip":
        stored[where % len(stored)] ^= 1 << (where % 8)
    elif damage == "cut":
        del stored[where % len(stored):]
    elif damage == "pad":
        stored += bytes(where % 9 + 1)
    elif damage == "tight":
        limit = max(len(chunk) - 1, 0)
    elif damage == "header":
        stored[1] = where & 0xFF
    assert _outcome(inflate_bounded, bytes(stored), limit) == _outcome(
        _isal_only, bytes(stored), limit)


def test_a_bomb_stops_at_the_limit() -> None:
    """A fastest stream that inflates past its limit is refused as isal refuses it, never held."""
    stored = zlib.compress(bytes(64 * CHUNK), 1)
    assert libdeflate.fastest_stream(stored)
    assert libdeflate.inflate(stored, CHUNK) is None
    with pytest.raises(ChunkDecodeError, match="inflates to more than 32768 bytes"):
        inflate_bounded(stored, CHUNK)


def test_a_large_limit_is_left_to_isal() -> None:
    """No thread keeps an output buffer larger than :data:`libdeflate.MAX_LIMIT`."""
    stored = zlib.compress(b"x" * 100, 1)
    assert libdeflate.inflate(stored, libdeflate.MAX_LIMIT + 1) is None
    assert inflate_bounded(stored, libdeflate.MAX_LIMIT + 1) == b"x" * 100


def test_threads_each_inflate_right() -> None:
    """Reader workers inflate at once, each with its own decompressor."""
    rng = random.Random(3)
    streams = []
    for n in range(64):
        chunk = make_disk_bytes(CHUNK, seed=n)[: rng.randrange(1, CHUNK)]
        streams.append((zlib.compress(chunk, 1), chunk))
    wrong: list[int] = []

    def work() -> None:
        for n, (stored, chunk) in enumerate(streams):
            if inflate_bounded(stored, CHUNK) != chunk:
                wrong.append(n)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not wrong
