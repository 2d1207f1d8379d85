"""VHDX by our own code: its structures, what it records about itself, and a reader.

libvhdi reads VHDX first (:mod:`bitwitness.images.vhdi`); this module is the independent reader
where QEMU has none (differencing disks), the checks ``verify`` runs on every VHDX, and the
reader of every VHDX not closed cleanly: its log is replayed in memory (:mod:`.vhdx_log`) and
every read of the file after the headers goes through it, which libvhdi (it ignores the log)
and QEMU (it replays only by writing into the file) cannot offer.

Layout (little-endian; GUIDs in their mixed-endian on-disk form):

* 64 KiB and 128 KiB: two headers (``head``, CRC-32C over 4 KiB with the checksum field counted
  as 0; sequence number at 8, log GUID at 48, log length and offset at 68 and 72). The valid one
  with the higher sequence number is current; a log GUID other than zero means the log holds
  writes that may not have reached the file: they are replayed in memory before anything else
  is read.
* 192 KiB and 256 KiB: two identical region tables (``regi``, CRC-32C over 64 KiB; entry count
  at 8; 32-byte entries from 16: GUID, file offset, length, required flag) locating the
  metadata region and the block allocation table (BAT).
* the metadata region: a table (``metadata``, entry count at 10; 32-byte entries from 32: item
  GUID, offset in the region, length, flags) of items: file parameters (block size; bit 1 of
  the flags: the disk has a parent), virtual disk size, logical sector size, and for a
  differencing disk the parent locator (a GUID, a key/value count at 18, then 12-byte entries of
  key offset, value offset, key length, value length into UTF-16LE strings: ``parent_linkage``
  is the parent's data write GUID, ``relative_path`` / ``absolute_win32_path`` its name).
* the BAT: 64-bit entries, state in bits 0-2 and the file offset in MiB in bits 20-63; after
  every ``chunk ratio`` payload entries (2^23 sectors over the block size) one sector-bitmap
  entry. A payload block is fully present (6), partially present (7: the chunk's sector bitmap,
  one bit per sector, least significant first, says which sectors are here; the rest come from
  the parent), or not stored: in a differencing disk "not present" (0) reads from the parent,
  every other state as zeros.
"""

from __future__ import annotations

import os
import struct
import uuid
from dataclasses import dataclass
from pathlib import Path, PureWindowsPath

from bitwitness.errors import CorruptImageError, UnsupportedFormatError
from bitwitness.evidence_io import check_span, open_readonly
from bitwitness.images.checks import ContainerCheck
from bitwitness.images.crc32c import crc32c
from bitwitness.images.raw import read_exact
from bitwitness.images.truncation import Truncation, TruncationScan, require_present
from bitwitness.images.vhdx_log import Replay, replay
from bitwitness.stream import ImageStream, StreamInfo

KiB, MiB = 1024, 1024 * 1024
HEADER_OFFSETS = (64 * KiB, 128 * KiB)
HEADER_SIZE = 4 * KiB
REGION_OFFSETS = (192 * KiB, 256 * KiB)
REGION_SIZE = 64 * KiB
#: The largest virtual disk the format allows (64 TiB) and largest metadata item (1 MiB).
MAX_DISK_SIZE = 64 * 1024**4
MAX_ITEM = MiB
MAX_REGION_ENTRIES = 2047
#: Payload block states.
NOT_PRESENT, FULLY_PRESENT, PARTIALLY_PRESENT = 0, 6, 7
SB_PRESENT = 6

BAT_REGION = uuid.UUID("2DC27766-F623-4200-9D64-115E9BFD4A08").bytes_le
METADATA_REGION = uuid.UUID("8B7CA206-4790-4B9A-B8FE-575F050F886E").bytes_le
FILE_PARAMETERS = uuid.UUID("CAA16737-FA36-4D43-B3B6-33F0AA44E76B").bytes_le
VIRTUAL_DISK_SIZE = uuid.UUID("2FA54224-CD1B-4876-B211-5DBED83BF4B8").bytes_le
LOGICAL_SECTOR = uuid.UUID("8141BF1D-A96F-4709-BA47-F233A8FAAB5F").bytes_le
PARENT_LOCATOR = uuid.UUID("A8D35F2D-B30B-454D-ABF7-D3D84834AB0C").bytes_le


def checksum_of(data: bytes) -> tuple[int, int]:
    """(recorded, computed) CRC-32C of a structure whose checksum field is at offset 4."""
    recorded = struct.unpack_from("<I", data, 4)[0]
    return recorded, crc32c(data[:4] + bytes(4) + data[8:])


@dataclass(frozen=True)
class Header:
    offset: int
    sequence: int
    data_write_guid: bytes
    log_guid: bytes
    log_length: int
    log_offset: int
    log_version: int = 0


@dataclass(frozen=True)
class Layout:
    """What reading needs, from the current header, a valid region table and the metadata."""

    header: Header
    bat_offset: int
    bat_length: int
    block_size: int
    has_parent: bool
    disk_size: int
    sector_size: int
    locator: dict[str, str]


def _fail(message: str, path: Path, offset: int | None = None) -> CorruptImageError:
    return CorruptImageError(f"VHDX {message}", path=path, offset=offset)


class _File:
    """The VHDX file, read through the evidence opener, every read checked against its size.

    Once :func:`replay_log` attached the replayed log, every read (headers aside, which the log
    never updates: region tables, metadata, BAT, payload) goes through its overlay, and
    ``size`` is the size the file has after replay."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd = open_readonly(path)
        self.size = self.real_size = os.fstat(self.fd).st_size
        self.replay: Replay | None = None

    def raw(self, offset: int, length: int, what: str) -> bytes:
        """The bytes as they lie in the file, log or not."""
        check_span(offset, length, self.real_size, path=self.path, what=f"VHDX {what}")
        return read_exact(self.fd, offset, length, self.path)

    def read(self, offset: int, length: int, what: str) -> bytes:
        if self.replay is None:
            return self.raw(offset, length, what)
        check_span(offset, length, self.size, path=self.path, what=f"VHDX {what}")
        return self.replay.read(self.raw, offset, length, what)

    def close(self) -> None:
        os.close(self.fd)


def current_header(f: _File) -> Header:
    """The valid header with the higher sequence number (MS-VHDX 2.2.2)."""
    headers = [h for h in (_header(f.raw(o, HEADER_SIZE, "header"), o) for o in HEADER_OFFSETS)
               if h is not None]
    if not headers:
        raise _fail("has no valid header (both fail their CRC-32C)", f.path, HEADER_OFFSETS[0])
    return max(headers, key=lambda h: h.sequence)


def replay_log(f: _File) -> Replay | None:
    """Replay the log the current header names, in memory (:mod:`.vhdx_log`), and read the
    file through it from now on; ``None`` for a clean file (LogGuid zero)."""
    header = current_header(f)
    if header.log_guid == bytes(16):
        return None
    if header.log_version != 0:  # MS-VHDX 2.2.2: not to be processed further
        raise UnsupportedFormatError(f"{f.path}: VHDX log of format version "
                                     f"{header.log_version} (only 0 is defined) to replay")
    f.replay = replay(f.raw, f.path, size=f.real_size, guid=header.log_guid,
                      log_offset=header.log_offset, log_length=header.log_length)
    f.size = f.replay.size
    return f.replay


def log_pending(path: Path) -> bool:
    """Whether ``path``'s current header names a log to replay (the file was not closed
    cleanly); ``False`` where no header is valid (the readers say so themselves)."""
    f = _File(path)
    try:
        return current_header(f).log_guid != bytes(16)
    except CorruptImageError:
        return False
    finally:
        f.close()


def _header(data: bytes, offset: int) -> Header | None:
    if not data.startswith(b"head"):
        return None
    recorded, computed = checksum_of(data)
    if recorded != computed:
        return None
    sequence, = struct.unpack_from("<Q", data, 8)
    log_version, = struct.unpack_from("<H", data, 64)
    log_length, log_offset = struct.unpack_from("<IQ", data, 68)
    return Header(offset, sequence, data[32:48], data[48:64], log_length, log_offset,
                  log_version)


def _regions(data: bytes) -> dict[bytes, tuple[int, int]] | None:
    if not data.startswith(b"regi") or checksum_of(data)[0] != checksum_of(data)[1]:
        return None
    count, = struct.unpack_from("<I", data, 8)
    if count > MAX_REGION_ENTRIES:
        return None
    out = {}
    for i in range(count):
        guid, offset, length, _required = struct.unpack_from("<16sQII", data, 16 + 32 * i)
        out[guid] = (offset, length)
    return out


def read_layout(f: _File) -> Layout:
    """The current header, the first valid region table and the metadata items reading needs."""
    path = f.path
    header = current_header(f)
    regions = None
    for offset in REGION_OFFSETS:
        regions = _regions(f.read(offset, REGION_SIZE, "region table"))
        if regions is not None:
            break
    if regions is None:
        raise _fail("has no valid region table (both fail their CRC-32C)", path,
                    REGION_OFFSETS[0])
    if BAT_REGION not in regions or METADATA_REGION not in regions:
        raise _fail("region table lacks the BAT or the metadata region", path, REGION_OFFSETS[0])
    meta_offset, meta_length = regions[METADATA_REGION]
    items = _metadata(f, meta_offset, meta_length)
    for wanted, name in ((FILE_PARAMETERS, "file parameters"),
                         (VIRTUAL_DISK_SIZE, "virtual disk size"),
                         (LOGICAL_SECTOR, "logical sector size")):
        if wanted not in items:
            raise _fail(f"metadata lacks the {name}", path, meta_offset)
    block_size, flags = struct.unpack("<II", items[FILE_PARAMETERS][:8])
    disk_size, = struct.unpack("<Q", items[VIRTUAL_DISK_SIZE][:8])
    sector_size, = struct.unpack("<I", items[LOGICAL_SECTOR][:4])
    if block_size < MiB or block_size > 256 * MiB or block_size & (block_size - 1):
        raise _fail(f"block size {block_size} is not a power of 2 from 1 to 256 MiB", path)
    if sector_size not in (512, 4096) or disk_size > MAX_DISK_SIZE or disk_size % sector_size:
        raise _fail(f"implausible geometry: {disk_size} bytes of {sector_size}-byte sectors",
                    path)
    has_parent = bool(flags & 2)
    locator = _locator(items.get(PARENT_LOCATOR, b""), path) if has_parent else {}
    bat_offset, bat_length = regions[BAT_REGION]
    return Layout(header, bat_offset, bat_length, block_size, has_parent, disk_size,
                  sector_size, locator)


def _metadata(f: _File, offset: int, length: int) -> dict[bytes, bytes]:
    table = f.read(offset, 64 * KiB, "metadata table")
    if not table.startswith(b"metadata"):
        raise _fail("metadata table has no 'metadata' signature", f.path, offset)
    count, = struct.unpack_from("<H", table, 10)
    if count > MAX_REGION_ENTRIES:
        raise _fail(f"metadata table of {count} entries", f.path, offset)
    items = {}
    for i in range(count):
        guid, item_offset, item_length, _flags = struct.unpack_from("<16sIII", table, 32 + 32 * i)
        if item_length > MAX_ITEM or item_offset + item_length > length:
            raise _fail(f"metadata item {i} ({item_length} bytes at {item_offset}) lies "
                        "outside the metadata region", f.path, offset + 32 + 32 * i)
        items[guid] = f.read(offset + item_offset, item_length, "metadata item")
    return items


def _locator(item: bytes, path: Path) -> dict[str, str]:
    if len(item) < 20:
        raise _fail("differencing disk without a parent locator", path)
    count, = struct.unpack_from("<H", item, 18)
    out = {}
    for i in range(count):
        if 20 + 12 * (i + 1) > len(item):
            raise _fail("parent locator entries run past the item", path)
        key_off, value_off, key_len, value_len = struct.unpack_from("<IIHH", item, 20 + 12 * i)
        if key_off + key_len > len(item) or value_off + value_len > len(item):
            raise _fail("a parent locator string lies outside the item", path)
        key = item[key_off:key_off + key_len].decode("utf-16-le", "replace")
        out[key] = item[value_off:value_off + value_len].decode("utf-16-le", "replace")
    return out


class VhdxStream(ImageStream):
    """A VHDX read by our own code; a differencing disk reads what it lacks from ``parent``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.parent: ImageStream | None = None
        self.parents: tuple[Path, ...] = ()
        self._f = _File(path)
        try:
            self.replay = replay_log(self._f)
            self.layout = layout = read_layout(self._f)
            self.block_size = layout.block_size
            self.chunk_ratio = (1 << 23) * layout.sector_size // layout.block_size
            blocks = -(-layout.disk_size // layout.block_size)
            entries = blocks + (blocks - 1) // self.chunk_ratio if blocks else 0
            if layout.has_parent:
                entries = -(-blocks // self.chunk_ratio) * (self.chunk_ratio + 1)
            if 8 * entries > layout.bat_length:
                raise _fail(f"BAT of {layout.bat_length} bytes cannot hold {entries} entries",
                            path, layout.bat_offset)
            raw = self._f.read(layout.bat_offset, 8 * entries, "BAT")
            self._bat = struct.unpack(f"<{entries}Q", raw)
        except BaseException:
            self._f.close()
            raise
        super().__init__(layout.disk_size, sector_size=layout.sector_size)
        self.alignment = layout.sector_size

    def _entry(self, block: int) -> tuple[int, int]:
        value = self._bat[block + block // self.chunk_ratio]
        return value & 7, (value >> 20) * MiB

    def _bitmap(self, block: int) -> bytes:
        """The sector bits of ``block`` in its chunk's sector-bitmap block."""
        chunk = block // self.chunk_ratio
        value = self._bat[chunk * (self.chunk_ratio + 1) + self.chunk_ratio]
        if value & 7 != SB_PRESENT:
            raise _fail(f"block {block} is partially present but its chunk has no sector "
                        "bitmap", self.path)
        per_block = self.block_size // self.sector_size // 8
        start = (value >> 20) * MiB + (block % self.chunk_ratio) * per_block
        return self._f.read(start, per_block, "sector bitmap")

    def _from_parent(self, offset: int, length: int) -> bytes:
        if self.parent is None:
            return bytes(length)
        data = self.parent.pread(offset, length)
        return data + bytes(length - len(data))

    def _read_aligned(self, offset: int, length: int) -> bytes:
        parts: list[bytes] = []
        while length > 0:
            block, inner = divmod(offset, self.block_size)
            n = min(length, self.block_size - inner)
            state, stored = self._entry(block)
            if state == FULLY_PRESENT:
                require_present(stored + inner, n, self._f.size, path=self.path,
                                what=f"VHDX block {block}", media_size=self.size,
                                media_offset=offset)
                parts.append(self._f.read(stored + inner, n, f"block {block}"))
            elif state == PARTIALLY_PRESENT and self.layout.has_parent:
                parts.append(self._partial(block, stored, inner, n))
            elif state == NOT_PRESENT and self.layout.has_parent:
                parts.append(self._from_parent(offset, n))
            elif state in (0, 1, 2, 3):
                parts.append(bytes(n))
            else:
                raise _fail(f"block {block} has the invalid state {state}", self.path)
            offset += n
            length -= n
        return b"".join(parts)

    def _partial(self, block: int, stored: int, inner: int, n: int) -> bytes:
        bitmap = self._bitmap(block)
        unit = self.sector_size
        base = block * self.block_size
        parts: list[bytes] = []
        pos, end = inner, inner + n
        while pos < end:
            sector = pos // unit
            here = bitmap[sector >> 3] >> (sector & 7) & 1
            run = (sector + 1) * unit
            while run < end and (bitmap[(run // unit) >> 3] >> ((run // unit) & 7) & 1) == here:
                run += unit
            run = min(run, end)
            if here:
                require_present(stored + pos, run - pos, self._f.size, path=self.path,
                                what=f"VHDX block {block}", media_size=self.size,
                                media_offset=base + pos)
                parts.append(self._f.read(stored + pos, run - pos, f"block {block}"))
            else:
                parts.append(self._from_parent(base + pos, run - pos))
            pos = run
        return b"".join(parts)

    @property
    def info(self) -> StreamInfo:
        details: dict[str, object] = {"reader": "bitwitness", "block_size": self.block_size,
                                      "disk_type": "differencing" if self.layout.has_parent
                                      else "dynamic or fixed"}
        if self.replay is not None:
            details["log"] = self.replay.summary
        files: tuple[Path, ...] = (self.path,)
        if self.parent is not None:
            details["parents"] = [str(p) for p in self.parents]
            files += tuple(self.parent.info.files)
        return StreamInfo(format="vhdx", files=files, media_size=self.size,
                          sector_size=self.sector_size, details=details)

    def close(self) -> None:
        if not self.closed:
            self._f.close()
            if self.parent is not None:
                self.parent.close()
        super().close()


def _guid_text(raw: bytes) -> str:
    return "{" + str(uuid.UUID(bytes_le=raw)) + "}"


def open_vhdx(path: Path, chain: tuple[Path, ...] = ()) -> VhdxStream:
    """Open a VHDX with our reader, a differencing one with its parents (each found in the
    child's folder, or named with ``--parent``, and holding the data write GUID the child
    records)."""
    from bitwitness.images.libyal import find_parent

    stream = VhdxStream(path)
    if not stream.layout.has_parent:
        return stream
    try:
        locator = stream.layout.locator
        recorded = locator.get("relative_path") or locator.get("absolute_win32_path") or ""
        if not recorded:
            raise _fail("differencing disk whose parent locator names no path", path)
        name = PureWindowsPath(recorded).name
        parent_path = find_parent(path, name, [*chain, path])
        parent = open_vhdx(parent_path, (*chain, path))
        linkages = {locator.get(k, "").lower() for k in ("parent_linkage", "parent_linkage2")}
        got = _guid_text(parent.layout.header.data_write_guid)
        if got not in linkages:
            linkage = locator.get("parent_linkage", "(none recorded)")
            parent.close()
            raise CorruptImageError(f"{parent_path.name} is not this disk's parent (data "
                                    f"write GUID {got}, the child records {linkage})", path=path)
        if parent.sector_size != stream.sector_size:
            parent.close()
            raise CorruptImageError(f"{parent_path.name} has {parent.sector_size}-byte sectors, "
                                    f"the child {stream.sector_size}-byte ones", path=path)
        stream.parent = parent
        stream.parents = (parent_path, *parent.parents)
    except BaseException:
        stream.close()
        raise
    return stream


def vhdx_truncation(path: Path) -> Truncation | None:
    """The VHDX file ``path`` where cut short: its BAT read once (after the log is replayed,
    as every reader of ours reads it), each stored payload block's place compared with the
    file's size; a block is needed as far as the disk reaches into it. Whoever reads the
    media (libvhdi or ours), this is what the file holds."""
    f = _File(path)
    try:
        replay_log(f)
        layout = read_layout(f)
        ratio = (1 << 23) * layout.sector_size // layout.block_size
        blocks = -(-layout.disk_size // layout.block_size)
        count = blocks + (blocks - 1) // ratio if blocks else 0
        if layout.has_parent:
            count = -(-blocks // ratio) * (ratio + 1)
        count = min(count, layout.bat_length // 8)
        scan = TruncationScan(path, f.size, layout.disk_size, layout.sector_size)
        bat = f.read(layout.bat_offset, 8 * count, "BAT")
        for index, value in enumerate(struct.unpack(f"<{count}Q", bat)):
            chunk, within = divmod(index, ratio + 1)
            if within == ratio or value & 7 not in (FULLY_PRESENT, PARTIALLY_PRESENT):
                continue  # a sector bitmap, or a block not stored
            media = (chunk * ratio + within) * layout.block_size
            length = min(layout.block_size, layout.disk_size - media)
            if length > 0:
                scan.unit((value >> 20) * MiB, length, media, length)
        return scan.result()
    finally:
        f.close()


def vhdx_checks(path: Path, cut_short: bool = False) -> tuple[ContainerCheck, ...]:
    """Both headers' and both region tables' CRC-32C, the region tables' agreement, the log
    (replayed in memory: a note; one that cannot be replayed: a failure), and BAT entries
    inside the file, each saying the file offset it read. Everything after the headers is
    read as the replayed log leaves it. ``cut_short``: the file is known to be cut short
    (:func:`vhdx_truncation`): blocks past its end are its missing end, not damage."""
    checks: list[ContainerCheck] = []
    f = _File(path)
    try:
        name = path.name
        for number, offset in enumerate(HEADER_OFFSETS, 1):
            data = f.raw(offset, HEADER_SIZE, "header")
            checks.append(_crc_check(f"VHDX header {number} CRC-32C", data, b"head", name,
                                     offset))
        log = _log_check(f)
        if log is not None:
            checks.append(log)
        tables = []
        for number, offset in enumerate(REGION_OFFSETS, 1):
            data = f.read(offset, REGION_SIZE, "region table")
            tables.append(data)
            checks.append(_crc_check(f"VHDX region table {number} CRC-32C", data, b"regi",
                                     name, offset))
        if tables[0] != tables[1]:
            checks.append(ContainerCheck("VHDX region tables", False,
                                         f"{name}: the tables at file offsets "
                                         f"{REGION_OFFSETS[0]} and {REGION_OFFSETS[1]} differ"))
        try:
            layout = read_layout(f)
        except CorruptImageError as exc:
            checks.append(ContainerCheck("VHDX structures", False, f"{name}: {exc}"))
            return tuple(checks)
        checks.append(_bat_check(f, layout, cut_short))
    finally:
        f.close()
    return tuple(checks)


def _log_check(f: _File) -> ContainerCheck | None:
    """The log replayed in memory (informational, ``ok``), or why it cannot be (a failure:
    the media read without it may differ from the disk's last state); ``None`` when the file
    is clean or no header is valid (the header checks say so)."""
    try:
        header = current_header(f)
    except CorruptImageError:
        return None
    if header.log_guid == bytes(16):
        return None
    try:
        replayed = replay_log(f)
    except (CorruptImageError, UnsupportedFormatError) as exc:
        return ContainerCheck(
            "VHDX log", False, f"{f.path.name}: the header at file offset {header.offset} "
            f"names a log ({header.log_length} bytes at file offset {header.log_offset}) that "
            f"cannot be replayed ({exc}); the media read without replaying it may differ from "
            "the disk's last state")
    assert replayed is not None
    return ContainerCheck("VHDX log", True, f"{f.path.name}: {replayed.summary}")


def _crc_check(what: str, data: bytes, signature: bytes, name: str,
               offset: int) -> ContainerCheck:
    if not data.startswith(signature):
        return ContainerCheck(what, False, f"{name} at file offset {offset}: no "
                              f"{signature.decode()!r} signature")
    recorded, computed = checksum_of(data)
    return ContainerCheck(what, recorded == computed, f"{name} at file offset {offset}: "
                          f"recorded {recorded:08x}, computed {computed:08x}")


def _bat_check(f: _File, layout: Layout, cut_short: bool = False) -> ContainerCheck:
    """Every block the BAT stores lies inside the file, at a distinct place."""
    what = "VHDX block allocation table"
    count = max(0, min(layout.bat_length // 8, (f.size - layout.bat_offset) // 8))
    if count == 0 and layout.bat_length >= 8:
        return ContainerCheck(what, False, f"{f.path.name}: the BAT ({layout.bat_length} bytes "
                              f"at file offset {layout.bat_offset}) lies past the end of the "
                              f"file ({f.size} bytes)")
    raw = f.read(layout.bat_offset, 8 * count, "BAT") if count > 0 else b""
    ratio = (1 << 23) * layout.sector_size // layout.block_size
    seen: set[int] = set()
    stored = beyond = 0
    for index, value in enumerate(struct.unpack(f"<{count}Q", raw)):
        state, where = value & 7, (value >> 20) * MiB
        if state not in (FULLY_PRESENT, PARTIALLY_PRESENT) or where == 0:
            continue
        stored += 1
        entry_at = layout.bat_offset + 8 * index
        size = MiB if index % (ratio + 1) == ratio else layout.block_size  # a sector bitmap
        if where + size > f.size and cut_short:
            beyond += 1
            continue
        if where + size > f.size:
            return ContainerCheck(what, False, f"{f.path.name}: entry {index} (file offset "
                                  f"{entry_at}) puts a block at {where}, past the end of the "
                                  f"file ({f.size} bytes)")
        if where in seen:
            return ContainerCheck(what, False, f"{f.path.name}: entry {index} (file offset "
                                  f"{entry_at}) puts a block at {where}, where another is")
        seen.add(where)
    if beyond:
        return ContainerCheck(what, True, f"{f.path.name}: {stored} stored blocks, {beyond} of "
                              "them past the end of the file, which is cut short: not checked")
    return ContainerCheck(what, True, f"{f.path.name}: {stored} stored blocks, each inside the "
                          "file")
