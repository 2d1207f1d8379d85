"""Any single damaged byte or any truncation: a typed error, or exactly the original bytes.

The property behind "never wrong bytes and never a traceback": whatever byte of a set is
flipped, opening and reading either raises a BitWitnessError or returns the media unchanged.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from conftest import make_disk_bytes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bitwitness.errors import BitWitnessError, CorruptImageError
from bitwitness.ewf import Compression, EwfMetadata, EwfWriter, open_ewf, segment_path

DATA = make_disk_bytes(300 * 512, 41)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    base = tmp_path_factory.mktemp("fuzz") / "img"
    with EwfWriter(base, media_size=len(DATA), metadata=EwfMetadata(case_number="fuzz"),
                   compression=Compression.FAST) as w:
        w.write(DATA)
        w.close(md5=hashlib.md5(DATA, usedforsecurity=False).hexdigest(),
                sha1=hashlib.sha1(DATA, usedforsecurity=False).hexdigest(),
                errors=[(10, 2)])
    return {"E01": segment_path(base, 1).read_bytes()}


def read_all_or_raise(path: Path, *, allow_incomplete: bool = False) -> None:
    try:
        img = open_ewf(path, allow_incomplete=allow_incomplete)
    except BitWitnessError:
        return
    with img:
        chunk = img.chunk_size
        for offset in range(0, img.size, chunk):
            try:
                data = img.pread(offset, chunk)
            except CorruptImageError:
                continue
            assert data == DATA[offset:offset + len(data)], offset
        assert img.size <= len(DATA)
        assert img.complete or allow_incomplete


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(where=st.floats(0, 1, exclude_max=True), xor=st.integers(1, 255))
def test_one_flipped_byte(tmp_path_factory: pytest.TempPathFactory, pristine: dict[str, bytes],
                          where: float, xor: int) -> None:
    raw = bytearray(pristine["E01"])
    raw[int(where * len(raw))] ^= xor
    path = tmp_path_factory.mktemp("flip") / "img.E01"
    path.write_bytes(bytes(raw))
    read_all_or_raise(path)


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(where=st.floats(0, 1, exclude_max=True))
def test_truncated_anywhere(tmp_path_factory: pytest.TempPathFactory,
                            pristine: dict[str, bytes], where: float) -> None:
    path = tmp_path_factory.mktemp("cut") / "img.E01"
    path.write_bytes(pristine["E01"][: int(where * len(pristine["E01"]))])
    read_all_or_raise(path)
    read_all_or_raise(path, allow_incomplete=True)
