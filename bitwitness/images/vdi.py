"""VirtualBox disk images (VDI), read by our own code; QEMU's ``vdi`` driver is the second reader.

A VDI file starts with a 64-byte text banner, then (little-endian) the signature ``0xBEDA107F`` at
offset 64, the version (1.1 is what VirtualBox and QEMU write) and a header that gives the image
type (1 dynamic, 2 fixed, 3 undo, 4 differencing), where the block map and the data start, the
media size, the block size (1 MiB in practice) and how many extra bytes precede each block's data.
The block map holds one 32-bit entry per block of the media: the index of the block's slot in
the data area, or ``0xFFFFFFFF`` (never written) / ``0xFFFFFFFE`` (discarded), both read as
zeros. Slot ``i`` lies at ``data offset + i * (block size + extra) + extra``.

Everything the header declares is checked against the file before it is used: the map lies in
the file and covers the media, each slot lies in the file, the block size is a power of two
that the format's writers use. A differencing image (type 4) needs its parent, which VDI names
only by UUID: it is refused in one line.

:func:`vdi_checks` checks for ``verify`` what the reader does not need to: that the block map
is consistent with itself and the header (no slot used twice, every slot below the header's
count of allocated blocks, that count right).
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable, Iterator
from pathlib import Path

from bitwitness.errors import CorruptImageError, UnsupportedFormatError
from bitwitness.evidence_io import read_head
from bitwitness.images.checks import (
    ContainerCheck,
    Findings,
    check_entries,
    check_overlaps,
    table_pieces,
)
from bitwitness.images.filestream import FileImageStream
from bitwitness.images.qemu import partial_sector_note
from bitwitness.images.raw import read_exact
from bitwitness.stream import ImageStream, StreamInfo

SIGNATURE = 0xBEDA107F
_SIGNATURE_AT = 0x40
#: signature, version, header size, image type, flags (from offset 0x40)
_PREFIX = struct.Struct("<IIIII")
_DESCRIPTION = 256
#: block map offset, data offset, cylinders, heads, sectors, sector size, unused, media size,
#: block size, extra bytes per block, blocks in the media, blocks allocated (v1.1, offset 0x154)
_BODY = struct.Struct("<IIIIIIIQIIII")
_BODY_AT = _SIGNATURE_AT + _PREFIX.size + _DESCRIPTION
_UUID_AT = _BODY_AT + _BODY.size
_VERSION_1 = 0x0001_0000  #: major 1 in the upper half; minors 0 and 1 share this layout
_TYPES = {1: "dynamic", 2: "fixed", 3: "undo", 4: "differencing"}
_FREE = 0xFFFF_FFFF
_ZERO = 0xFFFF_FFFE
#: Where the header records how many blocks are allocated (``blocks allocated``, v1.1).
_ALLOCATED_AT = _BODY_AT + _BODY.size - 4
#: Block sizes accepted: VirtualBox writes 1 MiB; the format allows other powers of two.
_MIN_BLOCK = 512
_MAX_BLOCK = 64 << 20


class VdiStream(FileImageStream):
    """The media of a dynamic or fixed VDI file."""

    alignment = 1

    def _fail(self, what: str) -> CorruptImageError:
        return CorruptImageError(f"VDI header: {what}", path=self.path)

    def _load(self) -> int:
        file_size = os.fstat(self._fd).st_size
        head = read_exact(self._fd, 0, _UUID_AT + 64, self.path)
        self._check_kind(head)
        (map_at, data_at, _cyl, _heads, _sectors, sector_size, _unused, media, block, extra,
         blocks, _allocated) = _BODY.unpack_from(head, _BODY_AT)
        self._check_geometry(media, block, extra, blocks)
        if map_at < _UUID_AT or map_at + 4 * blocks > file_size:
            raise self._fail(f"the block map ({blocks} entries at offset {map_at}) lies "
                             f"outside the file of {file_size} bytes")
        if data_at < _UUID_AT or data_at > file_size:
            raise self._fail(f"data offset {data_at} lies outside the file")
        self._block, self._extra, self._data_at = block, extra, data_at
        self._slot = block + extra
        slots = struct.unpack(f"<{blocks}I", read_exact(self._fd, map_at, 4 * blocks,
                                                        self.path))
        used = (file_size - data_at) // self._slot  # whole slots the file holds
        for index, slot in enumerate(slots):
            if slot < _ZERO and slot >= used:
                raise CorruptImageError(
                    f"VDI block {index} is mapped to slot {slot}, past the end of the file",
                    path=self.path, offset=map_at + 4 * index)
        self._map = slots
        self.sector_size = sector_size if sector_size in (512, 4096) else 512
        return media

    def _check_kind(self, head: bytes) -> None:
        """Signature, version and image type: what this reader reads, or why not."""
        signature, version, header_size, kind, _flags = _PREFIX.unpack_from(head, _SIGNATURE_AT)
        if signature != SIGNATURE:
            raise self._fail("no VDI signature at offset 0x40")
        if version & 0xFFFF_0000 != _VERSION_1:
            raise UnsupportedFormatError(
                f"{self.path}: VDI version {version >> 16}.{version & 0xFFFF} is not read by "
                "BitWitness (1.x is)")
        if header_size < _BODY.size + _DESCRIPTION + 20:
            raise self._fail(f"header size {header_size} is too small for version 1")
        self.kind = _TYPES.get(kind, f"type {kind}")
        if kind == 4:
            parent = head[_UUID_AT + 48:_UUID_AT + 64].hex()
            raise UnsupportedFormatError(
                f"{self.path}: a differencing VDI (its parent is named only by UUID {parent}); "
                "BitWitness reads dynamic and fixed VDI files")
        if kind not in _TYPES:  # VirtualBox defines 1 to 4: anything else is damage
            raise self._fail(f"image type {kind} (0x4C) is none VirtualBox defines")
        if kind not in (1, 2):
            raise UnsupportedFormatError(f"{self.path}: a {self.kind} VDI is not read by "
                                         "BitWitness (dynamic and fixed are)")

    def _check_geometry(self, media: int, block: int, extra: int, blocks: int) -> None:
        if block < _MIN_BLOCK or block > _MAX_BLOCK or block & (block - 1):
            raise self._fail(f"block size {block} (a power of two from {_MIN_BLOCK} to "
                             f"{_MAX_BLOCK} expected)")
        if extra % 512 or extra > block:
            raise self._fail(f"{extra} extra bytes a block (a multiple of 512 up to the block "
                             "size expected)")
        if blocks * block < media:
            raise self._fail(f"{blocks} blocks of {block} bytes cannot hold a media of "
                             f"{media} bytes")

    def _read_aligned(self, offset: int, length: int) -> bytes:
        parts = []
        end = offset + length
        while offset < end:
            index, within = divmod(offset, self._block)
            n = min(self._block - within, end - offset)
            slot = self._map[index]
            if slot >= _ZERO:
                parts.append(bytes(n))
            else:
                at = self._data_at + slot * self._slot + self._extra + within
                parts.append(read_exact(self._fd, at, n, self.path))
            offset += n
        return b"".join(parts)

    @property
    def info(self) -> StreamInfo:
        allocated = sum(1 for slot in self._map if slot < _ZERO)
        details: dict[str, object] = {
            "reader": "bitwitness", "image_type": self.kind, "block_size": self._block,
            "allocated_blocks": allocated, "blocks": len(self._map)}
        # VBoxManage convertfromraw keeps a raw file's size whatever it is
        note = partial_sector_note(self.size, "up")
        if note is not None:
            details["media_size_note"] = note
        return StreamInfo(format="vdi", files=(self.path,), media_size=self.size,
                          sector_size=self.sector_size, details=details)


def _readable_body(path: Path) -> tuple[int, ...] | None:
    """The header's body fields of a VDI the reader reads (version 1, dynamic or fixed)."""
    head = read_head(path, _UUID_AT + 64)
    if len(head) < _UUID_AT + 64:
        return None
    signature, version, _size, kind, _flags = _PREFIX.unpack_from(head, _SIGNATURE_AT)
    if signature != SIGNATURE or version & 0xFFFF_0000 != _VERSION_1 or kind not in (1, 2):
        return None
    return _BODY.unpack_from(head, _BODY_AT)


def vdi_checks(path: Path) -> tuple[ContainerCheck, ...]:
    """The block map of a dynamic or fixed VDI against itself, the header and the file.

    VirtualBox and QEMU give each newly written block the next slot of the data area, so the
    slots in use are exactly ``0 .. blocks allocated - 1``, each named by one map entry: an
    entry at or past the header's count, two entries naming one slot (two media blocks reading
    the same data), a count that is not the number of allocated entries, a slot past the end
    of the file, or a data area that overlaps the map, is damage or tampering. The reader
    refuses only a slot past the end of the file. A file the reader does not read (another
    version, a differencing image) records nothing checked here. Each problem names the entry's
    index and file offset."""
    body = _readable_body(path)
    if body is None:
        return ()
    (map_at, data_at, _c, _h, _s, _sector, _unused, _media, block, extra, blocks,
     allocated) = body
    what, findings = "VDI block map", Findings()
    file_size = path.stat().st_size
    slot_size = block + extra
    map_end = map_at + 4 * blocks
    if map_at < _UUID_AT or map_end > file_size or slot_size == 0:
        findings.add(f"the map ({blocks} entries at file offset {map_at}, blocks of "
                     f"{slot_size} bytes) does not lie in the {file_size}-byte file")
        return (findings.check(what, path.name, ""),)
    if data_at < map_end:
        findings.add(f"the data area (file offset {data_at}) begins inside the map, which "
                     f"ends at file offset {map_end}")
    if allocated > blocks:
        findings.add(f"the header (file offset {_ALLOCATED_AT}) records {allocated} allocated "
                     f"blocks of a {blocks}-block disk")
    slots = max(0, file_size - data_at) // slot_size

    def where(index: int, slot: int) -> str:
        return f"entry {index} (file offset {map_at + 4 * index}: slot {slot})"

    def judge(index: int, slot: int) -> Iterator[Callable[[], str]]:
        if slot >= allocated:
            yield lambda: (f"{where(index, slot)} is at or past the {allocated} blocks the "
                           f"header records as allocated (file offset {_ALLOCATED_AT})")
        if slot >= slots:
            yield lambda: (f"{where(index, slot)} lies past the end of the file (slot at file "
                           f"offset {data_at + slot * slot_size})")

    pieces = table_pieces(path, map_at, blocks, big_endian=False)
    in_use = check_entries(findings, pieces, frozenset((_FREE, _ZERO)), judge,
                           (0, min(allocated, slots) - 1, blocks))
    if in_use != allocated:
        findings.add(f"the header (file offset {_ALLOCATED_AT}) records {allocated} allocated "
                     f"blocks; the map allocates {in_use}")
    check_overlaps(findings, pieces, frozenset((_FREE, _ZERO)), 1, where)
    return (findings.check(what, path.name, f"{blocks} entries at file offset {map_at}, "
                           f"{in_use} allocated: each a distinct slot below the header's "
                           f"count of {allocated}, inside the file"),)


class VdiFormat:
    name = "vdi"
    containers = ("vdi",)
    qemu_driver = "vdi"

    def probe(self, path: Path, head: bytes) -> bool:
        return head[_SIGNATURE_AT:_SIGNATURE_AT + 4] == struct.pack("<I", SIGNATURE)

    def claims_name(self, path: Path) -> bool:
        return False

    def files(self, path: Path) -> list[Path]:
        return [path]

    def open(self, path: Path) -> ImageStream:
        return VdiStream(path)

    def second_reader(self, path: Path, stream: ImageStream) -> ImageStream | None:
        """QEMU's vdi driver, which shares no code with ours."""
        from bitwitness.images.qemu import QemuNbdStream

        return QemuNbdStream(path, "vdi")

    def self_checks(self, path: Path, stream: ImageStream) -> tuple[ContainerCheck, ...]:
        """The block map's consistency (:func:`vdi_checks`)."""
        return vdi_checks(path)


FORMAT = VdiFormat()
