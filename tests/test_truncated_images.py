"""Container files cut short (an interrupted copy, a full disk): INCOMPLETE, every missing range.

Each image is written by ``qemu-img convert`` from one raw disk holding random data scattered
over it, then cut at half its length, as ``head -c`` leaves an interrupted copy. What must hold:
``verify`` says INCOMPLETE (not CORRUPT), naming the file, its size against what its tables need
and the media sectors whose data is missing; ``info`` shows everything, then says INCOMPLETE and
exits 1; the intact image keeps its verdict. The missing sectors are checked against QEMU, never
against our own parsing: ``qemu-img map --output=json`` of the intact image gives each allocated
area's host offset (a cluster is missing when it ends past the cut); where QEMU gives no offset
(compressed clusters and grains) ``qemu-io`` reads each allocated cluster of the cut image and
fails exactly on the missing ones; for VHDX, whose map QEMU gives without offsets, a block is
present exactly when its (random, so unique) bytes lie whole in the cut file.
"""

from __future__ import annotations

import json
import random
import struct
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import require_tool, run_bitwitness

from bitwitness.errors import ExitCode
from bitwitness.ranges import merge_ranges

MiB = 1 << 20
SIZE = 64 * MiB
SECTOR = 512


@pytest.fixture(scope="module")
def disk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """64 MiB of zeros with 21 runs of random bytes (70,000 each, 3 MiB apart, off cluster
    boundaries), so that every format stores a few scattered clusters."""
    path = tmp_path_factory.mktemp("truncated") / "disk.raw"
    rng = random.Random(7)
    data = bytearray(SIZE)
    for mib in range(0, 64, 3):
        at = mib * MiB + 123456
        data[at:at + 70000] = rng.randbytes(70000)
    path.write_bytes(bytes(data))
    return path


def _qemu(*args: str | Path, cwd: Path | None = None) -> str:
    """qemu-img's output; ``cwd``: where it resolves names an image records (a data file)."""
    return subprocess.run(["qemu-img", *map(str, args)], check=True, capture_output=True,
                          text=True, cwd=cwd).stdout


def _made(disk: Path, folder: Path, name: str, fmt: str, *options: str) -> tuple[Path, Path]:
    """The intact image and a copy of its folder with its data file cut at half."""
    intact = folder / "intact" / name
    intact.parent.mkdir(parents=True)
    _qemu("convert", "-f", "raw", "-O", fmt, *options, disk, intact)
    cut = folder / "cut" / name
    cut.parent.mkdir()
    for f in intact.parent.iterdir():
        (cut.parent / f.name).write_bytes(f.read_bytes())
    data = _data_file(cut)
    content = data.read_bytes()
    data.write_bytes(content[:len(content) // 2])
    return intact, cut


def _data_file(image: Path) -> Path:
    """The file holding the data: the image, or a twoGbMaxExtentSparse disk's one extent."""
    extents = sorted(image.parent.glob(f"{image.stem}-s0*.vmdk"))
    return extents[0] if extents else image


def _cluster(image: Path) -> int:
    return int(json.loads(_qemu("info", "--output=json", image.name,
                                cwd=image.parent))["cluster-size"])


def _map(image: Path) -> list[dict[str, Any]]:
    return list(json.loads(_qemu("map", "--output=json", image.name, cwd=image.parent)))


def _sectors(runs: list[tuple[int, int]]) -> list[list[int]]:
    """``(first_sector, count)`` runs as ``[first, last]`` pairs, merged."""
    return [[first, first + count - 1] for first, count in merge_ranges(runs)]


def _missing_by_map(intact: Path, cut_at: int) -> list[list[int]]:
    """Every allocated cluster of the intact image whose host bytes end past ``cut_at``."""
    unit = _cluster(intact)
    runs = []
    for area in _map(intact):
        if not area["data"]:
            continue
        assert "offset" in area, area
        for k in range(0, area["length"], unit):
            if area["offset"] + k + unit > cut_at:
                runs.append(((area["start"] + k) // SECTOR, unit // SECTOR))
    return _sectors(runs)


def _missing_by_qemu_io(intact: Path, cut: Path, fmt: str) -> list[list[int]]:
    """Every allocated cluster QEMU fails to read from the cut image (compressed data: a
    stream cut off does not decode, so QEMU says EIO rather than zeros)."""
    unit = _cluster(intact)
    starts = [area["start"] + k for area in _map(intact) if area["data"]
              for k in range(0, area["length"], unit)]
    commands = [a for s in starts for a in ("-c", f"read {s} {unit}")]
    done = subprocess.run(["qemu-io", "-r", "-f", fmt, *commands, str(cut)], check=False,
                          capture_output=True, text=True)
    said = [line for line in (done.stdout + done.stderr).splitlines()
            if line.startswith(("read ", "read failed"))]
    assert len(said) == len(starts), said
    return _sectors([(s // SECTOR, unit // SECTOR) for s, line in zip(starts, said, strict=True)
                     if line.startswith("read failed")])


def _missing_by_content(disk: Path, cut: Path, block: int) -> list[list[int]]:
    """Every block of the media holding data whose bytes do not lie whole in the cut file."""
    media, held = disk.read_bytes(), cut.read_bytes()
    runs = []
    for start in range(0, SIZE, block):
        piece = media[start:start + block]
        if piece.count(0) != len(piece) and piece not in held:
            runs.append((start // SECTOR, block // SECTOR))
    return _sectors(runs)


def _verify(image: Path) -> tuple[int, dict[str, Any]]:
    done = run_bitwitness("verify", "--json", image)
    return done.exit_code, done.json()["images"][0]


def _check_cut(intact: Path, cut: Path, expected: list[list[int]]) -> dict[str, Any]:
    """The intact image keeps its verdict; the cut one is INCOMPLETE with ``expected``
    missing, in ``verify`` and in ``info``, which shows everything first and exits 1."""
    code, whole = _verify(intact)
    assert whole["verdict"] == "UNVERIFIED", whole["problems"]
    assert not whole["missing_ranges"]
    assert run_bitwitness("info", intact).exit_code == ExitCode.OK
    assert expected, "the cut must lose some data for the test to mean anything"

    code, doc = _verify(cut)
    assert code == ExitCode.EVIDENCE
    assert doc["verdict"] == "INCOMPLETE", doc["problems"]
    got = [[r["first_sector"], r["last_sector"]] for r in doc["missing_ranges"]]
    assert got == expected
    (short,) = doc["truncated"]
    data = _data_file(cut)
    assert Path(short["file"]).name == data.name
    assert short["file_size"] == data.stat().st_size
    assert short["needed"] > short["file_size"]
    assert not any("damaged" in p for p in doc["problems"]), doc["problems"]
    assert f"holds {data.stat().st_size} bytes" in doc["problems"][0]
    assert doc["computed"] == {}  # never a hash of zeros standing in for the missing data

    info = run_bitwitness("info", cut)
    assert info.exit_code == ExitCode.EVIDENCE
    assert "Media information" in info.stdout  # everything shown first
    assert f"sector(s) {expected[0][0]} - {expected[0][1]}" in info.stdout
    assert "INCOMPLETE" in info.stderr
    assert len(info.stderr.strip().splitlines()) == 1
    listed = run_bitwitness("info", "--json", cut).json()
    assert [[r["first_sector"], r["last_sector"]] for r in listed["missing_ranges"]] == expected
    return doc


@pytest.mark.parametrize(("name", "fmt", "options"), [
    ("d.qcow2", "qcow2", ()),
    ("d.qed", "qed", ()),
    ("d.vmdk", "vmdk", ()),
    ("d.vmdk", "vmdk", ("-o", "subformat=twoGbMaxExtentSparse")),
], ids=["qcow2", "qed", "vmdk-monolithicSparse", "vmdk-twoGbMaxExtentSparse"])
def test_cut_against_qemu_map(disk: Path, tmp_path: Path, name: str, fmt: str,
                              options: tuple[str, ...]) -> None:
    require_tool("qemu-img")
    intact, cut = _made(disk, tmp_path, name, fmt, *options)
    _check_cut(intact, cut, _missing_by_map(intact, _data_file(cut).stat().st_size))


def test_qcow_version_1_cut_with_its_tables(disk: Path, tmp_path: Path) -> None:
    """QCOW version 1 (qemu-img puts each L2 table beside the data it maps): every cluster
    QEMU's map places past the cut is missing, and so is the whole span of an L2 table past
    the cut (what it maps cannot be known), nothing else."""
    require_tool("qemu-img")
    intact, cut = _made(disk, tmp_path, "d.qcow", "qcow")
    cut_at = cut.stat().st_size
    by_map = _missing_by_map(intact, cut_at)
    head = intact.read_bytes()
    cluster_bits, l2_bits = head[32], head[33]
    l1_at = int.from_bytes(head[40:48], "big")
    span = 1 << (cluster_bits + l2_bits)
    tables = [int.from_bytes(head[l1_at + 8 * i:l1_at + 8 * i + 8], "big")
              for i in range(-(-SIZE // span))]
    lost_tables = [(i * span // SECTOR, span // SECTOR) for i, at in enumerate(tables)
                   if at and at + (8 << l2_bits) > cut_at]
    assert lost_tables
    expected = _sectors([(f, last - f + 1) for f, last in by_map] + lost_tables)
    _check_cut(intact, cut, expected)


@pytest.mark.parametrize(("name", "fmt", "options"), [
    ("d.qcow2", "qcow2", ("-c",)),
    ("d.vmdk", "vmdk", ("-o", "subformat=streamOptimized")),
], ids=["qcow2-compressed", "vmdk-streamOptimized"])
def test_cut_compressed_against_qemu_reads(disk: Path, tmp_path: Path, name: str, fmt: str,
                                           options: tuple[str, ...]) -> None:
    require_tool("qemu-img", "qemu-io")
    intact, cut = _made(disk, tmp_path, name, fmt, *options)
    _check_cut(intact, cut, _missing_by_qemu_io(intact, cut, fmt))


@pytest.mark.parametrize("subformat", ["dynamic", "fixed"])
def test_cut_vhdx_against_its_content(disk: Path, tmp_path: Path, subformat: str) -> None:
    """QEMU's map of a VHDX gives no host offsets: a block is present exactly when its bytes
    lie whole in the cut file (the data is random, so found only where it is stored)."""
    require_tool("qemu-img")
    intact, cut = _made(disk, tmp_path, "d.vhdx", "vhdx", "-o", f"subformat={subformat}")
    _check_cut(intact, cut, _missing_by_content(disk, cut, 8 * MiB))


def test_cut_external_data_file(disk: Path, tmp_path: Path) -> None:
    """A QCOW2 whose clusters lie in an external data file, that file cut short: the data
    file is named, and every allocated cluster QEMU maps past the cut is missing."""
    require_tool("qemu-img")
    folder = tmp_path / "intact"
    folder.mkdir()
    image = folder / "d.qcow2"
    _qemu("create", "-f", "qcow2", "-o", "data_file=d.data", "d.qcow2", str(SIZE), cwd=folder)
    _qemu("convert", "-n", "-f", "raw", "-O", "qcow2", disk, "d.qcow2", cwd=folder)
    assert (folder / "d.data").stat().st_size > 0
    cut_folder = tmp_path / "cut"
    cut_folder.mkdir()
    (cut_folder / "d.qcow2").write_bytes(image.read_bytes())
    data = (folder / "d.data").read_bytes()
    cut_data = cut_folder / "d.data"
    cut_data.write_bytes(data[:len(data) // 2])
    expected = _missing_by_map(image, len(data) // 2)
    code, doc = _verify(cut_folder / "d.qcow2")
    assert code == ExitCode.EVIDENCE
    assert doc["verdict"] == "INCOMPLETE", doc["problems"]
    (short,) = doc["truncated"]
    assert Path(short["file"]).name == "d.data"
    assert [[r["first_sector"], r["last_sector"]] for r in doc["missing_ranges"]] == expected
    assert run_bitwitness("info", cut_folder / "d.qcow2").exit_code == ExitCode.EVIDENCE
    assert _verify(image)[1]["verdict"] == "UNVERIFIED"


def test_reading_missing_data_is_refused_not_zeros(disk: Path, tmp_path: Path) -> None:
    """What reads the media (here ``convert``, and any read of the stream) stops at the
    missing data with INCOMPLETE and exit 1; convert leaves no usable output."""
    require_tool("qemu-img")
    from bitwitness.image import open_image
    from bitwitness.images.truncation import MissingDataError

    intact, cut = _made(disk, tmp_path, "d.qcow2", "qcow2")
    first = _missing_by_map(intact, cut.stat().st_size)[0][0] * SECTOR
    with open_image(cut) as stream, pytest.raises(MissingDataError, match="cut short"):
        stream.pread(first, SECTOR)
    done = run_bitwitness("convert", cut, "--to", "raw", "-o", tmp_path / "out")
    assert done.exit_code == ExitCode.EVIDENCE
    assert not (tmp_path / "out.raw").exists()


def test_tables_pointing_beyond_any_file_are_damage_for_info_too(disk: Path,
                                                                 tmp_path: Path) -> None:
    """An L1 entry pointing 2^55 bytes in (no file of this disk reaches there): qemu-img check
    reports an error and verify says CORRUPT; info showed it as a note and exited 0."""
    require_tool("qemu-img")
    image = tmp_path / "a.qcow2"
    _qemu("convert", "-O", "qcow2", disk, image)
    data = bytearray(image.read_bytes())
    l1 = struct.unpack(">Q", data[40:48])[0]
    struct.pack_into(">Q", data, l1, (1 << 63) | (1 << 55))
    far = tmp_path / "far.qcow2"
    far.write_bytes(bytes(data))
    checked = subprocess.run(["qemu-img", "check", str(far)], capture_output=True, text=True,
                             check=False)
    assert checked.returncode != 0
    info = run_bitwitness("info", far)
    assert info.exit_code == ExitCode.EVIDENCE, info.stderr
    assert "tables are damaged" in info.stderr
    assert run_bitwitness("verify", far).exit_code == ExitCode.EVIDENCE
    assert run_bitwitness("info", image).exit_code == ExitCode.OK
