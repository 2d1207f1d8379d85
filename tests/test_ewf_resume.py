"""Resuming an interrupted E01 write: keep what the format proves complete, continue, verify.

The interruption is simulated by aborting the writer and then cutting the last file at chosen
points (as a crash loses unflushed bytes). The finished set must pass ewfverify and read back
bit-exact through pyewf.
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest
from conftest import make_disk_bytes, pyewf_media, require_root, require_tool, run_bitwitness

from bitwitness.errors import IncompleteImageError, UsageError
from bitwitness.ewf import (
    Compression,
    EwfMetadata,
    EwfWriter,
    encode_chunk,
    open_ewf,
    segment_path,
)
from bitwitness.ewf import structures as sx
from bitwitness.ewf.writer import DEFAULT_SEGMENT_SIZE

CHUNK = 32768
DATA = make_disk_bytes(120 * CHUNK + 3 * 512, 21)
SEGMENT = 1 << 20


def md5hex(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def sha1hex(data: bytes) -> str:
    return hashlib.sha1(data, usedforsecurity=False).hexdigest()


def feed(writer: EwfWriter, data: bytes, start: int, stop: int) -> None:
    for i in range(start, stop, CHUNK):
        writer.write_encoded(encode_chunk(data[i:min(i + CHUNK, stop)], writer.compression))


def interrupted(base: Path, chunks: int, compression: Compression) -> EwfWriter:
    w = EwfWriter(base, media_size=len(DATA), metadata=EwfMetadata(case_number="r"),
                  compression=compression, segment_size=SEGMENT)
    feed(w, DATA, 0, chunks * CHUNK)
    w.abort()
    return w


def finish(base: Path, compression: Compression | None, cut: int | None = None) -> int:
    if cut is not None:
        last = sorted(base.parent.glob(base.name + ".E*"))[-1]
        last.write_bytes(last.read_bytes()[:cut])
    writer, durable = EwfWriter.resume(base, segment_size=SEGMENT, compression=compression)
    assert durable % CHUNK == 0 or durable == len(DATA)
    with open_ewf(segment_path(base, 1), allow_incomplete=True) as img:
        kept = b"".join(b.data for b in img.scan(end=durable))
    assert kept == DATA[:durable]
    feed(writer, DATA, durable, len(DATA))
    writer.close(md5=md5hex(DATA), sha1=sha1hex(DATA))
    return durable


def check_finished(base: Path) -> None:
    first = segment_path(base, 1)
    with open_ewf(first) as img:
        assert img.complete
        assert img.read() == DATA
    assert pyewf_media(first) == DATA
    require_tool("ewfverify")
    proc = subprocess.run(["ewfverify", "-q", "-d", "sha1", str(first)], capture_output=True,
                          text=True, check=False)
    assert "SUCCESS" in proc.stdout, proc.stdout


@pytest.mark.parametrize("compression", [Compression.FAST, Compression.NONE])
def test_resume_after_segment_boundary(tmp_path: Path, compression: Compression) -> None:
    base = tmp_path / "img"
    interrupted(base, 70, compression)
    segments = sorted(tmp_path.glob("img.E*"))
    with open_ewf(segments[0], allow_incomplete=True) as img:
        readable = img.size  # what the finished segments hold
    if compression is Compression.NONE:
        assert len(segments) == 3
        assert readable >= 60 * CHUNK
    durable = finish(base, None)
    assert durable == readable
    check_finished(base)


def test_resume_from_complete_first_segment(tmp_path: Path) -> None:
    base = tmp_path / "img"
    interrupted(base, 60, Compression.NONE)
    segments = sorted(tmp_path.glob("img.E*"))
    assert len(segments) == 2
    # the first segment is complete (ends with next): its chunks are durable
    with open_ewf(segments[0], allow_incomplete=True) as img:
        first_segment_chunks = img.chunk_count
    durable = finish(base, Compression.NONE, cut=None)
    assert durable == first_segment_chunks * CHUNK
    check_finished(base)


@pytest.mark.parametrize("short", [0, 10])
def test_resume_keeps_only_complete_groups(tmp_path: Path, short: int) -> None:
    """A finished image cut after (or inside) its only group's table2."""
    base = tmp_path / "img"
    w = EwfWriter(base, media_size=len(DATA), metadata=EwfMetadata(),
                  compression=Compression.FAST, segment_size=DEFAULT_SEGMENT_SIZE)
    feed(w, DATA, 0, len(DATA))
    w.close(md5=md5hex(DATA), sha1=sha1hex(DATA))
    first = segment_path(base, 1)
    raw = first.read_bytes()
    offset = sx.FILE_HEADER_SIZE
    table2_end = 0
    while True:
        desc = sx.unpack_descriptor(raw[offset:offset + 76], offset)
        if desc.type == "table2":
            table2_end = desc.next
        if desc.next == offset:
            break
        offset = desc.next
    # cut after table2: every chunk is durable; cut inside it: the group cannot be trusted
    durable = finish(base, None, cut=table2_end - short)
    assert durable == (len(DATA) if short == 0 else 0)
    check_finished(base)


def test_resume_refusals(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="nothing to resume"):
        EwfWriter.resume(tmp_path / "none")
    base = tmp_path / "done"
    w = EwfWriter(base, media_size=len(DATA), metadata=EwfMetadata())
    feed(w, DATA, 0, len(DATA))
    w.close(md5=md5hex(DATA), sha1=sha1hex(DATA))
    with pytest.raises(UsageError, match="already complete"):
        EwfWriter.resume(base)
    early = tmp_path / "early"
    EwfWriter(early, media_size=len(DATA), metadata=EwfMetadata()).abort()
    first = segment_path(early, 1)
    first.write_bytes(first.read_bytes()[:200])
    with pytest.raises(IncompleteImageError):
        EwfWriter.resume(early)


def test_resume_keeps_complete_groups_in_the_last_segment(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sx, "MAX_TABLE_ENTRIES", 8)
    base = tmp_path / "img"
    interrupted(base, 45, Compression.NONE)  # E01 full (~31 chunks), E02: one group of 8 + 6
    last = sorted(tmp_path.glob("img.E*"))[-1]
    assert last.suffix == ".E02"
    raw = segment_path(base, 1).read_bytes()
    in_first, offset = 0, sx.FILE_HEADER_SIZE
    while True:  # count the first segment's table entries straight from the file
        desc = sx.unpack_descriptor(raw[offset:offset + 76], offset)
        if desc.type == "table":
            in_first += sx.unpack_table_header(raw[desc.body_offset:desc.body_offset + 24])[0]
        if desc.next == offset:
            break
        offset = desc.next
    durable = finish(base, None)
    assert durable == (in_first + 8) * CHUNK  # E01 whole + the one finished group of E02
    check_finished(base)


def test_resume_after_a_full_disk_replaces_the_empty_next_segment(tmp_path: Path) -> None:
    """A destination that fills leaves the next segment created but empty (0 bytes, no file
    header); --resume then stopped on it ("already exists (use --overwrite...)", and
    --overwrite did not help). The empty file is no segment: resume writes it. The set then
    verifies (ewfverify) and holds the source (libewf's reading of it)."""
    require_root()
    require_tool("mkfs.ext4", "resize2fs", "e2fsck", "ewfverify")
    source = tmp_path / "src.bin"
    source.write_bytes(make_disk_bytes(20 << 20, 7))
    disk = tmp_path / "dest.img"
    subprocess.run(["truncate", "-s", "8M", str(disk)], check=True)
    subprocess.run(["mkfs.ext4", "-q", "-F", str(disk)], check=True)
    mounted = tmp_path / "dest"
    mounted.mkdir()
    args = ("acquire", source, "-o", mounted / "h", "--compress", "none",
            "--segment-size", "2MiB")
    subprocess.run(["mount", "-o", "loop", str(disk), str(mounted)], check=True)
    try:
        full = run_bitwitness(*args)
        assert full.exit_code == 2
        assert "full" in full.stderr
        empty = [p for p in mounted.glob("h.E*") if p.stat().st_size == 0]
        assert empty, "the full disk must leave an empty next segment for this test"
    finally:
        subprocess.run(["umount", str(mounted)], check=True)
    subprocess.run(["truncate", "-s", "40M", str(disk)], check=True)
    subprocess.run(["e2fsck", "-fy", str(disk)], capture_output=True, check=False)
    subprocess.run(["resize2fs", str(disk)], capture_output=True, check=True)
    subprocess.run(["mount", "-o", "loop", str(disk), str(mounted)], check=True)
    try:
        resumed = run_bitwitness(*args, "--resume")
        assert resumed.exit_code == 0, resumed.stderr
        verified = subprocess.run(["ewfverify", "-q", str(mounted / "h.E01")],
                                  capture_output=True, text=True, check=False)
        assert "SUCCESS" in verified.stdout
        media = pyewf_media(mounted / "h.E01")
        assert md5hex(media) == md5hex(source.read_bytes())
    finally:
        subprocess.run(["umount", str(mounted)], check=True)
