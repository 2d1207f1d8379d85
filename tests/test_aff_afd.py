"""AFD folders (afflib's multi-file AFF: ``NAME.afd/file_000.aff``, ``file_001.aff``...) read as
one image by every command, bit-exact against ``affcat NAME.afd`` and ``md5sum`` of the source,
their MD5/SHA-1 (written into the set's last file only) verified; a file of a set read alone, or
a folder missing a file, is INCOMPLETE naming the sectors it lacks; the folder's size is bounded.

The sets are made by ``affconvert -q -s 1m -M 3m -o NAME.afd disk.raw`` (1 MiB pages, files cut
at about 3 MiB: six files uncompressed, two with LZMA), from a 12 MiB GPT disk whose one
partition holds an ext4 file system with ``evidence.txt``.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from conftest import require_tool, run_bitwitness, run_subprocess
from contract import check_stream_contract

from bitwitness.errors import ExitCode, MissingSegmentError
from bitwitness.image import open_image

MiB = 1 << 20
TEXT = b"evidence of the afd test\n"


def _run(*args: str | Path) -> str:
    return subprocess.run([os.fspath(a) for a in args], check=True, capture_output=True,
                          text=True).stdout


@pytest.fixture(scope="module")
def disk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_tool("sgdisk", "mkfs.ext4", "affconvert", "affcat", "md5sum")
    folder = tmp_path_factory.mktemp("afd-disk")
    path = folder / "disk.raw"
    data = bytearray(12 * MiB)
    data[8 * MiB:11 * MiB] = os.urandom(3 * MiB)
    path.write_bytes(bytes(data))
    _run("sgdisk", "-n1:2048:-34", path)
    staging = folder / "staging"
    staging.mkdir()
    (staging / "evidence.txt").write_bytes(TEXT)
    _run("mkfs.ext4", "-q", "-F", "-E", "offset=1048576", "-d", staging, path, "6M")
    return path


def _md5(path: Path) -> str:
    return _run("md5sum", path).split()[0]


def _afd(disk: Path, folder: Path, *options: str) -> Path:
    image = folder / "set.afd"
    _run("affconvert", "-q", *options, "-s", "1m", "-M", "3m", "-o", image, disk)
    return image


def _pages(piece: Path) -> list[int]:
    """The pages a file stores, as afflib lists its segments."""
    return sorted(int(name[4:]) for name in _run("affcat", "-l", piece).split()
                  if name.startswith("page") and name[4:].isdigit())


def _without(data: bytes, names: set[bytes]) -> bytes:
    """An AFF file's bytes with the segments ``names`` left out (walked as the format lays
    them: "AFF\\0", name length, data length, argument, name, data, "ATT\\0", total length)."""
    out, pos = bytearray(data[:8]), 8
    while pos < len(data):
        name_len, data_len = struct.unpack(">II", data[pos + 4:pos + 12])
        end = pos + 16 + name_len + data_len + 8
        if data[pos + 16:pos + 16 + name_len] not in names:
            out += data[pos:end]
        pos = end
    assert len(out) <= len(data) - len(names) * MiB
    return bytes(out)


VARIANTS = {"uncompressed": ["-x"], "lzma": ["-L"]}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_an_afd_folder_is_one_image(tmp_path: Path, disk: Path, variant: str) -> None:
    """The folder reads as the disk (affcat's reading of the folder and md5sum of the source
    agree first), its stored hashes, found in its last file only, verified, affcat agreeing."""
    image = _afd(disk, tmp_path, *VARIANTS[variant])
    pieces = sorted(image.iterdir())
    assert len(pieces) >= 2
    holding = [p.name for p in pieces if "md5" in _run("affcat", "-l", p).split()]
    assert holding == [pieces[-1].name]
    affcat = subprocess.run(["affcat", str(image)], check=True, capture_output=True).stdout
    assert affcat == disk.read_bytes()
    with open_image(image) as stream:
        assert stream.info.format == "afd"
        assert stream.info.files == tuple(pieces)
        check_stream_contract(stream, affcat)
    res = run_bitwitness("verify", "--second-reader", image, "--json")
    doc = res.json()["images"][0]
    assert res.exit_code == ExitCode.OK, doc["problems"]
    assert doc["verdict"] == "VERIFIED"
    assert doc["stored"]["md5"] == _md5(disk) == doc["computed"]["md5"]
    assert "sha1" in doc["stored"]
    assert doc["second_reader"]["reader"].startswith("affcat")
    assert doc["second_reader"]["agree"] is True


def test_any_file_of_the_folder_opens_the_set(tmp_path: Path, disk: Path) -> None:
    """Naming file_000.aff (no image size, no hash) or the last file (pages 10-11 only) gives
    the whole disk, as naming any segment of an E01 does."""
    image = _afd(disk, tmp_path, "-x")
    pieces = sorted(image.iterdir())
    for piece in (pieces[0], pieces[-1]):
        res = run_bitwitness("verify", piece, "--json")
        doc = res.json()["images"][0]
        assert res.exit_code == ExitCode.OK, doc["problems"]
        assert doc["verdict"] == "VERIFIED"
        assert doc["computed"]["md5"] == _md5(disk)
        assert [Path(f).name for f in doc["files"]] == [p.name for p in pieces]


def test_convert_partitions_and_ls_read_the_set(tmp_path: Path, disk: Path) -> None:
    """The defect's commands: convert from the folder's first file wrote 2 MiB of it as the
    whole disk, UNVERIFIED; it now writes the disk, checked against the set's stored MD5."""
    image = _afd(disk, tmp_path, "-x")
    out = tmp_path / "out"
    res = run_subprocess("convert", "--to", "raw", "-o", out, image / "file_000.aff")
    assert res.exit_code == ExitCode.OK, res.stderr
    assert _md5(out.with_suffix(".raw")) == _md5(disk)
    assert "VERIFIED" in res.stdout + res.stderr
    res = run_bitwitness("partitions", image)
    assert res.exit_code == ExitCode.OK, res.stderr
    assert any(line.split()[3:5] == ["2048", "24508"] and "ext4" in line
               for line in res.stdout.splitlines())
    partition = next(line.split()[0] for line in res.stdout.splitlines() if "ext4" in line)
    res = run_bitwitness("ls", "-p", partition, image / "file_003.aff", "/")
    assert res.exit_code == ExitCode.OK, res.stderr
    assert "evidence.txt" in res.stdout
    res = run_bitwitness("cat", "-p", partition, image, "/evidence.txt")
    assert res.output == TEXT


def _sectors(first: int, last: int) -> str:
    """Pages first..last of 1 MiB as the 512-byte sector range the message names."""
    return f"sectors {first * 2048}-{(last + 1) * 2048 - 1}"


def test_a_file_read_outside_its_folder_is_incomplete(tmp_path: Path, disk: Path) -> None:
    """Each file copied out alone: INCOMPLETE (exit 1), never a smaller disk (file_000.aff was
    2 MiB UNVERIFIED) nor a MISMATCH (the last one read pages 0-9 as zeros). A file holding the
    image size names the sectors it lacks, from the pages affcat lists in it."""
    image = _afd(disk, tmp_path, "-x")
    alone = tmp_path / "alone"
    alone.mkdir()
    pieces = sorted(image.iterdir())
    for piece in pieces:
        copy = alone / piece.name
        shutil.copyfile(piece, copy)
        res = run_bitwitness("verify", copy, "--json")
        doc = res.json()["images"][0]
        assert res.exit_code == ExitCode.EVIDENCE, piece.name
        assert doc["verdict"] == "INCOMPLETE", (piece.name, doc["problems"])
        assert "INCOMPLETE" in doc["problems"][0]
        with pytest.raises(MissingSegmentError):
            open_image(copy)
    pages = _pages(pieces[-1])
    res = run_bitwitness("info", alone / pieces[-1].name)
    assert res.exit_code == ExitCode.EVIDENCE
    assert f"pages 0-{pages[0] - 1} ({_sectors(0, pages[0] - 1)})" in res.stderr
    res = run_bitwitness("info", alone / "file_000.aff")
    assert "none of its files records the image size" in res.stderr
    out = tmp_path / "out"
    res = run_bitwitness("convert", "--to", "raw", "-o", out, alone / "file_000.aff")
    assert res.exit_code == ExitCode.EVIDENCE
    assert not out.with_suffix(".raw").exists()


def test_a_folder_missing_a_file_is_incomplete(tmp_path: Path, disk: Path) -> None:
    """The folder without its third file: INCOMPLETE naming that file's pages as sectors,
    where afflib's affcat would give a disk 2 MiB short."""
    image = _afd(disk, tmp_path, "-x")
    gone = sorted(image.iterdir())[2]
    pages = _pages(gone)
    gone.unlink()
    res = run_bitwitness("verify", image)
    assert res.exit_code == ExitCode.EVIDENCE
    assert "verdict: INCOMPLETE" in res.stdout
    assert f"pages {pages[0]}-{pages[-1]} ({_sectors(pages[0], pages[-1])})" in res.stdout
    res = run_bitwitness("partitions", image / "file_000.aff")
    assert res.exit_code == ExitCode.EVIDENCE
    assert "INCOMPLETE" in res.stderr


def test_a_page_two_files_store_is_refused(tmp_path: Path, disk: Path) -> None:
    """afflib reads a segment from the first file its directory listing gives: a page stored by
    two files is refused naming both, not chosen by listing order."""
    image = _afd(disk, tmp_path, "-x")
    shutil.copyfile(image / "file_001.aff", image / "file_001-copy.aff")
    res = run_bitwitness("info", image)
    assert res.exit_code == ExitCode.EVIDENCE
    assert "page 2 is stored in both file_001" in res.stderr


def test_a_single_aff_missing_pages_reads_them_as_zeros(tmp_path: Path, disk: Path) -> None:
    """One AFF file (not a file of a set) lacking pages keeps its reading: zeros, as afflib's
    af_read gives them, the stored MD5 deciding: VERIFIED where the source held zeros there,
    MISMATCH where it held data (pages 8-9, random). afflib's own tools on such a file: affcat
    leaves the pages out, affinfo -m will not validate it."""
    require_tool("affinfo")
    whole = tmp_path / "whole.aff"
    _run("affconvert", "-q", "-x", "-s", "1m", "-o", whole, disk)
    source = disk.read_bytes()
    zero = next(n for n in range(12) if not any(source[n * MiB:(n + 1) * MiB]))
    for gone, verdict in (((zero,), "VERIFIED"), ((8, 9), "MISMATCH")):
        image = tmp_path / f"holes-{gone[0]}.aff"
        image.write_bytes(_without(whole.read_bytes(), {b"page%d" % n for n in gone}))
        said = f"page {gone[0]} not in file" if len(gone) == 1 else "pages 8 through 9"
        assert said.encode() in subprocess.run(["affcat", "-n", str(image)],
                                               capture_output=True, check=True).stderr
        affinfo = subprocess.run(["affinfo", "-m", str(image)], capture_output=True,
                                 check=False)
        assert b"gap in pages" in affinfo.stdout + affinfo.stderr
        expected = bytearray(source)
        for n in gone:
            expected[n * MiB:(n + 1) * MiB] = bytes(MiB)
        with open_image(image) as stream:
            assert stream.info.format == "aff"
            assert stream.pread(0, stream.size) == bytes(expected)
        res = run_bitwitness("verify", image, "--json")
        assert res.json()["images"][0]["verdict"] == verdict


def test_the_set_bounds_its_segments_and_descriptors(tmp_path: Path, disk: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The segment bound counts every file of a set together (each file alone is under it), and
    reading keeps at most _OPEN_FILES descriptors open however many files the set holds."""
    from bitwitness.errors import CorruptImageError
    from bitwitness.images import aff

    image = _afd(disk, tmp_path, "-x")
    pieces = sorted(image.iterdir())
    per_file = max(len(_run("affcat", "-l", p).split()) for p in pieces)
    monkeypatch.setattr(aff, "_MAX_SEGMENTS", per_file + 1)
    with pytest.raises(CorruptImageError, match="implausibly many segments in the set's files"):
        open_image(image)
    monkeypatch.undo()
    monkeypatch.setattr(aff, "_OPEN_FILES", 2)
    descriptors = Path("/proc/self/fd")
    before = len(list(descriptors.iterdir()))
    with open_image(image) as stream:
        for number in range(len(pieces) - 1, -1, -1):  # every file, against the LRU order
            assert stream.pread(number * 2 * MiB, 4096) == disk.read_bytes()[
                number * 2 * MiB:number * 2 * MiB + 4096]
            assert len(list(descriptors.iterdir())) <= before + 2
    assert len(list(descriptors.iterdir())) == before
