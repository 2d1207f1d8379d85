"""FAT times carry no zone: what is shown is the wall clock of the machine that wrote them,
and every output that shows them says so (``times_note``), where ext's are UTC and say nothing.

The FAT volume is written by ``mcopy -m`` running in the Asia/Tokyo zone (UTC+9) for a file
whose modification time is a known instant: FAT then holds Tokyo's wall clock of that instant,
and so does ``stat``; the note says those times are printed as if UTC. The timeline says so on
stderr and writes them without an offset in its CSV (ISO 8601's local time), where ext's carry
``+00:00``; ``mactime`` reads the bodyfile's seconds as the same wall clock.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from conftest import require_tool, run_bitwitness

INSTANT = 1_591_012_800  # 2020-06-01 12:00:00 UTC


@pytest.fixture(scope="module")
def fat(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_tool("mkfs.fat", "mcopy")
    work = tmp_path_factory.mktemp("fat-times")
    source = work / "note.txt"
    source.write_bytes(b"written in Tokyo\n")
    os.utime(source, (INSTANT, INSTANT))
    image = work / "fat.img"
    with image.open("wb") as out:
        out.truncate(20 << 20)
    subprocess.run(["mkfs.fat", "-F", "16", image], check=True, capture_output=True)
    subprocess.run(["mcopy", "-m", "-i", image, source, "::/"], check=True,
                   env={**os.environ, "TZ": "Asia/Tokyo"})
    return image


def test_fat_times_are_the_writers_wall_clock_and_say_so(fat: Path, tmp_path: Path) -> None:
    tokyo = datetime.fromtimestamp(INSTANT, ZoneInfo("Asia/Tokyo")).replace(tzinfo=None)
    stat = run_bitwitness("stat", "--json", fat, "/note.txt").json()
    shown = datetime.fromisoformat(stat["modified"].replace("Z", "+00:00"))
    assert shown.replace(tzinfo=None) == tokyo  # the wall clock, not the instant
    assert shown != datetime.fromtimestamp(INSTANT, UTC)
    assert "no zone" in stat["times_note"]
    text = run_bitwitness("stat", fat, "/note.txt").stdout
    assert any(line.startswith("times:") and "no zone" in line for line in text.splitlines())
    listed = run_bitwitness("ls", "--json", fat).json()
    assert listed["times_note"] == stat["times_note"]
    out = tmp_path / "out"
    assert run_bitwitness("export", fat, "/", "--to", out).exit_code == 0
    assert json.loads((out / "manifest.json").read_text())["times_note"] == stat["times_note"]


def test_timeline_writes_fat_times_without_a_zone_and_says_so(fat: Path) -> None:
    require_tool("mactime")
    tokyo = datetime.fromtimestamp(INSTANT, ZoneInfo("Asia/Tokyo")).replace(tzinfo=None)
    result = run_bitwitness("timeline", fat, "--format", "csv")
    assert result.exit_code == 0, result.stderr
    warnings = result.stderr.strip().splitlines()
    assert len(warnings) == 1
    assert "no zone" in warnings[0]
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    times = {row["time"] for row in rows if row["path"] == "/note.txt" and "m" in row["macb"]}
    assert times == {tokyo.isoformat()}  # no offset: not claimed as UTC
    body = run_bitwitness("timeline", fat)
    assert "no zone" in body.stderr
    mactime = subprocess.run(["mactime", "-b", "-", "-z", "UTC", "-d", "-y"], input=body.stdout,
                             capture_output=True, text=True, check=True).stdout
    assert any(tokyo.isoformat() in line and "/note.txt" in line and "m" in line.split(",")[2]
               for line in mactime.splitlines())


def test_utc_file_systems_carry_no_note(tmp_path: Path) -> None:
    require_tool("mkfs.ext4")
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "a.txt").write_bytes(b"a\n")
    image = tmp_path / "ext4.img"
    with image.open("wb") as out:
        out.truncate(8 << 20)
    subprocess.run(["mkfs.ext4", "-q", "-d", tree, image], check=True)
    stat = run_bitwitness("stat", "--json", image, "/a.txt").json()
    assert stat["times_note"] is None
    assert not any(line.startswith("times:")
                   for line in run_bitwitness("stat", image, "/a.txt").stdout.splitlines())
    timeline = run_bitwitness("timeline", image, "--format", "csv")
    assert timeline.stderr == ""
    rows = list(csv.DictReader(io.StringIO(timeline.stdout)))
    assert rows
    assert all(row["time"].endswith("+00:00") for row in rows)
