"""A Joliet-only ISO (no Rock Ridge: genisoimage -J, as Windows burners write them) with a
name The Sleuth Kit cannot take: TSK stops a sector of the Joliet tree at a name over 128
bytes of UTF-8 (here 50 CJK characters), so that file and every record after it in the sector
are lost from the tree (``fls`` lists them as ``$OrphanFiles/OrphanFile-N``, folders not at
all). Such an ISO is read through its Joliet tree by our ISO reader: the names, sizes and
contents are 7-Zip's (``7z l -slt``, ``7z x``: an independent reader), each file keeps the
number TSK gives its data (``icat`` of that number gives the same bytes). A Joliet ISO whose
names TSK takes stays TSK's.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

from conftest import require_tool, run_bitwitness

LONG = "a" + "\u9577" * 50 + ".txt"


def _iso(work: Path, files: dict[str, bytes]) -> Path:
    source = work / "src"
    for name, content in files.items():
        path = source / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    image = work / "joliet.iso"
    subprocess.run(["genisoimage", "-quiet", "-J", "-joliet-long", "-o", image, source],
                   check=True, capture_output=True)
    return image


def _seven_zip(image: Path, out: Path) -> dict[str, str]:
    """Path -> SHA-256 of every file as 7-Zip extracts it."""
    subprocess.run(["7z", "x", "-y", f"-o{out}", image], check=True, capture_output=True)
    return {"/" + str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in out.rglob("*") if p.is_file()}


def test_names_tsk_drops_are_read_through_joliet(tmp_path: Path) -> None:
    require_tool("genisoimage", "7z", "fls", "icat")
    files = {LONG: b"long cjk\n", "b.txt": b"bbb\n", "c.txt": b"ccc\n", "sub/d.txt": b"ddd\n"}
    image = _iso(tmp_path, files)
    listed = subprocess.run(["fls", "-r", "-p", image], capture_output=True, text=True,
                            check=True).stdout
    assert "b.txt" not in listed  # TSK lost them
    truth = _seven_zip(image, tmp_path / "7z")
    assert set(truth) == {"/" + name for name in files}
    ours = run_bitwitness("ls", "-r", "--json", image).json()
    entries = {e["path"]: e for e in ours["entries"] if e["kind"] == "file"}
    assert set(entries) == set(truth)
    for path, digest in truth.items():
        cat = subprocess.run([sys.executable, "-m", "bitwitness", "cat", image, path],
                             capture_output=True, check=True).stdout
        assert hashlib.sha256(cat).hexdigest() == digest, path
        if path != "/sub/d.txt":  # TSK numbers the root's files by their data
            icat = subprocess.run(["icat", image, str(entries[path]["inode"])],
                                  capture_output=True, check=True).stdout
            assert hashlib.sha256(icat).hexdigest() == digest, path
    parts = run_bitwitness("partitions", "--json", image).json()["partitions"]
    assert parts[0]["reader"] == "rockridge"


def test_a_joliet_iso_tsk_reads_stays_tsks(tmp_path: Path) -> None:
    require_tool("genisoimage", "fls")
    image = _iso(tmp_path, {"short.txt": b"s\n", "sub/d.txt": b"d\n"})
    parts = run_bitwitness("partitions", "--json", image).json()["partitions"]
    assert parts[0]["reader"] is None
    ours = run_bitwitness("ls", "-r", "--all", image).stdout.splitlines()
    fls = subprocess.run(["fls", "-r", "-p", image], capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert sorted(ours) == sorted(fls)
