"""Files a file system stores encrypted (NTFS EFS, ext4 fscrypt): their bytes are handed out
as they lie on the disk (the ciphertext is the evidence) but never pass for the content as the
user saw it: ``cat`` exits 1 naming the encryption, ``stat`` lists it among the doubts, and
``export`` writes the file, lists it under ``failed`` as "exported, but ..." and exits 1.

NTFS: ntfs-3g's ``efs_raw`` mode restores an EFS file as backup tools do (the ``$EFS`` stream
through the ``user.ntfs.efsinfo`` attribute, then the raw ciphertext), which marks the ``$DATA``
attribute encrypted; ``istat`` says so and ``icat`` reads the ciphertext. ext4: ``mkfs.ext4 -O
encrypt``, and ``debugfs`` sets ``EXT4_ENCRYPT_FL`` on one inode (``debugfs stat`` shows the
flag). A plain file beside each must draw no doubt.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import require_root, require_tool, run_bitwitness

CIPHERTEXT = hashlib.sha256(b"ciphertext").digest() * 128  # 4 KiB as the disk holds it


def _sh(*args: str | Path) -> str:
    return subprocess.run([os.fspath(a) for a in args], capture_output=True, text=True,
                          check=True).stdout


def _efs_info() -> bytes:
    """A ``$EFS`` stream as ntfs-3g accepts it: its length, state 0, version 2, the offset of
    a (here empty) data decryption field; the key material of a real one is not needed to mark
    the file encrypted, and nothing here decrypts."""
    blob = bytearray(0x100)
    struct.pack_into("<III", blob, 0, len(blob), 0, 2)
    struct.pack_into("<I", blob, 0x24, 0x60)
    return bytes(blob)


@pytest.fixture(scope="module")
def ntfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_root()
    require_tool("mkntfs", "ntfs-3g", "setfattr", "istat", "icat")
    if not Path("/dev/fuse").exists():
        pytest.skip("no /dev/fuse")
    work = tmp_path_factory.mktemp("efs")
    image, mount = work / "ntfs.img", work / "mnt"
    mount.mkdir()
    with image.open("wb") as out:
        out.truncate(16 << 20)
    _sh("mkntfs", "-q", "-F", "-Q", image)
    _sh("ntfs-3g", "-o", "efs_raw", image, mount)
    try:
        (mount / "plain.txt").write_bytes(b"not secret\n")
        (mount / "enc.bin").touch()
        _sh("setfattr", "-n", "user.ntfs.efsinfo", "-v", "0x" + _efs_info().hex(),
            mount / "enc.bin")
        (mount / "enc.bin").write_bytes(CIPHERTEXT)
    finally:
        subprocess.run(["sync"], check=False)
        _sh("umount", mount)
    return image


def _inode(image: Path, name: str) -> str:
    return _sh("ifind", "-n", name, image).strip()


def test_tsk_sees_the_efs_file_as_the_test_made_it(ntfs: Path) -> None:
    """The oracle: istat marks the $DATA attribute encrypted, icat reads the ciphertext."""
    istat = _sh("istat", ntfs, _inode(ntfs, "enc.bin"))
    assert re.search(r"\$DATA \(128-\d+\).*Encrypted", istat)
    assert "$EFS" in istat
    raw = subprocess.run(["icat", ntfs, _inode(ntfs, "enc.bin")], capture_output=True,
                         check=True).stdout
    assert raw == CIPHERTEXT


def test_cat_and_stat_name_the_encryption(ntfs: Path) -> None:
    raw = subprocess.run(["icat", ntfs, _inode(ntfs, "enc.bin")], capture_output=True,
                         check=True).stdout
    cat = subprocess.run([sys.executable, "-m", "bitwitness", "cat", ntfs, "/enc.bin"],
                         capture_output=True, check=False)
    assert cat.returncode == 1
    assert cat.stdout == raw  # the bytes on the disk, as icat reads them
    assert b"EFS-encrypted" in cat.stderr
    assert len(cat.stderr.strip().splitlines()) == 1
    plain = run_bitwitness("cat", ntfs, "/plain.txt")
    assert (plain.exit_code, plain.stdout) == (0, "not secret\n")
    stat = run_bitwitness("stat", "--json", ntfs, "/enc.bin")
    assert stat.exit_code == 0
    assert any("EFS-encrypted" in d for d in stat.json()["doubts"])
    assert run_bitwitness("stat", "--json", ntfs, "/plain.txt").json()["doubts"] == []


def test_export_writes_the_ciphertext_and_says_so(ntfs: Path, tmp_path: Path) -> None:
    raw = subprocess.run(["icat", ntfs, _inode(ntfs, "enc.bin")], capture_output=True,
                         check=True).stdout
    out = tmp_path / "out"
    result = run_bitwitness("export", ntfs, "/", "--to", out)
    assert result.exit_code == 1
    assert "DOUBTED" in result.stdout
    assert "not exported" not in result.stderr
    assert (out / "enc.bin").read_bytes() == raw
    manifest = json.loads((out / "manifest.json").read_text())
    files = {f["source"]: f for f in manifest["files"]}
    assert files["/enc.bin"]["sha256"] == hashlib.sha256(raw).hexdigest()
    failed = {f["source"]: f["reason"] for f in manifest["failed"]}
    assert failed["/enc.bin"].startswith("exported, but its data is EFS-encrypted")
    assert "/plain.txt" not in failed


@pytest.fixture(scope="module")
def ext4(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_tool("mkfs.ext4", "debugfs")
    work = tmp_path_factory.mktemp("fscrypt")
    tree = work / "tree"
    tree.mkdir()
    (tree / "secret.bin").write_bytes(CIPHERTEXT)
    (tree / "plain.txt").write_bytes(b"not secret\n")
    image = work / "ext4.img"
    with image.open("wb") as out:
        out.truncate(8 << 20)
    _sh("mkfs.ext4", "-q", "-O", "encrypt", "-d", tree, image)
    flags = int(re.search(r"Flags: (0x[0-9a-f]+)",
                          _sh("debugfs", "-R", "stat /secret.bin", image)).group(1), 16)
    _sh("debugfs", "-w", "-R", f"set_inode_field /secret.bin flags {flags | 0x800:#x}", image)
    return image


def test_fscrypt_inode_is_named(ext4: Path) -> None:
    shown = _sh("debugfs", "-R", "stat /secret.bin", ext4)
    assert int(re.search(r"Flags: (0x[0-9a-f]+)", shown).group(1), 16) & 0x800
    cat = run_bitwitness("cat", ext4, "/secret.bin")
    assert cat.exit_code == 1
    assert "encrypted by ext4 (fscrypt)" in cat.stderr
    stat = run_bitwitness("stat", "--json", ext4, "/secret.bin").json()
    assert any("fscrypt" in d for d in stat["doubts"])
    assert run_bitwitness("stat", "--json", ext4, "/plain.txt").json()["doubts"] == []
    assert run_bitwitness("cat", ext4, "/plain.txt").exit_code == 0


def test_a_folder_whose_names_fscrypt_encrypts_is_said(tmp_path: Path) -> None:
    """A folder with EXT4_ENCRYPT_FL (set by debugfs, whose stat is the reference) holds
    encrypted names: listed as their bytes (as fls lists them), with a warning naming the
    folder; a plain folder says nothing."""
    require_tool("mkfs.ext4", "debugfs")
    tree = tmp_path / "tree"
    (tree / "locked").mkdir(parents=True)
    (tree / "open").mkdir()
    (tree / "locked" / "a.txt").write_bytes(b"x")
    image = tmp_path / "ext4.img"
    with image.open("wb") as out:
        out.truncate(8 << 20)
    _sh("mkfs.ext4", "-q", "-O", "encrypt", "-d", tree, image)
    flags = int(re.search(r"Flags: (0x[0-9a-f]+)",
                          _sh("debugfs", "-R", "stat /locked", image)).group(1), 16)
    _sh("debugfs", "-w", "-R", f"set_inode_field /locked flags {flags | 0x800:#x}", image)
    assert int(re.search(r"Flags: (0x[0-9a-f]+)",
                         _sh("debugfs", "-R", "stat /locked", image)).group(1), 16) & 0x800
    listed = run_bitwitness("ls", "-r", image)
    assert listed.exit_code == 0, listed.stderr
    assert "warning: /locked: the names in this folder are encrypted by ext4 (fscrypt)" \
        in listed.stderr
    assert "/open:" not in listed.stderr
    inside = run_bitwitness("ls", image, "/locked")
    assert "warning: /locked: the names in this folder are encrypted" in inside.stderr
