"""Hostile container files against our own QCOW, Parallels and AFF readers and the signature probe:
every mutation of a valid file either reads (bounded) or fails with a typed BitWitness error,
never another exception, never unbounded memory.

The valid seeds are made by ``qemu-img`` and ``affconvert``; hypothesis flips bytes in their
headers and tables (where a parser's trust lives) and truncates them.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import require_tool
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bitwitness.errors import BitWitnessError
from bitwitness.image import open_image

MiB = 1 << 20


@pytest.fixture(scope="module")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    require_tool("qemu-img")
    folder = tmp_path_factory.mktemp("seeds")
    raw = folder / "m.raw"
    raw.write_bytes(bytes(range(256)) * (MiB // 256) + bytes(MiB))
    out = {}
    for name, args in (("qcow2", ["-O", "qcow2", "-c"]), ("qcow", ["-O", "qcow"]),
                       ("hds", ["-O", "parallels"])):
        path = folder / f"s.{name}"
        subprocess.run(["qemu-img", "convert", "-f", "raw", *args, str(raw), str(path)],
                       check=True, capture_output=True)
        out[name] = path.read_bytes()
    if shutil.which("affconvert"):
        subprocess.run(["affconvert", "-q", "-s", "64k", "-o", str(folder / "s.aff"), str(raw)],
                       check=True, capture_output=True)
        out["aff"] = (folder / "s.aff").read_bytes()
    return out


def _read_all(path: Path) -> None:
    try:
        with open_image(path) as stream:
            for _ in stream.iter_blocks(1 << 18):
                pass
    except BitWitnessError:
        pass


@pytest.mark.parametrize("kind", ["qcow2", "qcow", "hds", "aff"])
@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_containers_fail_closed(tmp_path: Path, seeds: dict[str, bytes], kind: str,
                                        data: st.DataObject) -> None:
    if kind not in seeds:
        pytest.skip("affconvert is not installed")
    seed = bytearray(seeds[kind])
    window = min(len(seed), 0x40000)  # header, L1/BAT and the first tables
    for _ in range(data.draw(st.integers(1, 8))):
        pos = data.draw(st.integers(4, window - 1))
        seed[pos] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        seed = seed[: data.draw(st.integers(8, len(seed)))]
    path = tmp_path / f"h.{kind}"
    path.write_bytes(bytes(seed))
    _read_all(path)


def test_aff_page_name_with_a_latin1_digit_is_not_a_page(tmp_path: Path,
                                                         seeds: dict[str, bytes]) -> None:
    """The flaky case of the property test above: a page name whose digit was mutated to
    0xB2 ("²" in latin-1, a digit to str.isdigit but not to int()) ended in ValueError (exit
    3). It is now not a page: the media reads, page 0 as affcat reads it, page 1 (missing)
    as zeros."""
    if "aff" not in seeds:
        pytest.skip("affconvert is not installed")
    seed = bytearray(seeds["aff"])
    at = seed.index(b"page1\x00") if b"page1\x00" in seed else seed.index(b"page1")
    seed[at + 4] = 0xB2
    path = tmp_path / "latin1-digit.aff"
    path.write_bytes(bytes(seed))
    with open_image(path) as stream:
        ours = b"".join(stream.iter_blocks(1 << 18))
    theirs = subprocess.run(["affcat", str(path)], capture_output=True, check=False).stdout
    assert ours[:65536] == theirs[:65536]
    assert ours[65536:131072] == bytes(65536)
