"""An image GNU ddrescue rescued from a failing drive, verified with its mapfile beside it: the
mapfile records no hash, but every area ddrescue could not read, so ``verify`` and ``info`` list
those sectors as unreadable at acquisition (zero-filled), check the media size against it, and
an unfinished rescue (a mapfile still copying) makes the image incomplete.

The drive is a real failing block device (tests/faultydrive: a FUSE file behind a loop device
answering EIO for the mapped sectors); ddrescue writes the image and the mapfile itself.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import require_tool, run_bitwitness
from faultydrive.faultmap import FaultMap

BAD = ((10240, 8), (30000, 3))  #: (first sector, count) that answer EIO, as the drive's map


def _rescue(faulty_drive: Any, tmp_path: Path) -> tuple[Path, Path]:
    require_tool("ddrescue")
    drive = faulty_drive(FaultMap(bad=BAD), size=24 << 20)
    image, mapfile = tmp_path / "rescued.img", tmp_path / "rescued.map"
    subprocess.run(["ddrescue", "-d", "-r1", "-q", drive.device, image, mapfile], check=False,
                   capture_output=True, timeout=300)
    return image, mapfile


def _unread(mapfile: Path) -> list[tuple[int, int]]:
    """The areas the mapfile marks not rescued, as byte (position, size): what ddrescue says."""
    areas = []
    for line in mapfile.read_text().splitlines():
        m = re.match(r"^(0x[0-9A-Fa-f]+)\s+(0x[0-9A-Fa-f]+)\s+([?*/\-])\s*$", line)
        if m:
            areas.append((int(m.group(1), 16), int(m.group(2), 16)))
    return areas


def test_verify_lists_what_ddrescue_could_not_read(faulty_drive: Any, tmp_path: Path) -> None:
    image, mapfile = _rescue(faulty_drive, tmp_path)
    areas = _unread(mapfile)
    assert areas  # ddrescue met the bad sectors
    for pos, size in areas:  # and they are the drive's
        assert any(first * 512 <= pos and pos + size <= (first + count) * 512
                   for first, count in BAD)
    result = run_bitwitness("verify", image)
    listed = re.findall(r"unreadable at acquisition: sectors (\d+)-(\d+)", result.stdout)
    expected = [(pos // 512, (pos + size - 1) // 512) for pos, size in areas]
    assert sorted((int(a), int(b)) for a, b in listed) == sorted(expected), result.stdout
    info = run_bitwitness("info", "--json", image).json()
    assert info["error_ranges"]
    assert "ddrescue" in result.stdout
    assert result.exit_code == 1, result.stderr  # unverified: a mapfile records no hash


def test_an_unfinished_rescue_is_incomplete(faulty_drive: Any, tmp_path: Path) -> None:
    image, mapfile = _rescue(faulty_drive, tmp_path)
    text = mapfile.read_text()
    # the state ddrescue leaves when stopped while copying: current status '?', the last area
    # not tried
    cut = tmp_path / "cut"
    cut.mkdir()
    shutil.copy(image, cut / "rescued.img")
    lines = text.splitlines()
    status = next(i for i, line in enumerate(lines) if re.match(r"^0x[0-9A-Fa-f]+\s+\+", line))
    lines[status] = re.sub(r"\+", "?", lines[status], count=1)
    last = max(i for i, line in enumerate(lines) if re.match(r"^0x\S+\s+0x\S+\s+\+\s*$", line))
    pos, size, _ = lines[last].split()
    half = int(size, 16) // 2 // 512 * 512
    lines[last:last + 1] = [f"0x{int(pos, 16):08X}  0x{half:08X}  +",
                            f"0x{int(pos, 16) + half:08X}  0x{int(size, 16) - half:08X}  ?"]
    (cut / "rescued.map").write_text("\n".join(lines) + "\n")
    result = run_bitwitness("verify", cut / "rescued.img")
    assert "records the acquisition as interrupted" in result.stdout + result.stderr
    assert "ddrescue stopped while copying" in result.stdout + result.stderr
    assert result.exit_code != 0


def test_a_file_that_only_looks_like_a_mapfile_is_no_log(tmp_path: Path) -> None:
    image = tmp_path / "disk.img"
    image.write_bytes(os.urandom(4096))
    (tmp_path / "disk.map").write_text("# Mapfile. Created by GNU ddrescue version 1.27\n"
                                       "this line is not a block\n")
    result = run_bitwitness("verify", image)
    assert "disk.map: not a hash log, ignored" in result.stdout + result.stderr


def test_browsing_names_the_sectors_ddrescue_could_not_read(faulty_drive: Any,
                                                            tmp_path: Path) -> None:
    """An ext4 on the failing drive, one sector of a file's data bad: ddrescue's image holds
    zeros there, and ``cat`` of that file names the sector from the mapfile (exit 1); a file
    clear of it draws no doubt."""
    require_tool("ddrescue", "mkfs.ext4", "istat", "ifind")
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "hit.bin").write_bytes(os.urandom(64 * 1024))
    (tree / "clear.bin").write_bytes(os.urandom(8 * 1024))
    fs = tmp_path / "fs.img"
    with fs.open("wb") as out:
        out.truncate(8 << 20)
    subprocess.run(["mkfs.ext4", "-q", "-b", "4096", "-d", tree, fs], check=True)
    inode = subprocess.run(["ifind", "-n", "hit.bin", fs], capture_output=True, text=True,
                           check=True).stdout.strip()
    istat = subprocess.run(["istat", fs, inode], capture_output=True, text=True,
                           check=True).stdout
    block = int(istat.split("Direct Blocks:")[1].split()[0])
    bad = block * 8 + 3  # a sector inside the file's first block
    drive = faulty_drive(FaultMap(bad=((bad, 1),)), size=8 << 20, data=fs.read_bytes())
    image, mapfile = tmp_path / "rescued.img", tmp_path / "rescued.map"
    subprocess.run(["ddrescue", "-d", "-r1", "-q", drive.device, image, mapfile], check=False,
                   capture_output=True, timeout=300)
    assert _unread(mapfile) == [(bad * 512, 512)]
    hit = run_bitwitness("cat", image, "/hit.bin")
    assert hit.exit_code == 1
    assert f"sectors {bad}" in hit.stderr
    clear = run_bitwitness("cat", image, "/clear.bin")
    assert clear.exit_code == 0, clear.stderr


def test_decimal_positions_with_leading_zeros_are_read(tmp_path: Path) -> None:
    """A mapfile edited by hand (ddrescuelog and the manual allow decimal positions) may write
    '0512'; it reads as 512 (a fuzzer found Python's int(x, 0) refusing it)."""
    image = tmp_path / "disk.img"
    image.write_bytes(bytes(2048))
    (tmp_path / "disk.map").write_text(
        "# Mapfile. Created by GNU ddrescue version 1.27\n"
        "# current_pos  current_status  current_pass\n0000     +               1\n"
        "#      pos        size  status\n0000  0512  +\n0512  0512  -\n01024  1024  +\n")
    result = run_bitwitness("verify", image)
    assert "unreadable at acquisition: sectors 1-1 (1 sectors, zero-filled)" in result.stdout


@pytest.mark.parametrize(("log", "code"), [
    ("dc3dd 7.2.646 started at 2026-01-01 00:00:00 +0000\nsector size: {n} bytes\n", 2),
    ("# Mapfile. Created by GNU ddrescue version 1.27\n0x0 +\n0x0 {n} -\n", 2),
    # no bad-sector range of 5,000 digits: the list ends there, the rest of the log is read
    ("\nGUYMAGER ACQUISITION INFO FILE\nDuring acquisition, 1 bad sector has been encountered. "
     "The sector numbers are:\n   {n}\nState: Finished successfully\n", 1),
])
def test_a_number_too_long_for_any_log_is_one_line(log: str, code: int, tmp_path: Path) -> None:
    """A log named with --log that holds a 5,000-digit number: refused in one line (exit 2) or
    read without it, never Python's 4,300-digit conversion limit escaping as an internal
    error."""
    image = tmp_path / "disk.img"
    image.write_bytes(bytes(4096))
    (tmp_path / "hostile.log").write_text(log.format(n="9" * 5000))
    result = run_bitwitness("verify", image, "--log", tmp_path / "hostile.log")
    assert result.exit_code == code, result.stdout + result.stderr
    assert result.stderr.count("\n") <= 1
    assert "internal error" not in result.stderr
    assert "unreadable at acquisition" not in result.stdout
