"""Wording shared by the PDF and HTML renderers, so both say exactly the same thing.

Each function turns part of the model into label/value rows or short sentences; the renderers only
decide how those look. Times are always printed in UTC with the zone named; sizes give the exact
byte count (what a court checks) followed by a human size.
"""

from __future__ import annotations

from datetime import UTC, datetime

from bitwitness.report.browse.safenames import shown
from bitwitness.report.model import (
    Acquisition,
    CustodyEntry,
    EvidenceItem,
    Export,
    IntegrityCheck,
    ReportData,
    SourceFacts,
    Verification,
)
from bitwitness.sizes import format_size
from bitwitness.verdict import Verdict

Rows = list[tuple[str, str]]

SECTION_TITLES: dict[str, str] = {
    "summary": "Summary",
    "case": "Case details",
    "evidence": "Evidence items",
    "acquisition": "Acquisition",
    "hashes": "Hashes",
    "read-errors": "Read errors",
    "verification": "Verifications",
    "exports": "Exports",
    "custody": "Chain of custody",
    "environment": "Environment",
    "disclaimer": "Disclaimer",
    "signature": "Signatures",
}


def visible(value: str) -> str:
    """``value`` as the PDF and HTML reports print it: each line as the terminal shows a name
    (:func:`~bitwitness.report.browse.safenames.shown`), line breaks kept.

    Names, paths, descriptions and examiner fields come from evidence and from people; printed
    raw, a tab or escape vanishes (``a<TAB>b`` reads ``ab``), a right-to-left override turns
    ``gnp.exe`` round, a bell or form feed makes the HTML invalid. The spelling is the one the
    terminal and ``fls`` use (``^`` for C0 controls and DEL, ``\\xNN`` for bytes that are not
    UTF-8, ``\\uNNNN`` for C1 controls and bidirectional controls); the exact bytes are in the
    JSON report. Printable text comes back unchanged, so applying it twice changes nothing.
    """
    if value.isprintable():
        return value
    return "\n".join(shown(line) for line in value.split("\n"))


def when(value: datetime | None) -> str:
    """``2025-03-01 14:05:09 UTC``; naive times are taken as UTC (the files say so)."""
    if value is None:
        return "-"
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def size(value: int | None) -> str:
    if value is None:
        return "-"
    return f"{value:,} bytes ({format_size(value)})" if value >= 1024 else f"{value} bytes"


def yes_no(value: bool | None) -> str:
    return {True: "yes", False: "no", None: "-"}[value]


def text(value: object) -> str:
    return "-" if value in (None, "") else str(value)


def source_rows(src: SourceFacts) -> Rows:
    return [
        ("Source", text(src.path)),
        ("Kind", text(src.kind)),
        *((("Image format", src.image_format),) if src.image_format else ()),
        *((("Image state", src.image_state),) if src.image_state else ()),
        *((("Loop device over", src.backing_file),) if src.backing_file else ()),
        ("Vendor / model", " ".join(p for p in (src.vendor, src.model) if p) or "-"),
        ("Serial number", text(src.serial)),
        ("Transport", text(src.transport)),
        ("Removable", yes_no(src.removable)),
        ("Size", size(src.size)),
        ("Sector size (logical / physical)",
         f"{text(src.logical_sector_size)} / {text(src.physical_sector_size)} bytes"),
        ("Host protected area (HPA)", src.hpa_state),
        ("Kernel read-only flag", src.readonly_state),
        ("Mount state at acquisition", src.mount_state),
    ]


def key_value_lines(pairs: tuple[tuple[str, str], ...] | list[tuple[str, str]]) -> str:
    """``key: value`` lines (one per option), booleans and empties in words."""
    words = {"True": "yes", "False": "no", "": "-", "None": "-"}
    return "\n".join(f"{k.replace('_', ' ')}: {words.get(v, v)}" for k, v in pairs) or "-"


def acquisition_rows(acq: Acquisition) -> Rows:
    rows: Rows = [
        ("Operation", text(acq.operation)),
        ("Status", text(acq.status)),
    ]
    if acq.error:
        rows.append(("Error", acq.error))
    rows += [
        ("Description", text(acq.description)),
        ("Notes", text(acq.notes)),
        ("Write-blocker", acq.write_blocker or "none recorded"),
        ("Started", when(acq.started)),
        ("Ended", when(acq.ended)),
        ("Duration", "-" if acq.duration_seconds is None else f"{acq.duration_seconds:.1f} s"),
        ("Tool", f"{text(acq.tool_name)} {acq.tool_version}".strip()),
        ("Options", key_value_lines(acq.options)),
        ("Media size", size(acq.media_size)),
        ("Media sectors", f"{text(acq.media_sectors)} x {text(acq.media_sector_size)} bytes"),
        ("Acquisition log", acq.log_path),
    ]
    if acq.verification_verdict:
        rows.append(("Verified after acquisition", acq.verification_verdict))
    return rows


def run_rows(acq: Acquisition) -> Rows:
    """The acquisition's history: one row per run, oldest first (empty for a single run)."""
    if len(acq.runs) < 2:
        return []
    rows: Rows = []
    for run in acq.runs:
        parts = [f"{when(run.started)} to {when(run.ended)}: {text(run.status)}"]
        if run.resumed_from is not None:
            parts.append(f"resumed at media byte {run.resumed_from:,}")
        if run.reason:
            parts.append(f"reason: {run.reason}")
        if run.bytes_secured is not None:
            parts.append(f"{run.bytes_secured:,} bytes secured")
        if run.host:
            parts.append(f"host: {run.host}")
        if run.tool:
            parts.append(f"tool: {run.tool}")
        if run.libraries:
            parts.append(f"libraries: {run.libraries}")
        rows.append((f"Run {run.number}", "\n".join(parts)))
    return rows


def read_error_text(acq: Acquisition) -> str:
    if not acq.read_errors:
        return "No read errors: every sector was read."
    total = sum(r.sector_count for r in acq.read_errors)
    ranges = ", ".join(
        f"{r.first_sector}-{r.first_sector + r.sector_count - 1}" for r in acq.read_errors
    )
    return (f"{total} unreadable sector(s) in {len(acq.read_errors)} range(s), "
            f"written as zeros: sectors {ranges}.")


#: Said of every verification or export recorded in the damaged part of the custody log.
UNRELIABLE = ("UNRELIABLE: recorded at or after the custody log's first bad line, so this entry "
              "cannot be relied upon")


def verification_summary(v: Verification) -> str:
    target = f" of {v.target}" if v.target else ""
    line = f"{when(v.time)}: {v.verdict}{target} (by {text(v.actor)})"
    return f"{line} - {UNRELIABLE}" if v.suspect else line


def flagged(v: Verification | Export) -> bool:
    """Whether a renderer shows the entry as a problem (bad verdict, bad manifest, unreliable)."""
    if isinstance(v, Export):
        return v.suspect or v.manifest_state in ("differs", "missing")
    return v.suspect or v.verdict.upper() != Verdict.VERIFIED


def export_summary(e: Export) -> str:
    states = {
        "matches": "matches the hash recorded at export",
        "differs": "DIFFERS from the hash recorded at export",
        "missing": "manifest file is missing",
        "unrecorded": "no hash was recorded at export",
        "none": "no manifest",
    }
    line = f"{when(e.time)} by {text(e.actor)}: {states.get(e.manifest_state, e.manifest_state)}"
    return f"{line} - {UNRELIABLE}" if e.suspect else line


def custody_details(entry: CustodyEntry) -> str:
    return "; ".join(f"{k}: {v}" for k, v in entry.details)


_YES_NO = {"True": "yes", "False": "no"}


def custody_detail_lines(entry: CustodyEntry) -> list[str]:
    """``key: value`` lines of an event's details, worded as ``custody show`` words them: words
    for keys (``case file sha256``), yes/no for flags, empty values left out; ``occurred_at``
    first, read as a UTC time. The JSON report keeps the recorded keys and values."""
    lines: list[str] = []
    for key, value in entry.details:
        if key == "occurred_at":
            lines.insert(0, f"happened at: {when(_time(value))}")
        elif value != "":
            lines.append(f"{key.replace('_', ' ')}: {_YES_NO.get(value, value)}")
    return lines


def _time(value: str) -> datetime | None:
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def case_rows(data: ReportData) -> Rows:
    """The case fields, labelled and ordered as the template says."""
    return [(f.label, f.value or "-") for f in data.fields]


def title_rows(data: ReportData) -> Rows:
    """Identifiers on the title page."""
    rows: Rows = [("Case number", data.case_number or "-")]
    rows += [
        ("Examiner", data.examiner or "-"),
        ("Evidence items", ", ".join(e.evidence_id for e in data.evidence) or "none"),
        ("Report generated", when(data.generated)),
        ("Generated by", f"BitWitness {data.tool_version}"),
    ]
    if data.evidence_filter:
        rows.append(("Scope", f"evidence item {data.evidence_filter} only"))
    return rows


def integrity_rows(check: IntegrityCheck) -> Rows:
    rows: Rows = [
        ("Custody log", check.log_path or "-"),
        ("State", check.state.value),
        ("Entries", str(check.events)),
        ("First bad line", text(check.first_bad_line)),
        ("Reason", text(check.reason)),
        ("Last line SHA-256 (head)", text(check.head)),
        ("Case file (case.yaml)", {"matches": "matches the SHA-256 recorded at creation",
                                   "differs": "CHANGED since creation",
                                   }.get(check.case_file, "no hash recorded")),
    ]
    rows += [("Warning", w) for w in check.warnings]
    rows.append(("Anchor signature", f"signed by {check.signer} (a key the case trusts)"
                 if check.signer else "not signed"))
    rows.append(("Trusted timestamp (RFC 3161)", f"latest anchor token {check.timestamped} UTC"
                 if check.timestamped else "none"))
    rows += [("Acknowledged break", a) for a in check.acknowledged]
    rows += [("Signature problem", b) for b in check.bad_signatures]
    rows += [("Earlier report", r) for r in check.earlier_reports]
    return rows


def signature_rows(item: EvidenceItem) -> Rows:
    return [("Log signature", s.text) for s in item.signatures]


def summary_lines(data: ReportData) -> list[str]:
    """The outcome in a few sentences: items, verdicts, read errors, custody state."""
    lines = [f"{len(data.evidence)} evidence item(s): "
             + (", ".join(i.evidence_id for i in data.evidence) or "none") + "."]
    for item in data.evidence:
        parts = []
        acq = item.acquisition
        if acq is not None:
            parts.append(f"acquisition {acq.status or 'status unknown'}")
            if acq.read_errors:
                total = sum(r.sector_count for r in acq.read_errors)
                parts.append(f"{total} unreadable sector(s)")
        else:
            parts.append("no acquisition log")
        parts.append(_verified_phrase(data.verifications_of(item.evidence_id)))
        exports = data.exports_of(item.evidence_id)
        if exports:
            parts.append(f"{len(exports)} export(s)")
        lines.append(f"{item.evidence_id}: " + ", ".join(parts) + ".")
    lines.append(data.integrity.statement())
    return lines


def _verified_phrase(verifications: tuple[Verification, ...]) -> str:
    """The last verdict, and when that one is UNRELIABLE, the last one that is not."""
    if not verifications:
        return "never verified"
    last = verifications[-1]
    if not last.suspect:
        return f"last verification {last.verdict}"
    reliable = [v for v in verifications if not v.suspect]
    before = (f"last reliable verification {reliable[-1].verdict} ({when(reliable[-1].time)})"
              if reliable else "no reliable verification")
    return (f"last verification {last.verdict} (UNRELIABLE: recorded after the custody log's "
            f"first bad line), {before}")


def environment_rows(data: ReportData) -> Rows:
    """Software and hosts: this report's generator, then each acquisition's."""
    rows: Rows = [("Report generated by", f"BitWitness {data.tool_version}")]
    for item in data.evidence:
        acq = item.acquisition
        if acq is None:
            continue
        rows += [
            (f"{item.evidence_id}: tool", f"{text(acq.tool_name)} {acq.tool_version}".strip()),
            (f"{item.evidence_id}: Python", text(acq.python)),
            (f"{item.evidence_id}: libraries",
             ", ".join(f"{k} {v}" for k, v in acq.libraries) or "-"),
            (f"{item.evidence_id}: host",
             " / ".join(p for p in (acq.hostname, acq.host_os, acq.user) if p) or "-"),
        ]
    return rows


def item_heading(item: EvidenceItem) -> str:
    return f"Evidence {item.evidence_id}" + (f": {item.description}" if item.description else "")
