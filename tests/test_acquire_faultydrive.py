"""Acquiring real failing drives (issue 18): a loop device over a FUSE file that fails in the
kernel as the fault map says (tests/faultydrive), acquired through the command line and checked
against ``dd iflag=direct`` (coreutils) reading the same device sector by sector."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from conftest import require_tool, run_subprocess
from faultydrive.drive import MakeDrive
from faultydrive.faultmap import FaultMap

pytestmark = pytest.mark.root

#: The issue's example device: EIO on sectors 10240-10247 and on 40960, nowhere else.
EXAMPLE = FaultMap(bad=((10240, 8), (40960, 1)))


def dd_direct_image(device: str, out: Path) -> bytes:
    """The device as ``dd iflag=direct`` reads it one sector at a time, unreadable sectors
    zero-filled (``conv=noerror,sync``): the best any tool can secure."""
    subprocess.run(["dd", f"if={device}", f"of={out}", "bs=512", "iflag=direct",
                    "conv=noerror,sync", "status=none"], capture_output=True, check=False)
    return out.read_bytes()


def test_only_the_sectors_the_drive_cannot_read_are_lost(faulty_drive: MakeDrive,
                                                          tmp_path: Path) -> None:
    require_tool("dd")
    drive = faulty_drive(EXAMPLE, size=24 << 20)
    res = run_subprocess("acquire", drive.device, "-o", tmp_path / "img", "--format", "raw",
                         "--json")
    assert res.exit_code == 1, res.stderr
    doc = res.json()
    assert [(e["first_sector"], e["sector_count"]) for e in doc["read_errors"]] == \
        [(10240, 8), (40960, 1)]
    assert doc["bad_sectors"] == 9
    image = (tmp_path / "img.raw").read_bytes()
    reference = dd_direct_image(drive.device, tmp_path / "dd.raw")
    assert len(image) == len(reference) == drive.size
    assert image == reference
    assert image == drive.expected_image()
    log = json.loads((tmp_path / "img.json").read_text())
    assert [(e["first_sector"], e["sector_count"]) for e in log["read_errors"]] == \
        [(10240, 8), (40960, 1)]


def test_direct_reads_fall_back_where_the_source_cannot(tmp_path: Path) -> None:
    """A file whose size ends mid-sector: the last partial sector cannot be read with
    O_DIRECT; read_direct falls back to the ordinary read and returns the same bytes."""
    from bitwitness.acquire.source import open_source

    data = bytes(range(256)) * 9  # 2304 bytes: 4.5 sectors
    path = tmp_path / "odd.bin"
    path.write_bytes(data)
    with open_source(path) as src:
        assert src.read_direct(0, 2048) == data[:2048]
        assert src.read_direct(2048, 256) == data[2048:]
        assert src.read_direct(512, 1024) == data[512:1536]
