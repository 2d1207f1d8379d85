"""``bitwitness mount --files`` over the file-system images of the parity tests
(``tests/fsimages.py``): NTFS streams and deleted folders, an ext4 deleted name whose inode a
newer file took over, and an ext2 whose names are hostile (``.``, ``..``, ``/`` inside, not
UTF-8, control bytes). Contents are checked against ``icat``."""

from __future__ import annotations

import subprocess
from pathlib import Path

import fsimages
import pytest
from conftest import require_tool, snapshot
from test_mount import Foreground, require_fuse

from bitwitness.report.mount.tree import mount_name

pytestmark = pytest.mark.slow


def _build(name: str, folder: Path) -> Path:
    try:
        return fsimages.BUILDERS[name](folder / f"{name}.img")
    except fsimages.Unavailable as exc:
        pytest.skip(f"{name} cannot be built here: {exc}")


def _icat(image: Path, address: str) -> bytes:
    return subprocess.run(["icat", str(image), address], capture_output=True,
                          check=True).stdout


def _inode(image: Path, path: str) -> str:
    return subprocess.run(["ifind", "-n", path, str(image)], capture_output=True, text=True,
                          check=True).stdout.strip()


def test_ntfs_streams_and_deleted_folders(tmp_path: Path) -> None:
    require_fuse()
    require_tool("icat", "ifind")
    image = _build("ntfs", tmp_path)
    before = snapshot([image])
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    fg = Foreground(image, mnt, "--files")
    try:
        live, gone = mnt / "files" / "0", mnt / "files" / "0.deleted"
        stream = live / "dir" / "small.txt:Zone.Identifier"
        assert stream.read_bytes() == b"[ZoneTransfer]\nZoneId=3\n"
        address = _inode(image, "/dir/small.txt")
        assert (live / "dir" / "small.txt").read_bytes() == _icat(image, address)
        assert (live / "dir" / "big.bin").read_bytes() == bytes(range(256)) * 800
        assert (live / "dir" / "sub" / "comp.txt").read_bytes() == b"compress me " * 9000
        sparse = (live / "dir" / "sparse.bin").read_bytes()
        assert sparse == bytes(409600) + b"after a hole\n"
        assert not (live / "gone").exists()
        assert (gone / "gone").is_dir()
        assert {p.name for p in (gone / "gone").iterdir()} >= {"o0.txt", "o1.txt", "o2.txt"}
        assert (gone / "dir" / "deleted.txt").exists()
        assert not (live / "dir" / "deleted.txt").exists()
    finally:
        code, _, err = fg.stop()
    assert code == 0, err
    assert snapshot([image]) == before


def test_ext4_reused_inode_is_not_passed_off_as_the_deleted_file(tmp_path: Path) -> None:
    require_fuse()
    require_tool("icat", "ifind")
    image = _build("ext4", tmp_path)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    fg = Foreground(image, mnt, "--files")
    try:
        reused = mnt / "files" / "0.deleted" / "reused.txt"
        assert reused.exists()
        assert reused.stat().st_size == 0
        assert reused.read_bytes() == b""  # the inode's bytes are the newer file's
        newer = mnt / "files" / "0" / "a-much-longer-name-that-needs-a-new-slot.txt"
        assert newer.read_bytes() == b"second owner, who took the inode over\n"
        address = _inode(image, "/a-much-longer-name-that-needs-a-new-slot.txt")
        assert newer.read_bytes() == _icat(image, address)
        assert (mnt / "files" / "0" / "home" / "ana" / "link").read_bytes() == b"notes.txt"
    finally:
        code, _, err = fg.stop()
    assert code == 0, err


def test_hostile_names_are_one_component_each(tmp_path: Path) -> None:
    require_fuse()
    image = _build("hostile_ext2", tmp_path)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    fg = Foreground(image, mnt, "--files")
    try:
        root = mnt / "files" / "0"
        names = {p.name for p in root.iterdir()}
        for raw, content in fsimages.HOSTILE_EXT2.items():
            name = mount_name(raw.decode("utf-8", "surrogateescape"))
            assert name in names, raw
            assert (root / name).read_bytes() == content, raw
        assert (root / "ok.txt").read_bytes() == b"an ordinary file\n"
        assert not (mnt / "etc").exists()  # nothing escapes the tree
    finally:
        code, _, err = fg.stop()
    assert code == 0, err
