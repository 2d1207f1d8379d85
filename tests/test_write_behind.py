"""fileio.WriteBehind: an output is put on the disk while it is written, and a failure of that is
never lost (raised by finish, before the owner's own fsync)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bitwitness.fileio import WriteBehind, write_all


def test_writes_behind_and_finishes_cleanly(tmp_path: Path) -> None:
    path = tmp_path / "out.bin"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    behind = WriteBehind(path, every=64 * 1024)
    try:
        for _ in range(64):
            write_all(fd, b"x" * 16384)
            behind.wrote(16384)
        behind.finish()
        os.fsync(fd)
    finally:
        os.close(fd)
    assert path.stat().st_size == 64 * 16384


def test_a_failed_write_behind_is_raised_by_finish(tmp_path: Path) -> None:
    path = tmp_path / "gone" / "out.bin"  # cannot be opened again: the fsync thread fails
    behind = WriteBehind(path, every=1)
    behind.wrote(1)
    with pytest.raises(FileNotFoundError):
        behind.finish()
