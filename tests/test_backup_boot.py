"""Volumes whose boot sector (ext: superblock) is wiped, read through the copy NTFS, exFAT
and ext keep (report/browse/bootbackup.py); a FAT32 TSK reads through its own backup is said
to be so.

Each volume is made by the test suite's builders (mkntfs and ntfs-3g, mkfs.fat and mtools,
mkfs.exfat and exfat-fuse; the NTFS also inside an MBR partition made by sfdisk), then its
first sector is zeroed on a copy. The truth is The Sleuth Kit on the intact volume: the wiped
one must list what ``fls -r -p`` lists on the intact one and give ``icat``'s bytes, while
``fls`` on the wiped one finds nothing. With the backup wiped too there is nothing to read.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import fsimages
import pytest
from conftest import require_tool, run_bitwitness

SECTOR = 512


def _mbr_disk(volume: Path, disk: Path) -> int:
    """``volume`` in an MBR partition starting at sector 2048 of ``disk``; its start."""
    data = volume.read_bytes()
    with disk.open("wb") as out:
        out.truncate((2048 + 2048) * SECTOR + len(data))
    subprocess.run(["sfdisk", "-q", disk], input=f"start=2048, size={len(data) // SECTOR}, "
                   "type=7\n".encode(), check=True, capture_output=True)
    with disk.open("r+b") as out:
        out.seek(2048 * SECTOR)
        out.write(data)
    return 2048


def _ext(image: Path, block: int) -> Path:
    """An ext4 by mkfs.ext4 -d, large enough for a second block group (a backup superblock)."""
    require_tool("mkfs.ext4", "dumpe2fs")
    tree = image.parent / "tree"
    (tree / "folder").mkdir(parents=True, exist_ok=True)
    (tree / "a.txt").write_bytes(b"ext content\n")
    (tree / "folder" / "b.bin").write_bytes(bytes(range(256)) * 64)
    with image.open("wb") as out:
        out.truncate((16 if block == 1024 else 160) << 20)
    subprocess.run(["mkfs.ext4", "-q", "-b", str(block), "-d", tree, image], check=True)
    return image


BUILDERS: dict[str, Callable[[Path], Path]] = {
    "ntfs": lambda p: fsimages.ntfs(p, small=True),
    "fat32": lambda p: fsimages.fat(p, 32),
    "exfat": fsimages.exfat,
    "ext4": lambda p: _ext(p, 4096),
    "ext4_1k": lambda p: _ext(p, 1024),
}


def _backup_superblock(image: Path) -> int:
    """The byte offset of the first backup superblock, as dumpe2fs reads it."""
    shown = subprocess.run(["dumpe2fs", image], capture_output=True, text=True,
                           check=True).stdout
    block = int(re.search(r"^Block size:\s+(\d+)", shown, re.MULTILINE).group(1))
    return int(re.search(r"Backup superblock at (\d+)", shown).group(1)) * block


@pytest.fixture(scope="module",
                params=["ntfs", "ntfs-in-mbr", "fat32", "exfat", "ext4", "ext4_1k"])
def volumes(request: pytest.FixtureRequest,
            tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, int, str]:
    """(intact image, wiped copy, start sector of the volume, kind)."""
    require_tool("fls", "icat")
    kind = request.param.split("-")[0]
    work = tmp_path_factory.mktemp(request.param)
    try:
        volume = BUILDERS[kind](work / "volume.img")
    except fsimages.Unavailable as exc:
        pytest.skip(str(exc))
    start = 0
    intact = volume
    if request.param.endswith("mbr"):
        require_tool("sfdisk")
        intact = work / "disk.img"
        start = _mbr_disk(volume, intact)
    wiped = work / "wiped.img"
    data = bytearray(intact.read_bytes())
    if kind.startswith("ext4"):  # the primary superblock: 1024 bytes at byte 1024
        data[1024:2048] = bytes(1024)
    else:
        data[start * SECTOR:(start + 1) * SECTOR] = bytes(SECTOR)
    wiped.write_bytes(bytes(data))
    return intact, wiped, start, kind


def _fls(image: Path, start: int) -> list[str]:
    return subprocess.run(["fls", "-r", "-p", "-o", str(start), image], capture_output=True,
                          text=True, check=False).stdout.splitlines()


def _where(start: int) -> list[str]:
    return ["--offset", str(start)] if start else []


def test_tsk_alone_finds_nothing_on_the_wiped_copy(volumes: tuple[Path, Path, int, str]
                                                   ) -> None:
    """NTFS and exFAT: TSK gives up; FAT32: TSK reads the backup at sector 6 itself."""
    intact, wiped, start, kind = volumes
    assert _fls(intact, start)
    if kind == "fat32":
        assert _fls(wiped, start) == _fls(intact, start)
    else:
        assert _fls(wiped, start) == []


def test_the_wiped_volume_lists_and_reads_as_the_intact_one(
        volumes: tuple[Path, Path, int, str]) -> None:
    intact, wiped, start, kind = volumes
    before = hashlib.sha256(wiped.read_bytes()).hexdigest()
    listed = run_bitwitness("ls", "-r", "--all", wiped, *_where(start))
    assert listed.exit_code == 0, listed.stderr
    assert sorted(listed.stdout.splitlines()) == sorted(_fls(intact, start))
    assert "with the backup copy" in listed.stderr
    parts = run_bitwitness("partitions", "--json", wiped).json()["partitions"]
    row = next(p for p in parts if p["start"] == start and p["filesystem"])
    reader = None if kind == "fat32" else "backup boot sector"  # FAT32: TSK's own reading
    assert (row["filesystem"], row["reader"]) == (kind.split("_")[0], reader)
    if kind.startswith("ext4"):
        assert (f"read with the backup copy at sector {_backup_superblock(intact) // SECTOR}"
                in listed.stderr)
    files = [line for line in _fls(intact, start) if line.startswith("r/r ")
             and "$" not in line and "* " not in line]
    assert files
    for line in files[:5]:
        address, path = line.split(" ", 1)[1].split(":\t", 1)
        truth = subprocess.run(["icat", "-o", str(start), intact, address],
                               capture_output=True, check=True).stdout
        cat = subprocess.run([sys.executable, "-m", "bitwitness", "cat", wiped, "/" + path,
                              *_where(start)], capture_output=True, check=False)
        assert (cat.returncode, cat.stdout) == (0, truth), path
    assert hashlib.sha256(wiped.read_bytes()).hexdigest() == before  # nothing written


def test_no_backup_no_file_system(volumes: tuple[Path, Path, int, str],
                                  tmp_path: Path) -> None:
    _, wiped, start, kind = volumes
    data = bytearray(wiped.read_bytes())
    if kind == "ntfs":  # the copy: the volume's last sector (_mbr_disk adds 4096 sectors)
        last = start + len(data) // SECTOR - (4096 if start else 0) - 1
        data[last * SECTOR:(last + 1) * SECTOR] = bytes(SECTOR)
    elif kind == "fat32":
        data[(start + 6) * SECTOR:(start + 7) * SECTOR] = bytes(SECTOR)
    elif kind.startswith("ext4"):
        at = _backup_superblock(volumes[0])
        data[at:at + 1024] = bytes(1024)
    else:  # exFAT: the backup boot region's first sector
        data[(start + 12) * SECTOR:(start + 13) * SECTOR] = bytes(SECTOR)
    both = tmp_path / "both.img"
    both.write_bytes(bytes(data))
    result = run_bitwitness("ls", both, *_where(start))
    assert result.exit_code != 0
    assert "with the backup copy" not in result.stderr
