"""A file with many hard links keeps its further ``$FILE_NAME`` attributes in extension MFT
records, where their attribute ids repeat; TSK reads an attribute by (type, id), the first
match, and ``stat`` showed one link's name and times sixty times and none of the others. Each
name with its own times, as ``istat`` prints them, is what ``stat`` shows now.

The volume is made by mkntfs and written through ntfs-3g (``ln``, in three batches a few
seconds apart so that the names' times differ).
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

import fsimages
import pytest
from conftest import require_root, require_tool, run_bitwitness


@pytest.fixture(scope="module")
def volume(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_root()
    require_tool("mkntfs", "ntfs-3g", "istat")
    if not Path("/dev/fuse").exists():
        pytest.skip("no /dev/fuse")
    folder = tmp_path_factory.mktemp("links")
    image = folder / "ntfs.img"
    with fsimages.fresh_ntfs(image, 16 << 20, folder / "m") as mountpoint:
        base = mountpoint / "base.txt"
        base.write_bytes(b"linked\n")
        for batch, count in (("A", 5), ("B_batch_two_with_a_longer_name", 30),
                             ("C_batch_three_with_a_longer_name", 30)):
            time.sleep(1.1)
            for number in range(1, count + 1):
                os.link(base, mountpoint / f"{batch}_{number}.txt")
    return image


def _istat_names(image: Path, inode: str) -> Counter[tuple[str, str]]:
    """(name, MFT Modified to the microsecond) of each $FILE_NAME istat prints."""
    text = subprocess.run(["istat", image, inode], check=True, capture_output=True,
                          text=True).stdout
    blocks = text.split("$FILE_NAME Attribute Values:")[1:]
    found: Counter[tuple[str, str]] = Counter()
    for block in blocks:
        name = re.search(r"^Name: (.*)$", block, re.M)
        changed = re.search(r"^MFT Modified:\t(\S+ \S+?)\d{3} \(UTC\)$", block, re.M)
        assert name, block
        assert changed, block
        found[(name.group(1), changed.group(1).replace(" ", "T"))] += 1
    return found


def test_every_link_shows_its_own_name_and_times(volume: Path) -> None:
    doc = run_bitwitness("stat", volume, "/base.txt", "--json").json()
    ours = Counter((fn["name"], datetime.fromisoformat(fn["times"]["changed"]).strftime(
        "%Y-%m-%dT%H:%M:%S.%f")) for fn in doc["file_names"])
    theirs = _istat_names(volume, doc["inode"].split("-")[0])
    assert len(theirs) == 66
    assert ours == theirs
    assert len({name for name, _ in ours}) == 66
