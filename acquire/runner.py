"""One runner for every job that writes an image: acquire, convert and restore.

Every such job has the same shape, chosen so that every outcome is defensible:

1. the job is planned and everything that can be refused is refused before this runner starts
   (nothing written, no log);
2. :meth:`Job.write_preliminary`: a log saying "failed: did not finish" exists before the first
   byte is written, so a killed process leaves a log that says so;
3. :meth:`Job.start` prepares (or, on resume, reopens) the outputs, then the job's read pass
   (:class:`ReadPass`) reads the source into them: one sequential pass of the acquisition
   pipeline for acquire, convert and restore; the phases of a rescue over its map
   (:mod:`bitwitness.acquire.rescue`), which fill the image out of order;
4. the outputs are finished (and checked, when asked) by :meth:`Job.completed`, or left visibly
   unfinished by :meth:`Job.stopped` / :meth:`Job.failed`;
5. each of those writes the final log, then the custody event when the job belongs to a case,
   and returns the job's :class:`JobResult`.

The interruption model is the same for all (:func:`bitwitness.signals.stop_on_signals`): the first
SIGINT/SIGTERM (or the caller's ``stop`` event) lets the block in hand finish; the job then logs
"interrupted" and its result exits 130 (an acquisition can be resumed from there). A second signal
stops the pass at once (:class:`KeyboardInterrupt`), with the same logging; once the pass has
stopped, the wrap-up that writes that log is shielded from further signals. Checking what was
written (``--verify``) watches the same ``stop``: a first or second signal there ends the check,
and the final log says the output was written in full but not verified.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol, TypeVar

from bitwitness.acquire.logs import Status
from bitwitness.acquire.pipeline import PipelineOutcome
from bitwitness.acquire.retry import StopRequested
from bitwitness.acquire.sinks import OutputFile
from bitwitness.errors import BitWitnessError, ExitCode
from bitwitness.progress import Mediator, ProgressTask
from bitwitness.signals import shielded, stop_on_signals
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


class ReadPass(Protocol):
    """The stage that reads the source into the job's outputs (a
    :class:`~bitwitness.acquire.pipeline.Pipeline`, or a rescue's phases).

    It ends early, with an incomplete outcome or :class:`StopRequested`, once the runner's
    ``stop`` is set, after the block (or sector) in hand is written; it raises
    :class:`KeyboardInterrupt` (a second signal), :class:`BitWitnessError` or :class:`OSError`."""

    #: source bytes this pass read and handed on (not zero-filled ones, not a resumed prefix)
    bytes_read: int

    def run(self, start: int) -> PipelineOutcome:
        """Read from ``start`` (what :meth:`Job.start` returned) until the outputs hold the
        media, or until stopped."""


R_co = TypeVar("R_co", bound=JobResult, covariant=True)
P = TypeVar("P", bound=ReadPass)


class Job(Protocol[R_co, P]):
    """What differs between the jobs; the order of events is the runner's."""

    @property
    def title(self) -> str:
        """The progress task's label."""

    @property
    def media_size(self) -> int: ...

    def write_preliminary(self) -> None:
        """The log that tells the truth if the process dies from here on."""

    def make_pass(self, task: ProgressTask, stop: threading.Event) -> P:
        """The pass that reads the source into the job's outputs, reporting to ``task``."""

    def start(self, read_pass: P) -> int:
        """Prepare the outputs, or reopen them on resume; returns the media bytes they already
        hold (where a sequential pass reads from)."""

    def completed(self, outcome: PipelineOutcome, stop: threading.Event) -> R_co:
        """The pass is complete: finish (and check, stopping when ``stop`` is set) the
        outputs, log, record custody."""

    def stopped(self, read_pass: P) -> R_co:
        """Interrupted: leave the outputs unfinished, log "interrupted", record custody."""

    def failed(self, read_pass: P, exc: BitWitnessError | OSError) -> R_co:
        """The pass failed: leave the outputs unfinished, log why, record custody (and raise
        when the job reports failures as errors)."""


def run_job(job: Job[R_co, P], mediator: Mediator,
            stop: threading.Event | None = None) -> R_co:
    """Run ``job`` in the order the module docstring gives; ``stop`` stops it cleanly."""
    stop = stop or threading.Event()
    job.write_preliminary()
    with stop_on_signals(stop):
        task = mediator.begin(job.title, job.media_size)
        read_pass = job.make_pass(task, stop)
        try:
            outcome = read_pass.run(job.start(read_pass))
        except (KeyboardInterrupt, StopRequested):
            stop.set()
            task.finish(complete=False)
            with shielded():
                return job.stopped(read_pass)
        except (BitWitnessError, OSError) as exc:
            stop.set()
            task.finish(complete=False)
            return job.failed(read_pass, exc)
        # the bar shows the bytes really read: it only goes to its end when none was unreadable
        task.finish(complete=outcome.complete and not outcome.bad_byte_ranges)
        if not outcome.complete:
            with shielded():
                return job.stopped(read_pass)
        return job.completed(outcome, stop)
