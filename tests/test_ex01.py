"""EnCase 7 Ex01 (EWF2): read through libewf (pyewf), checked by our own EWF2 reader, its stored
hashes verified, converted to E01 that ``ewfverify`` accepts.

No tool on this machine writes an Ex01: ``ewfacquire -f encase7-v2`` (libewf-tools 20140813)
prints "Unsupported EWF format defaulting to: encase6" and writes an E01, and libewf-python opens
no file for writing. The image is built by ``tests/builders/ex01.py`` from the format's public
description; libewf (pyewf, an implementation independent of ours) is the judge that it is a
valid Ex01 holding the builder's media, case fields and hashes. (ewfverify/ewfinfo 20140813 do
not open it: their glob does not know the ``.Ex01`` extension, and under an ``.E01`` name they
cannot read its EWF2 file header.)
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest
from builders.ex01 import build_ex01
from conftest import require_tool, run_bitwitness
from contract import check_stream_contract

from bitwitness.errors import CorruptImageError, ExitCode
from bitwitness.image import open_image

MiB = 1 << 20


def _media() -> bytes:
    return os.urandom(MiB) + bytes(MiB) + os.urandom(100 * 512)


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def _pyewf(path: Path) -> tuple[bytes, dict[str, str], dict[str, str]]:
    import pyewf

    handle = pyewf.handle()
    handle.open([str(path)])
    try:
        return (bytes(handle.read_buffer_at_offset(handle.get_media_size(), 0)),
                dict(handle.get_hash_values()), dict(handle.get_header_values()))
    finally:
        handle.close()


def _state(paths: list[Path]) -> dict[Path, tuple[int, int, int]]:
    return {p: (p.stat().st_size, p.stat().st_mtime_ns, p.stat().st_atime_ns) for p in paths}


def test_ex01_read_verified_and_checked_by_a_second_reader(tmp_path: Path) -> None:
    media = _media()
    image = build_ex01(tmp_path / "disk.Ex01", media, case_number="C-15", examiner="Ada")
    data, hashes, headers = _pyewf(image)  # libewf: the builder wrote a valid Ex01
    assert data == media
    assert hashes["MD5"] == _md5(media)
    assert headers["case_number"] == "C-15"
    before = _state([image])
    with open_image(image) as stream:
        assert stream.info.details["reader"] == "pyewf"
        check_stream_contract(stream, media)
    from bitwitness.images.ewf2 import Ewf2Stream

    with Ewf2Stream(image) as ours:
        check_stream_contract(ours, media)
        assert ours.stored_hashes["md5"] == _md5(media)

    info = run_bitwitness("info", image, "--json")
    assert info.exit_code == ExitCode.OK, info.stderr
    assert "C-15" in info.stdout
    res = run_bitwitness("verify", "--second-reader", image, "--json")
    assert res.exit_code == ExitCode.OK, res.stdout
    doc = res.json()["images"][0]
    assert doc["verdict"] == "VERIFIED"
    assert doc["computed"]["md5"] == _md5(media)
    assert {c["reference"]["algorithm"] for c in doc["comparisons"]} >= {"md5", "sha1"}
    assert doc["second_reader"]["reader"] == "bitwitness (EWF2)"
    assert doc["second_reader"]["agree"] is True
    assert _state([image]) == before


def test_ex01_recorded_hash_mismatch_and_damaged_chunk(tmp_path: Path) -> None:
    media = _media()
    wrong = build_ex01(tmp_path / "wrong.Ex01", media, stored_md5="11" * 16)
    res = run_bitwitness("verify", wrong, "--json")
    assert res.exit_code == ExitCode.EVIDENCE
    assert res.json()["images"][0]["verdict"] == "MISMATCH"

    damaged = build_ex01(tmp_path / "damaged.Ex01", media)
    data = bytearray(damaged.read_bytes())
    at = data.find(media[32 * 1024 : 32 * 1024 + 64])  # chunk 1 is stored with its Adler-32
    assert at > 0
    data[at + 10] ^= 1
    damaged.write_bytes(bytes(data))
    from bitwitness.images.ewf2 import Ewf2Stream

    with Ewf2Stream(damaged) as ours, pytest.raises(CorruptImageError,
                                                    match="chunk 1 fails its Adler-32"):
        ours.pread(32 * 1024, 512)
    res = run_bitwitness("verify", "--second-reader", damaged, "--json")
    doc = res.json()["images"][0]
    assert res.exit_code == ExitCode.EVIDENCE
    assert doc["verdict"] == "MISMATCH"
    assert doc["second_reader"]["agree"] is False
    assert "media offset 32768" in " ".join(doc["second_reader"]["differences"])


def test_ex01_converts_to_an_e01_ewfverify_accepts(tmp_path: Path) -> None:
    require_tool("ewfverify", "ewfinfo", "md5sum")
    media = _media()
    image = build_ex01(tmp_path / "disk.Ex01", media, case_number="C-15", examiner="Ada")
    res = run_bitwitness("convert", image, "-o", tmp_path / "out", "--to", "e01", "--json")
    assert res.exit_code == ExitCode.OK, res.stderr
    doc = res.json()
    assert doc["verdict"] == "VERIFIED"  # against the hashes the Ex01 stores
    verify = subprocess.run(["ewfverify", "-q", str(tmp_path / "out.E01")],
                            capture_output=True, text=True, check=False)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert _md5(media) in verify.stdout
    info = subprocess.run(["ewfinfo", str(tmp_path / "out.E01")], capture_output=True, text=True,
                          check=True).stdout
    assert "C-15" in info
    assert "Ada" in info
    raw = run_bitwitness("convert", image, "-o", tmp_path / "raw", "--to", "raw")
    assert raw.exit_code == ExitCode.OK, raw.stderr
    md5sum = subprocess.run(["md5sum", str(tmp_path / "raw.raw")], capture_output=True,
                            text=True, check=True).stdout.split()[0]
    assert md5sum == _md5(media)


def test_ex01_structure_faults_are_typed(tmp_path: Path) -> None:
    from bitwitness.errors import BitWitnessError
    from bitwitness.images.ewf2 import Ewf2Stream

    image = build_ex01(tmp_path / "disk.Ex01", _media())
    pristine = image.read_bytes()
    for at in (len(pristine) - 4, len(pristine) - 64 - 40, 40):  # descriptor CRC, body, header
        data = bytearray(pristine)
        data[at] ^= 0xFF
        image.write_bytes(bytes(data))
        with pytest.raises(BitWitnessError), Ewf2Stream(image) as stream:
            stream.pread(0, stream.size)
    image.write_bytes(pristine[: len(pristine) // 2])
    with pytest.raises(BitWitnessError):
        Ewf2Stream(image)


def test_ex01_segmented_set_opened_from_any_segment(tmp_path: Path) -> None:
    """Three segments (each with the device information and case data, its chunks and table;
    ``next``, then ``done`` after the hashes): libewf and our reader give the same media from
    any segment; a missing middle segment is named."""
    media = _media()
    image = build_ex01(tmp_path / "set.Ex01", media, segments=3)
    parts = [image, tmp_path / "set.Ex02", tmp_path / "set.Ex03"]
    assert all(p.is_file() for p in parts)
    for start in parts:
        res = run_bitwitness("verify", "--second-reader", start, "--json")
        assert res.exit_code == ExitCode.OK, res.stdout
        doc = res.json()["images"][0]
        assert doc["computed"]["md5"] == _md5(media)
        assert [Path(f) for f in doc["files"]] == parts
        assert doc["second_reader"]["agree"] is True
    parts[1].unlink()
    from bitwitness.errors import MissingSegmentError
    from bitwitness.images.ewf2 import Ewf2Stream

    with pytest.raises(MissingSegmentError, match=r"set\.Ex02"):
        Ewf2Stream(image)
