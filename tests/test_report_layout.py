"""The PDF report as an examiner signs it: every page rendered by pdftoppm, and no two words on a
page drawn over each other (word boxes from ``pdftotext -bbox-layout``, an independent reader).

The case is built by the real commands, with a description, notes and a physical event recorded
with ``--at``; then a report with a very long title (the footer must shorten it rather than draw it
over "Page X of Y").
"""

from __future__ import annotations

import itertools
import json
import re
import subprocess
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from conftest import require_tool, run_bitwitness

Box = tuple[float, float, float, float, str]
LONG_TITLE = ("Forensic acquisition and chain-of-custody report prepared for the court in the "
              "matter of the seized devices of the harbour warehouse investigation")


@pytest.fixture(scope="module")
def report_case(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    require_tool("mkfs.vfat", "mcopy")
    tmp = tmp_path_factory.mktemp("layout")
    source = tmp / "stick.img"
    subprocess.run(["dd", "if=/dev/zero", f"of={source}", "bs=512", "count=4096"],
                   capture_output=True, check=True)
    subprocess.run(["mkfs.vfat", "-n", "EVIDENCE", str(source)], capture_output=True, check=True)
    note = tmp / "note.txt"
    note.write_text("meet at the harbour\n")
    subprocess.run(["mcopy", "-i", str(source), str(note), "::/note.txt"], check=True)
    # a long folder name makes the verification heading wrap before the image path
    root = tmp / "evidence-store-for-the-harbour-warehouse-investigation-2025" / "case"
    assert run_bitwitness("case", "new", root, "--set", "case_number=R-6",
                          "--set", "examiner=Ann Example").exit_code == 0
    assert run_bitwitness("custody", "add", root, "--action", "seized", "--evidence", "E1",
                          "--at", "2025-03-01T14:05:00+01:00", "--location",
                          "desk drawer, harbour office").exit_code == 0
    result = run_bitwitness("acquire", source, "--case", root, "--evidence", "E1",
                            "--description", "USB stick, blue, 2 MiB",
                            "--notes", "exhibit bag 0042, seal intact",
                            "--write-blocker", "Tableau T8u, serial 000ECC")
    assert result.exit_code == 0, result.stderr
    log = root / "evidence/E1/E1.json"
    assert json.loads(log.read_text())["metadata"]["write_blocker"] == "Tableau T8u, serial 000ECC"
    assert "Write-blocker:" in log.with_suffix(".txt").read_text()
    assert run_bitwitness("verify", "--case", root).exit_code == 0
    assert run_bitwitness("export", root / "evidence/E1/E1.E01", "/note.txt", "--to",
                          tmp / "out", "--case", root).exit_code == 0
    return {"root": root, "tmp": tmp}


def words(pdf: Path) -> dict[int, list[Box]]:
    """Every word's box per page, from poppler's pdftotext (points, origin top left)."""
    out = subprocess.run(["pdftotext", "-bbox-layout", str(pdf), "-"], capture_output=True,
                         check=True).stdout
    tree = ET.fromstring(re.sub(rb'xmlns="[^"]+"', b"", out, count=1))  # noqa: S314 - ours
    pages = {}
    for number, page in enumerate(tree.iter("page"), 1):
        pages[number] = [(float(w.get("xMin", 0)), float(w.get("yMin", 0)),
                          float(w.get("xMax", 0)), float(w.get("yMax", 0)), w.text or "")
                         for w in page.iter("word")]
    return pages


def overlaps(boxes: list[Box], slack: float = 0.4) -> list[tuple[str, str]]:
    """Pairs of words whose boxes intersect by more than ``slack`` points both ways."""
    found = []
    ordered = sorted(boxes, key=lambda b: b[1])
    for i, a in enumerate(ordered):
        for b in ordered[i + 1:]:
            if b[1] >= a[3] - slack:
                break
            if min(a[2], b[2]) - max(a[0], b[0]) > slack and \
                    min(a[3], b[3]) - max(a[1], b[1]) > slack:
                found.append((a[4], b[4]))
    return found


def check_pages(pdf: Path, tmp: Path) -> dict[int, list[Box]]:
    require_tool("pdftoppm", "pdftotext", "pdfinfo")
    from PIL import Image

    pages = words(pdf)
    prefix = tmp / pdf.stem
    subprocess.run(["pdftoppm", "-r", "60", "-png", str(pdf), str(prefix)], check=True)
    images = sorted(tmp.glob(f"{pdf.stem}-*.png"))
    assert len(images) == len(pages) >= 3
    for image in images:
        lo, hi = Image.open(image).convert("L").getextrema()
        assert lo < 128 <= hi, f"{image.name} is blank"
    for number, boxes in pages.items():
        assert boxes, f"page {number} has no text"
        assert overlaps(boxes) == [], f"page {number}: words drawn over each other"
    return pages


def test_every_page_renders_and_no_text_overlaps(report_case: dict[str, Any],
                                                 tmp_path: Path) -> None:
    out = tmp_path / "report.pdf"
    result = run_bitwitness("report", report_case["root"], "-o", out)
    assert result.exit_code == 0, result.stderr
    pages = check_pages(out, tmp_path)
    text = " ".join(w[4] for boxes in pages.values() for w in boxes)
    for shown in ("USB stick, blue, 2 MiB", "exhibit bag 0042, seal intact", "Write-blocker",
                  "Tableau T8u, serial 000ECC",
                  "Kernel read-only flag", "not mounted", "happened at: 2025-03-01 13:05:00 UTC",
                  "format: e01", "overwrite: no"):
        assert shown in text, shown
    assert "=False" not in text
    assert "overwrite=" not in text
    # every time printed in the custody table carries its zone
    stamps = re.findall(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?: UTC)?", text)
    assert stamps
    assert all(s.endswith("UTC") for s in stamps), [s for s in stamps if not s.endswith("UTC")]


def test_a_long_title_is_shortened_in_the_footer_not_drawn_over_the_page_number(
        report_case: dict[str, Any], tmp_path: Path) -> None:
    from bitwitness.report.gather import gather
    from bitwitness.report.pdf import render_pdf

    data = gather(report_case["root"])
    data = replace(data, settings=replace(data.settings, title=LONG_TITLE))
    out = tmp_path / "long.pdf"
    out.write_bytes(render_pdf(data))
    pages = check_pages(out, tmp_path)
    for number, boxes in pages.items():
        footer = [b for b in boxes if b[1] > 780]
        page_words = [b for b in footer if b[4] == "Page"]
        assert len(page_words) == 1, number
        title_words = [b for b in footer if b[2] <= page_words[0][0]]
        assert title_words, number
        assert any(b[4].endswith("...") for b in title_words), number


def test_verification_headings_are_not_justified(report_case: dict[str, Any],
                                                 tmp_path: Path) -> None:
    """The verification heading wraps before the long image path; its first line keeps normal
    word spacing (justified text would spread "... UTC: VERIFIED of" across the page)."""
    out = tmp_path / "report.pdf"
    assert run_bitwitness("report", report_case["root"], "-o", out).exit_code == 0
    rows = 0
    for boxes in words(out).values():
        for verdict in (b for b in boxes if b[4] == "VERIFIED"):
            row = sorted((b for b in boxes if abs(b[1] - verdict[1]) < 1), key=lambda b: b[0])
            if not any(b[4] == "of" for b in row):
                continue
            rows += 1
            gaps = [b[0] - a[2] for a, b in itertools.pairwise(row)]
            assert max(gaps) < 8, f"gaps of {max(gaps):.1f} pt in {[b[4] for b in row]}"
    assert rows >= 1


def test_custody_details_read_as_words_in_the_pdf(report_case: dict[str, Any],
                                                  tmp_path: Path) -> None:
    """The timeline's details are worded as ``custody show`` words them: no snake_case keys, no
    empty values, flags as yes/no (the JSON report keeps the recorded keys)."""
    require_tool("pdftotext")
    out = tmp_path / "report.pdf"
    assert run_bitwitness("report", report_case["root"], "-o", out).exit_code == 0
    text = subprocess.run(["pdftotext", "-layout", str(out), "-"], capture_output=True,
                          text=True, check=True).stdout
    assert "case file sha256: " in text
    assert "log sha256: " in text
    for raw in ("case_file_sha256", "log_sha256", "tool_version", "read_errors"):
        assert raw not in text, raw
    assert "fields.examiner: Ann Example" in text
    assert not re.search(r"^\s*fields\.\w+:\s*$", text, re.M)  # the case's empty fields
    assert not re.search(r":\s+(True|False)\b", text)


def test_a_label_stands_beside_the_first_line_of_its_value(report_case: dict[str, Any],
                                                           tmp_path: Path) -> None:
    """A many-line value (the options) has its label on its first line, not half way down."""
    require_tool("pdftotext")
    out = tmp_path / "report.pdf"
    assert run_bitwitness("report", report_case["root"], "-o", out).exit_code == 0
    for boxes in words(out).values():
        labels = [b for b in boxes if b[4] == "Options"]
        first = [b for b in boxes if b[4] == "format:"]
        if labels and first:
            assert abs(labels[0][1] - first[0][1]) < 1.0, (labels[0], first[0])
            return
    pytest.fail("no page shows the Options label with its first option")


def test_the_read_only_flag_reads_as_one_phrase(report_case: dict[str, Any],
                                                tmp_path: Path) -> None:
    """A file source has no kernel flag to set (it is opened read-only); a device's flag is said
    once, without the log's detail repeating it."""
    require_tool("pdftotext")
    from bitwitness.report.model import SourceFacts

    out = tmp_path / "report.pdf"
    assert run_bitwitness("report", report_case["root"], "-o", out).exit_code == 0
    text = subprocess.run(["pdftotext", "-layout", str(out), "-"], capture_output=True,
                          text=True, check=True).stdout
    assert re.search(r"Kernel read-only flag\s+not applicable \(a file, opened read-only\)", text)
    device = SourceFacts(path="/dev/sdz", kind="device", readonly_set=True, readonly_was=False,
                         readonly_restored=True, readonly_detail="set for the acquisition")
    assert device.readonly_state == "set for the acquisition, restored afterwards"
    refused = replace(device, readonly_set=False, readonly_detail="BLKROSET: not permitted")
    assert refused.readonly_state == "not set (BLKROSET: not permitted)"
