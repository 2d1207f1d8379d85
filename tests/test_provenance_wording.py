"""Sentences an examiner reads aloud: hash references and dates say what they mean.

The acquisition date shown by ``info`` is compared with the one ewfinfo (libewf) prints, with the
zone added; the conversion's references name where the value was recorded.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from conftest import make_disk_bytes, require_tool, run_bitwitness


def test_info_names_the_zone_of_the_acquisition_date(tmp_path: Path) -> None:
    require_tool("ewfinfo")
    source = tmp_path / "disk.bin"
    source.write_bytes(make_disk_bytes(256 * 1024))
    assert run_bitwitness("acquire", source, "-o", tmp_path / "img").exit_code == 0
    ours = run_bitwitness("info", tmp_path / "img.E01")
    assert ours.exit_code == 0, ours.stderr
    theirs = subprocess.run(["ewfinfo", str(tmp_path / "img.E01")], capture_output=True,
                            text=True, check=True, env={**os.environ, "TZ": "UTC"}).stdout
    date = next(ln.split(":", 1)[1].strip() for ln in theirs.splitlines()
                if "Acquisition date" in ln)
    line = next(ln for ln in ours.stdout.splitlines() if "Acquisition date" in ln)
    assert line.split(":", 1)[1].strip() == f"{date} UTC"


def test_convert_says_where_each_matching_hash_was_recorded(tmp_path: Path) -> None:
    source = tmp_path / "disk.bin"
    source.write_bytes(make_disk_bytes(256 * 1024))
    assert run_bitwitness("acquire", source, "-o", tmp_path / "img").exit_code == 0
    result = run_bitwitness("convert", tmp_path / "img.E01", "--to", "raw", "-o",
                            tmp_path / "out")
    assert result.exit_code == 0, result.stderr
    assert "match: md5 equals the value stored in the image" in result.stdout
    assert "recorded by stored" not in result.stdout
