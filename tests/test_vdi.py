"""VDI files that lie: every declared size and offset checked against the file, one line, exit 1
or 2, never exit 3 or a read outside the file. The images are written by ``qemu-img`` and then
changed field by field (offsets from the VDI 1.1 header layout in bitwitness/images/vdi.py).
"""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

import pytest
from conftest import make_disk_bytes, require_tool, run_bitwitness

from bitwitness.errors import ExitCode

_TYPE_AT = 0x4C
_MAP_AT = 0x154
_MEDIA_AT = 0x170
_BLOCK_AT = 0x178
_BLOCKS_AT = 0x180


def _vdi(tmp_path: Path, *, static: bool = False) -> tuple[Path, bytes]:
    require_tool("qemu-img")
    media = make_disk_bytes(4 << 20, seed=41)
    raw = tmp_path / "media.raw"
    raw.write_bytes(media)
    image = tmp_path / "disk.vdi"
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "vdi",
                    *(["-o", "static=on"] if static else []), str(raw), str(image)],
                   check=True, capture_output=True)
    raw.unlink()
    return image, media


def _patch(image: Path, at: int, fmt: str, value: int) -> None:
    data = bytearray(image.read_bytes())
    struct.pack_into(fmt, data, at, value)
    image.write_bytes(bytes(data))


def test_cat_of_the_media_equals_what_was_written(tmp_path: Path) -> None:
    image, media = _vdi(tmp_path)
    out = tmp_path / "out"
    done = run_bitwitness("convert", image, "-o", out, "--to", "raw")
    assert done.exit_code in (ExitCode.OK, ExitCode.EVIDENCE), done.stderr  # nothing recorded
    assert (tmp_path / "out.raw").read_bytes() == media


CASES = [
    ("huge block size", _BLOCK_AT, "<I", 1 << 31, "block size"),
    ("block size not a power of two", _BLOCK_AT, "<I", 3 << 19, "block size"),
    ("map past the end", _MAP_AT, "<I", 0xFFFF_0000, "block map"),
    ("too many blocks", _BLOCKS_AT, "<I", 0x4000_0000, "block map"),
    ("media larger than the blocks", _MEDIA_AT, "<Q", 1 << 62, "cannot hold"),
]


@pytest.mark.parametrize(("at", "fmt", "value", "said"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_lying_headers_are_one_line_corrupt_errors(tmp_path: Path, at: int, fmt: str,
                                                   value: int, said: str) -> None:
    image, _ = _vdi(tmp_path)
    _patch(image, at, fmt, value)
    info = run_bitwitness("info", image)
    assert info.exit_code == ExitCode.EVIDENCE, info.stderr
    assert said in info.stderr
    assert len(info.stderr.strip().splitlines()) == 1  # one line, no traceback
    verify = run_bitwitness("verify", image)  # the verdict, saying what is wrong
    assert verify.exit_code == ExitCode.EVIDENCE, verify.stderr
    assert said in verify.stdout
    assert "CORRUPT" in verify.stdout


def test_a_block_mapped_past_the_file_is_refused(tmp_path: Path) -> None:
    image, _ = _vdi(tmp_path, static=True)
    data = bytearray(image.read_bytes())
    map_at = struct.unpack_from("<I", data, _MAP_AT)[0]
    struct.pack_into("<I", data, map_at + 4 * 2, 0x7FFF_0000)  # block 2 -> a far slot
    image.write_bytes(bytes(data))
    done = run_bitwitness("verify", image)
    assert done.exit_code == ExitCode.EVIDENCE, done.stderr
    assert "block 2" in done.stdout
    assert "past the end" in done.stdout
    assert "CORRUPT" in done.stdout


def test_a_differencing_vdi_is_refused_naming_its_parent(tmp_path: Path) -> None:
    image, _ = _vdi(tmp_path)
    _patch(image, _TYPE_AT, "<I", 4)
    done = run_bitwitness("info", image)
    assert done.exit_code == ExitCode.USAGE, done.stderr
    assert "differencing VDI" in done.stderr
