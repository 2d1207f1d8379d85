"""What verification produces: verdicts and frozen records, built once and rendered elsewhere.

Every outcome a court may ask about is a field here, not a line of text: which hash came from
which log, what was computed, which chunks are bad (as media offsets and sector ranges), which
sectors were unreadable at acquisition, where the image first differs from its source, and
whether a second, independent reader (libewf) agrees. The CLI, the JSON output, the custody log
and the report are all built from :class:`ImageVerification`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TypeAlias

from bitwitness.ewf import ChunkProblem
from bitwitness.images.checks import ContainerCheck
from bitwitness.images.truncation import Truncation
from bitwitness.verdict import Verdict

__all__ = ["AgainstResult", "BadChunk", "HashComparison", "HashReference", "ImageVerification",
           "Match", "ReaderCheck", "SectorRange", "SizeCheck", "Verdict", "scope_key"]


class Match(StrEnum):
    """The outcome of comparing one recorded hash."""

    MATCH = "match"
    MISMATCH = "mismatch"
    NOT_COMPUTED = "not-computed"  #: the scope could not be hashed (reason given)


@dataclass(frozen=True)
class HashReference:
    """One recorded hash and where it was recorded.

    ``scope`` says what the hash covers, for people: ``"media"``, ``"file x.001"``,
    ``"sectors 0-2047"``. For machines, a media range is ``start``/``end`` (bytes, end
    exclusive) and a container file is ``file``; both ``None`` means the whole media.
    """

    source: str  #: "E01 stored hashes", "BASE.json", "md5sum sidecar", "dc3dd log", ...
    algorithm: str  #: "md5", "sha1" or "sha256"
    value: str  #: lower-case hex
    scope: str = "media"
    log: Path | None = None  #: the file the hash was read from (None: stored in the image)
    file: Path | None = None
    start: int | None = None
    end: int | None = None

    @property
    def key(self) -> tuple[str, str]:
        """What has to be computed to check this reference: (algorithm, scope key)."""
        return self.algorithm, scope_key(self.file, self.start, self.end)


def scope_key(file: Path | None, start: int | None, end: int | None) -> str:
    """A stable key for what a hash covers (used to compute each scope once)."""
    if file is not None:
        return f"file:{file}"
    if start is not None and end is not None:
        return f"range:{start}-{end}"
    return "media"


@dataclass(frozen=True)
class HashComparison:
    """A recorded hash against the one computed now."""

    reference: HashReference
    computed: str | None
    match: Match
    reason: str = ""  #: why it could not be computed, when ``match`` is NOT_COMPUTED


@dataclass(frozen=True)
class SizeCheck:
    """A media size recorded at acquisition against the size found now."""

    source: str
    expected: int
    actual: int

    @property
    def ok(self) -> bool:
        return self.expected == self.actual


@dataclass(frozen=True)
class SectorRange:
    """Sectors ``first``..``last`` (inclusive); ``media_offset``/``sector_count`` are derived
    (and stored, so that JSON and reports carry them too)."""

    first_sector: int
    last_sector: int
    sector_size: int
    media_offset: int = field(init=False)
    sector_count: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "media_offset", self.first_sector * self.sector_size)
        object.__setattr__(self, "sector_count", self.last_sector - self.first_sector + 1)

    def __str__(self) -> str:
        return f"sectors {self.first_sector}-{self.last_sector}"


#: A chunk of an E01 that fails its Adler-32 or does not inflate (read as zeros). It is the EWF
#: reader's own record, not a copy, so the two can never drift apart; the verify API keeps the name.
BadChunk: TypeAlias = ChunkProblem


@dataclass(frozen=True)
class AgainstResult:
    """Dual verification: the image compared byte for byte with its source, re-read now."""

    source: Path
    source_size: int
    compared_bytes: int
    identical: bool
    first_difference: SectorRange | None = None  #: the first run of differing sectors
    differing_sectors: int = 0
    note: str = ""


@dataclass(frozen=True)
class ReaderCheck:
    """The second pass through an independent implementation: libewf (pyewf) for EWF sets, the
    format's second reader (libvhdi, libvmdk, QEMU) for the other containers."""

    reader: str  #: "pyewf <version>", "libvmdk <version>", "qemu-nbd <version>"
    media_size: int | None
    hashes: dict[str, str]
    stored_hashes: dict[str, str]  #: the stored hashes as libewf reads them (EWF only)
    agree: bool  #: everything the second reader computed and read equals the first's
    differences: tuple[str, ...] = ()
    error: str = ""


@dataclass(frozen=True)
class ImageVerification:
    """Everything found about one image; ``verdict`` is the one word that sums it up."""

    image: Path
    format: str
    files: tuple[Path, ...]
    media_size: int
    sector_size: int
    verdict: Verdict
    computed: dict[str, str]  #: media hashes computed now, algorithm -> hex
    comparisons: tuple[HashComparison, ...] = ()
    size_checks: tuple[SizeCheck, ...] = ()
    bad_chunks: tuple[BadChunk, ...] = ()
    corrupt_ranges: tuple[SectorRange, ...] = ()  #: bad chunks merged into sector ranges
    #: files cut short (their tables map data past their end): what each holds and needs
    truncated: tuple[Truncation, ...] = ()
    #: the media sectors whose data lies past the end of a file cut short, merged
    missing_ranges: tuple[SectorRange, ...] = ()
    acquisition_errors: tuple[SectorRange, ...] = ()  #: unreadable at acquisition (recorded)
    against: AgainstResult | None = None
    libewf: ReaderCheck | None = None  #: the libewf pass of an E01 set
    second_reader: ReaderCheck | None = None  #: the second reader of any other container
    container_checks: tuple[ContainerCheck, ...] = ()  #: what the container records, checked
    damaged_sections: tuple[str, ...] = ()  #: E01 sections that fail their checksum or decode
    problems: tuple[str, ...] = ()  #: why the verdict is not VERIFIED, in words
    notes: tuple[str, ...] = ()  #: worth knowing, not a failure (ignored logs, ...)
    logs: tuple[Path, ...] = ()  #: every hash log that was read
    started: str = ""  #: UTC ISO-8601
    ended: str = ""
    duration_seconds: float = 0.0
    bytes_read: int = 0
    stored: dict[str, str] = field(default_factory=dict)  #: hashes stored in the image (E01)

    @property
    def ok(self) -> bool:
        """True only for VERIFIED with both readers agreeing (when a second reader was asked)."""
        return self.verdict is Verdict.VERIFIED and all(
            r is None or r.agree for r in (self.libewf, self.second_reader))
