"""Image files written around the page cache (``O_DIRECT``): the same bytes, whatever the sizes
of the writes, flushed in the middle or not, rewritten in place or not, and on a file system that
takes no direct write. Judged by comparing the file with the bytes given, and by md5sum."""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
from pathlib import Path

import pytest
from conftest import require_tool

from bitwitness import directwrite as direct
from bitwitness.acquire.directsink import DirectRawSink
from bitwitness.directwrite import ALIGN, STAGE, DirectFile
from bitwitness.ewf.gather import GatherWriter

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


def test_on_file_counts_the_bytes_written_and_no_more(tmp_path: Path) -> None:
    data = random.Random(11).randbytes(2 * STAGE + 3000)
    path = tmp_path / "out.raw"
    path.touch()
    out = DirectFile(path)
    out.write(data[:STAGE - 1])
    assert out.on_file == 0  # all staged
    out.write(data[STAGE - 1:])  # two buffers filled: the first one's write has returned
    assert STAGE <= out.on_file <= 2 * STAGE
    assert path.read_bytes()[:out.on_file] == data[:out.on_file]
    out.flush()
    assert out.on_file == len(data)
    assert path.read_bytes() == data
    more = random.Random(12).randbytes(ALIGN + 5)
    wait = out.flush_soon()  # started, not waited for: writing goes on meanwhile
    out.write(more)
    assert wait() == len(data)
    out.close()
    assert path.read_bytes() == data + more


def test_bytes_rewritten_in_place_survive_later_appends(tmp_path: Path) -> None:
    """An owner patches the last, partial block through its own descriptor (as the E01 writer
    fixes a volume section): the next direct write of that block keeps the patch."""
    data = bytearray(random.Random(5).randbytes(ALIGN * 3 + 700))
    more = random.Random(6).randbytes(STAGE + 999)
    path = tmp_path / "out.raw"
    path.touch()
    out = DirectFile(path)
    out.write(data)
    out.flush()
    patch, at = b"PATCHED!", ALIGN * 3 + 100  # inside the staged partial block
    early, early_at = b"EARLY", 10  # in a block already written for good
    with path.open("r+b", buffering=0) as own:
        for bytes_, offset in ((patch, at), (early, early_at)):
            own.seek(offset)
            own.write(bytes_)
            out.patched(bytes_, offset)
            data[offset:offset + len(bytes_)] = bytes_
        out.write(more)
        out.close()
    assert path.read_bytes() == bytes(data) + more


def test_raw_sink_checkpoint_then_resume_gives_the_whole_image(tmp_path: Path) -> None:
    """A checkpoint vouches only for bytes on the file; resuming from it (as after a killed
    acquisition) and writing the rest gives the image md5sum expects."""
    require_tool("md5sum")
    data = random.Random(9).randbytes(2 * STAGE + 4608)
    sink = DirectRawSink(tmp_path / "img", media_size=len(data), algorithms=("md5",))
    sink.prepare()
    for piece in _pieces(data[:2 * STAGE + 512], 2):
        sink.write(None, memoryview(piece))
    marked = sink.written
    wait = sink.durable_soon()
    sink.write(None, memoryview(data[marked:marked + 1024]))  # the pipeline goes on meanwhile
    durable = wait()
    assert durable == marked  # every byte given before the checkpoint, none after
    partial = sink.partial_paths()[0]
    assert partial.read_bytes()[:durable] == data[:durable]
    sink.abort()
    again = DirectRawSink(tmp_path / "img", media_size=len(data), algorithms=("md5",))
    resumed = again.resume(durable)
    assert resumed.media_bytes == durable
    assert b"".join(resumed.read()) == data[:durable]
    again.write(None, memoryview(data[durable:]))
    md5 = hashlib.md5(data).hexdigest()  # noqa: S324
    again.finish(hashes={"md5": md5}, errors=())
    proc = subprocess.run(["md5sum", str(tmp_path / "img.raw")], capture_output=True, text=True,
                          check=True)
    assert proc.stdout.split()[0] == md5


def test_gather_writer_direct_writes_the_same_file_and_hashes(tmp_path: Path) -> None:
    """The E01 writer's file layer with ``O_DIRECT``: a sync point puts every byte given on the
    file, a patch in the partial last block survives later appends, and the running hash is
    the file's (checked with sha256sum)."""
    require_tool("sha256sum")
    pieces = _pieces(random.Random(12).randbytes(STAGE + 3 * ALIGN + 77), 3)
    path = tmp_path / "g.E01"
    gather = GatherWriter(path.open("xb", buffering=0), ("sha256",), background=True,
                          direct=True)
    assert gather._direct is not None  # this file system takes direct writes
    for piece in pieces[:len(pieces) // 2]:
        gather.write(piece)
    gather.sync_point()()
    assert path.read_bytes() == b"".join(pieces[:len(pieces) // 2])
    for piece in pieces[len(pieces) // 2:]:
        gather.write(piece)
    digests = gather.hexdigests()
    expected = bytearray(b"".join(pieces))
    proc = subprocess.run(["sha256sum", str(path)], capture_output=True, text=True, check=True)
    assert digests == {"sha256": proc.stdout.split()[0]}
    at = len(expected) - 20  # in the last, partial block: staged, and rewritten by what follows
    gather.patch(b"PATCH", at)
    expected[at:at + 5] = b"PATCH"
    gather.write(b"tail" * 3000)
    gather.close()
    assert path.read_bytes() == bytes(expected) + b"tail" * 3000
