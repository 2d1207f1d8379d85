"""A run killed without warning (SIGKILL, power loss) is resumable from its last checkpoint.

The acquisition runs in a child process that kills itself with SIGKILL half a MiB after a
checkpoint (the outputs fsynced, the log rewritten): nothing of the final bookkeeping happens,
and the outputs hold more than the log vouches for, including sectors zero-filled after the
checkpoint that only the dead process knew about. ``--resume`` must go back to the checkpoint,
keep the read errors recorded before it, read the rest again, and end with an image whose media
equals the source with exactly the recorded sectors zero-filled (md5sum, ewfverify, pyewf).
"""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import make_disk_bytes, pyewf_media, require_tool, run_bitwitness

MIB = 1 << 20
SIZE = 6 * MIB
BAD = (300, 301, 302)  # sectors unreadable in the killed run, before its last checkpoint
LATE_BAD = (6400, 6401)  # unreadable in the killed run after its last checkpoint (3 MiB)
KILL_AT = 3 * MIB + MIB // 2  # media bytes written when the child kills itself

_CHILD = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    import bitwitness.ewf.writer as writer
    from bitwitness.acquire import engine
    from bitwitness.acquire.engine import AcquisitionRequest, OutputFormat, acquire
    from bitwitness.acquire.faults import FaultySource
    from bitwitness.acquire.source import open_source
    from bitwitness.progress import NullMediator

    import bitwitness.acquire.pipeline as pl

    src, base, fmt, bad, kill_at = sys.argv[1:6]
    writer.GROUP_CHUNKS = 8  # groups close every 256 KiB: checkpoints have something to keep
    real_write = pl.Pipeline._write

    def dying_write(self, block, future):
        done = real_write(self, block, future)
        if done >= int(kill_at):
            self._checkpoints.finish()  # the checkpoint at 3 MiB has recorded itself (a kill
            # while it waits for the disk leaves the one before it, as resumable)
            for sink in self.sinks:  # the worst case for resume: every closed group on disk
                ewf = getattr(sink, "_writer", None)
                if ewf is not None and ewf._file is not None:
                    ewf._file.drain()
            os.kill(os.getpid(), signal.SIGKILL)  # no final log, no cleanup, like a power cut
        return done

    pl.Pipeline._write = dying_write
    source = FaultySource(open_source(Path(src)),
                          permanent=[int(s) for s in bad.split(",")])
    acquire(AcquisitionRequest(source=source, output=Path(base), format=OutputFormat(fmt),
                               hashes=("md5", "sha1"), retries=0, block_size=256 * 1024,
                               checkpoint_every=1 << 20, segment_size=2 << 20),
            NullMediator())
    sys.exit("the acquisition was not killed")
""")


def _killed_run(tmp_path: Path, fmt: str) -> tuple[Path, bytes]:
    data = make_disk_bytes(SIZE, seed=77)
    src = tmp_path / "disk.bin"
    src.write_bytes(data)
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(src), str(tmp_path / "img"), fmt,
                           ",".join(map(str, BAD + LATE_BAD)), str(KILL_AT)],
                          capture_output=True, text=True, check=False, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    expected = bytearray(data)
    for sector in BAD:
        expected[sector * 512:(sector + 1) * 512] = bytes(512)
    return src, bytes(expected)


def _check_log_after_kill(tmp_path: Path) -> int:
    log = json.loads((tmp_path / "img.json").read_text())
    assert log["status"] == "failed"
    done = log["progress"]["media_bytes_done"]
    # the checkpoint at 3 MiB: raw holds all of it, E01 the groups closed by then (256 KiB each)
    assert 3 * MIB - 256 * 1024 <= done <= 3 * MIB
    assert log["read_errors"] == [{"first_sector": 300, "sector_count": 3}]
    return int(done)


@pytest.mark.parametrize("fmt", ["raw", "e01"])
def test_a_killed_acquisition_resumes_from_its_last_checkpoint(tmp_path: Path, fmt: str) -> None:
    require_tool("md5sum")
    src, expected = _killed_run(tmp_path, fmt)
    done = _check_log_after_kill(tmp_path)

    res = run_bitwitness("acquire", src, "-o", tmp_path / "img", "--resume", "--json")
    assert res.exit_code == 1, res.stderr  # completed, with the recorded unreadable sectors
    doc = res.json()
    assert doc["status"] == "completed-with-errors"
    assert 0 < doc["resumed_from"] <= done
    assert doc["read_errors"] == [{"first_sector": 300, "sector_count": 3}]
    assert doc["hashes"]["md5"] == hashlib.md5(expected).hexdigest()  # noqa: S324
    assert doc["hashes"]["sha1"] == hashlib.sha1(expected).hexdigest()  # noqa: S324
    if fmt == "raw":
        image = tmp_path / "img.raw"
        assert image.read_bytes() == expected
        check = subprocess.run(["md5sum", "-c", "img.md5"], cwd=tmp_path, capture_output=True,
                               text=True, check=False)
        assert check.returncode == 0, check.stdout
        return
    require_tool("ewfverify", "ewfinfo")
    pytest.importorskip("pyewf")
    first = tmp_path / "img.E01"
    check = subprocess.run(["ewfverify", "-q", "-d", "sha1", str(first)], capture_output=True,
                           text=True, check=False)
    assert check.returncode == 0, check.stdout
    info = subprocess.run(["ewfinfo", str(first)], capture_output=True, text=True, check=True)
    assert "300" in info.stdout  # error2 lists the sectors recorded before the kill
    assert pyewf_media(first) == expected


def test_killed_before_the_first_checkpoint_refuses_to_guess(tmp_path: Path) -> None:
    data = make_disk_bytes(2 * MIB, seed=78)
    src = tmp_path / "disk.bin"
    src.write_bytes(data)
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(src), str(tmp_path / "img"), "e01",
                           "5", str(MIB // 2)],  # killed at 512 KiB, first checkpoint at 1 MiB
                          capture_output=True, text=True, check=False, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    res = run_bitwitness("acquire", src, "-o", tmp_path / "img", "--resume")
    assert res.exit_code == 2
    assert "before its first checkpoint" in res.stderr


@pytest.mark.parametrize("fmt", ["raw", "e01"])
def test_resume_refuses_a_source_whose_bytes_changed(tmp_path: Path, fmt: str) -> None:
    """Size, serial number and name were all --resume checked: another medium of the same size
    at the same path (or the same one, changed) had its rest joined to the first run's part,
    an image of no medium that ever existed, with hashes to match. The kept prefix's first and
    last MiB are now compared with the source (recorded unreadable sectors left out): a changed
    byte refuses the resume before anything is written; the original source then resumes."""
    src, expected = _killed_run(tmp_path, fmt)
    done = _check_log_after_kill(tmp_path)
    original = src.read_bytes()
    changed = bytearray(original)
    changed[done - 100] ^= 0xFF
    src.write_bytes(bytes(changed))
    refused = run_bitwitness("acquire", src, "-o", tmp_path / "img", "--resume")
    assert refused.exit_code == 2, refused.stderr
    assert "differ from what the interrupted run wrote there" in refused.stderr
    assert json.loads((tmp_path / "img.json").read_text())["status"] == "failed"
    src.write_bytes(original)
    res = run_bitwitness("acquire", src, "-o", tmp_path / "img", "--resume", "--json")
    assert res.exit_code == 1, res.stderr
    assert res.json()["hashes"]["md5"] == hashlib.md5(expected).hexdigest()  # noqa: S324

