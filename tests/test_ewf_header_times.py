"""Header dates and their zones, against ``ewfinfo`` run with ``TZ`` set.

A ``header`` section (ewf, smart, ftk, encase1-3: no ``header2``) stores the acquiring
machine's local wall-clock time as six numbers and no zone; ``header2`` stores POSIX seconds.
BitWitness shows the first as written and says its zone is unknown (never UTC: an acquisition
in New York would read five hours wrong), the second in UTC (docs/EWF.md §4.2).
"""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from conftest import require_tool, run_bitwitness

from bitwitness.ewf import open_ewf
from bitwitness.ewf.headers import acquired_time, date_zone, header_values

NEW_YORK = "America/New_York"
#: -f formats whose dates only a ``header`` section holds (local time, no zone)
LOCAL = ("ewf", "smart", "ftk", "encase1", "encase2", "encase3")
#: -f formats with a ``header2`` (or linen's header in its form): POSIX seconds
SECONDS = ("encase4", "encase5", "encase6", "linen5", "linen6", "ewfx")


def _ewfinfo_date(first: Path, tz: str) -> str:
    out = subprocess.run(["ewfinfo", str(first)], capture_output=True, text=True, check=True,
                         env={**os.environ, "TZ": tz}).stdout
    line = next(x for x in out.splitlines() if x.strip().startswith("Acquisition date:"))
    return " ".join(line.split(":", 1)[1].split()[:5])  # ewfx adds the zone name: dropped


def _acquired_in_new_york(tmp_path: Path, fmt: str) -> Path:
    """The first segment of a 1 MiB set ewfacquire wrote with ``-f fmt`` under
    TZ=America/New_York."""
    require_tool("ewfacquire", "ewfinfo")
    source = tmp_path / "src.bin"
    source.write_bytes(os.urandom(1 << 20))
    subprocess.run(["ewfacquire", "-u", "-q", "-f", fmt, "-t", str(tmp_path / "img"),
                    str(source)], check=True, capture_output=True,
                   env={**os.environ, "TZ": NEW_YORK})
    return sorted(p for p in tmp_path.glob("img.*"))[0]


@pytest.mark.parametrize("fmt", LOCAL + SECONDS)
def test_dates_against_ewfinfo(tmp_path: Path, fmt: str) -> None:
    first = _acquired_in_new_york(tmp_path, fmt)
    done = run_bitwitness("info", first, "--json")
    assert done.exit_code == 0, done.stderr
    values = done.json()["header_values"]
    text = run_bitwitness("info", first).stdout
    line = next(x for x in text.splitlines() if "Acquisition date:" in x)
    shown = " ".join(values["acquiry_date"].split())
    with open_ewf(first) as img:
        acquired = img.acquired
    if fmt in LOCAL:
        # the wall-clock time as written, whatever zone reads it
        assert shown == _ewfinfo_date(first, NEW_YORK) == _ewfinfo_date(first, "UTC")
        assert values["acquiry_date_zone"] == "unknown"
        assert len(values["acquiry_date_stored"].split()) == 6
        assert "UTC" not in line
        assert "(local time of the acquiring machine; zone not recorded)" in line
        assert acquired is None
    elif fmt == "ewfx":
        # ewfinfo shows the xheader's date, the acquiring machine's time and zone name (EST):
        # the same instant as ours
        assert acquired is not None
        there = acquired.astimezone(ZoneInfo(NEW_YORK))
        assert _ewfinfo_date(first, "UTC") == f"{there:%a %b} {there.day} {there:%H:%M:%S %Y}"
    if fmt in SECONDS:
        # an instant: libewf renders header2 in the reader's zone, so TZ=UTC matches ours
        if fmt != "ewfx":
            assert shown == _ewfinfo_date(first, "UTC") != _ewfinfo_date(first, NEW_YORK)
        assert values["acquiry_date_zone"] == "UTC"
        assert values["acquiry_date_stored"].isdigit()
        assert line.rstrip().endswith("UTC")
        assert acquired == datetime.fromtimestamp(int(values["acquiry_date_stored"]), UTC)


def test_a_recorded_offset_is_used_and_a_zone_name_kept() -> None:
    fields = {"m": "2026 12 7 14 56 23 -0500", "u": "2026 12 7 14 56 23 EST"}
    assert acquired_time(fields) == datetime(2026, 12, 7, 19, 56, 23, tzinfo=UTC)
    assert acquired_time({"m": "2026 12 7 14 56 23 EST"}) is None
    assert acquired_time({"m": "2026 12 7 14 56 23"}) is None
    assert date_zone("2026 12 7 14 56 23 +01:00") == "+01:00"
    values = header_values(fields)
    assert values["acquiry_date"] == "Mon Dec  7 14:56:23 2026"
    assert values["acquiry_date_zone"] == "-0500"
    assert values["system_date_zone"] == "EST"
    assert values["system_date_stored"] == "2026 12 7 14 56 23 EST"


@pytest.mark.parametrize("fmt", ["ftk", "encase6"])
def test_convert_carries_only_dates_that_are_instants(tmp_path: Path, fmt: str) -> None:
    """An E01 written from the set carries its acquisition instant (header2's seconds); a
    wall-clock time of an unknown zone is not written as UTC (it would move by the acquiring
    machine's offset): the new set's date is then its own writing's, as for any source
    without one. ewfinfo (TZ=UTC) reads the new set's date."""
    first = _acquired_in_new_york(tmp_path, fmt)
    before = datetime.now(UTC).replace(microsecond=0)
    done = run_bitwitness("convert", first, "--to", "e01", "-o", tmp_path / "out")
    assert done.exit_code == 0, done.stderr
    written = datetime.strptime(_ewfinfo_date(tmp_path / "out.E01", "UTC"),
                                "%a %b %d %H:%M:%S %Y").replace(tzinfo=UTC)
    with open_ewf(first) as img:
        acquired = img.acquired
    if fmt == "ftk":
        assert acquired is None
        assert written >= before
    else:
        assert acquired is not None
        assert written == acquired
