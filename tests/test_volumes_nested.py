"""A partition table inside a decrypted volume: a LUKS2 volume (header by cryptsetup, payload by
luksbuild.make_luks: cryptsetup refuses to encrypt a plaintext that starts with a partition
table) holding an MBR disk with two FAT16 file systems.

The truth is the plain disk image: the rows under ``0/luks1`` are ``mmls``'s rows of the plain
disk, and each file system's listing and contents are ``fls -o``/``icat -o`` on it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from conftest import require_tool, snapshot
from luksbuild import make_luks
from test_browse_disks import MTOOLS_ENV, mmls_rows
from test_browse_listing import as_fls

KEY = "nested tables passphrase"
STARTS = (2048, 22528)


@pytest.fixture(scope="module")
def volume(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    require_tool("cryptsetup", "sfdisk", "mkfs.vfat", "mcopy", "mdel", "fls", "icat", "mmls")
    base = tmp_path_factory.mktemp("nested")
    disk = base / "mbr.img"
    subprocess.run(["truncate", "-s", "24M", str(disk)], check=True)
    table = "label: dos\n" + "".join(f"start={start}, size=20480, type=c\n" for start in STARTS)
    subprocess.run(["sfdisk", "-q", str(disk)], input=table.encode(), check=True)
    for number, start in enumerate(STARTS):
        subprocess.run(["mkfs.vfat", "-F", "16", "--offset", str(start), "-n", f"PART{number}",
                        str(disk), "10240"], check=True, capture_output=True)
        for name, data in ((f"file{number}.txt", f"in partition {number}\n".encode()),
                           ("big.bin", bytes([number]) * 70000),
                           ("gone.txt", b"deleted " * 300)):
            src = base / name
            src.write_bytes(data)
            subprocess.run(["mcopy", "-i", f"{disk}@@{start * 512}", str(src), f"::/{name}"],
                           check=True, env=MTOOLS_ENV)
        subprocess.run(["mdel", "-i", f"{disk}@@{start * 512}", "::/gone.txt"], check=True,
                       env=MTOOLS_ENV)
    key_file = base / "key.txt"
    key_file.write_text(KEY, encoding="utf-8")
    image = base / "luks-mbr.img"
    make_luks(image, disk, key_file, version=2)
    image.chmod(0o444)
    return image, disk, key_file


def test_the_tree_recurses_into_the_table_inside_a_decrypted_volume(
        volume: tuple[Path, Path, Path], bw) -> None:
    image, disk, key_file = volume
    before = snapshot([image])
    key = ["--key-file", key_file]
    tree = bw("partitions", "--json", image, *key)
    assert tree.exit_code == 0, tree.stderr
    (inner,) = tree.json()["partitions"][0]["volumes"]
    assert inner["path"] == "0/luks1"
    assert inner["filesystem"] is None
    # one child per allocated row of the plain disk's table, numbered as mmls numbers them
    wanted = [(f"0/luks1/p{slot}", length * 512)
              for slot, _start, _end, length, description in mmls_rows(disk)
              if description.startswith("Win95")]
    assert [(v["path"], v["size"]) for v in inner["volumes"]] == wanted
    assert [v["filesystem"] for v in inner["volumes"]] == ["fat16", "fat16"]
    for (path, _size), start in zip(wanted, STARTS, strict=True):
        listing = bw("ls", image, "-r", "--all", "--json", "-p", path, *key)
        assert listing.exit_code == 0, listing.stderr
        entries = listing.json()["entries"]
        theirs = subprocess.run(["fls", "-r", "-p", "-o", str(start), str(disk)],
                                capture_output=True, check=True).stdout.decode()
        assert Counter(as_fls(e) for e in entries) == Counter(theirs.splitlines())
        assert any(e["deleted"] and e["name"].lower().endswith("one.txt") for e in entries)
        for entry in entries:
            if entry["kind"] != "file" or entry["deleted"] or entry["name"].startswith("$"):
                continue
            icat = subprocess.run(["icat", "-o", str(start), str(disk), entry["inode"]],
                                  capture_output=True, check=True).stdout
            proc = subprocess.run([sys.executable, "-m", "bitwitness", "cat", str(image),
                                   "--inode", entry["inode"], "-p", path,
                                   *map(os.fspath, key)], capture_output=True, check=False)
            assert proc.returncode == 0, proc.stderr
            assert proc.stdout == icat, entry["path"]
    # without -p: two file systems, the message names both paths
    several = bw("ls", image, *key)
    assert several.exit_code == 2
    assert all(path in several.stderr for path, _size in wanted)
    assert snapshot([image]) == before
