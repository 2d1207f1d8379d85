"""An EnCase 7 Ex01 (EWF version 2) image, built from the format's public description: no tool on
this machine writes one (``ewfacquire -f encase7-v2`` of libewf-tools 20140813 prints "Unsupported
EWF format defaulting to: encase6" and writes an E01; libewf-python opens no file for writing).

Layout (little-endian): a 32-byte file header (``EVF2\\r\\n\\x81\\x00``, version 2.1, the
compression method: 1 zlib, the segment number, the set's GUID), then sections, each its data
padded to 16 bytes and followed by a 64-byte descriptor (type, flags, the file offset of the
previous section's descriptor, data size with padding, descriptor size, padding size, an MD5 of the
data when flag 1 is set, and an Adler-32 of the descriptor's first 60 bytes). The sections, in
order: device information and case data (UTF-16LE object strings with a byte-order mark,
compressed: object count, "main", a line of tags, a line of values), sector data (each chunk
16-byte aligned, zlib-compressed, or stored with an Adler-32 after it), the sector table (a 20-byte
header: first chunk, entry count, Adler-32; 16-byte entries: file offset, stored size, flags 1
compressed / 2 checksummed; an Adler-32 of the entries), the MD5 and SHA-1 of the media (each
followed by its Adler-32), and ``done``.
"""

from __future__ import annotations

import hashlib
import struct
import uuid
import zlib
from pathlib import Path

SECTOR = 512
DEVICE_INFORMATION, CASE_DATA, SECTOR_DATA, SECTOR_TABLE = 1, 2, 3, 4
MD5_HASH, SHA1_HASH, NEXT, DONE = 8, 9, 13, 15
COMPRESSED, CHECKSUMMED = 1, 2


def _adler(data: bytes) -> bytes:
    return struct.pack("<I", zlib.adler32(data))


def _object(tags: list[str], values: list[str]) -> bytes:
    text = "1\nmain\n" + "\t".join(tags) + "\n" + "\t".join(values) + "\n\n"
    return zlib.compress(b"\xff\xfe" + text.encode("utf-16-le"))


def _pad(data: bytes, to: int = 16) -> bytes:
    return data + bytes(-len(data) % to)


def build_ex01(path: Path, media: bytes, *, chunk_sectors: int = 64, case_number: str = "",
               examiner: str = "", description: str = "", stored_md5: str | None = None,
               acquired: int = 1_700_000_000, segments: int = 1) -> Path:
    """Write ``path`` (``NAME.Ex01``, and ``NAME.Ex02``... for ``segments`` > 1) holding
    ``media`` (whole sectors): chunks alternate between zlib-compressed and stored with their
    Adler-32; all-zero chunks are compressed, chunks that do not shrink are stored. Every
    segment carries the device information and case data, its share of the chunks and their
    table, and ends in ``next``; the last holds the hashes and ends in ``done``. ``stored_md5``
    records another MD5 than the media's (to test that a mismatch is found)."""
    assert len(media) % SECTOR == 0
    chunk = chunk_sectors * SECTOR
    chunks = -(-len(media) // chunk)
    sectors = len(media) // SECTOR
    guid = uuid.uuid4().bytes_le
    per_segment = -(-chunks // segments)
    for number in range(1, segments + 1):
        out = bytearray(b"EVF2\r\n\x81\x00" + bytes([2, 1]) + struct.pack("<HI", 1, number)
                        + guid)
        previous = 0

        def section(kind: int, data: bytes, out: bytearray = out) -> None:
            nonlocal previous
            body = _pad(data)
            start = len(out)
            out.extend(body)
            descriptor = struct.pack("<IIQQII", kind, 0, previous, len(body), 64,
                                     len(body) - len(data)) + bytes(16 + 12)
            out.extend(descriptor + _adler(descriptor))
            previous = start + len(body)  # the previous section's descriptor

        section(DEVICE_INFORMATION, _object(
            ["sn", "md", "lb", "ts", "hs", "dc", "dt", "pid", "rs", "ls", "bp", "ph"],
            ["SN-0001", "BitWitness test disk", "", str(sectors), "0", "0", "f", "", "", "",
             str(SECTOR), "1"]))
        section(CASE_DATA, _object(
            ["nm", "cn", "en", "ex", "nt", "av", "os", "tt", "at", "tb", "cp", "sb", "gr", "wb"],
            [description, case_number, "1", examiner, "", "7.10", "Linux", str(acquired),
             str(acquired), str(chunks), "1", str(chunk_sectors), "64", ""]))
        first = (number - 1) * per_segment
        mine = range(first, min(chunks, first + per_segment))
        data_start = len(out)
        stored = bytearray()
        entries = bytearray()
        for n in mine:
            piece = media[n * chunk:(n + 1) * chunk]
            body, flags = zlib.compress(piece), COMPRESSED
            # EnCase stores a chunk that does not shrink. libewf (20260924) refused a 32,786-byte
            # compressed 32 KiB chunk ("chunk data size value out of bounds"; 32,784 passes):
            # zlib writes that size for about 1 random chunk in 1,500.
            if (n % 2 and any(piece)) or len(body) >= len(piece):
                body, flags = piece + _adler(piece), CHECKSUMMED
            entries += struct.pack("<QII", data_start + len(stored), len(body), flags)
            stored += _pad(body)
        section(SECTOR_DATA, bytes(stored))
        header = struct.pack("<QII", first, len(mine), 0)
        section(SECTOR_TABLE, _pad(header + _adler(header))
                + _pad(bytes(entries) + _adler(bytes(entries))))
        if number == segments:
            md5 = (bytes.fromhex(stored_md5) if stored_md5
                   else hashlib.md5(media, usedforsecurity=False).digest())
            section(MD5_HASH, md5 + _adler(md5))
            sha1 = hashlib.sha1(media, usedforsecurity=False).digest()
            section(SHA1_HASH, sha1 + _adler(sha1))
        section(DONE if number == segments else NEXT, b"")
        name = path if number == 1 else path.with_suffix(f".Ex{number:02d}")
        name.write_bytes(bytes(out))
    return path
