"""A test-only BitLocker writer: no tool here writes BitLocker, so the tests build their volumes.

Written from libyal's public description of the format ("BitLocker Drive Encryption (BDE) format",
libbde's documentation): a Windows 7-style volume header (``-FVE-FS-``, the BitLocker identifier,
the offsets of three FVE metadata blocks), three identical metadata blocks (block header version 2,
metadata header, entries), Volume Master Key entries with their protectors (password, recovery
password, startup key), the Full Volume Encryption Key encrypted with the VMK (AES-CCM), and the
sectors encrypted with the FVEK (AES-XTS, or AES-CBC with the encrypted byte offset as IV).

Layout of a volume made from a plain file system of ``n`` bytes::

    0            the BitLocker volume header (sector 0), sectors 1-15 zero
    16 .. n      the plain file system's sectors, encrypted in place
    n            three 64 KiB metadata blocks, then the encrypted copy of the file system's
                 first 16 sectors (the "volume header block" entry names it)

The plain file system must be NTFS: libbde reads the decrypted volume's size from its NTFS boot
sector (total sectors, plus the backup boot sector), so what libbde returns is the plain image
exactly, and the metadata behind it is not part of the decrypted volume.

Nothing here is product code: it exists to make volumes an independent reader (libbde) can check.
"""

from __future__ import annotations

import hashlib
import struct
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESCCM

SECTOR = 512
HEADER_SECTORS = 16  #: the file system's first sectors, kept encrypted elsewhere
METADATA_BLOCK = 64 << 10
BITLOCKER_ID = uuid.UUID("4967d63b-2e29-4ad8-8399-f6a339e3d001").bytes_le
STRETCH_ROUNDS = 0x100000

#: encryption methods (metadata header, FVEK key entry)
METHODS = {"aes-cbc-128": 0x8002, "aes-cbc-256": 0x8003,
           "aes-xts-128": 0x8004, "aes-xts-256": 0x8005}
_KEY_BYTES = {"aes-cbc-128": 16, "aes-cbc-256": 32, "aes-xts-128": 32, "aes-xts-256": 64}
_VMK_METHOD = 0x2000  # AES-CCM 256: the VMK and the keys it wraps
_STRETCH_PASSWORD = 0x1001
_STRETCH_RECOVERY = 0x1000

# entry types and value types
_E_PROPERTY, _E_VMK, _E_FVEK, _E_STARTUP, _E_DESCRIPTION, _E_HEADER_BLOCK = 0, 2, 3, 6, 7, 0xF
_V_KEY, _V_STRING, _V_STRETCH, _V_CCM, _V_VMK, _V_EXTERNAL, _V_OFFSET_SIZE = 1, 2, 3, 5, 8, 9, 0xF
# protection types of a VMK
PROTECT_STARTUP, PROTECT_RECOVERY, PROTECT_PASSWORD = 0x0200, 0x0800, 0x2000


@dataclass
class Keys:
    """What the test needs to open the volume again (and what a wrong key must not do)."""

    fvek: bytes
    vmk: bytes
    password: str | None = None
    recovery_password: str | None = None
    startup_key: bytes | None = None  #: the BEK file's bytes
    startup_key_id: str | None = None  #: its GUID, as the .BEK file is named
    method: str = "aes-xts-128"
    protectors: list[str] = field(default_factory=list)


def filetime(when: datetime) -> int:
    return int((when - datetime(1601, 1, 1, tzinfo=UTC)).total_seconds() * 10_000_000)


def stretch(initial: bytes, salt: bytes) -> bytes:
    """The documented key stretching: 2**20 rounds of SHA-256 over (last, initial, salt, count)."""
    last = bytes(32)
    for count in range(STRETCH_ROUNDS):
        last = hashlib.sha256(last + initial + salt + count.to_bytes(8, "little")).digest()
    return last


def password_key(password: str, salt: bytes) -> bytes:
    once = hashlib.sha256(password.encode("utf-16-le")).digest()
    return stretch(hashlib.sha256(once).digest(), salt)


def recovery_key(recovery_password: str, salt: bytes) -> bytes:
    groups = recovery_password.split("-")
    assert len(groups) == 8
    values = []
    for group in groups:
        number = int(group)
        assert number % 11 == 0
        assert number // 11 < 0x10000
        values.append(number // 11)
    return stretch(hashlib.sha256(struct.pack("<8H", *values)).digest(), salt)


def make_recovery_password(seed: bytes) -> str:
    """Eight groups of six digits, each a multiple of 11 (a 16-bit value times 11)."""
    values = struct.unpack("<8H", hashlib.sha256(seed).digest()[:16])
    return "-".join(f"{value * 11:06d}" for value in values)


def _entry(entry_type: int, value_type: int, data: bytes) -> bytes:
    return struct.pack("<HHHH", 8 + len(data), entry_type, value_type, 1) + data


def _key_entry(method: int, key: bytes) -> bytes:
    return _entry(_E_PROPERTY, _V_KEY, struct.pack("<I", method) + key)


def _ccm(key: bytes, plain: bytes, when: int, counter: int) -> bytes:
    """An AES-CCM encrypted key value: nonce (FILETIME, counter), then the MAC, then the data.

    BitLocker stores the encrypted MAC first; ``cryptography`` returns it last.
    """
    nonce = struct.pack("<QI", when, counter)
    sealed = AESCCM(key, tag_length=16).encrypt(nonce, plain, None)
    return nonce + sealed[-16:] + sealed[:-16]


def _string(text: str) -> bytes:
    return (text + "\0").encode("utf-16-le")


class _Counter:
    def __init__(self) -> None:
        self.value = 0

    def next(self) -> int:
        self.value += 1
        return self.value


def _vmk_entry(key_id: bytes, when: int, protection: int, properties: bytes) -> bytes:
    return _entry(_E_VMK, _V_VMK,
                  key_id + struct.pack("<QHH", when, 0, protection) + properties)


def _stretched_vmk(vmk: bytes, stretched: bytes, salt: bytes, *, method: int, when: int,
                   nonces: _Counter) -> bytes:
    stretch_value = _entry(_E_PROPERTY, _V_STRETCH, struct.pack("<I", method) + salt)
    sealed = _entry(_E_PROPERTY, _V_CCM,
                    _ccm(stretched, _key_entry(_VMK_METHOD, vmk), when, nonces.next()))
    return stretch_value + sealed


def build(plain: Path, out: Path, *, password: str | None = None,
          recovery_password: str | None = None, startup_key: bool = False,
          method: str = "aes-xts-128", seed: bytes = b"bitwitness", to_go: bool = False) -> Keys:
    """Encrypt the plain file system ``plain`` into the BitLocker volume ``out``.

    ``seed`` makes keys, salts and identifiers repeatable (a test volume, not a secret).
    ``to_go``: the volume header of BitLocker To Go on a FAT drive (a FAT32 boot sector,
    ``MSWIN4.1``, the identifier at byte 424) in place of Windows 7's; libbde then sizes the
    decrypted volume by that boot sector's sector count (the whole volume).
    """
    data = plain.read_bytes()
    if len(data) % SECTOR or len(data) < HEADER_SECTORS * SECTOR * 2:
        raise ValueError("the plain file system must be whole sectors, at least 16 KiB")
    rng = _Random(seed)
    fvek = rng.take(_KEY_BYTES[method])
    vmk = rng.take(32)
    volume_id = rng.take(16)
    when = filetime(datetime(2026, 12, 3, 12, 0, tzinfo=UTC))
    nonces = _Counter()

    tail = len(data)
    blocks = [tail + index * METADATA_BLOCK for index in range(3)]
    header_copy = tail + 3 * METADATA_BLOCK
    total = header_copy + HEADER_SECTORS * SECTOR
    keys = Keys(fvek=fvek, vmk=vmk, method=method)

    entries = b""
    if password is not None:
        salt = rng.take(16)
        entries += _vmk_entry(rng.take(16), when, PROTECT_PASSWORD, _stretched_vmk(
            vmk, password_key(password, salt), salt, method=_STRETCH_PASSWORD, when=when,
            nonces=nonces))
        keys.password = password
        keys.protectors.append("password")
    if recovery_password is not None:
        salt = rng.take(16)
        entries += _vmk_entry(rng.take(16), when, PROTECT_RECOVERY, _entry(
            _E_PROPERTY, _V_STRING, _string("DiskPassword")) + _stretched_vmk(
            vmk, recovery_key(recovery_password, salt), salt, method=_STRETCH_RECOVERY,
            when=when, nonces=nonces))
        keys.recovery_password = recovery_password
        keys.protectors.append("recovery password")
    if startup_key:
        external = rng.take(32)
        key_id = rng.take(16)
        sealed = _entry(_E_PROPERTY, _V_CCM,
                        _ccm(external, _key_entry(_VMK_METHOD, vmk), when, nonces.next()))
        entries += _vmk_entry(key_id, when, PROTECT_STARTUP,
                              _entry(_E_PROPERTY, _V_STRING, _string("ExternalKey")) + sealed)
        keys.startup_key = _bek(key_id, external, when)
        keys.startup_key_id = str(uuid.UUID(bytes_le=key_id)).upper()
        keys.protectors.append("startup key")
    entries += _entry(_E_FVEK, _V_CCM,
                      _ccm(vmk, _key_entry(METHODS[method], fvek), when, nonces.next()))
    entries += _entry(_E_HEADER_BLOCK, _V_OFFSET_SIZE,
                      struct.pack("<QQ", header_copy, HEADER_SECTORS * SECTOR))
    entries += _entry(_E_DESCRIPTION, _V_STRING, _string("BITWITNESS-TEST E: 03/12/2026"))

    metadata = struct.pack("<IIII", 48 + len(entries), 1, 48, 48 + len(entries))
    metadata += volume_id + struct.pack("<IIQ", nonces.value + 1, METHODS[method], when)
    metadata += entries
    if 64 + len(metadata) > METADATA_BLOCK:
        raise ValueError("metadata larger than its block")

    image = bytearray(total)
    image[:SECTOR] = _to_go_header(blocks, total) if to_go else _volume_header(blocks)
    cipher = _SectorCipher(method, fvek)
    for sector in range(HEADER_SECTORS, tail // SECTOR):
        at = sector * SECTOR
        image[at : at + SECTOR] = cipher.encrypt(data[at : at + SECTOR], at)
    for index in range(HEADER_SECTORS):
        at = header_copy + index * SECTOR
        image[at : at + SECTOR] = cipher.encrypt(data[index * SECTOR : (index + 1) * SECTOR], at)
    for offset in blocks:
        block = _block_header(blocks, header_copy, total) + metadata
        image[offset : offset + len(block)] = block
    out.write_bytes(bytes(image))
    return keys


def _volume_header(blocks: list[int]) -> bytes:
    header = bytearray(SECTOR)
    header[0:3] = b"\xeb\x58\x90"
    header[3:11] = b"-FVE-FS-"
    struct.pack_into("<HB", header, 11, SECTOR, 8)
    header[21] = 0xF8  # media descriptor: fixed disk
    struct.pack_into("<HH", header, 24, 0x3F, 0xFF)
    header[160:176] = BITLOCKER_ID
    struct.pack_into("<QQQ", header, 176, *blocks)
    header[510:512] = b"\x55\xaa"
    return bytes(header)


def _to_go_header(blocks: list[int], total: int) -> bytes:
    """BitLocker To Go's volume header on a FAT drive: the boot sector of a FAT32 discovery
    volume (a BPB as mkfs.vfat writes one) with the BitLocker identifier at 424 and the three
    metadata offsets at 440."""
    header = bytearray(SECTOR)
    header[0:3] = b"\xeb\x58\x90"
    header[3:11] = b"MSWIN4.1"
    sectors = total // SECTOR
    fat_sectors = -(-(sectors + 2) * 4 // SECTOR)  # one sector a cluster: FAT32 from ~33 MB
    struct.pack_into("<HBHBHHBHHHII", header, 11, SECTOR, 1, 32, 2, 0, 0, 0xF8, 0, 0x3F, 0xFF,
                     0, sectors)
    struct.pack_into("<IHHIHH", header, 36, fat_sectors, 0, 0, 2, 1, 6)
    header[64], header[66] = 0x80, 0x29
    struct.pack_into("<I", header, 67, 0x1234ABCD)
    header[71:82] = b"NO NAME    "
    header[82:90] = b"FAT32   "
    header[424:440] = BITLOCKER_ID
    struct.pack_into("<QQQ", header, 440, *blocks)
    header[510:512] = b"\x55\xaa"
    return bytes(header)


def _block_header(blocks: list[int], header_copy: int, total: int) -> bytes:
    """Version 2 (Windows 7 and later): state 4 (encrypted), the whole volume encrypted."""
    return (b"-FVE-FS-" + struct.pack("<HHHH", 64, 2, 4, 4) + struct.pack("<QII", total, 0,
                                                                          HEADER_SECTORS)
            + struct.pack("<QQQQ", *blocks, header_copy))


def _bek(key_id: bytes, external: bytes, when: int) -> bytes:
    """A startup key file: a metadata header, then one external key entry holding the key."""
    properties = (_entry(_E_PROPERTY, _V_STRING, _string("ExternalKey"))
                  + _key_entry(_VMK_METHOD, external))
    entry = _entry(_E_STARTUP, _V_EXTERNAL, key_id + struct.pack("<Q", when) + properties)
    size = 48 + len(entry)
    return struct.pack("<IIII", size, 1, 48, size) + key_id + struct.pack(
        "<IIQ", 1, _VMK_METHOD, when) + entry


class _SectorCipher:
    def __init__(self, method: str, key: bytes) -> None:
        self.method = method
        self.key = key

    def encrypt(self, sector: bytes, offset: int) -> bytes:
        if self.method.startswith("aes-xts"):
            tweak = (offset // SECTOR).to_bytes(16, "little")
            encryptor = Cipher(algorithms.AES(self.key), modes.XTS(tweak)).encryptor()
            return encryptor.update(sector) + encryptor.finalize()
        ecb = Cipher(algorithms.AES(self.key), modes.ECB()).encryptor()  # noqa: S305
        iv = ecb.update(offset.to_bytes(16, "little")) + ecb.finalize()
        encryptor = Cipher(algorithms.AES(self.key), modes.CBC(iv)).encryptor()
        return encryptor.update(sector) + encryptor.finalize()


class _Random:
    """Repeatable bytes from a seed (SHA-256 in counter mode)."""

    def __init__(self, seed: bytes) -> None:
        self.seed = seed
        self.counter = 0

    def take(self, size: int) -> bytes:
        out = b""
        while len(out) < size:
            self.counter += 1
            out += hashlib.sha256(self.seed + self.counter.to_bytes(8, "little")).digest()
        return out[:size]

