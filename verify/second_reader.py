"""The independent second reader for every container format that has one (EWF has libewf).

The format that opened the image names its second reader (``second_reader`` on the format
object): libvhdi or libvmdk where our own VHD/VMDK reader read the image, QEMU (through
``qemu-nbd``) where a libyal binding did. The media is hashed again through it and everything
it produces (media size, hashes) is compared with the first pass; a disagreement is a MISMATCH,
never averaged away. A reader that cannot be started or fails is recorded, not raised; a reader
that knows it cannot read this image (``NoSecondReader``: pyaff4 and deflate chunks) is noted.
One difference is no disagreement: QEMU counts a disk in whole sectors, so a declared size that
is not one (VDI from ``VBoxManage convertfromraw``, a QCOW whose header says so) comes out of
QEMU rounded; the bytes both readers present are compared, and the note says so.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bitwitness.errors import BitWitnessError, Interrupted, NoSecondReader
from bitwitness.hashing import ThreadedHasher
from bitwitness.progress import ProgressTask
from bitwitness.stream import ImageStream
from bitwitness.verify.model import ReaderCheck

BLOCK_SIZE = 4 << 20
#: QEMU counts a disk's size in sectors of this many bytes.
SECTOR = 512


def second_reader(fmt: Any, path: Path, stream: ImageStream) -> ImageStream | None:
    """The image opened by the format's independent reader; ``None`` where it has none."""
    opener = getattr(fmt, "second_reader", None)
    return None if opener is None else opener(path, stream)


@dataclass(frozen=True)
class _Hashing:
    """How the second reader's media is hashed: the algorithms, the progress task and the
    cancel event of the verification."""

    algorithms: Sequence[str]
    task: ProgressTask
    cancel: threading.Event | None

    def hashes(self, stream: ImageStream, end: int | None = None,
               tail: bytes = b"") -> dict[str, str]:
        """Hashes of the stream's bytes up to ``end`` (all of them: ``None``), then ``tail``."""
        hasher = ThreadedHasher(self.algorithms, depth=4)
        try:
            for block in stream.iter_blocks(BLOCK_SIZE, end=end):
                if self.cancel is not None and self.cancel.is_set():
                    raise Interrupted("verification interrupted")
                hasher.update(block)
                self.task.advance(len(block))
            if tail:
                hasher.update(tail)
        finally:
            hashes = hasher.close()
        return hashes


def qemu_rounding(declared: int, other: ImageStream) -> str | None:
    """How QEMU presents a media size that is not a whole number of sectors, when ``other``
    is QEMU and its size is ``declared`` rounded to a sector (QEMU counts a disk in sectors:
    VDI rounds the header's size up, QCOW and QCOW2 round it down); ``None`` for any other
    pair of sizes, which stays a mismatch."""
    from bitwitness.images.qemu import QemuNbdStream

    size = other.size
    if not isinstance(other, QemuNbdStream) or not declared % SECTOR or size == declared:
        return None
    down = declared - declared % SECTOR
    if size not in (down, down + SECTOR):
        return None
    how = "up" if size > declared else "down"
    return (f"the declared media size, {declared} bytes, is not a whole number of {SECTOR}-byte "
            f"sectors; QEMU rounds it {how} to {size} bytes")


def _compare_rounded(first: ImageStream, other: ImageStream, note: str,
                     hashing: _Hashing) -> tuple[dict[str, str], str]:
    """Hashes over the bytes both readers present, made comparable with the first reader's:
    QEMU's first ``min`` bytes, followed (QEMU rounding down) by the first reader's last few
    bytes, which QEMU leaves out. Equal hashes then mean equal bytes over the common length.

    QEMU's bytes past the declared size (rounding up) are no media: they are said, zeros or
    not. Not zeros, they are what the image stores in its last block past the declared end (a
    header whose size was cut after the data was written); QEMU shows them where the first
    reader, holding to the declared size, does not, which is no disagreement about the
    media. Returns the hashes and the note saying what was compared."""
    declared, size = first.size, other.size
    common = min(declared, size)
    tail = first.pread(common, declared - common) if size < declared else b""
    hashes = hashing.hashes(other, end=common, tail=tail)
    if size > declared:
        extra = other.pread(declared, size - declared)
        nonzero = len(extra) - extra.count(0)
        past = ("zeros" if not nonzero else
                f"not zeros ({nonzero} non-zero bytes): the image stores bytes past its "
                "declared end, which are not part of the media")
        said = (f"the {declared} bytes both present are compared; QEMU's {size - declared} "
                f"more are {past}")
    else:
        said = (f"the {size} bytes both present are compared (the hashes shown add the first "
                f"reader's last {declared - size} bytes, which QEMU leaves out)")
    return hashes, f"{note}: {said}"


def _read_through(other: ImageStream, stream: ImageStream, *, reader: str,
                  computed: dict[str, str], hashing: _Hashing,
                  notes: list[str]) -> ReaderCheck:
    """Hash the second reader's media and compare it with the first pass (``stream``'s size,
    ``computed`` hashes); a size QEMU merely rounds is no difference (:func:`qemu_rounding`)."""
    with other:
        size = other.size
        rounding = qemu_rounding(stream.size, other)
        if rounding is None:
            hashes = hashing.hashes(other)
        else:
            hashes, note = _compare_rounded(stream, other, rounding, hashing)
            notes.append(f"second reader {reader}: {note}")
    differences = []
    if size != stream.size and rounding is None:
        differences.append(f"media size: first reader {stream.size}, {reader} {size}")
    for alg in sorted(hashes):
        if computed.get(alg) != hashes[alg]:
            differences.append(f"computed {alg}: first reader {computed.get(alg)}, "
                               f"{reader} {hashes[alg]}")
    return ReaderCheck(reader=reader, media_size=size, hashes=hashes, stored_hashes={},
                       agree=not differences, differences=tuple(differences))


def reader_check(fmt: Any, path: Path, stream: ImageStream, algorithms: Sequence[str], *,
                 computed: dict[str, str], task: ProgressTask,
                 cancel: threading.Event | None = None,
                 notes: list[str] | None = None) -> ReaderCheck | None:
    """Re-read the media through the second reader and compare; ``None`` when there is none.
    :class:`NoSecondReader` (the reader cannot read this image, and says why) is raised.
    ``notes`` receives what the caller must say about the comparison: why this reader was
    chosen (``details["why"]``), and what was compared where QEMU rounds a size that is not
    a whole number of sectors (:func:`qemu_rounding`)."""
    said = notes if notes is not None else []
    try:
        try:
            other = second_reader(fmt, path, stream)
        except NoSecondReader:
            raise  # the caller notes why there is none for this image
        except (BitWitnessError, OSError) as exc:
            return ReaderCheck(reader="second reader", media_size=None, hashes={},
                               stored_hashes={}, agree=False, error=str(exc),
                               differences=(f"the second reader cannot open the image: {exc}",))
        if other is None:
            return None
        details = other.info.details
        reader = str(details.get("reader", type(other).__name__))
        if details.get("why"):
            said.append(f"second reader {reader}: {details['why']}")
        try:
            return _read_through(other, stream, reader=reader, computed=computed,
                                 hashing=_Hashing(algorithms, task, cancel), notes=said)
        except NoSecondReader:
            raise  # found while reading (pyaff4's LZ4 chunks): noted like one found at open
        except (BitWitnessError, OSError) as exc:
            if isinstance(exc, Interrupted):
                raise
            return ReaderCheck(reader=reader, media_size=None, hashes={}, stored_hashes={},
                               agree=False, error=str(exc),
                               differences=(f"{reader} could not read the image: {exc}",))
    finally:
        task.finish()
