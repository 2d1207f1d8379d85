"""One runner for every job that writes an image: acquire, convert and restore.

Every such job has the same shape, chosen so that every outcome is defensible:

1. the job is planned and everything that can be refused is refused before this runner starts
   (nothing written, no log);
2. :meth:`Job.write_preliminary`: a log saying "failed: did not finish" exists before the first
   byte is written, so a killed process leaves a log that says so;
3. :meth:`Job.start` prepares (or, on resume, reopens) the outputs, then one pass of the
   acquisition pipeline reads, hashes and writes;
4. the outputs are finished (and checked, when asked) by :meth:`Job.completed`, or left visibly
   unfinished by :meth:`Job.stopped` / :meth:`Job.failed`;
5. each of those writes the final log, then the custody event when the job belongs to a case,
   and returns the job's :class:`JobResult`.

The interruption model is the same for all (:func:`bitwitness.signals.stop_on_signals`): the first
SIGINT/SIGTERM (or the caller's ``stop`` event) lets the block in hand finish; the job then logs
"interrupted" and its result exits 130 (an acquisition can be resumed from there). A second signal
stops the pass at once (:class:`KeyboardInterrupt`), with the same logging. Checking what was
written (``--verify``) watches the same ``stop``; a second signal there ends the process.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol, TypeVar

from bitwitness.acquire.logs import Status
from bitwitness.acquire.pipeline import Pipeline, PipelineOutcome
from bitwitness.acquire.retry import StopRequested
from bitwitness.acquire.sinks import OutputFile
from bitwitness.errors import BitWitnessError, ExitCode
from bitwitness.progress import Mediator, ProgressTask
from bitwitness.signals import stop_on_signals
from bitwitness.verdict import Verdict

#: The error every interrupted job records.
INTERRUPTED = "interrupted by the user or the system"
#: Verdicts that leave a completed job's exit code at 0.
GOOD_VERDICTS = (Verdict.VERIFIED, Verdict.WRITTEN, Verdict.UNVERIFIED)


@dataclass(frozen=True, kw_only=True)
class JobResult:
    """How a job that writes an image ended, as its final log records it; the CLI renders it
    and exits with :attr:`exit_code`. Each job's result adds what only it knows."""

    status: Status
    verdict: Verdict | None  #: what checking the written media found; None: not checked
    error: str | None
    media_size: int
    hashes: dict[str, str]  #: of the media as written ({} when it was not written in full)
    outputs: tuple[OutputFile, ...]
    read_errors: tuple[tuple[int, int], ...]  #: (first_sector, count) zero-filled
    log_json: Path | None
    log_text: Path | None
    started: datetime
    ended: datetime
    warnings: tuple[str, ...] = ()
    custody_seq: int | None = None  #: the custody event recorded for the job

    @property
    def logs(self) -> tuple[Path, ...]:
        return tuple(p for p in (self.log_json, self.log_text) if p is not None)

    @property
    def exit_code(self) -> ExitCode:
        """130 interrupted; 2 the output could not be written (a destination problem: nothing
        hashed in full); 1 unreadable sectors, a mismatch or a failed check; 0 otherwise."""
        if self.status is Status.INTERRUPTED:
            return ExitCode.INTERRUPTED
        if self.status is Status.FAILED and not self.hashes:
            return ExitCode.USAGE
        if self.status is Status.COMPLETED and (self.verdict is None
                                                or self.verdict in GOOD_VERDICTS):
            return ExitCode.OK
        return ExitCode.EVIDENCE


R_co = TypeVar("R_co", bound=JobResult, covariant=True)


class Job(Protocol[R_co]):
    """What differs between the jobs; the order of events is the runner's."""

    @property
    def title(self) -> str:
        """The progress task's label."""

    @property
    def media_size(self) -> int: ...

    def write_preliminary(self) -> None:
        """The log that tells the truth if the process dies from here on."""

    def make_pipeline(self, task: ProgressTask, stop: threading.Event) -> Pipeline:
        """The pass that reads the source into the job's sinks."""

    def start(self, pipeline: Pipeline) -> int:
        """Prepare the sinks, or reopen them on resume; returns the media offset to read from."""

    def completed(self, outcome: PipelineOutcome, stop: threading.Event) -> R_co:
        """The pass is complete: finish (and check, stopping when ``stop`` is set) the
        outputs, log, record custody."""

    def stopped(self, pipeline: Pipeline) -> R_co:
        """Interrupted: leave the outputs unfinished, log "interrupted", record custody."""

    def failed(self, pipeline: Pipeline, exc: BitWitnessError | OSError) -> R_co:
        """The pass failed: leave the outputs unfinished, log why, record custody (and raise
        when the job reports failures as errors)."""


def run_job(job: Job[R_co], mediator: Mediator, stop: threading.Event | None = None) -> R_co:
    """Run ``job`` in the order the module docstring gives; ``stop`` stops it cleanly."""
    stop = stop or threading.Event()
    job.write_preliminary()
    with stop_on_signals(stop):
        task = mediator.begin(job.title, job.media_size)
        pipeline = job.make_pipeline(task, stop)
        try:
            outcome = pipeline.run(job.start(pipeline))
        except (KeyboardInterrupt, StopRequested):
            stop.set()
            task.finish(complete=False)
            return job.stopped(pipeline)
        except (BitWitnessError, OSError) as exc:
            stop.set()
            task.finish(complete=False)
            return job.failed(pipeline, exc)
        task.finish(complete=outcome.complete)
        if not outcome.complete:
            return job.stopped(pipeline)
        return job.completed(outcome, stop)
