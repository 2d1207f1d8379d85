"""Hostile images (issue 14): every case ends in a verdict or one line, in bounded memory and time.

Each image is built by :mod:`hostile_images` (a committed script) and opened with ``info`` and
``verify`` in a real process, whose peak memory is measured by the kernel (``ru_maxrss`` of the
child). Without bounds these cases took 3 GB and more, or died with exit 3.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import hostile_images as hostile
import pytest
from conftest import require_tool, snapshot

#: The memory every command must stay under, whatever the image claims.
MAX_RSS = 300 << 20

#: Per case: exit codes of (info, verify) and what the message must say about where.
EXPECTED: dict[str, tuple[int, int, str]] = {
    "e01-header2-bomb": (0, 1, "header2 section of header2-bomb.E01 at file offset 13"),
    "e01-chunk-bomb": (0, 1, "bad chunk 0: sectors 0-32767"),
    "e01-chunk-1gib": (1, 1, "2097152 sectors of 512 bytes per chunk"),
    "e01-spc-2p31": (1, 1, "2147483648 sectors of 512 bytes per chunk"),
    "e01-table-base": (1, 1, "base offset 18446744073709551615 lies beyond the end"),
    "vmdk-gtes": (1, 1, "4294967295 GTEs per GT"),
    "vmdk-grain-bomb": (0, 1, "compressed grain 0 claims 2123784 stored bytes"),
    "vmdk-grain-overflow": (0, 1, "compressed grain 0 inflates to more than its 65536 bytes"),
    "vmdk-grain-marker-zero": (0, 1, "grain 0 points at a marker of 0 stored bytes"),
    "vmdk-gd-offset": (1, 1, "grain directory at byte 9444732965739290426368"),
    "vmdk-capacity": (1, 1, "grain directory at byte 512 (+1099511627776 bytes) runs past"),
    "vmdk-capacity-max": (1, 1, "declares 18446744073709551615 sectors"),
    "vmdk-extent-passwd": (2, 2, "'/etc/passwd' is an absolute path"),
    "vmdk-extent-parent": (2, 2, "'../other.E01' leaves the image's folder"),
    "vhd-table-offset": (1, 1, "block allocation table at byte 18446744073709551615"),
    "vhd-huge-size": (1, 1, "4294967295 entries; 2199023255552 are needed"),
    "vhd-block-size": (1, 1, "VHD block size 2147483648 is not a power of two"),
    "vhd-beyond-2040": (1, 1, "4398046511104 bytes of media, more than the 2190433320960"),
    "vhd-sparse-2040": (0, 2, "pass --max-media 2190433320960 to read it whole"),
    "vmdk-grain-size": (1, 1, "grain size 2048 sectors"),
    "vmdk-sparse-8tib": (0, 2, "pass --max-media 8796093022208 to read it whole"),
    "vmdk-extent-beyond-capacity": (1, 1, "gives this sparse extent 562949953421312 bytes"),
    "vmdk-zero-extent": (0, 2, "declares 562949953421312 bytes of media"),
    "vmdk-sesparse-capacity": (1, 1, "SEsparse grain directory at byte 1024 (+268435456 bytes) "
                                     "runs past"),
    "vmdk-sesparse-1tib": (0, 2, "pass --max-media 1099511627776 to read it whole"),
    "l01-ltree-256mib": (2, 2, "declares 268435456 bytes of file list (ltree)"),
    "lx01-ltree-256mib": (2, 2, "declares 268435456 bytes of file list (ltree)"),
    "l01-ltree-dense": (2, 2, "holds 2000029 lines"),
    "parallels-bat-64m": (0, 2, "pass --max-media 70368744177664 to read it whole"),
    "parallels-bat-past-end": (1, 1, "table of 67108864 entries (268435456 bytes) runs past"),
    "afd-many-files": (2, 2, "holds more than 16384 .aff files"),
}

#: Seconds any command may take on these small files, whatever they declare (a whole-media
#: read of what they claim would take hours).
MAX_SECONDS = 30

_MEASURE = (
    "import resource, subprocess, sys\n"
    "p = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
    "import json\n"
    "print(json.dumps([p.returncode, p.stdout, p.stderr,\n"
    "                  resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024]))\n"
)


def run_measured(*args: str | os.PathLike[str]) -> tuple[int, str, str, int]:
    """Run ``bitwitness ARGS`` in a fresh process; exit code, stdout, stderr, peak RSS (bytes)."""
    out = subprocess.run(
        [sys.executable, "-c", _MEASURE, sys.executable, "-m", "bitwitness",
         *map(os.fspath, args)], capture_output=True, text=True, timeout=120, check=True)
    code, stdout, stderr, rss = json.loads(out.stdout)
    return code, stdout, stderr, rss


def test_every_case_is_covered() -> None:
    assert set(EXPECTED) == set(hostile.BUILDERS)


@pytest.mark.parametrize("case", sorted(hostile.BUILDERS))
def test_hostile_image(case: str, tmp_path: Path) -> None:
    image = hostile.BUILDERS[case](tmp_path)
    info_code, verify_code, where = EXPECTED[case]
    evidence = [p for p in tmp_path.rglob("*") if p.is_file()]
    before = snapshot(evidence)
    for command, expected in (("info", info_code), ("verify", verify_code)):
        started = time.monotonic()
        code, stdout, stderr, rss = run_measured(command, image)
        assert time.monotonic() - started < MAX_SECONDS, command
        assert code == expected, (command, stdout, stderr)
        assert "internal error" not in stderr
        assert "Traceback" not in stderr
        assert rss < MAX_RSS, f"{command} peaked at {rss >> 20} MiB"
        if code == 2 or (code == 1 and command == "info"):
            assert len(stderr.strip().splitlines()) == 1, stderr  # one line, no traceback
            assert where in stderr
        if command == "verify" and code == 1:
            assert "verdict: CORRUPT" in stdout
            assert where in stdout
        if case == "e01-header2-bomb" and command == "info":
            assert where in stdout  # the damaged header2 is shown, not passed over
    assert snapshot(evidence) == before


def test_vmdk_extent_outside_folder_needs_part(tmp_path: Path) -> None:
    """An extent outside the descriptor's folder is read only when the examiner names it."""
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    media = outside / "disk-flat.bin"
    media.write_bytes(os.urandom(4096))
    image = tmp_path / "case" / "disk.vmdk"
    image.parent.mkdir()
    image.write_text('# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\n'
                     'createType="monolithicFlat"\n'
                     f'RW 8 FLAT "{media}" 0\n')
    code, _out, err, _rss = run_measured("info", image)
    assert code == 2
    assert "is an absolute path" in err
    code, out, err, _rss = run_measured("--part", media, "info", "--json", image)
    assert code == 0, err
    files = [f["path"] if isinstance(f, dict) else f for f in json.loads(out)["files"]]
    assert str(media) in files
    assert str(image) in files


def test_vmdk_extent_symlink_out_of_folder(tmp_path: Path) -> None:
    """An extent name inside the folder that is a link to a file elsewhere is refused too."""
    secret = tmp_path / "secret.bin"
    secret.write_bytes(bytes(1024))
    folder = tmp_path / "img"
    folder.mkdir()
    (folder / "d-flat.vmdk").symlink_to(secret)
    image = folder / "d.vmdk"
    image.write_text('# Disk DescriptorFile\nversion=1\nparentCID=ffffffff\n'
                     'createType="monolithicFlat"\nRW 2 FLAT "d-flat.vmdk" 0\n')
    code, _out, err, _rss = run_measured("verify", image)
    assert code == 2
    assert "outside the image's folder" in err


def test_split_piece_that_is_a_device_is_refused(tmp_path: Path) -> None:
    """A split piece that is a link to a device (or leaves the folder) is never read."""
    first = tmp_path / "x.001"
    first.write_bytes(bytes(4096))
    (tmp_path / "x.002").symlink_to("/dev/zero")
    code, _out, err, _rss = run_measured("verify", first)
    assert code == 2, err
    assert "x.002" in err
    assert "outside the image's folder" in err


def test_split_piece_fifo_is_refused(tmp_path: Path) -> None:
    first = tmp_path / "y.001"
    first.write_bytes(bytes(4096))
    os.mkfifo(tmp_path / "y.002")
    code, _out, err, _rss = run_measured("info", first)
    assert code == 2
    assert "not a regular file" in err


def test_info_lists_every_extent_like_qemu_img(tmp_path: Path) -> None:
    """``info`` names every file that contributes bytes, the same files qemu-img reads."""
    require_tool("qemu-img")
    image = tmp_path / "split.vmdk"
    subprocess.run(["qemu-img", "create", "-q", "-f", "vmdk", "-o",
                    "subformat=twoGbMaxExtentSparse", str(image), "5G"], check=True)
    qemu = json.loads(subprocess.run(["qemu-img", "info", "--output=json", str(image)],
                                     capture_output=True, text=True, check=True).stdout)
    theirs = {str(Path(e["filename"]).resolve())
              for e in qemu["format-specific"]["data"]["extents"]}
    code, out, err, _rss = run_measured("info", "--json", image)
    assert code == 0, err
    ours = {str(Path(f["path"] if isinstance(f, dict) else f).resolve())
            for f in json.loads(out)["files"]}
    assert theirs <= ours
    assert ours - theirs <= {str(image.resolve())}
    assert len(theirs) == 3


def test_zlib_bomb_builder_is_a_valid_stream() -> None:
    """The builder's bomb is what it says (checked on a small one with zlib itself)."""
    import zlib

    assert zlib.decompress(hostile.zlib_bomb(3)) == bytes(3 << 20)


def test_e01_builder_is_read_by_libewf(tmp_path: Path) -> None:
    """The E01 builder writes sets ewfverify accepts: the hostile ones differ only where meant."""
    require_tool("ewfverify")
    import hashlib

    data = bytes(range(256)) * 128
    image = hostile.e01(tmp_path / "plain.E01", [hostile.raw_chunk(data)])
    out = subprocess.run(["ewfverify", "-q", str(image)], capture_output=True, text=True,
                         check=False)
    assert out.returncode == 0, out.stderr
    assert hashlib.md5(data, usedforsecurity=False).hexdigest() in out.stdout


def test_resource_limits_are_real() -> None:
    """``ru_maxrss`` is in KiB on Linux (the factor used by run_measured)."""
    assert sys.platform.startswith("linux")
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss < (64 << 30) // 1024


def _three_segments(tmp_path: Path) -> Path:
    source = tmp_path / "src.raw"
    source.write_bytes(os.urandom(3 << 20))
    base = tmp_path / "set" / "disk"
    base.parent.mkdir()
    code, _out, err, _rss = run_measured("acquire", source, "-o", base, "--compress", "none",
                                         "--segment-size", "1MiB")
    assert code == 0, err
    assert (base.parent / "disk.E03").is_file()
    return base.parent / "disk.E01"


def test_e01_segment_linked_out_of_folder_is_refused(tmp_path: Path) -> None:
    """A segment of the set that is a link to another folder is not read (one line, exit 2);
    named with --part it is, and the set verifies."""
    first = _three_segments(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    second = first.with_suffix(".E02")
    moved = elsewhere / "disk.E02"
    second.rename(moved)
    second.symlink_to(moved)
    code, _out, err, _rss = run_measured("verify", first)
    assert code == 2
    assert "disk.E02" in err
    assert "outside the image's folder" in err
    code, out, err, _rss = run_measured("--part", second, "verify", first)
    assert code == 0, (out, err)
    assert "VERIFIED" in out


def test_e01_segment_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    first = _three_segments(tmp_path)
    second = first.with_suffix(".E02")
    second.unlink()
    os.mkfifo(second)
    code, _out, err, _rss = run_measured("info", first)
    assert code == 1  # not a segment: the set is missing one (and nothing waited on the FIFO)
    assert "segment disk.E02 of 4 is missing" in err


def test_image_named_as_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "evidence.E01"
    os.mkfifo(fifo)
    code, _out, err, _rss = run_measured("verify", fifo)
    assert code == 2
    assert "FIFO" in err


def test_split_set_of_more_pieces_than_descriptors(tmp_path: Path) -> None:
    """A set of 1 500 pieces (more than the usual limit of 1 024 open files) verifies, with
    the hash md5sum computes over the pieces concatenated."""
    import hashlib

    media = os.urandom(1500 * 512)
    for i in range(1500):
        (tmp_path / f"big.{i + 1:04d}").write_bytes(media[i * 512:(i + 1) * 512])
    pieces = sorted(str(p) for p in tmp_path.glob("big.*"))
    cat = subprocess.run(["cat", *pieces], capture_output=True, check=True).stdout
    whole = subprocess.run(["md5sum"], input=cat, capture_output=True,
                           check=True).stdout.split()[0].decode()
    assert whole == hashlib.md5(media, usedforsecurity=False).hexdigest()
    code, out, err, _rss = run_measured("verify", tmp_path / "big.0001")
    assert code in (0, 1), err  # no log next to it: UNVERIFIED, with the hash computed
    assert whole in out


def test_sparse_vhd_builder_is_read_alike_by_qemu_and_libvhdi(tmp_path: Path) -> None:
    """The valid sparse VHD builder is what it claims for independent readers: qemu-img sees
    the media size ``info`` prints, libvhdi reads it as 2040 GiB of zeros."""
    require_tool("qemu-img")
    pyvhdi = pytest.importorskip("pyvhdi")
    size = 2040 << 30
    image = hostile.BUILDERS["vhd-sparse-2040"](tmp_path)
    qemu = json.loads(subprocess.run(
        ["qemu-img", "info", "-f", "vpc", "--output=json", str(image)],
        capture_output=True, text=True, check=True).stdout)
    code, out, err, _rss = run_measured("info", "--json", image)
    assert code == 0, err
    assert json.loads(out)["media_size"] == size == qemu["virtual-size"]
    handle = pyvhdi.file()
    with (tmp_path / "sparse-2040.vhd").open("rb") as fh:
        handle.open_file_object(fh)
        assert handle.get_media_size() == 2040 << 30
        assert handle.read_buffer_at_offset(4096, (2040 << 30) - 4096) == bytes(4096)
        handle.close()


def test_real_sparse_disk_needs_max_media_and_then_hashes_every_byte(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A disk qemu-img made (a legitimate sparse VMDK) is refused by verify until --max-media
    covers it; then the hash covers every byte, as md5sum of qemu-img's raw conversion."""
    require_tool("qemu-img")
    import hashlib

    from bitwitness import media_budget
    from bitwitness.verify import VerifyOptions, verify_image

    image = tmp_path / "sparse.vmdk"
    subprocess.run(["qemu-img", "create", "-q", "-f", "vmdk", str(image), "64M"], check=True)
    code, out, err, _rss = run_measured("verify", image)
    assert code == 1, err  # 64 MiB, under FREE_MEDIA: read and hashed, nothing recorded
    assert "UNVERIFIED" in out
    monkeypatch.setattr(media_budget, "FREE_MEDIA", 1 << 20)
    monkeypatch.setattr(media_budget, "MAX_RATIO", 16)
    with pytest.raises(media_budget.MediaBudgetError, match="pass --max-media 67108864"):
        verify_image(image, VerifyOptions())
    undo = media_budget.set_max_media(32 << 20)
    try:
        with pytest.raises(media_budget.MediaBudgetError, match="more than --max-media"):
            verify_image(image, VerifyOptions())
    finally:
        undo()
    undo = media_budget.set_max_media(64 << 20)
    try:
        result = verify_image(image, VerifyOptions())
    finally:
        undo()
    raw = tmp_path / "sparse.raw"
    subprocess.run(["qemu-img", "convert", "-f", "vmdk", "-O", "raw", str(image), str(raw)],
                   check=True)
    assert result.computed["md5"] == hashlib.md5(raw.read_bytes()).hexdigest()  # noqa: S324 - the media hash


def test_max_media_refusal_is_one_line_with_exit_2(tmp_path: Path) -> None:
    """On the command line: --max-media below what a qemu-made 2000 GiB VHD declares refuses
    it in one line (exit 2) before reading; the default refuses it too, naming the option."""
    require_tool("qemu-img")
    image = tmp_path / "big.vhd"
    subprocess.run(["qemu-img", "create", "-q", "-f", "vpc", "-o", "subformat=dynamic",
                    str(image), "2000G"], check=True)
    for extra, says in (((), "pass --max-media"), (("--max-media", "1TiB"),
                                                   "more than --max-media 1099511627776")):
        started = time.monotonic()
        code, _out, err, rss = run_measured("verify", *extra, image)
        assert code == 2, err
        assert len(err.strip().splitlines()) == 1
        assert says in err
        assert time.monotonic() - started < MAX_SECONDS
        assert rss < MAX_RSS
