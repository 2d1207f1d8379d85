"""Mark a VHDX made by ``qemu-img`` (which writes only 512-byte logical sectors) as having
4096-byte logical sectors, as Hyper-V writes for 4Kn disks.

The region table (64 KiB at 192 KiB; ``regi``, CRC-32C, entry count, then 32-byte entries: GUID,
file offset, length, required flag) locates the metadata region; its table (``metadata``, entry
count at offset 10, then 32-byte entries from offset 32: item GUID, offset within the region,
length, flags) locates the Logical Sector Size item, a 32-bit little-endian value. The metadata
region carries no checksum. A fixed or dynamic disk maps its blocks in bytes, so its media is
unchanged; only the unit its partition table is read in changes.
"""

from __future__ import annotations

import struct
import uuid
from pathlib import Path

_REGION_TABLE = 192 * 1024
_METADATA_REGION = uuid.UUID("8B7CA206-4790-4B9A-B8FE-575F050F886E").bytes_le
_LOGICAL_SECTOR_SIZE = uuid.UUID("8141BF1D-A96F-4709-BA47-F233A8FAAB5F").bytes_le


def set_logical_sector_size(path: Path, size: int) -> None:
    data = bytearray(path.read_bytes())
    signature, _crc, count = struct.unpack_from("<4sII", data, _REGION_TABLE)
    assert signature == b"regi"
    regions = {struct.unpack_from("<16s", data, _REGION_TABLE + 16 + 32 * i)[0]:
               struct.unpack_from("<Q", data, _REGION_TABLE + 32 + 32 * i)[0]
               for i in range(count)}
    meta = regions[_METADATA_REGION]
    signature, _, entries = struct.unpack_from("<8sHH", data, meta)
    assert signature == b"metadata"
    for i in range(entries):
        item, offset, _length, _flags = struct.unpack_from("<16sIII", data, meta + 32 + 32 * i)
        if item == _LOGICAL_SECTOR_SIZE:
            struct.pack_into("<I", data, meta + offset, size)
            path.write_bytes(bytes(data))
            return
    raise AssertionError("no Logical Sector Size item in the metadata table")
