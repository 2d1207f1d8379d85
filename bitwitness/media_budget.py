"""How much media an image may declare, for the bytes its files hold, before it is read whole.

Sparse containers (dynamic VHD, VHDX, sparse and stream-optimised VMDK, QCOW, Parallels,
sparse images) and EWF tables that point many chunks at one stored chunk can declare far more
media than their files hold. Each reader bounds what its structures may claim (a VHD block at
most 2 MiB per 4-byte table entry, a VMDK grain table 32 MiB per 4-byte directory entry, ...),
so what a file can declare grows with its size; but the constant is large, and a freshly made
2 TB dynamic VHD of 4 MiB is genuine evidence.

Every hash has to cover every byte of the media: MD5 and the SHA family have no shortcut for a
run of zeros, so hashing 2 TB of never-written blocks costs as much computing as hashing 2 TB of
data (only the reading is saved). Commands that read the whole media (``verify``, ``convert``,
``restore``) therefore ask before they start when an image declares more than
:data:`MAX_RATIO` bytes of media per byte of its files (and more than :data:`FREE_MEDIA`): they
stop with one line saying how much is declared and how little is stored, and the examiner
confirms with ``--max-media SIZE``. Browsing (``info``, ``partitions``, ``ls``...) reads only what
it shows and is never refused.
"""

from __future__ import annotations

import stat
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from pathlib import Path

from bitwitness.errors import UsageError
from bitwitness.sizes import format_size

#: Bytes of media per byte of image files that a whole-media read accepts without asking. Far
#: above what compression reaches (deflate's limit is about 1032:1), so only media that is
#: mostly never written (sparse) asks for confirmation.
MAX_RATIO = 4096
#: Media up to this size is read whole whatever its files hold.
FREE_MEDIA = 1 << 30

#: The examiner's ``--max-media``: media up to this many bytes is read whole without asking.
_MAX_MEDIA: ContextVar[int | None] = ContextVar("max_media", default=None)


class MediaBudgetError(UsageError):
    """The image declares far more media than its files hold; ``--max-media`` confirms."""


def set_max_media(limit: int | None) -> Callable[[], None]:
    """Accept media up to ``limit`` bytes for the rest of this context (the CLI's
    ``--max-media``, once per command); returns what undoes it."""
    token = _MAX_MEDIA.set(limit)
    return lambda: _MAX_MEDIA.reset(token)


def stored_bytes(files: Iterable[Path]) -> int | None:
    """Bytes the image's files hold; ``None`` when one is a device (its size is the media)."""
    total = 0
    for path in files:
        try:
            st = path.stat()
        except OSError:
            continue
        if not stat.S_ISREG(st.st_mode):
            return None
        total += st.st_size
    return total


def check_media_budget(image: Path, media_size: int, files: Iterable[Path]) -> None:
    """Refuse, in one line, to read ``media_size`` bytes whole when the image's ``files`` hold
    less than 1/:data:`MAX_RATIO` of it, unless ``--max-media`` allows that much."""
    limit = _MAX_MEDIA.get()
    if limit is not None:
        if media_size > limit:
            raise MediaBudgetError(
                f"{image}: declares {media_size} bytes of media ({format_size(media_size)}), "
                f"more than --max-media {limit}")
        return
    if media_size <= FREE_MEDIA:
        return
    stored = stored_bytes(files)
    if stored is None or media_size <= stored * MAX_RATIO:
        return
    raise MediaBudgetError(
        f"{image}: declares {media_size} bytes of media ({format_size(media_size)}) from "
        f"{stored} bytes of image files, more than {MAX_RATIO} times what they hold (mostly "
        f"never-written, sparse media, or a hostile header); every declared byte would be "
        f"hashed: pass --max-media {media_size} to read it whole")
