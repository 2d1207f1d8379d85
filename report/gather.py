"""Gathering everything a case knows into one :class:`~bitwitness.report.model.ReportData`.

Sources, in the order a report presents them: the case fields (labelled and ordered by the case's
template), each evidence item with its source facts and acquisition from ``BASE.json``, every
verification and export recorded in the custody log (export manifests are re-hashed now and
compared with the hash recorded at export), the full custody timeline and the result of the custody
log's own integrity check.

A broken custody log never stops a report: the check's result is stated first in every format, the
entries that can still be parsed are listed, and those at or after the first bad line are marked
unreliable. Reading is strictly read-only; gathering writes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bitwitness import __version__
from bitwitness.errors import BitWitnessError, UsageError
from bitwitness.hashing import ALGORITHMS, file_sha256
from bitwitness.report.acqlog import (
    LogProblem,
    acquisition,
    hash_values,
    load_log,
    parse_time,
    source_facts,
)
from bitwitness.report.model import (
    CustodyEntry,
    EvidenceItem,
    Export,
    ExportedFile,
    Field,
    Integrity,
    IntegrityCheck,
    ReportData,
    SignatureLine,
    Verification,
)
from bitwitness.templates import ReportSettings

_QUIET_KEYS = frozenset({"tool_version", "host"})  # in every event; the timeline shows them
#: What a verify event names as verified: ``image_files`` is what ``bitwitness verify`` writes
#: (bitwitness.verify.casework.custody_details); the others are older or hand-written events.
_TARGET_KEYS = ("image_files", "image", "images", "path", "target", "file")
_MANIFEST_KEYS = ("manifest", "manifest_path")
_RECORDED_KEYS = ("manifest_sha256", "sha256")


# --- custody events -------------------------------------------------------------------------


def flatten(details: object, prefix: str = "") -> tuple[tuple[str, str], ...]:
    """Nested details -> ``("hashes.md5", "...")`` pairs, in recorded order."""
    if not isinstance(details, Mapping):
        return ((prefix or "value", str(details)),) if details not in (None, "") else ()
    out: list[tuple[str, str]] = []
    for key, value in details.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            out.extend(flatten(value, name))
        elif isinstance(value, list | tuple):
            out.append((name, _listed(value)))
        else:
            out.append((name, "" if value is None else str(value)))
    return tuple(out)


def _listed(values: Sequence[object]) -> str:
    """A list as one line: scalars ``a, b``; records ``k=v, k=v; k=v, ...`` (never a repr)."""
    if any(isinstance(v, Mapping) for v in values):
        return "; ".join(", ".join(f"{k}={'' if x is None else x}" for k, x in v.items())
                         if isinstance(v, Mapping) else str(v) for v in values)
    return ", ".join(map(str, values))


def event_fields(event: object) -> dict[str, Any]:
    """A CustodyEvent (dataclass or mapping) -> its fields as a mapping."""
    if isinstance(event, Mapping):
        return dict(event)
    names = ("seq", "time", "actor", "action", "evidence_id", "details", "prev")
    return {n: getattr(event, n, None) for n in names}


def event_details(action: str, details: object) -> tuple[tuple[str, str], ...]:
    """A custody event's details as the timeline lists them: as recorded, in recorded order,
    except that a verify event's comparisons and problems read as sentences (the same rows as
    the Verifications section) and its empty keys are left out."""
    if action != "verify" or not isinstance(details, Mapping):
        return flatten(details)
    rows: list[tuple[str, str]] = []
    for key, value in details.items():
        if key in _VERIFY_ROWS:
            rows.extend(_verify_rows({key: value}))
        else:
            rows.extend(flatten({key: value}))
    return tuple(rows)


def custody_entries(events: Iterable[object], first_bad_line: int | None,
                    acknowledged: Sequence[tuple[int, int]] = ()) -> list[CustodyEntry]:
    """The timeline; entries at or after the first bad line, or between an acknowledged break
    and its acknowledgement (``(first line, acknowledgement line)``), are suspect."""
    entries = []
    for line, event in enumerate(events, start=1):
        f = event_fields(event)
        seq = f.get("seq")
        entries.append(CustodyEntry(
            seq=seq if isinstance(seq, int) else None,
            time=parse_time(f.get("time")),
            actor=str(f.get("actor") or ""),
            action=str(f.get("action") or ""),
            evidence_id=str(f["evidence_id"]) if f.get("evidence_id") else None,
            details=event_details(str(f.get("action") or ""), f.get("details") or {}),
            line=line,
            suspect=(first_bad_line is not None and line >= first_bad_line)
            or any(start <= line < end for start, end in acknowledged),
        ))
    return entries


def tolerant_events(path: Path) -> list[dict[str, Any]]:
    """Every line of a custody log that still parses as a JSON object (for tampered logs)."""
    out: list[dict[str, Any]] = []
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return out
    for line in lines:
        if not line.strip():
            continue
        try:
            doc = json.loads(line)
        except json.JSONDecodeError:
            doc = {"action": "(unreadable line)", "details": {"text": line[:200]}}
        out.append(doc if isinstance(doc, dict) else {"action": "(not an object)"})
    return out


def _details(event: Mapping[str, Any]) -> Mapping[str, Any]:
    """An event's ``details`` object; an empty one when it is missing or not an object."""
    details = event.get("details")
    return details if isinstance(details, Mapping) else {}


def _first(details: Mapping[str, Any], keys: Sequence[str]) -> Any:
    return next((details[k] for k in keys if details.get(k) not in (None, "")), None)


def verification_of(event: Mapping[str, Any], entry: CustodyEntry) -> Verification:
    """A verify event as the Verifications section shows it.

    Reads the keys ``bitwitness verify`` records (``verdict``, ``hashes``, ``image_files``,
    ``media_size``, ``compared``, ``problems``, ``libewf_agrees``) into readable rows; any other
    key is listed as recorded. ``suspect`` comes from the timeline entry of the same line.
    """
    details = _details(event)
    hashes_src = details.get("hashes") or details.get("computed") or {
        a: details[a] for a in ALGORITHMS if a in details}
    target = _first(details, _TARGET_KEYS)
    if isinstance(target, list | tuple):
        target = ", ".join(map(str, target))
    used = {"verdict", "hashes", "computed", *ALGORITHMS, *_TARGET_KEYS, *_QUIET_KEYS,
            *_VERIFY_ROWS}
    rest = {k: v for k, v in details.items() if k not in used}
    return Verification(
        time=entry.time, actor=entry.actor, evidence_id=entry.evidence_id,
        verdict=str(details.get("verdict") or "not recorded"),
        target=str(target or ""), hashes=hash_values(hashes_src),
        details=_verify_rows(details) + flatten(rest), line=entry.line, suspect=entry.suspect,
    )


def _compared_text(value: object) -> str:
    """``[{"algorithm", "scope", "source", "match"}, ...]`` -> ``md5 of media (source): match``."""
    if not isinstance(value, list | tuple):
        return str(value)
    parts = []
    for c in value:
        if isinstance(c, Mapping) and {"algorithm", "match"} <= c.keys():
            source = f" ({c['source']})" if c.get("source") else ""
            parts.append(f"{c['algorithm']} of {c.get('scope') or 'media'}{source}: {c['match']}")
        else:
            parts.append(_listed([c]))
    return "; ".join(parts)


#: verify's own keys -> how each value reads; empty values are left out. The keys stay as
#: recorded so that the JSON report's ``details`` keys do not depend on wording.
_VERIFY_ROWS: dict[str, Any] = {
    "media_size": lambda v: f"{v} bytes",
    "compared": _compared_text,
    "problems": lambda v: "; ".join(map(str, v)) if isinstance(v, list) else str(v),
    "libewf_agrees": lambda v: {True: "yes", False: "NO"}.get(v, str(v)),
}


def _verify_rows(details: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    return tuple((key, render(details[key])) for key, render in _VERIFY_ROWS.items()
                 if details.get(key) not in (None, "", [], ()))


def export_of(event: Mapping[str, Any], entry: CustodyEntry, case_root: Path) -> Export:
    details = _details(event)
    manifest = _first(details, _MANIFEST_KEYS)
    recorded = _first(details, _RECORDED_KEYS)
    actual: str | None = None
    if manifest is None:
        state = "none"
    else:
        path = Path(str(manifest))
        path = path if path.is_absolute() else case_root / path
        try:
            actual = file_sha256(path)
        except OSError:
            state = "missing"
        else:
            state = ("unrecorded" if recorded is None
                     else "matches" if str(recorded).lower() == actual else "differs")
    used = {*_MANIFEST_KEYS, *_RECORDED_KEYS, *_QUIET_KEYS}
    filesystem, files = _manifest_files(path) if state in ("matches", "unrecorded") else ("", ())
    return Export(
        time=entry.time, actor=entry.actor, evidence_id=entry.evidence_id,
        manifest=str(manifest or ""), manifest_sha256=actual,
        recorded_sha256=str(recorded).lower() if recorded else None, manifest_state=state,
        details=flatten({k: v for k, v in details.items() if k not in used}),
        line=entry.line, suspect=entry.suspect, files=files, filesystem=filesystem,
    )


def _hex(value: object) -> str:
    """A manifest's ``source_hex`` when it is hex, "" otherwise (never an exception)."""
    if not isinstance(value, str):
        return ""
    try:
        bytes.fromhex(value)
    except ValueError:
        return ""
    return value.lower()


def _manifest_files(path: Path) -> tuple[str, tuple[ExportedFile, ...]]:
    """The file system an export manifest names and the files it lists (only read when its hash
    matches the record)."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return "", ()
    filesystem = doc.get("filesystem") if isinstance(doc, Mapping) else None
    out = []
    for f in doc.get("files") or () if isinstance(doc, Mapping) else ():
        if not isinstance(f, Mapping):
            continue
        size = f.get("size")
        out.append(ExportedFile(
            source=str(f.get("source") or ""), target=str(f.get("target") or ""),
            size=size if isinstance(size, int) else None,
            hashes=hash_values({a: f[a] for a in ALGORITHMS if isinstance(f.get(a), str)}),
            inode=str(f.get("inode") or ""), deleted=f.get("deleted") is True,
            modified=parse_time(f.get("modified")), accessed=parse_time(f.get("accessed")),
            changed=parse_time(f.get("changed")), born=parse_time(f.get("born")),
            kind=f["kind"] if isinstance(f.get("kind"), str) else "",
            source_hex=_hex(f.get("source_hex"))))
    return (filesystem if isinstance(filesystem, str) else ""), tuple(out)


# --- evidence items -------------------------------------------------------------------------


def evidence_item(evidence_id: str, folder: Path, log_path: Path | None,
                  description: str = "", logs: Sequence[Path] = ()) -> EvidenceItem:
    """One item: source and acquisition from its log, or the problem that prevents reading it;
    the detached signatures of its logs (``logs``, with their text twins) checked now."""
    signatures = log_signatures(logs or ([log_path] if log_path else []))
    if log_path is None:
        return EvidenceItem(evidence_id, str(folder), description, signatures=signatures)
    try:
        doc = load_log(log_path)
    except LogProblem as exc:
        return EvidenceItem(evidence_id, str(folder), description, problems=(str(exc),),
                            signatures=signatures)
    acq = acquisition(doc, log_path)
    return EvidenceItem(evidence_id, str(folder), description or acq.description,
                        source_facts(doc), acq, signatures=signatures)


def _earlier_reports(events: Sequence[object]) -> tuple[SignatureLine, ...]:
    """The signature and timestamp checks of the reports the custody log records (those still
    on disk and signed or timestamped)."""
    from bitwitness import signing, timestamping

    lines = []
    for event in events:
        fields = event_fields(event)
        details = fields.get("details")
        if fields.get("action") != "report" or not isinstance(details, Mapping):
            continue
        path = Path(str(details.get("path") or ""))
        if not path.name or not path.is_file():
            continue
        check = signing.check_file(path, signing.trust_for(path))
        if check.present:
            lines.append(SignatureLine(check.sentence(), check.valid))
        token = timestamping.check_file(path)
        if token is not None:
            lines.append(SignatureLine(token.sentence(), token.valid))
    return tuple(lines)


def log_signatures(logs: Sequence[Path]) -> tuple[SignatureLine, ...]:
    """Each log's (and its ``.txt`` twin's) signature check, for the files that are signed or,
    when the case trusts keys, that should have been."""
    from bitwitness import signing

    files = []
    for log in logs:
        files += [log, log.with_suffix(".txt")]
    from bitwitness import timestamping

    lines = []
    for check in signing.check_files([f for f in files if f.is_file()]):
        if check.present or signing.trust_for(check.path):
            lines.append(SignatureLine(check.sentence(), check.valid or not check.present))
    for log in logs:
        token = timestamping.check_file(log) if log.is_file() else None
        if token is not None:
            lines.append(SignatureLine(token.sentence(), token.valid))
    return tuple(lines)


# --- assembling -----------------------------------------------------------------------------


def assemble(
    *,
    case_root: Path,
    case_number: str,
    examiner: str,
    template: str,
    settings: ReportSettings,
    fields: Sequence[Field],
    items: Sequence[EvidenceItem],
    events: Sequence[object],
    integrity: IntegrityCheck,
    evidence_filter: str | None = None,
    generated: datetime | None = None,
) -> ReportData:
    """Build the report from parts already read (the Case adapter and tests call this)."""
    entries = custody_entries(events, integrity.first_bad_line, integrity.acknowledged_ranges)
    verifications, exports = [], []
    for event, entry in zip(events, entries, strict=True):
        if entry.action == "verify":
            verifications.append(verification_of(event_fields(event), entry))
        elif entry.action == "export":
            exports.append(export_of(event_fields(event), entry, case_root))
    if evidence_filter is not None:
        keep = evidence_filter
        items = [i for i in items if i.evidence_id == keep]
        verifications = [v for v in verifications if v.evidence_id == keep]
        exports = [e for e in exports if e.evidence_id == keep]
    return ReportData(
        generated=generated or datetime.now(UTC),
        tool_version=__version__,
        case_root=str(case_root),
        case_number=case_number,
        examiner=examiner,
        template=template,
        settings=settings,
        fields=tuple(fields),
        evidence=tuple(items),
        custody=tuple(entries),
        integrity=integrity,
        verifications=tuple(verifications),
        exports=tuple(exports),
        evidence_filter=evidence_filter,
    )


def integrity_of(check: object, log_path: Path, exists: bool,
                 case_file: object = None) -> IntegrityCheck:
    """A :class:`~bitwitness.custody.CustodyCheck` (and the case file check) -> the report's
    integrity record."""
    ok = getattr(case_file, "ok", None)
    case_state = "matches" if ok is True else "differs" if ok is False else "unrecorded"
    if not exists:
        return IntegrityCheck(Integrity.MISSING, 0, None, "custody log not found", str(log_path),
                              case_file=case_state)
    ok = bool(getattr(check, "ok", False))
    return IntegrityCheck(
        state=Integrity.INTACT if ok else Integrity.TAMPERED,
        events=int(getattr(check, "events", 0) or 0),
        first_bad_line=getattr(check, "first_bad_line", None),
        reason=getattr(check, "reason", None),
        log_path=str(log_path),
        head=getattr(check, "head", None),
        warnings=tuple(getattr(check, "warnings", ()) or ()),
        case_file=case_state,
        signer=getattr(check, "signer", None),
        acknowledged=tuple(_acknowledged_text(a) for a in getattr(check, "acknowledged", ())),
        acknowledged_ranges=tuple((a.line or 1, a.event_seq)
                                  for a in getattr(check, "acknowledged", ())),
    )


def _acknowledged_text(ack: Any) -> str:
    where = f"line {ack.line}" if ack.line is not None else "the log as a whole"
    return (f"break at {where} ({ack.reason}) acknowledged by {ack.actor} in entry "
            f"{ack.event_seq}: {ack.note}")


def gather(case_dir: Path | str, *, evidence_id: str | None = None,
           generated: datetime | None = None) -> ReportData:
    """Everything the case in ``case_dir`` knows.

    Raises :class:`~bitwitness.errors.CaseError` when it is not a case folder and
    :class:`~bitwitness.errors.UsageError` when ``evidence_id`` names no item. A broken custody
    log does not raise: it is described in the result.
    """
    from bitwitness.case import Case

    case = Case.load(case_dir)
    log = case.custody
    exists = log.path.is_file()
    check = log.verify() if exists else None
    integrity = integrity_of(check, log.path, exists, case.case_file_check())
    try:
        events: list[object] = list(log.events()) if exists else []
    except BitWitnessError:  # a damaged line: show what still parses, marked as unreliable
        events = list(tolerant_events(log.path))
    items = [evidence_item(i.id, i.folder, i.acquisition_log, logs=i.logs)
             for i in case.evidence_items()]
    bad = tuple(s.text for item in items for s in item.signatures if not s.ok)
    from bitwitness import timestamping

    try:
        raw_lines = log.path.read_bytes().splitlines(keepends=True)
    except OSError:
        raw_lines = []
    anchors = timestamping.check_anchors(case.root, raw_lines)
    earlier = _earlier_reports(events)
    bad += tuple(s.text for s in earlier if not s.ok)
    integrity = replace(integrity, bad_signatures=bad + anchors.problems,
                        timestamped=anchors.latest,
                        earlier_reports=tuple(s.text for s in earlier))
    if evidence_id is not None and evidence_id not in {i.evidence_id for i in items}:
        known = ", ".join(i.evidence_id for i in items) or "none"
        raise UsageError(f"no evidence item {evidence_id!r} in {case.root} (items: {known})")
    template = case.template
    fields = [Field(f.name, f.label, case.fields.get(f.name, "")) for f in template.fields]
    known_names = set(template.field_names)
    fields += [Field(k, k, v) for k, v in case.fields.items() if k not in known_names]
    return assemble(
        case_root=case.root,
        case_number=case.fields.get("case_number", "") or case.root.name,
        examiner=case.examiner,
        template=f"{template.name} ({template.source})",
        settings=template.report.render(case.fields),
        fields=fields,
        items=items,
        events=events,
        integrity=integrity,
        evidence_filter=evidence_id,
        generated=generated,
    )
