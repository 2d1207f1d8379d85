"""Injected read errors: retried, zero-filled, listed in E01 error2 (as ewfinfo shows it), in the
logs and on the progress line, and they make the exit code 1."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import make_disk_bytes, pyewf_media, require_tool, run_bitwitness

from bitwitness.acquire import engine
from bitwitness.acquire.engine import AcquisitionRequest, OutputFormat, acquire
from bitwitness.acquire.faults import FaultySource
from bitwitness.acquire.source import open_source
from bitwitness.progress import RecordingMediator

SECTOR = 512


def _inject(monkeypatch: pytest.MonkeyPatch, **faults: Any) -> None:
    """Make the engine open its source through a FaultySource."""

    def faulty_open(source: Any, **kwargs: Any) -> FaultySource:
        return FaultySource(open_source(source, **kwargs), **faults)

    monkeypatch.setattr(engine, "open_source", faulty_open)


def _ewfinfo_errors(path: Path) -> list[tuple[int, int]]:
    """(first, count) ranges as ewfinfo prints them under 'Read errors during acquiry'."""
    out = subprocess.run(["ewfinfo", str(path)], capture_output=True, text=True,
                         check=True).stdout
    section = out.split("Read errors during acquiry", 1)
    if len(section) == 1:
        return []
    ranges = []
    for first, last in re.findall(r"at sector\(s\): (\d+) - (\d+)", section[1]):
        ranges.append((int(first), int(last) - int(first) + 1))
    return ranges


def test_permanent_errors_reach_error2_and_the_logs(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("pyewf")
    require_tool("ewfinfo", "ewfverify")
    data = make_disk_bytes(1024 * 1024, seed=9)
    src = tmp_path / "disk.bin"
    src.write_bytes(data)
    bad = {100, 101, 102, 700, 2047}
    _inject(monkeypatch, permanent=bad)
    res = run_bitwitness("acquire", src, "-o", tmp_path / "img", "--json", "--retries", "1")
    assert res.exit_code == 1, res.stderr
    doc = res.json()
    assert doc["status"] == "completed-with-errors"
    assert doc["bad_sectors"] == 5
    expected = [(100, 3), (700, 1), (2047, 1)]
    assert _ewfinfo_errors(tmp_path / "img.E01") == expected
    log = json.loads((tmp_path / "img.json").read_text())
    assert [(e["first_sector"], e["sector_count"]) for e in log["read_errors"]] == expected
    assert log["status"] == "completed-with-errors"
    text = (tmp_path / "img.txt").read_text()
    assert "5 unreadable sector(s)" in text
    assert "sectors 100-102" in text
    # the image holds zeros exactly there and the source's bytes everywhere else
    media = pyewf_media(tmp_path / "img.E01")
    want = bytearray(data)
    for sector in bad:
        want[sector * SECTOR:(sector + 1) * SECTOR] = bytes(SECTOR)
    assert media == bytes(want)
    check = subprocess.run(["ewfverify", "-q", str(tmp_path / "img.E01")], capture_output=True,
                           text=True, check=False)
    assert check.returncode == 0, check.stdout  # the stored hash is of what the image holds


def test_raw_with_errors_counts_them_live(tmp_path: Path) -> None:
    data = make_disk_bytes(512 * 1024, seed=10)
    src = tmp_path / "disk.bin"
    src.write_bytes(data)
    source = FaultySource(open_source(src), permanent={3, 4, 900})
    mediator = RecordingMediator()
    result = acquire(AcquisitionRequest(source=source, output=tmp_path / "img",
                                        format=OutputFormat.RAW, hashes=("md5",)), mediator)
    source.close()
    assert result.status.value == "completed-with-errors"
    assert int(result.exit_code) == 1
    assert result.read_errors == ((3, 2), (900, 1))
    assert mediator.tasks[0].errors == 3
    image = (tmp_path / "img.raw").read_bytes()
    assert image[3 * SECTOR:5 * SECTOR] == bytes(2 * SECTOR)
    assert image[:3 * SECTOR] == data[:3 * SECTOR]
    assert image[5 * SECTOR:900 * SECTOR] == data[5 * SECTOR:900 * SECTOR]


def test_transient_errors_are_recovered_by_retries(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    require_tool("md5sum")
    data = make_disk_bytes(256 * 1024, seed=11)
    src = tmp_path / "disk.bin"
    src.write_bytes(data)
    _inject(monkeypatch, transient={10: 2, 300: 1})
    res = run_bitwitness("acquire", src, "-o", tmp_path / "img", "--format", "raw", "--json")
    assert res.exit_code == 0, res.stderr
    md5 = subprocess.run(["md5sum", str(src)], capture_output=True, text=True,
                         check=True).stdout.split()[0]
    assert res.json()["hashes"]["md5"] == md5
    assert res.json()["read_errors"] == []


def test_stop_inside_a_bad_area_is_prompt_and_resumable(tmp_path: Path) -> None:
    """A dying drive can take seconds per read: Cancel must not wait for a whole block of
    single-sector retries. The interrupted block is dropped whole and re-read on resume."""
    import threading

    data = make_disk_bytes(2 * 1024 * 1024, seed=12)
    src = tmp_path / "disk.bin"
    src.write_bytes(data)
    bad = set(range(1100, 1900))  # a long bad area inside the second 512 KiB block
    stop = threading.Event()
    source = FaultySource(open_source(src), permanent=bad,
                          before_read=lambda offset, length: stop.set()
                          if offset >= 1110 * SECTOR else None)
    result = acquire(AcquisitionRequest(source=source, output=tmp_path / "img",
                                        format=OutputFormat.RAW, hashes=("md5",), retries=3,
                                        block_size=512 * 1024, stop=stop), RecordingMediator())
    source.close()
    assert result.status.value == "interrupted"
    # far fewer reads than narrowing the whole block (about 4 per bad sector) would need
    assert source.reads < 200  # instead of over 3200
    log = json.loads((tmp_path / "img.json").read_text())
    assert log["progress"]["media_bytes_done"] == 512 * 1024  # ends before the dropped block
    assert log["read_errors"] == []

    again = FaultySource(open_source(src), permanent=bad)
    resumed = acquire(AcquisitionRequest(source=again, output=tmp_path / "img",
                                         format=OutputFormat.RAW, hashes=("md5",), retries=0,
                                         resume=True), RecordingMediator())
    again.close()
    assert resumed.status.value == "completed-with-errors"
    assert resumed.read_errors == ((1100, 800),)
    want = bytearray(data)
    want[1100 * SECTOR:1900 * SECTOR] = bytes(800 * SECTOR)
    assert (tmp_path / "img.raw").read_bytes() == bytes(want)
