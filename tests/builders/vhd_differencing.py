"""A differencing VHD, made from a dynamic VHD that ``qemu-img`` wrote (QEMU writes no
differencing VHD).

A differencing disk is a dynamic disk whose footer says disk type 4 and whose dynamic header
names its parent: the parent's unique id (offset 40), its timestamp (offset 56) and its file name
in UTF-16 big-endian (offset 64, 512 bytes). A sector whose bit is clear in its block's bitmap, or
whose block is not allocated, reads from the parent. Both checksums (footer at offset 64, dynamic
header at offset 36) are one's complements of the byte sums with the field counted as zero.
"""

from __future__ import annotations

import dataclasses
import struct
from pathlib import Path

from bitwitness.images.vhd import FOOTER_SIZE, pack_footer, unpack_footer, vhd_checksum

DISK_DIFFERENCING = 4


def make_differencing(child: Path, parent: Path, parent_name: str | None = None) -> None:
    """Turn the dynamic VHD ``child`` into a differencing disk of ``parent`` (in place)."""
    data = bytearray(child.read_bytes())
    parent_footer = unpack_footer(parent.read_bytes()[-FOOTER_SIZE:])
    footer = unpack_footer(bytes(data[-FOOTER_SIZE:]))
    footer = dataclasses.replace(footer, disk_type=DISK_DIFFERENCING)
    packed = pack_footer(footer)
    data[-FOOTER_SIZE:] = packed
    data[:FOOTER_SIZE] = packed
    header = footer.data_offset
    dyn = bytearray(data[header:header + 1024])
    dyn[40:56] = parent_footer.unique_id
    dyn[56:60] = struct.pack(">I", parent_footer.timestamp)
    name = (parent_name or parent.name).encode("utf-16-be")
    dyn[64:576] = name.ljust(512, b"\0")
    dyn[36:40] = struct.pack(">I", vhd_checksum(bytes(dyn), 36))
    data[header:header + 1024] = dyn
    child.write_bytes(bytes(data))
