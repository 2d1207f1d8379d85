"""partclone images, read as the volume they hold, checked against partclone's own restore.

Volumes are made here and saved by partclone 0.3 (Debian ``partclone``): ext4 (``mkfs.ext4``,
files of random bytes written by ``debugfs``), FAT32 (``mkfs.vfat`` + ``mcopy``), exFAT
(``mkfs.exfat``), btrfs (``mkfs.btrfs --rootdir``), each with ``partclone.<fs> -c -s VOL -o
IMG``; the ext4 one also with partclone's checksum options (``-a0``: none; ``-k 7 -K``: a CRC
every 7 blocks, carried on) and written to standard output (``-o -``). What each image must read
as is what ``partclone.restore -W`` writes into a file (partclone's reader, not ours), compared
by SHA-256 and by reads at odd offsets and lengths.

No partclone here writes image version 0001 (0.3 writes 0002 only): that image is built below
from the layout of partclone's ``src/partclone.h`` (header, a byte per block, ``BiTmAgIc``, each
block followed by the CRC its ``crc32_0001`` computes), and partclone 0.3's restore, which still
reads 0001 and checks every CRC, says whether it is right before our reader is compared with it.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import struct
import subprocess
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import require_root, require_tool, run_bitwitness
from contract import check_stream_contract
from test_mount import strict_atime_dir  # noqa: F401 - a fixture

from bitwitness.errors import CorruptImageError, ExitCode, NoSecondReader, UnsupportedFormatError
from bitwitness.images import partclone as pc
from bitwitness.images.partclone import FORMAT, PartcloneRestoreStream, PartcloneStream

#: version 0002's header, as partclone.h declares it (packed, little-endian)
HEADER = struct.Struct("<16s14s4sH16sQQQQIIHHHHIBBI")
#: field indexes in HEADER
F_VERSION, F_ENDIAN, F_TOTAL, F_USED_MAP, F_BLOCK, F_CS_SIZE, F_CRC = 2, 3, 6, 8, 9, 14, 18
M = 0xFFFFFFFF


def _run(*args: str | Path) -> subprocess.CompletedProcess[bytes]:
    done = subprocess.run([str(a) for a in args], capture_output=True, check=False)
    assert done.returncode == 0, (args, done.stderr[-500:])
    return done


def _crc(data: bytes, state: int = M) -> int:
    """partclone's CRC-32 (checksum.c): the table-driven CRC seeded with 0xFFFFFFFF and never
    inverted at the end, i.e. zlib's value inverted."""
    return zlib.crc32(data, state ^ M) ^ M


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- images -----------------------------------------------------------------------------


def _ext4(folder: Path) -> Path:
    vol = folder / "ext4.vol"
    os.truncate(_touch(vol), 24 << 20)
    _run("mkfs.ext4", "-q", "-F", "-b", "4096", vol)
    rng = random.Random(4)
    for n, size in enumerate((300_000, 5_000, 1_200_000)):
        src = folder / f"payload{n}"
        src.write_bytes(rng.randbytes(size))
        _run("debugfs", "-w", "-R", f"write {src} payload{n}", vol)
    return vol


def _touch(path: Path) -> Path:
    path.write_bytes(b"")
    return path


def _fat32(folder: Path) -> Path:
    vol = folder / "fat.vol"
    os.truncate(_touch(vol), 40 << 20)
    _run("mkfs.vfat", "-F", "32", vol)
    src = folder / "fatpayload"
    src.write_bytes(random.Random(5).randbytes(700_000))
    _run("mcopy", "-i", vol, src, "::payload")
    return vol


def _exfat(folder: Path) -> Path:
    vol = folder / "exfat.vol"
    os.truncate(_touch(vol), 16 << 20)
    _run("mkfs.exfat", vol)
    return vol


def _btrfs(folder: Path) -> Path:
    tree = folder / "btrfs-tree"
    tree.mkdir()
    (tree / "payload").write_bytes(random.Random(6).randbytes(400_000))
    vol = folder / "btrfs.vol"
    os.truncate(_touch(vol), 128 << 20)
    _run("mkfs.btrfs", "-q", "-f", "--rootdir", tree, vol)
    return vol


def _ntfs(folder: Path) -> Path:
    """NTFS, as Clonezilla saves it by default (partclone.ntfs): the device holds a sector past
    the last cluster (the backup boot sector), which partclone does not save."""
    vol = folder / "ntfs.vol"
    os.truncate(_touch(vol), 40 << 20)
    _run("mkntfs", "-q", "-F", "-f", vol)
    src = folder / "ntfspayload"
    src.write_bytes(random.Random(7).randbytes(500_000))
    _run("ntfscp", "-q", vol, src, "payload")
    return vol


#: image name: (volume maker, partclone program, its extra options, tools the volume needs)
IMAGES: dict[str, tuple[Callable[[Path], Path], str, tuple[str, ...], tuple[str, ...]]] = {
    "ext4": (_ext4, "partclone.ext4", (), ("mkfs.ext4", "debugfs")),
    "ext4-a0": (_ext4, "partclone.ext4", ("-a0",), ("mkfs.ext4", "debugfs")),
    "ext4-k7K": (_ext4, "partclone.ext4", ("-k", "7", "-K"), ("mkfs.ext4", "debugfs")),
    "ext4-stdout": (_ext4, "partclone.ext4", ("stdout",), ("mkfs.ext4", "debugfs")),
    "fat32": (_fat32, "partclone.fat", (), ("mkfs.vfat", "mcopy")),
    "exfat": (_exfat, "partclone.exfat", (), ("mkfs.exfat",)),
    "btrfs": (_btrfs, "partclone.btrfs", (), ("mkfs.btrfs",)),
    "ntfs": (_ntfs, "partclone.ntfs", (), ("mkntfs", "ntfscp")),
}


class Images:
    """Images made on first use, with the volume partclone's restore gives for each."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._volumes: dict[Callable[[Path], Path], Path] = {}
        self._images: dict[str, Path] = {}
        self._restored: dict[Path, bytes] = {}

    def image(self, name: str) -> Path:
        if name in self._images:
            return self._images[name]
        if name == "v1":
            require_tool("mkfs.ext4", "debugfs", "partclone.restore")
            path = self.folder / "v1.pcl"
            path.write_bytes(build_v1(self._volume(_ext4).read_bytes(), 4096))
        else:
            make, program, extra, tools = IMAGES[name]
            require_tool(program, "partclone.restore", *tools)
            vol = self._volume(make)
            path = self.folder / f"{name}.pcl"
            if extra == ("stdout",):
                done = _run(program, "-c", "-s", vol, "-o", "-", "-L", self.folder / "log",
                            "-q", "-f", "0")
                path.write_bytes(done.stdout)
            else:
                _run(program, "-c", "-s", vol, "-o", path, "-L", self.folder / "log", "-q",
                     "-f", "0", *extra)
        self._images[name] = path
        return path

    def _volume(self, make: Callable[[Path], Path]) -> Path:
        if make not in self._volumes:
            self._volumes[make] = make(self.folder)
        return self._volumes[make]

    def restored(self, image: Path) -> bytes:
        """The volume as ``partclone.restore -W`` writes it into a file."""
        if image not in self._restored:
            out = image.with_suffix(".restored")
            out.unlink(missing_ok=True)
            _run("partclone.restore", "-s", image, "-o", out, "-W", "-L", self.folder / "log",
                 "-q", "-f", "0")
            self._restored[image] = out.read_bytes()
            out.unlink()
        return self._restored[image]


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Images:
    require_root()  # partclone refuses to run otherwise
    return Images(tmp_path_factory.mktemp("partclone"))


def build_v1(volume: bytes, block: int, device_size: int | None = None) -> bytes:
    """A version 0001 image of ``volume``, from partclone.h: a 36-byte head, block size, device
    size, total and used blocks, 4096 option bytes, a byte per block (1: in use; here every
    block that is not all zeros), ``BiTmAgIc``, then each block in use and the CRC that
    partclone's ``crc32_0001`` carries on from block to block (its bug: the block's first byte,
    repeated, is all it covers)."""
    total = len(volume) // block
    blocks = [volume[i * block:(i + 1) * block] for i in range(total)]
    used = [b.count(0) != block for b in blocks]
    parts = [b"partclone-image", b"EXTFS".ljust(15, b"\0"), b"0001", b"\0\0",
             struct.pack("<iQQQ", block, len(volume) if device_size is None else device_size,
                         total, sum(used)), bytes(4096),
             bytes(used), b"BiTmAgIc"]
    state = M
    for data, in_use in zip(blocks, used, strict=True):
        if in_use:
            for _ in range(block):  # crc32_0001, byte by byte: the first byte every time
                state = (state >> 8) ^ _TABLE[(state ^ data[0]) & 0xFF]
            parts += [data, struct.pack("<I", state)]
    return b"".join(parts)


def _table() -> list[int]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0xEDB88320 if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _table()

ALL = [*IMAGES, "v1"]


# --- the volume -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ALL)
def test_reads_as_partclone_restores_it(images: Images, name: str) -> None:
    image = images.image(name)
    want = images.restored(image)
    with PartcloneStream(image) as stream:
        assert stream.size == len(want)
        assert _sha(stream.read()) == _sha(want)
        rng = random.Random(name)
        for _ in range(400):
            offset = rng.randrange(len(want))
            length = rng.choice([1, 3, 511, 513, 4095, 4097, 65_537, 300_001])
            assert stream.pread(offset, length) == want[offset:offset + length], (offset, length)
        check_stream_contract(stream, want)
        # not a vacuous comparison: blocks were left out and blocks were saved
        assert 0 < stream.used < stream.layout.total_blocks
    assert any(want[i:i + 4096].count(0) < 4096 for i in range(0, len(want), 1 << 16))


def test_the_random_files_are_in_the_volume(images: Images) -> None:
    """The files written into the ext4 volume are read back at their places (a file's blocks
    checked against the bytes written, through debugfs on the volume we read)."""
    image = images.image("ext4-k7K")
    out = images.folder / "ours.vol"
    with PartcloneStream(image) as stream:
        out.write_bytes(stream.read())
    for n in range(3):
        done = _run("debugfs", "-R", f"cat payload{n}", out)
        assert done.stdout == (images.folder / f"payload{n}").read_bytes()


def test_info_says_what_was_not_saved(images: Images) -> None:
    image = images.image("ext4")
    with PartcloneStream(image) as stream:
        info = stream.info
    assert info.format == "partclone"
    assert info.files == (image,)
    assert info.details["file_system"].startswith("EXTFS")
    assert info.details["image_version"] == "0002"
    assert "read as zeros" in info.details["not_saved"]
    assert "not evidence" in info.details["not_saved"]
    assert info.details["partclone_version"].startswith("0.3")
    assert "CRC-32 every 256 blocks" in info.details["checksums"]


def test_detected_by_its_signature(images: Images) -> None:
    image = images.image("ext4")
    head = image.read_bytes()[:4096]
    assert FORMAT.probe(image, head)
    assert not FORMAT.probe(image, b"\0ntfsclone-image")
    assert FORMAT.files(image) == [image]


# --- what verify checks -----------------------------------------------------------------------


@pytest.mark.parametrize("name", ALL)
def test_checks_pass_on_images_as_written(images: Images, name: str) -> None:
    image = images.image(name)
    checks = pc.partclone_checks(image)
    assert checks
    assert all(c.ok for c in checks), checks
    if name != "ext4-a0":
        assert [c.what for c in checks] == ["partclone map", "partclone block checksums"]


def _copy(images: Images, name: str, label: str) -> Path:
    source = images.image(name)
    copy = images.folder / f"{name}-{label}.pcl"
    shutil.copyfile(source, copy)
    return copy


def _data_at(data: bytes) -> int:
    """Where a 0002 image's blocks begin (after the header, the bit map and its CRC)."""
    total = HEADER.unpack_from(data)[F_TOTAL]
    return HEADER.size + -(-total // 8) + 4


def _flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x40
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("name", ["ext4", "ext4-k7K", "fat32", "v1"])
def test_checks_find_a_flipped_data_byte(images: Images, name: str) -> None:
    copy = _copy(images, name, "data")
    data = copy.read_bytes()
    if name == "v1":
        block = 4096
        total = struct.unpack_from("<Q", data, 48)[0]
        target = 4160 + total + 8 + 3 * (block + 4)  # the fourth block's first byte
    else:
        target = _data_at(data) + 9 * HEADER.unpack_from(data)[F_BLOCK] + 77
    _flip(copy, target)
    checks = {c.what: c for c in pc.partclone_checks(copy)}
    assert checks["partclone map"].ok
    failed = checks["partclone block checksums"]
    assert not failed.ok
    assert ": 1 problem:" in failed.detail, failed.detail
    assert "file offset" in failed.detail
    # the reader does not check on read: it gives the bytes the image holds
    with PartcloneStream(copy) as stream:
        assert stream.read() != images.restored(images.image(name))
        # verify's checks from the opened stream's map walk say the same
        assert FORMAT.self_checks(copy, stream) == pc.partclone_checks(copy)
    # and partclone's restore refuses the image: the second reader disagrees
    with pytest.raises(CorruptImageError, match=r"partclone\.restore"):
        PartcloneRestoreStream([copy], 1 << 20)


@pytest.mark.parametrize("name", ["ext4", "exfat"])
def test_checks_find_a_flipped_map_byte(images: Images, name: str) -> None:
    copy = _copy(images, name, "map")
    _flip(copy, HEADER.size + 3)
    checks = {c.what: c for c in pc.partclone_checks(copy)}
    failed = checks["partclone map"]
    assert not failed.ok
    crc_at = _data_at(copy.read_bytes()) - 4
    assert f"file offset {crc_at}" in failed.detail, failed.detail
    with pytest.raises(CorruptImageError, match="CRC-32") as caught:
        PartcloneStream(copy)
    assert caught.value.offset == crc_at


# --- hostile images ---------------------------------------------------------------------------


def _with_header(data: bytes, **fields: int | bytes) -> bytes:
    """``data`` with header fields replaced (by index name ``f<N>``) and its CRC recomputed."""
    values = list(HEADER.unpack_from(data))
    for key, value in fields.items():
        values[int(key[1:])] = value
    head = bytearray(HEADER.pack(*values))
    struct.pack_into("<I", head, HEADER.size - 4, _crc(bytes(head[:-4])))
    return bytes(head) + data[HEADER.size:]


def _truncated(data: bytes) -> bytes:
    return data[:len(data) - 5000]


def _version(data: bytes) -> bytes:
    return _with_header(data, **{f"f{F_VERSION}": b"0003"})


def _header_crc(data: bytes) -> bytes:
    return data[:40] + b"X" + data[41:]  # a byte of the file system's name, CRC not redone


def _used_count(data: bytes) -> bytes:
    return _with_header(data, **{f"f{F_USED_MAP}": HEADER.unpack_from(data)[F_USED_MAP] + 1})


def _petabytes(data: bytes) -> bytes:
    return _with_header(data, **{f"f{F_TOTAL}": 1 << 38})  # 1 PiB of 4 KiB blocks


def _endianness(data: bytes) -> bytes:
    return _with_header(data, **{f"f{F_ENDIAN}": 0x1234})


def _big_endian(data: bytes) -> bytes:
    return _with_header(data, **{f"f{F_ENDIAN}": 0xDEC0})


def _block_size(data: bytes) -> bytes:
    return _with_header(data, **{f"f{F_BLOCK}": 3000})


def _checksum_size(data: bytes) -> bytes:
    return _with_header(data, **{f"f{F_CS_SIZE}": 8})


def _empty_header(data: bytes) -> bytes:
    return data[:60]


HOSTILE: dict[str, tuple[Callable[[bytes], bytes], type[Exception], str]] = {
    "truncated": (_truncated, CorruptImageError, "past the end of the file"),
    "wrong version": (_version, UnsupportedFormatError, "version b'0003'"),
    "bad header CRC": (_header_crc, CorruptImageError, "CRC-32 of the header"),
    "used count": (_used_count, CorruptImageError, "map marks"),
    "petabytes": (_petabytes, CorruptImageError, "partclone map"),
    "endianness": (_endianness, CorruptImageError, "endianness mark"),
    "big-endian": (_big_endian, UnsupportedFormatError, "big-endian"),
    "block size": (_block_size, CorruptImageError, "block size 3000"),
    "checksum size": (_checksum_size, CorruptImageError, "checksum size 8"),
    "short header": (_empty_header, CorruptImageError, "shorter than the 110-byte"),
}


@pytest.mark.parametrize("case", HOSTILE)
def test_hostile_images_fail_closed_quickly(images: Images, case: str) -> None:
    mutate, error, words = HOSTILE[case]
    path = images.folder / f"hostile-{case.replace(' ', '-')}.pcl"
    path.write_bytes(mutate(images.image("ext4").read_bytes()))
    started = time.monotonic()
    with pytest.raises(error, match=words) as caught:
        PartcloneStream(path)
    assert time.monotonic() - started < 1
    assert str(path) in str(caught.value)
    if isinstance(caught.value, CorruptImageError):
        assert caught.value.offset is not None
    # the checks say the same, as a failed check, never a traceback
    checks = pc.partclone_checks(path)
    assert not all(c.ok for c in checks)


def test_a_v1_map_byte_other_than_0_or_1_is_refused(images: Images) -> None:
    copy = _copy(images, "v1", "mapbyte")
    data = bytearray(copy.read_bytes())
    data[4160 + 5] = 2
    copy.write_bytes(bytes(data))
    with pytest.raises(CorruptImageError, match="other than 0 or 1") as caught:
        PartcloneStream(copy)
    assert caught.value.offset == 4160 + 5


def test_a_v1_image_with_8_byte_crcs_is_refused_by_name(images: Images) -> None:
    data = images.image("v1").read_bytes()
    total, used = struct.unpack_from("<QQ", data, 48)
    at = 4160 + total + 8
    parts, block = [data[:at]], 4096
    for _ in range(used):
        parts += [data[at:at + block + 4], bytes(4)]
        at += block + 4
    wide = images.folder / "v1-wide.pcl"
    wide.write_bytes(b"".join(parts))
    with pytest.raises(UnsupportedFormatError, match="8-byte CRCs"):
        PartcloneStream(wide)


# --- a large volume -------------------------------------------------------------------------


def build_v2(total: int, used: dict[int, bytes], block: int, per_checksum: int) -> bytes:
    """A version 0002 image by partclone.h's layout: ``used`` maps block numbers to their
    bytes. (The images partclone writes check this layout; this one is for sizes no test
    volume reaches.)"""
    bitmap = bytearray(-(-total // 8))
    for number in used:
        bitmap[number // 8] |= 1 << (number % 8)
    head = bytearray(HEADER.pack(b"partclone-image\0", b"0.3.23", b"0002", 0xC0DE, b"EXTFS",
                                 total * block, total, len(used), len(used), block, 18, 2, 64,
                                 0x20, 4, per_checksum, 1, 1, 0))
    struct.pack_into("<I", head, HEADER.size - 4, _crc(bytes(head[:-4])))
    parts = [bytes(head), bytes(bitmap), struct.pack("<I", _crc(bytes(bitmap)))]
    state = M
    for count, number in enumerate(sorted(used), 1):
        parts.append(used[number])
        state = _crc(used[number], state)
        if count % per_checksum == 0 or count == len(used):
            parts.append(struct.pack("<I", state))
            state = M
    return b"".join(parts)


def test_a_half_terabyte_volume_opens_and_reads_quickly(tmp_path: Path) -> None:
    """2^27 blocks of 4 KiB (512 GiB, a 16 MiB map): opening walks the map once, and reads
    anywhere cost a page's popcount, not a walk from the start."""
    rng = random.Random(9)
    total, block = 1 << 27, 4096
    used = {n: rng.randbytes(block) for n in sorted(rng.sample(range(total), 3000))}
    used.update({n: bytes([n % 251]) * block for n in range(total - 40, total)})  # at the end
    image = tmp_path / "big.pcl"
    image.write_bytes(build_v2(total, used, block, 16))
    started = time.monotonic()
    with PartcloneStream(image) as stream:
        opened = time.monotonic() - started
        assert stream.size == total * block
        for number in rng.sample(sorted(used), 300):
            assert stream.pread(number * block, block) == used[number]
        for _ in range(200):
            offset = rng.randrange(stream.size - 9000)
            want = b"".join(used.get(b, bytes(block)) for b in
                            range(offset // block, (offset + 9000) // block + 1))
            start = offset - offset // block * block
            assert stream.pread(offset, 9000) == want[start:start + 9000]
        tail = stream.pread(stream.size - 40 * block, 40 * block)
        assert tail == b"".join(used[n] for n in range(total - 40, total))
        elapsed = time.monotonic() - started
    assert opened < 3, opened
    assert elapsed < 8, elapsed
    assert all(c.ok for c in pc.partclone_checks(image))


# --- evidence, second reader -----------------------------------------------------------------


def _state(path: Path) -> tuple[str, int, int]:
    fd = os.open(path, os.O_RDONLY | os.O_NOATIME)
    try:
        digest = hashlib.sha256()
        while piece := os.read(fd, 1 << 20):
            digest.update(piece)
    finally:
        os.close(fd)
    st = path.stat()
    return digest.hexdigest(), st.st_mtime_ns, st.st_atime_ns


def test_evidence_bytes_and_times_unchanged(images: Images,
                                            strict_atime_dir: Path) -> None:  # noqa: F811
    """Open, read, check and read through partclone's restore an image on a strictatime mount:
    its bytes, mtime and atime stay."""
    image = strict_atime_dir / "evidence.pcl"
    image.write_bytes(images.image("ext4").read_bytes())
    os.utime(image, ns=(1_000_000_000, 2_000_000_000))
    before = _state(image)
    with PartcloneStream(image) as stream:
        stream.read()
        assert all(c.ok for c in FORMAT.self_checks(image, stream))
        second = FORMAT.second_reader(image, stream)
        assert second is not None
        with second:
            second.read()
    assert _state(image) == before


@pytest.mark.parametrize("name", ["ext4", "v1"])
def test_second_reader_agrees(images: Images, name: str) -> None:
    image = images.image(name)
    with PartcloneStream(image) as ours:
        second = FORMAT.second_reader(image, ours)
        assert second is not None
        with second:
            assert second.size == ours.size
            assert _sha(second.read()) == _sha(ours.read())
            assert second.info.details["reader"].startswith("partclone.restore v0.")


def test_second_reader_not_made_without_room_or_partclone(images: Images,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    image = images.image("ext4")
    with pytest.raises(NoSecondReader, match="TMPDIR"):
        PartcloneRestoreStream([image], 1 << 62)
    monkeypatch.setattr(shutil, "which", lambda _name: None)
    with pytest.raises(UnsupportedFormatError, match="not installed"):
        PartcloneRestoreStream([image], 1 << 20)


@pytest.fixture
def _no_leftovers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    yield tmp_path
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("bitwitness-partclone-")]


@pytest.mark.usefixtures("_no_leftovers")
def test_second_reader_leaves_nothing_behind(images: Images) -> None:
    import tempfile

    tempfile.tempdir = None  # TMPDIR is read again
    try:
        with PartcloneRestoreStream([images.image("ext4")], 24 << 20) as second:
            assert second.size == 24 << 20
    finally:
        tempfile.tempdir = None


# --- through the command line -----------------------------------------------------------------


def test_info_verify_and_ls_through_the_cli(images: Images) -> None:
    """``info``, ``verify`` and ``ls`` open a partclone image as the volume partclone restores:
    its size and hashes, and the listing fls gives of the restored volume."""

    require_tool("fls")
    image = images.image("ext4")
    want = images.restored(image)
    restored = images.folder / "cli.restored"
    restored.write_bytes(want)
    info = run_bitwitness("info", image, "--json")
    assert info.exit_code == ExitCode.OK, info.stderr
    doc = info.json()
    assert doc["format"] == "partclone"
    assert doc["media_size"] == len(want)
    assert "not evidence" in doc["details"]["not_saved"]
    done = run_bitwitness("verify", image, "--json")
    assert done.exit_code == ExitCode.EVIDENCE, done.stderr  # checksums, but no media hash
    got = done.json()["images"][0]
    assert got["verdict"] == "UNVERIFIED", got["problems"]
    assert got["computed"]["sha256"] == _sha(want)
    listing = run_bitwitness("ls", image, "-r", "--all")
    assert listing.exit_code == ExitCode.OK, listing.stderr
    fls = _run("fls", "-r", "-p", restored).stdout.decode("utf-8", "surrogateescape")
    assert Counter(listing.stdout.splitlines()) == Counter(fls.splitlines())
    assert "payload0" in listing.stdout


def test_verify_names_a_damaged_block_group(images: Images, tmp_path: Path) -> None:
    """A byte flipped in a saved block: ``verify`` fails the image (exit 1) and names where."""

    image = images.image("ext4")
    with PartcloneStream(image) as stream:
        data_at = stream.layout.data_at
    damaged = tmp_path / "damaged.pcl"
    data = bytearray(image.read_bytes())
    data[data_at + 100] ^= 0x01
    damaged.write_bytes(bytes(data))
    done = run_bitwitness("verify", damaged, "--json")
    assert done.exit_code == ExitCode.EVIDENCE, done.stderr
    got = done.json()["images"][0]
    assert got["verdict"] not in ("VERIFIED", "UNVERIFIED"), got
    assert any("checksum" in p.lower() for p in got["problems"]), got["problems"]


def test_second_reader_through_the_cli(images: Images) -> None:

    done = run_bitwitness("verify", "--second-reader", images.image("ext4"), "--json")
    assert done.exit_code == ExitCode.EVIDENCE, done.stderr
    second = done.json()["images"][0]["second_reader"]
    assert second is not None, done.json()["images"][0]["notes"]
    assert second["agree"], second
    assert second["reader"].startswith("partclone.restore")


def _with_device_size(image: Path, out: Path, device_size: int) -> Path:
    """A copy of version 0002 ``image`` recording ``device_size``, its header CRC made right."""
    data = bytearray(image.read_bytes())
    struct.pack_into("<Q", data, 52, device_size)
    struct.pack_into("<I", data, 106, pc.partclone_crc(bytes(data[:106])))
    out.write_bytes(bytes(data))
    return out


def _restored(image: Path, folder: Path) -> bytes:
    out = folder / f"{image.name}.restored"
    _run("partclone.restore", "-s", image, "-o", out, "-W", "-L", folder / "log", "-q",
         "-f", "0")
    return out.read_bytes()


@pytest.mark.parametrize("name", ["ext4", "full-fat16", "v1-last-unused", "v1-last-in-use"])
def test_a_device_larger_than_the_blocks_reads_as_the_restore_writes_it(
        images: Images, tmp_path: Path, name: str) -> None:
    """The device recorded larger than the file system's blocks (NTFS's case, by 4 KiB: its
    backup boot sector lies past its last cluster): partclone's restore extends its file to the
    device's size where the last block is not in use (ext4 here), ends it with the last block
    where it is (a full FAT16), and ends a 0001 image with its blocks either way. Ours reads
    what the restore writes in every case."""
    require_tool("partclone.restore")
    extra = 3 * 4096 + 512
    if name == "ext4":
        image = images.image("ext4")
        grown = len(images.restored(image)) + extra
        image, size = _with_device_size(image, tmp_path / "e.pcl", grown), grown
    elif name == "full-fat16":
        require_tool("mkfs.vfat", "mcopy", "mdir", "partclone.fat")
        vol = tmp_path / "full.vol"
        os.truncate(_touch(vol), 20 << 20)
        _run("mkfs.vfat", "-F", "16", vol)
        listing = _run("mdir", "-i", vol, "::").stdout.decode()
        free = int(next(line for line in listing.splitlines() if "bytes free" in line)
                   .split("bytes free")[0].replace(" ", ""))
        (tmp_path / "fill").write_bytes(random.Random(8).randbytes(free))
        _run("mcopy", "-i", vol, tmp_path / "fill", "::fill")
        plain = tmp_path / "full.pcl"
        _run("partclone.fat", "-c", "-s", vol, "-o", plain, "-L", tmp_path / "log", "-q",
             "-f", "0")
        size = (20 << 20)
        image = _with_device_size(plain, tmp_path / "f.pcl", size + extra)
    else:
        volume = bytearray(images.restored(images.image("ext4")))
        volume[-4096:] = b"\x5a" * 4096 if name == "v1-last-in-use" else bytes(4096)
        image = tmp_path / "v1.pcl"
        image.write_bytes(build_v1(bytes(volume), 4096, device_size=len(volume) + extra))
        size = len(volume)
    want = _restored(image, tmp_path)
    assert len(want) == size  # what the restore does, as the docstring says
    with PartcloneStream(image) as stream:
        assert stream.size == len(want)
        assert _sha(stream.read()) == _sha(want)
        assert stream.pread(size - extra - 10, 20) == want[size - extra - 10:size - extra + 10]


def test_a_compressed_clonezilla_piece_names_the_command_that_gives_the_image(
        images: Images, tmp_path: Path) -> None:
    """Clonezilla saves ``sda1.ext4-ptcl-img.gz.aa``, ``.ab``...: a gzip stream cut into
    pieces. It is refused (exit 2) with the command that joins and decompresses the pieces, and
    that command, run as given, yields the image BitWitness reads."""
    require_tool("gzip", "split", "sh")
    image = images.image("ext4")
    folder = tmp_path / "clonezilla"
    folder.mkdir()
    packed = folder / "packed.gz"
    packed.write_bytes(subprocess.run(["gzip", "-c", str(image)], capture_output=True,
                                      check=True).stdout)
    _run("split", "-b", "1M", packed, folder / "sda1.ext4-ptcl-img.gz.")
    packed.unlink()
    first = folder / "sda1.ext4-ptcl-img.gz.aa"
    assert (folder / "sda1.ext4-ptcl-img.gz.ab").exists()
    done = run_bitwitness("info", first)
    assert done.exit_code == ExitCode.USAGE, done.stderr
    command = done.stderr.split("Clonezilla image piece (", 1)[1].split(", then open", 1)[0]
    assert command == "cat sda1.ext4-ptcl-img.gz.* | gunzip > sda1.ext4-ptcl-img"
    subprocess.run(["sh", "-c", command], cwd=folder, check=True)
    joined = folder / "sda1.ext4-ptcl-img"
    with PartcloneStream(joined) as ours:
        assert _sha(ours.read()) == _sha(images.restored(image))


def test_a_split_image_names_the_command_that_joins_it(images: Images, tmp_path: Path) -> None:
    """Clonezilla without compression cuts ``sda1.ext4-ptcl-img.uncomp.aa``, ``.ab``...: the
    first piece alone read as a truncated image, a later one as none. Each is refused (exit 2)
    with the command that joins them; run as given, it yields the image, read as before."""
    require_tool("split", "sh")
    image = images.image("ext4")
    folder = tmp_path / "clonezilla"
    folder.mkdir()
    _run("split", "-b", "1M", image, folder / "sda1.ext4-ptcl-img.uncomp.")
    pieces = sorted(folder.iterdir())
    assert len(pieces) > 2
    for piece in (pieces[0], pieces[1]):
        done = run_bitwitness("info", piece)
        assert done.exit_code == ExitCode.USAGE, done.stderr
        assert f"one of the {len(pieces)} pieces of a split partclone image" in done.stderr
    command = done.stderr.split("join them (", 1)[1].split("), then open", 1)[0]
    assert command == ("cat sda1.ext4-ptcl-img.uncomp.?? > sda1.ext4-ptcl-img.uncomp")
    subprocess.run(["sh", "-c", command], cwd=folder, check=True)
    with PartcloneStream(folder / "sda1.ext4-ptcl-img.uncomp") as ours:
        assert _sha(ours.read()) == _sha(images.restored(image))
