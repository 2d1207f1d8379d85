"""An image file shorter than its own tables need: cut short, its end missing.

Why one module: a copy interrupted or a disk that filled up leaves a QCOW, QED, VMDK or VHDX
file whose header and tables are whole (they come first) while the data they map past the cut
is gone. Nothing in what is there is wrong; the end is missing. Each reader learns this the same
way (a mapped unit ends past the end of the file), so each walks its tables once into one
:class:`TruncationScan` and gets one outcome, :class:`Truncation`: the file, the bytes it holds
against the bytes its tables need, and every media sector range whose data is missing, merged
(as an unfinished E01 names its missing sectors). ``verify`` calls that INCOMPLETE and ``info``
says it and exits 1. A read that meets such a unit raises :class:`MissingDataError` (an
:class:`~bitwitness.errors.IncompleteImageError`), never zeros.

Formats offer ``truncation(path, stream) -> Truncation | None`` on their format object;
:func:`find_truncation` is the one way the verification engine and ``info`` ask for it.

Cut short, or damaged? A table entry can point anywhere. A file that was cut short held, whole,
its tables and its stored units one after another, so no unit lay further than about the media
and its tables: a place past :func:`reach` (twice the media and 256 MiB, generous for every
layout QEMU, VMware and Hyper-V write, fixed VHDX's gaps included) is damage
(:class:`~bitwitness.errors.CorruptImageError`), as before, not a missing end.

Bounded work: only the tables are read. A unit whose stored length the table does not give
(a compressed VMDK grain, whose length is in a marker beside its data) ends where the next unit
starts, so only the one that starts last before the cut can straddle it; ``settle`` is asked
about that one unit only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bitwitness.errors import CorruptImageError, IncompleteImageError
from bitwitness.ranges import merge_ranges
from bitwitness.stream import ImageStream


@dataclass(frozen=True)
class Truncation:
    """One image file cut short: what it holds, what its tables need, what media is missing.

    ``missing`` are ``(first_sector, sector_count)`` runs of the media (``sector_size`` bytes a
    sector), sorted and merged: every sector some part of whose data lies past ``file_size``,
    at the granularity of the format's unit (a cluster, grain or block is whole or missing).
    """

    file: Path
    file_size: int  #: bytes the file holds
    #: bytes its tables need at least: the end of the furthest unit they map (of a unit whose
    #: stored length they do not give, its first byte)
    needed: int
    sector_size: int
    missing: tuple[tuple[int, int], ...]

    @property
    def missing_sectors(self) -> int:
        return sum(count for _, count in self.missing)

    def sentence(self) -> str:
        """The one line that says it, for ``verify``'s problems and ``info``'s stderr."""
        runs = len(self.missing)
        return (f"{self.file.name} holds {self.file_size} bytes; its tables need at least "
                f"{self.needed}: "
                "the file was cut short (an interrupted copy, a full disk) and the data of "
                f"{self.missing_sectors} media sectors in {runs} range{'s' if runs != 1 else ''} "
                "is missing")


class MissingDataError(IncompleteImageError):
    """A read met data that the image's tables place past the end of its file: the file is
    cut short there. An evidence problem (exit 1) like every incomplete image; ``verify``
    names every missing range."""

    def __init__(self, what: str, *, path: Path | str, file_offset: int, file_size: int,
                 media_offset: int | None = None) -> None:
        self.file_offset = file_offset
        self.file_size = file_size
        self.media_offset = media_offset
        where = "" if media_offset is None else f", media offset {media_offset}"
        super().__init__(f"{what} (file offset {file_offset}{where}) lies past the end of the "
                         f"file ({file_size} bytes): the file is cut short, the image is "
                         "INCOMPLETE ('bitwitness verify' names every missing sector)", path=path)


#: How far past the media's size a whole file of it may reach (headers, tables, alignment gaps).
SLACK = 256 << 20


def reach(media_size: int) -> int:
    """The furthest byte a whole image file of ``media_size`` bytes of media may hold: a table
    pointing further is damaged, not a file cut short."""
    return 2 * media_size + SLACK


def _beyond_reach(what: str, path: Path | str, offset: int, media_size: int,
                  media_offset: int | None) -> CorruptImageError:
    return CorruptImageError(f"{what} lies at file offset {offset}, further than any file of "
                             f"{media_size} media bytes reaches ({reach(media_size)} bytes): "
                             "damaged tables, not a file cut short", path=path,
                             offset=offset if offset >= 0 else None, media_offset=media_offset)


def require_present(offset: int, length: int, file_size: int, *, path: Path | str, what: str,
                    media_size: int, media_offset: int | None = None) -> None:
    """Raise :class:`MissingDataError` when ``[offset, offset + length)`` ends past the file
    (a :class:`CorruptImageError` when it ends past :func:`reach`).

    For data a table maps (a cluster, grain or block), after the reader's own checks that the
    offset is one its format allows (aligned, past the header)."""
    if offset + length <= file_size:
        return
    if offset + length > reach(media_size):
        raise _beyond_reach(what, path, offset, media_size, media_offset)
    raise MissingDataError(what, path=path, file_offset=offset, file_size=file_size,
                           media_offset=media_offset)


class TruncationScan:
    """Collects, from one walk of a file's tables, the media whose data lies past its end.

    ``unit`` is called for every stored unit the tables map (and for a table itself, with the
    media it maps: a table past the end leaves everything it maps unknown, so missing).
    Missing runs are merged as they come (tables are walked in media order) and once more at
    the end."""

    def __init__(self, path: Path, file_size: int, media_size: int, sector_size: int) -> None:
        self.path = path
        self.file_size = file_size
        self.media_size = media_size
        self.sector_size = sector_size
        self.needed = 0
        self._runs: list[tuple[int, int]] = []
        self._last_start = -1  #: the largest start of any unit that begins inside the file
        #: the unit of unknown length that starts there, if it is one: (start, media range)
        self._open: tuple[int, int, int] | None = None

    def unit(self, file_offset: int, length: int, media_offset: int, media_length: int, *,
             exact: bool = True, what: str = "data") -> None:
        """A unit stored at ``file_offset``, ``length`` bytes long, holding the media bytes
        ``[media_offset, media_offset + media_length)``. ``exact=False``: ``length`` is only
        an upper bound (the stored length is not in the table): the unit ends before the next
        one starts, so it is judged at :meth:`result`. A unit past :func:`reach` raises
        :class:`CorruptImageError` naming ``what``: the tables are damaged."""
        end = file_offset + length
        if (file_offset if not exact else end) > reach(self.media_size):
            raise _beyond_reach(what, self.path, file_offset, self.media_size, media_offset)
        self.needed = max(self.needed, end if exact else file_offset + 1)
        if file_offset >= self.file_size:
            self._missing(media_offset, media_length)
            return
        if file_offset > self._last_start:
            self._last_start = file_offset
            self._open = None if exact or end <= self.file_size else \
                (file_offset, media_offset, media_length)
        if exact and end > self.file_size:
            self._missing(media_offset, media_length)

    def _missing(self, media_offset: int, media_length: int) -> None:
        end = min(media_offset + media_length, self.media_size)
        if end <= media_offset:
            return
        first = media_offset // self.sector_size
        count = -(-end // self.sector_size) - first
        if self._runs and self._runs[-1][0] + self._runs[-1][1] == first:
            self._runs[-1] = (self._runs[-1][0], self._runs[-1][1] + count)
        else:
            self._runs.append((first, count))

    def result(self, settle: Callable[[int], bool] | None = None) -> Truncation | None:
        """The outcome, or ``None`` when every unit lies whole in the file. ``settle(offset)``
        says whether the unit of unknown length starting last before the cut, at ``offset``,
        is whole (one read of its own header); without it, such a unit counts as missing."""
        if self._open is not None:
            start, media_offset, media_length = self._open
            if settle is None or not settle(start):
                self._missing(media_offset, media_length)
        if not self._runs:
            return None
        return Truncation(self.path, self.file_size, self.needed, self.sector_size,
                          tuple(merge_ranges(self._runs)))


def find_truncation(image_format: Any, path: Path, stream: ImageStream
                    ) -> tuple[Truncation, ...]:
    """Every file of ``stream`` (opened by ``image_format`` from ``path``) that is cut short,
    as its format finds it from its tables; ``()`` for a format that offers no such walk.
    Format errors met while walking the tables propagate (the tables are damaged)."""
    walk = getattr(image_format, "truncation", None)
    if walk is None:
        return ()
    return tuple(walk(path, stream))
