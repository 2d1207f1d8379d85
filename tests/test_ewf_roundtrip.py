"""Our E01 writer against independent readers: pyewf, ewfverify, ewfinfo, and ewfacquire's layout.

Every image is written on the fly; every expected value comes from the input data (hashlib) or
from libewf's own tools, never from our reader alone.
"""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
import zlib
from datetime import UTC, datetime
from pathlib import Path

import pyewf
import pytest
from conftest import make_disk_bytes, require_tool
from contract import check_stream_contract
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bitwitness.errors import OutputExistsError, UsageError
from bitwitness.ewf import (
    Compression,
    EwfMetadata,
    EwfWriter,
    MediaType,
    encode_chunk,
    open_ewf,
    segment_path,
)
from bitwitness.ewf import structures as sx
from bitwitness.image import open_image

META = EwfMetadata(case_number="C-2026/17", evidence_number="EV1", description="Laptop disk",
                   examiner="Zoë Müller", notes="seized € 12", model="WDC WD10", serial="S3R1AL",
                   acquired=datetime(2026, 11, 25, 10, 30, 5, tzinfo=UTC))


def md5hex(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def sha1hex(data: bytes) -> str:
    return hashlib.sha1(data, usedforsecurity=False).hexdigest()


def write_e01(base: Path, data: bytes, **kwargs: object) -> list[Path]:
    with EwfWriter(base, media_size=len(data), metadata=kwargs.pop("metadata", META),
                   **kwargs) as w:  # type: ignore[arg-type]
        w.write(data)
        result = w.close(md5=md5hex(data), sha1=sha1hex(data))
    return list(result.segments)


def pyewf_read(first: Path) -> tuple[bytes, pyewf.handle]:
    handle = pyewf.handle()
    handle.open(pyewf.glob(str(first)))
    return handle.read_buffer(handle.get_media_size()), handle


def ewfverify_ok(first: Path) -> bool:
    proc = subprocess.run(["ewfverify", "-q", "-d", "sha1", str(first)], capture_output=True,
                          text=True, check=False)
    return proc.returncode == 0 and "ewfverify: SUCCESS" in proc.stdout


def section_types(path: Path) -> list[str]:
    data = path.read_bytes()
    offset, types = sx.FILE_HEADER_SIZE, []
    while True:
        desc = sx.unpack_descriptor(data[offset:offset + sx.DESCRIPTOR_SIZE], offset)
        types.append(desc.type)
        if desc.next == offset:
            assert offset + sx.DESCRIPTOR_SIZE == len(data), "bytes after the terminal section"
            return types
        offset = desc.next


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    bps=st.sampled_from([512, 4096]),
    compression=st.sampled_from(list(Compression)),
    shape=st.sampled_from(["sector", "chunk-1", "chunk+1", "chunks", "segments"]),
    seed=st.integers(0, 1000),
)
def test_round_trip_against_pyewf_and_ewfverify(tmp_path_factory: pytest.TempPathFactory,
                                                bps: int, compression: Compression,
                                                shape: str, seed: int) -> None:
    require_tool("ewfverify")
    chunk = 64 * bps
    sectors = {"sector": 1, "chunk-1": 63, "chunk+1": 65, "chunks": 64 * 5 + 3,
               "segments": (3 << 20) // bps + 7}[shape]
    data = make_disk_bytes(sectors * bps, seed)
    if shape == "segments":
        # Every other chunk random, so that the set spans segments whatever the compression
        # does with the rest (some seeds' disk-like data compresses below one segment).
        noise = random.Random(seed).randbytes(len(data))
        data = b"".join(noise[i:i + chunk] if (i // chunk) % 2 else data[i:i + chunk]
                        for i in range(0, len(data), chunk))
    base = tmp_path_factory.mktemp("rt") / "img"
    segments = write_e01(base, data, bytes_per_sector=bps, compression=compression,
                         segment_size=1 << 20)
    if shape == "segments":
        assert len(segments) >= 2
    assert segments == [segment_path(base, i + 1) for i in range(len(segments))]
    with open_ewf(segments[-1]) as img:
        assert img.size == len(data)
        assert img.read() == data
        assert b"".join(b.data for b in img.scan(workers=2)) == data
        assert img.chunk_count == -(-len(data) // chunk)
    theirs, handle = pyewf_read(segments[0])
    assert theirs == data
    assert handle.get_bytes_per_sector() == bps
    assert handle.get_hash_value("MD5") == md5hex(data)
    assert ewfverify_ok(segments[0])


def test_stream_contract_and_registry(tmp_path: Path) -> None:
    data = make_disk_bytes(300_000 - 300_000 % 512, 5)
    segments = write_e01(tmp_path / "c", data)
    with open_image(segments[0]) as img:
        check_stream_contract(img, data)
        assert img.info.format == "ewf"
        assert img.info.files == (segments[0],)


def test_ewfinfo_shows_our_case_fields_and_hashes(tmp_path: Path) -> None:
    require_tool("ewfinfo")
    data = make_disk_bytes(200 * 512, 2)
    first = write_e01(tmp_path / "meta", data, media_type=MediaType.REMOVABLE, physical=False)[0]
    out = subprocess.run(["ewfinfo", str(first)], capture_output=True, text=True,
                         check=True).stdout
    for line in ("Case number:\t\tC-2026/17", "Evidence number:\tEV1",
                 "Description:\t\tLaptop disk", "Examiner name:\t\tZoë Müller",
                 "Notes:\t\t\tseized € 12", "File format:\t\tEnCase 6",
                 f"MD5:\t\t\t{md5hex(data)}",
                 f"SHA1:\t\t\t{sha1hex(data)}",
                 "Media type:\t\tremovable disk", "Is physical:\t\tno",
                 "Number of sectors:\t200"):
        assert line in out, line
    _, handle = pyewf_read(first)
    with open_ewf(first) as img:
        for name in ("case_number", "evidence_number", "description", "examiner_name", "notes",
                     "model", "serial_number", "acquiry_software_version",
                     "acquiry_operating_system"):
            assert img.header_values[name] == handle.get_header_value(name), name
        assert img.stored_hashes == {"md5": md5hex(data),
                                     "sha1": sha1hex(data)}
        assert f"Set identifier:\t\t{img.guid}" in out
        assert img.guid != "00000000-0000-0000-0000-000000000000"
        assert img.media_type == "removable"
        assert not img.physical
        assert img.format_name == "encase6"
        assert img.acquired == META.acquired


def test_layout_matches_ewfacquire(tmp_path: Path) -> None:
    """Same input, same options: the same sections in the same order, and similar segment cuts."""
    require_tool("ewfacquire")
    data = make_disk_bytes((5 << 20) + 7 * 512, 9)
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    for mode, ours in (("fast", Compression.FAST), ("none", Compression.NONE)):
        subprocess.run(["ewfacquire", "-u", "-q", "-t", str(tmp_path / f"peer-{mode}"),
                        "-c", f"deflate:{mode}", "-d", "sha1", "-S", "1048576", str(src)],
                       capture_output=True, check=True)
        peer = sorted(tmp_path.glob(f"peer-{mode}.E*"))
        mine = write_e01(tmp_path / f"ours-{mode}", data, compression=ours,
                         segment_size=1 << 20)
        assert len(mine) == len(peer)
        for a, b in zip(mine, peer, strict=True):
            assert section_types(a) == section_types(b)
            assert abs(a.stat().st_size - b.stat().st_size) < 2048 or mode == "fast"


def test_single_segment_sections_and_error2(tmp_path: Path) -> None:
    require_tool("ewfinfo")
    data = make_disk_bytes(2000 * 512, 4)
    base = tmp_path / "err"
    with EwfWriter(base, media_size=len(data), metadata=META,
                   compression=Compression.BEST) as w:
        for i in range(0, len(data), w.chunk_size):
            w.write_encoded(encode_chunk(data[i:i + w.chunk_size], Compression.BEST))
        w.close(md5=md5hex(data), sha1=sha1hex(data),
                errors=[(1000, 8), (100, 64), (164, 2)])
    first = segment_path(base, 1)
    assert section_types(first) == ["header2", "header2", "header", "volume", "sectors",
                                    "table", "table2", "data", "error2", "digest", "hash",
                                    "done"]
    out = subprocess.run(["ewfinfo", str(first)], capture_output=True, text=True,
                         check=True).stdout
    assert "100 - 165" in out
    assert "1000 - 1007" in out
    with open_ewf(first) as img:
        assert img.error_ranges == [(100, 66), (1000, 8)]
        assert img.compression == "best"


def test_streaming_unknown_size_patches_volume(tmp_path: Path) -> None:
    data = make_disk_bytes(3 << 20, 6)
    base = tmp_path / "stream"
    with EwfWriter(base, media_size=None, metadata=META, segment_size=1 << 20) as w:
        for i in range(0, len(data), 100_000 - 100_000 % 512):
            w.write(data[i:i + 100_000 - 100_000 % 512])
        result = w.close(md5=md5hex(data), sha1=sha1hex(data))
    assert result.media_size == len(data)
    theirs, handle = pyewf_read(result.segments[0])
    assert theirs == data
    assert handle.get_number_of_sectors() == len(data) // 512
    assert ewfverify_ok(result.segments[0])


def test_segment_names() -> None:
    base = Path("x")
    names = {n: segment_path(base, n).suffix for n in (1, 99, 100, 101, 125, 126, 775, 776,
                                                       14971)}
    assert names == {1: ".E01", 99: ".E99", 100: ".EAA", 101: ".EAB", 125: ".EAZ",
                     126: ".EBA", 775: ".EZZ", 776: ".FAA", 14971: ".ZZZ"}
    assert segment_path(Path("d/x.E01"), 2) == Path("d/x.E02")
    with pytest.raises(UsageError, match="segment size"):
        segment_path(base, 14972)


def test_refusals(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="empty"):
        EwfWriter(tmp_path / "z", media_size=0, metadata=META)
    with pytest.raises(UsageError, match="whole number"):
        EwfWriter(tmp_path / "z", media_size=1000, metadata=META)
    with pytest.raises(UsageError, match="1 MiB"):
        EwfWriter(tmp_path / "z", media_size=512, metadata=META, segment_size=1000)
    w = EwfWriter(tmp_path / "z", media_size=None, metadata=META)
    with pytest.raises(UsageError, match="empty"):
        w.close(md5="0" * 32, sha1="0" * 40)
    assert not segment_path(tmp_path / "z", 1).exists()
    data = bytes(512 * 4)
    first = write_e01(tmp_path / "o", data)[0]
    before = first.read_bytes()
    with pytest.raises(OutputExistsError):
        EwfWriter(tmp_path / "o", media_size=len(data), metadata=META)
    assert first.read_bytes() == before
    write_e01(tmp_path / "o", data + data, overwrite=True)
    with open_ewf(first) as img:
        assert img.size == 2 * len(data)


def test_chunk_encoding_rules() -> None:
    zeros, noise = bytes(32768), make_disk_bytes(32768, 1)
    random_chunk = os.urandom(32768)
    assert encode_chunk(zeros, Compression.EMPTY).compressed
    assert not encode_chunk(noise, Compression.EMPTY).compressed
    assert not encode_chunk(zeros, Compression.NONE).compressed
    stored = encode_chunk(random_chunk, Compression.FAST)
    assert not stored.compressed
    assert stored.payload[-4:] == (zlib.adler32(random_chunk)).to_bytes(4, "little")
    best = encode_chunk(noise, Compression.BEST)
    assert best.compressed
    assert zlib.decompress(best.payload) == noise


def test_many_groups_and_segments(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Small tables force several sectors/table/table2 groups per segment (as >65 534 chunks
    would); libewf must read them, and our reader must find chunks across groups and files
    even with a single cached file descriptor, a single group's entries cached and parallel
    decoding."""
    require_tool("ewfverify")
    monkeypatch.setattr(sx, "MAX_TABLE_ENTRIES", 10)
    monkeypatch.setattr("bitwitness.ewf.reader.MAX_OPEN_FILES", 1)
    monkeypatch.setattr("bitwitness.ewf.reader.ENTRY_CACHE", 1)  # one group's entries at a time
    data = make_disk_bytes((3 << 20) + 5 * 512, 17)
    segments = write_e01(tmp_path / "groups", data, compression=Compression.EMPTY,
                         segment_size=1 << 20)
    assert len(segments) >= 3
    types = section_types(segments[1])
    assert types.count("sectors") >= 2
    assert types[:4] == ["data", "sectors", "table", "table2"]
    assert pyewf_read(segments[0])[0] == data
    assert ewfverify_ok(segments[0])
    with open_ewf(segments[0]) as img:
        assert b"".join(b.data for b in img.scan(workers=3)) == data
        check_stream_contract(img, data)
