"""Sector runs as ``(first_sector, sector_count)`` pairs, merged the one way every part uses.

Unreadable sectors (acquisition logs, the E01 ``error2`` section) and bad chunks (verification)
are found piece by piece, often out of order and overlapping; what is recorded and shown is the
fewest runs that cover them, so that two tools listing the same damage list the same ranges.
"""

from __future__ import annotations

from collections.abc import Iterable


def merge_ranges(ranges: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sort ``(first_sector, count)`` runs and merge overlapping or adjacent ones; empty runs
    (count 0) are dropped."""
    merged: list[tuple[int, int]] = []
    for first, count in sorted((int(f), int(c)) for f, c in ranges if c > 0):
        if merged and first <= merged[-1][0] + merged[-1][1]:
            last_first, last_count = merged[-1]
            merged[-1] = (last_first, max(last_first + last_count, first + count) - last_first)
        else:
            merged.append((first, count))
    return merged

