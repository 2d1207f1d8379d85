"""Continuing an interrupted E01 set written by :class:`~bitwitness.ewf.writer.EwfWriter`.

What survives an interruption is what the format can prove: complete segments (ending in ``next``)
and, in the last segment, complete sectors groups (sectors section finished, ``table`` and an
identical ``table2`` written). Everything after the last such group is cut off; a last segment
that does not even hold its ``data`` section is deleted and written again. The writer that comes
back continues with the next chunk; its caller re-hashes the kept media by reading it back
(``open_ewf(first_segment, allow_incomplete=True).scan(end=durable)``), since hash state cannot be
stored in the image.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from bitwitness.errors import IncompleteImageError, UsageError
from bitwitness.ewf import structures as st
from bitwitness.ewf.chunks import Compression
from bitwitness.ewf.gather import GatherWriter
from bitwitness.ewf.layout import ChunkGroup, load_layout
from bitwitness.ewf.naming import segment_path

if TYPE_CHECKING:
    from bitwitness.ewf.writer import EwfWriter


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
    table_size = st.DESCRIPTOR_SIZE + st.TABLE_HEADER_SIZE + 4 * len(group.entries) + 4
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


def _infer_compression(level: int, groups: list[ChunkGroup]) -> Compression:
    if level == 2:
        return Compression.BEST
    if level == 1:
        return Compression.FAST
    if any(e & st.COMPRESSED_FLAG for g in groups for e in g.entries):
        return Compression.EMPTY
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
        if limit is not None and group.first_chunk + len(group.entries) > limit:
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
    within = [g.segment for g in groups if g.first_chunk + len(g.entries) <= limit]
    return min(max(within, default=0), segments - 1)


def resume_writer(cls: type[EwfWriter], base: Path, *, segment_size: int,
                  compression: Compression | None,
                  keep_media: int | None = None) -> tuple[EwfWriter, int]:
    """See :meth:`EwfWriter.resume`."""
    first_segment = segment_path(base, 1)
    if not first_segment.exists():
        raise UsageError(f"{first_segment}: nothing to resume (no such file)")
    layout = load_layout(first_segment, allow_incomplete=True)
    if layout.complete:
        raise UsageError(f"{first_segment}: the image is already complete; nothing to resume")
    volume = layout.volume
    assert volume is not None
    last = len(layout.segments) - 1
    limit = None
    if keep_media is not None:  # the caller can vouch for this much only (its last checkpoint)
        chunk_size = volume.bytes_per_sector * volume.sectors_per_chunk
        limit = -(-keep_media // chunk_size)
        last = _segment_for_limit(layout.groups, limit, len(layout.segments))
    dropped = layout.segments[last + 1:]
    kept, keep_point, in_last = _kept_groups(layout.groups, layout.segments[last], last, limit)
    drop_last = keep_point is None
    if drop_last and last == 0:
        raise IncompleteImageError("the interrupted image holds no media yet; start again "
                                   "(with --overwrite)", path=first_segment)
    last_path = layout.segments[last]
    writer = cls.__new__(cls)
    writer._configure(base, media_size=volume.media_size or None,
                      bytes_per_sector=volume.bytes_per_sector,
                      sectors_per_chunk=volume.sectors_per_chunk,
                      compression=compression or _infer_compression(volume.compression_level,
                                                                    kept),
                      segment_size=segment_size)
    writer.sync = True
    writer._volume = volume
    writer._header2 = writer._header = b""
    chunks = sum(len(g.entries) for g in kept)
    media = chunks * writer.chunk_size
    if volume.media_size:
        media = min(media, volume.media_size)
    writer._chunks = chunks
    writer._media_bytes = media
    writer._closed_media = media
    writer._short_seen = media % writer.chunk_size != 0
    paths = layout.segments[:last] if drop_last else layout.segments[:last + 1]
    writer._paths = list(paths)
    for index, path in enumerate(paths):
        end = _volume_body_end(path)
        assert end is not None
        writer._volume_offsets.append((index, end - st.VOLUME_BODY_SIZE))
    for later in dropped:  # beyond what the caller can vouch for: written again
        later.unlink()
    _continue_in(writer, last_path, keep_point, in_last)
    return writer, media


def _continue_in(writer: EwfWriter, last_path: Path, keep_point: int | None,
                 in_last: int) -> None:
    """Position ``writer`` to append to ``last_path`` cut at ``keep_point`` (``None``: the
    segment is written again from scratch)."""
    if keep_point is None:
        last_path.unlink()
        writer._open_segment()
        return
    fh = last_path.open("r+b", buffering=0)
    fh.truncate(keep_point)
    fh.seek(keep_point)
    writer._file = GatherWriter(fh, background=True)
    writer._pos = keep_point
    writer._remaining = writer.segment_size - st.DESCRIPTOR_SIZE - keep_point
    writer._groups_in_segment = in_last
