"""HFS+ names are UTF-16 units as stored, and a catalog may hold a lone surrogate half (crafted,
or damaged). The Sleuth Kit converted each name strictly, so one such name made the whole folder
unreadable: ``fls`` lists nothing of it (Debian's build still does, below), hiding every file
beside that name. Our build converts leniently (scripts/build-pytsk3.sh, fix 5) and the exact
name is read from the catalog's thread record, kept as WTF-8 bytes as NTFS's are.

Oracles: pyfshfs (libfshfs) lists the folder's entries by identifier (it cannot give the bad
names either); ``icat`` reads each file by its identifier; the names are the units the test
wrote (tests/builders/hfsplus.py writes them as given).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from builders import hfsplus
from conftest import require_tool, run_bitwitness

NAMES = {  # name as written (str with surrogates) -> what ls shows
    "zz\ud800qq.txt": "zz\\xed\\xa0\\x80qq.txt",  # a high half inside (TSK ate the q)
    "zz\ud800rr.txt": "zz\\xed\\xa0\\x80rr.txt",  # the same but for one letter
    "low\udc00.txt": "low\\xed\\xb0\\x80.txt",  # a low half alone
    "end\ud801": "end\\xed\\xa0\\x81",  # a high half ending the name
    "caret^ok.txt": "caret^ok.txt",  # a real '^', valid UTF-16: TSK's name is right
    "plain.txt": "plain.txt",
}


@pytest.fixture(scope="module")
def volume(tmp_path_factory: pytest.TempPathFactory) -> Path:
    image = tmp_path_factory.mktemp("hfsnames") / "hfs.img"
    nodes = [hfsplus.Node(name, data=f"content of file {n}\n".encode())
             for n, name in enumerate(NAMES)]
    image.write_bytes(hfsplus.hfsplus_volume(nodes))  # names written unit for unit
    return image


def _pyfshfs_ids(image: Path) -> set[int]:
    pyfshfs = pytest.importorskip("pyfshfs")
    volume = pyfshfs.volume()
    volume.open(os.fspath(image))
    try:
        root = volume.get_root_directory()
        return {root.get_sub_file_entry(i).identifier
                for i in range(root.number_of_sub_file_entries)}
    finally:
        volume.close()


def test_debian_tsk_hides_the_folder_and_pyfshfs_lists_every_entry(volume: Path) -> None:
    """The oracles, and the bug as unfixed TSK has it."""
    require_tool("fls")
    fls = subprocess.run(["fls", "-f", "hfs", os.fspath(volume)], capture_output=True,
                         text=True, check=False)
    assert "unicode conversion failed" in fls.stderr
    assert len(_pyfshfs_ids(volume)) == len(NAMES)


def test_every_file_is_listed_under_its_exact_name(volume: Path) -> None:
    result = run_bitwitness("ls", "--json", volume)
    assert result.exit_code == 0, result.stderr
    entries = [e for e in result.json()["entries"] if not e["name"].startswith("$")]
    assert {e["inode"] for e in entries} == {str(i) for i in _pyfshfs_ids(volume)}
    assert {e["name"] for e in entries} == set(NAMES.values())
    assert {bytes.fromhex(e["name_hex"]) if e["name_hex"] else e["name"].encode()
            for e in entries} == {name.encode("utf-8", "surrogatepass") for name in NAMES}
    listing = run_bitwitness("ls", volume).stdout
    for printed in NAMES.values():
        assert f"\t{printed}\n" in listing


def test_each_reads_as_icat_reads_its_identifier(volume: Path) -> None:
    require_tool("icat")
    listed = {e["name_hex"] or e["name"].encode().hex(): e["inode"]
              for e in run_bitwitness("ls", "--json", volume).json()["entries"]}
    for name, printed in NAMES.items():
        inode = listed[name.encode("utf-8", "surrogatepass").hex()]
        expected = subprocess.run(["icat", "-f", "hfs", os.fspath(volume), inode],
                                  capture_output=True, check=True).stdout
        cat = subprocess.run([sys.executable, "-m", "bitwitness", "cat", os.fspath(volume),
                              "/" + printed], capture_output=True, check=False, timeout=120)
        assert cat.returncode == 0, cat.stderr
        assert cat.stdout == expected


def test_export_keeps_two_names_that_tsk_made_alike(volume: Path, tmp_path: Path) -> None:
    result = run_bitwitness("export", volume, "/", "--to", tmp_path / "out")
    assert result.exit_code == 0, result.stderr
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    sources = {f["source"] for f in manifest["files"]}
    for printed in NAMES.values():
        assert "/" + printed in sources
