"""VHD (Microsoft Virtual Hard Disk), fixed and dynamic: the on-disk structures and the reader.

Every VHD ends with a 512-byte footer (big-endian, cookie ``conectix``). A *fixed* disk is the raw
media followed by that footer. A *dynamic* disk starts with a copy of the footer, then a 1024-byte
dynamic header (cookie ``cxsparse``) that points to the block allocation table (BAT): one 32-bit
sector offset per block, ``0xFFFFFFFF`` for a block never written (it reads as zeros). Each stored
block is a sector bitmap (rounded up to whole sectors) followed by the block's data.

The structures are declared here once; :mod:`bitwitness.acquire.convert.vhd_writer` packs them
with the same functions this reader unpacks them with.

Media size: the footer's *current size*, in bytes (what Hyper-V, VirtualBox and libvhdi use).
Virtual PC and qemu (for creators other than Hyper-V and a few more) round the size down to the
CHS geometry instead; for evidence we take the exact byte count the footer records.

A *differencing* disk is a dynamic disk whose header names its parent: the parent's unique id
(header offset 40) and its file name (UTF-16 big-endian, header offset 64, 512 bytes). In a block
the child stored, a sector whose bit is set in the block's sector bitmap (most significant bit
first) is the child's; every other sector, and every block the child did not store, reads from the
parent. The parent is looked for in the child's folder only (or named with ``--parent``) and must
carry the unique id the child records.

:func:`vhd_checks` recomputes what a VHD records about itself (both footer copies' checksums,
their agreement, the dynamic header's checksum) for ``verify``.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bitwitness.errors import CorruptImageError, InputError, UnsupportedFormatError
from bitwitness.evidence_io import (
    MAX_OFFSET,
    check_span,
    open_readonly,
    pread_checked,
    read_head,
    read_tail,
)
from bitwitness.images.checks import (
    ContainerCheck,
    Findings,
    check_entries,
    check_overlaps,
    table_pieces,
)
from bitwitness.images.raw import read_at, read_exact
from bitwitness.stream import ImageStream, StreamInfo

COOKIE = b"conectix"
DYNAMIC_COOKIE = b"cxsparse"
FOOTER_SIZE = 512
DYNAMIC_HEADER_SIZE = 1024
SECTOR = 512
DISK_FIXED = 2
DISK_DYNAMIC = 3
DISK_DIFFERENCING = 4
DISK_TYPES = {DISK_FIXED: "fixed", DISK_DYNAMIC: "dynamic", DISK_DIFFERENCING: "differencing"}
NO_DATA_OFFSET = 0xFFFF_FFFF_FFFF_FFFF
UNALLOCATED = 0xFFFF_FFFF
#: VHD timestamps count seconds from 2000-01-01 00:00:00 UTC.
VHD_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
#: The largest geometry the spec allows (65535 cylinders, 16 heads, 255 sectors per track).
MAX_CHS_SECTORS = 65535 * 16 * 255
#: The largest block a dynamic disk may declare. The specification's (and libvhdi's) rule is a
#: power of two times the sector; Virtual PC, Hyper-V (512 KiB or 2 MiB), VirtualBox, qemu and
#: Xen all write 2 MiB. Capping it caps what one 4-byte BAT entry can claim: 512 KiB of media
#: per byte of table, so a small file cannot pose as a vast disk block by block.
MAX_BLOCK_SIZE = 2 << 20
#: The largest dynamic or differencing disk: 2040 GiB, the specification's limit (Hyper-V and
#: qemu refuse larger ones). A fixed disk is bounded by its own file instead.
MAX_DYNAMIC_SIZE = 2040 << 30

#: cookie, features, version, data offset, timestamp, creator app, creator version, creator host,
#: original size, current size, cylinders, heads, sectors per track, disk type, checksum,
#: unique id, saved state; then 427 reserved zero bytes.
_FOOTER = struct.Struct(">8sIIQI4sI4sQQHBBII16sB427x")
#: cookie, data offset, table offset, header version, max table entries, block size, checksum,
#: parent unique id, parent timestamp; the parent name and locators (760 bytes) follow.
_DYNAMIC = struct.Struct(">8sQQIIII16sI4x")


@dataclass(frozen=True)
class VhdFooter:
    """The fields of a VHD footer (sizes in bytes)."""

    disk_type: int
    current_size: int
    original_size: int
    geometry: tuple[int, int, int]  #: cylinders, heads, sectors per track
    data_offset: int = NO_DATA_OFFSET
    timestamp: int = 0  #: seconds since 2000-01-01 UTC
    creator_app: bytes = b"    "
    creator_version: int = 0x0001_0000
    creator_host: bytes = b"Wi2k"
    unique_id: bytes = bytes(16)
    saved_state: int = 0
    features: int = 2  #: bit 1 is reserved and always set
    version: int = 0x0001_0000
    checksum: int | None = None  #: as read; computed when packing

    @property
    def created(self) -> datetime:
        return VHD_EPOCH + timedelta(seconds=self.timestamp)


def vhd_checksum(data: bytes, field_offset: int) -> int:
    """One's complement of the byte sum, the 4 checksum bytes at ``field_offset`` counted as 0."""
    total = sum(data) - sum(data[field_offset:field_offset + 4])
    return ~total & 0xFFFF_FFFF


def pack_footer(footer: VhdFooter) -> bytes:
    """The 512 footer bytes, with the checksum computed."""
    c, h, s = footer.geometry
    fields = (COOKIE, footer.features, footer.version, footer.data_offset, footer.timestamp,
              footer.creator_app, footer.creator_version, footer.creator_host,
              footer.original_size, footer.current_size, c, h, s, footer.disk_type, 0,
              footer.unique_id, footer.saved_state)
    raw = _FOOTER.pack(*fields)
    return raw[:64] + struct.pack(">I", vhd_checksum(raw, 64)) + raw[68:]


def unpack_footer(data: bytes, offset: int | None = None) -> VhdFooter:
    """Parse a footer (read at file ``offset``, named in errors); raise
    :class:`CorruptImageError` on a bad cookie or checksum."""
    if len(data) != FOOTER_SIZE or not data.startswith(COOKIE):
        raise CorruptImageError("no VHD footer (cookie 'conectix' missing)", offset=offset)
    (_, features, version, data_offset, timestamp, app, app_version, host, original, current,
     c, h, s, disk_type, checksum, uid, saved) = _FOOTER.unpack(data)
    computed = vhd_checksum(data, 64)
    if checksum != computed:
        raise CorruptImageError(f"VHD footer checksum: recorded {checksum:#010x}, its bytes "
                                f"give {computed:#010x}", offset=offset)
    return VhdFooter(disk_type=disk_type, current_size=current, original_size=original,
                     geometry=(c, h, s), data_offset=data_offset, timestamp=timestamp,
                     creator_app=app, creator_version=app_version, creator_host=host,
                     unique_id=uid, saved_state=saved, features=features, version=version,
                     checksum=checksum)


@dataclass(frozen=True)
class DynamicHeader:
    """The fields of a dynamic-disk header that reading needs."""

    table_offset: int  #: byte offset of the BAT
    max_table_entries: int
    block_size: int  #: bytes of media per block (2 MiB by default)
    parent_id: bytes = bytes(16)  #: a differencing disk's parent's unique id
    parent_name: str = ""  #: a differencing disk's parent's file name


def unpack_dynamic_header(data: bytes, offset: int | None = None) -> DynamicHeader:
    if len(data) != DYNAMIC_HEADER_SIZE or not data.startswith(DYNAMIC_COOKIE):
        raise CorruptImageError("no VHD dynamic header (cookie 'cxsparse' missing)",
                                offset=offset)
    _, _, table, _, entries, block, checksum, parent_id, _ = _DYNAMIC.unpack(
        data[:_DYNAMIC.size])
    computed = vhd_checksum(data, 36)
    if checksum != computed:
        raise CorruptImageError(f"VHD dynamic header checksum: recorded {checksum:#010x}, its "
                                f"bytes give {computed:#010x}", offset=offset)
    if block < SECTOR or block & (block - 1) or block > MAX_BLOCK_SIZE:
        raise CorruptImageError(f"VHD block size {block} is not a power of two from 512 to "
                                f"{MAX_BLOCK_SIZE} bytes", offset=offset)
    name = data[64:576].decode("utf-16-be", "replace").split("\0", 1)[0]
    return DynamicHeader(table_offset=table, max_table_entries=entries, block_size=block,
                         parent_id=parent_id, parent_name=name)


def chs_geometry(size: int) -> tuple[int, int, int]:
    """(cylinders, heads, sectors per track) for ``size`` bytes, by the VHD specification's
    algorithm (appendix "CHS calculation"); the product may be smaller than the media."""
    total = min(size // SECTOR, MAX_CHS_SECTORS)
    if total >= 65535 * 16 * 63:
        spt, heads = 255, 16
        cyl_heads = total // spt
    else:
        spt = 17
        cyl_heads = total // spt
        heads = max((cyl_heads + 1023) // 1024, 4)
        if cyl_heads >= heads * 1024 or heads > 16:
            spt, heads = 31, 16
            cyl_heads = total // spt
        if cyl_heads >= heads * 1024:
            spt, heads = 63, 16
            cyl_heads = total // spt
    return cyl_heads // heads, heads, spt


def read_footer(path: Path) -> bytes | None:
    """The last 512 bytes of ``path`` when they are a VHD footer, else ``None``."""
    try:
        footer = read_tail(path, FOOTER_SIZE)
    except InputError:
        return None
    return footer if len(footer) == FOOTER_SIZE and footer.startswith(COOKIE) else None


class VhdFixedStream(ImageStream):
    """The media of a fixed VHD: the file without its last 512 bytes."""

    alignment = 1

    def __init__(self, path: Path, footer: VhdFooter) -> None:
        self.path = path
        self.footer = footer
        self._fd = open_readonly(path)
        available = os.fstat(self._fd).st_size - FOOTER_SIZE
        if footer.current_size > available:
            os.close(self._fd)
            self._unmade()
            raise CorruptImageError(
                f"fixed VHD records {footer.current_size} bytes of media but holds {available}",
                path=path)
        super().__init__(footer.current_size)

    def _read_aligned(self, offset: int, length: int) -> bytes:
        return read_exact(self._fd, offset, length, self.path)

    def close(self) -> None:
        if not self.closed:
            os.close(self._fd)
        super().close()

    @property
    def info(self) -> StreamInfo:
        return StreamInfo(format="vhd", files=(self.path,), media_size=self.size,
                          sector_size=self.sector_size, details=_details(self.footer))


class VhdDynamicStream(ImageStream):
    """The media of a dynamic or differencing VHD, assembled block by block through the BAT;
    a differencing disk reads what it did not store from ``parent``."""

    alignment = SECTOR

    def __init__(self, path: Path, footer: VhdFooter) -> None:
        self.path = path
        self.footer = footer
        self.parent: ImageStream | None = None
        self.parents: tuple[Path, ...] = ()
        self._fd = open_readonly(path)
        try:
            file_size = self._file_size = os.fstat(self._fd).st_size
            self.header = header = unpack_dynamic_header(
                self._pread(footer.data_offset, DYNAMIC_HEADER_SIZE, "dynamic header"),
                footer.data_offset)
            self.block_size = header.block_size
            needed = -(-footer.current_size // header.block_size)
            if header.max_table_entries < needed:
                raise CorruptImageError(
                    f"VHD BAT has {header.max_table_entries} entries; "
                    f"{needed} are needed for {footer.current_size} bytes", path=path)
            if footer.current_size > MAX_DYNAMIC_SIZE:
                raise CorruptImageError(
                    f"dynamic VHD records {footer.current_size} bytes of media, more than the "
                    f"{MAX_DYNAMIC_SIZE} bytes (2040 GiB) a VHD can hold", path=path)
            # Checked before the read: a crafted offset or size claims any 64-bit number.
            raw_bat = self._pread(header.table_offset, needed * 4, "block allocation table")
            self._bat = struct.unpack(f">{needed}I", raw_bat)
            bitmap = -(-(header.block_size // SECTOR) // 8)
            self._bitmap_size = -(-bitmap // SECTOR) * SECTOR
            for index, sector in enumerate(self._bat):
                end = sector * SECTOR + self._bitmap_size + header.block_size
                if sector != UNALLOCATED and end > file_size:
                    raise CorruptImageError(
                        f"VHD block {index} lies past the end of the file", path=path,
                        offset=sector * SECTOR)
        except Exception:
            os.close(self._fd)
            self._unmade()
            raise
        super().__init__(footer.current_size)

    def _pread(self, offset: int, length: int, what: str) -> bytes:
        return pread_checked(self._fd, offset, length, self._file_size, path=self.path,
                             what=f"VHD {what}")

    def _from_parent(self, offset: int, length: int) -> bytes:
        if self.parent is None:
            return bytes(length)
        data = self.parent.pread(offset, length)
        return data + bytes(length - len(data))  # past a smaller parent's end: zeros

    def _block_part(self, sector: int, block: int, inner: int, n: int) -> bytes:
        """``n`` bytes at ``inner`` of a stored block; in a differencing disk, sector by
        sector as the block's bitmap says (runs of one source read at once)."""
        start = sector * SECTOR + self._bitmap_size + inner
        if self.parent is None:
            return read_exact(self._fd, start, n, self.path)
        bitmap = read_exact(self._fd, sector * SECTOR, self._bitmap_size, self.path)
        media = block * self.block_size
        parts: list[bytes] = []
        pos, end = inner, inner + n
        while pos < end:
            index = pos // SECTOR
            mine = bitmap[index >> 3] >> (7 - (index & 7)) & 1
            run = pos
            while run < end and (bitmap[(run // SECTOR) >> 3] >> (7 - ((run // SECTOR) & 7))
                                 & 1) == mine:
                run = (run // SECTOR + 1) * SECTOR
            run = min(run, end)
            if mine:
                parts.append(read_exact(self._fd, start + pos - inner, run - pos, self.path))
            else:
                parts.append(self._from_parent(media + pos, run - pos))
            pos = run
        return b"".join(parts)

    def _read_aligned(self, offset: int, length: int) -> bytes:
        parts: list[bytes] = []
        while length > 0:
            block, inner = divmod(offset, self.block_size)
            n = min(length, self.block_size - inner)
            sector = self._bat[block]
            if sector == UNALLOCATED:
                parts.append(self._from_parent(offset, n))
            else:
                parts.append(self._block_part(sector, block, inner, n))
            offset += n
            length -= n
        return b"".join(parts)

    def close(self) -> None:
        if not self.closed:
            os.close(self._fd)
            if self.parent is not None:
                self.parent.close()
        super().close()

    @property
    def info(self) -> StreamInfo:
        details = _details(self.footer)
        details["block_size"] = self.block_size
        details["allocated_blocks"] = sum(1 for s in self._bat if s != UNALLOCATED)
        files: tuple[Path, ...] = (self.path,)
        if self.parent is not None:
            details["parents"] = [str(p) for p in self.parents]
            files += tuple(self.parent.info.files)
        return StreamInfo(format="vhd", files=files, media_size=self.size,
                          sector_size=self.sector_size, details=details)


def _details(footer: VhdFooter) -> dict[str, object]:
    c, h, s = footer.geometry
    kind = DISK_TYPES.get(footer.disk_type, str(footer.disk_type))
    return {"reader": "bitwitness", "vhd_type": kind, "disk_type": kind,
            "creator": footer.creator_app.decode("latin-1"),
            "created": footer.created.isoformat(),
            "unique_id": footer.unique_id.hex(),
            "geometry": {"cylinders": c, "heads": h, "sectors_per_track": s}}


def _footer_of(path: Path) -> VhdFooter:
    head = read_head(path, FOOTER_SIZE)
    tail = read_footer(path)
    # A dynamic disk keeps a copy of its footer at offset 0; either copy may serve (verify's
    # vhd_checks says when one of them is damaged).
    raw = tail if tail is not None else (head if head.startswith(COOKIE) else None)
    if raw is None:
        raise UnsupportedFormatError(f"{path}: no VHD footer")
    try:
        footer = unpack_footer(raw, path.stat().st_size - FOOTER_SIZE if raw is tail else 0)
    except CorruptImageError:
        if not head.startswith(COOKIE) or raw is head:
            raise
        footer = unpack_footer(head, 0)  # the end was damaged; the copy at the start is intact
    if footer.current_size > MAX_OFFSET:
        raise CorruptImageError(f"VHD footer records a media size of {footer.current_size} "
                                "bytes, beyond any possible disk", path=path)
    return footer


def open_vhd(path: Path, chain: tuple[Path, ...] = ()) -> ImageStream:
    """Open a fixed, dynamic or differencing VHD read-only (a differencing one with its
    parents; ``chain``: the children above ``path``)."""
    footer = _footer_of(path)
    if footer.disk_type == DISK_FIXED:
        return VhdFixedStream(path, footer)
    if footer.disk_type == DISK_DYNAMIC:
        return VhdDynamicStream(path, footer)
    if footer.disk_type != DISK_DIFFERENCING:
        raise UnsupportedFormatError(f"{path}: VHD of disk type {footer.disk_type}, which is "
                                     "no VHD kind BitWitness knows")
    stream = VhdDynamicStream(path, footer)
    try:
        _attach_parent(stream, chain)
    except BaseException:
        stream.close()
        raise
    return stream


def _attach_parent(stream: VhdDynamicStream, chain: tuple[Path, ...]) -> None:
    from bitwitness.images.libyal import find_parent

    path, header = stream.path, stream.header
    if not header.parent_name:
        raise CorruptImageError("a differencing VHD that names no parent", path=path,
                                offset=stream.footer.data_offset + 64)
    parent_path = find_parent(path, header.parent_name, [*chain, path])
    if _footer_of(parent_path).unique_id != header.parent_id:
        got = _footer_of(parent_path).unique_id.hex()
        raise CorruptImageError(
            f"{parent_path.name} is not this disk's parent (identifier {got}, the child "
            f"records {header.parent_id.hex()})", path=path)
    parent = open_vhd(parent_path, (*chain, path))
    stream.parent = parent
    below = parent.parents if isinstance(parent, VhdDynamicStream) else ()
    stream.parents = (parent_path, *below)


def vhd_checks(path: Path) -> tuple[ContainerCheck, ...]:
    """What a VHD records about itself, recomputed: the checksum of the footer at the end and,
    in a dynamic or differencing disk, of its copy at offset 0 and of the dynamic header; the
    two footer copies must be the same bytes. Each check says the file offset it read."""
    checks: list[ContainerCheck] = []
    size = path.stat().st_size
    if size < FOOTER_SIZE:
        return (ContainerCheck("VHD footer", False, f"the file holds {size} bytes, less than "
                               "a footer"),)
    tail_at = size - FOOTER_SIZE
    tail = read_tail(path, FOOTER_SIZE)
    head = read_head(path, FOOTER_SIZE)
    footer: VhdFooter | None = None
    copies = [("VHD footer", tail_at, tail)]
    if tail_at > 0 and (head.startswith(COOKIE) or _sparse_kind(tail)):
        # a dynamic or differencing disk must start with the copy: one whose cookie is
        # damaged is a failed check too, not a fixed disk's first sector
        copies.append(("VHD footer copy", 0, head))
    for what, offset, data in copies:
        try:
            parsed = unpack_footer(data, offset)
        except CorruptImageError as exc:
            checks.append(ContainerCheck(f"{what} checksum", False, f"{path.name}: {exc}"))
            continue
        footer = footer or parsed
        checks.append(ContainerCheck(f"{what} checksum", True, f"{path.name} at file offset "
                                     f"{offset}: {parsed.checksum:#010x}"))
    if len(copies) == 2 and head != tail:
        differ = next(i for i in range(FOOTER_SIZE) if head[i] != tail[i])
        checks.append(ContainerCheck(
            "VHD footer copies", False, f"{path.name}: the copy at file offset 0 differs from "
            f"the footer at file offset {tail_at} (first at byte {differ})"))
    if footer is not None and footer.disk_type in (DISK_DYNAMIC, DISK_DIFFERENCING):
        what = "VHD dynamic header checksum"
        try:
            check_span(footer.data_offset, DYNAMIC_HEADER_SIZE, size, path=path,
                       what="VHD dynamic header")
            header = read_at(path, footer.data_offset, DYNAMIC_HEADER_SIZE)
            parsed_header = unpack_dynamic_header(header, footer.data_offset)
            checks.append(ContainerCheck(what, True, f"{path.name} at file offset "
                                         f"{footer.data_offset}: "
                                         f"{struct.unpack_from('>I', header, 36)[0]:#010x}"))
        except CorruptImageError as exc:
            checks.append(ContainerCheck(what, False, f"{path.name}: {exc}"))
        else:
            end = tail_at if tail.startswith(COOKIE) else size
            checks.append(bat_check(path, footer, parsed_header, end))
    return tuple(checks)


def bat_check(path: Path, footer: VhdFooter, header: DynamicHeader, end: int) -> ContainerCheck:
    """The block allocation table against the file and the disk: the header's entry count is
    the number of blocks the disk size needs (the specification's rule, which every writer
    follows), the table lies in the file clear of the footer copy and the dynamic header,
    every allocated entry's block (sector bitmap and data) lies after those structures and
    the table and before ``end`` (the footer at the end of the file), no two blocks overlap,
    and no entry past the disk's last block is allocated. The reader refuses only a block
    past the end of the file; the rest it would read without a word. Each problem names the
    entry's index and file offset and the block's file offset."""
    what = "VHD block allocation table"
    findings = Findings()
    size = path.stat().st_size
    block, entries, table = header.block_size, header.max_table_entries, header.table_offset
    needed = -(-footer.current_size // block)
    if entries != needed:
        findings.add(f"the dynamic header (max table entries at file offset "
                     f"{footer.data_offset + 28}) records {entries} entries; {needed} blocks of "
                     f"{block} bytes hold the {footer.current_size}-byte disk")
    table_end = table + 4 * entries
    fits = max(0, min(entries, (size - table) // 4)) if table < size else 0
    if table_end > size:
        findings.add(f"the table ({entries} entries at file offset {table}) runs past the "
                     f"end of the {size}-byte file; {fits} entries checked")
    header_end = footer.data_offset + DYNAMIC_HEADER_SIZE
    if table < max(FOOTER_SIZE, header_end) and table_end > footer.data_offset:
        findings.add(f"the table (file offset {table}) overlaps the footer copy or the "
                     f"dynamic header (file offset {footer.data_offset})")
    bitmap = -(-(block // SECTOR) // (8 * SECTOR)) * SECTOR  # one bit a sector, whole sectors
    first_free = max(FOOTER_SIZE, header_end, table + 4 * fits)

    def where(index: int, sector: int) -> str:
        return (f"entry {index} (file offset {table + 4 * index}: block at file offset "
                f"{sector * SECTOR})")

    def judge(index: int, sector: int) -> Iterator[Callable[[], str]]:
        start = sector * SECTOR
        if start < first_free:
            yield lambda: (f"{where(index, sector)} overlaps the footer copy, the dynamic "
                           f"header or the table (which end at file offset {first_free})")
        elif start + bitmap + block > end:
            yield lambda: (f"{where(index, sector)} runs {start + bitmap + block - end} bytes "
                           f"past file offset {end}, where the footer "
                           f"{'is' if end < size else 'would be'}")
        if index >= needed:
            yield lambda: (f"{where(index, sector)} is allocated past the disk's last block "
                           f"({needed - 1})")

    pieces = table_pieces(path, table, fits, big_endian=True)
    check_entries(findings, pieces, frozenset((UNALLOCATED,)), judge,
                  (-(-first_free // SECTOR), (end - bitmap - block) // SECTOR, needed))
    check_overlaps(findings, pieces, frozenset((UNALLOCATED,)), (bitmap + block) // SECTOR,
                   where)
    allocated = f"{entries} entries of {block}-byte blocks"
    return findings.check(what, path.name, f"{allocated} at file offset {table}: every "
                          f"allocated block inside the file before file offset {end}, none "
                          "overlapping another, the entry count matching the disk size")


def _sparse_kind(tail: bytes) -> bool:
    """Whether the footer ``tail`` (read at the end of the file) says dynamic or differencing."""
    try:
        return unpack_footer(tail).disk_type in (DISK_DYNAMIC, DISK_DIFFERENCING)
    except CorruptImageError:
        return False


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
        try:
            return open_vhd(path)
        except CorruptImageError as exc:
            if exc.path is None:
                raise CorruptImageError(str(exc), path=path) from exc
            raise


FORMAT = VhdFormat()
