"""HFS+ transparent compression (decmpfs), read by us: what a compressed file holds, decoded
and checked, or why it cannot be.

macOS compresses most system files and many users' files: the catalog sets the BSD flag
``UF_COMPRESSED`` (0x20), the data fork stays empty, and the extended attribute
``com.apple.decmpfs`` holds a 16-byte header (``fpmc``, the type as LE u32, the uncompressed
size as LE u64) followed either by the data (inline types) or by nothing, the data then lying
in the resource fork as a block table and blocks of 64 KiB each when uncompressed. Types 3/4
are zlib, 7/8 LZVN, 9/10 uncompressed, 11/12 LZFSE, 13/14 LZBITMAP, 5 a dataless placeholder
(odd: inline, even: resource fork).

The Sleuth Kit loads the record and decodes types 3, 4, 7 and 8 itself, but a block that
decodes short or empty is skipped or zero-padded there, and the next block's bytes move up
into its place: a damaged file reads whole-looking and wrong. So the content is decoded here,
from the record and the resource fork TSK hands us, and every block must give exactly its
share (64 KiB, the last the remainder) and end where its stream ends; anything else is one
:class:`~bitwitness.errors.FileSystemError` naming the block. zlib is the standard library's;
LZVN is :func:`lzvn_decode`, our decoder of Apple's format; LZFSE (11/12), which TSK cannot
decode, is the reference implementation's (the ``lzfse`` package, which our UDIF reader uses
too), once its block headers have been walked and their declared sizes found to be exactly
what the record needs (:func:`~bitwitness.images.udif.lzfse_raw_size`). LZBITMAP,
uncompressed and dataless records, and unknown types, are decoded by neither us nor TSK:
:attr:`Decmpfs.refusal` says so, and the file system makes that a doubt, never an empty file
passed as complete.

Every size the record and the fork declare is checked before it is used: an inline record
cannot hold more than deflate's 1032:1 allows (:data:`MAX_RATIO`; LZFSE:
:data:`MAX_LZFSE_INLINE`), a block table must give one entry per 64 KiB of the declared size
and lie in the resource fork (which bounds the size by the fork), each block at most a unit
and its flag byte, and decoding stops at the expected length (a zlib bomb inflates no
further than 64 KiB + 1).
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from bitwitness.errors import FileSystemError

MAGIC = b"fpmc"
HEADER = 16
UNIT = 1 << 16  #: the uncompressed size of every block but the last
#: Most bytes one byte of inline data may decode to (deflate's limit is 1032:1, LZVN's ~135:1)
MAX_RATIO = 1100
#: Block-table entries read from the resource fork at a time (64 KiB of table)
_TABLE_WINDOW = 8192

#: decmpfs types: (method, where the data is)
TYPES: dict[int, tuple[str, str]] = {
    1: ("uncompressed", "inline"), 3: ("zlib", "inline"), 4: ("zlib", "resource fork"),
    5: ("dataless", "nowhere"), 7: ("LZVN", "inline"), 8: ("LZVN", "resource fork"),
    9: ("uncompressed", "inline"), 10: ("uncompressed", "resource fork"),
    11: ("LZFSE", "inline"), 12: ("LZFSE", "resource fork"),
    13: ("LZBITMAP", "inline"), 14: ("LZBITMAP", "resource fork"),
}
#: the types decoded here
DECODED = (3, 4, 7, 8, 11, 12)
#: The largest uncompressed size an inline LZFSE record may declare: LZFSE's ratio has no
#: useful bound (a long match costs a fraction of a bit), and its decoder's output is that big
MAX_LZFSE_INLINE = 64 << 20

ReadFork = Callable[[int, int], bytes]  #: (offset, size) -> bytes of the resource fork


@dataclass(frozen=True)
class Decmpfs:
    """A ``com.apple.decmpfs`` record: its type, declared size and inline data."""

    kind: int
    size: int  #: the uncompressed size the record declares
    inline: bytes  #: what follows the header (the data of an inline type)

    @property
    def method(self) -> str:
        return TYPES.get(self.kind, (f"unknown type {self.kind}", ""))[0]

    @property
    def in_fork(self) -> bool:
        return self.kind in TYPES and TYPES[self.kind][1] == "resource fork"

    @property
    def refusal(self) -> str | None:
        """Why the content is not read (None: it is decoded here)."""
        if self.kind in DECODED:
            return None
        if self.kind == 5:
            return ("it is a dataless placeholder (decmpfs type 5): its content is not on this "
                    "volume (it was evicted to the cloud)")
        if self.kind in TYPES and self.method == "uncompressed":
            return (f"its data is stored uncompressed in a decmpfs record of type {self.kind}, "
                    f"a layout BitWitness does not read: no byte of its {self.size:,} is read")
        what = (f"{self.method} (decmpfs type {self.kind})" if self.kind in TYPES
                else f"an unknown decmpfs compression type ({self.kind})")
        return (f"its data is compressed with {what}, which BitWitness cannot decode: no "
                f"byte of its {self.size:,} is read")

    def describe(self, fork_size: int | None) -> str:
        """For ``stat``: "zlib in the resource fork, 3 blocks, 200,000 bytes"."""
        if self.kind not in TYPES:
            return f"compressed: unknown decmpfs type {self.kind}, {self.size:,} bytes"
        if self.kind == 5:
            return f"compressed: dataless placeholder (type 5), {self.size:,} bytes"
        if self.in_fork:
            blocks = -(-self.size // UNIT)
            fork = f" ({fork_size:,} bytes)" if fork_size is not None else ""
            return (f"compressed: {self.method} in the resource fork{fork}, {blocks:,} "
                    f"block{'s' if blocks != 1 else ''}, {self.size:,} bytes (type {self.kind})")
        return (f"compressed: {self.method} inline in com.apple.decmpfs ({len(self.inline):,} "
                f"bytes), {self.size:,} bytes (type {self.kind})")


def parse(record: bytes) -> Decmpfs:
    """The record's header; raises :class:`FileSystemError` when it is not one."""
    if len(record) < HEADER or record[:4] != MAGIC:
        raise FileSystemError("its com.apple.decmpfs record is damaged (no 'fpmc' header)")
    kind, size = struct.unpack_from("<IQ", record, 4)
    return Decmpfs(kind, size, bytes(record[HEADER:]))


def content(record: Decmpfs, fork_size: int, read_fork: ReadFork, volume_size: int, *,
            block: int = 1 << 20, first: int = 0) -> Iterator[bytes]:
    """The uncompressed bytes of a record of a :data:`DECODED` type, in pieces of about
    ``block`` bytes, from unit ``first`` (64 KiB each) of a resource fork's data on (an
    inline record's whole data); raises :class:`FileSystemError` where they cannot be had
    exactly."""
    if record.kind not in DECODED:
        raise FileSystemError(record.refusal or "not decoded")
    if not record.in_fork:
        yield _inline(record)
        return
    _check_fork(fork_size, volume_size)
    pending = bytearray()
    decode = _DECODERS[record.kind]
    for number, (offset, length) in enumerate(_blocks(record, fork_size, read_fork)):
        if number < first:
            continue
        _check_block(number, offset, length, fork_size)
        raw = read_fork(offset, length)
        if len(raw) != length:
            raise FileSystemError(f"block {number} of its resource fork cannot be read whole")
        pending += decode(raw, min(UNIT, record.size - number * UNIT), f"block {number}")
        if len(pending) >= block:
            yield bytes(pending)
            pending.clear()
    if pending:
        yield bytes(pending)


def _check_fork(fork_size: int, volume_size: int) -> None:
    """Refuse a resource fork no volume of ``volume_size`` bytes holds (the block table,
    which must fit in the fork, bounds the declared size by it)."""
    if fork_size > volume_size:
        raise FileSystemError(f"its resource fork declares {fork_size:,} bytes, more than the "
                              f"volume holds ({volume_size:,})")


def _check_block(number: int, offset: int, length: int, fork_size: int) -> None:
    if not 0 < length <= UNIT + 1 or offset + length > fork_size:
        raise FileSystemError(f"block {number} of its resource fork is damaged ({length} "
                              f"bytes at {offset}, in a fork of {fork_size:,})")


def _inline(record: Decmpfs) -> bytes:
    data, size = record.inline, record.size
    if not data:
        raise FileSystemError("its com.apple.decmpfs record holds no data")
    if record.kind == 11 and size > MAX_LZFSE_INLINE:
        raise FileSystemError(f"its inline LZFSE record declares {size:,} bytes, more than "
                              f"{MAX_LZFSE_INLINE:,} (not decoded)")
    if record.kind != 11 and size > len(data) * MAX_RATIO + UNIT:
        raise FileSystemError(f"its decmpfs record declares {size:,} bytes, more than its "
                              f"{len(data):,} inline bytes can decode to")
    return _DECODERS[record.kind](data, size, "the inline data")


def _blocks(record: Decmpfs, fork_size: int, read: ReadFork) -> Iterator[tuple[int, int]]:
    """(offset in the fork, length) of each block, the table read a window at a time."""
    count = -(-record.size // UNIT)
    if record.kind == 4:  # resource header; at its data offset the length, then the table
        head = read(0, 16)
        if len(head) != 16:
            raise FileSystemError("its resource fork is too short for a resource header")
        data_offset = struct.unpack_from(">I", head)[0]
        base = data_offset + 4
        found = struct.unpack("<I", _exact(read, base, 4, "block count"))[0]
        if found != count or base + 4 + 8 * count > fork_size:
            raise FileSystemError(f"its block table lists {found:,} blocks where its size of "
                                  f"{record.size:,} bytes needs {count:,}")
        for first in range(0, count, _TABLE_WINDOW):
            n = min(_TABLE_WINDOW, count - first)
            entries = struct.unpack(f"<{2 * n}I", _exact(read, base + 4 + 8 * first, 8 * n,
                                                         "block table"))
            for at in range(n):
                yield base + entries[2 * at], entries[2 * at + 1]
        return
    first_offset = struct.unpack("<I", _exact(read, 0, 4, "block table"))[0]
    if first_offset != 4 * (count + 1) or first_offset > fork_size:
        raise FileSystemError(f"its block table lists {first_offset // 4 - 1:,} blocks where "
                              f"its size of {record.size:,} bytes needs {count:,}")
    previous = first_offset
    for first in range(0, count, _TABLE_WINDOW):
        n = min(_TABLE_WINDOW, count - first)
        ends = struct.unpack(f"<{n}I", _exact(read, 4 * (first + 1), 4 * n, "block table"))
        for end in ends:
            yield previous, end - previous
            previous = end


def _exact(read: ReadFork, offset: int, size: int, what: str) -> bytes:
    data = read(offset, size)
    if len(data) != size:
        raise FileSystemError(f"its resource fork is too short for its {what}")
    return data


def _inflate(raw: bytes, want: int, where: str) -> bytes:
    """A zlib block (or one stored after a byte whose low nibble is 0xF) of exactly ``want``
    bytes; never inflates more than ``want + 1``."""
    if raw[0] & 0x0F == 0x0F:
        return _stored(raw, want, where)
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(raw, want + 1)
    except zlib.error as exc:
        raise FileSystemError(f"{where} does not inflate: {exc}") from exc
    if len(out) != want or not inflater.eof:
        raise FileSystemError(f"{where} inflates to {'more than ' if len(out) > want else ''}"
                              f"{len(out):,} bytes{'' if inflater.eof else ' (unfinished)'}, "
                              f"not {want:,}")
    return out


def _unlzvn(raw: bytes, want: int, where: str) -> bytes:
    if raw[0] == 0x06:
        return _stored(raw, want, where)
    return lzvn_decode(raw, want, where)


def _unlzfse(raw: bytes, want: int, where: str) -> bytes:
    """An LZFSE block (or one stored after 0x06) of exactly ``want`` bytes: its block headers
    must declare exactly that before the reference decoder runs."""
    if raw[0] == 0x06:
        return _stored(raw, want, where)
    from bitwitness.images.udif import lzfse_raw_size

    try:
        declared = lzfse_raw_size(raw)
    except (ValueError, struct.error) as exc:
        raise FileSystemError(f"{where}: not an LZFSE stream ({exc})") from exc
    if declared != want:
        raise FileSystemError(f"{where}: the LZFSE stream declares {declared:,} bytes, not "
                              f"{want:,}")
    import lzfse

    try:
        out = bytes(lzfse.decompress(raw))
    except lzfse.error as exc:
        raise FileSystemError(f"{where}: LZFSE does not decode: {exc}") from exc
    if len(out) != want:
        raise FileSystemError(f"{where}: LZFSE gives {len(out):,} bytes, not {want:,}")
    return out


def _stored(raw: bytes, want: int, where: str) -> bytes:
    if len(raw) - 1 != want:
        raise FileSystemError(f"{where} is stored with {len(raw) - 1:,} bytes, not {want:,}")
    return raw[1:]


def lzvn_decode(src: bytes, want: int, where: str = "the stream") -> bytes:
    """Decode an LZVN stream that must give exactly ``want`` bytes and end with its
    end-of-stream opcode; a match reaching before the start, an undefined opcode, a stream
    cut short or output past ``want`` raise :class:`FileSystemError`.

    Each opcode copies L literal bytes that follow it, then M bytes from D bytes back (D
    kept from the last match where the opcode carries none); see :func:`_lzvn_opcode`.
    """
    out = bytearray()
    pos = distance = 0
    while (step := _lzvn_opcode(src, pos, distance, where)) is not None:
        pos, literals, match, distance = step
        if len(out) + literals + match > want:
            raise FileSystemError(f"{where}: LZVN gives more than {want:,} bytes")
        if literals:
            if pos + literals > len(src):
                raise FileSystemError(f"{where}: the LZVN stream is cut short")
            out += src[pos:pos + literals]
            pos += literals
        if match:
            if distance == 0 or distance > len(out):
                raise FileSystemError(f"{where}: an LZVN match reaches before the start of "
                                      f"the data (distance {distance} at {len(out)} bytes)")
            start = len(out) - distance
            if distance >= match:
                out += out[start:start + match]
            else:  # the copy overlaps what it writes: byte by byte
                for at in range(start, start + match):
                    out.append(out[at])
    if len(out) != want:
        raise FileSystemError(f"{where}: LZVN gives {len(out):,} bytes, not {want:,}")
    return bytes(out)


def _lzvn_opcode(src: bytes, pos: int, distance: int,
                 where: str) -> tuple[int, int, int, int] | None:
    """The opcode at ``pos``: (position after it, literals L, match length M, distance D),
    or None at the end-of-stream opcode (0x06).

    By the first byte: 0x0E/0x16 nop; 0xE0 + byte (L = byte + 16) / 0xE1-0xEF literals only;
    0xF0 + byte (M = byte + 16) / 0xF1-0xFF a match at the previous distance;
    ``101LLMMM DDDDDDMM DDDDDDDD`` medium distance; undefined: 0x1E-0x3E ending in 110,
    0x70-0x7F, 0xD0-0xDF; the rest ``LLMMMxxx`` (M = MMM + 3): ``xxx`` 110 the previous
    distance, 111 a 16-bit distance in the next two bytes, else ``xxx`` and the next byte an
    11-bit distance."""
    if pos >= len(src):
        raise FileSystemError(f"{where}: the LZVN stream is cut short")
    op = src[pos]
    if op == 0x06:
        return None
    if op in (0x0E, 0x16):
        return pos + 1, 0, 0, distance
    if 0x70 <= op < 0x80 or 0xD0 <= op < 0xE0 or ((op & 7) == 6 and op < 0x40):
        raise FileSystemError(f"{where}: undefined LZVN opcode {op:#04x} at byte {pos}")
    if op >= 0xE0:
        count = op & 0x0F or _lzvn_byte(src, pos + 1, where) + 16
        after = pos + (1 if op & 0x0F else 2)
        return (after, 0, count, distance) if op >= 0xF0 else (after, count, 0, distance)
    if 0xA0 <= op < 0xC0:
        word = _lzvn_byte(src, pos + 1, where) | _lzvn_byte(src, pos + 2, where) << 8
        return pos + 3, (op >> 3) & 3, ((op & 7) << 2 | (word & 3)) + 3, word >> 2
    literals, match, low = op >> 6, ((op >> 3) & 7) + 3, op & 7
    if low >= 6:  # 110: the previous distance; 111: a 16-bit one follows
        far = distance if low == 6 else (
            _lzvn_byte(src, pos + 1, where) | _lzvn_byte(src, pos + 2, where) << 8)
        return pos + (1 if low == 6 else 3), literals, match, far
    return pos + 2, literals, match, low << 8 | _lzvn_byte(src, pos + 1, where)


def _lzvn_byte(src: bytes, pos: int, where: str) -> int:
    if pos >= len(src):
        raise FileSystemError(f"{where}: the LZVN stream is cut short")
    return src[pos]


#: the decoder of each decoded type's data (inline, or one block of the resource fork)
_DECODERS: dict[int, Callable[[bytes, int, str], bytes]] = {
    3: _inflate, 4: _inflate, 7: _unlzvn, 8: _unlzvn, 11: _unlzfse, 12: _unlzfse}
