"""LUKS1 unlocking, our own: the header and key slots, then the payload through :mod:`luks2`'s
stream (LUKS1's payload is one LUKS2-like segment: 512-byte sectors, IVs from 0).

Why ours and not only libluksde: libluksde takes a passphrase as text (a key file of random bytes,
the usual ``/etc/crypttab`` key, cannot be given to it), reads no ``plain64be`` IV and answers
"wrong key" for it. libluksde still reads the ciphers we do not (serpent, twofish...) and is
the independent reader the tests compare with.

The binary header (big-endian, 592 bytes): magic ``LUKS\\xba\\xbe``, version 1, cipher name and
mode, hash, payload offset (sectors), key bytes, the master key's PBKDF2 digest (20 bytes, salt,
iterations), UUID, and eight key slots (active ``0x00AC71F3``, PBKDF2 iterations and salt, key
material offset in sectors, anti-forensic stripes). A slot's key material is decrypted with the
volume's own cipher keyed by PBKDF2 of the passphrase, then merged (:func:`luks2.af_merge`).
"""

from __future__ import annotations

import hashlib
import hmac

from bitwitness.errors import FileSystemError, FormatError
from bitwitness.report.browse import dmcrypt
from bitwitness.report.browse.luks2 import MAX_ITERATIONS, MAX_STRIPES, Segment, af_merge
from bitwitness.stream import ImageStream

HEADER = 592
SLOTS = 8
ACTIVE = 0x00AC71F3
SECTOR = 512


def _text(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("ascii", "replace")


def cipher_spec(head: bytes) -> str:
    """``aes-cbc-essiv:sha256`` from a LUKS1 header's cipher name and mode."""
    return f"{_text(head[8:40])}-{_text(head[40:72])}"


def unlock(stream: ImageStream, passphrase: bytes,
           what: str) -> tuple[dmcrypt.SectorCipher, Segment]:
    """(the payload's keyed cipher, the payload segment) or a :class:`FileSystemError` for a
    wrong key; a :class:`FormatError` for a header we cannot read (names the cipher)."""
    head = stream.pread(0, HEADER)
    if len(head) < HEADER or head[:6] != b"LUKS\xba\xbe" or head[6:8] != b"\0\1":
        raise FormatError(f"{what}: not a LUKS1 header")
    spec = cipher_spec(head)
    dmcrypt.check(spec, what)
    hash_name = _text(head[72:104])
    try:  # the hash must work for PBKDF2 and for the AF diffusion (a fixed-size digest)
        hashlib.pbkdf2_hmac(hash_name, b"", b"", 1, 1)
        if not hashlib.new(hash_name).digest_size:
            raise ValueError(hash_name)
    except (ValueError, TypeError):
        raise FormatError(f"{what}: LUKS1 hash {hash_name!r} is not read") from None
    payload = int.from_bytes(head[104:108], "big") * SECTOR
    key_bytes = int.from_bytes(head[108:112], "big")
    digest, digest_salt = head[112:132], head[132:164]
    digest_iterations = int.from_bytes(head[164:168], "big")
    if not 0 < key_bytes <= 64 or not 0 < digest_iterations <= MAX_ITERATIONS:
        raise FormatError(f"{what}: LUKS1 key size or digest iterations out of bounds")
    for number in range(SLOTS):
        slot = head[208 + 48 * number : 208 + 48 * (number + 1)]
        if int.from_bytes(slot[0:4], "big") != ACTIVE:
            continue
        key = _open_slot(stream, slot, passphrase, spec=spec, hash_name=hash_name,
                         key_bytes=key_bytes, what=f"{what} key slot {number}")
        derived = hashlib.pbkdf2_hmac(hash_name, key, digest_salt, digest_iterations, 20)
        if hmac.compare_digest(derived, digest):
            return dmcrypt.cipher(spec, key, what), Segment(payload, None, SECTOR, 0)
    raise FileSystemError(f"{what}: no key slot opens with this key")


def _open_slot(stream: ImageStream, slot: bytes, passphrase: bytes, *, spec: str,
               hash_name: str, key_bytes: int, what: str) -> bytes:
    iterations = int.from_bytes(slot[4:8], "big")
    offset = int.from_bytes(slot[40:44], "big") * SECTOR
    stripes = int.from_bytes(slot[44:48], "big")
    if not 0 < iterations <= MAX_ITERATIONS or not 0 < stripes <= MAX_STRIPES:
        raise FormatError(f"{what}: iterations or stripes out of bounds")
    slot_key = hashlib.pbkdf2_hmac(hash_name, passphrase, slot[8:40], iterations, key_bytes)
    length = key_bytes * stripes
    padded = -(-length // SECTOR) * SECTOR
    material = stream.pread(offset, padded)
    if len(material) != padded:
        raise FormatError(f"{what}: key material lies beyond the end of the volume")
    split = dmcrypt.cipher(spec, slot_key, what).decrypt(material, iv_sector=0,
                                                         sector_size=SECTOR)
    return af_merge(split[:length], key_bytes, stripes, hash_name)
