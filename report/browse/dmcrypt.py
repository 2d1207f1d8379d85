"""dm-crypt's sector ciphers, as LUKS names them (``aes-xts-plain64``, ``aes-cbc-essiv:sha256``).

A LUKS volume names its cipher as dm-crypt does: ``CIPHER-MODE-IV``. Every sector is encrypted on
its own with an IV made from a sector number. That number is counted in 512-byte units whatever
the encryption sector size (dm-crypt's default: cryptsetup never sets ``iv_large_sectors`` for
LUKS), so the IV of the second 4096-byte sector is 8, not 1.

What is read: AES in XTS, CBC or ECB mode; IVs ``plain`` (the sector number's low 32 bits,
little-endian), ``plain64`` (64 bits, little-endian), ``plain64be`` (64 bits, big-endian, at the
end of the IV), ``benbi`` (the 16-byte block count from 1, big-endian, at the end), ``null``
(zeros) and ``essiv:HASH`` (the ``plain64`` IV encrypted with AES keyed by HASH of the volume
key). Anything else (serpent, twofish, lmk, tcw, ...) is refused by name.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from bitwitness.errors import FormatError

IV_UNIT = 512  #: bytes per IV sector number, whatever the encryption sector size
_MODES = ("xts", "cbc", "ecb")
_IVS = ("plain", "plain64", "plain64be", "benbi", "null")


@dataclass(frozen=True)
class SectorCipher:
    """One dm-crypt cipher with its key; :meth:`decrypt` reads whole sectors."""

    spec: str  #: as the header names it, e.g. "aes-xts-plain64"
    mode: str  #: "xts", "cbc" or "ecb"
    iv: str  #: "plain", "plain64", "plain64be", "benbi", "null", "essiv" or "" (ECB)
    key: bytes = field(repr=False)
    essiv_key: bytes | None = field(default=None, repr=False)

    def decrypt(self, data: bytes, *, iv_sector: int, sector_size: int) -> bytes:
        """``data`` (whole sectors of ``sector_size`` bytes) decrypted; ``iv_sector`` is the IV
        number of the first sector, in 512-byte units."""
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

        whole = len(data) // sector_size * sector_size
        algorithm = algorithms.AES(self.key)
        if self.mode == "ecb":  # the volume's own cipher: no IV, every block on its own
            decryptor = Cipher(algorithm, modes.ECB()).decryptor()  # noqa: S305
            return decryptor.update(data[:whole]) + decryptor.finalize()
        step = sector_size // IV_UNIT
        out = bytearray()
        for index in range(whole // sector_size):
            chunk = data[index * sector_size : (index + 1) * sector_size]
            iv = self._iv(iv_sector + index * step)
            if self.mode == "xts":
                decryptor = Cipher(algorithm, modes.XTS(iv)).decryptor()
            else:
                decryptor = Cipher(algorithm, modes.CBC(iv)).decryptor()
            out += decryptor.update(chunk)
            out += decryptor.finalize()
        return bytes(out)

    def _iv(self, sector: int) -> bytes:
        if self.iv == "plain":
            return (sector & 0xFFFFFFFF).to_bytes(16, "little")
        if self.iv == "plain64be":
            return bytes(8) + (sector & (2**64 - 1)).to_bytes(8, "big")
        if self.iv == "benbi":  # 512 / 16 = 32 cipher blocks a sector number, counted from 1
            return bytes(8) + (((sector << 5) + 1) & (2**64 - 1)).to_bytes(8, "big")
        if self.iv == "null":
            return bytes(16)
        plain64 = (sector & (2**64 - 1)).to_bytes(16, "little")
        if self.iv == "plain64":
            return plain64
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

        assert self.essiv_key is not None
        # ESSIV encrypts one block, the sector number: ECB is its definition
        encryptor = Cipher(algorithms.AES(self.essiv_key), modes.ECB()).encryptor()  # noqa: S305
        return encryptor.update(plain64) + encryptor.finalize()


def check(spec: str, what: str) -> None:
    """Raise a :class:`FormatError` naming ``spec`` when we do not read that cipher."""
    _parse(spec, what)


def cipher(spec: str, key: bytes, what: str) -> SectorCipher:
    """The sector cipher ``spec`` keyed with ``key``, or a :class:`FormatError` naming ``spec``
    when we do not read it (or the key does not fit it)."""
    mode, iv, essiv_hash = _parse(spec, what)
    sizes = (32, 64) if mode == "xts" else (16, 24, 32)
    if len(key) not in sizes:
        raise FormatError(f"{what}: a {len(key) * 8}-bit key does not fit LUKS cipher {spec!r}")
    essiv_key = hashlib.new(essiv_hash, key).digest() if essiv_hash else None
    return SectorCipher(spec, mode, iv, key, essiv_key)


def _parse(spec: str, what: str) -> tuple[str, str, str]:
    """(mode, IV kind, ESSIV hash name or "") of ``spec``."""
    parts = spec.split("-", 2)
    name, mode = parts[0], parts[1] if len(parts) > 1 else ""
    iv = parts[2] if len(parts) > 2 else ""
    refused = FormatError(f"{what}: LUKS cipher {spec!r} is not read (read: aes-xts, aes-cbc and "
                          "aes-ecb with plain, plain64, plain64be, benbi, null or essiv IVs)")
    if name != "aes" or mode not in _MODES or (mode == "ecb") != (iv == ""):
        raise refused
    if iv.startswith("essiv:"):
        try:
            size = hashlib.new(iv[6:]).digest_size
        except (ValueError, TypeError):
            raise refused from None
        if size not in (16, 24, 32):
            raise refused
        return mode, "essiv", iv[6:]
    if iv and iv not in _IVS:
        raise refused
    return mode, iv, ""
