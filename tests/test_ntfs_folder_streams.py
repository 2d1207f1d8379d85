"""NTFS folders that carry a named ``$DATA`` stream, and files whose names spill into an
attribute list, listed and timelined as ``fls -r -p`` and ``fls -r -m /`` list them.

``fls`` prints a folder's stream twice: as ``dir:stream`` and under the folder's own ``.`` entry
as ``dir/.:stream`` (it hides ``.`` and ``..`` but for the streams of ``.``); ``ls -r --all``
left out the second. In the bodyfile the stream's mode shows the inode's type (``d/d...``),
while the listing shows ``d/r``; the bodyfile had ``d/r``. A file with many hard links keeps
some ``$FILE_NAME`` attributes in an extension record, and TSK gives two of them one id: the
timeline wrote its ``($FILE_NAME)`` row twice. (Which of the file's ``$FILE_NAME`` attributes
``fls`` 4.11 takes for that row, if any, follows the order TSK met them in; those rows are left
out of the line-by-line comparison.)
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections import Counter
from pathlib import Path

import pytest
from conftest import require_tool
from test_browse_parity import TSK_ZERO_FILETIME, _bitwitness


def _build(image: Path) -> None:
    subprocess.run(["truncate", "-s", "16M", str(image)], check=True)
    subprocess.run(["mkntfs", "-q", "-F", "-f", str(image)], check=True, capture_output=True)
    if os.geteuid() != 0 or not Path("/dev/fuse").exists():
        pytest.skip("needs root and /dev/fuse to write NTFS through ntfs-3g")
    with tempfile.TemporaryDirectory() as tmp:
        mount = subprocess.run(["ntfs-3g", "-o", "streams_interface=windows", str(image), tmp],
                               capture_output=True, check=False)
        if mount.returncode != 0:
            pytest.skip(f"ntfs-3g cannot mount: {mount.stderr.decode(errors='replace')}")
        m = Path(tmp)
        try:
            (m / "folder").mkdir()
            (m / "folder/inside.txt").write_bytes(b"inside\n")
            (m / "folder:folder-stream").write_bytes(b"a stream of a folder\n")
            (m / "linked").mkdir()
            target = m / "linked/original-with-a-rather-long-name.txt"
            target.write_bytes(b"many names\n" * 100)
            for i in range(12):
                os.link(target, m / f"linked/another-long-hard-link-name-number-{i:02}.txt")
        finally:
            subprocess.run(["umount", tmp], check=True)


def _without_zero_filetime(lines: list[str]) -> Counter[str]:
    return Counter(line.replace(TSK_ZERO_FILETIME, "0") for line in lines)


def test_folder_streams_and_attribute_lists_as_fls(tmp_path: Path) -> None:
    require_tool("mkntfs", "ntfs-3g", "fls", "istat")
    image = tmp_path / "ntfs.img"
    _build(image)
    fls = subprocess.run(["fls", "-r", "-p", str(image)], check=True, capture_output=True,
                         text=True).stdout.splitlines()
    assert any(line.endswith("folder/.:folder-stream") for line in fls), fls
    listing = _bitwitness("ls", "-r", "--all", image)
    assert listing.returncode == 0, listing.stderr
    assert Counter(listing.stdout.decode().splitlines()) == Counter(fls)

    body = subprocess.run(["fls", "-r", "-m", "/", str(image)], check=True,
                          capture_output=True, text=True).stdout.splitlines()
    timeline = _bitwitness("timeline", image)
    assert timeline.returncode == 0, timeline.stderr
    ours = timeline.stdout.decode().splitlines()
    stream_rows = [line for line in ours if ":folder-stream|" in line]
    assert len(stream_rows) == 2, stream_rows
    assert all("|d/d" in line for line in stream_rows), stream_rows
    assert len(ours) == len(set(ours))  # no row twice
    # the file whose names spill into an attribute list: one ($FILE_NAME) row per name; which
    # $FILE_NAME fls 4.11 takes (if any) depends on the order TSK met the attributes in, so
    # those rows are left out of the line-by-line comparison
    listed = subprocess.run(["istat", str(image), _inode(fls, "original-with")], check=True,
                            capture_output=True, text=True).stdout
    assert "$ATTRIBUTE_LIST" in listed
    spilled = [line for line in ours if "($FILE_NAME)" in line and "/linked/" in line]
    assert len(spilled) == 13  # one per name of that file, written once

    def others(lines: list[str]) -> Counter[str]:
        return _without_zero_filetime([line for line in lines if not (
            "($FILE_NAME)" in line and "/linked/" in line)])

    assert others(ours) == others(body)


def _inode(fls: list[str], fragment: str) -> str:
    line = next(line for line in fls if fragment in line)
    return line.split()[1].split("-")[0]
