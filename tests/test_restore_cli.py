"""``bitwitness restore`` onto files and loop devices, and every refusal (exit 2).

The restored bytes are judged by md5sum against the shared manifest (hashes computed outside
BitWitness); loop devices are real block devices set up with losetup.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import make_disk_bytes, require_root, require_tool, run_bitwitness, snapshot

Loop = Callable[[Path], Path]



def _md5sum(path: Path, length: int | None = None) -> str:
    cmd = f"head -c {length} {path} | md5sum" if length else f"md5sum < {path}"
    proc = subprocess.run(cmd, shell=True, capture_output=True, text=True, check=True)  # noqa: S602
    return proc.stdout.split()[0]


def test_restore_to_file_with_verify(third_party: Path, manifest: dict, tmp_path: Path) -> None:
    src = third_party / "dfvfs_ext2.E01"
    before = snapshot([src])
    target = tmp_path / "copy.img"
    result = run_bitwitness("restore", src, target, "--yes", "--verify", "--json",
                            "--log", tmp_path / "log")
    assert result.exit_code == 0, result.stderr
    doc = result.json()
    assert doc["verdict"] == "VERIFIED"
    assert doc["target_hashes"] == doc["hashes"]
    assert _md5sum(target) == manifest["dfvfs_ext2.E01"]["md5"]
    assert snapshot([src]) == before


def test_restore_refusals(third_party: Path, tmp_path: Path) -> None:
    src = tmp_path / "img.raw"
    src.write_bytes(make_disk_bytes(1 << 20))
    # off a terminal without --yes: refused, nothing written
    target = tmp_path / "t.img"
    result = run_bitwitness("restore", src, target)
    assert result.exit_code == 2
    assert "not confirmed" in result.stderr
    assert not target.exists()
    # the image itself
    result = run_bitwitness("restore", src, src, "--yes", "--overwrite")
    assert result.exit_code == 2
    assert "image itself" in result.stderr
    # an existing file without --overwrite
    target.write_bytes(b"keep")
    assert run_bitwitness("restore", src, target, "--yes").exit_code == 2
    assert target.read_bytes() == b"keep"
    assert run_bitwitness("restore", src, target, "--yes", "--overwrite").exit_code == 0
    assert target.read_bytes() == src.read_bytes()
    # a piece of a split image is the image too
    result = run_bitwitness("restore", third_party / "dfvfs_ext2.splitraw.000",
                            third_party / "dfvfs_ext2.splitraw.001", "--yes", "--overwrite",
                            "--log", tmp_path / "log")
    assert result.exit_code == 2


def test_restore_mismatch_against_stored_hash_exits_1(third_party: Path, tmp_path: Path) -> None:
    result = run_bitwitness("restore", third_party / "dissect_ewf.E01", tmp_path / "t", "--yes",
                            "--log", tmp_path / "log")
    assert result.exit_code == 1


def test_restore_in_a_case_records_custody(tmp_path: Path) -> None:
    from bitwitness.case import Case
    from bitwitness.templates import load_template

    case = Case.create(tmp_path / "case", load_template("default", environ={}),
                       {"case_number": "C-1", "examiner": "Ann"})
    folder = case.evidence_dir("USB1")
    folder.mkdir(parents=True, exist_ok=True)
    image = folder / "usb.raw"
    image.write_bytes(make_disk_bytes(1 << 20, seed=9))
    assert run_bitwitness("restore", image, tmp_path / "copy", "--yes", "--verify").exit_code == 0
    event = case.custody.events()[-1]
    assert (event.action, event.evidence_id) == ("restore", "USB1")
    assert event.details["verdict"] == "VERIFIED"
    assert event.details["target"] == str(tmp_path / "copy")


@pytest.fixture
def loop() -> Iterator[Loop]:
    """``loop(path) -> /dev/loopN``; every device is detached afterwards."""
    require_root()
    require_tool("losetup")
    devices: list[str] = []

    def attach(path: Path) -> Path:
        proc = subprocess.run(["losetup", "--find", "--show", str(path)], capture_output=True,
                              text=True, check=False)
        if proc.returncode != 0:
            pytest.skip(f"loop devices unavailable: {proc.stderr.strip()}")
        devices.append(proc.stdout.strip())
        return Path(devices[-1])

    yield attach
    for dev in devices:
        subprocess.run(["umount", dev], capture_output=True, check=False)
        subprocess.run(["losetup", "-d", dev], capture_output=True, check=False)


@pytest.mark.root
def test_restore_to_loop_device(third_party: Path, manifest: dict, tmp_path: Path,
                                loop: Loop) -> None:
    backing = tmp_path / "disk.bin"
    backing.write_bytes(b"\xaa" * (5 << 20))  # larger than the 4 MiB media
    dev = loop(backing)
    result = run_bitwitness("restore", third_party / "dfvfs_ext2.E01", dev, "--yes", "--verify",
                            "--json", "--log", tmp_path / "log")
    assert result.exit_code == 0, result.stderr
    assert result.json()["target_kind"] == "device"
    size = manifest["dfvfs_ext2.E01"]["media_size"]
    assert _md5sum(dev, size) == manifest["dfvfs_ext2.E01"]["md5"]
    log = json.loads((tmp_path / "log.json").read_text())  # the device's facts, as sysfs has them
    assert log["target"]["kind"] == "device"
    assert log["target"]["transport"] == "loop"
    assert log["target"]["backing_file"] == str(backing)
    assert log["target"]["size"] == 5 << 20
    assert log["target"]["bytes_written"] == size
    assert log["media"]["hashes"]["md5"] == _md5sum(dev, size)
    assert log["verification"]["verdict"] == "VERIFIED"
    assert backing.read_bytes()[size:] == b"\xaa" * ((5 << 20) - size)  # the rest untouched


@pytest.mark.root
def test_restore_refuses_small_mounted_and_self_devices(third_party: Path, tmp_path: Path,
                                                        loop: Loop) -> None:
    require_tool("mkfs.ext2", "mount")
    src = third_party / "dfvfs_ext2.E01"
    small = tmp_path / "small.bin"
    small.write_bytes(bytes(1 << 20))
    result = run_bitwitness("restore", src, loop(small), "--yes", "--log", tmp_path / "log")
    assert result.exit_code == 2
    assert "less than the media" in result.stderr
    # mounted
    fs = tmp_path / "fs.bin"
    fs.write_bytes(bytes(8 << 20))
    subprocess.run(["mkfs.ext2", "-q", "-F", str(fs)], check=True)
    dev = loop(fs)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    mounted = subprocess.run(["mount", str(dev), str(mnt)], capture_output=True, check=False)
    if mounted.returncode == 0:
        try:
            result = run_bitwitness("restore", src, dev, "--yes", "--log", tmp_path / "log")
            assert result.exit_code == 2
            assert "mounted" in result.stderr
        finally:
            subprocess.run(["umount", str(mnt)], check=False)
    # a loop device over the image file itself
    raw = tmp_path / "img.raw"
    raw.write_bytes(make_disk_bytes(1 << 20, seed=3))
    before = snapshot([raw])
    result = run_bitwitness("restore", raw, loop(raw), "--yes")
    assert result.exit_code == 2
    assert "image" in result.stderr
    assert snapshot([raw]) == before


@pytest.mark.root
def test_restore_refuses_the_device_the_image_came_from(tmp_path: Path, loop: Loop) -> None:
    disk = tmp_path / "disk.bin"
    disk.write_bytes(make_disk_bytes(1 << 20, seed=6))
    dev = loop(disk)
    image = tmp_path / "out" / "img.raw"
    image.parent.mkdir()
    image.write_bytes(disk.read_bytes())
    log = {"schema": "bitwitness.acquisition/1", "operation": "acquire", "status": "completed",
           "source": {"path": str(dev), "kind": "device", "size": 1 << 20},
           "media": {"size": 1 << 20, "sector_size": 512, "hashes": {}}}
    (tmp_path / "out" / "img.json").write_text(json.dumps(log))
    result = run_bitwitness("restore", image, dev, "--yes")
    assert result.exit_code == 2
    assert "acquired from" in result.stderr


def _losetup(path: Path) -> str:
    return subprocess.run(["losetup", "--find", "--show", str(path)], capture_output=True,
                          text=True, check=True).stdout.strip()


def test_the_evidence_reached_another_way_is_refused(tmp_path: Path) -> None:
    """The image's logged source is a loop device over a file: restoring onto a second loop
    device over that file, or onto the file itself (even with --overwrite), writes the
    evidence as surely as onto the device: refused, the file's bytes unchanged (md5sum)."""
    require_root()
    require_tool("losetup")
    evidence = tmp_path / "evidence.img"
    evidence.write_bytes(os.urandom(4 << 20))
    before = hashlib.md5(evidence.read_bytes(), usedforsecurity=False).hexdigest()
    first = _losetup(evidence)
    try:
        acquired = run_bitwitness("acquire", first, "-o", tmp_path / "acq", "--format", "raw")
        assert acquired.exit_code == 0, acquired.stderr
        second = _losetup(evidence)
        try:
            onto = run_bitwitness("restore", tmp_path / "acq.raw", second, "--yes", "--log",
                                  tmp_path / "r1")
        finally:
            subprocess.run(["losetup", "-d", second], check=False)
        assert onto.exit_code == 2
        assert "loop device over the evidence" in onto.stderr
        itself = run_bitwitness("restore", tmp_path / "acq.raw", evidence, "--yes",
                                "--overwrite", "--log", tmp_path / "r2")
        assert itself.exit_code == 2
        assert "is the evidence this image was acquired from" in itself.stderr
    finally:
        subprocess.run(["losetup", "-d", first], check=False)
    # the loop device gone, the log's record of the file behind it still says what it was
    assert json.loads((tmp_path / "acq.json").read_text())["source"]["backing_file"] == \
        str(evidence)
    again = run_bitwitness("restore", tmp_path / "acq.raw", evidence, "--yes", "--overwrite",
                           "--log", tmp_path / "r3")
    assert again.exit_code == 2
    assert "is the evidence this image was acquired from" in again.stderr
    assert hashlib.md5(evidence.read_bytes(), usedforsecurity=False).hexdigest() == before


def test_a_failed_write_is_one_error_line_on_stderr(tmp_path: Path) -> None:
    """A target the kernel marks read-only (blockdev --setro) fails the first write: one
    ``bitwitness: error:`` line on stderr (it was printed on stdout only, without the prefix),
    exit 2, the target unchanged."""
    require_root()
    require_tool("losetup", "blockdev")
    source = tmp_path / "s.bin"
    source.write_bytes(os.urandom(1 << 20))
    assert run_bitwitness("acquire", source, "-o", tmp_path / "img").exit_code == 0
    target = tmp_path / "t.img"
    target.write_bytes(bytes(1 << 20))
    device = _losetup(target)
    try:
        subprocess.run(["blockdev", "--setro", device], check=True)
        for extra in ((), ("--json",)):
            done = run_bitwitness("restore", tmp_path / "img.E01", device, "--yes", "--log",
                                  tmp_path / f"r{len(extra)}", *extra)
            assert done.exit_code == 2
            lines = done.stderr.strip().splitlines()
            assert len(lines) == 1, done.stderr
            assert lines[0].startswith("bitwitness: error: ")
            assert "write failed" in lines[0]
    finally:
        subprocess.run(["blockdev", "--setrw", device], check=False)
        subprocess.run(["losetup", "-d", device], check=False)
    assert target.read_bytes() == bytes(1 << 20)


def test_a_larger_target_says_its_tail_is_left_as_it_was(tmp_path: Path) -> None:
    """A device larger than the media: its bytes past the media are neither written nor
    zeroed (cmp: still 0xAA), and the summary and the log say so."""
    require_root()
    require_tool("losetup")
    source = tmp_path / "s.bin"
    source.write_bytes(os.urandom(1 << 20))
    assert run_bitwitness("acquire", source, "-o", tmp_path / "img").exit_code == 0
    target = tmp_path / "t.img"
    target.write_bytes(b"\xaa" * (2 << 20))
    device = _losetup(target)
    try:
        done = run_bitwitness("restore", tmp_path / "img.E01", device, "--yes", "--log",
                              tmp_path / "r")
    finally:
        subprocess.run(["losetup", "-d", device], check=False)
    assert done.exit_code == 0, done.stderr
    said = f"holds {1 << 20} bytes past the media's {1 << 20}: left as they were"
    assert said in done.stdout
    assert said in (tmp_path / "r.txt").read_text(encoding="utf-8")
    data = target.read_bytes()
    assert data[:1 << 20] == source.read_bytes()
    assert data[1 << 20:] == b"\xaa" * (1 << 20)
