"""Hostile names and contents: every entry a directory holds is listed, exported and recorded,
whatever its name; nothing is written outside the export folder; evidence is never markup.

The images come from ``tests/fsimages.py`` (``scripts/make-test-filesystems.py``): an ext2
whose root holds regular files named ``.``, ``..``, ``/etc/shadowX``, ``a/b``, bytes that are not
UTF-8 and control bytes, and a FAT whose 8.3 entries read ``../../X.TXT``, ``/ETC/PW.TXT``,
``..\\..\\X.TXT`` and ``..``. Contents are checked against ``icat``; for the FAT entries The
Sleuth Kit refuses, against the bytes the builder wrote.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import json
import subprocess
from pathlib import Path

import fsimages
import pytest
from conftest import require_tool, snapshot
from test_browse_parity import _bitwitness


def _build(name: str, folder: Path) -> Path:
    try:
        return fsimages.BUILDERS[name](folder / f"{name}.img")
    except fsimages.Unavailable as exc:
        pytest.skip(f"{name} cannot be built here: {exc}")


@pytest.fixture(scope="module")
def hostile_ext2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build("hostile_ext2", tmp_path_factory.mktemp("hostile"))


@pytest.fixture(scope="module")
def hostile_fat(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build("hostile_fat", tmp_path_factory.mktemp("hostile"))


def _icat(image: Path, inode: str) -> bytes:
    return subprocess.run(["icat", str(image), inode], capture_output=True, check=True).stdout


def test_ext2_every_name_listed_as_stored(hostile_ext2: Path) -> None:
    require_tool("fls")
    result = _bitwitness("ls", hostile_ext2, "--all")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.decode("utf-8").splitlines()
    names = [line.split(":\t", 1)[1] for line in lines]
    # as stored: a leading "/" kept, control bytes as ^ (as fls), other bytes as \xNN
    for expected in (".", "..", "/etc/shadowX", "a/b", "bad\\xff\\xfe.txt", "bell^^[31mred",
                     "back\\slash", "ok.txt"):
        assert expected in names
    assert not any("\x1b" in line for line in lines)
    fls = subprocess.run(["fls", "-p", str(hostile_ext2)], capture_output=True,
                         check=True).stdout.decode("utf-8", "surrogateescape").splitlines()
    shown_fls = {"".join(f"\\x{ord(c) - 0xDC00:02x}" if 0xDC80 <= ord(c) <= 0xDCFF else c
                         for c in line) for line in fls}
    assert set(lines) - shown_fls == {"r/r 12:\t.", "r/r 13:\t.."}  # fls hides these two
    doc = json.loads(_bitwitness("ls", hostile_ext2, "--all", "--json").stdout)
    by_hex = {bytes.fromhex(e["name_hex"]) for e in doc["entries"] if e["name_hex"]}
    assert by_hex == {b"bad\xff\xfe.txt"}


def test_ext2_export_keeps_every_file_inside(hostile_ext2: Path, tmp_path: Path) -> None:
    require_tool("icat")
    before = snapshot([hostile_ext2])
    box = tmp_path / "box"
    box.mkdir()
    destination = box / "out"
    result = _bitwitness("export", hostile_ext2, "/", "--all", "--to", destination)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in box.iterdir()) == ["out"]  # nothing beside the export
    manifest = json.loads((destination / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["complete"] is True
    sources = {}
    for row in manifest["files"]:
        exact = bytes.fromhex(row["source_hex"]) if row["source_hex"] else row[
            "source"].encode()
        sources[exact] = row
        written = destination.joinpath(*row["target"].split("/"))
        assert written.resolve().is_relative_to(destination.resolve())
        data = written.read_bytes()
        assert data == _icat(hostile_ext2, row["inode"])
        assert hashlib.sha256(data).hexdigest() == row["sha256"]
    for name, content in fsimages.HOSTILE_EXT2.items():
        row = sources[b"/" + name]
        assert destination.joinpath(*row["target"].split("/")).read_bytes() == content
    with (destination / "manifest.csv").open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["source_hex"] for r in rows} - {""} == {(b"/bad\xff\xfe.txt").hex()}
    assert snapshot([hostile_ext2]) == before


def test_ext2_timeline_keeps_bytes(hostile_ext2: Path) -> None:
    require_tool("fls")
    body = _bitwitness("timeline", hostile_ext2).stdout.splitlines()
    fls = subprocess.run(["fls", "-r", "-m", "/", str(hostile_ext2)], capture_output=True,
                         check=True).stdout.splitlines()
    assert set(fls) <= set(body)
    assert {line.split(b"|")[1] for line in set(body) - set(fls)} == {b"/.", b"/.."}
    table = _bitwitness("timeline", hostile_ext2, "--format", "csv").stdout.decode("utf-8")
    paths = {row["path"] for row in csv.DictReader(io.StringIO(table))}
    assert "/bad\\xff\\xfe.txt" in paths
    assert "/bell^^[31mred" in paths


def test_export_lists_what_is_not_recoverable(tmp_path: Path) -> None:
    """NTFS orphan records without data: never written as empty files, listed under
    ``no_content`` (they never held content: nothing is lost, so the export succeeds)."""
    image = _build("ntfs", tmp_path)
    destination = tmp_path / "out"
    result = _bitwitness("export", image, "/$OrphanFiles", "/dir", "--all", "--to", destination)
    assert result.returncode == 0, result.stderr
    assert b"NO CONTENT" in result.stdout
    manifest = json.loads((destination / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["complete"] is True
    assert manifest["failed"] == []
    assert manifest["no_content"]
    assert all("holds no data attribute" in f["reason"] for f in manifest["no_content"])
    listed = {f["source"] for f in manifest["no_content"]}
    assert not any((destination / "%24OrphanFiles" / Path(s).name).exists() for s in listed)
    deleted = next(r for r in manifest["files"] if r["source"] == "/dir/deleted.txt")
    assert deleted["deleted"] is True
    assert deleted["size"] == 41
    assert deleted["fn_born"]  # $FILE_NAME times beside the $STANDARD_INFORMATION ones
    cat = _bitwitness("cat", image, "/dir/deleted.txt")
    assert cat.returncode == 0
    assert cat.stdout == b"deleted content, still in the MFT record\n"


def test_fat_short_entries_tsk_refuses_are_kept(hostile_fat: Path, tmp_path: Path) -> None:
    result = _bitwitness("ls", hostile_fat, "--all")
    assert result.returncode == 0, result.stderr
    names = [line.split(":\t", 1)[1] for line in result.stdout.decode().splitlines()]
    for expected in ("../../X.TXT", "/ETC/PW.TXT", "..\\..\\X.TXT", "..", "OK.TXT"):
        assert expected in names
    walked = _bitwitness("ls", hostile_fat, "-r").stdout.decode().splitlines()
    assert any(line.endswith("\t/HIDDEN/INNER.TXT") for line in walked)
    destination = tmp_path / "out"
    exported = _bitwitness("export", hostile_fat, "/", "--to", destination)
    assert exported.returncode == 0, exported.stderr
    manifest = json.loads((destination / "manifest.json").read_text(encoding="utf-8"))
    by_source = {r["source"]: r for r in manifest["files"]}
    for raw, content in fsimages.HOSTILE_FAT.items():
        base, ext = raw[:8].decode().rstrip(), raw[8:].decode().rstrip()
        row = by_source["/" + base + (f".{ext}" if ext else "")]
        written = destination.joinpath(*row["target"].split("/"))
        assert written.resolve().is_relative_to(destination.resolve())
        assert written.read_bytes() == content
        assert row["sha256"] == hashlib.sha256(content).hexdigest()
    inner = by_source["//HIDDEN/INNER.TXT"]
    assert inner["target"] == "%2FHIDDEN/INNER.TXT"
    assert (destination / "%2FHIDDEN" / "INNER.TXT").read_bytes() == fsimages.HIDDEN_INNER
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_browser_shows_markup_as_text(tmp_path: Path) -> None:
    pytest.importorskip("textual")
    require_tool("mkfs.ext2")
    from textual.widgets import DataTable, Static

    from bitwitness.report.browse.tui import EvidenceBrowser

    staging = tmp_path / "staging"
    staging.mkdir()
    (staging / "crash.txt").write_bytes(b"x[a=%")
    (staging / "click.txt").write_bytes(b"[@click=app.quit]press[/] [bold]b[/bold]")
    (staging / "[b]name[@click=app.quit].txt").write_bytes(b"markup in a name")
    image = tmp_path / "markup.img"
    subprocess.run(["truncate", "-s", "4M", str(image)], check=True)
    subprocess.run(["mkfs.ext2", "-q", "-F", "-d", str(staging), str(image)], check=True,
                   capture_output=True)

    async def scenario() -> None:
        app = EvidenceBrowser(image, export_to=tmp_path / "exports")
        async with app.run_test(size=(160, 50)) as pilot:
            tree = app.query_one("#tree")
            tree.select_node(tree.root.children[0])  # type: ignore[attr-defined]
            await pilot.pause()
            table = app.query_one("#entries", DataTable)
            rows = {str(table.get_row_at(i)[0]): i for i in range(table.row_count)}
            table.focus()
            await pilot.press("x")  # text preview
            for name, content in (("crash.txt", "x[a=%"),
                                  ("click.txt", "[@click=app.quit]press[/] [bold]b[/bold]")):
                table.focus()
                table.move_cursor(row=rows[name])
                await pilot.pause()
                assert app.preview_text == content
                rendered = app.query_one("#preview", Static).render()
                assert content in str(rendered)
            marked = next(k for k in rows if "name" in k)
            table.move_cursor(row=rows[marked])
            await pilot.pause()
            meta = str(app.query_one("#meta", Static).render())
            assert "[b]name[@click=app.quit].txt" in meta
            assert app.is_running
            await pilot.press("q")

    asyncio.run(scenario())


def test_reused_inode_is_never_passed_off_as_recovered(tmp_path: Path) -> None:
    require_tool("fls", "icat")
    image = _build("ext4", tmp_path)
    fls = subprocess.run(["fls", "-p", str(image)], capture_output=True, check=True).stdout
    [line] = [x for x in fls.decode().splitlines() if x.endswith("\treused.txt")]
    assert "(realloc)" in line
    listed = _bitwitness("ls", image, "--deleted").stdout.decode().splitlines()
    assert line in listed
    cat = _bitwitness("cat", image, "/reused.txt")
    assert cat.returncode == 1
    assert b"reused by another file" in cat.stderr
    assert cat.stdout == _icat(image, line.split()[2].split("(")[0])  # what icat gives
    destination = tmp_path / "out"
    result = _bitwitness("export", image, "/", "--all", "--to", destination)
    assert result.returncode == 1
    manifest = json.loads((destination / "manifest.json").read_text(encoding="utf-8"))
    assert [f["source"] for f in manifest["failed"]] == ["/reused.txt"]
    assert not (destination / "reused.txt").exists()
    assert "/zz.txt" in {f["source"] for f in manifest["files"]}


@pytest.mark.parametrize("kind", ["ext4", "fat12"])
def test_browser_preview_of_a_lost_file_is_the_note(kind: str, tmp_path: Path) -> None:
    """The preview of a deleted file whose content went to another file (ext4: inode reused,
    fls ``(realloc)``; FAT12: its first cluster given to ``new.bin``, as istat shows) is the
    reason, in text and hex alike: neither "(empty)" nor the newer file's bytes (what icat gives
    for it) stand for its content. A deleted file whose content is there previews as icat
    gives it."""
    pytest.importorskip("textual")
    require_tool("fls", "icat", "istat")
    from textual.widgets import DataTable, Static

    from bitwitness.report.browse.tui import EvidenceBrowser, as_text, hexdump

    if kind == "ext4":
        image, lost, kept = _build("ext4", tmp_path), "reused.txt", "home/ana/gone.txt"
    else:
        try:
            damaged = fsimages.BUILDERS["crafted_fat12"](tmp_path / "fat.img")
        except fsimages.Unavailable as exc:
            pytest.skip(f"FAT12 cannot be built here: {exc}")
        image, lost, kept = fsimages.intact_copy(damaged), "overwritten n", "_ONE.TXT"
    fls = subprocess.run(["fls", "-r", "-p", str(image)], capture_output=True, check=True)
    address = {line.partition(":\t")[2]: line.split()[2].split("(")[0].rstrip(":")
               for line in fls.stdout.decode().splitlines() if line.startswith("r/r * ")}
    foreign = _icat(image, address[lost])
    assert foreign  # icat hands out bytes for it: another file's
    if kind == "ext4":
        assert f"{address[lost]}(realloc):\treused.txt" in fls.stdout.decode()
    else:
        istat = subprocess.run(["istat", str(image), address[lost]], capture_output=True,
                               text=True, check=True).stdout
        first = istat.split("Sectors:", 1)[1].split()[0]
        new_bin = subprocess.run(["ifind", "-n", "/new.bin", str(image)], capture_output=True,
                                 text=True, check=True).stdout.strip()
        owner = subprocess.run(["istat", str(image), new_bin], capture_output=True, text=True,
                               check=True).stdout
        assert first in owner.split("Sectors:", 1)[1].split()
    kept_bytes = _icat(image, address[kept])
    folder, _, kept_name = kept.rpartition("/")

    async def scenario() -> None:
        app = EvidenceBrowser(image, export_to=tmp_path / "exports")
        async with app.run_test(size=(160, 50)) as pilot:
            tree = app.query_one("#tree")
            node = tree.root.children[0]  # type: ignore[attr-defined]
            tree.select_node(node)  # type: ignore[attr-defined]
            await pilot.pause()
            table = app.query_one("#entries", DataTable)
            rows = {str(table.get_row_at(i)[0]): i for i in range(table.row_count)}
            table.focus()
            table.move_cursor(row=rows[lost])
            await pilot.pause()
            for _mode in ("hex", "text"):
                assert app.preview_text.startswith("(content not recoverable: "), \
                    app.preview_text
                assert hexdump(foreign[:16]).split("  ")[1].strip() not in app.preview_text
                assert as_text(foreign) not in app.preview_text
                rendered = str(app.query_one("#preview", Static).render())
                assert "not recoverable" in rendered
                await pilot.press("x")
                await pilot.pause()
            meta = str(app.query_one("#meta", Static).render())
            assert "content: not recoverable" in meta
            if folder:
                for part in folder.split("/"):
                    node.expand()
                    await pilot.pause()
                    node = next(n for n in node.children if str(n.label) == part)
                tree.select_node(node)  # type: ignore[attr-defined]
                await pilot.pause()
            rows = {str(table.get_row_at(i)[0]): i for i in range(table.row_count)}
            table.focus()
            table.move_cursor(row=rows[kept_name])
            await pilot.pause()
            assert app.preview_text == hexdump(kept_bytes)  # hex again after two x
            await pilot.press("q")

    asyncio.run(scenario())


def test_emoji_codes_in_names_stay_text(tmp_path: Path) -> None:
    """rich replaces ``:smile:`` by an emoji even in markup-escaped strings; an evidence name
    holding such a code must reach the examiner as the bytes the file system stores, in the
    export listing, in ``ls`` and in the browser's table."""
    pytest.importorskip("textual")
    require_tool("mkfs.ext2")
    from bitwitness.report.browse.tui import EvidenceBrowser

    staging = tmp_path / "staging"
    staging.mkdir()
    name = ":smile: :red_heart: [b].txt"
    (staging / name).write_bytes(b"emoji code in a name")
    image = tmp_path / "emoji.img"
    subprocess.run(["truncate", "-s", "4M", str(image)], check=True)
    subprocess.run(["mkfs.ext2", "-q", "-F", "-d", str(staging), str(image)], check=True,
                   capture_output=True)
    assert name.encode() in subprocess.run(["fls", str(image)], capture_output=True,
                                           check=True).stdout

    listing = _bitwitness("ls", image)
    assert listing.returncode == 0
    assert name.encode() in listing.stdout
    exported = _bitwitness("export", image, "/", "--to", tmp_path / "out")
    assert exported.returncode == 0, exported.stderr
    # the export line names the target, whose colons are escaped for every file system
    assert b"%3Asmile%3A %3Ared_heart%3A [b].txt" in exported.stdout
    assert "😄".encode() not in exported.stdout + listing.stdout

    async def scenario() -> str:
        app = EvidenceBrowser(image, export_to=tmp_path / "exports")
        async with app.run_test(size=(160, 50)) as pilot:
            tree = app.query_one("#tree")
            tree.select_node(tree.root.children[0])  # type: ignore[attr-defined]
            await pilot.pause()
            screen = app.export_screenshot()
            await pilot.press("q")
        return screen

    screen = asyncio.run(scenario())
    assert "😄" not in screen
    assert "❤" not in screen
    assert ":smile:" in screen.replace("&#160;", " ")


def test_emoji_codes_in_an_evidence_path_stay_text(tmp_path: Path) -> None:
    """The command line's consoles print evidence paths as text: an image file named with an
    emoji code keeps its name in the human output of ``partitions``."""
    require_tool("sgdisk")
    image = tmp_path / ":smile: [b].img"
    subprocess.run(["truncate", "-s", "4M", str(image)], check=True)
    subprocess.run(["sgdisk", "-n", "1:2048:4095", str(image)], check=True, capture_output=True)
    shown = _bitwitness("partitions", image)
    assert shown.returncode == 0, shown.stderr
    assert str(image).encode() in shown.stdout
    assert "😄".encode() not in shown.stdout
