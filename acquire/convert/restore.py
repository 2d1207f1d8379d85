"""Restore: write an image's media onto a block device or a file, log it, and optionally prove it.

Before the first byte, the target is refused (exit 2, and no log: nothing happened) when it:

* is smaller than the media (a device; a file simply grows);
* is mounted, or one of its partitions or holders is (``/proc/self/mountinfo`` + sysfs);
* is the image itself, holds the image (an image file lives on the target device, or the target
  is a loop device over an image file), or is the device the image was acquired from (the
  ``source.path`` of the image's ``BASE.json``);
* is an existing regular file and ``overwrite`` was not given;
* cannot be opened for writing (``O_EXCL``: a device anything else holds open is busy);

and the restore is refused when its log cannot be written safely (see
:mod:`bitwitness.acquire.convert.restorelog`) or when the mediator does not confirm (``yes``
skips the question; a mediator that cannot ask answers no, so off a terminal ``--yes`` is required).

Then, as in acquisition, a preliminary log (status ``failed``, "did not finish") is written before
the first byte, so a killed run never leaves a log claiming more than happened. The media goes
through the acquisition pipeline, hashed in the same pass, flushed; with ``verify`` the target's
first ``media_size`` bytes are read back (after dropping them from the page cache) and hashed
again. The written hashes are compared with the image's stored or logged hashes. SIGINT/SIGTERM
stop after the current block (a second one at once), as for every job
(:mod:`bitwitness.acquire.runner`). Every outcome after the preliminary log,
completed, failed or interrupted, rewrites the log pair in place and, when the image belongs to a
case, appends a ``restore`` custody event carrying the log's path and SHA-256.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bitwitness.acquire.convert.casework import CaseLink, case_document, find_case, record_event
from bitwitness.acquire.convert.outputs import OutputError
from bitwitness.acquire.convert.references import (
    MediaReference,
    Recorded,
    compare,
    media_references,
)
from bitwitness.acquire.convert.restorelog import (
    RestoreRecord,
    TargetFacts,
    check_log_base,
    default_log_base,
    describe_target,
    write_restore_logs,
)
from bitwitness.acquire.convert.restoretarget import (
    RestoreRefusedError,
    TargetSink,
    check_target,
    read_back,
)
from bitwitness.acquire.logs import Status, file_sha256
from bitwitness.acquire.pipeline import Pipeline, PipelineOutcome, byte_ranges_to_sectors
from bitwitness.acquire.runner import INTERRUPTED, JobResult, run_job
from bitwitness.acquire.sinks import OutputFile
from bitwitness.acquire.source import Source, open_source
from bitwitness.errors import BitWitnessError, ExitCode
from bitwitness.hashing import DEFAULT_ALGORITHMS
from bitwitness.image import open_image
from bitwitness.media_budget import check_media_budget
from bitwitness.progress import Mediator, ProgressTask
from bitwitness.stream import ImageStream
from bitwitness.verdict import Verdict

__all__ = [
    "RestoreRefusedError",
    "RestoreResult",
    "TargetSink",
    "Verdict",
    "check_target",
    "read_back",
    "restore_image",
]


@dataclass(frozen=True, kw_only=True)
class RestoreResult(JobResult):
    """One restore, as its log records it (the CLI renders this; ``exit_code`` as every job's:
    130 interrupted, 2 the target failed before the media was written in full, 1 a mismatch or
    unreadable image sectors, 0 otherwise)."""

    image: Path
    target: Path
    target_kind: str  #: "device" or "file"
    references: tuple[MediaReference, ...]
    target_hashes: dict[str, str] | None  #: of the target's first media_size bytes (--verify)
    bytes_written: int = 0
    log_sha256: str | None = None  #: of log_json as finally written (also in the custody event)
    target_facts: TargetFacts | None = None

    @property
    def ok(self) -> bool:
        return self.exit_code is ExitCode.OK


@dataclass(frozen=True)
class _Plan:
    """What was settled before the first byte."""

    image: Path
    target: Path
    kind: str
    files: tuple[Path, ...]
    facts: TargetFacts
    link: CaseLink | None
    log_base: Path | None  #: None: the default, named at the start
    verify: bool
    yes: bool
    overwrite: bool
    image_format: str | None = None  #: ``--format``: the registry format forced on the image


def restore_image(image: Path, target: Path, mediator: Mediator, *, verify: bool = False,
                  yes: bool = False, overwrite: bool = False, log: Path | None = None,
                  stop: threading.Event | None = None,
                  image_format: str | None = None) -> RestoreResult:
    """Write the media of ``image`` onto ``target``; see the module docstring for the checks.

    ``log`` is the log's BASE (``BASE.json``/``BASE.txt``); None for the default place. Raises
    :class:`~bitwitness.errors.BitWitnessError` for refusals (nothing written, no log); every
    later outcome is returned, with its log written. Paths are made absolute (as logs record them).
    ``image_format`` reads the image as that registry format whatever its content says.
    """
    image, target = image.absolute(), target.absolute()
    log = log.absolute() if log is not None else None
    stream = open_image(image, image_format)
    try:
        files = tuple(stream.info.files) or (image,)
        check_media_budget(image, stream.size, files)
        kind = check_target(target, stream, list(files), overwrite=overwrite)
        facts = describe_target(target, kind)
        link = find_case(image)
        case_document(link)  # a broken case is refused now, not after the target is written
        check_log_base(log or default_log_base(image, link, datetime.now(UTC)), target=target,
                       kind=kind, files=list(files), explicit=log is not None)
        if not yes and not mediator.confirm(
                f"Write {stream.size} bytes of {image.name} onto {target} ({facts.describe()}), "
                "destroying what it holds?"):
            raise RestoreRefusedError(
                f"not confirmed: nothing was written to {target} (use --yes to skip the question)")
        plan = _Plan(image, target, kind, files, facts, link, log, verify, yes, overwrite,
                     image_format)
        return _restore(stream, plan, mediator, stop or threading.Event())
    finally:
        stream.close()


def _restore(stream: ImageStream, plan: _Plan, mediator: Mediator,
             stop: threading.Event) -> RestoreResult:
    references, _notes = media_references(stream, list(plan.files))
    started = datetime.now(UTC)
    base = plan.log_base or default_log_base(plan.image, plan.link, started)
    check_log_base(base, target=plan.target, kind=plan.kind, files=list(plan.files),
                   explicit=plan.log_base is not None)
    source = open_source(stream)
    record = RestoreRecord(
        status=Status.FAILED, error="the restore did not finish (no final log was written)",
        started=started, ended=started, image=plan.image, files=plan.files,
        source=source.facts, target=plan.facts, media_size=stream.size,
        sector_size=stream.sector_size, options=_options(plan, base), case=case_document(plan.link),
        metadata=_metadata(stream),
        references=tuple(compare(references, {})))
    sink = TargetSink(plan.target, plan.kind, plan.overwrite)
    job = _RestoreJob(stream=stream, source=source, sink=sink, plan=plan, base=base,
                      record=record, references=references, mediator=mediator)
    return run_job(job, mediator, stop)


@dataclass
class _RestoreJob:
    """A restore as the runner's :class:`~bitwitness.acquire.runner.Job`."""

    stream: ImageStream
    source: Source
    sink: TargetSink
    plan: _Plan
    base: Path
    record: RestoreRecord
    references: list[Recorded]
    mediator: Mediator

    @property
    def title(self) -> str:
        return f"restore {self.plan.image.name} -> {self.plan.target}"

    @property
    def media_size(self) -> int:
        return self.stream.size

    def write_preliminary(self) -> None:
        try:
            write_restore_logs(self.base, self.record, reserve=True)
        except (OSError, BitWitnessError) as exc:
            self.sink.discard()
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            raise OutputError(f"cannot start the restore log at {self.base}.json ({reason}); "
                              f"nothing was written to {self.plan.target}") from exc

    def make_pass(self, task: ProgressTask, stop: threading.Event) -> Pipeline:
        return Pipeline(source=self.source, sinks=[self.sink], media_size=self.stream.size,
                        read_granularity=self.stream.sector_size, retries=0,
                        algorithms=DEFAULT_ALGORITHMS, task=task, stop=stop, encode=False)

    def start(self, pipeline: Pipeline) -> int:
        self.sink.prepare()
        return 0

    def completed(self, outcome: PipelineOutcome, stop: threading.Event) -> RestoreResult:
        """Judge the written media against the image's records; ``--verify`` reads it back."""
        errors = self._errors(outcome.bad_byte_ranges)
        try:
            self.sink.finish(hashes=outcome.hashes, errors=errors)
        except BitWitnessError as exc:
            return self._conclude(self._failure(exc, errors))
        checks = tuple(compare(self.references, outcome.hashes))
        run: dict[str, Any] = {"status": Status.COMPLETED, "error": None,
                               "hashes": outcome.hashes, "references": checks,
                               "bytes_written": self.sink.written, "read_errors": errors}
        if not checks:
            run["warnings"] = ("no stored or logged hash for this image: the written media "
                               "could not be checked against the image's record",)
        tail = self.plan.facts.size - self.stream.size
        if self.plan.kind == "device" and tail > 0:  # a device is written, never cut
            run["warnings"] = (*run.get("warnings", ()),
                               f"{self.plan.target} holds {tail} bytes past the media's "
                               f"{self.stream.size}: left as they were, neither written nor "
                               "zeroed")
        if errors:
            run["status"] = Status.COMPLETED_WITH_ERRORS
            run["error"] = (f"the image could not be read in full ({sum(c for _, c in errors)} "
                            "sectors); the target holds zeros where it failed")
        elif bad := [c for c in checks if not c.match]:
            run["status"] = Status.FAILED
            run["error"] = (f"{bad[0].algorithm} of the restored media is {bad[0].computed}, "
                            f"but {bad[0].source} records {bad[0].expected}")
        if self.plan.verify:
            run.update(_read_back(self.plan.target, self.stream.size, outcome.hashes,
                                  mediator=self.mediator, stop=stop, run=run))
        return self._conclude(run)

    def stopped(self, pipeline: Pipeline) -> RestoreResult:
        errors = self._errors(pipeline.bad)
        try:
            self.sink.abort()
        except BitWitnessError as exc:
            return self._conclude(self._failure(exc, errors))
        written = self.sink.written
        return self._conclude({
            "status": Status.INTERRUPTED, "bytes_written": written, "read_errors": errors,
            "error": f"{INTERRUPTED}; {self.plan.target} holds the first {written} bytes only"})

    def failed(self, pipeline: Pipeline, exc: BitWitnessError | OSError) -> RestoreResult:
        with contextlib.suppress(BitWitnessError):  # the failure in hand is the one to report
            self.sink.abort()
        return self._conclude(self._failure(exc, self._errors(pipeline.bad)))

    def _errors(self, byte_ranges: Iterable[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
        return tuple(byte_ranges_to_sectors(byte_ranges, self.stream.sector_size))

    def _failure(self, exc: BaseException,
                 errors: tuple[tuple[int, int], ...]) -> dict[str, Any]:
        written = self.sink.written
        return {"status": Status.FAILED, "bytes_written": written, "read_errors": errors,
                "error": f"{exc}; {self.plan.target} holds the first {written} bytes of the "
                         "media only"}

    def _conclude(self, run: dict[str, Any]) -> RestoreResult:
        return _finish(self.plan, self.base, replace(self.record, **run))


def _read_back(target: Path, length: int, written: dict[str, str], *, mediator: Mediator,
               stop: threading.Event, run: dict[str, Any]) -> dict[str, Any]:
    """``--verify``: the verification object, and the status/error it changes."""
    try:
        checked = read_back(target, length, written, mediator, stop=stop)
    except KeyboardInterrupt:
        checked = None
    except OutputError as exc:
        return {"status": Status.FAILED, "error": run["error"] or str(exc),
                "verification": {"verdict": Verdict.MISMATCH.value, "hashes": None,
                                 "length": length, "detail": str(exc)}}
    if checked is None:
        return {"status": Status.INTERRUPTED,
                "error": "interrupted while reading the target back: it was written in full but "
                         "not verified",
                "verification": None}
    hashes = dict(checked.computed)
    same = checked.verdict is Verdict.VERIFIED
    detail = (f"the target's first {length} bytes read back identical to what was written"
              if same else f"the target's first {length} bytes read back DIFFERENT")
    out: dict[str, Any] = {"verification": {
        "verdict": (Verdict.VERIFIED if same else Verdict.MISMATCH).value,
        "hashes": hashes, "length": length, "detail": detail}}
    if not same and run["status"] is Status.COMPLETED:
        out.update(status=Status.FAILED,
                   error=f"{target} does not read back as written (hashes differ)")
    return out


def _verdict(record: RestoreRecord, verify: bool) -> Verdict:
    if record.status in (Status.INTERRUPTED, Status.FAILED) and not record.hashes:
        return Verdict.INCOMPLETE
    if record.status is not Status.COMPLETED:
        return Verdict.MISMATCH
    return Verdict.VERIFIED if verify else Verdict.WRITTEN


def _finish(plan: _Plan, base: Path, record: RestoreRecord) -> RestoreResult:
    """Rewrite the log pair with the outcome, then the custody event (log path and SHA-256)."""
    record = replace(record, ended=datetime.now(UTC))
    log_json, log_text = write_restore_logs(base, record)
    log_sha = file_sha256(log_json)
    verdict = _verdict(record, plan.verify)
    target_hashes = (record.verification or {}).get("hashes")
    seq = record_event(plan.link, "restore", {
        "image": str(plan.image), "target": str(plan.target), "target_kind": plan.kind,
        "target_model": plan.facts.model, "target_serial": plan.facts.serial,
        "media_size": record.media_size, "bytes_written": record.bytes_written,
        "hashes": record.hashes, "verify": plan.verify, "status": record.status.value,
        "verdict": verdict.value, "log": str(log_json), "log_sha256": log_sha,
        **({"error": record.error} if record.error else {})})
    written = record.bytes_written or 0
    return RestoreResult(
        image=plan.image, target=plan.target, target_kind=plan.kind,
        media_size=record.media_size, hashes=record.hashes, references=record.references,
        target_hashes=target_hashes, verdict=verdict, error=record.error,
        started=record.started, ended=record.ended, custody_seq=seq, status=record.status,
        outputs=(OutputFile(plan.target, written),), bytes_written=written,
        read_errors=record.read_errors, log_json=log_json, log_text=log_text,
        log_sha256=log_sha, target_facts=plan.facts, warnings=record.warnings)


def _options(plan: _Plan, base: Path) -> dict[str, Any]:
    doc: dict[str, Any] = {"hashes": list(DEFAULT_ALGORITHMS), "verify": plan.verify,
                           "overwrite": plan.overwrite,
                           "confirmed": "--yes" if plan.yes else "asked", "log": str(base)}
    if plan.image_format is not None:
        doc["forced_source_format"] = plan.image_format
    return doc


def _metadata(stream: ImageStream) -> dict[str, str]:
    """The case fields the image itself carries (E01 header), for the log's ``metadata``."""
    from bitwitness.acquire.convert.convert import HEADER_KEYS

    header = getattr(stream, "header_values", None)
    if not isinstance(header, dict):
        return {}
    return {key: str(header[name]) for name, key in HEADER_KEYS.items() if header.get(name)}
