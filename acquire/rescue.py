"""Rescuing a failing drive as GNU ddrescue does: the good data first, the bad areas last.

Why not the plain acquisition's retry strategy: it narrows every failing block down to single
sectors, with retries, where it meets it; on a drive with many clustered bad sectors that spends
most of the time in the damaged zones while the good data elsewhere is still at risk (a failing
drive can die at any moment). A rescue runs in phases over a map of the source
(:mod:`bitwitness.acquire.rescuemap`, kept beside the image as ``BASE.map``):

1. **copying**: read in clusters (64 KiB); a failed cluster is marked non-trimmed and the pass
   *skips ahead*, further after each consecutive failure (64 KiB, doubling, at most 1% of the
   source), so that a damaged zone costs a few reads; a second pass reads what was skipped;
2. **trimming**: each failed cluster is read sector by sector from both edges inward, up to the
   first unreadable sector at each edge;
3. **scraping**: what is left between the edges is read sector by sector;
4. **retrying**: every bad sector is read again, ``retries`` passes.

Every read bypasses the page cache (``Source.read_direct``), so a failure means these very
sectors. Unreadable sectors are zeros in the image and listed in the log, as in an acquisition.
The image (``BASE.raw.partial`` until the end) is written in place; every second the image is
fsynced and then the map saved, so ``--resume`` continues from the map even after SIGKILL, and
``--retry-bad`` on a finished rescue re-reads only its bad sectors. When all phases are done the
image is hashed (read back in order: the evidence is not read twice) and made final.

A drive that drops off ends the run at once (exit 1) with the map and image durable and the
partial image hashed in the log; ``--resume`` continues once it is back. With the request's
``read_timeout`` a read that gets no answer in time is abandoned, logged and counted as a read
error (the source is opened as an acquisition's is: :func:`engine._open`).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bitwitness.acquire import engine, guardrails
from bitwitness.acquire import resume as resuming
from bitwitness.acquire.logs import Status, log_paths, read_log, write_logs
from bitwitness.acquire.pipeline import PipelineOutcome
from bitwitness.acquire.rescuemap import PHASE_NAMES, Block, Phase, RescueMap
from bitwitness.acquire.retry import StopRequested
from bitwitness.acquire.runner import INTERRUPTED, run_job
from bitwitness.acquire.sinks import OutputFile, RawSink
from bitwitness.acquire.verifying import Verification, verify_output
from bitwitness.acquisitionlog import AcquisitionLog
from bitwitness.errors import (
    BitWitnessError,
    DestinationError,
    OutputExistsError,
    ReadError,
    SourceGoneError,
    UsageError,
)
from bitwitness.fileio import pwrite_all
from bitwitness.hashing import hash_file
from bitwitness.progress import Mediator, ProgressTask

CLUSTER = 64 << 10
SKIP_MIN = 64 << 10
SKIP_MAX = 1 << 30
CHECKPOINT_SECONDS = 1.0


@dataclass(frozen=True)
class RescueOptions:
    """How to rescue; ``retry_bad`` re-reads only the bad sectors of a finished rescue."""

    retry_bad: bool = False
    cluster: int = CLUSTER
    checkpoint_seconds: float = CHECKPOINT_SECONDS


def map_path(base: Path) -> Path:
    return base.with_name(base.name + ".map")


@dataclass
class _Rescuer:
    """The phases over one source, one image descriptor and one map."""

    source: Any
    fd: int
    rmap: RescueMap
    map_file: Path
    sector_size: int
    retries: int
    options: RescueOptions
    task: ProgressTask
    stop: threading.Event
    checkpoint_hook: Callable[[], None]
    bytes_read: int = 0  #: source bytes this run read (never the zero-filled ones)
    _last_checkpoint: float = field(default_factory=time.monotonic)

    # --- reading and bookkeeping ---------------------------------------------------------

    def _read(self, pos: int, size: int) -> bytes | None:
        """The bytes, or None for a read error; raises SourceGoneError, StopRequested."""
        if self.stop.is_set():
            raise StopRequested
        try:
            return bytes(self.source.read_direct(pos, size))
        except ReadError:
            return None

    def _good(self, pos: int, data: bytes) -> None:
        pwrite_all(self.fd, data, pos)  # os.pwrite may take fewer bytes (a disk filling up)
        self.rmap.mark(pos, len(data), Block.FINISHED)
        self.bytes_read += len(data)
        self.task.advance(len(data))

    def _bad(self, pos: int, size: int) -> None:
        """Zeros in the image (a resumed image may hold bytes the map never vouched for)."""
        pwrite_all(self.fd, bytes(size), pos)
        self.rmap.mark(pos, size, Block.BAD)
        self.task.set_errors(-(-self.rmap.total(Block.BAD) // self.sector_size))

    def checkpoint(self, pos: int | None = None, *, force: bool = False) -> None:
        if pos is not None:
            self.rmap.current_pos = pos
        now = time.monotonic()
        if not force and now - self._last_checkpoint < self.options.checkpoint_seconds:
            return
        self._last_checkpoint = now
        os.fsync(self.fd)  # the image first: the map never claims more than the disk holds
        self.rmap.save(self.map_file)
        self.checkpoint_hook()

    def _phase(self, phase: Phase, current_pass: int = 1) -> None:
        self.rmap.phase, self.rmap.current_pass = phase, current_pass
        areas = len(self.rmap.areas(Block.BAD)) + len(self.rmap.areas(Block.NON_TRIMMED)) + \
            len(self.rmap.areas(Block.NON_SCRAPED))
        self.task.set_phase(f"{PHASE_NAMES[phase]} (pass {current_pass}), "
                            f"{areas} error areas")
        self.checkpoint(force=True)

    # --- the phases ----------------------------------------------------------------------

    def run(self, start: int) -> PipelineOutcome:
        """The runner's read pass (:class:`~bitwitness.acquire.runner.ReadPass`): every phase
        still to do; ``start`` is what earlier runs rescued. Raises :class:`StopRequested`
        once ``stop`` is set, after the read in hand is in the image."""
        self.task.advance(start)
        self.task.set_errors(-(-self.rmap.total(Block.BAD) // self.sector_size))
        self.checkpoint(force=True)
        if self.rmap.areas(Block.NON_TRIED):
            self._phase(Phase.COPYING, 1)
            self._copy(skipping=True)
            self._phase(Phase.COPYING, 2)
            self._copy(skipping=False)
        if self.rmap.areas(Block.NON_TRIMMED):
            self._phase(Phase.TRIMMING)
            self._trim()
        if self.rmap.areas(Block.NON_SCRAPED):
            self._phase(Phase.SCRAPING)
            self._scrape()
        for attempt in range(1, self.retries + 1):
            if not self.rmap.areas(Block.BAD):
                break
            self._phase(Phase.RETRYING, attempt)
            self._retry()
        self.rmap.phase = Phase.FINISHED
        self.checkpoint(self.rmap.size, force=True)
        return PipelineOutcome(self.rmap.size, tuple((a.pos, a.size)
                                                     for a in self.rmap.areas(Block.BAD)),
                               hashes={}, source_hashes=None, complete=True)

    def _copy(self, *, skipping: bool) -> None:
        cluster = self.options.cluster
        skip_max = max(SKIP_MIN, min(SKIP_MAX, self.rmap.size // 100 // cluster * cluster))
        skip = SKIP_MIN
        for area in self.rmap.areas(Block.NON_TRIED):
            pos = area.pos
            while pos < area.end:
                size = min(cluster - pos % cluster, area.end - pos)
                data = self._read(pos, size)
                if data is not None:
                    self._good(pos, data)
                    skip = SKIP_MIN
                    pos += size
                else:
                    self.rmap.mark(pos, size, Block.NON_TRIMMED)
                    pos += size
                    if skipping:  # past the damaged zone: the rest of it waits for pass 2
                        pos += min(skip, area.end - pos)
                        skip = min(skip * 2, skip_max)
                self.checkpoint(pos)

    def _trim(self) -> None:
        ss = self.sector_size
        for area in self.rmap.areas(Block.NON_TRIMMED):
            pos, back = area.pos, area.end
            while pos < back:  # leading edge, forward
                size = min(ss, back - pos)
                data = self._read(pos, size)
                if data is None:
                    self._bad(pos, size)
                    pos += size
                    break
                self._good(pos, data)
                pos += size
            while back > pos:  # trailing edge, backward
                start = max(pos, back - ((back - 1) % ss + 1))
                data = self._read(start, back - start)
                if data is None:
                    self._bad(start, back - start)
                    back = start
                    break
                self._good(start, data)
                back = start
            if back > pos:
                self.rmap.mark(pos, back - pos, Block.NON_SCRAPED)
            self.checkpoint(pos)

    def _sectors(self, status: Block) -> None:
        """Read every sector of the areas with ``status``, one at a time."""
        ss = self.sector_size
        for area in self.rmap.areas(status):
            pos = area.pos
            while pos < area.end:
                size = min(ss - pos % ss, area.end - pos)
                data = self._read(pos, size)
                if data is None:
                    self._bad(pos, size)
                else:
                    self._good(pos, data)
                pos += size
                self.checkpoint(pos)

    def _scrape(self) -> None:
        self._sectors(Block.NON_SCRAPED)

    def _retry(self) -> None:
        self._sectors(Block.BAD)


# --- the run ---------------------------------------------------------------------------------


def rescue(request: engine.AcquisitionRequest, mediator: Mediator,
           options: RescueOptions | None = None) -> engine.AcquisitionResult:
    """Rescue ``request.source`` into a raw image with a map; see the module docstring.

    Everything that can be refused is refused first (as for an acquisition); then the rescue
    runs as every job that writes an image does (:func:`~bitwitness.acquire.runner.run_job`):
    the same logs, interruption model and result."""
    options = options or RescueOptions()
    engine._check_request(request)
    if request.format is not engine.OutputFormat.RAW or request.split or \
            request.second_output is not None:
        raise UsageError("--rescue writes one raw image (BASE.raw) and its map: no E01, "
                         "--split or --second-output (convert the finished image instead)")
    base, metadata, case = engine._resolve_case(request)
    earlier = _earlier_log(base, request, options)
    if earlier is not None:
        metadata = {**earlier.metadata, **metadata}
        request = replace(request, resume=True)
    run = engine._Run(request=request, base=base, algorithms=engine._algorithms(request),
                      started=datetime.now(UTC), case=case, metadata=metadata,
                      resume_log=earlier)
    source = engine._open(request, base)
    try:
        job = _plan(run, source, mediator, options)
        try:
            return run_job(job, mediator, request.stop)
        finally:
            os.close(job.fd)
    finally:
        source.close()


def _earlier_log(base: Path, request: engine.AcquisitionRequest,
                 options: RescueOptions) -> AcquisitionLog | None:
    if not (request.resume or options.retry_bad):
        return None
    json_path = log_paths(base)[0]
    if not map_path(base).is_file() or not json_path.is_file():
        raise UsageError(f"cannot continue the rescue: {map_path(base)} or {json_path} is "
                         "missing")
    try:
        log = read_log(json_path)
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot continue the rescue: {json_path}: {exc}") from exc
    status = log.status
    if options.retry_bad and status not in ("completed-with-errors", "completed"):
        raise UsageError(f"--retry-bad needs a finished rescue; the log says {status} "
                         "(continue it with --resume)")
    if not options.retry_bad and status not in resuming.RESUMABLE:
        raise UsageError(f"cannot resume: the log says the rescue is {status}"
                         + (" (--retry-bad re-reads its bad sectors)"
                            if status == "completed-with-errors" else ""))
    return log


def _plan(run: engine._Run, source: Any, mediator: Mediator,
          options: RescueOptions) -> _RescueJob:
    """The refusals, then the image and the map opened (created, or reopened to continue)."""
    req = run.request
    facts = source.facts
    run.sector_size = run.granularity = max(facts.logical_sector_size, 1)
    run.media_size = size = source.size
    if size == 0:
        raise UsageError(f"{facts.path} is empty (0 bytes): there is nothing to rescue")
    sink = RawSink(run.base, media_size=size, algorithms=run.algorithms,
                   overwrite=req.overwrite)
    run.sinks = [sink]
    engine._check_outputs(run, facts)
    guardrails.check_output_locations([map_path(run.base)])
    if not req.resume and not req.overwrite and map_path(run.base).exists():
        raise OutputExistsError(map_path(run.base))
    engine._warn_guardrails(run, facts, mediator)
    if run.resume_log is not None:
        resuming.check_source(run.resume_log, facts)
    fd, rmap = _open_image(run, sink, options)
    return _RescueJob(run=run, source=source, sink=sink, fd=fd, rmap=rmap, options=options,
                      mediator=mediator)


def _open_image(run: engine._Run, sink: RawSink,
                options: RescueOptions) -> tuple[int, RescueMap]:
    partial, final = sink.partial_paths()[0], sink.final_paths()[0]
    mapfile = map_path(run.base)
    partial.parent.mkdir(parents=True, exist_ok=True)
    if run.resume_log is None:
        flags = os.O_RDWR | os.O_CREAT | (os.O_TRUNC if run.request.overwrite else os.O_EXCL)
        fd = os.open(partial, flags | getattr(os, "O_CLOEXEC", 0), 0o644)
        os.ftruncate(fd, run.media_size)
        return fd, RescueMap(run.media_size)
    rmap = RescueMap.load(mapfile, run.media_size)
    if options.retry_bad:
        for sidecar in sink.sidecar_paths():  # they vouch for the image as it was
            sidecar.unlink(missing_ok=True)
        if final.exists():
            final.replace(partial)  # unfinished again while its bad sectors are re-read
        for area in rmap.areas(Block.BAD):
            rmap.mark(area.pos, area.size, Block.NON_SCRAPED)
    if not partial.exists():
        raise UsageError(f"cannot continue the rescue: {partial} is missing")
    fd = os.open(partial, os.O_RDWR | getattr(os, "O_CLOEXEC", 0))
    if os.fstat(fd).st_size != run.media_size:
        os.close(fd)
        raise UsageError(f"cannot continue the rescue: {partial} is not {run.media_size} bytes")
    run.resumed_from = rmap.total(Block.FINISHED)
    return fd, rmap


@dataclass
class _RescueJob:
    """A rescue as the runner's :class:`~bitwitness.acquire.runner.Job`: its read pass is a
    :class:`_Rescuer` over the map; the logs, custody and result are the acquisition's."""

    run: engine._Run
    source: Any
    sink: RawSink
    fd: int
    rmap: RescueMap
    options: RescueOptions
    mediator: Mediator
    rescuer: _Rescuer | None = None

    @property
    def title(self) -> str:
        return f"rescue {Path(self.source.facts.path).name}"

    @property
    def media_size(self) -> int:
        return self.run.media_size

    @property
    def map_file(self) -> Path:
        return map_path(self.run.base)

    def write_preliminary(self) -> None:
        self._log_progress()

    def _log_progress(self) -> None:
        """The log of a rescue in progress ("did not finish"), rewritten at every checkpoint
        after the map: what a killed run leaves behind."""
        run = self.run
        self._note_progress()
        record = engine._record(run, self.source.facts, Status.FAILED, engine._UNFINISHED,
                                done=self.rmap.total(Block.FINISHED),
                                read_errors=tuple(_bad_ranges(self.rmap, run.sector_size)),
                                bytes_read=self._bytes_read())
        write_logs(run.base, record, reserve=True)

    def _note_progress(self) -> None:
        doc: dict[str, Any] = {
            "map": str(self.map_file), "phase": PHASE_NAMES[self.rmap.phase],
            "finished_bytes": self.rmap.total(Block.FINISHED),
            "bad_bytes": self.rmap.total(Block.BAD),
            "untried_bytes": self.rmap.total(Block.NON_TRIED)
            + self.rmap.total(Block.NON_TRIMMED) + self.rmap.total(Block.NON_SCRAPED)}
        guard = getattr(self.source, "guard", None)  # a TimedSource's (read_timeout)
        if guard is not None and guard.count:
            doc["timed_out_reads"] = guard.count
        self.run.extra_progress = {"rescue": doc}

    def _bytes_read(self) -> int:
        return self.rescuer.bytes_read if self.rescuer is not None else 0

    def make_pass(self, task: ProgressTask, stop: threading.Event) -> _Rescuer:
        run, options = self.run, self.options
        self.rescuer = _Rescuer(
            source=self.source, fd=self.fd, rmap=self.rmap, map_file=self.map_file,
            sector_size=run.sector_size, retries=run.request.retries, options=options,
            task=task, stop=stop, checkpoint_hook=self._log_progress)
        return self.rescuer

    def start(self, rescuer: _Rescuer) -> int:
        return self.rmap.total(Block.FINISHED)

    def completed(self, outcome: PipelineOutcome,
                  stop: threading.Event) -> engine.AcquisitionResult:
        """Every phase done: the image hashed (read back in order) and made final."""
        run = self.run
        os.fsync(self.fd)
        errors = tuple(_bad_ranges(self.rmap, run.sector_size))
        hashes = hash_file(self.sink.partial_paths()[0], run.algorithms)
        outputs = tuple(self.sink.finish(hashes=hashes, errors=errors))
        self._note_progress()
        verification: tuple[Verification, ...] = ()
        if run.request.verify:
            verification = (verify_output(outputs[0].path, hashes, self.mediator, stop=stop),)
        status = Status.COMPLETED_WITH_ERRORS if errors else Status.COMPLETED
        return engine._finish(run, self.source, status, None, hashes=hashes, outputs=outputs,
                              errors=errors, verification=verification, done=run.media_size,
                              bytes_read=self._bytes_read())

    def stopped(self, rescuer: _Rescuer) -> engine.AcquisitionResult:
        return self._unfinished(rescuer, None)

    def failed(self, rescuer: _Rescuer,
               exc: BitWitnessError | OSError) -> engine.AcquisitionResult:
        return self._unfinished(rescuer, exc)

    def _unfinished(self, rescuer: _Rescuer,
                    exc: BitWitnessError | OSError | None) -> engine.AcquisitionResult:
        """Interrupted (``exc`` None) or failed: image and map durable. A failure (the drive
        gone, the destination full) hashes the partial image into the log, as an acquisition's,
        and raises, carrying the result; an interruption, like an acquisition's, does not (the
        examiner asked to stop: ``--resume`` re-reads the image anyway)."""
        run = self.run
        if not isinstance(exc, OSError):  # the image can still be written: make it durable
            rescuer.checkpoint(force=True)
        partial = self.sink.partial_paths()[0]
        outputs = (OutputFile(partial, partial.stat().st_size,
                              hash_file(partial, run.algorithms) if exc is not None else {}),)
        self._note_progress()
        errors = tuple(_bad_ranges(self.rmap, run.sector_size))
        done = self.rmap.total(Block.FINISHED)
        if exc is None:
            return engine._finish(run, self.source, Status.INTERRUPTED, INTERRUPTED,
                                  outputs=outputs, errors=errors, done=done,
                                  bytes_read=self._bytes_read())
        error: BitWitnessError = exc if isinstance(exc, BitWitnessError) else \
            DestinationError(f"cannot write the image: {exc}", path=partial)
        if isinstance(exc, SourceGoneError):
            error.args = (f"{exc}; the rescue so far is kept ({partial}, {self.map_file}): "
                          "continue with --resume once the drive is back",)
        result = engine._finish(run, self.source, Status.FAILED, str(error), outputs=outputs,
                                errors=errors, done=done, bytes_read=self._bytes_read())
        raise engine._with_logs(error, result) from exc


def _bad_ranges(rmap: RescueMap, sector_size: int) -> list[tuple[int, int]]:
    """The sectors known unreadable (``-``); once every phase is done, all that is not rescued."""
    return [(a.pos // sector_size, -(-a.end // sector_size) - a.pos // sector_size)
            for a in rmap.areas(Block.BAD)]
