"""Fault injection: a source whose reads fail at chosen sectors, for tests and demonstrations.

Real bad sectors are rare on a test machine, so the retry logic, the error ranges in E01 ``error2``
and the logs are proven with :class:`FaultySource`: it wraps a real :class:`Source` and raises
:class:`~bitwitness.errors.ReadError` for any read touching a listed sector, either always
(``permanent``) or for the first ``k`` reads touching it (``transient``, a sector that recovers
on retry). It never changes the bytes it does return.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable, Iterable

from bitwitness.acquire.source import Source, SourceFacts
from bitwitness.errors import ReadError


class FaultySource:
    """A :class:`Source` look-alike with injected read errors; closing closes the inner source."""

    def __init__(self, inner: Source, *, permanent: Iterable[int] = (),
                 transient: dict[int, int] | None = None,
                 before_read: Callable[[int, int], None] | None = None) -> None:
        self.inner = inner
        self._permanent = sorted(set(permanent))
        self._transient = dict(transient or {})
        self._transient_keys = sorted(self._transient)
        self._before_read = before_read
        self._lock = threading.Lock()
        self.reads = 0

    @property
    def facts(self) -> SourceFacts:
        return self.inner.facts

    @property
    def size(self) -> int:
        return self.inner.size

    @property
    def sector_size(self) -> int:
        return self.inner.sector_size

    def _touches(self, keys: list[int], first: int, last: int) -> list[int]:
        lo = bisect.bisect_left(keys, first)
        hi = bisect.bisect_right(keys, last)
        return keys[lo:hi]

    def _check(self, offset: int, length: int) -> None:
        """Raise the injected error when this read touches a failing sector."""
        if self._before_read is not None:
            self._before_read(offset, length)
        first = offset // self.sector_size
        last = (offset + max(length, 1) - 1) // self.sector_size
        with self._lock:
            self.reads += 1
            fail = bool(self._touches(self._permanent, first, last))
            for sector in self._touches(self._transient_keys, first, last):
                if self._transient[sector] > 0:
                    self._transient[sector] -= 1
                    fail = True
        if fail:
            raise ReadError(offset, length, "injected read error")

    def read(self, offset: int, length: int) -> bytes:
        self._check(offset, length)
        return self.inner.read(offset, length)

    def readinto(self, offset: int, view: memoryview) -> None:
        self._check(offset, len(view))
        self.inner.readinto(offset, view)

    def close(self) -> None:
        self.inner.close()
