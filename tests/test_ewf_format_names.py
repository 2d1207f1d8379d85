"""The writer profile ``info`` names for a set ewfacquire wrote with each ``-f``: the name that
``-f`` takes, where the bytes tell it (ewfinfo's own "File format" line calls SMART "FTK
Imager" and the original EWF "EnCase 1"). EnCase 2 and 3 write the same header, and EnCase 7,
linen 7 and EWF-X the same sections as EnCase 6/4: those are named by what they share."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from conftest import require_tool, run_bitwitness

NAMES = {"ewf": "ewf", "smart": "smart", "ftk": "ftk", "encase1": "encase1",
         "encase2": "encase2", "encase3": "encase2", "encase4": "encase4",
         "encase5": "encase5", "encase6": "encase6", "encase7": "encase6",
         "linen5": "linen5", "linen6": "linen6", "linen7": "encase6", "ewfx": "encase4"}


@pytest.fixture(scope="module")
def sets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    require_tool("ewfacquire")
    base = tmp_path_factory.mktemp("ewf-formats")
    source = base / "src.bin"
    source.write_bytes(os.urandom(256 << 10))
    made = {}
    for fmt in NAMES:
        subprocess.run(["ewfacquire", "-u", "-q", "-f", fmt, "-t", str(base / fmt),
                        str(source)], check=True, capture_output=True)
        made[fmt] = sorted(base.glob(f"{fmt}.*"))[0]
    return made


@pytest.mark.parametrize("fmt", sorted(NAMES))
def test_the_writer_profile_is_named_as_ewfacquire_names_it(sets: dict[str, Path],
                                                             fmt: str) -> None:
    done = run_bitwitness("info", sets[fmt], "--json")
    assert done.exit_code == 0, done.stderr
    assert done.json()["ewf"]["format_name"] == NAMES[fmt]
