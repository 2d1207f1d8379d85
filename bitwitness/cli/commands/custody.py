"""``bitwitness custody``: verify the custody log, show its timeline, record physical custody.

Thin adapters over :mod:`bitwitness.custody` and :mod:`bitwitness.case`. A broken log is an
evidence problem: exit 1 naming the first bad line (after printing the JSON document with
``--json``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from bitwitness.cli.output import escape, json_option, print_json, stdout, warn
from bitwitness.errors import CaseError, CustodyError, UsageError

_HIDDEN_DETAILS = frozenset({"tool_version", "host", "fields", "occurred_at"})


@click.group("custody")
def command() -> None:
    """Verify, show and add to a case's custody log.

    The log is hash-chained JSON Lines; any edit, deletion, insertion, reordering or truncation
    makes 'custody verify' exit 1 naming the first bad line.
    """


def _log_for(case_dir: Path) -> Any:
    """The case's log; works when case.yaml is damaged (the log is checked on its own)."""
    from bitwitness.casefolder import CASE_FILE, CUSTODY_FILE
    from bitwitness.custody import CustodyLog

    root = case_dir.absolute()
    if not (root / CASE_FILE).is_file() and not (root / CUSTODY_FILE).is_file():
        raise CaseError(f"{root} is not a BitWitness case folder (no {CASE_FILE})")
    return CustodyLog(root / CUSTODY_FILE)


def _check_document(case_dir: Path) -> dict[str, Any]:
    from bitwitness.case import check_case_file

    log = _log_for(case_dir)
    check = log.verify()
    events = log.events(strict=False)
    file_check = check_case_file(case_dir.absolute())
    from bitwitness import timestamping

    try:
        lines = log.path.read_bytes().splitlines(keepends=True)
    except OSError:
        lines = []
    anchors = timestamping.check_anchors(case_dir.absolute(), lines)
    return {
        "case_dir": case_dir.absolute(),
        "ok": check.ok and file_check.ok is not False and not anchors.problems,
        "events": check.events,
        "first_bad_line": check.first_bad_line,
        "reason": check.reason,
        "head": check.head,
        "warnings": list(check.warnings),
        "signed": check.signed,
        "signer": check.signer,
        "acknowledged": [{"line": a.line, "reason": a.reason, "event": a.event_seq,
                          "actor": a.actor, "note": a.note} for a in check.acknowledged],
        "first_time": events[0].time if events else None,
        "last_time": events[-1].time if events else None,
        "case_file": {"ok": file_check.ok, "expected_sha256": file_check.expected,
                      "sha256": file_check.actual},
        "timestamps": {"tokens": len(anchors.checks), "latest": anchors.latest,
                       "problems": list(anchors.problems)},
    }


def _raise_if_broken(doc: dict[str, Any]) -> None:
    if doc["reason"] is not None:
        raise CustodyError(doc["reason"], line=doc["first_bad_line"])
    if doc["timestamps"]["problems"]:
        raise CustodyError(doc["timestamps"]["problems"][0])
    if doc["case_file"]["ok"] is False:
        raise CustodyError("case.yaml was changed after the case was created (its SHA-256 "
                           f"{doc['case_file']['sha256']} differs from "
                           f"{doc['case_file']['expected_sha256']} in the case-created event)")


@command.command("verify")
@click.argument("case_dir", type=click.Path(path_type=Path))
@json_option
def verify(case_dir: Path, as_json: bool) -> None:
    """Check the custody log's hash chain and the case file.

    Exits 0 with a summary when intact; exits 1 naming the first bad line otherwise.
    """
    doc = _check_document(case_dir)
    if as_json:
        print_json(doc)
    _warn_all(doc)
    _raise_if_broken(doc)
    if as_json:
        return
    state = (f"chain verifies except at {len(doc['acknowledged'])} acknowledged break(s)"
             if doc["acknowledged"] else "intact")
    stdout.print(f"Custody log {state}: {doc['events']} events, "
                 f"{_short_time(doc['first_time'])} to {_short_time(doc['last_time'])}")
    stdout.print(f"Head SHA-256: {doc['head']} (write it down to pin this history)")
    if doc["signed"]:
        stdout.print(f"Anchor signed by {escape(doc['signer'])} (a trusted key of this case)")
    if doc["timestamps"]["latest"]:
        stdout.print(f"Timestamped by the TSA: {doc['timestamps']['tokens']} anchor token(s), "
                     f"the latest at {_short_time(doc['timestamps']['latest'])}, consistent with "
                     "the log")
    if doc["case_file"]["ok"]:
        stdout.print("case.yaml: unchanged since the case was created")


def _warn_all(doc: dict[str, Any]) -> None:
    for message in doc["warnings"]:
        warn(message)
    for ack in doc["acknowledged"]:
        where = f"line {ack['line']}" if ack["line"] is not None else "the log"
        warn(f"break at {where} acknowledged by {ack['actor']} in event {ack['event']}: "
             f"{ack['reason']} (note: {ack['note']})")


def _summary(details: dict[str, Any]) -> str:
    """Details as ``key: value`` lines (nested mappings as dotted keys, lists comma-separated)."""
    lines = []
    if details.get("occurred_at"):
        lines.append(f"happened at: {_short_time(str(details['occurred_at']))}")
    for key, value in _flatten(details):
        if key.split(".")[0] in _HIDDEN_DETAILS:
            continue
        lines.append(f"{key.replace('_', ' ')}: {value}")
    return "\n".join(lines)


def _flatten(value: Any, prefix: str = "") -> list[tuple[str, str]]:
    """Plain ``(dotted key, text)`` pairs; empty values are left out."""
    if isinstance(value, dict):
        out = []
        for key, inner in value.items():
            out.extend(_flatten(inner, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if value in (None, "", [], {}):
        return []
    if isinstance(value, list):
        if all(not isinstance(v, dict | list) for v in value):
            return [(prefix, ", ".join(str(v) for v in value))]
        out = []
        for index, inner in enumerate(value, 1):
            out.extend(_flatten(inner, f"{prefix}[{index}]"))
        return out
    if isinstance(value, bool):
        return [(prefix, "yes" if value else "no")]
    return [(prefix, str(value))]


def _short_time(text: str | None) -> str:
    """``2025-01-02 03:04:05 UTC``: the table keeps seconds; ``--json`` has the exact time."""
    from datetime import UTC, datetime

    if text is None:
        return "-"
    try:
        return datetime.fromisoformat(text).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except ValueError:
        return text


def _check_evidence(case_dir: Path, events: list[Any], evidence_id: str) -> None:
    """An unknown ``--evidence`` is a typo to report, not an empty timeline to print."""
    known = {e.evidence_id for e in events if e.evidence_id}
    from bitwitness.casefolder import EVIDENCE

    folder = case_dir.absolute() / EVIDENCE
    if folder.is_dir():
        known.update(p.name for p in folder.iterdir() if p.is_dir())
    if evidence_id not in known:
        raise UsageError(f"no evidence {evidence_id!r} in the custody log or evidence folder of "
                         f"{case_dir.absolute()} (known: {', '.join(sorted(known)) or 'none'})")


@command.command("show")
@click.argument("case_dir", type=click.Path(path_type=Path))
@click.option("--evidence", "evidence_id", help="Only events about this evidence ID.")
@json_option
def show(case_dir: Path, evidence_id: str | None, as_json: bool) -> None:
    """Print the custody timeline.

    Exits 1 when the log fails verification (after printing what it holds).
    """
    doc = _check_document(case_dir)
    events = _log_for(case_dir).events(strict=False)
    if evidence_id is not None:
        _check_evidence(case_dir, events, evidence_id)
        events = [e for e in events if e.evidence_id == evidence_id]
    if as_json:
        print_json({"case_dir": doc["case_dir"], "events": [e.to_dict() for e in events],
                    "check": {k: v for k, v in doc.items() if k != "case_dir"}})
    else:
        table = Table("#", "Recorded (UTC)", "Actor", "Action", "Evidence", "Details",
                      title=f"Custody log of {escape(str(doc['case_dir']))}", title_justify="left")
        table.columns[1].no_wrap = True
        table.columns[3].no_wrap = True
        for e in events:
            table.add_row(str(e.seq), _short_time(e.time), escape(e.actor), e.action,
                          escape(e.evidence_id or ""), escape(_summary(e.details)))
        # a pipe or a file has no width: do not squeeze the timeline into 80 columns there
        wide = stdout if stdout.is_terminal else Console(highlight=False, width=200, emoji=False)
        wide.print(table)
        if doc["ok"]:
            signed = f", signed by {escape(doc['signer'])}" if doc["signed"] else ""
            state = "[green]Chain intact[/]"
            if doc["acknowledged"]:
                state = (f"[yellow]Chain verifies except at {len(doc['acknowledged'])} "
                         "acknowledged break(s)[/]")
            stdout.print(f"{state}, head {doc['head']}{signed}")
    _warn_all(doc)
    _raise_if_broken(doc)


@command.command("add")
@click.argument("case_dir", type=click.Path(path_type=Path))
@click.option("--action", required=True, metavar="ACTION",
              help="seized, sealed, transferred, checked-in, checked-out, stored, returned or "
                   "destroyed.")
@click.option("--evidence", "evidence_id", help="The evidence ID the event is about.")
@click.option("--from", "from_", metavar="PERSON", help="Who handed the item over.")
@click.option("--to", metavar="PERSON", help="Who received the item.")
@click.option("--location", help="Where it happened or where the item now is.")
@click.option("--note", help="Free text (seal numbers, condition, reasons).")
@click.option("--actor", help="Who records the event (default: the case's examiner).")
@click.option("--at", "at", metavar="TIME",
              help="When the event happened, ISO-8601 with its time zone (2025-03-01T14:05+01:00 "
                   "or ...Z); the log also records when it was typed in.")
@json_option
def add(*, case_dir: Path, action: str, evidence_id: str | None, from_: str | None, to: str | None,
        location: str | None, note: str | None, actor: str | None, at: str | None,
        as_json: bool) -> None:
    """Record a physical custody event.

    Actions: seized, sealed, transferred, checked-in, checked-out, stored, returned, destroyed;
    transferred needs --from and --to. --at records when it happened (in the field, say) beside
    when it was recorded.
    """
    from bitwitness.case import Case
    from bitwitness.custody import PHYSICAL_ACTIONS, CustodyAction

    if action not in {a.value for a in PHYSICAL_ACTIONS}:
        allowed = ", ".join(a.value for a in PHYSICAL_ACTIONS)
        raise UsageError(f"--action {action!r} is not a physical custody action (use one of: "
                         f"{allowed})")
    if action == CustodyAction.TRANSFERRED and not ((from_ or "").strip() and (to or "").strip()):
        raise UsageError("--action transferred needs both --from and --to")
    if actor is not None and not actor.strip():
        raise UsageError("--actor must not be empty")
    occurred = _occurred_at(at) if at is not None else None
    case = Case.load(case_dir)
    given = {"occurred_at": occurred, "from": from_, "to": to, "location": location,
             "note": note}
    event = case.record(action, evidence_id=evidence_id, actor=actor,
                        details={k: v for k, v in given.items() if v is not None})
    from bitwitness import timestamping

    stamps = timestamping.stamp_outputs([], case.root)
    for s in stamps:
        if not s.token:
            warn(s.sentence())
    if as_json:
        print_json(event.to_dict())
        return
    about = f" for {escape(event.evidence_id)}" if event.evidence_id else ""
    stdout.print(f"Recorded event {event.seq}: {event.action}{about} by {escape(event.actor)}")


def _occurred_at(text: str) -> str:
    """``--at`` as UTC ISO-8601; a time without a zone, or in the future, is refused."""
    from datetime import UTC, datetime, timedelta

    try:
        stamp = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise UsageError(f"--at {text!r} is not an ISO-8601 time (e.g. 2025-03-01T14:05+01:00)"
                         ) from exc
    if stamp.utcoffset() is None:
        raise UsageError(f"--at {text!r} has no time zone: add Z or an offset such as +01:00")
    stamp = stamp.astimezone(UTC)
    if stamp > datetime.now(UTC) + timedelta(minutes=5):
        raise UsageError(f"--at {text!r} is in the future")
    return stamp.isoformat(timespec="seconds")


@command.command("acknowledge")
@click.argument("case_dir", type=click.Path(path_type=Path))
@click.option("--line", "line", metavar="N|none", required=True,
              help="The first bad line 'custody verify' names ('none' for a break that is not "
                   "one line, such as a missing or unsigned anchor).")
@click.option("--note", required=True, help="What happened, as far as the examiner knows.")
@click.option("--actor", help="Who acknowledges (default: the case's examiner).")
@json_option
def acknowledge(case_dir: Path, line: str, note: str, actor: str | None, as_json: bool) -> None:
    """Record that the examiner has seen a break in the custody log, naming it.

    The only way to go on appending to a log that fails verification: the event records the
    break's line and reason and what the anchor held; verification lists it from then on.
    """
    from bitwitness.case import Case

    if line.strip().lower() == "none":
        number = None
    else:
        try:
            number = int(line)
        except ValueError as exc:
            raise UsageError(f"--line {line!r} is not a line number or 'none'") from exc
    if actor is not None and not actor.strip():
        raise UsageError("--actor must not be empty")
    case = Case.load(case_dir)
    event = case.custody.acknowledge(actor=actor or case.examiner, line=number, note=note)
    if as_json:
        print_json(event.to_dict())
        return
    stdout.print(f"Recorded event {event.seq}: break acknowledged "
                 f"({escape(event.details['break']['reason'])})")
