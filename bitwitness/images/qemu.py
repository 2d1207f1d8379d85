"""QEMU's block layer as an independent second reader, through ``qemu-nbd`` and a tiny NBD client.

``qemu-img convert`` cannot write to a pipe, so the media QEMU reads is taken from ``qemu-nbd``
serving the image read-only on a private Unix socket, and read with the NBD protocol's
fixed-newstyle handshake and simple READ requests. QEMU's readers (qcow, qcow2, vpc, vhdx, vmdk,
parallels, dmg) share no code with libyal's or ours, which is the point of a second reader.

Backing files are given to QEMU explicitly (the chain our reader resolved inside the image's
folder), so that QEMU never follows a recorded path elsewhere.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bitwitness.errors import CorruptImageError, UnsupportedFormatError
from bitwitness.evidence_io import copies_for
from bitwitness.stream import ImageStream, StreamInfo

_NBD_MAGIC = b"NBDMAGIC"
_IHAVEOPT = 0x49484156454F5054
_OPT_EXPORT_NAME = 1
_FLAG_FIXED_NEWSTYLE = 1
_FLAG_NO_ZEROES = 2
_REQUEST_MAGIC = 0x25609513
_REPLY_MAGIC = 0x67446698
_CMD_READ = 0
_CMD_DISC = 2
#: Largest single READ request (qemu-nbd accepts up to 32 MiB).
_MAX_REQUEST = 8 << 20
_START_TIMEOUT = 20.0
#: Seconds ``qemu-img snapshot -a`` may take on QEMU's copy (it rewrites reference counts).
_SNAPSHOT_TIMEOUT = 300.0


def qemu_version() -> str | None:
    """``"qemu-nbd 7.2.22"``, or ``None`` when qemu-nbd is not installed."""
    exe = shutil.which("qemu-nbd")
    if exe is None:
        return None
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=False)
    found = re.search(r"\d+\.\d+(?:\.\d+)?", out.stdout)
    return f"qemu-nbd {found.group(0)}" if found else "qemu-nbd"


def partial_sector_note(size: int, rounds: str) -> str | None:
    """What ``info`` says (``details["media_size_note"]``) of a declared media size that is
    not a whole number of 512-byte sectors: the media is read at that size (the original raw
    file's hash), while QEMU, which counts a disk in sectors, presents it rounded ``rounds``
    ("up": VDI, "down": QCOW/QCOW2), which ``verify --second-reader`` allows for. ``None``
    for a whole number of sectors."""
    if not size % 512:
        return None
    rounded = size - size % 512 + (512 if rounds == "up" else 0)
    return (f"the declared size, {size} bytes, is not a whole number of 512-byte sectors: "
            f"read at that size; QEMU rounds it {rounds} to {rounded} bytes")


def _spec(drivers: Sequence[str], chain: Sequence[Path],
          data_files: Sequence[Path | None] = (),
          window: tuple[int, int] | None = None) -> dict[str, Any]:
    """QEMU's block-device options for ``chain`` (an image and its parents); ``window``:
    (offset, size) of the image inside its file (a disk member of an archive), read through
    QEMU's ``raw`` driver with those options."""
    file: dict[str, Any] = {"driver": "file", "filename": str(chain[0].resolve())}
    if window is not None:
        file = {"driver": "raw", "offset": window[0], "size": window[1], "file": file}
    spec: dict[str, Any] = {"driver": drivers[0], "file": file}
    if data_files and data_files[0] is not None:  # a QCOW2 external data file, as ours found it
        spec["data-file"] = {"driver": "file", "filename": str(data_files[0].resolve())}
    if len(chain) > 1:
        spec["backing"] = _spec(drivers[1:], chain[1:], data_files[1:])
    elif drivers[0] in ("qcow", "qcow2", "vmdk", "qed"):
        spec["backing"] = None  # no backing file followed from what the image records
    return spec


def _apply_snapshot(target: str, snapshot: str, path: Path) -> None:
    """``qemu-img snapshot -a`` of internal snapshot ``snapshot`` (an ID) on the copies
    ``target`` names: QEMU's own restore of that state, the only writer being QEMU on our
    copy."""
    exe = shutil.which("qemu-img")
    if exe is None:
        raise UnsupportedFormatError("qemu-img is not installed (Debian package qemu-utils)")
    try:
        done = subprocess.run([exe, "snapshot", "-a", snapshot, target], check=False,
                              capture_output=True, text=True, errors="replace",
                              stdin=subprocess.DEVNULL, timeout=_SNAPSHOT_TIMEOUT)
    except subprocess.TimeoutExpired as exc:
        raise CorruptImageError(f"QEMU did not apply snapshot {snapshot} within "
                                f"{_SNAPSHOT_TIMEOUT:.0f} s", path=path) from exc
    if done.returncode != 0:
        reason = done.stderr.strip().splitlines()[-1:] or ["failed"]
        raise CorruptImageError(f"QEMU cannot apply snapshot {snapshot}: {reason[0]}",
                                path=path)


def _recv(sock: socket.socket, n: int) -> bytes:
    parts, got = [], 0
    while got < n:
        chunk = sock.recv(min(n - got, 1 << 20))
        if not chunk:
            raise OSError("qemu-nbd closed the connection")
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


class QemuNbdStream(ImageStream):
    """The media of an image as QEMU reads it."""

    alignment = 1

    def __init__(self, path: Path, driver: str, chain: Sequence[Path] = (),
                 drivers: Sequence[str] | None = None,
                 data_files: Sequence[Path | None] = (), *, extents: Sequence[Path] = (),
                 snapshot: str | None = None, window: tuple[int, int] | None = None,
                 why: str = "") -> None:
        """``chain``: the image and its parents, each with its driver (``drivers``) and a
        QCOW2 external data file (``data_files``); ``extents``: other files QEMU finds by
        name beside them (a VMDK descriptor's extents); ``snapshot``: the ID of the image's
        internal snapshot to read, which ``qemu-img snapshot -a`` applies to QEMU's copy of
        the image first (the disk as QEMU restores it, its size at the time included);
        ``window``: (offset, size) of the image inside its file (an OVA's disk); ``why``:
        why QEMU reads this image rather than the format's usual second reader, which
        ``verify`` shows (``details["why"]``)."""
        exe = shutil.which("qemu-nbd")
        if exe is None:
            raise UnsupportedFormatError("qemu-nbd is not installed (Debian package qemu-utils)")
        self._path = path
        self._driver = driver
        self._why = why
        self._files = tuple(chain) or (path,)
        self._dir = tempfile.TemporaryDirectory(prefix="bitwitness-nbd-")
        folder = Path(self._dir.name)
        sock_path = folder / "nbd.sock"
        # QEMU is given copies made through the read-only opener (evidence_io.copies_for):
        # reading the evidence itself would change its access time
        wanted = list(dict.fromkeys([*self._files, *(f for f in data_files if f is not None),
                                     *extents]))
        try:
            copied = dict(zip(wanted, copies_for("qemu-nbd", wanted, folder), strict=True))
        except BaseException:
            self._dir.cleanup()
            self._unmade()
            raise
        target = "json:" + json.dumps(_spec(drivers or [driver] * len(self._files),
                                            [copied[f] for f in self._files],
                                            [None if f is None else copied[f]
                                             for f in data_files], window))
        if snapshot is not None:
            try:
                _apply_snapshot(target, snapshot, path)
            except BaseException:
                self._dir.cleanup()
                self._unmade()
                raise
        self._proc = subprocess.Popen(
            [exe, "--read-only", "--shared=1", "--persistent", f"--socket={sock_path}", target],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self._lock = threading.Lock()
        self._handle = 0
        try:
            self._sock = self._connect(sock_path)
            size = self._handshake()
        except BaseException:
            self._stop()
            self._unmade()
            raise
        super().__init__(size)

    def _connect(self, sock_path: Path) -> socket.socket:
        deadline = time.monotonic() + _START_TIMEOUT
        while True:
            if self._proc.poll() is not None:
                err = self._proc.stderr.read().decode(errors="replace") if self._proc.stderr else ""
                raise CorruptImageError(f"QEMU cannot open the image: {err.strip() or 'failed'}",
                                        path=self._path)
            if sock_path.exists():
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    sock.connect(str(sock_path))
                    return sock
                except OSError:
                    sock.close()
            if time.monotonic() > deadline:
                raise CorruptImageError("qemu-nbd did not start", path=self._path)
            time.sleep(0.02)

    def _handshake(self) -> int:
        sock = self._sock
        if _recv(sock, 8) != _NBD_MAGIC:
            raise OSError("not an NBD server")
        (magic,) = struct.unpack(">Q", _recv(sock, 8))
        (flags,) = struct.unpack(">H", _recv(sock, 2))
        if magic != _IHAVEOPT or not flags & _FLAG_FIXED_NEWSTYLE:
            raise OSError("qemu-nbd does not speak fixed-newstyle NBD")
        client = _FLAG_FIXED_NEWSTYLE | (flags & _FLAG_NO_ZEROES)
        sock.sendall(struct.pack(">I", client))
        sock.sendall(struct.pack(">QII", _IHAVEOPT, _OPT_EXPORT_NAME, 0))
        size, _tflags = struct.unpack(">QH", _recv(sock, 10))
        if not client & _FLAG_NO_ZEROES:
            _recv(sock, 124)
        return int(size)

    def _read_aligned(self, offset: int, length: int) -> bytes:
        parts = []
        with self._lock:
            while length > 0:
                n = min(length, _MAX_REQUEST)
                self._handle += 1
                self._sock.sendall(struct.pack(">IHHQQI", _REQUEST_MAGIC, 0, _CMD_READ,
                                               self._handle, offset, n))
                magic, error, handle = struct.unpack(">IIQ", _recv(self._sock, 16))
                if magic != _REPLY_MAGIC or handle != self._handle:
                    raise CorruptImageError("qemu-nbd sent a malformed reply", path=self._path,
                                            media_offset=offset)
                if error:
                    raise CorruptImageError(f"QEMU cannot read the media (error {error})",
                                            path=self._path, media_offset=offset)
                parts.append(_recv(self._sock, n))
                offset += n
                length -= n
        return b"".join(parts)

    @property
    def info(self) -> StreamInfo:
        details: dict[str, Any] = {"reader": qemu_version() or "qemu-nbd"}
        if self._why:
            details["why"] = self._why
        return StreamInfo(format=self._driver, files=self._files, media_size=self.size,
                          details=details)

    def _stop(self) -> None:
        sock = getattr(self, "_sock", None)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.sendall(struct.pack(">IHHQQI", _REQUEST_MAGIC, 0, _CMD_DISC, 0, 0, 0))
            sock.close()
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        if self._proc.stderr is not None:
            self._proc.stderr.close()
        self._dir.cleanup()

    def close(self) -> None:
        if not self.closed:
            self._stop()
        super().close()
