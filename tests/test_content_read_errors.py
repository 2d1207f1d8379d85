"""A file whose data the file system maps outside the volume (a damaged block pointer): `icat`
writes the bytes before the bad block and fails. BitWitness's `cat` wrote nothing and exited 2
(a usage error), saying it could not read "at byte 0", since it reads a MiB at a time and TSK
fails a whole request at its first bad block. Now `cat` gives the same bytes as `icat`, exits 1
(an evidence problem) and names the byte of the file where reading stopped; `export` lists the
file under `failed` with that byte and keeps no partial copy.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from conftest import require_tool, run_bitwitness

from bitwitness.errors import ExitCode

BLOCK = 1024


def _damaged_ext2(folder: Path) -> tuple[Path, bytes]:
    """An ext2 of 1 KiB blocks holding ``/f`` (40 KiB), its second block pointer set past the
    volume with debugfs; returns the image and the file's bytes as written."""
    require_tool("mkfs.ext2", "debugfs", "icat")
    tree = folder / "tree"
    tree.mkdir()
    content = bytes(range(256)) * (40 * BLOCK // 256)
    (tree / "f").write_bytes(content)
    image = folder / "e2.img"
    subprocess.run(["mkfs.ext2", "-q", "-b", str(BLOCK), "-d", str(tree), str(image), "8M"],
                   check=True, capture_output=True)
    subprocess.run(["debugfs", "-w", "-R", "sif /f block[1] 99999999", str(image)],
                   check=True, capture_output=True)
    return image, content


def test_cat_gives_what_icat_gives_and_names_the_byte(tmp_path: Path) -> None:
    image, content = _damaged_ext2(tmp_path)
    icat = subprocess.run(["icat", str(image), "12"], capture_output=True, check=False)
    assert icat.returncode != 0
    assert icat.stdout == content[:BLOCK]  # the first block, then TSK's error
    done = run_bitwitness("cat", image, "/f")
    assert done.exit_code == ExitCode.EVIDENCE, done.stderr
    assert done.output == icat.stdout
    assert f"cannot read /f at byte {BLOCK}:" in done.stderr
    assert "Traceback" not in done.stderr


def test_export_lists_the_damaged_file_with_its_byte(tmp_path: Path) -> None:
    image, _ = _damaged_ext2(tmp_path)
    out = tmp_path / "out"
    done = run_bitwitness("export", image, "/", "--to", out)
    assert done.exit_code == ExitCode.EVIDENCE, done.stderr
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert [f["source"] for f in manifest["failed"]] == ["/f"]
    assert f"at byte {BLOCK}:" in manifest["failed"][0]["reason"]
    assert not (out / "f").exists()  # no partial copy posing as the file
    assert manifest["complete"] is False
