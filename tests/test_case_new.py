"""Creating, loading and showing cases; field errors off a terminal; prompting on one."""

from __future__ import annotations

import hashlib
import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import REPO, run_bitwitness

from bitwitness import __version__
from bitwitness.case import Case
from bitwitness.errors import CaseError, UsageError
from bitwitness.templates import ENV_VAR, load_template

LE_ARGS = ("--template", "law-enforcement", "--set", "agency=County Police",
           "--set", "case_number=CR-2025/017", "--set", "examiner=Ann Example",
           "--set", "examiner_id=B-1234", "--set", "legal_authority=Warrant W-99")


@pytest.fixture(autouse=True)
def _no_env_templates(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)


def test_case_new_creates_the_layout(tmp_path: Path) -> None:
    case_dir = tmp_path / "cases" / "CR-17"
    result = run_bitwitness("case", "new", case_dir, *LE_ARGS)
    assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in case_dir.iterdir()) == [
        "case.yaml", "custody.head", "custody.jsonl", "evidence", "exports", "reports"]
    assert not [p for p in case_dir.parent.iterdir() if p.name.startswith(".")]  # no staging left
    doc = yaml.safe_load((case_dir / "case.yaml").read_text())
    assert doc["schema"] == "bitwitness.case/1"
    assert doc["tool"] == {"name": "BitWitness", "version": __version__}
    assert doc["template"]["name"] == "law-enforcement"
    assert doc["template"]["report"]["title"]
    assert doc["fields"]["legal_authority"] == "Warrant W-99"
    assert doc["fields"]["offence"] == ""
    created = doc["created"]
    assert created.endswith("+00:00")

    lines = (case_dir / "custody.jsonl").read_bytes().splitlines(keepends=True)
    assert len(lines) == 1
    first = json.loads(lines[0])
    assert first["seq"] == 1
    assert first["action"] == "case-created"
    assert first["actor"] == "Ann Example"
    assert first["prev"] == "0" * 64
    assert first["details"]["tool_version"] == __version__
    assert first["details"]["host"] == os.uname().nodename
    # the case-created event pins case.yaml; checked here with hashlib, independently
    expected = hashlib.sha256((case_dir / "case.yaml").read_bytes()).hexdigest()
    assert first["details"]["case_file_sha256"] == expected


def test_missing_fields_off_a_terminal_name_every_one(tmp_path: Path) -> None:
    result = run_bitwitness("case", "new", tmp_path / "c", "--template", "law-enforcement",
                            "--set", "agency=X", input="")
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for name in ("case_number", "examiner", "examiner_id", "legal_authority"):
        assert name in lines[0]
    assert "agency" not in lines[0].split(":", 2)[-1]
    assert "offence" not in lines[0]
    assert not (tmp_path / "c").exists()


def test_blank_required_value_counts_as_missing(tmp_path: Path) -> None:
    result = run_bitwitness("case", "new", tmp_path / "c", "--set", "case_number=C1",
                            "--set", "examiner=  ")
    assert result.exit_code == 2
    assert "examiner" in result.stderr


@pytest.mark.parametrize(("field", "value"), [
    ("case_number", "CR 17"), ("case_number", "CR-17!"), ("examiner_id", "B_12"),
])
def test_bad_pattern_names_the_field(tmp_path: Path, field: str, value: str) -> None:
    args = [a if not a.startswith(f"{field}=") else f"{field}={value}" for a in LE_ARGS]
    result = run_bitwitness("case", "new", tmp_path / "c", *args)
    assert result.exit_code == 2
    assert f"field {field}" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "c").exists()


def test_unknown_and_malformed_sets_are_errors(tmp_path: Path) -> None:
    unknown = run_bitwitness("case", "new", tmp_path / "c", *LE_ARGS, "--set", "colour=red")
    assert unknown.exit_code == 2
    assert "colour" in unknown.stderr
    malformed = run_bitwitness("case", "new", tmp_path / "c", *LE_ARGS, "--set", "offence")
    assert malformed.exit_code == 2
    assert "NAME=VALUE" in malformed.stderr
    assert not (tmp_path / "c").exists()


def test_existing_non_empty_folder_is_refused_and_untouched(tmp_path: Path) -> None:
    case_dir = tmp_path / "c"
    case_dir.mkdir()
    (case_dir / "notes.txt").write_text("keep me")
    result = run_bitwitness("case", "new", case_dir, *LE_ARGS)
    assert result.exit_code == 2
    assert "not empty" in result.stderr
    assert [p.name for p in case_dir.iterdir()] == ["notes.txt"]
    assert (case_dir / "notes.txt").read_text() == "keep me"
    # a second case new over an existing case is refused too, and leaves the log alone
    other = tmp_path / "d"
    assert run_bitwitness("case", "new", other, *LE_ARGS).exit_code == 0
    before = (other / "custody.jsonl").read_bytes()
    assert run_bitwitness("case", "new", other, *LE_ARGS).exit_code == 2
    assert (other / "custody.jsonl").read_bytes() == before
    # and a file in the way is refused
    (tmp_path / "f").write_text("x")
    assert run_bitwitness("case", "new", tmp_path / "f", *LE_ARGS).exit_code == 2


def test_existing_empty_folder_is_used(tmp_path: Path) -> None:
    case_dir = tmp_path / "empty"
    case_dir.mkdir()
    assert run_bitwitness("case", "new", case_dir, *LE_ARGS).exit_code == 0
    assert (case_dir / "case.yaml").is_file()


def test_case_show_json(tmp_path: Path) -> None:
    case_dir = tmp_path / "c"
    assert run_bitwitness("case", "new", case_dir, *LE_ARGS).exit_code == 0
    case = Case.load(case_dir)
    folder = case.evidence_dir("E01")
    log = {"schema": "bitwitness.acquisition/1", "operation": "acquire", "status": "completed"}
    (folder / "disk.json").write_text(json.dumps(log))
    (folder / "other.json").write_text("{}")
    case.evidence_dir("E02")
    result = run_bitwitness("case", "show", case_dir, "--json")
    assert result.exit_code == 0, result.stderr
    doc = result.json()
    assert doc["case_dir"] == str(case_dir)
    assert doc["template"] == {"name": "law-enforcement", "source": "built-in"}
    assert doc["fields"]["agency"] == "County Police"
    assert doc["examiner"] == "Ann Example"
    assert doc["labels"]["examiner_id"] == "Examiner ID"
    assert doc["report"]["title"] == ("Digital evidence examination report - County Police case "
                                      "CR-2025/017")
    assert doc["evidence"] == [
        {"id": "E01", "folder": str(folder), "acquisition_log": str(folder / "disk.json")},
        {"id": "E02", "folder": str(case_dir / "evidence" / "E02"), "acquisition_log": None}]
    assert doc["custody"]["ok"] is True
    assert doc["custody"]["events"] == 1
    line = (case_dir / "custody.jsonl").read_bytes()
    assert doc["custody"]["head"] == hashlib.sha256(line).hexdigest()
    assert doc["case_file"]["ok"] is True
    human = run_bitwitness("case", "show", case_dir)
    assert human.exit_code == 0
    assert "County Police" in human.stdout
    assert "E01" in human.stdout


def test_case_show_flags_an_edited_case_file(tmp_path: Path) -> None:
    case_dir = tmp_path / "c"
    assert run_bitwitness("case", "new", case_dir, *LE_ARGS).exit_code == 0
    text = (case_dir / "case.yaml").read_text()
    (case_dir / "case.yaml").write_text(text.replace("Warrant W-99", "Warrant W-98"))
    result = run_bitwitness("case", "show", case_dir, "--json")
    assert result.exit_code == 1
    assert result.json()["case_file"]["ok"] is False
    assert "case.yaml was changed" in result.stderr


def test_not_a_case_folder(tmp_path: Path) -> None:
    with pytest.raises(CaseError, match="not a BitWitness case"):
        Case.load(tmp_path)
    result = run_bitwitness("case", "show", tmp_path)
    assert result.exit_code == 2
    assert "not a BitWitness case" in result.stderr
    (tmp_path / "case.yaml").write_text("schema: something-else/1\n")
    assert run_bitwitness("case", "show", tmp_path).exit_code == 2


def test_record_defaults_to_examiner_and_checks_ids(tmp_path: Path) -> None:
    case = Case.create(tmp_path / "c", load_template("default", environ={}),
                       {"case_number": "C-1", "examiner": "Ann"})
    event = case.record("acquire", evidence_id="E01", details={"path": tmp_path / "x.E01"})
    assert (event.seq, event.actor, event.action) == (2, "Ann", "acquire")
    assert event.details["path"] == str(tmp_path / "x.E01")
    assert event.details["tool_version"] == __version__
    assert case.record("verify", actor="Bob").actor == "Bob"
    for bad in ("../x", "a/b", "", ".hidden", "x" * 65):
        with pytest.raises(UsageError):
            case.record("acquire", evidence_id=bad)
        with pytest.raises(UsageError):
            case.evidence_dir(bad)
    with pytest.raises(UsageError, match="unknown custody action"):
        case.record("aquire")
    assert len(case.custody.events()) == 3
    assert case.custody.verify().ok


def test_load_accepts_the_case_file_path(tmp_path: Path) -> None:
    case = Case.create(tmp_path / "c", load_template("default", environ={}),
                       {"case_number": "C-1", "examiner": "Ann"})
    assert Case.load(case.root / "case.yaml").root == case.root
    assert Case.load(case.root).fields["case_number"] == "C-1"


def test_missing_fields_are_prompted_on_a_terminal(tmp_path: Path) -> None:
    """On a real terminal (a pty) the missing required fields are asked for; a value that fails
    its pattern is asked for again."""
    case_dir = tmp_path / "c"
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bitwitness", "case", "new", case_dir, "--set", "examiner=Ann"],
        stdin=slave, stdout=subprocess.PIPE, stderr=slave, cwd=REPO)
    os.close(slave)
    screen = b""
    deadline = time.monotonic() + 60
    answers = [(b"Case number", b"bad id!\n"), (b"does not match", b"C-42\n")]
    for prompt, answer in answers:
        while prompt not in screen and time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1)
            if ready:
                screen += os.read(master, 4096)
        assert prompt in screen, screen
        os.write(master, answer)
        screen = b""
    out, _ = proc.communicate(timeout=60)
    os.close(master)
    assert proc.returncode == 0, out
    assert Case.load(case_dir).fields["case_number"] == "C-42"


def test_case_new_json_and_env_templates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lab = tmp_path / "lab"
    lab.mkdir()
    (lab / "triage.yaml").write_text(
        "description: Quick triage\nfields:\n"
        "  - {name: examiner, label: Examiner, required: true}\n"
        "  - {name: ticket, label: Ticket, required: true, pattern: 'T-[0-9]+'}\n")
    monkeypatch.setenv(ENV_VAR, str(lab))
    result = run_bitwitness("case", "new", tmp_path / "c", "--template", "triage", "--json",
                            "--set", "examiner=Ann", "--set", "ticket=T-7")
    assert result.exit_code == 0, result.stderr
    doc = result.json()
    assert doc["template"] == {"name": "triage", "source": str(lab / "triage.yaml")}
    assert doc["fields"] == {"examiner": "Ann", "ticket": "T-7"}
    assert doc["custody"]["events"] == 1
    assert doc["custody"]["ok"] is True


def test_case_show_without_a_custody_log(tmp_path: Path) -> None:
    case = Case.create(tmp_path / "c", load_template("default", environ={}),
                       {"case_number": "C-1", "examiner": "Ann"})
    (case.root / "custody.jsonl").unlink()
    result = run_bitwitness("case", "show", case.root, "--json")
    assert result.exit_code == 1
    doc = result.json()
    assert doc["fields"]["case_number"] == "C-1"
    assert doc["custody"]["ok"] is False
    assert "missing" in doc["custody"]["reason"]


def test_case_show_prints_fields_as_text_not_markup(tmp_path: Path) -> None:
    """Case fields are the examiner's text: a ``[/]`` in one crashed ``case show`` (rich's
    MarkupError, exit 3) and ``[bold]`` was taken as markup and dropped."""
    case_dir = tmp_path / "c"
    made = run_bitwitness("case", "new", case_dir, "--set", "case_number=CR-17",
                          "--set", "organisation=Unit [/] 9",
                          "--set", "examiner=Ann [bold]Bold[/bold] [red]Red")
    assert made.exit_code == 0, made.stderr
    shown = run_bitwitness("case", "show", case_dir)
    assert shown.exit_code == 0, shown.stderr
    assert "Unit [/] 9" in shown.stdout
    assert "Ann [bold]Bold[/bold] [red]Red" in shown.stdout
