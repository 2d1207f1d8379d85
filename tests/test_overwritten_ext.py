"""A deleted ext file whose blocks were allocated again is not passed off as recovered.

``debugfs rm`` frees an inode's blocks but leaves its block pointers (or extents) and size, so
``icat`` still reads them; a file written afterwards takes the freed blocks. Which of them are
allocated again is asked of The Sleuth Kit's ``blkstat`` block by block (the independent
reader of the block bitmaps), and ``cat``/``stat`` must name that count.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from conftest import require_tool
from test_browse_parity import _bitwitness


def _deleted_then_reused(folder: Path, kind: str) -> Path:
    staging = folder / "staging"
    staging.mkdir()
    (staging / "a.bin").write_bytes(bytes(range(255, -1, -1)) * 160)  # 10 blocks of 4 KiB
    (staging / "victim.bin").write_bytes(bytes(range(256)) * 160)
    image = folder / f"{kind}.img"
    subprocess.run(["truncate", "-s", "4M", str(image)], check=True)
    subprocess.run([f"mkfs.{kind}", "-q", "-F", "-b", "4096", "-d", str(staging), str(image)],
                   check=True, capture_output=True)
    for name in ("a.bin", "victim.bin"):  # a.bin first, so that victim's inode stays free
        subprocess.run(["debugfs", "-w", "-R", f"rm {name}", str(image)], check=True,
                       capture_output=True)
    newer = folder / "newer.bin"
    newer.write_bytes(b"n" * (16 * 4096 - 100))  # a.bin's 10 blocks and some of victim's
    subprocess.run(["debugfs", "-w", "-R", f"write {newer} n", str(image)], check=True,
                   capture_output=True)
    return image


@pytest.mark.parametrize("kind", ["ext2", "ext4"])
def test_reused_blocks_are_named(kind: str, tmp_path: Path) -> None:
    require_tool(f"mkfs.{kind}", "debugfs", "fls", "istat", "blkstat", "icat")
    image = _deleted_then_reused(tmp_path, kind)
    listing = subprocess.run(["fls", str(image)], capture_output=True, text=True,
                             check=True).stdout
    found = re.search(r"r/r \* (\d+):\s+victim\.bin", listing)
    assert found is not None, listing  # deleted, and its inode not reused
    inode = found.group(1)
    stat = subprocess.run(["istat", str(image), inode], capture_output=True, text=True,
                          check=True).stdout
    blocks = [int(b) for b in re.findall(r"\d+", stat.split("Direct Blocks:", 1)[1])]
    taken = sum("Not Allocated" not in subprocess.run(
        ["blkstat", str(image), str(b)], capture_output=True, text=True, check=True).stdout
        for b in blocks)
    assert 0 < taken < len(blocks) == 10  # some reused, some not

    said = f"{taken} of the {len(blocks)} block(s) its runs name are allocated again"
    cat = _bitwitness("cat", image, "--inode", inode)
    icat = subprocess.run(["icat", str(image), inode], capture_output=True, check=True).stdout
    assert cat.stdout == icat
    assert cat.returncode == 1
    assert said in cat.stderr.decode()
    doubted = json.loads(_bitwitness("stat", image, "--inode", inode, "--json").stdout)
    assert [d for d in doubted["doubts"] if said in d]
    live = _bitwitness("cat", image, "/n")
    assert live.returncode == 0, live.stderr
