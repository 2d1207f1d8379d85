"""An E01 case field typed over two lines (``ewfacquire -D`` with a line break, kept as it is
in both ``header2`` and ``header``) keeps every field: read a line at a time, the header gave
the description's first line and lost the case and evidence numbers, examiner, notes and dates
after it (libewf keeps the first three). ``info`` shows the break as ``^``: a value cannot pass
for lines of its own."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from conftest import require_tool, run_bitwitness

from bitwitness.errors import ExitCode


def test_a_description_over_two_lines_keeps_every_field(tmp_path: Path) -> None:
    require_tool("ewfacquire", "ewfinfo")
    source = tmp_path / "source.raw"
    source.write_bytes(os.urandom(1 << 20))
    subprocess.run(["ewfacquire", "-u", "-q", "-t", tmp_path / "x", "-c", "fast",
                    "-D", "first line\nsecond line", "-C", "CASE-7", "-E", "EV-12",
                    "-e", "Ann Example", "-N", "seized at the scene", source],
                   check=True, capture_output=True)
    image = tmp_path / "x.E01"
    theirs = subprocess.run(["ewfinfo", image], check=True, capture_output=True,
                            text=True).stdout
    assert "Case number:\t\tCASE-7" in theirs  # what libewf keeps
    done = run_bitwitness("info", image, "--json")
    assert done.exit_code == ExitCode.OK, done.stderr
    values = done.json()["header_values"]
    assert values["description"] == "first line\nsecond line"
    assert values["case_number"] == "CASE-7"
    assert values["evidence_number"] == "EV-12"
    assert values["examiner_name"] == "Ann Example"
    assert values["notes"] == "seized at the scene"
    assert values["acquiry_software_version"]
    text = run_bitwitness("info", image).stdout
    assert "  Description:            first line^second line\n" in text
    assert "  Notes:                  seized at the scene\n" in text
