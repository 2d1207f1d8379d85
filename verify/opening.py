"""Opening an image for verification or info: the E01 reader for EWF sets, the registry else.

E01 sets are opened with ``allow_incomplete=True`` so that an unfinished set is *reported* as
INCOMPLETE rather than refused; everything else goes through :func:`bitwitness.image.detect`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bitwitness.errors import UnsupportedFormatError
from bitwitness.image import detect
from bitwitness.stream import ImageStream
from bitwitness.verify.model import SectorRange
from bitwitness.verify.references import ImageLayout


@dataclass
class Opened:
    """An open image and what verification needs to know about its files."""

    stream: ImageStream
    ewf: Any | None  #: the EwfImage when our reader opened an E01 set
    format: str
    files: tuple[Path, ...]
    stored_hashes: dict[str, str] = field(default_factory=dict)  #: what the image stores
    header_values: dict[str, str] = field(default_factory=dict)  #: EWF case fields
    image_format: Any = None  #: the registry's format that opened it (its second reader, ...)


def open_for_verify(path: Path, forced: str | None = None) -> Opened:
    """Open ``path`` read-only; the caller closes ``stream``. Format errors propagate.

    E01 sets go to our reader (every chunk checked by ``scan``). What it does not read (Ex01,
    L01) is read through libewf, so that it is still verified rather than refused. ``forced``
    names a format to use whatever the content says (``--format``).
    """
    from bitwitness.images import ewf as ewf_format

    detected = detect(path, forced)
    fmt = detected.format
    if fmt is ewf_format.FORMAT:
        from bitwitness.ewf import open_ewf

        try:
            image = open_ewf(path, allow_incomplete=True)
        except UnsupportedFormatError as exc:
            from bitwitness.images.ewf import open_with_pyewf

            by_libewf = open_with_pyewf(path, str(exc))
            files = tuple(by_libewf.info.files)
            # what the handle already read: a second handle would parse an L01's whole file
            # list (ltree) again, and hold it beside the first
            return Opened(by_libewf, None, libewf_format_name(by_libewf), files,
                          dict(by_libewf.stored_hashes), dict(by_libewf.header_values),
                          image_format=fmt)
        return Opened(image, image, "ewf", tuple(image.segments), dict(image.stored_hashes),
                      dict(image.header_values))
    stream = fmt.open(path)
    info = stream.info
    # the reader's own name where it says more ("device", "qcow2", "sparseimage"); else how the
    # format was chosen ("raw (no container signature)")
    name = info.format if info.format != fmt.name else detected.description
    snapshot = getattr(stream, "snapshot", None)  # a QCOW2 image's internal snapshot, chosen
    if snapshot is not None:
        name = f"{name}, internal snapshot {snapshot.label}"
    stored = dict(getattr(stream, "stored_hashes", None) or {})  # what the container records
    return Opened(stream, None, name, tuple(info.files) or (path,), stored,
                  image_format=fmt)


def libewf_format_name(stream: Any) -> str:
    """``"L01 logical evidence file (read by libewf)"``, ``"Ex01 (read by libewf)"``; ``"ewf (read
    by libewf)"`` for the E01/SMART signature: what the set is, by its first segment's signature,
    not by its file name."""
    container = getattr(stream, "container", "ewf")
    kind = f"{container} logical evidence file" if getattr(stream, "logical", False) else container
    return f"{kind} (read by libewf)"


def layout_of(opened: Opened) -> ImageLayout:
    """Files, sizes, and for raw sets the media range each piece holds (hashed in the pass)."""
    stream = opened.stream
    return ImageLayout(opened.files, stream.size, stream.sector_size, stream.info.pieces)


def declared_media_size(opened: Opened) -> int | None:
    """The media size an E01 set's volume section declares: what the set was meant to hold.

    For a finished set it is the media size; for an unfinished one the reader only gives the
    media its complete chunk groups hold (possibly 0), so this is how far from finished it is.
    ``None`` for other formats, and for a set whose volume section declares no size (written by
    an acquisition that did not know the media size when it started, patched only at the end).
    """
    volume = getattr(opened.ewf, "volume", None)
    return volume.media_size if volume is not None and volume.media_size > 0 else None


def acquisition_errors(opened: Opened, logged: Iterable[SectorRange]) -> tuple[SectorRange, ...]:
    """Sectors unreadable at acquisition: the E01's error2 ranges and those logs record, once
    each, in media order."""
    ranges = set(logged)
    if opened.ewf is not None:
        size = opened.stream.sector_size
        ranges |= {SectorRange(first, first + count - 1, size)
                   for first, count in opened.ewf.error_ranges if count > 0}
    return tuple(sorted(ranges, key=lambda r: (r.first_sector, r.last_sector)))
