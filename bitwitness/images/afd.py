"""AFD: afflib's multi-file AFF, a folder named ``NAME.afd`` holding ``file_000.aff``,
``file_001.aff``... Each file is an ordinary AFF file holding some of the pages; afflib copies
the acquisition's metadata into every file, writes ``aff_file_type`` = ``AFD`` in the first one
only, and the image size and the MD5/SHA-1 into whichever file was last when it closed the set.

afflib (``vnode_afd.cpp``) opens as one image every file whose name ends ``.aff`` in a folder
whose name ends ``.afd``, a segment being read from the first file that holds it. Here the same
files make the set; a page or a recorded value that two files give differently is refused rather
than chosen between by directory order.

Why a piece alone is never an image: read as an ordinary AFF, ``file_000.aff`` is a complete
16 MiB disk (the image size is in another file) and ``file_003.aff`` a disk whose first pages are
zeros and whose hash mismatches. Pages an AFD set needs and no file holds make it INCOMPLETE
(:class:`~bitwitness.errors.MissingSegmentError`), named as media sector ranges.

This module knows the folder (which files, in what order, within what bounds); the pages are
read by :mod:`bitwitness.images.aff`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from bitwitness.errors import CorruptImageError, MissingSegmentError, UnsupportedFormatError
from bitwitness.evidence_io import confine_part

#: The most files one set may hold: afflib cuts a set into 608 MiB files unless told otherwise,
#: so this is some 9.7 TiB at its default; a folder holding more is refused before any is
#: opened (each file is scanned whole on opening).
MAX_PIECES = 16_384
#: How afflib names the files it writes into an AFD folder (``file_%03d.aff``).
_PIECE_NAME = re.compile(r"file_[0-9]{3,}\.aff", re.IGNORECASE)
#: At most this many missing ranges are named in the one-line message; the rest are counted.
_SHOWN_RANGES = 8


def is_afd_folder(path: Path) -> bool:
    """A folder afflib would open as an AFD: its name ends ``.afd`` (in any case)."""
    return path.suffix.lower() == ".afd" and path.is_dir()


def set_folder(path: Path) -> Path | None:
    """The AFD folder ``path`` is or is a file of (``x.afd/file_002.aff``), else None: naming
    any file of a set opens the whole set, as naming any segment of an E01 does."""
    if is_afd_folder(path):
        return path
    if path.suffix.lower() == ".aff" and is_afd_folder(path.parent):
        return path.parent
    return None


def looks_like_piece(path: Path) -> bool:
    """A file named as afflib names the files of an AFD (``file_003.aff``): read outside its
    folder, its absent pages are another file's, not zeros."""
    return _PIECE_NAME.fullmatch(path.name) is not None


def pieces(folder: Path) -> list[Path]:
    """The files of the AFD set ``folder``, in afflib's numbering order: every entry whose name
    ends ``.aff``, each held to the evidence opener's rules (a regular file, no link out of the
    folder). Raises :class:`UnsupportedFormatError` for more than :data:`MAX_PIECES` (counted
    as the folder is listed, so a folder of millions stops early) and
    :class:`MissingSegmentError` for a folder holding none."""
    found: list[Path] = []
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if not entry.name.lower().endswith(".aff"):
                    continue
                if len(found) == MAX_PIECES:
                    raise UnsupportedFormatError(
                        f"{folder}: the AFD folder holds more than {MAX_PIECES} .aff files, "
                        "more than BitWitness reads as one image")
                found.append(confine_part(folder, entry.name, what="AFD file"))
    except OSError as exc:
        raise CorruptImageError(f"the AFD folder cannot be listed ({exc.strerror or exc})",
                                path=folder) from exc
    if not found:
        raise MissingSegmentError("the AFD folder holds no .aff file (afflib writes "
                                  "file_000.aff first)", path=folder)
    return sorted(found, key=_order)


def _order(path: Path) -> tuple[int, int, str]:
    """``file_9.aff`` before ``file_10.aff``: by number where afflib's name gives one."""
    if looks_like_piece(path):
        return (0, int(path.name[5:-4]), path.name)
    return (1, 0, path.name)


def missing_message(absent: list[tuple[int, int]], *, page: int, sector: int,
                    media: int | None, files: int) -> str:
    """The one line saying which pages no file of the set holds, as media sector ranges.

    ``absent`` are (first, last) page numbers, inclusive, ascending; ``media`` is the image size
    in bytes where a file records it (the last range then stops at the media's last sector)."""
    shown = []
    for first, last in absent[:_SHOWN_RANGES]:
        end = (last + 1) * page if media is None else min((last + 1) * page, media)
        pages = f"page {first}" if first == last else f"pages {first}-{last}"
        shown.append(f"{pages} (sectors {first * page // sector}-{-(-end // sector) - 1})")
    more = len(absent) - _SHOWN_RANGES
    tail = f", and {more} more ranges" if more > 0 else ""
    held = f"{files} file{'s' if files != 1 else ''} read"
    return (f"the AFF set is INCOMPLETE: no file of it stores {', '.join(shown)}{tail} ({held}: "
            "a file of the AFD folder is missing, or one was read outside its folder)")
