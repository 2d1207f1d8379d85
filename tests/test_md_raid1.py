"""One disk of a Linux md RAID1 with metadata 1.2 (as NAS boxes and Linux installers make their
data arrays): the superblock 4 KiB in, the array's data from ``data_offset`` on. A RAID1 member
is a whole copy of the array, so its data is browsed as the volume ``N/md`` (report/browse/
mdraid.py), a file system or LVM inside it included; no file system is found at the member's
own start, which used to leave the partition looking empty.

Oracles: ``mdadm --examine`` (reads the member file: level, data offset, checksum), ``fls`` and
``icat`` at the data offset (``-o``), ``pvs``/``lvs`` for LVM inside the array.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from builders.mdraid import write_member
from conftest import require_root, require_tool, run_bitwitness

MIB = 1 << 20


def _sh(*args: str | Path, **kwargs: object) -> str:
    return subprocess.run([os.fspath(a) for a in args], capture_output=True, text=True,
                          check=True, **kwargs).stdout  # type: ignore[call-overload]


def _blank(path: Path, size: int) -> Path:
    with path.open("wb") as out:
        out.truncate(size)
    return path


@pytest.fixture(scope="module")
def member(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    """A 48 MiB RAID1 member, data at 1 MiB: an ext4 written there by mkfs.ext4 -d."""
    require_tool("mdadm", "mkfs.ext4", "fls", "icat")
    work = tmp_path_factory.mktemp("md1")
    tree = work / "tree"
    (tree / "docs").mkdir(parents=True)
    (tree / "docs" / "report.txt").write_bytes(b"quarterly figures\n" * 500)
    (tree / "photo.bin").write_bytes(os.urandom(300_000))
    image = _blank(work / "member.img", 48 * MIB)
    data = write_member(image, level=1, raid_disks=2, data_offset=2048)
    _sh("mkfs.ext4", "-q", "-F", "-E", f"offset={data}", "-d", tree, image,
        f"{(48 * MIB - data) // 1024}k")
    return image, data


def test_mdadm_reads_the_member_as_written(member: tuple[Path, int]) -> None:
    image, data = member
    examined = _sh("mdadm", "--examine", image)
    assert re.search(r"Raid Level : raid1", examined)
    assert re.search(rf"Data Offset : {data // 512} sectors", examined)
    assert re.search(r"Checksum : \w+ - correct", examined)


def test_raid1_member_is_browsed_at_its_data(member: tuple[Path, int]) -> None:
    image, data = member
    sector = str(data // 512)
    listed = run_bitwitness("partitions", "--json", image).json()
    (row,) = listed["partitions"]
    (volume,) = row["volumes"]
    assert volume["path"] == "0/md"
    assert volume["filesystem"] == "ext4"
    assert volume["offset"] == data
    assert "md RAID1 member of 'host:0' (device 0 of 2, metadata 1.2)" in volume["description"]
    ls = run_bitwitness("ls", "-r", "-p", "0/md", image)
    assert ls.exit_code == 0, ls.stderr
    assert ls.stdout.splitlines() == _sh("fls", "-r", "-p", "-o", sector, image).splitlines()
    assert run_bitwitness("ls", "-r", image).stdout == ls.stdout  # the one file system there
    inode = _sh("ifind", "-o", sector, "-n", "photo.bin", image).strip()
    expected = subprocess.run(["icat", "-o", sector, os.fspath(image), inode],
                              capture_output=True, check=True).stdout
    cat = subprocess.run([sys.executable, "-m", "bitwitness", "cat", "-p", "0/md",
                          os.fspath(image), "/photo.bin"], capture_output=True, check=False)
    assert cat.returncode == 0, cat.stderr
    assert hashlib.sha256(cat.stdout).digest() == hashlib.sha256(expected).digest()


def test_lvm_inside_the_array_is_found(tmp_path: Path) -> None:
    """md, then LVM, then a file system: the NAS layering (Synology's data volumes). LVM is
    written by pvcreate/vgcreate/lvcreate on a loop device over the array's data (activation
    off: no device-mapper), the ext4 by mkfs.ext4 where lvs places the logical volume."""
    from test_volumes_lvm import _lvm

    require_root()
    require_tool("pvcreate", "vgcreate", "lvcreate", "lvs", "pvs", "losetup", "mkfs.ext4",
                 "fls")
    image = _blank(tmp_path / "member.img", 64 * MIB)
    data = write_member(image, level=1, raid_disks=2, data_offset=2048)
    group = f"bwmd{os.getpid()}"
    try:
        loop = _sh("losetup", "-f", "--show", "-o", str(data), image).strip()
    except subprocess.CalledProcessError as exc:
        pytest.skip(f"no loop device: {exc.stderr.strip()}")
    try:
        _lvm("pvcreate", "-q", loop)
        _lvm("vgcreate", "-q", "-s", "4M", group, loop)
        _lvm("lvcreate", "-q", "--activate", "n", "--zero", "n", "-L", "16M", "-n", "share",
             group)
        ranges, extent = _lvm("lvs", "--noheadings", "--units", "b", "--nosuffix", "-o",
                              "seg_pe_ranges,vg_extent_size", group).split()
        pe_start = int(_lvm("pvs", "--noheadings", "--units", "b", "--nosuffix", "-o",
                            "pe_start", loop).strip())
    finally:
        subprocess.run(["losetup", "-d", loop], check=False)
    first = int(ranges.rsplit(":", 1)[1].split("-")[0])
    at = data + pe_start + first * int(extent)
    _sh("mkfs.ext4", "-q", "-F", "-E", f"offset={at}", image, "16M")
    listed = run_bitwitness("partitions", "--json", image).json()
    (row,) = listed["partitions"]
    (md,) = row["volumes"]
    assert md["path"] == "0/md"
    (lv,) = md["volumes"]
    assert lv["description"] == f"LVM logical volume {group}/share"
    assert lv["filesystem"] == "ext4"
    ls = run_bitwitness("ls", "-r", "-p", lv["path"], image)
    assert ls.exit_code == 0, ls.stderr
    assert ls.stdout.splitlines() == _sh("fls", "-r", "-p", "-o", str(at // 512),
                                         image).splitlines()


def test_a_hostile_array_name_cannot_drive_the_terminal(tmp_path: Path) -> None:
    """The array's name is evidence: an escape sequence or a bidirectional override in it is
    shown as text in the table and in error lines (``^`` and ``\\u202e``, as names are),
    never sent to the terminal; the JSON keeps it exactly."""
    image = _blank(tmp_path / "member.img", 8 * MIB)
    name = "\x1b[31mred\u202eevil[bold]"
    write_member(image, level=5, raid_disks=3, name=name)
    table = run_bitwitness("partitions", image)
    assert table.exit_code == 0, table.stderr
    assert "\x1b" not in table.stdout
    assert "\u202e" not in table.stdout
    assert "'^[31mred\\u202eevil[bold]'" in table.stdout
    refused = run_bitwitness("ls", image)
    assert refused.exit_code == 2
    assert "\x1b" not in refused.stderr
    assert "^[31mred" in refused.stderr
    listed = run_bitwitness("partitions", "--json", image).json()
    assert name in listed["partitions"][0]["unread"]


def test_a_damaged_or_impossible_superblock_is_named_not_read(tmp_path: Path) -> None:
    """A superblock whose checksum fails is not trusted for where the data is (mdadm says the
    checksum is wrong); its magic still names the member. One whose data lies past the member's
    end is named with that reason. Neither becomes a volume."""
    require_tool("mdadm")
    bad_sum = _blank(tmp_path / "badsum.img", 8 * MIB)
    write_member(bad_sum, level=1)
    with bad_sum.open("r+b") as out:
        out.seek(4096 + 72)
        out.write(b"\x05")  # level 5 now, the checksum still RAID1's
    examined = subprocess.run(["mdadm", "--examine", os.fspath(bad_sum)], capture_output=True,
                              text=True, check=False).stdout
    assert re.search(r"Checksum : \w+ - expected \w+", examined), examined
    (row,) = run_bitwitness("partitions", "--json", bad_sum).json()["partitions"]
    assert row["volumes"] == []
    assert row["unread"] == "Linux software RAID (md) member"
    beyond = _blank(tmp_path / "beyond.img", 8 * MIB)
    write_member(beyond, level=1, data_offset=64 * 1024, data_size=8192)  # 32 MiB in
    (row,) = run_bitwitness("partitions", "--json", beyond).json()["partitions"]
    assert row["volumes"] == []
    assert "its data lies outside the member" in row["unread"]
