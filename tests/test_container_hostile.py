"""Hostile container files against our own QCOW, Parallels and AFF readers and the signature probe:
every mutation of a valid file either reads (bounded) or fails with a typed BitWitness error,
never another exception, never unbounded memory.

The valid seeds are made by ``qemu-img`` and ``affconvert``; hypothesis flips bytes in their
headers and tables (where a parser's trust lives) and truncates them.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import require_tool
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bitwitness.errors import BitWitnessError
from bitwitness.image import open_image
from bitwitness.stream import ImageStream

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


#: What the mutation tests read from the start of the media: more than every seed holds (2
#: MiB). Past it they sample the middle and the end of whatever size a mutated header claims:
#: read whole, a terabyte of unwritten media reads as zeros for a minute.
_WHOLE_READ = 4 * MiB


def _read_bounded(stream: ImageStream) -> None:
    for _ in stream.iter_blocks(1 << 18, end=min(stream.size, _WHOLE_READ)):
        pass
    for at in (stream.size // 2, max(0, stream.size - (1 << 18))):
        stream.pread(at, min(1 << 18, max(0, stream.size - at)))


def _read_all(path: Path) -> None:
    try:
        with open_image(path) as stream:
            _read_bounded(stream)
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


class _Seeds(dict[str, tuple[bytes, list[int]]]):
    """The seeds, shown by name only in hypothesis' reports (not megabytes of bytes)."""

    def __repr__(self) -> str:
        return f"<seeds {sorted(self)}>"


@pytest.fixture(scope="module")
def our_seeds(tmp_path_factory: pytest.TempPathFactory) -> _Seeds:
    """Seeds for our second readers and container checks, with the offsets where each keeps
    the structures it trusts (mutations land there)."""
    require_tool("qemu-img")
    from builders.apple import ADC, LZFSE, LZMA, build_sparseimage, build_udif

    folder = tmp_path_factory.mktemp("our-seeds")
    media = bytes(range(256)) * (MiB // 256) + bytes(MiB)
    raw = folder / "m.raw"
    raw.write_bytes(media)
    out = _Seeds()
    for name, args in (("vhdx", ["-O", "vhdx", "-o", "block_size=1M"]),
                       ("qcow2", ["-O", "qcow2"]),
                       ("vhd", ["-O", "vpc", "-o", "force_size=on"])):
        path = folder / f"s.{name}"
        subprocess.run(["qemu-img", "convert", "-f", "raw", *args, str(raw), str(path)],
                       check=True, capture_output=True)
        out[name] = (path.read_bytes(), [])
    data = out["vhdx"][0]
    out["vhdx"] = (data, [64 * 1024 + i for i in range(80)] + [192 * 1024 + i for i in range(80)]
                   + [p for p in range(len(data)) if data[p] and 2 * MiB <= p < 3 * MiB + 64])
    out["qcow2"] = (out["qcow2"][0], list(range(4, 112)) + list(range(0x30000, 0x30100)))
    vhd = out["vhd"][0]
    out["vhd"] = (vhd, list(range(4, 1536 + 64)) + list(range(len(vhd) - 512, len(vhd))))
    for name, kind in (("adc", ADC), ("lzfse", LZFSE), ("lzma", LZMA)):
        dmg = build_udif(folder / f"s.{name}.dmg", media, kind).read_bytes()
        out[name] = (dmg, list(range(len(dmg) - 4096, len(dmg))) + list(range(0, 512)))
    sparse = build_sparseimage(folder / "s.sparseimage", media).read_bytes()
    out["sparseimage"] = (sparse, list(range(4, 128)))
    from builders.ex01 import build_ex01

    ex01 = build_ex01(folder / "s.Ex01", media).read_bytes()
    out["ex01"] = (ex01, list(range(0, 2048)) + list(range(len(ex01) - 1024, len(ex01))))
    return out


def _ours(kind: str, path: Path) -> None:
    """Open ``path`` with our own reader of ``kind``, read it all and run its checks."""
    from bitwitness.images import qcow, vhd, vhdx
    from bitwitness.images.apple_sparse import SparseImageStream
    from bitwitness.images.ewf2 import Ewf2Stream
    from bitwitness.images.udif import UdifStream

    checks = {"vhdx": vhdx.vhdx_checks, "vhd": vhd.vhd_checks,
              "qcow2": lambda p: qcow.qcow_checks([p])}
    if kind in checks:
        checks[kind](path)
    opener = {"vhdx": vhdx.open_vhdx, "qcow2": qcow.open_qcow, "vhd": vhd.open_vhd,
              "adc": UdifStream, "lzfse": UdifStream, "lzma": UdifStream,
              "sparseimage": SparseImageStream,
              "ex01": Ewf2Stream}[kind]
    with opener(path) as stream:
        _read_bounded(stream)


@pytest.mark.parametrize("kind", ["vhdx", "qcow2", "vhd", "adc", "lzfse", "sparseimage", "ex01"])
@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_our_second_readers_and_checks_fail_closed(
        tmp_path: Path, our_seeds: _Seeds, kind: str,
        data: st.DataObject) -> None:
    """Our VHDX, UDIF, sparse-image and EWF2 readers and the VHD/VHDX/QCOW2 container checks on
    mutated files: a typed BitWitness error or a bounded read, nothing else."""
    seed, where = our_seeds[kind]
    mutated = bytearray(seed)
    for _ in range(data.draw(st.integers(1, 8))):
        pos = data.draw(st.sampled_from(where))
        mutated[pos] = data.draw(st.integers(0, 255))
    path = tmp_path / ("h.Ex01" if kind == "ex01" else f"h.{kind}")
    if kind == "vhdx" and data.draw(st.booleans()):  # past the CRC-32C, into the parsers
        from bitwitness.images.vhdx import crc32c

        for at, size in ((64 * 1024, 4096), (128 * 1024, 4096), (192 * 1024, 65536),
                         (256 * 1024, 65536)):
            block = bytearray(mutated[at:at + size])
            block[4:8] = bytes(4)
            block[4:8] = crc32c(bytes(block)).to_bytes(4, "little")
            mutated[at:at + size] = block
    if data.draw(st.booleans()):
        mutated = mutated[: data.draw(st.integers(8, len(mutated)))]
    path.write_bytes(bytes(mutated))
    with contextlib.suppress(BitWitnessError):
        _ours(kind, path)


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
