"""The one pass over the media: every hash, every range, every chunk and the source, together.

Verification reads the evidence once. Each block goes to a :class:`ThreadedHasher` (one thread per
algorithm, so MD5 and SHA-1 use separate cores), to the hashers of any media ranges a log records
(the pieces of a split set, dc3dd's per-piece hashes), and, with ``--against``, is compared byte
for byte with the same range re-read from the source. E01 chunks arrive through
``EwfImage.scan``, which checks every chunk and reports a bad one as a problem (its bytes come as
zeros) instead of stopping.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from bitwitness.errors import Interrupted
from bitwitness.hashing import MultiHasher, ThreadedHasher
from bitwitness.progress import ProgressTask
from bitwitness.ranges import merge_ranges
from bitwitness.stream import ImageStream
from bitwitness.verify.model import BadChunk, SectorRange

#: Blocks handed to the hashers; large enough that queue traffic costs nothing.
BLOCK_SIZE = 4 << 20
#: Differences beyond this many separate runs are counted but not listed.
MAX_RUNS = 1000


@dataclass
class RangeHashers:
    """Hashers for media byte ranges ``[start, end)``, fed from the blocks of the one pass."""

    wanted: dict[tuple[int, int], tuple[str, ...]]
    _hashers: dict[tuple[int, int], MultiHasher] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._hashers = {r: MultiHasher(algs) for r, algs in self.wanted.items()}

    def update(self, offset: int, data: bytes) -> None:
        end = offset + len(data)
        view = memoryview(data)
        for (start, stop), hasher in self._hashers.items():
            lo, hi = max(start, offset), min(stop, end)
            if lo < hi:
                hasher.update(view[lo - offset : hi - offset])

    def results(self) -> dict[tuple[int, int], dict[str, str]]:
        """Digests of the ranges fully covered by the data seen (others are left out)."""
        return {r: h.hexdigests() for r, h in self._hashers.items()
                if h.bytes_hashed == r[1] - r[0]}


@dataclass
class SourceComparer:
    """Compares the image with its source, block by block, recording differing sector runs."""

    source: ImageStream
    limit: int  #: compare bytes [0, limit)
    sector_size: int
    compared: int = 0
    differing: int = 0
    runs: list[tuple[int, int]] = field(default_factory=list)
    _open_run: bool = False

    def update(self, offset: int, data: bytes) -> None:
        if offset >= self.limit:
            return
        data = data[: self.limit - offset]
        other = self.source.pread(offset, len(data))
        self.compared += len(other)
        if other == data:
            self._open_run = False
            return
        self._record(offset, data, other)

    def _record(self, offset: int, data: bytes, other: bytes) -> None:
        size = self.sector_size
        a, b = memoryview(data), memoryview(other)
        for pos in range(0, len(a), size):
            sector = (offset + pos) // size
            if a[pos : pos + size] == b[pos : pos + size]:
                self._open_run = False
                continue
            self.differing += 1
            if self._open_run and self.runs and self.runs[-1][1] == sector - 1:
                self.runs[-1] = (self.runs[-1][0], sector)
            elif len(self.runs) < MAX_RUNS:
                self.runs.append((sector, sector))
            self._open_run = True


@dataclass
class PassResult:
    """What one pass found."""

    hashes: dict[str, str]
    ranges: dict[tuple[int, int], dict[str, str]]
    bytes_read: int
    bad_chunks: list[BadChunk]


def _plain_blocks(stream: ImageStream, block_size: int) -> Iterator[tuple[int, bytes, Any]]:
    offset = 0
    for data in stream.iter_blocks(block_size):
        yield offset, data, None
        offset += len(data)


def _ewf_blocks(image: Any, workers: int | None) -> Iterator[tuple[int, bytes, Any]]:
    for block in image.scan(workers=workers):
        yield block.offset, block.data, block.problem


def _batched(blocks: Iterable[tuple[int, bytes, Any]], size: int
             ) -> Iterator[tuple[int, bytes, list[Any]]]:
    """Join small consecutive blocks (E01 chunks) into ~``size`` batches for the hashers."""
    parts: list[bytes] = []
    problems: list[Any] = []
    start = 0
    held = 0
    for offset, data, problem in blocks:
        if not parts:
            start = offset
        parts.append(data)
        held += len(data)
        if problem is not None:
            problems.append(problem)
        if held >= size:
            yield start, parts[0] if len(parts) == 1 else b"".join(parts), problems
            parts, problems, held = [], [], 0
    if parts:
        yield start, b"".join(parts), problems


class BlockConsumer(Protocol):
    """Anything else that takes each block of the pass (libewf comparing its own reading)."""

    def update(self, offset: int, data: bytes) -> None: ...


def run_pass(stream: ImageStream, *, ewf: Any | None, algorithms: Sequence[str],
             ranges: RangeHashers | None, comparer: SourceComparer | None, task: ProgressTask,
             cancel: threading.Event | None = None, workers: int | None = None,
             block_size: int = BLOCK_SIZE, peers: Sequence[BlockConsumer] = ()) -> PassResult:
    """Read the media once, feeding every consumer (``peers`` after the hashers, so that their
    waiting overlaps the hashing); stop with :class:`Interrupted` on cancel."""
    hasher = ThreadedHasher(algorithms, depth=4)
    bad: list[BadChunk] = []
    read = 0
    blocks = _ewf_blocks(ewf, workers) if ewf is not None else _plain_blocks(stream, block_size)
    try:
        for offset, data, problems in _batched(blocks, block_size):
            if cancel is not None and cancel.is_set():
                raise Interrupted("verification interrupted")
            hasher.update(data)
            if ranges is not None:
                ranges.update(offset, data)
            if comparer is not None:
                comparer.update(offset, data)
            for peer in peers:
                peer.update(offset, data)
            read += len(data)
            task.advance(len(data))
            if problems:
                bad.extend(problems)
                task.set_errors(len(bad))
    finally:
        hashes = hasher.close()
    return PassResult(hashes, ranges.results() if ranges else {}, read, bad)


def chunk_ranges(chunks: Iterable[BadChunk], sector_size: int) -> list[SectorRange]:
    """Bad chunks as the fewest sector ranges (overlapping and adjacent chunks joined)."""
    runs = merge_ranges((c.first_sector, c.last_sector - c.first_sector + 1) for c in chunks)
    return [SectorRange(first, first + count - 1, sector_size) for first, count in runs]
