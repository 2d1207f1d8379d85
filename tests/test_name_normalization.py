"""A path typed composed (NFC, as keyboards give it) finds a name stored decomposed (NFD, as
HFS+ stores every name and macOS tools write them elsewhere): the lookup's last tier compares
the names' composed forms. Where both spellings exist as two files (ext keeps bytes as written),
each exact spelling finds its own file.

``mkfs.ext4 -d`` writes the names byte for byte; ``debugfs -R cat`` with the exact bytes is the
oracle of each file's content. On HFS+ (tests/builders/hfsplus.py writes the names decomposed,
as macOS does) ``fls`` shows the stored form and ``icat`` of its inode is the oracle.
"""

from __future__ import annotations

import os
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest
from builders.hfsplus import Node, hfsplus_volume
from conftest import require_tool

NFC, NFD = "NFC", "NFD"


def _form(form: str, name: str) -> str:
    return unicodedata.normalize(form, name)


@pytest.fixture(scope="module")
def ext4(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_tool("mkfs.ext4", "debugfs")
    work = tmp_path_factory.mktemp("nfd")
    tree = work / "tree"
    (tree / _form(NFD, "Résumés")).mkdir(parents=True)
    (tree / _form(NFD, "Résumés") / _form(NFD, "café.txt")).write_bytes(b"decomposed only\n")
    (tree / _form(NFC, "thé.txt")).write_bytes(b"composed spelling\n")
    (tree / _form(NFD, "thé.txt")).write_bytes(b"decomposed spelling\n")
    image = work / "ext4.img"
    with image.open("wb") as out:
        out.truncate(8 << 20)
    subprocess.run(["mkfs.ext4", "-q", "-d", tree, image], check=True)
    return image


def _debugfs_cat(image: Path, path: str) -> bytes:
    return subprocess.run(["debugfs", "-R", f"cat {path}", os.fspath(image)],
                          capture_output=True, check=True).stdout


def _cat(image: Path, path: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "bitwitness", "cat", os.fspath(image), path],
                          capture_output=True, check=False, timeout=120)


def test_a_composed_path_finds_a_decomposed_name(ext4: Path) -> None:
    stored = "/" + _form(NFD, "Résumés") + "/" + _form(NFD, "café.txt")
    typed = _form(NFC, stored)
    assert typed != stored
    expected = _debugfs_cat(ext4, stored)
    assert expected == b"decomposed only\n"
    result = _cat(ext4, typed)
    assert result.returncode == 0, result.stderr
    assert result.stdout == expected


def test_each_exact_spelling_finds_its_own_file(ext4: Path) -> None:
    for form in (NFC, NFD):
        path = "/" + _form(form, "thé.txt")
        expected = _debugfs_cat(ext4, path)
        result = _cat(ext4, path)
        assert result.returncode == 0, result.stderr
        assert result.stdout == expected
    assert _debugfs_cat(ext4, "/" + _form(NFC, "thé.txt")) != _debugfs_cat(
        ext4, "/" + _form(NFD, "thé.txt"))


def test_hfsplus_decomposed_names_are_found_as_typed(tmp_path: Path) -> None:
    require_tool("fls", "icat")
    folder, name = _form(NFD, "Résumés"), _form(NFD, "café.txt")
    image = tmp_path / "hfs.img"
    image.write_bytes(hfsplus_volume([Node(folder, folder=True),
                                      Node(name, data=b"from a Mac\n", parent=folder)]))
    listing = subprocess.run(["fls", "-r", "-p", "-f", "hfs", os.fspath(image)],
                             capture_output=True, text=True, check=True).stdout
    line = next(line for line in listing.splitlines() if line.endswith(f"{folder}/{name}"))
    inode = line.split()[1].rstrip(":")
    expected = subprocess.run(["icat", "-f", "hfs", os.fspath(image), inode],
                              capture_output=True, check=True).stdout
    assert expected == b"from a Mac\n"
    result = _cat(image, "/" + _form(NFC, f"{folder}/{name}"))
    assert result.returncode == 0, result.stderr
    assert result.stdout == expected
