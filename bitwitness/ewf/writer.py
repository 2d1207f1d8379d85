"""Streaming E01 writer: the EnCase 6 layout, as ewfacquire writes it (docs/EWF.md §8).

Chunks arrive strictly in media order, already encoded (:func:`encode_chunk` runs in the caller's
worker pool). :meth:`EwfWriter.write_encoded` gathers a sectors group in memory and writes it
whole once it closes: its ``sectors`` descriptor (whose size is known only then), the chunks, then
``table`` and ``table2``, through a :class:`~bitwitness.ewf.gather.GatherWriter` (``writev``).
Every byte is written once, final and in file order, so the writer can hash each segment file as
it writes it (``file_hashes``) instead of reading it back afterwards. Hashes and read-error
ranges are handed over at :meth:`EwfWriter.close`, which writes error2, digest, hash and finally
``done``: until then the set is INCOMPLETE for every reader, never a valid image. An interrupted
set can be continued with :meth:`EwfWriter.resume` (see :mod:`bitwitness.ewf.resume`).
"""

from __future__ import annotations

import contextlib
import os
import re
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Self

from bitwitness.errors import OutputExistsError, UsageError
from bitwitness.ewf import structures as st
from bitwitness.ewf.chunks import VOLUME_LEVEL, Compression, EncodedChunk, encode_chunk
from bitwitness.ewf.gather import GatherWriter
from bitwitness.ewf.headers import (
    EwfMetadata,
    MediaType,
    compress_header,
    header2_text,
    header_fields,
    header_text,
)
from bitwitness.ewf.naming import segment_path, set_members, suffix_number
from bitwitness.ewf.options import DEFAULT_SEGMENT_SIZE
from bitwitness.ranges import merge_ranges

if TYPE_CHECKING:
    from bitwitness.ewf.resume import ResumePoint

MIN_SEGMENT_SIZE = 1 << 20
#: Reserved per sectors group by ewfacquire's budget rule (docs/EWF.md §2.3): 3 descriptors,
#: 2 table checksums.
GROUP_RESERVE = 3 * st.DESCRIPTOR_SIZE + 2 * 4
#: When a sectors/table/table2 group closes: once its stored chunks reach ``GROUP_CHUNKS`` full
#: chunks' worth of bytes (4 MiB with 32 KiB chunks), once it holds ``GROUP_CHUNKS`` chunks and
#: a loan of the caller's buffer (see :meth:`EwfWriter.write_chunks`), and at the latest at
#: ``GROUP_MAX_CHUNKS`` chunks. Why a group of raw chunks closes at 128: a group is held in
#: memory until it closes, and the acquisition lends its block buffers for the group's raw
#: chunks until then; the sooner a group is written, the more of it is still in the CPU caches
#: when it is hashed and written (the acquisition bench: ~5% faster than 1024-chunk groups,
#: which would hold 32 MiB). Why compressed chunks may fill a group up to 4 MiB: a group costs
#: ~300 bytes of descriptors in the file and a section walk for every reader at every open; a
#: terabyte of zeros (~50 bytes per chunk) in 128-chunk groups was 262 144 groups, whose walk
#: took ``info`` 3.6 s (30 s on a loaded machine) and 235 MiB; in groups of ``GROUP_MAX_CHUNKS``
#: it is 2 048, walked in ~0.2 s. ``--resume`` keeps everything up to the last closed group, so
#: a crash inside a large group of zeros re-reads up to 512 MiB of media.
GROUP_CHUNKS = 128
#: The most chunks in one group: a quarter of the 65 534-entry limit (``st.MAX_TABLE_ENTRIES``)
#: that EnCase 6 and libewf keep (ewfacquire 20140813 fills its tables to it). Why not more: the
#: open group holds a piece per chunk, and a crash loses it whole (see above), while fewer
#: groups would no longer make an open measurably faster.
GROUP_MAX_CHUNKS = 16_375
_HEX = re.compile(r"^[0-9a-fA-F]*$")


@dataclass(frozen=True)
class EwfWriteResult:
    """What a finished E01 set holds: every file, the media geometry, the hashes stored."""

    segments: tuple[Path, ...]
    media_size: int
    chunk_count: int
    sector_count: int
    bytes_per_sector: int
    sectors_per_chunk: int
    compression: str
    guid: str
    md5: str
    sha1: str
    error_ranges: tuple[tuple[int, int], ...]
    stored_size: int  #: total bytes of all segment files
    #: Hashes of segment files computed while writing them (``file_hashes`` algorithms); a file
    #: that was patched or continued after a resume is absent: read it back to hash it.
    file_hashes: dict[Path, dict[str, str]] = field(default_factory=dict)


def _check_hex(name: str, value: str, length: int) -> bytes:
    if len(value) != length or not _HEX.match(value):
        raise UsageError(f"{name} must be {length} hexadecimal digits, got {value!r}")
    return bytes.fromhex(value)


class EwfWriter:
    """Write one E01 set ``base.E01``, ``base.E02``, ...; use as a context manager or close().

    Not thread-safe: one thread calls :meth:`write_encoded` in media order (encoding may happen
    anywhere). ``sync`` fsyncs each segment as it is finished, so that what :meth:`resume`
    keeps after a power loss is really on disk.
    """

    def __init__(self, base: Path, *, media_size: int | None, metadata: EwfMetadata,
                 bytes_per_sector: int = 512, sectors_per_chunk: int = 64,
                 compression: Compression = Compression.FAST,
                 segment_size: int = DEFAULT_SEGMENT_SIZE,
                 media_type: MediaType = MediaType.FIXED, physical: bool = True,
                 overwrite: bool = False, sync: bool = True,
                 guid: bytes | None = None, file_hashes: Sequence[str] = (),
                 resume_from: ResumePoint | None = None, direct: bool = True) -> None:
        """``guid``: the 16-byte set identifier (Windows byte order); random when ``None``.
        Two copies written in one pass share it, so that they are byte-identical.
        ``file_hashes``: algorithms to hash each segment file with while writing it (see
        :attr:`EwfWriteResult.file_hashes`). ``resume_from``: continue that interrupted set
        (see :meth:`resume`) instead of creating one. ``direct``: write new segment files around
        the page cache (``O_DIRECT``, see :class:`~bitwitness.ewf.gather.GatherWriter`) where
        their file system allows it; the bytes are the same either way."""
        if guid is not None and len(guid) != 16:
            raise ValueError("an EWF set identifier is 16 bytes")
        self._configure(base, media_size=media_size, bytes_per_sector=bytes_per_sector,
                        sectors_per_chunk=sectors_per_chunk, compression=compression,
                        segment_size=segment_size)
        self.sync = sync
        self.direct = direct
        fields = header_fields(metadata)
        self._header2 = compress_header(header2_text(fields))
        self._header = compress_header(header_text(fields))
        if resume_from is not None:
            self._file_algorithms: tuple[str, ...] = ()  # continued files are read back to hash
            self._continue(resume_from)
            return
        self._file_algorithms = tuple(file_hashes)
        existing = sorted(set_members(segment_path(self.base, 1)).values())
        if existing and not overwrite:
            raise OutputExistsError(existing[0])
        for path in existing:
            path.unlink()
        self._volume = st.Volume(
            media_type=st.MEDIA_TYPE_CODES[MediaType(media_type).value],
            chunk_count=self._expected_chunks or 0, sectors_per_chunk=sectors_per_chunk,
            bytes_per_sector=bytes_per_sector,
            sector_count=(media_size or 0) // bytes_per_sector,
            media_flags=st.FLAG_IMAGE | (st.FLAG_PHYSICAL if physical else 0),
            compression_level=VOLUME_LEVEL[self.compression],
            error_granularity=sectors_per_chunk, guid=guid or uuid.uuid4().bytes_le)
        self._open_segment()

    # --- setup shared by a new set and a continued one --------------------------------------

    def _configure(self, base: Path, *, media_size: int | None, bytes_per_sector: int,
                   sectors_per_chunk: int, compression: Compression, segment_size: int) -> None:
        base = Path(base)
        if suffix_number(base.suffix) is not None:
            base = base.with_suffix("")
        if bytes_per_sector not in (512, 1024, 2048, 4096):
            raise UsageError(f"bytes per sector must be 512, 1024, 2048 or 4096, "
                             f"not {bytes_per_sector}")
        if sectors_per_chunk < 16 or sectors_per_chunk > 32768 or (
                sectors_per_chunk & (sectors_per_chunk - 1)):
            raise UsageError(f"sectors per chunk must be a power of two from 16 to 32768, "
                             f"not {sectors_per_chunk}")
        chunk_size = bytes_per_sector * sectors_per_chunk
        if media_size is not None:
            if media_size <= 0:
                raise UsageError("the media is empty (0 bytes): there is nothing to image")
            if media_size % bytes_per_sector:
                raise UsageError(f"media size {media_size} is not a whole number of "
                                 f"{bytes_per_sector}-byte sectors; pad the last sector")
        if segment_size < MIN_SEGMENT_SIZE:
            raise UsageError(f"segment size must be at least 1 MiB, not {segment_size} bytes")
        if segment_size < 4 * chunk_size:
            raise UsageError(f"segment size {segment_size} is too small for "
                             f"{chunk_size}-byte chunks")
        self.base = base
        self.chunk_size = chunk_size
        self._caps = self._group_caps()
        self.bytes_per_sector = bytes_per_sector
        self.sectors_per_chunk = sectors_per_chunk
        self.compression = Compression(compression)
        self.segment_size = segment_size
        self.media_size = media_size
        self._expected_chunks = -(-media_size // chunk_size) if media_size else None
        self._paths: list[Path] = []
        self._file: GatherWriter | None = None
        self._pos = 0
        self._remaining = 0
        self._volume_offsets: list[tuple[int, int]] = []  # (segment index, body offset)
        self._group_start: int | None = None
        self._group_pieces: list[bytes | bytearray | memoryview] = []
        #: what to call once the open group is on the file: buffers lent by ``keep``
        self._group_releases: list[Callable[[], None]] = []
        self._groups_opened = 0
        self._entries = bytearray()
        self._groups_in_segment = 0
        self._chunks = 0
        self._media_bytes = 0
        self._closed_media = 0  #: media bytes in closed groups (on the file once drained)
        self._short_seen = False
        self._pending = bytearray()
        self._closed = False
        self._rewritten: set[int] = set()
        self._file_algorithms = ()
        self._file_digests: dict[int, dict[str, str]] = {}

    def _continue(self, point: ResumePoint) -> None:
        """Take the state the kept part of an interrupted set implies, and make its files match:
        segments beyond it deleted, the last kept one cut and reopened (or written again)."""
        self._volume = point.volume
        self._chunks = point.chunks
        self._media_bytes = self._closed_media = point.media_bytes
        self._short_seen = point.media_bytes % self.chunk_size != 0
        self._paths = list(point.segments)
        self._volume_offsets = list(point.volume_offsets)
        for path in point.drop:
            path.unlink()
        following = segment_path(self.base, len(self._paths) + 1)
        with contextlib.suppress(FileNotFoundError):
            if following.stat().st_size < st.FILE_HEADER_SIZE:
                # the segment a full disk stopped before its file header was whole (0 bytes):
                # no segment (the reader skips it), and the one this run writes next
                following.unlink()
        if point.continue_at is None:
            self._open_segment()
            return
        fh = self._paths[-1].open("r+b", buffering=0)
        fh.truncate(point.continue_at)
        fh.seek(point.continue_at)
        self._file = GatherWriter(fh, background=True)
        self._pos = point.continue_at
        self._remaining = self.segment_size - st.DESCRIPTOR_SIZE - self._pos
        self._groups_in_segment = point.groups_in_last

    # --- segments and sections -------------------------------------------------------------

    @property
    def segments(self) -> list[Path]:
        """Segment files created so far, in order."""
        return list(self._paths)

    def make_durable(self) -> int:
        """Put every closed group on the disk (written and fsynced); returns the media bytes
        they hold, which :meth:`resume` (``keep_media``) can later be trusted with.

        Why: an acquisition checkpoints this number (with the read errors so far) in its log, so
        that a run killed without warning (SIGKILL, power loss) can still be resumed."""
        self._check_writable()
        if self._file is not None:
            self._file.drain()
            os.fsync(self._file.fileno())
        return self._closed_media

    def durable_soon(self) -> Callable[[], int]:
        """What :meth:`make_durable` does, without waiting here: returns a function that any
        thread may call, once, which waits until every group closed so far is on the disk
        (written and fsynced) and returns the media bytes they hold.

        Why: the acquisition's ordering thread calls this at each checkpoint and leaves the
        waiting to another thread, so that the pipeline keeps going while the disk catches up.
        """
        self._check_writable()
        media = self._closed_media
        if self._file is None:
            return lambda: media
        synced = self._file.sync_point()

        def wait() -> int:
            synced()
            return media
        return wait

    def _emit(self, data: bytes | bytearray | memoryview) -> None:
        assert self._file is not None
        self._file.write(data)
        self._pos += len(data)

    def _section(self, kind: str, body: bytes) -> None:
        size = st.DESCRIPTOR_SIZE + len(body)
        self._emit(st.pack_descriptor(kind, self._pos + size, size) + body)

    def _open_segment(self) -> None:
        number = len(self._paths) + 1
        path = segment_path(self.base, number)
        try:
            self._file = GatherWriter(path.open("xb", buffering=0), self._file_algorithms,
                                      background=True, direct=self.direct)
        except FileExistsError as exc:
            raise OutputExistsError(path) from exc
        except OSError as exc:
            raise UsageError(f"{path}: cannot create ({exc.strerror or exc})") from exc
        self._paths.append(path)
        self._pos = 0
        self._emit(st.pack_file_header(number))
        if number == 1:
            self._section("header2", self._header2)
            self._section("header2", self._header2)
            self._section("header", self._header)
            self._section("volume", st.pack_volume(self._volume))
        else:
            self._section("data", st.pack_volume(self._volume))
        self._volume_offsets.append((number - 1, self._pos - st.VOLUME_BODY_SIZE))
        self._remaining = self.segment_size - st.DESCRIPTOR_SIZE - self._pos
        self._groups_in_segment = 0

    def _close_segment(self) -> None:
        assert self._file is not None
        self._emit(st.pack_descriptor("next", self._pos, 0))
        self._finish_file()

    def _finish_file(self) -> None:
        assert self._file is not None
        self._file.drain()
        if self.sync:
            os.fsync(self._file.fileno())
        digests = self._file.hexdigests()
        if digests is not None:
            self._file_digests[len(self._paths) - 1] = digests
        self._file.close()
        self._file = None

    def _open_group(self) -> None:
        """Start a group in memory: its descriptor's place is kept, its bytes come at close."""
        self._group_start = self._pos
        self._pos += st.DESCRIPTOR_SIZE
        self._group_pieces = []
        self._entries = bytearray()
        self._groups_opened += 1
        self._remaining -= GROUP_RESERVE
        self._groups_in_segment += 1

    def _close_group(self) -> None:
        """Write the whole group: descriptor (now that its size is known), chunks, tables."""
        assert self._file is not None
        assert self._group_start is not None
        start = self._group_start
        self._file.write(st.pack_descriptor("sectors", self._pos, self._pos - start))
        for piece in self._group_pieces:
            self._file.write(piece)
        self._group_pieces = []
        body = st.pack_table(start, bytes(self._entries))
        self._section("table", body)
        self._section("table2", body)
        if self._group_releases:
            releases, self._group_releases = self._group_releases, []
            self._file.after_written(releases)
        self._group_start = None
        self._closed_media = self._media_bytes

    def _group_caps(self) -> tuple[int, int, int]:
        """(entry bytes with a loan, entry bytes without, stored bytes incl. the descriptor) at
        which the open group is full; see ``GROUP_CHUNKS``. Taken once, when the writer is made."""
        lent = 4 * min(GROUP_CHUNKS, st.MAX_TABLE_ENTRIES)
        most = 4 * min(max(GROUP_MAX_CHUNKS, GROUP_CHUNKS), st.MAX_TABLE_ENTRIES)
        return lent, most, st.DESCRIPTOR_SIZE + GROUP_CHUNKS * self.chunk_size

    def _group_full(self, stored: int) -> bool:
        """Whether the open group must close before a chunk of ``stored`` bytes is added: the
        one rule, asked for every chunk by :meth:`write_chunks`."""
        assert self._group_start is not None
        lent, most, span = self._caps
        held = self._pos - self._group_start
        return (len(self._entries) >= (lent if self._group_releases else most) or held >= span
                or held + stored > st.MAX_GROUP_SPAN)

    def _place(self, stored: int) -> None:
        """Open groups and segments as needed so that a chunk of ``stored`` bytes fits."""
        needed = self.chunk_size + 4
        if self._group_start is not None:
            if self._remaining < needed:
                self._close_group()
                self._close_segment()
                self._open_segment()
            elif self._group_full(stored):
                self._close_group()
        if self._group_start is None:
            if self._groups_in_segment and self._remaining - GROUP_RESERVE < needed:
                self._close_segment()
                self._open_segment()
            self._open_group()

    # --- chunks ----------------------------------------------------------------------------

    def write_encoded(self, chunk: EncodedChunk) -> None:
        """Append the next chunk in media order (all full-size but the very last)."""
        self.write_chunks((chunk,))

    def write_chunks(self, chunks: Iterable[EncodedChunk],
                     keep: Callable[[], Callable[[], None] | None] | None = None) -> None:
        """Append chunks in media order (all full-size but the very last).

        The acquisition calls this once per block (32 chunks of 1 MiB): the per-chunk work is
        kept to checks, placement and one table entry, on the thread that orders the pipeline.

        A raw chunk's body is a view of the caller's buffer, and a group is written only when it
        closes. Without ``keep`` the writer copies such a body. With it, the writer asks
        ``keep()`` to lend the buffer instead, once per group the views land in, and calls the
        function it returns when that group is on the file; ``None`` means "no", and the writer
        copies. Why: the copy ran on the acquisition's ordering thread holding the GIL (~0.2 s
        per GiB of random data), and the other threads waited for it.
        """
        self._check_writable()
        size = self.chunk_size
        worst = size + 4  # a stored chunk at most: what _place needs room for
        lent_to = 0  # the group (by number) that holds a loan of the caller's buffer
        for body, compressed, raw, trailer in chunks:
            if self._short_seen:
                raise UsageError("only the last chunk may be shorter than the chunk size")
            if raw != size and (not 0 < raw < size or raw % self.bytes_per_sector):
                raise UsageError(f"chunk of {raw} bytes: must be whole sectors, at most "
                                 f"{size} bytes")
            if self.media_size is not None and self._media_bytes + raw > self.media_size:
                raise UsageError(f"more data than the declared media size of {self.media_size} "
                                 "bytes")
            stored = len(body) + len(trailer)
            start = self._group_start
            if start is None or self._remaining < worst or self._group_full(stored):
                self._place(stored)
                start = self._group_start
                assert start is not None
            offset = self._pos - start
            self._entries += (offset | st.COMPRESSED_FLAG if compressed else offset).to_bytes(
                4, "little")
            piece = body
            if type(body) is not bytes and lent_to != self._groups_opened:
                release = keep() if keep is not None else None
                if release is None:
                    keep = None  # no loan: this block's views are copied from here on
                    piece = bytes(body)
                else:
                    self._group_releases.append(release)
                    lent_to = self._groups_opened
            self._group_pieces.append(piece)
            if trailer:
                self._group_pieces.append(trailer)
            self._pos += stored
            self._remaining -= stored + 8
            self._chunks += 1
            self._media_bytes += raw
            self._short_seen = raw < size

    def write(self, data: bytes) -> None:
        """Convenience for small callers: buffer, cut into chunks and encode inline."""
        self._check_writable()
        self._pending += data
        size = self.chunk_size
        if len(self._pending) >= size:
            whole = len(self._pending) - len(self._pending) % size
            view = bytes(self._pending[:whole])
            del self._pending[:whole]
            for start in range(0, whole, size):
                self.write_encoded(encode_chunk(view[start:start + size], self.compression))

    def _check_writable(self) -> None:
        if self._closed:
            raise UsageError("the E01 writer is already closed")

    # --- finishing -------------------------------------------------------------------------

    def close(self, *, md5: str, sha1: str,
              errors: Sequence[tuple[int, int]] = ()) -> EwfWriteResult:
        """Finish the set: hashes (hex) and read-error ranges (first sector, count) are stored.

        Writes the last group's tables, then ``[data]``, ``[error2]``, ``digest``, ``hash`` and
        ``done``; only after that is the image complete.
        """
        self._check_writable()
        md5_bytes = _check_hex("MD5", md5, 32)
        sha1_bytes = _check_hex("SHA-1", sha1, 40)
        self._flush_pending()
        if self._chunks == 0:
            self.abort()
            for path in self._paths:
                path.unlink(missing_ok=True)
            raise UsageError("the media is empty (0 bytes): there is nothing to image")
        if self.media_size is not None and self._media_bytes != self.media_size:
            raise UsageError(f"only {self._media_bytes} of the declared {self.media_size} media "
                             "bytes were written")
        sectors = self._media_bytes // self.bytes_per_sector
        ranges = merge_ranges(errors)
        for first, count in ranges:
            if first + count > sectors or first + count > 0xFFFF_FFFF:
                raise UsageError(f"read-error range {first}+{count} lies outside the media's "
                                 f"{sectors} sectors (or beyond 32-bit sector numbers)")
        if self._group_start is not None:
            self._close_group()
        self._patch_volumes(sectors)
        if len(self._paths) == 1:
            self._section("data", st.pack_volume(self._volume))
        if ranges:
            self._section("error2", st.pack_error2(ranges))
        self._section("digest", st.pack_digest(md5_bytes, sha1_bytes))
        self._section("hash", st.pack_hash(md5_bytes))
        self._emit(st.pack_descriptor("done", self._pos, 0))
        self._finish_file()
        self._closed = True
        return EwfWriteResult(
            segments=tuple(self._paths), media_size=self._media_bytes, chunk_count=self._chunks,
            sector_count=sectors, bytes_per_sector=self.bytes_per_sector,
            sectors_per_chunk=self.sectors_per_chunk, compression=self.compression.value,
            guid=str(uuid.UUID(bytes_le=self._volume.guid)), md5=md5.lower(),
            sha1=sha1.lower(), error_ranges=tuple(ranges),
            stored_size=sum(p.stat().st_size for p in self._paths),
            file_hashes={path: digests for index, path in enumerate(self._paths)
                         if (digests := self._file_digests.get(index))
                         and index not in self._rewritten})

    def _flush_pending(self) -> None:
        """The tail that :meth:`write` buffered becomes the (short) last chunk."""
        if not self._pending:
            return
        if len(self._pending) % self.bytes_per_sector:
            raise UsageError(f"media ends with a partial sector ({len(self._pending)} bytes "
                             "left over); pad the last sector")
        self.write_encoded(encode_chunk(bytes(self._pending), self.compression))
        self._pending.clear()

    def _patch_volumes(self, sectors: int) -> None:
        """The size is known only at the end: fix volume and data counts (docs/EWF.md §8)."""
        if (self._volume.chunk_count, self._volume.sector_count) == (self._chunks, sectors):
            return
        v = self._volume
        self._volume = st.Volume(v.media_type, self._chunks, v.sectors_per_chunk,
                                 v.bytes_per_sector, sectors, v.media_flags, v.compression_level,
                                 v.error_granularity, v.guid)
        body = st.pack_volume(self._volume)
        assert self._file is not None
        current = len(self._paths) - 1
        self._rewritten.update(index for index, _ in self._volume_offsets)
        for index, offset in self._volume_offsets:
            if index == current:
                self._file.patch(body, offset)
                continue
            with self._paths[index].open("r+b") as fh:
                fh.seek(offset)
                fh.write(body)
                fh.flush()
                if self.sync:
                    os.fsync(fh.fileno())

    def abort(self) -> None:
        """Stop writing; the files stay without ``done``, so readers call the set INCOMPLETE."""
        self._group_pieces = []  # an unclosed group is dropped: resume keeps closed groups
        releases, self._group_releases = self._group_releases, []
        for release in releases:  # nothing of it will be written: the buffers go back now
            release()
        if self._file is not None:
            file, self._file = self._file, None
            self._closed = True
            # Writes what it can and always closes the file. A write that fails here (a full
            # disk) is the failure the caller is already handling, so it is not raised again.
            with contextlib.suppress(OSError):
                file.close()
        self._closed = True

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if not self._closed:
            self.abort()

    @classmethod
    def resume(cls, base: Path, *, segment_size: int = DEFAULT_SEGMENT_SIZE,
               compression: Compression | None = None,
               keep_media: int | None = None) -> tuple[EwfWriter, int]:
        """Reopen an interrupted set and continue it; returns ``(writer, durable media bytes)``.

        Complete segments and complete sectors groups are kept, the rest is cut off; the caller
        re-hashes the first ``durable`` media bytes (``open_ewf(..., allow_incomplete=True)``
        reads exactly them) and feeds chunks from there on. ``keep_media``: keep no group
        beyond this many media bytes (what the caller's records vouch for, see
        :meth:`make_durable`), even if more was written.
        """
        from bitwitness.ewf.resume import find_resume_point  # the layout reader: only now

        point = find_resume_point(Path(base), keep_media=keep_media)
        volume = point.volume
        writer = cls(point.base, media_size=volume.media_size or None, metadata=EwfMetadata(),
                     bytes_per_sector=volume.bytes_per_sector,
                     sectors_per_chunk=volume.sectors_per_chunk,
                     compression=compression or point.compression, segment_size=segment_size,
                     resume_from=point)
        return writer, point.media_bytes
