"""Which blocks of an ext2/3/4 file system are allocated now, from its block bitmaps.

pytsk3 hands over a deleted inode's block runs (``icat`` reads them: ext2 keeps them on delete)
but not the allocation state of a block. A deleted file's blocks were freed with it; any of
them allocated again holds another file's data now. This reads the bitmaps as the kernel finds
them: the superblock at byte 1024 gives the block size (``1024 << s_log_block_size``, offset
24), the first data block (20), the blocks per group (32), the read-only-compatible features
(100: 0x10 ``gdt_csum``, 0x400 ``metadata_csum``) and, with the ``64bit`` feature (0x80 of
``s_feature_incompat`` at 96), the group descriptor size (254). The descriptors follow the
superblock's block; each gives its group's block bitmap (offset 0, high half at 0x20 when the
descriptor is 64 bytes long) and flags (0x12: 0x2 ``BLOCK_UNINIT``, a group whose bitmap was
never written and whose data blocks are all free, honoured only with a descriptor checksum
feature, as the kernel does). A file system with ``meta_bg`` (0x10 of the incompatible
features) keeps its descriptors elsewhere and is not read: no claim is made there.
"""

from __future__ import annotations

import struct

from bitwitness.errors import FileSystemError
from bitwitness.stream import ImageStream

_EXT_MAGIC = 0xEF53
_INCOMPAT_64BIT = 0x80
_INCOMPAT_META_BG = 0x10
_RO_DESCRIPTOR_CHECKSUM = 0x10 | 0x400
_BLOCK_UNINIT = 0x2
#: Bitmaps kept in memory at once (one block each); a crafted file system cannot grow it.
MAX_CACHED_BITMAPS = 64


class ExtBitmaps:
    """The block bitmaps of the ext file system at ``base`` in ``stream``."""

    def __init__(self, stream: ImageStream, base: int) -> None:
        self.stream = stream
        self.base = base
        sb = stream.pread(base + 1024, 1024)
        if len(sb) < 256 or struct.unpack_from("<H", sb, 56)[0] != _EXT_MAGIC:
            raise FileSystemError("no ext superblock: block allocation not read")
        log_block = struct.unpack_from("<I", sb, 24)[0]
        incompat = struct.unpack_from("<I", sb, 96)[0]
        if log_block > 6 or incompat & _INCOMPAT_META_BG:
            raise FileSystemError("ext block bitmaps not read (meta_bg or odd block size)")
        self.block = 1024 << log_block
        self.first_data = struct.unpack_from("<I", sb, 20)[0]
        self.per_group = struct.unpack_from("<I", sb, 32)[0]
        if not 8 <= self.per_group <= self.block * 8:
            raise FileSystemError(f"ext superblock: {self.per_group} blocks per group")
        self.uninit_honoured = bool(struct.unpack_from("<I", sb, 100)[0]
                                    & _RO_DESCRIPTOR_CHECKSUM)
        wide = bool(incompat & _INCOMPAT_64BIT)
        self.desc_size = struct.unpack_from("<H", sb, 254)[0] if wide else 32
        if self.desc_size < 32 or self.desc_size > 1024 or self.desc_size & (self.desc_size - 1):
            raise FileSystemError(f"ext superblock: descriptor size {self.desc_size}")
        blocks = struct.unpack_from("<I", sb, 4)[0] | (
            struct.unpack_from("<I", sb, 0x150)[0] << 32 if wide else 0)
        self.groups = -(-(blocks - self.first_data) // self.per_group)
        self.table = (self.first_data + 1) * self.block
        self._bitmaps: dict[int, bytes | None] = {}

    def allocated(self, first: int, count: int) -> int:
        """How many of blocks ``first`` .. ``first + count - 1`` are allocated now; a block
        outside every group counts as allocated (it cannot be the file's free space)."""
        taken, block, end = 0, first, first + count
        while block < end:
            rel = block - self.first_data
            group = rel // self.per_group if rel >= 0 else -1
            in_group = rel % self.per_group if rel >= 0 else 0
            span = min(end - block, self.per_group - in_group) if group >= 0 else 1
            if not 0 <= group < self.groups:
                taken += span
            else:
                bits = self._bitmap(group)
                if bits is not None:
                    window = (int.from_bytes(bits, "little") >> in_group) & ((1 << span) - 1)
                    taken += window.bit_count()
            block += span
        return taken

    def _bitmap(self, group: int) -> bytes | None:
        """The group's bitmap, or None for a group whose bitmap is uninitialised (all free)."""
        if group in self._bitmaps:
            return self._bitmaps[group]
        desc = self.stream.pread(self.base + self.table + group * self.desc_size, self.desc_size)
        if len(desc) < self.desc_size:
            raise FileSystemError(f"ext group descriptor {group} lies past the image's end")
        flags = struct.unpack_from("<H", desc, 0x12)[0]
        location = struct.unpack_from("<I", desc, 0)[0] | (
            struct.unpack_from("<I", desc, 0x20)[0] << 32 if self.desc_size >= 64 else 0)
        bits: bytes | None = None
        if not (flags & _BLOCK_UNINIT and self.uninit_honoured):
            bits = self.stream.pread(self.base + location * self.block, self.per_group // 8 + 1)
            if len(bits) < -(-self.per_group // 8):
                raise FileSystemError(f"ext block bitmap of group {group} lies past the end")
        if len(self._bitmaps) >= MAX_CACHED_BITMAPS:
            self._bitmaps.pop(next(iter(self._bitmaps)))
        self._bitmaps[group] = bits
        return bits
