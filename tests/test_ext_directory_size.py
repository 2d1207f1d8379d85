"""An ext directory whose recorded size is damaged is listed in bounded time.

TSK reads an ext directory a block at a time up to the size its inode records, holes included.
A fuzzed 3 MiB file system whose root held a directory recording 1.3 GB took 80 s to browse
(seconds at every listing of that folder and every orphan search), with TSK in C ignoring
signals. scripts/build-pytsk3.sh's ninth fix stops the read
where the directory's last run holding blocks ends, and at the file system's size: the entries
the directory's blocks hold are still listed, as from the undamaged volume.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import require_tool


def _run(*args: str | Path) -> None:
    subprocess.run([str(a) for a in args], check=True, capture_output=True, timeout=120)


#: The fuzzed size, and the largest a directory's 32-bit size field holds (TSK reads no more of
#: a directory's size: one recording 2^40 is a folder it cannot open, as fls says).
@pytest.mark.parametrize("size", [1_293_644_550, 0xFFFF_FC00])
def test_a_directory_claiming_gigabytes_lists_at_once(tmp_path: Path, size: int) -> None:
    require_tool("mkfs.ext4", "debugfs")
    image = tmp_path / "ext4.img"
    image.write_bytes(b"")
    subprocess.run(["truncate", "-s", "8M", str(image)], check=True)
    _run("mkfs.ext4", "-q", "-F", "-b", "1024", "-O", "^dir_index", image)
    payload = tmp_path / "payload"
    payload.write_bytes(b"evidence\n")
    _run("debugfs", "-w", "-R", "mkdir folder", image)
    for n in range(3):
        _run("debugfs", "-w", "-R", f"write {payload} folder/file{n}.txt", image)
    command = [sys.executable, "-m", "bitwitness", "ls", "-r", str(image)]
    before = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert before.returncode == 0, before.stderr
    _run("debugfs", "-w", "-R", f"sif folder size {size}", image)
    started = time.monotonic()
    # an unfixed TSK reads the 4 GiB as 4M blocks of zeros, at every opening of the folder
    after = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    elapsed = time.monotonic() - started
    assert after.returncode in (0, 1), after.stderr
    assert after.stdout == before.stdout
    assert "folder/file2.txt" in after.stdout
    assert elapsed < 15, elapsed
