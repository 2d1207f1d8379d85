"""NTFS times outside 1970-2106 are shown as the instants they record: a file back-dated to 1965
showed no modified or accessed time at all (stat ``-``, JSON null, 0 in bodyfiles), and one dated
2200 showed 2063, as The Sleuth Kit's 32-bit seconds wrap it (istat: 2033 for 1965, 2063 for
2200). The times are set through ntfs-3g with ``touch -d``; ``mactime`` reads our bodyfile back
to the same dates, where it reads fls's as 2033 and 2063.
"""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from pathlib import Path

import fsimages
import pytest
from conftest import require_root, require_tool, run_bitwitness

CASES = {
    "old1965.txt": datetime(1965, 6, 1, 12, 0, 0, 123456, tzinfo=UTC),
    "early1601.txt": datetime(1601, 1, 2, 3, 4, 5, tzinfo=UTC),
    "late2200.txt": datetime(2200, 1, 1, 0, 0, 1, tzinfo=UTC),
}


@pytest.fixture(scope="module")
def volume(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_root()
    require_tool("mkntfs", "ntfs-3g", "mactime", "fls")
    if not Path("/dev/fuse").exists():
        pytest.skip("no /dev/fuse")
    folder = tmp_path_factory.mktemp("ntfs-times")
    image = folder / "ntfs.img"
    with fsimages.fresh_ntfs(image, 16 << 20, folder / "m") as mountpoint:
        for name, when in CASES.items():
            path = mountpoint / name
            path.write_bytes(b"dated\n")
            stamp = when.strftime("%Y-%m-%d %H:%M:%S.%f UTC")
            subprocess.run(["touch", "-d", stamp, path], check=True)
    return image


def test_stat_shows_the_recorded_instants(volume: Path) -> None:
    for name, when in CASES.items():
        doc = run_bitwitness("stat", volume, f"/{name}", "--json").json()
        modified = doc["modified"] if "modified" in doc else doc["entry"]["modified"]
        assert datetime.fromisoformat(modified) == when, (name, modified)


def test_the_bodyfile_holds_their_seconds(volume: Path, tmp_path: Path) -> None:
    """The bodyfile's seconds are those ``date +%s`` gives for the instants (negative before
    1970, as fls writes ext's), and mactime prints 2200 for the 2200 file; fls writes
    1988760587 (2033) for 1965 and 2063's seconds for 2200."""
    done = run_bitwitness("timeline", volume)
    assert done.exit_code == 0, done.stderr
    rows = {line.split("|")[1]: line.split("|") for line in done.stdout.splitlines()}
    for name, when in CASES.items():
        seconds = int(subprocess.run(["date", "-u", "-d", when.strftime("%Y-%m-%d %H:%M:%S"),
                                      "+%s"], check=True, capture_output=True,
                                     text=True).stdout)
        row = rows[f"/{name}"]
        assert (int(row[8]), int(row[7])) == (seconds, seconds), (name, row)  # mtime, atime
    body = tmp_path / "ours.body"
    body.write_bytes(done.output)
    printed = subprocess.run(["mactime", "-b", body, "-d", "-z", "UTC"], check=True,
                             capture_output=True, text=True).stdout
    assert any(line.startswith("Wed Jan 01 2200 00:00:01") and line.endswith('"/late2200.txt"')
               for line in printed.splitlines()), printed[-1500:]
