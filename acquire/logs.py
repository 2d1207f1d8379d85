"""Acquisition logs: ``BASE.json`` (schema ``bitwitness.acquisition/1``) and ``BASE.txt``.

Both are built from one frozen :class:`LogRecord`, never from rendered text, and written by
acquisition and conversion alike (``operation``). A preliminary pair is written *before* the
first byte is read, saying "failed: did not finish", and padded with whitespace: if the process
dies, the log still tells the truth, and if the destination fills up the final logs overwrite the
already-allocated bytes in place instead of needing new space. The log is read back, typed, by
:mod:`bitwitness.acquisitionlog` (:func:`read_log`).
"""

from __future__ import annotations

import getpass
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from bitwitness import TOOL_NAME, __version__, hashing, host, installed
from bitwitness.acquire.sinks import OutputFile
from bitwitness.acquire.source import SourceFacts
from bitwitness.acquisitionlog import SCHEMA, AcquisitionLog, load
from bitwitness.fileio import write_in_place

#: Bytes reserved for each log at the start (JSON allows trailing whitespace).
RESERVE = 64 * 1024


class Status(StrEnum):
    COMPLETED = "completed"
    COMPLETED_WITH_ERRORS = "completed-with-errors"
    INTERRUPTED = "interrupted"
    FAILED = "failed"


@dataclass(frozen=True)
class LogRecord:
    """Everything a log says; ``media``/``options``/``case`` follow the schema in DESIGN.md."""

    operation: str
    status: Status
    error: str | None
    started: datetime
    ended: datetime
    source: SourceFacts
    options: dict[str, Any]
    media_size: int
    sector_size: int
    hashes: dict[str, str]
    source_hashes: dict[str, str] | None = None
    outputs: tuple[OutputFile, ...] = ()
    read_errors: tuple[tuple[int, int], ...] = ()  #: (first_sector, count) in media sectors
    verification: dict[str, Any] | None = None
    case: dict[str, Any] | None = None
    progress: dict[str, Any] | None = None  #: media_bytes_done, resumed_from (for --resume)
    warnings: tuple[str, ...] = ()
    metadata: dict[str, str] = field(default_factory=dict)  #: case number, examiner, ...
    #: every earlier run of this acquisition (``runs`` of the log it resumed), oldest first; the
    #: run this record describes is added after them by :func:`to_document`
    history: tuple[dict[str, Any], ...] = ()
    resumed_from: int | None = None


def tool_facts() -> dict[str, Any]:
    return {"name": TOOL_NAME, "version": __version__, "python": sys.version.split()[0],
            "libraries": library_versions()}


def run_entry(record: LogRecord) -> dict[str, Any]:
    """This record's run as the ``runs`` list keeps it: never changed once a later run exists."""
    done = (record.progress or {}).get("media_bytes_done")
    if done is None and record.status in (Status.COMPLETED, Status.COMPLETED_WITH_ERRORS):
        done = record.media_size
    return {"started": record.started.isoformat(), "ended": record.ended.isoformat(),
            "status": record.status.value, "reason": record.error, "bytes_secured": done,
            "resumed_from": record.resumed_from, "host": host_facts(), "tool": tool_facts()}


def earlier_runs(log: AcquisitionLog) -> tuple[dict[str, Any], ...]:
    """The runs a log records; a log from before runs were kept describes its one run."""
    if log.runs:
        return tuple(dict(r) for r in log.runs)
    progress = log.progress
    return ({"started": log.started.isoformat() if log.started else None,
             "ended": log.ended.isoformat() if log.ended else None,
             "status": log.status, "reason": log.error,
             "bytes_secured": progress.media_bytes_done if progress else None,
             "resumed_from": progress.resumed_from if progress else None,
             "host": {"hostname": log.host.hostname, "os": log.host.os, "user": log.host.user},
             "tool": {"name": log.tool.name, "version": log.tool.version,
                      "python": log.tool.python, "libraries": dict(log.tool.libraries)}},)


def _version(dist: str) -> str:
    # the same answer as importlib.metadata.version, without its ~15 ms import in every run
    try:
        return installed.version(dist)
    except LookupError:
        return ""


def library_versions() -> dict[str, str]:
    """Versions of the libraries whose behaviour the evidence depends on."""
    versions = {"libewf": "", "pytsk3": "", "isal": _version("isal"),
                "click": _version("click"), "rich": _version("rich")}
    try:
        import pyewf

        versions["libewf"] = str(pyewf.get_version())
    except (ImportError, AttributeError):
        versions["libewf"] = _version("libewf-python")
    try:
        import pytsk3

        versions["pytsk3"] = str(pytsk3.get_version())
    except (ImportError, AttributeError):
        versions["pytsk3"] = _version("pytsk3")
    return versions


def host_facts() -> dict[str, str]:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    # the uname node name is what socket.gethostname() returns (libc reads it from uname), without
    # importing socket (~3 ms)
    return {"hostname": os.uname().nodename, "os": host.platform_name(), "user": user}


def _source_doc(facts: SourceFacts) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "path": facts.path, "kind": facts.kind.value, "size": facts.size,
        "logical_sector_size": facts.logical_sector_size,
        "physical_sector_size": facts.physical_sector_size,
        "model": facts.model, "serial": facts.serial, "vendor": facts.vendor,
        "transport": facts.transport, "removable": facts.removable,
        "hpa": {"checked": facts.hpa.checked, "present": facts.hpa.present,
                "detail": facts.hpa.detail},
        "readonly_flag": {"set": facts.readonly_flag.set, "restored": facts.readonly_flag.restored,
                          "was": facts.readonly_flag.was, "detail": facts.readonly_flag.detail},
        "mounted": [{"device": m.device, "mountpoint": m.mountpoint, "fstype": m.fstype,
                     "options": m.options, "writable": m.writable} for m in facts.mounted],
    }
    if facts.image_format:
        doc["image_format"] = facts.image_format
    if facts.image_state:
        doc["image_state"] = facts.image_state
    if facts.device is not None and facts.device.backing_file:
        doc["backing_file"] = facts.device.backing_file  # a loop device: the file it shows
    return doc


def to_document(record: LogRecord) -> dict[str, Any]:
    """The ``BASE.json`` document (a plain dict, key order as in DESIGN.md)."""
    sectors = -(-record.media_size // record.sector_size) if record.sector_size else 0
    runs = [*record.history, run_entry(record)]
    return {
        "schema": SCHEMA,
        "operation": record.operation,
        "status": record.status.value,
        "error": record.error,
        "tool": tool_facts(),
        "host": host_facts(),
        "started": runs[0]["started"] or record.started.isoformat(),
        "ended": record.ended.isoformat(),
        "duration_seconds": round((record.ended - record.started).total_seconds(), 3),
        "case": record.case,
        "source": _source_doc(record.source),
        "options": record.options,
        "metadata": record.metadata,
        "media": {"size": record.media_size, "sector_size": record.sector_size,
                  "sectors": sectors, "hashes": record.hashes},
        "source_hashes": None if record.source_hashes is None else {
            "size": record.source.size, "hashes": record.source_hashes},
        "outputs": [{"path": str(o.path), "size": o.size, "hashes": o.hashes, "role": o.role}
                    for o in record.outputs],
        "read_errors": [{"first_sector": f, "sector_count": c} for f, c in record.read_errors],
        "verification": record.verification,
        "progress": record.progress,
        "warnings": list(record.warnings),
        "runs": runs,
    }


def log_paths(base: Path) -> tuple[Path, Path]:
    return base.with_name(base.name + ".json"), base.with_name(base.name + ".txt")


def write_logs(base: Path, record: LogRecord, *, reserve: bool = False) -> tuple[Path, Path]:
    """Write ``BASE.json`` and ``BASE.txt``; ``reserve`` pads them for the final rewrite."""
    json_path, text_path = log_paths(base)
    document = json.dumps(to_document(record), indent=2, ensure_ascii=False).encode() + b"\n"
    write_in_place(json_path, document, reserve=RESERVE if reserve else 0)
    text = render_text(record).encode("utf-8")
    write_in_place(text_path, text, reserve=RESERVE if reserve else 0)
    return json_path, text_path


def read_log(path: Path) -> AcquisitionLog:
    """Load a ``BASE.json`` as written by :func:`write_logs` (typed: see
    :mod:`bitwitness.acquisitionlog`)."""
    return load(path)


def file_sha256(path: Path) -> str:
    """Kept for callers importing it from here; the one implementation is in bitwitness.hashing."""
    return hashing.file_sha256(path)


# --- the human report --------------------------------------------------------------------------

_RULE = "-" * 78


def _kv(lines: list[str], label: str, value: object, indent: int = 1) -> None:
    lines.append(f"{' ' * indent}{label + ':':<28}{value}")


def render_text(record: LogRecord) -> str:
    """The examiner's printed report, in the spirit of FTK Imager's ``.txt``."""
    lines = [f"Created by {TOOL_NAME} {__version__}", ""]
    _case_section(lines, record)
    _source_section(lines, record)
    _image_section(lines, record)
    _errors_section(lines, record.read_errors, record.sector_size)
    _verification_section(lines, record.verification)
    _history_section(lines, record)
    lines += [_RULE, f"Status: {record.status.value.upper()}"]
    if record.error:
        lines.append(f"Error: {record.error}")
    for warning in record.warnings:
        lines.append(f"Warning: {warning}")
    return "\n".join(lines) + "\n"


def _case_section(lines: list[str], record: LogRecord) -> None:
    lines.append("Case Information:")
    _kv(lines, "Acquired using", f"{TOOL_NAME} {__version__} ({record.operation})")
    labels = (("case_number", "Case Number"), ("evidence_number", "Evidence Number"),
              ("description", "Unique Description"), ("examiner", "Examiner"),
              ("notes", "Notes"), ("write_blocker", "Write-blocker"))
    for key, label in labels:
        _kv(lines, label, record.metadata.get(key, ""))
    if record.metadata.get("source_acquired"):  # a converted image's date that is no instant
        _kv(lines, "Source acquired", record.metadata["source_acquired"])
    if record.case:
        _kv(lines, "Case folder", record.case.get("case_dir", ""))
        _kv(lines, "Evidence ID", record.case.get("evidence_id", ""))
    host = host_facts()
    _kv(lines, "Host", f"{host['hostname']} ({host['os']}), user {host['user']}")
    lines += [_RULE, ""]


def _source_section(lines: list[str], record: LogRecord) -> None:
    facts = record.source
    lines.append("Source (Evidentiary Item) Information:")
    _kv(lines, "Source", facts.path)
    _kv(lines, "Source type", facts.kind.value)
    if facts.image_state:
        _kv(lines, "Source state", facts.image_state)
    if facts.device is not None and facts.device.backing_file:
        _kv(lines, "Loop device over", facts.device.backing_file)
    _kv(lines, "Source data size", f"{facts.size} bytes")
    _kv(lines, "Bytes per sector (logical)", facts.logical_sector_size)
    _kv(lines, "Bytes per sector (physical)", facts.physical_sector_size)
    if facts.kind.value == "device":
        for label, value in (("Model", facts.model), ("Serial number", facts.serial),
                             ("Vendor", facts.vendor), ("Transport", facts.transport),
                             ("Removable", "yes" if facts.removable else "no")):
            _kv(lines, label, value)
        hpa = facts.hpa
        hpa_text = ("present" if hpa.present else "not present") if hpa.checked else "not checked"
        _kv(lines, "Host Protected Area", f"{hpa_text} ({hpa.detail})")
        flag = facts.readonly_flag
        _kv(lines, "Kernel read-only flag", f"was {flag.was}, set {flag.set}, "
            f"restored {flag.restored} ({flag.detail})")
        mounts = ", ".join(f"{m.device} on {m.mountpoint} ({'rw' if m.writable else 'ro'})"
                           for m in facts.mounted) or "not mounted"
        _kv(lines, "Mounted", mounts)
    lines.append("")
    lines.append(" [Computed Hashes]")
    for name, value in record.hashes.items():
        _kv(lines, f"{name.upper()} checksum", value, indent=2)
    if record.source_hashes:
        # labelled differently from the media's "<ALGO> checksum" lines on purpose: readers of
        # FTK-style reports take those as the image's hashes
        lines.append(f" [Source's own {record.source.size} bytes, before padding to whole "
                     "sectors]")
        for name, value in record.source_hashes.items():
            _kv(lines, f"Source {name.upper()} (unpadded)", value, indent=2)
    lines += [_RULE, ""]


def _history_section(lines: list[str], record: LogRecord) -> None:
    """Every run, oldest first: what each secured, why it stopped, where and with what."""
    lines.append("Acquisition History:")
    for number, run in enumerate([*record.history, run_entry(record)], 1):
        lines.append(f" Run {number}:")
        _kv(lines, "Started", run.get("started"), indent=2)
        _kv(lines, "Ended", run.get("ended"), indent=2)
        _kv(lines, "Status", run.get("status"), indent=2)
        if run.get("reason"):
            _kv(lines, "Reason", run["reason"], indent=2)
        if run.get("resumed_from") is not None:
            _kv(lines, "Resumed at media byte", run["resumed_from"], indent=2)
        if run.get("bytes_secured") is not None:
            _kv(lines, "Media bytes secured", run["bytes_secured"], indent=2)
        hostinfo = run.get("host") or {}
        if hostinfo:
            _kv(lines, "Host", f"{hostinfo.get('hostname', '')} ({hostinfo.get('os', '')}), "
                               f"user {hostinfo.get('user', '')}", indent=2)
        tool = run.get("tool") or {}
        if tool:
            libs = ", ".join(f"{k} {v}" for k, v in (tool.get("libraries") or {}).items() if v)
            _kv(lines, "Tool", f"{tool.get('name', '')} {tool.get('version', '')} (Python "
                               f"{tool.get('python', '')}; {libs})", indent=2)
    lines += [_RULE, ""]


def _image_section(lines: list[str], record: LogRecord) -> None:
    lines.append("Image Information:")
    first = record.history[0].get("started") if record.history else None
    _kv(lines, "Acquisition started", first or record.started.isoformat())
    _kv(lines, "Acquisition finished", record.ended.isoformat())
    _kv(lines, "Media size", f"{record.media_size} bytes")
    _kv(lines, "Sector size", record.sector_size)
    for key in ("format", "compress", "segment_size", "split", "chunk_sectors", "retries"):
        if record.options.get(key) is not None:
            _kv(lines, key.replace("_", " ").capitalize(), record.options[key])
    if record.progress and record.progress.get("resumed_from") is not None:
        _kv(lines, "Resumed at media byte", record.progress["resumed_from"])
    if record.progress and record.progress.get("bytes_read") is not None:
        _kv(lines, "Media bytes imaged", record.progress["media_bytes_done"])
        _kv(lines, "Bytes read in this run", record.progress["bytes_read"])
        _kv(lines, "Read speed", f"{record.progress['bytes_per_second']} bytes/s")
        if record.progress.get("bytes_zero_filled"):
            _kv(lines, "Unreadable, zero-filled", f"{record.progress['bytes_zero_filled']} bytes")
    lines.append(" Files written:")
    for out in record.outputs:
        lines.append(f"  {out.path}  ({out.size} bytes)")
        for name, value in out.hashes.items():
            lines.append(f"    {name}: {value}")
    lines += [_RULE, ""]


def _errors_section(lines: list[str], ranges: Sequence[tuple[int, int]], sector_size: int) -> None:
    total = sum(c for _, c in ranges)
    lines.append(f"Read Errors: {total} unreadable sector(s), zero-filled in the image")
    for first, count in ranges:
        lines.append(f"  sectors {first}-{first + count - 1} ({count} sectors, "
                     f"bytes {first * sector_size}-{(first + count) * sector_size - 1})")
    lines += [_RULE, ""]


def _verification_section(lines: list[str], verification: dict[str, Any] | None) -> None:
    lines.append("Image Verification Results:")
    if verification is None:
        lines.append("  not verified (run with --verify, or 'bitwitness verify')")
    else:
        _kv(lines, "Verdict", verification.get("verdict"))
        for name, value in (verification.get("hashes") or {}).items():
            _kv(lines, f"{name.upper()} checksum", value)
        if verification.get("detail"):
            _kv(lines, "Detail", verification["detail"])
    lines.append("")
