"""A folder the walk cannot read makes ``ls -r``, ``timeline`` and ``export`` end with exit 1 and
say their output is incomplete; ``export`` lists the folder under ``failed`` (the files inside it
were not exported). They ended with exit 0 and a complete-looking manifest, the folder named
only in a warning: the same damage gave 1 where a file failed and 0 where a folder did.

The damage is made by ``debugfs`` (a folder's first block pointed past the volume); ``fls`` is
the reference for what can still be listed.
"""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from pathlib import Path

import pytest
from conftest import require_tool, run_bitwitness

from bitwitness.errors import ExitCode


@pytest.fixture
def damaged(tmp_path: Path) -> Path:
    require_tool("mkfs.ext2", "debugfs", "fls")
    tree = tmp_path / "tree"
    (tree / "dir").mkdir(parents=True)
    (tree / "dir" / "inside.txt").write_bytes(b"inside\n")
    (tree / "kept.txt").write_bytes(b"kept\n")
    image = tmp_path / "ext2.raw"
    with image.open("wb") as fh:
        fh.truncate(4 << 20)
    subprocess.run(["mkfs.ext2", "-q", "-F", "-d", tree, image], check=True, capture_output=True)
    subprocess.run(["debugfs", "-w", "-R", "sif /dir block[0] 99999999", image], check=True,
                   capture_output=True)
    return image


def test_listing_and_timeline_say_they_are_incomplete(damaged: Path) -> None:
    fls = subprocess.run(["fls", "-r", "-p", damaged], capture_output=True, text=True,
                         check=False).stdout
    listed = run_bitwitness("ls", "-r", damaged)
    assert listed.exit_code == ExitCode.EVIDENCE
    assert Counter(listed.stdout.splitlines()) == Counter(fls.splitlines())
    assert "dir/inside.txt" not in listed.stdout
    lines = listed.stderr.strip().splitlines()
    assert lines[0].startswith("warning: /dir: directory not readable")
    assert lines[-1] == ("bitwitness: error: 1 folder(s) or entries could not be read (named "
                         "in the warnings above): the listing is incomplete")
    timeline = run_bitwitness("timeline", damaged)
    assert timeline.exit_code == ExitCode.EVIDENCE
    assert "the timeline is incomplete" in timeline.stderr
    assert "/kept.txt" in timeline.stdout


def test_export_lists_the_folder_it_could_not_read(damaged: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    done = run_bitwitness("export", damaged, "/", "--to", out)
    assert done.exit_code == ExitCode.EVIDENCE, done.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["complete"] is False  # something was not exported
    (failed,) = manifest["failed"]
    assert failed["source"] == "/dir"
    assert failed["reason"].startswith("not read, nor what it holds: directory not readable")
    assert (out / "kept.txt").read_bytes() == b"kept\n"


def test_a_folder_name_holding_a_colon_is_named_whole(tmp_path: Path) -> None:
    """The manifest names the folder as it is, ``: `` in its name included."""
    require_tool("mkfs.ext2", "debugfs")
    tree = tmp_path / "tree"
    (tree / "case: 7").mkdir(parents=True)
    (tree / "case: 7" / "inside.txt").write_bytes(b"inside\n")
    image = tmp_path / "ext2.raw"
    with image.open("wb") as fh:
        fh.truncate(4 << 20)
    subprocess.run(["mkfs.ext2", "-q", "-F", "-d", tree, image], check=True, capture_output=True)
    subprocess.run(["debugfs", "-w", "-R", 'sif "/case: 7" block[0] 99999999', image],
                   check=True, capture_output=True)
    out = tmp_path / "out"
    assert run_bitwitness("export", image, "/", "--to", out).exit_code == ExitCode.EVIDENCE
    (failed,) = json.loads((out / "manifest.json").read_text())["failed"]
    assert failed["source"] == "/case: 7"
    assert failed["reason"].startswith("not read, nor what it holds: directory not readable")
