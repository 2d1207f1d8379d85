"""The contracts every job that writes an image shares (``bitwitness.acquire.runner``): one
interruption model (a real SIGINT finishes the block, logs "interrupted", exits 130), one exit-code
rule, one check of what was written (``acquire --verify`` through the verification engine, against
md5sum's and libewf's view), and one sink contract (``resume`` keeps what the files hold, as pyewf
and the bytes on disk show)."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import make_disk_bytes, pyewf_media, require_tool, run_bitwitness

from bitwitness.acquire.logs import Status
from bitwitness.acquire.runner import JobResult
from bitwitness.errors import ExitCode, UsageError
from bitwitness.progress import NullMediator
from bitwitness.verdict import Verdict

MIB = 1 << 20


@dataclass
class _ActAfterFirstBlock:
    """A mediator that does ``act()`` once the first block is written (a Ctrl-C, say)."""

    act: Callable[[], object]
    notices: list[str] = field(default_factory=list)

    def begin(self, label: str, total: int | None) -> _ActAfterFirstBlock:
        return self

    def advance(self, nbytes: int) -> None:
        self.act()

    def set_errors(self, count: int) -> None:
        pass

    def finish(self, *, complete: bool = True) -> None:
        pass

    def notice(self, message: str, *, level: str = "info") -> None:
        self.notices.append(message)


def _md5(path: Path) -> str:
    return subprocess.run(["md5sum", str(path)], capture_output=True, text=True,
                          check=True).stdout.split()[0]


def test_sigint_stops_a_conversion_after_the_current_block(tmp_path: Path) -> None:
    """Conversion follows the one interruption model: a real SIGINT lets the block in hand
    finish, the log says interrupted, the output stays visibly unfinished, exit code 130."""
    from bitwitness.acquire.convert.convert import ConvertOptions, OutputFormat, convert_image

    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers need the main thread")
    image = tmp_path / "big.raw"
    image.write_bytes(make_disk_bytes(MIB, seed=21) + bytes(23 * MIB))
    sent: list[int] = []

    def ctrl_c() -> None:
        if not sent:
            sent.append(1)
            os.kill(os.getpid(), signal.SIGINT)

    result = convert_image(image, tmp_path / "out", ConvertOptions(to=OutputFormat.RAW),
                           _ActAfterFirstBlock(ctrl_c))
    assert sent
    assert result.status is Status.INTERRUPTED
    assert result.exit_code is ExitCode.INTERRUPTED
    doc = json.loads((tmp_path / "out.json").read_text())
    assert doc["status"] == "interrupted"
    assert "interrupted" in doc["error"]
    assert not (tmp_path / "out.raw").exists()  # only the .partial: never posing as complete
    partial = tmp_path / "out.raw.partial"
    assert 0 < partial.stat().st_size < image.stat().st_size
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler put back


def test_acquire_verify_runs_the_verification_engine(tmp_path: Path) -> None:
    """``acquire --verify`` says what ``bitwitness verify`` says: VERIFIED with md5sum's hash for
    a good image, MISMATCH (and which hash) when the written image differs from what was read."""
    from bitwitness.acquire.verifying import verify_output

    require_tool("md5sum")
    src = tmp_path / "evidence.bin"
    src.write_bytes(make_disk_bytes(2 * MIB, seed=22))
    res = run_bitwitness("acquire", src, "-o", tmp_path / "img", "--format", "e01",
                         "--verify", "--json")
    assert res.exit_code == 0, res.stderr
    doc = res.json()
    assert doc["verdict"] == "VERIFIED"
    assert [v["verdict"] for v in doc["verification"]] == ["VERIFIED"]
    assert doc["verification"][0]["hashes"]["md5"] == _md5(src)
    assert hashlib.md5(pyewf_media(tmp_path / "img.E01")).hexdigest() == _md5(src)  # noqa: S324

    raw = tmp_path / "copy.raw"
    raw.write_bytes(src.read_bytes())
    with raw.open("r+b") as fh:
        fh.seek(MIB)
        fh.write(b"\xff")
    checked = verify_output(raw, {"md5": _md5(src)}, NullMediator())
    assert checked.verdict is Verdict.MISMATCH
    assert checked.hashes["md5"] == _md5(raw) != _md5(src)
    assert "md5" in checked.detail


def _result(status: Status, verdict: Verdict | None, hashes: bool) -> JobResult:
    now = datetime.now(UTC)
    return JobResult(status=status, verdict=verdict, error=None, media_size=1,
                     hashes={"md5": "0" * 32} if hashes else {}, outputs=(), read_errors=(),
                     log_json=None, log_text=None, started=now, ended=now)


@pytest.mark.parametrize(("status", "verdict", "hashes", "code"), [
    (Status.COMPLETED, None, True, ExitCode.OK),
    (Status.COMPLETED, Verdict.VERIFIED, True, ExitCode.OK),
    (Status.COMPLETED, Verdict.WRITTEN, True, ExitCode.OK),
    (Status.COMPLETED, Verdict.UNVERIFIED, True, ExitCode.OK),
    (Status.COMPLETED, Verdict.MISMATCH, True, ExitCode.EVIDENCE),
    (Status.COMPLETED, Verdict.INCOMPLETE, True, ExitCode.EVIDENCE),
    (Status.COMPLETED_WITH_ERRORS, None, True, ExitCode.EVIDENCE),
    (Status.FAILED, Verdict.MISMATCH, True, ExitCode.EVIDENCE),
    (Status.FAILED, Verdict.INCOMPLETE, False, ExitCode.USAGE),
    (Status.FAILED, None, False, ExitCode.USAGE),
    (Status.INTERRUPTED, Verdict.INCOMPLETE, False, ExitCode.INTERRUPTED),
])
def test_one_exit_code_rule_for_every_job(status: Status, verdict: Verdict | None,
                                          hashes: bool, code: ExitCode) -> None:
    assert _result(status, verdict, hashes).exit_code is code


@pytest.mark.parametrize("fmt", ["raw", "e01"])
def test_resume_keeps_what_the_files_hold_before_it_returns(tmp_path: Path, fmt: str) -> None:
    """The sink contract: ``resume`` makes every change to the files before it returns (not when
    its prefix is iterated), keeps at most the limit, and its prefix is the bytes the files hold;
    the continued output equals the media (pyewf / the file itself)."""
    from bitwitness.acquire.sinks import EwfSink, RawSink, Sink
    from bitwitness.ewf import EwfMetadata

    data = make_disk_bytes(12 * MIB, seed=23)  # E01: three 4 MiB chunk groups
    base = tmp_path / "img"

    def sink() -> Sink:
        if fmt == "raw":
            return RawSink(base, media_size=len(data), algorithms=("md5",))
        return EwfSink(base, media_size=len(data), metadata=EwfMetadata(), compression="fast",
                       segment_size=MIB, bytes_per_sector=512, sectors_per_chunk=64)

    first = sink()
    first.prepare()
    for offset in range(0, 9 * MIB, 256 * 1024):
        view = memoryview(data)[offset:offset + 256 * 1024]
        first.write(first.encode(view), view)
    vouched = first.make_durable()
    assert 0 < vouched <= 9 * MIB
    first.abort()
    second = sink()
    limit = vouched - 1000 if fmt == "raw" else vouched
    kept = second.resume(limit)
    assert kept.media_bytes <= limit
    if fmt == "raw":  # cut at once, not when iterated
        assert (tmp_path / "img.raw.partial").stat().st_size == kept.media_bytes == limit
    assert b"".join(kept) == data[:kept.media_bytes]
    assert b"".join(kept) == data[:kept.media_bytes]  # reading it back changes nothing
    rest = memoryview(data)[kept.media_bytes:]
    second.write(second.encode(rest), rest)
    md5 = hashlib.md5(data).hexdigest()  # noqa: S324
    second.finish(hashes={"md5": md5, "sha1": hashlib.sha1(data).hexdigest()},  # noqa: S324
                  errors=())
    if fmt == "raw":
        assert (tmp_path / "img.raw").read_bytes() == data
    else:
        assert pyewf_media(tmp_path / "img.E01") == data


def test_outputs_that_cannot_be_continued_refuse_to_resume(tmp_path: Path) -> None:
    from bitwitness.acquire.convert.restoretarget import TargetSink
    from bitwitness.acquire.convert.sinks import WriterSink
    from bitwitness.acquire.convert.vhd_writer import VhdFixedWriter

    vhd = tmp_path / "x.vhd"
    writer = WriterSink(lambda: VhdFixedWriter(vhd, MIB), [vhd])
    target = TargetSink(tmp_path / "t.bin", "file", overwrite=False)
    for sink in (writer, target):
        sink.prepare()
        assert sink.make_durable() == 0
        with pytest.raises(UsageError, match="cannot be resumed"):
            sink.resume(MIB)
        sink.abort()


@dataclass
class _StopWhenChecking:
    """A mediator that sets ``stop`` as soon as a task whose label starts with "verify"
    advances: a Ctrl-C while the written media is being read back."""

    stop: threading.Event
    label: str = ""

    def begin(self, label: str, total: int | None) -> _StopWhenChecking:
        self.label = label
        return self

    def advance(self, nbytes: int) -> None:
        if self.label.startswith("verify"):
            self.stop.set()

    def set_errors(self, count: int) -> None:
        pass

    def finish(self, *, complete: bool = True) -> None:
        pass

    def notice(self, message: str, *, level: str = "info") -> None:
        pass


def test_a_stop_while_restore_reads_back_is_logged_as_interrupted(tmp_path: Path) -> None:
    """Stopped while checking: the target holds the whole media (sha256sum), the log says the
    restore was interrupted before it was verified, the exit code is 130."""
    from bitwitness.acquire.convert.restore import restore_image

    require_tool("sha256sum")
    image = tmp_path / "disk.raw"
    image.write_bytes(make_disk_bytes(8 * MIB, seed=24))
    target = tmp_path / "target.bin"
    stop = threading.Event()
    result = restore_image(image, target, _StopWhenChecking(stop), verify=True, yes=True,
                           log=tmp_path / "log", stop=stop)
    assert result.status is Status.INTERRUPTED
    assert result.exit_code is ExitCode.INTERRUPTED
    assert "not verified" in (result.error or "")
    sums = subprocess.run(["sha256sum", str(image), str(target)], capture_output=True,
                          text=True, check=True).stdout.split()
    assert sums[0] == sums[2]
    doc = json.loads((tmp_path / "log.json").read_text())
    assert (doc["status"], doc["verification"]) == ("interrupted", None)


def test_a_stop_while_acquire_verifies_leaves_a_finished_unverified_image(
        tmp_path: Path) -> None:
    """Stopped while ``--verify`` reads back: the image is finished and right (ewfverify), the
    final log is written (not left preliminary) and says the verification is INCOMPLETE."""
    from bitwitness.acquire.engine import AcquisitionRequest, OutputFormat, acquire
    from bitwitness.acquire.verifying import STOPPED

    require_tool("ewfverify")
    src = tmp_path / "evidence.bin"
    src.write_bytes(make_disk_bytes(8 * MIB, seed=25))
    stop = threading.Event()
    result = acquire(AcquisitionRequest(source=src, output=tmp_path / "img",
                                        format=OutputFormat.E01, verify=True, stop=stop),
                     _StopWhenChecking(stop))
    assert result.status is Status.COMPLETED
    assert result.verdict is Verdict.INCOMPLETE
    assert result.exit_code is ExitCode.EVIDENCE
    doc = json.loads((tmp_path / "img.json").read_text())
    assert doc["status"] == "completed"
    assert doc["verification"]["verdict"] == "INCOMPLETE"
    assert doc["verification"]["detail"] == STOPPED
    proc = subprocess.run(["ewfverify", "-q", str(tmp_path / "img.E01")], capture_output=True,
                          text=True, check=False)
    assert "SUCCESS" in proc.stdout, proc.stdout


@dataclass
class _SecondSignalWhenChecking(_StopWhenChecking):
    """A mediator that behaves as a second Ctrl-C during the read-back: the stop is set and
    :class:`KeyboardInterrupt` raised, as :func:`bitwitness.signals.stop_on_signals` does."""

    def advance(self, nbytes: int) -> None:
        if self.label.startswith("verify"):
            self.stop.set()
            raise KeyboardInterrupt


def test_a_second_signal_while_acquire_verifies_still_writes_the_final_log(
        tmp_path: Path) -> None:
    """A second signal during ``--verify`` ends the check, not the job's bookkeeping: the image
    is finished (ewfverify), the final log replaces the preliminary one and says INCOMPLETE."""
    from bitwitness.acquire.engine import AcquisitionRequest, OutputFormat, acquire
    from bitwitness.acquire.verifying import STOPPED

    require_tool("ewfverify")
    src = tmp_path / "evidence.bin"
    src.write_bytes(make_disk_bytes(8 * MIB, seed=26))
    stop = threading.Event()
    result = acquire(AcquisitionRequest(source=src, output=tmp_path / "img",
                                        format=OutputFormat.E01, verify=True, stop=stop),
                     _SecondSignalWhenChecking(stop))
    assert (result.status, result.verdict) == (Status.COMPLETED, Verdict.INCOMPLETE)
    doc = json.loads((tmp_path / "img.json").read_text())
    assert doc["status"] == "completed"
    assert doc["verification"]["detail"] == STOPPED
    proc = subprocess.run(["ewfverify", "-q", str(tmp_path / "img.E01")], capture_output=True,
                          text=True, check=False)
    assert "SUCCESS" in proc.stdout, proc.stdout
