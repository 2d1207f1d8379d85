"""Interruption (SIGINT/SIGTERM), resume, and a full destination.

Signals are real: the source sends one to this very process once the acquisition has passed a
chosen offset, and the engine's handler must stop cleanly. Resumed runs must end with the same
hashes and bytes as the source (checked with md5sum, ewfverify and pyewf).
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import make_disk_bytes, pyewf_media, require_root, require_tool, run_bitwitness

from bitwitness.acquire import engine
from bitwitness.acquire.engine import AcquisitionRequest, OutputFormat, acquire
from bitwitness.acquire.faults import FaultySource
from bitwitness.acquire.source import open_source
from bitwitness.progress import RecordingMediator

SIZE = 6 * 1024 * 1024


def _md5(path: Path) -> str:
    return subprocess.run(["md5sum", str(path)], capture_output=True, text=True,
                          check=True).stdout.split()[0]


def _signal_at(offset: int, signum: int = signal.SIGINT,
               stop: threading.Event | None = None) -> Any:
    """A read hook that signals this process once, at ``offset``; with ``stop`` it also waits
    until the engine's handler has seen the signal, so that the test does not race the reader."""
    sent = []

    def hook(at: int, length: int) -> None:
        if at >= offset and not sent:
            sent.append(at)
            os.kill(os.getpid(), signum)
            if stop is not None:
                assert stop.wait(10)
            else:  # give the main thread time to run the handler before reading on
                time.sleep(0.5)

    return hook


def _evidence(tmp_path: Path) -> Path:
    src = tmp_path / "disk.bin"
    src.write_bytes(make_disk_bytes(SIZE, seed=21))
    return src


def _interrupted(tmp_path: Path, src: Path, fmt: OutputFormat, at: int = 2 * 1024 * 1024,
                 **options: Any) -> Any:
    stop = threading.Event()
    source = FaultySource(open_source(src), before_read=_signal_at(at, stop=stop))
    result = acquire(AcquisitionRequest(source=source, output=tmp_path / "img", format=fmt,
                                        hashes=("md5",), block_size=256 * 1024, stop=stop,
                                        **options),
                     RecordingMediator())
    source.close()
    return result


def test_interrupted_raw_keeps_partial_names_and_resumes_to_the_same_bytes(
        tmp_path: Path) -> None:
    require_tool("md5sum")
    src = _evidence(tmp_path)
    result = _interrupted(tmp_path, src, OutputFormat.RAW, split=1024 * 1024)
    assert result.status.value == "interrupted"
    assert int(result.exit_code) == 130
    assert not list(tmp_path.glob("img.0??"))  # nothing under a final name
    assert not (tmp_path / "img.md5").exists()  # no sidecar to vouch for it
    assert list(tmp_path.glob("img.0??.partial"))
    log = json.loads((tmp_path / "img.json").read_text())
    assert log["status"] == "interrupted"
    assert log["media"]["hashes"] == {}
    done = log["progress"]["media_bytes_done"]
    assert 0 < done < SIZE
    assert "Status: INTERRUPTED" in (tmp_path / "img.txt").read_text()

    res = run_bitwitness("acquire", src, "-o", tmp_path / "img", "--resume", "--json")
    assert res.exit_code == 0, res.stderr
    doc = res.json()
    assert doc["resumed_from"] == done
    assert doc["hashes"]["md5"] == _md5(src)
    pieces = sorted(tmp_path.glob("img.0??"))
    assert len(pieces) == 6
    assert b"".join(p.read_bytes() for p in pieces) == src.read_bytes()
    check = subprocess.run(["md5sum", "-c", "img.md5"], cwd=tmp_path, capture_output=True,
                           text=True, check=False)
    assert check.returncode == 0, check.stdout
    assert json.loads((tmp_path / "img.json").read_text())["progress"]["resumed_from"] == done


def test_interrupted_e01_is_incomplete_and_resumes_to_a_verified_image(tmp_path: Path) -> None:
    require_tool("ewfverify", "md5sum")
    pytest.importorskip("pyewf")
    src = _evidence(tmp_path)
    # late enough for the 1 MiB segments before it to be complete (the part resume keeps)
    result = _interrupted(tmp_path, src, OutputFormat.E01, at=5 * 1024 * 1024,
                          segment_size=1024 * 1024)
    assert result.status.value == "interrupted"
    check = subprocess.run(["ewfverify", "-q", str(tmp_path / "img.E01")], capture_output=True,
                           text=True, check=False)
    assert check.returncode != 0  # libewf refuses the unfinished set
    verdict = run_bitwitness("verify", tmp_path / "img.E01")
    assert verdict.exit_code == 1
    assert "INCOMPLETE" in verdict.stdout + verdict.stderr
    # what the log says the image holds is what it holds: complete chunk groups, not the
    # group in progress when the signal came
    logged = json.loads((tmp_path / "img.json").read_text())["progress"]["media_bytes_done"]
    held = run_bitwitness("info", "--json", tmp_path / "img.E01").json()
    assert logged == held["readable_media_size"]

    res = run_bitwitness("acquire", src, "-o", tmp_path / "img", "--resume", "--json")
    assert res.exit_code == 0, res.stderr
    assert res.json()["hashes"]["md5"] == _md5(src)
    assert 0 < res.json()["resumed_from"] < SIZE  # whole segments were kept, not rewritten
    outputs = {Path(o["path"]).name: o["hashes"]["sha256"]  # the files as they ended up
               for o in json.loads((tmp_path / "img.json").read_text())["outputs"]}
    assert outputs == {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
                       for p in tmp_path.glob("img.E??")}
    check = subprocess.run(["ewfverify", "-q", str(tmp_path / "img.E01")], capture_output=True,
                           text=True, check=False)
    assert check.returncode == 0, check.stdout
    assert _md5(src) in check.stdout
    assert pyewf_media(tmp_path / "img.E01") == src.read_bytes()


def test_sigterm_through_the_cli_exits_130(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    src = _evidence(tmp_path)

    def slow_open(source: Any, **kwargs: Any) -> FaultySource:
        return FaultySource(open_source(source, **kwargs),
                            before_read=_signal_at(1024 * 1024, signal.SIGTERM))

    monkeypatch.setattr(engine, "open_source", slow_open)
    res = run_bitwitness("acquire", src, "-o", tmp_path / "img", "--format", "raw")
    assert res.exit_code == 130
    assert "interrupted" in res.stderr
    assert json.loads((tmp_path / "img.json").read_text())["status"] == "interrupted"
    assert not (tmp_path / "img.raw").exists()
    assert (tmp_path / "img.raw.partial").exists()


def test_resume_refuses_a_completed_acquisition(tmp_path: Path) -> None:
    src = tmp_path / "small.bin"
    src.write_bytes(make_disk_bytes(8192))
    assert run_bitwitness("acquire", src, "-o", tmp_path / "img").exit_code == 0
    res = run_bitwitness("acquire", src, "-o", tmp_path / "img", "--resume")
    assert res.exit_code == 2
    assert "completed" in res.stderr


@pytest.fixture
def tiny_fs(tmp_path: Path) -> Any:
    """A 2 MiB tmpfs: a destination that fills up."""
    require_root()
    mount = tmp_path / "full"
    mount.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)],
                          capture_output=True, text=True, check=False)
    if proc.returncode:
        pytest.skip(f"cannot mount a tmpfs: {proc.stderr.strip()}")
    yield mount
    subprocess.run(["umount", str(mount)], check=False)


@pytest.mark.parametrize("fmt", ["raw", "e01"])
def test_a_full_destination_is_a_clear_error_and_the_output_stays_unfinished(
        tmp_path: Path, tiny_fs: Path, fmt: str) -> None:
    src = tmp_path / "random.bin"
    src.write_bytes(os.urandom(4 * 1024 * 1024))  # incompressible: cannot fit in 2 MiB
    res = run_bitwitness("acquire", src, "-o", tiny_fs / "img", "--format", fmt,
                         "--hash", "md5")
    assert res.exit_code == 2
    assert "destination is full" in res.stderr
    assert "Traceback" not in res.stderr
    log = json.loads((tiny_fs / "img.json").read_text())
    assert log["status"] == "failed"
    assert "full" in log["error"]
    assert log["media"]["hashes"] == {}
    if fmt == "raw":
        assert not (tiny_fs / "img.raw").exists()
        assert not (tiny_fs / "img.md5").exists()
    else:
        check = subprocess.run(["ewfverify", "-q", str(tiny_fs / "img.E01")],
                               capture_output=True, text=True, check=False)
        assert check.returncode != 0


def test_a_full_second_output_is_named_not_the_first(tmp_path: Path, tiny_fs: Path) -> None:
    """The write that fills a disk names no file (a write to a descriptor): the message named
    the first output's folder, which had room, when the second output's disk was full."""
    src = tmp_path / "random.bin"
    src.write_bytes(os.urandom(4 * 1024 * 1024))
    first = tmp_path / "first"
    first.mkdir()
    res = run_bitwitness("acquire", src, "-o", first / "img", "--format", "raw", "--hash", "md5",
                         "--second-output", tiny_fs / "img2")
    assert res.exit_code == 2, res.stderr
    assert f"the destination is full ({tiny_fs})" in res.stderr


@pytest.mark.parametrize("fmt", [OutputFormat.RAW, OutputFormat.E01])
def test_resume_continues_both_copies(tmp_path: Path, fmt: OutputFormat) -> None:
    require_tool("md5sum")
    src = _evidence(tmp_path)
    stop = threading.Event()

    def hook(at: int, length: int) -> None:
        if at >= 5 * 1024 * 1024:
            stop.set()  # the TUI's Cancel: no signal at all

    source = FaultySource(open_source(src), before_read=hook)
    result = acquire(AcquisitionRequest(source=source, output=tmp_path / "a" / "img",
                                        second_output=tmp_path / "b" / "img", format=fmt,
                                        hashes=("md5",), block_size=256 * 1024, stop=stop,
                                        segment_size=1024 * 1024), RecordingMediator())
    assert result.status.value == "interrupted"
    res = run_bitwitness("acquire", src, "-o", tmp_path / "a" / "img", "--resume", "--verify",
                         "--json")
    assert res.exit_code == 0, res.stderr
    doc = res.json()
    assert doc["resumed_from"] > 0
    assert doc["hashes"]["md5"] == _md5(src)
    assert [v["verdict"] for v in doc["verification"]] == ["VERIFIED", "VERIFIED"]
    assert {Path(v["path"]).parent.name for v in doc["verification"]} == {"a", "b"}


def test_stopping_a_resume_while_it_rehashes_keeps_what_was_done(tmp_path: Path) -> None:
    require_tool("md5sum")
    src = _evidence(tmp_path)
    first = _interrupted(tmp_path, src, OutputFormat.RAW)
    done = json.loads((tmp_path / "img.json").read_text())["progress"]["media_bytes_done"]
    assert first.status.value == "interrupted"
    assert done > 0
    stop = threading.Event()
    stop.set()  # Cancel arrives while the kept prefix is being re-hashed
    again = acquire(AcquisitionRequest(source=src, output=tmp_path / "img", resume=True,
                                       stop=stop), RecordingMediator())
    assert again.status.value == "interrupted"
    log = json.loads((tmp_path / "img.json").read_text())
    assert log["progress"]["media_bytes_done"] == done  # not reset to 0
    assert (tmp_path / "img.raw.partial").stat().st_size == done
    res = run_bitwitness("acquire", src, "-o", tmp_path / "img", "--resume", "--json")
    assert res.exit_code == 0, res.stderr
    assert res.json()["resumed_from"] == done
    assert res.json()["hashes"]["md5"] == _md5(src)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["sigint", "sigterm"])
def test_a_signal_after_the_outcome_keeps_the_exit_code(signum: int) -> None:
    """A second Ctrl-C that lands after the command has decided its outcome (the log written,
    the summary printed) neither kills the process with the signal's status nor prints a
    traceback: the process, once its own entry point returns, exits with the command's code.
    The signal is sent from an exit handler, the last moment the interpreter runs code."""
    script = ("import atexit, os, sys\n"
              f"atexit.register(lambda: os.kill(os.getpid(), {int(signum)}))\n"
              "sys.argv = ['bitwitness', '--version']\n"
              "from bitwitness.cli.main import main\n"
              "main()\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=False, timeout=60)
    assert proc.returncode == 0, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr
    assert "bitwitness" in proc.stdout
