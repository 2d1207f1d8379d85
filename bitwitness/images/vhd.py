"""Fixed VHD (Microsoft Virtual Hard Disk): raw media followed by a 512-byte footer.

The footer (all fields big-endian) starts with the cookie ``conectix``; its disk type is 2 for a
fixed disk. Dynamic and differencing VHDs carry a copy of the footer at offset 0 and need block
allocation tables; this module reads fixed disks only and says so clearly for the others.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

from bitwitness.errors import UnsupportedFormatError
from bitwitness.images.raw import open_readonly, read_exact
from bitwitness.stream import ImageStream, StreamInfo

COOKIE = b"conectix"
FOOTER_SIZE = 512
DISK_TYPES = {2: "fixed", 3: "dynamic", 4: "differencing"}


def read_footer(path: Path) -> bytes | None:
    """The last 512 bytes of ``path`` when they are a VHD footer, else ``None``."""
    try:
        size = path.stat().st_size
        if size < FOOTER_SIZE:
            return None
        with path.open("rb") as fh:
            fh.seek(size - FOOTER_SIZE)
            footer = fh.read(FOOTER_SIZE)
    except OSError:
        return None
    return footer if footer.startswith(COOKIE) else None


class VhdFixedStream(ImageStream):
    alignment = 1

    def __init__(self, path: Path) -> None:
        self.path = path
        footer = read_footer(path)
        if footer is None:
            raise UnsupportedFormatError(f"{path}: no VHD footer")
        disk_type = struct.unpack(">I", footer[60:64])[0]
        if disk_type != 2:
            kind = DISK_TYPES.get(disk_type, f"type {disk_type}")
            raise UnsupportedFormatError(
                f"{path}: {kind} VHD is not supported (only fixed VHD); "
                "convert it with 'qemu-img convert -O raw' first")
        current_size = struct.unpack(">Q", footer[48:56])[0]
        self._fd = open_readonly(path)
        available = os.fstat(self._fd).st_size - FOOTER_SIZE
        super().__init__(min(current_size, available))

    def _read_aligned(self, offset: int, length: int) -> bytes:
        return read_exact(self._fd, offset, length, self.path)

    def close(self) -> None:
        if not self.closed:
            os.close(self._fd)
        super().close()

    @property
    def info(self) -> StreamInfo:
        return StreamInfo(format="vhd", files=(self.path,), media_size=self.size,
                          sector_size=self.sector_size, details={"vhd_type": "fixed"})


class VhdFormat:
    name = "vhd"

    def probe(self, path: Path, head: bytes) -> bool:
        if head.startswith(COOKIE):  # dynamic/differencing: footer copy at offset 0
            return True
        return path.suffix.lower() == ".vhd" and read_footer(path) is not None

    def claims_name(self, path: Path) -> bool:
        return path.suffix.lower() == ".vhd"

    def files(self, path: Path) -> list[Path]:
        return [path]

    def open(self, path: Path) -> ImageStream:
        return VhdFixedStream(path)


FORMAT = VhdFormat()
