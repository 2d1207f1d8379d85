"""Keys for encrypted volumes, held so that they cannot leak into output.

A :class:`VolumeKeys` carries what the analyst gave (a passphrase typed or read from a file, or a
key file) and says only *which kind* of key it is in its ``repr``, in JSON and in custody events.
The secret itself is handed to the decrypting library and nowhere else.

One passphrase serves every kind of volume: a LUKS passphrase, an APFS password, a BitLocker
password or, when it has that form (eight groups of six digits), a BitLocker recovery password. A
key file is a LUKS key file (used whole, as text) or a BitLocker startup key (a ``.BEK`` file, read
by libbde from its path).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from bitwitness.errors import InputError

#: A key file larger than this is not a key (cryptsetup's own default limit is 8 MiB).
MAX_KEY_FILE = 8 << 20


@dataclass(frozen=True)
class VolumeKeys:
    """The key material for encrypted volumes; ``kind`` is what may be recorded."""

    passphrase: str | None = field(default=None, repr=False)  #: None for a binary key file
    kind: str | None = None  #: "passphrase", "passphrase file", "key file", "prompt" or None
    key_file: Path | None = field(default=None, repr=False)  #: the --key-file given, if any
    key_data: bytes | None = field(default=None, repr=False)  #: its bytes, as read once
    fvek: bytes | None = field(default=None, repr=False)  #: a BitLocker volume's FVEK
    #: a LUKS header kept apart from its data (``cryptsetup --header``); not a key itself
    luks_header: Path | None = None

    @property
    def given(self) -> bool:
        return self.passphrase is not None or self.key_data is not None or self.fvek is not None

    def text(self, volume: str) -> str:
        """The passphrase for a reader that takes text (LUKS, APFS), or a one-line error."""
        if self.fvek is not None:
            raise InputError(f"{volume}: an FVEK opens only BitLocker volumes; give a "
                             "passphrase or key file")
        if self.passphrase is None:
            raise InputError(f"{volume}: the {self.kind} is not UTF-8 text; this reader takes "
                             "keys as text")
        return self.passphrase

    @property
    def startup_key(self) -> bool:
        """The key file is a BitLocker startup key (a BEK file: a metadata header, version 1)."""
        data = self.key_data or b""
        return (len(data) >= 48 and int.from_bytes(data[4:8], "little") == 1
                and int.from_bytes(data[8:12], "little") == 48)

    def __repr__(self) -> str:
        return f"VolumeKeys(kind={self.kind!r}, luks_header={self.luks_header!r})"


NO_KEYS = VolumeKeys()


def from_options(*, passphrase: str | None = None, passphrase_file: Path | None = None,
                 key_file: Path | None = None, prompted: str | None = None,
                 fvek_file: Path | None = None, luks_header: Path | None = None) -> VolumeKeys:
    """One key from the command line's options (at most one of them may be given).

    A passphrase file holds the passphrase on its first line (its line end is not part of it);
    a key file is used whole, as ``cryptsetup --key-file`` uses it; an FVEK file holds a
    BitLocker volume's Full Volume Encryption Key in hexadecimal. ``luks_header`` goes with
    any of them (or none: the volume is then shown locked).
    """
    keys = _one_key(passphrase=passphrase, passphrase_file=passphrase_file, key_file=key_file,
                    prompted=prompted, fvek_file=fvek_file)
    return keys if luks_header is None else replace(keys, luks_header=luks_header)


def _one_key(*, passphrase: str | None, passphrase_file: Path | None, key_file: Path | None,
             prompted: str | None, fvek_file: Path | None) -> VolumeKeys:
    given = [name for name, value in (("--passphrase", passphrase),
                                      ("--passphrase-file", passphrase_file),
                                      ("--key-file", key_file),
                                      ("--ask-passphrase", prompted),
                                      ("--fvek-file", fvek_file)) if value is not None]
    if len(given) > 1:
        raise InputError(f"give one key, not {' and '.join(given)}")
    if passphrase is not None:
        return VolumeKeys(passphrase, "passphrase")
    if prompted is not None:
        return VolumeKeys(prompted, "prompt")
    if passphrase_file is not None:
        text = _read_text(passphrase_file, "passphrase file")
        return VolumeKeys(text.splitlines()[0] if text else "", "passphrase file")
    if fvek_file is not None:
        from bitwitness.report.browse.bitlocker import parse_fvek

        return VolumeKeys(kind="FVEK file", fvek=parse_fvek(
            _read_text(fvek_file, "FVEK file"), str(fvek_file)))
    if key_file is not None:
        data = _read(key_file, "key file")
        try:
            decoded: str | None = data.decode("utf-8")
        except UnicodeDecodeError:
            decoded = None
        return VolumeKeys(decoded, "key file", key_file=key_file, key_data=data)
    return NO_KEYS


def _read_text(path: Path, what: str) -> str:
    try:
        return _read(path, what).decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{path}: the {what} is not UTF-8 text; the LUKS reader takes "
                         "keys as text") from None


def _read(path: Path, what: str) -> bytes:
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_KEY_FILE + 1)
    except OSError as exc:
        raise InputError(f"{path}: cannot read the {what}: {exc.strerror or exc}") from None
    if len(data) > MAX_KEY_FILE:
        raise InputError(f"{path}: a {what} larger than {MAX_KEY_FILE} bytes is not a key")
    return data
