"""The stream contract on the core streams: memory, raw file, split raw, slices, fixed VHD."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from conftest import make_disk_bytes
from contract import check_stream_contract
from hypothesis import given, settings
from hypothesis import strategies as st

from bitwitness.errors import CorruptImageError, InputError, MissingSegmentError
from bitwitness.image import detect, image_files, open_image
from bitwitness.images.raw import RawStream
from bitwitness.stream import BytesStream, ConcatStream, SliceStream

DATA = make_disk_bytes(300_000)


def test_bytes_stream_contract() -> None:
    check_stream_contract(BytesStream(DATA), DATA)


def test_raw_file_contract(tmp_path: Path) -> None:
    p = tmp_path / "disk.dd"
    p.write_bytes(DATA)
    with open_image(p) as s:
        assert isinstance(s, RawStream)
        check_stream_contract(s, DATA)
        assert s.info.format == "raw"


def test_slice_contract() -> None:
    parent = BytesStream(DATA)
    check_stream_contract(SliceStream(parent, 1000, 200_000), DATA[1000:201_000])
    with pytest.raises(ValueError, match="outside"):
        SliceStream(parent, 1000, len(DATA))


def test_concatenation_contract() -> None:
    """Extents out of order on their parent, an empty one among them, and reads crossing from
    one into the next (a Windows spanned volume, report/browse/ldm.py)."""
    parent = BytesStream(DATA)
    places = [(200_000, 777), (0, 0), (1000, 150_001), (250_000, 40_000)]
    joined = ConcatStream([SliceStream(parent, at, length) for at, length in places])
    check_stream_contract(joined, b"".join(DATA[at:at + length] for at, length in places))
    assert joined.info.details == {"pieces": 4}
    with pytest.raises(ValueError, match="at least one"):
        ConcatStream([])


@given(st.lists(st.tuples(st.integers(0, 299_999), st.integers(0, 5000)), min_size=1,
                max_size=6), st.integers(0, 200_000), st.integers(0, 30_000))
@settings(max_examples=200, deadline=None)
def test_concatenation_reads_what_its_pieces_hold(places: list[tuple[int, int]], offset: int,
                                                  length: int) -> None:
    parent = BytesStream(DATA)
    places = [(at, min(size, len(DATA) - at)) for at, size in places]
    joined = ConcatStream([SliceStream(parent, at, size) for at, size in places])
    whole = b"".join(DATA[at:at + size] for at, size in places)
    assert joined.pread(offset, length) == whole[offset:offset + length]


@pytest.mark.parametrize(("names", "given"), [
    ([".001", ".002", ".003"], ".002"),
    ([".000", ".001"], ".000"),
    ([".aa", ".ab", ".ac"], ".ab"),
])
def test_split_raw_contract(tmp_path: Path, names: list[str], given: str) -> None:
    # pieces of one size, the last shorter, as every splitting tool cuts them (a set of other
    # sizes is damaged: tests/test_verify_raw.py)
    parts = [DATA[:120_000], DATA[120_000:240_000], DATA[240_000:]][: len(names)]
    if len(names) == 2:
        parts = [DATA[:150_000], DATA[150_000:]]
    for name, part in zip(names, parts, strict=True):
        (tmp_path / f"img{name}").write_bytes(part)
    with open_image(tmp_path / f"img{given}") as s:
        assert s.info.format == "split-raw"
        check_stream_contract(s, DATA)
    assert image_files(tmp_path / f"img{given}") == [tmp_path / f"img{n}" for n in names]


def test_split_raw_missing_middle(tmp_path: Path) -> None:
    for n in (".001", ".003"):
        (tmp_path / f"img{n}").write_bytes(b"x" * 512)
    with pytest.raises(MissingSegmentError, match=r"\.002"):
        open_image(tmp_path / "img.001")


@pytest.mark.parametrize("given", [".001.partial", ".003.partial"])
def test_split_raw_partial_set_is_every_partial_piece(tmp_path: Path, given: str) -> None:
    """BitWitness names raw pieces x.001.partial, ... until the acquisition finishes: any piece
    opens the whole unfinished set (only its .partial pieces), not that one file."""
    parts = [DATA[:120_000], DATA[120_000:240_000], DATA[240_000:]]
    names = [f"img.{i:03d}.partial" for i in (1, 2, 3)]
    for name, part in zip(names, parts, strict=True):
        (tmp_path / name).write_bytes(part)
    (tmp_path / "img.001").write_bytes(b"not part of the unfinished set" * 100)
    (tmp_path / "img.002").write_bytes(b"nor this")
    assert detect(tmp_path / f"img{given}").format.name == "split-raw"
    with open_image(tmp_path / f"img{given}") as s:
        assert s.info.format == "split-raw"
        assert s.info.details["piece_sizes"] == [len(p) for p in parts]
        check_stream_contract(s, DATA)
    assert image_files(tmp_path / f"img{given}") == [tmp_path / n for n in names]
    # ... and the finished-name pieces stay a set of their own
    assert image_files(tmp_path / "img.001") == [tmp_path / "img.001", tmp_path / "img.002"]


def test_split_raw_partial_missing_piece(tmp_path: Path) -> None:
    for n in (".001.partial", ".003.partial"):
        (tmp_path / f"img{n}").write_bytes(b"x" * 512)
    with pytest.raises(MissingSegmentError, match=r"\.002\.partial is missing"):
        open_image(tmp_path / "img.003.partial")


def test_unfinished_raw_is_raw_by_name(tmp_path: Path) -> None:
    (tmp_path / "img.raw.partial").write_bytes(DATA)
    detected = detect(tmp_path / "img.raw.partial")
    assert (detected.format.name, detected.by) == ("raw", "name")
    (tmp_path / ".partial").write_bytes(DATA)
    assert detect(tmp_path / ".partial").by == "fallback"


def _vhd_footer(size: int, disk_type: int) -> bytes:
    """A VHD footer built by hand from the specification (big-endian, one's complement sum)."""
    footer = bytearray(512)
    footer[0:8] = b"conectix"
    footer[8:12] = struct.pack(">I", 2)  # features: reserved bit
    footer[12:16] = struct.pack(">I", 0x00010000)  # version 1.0
    footer[16:24] = b"\xff" * 8  # data offset: none for a fixed disk
    footer[40:48] = struct.pack(">Q", size)
    footer[48:56] = struct.pack(">Q", size)
    footer[60:64] = struct.pack(">I", disk_type)
    footer[64:68] = struct.pack(">I", ~sum(footer) & 0xFFFFFFFF)
    return bytes(footer)


def test_fixed_vhd(tmp_path: Path) -> None:
    media = DATA[:262_144]
    p = tmp_path / "disk.vhd"
    p.write_bytes(media + _vhd_footer(len(media), 2))
    with open_image(p) as s:
        assert s.info.format == "vhd"
        check_stream_contract(s, media)


def test_vhd_with_a_damaged_footer_is_corrupt(tmp_path: Path) -> None:
    media = DATA[:262_144]
    footer = bytearray(_vhd_footer(len(media), 2))
    footer[40] ^= 1  # size field changed, checksum not updated
    p = tmp_path / "disk.vhd"
    p.write_bytes(media + bytes(footer))
    with pytest.raises(CorruptImageError, match="checksum"):
        open_image(p)


def test_missing_file_is_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        detect(tmp_path / "nope.E01")


def test_shared_split_raw_fixture(third_party: Path, manifest: dict) -> None:
    import hashlib

    entry = manifest["dfvfs_ext2.splitraw.000"]
    with open_image(third_party / "dfvfs_ext2.splitraw.001") as s:
        assert s.size == entry["media_size"]
        md5 = hashlib.md5(b"".join(s.iter_blocks())).hexdigest()  # noqa: S324
    assert md5 == entry["md5"]


@settings(max_examples=40, deadline=None)
@given(size=st.integers(0, 5000), off=st.integers(0, 6000), n=st.integers(0, 6000))
def test_reads_match_slicing(size: int, off: int, n: int) -> None:
    data = bytes(range(256)) * 20
    data = data[:size]
    s = BytesStream(data)
    s.seek(off)
    assert s.read(n) == data[off : off + n]
    assert s.tell() == off + len(data[off : off + n])
