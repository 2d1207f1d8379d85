"""The mediator: how library code talks to whoever drives it, without printing.

Engines (acquisition, verification, conversion, export) take a :class:`Mediator`. The command line
passes one that draws rich progress bars; the TUI passes its own; tests pass
:class:`RecordingMediator` and assert on what was reported. Library code never prints.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Protocol

#: The notice level of a part of the evidence a walk could not read (a folder, an entry, a
#: folder past the depth walked): shown as a warning, and counted, so that the command's output
#: is said to be incomplete and the command ends with exit 1 rather than 0.
UNREAD = "unread"


class ProgressTask(Protocol):
    """One unit of work with a byte total (an image being read, a file being exported)."""

    def advance(self, nbytes: int) -> None:
        """``nbytes`` more bytes are done."""

    def set_errors(self, count: int) -> None:
        """The number of unreadable sectors (or bad chunks) found so far."""

    def finish(self, *, complete: bool = True) -> None:
        """The task is over; ``complete`` false when it stopped early (interrupted, failed):
        the display then keeps the bytes really done, never the total."""

    def set_phase(self, phase: str) -> None:
        """What the task is doing now (a rescue's pass: "copying", "trimming", ...)."""


class Mediator(Protocol):
    """What an engine may ask of its driver."""

    def begin(self, label: str, total: int | None) -> ProgressTask:
        """Start a task of ``total`` bytes (``None`` when unknown)."""

    def notice(self, message: str, *, level: str = "info") -> None:
        """Tell the user something worth knowing now (``level``: info, warning, error)."""

    def confirm(self, question: str) -> bool:
        """Ask a yes/no question; a mediator that cannot ask answers ``False``."""


class _NullTask:
    def advance(self, nbytes: int) -> None:
        pass

    def set_errors(self, count: int) -> None:
        pass

    def finish(self, *, complete: bool = True) -> None:
        pass

    def set_phase(self, phase: str) -> None:
        pass


class NullMediator:
    """Reports nowhere and answers every question with no."""

    def begin(self, label: str, total: int | None) -> ProgressTask:
        return _NullTask()

    def notice(self, message: str, *, level: str = "info") -> None:
        pass

    def confirm(self, question: str) -> bool:
        return False


@dataclass
class RecordedTask:
    """What a task reported, for tests."""

    label: str
    total: int | None
    done: int = 0
    errors: int = 0
    finished: bool = False
    complete: bool = False
    phases: list[str] = field(default_factory=list)

    def advance(self, nbytes: int) -> None:
        self.done += nbytes

    def set_errors(self, count: int) -> None:
        self.errors = count

    def finish(self, *, complete: bool = True) -> None:
        self.finished = True
        self.complete = complete

    def set_phase(self, phase: str) -> None:
        self.phases.append(phase)


@dataclass
class RecordingMediator:
    """Keeps everything it is told; answers questions with ``answer``. Thread-safe."""

    answer: bool = False
    tasks: list[RecordedTask] = field(default_factory=list)
    notices: list[tuple[str, str]] = field(default_factory=list)
    questions: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def begin(self, label: str, total: int | None) -> ProgressTask:
        task = RecordedTask(label, total)
        with self._lock:
            self.tasks.append(task)
        return task

    def notice(self, message: str, *, level: str = "info") -> None:
        with self._lock:
            self.notices.append((level, message))

    def confirm(self, question: str) -> bool:
        with self._lock:
            self.questions.append(question)
        return self.answer
