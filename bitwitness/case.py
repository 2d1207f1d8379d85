"""Cases: a folder that holds the case file, the custody log and everything made for the case.

The folder's layout (which file and folder holds what) is in :mod:`bitwitness.casefolder`. The
template is copied into ``case.yaml`` so that a case reads the same years later, whatever happens
to the lab's template folder. The case-created event records the SHA-256 of ``case.yaml`` as
written, so an edit to the case file is evident too (:meth:`Case.case_file_check`).
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from bitwitness import TOOL_NAME, __version__, acquisitionlog
from bitwitness.casefolder import (
    CASE_FILE,
    CUSTODY_FILE,
    EVIDENCE,
    EXPORTS,
    REPORTS,
    check_evidence_id,
    evidence_folder,
)
from bitwitness.custody import CustodyAction, CustodyEvent, CustodyLog
from bitwitness.errors import CaseError, CustodyError, TemplateError
from bitwitness.hashing import file_sha256
from bitwitness.templates import CaseTemplate

SCHEMA = "bitwitness.case/1"


@dataclass(frozen=True)
class EvidenceItem:
    """One evidence folder. ``acquisition_log`` is its acquisition log (``BASE.json``)
    (the acquire one when there are several); ``logs`` are all of them, sorted by name."""

    id: str
    folder: Path
    acquisition_log: Path | None
    logs: tuple[Path, ...] = ()


@dataclass(frozen=True)
class CaseFileCheck:
    """Whether ``case.yaml`` still has the SHA-256 recorded when the case was created."""

    ok: bool | None          # None: nothing recorded to compare with
    expected: str | None
    actual: str | None


def _sha256(path: Path) -> str | None:
    """The file's SHA-256, or None when it cannot be read (the check then reports a mismatch)."""
    try:
        return file_sha256(path)
    except OSError:
        return None


def _acquisition_logs(folder: Path) -> list[tuple[Path, str]]:
    found = []
    for path in sorted(folder.glob("*.json")):
        try:
            found.append((path, acquisitionlog.load(path).operation))
        except acquisitionlog.LogFormatError:
            continue
    return found


def check_case_file(root: Path) -> CaseFileCheck:
    """Compare ``root/case.yaml`` with the SHA-256 recorded in the log's case-created event.

    Works without loading the case, so that a damaged case file can still be checked.
    """
    actual = _sha256(root / CASE_FILE)
    try:
        first = CustodyLog(root / CUSTODY_FILE).events(strict=False)[:1]
    except CustodyError:
        first = []
    if not first or first[0].action != CustodyAction.CASE_CREATED:
        return CaseFileCheck(None, None, actual)
    expected = first[0].details.get("case_file_sha256")
    if not isinstance(expected, str):
        return CaseFileCheck(None, None, actual)
    return CaseFileCheck(expected == actual, expected, actual)


class Case:
    """An open case. Create with :meth:`create`, open with :meth:`load`."""

    def __init__(self, root: Path, *, template: CaseTemplate, fields: dict[str, str],
                 created: str, tool_version: str) -> None:
        self.root = root
        self.template = template
        self.fields = fields
        self.created = created
        self.tool_version = tool_version

    # --- paths ---------------------------------------------------------------------------------

    @property
    def case_file(self) -> Path:
        return self.root / CASE_FILE

    @property
    def custody(self) -> CustodyLog:
        return CustodyLog(self.root / CUSTODY_FILE)

    @property
    def exports_dir(self) -> Path:
        return self.root / EXPORTS

    @property
    def reports_dir(self) -> Path:
        return self.root / REPORTS

    @property
    def examiner(self) -> str:
        """The default custody actor (every template has an ``examiner`` field)."""
        return self.fields.get("examiner", "")

    def evidence_dir(self, evidence_id: str) -> Path:
        """``root/evidence/<ID>/``, created on demand; the ID must be a safe folder name."""
        folder = evidence_folder(self.root, evidence_id)
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def evidence_items(self) -> list[EvidenceItem]:
        """The evidence folders, sorted by ID, each with its acquisition log(s) if any."""
        base = self.root / EVIDENCE
        if not base.is_dir():
            return []
        items = []
        for folder in sorted(p for p in base.iterdir() if p.is_dir()):
            logs = _acquisition_logs(folder)
            main = next((p for p, op in logs if op == "acquire"), logs[0][0] if logs else None)
            items.append(EvidenceItem(folder.name, folder, main, tuple(p for p, _ in logs)))
        return items

    # --- custody -------------------------------------------------------------------------------

    def record(self, action: str | CustodyAction, *, evidence_id: str | None = None,
               details: Mapping[str, Any] | None = None, actor: str | None = None) -> CustodyEvent:
        """Append one event to the case's custody log; ``actor`` defaults to the examiner."""
        if evidence_id is not None:
            check_evidence_id(evidence_id)
        return self.custody.append(action, actor=actor or self.examiner, evidence_id=evidence_id,
                                   details=details)

    def case_file_check(self) -> CaseFileCheck:
        """Compare ``case.yaml`` with the SHA-256 the case-created event recorded."""
        return check_case_file(self.root)

    # --- creating and loading ------------------------------------------------------------------

    @classmethod
    def create(cls, root: Path | str, template: CaseTemplate, values: Mapping[str, str]) -> Case:
        """Create a case folder; refuses an existing non-empty folder. Values are checked first.

        The folder is built under a temporary name beside ``root`` and renamed into place, so a
        failure never leaves half a case behind.
        """
        root = Path(root).absolute()
        fields = template.complete(values)
        if root.exists() and (not root.is_dir() or any(root.iterdir())):
            raise CaseError(f"{root} already exists and is not empty; a case is only created in a "
                            "new or empty folder")
        try:
            root.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CaseError(f"cannot create {root.parent}: {exc.strerror}") from exc
        created = datetime.now(UTC).isoformat(timespec="seconds")
        doc = {"schema": SCHEMA, "created": created,
               "tool": {"name": TOOL_NAME, "version": __version__},
               "template": {**template.to_dict(), "source": template.source}, "fields": fields}
        text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=100)
        try:
            staging = Path(tempfile.mkdtemp(prefix=f".{root.name}.", dir=root.parent))
        except OSError as exc:
            raise CaseError(f"cannot create a case in {root.parent}: {exc.strerror}") from exc
        try:
            (staging / CASE_FILE).write_text(text, encoding="utf-8")
            for sub in (EVIDENCE, EXPORTS, REPORTS):
                (staging / sub).mkdir()
            log = CustodyLog.create(staging / CUSTODY_FILE)
            log.append(CustodyAction.CASE_CREATED, actor=fields["examiner"], details={
                "case_dir": str(root), "template": template.name,
                "template_source": template.source,
                "case_file_sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
                "fields": fields})
            staging.chmod(0o755)
            staging.replace(root)  # rename(2) replaces an empty folder, never a full one
        except OSError as exc:
            shutil.rmtree(staging, ignore_errors=True)
            raise CaseError(f"cannot create the case {root}: {exc.strerror or exc}") from exc
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return cls.load(root)

    @classmethod
    def load(cls, path: Path | str) -> Case:
        """Open the case at ``path`` (its folder or ``case.yaml``); raises :class:`CaseError`."""
        root = Path(path).absolute()
        if root.name == CASE_FILE and root.is_file():
            root = root.parent
        case_file = root / CASE_FILE
        if not case_file.is_file():
            raise CaseError(f"{root} is not a BitWitness case folder (no {CASE_FILE})")
        try:
            doc = yaml.safe_load(case_file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise CaseError(f"{case_file} cannot be read: {' '.join(str(exc).split())}") from exc
        if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
            raise CaseError(f"{case_file} is not a {SCHEMA} case file")
        raw_template = doc.get("template")
        if not isinstance(raw_template, dict):
            raise CaseError(f"{case_file} has no template")
        raw_template = dict(raw_template)
        source = str(raw_template.pop("source", "built-in"))
        try:
            template = CaseTemplate.from_dict(raw_template, source=source)
        except TemplateError as exc:
            raise CaseError(f"{case_file}: {exc}") from exc
        raw_fields = doc.get("fields")
        if not isinstance(raw_fields, dict):
            raise CaseError(f"{case_file} has no fields")
        fields = {str(k): "" if v is None else str(v) for k, v in raw_fields.items()}
        tool = doc.get("tool")
        if not isinstance(tool, dict):
            tool = {}
        return cls(root, template=template, fields=fields, created=str(doc.get("created", "")),
                   tool_version=str(tool.get("version", "")))
