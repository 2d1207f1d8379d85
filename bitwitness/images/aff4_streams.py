"""The byte streams inside an AFF4 volume: image streams, maps and the symbolic streams.

**Image stream** (``aff4:ImageStream``): the data cut in chunks of ``chunkSize`` bytes, each
compressed on its own (deflate, zlib, snappy, LZ4, or stored), ``chunksInSegment`` chunks to a
*bevy*. Bevy ``k`` of stream ``<urn>`` is the member ``<urn>/%08d``; its index is
``<urn>/%08d.index``, one little-endian (offset u64, length u32) entry per chunk, the offset
inside the bevy. A chunk whose stored length equals the chunk size is stored uncompressed. The
pre-standard layout (``aff4:image`` with ``chunk_size``, ``chunks_per_segment``) names the index
``<urn>/%08d/index`` and holds only u32 offsets; a chunk then ends where the next begins (the
last at the end of the bevy). The last chunk of a stream may be padded or short; the stream's
``aff4:size`` says where the data ends.

**Map** (``aff4:Map``): the media as runs of other streams. ``<urn>/map`` holds 28-byte
little-endian entries (media offset u64, length u64, target offset u64, target id u32), in
any order (aff4imager writes them in media order, pyaff4 in the order of its interval tree);
entries that overlap are refused. ``<urn>/idx`` lists the target URNs one a line, the id being
the line number. Media not covered by an entry reads from the map's
``aff4:mapGapDefaultStream`` (``aff4:Zero`` when none is named). A target may be a plain ZIP
member of the volume (a *segment*: pyaff4 and aff4imager store an uncompressed map's data that
way rather than as an image stream).

**Symbolic streams**: ``aff4:Zero`` and ``aff4:SymbolicStreamXX`` repeat one byte;
``aff4:UnknownData`` and ``aff4:UnreadableData`` repeat ``UNKNOWN`` / ``UNREADABLEDATA`` from the
start of every 1 MiB.

Hostile input: every size and offset the metadata declares is checked against the member that
should hold it before it is read; a chunk is never inflated beyond the chunk size; indexes are
read per bevy (a few kept) and a map is held in compact arrays, so memory stays bounded.
"""

from __future__ import annotations

import struct
import threading
import zlib
from array import array
from bisect import bisect_right
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from zipfile import ZipInfo

import cramjam

from bitwitness.errors import CorruptImageError
from bitwitness.images.aff4_zip import ZipVolume

_ENTRY = struct.Struct("<QI")  #: v1.0 bevy index entry: offset in the bevy, stored length
_LEGACY_ENTRY = struct.Struct("<I")  #: pre-standard bevy index entry: offset in the bevy
_MAP_ENTRY = struct.Struct("<QQQI")
#: Largest chunk a volume may declare (writers use 32 KiB to 1 MiB).
MAX_CHUNK = 64 << 20
#: Most chunks a bevy may declare (writers use about a thousand); bounds an index's memory.
MAX_CHUNKS_IN_SEGMENT = 1 << 18
#: Largest map member (about 600 000 runs) and target index read.
MAX_MAP = 16 << 20
MAX_IDX = 1 << 20
_INDEXES_KEPT = 16
_CHUNKS_KEPT = 8
_TILE = 1 << 20
_MAX_OFFSET = (1 << 63) - 1

COMPRESSIONS = ("stored", "deflate", "zlib", "snappy", "lz4")


class ChunkError(CorruptImageError):
    """A chunk of an image stream is damaged; ``stream_offset`` is where the chunk starts in
    its stream, which the stream's user places in the media."""

    def __init__(self, message: str, *, path: Path, stream_offset: int) -> None:
        self.message = message
        self.stream_offset = stream_offset
        super().__init__(message, path=path)


class Source(Protocol):
    """Something a map reads from: ``read(offset, length)`` returns exactly ``length`` bytes."""

    size: int | None  #: ``None`` for the infinite symbolic streams

    def read(self, offset: int, length: int) -> bytes: ...


class Segment:
    """A ZIP member of the volume read as it is: a map's uncompressed target."""

    def __init__(self, volume: ZipVolume, urn: str, member: ZipInfo) -> None:
        self.volume = volume
        self.urn = urn
        self.member = member
        self.size: int | None = member.file_size

    def read(self, offset: int, length: int) -> bytes:
        return self.volume.read_range(self.member, offset, length, f"segment {self.urn}")


class Symbolic:
    """A symbolic stream: one byte repeated, or a text repeated from the start of each MiB."""

    size: int | None = None

    def __init__(self, name: str, pattern: bytes) -> None:
        self.name = name
        self._tile = (pattern * (_TILE // len(pattern) + 1))[:_TILE]

    def read(self, offset: int, length: int) -> bytes:
        parts = []
        while length > 0:
            within = offset % _TILE
            n = min(length, _TILE - within)
            parts.append(self._tile[within:within + n])
            offset, length = offset + n, length - n
        return b"".join(parts)


@dataclass(frozen=True)
class StreamLayout:
    """What the metadata declares about one image stream."""

    urn: str
    size: int
    chunk_size: int
    chunks_in_segment: int
    compression: str  #: one of :data:`COMPRESSIONS`
    legacy: bool  #: the pre-standard index of u32 offsets


class ImageStreamReader:
    """One ``aff4:ImageStream`` of the volume, read chunk by chunk."""

    def __init__(self, volume: ZipVolume, layout: StreamLayout,
                 members: list[tuple[ZipInfo, ZipInfo]]) -> None:
        self.volume = volume
        self.layout = layout
        self.size: int | None = layout.size
        self._bevies = members  #: (bevy member, index member) per bevy
        self._lock = threading.Lock()
        self._indexes: OrderedDict[int, bytes] = OrderedDict()
        self._chunks: OrderedDict[int, bytes] = OrderedDict()
        self.chunks = -(-layout.size // layout.chunk_size)

    @property
    def path(self) -> Path:
        return self.volume.path

    def read(self, offset: int, length: int) -> bytes:
        if offset < 0 or offset + length > self.layout.size:
            raise CorruptImageError(
                f"AFF4 read of bytes {offset}+{length} from image stream {self.layout.urn} of "
                f"{self.layout.size} bytes", path=self.path)
        chunk_size = self.layout.chunk_size
        parts = []
        while length > 0:
            number, within = divmod(offset, chunk_size)
            n = min(length, chunk_size - within)
            parts.append(self.chunk(number)[within:within + n])
            offset, length = offset + n, length - n
        return b"".join(parts)

    def chunk(self, number: int) -> bytes:
        """The data of chunk ``number`` (the last one trimmed to the stream's size)."""
        with self._lock:
            cached = self._chunks.get(number)
            if cached is not None:
                self._chunks.move_to_end(number)
                return cached
        data = self._decode(number)
        with self._lock:
            self._chunks[number] = data
            while len(self._chunks) > _CHUNKS_KEPT:
                self._chunks.popitem(last=False)
        return data

    def _where(self, number: int) -> str:
        bevy, entry = divmod(number, self.layout.chunks_in_segment)
        return (f"AFF4 chunk {number} (bevy {bevy}, entry {entry}) of image stream "
                f"{self.layout.urn}")

    def _index(self, bevy: int) -> bytes:
        with self._lock:
            cached = self._indexes.get(bevy)
            if cached is not None:
                self._indexes.move_to_end(bevy)
                return cached
        _bevy_member, index_member = self._bevies[bevy]
        cis = self.layout.chunks_in_segment
        expected = min(cis, self.chunks - bevy * cis)
        entry = _LEGACY_ENTRY if self.layout.legacy else _ENTRY
        data = self.volume.read_member(index_member, entry.size * cis, f"bevy index {bevy}")
        if len(data) < entry.size * expected or len(data) % entry.size:
            raise CorruptImageError(
                f"AFF4 bevy index {bevy} of image stream {self.layout.urn} holds "
                f"{len(data)} bytes, not {expected} entries of {entry.size} bytes",
                path=self.path)
        with self._lock:
            self._indexes[bevy] = data
            while len(self._indexes) > _INDEXES_KEPT:
                self._indexes.popitem(last=False)
        return data

    def _span(self, number: int) -> tuple[int, int]:
        """Where chunk ``number`` lies in its bevy: (offset, stored length), checked."""
        bevy, entry = divmod(number, self.layout.chunks_in_segment)
        index = self._index(bevy)
        bevy_member = self._bevies[bevy][0]
        bevy_size = bevy_member.file_size
        if self.layout.legacy:
            (offset,) = _LEGACY_ENTRY.unpack_from(index, entry * 4)
            following = entry + 1 < len(index) // 4
            end = _LEGACY_ENTRY.unpack_from(index, entry * 4 + 4)[0] if following else bevy_size
            length = end - offset
        else:
            offset, length = _ENTRY.unpack_from(index, entry * _ENTRY.size)
        limit = self.layout.chunk_size + self.layout.chunk_size // 6 + 64  # worst expansion
        if length < 0 or length > limit or offset + length > bevy_size:
            raise ChunkError(
                f"{self._where(number)}: index entry declares {length} bytes at bevy offset "
                f"{offset}, outside the bevy of {bevy_size} bytes or beyond a chunk's worst "
                "compressed size", path=self.path,
                stream_offset=number * self.layout.chunk_size)
        return offset, length

    def _decode(self, number: int) -> bytes:
        layout = self.layout
        if number < 0 or number >= self.chunks:
            raise CorruptImageError(f"{self._where(number)} is past the stream's end",
                                    path=self.path)
        offset, length = self._span(number)
        bevy_member = self._bevies[number // layout.chunks_in_segment][0]
        stored = self.volume.read_range(bevy_member, offset, length,
                                        f"bevy {number // layout.chunks_in_segment}")
        wanted = min(layout.chunk_size, layout.size - number * layout.chunk_size)
        if length == layout.chunk_size or layout.compression == "stored":
            data = stored
        else:
            try:
                data = decompress(layout.compression, stored, layout.chunk_size)
            except ValueError as exc:
                if length == wanted and number == self.chunks - 1:
                    data = stored  # a short last chunk that its writer stored as it was
                else:
                    raise ChunkError(
                        f"{self._where(number)} does not decompress ({exc})", path=self.path,
                        stream_offset=number * layout.chunk_size) from exc
        if len(data) < wanted:
            raise ChunkError(
                f"{self._where(number)} holds {len(data)} bytes, not {wanted}", path=self.path,
                stream_offset=number * layout.chunk_size)
        return data[:wanted]


def decompress(method: str, data: bytes, limit: int) -> bytes:
    """Decode one chunk, never producing more than ``limit`` bytes; ``ValueError`` when the
    data does not decode or would decode to more."""
    if method in ("deflate", "zlib"):
        first = -15 if method == "deflate" else 15
        for wbits in (first, -first):  # writers differ on whether the zlib header is there
            inflater = zlib.decompressobj(wbits)
            try:
                out = inflater.decompress(data, limit)
            except zlib.error:
                continue
            if inflater.unconsumed_tail:
                raise ValueError(f"inflates past the chunk size of {limit} bytes")
            if inflater.eof:
                return out
        raise ValueError(f"not a {method} stream")
    buffer = bytearray(limit)
    try:
        if method == "snappy":
            n = cramjam.snappy.decompress_raw_into(data, buffer)
        elif method == "lz4":
            n = cramjam.lz4.decompress_block_into(data, buffer, output_len=limit)
        else:
            raise ValueError(f"unknown compression {method}")
    except cramjam.DecompressionError as exc:
        raise ValueError(f"{method}: {exc}") from exc
    return bytes(buffer[:n])


class MapReader:
    """An ``aff4:Map``: media runs taken from target streams, gaps from the gap stream."""

    def __init__(self, path: Path, urn: str, size: int, entries: bytes, *,
                 targets: dict[int, Source], gap: Source) -> None:
        self.path = path
        self.urn = urn
        self.size: int | None = size
        self._gap = gap
        self._targets = targets
        self._starts = array("Q")
        self._lengths = array("Q")
        self._offsets = array("Q")
        self._ids = array("I")
        self._load(entries)

    @property
    def runs(self) -> int:
        return len(self._starts)

    @property
    def covered(self) -> int:
        """Media bytes the runs cover; the rest reads from the gap stream."""
        return sum(self._lengths)

    @property
    def last_end(self) -> int:
        """Where the last run ends (0 for a map of gaps only)."""
        return self._starts[-1] + self._lengths[-1] if self._starts else 0

    def _load(self, entries: bytes) -> None:
        assert self.size is not None
        if len(entries) % _MAP_ENTRY.size:
            raise CorruptImageError(f"AFF4 map {self.urn}: {len(entries)} bytes is not a whole "
                                    f"number of {_MAP_ENTRY.size}-byte entries", path=self.path)
        numbers = array("Q")
        for number, (start, length, target_offset, target) in enumerate(
                _MAP_ENTRY.iter_unpack(entries)):
            if length == 0:
                continue
            where = f"AFF4 map {self.urn}, entry {number}"
            if start + length > self.size:
                raise CorruptImageError(f"{where}: {length} bytes at media offset {start} run "
                                        f"past the map's size of {self.size}", path=self.path)
            source = self._targets.get(target)
            if source is None:
                raise CorruptImageError(f"{where}: target id {target} is not in the map's "
                                        "target index", path=self.path)
            if target_offset > _MAX_OFFSET or (source.size is not None
                                               and target_offset + length > source.size):
                raise CorruptImageError(f"{where}: {length} bytes at offset {target_offset} "
                                        "lie outside the target stream", path=self.path,
                                        media_offset=start)
            self._starts.append(start)
            self._lengths.append(length)
            self._offsets.append(target_offset)
            self._ids.append(target)
            numbers.append(number)
        if any(self._starts[i] > self._starts[i + 1] for i in range(len(self._starts) - 1)):
            self._sort(numbers)
        for i in range(1, len(self._starts)):
            if self._starts[i] < self._starts[i - 1] + self._lengths[i - 1]:
                raise CorruptImageError(
                    f"AFF4 map {self.urn}, entry {numbers[i]}: media offset {self._starts[i]} "
                    f"lies inside entry {numbers[i - 1]} ({self._lengths[i - 1]} bytes at "
                    f"{self._starts[i - 1]})", path=self.path)

    def _sort(self, numbers: array[int]) -> None:
        """Put the entries in media order (compact arrays: a map may hold ~600,000)."""
        order = sorted(range(len(self._starts)), key=self._starts.__getitem__)
        for name in ("_starts", "_lengths", "_offsets", "_ids"):
            old = getattr(self, name)
            setattr(self, name, array(old.typecode, (old[i] for i in order)))
        numbers[:] = array("Q", (numbers[i] for i in order))

    def read(self, offset: int, length: int) -> bytes:
        parts = []
        at = bisect_right(self._starts, offset) - 1
        while length > 0:
            if at >= 0 and offset < self._starts[at] + self._lengths[at]:
                run_start = self._starts[at]
                n = min(length, run_start + self._lengths[at] - offset)
                source = self._targets[self._ids[at]]
                target_at = self._offsets[at] + offset - run_start
                try:
                    parts.append(source.read(target_at, n))
                except ChunkError as exc:
                    media = max(offset, exc.stream_offset + run_start - self._offsets[at])
                    raise CorruptImageError(exc.message, path=self.path,
                                            media_offset=media) from exc
            else:
                following = self._starts[at + 1] if at + 1 < len(self._starts) else None
                n = min(length, (following if following is not None else offset + length)
                        - offset)
                parts.append(self._gap.read(offset, n))
            offset, length = offset + n, length - n
            if at + 1 < len(self._starts) and offset >= self._starts[at + 1]:
                at += 1
        return b"".join(parts)

