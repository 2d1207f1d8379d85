"""Reads with a deadline, for drives that stall.

A failing drive can take minutes over one read (it retries internally), and the kernel does not
let a process abandon a read in progress. So a read with a deadline runs in a helper thread: if
it has not returned within ``timeout`` seconds it is abandoned (the thread stays blocked in the
kernel; its result, read into its own buffer, is never used), logged, and reported as a
:class:`~bitwitness.errors.ReadError`, which the retry logic treats like any unreadable sector.

Why the next read waits for the abandoned one: a stalled drive (and a loop device, which queues
behind its backing file) answers nothing else until it gives up on the stalled read; reads sent
meanwhile would time out too and be counted as errors they are not. So the next read first waits
up to ``patience`` timeouts for the stalled one to end.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

from bitwitness.errors import ReadError

_T = TypeVar("_T")
#: Timed-out reads named in the log one by one; beyond that, counted.
LISTED = 20
#: How many timeouts the next read waits for a stalled one to end.
PATIENCE = 100


class StallGuard:
    """Runs reads with a deadline; keeps the account of those that timed out."""

    def __init__(self, timeout: float, patience: float = PATIENCE) -> None:
        self.timeout = timeout
        self.patience = patience
        self.count = 0
        self.listed: list[str] = []
        self._stuck: threading.Thread | None = None
        self._lock = threading.Lock()

    def call(self, read: Callable[[], _T], offset: int, length: int) -> _T:
        with self._lock:
            stuck = self._stuck
        if stuck is not None:
            stuck.join(self.patience * self.timeout)
        box: dict[str, Any] = {}

        def work() -> None:
            try:
                box["data"] = read()
            except BaseException as exc:  # handed to the waiting thread
                box["error"] = exc

        worker = threading.Thread(target=work, name="timed-read", daemon=True)
        worker.start()
        worker.join(self.timeout)
        if worker.is_alive():
            with self._lock:
                self._stuck = worker
                self.count += 1
                if len(self.listed) < LISTED:
                    self.listed.append(f"bytes {offset}-{offset + length - 1}")
            raise ReadError(offset, length, f"no answer within {self.timeout:g} s")
        if "error" in box:
            raise box["error"]
        return box["data"]  # type: ignore[no-any-return]

    def note(self) -> str | None:
        """The log's warning about the reads that timed out, or None."""
        if not self.count:
            return None
        more = self.count - len(self.listed)
        return (f"{self.count} read(s) got no answer within {self.timeout:g} s and were counted "
                f"as read errors: {', '.join(self.listed)}"
                + (f" and {more} more" if more > 0 else ""))


class TimedSource:
    """A source (``Source``, ``FaultySource``) whose every read has a deadline."""

    def __init__(self, inner: Any, timeout: float) -> None:
        self.inner = inner
        self.guard = StallGuard(timeout)

    @property
    def facts(self) -> Any:
        return self.inner.facts

    @property
    def size(self) -> int:
        return int(self.inner.size)

    @property
    def sector_size(self) -> int:
        return int(self.inner.sector_size)

    def read(self, offset: int, length: int) -> bytes:
        return bytes(self.guard.call(lambda: self.inner.read(offset, length), offset, length))

    def read_direct(self, offset: int, length: int) -> bytes:
        direct = getattr(self.inner, "read_direct", self.inner.read)
        return bytes(self.guard.call(lambda: direct(offset, length), offset, length))

    def readinto(self, offset: int, view: memoryview) -> None:
        """Read into a buffer of the helper's own, then copy: an abandoned read must never
        write into a buffer that has gone back into service. Bypassing the page cache: a
        readahead would meet the stalled sector in the background, and the timeout would
        strike whichever read happened to wait for it."""
        view[:] = self.read_direct(offset, len(view))

    def stall_note(self) -> str | None:
        return self.guard.note()

    def close(self) -> None:
        self.inner.close()
