"""A mutator's second half: put the checksums back, so that mutated inputs get past them.

E01 descriptors, tables, volume, hash, digest and error2 sections each carry an Adler-32 and VHD
footers and dynamic headers a one's-complement sum; a random mutation almost always breaks
them, and the parser then stops at the first check. These functions recompute every checksum
they can find after libFuzzer's mutation (:func:`fix`), so that the fuzzer explores what lies
behind them; a share of mutants is left unfixed, so that the checks themselves stay covered.
"""

from __future__ import annotations

import struct
import zlib

EVF_HEADER = 13
DESCRIPTOR = 76
#: Section bodies with a trailing Adler-32 over a fixed-size head: type -> bytes covered.
_FIXED_BODIES = {"volume": 1048, "disk": 1048, "data": 1048, "hash": 32, "digest": 76}


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
    if kind in _FIXED_BODIES and length >= _FIXED_BODIES[kind] + 4:
        covered = _FIXED_BODIES[kind]
        out[body + covered:body + covered + 4] = _adler(out[body:body + covered])
    elif kind in ("table", "table2") and length >= 24:
        out[body + 20:body + 24] = _adler(out[body:body + 20])
        count = struct.unpack_from("<I", out, body)[0]
        entries_end = body + 24 + 4 * count
        if entries_end + 4 <= end:
            out[entries_end:entries_end + 4] = _adler(out[body + 24:entries_end])
    elif kind == "error2" and length >= 520:
        out[body + 516:body + 520] = _adler(out[body:body + 516])
        count = struct.unpack_from("<I", out, body)[0]
        entries_end = body + 520 + 8 * count
        if entries_end + 4 <= end:
            out[entries_end:entries_end + 4] = _adler(out[body + 520:entries_end])


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


FIXERS = {"ewf": fix_ewf, "vhd": fix_vhd}


def fix(target: str, data: bytes) -> bytes:
    """``data`` with its checksums recomputed, for the targets that have any."""
    fixer = FIXERS.get(target)
    return data if fixer is None else fixer(data)
