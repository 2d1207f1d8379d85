"""Linux software RAID (md) members with version-1 metadata: the superblock, and where a member
holds its array's data whole (RAID1), the bytes of that data.

Why: NAS boxes (Synology, QNAP, most Linux-based ones) and Linux servers put their data volumes
on md arrays with metadata 1.2, whose superblock lies 4 KiB into the member and whose data starts
at ``data_offset`` (often 1 MiB or more in): no file system or LVM label is found at the member's
start, so the partition looked empty. A RAID1 member is a whole copy of the array, so its data
region is the array's content, browsed as the volume ``N/md``; members of other levels (RAID0,
4, 5, 6, 10, linear) hold a share only and are named, not read.

Metadata 1.1 puts the superblock at the member's start, 1.2 at 4 KiB (both with data after it);
0.90 and 1.0 put it near the end with the data from byte 0, where the file system is found at the
member's start without this module. The layout (``mdp_superblock_1``) and the checksum (the
32-bit little-endian words of the superblock and its role table summed in 64 bits, folded) are
those ``mdadm --examine`` reads; it is the test oracle.
"""

from __future__ import annotations

import struct
import uuid
from dataclasses import dataclass

from bitwitness.stream import ImageStream

MAGIC = 0xA92B4EFC
#: The superblock's fixed part; the role table (2 bytes per device slot) follows it.
_FIXED = 256
#: At most this many device slots: the superblock and its table fit in 4 KiB, as mdadm writes.
MAX_DEVICES = (4096 - _FIXED) // 2
#: Where version-1 superblocks lie from the member's start: 1.1, then 1.2.
_PLACES = (0, 4096)
_SECTOR = 512

_LEVELS = {-4: "multipath", -1: "linear", 0: "RAID0", 1: "RAID1", 4: "RAID4", 5: "RAID5",
           6: "RAID6", 10: "RAID10"}


@dataclass(frozen=True)
class MdMember:
    """One member's version-1 superblock, as far as reading the member needs it."""

    version: str  #: "1.1" or "1.2"
    level: int  #: 1 for RAID1, 5 for RAID5, -1 linear...
    raid_disks: int
    name: str  #: the array's name ("host:0"), as the superblock stores it
    array_uuid: str
    role: int | None  #: this member's slot in the array; None: spare or faulty
    data_offset: int  #: bytes from the member's start
    data_size: int  #: bytes of array data on this member

    @property
    def level_name(self) -> str:
        return _LEVELS.get(self.level, f"level {self.level}")

    @property
    def whole_copy(self) -> bool:
        """Whether this member holds its array's data whole (a mirror or one path of it)."""
        return self.level in (1, -4)

    def describe(self) -> str:
        """``md RAID1 member of 'host:0', device 0 of 2`` for descriptions."""
        role = f"device {self.role} of {self.raid_disks}" if self.role is not None else "spare"
        return f"md {self.level_name} member of '{self.name}' ({role}, metadata {self.version})"


def find_member(stream: ImageStream) -> MdMember | None:
    """The version-1 superblock at the member's start or 4 KiB in, when its magic, major
    version, own offset and checksum all hold; None otherwise (two small reads)."""
    for version, at in zip(("1.1", "1.2"), _PLACES, strict=True):
        block = stream.pread(at, 4096)
        found = _parse(block, at, version)
        if found is not None:
            return found
    return None


def _parse(block: bytes, at: int, version: str) -> MdMember | None:
    if len(block) < _FIXED:
        return None
    magic, major = struct.unpack_from("<II", block, 0)
    if magic != MAGIC or major != 1:
        return None
    (level,) = struct.unpack_from("<i", block, 72)
    (raid_disks,) = struct.unpack_from("<I", block, 92)
    data_offset, data_size, super_offset = struct.unpack_from("<QQQ", block, 128)
    (dev_number,) = struct.unpack_from("<I", block, 160)
    stored, max_dev = struct.unpack_from("<II", block, 216)
    if super_offset * _SECTOR != at or max_dev > MAX_DEVICES or _FIXED + 2 * max_dev > len(block):
        return None
    if _checksum(block[:_FIXED + 2 * max_dev]) != stored:
        return None
    role = None
    if dev_number < max_dev:
        (slot,) = struct.unpack_from("<H", block, _FIXED + 2 * dev_number)
        role = slot if slot < 0xFFFE else None  # 0xFFFF spare, 0xFFFE faulty
    name = block[32:64].split(b"\x00", 1)[0].decode("utf-8", "replace")
    return MdMember(version=version, level=level, raid_disks=raid_disks, name=name,
                    array_uuid=str(uuid.UUID(bytes=bytes(block[16:32]))), role=role,
                    data_offset=data_offset * _SECTOR, data_size=data_size * _SECTOR)


def _checksum(superblock: bytes) -> int:
    """md's version-1 checksum: the superblock with its checksum field as zero, summed as
    little-endian 32-bit words in 64 bits, the carry folded back once."""
    body = bytearray(superblock)
    body[216:220] = b"\x00\x00\x00\x00"
    if len(body) % 4:
        body += b"\x00" * (4 - len(body) % 4)
    total = sum(struct.unpack(f"<{len(body) // 4}I", body))
    return ((total & 0xFFFFFFFF) + (total >> 32)) & 0xFFFFFFFF
