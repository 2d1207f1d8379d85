"""The independent second reader for every container format that has one (EWF has libewf).

The format that opened the image names its second reader (``second_reader`` on the format
object): libvhdi or libvmdk where our own VHD/VMDK reader read the image, QEMU (through
``qemu-nbd``) where a libyal binding did. The media is hashed again through it and everything
it produces (media size, hashes) is compared with the first pass; a disagreement is a MISMATCH,
never averaged away. A reader that cannot be started or fails is recorded, not raised; a reader
that knows it cannot read this image (``NoSecondReader``: pyaff4 and deflate chunks) is noted.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bitwitness.errors import BitWitnessError, Interrupted, NoSecondReader
from bitwitness.hashing import ThreadedHasher
from bitwitness.progress import ProgressTask
from bitwitness.stream import ImageStream
from bitwitness.verify.model import ReaderCheck

BLOCK_SIZE = 4 << 20


def second_reader(fmt: Any, path: Path, stream: ImageStream) -> ImageStream | None:
    """The image opened by the format's independent reader; ``None`` where it has none."""
    opener = getattr(fmt, "second_reader", None)
    return None if opener is None else opener(path, stream)


def _hash(stream: ImageStream, algorithms: Sequence[str], task: ProgressTask,
          cancel: threading.Event | None) -> dict[str, str]:
    hasher = ThreadedHasher(algorithms, depth=4)
    try:
        for block in stream.iter_blocks(BLOCK_SIZE):
            if cancel is not None and cancel.is_set():
                raise Interrupted("verification interrupted")
            hasher.update(block)
            task.advance(len(block))
    finally:
        hashes = hasher.close()
    return hashes


def reader_check(fmt: Any, path: Path, stream: ImageStream, algorithms: Sequence[str], *,
                 computed: dict[str, str], task: ProgressTask,
                 cancel: threading.Event | None = None) -> ReaderCheck | None:
    """Re-read the media through the second reader and compare; ``None`` when there is none.
    :class:`NoSecondReader` (the reader cannot read this image, and says why) is raised."""
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
        reader = str(other.info.details.get("reader", type(other).__name__))
        try:
            with other:
                size = other.size
                hashes = _hash(other, algorithms, task, cancel)
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
    differences = []
    if size != stream.size:
        differences.append(f"media size: first reader {stream.size}, {reader} {size}")
    for alg in sorted(hashes):
        if computed.get(alg) != hashes[alg]:
            differences.append(f"computed {alg}: first reader {computed.get(alg)}, "
                               f"{reader} {hashes[alg]}")
    return ReaderCheck(reader=reader, media_size=size, hashes=hashes, stored_hashes={},
                       agree=not differences, differences=tuple(differences))
