"""``bitwitness vm``: boot an E01 through a QCOW2 overlay whose backing file is the mounted media.

The guest is the 512-byte MBR boot sector of ``tests/builders/bootsector.py`` (encoded by hand;
``objdump`` disassembles it back to its listing): it reads one sector of its disk and prints what
it holds on the first serial port, writes a known sector there (BIOS int 13h AH=03h), prints
``WROTE`` and powers the machine off (ACPI). It is acquired into an E01 on a file system mounted
``strictatime``, booted under software emulation (TCG) and its serial output read back. Then the
overlay is read by ``qemu-img`` without its backing file (the write is there, alone) and with it
(``qemu-img compare`` against the disk: the one sector differs), the E01's bytes, mtime and atime
are unchanged and ``ewfverify`` passes, and a second boot from the same overlay (the image
mounted again at the same mount point, the printed qemu command run) reads the written sector.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from builders.bootsector import MARKER, SECTOR, boot_disk, code_length, mnemonics, written_sector
from conftest import REPO, require_tool, run_bitwitness, snapshot
from test_mount import _is_mount, require_fuse, strict_atime_dir  # noqa: F401 - a fixture

pytestmark = pytest.mark.slow

FIRST_BOOT = b"READ[]\r\nWROTE\r\n"
SECOND_BOOT = b"READ[" + MARKER + b"]\r\nWROTE\r\n"


def test_the_hand_encoded_guest_disassembles_to_its_listing(tmp_path: Path) -> None:
    """objdump (binutils) reads the builder's bytes back as the instructions it lists."""
    require_tool("objdump")
    disk = boot_disk(tmp_path / "disk.bin", size=512)
    out = subprocess.run(["objdump", "-D", "-b", "binary", "-m", "i8086", "-M", "intel",
                          "--adjust-vma=0x7c00", f"--stop-address={0x7C00 + code_length()}",
                          str(disk)], capture_output=True, text=True, check=True).stdout
    listed = [" ".join(line.split("\t")[2].split()) for line in out.splitlines()
              if line.startswith("    7c") and line.count("\t") >= 2]
    assert listed == [" ".join(m.split()) for m in mnemonics()]


def _overlay_alone(overlay: Path, target: Path) -> list[dict[str, object]]:
    """The overlay's own clusters (backing file left out, so the mount need not exist): its
    allocation map, and its content as raw into ``target`` (zeros where it holds nothing)."""
    spec = "json:" + json.dumps({"driver": "qcow2", "backing": None,
                                 "file": {"driver": "file", "filename": str(overlay)}})
    subprocess.run(["qemu-img", "convert", "-O", "raw", spec, str(target)], check=True)
    found = subprocess.run(["qemu-img", "map", "--output=json", spec], capture_output=True,
                           text=True, check=True).stdout
    return [row for row in json.loads(found) if row["data"]]


def _times(path: Path) -> tuple[int, int, int]:
    st = path.stat()
    return st.st_mtime_ns, st.st_atime_ns, st.st_size


def test_vm_guest_writes_go_to_the_overlay_never_to_the_e01(strict_atime_dir: Path,  # noqa: F811
                                                            tmp_path: Path) -> None:
    require_fuse()
    require_tool("qemu-img", "qemu-system-x86_64", "ewfverify")
    disk = boot_disk(tmp_path / "disk.bin")
    made = run_bitwitness("acquire", disk, "-o", strict_atime_dir / "boot")
    assert made.exit_code == 0, made.stderr
    image = strict_atime_dir / "boot.E01"
    digest = snapshot([image])[image][0]
    os.utime(image, ns=(1_000_000_000, 2_000_000_000))  # atime older than mtime: strictatime
    before = _times(image)  # moves it on any read that is not O_NOATIME
    overlay = tmp_path / "boot.qcow2"
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    serial = tmp_path / "serial.txt"
    guest = ["-display", "none", "-serial", f"file:{serial}", "-no-reboot"]
    try:
        done = subprocess.run(
            [sys.executable, "-m", "bitwitness", "vm", str(image), "--overlay", str(overlay),
             "--mount-at", str(mnt), "--run", "--accel", "tcg", "--memory", "32",
             *(f"--qemu-arg={arg}" for arg in guest)],
            capture_output=True, text=True, timeout=240, check=False, cwd=REPO,
            stdin=subprocess.DEVNULL)
    finally:
        if _is_mount(mnt):
            subprocess.run(["fusermount3", "-u", "-z", str(mnt)], check=False)
    assert done.returncode == 0, done.stderr
    assert serial.read_bytes() == FIRST_BOOT  # the sector read as zeros, then written
    assert "-accel tcg" in done.stdout
    assert "qemu exited with status 0" in done.stdout  # the guest powered off
    assert not _is_mount(mnt)
    assert _times(image) == before
    info = json.loads(subprocess.run(["qemu-img", "info", "--output=json", str(overlay)],
                                     capture_output=True, text=True, check=True).stdout)
    assert info["format"] == "qcow2"
    assert info["backing-filename"] == str(mnt / "media.raw")
    assert info["backing-filename-format"] == "raw"
    assert info["virtual-size"] == 1 << 20
    # the write is in the overlay: its one cluster holds the written sector
    own = tmp_path / "own.raw"
    [cluster] = _overlay_alone(overlay, own)
    start, length = int(cluster["start"]), int(cluster["length"])
    assert start <= SECTOR * 512 < start + length
    data = own.read_bytes()
    assert data[SECTOR * 512 : (SECTOR + 1) * 512] == written_sector()
    # a second boot from the same overlay, the image mounted at the same place again
    cmd = [sys.executable, "-m", "bitwitness"]
    qemu = shlex.split(next(line for line in done.stdout.splitlines()
                            if line.startswith("qemu: "))[len("qemu: "):])
    mounted = subprocess.run([*cmd, "mount", str(image), str(mnt), "--background"],
                             capture_output=True, text=True, timeout=120, check=False, cwd=REPO)
    assert mounted.returncode == 0, mounted.stderr
    try:
        compare = subprocess.run(["qemu-img", "compare", "-f", "qcow2", "-F", "raw",
                                  str(overlay), str(disk)], capture_output=True, text=True,
                                 check=False)
        assert compare.returncode == 1, compare.stderr  # 1: the images differ
        assert f"Content mismatch at offset {SECTOR * 512}!" in compare.stdout
        whole = tmp_path / "whole.raw"
        subprocess.run(["qemu-img", "convert", "-O", "raw", str(overlay), str(whole)],
                       check=True)
        expected = bytearray(disk.read_bytes())
        expected[SECTOR * 512 : (SECTOR + 1) * 512] = written_sector()
        assert whole.read_bytes() == bytes(expected)
        serial.unlink()
        again = subprocess.run(qemu, capture_output=True, text=True, timeout=240, check=False,
                               stdin=subprocess.DEVNULL)
        assert again.returncode == 0, again.stderr
        assert serial.read_bytes() == SECOND_BOOT  # the guest reads what it wrote before
    finally:
        gone = subprocess.run([*cmd, "umount", str(mnt)], capture_output=True, text=True,
                              check=False, cwd=REPO)
    assert gone.returncode == 0, gone.stderr
    assert _times(image) == before  # bytes, mtime and atime of the evidence
    verified = subprocess.run(["ewfverify", "-q", str(image)], capture_output=True, text=True,
                              check=False)  # reads the E01 without O_NOATIME: the last read
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert snapshot([image])[image][0] == digest
    assert disk.read_bytes()[SECTOR * 512 : (SECTOR + 1) * 512] == bytes(512)


def test_vm_prints_the_commands_and_leaves_the_mount(tmp_path: Path) -> None:
    """Without --run: the mount stays for the hypervisor; qemu-img reads the overlay and the VMDK
    descriptor printed for VirtualBox/VMware, and so does libvmdk (neither hypervisor installs
    from Debian: whether they accept the descriptor is not tested here)."""
    require_fuse()
    require_tool("qemu-img")
    image = boot_disk(tmp_path / "disk.raw")
    before = snapshot([image])
    overlay = tmp_path / "disk.qcow2"
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    cmd = [sys.executable, "-m", "bitwitness"]
    try:
        done = subprocess.run([*cmd, "vm", str(image), "--overlay", str(overlay), "--mount-at",
                               str(mnt)], capture_output=True, text=True, timeout=120,
                              check=False, cwd=REPO)
        assert done.returncode == 0, done.stderr
        assert _is_mount(mnt)
        assert "qemu-system-x86_64" in done.stdout
        assert str(overlay) in done.stdout
        assert "VBoxManage" in done.stdout
        assert "bitwitness umount" in done.stdout
        vmdk = overlay.with_suffix(".vmdk")
        info = json.loads(subprocess.run(["qemu-img", "info", "--output=json", str(vmdk)],
                                         capture_output=True, text=True, check=True).stdout)
        assert info["format"] == "vmdk"
        assert info["virtual-size"] == image.stat().st_size
        # the VMDK's flat extent reads the evidence through the mount: same bytes
        converted = tmp_path / "back.raw"
        subprocess.run(["qemu-img", "convert", "-O", "raw", str(vmdk), str(converted)],
                       check=True)
        assert converted.read_bytes() == image.read_bytes()
        # libvmdk, a second VMDK reader: a monolithic flat disk of one flat extent, the mount's
        # media.raw named by its absolute path (as VirtualBox's own raw-disk descriptors name
        # devices), read back as the evidence's bytes
        import pyvmdk

        handle = pyvmdk.handle()
        handle.open(str(vmdk))
        try:
            assert handle.get_disk_type() == pyvmdk.disk_types.MONOLITHIC_FLAT
            assert handle.get_media_size() == image.stat().st_size
            [extent] = list(handle.extent_descriptors)
            assert extent.get_type() == pyvmdk.extent_types.FLAT
            assert extent.get_filename() == str(mnt / "media.raw")
            assert (extent.get_offset(), extent.get_size()) == (0, image.stat().st_size)
            with Path(extent.get_filename()).open("rb") as media:
                handle.open_extent_data_files_as_file_objects([media])
                assert handle.read_buffer(handle.get_media_size()) == image.read_bytes()
        finally:
            handle.close()
        again = subprocess.run([*cmd, "vm", str(image), "--overlay", str(overlay)],
                               capture_output=True, text=True, check=False, cwd=REPO)
        assert again.returncode == 2
        assert "already exists" in again.stderr
    finally:
        gone = subprocess.run([*cmd, "umount", str(mnt)], capture_output=True, text=True,
                              check=False, cwd=REPO)
    assert gone.returncode == 0, gone.stderr
    assert snapshot([image]) == before
    assert shutil.which("qemu-img")


def test_vm_takes_the_media_of_an_existing_mount(tmp_path: Path) -> None:
    """IMAGE may be the media.raw of a 'bitwitness mount': no second mount is made."""
    require_fuse()
    require_tool("qemu-img")
    image = boot_disk(tmp_path / "disk.raw")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    cmd = [sys.executable, "-m", "bitwitness"]
    mounted = subprocess.run([*cmd, "mount", str(image), str(mnt), "--background"],
                             capture_output=True, text=True, timeout=120, check=False, cwd=REPO)
    assert mounted.returncode == 0, mounted.stderr
    try:
        overlay = tmp_path / "o.qcow2"
        done = subprocess.run([*cmd, "vm", str(mnt / "media.raw"), "--overlay", str(overlay)],
                              capture_output=True, text=True, timeout=120, check=False, cwd=REPO)
        assert done.returncode == 0, done.stderr
        assert not (tmp_path / "o.qcow2.mnt").exists()
        info = json.loads(subprocess.run(["qemu-img", "info", "--output=json", str(overlay)],
                                         capture_output=True, text=True, check=True).stdout)
        assert info["backing-filename"] == str(mnt / "media.raw")
        assert "bitwitness umount" not in done.stdout
    finally:
        gone = subprocess.run([*cmd, "umount", str(mnt)], capture_output=True, text=True,
                              check=False, cwd=REPO)
    assert gone.returncode == 0, gone.stderr
