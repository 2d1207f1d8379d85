"""Partition tables counted in the media's own sector size (4096-byte logical sectors).

An MBR and its chain of extended boot records count in logical sectors of the disk they are on.
The Sleuth Kit reads an image in 512-byte units unless told otherwise (``mmls -b 4096``), and
pytsk3 cannot tell it; GPT it recognises in any unit by itself, but an MBR on a disk of 4096-byte
sectors it reads in 512-byte units: the partitions start at an eighth of their offset, the
table seems to run past the media's end, and the extended boot records are looked for at the
wrong places.

When the image declares larger sectors (an E01's volume section, a VHDX's metadata, a block
device), the DOS table is read again through :class:`SectorHeads`: a view of the media in which
sector ``n`` is the first 512 bytes of the media's sector ``n``. Everything of a DOS table (the
MBR, each extended boot record of the chain) lies in the first 512 bytes of the sector that
holds it, and every number in it counts sectors, so TSK's own DOS reader, walking that view in
512-byte units, reads exactly what ``mmls -b 4096`` reads in 4096-byte units: the same rows,
descriptions, slots, extended tables and unallocated gaps (the view holds as many sectors as the
media). Only the unit of the numbers changes: a row's bytes start at ``start * sector_size``.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytsk3

from bitwitness.report.browse.tsk import TskImage
from bitwitness.stream import ImageStream

#: The size of a DOS partition table sector as TSK reads it by default.
TABLE_UNIT = 512


@dataclass(frozen=True)
class Row:
    """A volume-system row before file systems are probed."""

    kind: str  #: "partition", "unallocated", "meta"
    start: int
    length: int
    description: str
    slot: str = "-------"  #: the slot column of ``mmls`` ("000:001", "Meta", "-------", "002")


def slot(part: pytsk3.TSK_VS_PART_INFO) -> str:
    """The "Slot" column ``mmls`` prints for ``part``: ``Meta`` for a meta row, ``TTT:SSS``
    (table and slot in that table) when TSK knows both, ``SSS`` when it knows only the slot
    (GPT, APM, BSD, Sun), ``-------`` otherwise (unallocated space)."""
    table, number = int(part.table_num), int(part.slot_num)
    if int(part.flags) & int(pytsk3.TSK_VS_PART_FLAG_META):
        return "Meta"
    if number == -1:
        return "-------"
    if table == -1:
        return f"{number:03d}"
    return f"{table:03d}:{number:03d}"


def needs_rescaling(scheme: str, table_unit: int, media_sector: int) -> bool:
    """A DOS table TSK read in smaller units than the media's sectors must be read again."""
    return scheme == "dos" and media_sector > table_unit


class SectorHeads(TskImage):
    """The media seen by TSK as 512-byte sectors, each the head of one ``unit``-byte sector.

    Only a DOS table is read through it (see the module's docstring); file systems are read
    through the plain :class:`TskImage` at ``start * unit``.
    """

    def __init__(self, stream: ImageStream, unit: int) -> None:
        self.unit = unit
        super().__init__(stream)

    def read(self, offset: int, size: int) -> bytes:
        end = min(offset + size, self.get_size())
        out = bytearray()
        while offset < end:
            sector, within = divmod(offset, TABLE_UNIT)
            take = min(TABLE_UNIT - within, end - offset)
            out += super().read(sector * self.unit + within, take)
            offset += take
        return bytes(out)

    def get_size(self) -> int:
        return self.stream.size // self.unit * TABLE_UNIT
