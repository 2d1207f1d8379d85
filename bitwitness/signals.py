"""Stopping long operations cleanly on Ctrl-C or SIGTERM.

Acquisition, conversion and restore must not die in the middle of a write: the first signal only
sets a ``stop`` event, the engine finishes the block in hand, writes its logs (status
"interrupted") and returns; a second signal raises :class:`KeyboardInterrupt` at once, for a read
hung in the kernel. Once the reading has stopped, the short wrap-up (outputs left unfinished, the
final log) runs :func:`shielded`: a signal then cannot cut the log that says "interrupted" in half.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """While active, SIGINT/SIGTERM set ``stop``; a second one raises KeyboardInterrupt.

    Only the main thread can install handlers; elsewhere this does nothing (the caller's own
    stop event still works).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@contextmanager
def shielded() -> Iterator[None]:
    """While active, SIGINT/SIGTERM are received and dropped: the job is already stopping, and
    its wrap-up (closing the outputs, the final log) is short. Main thread only, as above."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        pass

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
