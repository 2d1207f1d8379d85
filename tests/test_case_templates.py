"""Case templates: the built-in set, lab folders (--templates and $BITWITNESS_TEMPLATES), checks."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import run_bitwitness

from bitwitness.errors import CaseFieldError, InputError, TemplateError
from bitwitness.templates import (
    ENV_VAR,
    REPORT_SECTIONS,
    available_templates,
    load_template,
    parse_template_text,
)

LAB_DEFAULT = """\
name: default
description: Lab override of the default template
fields:
  - name: lab_ref
    label: Lab reference
    required: true
    pattern: 'LAB-[0-9]{4}'
  - name: examiner
    label: Examiner
    required: true
report:
  title: 'Lab {lab_ref}'
  sections: [case, custody]
"""

LAB_EXTRA = """\
description: A template only the lab has
fields:
  - {name: examiner, label: Examiner, required: true}
  - {name: ticket, label: Ticket, required: false}
"""


@pytest.fixture(autouse=True)
def _no_env_templates(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's own $BITWITNESS_TEMPLATES must not change what these tests see."""
    monkeypatch.delenv(ENV_VAR, raising=False)


@pytest.fixture
def lab(tmp_path: Path) -> Path:
    folder = tmp_path / "lab"
    folder.mkdir()
    (folder / "default.yaml").write_text(LAB_DEFAULT)
    (folder / "forensic-lab.yaml").write_text(LAB_EXTRA)
    return folder


def test_builtin_templates_have_the_fields_the_issue_asks_for() -> None:
    found = available_templates(environ={})
    assert {"default", "law-enforcement", "corporate-incident"} <= set(found)
    for template in found.values():
        assert template.source == "built-in"
        assert template.field_named("examiner") is not None
        assert template.field_named("examiner").required  # type: ignore[union-attr]
        assert set(template.report.sections) <= set(REPORT_SECTIONS)
        assert template.report.title
    le = set(found["law-enforcement"].field_names)
    assert {"agency", "case_number", "examiner", "examiner_id", "legal_authority"} <= le
    corp = set(found["corporate-incident"].field_names)
    assert {"matter_id", "requester", "legal_hold_reference"} <= corp


def test_builtin_templates_are_package_data(tmp_path: Path) -> None:
    """The YAML files are reachable through importlib.resources, as an installed package."""
    from importlib import resources

    names = {e.name for e in resources.files("bitwitness.case_templates").iterdir()}
    assert {"default.yaml", "law-enforcement.yaml", "corporate-incident.yaml"} <= names


def test_cli_lists_templates_with_fields() -> None:
    result = run_bitwitness("case", "templates")
    assert result.exit_code == 0, result.stderr
    for text in ("default", "law-enforcement", "corporate-incident", "examiner_id",
                 "legal_hold_reference", "Legal authority"):
        assert text in result.stdout
    doc = run_bitwitness("case", "templates", "--json").json()
    by_name = {t["name"]: t for t in doc["templates"]}
    fields = {f["name"]: f for f in by_name["law-enforcement"]["fields"]}
    assert fields["legal_authority"]["required"] is True
    assert fields["offence"]["required"] is False
    assert "pattern" in fields["case_number"]
    assert by_name["default"]["report"]["sections"]


def test_lab_folder_option_overrides_and_adds(lab: Path) -> None:
    doc = run_bitwitness("case", "templates", "--templates", lab, "--json").json()
    by_name = {t["name"]: t for t in doc["templates"]}
    assert by_name["default"]["source"] == str(lab / "default.yaml")
    assert [f["name"] for f in by_name["default"]["fields"]] == ["lab_ref", "examiner"]
    assert "forensic-lab" in by_name
    assert by_name["law-enforcement"]["source"] == "built-in"


def test_lab_folder_from_environment(lab: Path, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "default.yaml").write_text(LAB_DEFAULT.replace("Lab override", "Second folder"))
    monkeypatch.setenv(ENV_VAR, os.pathsep.join([str(lab), str(other)]))
    # the first folder of the variable wins
    assert load_template("default").description == "Lab override of the default template"
    result = run_bitwitness("case", "templates", "forensic-lab", "--json")
    assert result.exit_code == 0, result.stderr
    assert [t["name"] for t in result.json()["templates"]] == ["forensic-lab"]
    # --templates wins over the environment
    assert load_template("default", [other]).description.startswith("Second folder")


def test_case_new_uses_lab_template(lab: Path, tmp_path: Path) -> None:
    case_dir = tmp_path / "case"
    bad = run_bitwitness("case", "new", case_dir, "--templates", lab, "--set", "examiner=Ann",
                         "--set", "lab_ref=12")
    assert bad.exit_code == 2
    assert "lab_ref" in bad.stderr
    ok = run_bitwitness("case", "new", case_dir, "--templates", lab, "--set", "examiner=Ann",
                        "--set", "lab_ref=LAB-0042")
    assert ok.exit_code == 0, ok.stderr
    shown = run_bitwitness("case", "show", case_dir, "--json").json()
    assert shown["fields"] == {"lab_ref": "LAB-0042", "examiner": "Ann"}
    assert shown["report"]["title"] == "Lab LAB-0042"
    assert shown["template"]["source"] == str(lab / "default.yaml")


def test_case_keeps_its_template_copy(lab: Path, tmp_path: Path) -> None:
    """Editing or deleting the lab template later does not change an existing case."""
    from bitwitness.case import Case

    case = Case.create(tmp_path / "c", load_template("forensic-lab", [lab]),
                       {"examiner": "Ann", "ticket": "T1"})
    (lab / "forensic-lab.yaml").unlink()
    again = Case.load(case.root)
    assert again.template.field_names == ("examiner", "ticket")
    assert again.template.source == str(lab / "forensic-lab.yaml")


def test_missing_lab_folder_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="nowhere"):
        available_templates([tmp_path / "nowhere"], environ={})
    result = run_bitwitness("case", "templates", "--templates", tmp_path / "nowhere")
    assert result.exit_code == 2
    assert "nowhere" in result.stderr


def test_template_name_cannot_leave_the_lab_folder(tmp_path: Path) -> None:
    (tmp_path / "outside.yaml").write_text(LAB_EXTRA)
    lab = tmp_path / "lab"
    lab.mkdir()
    with pytest.raises(TemplateError, match="bad template name"):
        load_template("../outside", [lab], environ={})


def test_unknown_template_lists_known_ones(tmp_path: Path) -> None:
    result = run_bitwitness("case", "new", tmp_path / "c", "--template", "nope")
    assert result.exit_code == 2
    assert "nope" in result.stderr
    assert "law-enforcement" in result.stderr
    assert not (tmp_path / "c").exists()


@pytest.mark.parametrize(("text", "message"), [
    ("fields: [{name: case_number, label: C}]", "examiner"),
    ("fields: [{name: examiner, pattern: '[unclosed'}]", "bad pattern"),
    ("fields: [{name: examiner, colour: red}]", "unknown keys"),
    ("fields: [{name: Examiner}]", "lower-case"),
    ("fields: [{name: examiner}, {name: examiner}]", "duplicate"),
    ("fields: [{name: examiner}]\nreport: {sections: [case, costs]}", "costs"),
    ("fields: [{name: examiner}]\nreport: {title: 'Case {case_no}'}", "case_no"),
    ("fields: [{name: examiner, required: maybe}]", "required"),
    ("name: other\nfields: [{name: examiner}]", "file is named"),
    ("fields: [{name: examiner}\n", "YAML"),
])
def test_invalid_templates_are_refused_naming_the_file(tmp_path: Path, text: str,
                                                       message: str) -> None:
    (tmp_path / "broken.yaml").write_text(text)
    with pytest.raises(TemplateError, match=message):
        load_template("broken", [tmp_path], environ={})
    result = run_bitwitness("case", "templates", "--templates", tmp_path)
    assert result.exit_code == 2
    assert str(tmp_path / "broken.yaml") in result.stderr
    assert "Traceback" not in result.stderr


def test_pattern_is_a_full_match() -> None:
    template = parse_template_text(
        "fields: [{name: examiner, required: true}, {name: ref, pattern: '[0-9]{3}'}]",
        source="test", name="t")
    template.check_values({"ref": "123"})
    for value in ("1234", "x123", "12"):
        with pytest.raises(CaseFieldError, match="ref") as info:
            template.check_values({"ref": value})
        assert info.value.fields == ("ref",)


def test_report_placeholders_are_filled() -> None:
    template = load_template("law-enforcement", environ={})
    rendered = template.report.render({"agency": "County Police", "case_number": "CR-7",
                                       "examiner": "Ann", "examiner_id": "B12",
                                       "legal_authority": "warrant W-1"})
    assert rendered.title.endswith("County Police case CR-7")
    assert "Ann (B12) under warrant W-1" in rendered.disclaimer
    assert "{" not in rendered.agency_header
