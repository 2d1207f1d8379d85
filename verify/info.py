"""What ``bitwitness info`` shows: what ``ewfinfo`` shows for E01 sets, size and logs for raw.

For an E01 set: the case fields (header values), the EWF format and compression, the media
(type, sector size, sectors, size), the stored hashes, the error ranges recorded at acquisition
and the segment files. For raw, split raw and virtual disks: the size, the files, and every hash
a log next to the image records. Nothing is hashed; only metadata is read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bitwitness.verify.model import HashReference, SectorRange
from bitwitness.verify.opening import acquisition_errors, layout_of, open_for_verify
from bitwitness.verify.references import bind_all, load_logs

#: EwfImage attributes shown as they are, in ewfinfo's order.
_EWF_FIELDS = ("format_name", "compression", "media_type", "physical", "guid",
               "bytes_per_sector", "sectors_per_chunk", "chunk_count", "complete")


@dataclass(frozen=True)
class FileEntry:
    """One container file and its size in bytes."""

    path: Path
    size: int


@dataclass(frozen=True)
class ImageInfo:
    """Everything ``info`` reports about one image."""

    image: Path
    format: str
    files: tuple[FileEntry, ...]
    media_size: int
    sector_size: int
    sectors: int
    header_values: dict[str, str] = field(default_factory=dict)  #: E01 case fields
    ewf: dict[str, Any] = field(default_factory=dict)  #: E01 format, compression, chunks, ...
    stored_hashes: dict[str, str] = field(default_factory=dict)
    error_ranges: tuple[SectorRange, ...] = ()
    recorded_hashes: tuple[HashReference, ...] = ()  #: from logs found next to the image
    logs: tuple[Path, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)  #: format-specific (VHD type, ...)
    notes: tuple[str, ...] = ()


def image_info(path: str | Path) -> ImageInfo:
    """Describe ``path`` (any piece of a set); format errors raise."""
    path = Path(path)
    opened = open_for_verify(path)
    try:
        layout = layout_of(opened)
        logs, notes = load_logs(opened.files)
        bound = bind_all(logs, layout)
        ewf = opened.ewf
        ewf_fields = {n: getattr(ewf, n) for n in _EWF_FIELDS if hasattr(ewf, n)} if ewf else {}
        details = {} if ewf else dict(opened.stream.info.details)
        return ImageInfo(
            image=path, format=opened.format,
            files=tuple(FileEntry(f, f.stat().st_size) for f in opened.files),
            media_size=layout.media_size, sector_size=layout.sector_size,
            sectors=-(-layout.media_size // layout.sector_size),
            header_values={k: v for k, v in opened.header_values.items() if v},
            ewf=ewf_fields, stored_hashes=dict(opened.stored_hashes),
            error_ranges=acquisition_errors(opened, bound.error_ranges),
            recorded_hashes=bound.references,
            logs=tuple(log.path for log in logs), details=details,
            notes=tuple(notes) + bound.notes)
    finally:
        opened.stream.close()
