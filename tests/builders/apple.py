"""Apple disk images built from their public description (no macOS tool runs here).

* UDIF ``.dmg``: the data fork (chunks stored raw, zlib, bzip2, ADC, LZFSE, or as zero runs), an
  XML property list whose ``resource-fork/blkx`` entries hold base64 ``mish`` block tables, and
  the 512-byte big-endian ``koly`` trailer that points at both and records the data fork's
  CRC-32 (checksum type 2, 32 bits, in the first word of the 128-byte checksum field).
* ``.sparseimage``: a 4096-byte big-endian header (``sprs``, version 3, sectors per band, the
  media size in sectors, then at offset 64 one 32-bit entry per stored band giving which media
  band it holds, counting from 1) followed by the stored bands.
* ``.sparsebundle``: a folder with ``Info.plist`` (band size, media size), ``token`` and
  ``bands/`` holding one file per written band named by its index in lower-case hexadecimal.

Each builder takes the media bytes and returns the path written; the tests read the result with
BitWitness and, for UDIF, with QEMU's own dmg driver.
"""

from __future__ import annotations

import base64
import bz2
import lzma
import struct
import zlib
from pathlib import Path

SECTOR = 512
RAW, ZERO, ZLIB, BZIP2, END = 0x00000001, 0x00000002, 0x80000005, 0x80000006, 0xFFFFFFFF
ADC, LZFSE, LZMA = 0x80000004, 0x80000007, 0x80000008
_KOLY = struct.Struct(">4sIIIQQQQQII16sII128sQQ120xII128sIQ12x")
_MISH = struct.Struct(">4sIQQQII24xII128sI")
_CHUNK = struct.Struct(">IIQQQQ")


def _plist(blocks: list[bytes]) -> bytes:
    entries = "".join(
        "<dict><key>Attributes</key><string>0x0050</string>"
        f"<key>CFName</key><string>disk image (Apple_HFS : {i})</string>"
        f"<key>Data</key><data>{base64.b64encode(b).decode()}</data>"
        f"<key>ID</key><string>{i}</string>"
        f"<key>Name</key><string>disk image (Apple_HFS : {i})</string></dict>"
        for i, b in enumerate(blocks))
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            '<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" '
            '"http://www.apple.com/DTDs/PropertyList-1.0.dtd">\n'
            '<plist version="1.0"><dict><key>resource-fork</key><dict><key>blkx</key>'
            f"<array>{entries}</array></dict></dict></plist>\n").encode()


def adc_compress(data: bytes) -> bytes:
    """Apple Data Compression, as its description gives it: a byte with the top bit set starts
    a literal run of (its low 7 bits + 1) bytes; one with bit 6 set is a three-byte copy of
    (low 6 bits + 4) bytes from (the next two bytes, big-endian, + 1) bytes back. This encoder
    writes runs of a repeated byte as copies from one byte back and everything else as
    literals (valid ADC; not Apple's compressor)."""
    out = bytearray()
    literal = bytearray()

    def flush() -> None:
        for start in range(0, len(literal), 128):
            piece = literal[start:start + 128]
            out.append(0x80 | (len(piece) - 1))
            out.extend(piece)
        literal.clear()

    i = 0
    while i < len(data):
        run = 0
        if i > 0:
            while i + run < len(data) and run < 67 and data[i + run] == data[i - 1]:
                run += 1
        if run >= 4:
            flush()
            out.extend((0x40 | (run - 4), 0, 0))
            i += run
        else:
            literal.append(data[i])
            i += 1
    flush()
    return bytes(out)


def _lzfse(data: bytes) -> bytes:
    import lzfse  # the reference LZFSE implementation's binding (test extra)

    return bytes(lzfse.compress(data))


def build_udif(path: Path, media: bytes, compression: int = ZLIB, chunk_sectors: int = 64) -> Path:
    """A UDIF image of ``media`` (a multiple of 512 bytes): one block table whose chunks alternate
    between ``compression`` (ZLIB, BZIP2, ADC, LZFSE or LZMA (an xz stream), one kind per image
    as Apple's tools write) and raw storage, all-zero chunks stored as zero runs."""
    assert len(media) % SECTOR == 0
    sectors = len(media) // SECTOR
    fork = bytearray()
    chunks = []
    kinds = (compression, RAW)
    for n, first in enumerate(range(0, sectors, chunk_sectors)):
        count = min(chunk_sectors, sectors - first)
        data = media[first * SECTOR:(first + count) * SECTOR]
        kind = ZERO if not any(data) else kinds[n % len(kinds)]
        encode = {RAW: bytes, ZLIB: zlib.compress, BZIP2: bz2.compress, ADC: adc_compress,
                  LZFSE: _lzfse, LZMA: lzma.compress, ZERO: lambda _: b""}[kind]
        stored = encode(data)
        chunks.append(_CHUNK.pack(kind, 0, first, count, len(fork), len(stored)))
        fork += stored
    chunks.append(_CHUNK.pack(END, 0, sectors, 0, len(fork), 0))
    checksum = struct.pack(">I", zlib.crc32(media)).ljust(128, b"\0")  # of the media, CRC-32
    mish = _MISH.pack(b"mish", 1, 0, sectors, 0, 0x208, 0, 2, 32, checksum,
                      len(chunks)) + b"".join(chunks)
    xml = _plist([mish])
    fork_crc = struct.pack(">I", zlib.crc32(fork)).ljust(128, b"\0")
    koly = _KOLY.pack(b"koly", 4, 512, 1, 0, 0, len(fork), 0, 0, 1, 1, bytes(range(16)),
                      2, 32, fork_crc, len(fork), len(xml), 0, 0, bytes(128), 1, sectors)
    assert len(koly) == 512
    path.write_bytes(bytes(fork) + xml + koly)
    return path


def build_sparseimage(path: Path, media: bytes, band_sectors: int = 256) -> Path:
    """A sparse image of ``media``: all-zero bands are left out, the others stored in reverse
    order, so that the band table (not the file order) places them."""
    band = band_sectors * SECTOR
    assert len(media) % SECTOR == 0
    bands = [i for i in range(-(-len(media) // band)) if any(media[i * band:(i + 1) * band])]
    stored = list(reversed(bands))
    header = struct.pack(">4sIIII", b"sprs", 3, band_sectors, 1, len(media) // SECTOR)
    header = header.ljust(64, b"\0") + b"".join(struct.pack(">I", i + 1) for i in stored)
    assert len(header) <= 4096
    body = b"".join(media[i * band:(i + 1) * band].ljust(band, b"\0") for i in stored)
    path.write_bytes(header.ljust(4096, b"\0") + body)
    return path


def build_sparsebundle(folder: Path, media: bytes, band_size: int = 128 * 1024) -> Path:
    """A sparse bundle of ``media``; all-zero bands have no file, the last band is short."""
    (folder / "bands").mkdir(parents=True)
    plist = ('<?xml version="1.0" encoding="UTF-8"?>\n'
             '<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" '
             '"http://www.apple.com/DTDs/PropertyList-1.0.dtd">\n<plist version="1.0"><dict>'
             "<key>CFBundleInfoDictionaryVersion</key><string>6.0</string>"
             f"<key>band-size</key><integer>{band_size}</integer>"
             "<key>bundle-backingstore-version</key><integer>1</integer>"
             "<key>diskimage-bundle-type</key>"
             "<string>com.apple.diskimage.sparsebundle</string>"
             f"<key>size</key><integer>{len(media)}</integer></dict></plist>\n")
    (folder / "Info.plist").write_text(plist)
    (folder / "Info.bckup").write_text(plist)
    (folder / "token").write_bytes(b"")
    for i in range(-(-len(media) // band_size)):
        data = media[i * band_size:(i + 1) * band_size]
        if any(data):
            (folder / "bands" / f"{i:x}").write_bytes(data)
    return folder
