"""What ``bitwitness info`` shows: what ``ewfinfo`` shows for E01 sets, size and logs for raw.

For an E01 set: the case fields (header values), the EWF format and compression, the media
(type, sector size, sectors, size), the stored hashes, the error ranges recorded at acquisition
and the segment files. For raw, split raw and virtual disks: the size, the files, and every hash
a log next to the image records. Nothing is hashed; only metadata is read.

An unfinished E01 set (no ``done``: interrupted, or cut short) is described as what it was meant
to be and what it holds: ``media_size``, ``sectors`` and ``ewf.chunk_count`` are what its volume
section declares, ``readable_media_size`` is the media its complete chunk groups hold (all a
reader can give), and ``ewf.incomplete_reason`` says where the set stops.

A raw image still named ``*.partial`` (``BASE.raw.partial``, or the set ``BASE.001.partial,
BASE.002.partial, ...``) is unfinished the same way: BitWitness renames raw output only once the
acquisition is complete. Its ``media_size`` is what its acquisition log (``BASE.json``) declares
and ``readable_media_size`` what the ``.partial`` files hold. Both kinds carry an
:class:`Unfinished` record (``unfinished``; ``None`` for any other image), which ``info`` turns
into exit status 1.

A container file cut short (its tables map data past its end: a copy interrupted, a disk that
filled up) is found from its tables alone (:mod:`bitwitness.images.truncation`) and carried as
``truncated`` with the missing media ranges; ``info`` shows everything else as usual, then says
INCOMPLETE and exits 1 as well.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bitwitness.errors import FormatError
from bitwitness.images.raw import PARTIAL_SUFFIX
from bitwitness.images.truncation import Truncation, find_truncation
from bitwitness.ranges import merge_ranges
from bitwitness.verify.logs import HashLog
from bitwitness.verify.model import HashReference, SectorRange
from bitwitness.verify.opening import (
    Opened,
    acquisition_errors,
    declared_media_size,
    layout_of,
    open_for_verify,
)
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
class Unfinished:
    """Why an image is an acquisition that never finished, and what its own log says about it.

    ``status``, ``error`` and ``log`` come from the BitWitness acquisition log next to the image
    (``BASE.json``, else ``BASE.txt``) and are ``None`` without one: the image alone says *that*
    it is unfinished, only the log says why. ``declared_media_size`` is the media size the image
    (E01 volume section) or, for raw, the log declares: what the acquisition was meant to copy;
    ``None`` when nothing declares it.
    """

    reason: str
    declared_media_size: int | None = None
    status: str | None = None  #: as the log records it: "interrupted", "failed", ...
    error: str | None = None  #: the log's own words for why the acquisition stopped
    log: Path | None = None


@dataclass(frozen=True)
class ImageInfo:
    """Everything ``info`` reports about one image."""

    image: Path
    format: str
    files: tuple[FileEntry, ...]
    media_size: int  #: the media the image is of (unfinished: as the E01 or the raw's log says)
    sector_size: int
    sectors: int
    readable_media_size: int  #: the media the image holds (less than media_size if unfinished)
    header_values: dict[str, str] = field(default_factory=dict)  #: E01 case fields
    ewf: dict[str, Any] = field(default_factory=dict)  #: E01 format, compression, chunks, ...
    stored_hashes: dict[str, str] = field(default_factory=dict)
    error_ranges: tuple[SectorRange, ...] = ()
    recorded_hashes: tuple[HashReference, ...] = ()  #: from logs found next to the image
    logs: tuple[Path, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)  #: format-specific (VHD type, ...)
    notes: tuple[str, ...] = ()
    unfinished: Unfinished | None = None  #: set when the image is an unfinished acquisition
    #: files cut short (their tables map data past their end); non-empty makes ``info`` exit 1
    truncated: tuple[Truncation, ...] = ()
    missing_ranges: tuple[SectorRange, ...] = ()  #: the media whose data they lack, merged
    #: why the image's tables are damaged (a table or unit placed where no file of the image
    #: reaches), as the truncation walk found it; set makes ``info`` exit 1 as ``verify``'s
    #: CORRUPT does
    damaged: str | None = None


def image_info(path: str | Path, forced: str | None = None) -> ImageInfo:
    """Describe ``path`` (any piece of a set); format errors raise. ``forced`` names a format
    to use whatever the content says (``--format``)."""
    path = Path(path)
    opened = open_for_verify(path, forced)
    try:
        layout = layout_of(opened)
        logs, notes = load_logs(opened.files)
        bound = bind_all(logs, layout)
        unfinished = _unfinished(opened, logs)
        media_size, size_notes = _media_size(opened, layout.media_size, unfinished)
        details = {} if opened.ewf else dict(opened.stream.info.details)
        logical_notes = _logical_files(opened, details)
        truncated, damaged = _truncated(opened, path)
        cut_notes = () if damaged is None else (
            f"whether a file is cut short cannot be told from its tables: {damaged}",)
        missing = tuple(SectorRange(first, first + count - 1, layout.sector_size)
                        for first, count in merge_ranges(
                            run for t in truncated for run in t.missing))
        return ImageInfo(
            image=path, format=opened.format,
            files=tuple(FileEntry(f, f.stat().st_size) for f in opened.files),
            media_size=media_size, sector_size=layout.sector_size,
            sectors=-(-media_size // layout.sector_size),
            readable_media_size=layout.media_size,
            header_values={k: v for k, v in opened.header_values.items() if v},
            ewf=_ewf_fields(opened, media_size), stored_hashes=dict(opened.stored_hashes),
            error_ranges=acquisition_errors(opened, bound.error_ranges),
            recorded_hashes=bound.references,
            logs=tuple(log.path for log in logs), details=details,
            notes=(tuple(notes) + size_notes + bound.notes + _section_notes(opened)
                   + logical_notes + cut_notes),
            unfinished=unfinished, truncated=truncated, missing_ranges=missing,
            damaged=damaged)
    finally:
        opened.stream.close()


def _truncated(opened: Opened, path: Path) -> tuple[tuple[Truncation, ...], str | None]:
    """The files cut short, from the tables (metadata, as everything ``info`` reads), or why
    the tables cannot be walked (damaged: ``info`` shows everything, then exits 1)."""
    if opened.image_format is None:
        return (), None
    try:
        return find_truncation(opened.image_format, path, opened.stream), None
    except FormatError as exc:
        return (), str(exc)


def _logical_files(opened: Opened, details: dict[str, Any]) -> tuple[str, ...]:
    """A logical evidence file (L01, Lx01) holds files, not a disk: how many, and how many bytes
    of file data (the media is those bytes end to end). A tree libewf cannot list is a note:
    ``info`` still shows what the set records about itself."""
    if not getattr(opened.stream, "logical", False):
        return ()
    try:
        tree = opened.stream.logical_tree()  # type: ignore[attr-defined]
    except FormatError as exc:
        return (f"the files it holds cannot be listed: {exc}",)
    details.update(files_held=tree.files, folders_held=tree.folders,
                   file_data_bytes=tree.data_bytes)
    return ("a logical evidence file holds files, not a disk: list them with 'bitwitness ls -r "
            "IMAGE', export them with 'bitwitness export'",)


def _section_notes(opened: Opened) -> tuple[str, ...]:
    """Damaged E01 sections the reader worked around (a header2 that does not inflate, a bad
    table with a good table2): shown, never silent, as ``verify`` shows them."""
    if opened.ewf is None:
        return ()
    return tuple(f"damaged {p.section} section of {p.segment.name} at file offset "
                 f"{p.file_offset}: {p.reason}" for p in opened.ewf.section_problems)


def _media_size(opened: Opened, readable: int, unfinished: Unfinished | None
                ) -> tuple[int, tuple[str, ...]]:
    """The media size to show, and a note when an unfinished image does not say what it is.

    A finished set declares what it holds. An unfinished one is shown at the size it (or, for
    raw, its acquisition log) declares, not at the part a reader gets from it (0 before the first
    chunk group was written): that is the media it is an image of, and the difference is the
    part that is missing.
    """
    declared = declared_media_size(opened)
    if declared is not None:
        return declared, ()
    if unfinished is None:
        return readable, ()
    if unfinished.declared_media_size is not None:
        return unfinished.declared_media_size, ()
    if opened.ewf is not None:
        return readable, ("the volume section declares no media size (it was not known when "
                          "the acquisition started): the size shown is what the set holds",)
    if unfinished.log is not None:
        return readable, (f"{unfinished.log.name} declares no media size: the size shown is "
                          f"what the *{PARTIAL_SUFFIX} files hold",)
    return readable, ()  # no log at all: load_logs has said so


def _unfinished(opened: Opened, logs: list[HashLog]) -> Unfinished | None:
    """What makes the image an unfinished acquisition, or ``None`` when nothing does.

    An E01 set says so itself (no ``done``). A raw image says so only by its ``.partial`` name,
    which the acquisition drops once it is complete; a raw file named otherwise is taken as
    finished whatever logs lie next to it (``verify`` compares those).
    """
    own = _acquisition_log(logs)
    if opened.ewf is not None and not opened.ewf.complete:
        why = opened.ewf.incomplete_reason or "no 'done' section"
        reason = f"the E01 set was never finished ({why})"
        declared = declared_media_size(opened)
    elif _is_partial_raw(opened):
        reason = (f"its name ends in {PARTIAL_SUFFIX}, which BitWitness gives raw output until "
                  "the acquisition finishes")
        declared = own.media_size if own is not None and own.media_size else None
    else:
        return None
    if own is None:
        return Unfinished(reason, declared)
    return Unfinished(reason, declared, own.status, own.error, own.path)


def _is_partial_raw(opened: Opened) -> bool:
    """Raw output not yet renamed. Every piece of a ``.partial`` split set is ``.partial``
    (splitraw never mixes them), so the first file's name speaks for the set."""
    return (opened.stream.info.pieces is not None
            and opened.files[0].name.endswith(PARTIAL_SUFFIX))


def _acquisition_log(logs: list[HashLog]) -> HashLog | None:
    """Our own log of how the image was made: ``BASE.json`` first, else the ``BASE.txt`` report.

    ``convert`` writes the same logs for the raw output it leaves ``.partial``, so theirs count too.
    """
    for kind in ("bitwitness", "bitwitness-text"):
        for log in logs:
            if log.kind == kind:
                return log
    return None


def _ewf_fields(opened: Opened, media_size: int) -> dict[str, Any]:
    """What ewfinfo shows of the set; for an unfinished set, the chunks it was meant to hold
    (consistent with ``media_size``) and why it is unfinished."""
    ewf = opened.ewf
    if ewf is None:
        return {}
    # a SMART set has no set identifier (guid None): left out, not shown as "None"
    fields = {n: getattr(ewf, n) for n in _EWF_FIELDS if getattr(ewf, n, None) is not None}
    if not ewf.complete:
        fields["chunk_count"] = -(-media_size // ewf.chunk_size)
        fields["incomplete_reason"] = ewf.incomplete_reason or "no 'done' section"
    return fields
