"""The custody log detects every kind of tampering and names the first bad line.

The chain is also recomputed here with hashlib straight from the file's bytes, so the tests do not
only trust our own verifier's idea of what it wrote.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from conftest import run_bitwitness

from bitwitness.case import Case
from bitwitness.custody import GENESIS, CustodyLog, encode_event, line_digest
from bitwitness.errors import CustodyError
from bitwitness.templates import load_template

EVENTS = 6  # case-created + 5 physical events


@pytest.fixture
def case(tmp_path: Path) -> Case:
    case = Case.create(tmp_path / "case", load_template("default", environ={}),
                       {"case_number": "C-1", "examiner": "Ann Example"})
    assert run_bitwitness("custody", "add", case.root, "--action", "seized", "--evidence", "E01",
                          "--location", "Room 4", "--note", "laptop, seal 0001").exit_code == 0
    assert run_bitwitness("custody", "add", case.root, "--action", "sealed", "--evidence",
                          "E01").exit_code == 0
    assert run_bitwitness("custody", "add", case.root, "--action", "transferred", "--evidence",
                          "E01", "--from", "Ann Example", "--to", "Bob Courier").exit_code == 0
    case.record("acquire", evidence_id="E01", details={"md5": "0" * 32})
    case.record("verify", evidence_id="E01", actor="Carol Checker")
    return case


def lines_of(case: Case) -> list[bytes]:
    return (case.root / "custody.jsonl").read_bytes().splitlines(keepends=True)


def write_lines(case: Case, lines: list[bytes]) -> None:
    (case.root / "custody.jsonl").write_bytes(b"".join(lines))


def expect_broken(case: Case, line: int | None, words: str) -> None:
    check = case.custody.verify()
    assert not check.ok
    assert check.first_bad_line == line, check.reason
    assert words in (check.reason or "")
    result = run_bitwitness("custody", "verify", case.root)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1
    if line is not None:
        assert f"line {line}:" in result.stderr
    doc = run_bitwitness("custody", "verify", case.root, "--json")
    assert doc.exit_code == 1
    assert doc.json()["first_bad_line"] == line
    assert doc.json()["ok"] is False


def test_intact_log_verifies_and_matches_an_independent_chain(case: Case) -> None:
    lines = lines_of(case)
    assert len(lines) == EVENTS
    prev = GENESIS
    for number, line in enumerate(lines, 1):
        doc = json.loads(line)
        assert doc["seq"] == number
        assert doc["prev"] == prev
        assert doc["time"].endswith("+00:00")
        prev = hashlib.sha256(line).hexdigest()
    head = json.loads((case.root / "custody.head").read_text())
    assert head["count"] == EVENTS
    assert head["last_sha256"] == prev
    check = case.custody.verify()
    assert (check.ok, check.events, check.head, check.warnings) == (True, EVENTS, prev, ())
    result = run_bitwitness("custody", "verify", case.root)
    assert result.exit_code == 0, result.stderr
    assert f"{EVENTS} events" in result.stdout
    assert prev in result.stdout
    doc = run_bitwitness("custody", "verify", case.root, "--json").json()
    assert doc["ok"] is True
    assert doc["head"] == prev
    assert doc["case_file"]["ok"] is True


def test_edit_a_field(case: Case) -> None:
    lines = lines_of(case)
    lines[3] = lines[3].replace(b"Bob Courier", b"Eve Courier")
    write_lines(case, lines)
    expect_broken(case, 4, "altered")


def test_edit_keeping_json_valid_in_the_first_line(case: Case) -> None:
    lines = lines_of(case)
    lines[0] = lines[0].replace(b'"C-1"', b'"C-2"')
    write_lines(case, lines)
    expect_broken(case, 1, "altered")


def test_edit_the_last_line(case: Case) -> None:
    lines = lines_of(case)
    lines[-1] = lines[-1].replace(b"Carol Checker", b"Carol Checkar")
    write_lines(case, lines)
    expect_broken(case, EVENTS, "anchor")


def test_edit_that_breaks_json(case: Case) -> None:
    lines = lines_of(case)
    lines[2] = lines[2].replace(b'"seq":3,', b'"seq":3')
    write_lines(case, lines)
    expect_broken(case, 3, "JSON")


def test_delete_a_line(case: Case) -> None:
    lines = lines_of(case)
    del lines[2]
    write_lines(case, lines)
    expect_broken(case, 3, "removed, inserted or reordered")


def test_delete_the_first_line(case: Case) -> None:
    write_lines(case, lines_of(case)[1:])
    expect_broken(case, 1, "removed, inserted or reordered")


def test_insert_a_copied_line(case: Case) -> None:
    lines = lines_of(case)
    lines.insert(2, lines[1])
    write_lines(case, lines)
    expect_broken(case, 3, "removed, inserted or reordered")


def test_insert_a_forged_line_with_the_right_seq_and_prev(case: Case) -> None:
    """A forger who fixes seq and prev of the inserted line still breaks the line after it."""
    lines = lines_of(case)
    forged = json.loads(lines[2])
    forged.update(seq=3, action="returned", prev=hashlib.sha256(lines[1]).hexdigest())
    from bitwitness.custody import CustodyEvent

    lines.insert(2, encode_event(CustodyEvent(**forged)))
    write_lines(case, lines)
    expect_broken(case, 4, "removed, inserted or reordered")


def test_swap_two_lines(case: Case) -> None:
    lines = lines_of(case)
    lines[2], lines[3] = lines[3], lines[2]
    write_lines(case, lines)
    expect_broken(case, 3, "removed, inserted or reordered")


def test_truncate_the_tail_by_one_whole_line(case: Case) -> None:
    """Whole lines cut from the end leave a valid chain: only the anchor shows it."""
    write_lines(case, lines_of(case)[:-1])
    expect_broken(case, EVENTS, "removed from the end")


def test_truncate_the_tail_by_three_lines(case: Case) -> None:
    write_lines(case, lines_of(case)[:-3])
    expect_broken(case, EVENTS - 2, "3 line(s) were removed")


def test_cut_mid_line(case: Case) -> None:
    data = (case.root / "custody.jsonl").read_bytes()
    (case.root / "custody.jsonl").write_bytes(data[: len(data) - 40])
    expect_broken(case, EVENTS, "cut off")


def test_cut_exactly_before_the_last_newline(case: Case) -> None:
    data = (case.root / "custody.jsonl").read_bytes()
    (case.root / "custody.jsonl").write_bytes(data[:-1])
    expect_broken(case, EVENTS, "cut off")


def test_deleted_anchor(case: Case) -> None:
    (case.root / "custody.head").unlink()
    expect_broken(case, None, "anchor custody.head is missing")


def test_truncated_log_with_a_new_forged_tail_line(case: Case) -> None:
    """Cut the last line and append a different, correctly chained one: the anchor's hash of
    line N no longer matches."""
    lines = lines_of(case)[:-1]
    forged = json.loads(lines_of(case)[-1])
    forged["actor"] = "Mallory"
    from bitwitness.custody import CustodyEvent

    lines.append(encode_event(CustodyEvent(**forged)))
    write_lines(case, lines)
    expect_broken(case, EVENTS, "anchor")


def test_append_refuses_to_cover_up_a_truncation(case: Case) -> None:
    write_lines(case, lines_of(case)[:-1])
    before = (case.root / "custody.jsonl").read_bytes()
    with pytest.raises(CustodyError, match="removed from the end"):
        case.record("report")
    result = run_bitwitness("custody", "add", case.root, "--action", "stored")
    assert result.exit_code == 1
    assert (case.root / "custody.jsonl").read_bytes() == before
    assert not case.custody.verify().ok


def test_append_refuses_after_a_cut_line(case: Case) -> None:
    data = (case.root / "custody.jsonl").read_bytes()
    (case.root / "custody.jsonl").write_bytes(data[:-10])
    with pytest.raises(CustodyError, match="cut off"):
        case.record("report")
    assert (case.root / "custody.jsonl").read_bytes() == data[:-10]


def test_an_interrupted_append_is_a_warning_and_the_next_append_anchors_it(
        case: Case, monkeypatch: pytest.MonkeyPatch) -> None:
    """A crash between the log's fsync and the anchor update leaves one chained line past the
    anchor; the anchor's pending record (written before the line) proves it is that append."""
    real = CustodyLog._write_anchor
    calls = []

    def crash_on_the_second(self: CustodyLog, anchor: object, signer: object = None) -> None:
        calls.append(anchor)
        if len(calls) == 2:
            raise KeyboardInterrupt  # the process dies after the line, before the final anchor
        real(self, anchor, signer)  # type: ignore[arg-type]

    monkeypatch.setattr(CustodyLog, "_write_anchor", crash_on_the_second)
    with pytest.raises(KeyboardInterrupt):
        case.record("report")
    monkeypatch.undo()
    assert len(lines_of(case)) == EVENTS + 1
    head = json.loads((case.root / "custody.head").read_text())
    assert head["count"] == EVENTS
    assert head["pending"] == {"seq": EVENTS + 1, "sha256": line_digest(lines_of(case)[-1])}
    check = case.custody.verify()
    assert check.ok
    assert check.warnings
    result = run_bitwitness("custody", "verify", case.root)
    assert result.exit_code == 0
    assert "interrupted" in result.stderr
    case.record("report")
    check = case.custody.verify()
    assert (check.ok, check.events, check.warnings) == (True, EVENTS + 2, ())


def test_edited_case_file_fails_custody_verify(case: Case) -> None:
    path = case.root / "case.yaml"
    path.write_text(path.read_text().replace("C-1", "C-9"))
    result = run_bitwitness("custody", "verify", case.root)
    assert result.exit_code == 1
    assert "case.yaml was changed" in result.stderr


def test_missing_log(case: Case) -> None:
    (case.root / "custody.jsonl").unlink()
    result = run_bitwitness("custody", "verify", case.root)
    assert result.exit_code == 1
    assert "missing" in result.stderr
    with pytest.raises(CustodyError):
        case.record("report")
    assert not (case.root / "custody.jsonl").exists()


def test_show_prints_the_timeline(case: Case) -> None:
    result = run_bitwitness("custody", "show", case.root)
    assert result.exit_code == 0, result.stderr
    for text in ("case-created", "seized", "transferred", "Bob Courier", "Carol Checker",
                 "Room 4"):
        assert text in result.stdout
    doc = run_bitwitness("custody", "show", case.root, "--json").json()
    assert [e["seq"] for e in doc["events"]] == list(range(1, EVENTS + 1))
    assert [json.loads(line) for line in lines_of(case)] == doc["events"]
    assert doc["check"]["ok"] is True
    only = run_bitwitness("custody", "show", case.root, "--evidence", "E01", "--json").json()
    assert [e["action"] for e in only["events"]] == [
        "seized", "sealed", "transferred", "acquire", "verify"]


def test_show_of_a_broken_log_still_prints_and_exits_1(case: Case) -> None:
    lines = lines_of(case)
    del lines[2]
    write_lines(case, lines)
    result = run_bitwitness("custody", "show", case.root, "--json")
    assert result.exit_code == 1
    doc = result.json()
    assert doc["check"]["first_bad_line"] == 3
    assert len(doc["events"]) == EVENTS - 1


def test_custody_add_records_physical_events(case: Case) -> None:
    result = run_bitwitness("custody", "add", case.root, "--action", "checked-out", "--evidence",
                            "E01", "--actor", "Dan Analyst", "--location", "Lab 2", "--json")
    assert result.exit_code == 0, result.stderr
    event = result.json()
    assert event["seq"] == EVENTS + 1
    assert event["actor"] == "Dan Analyst"
    assert event["details"]["location"] == "Lab 2"
    assert event["prev"] == line_digest(lines_of(case)[-2])
    assert lines_of(case)[-1] == encode_event(CustodyLog(case.root / "custody.jsonl").events()[-1])


@pytest.mark.parametrize("args", [
    ("--action", "acquire"), ("--action", "eaten"), ("--action", "transferred"),
    ("--action", "transferred", "--from", "A"), ("--action", "transferred", "--to", "B"),
    ("--action", "stored", "--evidence", "../x"), ("--action", "stored", "--actor", " "),
])
def test_custody_add_rejects_bad_input(case: Case, args: tuple[str, ...]) -> None:
    before = lines_of(case)
    result = run_bitwitness("custody", "add", case.root, *args)
    assert result.exit_code == 2
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert lines_of(case) == before


def test_custody_commands_on_a_folder_that_is_not_a_case(tmp_path: Path) -> None:
    for args in (("verify",), ("show",), ("add", "--action", "stored")):
        result = run_bitwitness("custody", args[0], tmp_path, *args[1:])
        assert result.exit_code == 2, args
        assert "not a BitWitness case" in result.stderr
