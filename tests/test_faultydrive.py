"""The faulty-drive harness itself, checked with ``dd iflag=direct`` (coreutils), sector by
sector: it must fail exactly where its map says and nowhere else, or every test built on it
proves nothing."""

from __future__ import annotations

import subprocess
import time

import pytest
from conftest import require_tool
from faultydrive.drive import MakeDrive
from faultydrive.faultmap import FaultMap, Slow, Transient, Vanish

pytestmark = pytest.mark.root


def dd_sector(device: str, sector: int) -> tuple[bool, bytes, str]:
    """One sector read with O_DIRECT by dd: (ok, bytes, stderr)."""
    proc = subprocess.run(["dd", f"if={device}", "bs=512", f"skip={sector}", "count=1",
                           "iflag=direct", "status=none"], capture_output=True, check=False)
    return proc.returncode == 0, proc.stdout, proc.stderr.decode(errors="replace")


def test_permanent_errors_are_exactly_the_mapped_sectors(faulty_drive: MakeDrive) -> None:
    require_tool("dd")
    drive = faulty_drive(FaultMap(bad=((10240, 8), (40960, 1))), size=24 << 20)
    data = drive.data
    for sector in range(10230, 10260):
        ok, got, err = dd_sector(drive.device, sector)
        if 10240 <= sector < 10248:
            assert not ok, sector
            assert "Input/output error" in err
        else:
            assert ok, (sector, err)
            assert got == data[sector * 512:(sector + 1) * 512], sector
    assert not dd_sector(drive.device, 40960)[0]
    for sector in (40959, 40961):
        assert dd_sector(drive.device, sector)[0]
    for _ in range(3):  # permanent: every time
        assert not dd_sector(drive.device, 10247)[0]


def test_transient_sectors_read_after_their_failures(faulty_drive: MakeDrive) -> None:
    require_tool("dd")
    drive = faulty_drive(FaultMap(transient=(Transient(500, 1, 2),)), size=1 << 20)
    results = [dd_sector(drive.device, 500)[0] for _ in range(4)]
    assert results == [False, False, True, True]
    assert dd_sector(drive.device, 500)[1] == drive.data[500 * 512:501 * 512]


def test_slow_sectors_stall(faulty_drive: MakeDrive) -> None:
    require_tool("dd")
    drive = faulty_drive(FaultMap(slow=(Slow(100, 1, 0.6),)), size=1 << 20)
    began = time.monotonic()
    assert dd_sector(drive.device, 99)[0]
    fast = time.monotonic() - began
    began = time.monotonic()
    assert dd_sector(drive.device, 100)[0]
    assert time.monotonic() - began >= 0.6 > fast


def test_vanishes_at_its_sector_and_comes_back(faulty_drive: MakeDrive) -> None:
    require_tool("dd")
    drive = faulty_drive(FaultMap(vanish=Vanish(sector=1000)), size=1 << 20)
    assert dd_sector(drive.device, 999)[0]
    ok, _, err = dd_sector(drive.device, 1000)
    assert not ok
    assert "No such device" in err
    assert drive.gone
    assert not dd_sector(drive.device, 5)[0]  # gone for every sector
    drive.come_back()
    ok, got, _ = dd_sector(drive.device, 1000)
    assert ok
    assert got == drive.data[1000 * 512:1001 * 512]
    assert dd_sector(drive.device, 1001)[0]  # it drops off only once


def test_comes_back_by_itself_after_a_while(faulty_drive: MakeDrive) -> None:
    require_tool("dd")
    drive = faulty_drive(FaultMap(vanish=Vanish(sector=10, back_after=0.5)), size=1 << 20)
    assert not dd_sector(drive.device, 10)[0]
    time.sleep(0.6)
    assert dd_sector(drive.device, 10)[0]


def test_the_backing_file_is_never_written(faulty_drive: MakeDrive) -> None:
    require_tool("dd")
    drive = faulty_drive(FaultMap(), size=1 << 20)
    before = drive.data
    proc = subprocess.run(["dd", "if=/dev/zero", f"of={drive.device}", "bs=512", "count=1",
                           "oflag=direct", "status=none"], capture_output=True, check=False)
    assert proc.returncode != 0
    assert drive.data == before
