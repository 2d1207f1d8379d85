"""The report model: everything a chain-of-custody report says, as frozen records.

:mod:`bitwitness.report.gather` builds one :class:`ReportData` from a case folder; the renderers
(:mod:`~bitwitness.report.pdf`, :mod:`~bitwitness.report.html`,
:mod:`~bitwitness.report.json_report`) only lay it out. Keeping the facts in one place is what
makes the three formats say the same thing: a renderer never reads the case on its own.

Values that come from files written by other parts (acquisition logs, custody details) are kept
as the plain strings, numbers and mappings found there; a missing fact is ``None`` or empty,
never invented.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Final

from bitwitness.templates import REPORT_SECTIONS, ReportSettings

#: Version of the JSON report document; bump the number when a key changes meaning.
SCHEMA: Final = "bitwitness.report/1"

#: Sections that are shown per evidence item, grouped under each item's heading in the order the
#: template lists them (the others are case-wide and appear where the template lists them).
ITEM_SECTIONS: Final[tuple[str, ...]] = (
    "evidence", "acquisition", "hashes", "read-errors", "verification", "exports",
)


class Integrity(StrEnum):
    """State of the custody log's hash chain."""

    INTACT = "intact"
    TAMPERED = "tampered"
    MISSING = "missing"


@dataclass(frozen=True)
class Field:
    """One case field as the template labels it (``key`` as stored, ``label`` for people)."""

    key: str
    label: str
    value: str


@dataclass(frozen=True)
class HashValue:
    algorithm: str
    value: str


@dataclass(frozen=True)
class SourceFacts:
    """The evidence source as the acquisition saw it (device or file)."""

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
    hpa_checked: bool | None = None
    hpa_present: bool | None = None
    hpa_detail: str = ""
    image_format: str = ""  #: the source's container format when it was an image (``ewf``, ...)
    #: the state of that image read when not its current one (a QCOW2 internal snapshot)
    image_state: str = ""
    backing_file: str = ""  #: a loop device's backing file ("" for none)
    readonly_set: bool | None = None  #: the kernel read-only flag was set for the acquisition
    readonly_was: bool | None = None  #: it was already set before
    readonly_restored: bool | None = None
    readonly_detail: str = ""
    mounts: tuple[str, ...] = ()  #: "DEVICE on MOUNTPOINT (FSTYPE, read-write|read-only)"

    @property
    def readonly_state(self) -> str:
        """The kernel read-only flag in one phrase (devices only; files are opened O_RDONLY)."""
        if self.readonly_set is None:
            return "-"
        if not self.readonly_set:
            if self.kind == "file":
                return "not applicable (a file, opened read-only)"
            state = "not set"
        elif self.readonly_was:
            state = "set (it was already set before the acquisition)"
        else:
            state = "set for the acquisition" + (
                ", restored afterwards" if self.readonly_restored else "")
        detail = self.readonly_detail
        return state + (f" ({detail})" if detail and detail not in state else "")

    @property
    def mount_state(self) -> str:
        return "; ".join(self.mounts) if self.mounts else "not mounted"

    @property
    def hpa_state(self) -> str:
        """One phrase for people: checked or not, present or not."""
        if not self.hpa_checked:
            return "not checked" + (f" ({self.hpa_detail})" if self.hpa_detail else "")
        state = {True: "present", False: "not present", None: "unknown"}[self.hpa_present]
        return state + (f" ({self.hpa_detail})" if self.hpa_detail else "")


@dataclass(frozen=True)
class OutputFile:
    path: str
    size: int | None
    hashes: tuple[HashValue, ...] = ()
    role: str = "image"  #: "image" (part of the image set) or "sidecar" (a hash file beside it)


@dataclass(frozen=True)
class ErrorRange:
    first_sector: int
    sector_count: int


@dataclass(frozen=True)
class Acquisition:
    """One acquisition log (``BASE.json``, schema ``bitwitness.acquisition/1``)."""

    log_path: str
    operation: str = ""
    status: str = ""
    error: str | None = None
    tool_name: str = ""
    tool_version: str = ""
    python: str = ""
    libraries: tuple[tuple[str, str], ...] = ()
    hostname: str = ""
    host_os: str = ""
    user: str = ""
    started: datetime | None = None
    ended: datetime | None = None
    duration_seconds: float | None = None
    options: tuple[tuple[str, str], ...] = ()
    media_size: int | None = None
    media_sector_size: int | None = None
    media_sectors: int | None = None
    media_hashes: tuple[HashValue, ...] = ()
    source_hashes: tuple[HashValue, ...] = ()
    source_hashed_size: int | None = None
    outputs: tuple[OutputFile, ...] = ()
    read_errors: tuple[ErrorRange, ...] = ()
    verification_verdict: str | None = None
    verification_hashes: tuple[HashValue, ...] = ()
    description: str = ""
    notes: str = ""
    write_blocker: str = ""
    metadata: tuple[tuple[str, str], ...] = ()  #: case number, examiner, ... as recorded
    runs: tuple[Run, ...] = ()  #: every run of this acquisition, oldest first


@dataclass(frozen=True)
class Run:
    """One run of an acquisition (the first, then each resume), as its log records it."""

    number: int
    started: datetime | None
    ended: datetime | None
    status: str
    reason: str = ""  #: why it stopped (interruption, error)
    bytes_secured: int | None = None  #: media bytes written and hashed when it ended
    resumed_from: int | None = None
    host: str = ""
    tool: str = ""
    libraries: str = ""


@dataclass(frozen=True)
class CustodyEntry:
    """One line of the custody log, as recorded (``details`` flattened to text pairs)."""

    seq: int | None
    time: datetime | None
    actor: str
    action: str
    evidence_id: str | None
    details: tuple[tuple[str, str], ...] = ()
    line: int | None = None  # 1-based line number in custody.jsonl
    suspect: bool = False  # at or after the first line that fails the integrity check


@dataclass(frozen=True)
class Verification:
    """A ``verify`` custody event: when, by whom, the verdict and what was compared.

    ``suspect`` is the timeline's mark carried over: a verdict recorded in the damaged part of the
    custody log is shown as UNRELIABLE wherever it appears (section, summary, timeline).
    """

    time: datetime | None
    actor: str
    evidence_id: str | None
    verdict: str
    target: str = ""
    hashes: tuple[HashValue, ...] = ()
    details: tuple[tuple[str, str], ...] = ()
    line: int | None = None  # 1-based line of its custody event
    suspect: bool = False  # recorded at or after the custody log's first bad line: UNRELIABLE


@dataclass(frozen=True)
class Export:
    """An ``export`` custody event and its manifest.

    ``manifest_sha256`` is computed now from the file; ``recorded_sha256`` is what the event
    recorded (if it did). ``manifest_state`` says whether they agree: ``matches``, ``differs``,
    ``missing`` (manifest gone), ``unrecorded`` (nothing to compare against) or ``none``.
    """

    time: datetime | None
    actor: str
    evidence_id: str | None
    manifest: str
    manifest_sha256: str | None
    recorded_sha256: str | None
    manifest_state: str
    details: tuple[tuple[str, str], ...] = ()
    line: int | None = None  # 1-based line of its custody event
    suspect: bool = False  # recorded at or after the custody log's first bad line: UNRELIABLE
    files: tuple[ExportedFile, ...] = ()  #: from the manifest, when it matches its record
    filesystem: str = ""  #: the file system exported from, as the manifest names it ("fat12")


@dataclass(frozen=True)
class ExportedFile:
    """One file an export wrote, as its manifest lists it."""

    source: str  #: path inside the evidence's file system, as the manifest spells it (``\\xNN``)
    target: str
    size: int | None
    hashes: tuple[HashValue, ...] = ()
    inode: str = ""
    deleted: bool = False
    modified: datetime | None = None
    accessed: datetime | None = None
    changed: datetime | None = None
    born: datetime | None = None
    kind: str = ""  #: "file", "link", "virtual", ... (the manifest's kind; "" when it has none)
    #: the path's exact bytes in hex when it is not valid UTF-8 ("" otherwise): ``source`` then
    #: spells each undecodable byte ``\\xNN``, which a name holding those four characters
    #: literally also reads as (ext4 ``x\\xffy`` and ``x<0xFF>y``)
    source_hex: str = ""

    @property
    def source_name(self) -> str:
        """The path as the file system stored it (undecodable bytes as surrogate escapes)."""
        if not self.source_hex:
            return self.source
        return bytes.fromhex(self.source_hex).decode("utf-8", "surrogateescape")


@dataclass(frozen=True)
class EvidenceItem:
    evidence_id: str
    folder: str
    description: str = ""
    source: SourceFacts | None = None
    acquisition: Acquisition | None = None
    problems: tuple[str, ...] = ()  # e.g. an unreadable acquisition log
    signatures: tuple[SignatureLine, ...] = ()  # the acquisition logs' detached signatures


@dataclass(frozen=True)
class SignatureLine:
    """A signature check as one sentence; ``ok`` False for an invalid signature."""

    text: str
    ok: bool = True


@dataclass(frozen=True)
class IntegrityCheck:
    state: Integrity
    events: int
    first_bad_line: int | None = None
    reason: str | None = None
    log_path: str = ""
    head: str | None = None  # SHA-256 of the last line: pins the history up to this report
    warnings: tuple[str, ...] = ()
    case_file: str = "unrecorded"  # case.yaml against its hash at creation: matches/differs
    signer: str | None = None  # who signed the custody anchor (a trusted key), if signed
    acknowledged: tuple[str, ...] = ()  # breaks an examiner acknowledged, as sentences
    acknowledged_ranges: tuple[tuple[int, int], ...] = ()  # (first bad line, acknowledgement)
    bad_signatures: tuple[str, ...] = ()  # signatures or timestamps that do not verify
    timestamped: str | None = None  # time of the newest verified TSA token on the anchor
    earlier_reports: tuple[str, ...] = ()  # signature and timestamp checks of earlier reports

    @property
    def ok(self) -> bool:
        return (self.state is Integrity.INTACT and self.case_file != "differs"
                and not self.bad_signatures)

    def statement(self) -> str:
        """The sentence every format puts first: plain words, no jargon."""
        text = self._log_statement()
        if self.case_file == "differs":
            text += (" WARNING: the case file case.yaml has been CHANGED since the case was "
                     "created (its SHA-256 differs from the one recorded then).")
        if self.state is Integrity.INTACT and self.signer:
            text += f" The log's anchor is signed by {self.signer}."
        if self.state is Integrity.INTACT and self.timestamped:
            text += (f" Its history up to {self.timestamped} (UTC) is dated by a trusted "
                     "timestamp.")
        for bad in self.bad_signatures:
            text += f" WARNING: {bad}."
        return text

    def _log_statement(self) -> str:
        if self.state is Integrity.INTACT and self.acknowledged:
            return (f"Custody log integrity: BROKEN AND ACKNOWLEDGED. The {self.events} entries "
                    f"are chained by SHA-256 except at {len(self.acknowledged)} break(s) the "
                    "examiner recorded as acknowledged; entries from a break up to its "
                    "acknowledgement cannot be relied upon, later ones are intact.")
        if self.state is Integrity.INTACT:
            return (f"Custody log integrity: INTACT. All {self.events} entries are chained by "
                    "SHA-256 and none has been altered, removed or reordered.")
        if self.state is Integrity.MISSING:
            return "WARNING: the custody log is MISSING. The chain of custody cannot be shown."
        where = f" at line {self.first_bad_line}" if self.first_bad_line else ""
        why = f" ({self.reason})" if self.reason else ""
        return (f"WARNING: the custody log has been TAMPERED WITH or damaged{where}{why}. "
                "Entries from that line on cannot be relied upon.")


@dataclass(frozen=True)
class ReportData:
    """Everything one report states. Frozen: the three renderers read the same facts.

    Verifications and exports are listed case-wide (in custody-log order); renderers group them
    under their evidence item with :meth:`verifications_of` / :meth:`exports_of`, and those that
    name no known item under :meth:`unassigned`.
    """

    generated: datetime
    tool_version: str
    case_root: str
    case_number: str
    examiner: str
    template: str
    settings: ReportSettings
    fields: tuple[Field, ...]
    evidence: tuple[EvidenceItem, ...]
    custody: tuple[CustodyEntry, ...]
    integrity: IntegrityCheck
    verifications: tuple[Verification, ...] = ()
    exports: tuple[Export, ...] = ()
    evidence_filter: str | None = None

    def shows(self, section: str) -> bool:
        """Whether the template asks for ``section``; ``exports`` follows ``verification`` for
        templates written before it had a name of its own."""
        sections = self.settings.sections
        if section == "exports" and "exports" not in REPORT_SECTIONS:
            return "verification" in sections
        return section in sections

    def verifications_of(self, evidence_id: str | None) -> tuple[Verification, ...]:
        return tuple(v for v in self.verifications if v.evidence_id == evidence_id)

    def exports_of(self, evidence_id: str | None) -> tuple[Export, ...]:
        return tuple(e for e in self.exports if e.evidence_id == evidence_id)

    def unassigned(self) -> tuple[tuple[Verification, ...], tuple[Export, ...]]:
        """Verifications and exports that name no evidence item of this report."""
        known = {item.evidence_id for item in self.evidence}
        return (tuple(v for v in self.verifications if v.evidence_id not in known),
                tuple(e for e in self.exports if e.evidence_id not in known))
