"""Checkpoints wait for the disk in a thread of their own (bitwitness.acquire.pipeline): what that
must not change. A checkpoint that cannot make the output durable fails the acquisition as it did
in the writing thread; a slow one never records itself after the job's final log; checkpoints are
recorded in order, each vouching only for bytes that are on the disk."""

from __future__ import annotations

import errno
import hashlib
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import make_disk_bytes

from bitwitness.acquire import engine, sinks
from bitwitness.acquire.directsink import DirectRawSink
from bitwitness.acquire.engine import AcquisitionRequest, OutputFormat, acquire
from bitwitness.errors import DestinationError
from bitwitness.progress import RecordingMediator

SIZE = 6 * 1024 * 1024


def _request(tmp_path: Path, fmt: OutputFormat) -> AcquisitionRequest:
    src = tmp_path / "disk.bin"
    src.write_bytes(make_disk_bytes(SIZE, seed=31))
    return AcquisitionRequest(source=src, output=tmp_path / "img", format=fmt,
                              hashes=("md5",), block_size=256 * 1024,
                              checkpoint_every=1024 * 1024)


@pytest.mark.parametrize("fmt", [OutputFormat.RAW, OutputFormat.E01])
def test_a_checkpoint_that_cannot_fsync_fails_the_acquisition(
        tmp_path: Path, fmt: OutputFormat, monkeypatch: pytest.MonkeyPatch) -> None:
    sink_class = DirectRawSink if fmt is OutputFormat.RAW else sinks.EwfSink
    real = sink_class.durable_soon
    calls = []

    def failing(self: sinks.Sink) -> Callable[[], int]:
        wait = real(self)  # type: ignore[arg-type]
        calls.append(1)
        number = len(calls)

        def fail() -> int:
            wait()
            if number == 2:  # the second checkpoint: the disk fails under it
                raise OSError(errno.EIO, "Input/output error")
            return 0
        return fail
    monkeypatch.setattr(sink_class, "durable_soon", failing)
    with pytest.raises(DestinationError, match="cannot write the output"):
        acquire(_request(tmp_path, fmt), RecordingMediator())
    log = json.loads((tmp_path / "img.json").read_text())
    assert log["status"] == "failed"
    assert log["media"]["hashes"] == {}


@pytest.mark.parametrize("fmt", [OutputFormat.RAW, OutputFormat.E01])
def test_slow_checkpoints_are_recorded_in_order_and_never_after_the_final_log(
        tmp_path: Path, fmt: OutputFormat, monkeypatch: pytest.MonkeyPatch) -> None:
    recorded: list[int] = []
    real_write_logs = engine.write_logs
    real_durable_soon = (DirectRawSink if fmt is OutputFormat.RAW else sinks.EwfSink).durable_soon

    def slow(self: sinks.Sink) -> Callable[[], int]:
        wait = real_durable_soon(self)  # type: ignore[arg-type]

        def waited() -> int:
            time.sleep(0.05)  # a slow disk: the pipeline goes on meanwhile
            return wait()
        return waited

    def logging(base: Path, record: engine.LogRecord, *, reserve: bool = False) -> object:
        if record.progress is not None and record.status.value == "failed":
            assert threading.current_thread().name == "checkpoint"
            recorded.append(record.progress["media_bytes_done"])
        return real_write_logs(base, record, reserve=reserve)

    monkeypatch.setattr(DirectRawSink if fmt is OutputFormat.RAW else sinks.EwfSink,
                        "durable_soon", slow)
    monkeypatch.setattr(engine, "write_logs", logging)
    request = _request(tmp_path, fmt)
    result = acquire(request, RecordingMediator())
    assert result.status.value == "completed"
    assert recorded, "no checkpoint was recorded"
    assert recorded == sorted(recorded)
    assert all(0 <= done <= SIZE for done in recorded)  # E01: closed groups only
    log = json.loads((tmp_path / "img.json").read_text())
    assert log["status"] == "completed"  # the final log, not a late checkpoint's
    data = Path(request.source).read_bytes()  # type: ignore[arg-type]
    assert log["media"]["hashes"]["md5"] == hashlib.md5(data).hexdigest()  # noqa: S324
