"""Names no path can spell as stored (bytes that are not UTF-8, ``/`` inside a name, ``.`` and
``..`` as files, an empty name, control bytes) are reached by path in the forms our outputs print
them: the export manifest's target (``%XX``), the JSON/CSV path (``\\xNN``) and ``ls``'s line.
Each spelling must give ``stat``, ``cat`` and ``export`` the inode ``icat`` reads, on the hostile
ext2 and FAT images of ``tests/fsimages.py`` (names written raw into the directories).
"""

from __future__ import annotations

import hashlib
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
    require_tool("fls", "icat")
    return _build("hostile_ext2", tmp_path_factory.mktemp("spelled"))


def _icat(image: Path, inode: str) -> bytes:
    return subprocess.run(["icat", str(image), inode], capture_output=True, check=True).stdout


def _spellings(image: Path, tmp_path: Path) -> list[tuple[str, str, str]]:
    """(spelling, inode, where it was printed) for every file of the image, from its own
    outputs: the export targets, the JSON paths and the ls lines."""
    out = tmp_path / "all"
    result = _bitwitness("export", image, "/", "--all", "--to", out)
    assert result.returncode == 0, result.stderr
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    found = [("/" + row["target"], row["inode"], "manifest target") for row in manifest["files"]]
    listed = json.loads(_bitwitness("ls", image, "-r", "--all", "--json").stdout)["entries"]
    found += [(e["path"], e["inode"], "JSON path") for e in listed
              if e["kind"] == "file" and e["path"].count("/") == 1  # a "/" in a name: %2F only
              and e["name"] not in (".", "..")]
    lines = _bitwitness("ls", image, "-r", "--all").stdout.decode("utf-8").splitlines()
    for line in lines:
        head, _, shown = line.partition(":\t")
        if head.startswith("r/r") and shown.count("/") == 0 and shown not in (".", ".."):
            found.append(("/" + shown, head.split()[-1], "ls line"))
    return found


def test_every_printed_spelling_names_the_inode_icat_reads(hostile_ext2: Path,
                                                           tmp_path: Path) -> None:
    before = snapshot([hostile_ext2])
    spellings = _spellings(hostile_ext2, tmp_path)
    targets = {s for s, _, where in spellings if where == "manifest target"}
    for expected in ("/%2E", "/%2E%2E", "/a%2Fb", "/%2Fetc%2FshadowX", "/bad%FF%FE.txt",
                     "/bell%07%1B[31mred", "/back%5Cslash", "/sub%2Fdir/inner.txt"):
        assert expected in targets
    assert ("/bad\\xff\\xfe.txt", "JSON path") in {(s, w) for s, _, w in spellings}
    assert ("/bell^^[31mred", "ls line") in {(s, w) for s, _, w in spellings}
    checked = 0
    for spelled, inode, where in spellings:
        stat = _bitwitness("stat", hostile_ext2, spelled, "--json")
        assert stat.returncode == 0, (spelled, where, stat.stderr)
        assert json.loads(stat.stdout)["inode"] == inode, (spelled, where)
        icat = _icat(hostile_ext2, inode)
        cat = _bitwitness("cat", hostile_ext2, spelled)
        assert (cat.returncode, cat.stdout) == (0, icat), (spelled, where)
        checked += 1
    assert checked >= 17  # 9 targets, 4 JSON paths, 4 ls lines
    assert snapshot([hostile_ext2]) == before


def test_export_by_spelled_path_targets_the_stored_name(hostile_ext2: Path,
                                                        tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = _bitwitness("export", hostile_ext2, "/%2E%2E", "/a%2Fb", "/bad\\xff\\xfe.txt",
                         "/sub%2Fdir", "--to", out)
    assert result.returncode == 0, result.stderr
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    rows = {r["target"]: r for r in manifest["files"]}
    assert set(rows) == {"%2E%2E", "a%2Fb", "bad%FF%FE.txt", "sub%2Fdir/inner.txt"}
    assert manifest["folders"] == ["sub%2Fdir"]
    for target, row in rows.items():
        icat = _icat(hostile_ext2, row["inode"])
        assert out.joinpath(*target.split("/")).read_bytes() == icat, target
        assert row["sha256"] == hashlib.sha256(icat).hexdigest()
    assert rows["sub%2Fdir/inner.txt"]["source"] == "/sub/dir/inner.txt"
    assert out.joinpath("sub%2Fdir", "inner.txt").read_bytes() == fsimages.HOSTILE_EXT2_INNER
    listed = _bitwitness("ls", hostile_ext2, "/sub%2Fdir").stdout.decode()
    assert listed == f"r/r {rows['sub%2Fdir/inner.txt']['inode']}:\tsub/dir/inner.txt\n"


def test_names_as_stored_come_before_spellings(hostile_ext2: Path) -> None:
    """``back\\slash`` is a name as stored; ``..`` stays refused and ``.`` stays this folder."""
    stat = json.loads(_bitwitness("stat", hostile_ext2, "/back\\slash", "--json").stdout)
    assert stat["name"] == "back\\slash"
    assert _bitwitness("cat", hostile_ext2, "/..").returncode == 2
    assert json.loads(_bitwitness("stat", hostile_ext2, "/.", "--json").stdout)["kind"] == (
        "directory")
    missing = _bitwitness("stat", hostile_ext2, "/%2E%2E%2E")
    assert missing.returncode == 2
    assert b"no such file or folder" in missing.stderr


def test_fat_refused_and_empty_names_by_spelled_path(tmp_path: Path) -> None:
    image = _build("hostile_fat", tmp_path)
    cases = {"/..%2F..%2FX.TXT": b"../../X TXT", "/%2FETC%2FPW.TXT": b"/ETC/PW TXT",
             "/..%5C..%5CX.TXT": b"..\\..\\X TXT", "/%2E%2E": b"..         ",
             "/%00": b"           "}
    for spelled, raw in cases.items():
        cat = _bitwitness("cat", image, spelled)
        assert (cat.returncode, cat.stdout) == (0, fsimages.HOSTILE_FAT[raw]), spelled
    inner = _bitwitness("cat", image, "/%2FHIDDEN/INNER.TXT")
    assert inner.stdout == fsimages.HIDDEN_INNER
    listed = _bitwitness("ls", image, "/%2FHIDDEN").stdout.decode()
    assert listed.endswith("\t/HIDDEN/INNER.TXT\n")
