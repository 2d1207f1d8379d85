"""``-p N`` on a disk whose file systems The Sleuth Kit does not open (btrfs, XFS): the rows are
found by where ``sgdisk`` put the partitions, each is browsed by its own reader, and a wrong
choice names the file systems there are instead of "none".

The disk is made with ``sgdisk``; the file systems with ``mkfs.btrfs`` and ``mkfs.xfs`` (each
with one file written by ``mkfs --rootdir``/``-p`` where the tool offers it, else empty), copied
in at the partitions' starts with ``dd``.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from conftest import require_tool, run_bitwitness

MIB = 1 << 20


def _sh(*args: str | Path) -> str:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True,
                          check=True).stdout


@pytest.fixture(scope="module")
def disk(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    """A GPT disk: btrfs, XFS, then an empty partition; its rows' start sectors by sgdisk."""
    require_tool("sgdisk", "mkfs.btrfs", "mkfs.xfs")
    work = tmp_path_factory.mktemp("choice")
    root = work / "root"
    root.mkdir()
    (root / "in-btrfs.txt").write_bytes(b"btrfs file\n")
    btrfs, xfs = work / "btrfs.img", work / "xfs.img"
    for part, size in ((btrfs, 120), (xfs, 310)):
        with part.open("wb") as out:
            out.truncate(size * MIB)
    _sh("mkfs.btrfs", "-q", "--rootdir", root, btrfs)
    _sh("mkfs.xfs", "-q", xfs)
    image = work / "disk.img"
    with image.open("wb") as out:
        out.truncate(460 * MIB)
    _sh("sgdisk", "-n1:2048:+120M", "-n2:0:+310M", "-n3:0:0", image)
    starts = {}
    for line in _sh("sgdisk", "-p", image).splitlines():
        found = re.match(r"\s+(\d)\s+(\d+)\s+\d+", line)
        if found:
            starts[found.group(1)] = int(found.group(2))
    for number, part in (("1", btrfs), ("2", xfs)):
        _sh("dd", f"if={part}", f"of={image}", "bs=512", f"seek={starts[number]}",
            "conv=notrunc,sparse", "status=none")
    return image, starts


def _rows(image: Path) -> dict[int, dict[str, object]]:
    result = run_bitwitness("partitions", "--json", image)
    assert result.exit_code == 0, result.stderr
    return {row["start"]: row for row in json.loads(result.stdout)["partitions"]
            if row["kind"] == "partition"}


def test_rows_name_the_file_systems_tsk_does_not_open(disk: tuple[Path, dict[str, int]]) -> None:
    image, starts = disk
    rows = _rows(image)
    assert rows[starts["1"]]["filesystem"] == "btrfs"
    assert rows[starts["2"]]["filesystem"] == "xfs"
    assert rows[starts["3"]]["filesystem"] is None


def test_each_row_is_browsed_by_its_reader(disk: tuple[Path, dict[str, int]]) -> None:
    image, starts = disk
    rows = _rows(image)
    btrfs = run_bitwitness("ls", "-p", str(rows[starts["1"]]["index"]), image)
    assert btrfs.exit_code == 0, btrfs.stderr
    assert "in-btrfs.txt" in btrfs.stdout
    xfs = run_bitwitness("ls", "--offset", str(starts["2"]), image)
    assert xfs.exit_code == 0, xfs.stderr


@pytest.mark.parametrize("which", ["empty", "missing"])
def test_a_wrong_row_names_the_file_systems_there_are(disk: tuple[Path, dict[str, int]],
                                                      which: str) -> None:
    image, starts = disk
    rows = _rows(image)
    index = rows[starts["3"]]["index"] if which == "empty" else 99
    result = run_bitwitness("ls", "-p", str(index), image)
    assert result.exit_code == 2
    line = result.stderr.strip()
    assert "\n" not in line
    assert "Traceback" not in line
    for number, kind in (("1", "btrfs"), ("2", "xfs")):
        assert f"-p {rows[starts[number]]['index']} ({kind} at sector {starts[number]})" in line
    assert "none" not in line


def test_a_partition_past_the_media_end_is_said(disk: tuple[Path, dict[str, int]],
                                                tmp_path: Path) -> None:
    """An image cut short inside its first partition (an incomplete acquisition). The Sleuth
    Kit then refuses the whole GPT (a partition starts past the image's end) and ``mmls``
    shows only the protective MBR; BitWitness reads the GPT itself (report/browse/gpt.py):
    the rows are those ``sgdisk`` reads from the same cut image, the sectors each lacks are
    counted from sgdisk's ends and the file's size, said by ``partitions`` and by every
    command that browses such a row, and the file system whose start survived is read."""
    image, starts = disk
    cut = tmp_path / "cut.img"
    size = (starts["1"] + 50 * 2048) * 512  # 50 MiB into the 120 MiB btrfs
    with image.open("rb") as source, cut.open("wb") as out:
        out.write(source.read(size))
    mmls = subprocess.run(["mmls", cut], capture_output=True, text=True, check=False).stdout
    assert "GPT Safety Partition" in mmls or not mmls  # TSK: no GPT
    ends = {}
    for line in subprocess.run(["sgdisk", "-p", cut], capture_output=True, text=True,
                               check=False).stdout.splitlines():
        found = re.match(r"\s+(\d)\s+(\d+)\s+(\d+)", line)
        if found:
            assert int(found.group(2)) == starts[found.group(1)]
            ends[found.group(1)] = int(found.group(3))
    assert set(ends) == {"1", "2", "3"}
    media_sectors = cut.stat().st_size // 512
    rows = _rows(cut)
    assert {r["start"] for r in rows.values()} == set(starts.values())
    for number, start in starts.items():
        row = rows[start]
        assert row["end"] == ends[number]
        wanted = ends[number] + 1 - start
        present = max(0, min(media_sectors, ends[number] + 1) - start)
        assert row["missing_sectors"] == wanted - present
    assert rows[starts["1"]]["filesystem"] == "btrfs"
    listed = run_bitwitness("partitions", cut)
    assert listed.exit_code == 0
    first = rows[starts["1"]]
    assert (f"{first['missing_sectors']} of its {ends['1'] + 1 - starts['1']} sectors are not "
            "in the image") in listed.stderr
    assert "past the end of the media" not in run_bitwitness("partitions", image).stderr
    browsed = run_bitwitness("ls", "-p", str(first["index"]), cut)
    assert browsed.exit_code == 0, browsed.stderr
    assert "in-btrfs.txt" in browsed.stdout
    assert "past the end of the media" in browsed.stderr


def test_our_gpt_rows_are_mmls_rows(disk: tuple[Path, dict[str, int]]) -> None:
    """On the whole disk, where TSK accepts the GPT, our reader gives the rows ``mmls``
    prints (slot, start, end, length, description, in its order): the fallback reads as TSK
    would if the image were whole."""
    from bitwitness.image import open_image
    from bitwitness.report.browse.gpt import read_gpt

    image, _ = disk
    printed = []
    for line in _sh("mmls", image).splitlines():
        found = re.match(r"\d+:\s+(\S+)\s+(\d+)\s+(\d+)\s+(\d+)\s*(.*)$", line)
        if found:
            slot, start, end, length, text = found.groups()
            printed.append((slot, int(start), int(end), int(length), text.strip()))
    stream = open_image(image)
    try:
        found_gpt = read_gpt(stream)
    finally:
        stream.close()
    assert found_gpt is not None
    sector, rows = found_gpt
    assert sector == 512
    ours = [(r.slot, r.start, r.start + r.length - 1, r.length, r.description) for r in rows]
    assert ours == printed


def test_a_file_system_past_the_media_end_is_said(tmp_path: Path) -> None:
    """No partition table, an ext4 image cut short: the file system's own size (``fsstat``'s
    "Block Range") runs past what the image holds ("Total Range in Image"); every browsing
    command says how many blocks are missing, and the whole image draws no word."""
    require_tool("mkfs.ext4", "fsstat")
    whole, cut = tmp_path / "whole.img", tmp_path / "cut.img"
    with whole.open("wb") as out:
        out.truncate(64 * MIB)
    _sh("mkfs.ext4", "-q", "-b", "1024", whole)
    with whole.open("rb") as source, cut.open("wb") as out:
        out.write(source.read(20 * MIB))
    stat = _sh("fsstat", cut)
    last = int(re.search(r"^Block Range: 0 - (\d+)", stat, re.MULTILINE).group(1))
    present = int(re.search(r"^Total Range in Image: 0 - (\d+)", stat, re.MULTILINE).group(1))
    assert present < last
    for command in (["ls"], ["timeline"], ["stat", "--inode", "2"]):
        result = run_bitwitness(*command, cut)
        assert result.exit_code == 0, result.stderr
        assert (f"{last - present} of its {last + 1} blocks of 1024 bytes are not in the image"
                in result.stderr), command
        assert "past the end" not in run_bitwitness(*command, whole).stderr


@pytest.mark.parametrize(("field", "value"), [("entry_size", 1 << 30), ("count", 1 << 31),
                                              ("entries_at", 1 << 60)])
def test_a_hostile_gpt_header_is_not_followed(tmp_path: Path, field: str, value: int) -> None:
    """A GPT header whose CRC32 checks out but asks for a table of absurd size or place:
    refused before anything is read (the image is then its protective MBR's), in bounded
    memory."""
    import struct
    import zlib

    from bitwitness.report.browse.gpt import read_gpt
    from bitwitness.stream import BytesStream

    disk = bytearray(1 << 20)
    header = bytearray(512)
    fields = {"entry_size": 128, "count": 128, "entries_at": 2, field: value}
    struct.pack_into("<8sIIIIQQQQ16sQIII", header, 0, b"EFI PART", 0x10000, 92, 0, 0, 1,
                     2047, 34, 2014, bytes(16), fields["entries_at"], fields["count"],
                     fields["entry_size"], 0)
    struct.pack_into("<I", header, 16, zlib.crc32(bytes(header[:92])))
    disk[512:1024] = header

    class Watched(BytesStream):
        """Keeps the largest read asked for (a huge image would have to hold it)."""

        largest = 0

        def pread(self, offset: int, length: int) -> bytes:
            Watched.largest = max(Watched.largest, length)
            return super().pread(offset, length)

    assert read_gpt(Watched(bytes(disk))) is None
    assert Watched.largest <= 8 << 20


def test_a_gpt_disk_cut_in_its_free_space_is_said(disk: tuple[Path, dict[str, int]],
                                                  tmp_path: Path) -> None:
    """An image cut after its last partition, before the disk's end: every partition is whole,
    TSK reads the table, but the GPT's backup header (``sgdisk`` put it in the file's last
    sector) is gone: ``partitions`` says how many sectors the image lacks against the disk the
    table was written for."""
    image, _ = disk
    cut = tmp_path / "tail.img"
    keep = image.stat().st_size - 16 * 512
    with image.open("rb") as source, cut.open("wb") as out:
        out.write(source.read(keep))
    whole = run_bitwitness("partitions", "--json", image).json()
    assert whole["missing_disk_sectors"] == 0
    result = run_bitwitness("partitions", "--json", cut)
    assert result.exit_code == 0
    disk_sectors = image.stat().st_size // 512  # sgdisk wrote the table for the whole file
    assert result.json()["missing_disk_sectors"] == disk_sectors - keep // 512
    text = run_bitwitness("partitions", cut)
    assert (f"the GPT was written for a disk of {disk_sectors} sectors" in text.stderr)
