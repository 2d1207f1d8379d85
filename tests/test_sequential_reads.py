"""Reads in media order through a format's sequential path give what ``pread`` gives.

The E01 is written by ewfacquire (not by us); the expected bytes are the media file it was made
from, and a damaged chunk must raise from the sequential path exactly what ``pread`` raises.
"""

from __future__ import annotations

import random
import subprocess
from pathlib import Path

import pytest
from conftest import make_disk_bytes, require_tool

from bitwitness.acquire.sequential import SequentialReads, has_sequential_path
from bitwitness.acquire.source import open_source
from bitwitness.errors import CorruptImageError, ReadError
from bitwitness.image import open_image


def _ewfacquire(tmp_path: Path, data: bytes) -> Path:
    require_tool("ewfacquire")
    media = tmp_path / "media.raw"
    media.write_bytes(data)
    subprocess.run(["ewfacquire", "-u", "-q", "-c", "deflate:fast", "-t", str(tmp_path / "img"),
                    str(media)], check=True, capture_output=True)
    return tmp_path / "img.E01"


def test_reads_in_order_and_out_of_order_equal_the_media(tmp_path: Path) -> None:
    data = make_disk_bytes(3 << 20, seed=31)
    image = _ewfacquire(tmp_path, data)
    rng = random.Random(5)
    with open_image(image) as stream:
        assert has_sequential_path(stream)
        reads = SequentialReads(stream)
        pos = 0
        while pos < len(data):  # in order, odd sizes, with jumps back and ahead between
            length = rng.choice([512, 4096, 65536, 1 << 20, 777 * 512])
            assert reads.pread(pos, length) == data[pos:pos + length]
            if rng.random() < 0.1:
                at = rng.randrange(0, len(data) // 512) * 512
                assert reads.pread(at, 4096) == data[at:at + 4096]
            pos += length
        assert reads.pread(len(data) - 100, 1000) == data[-100:]  # short at the end, as pread
        reads.close()


def test_a_damaged_chunk_raises_what_pread_raises(tmp_path: Path) -> None:
    data = make_disk_bytes(2 << 20, seed=32)
    image = _ewfacquire(tmp_path, data)
    raw = bytearray(image.read_bytes())
    middle = len(raw) // 2
    raw[middle:middle + 64] = bytes(b ^ 0x5A for b in raw[middle:middle + 64])
    image.write_bytes(bytes(raw))
    with open_image(image) as stream:
        expected: dict[int, int | None] = {}
        for offset in range(0, len(data), 1 << 16):
            try:
                stream.pread(offset, 1 << 16)
                expected[offset] = None
            except CorruptImageError as exc:
                expected[offset] = exc.media_offset
    assert any(v is not None for v in expected.values()), "the damage hit no chunk"
    with open_image(image) as stream:
        reads = SequentialReads(stream)
        for offset, where in expected.items():
            if where is None:
                assert reads.pread(offset, 1 << 16) == data[offset:offset + (1 << 16)]
            else:
                with pytest.raises(CorruptImageError) as caught:
                    reads.pread(offset, 1 << 16)
                assert caught.value.media_offset == where
        reads.close()
    # and a Source over the image reports it as a read error at that block
    with open_image(image) as stream, open_source(stream) as source:
        bad = [offset for offset, where in expected.items() if where is not None]
        for offset in expected:
            if offset in bad:
                with pytest.raises(ReadError):
                    source.read(offset, 1 << 16)
            else:
                assert source.read(offset, 1 << 16) == data[offset:offset + (1 << 16)]


def test_readinto_fills_the_buffer_as_pread_reads_and_raises(tmp_path: Path) -> None:
    """The copy-once path (a Source filling the pipeline's block buffers) gives the media's
    bytes in order and after jumps, and a damaged chunk's ReadError, as ``read`` does."""
    data = make_disk_bytes(2 << 20, seed=33)
    image = _ewfacquire(tmp_path, data)
    with open_image(image) as stream, open_source(stream) as source:
        buffer = bytearray(1 << 20)
        for offset, length in [(0, 1 << 20), (1 << 20, 300 * 512), (4096, 65536),
                               (4096 + 65536, 1 << 19)]:
            view = memoryview(buffer)[:length]
            source.readinto(offset, view)
            assert bytes(view) == data[offset:offset + length]
    raw = bytearray(image.read_bytes())
    middle = len(raw) // 2
    raw[middle:middle + 64] = bytes(b ^ 0x5A for b in raw[middle:middle + 64])
    image.write_bytes(bytes(raw))
    with open_image(image) as stream, open_source(stream) as source:
        outcomes = []
        for offset in range(0, len(data), 1 << 16):
            view = memoryview(bytearray(1 << 16))
            try:
                source.readinto(offset, view)
            except ReadError:
                outcomes.append(None)
            else:
                assert bytes(view) == data[offset:offset + (1 << 16)]
                outcomes.append(offset)
        assert None in outcomes, "the damage hit no chunk"


def test_a_raw_image_source_reads_through_its_descriptor(tmp_path: Path) -> None:
    """convert from a raw file reads it as acquire reads a file (preadv into the buffers), and
    closing the source leaves the stream (the caller's) open."""
    media = tmp_path / "media.raw"
    data = make_disk_bytes(1 << 20, seed=34)
    media.write_bytes(data)
    with open_image(media) as stream:
        source = open_source(stream)
        view = memoryview(bytearray(65536))
        source.readinto(4096, view)
        assert bytes(view) == data[4096:4096 + 65536]
        assert source.read(0, 512) == data[:512]
        with pytest.raises(ReadError):
            source.read(len(data) - 512, 1024)
        source.close()
        assert stream.pread(0, 512) == data[:512]  # its descriptor is still the stream's
