"""An acquisition log (``BASE.json``) as the report shows it.

The log is read by :mod:`bitwitness.acquisitionlog`, which reads it defensively because a report
is often made long after the acquisition, possibly by a newer BitWitness: unknown keys are
ignored, missing ones stay empty, and a file that is not a readable log becomes a stated problem
(:class:`LogProblem`) rather than a crash (the report must still render).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from bitwitness import acquisitionlog
from bitwitness.acquisitionlog import AcquisitionLog
from bitwitness.hashing import ALGORITHMS
from bitwitness.report.model import (
    Acquisition,
    ErrorRange,
    HashValue,
    OutputFile,
    Run,
    SourceFacts,
)


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


def _pairs(mapping: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    out = []
    for key, value in mapping.items():
        shown = ",".join(map(str, value)) if isinstance(value, list | tuple) else (
            "" if value is None else str(value))
        out.append((str(key), shown))
    return tuple(out)


def load_log(path: Path) -> AcquisitionLog:
    try:
        return acquisitionlog.load(path)
    except acquisitionlog.LogFormatError as exc:
        raise LogProblem(str(exc)) from exc


def _dict(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str(value: object) -> str:
    return "" if value is None else str(value)


def _mount(m: Mapping[str, Any]) -> str:
    mode = "read-write" if m.get("writable") else "read-only"
    fstype = f"{_str(m.get('fstype'))}, " if m.get("fstype") else ""
    return f"{_str(m.get('device'))} on {_str(m.get('mountpoint'))} ({fstype}{mode})"


def source_facts(log: AcquisitionLog) -> SourceFacts:
    """The log's source as the report shows it: every field the log reads, each written out
    (so that mypy checks its type; a test holds the two field lists equal), the mounts as
    sentences."""
    src = log.source
    return SourceFacts(
        path=src.path,
        kind=src.kind,
        size=src.size,
        logical_sector_size=src.logical_sector_size,
        physical_sector_size=src.physical_sector_size,
        model=src.model,
        serial=src.serial,
        vendor=src.vendor,
        transport=src.transport,
        removable=src.removable,
        hpa_checked=src.hpa_checked,
        hpa_present=src.hpa_present,
        hpa_detail=src.hpa_detail,
        image_format=src.image_format, image_state=src.image_state,
        backing_file=src.backing_file,
        readonly_set=src.readonly_set,
        readonly_was=src.readonly_was,
        readonly_restored=src.readonly_restored,
        readonly_detail=src.readonly_detail,
        mounts=tuple(_mount(m) for m in src.mounts),
    )


def acquisition(log: AcquisitionLog, log_path: Path) -> Acquisition:
    source_hashes = log.source_hashes
    verification = log.verification
    return Acquisition(
        log_path=str(log_path),
        operation=log.operation,
        status=log.status,
        error=log.error,
        tool_name=log.tool.name,
        tool_version=log.tool.version,
        python=log.tool.python,
        libraries=_pairs(log.tool.libraries),
        hostname=log.host.hostname,
        host_os=log.host.os,
        user=log.host.user,
        started=log.started,
        ended=log.ended,
        duration_seconds=log.duration_seconds,
        options=_pairs(log.options.values),
        media_size=log.media.size,
        media_sector_size=log.media.sector_size,
        media_sectors=log.media.sectors,
        media_hashes=hash_values(log.media.hashes),
        source_hashes=hash_values(source_hashes.hashes if source_hashes else None),
        source_hashed_size=source_hashes.size if source_hashes else None,
        outputs=tuple(OutputFile(o.path, o.size, hash_values(o.hashes), o.role)
                      for o in log.outputs),
        read_errors=tuple(ErrorRange(first, count) for first, count in log.read_errors),
        verification_verdict=verification.verdict if verification else None,
        verification_hashes=hash_values(verification.hashes if verification else None),
        description=log.metadata.get("description", ""),
        notes=log.metadata.get("notes", ""),
        write_blocker=log.metadata.get("write_blocker", ""),
        metadata=_pairs(log.metadata),
        runs=runs({"runs": log.runs}),
    )


def runs(doc: Mapping[str, Any]) -> tuple[Run, ...]:
    """Every run the log records (``runs``), oldest first; none for a log without them."""
    recorded = [r for r in doc.get("runs") or () if isinstance(r, Mapping)]
    out = []
    for number, r in enumerate(recorded, 1):
        tool = _dict(r.get("tool"))
        host = _dict(r.get("host"))
        out.append(Run(
            number=number, started=parse_time(r.get("started")), ended=parse_time(r.get("ended")),
            status=_str(r.get("status")), reason=_str(r.get("reason") or ""),
            bytes_secured=_int(r.get("bytes_secured")), resumed_from=_int(r.get("resumed_from")),
            host=" / ".join(_str(host.get(k)) for k in ("hostname", "os", "user")
                            if host.get(k)),
            tool=f"{_str(tool.get('name'))} {_str(tool.get('version'))}".strip(),
            libraries=", ".join(f"{k} {v}" for k, v in _pairs(_dict(tool.get("libraries")))
                                if v)))
    return tuple(out)
