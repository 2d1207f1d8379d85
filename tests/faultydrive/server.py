"""The FUSE server of the faulty drive: serves one file, ``disk``, with the bytes of a backing
file and the faults of a :class:`~faultmap.FaultMap`.

Run as its own process (``python server.py MOUNTPOINT BACKING FAULTMAP``) so that a test process
is never blocked by it: a slow or vanished sector stalls the server's thread, not the test's.
The file is opened ``direct_io``: every read the kernel's loop driver issues reaches this
server with its real offset and length, none is served from a cache, so a sector fails exactly
where the map says. The drive is gone (reads fail with ENODEV, as from a device that dropped
off the bus) while the file ``<mountpoint>.gone`` exists.
"""

from __future__ import annotations

import errno
import os
import stat
import sys
import threading
import time
from pathlib import Path
from typing import Any

import mfusepy as fuse

sys.path.insert(0, str(Path(__file__).resolve().parent))
from faultmap import FaultMap, FaultState

NAME = "/disk"


class FaultyFile(fuse.Operations):  # type: ignore[misc]
    use_ns = True

    def __init__(self, backing: Path, faults: FaultMap, marker: Path) -> None:
        self._fd = os.open(backing, os.O_RDONLY)
        self._size = os.fstat(self._fd).st_size
        self._state = FaultState(faults)
        self._marker = marker
        self._lock = threading.Lock()
        self._now = int(time.time() * 1e9)
        self._vanished = False
        self._reads = marker.with_suffix(".reads").open("a", buffering=1) \
            if faults.log_reads else None
        self._gone_since: float | None = None

    # --- the drive's state: the marker file is the switch ---------------------------------

    def _gone(self) -> bool:
        """Gone while the marker exists: the server creates it when the drive drops off, a
        test removes it to bring the drive back (or creates it to make it drop off now)."""
        if not self._marker.exists():
            self._gone_since = None
            return False
        if self._gone_since is None:
            self._gone_since = time.monotonic()
        vanish = self._state.faults.vanish
        if vanish is not None and vanish.back_after is not None \
                and time.monotonic() - self._gone_since >= vanish.back_after:
            self._marker.unlink(missing_ok=True)
            self._gone_since = None
            return False
        return True

    def _fault(self, offset: int, size: int) -> tuple[int | None, float]:
        """The errno this read fails with (None: it reads), and how long it stalls first."""
        faults = self._state.faults
        first = offset // faults.sector_size
        last = (offset + max(size, 1) - 1) // faults.sector_size
        delay = sum(s.seconds for s in faults.slow
                    if s.first <= last and first < s.first + s.count)
        with self._lock:
            vanish = faults.vanish
            if vanish is not None and last >= vanish.sector and not self._vanished:
                self._vanished = True  # drops off once; back when the marker goes
                self._marker.touch()
            if self._gone():
                return errno.ENODEV, delay
        fail = any(a <= last and first < a + n for a, n in faults.bad)
        with self._lock:
            for sector in range(first, last + 1):
                left = self._state.transient_left.get(sector, 0)
                if left > 0:
                    self._state.transient_left[sector] = left - 1
                    fail = True
        return (errno.EIO if fail else None), delay

    # --- FUSE operations -----------------------------------------------------------------

    def getattr(self, path: str, fh: Any = None) -> dict[str, Any]:
        if path == "/":
            mode, size = stat.S_IFDIR | 0o555, 0
        elif path == NAME:
            mode, size = stat.S_IFREG | 0o644, self._size
        else:
            raise fuse.FuseOSError(errno.ENOENT)
        return {"st_mode": mode, "st_nlink": 1, "st_size": size, "st_uid": 0, "st_gid": 0,
                "st_atime": self._now, "st_mtime": self._now, "st_ctime": self._now}

    def readdir(self, path: str, fh: Any) -> list[str]:
        return [".", "..", NAME[1:]]

    def open(self, path: str, fi: Any) -> int:
        if path != NAME:
            raise fuse.FuseOSError(errno.ENOENT)
        fi.direct_io = 1
        fi.keep_cache = 0
        return 0

    def write(self, path: str, data: bytes, offset: int, fh: Any) -> int:
        """Evidence is never written: a write that reaches the drive is refused (the loop
        device is writable only so that BitWitness's read-only flag can be tested)."""
        raise fuse.FuseOSError(errno.EROFS)

    def read(self, path: str, size: int, offset: int, fh: Any) -> bytes:
        failure, delay = self._fault(offset, size)
        if self._reads is not None:
            with self._lock:
                self._reads.write(f"{offset} {size} "
                                  f"{errno.errorcode[failure] if failure else 'ok'}\n")
        if delay:
            time.sleep(delay)
        if failure is not None:
            raise fuse.FuseOSError(failure)
        return os.pread(self._fd, min(size, max(0, self._size - offset)), offset)


def main(argv: list[str]) -> None:
    mountpoint, backing, mapfile = argv
    marker = Path(mountpoint + ".gone")
    ops = FaultyFile(Path(backing), FaultMap.load(Path(mapfile)), marker)
    fuse.FUSE(ops, mountpoint, raw_fi=True, foreground=True, nothreads=False,
              fsname="bitwitness-faultydrive")


if __name__ == "__main__":
    main(sys.argv[1:])
