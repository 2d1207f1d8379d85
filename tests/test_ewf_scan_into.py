"""A scan decodes each run of chunks into one buffer (``EwfImage._decode_run_into``, libdeflate
inflating straight into its place): held equal to the chunk-by-chunk way it replaces
(``_decode_run``) and to libewf's media, on every kind of E01 ewfacquire writes, on our own,
and on damaged ones, where the run goes the general way and the same problems are named.
"""

from __future__ import annotations

import subprocess
import zlib
from pathlib import Path
from typing import Any

import pytest
from conftest import make_disk_bytes, pyewf_media, require_tool
from hypothesis import given, settings
from hypothesis import strategies as st

from bitwitness.ewf import libdeflate
from bitwitness.ewf.reader import EwfImage, open_ewf

MIB = 1 << 20
KINDS = [("-c", "fast"), ("-c", "best"), ("-c", "none"), ("-c", "empty-block"),
         ("-c", "fast", "-b", "128"), ("-c", "fast", "-S", "1MiB")]


def _ewfacquire(source: Path, target: Path, *options: str) -> Path:
    require_tool("ewfacquire")
    subprocess.run(["ewfacquire", "-u", "-q", "-t", str(target), *options, str(source)],
                   capture_output=True, check=True, timeout=120)
    return target.with_suffix(".E01")


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("scan-into") / "media.raw"
    # zeros (the zero memo), text and noise (chunks ewfacquire stores uncompressed), and a
    # media size that ends inside a chunk
    path.write_bytes(make_disk_bytes(5 * MIB + 4608, seed=3))
    return path


def _scan(image: EwfImage) -> list[tuple[int, bytes, Any]]:
    return [(b.offset, bytes(b.data), b.problem) for b in image.scan(workers=2)]


def _general(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(EwfImage, "_decode_run_into", lambda *_: None)


def _counting(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    taken: list[bool] = []
    real = EwfImage._decode_run_into

    def counted(self: EwfImage, first: int, last: int) -> Any:
        out = real(self, first, last)
        taken.append(out is not None)
        return out

    monkeypatch.setattr(EwfImage, "_decode_run_into", counted)
    return taken


@pytest.mark.parametrize("options", KINDS, ids=[" ".join(k) for k in KINDS])
def test_runs_equal_the_general_way_and_libewf(media: Path, tmp_path: Path,
                                               options: tuple[str, ...],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    first = _ewfacquire(media, tmp_path / "img", *options)
    taken = _counting(monkeypatch)
    with open_ewf(first) as image:
        fast = _scan(image)
    assert taken
    assert all(taken)
    monkeypatch.undo()
    _general(monkeypatch)
    with open_ewf(first) as image:
        general = _scan(image)
    assert fast == general
    assert b"".join(data for _, data, _ in fast) == pyewf_media(first) == media.read_bytes()


def test_our_own_e01(media: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Our writer's streams are not the fastest kind (isal): decoded by isal into the buffer,
    and the zero memo still answers the zero chunks."""
    from conftest import run_bitwitness

    done = run_bitwitness("convert", media, "-o", tmp_path / "ours", "--to", "e01")
    assert done.exit_code in (0, 1), done.stderr
    taken = _counting(monkeypatch)
    with open_ewf(tmp_path / "ours.E01") as image:
        fast = _scan(image)
        assert image._zero_memo is not None
    assert taken
    assert all(taken)
    assert b"".join(data for _, data, _ in fast) == media.read_bytes()


def _damage(first: Path, chunk: int) -> None:
    """Flip a byte in the middle of stored chunk ``chunk`` (found through our own table)."""
    with open_ewf(first) as image:
        where = image._wheres(chunk, chunk)[0]
    with first.open("r+b") as fh:
        fh.seek((where.start + where.end) // 2)
        byte = fh.read(1)
        fh.seek(-1, 1)
        fh.write(bytes([byte[0] ^ 0x5A]))


@pytest.mark.parametrize("options", [("-c", "fast"), ("-c", "none")], ids=["fast", "none"])
def test_a_damaged_chunk_sends_its_run_the_general_way(media: Path, tmp_path: Path,
                                                       options: tuple[str, ...],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    first = _ewfacquire(media, tmp_path / "img", *options)
    _damage(first, 70)  # noise: stored raw by -c fast too; a bad Adler-32 either way
    taken = _counting(monkeypatch)
    with open_ewf(first, zero_bad_chunks=True) as image:
        fast = _scan(image)
    assert False in taken
    assert True in taken
    monkeypatch.undo()
    _general(monkeypatch)
    with open_ewf(first, zero_bad_chunks=True) as image:
        general = _scan(image)
    assert fast == general
    problems = [p for _, _, p in fast if p is not None]
    assert [p.chunk for p in problems] == [70]


def test_a_damaged_deflate_stream(media: Path, tmp_path: Path,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A compressed chunk whose stream libdeflate rejects: the general way names it, as
    before."""
    first = _ewfacquire(media, tmp_path / "img", "-c", "fast")
    with open_ewf(first) as image:
        compressed = [k for k in range(image.chunk_count)
                      if image._wheres(k, k)[0].compressed]
    chunk = compressed[len(compressed) // 2]
    _damage(first, chunk)
    with open_ewf(first, zero_bad_chunks=True) as image:
        fast = _scan(image)
    _general(monkeypatch)
    with open_ewf(first, zero_bad_chunks=True) as image:
        general = _scan(image)
    assert fast == general
    assert [p.chunk for _, _, p in fast if p is not None] == [chunk]


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=40000), st.integers(0, 1), st.integers(0, 64), st.integers(-8, 8),
       st.integers(0, 2))
def test_into_writes_only_its_place(content: bytes, level: int, at: int, cut: int,
                                    damage: int) -> None:
    """``Into.inflate`` says True only where the stream inflated whole to exactly the size
    asked, and then the place holds what zlib inflates; nothing outside the place is ever
    written, whatever the stream or the place."""
    stored = bytearray(zlib.compress(content, level))
    if damage and len(stored) > 8:
        stored[len(stored) // 2] ^= damage
    source = b"\xee" * 5 + bytes(stored) + b"\xdd" * 3
    expected = len(content) + cut if len(content) + cut >= 0 else 0
    out = bytearray(b"\xaa" * (at + max(expected, 1) + 7))
    into = libdeflate.Into(source, out, 1 << 20)
    try:
        ok = into.inflate(5, 5 + len(stored), at, expected)
    finally:
        into.close()
    assert out[:at] == b"\xaa" * at
    assert out[at + expected:] == b"\xaa" * (len(out) - at - expected)
    if ok:
        assert bytes(out[at:at + expected]) == zlib.decompress(bytes(stored))
        assert expected == len(content)
    elif not damage and not cut:
        pytest.fail("a good stream inflated to its size was refused")


def test_into_refuses_places_outside_its_buffers() -> None:
    stored = zlib.compress(b"x" * 1000, 1)
    out = bytearray(1500)
    into = libdeflate.Into(stored, out, 1 << 20)
    try:
        assert not into.inflate(0, len(stored) + 1, 0, 1000)  # past the source
        assert not into.inflate(0, len(stored), 600, 1000)  # past the target
        assert not into.inflate(-1, len(stored), 0, 1000)
        assert into.inflate(0, len(stored), 500, 1000)
    finally:
        into.close()
    assert out[500:] == b"x" * 1000
    out.extend(b"more")  # closed: the buffer is the caller's again
