"""Virtual-disk and Apple containers: built by the tools that make them, read exactly, refused by
name when unreadable, never taken for raw.

Every image here is written by ``qemu-img`` (QCOW v1/v2/v3, compressed QCOW2, backing chains,
VHDX, VHD, every VMDK subformat, Parallels) or, where no tool on this machine writes the format
(UDIF DMG, sparse image, sparse bundle; a differencing VHD), by a committed builder under
``tests/builders/`` from the format's public description. The media each must give is
``qemu-img convert -O raw`` + ``md5sum`` (QEMU's reader, not ours), or the builder's input; the
stream contract runs on every reader, and ``verify --second-reader`` re-reads through the
independent reader (QEMU through qemu-nbd, libvhdi/libvmdk for our own VHD/VMDK reads).
"""

from __future__ import annotations

import json
import os
import re
import struct
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any

import pytest
from builders.apple import BZIP2, ZLIB, build_sparsebundle, build_sparseimage, build_udif
from builders.vhd_differencing import make_differencing
from conftest import SHARED, require_tool, run_bitwitness
from contract import check_stream_contract

from bitwitness.errors import ExitCode, InputError, UnsupportedFormatError
from bitwitness.image import detect, open_image

MiB = 1 << 20


def _media() -> bytes:
    """4 MiB with random, repeated, and all-zero regions (sparse formats leave those out)."""
    rng = bytearray(os.urandom(MiB))
    data = bytearray(4 * MiB)
    data[: MiB] = rng
    data[MiB + 4096 : MiB + 200_000] = b"BitWitness " * ((200_000 - 4096) // 11) + b"B" * (
        (200_000 - 4096) % 11)
    data[3 * MiB + 512 : 3 * MiB + 512 + 70_000] = rng[:70_000]
    return bytes(data)


def _qemu(*args: str | Path) -> None:
    proc = subprocess.run(["qemu-img", *map(str, args)], capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 0, proc.stderr


def _md5sum(path: Path) -> str:
    out = subprocess.run(["md5sum", str(path)], capture_output=True, text=True, check=True)
    return out.stdout.split()[0]


def _qemu_raw(image: Path, tmp: Path, driver: str | None = None) -> tuple[bytes, str]:
    """The media as QEMU reads it (``driver`` where QEMU cannot tell the format by the first
    bytes, as for a fixed VHD), and its md5sum."""
    raw = tmp / f"{image.name}.qemu.raw"
    _qemu("convert", "-U", *(("-f", driver) if driver else ()), "-O", "raw", image, raw)
    return raw.read_bytes(), _md5sum(raw)


def _md5(data: bytes) -> str:
    import hashlib

    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def _state(paths: list[Path]) -> dict[Path, tuple[int, int, int]]:
    """Size, modification and access times (ns) of every file of an image."""
    return {p: (p.stat().st_size, p.stat().st_mtime_ns, p.stat().st_atime_ns) for p in paths}


#: (case id, qemu-img convert arguments, file name, the format info shows)
QEMU_KINDS = [
    ("qcow2-v3", ["-O", "qcow2"], "d.qcow2", "qcow2"),
    ("qcow2-v2", ["-O", "qcow2", "-o", "compat=0.10"], "d.qcow2", "qcow2"),
    ("qcow2-compressed", ["-O", "qcow2", "-c"], "d.qcow2", "qcow2"),
    ("qcow2-zstd", ["-O", "qcow2", "-c", "-o", "compression_type=zstd"], "d.qcow2", "qcow2"),
    ("qcow2-extended-l2", ["-O", "qcow2", "-o", "extended_l2=on,cluster_size=128k"], "d.qcow2",
     "qcow2"),
    ("qcow2-extended-l2-compressed", ["-O", "qcow2", "-c", "-o", "extended_l2=on"], "d.qcow2",
     "qcow2"),
    ("qcow2-data-file-raw", ["-O", "qcow2", "-o", "data_file=d.data,data_file_raw=on"],
     "d.qcow2", "qcow2"),
    ("qcow2-data-file", ["-O", "qcow2", "-o", "data_file=d.data"], "d.qcow2", "qcow2"),
    ("qcow-v1", ["-O", "qcow"], "d.qcow", "qcow"),
    ("vhdx-dynamic", ["-O", "vhdx"], "d.vhdx", "vhdx"),
    ("vhdx-fixed", ["-O", "vhdx", "-o", "subformat=fixed"], "d.vhdx", "vhdx"),
    ("vhd-dynamic", ["-O", "vpc", "-o", "force_size=on"], "d.vhd", "vhd"),
    ("vhd-fixed-unnamed", ["-O", "vpc", "-o", "subformat=fixed,force_size=on"], "disk.bin",
     "vhd"),
    ("vmdk-monolithicSparse", ["-O", "vmdk"], "d.vmdk", "vmdk"),
    ("vmdk-monolithicFlat", ["-O", "vmdk", "-o", "subformat=monolithicFlat"], "d.vmdk", "vmdk"),
    ("vmdk-twoGbMaxExtentSparse", ["-O", "vmdk", "-o", "subformat=twoGbMaxExtentSparse"],
     "d.vmdk", "vmdk"),
    ("vmdk-twoGbMaxExtentFlat", ["-O", "vmdk", "-o", "subformat=twoGbMaxExtentFlat"], "d.vmdk",
     "vmdk"),
    ("vmdk-streamOptimized", ["-O", "vmdk", "-o", "subformat=streamOptimized"], "d.vmdk",
     "vmdk"),
    ("parallels", ["-O", "parallels"], "d.hds", "parallels"),
    ("vdi-dynamic", ["-O", "vdi"], "d.vdi", "vdi"),
    ("vdi-fixed", ["-O", "vdi", "-o", "static=on"], "d.vdi", "vdi"),
]


@pytest.fixture(scope="module")
def media_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("media") / "media.raw"
    path.write_bytes(_media())
    return path


@pytest.mark.parametrize(("args", "name", "shown"), [k[1:] for k in QEMU_KINDS],
                         ids=[k[0] for k in QEMU_KINDS])
def test_qemu_made_containers_read_exactly(tmp_path: Path, media_file: Path, args: list[str],
                                           name: str, shown: str) -> None:
    require_tool("qemu-img", "qemu-nbd", "md5sum")
    image = tmp_path / name
    args = [a.replace("data_file=", f"data_file={tmp_path}/") for a in args]
    _qemu("convert", "-f", "raw", *args, media_file, image)
    expected, md5 = _qemu_raw(image, tmp_path, args[1])
    assert _md5(expected) == _md5sum(media_file)  # QEMU's reading is the input, as written
    files = sorted(p for p in tmp_path.iterdir() if ".qemu." not in p.name)
    before = _state(files)

    with open_image(image) as stream:
        assert stream.info.format == shown
        check_stream_contract(stream, expected)
        assert _md5(stream.pread(0, stream.size)) == md5

    info = run_bitwitness("info", image, "--json")
    assert info.exit_code == ExitCode.OK, info.stderr
    assert info.json()["format"] == shown
    assert info.json()["media_size"] == len(expected)

    result = run_bitwitness("verify", "--second-reader", image, "--json")
    doc = result.json()["images"][0]
    assert doc["computed"]["md5"] == md5
    assert doc["second_reader"] is not None, doc["notes"]
    assert doc["second_reader"]["agree"] is True, doc["second_reader"]["differences"]
    assert doc["second_reader"]["hashes"]["md5"] == md5
    assert result.exit_code == ExitCode.EVIDENCE  # UNVERIFIED: nothing recorded to compare
    assert doc["verdict"] == "UNVERIFIED"
    assert _state(files) == before  # rule 1: not a byte, not a time changed


def test_a_second_reader_that_disagrees_is_a_mismatch(tmp_path: Path, media_file: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The second pass is compared, never assumed: a reader returning other bytes fails it."""
    require_tool("qemu-img", "qemu-nbd")
    from bitwitness.images import qemu as qemu_mod
    from bitwitness.verify import VerifyOptions, verify_image

    image = tmp_path / "d.qcow2"
    _qemu("convert", "-f", "raw", "-O", "qcow2", media_file, image)
    real = qemu_mod.QemuNbdStream._read_aligned

    def lying(self: qemu_mod.QemuNbdStream, offset: int, length: int) -> bytes:
        data = bytearray(real(self, offset, length))
        if offset <= 5000 < offset + length:
            data[5000 - offset] ^= 0xFF
        return bytes(data)

    monkeypatch.setattr(qemu_mod.QemuNbdStream, "_read_aligned", lying)
    result = verify_image(image, VerifyOptions(second_reader=True))
    assert result.second_reader is not None
    assert not result.second_reader.agree
    assert result.verdict.value == "MISMATCH"
    assert any("readers disagree: computed md5" in p for p in result.problems)


def test_qcow2_backing_chain_resolves_inside_the_folder(tmp_path: Path,
                                                        media_file: Path) -> None:
    """base <- mid <- top, each overlay writing its own bytes; recorded as absolute paths (as
    qemu-img records them), found in the overlay's own folder."""
    require_tool("qemu-img", "qemu-io", "qemu-nbd")
    base, mid, top = (tmp_path / n for n in ("base.qcow2", "mid.qcow2", "top.qcow2"))
    _qemu("convert", "-f", "raw", "-O", "qcow2", media_file, base)
    _qemu("create", "-f", "qcow2", "-b", base, "-F", "qcow2", mid)
    subprocess.run(["qemu-io", "-c", "write -P 0x5a 512k 300k", str(mid)], check=True,
                   capture_output=True)
    _qemu("create", "-f", "qcow2", "-b", mid, "-F", "qcow2", top)
    subprocess.run(["qemu-io", "-c", "write -P 0xa5 700k 1M", str(top)], check=True,
                   capture_output=True)
    expected, md5 = _qemu_raw(top, tmp_path)
    with open_image(top) as stream:
        assert stream.info.details["parents"] == [str(mid), str(base)]
        assert list(stream.info.files) == [top, mid, base]
        check_stream_contract(stream, expected)
    result = run_bitwitness("verify", "--second-reader", top, "--json").json()["images"][0]
    assert result["computed"]["md5"] == md5
    assert result["second_reader"]["agree"] is True


def test_a_backing_file_outside_the_folder_is_not_followed(tmp_path: Path,
                                                           media_file: Path) -> None:
    require_tool("qemu-img")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "case").mkdir()
    base = tmp_path / "elsewhere" / "base.qcow2"
    _qemu("convert", "-f", "raw", "-O", "qcow2", media_file, base)
    top = tmp_path / "case" / "top.qcow2"
    _qemu("create", "-f", "qcow2", "-b", base, "-F", "qcow2", top)
    with pytest.raises(InputError, match=r"parent .*not in the image's folder"):
        open_image(top)
    res = run_bitwitness("info", top)
    assert res.exit_code == ExitCode.USAGE
    assert "base.qcow2" in res.stderr
    # a recorded path that climbs out with ".." is looked for in the folder itself
    rel = tmp_path / "case" / "rel.qcow2"
    _qemu("create", "-f", "qcow2", "-b", "../elsewhere/base.qcow2", "-F", "qcow2", rel)
    with pytest.raises(InputError, match=r"looked for .*/case/base\.qcow2"):
        open_image(rel)


def test_a_backing_file_linked_out_of_the_folder_is_refused(tmp_path: Path,
                                                           media_file: Path) -> None:
    """A parent found in the folder by name is held to the evidence opener's rules: a symbolic
    link to a file elsewhere, or a device, is not read (as for VMDK extents and E01 segments)."""
    require_tool("qemu-img")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "case").mkdir()
    base = tmp_path / "elsewhere" / "base.qcow2"
    _qemu("convert", "-f", "raw", "-O", "qcow2", media_file, base)
    top = tmp_path / "case" / "top.qcow2"
    _qemu("create", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", "-u", top, "1M")
    (tmp_path / "case" / "base.qcow2").symlink_to(base)
    with pytest.raises(InputError, match=r"outside the image's folder"):
        open_image(top)
    (tmp_path / "case" / "base.qcow2").unlink()
    (tmp_path / "case" / "base.qcow2").symlink_to("/dev/zero")
    res = run_bitwitness("info", top)
    assert res.exit_code == ExitCode.USAGE
    assert "Traceback" not in res.stderr


def test_a_parent_the_user_names_is_used_wherever_it_lies(tmp_path: Path,
                                                           media_file: Path) -> None:
    """--parent FILE: the examiner names a parent kept elsewhere; without it the image is
    refused (the previous test), with it the chain reads as QEMU reads it."""
    require_tool("qemu-img", "qemu-io", "qemu-nbd")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "case").mkdir()
    base = tmp_path / "elsewhere" / "base.qcow2"
    _qemu("convert", "-f", "raw", "-O", "qcow2", media_file, base)
    top = tmp_path / "case" / "top.qcow2"
    _qemu("create", "-f", "qcow2", "-b", base, "-F", "qcow2", top)
    subprocess.run(["qemu-io", "-c", "write -P 0x44 1M 64k", str(top)], check=True,
                   capture_output=True)
    _, md5 = _qemu_raw(top, tmp_path)
    refused = run_bitwitness("verify", top, "--json")
    assert refused.exit_code == ExitCode.USAGE
    assert "--parent" in refused.stderr
    res = run_bitwitness("verify", "--second-reader", "--parent", base, top, "--json")
    doc = res.json()["images"][0]
    assert doc["computed"]["md5"] == md5
    assert doc["second_reader"]["agree"] is True
    assert [Path(f) for f in doc["files"]] == [top, base]
    info = run_bitwitness("info", "--parent", base, top, "--json")
    assert info.exit_code == ExitCode.OK, info.stderr
    # the name is forgotten after the command
    assert run_bitwitness("info", top).exit_code == ExitCode.USAGE


def test_vmdk_child_reads_through_its_parent(tmp_path: Path, media_file: Path) -> None:
    require_tool("qemu-img", "qemu-io", "qemu-nbd")
    base = tmp_path / "base.vmdk"
    _qemu("convert", "-f", "raw", "-O", "vmdk", media_file, base)
    child = tmp_path / "child.vmdk"
    _qemu("create", "-f", "vmdk", "-b", base, "-F", "vmdk", child)
    subprocess.run(["qemu-io", "-f", "vmdk", "-c", "write -P 0x77 64k 128k", str(child)],
                   check=True, capture_output=True)
    expected, md5 = _qemu_raw(child, tmp_path)
    with open_image(child) as stream:
        assert stream.info.details["reader"].startswith("libvmdk")
        assert stream.info.details["parents"] == [str(base)]
        check_stream_contract(stream, expected)
    doc = run_bitwitness("verify", "--second-reader", child, "--json").json()["images"][0]
    assert doc["computed"]["md5"] == md5
    assert doc["second_reader"]["agree"] is True


def test_differencing_vhd_reads_through_its_parent(tmp_path: Path) -> None:
    """QEMU writes no differencing VHD: a dynamic child it wrote is turned into one
    (tests/builders/vhd_differencing.py). Blocks the child allocated (``qemu-img map``) come from
    it, the rest from the parent (both as ``qemu-img convert`` reads them)."""
    require_tool("qemu-img", "qemu-io")
    parent, child = tmp_path / "parent.vhd", tmp_path / "child.vhd"
    _qemu("create", "-f", "vpc", "-o", "force_size=on", parent, "8M")
    subprocess.run(["qemu-io", "-f", "vpc", "-c", "write -P 0x61 0 5M", str(parent)],
                   check=True, capture_output=True)
    _qemu("create", "-f", "vpc", "-o", "force_size=on", child, "8M")
    subprocess.run(["qemu-io", "-f", "vpc", "-c", "write -P 0x62 1M 512k", "-c",
                    "write -P 0x63 3000k 3k", str(child)], check=True, capture_output=True)
    parent_raw, _ = _qemu_raw(parent, tmp_path)
    child_raw, _ = _qemu_raw(child, tmp_path)
    mapping = json.loads(subprocess.run(["qemu-img", "map", "--output=json", str(child)],
                                        capture_output=True, text=True, check=True).stdout)
    expected = bytearray(parent_raw)
    for extent in mapping:
        if extent["data"]:
            s, n = extent["start"], extent["length"]
            expected[s : s + n] = child_raw[s : s + n]
    make_differencing(child, parent)
    with open_image(child) as stream:
        assert stream.info.format == "vhd"
        assert stream.info.details["disk_type"] == "differencing"
        assert list(stream.info.files) == [child, parent]
        check_stream_contract(stream, bytes(expected))
    # a parent of the same name from another chain is refused (identifiers differ)
    _qemu("create", "-f", "vpc", "-o", "force_size=on", parent, "8M")
    with pytest.raises(Exception, match="not this disk's parent"):
        open_image(child)


def test_udif_data_fork_checksum_is_verified(tmp_path: Path) -> None:
    """The CRC-32 the koly trailer records for the data fork is recomputed by verify; a changed
    byte in a stored (raw) chunk changes the media libmodi gives and fails the check: CORRUPT."""
    media = _media()
    image = build_udif(tmp_path / "disk.dmg", media, ZLIB, chunk_sectors=64)
    doc = run_bitwitness("verify", image, "--json").json()["images"][0]
    assert doc["container_checks"] == [{"what": "UDIF data fork CRC-32", "ok": True,
                                        "detail": doc["container_checks"][0]["detail"]}]
    assert doc["verdict"] == "UNVERIFIED"
    data = bytearray(image.read_bytes())
    # the second chunk (sectors 64-127) is stored raw, right after the first, compressed one
    first = len(zlib.compress(media[: 64 * 512]))
    data[first + 100] ^= 0x01
    image.write_bytes(bytes(data))
    res = run_bitwitness("verify", image, "--json")
    doc = res.json()["images"][0]
    assert res.exit_code == ExitCode.EVIDENCE
    assert doc["verdict"] == "CORRUPT"
    assert doc["container_checks"][0]["ok"] is False
    assert any("UDIF data fork CRC-32" in p for p in doc["problems"])


@pytest.mark.parametrize("compression", [ZLIB, BZIP2], ids=["zlib", "bzip2"])
def test_udif_dmg(tmp_path: Path, compression: int) -> None:
    """A UDIF image built from the format's description (tests/builders/apple.py): libmodi
    reads the builder's media; QEMU's dmg driver agrees where it has the codec (zlib)."""
    media = _media()
    image = build_udif(tmp_path / "disk.dmg", media, compression)
    with open_image(image) as stream:
        assert stream.info.format == "dmg"
        check_stream_contract(stream, media)
    if compression == ZLIB:
        require_tool("qemu-nbd")
        doc = run_bitwitness("verify", "--second-reader", image, "--json").json()["images"][0]
        assert doc["computed"]["md5"] == _md5(media)
        assert doc["second_reader"]["agree"] is True, doc["second_reader"]


def test_udif_lzma_ulmo(tmp_path: Path) -> None:
    """LZMA chunks (type 0x80000008, xz streams: macOS's ULMO images), which libmodi's PyPI
    build reports as unsupported: our reader reads them first, equal to the media and to what
    7-Zip's dmg handler extracts; the image is not called corrupt; a damaged xz stream is
    (exit 1, naming the chunk's file offset); libmodi is the second reader only where it
    decodes LZMA."""
    require_tool("7zz")
    from builders.apple import LZMA

    media = _media()
    image = build_udif(tmp_path / "ulmo.dmg", media, LZMA)
    with open_image(image) as stream:
        assert stream.info.format == "dmg"
        assert stream.info.details["reader"] == "bitwitness"
        check_stream_contract(stream, media)
    # 7-Zip extracts the block table's data (its own CRC check of it may complain: the bytes
    # are what is compared here)
    subprocess.run(["7zz", "x", "-tdmg", f"-o{tmp_path / 'x'}", str(image)], check=False,
                   capture_output=True)
    (extracted,) = (tmp_path / "x").iterdir()
    assert _md5sum(extracted) == _md5(media)
    doc = run_bitwitness("verify", "--second-reader", image, "--json").json()["images"][0]
    assert doc["computed"]["md5"] == _md5(media)
    assert doc["verdict"] == "UNVERIFIED"
    if doc["second_reader"] is None:  # libmodi's PyPI build: the note says why
        assert any("LZMA chunks" in n for n in doc["notes"]), doc["notes"]
    else:
        assert doc["second_reader"]["agree"] is True, doc["second_reader"]
    data = bytearray(image.read_bytes())
    start = data.index(b"\xfd7zXZ\x00")
    data[start + 40:start + 48] = b"\xff" * 8  # inside the first xz stream's block
    image.write_bytes(data)
    res = run_bitwitness("verify", image)
    assert res.exit_code == ExitCode.EVIDENCE, res.stdout
    assert f"chunk at file offset {start} does not decode" in res.stdout + res.stderr
    assert "Traceback" not in res.stderr


def test_sparse_image_and_bundle(tmp_path: Path) -> None:
    """Sparse image and sparse bundle built from the description; the bundle opens from its
    folder or its Info.plist, absent (all-zero) bands read as zeros."""
    media = bytearray(_media())
    media[2 * MiB : 3 * MiB] = bytes(MiB)  # whole bands never written
    media = bytearray(media)
    sparse = build_sparseimage(tmp_path / "disk.sparseimage", bytes(media))
    bundle = build_sparsebundle(tmp_path / "disk.sparsebundle", bytes(media))
    assert not (bundle / "bands" / "10").exists()  # band 16 (2 MiB) was never written
    before = _state([sparse, *bundle.rglob("*")])
    for path, shown in ((sparse, "sparseimage"), (bundle, "sparsebundle"),
                        (bundle / "Info.plist", "sparsebundle")):
        with open_image(path) as stream:
            assert stream.info.format == shown
            check_stream_contract(stream, bytes(media))
    doc = run_bitwitness("info", bundle, "--json").json()
    assert doc["format"] == "sparsebundle"
    bands = {p.name for p in (bundle / "bands").iterdir()}
    assert {"0", "8"} <= bands
    assert {Path(f["path"]).name for f in doc["files"]} == {"Info.plist", *bands}
    assert _state([sparse, *bundle.rglob("*")]) == before


def test_sparse_bundle_of_many_bands(tmp_path: Path) -> None:
    """More band files than are kept open at once (a large disk's bundle has thousands): bands
    are opened again as they are read, and the media is exact."""
    from bitwitness.images import modi

    media = _media()
    bundle = build_sparsebundle(tmp_path / "many.sparsebundle", media, band_size=16 * 1024)
    assert len(list((bundle / "bands").iterdir())) > 2 * modi._OPEN_BANDS
    with open_image(bundle) as stream:
        check_stream_contract(stream, media)


#: Containers recognised by signature that BitWitness does not read: refused, never raw.
REFUSED = [
    ("afm", lambda p: p.write_bytes(b"AFM10\r\n\x00" + bytes(600)), "AFM"),
    ("gz", lambda p: p.write_bytes(b"\x1f\x8b\x08\x00" + bytes(600)), "gzip"),
    ("zip", lambda p: p.write_bytes(b"PK\x03\x04" + bytes(600) + b"PK\x05\x06" + bytes(18)),
     "ZIP"),
]


@pytest.mark.parametrize(("suffix", "make", "label"), REFUSED, ids=[r[0] for r in REFUSED])
def test_recognised_unreadable_containers_are_refused_by_name(tmp_path: Path, suffix: str,
                                                              make: object,
                                                              label: str) -> None:
    require_tool("qemu-img")
    image = tmp_path / f"evidence.{suffix}"
    make(image)  # type: ignore[operator]
    with pytest.raises(UnsupportedFormatError, match=label):
        detect(image)
    renamed = tmp_path / "evidence.dd"  # a raw-looking name changes nothing
    image.rename(renamed)
    for command in ("info", "verify", "partitions"):
        res = run_bitwitness(command, renamed)
        assert res.exit_code == ExitCode.USAGE, (command, res.stdout)
        assert label in res.stderr
        assert "cannot read" in res.stderr
        assert "Traceback" not in res.stderr
    forced = run_bitwitness("info", "--format", "raw", renamed, "--json")
    assert forced.exit_code == ExitCode.OK, forced.stderr
    assert forced.json()["format"] == "raw (forced with --format raw)"
    assert forced.json()["media_size"] == renamed.stat().st_size


def test_two_bytes_of_a_gzip_header_do_not_make_a_disk_gzip(tmp_path: Path) -> None:
    """Media that happens to start with 1f 8b (one random disk in 65,536) but not the deflate
    method byte RFC 1952 requires is raw; a real gzip file stays refused (exit 2)."""
    import gzip

    disk = tmp_path / "disk.img"
    disk.write_bytes(b"\x1f\x8b\x51" + _media()[3:])
    doc = run_bitwitness("info", disk, "--json")
    assert doc.exit_code == ExitCode.OK, doc.stderr
    assert doc.json()["format"] == "raw (no container signature)"
    packed = tmp_path / "disk.gz"
    packed.write_bytes(gzip.compress(b"media" * 1000))
    res = run_bitwitness("info", packed)
    assert res.exit_code == ExitCode.USAGE
    assert "gzip-compressed file" in res.stderr


def test_raw_is_only_what_has_no_container_signature(tmp_path: Path) -> None:
    image = tmp_path / "disk.img"
    image.write_bytes(_media())
    for command in ("info", "verify"):
        doc = run_bitwitness(command, image, "--json").json()
        fmt = doc["format"] if command == "info" else doc["images"][0]["format"]
        assert fmt == "raw (no container signature)"
    human = run_bitwitness("info", image)
    assert "raw (no container signature)" in human.stdout
    unknown = run_bitwitness("info", "--format", "nonsense", image)
    assert unknown.exit_code == ExitCode.USAGE
    assert "unknown format 'nonsense'" in unknown.stderr


def test_qcow2_compression_type_unknown_or_contradicted(tmp_path: Path,
                                                        media_file: Path) -> None:
    """A compression type QEMU does not define is refused naming it (exit 2); a type the
    feature bit contradicts is a corrupt header (exit 1); neither is read as something else."""
    require_tool("qemu-img")
    image = tmp_path / "z.qcow2"
    _qemu("convert", "-f", "raw", "-O", "qcow2", "-c", "-o", "compression_type=zstd",
          media_file, image)
    data = bytearray(image.read_bytes())
    assert data[104] == 1  # zstd, with the compression type bit (3) of the features at 72
    data[104] = 7
    image.write_bytes(data)
    res = run_bitwitness("info", image)
    assert res.exit_code == ExitCode.USAGE, res.stderr
    assert "compression type 7" in res.stderr
    data[104] = 1
    data[79] &= ~(1 << 3)
    image.write_bytes(data)
    res = run_bitwitness("info", image)
    assert res.exit_code == ExitCode.EVIDENCE, res.stderr
    assert "disagrees with the compression type feature bit" in res.stderr
    assert "Traceback" not in res.stderr


def _l2_pair(image: Path, cluster: int) -> int:
    """The file offset of guest ``cluster``'s extended L2 entry (128 bits) in ``image``."""
    from bitwitness.images.qcow import QcowStream

    stream = QcowStream(image)
    try:
        l2 = stream._l1[cluster >> stream.l2_bits] & 0x00FF_FFFF_FFFF_FE00
        return l2 + 16 * (cluster & (stream._l2_entries - 1))
    finally:
        stream.close()


def test_qcow2_subclusters_over_a_qcow2_backing_file(tmp_path: Path, media_file: Path) -> None:
    """Extended L2 entries: subclusters written, zeroed and left to the backing file, mixed
    inside clusters, read as QEMU reads them (qemu-img convert, and qemu-nbd as the second
    reader); the file ends inside its last host cluster (QEMU extends it only as far as the
    subclusters written), which the table check accepts."""
    require_tool("qemu-img", "qemu-io", "qemu-nbd")
    base = tmp_path / "base.qcow2"
    _qemu("convert", "-f", "raw", "-O", "qcow2", media_file, base)
    top = tmp_path / "top.qcow2"
    _qemu("create", "-f", "qcow2", "-o", "extended_l2=on,cluster_size=64k", "-b", base,
          "-F", "qcow2", top)
    writes = ["write -P 0xab 0 2k", "write -P 0xcd 6k 4k", "write -z 64k 8k",
              "write -z 192k 64k", "write -P 0x22 300k 100k", "write -z 1M 2k",
              "write -P 0x33 4092k 4k", "write -P 0x11 130k 2k"]
    subprocess.run(["qemu-io", *(a for w in writes for a in ("-c", w)), str(top)], check=True,
                   capture_output=True)
    expected, md5 = _qemu_raw(top, tmp_path)
    assert top.stat().st_size % (64 << 10)  # the last host cluster is cut short
    with open_image(top) as stream:
        assert stream.info.details["extended_l2"] is True
        check_stream_contract(stream, expected)
    result = run_bitwitness("verify", "--second-reader", top, "--json")
    doc = result.json()["images"][0]
    assert doc["computed"]["md5"] == md5
    assert doc["second_reader"]["agree"] is True, doc["second_reader"]
    assert all(c["ok"] for c in doc["container_checks"]), doc["container_checks"]


def test_qcow2_subcluster_allocated_and_zero_is_corrupt(tmp_path: Path) -> None:
    require_tool("qemu-img", "qemu-io")
    image = tmp_path / "s.qcow2"
    _qemu("create", "-f", "qcow2", "-o", "extended_l2=on", image, "1M")
    subprocess.run(["qemu-io", "-c", "write -P 0x5a 0 4k", str(image)], check=True,
                   capture_output=True)
    at = _l2_pair(image, 0) + 8
    data = bytearray(image.read_bytes())
    bitmap = int.from_bytes(data[at:at + 8], "big")
    assert bitmap & 1  # subcluster 0 allocated
    data[at:at + 8] = (bitmap | 1 << 32).to_bytes(8, "big")  # ... and marked zero
    image.write_bytes(data)
    res = run_bitwitness("verify", image)
    assert res.exit_code == ExitCode.EVIDENCE, res.stdout
    assert "marked both allocated and zero" in res.stdout + res.stderr
    assert "Traceback" not in res.stderr


def test_qcow2_external_data_file_stays_in_the_folder(tmp_path: Path, media_file: Path) -> None:
    """The data file the header names is looked for beside the image only (rule: nothing
    outside the evidence read); missing there, the image is refused naming it; a cluster the
    tables place off its guest offset is corrupt; the data file is one of the image's files
    and is left untouched."""
    require_tool("qemu-img", "md5sum")
    folder = tmp_path / "case"
    folder.mkdir()
    image = folder / "d.qcow2"
    _qemu("convert", "-f", "raw", "-O", "qcow2", "-o",
          f"data_file={tmp_path / 'elsewhere.data'}", media_file, image)
    res = run_bitwitness("info", image)  # the recorded path lies outside the folder
    assert res.exit_code != ExitCode.OK
    assert "elsewhere.data" in res.stderr
    assert "Traceback" not in res.stderr
    (tmp_path / "elsewhere.data").rename(folder / "elsewhere.data")
    files = [image, folder / "elsewhere.data"]
    before = _state(files)
    with open_image(image) as stream:
        assert list(stream.info.files) == files
        assert _md5(stream.pread(0, stream.size)) == _md5sum(media_file)
    assert _state(files) == before
    data = bytearray(image.read_bytes())
    from bitwitness.images.qcow import QcowStream

    stream = QcowStream(image)
    l2 = stream._l1[0] & 0x00FF_FFFF_FFFF_FE00
    stream.close()
    entry = int.from_bytes(data[l2:l2 + 8], "big")
    data[l2:l2 + 8] = (entry + (64 << 10)).to_bytes(8, "big")  # cluster 0 -> offset 64 KiB
    image.write_bytes(data)
    res = run_bitwitness("verify", image)
    assert res.exit_code == ExitCode.EVIDENCE
    assert "not to its guest offset" in res.stdout + res.stderr or (
        "is not the guest offset" in res.stdout + res.stderr)


def test_qcow2_over_a_raw_backing_file(tmp_path: Path, media_file: Path) -> None:
    require_tool("qemu-img", "qemu-io")
    base = tmp_path / "base.img"
    base.write_bytes(media_file.read_bytes()[: 3 * MiB])  # shorter than the overlay
    top = tmp_path / "top.qcow2"
    _qemu("create", "-f", "qcow2", "-b", base, "-F", "raw", top, "4M")
    subprocess.run(["qemu-io", "-c", "write -P 0x3c 2M 64k", str(top)], check=True,
                   capture_output=True)
    expected, _ = _qemu_raw(top, tmp_path)
    with open_image(top) as stream:
        assert list(stream.info.files) == [top, base]
        check_stream_contract(stream, expected)


def test_a_raw_backing_file_that_looks_like_qcow_stays_raw(tmp_path: Path) -> None:
    """The overlay records its backing file's format (-F raw): a guest that wrote a QCOW header
    to the start of its own raw disk does not turn that disk into a QCOW image, which could
    name a backing file of its own. QEMU reads it the same way."""
    require_tool("qemu-img")
    inner = tmp_path / "inner.qcow2"
    _qemu("create", "-f", "qcow2", inner, "1M")
    base = tmp_path / "base.img"
    base.write_bytes(inner.read_bytes().ljust(2 * MiB, b"\0"))
    top = tmp_path / "top.qcow2"
    _qemu("create", "-f", "qcow2", "-b", base, "-F", "raw", top, "2M")
    expected, _ = _qemu_raw(top, tmp_path)
    assert expected[:4] == b"QFI\xfb"
    with open_image(top) as stream:
        assert stream.read() == expected


def test_a_later_split_raw_piece_is_not_judged_by_its_own_first_bytes(tmp_path: Path) -> None:
    """x.002 starts mid-media, where a gzip stream may lie: the set is still split raw."""
    media = bytearray(_media())
    media[2 * MiB : 2 * MiB + 4] = b"\x1f\x8b\x08\x00"
    (tmp_path / "x.001").write_bytes(media[: 2 * MiB])
    (tmp_path / "x.002").write_bytes(media[2 * MiB :])
    with open_image(tmp_path / "x.002") as stream:
        assert stream.info.format == "split-raw"
        assert stream.read() == bytes(media)


def test_plaso_vsstest_qcow2(tmp_path: Path) -> None:
    """A real QCOW2 written by another project: its media matches the manifest's hashes (which
    are of ``qemu-img convert -O raw``)."""
    folder = SHARED / "fixtures" / "volumes"
    image = folder / "plaso_vsstest.qcow2"
    if not image.is_file():
        pytest.skip("../shared/fixtures/volumes is absent (plain clone)")
    expected = json.loads((folder / "manifest.json").read_text())["plaso_vsstest.qcow2"]
    before = _state([image])
    doc = run_bitwitness("verify", image, "--json").json()["images"][0]
    assert doc["format"] == "qcow2"
    assert doc["media_size"] == expected["media_size"]
    assert doc["computed"]["md5"] == expected["md5"]
    assert doc["computed"]["sha256"] == expected["sha256"]
    with open_image(image) as stream:
        assert stream.info.details["qcow_version"] in (2, 3)
        assert stream.pread(0, 3) == b"\xeb\x52\x90"  # the NTFS boot sector's jump
    assert _state([image]) == before


@pytest.mark.parametrize("kind", ["qcow2-compressed", "vhdx", "vmdk-streamOptimized", "dmg"])
def test_file_systems_inside_containers_are_browsed(tmp_path: Path, kind: str) -> None:
    """``ls`` inside a container lists what ``fls`` lists on the raw media it holds (before
    signature detection, these containers were read as raw and no file system was found)."""
    require_tool("qemu-img", "mkfs.vfat", "mcopy", "fls")
    raw = tmp_path / "fat.raw"
    subprocess.run(["mkfs.vfat", "-C", str(raw), "4096"], check=True, capture_output=True)
    note = tmp_path / "note.txt"
    note.write_text("inside a container\n")
    subprocess.run(["mcopy", "-i", str(raw), str(note), "::/NOTE.TXT"], check=True)
    if kind == "dmg":
        image = build_udif(tmp_path / "fat.dmg", raw.read_bytes())
    else:
        fmt, _, sub = kind.partition("-")
        image = tmp_path / f"fat.{fmt}"
        opts = {"compressed": ["-c"], "streamOptimized": ["-o", "subformat=streamOptimized"],
                "": []}[sub]
        _qemu("convert", "-f", "raw", "-O", fmt, *opts, raw, image)
    fls = subprocess.run(["fls", "-r", "-p", str(raw)], capture_output=True, text=True,
                         check=True).stdout
    listed = run_bitwitness("ls", "-r", "--json", image)
    assert listed.exit_code == ExitCode.OK, listed.stderr
    names = {e["path"].lstrip("/") for e in listed.json()["entries"]}
    assert "NOTE.TXT" in names
    assert names == {line.split("\t", 1)[1] for line in fls.splitlines()
                     if not line.split()[1].startswith("*")}
    cat = run_bitwitness("cat", image, "NOTE.TXT")
    assert cat.stdout == "inside a container\n"
    timeline = run_bitwitness("timeline", image)
    assert timeline.exit_code == ExitCode.OK, timeline.stderr
    assert "NOTE.TXT" in timeline.stdout
    for command in ("ls", "timeline"):  # the container's own bytes hold no file system
        forced = run_bitwitness(command, "--image-format", "raw", image)
        assert forced.exit_code != ExitCode.OK


def test_esxi_vmfs_descriptor(tmp_path: Path, media_file: Path) -> None:
    """An ESXi disk: a descriptor of createType "vmfs" naming a VMFS (flat) extent, as ESXi
    writes it beside NAME-flat.vmdk; QEMU reads the same descriptor as the reference."""
    require_tool("qemu-img", "qemu-nbd")
    flat = tmp_path / "esx-flat.vmdk"
    flat.write_bytes(media_file.read_bytes())
    sectors = flat.stat().st_size // 512
    descriptor = tmp_path / "esx.vmdk"
    descriptor.write_text(
        "# Disk DescriptorFile\nversion=1\nencoding=\"UTF-8\"\nCID=fffffffe\n"
        "parentCID=ffffffff\ncreateType=\"vmfs\"\n\n# Extent description\n"
        f"RW {sectors} VMFS \"esx-flat.vmdk\"\n\n# The Disk Data Base\n#DDB\n\n"
        'ddb.adapterType = "lsilogic"\nddb.virtualHWVersion = "13"\n')
    expected, md5 = _qemu_raw(descriptor, tmp_path, "vmdk")
    assert md5 == _md5sum(media_file)
    with open_image(descriptor) as stream:
        assert stream.info.format == "vmdk"
        assert list(stream.info.files) == [descriptor, flat]
        check_stream_contract(stream, expected)
    doc = run_bitwitness("verify", "--second-reader", descriptor, "--json").json()["images"][0]
    assert doc["second_reader"]["agree"] is True


@pytest.mark.parametrize("name", ["dfvfs_ext2.vhd", "dfvfs_ext2.vmdk"])
def test_third_party_virtual_disks_agree_with_libyal(third_party: Path, name: str) -> None:
    """dfVFS's VHD and VMDK (made by other tools; the VMDK's embedded descriptor still names the
    file it was first called): our reader and libvhdi/libvmdk give the same media."""
    doc = run_bitwitness("verify", "--second-reader", third_party / name,
                         "--json").json()["images"][0]
    check = doc["second_reader"]
    assert check is not None
    assert check["reader"].startswith(("libvhdi", "libvmdk"))
    assert check["agree"] is True, check["differences"]
    assert check["hashes"]["md5"] == doc["computed"]["md5"]


def _vhd_layer(path: Path, pattern: int, writes: list[tuple[str, str]], tmp: Path
               ) -> tuple[bytes, list[tuple[int, int]]]:
    """A dynamic 8 MiB VHD written by QEMU with ``pattern`` at each (offset, length): its media
    as QEMU reads it and the ranges it stores (``qemu-img map``)."""
    _qemu("create", "-f", "vpc", "-o", "force_size=on", path, "8M")
    commands = [arg for at, length in writes for arg in ("-c", f"write -P {pattern} {at} {length}")]
    subprocess.run(["qemu-io", "-f", "vpc", *commands, str(path)], check=True,
                   capture_output=True)
    raw, _ = _qemu_raw(path, tmp)
    mapping = json.loads(subprocess.run(["qemu-img", "map", "--output=json", str(path)],
                                        capture_output=True, text=True, check=True).stdout)
    return raw, [(e["start"], e["length"]) for e in mapping if e["data"]]


def test_differencing_vhd_chain_of_three(tmp_path: Path) -> None:
    """A child of a differencing parent of a dynamic grandparent: each sector comes from the
    nearest layer that stores it, as QEMU reads each layer's own blocks (``qemu-img map``);
    verify hashes that media and convert writes it."""
    require_tool("qemu-img", "qemu-io")
    grand, parent, child = (tmp_path / f"{n}.vhd" for n in ("grand", "parent", "child"))
    expected = bytearray(_vhd_layer(grand, 0x61, [("0", "6M")], tmp_path)[0])
    for layer, pattern, writes in ((parent, 0x62, [("1M", "2M"), ("7M", "512k")]),
                                   (child, 0x63, [("1536k", "3k"), ("5M", "1M")])):
        raw, stored = _vhd_layer(layer, pattern, writes, tmp_path)
        for start, length in stored:
            expected[start : start + length] = raw[start : start + length]
    make_differencing(parent, grand)
    make_differencing(child, parent)
    with open_image(child) as stream:
        assert list(stream.info.files) == [child, parent, grand]
        check_stream_contract(stream, bytes(expected))
    doc = run_bitwitness("verify", child, "--json").json()["images"][0]
    assert doc["computed"]["md5"] == _md5(bytes(expected))
    done = run_bitwitness("convert", child, "-o", tmp_path / "out", "--to", "raw")
    assert done.exit_code == 0, done.stderr
    assert (tmp_path / "out.raw").read_bytes() == bytes(expected)


def test_differencing_vhdx_chain_of_three(tmp_path: Path) -> None:
    """The same over VHDX (tests/builders/vhdx_differencing.py): the blocks each layer stores
    are its own, the rest its parent's."""
    from builders.vhdx_differencing import make_differencing as make_vhdx_differencing

    require_tool("qemu-img", "qemu-io")
    mib = 1 << 20
    layers = []
    for name, pattern, writes in (("grand", 0x61, ["0 6M"]),
                                  ("parent", 0x62, ["1M 2M", "7M 512k"]),
                                  ("child", 0x63, ["1536k 3k", "5M 1M"])):
        path = tmp_path / f"{name}.vhdx"
        _qemu("create", "-f", "vhdx", "-o", "block_size=1M", path, "8M")
        commands = [a for w in writes for a in ("-c", f"write -P {pattern} {w}")]
        subprocess.run(["qemu-io", "-f", "vhdx", *commands, str(path)], check=True,
                       capture_output=True)
        layers.append((path, _qemu_raw(path, tmp_path)[0]))
    (grand, expected_raw), (parent, parent_raw), (child, child_raw) = layers
    expected = bytearray(expected_raw)
    for (layer, raw), below in (((parent, parent_raw), grand), ((child, child_raw), parent)):
        for block in make_vhdx_differencing(layer, below):
            expected[block * mib : (block + 1) * mib] = raw[block * mib : (block + 1) * mib]
    with open_image(child) as stream:
        assert list(stream.info.files) == [child, parent, grand]
        check_stream_contract(stream, bytes(expected))
    done = run_bitwitness("convert", child, "-o", tmp_path / "out", "--to", "raw")
    assert done.exit_code == 0, done.stderr
    assert (tmp_path / "out.raw").read_bytes() == bytes(expected)


def test_qcow2_zstd_cluster_that_does_not_decompress(tmp_path: Path, media_file: Path) -> None:
    """A zstd cluster whose frame is damaged is a corrupt image naming the cluster, with its
    media offset (exit 1), never zeros or a traceback."""
    require_tool("qemu-img")
    from bitwitness.images.qcow import QcowStream

    image = tmp_path / "z.qcow2"
    _qemu("convert", "-f", "raw", "-O", "qcow2", "-c", "-o", "compression_type=zstd",
          media_file, image)
    stream = QcowStream(image)
    cluster = (MiB + 65536) // stream.cluster_size  # inside the repeated text: compressed
    entry, _ = stream._entry(cluster)
    offset = entry & ((1 << (62 - (stream.cluster_bits - 8))) - 1)
    stream.close()
    assert entry >> 62 & 1
    data = bytearray(image.read_bytes())
    data[offset:offset + 4] = b"\xde\xad\xbe\xef"  # the frame's magic number
    image.write_bytes(data)
    res = run_bitwitness("verify", image)
    assert res.exit_code == ExitCode.EVIDENCE, res.stdout
    assert f"zstd-compressed cluster {cluster} does not decompress" in res.stdout + res.stderr
    assert "Traceback" not in res.stderr


#: (format, header offset, undefined value, what the refusal says)
UNDEFINED_VALUES = [
    ("qcow2", 32, 7, "encryption method 7 (file offset 32) is none QEMU defines"),
    ("vdi", 0x4C, 9, "image type 9 (0x4C) is none VirtualBox defines"),
]


@pytest.mark.parametrize("case", UNDEFINED_VALUES, ids=["qcow2-crypt-method", "vdi-image-type"])
def test_undefined_header_values_are_damage_not_a_format(tmp_path: Path, media_file: Path,
                                                        case: tuple[str, int, int, str]) -> None:
    """A header value the format does not define (a QCOW2 encryption method past 2, a VDI
    image type past 4) is a damaged header, exit 1, not an unsupported variant (exit 2);
    qemu-img refuses the QCOW2 too (it does not read the VDI field at all)."""
    require_tool("qemu-img")
    kind, at, value, said = case
    image = tmp_path / f"d.{kind}"
    _qemu("convert", "-f", "raw", "-O", kind, media_file, image)
    data = bytearray(image.read_bytes())
    data[at:at + 4] = value.to_bytes(4, "big" if kind == "qcow2" else "little")
    image.write_bytes(data)
    if kind == "qcow2":
        theirs = subprocess.run(["qemu-img", "info", str(image)], capture_output=True,
                                check=False)
        assert theirs.returncode != 0
    res = run_bitwitness("info", image)
    assert res.exit_code == ExitCode.EVIDENCE, res.stderr
    assert said in res.stderr
    assert "Traceback" not in res.stderr


# --- containers of files, archives and compressed files: recognised, refused, never raw --------


def _tool_made(tmp: Path, kind: str) -> Path:
    """A sample written by the tool that makes the format (tar, lz4, lzip, wimlib's
    wimcapture), from a small folder of files."""
    tree = tmp / "tree"
    tree.mkdir(exist_ok=True)
    (tree / "a.txt").write_text("evidence\n" * 200)
    (tree / "b.bin").write_bytes(os.urandom(5000))
    payload = tmp / "payload.bin"
    payload.write_bytes(_media()[: 2 * MiB])
    out = tmp / f"sample.{kind}"
    commands = {
        "tar-gnu": ["tar", "-cf", out, "-C", tree, "."],
        "tar-posix": ["tar", "--format=posix", "-cf", out, "-C", tree, "."],
        "lz4": ["lz4", "-q", "-f", payload, out],
        "lz4-legacy": ["lz4", "-q", "-l", "-f", payload, out],
        "lzip": ["lzip", "-k", "-c", payload],
        "wim": ["wimcapture", tree, out],
        "esd": ["wimcapture", "--solid", tree, out],
        "wim-pipable": ["wimcapture", "--pipable", tree, out],
        "tar-v7": ["tar", "--format=v7", "-cf", out, "-C", tree, "."],
        "compress": ["compress", "-c", payload],
        "lzop": ["lzop", "-c", payload],
        "lrzip": ["lrzip", "-q", "-o", out, payload],
        "lzma": ["lzma", "-c", payload],
        "zlib": [sys.executable, "-c", "import sys, zlib; sys.stdout.buffer.write("
                 "zlib.compress(open(sys.argv[1], 'rb').read()))", payload],
        "ar": ["ar", "rc", out, payload],
        "cpio-newc": ["cpio"],
        "cpio-odc": ["cpio"],
    }
    args = [str(a) for a in commands[kind]]
    require_tool(args[0])
    if kind in ("cpio-newc", "cpio-odc"):
        require_tool("cpio")
        done = subprocess.run(["cpio", "-o", "-H", kind[5:]], input=b"payload.bin\n",
                              cwd=tmp, capture_output=True, check=False)
    else:
        done = subprocess.run(args, capture_output=True, check=False)
    assert done.returncode == 0, done.stderr
    if kind in ("lzip", "compress", "lzop", "lzma", "zlib", "cpio-newc", "cpio-odc"):
        out.write_bytes(done.stdout)  # written to stdout
    return out


def _built(tmp: Path, kind: str) -> Path:
    """A sample built from the format's published layout, where no tool on Debian writes it:
    AD1 (FTK Imager only: the segment header "ADSEGMENTEDFILE\\0", the logical image header
    "ADLOGICALIMAGE\\0\\0" at offset 512), RAR (non-free: the RAR 4 and RAR 5 signatures), an
    encrypted Apple disk image (hdiutil only: version 2 opens with "encrcdsa" and a big-endian
    version 2; version 1 ends with "cdsaencr"), an adb backup (adb and a phone: the text header
    "ANDROID BACKUP", version, compression flag and encryption, then a zlib stream)."""
    body = {
        "ad1": (b"ADSEGMENTEDFILE\x00" + struct.pack("<III", 512, 1, 0)).ljust(512, b"\0")
        + b"ADLOGICALIMAGE\x00\x00" + bytes(1000),
        "rar4": b"Rar!\x1a\x07\x00" + bytes(1000),
        "rar5": b"Rar!\x1a\x07\x01\x00" + bytes(1000),
        "dmg-encrypted-v2": b"encrcdsa" + struct.pack(">I", 2) + bytes(4000),
        "dmg-encrypted-v1": os.urandom(4096) + bytes(1268) + b"cdsaencr",
        "android-backup": b"ANDROID BACKUP\n5\n1\nnone\n" + zlib.compress(b"apps/" * 500),
    }[kind]
    out = tmp / f"sample.{kind}"
    out.write_bytes(body)
    return out


FILE_CONTAINERS = [
    ("tar-gnu", _tool_made, "tar archive"),
    ("tar-posix", _tool_made, "tar archive"),
    ("lz4", _tool_made, "lz4-compressed file"),
    ("lz4-legacy", _tool_made, "lz4-compressed file (legacy frame"),
    ("lzip", _tool_made, "lzip-compressed file"),
    ("wim", _tool_made, "Windows Imaging archive"),
    ("esd", _tool_made, "Windows Imaging archive"),
    ("wim-pipable", _tool_made, "Windows Imaging archive (pipable"),
    ("tar-v7", _tool_made, "tar archive"),
    ("compress", _tool_made, "compress (.Z) file"),
    ("lzop", _tool_made, "lzop-compressed file"),
    ("lrzip", _tool_made, "lrzip-compressed file"),
    ("lzma", _tool_made, "lzma-compressed file"),
    ("zlib", _tool_made, "zlib-compressed file"),
    ("ar", _tool_made, "ar archive"),
    ("cpio-newc", _tool_made, "cpio archive"),
    ("cpio-odc", _tool_made, "cpio archive"),
    ("ad1", _built, "AccessData AD1 logical image"),
    ("rar4", _built, "RAR archive"),
    ("rar5", _built, "RAR archive (version 5"),
    ("dmg-encrypted-v2", _built, "encrypted Apple disk image"),
    ("dmg-encrypted-v1", _built, "encrypted Apple disk image (version 1"),
    ("android-backup", _built, "Android backup"),
]


@pytest.mark.parametrize(("kind", "make", "label"), FILE_CONTAINERS,
                         ids=[c[0] for c in FILE_CONTAINERS])
def test_file_containers_are_refused_by_name_not_taken_for_raw(tmp_path: Path, kind: str,
                                                               make: Any, label: str) -> None:
    sample = make(tmp_path, kind)
    evidence = tmp_path / "evidence.dd"  # a raw-looking name changes nothing
    sample.rename(evidence)
    with pytest.raises(UnsupportedFormatError, match=re.escape(label)):
        detect(evidence)
    for command in ("info", "verify", "ls"):
        res = run_bitwitness(command, evidence)
        assert res.exit_code == ExitCode.USAGE, (command, res.stdout)
        assert len(res.stderr.strip().splitlines()) == 1, res.stderr
        assert label in res.stderr
        assert "cannot read" in res.stderr


def _bad_tar_checksum() -> bytes:
    """A v7 tar header (name, mode, sizes) whose checksum field is one off."""
    header = bytearray(512)
    header[:8] = b"disk.dd\x00"
    header[100:108] = b"0000644\x00"
    header[124:136] = b"00000000000\x00"
    header[148:156] = b" " * 8
    header[148:155] = f"{sum(header) + 1:06o}\x00".encode()
    return bytes(header)


def test_near_misses_of_the_file_container_magics_stay_raw(tmp_path: Path) -> None:
    """The bytes beside a short magic are checked: an lz4 magic without the frame version
    bits, "LZIP" with a version lzip never wrote, "ustar" not followed by NUL or a space, are
    disk data, read as raw."""
    base = _media()[: MiB]
    for name, head in (("lz4", b"\x04\x22\x4d\x18\x00"), ("lzip", b"LZIP\x07"),
                       ("tar", base[:257] + b"ustarX"),
                       # compress with a code width it never writes; lrzip of version 9
                       ("compress", b"\x1f\x9d\x91"), ("lrzip", b"LRZI\x09"),
                       # a zlib header and an lzma one whose bytes after do not decode
                       ("zlib", b"\x78\x9c\xff\xff\xff\xff"),
                       ("lzma", b"\x5d\x00\x00\x80\x00" + b"\xff" * 8 + b"\xff\xff\xff"),
                       # a tar header whose checksum is wrong
                       ("tar-v7", _bad_tar_checksum())):
        disk = tmp_path / f"{name}.img"
        disk.write_bytes(head + base[len(head):])
        doc = run_bitwitness("info", disk, "--json")
        assert doc.exit_code == ExitCode.OK, doc.stderr
        assert doc.json()["format"] == "raw (no container signature)"


def test_an_android_sparse_image_named_raw_is_read_as_sparse(tmp_path: Path) -> None:
    require_tool("img2simg")
    raw = tmp_path / "media.raw"
    raw.write_bytes(_media())
    image = tmp_path / "system.dd"
    subprocess.run(["img2simg", str(raw), str(image)], check=True, capture_output=True)
    doc = run_bitwitness("info", image, "--json")
    assert doc.exit_code == ExitCode.OK, doc.stderr
    assert doc.json()["format"] == "android-sparse"
    assert doc.json()["media_size"] == raw.stat().st_size


@pytest.mark.parametrize("name", ["empty.vhd", "empty.vmdk"])
def test_an_empty_vhd_or_vmdk_says_it_is_empty(tmp_path: Path, name: str) -> None:
    """An empty x.vhd or x.vmdk (a failed copy) is damaged evidence as an empty E01 is (exit
    1); libvhdi's and libvmdk's own words were "unable to read file information data at
    offset: 0", which named neither the emptiness nor the format."""
    image = tmp_path / name
    image.write_bytes(b"")
    for command in ("info", "ls"):
        res = run_bitwitness(command, image)
        assert res.exit_code == ExitCode.EVIDENCE, (command, res.stdout)
        assert len(res.stderr.strip().splitlines()) == 1, res.stderr
        assert "empty file (0 bytes)" in res.stderr
        assert name.rsplit(".", 1)[1].upper() in res.stderr
