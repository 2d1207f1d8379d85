"""A deleted file that was empty reads as empty, as ``icat`` reads it, on the file systems that
keep a deleted file's size (NTFS, FAT): it was refused as "not recoverable" (export listed it
as failed and exited 1, cat exited 1), as if its size had been cleared the way ext4 clears it.
Where an NTFS record holds no data attribute at all (the reserved records 16-23, never used),
nothing is read and the refusal stays, as where ext4 cleared the size.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import fsimages
import pytest
from conftest import require_root, require_tool, run_bitwitness

from bitwitness.errors import ExitCode

EMPTY_MD5 = "d41d8cd98f00b204e9800998ecf8427e"


def _run(*args: str | Path) -> subprocess.CompletedProcess[bytes]:
    done = subprocess.run([str(a) for a in args], capture_output=True, check=False, timeout=120)
    assert done.returncode == 0, (args, done.stderr[-400:])
    return done


def _ntfs(folder: Path) -> Path:
    """NTFS (mkntfs) where ``empty.txt`` was created empty and deleted, through ntfs-3g."""
    require_root()
    require_tool("mkntfs", "ntfs-3g")
    if not Path("/dev/fuse").exists():
        pytest.skip("no /dev/fuse")
    image = folder / "ntfs.img"
    with fsimages.fresh_ntfs(image, 16 << 20, folder / "m") as mountpoint:
        (mountpoint / "empty.txt").write_bytes(b"")
        (mountpoint / "kept.txt").write_bytes(b"kept\n")
        subprocess.run(["sync"], check=False)
        (mountpoint / "empty.txt").unlink()
    return image


def _fat(folder: Path) -> Path:
    """FAT (mkfs.vfat) where ``EMPTY.TXT`` was copied in empty and deleted, with mtools."""
    require_tool("mkfs.vfat", "mcopy", "mdel")
    image = folder / "fat.img"
    image.write_bytes(b"")
    os.truncate(image, 16 << 20)
    _run("mkfs.vfat", image)
    empty = folder / "empty.txt"
    empty.write_bytes(b"")
    _run("mcopy", "-i", image, empty, "::empty.txt")
    _run("mdel", "-i", image, "::empty.txt")
    return image


def _deleted_inode(image: Path) -> str:
    """The inode fls gives the deleted file (its name on FAT has lost its first letter)."""
    listing = _run("fls", "-rd", image).stdout.decode()
    line = next(line for line in listing.splitlines() if "mpty.txt" in line.lower())
    return line.split("*", 1)[1].split(":", 1)[0].strip()


@pytest.mark.parametrize("build", [_ntfs, _fat], ids=["ntfs", "fat"])
def test_a_deleted_empty_file_is_exported_and_read_as_empty(build: object,
                                                            tmp_path: Path) -> None:
    require_tool("fls", "icat")
    image = build(tmp_path)  # type: ignore[operator]
    inode = _deleted_inode(image)
    icat = subprocess.run(["icat", str(image), inode], capture_output=True, check=False)
    assert icat.returncode == 0
    assert icat.stdout == b""
    out = tmp_path / "out"
    done = run_bitwitness("export", image, "/", "--deleted", "--to", out)
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    rows = [r for r in manifest["files"] if "mpty.txt" in r["source"].lower()]
    assert len(rows) == 1, (manifest["files"], manifest.get("failed"))
    assert rows[0]["deleted"] is True
    assert rows[0]["md5"] == EMPTY_MD5
    assert (out / rows[0]["target"]).read_bytes() == b""
    assert not [f for f in manifest.get("failed", []) if "mpty.txt" in f["source"].lower()]
    assert done.exit_code in (ExitCode.OK, ExitCode.EVIDENCE), done.stderr
    cat = run_bitwitness("cat", image, rows[0]["source"])
    assert cat.exit_code == ExitCode.OK, cat.stderr
    assert cat.output == b""


def test_ntfs_records_without_data_stay_refused(tmp_path: Path) -> None:
    """(ext4's cleared sizes: tests/test_fs_ext_features.py and the parity tests.)"""
    require_tool("fls", "icat")
    ntfs = _ntfs(tmp_path)
    reserved = subprocess.run(["icat", str(ntfs), "16"], capture_output=True, check=False)
    assert reserved.returncode != 0  # icat: no data attribute to read
    cat = run_bitwitness("cat", ntfs, "/$OrphanFiles/OrphanFile-16")
    assert cat.exit_code == ExitCode.EVIDENCE
    assert "holds no data attribute" in cat.stderr


def _istat_attribute_types(image: Path, inode: str) -> set[str]:
    listing = _run("istat", image, inode).stdout.decode()
    return {line.split("Type: ", 1)[1].split(" ", 1)[0]
            for line in listing.splitlines() if line.startswith("Type: ")}


def test_export_of_a_fresh_ntfs_loses_nothing(tmp_path: Path) -> None:
    """Every NTFS volume holds the reserved MFT records 16-23, which fls lists as deleted
    orphans and which hold no data attribute (istat: $STANDARD_INFORMATION alone; icat reads
    nothing). ``export --all`` of a volume holding only live files listed them under ``failed``
    and exited 1, as if deleted content were lost: they are now under ``no_content`` and the
    export succeeds; a deleted file's cleared content still fails it (the test above)."""
    require_tool("fls", "istat", "icat")
    ntfs = _ntfs(tmp_path)
    orphans = [line.split("*", 1)[1].split(":", 1)[0].strip()
               for line in _run("fls", "-rp", ntfs).stdout.decode().splitlines()
               if "OrphanFile-" in line]
    reserved = [n for n in orphans if _istat_attribute_types(ntfs, n) == {"$STANDARD_INFORMATION"}]
    assert len(reserved) == 8, orphans  # records 16-23
    out = tmp_path / "out"
    done = run_bitwitness("export", ntfs, "/", "--all", "--to", out)
    assert done.exit_code == ExitCode.OK, done.stderr
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["complete"] is True
    assert manifest["failed"] == []
    assert sorted(r["inode"] for r in manifest["no_content"]) == sorted(reserved)
    assert all(r["deleted"] for r in manifest["no_content"])
    assert "NO CONTENT" in done.stdout
    kept = [r for r in manifest["files"] if r["source"] == "/kept.txt"]
    assert len(kept) == 1
    icat = _run("icat", ntfs, kept[0]["inode"].split("-", 1)[0]).stdout
    assert icat == b"kept\n"
    assert kept[0]["md5"] == hashlib.md5(icat, usedforsecurity=False).hexdigest()
