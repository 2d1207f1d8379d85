"""Every kind of partition table The Sleuth Kit reads, checked against ``mmls``: ``partitions``
(JSON and text) shows the rows ``mmls`` shows (index, slot, start, end, length, description,
and the kind ``mmls -a``/``-A``/``-m`` sort them into), and ``-p`` reaches the file system that
``fls``/``icat`` read at the row's offset.

The disks (64 MiB, 512-byte sectors) are built here by the tools that write each table:

- ``mbr_extended`` (sfdisk): two primary FAT partitions around a Win95 extended partition (0x0f)
  whose chain of extended boot records holds three logical partitions (an ext4, a FAT, an NTFS
  entry with nothing in it) with unallocated gaps between them and after the last;
- ``apm`` (parted ``mklabel mac``): an Apple Partition Map with a FAT partition and an empty one;
- ``sun`` (parted ``mklabel sun``): a Sun VTOC with a FAT partition and an empty one;
- ``bsd_disk``: a whole-disk BSD disklabel with a FAT ``a`` and a UFS1 ``b`` (makefs), written by
  tests/builders/bsdlabel.py (no Debian tool writes one where TSK reads it; util-linux reads it
  back here as the check of that writer);
- ``gpt_hybrid`` (sgdisk, then gdisk's hybrid-MBR command with 0xEE first): a GPT whose MBR also
  lists its first partition;
- ``gpt_hybrid_ee_last`` (``sgdisk -h 1:EE``): the same with the 0xEE entry after the hybrid
  one, which TSK does not take for a protective MBR: ``mmls`` shows the DOS table (the GPT is
  read by ``mmls -t gpt`` only, from the backup header) and so do we.

A GPT with a plain protective MBR is tested in test_browse_disks.py. BSD disklabels inside MBR
slices are tested below in ``test_bsd_labels_inside_mbr_slices``.
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from builders.bsdlabel import FS_BSDFFS, FS_MSDOS, write_disklabel
from conftest import require_tool, run_bitwitness

from bitwitness.errors import ExitCode

MIB = 1 << 20
SECTORS = 64 * MIB // 512
MTOOLS = {**os.environ, "MTOOLS_SKIP_CHECK": "1"}
TOOLS = ("sfdisk", "fdisk", "sgdisk", "gdisk", "parted", "mkfs.vfat", "mcopy", "mkfs.ext4",
         "makefs", "mmls", "fls", "icat")
_MMLS_ROW = re.compile(r"^(\d{3}):\s+(Meta|-------|\d{3}(?::\d{3})?)\s+(\d+)\s+(\d+)\s+(\d+)"
                       r"(?:   (.*))?$")


@dataclass(frozen=True)
class Found:
    """A file system the test put on a disk: where ``-p`` names it and where TSK reads it."""

    path: str  #: the -p path
    sector: int  #: its first 512-byte sector on the disk
    kind: str  #: "fat12", "ext4", "ffs1"...
    name: str  #: a file in its root
    content: bytes


@dataclass(frozen=True)
class Disk:
    image: Path
    found: tuple[Found, ...]


def _run(*args: str | Path, stdin: str | None = None) -> str:
    return subprocess.run([str(a) for a in args], input=stdin, capture_output=True, text=True,
                          check=True, env=MTOOLS).stdout


def _fat(image: Path, sector: int, sectors: int, name: str, content: bytes) -> None:
    _run("mkfs.vfat", "-F", "12", "--offset", str(sector), image, str(sectors // 2))
    src = image.parent / f"{image.stem}-{sector}.src"
    src.write_bytes(content)
    _run("mcopy", "-i", f"{image}@@{sector * 512}", src, f"::/{name}")


def _embed(image: Path, sector: int, fs: Path) -> None:
    _run("dd", f"if={fs}", f"of={image}", "bs=512", f"seek={sector}", "conv=notrunc",
         "status=none")


def _blank(folder: Path, name: str) -> Path:
    image = folder / f"{name}.img"
    image.unlink(missing_ok=True)
    _run("truncate", "-s", str(64 * MIB), image)
    return image


def _ext4(folder: Path, name: str, content: bytes) -> Path:
    staging = folder / "ext4-staging"
    staging.mkdir(exist_ok=True)
    (staging / name).write_bytes(content)
    fs = folder / "ext4.fs"
    _run("truncate", "-s", str(8 * MIB), fs)
    _run("mkfs.ext4", "-q", "-F", "-T", "small", "-d", staging, fs)
    return fs


def mbr_extended(folder: Path) -> Disk:
    image = _blank(folder, "mbr_extended")
    _run("sfdisk", "-q", image, stdin=(
        "label: dos\n"
        "start=2048, size=16384, type=c\n"
        "start=20480, size=90112, type=f\n"
        "start=22528, size=16384, type=83\n"
        "start=45056, size=8192, type=c\n"
        "start=61440, size=16384, type=7\n"
        "start=112640, size=16384, type=c\n"))
    _fat(image, 2048, 16384, "FIRST.TXT", b"primary before the extended partition\n")
    _embed(image, 22528, _ext4(folder, "logical.txt", b"first logical, ext4\n"))
    _fat(image, 45056, 8192, "SECOND.TXT", b"second logical, after a gap\n")
    _fat(image, 112640, 16384, "LAST.TXT", b"primary after the extended partition\n")
    return Disk(image, (
        Found("2", 2048, "fat12", "FIRST.TXT", b"primary before the extended partition\n"),
        Found("6", 22528, "ext4", "logical.txt", b"first logical, ext4\n"),
        Found("10", 45056, "fat12", "SECOND.TXT", b"second logical, after a gap\n"),
        Found("16", 112640, "fat12", "LAST.TXT", b"primary after the extended partition\n")))


def _parted(image: Path, label: str, *parts: str) -> None:
    _run("parted", "-s", image, "mklabel", label, *parts)


def apm(folder: Path) -> Disk:
    image = _blank(folder, "apm")
    _parted(image, "mac", "mkpart", "evidence", "fat32", "2048s", "34815s",
            "mkpart", "spare", "ext2", "40960s", "61439s")
    _fat(image, 2048, 32768, "APPLE.TXT", b"inside an Apple Partition Map\n")
    return Disk(image, (Found("4", 2048, "fat12", "APPLE.TXT",
                              b"inside an Apple Partition Map\n"),))


def sun(folder: Path) -> Disk:
    image = _blank(folder, "sun")
    _parted(image, "sun", "mkpart", "ext2", "2048s", "34815s", "mkpart", "fat32", "40960s",
            "61439s")
    _fat(image, 2048, 32768, "SUN.TXT", b"inside a Sun VTOC\n")
    return Disk(image, (Found("2", 2048, "fat12", "SUN.TXT", b"inside a Sun VTOC\n"),))


def bsd_disk(folder: Path) -> Disk:
    from fsimages import ufs1

    image = _blank(folder, "bsd_disk")
    write_disklabel(image, {0: (2048, 38912, FS_MSDOS), 1: (61440, 20480, FS_BSDFFS)},
                    sectors=SECTORS)
    _fat(image, 2048, 38912, "BSD.TXT", b"inside a BSD disklabel\n")
    _embed(image, 61440, ufs1(folder / "ufs1.fs"))
    return Disk(image, (Found("2", 2048, "fat12", "BSD.TXT", b"inside a BSD disklabel\n"),
                        Found("4", 61440, "ffs1", "usr/home/readme.txt", b"ufs readme\n")))


def _gpt(folder: Path, name: str) -> Path:
    image = _blank(folder, name)
    _run("sgdisk", "-n1:2048:+16M", "-t1:0700", "-c1:data", "-n2:0:+16M", "-t2:8300",
         "-c2:linux", image)
    _fat(image, 2048, 32768, "GPT.TXT", b"first GPT partition\n")
    return image


def gpt_hybrid(folder: Path) -> Disk:
    image = _gpt(folder, "gpt_hybrid")
    # gdisk: recovery menu, hybrid MBR of partition 1, 0xEE first, default type, not
    # bootable, no other entries, write, confirm
    _run("gdisk", image, stdin="r\nh\n1\nY\n\nN\nN\nw\nY\n")
    assert Path(image).read_bytes()[446 + 4] == 0xEE
    return Disk(image, (Found("4", 2048, "fat12", "GPT.TXT", b"first GPT partition\n"),))


def gpt_hybrid_ee_last(folder: Path) -> Disk:
    image = _gpt(folder, "gpt_hybrid_ee_last")
    _run("sgdisk", "-h", "1:EE", image)
    assert Path(image).read_bytes()[446 + 16 + 4] == 0xEE
    return Disk(image, (Found("3", 2048, "fat12", "GPT.TXT", b"first GPT partition\n"),))


BUILDERS = {f.__name__: f for f in (mbr_extended, apm, sun, bsd_disk, gpt_hybrid,
                                     gpt_hybrid_ee_last)}
SCHEMES = {"mbr_extended": "dos", "apm": "mac", "sun": "sun", "bsd_disk": "bsd",
           "gpt_hybrid": "gpt", "gpt_hybrid_ee_last": "dos"}


@functools.cache
def _built(folder: Path, name: str) -> Disk:
    folder.mkdir(parents=True, exist_ok=True)
    disk = BUILDERS[name](folder)
    disk.image.chmod(0o444)
    return disk


@pytest.fixture(scope="module", params=sorted(BUILDERS))
def disk(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Disk:
    require_tool(*TOOLS)
    return _built(tmp_path_factory.getbasetemp() / "partition-tables", request.param)


def mmls_rows(image: Path, *args: str) -> list[tuple[int, str, int, int, int, str]]:
    """(index, slot, start, end, length, description) of every row ``mmls`` prints."""
    out = _run("mmls", *args, image)
    rows = []
    for line in out.splitlines():
        match = _MMLS_ROW.match(line)
        if match:
            index, slot, start, end, length, description = match.groups()
            rows.append((int(index), slot, int(start), int(end), int(length), description or ""))
    return rows


def mmls_kinds(image: Path, *args: str) -> dict[int, str]:
    """The kind of each row, as ``mmls -a`` (allocated), ``-A`` and ``-m`` select them."""
    kinds = {}
    for flag, kind in (("-a", "partition"), ("-A", "unallocated"), ("-m", "meta")):
        for row in mmls_rows(image, flag, *args):
            kinds[row[0]] = kind
    return kinds


def test_rows_agree_with_mmls(disk: Disk) -> None:
    res = run_bitwitness("partitions", disk.image, "--json")
    assert res.exit_code == ExitCode.OK, res.stderr
    doc = res.json()
    name = disk.image.stem
    assert doc["scheme"] == SCHEMES[name]
    theirs = mmls_rows(disk.image)
    assert len(theirs) >= 5
    assert [(p["index"], p["slot"], p["start"], p["end"], p["length"], p["description"])
            for p in doc["partitions"]] == theirs
    assert {p["index"]: p["kind"] for p in doc["partitions"]} == mmls_kinds(disk.image)
    found = {p["path"]: p["filesystem"] for p in doc["partitions"] if p["filesystem"]}
    assert found == {f.path: f.kind for f in disk.found}


def test_text_rows_agree_with_mmls(disk: Disk) -> None:
    res = run_bitwitness("partitions", disk.image)
    assert res.exit_code == ExitCode.OK, res.stderr
    ours = []
    for line in res.stdout.splitlines()[2:]:
        cols = line.split(None, 6)
        if cols and cols[0].isdigit():
            ours.append((int(cols[0]), cols[2], int(cols[3]), int(cols[4]), int(cols[5])))
    assert ours == [row[:5] for row in mmls_rows(disk.image)]


def test_p_reaches_the_file_system_fls_reads(disk: Disk) -> None:
    for found in disk.found:
        fls = _run("fls", "-r", "-p", "-u", "-o", str(found.sector), disk.image)
        wanted = {line.split("\t", 1)[1] for line in fls.splitlines()}
        assert found.name in wanted
        res = run_bitwitness("ls", "-r", "-p", found.path, disk.image, "--json")
        assert res.exit_code == ExitCode.OK, res.stderr
        assert {e["path"].lstrip("/") for e in res.json()["entries"]} == wanted
        inode = next(line.split(":", 1)[0].split()[-1] for line in fls.splitlines()
                     if line.endswith(f"\t{found.name}"))
        icat = subprocess.run(["icat", "-o", str(found.sector), str(disk.image), inode],
                              capture_output=True, check=True).stdout
        assert icat == found.content
        cat = run_bitwitness("cat", "-p", found.path, disk.image, found.name)
        assert cat.exit_code == ExitCode.OK, cat.stderr
        assert cat.stdout.encode() == icat


def test_bsd_disklabel_writer_reads_back_with_util_linux(tmp_path_factory: pytest.TempPathFactory
                                                         ) -> None:
    """The test-only writer's label is one util-linux reads (magic, checksum, partitions)."""
    require_tool(*TOOLS)
    disk = _built(tmp_path_factory.getbasetemp() / "partition-tables", "bsd_disk")
    dump = _run("sfdisk", "-d", disk.image)
    assert "label: bsd" in dump
    starts = {int(m.group(1)): int(m.group(2)) for m in
              re.finditer(r"start=\s*(\d+), size=\s*(\d+)", dump)}
    assert starts == {2048: 38912, 61440: 20480, 0: SECTORS}


# --- BSD disklabels inside MBR slices ---------------------------------------------------------

SLICE_ABS = 2048  # fdisk's nested label: offsets counted from the disk's start
SLICE_REL = 104448  # our writer's label, FreeBSD's way: offsets counted from the slice's start


@functools.cache
def _slices(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    image = _blank(folder, "bsd_slices")
    _run("sfdisk", "-q", image, stdin="label: dos\nstart=2048, size=100000, type=a5\n")
    # fdisk's nested BSD label: "b" (create it), partition a at sector 4096 of the disk,
    # partition b at 50000, write, quit
    _run("fdisk", image, stdin="b\ny\nn\na\n4096\n+20M\nn\nb\n50000\n+10M\nw\nq\n")
    _run("sfdisk", "-q", "--append", image, stdin=f"start={SLICE_REL}, size=20480, type=a9\n")
    write_disklabel(image, {0: (64, 16384, FS_MSDOS)}, first_sector=SLICE_REL, sectors=20480)
    _fat(image, 4096, 40000, "ABS.TXT", b"label counting from the disk\n")
    _fat(image, SLICE_REL + 64, 16384, "REL.TXT", b"label counting from the slice\n")
    image.chmod(0o444)
    return image


@pytest.fixture(scope="module")
def slices(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_tool(*TOOLS)
    return _slices(tmp_path_factory.getbasetemp() / "partition-tables")


def test_bsd_labels_inside_mbr_slices(slices: Path) -> None:
    """Each slice's label is a child table whose rows are ``mmls -o SLICE``'s rows.

    fdisk's label counts from the disk's start: its raw partition ``c`` starts where the slice
    starts (2048), and its ``a`` at 4096, where fdisk put it and where ``fls -o 4096`` finds the
    FAT. TSK counts every BSD offset from the label's volume, so ``mmls -o 2048`` shows ``a`` at
    "4096" of the slice, i.e. disk sector 6144, where there is no file system (``fls -o 6144``
    fails): mmls is wrong about where such a row's data lies. We keep mmls's numbers for the row
    and read its bytes where the BSD kernels do (the row moved back by the slice's start).
    """
    doc = run_bitwitness("partitions", slices, "--json").json()
    rows = {p["start"]: p for p in doc["partitions"] if p["kind"] == "partition"}
    assert set(rows) == {SLICE_ABS, SLICE_REL}
    for slice_start, shift in ((SLICE_ABS, SLICE_ABS), (SLICE_REL, 0)):
        row = rows[slice_start]
        assert row["filesystem"] is None
        theirs = [r for r in mmls_rows(slices, "-o", str(slice_start))
                  if r[1] not in ("Meta", "-------")]
        ours = row["volumes"]
        shown = [(v["path"], v["slot"], v["start"], v["end"], v["length"], v["description"])
                 for v in ours]
        size = row["length"]
        inside = [r for r in theirs if 0 <= r[2] - shift < size]
        assert shown == [(f"{row['index']}/p{r[0]}", *r[1:]) for r in inside]
        assert all(v["offset"] == (v["start"] - shift) * 512 for v in ours)
    absolute = next(v for v in rows[SLICE_ABS]["volumes"] if v["slot"] == "000")
    assert absolute["start"] == 4096
    assert absolute["filesystem"] == "fat12"
    assert subprocess.run(["fls", "-o", str(SLICE_ABS + 4096), str(slices)],
                          capture_output=True, check=False).returncode != 0
    for path, sector, name, content in (
            (absolute["path"], 4096, "ABS.TXT", b"label counting from the disk\n"),
            (next(v["path"] for v in rows[SLICE_REL]["volumes"] if v["slot"] == "000"),
             SLICE_REL + 64, "REL.TXT", b"label counting from the slice\n")):
        fls = _run("fls", "-r", "-p", "-u", "-o", str(sector), slices)
        res = run_bitwitness("ls", "-r", "-p", path, slices, "--json")
        assert res.exit_code == ExitCode.OK, res.stderr
        assert ({e["path"].lstrip("/") for e in res.json()["entries"]}
                == {line.split("\t", 1)[1] for line in fls.splitlines()})
        assert run_bitwitness("cat", "-p", path, slices, name).stdout == content.decode()
    text = run_bitwitness("partitions", slices).stdout
    assert f"{absolute['path']}  partition" in text
    assert "slot 000, sectors 4096-" in text


def test_p_names_the_slice_and_lists_its_file_systems(slices: Path) -> None:
    res = run_bitwitness("ls", "-p", "2", slices)
    assert res.exit_code == ExitCode.USAGE
    assert "-p 2/p3 (fat12)" in res.stderr
