"""A sparse file is exported with its holes left holes: the copy holds the same bytes (its MD5
is icat's) but takes the room of its data only. Written out in full, a 3 TiB sparse file of a
small image filled the examiner's disk (tsk_recover writes it out in full too). The file is
written into the image by debugfs; its own MD5 is the reference (icat 4.11 stops at its extents
here: "Invalid address in run")."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

from conftest import require_tool, run_bitwitness

MIB = 1 << 20


def test_holes_stay_holes(tmp_path: Path) -> None:
    require_tool("mkfs.ext4", "debugfs")
    sparse = tmp_path / "sparse.bin"
    with sparse.open("wb") as fh:
        fh.seek(300 * MIB)
        fh.write(b"data in the middle" * 1000)
        fh.truncate(512 * MIB)  # a hole at the end too
    image = tmp_path / "ext4.img"
    with image.open("wb") as fh:
        fh.truncate(64 * MIB)
    subprocess.run(["mkfs.ext4", "-q", "-F", image], check=True, capture_output=True)
    subprocess.run(["debugfs", "-w", "-R", f"write {sparse} sparse.bin", image], check=True,
                   capture_output=True)
    digest = hashlib.md5()  # noqa: S324  (the file debugfs was given: the truth)
    with sparse.open("rb") as fh:
        while chunk := fh.read(8 * MIB):
            digest.update(chunk)
    out = tmp_path / "out"
    done = run_bitwitness("export", image, "/sparse.bin", "--to", out)
    assert done.exit_code == 0, done.stderr
    copy = out / "sparse.bin"
    assert copy.stat().st_size == 512 * MIB
    assert copy.stat().st_blocks * 512 < 8 * MIB  # the data, not the holes
    row = json.loads((out / "manifest.json").read_text())["files"][0]
    assert row["md5"] == digest.hexdigest()
    again = hashlib.md5()  # noqa: S324
    with copy.open("rb") as fh:
        while chunk := fh.read(8 * MIB):
            again.update(chunk)
    assert again.hexdigest() == digest.hexdigest()
