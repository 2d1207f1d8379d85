"""Names in any script, under a locale whose encoding lacks them: the output is UTF-8, as
``fls`` writes it, never an internal error.

Python writes standard output in the locale's encoding; under ``PYTHONIOENCODING=ascii`` (or a
Latin-1 terminal) the first name outside it raised ``UnicodeEncodeError`` and ``ls`` ended with
exit 3, ``--json`` with no document.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import require_tool

NAME = "é中 ünï.txt"


@pytest.fixture(scope="module")
def named(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An ext4 file system (``mkfs.ext4 -d``) holding one file with a name outside Latin-1."""
    require_tool("mkfs.ext4")
    folder = tmp_path_factory.mktemp("encoding")
    (folder / "tree").mkdir()
    (folder / "tree" / NAME).write_bytes(b"content\n")
    image = folder / "fs.img"
    image.write_bytes(bytes(8 << 20))
    subprocess.run(["mkfs.ext4", "-q", "-F", "-d", str(folder / "tree"), str(image)],
                   check=True, capture_output=True, timeout=60)
    return image


def _run(encoding: str, *argv: str) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "PYTHONIOENCODING": encoding}
    return subprocess.run([sys.executable, "-m", "bitwitness", *argv], env=env,
                          capture_output=True, check=False, timeout=120)


@pytest.mark.parametrize("encoding", ["ascii", "latin-1"])
def test_ls_writes_what_fls_writes(named: Path, encoding: str) -> None:
    require_tool("fls")
    proc = _run(encoding, "ls", "-r", "--all", str(named))
    assert proc.stderr == b""
    assert proc.returncode == 0
    fls = subprocess.run(["fls", "-r", "-p", str(named)], capture_output=True, check=True,
                         timeout=60).stdout
    assert proc.stdout == fls
    assert NAME.encode("utf-8") in proc.stdout


def test_json_is_utf8(named: Path) -> None:
    proc = _run("ascii", "ls", "--json", str(named))
    assert proc.returncode == 0, proc.stderr
    names = [e["name"] for e in json.loads(proc.stdout.decode("utf-8"))["entries"]]
    assert NAME in names


def test_export_summary_and_errors_name_the_file(named: Path, tmp_path: Path) -> None:
    """The export's summary line (through the console) and an error line (stderr) carry the
    name in UTF-8."""
    proc = _run("ascii", "export", str(named), "/", "--to", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr
    assert NAME.encode("utf-8") in proc.stdout
    assert (tmp_path / "out" / NAME).read_bytes() == b"content\n"
    missing = tmp_path / NAME
    proc = _run("ascii", "info", str(missing))
    assert proc.returncode == 2
    assert proc.stderr.decode("utf-8") == (
        f"bitwitness: error: {missing}: no such file or device\n")
