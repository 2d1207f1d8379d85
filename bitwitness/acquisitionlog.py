"""The acquisition log as read back: ``BASE.json`` (schema :data:`SCHEMA`) as typed records.

:mod:`bitwitness.acquire.logs` writes the log from a :class:`~bitwitness.acquire.logs.LogRecord`;
this module is its reader, the one every part uses: resume (where the run stopped, its options),
verify (recorded hashes, sizes, read errors, status), report (everything), cases (which JSON
files are logs) and restore (the source the image came from). It lives in the core, with the
schema name, because cases (core) read logs too and the core imports no stage.

Reading is defensive, because a log is often read long after it was written, possibly by a
newer BitWitness or after someone edited it: a key of the wrong type reads as missing (``None``,
empty), unknown keys are kept in :attr:`AcquisitionLog.extra`, and only a file that is not JSON,
not an object or not this schema is refused (:class:`LogFormatError`). Callers that need a value
decide what its absence means.

Only the standard library is imported here: cases and reports read logs without loading the
acquisition machinery.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from bitwitness.evidence_io import os_open_readonly

#: The one name of the acquisition-log schema (acquire, convert and restore logs).
SCHEMA = "bitwitness.acquisition/1"
#: Every version of the schema starts with this (a newer log is still recognised as ours).
SCHEMA_FAMILY = "bitwitness.acquisition/"
#: No log of ours comes near this; a larger file is refused before it is parsed.
MAX_LOG_BYTES = 64 << 20


class LogFormatError(ValueError):
    """The file is not a readable acquisition log (the message says why)."""


@dataclass(frozen=True)
class LoggedTool:
    name: str = ""
    version: str = ""
    python: str = ""
    libraries: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class LoggedHost:
    hostname: str = ""
    os: str = ""
    user: str = ""


@dataclass(frozen=True)
class LoggedCase:
    case_dir: str = ""
    evidence_id: str = ""
    fields: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class LoggedSource:
    """What was read: the ``source`` object (a device's facts, or a file's)."""

    path: str = ""
    kind: str = ""
    size: int | None = None
    logical_sector_size: int | None = None
    physical_sector_size: int | None = None
    model: str = ""
    serial: str = ""
    vendor: str = ""
    transport: str = ""
    removable: bool | None = None
    hpa_checked: bool | None = None  #: None: the log has no ``hpa`` object
    hpa_present: bool | None = None
    hpa_detail: str = ""
    image_format: str = ""  #: the source's container format when it was an image
    #: the state of that image read when not its current one (a QCOW2 internal snapshot)
    image_state: str = ""
    #: a loop device's backing file when the acquisition began (``backing_file``); "" for none
    backing_file: str = ""
    #: the kernel read-only flag (``readonly_flag``: set, was, restored, detail); None: not logged
    readonly_set: bool | None = None
    readonly_was: bool | None = None
    readonly_restored: bool | None = None
    readonly_detail: str = ""
    #: the source's mounts at the start (``mounted``), each as the log records it
    mounts: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class LoggedOptions:
    """The options the operation ran with. ``values`` holds every one, in the log's order (a
    report shows them all); the typed fields are those the acquisition's resume reads."""

    values: dict[str, object] = field(default_factory=dict)
    format: str | None = None
    hashes: tuple[str, ...] = ()
    compress: str | None = None
    segment_size: int | None = None
    split: int | None = None
    sector_size: int | None = None
    chunk_sectors: int | None = None
    second_output: str | None = None


@dataclass(frozen=True)
class LoggedMedia:
    size: int | None = None
    sector_size: int | None = None
    sectors: int | None = None
    hashes: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class LoggedSourceHashes:
    """The source's own bytes hashed before padding to whole sectors."""

    size: int | None = None
    hashes: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class LoggedOutput:
    path: str
    size: int | None = None
    hashes: dict[str, str] = field(default_factory=dict)
    role: str = "image"


@dataclass(frozen=True)
class LoggedVerification:
    """The run's own check of what it wrote (``--verify``, a conversion's comparison)."""

    verdict: str | None = None
    hashes: dict[str, str] = field(default_factory=dict)
    detail: str = ""


@dataclass(frozen=True)
class LoggedProgress:
    """How far the outputs hold the media (written at checkpoints and at the end)."""

    media_bytes_done: int | None = None
    resumed_from: int | None = None


@dataclass(frozen=True)
class AcquisitionLog:
    """One ``BASE.json``, typed; see DESIGN.md for what each part means."""

    schema: str
    operation: str = ""
    status: str = ""
    error: str | None = None
    tool: LoggedTool = LoggedTool()
    host: LoggedHost = LoggedHost()
    started: datetime | None = None
    ended: datetime | None = None
    duration_seconds: float | None = None
    case: LoggedCase | None = None
    source: LoggedSource = LoggedSource()
    options: LoggedOptions = LoggedOptions()
    metadata: dict[str, str] = field(default_factory=dict)
    media: LoggedMedia = LoggedMedia()
    source_hashes: LoggedSourceHashes | None = None
    outputs: tuple[LoggedOutput, ...] = ()
    read_errors: tuple[tuple[int, int], ...] = ()  #: (first_sector, sector_count)
    verification: LoggedVerification | None = None
    progress: LoggedProgress | None = None
    warnings: tuple[str, ...] = ()
    #: every run of the acquisition, oldest first (``runs``: started, ended, status, reason,
    #: bytes_secured, resumed_from, host, tool), as recorded
    runs: tuple[dict[str, Any], ...] = ()
    #: keys this model does not describe (a restore log's ``image`` and ``target``), as read
    extra: dict[str, object] = field(default_factory=dict)


# --- reading ---------------------------------------------------------------------------------

_KNOWN = frozenset({
    "schema", "operation", "status", "error", "tool", "host", "started", "ended",
    "duration_seconds", "case", "source", "options", "metadata", "media", "source_hashes",
    "outputs", "read_errors", "verification", "progress", "warnings", "runs"})


def load(path: Path, *, any_version: bool = False) -> AcquisitionLog:
    """Read and parse ``path``; :class:`LogFormatError` when it is not an acquisition log.

    ``any_version``: accept every ``bitwitness.acquisition/N`` (verify reads what it can of a
    newer log); otherwise only :data:`SCHEMA`.
    """
    try:
        if path.stat().st_size > MAX_LOG_BYTES:
            raise LogFormatError(f"{path} is too large to be an acquisition log")
        with os.fdopen(os_open_readonly(path), "rb") as fh:  # a log is evidence: atime kept
            text = fh.read().decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise LogFormatError(f"acquisition log {path} cannot be read: {exc}") from exc
    return loads(text, source=str(path), any_version=any_version)


def loads(text: str, *, source: str = "the log", any_version: bool = False) -> AcquisitionLog:
    """Parse the text of a ``BASE.json`` (see :func:`load`)."""
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise LogFormatError(f"acquisition log {source} cannot be read: {exc}") from exc
    return parse(doc, source=source, any_version=any_version)


def parse(doc: object, *, source: str = "the log", any_version: bool = False) -> AcquisitionLog:
    """The typed log of an already-decoded JSON document (see :func:`load`)."""
    schema = doc.get("schema") if isinstance(doc, Mapping) else None
    known = isinstance(schema, str) and (
        schema.startswith(SCHEMA_FAMILY) if any_version else schema == SCHEMA)
    if not isinstance(doc, Mapping) or not known:
        raise LogFormatError(f"{source} is not a BitWitness acquisition log ({SCHEMA})")
    assert isinstance(schema, str)
    tool, host, media = _map(doc.get("tool")), _map(doc.get("host")), _map(doc.get("media"))
    case = doc.get("case")
    source_hashes = doc.get("source_hashes")
    verification = doc.get("verification")
    progress = doc.get("progress")
    duration = doc.get("duration_seconds")
    return AcquisitionLog(
        schema=schema,
        operation=_str(doc.get("operation")),
        status=_str(doc.get("status")),
        error=_str(doc.get("error")) or None,
        tool=LoggedTool(_str(tool.get("name")), _str(tool.get("version")),
                        _str(tool.get("python")), _strings(tool.get("libraries"))),
        host=LoggedHost(_str(host.get("hostname")), _str(host.get("os")),
                        _str(host.get("user"))),
        started=_time(doc.get("started")),
        ended=_time(doc.get("ended")),
        duration_seconds=float(duration) if isinstance(duration, int | float)
        and not isinstance(duration, bool) else None,
        case=_case(case) if isinstance(case, Mapping) else None,
        source=_source(_map(doc.get("source"))),
        options=_options(_map(doc.get("options"))),
        metadata=_strings(doc.get("metadata")),
        media=LoggedMedia(_int(media.get("size")), _int(media.get("sector_size")),
                          _int(media.get("sectors")), _strings(media.get("hashes"))),
        source_hashes=LoggedSourceHashes(_int(source_hashes.get("size")),
                                         _strings(source_hashes.get("hashes")))
        if isinstance(source_hashes, Mapping) else None,
        outputs=tuple(_output(o) for o in _list(doc.get("outputs"))
                      if isinstance(o, Mapping) and _str(o.get("path"))),
        read_errors=tuple(_errors(doc.get("read_errors"))),
        verification=LoggedVerification(_str(verification.get("verdict")) or None,
                                        _strings(verification.get("hashes")),
                                        _str(verification.get("detail")))
        if isinstance(verification, Mapping) else None,
        progress=LoggedProgress(_int(progress.get("media_bytes_done")),
                                _int(progress.get("resumed_from")))
        if isinstance(progress, Mapping) else None,
        warnings=tuple(w for w in _list(doc.get("warnings")) if isinstance(w, str)),
        runs=tuple(dict(r) for r in _list(doc.get("runs")) if isinstance(r, Mapping)),
        extra={str(k): v for k, v in doc.items() if k not in _KNOWN},
    )


def _map(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: object) -> list[object]:
    return value if isinstance(value, list) else []


def _str(value: object) -> str:
    return value if isinstance(value, str) else ""


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _bool(value: object) -> bool | None:
    return value if isinstance(value, bool) else None


def _strings(value: object) -> dict[str, str]:
    """A mapping of names to text (hashes, metadata); entries of another type are left out."""
    if not isinstance(value, Mapping):
        return {}
    return {str(k): v for k, v in value.items() if isinstance(v, str)}


def _time(value: object) -> datetime | None:
    """ISO-8601 (``Z`` accepted); anything else is ``None``."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _case(doc: Mapping[str, Any]) -> LoggedCase:
    return LoggedCase(_str(doc.get("case_dir")), _str(doc.get("evidence_id")),
                      _strings(doc.get("fields")))


def _source(src: Mapping[str, Any]) -> LoggedSource:
    hpa = src.get("hpa")
    hpa_doc = _map(hpa)
    readonly = _map(src.get("readonly_flag"))
    return LoggedSource(
        path=_str(src.get("path")), kind=_str(src.get("kind")), size=_int(src.get("size")),
        logical_sector_size=_int(src.get("logical_sector_size")),
        physical_sector_size=_int(src.get("physical_sector_size")),
        model=_str(src.get("model")), serial=_str(src.get("serial")),
        vendor=_str(src.get("vendor")), transport=_str(src.get("transport")),
        removable=_bool(src.get("removable")),
        hpa_checked=bool(hpa_doc.get("checked")) if hpa_doc else None,
        hpa_present=_bool(hpa_doc.get("present")), hpa_detail=_str(hpa_doc.get("detail")),
        image_format=_str(src.get("image_format")), image_state=_str(src.get("image_state")),
        backing_file=_str(src.get("backing_file")),
        readonly_set=_bool(readonly.get("set")), readonly_was=_bool(readonly.get("was")),
        readonly_restored=_bool(readonly.get("restored")),
        readonly_detail=_str(readonly.get("detail")),
        mounts=tuple(dict(m) for m in _list(src.get("mounted")) if isinstance(m, Mapping)))


def _options(opts: Mapping[str, Any]) -> LoggedOptions:
    hashes = opts.get("hashes")
    return LoggedOptions(
        values={str(k): v for k, v in opts.items()},
        format=_str(opts.get("format")) or None,
        hashes=tuple(h for h in hashes if isinstance(h, str)) if isinstance(hashes, list) else (),
        compress=_str(opts.get("compress")) or None,
        segment_size=_int(opts.get("segment_size")), split=_int(opts.get("split")),
        sector_size=_int(opts.get("sector_size")), chunk_sectors=_int(opts.get("chunk_sectors")),
        second_output=_str(opts.get("second_output")) or None)


def _output(doc: Mapping[str, Any]) -> LoggedOutput:
    return LoggedOutput(_str(doc.get("path")), _int(doc.get("size")), _strings(doc.get("hashes")),
                        _str(doc.get("role")) or "image")


def _errors(value: object) -> list[tuple[int, int]]:
    out = []
    for item in _list(value):
        if isinstance(item, Mapping):
            first, count = _int(item.get("first_sector")), _int(item.get("sector_count"))
            if first is not None and count is not None:
                out.append((first, count))
    return out
