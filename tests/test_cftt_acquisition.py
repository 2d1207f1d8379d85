"""The NIST CFTT Digital Data Acquisition assertions that apply to BitWitness, one named test
each (docs/CFTT.md maps assertion to test). Where a device is needed it is a real failing drive
(tests/faultydrive: a loop device over a FUSE file with unreadable sectors), acquired through
the command line; every result is checked with an independent tool: ``blockdev``, ``md5sum``/
``sha1sum``/``sha256sum``, ``ewfinfo``/``ewfverify``, pyewf, ``stat``, ``dd``, ``cmp``."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import pyewf_media, require_root, require_tool, run_subprocess
from faultydrive.drive import FaultyDrive, MakeDrive, drives
from faultydrive.faultmap import FaultMap

pytestmark = pytest.mark.root
MIB = 1 << 20
BAD = ((1024, 8), (4096, 1), (12000, 3))  #: (first_sector, count): 12 unreadable sectors


def tool(*args: str) -> str:
    return subprocess.run(list(args), capture_output=True, text=True, check=True).stdout


@dataclass
class Acquired:
    drive: FaultyDrive
    folder: Path
    exit_code: int
    stdout: str
    stderr: str
    began: datetime
    finished: datetime

    @property
    def log(self) -> dict[str, Any]:
        return json.loads((self.folder / "img.json").read_text())


@pytest.fixture(scope="module")
def acquired(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Acquired]:
    """One E01 acquisition of an 8 MiB failing drive through the CLI, shared by the tests."""
    from datetime import UTC

    folder = tmp_path_factory.mktemp("cftt")
    factory = drives(folder)
    make = next(factory)
    drive = make(FaultMap(bad=BAD), size=8 * MIB)
    began = datetime.now(UTC)
    res = run_subprocess("acquire", drive.device, "-o", folder / "img", "--hash",
                         "md5,sha1,sha256")
    finished = datetime.now(UTC)
    yield Acquired(drive, folder, res.exit_code, res.stdout, res.stderr, began, finished)
    next(factory, None)


def test_cftt_every_visible_sector_is_acquired(acquired: Acquired) -> None:
    """DA-AM-06: all visible sectors are acquired (media size = the device's, per blockdev)."""
    require_tool("ewfinfo", "blockdev")
    size = int(tool("blockdev", "--getsize64", acquired.drive.device))
    info = tool("ewfinfo", str(acquired.folder / "img.E01"))
    assert re.search(rf"Media size:\s+.*\({size} bytes\)", info), info
    assert re.search(rf"Number of sectors:\s+{size // 512}\b", info), info
    assert len(pyewf_media(acquired.folder / "img.E01")) == size


def test_cftt_the_image_is_exact_where_the_drive_is_readable(acquired: Acquired) -> None:
    """DA-AM-08: every sector acquired is acquired accurately (pyewf's reading of the E01
    against the drive's true bytes, sector by sector, outside the unreadable ones)."""
    media = pyewf_media(acquired.folder / "img.E01")
    data = acquired.drive.data
    bad = {s for first, count in BAD for s in range(first, first + count)}
    wrong = [s for s in range(len(data) // 512)
             if s not in bad and media[s * 512:(s + 1) * 512] != data[s * 512:(s + 1) * 512]]
    assert wrong == []


def test_cftt_read_errors_are_reported_with_their_locations(acquired: Acquired) -> None:
    """DA-AM-09: the user is told of unresolved read errors, their type and location: exit 1,
    the summary, both logs and the E01's error section (ewfinfo) list exactly the bad ranges."""
    require_tool("ewfinfo")
    assert acquired.exit_code == 1, acquired.stderr
    for first, count in BAD:
        assert f"sectors {first}-{first + count - 1} ({count})" in acquired.stdout
    assert [(e["first_sector"], e["sector_count"]) for e in acquired.log["read_errors"]] == \
        list(BAD)
    text = (acquired.folder / "img.txt").read_text()
    info = tool("ewfinfo", str(acquired.folder / "img.E01"))
    for first, count in BAD:
        assert str(first) in text
        assert re.search(rf"at sector\(s\): {first} - {first + count - 1} number: {count}",
                         info), info
    assert "unreadable" in acquired.stdout


def test_cftt_unreadable_sectors_get_a_benign_fill_and_alignment_is_kept(
        acquired: Acquired) -> None:
    """DA-AM-10: inaccessible data is replaced by a benign fill (zeros), in place: the image
    has the media's length and every sector after a bad run sits at its own offset."""
    media = pyewf_media(acquired.folder / "img.E01")
    data = acquired.drive.data
    assert len(media) == len(data)
    for first, count in BAD:
        assert media[first * 512:(first + count) * 512] == bytes(count * 512)
        after = (first + count) * 512
        assert media[after:after + 512] == data[after:after + 512]
    assert media == acquired.drive.expected_image()


def test_cftt_the_log_is_accurate(acquired: Acquired) -> None:
    """Logs accurate: sizes (blockdev), times (the test's own clock), hashes (md5sum, sha1sum,
    sha256sum of the image as libewf reads it), errors (the fault map)."""
    require_tool("md5sum", "sha1sum", "sha256sum", "blockdev")
    log = acquired.log
    size = int(tool("blockdev", "--getsize64", acquired.drive.device))
    assert log["media"]["size"] == log["source"]["size"] == size
    assert log["media"]["sector_size"] == 512
    started, ended = datetime.fromisoformat(log["started"]), datetime.fromisoformat(log["ended"])
    assert acquired.began <= started <= ended <= acquired.finished
    assert abs(log["duration_seconds"] - (ended - started).total_seconds()) < 0.01
    exported = acquired.folder / "media.raw"
    exported.write_bytes(pyewf_media(acquired.folder / "img.E01"))
    for name in ("md5", "sha1", "sha256"):
        assert log["media"]["hashes"][name] == tool(f"{name}sum", str(exported)).split()[0]
    assert log["progress"]["media_bytes_done"] == size
    text = (acquired.folder / "img.txt").read_text()
    assert log["media"]["hashes"]["md5"] in text
    assert f"{size} bytes" in text
    assert log["source"]["path"] == acquired.drive.device


def test_cftt_split_pieces_have_the_requested_size(faulty_drive: MakeDrive, tmp_path: Path) -> None:
    """Optional: a multi-file image of a requested size: no piece is larger (stat), all but
    the last are exactly that size, and together they are the media (cmp against dd)."""
    require_tool("stat", "dd", "cmp")
    drive = faulty_drive(FaultMap(bad=((2000, 2),)), size=7 * MIB + 512)
    res = run_subprocess("acquire", drive.device, "-o", tmp_path / "img", "--format", "raw",
                         "--split", "2MiB")
    assert res.exit_code == 1, res.stderr
    pieces = sorted(tmp_path.glob("img.0??"))
    sizes = [int(tool("stat", "-c", "%s", str(p))) for p in pieces]
    assert sizes == [2 * MIB, 2 * MIB, 2 * MIB, MIB + 512]
    assert b"".join(p.read_bytes() for p in pieces) == drive.expected_image()
    joined = tmp_path / "joined.raw"
    joined.write_bytes(b"".join(p.read_bytes() for p in pieces))
    reference = tmp_path / "dd.raw"  # the drive as dd reads it, unreadable sectors zero-filled
    subprocess.run(["dd", f"if={drive.device}", f"of={reference}", "bs=512", "iflag=direct",
                    "conv=noerror,sync", "status=none"], capture_output=True, check=False)
    assert subprocess.run(["cmp", str(joined), str(reference)], capture_output=True,
                          check=False).returncode == 0


def test_cftt_the_media_hashes_are_those_of_the_drive(faulty_drive: MakeDrive,
                                                      tmp_path: Path) -> None:
    """Optional: hashes of the digital source computed during the acquisition equal those
    md5sum/sha1sum/sha256sum compute reading the device itself."""
    require_tool("md5sum", "sha1sum", "sha256sum")
    drive = faulty_drive(FaultMap(), size=4 * MIB)
    res = run_subprocess("acquire", drive.device, "-o", tmp_path / "img", "--format", "raw",
                         "--json")
    assert res.exit_code == 0, res.stderr
    for name in ("md5", "sha1", "sha256"):
        assert res.json()["hashes"][name] == tool(f"{name}sum", drive.device).split()[0]


def test_cftt_a_full_destination_is_reported(faulty_drive: MakeDrive, tmp_path: Path) -> None:
    """Optional: insufficient space for the image: the user is told the destination is full
    (exit 2), and nothing poses as a complete image."""
    require_root()
    drive = faulty_drive(FaultMap(), size=8 * MIB)
    small = tmp_path / "small"
    small.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(small)],
                             capture_output=True, text=True, check=False)
    if mounted.returncode:
        pytest.skip(f"cannot mount a tmpfs: {mounted.stderr.strip()}")
    try:
        res = run_subprocess("acquire", drive.device, "-o", small / "img", "--format", "raw")
        assert res.exit_code == 2
        assert "destination is full" in res.stderr
        assert not (small / "img.raw").exists()
        log = json.loads((small / "img.json").read_text()) if (small / "img.json").exists() \
            else None
        assert log is None or log["status"] == "failed"
    finally:
        subprocess.run(["umount", str(small)], check=False)


def test_cftt_verification_reports_a_changed_image_and_where(faulty_drive: MakeDrive,
                                                              tmp_path: Path) -> None:
    """Optional: a changed image is reported as such, with the changed sectors (cmp -l)."""
    require_tool("cmp")
    drive = faulty_drive(FaultMap(), size=2 * MIB)
    res = run_subprocess("acquire", drive.device, "-o", tmp_path / "img", "--format", "raw")
    assert res.exit_code == 0, res.stderr
    image = tmp_path / "img.raw"
    assert run_subprocess("verify", image).exit_code == 0
    with image.open("r+b") as fh:
        fh.seek(3000 * 512 + 17)
        byte = fh.read(1)
        fh.seek(3000 * 512 + 17)
        fh.write(bytes([byte[0] ^ 0x5A]))
    res = run_subprocess("verify", image)
    assert res.exit_code == 1
    assert "MISMATCH" in res.stdout
    cmp = subprocess.run(["cmp", "-l", str(image), drive.device], capture_output=True,
                         text=True, check=False).stdout.split()
    sector = (int(cmp[0]) - 1) // 512
    res = run_subprocess("verify", image, "--against", drive.device)
    assert res.exit_code == 1
    assert f"sectors {sector}-{sector}" in res.stdout


def test_cftt_conversion_keeps_the_data(acquired: Acquired) -> None:
    """Optional: an image converted to another format holds the same media (md5sum of the
    raw conversion against ewfverify's MD5 of the E01)."""
    require_tool("ewfverify", "md5sum")
    out = acquired.folder / "conv"
    res = run_subprocess("convert", acquired.folder / "img.E01", "-o", out, "--to", "raw")
    assert res.exit_code == 0, res.stderr
    check = tool("ewfverify", "-d", "md5", str(acquired.folder / "img.E01"))
    md5 = re.search(r"MD5 hash calculated over data:\s+([0-9a-f]{32})", check)
    assert md5 is not None, check
    assert tool("md5sum", str(out.with_suffix(".raw"))).split()[0] == md5.group(1)


def test_cftt_restore_refuses_a_target_too_small(acquired: Acquired, tmp_path: Path) -> None:
    """Optional: a clone onto a destination smaller than the source is refused (exit 2) and
    the target is left untouched (sha256 before and after)."""
    require_tool("losetup")
    small = tmp_path / "small.bin"
    small.write_bytes(b"\xa5" * (4 * MIB))
    device = tool("losetup", "-f", "--show", str(small)).strip()
    try:
        before = hashlib.sha256(small.read_bytes()).hexdigest()
        res = run_subprocess("restore", acquired.folder / "img.E01", device, "--yes",
                             "--log", tmp_path / "log")
        assert res.exit_code == 2
        assert "less than the media" in res.stderr
        time.sleep(0.1)
        assert hashlib.sha256(small.read_bytes()).hexdigest() == before
    finally:
        subprocess.run(["losetup", "-d", device], check=False)
