"""History is never rewritten: every run of an acquisition stays in its log, in order.

A file is acquired, stopped part way (the engine's own stop, as the TUI's Cancel does), then
resumed from the command line. The log must keep the first run (its start, its interruption and
reason, the bytes it secured, host and versions) before the resumed one; the text log and the
report show both. The finished image is checked against md5sum of the source.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from conftest import make_disk_bytes, run_acquire, run_bitwitness

from bitwitness.acquire.engine import OutputFormat


def test_resume_appends_a_run_and_keeps_the_first(tmp_path: Path) -> None:
    source = tmp_path / "disk.bin"
    source.write_bytes(make_disk_bytes(8 << 20))
    base = tmp_path / "img"
    first = run_acquire(source, base, OutputFormat.RAW, stop_at=3 << 20)
    assert first.status.value == "interrupted"
    log = tmp_path / "img.json"
    before = json.loads(log.read_text())
    assert [r["status"] for r in before["runs"]] == ["interrupted"]
    resumed = run_bitwitness("acquire", source, "-o", base, "--format", "raw", "--resume")
    assert resumed.exit_code == 0, resumed.stderr
    doc = json.loads(log.read_text())
    runs = doc["runs"]
    assert [r["status"] for r in runs] == ["interrupted", "completed"]
    assert runs[0] == before["runs"][0]  # the first run, exactly as it was recorded
    assert runs[0]["reason"] == "interrupted by the user or the system"
    assert 0 < runs[0]["bytes_secured"] < 8 << 20
    assert runs[1]["resumed_from"] == runs[0]["bytes_secured"]
    assert runs[1]["bytes_secured"] == 8 << 20
    assert runs[0]["started"] < runs[0]["ended"] <= runs[1]["started"] < runs[1]["ended"]
    for run in runs:
        assert run["host"]["hostname"]
        assert run["tool"]["name"] == "BitWitness"
        assert "libraries" in run["tool"]
    assert doc["started"] == runs[0]["started"]  # the acquisition began with the first run
    text = (tmp_path / "img.txt").read_text()
    assert "Run 1" in text
    assert "Run 2" in text
    assert "interrupted by the user or the system" in text
    md5 = subprocess.run(["md5sum", str(source)], capture_output=True, text=True,
                         check=True).stdout.split()[0]
    assert doc["media"]["hashes"]["md5"] == md5


def test_the_report_shows_every_run(tmp_path: Path) -> None:
    source = tmp_path / "disk.bin"
    source.write_bytes(make_disk_bytes(8 << 20))
    root = tmp_path / "case"
    assert run_bitwitness("case", "new", root, "--set", "case_number=H-1",
                          "--set", "examiner=Ann Example").exit_code == 0
    from bitwitness.acquire.engine import CaseTarget

    first = run_acquire(source, None, OutputFormat.E01, stop_at=3 << 20,
                        case=CaseTarget(root, "E1"))
    assert first.status.value == "interrupted"
    resumed = run_bitwitness("acquire", source, "--case", root, "--evidence", "E1", "--resume")
    assert resumed.exit_code == 0, resumed.stderr
    out = tmp_path / "r.json"
    assert run_bitwitness("report", root, "--format", "json", "-o", out).exit_code == 0
    acq = json.loads(out.read_text())["evidence"][0]["acquisition"]
    assert [r["status"] for r in acq["runs"]] == ["interrupted", "completed"]
    assert acq["runs"][0]["reason"] == "interrupted by the user or the system"
    pdf = tmp_path / "r.pdf"
    assert run_bitwitness("report", root, "-o", pdf).exit_code == 0
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True,
                          text=True, check=True).stdout
    assert "Acquisition history" in text
    assert "Run 1" in text
    assert "Run 2" in text


def test_a_resume_stopped_before_it_continued_is_still_recorded_as_a_resume(
        tmp_path: Path) -> None:
    """Stopped while the kept prefix is re-hashed: the run says where it took over, and the
    next resume finishes an image md5sum agrees with."""
    import threading

    from bitwitness.acquire.engine import AcquisitionRequest, acquire
    from bitwitness.acquire.source import open_source
    from bitwitness.progress import RecordingMediator

    source = tmp_path / "disk.bin"
    source.write_bytes(make_disk_bytes(8 << 20))
    base = tmp_path / "img"
    first = run_acquire(source, base, OutputFormat.RAW, stop_at=3 << 20)
    assert first.status.value == "interrupted"
    stop = threading.Event()
    stop.set()  # as a Ctrl-C during the re-hash of what the first run kept
    src = open_source(source)
    try:
        second = acquire(AcquisitionRequest(source=src, output=base, format=OutputFormat.RAW,
                                            hashes=("md5",), resume=True, stop=stop),
                         RecordingMediator())
    finally:
        src.close()
    assert second.status.value == "interrupted"
    runs = json.loads((tmp_path / "img.json").read_text())["runs"]
    assert [r["status"] for r in runs] == ["interrupted", "interrupted"]
    assert runs[1]["resumed_from"] == runs[0]["bytes_secured"] > 0
    assert runs[1]["bytes_secured"] == runs[0]["bytes_secured"]
    done = run_bitwitness("acquire", source, "-o", base, "--format", "raw", "--resume")
    assert done.exit_code == 0, done.stderr
    runs = json.loads((tmp_path / "img.json").read_text())["runs"]
    assert [r["status"] for r in runs] == ["interrupted", "interrupted", "completed"]
    text = (tmp_path / "img.txt").read_text()
    assert "Run 3" in text
    md5 = subprocess.run(["md5sum", str(source), str(tmp_path / "img.raw")], capture_output=True,
                         text=True, check=True).stdout.split()
    assert md5[0] == md5[2]
