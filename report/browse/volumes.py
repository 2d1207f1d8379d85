"""Partitions of a media and the file system found in each.

The rows are The Sleuth Kit's volume-system rows, numbered as ``mmls`` numbers them (its "slot"
column ``000:``, ``001:``...), meta entries and unallocated gaps included, so that an analyst can
put our ``partitions`` output next to ``mmls`` and see the same table. ``-p N`` names one of those
rows. A media without a partition table (a file system written from sector 0) gives one row,
index 0, of kind :attr:`PartitionKind.WHOLE`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from enum import StrEnum

import pytsk3

from bitwitness.errors import FileSystemError
from bitwitness.report.browse import units
from bitwitness.report.browse.gpt import SECTOR_SIZES, audit, primary_rows, read_gpt
from bitwitness.report.browse.tsk import TSK_FAILURES, TskImage, text, tsk_errors
from bitwitness.stream import ImageStream

#: pytsk3 file-system type codes -> the short names we print (as ``fsstat`` spells them).
FS_NAMES: dict[int, str] = {
    int(getattr(pytsk3, f"TSK_FS_TYPE_{name.upper()}")): name
    for name in ("ntfs", "fat12", "fat16", "fat32", "exfat", "ext2", "ext3", "ext4", "hfs",
                 "iso9660", "ffs1", "ffs1b", "ffs2", "yaffs2", "apfs", "swap", "raw")
    if hasattr(pytsk3, f"TSK_FS_TYPE_{name.upper()}")
}

_VS_NAMES: dict[int, str] = {
    int(pytsk3.TSK_VS_TYPE_DOS): "dos",
    int(pytsk3.TSK_VS_TYPE_GPT): "gpt",
    int(pytsk3.TSK_VS_TYPE_MAC): "mac",
    int(pytsk3.TSK_VS_TYPE_BSD): "bsd",
    int(pytsk3.TSK_VS_TYPE_SUN): "sun",
}

#: Signatures of encrypted volumes TSK cannot read: (byte offset in the volume, magic, name).
_ENCRYPTED: tuple[tuple[int, bytes, str], ...] = (
    (3, b"-FVE-FS-", "BitLocker"),
    (0, b"LUKS\xba\xbe", "LUKS"),
)
#: The BitLocker identifier (GUID 4967d63b-2e29-4ad8-8399-f6a339e3d001, as stored).
BITLOCKER_ID = bytes.fromhex("3bd66749292ed84a8399f6a339e3d001")


def is_bitlocker_to_go(head: bytes) -> bool:
    """Whether a volume's first sector is BitLocker To Go's on a FAT drive: the boot sector of
    a FAT32 discovery volume (OEM name ``MSWIN4.1``; Windows XP and Vista read the BitLocker
    To Go Reader from it) holding the BitLocker identifier at byte 424 and the metadata offsets
    after it (libbde's format documentation; util-linux's BitLocker probe checks the same).
    TSK reads the discovery volume as a FAT32 and nothing else: the drive's encrypted file
    system went unseen. (BitLocker To Go on NTFS starts with ``-FVE-FS-`` as fixed drives.)"""
    return head[3:11] == b"MSWIN4.1" and head[424:440] == BITLOCKER_ID


class PartitionKind(StrEnum):
    """What a row of the volume system is."""

    PARTITION = "partition"  #: an allocated partition (may hold a file system)
    UNALLOCATED = "unallocated"  #: space no partition claims
    META = "meta"  #: the partition table itself (MBR, GPT header, ...)
    WHOLE = "whole"  #: no partition table: the whole media


@dataclass(frozen=True)
class Partition:
    """One row of the volume system; sectors are in units of the table's sector size."""

    index: int
    kind: PartitionKind
    start: int  #: first sector
    length: int  #: sectors
    description: str
    sector_size: int
    filesystem: str | None = None  #: "ntfs", "fat32", "ext4", ...; None when none was found
    encrypted: str | None = None  #: "BitLocker", "LUKS" when the volume is encrypted
    #: path in the volume tree ("2/vss3", "0/luks1") of a volume inside this row; None: the row
    volume: str | None = None
    key: str | None = None  #: which kind of key decrypted it ("passphrase file"), never the key
    #: ``mmls``'s slot column ("000:001", "Meta", "-------", "002"); None: not a table's row
    slot: str | None = None

    @property
    def end(self) -> int:
        """Last sector (inclusive), as ``mmls`` prints it."""
        return self.start + self.length - 1

    @property
    def byte_offset(self) -> int:
        return self.start * self.sector_size


@dataclass(frozen=True)
class VolumeLayout:
    """The partition table of a media (``scheme`` "none" when there is none)."""

    scheme: str  #: "dos", "gpt", "mac", "bsd", "sun" or "none"
    sector_size: int
    media_size: int
    partitions: tuple[Partition, ...]
    #: what the table's own checks found beside the rows (a GPT copy damaged or altered: see
    #: :func:`~bitwitness.report.browse.gpt.audit`), one line each for every command to say
    notes: tuple[str, ...] = ()

    @property
    def filesystems(self) -> tuple[Partition, ...]:
        """The rows in which a file system was found."""
        return tuple(p for p in self.partitions if p.filesystem)


def filesystem_type(image: TskImage, byte_offset: int) -> str | None:
    """The file system type at ``byte_offset``, or None when TSK recognises none there (TSK
    failing on a crafted or damaged boot sector is "none" too; a failure of the image itself
    is raised as the image's own error)."""
    image.take_error()
    try:
        fs = pytsk3.FS_Info(image, offset=byte_offset)
    except TSK_FAILURES:
        cause = image.take_error()
        if cause is not None:
            raise cause from None
        return None
    return FS_NAMES.get(int(fs.info.ftype), f"type-{int(fs.info.ftype):#x}")


def encryption_at(image: TskImage, byte_offset: int) -> str | None:
    """Name of the volume encryption whose signature starts at ``byte_offset``, if any."""
    head = image.stream.pread(byte_offset, 512)
    for where, magic, name in _ENCRYPTED:
        if head[where : where + len(magic)] == magic:
            return name
    return "BitLocker" if is_bitlocker_to_go(head) else None


def read_layout(image: TskImage) -> VolumeLayout:
    """Read the partition table (if any) and probe each partition for a file system."""
    stream = image.stream
    image.take_error()
    try:
        volume = pytsk3.Volume_Info(image)
    except TSK_FAILURES:
        cause = image.take_error()
        if cause is not None:
            raise cause from None
        ours = read_gpt(stream)  # a GPT TSK refuses (an image cut short), with no MBR
        return _whole(image) if ours is None else _layout(image, "gpt", *ours)
    scheme = _VS_NAMES.get(int(volume.info.vstype), f"type-{int(volume.info.vstype)}")
    found = _rows(image, volume)
    if scheme == "dos" and _only_protective(found):
        backup = _gpt_behind_protective_mbr(image)
        if backup is not None:
            volume, scheme, found = backup, "gpt", _rows(image, backup)
        elif (ours := read_gpt(stream)) is not None:
            return _layout(image, "gpt", *ours)  # TSK refused the GPT: see gpt.py
    block = int(volume.info.block_size) or stream.sector_size
    if scheme == "gpt":
        return _audited(image, block, found)
    if units.needs_rescaling(scheme, block, stream.sector_size):
        block = stream.sector_size
        heads = units.SectorHeads(stream, block)
        with tsk_errors(heads, f"read the DOS partition table in {block}-byte sectors"):
            volume = pytsk3.Volume_Info(heads, pytsk3.TSK_VS_TYPE_DOS)
        found = _rows(heads, volume)
    layout = _layout(image, scheme, block, found)
    if scheme == "dos" and any(_PROTECTIVE in row.description for row in found):
        return replace(layout, notes=_hybrid_notes(stream, found))
    return layout


def _audited(image: TskImage, block: int, found: list[units.Row]) -> VolumeLayout:
    """TSK's GPT rows, or the backup's where the primary fails its checks, with what the
    audit of both copies says (gpt.py). TSK's slot numbers wrap round at 256 entries (an 8-bit
    counter): a table of more entries is listed from our own reading of it."""
    checked = audit(image.stream, block)
    notes = checked.notes
    if checked.backup_rows is not None:
        found = checked.backup_rows
        notes = (f"{notes[0]}; the partitions shown are the backup's", *notes[1:])
    elif any(re.fullmatch(r"-\d+", row.slot) for row in found) and (
            ours := read_gpt(image.stream)) is not None:
        found = ours[1]
    found = [replace(row, length=0, description=f"{row.description} (its entry ends before it "
                     "starts)".lstrip()) if row.length >= 1 << 63 else row for row in found]
    return replace(_layout(image, "gpt", block, found), notes=notes)


def _hybrid_notes(stream: ImageStream, found: list[units.Row]) -> tuple[str, ...]:
    """A hybrid MBR (GPT partitions mirrored beside its 0xEE entry) is the table shown, as
    ``mmls`` shows it; the GPT behind it is what UEFI systems read. The partitions it lists
    that the MBR does not are named, so that none passes for unallocated space."""
    for sector in SECTOR_SIZES:
        checked = audit(stream, sector)
        table = (checked.backup_rows if checked.backup_rows is not None
                 else primary_rows(stream, sector))
        if table is None:
            continue
        listed = {(row.start, row.length) for row in found if row.kind == "partition"}
        unseen = [row for row in table if row.kind == "partition"
                  and (row.start * sector // 512, row.length * sector // 512) not in listed]
        if not unseen:
            return checked.notes
        named = ", ".join(f"entry {int(row.slot) + 1} (sectors {row.start}-"
                          f"{row.start + row.length - 1})" for row in unseen[:8])
        more = f" and {len(unseen) - 8} more" if len(unseen) > 8 else ""
        return (f"this MBR is a hybrid: the GPT behind it (read by UEFI systems) also lists "
                f"{named}{more}, which the MBR does not", *checked.notes)
    return ()


def _layout(image: TskImage, scheme: str, block: int, found: list[units.Row]) -> VolumeLayout:
    """The layout of the rows ``found`` (in ``block``-byte sectors), each partition that starts
    inside the media probed for a file system or encryption."""
    stream = image.stream
    rows = []
    for index, row in enumerate(found):
        kind = PartitionKind(row.kind)
        start, length = row.start, row.length
        fs_name = encrypted = None
        if kind is PartitionKind.PARTITION and start * block < stream.size:
            encrypted = encryption_at(image, start * block)
            fs_name = None if encrypted else filesystem_type(image, start * block)
        rows.append(Partition(index=index, kind=kind, start=start, length=length,
                              description=row.description, sector_size=block,
                              filesystem=fs_name, encrypted=encrypted, slot=row.slot))
    return VolumeLayout(scheme, block, stream.size, tuple(rows))


#: How TSK describes the MBR entry that protects a GPT disk (type 0xEE)
_PROTECTIVE = "(0xee)"


def _only_protective(rows: list[units.Row]) -> bool:
    """Whether the MBR's partitions are all 0xEE: a protective MBR, nothing of its own (a
    hybrid MBR, listing GPT partitions beside the 0xEE one, stays the table shown, as in
    ``mmls``)."""
    parts = [row for row in rows if row.kind == PartitionKind.PARTITION.value]
    return bool(parts) and all(_PROTECTIVE in row.description for row in parts)


def _gpt_behind_protective_mbr(image: TskImage) -> pytsk3.Volume_Info | None:
    """The GPT of a disk whose MBR only protects one, when TSK's detection settled for the MBR.

    TSK detects a GPT by its primary header (sector 1); when that header or its table is
    wiped or damaged, detection falls back to the protective MBR, and its 0xEE partition (the
    whole disk) hides every real partition. The GPT is asked for explicitly, as ``mmls -t gpt``
    does: TSK then reads the backup header in the disk's last sector and checks it. None when
    there is no usable GPT either (the MBR is what the disk has)."""
    image.take_error()
    try:
        return pytsk3.Volume_Info(image, pytsk3.TSK_VS_TYPE_GPT)
    except TSK_FAILURES:
        cause = image.take_error()
        if cause is not None:
            raise cause from None
        return None


def _rows(image: TskImage, volume: pytsk3.Volume_Info) -> list[units.Row]:
    """TSK's rows of ``volume``, in its order (the order ``mmls`` numbers them in)."""
    with tsk_errors(image, "read the partition table"):
        parts = list(volume)
    return [units.Row(_kind(int(part.flags)), int(part.start), int(part.len), text(part.desc),
                      units.slot(part)) for part in parts]


def _kind(flags: int) -> str:
    if flags & int(pytsk3.TSK_VS_PART_FLAG_META):
        return PartitionKind.META.value
    if flags & int(pytsk3.TSK_VS_PART_FLAG_UNALLOC):
        return PartitionKind.UNALLOCATED.value
    return PartitionKind.PARTITION.value


def _whole(image: TskImage) -> VolumeLayout:
    stream = image.stream
    sector = stream.sector_size or 512
    encrypted = encryption_at(image, 0)
    fs_name = None if encrypted else filesystem_type(image, 0)
    row = Partition(index=0, kind=PartitionKind.WHOLE, start=0,
                    length=-(-stream.size // sector), description="no partition table",
                    sector_size=sector, filesystem=fs_name, encrypted=encrypted)
    return VolumeLayout("none", sector, stream.size, (row,))


def choose_filesystem(layout: VolumeLayout, *, partition: int | None = None,
                      offset: int | None = None) -> Partition:
    """The partition ``-p``/``--offset`` names, or the only file system when neither is given.

    ``offset`` is a start sector (as ``fls -o``); it need not be a row of the table (a file system
    the table does not describe). Raises :class:`FileSystemError` with the choices when the
    choice is missing or ambiguous.
    """
    if partition is not None and offset is not None:
        raise FileSystemError("give either -p or --offset, not both")
    if partition is not None:
        return _by_index(layout, partition)
    if offset is not None:
        return _by_offset(layout, offset)
    found = layout.filesystems
    if len(found) == 1:
        return found[0]
    if not found:
        encrypted = [p for p in layout.partitions if p.encrypted]
        if encrypted:
            raise FileSystemError(
                f"the only volume is encrypted ({encrypted[0].encrypted}) and cannot be browsed")
        raise FileSystemError("no file system found in this image")
    raise FileSystemError(f"several file systems; choose one with -p N: {describe(found)}")


def describe(partitions: tuple[Partition, ...]) -> str:
    """``-p 4 (fat32 at sector 2048), -p 5 (ext4 at sector 100352)`` for error messages."""
    return ", ".join(f"-p {p.index} ({p.filesystem} at sector {p.start})" for p in partitions)


def _by_index(layout: VolumeLayout, index: int) -> Partition:
    for row in layout.partitions:
        if row.index == index:
            if row.encrypted:
                raise FileSystemError(
                    f"partition {index} is encrypted ({row.encrypted}) and cannot be browsed")
            if not row.filesystem:
                raise FileSystemError(
                    f"partition {index} ({row.description}) holds no file system that The Sleuth "
                    f"Kit recognises; file systems: {describe(layout.filesystems) or 'none'}")
            return row
    raise FileSystemError(f"no partition {index}; file systems: "
                          f"{describe(layout.filesystems) or 'none'}")


def _by_offset(layout: VolumeLayout, sector: int) -> Partition:
    if sector < 0:
        raise FileSystemError(f"--offset must not be negative (got {sector})")
    for row in layout.partitions:
        if row.start == sector and row.filesystem:
            return row
    for row in layout.partitions:
        if row.start == sector and row.encrypted:
            raise FileSystemError(f"the volume at sector {sector} is encrypted ({row.encrypted})")
    if sector * layout.sector_size >= layout.media_size:
        raise FileSystemError(f"sector {sector} lies beyond the end of the media")
    return Partition(index=-1, kind=PartitionKind.PARTITION, start=sector,
                     length=layout.media_size // layout.sector_size - sector,
                     description=f"file system at sector {sector}",
                     sector_size=layout.sector_size, filesystem=None)
