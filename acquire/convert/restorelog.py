"""The restore log: ``BASE.json`` (schema ``bitwitness.acquisition/1``, operation ``restore``)
and ``BASE.txt``, written like an acquisition's.

Where: a restore target is a device or someone else's file, so the log cannot go "next to the
output". It goes where the evidence's own records are, and never onto the target:

* ``--log BASE`` when given (``BASE.json``, ``BASE.txt``);
* for an image inside a case, ``CASE/evidence/<ID>/restore-logs/<image name>.restore-<UTC>``:
  a subfolder, so that ``Case.evidence_items`` (which reads the top-level ``*.json``) never takes
  a restore log for the item's acquisition record;
* otherwise next to the image: ``<image name>.restore-<UTC>`` (``verify`` only reads logs named
  exactly ``<image>.json``, so a restore log is never taken for a hash record of the image).

A log that exists is never replaced; a folder that cannot take the log (read-only mount, no
permission, or marked read-only by its mode bits, which even root respects here: evidence
folders are often kept that way), or a log that would lie on the target device, is a refusal
before anything is written.

What: the common acquisition-log document (:func:`bitwitness.acquire.logs.to_document`: tool and
library versions, host, start/end UTC, status, error, the image as ``source``, the written media's
size and hashes as ``media``, unreadable image sectors as ``read_errors``, the read-back as
``verification``, ``progress.media_bytes_done`` = bytes written) plus two additive objects,
``image`` (files, format, the image's recorded hashes and how the written media compares with each)
and ``target`` (path, kind, size, device model/serial/vendor/transport, bytes written).
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from bitwitness import TOOL_NAME, __version__
from bitwitness.acquire.convert.casework import CaseLink, evidence_folder
from bitwitness.acquire.convert.references import MediaReference
from bitwitness.acquire.logs import (
    RESERVE,
    LogRecord,
    Status,
    host_facts,
    log_paths,
    to_document,
)
from bitwitness.acquire.source import HpaInfo, SourceFacts
from bitwitness.errors import UsageError
from bitwitness.fileio import fsync_path, write_in_place

#: Subfolder of a case's evidence folder that holds restore logs.
LOG_FOLDER = "restore-logs"


class RestoreLogError(UsageError):
    """The restore log cannot be written where asked (exit 2): nothing was written anywhere."""


@dataclass(frozen=True)
class TargetFacts:
    """What the log says about the target, as found before the restore."""

    path: str
    kind: str  #: "device" or "file"
    size: int  #: bytes before the restore (a new file: 0)
    existed: bool = True
    logical_sector_size: int = 512
    physical_sector_size: int = 512
    model: str = ""
    serial: str = ""
    vendor: str = ""
    transport: str = ""
    removable: bool = False
    hpa: HpaInfo = field(default_factory=HpaInfo)
    backing_file: str = ""  #: a loop device: the file behind it

    def describe(self) -> str:
        """One line for the confirmation question: what is about to be overwritten."""
        if self.kind != "device":
            return f"file, {self.size} bytes" if self.existed else "new file"
        named = " ".join(x for x in (self.vendor, self.model) if x) or "device"
        serial = f", serial {self.serial}" if self.serial else ""
        return f"{named}{serial}, {self.size} bytes"


def describe_target(target: Path, kind: str) -> TargetFacts:
    """The target's facts (a device's from sysfs/udev, read-only; its kernel flag untouched)."""
    if kind != "device":
        existed = target.exists()
        return TargetFacts(str(target), "file", target.stat().st_size if existed else 0, existed)
    from bitwitness.acquire.source import open_source

    source = open_source(target, set_readonly=False)
    try:
        facts: SourceFacts = source.facts
    finally:
        source.close()
    return TargetFacts(
        path=str(target), kind="device", size=facts.size,
        logical_sector_size=facts.logical_sector_size,
        physical_sector_size=facts.physical_sector_size, model=facts.model, serial=facts.serial,
        vendor=facts.vendor, transport=facts.transport, removable=facts.removable, hpa=facts.hpa,
        backing_file=facts.device.backing_file if facts.device is not None else "")


@dataclass(frozen=True)
class RestoreRecord:
    """Everything one restore log says; rendered to JSON and text, never scraped back."""

    status: Status
    error: str | None
    started: datetime
    ended: datetime
    image: Path
    files: tuple[Path, ...]
    source: SourceFacts  #: the image, opened read-only (kind "image")
    target: TargetFacts
    media_size: int
    sector_size: int
    options: dict[str, Any]
    hashes: dict[str, str] = field(default_factory=dict)  #: of the media as written
    references: tuple[MediaReference, ...] = ()
    bytes_written: int | None = None  #: None: the run never ended (preliminary log)
    read_errors: tuple[tuple[int, int], ...] = ()  #: image sectors zero-filled on the target
    verification: dict[str, Any] | None = None  #: --verify: the target read back
    case: dict[str, Any] | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()


def default_log_base(image: Path, link: CaseLink | None, started: datetime) -> Path:
    """Where the log goes without ``--log`` (see the module docstring); never an existing name."""
    folder = evidence_folder(link) / LOG_FOLDER if link else image.absolute().parent
    stem = f"{image.name}.restore-{started.strftime('%Y%m%dT%H%M%SZ')}"
    base, n = folder / stem, 2
    while any(p.exists() for p in log_paths(base)):
        base, n = folder / f"{stem}-{n}", n + 1
    return base


def _existing_ancestor(path: Path) -> Path:
    current = path.absolute()
    while not current.exists() and current != current.parent:
        current = current.parent
    return current


def check_log_base(base: Path, *, target: Path, kind: str, files: list[Path],
                   explicit: bool) -> None:
    """Refuse (:class:`RestoreLogError`) a log that cannot be written safely, before anything is."""
    if explicit and not base.parent.is_dir():
        raise RestoreLogError(f"--log: folder {base.parent} does not exist")
    holder = _existing_ancestor(base.parent)
    hint = "" if explicit else "; give --log BASE in a writable folder"
    if not holder.is_dir() or not os.access(holder, os.W_OK):
        raise RestoreLogError(f"cannot write the restore log in {base.parent} "
                              f"(not writable){hint}")
    if not holder.stat().st_mode & 0o222:  # root may write anyway; a marked folder is respected
        raise RestoreLogError(f"{holder} is marked read-only (no write permission for anyone); "
                              f"the restore log is not written there{hint}")
    for path in log_paths(base):
        if path.exists() or path.is_symlink():
            raise RestoreLogError(f"{path} already exists; a log is never replaced "
                                  "(choose another --log BASE)")
        for other in (target, *files):
            if path.absolute() == other.absolute():
                raise RestoreLogError(f"the log {path} would be {other}; choose another --log")
    if kind == "device":
        from bitwitness.acquire.devices import related_devnums

        if holder.stat().st_dev in related_devnums(target.stat().st_rdev):
            raise RestoreLogError(f"the log folder {base.parent} lies on the target {target}, "
                                  "which the restore overwrites; give --log BASE elsewhere")


# --- rendering ---------------------------------------------------------------------------------


def _ref_doc(check: MediaReference) -> dict[str, Any]:
    return {"source": check.source, "algorithm": check.algorithm, "expected": check.expected,
            "computed": check.computed, "match": check.match}


def document(record: RestoreRecord) -> dict[str, Any]:
    """The ``BASE.json`` document: the acquisition schema's keys, then ``image`` and ``target``."""
    progress = None if record.bytes_written is None else {
        "media_bytes_done": record.bytes_written, "resumed_from": None}
    common = LogRecord(
        operation="restore", status=record.status, error=record.error, started=record.started,
        ended=record.ended, source=record.source, options=record.options,
        media_size=record.media_size, sector_size=record.sector_size, hashes=record.hashes,
        read_errors=record.read_errors, verification=record.verification, case=record.case,
        progress=progress, warnings=record.warnings, metadata=record.metadata)
    doc = to_document(common)
    doc["image"] = {"path": str(record.image), "files": [str(f) for f in record.files],
                    "format": record.source.image_format, "media_size": record.media_size,
                    "sector_size": record.sector_size,
                    "recorded_hashes": [_ref_doc(c) for c in record.references]}
    t = record.target
    doc["target"] = {
        "path": t.path, "kind": t.kind, "size": t.size, "existed": t.existed,
        "logical_sector_size": t.logical_sector_size,
        "physical_sector_size": t.physical_sector_size, "model": t.model, "serial": t.serial,
        "vendor": t.vendor, "transport": t.transport, "removable": t.removable,
        "hpa": {"checked": t.hpa.checked, "present": t.hpa.present, "detail": t.hpa.detail},
        "backing_file": t.backing_file, "bytes_written": record.bytes_written}
    return doc


_RULE = "-" * 78


def _kv(lines: list[str], label: str, value: object, indent: int = 1) -> None:
    lines.append(f"{' ' * indent}{label + ':':<30}{value}")


def render_text(record: RestoreRecord) -> str:
    """The examiner's printed restore report (``BASE.txt``)."""
    lines = [f"Created by {TOOL_NAME} {__version__}", ""]
    for section in (_run_section, _image_section, _target_section, _errors_section,
                    _verification_section):
        section(lines, record)
        lines += [_RULE, ""]
    lines.append(f"Status: {record.status.value.upper()}")
    if record.error:
        lines.append(f"Error: {record.error}")
    lines += [f"Warning: {w}" for w in record.warnings]
    return "\n".join(lines) + "\n"


def _run_section(lines: list[str], record: RestoreRecord) -> None:
    host = host_facts()
    lines.append("Restore:")
    _kv(lines, "Operation", "restore (an image's media written onto a target)")
    _kv(lines, "Host", f"{host['hostname']} ({host['os']}), user {host['user']}")
    _kv(lines, "Started", record.started.isoformat())
    _kv(lines, "Ended", record.ended.isoformat())
    if record.case:
        _kv(lines, "Case folder", record.case.get("case_dir", ""))
        _kv(lines, "Evidence ID", record.case.get("evidence_id", ""))
    for key, value in record.metadata.items():
        _kv(lines, f"Image {key.replace('_', ' ')}", value)


def _image_section(lines: list[str], record: RestoreRecord) -> None:
    lines.append("Source image:")
    _kv(lines, "Image", record.image)
    for f in record.files:
        _kv(lines, "File", f, indent=2)
    _kv(lines, "Format", record.source.image_format)
    if record.source.image_state:
        _kv(lines, "State", record.source.image_state)
    _kv(lines, "Media size", f"{record.media_size} bytes ({record.sector_size}-byte sectors)")
    lines.append(" [Hashes recorded for the image's media]")
    for check in record.references:
        verdict = ("not compared" if check.computed is None
                   else "match" if check.match else "MISMATCH")
        _kv(lines, f"{check.algorithm.upper()} ({check.source})", f"{check.expected} {verdict}",
            indent=2)
    if not record.references:
        lines.append("  none (the written media cannot be checked against a record)")


def _target_section(lines: list[str], record: RestoreRecord) -> None:
    t = record.target
    lines.append("Target:")
    _kv(lines, "Target", t.path)
    _kv(lines, "Target type", t.kind if t.existed else f"{t.kind} (created)")
    _kv(lines, "Size before restore", f"{t.size} bytes")
    if t.kind == "device":
        for label, value in (("Vendor", t.vendor), ("Model", t.model), ("Serial number", t.serial),
                             ("Transport", t.transport),
                             ("Removable", "yes" if t.removable else "no"),
                             ("Bytes per sector (logical)", t.logical_sector_size),
                             ("Bytes per sector (physical)", t.physical_sector_size),
                             ("Host Protected Area", t.hpa.detail or "not checked")):
            _kv(lines, label, value)
        if t.backing_file:
            _kv(lines, "Loop device over", t.backing_file)
    _kv(lines, "Bytes written", "unknown (the run did not end)" if record.bytes_written is None
        else record.bytes_written)
    lines.append(" [Hashes of the media as written]")
    for name, value in record.hashes.items():
        _kv(lines, f"{name.upper()} checksum", value, indent=2)
    if not record.hashes:
        lines.append("  none (the media was not written in full)")


def _errors_section(lines: list[str], record: RestoreRecord) -> None:
    total = sum(c for _, c in record.read_errors)
    lines.append(f"Unreadable image sectors: {total} (zeros written in their place)")
    for first, count in record.read_errors:
        lines.append(f"  sectors {first}-{first + count - 1} ({count} sectors)")


def _verification_section(lines: list[str], record: RestoreRecord) -> None:
    lines.append("Target Verification (read back):")
    if record.verification is None:
        lines.append("  not read back (run with --verify)")
        return
    _kv(lines, "Verdict", record.verification.get("verdict"))
    for name, value in (record.verification.get("hashes") or {}).items():
        _kv(lines, f"{name.upper()} checksum", value)
    if record.verification.get("detail"):
        _kv(lines, "Detail", record.verification["detail"])


def write_restore_logs(base: Path, record: RestoreRecord, *,
                       reserve: bool = False) -> tuple[Path, Path]:
    """Write ``BASE.json`` and ``BASE.txt``; ``reserve`` pads the preliminary pair so that the
    final rewrite needs no new space. Raises ``OSError`` when the folder cannot take them."""
    json_path, text_path = log_paths(base)
    base.parent.mkdir(parents=True, exist_ok=True)
    data = json.dumps(document(record), indent=2, ensure_ascii=False).encode() + b"\n"
    write_in_place(json_path, data, reserve=RESERVE if reserve else 0, regular_only=True)
    write_in_place(text_path, render_text(record).encode("utf-8"),
                   reserve=RESERVE if reserve else 0, regular_only=True)
    with contextlib.suppress(OSError):  # the folder entry too, where the file system allows it
        fsync_path(base.parent)
    return json_path, text_path
