"""The base of our readers of containers held in one file (VDI, QED, a Parallels extent, a
sparse image, UDIF, AFF, ntfsclone, partclone).

Why a base: each of them opens the evidence read-only, reads its structures, and refuses what
does not hold. A refusal must close the file and mark the half-made stream closed before the
error leaves the constructor (:meth:`~bitwitness.stream.ImageStream._unmade`: IOBase's finaliser
would close the descriptor's number a second time, another file's by then), and ``close`` must
release the descriptor once. Written out in every reader, that was eight copies of the same
lines, each a place to get it wrong.
"""

from __future__ import annotations

import os
from pathlib import Path

from bitwitness.evidence_io import open_readonly
from bitwitness.stream import ImageStream


class FileImageStream(ImageStream):
    """The media of a container file: :meth:`_load` reads its structures through ``self._fd``
    (the file, opened read-only) and returns the media's size in bytes, or raises.

    A subclass sets what ``_load`` needs (locks, caches) before calling this constructor, and
    overrides :meth:`close` to release more (a backing file) before calling this one."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = open_readonly(path)
        try:
            size = self._load()
        except BaseException:
            os.close(self._fd)
            self._fd = -1
            self._unmade()
            raise
        super().__init__(size, sector_size=vars(self).get("sector_size", 512))

    def _load(self) -> int:
        """Read the container's structures; return the media's size. A container that records
        its logical sector size sets ``self.sector_size`` here (512 otherwise)."""
        raise NotImplementedError

    def close(self) -> None:
        if not self.closed and self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        super().close()
