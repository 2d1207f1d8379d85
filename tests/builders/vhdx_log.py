"""A VHDX left with a log to replay, made from a dynamic VHDX that ``qemu-img`` wrote (no tool
here leaves one: QEMU replays and empties its log before it closes an image).

Follows Microsoft's MS-VHDX, section 2.3 (the log), written from the specification, not from any
implementation. A log entry is a run of 4 KiB sectors: the first holds the 64-byte header
(``loge``; CRC-32C over the whole entry with the checksum field as 0; entry length; tail, the log
offset of the oldest entry of the sequence; sequence number; descriptor count; reserved; the log
GUID, which must be the file header's; FlushedFileOffset; LastFileOffset) and then 32-byte
descriptors (126 beside the header, 128 in each further sector): ``zero`` (reserved, length,
file offset, sequence number) or ``desc`` (the update's last 4 bytes, its first 8, file offset,
sequence number). After the descriptor sectors comes one data sector per ``desc``: ``data``,
the sequence number's high 32 bits, bytes 8-4091 of the update, its low 32 bits. The headers
get the log GUID (each its CRC-32C again); everything else in the file stays as QEMU wrote it,
stale entries of QEMU's own (another log GUID) included.
"""

from __future__ import annotations

import struct
import uuid
from dataclasses import dataclass
from pathlib import Path

KiB, MiB = 1024, 1024 * 1024
SECTOR = 4 * KiB
HEADERS = (64 * KiB, 128 * KiB)
_REGION_TABLES = (192 * KiB, 256 * KiB)
_BAT = uuid.UUID("2DC27766-F623-4200-9D64-115E9BFD4A08").bytes_le
GUID = uuid.UUID("6c6f6721-7265-706c-6179-2d6d65000001").bytes_le


def crc32c(data: bytes) -> int:
    """CRC-32C, bit by bit from the polynomial (slow and plain: the builder's own)."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


@dataclass(frozen=True)
class Data:
    """A 4 KiB update written through the log at ``offset``."""

    offset: int
    update: bytes


@dataclass(frozen=True)
class Zero:
    """``length`` bytes zeroed through the log at ``offset``."""

    offset: int
    length: int


def entry(sequence: int, tail: int, descriptors: list[Data | Zero], *, flushed: int,
          last: int, guid: bytes = GUID) -> bytes:
    """One log entry, its checksum computed."""
    count = len(descriptors)
    desc_sectors = 1 + -(-max(0, count - 126) // 128)
    table = bytearray(desc_sectors * SECTOR)
    sectors: list[bytes] = []
    for i, d in enumerate(descriptors):
        at = 64 + 32 * i
        if isinstance(d, Zero):
            struct.pack_into("<4sIQQQ", table, at, b"zero", 0, d.length, d.offset, sequence)
        else:
            assert len(d.update) == SECTOR
            trailing, = struct.unpack("<I", d.update[-4:])
            leading, = struct.unpack("<Q", d.update[:8])
            struct.pack_into("<4sIQQQ", table, at, b"desc", trailing, leading, d.offset,
                             sequence)
            sectors.append(b"data" + struct.pack("<I", sequence >> 32) + d.update[8:-4]
                           + struct.pack("<I", sequence & 0xFFFFFFFF))
    length = (desc_sectors + len(sectors)) * SECTOR
    struct.pack_into("<4sIIIQII16sQQ", table, 0, b"loge", 0, length, tail, sequence, count, 0,
                     guid, flushed, last)
    body = bytearray(bytes(table) + b"".join(sectors))
    struct.pack_into("<I", body, 4, crc32c(bytes(body)))
    return bytes(body)


def log_region(path: Path) -> tuple[int, int]:
    """(file offset, length) of the log the current header names."""
    data = path.read_bytes()
    current = max(HEADERS, key=lambda o: struct.unpack_from("<Q", data, o + 8)[0])
    length, offset = struct.unpack_from("<IQ", data, current + 68)
    return offset, length


def bat_offset(path: Path) -> int:
    data = path.read_bytes()
    table = _REGION_TABLES[0]
    for i in range(struct.unpack_from("<I", data, table + 8)[0]):
        guid, offset = struct.unpack_from("<16sQ", data, table + 16 + 32 * i)
        if guid == _BAT:
            return int(offset)
    raise AssertionError("no BAT region")


def make_dirty(path: Path, entries: list[tuple[int, bytes]], *, guid: bytes = GUID) -> None:
    """Write ``entries`` (log offset, entry bytes; wrapping at the log's end) into the log and
    name ``guid`` as the log GUID in both headers, in place."""
    data = bytearray(path.read_bytes())
    offset, length = log_region(path)
    for position, body in entries:
        for i in range(0, len(body), SECTOR):
            at = offset + (position + i) % length
            data[at:at + SECTOR] = body[i:i + SECTOR]
    for header in HEADERS:
        data[header + 48:header + 64] = guid
        struct.pack_into("<I", data, header + 4, 0)
        struct.pack_into("<I", data, header + 4, crc32c(bytes(data[header:header + SECTOR])))
    path.write_bytes(bytes(data))
