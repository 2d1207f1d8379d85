"""Where a case folder keeps what: the names every part uses, and finding the case of a file.

Layout of ``CASE_DIR``::

    case.yaml        schema bitwitness.case/1: template (a full copy), fields, created, tool
    custody.jsonl    the custody log (see bitwitness.custody); custody.head is its anchor
    evidence/<ID>/   one folder per evidence item: images and their acquisition logs (BASE.json)
    exports/         files exported from evidence
    reports/         generated reports

Names and paths only: :class:`bitwitness.case.Case` reads and writes the folder, and code that
merely locates a case or a place in it (convert, restore, the browser, the demo) does so without
loading the case machinery (YAML, templates, the custody log).
"""

from __future__ import annotations

import re
from pathlib import Path

from bitwitness.errors import UsageError

CASE_FILE = "case.yaml"
CUSTODY_FILE = "custody.jsonl"
EVIDENCE = "evidence"
EXPORTS = "exports"
REPORTS = "reports"

_EVIDENCE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def check_evidence_id(evidence_id: str) -> str:
    """An evidence ID is a folder name: letters, digits, ``.``, ``_``, ``-``; at most 64."""
    if not _EVIDENCE_ID.fullmatch(evidence_id) or ".." in evidence_id:
        raise UsageError(f"bad evidence ID {evidence_id!r}: use letters, digits, '.', '_' and '-' "
                         "(starting with a letter or digit, at most 64)")
    return evidence_id


def evidence_folder(root: Path, evidence_id: str) -> Path:
    """``root/evidence/<ID>/`` (not created); the ID must be a safe folder name."""
    return root / EVIDENCE / check_evidence_id(evidence_id)


def case_root(path: Path) -> Path | None:
    """The case folder holding ``path``: its nearest parent with a case file, or ``None``."""
    for folder in path.absolute().parents:
        if (folder / CASE_FILE).is_file():
            return folder
    return None


def evidence_of(path: Path) -> tuple[Path, str] | None:
    """``(case root, evidence ID)`` for a file inside ``CASE_DIR/evidence/<ID>/`` (at any depth
    below it); ``None`` for a file anywhere else, in a case or not."""
    root = case_root(path)
    if root is None:
        return None
    try:
        inner = path.absolute().relative_to(root / EVIDENCE)
    except ValueError:
        return None
    return (root, inner.parts[0]) if len(inner.parts) >= 2 else None
