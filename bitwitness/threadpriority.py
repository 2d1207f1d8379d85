"""Helper threads step aside for the one thread a job waits on (Linux).

An acquisition or a verification hashes the media with MD5, whose one thread is the job's
longest chain of work (MD5 cannot be split; SHA-1, SHA-256, inflating and deflating take less
and run beside it). On two cores the kernel shares them fairly among every runnable thread, so
MD5 waited while the others ran, and finished later than the work required. Lowered by
:data:`HELPER_NICE`, the helper threads run when MD5's thread leaves a core free:
``verify`` of a 1 GiB ewfacquire E01 took a median 1.80 s with every thread equal and 1.70 s
with the helpers at nice 5 (6 rounds each, alternated; nice 2 gave 1.76 s, nice 10 the same as
5). Nothing else changes: the same work is done, in the same order, by the same threads.

Only on Linux, where ``setpriority`` applies to the calling thread alone; elsewhere it would
lower the whole process, and nothing is done.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterable
from functools import cache

#: How much lower than the job's own priority a helper thread runs (``nice`` steps).
HELPER_NICE = 5
_CALIBRATION_BYTES = 1 << 18


def step_aside() -> None:
    """Lower the calling thread's priority by :data:`HELPER_NICE` (Linux only; a failure is
    ignored: the thread then runs as before)."""
    if sys.platform != "linux":
        return
    with contextlib.suppress(OSError):
        own = os.getpriority(os.PRIO_PROCESS, 0)
        os.setpriority(os.PRIO_PROCESS, 0, min(19, own + HELPER_NICE))


def slowest(algorithms: Iterable[str]) -> str | None:
    """The algorithm that takes longest per byte on this machine (MD5 where the CPU hashes SHA
    in hardware, SHA-256 where it does not), each measured once per process (the least of
    three hashes of 256 KiB: about 1 ms an algorithm); None for none."""
    names = tuple(algorithms)
    return max(names, key=_cost) if names else None


@cache
def _cost(name: str) -> float:
    import hashlib  # here: the EWF reader imports this module to read, and reading hashes nothing

    data = bytes(_CALIBRATION_BYTES)
    best = float("inf")
    for _ in range(3):  # the least of three: the first may pay for loading the code
        h = hashlib.new(name)
        started = time.perf_counter()
        h.update(data)
        best = min(best, time.perf_counter() - started)
    return best
