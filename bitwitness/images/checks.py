"""What a container records about itself, checked: the outcome of one such check.

Formats that record checksums of their own structures or data (a UDIF image's data-fork CRC-32,
...) offer ``self_checks(path, stream)`` on the format object; ``verify`` runs them and a failed
check makes the verdict CORRUPT, saying what and where.
"""

from __future__ import annotations

import heapq
import os
import sys
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from bitwitness.evidence_io import open_readonly
from bitwitness.images.raw import read_exact


@dataclass(frozen=True)
class ContainerCheck:
    """One checksum or consistency check the container's own records allow."""

    what: str  #: "UDIF data fork CRC-32"
    ok: bool
    detail: str  #: recorded and computed values, or why it could not be checked


#: Allocated table entries held (4 bytes each) to look for overlapping blocks: 16M entries is
#: 64 MiB, more than any writer's table holds for a 16 TiB disk at 1 MiB a block. A table with
#: more is said to be unchecked (a failed check), never held whole.
MAX_SORTED_ENTRIES = 16 << 20
#: Entries sorted at a time (a Python list of them is transient; the runs are kept as arrays).
_RUN = 1 << 20
#: Overlapping or repeated blocks named one by one in a failed check (the rest are counted).
REPORTED = 5


#: The array type of a 32-bit unsigned table entry ("I" is 4 bytes wherever CPython runs here;
#: "L" where it is not). Every table checked here holds 32-bit entries.
ENTRY_TYPE = "I" if array("I").itemsize == 4 else "L"


class TooManyEntriesError(Exception):
    """More allocated entries than :data:`MAX_SORTED_ENTRIES`: the overlap check is not made."""


def overlapping_starts(pieces: Iterable[Sequence[int]], span: int
                       ) -> tuple[int, list[tuple[int, int]]]:
    """Blocks that overlap, from the allocated entries of a block table (``pieces``: the
    entries a piece at a time, each the start of a block ``span`` units long, in whatever
    unit the table counts: sectors, clusters, slots).

    Returns how many blocks overlap the one before them in file order and, for the first
    :data:`REPORTED`, the two starts (equal for one block named twice). Only the starts are
    held, as sorted runs of 4-byte entries merged lazily: memory is 4 bytes an entry, bounded
    by :data:`MAX_SORTED_ENTRIES` (:class:`TooManyEntriesError` beyond), whatever the table
    declares; which entries hold the starts is for the caller to look up (one more pass over
    its table, for the few it names)."""
    runs: list[array[int]] = []
    held = 0
    pending: list[int] = []
    for piece in pieces:
        pending.extend(piece)
        held += len(piece)
        if held > MAX_SORTED_ENTRIES:
            raise TooManyEntriesError(f"{held} allocated entries or more")
        while len(pending) >= _RUN:
            runs.append(array(ENTRY_TYPE, sorted(pending[:_RUN])))
            del pending[:_RUN]
    if pending:
        runs.append(array(ENTRY_TYPE, sorted(pending)))
    count = 0
    named: list[tuple[int, int]] = []
    previous: int | None = None
    for start in heapq.merge(*runs):
        if previous is not None and start < previous + span:
            count += 1
            if len(named) < REPORTED:
                named.append((previous, start))
        previous = start
    return count, named


def holders(pieces: Iterable[tuple[int, Sequence[int]]], wanted: set[int]) -> dict[int, list[int]]:
    """The first two entries (by index) holding each of the ``wanted`` values, from a table
    read a piece at a time (``(index of the piece's first entry, its entries)``): who the
    overlaps :func:`overlapping_starts` found belong to."""
    found: dict[int, list[int]] = {v: [] for v in wanted}
    for first, piece in pieces:
        for i, value in enumerate(piece):
            if value in found and len(found[value]) < 2:
                found[value].append(first + i)
    return found


def name_overlaps(named: Sequence[tuple[int, int]], found: dict[int, list[int]],
                  describe: Callable[[int, int], str]) -> list[str]:
    """Each overlap as words: the two entries (``describe(index, value)`` saying where each
    lies) of a repeated start, or of two starts too close together."""
    out = []
    for earlier, later in named:
        if earlier == later:
            pair = found.get(earlier, [])[:2]
        else:
            pair = [*found.get(earlier, [])[:1], *found.get(later, [])[:1]]
        if len(pair) == 2:
            a, b = pair
            verb = "names the same block as" if earlier == later else "overlaps the block of"
            out.append(f"{describe(b, later)} {verb} {describe(a, earlier)}")
    return out


class Findings:
    """The problems one check finds in a table: every one counted, the first
    :data:`REPORTED` named, so that a table damaged throughout still gives one readable
    line."""

    def __init__(self) -> None:
        self.count = 0
        self.named: list[str] = []

    def add(self, problem: str | Callable[[], str], count: int = 1) -> None:
        """Count a problem; words made (``problem`` called) only for the few named, as a
        hostile table may hold millions of them."""
        self.count += count
        if len(self.named) < REPORTED:
            self.named.append(problem if isinstance(problem, str) else problem())

    def check(self, what: str, name: str, clean: str) -> ContainerCheck:
        """The outcome: ``clean`` when nothing was found, else the count and the named
        problems (``name``: the file)."""
        if not self.count:
            return ContainerCheck(what, True, f"{name}: {clean}")
        more = self.count - len(self.named)
        tail = f"; {more} more" if more > 0 else ""
        return ContainerCheck(what, False, f"{name}: {self.count} problem"
                              f"{'s' if self.count > 1 else ''}: "
                              f"{'; '.join(self.named)}{tail}")


def check_overlaps(findings: Findings, pieces: Callable[[], Iterable[tuple[int, Sequence[int]]]],
                   free: frozenset[int], span: int, describe: Callable[[int, int], str]) -> None:
    """Add to ``findings`` every allocated entry whose block overlaps another's (``pieces``
    gives the table afresh a piece at a time; ``free``: the values that allocate nothing;
    ``span``: a block's length in the table's unit; ``describe(index, value)``: where an
    entry and its block lie). Two passes over the table: the overlaps, then who holds the
    few named."""
    try:
        count, named = overlapping_starts(
            ([v for v in piece if v not in free] for _, piece in pieces()), span)
    except TooManyEntriesError as exc:
        findings.add(f"overlaps not checked: {exc}, more than the {MAX_SORTED_ENTRIES} "
                     "held to compare them")
        return
    if not count:
        return
    found = holders(pieces(), {v for pair in named for v in pair})
    words = name_overlaps(named, found, describe)
    for text in words:
        findings.add(text)
    if count > len(words):
        findings.count += count - len(words)


#: Table entries read at a time (1 MiB of table).
PIECE_ENTRIES = 1 << 18


def table_pieces(path: Path, offset: int, count: int, *, big_endian: bool
                 ) -> Callable[[], Iterator[tuple[int, array[int]]]]:
    """A table of ``count`` 32-bit entries at file ``offset``, read afresh on each call a
    piece at a time (index of the piece's first entry, its entries): never held whole. The
    caller has checked that the table lies in the file."""

    def pieces() -> Iterator[tuple[int, array[int]]]:
        fd = open_readonly(path)
        try:
            for first in range(0, count, PIECE_ENTRIES):
                n = min(PIECE_ENTRIES, count - first)
                piece = array(ENTRY_TYPE, read_exact(fd, offset + 4 * first, 4 * n, path))
                if big_endian != (sys.byteorder == "big"):
                    piece.byteswap()
                yield first, piece
        finally:
            os.close(fd)

    return pieces


def check_entries(findings: Findings, pieces: Callable[[], Iterable[tuple[int, Sequence[int]]]],
                  free: frozenset[int], judge: Callable[[int, int], Iterable[Callable[[], str]]],
                  plain: tuple[int, int, int]) -> int:
    """Add to ``findings`` what ``judge(index, value)`` finds wrong with each allocated entry
    (one pass over the table, a piece at a time; each problem's words made only if named);
    return how many entries are allocated. ``plain`` is ``(lowest, highest, below)``: values
    from lowest to highest at indexes below ``below`` are sound, so a piece whose allocated
    entries all are is not judged entry by entry (a real table of millions of entries)."""
    lowest, highest, below = plain
    allocated = 0
    for first, piece in pieces():
        used = [v for v in piece if v not in free]
        allocated += len(used)
        if not used or (lowest <= min(used) and max(used) <= highest
                        and first + len(piece) <= below):
            continue
        for i, value in enumerate(piece):
            if value not in free:
                for problem in judge(first + i, value):
                    findings.add(problem)
    return allocated
