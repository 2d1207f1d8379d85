"""Report rendering details: lab templates, fonts, damaged logs and unreadable acquisition logs."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import CliResult
from test_report_cli import CASE_NUMBER, make_case, pdf_text

LAB_TEMPLATE = """\
name: lab
description: A lab's own template
fields:
  - {name: case_number, label: Dossier, required: true}
  - {name: examiner, label: Examinateur, required: true}
report:
  title: 'Rapport de la chaîne de possession {case_number}'
  agency_header: "Gendarmerie — Cellule numérique\\nSection Île-de-France"
  disclaimer: 'Document à usage judiciaire.'
  sections: [summary, case, hashes, signature]
"""


def test_lab_template_sets_wording_and_sections(bw: object, tmp_path: Path) -> None:
    from bitwitness.case import Case
    from bitwitness.templates import load_template

    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "lab.yaml").write_text(LAB_TEMPLATE, encoding="utf-8")
    root = tmp_path / "case"
    Case.create(root, load_template("lab", [folder]), {"case_number": "D-9",
                                                        "examiner": "Zoë Ångström"})
    out = tmp_path / "r.pdf"
    result: CliResult = bw("report", root, "-o", out)  # type: ignore[operator]
    assert result.exit_code == 0, result.stderr
    first = pdf_text(out, first_page_only=True)
    assert "Rapport de la chaîne de possession D-9" in first
    assert "Gendarmerie — Cellule numérique" in first
    assert "Section Île-de-France" in first
    assert "INTACT" in first  # the integrity statement is always on the first page
    text = pdf_text(out)
    assert "Dossier" in text
    assert "Signatures" in text
    assert "Chain of custody" not in text
    assert "Disclaimer" not in text


def test_truncated_log_refuses_the_report_event_and_says_so(bw: object, tmp_path: Path) -> None:
    case = make_case(tmp_path / "case")
    log = case["root"] / "custody.jsonl"
    lines = log.read_text(encoding="utf-8").splitlines(keepends=True)
    log.write_text("".join(lines[:-2]), encoding="utf-8")  # two lines cut from the end
    result: CliResult = bw("report", case["root"], "--format", "json",  # type: ignore[operator]
                           "-o", tmp_path / "r.json")
    assert result.exit_code == 1
    assert "TAMPERED" in result.stderr
    assert "NOT recorded" in result.stderr
    doc = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert doc["integrity"]["state"] == "tampered"
    assert log.read_text(encoding="utf-8") == "".join(lines[:-2])  # nothing appended


def test_unreadable_acquisition_log_is_a_stated_problem(bw: object, tmp_path: Path) -> None:
    from bitwitness.report.gather import evidence_item

    bad = tmp_path / "E1.json"
    bad.write_text("{not json", encoding="utf-8")
    item = evidence_item("E1", tmp_path, bad)
    assert item.acquisition is None
    assert item.problems
    assert "cannot be read" in item.problems[0]


def test_missing_fonts_fail_clearly(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from bitwitness.errors import InputError
    from bitwitness.report import fonts

    monkeypatch.setattr(fonts, "_search_dirs", lambda: [tmp_path])
    with pytest.raises(InputError, match="fonts-dejavu-core"):
        fonts.find_fonts()


def test_cjk_without_cjk_font_is_refused_not_boxed(tmp_path: Path) -> None:
    from bitwitness.errors import InputError
    from bitwitness.report.fonts import find_fonts
    from bitwitness.report.gather import gather
    from bitwitness.report.pdf import render_pdf

    case = make_case(tmp_path / "case")
    data = gather(case["root"])
    fonts = find_fonts()
    if fonts.cjk is None:
        pytest.skip("no CJK font installed (fonts-droid-fallback)")
    assert render_pdf(data, fonts).startswith(b"%PDF-")
    with pytest.raises(InputError, match="fonts-droid-fallback"):
        render_pdf(data, replace(fonts, cjk=None))


def test_missing_custody_log_is_stated(tmp_path: Path) -> None:
    from bitwitness.report.gather import gather
    from bitwitness.report.html import render_html

    case = make_case(tmp_path / "case")
    (case["root"] / "custody.jsonl").unlink()
    data = gather(case["root"])
    assert not data.integrity.ok
    assert data.custody == ()
    body = render_html(data).decode()
    assert body.index("MISSING") < body.index("<section")
    assert CASE_NUMBER in body
