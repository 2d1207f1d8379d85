"""Opening images: one registry of formats, detection by magic first, name second, raw last.

Each format lives in its own module under :mod:`bitwitness.images` and is listed once in
:data:`FORMATS`. Adding a format touches that module and one line here.

``open_image(path)`` accepts any piece of a multi-file image (``x.E02``, ``x.002``) and returns an
:class:`~bitwitness.stream.ImageStream` over the whole media, opened read-only.
"""

from __future__ import annotations

import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from bitwitness.errors import InputError, UnsupportedFormatError
from bitwitness.stream import ImageStream

#: How many bytes of the file detection looks at.
HEAD_SIZE = 4096


class ImageFormat(Protocol):
    """What each format module provides (as module-level attributes or a class)."""

    name: str

    def probe(self, path: Path, head: bytes) -> bool:
        """True when ``path`` (whose first bytes are ``head``) is this format, by content."""

    def claims_name(self, path: Path) -> bool:
        """True when the file name alone says this format (``.E01``, ``.001``)."""

    def files(self, path: Path) -> list[Path]:
        """Every file of the image set that ``path`` belongs to, in order."""

    def open(self, path: Path) -> ImageStream:
        """Open the whole image set read-only."""


@dataclass(frozen=True)
class Detected:
    """The format chosen for a path and how it was chosen."""

    format: ImageFormat
    by: str  #: "magic", "name" or "fallback"


def _formats() -> Sequence[ImageFormat]:
    # Imported lazily so that "bitwitness --help" does not load every format.
    from bitwitness.images import FORMATS

    return FORMATS


def _read_head(path: Path) -> bytes:
    """The first bytes of ``path``, read through the one read-only evidence opener."""
    from bitwitness.evidence_io import read_head

    return read_head(path, HEAD_SIZE)


def detect(path: str | Path) -> Detected:
    """Choose the format of ``path``: magic bytes first, file name second, raw last."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file or device")
    head = _read_head(path)
    formats = _formats()
    for fmt in formats:
        if fmt.probe(path, head):
            return Detected(fmt, "magic")
    from bitwitness.images import RAW

    for fmt in formats:
        if fmt.claims_name(path):
            if fmt is RAW:
                _refuse_empty(path, head)
            return Detected(fmt, "name")
    mode = path.stat().st_mode
    if not (stat.S_ISREG(mode) or stat.S_ISBLK(mode)):
        raise UnsupportedFormatError(f"{path}: not a regular file or block device")
    _refuse_empty(path, head)
    return Detected(RAW, "fallback")


def _refuse_empty(path: Path, head: bytes) -> None:
    """A 0-byte file read as raw would pass for empty media (and 'verify' as a hash of nothing):
    it is a wrong path or a failed copy, so it is refused as input. Empty E01/VHD/VMDK files
    are left to their readers, which call them damaged (an evidence problem)."""
    if not head and path.is_file():
        raise InputError(f"{path}: empty file (0 bytes), not an image")


def open_image(path: str | Path) -> ImageStream:
    """Open any supported image (or device) read-only; the caller closes it."""
    return detect(path).format.open(Path(path))


def image_files(path: str | Path) -> list[Path]:
    """Every file that makes up the image ``path`` belongs to."""
    return detect(path).format.files(Path(path))
