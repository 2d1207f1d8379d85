"""NTFS in full, on an image written through ntfs-3g (tests/fsimages.py): deleted files by path,
$STANDARD_INFORMATION against $FILE_NAME (a timestomped file shows), system files exportable,
each checked against fls, icat and istat."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import fsimages
import pytest
from conftest import require_tool
from test_browse_parity import _bitwitness


@pytest.fixture(scope="module")
def ntfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_tool("fls", "icat", "istat")
    try:
        return fsimages.ntfs(tmp_path_factory.mktemp("ntfs") / "ntfs.img")
    except fsimages.Unavailable as exc:
        pytest.skip(f"NTFS cannot be built here: {exc}")


def _tsk(*args: str | Path) -> bytes:
    return subprocess.run([str(a) for a in args], capture_output=True, check=True).stdout


def test_deleted_file_by_path_is_the_inode_icat_reads(ntfs: Path, tmp_path: Path) -> None:
    fls = _tsk("fls", "-r", "-p", ntfs).decode().splitlines()
    [line] = [x for x in fls if x.endswith("\tdir/deleted.txt")]
    assert line.startswith("-/r * ")
    address = line.split()[2].rstrip(":")
    ours = _bitwitness("ls", ntfs, "/dir", "--deleted").stdout.decode().splitlines()
    assert f"-/r * {address}:\tdir/deleted.txt" in ours
    icat = _tsk("icat", ntfs, address)
    assert len(icat) == 41
    assert _bitwitness("cat", ntfs, "/dir/deleted.txt").stdout == icat
    stat = json.loads(_bitwitness("stat", ntfs, "/dir/deleted.txt", "--json").stdout)
    assert (stat["inode"], stat["size"], stat["kind"]) == (address, 41, "file")
    assert stat["modified"] is not None
    body = _bitwitness("timeline", ntfs).stdout.decode().splitlines()
    row = next(x for x in body if x.split("|")[1] == "/dir/deleted.txt (deleted)")
    assert all(int(t) > 0 for t in row.split("|")[7:])
    out = tmp_path / "out"
    assert _bitwitness("export", ntfs, "/dir", "--all", "--to", out).returncode == 0
    manifest = json.loads((out / "manifest.json").read_text())
    exported = next(r for r in manifest["files"] if r["source"] == "/dir/deleted.txt")
    assert exported["md5"] == hashlib.md5(icat).hexdigest()  # noqa: S324 - a file hash


def test_timestomping_shows_in_stat_timeline_and_manifest(ntfs: Path, tmp_path: Path) -> None:
    stomped = datetime.fromtimestamp(fsimages.STOMPED, UTC)
    stat = json.loads(_bitwitness("stat", ntfs, "/dir/stomped.txt", "--json").stdout)
    si = stat["standard_information"]
    [fn] = stat["file_names"]
    assert datetime.fromisoformat(si["modified"]) == stomped
    assert datetime.fromisoformat(fn["times"]["modified"]) > stomped  # the name was not stomped
    istat = _tsk("istat", "-z", "UTC", ntfs, str(stat["meta_address"])).decode()
    assert istat.count("File Modified:\t2001-09-09 01:46:40") == 1  # $SI only, as ours
    body = _bitwitness("timeline", ntfs).stdout.decode().splitlines()
    rows = {x.split("|")[1]: x.split("|") for x in body}
    assert int(rows["/dir/stomped.txt"][8]) == fsimages.STOMPED
    assert int(rows["/dir/stomped.txt ($FILE_NAME)"][8]) > fsimages.STOMPED
    fls = _tsk("fls", "-r", "-m", "/", ntfs).decode().splitlines()
    assert "|".join(rows["/dir/stomped.txt ($FILE_NAME)"]) in fls
    out = tmp_path / "out"
    assert _bitwitness("export", ntfs, "/dir/stomped.txt", "--to", out).returncode == 0
    [row] = json.loads((out / "manifest.json").read_text())["files"]
    assert datetime.fromisoformat(row["modified"]) == stomped
    assert datetime.fromisoformat(row["fn_modified"]) > stomped


def test_system_files_export_as_icat_reads_them(ntfs: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = _bitwitness("export", ntfs, "/$MFT", "/$LogFile", "/$Extend/$Quota:$Q", "--to",
                         out)
    assert result.returncode == 0, result.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert len(manifest["files"]) == 3
    for row in manifest["files"]:
        data = out.joinpath(*row["target"].split("/")).read_bytes()
        assert data == _tsk("icat", ntfs, row["inode"]), row["source"]
        assert row["size"] > 0


def test_usn_journal_exports_as_icat_reads_it(ntfs: Path, tmp_path: Path) -> None:
    """``$Extend/$UsnJrnl:$J`` by path (the ADS syntax): its leading sparse run reads as zeros,
    as icat writes it, and its records follow; stat shows the sparse run istat shows."""
    fls = _tsk("fls", "-r", "-p", ntfs).decode().splitlines()
    [line] = [x for x in fls if x.endswith("\t$Extend/$UsnJrnl:$J")]
    address = line.split()[1].rstrip(":")
    assert re.fullmatch(r"\d+-128-\d+", address)  # a $DATA attribute of its own inode
    listed = _bitwitness("ls", ntfs, "/$Extend").stdout.decode().splitlines()
    assert f"r/r {address}:\t$Extend/$UsnJrnl:$J" in listed
    icat = _tsk("icat", ntfs, address)
    assert icat[: fsimages.USN_OFFSET] == bytes(fsimages.USN_OFFSET)
    assert icat[fsimages.USN_OFFSET :] == fsimages.usn_records()
    cat = _bitwitness("cat", ntfs, "/$Extend/$UsnJrnl:$J")
    assert cat.returncode == 0, cat.stderr
    assert cat.stdout == icat
    stat = json.loads(_bitwitness("stat", ntfs, "/$Extend/$UsnJrnl:$J", "--json").stdout)
    assert (stat["inode"], stat["stream"], stat["size"]) == (address, "$J", len(icat))
    inode = address.split("-")[0]
    istat = _tsk("istat", ntfs, inode).decode()
    assert f"Name: $J   Non-Resident, Sparse   size: {len(icat)}" in istat
    [journal] = [a for a in stat["attributes"] if a["name"] == "$J"]
    cluster = int(_tsk("fsstat", ntfs).decode().split("Cluster Size: ")[1].split()[0])
    assert journal["runs"][0] == [None, fsimages.USN_OFFSET // cluster]  # the sparse start
    text = _bitwitness("stat", ntfs, "/$Extend/$UsnJrnl:$J").stdout.decode()
    assert f"runs:          sparse+{fsimages.USN_OFFSET // cluster} " in text
    out = tmp_path / "out"
    result = _bitwitness("export", ntfs, "/$Extend/$UsnJrnl:$J", "/$Extend/$UsnJrnl:$Max",
                         "--to", out)
    assert result.returncode == 0, result.stderr
    rows = {r["source"]: r for r in json.loads((out / "manifest.json").read_text())["files"]}
    row = rows["/$Extend/$UsnJrnl:$J"]
    assert row["inode"] == address
    assert out.joinpath(*row["target"].split("/")).read_bytes() == icat
    assert row["md5"] == hashlib.md5(icat).hexdigest()  # noqa: S324 - a file hash
    maximum = rows["/$Extend/$UsnJrnl:$Max"]
    assert out.joinpath(*maximum["target"].split("/")).read_bytes() == _tsk(
        "icat", ntfs, maximum["inode"])


def test_deleted_files_take_the_record_way(ntfs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A deleted file's record has no inode (NTFS counts its MFT entry's sequence number up on
    deletion, and TSK drops an inode whose number differs from the name's); the walk joins the
    inode to the record (FileSystem._with_inode) instead of opening every name of the folder
    again the general way, with the same entries as that way."""
    from bitwitness.image import open_image
    from bitwitness.report.browse import filesystem
    from bitwitness.report.browse.entries import Selection

    def walked() -> list[Any]:
        fs = filesystem.open_filesystem(open_image(ntfs))
        return list(fs.walk("/", recursive=True, selection=Selection.ALL, file_names=True))

    general: list[Any] = []  # the entries made the general way
    by_records = walked()
    with monkeypatch.context() as m:
        slow = filesystem.FileSystem._general_entries

        def spied(self: Any, folder: Any, index: int, *args: Any, **kwargs: Any) -> Any:
            made = slow(self, folder, index, *args, **kwargs)
            general.extend(made[0])
            return made

        m.setattr(filesystem.FileSystem, "_general_entries", spied)
        assert walked() == by_records
    deleted = [e for e in by_records if e.deleted and e.path.startswith("/dir/deleted")]
    assert {e.path for e in deleted} == {"/dir/deleted.txt", "/dir/deleted big.bin"}
    assert general  # ($MFT, whose times TSK leaves incomplete, and $OrphanFiles take it)
    assert not [e.path for e in general if e.deleted]
    with monkeypatch.context() as m:
        m.setattr(filesystem.FileSystem, "_by_records", False)
        assert walked() == by_records
