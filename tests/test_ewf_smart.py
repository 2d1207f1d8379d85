"""SMART (EWF-S01, ``.s01``) read by our own EWF reader, with libewf as the independent second.

Every set is written by ``ewfacquire -f smart`` (libewf-tools) from media made here; what our
reader gives is judged against md5sum of the source, against ``ewfexport`` (the set exported to
raw by libewf's own tool) and against pyewf, and ``verify --second-reader`` must show libewf's pass
agreeing. A changed byte inside a chunk must be caught by our reader (the chunk's zlib
Adler-32), by libewf's pass (the stored MD5 no longer matches) and by ``ewfverify``.
docs/EWF.md §12 describes the layout these tests hold the reader to.
"""

from __future__ import annotations

import hashlib
import random
import re
import struct
import subprocess
from pathlib import Path

import pytest
from conftest import pyewf_media, require_tool, run_bitwitness, snapshot
from test_verify_logs import tool_hash

from bitwitness.errors import CorruptImageError, IncompleteImageError, MissingSegmentError
from bitwitness.ewf import open_ewf
from bitwitness.ewf import structures as st
from bitwitness.ewf.naming import SMART, family, segment_path, segment_suffix, suffix_number
from bitwitness.ewf.reader import EwfImage
from bitwitness.image import open_image

MIB = 1 << 20


def _media(size: int, seed: int) -> bytes:
    """Random stretches (they do not compress, so small segments fill), text and zeros."""
    rng = random.Random(seed)
    out = bytearray()
    while len(out) < size:
        kind = rng.randrange(3)
        run = rng.randrange(1, 40_000)
        if kind == 0:
            out += rng.randbytes(run)
        elif kind == 1:
            out += (b"evidence %d " % rng.randrange(10**6)) * (run // 16 + 1)
        else:
            out += bytes(run)
    return bytes(out[:size])


def smart(source: Path, target: Path, *options: str) -> list[Path]:
    """``ewfacquire -f smart`` unattended; the segment files it wrote, in order."""
    require_tool("ewfacquire")
    subprocess.run(["ewfacquire", "-u", "-q", "-f", "smart", "-t", str(target), "-C", "case 12",
                    "-e", "examiner", *options, str(source)], capture_output=True, check=True)
    return sorted(target.parent.glob(target.name + ".s*"))


def ewfexport_raw(first: Path, out: Path) -> bytes:
    """The media as libewf's own ``ewfexport`` writes it to a raw file."""
    require_tool("ewfexport")
    subprocess.run(["ewfexport", "-u", "-q", "-f", "raw", "-t", str(out), str(first)],
                   capture_output=True, check=True)
    return out.with_suffix(".raw").read_bytes()


#: (options, media size): compressed and not, one and several segments (1 MiB, ewfacquire's
#: smallest), odd sizes (not a whole chunk; 4096-byte sectors), small and large chunks.
CASES = [
    (("-c", "none"), 300 * 512 + 3 * 512),
    (("-c", "fast", "-S", "1MiB"), 3 * MIB + 7 * 512),
    (("-c", "none", "-S", "1MiB", "-b", "16"), 2 * MIB + 5 * 512),
    (("-c", "best", "-b", "128"), MIB + 512),
    (("-c", "empty-block", "-b", "256"), 700 * 512),
    (("-c", "fast", "-P", "4096"), 97 * 4096),
]


@pytest.mark.parametrize(("options", "size"), CASES, ids=[" ".join(o) for o, _ in CASES])
def test_smart_sets_read_by_ours_equal_libewf_and_the_source(
        tmp_path: Path, options: tuple[str, ...], size: int) -> None:
    data = _media(size, seed=size)
    source = tmp_path / "media.raw"
    source.write_bytes(data)
    segments = smart(source, tmp_path / "sm", *options)
    assert segments[0].name == "sm.s01"
    if "-S" in options:
        assert len(segments) > 1, "a 1 MiB segment size must give several segments"
    before = snapshot(segments)
    with open_image(segments[-1]) as img:  # any segment names the set
        assert isinstance(img, EwfImage), type(img)  # our reader, not pyewf
        assert img.smart
        assert img.format_name == "smart"
        assert img.segments == segments
        ours = img.read()
        assert img.size == len(data)
        assert img.sector_size == (4096 if "-P" in options else 512)
        assert img.stored_hashes == {"md5": tool_hash("md5sum", source)[0]}
        assert img.compression == {"none": "none", "empty-block": "none", "fast": "fast",
                                   "best": "best"}[options[1]]
    assert hashlib.md5(ours, usedforsecurity=False).hexdigest() == tool_hash("md5sum", source)[0]
    assert ours == data
    assert ours == pyewf_media(segments[0])
    assert ours == ewfexport_raw(segments[0], tmp_path / "exported")

    r = run_bitwitness("verify", "--second-reader", segments[0], "--json")
    assert r.exit_code == 0, r.stdout + r.stderr
    doc = r.json()["images"][0]
    assert doc["verdict"] == "VERIFIED"
    assert doc["format"] == "ewf"  # ours; "ewf (read by libewf)" when pyewf is first
    assert doc["computed"]["md5"] == tool_hash("md5sum", source)[0]
    assert doc["libewf"]["agree"] is True, doc["libewf"]
    assert doc["libewf"]["hashes"]["md5"] == tool_hash("md5sum", source)[0]
    assert doc["libewf"]["media_size"] == len(data)
    assert snapshot(segments) == before


def _chunk_offsets(segment: Path) -> list[tuple[int, int]]:
    """(start, end) file offsets of every chunk of a SMART segment, from its table sections."""
    raw = segment.read_bytes()
    spans = []
    offset = st.FILE_HEADER_SIZE
    while True:
        desc = st.unpack_descriptor(raw[offset:offset + st.DESCRIPTOR_SIZE], offset)
        if desc.type == "table":
            count = struct.unpack_from("<I", raw, desc.body_offset)[0]
            starts = [struct.unpack_from("<I", raw, desc.body_offset + 24 + 4 * i)[0]
                      & st.OFFSET_MASK for i in range(count)]
            spans += list(zip(starts, [*starts[1:], desc.next], strict=True))
        if desc.type in st.TERMINAL_SECTIONS:
            return spans
        offset = desc.next


@pytest.mark.parametrize("compression", ["none", "fast"])
def test_a_changed_chunk_byte_is_caught_by_both_readers(tmp_path: Path,
                                                         compression: str) -> None:
    """One byte changed in the middle of a chunk of the second segment: our reader reports that
    chunk's sectors as bad (its zlib stream fails its Adler-32), libewf's pass disagrees with
    ours and its hash differs from the stored MD5, and ewfverify fails the set too."""
    require_tool("ewfverify")
    data = _media(2 * MIB + 512, seed=7)
    source = tmp_path / "media.raw"
    source.write_bytes(data)
    segments = smart(source, tmp_path / "sm", "-c", compression, "-S", "1MiB")
    assert len(segments) >= 2
    start, end = _chunk_offsets(segments[1])[3]
    flipped = bytearray(segments[1].read_bytes())
    flipped[(start + end) // 2] ^= 0x20
    segments[1].write_bytes(bytes(flipped))

    r = run_bitwitness("verify", "--second-reader", segments[0], "--json")
    assert r.exit_code == 1
    doc = r.json()["images"][0]
    assert doc["verdict"] == "CORRUPT"
    (bad,) = doc["bad_chunks"]
    assert bad["segment"].endswith("sm.s02")
    assert bad["file_offset"] == start
    libewf = doc["libewf"]
    assert libewf["agree"] is False
    assert libewf["hashes"]["md5"] != tool_hash("md5sum", source)[0]
    assert libewf["stored_hashes"]["md5"] == tool_hash("md5sum", source)[0]
    assert any("readers disagree" in p for p in doc["problems"]), doc["problems"]
    out = subprocess.run(["ewfverify", "-q", str(segments[0])], capture_output=True, text=True,
                         check=False)
    assert out.returncode != 0
    with open_ewf(segments[0]) as img, pytest.raises(CorruptImageError, match="chunk"):
        img.read()


def test_missing_and_unfinished_segments(tmp_path: Path) -> None:
    data = _media(3 * MIB, seed=3)
    source = tmp_path / "media.raw"
    source.write_bytes(data)
    segments = smart(source, tmp_path / "sm", "-c", "fast", "-S", "1MiB")
    assert len(segments) >= 3
    last = segments[-1].read_bytes()
    segments[-1].write_bytes(last[:-76])  # the done section gone: never finished
    with pytest.raises(IncompleteImageError):
        open_ewf(segments[0])
    with open_ewf(segments[0], allow_incomplete=True) as img:
        assert not img.complete
    segments[-1].write_bytes(last)
    segments[1].unlink()
    with pytest.raises(MissingSegmentError, match=r"sm\.s02"):
        open_ewf(segments[0])


def _one_segment(tmp_path: Path) -> bytearray:
    source = tmp_path / "media.raw"
    source.write_bytes(_media(100 * 512, seed=11))
    (segment,) = smart(source, tmp_path / "sm", "-c", "fast", "-b", "16")
    return bytearray(segment.read_bytes())


def _section(raw: bytearray, kind: str) -> st.Descriptor:
    offset = st.FILE_HEADER_SIZE
    while True:
        desc = st.unpack_descriptor(bytes(raw[offset:offset + st.DESCRIPTOR_SIZE]), offset)
        if desc.type == kind:
            return desc
        offset = desc.next


def test_damaged_smart_structures_are_typed_errors(tmp_path: Path) -> None:
    """No table2 to fall back on: a table that claims more entries than its section holds, or
    whose header fails its checksum, and a volume failing its checksum, are corruption naming
    the offset; a SMART volume after a table (no writer does that) too."""
    raw = _one_segment(tmp_path)
    path = tmp_path / "x.s01"
    table = _section(raw, "table")
    volume = _section(raw, "volume")

    bad = bytearray(raw)
    struct.pack_into("<I", bad, table.body_offset, 1 << 20)
    struct.pack_into("<I", bad, table.body_offset + 20, st.adler32(bad[table.body_offset:
                                                                       table.body_offset + 20]))
    path.write_bytes(bad)
    with pytest.raises(CorruptImageError, match="entries") as info:
        open_ewf(path)
    assert info.value.offset == table.offset

    bad = bytearray(raw)
    bad[table.body_offset] ^= 1
    path.write_bytes(bad)
    with pytest.raises(CorruptImageError, match="checksum"):
        open_ewf(path)

    bad = bytearray(raw)
    bad[volume.body_offset + 4] ^= 1
    path.write_bytes(bad)
    with pytest.raises(CorruptImageError, match="volume section fails its Adler-32") as info:
        open_ewf(path)
    assert info.value.offset == volume.offset


def test_smart_segment_names() -> None:
    """ewfacquire names SMART segments .s01 .. .s99, then .saa (checked once by hand with 106
    1 MiB segments); libewf goes on to .zzz."""
    names = {n: segment_suffix(n, SMART) for n in (1, 99, 100, 101, 126, 775, 776, 5507)}
    assert names == {1: ".s01", 99: ".s99", 100: ".saa", 101: ".sab", 126: ".sba",
                     775: ".szz", 776: ".taa", 5507: ".zzz"}
    assert all(suffix_number(s, SMART) == n for n, s in names.items())
    assert suffix_number(".s02") is None  # not an E01 name
    assert family(Path("x.s07")) == SMART
    assert segment_path(Path("d/x.s01"), 100, SMART) == Path("d/x.saa")
    assert segment_path(Path("d/x.S01"), 2, SMART) == Path("d/x.S02")


def test_info_agrees_with_ewfinfo(tmp_path: Path) -> None:
    """What ``info`` shows of a SMART set against ``ewfinfo`` (libewf-tools): geometry, media
    size, stored MD5, media type and physical flag (libewf's defaults: SMART stores neither). No
    set identifier (SMART has none). Compression differs on purpose: ewfinfo 20140813 says "no
    compression" (it reads the level from the volume section, where SMART has none); ours is
    the header's ``r`` letter, here ``f``."""
    require_tool("ewfinfo")
    source = tmp_path / "media.raw"
    source.write_bytes(_media(MIB + 3 * 512, seed=5))
    segments = smart(source, tmp_path / "sm", "-c", "fast", "-b", "32")
    theirs = subprocess.run(["ewfinfo", str(segments[0])], capture_output=True, text=True,
                            check=True).stdout
    field = dict(re.findall(r"^\t([^:\t]+):\t+(.*)$", theirs, re.MULTILINE))
    r = run_bitwitness("info", "--json", segments[0])
    assert r.exit_code == 0, r.stderr
    doc = r.json()
    ewf = doc["ewf"]
    assert int(field["Sectors per chunk"]) == ewf["sectors_per_chunk"] == 32
    assert int(field["Bytes per sector"]) == ewf["bytes_per_sector"] == doc["sector_size"]
    assert int(field["Number of sectors"]) == doc["sectors"]
    assert f"({doc['media_size']} bytes)" in field["Media size"]
    assert field["MD5"] == doc["stored_hashes"]["md5"] == tool_hash("md5sum", source)[0]
    assert field["Media type"] == "removable disk"
    assert ewf["media_type"] == "removable"
    assert field["Is physical"] == "no"
    assert ewf["physical"] is False
    assert "guid" not in ewf
    assert ewf["format_name"] == "smart"
    assert ewf["compression"] == "fast"
    assert field["Compression level"] == "no compression"
