"""Smaller pieces of acquisition: split-raw resume at every kind of boundary, HPA parsing with a
stand-in hdparm, and the engine over an already-open image (as convert uses it)."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest
from conftest import make_disk_bytes, pyewf_media

from bitwitness.acquire.engine import AcquisitionRequest, OutputFormat, acquire
from bitwitness.acquire.sinks import RawSink
from bitwitness.acquire.source import check_hpa
from bitwitness.progress import NullMediator

MIB = 1024 * 1024


@pytest.mark.parametrize("done", [0, 512, MIB, MIB + 4096, 3 * MIB])
def test_split_raw_resume_at_any_point_gives_the_same_pieces(tmp_path: Path, done: int) -> None:
    data = make_disk_bytes(3 * MIB + 1000, seed=51)
    algorithms = ("md5", "sha256")
    first = RawSink(tmp_path / "img", media_size=len(data), algorithms=algorithms, split=MIB)
    first.prepare()
    for offset in range(0, done, 4096):
        first.write(None, data[offset:min(offset + 4096, done)])
    first.write(None, data[done:done + 777])  # written after the logged point: must be cut
    first.abort()
    second = RawSink(tmp_path / "img", media_size=len(data), algorithms=algorithms, split=MIB)
    prefix = b"".join(second.resume(done))
    assert prefix == data[:done]
    second.write(None, data[done:])
    outputs = second.finish(hashes={}, errors=())
    pieces = [o for o in outputs if o.role == "image"]
    assert [p.path.name for p in pieces] == ["img.001", "img.002", "img.003", "img.004"]
    for index, piece in enumerate(pieces):
        chunk = data[index * MIB:(index + 1) * MIB]
        assert piece.path.read_bytes() == chunk
        assert piece.hashes == {"md5": hashlib.md5(chunk).hexdigest(),  # noqa: S324
                                "sha256": hashlib.sha256(chunk).hexdigest()}
    assert not list(tmp_path.glob("*.partial"))


def _fake_hdparm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, output: str,
                 code: int = 0) -> None:
    script = tmp_path / "bin" / "hdparm"
    script.parent.mkdir()
    script.write_text(f"#!/bin/sh\ncat <<'EOF'\n{output}\nEOF\nexit {code}\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{script.parent}{os.pathsep}{os.environ['PATH']}")


@pytest.mark.parametrize(("output", "present"), [
    ("\n/dev/sdb:\n max sectors   = 1953525168/1953525168, HPA is disabled\n", False),
    ("\n/dev/sdb:\n max sectors   = 1953000000/1953525168, HPA is enabled\n", True),
    ("\n/dev/sdb:\n max sectors   = 976773168/976773168\n", False),
])
def test_hpa_is_read_from_hdparm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, output: str,
                                 present: bool) -> None:
    _fake_hdparm(tmp_path, monkeypatch, output)
    info = check_hpa("/dev/sdb")
    assert info.checked
    assert info.present is present
    assert "max sectors" in info.detail


def test_hpa_unknown_when_hdparm_cannot_tell(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_hdparm(tmp_path, monkeypatch, " SG_IO: bad/missing sense data", code=25)
    info = check_hpa("/dev/sdb")
    assert (info.checked, info.present) == (False, None)
    assert "bad/missing sense data" in info.detail


def test_engine_reads_an_open_image_as_convert_does(tmp_path: Path) -> None:
    pytest.importorskip("pyewf")
    from bitwitness.image import open_image

    data = make_disk_bytes(2 * MIB, seed=52)
    src = tmp_path / "disk.bin"
    src.write_bytes(data)
    first = acquire(AcquisitionRequest(source=src, output=tmp_path / "orig", hashes=("md5",)),
                    NullMediator())
    assert first.status.value == "completed"
    stream = open_image(tmp_path / "orig.E01")
    try:
        result = acquire(AcquisitionRequest(source=stream, output=tmp_path / "copy",
                                            format=OutputFormat.RAW, hashes=("md5",),
                                            operation="convert"), NullMediator())
    finally:
        stream.close()
    assert result.source.kind.value == "image"
    assert (tmp_path / "copy.raw").read_bytes() == data
    assert pyewf_media(tmp_path / "orig.E01") == data
    assert result.hashes["md5"] == hashlib.md5(data).hexdigest()  # noqa: S324
    assert '"operation": "convert"' in (tmp_path / "copy.json").read_text()


def test_a_vanished_source_fails_cleanly_and_can_be_resumed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno
    import json

    from conftest import run_bitwitness

    import bitwitness.acquire.source as source_module

    data = make_disk_bytes(3 * MIB, seed=53)
    src = tmp_path / "disk.bin"
    src.write_bytes(data)
    real_pread, real_preadv = os.pread, os.preadv

    def unplugged(fd: int, length: int, offset: int) -> bytes:
        if offset >= 2 * MIB:
            raise OSError(errno.ENODEV, os.strerror(errno.ENODEV))
        return real_pread(fd, length, offset)

    def unplugged_into(fd: int, buffers: list[memoryview], offset: int) -> int:
        if offset >= 2 * MIB:
            raise OSError(errno.ENODEV, os.strerror(errno.ENODEV))
        return real_preadv(fd, buffers, offset)

    monkeypatch.setattr(source_module.os, "pread", unplugged)
    monkeypatch.setattr(source_module.os, "preadv", unplugged_into)
    res = run_bitwitness("acquire", src, "-o", tmp_path / "img", "--format", "raw")
    monkeypatch.undo()
    assert res.exit_code == 1  # an evidence problem (issue 18.5), not a usage error
    assert "the source is gone" in res.stderr
    log = json.loads((tmp_path / "img.json").read_text())
    assert log["status"] == "failed"
    assert log["read_errors"] == []  # an unplugged drive is not a run of bad sectors
    assert log["progress"]["media_bytes_done"] == 2 * MIB
    assert (tmp_path / "img.raw.partial").stat().st_size == 2 * MIB
    res = run_bitwitness("acquire", src, "-o", tmp_path / "img", "--resume", "--json")
    assert res.exit_code == 0, res.stderr
    assert res.json()["hashes"]["sha256"] == hashlib.sha256(data).hexdigest()
    assert (tmp_path / "img.raw").read_bytes() == data
