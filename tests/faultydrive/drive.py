"""Start and stop a faulty drive: the FUSE server process plus a loop device over its file.

``faulty_drive(FaultMap(bad=((10240, 8),)), size=32 << 20)`` gives a :class:`FaultyDrive` whose
``device`` (``/dev/loopN``) fails exactly as the map says; the backing file holds the true bytes,
so a test knows what every readable sector must contain. The loop device is attached with
direct I/O, so a sector-sized ``O_DIRECT`` read of it reaches the server as that one sector.
Tests skip, with the reason, where root, ``/dev/fuse``, libfuse, the binding or loop devices
are missing.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from faultydrive.faultmap import FaultMap

SERVER = Path(__file__).resolve().parent / "server.py"


def unavailable() -> str | None:  # noqa: PLR0911 - one reason per missing piece
    """Why a faulty drive cannot be made here, or None."""
    if os.geteuid() != 0:
        return "needs root (FUSE mount and loop devices)"
    if not Path("/dev/fuse").exists():
        return "/dev/fuse is missing"
    if not Path("/dev/loop-control").exists():
        return "loop devices are missing (/dev/loop-control)"
    for tool in ("losetup",):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    if shutil.which("fusermount3") is None and shutil.which("fusermount") is None:
        return "fusermount3 is not installed (Debian package fuse3)"
    try:
        import mfusepy  # noqa: F401
    except (ImportError, OSError) as exc:
        return f"the FUSE binding mfusepy cannot load libfuse: {exc}"
    return None


def random_bytes(size: int, seed: int = 18) -> bytes:
    """Incompressible data: a zero-filled sector never matches it by chance. Made in 64 MiB
    pieces: ``randbytes`` of 256 MiB and more overflows a C int (the benchmark's drive)."""
    rng, piece = random.Random(seed), 64 << 20
    return b"".join(rng.randbytes(min(piece, size - at)) for at in range(0, size, piece))


@dataclass
class FaultyDrive:
    """A running faulty drive; ``device`` is the loop block device to acquire."""

    folder: Path
    faults: FaultMap
    backing: Path
    mountpoint: Path
    device: str = ""
    process: subprocess.Popen[bytes] | None = None
    extra_devices: list[str] = field(default_factory=list)

    @property
    def marker(self) -> Path:
        return Path(str(self.mountpoint) + ".gone")

    @property
    def data(self) -> bytes:
        return self.backing.read_bytes()

    @property
    def size(self) -> int:
        return self.backing.stat().st_size

    def expected_image(self) -> bytes:
        """The true bytes with the permanently bad sectors zero-filled: the exact image."""
        data = bytearray(self.data)
        ss = self.faults.sector_size
        for first, count in self.faults.bad:
            data[first * ss:(first + count) * ss] = bytes(count * ss)
        return bytes(data)

    def vanish(self) -> None:
        """The drive drops off now (reads fail with ENODEV)."""
        self.marker.touch()

    def come_back(self) -> None:
        self.marker.unlink(missing_ok=True)

    def reads(self) -> list[tuple[int, int, str]]:
        """Every read the drive got so far (with ``log_reads`` in the map)."""
        path = Path(str(self.mountpoint) + ".reads")
        if not path.exists():
            return []
        rows = [line.split() for line in path.read_text().splitlines() if line.strip()]
        return [(int(a), int(b), c) for a, b, c in rows]

    @property
    def gone(self) -> bool:
        return self.marker.exists()

    def start(self) -> None:
        self.mountpoint.mkdir(parents=True, exist_ok=True)
        mapfile = self.folder / "faults.json"
        self.faults.save(mapfile)
        log = (self.folder / "server.log").open("wb")
        self.process = subprocess.Popen(
            [sys.executable, str(SERVER), str(self.mountpoint), str(self.backing), str(mapfile)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        log.close()
        served = self.mountpoint / "disk"
        deadline = time.monotonic() + 15
        while not (os.path.ismount(self.mountpoint) and served.exists()):
            if self.process.poll() is not None or time.monotonic() > deadline:
                reason = (self.folder / "server.log").read_text(errors="replace").strip()
                self.stop()
                pytest.skip(f"the FUSE server did not start: {reason[-300:]}")
            time.sleep(0.05)
        proc = subprocess.run(["losetup", "-f", "--show", "--direct-io=on", str(served)],
                              capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            self.stop()
            pytest.skip(f"loop devices unavailable: {proc.stderr.strip()}")
        self.device = proc.stdout.strip()

    def stop(self) -> None:
        """Detach the loop device, unmount, end the server (by its pid)."""
        self.come_back()
        for dev in [self.device, *self.extra_devices]:
            if dev:
                subprocess.run(["losetup", "-d", dev], capture_output=True, check=False)
        self.device = ""
        umount = shutil.which("fusermount3") or shutil.which("fusermount") or "fusermount3"
        deadline = time.monotonic() + 10
        while os.path.ismount(self.mountpoint) and time.monotonic() < deadline:
            if subprocess.run([umount, "-u", str(self.mountpoint)], capture_output=True,
                              check=False).returncode == 0:
                break
            time.sleep(0.1)
        if os.path.ismount(self.mountpoint):
            subprocess.run([umount, "-u", "-z", str(self.mountpoint)], capture_output=True,
                           check=False)
        if self.process is not None:
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
            self.process = None


MakeDrive = Callable[..., FaultyDrive]


def drives(tmp_path: Path) -> Iterator[MakeDrive]:
    """The ``faulty_drive`` fixture (tests/conftest.py): a factory,
    ``faulty_drive(faults, size=..., data=...)``, that starts a drive; all stop at the end of
    the test (also when it fails)."""
    reason = unavailable()
    if reason:
        pytest.skip(reason)
    drives: list[FaultyDrive] = []

    def make(faults: FaultMap, *, size: int = 32 << 20, data: bytes | None = None,
             name: str = "drive") -> FaultyDrive:
        folder = tmp_path / f"faulty-{name}-{len(drives)}"
        folder.mkdir()
        backing = folder / "backing.img"
        backing.write_bytes(data if data is not None else random_bytes(size))
        drive = FaultyDrive(folder=folder, faults=faults, backing=backing,
                            mountpoint=folder / "mnt")
        drives.append(drive)
        drive.start()
        return drive

    yield make
    for drive in drives:
        drive.stop()
