"""The one error tree of BitWitness and the exit codes it maps to.

Library code raises these; exactly one boundary (``bitwitness.cli.main``) turns them into a single
line on stderr and an exit code. Leaves carry data (paths, offsets, sector ranges, hashes) so that
callers can record them as outcomes instead of parsing messages.

Exit codes (documented in the README and in ``bitwitness --help``):

* 0 - success
* 1 - an evidence problem: hash mismatch, corrupt or incomplete image, unreadable sectors,
  broken custody log
* 2 - usage or input error: bad option, missing file, existing output, unknown format
* 3 - internal error (a bug in BitWitness; ``--debug`` shows the traceback)
* 130 - interrupted (Ctrl-C or SIGTERM); partial output is marked incomplete
"""

from __future__ import annotations

from enum import IntEnum
from pathlib import Path


class ExitCode(IntEnum):
    """Process exit status, the same for every command."""

    OK = 0
    EVIDENCE = 1
    USAGE = 2
    INTERNAL = 3
    INTERRUPTED = 130
    #: standard output or error lost its reader (``| head``): the shell's status for a
    #: process that SIGPIPE ended (128 + 13), as ``fls`` and coreutils end there
    OUTPUT_CLOSED = 141


class BitWitnessError(Exception):
    """Root of every error BitWitness raises on purpose."""

    exit_code: ExitCode = ExitCode.USAGE


# --- usage and input -------------------------------------------------------------------------


class UsageError(BitWitnessError):
    """The command was asked for something it cannot do (bad option, bad value)."""

    exit_code = ExitCode.USAGE


class InputError(UsageError):
    """An input file or device is missing, unreadable or not what was expected."""


class OutputExistsError(UsageError):
    """Refusing to overwrite existing output without ``--overwrite``."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        super().__init__(f"{self.path} already exists (use --overwrite to replace it)")


class UnsupportedFormatError(InputError):
    """No reader recognises the image."""


class NoReaderError(UnsupportedFormatError):
    """A part of the image (a VMDK SEsparse extent) that no reader here reads: refused as it
    is, the other readers of its format not tried (their errors would hide what it is)."""


class NoSecondReader(UnsupportedFormatError):  # noqa: N818 - reads as an outcome
    """The format's independent second reader exists but cannot read this image (a codec or a
    layout it does not implement); ``verify --second-reader`` notes the message instead of
    recording a disagreement that is only that reader's limit."""


class DestinationError(UsageError):
    """The destination cannot take the output: it lies on the source device, or it is full."""

    def __init__(self, message: str, *, path: Path | str | None = None) -> None:
        self.path = Path(path) if path is not None else None
        super().__init__(message)


class MountError(UsageError):
    """A mount point cannot be used (busy, stale, not a folder) or FUSE is not available."""


# --- sources ---------------------------------------------------------------------------------


class SourceError(BitWitnessError):
    """The evidence source (device or file) cannot be used as asked."""

    exit_code = ExitCode.USAGE


class SourceGoneError(SourceError):
    """The source went away while it was read (unplugged, a bridge reset): an evidence
    problem, not a usage one; what was read so far is kept for ``--resume``."""

    exit_code = ExitCode.EVIDENCE


class ReadError(SourceError):
    """A read from the source failed at a known offset (used for retries and fault injection)."""

    exit_code = ExitCode.EVIDENCE

    def __init__(self, offset: int, length: int, reason: str = "read error") -> None:
        self.offset = offset
        self.length = length
        self.reason = reason
        super().__init__(f"{reason} at byte offset {offset} (+{length} bytes)")


# --- image formats ---------------------------------------------------------------------------


class FormatError(BitWitnessError):
    """An image is damaged, incomplete or inconsistent: an evidence problem."""

    exit_code = ExitCode.EVIDENCE

    def __init__(self, message: str, *, path: Path | str | None = None) -> None:
        self.path = Path(path) if path is not None else None
        super().__init__(f"{self.path}: {message}" if self.path else message)


class CorruptImageError(FormatError):
    """Stored data fails its checksum or does not decode.

    ``offset`` is a byte offset inside ``path`` (the container file) when known;
    ``media_offset`` and ``sectors`` (first, last inclusive) locate the damage in the media.
    """

    def __init__(
        self,
        message: str,
        *,
        path: Path | str | None = None,
        offset: int | None = None,
        media_offset: int | None = None,
        sectors: tuple[int, int] | None = None,
    ) -> None:
        self.offset = offset
        self.media_offset = media_offset
        self.sectors = sectors
        where = []
        if offset is not None:
            where.append(f"file offset {offset}")
        if media_offset is not None:
            where.append(f"media offset {media_offset}")
        if sectors is not None:
            where.append(f"sectors {sectors[0]}-{sectors[1]}")
        detail = f" ({', '.join(where)})" if where else ""
        super().__init__(f"{message}{detail}", path=path)


class IncompleteImageError(FormatError):
    """The image was never finished (interrupted write, missing last section)."""


class MissingSegmentError(FormatError):
    """A segment of a multi-file image is missing."""


# --- verification ----------------------------------------------------------------------------


class VerificationError(BitWitnessError):
    """Verification found the evidence differs from what was recorded."""

    exit_code = ExitCode.EVIDENCE


class HashMismatchError(VerificationError):
    """A computed hash differs from the recorded one."""

    def __init__(self, algorithm: str, expected: str, computed: str, scope: str) -> None:
        self.algorithm = algorithm
        self.expected = expected
        self.computed = computed
        self.scope = scope
        super().__init__(
            f"{algorithm} mismatch for {scope}: expected {expected}, computed {computed}"
        )


# --- cases and custody -----------------------------------------------------------------------


class CaseError(BitWitnessError):
    """A case folder or case file is missing or invalid."""

    exit_code = ExitCode.USAGE


class TemplateError(CaseError):
    """A case template is unknown or invalid (the message names the file)."""


class CaseFieldError(CaseError):
    """Case field values are missing, unknown or fail their pattern; ``fields`` names them."""

    def __init__(self, message: str, *, fields: list[str] | tuple[str, ...] = ()) -> None:
        self.fields = tuple(fields)
        super().__init__(message)


class CustodyError(BitWitnessError):
    """The custody log is broken or has been tampered with: an evidence problem."""

    exit_code = ExitCode.EVIDENCE

    def __init__(self, message: str, *, line: int | None = None) -> None:
        self.line = line
        super().__init__(f"custody log line {line}: {message}" if line else message)


# --- file systems ----------------------------------------------------------------------------


class FileSystemError(BitWitnessError):
    """A file system or path inside an image cannot be opened (unknown, damaged, encrypted)."""

    exit_code = ExitCode.USAGE


class ContentReadError(FileSystemError):
    """A file's content could not be read where its file system puts it (its data maps outside
    the volume or the image, a damaged run): an evidence problem, not a usage one. The bytes
    before that point were given; the message names the byte of the file where reading
    stopped."""

    exit_code = ExitCode.EVIDENCE


class UnreadEvidenceError(BitWitnessError):
    """Part of the evidence a command walked could not be read (a damaged folder, an entry):
    what it wrote is all it could read, and incomplete."""

    exit_code = ExitCode.EVIDENCE


class NotRecoveredError(BitWitnessError):
    """Content asked for is not in the evidence any more (a deleted file whose inode was reused
    or cleared), or some files of an export could not be read; what was done is kept."""

    exit_code = ExitCode.EVIDENCE


# --- interruption ----------------------------------------------------------------------------


class Interrupted(BitWitnessError):  # noqa: N818 - reads as an outcome, like KeyboardInterrupt
    """The user or the system asked us to stop (Ctrl-C, SIGTERM)."""

    exit_code = ExitCode.INTERRUPTED
