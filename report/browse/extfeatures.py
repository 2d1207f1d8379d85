"""The feature flags of an ext2/3/4 superblock, read by us: which reader takes the file system.

The superblock is the 1024 bytes at byte 1024 of the volume (magic ``0xEF53`` at 56); the three
feature words are ``s_feature_compat`` (92), ``s_feature_incompat`` (96) and
``s_feature_ro_compat`` (100); the block size is ``1024 << s_log_block_size`` (24) and, with
bigalloc, the cluster size ``1024 << s_log_cluster_size`` (28). Nothing else is read: the
parser takes exactly those bytes, so a hostile volume costs 1 KiB however it lies.

The rule (:func:`reader_for`), measured with The Sleuth Kit 4.11.1, libfsext 20260821, mke2fs
1.47.0 and the kernel's ext4 driver on images each test builds (``tests/test_fs_ext_features.py``):

* **bigalloc** (``ro_compat`` 0x200, blocks allocated in clusters of several blocks): TSK
  cannot open the file system at all (``Cannot determine file system type``), at 1 KiB and
  4 KiB blocks alike. libfsext reads it: names, inode numbers, file sizes, modes, owners,
  link targets, the four times (before 1970 too) and every byte as the kernel gives them
  (folders' sizes it gives as 0; it lists no deleted name). Such a file system is read by
  libfsext.
* Everything else mke2fs 1.47 makes stays with TSK, which reads it as the kernel does
  (names, inode numbers and bytes): inline data (files and folders in the inode, also spilling
  into the ``system.data`` attribute), casefold folders (names as stored), ``ea_inode``,
  ``large_dir``, ``metadata_csum_seed``, ``64bit`` + ``meta_bg``, ``huge_file``,
  ``extra_isize``, ``sparse_super2``, ``mmp``, ``stable_inodes``, ``orphan_file``, ``verity``,
  no journal, no extents, 128-byte inodes, 1 KiB blocks, preallocated (unwritten) extents.
  libfsext is no better there: it refuses to open ``large_dir``, ``mmp``, ``sparse_super2``
  and ``stable_inodes`` volumes and refuses inodes of casefold or encrypted folders, inline
  data spilling into ``system.data``, and times after 2262-04-11 (nanoseconds past 2^63), so
  it is not used for them.

Times are the one thing TSK gets wrong on every ext4: it takes an inode's 32-bit seconds as
unsigned and ignores the two epoch bits of the extra field, so a time before 1970 shows 136
years later (1960-06-01 as 2096-07-07) and one from 2106-02-07 on 136 years earlier per epoch
(2150 as 2013, 2263 as 1990). That is no reason to leave TSK (libfsext reads those times
right only up to 2262 and refuses much else): ``moretimes.ExtTimes`` corrects them from the
inode on the TSK path.

A bigalloc file system with one of the features libfsext refuses is read by neither: opening
it fails with one line naming both reasons (:class:`~bitwitness.errors.FileSystemError`).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import StrEnum

from bitwitness.stream import ImageStream

#: Where the primary superblock lies in the volume, and how long it is.
SUPERBLOCK_OFFSET = 1024
SUPERBLOCK_SIZE = 1024
EXT_MAGIC = 0xEF53
#: ``s_log_block_size`` above this (64 KiB blocks) is no ext file system the kernel mounts.
MAX_LOG_BLOCK = 6
#: ``s_log_cluster_size`` above this (a cluster of 2 GiB) is no real bigalloc file system.
MAX_LOG_CLUSTER = 21

COMPAT = {0x1: "dir_prealloc", 0x2: "imagic_inodes", 0x4: "has_journal", 0x8: "ext_attr",
          0x10: "resize_inode", 0x20: "dir_index", 0x40: "lazy_bg", 0x80: "exclude_inode",
          0x100: "exclude_bitmap", 0x200: "sparse_super2", 0x400: "fast_commit",
          0x800: "stable_inodes", 0x1000: "orphan_file"}
INCOMPAT = {0x1: "compression", 0x2: "filetype", 0x4: "needs_recovery", 0x8: "journal_dev",
            0x10: "meta_bg", 0x40: "extent", 0x80: "64bit", 0x100: "mmp", 0x200: "flex_bg",
            0x400: "ea_inode", 0x1000: "dirdata", 0x2000: "metadata_csum_seed",
            0x4000: "large_dir", 0x8000: "inline_data", 0x10000: "encrypt",
            0x20000: "casefold"}
RO_COMPAT = {0x1: "sparse_super", 0x2: "large_file", 0x4: "btree_dir", 0x8: "huge_file",
             0x10: "uninit_bg", 0x20: "dir_nlink", 0x40: "extra_isize", 0x80: "snapshot",
             0x100: "quota", 0x200: "bigalloc", 0x400: "metadata_csum", 0x800: "replica",
             0x1000: "read-only", 0x2000: "project", 0x4000: "shared_blocks",
             0x8000: "verity", 0x10000: "orphan_present"}

#: The features The Sleuth Kit cannot read (``ro_compat`` bits), measured as above.
TSK_LACKS_RO_COMPAT = 0x200
#: Features libfsext 20260821 refuses to open a volume with, measured (``compat``, ``incompat``):
#: sparse_super2, stable_inodes; mmp, large_dir. Named in the error when it refuses one.
LIBFSEXT_REFUSES = (0x200 | 0x800, 0x100 | 0x4000)
#: What makes a file system ext4 rather than ext3/ext2 for the name we show (as ``fsstat``).
_EXT4_INCOMPAT = 0x40 | 0x80 | 0x100 | 0x200 | 0x400 | 0x2000 | 0x4000 | 0x8000 | 0x10000 \
    | 0x20000
_EXT4_RO_COMPAT = 0x8 | 0x10 | 0x20 | 0x40 | 0x200 | 0x400 | 0x2000 | 0x8000


class Reader(StrEnum):
    """Which reader takes an ext file system."""

    TSK = "tsk"
    LIBFSEXT = "libfsext"


@dataclass(frozen=True)
class ExtSuperblock:
    """The feature words and geometry of one ext superblock."""

    compat: int
    incompat: int
    ro_compat: int
    block_size: int  #: bytes
    cluster_size: int  #: bytes; the block size without bigalloc

    @property
    def features(self) -> tuple[str, ...]:
        """Every flag set, by the name ``mke2fs -O`` takes (``compat:0x8000`` when unknown)."""
        names: list[str] = []
        for word, value, table in (("compat", self.compat, COMPAT),
                                   ("incompat", self.incompat, INCOMPAT),
                                   ("ro_compat", self.ro_compat, RO_COMPAT)):
            for bit in range(32):
                flag = 1 << bit
                if value & flag:
                    names.append(table.get(flag, f"{word}:{flag:#x}"))
        return tuple(names)

    @property
    def kind(self) -> str:
        """``ext4``, ``ext3`` or ``ext2``, as ``fsstat`` names them."""
        if self.incompat & _EXT4_INCOMPAT or self.ro_compat & _EXT4_RO_COMPAT:
            return "ext4"
        return "ext3" if self.compat & 0x4 else "ext2"

    @property
    def tsk_lacks(self) -> tuple[str, ...]:
        """The features set here that The Sleuth Kit cannot read."""
        lacking = self.ro_compat & TSK_LACKS_RO_COMPAT
        return tuple(RO_COMPAT[f] for f in RO_COMPAT if lacking & f)

    @property
    def libfsext_refuses(self) -> tuple[str, ...]:
        """The features set here that libfsext is measured to refuse (see the module)."""
        compat, incompat = LIBFSEXT_REFUSES
        return (tuple(COMPAT[f] for f in COMPAT if self.compat & compat & f)
                + tuple(INCOMPAT[f] for f in INCOMPAT if self.incompat & incompat & f))


def parse_superblock(data: bytes) -> ExtSuperblock | None:
    """The superblock in ``data`` (the 1024 bytes at byte 1024 of a volume), or None when they
    are no ext superblock (short, another magic, an impossible block or cluster size)."""
    if len(data) < SUPERBLOCK_SIZE:
        return None
    if struct.unpack_from("<H", data, 56)[0] != EXT_MAGIC:
        return None
    log_block, log_cluster = struct.unpack_from("<II", data, 24)
    compat, incompat, ro_compat = struct.unpack_from("<III", data, 92)
    if log_block > MAX_LOG_BLOCK:
        return None
    block = 1024 << log_block
    cluster = block
    if ro_compat & 0x200:  # bigalloc: the cluster is a power of two of blocks
        if log_cluster > MAX_LOG_CLUSTER or log_cluster < log_block:
            return None
        cluster = 1024 << log_cluster
    return ExtSuperblock(compat, incompat, ro_compat, block, cluster)


def read_superblock(stream: ImageStream, offset: int = 0) -> ExtSuperblock | None:
    """The superblock of the volume starting at byte ``offset`` of ``stream`` (None: none)."""
    if offset + SUPERBLOCK_OFFSET + SUPERBLOCK_SIZE > stream.size:
        return None
    return parse_superblock(stream.pread(offset + SUPERBLOCK_OFFSET, SUPERBLOCK_SIZE))


def reader_for(superblock: ExtSuperblock) -> Reader:
    """libfsext for a file system with a feature TSK cannot read (bigalloc), else TSK."""
    return Reader.LIBFSEXT if superblock.tsk_lacks else Reader.TSK
