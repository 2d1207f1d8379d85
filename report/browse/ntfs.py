"""NTFS attributes that The Sleuth Kit reads but pytsk3 does not hand out: the times.

``$STANDARD_INFORMATION`` (type 16) and ``$FILE_NAME`` (type 48) are resident attributes whose
bytes pytsk3 reads like any stream. Their layouts (all little-endian FILETIMEs, 100 ns since
1601-01-01 UTC): ``$STANDARD_INFORMATION`` holds creation, modification, MFT change and access
at offsets 0, 8, 16, 24; ``$FILE_NAME`` holds the parent reference at 0, then the same four
times at 8, 16, 24, 32, the name length (UTF-16 units) at 64, the namespace at 65 (2 = the DOS
8.3 alias) and the name from 66.

Windows updates ``$STANDARD_INFORMATION`` on every change and lets programs set it; the
``$FILE_NAME`` times change only when the name does. Showing both is how timestomping shows.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from bitwitness.report.browse.entries import LazyTimes, Times, frozen_record

ATTR_STANDARD_INFORMATION = 16
ATTR_FILE_NAME = 48
NAMESPACE_DOS = 2
_EPOCH_1601 = 116444736000000000  # 100 ns intervals between 1601-01-01 and 1970-01-01


def nt_time(value: int) -> datetime | None:
    """A FILETIME as UTC (to the microsecond), as recorded: any instant from 1601 to 9999;
    None when unset (0) or past what a datetime holds.

    The Sleuth Kit keeps 32-bit seconds since 1970 and shows a time before 1970 as 2033 and
    one after 2106 as 2063 (istat, and fls in bodyfiles); this read them as unset before
    1970 (a back-dated file's times vanished from stat and timelines) and wrapped the later
    ones as TSK does. Bodyfiles hold the true seconds too (negative before 1970), which
    ``mactime`` reads as the instants they are.
    """
    if not 0 < value <= _FILETIME_MAX:
        return None
    return _EPOCH_1601_UTC + timedelta(microseconds=value // 10)  # one addition: listings make many


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_1601_UTC = datetime(1601, 1, 1, tzinfo=UTC)
#: The last FILETIME a datetime holds (9999-12-31 23:59:59.9999999).
_FILETIME_MAX = (datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
                 - _EPOCH_1601_UTC) // timedelta(microseconds=1) * 10 + 9


def _nt_seconds(value: int) -> int:
    """``nt_time(value)`` as whole seconds since 1970 (floored: negative before 1970), 0 for
    None (its microseconds never carry into the seconds)."""
    return (value - _EPOCH_1601) // 10_000_000 if 0 < value <= _FILETIME_MAX else 0


class _NtTimes(LazyTimes):
    """:class:`LazyTimes` of four FILETIMEs in Times order (:func:`nt_time` each).

    Why lazily: a timeline reads a ``$FILE_NAME`` of every NTFS file and prints only its
    seconds; making four datetimes of each was a sixth of ``timeline``'s time."""

    @staticmethod
    def _made(raw: tuple[int | None, ...]) -> tuple[datetime | None, ...]:
        return tuple(nt_time(int(value or 0)) for value in raw)

    def complete(self) -> bool:
        raw = self.__dict__.get("_raw")
        if raw is None:
            return super().complete()
        return all(0 < int(value or 0) <= _FILETIME_MAX for value in raw)

    def epoch_seconds(self) -> tuple[int, int, int, int]:
        raw = self.__dict__.get("_raw")
        if raw is None:  # read already, or made by dataclasses.replace: the times themselves
            return super().epoch_seconds()
        m, a, c, b = raw
        return (_nt_seconds(int(m or 0)), _nt_seconds(int(a or 0)), _nt_seconds(int(c or 0)),
                _nt_seconds(int(b or 0)))


def _times(data: bytes, at: int) -> Times:
    crtime, mtime, ctime, atime = struct.unpack_from("<4Q", data, at)
    return _NtTimes.of(mtime, atime, ctime, crtime)


def standard_information_times(data: bytes) -> Times | None:
    """MACB of a ``$STANDARD_INFORMATION`` attribute's bytes (None when too short)."""
    if len(data) < 32:
        return None
    return _times(data, 0)


@dataclass(frozen=True)
class FileName:
    """One ``$FILE_NAME`` attribute."""

    attr_id: int
    size: int  #: the attribute's size, as ``fls -m`` prints it on the ``($FILE_NAME)`` row
    parent: int  #: MFT entry of the parent folder
    namespace: int
    name: str
    times: Times


def wtf8_name(units: bytes) -> str:
    """A UTF-16LE name as our names are held (UTF-8, bytes that are not UTF-8 kept as surrogate
    escapes), losing nothing: NTFS and FAT accept any 16-bit units, lone surrogate halves too
    (a way to hide a file from tools), and such a half is kept as its WTF-8 bytes (ED A0 80 for
    U+D800), so that it shows as ``\xed\xa0\x80`` and exports under a name that maps back to
    it, where a decoding with replacement characters would make two names one."""
    return units.decode("utf-16-le", "surrogatepass").encode(
        "utf-8", "surrogatepass").decode("utf-8", "surrogateescape")


def parse_file_name(attr_id: int, data: bytes) -> FileName | None:
    """A ``$FILE_NAME`` attribute's bytes; None when they are too short to hold one."""
    if len(data) < 66:
        return None
    parent = int.from_bytes(data[0:6], "little")
    length, namespace = data[64], data[65]
    units = data[66 : 66 + 2 * length]
    # a name its attribute's bytes cut short (a damaged or crafted record): its whole units
    name = wtf8_name(units[: len(units) - len(units) % 2])
    return frozen_record(FileName, {"attr_id": attr_id, "size": len(data), "parent": parent,
                                    "namespace": namespace, "name": name,
                                    "times": _times(data, 8)})


class TimelineName(NamedTuple):
    """What a timeline takes of the ``$FILE_NAME`` :func:`timeline_file_name_of` chooses."""

    attr_id: int
    size: int  #: the attribute's size, as ``fls -m`` prints it on the ``($FILE_NAME)`` row
    times: Times


def timeline_file_name_of(held: Iterable[tuple[int, bytes]]) -> TimelineName | None:
    """The ``$FILE_NAME`` whose times TSK keeps, of those given as ``(id, bytes)``: the last
    one that is not a DOS alias. Its name is not decoded (a timeline asks once an NTFS file,
    and shows no name of a ``$FILE_NAME``). Those too short to hold one are left out, as
    :func:`parse_file_name` leaves them."""
    chosen = None
    for attr_id, data in held:
        if len(data) >= 66 and data[65] != NAMESPACE_DOS:
            chosen = (attr_id, data)
    if chosen is None:
        return None
    attr_id, data = chosen
    return TimelineName(attr_id, len(data), _times(data, 8))
