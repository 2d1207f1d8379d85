"""An image declaring 4096-byte logical sectors is browsed in that unit: ``partitions`` shows the
rows ``mmls -b 4096`` shows, ``-p`` and ``--offset`` reach the file system ``fls -b 4096 -o``
lists.

The disk: an MBR counting in 4096-byte sectors (two primary partitions, as a disk with 4Kn
sectors has them) and a FAT file system of 4096-byte sectors (``mkfs.vfat -S 4096``) in the
second; acquired with ``ewfacquire -P 4096``, so that the E01 declares the unit, and converted
to VHDX by ``qemu-img``, whose metadata is then marked with 4096-byte logical sectors
(tests/builders/vhdx_sectors.py: qemu-img writes only 512).
"""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

import pytest
from builders.vhdx_sectors import set_logical_sector_size
from conftest import require_tool, run_bitwitness

from bitwitness.errors import ExitCode

SECTOR = 4096
PARTS = ((256, 4096, 0x83), (8192, 4096, 0x0C))


def _mbr(parts: tuple[tuple[int, int, int], ...]) -> bytes:
    mbr = bytearray(512)
    for i, (start, count, kind) in enumerate(parts):
        mbr[446 + 16 * i : 462 + 16 * i] = struct.pack("<B3sB3sII", 0, b"\xfe\xff\xff", kind,
                                                       b"\xfe\xff\xff", start, count)
    mbr[510:512] = b"\x55\xaa"
    return bytes(mbr)


@pytest.fixture(scope="module", params=["e01", "vhdx"])
def disk(tmp_path_factory: pytest.TempPathFactory,
         request: pytest.FixtureRequest) -> tuple[Path, Path]:
    require_tool("mkfs.vfat", "mcopy", "ewfacquire", "mmls", "fls", "qemu-img")
    folder = tmp_path_factory.mktemp("units")
    raw = folder / "disk4k.raw"
    with raw.open("wb") as fh:
        fh.truncate(16384 * SECTOR)
        fh.write(_mbr(PARTS))
    fat = folder / "fat.img"
    subprocess.run(["mkfs.vfat", "-S", str(SECTOR), "-C", str(fat), str(4096 * SECTOR // 1024)],
                   check=True, capture_output=True)
    note = folder / "note.txt"
    note.write_text("counted in 4096-byte sectors\n")
    subprocess.run(["mcopy", "-i", str(fat), str(note), "::/NOTE.TXT"], check=True)
    with raw.open("r+b") as fh:
        fh.seek(PARTS[1][0] * SECTOR)
        fh.write(fat.read_bytes())
    if request.param == "vhdx":
        vhdx = folder / "disk4k.vhdx"
        subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "vhdx", str(raw), str(vhdx)],
                       check=True, capture_output=True)
        set_logical_sector_size(vhdx, SECTOR)
        return raw, vhdx
    subprocess.run(["ewfacquire", "-q", "-u", "-P", str(SECTOR), "-c", "none", "-t",
                    str(folder / "disk4k"), str(raw)], check=True, capture_output=True)
    return raw, folder / "disk4k.E01"


def _mmls_rows(raw: Path) -> list[tuple[int, int, int, int, str]]:
    out = subprocess.run(["mmls", "-b", str(SECTOR), str(raw)], capture_output=True, text=True,
                         check=True).stdout
    rows = []
    for line in out.splitlines():
        if ":" in line[:4] and line[:3].isdigit():
            cols = line.split(None, 5)
            rows.append((int(cols[0].rstrip(":")), int(cols[2]), int(cols[3]), int(cols[4]),
                         cols[5]))
    return rows


def test_partitions_agree_with_mmls_in_4096_byte_units(disk: tuple[Path, Path]) -> None:
    raw, e01 = disk
    res = run_bitwitness("partitions", e01, "--json")
    assert res.exit_code == ExitCode.OK, res.stderr
    doc = res.json()
    assert doc["sector_size"] == SECTOR
    ours = [(p["index"], p["start"], p["end"], p["length"], p["description"])
            for p in doc["partitions"]]
    assert ours == _mmls_rows(raw)
    assert all((p["end"] + 1) * SECTOR <= doc["media_size"] for p in doc["partitions"])
    assert doc["partitions"][4]["filesystem"] is not None


def test_p_and_offset_reach_the_file_system_fls_lists(disk: tuple[Path, Path]) -> None:
    raw, e01 = disk
    fls = subprocess.run(["fls", "-b", str(SECTOR), "-o", str(PARTS[1][0]), str(raw)],
                         capture_output=True, text=True, check=True).stdout
    wanted = {line.split("\t", 1)[1] for line in fls.splitlines()}
    for how in (["-p", "4"], ["--offset", str(PARTS[1][0])]):
        res = run_bitwitness("ls", *how, e01, "--json")
        assert res.exit_code == ExitCode.OK, res.stderr
        assert {e["path"].lstrip("/") for e in res.json()["entries"]} == wanted
    assert "NOTE.TXT" in wanted
    cat = run_bitwitness("cat", "-p", "4", e01, "NOTE.TXT")
    assert cat.stdout == "counted in 4096-byte sectors\n"
