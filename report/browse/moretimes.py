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
from bitwitness.report.browse.entries import Times
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
    geometry = ext_geometry(stream, base)
    if geometry is None or inode < 1:
        return None
    block, first_data, per_group, inode_size, desc_size, _ = geometry
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


#: Offsets in an ext inode of (seconds, extra) per time, in Times order: modified, accessed,
#: changed, born (the extra word's low two bits extend the seconds, the rest are nanoseconds;
#: it exists when ``128 + i_extra_isize`` reaches past it; the creation time only there)
_EXT_TIMES = ((16, 136), (8, 140), (12, 132), (144, 148))
#: The inode bytes holding every time field
_EXT_TIME_BYTES = 152
#: Groups whose inode table is remembered (a crafted inode number cannot grow the cache)
MAX_EXT_GROUPS_CACHED = 1 << 16
#: Inode-table blocks remembered as read right (then forgotten at once: memory stays flat)
MAX_EXT_BLOCKS_CHECKED = 1 << 16


class ExtTimes:
    """An ext inode's times as the kernel decodes them, where TSK's differ.

    TSK takes the 32-bit seconds as unsigned and ignores the epoch bits of the extra field, so
    a time before 1970 reads 136 years late and one from 2106-02-07 on 136 years early per
    epoch. The kernel: ``(int32) seconds + (extra & 3) << 32``, nanoseconds ``extra >> 2``.
    The geometry is read once (``ext_deletion_time``'s way to an inode), each group's
    descriptor once, and the inode table a block at a time (the last block is kept: a folder's
    inodes mostly lie side by side). A time whose seconds agree with TSK's is kept as TSK
    gave it.
    """

    def __init__(self, stream: ImageStream, byte_offset: int) -> None:
        self._stream = stream
        self._base = byte_offset
        self._geometry: tuple[int, int, int, int, int, int] | None = None
        #: inode table block by group, as the descriptors give them (read once each)
        self._tables: dict[int, int] = {}
        self._block_at = -1  #: the inode-table block last read, and its bytes
        self._block = b""
        #: inode-table blocks (byte offsets) in which TSK reads every inode's times right
        self._right: set[int] = set()
        #: [first, end) inode numbers of the last block found all right: a folder's inodes are
        #: mostly neighbours, and this answers them before any arithmetic
        self._right_inodes = (0, 0)
        self._wrong = -1  #: the block last checked and found not all right
        try:
            self._geometry = ext_geometry(stream, byte_offset)
        except (BitWitnessError, struct.error, ValueError, OverflowError):
            self._geometry = None

    def adjust(self, inode: int, times: Times,
               extent: Callable[[], tuple[int, int] | None]) -> Times:
        """``times`` as TSK read them, with each time the kernel decodes otherwise replaced."""
        del extent  # ext inodes are found by number
        if self.reads_right(inode):
            return times
        try:
            raw = self._inode(inode)
        except (BitWitnessError, struct.error, ValueError, OverflowError):
            return times
        if raw is None:
            return times
        extra_size = 128 + struct.unpack_from("<H", raw, 128)[0] if len(raw) >= 130 else 128
        if _tsk_reads_right(raw, extra_size):
            return times
        fixed = []
        for given, (at, extra_at) in zip((times.modified, times.accessed, times.changed,
                                          times.born), _EXT_TIMES, strict=True):
            fixed.append(_ext_time(raw, at, extra_at, extra_size, given))
        return Times(*fixed)

    def reads_right(self, inode: int) -> bool:
        """Whether TSK reads every time of every inode in the inode-table block holding
        ``inode`` right (:func:`_block_reads_right`), remembered per block.

        Why: a listing asks for every entry, and a folder's inodes mostly share blocks; the
        block's inodes are checked at once on its first read, a later entry only looks its
        block up. False sends the inode the field-by-field way (also for a group whose table
        is not known yet: reading its descriptor is that way's)."""
        first, end = self._right_inodes
        if first <= inode < end:
            return True
        # _inode's address arithmetic, written out again: this runs once per listed entry, and
        # a helper shared with _inode made ls -r of 1,000,000 files 4% slower
        geometry = self._geometry
        if geometry is None or inode < 1:
            return False
        block, _, per_group, inode_size, _, _ = geometry
        group, index = divmod(inode - 1, per_group)
        table = self._tables.get(group)
        if table is None:
            return False
        where = self._base + table * block + index * inode_size
        # the file system's block (the partition may start off a block boundary of the image:
        # its blocks, and the inode slots in them, are counted from the partition's start)
        start = where - (where - self._base) % block
        if start not in self._right:
            if start == self._wrong or block % inode_size:
                return False  # checked already (not all right), or inodes straddle blocks
            if start != self._block_at:
                self._block, self._block_at = self._stream.pread(start, block), start
            if len(self._block) < block or not _block_reads_right(self._block, inode_size):
                self._wrong = start
                return False
            if len(self._right) >= MAX_EXT_BLOCKS_CHECKED:
                self._right.clear()
            self._right.add(start)
        # the inodes of this block: from the one at its start to its end or the group's
        in_block = (where - start) // inode_size
        first = inode - in_block
        self._right_inodes = (first, min(first + block // inode_size,
                                         group * per_group + per_group + 1))
        return True

    def flags(self, inode: int) -> int | None:
        """The inode's ``i_flags`` (``EXT4_ENCRYPT_FL`` and the like), or None when the inode
        cannot be read."""
        raw = self._inode(inode)
        return struct.unpack_from("<I", raw, 32)[0] if raw is not None and len(raw) >= 36 \
            else None

    def _inode(self, inode: int) -> bytes | None:
        if self._geometry is None or inode < 1:
            return None
        block, first_data, per_group, inode_size, desc_size, _ = self._geometry
        group, index = divmod(inode - 1, per_group)
        table = self._tables.get(group)
        if table is None:
            desc = self._stream.pread(self._base + (first_data + 1) * block + group * desc_size,
                                      desc_size)
            if len(desc) < desc_size:
                return None
            table = struct.unpack_from("<I", desc, 8)[0]
            if desc_size >= 64:
                table |= struct.unpack_from("<I", desc, 0x28)[0] << 32
            if len(self._tables) < MAX_EXT_GROUPS_CACHED:
                self._tables[group] = table
        where = self._base + table * block + index * inode_size
        start = where - where % block  # the inode table block: inodes are listed in runs
        if start != self._block_at:
            self._block = self._stream.pread(start, block)
            self._block_at = start
        raw = self._block[where - start:where - start + min(inode_size, _EXT_TIME_BYTES)]
        return raw if len(raw) >= 24 else None


def _tsk_reads_right(raw: bytes, extra_size: int) -> bool:
    """The common case, decided without a date: no time before 1970 and no epoch bits, where
    TSK's unsigned seconds are the kernel's (a listing asks this for every entry)."""
    atime, ctime, mtime = struct.unpack_from("<iii", raw, 8)
    if atime < 0 or ctime < 0 or mtime < 0:
        return False
    if extra_size <= 132 or len(raw) <= 132:
        return True
    if extra_size >= _EXT_TIME_BYTES and len(raw) >= _EXT_TIME_BYTES:
        ctime_x, mtime_x, atime_x, crtime, crtime_x = struct.unpack_from("<IIIiI", raw, 132)
        return crtime >= 0 and not (ctime_x | mtime_x | atime_x | crtime_x) & 3
    return False  # extra fields in part: the field-by-field way


def _block_reads_right(data: bytes, inode_size: int) -> bool:
    """:func:`_tsk_reads_right` of every inode slot in the inode-table block ``data``, or
    False where that cannot be told at once (a slot whose extra fields hold part of the
    times). Stricter than asking slot by slot, never looser: the sign bytes of the four
    seconds fields must be below 0x80 and the epoch bits of the four extra words zero in
    every slot, whatever its ``i_extra_isize``. Byte slices do the work a slot at a time
    would do in Python."""
    step = inode_size
    for at in (8, 12, 16):  # atime, ctime, mtime: their high (sign) bytes
        if max(data[at + 3 :: step]) >= 0x80:
            return False
    if inode_size <= 132:
        return True  # no extra fields: _tsk_reads_right's first case for every slot
    if inode_size < _EXT_TIME_BYTES:
        return False  # extra fields cut short: the field-by-field way
    # i_extra_isize (16 bits at 128) of each slot: up to 4 (no extra times) or at least 24
    for low, high in zip(data[128::step], data[129::step], strict=True):
        if not high and 4 < low < _EXT_TIME_BYTES - 128:
            return False
    if max(data[147::step]) >= 0x80:  # crtime's sign byte
        return False
    return not any(any(data[at::step].translate(_LOW_TWO_BITS)) for at in (132, 136, 140, 148))


_LOW_TWO_BITS = bytes(b & 3 for b in range(256))  #: a ``bytes.translate`` table


def _ext_time(raw: bytes, at: int, extra_at: int, extra_size: int,
              given: datetime | None) -> datetime | None:
    """One time of an inode as the kernel decodes it; ``given`` (TSK's) when they agree. A time
    TSK shows none of stays none (it reads no creation time on ext2/ext3, which the bodyfile
    parity with ``fls -m`` keeps)."""
    if given is None or at + 4 > len(raw) or (at >= 128 and at + 4 > extra_size):
        return given  # no such field (the creation time of a 128-byte inode)
    seconds = struct.unpack_from("<i", raw, at)[0]
    nanos = 0
    if extra_at + 4 <= min(extra_size, len(raw)):
        extra = struct.unpack_from("<I", raw, extra_at)[0]
        seconds += (extra & 3) << 32
        nanos = extra >> 2
        if nanos > 999_999_999:
            return given  # not a time the kernel would write: leave TSK's reading
    if (given - _EPOCH) // timedelta(seconds=1) == seconds:
        return given
    return _EPOCH + timedelta(seconds=seconds, microseconds=nanos // 1000)


def ext_geometry(stream: ImageStream, base: int) -> tuple[int, int, int, int, int, int] | None:
    """(block size, first data block, inodes per group, inode size, descriptor size, 0) of the
    ext superblock at ``base`` + 1024, or None when it is no sane one."""
    sb = stream.pread(base + 1024, 1024)
    if len(sb) < 256 or struct.unpack_from("<H", sb, 56)[0] != _EXT_MAGIC:
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
    return block, first_data, per_group, inode_size, desc_size, 0


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

    def name(self, cnid: int) -> bytes | None:
        """The UTF-16BE units of ``cnid``'s name as its thread record holds them (None when not
        found): exact, where TSK turns a lone surrogate half into ``^``."""
        try:
            thread = self._first_with_parent(cnid, lambda data: data[:2] in (b"\0\3", b"\0\4"))
            if thread is None or len(thread) < 10:
                return None
            length = struct.unpack_from(">H", thread, 8)[0]
            units = thread[10:10 + 2 * length]
            return units if len(units) == 2 * length else None
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
