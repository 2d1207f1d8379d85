"""An image declaring 4096-byte logical sectors is browsed in that unit: ``partitions`` shows the
rows ``mmls -b 4096`` shows, ``-p`` and ``--offset`` reach the file system ``fls -b 4096 -o``
lists.

The disk: an MBR counting in 4096-byte sectors (two primary partitions, as a disk with 4Kn
sectors has them) and a FAT file system of 4096-byte sectors (``mkfs.vfat -S 4096``) in the
second; acquired with ``ewfacquire -P 4096``, so that the E01 declares the unit, and converted
to VHDX by ``qemu-img``, whose metadata is then marked with 4096-byte logical sectors
(tests/builders/vhdx_sectors.py: qemu-img writes only 512).
"""

from __future__ import annotations

import hashlib
import json
import struct
import subprocess
from pathlib import Path

import pytest
from builders.vhdx_sectors import set_logical_sector_size
from conftest import require_tool, run_bitwitness

from bitwitness.errors import ExitCode

SECTOR = 4096
PARTS = ((256, 4096, 0x83), (8192, 4096, 0x0C))


def _mbr(parts: tuple[tuple[int, int, int], ...]) -> bytes:
    mbr = bytearray(512)
    for i, (start, count, kind) in enumerate(parts):
        mbr[446 + 16 * i : 462 + 16 * i] = struct.pack("<B3sB3sII", 0, b"\xfe\xff\xff", kind,
                                                       b"\xfe\xff\xff", start, count)
    mbr[510:512] = b"\x55\xaa"
    return bytes(mbr)


@pytest.fixture(scope="module", params=["e01", "vhdx"])
def disk(tmp_path_factory: pytest.TempPathFactory,
         request: pytest.FixtureRequest) -> tuple[Path, Path]:
    require_tool("mkfs.vfat", "mcopy", "ewfacquire", "mmls", "fls", "qemu-img")
    folder = tmp_path_factory.mktemp("units")
    raw = folder / "disk4k.raw"
    with raw.open("wb") as fh:
        fh.truncate(16384 * SECTOR)
        fh.write(_mbr(PARTS))
    fat = folder / "fat.img"
    subprocess.run(["mkfs.vfat", "-S", str(SECTOR), "-C", str(fat), str(4096 * SECTOR // 1024)],
                   check=True, capture_output=True)
    note = folder / "note.txt"
    note.write_text("counted in 4096-byte sectors\n")
    subprocess.run(["mcopy", "-i", str(fat), str(note), "::/NOTE.TXT"], check=True)
    with raw.open("r+b") as fh:
        fh.seek(PARTS[1][0] * SECTOR)
        fh.write(fat.read_bytes())
    if request.param == "vhdx":
        vhdx = folder / "disk4k.vhdx"
        subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "vhdx", str(raw), str(vhdx)],
                       check=True, capture_output=True)
        set_logical_sector_size(vhdx, SECTOR)
        return raw, vhdx
    subprocess.run(["ewfacquire", "-q", "-u", "-P", str(SECTOR), "-c", "none", "-t",
                    str(folder / "disk4k"), str(raw)], check=True, capture_output=True)
    return raw, folder / "disk4k.E01"


def _mmls_rows(raw: Path) -> list[tuple[int, int, int, int, str]]:
    out = subprocess.run(["mmls", "-b", str(SECTOR), str(raw)], capture_output=True, text=True,
                         check=True).stdout
    rows = []
    for line in out.splitlines():
        if ":" in line[:4] and line[:3].isdigit():
            cols = line.split(None, 5)
            rows.append((int(cols[0].rstrip(":")), int(cols[2]), int(cols[3]), int(cols[4]),
                         cols[5]))
    return rows


def test_partitions_agree_with_mmls_in_4096_byte_units(disk: tuple[Path, Path]) -> None:
    raw, e01 = disk
    res = run_bitwitness("partitions", e01, "--json")
    assert res.exit_code == ExitCode.OK, res.stderr
    doc = res.json()
    assert doc["sector_size"] == SECTOR
    ours = [(p["index"], p["start"], p["end"], p["length"], p["description"])
            for p in doc["partitions"]]
    assert ours == _mmls_rows(raw)
    assert all((p["end"] + 1) * SECTOR <= doc["media_size"] for p in doc["partitions"])
    assert doc["partitions"][4]["filesystem"] is not None


def test_p_and_offset_reach_the_file_system_fls_lists(disk: tuple[Path, Path]) -> None:
    raw, e01 = disk
    fls = subprocess.run(["fls", "-b", str(SECTOR), "-o", str(PARTS[1][0]), str(raw)],
                         capture_output=True, text=True, check=True).stdout
    wanted = {line.split("\t", 1)[1] for line in fls.splitlines()}
    for how in (["-p", "4"], ["--offset", str(PARTS[1][0])]):
        res = run_bitwitness("ls", *how, e01, "--json")
        assert res.exit_code == ExitCode.OK, res.stderr
        assert {e["path"].lstrip("/") for e in res.json()["entries"]} == wanted
    assert "NOTE.TXT" in wanted
    cat = run_bitwitness("cat", "-p", "4", e01, "NOTE.TXT")
    assert cat.stdout == "counted in 4096-byte sectors\n"


# --- extended partitions and GPT on 4096-byte sectors ------------------------------------------
#
# The disks are written by ``fdisk -b 4096`` (util-linux counts the tables in that unit): a DOS
# table with two primary FAT partitions around an extended partition (0x05) whose chain of
# extended boot records holds two FAT logicals with a gap between them and an empty Linux one;
# and a GPT with a FAT partition and an empty one. Each FAT is ``mkfs.vfat -S 4096``. Both are
# acquired as E01 (``ewfacquire -P 4096``) and converted to VHDX marked with 4096-byte logical
# sectors; the Sleuth Kit's tools read the raw disk with ``-b 4096``.

FDISK_DOS = ("o\n"
             "n\np\n1\n256\n+4095\nt\nc\n"
             "n\ne\n2\n8192\n+32767\n"
             "n\nl\n8448\n+4095\nt\n5\nc\n"
             "n\nl\n20480\n+4095\nt\n6\nc\n"
             "n\nl\n30000\n+2047\n"
             "n\np\n3\n49152\n+4095\nt\n3\nc\n"
             "w\n")
FDISK_GPT = "g\nn\n1\n256\n+4095\nn\n2\n8192\n+4095\nw\n"
#: (layout, fdisk script, FAT start sectors in 4096-byte units)
LAYOUTS = {"dos-extended": (FDISK_DOS, (256, 8448, 20480, 49152)), "gpt": (FDISK_GPT, (256,))}


@pytest.fixture(scope="module", params=[(layout, kind) for layout in LAYOUTS
                                        for kind in ("e01", "vhdx")],
                ids=lambda p: f"{p[0]}-{p[1]}")
def tables4k(tmp_path_factory: pytest.TempPathFactory,
             request: pytest.FixtureRequest) -> tuple[Path, Path, tuple[int, ...]]:
    require_tool("fdisk", "mkfs.vfat", "mcopy", "ewfacquire", "mmls", "fls", "icat", "qemu-img")
    layout, kind = request.param
    script, fat_starts = LAYOUTS[layout]
    folder = tmp_path_factory.mktemp(f"units-{layout}-{kind}")
    raw = folder / "disk4k.raw"
    subprocess.run(["truncate", "-s", str(65536 * SECTOR), str(raw)], check=True)
    subprocess.run(["fdisk", "-b", str(SECTOR), str(raw)], input=script, text=True,
                   check=True, capture_output=True)
    for number, start in enumerate(fat_starts):
        fat = folder / f"fat{number}.img"
        subprocess.run(["mkfs.vfat", "-S", str(SECTOR), "-n", f"PART{number}", "-C", str(fat),
                        str(4096 * SECTOR // 1024)], check=True, capture_output=True)
        note = folder / "note.txt"
        note.write_text(f"partition at 4096-byte sector {start}\n" * (number + 1))
        subprocess.run(["mcopy", "-i", str(fat), str(note), "::/NOTE.TXT"], check=True)
        subprocess.run(["mmd", "-i", str(fat), "::/SUB"], check=True)
        subprocess.run(["mcopy", "-i", str(fat), str(note), "::/SUB/DEEP.TXT"], check=True)
        with raw.open("r+b") as fh:
            fh.seek(start * SECTOR)
            fh.write(fat.read_bytes())
        fat.unlink()
    raw.chmod(0o444)
    if kind == "vhdx":
        image = folder / "disk4k.vhdx"
        subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "vhdx", str(raw), str(image)],
                       check=True, capture_output=True)
        set_logical_sector_size(image, SECTOR)
    else:
        subprocess.run(["ewfacquire", "-q", "-u", "-P", str(SECTOR), "-c", "none", "-t",
                        str(folder / "disk4k"), str(raw)], check=True, capture_output=True)
        image = folder / "disk4k.E01"
    return raw, image, fat_starts


def _tsk(tool: str, *args: str | Path) -> bytes:
    return subprocess.run([tool, "-b", str(SECTOR), *map(str, args)], capture_output=True,
                          check=True).stdout


def test_tables_in_4096_byte_units_agree_with_mmls(
        tables4k: tuple[Path, Path, tuple[int, ...]]) -> None:
    from test_partition_tables import mmls_kinds, mmls_rows

    raw, image, fat_starts = tables4k
    doc = run_bitwitness("partitions", image, "--json").json()
    assert doc["sector_size"] == SECTOR
    theirs = mmls_rows(raw, "-b", str(SECTOR))
    assert [(p["index"], p["slot"], p["start"], p["end"], p["length"], p["description"])
            for p in doc["partitions"]] == theirs
    assert {p["index"]: p["kind"] for p in doc["partitions"]} == mmls_kinds(
        raw, "-b", str(SECTOR))
    assert sorted(p["start"] for p in doc["partitions"] if p["filesystem"]) == list(fat_starts)
    if doc["scheme"] == "dos":
        assert sum(p["description"].startswith("Extended Table") for p in doc["partitions"]) == 3
    text = run_bitwitness("partitions", image).stdout
    shown = [line.split(None, 6)[:6] for line in text.splitlines()[2:]]
    assert [(int(c[0]), c[2], int(c[3]), int(c[4]), int(c[5])) for c in shown] == [
        row[:5] for row in theirs]


def _rows_with_fs(image: Path) -> list[dict]:
    doc = run_bitwitness("partitions", image, "--json").json()
    return [p for p in doc["partitions"] if p["filesystem"]]


def test_ls_cat_timeline_and_export_in_4096_byte_units(
        tables4k: tuple[Path, Path, tuple[int, ...]], tmp_path: Path) -> None:
    raw, image, fat_starts = tables4k
    rows = _rows_with_fs(image)
    assert [r["start"] for r in rows] == list(fat_starts)
    for row in rows:
        index, start = str(row["index"]), str(row["start"])
        fls = _tsk("fls", "-r", "-p", "-u", "-o", start, raw).decode()
        wanted = {line.split("\t", 1)[1] for line in fls.splitlines()}
        assert {"NOTE.TXT", "SUB/DEEP.TXT"} <= wanted
        res = run_bitwitness("ls", "-r", "-p", index, image, "--json")
        assert res.exit_code == ExitCode.OK, res.stderr
        assert {e["path"].lstrip("/") for e in res.json()["entries"]} == wanted
        inode = next(line.split(":", 1)[0].split()[-1] for line in fls.splitlines()
                     if line.endswith("\tSUB/DEEP.TXT"))
        assert run_bitwitness("cat", "-p", index, image, "SUB/DEEP.TXT").stdout.encode() == (
            _tsk("icat", "-o", start, raw, inode))
        body = run_bitwitness("timeline", "-p", index, image)
        assert body.exit_code == ExitCode.OK, body.stderr
        assert sorted(body.stdout.splitlines()) == sorted(
            _tsk("fls", "-r", "-m", "/", "-o", start, raw).decode().splitlines())
        out = tmp_path / f"export-{index}"
        res = run_bitwitness("export", "-p", index, image, "/", "--to", out)
        manifest = json.loads((out / "manifest.json").read_text())
        exported = {f["source"]: f for f in manifest["files"]}
        assert {"/NOTE.TXT", "/SUB/DEEP.TXT", "/$FAT1", "/$FAT2"} <= set(exported)
        # TSK cannot read the virtual $MBR of a FAT with 4096-byte sectors: icat writes
        # nothing (and exits 0); we give the volume's first 512 bytes, its boot sector
        mbr = next(line.split(":", 1)[0].split()[-1] for line in fls.splitlines()
                   if line.endswith("\t$MBR"))
        assert _tsk("icat", "-o", start, raw, mbr) == b""
        boot = raw.read_bytes()[int(start) * SECTOR:int(start) * SECTOR + 512]
        assert boot.endswith(b"\x55\xaa")
        for item in exported.values():
            data = (boot if item["source"] == "/$MBR"
                    else _tsk("icat", "-o", start, raw, item["inode"]))
            assert (out / item["target"]).read_bytes() == data
            assert item["sha256"] == hashlib.sha256(data).hexdigest()
        assert "/$MBR" in exported
        assert manifest["failed"] == []
        assert res.exit_code == ExitCode.OK, res.stderr


def test_timeline_of_every_partition_in_4096_byte_units(
        tables4k: tuple[Path, Path, tuple[int, ...]]) -> None:
    raw, image, _ = tables4k
    theirs: list[str] = []
    rows = _rows_with_fs(image)
    for row in rows:  # one file system: its paths as they are; several: each prefixed
        prefix = f"p{row['index']}-{row['filesystem']}" if len(rows) > 1 else "/"
        theirs += _tsk("fls", "-r", "-m", prefix, "-o", str(row["start"]), raw
                       ).decode().splitlines()
    res = run_bitwitness("timeline", image)
    assert res.exit_code == ExitCode.OK, res.stderr
    assert sorted(res.stdout.splitlines()) == sorted(theirs)


def test_looping_ebr_chain_in_4096_byte_units_ends_as_mmls_ends_it(tmp_path: Path) -> None:
    """A hostile chain (the extended boot record links back to itself) is walked as
    ``mmls -b 4096`` walks it: once, in bounded time, the same rows."""
    require_tool("mmls")
    from test_partition_tables import mmls_rows

    from bitwitness.report.browse.volumetree import read_tree
    from bitwitness.stream import BytesStream

    def entry(kind: int, start: int, count: int) -> bytes:
        return struct.pack("<B3sB3sII", 0, b"\xfe\xff\xff", kind, b"\xfe\xff\xff", start, count)

    data = bytearray(256 * SECTOR)
    data[446:478] = entry(0x05, 1, 200) + entry(0x0C, 210, 20)
    data[SECTOR + 446 : SECTOR + 478] = entry(0x83, 2, 5) + entry(0x05, 0, 200)
    for sector in (0, 1):
        data[sector * SECTOR + 510 : sector * SECTOR + 512] = b"\x55\xaa"
    raw = tmp_path / "loop.raw"
    raw.write_bytes(data)
    tree = read_tree(BytesStream(bytes(data), sector_size=SECTOR))
    ours = [(p.index, p.slot, p.start, p.end, p.length, p.description)
            for p in tree.layout.partitions]
    assert ours == mmls_rows(raw, "-b", str(SECTOR))
    assert [p.description for p in tree.layout.partitions].count("Extended Table (#1)") == 1
