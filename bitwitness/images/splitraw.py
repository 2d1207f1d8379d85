"""Split raw images: ``x.001, x.002, ...`` (or from ``.000``) and ``x.aa, x.ab, ...``.

Any piece may be given; the set is found from its stem. Pieces must be contiguous: a gap (``.001``,
``.003`` without ``.002``) is a :class:`~bitwitness.errors.MissingSegmentError`.

BitWitness names raw pieces ``x.001.partial, x.002.partial, ...`` until the acquisition finishes
(:data:`~bitwitness.images.raw.PARTIAL_SUFFIX`). Such a set is recognised the same way, from any of
its pieces, and is made of ``.partial`` pieces only: it is the unfinished image, and reading just
the piece given would pass off its first megabytes as the whole of it.
"""

from __future__ import annotations

import bisect
import os
import re
import shlex
import threading
from collections import OrderedDict
from glob import escape as glob_escape
from pathlib import Path

from bitwitness.errors import (
    CorruptImageError,
    InputError,
    MissingSegmentError,
    UnsupportedFormatError,
)
from bitwitness.evidence_io import confine_part
from bitwitness.images.checks import ContainerCheck
from bitwitness.images.raw import PARTIAL_SUFFIX, fd_size, open_readonly, read_exact
from bitwitness.images.splitnames import DIGITS, LETTERS, Scheme, lettered_run, scheme_for
from bitwitness.stream import ImageStream, StreamInfo

#: Descriptors a split set keeps open at once.
MAX_OPEN = 64

_NUMERIC = re.compile(r"^\.(\d{2,})$")
_ALPHA = re.compile(r"^\.([a-z]{2,})$")


def split_pieces(path: Path) -> list[Path] | None:
    """Every piece of the split set of ``path``; ``None`` when the name is not split-like.

    The pieces are named as :mod:`~bitwitness.images.splitnames` lays out (fixed width, or GNU
    split's widening names); a numbered set starts at ``0`` or ``1``, a lettered one at
    ``aa`` (``aaa``...). dcfldd's ``splitformat=MAC`` names (``x.dmg``, ``x.002.dmgpart``...)
    are a set too. A piece missing inside the set is a
    :class:`~bitwitness.errors.MissingSegmentError`. A ``.partial`` piece (``x.001.partial``)
    gives the set of ``.partial`` pieces of the same stem.
    """
    mac = _mac_pieces(path)
    return mac if mac is not None else _numbered_or_lettered(path)


def _numbered_or_lettered(path: Path) -> list[Path] | None:
    """:func:`split_pieces` for the names :mod:`~bitwitness.images.splitnames` lays out."""
    tail = PARTIAL_SUFFIX if path.name.endswith(PARTIAL_SUFFIX) else ""
    base = path.name.removesuffix(tail) if tail else path.name
    if base in ("", ".", ".."):  # "..partial" leaves no file name to split
        return None
    named = path.parent / base
    suffix = named.suffix
    if not (_NUMERIC.match(suffix) or _ALPHA.match(suffix)):
        return None
    stem = named.with_suffix("")
    numeric = suffix[1].isdigit()
    kind = "[0-9]" if numeric else "[a-z]"
    siblings = [_suffix_of(p, stem, tail)
                for p in path.parent.glob(f"{glob_escape(stem.name)}.{kind}{kind}*{tail}")]
    alphabet = DIGITS if numeric else LETTERS
    siblings = [x for x in siblings if all(c in alphabet for c in x)]
    scheme = scheme_for(siblings)
    if scheme is None or scheme.index(suffix[1:]) is None:
        return None
    indexes = sorted({i for x in siblings if (i := scheme.index(x)) is not None})
    if not scheme.numeric and scheme.width > 2:
        indexes = _lettered(path, scheme, indexes, tail)
        if scheme.index(suffix[1:]) not in indexes:
            return None  # x.log beside the pieces of x.aaa, x.aab...
    first = indexes[0]
    if first != 0 and not (scheme.numeric and first == 1):
        if not scheme.numeric or scheme.width == 2:
            # no ".aa" (".00"): a two-character suffix such as ".dd" or ".12" is no split set
            return None
        raise MissingSegmentError(
            f"split raw set starts at .{scheme.name(first)}{tail}; the first piece is missing",
            path=path)
    for expected, n in enumerate(indexes, start=first):
        if n != expected:
            raise MissingSegmentError(
                f"split raw piece .{scheme.name(expected)}{tail} is missing", path=path)
    return [stem.parent / f"{stem.name}.{scheme.name(i)}{tail}" for i in indexes]


#: dcfldd ``splitformat=MAC``: ``x.dmg``, then ``x.002.dmgpart``, ``x.003.dmgpart``...
_MAC_PART = re.compile(r"^(?P<stem>.+)\.(?P<number>\d{3,})\.dmgpart$")


def _mac_pieces(path: Path) -> list[Path] | None:
    """The pieces of a set dcfldd cut with ``splitformat=MAC`` (named as hdiutil names a
    segmented image's pieces, but raw bytes), when ``path`` is one of them and a ``.dmgpart``
    piece exists; None otherwise (a lone ``x.dmg`` is whatever its content says)."""
    if path.name.endswith(".dmg"):
        stem = path.name[:-4]
    elif (match := _MAC_PART.match(path.name)) is not None:
        stem = match["stem"]
    else:
        return None
    numbers: dict[int, Path] = {}
    for piece in path.parent.glob(f"{glob_escape(stem)}.[0-9][0-9][0-9]*.dmgpart"):
        found = _MAC_PART.match(piece.name)
        if found is None or found["stem"] != stem:
            continue
        if len(found["number"]) == 3 or found["number"][0] != "0":  # .002, then .1000
            numbers[int(found["number"])] = piece
    if not numbers:
        return None
    first = path.parent / f"{stem}.dmg"
    if not first.exists():
        raise MissingSegmentError(f"split raw set starts at {stem}.dmg; the first piece is "
                                  "missing", path=path)
    for expected, number in enumerate(sorted(numbers), start=2):
        if number != expected:
            raise MissingSegmentError(f"split raw piece {stem}.{expected:03d}.dmgpart is "
                                      "missing", path=path)
    return [first, *(numbers[n] for n in sorted(numbers))]


def _lettered(path: Path, scheme: Scheme, indexes: list[int], tail: str) -> list[int]:
    """The pieces of a lettered set of three letters and more (:func:`lettered_run`)."""
    try:
        return lettered_run(scheme, indexes)
    except ValueError as missing:
        raise MissingSegmentError(f"split raw piece .{scheme.name(missing.args[0])}{tail} is "
                                  "missing", path=path) from None


def _suffix_of(piece: Path, stem: Path, tail: str) -> str:
    """``001`` for ``x.001`` (or ``x.001.partial`` when ``tail`` is ``.partial``)."""
    return piece.name[len(stem.name) + 1:len(piece.name) - len(tail)]


def refuse_split_container(path: Path, what: str) -> None:
    """Refuse ``path`` when it is one piece of a split set of a container read as one file (an
    ntfsclone or partclone image cut by ``split``, as Clonezilla cuts them): the first piece
    alone reads as a truncated image, a later one as no image at all. The message gives the
    command that joins the pieces (names shell-quoted: they are the evidence's)."""
    try:
        pieces = split_pieces(path)
    except MissingSegmentError:
        pieces = None  # the reader then says what is wrong with the piece given
    if not pieces or len(pieces) < 2:
        return
    stem = pieces[0].with_suffix("")
    joined = shlex.quote(stem.name)
    # one pattern per suffix width, in order: the shell expands each in sorted order, which
    # is the pieces' order within a width (x.aa .. x.yz, then x.zaaa ..)
    widths = dict.fromkeys(len(p.suffix) - 1 for p in pieces)
    patterns = " ".join(f"{joined}.{'?' * w}" for w in widths)
    raise UnsupportedFormatError(
        f"{path}: one of the {len(pieces)} pieces of a split {what} ({pieces[0].name} to "
        f"{pieces[-1].name}): join them (cat {patterns} > {joined}), then open {joined}")


class SplitRawStream(ImageStream):
    """Concatenation of the pieces, each opened read-only.

    Each piece is opened once to learn its size; reads then keep at most :data:`MAX_OPEN`
    descriptors open (least recently used closed first), so that a set of thousands of pieces
    (a terabyte cut for CDs) does not exhaust the process's descriptors.
    """

    alignment = 1

    def __init__(self, pieces: list[Path]) -> None:
        self.pieces = pieces
        self._fds: OrderedDict[int, int] = OrderedDict()
        self._lock = threading.Lock()  # readers in several threads (TSK) share the descriptors
        self._starts: list[int] = []
        self._sizes: list[int] = []
        total = 0
        for p in pieces:
            fd = open_readonly(p)
            try:
                size = fd_size(fd)
            finally:
                os.close(fd)
            self._starts.append(total)
            self._sizes.append(size)
            total += size
        super().__init__(total)

    def _fd(self, index: int) -> int:
        fd = self._fds.get(index)
        if fd is None:
            fd = self._fds[index] = open_readonly(self.pieces[index])
            while len(self._fds) > MAX_OPEN:
                os.close(self._fds.popitem(last=False)[1])
        self._fds.move_to_end(index)
        return fd

    def _read_aligned(self, offset: int, length: int) -> bytes:
        with self._lock:
            return self._read_locked(offset, length)

    def _read_locked(self, offset: int, length: int) -> bytes:
        out = []
        while length > 0:
            i = bisect.bisect_right(self._starts, offset) - 1
            inner = offset - self._starts[i]
            n = min(length, self._sizes[i] - inner)
            out.append(read_exact(self._fd(i), inner, n, self.pieces[i]))
            offset += n
            length -= n
        return b"".join(out)

    def close(self) -> None:
        with getattr(self, "_lock", threading.Lock()):
            for fd in getattr(self, "_fds", {}).values():
                os.close(fd)
            self._fds = OrderedDict()
        if hasattr(self, "_pos"):
            super().close()

    @property
    def info(self) -> StreamInfo:
        starts = [sum(self._sizes[:i]) for i in range(len(self._sizes))]
        return StreamInfo(format="split-raw", files=tuple(self.pieces), media_size=self.size,
                          sector_size=self.sector_size,
                          details={"piece_sizes": list(self._sizes)},
                          pieces=tuple((s, s + n) for s, n in zip(starts, self._sizes,
                                                                  strict=True)))


class SplitRawFormat:
    name = "split-raw"

    def probe(self, path: Path, head: bytes) -> bool:
        return False

    def claims_name(self, path: Path) -> bool:
        try:
            return split_pieces(path) is not None
        except MissingSegmentError:
            return True  # it is a split set, and open() will say what is missing

    def files(self, path: Path) -> list[Path]:
        """The pieces; every piece but the one named must be a regular file that really lies
        in the same folder (a piece linked to a device or to another folder is refused)."""
        pieces = split_pieces(path) or [path]
        for piece in pieces:
            if piece != path:
                confine_part(path.parent, piece.name, what="split raw piece")
        return pieces

    def open(self, path: Path) -> ImageStream:
        """The pieces joined; a set whose pieces cannot be the media joined (see
        :func:`piece_sizes_problem`) is refused, for every command alike: read anyway, every
        byte after the odd piece would be shown at the wrong place (``verify`` said CORRUPT
        while ``info``, ``convert`` and the browsing commands read the set as whole). A set of
        nothing but empty pieces is no image (exit 2), as an empty raw file."""
        stream = SplitRawStream(self.files(path))
        sizes = stream.info.details.get("piece_sizes") or []
        if not any(sizes):
            stream.close()
            raise InputError(f"{path}: every piece of the split raw set is empty (0 bytes): "
                             "not an image")
        problem = piece_sizes_problem(stream.pieces, sizes)
        if problem is not None:
            stream.close()
            raise CorruptImageError(f"damaged split raw set: {problem}", path=path)
        return stream

    def self_checks(self, path: Path, stream: ImageStream) -> tuple[ContainerCheck, ...]:
        """The pieces' sizes, as :meth:`open` found them consistent."""
        sizes = stream.info.details.get("piece_sizes") or []
        if len(sizes) < 2:
            return ()
        return (ContainerCheck("split raw piece sizes", True, f"{len(sizes)} pieces of "
                               f"{sizes[0]} bytes, the last of {sizes[-1]}"),)


def piece_sizes_problem(pieces: list[Path], sizes: list[int]) -> str | None:
    """What is wrong with a split set's piece sizes, or None. Every tool that splits an image
    cuts it into pieces of one size, the last one at most that long: a piece of another size
    before the last is one cut short (a copy interrupted, a disk full) or grown, and joined as
    found it shifts every byte after it."""
    if len(sizes) < 2:
        return None
    size = sizes[0]
    if size == 0:
        return f"the first piece {pieces[0].name} is empty (0 bytes)"
    for piece, n in zip(pieces[1:-1], sizes[1:-1], strict=True):
        if n != size:
            return (f"{piece.name} holds {n} bytes where the pieces before it hold {size}: "
                    "every byte after it is shifted")
    if sizes[-1] > size:
        return (f"the last piece {pieces[-1].name} holds {sizes[-1]} bytes, more than the "
                f"{size} of the others")
    return None


FORMAT = SplitRawFormat()
