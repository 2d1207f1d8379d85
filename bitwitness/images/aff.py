"""AFF (the Advanced Forensic Format of afflib, files starting ``AFF10``): our own reader.

An AFF file is the 8-byte header ``AFF10\\r\\n\\0`` followed by segments. A segment is ``AFF\\0``,
the name length, the data length and a 32-bit argument (big-endian), the name, the data, then
``ATT\\0`` and the segment's total length. The media is stored in pages named ``page0``,
``page1``... (``seg0``... in early files) of ``pagesize`` bytes (the segment's argument); a page's
argument says how its data is stored: bit 0 set means compressed, with the algorithm in bits
4-7 (0: zlib, 2: LZMA, 3: all zeros, the data then being the 32-bit page length); clear means
the bytes as they are. ``imagesize`` holds the media size as two big-endian 32-bit words, low
first. ``md5``, ``sha1`` and ``sha256`` hold the hashes recorded at acquisition; they are the
stored hashes ``verify`` compares. A page never written reads as zeros.

Encrypted (AFE) and signed-only variants, the AFD folder and AFM split formats are refused by
name. ``affcat`` (afflib's own reader) is the independent second reader.
"""

from __future__ import annotations

import lzma
import os
import re
import shutil
import struct
import subprocess
import tempfile
import threading
import zlib
from pathlib import Path

from bitwitness.errors import CorruptImageError, UnsupportedFormatError
from bitwitness.evidence_io import MAX_OFFSET, copies_for
from bitwitness.images.filestream import FileImageStream
from bitwitness.images.raw import read_exact
from bitwitness.stream import ImageStream, StreamInfo

MAGIC = b"AFF10\r\n\x00"
_SEGMENT = struct.Struct(">4sIII")
_TAIL = struct.Struct(">4sI")
_COMPRESSED, _ALG_MASK = 0x1, 0xF0
_ZLIB, _LZMA, _ZERO = 0x00, 0x20, 0x30
#: Largest page a file may declare (afflib's and aimage's default is 16 MiB): a compressed page
#: is decoded whole, and LZMA packs 64 MiB of zeros in a few KiB.
_MAX_PAGE = 64 << 20
_MAX_NAME = 1024
_MAX_SEGMENTS = 1 << 22
_HASHES = {"md5": 16, "sha1": 20, "sha256": 32}
_PAGE_NUMBER = re.compile(r"[0-9]{1,20}")
#: A page number whose page would start past 2^63 bytes even with the smallest pages.
_MAX_PAGE_NUMBER = MAX_OFFSET // 512


class AffStream(FileImageStream):
    """The media of one AFF file, read by our own code."""

    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()
        self._pages: dict[int, tuple[int, int, int]] = {}  #: page -> (offset, length, arg)
        self.stored_hashes: dict[str, str] = {}
        self._values: dict[str, int] = {}
        self._last: tuple[int, bytes] | None = None  #: the last page decoded
        super().__init__(path)

    def _load(self) -> int:
        self._scan()
        self.sector_size = self._values.get("sectorsize", 512) or 512
        # any range is read (a page in pieces): aligning reads to a page would allocate a
        # whole page, up to _MAX_PAGE, for every read however small
        self.alignment = 1
        return self._media

    def _scan(self) -> None:
        size = os.fstat(self._fd).st_size
        if read_exact(self._fd, 0, len(MAGIC), self.path) != MAGIC:
            raise CorruptImageError("no AFF header", path=self.path)
        pos, count = len(MAGIC), 0
        while pos + _SEGMENT.size <= size:
            magic, name_len, data_len, arg = _SEGMENT.unpack(
                read_exact(self._fd, pos, _SEGMENT.size, self.path))
            if magic != b"AFF\x00":
                raise CorruptImageError(f"no segment header at file offset {pos}", path=self.path)
            end = pos + _SEGMENT.size + name_len + data_len + _TAIL.size
            if name_len > _MAX_NAME or end > size:
                raise CorruptImageError(f"the segment at file offset {pos} runs past the end "
                                        "of the file", path=self.path)
            name = read_exact(self._fd, pos + _SEGMENT.size, name_len, self.path).decode(
                "latin-1")
            data_at = pos + _SEGMENT.size + name_len
            self._segment(name, data_at, data_len, arg)
            pos, count = end, count + 1
            if count > _MAX_SEGMENTS:
                raise CorruptImageError("implausibly many segments", path=self.path)
        self._finish()

    def _segment(self, name: str, offset: int, length: int, arg: int) -> None:
        if name.startswith(("affkey", "aes256")):
            raise UnsupportedFormatError(f"{self.path}: encrypted AFF image (AFE), which "
                                         "BitWitness does not read")
        number = name[4:] if name.startswith("page") else name[3:] if name.startswith(
            "seg") else None
        # ASCII digits only: a name read as latin-1 may hold "²", which str.isdigit accepts
        # and int() refuses.
        if number is not None and _PAGE_NUMBER.fullmatch(number):
            page = int(number)
            if page > _MAX_PAGE_NUMBER:
                raise CorruptImageError(f"segment {name[:40]!r} names page {page}, beyond any "
                                        "possible disk", path=self.path, offset=offset)
            self._pages[page] = (offset, length, arg)
        elif name in ("pagesize", "segsize", "sectorsize"):
            self._values[name] = arg
        elif name == "imagesize" and length == 8:
            low, high = struct.unpack(">II", read_exact(self._fd, offset, 8, self.path))
            self._values["imagesize"] = high << 32 | low
        elif name in _HASHES and length == _HASHES[name]:
            self.stored_hashes[name] = read_exact(self._fd, offset, length, self.path).hex()

    def _finish(self) -> None:
        page = self._values.get("pagesize") or self._values.get("segsize") or 0
        if not 0 < page <= _MAX_PAGE:
            raise CorruptImageError(f"implausible page size {page}", path=self.path)
        self._page = page
        if "imagesize" in self._values:
            self._media = self._values["imagesize"]
        elif self._pages:  # early files: the pages themselves say how much there is
            last = max(self._pages)
            self._media = last * page + self._page_bytes(last)
        else:
            raise CorruptImageError("neither an image size nor a single page is recorded",
                                    path=self.path)
        if self._media > MAX_OFFSET:
            raise CorruptImageError(f"the image declares {self._media} bytes of media, beyond "
                                    "any possible disk", path=self.path)

    def _page_bytes(self, number: int) -> int:
        """How many bytes page ``number`` holds (0 for a page never written)."""
        entry = self._pages.get(number)
        if entry is None:
            return 0
        _offset, length, arg = entry
        if not arg & _COMPRESSED:
            return length
        if arg & _ALG_MASK == _ZERO:
            return self._zero_count(number)
        return len(self._decoded(number))

    def _zero_count(self, number: int) -> int:
        offset, length, _arg = self._pages[number]
        if length < 4:
            raise CorruptImageError(f"page {number} of zeros records no length",
                                    path=self.path, media_offset=number * self._page)
        (count,) = struct.unpack(">I", read_exact(self._fd, offset, 4, self.path))
        return min(count, self._page)

    def _decoded(self, number: int) -> bytes:
        """A compressed page, decoded (at most one page; the last one decoded is kept, so that
        reading a page in several pieces decodes it once)."""
        with self._lock:
            if self._last is not None and self._last[0] == number:
                return self._last[1]
        offset, length, arg = self._pages[number]
        stored = read_exact(self._fd, offset, length, self.path)
        algorithm = arg & _ALG_MASK
        try:
            if algorithm == _ZLIB:
                data = zlib.decompressobj().decompress(stored, self._page)
            elif algorithm == _LZMA:
                data = lzma.LZMADecompressor(format=lzma.FORMAT_ALONE).decompress(
                    stored, self._page)
            else:
                raise UnsupportedFormatError(f"{self.path}: page {number} uses compression "
                                             f"{algorithm:#x}, which BitWitness does not read")
        except (zlib.error, lzma.LZMAError) as exc:
            raise CorruptImageError(f"page {number} does not decompress ({exc})",
                                    path=self.path, media_offset=number * self._page) from exc
        with self._lock:
            self._last = (number, data)
        return data

    def _slice(self, number: int, within: int, n: int) -> bytes:
        """``n`` bytes from ``within`` page ``number``: never the whole page allocated for a
        page not written, of zeros, or stored as it is (a header may declare pages of up to
        :data:`_MAX_PAGE`); past the data of the media's last page, zeros."""
        entry = self._pages.get(number)
        if entry is None:
            return bytes(n)
        want = min(self._page, self._media - number * self._page)
        have = self._page_bytes(number)
        if have < want and (number + 1) * self._page < self._media:
            raise CorruptImageError(f"page {number} holds {have} bytes, not {want}",
                                    path=self.path, media_offset=number * self._page)
        offset, _length, arg = entry
        take = max(0, min(n, have - within))
        if not arg & _COMPRESSED:
            piece = read_exact(self._fd, offset + within, take, self.path) if take else b""
        elif arg & _ALG_MASK == _ZERO:
            piece = bytes(take)
        else:
            piece = self._decoded(number)[within:within + take]
        return piece + bytes(n - len(piece))  # the last page may stop at the data's end

    def _read_aligned(self, offset: int, length: int) -> bytes:
        parts = []
        end = offset + length
        while offset < end:
            number, within = divmod(offset, self._page)
            n = min(self._page - within, end - offset)
            parts.append(self._slice(number, within, n))
            offset += n
        return b"".join(parts)

    @property
    def info(self) -> StreamInfo:
        return StreamInfo(format="aff", files=(self.path,), media_size=self.size,
                          sector_size=self.sector_size,
                          details={"reader": "bitwitness", "page_size": self._page,
                                   "pages": len(self._pages)})


class AffcatStream(ImageStream):
    """The media as ``affcat`` (afflib) writes it to a pipe: read sequentially, once."""

    alignment = 1

    def __init__(self, path: Path, size: int) -> None:
        exe = shutil.which("affcat")
        if exe is None:
            raise UnsupportedFormatError("affcat is not installed (Debian package afflib-tools)")
        self._path = path
        # affcat is given a copy made through the read-only opener: reading the evidence
        # itself would change its access time
        self._dir = tempfile.TemporaryDirectory(prefix="bitwitness-affcat-")
        try:
            (copy,) = copies_for("affcat", [path], Path(self._dir.name))
            self._proc = subprocess.Popen([exe, str(copy)], stdin=subprocess.DEVNULL,
                                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        except BaseException:
            self._dir.cleanup()
            self._unmade()
            raise
        self._done = 0
        super().__init__(size)

    def _read_aligned(self, offset: int, length: int) -> bytes:
        assert self._proc.stdout is not None
        if offset != self._done:
            raise CorruptImageError("affcat is read in order only", path=self._path)
        data = self._proc.stdout.read(length)
        self._done += len(data)
        if len(data) < length:
            # affcat ended early (a page afflib cannot read, a crash): a failed second reading
            # saying where, not zeros standing in for what it never gave
            self._proc.wait()
            raise CorruptImageError(
                f"affcat stopped at media offset {self._done} of {self.size} (exit code "
                f"{self._proc.returncode})", path=self._path, media_offset=self._done)
        return data

    @property
    def info(self) -> StreamInfo:
        return StreamInfo(format="aff", files=(self._path,), media_size=self.size,
                          details={"reader": "affcat (afflib)"})

    def close(self) -> None:
        if not self.closed:
            if self._proc.stdout is not None:
                self._proc.stdout.close()
            if self._proc.poll() is None:
                self._proc.terminate()
            self._proc.wait()
            self._dir.cleanup()
        super().close()


class AffFormat:
    """AFF files as afflib (affconvert, aimage) writes them."""

    name = "aff"
    containers = ("aff",)

    def probe(self, path: Path, head: bytes) -> bool:
        return head.startswith(MAGIC)

    def claims_name(self, path: Path) -> bool:
        return False

    def files(self, path: Path) -> list[Path]:
        return [path]

    def open(self, path: Path) -> ImageStream:
        return AffStream(path)

    def second_reader(self, path: Path, stream: ImageStream) -> ImageStream | None:
        return AffcatStream(path, stream.size)

FORMAT = AffFormat()
