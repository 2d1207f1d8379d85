"""BitLocker decryption with a known Full Volume Encryption Key, our own (libbde takes passwords,
recovery passwords and startup keys; its binding cannot be handed an FVEK's raw bytes).

An analyst may hold the FVEK itself (recovered from memory, or exported by another tool). What is
read, as libyal's format documentation describes it: the Windows 7-and-later volume header (byte 3
``-FVE-FS-``, the offsets of the three FVE metadata blocks at bytes 176-200); the first metadata
block (block header version 2: the offset of the encrypted copy of the volume's first sectors and
how many; metadata header: the encryption method); the metadata entries, for the "volume header
block" entry (type 0x000f) where Windows 8 and later keep that offset and size. Sectors are
decrypted with AES-XTS (tweak = sector number) or AES-CBC (IV = the byte offset encrypted with the
FVEK); the Elephant diffuser of Vista-era volumes is not read. The first sectors are read from their
encrypted copy, and the metadata blocks and that copy read as zeros, as libbde shows them.

Hostile metadata fails closed: every offset and size is checked against the volume first.
"""

from __future__ import annotations

import struct
import threading
from dataclasses import dataclass

from bitwitness.errors import FormatError, InputError
from bitwitness.stream import ImageStream, StreamInfo

SIGNATURE = b"-FVE-FS-"
_WINDOWS7_ENTRY = b"\xeb\x58\x90"
METADATA_BLOCK = 64 << 10  #: what each FVE metadata block occupies (read as zeros)
MAX_METADATA = 64 << 10
SECTOR = 512
#: encryption method -> (name, key bytes)
METHODS = {0x8002: ("AES-CBC 128", 16), 0x8003: ("AES-CBC 256", 32),
           0x8004: ("AES-XTS 128", 32), 0x8005: ("AES-XTS 256", 64)}
_DIFFUSER = (0x8000, 0x8001)
_HEADER_BLOCK_ENTRY = 0x000F


@dataclass(frozen=True)
class Layout:
    """Where things are in a BitLocker volume (byte offsets from its start)."""

    method: int
    metadata: tuple[int, int, int]
    header_copy: int  #: the encrypted copy of the first sectors
    header_size: int  #: bytes


def read_layout(stream: ImageStream, what: str) -> Layout:
    offsets = _metadata_offsets(stream, what)
    block = stream.pread(offsets[0], 64 + MAX_METADATA)
    if block[:8] != SIGNATURE or len(block) < 112:
        raise FormatError(f"{what}: no FVE metadata block at byte {offsets[0]}")
    version = struct.unpack_from("<H", block, 10)[0]
    if version != 2:
        raise FormatError(f"{what}: FVE metadata block version {version} is not read")
    header_sectors = struct.unpack_from("<I", block, 28)[0]
    header_copy = struct.unpack_from("<Q", block, 56)[0]
    size, _version, header_size = struct.unpack_from("<III", block, 64)
    method = struct.unpack_from("<I", block, 64 + 36)[0]
    if header_size != 48 or not 48 <= size <= MAX_METADATA or 64 + size > len(block):
        raise FormatError(f"{what}: FVE metadata header is malformed")
    copy_size = header_sectors * SECTOR
    found = _header_block(block[64 + 48 : 64 + size], what)
    if found is not None:
        header_copy, copy_size = found
    _check_method(method, what)
    if (copy_size % SECTOR or not 0 < copy_size <= 1 << 20
            or not 0 < header_copy <= stream.size - copy_size):
        raise FormatError(f"{what}: the volume header copy lies outside the volume")
    return Layout(method, offsets, header_copy, copy_size)


def _metadata_offsets(stream: ImageStream, what: str) -> tuple[int, int, int]:
    head = stream.pread(0, SECTOR)
    if head[3:11] != SIGNATURE:
        raise FormatError(f"{what}: not a BitLocker volume")
    if head[:3] != _WINDOWS7_ENTRY:
        raise FormatError(f"{what}: a BitLocker volume of Windows Vista or BitLocker To Go; "
                          "its FVEK is not read (give a password or recovery password)")
    first, second, third = struct.unpack_from("<3Q", head, 176)
    for offset in (first, second, third):
        if not 0 < offset <= stream.size - 64 - 48:
            raise FormatError(f"{what}: FVE metadata offset {offset} lies outside the volume")
    return first, second, third


def _header_block(entries: bytes, what: str) -> tuple[int, int] | None:
    """(offset, size) from the "volume header block" entry, if the metadata has one."""
    at = 0
    found = None
    while at + 8 <= len(entries):
        entry_size, entry_type = struct.unpack_from("<HH", entries, at)
        if entry_size < 8 or at + entry_size > len(entries):
            raise FormatError(f"{what}: FVE metadata entry at {48 + at} is malformed")
        if entry_type == _HEADER_BLOCK_ENTRY and entry_size >= 24:
            found = struct.unpack_from("<QQ", entries, at + 8)
        at += entry_size
    return (found[0], found[1]) if found is not None else None


def _check_method(method: int, what: str) -> None:
    if method in _DIFFUSER:
        raise FormatError(f"{what}: AES-CBC with the Elephant diffuser is not read with an "
                          "FVEK (give a password or recovery password)")
    if method not in METHODS:
        raise FormatError(f"{what}: BitLocker encryption method {method:#06x} is not read")


def parse_fvek(text: str, what: str) -> bytes:
    """The FVEK as hex (``bdemount -k`` writes it so): spaces and a ``:TWEAK`` part allowed; the
    tweak key belongs to the Elephant diffuser, which is not read."""
    key = text.strip().split(":", 1)[0].replace(" ", "").replace("-", "")
    try:
        raw = bytes.fromhex(key)
    except ValueError:
        raise InputError(f"{what}: the FVEK is not hexadecimal") from None
    if len(raw) not in (16, 32, 64):
        raise InputError(f"{what}: an FVEK has 16, 32 or 64 bytes, not {len(raw)}")
    return raw


class FvekStream(ImageStream):
    """The decrypted volume of a BitLocker volume opened with its FVEK."""

    def __init__(self, volume: ImageStream, key: bytes, layout: Layout, what: str) -> None:
        name, size = METHODS[layout.method]
        if len(key) != size:
            raise InputError(f"{what}: the volume uses {name}, whose FVEK has {size} bytes, "
                             f"not {len(key)}")
        super().__init__(volume.size // SECTOR * SECTOR, sector_size=SECTOR)
        self.alignment = SECTOR
        self.method = name
        self._volume = volume
        self._key = key
        self._layout = layout
        self._what = what
        self._lock = threading.Lock()
        self._zeros = [(offset, METADATA_BLOCK) for offset in layout.metadata]
        self._zeros.append((layout.header_copy, layout.header_size))

    def _read_aligned(self, offset: int, length: int) -> bytes:
        out = bytearray()
        for at in range(offset, offset + length, SECTOR):
            out += self._sector(at)
        return bytes(out)

    def _sector(self, at: int) -> bytes:
        if at < self._layout.header_size:
            physical = self._layout.header_copy + at
        elif any(start <= at < start + size for start, size in self._zeros):
            return bytes(SECTOR)
        else:
            physical = at
        data = self._volume.pread(physical, SECTOR)
        if len(data) != SECTOR:
            raise FormatError(f"{self._what}: encrypted data ends at byte {physical}")
        return decrypt_sector(self._layout.method, self._key, data, physical)

    @property
    def info(self) -> StreamInfo:
        return StreamInfo(format="bitlocker", files=(), media_size=self.size,
                          sector_size=self.sector_size, details={"volume": self._what})


def decrypt_sector(method: int, key: bytes, data: bytes, offset: int) -> bytes:
    """One sector at byte ``offset`` of the volume."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    if method in (0x8004, 0x8005):
        tweak = (offset // SECTOR).to_bytes(16, "little")
        decryptor = Cipher(algorithms.AES(key), modes.XTS(tweak)).decryptor()
    else:
        ecb = Cipher(algorithms.AES(key), modes.ECB()).encryptor()  # noqa: S305 (the IV's cipher)
        iv = ecb.update(offset.to_bytes(16, "little")) + ecb.finalize()
        decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    return decryptor.update(data) + decryptor.finalize()


def looks_decrypted(stream: ImageStream) -> bool:
    """A wrong FVEK gives noise: a right one gives a boot sector (0x55 0xAA at its end)."""
    return stream.pread(510, 2) == b"\x55\xaa"


def ntfs_size(stream: ImageStream) -> int | None:
    """The size libbde gives the decrypted volume: the NTFS total sectors plus its backup boot
    sector, when the decrypted volume holds NTFS."""
    head = stream.pread(0, SECTOR)
    if head[3:11] != b"NTFS    ":
        return None
    sector = struct.unpack_from("<H", head, 11)[0]
    total = struct.unpack_from("<Q", head, 40)[0]
    if sector not in (512, 1024, 2048, 4096):
        return None
    size = (total + 1) * sector
    return size if 0 < size <= stream.size else None
