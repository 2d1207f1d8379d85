"""Retries down to single sectors, zero-fill and error ranges (fault injection, hypothesis)."""

from __future__ import annotations

import hypothesis.strategies as st
from conftest import make_disk_bytes
from hypothesis import given, settings

from bitwitness.acquire.faults import FaultySource
from bitwitness.acquire.retry import read_with_retries
from bitwitness.acquire.source import Source, SourceFacts, SourceKind
from bitwitness.ranges import merge_ranges
from bitwitness.stream import BytesStream

SECTOR = 512


def _source(data: bytes) -> Source:
    stream = BytesStream(data)
    facts = SourceFacts(path="<memory>", kind=SourceKind.IMAGE, size=len(data))
    return Source(facts, stream=stream)


def _expected(data: bytes, bad: set[int]) -> bytes:
    """The oracle: the data with every bad sector replaced by zeros, computed independently."""
    out = bytearray(data)
    for sector in bad:
        out[sector * SECTOR:(sector + 1) * SECTOR] = bytes(len(out[sector * SECTOR:
                                                                   (sector + 1) * SECTOR]))
    return bytes(out)


def _runs(bad: set[int]) -> list[tuple[int, int]]:
    runs: list[tuple[int, int]] = []
    for sector in sorted(bad):
        if runs and runs[-1][0] + runs[-1][1] == sector:
            runs[-1] = (runs[-1][0], runs[-1][1] + 1)
        else:
            runs.append((sector, 1))
    return runs


@settings(max_examples=60, deadline=None)
@given(sectors=st.integers(1, 96), tail=st.integers(0, 511),
       bad=st.sets(st.integers(0, 96), max_size=12), retries=st.integers(0, 3))
def test_permanent_errors_are_zero_filled_and_listed(sectors: int, tail: int, bad: set[int],
                                                     retries: int) -> None:
    data = make_disk_bytes(sectors * SECTOR + tail, seed=sectors)
    last = (len(data) - 1) // SECTOR
    bad = {b for b in bad if b <= last}
    faulty = FaultySource(_source(data), permanent=bad)
    outcome = read_with_retries(faulty, 0, len(data), sector_size=SECTOR, retries=retries)
    assert outcome.data == _expected(data, bad)
    assert list(outcome.bad) == _runs(bad)


@settings(max_examples=40, deadline=None)
@given(bad=st.dictionaries(st.integers(0, 63), st.integers(1, 3), max_size=6),
       retries=st.integers(0, 3))
def test_transient_errors_recover_within_the_retries(bad: dict[int, int], retries: int) -> None:
    data = make_disk_bytes(64 * SECTOR, seed=3)
    faulty = FaultySource(_source(data), transient=dict(bad))
    outcome = read_with_retries(faulty, 0, len(data), sector_size=SECTOR, retries=retries)
    # A sector that fails k times is first read alone after at most one failed attempt per
    # halving level; the only guarantee we promise is: never wrong bytes, and every listed
    # sector really was one of the failing ones.
    listed = {s for first, count in outcome.bad for s in range(first, first + count)}
    assert listed <= set(bad)
    assert outcome.data == _expected(data, listed)


def test_a_sector_failing_fewer_times_than_the_retries_is_read() -> None:
    data = make_disk_bytes(64 * SECTOR, seed=4)
    # sector 10 fails its first 2 reads: the whole-block read and one retry; the second retry
    # (retries=2 -> 3 attempts) succeeds, so nothing is lost
    faulty = FaultySource(_source(data), transient={10: 2})
    outcome = read_with_retries(faulty, 0, len(data), sector_size=SECTOR, retries=2)
    assert outcome.bad == ()
    assert outcome.data == data
    assert outcome.attempts == 3


def test_no_retries_means_the_sector_is_lost_after_narrowing() -> None:
    data = make_disk_bytes(8 * SECTOR, seed=5)
    faulty = FaultySource(_source(data), permanent={5})
    outcome = read_with_retries(faulty, 0, len(data), sector_size=SECTOR, retries=0)
    assert outcome.bad == ((5, 1),)
    assert outcome.data[5 * SECTOR:6 * SECTOR] == bytes(SECTOR)
    assert outcome.data[:5 * SECTOR] == data[:5 * SECTOR]


def test_merge_ranges_joins_overlapping_and_adjacent() -> None:
    assert merge_ranges([(10, 2), (0, 1), (12, 3), (1, 1), (20, 0), (13, 1)]) == [(0, 2), (10, 5)]
