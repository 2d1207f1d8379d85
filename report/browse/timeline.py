"""Timelines of a file system: a TSK bodyfile for ``mactime``, or a sorted CSV of events.

The bodyfile is the TSK 3+ format (``MD5|name|inode|mode|UID|GID|size|atime|mtime|ctime|crtime``)
written line for line as ``fls -r -m /`` writes it, deleted entries included, so that the lines
can be checked against TSK's and fed to ``mactime``: on NTFS that includes the
``name ($FILE_NAME)`` row of every entry, with the ``$FILE_NAME`` times (read from the attribute
itself, as pytsk3 does not hand them out).

The CSV has one row per (time, entry), the MACB letters saying which times fell there, sorted by
time, times in UTC ISO-8601 (``+00:00``; FAT's, a wall clock of no known zone, without an offset,
and sorted as if UTC): the same events ``mactime -d`` prints, in a form a spreadsheet reads,
with the partition row and file system of each entry. Several file systems of one image go into
one timeline: in the bodyfile each path then starts with ``p5-ext4`` (partition 5, ext4), as
``fls -m p5-ext4`` would write it. Names keep their bytes in the bodyfile as ``fls`` writes them
(control characters as ``^``), but for ``|`` and a ``%`` before two hex digits, which mactime
would split on or decode: those are written in mactime's own ``%XX`` (:func:`for_mactime`). The
CSV shows names as ``ls`` does (``^`` for control characters, ``\\xNN`` for bytes that are not
UTF-8), so a CSV printed on a terminal cannot drive it. That spelling is lossy (``a<TAB>b`` and
``a^b`` both read ``a^b``; the byte 0xFF and the four characters ``\\xff`` both read ``\\xff``),
so the CSV's ``path_hex`` column holds the exact bytes of every path it does not show exactly,
as the export manifest's ``source_hex`` does.
"""

from __future__ import annotations

import heapq
import pickle
import re
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import lru_cache
from typing import IO

from bitwitness.progress import Mediator
from bitwitness.report.browse.entries import Entry, Selection
from bitwitness.report.browse.interface import BrowsableFileSystem as FileSystem
from bitwitness.report.browse.safenames import raw_bytes, shown

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: ``path_hex``: the hex of the bytes ``path`` stands for, "" when ``path`` shows them exactly.
CSV_FIELDS = ("time", "macb", "size", "mode", "uid", "gid", "inode", "path", "path_hex",
              "deleted", "partition", "filesystem")


def mode_string(entry: Entry) -> str:
    """``r/rrw-r--r--`` as ``fls -m`` prints it: name type, meta type, permissions.

    The meta type is the inode's own, also for a folder's NTFS stream (listed as ``r``)."""
    meta_type = "d" if entry.folder_stream else entry.meta_type
    return _mode_string(entry.name_type, meta_type, entry.mode)


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


#: A ``%`` that mactime would decode: it is followed by two hexadecimal digits (either case).
_DECODED_BY_MACTIME = re.compile("%(?=[0-9A-Fa-f]{2})")


def for_mactime(name: str) -> str:
    """``name`` as mactime reads it back: ``|`` as ``%7C``, a ``%`` before two hex digits as
    ``%25``; every other character as it is.

    Why: mactime (``tm_split``) splits a line on ``|`` and then decodes each ``%XX`` in every
    field. ``fls -m`` writes both as they are, so a name holding ``|`` shifts the row's fields
    (mactime drops the row, or shows times, size and inode forged by the name) and a name
    holding ``%7C`` or ``%41`` is shown as ``|`` or ``A``. Escaping with mactime's own ``%XX``
    makes it show each name as ``fls`` spells it (``p|q`` is written ``p%7Cq``, the name
    ``p%7Cq`` is written ``p%257Cq``); names holding neither stay as ``fls`` writes them. An
    escape of our own (``\\x7c``) was shown as it is, the same as a name holding those four
    characters. Only the ``^`` of control characters (TSK's, kept) still shows two names alike.
    """
    return _DECODED_BY_MACTIME.sub("%25", name).replace("|", "%7C")


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
    if "|" in name or "%" in name:  # what mactime splits on or decodes: see for_mactime
        name = for_mactime(name)
    modified, accessed, changed, born = entry.times.epoch_seconds()
    mode = _mode_string(entry.name_type, "d" if entry.folder_stream else entry.meta_type,
                        entry.mode)  # mode_string(entry), without the call
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


#: Events sorted in memory at most at once; beyond that, sorted runs of this many go to
#: temporary files and are merged (about 40 MiB of rows).
SPILL_EVENTS = 50_000
#: Rows read back per run at a time while merging (runs x this many rows held).
_MERGE_ROWS = 256

#: An event's sort key (time, partition row, volume, path, address, walk order) and its row.
_Keyed = tuple[tuple[datetime, int, str, str, str, int], tuple[str, ...]]


def csv_rows(filesystems: list[FileSystem], *, selection: Selection = Selection.ALL,
             mediator: Mediator | None = None,
             spill: int = SPILL_EVENTS) -> Iterator[tuple[str, ...]]:
    """The CSV rows (:data:`CSV_FIELDS`) of every MACB event of ``filesystems``, sorted by
    time, partition row, volume, path and address (ties in walk order); entries without
    times drop out.

    Why in runs: a drive of a million files has four million events, gigabytes as objects,
    and ``mactime`` holds them all. Here at most ``spill`` rows are sorted in memory; each
    sorted run goes to an anonymous temporary file (``TMPDIR``) and the runs are merged, so
    memory stays flat and the order is the one sort of all events would give."""
    runs: list[IO[bytes]] = []
    try:
        held: list[_Keyed] = []
        for keyed in _keyed_rows(filesystems, selection=selection, mediator=mediator):
            held.append(keyed)
            if len(held) >= spill:
                held.sort(key=_key)
                runs.append(_spilled(held))
                held = []
        held.sort(key=_key)
        if not runs:
            yield from (row for _, row in held)
            return
        runs.append(_spilled(held))
        del held
        for _, row in heapq.merge(*(_read_run(run) for run in runs), key=_key):
            yield row
    finally:
        for run in runs:
            run.close()


def _key(keyed: _Keyed) -> tuple[datetime, int, str, str, str, int]:
    return keyed[0]


def _spilled(held: list[_Keyed]) -> IO[bytes]:
    """``held`` (sorted) written to a new anonymous temporary file, read back by
    :func:`_read_run`; pickle, because the file is ours alone (unlinked, mode 0600) and a row
    holds surrogate-escaped names that text encodings refuse."""
    run = tempfile.TemporaryFile(prefix="bitwitness-timeline-")  # noqa: SIM115 - caller closes
    for at in range(0, len(held), _MERGE_ROWS):
        pickle.dump(held[at:at + _MERGE_ROWS], run, protocol=pickle.HIGHEST_PROTOCOL)
    run.seek(0)
    return run


def _read_run(run: IO[bytes]) -> Iterator[_Keyed]:
    while True:
        try:
            part: list[_Keyed] = pickle.load(run)  # noqa: S301 - our own temporary file
        except EOFError:
            return
        yield from part


def path_hex(path: str, printed: str) -> str:
    """The CSV's ``path_hex``: the stored bytes of ``path`` in hex, or "" when ``printed`` (its
    ``path`` column) is ``path`` itself.

    Why only then: most paths print as they are, and an empty column says so; where ``shown``
    replaced a character, two different files can print alike (``a<TAB>b`` and ``a^b``) and only
    the bytes tell them apart. A reader takes ``bytes.fromhex(path_hex)`` when it is set, else
    ``path`` in UTF-8."""
    return "" if printed == path else raw_bytes(path).hex()


def _keyed_rows(filesystems: list[FileSystem], *, selection: Selection,
                mediator: Mediator | None) -> Iterator[_Keyed]:
    order = 0
    for fs in filesystems:
        row = fs.partition.index
        volume = fs.partition.volume or ""
        where = volume or str(row)
        # FAT's times are a wall clock of no known zone: written without an offset, as ISO 8601
        # writes a local time, where every other file system's carry +00:00
        zoneless = getattr(fs, "times_note", None) is not None
        for entry in fs.walk("/", recursive=True, selection=selection, mediator=mediator,
                             file_names=True):
            t = entry.times
            stamps: dict[datetime, set[str]] = {}
            for letter, value in zip("macb", (t.modified, t.accessed, t.changed, t.born),
                                     strict=True):
                if value is not None:
                    stamps.setdefault(value.replace(microsecond=0), set()).add(letter)
            if not stamps:
                continue
            path, address = entry.display_path, entry.address
            mark = " ($FILE_NAME)" if entry.is_file_name_row else ""
            printed = shown(path)
            tail = (str(entry.size), mode_string(entry), str(entry.uid), str(entry.gid),
                    address, printed + mark, path_hex(path + mark, printed + mark),
                    "yes" if entry.deleted else "no", where, fs.type)
            for when, letters in stamps.items():
                macb = "".join(c if c in letters else "." for c in "macb")
                shown_time = (when.replace(tzinfo=None) if zoneless else when).isoformat()
                yield (when, row, volume, path, address, order), (shown_time, macb, *tail)
                order += 1
