"""Which case an image belongs to: an image inside ``CASE_DIR/evidence/ID/`` is evidence ``ID``.

Found by walking up from the image to the first folder holding ``case.yaml``; the image must lie
under that folder's ``evidence/<ID>/``. Images anywhere else belong to no case (no custody event).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bitwitness import casefolder


@dataclass(frozen=True)
class CaseLink:
    """The case root and evidence id of an image (``None`` fields when it has none)."""

    root: Path
    evidence_id: str


def find_case(image: Path) -> CaseLink | None:
    """The case ``image`` belongs to, by its location, or ``None``."""
    found = casefolder.evidence_of(image)
    return CaseLink(*found) if found is not None else None


def evidence_folder(link: CaseLink) -> Path:
    """``CASE/evidence/<ID>/``: where the item's records live (the image may sit deeper)."""
    return link.root / casefolder.EVIDENCE / link.evidence_id


def load_case(link: CaseLink) -> Any:
    """The :class:`bitwitness.case.Case` for ``link`` (raises CaseError when it is broken)."""
    from bitwitness.case import Case

    return Case.load(link.root)


def case_document(link: CaseLink | None) -> dict[str, Any] | None:
    """The ``case`` object of the acquisition log schema, or ``None``."""
    if link is None:
        return None
    case = load_case(link)
    return {"case_dir": str(link.root), "evidence_id": link.evidence_id,
            "fields": dict(case.fields)}


def record_event(link: CaseLink | None, action: str, details: dict[str, Any]) -> int | None:
    """Append a custody event when the image belongs to a case; its sequence number or None."""
    if link is None:
        return None
    event = load_case(link).record(action, evidence_id=link.evidence_id, details=details)
    return int(event.seq)
