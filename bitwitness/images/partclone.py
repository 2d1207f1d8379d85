"""partclone images (Clonezilla's format for every file system but NTFS saved by ntfsclone), read
by our own code as the volume they hold; partclone's own restore is the second reader.

Why a reader and not raw: the file is not the volume. partclone saves only the blocks the file
system had in use, in block order, behind a header and a map of which blocks those are. The
volume it gives back (``partclone.restore -W`` into a file) has every block the map marks at its
place and zeros everywhere else: the blocks not in use were never read, and reading them as zeros
is what partclone's restore does, not evidence of what the disk held (``info`` says so).

Two image versions (partclone's ``src/partclone.h``, checked here against images partclone
0.3.23 writes and restores):

* **0002** (partclone 0.2.90 and later, what Clonezilla writes today), little-endian, 110 bytes:
  ``"partclone-image\\0"``, partclone's version (14 bytes), the image version ``"0002"``, the
  endianness mark ``0xC0DE``; the file system's name as partclone records it (16 bytes:
  ``EXTFS``, ``FAT16``, ``BTRFS``...), the device size, the total blocks, the blocks in use as the
  file system reports them, the blocks the map marks, the block size; the feature size (18), the
  image version again, the CPU bits of the writer, the checksum mode (0 none, 0x20 CRC-32, 0x30
  XXH64), the checksum size, the blocks each checksum covers, whether the checksum is reseeded
  after each one, the map's kind (1: a bit per block); and a CRC-32 of those 106 bytes. Then the
  map, a bit per block, least significant bit first, and its CRC-32; then the blocks in use, in
  order, with a checksum after every ``blocks per checksum`` of them and after the last ones.
  partclone's CRC-32 is zlib's without the final inversion, seeded with ``0xFFFFFFFF`` (reseeded
  after each checksum unless the reseed flag is 0, ``partclone -K``).
* **0001** (partclone before 0.2.90): a 36-byte head (the magic without its NUL, the file system's
  name in 15 bytes, ``"0001"``), the block size, device size, total and used blocks (28 bytes),
  4096 option bytes nothing reads, a map of a byte per block (1: in use), ``"BiTmAgIc"``, then each
  block in use followed by a 4-byte CRC that runs on from block to block and, through partclone's
  bug of those years (its ``crc32_0001``), covers only each block's first byte, repeated. Images
  of the 64-bit build before 0.1.0, whose CRCs took 8 bytes, are refused by name: partclone 0.3's
  restore cannot read them either.

Where block ``i`` lies in the file depends on its rank among the blocks in use, plus the
checksums before it. The map is walked once when the image is opened (its CRC-32 and count
checked as partclone's restore checks them) into a cumulative count per 64 KiB page of map
(:data:`PAGE_BYTES`: 8 bytes per half-million blocks of a bit map); a read then costs one
page's popcount (``int.bit_count``), the page read from the file and kept among the last
:data:`PAGES_KEPT`. A 16 TB volume of 4 KiB blocks has a 512 MiB map: the walk reads it once
(about a second), and the index is 64 KiB.

Fail closed, each in one line naming the place: an unknown image version, a wrong endianness
mark, a header whose CRC-32 fails (refused, not reported: every field of it decides where the
blocks lie, so a header that fails its CRC cannot place a single block with confidence; partclone
refuses it too), a block size that is not a power of two from 512 bytes to 64 MiB, a map that
runs past the file, fails its CRC-32 or marks another number of blocks than the header records,
a 0001 map byte other than 0 or 1, a file too short for the blocks in use and their checksums.
The blocks' own checksums are not checked on read (a read of one block would cost its whole
group): ``verify`` checks every one of them (:func:`partclone_checks`).
"""

from __future__ import annotations

import os
import struct
import subprocess
import threading
import zlib
from array import array
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bitwitness.errors import (
    BitWitnessError,
    CorruptImageError,
    NoSecondReader,
    UnsupportedFormatError,
)
from bitwitness.evidence_io import MAX_OFFSET, check_span, open_readonly
from bitwitness.images.checks import ContainerCheck, Findings
from bitwitness.images.filestream import FileImageStream
from bitwitness.images.raw import read_exact
from bitwitness.images.restored import RestoredStream
from bitwitness.images.splitraw import refuse_split_container
from bitwitness.stream import ImageStream, StreamInfo

MAGIC = b"partclone-image"
#: version 0002: magic, partclone version, image version, endianness; file system, device
#: size, total blocks, used blocks (file system), used blocks (map), block size; feature size,
#: image version, CPU bits, checksum mode, checksum size, blocks per checksum, reseed, map
#: kind; header CRC-32
HEADER_V2 = struct.Struct("<16s14s4sH16sQQQQIIHHHHIBBI")
#: version 0001: magic, file system, image version, padding; block size, device size, total
#: blocks, used blocks; then :data:`V1_OPTIONS` bytes
HEADER_V1 = struct.Struct("<15s15s4s2siQQQ")
V1_OPTIONS = 4096
BIT_MAGIC = b"BiTmAgIc"
VERSION_AT = 30  #: where the 4-digit image version lies in both versions
ENDIAN_MARK = 0xC0DE
FEATURE_SIZE = 18  #: the size of version 0002's options, the only one written so far
CSM_NONE, CSM_CRC32, CSM_XXH64 = 0x00, 0x20, 0x30
_CHECKSUM_SIZES = {CSM_NONE: 0, CSM_CRC32: 4, CSM_XXH64: 8}
_CHECKSUM_NAMES = {CSM_NONE: "none", CSM_CRC32: "CRC-32", CSM_XXH64: "XXH64"}
BM_NONE, BM_BIT, BM_BYTE = 0x00, 0x01, 0x08
MIN_BLOCK, MAX_BLOCK = 512, 64 << 20
#: Map bytes per page of the index (a cumulative count each) and per read from the file.
PAGE_BYTES = 64 << 10
#: Map pages kept (as ints of their bits): 4 MiB of a bit map.
PAGES_KEPT = 64
_MASK32 = 0xFFFFFFFF
#: The data checksums are checked this many bytes of the file at a time (whole groups).
_WINDOW = 4 << 20
#: Byte-map bytes as the digits of a binary number (0001 maps: 1 in use, anything else not,
#: as partclone reads them; the reader refuses the others when it opens the image).
_DIGITS = bytes(0x31 if i == 1 else 0x30 for i in range(256))


@dataclass(frozen=True)
class Layout:
    """The header as read and checked: where everything lies in the file."""

    version: int  #: 1 or 2
    partclone_version: str  #: "0.3.23" (version 0002 only)
    file_system: str  #: as partclone records it: "EXTFS", "FAT16", "BTRFS", ...
    device_size: int
    total_blocks: int
    fs_used_blocks: int  #: in use as the file system reported them (informative)
    used_blocks: int  #: in use as the header says the map marks them (checked)
    block_size: int
    checksum_mode: int
    checksum_size: int
    blocks_per_checksum: int
    reseed: bool
    map_kind: int  #: BM_BIT, BM_BYTE (0001) or BM_NONE (every block saved)
    map_at: int
    map_bytes: int
    data_at: int
    cpu_bits: int = 0

    @property
    def media_size(self) -> int:
        return self.total_blocks * self.block_size

    @property
    def blocks_per_page(self) -> int:
        return PAGE_BYTES * 8 if self.map_kind == BM_BIT else PAGE_BYTES

    @property
    def pages(self) -> int:
        return -(-self.total_blocks // self.blocks_per_page)

    def checksums(self, used: int) -> int:
        """How many checksums follow ``used`` blocks in use (the last group may be short)."""
        if not self.checksum_size or not self.blocks_per_checksum:
            return 0
        return -(-used // self.blocks_per_checksum)

    def offset_of(self, rank: int) -> int:
        """The file offset of the block in use of this rank (0: the first one saved)."""
        before = rank // self.blocks_per_checksum if self.blocks_per_checksum else 0
        return self.data_at + rank * self.block_size + before * self.checksum_size

    def data_end(self, used: int) -> int:
        return self.data_at + used * self.block_size + self.checksums(used) * self.checksum_size


def _text(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("ascii", "replace")


def partclone_crc(data: bytes | bytearray | memoryview, state: int = _MASK32) -> int:
    """partclone's CRC-32 of ``data`` from ``state``: zlib's, without the final inversion."""
    return zlib.crc32(data, state ^ _MASK32) ^ _MASK32


def read_layout(fd: int, path: Path, file_size: int) -> Layout:
    """The header, checked against the format and the file (the map is not read yet)."""
    if file_size < VERSION_AT + 4:
        raise CorruptImageError(f"partclone header: the file of {file_size} bytes is shorter "
                                "than a header", path=path)
    head = read_exact(fd, 0, min(file_size, HEADER_V1.size), path)
    if not head.startswith(MAGIC):
        raise CorruptImageError("no partclone magic 'partclone-image' at offset 0", path=path)
    version = head[VERSION_AT:VERSION_AT + 4]
    if version == b"0002":
        return _layout_v2(fd, path, file_size)
    if version == b"0001":
        return _layout_v1(fd, path, file_size)
    raise UnsupportedFormatError(
        f"{path}: partclone image version {version!r} is not read by BitWitness (0001 and 0002 "
        "are; restore it with the partclone that wrote it)")


def _fail(path: Path, what: str, at: int) -> CorruptImageError:
    return CorruptImageError(f"partclone header: {what}", path=path, offset=at)


def _layout_v2(fd: int, path: Path, file_size: int) -> Layout:
    if file_size < HEADER_V2.size:
        raise _fail(path, f"the file of {file_size} bytes is shorter than the "
                          f"{HEADER_V2.size}-byte header of image version 0002", 0)
    raw = read_exact(fd, 0, HEADER_V2.size, path)
    (_magic, ptc, _version, endian, fs, device, total, fs_used, used, block, feature, img_version,
     cpu, mode, cs_size, per_cs, reseed, kind, crc) = HEADER_V2.unpack(raw)
    if endian != ENDIAN_MARK:
        if endian == 0xDEC0:
            raise UnsupportedFormatError(
                f"{path}: the partclone image was written on a big-endian machine (endianness "
                "mark 0xDEC0); BitWitness reads little-endian images, as partclone does on PCs")
        raise _fail(path, f"endianness mark 0x{endian:04X} (0xC0DE expected)", 34)
    computed = partclone_crc(raw[:-4])
    if computed != crc:
        raise _fail(path, f"CRC-32 of the header is 0x{computed:08X}, the header records "
                          f"0x{crc:08X}: the header is damaged and cannot place the blocks",
                    HEADER_V2.size - 4)
    if feature != FEATURE_SIZE or img_version != 2:
        raise UnsupportedFormatError(
            f"{path}: partclone image options of {feature} bytes, version {img_version}: "
            f"BitWitness reads version 0002's {FEATURE_SIZE}-byte options")
    _check_block_size(path, block, 86)
    _check_checksums(path, mode, cs_size, reseed)
    if kind == BM_BIT:
        map_bytes = -(-total // 8)
        data_at = HEADER_V2.size + map_bytes + 4
    elif kind == BM_NONE:
        map_bytes, data_at = 0, HEADER_V2.size
        if used != total:
            raise _fail(path, f"an image without a map saves every block; it records {used} "
                              f"of {total} in use", 70)
    elif kind == BM_BYTE:
        raise UnsupportedFormatError(f"{path}: a version 0002 partclone image with a byte map: "
                                     "no partclone writes one, BitWitness does not read it")
    else:
        raise _fail(path, f"map kind {kind} is none partclone defines (1: a bit per block)",
                    103)
    layout = Layout(2, _text(ptc), _text(fs), device, total, fs_used, used, block, mode, cs_size,
                    per_cs, bool(reseed), kind, HEADER_V2.size, map_bytes, data_at, cpu)
    _check_sizes(path, layout, file_size)
    return layout


def _check_checksums(path: Path, mode: int, size: int, reseed: int) -> None:
    """The checksum fields of a 0002 header."""
    if mode not in _CHECKSUM_SIZES:
        raise _fail(path, f"checksum mode 0x{mode:02X} is none partclone defines (0 none, "
                          "0x20 CRC-32, 0x30 XXH64)", 94)
    if size != _CHECKSUM_SIZES[mode]:
        raise _fail(path, f"checksum size {size} for {_CHECKSUM_NAMES[mode]} checksums "
                          f"({_CHECKSUM_SIZES[mode]} expected)", 96)
    if reseed > 1:
        raise _fail(path, f"reseed flag {reseed} (0 or 1 expected)", 102)


def _layout_v1(fd: int, path: Path, file_size: int) -> Layout:
    fixed = HEADER_V1.size + V1_OPTIONS
    if file_size < fixed:
        raise _fail(path, f"the file of {file_size} bytes is shorter than the {fixed}-byte "
                          "header of image version 0001", 0)
    (_magic, fs, _version, _pad, block, device, total, fs_used) = HEADER_V1.unpack(
        read_exact(fd, 0, HEADER_V1.size, path))
    _check_block_size(path, block, 36)
    # 0001: one CRC-32 after each block, carried on from block to block
    layout = Layout(1, "", _text(fs), device, total, fs_used, fs_used, block, CSM_CRC32, 4, 1,
                    False, BM_BYTE, fixed, total, fixed + total + len(BIT_MAGIC))
    _check_sizes(path, layout, file_size)
    magic_at = fixed + total
    if read_exact(fd, magic_at, len(BIT_MAGIC), path) != BIT_MAGIC:
        raise CorruptImageError("partclone 0001 map: no 'BiTmAgIc' after the byte map",
                                path=path, offset=magic_at)
    return layout


def _check_block_size(path: Path, block: int, at: int) -> None:
    if not MIN_BLOCK <= block <= MAX_BLOCK or block & (block - 1):
        raise _fail(path, f"block size {block} (a power of two from {MIN_BLOCK} to {MAX_BLOCK} "
                          "expected)", at)


def _check_sizes(path: Path, layout: Layout, file_size: int) -> None:
    """What the header declares against the file, before anything of that size is read."""
    blocks_at = 60 if layout.version == 2 else 48  #: where the header holds the block count
    if not layout.total_blocks:
        raise _fail(path, "the image declares no blocks", blocks_at)
    if layout.media_size > MAX_OFFSET:
        raise _fail(path, f"{layout.total_blocks} blocks of {layout.block_size} bytes: beyond "
                          "any possible volume", blocks_at)
    if layout.device_size > MAX_OFFSET:
        raise _fail(path, f"a device of {layout.device_size} bytes: beyond any possible volume",
                    blocks_at - 8)
    extra = 4 if layout.map_kind == BM_BIT else len(BIT_MAGIC) if layout.version == 1 else 0
    check_span(layout.map_at, layout.map_bytes + extra, file_size, path=path,
               what=f"the partclone map of {layout.total_blocks} blocks")
    # the blocks in use are checked against the file once the map has counted them


def with_crcs(data: bytes) -> bytes:
    """``data`` with a 0002 header's CRC-32 and its bit map's CRC-32 made right, as partclone
    writes them (the map's only where it lies in ``data``); anything else unchanged. For the
    fuzz target, whose mutations would otherwise stop at the header's CRC."""
    if len(data) < HEADER_V2.size or data[VERSION_AT:VERSION_AT + 4] != b"0002":
        return data
    out = bytearray(data)
    struct.pack_into("<I", out, HEADER_V2.size - 4, partclone_crc(out[:HEADER_V2.size - 4]))
    fields = HEADER_V2.unpack_from(out)
    total, kind = fields[6], fields[17]
    end = HEADER_V2.size + -(-total // 8)
    if kind == BM_BIT and end + 4 <= len(out):
        struct.pack_into("<I", out, end, partclone_crc(out[HEADER_V2.size:end]))
    return bytes(out)


# --- the map ------------------------------------------------------------------------------


@dataclass(frozen=True)
class MapScan:
    """The map walked once: used blocks before each page, their count, its CRC-32."""

    before: array[int]  #: blocks in use before each page (one entry more: the total)
    used: int
    crc: int | None  #: the map's CRC-32 as partclone computes it (0002 bit maps)
    stored_crc: int | None
    bad_byte_at: int | None  #: 0001: file offset of the first map byte other than 0 or 1


def _page_bits(layout: Layout, page: int, data: bytes) -> int:
    """A page of the map as an int whose bit ``i`` is the page's block ``i`` (bits past the
    last block cleared: partclone never looks at them)."""
    if layout.map_kind == BM_BIT:
        bits = int.from_bytes(data, "little")
    else:
        bits = int(data[::-1].translate(_DIGITS), 2) if data else 0
    blocks = min(layout.blocks_per_page, layout.total_blocks - page * layout.blocks_per_page)
    return bits & ((1 << blocks) - 1)


def _page_span(layout: Layout, page: int) -> tuple[int, int]:
    at = page * PAGE_BYTES
    return layout.map_at + at, min(PAGE_BYTES, layout.map_bytes - at)


def scan_map(fd: int, path: Path, layout: Layout) -> MapScan:
    """Walk the whole map once: the index, the count, the CRC-32 (bit maps), the bytes that
    are neither 0 nor 1 (byte maps). Cost: one read of the map, a page at a time."""
    before = array("Q", [0])
    if layout.map_kind == BM_NONE:
        per = layout.blocks_per_page
        for page in range(layout.pages):
            before.append(min((page + 1) * per, layout.total_blocks))
        return MapScan(before, layout.total_blocks, None, None, None)
    used, z, bad = 0, 0, None
    for page in range(layout.pages):
        at, n = _page_span(layout, page)
        data = read_exact(fd, at, n, path)
        if layout.map_kind == BM_BIT:
            z = zlib.crc32(data, z)
        elif bad is None and data.count(0) + data.count(1) != n:
            bad = at + next(i for i, b in enumerate(data) if b > 1)
        used += _page_bits(layout, page, data).bit_count()
        before.append(used)
    if layout.map_kind != BM_BIT:
        return MapScan(before, used, None, None, bad)
    stored = int.from_bytes(read_exact(fd, layout.map_at + layout.map_bytes, 4, path), "little")
    return MapScan(before, used, z ^ _MASK32, stored, None)


def _check_map(path: Path, layout: Layout, scan: MapScan, file_size: int) -> None:
    """What the reader refuses about the map (partclone's restore refuses the same)."""
    crc_at = layout.map_at + layout.map_bytes
    if scan.crc is not None and scan.crc != scan.stored_crc:
        raise CorruptImageError(
            f"partclone map: its CRC-32 is 0x{scan.crc:08X}, the image records "
            f"0x{scan.stored_crc:08X}: the map is damaged and cannot place the blocks",
            path=path, offset=crc_at)
    if scan.bad_byte_at is not None:
        raise CorruptImageError("partclone 0001 map: a byte other than 0 or 1 (a byte a block)",
                                path=path, offset=scan.bad_byte_at)
    if layout.version == 2 and scan.used != layout.used_blocks:
        raise CorruptImageError(
            f"partclone map marks {scan.used} blocks in use; the header records "
            f"{layout.used_blocks}", path=path, offset=70)
    _check_data_span(path, layout, scan.used, file_size)


def _check_data_span(path: Path, layout: Layout, used: int, file_size: int) -> None:
    end = layout.data_end(used)
    if layout.version == 1 and used and file_size == end + 4 * used:
        raise UnsupportedFormatError(
            f"{path}: a partclone 0001 image with 8-byte CRCs (the 64-bit build before 0.1.0): "
            "not read by BitWitness, nor by partclone 0.3's restore")
    check_span(layout.data_at, end - layout.data_at, file_size, path=path,
               what=f"the {used} blocks in use and their {layout.checksums(used)} checksums")


# --- the reader -----------------------------------------------------------------------------


class PartcloneStream(FileImageStream):
    """The volume a partclone image holds: its blocks in use at their places, zeros between."""

    alignment = 1

    def __init__(self, path: Path) -> None:
        self._pages: OrderedDict[int, int] = OrderedDict()
        self._lock = threading.Lock()
        super().__init__(path)

    def _load(self) -> int:
        self.file_size = os.fstat(self._fd).st_size
        self.layout = read_layout(self._fd, self.path, self.file_size)
        scan = scan_map(self._fd, self.path, self.layout)
        _check_map(self.path, self.layout, scan, self.file_size)
        self.scan = scan  #: the map as the walk found it (kept for verify's checks)
        self._before = scan.before
        self.used = scan.used
        self.blocks_bytes = self.layout.media_size
        return self._volume_size()

    def _volume_size(self) -> int:
        """The volume's size as partclone's restore into a file makes it: the file ends where
        the last block is written, and where the last block is not in use it is cut or
        extended to the device size the header records (``ftruncate``). The device can be
        larger than the file system's blocks: NTFS keeps its backup boot sector in the
        device's last sector, past its last cluster (partclone does not save it), so the
        volume reads as the whole partition, the rest zeros. A 0001 image is restored to its
        blocks whatever device size it records (partclone 0.3.23, checked in the tests)."""
        layout = self.layout
        last = layout.total_blocks - 1
        if layout.version == 1:
            return self.blocks_bytes
        bits = self._page(last // layout.blocks_per_page)
        if bits >> (last % layout.blocks_per_page) & 1:
            return self.blocks_bytes
        return layout.device_size

    def _page(self, page: int) -> int:
        """The bits of map page ``page``, read from the file and kept among the last few."""
        layout = self.layout
        if layout.map_kind == BM_NONE:
            count = self._before[page + 1] - self._before[page]
            return (1 << count) - 1
        with self._lock:
            bits = self._pages.get(page)
            if bits is not None:
                self._pages.move_to_end(page)
                return bits
        at, n = _page_span(layout, page)
        bits = _page_bits(layout, page, read_exact(self._fd, at, n, self.path))
        with self._lock:
            self._pages[page] = bits
            while len(self._pages) > PAGES_KEPT:
                self._pages.popitem(last=False)
        return bits

    def _read_aligned(self, offset: int, length: int) -> bytes:
        """The volume at ``offset``: a zeroed buffer, each run of blocks in use copied in from
        the file (a run split only where a checksum lies between its blocks)."""
        layout = self.layout
        size, per = layout.block_size, layout.blocks_per_page
        out = bytearray(length)
        end = min(offset + length, self.blocks_bytes)  # past the blocks: zeros to the device
        if end <= offset:
            return bytes(out)
        block, last = offset // size, (end - 1) // size
        while block <= last:
            page = block // per
            first = page * per
            within, stop = block - first, min(per, last - first + 1)
            bits = self._page(page)
            rank = self._before[page] + (bits & ((1 << within) - 1)).bit_count()
            run_bits = (bits >> within) & ((1 << (stop - within)) - 1)
            at = block
            while run_bits:
                skip = (run_bits & -run_bits).bit_length() - 1
                at += skip
                run_bits >>= skip
                run = (run_bits ^ (run_bits + 1)).bit_length() - 1  # trailing ones
                self._copy_run(out, offset, end, block=at, rank=rank, count=run)
                at += run
                rank += run
                run_bits >>= run
            block = first + stop
        return bytes(out)

    def _copy_run(self, out: bytearray, offset: int, end: int, *, block: int, rank: int,
                  count: int) -> None:
        """Blocks ``block``.. (``count`` of them, in use, the first of this rank) into ``out``
        (which holds the volume from ``offset`` to ``end``), a checksum group at a time."""
        layout = self.layout
        size = layout.block_size
        group = (layout.blocks_per_checksum if layout.checksums(1) else 1 << 62)
        while count:
            n = min(count, group - rank % group)
            lo, hi = max(offset, block * size), min(end, (block + n) * size)
            at = layout.offset_of(rank) + lo - block * size
            out[lo - offset:hi - offset] = read_exact(self._fd, at, hi - lo, self.path)
            block, rank, count = block + n, rank + n, count - n

    @property
    def info(self) -> StreamInfo:
        layout = self.layout
        size = layout.block_size
        free = layout.total_blocks - self.used
        details: dict[str, Any] = {
            "reader": "bitwitness",
            "image_version": f"{layout.version:04d}",
            "file_system": f"{layout.file_system} (as partclone recorded it)",
            "block_size": size,
            "blocks": layout.total_blocks,
            "saved_blocks": f"{self.used} ({self.used * size} bytes): the blocks the file "
                            "system had in use, the only ones partclone saved",
            "not_saved": f"{free} blocks ({free * size} bytes) not in use were not saved: read "
                         "as zeros, as partclone's restore writes them; they are not evidence",
            "checksums": _checksum_words(layout),
        }
        if layout.partclone_version:
            details["partclone_version"] = layout.partclone_version
        if layout.device_size != layout.media_size:
            details["device_size"] = (f"{layout.device_size} bytes recorded for the device; the "
                                      f"file system's {layout.total_blocks} blocks make "
                                      f"{layout.media_size}; the volume read here has "
                                      f"{self.size}, as partclone's restore writes it")
        if layout.fs_used_blocks != self.used:
            details["fs_used_blocks"] = (f"{layout.fs_used_blocks} in use as the file system "
                                         f"reported them; the map marks {self.used}")
        trailing = self.file_size - layout.data_end(self.used)
        if trailing:
            details["bytes_after_the_data"] = f"{trailing} (not part of the volume, not read)"
        return StreamInfo(format="partclone", files=(self.path,), media_size=self.size,
                          sector_size=self.sector_size, details=details)


def _checksum_words(layout: Layout) -> str:
    if layout.version == 1:
        return "CRC-32 after each block, over its first byte only (partclone 0001's bug)"
    if not layout.checksum_size or not layout.blocks_per_checksum:
        return "none recorded"
    seeded = "reseeded after each" if layout.reseed else "carried on from one to the next"
    return (f"{_CHECKSUM_NAMES[layout.checksum_mode]} every {layout.blocks_per_checksum} "
            f"blocks saved, {seeded}")


# --- what verify checks ---------------------------------------------------------------------


def partclone_checks(path: Path, opened: PartcloneStream | None = None
                     ) -> tuple[ContainerCheck, ...]:
    """Every checksum the image records, recomputed: the map's CRC-32 (and its count against
    the header), then each block group's checksum, the data read from the file a few MiB at a
    time. Mismatches name the checksum's file offset and the blocks and volume offset it covers.
    A header that cannot be read is one failed check saying why. ``opened``: the image already
    open (its header and map walk are used, not read again; it is left open)."""
    if opened is not None:
        return _checks(path, opened._fd, opened.layout, opened.scan, opened.file_size)
    fd = open_readonly(path)
    try:
        file_size = os.fstat(fd).st_size
        try:
            layout = read_layout(fd, path, file_size)
            scan = scan_map(fd, path, layout)
        except BitWitnessError as exc:
            return (ContainerCheck("partclone header", False, str(exc)),)
        return _checks(path, fd, layout, scan, file_size)
    finally:
        os.close(fd)


def _checks(path: Path, fd: int, layout: Layout, scan: MapScan,
            file_size: int) -> tuple[ContainerCheck, ...]:
    """The map check, then the block groups' (when the image records checksums)."""
    checks = [_map_check(path, layout, scan)]
    data = _data_check(fd, path, layout, scan, file_size)
    if data is not None:
        checks.append(data)
    return tuple(checks)


def _map_check(path: Path, layout: Layout, scan: MapScan) -> ContainerCheck:
    findings = Findings()
    crc_at = layout.map_at + layout.map_bytes
    if scan.crc is not None and scan.crc != scan.stored_crc:
        findings.add(f"the map's CRC-32 (file offset {crc_at}) records 0x{scan.stored_crc:08X}; "
                     f"the map (file offsets {layout.map_at}-{crc_at - 1}) gives "
                     f"0x{scan.crc:08X}")
    if scan.bad_byte_at is not None:
        findings.add(f"the byte map holds a byte other than 0 or 1 at file offset "
                     f"{scan.bad_byte_at}")
    if layout.version == 2 and scan.used != layout.used_blocks:
        findings.add(f"the map marks {scan.used} blocks in use; the header (file offset 70) "
                     f"records {layout.used_blocks}")
    if layout.version == 1:
        clean = f"{scan.used} blocks in use, every map byte 0 or 1, 'BiTmAgIc' after it"
    elif scan.crc is None:
        clean = f"no map (every one of the {scan.used} blocks saved)"
    else:
        clean = f"map CRC-32 matches, {scan.used} blocks in use, as the header records"
    return findings.check("partclone map", path.name, clean)


def _data_check(fd: int, path: Path, layout: Layout, scan: MapScan,
                file_size: int) -> ContainerCheck | None:
    """The block groups' checksums (``None``: the image records none, or XXH64, which no
    library here computes)."""
    groups = layout.checksums(scan.used)
    if not groups or layout.checksum_mode == CSM_XXH64:
        return None
    what = "partclone block checksums"
    if layout.data_end(scan.used) > file_size:
        return ContainerCheck(what, False, f"{path.name}: not checked: the {scan.used} blocks "
                                           "the map marks and their checksums run past the end "
                                           f"of the {file_size}-byte file")
    findings = Findings()
    per, size, cs = layout.blocks_per_checksum, layout.block_size, layout.checksum_size
    group_bytes = per * size + cs
    step = max(1, _WINDOW // group_bytes)
    # zlib's running values a group may start from (partclone's state is their inversion):
    # after a mismatch where checksums carry on, both the value recorded and the one the data
    # gave, so that one damaged block or checksum is one finding, not one per later group
    starts: tuple[int, ...] = (0,)
    for first in range(0, groups, step):
        n_groups = min(step, groups - first)
        start = layout.offset_of(first * per)
        last_rank = min(scan.used, (first + n_groups) * per)
        window = memoryview(read_exact(fd, start, layout.offset_of(last_rank) - start
                                       + (cs if last_rank % per else 0), path))
        at = 0
        for g in range(first, first + n_groups):
            blocks = min(per, scan.used - g * per)
            data = window[at:at + blocks * size]
            at += blocks * size
            stored = int.from_bytes(window[at:at + cs], "little")
            values = [_group_crc(layout, data, z) for z in starts]
            good = [z for z in values if z ^ _MASK32 == stored]
            if good:
                starts = (good[0],)
            else:
                findings.add(_group_mismatch(fd, path, layout, scan, group=g,
                                             found=(start + at, stored, values[0] ^ _MASK32)))
                starts = (stored ^ _MASK32, values[0])
            at += cs
    return findings.check(what, path.name,
                          f"{groups} checksum{'s' if groups != 1 else ''} over "
                          f"{scan.used} blocks: {'all match' if groups != 1 else 'matches'} "
                          "the data")


def _group_crc(layout: Layout, data: memoryview, z: int) -> int:
    """zlib's running CRC-32 after one group, from ``z`` (unless partclone reseeds)."""
    if layout.version == 1:  # crc32_0001: the block's first byte, repeated
        return zlib.crc32(bytes(data[:1]) * layout.block_size, z)
    return zlib.crc32(data, 0 if layout.reseed else z)


def _group_mismatch(fd: int, path: Path, layout: Layout, scan: MapScan, *, group: int,
                    found: tuple[int, int, int]) -> Callable[[], str]:
    """The words for one group whose checksum does not match (made only if named)."""
    at, stored, computed = found

    def words() -> str:
        per = layout.blocks_per_checksum
        first, last = group * per, min(scan.used, (group + 1) * per) - 1
        block = block_of_rank(fd, path, layout, scan, first)
        return (f"checksum {group} (file offset {at}) over blocks in use {first}-{last} (from "
                f"block {block}, volume offset {block * layout.block_size}) records "
                f"0x{stored:08X}; the data gives 0x{computed:08X}")

    return words


def block_of_rank(fd: int, path: Path, layout: Layout, scan: MapScan, rank: int) -> int:
    """The block number of the block in use of this rank (a page found by bisection, the bit
    in it by halving)."""
    page = bisect_right(scan.before, rank) - 1
    if layout.map_kind == BM_NONE:
        return rank
    at, n = _page_span(layout, page)
    bits = _page_bits(layout, page, read_exact(fd, at, n, path))
    want = rank - scan.before[page]
    lo, hi = 0, layout.blocks_per_page  # the answer: the least k with popcount(bits < k) > want
    while lo < hi:
        mid = (lo + hi) // 2
        if (bits & ((1 << (mid + 1)) - 1)).bit_count() > want:
            hi = mid
        else:
            lo = mid + 1
    return page * layout.blocks_per_page + lo


# --- the second reader ----------------------------------------------------------------------


def _partclone_version(exe: str) -> str:
    done = subprocess.run([exe, "-v"], capture_output=True, text=True, check=False,
                          stdin=subprocess.DEVNULL)
    words = (done.stdout + done.stderr).split()
    version = next((w for w in words if w.startswith("v0.") or w.startswith("v1.")), "")
    return f"partclone.restore {version}".strip()


class PartcloneRestoreStream(RestoredStream):
    """The volume as partclone's own restore rebuilds it: ``partclone.restore -W`` writes a raw
    file of the volume's size, the blocks not in use left as holes, from a copy of the image
    (:class:`RestoredStream`). It runs only as root (it refuses otherwise): elsewhere the
    second reading is not made (:class:`NoSecondReader`), and ``verify`` notes why."""

    program = "partclone.restore"
    package = "partclone"
    format_name = "partclone"

    def ready(self, exe: str) -> None:
        if os.geteuid() != 0:
            raise NoSecondReader("partclone's restore runs only as root (it refuses to start "
                                 "otherwise)")

    def command(self, exe: str, copies: list[Path], media: Path, folder: Path) -> list[str]:
        return [exe, "-s", str(copies[0]), "-o", str(media), "-W", "-L",
                str(folder / "partclone.log"), "-q", "-f", "1"]

    def version(self, exe: str, said: str) -> str:
        return _partclone_version(exe)


class PartcloneFormat:
    """partclone images, versions 0001 and 0002 (Clonezilla's ``*-ptcl-img`` files, once
    decompressed and joined)."""

    name = "partclone"
    containers = ("partclone",)

    def probe(self, path: Path, head: bytes) -> bool:
        return head.startswith(MAGIC)

    def claims_name(self, path: Path) -> bool:
        return False  # recognised by its signature only

    def files(self, path: Path) -> list[Path]:
        return [path]

    def open(self, path: Path) -> ImageStream:
        refuse_split_container(path, "partclone image")
        return PartcloneStream(path)

    def second_reader(self, path: Path, stream: ImageStream) -> ImageStream | None:
        """partclone's own restore: it shares no code with ours."""
        layout = getattr(stream, "layout", None)
        size = stream.size if layout is None else max(stream.size, layout.device_size)
        return PartcloneRestoreStream([path], size)

    def self_checks(self, path: Path, stream: ImageStream) -> tuple[ContainerCheck, ...]:
        """The map's CRC-32 and every block group's checksum (:func:`partclone_checks`), from
        the map walk the opened stream made."""
        return partclone_checks(path, stream if isinstance(stream, PartcloneStream) else None)


FORMAT = PartcloneFormat()
