"""Segment files hashed while they are written (EwfWriter ``file_hashes`` through GatherWriter):
the hashes in the log must be those of the finished files (sha256sum), with several groups and
segments, and never stale when the writer had to patch a file; the image must pass ewfverify.
(After a resume the sink reads the files back: tests/test_acquire_interrupt.py checks that.)
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest
from conftest import make_disk_bytes, require_tool, run_bitwitness

from bitwitness.ewf import Compression, EwfMetadata, EwfWriter, encode_chunks
from bitwitness.ewf.gather import GatherWriter


def _sha256sum(path: Path) -> str:
    out = subprocess.run(["sha256sum", str(path)], capture_output=True, text=True, check=True)
    return out.stdout.split()[0]


def _logged_hashes_match(log_path: Path, folder: Path, base: str) -> list[Path]:
    log = json.loads(log_path.read_text())
    segments = sorted(folder.glob(f"{base}.E??"))
    logged = {Path(o["path"]).name: o for o in log["outputs"]}
    assert set(logged) == {p.name for p in segments}
    for path in segments:
        assert logged[path.name]["hashes"]["sha256"] == _sha256sum(path), path.name
    return segments


def test_logged_segment_hashes_match_sha256sum(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    require_tool("sha256sum", "ewfverify")
    monkeypatch.setattr("bitwitness.ewf.writer.GROUP_CHUNKS", 8)  # many groups
    src = tmp_path / "disk.bin"
    src.write_bytes(make_disk_bytes((6 << 20) + 3 * 512, 5))
    res = run_bitwitness("acquire", src, "-o", tmp_path / "img", "--segment-size", "1MiB",
                         "--hash", "md5,sha1", "--json")
    assert res.exit_code == 0, res.stderr
    segments = _logged_hashes_match(tmp_path / "img.json", tmp_path, "img")
    assert len(segments) >= 3
    check = subprocess.run(["ewfverify", "-q", "-d", "sha1", str(segments[0])],
                           capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stdout


def test_writer_hashes_every_segment_it_writes_front_to_back(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    monkeypatch.setattr("bitwitness.ewf.writer.GROUP_CHUNKS", 5)
    data = make_disk_bytes(3 << 20, 9)
    with EwfWriter(tmp_path / "w", media_size=len(data), metadata=EwfMetadata(),
                   segment_size=1 << 20, file_hashes=("sha256", "md5")) as writer:
        view = memoryview(bytearray(data))  # raw chunks come as views of a reused buffer
        for chunk in encode_chunks(view, writer.chunk_size, Compression.FAST):
            writer.write_encoded(chunk)
        view[:] = bytes(len(view))  # the caller reuses its buffer: the image must not change
        result = writer.close(md5=hashlib.md5(data).hexdigest(),  # noqa: S324
                              sha1=hashlib.sha1(data).hexdigest())  # noqa: S324
    assert len(result.segments) >= 2
    assert set(result.file_hashes) == set(result.segments)
    for path in result.segments:
        content = path.read_bytes()
        assert result.file_hashes[path] == {"sha256": hashlib.sha256(content).hexdigest(),
                                            "md5": hashlib.md5(content).hexdigest()}  # noqa: S324
    check = subprocess.run(["ewfverify", "-q", str(result.segments[0])], capture_output=True,
                           text=True, check=False) if _has("ewfverify") else None
    if check is not None:
        assert check.returncode == 0, check.stdout


def _has(tool: str) -> bool:
    from shutil import which

    return which(tool) is not None


def test_patched_segments_are_not_given_stale_hashes(tmp_path: Path) -> None:
    """Without a media size the volume counts are patched at close: those files get no
    in-stream hash (the sink reads them back instead)."""
    data = make_disk_bytes(1 << 20, 4)
    with EwfWriter(tmp_path / "w", media_size=None, metadata=EwfMetadata(),
                   file_hashes=("sha256",)) as writer:
        writer.write(data)
        result = writer.close(md5=hashlib.md5(data).hexdigest(),  # noqa: S324
                              sha1=hashlib.sha1(data).hexdigest())  # noqa: S324
    assert result.file_hashes == {}


def test_gather_writer_survives_short_writes_and_hashes_in_order(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = os.writev

    def short(fd: int, buffers: list[bytes]) -> int:  # the kernel may take less than asked
        first = memoryview(buffers[0])
        return real(fd, [first[: max(1, len(first) // 3)]])

    monkeypatch.setattr("bitwitness.ewf.gather.os.writev", short)
    pieces = [bytes([i]) * (i * 37 + 1) for i in range(40)]
    path = tmp_path / "g.bin"
    gather = GatherWriter(path.open("xb", buffering=0), ("sha256",))
    for piece in pieces:
        gather.write(memoryview(piece))
    gather.flush()
    digests = gather.hexdigests()
    gather.patch(b"XY", 3)
    assert gather.hexdigests() is None  # the running hash no longer describes the file
    gather.close()
    expected = bytearray(b"".join(pieces))
    assert digests == {"sha256": hashlib.sha256(expected).hexdigest()}
    expected[3:5] = b"XY"
    assert path.read_bytes() == expected


@pytest.mark.parametrize("direct", [False, True])
def test_a_failed_background_write_is_raised_in_the_callers_thread_and_abort_still_closes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, direct: bool) -> None:
    import errno

    def full(fd: int, *args: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    data = make_disk_bytes(4 << 20, 6)
    writer = EwfWriter(tmp_path / "f", media_size=len(data), metadata=EwfMetadata(),
                       file_hashes=("sha256",), direct=direct)
    monkeypatch.setattr("bitwitness.ewf.writer.GROUP_CHUNKS", 4)
    monkeypatch.setattr("bitwitness.ewf.gather.os.writev", full)
    monkeypatch.setattr("bitwitness.directwrite.pwrite_all", full)

    def write_everything() -> None:  # the error surfaces in a later call, in this thread
        for chunk in encode_chunks(data, writer.chunk_size, Compression.FAST):
            writer.write_encoded(chunk)
        writer.close(md5="0" * 32, sha1="0" * 40)

    with pytest.raises(OSError, match="No space left") as info:
        write_everything()
    assert info.value.errno == errno.ENOSPC
    writer.abort()  # on the failure path: does not raise again, and closes the file
    assert writer.segments
    assert all(p.exists() for p in writer.segments)
