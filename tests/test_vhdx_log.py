"""A VHDX not closed cleanly (its header names a log holding writes) reads as the disk's last
state: the log replayed in memory, the evidence untouched.

The judge is QEMU: on a *copy*, ``qemu-img check -r all`` opens the image read-write, which makes
QEMU replay the log into the file (its own implementation of MS-VHDX 2.3.3), and ``qemu-img
convert -O raw`` of the replayed copy gives the media; its MD5 must equal the MD5 of our media
read from the untouched original, whose bytes, mtime and atime must not change. The dirty images
come from ``qemu-img``/``qemu-io`` (a dynamic VHDX with data written), given a log by the
committed builder ``tests/builders/vhdx_log.py`` (written from MS-VHDX): data and zero
descriptors that move BAT entries, point one at a block past the file's end, rewrite and zero
payload sectors.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import struct
import subprocess
import tracemalloc
from pathlib import Path

import pytest
from builders.vhdx_log import (
    GUID,
    SECTOR,
    Data,
    Zero,
    bat_offset,
    crc32c,
    entry,
    log_region,
    make_dirty,
)
from conftest import require_tool, run_bitwitness

from bitwitness.errors import CorruptImageError, ExitCode, UnsupportedFormatError

MiB = 1 << 20
BLOCK = MiB
FULLY_PRESENT = 6


def _run(*args: str | Path) -> None:
    subprocess.run([str(a) for a in args], check=True, capture_output=True, timeout=120)


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()  # noqa: S324 - media identity, not security


def _pattern(seed: int) -> bytes:
    return bytes((seed + i * 7) % 251 for i in range(SECTOR))


def _stamp(path: Path) -> tuple[str, int, int]:
    """Content, mtime and atime, read without moving the atime (the check must not)."""
    st = path.stat()
    fd = os.open(path, os.O_RDONLY | os.O_NOATIME)
    try:
        with os.fdopen(fd, "rb", closefd=False) as f:
            digest = hashlib.sha256(f.read()).hexdigest()
    finally:
        os.close(fd)
    return digest, st.st_mtime_ns, st.st_atime_ns


@pytest.fixture
def clean(tmp_path: Path) -> Path:
    """A 4 MiB dynamic VHDX (1 MiB blocks, 1 MiB log) with blocks 0 and 2 written."""
    require_tool("qemu-img", "qemu-io")
    image = tmp_path / "disk.vhdx"
    _run("qemu-img", "create", "-q", "-f", "vhdx", "-o", "block_size=1M,log_size=1M", image,
         "4M")
    _run("qemu-io", "-f", "vhdx", "-c", "write -P 0xa1 0 1M", "-c", "write -P 0xa2 2M 1M",
         image)
    return image


class Disk:
    """Where QEMU put things in ``clean``: the BAT, the stored blocks, the file's end."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.bat = bat_offset(path)
        data = path.read_bytes()
        self.bat_sector = data[self.bat:self.bat + SECTOR]
        self.blocks = {b: (struct.unpack_from("<Q", data, self.bat + 8 * b)[0] >> 20) * MiB
                       for b in range(4)}
        self.end = -(-len(data) // MiB) * MiB
        self.log = log_region(path)

    def bat_with(self, moves: dict[int, int]) -> bytes:
        """The BAT's first sector with blocks moved to (file offset, fully present)."""
        out = bytearray(self.bat_sector)
        for block, where in moves.items():
            struct.pack_into("<Q", out, 8 * block, (where // MiB) << 20 | FULLY_PRESENT)
        return bytes(out)


def _dirty_two_entries(disk: Disk) -> int:
    """Sequence 7..8: entry 7 moves block 1 to a block appended to the file and block 3 to one
    past the file's end (of which the log writes the last sector); entry 8 rewrites a sector of
    block 0 and zeroes 8 KiB of block 2."""
    path = disk.path
    with path.open("r+b") as f:  # the payload written in place, as payload always is
        f.truncate(disk.end)
        f.seek(disk.end)
        f.write(bytes([0x5B]) * BLOCK)
    new1, new3 = disk.end, disk.end + BLOCK
    first = entry(7, 0, [Data(disk.bat, disk.bat_with({1: new1, 3: new3})),
                         Data(new3 + BLOCK - SECTOR, _pattern(3))],
                  flushed=disk.end + BLOCK, last=disk.end + 2 * BLOCK)
    second = entry(8, 0, [Data(disk.blocks[0] + SECTOR, _pattern(9)),
                          Zero(disk.blocks[2] + 2 * SECTOR, 2 * SECTOR)],
                   flushed=disk.end + BLOCK, last=disk.end + 2 * BLOCK)
    make_dirty(path, [(0, first), (len(first), second)])
    return len(first) + len(second)


def _qemu_replayed_md5(image: Path, work: Path) -> str:
    """QEMU's media of ``image`` once it replayed the log (into a copy)."""
    copy = work / "qemu-copy.vhdx"
    shutil.copyfile(image, copy)
    subprocess.run(["qemu-img", "check", "-r", "all", "-f", "vhdx", str(copy)],
                   capture_output=True, timeout=120, check=False)
    raw = work / "qemu.raw"
    _run("qemu-img", "convert", "-f", "vhdx", "-O", "raw", copy, raw)
    return _md5(raw)


def _our_md5(image: Path) -> str:
    from bitwitness.image import open_image

    with open_image(image) as stream:
        digest = hashlib.md5()  # noqa: S324
        for block in stream.iter_blocks():
            digest.update(block)
        return digest.hexdigest()


def _unreplayed_md5(image: Path) -> str:
    """libvhdi's media of ``image``: the log ignored."""
    from bitwitness.images.vhdi import open_vhdi

    with open_vhdi(image, "vhdx") as stream:
        digest = hashlib.md5()  # noqa: S324
        for block in stream.iter_blocks():
            digest.update(block)
        return digest.hexdigest()


def test_replayed_media_is_qemus_and_the_evidence_is_untouched(clean: Path,
                                                              tmp_path: Path) -> None:
    disk = Disk(clean)
    _dirty_two_entries(disk)
    before = _stamp(clean)
    ours = _our_md5(clean)
    assert _stamp(clean) == before
    assert ours == _qemu_replayed_md5(clean, tmp_path)
    assert ours != _unreplayed_md5(clean)  # the log changes the media: libvhdi's


def test_verify_and_info_say_the_log_was_replayed(clean: Path, tmp_path: Path) -> None:
    import json

    disk = Disk(clean)
    _dirty_two_entries(disk)
    before = _stamp(clean)
    res = run_bitwitness("verify", clean, "--json")
    doc = json.loads(res.stdout)["images"][0]
    assert doc["verdict"] == "UNVERIFIED"  # no recorded hash: exit 1, yet nothing fails
    assert res.exit_code == ExitCode.EVIDENCE
    assert not [c for c in doc["container_checks"] if not c["ok"]]
    log = [c for c in doc["container_checks"] if c["what"] == "VHDX log"]
    assert log
    assert log[0]["ok"]
    assert "log replayed in memory: 2 entries, sequence 7..8" in log[0]["detail"]
    res = run_bitwitness("info", clean, "--json")
    assert res.exit_code == ExitCode.OK, res.stderr
    details = json.loads(res.stdout)["details"]
    assert details["reader"] == "bitwitness"
    assert details["log"].startswith("log replayed in memory: 2 entries, sequence 7..8")
    assert _stamp(clean) == before
    assert doc["computed"]["md5"] == _qemu_replayed_md5(clean, tmp_path)  # copies: last


def test_a_bad_checksum_ends_the_sequence(clean: Path, tmp_path: Path) -> None:
    """Entry 9 (a third, rewriting block 0's first sector) fails its CRC-32C: the sequence is
    7..8, as QEMU replays it too, and the third entry's write is not applied."""
    disk = Disk(clean)
    at = _dirty_two_entries(disk)
    offset, _ = disk.log
    data = bytearray(clean.read_bytes())
    third = bytearray(entry(9, 0, [Data(disk.blocks[0], _pattern(77))],
                            flushed=disk.end + BLOCK, last=disk.end + 2 * BLOCK))
    third[4] ^= 0xFF
    data[offset + at:offset + at + len(third)] = third
    clean.write_bytes(bytes(data))
    from bitwitness.images.vhdx import open_vhdx

    with open_vhdx(clean) as stream:
        assert stream.replay is not None
        assert (stream.replay.first_sequence, stream.replay.last_sequence) == (7, 8)
        assert stream.pread(0, SECTOR) == bytes([0xA1]) * SECTOR
    assert _our_md5(clean) == _qemu_replayed_md5(clean, tmp_path)


def test_the_newest_of_two_sequences_is_replayed(clean: Path, tmp_path: Path) -> None:
    """An old sequence (20..21) at the log's start and a newer one (30) further on, both
    rewriting block 0's first sector: only the newer one is replayed (MS-VHDX 2.3.3)."""
    disk = Disk(clean)
    last = disk.end
    old1 = entry(20, 0, [Data(disk.blocks[0], _pattern(20))], flushed=disk.end, last=last)
    old2 = entry(21, 0, [Data(disk.blocks[0] + SECTOR, _pattern(21))], flushed=disk.end,
                 last=last)
    at = 16 * SECTOR
    new = entry(30, at, [Data(disk.blocks[0], _pattern(30))], flushed=disk.end, last=last)
    make_dirty(clean, [(0, old1), (len(old1), old2), (at, new)])
    from bitwitness.images.vhdx import open_vhdx

    with open_vhdx(clean) as stream:
        assert stream.replay is not None
        assert (stream.replay.entries, stream.replay.last_sequence) == (1, 30)
        assert stream.pread(0, SECTOR) == _pattern(30)
        assert stream.pread(SECTOR, SECTOR) == bytes([0xA1]) * SECTOR  # 21 is not replayed
    assert _our_md5(clean) == _qemu_replayed_md5(clean, tmp_path)


def test_an_entry_wrapping_past_the_logs_end(clean: Path, tmp_path: Path) -> None:
    """An entry of three sectors starting two sectors before the log's end continues at its
    start (a ring buffer)."""
    disk = Disk(clean)
    _, length = disk.log
    body = entry(5, length - 2 * SECTOR, [Data(disk.blocks[0], _pattern(5)),
                                          Data(disk.blocks[2], _pattern(6))],
                 flushed=disk.end, last=disk.end)
    make_dirty(clean, [(length - 2 * SECTOR, body)])
    from bitwitness.images.vhdx import open_vhdx

    with open_vhdx(clean) as stream:
        assert stream.pread(2 * MiB, SECTOR) == _pattern(6)
    assert _our_md5(clean) == _qemu_replayed_md5(clean, tmp_path)


@pytest.mark.parametrize("damage", ["no-valid-entry", "truncated", "foreign-guid",
                                    "into-the-headers", "into-the-log", "too-large",
                                    "log-version"])
def test_a_log_that_cannot_be_replayed_is_refused_in_one_line(clean: Path,
                                                              damage: str) -> None:
    """No valid sequence (a bad checksum on the only entry, a descriptor aimed at the headers
    or at the log itself, entries of another log GUID), a file shorter than the log's
    FlushedFileOffset, a log above the size replayed or of a log format other than 0: one
    line, exit 1 or 2, no traceback; verify fails the log check."""
    disk = Disk(clean)
    offset, _ = disk.log
    descriptors: list[Data | Zero] = [Data(disk.blocks[0], _pattern(1))]
    flushed = disk.end
    if damage == "into-the-headers":
        descriptors = [Zero(64 * 1024, SECTOR)]
    elif damage == "into-the-log":
        descriptors = [Data(offset + 8 * SECTOR, _pattern(2))]
    elif damage == "truncated":
        flushed = disk.end + 8 * MiB
    guid = bytes(range(16)) if damage == "foreign-guid" else GUID  # another log's entry
    body = bytearray(entry(3, 0, descriptors, flushed=flushed, last=disk.end, guid=guid))
    if damage == "no-valid-entry":
        body[-1] ^= 1
    make_dirty(clean, [(0, bytes(body))])
    if damage in ("too-large", "log-version"):
        from bitwitness.images import vhdx_log

        data = bytearray(clean.read_bytes())
        for header in (64 * 1024, 128 * 1024):
            if damage == "too-large":
                struct.pack_into("<I", data, header + 68, vhdx_log.MAX_LOG_LENGTH + MiB)
            else:  # MS-VHDX defines log format 0 only
                struct.pack_into("<H", data, header + 64, 1)
            struct.pack_into("<I", data, header + 4, 0)
            struct.pack_into("<I", data, header + 4, crc32c(bytes(data[header:header + 4096])))
        clean.write_bytes(bytes(data))
    from bitwitness.images.vhdx import open_vhdx, vhdx_checks

    expected = (UnsupportedFormatError if damage in ("too-large", "log-version")
                else CorruptImageError)
    with pytest.raises(expected):
        open_vhdx(clean)
    res = run_bitwitness("info", clean)
    assert res.exit_code in (ExitCode.EVIDENCE, ExitCode.USAGE)
    assert "Traceback" not in res.stdout + res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    log = [c for c in vhdx_checks(clean) if c.what == "VHDX log"]
    assert log
    assert not log[0].ok
    assert "cannot be replayed" in log[0].detail


def test_replay_memory_is_bounded(clean: Path) -> None:
    """A log of 12 entries each rewriting 16 sectors of block 0: replaying it holds far less
    than the log (the overlay keeps where each sector's data lies in the log, not the data),
    and the file keeps its size."""
    disk = Disk(clean)
    _, length = disk.log
    entries = []
    position = 0
    for n in range(1, 13):
        body = entry(n, 0, [Data(disk.blocks[0] + SECTOR * k, _pattern(n + k))
                            for k in range(16)], flushed=disk.end, last=disk.end)
        entries.append((position, body))
        position += len(body)
    assert position <= length
    make_dirty(clean, entries)
    from bitwitness.images.vhdx import open_vhdx

    tracemalloc.start()
    try:
        with open_vhdx(clean) as stream:
            assert stream.replay is not None
            assert stream.replay.entries == 12
            assert stream.pread(SECTOR * 3, SECTOR) == _pattern(12 + 3)
            _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * MiB
    assert clean.stat().st_size == disk.end


def test_a_log_of_entries_each_claiming_the_whole_log_is_refused_quickly(clean: Path) -> None:
    """Every 4 KiB of the log starts an entry header with the right LogGuid claiming the whole
    log as its length, each with a wrong checksum: checking them all would checksum the log
    256 times over; the search stops at its budget (4 times the log) with a typed error."""
    import time

    from bitwitness.images.vhdx import open_vhdx

    disk = Disk(clean)
    _, length = disk.log
    head = bytearray(SECTOR)
    struct.pack_into("<4sIIIQII16sQQ", head, 0, b"loge", 0, length, 0, 1, 0, 0, GUID,
                     disk.end, disk.end)
    make_dirty(clean, [(position, bytes(head)) for position in range(0, length, SECTOR)])
    started = time.monotonic()
    with pytest.raises(CorruptImageError, match="refused as hostile"):
        open_vhdx(clean)
    assert time.monotonic() - started < 60


def test_no_second_reader_for_a_replayed_log(clean: Path) -> None:
    """verify --second-reader notes that no independent reader reads the replayed disk (QEMU
    replays only into the file, libvhdi ignores the log) instead of comparing with one that
    reads another disk."""
    import json

    _dirty_two_entries(Disk(clean))
    res = run_bitwitness("verify", clean, "--second-reader", "--json")
    doc = json.loads(res.stdout)["images"][0]
    assert doc["second_reader"] is None
    assert any("no independent second reader" in n for n in doc["notes"])
    assert doc["verdict"] == "UNVERIFIED"


def test_a_differencing_child_of_a_dirty_parent(clean: Path, tmp_path: Path) -> None:
    """A differencing VHDX (the committed builder's, QEMU writes none) whose parent has a log
    to replay: the chain is read by our reader, the parent's log replayed. Judge: QEMU's
    replay of a copy of the parent, with the child's block 0 (all it stores) laid over it."""
    from builders.vhdx_differencing import make_differencing

    from bitwitness.image import open_image

    _dirty_two_entries(Disk(clean))
    child = tmp_path / "child.vhdx"
    _run("qemu-img", "create", "-q", "-f", "vhdx", "-o", "block_size=1M,log_size=1M", child,
         "4M")
    _run("qemu-io", "-f", "vhdx", "-c", "write -P 0x99 1k 1k", child)
    make_differencing(child, clean)
    before = _stamp(clean), _stamp(child)
    with open_image(child) as stream:
        assert stream.info.details["reader"] == "bitwitness"
        ours = b"".join(stream.iter_blocks())
    assert (_stamp(clean), _stamp(child)) == before
    work = tmp_path / "judge"
    work.mkdir()
    _qemu_replayed_md5(clean, work)
    expected = bytearray((work / "qemu.raw").read_bytes())
    expected[:BLOCK] = bytes(1024) + bytes([0x99]) * 1024 + bytes(BLOCK - 2048)
    assert ours == bytes(expected)


@pytest.mark.parametrize("which", ["first", "last"])
def test_qemus_own_log_entries(tmp_path: Path, which: str) -> None:
    """Entries QEMU itself wrote (each allocation in a session of qemu-io is one entry, under
    a log GUID of its own, its BAT sector as of then), left in the log after QEMU applied them:
    naming the GUID of the last one replays the BAT as it is (the media stays QEMU's clean
    one); naming the first one's replays the BAT of before blocks 2 and 3 were allocated (they
    read as zeros again). Ours must equal QEMU's replay either way: a real writer's entries,
    not only our builder's."""
    require_tool("qemu-img", "qemu-io")
    image = tmp_path / "q.vhdx"
    _run("qemu-img", "create", "-q", "-f", "vhdx", "-o", "block_size=1M,log_size=1M", image,
         "4M")
    _run("qemu-io", "-f", "vhdx", "-c", "write -P 0xa1 0 1M", "-c", "write -P 0xa2 2M 1M",
         "-c", "write -P 0xa3 3M 4k", image)
    clean_raw = tmp_path / "clean.raw"
    _run("qemu-img", "convert", "-f", "vhdx", "-O", "raw", image, clean_raw)
    offset, length = log_region(image)
    data = image.read_bytes()
    guids = [data[offset + p + 32:offset + p + 48] for p in range(0, length, SECTOR)
             if data[offset + p:offset + p + 4] == b"loge"]
    assert len(guids) >= 2
    make_dirty(image, [], guid=guids[0] if which == "first" else guids[-1])
    ours = _our_md5(image)
    assert ours == _qemu_replayed_md5(image, tmp_path)
    assert (ours == _md5(clean_raw)) == (which == "last")
