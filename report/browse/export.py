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
the export then ends with :class:`~bitwitness.errors.NotRecoveredError` (exit 1). Where the
evidence records a hash of a file's content (a logical evidence file's MD5/SHA-1), the exported
bytes are checked against it: a file whose bytes do not match is written and listed, and also
listed under ``failed`` with both hashes. An entry that never held content (a deleted NTFS
record with no data attribute: the reserved records 16-23 of every volume) loses nothing by
not being exported: it is listed under ``no_content``, and the export does not fail for it.

Both manifests are streamed to disk as the files are written, so that memory stays flat at any
file count: rows are written as their files are (a few at a time), the folders and failures
wait in unnamed temporary files until the file list is closed, and the JSON document ends with
``folders``, ``failed``, ``no_content``, ``ended`` and ``complete`` (false when something
failed or the export was cut short).
The entries to export are walked as they are written, never listed first; only an 8-byte digest
of each target name is kept, to give a second entry wanting the same name ``~ADDRESS``; names
are compared as case-insensitive file systems compare them (``A.txt`` and ``a.txt`` are one
name on exFAT, FAT, NTFS and APFS, where an export or its copy may land).
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import os
import platform
import re
import tempfile
import unicodedata
from array import array
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from json.encoder import encode_basestring
from pathlib import Path
from typing import IO, Any, NamedTuple

from bitwitness import __version__
from bitwitness.errors import (
    BitWitnessError,
    DestinationError,
    FileSystemError,
    OutputExistsError,
    UsageError,
)
from bitwitness.hashing import MultiHasher
from bitwitness.progress import UNREAD, Mediator, NullMediator
from bitwitness.report.browse.doubts import UnreadableSectors, doubts, short_read_note
from bitwitness.report.browse.entries import Entry, Selection, Times, frozen_record
from bitwitness.report.browse.filesystem import NO_DATA_ATTRIBUTE, split_path
from bitwitness.report.browse.interface import BrowsableFileSystem as FileSystem
from bitwitness.report.browse.safenames import (  # escaped: JSON forms import it here
    escaped,
    is_exact,
    raw_bytes,
    safe_name,
    safe_relative,
)

SCHEMA = "bitwitness.export/1"
MANIFEST_JSON = "manifest.json"
MANIFEST_CSV = "manifest.csv"
CSV_FIELDS = ("source", "source_hex", "target", "inode", "kind", "deleted", "size", "modified",
              "accessed", "changed", "born", "fn_modified", "fn_accessed", "fn_changed",
              "fn_born", "md5", "sha256")


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
    """What an export did; ``manifest.json`` holds the files and folders themselves (read back
    on demand through :attr:`files`, :attr:`folders` and :func:`manifest_rows`)."""

    image: str
    image_files: tuple[str, ...]
    partition: int  #: row of ``partitions`` (-1: chosen by --offset outside the table)
    offset_sector: int
    filesystem: str
    destination: Path
    started: datetime
    ended: datetime
    file_count: int
    folder_count: int  #: folders created
    bytes_written: int
    manifest_json: Path
    manifest_csv: Path
    manifest_sha256: str  #: SHA-256 of manifest.json as written
    failed: tuple[ExportFailure, ...] = ()
    #: entries with no content to export, which lose nothing (not failures): a deleted NTFS
    #: record holding no data attribute (filesystem.NO_DATA_ATTRIBUTE)
    no_content: tuple[ExportFailure, ...] = ()
    volume: str | None = None  #: volume-tree path ("0/vss1") of a volume inside the row
    key: str | None = None  #: which kind of key decrypted the volume; never the key itself
    image_state: str | None = None  #: the image's state read when not its current one

    @property
    def files(self) -> tuple[ExportedFile, ...]:
        """The exported files, read back from ``manifest.csv`` (all of them in memory)."""
        return tuple(_exported(row) for row in manifest_rows(self.manifest_csv))

    @property
    def folders(self) -> tuple[str, ...]:
        """The folders created, read back from ``manifest.json`` (all of them in memory)."""
        document = json.loads(self.manifest_json.read_bytes())
        return tuple(document["folders"])


def manifest_rows(manifest_csv: Path) -> Iterator[dict[str, Any]]:
    """The file rows of ``manifest.csv`` one at a time, typed as in ``manifest.json``."""
    with manifest_csv.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            typed: dict[str, Any] = dict(row)
            typed["deleted"] = row["deleted"] == "True"
            typed["size"] = int(row["size"])
            yield typed


def _time(text: str) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _exported(row: dict[str, Any]) -> ExportedFile:
    source = (bytes.fromhex(row["source_hex"]).decode("utf-8", "surrogateescape")
              if row["source_hex"] else row["source"])
    fn = (Times(*(_time(row[f"fn_{k}"]) for k in ("modified", "accessed", "changed", "born")))
          if any(row[f"fn_{k}"] for k in ("modified", "accessed", "changed", "born")) else None)
    return ExportedFile(
        source=source, target=row["target"], inode=row["inode"], kind=row["kind"],
        deleted=row["deleted"], size=row["size"], modified=_time(row["modified"]),
        accessed=_time(row["accessed"]), changed=_time(row["changed"]),
        born=_time(row["born"]), md5=row["md5"], sha256=row["sha256"], file_name_times=fn)


class _Job(NamedTuple):
    """One entry to write and its target. A named tuple: one is made per entry, and a frozen
    dataclass's ``__init__`` cost several times as much."""

    entry: Entry
    target: str  # relative, "/"-separated, already safe


class _Targets:
    """Safe relative targets; a second entry wanting the same target gets ``~ADDRESS`` appended.

    Only an 8-byte digest of each target is kept (in a :class:`_DigestSet`, 8 to 16 bytes a
    target), so that a walk of a million entries costs about 16 MiB rather than the names
    themselves; a digest collision (about one in 10^7 at a million names) only gives a file the
    ``~ADDRESS`` suffix it did not need.
    """

    def __init__(self) -> None:
        self.used = _DigestSet()
        self.add(MANIFEST_JSON)
        self.add(MANIFEST_CSV)

    @staticmethod
    def _key(target: str) -> int:
        """The digest of ``target`` as a case-insensitive, normalizing file system sees it
        (NFC, case folded): evidence from a case-sensitive file system (``A.txt`` beside
        ``a.txt``) exported onto exFAT, FAT, NTFS or APFS, or copied there later, would
        otherwise write two files under one name, the second replacing the first while the
        manifest lists both."""
        folded = (target.lower() if target.isascii()
                  else unicodedata.normalize("NFC", target).casefold())
        digest = hashlib.blake2b(folded.encode("utf-8", "surrogatepass"), digest_size=8)
        return int.from_bytes(digest.digest(), "little")

    def add(self, target: str) -> None:
        self.used.add(self._key(target))

    def claim(self, parent: str, component: str, entry: Entry) -> str:
        target = f"{parent}/{component}" if parent else component
        if not self.used.insert(self._key(target)) and not entry.is_dir:
            target = f"{target}~{safe_name(entry.address)}"
            self.used.insert(self._key(target))
        return target


class _DigestSet:
    """A set of 64-bit digests in one flat array (open addressing, linear probing).

    Why not ``set[int]``: each member there costs about 80 bytes (an int object and its slot),
    78 MiB at a million targets, most of an export's memory; here 8 to 16 bytes. The digests
    are uniform, so their low bits index the table; 0 marks an empty slot (a digest of 0 is
    kept as 1).
    """

    def __init__(self) -> None:
        self._slots = array("Q", bytes(8 * 1024))
        self._mask = 1023
        self._count = 0

    def _slot(self, key: int) -> int:
        slots, mask = self._slots, self._mask
        i = key & mask
        while True:
            value = slots[i]
            if value in (key, 0):
                return i
            i = (i + 1) & mask

    def __contains__(self, key: int) -> bool:
        key = key or 1
        return self._slots[self._slot(key)] == key

    def __len__(self) -> int:
        return self._count

    def add(self, key: int) -> None:
        self.insert(key)

    def insert(self, key: int) -> bool:
        """Add ``key``; False when it was there already (one probe for both answers)."""
        key = key or 1
        slots, mask = self._slots, self._mask
        i = key & mask
        while True:
            value = slots[i]
            if value == key:
                return False
            if value == 0:
                break
            i = (i + 1) & mask
        slots[i] = key
        self._count += 1
        if self._count * 2 > len(self._slots):  # at most half full: probes stay short
            old = self._slots
            self._slots = array("Q", bytes(16 * len(old)))
            self._mask = len(self._slots) - 1
            for value in old:
                if value:
                    self._slots[self._slot(value)] = value
        return True


def plan(fs: FileSystem, paths: Iterable[str | Entry],
         selection: Selection = Selection.ALLOCATED,
         mediator: Mediator | None = None) -> list[_Job]:
    """What to write for ``paths`` (files and whole folders), as a list.

    A path may also be given as the :class:`Entry` a listing returned (the browser does), which
    exports entries whose names no path can spell (``..``, a name holding ``/``). Missing paths
    raise :class:`FileSystemError` now, so a typo never leaves half an export.
    """
    return list(_jobs(fs, _resolve(fs, paths), selection, mediator))


def _resolve(fs: FileSystem, paths: Iterable[str | Entry]) -> list[tuple[Entry, str, str]]:
    """Each given path's entry, top target and the path to walk it by, looked up before
    anything is written. Targets are made of the names as stored, however the path spelled
    them (``a%2Fb`` and ``a/b`` alike give the target ``a%2Fb``)."""
    tops: list[tuple[Entry, str, str]] = []
    for path in paths:
        if isinstance(path, Entry):
            entry = path
            shown_name = f"{entry.name}:{entry.stream}" if entry.stream else entry.name
            top = safe_name(shown_name) if entry.path not in ("", "/") else ""
            tops.append((entry, top, entry.path))
        else:
            entry = fs.lookup(path)
            parts = fs.names(path) if split_path(path) else []
            tops.append((entry, safe_relative(parts) if parts else "", path))
    return tops


def _jobs(fs: FileSystem, tops: list[tuple[Entry, str, str]], selection: Selection,
          mediator: Mediator | None) -> Iterator[_Job]:
    """The jobs for the resolved ``tops``, walked as they are consumed."""
    targets = _Targets()
    for entry, top, path in tops:
        targets.add(top)
        yield _Job(entry, top)
        if entry.is_dir:
            yield from _folder_jobs(fs, entry, top, path, selection=selection, targets=targets,
                                    mediator=mediator)


def _folder_jobs(fs: FileSystem, folder: Entry, top: str, path: str, *, selection: Selection,
                 targets: _Targets, mediator: Mediator | None) -> Iterator[_Job]:
    parents = {folder.path if folder.path != "/" else "": top}
    for entry in fs.walk(path, recursive=True, selection=selection, mediator=mediator):
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
           overwrite: bool = False, mediator: Mediator | None = None,
           unreadable: UnreadableSectors | None = None,
           image_state: str | None = None) -> ExportResult:
    """Export ``paths`` from ``fs`` into ``destination``, streaming the manifests there;
    ``image_state``: the image's state read when not its current one (a QCOW2 internal
    snapshot), recorded in the manifest's head.

    A file whose data lies partly in sectors the acquisition could not read (``unreadable``)
    is exported as the image holds it and also listed as failed, naming those sectors: its
    hashes are of zeros standing in for what could not be read.
    """
    mediator = mediator or NullMediator()
    started = datetime.now(UTC)
    paths = list(paths)
    if not paths:
        raise UsageError("nothing to export: give at least one path")
    tops = _resolve(fs, paths)
    root = _prepare(destination, overwrite)
    files = tuple(str(p) for p in image_files)
    head = {"schema": SCHEMA, "tool": {"name": "BitWitness", "version": __version__},
            "host": platform.node(), "image": str(image),
            "image_files": list(files), "partition": fs.partition.index,
            "volume": fs.partition.volume or str(fs.partition.index), "key": fs.partition.key,
            "offset_sector": fs.partition.start, "filesystem": fs.type,
            "times_note": getattr(fs, "times_note", None),
            "destination": str(root), "started": _iso(started)}
    if image_state is not None:
        head["image_state"] = image_state
    # the total is unknown until the walk ends: counting it first would walk everything twice
    task = mediator.begin(f"exporting to {destination}", None)
    finished = False
    folders = _Folders(root)
    with _ManifestWriter(root, head, overwrite) as manifest:
        walker = _Unread(mediator, manifest)
        try:
            for job in _jobs(fs, tops, selection, walker):
                entry = job.entry
                if entry.is_dir:
                    if job.target:
                        folders.make(job.target)
                        manifest.folder(job.target)
                    continue
                _export_file(fs, job, folders, manifest, overwrite=overwrite,
                             advance=task.advance, unreadable=unreadable)
            finished = True
        finally:
            task.finish()
            ended = datetime.now(UTC)
            digest = manifest.close(ended, complete=finished)
    return ExportResult(
        image=str(image), image_files=files,
        partition=fs.partition.index, offset_sector=fs.partition.start, filesystem=fs.type,
        destination=root, started=started, ended=ended, file_count=manifest.file_count,
        folder_count=manifest.folder_count, bytes_written=manifest.bytes_written,
        manifest_json=root / MANIFEST_JSON, manifest_csv=root / MANIFEST_CSV,
        manifest_sha256=digest, failed=tuple(manifest.failures),
        no_content=tuple(manifest.contentless),
        volume=fs.partition.volume, key=fs.partition.key, image_state=image_state)


def _export_file(fs: FileSystem, job: _Job, folders: _Folders, manifest: _ManifestWriter, *,
                 overwrite: bool, advance: Callable[[int], None],
                 unreadable: UnreadableSectors | None) -> None:
    """Write one file's copy and its manifest row, or list it under ``failed`` (or
    ``no_content``) with the reason."""
    entry = job.entry
    note = fs.content_note(entry)
    if note == NO_DATA_ATTRIBUTE:
        manifest.without_content(_failure(entry, note))
        return
    if note is not None:
        manifest.failure(_failure(entry, note))
        return
    stored = _stored_hashes(fs, entry)
    try:
        written, digests = _write_file(fs, job, folders, overwrite, advance, also=tuple(stored))
    except OutputExistsError:
        raise
    except BitWitnessError as exc:
        manifest.failure(_failure(entry, str(exc)))
        return
    manifest.file(written)
    for reason in _doubts(fs, entry, stored, digests, unreadable, read=written.size):
        manifest.failure(_failure(entry, f"{EXPORTED_BUT}{reason}"))


def _doubts(fs: FileSystem, entry: Entry, stored: dict[str, str], digests: dict[str, str],
            unreadable: UnreadableSectors | None, *, read: int) -> list[str]:
    """Why an exported file's bytes may not be the file's: some lie in sectors the
    acquisition could not read, its clusters are allocated again, the file system gave fewer
    than ``read`` bytes, or a hash differs from the one the evidence file records. (A list, not
    a generator: one is asked for per file.)"""
    found = doubts(fs, entry, unreadable)
    if (short := short_read_note(fs, entry, read)) is not None:
        found.append(short)
    for alg, value in stored.items():
        if digests[alg] != value:
            found.append(f"its {alg.upper()} {digests[alg]} is not the {value} the evidence "
                         f"file records for it")
    return found


class _ManifestWriter:
    """``manifest.json`` and ``manifest.csv``, written a row at a time as files are exported.

    Both files are created (``O_EXCL`` unless ``overwrite``) before the first file is written.
    Folders wait in an unnamed temporary file and failures in memory and in another one, until
    :meth:`close` ends the file list and writes them, then ``ended`` and ``complete``.
    """

    def __init__(self, root: Path, head: dict[str, Any], overwrite: bool) -> None:
        mode = "wb" if overwrite else "xb"
        self._json_path, self._csv_path = root / MANIFEST_JSON, root / MANIFEST_CSV
        try:
            self._json: IO[bytes] = self._json_path.open(mode)
            try:
                self._csv = self._csv_path.open(mode.replace("b", ""), newline="",
                                                encoding="utf-8")
            except BaseException:
                self._json.close()
                raise
        except FileExistsError as exc:
            raise OutputExistsError(exc.filename or self._json_path) from exc
        # rows wait in memory and are written _BATCH at a time: a write per row (both files)
        # cost about as much as making the row
        self._json_rows: list[str] = []
        self._rows_put = 0
        self._csv_lines = _Lines()
        # a plain writer fed in CSV_FIELDS order: DictWriter checks every row for unknown keys
        self._csv_writer = csv.writer(self._csv_lines)
        self._csv_writer.writerow(CSV_FIELDS)
        self._iso = _IsoTimes()
        # closed by __exit__, with the manifests
        self._folders = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115
        self._failed = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115
        self._no_content = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115
        self._sha256 = hashlib.sha256()
        self._closed = False
        self.failures: list[ExportFailure] = []
        self.contentless: list[ExportFailure] = []
        self.file_count = self.folder_count = self.bytes_written = 0
        opening = json.dumps(head, indent=2, ensure_ascii=False)
        self._put(opening[:-2] + ',\n  "files": [')  # the head without its closing "\n}"

    def __enter__(self) -> _ManifestWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        for fh in (self._json, self._csv, self._folders, self._failed, self._no_content):
            fh.close()

    def _put(self, text: str) -> None:
        data = text.encode("utf-8")
        self._sha256.update(data)
        self._json.write(data)

    def file(self, f: ExportedFile) -> None:
        """Add ``f``'s row to both manifests (written out :data:`_BATCH` rows at a time)."""
        values = _file_values(f, self._iso)
        self._json_rows.append(_json_row(values))
        line = _csv_line(values)
        if line is None:
            self._csv_writer.writerow(values)  # into _csv_lines, as the line would have gone
        else:
            self._csv_lines.append(line)
        self.file_count += 1
        self.bytes_written += f.size
        if len(self._json_rows) == _BATCH:
            self._flush_rows()

    def _flush_rows(self) -> None:
        """Write the rows waiting in memory to both manifests."""
        if self._json_rows:
            first = ("\n    " if self._rows_put == 0 else ",\n    ")
            self._put(first + ",\n    ".join(self._json_rows))
            self._rows_put += len(self._json_rows)
            self._json_rows.clear()
        if self._csv_lines:
            self._csv.write("".join(self._csv_lines))
            self._csv_lines.clear()

    def folder(self, target: str) -> None:
        self._folders.write(json.dumps(escaped(target), ensure_ascii=False) + "\n")
        self.folder_count += 1

    def failure(self, f: ExportFailure) -> None:
        self._failed.write(json.dumps(_failure_row(f), ensure_ascii=False) + "\n")
        self.failures.append(f)

    def without_content(self, f: ExportFailure) -> None:
        """An entry with no content to export that loses nothing (not a failure)."""
        self._no_content.write(json.dumps(_failure_row(f), ensure_ascii=False) + "\n")
        self.contentless.append(f)

    def close(self, ended: datetime, *, complete: bool) -> str:
        """End the document; returns the SHA-256 of ``manifest.json``."""
        if self._closed:
            return self._sha256.hexdigest()
        self._closed = True
        self._flush_rows()
        self._put("\n  ]," if self.file_count else "],")
        for key, spool in (("folders", self._folders), ("failed", self._failed),
                           ("no_content", self._no_content)):
            self._put(f'\n  "{key}": [')
            spool.seek(0)
            for n, line in enumerate(spool):
                self._put(("\n    " if n == 0 else ",\n    ") + line.rstrip("\n"))
            self._put("\n  ]," if spool.tell() else "],")
        tail = {"ended": _iso(ended), "complete": complete and not self.failures}
        self._put(json.dumps(tail, indent=2, ensure_ascii=False)[1:] + "\n")
        self._json.flush()
        self._csv.flush()
        return self._sha256.hexdigest()


#: The path a walk's UNREAD notice opens with, before what could not be read (the longest
#: prefix followed by one of the walkers' phrasings).
_UNREAD_AT = re.compile(r"(.*): (?:(?:raw )?directory not readable|entry .* not readable|"
                        r"named streams not readable|deeper than)", re.DOTALL)


class _Unread:
    """The mediator the walk reports to: each part of the evidence it could not read (a folder,
    an entry: level UNREAD) is a failure of the export too, listed under ``failed`` with the
    reason, since the files inside it were not exported; everything goes on to ``mediator``."""

    def __init__(self, mediator: Mediator, manifest: _ManifestWriter) -> None:
        self._mediator = mediator
        self._manifest = manifest

    def begin(self, label: str, total: int | None) -> Any:
        return self._mediator.begin(label, total)

    def notice(self, message: str, *, level: str = "info") -> None:
        if level == UNREAD:
            # "PATH: directory not readable: ..." and the like: a path may hold ": " itself
            found = _UNREAD_AT.match(message)
            where, reason = (found.group(1), message[found.end(1) + 2:]) if found else \
                ("", message)
            self._manifest.failure(ExportFailure(source=where, inode="", deleted=False,
                                                 reason=f"not read, nor what it holds: {reason}"))
        self._mediator.notice(message, level=level)

    def confirm(self, question: str) -> bool:
        return self._mediator.confirm(question)


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


def _make_folder(root: Path, target: str) -> Path:
    current = root
    for part in target.split("/"):
        current = current / part
        if current.is_symlink():
            raise FileSystemError(f"refusing to follow a symbolic link in the export: {current}")
        if not current.is_dir():
            current.mkdir()
    return _inside(root, target)


class _Folders:
    """The folders of one export, each made and checked by :func:`_make_folder` once.

    Why: checking a folder resolves every component of its path (``realpath``); doing that
    for the folder of each file, and again for the file, was a third of an export of many
    small files. The most recent folders checked are remembered (at most :data:`_RECENT`:
    a walk writes a folder's files together, and memory stays flat at any folder count); a
    file goes into a checked folder under a name that can only be a plain entry of it
    (:meth:`file_path`), created with ``O_NOFOLLOW`` and ``O_EXCL``.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self._checked: OrderedDict[str, str] = OrderedDict()
        #: the folder of the last file (target, host path without a trailing ``/``)
        self._last: tuple[str | None, str] = (None, "")

    def make(self, target: str) -> str:
        """Make (or check) folder ``target`` inside the root; returns its host path."""
        path = self._checked.get(target)
        if path is not None:
            self._checked.move_to_end(target)
            return path
        path = str(_make_folder(self.root, target))
        self._checked[target] = path
        if len(self._checked) > _RECENT:
            self._checked.popitem(last=False)
        return path

    def file_path(self, target: str) -> str:
        """The host path of file ``target``: its folder made and checked, its name one plain
        entry of that folder (never empty, ``.``, ``..`` or holding ``/``)."""
        parent, _, name = target.rpartition("/")
        if name in ("", ".", "..") or "\0" in name:
            raise FileSystemError(f"refusing to write outside {self.root}: {target}")
        # a walk writes a folder's files one after another: the last folder, while remembered
        if parent != self._last[0] or (parent and parent not in self._checked):
            folder = self.make(parent) if parent else str(self.root)
            self._last = (parent, folder.rstrip("/"))
        return f"{self._last[1]}/{name}"  # a string: Path objects cost per file


#: Folders an export remembers as checked (see :class:`_Folders`).
_RECENT = 64


def _stored_hashes(fs: FileSystem, entry: Entry) -> dict[str, str]:
    """The hashes the evidence records for a file's content (a logical evidence file's
    ``ha``/``sha``); ``{}`` where the file system records none."""
    stored = getattr(fs, "stored_hashes", None)
    return dict(stored(entry)) if stored is not None else {}


def _write_file(fs: FileSystem, job: _Job, folders: _Folders, overwrite: bool,
                advance: Any, *, also: tuple[str, ...] = ()
                ) -> tuple[ExportedFile, dict[str, str]]:
    """Write one file; the digests include those of ``also`` (to check against stored ones).

    Why it is written out flat: it runs once per file, and an export of many small files
    spends most of its own time (outside the file system's walk and reads) here and in the
    manifest rows."""
    entry, target = job
    path = folders.file_path(target)
    fn_times = fs.file_name_times(entry)
    try:
        fd = os.open(path, _REPLACE if overwrite else _CREATE, 0o644)
    except FileExistsError as exc:
        raise OutputExistsError(Path(path)) from exc
    except OSError as exc:
        raise FileSystemError(f"{path}: cannot create ({exc.strerror or exc})") from exc
    hasher = _fresh_hasher(also)
    update = hasher.update
    written = 0
    holes = False
    times = entry.times
    try:
        for block in _content(fs, entry):
            size = len(block)
            if size >= _HOLE and block == _ZEROS[:size]:
                # a run of zeros (a sparse file's hole) is left a hole in the copy: a 3 TiB
                # sparse file of a small image filled the examiner's disk; same bytes read back
                os.lseek(fd, size, os.SEEK_CUR)
                holes = True
            else:
                done = os.write(fd, block)  # most files are one block, written whole at once
                if done < size:
                    _write_all(fd, memoryview(block)[done:])
            update(block)
            written += size
            advance(size)
        if holes:
            os.ftruncate(fd, written)  # a hole at the end: the size still the file's
        modified = times.modified
        if modified is not None:  # on the descriptor: no second lookup of the path
            accessed = times.accessed or modified
            os.utime(fd, (accessed.timestamp(), modified.timestamp()))
    except BaseException:
        # a file cut short by a read that failed must not stay beside the exported ones as
        # if it were whole (the manifest lists it under "failed" with the reason)
        os.close(fd)
        with contextlib.suppress(OSError):
            Path(path).unlink()
        raise
    os.close(fd)
    digests = hasher.hexdigests()
    return frozen_record(ExportedFile, {
        "source": entry.display_path, "target": target, "inode": entry.address,
        "kind": entry.kind, "deleted": entry.deleted, "size": written,
        "modified": modified, "accessed": times.accessed, "changed": times.changed,
        "born": times.born, "md5": digests["md5"], "sha256": digests["sha256"],
        "file_name_times": fn_times}), digests


#: How a failure row of a file that was exported but whose bytes are in doubt begins (its
#: content may not be the file's: unreadable sectors, blocks allocated again, ciphertext).
EXPORTED_BUT = "exported, but "

#: Blocks of zeros at least this long are left holes in an exported file (see _write_file);
#: iter_content reads 1 MiB blocks, and zeros of the same length compare at memcmp speed.
_HOLE = 64 * 1024
_ZEROS = bytes(1 << 20)

#: ``os.open`` flags of an exported file: a new one, or (``overwrite``) one replaced.
_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
_CREATE = _FLAGS | os.O_EXCL
_REPLACE = _FLAGS | os.O_TRUNC


def _fresh_hasher(also: tuple[str, ...]) -> MultiHasher:
    """A new hasher of MD5, SHA-256 and ``also``, copied from an untouched one kept for
    ``also`` (made once, as ``MultiHasher`` names and checks the algorithms)."""
    blank = _BLANK_HASHERS.get(also)
    if blank is None:
        blank = _BLANK_HASHERS[also] = MultiHasher(dict.fromkeys(("md5", "sha256", *also)))
    return blank.copy()


#: Untouched hashers by the algorithms added to MD5 and SHA-256, copied for each file (never
#: updated themselves)
_BLANK_HASHERS: dict[tuple[str, ...], MultiHasher] = {}


def _write_all(fd: int, data: bytes | memoryview) -> None:
    """``os.write`` until all of ``data`` is written."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _content(fs: FileSystem, entry: Entry) -> Iterable[bytes]:
    """A file's bytes; for a symbolic link its target (TSK reads inline ext4 links as zeros)."""
    if entry.link is not None and entry.kind == "link":
        return (entry.link.encode("utf-8", "surrogateescape"),)
    return fs.iter_content(entry)


def _iso(value: datetime | None) -> str:
    return value.isoformat() if value is not None else ""


def _file_values(f: ExportedFile, iso: _IsoTimes) -> list[Any]:
    """The row of ``f`` in both manifests: its values in :data:`CSV_FIELDS` order, the times
    through ``iso``; ``manifest.json`` has them as an object with those keys."""
    source = f.source
    if is_exact(source):
        shown_source, source_hex = source, ""
    else:
        shown_source, source_hex = escaped(source), raw_bytes(source).hex()
    fn = f.file_name_times
    return [shown_source, source_hex, f.target, f.inode, f.kind, f.deleted, f.size,
            iso(f.modified), iso(f.accessed), iso(f.changed), iso(f.born),
            *((iso(fn.modified), iso(fn.accessed), iso(fn.changed), iso(fn.born)) if fn
              else ("", "", "", "")),
            f.md5, f.sha256]


def _json_row(values: list[Any]) -> str:
    """``json.dumps(dict(zip(CSV_FIELDS, values)), ensure_ascii=False)`` for ``values``
    (:func:`_file_values`), byte for byte. Why by hand: ``json.dumps`` of the row's dict was
    the largest cost of the manifests. Strings go through the encoder ``json.dumps`` uses,
    except the times (``isoformat``: digits, ``-``, ``:``, ``.``, ``T``, ``+``), the hex
    digests and ``source_hex``, none of which holds a character JSON escapes."""
    deleted, size = values[5], values[6]
    return (f'{{"source": {_json_str(values[0])}, "source_hex": "{values[1]}", '
            f'"target": {_json_str(values[2])}, "inode": {_json_str(values[3])}, '
            f'"kind": {_json_str(values[4])}, '
            f'"deleted": {_JSON_BOOL[deleted] if type(deleted) is bool else json.dumps(deleted)}, '
            f'"size": {size if type(size) is int else json.dumps(size)}, '
            f'"modified": "{values[7]}", "accessed": "{values[8]}", '
            f'"changed": "{values[9]}", "born": "{values[10]}", '
            f'"fn_modified": "{values[11]}", "fn_accessed": "{values[12]}", '
            f'"fn_changed": "{values[13]}", "fn_born": "{values[14]}", '
            f'"md5": "{values[15]}", "sha256": "{values[16]}"}}')


_JSON_BOOL = {True: "true", False: "false"}


def _csv_line(values: list[Any]) -> str | None:
    """The line ``csv.writer`` writes for ``values`` (:func:`_file_values`) when no field
    needs quoting, else None (the caller lets ``csv.writer`` write it). Why by hand: the
    writer was the largest cost of a manifest row. Only the names, the address and the kind
    can hold a character the writer quotes (the times, digests and hex cannot); a row whose
    fields are not the usual types is left to the writer too."""
    source, target, inode, kind = values[0], values[2], values[3], values[4]
    if (type(values[5]) is not bool or type(values[6]) is not int
            or _CSV_QUOTED.search(f"{source}{target}{inode}{kind}") is not None):
        return None
    return (f"{source},{values[1]},{target},{inode},{kind},{values[5]},{values[6]},"
            f"{values[7]},{values[8]},{values[9]},{values[10]},{values[11]},{values[12]},"
            f"{values[13]},{values[14]},{values[15]},{values[16]}\r\n")


#: Characters after which a row is left to ``csv.writer``: those it quotes (the delimiter,
#: the quote, line ends) and, to stay on the safe side, every other control character.
_CSV_QUOTED = re.compile('[\x00-\x1f\x7f",]')


def _json_str(value: Any) -> str:
    return encode_basestring(value) if type(value) is str else json.dumps(value,
                                                                         ensure_ascii=False)


class _IsoTimes:
    """``_iso`` with the strings of recent UTC times kept: neighbouring files share times
    (one copy, one second), and ``isoformat`` was a tenth of a manifest row.

    Only times in :data:`~datetime.UTC` are kept: equal times in other zones would print
    differently. At most :data:`_ISO_KEPT` strings are kept (then all are dropped).
    """

    def __init__(self) -> None:
        self._kept: dict[datetime, str] = {}

    def __call__(self, value: datetime | None) -> str:
        if value is None:
            return ""
        if value.tzinfo is not UTC:
            return value.isoformat()
        text = self._kept.get(value)
        if text is None:
            if len(self._kept) >= _ISO_KEPT:
                self._kept.clear()
            text = self._kept[value] = value.isoformat()
        return text


_ISO_KEPT = 4096
#: Manifest rows kept in memory before they are written (see :meth:`_ManifestWriter.file`):
#: enough to make a write per row rare, few enough to keep memory flat (about 20 KiB).
_BATCH = 16


class _Lines(list[str]):
    """The lines a :func:`csv.writer` writes, kept in a list (``write`` is ``append``)."""

    write = list.append


def _failure_row(f: ExportFailure) -> dict[str, Any]:
    return {"source": escaped(f.source),
            "source_hex": "" if is_exact(f.source) else raw_bytes(f.source).hex(),
            "inode": f.inode, "deleted": f.deleted, "reason": escaped(f.reason)}


def manifest_document(result: ExportResult) -> dict[str, Any]:
    """The JSON manifest (schema ``bitwitness.export/1``), read back from ``manifest.json``
    (all of it in memory: for a caller that wants the whole document).

    ``modified``..``born`` are the file system's times (on NTFS: ``$STANDARD_INFORMATION``);
    ``fn_*`` the NTFS ``$FILE_NAME`` times, empty elsewhere. ``failed`` lists what was not
    exported and why; ``complete`` is false when it is not empty or the export was cut short.
    ``no_content`` lists the entries that hold no content to export and lose nothing by it (a
    deleted NTFS record with no data attribute), which leave ``complete`` true.
    """
    document: dict[str, Any] = json.loads(result.manifest_json.read_bytes())
    return document


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
        "volume": result.volume or str(result.partition),
        "key": result.key,
        "filesystem": result.filesystem,
        "destination": str(result.destination),
        "files": result.file_count,
        "failed": len(result.failed),
        "no_content": len(result.no_content),
        "bytes": result.bytes_written,
        "manifest": str(result.manifest_json),
        "manifest_sha256": result.manifest_sha256,
        **({"image_state": result.image_state} if result.image_state else {}),
    })


def evidence_of(case: Any, image: Path) -> str | None:
    """The ID of the case's evidence item whose folder holds ``image``, if any."""
    image = image.resolve()
    for item in case.evidence_items():
        if image.is_relative_to(Path(item.folder).resolve()):
            return str(item.id)
    return None
