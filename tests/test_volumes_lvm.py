"""LVM2 and XFS: a physical volume whose metadata ``pvcreate``/``vgcreate``/``lvcreate
--activate n`` wrote on a loop device (device-mapper is absent: LVM runs with activation off),
each logical volume's file system then written at the extents ``lvs`` names.

Truths: ``fls``/``icat`` on the plain ext4; the kernel's XFS driver (a read-only loop mount of the
plain XFS, made with ``mkfs.xfs -p protofile``) for names, inode numbers, sizes, times and bytes.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import require_root, require_tool, snapshot
from test_browse_disks import Disks, make_disks
from test_browse_listing import as_fls, fls_lines

LVM_CONFIG = ("devices { obtain_device_list_from_udev=0 } "
              "activation { udev_sync=0 udev_rules=0 } global { activation=0 } "
              "backup { backup=0 archive=0 }")
XFS_FILES = {"docs/report.txt": b"quarterly numbers\n", "docs/deep/data.bin":
             bytes(range(256)) * 4000, "ünïcødé.txt": "ünï\n".encode(), "empty.txt": b""}


@dataclass(frozen=True)
class LvmDisk:
    image: Path
    ext4: Path
    xfs: Path
    volumes: list[tuple[str, int]]  #: (name, size in bytes) in lvs order
    group: str


def _lvm(*args: str) -> str:
    env = {**os.environ, "LVM_SUPPRESS_FD_WARNINGS": "1"}
    return subprocess.run([args[0], "--config", LVM_CONFIG, *args[1:]], capture_output=True,
                          text=True, check=True, env=env).stdout


def _xfs(base: Path) -> Path:
    stage = base / "xfs-stage"
    for name, data in XFS_FILES.items():
        (stage / name).parent.mkdir(parents=True, exist_ok=True)
        (stage / name).write_bytes(data)
    lines = ["bitwitness-xfs", "0 0", "d--755 0 0"]

    def folder(path: Path, depth: int) -> None:
        for child in sorted(path.iterdir()):
            if child.is_dir():
                lines.append(f"{child.name} d--750 1000 1000")
                folder(child, depth + 1)
                lines.append("$")
            else:
                lines.append(f"{child.name} ---640 1000 100 {child}")

    folder(stage, 0)
    lines.append("$")
    proto = base / "proto.txt"
    proto.write_text("\n".join(lines) + "\n", encoding="utf-8")
    image = base / "plain.xfs"
    subprocess.run(["truncate", "-s", "300M", str(image)], check=True)
    subprocess.run(["mkfs.xfs", "-q", "-p", str(proto), str(image)], check=True)
    return image


@pytest.fixture(scope="module")
def lvm_disk(tmp_path_factory: pytest.TempPathFactory) -> LvmDisk:
    require_root()
    require_tool("pvcreate", "vgcreate", "lvcreate", "lvs", "pvs", "losetup",
                 "mkfs.xfs", "fls", "icat")
    disks: Disks = make_disks(tmp_path_factory)
    base = tmp_path_factory.mktemp("lvm")
    xfs = _xfs(base)
    image = base / "pv.img"
    subprocess.run(["truncate", "-s", "360M", str(image)], check=True)
    group = f"bwtest{os.getpid()}"
    try:
        loop = subprocess.run(["losetup", "-f", "--show", str(image)], capture_output=True,
                              text=True, check=True).stdout.strip()
    except subprocess.CalledProcessError as exc:
        pytest.skip(f"no loop device: {exc.stderr.strip()}")
    try:
        _lvm("pvcreate", "-q", loop)
        _lvm("vgcreate", "-q", "-s", "4M", group, loop)
        _lvm("lvcreate", "-q", "--activate", "n", "--zero", "n", "-L", "32M", "-n", "linux",
             group)
        _lvm("lvcreate", "-q", "--activate", "n", "--zero", "n", "-L", "300M", "-n", "xfsdata",
             group)
        rows = _lvm("lvs", "--noheadings", "--units", "b", "--nosuffix", "-o",
                    "lv_name,lv_size,seg_pe_ranges,vg_extent_size", group)
        pe_start = int(_lvm("pvs", "--noheadings", "--units", "b", "--nosuffix", "-o",
                            "pe_start", loop).strip())
    finally:
        # nothing is active (activation is off) and LVM keeps no state but what it wrote on the
        # device, so detaching the loop device is the whole clean-up
        subprocess.run(["losetup", "-d", loop], check=False)
    volumes = []
    for line in rows.splitlines():
        name, size, ranges, extent = line.split()
        first = int(ranges.rsplit(":", 1)[1].split("-")[0])
        volumes.append((name, int(size), pe_start + first * int(extent)))
    return _place(image, disks.ext4, xfs, volumes, group)


def _place(image: Path, ext4: Path, xfs: Path, volumes: list[tuple[str, int, int]],
           group: str) -> LvmDisk:
    for (_name, _size, offset), plain in zip(volumes, (ext4, xfs), strict=True):
        subprocess.run(["dd", f"if={plain}", f"of={image}", "bs=1M", f"seek={offset}",
                        "oflag=seek_bytes", "conv=notrunc,sparse", "status=none"], check=True)
    image.chmod(0o444)
    return LvmDisk(image, ext4, xfs, [(n, s) for n, s, _ in volumes], group)


def test_partitions_lists_the_logical_volumes_lvs_names(lvm_disk: LvmDisk, bw) -> None:
    result = bw("partitions", "--json", lvm_disk.image)
    assert result.exit_code == 0, result.stderr
    (row,) = result.json()["partitions"]
    assert row["filesystem"] is None
    ours = row["volumes"]
    assert [v["path"] for v in ours] == [f"0/lv{i + 1}" for i in range(len(lvm_disk.volumes))]
    for volume, (name, size) in zip(ours, lvm_disk.volumes, strict=True):
        assert volume["kind"] == "lvm"
        assert volume["description"] == f"LVM logical volume {lvm_disk.group}/{name}"
        assert volume["size"] == size
    assert [v["filesystem"] for v in ours] == ["ext4", "xfs"]


def test_ext4_in_a_logical_volume_matches_fls_and_icat(lvm_disk: LvmDisk, bw) -> None:
    before = snapshot([lvm_disk.image])
    listing = bw("ls", lvm_disk.image, "-r", "--all", "--json", "-p", "0/lv1")
    assert listing.exit_code == 0, listing.stderr
    entries = listing.json()["entries"]
    assert Counter(as_fls(e) for e in entries) == fls_lines(lvm_disk.ext4)
    notes = next(e for e in entries if e["path"] == "/home/ana/notes.txt")
    theirs = subprocess.run(["icat", str(lvm_disk.ext4), notes["inode"]], capture_output=True,
                            check=True).stdout
    assert bw("cat", lvm_disk.image, "/home/ana/notes.txt", "-p", "0/lv1").stdout.encode() == \
        theirs
    assert snapshot([lvm_disk.image]) == before


@pytest.fixture(scope="module")
def kernel_xfs(lvm_disk: LvmDisk, tmp_path_factory: pytest.TempPathFactory):
    mount = tmp_path_factory.mktemp("xfsmount")
    done = subprocess.run(["mount", "-o", "ro,loop,norecovery", str(lvm_disk.xfs), str(mount)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"the kernel cannot mount XFS here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def _when(ns: int) -> str | None:
    """A kernel time as our JSON writes it (None for 0: the file system recorded none)."""
    if not ns:
        return None
    return datetime.fromtimestamp(ns // 1000 / 1e6, UTC).isoformat()


def _perms(mode: int) -> str:
    return "".join(c if mode & (1 << (8 - i)) else "-" for i, c in enumerate("rwxrwxrwx"))


def test_xfs_in_a_logical_volume_matches_the_kernel(lvm_disk: LvmDisk, kernel_xfs: Path,
                                                    bw) -> None:
    theirs = {}
    for folder, dirs, files in os.walk(kernel_xfs):
        for name in [*dirs, *files]:
            path = Path(folder) / name
            info = path.lstat()
            theirs["/" + str(path.relative_to(kernel_xfs))] = {
                "inode": str(info.st_ino), "type": "d/d" if path.is_dir() else "r/r",
                "size": None if path.is_dir() else info.st_size, "mode": _perms(info.st_mode),
                "uid": info.st_uid, "gid": info.st_gid, "links": info.st_nlink,
                "modified": _when(info.st_mtime_ns), "accessed": _when(info.st_atime_ns),
                "changed": _when(info.st_ctime_ns)}
    listing = bw("ls", lvm_disk.image, "-r", "--all", "--json", "-p", "0/lv2")
    assert listing.exit_code == 0, listing.stderr
    assert listing.json()["filesystem"] == "xfs"
    ours = {}
    for entry in listing.json()["entries"]:
        stat = bw("stat", "--json", lvm_disk.image, "--inode", entry["inode"], "-p", "0/lv2")
        assert stat.exit_code == 0, stat.stderr
        doc = stat.json()
        ours[entry["path"]] = {key: doc[key] for key in theirs[next(iter(theirs))]}
        ours[entry["path"]]["size"] = None if entry["type"] == "d/d" else entry["size"]
        ours[entry["path"]]["type"] = entry["type"]
        for key in ("modified", "accessed", "changed"):
            value = ours[entry["path"]][key]
            ours[entry["path"]][key] = value.replace("Z", "+00:00") if value else None
    assert ours == theirs
    for rel in XFS_FILES:
        proc = subprocess.run([sys.executable, "-m", "bitwitness", "cat", str(lvm_disk.image),
                               f"/{rel}", "-p", "0/lv2"], capture_output=True, check=False)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout == (kernel_xfs / rel).read_bytes()
