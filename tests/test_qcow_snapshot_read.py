"""``--snapshot ID|NAME`` reads a QCOW2 image's internal snapshot instead of its current state:
the disk as ``qemu-img snapshot -a`` restores it (the snapshot's L1 table, the disk's size when
it was taken), checked against QEMU itself on a copy; clusters the snapshot never wrote come from
the backing file, compressed ones are inflated. Every command that opens an image takes it
(info, verify with QEMU as second reader, convert with the state in its log, ls/cat/export with
the state in their JSON and manifest); an image that keeps no snapshots, an unknown or shared
name and a damaged snapshot entry are refused in one line."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, require_tool, run_bitwitness

from bitwitness.errors import CorruptImageError, ExitCode, InputError
from bitwitness.image import open_image
from bitwitness.images.snapshot_choice import choose_snapshot

MIB = 1 << 20


def _qemu(*args: str | Path) -> str:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, check=True,
                          timeout=120, env={**os.environ, "TZ": "UTC"}).stdout


def _write(image: Path, byte: int, offset: int, length: int = 64 * 1024) -> None:
    _qemu("qemu-io", "-f", "qcow2", "-c", f"write -P {byte:#x} {offset} {length}", image)


def _as_qemu_restores(image: Path, snapshot: str | None, folder: Path) -> bytes:
    """The media QEMU gives for ``snapshot`` of ``image``: applied to a copy (with its
    backing file beside it), then converted to raw."""
    work = folder / f"qemu-{snapshot}"
    work.mkdir()
    for item in image.parent.iterdir():
        if item.is_file() and item.suffix in (".qcow2", ".raw"):
            shutil.copy(item, work / item.name)
    copy = work / image.name
    if snapshot is not None:
        _qemu("qemu-img", "snapshot", "-a", snapshot, copy)
    out = work / "media.out"
    _qemu("qemu-img", "convert", "-O", "raw", copy, out)
    return out.read_bytes()


def _ours(image: Path, snapshot: str | None) -> bytes:
    undo = choose_snapshot(snapshot) if snapshot is not None else None
    try:
        with open_image(image) as stream:
            return stream.pread(0, stream.size)
    finally:
        if undo is not None:
            undo()


@pytest.fixture
def vm(tmp_path: Path) -> Path:
    """A disk of three states: 'installed' (8 MiB, compressed clusters), 'grown' (resized to
    12 MiB, overwritten in part) and the current one (written again)."""
    require_tool("qemu-img", "qemu-io")
    folder = tmp_path / "evidence"
    folder.mkdir()
    raw = tmp_path / "seed.bin"
    raw.write_bytes(b"".join(bytes([n % 251]) * 4096 + os.urandom(4096) for n in range(1024)))
    image = folder / "vm.qcow2"
    _qemu("qemu-img", "convert", "-c", "-f", "raw", "-O", "qcow2", raw, image)
    _qemu("qemu-img", "snapshot", "-c", "installed", image)
    _write(image, 0x22, 0)
    _qemu("qemu-img", "resize", "-q", image, "12M")
    _write(image, 0x33, 10 * MIB)
    _qemu("qemu-img", "snapshot", "-c", "grown", image)
    _write(image, 0x44, 64 * 1024, 128 * 1024)
    _write(image, 0x55, 11 * MIB)
    return image


def test_each_snapshot_reads_as_qemu_restores_it(vm: Path, tmp_path: Path) -> None:
    installed = _ours(vm, "installed")
    assert len(installed) == 8 * MIB  # the disk's size when it was taken, not today's 12 MiB
    assert installed == _as_qemu_restores(vm, "installed", tmp_path)
    assert installed == _ours(vm, "1")  # by its ID
    grown = _ours(vm, "grown")
    assert len(grown) == 12 * MIB
    assert grown == _as_qemu_restores(vm, "grown", tmp_path)
    current = _ours(vm, None)
    assert current == _as_qemu_restores(vm, None, tmp_path)
    assert len({installed[:MIB], grown[:MIB], current[:MIB]}) == 3


def test_a_snapshot_over_a_backing_file_reads_the_backing_where_it_wrote_nothing(
        tmp_path: Path) -> None:
    require_tool("qemu-img", "qemu-io")
    folder = tmp_path / "chain"
    folder.mkdir()
    base = folder / "base.raw"
    base.write_bytes(os.urandom(4 * MIB))
    overlay = folder / "overlay.qcow2"
    _qemu("qemu-img", "create", "-q", "-f", "qcow2", "-b", base.name, "-F", "raw", overlay)
    _write(overlay, 0x66, MIB)
    _qemu("qemu-img", "snapshot", "-c", "one", overlay)
    _write(overlay, 0x77, 2 * MIB)
    ours = _ours(overlay, "one")
    assert ours == _as_qemu_restores(overlay, "one", tmp_path)
    assert ours[:MIB] == base.read_bytes()[:MIB]
    assert ours[2 * MIB:3 * MIB] == base.read_bytes()[2 * MIB:3 * MIB]


def test_info_verify_and_convert_say_which_state_they_read(vm: Path, tmp_path: Path) -> None:
    require_tool("qemu-nbd", "ewfverify", "ewfinfo")
    expected = hashlib.md5(_as_qemu_restores(vm, "grown", tmp_path)).hexdigest()  # noqa: S324
    info = run_bitwitness("info", vm, "--snapshot", "grown", "--json")
    assert info.exit_code == ExitCode.OK, info.stderr
    doc = info.json()
    assert doc["media_size"] == 12 * MIB
    assert doc["details"]["snapshot"].startswith("ID 2 'grown' taken ")
    assert "the media read here is ID 2's" in doc["details"]["internal_snapshots"]

    done = run_bitwitness("verify", vm, "--snapshot", "grown", "--second-reader", "--json")
    result = done.json()["images"][0]
    assert result["verdict"] == "UNVERIFIED", done.stderr  # a QCOW2 records no hash
    assert result["computed"]["md5"] == expected
    assert result["format"] == "qcow2, internal snapshot ID 2 'grown'"
    reader = result["second_reader"]
    assert reader["agree"] is True, reader
    assert reader["media_size"] == 12 * MIB
    checks = {c["what"]: c for c in result["container_checks"]}
    assert checks["QCOW tables of vm.qcow2 (snapshot ID 2)"]["ok"] is True

    out = tmp_path / "grown"
    converted = run_bitwitness("convert", vm, "--snapshot", "2", "--to", "e01", "-o", out)
    assert converted.exit_code == ExitCode.OK, converted.stderr
    e01 = out.with_suffix(".E01")
    subprocess.run(["ewfverify", "-q", e01], check=True, capture_output=True)
    assert f"MD5:\t\t\t{expected}" in subprocess.run(
        ["ewfinfo", e01], check=True, capture_output=True, text=True).stdout
    log = json.loads(out.with_suffix(".json").read_text())
    assert log["source"]["image_state"].startswith("ID 2 'grown' taken ")
    assert "Source state:               ID 2 'grown'" in out.with_suffix(".txt").read_text()

    target = tmp_path / "restored.raw"
    restored = run_bitwitness("restore", vm, target, "--snapshot", "installed", "--yes")
    assert restored.exit_code == ExitCode.OK, restored.stderr
    assert target.read_bytes() == _as_qemu_restores(vm, "installed", tmp_path)
    (log,) = vm.parent.glob("vm.qcow2.restore-*.json")
    assert json.loads(log.read_text())["source"]["image_state"].startswith("ID 1 'installed'")
    assert "State:                        ID 1 'installed'" in log.with_suffix(".txt").read_text()


def test_browsing_reads_the_snapshot_file_system(tmp_path: Path) -> None:
    """A file deleted after the snapshot is listed, read and exported from it, as fls and
    icat find it in QEMU's restore of that state."""
    require_tool("qemu-img", "qemu-io", "mkfs.ext4", "debugfs", "fls", "icat")
    fs = tmp_path / "fs.raw"
    with fs.open("wb") as fh:
        fh.truncate(32 * MIB)
    subprocess.run(["mkfs.ext4", "-q", "-F", fs], check=True, capture_output=True)
    note = tmp_path / "note.txt"
    note.write_bytes(b"what the disk held before the event\n" * 100)
    subprocess.run(["debugfs", "-w", "-R", f"write {note} before.txt", fs], check=True,
                   capture_output=True)
    folder = tmp_path / "evidence"
    folder.mkdir()
    image = folder / "disk.qcow2"
    _qemu("qemu-img", "convert", "-f", "raw", "-O", "qcow2", fs, image)
    _qemu("qemu-img", "snapshot", "-c", "before", image)
    subprocess.run(["debugfs", "-w", "-R", "rm before.txt", fs], check=True, capture_output=True)
    _qemu("qemu-io", "-f", "qcow2", "-c", f"write -s {fs} 0 {32 * MIB}", image)

    restored = tmp_path / "restored.raw"
    restored.write_bytes(_as_qemu_restores(image, "before", tmp_path))
    fls = subprocess.run(["fls", "-r", "-p", restored], check=True, capture_output=True,
                         text=True).stdout
    listed = run_bitwitness("ls", "-r", image, "--snapshot", "before")
    assert listed.exit_code == ExitCode.OK, listed.stderr
    assert sorted(listed.stdout.splitlines()) == sorted(fls.splitlines())
    assert "before.txt" in listed.stdout
    assert "before.txt" not in run_bitwitness("ls", "-r", image).stdout

    inode = next(line.split()[1].rstrip(":") for line in fls.splitlines()
                 if line.endswith("\tbefore.txt"))
    icat = subprocess.run(["icat", restored, inode], check=True, capture_output=True).stdout
    assert icat == note.read_bytes()
    cat = run_bitwitness("cat", image, "/before.txt", "--snapshot", "before")
    assert cat.exit_code == ExitCode.OK, cat.stderr
    assert cat.output == icat

    listing = run_bitwitness("ls", image, "--snapshot", "before", "--json").json()
    assert listing["image_state"].startswith("ID 1 'before' taken ")
    dest = tmp_path / "exported"
    done = run_bitwitness("export", image, "/", "--to", dest, "--snapshot", "before")
    assert done.exit_code == ExitCode.OK, done.stderr
    assert (dest / "before.txt").read_bytes() == icat
    manifest = json.loads((dest / "manifest.json").read_text())
    assert manifest["image_state"].startswith("ID 1 'before' taken ")


def test_refusals_are_one_line(vm: Path, tmp_path: Path) -> None:
    unknown = run_bitwitness("info", vm, "--snapshot", "nothing")
    assert unknown.exit_code == ExitCode.USAGE
    assert "no internal snapshot has the ID or name 'nothing'" in unknown.stderr
    assert "ID 1 'installed', ID 2 'grown'" in unknown.stderr
    _qemu("qemu-img", "snapshot", "-c", "grown", vm)  # QEMU lets a name be given twice
    shared = run_bitwitness("ls", vm, "--snapshot", "grown")
    assert shared.exit_code == ExitCode.USAGE
    assert "2 internal snapshots answer to 'grown' (IDs 2, 3)" in shared.stderr
    assert run_bitwitness("info", vm, "--snapshot", "3").exit_code == ExitCode.OK

    raw = tmp_path / "plain.raw"
    raw.write_bytes(b"\x01" * MIB)
    plain = run_bitwitness("verify", raw, "--snapshot", "1")
    assert plain.exit_code == ExitCode.USAGE
    assert "a raw image keeps no internal snapshots" in plain.stderr
    for done in (unknown, shared, plain):
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert "Traceback" not in done.stderr


def test_a_damaged_snapshot_entry_is_refused_naming_it(vm: Path) -> None:
    data = bytearray(vm.read_bytes())
    (table,) = struct.unpack_from(">Q", data, 64)
    struct.pack_into(">Q", data, table, len(data) + (1 << 20))  # its L1 table past the end
    vm.write_bytes(bytes(data))
    with pytest.raises(CorruptImageError, match=r"L1 table \(snapshot table entry 0, file offset"):
        _ours(vm, "installed")
    assert len(_ours(vm, "grown")) == 12 * MIB  # the other snapshot still reads
    done = run_bitwitness("info", vm, "--snapshot", "installed")
    assert done.exit_code != ExitCode.OK
    assert "snapshot table entry 0" in done.stderr
    data = bytearray(vm.read_bytes())
    struct.pack_into(">Q", data, table, struct.unpack_from(">Q", data, 40)[0])
    struct.pack_into(">I", data, table + 8, 1)  # an L1 of one entry for a disk of 8 MiB ...
    struct.pack_into(">Q", data, table + 40 + 8, 1 << 40)  # ... said to be a terabyte
    vm.write_bytes(bytes(data))
    with pytest.raises(CorruptImageError, match="cannot map 1099511627776 bytes"):
        _ours(vm, "installed")


def test_a_qcow_version_1_image_keeps_no_snapshots(tmp_path: Path) -> None:
    require_tool("qemu-img")
    image = tmp_path / "old.qcow"
    _qemu("qemu-img", "create", "-q", "-f", "qcow", image, "1M")
    with pytest.raises(InputError, match="QCOW version 1 image keeps no internal snapshots"):
        _ours(image, "1")


def test_a_background_mount_serves_the_snapshot(vm: Path, tmp_path: Path) -> None:
    """The detached mount process is given the snapshot chosen (and the format and parents):
    its media.raw is QEMU's restore of that state, not the current disk."""
    from test_mount import require_fuse

    require_fuse()
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    cmd = [sys.executable, "-m", "bitwitness"]
    done = subprocess.run([*cmd, "mount", str(vm), str(mnt), "--background", "--snapshot",
                           "installed"], capture_output=True, text=True, timeout=120,
                          check=False, cwd=REPO)
    assert done.returncode == 0, done.stderr
    try:
        assert (mnt / "media.raw").read_bytes() == _as_qemu_restores(vm, "installed", tmp_path)
    finally:
        subprocess.run([*cmd, "umount", str(mnt)], capture_output=True, timeout=60,
                       check=False, cwd=REPO)
