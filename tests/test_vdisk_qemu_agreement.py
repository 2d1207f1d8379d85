"""Valid images that QEMU 7.2 reads as we do, once called MISMATCH or CORRUPT: zeroed-grain VMDK
entries (libvmdk misreads them, so QEMU is the second reader), a QCOW2 left dirty by a crash
under lazy refcounts (its refcounts are said, not failed), declared sizes that are not whole
sectors (QEMU rounds them; the bytes both readers present are compared), and a UDIF whose
trailer declares more sectors than its block tables describe (refused, not read short).

Every image is made by qemu-img/qemu-io as the test says; the reference hash is always
``qemu-img convert -O raw``'s, or the builder's media.
"""

from __future__ import annotations

import hashlib
import struct
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import require_tool, run_bitwitness

from bitwitness.verify import VerifyOptions, verify_image
from bitwitness.verify.model import HashReference, ImageVerification, Verdict


def _qemu_io(image: Path, fmt: str, *commands: str, check: bool = True) -> None:
    args = [a for c in commands for a in ("-c", c)]
    subprocess.run(["qemu-io", "-f", fmt, *args, str(image)], check=check,
                   capture_output=True)


def _create(image: Path, fmt: str, size: int, *options: str) -> Path:
    require_tool("qemu-img", "qemu-io", "qemu-nbd")
    subprocess.run(["qemu-img", "create", "-q", "-f", fmt, *(["-o", ",".join(options)]
                                                            if options else []),
                    str(image), str(size)], check=True, capture_output=True)
    return image


def _qemu_md5(image: Path, tmp_path: Path) -> str:
    raw = tmp_path / f"{image.name}.raw"
    subprocess.run(["qemu-img", "convert", "-O", "raw", str(image), str(raw)], check=True,
                   capture_output=True)
    digest = hashlib.md5(raw.read_bytes(), usedforsecurity=False).hexdigest()
    raw.unlink()
    return digest


def _verify(image: Path, md5: str | None = None) -> ImageVerification:
    expected = () if md5 is None else (HashReference("test", "md5", md5),)
    return verify_image(image, VerifyOptions(second_reader=True, expected=expected))


def test_vmdk_zeroed_grains_are_read_by_qemu_second(tmp_path: Path) -> None:
    """``zeroed_grain=on`` + ``write -z``: grain-table entries of 1. libvmdk returns the
    header's bytes for them; QEMU reads zeros as we do, and verify says why QEMU reads."""
    image = _create(tmp_path / "zg.vmdk", "vmdk", 64 << 20, "zeroed_grain=on")
    _qemu_io(image, "vmdk", "write -P 0xaa 0 2M", "write -z 0 1M")
    md5 = _qemu_md5(image, tmp_path)
    result = _verify(image, md5)
    assert result.verdict is Verdict.VERIFIED, result.problems
    assert result.computed["md5"] == md5
    second = result.second_reader
    assert second is not None
    assert second.agree
    assert second.reader.startswith("qemu-nbd")
    assert any("zeroed-grain" in n and "libvmdk" in n for n in result.notes)
    info = run_bitwitness("info", "--json", image)
    assert info.json()["details"]["zeroed_grains"] == 16


def test_vmdk_without_zeroed_grains_keeps_libvmdk(tmp_path: Path) -> None:
    """An ordinary sparse VMDK is still checked by libvmdk, with no note."""
    pytest.importorskip("pyvmdk")
    image = _create(tmp_path / "plain.vmdk", "vmdk", 8 << 20)
    _qemu_io(image, "vmdk", "write -P 0x11 1M 1M")
    result = _verify(image, _qemu_md5(image, tmp_path))
    assert result.verdict is Verdict.VERIFIED, result.problems
    assert result.second_reader is not None
    assert "libvmdk" in result.second_reader.reader
    assert not any("zeroed-grain" in n for n in result.notes)


def _crashed_lazy(tmp_path: Path) -> Path:
    """A QCOW2 with lazy refcounts whose writer was killed: the dirty bit set, the refcounts
    of the clusters it allocated never written (``qemu-img check`` reports errors, leaks)."""
    image = _create(tmp_path / "lz.qcow2", "qcow2", 64 << 20, "lazy_refcounts=on")
    _qemu_io(image, "qcow2", "write -P 0x5a 10M 3M", "sigraise 9", check=False)
    incompatible = struct.unpack(">Q", image.read_bytes()[72:80])[0]
    assert incompatible & 1, "qemu-io left no dirty bit"
    return image


def test_qcow2_dirty_lazy_refcounts_are_no_damage(tmp_path: Path) -> None:
    image = _crashed_lazy(tmp_path)
    md5 = _qemu_md5(image, tmp_path)
    result = _verify(image, md5)
    assert result.verdict is Verdict.VERIFIED, result.problems
    [check] = [c for c in result.container_checks if c.what.startswith("QCOW tables")]
    assert check.ok
    assert "left dirty" in check.detail
    assert "lazy refcounts" in check.detail
    assert "reference count is 0" in check.detail
    assert result.second_reader is not None
    assert result.second_reader.agree
    info = run_bitwitness("info", "--json", image)
    assert info.exit_code == 0, info.stderr
    assert "dirty bit" in info.json()["details"]["refcounts_dirty"]


def test_qcow2_dirty_image_still_fails_other_checks(tmp_path: Path) -> None:
    """Only the refcounts are excused: an L2 entry pointing past the end of the file fails
    the check of a dirty image as of any other."""
    image = _crashed_lazy(tmp_path)
    data = bytearray(image.read_bytes())
    l1_offset = struct.unpack_from(">Q", data, 40)[0]
    l2 = struct.unpack_from(">Q", data, l1_offset)[0] & 0x00FF_FFFF_FFFF_FE00
    entry = l2 + 8 * 160  # guest cluster 160: media offset 10 MiB, written above
    assert struct.unpack_from(">Q", data, entry)[0]
    struct.pack_into(">Q", data, entry, (1 << 63) | (len(data) + (1 << 20)))
    image.write_bytes(bytes(data))
    from bitwitness.images.qcow import qcow_checks

    [check] = qcow_checks([image])
    assert not check.ok
    assert "past the end of the file" in check.detail
    assert "left dirty" in check.detail


def _set_size(image: Path, at: int, packing: str, size: int) -> None:
    with image.open("r+b") as f:
        f.seek(at)
        f.write(struct.pack(packing, size))


#: Where each format's header keeps the media size, packed how
_SIZE_FIELD = {"vdi": (0x170, "<Q"), "qcow2": (24, ">Q")}


@pytest.mark.parametrize(("fmt", "rounded", "tail"), [
    ("vdi", 1000448, 577),    # QEMU rounds up; the block's tail is zeros
    ("vdi", 1000448, 1024),   # ... or what was written past the declared end
    ("qcow2", 999936, 1024),  # QEMU rounds down
])
def test_size_not_whole_sectors_is_compared_over_common_bytes(
        tmp_path: Path, fmt: str, rounded: int, tail: int) -> None:
    """QEMU's rounding of a size that is no whole number of sectors is no mismatch: the
    bytes both readers present are compared, and the note says how QEMU rounded."""
    image = _create(tmp_path / f"odd.{fmt}", fmt, 1000448)
    _qemu_io(image, fmt, f"write -P 0x62 999424 {tail}")
    _set_size(image, *_SIZE_FIELD[fmt], 1000001)
    media = bytes(999424) + (b"\x62" * tail).ljust(1024, b"\0")
    md5 = hashlib.md5(media[:1000001], usedforsecurity=False).hexdigest()
    result = _verify(image, md5)
    assert result.verdict is Verdict.VERIFIED, result.problems
    second = result.second_reader
    assert second is not None
    assert second.agree
    assert second.media_size == rounded
    [note] = [n for n in result.notes if "whole number" in n]
    assert ("up" if rounded > 1000001 else "down") in note
    if rounded > 1000001:
        assert ("more are zeros" in note) == (tail == 577)
    info = run_bitwitness("info", "--json", image)
    assert "not a whole number" in info.json()["details"]["media_size_note"]


def test_qemu_size_difference_beyond_rounding_stays_a_mismatch(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Sizes apart by more than QEMU's rounding (here QEMU made to serve a sector less) are a
    mismatch as before."""
    from bitwitness.images import qemu

    image = _create(tmp_path / "odd.qcow2", "qcow2", 1000448)
    _set_size(image, *_SIZE_FIELD["qcow2"], 1000001)
    made = qemu.QemuNbdStream.__init__

    def shorter(self: qemu.QemuNbdStream, *args: Any, **kwargs: Any) -> None:
        made(self, *args, **kwargs)
        self._size -= 512

    monkeypatch.setattr(qemu.QemuNbdStream, "__init__", shorter)
    result = _verify(image)
    assert result.verdict is Verdict.MISMATCH
    assert any("media size: first reader 1000001" in p for p in result.problems)


def test_udif_trailer_declaring_more_than_its_tables_is_refused(tmp_path: Path) -> None:
    """libmodi reads what the block tables hold and convert copied it, exit 0, without a
    word; the image is refused as our UDIF reader refuses it, with where the count lies."""
    pytest.importorskip("pymodi")
    from builders.apple import ZLIB, build_udif

    image = build_udif(tmp_path / "short.dmg", bytes(range(256)) * 400, ZLIB)
    with image.open("r+b") as f:
        f.seek(-512 + 492, 2)
        f.write(struct.pack(">Q", 300))
    done = run_bitwitness("convert", image, "-o", tmp_path / "out", "--to", "raw")
    assert done.exit_code == 1
    assert "describe 200 sectors, the trailer declares 300" in done.stderr
    assert "Traceback" not in done.stderr
    assert not list(tmp_path.glob("out*"))
    assert _verify(image).verdict is Verdict.CORRUPT
