"""The process's standard output and error, made to write every byte or fail when unbuffered.

With ``PYTHONUNBUFFERED`` (or ``python -u``, common in containers and CI) the standard
streams write straight to their ``FileIO``, whose ``write`` returns a short count when a pipe
takes part of a large write and then loses its reader (``| head``): the kernel reports the
bytes it took, not the broken pipe. ``TextIOWrapper``, which every ``print`` goes through,
ignores that count (CPython issue gh-85393), and so did ``cat``'s writes of blocks: the rest
was dropped with no error, and ``ls --json | head -c 10`` exited 0 as if the whole document had
been read. Over :class:`WholeFileIO` the rest is written again, which raises the
``BrokenPipeError`` the command line answers with its exit code (141). Buffered streams (the
default) are left alone: their ``BufferedWriter`` already writes the rest, or raises.
"""

from __future__ import annotations

import io
import sys
from typing import Any


class WholeFileIO(io.FileIO):
    """A ``FileIO`` whose ``write`` returns only once all of ``data`` is written, or raises
    (``None`` still where a non-blocking descriptor took none)."""

    def write(self, data: Any) -> int | None:  # type: ignore[override]
        view = memoryview(data).cast("B")
        total = len(view)
        done = super().write(view)
        if done is None:
            return None
        while done < total:  # only after a short write: the pipe took part and lost its reader
            more = super().write(view[done:])
            if not more:  # None (would block) or 0: nothing more will be taken
                raise BrokenPipeError(32, f"wrote {done} of {total} bytes")
            done += more
        return total


def write_whole() -> None:
    """Rebuild an unbuffered ``sys.stdout`` or ``sys.stderr`` over :class:`WholeFileIO`,
    keeping its descriptor, encoding, error handler and line buffering (``sys.__stdout__``
    and ``sys.__stderr__`` follow). Any other stream (buffered, a test's capture, closed) is
    left as it is.

    Only for the process's own streams: the old objects are detached, not closed, and the
    descriptor stays open under the new ones (neither closes it)."""
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if (type(stream) is not io.TextIOWrapper or stream.closed
                or type(stream.buffer) is not io.FileIO):
            continue
        stream.flush()
        encoding, errors = stream.encoding, stream.errors
        line_buffering, write_through = stream.line_buffering, stream.write_through
        raw = stream.detach()
        rebuilt = io.TextIOWrapper(WholeFileIO(raw.fileno(), "w", closefd=False),
                                   encoding=encoding, errors=errors,
                                   line_buffering=line_buffering, write_through=write_through)
        if getattr(sys, f"__{name}__") is stream:
            setattr(sys, f"__{name}__", rebuilt)
        setattr(sys, name, rebuilt)
