"""Segment files hashed while they are written (EwfSink + GrowingFileHasher): the hashes in the
log must be those of the finished files (sha256sum), with several groups and segments, and the
image must pass ewfverify."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from conftest import make_disk_bytes, require_tool, run_bitwitness

from bitwitness.acquire.sinks import EwfSink, GrowingFileHasher


def _sha256sum(path: Path) -> str:
    out = subprocess.run(["sha256sum", str(path)], capture_output=True, text=True, check=True)
    return out.stdout.split()[0]


def test_logged_segment_hashes_match_sha256sum(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    require_tool("sha256sum", "ewfverify")
    monkeypatch.setattr("bitwitness.ewf.writer.GROUP_CHUNKS", 8)  # many groups
    monkeypatch.setattr(EwfSink, "HASH_STEP", 1)  # hand over at every closed group
    src = tmp_path / "disk.bin"
    src.write_bytes(make_disk_bytes((6 << 20) + 3 * 512, 5))
    res = run_bitwitness("acquire", src, "-o", tmp_path / "img", "--segment-size", "1MiB",
                         "--hash", "md5,sha1", "--json")
    assert res.exit_code == 0, res.stderr
    log = json.loads((tmp_path / "img.json").read_text())
    segments = sorted(tmp_path.glob("img.E??"))
    assert len(segments) >= 3
    logged = {Path(o["path"]).name: o for o in log["outputs"]}
    assert set(logged) == {p.name for p in segments}
    for path in segments:
        assert logged[path.name]["hashes"]["sha256"] == _sha256sum(path)
    check = subprocess.run(["ewfverify", "-q", "-d", "sha1", str(segments[0])],
                           capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stdout


def test_growing_file_hasher_spans_and_shrink(tmp_path: Path) -> None:
    require_tool("sha256sum")
    path = tmp_path / "f.bin"
    path.write_bytes(make_disk_bytes(3 << 20, 2))
    hasher = GrowingFileHasher()
    try:
        for end in (0, 4096, 4096, 1 << 20, (2 << 20) + 512):
            hasher.advance(path, end)
        assert hasher.hexdigests(path, path.stat().st_size)["sha256"] == _sha256sum(path)
        other = tmp_path / "g.bin"
        other.write_bytes(b"x" * 10000)
        hasher.advance(other, 10000)
        other.write_bytes(b"y" * 5000)  # shrank after it was said final: read again whole
        assert hasher.hexdigests(other, 5000)["sha256"] == _sha256sum(other)
    finally:
        hasher.close()
