"""The raw output of a conversion written around the page cache (``O_DIRECT``): the same bytes,
whatever the sizes of the writes, flushed in the middle or not, and on a file system that takes
no direct write. Judged by comparing the file with the bytes given, and by md5sum."""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
from pathlib import Path

import pytest
from conftest import require_tool

from bitwitness.acquire.convert import direct
from bitwitness.acquire.convert.direct import ALIGN, STAGE, DirectFile, DirectRawSink

pytestmark = pytest.mark.skipif(not hasattr(os, "O_DIRECT"), reason="no O_DIRECT here")


def _pieces(data: bytes, seed: int) -> list[bytes]:
    """``data`` cut at odd places: single bytes, a sector, more than the staging buffer."""
    rng = random.Random(seed)
    out, at = [], 0
    while at < len(data):
        size = rng.choice([1, 511, 512, ALIGN - 1, ALIGN + 3, 1 << 20, STAGE + 17])
        out.append(data[at:at + size])
        at += size
    return out


@pytest.mark.parametrize("size", [0, 1, ALIGN, ALIGN + 1, 3 * STAGE + 12345])
def test_direct_file_holds_exactly_the_bytes_written(tmp_path: Path, size: int) -> None:
    data = random.Random(size).randbytes(size)
    path = tmp_path / "out.raw"
    path.touch()
    out = DirectFile(path)
    for n, piece in enumerate(_pieces(data, size)):
        out.write(piece)
        if n % 3 == 1:
            out.flush()  # a checkpoint: the file then holds exactly what was given so far
            assert path.read_bytes() == data[:sum(map(len, _pieces(data, size)[:n + 1]))]
    out.close()
    assert path.read_bytes() == data


def test_a_refused_direct_write_falls_back_to_buffered(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """EINVAL from a direct write (a file system without O_DIRECT support for it): the same
    descriptor writes buffered, and the bytes are the same."""
    data = random.Random(7).randbytes(STAGE + 5000)
    path = tmp_path / "out.raw"
    path.touch()
    real = direct.pwrite_all
    calls = []

    def refuse_first(fd: int, view: memoryview, offset: int) -> None:
        calls.append(offset)
        if len(calls) == 1:
            raise OSError(22, "Invalid argument")
        real(fd, view, offset)

    monkeypatch.setattr(direct, "pwrite_all", refuse_first)
    out = DirectFile(path)
    out.write(data)
    out.close()
    assert not out.direct
    assert path.read_bytes() == data


def test_raw_sink_output_and_sidecar_match_md5sum(tmp_path: Path) -> None:
    require_tool("md5sum")
    data = random.Random(3).randbytes(2 * STAGE + 1536)  # ends mid-block: three sectors
    sink = DirectRawSink(tmp_path / "img", media_size=len(data), algorithms=("md5",))
    sink.prepare()
    for piece in _pieces(data, 1):
        sink.write(None, memoryview(piece))
    md5 = hashlib.md5(data).hexdigest()  # noqa: S324
    outputs = sink.finish(hashes={"md5": md5}, errors=())
    image = tmp_path / "img.raw"
    assert [o.path for o in outputs] == [image, tmp_path / "img.md5"]
    proc = subprocess.run(["md5sum", str(image)], capture_output=True, text=True, check=True)
    assert proc.stdout.split()[0] == md5
    assert image.stat().st_size == len(data)
    assert (tmp_path / "img.md5").read_text() == f"{md5}  img.raw\n"
