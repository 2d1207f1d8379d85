"""LUKS2 unlocking and decryption, our own (libluksde reads LUKS1 only).

What is read, in the order cryptsetup writes it: the binary header (magic ``LUKS\\xba\\xbe``,
version 2, header size) and its JSON area from byte 4096; each key slot's KDF (PBKDF2 or
Argon2id) turns the passphrase into the slot key; the slot's key material (512-byte sectors,
IVs from 0, in the slot's own cipher) decrypts to the anti-forensic split volume key, merged with
the slot's hash; a digest (PBKDF2 of the volume key) says whether the key is right. The data
segment is then read sector by sector in the segment's cipher and sector size, the IV of a sector
being ``iv_tweak`` + its byte offset in the segment / 512 (:mod:`dmcrypt`: dm-crypt counts IVs in
512-byte units even in 4096-byte sectors, and cryptsetup writes LUKS2 so).

Hostile headers fail closed: sizes, iterations, memory and stripes are bounded before any work.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from dataclasses import dataclass
from typing import Any

from bitwitness.errors import FileSystemError, FormatError
from bitwitness.report.browse import dmcrypt
from bitwitness.stream import ImageStream, StreamInfo

MAGIC = b"LUKS\xba\xbe"
SECONDARY_MAGIC = b"SKUL\xba\xbe"  #: the second copy of a LUKS2 header
MAX_HEADER = 4 << 20  #: the largest LUKS2 header cryptsetup writes
MAX_ITERATIONS = 50_000_000
MAX_ARGON_MEMORY_KIB = 1 << 20  #: 1 GiB
MAX_ARGON_TIME = 64
MAX_STRIPES = 65536


@dataclass(frozen=True)
class Segment:
    offset: int  #: bytes from the volume's start
    size: int | None  #: bytes, None for "dynamic" (to the end of the volume)
    sector_size: int
    iv_tweak: int


def is_luks2(head: bytes) -> bool:
    return head[:6] == MAGIC and int.from_bytes(head[6:8], "big") == 2


#: where cryptsetup looks for the second header copy when the first does not say (its sizes)
SECONDARY_OFFSETS = (0x4000, 0x8000, 0x10000, 0x20000, 0x40000, 0x80000, 0x100000, 0x200000,
                     0x400000)


def read_header(stream: ImageStream, what: str) -> dict[str, Any]:
    """The JSON metadata of the LUKS2 volume ``stream``: of the header copy whose checksum is
    right (the primary at byte 0, the secondary behind it), the newer when both are, as
    cryptsetup chooses. A damaged primary is thus read from the secondary, never as it is."""
    head = stream.pread(0, 4096)
    if not is_luks2(head):
        raise FormatError(f"{what}: not a LUKS2 header")
    size = int.from_bytes(head[8:16], "big")
    copies = [_copy(stream, 0, MAGIC)]
    places = (size,) if 4096 < size <= MAX_HEADER else SECONDARY_OFFSETS
    copies += [_copy(stream, offset, SECONDARY_MAGIC) for offset in places]
    intact = [copy for copy in copies if copy is not None]
    if not intact:
        raise FormatError(f"{what}: neither LUKS2 header copy is intact (size, checksum or "
                          "JSON wrong)")
    return max(intact, key=lambda copy: copy[0])[1]


def _copy(stream: ImageStream, offset: int, magic: bytes) -> tuple[int, dict[str, Any]] | None:
    """(sequence number, metadata) of the header copy at ``offset``, None when it is not one
    whose checksum and JSON are right."""
    head = stream.pread(offset, 4096)
    if head[:6] != magic or int.from_bytes(head[6:8], "big") != 2:
        return None
    size = int.from_bytes(head[8:16], "big")
    if not 4096 < size <= MAX_HEADER:
        return None
    algorithm = head[72:104].split(b"\0", 1)[0].decode("ascii", "replace")
    whole = bytearray(stream.pread(offset, size))
    stored = bytes(whole[448:512])
    whole[448:512] = bytes(64)
    try:
        computed = hashlib.new(algorithm, bytes(whole)).digest()
    except (ValueError, TypeError):
        return None
    if len(whole) != size or not 0 < len(computed) <= 64 or not hmac.compare_digest(
            stored[: len(computed)], computed):
        return None
    try:
        meta = json.loads(bytes(whole[4096:]).split(b"\0", 1)[0].decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    return (int.from_bytes(head[16:24], "big"), meta) if isinstance(meta, dict) else None


def unlock(stream: ImageStream, passphrase: bytes,
           what: str) -> tuple[dmcrypt.SectorCipher, Segment]:
    """(the data segment's keyed cipher, the segment) or a :class:`FileSystemError` for a wrong
    key.

    Raises :class:`FormatError` for a header we cannot read (unknown cipher or KDF).
    """
    meta = read_header(stream, what)
    _refuse_requirements(meta, what)
    try:
        digests = list(meta["digests"].values())
        segment_meta = meta["segments"]["0"]
        slots = sorted(meta["keyslots"].items())
        cipher = str(segment_meta.get("encryption", ""))
    except (KeyError, AttributeError, TypeError):
        raise FormatError(f"{what}: LUKS2 metadata lacks digests, segments or keyslots") from None
    segment = _segment(segment_meta, what)
    dmcrypt.check(cipher, what)
    for slot_id, slot in slots:
        try:
            key = _open_slot(stream, slot, passphrase, what)
            if key is not None and any(_digest_matches(d, key, slot_id, what) for d in digests):
                return dmcrypt.cipher(cipher, key, what), segment
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise FormatError(f"{what}: LUKS2 key slot {slot_id} is malformed "
                              f"({type(exc).__name__})") from None
    raise FileSystemError(f"{what}: no key slot opens with this key")


def _refuse_requirements(meta: dict[str, Any], what: str) -> None:
    """A volume cryptsetup itself would not open without a feature we lack, named: above all
    one in the middle of re-encryption (``online-reencrypt-v2``), whose data is in several
    segments, part old and part new, that we do not join."""
    config = meta.get("config")
    needs = config.get("requirements", {}) if isinstance(config, dict) else {}
    mandatory = needs.get("mandatory", []) if isinstance(needs, dict) else []
    if mandatory:
        names = ", ".join(str(name) for name in mandatory) if isinstance(mandatory, list) else "?"
        why = (" (a re-encryption cryptsetup has not finished: its data is part old, part new)"
               if "reencrypt" in names else "")
        raise FormatError(f"{what}: LUKS2 requirement {names} is not read{why}")


def _segment(meta: dict[str, Any], what: str) -> Segment:
    if not isinstance(meta, dict) or meta.get("type") != "crypt":
        kind = meta.get("type") if isinstance(meta, dict) else None
        raise FormatError(f"{what}: LUKS2 data segment of type {kind!r} is not read "
                          "(only 'crypt')")
    if meta.get("integrity"):  # dm-integrity interleaves tags with the data: not read
        integrity = meta["integrity"]
        kind = integrity.get("type") if isinstance(integrity, dict) else integrity
        raise FormatError(f"{what}: LUKS2 with integrity protection ({kind!r}) is not read")
    try:
        size = None if meta.get("size") == "dynamic" else int(meta["size"])
        if size is not None and size <= 0:
            raise ValueError("empty segment")
        sector = int(meta.get("sector_size", 512))
        segment = Segment(int(meta["offset"]), size, sector, int(meta.get("iv_tweak", "0")))
    except (KeyError, TypeError, ValueError):
        raise FormatError(f"{what}: LUKS2 data segment is malformed") from None
    if sector not in (512, 1024, 2048, 4096) or segment.offset < 0:
        raise FormatError(f"{what}: LUKS2 data segment is malformed")
    return segment


def _open_slot(stream: ImageStream, slot: dict[str, Any], passphrase: bytes,
               what: str) -> bytes | None:
    if slot.get("type") != "luks2":
        return None
    area, kdf, af = slot["area"], slot["kdf"], slot["af"]
    key_size = int(slot["key_size"])
    stripes = int(af["stripes"])
    if not 0 < key_size <= 64 or not 0 < stripes <= MAX_STRIPES:
        raise FormatError(f"{what}: LUKS2 key slot uses what we do not read")
    area_cipher = str(area.get("encryption"))
    dmcrypt.check(area_cipher, f"{what} key slot")
    slot_key = dmcrypt.cipher(area_cipher, _kdf(kdf, passphrase, int(area["key_size"]), what),
                              f"{what} key slot")
    length = key_size * stripes
    padded = -(-length // 512) * 512
    if padded > int(area["size"]):
        raise FormatError(f"{what}: LUKS2 key slot area too small for its key material")
    material = stream.pread(int(area["offset"]), padded)
    if len(material) != padded:
        raise FormatError(f"{what}: LUKS2 key slot area lies beyond the end of the volume")
    split = slot_key.decrypt(material, iv_sector=0, sector_size=512)[:length]
    return af_merge(split, key_size, stripes, str(af.get("hash", "sha256")))


def _kdf(kdf: dict[str, Any], passphrase: bytes, size: int, what: str) -> bytes:
    salt = base64.b64decode(kdf["salt"])
    kind = kdf.get("type")
    if kind == "pbkdf2":
        iterations = int(kdf["iterations"])
        if not 0 < iterations <= MAX_ITERATIONS:
            raise FormatError(f"{what}: PBKDF2 iterations {iterations} out of bounds")
        return hashlib.pbkdf2_hmac(str(kdf["hash"]), passphrase, salt, iterations, size)
    if kind == "argon2id":
        from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

        memory, time_cost, lanes = int(kdf["memory"]), int(kdf["time"]), int(kdf["cpus"])
        if not (0 < memory <= MAX_ARGON_MEMORY_KIB and 0 < time_cost <= MAX_ARGON_TIME
                and 0 < lanes <= 64):
            raise FormatError(f"{what}: Argon2 cost out of bounds")
        return Argon2id(salt=salt, length=size, iterations=time_cost, lanes=lanes,
                        memory_cost=memory).derive(passphrase)
    raise FormatError(f"{what}: LUKS2 key derivation {kind!r} is not read")


def af_merge(split: bytes, key_size: int, stripes: int, hash_name: str) -> bytes:
    """LUKS's anti-forensic merge: XOR and diffuse each stripe in turn, XOR the last."""
    digest = bytes(key_size)
    for index in range(stripes - 1):
        stripe = split[index * key_size : (index + 1) * key_size]
        digest = _diffuse(bytes(a ^ b for a, b in zip(digest, stripe, strict=True)), hash_name)
    last = split[(stripes - 1) * key_size : stripes * key_size]
    return bytes(a ^ b for a, b in zip(digest, last, strict=True))


def _diffuse(block: bytes, hash_name: str) -> bytes:
    size = hashlib.new(hash_name).digest_size
    out = bytearray()
    for index in range(-(-len(block) // size)):
        chunk = block[index * size : (index + 1) * size]
        out += hashlib.new(hash_name, index.to_bytes(4, "big") + chunk).digest()[: len(chunk)]
    return bytes(out)


def _digest_matches(digest: dict[str, Any], key: bytes, slot_id: str, what: str) -> bool:
    """The key is the data segment's: a digest of this slot that also covers segment 0 (an
    unbound key slot, ``luksAddKey --unbound``, holds a key of no segment: it opens nothing)."""
    if (digest.get("type") != "pbkdf2" or slot_id not in digest.get("keyslots", [])
            or "0" not in digest.get("segments", [])):
        return False
    iterations = int(digest["iterations"])
    if not 0 < iterations <= MAX_ITERATIONS:
        raise FormatError(f"{what}: digest iterations {iterations} out of bounds")
    expected = base64.b64decode(digest["digest"])
    derived = hashlib.pbkdf2_hmac(str(digest["hash"]), key, base64.b64decode(digest["salt"]),
                                  iterations, len(expected))
    return hmac.compare_digest(derived, expected)


class Luks2Stream(ImageStream):
    """The decrypted data segment of an unlocked LUKS2 volume."""

    def __init__(self, volume: ImageStream, cipher: dmcrypt.SectorCipher, segment: Segment,
                 what: str) -> None:
        end = volume.size if segment.size is None else segment.offset + segment.size
        if end > volume.size or segment.offset >= end:
            raise FormatError(f"{what}: LUKS2 data segment lies outside the volume")
        size = (end - segment.offset) // segment.sector_size * segment.sector_size
        super().__init__(size, sector_size=segment.sector_size)
        self.alignment = segment.sector_size
        self._volume = volume
        self._cipher = cipher
        self._segment = segment
        self._what = what
        self._lock = threading.Lock()

    def _read_aligned(self, offset: int, length: int) -> bytes:
        sector = self._segment.sector_size
        data = self._volume.pread(self._segment.offset + offset, length)
        if len(data) != length:
            raise FormatError(f"{self._what}: encrypted data ends at byte {offset + len(data)}")
        first = self._segment.iv_tweak + offset // dmcrypt.IV_UNIT
        return self._cipher.decrypt(data, iv_sector=first, sector_size=sector)

    @property
    def info(self) -> StreamInfo:
        return StreamInfo(format="luks2", files=(), media_size=self.size,
                          sector_size=self.sector_size, details={"volume": self._what})
