"""AFF (the Advanced Forensic Format of afflib, files starting ``AFF10``): our own reader.

An AFF file is the 8-byte header ``AFF10\\r\\n\\0`` followed by segments. A segment is ``AFF\\0``,
the name length, the data length and a 32-bit argument (big-endian), the name, the data, then
``ATT\\0`` and the segment's total length. The media is stored in pages named ``page0``,
``page1``... (``seg0``... in early files) of ``pagesize`` bytes (the segment's argument); a page's
argument says how its data is stored: bit 0 set means compressed, with the algorithm in bits
4-7 (0: zlib, 2: LZMA, 3: all zeros, the data then being the 32-bit page length); clear means
the bytes as they are. ``imagesize`` holds the media size as two big-endian 32-bit words, low
first. ``md5``, ``sha1`` and ``sha256`` hold the hashes recorded at acquisition; they are the
stored hashes ``verify`` compares. A page one file never wrote reads as zeros, as afflib's
``af_read`` gives it (``affcat`` leaves it out and ``affinfo -m`` calls the file unverifiable:
the recorded hashes decide).

An AFD folder (:mod:`bitwitness.images.afd`) is read as one image: every file's pages and
metadata together, a page two files store refused, and a page its image size needs that no file
stores making it INCOMPLETE; a file named inside the folder opens the whole set, and a file of a
set read alone (recognised by afflib's ``file_NNN.aff`` name or its ``aff_file_type`` AFD) is
INCOMPLETE too, never a smaller disk. Encrypted (AFE) and signed-only variants and AFM split
formats are refused by name. ``affcat`` (afflib's own reader) is the independent second reader,
of a file or of a folder.
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
from array import array
from bisect import bisect_left
from collections import OrderedDict
from collections.abc import Sequence
from itertools import pairwise
from pathlib import Path

from bitwitness.errors import CorruptImageError, MissingSegmentError, UnsupportedFormatError
from bitwitness.evidence_io import MAX_OFFSET, copies_for, open_readonly
from bitwitness.images import afd
from bitwitness.images.afd import missing_message
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
#: Segments one file, or all the files of a set together, may hold: the page table costs some
#: 30 bytes a page, scanning a few microseconds a segment.
_MAX_SEGMENTS = 1 << 22
#: Descriptors a set keeps open at once (it may hold thousands of files).
_OPEN_FILES = 16
_HASHES = {"md5": 16, "sha1": 20, "sha256": 32}
_PAGE_NUMBER = re.compile(r"[0-9]{1,20}")
#: A page number whose page would start past 2^63 bytes even with the smallest pages.
_MAX_PAGE_NUMBER = MAX_OFFSET // 512


class _PageTable:
    """Where each page lies: five arrays in the order of the pages' numbers, searched by
    bisection. About 30 bytes a page, where a dict of tuples took some 200: a set of
    :data:`_MAX_SEGMENTS` pages stays near 120 MiB."""

    def __init__(self) -> None:
        self.numbers = array("Q")
        self.files = array("I")  #: index of the file in the set
        self.offsets = array("Q")  #: of the page's data in that file
        self.lengths = array("Q")
        self.args = array("I")

    def add(self, number: int, file: int, offset: int, length: int, arg: int) -> None:
        self.numbers.append(number)
        self.files.append(file)
        self.offsets.append(offset)
        self.lengths.append(length)
        self.args.append(arg)

    def __len__(self) -> int:
        return len(self.numbers)

    def find(self, number: int) -> tuple[int, int, int, int] | None:
        """(file, offset, length, arg) of page ``number``, or None for a page not stored."""
        at = bisect_left(self.numbers, number)
        if at == len(self.numbers) or self.numbers[at] != number:
            return None
        return self.files[at], self.offsets[at], self.lengths[at], self.args[at]

    def sort(self, names: Sequence[Path]) -> None:
        """Order by page number. A page stored twice in one file is read from its last copy,
        as before sets were read; one stored by two files of a set is refused, since afflib
        would take whichever its directory listing gave first."""
        n = self.numbers
        if all(a < b for a, b in pairwise(n)):
            return  # afflib writes pages in order: the common case costs one pass
        order = sorted(range(len(n)), key=n.__getitem__)  # stable: copies stay in file order
        keep: list[int] = []
        for i in order:
            if keep and n[keep[-1]] == n[i]:
                if self.files[keep[-1]] != self.files[i]:
                    raise CorruptImageError(
                        f"page {n[i]} is stored in both {names[self.files[keep[-1]]].name} and "
                        f"{names[self.files[i]].name}", path=names[self.files[i]].parent)
                keep[-1] = i
            else:
                keep.append(i)
        for name in ("numbers", "files", "offsets", "lengths", "args"):
            old = getattr(self, name)
            setattr(self, name, array(old.typecode, (old[i] for i in keep)))

    def absent(self, below: int) -> list[tuple[int, int]]:
        """The (first, last) runs of page numbers under ``below`` that no file stores: one walk
        over the pages stored, whatever numbers they hold."""
        runs, expected = [], 0
        for number in self.numbers:
            if number >= below:
                break
            if number > expected:
                runs.append((expected, number - 1))
            expected = number + 1
        if expected < below:
            runs.append((expected, below - 1))
        return runs


class AffStream(ImageStream):
    """The media of one AFF file, or of every file of an AFD set, read by our own code.

    ``AffStream(path)`` reads one file as afflib's ``af_read`` does: a page it does not store
    reads as zeros (the MD5/SHA-1 it records then decide). ``files`` and ``afd=True`` make a set
    (or a file recognisably one of a set): its pages are every file's, its metadata any file's,
    and pages the image size needs that no file stores make it INCOMPLETE
    (:class:`~bitwitness.errors.MissingSegmentError`), never zeros."""

    def __init__(self, path: Path, *, files: Sequence[Path] | None = None,
                 afd: bool = False) -> None:
        self.path = path  #: what was named: the file, or the AFD folder
        self.files = tuple(files) if files else (path,)
        self.afd = afd
        self._lock = threading.Lock()  #: the last page decoded
        self._io = threading.Lock()  #: the open descriptors
        self._fds: OrderedDict[int, int] = OrderedDict()
        self._pages = _PageTable()
        self._values: dict[str, tuple[int, int]] = {}  #: name -> (value, file recording it)
        self._file_type = b""
        self.stored_hashes: dict[str, str] = {}
        self._hash_files: dict[str, int] = {}
        self._segments = 0
        self._last: tuple[int, bytes] | None = None
        try:
            for number in range(len(self.files)):
                self._scan(number)
            size = self._finish()
        except BaseException:
            self._close_fds()
            self._unmade()
            raise
        super().__init__(size, sector_size=self.sector_size)

    # --- the descriptors -------------------------------------------------------------------

    def _pread(self, file: int, offset: int, length: int) -> bytes:
        """``length`` bytes at ``offset`` of the set's file number ``file``. At most
        :data:`_OPEN_FILES` stay open (a set may hold thousands of files)."""
        with self._io:
            fd = self._fds.get(file)
            if fd is None:
                fd = open_readonly(self.files[file])
                self._fds[file] = fd
                if len(self._fds) > _OPEN_FILES:
                    os.close(self._fds.popitem(last=False)[1])
            else:
                self._fds.move_to_end(file)
            return read_exact(fd, offset, length, self.files[file])

    def _close_fds(self) -> None:
        with self._io:
            while self._fds:
                os.close(self._fds.popitem()[1])

    def close(self) -> None:
        if not self.closed:
            self._close_fds()
        super().close()

    # --- the segments ----------------------------------------------------------------------

    def _scan(self, file: int) -> None:
        path = self.files[file]
        if self._pread(file, 0, len(MAGIC)) != MAGIC:
            raise CorruptImageError("no AFF header", path=path)
        with self._io:
            size = os.fstat(self._fds[file]).st_size
        values: dict[str, int] = {}
        pos = len(MAGIC)
        while pos + _SEGMENT.size <= size:
            magic, name_len, data_len, arg = _SEGMENT.unpack(
                self._pread(file, pos, _SEGMENT.size))
            if magic != b"AFF\x00":
                raise CorruptImageError(f"no segment header at file offset {pos}", path=path)
            end = pos + _SEGMENT.size + name_len + data_len + _TAIL.size
            if name_len > _MAX_NAME or end > size:
                raise CorruptImageError(f"the segment at file offset {pos} runs past the end "
                                        "of the file", path=path)
            name = self._pread(file, pos + _SEGMENT.size, name_len).decode("latin-1")
            self._segment(file, name, pos + _SEGMENT.size + name_len, data_len, arg,
                          values=values)
            pos = end
            self._segments += 1
            if self._segments > _MAX_SEGMENTS:
                where = "segments" if len(self.files) == 1 else "segments in the set's files"
                raise CorruptImageError(f"implausibly many {where} (more than {_MAX_SEGMENTS})",
                                        path=path)
        for name, value in values.items():
            self._record(name, value, file)

    def _segment(self, file: int, name: str, offset: int, length: int, arg: int, *,
                 values: dict[str, int]) -> None:
        path = self.files[file]
        if name.startswith(("affkey", "aes256")):
            raise UnsupportedFormatError(f"{path}: encrypted AFF image (AFE), which "
                                         "BitWitness does not read")
        number = name[4:] if name.startswith("page") else name[3:] if name.startswith(
            "seg") else None
        # ASCII digits only: a name read as latin-1 may hold "²", which str.isdigit accepts
        # and int() refuses.
        if number is not None and _PAGE_NUMBER.fullmatch(number):
            page = int(number)
            if page > _MAX_PAGE_NUMBER:
                raise CorruptImageError(f"segment {name[:40]!r} names page {page}, beyond any "
                                        "possible disk", path=path, offset=offset)
            self._pages.add(page, file, offset, length, arg)
        elif name in ("pagesize", "segsize", "sectorsize"):
            values[name] = arg
        elif name == "imagesize" and length == 8:
            low, high = struct.unpack(">II", self._pread(file, offset, 8))
            values["imagesize"] = high << 32 | low
        elif name in _HASHES and length == _HASHES[name]:
            values[f"hash:{name}"] = int.from_bytes(self._pread(file, offset, length), "big")
        elif name == "aff_file_type" and length <= 16:
            self._file_type = self._file_type or self._pread(file, offset, length)

    def _record(self, name: str, value: int, file: int) -> None:
        """A value one file of the set records: the same in every file that records it (afflib
        copies the acquisition's metadata into each), else refused naming both files."""
        held = self._values.setdefault(name, (value, file))
        if held[0] != value:
            raise CorruptImageError(
                f"{self.files[held[1]].name} and {self.files[file].name} record different "
                f"{name.removeprefix('hash:')} values", path=self.files[file].parent)
        if name.startswith("hash:"):
            algorithm = name[5:]
            self.stored_hashes[algorithm] = value.to_bytes(_HASHES[algorithm], "big").hex()

    def _value(self, name: str) -> int | None:
        held = self._values.get(name)
        return None if held is None else held[0]

    def _finish(self) -> int:
        self._pages.sort(self.files)
        page = self._value("pagesize") or self._value("segsize") or 0
        if not 0 < page <= _MAX_PAGE:
            raise CorruptImageError(f"implausible page size {page}", path=self.path)
        self._page = page
        self.sector_size = self._value("sectorsize") or 512
        # any range is read (a page in pieces): aligning reads to a page would allocate a
        # whole page, up to _MAX_PAGE, for every read however small
        self.alignment = 1
        media = self._value("imagesize")
        if media is not None and media > MAX_OFFSET:
            raise CorruptImageError(f"the image declares {media} bytes of media, beyond "
                                    "any possible disk", path=self.path)
        if self.afd or self._file_type == b"AFD":
            self._require_every_page(media)
        if media is not None:
            return media
        if not self._pages:
            raise CorruptImageError("neither an image size nor a single page is recorded",
                                    path=self.path)
        # early files: the pages themselves say how much there is
        last = self._pages.numbers[-1]
        return last * page + self._page_bytes(last)

    def _require_every_page(self, media: int | None) -> None:
        """An AFD set, or one of its files read alone: a page no file stores is another file's
        (missing), never zeros; without an image size the set's last file is missing."""
        stored = self._pages.numbers
        below = -(-media // self._page) if media is not None else (
            stored[-1] + 1 if stored else 0)
        absent = self._pages.absent(below)
        if not absent and media is not None:
            return
        message = missing_message(absent, page=self._page, sector=self.sector_size,
                                  media=media, files=len(self.files)) if absent else (
            "the AFF set is INCOMPLETE")
        if media is None:
            message += ("; none of its files records the image size (afflib writes it, with "
                        "the MD5 and SHA-1, into the set's last file)")
        raise MissingSegmentError(message, path=self.path)

    # --- the pages -------------------------------------------------------------------------

    def _entry(self, number: int) -> tuple[int, int, int, int]:
        entry = self._pages.find(number)
        assert entry is not None
        return entry

    def _page_bytes(self, number: int) -> int:
        """How many bytes page ``number`` holds (0 for a page never written)."""
        entry = self._pages.find(number)
        if entry is None:
            return 0
        _file, _offset, length, arg = entry
        if not arg & _COMPRESSED:
            return length
        if arg & _ALG_MASK == _ZERO:
            return self._zero_count(number)
        return len(self._decoded(number))

    def _zero_count(self, number: int) -> int:
        file, offset, length, _arg = self._entry(number)
        if length < 4:
            raise CorruptImageError(f"page {number} of zeros records no length",
                                    path=self.files[file], media_offset=number * self._page)
        (count,) = struct.unpack(">I", self._pread(file, offset, 4))
        return min(count, self._page)

    def _decoded(self, number: int) -> bytes:
        """A compressed page, decoded (at most one page; the last one decoded is kept, so that
        reading a page in several pieces decodes it once)."""
        with self._lock:
            if self._last is not None and self._last[0] == number:
                return self._last[1]
        file, offset, length, arg = self._entry(number)
        path = self.files[file]
        stored = self._pread(file, offset, length)
        algorithm = arg & _ALG_MASK
        try:
            if algorithm == _ZLIB:
                data = zlib.decompressobj().decompress(stored, self._page)
            elif algorithm == _LZMA:
                data = lzma.LZMADecompressor(format=lzma.FORMAT_ALONE).decompress(
                    stored, self._page)
            else:
                raise UnsupportedFormatError(f"{path}: page {number} uses compression "
                                             f"{algorithm:#x}, which BitWitness does not read")
        except (zlib.error, lzma.LZMAError) as exc:
            raise CorruptImageError(f"page {number} does not decompress ({exc})",
                                    path=path, media_offset=number * self._page) from exc
        with self._lock:
            self._last = (number, data)
        return data

    def _slice(self, number: int, within: int, n: int) -> bytes:
        """``n`` bytes from ``within`` page ``number``: never the whole page allocated for a
        page not written, of zeros, or stored as it is (a header may declare pages of up to
        :data:`_MAX_PAGE`); past the data of the media's last page, zeros."""
        entry = self._pages.find(number)
        if entry is None:
            return bytes(n)
        file, offset, _length, arg = entry
        want = min(self._page, self.size - number * self._page)
        have = self._page_bytes(number)
        if have < want and (number + 1) * self._page < self.size:
            raise CorruptImageError(f"page {number} holds {have} bytes, not {want}",
                                    path=self.files[file], media_offset=number * self._page)
        take = max(0, min(n, have - within))
        if not arg & _COMPRESSED:
            piece = self._pread(file, offset + within, take) if take else b""
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
        details: dict[str, object] = {"reader": "bitwitness", "page_size": self._page,
                                      "pages": len(self._pages)}
        if self.afd:
            details["afd_folder"] = str(self.path)
        return StreamInfo(format="afd" if self.afd else "aff", files=self.files,
                          media_size=self.size, sector_size=self.sector_size, details=details)


class AffcatStream(ImageStream):
    """The media as ``affcat`` (afflib) writes it to a pipe: read sequentially, once."""

    alignment = 1

    def __init__(self, path: Path, size: int, *, afd_files: Sequence[Path] = ()) -> None:
        """``path`` is an AFF file, or with ``afd_files`` (the files our reader read) an AFD
        folder: affcat is then given a folder of the same name holding copies of those files
        (afflib opens every ``.aff`` file of a folder named ``.afd``)."""
        exe = shutil.which("affcat")
        if exe is None:
            raise UnsupportedFormatError("affcat is not installed (Debian package afflib-tools)")
        self._path = path
        # affcat is given a copy made through the read-only opener: reading the evidence
        # itself would change its access time
        self._dir = tempfile.TemporaryDirectory(prefix="bitwitness-affcat-")
        try:
            if afd_files:
                target = Path(self._dir.name) / path.name
                target.mkdir()
                copies_for("affcat", afd_files, target)
            else:
                (target,) = copies_for("affcat", [path], Path(self._dir.name))
            self._proc = subprocess.Popen([exe, str(target)], stdin=subprocess.DEVNULL,
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
    """AFF files as afflib (affconvert, aimage) writes them, and AFD folders of them."""

    name = "aff"
    containers = ("aff", "afd")

    def probe(self, path: Path, head: bytes) -> bool:
        return head.startswith(MAGIC)

    def claims_name(self, path: Path) -> bool:
        return False

    def files(self, path: Path) -> list[Path]:
        folder = afd.set_folder(path)
        return [path] if folder is None else afd.pieces(folder)

    def open(self, path: Path) -> ImageStream:
        folder = afd.set_folder(path)
        if folder is not None:
            return AffStream(folder, files=afd.pieces(folder), afd=True)
        return AffStream(path, afd=afd.looks_like_piece(path))

    def second_reader(self, path: Path, stream: ImageStream) -> ImageStream | None:
        if isinstance(stream, AffStream) and stream.afd and stream.path.is_dir():
            return AffcatStream(stream.path, stream.size, afd_files=stream.files)
        return AffcatStream(path, stream.size)


FORMAT = AffFormat()
