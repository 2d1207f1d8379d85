"""Test-only: LUKS1/LUKS2 volumes whose header AND encrypted payload cryptsetup writes.

No device-mapper is needed: ``cryptsetup reencrypt --encrypt`` encrypts a file offline, and
``cryptsetup convert`` turns such a LUKS2 volume into LUKS1. Nothing here encrypts a byte itself,
so what the readers decrypt is what cryptsetup wrote. The one exception, :func:`make_luks`, is
for a plaintext that starts with a partition table, which cryptsetup refuses to encrypt.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

SECTOR = 512


@dataclass(frozen=True)
class LuksDump:
    cipher: str  #: "aes"
    mode: str  #: "xts-plain64"
    payload_offset: int  #: bytes
    volume_key: bytes


def luks_dump(volume: Path, key_file: Path) -> LuksDump:
    out = subprocess.run(["cryptsetup", "luksDump", "--dump-volume-key", "--batch-mode",
                          "--key-file", str(key_file), str(volume)],
                         capture_output=True, text=True, check=True).stdout
    fields: dict[str, str] = {}
    key_hex = ""
    in_key = False
    for line in out.splitlines():
        if line.startswith(("MK dump:", "Volume key:")):
            in_key = True
            key_hex += line.split(":", 1)[1]
            continue
        if in_key and line.startswith(("\t", " ")) and re.fullmatch(r"[\s0-9a-f]+", line):
            key_hex += line
            continue
        in_key = False
        if ":" in line:
            name, _, value = line.partition(":")
            fields[name.strip()] = value.strip()
    return LuksDump(cipher=fields["Cipher name"], mode=fields["Cipher mode"],
                    payload_offset=int(fields["Payload offset"]) * SECTOR,
                    volume_key=bytes.fromhex("".join(key_hex.split())))


def encrypt_xts_plain64(key: bytes, data: bytes, first_sector: int = 0) -> bytes:
    """``data`` (whole sectors) encrypted sector by sector as dm-crypt's aes-xts-plain64."""
    if len(data) % SECTOR:
        raise ValueError("the payload must be whole 512-byte sectors")
    out = bytearray()
    for index in range(len(data) // SECTOR):
        tweak = (first_sector + index).to_bytes(16, "little")
        encryptor = Cipher(algorithms.AES(key), modes.XTS(tweak)).encryptor()
        out += encryptor.update(data[index * SECTOR : (index + 1) * SECTOR])
        out += encryptor.finalize()
    return bytes(out)


def make_luks(path: Path, plain: Path, key_file: Path, *, version: int) -> LuksDump:
    """Write at ``path`` a LUKS ``version`` volume whose decrypted payload is ``plain``'s bytes,
    the payload encrypted HERE (aes-xts-plain64, 512-byte sectors) with the volume key that
    ``cryptsetup luksDump --dump-volume-key`` shows.

    Only for a plaintext cryptsetup refuses to encrypt offline: one that starts with a partition
    table ("already contains a 'dos' partition signature"; 2.6 has no option to go on). Every
    other test volume comes from :func:`encrypt_in_place`, which is what proves the decryption.
    """
    payload = plain.read_bytes()
    header_room = 16 << 20  # LUKS2's default metadata and key-slot area; LUKS1 needs less
    with path.open("wb") as handle:
        handle.truncate(header_room + len(payload))
    subprocess.run(["cryptsetup", "luksFormat", "--batch-mode", "--type", f"luks{version}",
                    "--cipher", "aes-xts-plain64", "--key-size", "512", "--hash", "sha256",
                    "--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000",
                    *(["--sector-size", str(SECTOR)] if version == 2 else []),
                    "--key-file", str(key_file), str(path)], check=True, capture_output=True)
    dump = luks_dump(path, key_file)
    if (dump.cipher, dump.mode) != ("aes", "xts-plain64"):
        raise ValueError(f"only aes-xts-plain64 is written, not {dump.cipher}-{dump.mode}")
    size = path.stat().st_size
    if dump.payload_offset + len(payload) > size:
        with path.open("r+b") as handle:
            handle.truncate(dump.payload_offset + len(payload))
    with path.open("r+b") as handle:
        handle.seek(dump.payload_offset)
        handle.write(encrypt_xts_plain64(dump.volume_key, payload))
    return dump


@dataclass(frozen=True)
class InPlace:
    """A volume whose header and payload cryptsetup wrote (``reencrypt --encrypt``)."""

    volume: Path
    payload_offset: int  #: bytes, as ``cryptsetup luksDump`` gives the data segment's offset
    plain_size: int  #: bytes of plaintext at the start of the decrypted volume


#: What cryptsetup says when this kernel cannot encrypt for it offline (no device-mapper, no
#: userspace crypto interface): the tests that need cryptsetup-written payloads skip, saying so.
_NO_OFFLINE = re.compile(r"kernel crypto|crypto (?:interface|backend)|device-mapper|dm-crypt|"
                         r"AF_ALG", re.IGNORECASE)


def _reencrypt(*args: str) -> None:
    """``cryptsetup reencrypt --encrypt --type luks2 --batch-mode ARGS``; a kernel that cannot
    serve it skips the test (any other failure is one)."""
    done = subprocess.run(["cryptsetup", "reencrypt", "--encrypt", "--type", "luks2",
                           "--batch-mode", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0 and _NO_OFFLINE.search(done.stderr):
        pytest.skip(f"cryptsetup cannot encrypt offline on this kernel: {done.stderr.strip()}")
    if done.returncode != 0:
        raise subprocess.CalledProcessError(done.returncode, done.args, done.stdout, done.stderr)


def encrypt_in_place(path: Path, plain: Path, key_file: Path, *, version: int,
                     options: tuple[str, ...] = (), kdf: tuple[str, ...] = (),
                     second_key: Path | None = None, reduce: int = 4 << 20,
                     trim: bool = True) -> InPlace:
    """Write at ``path`` a LUKS ``version`` volume whose decrypted payload starts with ``plain``.

    ``cryptsetup reencrypt --encrypt --reduce-device-size R`` needs no device-mapper on a file:
    cryptsetup itself writes the header in the first R/2 bytes and encrypts the data behind it.
    The plaintext's first ``size - R`` bytes become the decrypted volume's first bytes; the
    volume (what dm-crypt would map: from the data offset to the end of the file) is R/2 longer,
    and those last R/2 bytes hold no plaintext. So ``plain`` is copied whole, the file grown by
    R and, once encrypted, cut back to the data offset + ``plain``'s size (the data segment
    runs to the end of the device): the decrypted volume is then ``plain`` exactly, as if the
    partition had been that size. ``trim=False`` keeps the file whole. LUKS1 has no offline
    encryption here; its volumes are made as LUKS2 (PBKDF2, 512-byte
    sectors) and turned into LUKS1 by ``cryptsetup convert``, which rewrites only the header.
    ``key_file`` opens key slot 0; ``second_key`` (a file used whole), if given, key slot 1; both
    slots use the ``kdf`` options.
    """
    data = plain.read_bytes()
    path.write_bytes(data)
    with path.open("r+b") as handle:
        handle.truncate(len(data) + reduce)
    _reencrypt("--reduce-device-size", str(reduce), *kdf, *options, "--key-file",
               str(key_file), str(path))
    if second_key is not None:
        subprocess.run(["cryptsetup", "luksAddKey", "--batch-mode", *kdf, "--key-file",
                        str(key_file), str(path), str(second_key)], check=True,
                       capture_output=True)
    if version == 1:
        subprocess.run(["cryptsetup", "convert", "--batch-mode", "--type", "luks1", str(path)],
                       check=True, capture_output=True)
    dump = subprocess.run(["cryptsetup", "luksDump", str(path)], capture_output=True, text=True,
                          check=True).stdout
    pattern = (r"Payload offset:\s*(\d+)" if version == 1 else
               r"Data segments:\s*\n\s*0: crypt\s*\n\s*offset:\s*(\d+)")
    found = re.search(pattern, dump)
    if found is None:
        raise ValueError(f"luksDump shows no data offset:\n{dump}")
    offset = int(found.group(1)) * (SECTOR if version == 1 else 1)
    if trim:
        with path.open("r+b") as handle:
            handle.truncate(offset + len(data))
    return InPlace(path, offset, len(data))


def encrypt_detached(path: Path, plain: Path, header: Path, key_file: Path, *, version: int,
                     options: tuple[str, ...] = (), kdf: tuple[str, ...] = ()) -> None:
    """Write at ``path`` ``plain`` encrypted in place from its first byte, its LUKS header in
    the file ``header`` (``cryptsetup reencrypt --encrypt --header``; LUKS1 by ``cryptsetup
    convert`` of that header). The decrypted volume is ``plain`` exactly."""
    path.write_bytes(plain.read_bytes())
    _reencrypt("--header", str(header), *kdf, *options, "--key-file", str(key_file),
               str(path))
    if version == 1:
        subprocess.run(["cryptsetup", "convert", "--batch-mode", "--type", "luks1", str(header)],
                       check=True, capture_output=True)


def rewrite_luks2_json(volume: bytes, change: Callable[[dict], None], *,
                       copies: int = 2) -> bytes:
    """``volume`` with the JSON metadata of its first ``copies`` LUKS2 header copies changed by
    ``change`` and their checksums made right again: a crafted header, not a damaged one."""
    data = bytearray(volume)
    size = int.from_bytes(data[8:16], "big")
    for offset in (0, size)[:copies]:
        meta = json.loads(bytes(data[offset + 4096 : offset + size]).split(b"\0", 1)[0])
        change(meta)
        data[offset + 4096 : offset + size] = json.dumps(meta).encode().ljust(size - 4096, b"\0")
        fix_luks2_checksum(data, offset)
    return bytes(data)


def fix_luks2_checksum(data: bytearray, offset: int) -> None:
    """Recompute the checksum of the LUKS2 header copy at ``offset`` in place."""
    size = int.from_bytes(data[offset + 8 : offset + 16], "big")
    algorithm = bytes(data[offset + 72 : offset + 104]).split(b"\0", 1)[0].decode()
    data[offset + 448 : offset + 512] = bytes(64)
    digest = hashlib.new(algorithm, bytes(data[offset : offset + size])).digest()
    data[offset + 448 : offset + 448 + len(digest)] = digest
