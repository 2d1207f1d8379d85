"""Test images for the browsing tests, built on the fly, and the partition listing checked
against ``mmls``.

``built(base)`` makes (once per session and worker) a 96 MiB GPT disk with a FAT32 partition
(mkfs.vfat --offset, files added with mtools, one deleted with mdel) and an ext4 partition
(mkfs.ext4 -d from a staging folder, one file deleted with debugfs, written into the disk with
dd conv=notrunc), plus the same ext4 alone (no partition table) and an ext4 full of names that
are hostile to an export (``CON``, ``a\\b``, ``x:y``, a newline, 254 bytes, ...).
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import require_tool, snapshot

FAT_START = 2048
EXT_START = 100352
MTOOLS_ENV = {**os.environ, "MTOOLS_SKIP_CHECK": "1"}
HOSTILE_NAMES = ["CON", "a\\b", "x:y", "100%", "line\nbreak", "é" * 127, "...", "trail. ",
                 "nul.txt", "-rf"]
TOOLS = ("sgdisk", "mkfs.vfat", "mmd", "mcopy", "mdel", "mkfs.ext4", "debugfs", "fls", "icat",
         "mmls")


@dataclass(frozen=True)
class Disks:
    gpt: Path  # GPT: p4 FAT32 at 2048, p5 ext4 at 100352 (mmls rows)
    ext4: Path  # the ext4 alone, no partition table
    hostile: Path  # ext4 with hostile names, no partition table
    fat_files: dict[str, bytes]  # path in the FAT -> content (allocated files)
    ext_files: dict[str, bytes]


def _run(*args: str | Path, env: dict[str, str] | None = None) -> None:
    subprocess.run([str(a) for a in args], check=True, capture_output=True, env=env)


def _ext4(staging: Path, image: Path, size_mb: int) -> None:
    _run("truncate", "-s", f"{size_mb}M", image)
    _run("mkfs.ext4", "-q", "-F", "-T", "small", "-L", "linux", "-d", staging, image)


@functools.cache
def built(base: Path) -> Disks:
    base.mkdir(parents=True, exist_ok=True)
    ext_files = {
        "/home/ana/notes.txt": b"notes of ana\n",
        "/home/ana/projects/big.bin": bytes(range(256)) * 1500,
        "/home/ana/Ωmega ünï.txt": "ünïcødé\n".encode(),
        "/we:ird.txt": b"x\n",
        "/home/ana/gone.txt": b"to be deleted\n",
    }
    staging = base / "staging"
    for path, data in ext_files.items():
        target = staging / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    (staging / "empty").mkdir()
    (staging / "home/ana/link").symlink_to("notes.txt")
    ext4 = base / "ext4.img"
    _ext4(staging, ext4, 30)
    _run("debugfs", "-w", "-R", "rm /home/ana/gone.txt", ext4)
    del ext_files["/home/ana/gone.txt"]

    gpt = base / "gpt.img"
    _run("truncate", "-s", "96M", gpt)
    _run("sgdisk", "-n1:2048:+48M", "-t1:0700", "-c1:data", "-n2:0:+30M", "-t2:8300",
         "-c2:linux", gpt)
    _run("mkfs.vfat", "-F", "32", "-s", "1", "--offset", str(FAT_START), "-n", "EVID", gpt,
         "49152")
    fat = f"{gpt}@@{FAT_START * 512}"
    fat_files = {
        "/docs/hello.txt": b"hello\n",
        "/docs/deep/secret.txt": b"secret data " * 500,
        "/Ünïcødé файл.txt": "ünï\n".encode(),
    }
    _run("mmd", "-i", fat, "::/docs", "::/docs/deep", env=MTOOLS_ENV)
    for path, data in [*fat_files.items(), ("/todelete.txt", b"deleted " * 900)]:
        src = base / "src.bin"
        src.write_bytes(data)
        _run("mcopy", "-i", fat, src, f"::{path}", env=MTOOLS_ENV)
    _run("mdel", "-i", fat, "::/todelete.txt", env=MTOOLS_ENV)
    _run("dd", f"if={ext4}", f"of={gpt}", "bs=512", f"seek={EXT_START}", "conv=notrunc",
         "status=none")

    hostile_stage = base / "hostile"
    (hostile_stage / "dir").mkdir(parents=True)
    for number, name in enumerate(HOSTILE_NAMES):
        (hostile_stage / "dir" / name).write_bytes(f"hostile {number}\n".encode())
    hostile = base / "hostile.img"
    _ext4(hostile_stage, hostile, 4)
    for img in (gpt, ext4, hostile):
        img.chmod(0o444)
    shutil.rmtree(staging)
    return Disks(gpt, ext4, hostile, fat_files, ext_files)


def make_disks(tmp_path_factory: pytest.TempPathFactory) -> Disks:
    """The session's test disks (built once per process; other modules' fixtures call this)."""
    require_tool(*TOOLS)
    return built(tmp_path_factory.getbasetemp() / "browse-disks")


@pytest.fixture(scope="session")
def disks(tmp_path_factory: pytest.TempPathFactory) -> Disks:
    return make_disks(tmp_path_factory)


def mmls_rows(image: Path, *args: str) -> list[tuple[int, int, int, int, str]]:
    """(index, start, end, length, description) from ``mmls``."""
    out = subprocess.run(["mmls", *args, str(image)], capture_output=True, text=True,
                         check=True).stdout
    rows = []
    for line in out.splitlines():
        head, _, rest = line.partition(":")
        if head.isdigit() and rest.strip():
            parts = rest.split(None, 4)
            rows.append((int(head), int(parts[1]), int(parts[2]), int(parts[3]), parts[4]))
    return rows


def test_partitions_agree_with_mmls_on_gpt(disks: Disks, bw) -> None:
    before = snapshot([disks.gpt])
    result = bw("partitions", disks.gpt, "--json")
    assert result.exit_code == 0, result.stderr
    doc = result.json()
    assert doc["scheme"] == "gpt"
    ours = [(p["index"], p["start"], p["end"], p["length"], p["description"])
            for p in doc["partitions"]]
    assert ours == mmls_rows(disks.gpt)
    found = {p["index"]: p["filesystem"] for p in doc["partitions"] if p["filesystem"]}
    assert found == {4: "fat32", 5: "ext4"}
    assert snapshot([disks.gpt]) == before


def test_gpt_read_from_its_backup_when_the_primary_is_wiped(disks: Disks, bw,
                                                             tmp_path: Path) -> None:
    """Sectors 1-33 (primary GPT header and table) zeroed: TSK's detection settles for the
    protective MBR, whose one 0xEE partition hid every real one (and ``mmls`` does the same);
    the GPT is read from its backup header as ``mmls -t gpt`` reads it, and ``-p`` reaches the
    file systems ``fls -o`` lists."""
    image = tmp_path / "wiped.img"
    shutil.copyfile(disks.gpt, image)
    with image.open("r+b") as f:
        f.seek(512)
        f.write(bytes(33 * 512))
    assert any("(0xee)" in row[4] for row in mmls_rows(image))  # plain mmls: the MBR only
    result = bw("partitions", image, "--json")
    assert result.exit_code == 0, result.stderr
    doc = result.json()
    assert doc["scheme"] == "gpt"
    ours = [(p["index"], p["start"], p["end"], p["length"], p["description"])
            for p in doc["partitions"]]
    assert ours == mmls_rows(image, "-t", "gpt")
    found = {p["filesystem"]: p for p in doc["partitions"] if p["filesystem"]}
    assert set(found) == {"fat32", "ext4"}
    for part in found.values():
        listing = bw("ls", "-r", "--all", "-p", str(part["index"]), image)
        fls = subprocess.run(["fls", "-r", "-p", "-o", str(part["start"]), str(image)],
                             capture_output=True, text=True, check=True).stdout
        assert sorted(listing.stdout.splitlines()) == sorted(fls.splitlines())


def test_partitions_without_a_table(disks: Disks, bw) -> None:
    result = bw("partitions", disks.ext4, "--json")
    assert result.exit_code == 0, result.stderr
    doc = result.json()
    assert doc["scheme"] == "none"
    assert [(p["index"], p["kind"], p["start"], p["filesystem"]) for p in doc["partitions"]] == [
        (0, "whole", 0, "ext4")]
    human = bw("partitions", disks.gpt)
    assert human.exit_code == 0
    assert "fat32" in human.stdout
    assert "ext4" in human.stdout


def test_partitions_on_ftk_imager_e01_agree_with_mmls_listing(third_party: Path, bw) -> None:
    pytest.importorskip("bitwitness.images.ewf")
    reference = []
    for line in (third_party / "listings/tsk_imageformat_mmls_1.mmls.txt").read_text().splitlines():
        head, _, rest = line.partition(":")
        if head.isdigit():
            parts = rest.split(None, 4)
            reference.append((int(head), int(parts[1]), int(parts[2]), int(parts[3]), parts[4]))
    doc = bw("partitions", third_party / "tsk_imageformat_mmls_1.E01", "--json").json()
    assert doc["scheme"] == "dos"
    assert [(p["index"], p["start"], p["end"], p["length"], p["description"])
            for p in doc["partitions"]] == reference
    assert [p["filesystem"] for p in doc["partitions"] if p["filesystem"]] == ["ntfs", "ntfs"]
