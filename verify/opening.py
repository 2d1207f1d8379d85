"""Opening an image for verification or info: the E01 reader for EWF sets, the registry else.

E01 sets are opened with ``allow_incomplete=True`` so that an unfinished set is *reported* as
INCOMPLETE rather than refused; everything else goes through :func:`bitwitness.image.detect`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bitwitness.verify.references import ImageLayout

from bitwitness.image import detect
from bitwitness.stream import ImageStream

#: The first bytes of every E01 segment; checked here too, so that an E01 is never verified as
#: raw bytes whatever the format registry holds.
EVF_MAGIC = b"EVF\x09\x0d\x0a\xff\x00"


def _head(path: Path) -> bytes:
    try:
        with path.open("rb") as fh:
            return fh.read(len(EVF_MAGIC))
    except OSError:
        return b""


@dataclass
class Opened:
    """An open image and what verification needs to know about its files."""

    stream: ImageStream
    ewf: Any | None  #: the EwfImage when the image is an E01 set
    format: str
    files: tuple[Path, ...]


def open_for_verify(path: Path) -> Opened:
    """Open ``path`` read-only; the caller closes ``stream``. Format errors propagate."""
    detected = detect(path)
    fmt = detected.format
    if fmt.name == "ewf" or _head(path).startswith(EVF_MAGIC):
        from bitwitness.ewf import open_ewf

        image = open_ewf(path, allow_incomplete=True)
        return Opened(image, image, "ewf", tuple(image.segments))
    stream = fmt.open(path)
    info = stream.info
    name = info.format if detected.by != "fallback" else f"{info.format} (no format recognised)"
    return Opened(stream, None, name, tuple(info.files) or (path,))


def layout_of(opened: Opened) -> ImageLayout:
    """Files, sizes, and for raw sets the media range each piece holds (hashed in the pass)."""
    stream = opened.stream
    pieces = None
    if opened.ewf is None and stream.info.format in ("raw", "device", "split-raw"):
        sizes = stream.info.details.get("piece_sizes") or [stream.size]
        starts = [sum(sizes[:i]) for i in range(len(sizes))]
        pieces = tuple((s, s + n) for s, n in zip(starts, sizes, strict=True))
    return ImageLayout(opened.files, stream.size, stream.sector_size, pieces)
