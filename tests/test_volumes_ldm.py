"""Windows dynamic disks (LDM): every volume of the database at the disk's end is a child
``N/ldmK`` of the 0x42 row, read over its extents (report/browse/ldm.py). The Sleuth Kit sees
the one 0x42 row and the file system at its start only: a volume made after the conversion,
and a spanned volume's second part, lie in no partition-table row.

The disk is written by tests/builders/ldm.py as Windows lays it out; the file systems by
``mkntfs``/``mkfs.fat`` on files copied into the volumes' extents. Oracles: ``ldmtool`` (libldm)
for the database (names, types, sizes, partitions and where they lie), ``fls``/``icat -o`` at a
simple volume's offset, and, for a spanned volume, ``fls``/``icat`` on a file made by joining
its extents with ``dd``.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from builders.ldm import (
    DATA_START,
    GPT_DATA_START,
    SECTOR,
    Layout,
    Part,
    Volume,
    extents,
    put,
    write_disk,
    write_gpt_disk,
)
from conftest import require_tool, run_bitwitness

MIB = 1 << 20
DISK = 32 * MIB
GROUP = "c5c9f1d4-3e7a-11e6-9a2b-000c29b1e3aa"
#: Volume1 at the 0x42 row's start (TSK sees it), Volume2 spanned over two extents with
#: Volume3, made after it, between them (in no row at all).
LAYOUT = Layout([
    Volume("Volume1", [[Part(0, 16384)]], hint="C:"),
    Volume("Volume2", [[Part(16384, 8192), Part(40960, 8192)]], hint="E:"),
    Volume("Volume3", [[Part(24576, 16384)]], hint="F:"),
], group_guid=GROUP)
BIG = os.urandom(5 * MIB)  # on Volume2: crosses from its first extent into its second


def _sh(*args: str | Path) -> str:
    return subprocess.run([os.fspath(a) for a in args], capture_output=True, text=True,
                          check=True).stdout


def _bytes(*args: str | Path) -> bytes:
    return subprocess.run([os.fspath(a) for a in args], capture_output=True,
                          check=True).stdout


def _fat(work: Path, name: str, files: dict[str, bytes]) -> bytes:
    """An 8 MiB FAT16 with ``files`` at its root, written by mkfs.fat and mcopy."""
    image = work / f"{name}.fat"
    image.unlink(missing_ok=True)
    _sh("mkfs.fat", "-C", "-F", "16", "-s", "2", "-n", name.upper()[:11], image, str(8 * 1024))
    for file, data in files.items():
        source = work / file
        source.write_bytes(data)
        _sh("mcopy", "-i", image, source, f"::/{file}")
    return image.read_bytes()


def _ntfs(work: Path, files: dict[str, bytes]) -> bytes:
    """An 8 MiB NTFS with ``files`` at its root, written by mkntfs and ntfscp."""
    image = work / "v1.ntfs"
    with image.open("wb") as out:
        out.truncate(8 * MIB)
    _sh("mkntfs", "-q", "-F", "-Q", "-L", "SYSTEM", "-p", str(DATA_START), image)
    for file, data in files.items():
        source = work / file
        source.write_bytes(data)
        _sh("ntfscp", "-q", image, source, file)
    return image.read_bytes()


@pytest.fixture(scope="module")
def disk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_tool("mkntfs", "ntfscp", "mkfs.fat", "mcopy")
    work = tmp_path_factory.mktemp("ldm")
    image = work / "dynamic.img"
    with image.open("wb") as out:
        out.truncate(DISK)
    write_disk(image, LAYOUT)
    v1, v2, v3 = LAYOUT.volumes
    put(image, extents(LAYOUT, v1), _ntfs(work, {"boot.ini": b"[boot loader]\r\n" * 40}))
    put(image, extents(LAYOUT, v2), _fat(work, "data", {"BIG.BIN": BIG,
                                                        "NOTE.TXT": b"spanned\n" * 300}))
    put(image, extents(LAYOUT, v3), _fat(work, "later", {"LATER.TXT": b"made later\n" * 99}))
    return image


@pytest.fixture(scope="module")
def attached(disk: Path) -> Iterator[str]:
    """The image as ldmtool reads a disk: a read-only loop device where one can be attached
    (root), else the file itself (libldm reads either, assuming 512-byte sectors)."""
    require_tool("ldmtool")
    loop = None
    if os.geteuid() == 0 and not os.environ.get("BW_NO_LOOP"):
        done = subprocess.run(["losetup", "-f", "--show", "-r", os.fspath(disk)],
                              capture_output=True, text=True, check=False)
        loop = done.stdout.strip() if done.returncode == 0 else None
    try:
        yield loop or os.fspath(disk)
    finally:
        if loop:
            subprocess.run(["losetup", "-d", loop], check=False)


def _ldmtool(device: str, *args: str) -> object:
    return json.loads(_sh("ldmtool", "-d", device, *args))


def _volumes(image: Path) -> list[dict[str, object]]:
    listed = run_bitwitness("partitions", "--json", image)
    assert listed.exit_code == 0, listed.stderr
    (row,) = [p for p in listed.json()["partitions"] if p["volumes"]]
    return row["volumes"]


def test_ldmtool_reads_the_builder_as_written(attached: str) -> None:
    assert _ldmtool(attached, "scan") == [GROUP]
    group = _ldmtool(attached, "show", "diskgroup", GROUP)
    assert group["volumes"] == ["Volume1", "Volume2", "Volume3"]  # type: ignore[index]
    spanned = _ldmtool(attached, "show", "volume", GROUP, "Volume2")
    assert spanned["type"] == "spanned"  # type: ignore[index]
    assert len(spanned["partitions"]) == 2  # type: ignore[index]


def test_every_volume_is_a_child_as_ldmtool_describes_it(disk: Path, attached: str) -> None:
    volumes = _volumes(disk)
    assert [v["path"] for v in volumes] == ["2/ldm1", "2/ldm2", "2/ldm3"]
    for volume in volumes:
        name = str(volume["description"]).split("'")[1]
        said = _ldmtool(attached, "show", "volume", GROUP, name)
        assert isinstance(said, dict)
        assert volume["size"] == said["size"] * SECTOR
        assert f"LDM {said['type']} volume '{name}' ({said['hint']})" in str(
            volume["description"])
        places = []
        for part in said["partitions"]:
            shown = _ldmtool(attached, "show", "partition", GROUP, part)
            assert isinstance(shown, dict)
            first = DATA_START + shown["start"]
            places.append(f"{first}-{first + shown['size'] - 1}")
        assert f"(disk sectors {', '.join(places)})" in str(volume["description"])
    assert [v["filesystem"] for v in volumes] == ["ntfs", "fat16", "fat16"]


def test_tsk_alone_sees_one_row(disk: Path) -> None:
    """Why this matters: mmls lists the 0x42 row and nothing of Volume2 and Volume3."""
    require_tool("mmls")
    rows = [line for line in _sh("mmls", disk).splitlines() if line[:3].isdigit()]
    assert len(rows) == 3  # the table, the gap before sector 63, the 0x42 row
    assert "0x42" in rows[-1]


@pytest.mark.parametrize(("path", "volume"), [("2/ldm1", 0), ("2/ldm3", 2)])
def test_a_simple_volume_lists_and_reads_as_tsk_at_its_offset(disk: Path, path: str,
                                                               volume: int) -> None:
    require_tool("fls", "icat", "ifind")
    sector = str(extents(LAYOUT, LAYOUT.volumes[volume])[0][0] // SECTOR)
    ls = run_bitwitness("ls", "-r", "--all", "-p", path, disk)
    assert ls.exit_code == 0, ls.stderr
    assert ls.stdout.splitlines() == _sh("fls", "-r", "-p", "-o", sector, disk).splitlines()
    name = "boot.ini" if volume == 0 else "LATER.TXT"
    inode = _sh("ifind", "-o", sector, "-n", name, disk).strip()
    expected = _bytes("icat", "-o", sector, disk, inode)
    cat = subprocess.run([sys.executable, "-m", "bitwitness", "cat", "-p", path,
                          os.fspath(disk), f"/{name}"], capture_output=True, check=False)
    assert cat.returncode == 0, cat.stderr
    assert cat.stdout == expected


def test_a_spanned_volume_reads_as_its_extents_joined(disk: Path, tmp_path: Path) -> None:
    require_tool("fls", "icat", "ifind", "dd")
    joined = tmp_path / "volume2.img"
    with joined.open("wb") as out:
        for offset, length in extents(LAYOUT, LAYOUT.volumes[1]):
            out.write(_bytes("dd", f"if={disk}", "bs=512", f"skip={offset // SECTOR}",
                             f"count={length // SECTOR}", "status=none"))
    ls = run_bitwitness("ls", "-r", "--all", "-p", "2/ldm2", disk)
    assert ls.exit_code == 0, ls.stderr
    assert ls.stdout.splitlines() == _sh("fls", "-r", "-p", joined).splitlines()
    inode = _sh("ifind", "-n", "BIG.BIN", joined).strip()
    expected = _bytes("icat", joined, inode)
    assert hashlib.sha256(expected).digest() == hashlib.sha256(BIG).digest()
    cat = subprocess.run([sys.executable, "-m", "bitwitness", "cat", "-p", "2/ldm2",
                          os.fspath(disk), "/BIG.BIN"], capture_output=True, check=False)
    assert cat.returncode == 0, cat.stderr
    assert hashlib.sha256(cat.stdout).digest() == hashlib.sha256(BIG).digest()


def test_without_p_the_volumes_are_named_and_none_chosen(disk: Path) -> None:
    ls = run_bitwitness("ls", disk)
    assert ls.exit_code == 2
    for path in ("-p 2/ldm1 (ntfs)", "-p 2/ldm2 (fat16)", "-p 2/ldm3 (fat16)"):
        assert path in ls.stderr
    row = run_bitwitness("ls", "-p", "2", disk)
    assert row.exit_code == 2
    assert "-p 2/ldm3 (fat16)" in row.stderr


def test_a_gpt_dynamic_disk_lists_its_volumes_under_the_ldm_data_partition(
        tmp_path: Path) -> None:
    """GPT: the database in the "LDM metadata" partition (its PRIVHEAD in the last sector),
    the volumes' partitions counted from the "LDM data" partition, under which they are
    listed; ldmtool reads the same disk (libldm finds GPT disks by the protective MBR)."""
    require_tool("sgdisk", "ldmtool", "mkfs.fat", "mcopy", "fls", "icat", "ifind")
    layout = Layout([Volume(v.name, v.plexes, hint=v.hint) for v in LAYOUT.volumes],
                    group_guid=GROUP)
    image = tmp_path / "gpt.img"
    with image.open("wb") as out:
        out.truncate(DISK)
    write_gpt_disk(image, layout)
    for volume, files in zip(layout.volumes, ({"ONE.TXT": b"first\n" * 50}, {"BIG.BIN": BIG},
                                              {"LATER.TXT": b"made later\n" * 99}), strict=True):
        put(image, extents(layout, volume), _fat(tmp_path, volume.name, files))
    listed = run_bitwitness("partitions", "--json", image).json()
    (row,) = [p for p in listed["partitions"] if p["volumes"]]
    assert row["description"] == "LDM data"
    assert row["start"] == GPT_DATA_START
    disk = _ldmtool(os.fspath(image), "show", "disk", GROUP, "Disk1")
    assert isinstance(disk, dict)
    assert disk["data-start"] == GPT_DATA_START
    for volume in row["volumes"]:
        name = str(volume["description"]).split("'")[1]
        said = _ldmtool(os.fspath(image), "show", "volume", GROUP, name)
        assert isinstance(said, dict)
        assert volume["size"] == said["size"] * SECTOR
        assert volume["filesystem"] == "fat16"
    path = row["volumes"][2]["path"]
    assert path == f"{row['index']}/ldm3"
    sector = str(extents(layout, layout.volumes[2])[0][0] // SECTOR)
    ls = run_bitwitness("ls", "-r", "--all", "-p", path, image)
    assert ls.stdout.splitlines() == _sh("fls", "-r", "-p", "-o", sector, image).splitlines()
    cat = subprocess.run([sys.executable, "-m", "bitwitness", "cat", "-p",
                          row["volumes"][1]["path"], os.fspath(image), "/BIG.BIN"],
                         capture_output=True, check=False)
    assert cat.returncode == 0, cat.stderr
    assert hashlib.sha256(cat.stdout).digest() == hashlib.sha256(BIG).digest()


def test_a_mirror_is_read_from_this_disks_copy(tmp_path: Path) -> None:
    """A mirrored volume over Disk1 and Disk2, imaged from Disk1: its file system is read from
    the partition on this disk, and lists as fls lists it at that partition's offset. ldmtool
    calls the volume mirrored and names both partitions."""
    require_tool("ldmtool", "mkfs.fat", "mcopy", "fls")
    layout = Layout([Volume("Volume1", [[Part(0, 16384)], [Part(0, 16384, "Disk2")]])],
                    disks=["Disk1", "Disk2"], group_guid=GROUP)
    image = tmp_path / "disk1.img"
    with image.open("wb") as out:
        out.truncate(DISK)
    write_disk(image, layout)
    put(image, extents(layout, layout.volumes[0]), _fat(tmp_path, "mirror",
                                                         {"COPY.TXT": b"one of two\n" * 70}))
    said = _ldmtool(os.fspath(image), "show", "volume", GROUP, "Volume1")
    assert isinstance(said, dict)
    assert said["type"] == "mirrored"
    assert len(said["partitions"]) == 2
    (volume,) = _volumes(image)
    assert volume["description"] == ("LDM mirrored volume 'Volume1', 1 extent (disk sectors "
                                     f"{DATA_START}-{DATA_START + 16383}); read from its copy "
                                     "on this disk, not compared with the copy on Disk2")
    assert volume["size"] == said["size"] * SECTOR
    ls = run_bitwitness("ls", "-r", "--all", "-p", "2/ldm1", image)
    assert ls.exit_code == 0, ls.stderr
    assert ls.stdout.splitlines() == _sh("fls", "-r", "-p", "-o", str(DATA_START),
                                         image).splitlines()
