"""EnCase 7 Ex01 and Lx01 (EWF version 2) read by our own code: the independent second reader of
what libewf (pyewf) reads first.

Layout (little-endian): each segment file (``x.Ex01``, ``x.Ex02``, ... ``x.Ex99``, ``x.ExAA``
...) starts with a 32-byte header (``EVF2\\r\\n\\x81\\x00``, version, compression method at 10:
1 zlib, 2 bzip2; segment number at 12; the set's GUID at 16). Sections follow, each its data then
a 64-byte descriptor (type, data flags: 2 encrypted; the file offset of the previous section's
descriptor, 0 for none; data size; descriptor size; padding size; an MD5; an Adler-32 of the
first 60 bytes at 60), read back to front from the file's end. Device information (type 1) and
case data (2) are compressed UTF-16 object strings ("1", "main", a tab-separated line of tags,
one of values): ``ts`` sectors, ``bp`` bytes per sector, ``sb`` sectors per chunk. A sector
table (4): a 20-byte header (first chunk number, entry count, Adler-32 at 16), 12 bytes of
padding, 16-byte entries (chunk file offset or fill pattern, stored size, flags: 1 compressed,
2 followed by an Adler-32, 4 pattern fill when compressed), an Adler-32 of the entries. MD5 (8)
and SHA-1 (9) sections hold the media hashes with an Adler-32. ``next`` (13) and ``done`` (15)
end a segment.

An Lx01 (``LEF2\\r\\n\\x81\\x00``, a logical evidence file) stores its files' bytes end to end as
chunks the same way, padded to a whole sector (``ts`` counts the padded sectors). Its media, as
libewf defines it, is the byte count the file list records: the ``tb`` value of the ``rec``
category at the head of the single files data section (0x20, a UTF-16LE text); the stored MD5 and
SHA-1 cover those bytes. Checked with pyewf: an ``rec`` ``tb`` 100 bytes short gives a media 100
bytes short.

Every size is checked against the file before it is read; a chunk decodes to at most the chunk
size; an encrypted set is refused by name.
"""

from __future__ import annotations

import bz2
import os
import struct
import threading
import zlib
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from bitwitness.errors import CorruptImageError, MissingSegmentError, UnsupportedFormatError
from bitwitness.evidence_io import check_span, open_readonly
from bitwitness.images.raw import read_exact
from bitwitness.stream import ImageStream, StreamInfo

MAGIC = b"EVF2\r\n\x81\x00"
LOGICAL_MAGIC = b"LEF2\r\n\x81\x00"
DESCRIPTOR = 64
DEVICE_INFORMATION, CASE_DATA, SECTOR_TABLE, MD5_HASH, SHA1_HASH = 1, 2, 4, 8, 9
NEXT, DONE = 13, 15
SINGLE_FILES_DATA = 0x20
#: The head of the single files data read for its ``rec`` category (which comes first).
MAX_RECORD_HEAD = 64 << 10
COMPRESSED, CHECKSUMMED, PATTERN_FILL = 1, 2, 4
ENCRYPTED = 2
#: Bounds a hostile set cannot pass: sections per segment, object string size, chunk size.
MAX_SECTIONS = 1 << 20
MAX_OBJECT = 1 << 20
MAX_CHUNK = 64 << 20
_CACHE = 16


def segment_name(first: Path, number: int) -> Path:
    """The ``number``-th segment of the set whose first segment is ``first`` (``.Ex01``)."""
    stem, suffix = first.with_suffix(""), first.suffix
    letter = suffix[1] if len(suffix) == 5 else "E"
    if number <= 99:
        tail = f"x{number:02d}"
    else:
        k = number - 100
        tail = f"{chr(ord('x') + k // 676)}{chr(65 + k // 26 % 26)}{chr(65 + k % 26)}"
    return stem.with_name(f"{stem.name}.{letter}{tail}")


@dataclass(frozen=True)
class _Entry:
    segment: int
    offset: int  #: file offset, or the fill pattern
    size: int
    flags: int


def _object(data: bytes, method: int, path: Path) -> dict[str, str]:
    """The ``main`` object of a compressed UTF-16 object string, as {tag: value}."""
    try:
        raw = (bz2.BZ2Decompressor().decompress(data, MAX_OBJECT) if method == 2
               else zlib.decompressobj().decompress(data, MAX_OBJECT))
    except (zlib.error, OSError, ValueError) as exc:
        raise CorruptImageError(f"an object string does not decompress ({exc})",
                                path=path) from exc
    encoding = "utf-16-be" if raw.startswith(b"\xfe\xff") else "utf-16-le"
    text = raw[2:].decode(encoding, "replace") if raw[:2] in (b"\xff\xfe", b"\xfe\xff") \
        else raw.decode("utf-16-le", "replace")
    lines = text.split("\n")
    if len(lines) < 4:
        raise CorruptImageError("an object string without tags and values", path=path)
    return dict(zip(lines[2].split("\t"), lines[3].split("\t"), strict=False))


def _sections(fd: int, path: Path, size: int) -> list[tuple[int, int, int]]:
    """(type, data offset, data size) of every section of a segment, in file order, found by
    walking the descriptors back from the end (each checked: Adler-32, not encrypted, data and
    the previous descriptor before it, after the file header)."""
    sections: list[tuple[int, int, int]] = []
    at = size - DESCRIPTOR
    while at > 0:
        if len(sections) >= MAX_SECTIONS:
            raise CorruptImageError("too many sections", path=path)
        check_span(at, DESCRIPTOR, size, path=path, what="EWF2 section descriptor")
        desc = read_exact(fd, at, DESCRIPTOR, path)
        if struct.unpack_from("<I", desc, 60)[0] != zlib.adler32(desc[:60]):
            raise CorruptImageError("section descriptor fails its Adler-32", path=path,
                                    offset=at)
        kind, flags, previous, data_size = struct.unpack_from("<IIQQ", desc)
        if flags & ENCRYPTED:
            raise UnsupportedFormatError(f"{path}: encrypted Ex01, which BitWitness does not "
                                         "read")
        if data_size > at - 32 or (previous and previous >= at):
            raise CorruptImageError("section data or chain runs backwards past the file",
                                    path=path, offset=at)
        sections.append((kind, at - data_size, data_size))
        at = previous if previous else 0
    return sections[::-1]


class Ewf2Stream(ImageStream):
    """An Ex01 set read by our own code."""

    def __init__(self, first: Path) -> None:
        self.first = first
        self.logical = False  #: an Lx01: the media is the files' bytes the file list counts
        self._record_head: bytes | None = None
        self._fds: list[int] = []
        self._paths: list[Path] = []
        self._entries: dict[int, _Entry] = {}
        self.stored_hashes: dict[str, str] = {}
        self._values: dict[str, str] = {}
        self._chunk_cache: OrderedDict[int, bytes] = OrderedDict()
        self._lock = threading.Lock()
        try:
            self._load()
        except BaseException:
            for fd in self._fds:
                os.close(fd)
            self._unmade()
            raise
        super().__init__(self._media, sector_size=self._sector)
        self.alignment = 1

    def _load(self) -> None:
        number, done = 1, False
        while not done:
            path = self.first if number == 1 else segment_name(self.first, number)
            if not path.is_file():
                raise MissingSegmentError(f"{path}: segment {number} of the Ex01 set is "
                                          "missing")
            done = self._segment(path, number)
            number += 1
        try:
            self._sector = int(self._values.get("bp") or 512)
            sectors = int(self._values["ts"])
            self._chunk = int(self._values["sb"]) * self._sector
        except (KeyError, ValueError) as exc:
            raise CorruptImageError(f"the device information or case data lacks {exc}",
                                    path=self.first) from exc
        if not 0 < self._chunk <= MAX_CHUNK or self._sector not in (512, 1024, 2048, 4096):
            raise CorruptImageError(f"implausible geometry: {self._chunk}-byte chunks of "
                                    f"{self._sector}-byte sectors", path=self.first)
        self._media = self._padded = sectors * self._sector
        if self.logical:
            self._media = self._recorded_bytes(self._media)
        needed = -(-self._media // self._chunk)
        missing = next((c for c in range(needed) if c not in self._entries), None)
        if missing is not None:
            raise CorruptImageError(f"no sector table locates chunk {missing}", path=self.first)

    def _recorded_bytes(self, padded: int) -> int:
        """An Lx01's media size: ``rec``'s ``tb`` in its file list, at most the ``padded``
        bytes its chunks hold (``ts`` sectors)."""
        if self._record_head is None:
            raise CorruptImageError("an Lx01 without a file list (single files data section)",
                                    path=self.first)
        text = self._record_head.decode("utf-16-le", "replace").lstrip("\ufeff")
        lines = [line.rstrip("\r") for line in text.split("\n")]
        try:
            at = lines.index("rec")
            tags, values = lines[at + 1].split("\t"), lines[at + 2].split("\t")
            recorded = int(values[tags.index("tb")])
        except (ValueError, IndexError) as exc:
            raise CorruptImageError("the Lx01 file list records no media size (rec tb)",
                                    path=self.first) from exc
        if not 0 <= recorded <= padded:
            raise CorruptImageError(f"the Lx01 file list records {recorded} bytes of files but "
                                    f"its chunks hold {padded}", path=self.first)
        return recorded

    def _file_header(self, head: bytes, number: int, path: Path) -> int:
        """Check segment ``number``'s 32-byte file header; its compression method."""
        if len(head) < 32 or not head.startswith((MAGIC, LOGICAL_MAGIC)):
            raise CorruptImageError("no EWF2 file header", path=path)
        if number == 1:
            self.logical = head.startswith(LOGICAL_MAGIC)
        elif self.logical != head.startswith(LOGICAL_MAGIC):
            raise CorruptImageError("segments of an Ex01 and an Lx01 in one set", path=path)
        method, segment = struct.unpack_from("<HI", head, 10)
        if segment != number:
            raise CorruptImageError(f"file header says segment {segment}, expected {number}",
                                    path=path)
        self._method = method
        return int(method)

    def _segment(self, path: Path, number: int) -> bool:
        """Read one segment's sections; True when it is the last (``done``)."""
        fd = open_readonly(path)
        self._fds.append(fd)
        self._paths.append(path)
        index = len(self._fds) - 1
        size = os.fstat(fd).st_size
        method = self._file_header(read_exact(fd, 0, min(32, size), path), number, path)
        sections = _sections(fd, path, size)
        if not sections or sections[-1][0] not in (NEXT, DONE):
            raise CorruptImageError("segment ends with neither 'next' nor 'done'", path=path)
        for kind, start, length in sections:
            if kind in (DEVICE_INFORMATION, CASE_DATA):
                self._values.update(_object(read_exact(fd, start, min(length, MAX_OBJECT),
                                                       path), method, path))
            elif kind == SECTOR_TABLE:
                self._table(fd, index, path, start, length)
            elif kind == SINGLE_FILES_DATA and self.logical and self._record_head is None:
                self._record_head = read_exact(fd, start, min(length, MAX_RECORD_HEAD), path)
            elif kind in (MD5_HASH, SHA1_HASH):
                n = 16 if kind == MD5_HASH else 20
                value = read_exact(fd, start, n + 4, path)
                if struct.unpack_from("<I", value, n)[0] == zlib.adler32(value[:n]):
                    self.stored_hashes["md5" if kind == MD5_HASH else "sha1"] = value[:n].hex()
        return sections[-1][0] == DONE

    def _table(self, fd: int, index: int, path: Path, start: int, length: int) -> None:
        header = read_exact(fd, start, 20, path)
        first, count = struct.unpack_from("<QI", header)
        if struct.unpack_from("<I", header, 16)[0] != zlib.adler32(header[:16]):
            raise CorruptImageError("sector table header fails its Adler-32", path=path,
                                    offset=start)
        if 32 + 16 * count + 4 > length:
            raise CorruptImageError(f"sector table of {count} entries in {length} bytes",
                                    path=path, offset=start)
        body = read_exact(fd, start + 32, 16 * count + 4, path)
        if struct.unpack_from("<I", body, 16 * count)[0] != zlib.adler32(body[:16 * count]):
            raise CorruptImageError("sector table entries fail their Adler-32", path=path,
                                    offset=start + 32)
        for i in range(count):
            offset, size, flags = struct.unpack_from("<QII", body, 16 * i)
            self._entries[first + i] = _Entry(index, offset, size, flags)

    def _decoded(self, chunk: int) -> bytes:
        with self._lock:
            cached = self._chunk_cache.get(chunk)
            if cached is not None:
                return cached
        entry = self._entries[chunk]
        want = min(self._chunk, self._media - chunk * self._chunk)
        hold = min(self._chunk, self._padded - chunk * self._chunk)  # an Lx01's padding too
        fd, path = self._fds[entry.segment], self._paths[entry.segment]
        where = chunk * self._chunk
        if entry.flags & COMPRESSED and entry.flags & PATTERN_FILL:
            data = (struct.pack("<Q", entry.offset) * (want // 8 + 1))[:want]
        else:
            check_span(entry.offset, entry.size, os.fstat(fd).st_size, path=path,
                       what=f"EWF2 chunk {chunk}")
            stored = read_exact(fd, entry.offset, entry.size, path)
            if entry.flags & COMPRESSED:
                data = self._inflate(stored, hold, chunk, path)[:want]
            else:
                data = stored[:-4] if entry.flags & CHECKSUMMED else stored
                if entry.flags & CHECKSUMMED and \
                        struct.unpack("<I", stored[-4:])[0] != zlib.adler32(data):
                    raise CorruptImageError(f"chunk {chunk} fails its Adler-32", path=path,
                                            media_offset=where)
                data = data[:want]
        if len(data) != want:
            raise CorruptImageError(f"chunk {chunk} holds {len(data)} bytes, not {want}",
                                    path=path, media_offset=where)
        with self._lock:
            self._chunk_cache[chunk] = data
            while len(self._chunk_cache) > _CACHE:
                self._chunk_cache.popitem(last=False)
        return data

    def _inflate(self, stored: bytes, hold: int, chunk: int, path: Path) -> bytes:
        """A compressed chunk's ``hold`` bytes; the stream must end there, so that zlib checks
        its Adler-32 (a stream cut off at ``hold`` bytes never reaches it) and bzip2 its CRC."""
        where = chunk * self._chunk
        decoder = bz2.BZ2Decompressor() if self._method == 2 else zlib.decompressobj()
        try:
            data = decoder.decompress(stored, hold + 1)
        except (zlib.error, OSError, ValueError) as exc:
            raise CorruptImageError(f"chunk {chunk} does not decompress ({exc})",
                                    path=path, media_offset=where) from exc
        if len(data) != hold or not decoder.eof:
            raise CorruptImageError(f"chunk {chunk} decompresses to {len(data)}"
                                    f"{'+' if len(data) > hold else ''} bytes, not {hold}"
                                    f"{'' if decoder.eof else ' (the stream does not end)'}",
                                    path=path, media_offset=where)
        return data

    def _read_aligned(self, offset: int, length: int) -> bytes:
        parts = []
        while length > 0:
            chunk, inner = divmod(offset, self._chunk)
            data = self._decoded(chunk)
            piece = data[inner:inner + length]
            parts.append(piece)
            offset += len(piece)
            length -= len(piece)
        return b"".join(parts)

    @property
    def info(self) -> StreamInfo:
        return StreamInfo(format="ewf", files=tuple(self._paths), media_size=self.size,
                          sector_size=self.sector_size,
                          details={"reader": "bitwitness (EWF2)", "chunk_size": self._chunk})

    def close(self) -> None:
        if not self.closed:
            for fd in self._fds:
                os.close(fd)
        super().close()


def is_ewf2(path: Path) -> bool:
    """Whether ``path`` starts with an EWF2 signature (Ex01 or Lx01)."""
    from bitwitness.evidence_io import read_head

    return read_head(path, 8) in (MAGIC, LOGICAL_MAGIC)
