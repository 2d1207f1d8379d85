"""Which internal snapshot of an image to read (``--snapshot ID|NAME``), for the running command.

A QCOW2 image keeps earlier states of its disk inside the file (internal snapshots); by default
the current state is the media. The choice is held for the command's context, as named parent
files are (:func:`bitwitness.images.libyal.set_named_parents`), so that every way a command opens
its image reads the same state. It applies to the image named on the command line only: the
files beneath it (a backing chain) are read as they are, as QEMU reads them under a snapshot.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_CHOSEN: ContextVar[str | None] = ContextVar("chosen_snapshot", default=None)


def choose_snapshot(value: str) -> Callable[[], None]:
    """Read snapshot ``value`` (an ID, else a name) of the images opened for the rest of this
    context (the CLI, once per command); returns what undoes it."""
    token = _CHOSEN.set(value)
    return lambda: _CHOSEN.reset(token)


def chosen_snapshot() -> str | None:
    """The snapshot chosen for this context, or None: the image's current state."""
    return _CHOSEN.get()


@contextmanager
def current_state() -> Iterator[None]:
    """No snapshot chosen inside the block: for the files beneath the image named (backing
    files), which are read in their own current state."""
    token = _CHOSEN.set(None)
    try:
        yield
    finally:
        _CHOSEN.reset(token)
