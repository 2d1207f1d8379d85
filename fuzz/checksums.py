"""A mutator's second half: put the checksums back, so that mutated inputs get past them.

E01 descriptors, tables, volume, hash, digest and error2 sections each carry an Adler-32, VHD
footers and dynamic headers a one's-complement sum, VHDX headers, region tables and log entries
a CRC-32C, an LVM2 label, metadata area header and text LVM's CRC-32,
Ex01 section descriptors, sector tables and hashes an Adler-32, a UDIF trailer its data fork's
CRC-32; a random mutation almost always breaks
them, and the parser then stops at the first check. These functions recompute every checksum
they can find after libFuzzer's mutation (:func:`fix`), so that the fuzzer explores what lies
behind them; a share of mutants is left unfixed, so that the checks themselves stay covered.
"""

from __future__ import annotations

import re
import struct
import zlib
from binascii import crc_hqx

from bitwitness.report.browse.lvm2 import MDA_MAGIC, lvm_crc

EVF_HEADER = 13
DESCRIPTOR = 76
#: Section bodies with a trailing Adler-32 over a fixed-size head: type -> bytes covered.
_FIXED_BODIES = {"volume": 1048, "disk": 1048, "data": 1048, "hash": 32, "digest": 76}
#: The SMART (EWF-S01) volume body: 94 bytes, its Adler-32 over the first 90.
_SMART_VOLUME = 94


def _adler(data: bytes | bytearray) -> bytes:
    return struct.pack("<I", zlib.adler32(data) & 0xFFFF_FFFF)


def fix_ewf(data: bytes) -> bytes:
    """Recompute the Adler-32 of every descriptor and body along the section chain."""
    out = bytearray(data)
    offset = EVF_HEADER
    for _ in range(4096):
        if offset + DESCRIPTOR > len(out):
            break
        out[offset + 72:offset + 76] = _adler(out[offset:offset + 72])
        kind = bytes(out[offset:offset + 16]).split(b"\0", 1)[0].decode("latin-1")
        next_offset, size = struct.unpack_from("<QQ", out, offset + 16)
        body = offset + DESCRIPTOR
        end = min(len(out), offset + size) if size >= DESCRIPTOR else len(out)
        _fix_body(out, kind, body, end)
        if next_offset <= offset or next_offset >= len(out):
            break
        offset = next_offset
    return bytes(out)


def _fix_body(out: bytearray, kind: str, body: int, end: int) -> None:
    length = end - body
    if kind == "volume" and length == _SMART_VOLUME:
        out[body + 90:body + 94] = _adler(out[body:body + 90])
    elif kind in _FIXED_BODIES and length >= _FIXED_BODIES[kind] + 4:
        covered = _FIXED_BODIES[kind]
        out[body + covered:body + covered + 4] = _adler(out[body:body + covered])
    elif kind in ("table", "table2") and length >= 24:
        out[body + 20:body + 24] = _adler(out[body:body + 20])
        count = struct.unpack_from("<I", out, body)[0]
        entries_end = body + 24 + 4 * count
        if entries_end + 4 <= end and not _chunk_follows(out, body, count, entries_end):
            out[entries_end:entries_end + 4] = _adler(out[body + 24:entries_end])
    elif kind == "error2" and length >= 520:
        out[body + 516:body + 520] = _adler(out[body:body + 516])
        count = struct.unpack_from("<I", out, body)[0]
        entries_end = body + 520 + 8 * count
        if entries_end + 4 <= end:
            out[entries_end:entries_end + 4] = _adler(out[body + 520:entries_end])


def _chunk_follows(out: bytearray, body: int, count: int, entries_end: int) -> bool:
    """A SMART table's first chunk starts right after its entries (no checksum there)."""
    if not count:
        return False
    base = struct.unpack_from("<Q", out, body + 8)[0]
    first = struct.unpack_from("<I", out, body + 24)[0] & 0x7FFF_FFFF
    return base + first == entries_end


def _vhd_sum(block: bytearray, at: int) -> bytes:
    total = sum(block) - sum(block[at:at + 4])
    return struct.pack(">I", ~total & 0xFFFF_FFFF)


def fix_vhd(data: bytes) -> bytes:
    """Recompute the footer checksum (both copies) and the dynamic header's."""
    out = bytearray(data)
    footers = []
    if len(out) >= 512 and out[-512:-504] == b"conectix":
        footers.append(len(out) - 512)
    if len(out) >= 512 and out[:8] == b"conectix" and 0 not in footers:
        footers.append(0)
    for at in footers:
        footer = out[at:at + 512]
        out[at + 64:at + 68] = _vhd_sum(footer, 64)
        dynamic = struct.unpack_from(">Q", out, at + 16)[0]
        if dynamic + 1024 <= len(out) and out[dynamic:dynamic + 8] == b"cxsparse":
            out[dynamic + 36:dynamic + 40] = _vhd_sum(out[dynamic:dynamic + 1024], 36)
    return bytes(out)


def fix_vhdx(data: bytes) -> bytes:
    """Recompute the CRC-32C of every log entry (``loge`` at a 4 KiB step of the log the
    current header names, over its entry length, wrapping at the log's end), then of both
    headers and both region tables (each where its signature is; the metadata and the BAT
    carry none)."""
    from bitwitness.images import vhdx

    out = bytearray(data)
    _fix_vhdx_log(out)
    for offsets, size, magic in ((vhdx.HEADER_OFFSETS, vhdx.HEADER_SIZE, b"head"),
                                 (vhdx.REGION_OFFSETS, vhdx.REGION_SIZE, b"regi")):
        for at in offsets:
            if len(out) >= at + size and out[at:at + 4] == magic:
                out[at + 4:at + 8] = bytes(4)
                out[at + 4:at + 8] = struct.pack("<I", vhdx.crc32c(bytes(out[at:at + size])))
    return bytes(out)


def _fix_vhdx_log(out: bytearray) -> None:
    from bitwitness.images import vhdx
    from bitwitness.images.crc32c import crc32c_update
    from bitwitness.images.vhdx_log import SECTOR

    heads = [at for at in vhdx.HEADER_OFFSETS
             if len(out) >= at + vhdx.HEADER_SIZE and out[at:at + 4] == b"head"]
    if not heads:
        return
    current = max(heads, key=lambda at: struct.unpack_from("<Q", out, at + 8)[0])
    length, offset = struct.unpack_from("<IQ", out, current + 68)
    if not length or length % SECTOR or offset + length > len(out):
        return
    for position in range(0, length, SECTOR):
        at = offset + position
        if out[at:at + 4] != b"loge":
            continue
        size = struct.unpack_from("<I", out, at + 8)[0]
        if not size or size % SECTOR or size > length:
            continue
        out[at + 4:at + 8] = bytes(4)
        crc = 0
        for piece in range(position, position + size, SECTOR):
            start = offset + piece % length
            crc = crc32c_update(crc, bytes(out[start:start + SECTOR]))
        out[at + 4:at + 8] = struct.pack("<I", crc)


def _fix_ewf2_segment(data: bytes) -> bytes:
    """Walk the section descriptors back from the end as the reader does, recomputing each
    descriptor's Adler-32, a sector table's header and entries Adler-32 and a hash section's."""
    out = bytearray(data)
    at = len(out) - 64
    for _ in range(4096):
        if at < 32:
            break
        out[at + 60:at + 64] = _adler(out[at:at + 60])
        kind, _flags, previous, size = struct.unpack_from("<IIQQ", out, at)
        start = at - size
        if 32 <= start <= at:
            _fix_ewf2_body(out, kind, start, at)
        if not previous or previous >= at:
            break
        at = previous
    return bytes(out)


def _fix_ewf2_body(out: bytearray, kind: int, start: int, end: int) -> None:
    if kind == 4 and end - start >= 32:  # sector table
        out[start + 16:start + 20] = _adler(out[start:start + 16])
        count = struct.unpack_from("<I", out, start + 8)[0]
        entries_end = start + 32 + 16 * count
        if entries_end + 4 <= end:
            out[entries_end:entries_end + 4] = _adler(out[start + 32:entries_end])
    elif kind in (8, 9):  # MD5, SHA-1 of the media
        n = 16 if kind == 8 else 20
        if end - start >= n + 4:
            out[start + n:start + n + 4] = _adler(out[start:start + n])


def fix_ewf2(data: bytes) -> bytes:
    """Every segment of the input (cut at the target's part marker) with its Adler-32s again."""
    from fuzz.targets import PART

    return PART.join(_fix_ewf2_segment(piece) for piece in data.split(PART))


def fix_udif(data: bytes) -> bytes:
    """Recompute the data fork CRC-32 the ``koly`` trailer records (the self-check verify
    runs), where the trailer names a fork inside the file."""
    if len(data) < 512 or data[-512:-508] != b"koly":
        return data
    out = bytearray(data)
    trailer = len(out) - 512
    offset, length = struct.unpack_from(">QQ", out, trailer + 24)
    if offset + length <= trailer:
        struct.pack_into(">III", out, trailer + 80, 2, 32,
                         zlib.crc32(out[offset:offset + length]))
    return bytes(out)


def fix_btrfs(data: bytes) -> bytes:
    """The crc32c of a btrfs superblock and of every tree node (a block whose fsid is the
    superblock's) in the pieces of a btrfs input (see ``fuzz.targets.PiecesStream``)."""
    from bitwitness.images.crc32c import crc32c
    from fuzz.targets import PART

    parts = data.split(PART)
    places = [0] + [int.from_bytes(p[:4].ljust(4, b"\0"), "little") * 512 for p in parts[1:]]
    bodies = [bytearray(parts[0])] + [bytearray(p[4:]) for p in parts[1:]]
    found = next(((b, 0x10000 - at) for at, b in zip(places, bodies, strict=True)
                  if at <= 0x10000 and 0x10000 - at + 4096 <= len(b)), None)
    if found is None:
        return data
    body, sb = found
    fsid, nodesize = bytes(body[sb + 0x20:sb + 0x30]), struct.unpack_from("<I", body, sb + 0x94)[0]
    if nodesize not in (4096, 8192, 16384, 32768, 65536):
        return data
    for at, piece in zip(places, bodies, strict=True):
        for start in range((-at) % 4096, len(piece) - nodesize + 1, 4096):
            if piece[start + 0x20:start + 0x30] == fsid and at + start != 0x10000:
                crc = crc32c(bytes(piece[start + 0x20:start + nodesize]))
                piece[start:start + 4] = struct.pack("<I", crc)
    body[sb:sb + 4] = struct.pack("<I", crc32c(bytes(body[sb + 0x20:sb + 4096])))
    out = [bytes(bodies[0])] + [p[:4] + bytes(b) for p, b in zip(parts[1:], bodies[1:],
                                                                 strict=True)]
    return PART.join(out)


#: what starts a UDF descriptor tag (ECMA-167 3/7.2): identifier 1-9 or 256-266, version 2 or 3
_UDF_TAG = re.compile(rb"(?:[\x01-\x09]\x00|[\x00-\x0a]\x01)[\x02\x03]\x00")


def fix_udf(data: bytes) -> bytes:
    """UDF descriptor tags (ECMA-167 3/7.2) put right after a mutation, wherever they lie (File
    Identifiers are not block-aligned), last first, so that a tag inside another descriptor's
    CRC range (a folder's identifiers embedded in its File Entry) is fixed before the one that
    covers it. A tag whose checksum still holds gets its CRC recomputed (the mutation hit its
    body); one whose CRC still holds gets its checksum recomputed (the mutation hit its tag);
    bytes where neither holds are no tag and are left alone, so other file systems of the
    ``filesystem`` target, and fields inside descriptors that look like a tag, stay as they are.
    """
    out = bytearray(data)
    for match in reversed(list(_UDF_TAG.finditer(data))):
        at = match.start()
        if at + 16 > len(out) or out[at + 5] != 0:
            continue
        length = int.from_bytes(out[at + 10:at + 12], "little")
        # the shortest descriptor's CRC length is 20; a CRC over zeros is zero, and a zero
        # CRC over zeros holds by itself: such bytes are no evidence of a tag
        if length < 8 or at + 16 + length > len(out) or not any(out[at + 16:at + 16 + length]):
            continue
        crc = crc_hqx(bytes(out[at + 16:at + 16 + length]), 0).to_bytes(2, "little")
        checksum = (sum(out[at:at + 4]) + sum(out[at + 5:at + 16])) & 0xFF
        if checksum == out[at + 4] and crc != out[at + 8:at + 10]:
            out[at + 8:at + 10] = crc
            out[at + 4] = (sum(out[at:at + 4]) + sum(out[at + 5:at + 16])) & 0xFF
        elif checksum != out[at + 4] and crc == out[at + 8:at + 10]:
            out[at + 4] = checksum
    return bytes(out)


def fix_lvm2(data: bytes) -> bytes:
    """An LVM2 physical volume's label (sector 0-3), its first metadata area header and the
    committed text that header points at (partition tables' target: a PV is one of the
    volumes the tree reads)."""
    out = bytearray(data)
    for at in range(0, min(len(out), 2048), 512):
        if out[at:at + 8] != b"LABELONE" or len(out) < at + 512:
            continue
        offset = struct.unpack_from("<I", out, at + 20)[0]
        areas = at + offset + 40
        while areas + 16 <= at + 512 and struct.unpack_from("<Q", out, areas)[0]:
            areas += 16  # the data areas, then their terminator
        areas += 16
        if areas + 16 <= at + 512:
            _fix_lvm_area(out, struct.unpack_from("<Q", out, areas)[0])
        struct.pack_into("<I", out, at + 16, lvm_crc(out[at + 20:at + 512]))
    return bytes(out)


def _fix_lvm_area(out: bytearray, mda: int) -> None:
    """The metadata area header at byte ``mda`` and the text it points at."""
    if not (mda > 0 and mda + 512 <= len(out) and out[mda + 4:mda + 20] == MDA_MAGIC):
        return
    text_at, size = struct.unpack_from("<QQ", out, mda + 40)
    if 0 < size <= len(out) and mda + text_at + size <= len(out):
        struct.pack_into("<I", out, mda + 56, lvm_crc(out[mda + text_at:mda + text_at + size]))
    struct.pack_into("<I", out, mda, lvm_crc(out[mda + 4:mda + 512]))


FIXERS = {"ewf": fix_ewf, "vhd": fix_vhd, "vhdx": fix_vhdx, "ewf2": fix_ewf2, "udif": fix_udif,
          "btrfs": fix_btrfs, "filesystem": fix_udf, "partitions": fix_lvm2}


def fix(target: str, data: bytes) -> bytes:
    """``data`` with its checksums recomputed, for the targets that have any."""
    fixer = FIXERS.get(target)
    return data if fixer is None else fixer(data)
