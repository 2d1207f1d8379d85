"""``cat`` byte for byte against ``icat``, ``stat`` against what the image was built from, and
``timeline`` against ``fls -m`` and ``mactime``."""

from __future__ import annotations

import subprocess
from collections import Counter
from pathlib import Path

import pytest
from conftest import cat_bytes, require_tool, snapshot
from test_browse_disks import EXT_START, FAT_START, Disks, make_disks


@pytest.fixture(scope="session")
def disks(tmp_path_factory: pytest.TempPathFactory) -> Disks:
    return make_disks(tmp_path_factory)



def icat(image: Path, address: str, *args: str) -> bytes:
    return subprocess.run(["icat", *args, str(image), address], capture_output=True,
                          check=True).stdout


@pytest.mark.parametrize(("part", "sector", "which"), [(4, FAT_START, "fat_files"),
                                                       (5, EXT_START, "ext_files")])
def test_cat_equals_icat_and_the_source(disks: Disks, bw, part: int, sector: int,
                                        which: str) -> None:
    before = snapshot([disks.gpt])
    entries = bw("ls", disks.gpt, "-p", str(part), "-r", "--all", "--json").json()["entries"]
    files = [e for e in entries if e["kind"] == "file"]
    assert files
    for entry in files:
        expected = icat(disks.gpt, entry["inode"], "-o", str(sector))
        assert cat_bytes(disks.gpt, "-p", str(part), "--inode", entry["inode"]) == expected
        if not entry["deleted"]:
            assert cat_bytes(disks.gpt, "-p", str(part), entry["path"]) == expected
    for path, data in getattr(disks, which).items():
        assert cat_bytes(disks.gpt, "--offset", str(sector), path) == data
    assert snapshot([disks.gpt]) == before


def test_cat_ntfs_streams_equal_icat(third_party: Path, bw) -> None:
    pytest.importorskip("bitwitness.images.ewf")
    image = third_party / "tsk_imageformat_mmls_1.E01"
    for path, address in [("/$UpCase:$Info", "10-128-4"), ("/$UpCase", "10-128-1"),
                          ("/$Extend/$RmMetadata/$Repair:$Config", "28-128-2"),
                          ("/System Volume Information/WPSettings.dat", "37-128-1")]:
        expected = icat(image, address, "-o", "128")
        assert cat_bytes(image, "-p", "2", path) == expected
        assert cat_bytes(image, "-p", "2", "--inode", address) == expected
    doc = bw("stat", image, "-p", "2", "/$UpCase:$Info", "--json").json()
    assert doc["inode"] == "10-128-4"
    assert doc["stream"] == "$Info"
    assert {a["type"] for a in doc["attributes"]} >= {16, 48, 128}


@pytest.mark.parametrize("image", ["dfvfs_hfsplus.raw", "dfvfs_iso9660.raw",
                                   "dfvfs_ext2.splitraw.000"])
def test_cat_equals_icat_on_fixtures(third_party: Path, bw, image: str) -> None:
    path = third_party / image
    entries = bw("ls", path, "-r", "--json").json()["entries"]
    files = [e for e in entries if e["kind"] == "file"]
    assert files
    for entry in files:
        assert cat_bytes(path, "--inode", entry["inode"]) == icat(path, entry["inode"])


def test_stat_and_errors(disks: Disks, bw) -> None:
    doc = bw("stat", disks.ext4, "/home/ana/Ωmega ünï.txt", "--json").json()
    assert doc["size"] == len("ünïcødé\n".encode())
    assert doc["kind"] == "file"
    assert doc["filesystem"] == "ext4"
    assert doc["mode"] == "rw-r--r--"
    link = bw("stat", disks.ext4, "/home/ana/link", "--json").json()
    assert link["link"] == "notes.txt"
    human = bw("stat", disks.ext4, "--inode", str(doc["meta_address"]))
    assert human.exit_code == 0
    assert "size:" in human.stdout
    out_of_range = bw("cat", disks.ext4, "--inode", "99999999")
    assert out_of_range.exit_code == 2
    assert "out of range" in out_of_range.stderr
    assert bw("cat", disks.ext4, "/home").exit_code == 2
    assert bw("cat", disks.ext4, "/missing.txt").exit_code == 2
    assert bw("stat", disks.ext4).exit_code == 2


def _fls_body(image: Path, *args: str) -> Counter[str]:
    out = subprocess.run(["fls", "-r", "-m", "/", *args, str(image)], capture_output=True,
                         check=True).stdout.decode("utf-8", "surrogateescape")
    return Counter(out.splitlines())  # every line, the NTFS ($FILE_NAME) rows included


@pytest.mark.parametrize(("args", "sector"), [(["-p", "4"], FAT_START), (["-p", "5"], EXT_START)])
def test_bodyfile_equals_fls_m_and_feeds_mactime(disks: Disks, bw, tmp_path: Path,
                                                 args: list[str], sector: int) -> None:
    require_tool("mactime")
    result = bw("timeline", disks.gpt, *args)
    assert result.exit_code == 0, result.stderr
    assert Counter(result.stdout.splitlines()) == _fls_body(disks.gpt, "-o", str(sector))
    body = tmp_path / "body.txt"
    body.write_text(result.stdout)
    mac = subprocess.run(["mactime", "-b", str(body), "-d", "-y", "-z", "UTC"],
                         capture_output=True, text=True, check=True)
    theirs = Counter()
    for row in mac.stdout.splitlines()[1:]:
        date, _size, macb, _mode, _uid, _gid, meta, _name = row.split(",", 7)
        if not date.startswith("0000"):  # mactime also lists unset (zero) times
            theirs[(date, macb, meta)] += 1
    assert theirs
    csv_out = bw("timeline", disks.gpt, *args, "--format", "csv")
    ours = Counter()
    zoneless = sector == FAT_START  # FAT's wall clock: no offset in the CSV, UTC to mactime -z
    for row in csv_out.stdout.splitlines()[1:]:
        date, macb, _size, _mode, _uid, _gid, inode, _rest = row.split(",", 7)
        assert date.endswith("+00:00") is not zoneless
        ours[(date.removesuffix("+00:00") + "Z", macb, inode)] += 1
    assert ours == theirs


def test_bodyfile_equals_fls_m_on_ntfs(third_party: Path, bw) -> None:
    pytest.importorskip("bitwitness.images.ewf")
    image = third_party / "tsk_imageformat_mmls_1.E01"
    result = bw("timeline", image, "-p", "3")
    assert Counter(result.stdout.splitlines()) == _fls_body(image, "-o", "55424")


def test_timeline_of_every_file_system_in_one_run(disks: Disks, tmp_path: Path) -> None:
    """Without -p the GPT disk's FAT32 and ext4 go into one timeline: the bodyfile is what
    `fls -m p4-fat32 -o 2048` and `fls -m p5-ext4 -o 100352` write together, mactime -b reads
    it as it reads theirs, and each CSV row names its partition and file system."""
    require_tool("mactime")
    from test_browse_parity import _bitwitness

    result = _bitwitness("timeline", disks.gpt)
    assert result.returncode == 0, result.stderr
    theirs = b""
    for mount, sector in (("p4-fat32", FAT_START), ("p5-ext4", EXT_START)):
        theirs += subprocess.run(["fls", "-r", "-m", mount, "-o", str(sector), str(disks.gpt)],
                                 capture_output=True, check=True).stdout
    assert Counter(result.stdout.splitlines()) == Counter(theirs.splitlines())
    printed = []
    for name, body in (("ours", result.stdout), ("theirs", theirs)):
        (tmp_path / name).write_bytes(body)
        printed.append(subprocess.run(["mactime", "-b", str(tmp_path / name), "-d", "-y",
                                       "-z", "UTC"], capture_output=True, check=True).stdout)
    assert printed[0] == printed[1]
    table = _bitwitness("timeline", disks.gpt, "--format", "csv").stdout.decode()
    import csv
    import io

    rows = list(csv.DictReader(io.StringIO(table)))
    assert {(r["partition"], r["filesystem"]) for r in rows} == {("4", "fat32"), ("5", "ext4")}
    notes = [r for r in rows if r["path"] == "/home/ana/notes.txt"]
    assert notes
    assert {r["filesystem"] for r in notes} == {"ext4"}


def test_long_listings_equal_fls_through_a_pipe(tmp_path: Path) -> None:
    """``ls -r --all`` and ``timeline`` write their lines some at a time: on a file system of
    more entries than one write holds, run as a process whose stdout is an unbuffered pipe
    (``PYTHONUNBUFFERED``), every line comes out once and in fls's order."""
    import os
    import sys

    require_tool("mkfs.ext4", "fls")
    tree = tmp_path / "tree"
    for n in range(700):  # several batches of 256 lines, the last one partial
        folder = tree / f"d{n // 300}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{n:04d}").write_bytes(b"x" * (n % 7))
    image = tmp_path / "fs.raw"
    subprocess.run(["truncate", "-s", "8M", str(image)], check=True)
    subprocess.run(["mkfs.ext4", "-q", "-N", "1024", "-d", str(tree), str(image)], check=True)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    for ours, theirs in ((["ls", "-r", "--all"], ["-r", "-p"]),
                         (["timeline"], ["-r", "-m", "/"])):
        ran = subprocess.run([sys.executable, "-m", "bitwitness", *ours, str(image)],
                             capture_output=True, env=env, check=True)
        expected = subprocess.run(["fls", *theirs, str(image)], capture_output=True,
                                  check=True).stdout
        assert len(expected.splitlines()) > 700
        assert ran.stdout == expected, ours


def test_csv_timeline_in_spilled_runs_equals_one_sort_and_mactime(disks: Disks) -> None:
    """The CSV timeline sorts at most ``spill`` events in memory and merges sorted runs from
    temporary files: with runs of 3 events it gives exactly the rows of one sort in memory,
    and its events are the ones ``mactime -d`` makes of ``fls -m`` (time, MACB letters,
    inode, size), in time order."""
    import csv
    import io
    from datetime import datetime

    from test_browse_parity import _bitwitness

    from bitwitness.cli.commands._browse import opened_all
    from bitwitness.report.browse.timeline import csv_rows

    require_tool("fls", "mactime")
    with opened_all(disks.gpt, None, None) as systems:
        whole = list(csv_rows(systems, spill=10**9))
        spilled = list(csv_rows(systems, spill=3))
    assert len(whole) > 20
    assert spilled == whole
    table = _bitwitness("timeline", disks.gpt, "-p", "5", "--format", "csv").stdout.decode()
    ours = list(csv.DictReader(io.StringIO(table)))
    times = [datetime.fromisoformat(r["time"]) for r in ours]
    assert times == sorted(times)
    body = subprocess.run(["fls", "-r", "-m", "/", "-o", str(EXT_START), str(disks.gpt)],
                          capture_output=True, check=True).stdout
    printed = subprocess.run(["mactime", "-d", "-y", "-z", "UTC"], input=body,
                             capture_output=True, check=True).stdout.decode()
    theirs, when = [], ""
    for row in list(csv.reader(io.StringIO(printed)))[1:]:
        when = row[0] or when  # mactime prints a time once for the events that share it
        theirs.append((datetime.fromisoformat(when.replace("Z", "+00:00")), row[2], row[6],
                       row[1]))
    assert Counter(theirs) == Counter((t, r["macb"], r["inode"], r["size"])
                                      for t, r in zip(times, ours, strict=True))


def test_a_name_holding_the_field_separator_cannot_forge_a_row(tmp_path: Path, bw) -> None:
    """A name with ``|`` (legal on ext4) would give a bodyfile row extra fields (fls -m writes
    it as it is): mactime would show a forged time, size and inode. It is written ``%7C``,
    which mactime decodes: it then shows the entry's own fields and the name as stored."""
    require_tool("mkfs.ext4", "debugfs", "mactime", "fls")
    image = tmp_path / "pipe.img"
    subprocess.run(["truncate", "-s", "8M", str(image)], check=True)
    subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], check=True)
    forged = "innocent|31337|r-rrw-r--r--|0|0|4242|946684800|946684800|946684800|946684800"
    payload = tmp_path / "payload"
    payload.write_bytes(b"x")
    subprocess.run(["debugfs", "-w", "-R", f'write {payload} "{forged}"', str(image)],
                   check=True, capture_output=True)
    assert forged in subprocess.run(["fls", str(image)], capture_output=True, text=True,
                                    check=True).stdout
    result = bw("timeline", image)
    assert result.exit_code == 0, result.stderr
    (row,) = [line for line in result.stdout.splitlines() if "innocent" in line]
    assert row.count("|") == 10
    body = tmp_path / "body"
    body.write_text(result.stdout, encoding="utf-8")
    mac = subprocess.run(["mactime", "-b", str(body), "-d", "-z", "UTC"], capture_output=True,
                         text=True, check=True).stdout
    shown = [line for line in mac.splitlines() if "innocent" in line]
    assert shown
    assert all(",4242," not in line and "2000" not in line.split(",")[0] for line in shown)
    assert all(line.endswith(f',"/{forged}"') for line in shown)
