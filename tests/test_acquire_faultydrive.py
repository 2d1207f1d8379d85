"""Acquiring real failing drives (issue 18): a loop device over a FUSE file that fails in the
kernel as the fault map says (tests/faultydrive), acquired through the command line and checked
against ``dd iflag=direct`` (coreutils) reading the same device sector by sector."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from conftest import require_tool, run_subprocess
from faultydrive.drive import MakeDrive
from faultydrive.faultmap import FaultMap

pytestmark = pytest.mark.root

#: The issue's example device: EIO on sectors 10240-10247 and on 40960, nowhere else.
EXAMPLE = FaultMap(bad=((10240, 8), (40960, 1)))


def dd_direct(device: str, out: Path, first: int, count: int) -> bytes:
    """Sectors ``first`` to ``first + count - 1`` as ``dd iflag=direct`` reads them one at a
    time, unreadable ones zero-filled (``conv=noerror,sync``): the best any tool can secure."""
    subprocess.run(["dd", f"if={device}", f"of={out}", "bs=512", f"skip={first}",
                    f"count={count}", "iflag=direct", "conv=noerror,sync", "status=none"],
                   capture_output=True, check=False)
    return out.read_bytes()


def test_only_the_sectors_the_drive_cannot_read_are_lost(faulty_drive: MakeDrive,
                                                          tmp_path: Path) -> None:
    require_tool("dd")
    drive = faulty_drive(EXAMPLE, size=24 << 20)
    res = run_subprocess("acquire", drive.device, "-o", tmp_path / "img", "--format", "raw",
                         "--json")
    assert res.exit_code == 1, res.stderr
    doc = res.json()
    assert [(e["first_sector"], e["sector_count"]) for e in doc["read_errors"]] == \
        [(10240, 8), (40960, 1)]
    assert doc["bad_sectors"] == 9
    image = (tmp_path / "img.raw").read_bytes()
    assert len(image) == drive.size
    for first, count in ((10240 - 256, 8 + 512), (40960 - 256, 1 + 512)):  # around each area
        reference = dd_direct(drive.device, tmp_path / "dd.raw", first, count)
        assert len(reference) == count * 512
        assert image[first * 512:(first + count) * 512] == reference
    assert image == drive.expected_image()  # and the rest is the drive's true bytes
    log = json.loads((tmp_path / "img.json").read_text())
    assert [(e["first_sector"], e["sector_count"]) for e in log["read_errors"]] == \
        [(10240, 8), (40960, 1)]


def test_direct_reads_fall_back_where_the_source_cannot(tmp_path: Path) -> None:
    """A file whose size ends mid-sector: the last partial sector cannot be read with
    O_DIRECT; read_direct falls back to the ordinary read and returns the same bytes."""
    from bitwitness.acquire.source import open_source

    data = bytes(range(256)) * 9  # 2304 bytes: 4.5 sectors
    path = tmp_path / "odd.bin"
    path.write_bytes(data)
    with open_source(path) as src:
        assert src.read_direct(0, 2048) == data[:2048]
        assert src.read_direct(2048, 256) == data[2048:]
        assert src.read_direct(512, 1024) == data[512:1536]


def test_after_ctrl_c_the_summary_and_log_tell_what_was_read(faulty_drive: MakeDrive,
                                                              tmp_path: Path) -> None:
    """Issue 18.7: a real SIGINT to the command line while the drive stalls in a slow zone.
    The summary and the log give the bytes really read (the .partial file's size, checked with
    stat) and the speed from them, never the media size."""
    import os
    import re
    import signal
    import sys
    import time

    from faultydrive.faultmap import Slow

    drive = faulty_drive(FaultMap(slow=(Slow(8192, 1, 2.0),)), size=16 << 20)
    base = tmp_path / "img"
    proc = subprocess.Popen([sys.executable, "-m", "bitwitness", "acquire", drive.device,
                             "-o", base, "--format", "raw", "--hash", "md5"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not (tmp_path / "img.json").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.8)  # into the slow zone at 4 MiB
    os.kill(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    log = json.loads((tmp_path / "img.json").read_text())
    assert log["status"] == "interrupted"
    done = log["progress"]["media_bytes_done"]
    partial = tmp_path / "img.raw.partial"
    assert partial.stat().st_size == done < drive.size
    assert log["progress"]["bytes_read"] == done
    expected_rate = done / log["duration_seconds"]
    assert abs(log["progress"]["bytes_per_second"] - expected_rate) <= max(1, expected_rate / 50)
    match = re.search(r"read: (\d+) bytes", out)
    assert match is not None, out
    assert int(match.group(1)) == done
    assert f"0-{done - 1} only" in out
    assert partial.read_bytes() == drive.data[:done]


def test_a_stopped_progress_bar_keeps_the_bytes_done() -> None:
    """The bar of a stopped task shows what was done; only a complete one jumps to its end."""
    from rich.progress import Progress

    from bitwitness.cli.progress import _RichTask

    progress = Progress(disable=True)
    stopped = _RichTask(progress, progress.add_task("a", total=1000, errors="", phase=""))
    stopped.advance(400)
    stopped.finish(complete=False)
    done = _RichTask(progress, progress.add_task("b", total=1000, errors="", phase=""))
    done.advance(1000)
    done.finish()
    assert [t.completed for t in progress.tasks] == [400, 1000]


def test_unreadable_sectors_are_not_counted_as_read(faulty_drive: MakeDrive,
                                                    tmp_path: Path) -> None:
    """A plain acquisition: the summary, the log and the progress count what the drive
    delivered; the sectors dd cannot read either (``iflag=direct``) are counted apart as
    zero-filled, and the two add up to the media size."""
    import re

    from bitwitness.acquire.engine import AcquisitionRequest, OutputFormat, acquire
    from bitwitness.progress import RecordingMediator

    require_tool("dd")
    drive = faulty_drive(FaultMap(bad=((3000, 8), (7001, 1))), size=8 << 20)
    unreadable = [s for s in (*range(2990, 3010), *range(6995, 7005))
                  if dd_direct(drive.device, tmp_path / "dd.raw", s, 1) == bytes(512)
                  and drive.data[s * 512:(s + 1) * 512] != bytes(512)]
    assert unreadable == [*range(3000, 3008), 7001]
    zeros = 512 * len(unreadable)
    res = run_subprocess("acquire", drive.device, "-o", tmp_path / "img", "--format", "raw")
    assert res.exit_code == 1, res.stderr
    log = json.loads((tmp_path / "img.json").read_text())
    assert log["progress"]["bytes_read"] == drive.size - zeros
    assert log["progress"]["bytes_zero_filled"] == zeros
    match = re.search(r"read: (\d+) bytes", res.stdout)
    assert match is not None, res.stdout
    assert int(match.group(1)) == drive.size - zeros
    assert f"9 unreadable sector(s) ({zeros} bytes), zero-filled" in res.stdout
    mediator = RecordingMediator()
    result = acquire(AcquisitionRequest(source=drive.device, output=tmp_path / "again",
                                        format=OutputFormat.RAW, hashes=("md5",)), mediator)
    assert (result.bytes_read, result.bytes_zero_filled) == (drive.size - zeros, zeros)
    assert mediator.tasks[0].done == drive.size - zeros
    assert not mediator.tasks[0].complete
