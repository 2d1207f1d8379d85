"""Whole writes and durable files: the few low-level loops every writer needs, written once.

Why: ``os.write`` and ``os.pwrite`` may take fewer bytes than asked, and neither a file's bytes
nor its folder entry is on the disk before ``fsync``. Logs, custody records, raw images, EWF
segments and virtual disks all need the same loops; errors are raised as the ``OSError`` the
kernel gave, so that each caller says in its own words what could not be written.
"""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path


def write_all(fd: int, data: bytes | bytearray | memoryview) -> None:
    """``os.write`` until all of ``data`` is written."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def pwrite_all(fd: int, data: bytes | bytearray | memoryview, offset: int) -> None:
    """``os.pwrite`` until all of ``data`` is written at ``offset``."""
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view = view[written:]
        offset += written


def fsync_path(path: Path) -> None:
    """fsync a file or a folder (its entries) by name, opened read-only."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_in_place(path: Path, data: bytes, *, reserve: int = 0,
                   regular_only: bool = False) -> None:
    """Overwrite ``path`` from offset 0 (reusing its blocks), pad it with spaces to ``reserve``
    bytes, cut it to length and fsync it.

    Why in place: a log written with ``reserve`` padding when a job starts can be rewritten at
    its end even on a full disk. ``regular_only`` refuses to write into anything but a regular
    file (a device or FIFO at that name).
    """
    payload = data + b" " * max(0, reserve - len(data))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
    try:
        if regular_only and not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{path} is not a regular file")
        pwrite_all(fd, payload, 0)
        os.ftruncate(fd, len(payload))
        os.fsync(fd)
    finally:
        os.close(fd)


class WriteBehind:
    """Puts a file that is being written on the disk as it goes: every ``every`` bytes written,
    an fsync runs in a thread of its own (one at a time), through a descriptor of its own.

    Why: the kernel starts writing dirty pages back only after ~30 s or past a share of memory,
    so a writer that fsyncs at its end (every acquisition output) waited there for nearly all of
    its bytes to reach the disk, after the hashing was done: on 512 MiB of raw output ~0.3 s on
    top of a ~0.75 s MD5 pass. Written back meanwhile, the final fsync has little left.

    Why its own descriptor (the file opened again, read-only), not a duplicate: the kernel
    reports a write-back error once per open file, to the first fsync that asks; a duplicate
    shares the owner's open file and could take the error from the owner's final fsync. Opened
    apart, the owner's fsync still sees every error. One seen here is kept, and raised by
    :meth:`finish` all the same.
    """

    def __init__(self, path: str | os.PathLike[str], every: int = 32 << 20) -> None:
        self._path = path
        self._every = every
        self._pending = 0
        self._thread: threading.Thread | None = None
        self._error: OSError | None = None

    def wrote(self, count: int) -> None:
        """``count`` more bytes were written; start an fsync if enough have been and none is
        running. Called from one thread (the writer's)."""
        self._pending += count
        if self._pending < self._every or (self._thread is not None
                                           and self._thread.is_alive()):
            return
        self._pending = 0
        self._thread = threading.Thread(target=self._sync, name="write-behind", daemon=True)
        self._thread.start()

    def _sync(self) -> None:
        try:
            fd = os.open(self._path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            self._error = self._error or exc

    def finish(self) -> None:
        """Wait for the fsync in progress; raise the first that failed."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._error is not None:
            raise self._error
