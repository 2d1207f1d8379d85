"""A differencing VHDX, made from a dynamic VHDX that ``qemu-img`` wrote (QEMU writes no
differencing VHDX: "Backing file not supported for file format 'vhdx'").

From the format's public description (MS-VHDX): a differencing disk is a dynamic disk whose file
parameters item has bit 1 (HasParent) set and whose metadata holds a parent locator item (GUID
A8D35F2D-...; locator type B04AEFB7-...; key/value pairs in UTF-16LE: ``parent_linkage``, the
parent's data write GUID in braces, and ``relative_path``). A payload block the child stores in
full stays "fully present"; one made "partially present" (state 7) takes, sector by sector, the
sectors whose bit is set in its chunk's sector-bitmap block (a 1 MiB block located by the BAT
entry after each chunk's payload entries; least significant bit first) and the rest from the
parent. Blocks "not present" read from the parent; QEMU marks the blocks it never wrote "zero"
(which must read as zeros, parent or not), so those become "not present", as in a differencing
disk Hyper-V made. The metadata region and the BAT carry no
checksum, so the headers and region tables stay as QEMU wrote them.
"""

from __future__ import annotations

import struct
import uuid
from pathlib import Path

MiB = 1024 * 1024
_REGION_TABLE = 192 * 1024
_BAT = uuid.UUID("2DC27766-F623-4200-9D64-115E9BFD4A08").bytes_le
_METADATA = uuid.UUID("8B7CA206-4790-4B9A-B8FE-575F050F886E").bytes_le
_FILE_PARAMETERS = uuid.UUID("CAA16737-FA36-4D43-B3B6-33F0AA44E76B").bytes_le
_VIRTUAL_DISK_SIZE = uuid.UUID("2FA54224-CD1B-4876-B211-5DBED83BF4B8").bytes_le
_LOGICAL_SECTOR = uuid.UUID("8141BF1D-A96F-4709-BA47-F233A8FAAB5F").bytes_le
_PARENT_LOCATOR = uuid.UUID("A8D35F2D-B30B-454D-ABF7-D3D84834AB0C").bytes_le
_VHDX_LOCATOR_TYPE = uuid.UUID("B04AEFB7-D19E-4A81-B789-25B8E9445913").bytes_le
_IS_REQUIRED = 4


def _regions(data: bytes | bytearray) -> dict[bytes, tuple[int, int]]:
    assert data[_REGION_TABLE:_REGION_TABLE + 4] == b"regi"
    count = struct.unpack_from("<I", data, _REGION_TABLE + 8)[0]
    out = {}
    for i in range(count):
        guid, offset, length = struct.unpack_from("<16sQI", data, _REGION_TABLE + 16 + 32 * i)
        out[guid] = (offset, length)
    return out


def data_write_guid(path: Path) -> bytes:
    """The data write GUID of the current header (the valid one with the higher sequence)."""
    data = path.read_bytes()
    headers = [data[o:o + 4096] for o in (64 * 1024, 128 * 1024)]
    current = max(headers, key=lambda h: struct.unpack_from("<Q", h, 8)[0])
    return current[32:48]


def _locator(parent_guid: bytes, name: str) -> bytes:
    pairs = [("parent_linkage", "{" + str(uuid.UUID(bytes_le=parent_guid)) + "}"),
             ("relative_path", ".\\" + name),
             ("absolute_win32_path", "\\\\?\\C:\\VMs\\" + name)]
    header = _VHDX_LOCATOR_TYPE + struct.pack("<HH", 0, len(pairs))
    strings = b""
    entries = b""
    base = len(header) + 12 * len(pairs)
    for key, value in pairs:
        k, v = key.encode("utf-16-le"), value.encode("utf-16-le")
        entries += struct.pack("<IIHH", base + len(strings), base + len(strings) + len(k),
                               len(k), len(v))
        strings += k + v
    return header + entries + strings


def make_differencing(child: Path, parent: Path,
                      partial: dict[int, list[tuple[int, int]]] | None = None) -> list[int]:
    """Turn the dynamic VHDX ``child`` into a differencing disk of ``parent`` (in place).

    ``partial`` maps a payload block the child stores to the (first, count) sector runs that
    stay the child's; the block becomes partially present and its other sectors read from the
    parent. Returns the payload blocks the child stores (fully or partially).
    """
    data = bytearray(child.read_bytes())
    regions = _regions(data)
    meta, meta_length = regions[_METADATA]
    count = struct.unpack_from("<H", data, meta + 10)[0]
    items = {}
    end = 64 * 1024
    for i in range(count):
        guid, offset, length = struct.unpack_from("<16sII", data, meta + 32 + 32 * i)
        items[guid] = offset
        end = max(end, offset + length)
    params = meta + items[_FILE_PARAMETERS]
    block_size, flags = struct.unpack_from("<II", data, params)
    struct.pack_into("<I", data, params + 4, flags | 2)
    sector = struct.unpack_from("<I", data, meta + items[_LOGICAL_SECTOR])[0]
    locator = _locator(data_write_guid(parent), parent.name)
    at = -(-end // 8) * 8
    assert at + len(locator) <= meta_length
    data[meta + at:meta + at + len(locator)] = locator
    struct.pack_into("<16sIIII", data, meta + 32 + 32 * count, _PARENT_LOCATOR, at,
                     len(locator), _IS_REQUIRED, 0)
    struct.pack_into("<H", data, meta + 10, count + 1)
    bat, bat_length = regions[_BAT]
    ratio = (1 << 23) * sector // block_size
    blocks = -(-struct.unpack_from("<Q", data, meta + items[_VIRTUAL_DISK_SIZE])[0] // block_size)
    stored = []
    for block in range(blocks):  # QEMU marks blocks never written "zero" (2): here the parent's
        index = block + block // ratio
        state = struct.unpack_from("<Q", data, bat + 8 * index)[0] & 7
        if state == 2:
            struct.pack_into("<Q", data, bat + 8 * index, 0)
        elif state == 6:
            stored.append(block)
    for block, runs in (partial or {}).items():
        index = block + block // ratio
        value = struct.unpack_from("<Q", data, bat + 8 * index)[0]
        assert value & 7 == 6, f"block {block} is not stored by the child"
        struct.pack_into("<Q", data, bat + 8 * index, (value & ~7) | 7)
        chunk = block // ratio
        sb_index = chunk * (ratio + 1) + ratio
        assert 8 * (sb_index + 1) <= bat_length
        sb = struct.unpack_from("<Q", data, bat + 8 * sb_index)[0]
        if sb & 7 != 6:
            where = -(-len(data) // MiB) * MiB
            data.extend(bytes(where + MiB - len(data)))
            struct.pack_into("<Q", data, bat + 8 * sb_index, (where // MiB) << 20 | 6)
            sb = (where // MiB) << 20 | 6
        bitmap_at = (sb >> 20) * MiB + (block % ratio) * (block_size // sector // 8)
        for first, n in runs:
            for s in range(first, first + n):
                data[bitmap_at + s // 8] |= 1 << (s % 8)
    child.write_bytes(bytes(data))
    return stored
