"""The ZIP volume of an AFF4 image: its members, read with bounds, nothing outside the file.

An AFF4 volume is a ZIP (Zip64) file. Python's :mod:`zipfile` reads its central directory;
every member is then addressed only by its name inside the ZIP, never as a path on disk. The
file is opened once through :func:`bitwitness.evidence_io.open_readonly` (read-only, the access
time kept) and every read is checked against the real file and member sizes first.

Members stored without ZIP compression (how AFF4 writers store bevies) are read in place by
``pread`` at the member's data offset, found from its local header; a member the ZIP itself
compresses is read through :mod:`zipfile`'s seekable member reader, a range at a time.
"""

from __future__ import annotations

import lzma
import os
import struct
import threading
import zipfile
import zlib
from pathlib import Path
from urllib.parse import unquote

from bitwitness.errors import CorruptImageError, UnsupportedFormatError
from bitwitness.evidence_io import check_span, open_readonly, pread_checked

_LOCAL = struct.Struct("<4s22sHH")  #: signature, fixed fields, name length, extra length
_LOCAL_MAGIC = b"PK\x03\x04"
_ENCRYPTED = 0x1
#: What reading a damaged member through zipfile can raise: its own errors, and those of the
#: member's codec (deflate's zlib.error, LZMA's, bzip2's OSError/EOFError).
_MEMBER_ERRORS = (zipfile.BadZipFile, ValueError, EOFError, OSError, NotImplementedError,
                  RuntimeError, struct.error, zlib.error, lzma.LZMAError)


class ZipVolume:
    """The members of one AFF4 ZIP volume, by name, read within their real sizes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = open_readonly(path)
        self._lock = threading.Lock()
        self._data_at: dict[str, int] = {}
        try:
            self.file_size = os.fstat(self._fd).st_size
            self._file = os.fdopen(self._fd, "rb", closefd=False)
            try:
                self._zip = zipfile.ZipFile(self._file)
            except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, OSError,
                    struct.error, OverflowError, NotImplementedError) as exc:
                raise CorruptImageError(f"AFF4 volume: not a readable ZIP file ({exc})",
                                        path=path) from exc
        except BaseException:
            os.close(self._fd)
            raise
        self.members: dict[str, zipfile.ZipInfo] = {}
        for info in self._zip.infolist():
            self.members.setdefault(unquote(info.filename).lstrip("/"), info)
        self.comment = self._zip.comment

    def find(self, name: str) -> zipfile.ZipInfo | None:
        """The member called ``name`` (compared after URL-unescaping, as AFF4 stores names)."""
        return self.members.get(unquote(name).lstrip("/"))

    def read_member(self, info: zipfile.ZipInfo, limit: int, what: str) -> bytes:
        """A whole small member (metadata, an index, a map), refused above ``limit`` bytes."""
        self._check(info, what)
        if info.file_size > limit:
            raise CorruptImageError(f"AFF4 {what} ({info.filename!r}) declares {info.file_size} "
                                    f"bytes, more than the {limit} such a member may hold",
                                    path=self.path, offset=info.header_offset)
        if info.compress_type == zipfile.ZIP_STORED:
            return self.read_range(info, 0, info.file_size, what)
        try:
            with self._lock, self._zip.open(info) as member:
                data = member.read(limit + 1)
        except _MEMBER_ERRORS as exc:
            raise CorruptImageError(f"AFF4 {what} ({info.filename!r}) cannot be read ({exc})",
                                    path=self.path, offset=info.header_offset) from exc
        if len(data) != info.file_size:
            raise CorruptImageError(f"AFF4 {what} ({info.filename!r}) holds {len(data)} bytes, "
                                    f"not the {info.file_size} its directory entry declares",
                                    path=self.path, offset=info.header_offset)
        return data

    def read_range(self, info: zipfile.ZipInfo, offset: int, length: int, what: str) -> bytes:
        """``length`` bytes at ``offset`` inside the member, checked against its size."""
        if offset < 0 or length < 0 or offset + length > info.file_size:
            raise CorruptImageError(f"AFF4 {what}: bytes {offset}+{length} lie outside member "
                                    f"{info.filename!r} of {info.file_size} bytes",
                                    path=self.path, offset=info.header_offset)
        if info.compress_type == zipfile.ZIP_STORED:
            start = self._stored_data_at(info, what)
            return pread_checked(self._fd, start + offset, length, self.file_size,
                                 path=self.path, what=f"AFF4 {what}")
        self._check(info, what)
        try:
            with self._lock, self._zip.open(info) as member:
                member.seek(offset)
                data = member.read(length)
        except _MEMBER_ERRORS as exc:
            raise CorruptImageError(f"AFF4 {what} ({info.filename!r}) cannot be read ({exc})",
                                    path=self.path, offset=info.header_offset) from exc
        if len(data) != length:
            raise CorruptImageError(f"AFF4 {what} ({info.filename!r}) is truncated",
                                    path=self.path, offset=info.header_offset)
        return data

    def _check(self, info: zipfile.ZipInfo, what: str) -> None:
        if info.flag_bits & _ENCRYPTED:
            raise UnsupportedFormatError(f"{self.path}: AFF4 {what} ({info.filename!r}) is an "
                                         "encrypted ZIP member, which BitWitness does not read")
        check_span(info.header_offset, _LOCAL.size + info.compress_size, self.file_size,
                   path=self.path, what=f"AFF4 {what} ({info.filename!r})")

    def _stored_data_at(self, info: zipfile.ZipInfo, what: str) -> int:
        """Where a stored member's bytes begin: after its local header, name and extra field."""
        cached = self._data_at.get(info.filename)
        if cached is not None:
            return cached
        self._check(info, what)
        if info.compress_size != info.file_size:
            raise CorruptImageError(f"AFF4 {what} ({info.filename!r}): a stored member of "
                                    f"{info.file_size} bytes occupies {info.compress_size}",
                                    path=self.path, offset=info.header_offset)
        head = pread_checked(self._fd, info.header_offset, _LOCAL.size, self.file_size,
                             path=self.path, what=f"local header of {info.filename!r}")
        magic, _fixed, name_len, extra_len = _LOCAL.unpack(head)
        if magic != _LOCAL_MAGIC:
            raise CorruptImageError(f"AFF4 volume: no local header for member "
                                    f"{info.filename!r}", path=self.path,
                                    offset=info.header_offset)
        start = info.header_offset + _LOCAL.size + name_len + extra_len
        check_span(start, info.file_size, self.file_size, path=self.path,
                   what=f"AFF4 {what} ({info.filename!r})")
        self._data_at[info.filename] = start
        return start

    def close(self) -> None:
        self._zip.close()
        self._file.close()
        os.close(self._fd)
