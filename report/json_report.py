"""The JSON report: everything in the model, machine-readable, schema ``bitwitness.report/1``.

Shape (keys are stable within a schema version): ``schema``, ``generated`` (UTC ISO-8601),
``tool``, ``case`` (root, number, examiner, template, fields, evidence_filter), ``settings``,
``integrity`` (first, so that a reader meets a tampered log before anything else, plus a
``statement`` in words), ``evidence`` (items with ``source`` and ``acquisition``),
``verifications``, ``exports`` and ``custody`` (the timeline). Hash lists become
``{"md5": ..., "sha1": ...}`` objects; label/value pairs become objects in their original order.
"""

from __future__ import annotations

import json
from dataclasses import fields, is_dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from bitwitness.report.model import SCHEMA, HashValue, ReportData

_PAIR_FIELDS = frozenset({"libraries", "options", "details", "metadata"})


def _plain(value: Any, name: str = "") -> Any:  # noqa: PLR0911 - one return per JSON kind
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, Enum):
        return value.value
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name), f.name) for f in fields(value)}
    if isinstance(value, tuple | list):
        if value and all(isinstance(v, HashValue) for v in value):
            return {h.algorithm: h.value for h in value}
        if name in _PAIR_FIELDS:
            return {str(k): v for k, v in value}
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def report_document(data: ReportData) -> dict[str, Any]:
    """The JSON document as plain Python values."""
    body = _plain(data)
    return {
        "schema": SCHEMA,
        "integrity": {**body["integrity"], "ok": data.integrity.ok,
                      "statement": data.integrity.statement()},
        "generated": body["generated"],
        "tool": {"name": "BitWitness", "version": data.tool_version},
        "case": {
            "root": data.case_root,
            "case_number": data.case_number,
            "examiner": data.examiner,
            "template": data.template,
            "fields": {f.key: {"label": f.label, "value": f.value} for f in data.fields},
            "evidence_filter": data.evidence_filter,
        },
        "settings": body["settings"],
        "evidence": body["evidence"],
        "verifications": body["verifications"],
        "exports": body["exports"],
        "custody": body["custody"],
    }


def render_json(data: ReportData) -> bytes:
    """The report as UTF-8 JSON (indented, non-ASCII kept as is)."""
    return (json.dumps(report_document(data), indent=2, ensure_ascii=False) + "\n").encode()
