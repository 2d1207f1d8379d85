"""``bitwitness vm``: boot an E01 through a QCOW2 overlay whose backing file is the mounted media.

The guest is a 512-byte MBR boot sector assembled here (bytes listed below): it prints a known
line on the first serial port (COM1, I/O 0x3F8), then writes to qemu's ``isa-debug-exit`` port
so that the virtual machine ends by itself. It is acquired into an E01 with ``bitwitness
acquire``, booted under software emulation (TCG), and the guest's serial output is read back;
the E01 is unchanged afterwards and the overlay (read by ``qemu-img info``) names the mounted
``media.raw`` as its raw backing file.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, require_tool, run_bitwitness, snapshot
from test_mount import _is_mount, require_fuse

pytestmark = pytest.mark.slow

MESSAGE = b"BITWITNESS-BOOT-OK\r\n"
#: Real-mode code loaded by the BIOS at 0000:7C00 (offsets in the sector on the right).
BOOT_CODE = bytes([
    0x31, 0xC0,              # 00 xor ax, ax
    0x8E, 0xD8,              # 02 mov ds, ax
    0xFC,                    # 04 cld
    0xBA, 0xF8, 0x03,        # 05 mov dx, 0x3F8          ; COM1 data register
    0xBE, 0x1D, 0x7C,        # 08 mov si, 0x7C1D         ; the message, at offset 0x1D
    0xAC,                    # 0B lodsb
    0x84, 0xC0,              # 0C test al, al
    0x74, 0x03,              # 0E jz 0x13
    0xEE,                    # 10 out dx, al
    0xEB, 0xF8,              # 11 jmp 0x0B
    0xBA, 0xF4, 0x00,        # 13 mov dx, 0xF4           ; isa-debug-exit
    0xB0, 0x00,              # 16 mov al, 0              ; qemu exits with (0 << 1) | 1
    0xEE,                    # 18 out dx, al
    0xFA,                    # 19 cli
    0xF4,                    # 1A hlt
    0xEB, 0xFD,              # 1B jmp 0x1A
])


def boot_disk(path: Path, size: int = 1 << 20) -> Path:
    sector = bytearray(512)
    code = BOOT_CODE + MESSAGE + b"\0"
    assert len(BOOT_CODE) == 0x1D
    sector[: len(code)] = code
    sector[510:512] = b"\x55\xaa"
    path.write_bytes(bytes(sector) + bytes(size - 512))
    return path


def test_vm_boots_an_e01_through_the_overlay(tmp_path: Path) -> None:
    require_fuse()
    require_tool("qemu-img", "qemu-system-x86_64")
    made = run_bitwitness("acquire", boot_disk(tmp_path / "disk.bin"), "-o", tmp_path / "boot")
    assert made.exit_code == 0, made.stderr
    image = tmp_path / "boot.E01"
    before = snapshot([image])
    overlay = tmp_path / "boot.qcow2"
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    serial = tmp_path / "serial.txt"
    guest = ["-display", "none", "-serial", f"file:{serial}", "-no-reboot",
             "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"]
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
    assert serial.read_bytes() == MESSAGE
    assert "-accel tcg" in done.stdout
    assert "qemu exited with status 1" in done.stdout  # the guest's own exit, code 0
    assert not _is_mount(mnt)
    info = json.loads(subprocess.run(["qemu-img", "info", "--output=json", str(overlay)],
                                     capture_output=True, text=True, check=True).stdout)
    assert info["format"] == "qcow2"
    assert info["backing-filename"] == str(mnt / "media.raw")
    assert info["backing-filename-format"] == "raw"
    assert info["virtual-size"] == 1 << 20
    assert snapshot([image]) == before


def test_vm_prints_the_commands_and_leaves_the_mount(tmp_path: Path) -> None:
    """Without --run: the mount stays for the hypervisor; qemu-img reads both descriptors."""
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
