"""Why bytes a file system hands out for a file may not be that file's content.

Doubts that do not stop the bytes from being read, but must be said with them:

* some lie in sectors the acquisition could not read (below);
* a deleted file's blocks are allocated again (NTFS from ``$Bitmap``, ext from its block
  bitmaps; see :meth:`~bitwitness.report.browse.filesystem.FileSystem.overwritten_note`);
* a FAT file's cluster chain loops, and TSK reads the same clusters again, or an exFAT file's
  directory entry is in use where a damaged bitmap marks it free (see
  :meth:`~bitwitness.report.browse.filesystem.FileSystem.allocation_note`);
* the file system stores the data encrypted (NTFS EFS, ext4 fscrypt): the bytes are the
  ciphertext (:meth:`~bitwitness.report.browse.filesystem.FileSystem.encrypted_note`);
* an HFS+ file is compressed with a method BitWitness does not decode (LZBITMAP, an
  uncompressed-record type, a dataless placeholder, an unknown type): no byte of it is handed out
  (:meth:`~bitwitness.report.browse.filesystem.FileSystem.compressed_note`).

An acquisition zero-fills a sector it cannot read after its retries and lists it (E01 error2,
the acquisition log). The image holds those zeros and nothing else, so ``cat``, ``export`` and
``stat`` would hand them out as a file's content with no sign that they are not. Here the list
``info`` shows is mapped onto a file's data runs, so that each command says, for that file, how
many of its bytes are zeros standing in for unreadable sectors and which sectors they are.

Only file systems read straight from the media are mapped (a partition-table row, as The Sleuth
Kit reads it): inside a decrypted volume or a shadow-copy store a file's blocks are not at a
fixed place of the media, so no claim is made there.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from bitwitness.errors import BitWitnessError
from bitwitness.ranges import merge_ranges
from bitwitness.report.browse.entries import Entry
from bitwitness.stream import ImageStream

#: At most this many sector ranges are named in one note; the count of bytes covers them all.
_NAMED = 8


@dataclass(frozen=True)
class UnreadableSectors:
    """The media's unreadable sectors, as (first, last) inclusive pairs in media order."""

    media: ImageStream  #: the stream the sectors are of; file systems on others are not mapped
    sector_size: int
    ranges: tuple[tuple[int, int], ...]

    def note(self, fs: Any, entry: Entry) -> str | None:
        """Why some of ``entry``'s bytes are not its content, or None when none lies in an
        unreadable sector (or where its data cannot be placed on the media)."""
        if not self.ranges or getattr(getattr(fs, "image", None), "stream", None) is not self.media:
            return None
        try:
            extents = fs.media_extents(entry)
        except (BitWitnessError, AttributeError):
            return None  # not a file system whose runs we read: nothing is claimed
        if not extents:
            return None
        hit, sectors = self.overlap(extents)
        if not hit:
            return None
        named = ", ".join(f"{a}-{b}" if a != b else str(a) for a, b in sectors[:_NAMED])
        more = f" and {len(sectors) - _NAMED} more range(s)" if len(sectors) > _NAMED else ""
        return (f"{hit} byte(s) of its data lie in media sectors the acquisition could not read "
                f"(zero-filled in the image): sectors {named}{more}")

    def overlap(self, extents: Iterable[tuple[int, int]]) -> tuple[int, list[tuple[int, int]]]:
        """Bytes of ``extents`` (media byte offset, length) inside unreadable sectors, and those
        sectors as (first, last) ranges, merged and in media order.

        Each extent looks only at the ranges it can meet (a bisection of the merged ranges):
        a failing drive's log may list many thousands, and export asks for every file."""
        size = self.sector_size
        ranges = self._merged
        firsts = [first for first, _ in ranges]
        hit = 0
        sectors: list[tuple[int, int]] = []
        for start, length in sorted(extents):
            end = start + length
            at = max(0, bisect_right(firsts, start // size) - 1)
            while at < len(ranges) and ranges[at][0] * size < end:
                first, last = ranges[at]
                low, high = max(start, first * size), min(end, (last + 1) * size)
                if low < high:
                    hit += high - low
                    sectors.append((low // size, (high - 1) // size))
                at += 1
        return hit, _merge(sectors)

    @cached_property
    def _merged(self) -> list[tuple[int, int]]:
        return _merge(self.ranges)


def _merge(ranges: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """(first, last) ranges sorted, those that touch or overlap joined: the merging every
    part uses (:func:`~bitwitness.ranges.merge_ranges`, which counts runs as (first, count))."""
    return [(first, first + count - 1)
            for first, count in merge_ranges((first, last - first + 1) for first, last in ranges)]


def unreadable_sectors(image: Path, media: ImageStream,
                       forced: str | None = None) -> UnreadableSectors | None:
    """The unreadable sectors ``info`` lists for ``image`` (E01 error2 and the acquisition logs
    beside it), or None when it lists none or the image cannot be described."""
    from bitwitness.verify.info import image_info

    try:
        ranges: Sequence[Any] = image_info(image, forced).error_ranges
    except (BitWitnessError, OSError):
        return None  # the image opened for reading; what info cannot say is not claimed
    if not ranges:
        return None
    size = ranges[0].sector_size  # logs may count in other sector sizes than the image's
    return UnreadableSectors(media, size, tuple(
        (r.first_sector * r.sector_size // size,
         ((r.last_sector + 1) * r.sector_size - 1) // size) for r in ranges))


def doubts(fs: Any, entry: Entry, unreadable: UnreadableSectors | None) -> list[str]:
    """Every doubt about ``entry``'s bytes (empty when there is none), for ``cat``, ``stat``
    and ``export``; file systems without a way to tell add none."""
    found: list[str] = []
    overwritten = getattr(fs, "overwritten_note", None)
    if overwritten is not None:
        # try/except, not contextlib.suppress: export asks once per file, and suppress's
        # context manager cost more than the usual answer (not deleted: no note)
        try:
            note = overwritten(entry)
        except BitWitnessError:
            note = None  # nothing claimed where $Bitmap cannot be read
        if note is not None:
            found.append(note)
    allocation = getattr(fs, "allocation_note", None)
    if allocation is not None:
        try:
            note = allocation(entry)
        except BitWitnessError:
            note = None  # nothing claimed where the runs cannot be read
        if note is not None:
            found.append(note)
    encrypted = getattr(fs, "encrypted_note", None)
    if encrypted is not None and (note := encrypted(entry)) is not None:
        found.append(note)
    compressed = getattr(fs, "compressed_note", None)
    if compressed is not None and (note := compressed(entry)) is not None:
        found.append(note)
    if unreadable is not None and (note := unreadable.note(fs, entry)) is not None:
        found.append(note)
    return found



def short_read_note(fs: Any, entry: Entry, read: int) -> str | None:
    """Why ``read`` bytes are not all of ``entry``, or None when they are (or it is a link,
    whose bytes are its target's name, not its recorded size, a stream sparse throughout:
    see :meth:`~bitwitness.report.browse.filesystem.FileSystem.sparse_throughout`, or an HFS+
    file whose compression no decoder here reads, which ``compressed_note`` says already).

    A file system can hand out fewer bytes than the size it records for a file (The Sleuth Kit
    stops a read where a run list or a decompressor gives no more) without any error: the
    output would then pass as the whole file, its hash as the file's hash. Said instead."""
    if read >= entry.size or entry.kind == "link":
        return None
    sparse = getattr(fs, "sparse_throughout", None)
    if sparse is not None and sparse(entry):
        return None
    compressed = getattr(fs, "compressed_note", None)
    if compressed is not None and compressed(entry) is not None:
        return None  # said already: the compression nothing here decodes
    return (f"only {read:,} of its {entry.size:,} bytes could be read: the file system gave no "
            f"more")
