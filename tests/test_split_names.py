"""Split raw sets named as GNU split names them by default are read whole: two characters,
widened as they run out (``aa .. yz, zaaa ..``; with ``-d``: ``00 .. 89, 9000 .., 990000 ..``).
A set of more than 650 lettered pieces (a 2 TB disk cut in 2 GB pieces) was read up to ``yz``,
the media cut short without a word, and a ``split -d`` set (``.00``, ``.01``) was not taken for
a set at all: its first piece was read as the whole media. Checked against GNU split's own
names and order (``ls``), the media against ``md5sum`` of what was split; a numbered set
outgrowing three digits (``.999``, ``.1000``) goes on; names that only look like pieces stay
what they are."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest
from conftest import require_tool, run_bitwitness

from bitwitness.errors import ExitCode, MissingSegmentError
from bitwitness.image import detect, open_image
from bitwitness.images.splitnames import DIGITS, LETTERS, Scheme
from bitwitness.images.splitraw import split_pieces


def _split(folder: Path, data: bytes, *args: str) -> list[Path]:
    """``data`` cut by GNU split (``args``) into ``folder/disk.img.*``; the pieces in the order
    ``ls`` lists them, which is the order split wrote them."""
    require_tool("split")
    folder.mkdir()
    source = folder.parent / f"{folder.name}.src"
    source.write_bytes(data)
    subprocess.run(["split", *args, source, str(folder / "disk.img.")], check=True,
                   capture_output=True)
    listed = subprocess.run(["ls", folder], check=True, capture_output=True, text=True,
                            env={**os.environ, "LC_ALL": "C"}).stdout.split()
    return [folder / name for name in listed]


@pytest.mark.parametrize(("args", "count", "widest"), [
    (("-b", "512"), 700, "zabx"),  # lettered: aa .. yz, zaaa .. zabx
    (("-d", "-b", "512"), 1000, "990009"),  # numbered: 00 .. 89, 9000 .. 9899, 990000 ..
])
def test_gnu_split_default_names_are_one_set(tmp_path: Path, args: tuple[str, ...], count: int,
                                              widest: str) -> None:
    data = os.urandom(512 * count - 100)
    pieces = _split(tmp_path / "pieces", data, *args)
    assert len(pieces) == count
    assert pieces[-1].name == f"disk.img.{widest}"
    for given in (pieces[0], pieces[700 - 1], pieces[-1]):
        assert split_pieces(given) == pieces
    assert detect(pieces[-1]).format.name == "split-raw"
    with open_image(pieces[0]) as stream:
        assert stream.size == len(data)
        assert stream.pread(0, len(data)) == data
    done = run_bitwitness("verify", pieces[5], "--json")
    result = done.json()["images"][0]
    assert result["media_size"] == len(data)
    assert result["computed"]["md5"] == subprocess.run(
        ["md5sum", tmp_path / "pieces.src"], check=True, capture_output=True,
        text=True).stdout.split()[0]


def test_a_two_digit_set_from_split_d_is_a_set(tmp_path: Path) -> None:
    data = os.urandom(3000)
    pieces = _split(tmp_path / "pieces", data, "-d", "-b", "1024")
    assert [p.name for p in pieces] == ["disk.img.00", "disk.img.01", "disk.img.02"]
    with open_image(pieces[1]) as stream:
        assert stream.pread(0, 4096) == data
    assert hashlib.sha256(data).hexdigest() == run_bitwitness(
        "verify", pieces[0], "--json").json()["images"][0]["computed"]["sha256"]


def test_a_piece_missing_among_widened_names_is_named(tmp_path: Path) -> None:
    pieces = _split(tmp_path / "pieces", os.urandom(512 * 660), "-b", "512")
    gone = tmp_path / "pieces" / "disk.img.zaab"
    gone.unlink()
    with pytest.raises(MissingSegmentError, match=r"split raw piece \.zaab is missing"):
        split_pieces(pieces[0])
    done = run_bitwitness("info", pieces[0])
    assert done.exit_code != ExitCode.OK
    assert ".zaab is missing" in done.stderr


def test_a_numbered_set_goes_on_past_three_digits(tmp_path: Path) -> None:
    folder = tmp_path / "ftk"
    folder.mkdir()
    blocks = [os.urandom(64) for _ in range(1001)]
    for number, block in enumerate(blocks, start=1):
        (folder / f"image.{number:03d}").write_bytes(block)
    pieces = split_pieces(folder / "image.001")
    assert pieces is not None
    assert [p.name for p in pieces[-3:]] == ["image.999", "image.1000", "image.1001"]
    with open_image(folder / "image.1000") as stream:
        assert stream.pread(0, stream.size) == b"".join(blocks)


def test_names_that_only_look_like_pieces(tmp_path: Path) -> None:
    lone = tmp_path / "photo.12"
    lone.write_bytes(b"\x00" * 4096)
    assert split_pieces(lone) is None
    assert detect(lone).format.name == "raw"
    (tmp_path / "disk.aa").write_bytes(b"a" * 512)
    (tmp_path / "disk.ab").write_bytes(b"b" * 100)
    for stray in ("disk.log", "disk.txt", "disk.json", "disk.md5"):
        (tmp_path / stray).write_text("not a piece\n")
    assert split_pieces(tmp_path / "disk.ab") == [tmp_path / "disk.aa", tmp_path / "disk.ab"]
    assert split_pieces(tmp_path / "disk.log") is None
    (tmp_path / "three.aaa").write_bytes(b"c" * 512)  # split -a 3: not taken for a set
    assert split_pieces(tmp_path / "three.aaa") is None


@pytest.mark.parametrize("alphabet", [LETTERS, DIGITS])
def test_widening_names_round_trip_in_sorted_order(alphabet: str) -> None:
    scheme = Scheme(alphabet, 2, widening=True)
    names = [scheme.name(i) for i in range(20_000)]
    assert [scheme.index(n) for n in names] == list(range(20_000))
    assert names == sorted(names)  # GNU split widens so that names sort in order
    assert len(set(names)) == len(names)
    fixed = Scheme(alphabet, 2, widening=False)
    assert [fixed.index(fixed.name(i)) for i in range(len(alphabet) ** 2)] == \
        list(range(len(alphabet) ** 2))


def test_dc3dd_lettered_pieces_are_one_set(tmp_path: Path) -> None:
    """dc3dd ``ofs=x.aaa`` (and ``split -a 3``) names pieces with three letters: read whole,
    verified against dc3dd's own log; the log and other files beside them are not pieces, and
    a piece missing inside the set is named."""
    require_tool("dc3dd")
    data = os.urandom(10 << 20)
    source = tmp_path / "source.bin"
    source.write_bytes(data)
    subprocess.run(["dc3dd", f"if={source}", f"hofs={tmp_path / 'img.aaa'}", "ofsz=3M",
                    "hash=md5", f"log={tmp_path / 'img.log'}"], check=True, capture_output=True)
    pieces = sorted(tmp_path.glob("img.a??"))
    assert [p.name for p in pieces] == ["img.aaa", "img.aab", "img.aac", "img.aad"]
    for stray in ("img.txt", "img.asc"):
        (tmp_path / stray).write_text("not a piece\n")
    assert split_pieces(tmp_path / "img.aac") == pieces
    assert split_pieces(tmp_path / "img.log") is None
    assert split_pieces(tmp_path / "img.asc") is None
    result = run_bitwitness("verify", tmp_path / "img.aaa")
    assert result.exit_code == ExitCode.OK, result.stdout + result.stderr
    md5 = hashlib.md5(data, usedforsecurity=False).hexdigest()
    assert f"computed md5     {md5}" in result.stdout
    assert "match  md5 of media: dc3dd log img.log" in result.stdout
    pieces[1].unlink()
    with pytest.raises(MissingSegmentError, match=r"\.aab is missing"):
        split_pieces(tmp_path / "img.aaa")


def test_split_a3_lettered_set_matches_md5sum(tmp_path: Path) -> None:
    data = os.urandom(700 * 1024)
    pieces = _split(tmp_path / "cut", data, "-a", "3", "-b", "100k")
    assert pieces[0].name == "disk.img.aaa"
    with open_image(pieces[-1]) as stream:
        assert stream.size == len(data)
        assert stream.pread(0, len(data)) == data


def test_dcfldd_mac_pieces_are_one_set(tmp_path: Path) -> None:
    """dcfldd ``splitformat=MAC``: ``x.dmg``, ``x.002.dmgpart``, ...: raw bytes, not a UDIF
    image; read whole and verified against dcfldd's hash log, from any of its pieces."""
    require_tool("dcfldd")
    data = os.urandom(10 << 20)
    source = tmp_path / "source.bin"
    source.write_bytes(data)
    subprocess.run(["dcfldd", f"if={source}", "split=4M", "splitformat=MAC", "hash=md5",
                    f"hashlog={tmp_path / 'img.hashlog'}", f"of={tmp_path / 'img'}"],
                   check=True, capture_output=True)
    pieces = [tmp_path / n for n in ("img.dmg", "img.002.dmgpart", "img.003.dmgpart")]
    assert all(p.exists() for p in pieces)
    assert split_pieces(tmp_path / "img.003.dmgpart") == pieces
    for named in (pieces[0], pieces[2]):
        result = run_bitwitness("verify", named)
        assert result.exit_code == ExitCode.OK, result.stdout + result.stderr
        md5 = hashlib.md5(data, usedforsecurity=False).hexdigest()
        assert f"computed md5     {md5}" in result.stdout
        assert "match  md5 of media: dcfldd hash log img.hashlog" in result.stdout
    pieces[1].unlink()
    with pytest.raises(MissingSegmentError, match=r"img\.002\.dmgpart is missing"):
        split_pieces(pieces[0])
    lone = tmp_path / "other.dmg"
    lone.write_bytes(b"\0" * 4096)
    assert split_pieces(lone) is None
