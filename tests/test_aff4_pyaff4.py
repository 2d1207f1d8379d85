"""pyaff4 0.34, the AFF4 reference implementation, against our AFF4 reader, both ways.

* pyaff4 as the **writer**: volumes made by pyaff4's own classes (tests/builders/
  pyaff4_writer.py) holding a FAT12 or ext2 file system made by mkfs/mtools/debugfs; our
  ``info``/``verify`` must give ``md5sum``/``sha1sum`` of the file system image, ``ls -r --all``
  must print what TSK's ``fls -r -p`` prints for the file system image itself, and ``cat`` the
  bytes mtools copied in.
* pyaff4 as the **second reader** (``verify --second-reader``): it must agree on those volumes
  and on every variant of our committed test writer that it implements (so our writer is
  checked against an independent reader), say in a note why it cannot read the others, and its
  disagreement must surface when our reader produces wrong bytes or the volume is damaged.

Known limits of pyaff4 0.34 these tests pin down: it writes LZ4 chunks with python-lz4's
4-byte size prefix and then cannot read them (current lz4 takes a given size to mean "no
prefix"); it decodes no deflate chunks; it fills map gaps with zeros and sizes a map by its last
run; its map writer records no ``aff4:size``.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

import fsimages
import pytest
from builders.aff4_writer import build_aff4
from builders.pyaff4_writer import COMPRESSIONS, Pyaff4Written, write_with_pyaff4
from conftest import CliResult, require_tool, run_bitwitness
from test_aff4 import VARIANTS, _media
from test_browse_parity import _bitwitness

from bitwitness.errors import ExitCode

KiB = 1024
SECTOR = 512


def _fat(tmp_path: Path) -> Path:
    try:
        return fsimages.fat(tmp_path / "fat12.raw", 12)
    except fsimages.Unavailable as exc:
        pytest.skip(str(exc))


def _ext2(tmp_path: Path) -> Path:
    try:
        return fsimages.ext(tmp_path / "ext2.raw", "ext2")
    except fsimages.Unavailable as exc:
        pytest.skip(str(exc))


def _sum(tool: str, path: Path) -> str:
    return subprocess.run([tool, str(path)], capture_output=True, text=True,
                          check=True).stdout.split()[0]


def _verify(path: Path, *extra: str) -> tuple[CliResult, dict[str, Any]]:
    res = run_bitwitness("verify", path, "--json", *extra)
    return res, res.json()["images"][0]


def _listing_matches_fls(volume: Path, source: Path) -> None:
    ours = run_bitwitness("ls", volume, "-r", "--all")
    assert ours.exit_code == ExitCode.OK, ours.stderr
    fls = subprocess.run(["fls", "-r", "-p", str(source)], capture_output=True, check=True)
    theirs = Counter(fls.stdout.decode("utf-8", "surrogateescape").splitlines())
    assert Counter(ours.stdout.splitlines()) == theirs


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def _zero_blocks(media: bytes, block: int) -> list[int]:
    return [at for at in range(0, len(media) - block + 1, block)
            if not any(media[at:at + block])]


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_pyaff4_writes_a_fat_volume_that_we_read(tmp_path: Path, pyaff4: Any,
                                                compression: str) -> None:
    require_tool("md5sum", "sha1sum", "fls")
    source = _fat(tmp_path)
    written = write_with_pyaff4(tmp_path / "disk.aff4", source.read_bytes(),
                                compression=compression, chunk_size=4096, chunks_in_segment=16)
    md5, sha1 = _sum("md5sum", source), _sum("sha1sum", source)
    info = run_bitwitness("info", written.path, "--json")
    assert info.exit_code == ExitCode.OK, info.stderr
    doc = info.json()
    assert doc["format"] == "aff4"
    assert doc["media_size"] == source.stat().st_size
    assert doc["stored_hashes"] == {"md5": md5, "sha1": sha1}
    assert doc["details"]["compression"] == compression
    assert doc["details"]["tool"] == "pyaff4"
    assert doc["details"]["image_urn"] == written.image
    assert doc["details"]["map"] == written.map
    res, image = _verify(written.path)
    assert res.exit_code == ExitCode.OK, image["problems"]
    assert image["verdict"] == "VERIFIED"
    assert image["computed"]["md5"] == md5
    assert image["computed"]["sha1"] == sha1
    _listing_matches_fls(written.path, source)
    for name, data in fsimages.FAT_FILES.items():
        if name != "/docs/gone.txt":  # deleted by the builder
            cat = _bitwitness("cat", written.path, name)
            assert (cat.returncode, cat.stdout) == (0, data), (name, cat.stderr)
    res, image = _verify(written.path, "--second-reader")
    second = image["second_reader"]
    if compression == "lz4":
        # pyaff4 wrote lz4.block.compress(chunk) (a 4-byte size prefix, then the block) and
        # reads with lz4.block.decompress(chunk, chunk_size), which takes no prefix: its
        # decoder raises, which is pyaff4's limit (a note), not a disagreement
        assert second is None, second
        assert any("no second reader for this AFF4 image: pyaff4 0.34 cannot decode the LZ4 "
                   "chunk at media offset 0" in n and "LZ4BlockError" in n
                   for n in image["notes"]), image["notes"]
        assert image["verdict"] == "VERIFIED"
        assert res.exit_code == ExitCode.OK
    else:
        assert second is not None, image["notes"]
        assert second["reader"] == "pyaff4 0.34"
        assert second["agree"], second
        assert second["hashes"]["md5"] == md5
        assert second["media_size"] == source.stat().st_size
        assert image["verdict"] == "VERIFIED"
        assert res.exit_code == ExitCode.OK


def _ext2_with_holes(tmp_path: Path) -> tuple[Path, bytes, tuple[tuple[int, int], ...]]:
    """ext2 and two zero ranges inside it (not at its end) for the map to leave out."""
    source = _ext2(tmp_path)
    media = source.read_bytes()
    zeros = _zero_blocks(media, 64 * KiB)
    inner = [z for z in zeros if z + 64 * KiB < len(media) - 64 * KiB]
    assert len(inner) >= 4, "mkfs.ext2 left fewer zero blocks than expected"
    holes = ((inner[1], inner[1] + 64 * KiB), (inner[-2], inner[-2] + 64 * KiB))
    return source, media, holes


@pytest.mark.parametrize("compression", ["zlib", "snappy", "stored"])
def test_pyaff4_scattered_map_with_holes(tmp_path: Path, pyaff4: Any, compression: str) -> None:
    """pyaff4 writes the pieces through its map in a shuffled order (its map entries come out
    in interval-tree order; uncompressed data lands in a plain ZIP segment), leaving two
    holes that read as zeros."""
    require_tool("md5sum", "fls")
    source, media, holes = _ext2_with_holes(tmp_path)
    written = write_with_pyaff4(tmp_path / "disk.aff4", media, compression=compression,
                                layout="scattered", holes=holes, chunk_size=8192,
                                chunks_in_segment=32, piece=300 * KiB + 512)
    md5 = _sum("md5sum", source)
    res, image = _verify(written.path, "--second-reader")
    assert res.exit_code == ExitCode.OK, (image["problems"], image["notes"])
    assert image["verdict"] == "VERIFIED"
    assert image["computed"]["md5"] == image["stored"]["md5"] == md5
    second = image["second_reader"]
    assert second["agree"], second
    assert second["hashes"]["md5"] == md5
    details = run_bitwitness("info", written.path, "--json").json()["details"]
    assert details["map_runs"] > 3  # shuffled pieces and holes: many runs
    _listing_matches_fls(written.path, source)
    cat = _bitwitness("cat", written.path, "/home/ana/projects/big.bin")
    assert (cat.returncode, cat.stdout) == (0, bytes(range(256)) * 1500), cat.stderr


def test_pyaff4_maps_runs_to_symbolic_streams(tmp_path: Path, pyaff4: Any) -> None:
    """Runs of 0xFF and of zeros mapped to aff4:SymbolicStreamFF and aff4:Zero (a map with
    three targets, two of them symbolic), read alike by both readers."""
    media = bytearray(os.urandom(256 * KiB))
    media[40 * KiB:104 * KiB] = b"\xff" * (64 * KiB)
    media[150 * KiB:170 * KiB] = bytes(20 * KiB)
    ranges = ((40 * KiB, 104 * KiB), (150 * KiB, 170 * KiB))
    written = write_with_pyaff4(
        tmp_path / "disk.aff4", bytes(media), compression="snappy", layout="scattered",
        holes=ranges, symbolic=((*ranges[0], "SymbolicStreamFF"), (*ranges[1], "Zero")))
    res, image = _verify(written.path, "--second-reader")
    assert res.exit_code == ExitCode.OK, (image["problems"], image["notes"])
    assert image["computed"]["md5"] == _md5(bytes(media))
    assert image["second_reader"]["agree"], image["second_reader"]
    with zipfile.ZipFile(written.path) as zf:
        targets = zf.read("image/map/idx").decode().split("\n")
    assert sorted(t.rpartition("#")[2] for t in targets if "#" in t) == \
        ["SymbolicStreamFF", "Zero"]


def test_a_map_ending_in_a_hole_has_no_second_reader_and_says_why(tmp_path: Path,
                                                                  pyaff4: Any) -> None:
    media = os.urandom(200 * KiB) + bytes(56 * KiB)
    written = write_with_pyaff4(tmp_path / "disk.aff4", media, layout="scattered",
                                holes=((200 * KiB, 256 * KiB),))
    res, image = _verify(written.path, "--second-reader")
    assert res.exit_code == ExitCode.OK, image["problems"]
    assert image["computed"]["md5"] == _md5(media)
    assert image["second_reader"] is None
    assert any("sizes a map by its last run" in n for n in image["notes"]), image["notes"]


def _linear(tmp_path: Path, compression: str) -> tuple[Pyaff4Written, bytes]:
    media = _media()
    return write_with_pyaff4(tmp_path / "disk.aff4", media, compression=compression,
                             chunk_size=4096, chunks_in_segment=8), media


def _flip_a_bit_of_chunk_5(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fault in our chunk decoder: one bit of chunk 5 comes out flipped."""
    from bitwitness.images import aff4_streams

    decode = aff4_streams.ImageStreamReader._decode

    def wrong(self: aff4_streams.ImageStreamReader, number: int) -> bytes:
        data = decode(self, number)
        return data[:10] + bytes([data[10] ^ 1]) + data[11:] if number == 5 else data

    monkeypatch.setattr(aff4_streams.ImageStreamReader, "_decode", wrong)


def test_the_second_reader_disagrees_when_our_reader_is_wrong(
        tmp_path: Path, pyaff4: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fault put into our chunk decoder (one bit of chunk 5): pyaff4, in its own process,
    reads the true bytes, and ``verify`` reports the readers' difference."""
    written, media = _linear(tmp_path, "zlib")
    _flip_a_bit_of_chunk_5(monkeypatch)
    res, image = _verify(written.path, "--second-reader")
    assert res.exit_code == ExitCode.EVIDENCE
    assert image["verdict"] == "MISMATCH"
    second = image["second_reader"]
    assert not second["agree"]
    assert second["hashes"]["md5"] == _md5(media)
    assert any("readers disagree: computed md5" in p for p in image["problems"]), \
        image["problems"]


def test_lz4_bytes_that_differ_stay_a_mismatch(tmp_path: Path, pyaff4: Any,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Only pyaff4's LZ4 decoder raising is its limit (a note): LZ4 chunks it decodes (our
    writer's, without a size prefix) into bytes other than ours are a MISMATCH."""
    media = _media()
    written = build_aff4(tmp_path / "disk.aff4", media, compression="lz4")
    _flip_a_bit_of_chunk_5(monkeypatch)
    res, image = _verify(written.path, "--second-reader")
    assert res.exit_code == ExitCode.EVIDENCE
    assert image["verdict"] == "MISMATCH"
    second = image["second_reader"]
    assert not second["agree"]
    assert second["hashes"]["md5"] == _md5(media)
    assert not any("no second reader" in n for n in image["notes"]), image["notes"]


def test_a_damaged_chunk_fails_both_readers_each_saying_why(tmp_path: Path,
                                                            pyaff4: Any) -> None:
    """``verify`` stops at the first damage our reader finds (CORRUPT, with where); pyaff4,
    asked for the same media, fails too, and its reason is kept."""
    from bitwitness.errors import CorruptImageError
    from bitwitness.images.aff4_pyaff4 import Pyaff4Stream

    written, _media_bytes = _linear(tmp_path, "zlib")
    offset, length = _bevy_index(written.path, "image/data/00000000.index")[6]
    assert length < 4096  # chunk 6: in the text, zlib-compressed
    at = _member_data_offset(written.path, "image/data/00000000") + offset
    data = bytearray(written.path.read_bytes())
    data[at + 2:at + 10] = b"\xff" * 8  # after the zlib header: a reserved block type
    written.path.write_bytes(bytes(data))
    res, image = _verify(written.path, "--second-reader")
    assert res.exit_code == ExitCode.EVIDENCE
    assert image["verdict"] == "CORRUPT"
    assert any(f"media offset {6 * 4096}" in p for p in image["problems"]), image["problems"]
    with Pyaff4Stream(written.path, written.map) as theirs, \
            pytest.raises(CorruptImageError, match="while decompressing") as failed:
        theirs.read()
    assert "pyaff4 stopped at media offset" in str(failed.value)


def test_a_changed_stored_chunk_is_read_alike_by_both(tmp_path: Path, pyaff4: Any) -> None:
    """A flipped byte in an uncompressed chunk: both readers read the changed media (they
    agree), and the stored MD5 no longer matches it."""
    written, media = _linear(tmp_path, "stored")
    at = _member_data_offset(written.path, "image/data/00000000") + 2 * 4096 + 100
    data = bytearray(written.path.read_bytes())
    data[at] ^= 0x01
    written.path.write_bytes(bytes(data))
    res, image = _verify(written.path, "--second-reader")
    assert res.exit_code == ExitCode.EVIDENCE
    assert image["verdict"] == "MISMATCH"
    assert image["stored"]["md5"] == _md5(media) != image["computed"]["md5"]
    assert image["second_reader"]["agree"]
    assert image["second_reader"]["hashes"]["md5"] == image["computed"]["md5"]


def _bevy_index(volume: Path, name: str) -> list[tuple[int, int]]:
    import struct
    import zipfile

    with zipfile.ZipFile(volume) as zf:
        raw = zf.read(name)
    return [struct.unpack_from("<QI", raw, i) for i in range(0, len(raw), 12)]


def _member_data_offset(volume: Path, name: str) -> int:
    import struct
    import zipfile

    with zipfile.ZipFile(volume) as zf:
        info = zf.getinfo(name)
    with volume.open("rb") as f:
        f.seek(info.header_offset)
        head = f.read(30)
    name_len, extra_len = struct.unpack("<HH", head[26:30])
    return info.header_offset + 30 + name_len + extra_len


#: Our writer's variants pyaff4 reads, beside those of test_aff4 (which it reads but deflate).
OURS: dict[str, dict[str, object]] = {
    **{name: {"compression": "zlib", **options} for name, options in VARIANTS.items()},
    "snappy": {"compression": "snappy"},
    "lz4": {"compression": "lz4"},
    "zero-gap": {"compression": "zlib", "gap": (60 * KiB, 100 * KiB)},
    "several-images": {"compression": "snappy", "extra_images": 2},
    "no-hashes": {"compression": "zlib", "hashes": False},
}


@pytest.mark.parametrize("variant", list(OURS))
def test_pyaff4_reads_what_our_writer_writes(tmp_path: Path, pyaff4: Any, variant: str) -> None:
    """Our committed test writer checked against an independent reader: pyaff4 must give the
    media the writer was given (md5 of it), as our reader does."""
    media = _media()
    written = build_aff4(tmp_path / "disk.aff4", media, **OURS[variant])  # type: ignore[arg-type]
    res, image = _verify(written.path, "--second-reader")
    assert image["computed"]["md5"] == _md5(media)
    second = image["second_reader"]
    assert second is not None, image["notes"]
    assert second["agree"], second
    assert second["hashes"]["md5"] == _md5(media)
    assert res.exit_code in (ExitCode.OK, ExitCode.EVIDENCE)  # no stored hash: UNVERIFIED
    assert image["verdict"] == ("UNVERIFIED" if variant == "no-hashes" else "VERIFIED")


@pytest.mark.parametrize(("options", "why"), [
    ({"compression": "deflate"}, "does not decode deflate chunks"),
    ({"compression": "zlib", "gap": (4096, 8192), "gap_stream": "UnknownData"},
     "fills a map's gaps with zeros"),
])
def test_what_pyaff4_cannot_read_is_a_note(tmp_path: Path, pyaff4: Any,
                                           options: dict[str, Any], why: str) -> None:
    media = bytearray(_media())
    if "gap" in options:  # what aff4:UnknownData reads there: UNKNOWN from the MiB's start
        media[4096:8192] = (b"UNKNOWN" * 1200)[4096:8192]
    written = build_aff4(tmp_path / "disk.aff4", bytes(media), **options)
    res, image = _verify(written.path, "--second-reader")
    assert res.exit_code == ExitCode.OK, image["problems"]
    assert image["second_reader"] is None
    assert any(why in note for note in image["notes"]), image["notes"]


def test_the_child_reads_through_the_evidence_opener(tmp_path: Path, pyaff4: Any) -> None:
    """Access and modification times unchanged (O_NOATIME: pyaff4's own ``open`` would set the
    access time, put an hour before the modification time, under relatime)."""
    written, _media_bytes = _linear(tmp_path, "snappy")
    content = written.path.read_bytes()
    mtime = written.path.stat().st_mtime_ns
    os.utime(written.path, ns=(mtime - 10**9 * 3600, mtime))
    before = written.path.stat()
    _res, image = _verify(written.path, "--second-reader")
    assert image["second_reader"]["agree"], image["second_reader"]
    after = written.path.stat()
    assert (after.st_atime_ns, after.st_mtime_ns) == (before.st_atime_ns, before.st_mtime_ns)
    assert written.path.read_bytes() == content


def test_without_pyaff4_the_second_reader_failure_is_recorded(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The examiner asked for a second reader and there is none installed: that is a failed
    second reading (exit 1), as for a missing affcat or qemu-nbd, never a silent pass."""
    from bitwitness.images import aff4_pyaff4

    monkeypatch.setattr(aff4_pyaff4, "pyaff4_folder", lambda: None)
    written = build_aff4(tmp_path / "disk.aff4", _media(), compression="zlib")
    res, image = _verify(written.path, "--second-reader")
    assert res.exit_code == ExitCode.EVIDENCE
    assert not image["second_reader"]["agree"]
    assert "pyaff4, the second reader of AFF4 images, is not installed" in \
        image["second_reader"]["error"]
    assert json.dumps(image)  # the record is plain data


def test_a_looping_pyaff4_is_stopped_by_its_cpu_budget(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A volume that makes pyaff4 loop must not hold a verification forever: the child has a
    CPU-time budget, and running out of it is a failed second reading saying so. A stand-in
    pyaff4 that loops on import plays the looping reader (the budget is set to one second)."""
    from bitwitness.images import aff4_pyaff4

    fake = tmp_path / "looping"
    (fake / "pyaff4").mkdir(parents=True)
    (fake / "pyaff4" / "__init__.py").write_text("while True:\n    pass\n")
    monkeypatch.setattr(aff4_pyaff4, "pyaff4_folder", lambda: fake)
    monkeypatch.setenv("BITWITNESS_PYAFF4_CPU_SECONDS", "1")
    written = build_aff4(tmp_path / "disk.aff4", _media(), compression="zlib")
    res, image = _verify(written.path, "--second-reader")
    assert res.exit_code == ExitCode.EVIDENCE
    assert not image["second_reader"]["agree"]
    assert "used up its CPU-time budget (1 s" in image["second_reader"]["error"]
