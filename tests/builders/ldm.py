"""Windows dynamic disks (Logical Disk Manager) on MBR, laid out as Windows writes them: one
partition-table row of type 0x42 from sector 63 to the disk's end, the PRIVHEAD in sector 6
(copies at 1856 and 2047 sectors into the database), and the database in the disk's last
2048 sectors: TOCBLOCKs at 1, 2, 2045 and 2046, the VMDB at 17 and its VBLKs after it, every
slot up to the config area's end a VBLK (blank ones as Windows leaves them). Records longer than
one VBLK are split over several, as Windows splits them. Every integer is big-endian.

``ldmtool`` (libldm) reads what this writes and is the test oracle; nothing here is shared with
the reader (report/browse/ldm.py), so that a misreading on one side is not hidden by the other.
"""

from __future__ import annotations

import os
import struct
import subprocess
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

SECTOR = 512
#: Where Windows starts the data area on an MBR disk (the 0x42 row's first sector).
DATA_START = 63
#: Where write_gpt_disk puts the "LDM data" partition (by default).
GPT_DATA_START = 4096
#: The database's size in sectors, at the disk's end.
CONFIG_SECTORS = 2048
VBLK_SIZE = 128
#: The VMDB and its VBLKs: 1472 sectors from 17 sectors into the database; the log after it.
VMDB_SECTOR, VMDB_SECTORS, LOG_SECTORS = 17, 1472, 224


@dataclass
class Part:
    """A partition of the database: ``start`` and ``size`` in sectors from the data area."""

    start: int
    size: int
    disk: str = "Disk1"  #: the disk it lies on, by the disk record's name


@dataclass
class Volume:
    """A volume: one component per plex (two for a mirror), each a list of partitions."""

    name: str
    plexes: list[list[Part]]
    kind: str = "spanned"  #: the component type: "spanned", "striped" or "raid5"
    hint: str | None = None  #: the drive letter Windows last gave it ("E:")
    part_type: int = 0x07  #: the partition type the volume would have in an MBR
    chunk: int = 128  #: stripe size in sectors, for striped and RAID5 volumes

    @property
    def size(self) -> int:
        """Sectors: one plex's partitions end to end (a stripe set's: all of them)."""
        plex = self.plexes[0]
        if self.kind == "raid5":
            return sum(p.size for p in plex) * (len(plex) - 1) // len(plex)
        return sum(p.size for p in plex)


@dataclass
class Layout:
    volumes: list[Volume]
    group: str = "WIN-HOSTDg0"
    disks: list[str] = field(default_factory=lambda: ["Disk1"])
    #: the disk this image is, by name
    this_disk: str = "Disk1"
    group_guid: str = "c5c9f1d4-3e7a-11e6-9a2b-000c29b1e3aa"
    #: the data area's first sector, which partitions count from (GPT: the LDM data partition)
    data_start: int = DATA_START
    disk_guids: dict[str, str] = field(default_factory=dict)

    def guid(self, disk: str) -> str:
        return self.disk_guids.setdefault(disk, str(uuid.uuid5(uuid.NAMESPACE_OID, disk)))


def _num(value: int) -> bytes:
    """A variable-length number: its byte count, then the bytes, big-endian."""
    raw = value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big")
    return bytes([len(raw)]) + raw


def _text(value: str) -> bytes:
    raw = value.encode("ascii")
    return bytes([len(raw)]) + raw


def _record(kind: int, revision: int, flags: int, body: bytes) -> bytes:
    """A record: status, flags, type (revision in the high nibble), size; then the body."""
    return struct.pack(">HBBI", 0, flags, (revision << 4) | kind, 8 + len(body)) + body


def records(layout: Layout) -> list[bytes]:
    """Every record of the database: the disk group, the disks, then per volume its
    components and partitions and the volume itself (object ids in that order)."""
    out: list[bytes] = []
    ids = iter(range(1, 1 << 20))
    group_id = next(ids)
    out.append(_record(5, 4, 0, _num(group_id) + _text(layout.group) + b"\x00" * 16))
    disk_ids: dict[str, int] = {}
    for disk in layout.disks:
        disk_ids[disk] = next(ids)
        body = _num(disk_ids[disk]) + _text(disk) + uuid.UUID(layout.guid(disk)).bytes
        out.append(_record(4, 4, 0, body + b"\x00" * 24))
    part_number = 0
    for volume in layout.volumes:
        volume_id = next(ids)
        plex_records = []
        for plex_index, plex in enumerate(volume.plexes):
            comp_id = next(ids)
            comp_type = {"striped": 1, "spanned": 2, "raid5": 3}[volume.kind]
            extra = b""
            flags = 0
            if volume.kind != "spanned":
                flags = 0x10
                extra = _num(volume.chunk) + _num(len(plex))
            body = (_num(comp_id) + _text(f"{volume.name}-{plex_index + 1:02d}")
                    + _text("ACTIVE") + bytes([comp_type]) + b"\x00" * 4 + _num(len(plex))
                    + b"\x00" * 16 + _num(volume_id) + b"\x00" + extra)
            plex_records.append(_record(2, 3, flags, body))
            offset = 0
            for index, part in enumerate(plex):
                part_number += 1
                body = (_num(next(ids)) + _text(f"{part.disk}-{part_number:02d}")
                        + b"\x00" * 4 + b"\x00" * 8 + struct.pack(">QQ", part.start, offset)
                        + _num(part.size) + _num(comp_id) + _num(disk_ids[part.disk])
                        + _num(index))
                plex_records.append(_record(3, 3, 0x08, body))
                offset += part.size
        flags = 0x02 if volume.hint else 0
        body = (_num(volume_id) + _text(volume.name)
                + _text("raid5" if volume.kind == "raid5" else "gen")
                + _text("8000000000000000") + b"ACTIVE".ljust(14, b"\x00")
                + bytes([4 if volume.kind == "raid5" else 3]) + b"\x00" + bytes([volume_id & 0xFF])
                + b"\x00" * 3 + b"\x00" + _num(len(volume.plexes)) + b"\x00" * 16
                + _num(volume.size) + b"\x00" * 4 + bytes([volume.part_type])
                + uuid.uuid5(uuid.NAMESPACE_OID, volume.name).bytes)
        if volume.hint:
            body += _text(volume.hint)
        out.extend(plex_records)
        out.append(_record(1, 5, flags, body))
    return out


def counts(layout: Layout) -> tuple[int, int, int, int]:
    """Volumes, components, partitions, disks: what the VMDB says it holds."""
    return (len(layout.volumes), sum(len(v.plexes) for v in layout.volumes),
            sum(len(p) for v in layout.volumes for p in v.plexes), len(layout.disks))


def vblks(layout: Layout, first_seq: int, slots: int) -> bytes:
    """The records cut into VBLKs (a record longer than one VBLK's 112 data bytes is split, each
    piece with its number and the total), then blank VBLKs to fill ``slots``."""
    room = VBLK_SIZE - 16
    out = bytearray()
    seq = first_seq
    for record_id, record in enumerate(records(layout), start=1):
        pieces = [record[at:at + room] for at in range(0, len(record), room)]
        for number, piece in enumerate(pieces):
            out += struct.pack(">4sIIHH", b"VBLK", seq, record_id, number, len(pieces))
            out += piece.ljust(room, b"\x00")
            seq += 1
    if len(out) // VBLK_SIZE > slots:
        raise ValueError("too many records for the database")
    while len(out) // VBLK_SIZE < slots:
        out += struct.pack(">4sI", b"VBLK", seq).ljust(VBLK_SIZE, b"\x00")
        seq += 1
    return bytes(out)


def privhead(layout: Layout, disk_sectors: int, config: int = CONFIG_SECTORS, *,
             config_start: int | None = None, data_end: int | None = None) -> bytes:
    """The PRIVHEAD: on an MBR disk the database ends the disk and the data area ends where it
    starts; a GPT disk gives both (its LDM metadata and data partitions)."""
    if config_start is None:
        config_start = disk_sectors - config
    if data_end is None:
        data_end = config_start
    head = bytearray(SECTOR)
    struct.pack_into(">8sIHH", head, 0, b"PRIVHEAD", 0x2C3A, 2, 12)
    struct.pack_into(">Q", head, 16, 0x01D8_0000_0000_0000)  # a FILETIME
    head[48:48 + 36] = layout.guid(layout.this_disk).encode()
    head[112:112 + 36] = str(uuid.uuid5(uuid.NAMESPACE_OID, "host")).encode()
    head[176:176 + 36] = layout.group_guid.encode()
    head[240:240 + len(layout.group)] = layout.group.encode()
    struct.pack_into(">QQQQQQIIQQI", head, 283, layout.data_start, data_end - layout.data_start,
                     config_start, config, 2, 1, 1, 1, *_areas(config),
                     0x1234ABCD)
    return bytes(head)


def _areas(config: int) -> tuple[int, int]:
    """The config and log areas' sectors: Windows' 1472 and 224 in its 2048-sector database;
    the same shares of a smaller one (the fuzz seeds' databases are small)."""
    if config == CONFIG_SECTORS:
        return VMDB_SECTORS, LOG_SECTORS
    return config * VMDB_SECTORS // CONFIG_SECTORS, config * LOG_SECTORS // CONFIG_SECTORS


def tocblock(config: int = CONFIG_SECTORS) -> bytes:
    vmdb_sectors, log_sectors = _areas(config)
    block = bytearray(SECTOR)
    struct.pack_into(">8sI", block, 0, b"TOCBLOCK", 1)
    struct.pack_into(">8sHQQQ", block, 36, b"config", 0, VMDB_SECTOR, vmdb_sectors, 0)
    struct.pack_into(">8sHQQQ", block, 70, b"log", 0, VMDB_SECTOR + vmdb_sectors, log_sectors, 0)
    return bytes(block)


def vmdb(layout: Layout, last_seq: int) -> bytes:
    block = bytearray(SECTOR)
    struct.pack_into(">4sIIIHHH", block, 0, b"VMDB", last_seq, VBLK_SIZE, SECTOR, 1, 4, 10)
    block[22:22 + len(layout.group)] = layout.group.encode()
    block[53:53 + 36] = layout.group_guid.encode()
    struct.pack_into(">QQIIII", block, 117, 7, 7, *counts(layout))
    return bytes(block)


def database(layout: Layout, ph: bytes, config: int = CONFIG_SECTORS) -> bytes:
    """The database's ``config`` sectors (Windows: 2048), holding copies of ``ph``."""
    db = bytearray(config * SECTOR)
    for sector in (1, 2, config - 3, config - 2):
        db[sector * SECTOR:(sector + 1) * SECTOR] = tocblock(config)
    for sector in (1856, config - 1):
        if sector < config:
            db[sector * SECTOR:(sector + 1) * SECTOR] = ph
    slots = _areas(config)[0] * SECTOR // VBLK_SIZE - SECTOR // VBLK_SIZE
    first = SECTOR // VBLK_SIZE
    blocks = vblks(layout, first, slots)
    at = VMDB_SECTOR * SECTOR
    db[at:at + SECTOR] = vmdb(layout, first + slots - 1)
    db[at + SECTOR:at + SECTOR + len(blocks)] = blocks
    return bytes(db)


def mbr(disk_sectors: int) -> bytes:
    """One row, type 0x42, from sector 63 to the disk's end (CHS as 0xFEFFFF, as for LBA)."""
    sector = bytearray(SECTOR)
    struct.pack_into("<I", sector, 440, 0x1234ABCD)
    entry = struct.pack("<B3sB3sII", 0, b"\x01\x01\x00", 0x42, b"\xfe\xff\xff", DATA_START,
                        disk_sectors - DATA_START)
    sector[446:462] = entry
    sector[510:512] = b"\x55\xaa"
    return bytes(sector)


def write_disk(image: Path, layout: Layout, config: int = CONFIG_SECTORS) -> None:
    """Write the MBR, PRIVHEAD and database of ``layout`` into ``image`` (made already, of the
    disk's size; the volumes' contents are the caller's). ``config``: the database's sectors,
    Windows' 2048 unless a test wants a smaller disk."""
    disk_sectors = image.stat().st_size // SECTOR
    head = privhead(layout, disk_sectors, config)
    with image.open("r+b") as out:
        out.write(mbr(disk_sectors))
        out.seek(6 * SECTOR)
        out.write(head)
        out.seek((disk_sectors - config) * SECTOR)
        out.write(database(layout, head, config))


def write_gpt_disk(image: Path, layout: Layout, config: int = CONFIG_SECTORS,
                   metadata: int = 2048) -> None:
    """A GPT dynamic disk as Windows lays it out: sgdisk writes the table, with an "LDM
    metadata" partition (type 4201) of ``config`` sectors at sector ``metadata`` holding the
    database, its last sector the PRIVHEAD, and an "LDM data" partition (4200) from there to
    the end, whose first sector the volumes' partitions count from. (Windows: 2048 sectors at
    2048; the fuzz seed's are smaller.)"""
    data_start = metadata + config
    subprocess.run(["sgdisk", "-o", "-n", f"1:{metadata}:{data_start - 1}", "-t", "1:4201",
                    "-c", "1:LDM metadata", "-n", f"2:{data_start}:0", "-t", "2:4200",
                    "-c", "2:LDM data", os.fspath(image)], capture_output=True, check=True)
    layout.data_start = data_start
    disk_sectors = image.stat().st_size // SECTOR
    data_end = disk_sectors - 34 + 1  # sgdisk's last usable sector, then one past it
    head = privhead(layout, disk_sectors, config, config_start=metadata, data_end=data_end)
    with image.open("r+b") as out:
        out.seek(metadata * SECTOR)
        out.write(database(layout, head, config))


def extents(layout: Layout, volume: Volume) -> list[tuple[int, int]]:
    """The byte offset in the disk and byte length of each partition of the first plex."""
    return [((layout.data_start + p.start) * SECTOR, p.size * SECTOR) for p in volume.plexes[0]]


def put(image: Path, places: Sequence[tuple[int, int]], data: bytes) -> None:
    """Write ``data`` (a volume's bytes) over the extents ``places``, end to end."""
    with image.open("r+b") as out:
        done = 0
        for offset, length in places:
            out.seek(offset)
            out.write(data[done:done + length])
            done += length
