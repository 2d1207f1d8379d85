"""Rescuing failing drives as GNU ddrescue does (issue 18.4), drives that vanish and stall
(18.5): real failing drives (tests/faultydrive), the command line, and independent checks: the
map read by ``ddrescuelog`` (GNU ddrescue's own map tool), the image against the drive's true
bytes, the partial image's hash against ``sha256sum``."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import require_tool, run_subprocess
from faultydrive.drive import MakeDrive
from faultydrive.faultmap import FaultMap, Slow, Transient, Vanish, clustered_bad

pytestmark = pytest.mark.root
MIB = 1 << 20


def ddrescuelog_bad_sectors(mapfile: Path) -> list[int]:
    """The map's bad sectors as GNU ddrescuelog lists them (512-byte blocks)."""
    out = subprocess.run(["ddrescuelog", "--list-blocks=-", "--block-size=512", str(mapfile)],
                         capture_output=True, text=True, check=True).stdout
    return [int(x) for x in out.split()]


def ddrescuelog_totals(mapfile: Path) -> dict[str, int]:
    out = subprocess.run(["ddrescuelog", "-t", str(mapfile)], capture_output=True, text=True,
                         check=True).stdout
    totals = {}
    for name in ("non-tried", "rescued", "non-trimmed", "non-scraped", "bad-sector"):
        line = next(x for x in out.splitlines() if x.strip().startswith(name + ":"))
        totals[name] = int(line.split("in")[1].split("area")[0])  # number of areas
    return totals


def test_rescue_secures_every_readable_sector_and_maps_the_bad_ones(
        faulty_drive: MakeDrive, tmp_path: Path) -> None:
    require_tool("ddrescuelog", "sha256sum")
    bad = clustered_bad(16384, 0.01)
    drive = faulty_drive(FaultMap(bad=bad), size=8 * MIB)
    res = run_subprocess("acquire", drive.device, "-o", tmp_path / "img", "--rescue",
                         "--retries", "1", "--json")
    assert res.exit_code == 1, res.stderr
    image = tmp_path / "img.raw"
    assert image.read_bytes() == drive.expected_image()
    expected = drive.faults.bad_sectors()
    assert ddrescuelog_bad_sectors(tmp_path / "img.map") == expected
    totals = ddrescuelog_totals(tmp_path / "img.map")
    assert (totals["non-tried"], totals["non-trimmed"], totals["non-scraped"]) == (0, 0, 0)
    doc = res.json()
    assert [(e["first_sector"], e["sector_count"]) for e in doc["read_errors"]] == list(bad)
    sha = subprocess.run(["sha256sum", str(image)], capture_output=True, text=True,
                         check=True).stdout.split()[0]
    assert doc["hashes"]["sha256"] == sha
    log = json.loads((tmp_path / "img.json").read_text())
    assert log["progress"]["rescue"]["phase"] == "finished"
    assert log["progress"]["rescue"]["bad_bytes"] == len(expected) * 512


class _Recorder:
    """A source that notes every read (offset, length) and passes it on."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.reads: list[tuple[int, int]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def read_direct(self, offset: int, length: int) -> bytes:
        self.reads.append((offset, length))
        return bytes(self.inner.read_direct(offset, length))


def test_the_good_data_is_read_before_the_bad_areas(faulty_drive: MakeDrive,
                                                     tmp_path: Path) -> None:
    """Phases in order in the progress line (copying with skips, then trimming, scraping,
    retrying); the whole readable drive is read before any single-sector read; a 1 MiB
    damaged zone costs the first pass only a few reads (growing skips)."""
    from bitwitness.acquire.engine import AcquisitionRequest, OutputFormat
    from bitwitness.acquire.rescue import rescue
    from bitwitness.acquire.source import open_source
    from bitwitness.progress import RecordingMediator

    zone = (4096, 1024)  # sectors 4096-5119: 512 KiB unreadable
    # 32 MiB: skips may grow to 1% of the drive (320 KiB)
    drive = faulty_drive(FaultMap(bad=(zone, (12000, 3))), size=32 * MIB)
    source = _Recorder(open_source(drive.device))
    mediator = RecordingMediator()
    result = rescue(AcquisitionRequest(source=source, output=tmp_path / "img",
                                       format=OutputFormat.RAW, hashes=("md5",), retries=1),
                    mediator)
    assert result.bad_sectors == 1024 + 3
    assert (tmp_path / "img.raw").read_bytes() == drive.expected_image()
    phases = [p.split(" (")[0] for p in mediator.tasks[0].phases]
    assert phases == ["copying", "copying", "trimming", "scraping", "retrying"]
    assert mediator.tasks[0].errors == 1024 + 3
    first_sector_read = next(i for i, (_, n) in enumerate(source.reads) if n == 512)
    before = source.reads[:first_sector_read]
    covered = sum(n for _, n in before)
    assert covered >= drive.size - 512 * 1024  # all but the damaged clusters were tried first
    start, end = zone[0] * 512, (zone[0] + zone[1]) * 512
    in_zone = [i for i, (off, _) in enumerate(before) if start <= off < end]
    past = next(i for i, (off, _) in enumerate(before) if off >= end)
    # growing skips: three failed reads of the zone (then skips of 64, 128, 256 KiB), then
    # the good data past it, and only then (second pass) the rest of the zone
    assert [before[i][0] // (64 << 10) for i in in_zone if i < past] == [32, 34, 37]
    assert max(in_zone) > past
    assert len(in_zone) == zone[1] * 512 // (64 << 10)  # each cluster read once in all


def test_short_writes_are_written_whole(faulty_drive: MakeDrive, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """``os.pwrite`` may take fewer bytes than given (a disk filling up, some network file
    systems); the image was then left with holes that the map called rescued. Here every
    call takes at most 3 KiB: the image is still the drive's, byte for byte."""
    from bitwitness.acquire.engine import AcquisitionRequest, OutputFormat
    from bitwitness.acquire.rescue import rescue
    from bitwitness.acquire.source import open_source
    from bitwitness.progress import RecordingMediator

    real = os.pwrite
    calls: list[int] = []

    def short(fd: int, data: Any, offset: int) -> int:
        calls.append(len(data))
        return real(fd, memoryview(data)[:3072], offset)

    drive = faulty_drive(FaultMap(bad=((2048, 8),)), size=4 * MIB)
    monkeypatch.setattr(os, "pwrite", short)
    result = rescue(AcquisitionRequest(source=open_source(drive.device), output=tmp_path / "img",
                                       format=OutputFormat.RAW, hashes=("md5",), retries=1),
                    RecordingMediator())
    monkeypatch.undo()
    assert result.bad_sectors == 8
    assert max(calls) > 3072  # writes were cut short
    assert (tmp_path / "img.raw").read_bytes() == drive.expected_image()


def test_a_killed_rescue_resumes_from_its_map(faulty_drive: MakeDrive, tmp_path: Path) -> None:
    """SIGKILL mid-rescue: whatever the map calls rescued is in the image; --resume finishes."""
    require_tool("ddrescuelog")
    # a stall early (so that a checkpoint after it records rescued data), a longer one later:
    # the kill lands after that checkpoint and before the rescue can end
    drive = faulty_drive(FaultMap(bad=((3000, 16),),
                                  slow=(Slow(1000, 1, 1.2), Slow(9000, 1, 3.0))), size=6 * MIB)
    base = tmp_path / "img"
    proc = subprocess.Popen([sys.executable, "-m", "bitwitness", "acquire", drive.device,
                             "-o", str(base), "--rescue"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    mapfile = tmp_path / "img.map"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if mapfile.exists() and ddrescuelog_totals(mapfile)["rescued"] and \
                "0x" in mapfile.read_text() and "+" in mapfile.read_text():
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert not (tmp_path / "img.raw").exists()
    partial = (tmp_path / "img.raw.partial").read_bytes()
    data = drive.data
    text = mapfile.read_text()
    rescued = [line.split() for line in text.splitlines()
               if line.startswith("0x") and line.split()[-1] == "+" and len(line.split()) == 3]
    assert rescued
    for pos, size, _ in rescued:
        a, n = int(pos, 16), int(size, 16)
        assert partial[a:a + n] == data[a:a + n]
    res = run_subprocess("acquire", drive.device, "-o", base, "--rescue", "--resume", "--json")
    assert res.exit_code == 1, res.stderr
    assert (tmp_path / "img.raw").read_bytes() == drive.expected_image()
    assert ddrescuelog_bad_sectors(mapfile) == list(range(3000, 3016))
    assert res.json()["resumed_from"] > 0


def test_a_later_run_retries_only_the_bad_sectors(faulty_drive: MakeDrive,
                                                  tmp_path: Path) -> None:
    drive = faulty_drive(FaultMap(transient=(Transient(5000, 4, 12),), bad=((7000, 2),),
                                  log_reads=True), size=4 * MIB)
    base = tmp_path / "img"
    res = run_subprocess("acquire", drive.device, "-o", base, "--rescue", "--retries", "0")
    assert res.exit_code == 1, res.stderr
    first = json.loads((tmp_path / "img.json").read_text())
    assert [(e["first_sector"], e["sector_count"]) for e in first["read_errors"]] == \
        [(5000, 4), (7000, 2)]
    seen = len(drive.reads())
    res = run_subprocess("acquire", drive.device, "-o", base, "--rescue", "--retry-bad",
                         "--retries", "15", "--json")
    assert res.exit_code == 1, res.stderr
    later = drive.reads()[seen:]
    assert later
    bad = {*range(5000, 5004), 7000, 7001}
    assert all(off // 512 in bad and size == 512 for off, size, _ in later), later[:5]
    doc = res.json()
    assert [(e["first_sector"], e["sector_count"]) for e in doc["read_errors"]] == [(7000, 2)]
    expected = bytearray(drive.data)
    expected[7000 * 512:7002 * 512] = bytes(1024)
    assert (tmp_path / "img.raw").read_bytes() == bytes(expected)
    check = subprocess.run(["sha256sum", "-c", "img.sha256"], cwd=tmp_path,
                           capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stdout


def _assert_gone(res: Any, log_path: Path, partial: Path) -> dict[str, Any]:
    assert res.exit_code == 1, res.stderr
    assert "gone" in res.stderr
    assert "--resume" in res.stderr
    log = json.loads(log_path.read_text())
    assert log["status"] == "failed"
    sha = subprocess.run(["sha256sum", str(partial)], capture_output=True, text=True,
                         check=True).stdout.split()[0]
    assert [o["hashes"]["sha256"] for o in log["outputs"] if o["path"] == str(partial)] == [sha]
    return log


def test_a_drive_that_vanishes_mid_rescue_is_resumed_when_back(faulty_drive: MakeDrive,
                                                               tmp_path: Path) -> None:
    require_tool("sha256sum", "ddrescuelog")
    drive = faulty_drive(FaultMap(bad=((100, 4),), vanish=Vanish(sector=5000)), size=4 * MIB)
    base = tmp_path / "img"
    res = run_subprocess("acquire", drive.device, "-o", base, "--rescue")
    partial = tmp_path / "img.raw.partial"
    log = _assert_gone(res, tmp_path / "img.json", partial)
    rescued = log["progress"]["rescue"]["finished_bytes"]
    assert 0 < rescued < drive.size
    assert ddrescuelog_totals(tmp_path / "img.map")["non-tried"] >= 1
    drive.come_back()
    res = run_subprocess("acquire", drive.device, "-o", base, "--rescue", "--resume")
    assert res.exit_code == 1, res.stderr  # its 4 bad sectors
    assert (tmp_path / "img.raw").read_bytes() == drive.expected_image()


def test_a_drive_that_vanishes_mid_acquisition_is_resumed_when_back(faulty_drive: MakeDrive,
                                                                    tmp_path: Path) -> None:
    """The plain acquisition: exit 1, what was read durable and hashed, --resume continues."""
    require_tool("sha256sum", "md5sum")
    drive = faulty_drive(FaultMap(vanish=Vanish(sector=6000)), size=6 * MIB)
    base = tmp_path / "img"
    res = run_subprocess("acquire", drive.device, "-o", base, "--format", "raw")
    log = _assert_gone(res, tmp_path / "img.json", tmp_path / "img.raw.partial")
    done = log["progress"]["media_bytes_done"]
    assert 0 < done <= 6000 * 512
    drive.come_back()
    res = run_subprocess("acquire", drive.device, "-o", base, "--resume", "--json")
    assert res.exit_code == 0, res.stderr
    md5 = subprocess.run(["md5sum", str(drive.backing)], capture_output=True, text=True,
                         check=True).stdout.split()[0]
    assert res.json()["hashes"]["md5"] == md5
    assert (tmp_path / "img.raw").read_bytes() == drive.data


def test_a_stalling_read_times_out_is_logged_and_counted_as_an_error(
        faulty_drive: MakeDrive, tmp_path: Path) -> None:
    drive = faulty_drive(FaultMap(slow=(Slow(3000, 1, 2.0),)), size=2 * MIB)
    res = run_subprocess("acquire", drive.device, "-o", tmp_path / "img", "--rescue",
                         "--retries", "0", "--read-timeout", "0.3", "--json")
    assert res.exit_code == 1, res.stderr
    doc = res.json()
    assert [(e["first_sector"], e["sector_count"]) for e in doc["read_errors"]] == [(3000, 1)]
    log = json.loads((tmp_path / "img.json").read_text())
    assert any("no answer within 0.3 s" in w for w in log["warnings"])
    assert log["progress"]["rescue"]["timed_out_reads"] >= 1
    expected = bytearray(drive.data)
    expected[3000 * 512:3001 * 512] = bytes(512)
    assert (tmp_path / "img.raw").read_bytes() == bytes(expected)


def test_a_rescue_is_never_resumed_as_a_plain_acquisition(faulty_drive: MakeDrive,
                                                          tmp_path: Path) -> None:
    """A rescue's image is filled out of order: resuming it as a prefix would be wrong."""
    drive = faulty_drive(FaultMap(vanish=Vanish(sector=3000)), size=2 * MIB)
    base = tmp_path / "img"
    assert run_subprocess("acquire", drive.device, "-o", base, "--rescue").exit_code == 1
    drive.come_back()
    res = run_subprocess("acquire", drive.device, "-o", base, "--resume")
    assert res.exit_code == 2
    assert "--rescue --resume" in res.stderr
    assert not (tmp_path / "img.raw").exists()


def test_a_stalling_read_in_a_plain_acquisition_times_out(faulty_drive: MakeDrive,
                                                          tmp_path: Path) -> None:
    """The plain acquisition with a read timeout: the stalled sector is abandoned, logged,
    retried down to itself and zero-filled; everything else is read."""
    from bitwitness.acquire.engine import AcquisitionRequest, OutputFormat, acquire
    from bitwitness.progress import RecordingMediator

    drive = faulty_drive(FaultMap(slow=(Slow(300, 1, 0.6),)), size=MIB)
    result = acquire(AcquisitionRequest(source=drive.device, output=tmp_path / "img",
                                        format=OutputFormat.RAW, hashes=("md5",), retries=0,
                                        block_size=64 << 10, read_timeout=0.15),
                     RecordingMediator())
    assert result.read_errors == ((300, 1),)
    log = json.loads((tmp_path / "img.json").read_text())
    assert any("no answer within 0.15 s" in w for w in log["warnings"])
    assert log["options"]["read_timeout"] == 0.15
    expected = bytearray(drive.data)
    expected[300 * 512:301 * 512] = bytes(512)
    assert (tmp_path / "img.raw").read_bytes() == bytes(expected)


def test_an_existing_map_is_not_overwritten(tmp_path: Path) -> None:
    from conftest import run_bitwitness

    src = tmp_path / "disk.bin"
    src.write_bytes(bytes(range(256)) * 64)
    (tmp_path / "img.map").write_text("an earlier map\n")
    res = run_bitwitness("acquire", src, "-o", tmp_path / "img", "--rescue")
    assert res.exit_code == 2
    assert (tmp_path / "img.map").read_text() == "an earlier map\n"
    assert not (tmp_path / "img.raw.partial").exists()
    os.utime(src, ns=(1_000_000_000, 2_000_000_000))
    res = run_bitwitness("acquire", src, "-o", tmp_path / "img", "--rescue", "--overwrite")
    assert res.exit_code == 0, res.stderr
    # rule 1: the evidence's times unchanged (its direct reads open it O_NOATIME too)
    assert (src.stat().st_atime_ns, src.stat().st_mtime_ns) == (1_000_000_000, 2_000_000_000)
    assert (tmp_path / "img.raw").read_bytes() == src.read_bytes()


def test_a_finished_rescue_tells_the_bytes_read_and_the_bytes_zero_filled(
        faulty_drive: MakeDrive, tmp_path: Path) -> None:
    """Unreadable sectors are never counted as read: the summary, the log and the progress say
    what the drive delivered (ddrescuelog's rescued blocks) and what is zeros (its bad ones)."""
    import re

    from bitwitness.acquire.engine import AcquisitionRequest, OutputFormat
    from bitwitness.acquire.rescue import rescue
    from bitwitness.progress import RecordingMediator

    require_tool("ddrescuelog")
    bad = ((1000, 8), (5000, 64), (9001, 3))
    drive = faulty_drive(FaultMap(bad=bad), size=6 * MIB)
    unreadable = 512 * len(drive.faults.bad_sectors())
    res = run_subprocess("acquire", drive.device, "-o", tmp_path / "img", "--rescue",
                         "--retries", "0")
    assert res.exit_code == 1, res.stderr
    rescued = 512 * len(subprocess.run(
        ["ddrescuelog", "--list-blocks=+", "--block-size=512", str(tmp_path / "img.map")],
        capture_output=True, text=True, check=True).stdout.split())
    assert rescued == drive.size - unreadable
    log = json.loads((tmp_path / "img.json").read_text())
    assert log["progress"]["bytes_read"] == rescued
    assert log["progress"]["bytes_zero_filled"] == unreadable
    assert log["progress"]["media_bytes_done"] == drive.size
    rate = rescued / log["duration_seconds"]
    assert abs(log["progress"]["bytes_per_second"] - rate) <= max(1, rate / 50)
    match = re.search(r"read: (\d+) bytes", res.stdout)
    assert match is not None, res.stdout
    assert int(match.group(1)) == rescued
    assert f"({unreadable} bytes), zero-filled" in res.stdout
    text = (tmp_path / "img.txt").read_text()
    assert re.search(rf"Bytes read in this run:\s+{rescued}\b", text), text
    assert re.search(rf"Unreadable, zero-filled:\s+{unreadable} bytes", text), text

    mediator = RecordingMediator()
    result = rescue(AcquisitionRequest(source=drive.device, output=tmp_path / "again",
                                       format=OutputFormat.RAW, hashes=("md5",), retries=0),
                    mediator)
    assert (result.bytes_read, result.bytes_zero_filled) == (rescued, unreadable)
    task = mediator.tasks[0]
    assert task.done == rescued  # the bar counts what was read ...
    assert task.finished
    assert not task.complete  # ... and does not jump to the media size


@pytest.mark.parametrize("signals", [(signal.SIGINT,), (signal.SIGTERM, signal.SIGTERM)],
                         ids=["sigint", "sigterm-twice"])
def test_ctrl_c_stops_a_rescue_as_every_job_stops(faulty_drive: MakeDrive, tmp_path: Path,
                                                  signals: tuple[int, ...]) -> None:
    """The one interruption model (the job runner): a real SIGINT finishes the read in hand,
    the log says interrupted with the bytes really read, exit 130, the map and the partial
    image stay; a second signal stops at once, logged the same way; --resume finishes the
    rescue (the image equals the drive's readable bytes)."""
    import re

    require_tool("ddrescuelog")
    # a slow zone from 2 MiB to 3 MiB: each 64 KiB read there takes 0.4 s
    drive = faulty_drive(FaultMap(bad=((2000, 8),), slow=(Slow(4096, 2048, 0.4),)),
                         size=6 * MIB)
    base = tmp_path / "img"
    proc = subprocess.Popen([sys.executable, "-m", "bitwitness", "acquire", drive.device,
                             "-o", str(base), "--rescue"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    log_path = tmp_path / "img.json"
    deadline = time.monotonic() + 90
    while True:  # a checkpoint inside the slow zone
        if log_path.exists():
            with contextlib.suppress(ValueError, KeyError, TypeError):
                if json.loads(log_path.read_text())["progress"]["rescue"][
                        "finished_bytes"] > 2 * MIB:
                    break
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            pytest.fail("the rescue never recorded a checkpoint inside the slow zone")
        time.sleep(0.02)
    for signum in signals:
        os.kill(proc.pid, signum)
        time.sleep(0.05)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err
    log = json.loads(log_path.read_text())
    assert log["status"] == "interrupted"
    assert "interrupted" in log["error"]
    finished = log["progress"]["rescue"]["finished_bytes"]
    assert 0 < finished < drive.size
    assert log["progress"]["bytes_read"] == finished  # a first run: all it rescued, it read
    match = re.search(r"read: (\d+) bytes", out)
    assert match is not None, out
    assert int(match.group(1)) == finished
    assert not (tmp_path / "img.raw").exists()
    rescued = 512 * len(subprocess.run(
        ["ddrescuelog", "--list-blocks=+", "--block-size=512", str(tmp_path / "img.map")],
        capture_output=True, text=True, check=True).stdout.split())
    assert rescued == finished
    res = run_subprocess("acquire", drive.device, "-o", base, "--rescue", "--resume", "--json")
    assert res.exit_code == 1, res.stderr  # its 8 bad sectors
    doc = res.json()
    assert doc["resumed_from"] == finished
    assert doc["bytes_read"] == drive.size - finished - 8 * 512
    assert (tmp_path / "img.raw").read_bytes() == drive.expected_image()
