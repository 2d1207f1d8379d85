"""The textual browser, driven headless with the pilot: partitions and folders in the tree,
entries with the deleted mark, hex/text preview, export with hashes, search by name."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import snapshot
from test_browse_disks import EXT_START, Disks, make_disks

pytest.importorskip("textual")

@pytest.fixture(scope="session")
def disks(tmp_path_factory: pytest.TempPathFactory) -> Disks:
    return make_disks(tmp_path_factory)



def test_cli_does_not_load_textual() -> None:
    code = ("import sys; from bitwitness.cli.main import main\n"
            "try: main(['ls', '--help'])\nexcept SystemExit: pass\n"
            "print('textual' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip().endswith("False")


def test_browser_tree_entries_preview_export_search(disks: Disks, tmp_path: Path) -> None:
    from textual.widgets import DataTable, Static, Tree

    from bitwitness.report.browse.tui import EvidenceBrowser

    before = snapshot([disks.gpt])
    exports = tmp_path / "exports"

    async def scenario() -> None:
        app = EvidenceBrowser(disks.gpt, export_to=exports)
        async with app.run_test(size=(160, 50)) as pilot:
            tree = app.query_one("#tree", Tree)
            labels = [str(n.label) for n in tree.root.children]
            assert labels == ["4: fat32 at sector 2048", "5: ext4 at sector 100352"]
            ext = tree.root.children[1]
            tree.select_node(ext)
            await pilot.pause()
            ext.expand()
            await pilot.pause()
            home = next(n for n in ext.children if str(n.label) == "home")
            home.expand()
            await pilot.pause()
            ana = next(n for n in home.children if str(n.label) == "ana")
            tree.select_node(ana)
            await pilot.pause()
            table = app.query_one("#entries", DataTable)
            rows = [table.get_row_at(i) for i in range(table.row_count)]
            names = {str(r[0]): r for r in rows}
            assert names["gone.txt"][6] == "DELETED"
            assert names["notes.txt"][6] == ""
            assert names["projects/"][1] == "1024"
            notes = next(i for i, r in enumerate(rows) if str(r[0]) == "notes.txt")
            table.focus()
            table.move_cursor(row=notes)
            await pilot.pause()
            preview = app.query_one("#preview", Static)
            assert "6e 6f 74 65 73" in app.preview_text  # "notes" in hex
            await pilot.press("x")
            assert app.preview_text.startswith("notes of ana")
            assert "notes.txt" in str(app.query_one("#meta", Static).render())
            assert preview is not None
            await pilot.press("e")
            await pilot.pause()
            result = app.last_export
            assert result is not None
            assert [f.source for f in result.files] == ["/home/ana/notes.txt"]
            manifest = json.loads(result.manifest_json.read_text())
            icat = subprocess.run(["icat", "-o", str(EXT_START), str(disks.gpt),
                                   manifest["files"][0]["inode"]], capture_output=True,
                                  check=True).stdout
            import hashlib

            assert manifest["files"][0]["sha256"] == hashlib.sha256(icat).hexdigest()
            await pilot.press("slash")
            await pilot.press(*"big")
            await pilot.press("enter")
            await pilot.pause()
            assert table.row_count == 1
            assert str(table.get_row_at(0)[0]) == "/home/ana/projects/big.bin"
            assert "1 match" in app.status
            await pilot.press("q")

    asyncio.run(scenario())
    assert snapshot([disks.gpt]) == before


def test_search_covers_every_file_system_and_says_where(disks: Disks) -> None:
    """'/' from the image root searches the FAT32 and the ext4 partition alike; each hit names
    its partition and file system, checked against fls on each."""
    from textual.widgets import DataTable, Input

    from bitwitness.report.browse.tui import EvidenceBrowser

    expected = set()
    for sector, where in ((2048, "4: fat32"), (EXT_START, "5: ext4")):
        listing = subprocess.run(["fls", "-r", "-p", "-o", str(sector), str(disks.gpt)],
                                 capture_output=True, check=True).stdout.decode()
        expected |= {(line.split("\t", 1)[1].rsplit("/", 1)[-1], where)
                     for line in listing.splitlines() if "o" in line.split("\t", 1)[1]
                     .rsplit("/", 1)[-1].casefold()}

    async def scenario() -> None:
        app = EvidenceBrowser(disks.gpt)
        async with app.run_test(size=(160, 50)) as pilot:
            await pilot.press("slash")
            await pilot.pause()
            app.query_one("#search", Input).value = ""  # the key may also land in the box
            await pilot.press("o")
            await pilot.press("enter")
            await pilot.pause()
            table = app.query_one("#entries", DataTable)
            rows = [table.get_row_at(i) for i in range(table.row_count)]
            found = {(str(r[0]).rstrip("/").rsplit("/", 1)[-1], r[7]) for r in rows}
            assert found == expected
            assert {r[7] for r in rows} == {"4: fat32", "5: ext4"}
            assert "2 file system(s) of 2" in app.status
            await pilot.press("q")

    asyncio.run(scenario())
