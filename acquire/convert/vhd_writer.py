"""Fixed VHD writer: the media as it is, then one 512-byte footer.

A fixed VHD is the only VHD kind whose data area *is* the raw media, byte for byte, so an examiner
can still hash or carve the container directly. The footer records the exact size, a CHS geometry
computed by the VHD specification's algorithm, a random unique id and the creation time counted
from 2000-01-01 UTC; its checksum is the one's complement of the byte sum.

Creator application: we write ``win `` (Hyper-V's tag). qemu (and Virtual PC) size a VHD by its
CHS geometry unless the creator is one of the tools known to use the footer's exact current size
(Hyper-V, disk2vhd, XenServer); CHS geometry usually rounds the size *down*, which would silently
cut the end off the evidence. With ``win `` every reader takes the exact byte count. The
conversion log, not this tag, records that BitWitness wrote the file.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

from bitwitness.acquire.convert.outputs import FileSink
from bitwitness.errors import UsageError
from bitwitness.images.vhd import (
    DISK_FIXED,
    SECTOR,
    VHD_EPOCH,
    VhdFooter,
    chs_geometry,
    pack_footer,
)

#: Creator tag that makes every reader use the exact current size (see the module docstring).
CREATOR_APP = b"win "
CREATOR_HOST = b"Wi2k"
#: The largest disk a VHD can describe (2040 GiB per the specification).
MAX_VHD_SIZE = 2040 * 1024**3


def fixed_footer(size: int, *, unique_id: bytes | None = None,
                 created: datetime | None = None) -> bytes:
    """The footer of a fixed VHD holding ``size`` bytes of media."""
    if size % SECTOR:
        raise UsageError(f"a VHD holds whole 512-byte sectors; the media has {size} bytes")
    if size > MAX_VHD_SIZE:
        raise UsageError(f"the media ({size} bytes) is larger than a VHD can hold (2040 GiB)")
    when = created or datetime.now(UTC)
    seconds = max(0, int((when - VHD_EPOCH).total_seconds()))
    footer = VhdFooter(
        disk_type=DISK_FIXED, current_size=size, original_size=size,
        geometry=chs_geometry(size), timestamp=seconds & 0xFFFF_FFFF,
        creator_app=CREATOR_APP, creator_version=_creator_version(), creator_host=CREATOR_HOST,
        unique_id=unique_id or uuid.uuid4().bytes)
    return pack_footer(footer)


def _creator_version() -> int:
    """BitWitness major.minor as the footer's 16.16 creator version."""
    from bitwitness import __version__

    parts = [*__version__.split("."), "0", "0"]
    try:
        return (int(parts[0]) & 0xFFFF) << 16 | (int(parts[1]) & 0xFFFF)
    except ValueError:
        return 0


class VhdFixedWriter:
    """Sink that writes ``BASE.vhd``: exactly ``media_size`` bytes, then the footer."""

    def __init__(self, path: Path, media_size: int, *, overwrite: bool = False,
                 unique_id: bytes | None = None, created: datetime | None = None) -> None:
        self.footer = fixed_footer(media_size, unique_id=unique_id, created=created)
        self.path = path
        self.media_size = media_size
        self._raw = FileSink(path, overwrite=overwrite)
        self._written = 0

    def write(self, data: bytes | memoryview) -> None:
        if self._written + len(data) > self.media_size:
            raise UsageError("more media than announced was written to the VHD")
        self._raw.write(data)
        self._written += len(data)

    def finish(self) -> list[Path]:
        if self._written != self.media_size:
            self._raw.abort()
            raise UsageError(
                f"VHD incomplete: {self._written} of {self.media_size} bytes were written")
        self._raw.write(self.footer)
        return self._raw.finish()

    def abort(self) -> list[Path]:
        return self._raw.abort()
