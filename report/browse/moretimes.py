"""Times ``istat`` shows that pytsk3 does not hand over: ext's deletion time and HFS+'s backup
time (TSK keeps both in ``TSK_FS_META.time2``, a union pytsk3 leaves out).

ext2/3/4 (:func:`ext_deletion_time`): the inode's ``i_dtime`` (offset 20, seconds since 1970
UTC), found as the kernel finds an inode. The superblock at byte 1024 gives the block size
(``1024 << s_log_block_size``, offset 24), the inodes per group (40), the inode size (88; 128
before revision 1, offset 76), the first data block (20) and, with the 64bit feature (0x80 of
``s_feature_incompat`` at 96), the group descriptor size (254). Descriptors follow the
superblock's block; each gives its group's inode table (offset 8, high half at 0x28 when 64
bytes long). Like ``istat``, a non-zero value is shown: on a live inode it is the next inode of
the orphan list rather than a time.

HFS+ (:class:`HfsCatalog`): the ``backupDate`` of the file's catalog record (offset 28 of a
folder or file record: seconds since 1904-01-01 UTC), looked up in the catalog B-tree
(``$CatalogFile``, inode 4, read through TSK) by the file's ID: the thread record keyed
(ID, empty name) gives the parent, and the records keyed by that parent are read in order until
one has the ID. Only parent IDs are compared, which needs none of HFS+'s name ordering.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from bitwitness.errors import BitWitnessError
from bitwitness.stream import ImageStream

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_HFS_EPOCH = datetime(1904, 1, 1, tzinfo=UTC)
_EXT_MAGIC = 0xEF53
_INCOMPAT_64BIT = 0x80
#: Offsets in a catalog folder or file record of its creation and backup dates
CREATED, BACKED_UP = 12, 28
#: Bounds on a crafted catalog: B-tree depth and leaf nodes read for one lookup.
MAX_HFS_DEPTH = 16
MAX_HFS_LEAVES = 4096


def ext_deletion_time(stream: ImageStream, byte_offset: int, inode: int) -> datetime | None:
    """``i_dtime`` of ``inode`` (None when zero or the inode cannot be found)."""
    try:
        return _ext_dtime(stream, byte_offset, inode)
    except (BitWitnessError, struct.error, ValueError):
        return None


def _ext_dtime(stream: ImageStream, base: int, inode: int) -> datetime | None:
    sb = stream.pread(base + 1024, 1024)
    if len(sb) < 256 or struct.unpack_from("<H", sb, 56)[0] != _EXT_MAGIC or inode < 1:
        return None
    log_block = struct.unpack_from("<I", sb, 24)[0]
    if log_block > 6:
        return None
    block = 1024 << log_block
    first_data = struct.unpack_from("<I", sb, 20)[0]
    per_group = struct.unpack_from("<I", sb, 40)[0]
    inode_size = struct.unpack_from("<H", sb, 88)[0] if struct.unpack_from(
        "<I", sb, 76)[0] else 128
    wide = bool(struct.unpack_from("<I", sb, 96)[0] & _INCOMPAT_64BIT)
    desc_size = struct.unpack_from("<H", sb, 254)[0] if wide else 32
    if not per_group or inode_size < 128 or not 32 <= desc_size <= block:
        return None
    group, index = divmod(inode - 1, per_group)
    desc = stream.pread(base + (first_data + 1) * block + group * desc_size, desc_size)
    if len(desc) < desc_size:
        return None
    table = struct.unpack_from("<I", desc, 8)[0]
    if desc_size >= 64:
        table |= struct.unpack_from("<I", desc, 0x28)[0] << 32
    raw = stream.pread(base + table * block + index * inode_size + 20, 4)
    if len(raw) < 4:
        return None
    seconds = struct.unpack("<I", raw)[0]
    return _EPOCH + timedelta(seconds=seconds) if seconds else None


class HfsCatalog:
    """Folder and file records of an HFS+ volume's catalog, by catalog node ID (CNID).

    ``read(offset, size)`` reads the catalog file's bytes (TSK's reading of inode 4).
    """

    def __init__(self, read: Callable[[int, int], bytes]) -> None:
        self._read = read
        head = read(0, 512)
        if len(head) < 512 or head[8] != 1:  # node 0 is the header node, 512 bytes or more
            raise ValueError("no catalog header node")
        self._root = struct.unpack_from(">I", head, 16)[0]
        self._node_size = struct.unpack_from(">H", head, 32)[0]
        self._nodes = struct.unpack_from(">I", head, 36)[0]
        if self._node_size not in (512, 1024, 2048, 4096, 8192, 16384, 32768):
            raise ValueError("impossible catalog node size")

    def record(self, cnid: int) -> bytes | None:
        """The folder or file record (its data, after the key) of ``cnid``, if found."""
        try:
            thread = self._first_with_parent(cnid, lambda data: data[:2] in (b"\0\3", b"\0\4"))
            if thread is None:
                return None
            parent = struct.unpack_from(">I", thread, 4)[0]
            return self._first_with_parent(parent, lambda data: data[:2] in (
                b"\0\1", b"\0\2") and struct.unpack_from(">I", data, 8)[0] == cnid)
        except (ValueError, struct.error, BitWitnessError):
            return None

    def date(self, cnid: int, offset: int) -> datetime | None:
        """A date of ``cnid``'s record: 12 created, 16 content modified, 20 attributes
        modified, 24 accessed, 28 backed up (None when zero or not found)."""
        record = self.record(cnid)
        if record is None or len(record) < offset + 4:
            return None
        seconds = struct.unpack_from(">I", record, offset)[0]
        return _HFS_EPOCH + timedelta(seconds=seconds) if seconds else None

    def backup_time(self, cnid: int) -> datetime | None:
        """The backupDate of the folder or file ``cnid`` (None when zero or not found)."""
        return self.date(cnid, BACKED_UP)

    def _node(self, number: int) -> bytes:
        if not 0 < number < self._nodes:
            raise ValueError(f"catalog node {number} out of range")
        data = self._read(number * self._node_size, self._node_size)
        if len(data) < self._node_size:
            raise ValueError(f"catalog node {number} cut short")
        return data

    def _records(self, node: bytes) -> list[tuple[int, bytes, bytes]]:
        """(parent ID, key, data) of each record of a node."""
        count = struct.unpack_from(">H", node, 10)[0]
        if not 0 < count < (self._node_size - 14) // 2:
            raise ValueError("catalog node with an impossible record count")
        found = []
        for i in range(count):
            start = struct.unpack_from(">H", node, self._node_size - 2 * (i + 1))[0]
            end = struct.unpack_from(">H", node, self._node_size - 2 * (i + 2))[0]
            if not 14 <= start < end <= self._node_size - 2 * (count + 1):
                raise ValueError("catalog record outside its node")
            record = node[start:end]
            key_length = struct.unpack_from(">H", record, 0)[0]
            key, data = record[2 : 2 + key_length], record[2 + key_length :]
            found.append((struct.unpack_from(">I", key, 0)[0], key, data))
        return found

    def _first_with_parent(self, parent: int, wanted: Callable[[bytes], bool]) -> bytes | None:
        """The data of the first leaf record keyed by ``parent`` that ``wanted`` accepts."""
        number = self._root
        for _ in range(MAX_HFS_DEPTH):  # down the index: last key at or before (parent, "")
            node = self._node(number)
            if node[8] == 0xFF:  # leaf
                break
            records = self._records(node)
            below = [(key, data) for pid, key, data in records
                     if pid < parent or (pid == parent and key[4:6] == b"\0\0")]
            _key, data = below[-1] if below else (records[0][1], records[0][2])
            number = struct.unpack_from(">I", data, 0)[0]
        else:
            raise ValueError("catalog deeper than its bound")
        seen = set()
        for _ in range(MAX_HFS_LEAVES):
            seen.add(number)
            for pid, _key, data in self._records(node):
                if pid == parent and wanted(data):
                    return data
                if pid > parent:
                    return None
            number = struct.unpack_from(">I", node, 0)[0]  # the next leaf
            if not number or number in seen:
                return None
            node = self._node(number)
        return None
