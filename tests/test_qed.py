"""QED images (QEMU enhanced disk): our reader against ``qemu-img convert``'s media, QEMU as
the second reader, backing chains, and headers and tables that lie (one line, a typed error,
exit 1 or 2, never a read outside the file or memory the header asks for).

The images are written by ``qemu-img`` and ``qemu-io``, then changed field by field (offsets
from the header layout in bitwitness/images/qed.py and QEMU's docs/interop/qed_spec.rst).
"""

from __future__ import annotations

import hashlib
import resource
import struct
import subprocess
from pathlib import Path

import pytest
from conftest import make_disk_bytes, require_tool, run_bitwitness

from bitwitness.errors import CorruptImageError, ExitCode, UnsupportedFormatError
from bitwitness.image import detect, open_image
from bitwitness.images.qed import QedStream, qed_checks

_CLUSTER_AT, _TABLE_AT, _HEADER_AT, _FEATURES_AT = 4, 8, 12, 16
_L1_AT, _MEDIA_AT, _NAME_AT, _NAME_SIZE_AT = 40, 48, 56, 60


def _qemu_img(*args: str | Path) -> None:
    subprocess.run(["qemu-img", *map(str, args)], check=True, capture_output=True, timeout=120)


def _qemu_io(image: Path, *commands: str) -> None:
    require_tool("qemu-io")
    argv: list[str] = ["qemu-io"]
    for command in commands:
        argv += ["-c", command]
    subprocess.run([*argv, str(image)], check=True, capture_output=True, timeout=120)


def _qemu_media(image: Path) -> bytes:
    """The media as QEMU reads it (``qemu-img convert -O raw``)."""
    out = image.with_suffix(".qemu.raw")
    _qemu_img("convert", "-O", "raw", image, out)
    try:
        return out.read_bytes()
    finally:
        out.unlink()


def _ours(image: Path) -> bytes:
    with open_image(image) as stream:
        return stream.pread(0, stream.size)


def _qed(tmp_path: Path, media: bytes, *options: str) -> Path:
    require_tool("qemu-img")
    raw = tmp_path / "media.raw"
    raw.write_bytes(media)
    image = tmp_path / "disk.qed"
    _qemu_img("convert", "-f", "raw", "-O", "qed", *options, raw, image)
    raw.unlink()
    return image


def _patch(image: Path, at: int, fmt: str, value: int) -> None:
    data = bytearray(image.read_bytes())
    struct.pack_into(fmt, data, at, value)
    image.write_bytes(bytes(data))


def _field(image: Path, at: int, fmt: str) -> int:
    return int(struct.unpack_from(fmt, image.read_bytes(), at)[0])


@pytest.mark.parametrize("options", [[], ["-o", "cluster_size=4096,table_size=2"],
                                     ["-o", "cluster_size=1M,table_size=16"]],
                         ids=["default", "4k-clusters", "1m-clusters"])
@pytest.mark.parametrize("size", [3 << 20, (3 << 20) + 512], ids=["whole", "part-cluster"])
def test_media_equals_qemus(tmp_path: Path, options: list[str], size: int) -> None:
    media = make_disk_bytes(size, seed=7)  # zeros, random and text: clusters QEMU leaves out
    image = _qed(tmp_path, media, *options)
    assert (detect(image).format.name, detect(image).by) == ("qed", "magic")
    assert _ours(image) == _qemu_media(image) == media
    checks = qed_checks(image)
    assert [c.ok for c in checks] == [True], checks


def test_verify_and_convert_through_the_cli(tmp_path: Path) -> None:
    media = make_disk_bytes(2 << 20, seed=8)
    image = _qed(tmp_path, media)
    done = run_bitwitness("verify", "--second-reader", image, "--json")
    assert done.exit_code == ExitCode.EVIDENCE, done.stderr  # nothing recorded: UNVERIFIED
    doc = done.json()["images"][0]
    assert doc["verdict"] == "UNVERIFIED"
    assert doc["format"] == "qed"
    assert doc["computed"]["md5"] == hashlib.md5(media).hexdigest()  # noqa: S324
    assert doc["second_reader"]["agree"] is True
    assert doc["second_reader"]["reader"].startswith("qemu-nbd")
    assert [c["ok"] for c in doc["container_checks"]] == [True]
    out = tmp_path / "out"
    converted = run_bitwitness("convert", image, "-o", out, "--to", "raw")
    assert converted.exit_code in (ExitCode.OK, ExitCode.EVIDENCE), converted.stderr
    assert (tmp_path / "out.raw").read_bytes() == media


def test_backing_chain_with_zero_clusters(tmp_path: Path) -> None:
    """A raw base, a QED over it (written clusters, a cluster written as zeros, which hides
    the base's, the rest left to the base), a QED over that: each as QEMU reads it; QEMU, given
    the chain our reader found, agrees; the chain's files are the image's."""
    require_tool("qemu-img", "qemu-nbd")
    base = tmp_path / "base.raw"
    base.write_bytes(make_disk_bytes(4 << 20, seed=9))
    middle, top = tmp_path / "middle.qed", tmp_path / "top.qed"
    _qemu_img("create", "-f", "qed", "-b", base.name, "-F", "raw", middle)
    _qemu_io(middle, "write -P 0xab 1M 64k", "write -z 2M 128k")
    _qemu_img("create", "-f", "qed", "-b", middle.name, "-F", "qed", top)
    _qemu_io(top, "write -P 0xcd 3M 4k")
    for image, files in ((middle, [middle, base]), (top, [top, middle, base])):
        media = _qemu_media(image)
        assert _ours(image) == media
        assert media[2 << 20:(2 << 20) + (128 << 10)] == bytes(128 << 10)
        assert media != base.read_bytes()
        with open_image(image) as stream:
            assert list(stream.info.files) == files
        done = run_bitwitness("verify", "--second-reader", image, "--json")
        doc = done.json()["images"][0]
        assert doc["second_reader"]["agree"] is True, doc["second_reader"]
        assert doc["computed"]["md5"] == hashlib.md5(media).hexdigest()  # noqa: S324


def test_a_missing_backing_file_is_named(tmp_path: Path) -> None:
    require_tool("qemu-img")
    base = tmp_path / "base.raw"
    base.write_bytes(bytes(1 << 20))
    image = tmp_path / "over.qed"
    _qemu_img("create", "-f", "qed", "-b", base.name, "-F", "raw", image)
    base.unlink()
    done = run_bitwitness("info", image)
    assert done.exit_code == ExitCode.USAGE
    assert "base.raw" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


HEADERS = [
    ("cluster size not a power of two", _CLUSTER_AT, "<I", 3 << 16, "cluster size"),
    ("cluster size too small", _CLUSTER_AT, "<I", 2048, "cluster size"),
    ("cluster size too large", _CLUSTER_AT, "<I", 1 << 27, "cluster size"),
    ("table size 32", _TABLE_AT, "<I", 32, "table size"),
    ("no header clusters", _HEADER_AT, "<I", 0, "header of 0 clusters"),
    ("L1 table past the end", _L1_AT, "<Q", 1 << 40, "L1 table"),
    ("L1 table misaligned", _L1_AT, "<Q", (64 << 10) + 8, "L1 table"),
    ("L1 table in the header", _L1_AT, "<Q", 0, "L1 table"),
    ("media larger than the tables map", _MEDIA_AT, "<Q", 1 << 62, "more than its tables"),
    ("media not whole sectors", _MEDIA_AT, "<Q", (1 << 20) + 1, "multiple of 512"),
]


@pytest.mark.parametrize(("at", "fmt", "value", "said"), [h[1:] for h in HEADERS],
                         ids=[h[0] for h in HEADERS])
def test_lying_headers_are_one_line_corrupt_errors(tmp_path: Path, at: int, fmt: str,
                                                   value: int, said: str) -> None:
    image = _qed(tmp_path, make_disk_bytes(1 << 20, seed=10))
    _patch(image, at, fmt, value)
    with pytest.raises(CorruptImageError, match=said):
        QedStream(image)
    info = run_bitwitness("info", image)
    assert info.exit_code == ExitCode.EVIDENCE, info.stderr
    assert said in info.stderr
    assert len(info.stderr.strip().splitlines()) == 1
    verify = run_bitwitness("verify", image)
    assert verify.exit_code == ExitCode.EVIDENCE, verify.stderr
    assert "CORRUPT" in verify.stdout


def test_unknown_feature_bits_are_refused(tmp_path: Path) -> None:
    """The specification: an image with feature bits a reader does not know must not be
    opened (exit 2, naming the bits)."""
    image = _qed(tmp_path, make_disk_bytes(1 << 20, seed=11))
    _patch(image, _FEATURES_AT, "<Q", 0x10)
    with pytest.raises(UnsupportedFormatError, match="0x10"):
        QedStream(image)
    done = run_bitwitness("info", image)
    assert done.exit_code == ExitCode.USAGE
    assert "0x10" in done.stderr


def test_needs_check_is_shown(tmp_path: Path) -> None:
    """QEMU sets the "needs check" bit while it writes and clears it on a clean close: an
    image copied from a running or crashed VM holds it. It is read, and ``info`` says so."""
    media = make_disk_bytes(1 << 20, seed=12)
    image = _qed(tmp_path, media)
    _patch(image, _FEATURES_AT, "<Q", 0x02)
    assert _ours(image) == media
    done = run_bitwitness("info", image, "--json")
    assert done.exit_code == ExitCode.OK, done.stderr
    assert done.json()["details"]["needs_check"] is True


def test_a_backing_name_outside_the_header_is_refused(tmp_path: Path) -> None:
    require_tool("qemu-img")
    (tmp_path / "base.raw").write_bytes(bytes(1 << 20))
    image = tmp_path / "over.qed"
    _qemu_img("create", "-f", "qed", "-b", "base.raw", "-F", "raw", image)
    _patch(image, _NAME_AT, "<I", 0xFFFF_FF00)
    with pytest.raises(CorruptImageError, match="backing file name"):
        QedStream(image)


def _l1_entry_at(image: Path, index: int) -> int:
    return _field(image, _L1_AT, "<Q") + 8 * index


def test_an_l2_table_past_the_file_is_a_read_error_and_a_failed_check(tmp_path: Path) -> None:
    image = _qed(tmp_path, make_disk_bytes(1 << 20, seed=13))
    _patch(image, _l1_entry_at(image, 0), "<Q", 1 << 40)
    with pytest.raises(CorruptImageError, match="L2 table 0"), open_image(image) as stream:
        stream.pread(0, 4096)
    [check] = qed_checks(image)
    assert not check.ok
    assert "L1 entry 0" in check.detail
    verify = run_bitwitness("verify", image)
    assert verify.exit_code == ExitCode.EVIDENCE
    assert "L2 table" in verify.stdout


def test_a_cluster_named_twice_fails_the_check(tmp_path: Path) -> None:
    """Two guest clusters reading one file cluster: damage or tampering. The reader reads what
    the tables say (as QEMU does); the check names both entries' places."""
    media = make_disk_bytes(1 << 20, seed=14)
    image = _qed(tmp_path, media)
    l2_at = _field(image, _l1_entry_at(image, 0), "<Q")
    first = _field(image, l2_at, "<Q")
    assert first > 1
    _patch(image, l2_at + 8, "<Q", first)  # guest cluster 1 -> guest cluster 0's data
    [check] = qed_checks(image)
    assert not check.ok
    assert f"L2 entry 1 of table 0 (file offset {l2_at + 8})" in check.detail
    assert _ours(image) == _qemu_media(image)  # both readers follow the tables
    verify = run_bitwitness("verify", image)
    assert verify.exit_code == ExitCode.EVIDENCE
    assert "CORRUPT" in verify.stdout


def test_a_misaligned_data_offset_is_refused(tmp_path: Path) -> None:
    image = _qed(tmp_path, make_disk_bytes(1 << 20, seed=15))
    l2_at = _field(image, _l1_entry_at(image, 0), "<Q")
    _patch(image, l2_at, "<Q", _field(image, l2_at, "<Q") + 512)
    with pytest.raises(CorruptImageError, match="guest cluster 0"), \
            open_image(image) as stream:
        stream.pread(0, 512)


def test_declared_gigabyte_tables_cost_nothing(tmp_path: Path) -> None:
    """64 MiB clusters and 16-cluster tables (1 GiB per table) over a huge media, in a file
    holding one such table: opening and reading a cluster read a page of each table, and
    memory stays far below a table's size."""
    cluster, table = 64 << 20, 16
    header = struct.pack("<4sIIIQQQQQII", b"QED\0", cluster, table, 1, 0, 0, 0, cluster,
                         1 << 50, 0, 0)
    image = tmp_path / "huge.qed"
    with image.open("wb") as fh:
        fh.write(header)
        fh.truncate(cluster + cluster * table)  # sparse: the L1 table reads as zeros
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with open_image(image) as stream:
        assert stream.size == 1 << 50
        assert stream.pread((1 << 49) + 12345, 4096) == bytes(4096)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 64 << 10  # KiB


def test_one_l2_table_named_by_every_l1_entry_is_walked_once(tmp_path: Path) -> None:
    """A crafted L1 whose entries all name one L2 table: the check says so and walks that
    table once (each L1 entry walking it again would cost the table's size per entry)."""
    import time

    image = _qed(tmp_path, make_disk_bytes(1 << 20, seed=16), "-o",
                 "cluster_size=4096,table_size=16")
    l1_at = _field(image, _L1_AT, "<Q")
    l2_at = _field(image, l1_at, "<Q")
    entries = 16 * 4096 // 8
    data = bytearray(image.read_bytes())
    struct.pack_into(f"<{entries}Q", data, l1_at, *([l2_at] * entries))
    struct.pack_into("<Q", data, _MEDIA_AT, entries * entries * 4096)  # every entry maps media
    image.write_bytes(bytes(data))
    started = time.process_time()
    [check] = qed_checks(image)
    assert time.process_time() - started < 30
    assert not check.ok
    # one problem an L1 entry after the first, none for the data clusters walked once
    assert f"{entries - 1} problems" in check.detail
    assert f"L1 entry 1 (file offset {l1_at + 8})" in check.detail
