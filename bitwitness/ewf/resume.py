"""Continuing an interrupted E01 set written by :class:`~bitwitness.ewf.writer.EwfWriter`.

What survives an interruption is what the format can prove: complete segments (ending in ``next``)
and, in the last segment, complete sectors groups (sectors section finished, ``table`` and an
identical ``table2`` written). Everything after the last such group is cut off; a last segment
that does not even hold its ``data`` section is deleted and written again. :func:`find_resume_point`
reads the files and says what may be kept (a :class:`ResumePoint`) without changing anything; the
writer restores its own state from it (:meth:`EwfWriter.resume`) and continues with the next
chunk. Its caller re-hashes the kept media by reading it back
(``open_ewf(first_segment, allow_incomplete=True).scan(end=durable)``), since hash state cannot be
stored in the image.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from pathlib import Path

from bitwitness.errors import IncompleteImageError, UsageError
from bitwitness.evidence_io import open_readonly
from bitwitness.ewf import structures as st
from bitwitness.ewf.chunks import Compression
from bitwitness.ewf.layout import ChunkGroup, load_layout, read_entries
from bitwitness.ewf.naming import segment_path


def _volume_body_end(path: Path) -> int | None:
    """File offset just after the volume/data section of a segment, ``None`` when absent."""
    with path.open("rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        offset = st.FILE_HEADER_SIZE
        while offset + st.DESCRIPTOR_SIZE <= size:
            fh.seek(offset)
            try:
                desc = st.unpack_descriptor(fh.read(st.DESCRIPTOR_SIZE), offset)
            except ValueError:
                return None
            if desc.type in ("volume", "data", "disk"):
                end = desc.offset + desc.size
                return end if end <= size else None
            if desc.next <= offset:
                return None
            offset = desc.next
    return None


def _group_end(path: Path, group: ChunkGroup) -> int | None:
    """Offset after the group's table2 when table2 is complete and equals table, else ``None``."""
    table_size = st.DESCRIPTOR_SIZE + st.TABLE_HEADER_SIZE + 4 * group.count + 4
    with path.open("rb") as fh:
        fh.seek(group.end)
        both = fh.read(2 * table_size)
    if len(both) < 2 * table_size:
        return None
    table, table2 = both[:table_size], both[table_size:]
    try:
        first = st.unpack_descriptor(table[:st.DESCRIPTOR_SIZE], group.end)
        second = st.unpack_descriptor(table2[:st.DESCRIPTOR_SIZE], group.end + table_size)
    except ValueError:
        return None
    if (first.type, second.type) != ("table", "table2") or table[76:] != table2[76:]:
        return None
    return group.end + 2 * table_size


def _infer_compression(level: int, groups: list[ChunkGroup],
                       segments: list[Path]) -> Compression:
    """The volume's level; at level 0, EMPTY when any kept chunk is compressed (the groups'
    entries are read again for that, one group at a time)."""
    if level == 2:
        return Compression.BEST
    if level == 1:
        return Compression.FAST
    for segment, in_segment in itertools.groupby(groups, key=lambda g: g.segment):
        path = segments[segment]
        fd = open_readonly(path)  # once per segment file, not per group
        try:
            if any(e & st.COMPRESSED_FLAG
                   for group in in_segment for e in read_entries(fd, group, path)):
                return Compression.EMPTY
        finally:
            os.close(fd)
    return Compression.NONE


def _kept_groups(groups: list[ChunkGroup], last_path: Path, last: int,
                 limit: int | None = None) -> tuple[list[ChunkGroup], int | None, int]:
    """Groups to keep, where to cut the last segment (``None``: drop it), groups kept in it.

    ``limit``: keep no group that reaches beyond this many chunks.
    """
    kept = [g for g in groups if g.segment < last]
    keep_point = _volume_body_end(last_path)
    in_last = 0
    if keep_point is None:
        return kept, None, 0
    for group in (g for g in groups if g.segment == last):
        if limit is not None and group.first_chunk + group.count > limit:
            break
        end = _group_end(last_path, group)
        if end is None:
            break
        kept.append(group)
        keep_point = end
        in_last += 1
    return kept, keep_point, in_last


def _segment_for_limit(groups: list[ChunkGroup], limit: int, segments: int) -> int:
    """The segment to continue in when only the first ``limit`` chunks may be kept: the one
    holding the last group within the limit (later segments are dropped), or the first."""
    within = [g.segment for g in groups if g.first_chunk + g.count <= limit]
    return min(max(within, default=0), segments - 1)


@dataclass(frozen=True)
class ResumePoint:
    """Where an interrupted set can be continued, as its files prove it (nothing changed yet).

    :class:`~bitwitness.ewf.writer.EwfWriter` restores its state from this and makes the files
    match it: ``drop`` deleted, the last kept segment cut at ``continue_at`` (``None``: that
    segment is written again from its start).
    """

    base: Path
    volume: st.Volume  #: as the first segment declares it (geometry, set identifier)
    compression: Compression  #: what the kept chunks were written with
    chunks: int  #: complete chunks kept
    media_bytes: int  #: media bytes they hold
    segments: tuple[Path, ...]  #: kept segments, in order (the last one is continued)
    volume_offsets: tuple[tuple[int, int], ...]  #: (segment index, volume body offset) of each
    continue_at: int | None  #: file offset to continue the last kept segment at
    groups_in_last: int  #: sectors groups kept in that segment
    drop: tuple[Path, ...]  #: segments written beyond what may be kept, to delete


def find_resume_point(base: Path, *, keep_media: int | None = None) -> ResumePoint:
    """Read the interrupted set at ``base``; see :meth:`EwfWriter.resume`."""
    first_segment = segment_path(base, 1)
    if not first_segment.exists():
        raise UsageError(f"{first_segment}: nothing to resume (no such file)")
    layout = load_layout(first_segment, allow_incomplete=True)
    if layout.complete:
        raise UsageError(f"{first_segment}: the image is already complete; nothing to resume")
    volume = layout.volume
    assert volume is not None
    chunk_size = volume.bytes_per_sector * volume.sectors_per_chunk
    last = len(layout.segments) - 1
    limit = None
    if keep_media is not None:  # the caller can vouch for this much only (its last checkpoint)
        limit = -(-keep_media // chunk_size)
        last = _segment_for_limit(layout.groups, limit, len(layout.segments))
    dropped = tuple(layout.segments[last + 1:])
    kept, keep_point, in_last = _kept_groups(layout.groups, layout.segments[last], last, limit)
    if keep_point is None and last == 0:
        raise IncompleteImageError("the interrupted image holds no media yet; start again "
                                   "(with --overwrite)", path=first_segment)
    chunks = sum(g.count for g in kept)
    media = chunks * chunk_size
    if volume.media_size:
        media = min(media, volume.media_size)
    paths = layout.segments[:last] if keep_point is None else layout.segments[:last + 1]
    offsets = []
    for index, path in enumerate(paths):
        end = _volume_body_end(path)
        assert end is not None
        offsets.append((index, end - st.VOLUME_BODY_SIZE))
    rewrite = (layout.segments[last],) if keep_point is None else ()
    return ResumePoint(
        base=base, volume=volume,
        compression=_infer_compression(volume.compression_level, kept, layout.segments),
        chunks=chunks,
        media_bytes=media, segments=tuple(paths), volume_offsets=tuple(offsets),
        continue_at=keep_point, groups_in_last=in_last, drop=dropped + rewrite)
