"""Acquiring block devices (loop devices over files built here): hashes, the kernel read-only
flag put back as it was, the backing file unchanged, mount warnings, destination-on-source."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import make_disk_bytes, require_root, require_tool, run_bitwitness

pytestmark = pytest.mark.root


def _run(*args: str) -> str:
    return subprocess.run(list(args), capture_output=True, text=True, check=True).stdout.strip()


def _state(path: Path) -> tuple[str, int]:
    """Content hash (read with O_NOATIME) and mtime of the backing file.

    Not its atime: the kernel's loop driver reads the backing file itself (without O_NOATIME),
    so any reader of /dev/loopN moves it under relatime. O_NOATIME on a *file* source is proven
    in test_acquire_file.py.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NOATIME)
    try:
        h = hashlib.sha256()
        while block := os.read(fd, 1 << 20):
            h.update(block)
    finally:
        os.close(fd)
    return h.hexdigest(), path.stat().st_mtime_ns


def _attach(backing: Path, *extra: str) -> str:
    require_root()
    require_tool("losetup", "blockdev")
    try:
        return _run("losetup", "-f", "--show", *extra, str(backing))
    except subprocess.CalledProcessError as exc:
        pytest.skip(f"loop devices unavailable: {exc.stderr.strip()}")


@pytest.fixture
def loop(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    backing = tmp_path / "backing.img"
    backing.write_bytes(make_disk_bytes(4 * 1024 * 1024, seed=31))
    device = _attach(backing)
    yield device, backing
    subprocess.run(["losetup", "-d", device], check=False)


def test_loop_device_to_e01_and_raw(tmp_path: Path, loop: tuple[str, Path]) -> None:
    require_tool("ewfverify", "md5sum", "sha1sum")
    device, backing = loop
    md5 = _run("md5sum", str(backing)).split()[0]
    sha1 = _run("sha1sum", str(backing)).split()[0]
    before = _state(backing)
    assert _run("blockdev", "--getro", device) == "0"
    res = run_bitwitness("acquire", device, "-o", tmp_path / "e01", "--json", "--verify")
    assert res.exit_code == 0, res.stderr
    doc = res.json()
    assert (doc["hashes"]["md5"], doc["hashes"]["sha1"]) == (md5, sha1)
    assert _run("blockdev", "--getro", device) == "0"  # back as it was
    check = subprocess.run(["ewfverify", "-q", str(tmp_path / "e01.E01")], capture_output=True,
                           text=True, check=False)
    assert check.returncode == 0, check.stdout
    assert md5 in check.stdout
    log = json.loads((tmp_path / "e01.json").read_text())
    assert log["source"]["kind"] == "device"
    assert log["source"]["transport"] == "loop"
    assert log["source"]["readonly_flag"] == {"set": True, "restored": True, "was": False,
                                              "detail": "set for the acquisition"}
    assert log["source"]["size"] == backing.stat().st_size
    res = run_bitwitness("acquire", device, "-o", tmp_path / "raw", "--format", "raw")
    assert res.exit_code == 0, res.stderr
    assert (tmp_path / "raw.raw").read_bytes() == backing.read_bytes()
    assert _state(backing) == before


def test_a_read_only_device_stays_read_only(tmp_path: Path) -> None:
    backing = tmp_path / "ro.img"
    backing.write_bytes(make_disk_bytes(1024 * 1024, seed=32))
    device = _attach(backing, "-r")
    try:
        assert _run("blockdev", "--getro", device) == "1"
        res = run_bitwitness("acquire", device, "-o", tmp_path / "img", "--format", "raw")
        assert res.exit_code == 0, res.stderr
        assert _run("blockdev", "--getro", device) == "1"
        flag = json.loads((tmp_path / "img.json").read_text())["source"]["readonly_flag"]
        assert (flag["was"], flag["set"]) == (True, False)
    finally:
        subprocess.run(["losetup", "-d", device], check=False)


@pytest.fixture
def mounted(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    require_tool("mkfs.ext4")
    backing = tmp_path / "fs.img"
    with backing.open("wb") as fh:
        fh.truncate(8 * 1024 * 1024)
    subprocess.run(["mkfs.ext4", "-q", "-F", str(backing)], capture_output=True, check=True)
    device = _attach(backing)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    proc = subprocess.run(["mount", device, str(mnt)], capture_output=True, text=True,
                          check=False)
    if proc.returncode:
        subprocess.run(["losetup", "-d", device], check=False)
        pytest.skip(f"cannot mount: {proc.stderr.strip()}")
    yield device, mnt
    subprocess.run(["umount", str(mnt)], check=False)
    subprocess.run(["losetup", "-d", device], check=False)


def test_destination_on_the_source_device_is_refused(mounted: tuple[str, Path]) -> None:
    device, mnt = mounted
    res = run_bitwitness("acquire", device, "-o", mnt / "img", "--format", "raw")
    assert res.exit_code == 2
    assert "lies on the source device" in res.stderr
    assert sorted(p.name for p in mnt.iterdir()) == ["lost+found"]


def test_a_writable_mount_is_refused_without_allow_mounted(tmp_path: Path,
                                                          mounted: tuple[str, Path]) -> None:
    device, _mnt = mounted
    res = run_bitwitness("acquire", device, "-o", tmp_path / "img", "--format", "raw")
    assert res.exit_code == 2
    assert "mounted writable" in res.stderr
    assert "--allow-mounted" in res.stderr
    assert not list(tmp_path.glob("img*"))
    assert _run("blockdev", "--getro", device) == "0"


def test_a_writable_mount_is_warned_about_and_logged(tmp_path: Path,
                                                     mounted: tuple[str, Path]) -> None:
    device, mnt = mounted
    res = run_bitwitness("acquire", device, "-o", tmp_path / "img", "--format", "raw",
                         "--allow-mounted")
    assert res.exit_code == 0, res.stderr
    assert "mounted WRITABLE" in res.stderr + res.stdout
    log = json.loads((tmp_path / "img.json").read_text())
    assert [m["mountpoint"] for m in log["source"]["mounted"]] == [str(mnt)]
    assert log["source"]["mounted"][0]["writable"] is True
    # the live file system keeps working: the flag was not raised under it
    assert log["source"]["readonly_flag"]["set"] is False
    assert log["warnings"]
    assert log["options"]["allow_mounted"] is True
    assert _run("blockdev", "--getro", device) == "0"


def test_devices_lists_the_loop_device(loop: tuple[str, Path]) -> None:
    device, backing = loop
    res = run_bitwitness("devices", "--json")
    assert res.exit_code == 0, res.stderr
    found = [d for d in res.json()["devices"] if d["path"] == device]
    assert len(found) == 1
    assert found[0]["size"] == backing.stat().st_size
    assert found[0]["backing_file"] == str(backing)
    assert found[0]["transport"] == "loop"
    assert shutil.which("losetup")


def test_partitions_are_read_only_during_the_acquisition_and_restored(tmp_path: Path) -> None:
    require_tool("sfdisk")
    from bitwitness.acquire.engine import AcquisitionRequest, OutputFormat, acquire
    from bitwitness.acquire.faults import FaultySource
    from bitwitness.acquire.source import open_source
    from bitwitness.progress import NullMediator

    backing = tmp_path / "parted.img"
    with backing.open("wb") as fh:
        fh.truncate(8 * 1024 * 1024)
    subprocess.run(["sfdisk", "-q", str(backing)], input="label: dos\n,2M\n,\n", text=True,
                   capture_output=True, check=True)
    device = _attach(backing, "-P")
    try:
        parts = [f"{device}p1", f"{device}p2"]
        if not all(Path(p).exists() for p in parts):
            pytest.skip("the kernel made no partition nodes for the loop device")
        seen: list[tuple[str, ...]] = []

        def look(offset: int, length: int) -> None:
            if not seen:  # what blockdev says while we read (an independent look)
                seen.append(tuple(_run("blockdev", "--getro", p) for p in [device, *parts]))

        source = FaultySource(open_source(device), before_read=look)
        result = acquire(AcquisitionRequest(source=source, output=tmp_path / "img",
                                            format=OutputFormat.RAW, hashes=("md5",)),
                         NullMediator())
        assert seen == [("1", "1", "1")]
        assert [_run("blockdev", "--getro", p) for p in [device, *parts]] == ["0", "0", "0"]
        flag = result.source.readonly_flag
        assert (flag.set, flag.restored, flag.was) == (True, True, False)
        assert "p1" in flag.detail
        assert (tmp_path / "img.raw").read_bytes() == backing.read_bytes()
    finally:
        subprocess.run(["losetup", "-d", device], check=False)
