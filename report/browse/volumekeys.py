"""Keys for encrypted volumes, held so that they cannot leak into output.

A :class:`VolumeKeys` carries what the analyst gave (a passphrase typed or read from a file, or a
key file) and says only *which kind* of key it is in its ``repr``, in JSON and in custody events.
The secret itself is handed to the decrypting library and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from bitwitness.errors import InputError

#: A key file larger than this is not a key (cryptsetup's own default limit is 8 MiB).
MAX_KEY_FILE = 8 << 20


@dataclass(frozen=True)
class VolumeKeys:
    """The key material for encrypted volumes; ``kind`` is what may be recorded."""

    passphrase: str | None = field(default=None, repr=False)
    kind: str | None = None  #: "passphrase", "passphrase file", "key file", "prompt" or None

    @property
    def given(self) -> bool:
        return self.passphrase is not None

    def __repr__(self) -> str:
        return f"VolumeKeys(kind={self.kind!r})"


NO_KEYS = VolumeKeys()


def from_options(*, passphrase: str | None = None, passphrase_file: Path | None = None,
                 key_file: Path | None = None, prompted: str | None = None) -> VolumeKeys:
    """One key from the command line's options (at most one of them may be given).

    A passphrase file holds the passphrase on its first line (its line end is not part of it);
    a key file is used whole, as ``cryptsetup --key-file`` uses it.
    """
    given = [name for name, value in (("--passphrase", passphrase),
                                      ("--passphrase-file", passphrase_file),
                                      ("--key-file", key_file),
                                      ("--ask-passphrase", prompted)) if value is not None]
    if len(given) > 1:
        raise InputError(f"give one key, not {' and '.join(given)}")
    if passphrase is not None:
        return VolumeKeys(passphrase, "passphrase")
    if prompted is not None:
        return VolumeKeys(prompted, "prompt")
    if passphrase_file is not None:
        text = _read_text(passphrase_file, "passphrase file")
        return VolumeKeys(text.splitlines()[0] if text else "", "passphrase file")
    if key_file is not None:
        return VolumeKeys(_read_text(key_file, "key file"), "key file")
    return NO_KEYS


def _read_text(path: Path, what: str) -> str:
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_KEY_FILE + 1)
    except OSError as exc:
        raise InputError(f"{path}: cannot read the {what}: {exc.strerror or exc}") from None
    if len(data) > MAX_KEY_FILE:
        raise InputError(f"{path}: a {what} larger than {MAX_KEY_FILE} bytes is not a key")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{path}: the {what} is not UTF-8 text; the LUKS reader takes "
                         "keys as text") from None
