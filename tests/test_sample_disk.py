"""The packaged sample disk, checked with tools that know nothing of BitWitness.

The description (``bitwitness.sample.description()``) was measured by the build script; here
xz, md5sum/sha1sum/sha256sum, mmls, fsstat, blkid, fls and icat look at the materialized disk and
must agree with it: partitions where the description puts them, every file listed (deleted ones
marked ``*`` by fls), every file's content (deleted ones recovered) hashing as recorded.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import re
import subprocess
from importlib import resources
from pathlib import Path

import pytest
from conftest import require_tool, sha256_of, snapshot

from bitwitness.errors import HashMismatchError, InputError, OutputExistsError, UsageError
from bitwitness.sample import (
    SAMPLE_NAME,
    FileSystemType,
    SampleDescription,
    SamplePartition,
    description,
    materialize,
)

DESC = description()
PARTITIONS = [pytest.param(p, id=p.fs_type.value) for p in DESC.partitions]
# fls -r -p: "r/r * 59:\tDocuments/x.txt" (type, deleted mark, inode, path)
FLS_LINE = re.compile(r"^(?P<type>\S+/\S+)\s+(?P<deleted>\*\s+)?(?P<inode>[\d-]+)"
                      r"(?:\(realloc\))?:\t(?P<path>.*)$")
# mmls: "002:  000:000   0000002048   0000069631   0000067584   Win95 FAT32 (0x0c)"
MMLS_LINE = re.compile(r"^\d+:\s+\d+:\d+\s+(?P<start>\d+)\s+(?P<end>\d+)\s+(?P<length>\d+)\s+"
                       r"(?P<desc>.*)$")


def run(*args: str | Path) -> str:
    return subprocess.run([str(a) for a in args], capture_output=True, check=True,
                          timeout=60).stdout.decode("utf-8")


def fls_entries(disk: Path, part: SamplePartition) -> dict[str, re.Match[str]]:
    """``/path`` -> parsed fls line, for one partition."""
    entries = {}
    for line in run("fls", "-r", "-p", "-o", str(part.start_sector), disk).splitlines():
        m = FLS_LINE.match(line)
        assert m, f"unexpected fls line {line!r}"
        entries["/" + m["path"]] = m
    return entries


@pytest.fixture(scope="module")
def disk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return materialize(tmp_path_factory.mktemp("sample") / f"{SAMPLE_NAME}.img")


def test_description_has_what_the_sample_promises() -> None:
    assert DESC.name == SAMPLE_NAME
    assert DESC.partition_table == "dos"
    assert [p.fs_type for p in DESC.partitions] == [FileSystemType.FAT32, FileSystemType.EXT4]
    for part in DESC.partitions:
        files = DESC.files_on(part.index)
        assert DESC.files_on(part.index, deleted=True), f"no deleted file on {part.fs_type}"
        assert any(not f.path.isascii() for f in files), f"no non-ASCII name on {part.fs_type}"
        folders = [d.path for d in DESC.directories if d.partition == part.index]
        assert any(path.count("/") > 1 for path in folders), f"no nested folder on {part.fs_type}"
        assert all(f.modified.utcoffset() is not None for f in files)
    # partitions lie inside the disk and do not overlap
    spans = sorted((p.offset, p.offset + p.size) for p in DESC.partitions)
    assert spans[0][0] > 0
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))
    assert spans[-1][1] <= DESC.size


def test_packaged_file_is_small_and_xz_decodes_it_as_described(tmp_path: Path) -> None:
    require_tool("xz", "md5sum", "sha1sum", "sha256sum")
    packed = resources.files("bitwitness.sample") / DESC.image_file
    data = packed.read_bytes()
    assert len(data) < 300_000
    raw = subprocess.run(["xz", "-dc"], input=data, capture_output=True, check=True).stdout
    assert len(raw) == DESC.size
    for tool, expected in (("md5sum", DESC.md5), ("sha1sum", DESC.sha1),
                           ("sha256sum", DESC.sha256)):
        out = subprocess.run([tool], input=raw, capture_output=True, check=True).stdout
        assert out.split()[0].decode() == expected, tool


def test_materialized_disk_hashes_as_described(disk: Path) -> None:
    require_tool("md5sum", "sha1sum", "sha256sum")
    assert disk.stat().st_size == DESC.size
    for tool, expected in (("md5sum", DESC.md5), ("sha1sum", DESC.sha1),
                           ("sha256sum", DESC.sha256)):
        assert run(tool, disk).split()[0] == expected, tool


def test_mmls_shows_the_described_partitions(disk: Path) -> None:
    require_tool("mmls")
    out = run("mmls", disk)
    assert "DOS Partition Table" in out
    found = {}
    for line in out.splitlines():
        m = MMLS_LINE.match(line.strip())
        if m and "Unallocated" not in m["desc"] and "Table" not in m["desc"]:
            found[int(m["start"])] = (int(m["length"]), m["desc"])
    assert sorted(found) == [p.start_sector for p in DESC.partitions]
    for part in DESC.partitions:
        length, text = found[part.start_sector]
        assert length == part.sector_count
        assert text.endswith(f"({part.type})")


@pytest.mark.parametrize("part", PARTITIONS)
def test_file_system_type_label_and_id(disk: Path, part: SamplePartition) -> None:
    require_tool("fsstat", "blkid")
    fsstat = run("fsstat", "-o", str(part.start_sector), disk)
    probe = dict(line.split("=", 1) for line in run(
        "blkid", "-p", "-O", str(part.offset), "-o", "export", disk).splitlines())
    assert probe["LABEL"] == part.label
    if part.fs_type is FileSystemType.FAT32:
        assert "File System Type: FAT32" in fsstat
        assert f"Volume ID: 0x{part.volume_id.lower()}" in fsstat
        assert (probe["TYPE"], probe["VERSION"]) == ("vfat", "FAT32")
    else:
        assert "File System Type: Ext4" in fsstat
        assert (probe["TYPE"], probe["UUID"]) == ("ext4", part.volume_id)


@pytest.mark.parametrize("part", PARTITIONS)
def test_fls_lists_every_described_file_and_folder(disk: Path, part: SamplePartition) -> None:
    require_tool("fls")
    entries = fls_entries(disk, part)
    for f in DESC.files_on(part.index):
        assert f.path in entries, f"fls does not list {f.path}"
        m = entries[f.path]
        assert m["type"] == "r/r"
        assert bool(m["deleted"]) == f.deleted, f.path
    for d in (d for d in DESC.directories if d.partition == part.index):
        assert entries[d.path]["type"] == "d/d"
        assert not entries[d.path]["deleted"]
    # the names that matter most, spelled out so a lost UTF-8 name cannot hide
    names = {p.rsplit("/", 1)[-1] for p in entries}
    wanted = {"Überweisung_2026.txt"} if part.fs_type is FileSystemType.FAT32 else {"報告.txt"}
    assert wanted <= names
    deleted = {p for p, m in entries.items() if m["deleted"]}
    assert deleted == {f.path for f in DESC.files_on(part.index, deleted=True)}


@pytest.mark.parametrize("part", PARTITIONS)
def test_icat_returns_described_content(disk: Path, part: SamplePartition) -> None:
    require_tool("fls", "icat")
    entries = fls_entries(disk, part)
    for f in DESC.files_on(part.index):
        data = subprocess.run(
            ["icat", "-o", str(part.start_sector), str(disk), entries[f.path]["inode"]],
            capture_output=True, check=True, timeout=60).stdout
        assert len(data) == f.size, f.path
        assert hashlib.sha256(data).hexdigest() == f.sha256, f.path


@pytest.mark.parametrize("part", PARTITIONS)
def test_fls_body_times_are_the_described_mtimes(disk: Path, part: SamplePartition) -> None:
    require_tool("fls")
    mtimes = {}
    body = run("fls", "-r", "-p", "-m", "/", "-o", str(part.start_sector), disk)
    for line in body.splitlines():
        fields = line.split("|")  # MD5|name|inode|mode|UID|GID|size|atime|mtime|ctime|crtime
        mtimes[fields[1].removesuffix(" (deleted)")] = int(fields[8])
    for f in DESC.files_on(part.index):
        assert mtimes[f.path] == int(f.modified.timestamp()), f.path


def test_reading_tools_leave_the_disk_unchanged(disk: Path) -> None:
    require_tool("mmls", "fls", "icat")
    before = snapshot([disk])
    run("mmls", disk)
    for part in DESC.partitions:
        run("fls", "-r", "-p", "-o", str(part.start_sector), disk)
    assert snapshot([disk]) == before
    assert sha256_of(disk) == DESC.sha256


def test_materialize_refuses_to_overwrite(tmp_path: Path) -> None:
    dest = tmp_path / "disk.img"
    dest.write_bytes(b"someone else's image")
    with pytest.raises(OutputExistsError) as info:
        materialize(dest)
    assert info.value.path == dest
    assert dest.read_bytes() == b"someone else's image"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["disk.img"]  # no temporary left

    assert materialize(dest, overwrite=True) == dest
    assert sha256_of(dest) == DESC.sha256
    assert sorted(p.name for p in tmp_path.iterdir()) == ["disk.img"]


def test_materialize_refuses_a_dangling_symlink(tmp_path: Path) -> None:
    dest = tmp_path / "link.img"
    dest.symlink_to(tmp_path / "nowhere.img")
    with pytest.raises(OutputExistsError):
        materialize(dest)
    assert not (tmp_path / "nowhere.img").exists()


def test_materialize_rejects_bad_destinations(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such folder"):
        materialize(tmp_path / "missing" / "disk.img")
    with pytest.raises(UsageError, match="is a folder"):
        materialize(tmp_path, overwrite=True)


def test_materialize_never_leaves_an_image_that_fails_its_hash(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wrong: SampleDescription = dataclasses.replace(DESC, sha256="0" * 64)
    monkeypatch.setattr("bitwitness.sample.description", lambda: wrong)
    with pytest.raises(HashMismatchError) as info:
        materialize(tmp_path / "disk.img")
    assert info.value.computed == DESC.sha256
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("part", PARTITIONS)
def test_file_systems_are_consistent(disk: Path, part: SamplePartition, tmp_path: Path) -> None:
    """fsck (read-only mode) finds nothing to repair: the deletions and fix-ups broke nothing."""
    checker = "fsck.vfat" if part.fs_type is FileSystemType.FAT32 else "e2fsck"
    require_tool(checker)
    volume = tmp_path / "volume.img"
    with disk.open("rb") as src:
        src.seek(part.offset)
        volume.write_bytes(src.read(part.size))
    result = subprocess.run([checker, "-n", *(["-f"] if checker == "e2fsck" else []), volume],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
