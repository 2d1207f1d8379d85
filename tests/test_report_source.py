"""The source section of a report: everything the acquisition log records about the source.

``report.acqlog.source_facts`` writes each field out (mypy checks their types); the test below
holds its field list equal to the log reader's, so a field the log gains reaches the reports.
The source's container format was such a field: logged since images became sources, never shown.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import fields
from pathlib import Path

from conftest import require_tool, run_bitwitness

from bitwitness.acquisitionlog import LoggedSource, load
from bitwitness.report import text
from bitwitness.report.acqlog import source_facts
from bitwitness.report.model import SourceFacts


def test_every_logged_source_field_reaches_the_report() -> None:
    assert [f.name for f in fields(SourceFacts)] == [f.name for f in fields(LoggedSource)]


def test_an_image_source_shows_its_format(tmp_path: Path) -> None:
    """Converting an E01 that ewfacquire wrote: the log says ``ewf``, and so do the report's
    source rows; an acquired file's rows have no such line (its bytes are the media)."""
    require_tool("ewfacquire")
    media = tmp_path / "media.raw"
    media.write_bytes(bytes(range(256)) * 4096)
    subprocess.run(["ewfacquire", "-u", "-q", "-t", str(tmp_path / "third"), str(media)],
                   check=True, capture_output=True, timeout=60)
    result = run_bitwitness("convert", tmp_path / "third.E01", "-o", tmp_path / "copy",
                            "--to", "raw", "--json")
    assert result.exit_code == 0, result.output
    log = load(tmp_path / "copy.json")
    assert json.loads((tmp_path / "copy.json").read_text())["source"]["image_format"] == "ewf"
    facts = source_facts(log)
    assert facts.image_format == "ewf"
    assert ("Image format", "ewf") in text.source_rows(facts)
    result = run_bitwitness("acquire", media, "-o", tmp_path / "plain", "--format", "raw",
                            "--json")
    assert result.exit_code == 0, result.output
    plain = source_facts(load(tmp_path / "plain.json"))
    assert plain.image_format == ""
    assert "Image format" not in dict(text.source_rows(plain))


def test_a_loop_device_source_shows_its_backing_file(tmp_path: Path) -> None:
    """Acquiring a loop device: the log records the file behind it and the report's source
    rows say it (losetup's own listing is the reference)."""
    from conftest import require_root

    require_root()
    require_tool("losetup")
    backing = tmp_path / "disk.img"
    backing.write_bytes(bytes(range(256)) * 4096)
    device = subprocess.run(["losetup", "-f", "--show", str(backing)], capture_output=True,
                            text=True, check=True).stdout.strip()
    try:
        listed = subprocess.run(["losetup", "-n", "-O", "BACK-FILE", device],
                                capture_output=True, text=True, check=True).stdout.strip()
        result = run_bitwitness("acquire", device, "-o", tmp_path / "img", "--format", "raw",
                                "--json")
    finally:
        subprocess.run(["losetup", "-d", device], check=False)
    assert result.exit_code == 0, result.output
    facts = source_facts(load(tmp_path / "img.json"))
    assert facts.backing_file == listed == str(backing)
    assert ("Loop device over", str(backing)) in text.source_rows(facts)
