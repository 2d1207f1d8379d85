"""Volumes no reader here opens are named by what they hold (unreadable.py), never shown as
empty: each is made by its own format's tool where Debian has one, or written as the header its
format defines, and ``blkid -p`` (libblkid, an independent prober) is the oracle of what it is.
``partitions`` appends "(not read by BitWitness)" to the row, ``--json`` gives ``unread``, and
``ls`` on an image holding nothing it reads names what is there (exit 2, one line).
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from builders.mdraid import write_member
from conftest import require_tool, run_bitwitness

MIB = 1 << 20


def _sh(*args: str | Path) -> None:
    subprocess.run([os.fspath(a) for a in args], capture_output=True, check=True)


def _blank(path: Path, size: int) -> Path:
    with path.open("wb") as out:
        out.truncate(size)
    return path


def _swap(work: Path) -> Path:
    require_tool("mkswap")
    image = _blank(work / "swap.img", 16 * MIB)
    _sh("mkswap", image)
    return image


def _hibernation(work: Path) -> Path:
    """mkswap's area with the signature the kernel writes over it while a hibernation image
    is stored there."""
    image = _swap(work)
    data = bytearray(image.read_bytes())
    assert data[4096 - 10:4096] == b"SWAPSPACE2"
    data[4096 - 10:4096] = b"S1SUSPEND\x00"
    image.write_bytes(data)
    return image


def _formatted(tool: str, mib: int, *options: str) -> Callable[[Path], Path]:
    """A builder: an empty file of ``mib`` MiB formatted by ``tool options FILE``."""
    def build(work: Path) -> Path:
        require_tool(tool)
        image = _blank(work / f"{tool}.img", mib * MIB)
        _sh(tool, *options, image)
        return image

    return build


_f2fs = _formatted("mkfs.f2fs", 64, "-q")
_jfs = _formatted("mkfs.jfs", 32, "-q")
_reiserfs = _formatted("mkreiserfs", 64, "-q", "-f")
_nilfs2 = _formatted("mkfs.nilfs2", 160, "-q", "-f")
_minix1 = _formatted("mkfs.minix", 8, "-1")
_minix2 = _formatted("mkfs.minix", 8, "-2")
_minix3 = _formatted("mkfs.minix", 8, "-3")
_bfs = _formatted("mkfs.bfs", 8)


def _tree(work: Path) -> Path:
    tree = work / "tree"
    tree.mkdir(exist_ok=True)
    (tree / "a.txt").write_bytes(b"a file\n")
    return tree


def _squashfs(work: Path) -> Path:
    require_tool("mksquashfs")
    image = work / "squashfs.img"
    _sh("mksquashfs", _tree(work), image, "-quiet", "-noappend")
    return image


def _erofs(work: Path) -> Path:
    require_tool("mkfs.erofs")
    image = work / "erofs.img"
    _sh("mkfs.erofs", image, _tree(work))
    return image


def _cramfs(work: Path) -> Path:
    require_tool("mkfs.cramfs")
    image = work / "cramfs.img"
    _sh("mkfs.cramfs", _tree(work), image)
    return image


def _hfs(work: Path) -> Path:
    require_tool("hformat")
    image = _blank(work / "hfs.img", 8 * MIB)
    _sh("hformat", "-l", "Classic", image)
    return image


def _refs(work: Path) -> Path:
    """A ReFS boot sector: "ReFS" and four NULs after the jump, "FSRS" at 0x10, the sector
    size, the boot signature (nothing on Linux makes ReFS)."""
    sector = bytearray(512)
    sector[3:11] = b"ReFS\x00\x00\x00\x00"
    sector[16:20] = b"FSRS"
    struct.pack_into("<H", sector, 20, 512)
    sector[510:512] = b"\x55\xaa"
    image = _blank(work / "refs.img", 64 * MIB)
    with image.open("r+b") as out:
        out.write(sector)
    return image


def _vmfs(work: Path) -> Path:
    """VMFS's LVM header magic opening the volume's second MiB (ESXi writes VMFS; nothing here
    does)."""
    image = _blank(work / "vmfs.img", 8 * MIB)
    with image.open("r+b") as out:
        out.seek(MIB)
        out.write(struct.pack("<I", 0xC001D00D))
    return image


def _reiser4(work: Path) -> Path:
    image = _blank(work / "reiser4.img", 8 * MIB)
    with image.open("r+b") as out:
        out.seek(65536)
        out.write(b"ReIsEr4\x00")
    return image


def _md(work: Path) -> Path:
    """One member of a three-disk md RAID5, metadata 1.2 (tests/builders/mdraid.py): a share
    of the array only, so named, not read (a RAID1 member is read: test_md_raid1.py)."""
    image = _blank(work / "md.img", 8 * MIB)
    write_member(image, level=5, raid_disks=3)
    return image


#: (builder, what blkid -p calls it, what BitWitness names it)
CASES: list[tuple[Callable[[Path], Path], str, str]] = [
    (_swap, "swap", "Linux swap space"),
    (_hibernation, "swsuspend", "Linux swap space holding a hibernation image"),
    (_f2fs, "f2fs", "F2FS file system"),
    (_jfs, "jfs", "JFS file system"),
    (_reiserfs, "reiserfs", "ReiserFS file system"),
    (_nilfs2, "nilfs2", "NILFS2 file system"),
    (_minix1, "minix", "Minix file system (version 1)"),
    (_minix2, "minix", "Minix file system (version 2)"),
    (_minix3, "minix", "Minix file system (version 3)"),
    (_bfs, "bfs", "SCO BFS (boot file system)"),
    (_squashfs, "squashfs", "SquashFS file system"),
    (_erofs, "erofs", "EROFS file system"),
    (_cramfs, "cramfs", "cramfs file system"),
    (_hfs, "hfs", "classic HFS (Mac OS Standard) file system"),
    (_refs, "ReFS", "ReFS file system"),
    (_vmfs, "VMFS_volume_member", "VMware VMFS volume"),
    (_reiser4, "reiser4", "Reiser4 file system"),
    (_md, "linux_raid_member", "Linux software RAID: md RAID5 member of 'host:0' (device 0 of 3, "
                               "metadata 1.2); it holds a share of the array, which needs its "
                               "other members"),
]


def _blkid(image: Path) -> str:
    return subprocess.run(["blkid", "-p", "-o", "value", "-s", "TYPE", os.fspath(image)],
                          capture_output=True, text=True, check=False).stdout.strip()


@pytest.mark.parametrize(("build", "blkid_type", "named"), CASES,
                         ids=[case[2] for case in CASES])
def test_each_is_named_as_blkid_finds_it(build: Callable[[Path], Path], blkid_type: str,
                                         named: str, tmp_path: Path) -> None:
    require_tool("blkid")
    image = build(tmp_path)
    assert _blkid(image) == blkid_type
    listed = run_bitwitness("partitions", "--json", image)
    assert listed.exit_code == 0, listed.stderr
    (row,) = json.loads(listed.stdout)["partitions"]
    assert row["filesystem"] is None
    assert row["unread"] == named
    table = run_bitwitness("partitions", image).stdout
    assert f"{named} (not read by BitWitness)" in table
    ls = run_bitwitness("ls", image)
    assert ls.exit_code == 2
    assert ls.stderr.strip().splitlines() == [
        f"bitwitness: error: no file system BitWitness reads in this image; it holds: "
        f"{named} (-p 0)"]


def test_file_systems_and_empty_rows_are_not_named(tmp_path: Path) -> None:
    """A disk with swap, ext4 and an empty partition (sgdisk, mkswap, mkfs.ext4 at the rows'
    offsets): only the swap row is named, ``ls`` without ``-p`` takes the ext4, and ``ls -p``
    of the swap row names it."""
    require_tool("sgdisk", "mkswap", "mkfs.ext4", "blkid")
    image = _blank(tmp_path / "disk.img", 64 * MIB)
    _sh("sgdisk", "-n", "1:2048:+16M", "-t", "1:8200", "-n", "2:0:+24M", "-t", "2:8300",
        "-n", "3:0:0", image)
    rows = run_bitwitness("partitions", "--json", image).json()["partitions"]
    swap, ext4, empty = (r for r in rows if r["kind"] == "partition")
    part = tmp_path / "part.img"
    for row, make in ((swap, ["mkswap"]), (ext4, ["mkfs.ext4", "-q", "-F"])):
        _blank(part, row["length"] * 512)
        _sh(*make, part)
        with image.open("r+b") as out:
            out.seek(row["start"] * 512)
            out.write(part.read_bytes())
    assert _blkid(part) == "ext4"
    listed = {r["index"]: r
              for r in run_bitwitness("partitions", "--json", image).json()["partitions"]}
    assert listed[swap["index"]]["unread"] == "Linux swap space"
    assert listed[ext4["index"]]["filesystem"] == "ext4"
    assert listed[ext4["index"]]["unread"] is None
    assert listed[empty["index"]]["unread"] is None
    assert not any(r["unread"] for r in listed.values() if r["kind"] != "partition")
    assert run_bitwitness("ls", image).exit_code == 0  # the one file system there is
    refused = run_bitwitness("ls", "-p", str(swap["index"]), image)
    assert refused.exit_code == 2
    assert "Linux swap space (not read by BitWitness)" in refused.stderr


@pytest.mark.parametrize("size", [0, 700, 1026, 1030, 4099])
def test_signatures_cut_short_name_nothing(size: int, tmp_path: Path) -> None:
    """An image ending inside a signature's fields (a classic HFS "BD" at 1 KiB with nothing
    after it) is no volume of that kind, and no error."""
    data = bytearray(size)
    data[1024:1026] = b"BD"[:max(0, size - 1024)]
    image = tmp_path / "short.img"
    image.write_bytes(bytes(data[:size]))
    listed = run_bitwitness("partitions", "--json", image)
    assert listed.exit_code in (0, 2), listed.stderr
    assert "Traceback" not in listed.stderr
    if listed.exit_code == 0:
        assert all(r["unread"] is None for r in listed.json()["partitions"])


@pytest.mark.parametrize(("label", "named"), [
    ("dvh", "SGI disk volume header (a partition table)"),
    ("amiga", "Amiga Rigid Disk Block (a partition table)"),
])
def test_partition_tables_tsk_does_not_read_are_named(label: str, named: str,
                                                      tmp_path: Path) -> None:
    """A disk parted labelled with a scheme The Sleuth Kit does not read is not shown as
    having no partition table (parted's own reading of its label is the reference)."""
    require_tool("parted")
    image = _blank(tmp_path / f"{label}.img", 64 * MIB)
    subprocess.run(["parted", "-s", str(image), "mklabel", label, "mkpart", "primary",
                    "1MiB", "20MiB"], capture_output=True, check=False)
    printed = subprocess.run(["parted", "-m", "-s", str(image), "print"], capture_output=True,
                             text=True, check=False).stdout.splitlines()
    assert printed[1].split(":")[5] == label  # parted reads back the label it wrote
    listed = run_bitwitness("partitions", "--json", image)
    assert listed.exit_code == 0, listed.stderr
    (row,) = json.loads(listed.stdout)["partitions"]
    assert row["unread"] == named
    table = run_bitwitness("partitions", image).stdout
    assert f"{named} (not read by BitWitness)" in table
    assert "no partition table" not in table
