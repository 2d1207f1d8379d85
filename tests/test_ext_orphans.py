"""Orphan files of ext2/3/4 when one of them is a removed folder, compared with ``fls``/``icat``.

The kernel clears the size and blocks of a folder it removes (``rm -r``), and the names of
what it held may be gone with the folder's block: its inode and those of its files become
orphans, listed by ``fls -r -p`` as ``$OrphanFiles/OrphanFile-N``. The libtsk inside pytsk3
(4.15) cannot open ``$OrphanFiles`` at all once one orphan is such an empty folder, so every
orphan of the file system went missing from ``ls``, ``timeline`` and ``export`` (a warning was
all that was left). The image here is that state made with debugfs (no mount needed): the
folder ``gone`` (with ``gone/inner.txt``) and the file ``lost.txt`` removed, their inodes freed,
the folder's size and first block cleared as the kernel clears them, and the names overwritten
by a longer one, so that nothing names the three inodes.
"""

from __future__ import annotations

import re
import subprocess
from collections import Counter
from pathlib import Path

import pytest
from conftest import require_tool
from test_browse_parity import _bitwitness


def _debugfs(image: Path, command: str) -> None:
    subprocess.run(["debugfs", "-w", "-R", command, str(image)], check=True,
                   capture_output=True)


def _inode(image: Path, path: str) -> int:
    out = subprocess.run(["debugfs", "-R", f"stat {path}", str(image)], check=True,
                         capture_output=True, text=True).stdout
    found = re.search(r"Inode: (\d+)", out)
    assert found is not None, out
    return int(found.group(1))


def _orphaned_folder(folder: Path, kind: str) -> Path:
    image = folder / f"{kind}.img"
    inner, lost = folder / "inner.txt", folder / "lost.txt"
    inner.write_bytes(b"inside the removed folder\n")
    lost.write_bytes(b"a file nothing names any more\n")
    subprocess.run(["truncate", "-s", "8M", str(image)], check=True)
    subprocess.run([f"mkfs.{kind}", "-q", "-F", "-T", "small", str(image)], check=True,
                   capture_output=True)
    _debugfs(image, "mkdir gone")
    _debugfs(image, f"write {inner} gone/inner.txt")
    _debugfs(image, f"write {lost} lost.txt")
    inodes = [_inode(image, p) for p in ("gone", "gone/inner.txt", "lost.txt")]
    for command in ("unlink gone/inner.txt", "unlink gone", "unlink lost.txt"):
        _debugfs(image, command)
    for inode in inodes:
        _debugfs(image, f"kill_file <{inode}>")
    _debugfs(image, f"sif <{inodes[0]}> size 0")  # what the kernel leaves of a removed folder
    _debugfs(image, f"sif <{inodes[0]}> block[0] 0")
    for inode in inodes:  # keep the three inodes from the next file while it takes the slot
        _debugfs(image, f"seti <{inode}>")
    _debugfs(image, f"write {lost} {'n' * 60}")
    for inode in inodes:
        _debugfs(image, f"freei <{inode}>")
    return image


@pytest.mark.parametrize("kind", ["ext2", "ext4"])
def test_orphans_behind_an_emptied_folder_are_listed(kind: str, tmp_path: Path) -> None:
    require_tool(f"mkfs.{kind}", "debugfs", "fls", "icat")
    image = _orphaned_folder(tmp_path, kind)
    fls = subprocess.run(["fls", "-r", "-p", str(image)], check=True, capture_output=True,
                         text=True).stdout
    orphans = [line for line in fls.splitlines() if "$OrphanFiles/" in line]
    assert len(orphans) == 3, fls  # the folder, its file and lost.txt

    listing = _bitwitness("ls", "-r", "--all", image)
    assert listing.returncode == 0, listing.stderr
    assert Counter(listing.stdout.decode().splitlines()) == Counter(fls.splitlines())

    body = subprocess.run(["fls", "-r", "-m", "/", str(image)], check=True,
                          capture_output=True, text=True).stdout
    timeline = _bitwitness("timeline", image)
    assert Counter(timeline.stdout.decode().splitlines()) == Counter(body.splitlines())

    for line in orphans:
        if line.startswith("-/r"):
            inode = line.split()[2].rstrip(":")
            path = line.split("\t", 1)[1]
            icat = subprocess.run(["icat", str(image), inode], check=True,
                                  capture_output=True).stdout
            assert _bitwitness("cat", image, f"/{path}").stdout == icat
