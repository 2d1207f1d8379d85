"""Whole writes and durable files: the few low-level loops every writer needs, written once.

Why: ``os.write`` and ``os.pwrite`` may take fewer bytes than asked, and neither a file's bytes
nor its folder entry is on the disk before ``fsync``. Logs, custody records, raw images, EWF
segments and virtual disks all need the same loops; errors are raised as the ``OSError`` the
kernel gave, so that each caller says in its own words what could not be written.
"""

from __future__ import annotations

import os
import stat
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
