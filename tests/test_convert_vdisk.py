"""VHD and VMDK: our writers judged by qemu-img, our readers against qemu-img's own files.

qemu-img (Debian qemu-utils) is the independent implementation: it must identify what we write
(``qemu-img info``), find it identical to the media (``qemu-img compare``) and clean
(``qemu-img check``); and what qemu-img writes (dynamic VHD, every VMDK kind) must read back through
our readers as the raw media qemu-img itself exports.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from conftest import make_disk_bytes, require_tool
from contract import check_stream_contract

from bitwitness.acquire.convert.vhd_writer import VhdFixedWriter
from bitwitness.acquire.convert.vmdk_writer import VmdkFlatWriter, VmdkSparseWriter
from bitwitness.errors import OutputExistsError, UsageError
from bitwitness.image import detect, open_image
from bitwitness.images.vhd import chs_geometry, unpack_footer

# Not a multiple of the 64 KiB grain, nor of the VHD CHS geometry; sparse runs of zeros.
SIZE = 512 * (3 * 8192 + 77)


def _media(size: int = SIZE) -> bytes:
    data = bytearray(make_disk_bytes(size, seed=8))
    data[1 << 20 : 3 << 20] = bytes(2 << 20)  # two whole MiB of zeros: sparse grains
    return bytes(data)


def _qemu(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["qemu-img", *args], capture_output=True, text=True, check=False)


def _write(writer: VhdFixedWriter | VmdkSparseWriter | VmdkFlatWriter, data: bytes) -> list[Path]:
    for off in range(0, len(data), 100_003):  # odd block sizes: grains span writes
        writer.write(data[off : off + 100_003])
    return writer.finish()


def test_fixed_vhd_is_read_by_qemu_as_the_media(tmp_path: Path) -> None:
    require_tool("qemu-img")
    data = _media()
    raw = tmp_path / "m.raw"
    raw.write_bytes(data)
    vhd = tmp_path / "m.vhd"
    assert _write(VhdFixedWriter(vhd, len(data)), data) == [vhd]
    info = json.loads(_qemu("info", "--output=json", "-f", "vpc", str(vhd)).stdout)
    assert info["format"] == "vpc"
    assert info["virtual-size"] == len(data)  # exact size, not rounded to CHS geometry
    assert _qemu("compare", "-f", "raw", "-F", "vpc", str(raw), str(vhd)).returncode == 0
    # the data area is the media byte for byte; the footer follows
    assert vhd.read_bytes()[: len(data)] == data
    assert vhd.stat().st_size == len(data) + 512
    footer = unpack_footer(vhd.read_bytes()[-512:])
    assert footer.geometry == chs_geometry(len(data))
    with open_image(vhd) as stream:
        check_stream_contract(stream, data)


def test_vhd_footer_checksum_is_checked_by_qemu(tmp_path: Path) -> None:
    require_tool("qemu-img")
    vhd = tmp_path / "m.vhd"
    _write(VhdFixedWriter(vhd, 1 << 20), bytes(1 << 20))
    assert _qemu("info", "-f", "vpc", str(vhd)).returncode == 0
    damaged = bytearray(vhd.read_bytes())
    damaged[-512 + 100] ^= 1  # a byte of the reserved area, covered by the checksum
    bad = tmp_path / "bad.vhd"
    bad.write_bytes(bytes(damaged))
    assert "checksum" in _qemu("info", "-f", "vpc", str(bad)).stderr


def test_vhd_unique_ids_differ_and_sizes_must_be_sectors(tmp_path: Path) -> None:
    a, b = tmp_path / "a.vhd", tmp_path / "b.vhd"
    _write(VhdFixedWriter(a, 512), bytes(512))
    _write(VhdFixedWriter(b, 512), bytes(512))
    assert unpack_footer(a.read_bytes()[-512:]).unique_id != \
        unpack_footer(b.read_bytes()[-512:]).unique_id
    with pytest.raises(UsageError, match="whole 512-byte sectors"):
        VhdFixedWriter(tmp_path / "c.vhd", 1000)
    with pytest.raises(OutputExistsError):
        VhdFixedWriter(a, 512)


@pytest.mark.parametrize("kind", ["sparse", "flat"])
def test_vmdk_is_identified_and_identical_for_qemu(tmp_path: Path, kind: str) -> None:
    require_tool("qemu-img")
    data = _media()
    raw = tmp_path / "m.raw"
    raw.write_bytes(data)
    path = tmp_path / "m.vmdk"
    writer = VmdkSparseWriter if kind == "sparse" else VmdkFlatWriter
    files = _write(writer(path, len(data), comment="case_number=7"), data)
    info = json.loads(_qemu("info", "--output=json", str(path)).stdout)
    assert info["format"] == "vmdk"
    assert info["virtual-size"] == len(data)
    create = "monolithicSparse" if kind == "sparse" else "monolithicFlat"
    assert info["format-specific"]["data"]["create-type"] == create
    assert _qemu("compare", "-f", "raw", str(raw), str(path)).returncode == 0
    assert _qemu("check", str(path)).returncode == 0
    if kind == "sparse":
        assert files == [path]
        assert path.stat().st_size < len(data) - (2 << 20)  # the zero MiBs are not stored
    else:
        assert files[1].read_bytes() == data
    with open_image(path) as stream:
        assert stream.info.format == "vmdk"
        check_stream_contract(stream, data)


def _qemu_made(tmp_path: Path, data: bytes, fmt: str, subformat: str) -> Path:
    raw = tmp_path / "src.raw"
    raw.write_bytes(data)
    out = tmp_path / f"q-{subformat}.{'vhd' if fmt == 'vpc' else 'vmdk'}"
    proc = _qemu("convert", "-f", "raw", "-O", fmt, "-o", f"subformat={subformat}", str(raw),
                 str(out))
    assert proc.returncode == 0, proc.stderr
    return out


@pytest.mark.parametrize(("fmt", "subformat"), [
    ("vpc", "dynamic"), ("vmdk", "monolithicSparse"), ("vmdk", "streamOptimized"),
    ("vmdk", "monolithicFlat"), ("vmdk", "twoGbMaxExtentSparse"),
])
def test_reader_matches_qemu_export(tmp_path: Path, fmt: str, subformat: str) -> None:
    require_tool("qemu-img")
    data = _media(4 << 20)
    image = _qemu_made(tmp_path, data, fmt, subformat)
    exported = tmp_path / "export.raw"
    assert _qemu("convert", "-O", "raw", str(image), str(exported)).returncode == 0
    expected = exported.read_bytes()  # qemu's view (a dynamic VHD may be rounded up to CHS)
    assert detect(image).by == "magic"
    with open_image(image) as stream:
        got = stream.read()
    assert got == expected[: len(got)]
    assert expected[len(got):] == bytes(len(expected) - len(got))
    assert got[: len(data)] == data


def test_third_party_vmdk_and_vhd(third_party: Path, manifest: dict, tmp_path: Path) -> None:
    """dfvfs' ext2.vmdk holds the same ext2 media as ext2.E01 (hashes from the manifest)."""
    import hashlib

    expected = manifest["dfvfs_ext2.E01"]
    with open_image(third_party / "dfvfs_ext2.vmdk") as stream:
        assert stream.size == expected["media_size"]
        assert hashlib.md5(stream.read(), usedforsecurity=False).hexdigest() == expected["md5"]
    with open_image(third_party / "dfvfs_ext2.vhd") as stream:
        assert stream.info.details["vhd_type"] == "dynamic"
        media = stream.read()
    require_tool("qemu-img")
    exported = tmp_path / "vhd.raw"
    assert _qemu("convert", "-O", "raw", "-U", str(third_party / "dfvfs_ext2.vhd"),
                 str(exported)).returncode == 0
    assert exported.read_bytes()[: len(media)] == media


def test_child_and_differencing_disks_are_refused(tmp_path: Path) -> None:
    """A child VMDK is read with its parent only when the parent lies in the child's own folder
    (see tests/test_containers.py for the chain read); one whose parent is elsewhere is refused."""
    require_tool("qemu-img")
    (tmp_path / "elsewhere").mkdir()
    base = tmp_path / "elsewhere" / "base.vmdk"
    assert _qemu("create", "-f", "vmdk", str(base), "1M").returncode == 0
    child = tmp_path / "child.vmdk"
    assert _qemu("create", "-f", "vmdk", "-b", str(base), "-F", "vmdk", str(child)).returncode == 0
    with pytest.raises(UsageError, match="parent"):
        open_image(child)
