"""LZO1X decompression and btrfs's LZO framing, in our own code: no LZO decoder is a dependency,
and btrfs volumes mounted ``-o compress=lzo`` keep files this way.

Written from the LZO1X stream description in the Linux kernel's documentation
(``Documentation/staging/lzo.rst``) and btrfs's framing (the kernel's btrfs documentation): a
4-byte little-endian total length, then segments, each a 4-byte length and an LZO1X stream of
at most one sector of output; a segment's length never straddles a sector boundary (fewer than
4 bytes left in a sector are padding). Hostile input fails closed: output is capped at what the
extent says it holds, every back-reference must point inside what is already decoded, and a
stream that runs out is an error, never guessed bytes.
"""

from __future__ import annotations


class LzoError(ValueError):
    """The data is not a valid btrfs LZO extent."""


def _extended(src: bytes, at: int, base: int) -> tuple[int, int]:
    """A length whose bits were all zero: zero bytes add 255 each, then a non-zero byte."""
    zeros = 0
    while True:
        if at >= len(src):
            raise LzoError("the stream ends inside a length")
        if src[at]:
            return base + zeros * 255 + src[at], at + 1
        zeros += 1
        at += 1


def lzo1x(src: bytes, limit: int) -> bytes:
    """One LZO1X stream, at most ``limit`` bytes of output."""
    out = bytearray()
    at = 0
    state = 0  # 0: a literal run may follow; 1-3: that many literals just copied; 4: more
    if src and src[0] > 17:
        count = src[0] - 17
        out += _take(src, 1, count)
        at = 1 + count
        state = 4 if count >= 4 else count
    while True:
        t = _byte(src, at)
        at += 1
        if t < 16 and state == 0:
            length = 3 + t
            if t == 0:
                length, at = _extended(src, at, 18)
            out += _take(src, at, length)
            at += length
            state = 4
            _check(out, limit)
            continue
        match = _match(src, at, t, state)
        if match is None:
            return bytes(out)
        length, distance, trail, at = match
        if distance > len(out):
            raise LzoError("a back-reference points before the start")
        start = len(out) - distance
        for n in range(length):  # byte by byte: a match may overlap what it writes
            out.append(out[start + n])
        out += _take(src, at, trail)
        at += trail
        state = trail
        _check(out, limit)


def _match(src: bytes, at: int, t: int, state: int) -> tuple[int, int, int, int] | None:
    """(length, distance, literals after, next position) of the match instruction ``t``;
    None for the end marker."""
    if t < 16:
        h = _byte(src, at)
        return (2 if state < 4 else 3, (h << 2) + (t >> 2) + (1 if state < 4 else 2049),
                t & 3, at + 1)
    if t >= 64:
        h = _byte(src, at)
        length = 3 + ((t >> 5) & 1) if t < 128 else 5 + ((t >> 5) & 3)
        return length, (h << 3) + ((t >> 2) & 7) + 1, t & 3, at + 1
    bits = 7 if t < 32 else 31
    length = 2 + (t & bits)
    if t & bits == 0:
        length, at = _extended(src, at, 2 + bits)
    le = _le16(src, at)
    if t < 32:
        distance = 16384 + ((t & 8) << 11) + (le >> 2)
        if distance == 16384:
            return None
    else:
        distance = (le >> 2) + 1
    return length, distance, le & 3, at + 2


def _take(src: bytes, at: int, count: int) -> bytes:
    if at + count > len(src):
        raise LzoError("the stream ends inside a literal run")
    return src[at:at + count]


def _byte(src: bytes, at: int) -> int:
    if at >= len(src):
        raise LzoError("the stream ends inside an instruction")
    return src[at]


def _le16(src: bytes, at: int) -> int:
    if at + 2 > len(src):
        raise LzoError("the stream ends inside an instruction")
    return src[at] | src[at + 1] << 8


def _check(out: bytearray, limit: int) -> None:
    if len(out) > limit:
        raise LzoError(f"a segment decodes to more than {limit} bytes")


def btrfs_lzo(data: bytes, ram_bytes: int, sectorsize: int) -> bytes:
    """A btrfs LZO extent: its segments decoded one after the other, ``ram_bytes`` at most."""
    if len(data) < 4:
        raise LzoError("shorter than its header")
    total = int.from_bytes(data[:4], "little")
    if total > len(data) or total < 4:
        raise LzoError(f"claims {total} bytes, holds {len(data)}")
    out = bytearray()
    at = 4
    while at < total and len(out) < ram_bytes:
        left = sectorsize - at % sectorsize
        if left < 4:
            at += left  # a segment's length never straddles a sector
            continue
        if at + 4 > total:
            raise LzoError("ends inside a segment's length")
        size = int.from_bytes(data[at:at + 4], "little")
        at += 4
        if size == 0 or at + size > total:
            raise LzoError(f"a segment of {size} bytes runs past the extent")
        out += lzo1x(data[at:at + size], sectorsize)
        at += size
    return bytes(out[:ram_bytes])
