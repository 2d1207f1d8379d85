"""VHDX writer: the media as a dynamic VHDX (Hyper-V, Azure), written in one sequential pass.

Layout (little-endian; GUIDs in their mixed-endian on-disk form):

* 0: the file type identifier (``vhdxfile`` and the creator in UTF-16);
* 64 KiB and 128 KiB: the two headers (``head``; sequence numbers 1 and 2; no log to replay);
* 192 KiB and 256 KiB: the two region tables (``regi``), locating the metadata region and the
  block allocation table (BAT);
* 1 MiB: the log (1 MiB, empty); 2 MiB: the metadata region (file parameters: block size;
  virtual disk size and identifier; logical and physical sector size);
* 3 MiB: the BAT, reserved for every block of the media, written at the end; then the payload
  blocks in media order, 1 MiB-aligned.

A block of all zeros is not stored: its BAT entry says "zero" (state 2). A stored block is
"fully present" (state 6) with its file offset in MiB in bits 20-63. Every ``chunk ratio`` payload
entries the BAT holds one sector-bitmap entry, unused (0) in a disk without a parent. Headers and
region tables carry a CRC-32C (Castagnoli) of their bytes with the checksum field counted as 0.
"""

from __future__ import annotations

import os
import struct
import uuid
from pathlib import Path

from bitwitness.acquire.convert.outputs import close_synced, create_output, pwrite_all
from bitwitness.errors import UsageError
from bitwitness.images.vhdx import crc32c

KiB, MiB = 1024, 1024 * 1024
BLOCK = 8 * MiB
SECTOR = 512
#: Payload blocks per sector-bitmap block: 2^23 sectors of ``SECTOR`` bytes over the block size.
CHUNK_RATIO = (1 << 23) * SECTOR // BLOCK
LOG_OFFSET, LOG_LENGTH = 1 * MiB, 1 * MiB
METADATA_OFFSET, METADATA_LENGTH = 2 * MiB, 1 * MiB
BAT_OFFSET = 3 * MiB
ZERO, FULLY_PRESENT = 2, 6
MAX_VHDX_SIZE = 64 * 1024**4

_BAT_REGION = uuid.UUID("2DC27766-F623-4200-9D64-115E9BFD4A08").bytes_le
_METADATA_REGION = uuid.UUID("8B7CA206-4790-4B9A-B8FE-575F050F886E").bytes_le
_FILE_PARAMETERS = uuid.UUID("CAA16737-FA36-4D43-B3B6-33F0AA44E76B").bytes_le
_VIRTUAL_DISK_SIZE = uuid.UUID("2FA54224-CD1B-4876-B211-5DBED83BF4B8").bytes_le
_VIRTUAL_DISK_ID = uuid.UUID("BECA12AB-B2E6-4523-93EF-C309E000C746").bytes_le
_LOGICAL_SECTOR = uuid.UUID("8141BF1D-A96F-4709-BA47-F233A8FAAB5F").bytes_le
_PHYSICAL_SECTOR = uuid.UUID("CDA348C7-445D-4471-9CC9-E9885251C556").bytes_le
_IS_VIRTUAL_DISK, _IS_REQUIRED = 2, 4


def _with_checksum(data: bytearray) -> bytes:
    struct.pack_into("<I", data, 4, crc32c(bytes(data)))
    return bytes(data)


def _bat_entries(blocks: int) -> int:
    """Payload entries plus one sector-bitmap entry after every ``CHUNK_RATIO`` of them."""
    return blocks + (blocks - 1) // CHUNK_RATIO


def _bat_index(block: int) -> int:
    return block + block // CHUNK_RATIO


class VhdxWriter:
    """Sink that writes ``BASE.vhdx`` from the media, written in order."""

    def __init__(self, path: Path, media_size: int, *, overwrite: bool = False) -> None:
        if media_size <= 0 or media_size % SECTOR:
            raise UsageError(f"a VHDX holds whole {SECTOR}-byte sectors; the media has "
                             f"{media_size} bytes")
        if media_size > MAX_VHDX_SIZE:
            raise UsageError(f"the media ({media_size} bytes) is larger than a VHDX can hold")
        self.path = path
        self.media_size = media_size
        self.blocks = -(-media_size // BLOCK)
        bat_bytes = 8 * _bat_entries(self.blocks)
        self.bat_length = -(-bat_bytes // MiB) * MiB
        self._next = BAT_OFFSET + self.bat_length
        self._fd: int | None = create_output(path, overwrite=overwrite)
        self._pending = bytearray()
        self._written = 0
        self._block = 0
        self._bat = [0] * _bat_entries(self.blocks)

    def write(self, data: bytes | memoryview) -> None:
        if self._written + len(data) > self.media_size:
            raise UsageError("more media than announced was written to the VHDX")
        self._written += len(data)
        self._pending += data
        full = len(self._pending) // BLOCK * BLOCK
        for start in range(0, full, BLOCK):
            self._store(bytes(self._pending[start : start + BLOCK]))
        del self._pending[:full]

    def _store(self, block: bytes) -> None:
        index = _bat_index(self._block)
        if any(block):
            assert self._fd is not None
            pwrite_all(self._fd, block, self._next, self.path)
            self._bat[index] = (self._next // MiB) << 20 | FULLY_PRESENT
            self._next += BLOCK
        else:
            self._bat[index] = ZERO
        self._block += 1

    def finish(self) -> list[Path]:
        if self._written != self.media_size:
            self.abort()
            raise UsageError(
                f"VHDX incomplete: {self._written} of {self.media_size} bytes were written")
        if self._pending:
            self._store(bytes(self._pending).ljust(BLOCK, b"\0"))
            self._pending.clear()
        assert self._fd is not None
        for offset, data in self._structures():
            pwrite_all(self._fd, data, offset, self.path)
        os.ftruncate(self._fd, max(self._next, BAT_OFFSET + self.bat_length))
        fd, self._fd = self._fd, None
        close_synced(fd, self.path)
        return [self.path]

    def _structures(self) -> list[tuple[int, bytes]]:
        creator = "BitWitness".encode("utf-16-le")
        identifier = b"vhdxfile" + creator
        out = [(0, identifier)]
        file_write, data_write = uuid.uuid4().bytes_le, uuid.uuid4().bytes_le
        for n, offset in ((1, 64 * KiB), (2, 128 * KiB)):
            header = bytearray(4 * KiB)
            struct.pack_into("<4sIQ16s16s16sHHIQ", header, 0, b"head", 0, n, file_write,
                             data_write, bytes(16), 0, 1, LOG_LENGTH, LOG_OFFSET)
            out.append((offset, _with_checksum(header)))
        table = bytearray(64 * KiB)
        struct.pack_into("<4sIII", table, 0, b"regi", 0, 2, 0)
        struct.pack_into("<16sQII", table, 16, _BAT_REGION, BAT_OFFSET, self.bat_length, 1)
        struct.pack_into("<16sQII", table, 48, _METADATA_REGION, METADATA_OFFSET,
                         METADATA_LENGTH, 1)
        regions = _with_checksum(table)
        out += [(192 * KiB, regions), (256 * KiB, regions)]
        out.append((METADATA_OFFSET, self._metadata()))
        out.append((BAT_OFFSET, struct.pack(f"<{len(self._bat)}Q", *self._bat)))
        return out

    def _metadata(self) -> bytes:
        items = [
            (_FILE_PARAMETERS, struct.pack("<II", BLOCK, 0), _IS_REQUIRED),
            (_VIRTUAL_DISK_SIZE, struct.pack("<Q", self.media_size),
             _IS_VIRTUAL_DISK | _IS_REQUIRED),
            (_VIRTUAL_DISK_ID, uuid.uuid4().bytes_le, _IS_VIRTUAL_DISK | _IS_REQUIRED),
            (_LOGICAL_SECTOR, struct.pack("<I", SECTOR), _IS_VIRTUAL_DISK | _IS_REQUIRED),
            (_PHYSICAL_SECTOR, struct.pack("<I", 4096), _IS_VIRTUAL_DISK | _IS_REQUIRED),
        ]
        table = bytearray(64 * KiB)
        struct.pack_into("<8sHH", table, 0, b"metadata", 0, len(items))
        values = bytearray()
        for i, (item, value, flags) in enumerate(items):
            struct.pack_into("<16sIIII", table, 32 + 32 * i, item, len(table) + len(values),
                             len(value), flags, 0)
            values += value.ljust(-(-len(value) // 8) * 8, b"\0")
        return bytes(table + values)

    def abort(self) -> list[Path]:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        return [self.path]
