"""The acquisition engine: :class:`AcquisitionRequest` in, :class:`AcquisitionResult` out.

Everything that can be refused is checked here before anything is written (existing output,
destination on the source device, bad options); refusals raise and leave no trace. The rest is the
order every job that writes an image follows (:mod:`bitwitness.acquire.runner`): preliminary logs
("failed: did not finish"), one pass that reads, hashes and writes
(:mod:`bitwitness.acquire.pipeline`), the output finished (E01 ``done``, raw renamed from
``.partial`` + sidecars) or, when interrupted or failed, left visibly unfinished, ``--verify``
through the verification engine, final logs (one per output set), then the custody event when
acquiring into a case. A failure after the preliminary logs raises, carrying the result.

The same engine converts images (``operation="convert"``, source an open ImageStream).
"""

from __future__ import annotations

import contextlib
import errno
import os
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bitwitness.acquire import guardrails
from bitwitness.acquire import resume as resuming
from bitwitness.acquire.directsink import DirectRawSink
from bitwitness.acquire.logs import (
    LogRecord,
    Status,
    earlier_runs,
    file_sha256,
    log_paths,
    write_logs,
)
from bitwitness.acquire.pipeline import (
    CHECKPOINT_EVERY,
    DEFAULT_BLOCK,
    CheckpointWait,
    Pipeline,
    PipelineOutcome,
    block_size_for,
    byte_ranges_to_sectors,
)
from bitwitness.acquire.retry import count_sectors
from bitwitness.acquire.runner import INTERRUPTED, JobResult, run_job
from bitwitness.acquire.sinks import EwfSink, ImageSink, OutputFile, Sink
from bitwitness.acquire.source import (
    FlagPlan,
    Source,
    SourceFacts,
    check_destination,
    open_source,
)
from bitwitness.acquire.verifying import Verification, verify_output
from bitwitness.acquisitionlog import AcquisitionLog
from bitwitness.errors import (
    BitWitnessError,
    DestinationError,
    OutputExistsError,
    SourceGoneError,
    UsageError,
)
from bitwitness.evidence_io import same_file
from bitwitness.ewf.options import DEFAULT_SEGMENT_SIZE
from bitwitness.hashing import DEFAULT_ALGORITHMS, hash_file, parse_algorithms
from bitwitness.progress import Mediator, ProgressTask
from bitwitness.stream import ImageStream
from bitwitness.verdict import Verdict

if TYPE_CHECKING:
    from bitwitness.case import Case

SECTOR_SIZES = (512, 1024, 2048, 4096)
METADATA_KEYS = ("case_number", "evidence_number", "description", "examiner", "notes",
                 "write_blocker")


class OutputFormat(StrEnum):
    E01 = "e01"
    RAW = "raw"


@dataclass(frozen=True)
class CaseTarget:
    """Acquire into a case: ``case_dir/evidence/<evidence_id>/<evidence_id>.*``."""

    case_dir: Path
    evidence_id: str


@dataclass(frozen=True)
class AcquisitionRequest:
    """What to acquire and how. ``source`` is a path, an open ImageStream or a Source."""

    source: Any
    output: Path | None = None
    case: CaseTarget | None = None
    format: OutputFormat = OutputFormat.E01
    hashes: tuple[str, ...] = DEFAULT_ALGORITHMS
    compression: str = "fast"
    segment_size: int = DEFAULT_SEGMENT_SIZE
    split: int | None = None
    sector_size: int | None = None
    chunk_sectors: int = 64
    metadata: dict[str, str] = field(default_factory=dict)
    retries: int = 2
    verify: bool = False
    second_output: Path | None = None
    resume: bool = False
    overwrite: bool = False
    operation: str = "acquire"
    workers: int | None = None
    block_size: int = DEFAULT_BLOCK
    #: Media bytes between checkpoints: the outputs are fsynced and the log records how far
    #: they hold the media, so that even a killed run (SIGKILL, power loss) can be resumed.
    checkpoint_every: int = CHECKPOINT_EVERY
    set_readonly: bool = True
    stop: threading.Event | None = None  #: set it to stop cleanly (the TUI's Cancel)
    allow_mounted: bool = False  #: acquire a source mounted writable (live; logged)
    #: seconds a read may take before it is abandoned and counted as a read error (stall.py)
    read_timeout: float | None = None


@dataclass(frozen=True, kw_only=True)
class AcquisitionResult(JobResult):
    """Everything that happened, as data; the CLI renders it and picks the exit code
    (:attr:`JobResult.exit_code`; ``verdict`` is the worst of ``verification``)."""

    source: SourceFacts
    base: Path
    format: OutputFormat
    sector_size: int
    source_hashes: dict[str, str] | None
    bad_sectors: int
    verification: tuple[Verification, ...]
    resumed_from: int | None = None
    #: media bytes the image holds (the whole media when complete, less when stopped early)
    media_bytes_done: int = 0
    #: bytes this run read from the source (not a resumed run's prefix, not the unreadable
    #: sectors); the speed is of these
    bytes_read: int = 0
    #: media bytes the image holds as zeros because the source could not read them
    bytes_zero_filled: int = 0
    rescue: bool = False  #: a rescue: the image is filled out of order (see its map)

    @property
    def bytes_per_second(self) -> float:
        seconds = max((self.ended - self.started).total_seconds(), 1e-6)
        return self.bytes_read / seconds


@dataclass
class _Run:
    """Mutable state of one run (kept out of the frozen records)."""

    request: AcquisitionRequest
    base: Path
    algorithms: tuple[str, ...]
    started: datetime
    case: Case | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    sinks: list[ImageSink] = field(default_factory=list)
    media_size: int = 0
    sector_size: int = 512
    granularity: int = 512
    resumed_from: int | None = None
    resume_log: AcquisitionLog | None = None  #: the interrupted run's log (--resume)
    reopened: bool = False  #: --resume: the outputs are reopened and the prefix re-hashed
    #: more for the log's progress record (a rescue's map counts)
    extra_progress: dict[str, Any] = field(default_factory=dict)
    #: E01 set identifier shared by every copy written in this run (byte-identical copies)
    guid: bytes = field(default_factory=lambda: uuid.uuid4().bytes_le)


# --- request checks --------------------------------------------------------------------------


def _check_request(req: AcquisitionRequest) -> None:
    if (req.output is None) == (req.case is None):
        raise UsageError("give either an output base (-o) or a case and evidence ID, not both")
    if req.retries < 0:
        raise UsageError("--retries must be 0 or more")
    if req.sector_size is not None and req.sector_size not in SECTOR_SIZES:
        raise UsageError(f"--sector-size must be one of {', '.join(map(str, SECTOR_SIZES))}")
    if req.chunk_sectors < 1 or req.chunk_sectors & (req.chunk_sectors - 1):
        raise UsageError("--chunk-sectors must be a power of two")
    if req.split is not None and req.split <= 0:
        raise UsageError("--split must be a positive size")
    if req.split is not None and req.format is not OutputFormat.RAW:
        raise UsageError("--split applies to raw output; E01 uses --segment-size")
    if req.format is OutputFormat.E01:
        _check_e01(req)


def _check_e01(req: AcquisitionRequest) -> None:
    """The E01 writer's limits, checked before the preliminary log is written (a refusal
    must leave nothing behind; a zero segment size used to divide by zero)."""
    from bitwitness.ewf.writer import MIN_SEGMENT_SIZE

    if not 16 <= req.chunk_sectors <= 32768:
        raise UsageError("--chunk-sectors must be from 16 to 32768 for E01")
    chunk = (req.sector_size or 512) * req.chunk_sectors
    if req.segment_size < max(MIN_SEGMENT_SIZE, 4 * chunk):
        raise UsageError(f"--segment-size must be at least {max(MIN_SEGMENT_SIZE, 4 * chunk)} "
                         f"bytes for {chunk}-byte chunks, not {req.segment_size}")


def _algorithms(req: AcquisitionRequest) -> tuple[str, ...]:
    wanted = list(parse_algorithms(req.hashes))
    if req.format is OutputFormat.E01:  # the E01 stores MD5 and SHA-1: always compute them
        wanted += ["md5", "sha1"]
    return parse_algorithms(wanted)


def _resolve_case(req: AcquisitionRequest) -> tuple[Path, dict[str, str], Any]:
    metadata = {k: v for k, v in req.metadata.items() if k in METADATA_KEYS and v}
    if req.case is None:
        assert req.output is not None
        return Path(req.output).absolute(), metadata, None
    from bitwitness.case import Case

    case = Case.load(req.case.case_dir)
    folder = case.evidence_dir(req.case.evidence_id)
    fields = case.fields
    defaults = {
        "case_number": fields.get("case_number") or fields.get("matter_id", ""),
        "evidence_number": req.case.evidence_id,
        # the case's "description" says what the case is about, not this evidence: not copied
        "examiner": fields.get("examiner", ""),
        "notes": fields.get("notes", ""),
    }
    return folder / req.case.evidence_id, {**defaults, **metadata}, case


# --- the run ---------------------------------------------------------------------------------


def acquire(request: AcquisitionRequest, mediator: Mediator) -> AcquisitionResult:
    """Acquire (or convert) ``request.source``; see the module docstring for the order."""
    _check_request(request)
    base, metadata, case = _resolve_case(request)
    log = None
    if request.resume:
        log = resuming.load(base)
        if log.options.values.get("rescue"):  # rescued out of order: not a prefix
            raise UsageError(f"{base} is a rescue: continue it with --rescue --resume")
        request = resuming.request_from_log(request, log)
        metadata = {**log.metadata, **metadata}
    run = _Run(request=request, base=base, algorithms=_algorithms(request),
               started=datetime.now(UTC), case=case, metadata=metadata, resume_log=log)
    source = _open(request, base)
    try:
        return _acquire_open(run, source, mediator)
    finally:
        source.close()


def _open(req: AcquisitionRequest, base: Path) -> Source:
    """The source, read-only; with ``read_timeout`` every read has a deadline (a drive that
    stalls: :mod:`bitwitness.acquire.stall`)."""
    if isinstance(req.source, (str, Path, ImageStream)):
        plan = FlagPlan(log=str(log_paths(base)[0]), resuming=req.resume)  # guardrails (18.6)
        source = open_source(req.source, set_readonly=req.set_readonly, flag_plan=plan)
    else:
        source = req.source  # an open Source (or a FaultySource)
    if req.read_timeout:
        from bitwitness.acquire.stall import TimedSource

        # duck-typed like a FaultySource: the reads of a Source, each with a deadline
        return TimedSource(source, req.read_timeout)  # type: ignore[return-value]
    return source


def _acquire_open(run: _Run, source: Source, mediator: Mediator) -> AcquisitionResult:
    req = run.request
    facts: SourceFacts = source.facts
    run.granularity = facts.logical_sector_size if facts.kind.value == "device" else (
        req.sector_size or facts.logical_sector_size)
    run.sector_size = req.sector_size or facts.logical_sector_size
    if run.sector_size not in SECTOR_SIZES:
        run.sector_size = 512
    run.granularity = max(run.granularity, 1)
    size = source.size
    if req.format is OutputFormat.E01:
        run.media_size = -(-size // run.sector_size) * run.sector_size
        if run.media_size == 0:
            raise UsageError(f"{facts.path} is empty (0 bytes): there is nothing to image")
    else:
        run.media_size = size
    run.sinks = [_make_sink(run, run.base, facts)]
    if req.second_output is not None:
        run.sinks.append(_make_sink(run, Path(req.second_output).absolute(), facts))
    _check_outputs(run, facts)
    _warn_guardrails(run, facts, mediator)
    if run.resume_log is not None:
        resuming.check_source(run.resume_log, facts)
    return run_job(_AcquireJob(run, source, mediator), mediator, req.stop)


def _warn_guardrails(run: _Run, facts: SourceFacts, mediator: Mediator) -> None:
    """A source mounted writable only when allowed (then logged), and a read-only flag a
    killed run left set, named with that run's log: refused or told before anything is read."""
    texts = guardrails.check_mounted(facts.mounted, allowed=run.request.allow_mounted)
    if facts.readonly_flag.earlier_log:
        texts.append(f"the read-only flag was {facts.readonly_flag.detail}")
    for text in texts:
        run.warnings.append(text)
        mediator.notice(text, level="warning")


def _make_sink(run: _Run, base: Path, facts: SourceFacts) -> ImageSink:
    req = run.request
    if req.format is OutputFormat.RAW:
        return DirectRawSink(base, media_size=run.media_size, algorithms=run.algorithms,
                             split=req.split, overwrite=req.overwrite)
    from bitwitness.ewf import EwfMetadata

    meta = EwfMetadata(
        case_number=run.metadata.get("case_number", ""),
        evidence_number=run.metadata.get("evidence_number", ""),
        description=run.metadata.get("description", ""),
        examiner=run.metadata.get("examiner", ""), notes=run.metadata.get("notes", ""),
        model=facts.model, serial=facts.serial, acquired=run.started)
    return EwfSink(base, media_size=run.media_size, metadata=meta, compression=req.compression,
                   segment_size=req.segment_size, bytes_per_sector=run.sector_size,
                   sectors_per_chunk=req.chunk_sectors, overwrite=req.overwrite,
                   removable=facts.removable, guid=run.guid)


def _check_outputs(run: _Run, facts: SourceFacts) -> None:
    req = run.request
    planned: list[Path] = []
    for sink in run.sinks:
        planned += sink.planned_paths()
        planned += list(log_paths(sink.base))
    stream_files: list[Path] = []
    if isinstance(req.source, ImageStream):
        stream_files = list(req.source.info.files)
    guardrails.check_output_locations(planned)
    check_destination(facts, planned, stream_files)
    if len({s.base for s in run.sinks}) != len(run.sinks):
        raise UsageError("--second-output must differ from the output base")
    if req.resume:
        return
    stale = _stale_outputs(run, facts, planned, stream_files)
    for path in ([] if req.overwrite else [*planned, *stale]):
        if path.exists():
            raise OutputExistsError(path)


def _stale_outputs(run: _Run, facts: SourceFacts, planned: list[Path],
                   stream_files: list[Path]) -> list[Path]:
    """A former acquisition's outputs to the bases of this one in another format (see
    :data:`_OUTPUT_SUFFIXES`), never the evidence itself (an image named BASE.raw being
    acquired to BASE): with ``--overwrite`` removed here, whole sets; else to be refused."""
    evidence = [Path(facts.path), *stream_files]
    if facts.device is not None and facts.device.backing_file:
        evidence.append(Path(facts.device.backing_file))
    stale = [path for sink in run.sinks for path in _other_outputs(sink.base)
             if path not in planned and path.exists() and same_file(path, evidence) is None]
    if run.request.overwrite:
        for path in stale:
            for member in _whole_set(path):
                if same_file(member, evidence) is None:
                    member.unlink(missing_ok=True)
    return stale


#: What an acquisition to BASE writes in some format: an image of another format, or hash
#: sidecars, left beside a new one would be taken for its pieces or its record (verify found
#: a raw acquisition's BASE.md5 and called the new E01 of another source a MISMATCH).
_OUTPUT_SUFFIXES = (".raw", ".raw.partial", ".md5", ".sha1", ".sha256", ".E01", ".001",
                    ".001.partial", ".json", ".txt")


def _other_outputs(base: Path) -> list[Path]:
    return [base.with_name(base.name + suffix) for suffix in _OUTPUT_SUFFIXES]


def _whole_set(first: Path) -> list[Path]:
    """``first`` and, for the first piece of an E01 or split raw set, every piece of it:
    replaced by another format, a set must not be left without its first piece."""
    from bitwitness.ewf.naming import set_members
    from bitwitness.images.splitraw import split_pieces

    if first.suffix == ".E01":
        return sorted(set_members(first).values()) or [first]
    if first.name.endswith((".001", ".001.partial")):
        with contextlib.suppress(BitWitnessError):
            return split_pieces(first) or [first]
    return [first]


def _worst(items: tuple[Verification, ...]) -> Verification | None:
    return next((v for v in items if v.verdict is not Verdict.VERIFIED),
                items[0] if items else None)


def _record(run: _Run, facts: SourceFacts, status: Status, error: str | None, *,
            hashes: dict[str, str] | None = None, source_hashes: dict[str, str] | None = None,
            outputs: tuple[OutputFile, ...] = (), read_errors: tuple[tuple[int, int], ...] = (),
            verification: tuple[Verification, ...] = (), done: int | None = None,
            bytes_read: int = 0) -> LogRecord:
    req = run.request
    options: dict[str, Any] = {
        "format": req.format.value, "hashes": list(run.algorithms),
        "compress": req.compression if req.format is OutputFormat.E01 else None,
        "segment_size": req.segment_size if req.format is OutputFormat.E01 else None,
        "split": req.split, "sector_size": run.sector_size, "chunk_sectors": req.chunk_sectors,
        "retries": req.retries, "verify": req.verify,
        "second_output": str(Path(req.second_output).absolute()) if req.second_output else None,
        "primary_output": str(run.base), "resume": req.resume, "overwrite": req.overwrite,
        "allow_mounted": req.allow_mounted, "read_timeout": req.read_timeout,
        "rescue": "rescue" in run.extra_progress,  # its image is no prefix: see acquire()
    }
    case = None
    if run.case is not None and req.case is not None:
        case = {"case_dir": str(run.case.root), "evidence_id": req.case.evidence_id,
                "fields": dict(run.case.fields)}
    ended = datetime.now(UTC)
    progress = None if done is None else _progress_doc(run, done, bytes_read, read_errors,
                                                        ended)
    return LogRecord(
        operation=req.operation, status=status, error=error, started=run.started,
        ended=ended, source=facts, options=options, media_size=run.media_size,
        sector_size=run.sector_size, hashes=hashes or {}, source_hashes=source_hashes,
        outputs=outputs, read_errors=read_errors,
        verification=_verification_doc(verification), case=case, progress=progress,
        warnings=tuple(run.warnings), metadata=dict(run.metadata),
        history=earlier_runs(run.resume_log) if run.resume_log is not None else (),
        resumed_from=_resumed_from(run))


def _resumed_from(run: _Run) -> int | None:
    """Where this run took over: the kept prefix once reopened; for a resume stopped before
    that (while the kept prefix was re-hashed), the point the earlier log vouches for, so that
    the run is still recorded as a resume."""
    if run.resumed_from is not None or run.resume_log is None:
        return run.resumed_from
    return resuming.done_bytes(run.resume_log)


def zero_filled_bytes(read_errors: tuple[tuple[int, int], ...], sector_size: int,
                      media_size: int) -> int:
    """Media bytes the ``(first_sector, count)`` ranges cover (a last sector may end early)."""
    return sum(max(0, min((first + count) * sector_size, media_size) - first * sector_size)
               for first, count in read_errors)


def _progress_doc(run: _Run, done: int, read: int, read_errors: tuple[tuple[int, int], ...],
                  ended: datetime) -> dict[str, Any]:
    """How far the image holds the media, what this run really read (never the zero-filled
    sectors, nor a resumed prefix) and how fast, and how much of the image is zeros for
    unreadable sectors: the truth after an interruption or a rescue, not the media size."""
    seconds = max((ended - run.started).total_seconds(), 1e-6)
    return {"media_bytes_done": done, "resumed_from": run.resumed_from, "bytes_read": read,
            "bytes_per_second": round(read / seconds),
            "bytes_zero_filled": zero_filled_bytes(read_errors, run.sector_size, run.media_size),
            **run.extra_progress}


def _verification_doc(items: tuple[Verification, ...]) -> dict[str, Any] | None:
    worst = _worst(items)
    if worst is None:
        return None
    return {"verdict": worst.verdict, "hashes": worst.hashes, "detail": worst.detail,
            "outputs": [{"path": str(v.path), "verdict": v.verdict, "hashes": v.hashes,
                         "stored_hashes": v.stored_hashes, "detail": v.detail}
                        for v in items]}


class _AcquireJob:
    """An acquisition (or a conversion into raw/E01 through this engine) as the runner's
    :class:`~bitwitness.acquire.runner.Job`."""

    def __init__(self, run: _Run, source: Source, mediator: Mediator) -> None:
        self.run = run
        self.source = source
        self.facts: SourceFacts = source.facts
        self.mediator = mediator
        self.pipeline: Pipeline | None = None

    @property
    def title(self) -> str:
        return f"{self.run.request.operation} {Path(self.facts.path).name}"

    @property
    def media_size(self) -> int:
        return self.run.media_size

    def write_preliminary(self) -> None:
        run = self.run
        for sink in run.sinks:
            sink.base.parent.mkdir(parents=True, exist_ok=True)
        preliminary = _record(run, self.facts, Status.FAILED, _UNFINISHED)
        if run.resume_log is not None:  # killed again while resuming: still resumable from here
            old = run.resume_log
            preliminary = replace(preliminary, read_errors=old.read_errors, progress={
                "media_bytes_done": resuming.done_bytes(old),
                "resumed_from": old.progress.resumed_from if old.progress else None})
        for sink in run.sinks:  # a preliminary log that tells the truth if we die
            write_logs(sink.base, preliminary, reserve=True)

    def make_pass(self, task: ProgressTask, stop: threading.Event) -> Pipeline:
        run, req = self.run, self.run.request
        chunk = run.sector_size * req.chunk_sectors
        self.pipeline = Pipeline(
            source=self.source, sinks=run.sinks, media_size=run.media_size,
            read_granularity=run.granularity, retries=req.retries, algorithms=run.algorithms,
            task=task, stop=stop, block_size=block_size_for(chunk, req.block_size),
            workers=req.workers, encode=req.format is OutputFormat.E01,
            checkpoint=lambda current: _checkpoint(run, self.facts, current),
            checkpoint_every=req.checkpoint_every)
        return self.pipeline

    @property
    def bytes_read(self) -> int:
        return self.pipeline.bytes_read if self.pipeline is not None else 0

    def start(self, pipeline: Pipeline) -> int:
        if self.run.request.resume:
            start = resuming.reopen(self.run, pipeline)
            self.run.reopened = True
            return start
        for sink in self.run.sinks:
            sink.prepare()
        return 0

    def completed(self, outcome: PipelineOutcome, stop: threading.Event) -> AcquisitionResult:
        run = self.run
        errors = tuple(byte_ranges_to_sectors(outcome.bad_byte_ranges, run.sector_size))
        try:
            outputs = tuple(o for s in run.sinks
                            for o in s.finish(hashes=outcome.hashes, errors=errors))
        except (BitWitnessError, OSError) as exc:
            return self._failed(errors, outcome.media_bytes_done, exc)
        status = Status.COMPLETED_WITH_ERRORS if errors else Status.COMPLETED
        verification: tuple[Verification, ...] = ()
        if run.request.verify:
            verification = tuple(verify_output(_first_image_file(s, outputs), outcome.hashes,
                                               self.mediator, stop=stop)
                                 for s in run.sinks)
        return _finish(run, self.source, status, None, hashes=outcome.hashes,
                       source_hashes=outcome.source_hashes, outputs=outputs, errors=errors,
                       verification=verification, done=outcome.media_bytes_done,
                       bytes_read=self.bytes_read)

    def stopped(self, pipeline: Pipeline) -> AcquisitionResult:
        errors, done = self._progress(pipeline)
        # what the outputs hold, not what was handed to them: an E01 keeps complete groups
        # only, so the summary and the log must not claim the group in progress
        done = self._held(done)
        held = -(-done // self.run.sector_size)  # the read errors inside what is held
        errors = tuple((first, min(count, held - first)) for first, count in errors
                       if first < held)
        outputs = tuple(o for s in self.run.sinks for o in _abort(s))
        return _finish(self.run, self.source, Status.INTERRUPTED, INTERRUPTED, outputs=outputs,
                       errors=errors, done=done, bytes_read=pipeline.bytes_read)

    def failed(self, pipeline: Pipeline, exc: BitWitnessError | OSError) -> AcquisitionResult:
        errors, done = self._progress(pipeline)
        if isinstance(exc, SourceGoneError) and (self.run.resume_log is None or self.run.reopened):
            # the drive dropped off: what was read stays, durable, for --resume
            done = self._held(done)
        return self._failed(errors, done, exc)

    def _held(self, done: int) -> int:
        """The media bytes every output holds on disk, at most ``done``: each made durable
        (an E01 keeps its complete chunk groups only)."""
        for sink in self.run.sinks:
            with contextlib.suppress(BitWitnessError, OSError):
                done = min(done, sink.make_durable())
        return done

    def _progress(self, pipeline: Pipeline) -> tuple[tuple[tuple[int, int], ...], int]:
        """The read errors and the media bytes the outputs hold, for the final log."""
        run = self.run
        if run.resume_log is not None and not run.reopened:
            # stopped while reopening: the interrupted run's record still says where things are
            return run.resume_log.read_errors, resuming.done_bytes(run.resume_log)
        return tuple(byte_ranges_to_sectors(pipeline.bad, run.sector_size)), pipeline.done

    def _failed(self, errors: tuple[tuple[int, int], ...], done: int,
                exc: BitWitnessError | OSError) -> AcquisitionResult:
        """Leave the output unfinished, log why, then raise."""
        run = self.run
        outputs = tuple(o for s in run.sinks for o in _abort(s))
        gone = isinstance(exc, SourceGoneError)
        if gone:  # ... and hashed, so that the log vouches for the partial files
            outputs = tuple(replace(o, hashes=hash_file(o.path, run.algorithms))
                            for o in outputs)
        if isinstance(exc, OSError) and _is_full(exc):
            message = f"the destination is full ({exc.filename or _fullest(run)}): " \
                      f"{exc.strerror or 'no space left on device'}"
            error: BitWitnessError = DestinationError(message, path=run.base)
        elif isinstance(exc, OSError):
            error = DestinationError(f"cannot write the output: {exc.strerror or exc}",
                                     path=exc.filename or run.base)
        else:
            error = exc
        if gone:
            error.args = (f"{exc} (continue with --resume once the drive is back)",)
        result = _finish(run, self.source, Status.FAILED, str(error), outputs=outputs,
                         errors=errors, done=done, bytes_read=self.bytes_read)
        raise _with_logs(error, result) from exc


_UNFINISHED = "the acquisition did not finish (no final log was written)"


def _checkpoint(run: _Run, facts: SourceFacts, pipeline: Pipeline) -> CheckpointWait:
    """Make the outputs durable and record how far, with the read errors before that point, in
    the preliminary log: what ``--resume`` needs after a run that never wrote its final log.

    Called in the writing thread between two blocks, so nothing is being appended meanwhile: it
    marks what each sink holds and returns the waiting for the disk and the log writing, which
    the pipeline runs in another thread (see :mod:`bitwitness.acquire.pipeline`).
    """
    waits = [sink.durable_soon() for sink in run.sinks]
    bad = list(pipeline.bad)
    bytes_read = pipeline.bytes_read

    def wait() -> Callable[[], None]:
        durable = min(_all_waited(waits))

        def record() -> None:
            kept = [(offset, min(length, durable - offset)) for offset, length in bad
                    if offset < durable]
            entry = _record(run, facts, Status.FAILED, _UNFINISHED, done=durable,
                            read_errors=tuple(byte_ranges_to_sectors(kept, run.sector_size)),
                            bytes_read=bytes_read)
            for sink in run.sinks:
                write_logs(sink.base, entry, reserve=True)
        return record
    return wait


def _all_waited(waits: list[Callable[[], int]]) -> list[int]:
    """Call every one of ``waits`` (each closes what it holds), then raise the first error."""
    results, errors = [], []
    for wait in waits:
        try:
            results.append(wait())
        except (BitWitnessError, OSError) as exc:
            errors.append(exc)
    if errors:
        raise errors[0]
    return results


def _first_image_file(sink: ImageSink, outputs: tuple[OutputFile, ...]) -> Path:
    for out in outputs:
        if out.role == "image" and out.path.parent == sink.base.parent and \
                out.path.name.startswith(sink.base.name + "."):
            return out.path
    raise UsageError(f"no image file was written for {sink.base}")


def _abort(sink: Sink) -> list[OutputFile]:
    try:
        return list(sink.abort())
    except (BitWitnessError, OSError):
        return []


def _fullest(run: _Run) -> Path:
    """The output folder whose file system has the least room left: the one a write failed on
    for lack of space, when the error names no file (a write to a descriptor does not). With
    --second-output on another disk, the first output's folder was blamed for the second's."""
    folders = {path.parent for sink in run.sinks for path in sink.planned_paths()}
    room: list[tuple[int, str]] = []
    for folder in folders:
        try:
            stats = os.statvfs(folder)
        except OSError:
            continue
        room.append((stats.f_bavail * stats.f_frsize, str(folder)))
    return Path(min(room)[1]) if room else run.base.parent


def _is_full(exc: OSError) -> bool:
    current: BaseException | None = exc
    while current is not None:
        if isinstance(current, OSError) and current.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        current = current.__cause__ or current.__context__
    return False


def _with_logs(error: BitWitnessError, result: AcquisitionResult) -> BitWitnessError:
    error.result = result  # type: ignore[attr-defined]
    if result.log_json is not None and result.log_json.exists():
        error.args = (f"{error.args[0] if error.args else error}; partial output left "
                      f"unfinished, see {result.log_json}",)
    return error


def _finish(run: _Run, source: Source, status: Status, error: str | None, *,
            outputs: tuple[OutputFile, ...], errors: tuple[tuple[int, int], ...],
            done: int | None, bytes_read: int, hashes: dict[str, str] | None = None,
            source_hashes: dict[str, str] | None = None,
            verification: tuple[Verification, ...] = ()) -> AcquisitionResult:
    """Write the final logs (for every output set) and the custody event; build the result.

    The source is closed first, so that the log records the device's read-only flag restored.
    """
    source.close()
    facts: SourceFacts = source.facts
    if status in (Status.INTERRUPTED, Status.FAILED):
        hashes, source_hashes = None, None
    stalls = getattr(source, "stall_note", None)
    if stalls is not None and stalls():  # reads that timed out (stall.py)
        run.warnings.append(stalls())
    record = _record(run, facts, status, error, hashes=hashes, source_hashes=source_hashes,
                     outputs=outputs, read_errors=errors, verification=verification, done=done,
                     bytes_read=bytes_read)
    log_json, log_text = log_paths(run.base)
    for sink in run.sinks:
        try:
            log_json_i, log_text_i = write_logs(sink.base, record)
        except OSError as exc:
            run.warnings.append(f"could not write the log for {sink.base}: {exc.strerror or exc}")
            continue
        if sink is run.sinks[0]:
            log_json, log_text = log_json_i, log_text_i
    worst = _worst(verification)
    return AcquisitionResult(
        status=status, verdict=worst.verdict if worst else None, error=error, source=facts,
        base=run.base, format=run.request.format, media_size=run.media_size,
        sector_size=run.sector_size, hashes=hashes or {}, source_hashes=source_hashes,
        outputs=outputs, read_errors=errors, bad_sectors=count_sectors(errors),
        verification=verification, log_json=log_json, log_text=log_text, started=run.started,
        ended=record.ended, warnings=tuple(run.warnings), resumed_from=run.resumed_from,
        media_bytes_done=done or 0, bytes_read=bytes_read,
        bytes_zero_filled=zero_filled_bytes(errors, run.sector_size, run.media_size),
        rescue="rescue" in run.extra_progress,
        custody_seq=_custody(run, record, log_json))


def _custody(run: _Run, record: LogRecord, log_json: Path) -> int | None:
    if run.case is None or run.request.case is None:
        return None
    details = {
        "source": record.source.path,
        "outputs": [str(o.path) for o in record.outputs],
        "hashes": record.hashes,
        "status": record.status.value,
        "read_errors": count_sectors(record.read_errors),
        "log": str(log_json),
        "log_sha256": file_sha256(log_json) if log_json.exists() else None,
    }
    if record.verification:
        details["verification"] = [v["verdict"] for v in record.verification["outputs"]]
    event = run.case.record(run.request.operation, evidence_id=run.request.case.evidence_id,
                            details=details)
    return int(event.seq)


__all__ = ["AcquisitionRequest", "AcquisitionResult", "CaseTarget", "OutputFormat", "Status",
           "acquire"]
