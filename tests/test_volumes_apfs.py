"""An APFS container written by macOS (../shared/fixtures/volumes/dfvfs_apfs.raw), read with
libfsapfs and checked against The Sleuth Kit's own APFS reader: ``pstat`` for the container and
its volumes, ``fls -P apfs -B N`` / ``icat -P apfs -B N`` for each volume (N: the block of the
volume's superblock, as pstat prints it)."""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from conftest import SHARED, require_tool, snapshot
from test_browse_listing import as_fls

APFS = SHARED / "fixtures" / "volumes" / "dfvfs_apfs.raw"


@pytest.fixture(scope="module")
def pool() -> dict:
    """pstat's container identifier and, per volume in order, (identifier, name, APSB block)."""
    if not APFS.is_file():
        pytest.skip("../shared/fixtures/volumes is absent (plain clone)")
    require_tool("pstat", "fls", "icat")
    out = subprocess.run(["pstat", str(APFS)], capture_output=True, text=True,
                         check=True).stdout
    volumes = [(m.group(1), m.group(3), int(m.group(2))) for m in re.finditer(
        r"Volume ([0-9a-f-]{36}).*?APSB Block Number: (\d+).*?Name \(Role\): (.*?) \(",
        out, re.S)]
    container = re.search(r"Container ([0-9a-f-]{36})", out)
    assert container
    assert volumes
    return {"container": container.group(1), "volumes": volumes}


def test_partitions_lists_the_container_and_its_volumes_as_pstat(pool: dict, bw) -> None:
    result = bw("partitions", "--json", APFS)
    assert result.exit_code == 0, result.stderr
    (row,) = result.json()["partitions"]
    ours = row["volumes"]
    assert [v["path"] for v in ours] == [f"0/apfs{i + 1}" for i in range(len(pool["volumes"]))]
    for volume, (ident, name, _block) in zip(ours, pool["volumes"], strict=True):
        assert volume["identifier"] == ident
        assert volume["description"] == f"APFS volume {name!r}"
        assert volume["filesystem"] == "apfs"
    assert "0/apfs1" in bw("partitions", APFS).stdout


def test_ls_timeline_and_cat_match_the_sleuth_kit(pool: dict, bw) -> None:
    before = snapshot([APFS])
    for number, (_ident, _name, block) in enumerate(pool["volumes"], start=1):
        tsk = ["-P", "apfs", "-B", str(block)]
        fls = subprocess.run(["fls", *tsk, "-r", "-p", str(APFS)], capture_output=True,
                             text=True, check=True).stdout
        listing = bw("ls", APFS, "-r", "--all", "--json", "-p", f"0/apfs{number}")
        assert listing.exit_code == 0, listing.stderr
        entries = listing.json()["entries"]
        assert Counter(as_fls(e) for e in entries) == Counter(fls.splitlines())

        body = subprocess.run(["fls", *tsk, "-r", "-m", "/", str(APFS)], capture_output=True,
                              text=True, check=True).stdout
        ours = bw("timeline", APFS, "-p", f"0/apfs{number}")
        assert ours.exit_code == 0, ours.stderr
        assert Counter(ours.stdout.splitlines()) == Counter(body.splitlines())

        files = [e for e in entries if e["kind"] == "file"]
        assert any(e["size"] for e in files)
        for entry in files:
            icat = subprocess.run(["icat", *tsk, str(APFS), entry["inode"]],
                                  capture_output=True, check=False)
            # icat refuses an empty file that has only a resource fork; fls -m gave its size 0
            theirs = icat.stdout if icat.returncode == 0 or entry["size"] else b""
            cat = subprocess.run([sys.executable, "-m", "bitwitness", "cat", str(APFS),
                                  entry["path"], "-p", f"0/apfs{number}"], capture_output=True,
                                 check=False)
            assert cat.returncode == 0, cat.stderr
            assert cat.stdout == theirs, entry["path"]
    assert snapshot([APFS]) == before


def test_the_only_apfs_volume_is_chosen_and_the_container_row_points_inside(bw,
                                                                            pool: dict) -> None:
    if len(pool["volumes"]) == 1:
        assert bw("ls", APFS, "--json").json()["volume"] == "0/apfs1"
    row = bw("ls", APFS, "-p", "0")
    assert row.exit_code == 2
    assert "-p 0/apfs1 (apfs)" in row.stderr


def test_stat_and_export_of_an_apfs_file(pool: dict, bw, tmp_path: Path) -> None:
    block = pool["volumes"][0][2]
    istat = subprocess.run(["istat", "-P", "apfs", "-B", str(block), str(APFS), "18"],
                           capture_output=True, text=True, check=True).stdout
    size = int(re.search(r"^Size:\s+(\d+)", istat, re.M).group(1))
    mode = re.search(r"^Mode:\s+\S(\S+)", istat, re.M).group(1)
    ours = bw("stat", "--json", APFS, "--inode", "18", "-p", "0/apfs1")
    assert ours.exit_code == 0, ours.stderr
    doc = ours.json()
    assert doc["size"] == size
    assert doc["mode"] == mode
    out = bw("export", APFS, "/a_directory", "--to", tmp_path / "out", "-p", "0/apfs1")
    assert out.exit_code == 0, out.stderr
    exported = sorted(p.name for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert "a_file" in exported


def test_the_browser_shows_the_apfs_volume_and_its_files(pool: dict) -> None:
    pytest.importorskip("textual")
    import asyncio

    from textual.widgets import DataTable, Tree

    from bitwitness.report.browse.tui import EvidenceBrowser

    block = pool["volumes"][0][2]
    fls = subprocess.run(["fls", "-P", "apfs", "-B", str(block), "-p", str(APFS)],
                         capture_output=True, text=True, check=True).stdout
    top = sorted(line.split("\t", 1)[1] for line in fls.splitlines())

    async def scenario() -> None:
        app = EvidenceBrowser(APFS)
        async with app.run_test(size=(160, 50)) as pilot:
            tree = app.query_one("#tree", Tree)
            labels = [str(n.label) for n in tree.root.children]
            assert labels[0].startswith("0/apfs1: apfs (APFS volume ")
            tree.select_node(tree.root.children[0])
            await pilot.pause()
            table = app.query_one("#entries", DataTable)
            names = sorted(str(table.get_row_at(i)[0]).rstrip("/")
                           for i in range(table.row_count))
            assert names == top
            assert str(table.get_row_at(0)[7]) == "0/apfs1: apfs"
            await pilot.press("q")

    asyncio.run(scenario())
