"""Reading an acquisition log (``BASE.json``, schema ``bitwitness.acquisition/1``) for a report.

The log is written by :mod:`bitwitness.acquire.logs`; we read it defensively because a report is
often made long after the acquisition, possibly by a newer BitWitness: unknown keys are ignored,
missing ones stay empty, and a file that is not a readable log becomes a stated problem rather
than a crash (the report must still render).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from bitwitness.hashing import ALGORITHMS
from bitwitness.report.model import (
    Acquisition,
    ErrorRange,
    HashValue,
    OutputFile,
    Run,
    SourceFacts,
)

ACQUISITION_SCHEMA = "bitwitness.acquisition/1"


class LogProblem(Exception):  # noqa: N818 - internal, becomes a stated problem in the report
    """The file is not a readable acquisition log (message says why)."""


def parse_time(value: object) -> datetime | None:
    """ISO-8601 (``Z`` accepted) or a datetime; anything else is ``None``."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def hash_values(mapping: object) -> tuple[HashValue, ...]:
    """``{"sha1": .., "md5": ..}`` -> hash records in canonical order (known algorithms first)."""
    if not isinstance(mapping, Mapping):
        return ()
    known = [a for a in ALGORITHMS if a in mapping]
    other = sorted(k for k in mapping if k not in ALGORITHMS)
    return tuple(HashValue(str(k), str(mapping[k]).lower()) for k in [*known, *other]
                 if mapping[k])


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str(value: object) -> str:
    return "" if value is None else str(value)


def _dict(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _pairs(mapping: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    out = []
    for key, value in mapping.items():
        shown = ",".join(map(str, value)) if isinstance(value, list | tuple) else _str(value)
        out.append((str(key), shown))
    return tuple(out)


def load_log(path: Path) -> Mapping[str, Any]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LogProblem(f"acquisition log {path} cannot be read: {exc}") from exc
    if not isinstance(doc, Mapping) or doc.get("schema") != ACQUISITION_SCHEMA:
        raise LogProblem(f"{path} is not a BitWitness acquisition log ({ACQUISITION_SCHEMA})")
    return doc


def source_facts(doc: Mapping[str, Any]) -> SourceFacts:
    src = _dict(doc.get("source"))
    hpa = _dict(src.get("hpa"))
    readonly = _dict(src.get("readonly_flag"))
    removable = src.get("removable")
    present = hpa.get("present")
    return SourceFacts(
        path=_str(src.get("path")),
        kind=_str(src.get("kind")),
        size=_int(src.get("size")),
        logical_sector_size=_int(src.get("logical_sector_size")),
        physical_sector_size=_int(src.get("physical_sector_size")),
        model=_str(src.get("model")),
        serial=_str(src.get("serial")),
        vendor=_str(src.get("vendor")),
        transport=_str(src.get("transport")),
        removable=removable if isinstance(removable, bool) else None,
        hpa_checked=bool(hpa.get("checked")) if hpa else None,
        hpa_present=present if isinstance(present, bool) else None,
        hpa_detail=_str(hpa.get("detail")),
        readonly_set=_bool(readonly.get("set")),
        readonly_was=_bool(readonly.get("was")),
        readonly_restored=_bool(readonly.get("restored")),
        readonly_detail=_str(readonly.get("detail")),
        mounts=tuple(_mount(m) for m in src.get("mounted") or () if isinstance(m, Mapping)),
    )


def _bool(value: object) -> bool | None:
    return value if isinstance(value, bool) else None


def _mount(m: Mapping[str, Any]) -> str:
    mode = "read-write" if m.get("writable") else "read-only"
    fstype = f"{_str(m.get('fstype'))}, " if m.get("fstype") else ""
    return f"{_str(m.get('device'))} on {_str(m.get('mountpoint'))} ({fstype}{mode})"


def acquisition(doc: Mapping[str, Any], log_path: Path) -> Acquisition:
    tool = _dict(doc.get("tool"))
    host = _dict(doc.get("host"))
    media = _dict(doc.get("media"))
    source_hashes = _dict(doc.get("source_hashes"))
    verification = _dict(doc.get("verification"))
    outputs = tuple(
        OutputFile(_str(o.get("path")), _int(o.get("size")), hash_values(o.get("hashes")))
        for o in doc.get("outputs") or () if isinstance(o, Mapping)
    )
    errors = tuple(
        ErrorRange(int(e["first_sector"]), int(e["sector_count"]))
        for e in doc.get("read_errors") or ()
        if isinstance(e, Mapping) and _int(e.get("first_sector")) is not None
        and _int(e.get("sector_count")) is not None
    )
    duration = doc.get("duration_seconds")
    metadata = _dict(doc.get("metadata"))
    return Acquisition(
        log_path=str(log_path),
        operation=_str(doc.get("operation")),
        status=_str(doc.get("status")),
        error=doc.get("error") or None,
        tool_name=_str(tool.get("name")),
        tool_version=_str(tool.get("version")),
        python=_str(tool.get("python")),
        libraries=_pairs(_dict(tool.get("libraries"))),
        hostname=_str(host.get("hostname")),
        host_os=_str(host.get("os")),
        user=_str(host.get("user")),
        started=parse_time(doc.get("started")),
        ended=parse_time(doc.get("ended")),
        duration_seconds=float(duration) if isinstance(duration, int | float) else None,
        options=_pairs(_dict(doc.get("options"))),
        media_size=_int(media.get("size")),
        media_sector_size=_int(media.get("sector_size")),
        media_sectors=_int(media.get("sectors")),
        media_hashes=hash_values(media.get("hashes")),
        source_hashes=hash_values(source_hashes.get("hashes")),
        source_hashed_size=_int(source_hashes.get("size")),
        outputs=outputs,
        read_errors=errors,
        verification_verdict=_str(verification.get("verdict")) or None,
        verification_hashes=hash_values(verification.get("hashes")),
        description=_str(metadata.get("description")),
        notes=_str(metadata.get("notes")),
        write_blocker=_str(metadata.get("write_blocker")),
        metadata=_pairs(metadata),
        runs=runs(doc),
    )


def runs(doc: Mapping[str, Any]) -> tuple[Run, ...]:
    """Every run the log records (``runs``), or the one run a log without history describes."""
    recorded = [r for r in doc.get("runs") or () if isinstance(r, Mapping)]
    out = []
    for number, r in enumerate(recorded, 1):
        tool = _dict(r.get("tool"))
        host = _dict(r.get("host"))
        out.append(Run(
            number=number, started=parse_time(r.get("started")), ended=parse_time(r.get("ended")),
            status=_str(r.get("status")), reason=_str(r.get("reason") or r.get("error")),
            bytes_secured=_int(r.get("bytes_secured")), resumed_from=_int(r.get("resumed_from")),
            host=" / ".join(_str(host.get(k)) for k in ("hostname", "os", "user")
                            if host.get(k)),
            tool=f"{_str(tool.get('name'))} {_str(tool.get('version'))}".strip(),
            libraries=", ".join(f"{k} {v}" for k, v in _pairs(_dict(tool.get("libraries")))
                                if v)))
    return tuple(out)
