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
stop after the current block (a second one at once). Every outcome after the preliminary log,
completed, failed or interrupted, rewrites the log pair in place and, when the image belongs to a
case, appends a ``restore`` custody event carrying the log's path and SHA-256.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from bitwitness.acquire.convert.casework import CaseLink, case_document, find_case, record_event
from bitwitness.acquire.convert.outputs import OutputError
from bitwitness.acquire.convert.references import MediaReference, compare, media_references
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
    hash_target,
)
from bitwitness.acquire.logs import Status, file_sha256
from bitwitness.acquire.pipeline import Pipeline, byte_ranges_to_sectors
from bitwitness.acquire.source import open_source
from bitwitness.errors import BitWitnessError, ExitCode
from bitwitness.hashing import DEFAULT_ALGORITHMS
from bitwitness.image import open_image
from bitwitness.progress import Mediator
from bitwitness.signals import stop_on_signals
from bitwitness.stream import ImageStream

__all__ = ["RestoreRefusedError", "RestoreResult", "RestoreVerdict", "TargetSink", "check_target",
           "hash_target", "restore_image"]


class RestoreVerdict(StrEnum):
    VERIFIED = "VERIFIED"  #: the target re-read equals what was written, and every record
    WRITTEN = "WRITTEN"  #: written and matching the records, not re-read (no --verify)
    MISMATCH = "MISMATCH"  #: the target or the media differs from what it should be
    INCOMPLETE = "INCOMPLETE"  #: the target holds only part of the media (stopped or failed)


@dataclass(frozen=True)
class RestoreResult:
    """One restore, as its log records it (the CLI renders this; ``exit_code`` as acquisition)."""

    image: Path
    target: Path
    target_kind: str  #: "device" or "file"
    media_size: int
    hashes: dict[str, str]  #: of the media as written ({} when it was not written in full)
    references: tuple[MediaReference, ...]
    target_hashes: dict[str, str] | None  #: of the target's first media_size bytes (--verify)
    verdict: RestoreVerdict
    error: str | None
    started: datetime
    ended: datetime
    custody_seq: int | None = None
    status: Status = Status.COMPLETED
    bytes_written: int = 0
    read_errors: tuple[tuple[int, int], ...] = ()  #: (first_sector, count) zero-filled
    log_json: Path | None = None
    log_text: Path | None = None
    log_sha256: str | None = None  #: of log_json as finally written (also in the custody event)
    target_facts: TargetFacts | None = None
    warnings: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.status is Status.COMPLETED and self.verdict in (RestoreVerdict.VERIFIED,
                                                                     RestoreVerdict.WRITTEN)

    @property
    def exit_code(self) -> ExitCode:
        """130 interrupted; 2 the target failed (as acquisition's destination); 1 a mismatch or
        unreadable image sectors; 0 otherwise."""
        if self.status is Status.INTERRUPTED:
            return ExitCode.INTERRUPTED
        if self.verdict is RestoreVerdict.INCOMPLETE:
            return ExitCode.USAGE
        return ExitCode.OK if self.ok else ExitCode.EVIDENCE

    @property
    def logs(self) -> tuple[Path, ...]:
        return tuple(p for p in (self.log_json, self.log_text) if p is not None)


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


def restore_image(image: Path, target: Path, mediator: Mediator, *, verify: bool = False,
                  yes: bool = False, overwrite: bool = False, log: Path | None = None,
                  stop: threading.Event | None = None) -> RestoreResult:
    """Write the media of ``image`` onto ``target``; see the module docstring for the checks.

    ``log`` is the log's BASE (``BASE.json``/``BASE.txt``); None for the default place. Raises
    :class:`~bitwitness.errors.BitWitnessError` for refusals (nothing written, no log); every
    later outcome is returned, with its log written. Paths are made absolute (as logs record them).
    """
    image, target = image.absolute(), target.absolute()
    log = log.absolute() if log is not None else None
    stream = open_image(image)
    try:
        files = tuple(stream.info.files) or (image,)
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
        plan = _Plan(image, target, kind, files, facts, link, log, verify, yes, overwrite)
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
    try:
        write_restore_logs(base, record, reserve=True)
        sink.start()
    except (OSError, BitWitnessError) as exc:
        sink.discard()
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise OutputError(f"cannot start the restore log at {base}.json ({reason}); nothing was "
                          f"written to {plan.target}") from exc
    with stop_on_signals(stop):
        run = _write_and_check(stream, source, sink, plan, mediator=mediator, stop=stop,
                               references=references)
    return _finish(plan, base, replace(record, **run))


def _write_and_check(stream: ImageStream, source: Any, sink: TargetSink, plan: _Plan, *,
                     mediator: Mediator, stop: threading.Event,
                     references: list[Any]) -> dict[str, Any]:
    """Run the pipeline, then judge; returns the fields of the final record that changed."""
    task = mediator.begin(f"restore {plan.image.name} -> {plan.target}", stream.size)
    # The pipeline calls only encode() and write(), which a restore target has; it is no full
    # Sink (no files to plan, finish or abort), hence the ignore.
    pipeline = Pipeline(source=source, sinks=[sink],  # type: ignore[list-item]
                        media_size=stream.size, read_granularity=stream.sector_size, retries=0,
                        algorithms=DEFAULT_ALGORITHMS, task=task, stop=stop, encode=False)
    outcome, failure = None, None
    try:
        outcome = pipeline.run()
    except KeyboardInterrupt:
        stop.set()
    except (BitWitnessError, OSError) as exc:
        failure = exc
    finally:
        task.finish()
    try:
        sink.close()
    except BitWitnessError as exc:
        failure = failure or exc
    errors = tuple(byte_ranges_to_sectors(pipeline.bad, stream.sector_size))
    written = sink.written
    if failure is not None:
        return {"status": Status.FAILED, "bytes_written": written, "read_errors": errors,
                "error": f"{failure}; {plan.target} holds the first {written} bytes of the "
                         "media only"}
    if outcome is None or not outcome.complete:
        return {"status": Status.INTERRUPTED, "bytes_written": written, "read_errors": errors,
                "error": f"interrupted by the user or the system; {plan.target} holds the first "
                         f"{written} bytes only"}
    checks = tuple(compare(references, outcome.hashes))
    run: dict[str, Any] = {"status": Status.COMPLETED, "error": None, "hashes": outcome.hashes,
                           "references": checks, "bytes_written": written,
                           "read_errors": errors}
    if not checks:
        run["warnings"] = ("no stored or logged hash for this image: the written media could "
                           "not be checked against the image's record",)
    if errors:
        run["status"] = Status.COMPLETED_WITH_ERRORS
        run["error"] = (f"the image could not be read in full ({sum(c for _, c in errors)} "
                        "sectors); the target holds zeros where it failed")
    elif bad := [c for c in checks if not c.match]:
        run["status"] = Status.FAILED
        run["error"] = (f"{bad[0].algorithm} of the restored media is {bad[0].computed}, but "
                        f"{bad[0].source} records {bad[0].expected}")
    if plan.verify:
        run.update(_read_back(plan.target, stream.size, outcome.hashes, mediator=mediator,
                              stop=stop, run=run))
    return run


def _read_back(target: Path, length: int, written: dict[str, str], *, mediator: Mediator,
               stop: threading.Event, run: dict[str, Any]) -> dict[str, Any]:
    """``--verify``: the verification object, and the status/error it changes."""
    try:
        hashes = hash_target(target, length, mediator, stop=stop)
    except KeyboardInterrupt:
        hashes = None
    except OutputError as exc:
        return {"status": Status.FAILED, "error": run["error"] or str(exc),
                "verification": {"verdict": RestoreVerdict.MISMATCH.value, "hashes": None,
                                 "length": length, "detail": str(exc)}}
    if hashes is None:
        return {"status": Status.INTERRUPTED,
                "error": "interrupted while reading the target back: it was written in full but "
                         "not verified",
                "verification": None}
    same = hashes == written
    detail = (f"the target's first {length} bytes read back identical to what was written"
              if same else f"the target's first {length} bytes read back DIFFERENT")
    out: dict[str, Any] = {"verification": {
        "verdict": (RestoreVerdict.VERIFIED if same else RestoreVerdict.MISMATCH).value,
        "hashes": hashes, "length": length, "detail": detail}}
    if not same and run["status"] is Status.COMPLETED:
        out.update(status=Status.FAILED,
                   error=f"{target} does not read back as written (hashes differ)")
    return out


def _verdict(record: RestoreRecord, verify: bool) -> RestoreVerdict:
    if record.status in (Status.INTERRUPTED, Status.FAILED) and not record.hashes:
        return RestoreVerdict.INCOMPLETE
    if record.status is not Status.COMPLETED:
        return RestoreVerdict.MISMATCH
    return RestoreVerdict.VERIFIED if verify else RestoreVerdict.WRITTEN


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
    return RestoreResult(
        image=plan.image, target=plan.target, target_kind=plan.kind,
        media_size=record.media_size, hashes=record.hashes, references=record.references,
        target_hashes=target_hashes, verdict=verdict, error=record.error,
        started=record.started, ended=record.ended, custody_seq=seq, status=record.status,
        bytes_written=record.bytes_written or 0, read_errors=record.read_errors,
        log_json=log_json, log_text=log_text, log_sha256=log_sha, target_facts=plan.facts,
        warnings=record.warnings)


def _options(plan: _Plan, base: Path) -> dict[str, Any]:
    return {"hashes": list(DEFAULT_ALGORITHMS), "verify": plan.verify,
            "overwrite": plan.overwrite, "confirmed": "--yes" if plan.yes else "asked",
            "log": str(base)}


def _metadata(stream: ImageStream) -> dict[str, str]:
    """The case fields the image itself carries (E01 header), for the log's ``metadata``."""
    from bitwitness.acquire.convert.convert import HEADER_KEYS

    header = getattr(stream, "header_values", None)
    if not isinstance(header, dict):
        return {}
    return {key: str(header[name]) for name, key in HEADER_KEYS.items() if header.get(name)}
