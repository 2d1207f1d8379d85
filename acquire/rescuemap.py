"""The rescue map: which byte ranges of the source are rescued, bad, or still to be tried.

Kept beside the image as ``BASE.map`` in GNU ddrescue's mapfile format (so that ``ddrescuelog``
and ``ddrescueview`` read it, and an examiner can check our account with them): comment lines,
then ``current_pos current_status current_pass``, then ``pos size status`` lines in hex covering
the whole source without gaps. Statuses:

- ``?`` non-tried: not read yet;
- ``*`` non-trimmed: a block that failed in the copying pass, its edges not yet read;
- ``/`` non-scraped: what is left of it after trimming, to be read sector by sector;
- ``-`` bad sector(s): unreadable after scraping (and every retry so far);
- ``+`` finished: read and written to the image.

The map is the resume point of a rescue: it is only ever saved after the image data it calls
finished is on disk (the rescue fsyncs the image first), and replaced atomically, so a run
killed at any moment leaves a map that never claims more than the image holds.
"""

from __future__ import annotations

import bisect
import os
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from bitwitness.errors import UsageError


class Block(StrEnum):
    NON_TRIED = "?"
    NON_TRIMMED = "*"
    NON_SCRAPED = "/"
    BAD = "-"
    FINISHED = "+"


class Phase(StrEnum):
    """The map's ``current_status``: what the rescue was doing."""

    COPYING = "?"
    TRIMMING = "*"
    SCRAPING = "/"
    RETRYING = "-"
    FINISHED = "+"


PHASE_NAMES = {Phase.COPYING: "copying", Phase.TRIMMING: "trimming",
               Phase.SCRAPING: "scraping", Phase.RETRYING: "retrying",
               Phase.FINISHED: "finished"}


@dataclass(frozen=True)
class Area:
    pos: int
    size: int
    status: Block

    @property
    def end(self) -> int:
        return self.pos + self.size


class RescueMap:
    """Contiguous areas covering ``[0, size)``; updates split and merge them."""

    def __init__(self, size: int, areas: list[Area] | None = None, *,
                 current_pos: int = 0, phase: Phase = Phase.COPYING, current_pass: int = 1) -> None:
        self.size = size
        self._areas = areas if areas is not None else (
            [Area(0, size, Block.NON_TRIED)] if size else [])
        self._starts = [a.pos for a in self._areas]
        self.current_pos = current_pos
        self.phase = phase
        self.current_pass = current_pass

    # --- queries -------------------------------------------------------------------------

    def areas(self, status: Block | None = None) -> list[Area]:
        return [a for a in self._areas if status is None or a.status is status]

    def __iter__(self) -> Iterator[Area]:
        return iter(list(self._areas))

    def total(self, status: Block) -> int:
        return sum(a.size for a in self._areas if a.status is status)

    def status_at(self, pos: int) -> Block:
        return self._areas[bisect.bisect_right(self._starts, pos) - 1].status

    def bad_sector_ranges(self, sector_size: int) -> list[tuple[int, int]]:
        """``(first_sector, count)`` of every area not rescued (bad, or never read)."""
        out = []
        for a in self._areas:
            if a.status is not Block.FINISHED:
                first = a.pos // sector_size
                out.append((first, -(-a.end // sector_size) - first))
        return out

    # --- updates -------------------------------------------------------------------------

    def mark(self, pos: int, size: int, status: Block) -> None:
        """Give ``[pos, pos + size)`` the status ``status``."""
        end = min(pos + size, self.size)
        if end <= pos:
            return
        lo = bisect.bisect_right(self._starts, pos) - 1
        hi = bisect.bisect_left(self._starts, end)
        touched = self._areas[lo:hi]
        pieces: list[Area] = []
        first, last = touched[0], touched[-1]
        if first.pos < pos:
            pieces.append(Area(first.pos, pos - first.pos, first.status))
        pieces.append(Area(pos, end - pos, status))
        if last.end > end:
            pieces.append(Area(end, last.end - end, last.status))
        # merge with the neighbours outside the touched run
        if lo > 0 and self._areas[lo - 1].status is pieces[0].status:
            lo -= 1
            pieces[0] = Area(self._areas[lo].pos, self._areas[lo].size + pieces[0].size,
                             pieces[0].status)
        if hi < len(self._areas) and self._areas[hi].status is pieces[-1].status:
            nxt = self._areas[hi]
            pieces[-1] = Area(pieces[-1].pos, pieces[-1].size + nxt.size, nxt.status)
            hi += 1
        merged: list[Area] = []
        for piece in pieces:
            if merged and merged[-1].status is piece.status:
                merged[-1] = Area(merged[-1].pos, merged[-1].size + piece.size, piece.status)
            else:
                merged.append(piece)
        self._areas[lo:hi] = merged
        self._starts[lo:hi] = [a.pos for a in merged]

    # --- the file ------------------------------------------------------------------------

    def render(self, header: str = "") -> str:
        lines = ["# Mapfile. Created by BitWitness (GNU ddrescue mapfile format)"]
        lines += [f"# {line}" for line in header.splitlines()]
        lines.append("# current_pos  current_status  current_pass")
        lines.append(f"0x{self.current_pos:08X}     {self.phase.value}               "
                     f"{self.current_pass}")
        lines.append("#      pos        size  status")
        lines += [f"0x{a.pos:08X}  0x{a.size:08X}  {a.status.value}" for a in self._areas]
        return "\n".join(lines) + "\n"

    def save(self, path: Path, header: str = "") -> None:
        """Replace ``path`` atomically and durably (the caller fsynced the image first)."""
        tmp = path.with_name(path.name + ".tmp")
        with tmp.open("w", encoding="ascii") as fh:
            fh.write(self.render(header))
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    @classmethod
    def load(cls, path: Path, size: int) -> RescueMap:
        """Read a map (ours or GNU ddrescue's) of a source of ``size`` bytes; raises
        :class:`UsageError` for a map that does not cover exactly that source."""
        try:
            text = path.read_text(encoding="ascii", errors="replace")
        except OSError as exc:
            raise UsageError(f"cannot read the rescue map {path}: {exc.strerror or exc}") from exc
        rows = [line.split() for line in text.splitlines()
                if line.strip() and not line.lstrip().startswith("#")]
        try:
            head = rows[0]
            current_pos, phase = int(head[0], 0), Phase(head[1])
            current_pass = int(head[2]) if len(head) > 2 else 1
            areas = [Area(int(r[0], 0), int(r[1], 0), Block(r[2])) for r in rows[1:]]
        except (IndexError, ValueError) as exc:
            raise UsageError(f"{path} is not a rescue map ({exc})") from exc
        pos = 0
        for area in areas:
            if area.pos != pos or area.size <= 0:
                raise UsageError(f"{path}: the map has a gap or overlap at byte {pos}")
            pos = area.end
        if pos != size:
            raise UsageError(f"{path}: the map covers {pos} bytes, the source has {size}")
        return cls(size, areas, current_pos=current_pos, phase=phase, current_pass=current_pass)
