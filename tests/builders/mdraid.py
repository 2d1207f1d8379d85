"""Linux md members with version-1.2 metadata, written as ``mdadm --create`` lays them out (the
kernel's md driver, which ``mdadm --create`` needs, may be missing here; ``mdadm --examine``
reads files and checks what this writes, checksum included)."""

from __future__ import annotations

import struct
import uuid
from pathlib import Path

SECTOR = 512
#: Where metadata 1.2 puts the superblock: 4 KiB (8 sectors) into the member.
SUPER_OFFSET = 8


def write_member(image: Path, *, level: int = 1, raid_disks: int = 2, role: int = 0,
                 data_offset: int = 2048, data_size: int | None = None,
                 name: str = "host:0") -> int:
    """Write a version-1.2 superblock into ``image`` (made already, its size the member's):
    the array's data starts ``data_offset`` sectors in and runs ``data_size`` sectors (to the
    end by default). Returns the data's first byte."""
    if data_size is None:
        data_size = image.stat().st_size // SECTOR - data_offset
    max_dev = 4
    sb = bytearray(256 + 2 * max_dev)
    struct.pack_into("<II", sb, 0, 0xA92B4EFC, 1)  # magic, major version
    sb[16:32] = uuid.uuid4().bytes  # array UUID
    encoded = name.encode()
    sb[32:32 + len(encoded)] = encoded
    struct.pack_into("<i", sb, 72, level)
    struct.pack_into("<Q", sb, 80, data_size)  # array size per member, sectors
    struct.pack_into("<I", sb, 88, 128 if level not in (1, -1) else 0)  # chunk size, sectors
    struct.pack_into("<I", sb, 92, raid_disks)
    struct.pack_into("<QQQ", sb, 128, data_offset, data_size, SUPER_OFFSET)
    struct.pack_into("<I", sb, 160, role)  # dev_number: this member's slot in the table
    sb[168:184] = uuid.uuid4().bytes  # device UUID
    struct.pack_into("<I", sb, 220, max_dev)
    for slot in range(max_dev):
        struct.pack_into("<H", sb, 256 + 2 * slot, slot if slot < raid_disks else 0xFFFF)
    total = sum(struct.unpack_from("<I", sb, at)[0] for at in range(0, len(sb), 4))
    struct.pack_into("<I", sb, 216, ((total & 0xFFFFFFFF) + (total >> 32)) & 0xFFFFFFFF)
    with image.open("r+b") as out:
        out.seek(SUPER_OFFSET * SECTOR)
        out.write(sb)
    return data_offset * SECTOR
