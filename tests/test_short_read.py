"""A file the file system hands out fewer bytes of than the size it records: ``cat`` and
``export`` give the bytes there are (as ``icat`` does) and say how many of how many, never
passing them off as the whole file.

A mount answers a read the file system gives short with ``EIO`` (a short read would make the
kernel take the file to end there: ``cp`` would copy it short without a word).

The case is made the way damaged or hostile FAT volumes are: a 20,000-byte file whose cluster
chain ends after its first cluster. ``fsck.fat -n`` (dosfstools, an independent FAT reader) says
so ("cluster chain length is 2048 bytes"), ``mdir`` still lists the 20,000 bytes the entry
records, and ``icat`` gives the chain's bytes without a word.

NTFS ``$BadClus:$Bad`` on a volume with no bad clusters is the other side: its size is the
volume's and TSK reads none of it, on purpose (one sparse run as long as the volume), while
ntfs-3g reads it as that many zeros. Nothing is lost there, so no doubt is raised for it.
"""

from __future__ import annotations

import json
import os
import re
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import require_tool, run_bitwitness

SIZE = 20_000


def _sh(*args: str | Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([os.fspath(a) for a in args], capture_output=True, check=True)


@pytest.fixture(scope="module")
def short_chain(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A FAT16 volume with ``BIG.BIN`` (20,000 bytes recorded) whose chain is one cluster,
    and ``OK.BIN`` whole beside it."""
    require_tool("mkfs.fat", "mcopy", "fsck.fat", "mdir", "icat")
    work = tmp_path_factory.mktemp("shortchain")
    image = work / "fat.img"
    _sh("mkfs.fat", "-C", "-F", "16", "-n", "SHORT", image, "16384")
    (work / "big.bin").write_bytes(os.urandom(SIZE))
    (work / "ok.bin").write_bytes(os.urandom(SIZE))
    _sh("mcopy", "-i", image, work / "big.bin", "::/BIG.BIN")
    _sh("mcopy", "-i", image, work / "ok.bin", "::/OK.BIN")
    data = bytearray(image.read_bytes())
    sector, reserved, fats, entries, per_fat = (
        struct.unpack_from("<H", data, 11)[0], struct.unpack_from("<H", data, 14)[0],
        data[16], struct.unpack_from("<H", data, 17)[0], struct.unpack_from("<H", data, 22)[0])
    root = (reserved + fats * per_fat) * sector
    for at in range(root, root + entries * 32, 32):
        if data[at:at + 11] == b"BIG     BIN":
            first = struct.unpack_from("<H", data, at + 26)[0]
            for n in range(fats):  # the first cluster ends the chain, in both FATs
                struct.pack_into("<H", data, (reserved + n * per_fat) * sector + 2 * first,
                                 0xFFFF)
            break
    else:
        raise AssertionError("BIG.BIN not in the root folder")
    image.write_bytes(data)
    return image


def _cat(image: Path, path: str) -> subprocess.CompletedProcess[bytes]:
    """``bitwitness cat`` as its own process: its stdout as bytes, its exit code."""
    return subprocess.run([sys.executable, "-m", "bitwitness", "cat", os.fspath(image), path],
                          capture_output=True, check=False, timeout=120)


def _inode(image: Path, name: str) -> str:
    return _sh("ifind", "-n", name, image).stdout.decode().strip()


def _chain_length(image: Path) -> int:
    """What fsck.fat (read-only) finds the chain of BIG.BIN to hold."""
    report = subprocess.run(["fsck.fat", "-n", os.fspath(image)], capture_output=True,
                            text=True, check=False).stdout
    found = re.search(r"File size is (\d+) bytes, cluster chain length is (\d+) bytes", report)
    assert found, report
    assert int(found.group(1)) == SIZE
    return int(found.group(2))


def test_the_oracles_see_the_chain_cut_short(short_chain: Path) -> None:
    chain = _chain_length(short_chain)
    assert chain < SIZE
    listing = _sh("mdir", "-i", short_chain, "::/").stdout.decode()
    assert re.search(rf"BIG\s+BIN\s+{SIZE}\b", listing)
    assert len(_sh("icat", short_chain, _inode(short_chain, "BIG.BIN")).stdout) == chain


def test_cat_gives_what_there_is_and_says_how_much(short_chain: Path) -> None:
    chain = _chain_length(short_chain)
    result = _cat(short_chain, "/BIG.BIN")
    assert result.returncode == 1
    assert result.stdout == _sh("icat", short_chain, _inode(short_chain, "BIG.BIN")).stdout
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1, lines
    assert f"only {chain:,} of its {SIZE:,} bytes could be read" in lines[0]
    whole = _cat(short_chain, "/OK.BIN")
    assert whole.returncode == 0, whole.stderr
    assert whole.stdout == _sh("icat", short_chain, _inode(short_chain, "OK.BIN")).stdout
    assert len(whole.stdout) == SIZE


def test_export_writes_the_bytes_and_lists_the_doubt(short_chain: Path, tmp_path: Path) -> None:
    chain = _chain_length(short_chain)
    result = run_bitwitness("export", short_chain, "/", "--to", tmp_path / "out")
    assert result.exit_code == 1, result.stderr
    assert re.search(r"^DOUBTED\s+/BIG\.BIN: exported, but only ", result.stdout, re.MULTILINE)
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    files = {f["source"]: f for f in manifest["files"]}
    assert files["/BIG.BIN"]["size"] == chain
    assert files["/OK.BIN"]["size"] == SIZE
    reasons = {f["source"]: f["reason"] for f in manifest["failed"]}
    assert set(reasons) == {"/BIG.BIN"}
    assert reasons["/BIG.BIN"].startswith("exported, but only ")
    assert f"{chain:,} of its {SIZE:,} bytes" in reasons["/BIG.BIN"]


def test_mount_refuses_the_short_read(short_chain: Path, tmp_path: Path) -> None:
    from test_mount import Foreground, require_fuse

    require_fuse()
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    fg = Foreground(short_chain, mnt, "--files")
    try:
        copied = subprocess.run(["cp", mnt / "files/0/BIG.BIN", tmp_path / "big"],
                                capture_output=True, text=True, check=False)
        whole = (mnt / "files/0/OK.BIN").read_bytes()
    finally:
        code, _, err = fg.stop()
    assert copied.returncode != 0
    assert "Input/output error" in copied.stderr
    assert whole == _sh("icat", short_chain, _inode(short_chain, "OK.BIN")).stdout
    assert code == 0, err
    chain = _chain_length(short_chain)
    assert f"BIG.BIN: read at byte 0: the file system gave only {chain:,} of" in err


@pytest.fixture(scope="module")
def ntfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_tool("mkntfs", "ntfscat", "icat", "istat")
    image = tmp_path_factory.mktemp("badclus") / "ntfs.img"
    with image.open("wb") as out:
        out.truncate(16 << 20)
    _sh("mkntfs", "-q", "-F", "-Q", image)
    return image


def test_badclus_sparse_throughout_is_no_doubt(ntfs: Path, tmp_path: Path) -> None:
    istat = _sh("istat", ntfs, "8").stdout.decode()
    size = int(re.search(r"Name: \$Bad\s+Non-Resident\s+size: (\d+)", istat).group(1))  # type: ignore[union-attr]
    assert _sh("icat", ntfs, "8-128-1").stdout == b""  # TSK drops the volume-long sparse run
    zeros = _sh("ntfscat", "-f", "-a", "128", "-n", "$Bad", ntfs, "$BadClus").stdout
    assert len(zeros) == size  # ntfs-3g: that many zeros
    assert not zeros.strip(b"\0")
    result = _cat(ntfs, "/$BadClus:$Bad")
    assert result.returncode == 0, result.stderr
    assert result.stdout == b""
    exported = run_bitwitness("export", ntfs, "/", "--to", tmp_path / "out")
    assert exported.exit_code == 0, exported.stderr
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["failed"] == []
