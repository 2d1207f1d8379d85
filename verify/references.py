"""Finding the hashes recorded for an image and saying exactly what each one covers.

Hashes come from the image itself (an E01 stores MD5 and SHA-1), from logs found next to the image
(``BASE.json``, ``BASE.md5``, ``BASE.E01.txt``, ...) and from logs named with ``--log``. A log
names files and sector ranges in its own words; :func:`bind` turns them into
:class:`~bitwitness.verify.model.HashReference` records against one image: a piece of a split raw
set becomes the byte range it occupies in the media (hashed in the same pass), a container file
(an E01 segment, a VHD file) stays a file (its bytes are not the media), and a line that names
nothing of this image is left out with a note rather than silently compared with the wrong data.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from bitwitness.errors import InputError
from bitwitness.images.raw import PARTIAL_SUFFIX
from bitwitness.verify.logs import HashLog, LogEntry, parse_log
from bitwitness.verify.model import HashReference, SectorRange, SizeCheck

#: Names tried next to an image, after its full name and its stem: x.E01.txt, x.json, x.md5, ...
LOG_SUFFIXES = (".json", ".md5", ".sha1", ".sha256", ".md5sum", ".sha1sum", ".sha256sum",
                ".hash", ".hashes", ".log", ".txt", ".info", ".hashlog",
                ".md5log", ".sha1log", ".sha256log", ".sha384log", ".sha512log",  # dcfldd's
                ".map", ".mapfile")

_PIECE_SUFFIX = re.compile(r"^\.(\d{3,}|[a-z]{2}|[EeLs][0-9A-Za-z]{2})$")


@dataclass(frozen=True)
class ImageLayout:
    """What binding needs to know about the image.

    ``pieces`` gives the media byte range ``(start, end)`` of each file when the files *are* the
    media (raw and split raw); ``None`` when they are containers (E01, VHD).
    """

    files: tuple[Path, ...]
    media_size: int
    sector_size: int
    pieces: tuple[tuple[int, int], ...] | None = None


@dataclass(frozen=True)
class Bound:
    """Everything the logs say about one image."""

    references: tuple[HashReference, ...]
    sizes: tuple[SizeCheck, ...]
    error_ranges: tuple[SectorRange, ...]
    statuses: tuple[tuple[str, str], ...]  #: (log label, status) from acquisition logs
    source_size: int | None  #: the source's size before padding, when a log records it
    notes: tuple[str, ...]


def candidate_logs(files: Sequence[Path]) -> list[Path]:
    """Hash logs that may sit next to the image, by name; the first file names the set."""
    first = files[0]
    stems = _stems(first.name)
    if first.name.endswith(PARTIAL_SUFFIX):  # an unfinished raw acquisition keeps BASE's logs
        stems += [s for s in _stems(first.name.removesuffix(PARTIAL_SUFFIX)) if s not in stems]
    found: list[Path] = []
    own = {f.resolve() for f in files}
    for stem in stems:
        for suffix in LOG_SUFFIXES:
            candidate = first.parent / f"{stem}{suffix}"
            if candidate.is_file() and candidate.resolve() not in own and candidate not in found:
                found.append(candidate)
    return found


def _stems(name: str) -> list[str]:
    stem = Path(name).stem
    return [name, stem] if stem and stem != name else [name]


def load_logs(files: Sequence[Path], explicit: Iterable[Path] = (), *,
              find: bool = True) -> tuple[list[HashLog], list[str]]:
    """Parse the logs named with ``--log`` (errors raise) and, with ``find``, those found next
    to the image.

    A file found by name that is no hash log (our human ``BASE.txt``, an unrelated ``.log``) is
    skipped with a note; a file named explicitly must be one, or :class:`InputError` is raised.
    """
    logs: list[HashLog] = []
    notes: list[str] = []
    seen: set[Path] = set()
    for path in explicit:
        logs.append(parse_log(path))
        seen.add(path.resolve())
    found: list[HashLog] = []
    for path in candidate_logs(files) if find else ():
        if path.resolve() in seen:
            continue
        try:
            found.append(parse_log(path))
        except InputError:
            notes.append(f"{path.name}: not a hash log, ignored")
    for log in found:
        twin = _twin_json(log, [*logs, *found])
        if twin is not None:
            notes.append(f"{log.label} repeats the hashes, sizes and status of "
                         f"{twin.path.name}: compared once, from {twin.path.name}")
        else:
            logs.append(log)
    if find and files[0].name.endswith(PARTIAL_SUFFIX) and not any(
            log.kind.startswith("bitwitness") for log in logs):
        notes.append(f"{files[0].name}: BitWitness names raw output *{PARTIAL_SUFFIX} until the "
                     "acquisition finishes, but no acquisition log was found next to it")
    return logs, notes


def _twin_json(log: HashLog, logs: Sequence[HashLog]) -> HashLog | None:
    """The ``BASE.json`` that ``log`` (our ``BASE.txt``, found by name) merely repeats, if any.

    The text report is written from the same record as the JSON; comparing both would list every
    hash twice. It is left out only when it adds nothing: every hash it states (media, read-back,
    output files) is in the JSON, and so are its status, sizes and read errors. A report that
    differs, or has no JSON next to it, is checked like any other log.
    """
    if log.kind != "bitwitness-text":
        return None
    for other in logs:
        if (other.kind == "bitwitness" and other.path.parent == log.path.parent
                and other.path.stem == log.path.stem and _same_record(log, other)):
            return other
    return None


def _same_record(text: HashLog, doc: HashLog) -> bool:
    def facts(log: HashLog) -> tuple[object, ...]:
        return (log.status, log.media_size, log.sector_size, set(log.error_ranges))

    def hashes(log: HashLog) -> set[tuple[str, str, str | None]]:
        return {(e.algorithm, e.value, None if e.name is None else re.split(r"[\\/]", e.name)[-1])
                for e in log.entries}

    return facts(text) == facts(doc) and hashes(text) <= hashes(doc)


def stored_references(stored: dict[str, str], source: str = "stored in the image"
                      ) -> list[HashReference]:
    """The hashes an image stores about its own media."""
    return [HashReference(source=source, algorithm=alg, value=value.lower())
            for alg, value in sorted(stored.items()) if value]


def bind_all(logs: Sequence[HashLog], layout: ImageLayout) -> Bound:
    """Bind every log to the image."""
    refs: list[HashReference] = []
    sizes: list[SizeCheck] = []
    errors: list[SectorRange] = []
    statuses: list[tuple[str, str]] = []
    notes: list[str] = []
    source_size = None
    for log in logs:
        r, n = bind(log, layout)
        refs += r
        notes += n + list(log.notes)
        if log.media_size is not None:
            sizes.append(SizeCheck(log.label, log.media_size, layout.media_size))
        sector = log.sector_size or layout.sector_size
        errors += [SectorRange(first, first + count - 1, sector)
                   for first, count in log.error_ranges if count > 0]
        if log.status:
            statuses.append((log.label, log.status))
        if log.source_size is not None:
            source_size = log.source_size
    return Bound(tuple(refs), tuple(sizes), tuple(errors), tuple(statuses), source_size,
                 tuple(notes))


def bind(log: HashLog, layout: ImageLayout) -> tuple[list[HashReference], list[str]]:
    """The references ``log`` makes about this image, and notes about entries left out."""
    refs: list[HashReference] = []
    notes: list[str] = []
    unnamed_ok = log.kind == "hashsum" and len(log.entries) == 1 and len(layout.files) == 1
    for entry in log.entries:
        source = log.label + (f" ({entry.section})" if entry.section in
                              ("input", "output", "computed", "verification") else "")
        ref = _bind_entry(entry, source, log, layout, unnamed_ok)
        if ref is None:
            if not log.kind.startswith("bitwitness"):  # ours list sidecars too: not a finding
                notes.append(f"{log.path.name}: {entry.algorithm} of {entry.name!r} does not "
                             "belong to this image, ignored")
            continue
        refs.append(ref)
    return refs, notes


def _bind_entry(entry: LogEntry, source: str, log: HashLog, layout: ImageLayout,
                unnamed_ok: bool) -> HashReference | None:
    make = partial(HashReference, source=source, algorithm=entry.algorithm, value=entry.value,
                   log=log.path)
    if entry.name is not None:
        named = _bind_name(make, entry.name, layout, unnamed_ok)
        if named is not None or entry.first_sector is None:
            return named
    if entry.first_sector is not None and entry.last_sector is not None:
        return _bind_sectors(make, entry.first_sector, entry.last_sector,
                             log.sector_size or layout.sector_size, layout)
    return make()


def _bind_name(make: Callable[..., HashReference], name: str, layout: ImageLayout,
               unnamed_ok: bool) -> HashReference | None:
    """A hash the log gives for a file called ``name`` (any folder, any case)."""
    base = re.split(r"[\\/]", name.strip())[-1]
    for index, file in enumerate(layout.files):
        if file.name.lower() == base.lower():
            return _file_reference(make, index, file, layout)
    if _is_missing_piece(base, layout):
        return make(scope=f"file {base}", file=layout.files[0].parent / base)
    if base in ("-", layout.files[0].stem):
        return make()
    if unnamed_ok:
        return make(scope=f"media (listed as {base!r})")
    return None


def _bind_sectors(make: Callable[..., HashReference], first: int, last: int, sector: int,
                  layout: ImageLayout) -> HashReference:
    start, end = first * sector, (last + 1) * sector
    if 0 < abs(layout.media_size - end) < sector:
        # the media ends inside that sector: its partial last sector belongs to the last range
        # (whether the log counts it as a whole sector, as dcfldd's windows do, or leaves it out)
        end = layout.media_size
    scope = f"sectors {first}-{last}"
    if start == 0 and end == layout.media_size:
        return make(scope=scope)
    return make(scope=scope, start=start, end=end)


def _file_reference(make: Callable[..., HashReference], index: int, file: Path,
                    layout: ImageLayout) -> HashReference:
    scope = f"file {file.name}"
    if layout.pieces is None:
        return make(scope=scope, file=file)
    start, end = layout.pieces[index]
    if start == 0 and end == layout.media_size:
        return make(scope=scope)
    return make(scope=scope, start=start, end=end)


def _is_missing_piece(name: str, layout: ImageLayout) -> bool:
    """True when ``name`` looks like another piece of this set (``x.003``, ``x.E03``)."""
    first = layout.files[0]
    candidate = Path(name)
    return (candidate.stem == first.stem and bool(_PIECE_SUFFIX.match(candidate.suffix))
            and bool(_PIECE_SUFFIX.match(first.suffix))
            and not (first.parent / name).exists())
