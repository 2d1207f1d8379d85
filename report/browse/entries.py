"""What browsing returns: directory entries and file metadata, as frozen records.

The fields follow The Sleuth Kit's model, because agreement with ``fls``/``istat`` is how a
listing is checked: a *name* (the directory entry, which may be deleted) points to a *meta*
(inode / MFT record, which may since have been reused), and on NTFS one file has several
*attributes* (``$DATA`` streams, ``$INDEX_ROOT``), each listed on its own like ``fls`` does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, TypeVar

#: TSK name types (TSK_FS_NAME_TYPE_*) as fls prints them.
NAME_TYPES = ("-", "p", "c", "d", "b", "r", "l", "s", "h", "w", "v", "V")
#: TSK meta types (TSK_FS_META_TYPE_*) as fls prints them.
META_TYPES = ("-", "r", "d", "p", "c", "b", "l", "s", "h", "w", "v", "V")

#: What each name-type letter names. TSK's two alphabets differ on two letters: a name's "s" is a
#: socket and "h" a shadow entry, an inode's "s" a shadow inode and "h" a socket (``fls`` prints
#: a socket as ``s/h``); read with the name's meaning, every socket was called a shadow.
_KINDS = {"r": "file", "d": "directory", "l": "link", "p": "fifo", "c": "char-device",
          "b": "block-device", "s": "socket", "h": "shadow", "w": "whiteout",
          "v": "virtual", "V": "virtual-directory"}
_META_KINDS = {**_KINDS, "s": "shadow", "h": "socket"}


class Selection(StrEnum):
    """Which directory entries a listing returns (as ``fls -u``, ``fls -d``, plain ``fls``)."""

    ALLOCATED = "allocated"
    DELETED = "deleted"
    ALL = "all"

    def wants(self, deleted: bool) -> bool:
        if self is Selection.ALL:
            return True
        return deleted is (self is Selection.DELETED)


@dataclass(frozen=True, eq=False)
class Times:
    """MACB times in UTC; None where the file system does not record one (or it is zero).

    Equality and hashing are by the four times, whatever the subclass (see
    :meth:`from_meta`).
    """

    modified: datetime | None
    accessed: datetime | None
    changed: datetime | None  #: inode/MFT change time
    born: datetime | None  #: creation time

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Times):
            return NotImplemented
        return (self.modified, self.accessed, self.changed, self.born) == (
            other.modified, other.accessed, other.changed, other.born)

    def __hash__(self) -> int:
        return hash((self.modified, self.accessed, self.changed, self.born))

    def epoch_seconds(self) -> tuple[int, int, int, int]:
        """Whole seconds since 1970 of (modified, accessed, changed, born), 0 for a missing
        time; floored (0.5 s before 1970 is -1, as ext's signed seconds give it)."""
        return (_seconds(self.modified), _seconds(self.accessed), _seconds(self.changed),
                _seconds(self.born))

    def complete(self) -> bool:
        """Whether all four times are recorded (none is None)."""
        return None not in (self.modified, self.accessed, self.changed, self.born)

    @staticmethod
    def from_meta(meta: Any) -> Times:
        """The times of a TSK meta (``TSK_FS_META``): 32-bit seconds and nanoseconds.

        Why lazily: a listing makes one per entry and most listings (``ls``, a bodyfile) never
        show a datetime; turning four integers into four datetimes was a third of ``ls -r``.
        The integers are kept and the datetimes made when a time is first read."""
        return _TskTimes.holding((meta.mtime, meta.mtime_nano, meta.atime, meta.atime_nano,
                                  meta.ctime, meta.ctime_nano, meta.crtime, meta.crtime_nano))

    @staticmethod
    def of_tsk(raw: tuple[int | None, ...]) -> Times:
        """:meth:`from_meta` of the eight integers (mtime, mtime_nano, atime, atime_nano,
        ctime, ctime_nano, crtime, crtime_nano) a listing record holds, as one tuple (a slice
        of the record: no arguments unpacked and packed again, once per entry)."""
        return _TskTimes.holding(raw)


_TIME_FIELDS = ("modified", "accessed", "changed", "born")


class LazyTimes(Times):
    """:class:`Times` kept as the integers a file system stores, the datetimes made on first
    read: equal to, hashed and shown as the plain ``Times`` of the same times. Subclasses say
    how the integers read (:meth:`_made`), and answer :meth:`complete` and
    :meth:`epoch_seconds` from them without making a datetime."""

    @classmethod
    def of(cls, *raw: int | None) -> Times:
        return cls.holding(raw)

    @classmethod
    def holding(cls, raw: tuple[int | None, ...]) -> Times:
        """The times of the integers ``raw`` (the tuple itself is kept)."""
        record = object.__new__(cls)
        object.__setattr__(record, "__dict__", {"_raw": raw})
        return record

    @staticmethod
    def _made(raw: tuple[int | None, ...]) -> tuple[datetime | None, ...]:
        """The four times (Times order) of ``raw``."""
        raise NotImplementedError

    def __getattr__(self, name: str) -> Any:
        # only for names not yet in __dict__: the four times before their first read
        if name not in _TIME_FIELDS:
            raise AttributeError(name)
        fields = self.__dict__
        raw = fields.pop("_raw")  # from here on the instance holds its fields, as Times does
        fields.update(zip(_TIME_FIELDS, self._made(raw), strict=True))
        return fields[name]

    def __repr__(self) -> str:
        return repr(Times(self.modified, self.accessed, self.changed, self.born))


class _TskTimes(LazyTimes):
    """:class:`LazyTimes` as TSK gives them: seconds, nanoseconds, in Times order."""

    @staticmethod
    def _made(raw: tuple[int | None, ...]) -> tuple[datetime | None, ...]:
        return tuple(_tsk_time(raw[n], raw[n + 1]) for n in range(0, 8, 2))

    def complete(self) -> bool:
        raw = self.__dict__.get("_raw")
        if raw is None:
            return super().complete()
        # as _tsk_time reads the seconds; written out, not a generator (asked once an NTFS entry)
        m, _, a, _, c, _, b, _ = raw
        return bool(int(m or 0) & 0xFFFFFFFF and int(a or 0) & 0xFFFFFFFF
                    and int(c or 0) & 0xFFFFFFFF and int(b or 0) & 0xFFFFFFFF)

    def epoch_seconds(self) -> tuple[int, int, int, int]:
        raw = self.__dict__.get("_raw")
        if raw is None:  # read already, or made by dataclasses.replace: the times themselves
            return super().epoch_seconds()
        # Written out per time (a bodyfile asks once per line): 32-bit seconds, and where there
        # are any, the microseconds _tsk_time adds carry into them past 10^9 ns.
        m, m_ns, a, a_ns, c, c_ns, b, b_ns = raw
        m, a, c, b = (int(m or 0) & 0xFFFFFFFF, int(a or 0) & 0xFFFFFFFF,
                      int(c or 0) & 0xFFFFFFFF, int(b or 0) & 0xFFFFFFFF)
        return (m and m + int(m_ns or 0) // 1_000_000_000,
                a and a + int(a_ns or 0) // 1_000_000_000,
                c and c + int(c_ns or 0) // 1_000_000_000,
                b and b + int(b_ns or 0) // 1_000_000_000)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SECOND = timedelta(seconds=1)
_R = TypeVar("_R")


def _seconds(value: datetime | None) -> int:
    return (value - _EPOCH) // _SECOND if value is not None else 0


def frozen_record(cls: type[_R], fields: dict[str, Any]) -> _R:
    """An instance of the frozen dataclass ``cls`` holding exactly ``fields`` (every field, by
    name), equal to ``cls(**fields)``.

    Why: a frozen dataclass's ``__init__`` sets each field through ``object.__setattr__``, which
    made building an :class:`Entry` (17 fields) a tenth of the time of ``ls -r`` on a large file
    system; giving the instance its ``__dict__`` at once costs a quarter of that. Callers pass
    every field (tests check that the result equals the ``__init__``-built one).
    """
    record = object.__new__(cls)
    object.__setattr__(record, "__dict__", fields)
    return record


def _tsk_time(seconds: int | None, nano: int | None) -> datetime | None:
    """A TSK time in UTC; None for zero. Why not ``datetime.fromtimestamp``: a listing converts
    four times an entry, and adding a ``timedelta`` to the epoch costs half as much."""
    seconds = int(seconds or 0) & 0xFFFFFFFF  # TSK's 32-bit seconds
    if seconds == 0:
        return None
    return _EPOCH + timedelta(0, seconds, int(nano or 0) // 1000)


NO_TIMES = Times(None, None, None, None)

#: The special bits and where ``ls`` (and TSK) show them: (bit, position, with x, without x)
_SPECIAL = ((0o4000, 2, "s", "S"), (0o2000, 5, "s", "S"), (0o1000, 8, "t", "T"))


def permissions(mode: int) -> str:
    """``rwsr-xr-t`` for a mode's permission bits, as ``ls -l`` and ``istat`` show them:
    set-user-ID, set-group-ID and sticky take the place of the x they go with."""
    letters = [c if mode & (1 << (8 - i)) else "-" for i, c in enumerate("rwxrwxrwx")]
    for bit, at, with_x, without_x in _SPECIAL:
        if mode & bit:
            letters[at] = with_x if letters[at] == "x" else without_x
    return "".join(letters)


@dataclass(frozen=True)
class Entry:
    """One directory entry, or one stream of it on NTFS (``fls`` prints one line per stream)."""

    path: str  #: absolute path of the name inside the file system ("/home/ana/notes.txt")
    name: str
    inode: int  #: meta address the name points to
    attr_type: int | None  #: NTFS attribute type (128 $DATA, 144 $INDEX_ROOT); None elsewhere
    attr_id: int | None
    stream: str | None  #: the stream's name when it is not the file's main one ("Zone.Identifier")
    name_type: str  #: TSK letter of the directory entry's type ("r", "d", "l", "V", ...)
    meta_type: str  #: TSK letter of the inode's type ("-" when there is no inode)
    deleted: bool  #: the directory entry is unallocated
    realloc: bool  #: deleted name whose inode has been reused by another file
    size: int
    times: Times
    mode: int = 0  #: permission bits of the inode (0 without inode)
    uid: int = 0
    gid: int = 0
    link: str | None = None  #: target of a symbolic link
    #: NTFS ``$FILE_NAME`` times (the attribute TSK takes them from); None elsewhere or unread
    file_name_times: Times | None = None
    #: an NTFS ``$DATA`` stream of a folder's inode: ``meta_type`` is ``r`` as ``fls`` lists it,
    #: while the bodyfile's mode shows the inode's own type (``d``), as ``fls -m`` writes it
    folder_stream: bool = False

    @property
    def is_file_name_row(self) -> bool:
        """The ``name ($FILE_NAME)`` row of ``fls -m`` (its times are the $FILE_NAME ones)."""
        return self.attr_type == 48

    @property
    def kind(self) -> str:
        """"file", "directory", "link", "virtual-directory", ... ("unknown" without inode)."""
        if self.meta_type != "-":
            return _META_KINDS.get(self.meta_type, "unknown")
        return _KINDS.get(self.name_type, "unknown")

    @property
    def is_dir(self) -> bool:
        return self.meta_type in ("d", "V") and self.stream is None

    @property
    def address(self) -> str:
        """``15``, or on NTFS ``8-128-1`` (inode-type-id), the form ``icat`` accepts."""
        if self.attr_type is None:
            return str(self.inode)
        return f"{self.inode}-{self.attr_type}-{self.attr_id}"

    @property
    def display_path(self) -> str:
        """The path with its stream, as ``fls -p`` names it (``/$Secure:$SDS``)."""
        return f"{self.path}:{self.stream}" if self.stream else self.path


def make_entry(*, path: str, name: str, inode: int, attr_type: int | None, attr_id: int | None,
               stream: str | None, name_type: str, meta_type: str, deleted: bool,
               realloc: bool, size: int, times: Times, mode: int, uid: int, gid: int,
               link: str | None, file_name_times: Times | None = None,
               folder_stream: bool = False) -> Entry:
    """``Entry(...)`` with every field given, built as :func:`frozen_record` builds it: what the
    listings use, once per entry."""
    return frozen_record(Entry, {
        "path": path, "name": name, "inode": inode, "attr_type": attr_type, "attr_id": attr_id,
        "stream": stream, "name_type": name_type, "meta_type": meta_type, "deleted": deleted,
        "realloc": realloc, "size": size, "times": times, "mode": mode, "uid": uid, "gid": gid,
        "link": link, "file_name_times": file_name_times, "folder_stream": folder_stream})


@dataclass(frozen=True)
class Attribute:
    """One attribute of a file (on NTFS: $STANDARD_INFORMATION, $FILE_NAME, $DATA, ...)."""

    type: int
    id: int
    name: str | None
    size: int
    resident: bool
    #: (first block, blocks) of a non-resident attribute; first block None for a sparse run
    runs: tuple[tuple[int | None, int], ...] = ()


@dataclass(frozen=True)
class FileStat:
    """Everything ``stat`` reports about one file."""

    entry: Entry
    filesystem: str
    allocated: bool  #: the inode itself is allocated
    mode: str  #: "rwxr-xr-x" style permissions
    uid: int
    gid: int
    links: int
    attributes: tuple[Attribute, ...]
    #: NTFS: $STANDARD_INFORMATION times (the entry's own times) and each $FILE_NAME's
    standard_information: Times | None = None
    file_names: tuple[tuple[str, Times], ...] = ()
    note: str | None = None  #: why the content may not be this file's (deleted, reused inode)
    #: ext2/3/4: the inode's deletion time (``i_dtime``), as istat's "Deleted" shows it
    deleted_time: datetime | None = None
    #: HFS+: the catalog record's backup date, as istat's "Backed Up" shows it
    backup_time: datetime | None = None
    #: FAT: the 8.3 name of the entry (case flags applied, code page 437), beside its long name
    short_name: str | None = None
    #: NTFS: how the data is stored where it is not as on the disk (WOF compression, wof.py)
    stored: str | None = None
    #: a character or block device's (major, minor), where the file system records it (Rock
    #: Ridge PN)
    device: tuple[int, int] | None = None
    #: UDF: the zone each time was recorded in, ("modified", "+01:00") ... in Times order, the
    #: times themselves being UTC ("unspecified" where the writer left the zone out)
    time_zones: tuple[tuple[str, str], ...] = ()
