"""The stream contract every image format must pass (one suite, called by each format's tests).

Usage: ``check_stream_contract(stream, expected_media_bytes)``.
"""

from __future__ import annotations

import os
import random

import pytest

from bitwitness.stream import ImageStream


def check_stream_contract(stream: ImageStream, expected: bytes, *, seed: int = 7) -> None:
    size = len(expected)
    assert stream.size == size
    assert stream.readable()
    assert stream.seekable()
    assert not stream.writable()
    # whole read
    stream.seek(0)
    assert stream.read() == expected
    assert stream.tell() == size
    # reads at and past the end
    assert stream.read(10) == b""
    assert stream.seek(size + 1000) == size + 1000
    assert stream.read(1) == b""
    # exact reads at random offsets and lengths, crossing alignment boundaries
    rng = random.Random(seed)
    for _ in range(60):
        off = rng.randrange(0, max(1, size))
        n = rng.choice([1, 7, 511, 512, 513, 4096, 32767, 32768, 32769, 100_000])
        stream.seek(off)
        assert stream.read(n) == expected[off : off + n], (off, n)
        assert stream.tell() == min(off + n, max(off, size)) or size == 0
        assert stream.pread(off, n) == expected[off : off + n]
    # SEEK_CUR / SEEK_END
    stream.seek(0)
    stream.seek(5, os.SEEK_CUR)
    assert stream.tell() == 5
    assert stream.seek(-1, os.SEEK_END) == size - 1
    assert stream.read(1) == expected[-1:]
    # a negative seek raises and leaves the position unchanged
    stream.seek(3)
    with pytest.raises(ValueError, match="negative"):
        stream.seek(-10)
    assert stream.tell() == 3
    # readinto
    buf = bytearray(1000)
    stream.seek(0)
    n = stream.readinto(buf)
    assert bytes(buf[:n]) == expected[:1000]
    # iter_blocks covers the media exactly
    assert b"".join(stream.iter_blocks(65536)) == expected
