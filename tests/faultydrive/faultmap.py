"""The fault map: which sectors of the served file fail, stall or make the drive vanish.

Shared by the FUSE server (a separate process, which reads it from JSON) and the tests (which
write it). Sector numbers are in ``sector_size`` units of the served file.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Transient:
    """Sectors that fail the first ``failures`` reads touching each of them, then read."""

    first: int
    count: int
    failures: int


@dataclass(frozen=True)
class Slow:
    """Sectors whose reads each take ``seconds`` longer (a drive struggling in a damaged zone)."""

    first: int
    count: int
    seconds: float


@dataclass(frozen=True)
class Vanish:
    """The drive drops off at the first read touching ``sector`` or beyond: from then on every
    read fails with ENODEV until ``back_after`` seconds have passed (``None``: until the test
    brings it back), as a USB bridge that resets."""

    sector: int
    back_after: float | None = None


@dataclass(frozen=True)
class FaultMap:
    """Everything the served file does wrong; ``bad`` sectors fail (EIO) on every read."""

    sector_size: int = 512
    bad: tuple[tuple[int, int], ...] = ()  #: (first_sector, count)
    transient: tuple[Transient, ...] = ()
    slow: tuple[Slow, ...] = ()
    vanish: Vanish | None = None
    #: log every read the drive gets ("offset length ok|EIO|ENODEV") to <mountpoint>.reads
    log_reads: bool = False

    def bad_sectors(self) -> list[int]:
        return sorted({s for first, count in self.bad for s in range(first, first + count)})

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self)))

    @classmethod
    def load(cls, path: Path) -> FaultMap:
        doc = json.loads(path.read_text())
        vanish = doc.get("vanish")
        return cls(sector_size=int(doc.get("sector_size", 512)),
                   bad=tuple((int(a), int(b)) for a, b in doc.get("bad", ())),
                   transient=tuple(Transient(**t) for t in doc.get("transient", ())),
                   slow=tuple(Slow(**s) for s in doc.get("slow", ())),
                   vanish=Vanish(**vanish) if vanish else None,
                   log_reads=bool(doc.get("log_reads", False)))


def clustered_bad(sectors: int, fraction: float, seed: int = 4) -> tuple[tuple[int, int], ...]:
    """``(first, count)`` runs of bad sectors, ``fraction`` of ``sectors``, in clusters of 8-64
    sectors (damaged media fail in patches, not in scattered single sectors)."""
    rng = random.Random(seed)
    bad: set[int] = set()
    while len(bad) < sectors * fraction:
        first = rng.randrange(0, max(1, sectors - 64))
        bad.update(range(first, first + rng.choice((8, 16, 32, 64))))
    runs: list[tuple[int, int]] = []
    for s in sorted(bad):
        if runs and runs[-1][0] + runs[-1][1] == s:
            runs[-1] = (runs[-1][0], runs[-1][1] + 1)
        else:
            runs.append((s, 1))
    return tuple(runs)


@dataclass
class FaultState:
    """The server's running state: the transient failures left per sector."""

    faults: FaultMap
    transient_left: dict[int, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for t in self.faults.transient:
            for sector in range(t.first, t.first + t.count):
                self.transient_left[sector] = t.failures
