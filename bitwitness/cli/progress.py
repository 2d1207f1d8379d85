"""The command line's mediator: rich progress bars on a terminal, silence elsewhere.

Engines report through :class:`bitwitness.progress.Mediator`; commands pass
``cli_mediator(as_json)``. On a terminal (stderr is a TTY) and without ``--json`` a live progress
bar shows bytes, rate, ETA and the error count; otherwise nothing is drawn and the command prints
one summary at the end. Notices (warnings) always go to stderr.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import click

from bitwitness.cli import output
from bitwitness.cli.output import escape
from bitwitness.errors import UnreadEvidenceError
from bitwitness.progress import UNREAD, Mediator, NullMediator, ProgressTask

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID


class _RichTask:
    def __init__(self, progress: Progress, task: TaskID) -> None:
        self._progress = progress
        self._task = task
        self._lock = threading.Lock()

    def advance(self, nbytes: int) -> None:
        with self._lock:
            self._progress.advance(self._task, nbytes)

    def set_errors(self, count: int) -> None:
        style = "bold red" if count else "dim"
        with self._lock:
            self._progress.update(self._task, errors=f"[{style}]{count} errors[/]")

    def set_phase(self, phase: str) -> None:
        with self._lock:
            self._progress.update(self._task, phase=f"[cyan]{escape(phase)}[/]")

    def finish(self, *, complete: bool = True) -> None:
        """Stopped early (``complete`` false), the bar keeps the bytes really done."""
        with self._lock:
            task = self._progress.tasks[self._task]
            if complete and task.total is not None:
                self._progress.update(self._task, completed=task.total)
            self._progress.stop_task(self._task)


class RichMediator:
    """Draws one progress line per task on stderr; asks questions with click.confirm."""

    def __init__(self) -> None:
        self.unread = 0  #: notices of evidence a walk could not read (level UNREAD)
        # rich.progress (~10 ms to import) only when bars are drawn: not with --json or off a TTY
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self.progress = Progress(
            TextColumn("{task.description}", markup=False),
            BarColumn(),
            DownloadColumn(binary_units=True),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[phase]}"),
            TextColumn("{task.fields[errors]}"),
            console=output.stderr.rich(),
            transient=False,
        )

    def begin(self, label: str, total: int | None) -> ProgressTask:
        task = self.progress.add_task(label, total=total, errors="[dim]0 errors[/]",
                                      phase="")
        return _RichTask(self.progress, task)

    def notice(self, message: str, *, level: str = "info") -> None:
        if level == UNREAD:
            self.unread += 1
            level = "warning"
        style = {"warning": "bold yellow", "error": "bold red"}.get(level, "cyan")
        self.progress.console.print(f"[{style}]{level}:[/] {escape(message)}")

    def confirm(self, question: str) -> bool:
        self.progress.stop()
        try:
            return click.confirm(question, default=False, err=True)
        finally:
            self.progress.start()


class QuietMediator(NullMediator):
    """No bars; notices still reach stderr (a warning must never be lost off a terminal)."""

    def __init__(self) -> None:
        self.unread = 0  #: notices of evidence a walk could not read (level UNREAD)

    def notice(self, message: str, *, level: str = "info") -> None:
        if level == UNREAD:
            self.unread += 1
            level = "warning"
        if level != "info":
            output.stderr.print(f"{level}: {escape(message)}")

    def confirm(self, question: str) -> bool:
        if sys.stdin.isatty():
            return click.confirm(question, default=False, err=True)
        return False


def interactive() -> bool:
    """True when a person is watching stderr.

    rich decides (its console honours TTY_COMPATIBLE and FORCE_COLOR), except when stderr is
    no terminal and neither variable is set (:func:`~.output.no_terminal`): rich then says no
    too, and a listing piped to a file does not pay rich's import (a fifth of ``ls -r``'s time
    on a small file system).
    """
    if output.no_terminal(sys.stderr):
        return False
    return bool(output.stderr.is_terminal)


@contextmanager
def cli_mediator(as_json: bool = False) -> Iterator[Mediator]:
    """The mediator a command should use, live for the duration of the ``with`` block."""
    if as_json or not interactive():
        yield QuietMediator()
        return
    mediator = RichMediator()
    with mediator.progress:
        yield mediator




def fail_if_unread(mediator: Mediator, what: str) -> None:
    """End the command with exit 1 when its walk could not read part of the evidence (the
    warnings above name each part): ``what`` it wrote is incomplete."""
    count = int(getattr(mediator, "unread", 0))
    if count:
        raise UnreadEvidenceError(
            f"{count} folder(s) or entries could not be read (named in the warnings above): "
            f"{what} is incomplete")
