"""A stale name in an NTFS folder's index, whose MFT record was given to another file since, is
listed as ``fls`` lists it (``r/-``: no inode) and its content is refused; it passed for a live
file holding the other file's bytes, exported with exit 0.

The volume is made by mkntfs and written through ntfs-3g: a folder of 1,200 files, some removed
(freeing index blocks, which keep their old entries, as Windows leaves them), then new files in
another folder take the freed MFT records with a higher sequence number. The Sleuth Kit (fls,
tsk_recover) is the reference; ntfs-3g itself no longer shows those names.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import fsimages
import pytest
from conftest import require_root, require_tool, run_bitwitness

from bitwitness.errors import ExitCode


def _run(*args: str | Path) -> str:
    done = subprocess.run([str(a) for a in args], capture_output=True, check=False, timeout=300)
    assert done.returncode == 0, (args, done.stderr[-400:])
    return done.stdout.decode("utf-8", "surrogateescape")


@pytest.fixture(scope="module")
def volume(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_root()
    require_tool("mkntfs", "ntfs-3g", "fls", "tsk_recover")
    if not Path("/dev/fuse").exists():
        pytest.skip("no /dev/fuse")
    folder = tmp_path_factory.mktemp("stale")
    image = folder / "ntfs.img"
    with fsimages.fresh_ntfs(image, 64 << 20, folder / "m") as mountpoint:
        big = mountpoint / "big"
        big.mkdir()
        for number in range(1, 1201):
            (big / f"name_{number}.txt").write_bytes(f"orig {number}\n".encode())
        subprocess.run(["sync"], check=False)
        for removed in big.glob("name_6*.txt"):
            removed.unlink()
        subprocess.run(["sync"], check=False)
        other = mountpoint / "other"
        other.mkdir()
        for number in range(1, 151):
            (other / f"new_{number}.txt").write_bytes(f"REUSED {number}\n".encode())
    return image


def _stale(image: Path) -> list[str]:
    """The names fls lists with no inode (``r/-``), the stale entries."""
    return [line.split("\t", 1)[1] for line in _run("fls", "-r", "-p", image).splitlines()
            if line.startswith("r/- ")]


def test_stale_names_list_as_fls_lists_them(volume: Path) -> None:
    stale = _stale(volume)
    assert stale, "the volume must hold stale index entries for this test to mean anything"
    listed = run_bitwitness("ls", "-r", "--all", volume)
    assert listed.exit_code == ExitCode.OK, listed.stderr
    assert Counter(listed.stdout.splitlines()) == Counter(
        _run("fls", "-r", "-p", volume).splitlines())
    doc = run_bitwitness("ls", "--json", volume, "/big").json()
    entry = next(e for e in doc["entries"] if e["path"] == f"/{stale[0]}")
    assert entry["deleted"] is False
    assert entry["type"] == "r/-"


def test_their_content_is_refused_not_another_files(volume: Path, tmp_path: Path) -> None:
    stale = _stale(volume)
    done = run_bitwitness("cat", volume, f"/{stale[0]}")
    assert done.exit_code != ExitCode.OK
    assert done.output == b""
    assert "points at no inode The Sleuth Kit reads" in done.stderr
    assert "REUSED" not in done.stdout

    recovered = tmp_path / "recovered"
    recovered.mkdir()
    _run("tsk_recover", "-e", volume, recovered)
    out = tmp_path / "exported"
    exported = run_bitwitness("export", volume, "/big", "--to", out)
    assert exported.exit_code == ExitCode.EVIDENCE, exported.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    failed = {f["source"] for f in manifest["failed"]}
    assert failed == {f"/{name}" for name in stale}
    for name in stale:
        assert not (out / name).exists()
        assert not (recovered / name).exists()  # tsk_recover leaves them out too
    kept = sorted(p.name for p in (out / "big").iterdir())
    assert kept == sorted(p.name for p in (recovered / "big").iterdir())
    for path in (out / "big").iterdir():
        assert re.fullmatch(rb"orig \d+\n", path.read_bytes()), path


def test_a_name_left_in_a_freed_index_block_of_a_deleted_file_is_that_deleted_file(
        tmp_path: Path) -> None:
    """Files removed from a folder leave their names in index blocks the folder frees; where
    the MFT record was freed too and not reused (its sequence number the name's plus one, as
    NTFS counts it on deletion), the name is the deleted file's: listed deleted, its content
    read as icat reads it and ntfsundelete recovers it. It was listed as a live stale name
    (r/-) and its content refused."""
    require_root()
    require_tool("mkntfs", "ntfs-3g", "fls", "icat", "ntfsundelete")
    if not Path("/dev/fuse").exists():
        pytest.skip("no /dev/fuse")
    image = tmp_path / "ntfs.img"
    with fsimages.fresh_ntfs(image, 64 << 20, tmp_path / "m") as mountpoint:
        folder = mountpoint / "dir"
        folder.mkdir()
        for number in range(1, 301):
            (folder / f"file_{number}.txt").write_bytes(f"{number}\n".encode())
        subprocess.run(["sync"], check=False)
        for removed in folder.glob("file_1[0-9][0-9].txt"):
            removed.unlink()
    recovered = {line.split()[-1] for line in _run("ntfsundelete", "-s", image).splitlines()
                 if line.split() and line.split()[-1].startswith("file_1")}
    assert len(recovered) == 100
    listing = run_bitwitness("ls", "--all", "--json", image, "/dir")
    assert listing.exit_code == 0, listing.stderr
    entries = listing.json()["entries"]
    deleted = {e["name"]: e for e in entries if e["deleted"]}
    assert set(deleted) == recovered
    assert not [e for e in entries if not e["deleted"] and e["name"] in recovered]
    for name in ("file_100.txt", "file_149.txt", "file_199.txt"):
        inode = deleted[name]["inode"]
        theirs = subprocess.run(["icat", str(image), inode], capture_output=True,
                                check=True).stdout
        ours = subprocess.run([sys.executable, "-m", "bitwitness", "cat", str(image),
                               f"/dir/{name}"], capture_output=True, check=False)
        assert ours.returncode == 0, ours.stderr
        assert ours.stdout == theirs == name.removeprefix("file_").removesuffix(".txt").encode()\
            + b"\n"
