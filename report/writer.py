"""Writing report files and recording each one in the custody log.

The library half of ``bitwitness report``: choose the file names, refuse to replace existing files
(unless asked), render every requested format *before* writing any (so a missing font never leaves
half a set behind), write, hash what was written, and append one ``report`` custody event per file
with its format, path and SHA-256. A report over a tampered log is still written; appending to such
a log is refused by :class:`~bitwitness.custody.CustodyLog` (it would hide the damage), which is
returned as ``recorded=False`` with the reason, not raised.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC
from enum import StrEnum
from pathlib import Path

from bitwitness.errors import BitWitnessError, OutputExistsError, UsageError
from bitwitness.report.model import ReportData


class ReportFormat(StrEnum):
    PDF = "pdf"
    HTML = "html"
    JSON = "json"
    CASE = "case"    #: CASE/UCO JSON-LD
    DFXML = "dfxml"  #: Digital Forensics XML

    @property
    def extension(self) -> str:
        return {"case": "jsonld", "dfxml": "dfxml.xml"}.get(self.value, self.value)


#: What ``--format all`` writes: the documents people read, and the JSON report.
ALL_FORMATS = (ReportFormat.PDF, ReportFormat.HTML, ReportFormat.JSON)


@dataclass(frozen=True)
class WrittenReport:
    """One file written: where, its SHA-256, and whether the custody log recorded it."""

    format: ReportFormat
    path: Path
    size: int
    sha256: str
    recorded: bool
    custody_seq: int | None = None
    not_recorded_reason: str | None = None


def _renderer(fmt: ReportFormat) -> Callable[[ReportData], bytes]:
    if fmt is ReportFormat.PDF:
        from bitwitness.report.pdf import render_pdf

        return render_pdf
    if fmt is ReportFormat.HTML:
        from bitwitness.report.html import render_html

        return render_html
    if fmt is ReportFormat.CASE:
        from bitwitness.report.case_uco import render_case

        return render_case
    if fmt is ReportFormat.DFXML:
        from bitwitness.report.dfxml import render_dfxml

        return render_dfxml
    from bitwitness.report.json_report import render_json

    return render_json


def target_paths(formats: Sequence[ReportFormat], *, reports_dir: Path, output: Path | None,
                 data: ReportData) -> dict[ReportFormat, Path]:
    """Where each format goes.

    Default: ``reports_dir/report-<case>[-<evidence>]-<UTC timestamp>.<ext>``. With ``output`` and
    one format, exactly that path; with several formats ``output`` is a base name (a known
    extension on it is dropped) and each format adds its own.
    """
    if output is None:
        stamp = data.generated.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
        case = "".join(c if c.isalnum() or c in "._-" else "_" for c in data.case_number)
        scope = f"-{data.evidence_filter}" if data.evidence_filter else ""
        base = reports_dir / f"report-{case or 'case'}{scope}-{stamp}"
        return {f: base.with_name(f"{base.name}.{f.extension}") for f in formats}
    if len(formats) == 1:
        return {formats[0]: output}
    stem = output.name
    for f in ReportFormat:
        stem = stem.removesuffix(f".{f.extension}")
    return {f: output.with_name(f"{stem}.{f.extension}") for f in formats}


def write_reports(data: ReportData, targets: dict[ReportFormat, Path], *, overwrite: bool,
                  record: Callable[[ReportFormat, Path, str], int | None]) -> list[WrittenReport]:
    """Render all, then write all, then record each; ``record`` returns the custody seq.

    Raises :class:`OutputExistsError` before writing anything when a target exists and
    ``overwrite`` is false.
    """
    if not overwrite:
        for path in targets.values():
            if path.exists():
                raise OutputExistsError(path)
    for path in targets.values():
        if path.is_dir():
            raise UsageError(f"{path} is a folder; give a file name with -o")
    rendered = {fmt: _renderer(fmt)(data) for fmt in targets}
    written = []
    for fmt, path in targets.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        _write(path, rendered[fmt], overwrite=overwrite)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()  # what is on disk, re-read
        try:
            seq = record(fmt, path, digest)
        except BitWitnessError as exc:
            written.append(WrittenReport(fmt, path, path.stat().st_size, digest, False,
                                         not_recorded_reason=str(exc)))
            continue
        written.append(WrittenReport(fmt, path, path.stat().st_size, digest, True, seq))
    return written


def _write(path: Path, content: bytes, *, overwrite: bool) -> None:
    """Write through a temporary file and rename, so a reader never sees half a report; without
    ``overwrite`` the final link refuses an existing file even if one appeared meanwhile."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("xb") as fh:
            fh.write(content)
            fh.flush()
            os.fsync(fh.fileno())
        if overwrite:
            tmp.replace(path)
        else:
            try:
                os.link(tmp, path)
            except FileExistsError as exc:
                raise OutputExistsError(path) from exc
    finally:
        tmp.unlink(missing_ok=True)
