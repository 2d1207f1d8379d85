"""A test-only HFS+ writer: a small volume holding plain files, folders and decmpfs-compressed
files of every kind, which no tool on Linux writes (the kernel here has no hfsplus module, and
hfsprogs' ``mkfs.hfsplus`` makes only empty volumes).

Written from Apple's TN1150 layout as libyal's "Hierarchical File System (HFS)" document and
TSK's ``tsk_hfs.h`` describe it: a volume header at byte 1024 (copied 1024 bytes before the
end), an allocation bitmap, an empty extents B-tree (a header node only: every fork here has
one extent), a catalog B-tree and an attributes B-tree of one leaf node each, then the forks,
one contiguous run each. The catalog holds a thread record for every folder and file, as
``fls`` and ``fsck`` expect. The decmpfs encoders below make what macOS writes for each
compression type (a 16-byte ``fpmc`` header in the ``com.apple.decmpfs`` attribute, the data
inline after it or in the resource fork as a block table and 64 KiB blocks), with the simplest
encoders that are still valid streams: zlib from the standard library, LZVN as literals only,
LZFSE by the reference encoder or as uncompressed (``bvx-``) blocks. ``fls``/``istat``/``icat``
(Debian's TSK, built with zlib) and pyfshfs read these volumes in
tests/test_fs_hfs_compressed.py.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

BLOCK = 4096
UNIT = 1 << 16  #: decmpfs compresses a resource fork in units of 64 KiB
NODE = 16384  #: catalog and attributes B-tree node size (one leaf each must hold everything)
EXTENTS_NODE = 4096
UF_COMPRESSED = 0x20
_HFS_EPOCH = 2082844800  #: seconds from 1904-01-01 to 1970-01-01
STAMP = 1704067200 + _HFS_EPOCH  #: 2024-01-01T00:00:00Z, every date of the volume
ROOT = 2
FIRST_CNID = 16


# --- decmpfs encoders ---------------------------------------------------------------------

def decmpfs_header(kind: int, size: int) -> bytes:
    """The 16-byte ``com.apple.decmpfs`` header: magic, type (LE u32), size (LE u64)."""
    return b"fpmc" + struct.pack("<IQ", kind, size)


def lzvn_literals(data: bytes) -> bytes:
    """An LZVN stream of literals only (runs of at most 271 bytes), then end-of-stream."""
    out = bytearray()
    for at in range(0, len(data), 271):
        run = data[at:at + 271]
        out += bytes([0xE0 | len(run)]) if len(run) < 16 else bytes([0xE0, len(run) - 16])
        out += run
    return bytes(out) + b"\x06" + bytes(7)


def lzfse_stored(data: bytes) -> bytes:
    """An LZFSE stream of uncompressed blocks (``bvx-``), then the end-of-stream ``bvx$``."""
    out = bytearray()
    for at in range(0, len(data), UNIT):
        run = data[at:at + UNIT]
        out += b"bvx-" + struct.pack("<I", len(run)) + run
    return bytes(out) + b"bvx$"


def zlib_inline(data: bytes, *, stored: bool = False) -> bytes:
    """Type 3: the data deflated (zlib) after the header, or stored after a 0xFF byte."""
    body = b"\xff" + data if stored else zlib.compress(data, 9)
    return decmpfs_header(3, len(data)) + body


def lzvn_inline(data: bytes, *, stored: bool = False) -> bytes:
    """Type 7: LZVN after the header, or stored after a 0x06 byte."""
    body = b"\x06" + data if stored else lzvn_literals(data)
    return decmpfs_header(7, len(data)) + body


def units(data: bytes) -> list[bytes]:
    """``data`` cut into 64 KiB units, the last one partial."""
    return [data[at:at + UNIT] for at in range(0, len(data), UNIT)]


def zlib_fork(blocks: list[bytes]) -> bytes:
    """Type 4's resource fork: a resource header, the resource (its length BE, then the block
    table: count LE, (offset, length) LE pairs counted from the count) and a resource map
    naming it ``cmpf`` id 1, as macOS writes it."""
    table = 4 + 8 * len(blocks)
    entries, body, at = bytearray(), bytearray(), table
    for block in blocks:
        entries += struct.pack("<II", at, len(block))
        body += block
        at += len(block)
    resource = struct.pack("<I", len(blocks)) + bytes(entries) + bytes(body)
    data = struct.pack(">I", len(resource)) + resource
    data_offset, map_length = 0x100, 50
    header = struct.pack(">IIII", data_offset, data_offset + len(data), len(data), map_length)
    resource_map = (header + bytes(4 + 2 + 2) + struct.pack(">HH", 28, map_length)
                    + struct.pack(">H", 0) + b"cmpf" + struct.pack(">HH", 0, 10)
                    + struct.pack(">HhB", 1, -1, 0) + bytes(3) + bytes(4))
    resource_map += bytes(map_length - len(resource_map))
    return header + bytes(data_offset - 16) + data + resource_map


def zlib_blocks(data: bytes, *, stored: tuple[int, ...] = ()) -> list[bytes]:
    """Each unit deflated, or stored after 0xFF where its index is in ``stored`` or where
    deflate does not shrink it (as macOS stores it)."""
    return [b"\xff" + u if n in stored or len(d := zlib.compress(u, 9)) > len(u) else d
            for n, u in enumerate(units(data))]


def lzvn_blocks(data: bytes) -> list[bytes]:
    """Each unit as LZVN literals where that fits a block (at most a unit and its flag byte),
    else stored after 0x06, as macOS stores a unit compression does not shrink."""
    return [e if len(e := lzvn_literals(u)) <= UNIT + 1 else b"\x06" + u for u in units(data)]


def lzfse_blocks(data: bytes) -> list[bytes]:
    """Each unit compressed by the LZFSE reference encoder (the ``lzfse`` package), or stored
    after 0x06 where that does not shrink it."""
    import lzfse

    return [c if len(c := lzfse.compress(u)) <= UNIT else b"\x06" + u for u in units(data)]


def offset_fork(blocks: list[bytes]) -> bytes:
    """Types 8, 10, 12: a table of (count + 1) LE u32 offsets into the fork, then the blocks."""
    at = 4 * (len(blocks) + 1)
    offsets = []
    for block in blocks:
        offsets.append(at)
        at += len(block)
    offsets.append(at)
    return struct.pack(f"<{len(offsets)}I", *offsets) + b"".join(blocks)


# --- the volume ---------------------------------------------------------------------------

@dataclass
class Node:
    """A file or folder to write; ``parent`` is a folder's path ("" for the root)."""

    name: str
    data: bytes = b""
    rsrc: bytes = b""
    decmpfs: bytes | None = None  #: the ``com.apple.decmpfs`` attribute's value
    flags: int = 0  #: BSD owner flags (UF_COMPRESSED)
    folder: bool = False
    parent: str = ""
    xattrs: dict[str, bytes] = field(default_factory=dict)
    data_size: int | None = None  #: the data fork's logical size when it differs from data
    rsrc_size: int | None = None  #: the resource fork's logical size when it differs


def compressed(name: str, size: int, decmpfs: bytes, rsrc: bytes = b"", parent: str = "") -> Node:
    """A file macOS compressed: UF_COMPRESSED, an empty data fork, the record (and fork)."""
    del size  # the record carries it
    return Node(name, rsrc=rsrc, decmpfs=decmpfs, flags=UF_COMPRESSED, parent=parent)


def _name(text: str) -> bytes:
    # surrogatepass: HFS+ stores any 16-bit units, a lone surrogate half too (hostile names)
    encoded = text.encode("utf-16-be", "surrogatepass")
    return struct.pack(">H", len(encoded) // 2) + encoded


def _catalog_key(parent: int, name: str) -> bytes:
    body = struct.pack(">I", parent) + _name(name)
    return struct.pack(">H", len(body)) + body


def _fork(size: int, start: int, blocks: int) -> bytes:
    return struct.pack(">QII", size, 0, blocks) + struct.pack(">II", start, blocks) + bytes(56)


def _bsd(mode: int, flags: int) -> bytes:
    return struct.pack(">IIBBHI", 501, 20, 0, flags, mode, 1)


def _dates() -> bytes:
    return struct.pack(">5I", *[STAMP] * 5)


def _folder_record(cnid: int, valence: int) -> bytes:
    return (struct.pack(">hHII", 1, 0, valence, cnid) + _dates() + _bsd(0o40755, 0)
            + bytes(32) + bytes(8))


def _file_record(cnid: int, flags: int, owner_flags: int, data: bytes, rsrc: bytes) -> bytes:
    return (struct.pack(">hHII", 2, flags, 0, cnid) + _dates() + _bsd(0o100644, owner_flags)
            + bytes(32) + bytes(8) + data + rsrc)


def _thread(kind: int, parent: int, name: str) -> bytes:
    return struct.pack(">hhI", kind, 0, parent) + _name(name)


def _node(kind: int, height: int, records: list[bytes], size: int) -> bytes:
    """A B-tree node: descriptor, records, and their offsets from the node's end."""
    body, offsets = bytearray(struct.pack(">IIbBHH", 0, 0, kind, height, len(records), 0)), []
    for record in records:
        offsets.append(len(body))
        body += record
        if len(body) % 2:
            body += b"\0"
    offsets.append(len(body))
    if len(body) + 2 * len(offsets) > size:
        raise ValueError(f"B-tree node of {size} bytes cannot hold {len(records)} records")
    tail = b"".join(struct.pack(">H", o) for o in reversed(offsets))
    return bytes(body) + bytes(size - len(body) - len(tail)) + tail


def _btree(leaves: list[bytes], size: int, max_key: int, attributes: int) -> bytes:
    """A header node, then one leaf holding ``leaves`` (none: the header alone)."""
    nodes = 2 if leaves else 1
    header = struct.pack(">HIIIIHHIIHIBBI", 1 if leaves else 0, 1 if leaves else 0, len(leaves),
                         1 if leaves else 0, 1 if leaves else 0, size, max_key, nodes, 0, 0,
                         size, 0, 0, attributes) + bytes(64)
    bitmap = bytes([0xC0 if leaves else 0x80]) + bytes(size - 14 - 106 - 128 - 8 - 1)
    out = _node(1, 0, [header, bytes(128), bitmap], size)
    if leaves:
        out += _node(-1, 1, leaves, size)
    return out


def hfsplus_volume(nodes: list[Node], *, blocks: int = 4096, name: str = "Evidence") -> bytes:
    """The bytes of an HFS+ volume of ``blocks`` 4 KiB blocks holding ``nodes`` (folders
    before what they hold). CNIDs are given in order from 16."""
    cnids: dict[str, int] = {"": ROOT}
    children: dict[int, int] = {}
    order: list[tuple[Node, int, int]] = []  # node, cnid, parent cnid
    for number, node in enumerate(nodes):
        parent = cnids[node.parent]
        cnid = FIRST_CNID + number
        path = f"{node.parent}/{node.name}" if node.parent else node.name
        if node.folder:
            cnids[path] = cnid
        children[parent] = children.get(parent, 0) + 1
        order.append((node, cnid, parent))

    # fixed places: header block 0, bitmap 1, extents 2, catalog, attributes, then forks
    extents_at, catalog_at = 2, 3
    catalog_blocks = 2 * NODE // BLOCK
    attributes_at = catalog_at + catalog_blocks
    next_block = attributes_at + catalog_blocks
    image = bytearray(blocks * BLOCK)

    def place(data: bytes, logical: int | None = None) -> bytes:
        nonlocal next_block
        count = -(-len(data) // BLOCK)
        start = next_block if count else 0
        image[start * BLOCK:start * BLOCK + len(data)] = data
        next_block += count
        return _fork(len(data) if logical is None else logical, start, count)

    catalog: list[tuple[tuple[int, str], bytes]] = [
        ((1, name.casefold()), _catalog_key(1, name) + _folder_record(ROOT, children.get(ROOT, 0))),
        ((ROOT, ""), _catalog_key(ROOT, "") + _thread(3, 1, name)),
    ]
    attributes: list[tuple[tuple[int, str], bytes]] = []
    files = folders = 0
    for node, cnid, parent in order:
        key = _catalog_key(parent, node.name)
        if node.folder:
            folders += 1
            record = _folder_record(cnid, children.get(cnid, 0))
            thread = _thread(3, parent, node.name)
        else:
            files += 1
            xattrs = dict(node.xattrs)
            if node.decmpfs is not None:
                xattrs["com.apple.decmpfs"] = node.decmpfs
            flags = 0x0002 | (0x0004 if xattrs else 0)
            record = _file_record(cnid, flags, node.flags, place(node.data, node.data_size),
                                  place(node.rsrc, node.rsrc_size))
            thread = _thread(4, parent, node.name)
            for attr, value in xattrs.items():
                body = struct.pack(">HIIH", 0, cnid, 0, len(attr)) + attr.encode("utf-16-be")
                attributes.append(((cnid, attr), struct.pack(">H", len(body)) + body
                                   + struct.pack(">III", 0x10, 0, 0)
                                   + struct.pack(">I", len(value)) + value))
        catalog.append(((parent, node.name.casefold()), key + record))
        catalog.append(((cnid, ""), _catalog_key(cnid, "") + thread))
    if next_block > blocks - 1:
        raise ValueError("the volume is too small for its files")

    catalog_bytes = _btree([r for _, r in sorted(catalog)], NODE, 516, 6)
    attributes_bytes = _btree([r for _, r in sorted(attributes)], NODE, 266, 6)
    extents_bytes = _btree([], EXTENTS_NODE, 10, 2)
    image[extents_at * BLOCK:extents_at * BLOCK + len(extents_bytes)] = extents_bytes
    image[catalog_at * BLOCK:catalog_at * BLOCK + len(catalog_bytes)] = catalog_bytes
    image[attributes_at * BLOCK:attributes_at * BLOCK + len(attributes_bytes)] = attributes_bytes
    used = next_block
    bitmap = bytearray(BLOCK)
    for block in [*range(used), blocks - 1]:  # the last block holds the alternate header
        bitmap[block // 8] |= 0x80 >> (block % 8)
    image[BLOCK:2 * BLOCK] = bitmap

    header = (b"H+" + struct.pack(">HI", 4, 1 << 8) + b"10.0" + struct.pack(">I", 0)
              + struct.pack(">4I", STAMP, STAMP, 0, STAMP)
              + struct.pack(">IIIII", files, folders, BLOCK, blocks, blocks - used - 1)
              + struct.pack(">IIIII", used, BLOCK, BLOCK, FIRST_CNID + len(nodes), 1)
              + struct.pack(">Q", 1) + bytes(32)
              + _fork(BLOCK, 1, 1)
              + _fork(len(extents_bytes), extents_at, len(extents_bytes) // BLOCK)
              + _fork(len(catalog_bytes), catalog_at, catalog_blocks)
              + _fork(len(attributes_bytes), attributes_at, catalog_blocks)
              + _fork(0, 0, 0))
    assert len(header) == 512
    image[1024:1536] = header
    image[-1024:-512] = header
    return bytes(image)
