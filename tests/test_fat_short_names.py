"""FAT 8.3 names outside ASCII, which TSK prints as ``^``: listed, looked up and shown by
``stat`` as mtools' ``mdir`` shows them (code page 437, case flags applied to every letter).
The image is written by mtools (mcopy, mmd), not by us."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from conftest import require_tool, run_bitwitness

NAMES = ["long file name.txt", "lower.txt", "é.txt", "Mixed.Txt", "UPPER.TXT", "élan.txt",
         "ÉLAN2.TXT"]


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_tool("mkfs.vfat", "mcopy", "mdir")
    base = tmp_path_factory.mktemp("fat-short")
    path = base / "fat.img"
    subprocess.run(["truncate", "-s", "20M", os.fspath(path)], check=True)
    subprocess.run(["mkfs.vfat", os.fspath(path)], check=True, capture_output=True)
    for index, name in enumerate(NAMES):
        source = base / f"s{index}"
        source.write_text(f"{index}\n")
        subprocess.run(["mcopy", "-i", os.fspath(path), os.fspath(source), f"::{name}"],
                       check=True)
    return path


def _mdir(image: Path) -> dict[str, str]:
    """mdir's listing: long name (or the 8.3 name when there is none) -> 8.3 name."""
    out = subprocess.run(["mdir", "-i", os.fspath(image), "::"], capture_output=True,
                         text=True, check=True).stdout
    found = {}
    for line in out.splitlines()[4:]:
        if len(line) < 13 or line.startswith(" "):
            continue
        base, ext = line[0:8].rstrip(), line[9:12].rstrip()
        short = base + ("." + ext if ext else "")
        rest = line[12:].split()
        long_name = line.split(rest[2], 1)[1].strip() if len(rest) > 3 else ""
        found[long_name or short] = short
    return found


def test_short_names_outside_ascii_list_stat_and_read_as_mdir_shows_them(image: Path) -> None:
    shown = _mdir(image)
    assert set(shown) == set(NAMES)
    listed = run_bitwitness("ls", image)
    assert listed.exit_code == 0, listed.stderr
    names = {line.split("\t", 1)[1] for line in listed.stdout.splitlines()
             if line.startswith("r/r")}
    assert names == set(NAMES)
    assert "^" not in listed.stdout
    for index, name in enumerate(NAMES):
        stat = run_bitwitness("stat", "--json", image, f"/{name}")
        assert stat.exit_code == 0, stat.stderr
        assert stat.json()["short_name"] == shown[name], name
        assert run_bitwitness("cat", image, f"/{name}").stdout == f"{index}\n"


def test_a_long_name_tsk_cuts_is_named_so(tmp_path: Path) -> None:
    """A 254-character long name (mtools writes it whole; mdir lists it whole): TSK keeps 247
    characters of it. The warning said "a long name whose checksum does not match its 8.3
    entry", which was not what happened; it now says TSK cut it, and the name is the whole
    one."""
    require_tool("mkfs.fat", "mcopy", "mdir", "fls")
    image = tmp_path / "fat.img"
    image.write_bytes(b"")
    os.truncate(image, 16 << 20)
    subprocess.run(["mkfs.fat", "-F", "16", str(image)], check=True, capture_output=True)
    name = "L" * 250 + ".txt"
    source = tmp_path / name
    source.write_bytes(b"x\n")
    env = {**os.environ, "MTOOLS_SKIP_CHECK": "1"}
    subprocess.run(["mcopy", "-i", str(image), str(source), "::/"], check=True, env=env)
    assert name in subprocess.run(["mdir", "-i", str(image), "::/"], capture_output=True,
                                  text=True, check=True, env=env).stdout
    fls = subprocess.run(["fls", str(image)], capture_output=True, text=True,
                         check=True).stdout
    assert ("L" * 243 + ".txt") not in fls
    listed = run_bitwitness("ls", image)
    assert f"\t{name}" in listed.stdout
    assert f"its long name cut to 247 of its {len(name)} characters" in listed.stderr
    assert "checksum" not in listed.stderr
