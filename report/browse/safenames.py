"""Turning names found in evidence into names that are safe to create on the examiner's host.

A name inside an image is data chosen by whoever made the image: it may be ``..``, hold ``/``,
``\\`` or NUL, be ``CON`` or 300 bytes long. Exported files must land inside the export folder
and survive a copy to any common host, so every unsafe character is escaped as ``%XX`` (``%``
itself too, which keeps the mapping reversible and collision-free); only over-long names lose
information, and they get a hash of the full name to stay distinct.
"""

from __future__ import annotations

import re

#: What :func:`safe_name` escapes anywhere in a name: path separators, the characters Windows
#: forbids, the escape itself, C0 controls, DEL and surrogates (undecodable bytes and lone
#: halves).
_TO_ESCAPE = re.compile(r'[%/\\<>:"|?*\x00-\x1f\x7f\ud800-\udfff]')
#: Windows device names, unusable as a file name base on Windows whatever the extension.
_RESERVED = re.compile(r"^(CON|PRN|AUX|NUL|COM[0-9¹²³]|LPT[0-9¹²³]|CONIN\$|CONOUT\$)(\.|$)",
                       re.IGNORECASE)
#: The longest name (in UTF-8 bytes) most host file systems accept.
MAX_NAME_BYTES = 255


def _escape_char(char: str) -> str:
    if 0xDC80 <= ord(char) <= 0xDCFF:  # an undecodable byte kept as a surrogate escape
        return f"%{ord(char) - 0xDC00:02X}"
    return "".join(f"%{b:02X}" for b in char.encode("utf-8"))


def safe_name(name: str) -> str:
    """One path component that creates exactly one plain entry inside its parent folder."""
    if _TO_ESCAPE.search(name) is None:  # most names: a regular expression, not a loop
        out = name
    else:
        out = "".join(_escape_char(c) if _TO_ESCAPE.match(c) else c for c in name)
    if out in ("", ".", ".."):
        out = "".join(_escape_char(c) for c in out) if out else "%00"
    if _RESERVED.match(out):
        out = _escape_char(out[0]) + out[1:]
    if out[-1] in ". ":  # Windows silently drops trailing dots and spaces
        out = out[:-1] + _escape_char(out[-1])
    return _shorten(out, name)


def _shorten(escaped: str, original: str) -> str:
    data = escaped.encode("utf-8")
    if len(data) <= MAX_NAME_BYTES:
        return escaped
    import hashlib  # here: only names too long to write need it, and every listing imports us

    digest = hashlib.sha256(original.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    suffix = f"~{digest}"
    keep = data[: MAX_NAME_BYTES - len(suffix)].decode("utf-8", "ignore")
    if keep.endswith("%") or keep[-2:-1] == "%":  # do not cut an escape in half
        keep = keep[: keep.rfind("%")]
    return keep + suffix


def safe_relative(parts: list[str]) -> str:
    """``["a", "..", "b:c"]`` -> ``a/%2E%2E/b%3Ac``: a relative host path, one component per name.

    Takes the components, never a joined path: a name may itself contain ``/``.
    """
    return "/".join(safe_name(part) for part in parts)


def is_exact(name: str) -> bool:
    """True when ``name`` holds no undecodable byte (it is valid UTF-8 as stored)."""
    return name.isascii() or _UNDECODED.search(name) is None


#: A byte that is not UTF-8, kept as a surrogate escape
_UNDECODED = re.compile("[\udc80-\udcff]")


def raw_bytes(name: str) -> bytes:
    """The bytes of a name as the file system stored them (undecodable bytes included)."""
    return name.encode("utf-8", "surrogateescape")


def escaped(name: str) -> str:
    """``name`` with each byte that is not UTF-8 as ``\\xNN`` (JSON and CSV forms of a name)."""
    if is_exact(name):
        return name
    return "".join(f"\\x{ord(c) - 0xDC00:02x}" if 0xDC80 <= ord(c) <= 0xDCFF else c
                   for c in name)


def spellings(name: str) -> set[str]:
    """The ways our outputs print ``name``, each of which names it back in a path: ``shown``
    (``ls``, lossy for control characters), ``escaped`` (JSON, CSV) and ``safe_name`` (export
    targets: ``%XX``, reversible, and the only one for a ``/`` inside a name, ``.``, ``..``
    and an empty name)."""
    return {shown(name), escaped(name), safe_name(name)}


def shown(name: str) -> str:
    """A name for a terminal or a text report: one line, no control sequence, bytes kept.

    Control characters become ``^`` as The Sleuth Kit prints them (so lines compare with
    ``fls``); bytes that are not UTF-8 become ``\\xNN``; C1 controls and bidirectional overrides,
    which a terminal would act on, become ``\\uNNNN``. Exact bytes are in the JSON forms.

    Why a regular expression and a fast path: ``ls -r`` calls this once per entry, and a loop
    over each character cost more than all of TSK's own work on a large listing; nearly every
    name is printable ASCII and comes back unchanged.
    """
    if name.isascii() and name.isprintable():  # printable ASCII: 0x20-0x7E, nothing to change
        return name
    return _NOT_SHOWN.sub(_shown_char, name)


#: The characters :func:`shown` replaces: C0 controls, DEL and C1 controls, the bidirectional
#: embeddings, overrides and isolates, and surrogates (undecodable bytes and lone halves).
_NOT_SHOWN = re.compile(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def _shown_char(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code < 0x20 or code == 0x7F:
        return "^"
    if 0xDC80 <= code <= 0xDCFF:
        return f"\\x{code - 0xDC00:02x}"
    return f"\\u{code:04x}"
