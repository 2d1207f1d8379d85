"""Output files: created exclusively, written sequentially, and a common *sink* interface.

Every writer the conversion pipeline feeds is a :class:`MediaSink`: it takes the media in order,
in blocks of any size, and either :meth:`~MediaSink.finish` es (the output is complete) or is
:meth:`~MediaSink.abort` ed (what was written stays, for the log to name). Files are created with
``O_EXCL`` so an existing file is never replaced unless the caller asked for ``overwrite``.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Protocol

from bitwitness import fileio
from bitwitness.errors import OutputExistsError, UsageError


class MediaSink(Protocol):
    """Where converted media goes."""

    def write(self, data: bytes | memoryview) -> None:
        """The next ``len(data)`` bytes of the media."""

    def finish(self) -> list[Path]:
        """Complete the output (footers, tables, descriptors); return every file written."""

    def abort(self) -> list[Path]:
        """Stop; return the files written so far (they are incomplete)."""


class OutputError(UsageError):
    """An output file cannot be created or written (disk full, permission, bad folder)."""


def create_output(path: Path, *, overwrite: bool) -> int:
    """Open ``path`` for writing; an existing file is an error unless ``overwrite``."""
    flags = os.O_WRONLY | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
    flags |= os.O_TRUNC if overwrite else os.O_EXCL
    try:
        return os.open(path, flags, 0o644)
    except FileExistsError as exc:
        raise OutputExistsError(path) from exc
    except OSError as exc:
        raise OutputError(f"{path}: cannot create ({exc.strerror or exc})") from exc


def write_all(fd: int, data: bytes | memoryview, path: Path) -> None:
    """Write everything (:func:`bitwitness.fileio.write_all`); a full disk is an output error."""
    try:
        fileio.write_all(fd, data)
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise OutputError(f"{path}: no space left on the output device") from exc
        raise OutputError(f"{path}: write failed ({exc.strerror or exc})") from exc


def pwrite_all(fd: int, data: bytes, offset: int, path: Path) -> None:
    """Write everything at ``offset`` (:func:`bitwitness.fileio.pwrite_all`)."""
    try:
        fileio.pwrite_all(fd, data, offset)
    except OSError as exc:
        raise OutputError(f"{path}: write failed ({exc.strerror or exc})") from exc


def close_synced(fd: int, path: Path) -> None:
    """fsync and close: a conversion is finished only when its bytes are on the disk."""
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.EROFS):
            os.close(fd)
            raise OutputError(f"{path}: flushing to disk failed ({exc.strerror or exc})") from exc
    os.close(fd)


class FileSink:
    """One output file written from its start (the data part of a VHD or flat VMDK)."""

    def __init__(self, path: Path, *, overwrite: bool = False) -> None:
        self.path = path
        self._fd: int | None = create_output(path, overwrite=overwrite)

    def write(self, data: bytes | memoryview) -> None:
        assert self._fd is not None, "sink already closed"
        write_all(self._fd, data, self.path)

    def finish(self) -> list[Path]:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            close_synced(fd, self.path)
        return [self.path]

    def abort(self) -> list[Path]:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        return [self.path]
