"""A file lying in sectors the acquisition could not read is never passed off as complete.

The acquisition zero-fills such sectors and lists them (E01 error2, the acquisition log); the
image holds nothing else there. ``cat``, ``stat`` and ``export`` map that list onto the file's
data runs and say which of its bytes are those zeros, naming the sectors. Where a file's blocks
lie is taken from The Sleuth Kit's ``istat`` (the independent reader); the sectors are made
unreadable with the acquisition's fault injector, and ``ewfinfo`` confirms they are listed.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import require_tool, run_bitwitness
from test_browse_parity import _bitwitness

from bitwitness.acquire import engine
from bitwitness.acquire.faults import FaultySource
from bitwitness.acquire.source import open_source

SECTOR = 512
START = 2048  #: the partition's first sector
BLOCK = 4096


@pytest.fixture(scope="module", params=["ext4", "ntfs"])
def disk(request: pytest.FixtureRequest,
         tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """An MBR disk with one partition (ext4 or NTFS, 4 KiB blocks) holding ``victim.bin``
    (64 KiB of varied bytes) and ``safe.txt``; where victim's blocks lie, from istat."""
    kind = request.param
    require_tool("sfdisk", "istat", "fls", *(("mkfs.ext4",) if kind == "ext4"
                                             else ("mkntfs", "ntfscp")))
    folder = tmp_path_factory.mktemp(f"zerofilled-{kind}")
    staging = folder / "staging"
    staging.mkdir()
    victim = bytes((i * 7 + i // 251) % 256 for i in range(64 * 1024))
    (staging / "victim.bin").write_bytes(victim)
    (staging / "safe.txt").write_bytes(b"nothing of this file is lost\n")
    fs = folder / "fs.img"
    subprocess.run(["truncate", "-s", "8M", str(fs)], check=True)
    if kind == "ext4":
        subprocess.run(["mkfs.ext4", "-q", "-F", "-b", str(BLOCK), "-d", str(staging),
                        str(fs)], check=True, capture_output=True)
    else:
        subprocess.run(["mkntfs", "-q", "-F", "-Q", "-c", str(BLOCK), "-p", str(START),
                        str(fs)], check=True, capture_output=True)
        for name in ("victim.bin", "safe.txt"):
            subprocess.run(["ntfscp", "-q", str(fs), str(staging / name), name], check=True,
                           capture_output=True)
    image = folder / "disk.bin"
    with image.open("wb") as out:
        out.truncate((START + 16384 + 2048) * SECTOR)
        out.seek(START * SECTOR)
        out.write(fs.read_bytes())
    subprocess.run(["sfdisk", "-q", str(image)], input=f"{START},16384,83\n", text=True,
                   check=True, capture_output=True)
    listing = subprocess.run(["fls", "-o", str(START), str(image)], capture_output=True,
                             text=True, check=True).stdout
    inode = re.search(r"([0-9-]+):\s+victim\.bin", listing)
    assert inode is not None, listing
    stat = subprocess.run(["istat", "-o", str(START), str(image), inode.group(1)],
                          capture_output=True, text=True, check=True).stdout
    # ext: the list after "Direct Blocks:"; NTFS: the lines after the $DATA attribute's
    runs = stat.split("Direct Blocks:", 1)[1] if kind == "ext4" else \
        stat.split("Non-Resident", 1)[1].split("\n", 1)[1]
    blocks = [int(b) for b in re.findall(r"\d+", runs)]
    assert len(blocks) == len(victim) // BLOCK, stat
    return {"image": image, "victim": victim, "blocks": blocks, "folder": folder}


def _acquire(monkeypatch: pytest.MonkeyPatch, source: Path, out: Path, bad: set[int],
             *extra: str) -> None:
    def faulty_open(path: Any, **kwargs: Any) -> FaultySource:
        return FaultySource(open_source(path, **kwargs), permanent=bad)

    monkeypatch.setattr(engine, "open_source", faulty_open)
    done = run_bitwitness("acquire", source, "-o", out, "--retries", "1", *extra)
    assert done.exit_code == 1, done.stderr  # unreadable sectors: completed with errors
    monkeypatch.undo()


def _media_sector(disk: dict[str, Any], block_index: int, within: int) -> int:
    return START + disk["blocks"][block_index] * (BLOCK // SECTOR) + within


@pytest.mark.parametrize("kind", ["E01", "raw"])
def test_cat_stat_export_name_the_zero_filled_sectors(disk: dict[str, Any], kind: str,
                                                      tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    first = _media_sector(disk, 2, 3)  # two sectors inside victim's third block
    bad = {first, first + 1}
    base = tmp_path / "img"
    _acquire(monkeypatch, disk["image"], base, bad,
             *(() if kind == "E01" else ("--format", "raw")))
    image = base.with_suffix(".E01") if kind == "E01" else base.with_suffix(".raw")
    if kind == "E01":
        require_tool("ewfinfo")
        shown = subprocess.run(["ewfinfo", str(image)], capture_output=True, text=True,
                               check=True).stdout
        assert f"at sector(s): {first} - {first + 1}" in shown
    expected = bytearray(disk["victim"])
    at = 2 * BLOCK + 3 * SECTOR
    expected[at:at + 2 * SECTOR] = bytes(2 * SECTOR)

    cat = _bitwitness("cat", image, "/victim.bin")
    assert cat.stdout == bytes(expected)  # what the image holds, byte for byte
    assert cat.returncode == 1
    assert "1024 byte(s) of its data lie in media sectors" in cat.stderr.decode()
    assert f"sectors {first}-{first + 1}" in cat.stderr.decode()
    safe = _bitwitness("cat", image, "/safe.txt")
    assert (safe.returncode, safe.stdout) == (0, b"nothing of this file is lost\n")

    stat = json.loads(_bitwitness("stat", image, "/victim.bin", "--json").stdout)
    assert len(stat["doubts"]) == 1
    assert f"sectors {first}-{first + 1}" in stat["doubts"][0]
    assert json.loads(_bitwitness("stat", image, "/safe.txt", "--json").stdout)[
        "doubts"] == []

    out = tmp_path / "export"
    exported = _bitwitness("export", image, "/", "--to", out)
    assert exported.returncode == 1
    assert (out / "victim.bin").read_bytes() == bytes(expected)
    manifest = json.loads((out / "manifest.json").read_text())
    failed = {f["source"]: f["reason"] for f in manifest["failed"]}
    assert set(failed) == {"/victim.bin"}
    assert failed["/victim.bin"].startswith("exported, but 1024 byte(s)")
    assert {f["source"] for f in manifest["files"]} >= {"/victim.bin", "/safe.txt"}


def test_sectors_outside_every_file_are_not_blamed_on_one(disk: dict[str, Any],
                                                          tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    """An unreadable sector in free space or outside the partition touches no file."""
    last = disk["image"].stat().st_size // SECTOR - 1
    base = tmp_path / "img"
    _acquire(monkeypatch, disk["image"], base, {last, 100})
    image = base.with_suffix(".E01")
    for path in ("/victim.bin", "/safe.txt"):
        done = _bitwitness("cat", image, path)
        assert done.returncode == 0, done.stderr
    assert json.loads(_bitwitness("stat", image, "/victim.bin", "--json").stdout)[
        "doubts"] == []


def test_browser_shows_the_doubt(disk: dict[str, Any], tmp_path: Path,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("textual")
    import asyncio

    from textual.widgets import DataTable, Static

    from bitwitness.report.browse.tui import EvidenceBrowser

    first = _media_sector(disk, 0, 0)
    base = tmp_path / "img"
    _acquire(monkeypatch, disk["image"], base, {first})
    image = base.with_suffix(".E01")

    async def scenario() -> dict[str, str]:
        app = EvidenceBrowser(image, export_to=tmp_path / "exports")
        shown: dict[str, str] = {}
        async with app.run_test(size=(160, 50)) as pilot:
            tree = app.query_one("#tree")
            tree.select_node(tree.root.children[0])  # type: ignore[attr-defined]
            await pilot.pause()
            table = app.query_one("#entries", DataTable)
            rows = {str(table.get_row_at(i)[0]): i for i in range(table.row_count)}
            for name in ("victim.bin", "safe.txt"):
                table.focus()
                table.move_cursor(row=rows[name])
                await pilot.pause()
                shown[name] = str(app.query_one("#meta", Static).render())
            await pilot.press("q")
        return shown

    shown = asyncio.run(scenario())
    assert "doubt: 512 byte(s) of its data lie in media sectors" in shown["victim.bin"]
    assert f"sectors {first}" in shown["victim.bin"]
    assert "doubt" not in shown["safe.txt"]
