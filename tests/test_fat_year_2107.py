"""A FAT date in 2107 (the last year the 7-bit field holds) is shown as recorded: TSK's 32-bit
seconds end in 2106 and it gives no time at all (istat ``0000-00-00``), which ``stat``, ``ls -l``
and ``timeline`` passed on as "no time recorded". mtools writes the entry and ``mdir`` reads it
back as the reference."""

from __future__ import annotations

import os
import struct
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import fsimages
import pytest
from conftest import require_tool, run_bitwitness


def test_a_2107_date_is_shown_as_recorded(tmp_path: Path) -> None:
    require_tool("mkfs.fat", "mcopy", "mdir")
    image = tmp_path / "fat.img"
    with image.open("wb") as fh:
        fh.truncate(32 << 20)
    subprocess.run(["mkfs.fat", "-F", "16", image], check=True, capture_output=True)
    env = {**os.environ, "MTOOLS_SKIP_CHECK": "1", "TZ": "UTC"}
    for name, when in (("future.txt", "2107-12-31 23:59:58"), ("now.txt", "2024-05-06 07:08:10")):
        source = tmp_path / name
        source.write_bytes(b"dated\n")
        subprocess.run(["touch", "-d", when, source], check=True, env=env)
        subprocess.run(["mcopy", "-m", "-i", image, source, f"::{name.upper()}"], check=True,
                       env=env)
    listed = subprocess.run(["mdir", "-i", image, "::"], check=True, capture_output=True,
                            text=True, env=env).stdout
    assert "2107-12-31  23:59" in listed
    doc = run_bitwitness("stat", image, "/FUTURE.TXT", "--json").json()
    assert datetime.fromisoformat(doc["modified"]) == datetime(2107, 12, 31, 23, 59, 58,
                                                              tzinfo=UTC)
    assert datetime.fromisoformat(doc["accessed"]) == datetime(2107, 12, 31, tzinfo=UTC)
    assert "m=2107-12-31T23:59:58Z" in run_bitwitness("ls", "-l", image).stdout
    rows = {r.split("|")[1]: r.split("|") for r in run_bitwitness("timeline", image)
            .stdout.splitlines()}
    assert int(rows["/FUTURE.TXT"][8]) == int(datetime(2107, 12, 31, 23, 59, 58,
                                                       tzinfo=UTC).timestamp())
    now = run_bitwitness("stat", image, "/NOW.TXT", "--json").json()
    assert now["modified"].startswith("2024-05-06T07:08:10")  # TSK's own times stay


def test_a_2107_folder_and_the_creation_hundredths(tmp_path: Path) -> None:
    """A folder's 2107 dates: ``ls -l`` showed them, ``stat`` none (the raw entry was matched
    to files only). The creation time's byte 13 (tens of milliseconds, 0-199) counts in a
    time read from the raw entry, as TSK counts it in the times it gives: 23:59:58 and 199
    is 23:59:59.99."""
    require_tool("mkfs.fat", "mmd", "mdir")
    image = tmp_path / "fat.img"
    with image.open("wb") as fh:
        fh.truncate(16 << 20)
    subprocess.run(["mkfs.fat", "-F", "16", image], check=True, capture_output=True)
    env = {**os.environ, "MTOOLS_SKIP_CHECK": "1"}
    subprocess.run(["mmd", "-i", image, "::D2107"], check=True, env=env)
    data = bytearray(image.read_bytes())
    at = data.find(b"D2107      ")
    time, date = (23 << 11) | (59 << 5) | 29, (127 << 9) | (12 << 5) | 31  # 2107-12-31 23:59:58
    data[at + 13] = 199
    data[at + 14:at + 20] = time.to_bytes(2, "little") + date.to_bytes(2, "little") * 2
    data[at + 22:at + 26] = time.to_bytes(2, "little") + date.to_bytes(2, "little")
    image.write_bytes(bytes(data))
    listed = subprocess.run(["mdir", "-i", image, "::"], check=True, capture_output=True,
                            text=True, env=env).stdout
    assert "2107-12-31  23:59" in listed
    doc = run_bitwitness("stat", image, "/D2107", "--json").json()
    assert datetime.fromisoformat(doc["modified"]) == datetime(2107, 12, 31, 23, 59, 58,
                                                              tzinfo=UTC)
    assert datetime.fromisoformat(doc["born"]) == datetime(2107, 12, 31, 23, 59, 59, 990000,
                                                          tzinfo=UTC)


def test_an_exfat_2107_date_is_shown_as_recorded(tmp_path: Path) -> None:
    """exFAT's timestamps hold years to 2107 too, and TSK gave none past 2106 (``ls -l``
    ``m=-``, empty manifest and timeline times). The file entry's timestamp is read instead
    (a time TSK does give stays TSK's). exfat-fuse writes the file; its timestamps are then
    set in the entry (exfat-fuse itself counts 2100 as a leap year, a day off after it)."""
    try:
        with fsimages.fresh_exfat(tmp_path / "x.img", 16 << 20, tmp_path / "m") as mounted:
            (mounted / "late.txt").write_bytes(b"late\n")
            (mounted / "now.txt").write_bytes(b"now\n")
    except fsimages.Unavailable as exc:
        pytest.skip(str(exc))
    image = tmp_path / "x.img"
    data = bytearray(image.read_bytes())
    # the file entry (0x85) whose name entry follows two entries on: "late.txt" in UTF-16
    name = "late.txt".encode("utf-16-le")
    at = data.find(name) - 2 - 64
    assert data[at] == 0x85
    date, time = (127 << 9) | (12 << 5) | 31, (23 << 11) | (59 << 5) | 29
    stamp = struct.pack("<I", date << 16 | time)
    data[at + 8:at + 20] = stamp * 3
    data[at + 20:at + 25] = bytes([150, 0, 0x80, 0x80, 0x80])  # +1.5 s created; offsets UTC
    fsimages.exfat_set_checksum(data, at)
    image.write_bytes(bytes(data))
    doc = run_bitwitness("stat", image, "/late.txt", "--json").json()
    want = datetime(2107, 12, 31, 23, 59, 58, tzinfo=UTC)
    assert datetime.fromisoformat(doc["modified"]) == want
    assert datetime.fromisoformat(doc["accessed"]) == want
    assert datetime.fromisoformat(doc["born"]) == want.replace(second=59, microsecond=500000)
    now = run_bitwitness("stat", image, "/now.txt", "--json").json()
    assert now["modified"] is not None  # TSK's time stays
    assert now["modified"].startswith("20")
