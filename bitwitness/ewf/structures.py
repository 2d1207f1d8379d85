"""The EWF1 (E01, EnCase 6 flavour) on-disk layouts, declared once for the writer and the reader.

Every structure here is little-endian and carries its own Adler-32 (standard zlib Adler-32, stored
little-endian). The byte-level reference is ``docs/EWF.md``; section numbers in the comments
(§3, §5, ...) point there. Functions come in pairs: ``pack_*`` builds bytes for the
writer, ``unpack_*`` parses them for the reader and says *what* is wrong when they do not parse.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from typing import Final, NamedTuple

#: First 8 bytes of every E01 segment (§2.1).
EVF_MAGIC: Final = b"EVF\x09\x0d\x0a\xff\x00"
#: Magics of EWF variants our reader hands to pyewf (Ex01, L01, Lx01).
EVF2_MAGIC: Final = b"EVF2\r\n\x81\x00"
LVF_MAGIC: Final = b"LVF\x09\x0d\x0a\xff\x00"
LEF2_MAGIC: Final = b"LEF2\r\n\x81\x00"

FILE_HEADER_SIZE: Final = 13
DESCRIPTOR_SIZE: Final = 76
VOLUME_BODY_SIZE: Final = 1052
#: The SMART (EWF-S01) volume body (docs/EWF.md §12.2).
SMART_VOLUME_BODY_SIZE: Final = 94
TABLE_HEADER_SIZE: Final = 24
DIGEST_BODY_SIZE: Final = 80
HASH_BODY_SIZE: Final = 36
ERROR2_HEADER_SIZE: Final = 520

#: EnCase 6 convention for entries per table (§6.3); writers stay at it, readers accept more.
MAX_TABLE_ENTRIES: Final = 65_534
#: Table offsets have 31 bits: every chunk must end within this many bytes of its table base.
MAX_GROUP_SPAN: Final = 0x7FFF_FFFF
COMPRESSED_FLAG: Final = 0x8000_0000
OFFSET_MASK: Final = 0x7FFF_FFFF

#: Section types whose descriptor points at itself and ends the segment's chain.
TERMINAL_SECTIONS: Final = frozenset({"next", "done"})

_DESCRIPTOR = struct.Struct("<16sQQ40xI")
_VOLUME = struct.Struct("<B3xIIIQIIIB3xI4xIB3xI4x16s")
_SMART_VOLUME = struct.Struct("<IIIII")
_TABLE_HEADER = struct.Struct("<I4xQ4xI")


def adler32(data: bytes | bytearray | memoryview) -> int:
    """Standard zlib Adler-32 (initial value 1)."""
    return zlib.adler32(data) & 0xFFFF_FFFF


def le32(value: int) -> bytes:
    return struct.pack("<I", value)


# --- file header (§2.1) ----------------------------------------------------------------------


def pack_file_header(segment_number: int) -> bytes:
    """The 13 bytes that open segment ``segment_number`` (1-based)."""
    return EVF_MAGIC + b"\x01" + struct.pack("<H", segment_number) + b"\x00\x00"


def unpack_file_header(data: bytes) -> int:
    """Segment number of a file header; ``ValueError`` when ``data`` is not an E01 header."""
    if len(data) < FILE_HEADER_SIZE or not data.startswith(EVF_MAGIC):
        raise ValueError("not an E01 segment (no EVF signature)")
    return int(struct.unpack_from("<H", data, 9)[0])


# --- section descriptor (§3) -----------------------------------------------------------------


class Descriptor(NamedTuple):
    """One 76-byte section descriptor found at ``offset`` of a segment file.

    A named tuple: a reader makes one per section, 786 432 for a terabyte written in 4 MiB
    groups, and a tuple is built in a fraction of a frozen dataclass's time."""

    type: str
    offset: int
    next: int
    size: int

    @property
    def body_offset(self) -> int:
        return self.offset + DESCRIPTOR_SIZE

    @property
    def body_size(self) -> int:
        return max(0, self.size - DESCRIPTOR_SIZE)


def pack_descriptor(kind: str, next_offset: int, size: int) -> bytes:
    """A descriptor; the terminal ``next``/``done`` pass their own offset and size 0."""
    head = struct.pack("<16sQQ40x", kind.encode("ascii"), next_offset, size)
    return head + le32(adler32(head))


#: Raw 16-byte type fields already decoded (a set has a handful of distinct section types).
_TYPE_NAMES: dict[bytes, str] = {}


def unpack_descriptor(data: bytes, offset: int) -> Descriptor:
    """Parse a descriptor; ``ValueError`` names the fault (checksum, short read)."""
    if len(data) < DESCRIPTOR_SIZE:
        raise ValueError("section descriptor cut short (file truncated)")
    raw_type, next_offset, size, stored = _DESCRIPTOR.unpack_from(data)
    if zlib.adler32(data[:72]) != stored:
        raise ValueError("section descriptor fails its Adler-32 checksum")
    kind = _TYPE_NAMES.get(raw_type)
    if kind is None:
        kind = raw_type.split(b"\x00", 1)[0].decode("ascii", "replace")
        if len(_TYPE_NAMES) < 64:  # the known names, and a few others: never unbounded
            _TYPE_NAMES[raw_type] = kind
    return Descriptor(kind, offset, next_offset, size)


# --- volume / data / disk (§5) ---------------------------------------------------------------

MEDIA_TYPE_CODES: Final = {"removable": 0x00, "fixed": 0x01, "optical": 0x03, "logical": 0x0E,
                           "memory": 0x10}
MEDIA_TYPE_NAMES: Final = {v: k for k, v in MEDIA_TYPE_CODES.items()}
COMPRESSION_LEVEL_NAMES: Final = {0: "none", 1: "fast", 2: "best"}
FLAG_IMAGE: Final = 0x01
FLAG_PHYSICAL: Final = 0x02


@dataclass(frozen=True)
class Volume:
    """The media geometry from a volume (or data/disk) section."""

    media_type: int
    chunk_count: int
    sectors_per_chunk: int
    bytes_per_sector: int
    sector_count: int
    media_flags: int
    compression_level: int
    error_granularity: int
    guid: bytes
    #: a SMART (EWF-S01) volume: no media type, flags, compression level or set identifier,
    #: and the chunks of each ``table`` section stored inside it (§12)
    smart: bool = False

    @property
    def chunk_size(self) -> int:
        return self.sectors_per_chunk * self.bytes_per_sector

    @property
    def media_size(self) -> int:
        return self.sector_count * self.bytes_per_sector


def pack_volume(volume: Volume) -> bytes:
    """The 1052-byte volume body (identical bytes are written as each ``data`` section)."""
    head = _VOLUME.pack(volume.media_type, volume.chunk_count, volume.sectors_per_chunk,
                        volume.bytes_per_sector, volume.sector_count, 0, 0, 0,
                        volume.media_flags, 0, 0, volume.compression_level,
                        volume.error_granularity, volume.guid)
    body = head + bytes(1048 - len(head))
    return body + le32(adler32(body))


def unpack_volume(body: bytes) -> tuple[Volume, bool]:
    """Parse a volume body; the flag says whether its checksum holds (some writers leave 0)."""
    if len(body) < _VOLUME.size:
        raise ValueError(f"volume section too small ({len(body)} bytes)")
    (media_type, chunks, spc, bps, sectors, _c, _h, _s, flags, _palm, _smart, level,
     granularity, guid) = _VOLUME.unpack_from(body)
    ok = len(body) >= 1052 and adler32(body[:1048]) == struct.unpack_from("<I", body, 1048)[0]
    return Volume(media_type, chunks, spc, bps, sectors, flags, level, granularity, guid), ok


def unpack_smart_volume(body: bytes) -> tuple[Volume, bool]:
    """Parse a 94-byte SMART volume body (§12.2); the flag says whether its Adler-32 holds.

    What it does not store is given as libewf reports it: removable media, not physical, an
    all-zero set identifier, compression unknown (-1: the header's ``r`` says).
    """
    if len(body) < SMART_VOLUME_BODY_SIZE:
        raise ValueError(f"SMART volume section too small ({len(body)} bytes)")
    _reserved, chunks, spc, bps, sectors = _SMART_VOLUME.unpack_from(body)
    ok = adler32(body[:90]) == struct.unpack_from("<I", body, 90)[0]
    return Volume(MEDIA_TYPE_CODES["removable"], chunks, spc, bps, sectors, FLAG_IMAGE, -1, spc,
                  bytes(16), smart=True), ok


# --- table / table2 (§6.3) -------------------------------------------------------------------


def pack_table(base: int, entries: bytes) -> bytes:
    """A table body: header with base offset, the packed u32 entries, their own Adler-32."""
    head = struct.pack("<I4xQ4x", len(entries) // 4, base)
    return head + le32(adler32(head)) + entries + le32(adler32(entries))


def unpack_table_header(data: bytes) -> tuple[int, int]:
    """``(entry_count, base_offset)``; ``ValueError`` when the header checksum fails."""
    if len(data) < TABLE_HEADER_SIZE:
        raise ValueError("table header cut short")
    count, base, stored = _TABLE_HEADER.unpack_from(data)
    if adler32(data[:20]) != stored:
        raise ValueError("table header fails its Adler-32 checksum")
    return count, base


# --- hash, digest, error2 (§7) ---------------------------------------------------------------


def pack_hash(md5: bytes) -> bytes:
    body = md5 + bytes(16)
    return body + le32(adler32(body))


def pack_digest(md5: bytes, sha1: bytes) -> bytes:
    body = md5 + sha1 + bytes(40)
    return body + le32(adler32(body))


def unpack_hash(body: bytes) -> str | None:
    """Stored MD5 of a ``hash`` section (hex), ``None`` when absent or all zero."""
    if len(body) < HASH_BODY_SIZE or adler32(body[:32]) != struct.unpack_from("<I", body, 32)[0]:
        raise ValueError("hash section fails its Adler-32 checksum")
    return body[:16].hex() if any(body[:16]) else None


def unpack_digest(body: bytes) -> tuple[str | None, str | None]:
    """Stored ``(md5, sha1)`` of a ``digest`` section; zeros mean not stored."""
    if len(body) < DIGEST_BODY_SIZE or adler32(body[:76]) != struct.unpack_from("<I", body, 76)[0]:
        raise ValueError("digest section fails its Adler-32 checksum")
    md5, sha1 = body[:16], body[16:36]
    return (md5.hex() if any(md5) else None, sha1.hex() if any(sha1) else None)


def pack_error2(ranges: list[tuple[int, int]]) -> bytes:
    """error2 body: count + 512 zero + checksum, then (first sector, count) u32 pairs + checksum."""
    head = le32(len(ranges)) + bytes(512)
    entries = b"".join(struct.pack("<II", first, count) for first, count in ranges)
    return head + le32(adler32(head)) + entries + le32(adler32(entries))


def unpack_error2(body: bytes) -> list[tuple[int, int]]:
    if len(body) < ERROR2_HEADER_SIZE:
        raise ValueError("error2 section cut short")
    count = struct.unpack_from("<I", body, 0)[0]
    if adler32(body[:516]) != struct.unpack_from("<I", body, 516)[0]:
        raise ValueError("error2 header fails its Adler-32 checksum")
    end = ERROR2_HEADER_SIZE + 8 * count
    if len(body) < end + 4:
        raise ValueError("error2 entries cut short")
    entries = body[ERROR2_HEADER_SIZE:end]
    if adler32(entries) != struct.unpack_from("<I", body, end)[0]:
        raise ValueError("error2 entries fail their Adler-32 checksum")
    return [struct.unpack_from("<II", entries, 8 * i) for i in range(count)]
