"""Exporting files and folders out of an image, with a manifest a court can check.

Every exported file is read once: the bytes are written and hashed (MD5, SHA-256) in the same
pass. Paths inside the image are recreated under the destination with every component passed
through :func:`~bitwitness.report.browse.safenames.safe_name`, files are created with ``O_EXCL`` and
``O_NOFOLLOW`` and checked to lie inside the destination, so no name in the evidence can make us
write elsewhere or replace an existing file (unless ``overwrite``). Symbolic links are exported
as plain files holding the link's target, never as links.

``manifest.json`` (schema ``bitwitness.export/1``) and ``manifest.csv`` list, per file: the path
in the image, where it was written, inode, size, MACB times (UTC) - on NTFS both the
``$STANDARD_INFORMATION`` and the ``$FILE_NAME`` ones -, deleted flag, MD5, SHA-256. A name that
is not valid UTF-8 is shown with ``\\xNN`` for its odd bytes and given exactly, as hex, in
``source_hex``.

The manifests are always written, also when some files could not be exported: those are listed
under ``failed`` with the reason (a read error, or a deleted file whose content is no longer in
the evidence - never written as an empty or foreign file that would pass as recovered), and
the export then ends with :class:`~bitwitness.errors.NotRecoveredError` (exit 1).
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import platform
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bitwitness import __version__
from bitwitness.errors import (
    BitWitnessError,
    DestinationError,
    FileSystemError,
    OutputExistsError,
    UsageError,
)
from bitwitness.hashing import MultiHasher
from bitwitness.progress import Mediator, NullMediator
from bitwitness.report.browse.entries import Entry, Selection, Times
from bitwitness.report.browse.filesystem import split_path
from bitwitness.report.browse.interface import BrowsableFileSystem as FileSystem
from bitwitness.report.browse.safenames import is_exact, raw_bytes, safe_name, safe_relative

SCHEMA = "bitwitness.export/1"
MANIFEST_JSON = "manifest.json"
MANIFEST_CSV = "manifest.csv"
CSV_FIELDS = ("source", "source_hex", "target", "inode", "kind", "deleted", "size", "modified",
              "accessed", "changed", "born", "fn_modified", "fn_accessed", "fn_changed",
              "fn_born", "md5", "sha256")


def escaped(name: str) -> str:
    """``name`` with each byte that is not UTF-8 as ``\\xNN`` (exact bytes: ``source_hex``)."""
    return "".join(f"\\x{ord(c) - 0xDC00:02x}" if 0xDC80 <= ord(c) <= 0xDCFF else c
                   for c in name)


@dataclass(frozen=True)
class ExportedFile:
    """One file written by an export."""

    source: str  #: path in the image (with ``:stream`` for an NTFS stream)
    target: str  #: path written, relative to the destination, ``/``-separated
    inode: str  #: address as ``icat`` takes it
    kind: str
    deleted: bool
    size: int  #: bytes written (the stream's size)
    modified: datetime | None
    accessed: datetime | None
    changed: datetime | None
    born: datetime | None
    md5: str
    sha256: str
    file_name_times: Times | None = None  #: NTFS $FILE_NAME times (the others are $SI's)


@dataclass(frozen=True)
class ExportFailure:
    """One file that was not exported, and why."""

    source: str
    inode: str
    deleted: bool
    reason: str


@dataclass(frozen=True)
class ExportResult:
    """What an export did; also what ``manifest.json`` holds."""

    image: str
    image_files: tuple[str, ...]
    partition: int  #: row of ``partitions`` (-1: chosen by --offset outside the table)
    offset_sector: int
    filesystem: str
    destination: Path
    started: datetime
    ended: datetime
    files: tuple[ExportedFile, ...]
    folders: tuple[str, ...]  #: folders created, relative to the destination
    manifest_json: Path
    manifest_csv: Path
    manifest_sha256: str  #: SHA-256 of manifest.json as written
    failed: tuple[ExportFailure, ...] = ()


@dataclass(frozen=True)
class _Job:
    entry: Entry
    target: str  # relative, "/"-separated, already safe


class _Targets:
    """Safe relative targets; a second entry wanting the same target gets ``~ADDRESS`` appended."""

    def __init__(self) -> None:
        self.used: set[str] = {MANIFEST_JSON, MANIFEST_CSV}

    def claim(self, parent: str, component: str, entry: Entry) -> str:
        target = f"{parent}/{component}" if parent else component
        if target in self.used and not entry.is_dir:
            target = f"{target}~{safe_name(entry.address)}"
        self.used.add(target)
        return target


def plan(fs: FileSystem, paths: Iterable[str | Entry],
         selection: Selection = Selection.ALLOCATED,
         mediator: Mediator | None = None) -> list[_Job]:
    """What to write for ``paths`` (files and whole folders), resolved before anything is written.

    A path may also be given as the :class:`Entry` a listing returned (the browser does), which
    exports entries whose names no path can spell (``..``, a name holding ``/``). Missing paths
    raise :class:`FileSystemError` now, so a typo never leaves half an export.
    """
    targets = _Targets()
    jobs: list[_Job] = []
    for path in paths:
        if isinstance(path, Entry):
            entry = path
            shown_name = f"{entry.name}:{entry.stream}" if entry.stream else entry.name
            top = safe_name(shown_name) if entry.path not in ("", "/") else ""
        else:
            parts = split_path(path)
            entry = fs.lookup(path)
            top = safe_relative(parts) if parts else ""
        targets.used.add(top)
        jobs.append(_Job(entry, top))
        if entry.is_dir:
            jobs.extend(_folder_jobs(fs, entry, top, selection=selection, targets=targets,
                                     mediator=mediator))
    return jobs


def _folder_jobs(fs: FileSystem, folder: Entry, top: str, *, selection: Selection,
                 targets: _Targets, mediator: Mediator | None) -> Iterator[_Job]:
    parents = {folder.path if folder.path != "/" else "": top}
    for entry in fs.walk(folder.path, recursive=True, selection=selection, mediator=mediator):
        parent_path = entry.path[: len(entry.path) - len(entry.name) - 1]
        parent = parents.get(parent_path)
        if parent is None:  # inside a folder that the selection left out
            continue
        name = f"{entry.name}:{entry.stream}" if entry.stream else entry.name
        target = targets.claim(parent, safe_name(name), entry)
        if entry.is_dir:
            parents[entry.path] = target
        yield _Job(entry, target)


def export(fs: FileSystem, paths: Iterable[str | Entry], destination: Path, *, image: Path,
           image_files: Iterable[Path] = (), selection: Selection = Selection.ALLOCATED,
           overwrite: bool = False, mediator: Mediator | None = None) -> ExportResult:
    """Export ``paths`` from ``fs`` into ``destination`` and write the manifests there."""
    mediator = mediator or NullMediator()
    started = datetime.now(UTC)
    paths = list(paths)
    if not paths:
        raise UsageError("nothing to export: give at least one path")
    jobs = plan(fs, paths, selection, mediator)
    root = _prepare(destination, overwrite)
    task = mediator.begin(f"exporting to {destination}",
                          sum(j.entry.size for j in jobs if not j.entry.is_dir))
    files: list[ExportedFile] = []
    folders: list[str] = []
    failed: list[ExportFailure] = []
    try:
        for job in jobs:
            if job.entry.is_dir:
                if job.target:
                    _make_folder(root, job.target)
                    folders.append(job.target)
                continue
            note = fs.content_note(job.entry)
            if note is not None:
                failed.append(_failure(job.entry, note))
                continue
            try:
                files.append(_write_file(fs, job, root, overwrite, task.advance))
            except OutputExistsError:
                raise
            except BitWitnessError as exc:
                failed.append(_failure(job.entry, str(exc)))
    finally:
        task.finish()
        ended = datetime.now(UTC)
        json_path, csv_path = root / MANIFEST_JSON, root / MANIFEST_CSV
        result = ExportResult(
            image=str(image), image_files=tuple(str(p) for p in image_files),
            partition=fs.partition.index, offset_sector=fs.partition.start,
            filesystem=fs.type, destination=root, started=started, ended=ended,
            files=tuple(files), folders=tuple(folders), manifest_json=json_path,
            manifest_csv=csv_path, manifest_sha256="", failed=tuple(failed))
        digest = _write_manifests(result, overwrite)
    return ExportResult(**{**result.__dict__, "manifest_sha256": digest})


def _failure(entry: Entry, reason: str) -> ExportFailure:
    return ExportFailure(source=entry.display_path, inode=entry.address, deleted=entry.deleted,
                         reason=reason)


def _prepare(destination: Path, overwrite: bool) -> Path:
    if destination.exists() and not destination.is_dir():
        raise UsageError(f"{destination}: not a folder")
    try:
        destination.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DestinationError(f"{destination}: cannot create the folder "
                               f"({exc.strerror or exc})", path=destination) from exc
    root = destination.resolve()
    for name in (MANIFEST_JSON, MANIFEST_CSV):
        if (root / name).exists() and not overwrite:
            raise OutputExistsError(root / name)
    return root


def _inside(root: Path, target: str) -> Path:
    """``root/target``, refusing anything that would resolve outside ``root``."""
    path = root.joinpath(*target.split("/"))
    real = Path(os.path.realpath(path))
    if real != root and not real.is_relative_to(root):
        raise FileSystemError(f"refusing to write outside {root}: {target}")
    return path


def _make_folder(root: Path, target: str) -> None:
    current = root
    for part in target.split("/"):
        current = current / part
        if current.is_symlink():
            raise FileSystemError(f"refusing to follow a symbolic link in the export: {current}")
        if not current.is_dir():
            current.mkdir()
    _inside(root, target)


def _write_file(fs: FileSystem, job: _Job, root: Path, overwrite: bool,
                advance: Any) -> ExportedFile:
    parent, _, _ = job.target.rpartition("/")
    if parent:
        _make_folder(root, parent)
    path = _inside(root, job.target)
    fn_times = fs.file_name_times(job.entry)
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    flags |= os.O_TRUNC if overwrite else os.O_EXCL
    try:
        fd = os.open(path, flags, 0o644)
    except FileExistsError as exc:
        raise OutputExistsError(path) from exc
    except OSError as exc:
        raise FileSystemError(f"{path}: cannot create ({exc.strerror or exc})") from exc
    hasher = MultiHasher(("md5", "sha256"))
    written = 0
    with os.fdopen(fd, "wb") as out:
        for block in _content(fs, job.entry):
            out.write(block)
            hasher.update(block)
            written += len(block)
            advance(len(block))
    times = job.entry.times
    if times.modified is not None:
        accessed = times.accessed or times.modified
        os.utime(path, (accessed.timestamp(), times.modified.timestamp()), follow_symlinks=False)
    digests = hasher.hexdigests()
    return ExportedFile(
        source=job.entry.display_path, target=job.target, inode=job.entry.address,
        kind=job.entry.kind, deleted=job.entry.deleted, size=written,
        modified=times.modified, accessed=times.accessed, changed=times.changed,
        born=times.born, md5=digests["md5"], sha256=digests["sha256"],
        file_name_times=fn_times)


def _content(fs: FileSystem, entry: Entry) -> Iterator[bytes]:
    """A file's bytes; for a symbolic link its target (TSK reads inline ext4 links as zeros)."""
    if entry.kind == "link" and entry.link is not None:
        yield entry.link.encode("utf-8", "surrogateescape")
        return
    yield from fs.iter_content(entry)


def _iso(value: datetime | None) -> str:
    return value.isoformat() if value is not None else ""


def _file_row(f: ExportedFile) -> dict[str, Any]:
    fn = f.file_name_times
    return {"source": escaped(f.source),
            "source_hex": "" if is_exact(f.source) else raw_bytes(f.source).hex(),
            "target": f.target, "inode": f.inode, "kind": f.kind, "deleted": f.deleted,
            "size": f.size, "modified": _iso(f.modified), "accessed": _iso(f.accessed),
            "changed": _iso(f.changed), "born": _iso(f.born),
            "fn_modified": _iso(fn.modified) if fn else "",
            "fn_accessed": _iso(fn.accessed) if fn else "",
            "fn_changed": _iso(fn.changed) if fn else "",
            "fn_born": _iso(fn.born) if fn else "",
            "md5": f.md5, "sha256": f.sha256}


def manifest_document(result: ExportResult) -> dict[str, Any]:
    """The JSON manifest (schema ``bitwitness.export/1``).

    ``modified``..``born`` are the file system's times (on NTFS: ``$STANDARD_INFORMATION``);
    ``fn_*`` the NTFS ``$FILE_NAME`` times, empty elsewhere. ``failed`` lists what was not
    exported and why; ``complete`` is false when it is not empty.
    """
    return {
        "schema": SCHEMA,
        "tool": {"name": "BitWitness", "version": __version__},
        "host": platform.node(),
        "image": result.image,
        "image_files": list(result.image_files),
        "partition": result.partition,
        "offset_sector": result.offset_sector,
        "filesystem": result.filesystem,
        "destination": str(result.destination),
        "started": _iso(result.started),
        "ended": _iso(result.ended),
        "complete": not result.failed,
        "folders": [escaped(f) for f in result.folders],
        "files": [_file_row(f) for f in result.files],
        "failed": [
            {"source": escaped(f.source),
             "source_hex": "" if is_exact(f.source) else raw_bytes(f.source).hex(),
             "inode": f.inode, "deleted": f.deleted, "reason": escaped(f.reason)}
            for f in result.failed
        ],
    }


def _write_manifests(result: ExportResult, overwrite: bool) -> str:
    """Write manifest.json and manifest.csv; return the SHA-256 of manifest.json."""
    document = manifest_document(result)
    data = (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    mode = "wb" if overwrite else "xb"
    try:
        with result.manifest_json.open(mode) as fh:
            fh.write(data)
        with result.manifest_csv.open(mode.replace("b", ""), newline="",
                                      encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=CSV_FIELDS)
            writer.writeheader()
            for row in document["files"]:
                writer.writerow({k: row[k] for k in CSV_FIELDS})
    except FileExistsError as exc:
        raise OutputExistsError(exc.filename or result.manifest_json) from exc
    return hashlib.sha256(data).hexdigest()


def record_custody(case_dir: Path, result: ExportResult, *, evidence_id: str | None,
                   paths: Iterable[str]) -> Any:
    """Append an ``export`` event to the case's custody log; returns the event."""
    from bitwitness.case import Case

    case = Case.load(case_dir)
    if evidence_id is None:
        evidence_id = evidence_of(case, Path(result.image))
    return case.record("export", evidence_id=evidence_id, details={
        "image": result.image,
        "paths": [escaped(p) for p in paths],
        "partition": result.partition,
        "filesystem": result.filesystem,
        "destination": str(result.destination),
        "files": len(result.files),
        "failed": len(result.failed),
        "bytes": sum(f.size for f in result.files),
        "manifest": str(result.manifest_json),
        "manifest_sha256": result.manifest_sha256,
    })


def evidence_of(case: Any, image: Path) -> str | None:
    """The ID of the case's evidence item whose folder holds ``image``, if any."""
    image = image.resolve()
    for item in case.evidence_items():
        if image.is_relative_to(Path(item.folder).resolve()):
            return str(item.id)
    return None
