"""Timelines of a file system: a TSK bodyfile for ``mactime``, or a sorted CSV of events.

The bodyfile is the TSK 3+ format (``MD5|name|inode|mode|UID|GID|size|atime|mtime|ctime|crtime``)
written line for line as ``fls -r -m /`` writes it, deleted entries included, so that the lines
can be checked against TSK's and fed to ``mactime``: on NTFS that includes the
``name ($FILE_NAME)`` row of every entry, with the ``$FILE_NAME`` times (read from the attribute
itself, as pytsk3 does not hand them out).

The CSV has one row per (time, entry), the MACB letters saying which times fell there, sorted by
time, times in UTC ISO-8601: the same events ``mactime -d`` prints, in a form a spreadsheet reads,
with the partition row and file system of each entry. Several file systems of one image go into
one timeline: in the bodyfile each path then starts with ``p5-ext4`` (partition 5, ext4), as
``fls -m p5-ext4`` would write it. Names keep their bytes in the bodyfile (as ``fls`` writes them)
and show them as ``ls`` does in the CSV (``^`` for control characters, ``\\xNN`` for bytes that
are not UTF-8), so a CSV printed on a terminal cannot drive it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

from bitwitness.progress import Mediator
from bitwitness.report.browse.entries import Entry, Selection
from bitwitness.report.browse.interface import BrowsableFileSystem as FileSystem
from bitwitness.report.browse.safenames import shown

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
CSV_FIELDS = ("time", "macb", "size", "mode", "uid", "gid", "inode", "path", "deleted",
              "partition", "filesystem")


@dataclass(frozen=True)
class TimelineEvent:
    """One moment at which one entry's M, A, C and/or B time falls."""

    time: datetime
    macb: str  #: "m...", ".a..", "macb", ... as mactime prints it
    entry: Entry
    partition: int = 0  #: row of ``partitions`` the entry's file system lies in
    filesystem: str = ""
    volume: str = ""  #: volume-tree path of a volume inside the row ("0/vss1"), else ""


def mode_string(entry: Entry) -> str:
    """``r/rrw-r--r--`` as ``fls -m`` prints it: name type, meta type, permissions."""
    return _mode_string(entry.name_type, entry.meta_type, entry.mode)


@lru_cache(maxsize=4096)
def _mode_string(name_type: str, meta_type: str, mode: int) -> str:
    """Cached: a file system holds few distinct (types, mode) triples, and a timeline asks for
    one per entry."""
    chars = []
    for shift, special, lower, upper in ((6, 0o4000, "s", "S"), (3, 0o2000, "s", "S"),
                                         (0, 0o1000, "t", "T")):
        bits = (mode >> shift) & 0o7
        chars.append("r" if bits & 4 else "-")
        chars.append("w" if bits & 2 else "-")
        if mode & special:
            chars.append(lower if bits & 1 else upper)
        else:
            chars.append("x" if bits & 1 else "-")
    return f"{name_type}/{meta_type}{''.join(chars)}"


#: C0 control characters to ``^``, as TSK writes them in a bodyfile (``str.translate`` table).
_CONTROL_AS_CARET = dict.fromkeys(range(0x20), "^")


def body_line(entry: Entry, mount: str = "") -> str:
    """One bodyfile line for ``entry``; ``mount`` prefixes every path (``fls -m`` argument)."""
    name = f"{mount}{entry.display_path}" if mount != "/" else entry.display_path
    if entry.is_file_name_row:
        name += " ($FILE_NAME)"
    if entry.link:
        name += f" -> {entry.link}"
    if entry.deleted:
        name += " (deleted-realloc)" if entry.realloc else " (deleted)"
    if not name.isprintable():  # no control character in most names: translate() skipped
        name = name.translate(_CONTROL_AS_CARET)  # as TSK: one line per entry
    modified, accessed, changed, born = entry.times.epoch_seconds()
    mode = _mode_string(entry.name_type, entry.meta_type, entry.mode)
    return (f"0|{name}|{entry.address}|{mode}|{entry.uid}|{entry.gid}|"
            f"{entry.size}|{accessed}|{modified}|{changed}|{born}")


def bodyfile(fs: FileSystem, *, mount: str = "/", selection: Selection = Selection.ALL,
             mediator: Mediator | None = None) -> Iterator[str]:
    """Bodyfile lines (without newlines) for every entry of ``fs``, walked as ``fls -r``."""
    for entry in fs.walk("/", recursive=True, selection=selection, mediator=mediator,
                         file_names=True):
        yield body_line(entry, mount)


def mount_name(fs: FileSystem) -> str:
    """``p5-ext4``: the prefix naming one file system's paths in a whole-image bodyfile
    (``p0-vss1-ntfs`` for a volume inside row 0)."""
    where = (fs.partition.volume or str(fs.partition.index)).replace("/", "-")
    return f"p{where}-{fs.type}"


def image_bodyfile(filesystems: list[FileSystem], *, selection: Selection = Selection.ALL,
                   mediator: Mediator | None = None) -> Iterator[str]:
    """Bodyfile lines of several file systems; each path starts with :func:`mount_name`
    (what ``fls -m p5-ext4 -o START`` writes for that file system)."""
    for fs in filesystems:
        yield from bodyfile(fs, mount=mount_name(fs), selection=selection, mediator=mediator)


def events(fs: FileSystem, *, selection: Selection = Selection.ALL,
           mediator: Mediator | None = None) -> list[TimelineEvent]:
    """Every MACB event of ``fs``, sorted by time then path (entries without times drop out)."""
    return image_events([fs], selection=selection, mediator=mediator)


def image_events(filesystems: list[FileSystem], *, selection: Selection = Selection.ALL,
                 mediator: Mediator | None = None) -> list[TimelineEvent]:
    """Every MACB event of several file systems in one sorted timeline."""
    found: list[TimelineEvent] = []
    for fs in filesystems:
        found.extend(_events_of(fs, selection=selection, mediator=mediator))
    found.sort(key=lambda e: (e.time, e.partition, e.volume, e.entry.display_path,
                              e.entry.address))
    return found


def _events_of(fs: FileSystem, *, selection: Selection,
               mediator: Mediator | None) -> Iterator[TimelineEvent]:
    for entry in fs.walk("/", recursive=True, selection=selection, mediator=mediator,
                         file_names=True):
        t = entry.times
        stamps: dict[datetime, set[str]] = {}
        for letter, value in zip("macb", (t.modified, t.accessed, t.changed, t.born),
                                 strict=True):
            if value is not None:
                stamps.setdefault(value.replace(microsecond=0), set()).add(letter)
        for when, letters in stamps.items():
            macb = "".join(c if c in letters else "." for c in "macb")
            yield TimelineEvent(when, macb, entry, fs.partition.index, fs.type,
                                fs.partition.volume or "")


def csv_row(event: TimelineEvent) -> dict[str, str]:
    entry = event.entry
    return {"time": event.time.isoformat(), "macb": event.macb, "size": str(entry.size),
            "mode": mode_string(entry), "uid": str(entry.uid), "gid": str(entry.gid),
            "inode": entry.address,
            "path": shown(entry.display_path) + (" ($FILE_NAME)" if entry.is_file_name_row
                                                   else ""),
            "deleted": "yes" if entry.deleted else "no",
            "partition": event.volume or str(event.partition), "filesystem": event.filesystem}
