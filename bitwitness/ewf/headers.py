"""The ``header2`` and ``header`` sections: case metadata as tab-separated text
(docs/EWF.md §4; the § numbers below refer to that file).

The writer emits exactly what ewfacquire writes for EnCase 6 (13 keys with ``md`` sixth, which is
how libewf recognises EnCase 6); the reader accepts the other producers' variants (FTK's ``r``
key, EnCase 4/5's ``av`` sixth, linen's header-only form) and reports values under libewf's
names, so that ours and pyewf's can be compared one to one.
"""

from __future__ import annotations

import contextlib
import re
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from enum import StrEnum

from bitwitness import host

#: header2 main-category keys written for EnCase 6, in order (§4.1).
HEADER2_KEYS = ("a", "c", "n", "e", "t", "md", "sn", "av", "ov", "m", "u", "p", "dc")
#: header (ASCII) keys, in their own order (§4.2).
HEADER_KEYS = ("c", "n", "a", "e", "t", "av", "ov", "m", "u", "p")

#: libewf's names for the header keys (what pyewf's get_header_value takes).
KEY_NAMES = {
    "a": "description", "c": "case_number", "n": "evidence_number", "e": "examiner_name",
    "t": "notes", "md": "model", "sn": "serial_number", "av": "acquiry_software_version",
    "ov": "acquiry_operating_system", "m": "acquiry_date", "u": "system_date",
    "p": "password", "r": "compression_level", "l": "device_label", "pid": "process_identifier",
    "dc": "unknown_dc", "ext": "extents",
}

_SRCE_SUB = (
    "srce\n0\t1\np\tn\tid\tev\ttb\tlo\tpo\tah\tgu\taq\n0\t0\n\t\t\t\t\t-1\t-1\t\t\t\n\n"
    "sub\n0\t1\np\tn\tid\tnu\tco\tgu\n0\t0\n\t\t\t\t1\t\n\n"
)
#: EnCase's limits (§4.1): free text 2999 characters, av 11, ov 23.
TEXT_LIMIT = 2999


class MediaType(StrEnum):
    """Media type byte of the volume section."""

    FIXED = "fixed"
    REMOVABLE = "removable"
    OPTICAL = "optical"
    MEMORY = "memory"


@dataclass(frozen=True)
class EwfMetadata:
    """What goes into header/header2: the case fields an examiner types, plus provenance."""

    case_number: str = ""
    evidence_number: str = ""
    description: str = ""
    examiner: str = ""
    notes: str = ""
    model: str = ""
    serial: str = ""
    acquired: datetime | None = None  #: UTC; ``None`` means now
    software_version: str = ""  #: default: BitWitness version (max 11 characters)
    operating_system: str = ""  #: default: the system's name, ``Linux`` (max 23 characters)


def _clean(value: str, limit: int = TEXT_LIMIT) -> str:
    """The format cannot escape TAB/CR/LF inside a value: they become spaces."""
    for ch in "\t\r\n":
        value = value.replace(ch, " ")
    return value[:limit]


def _software_version() -> str:
    from bitwitness import __version__

    return str(__version__)


def header_fields(meta: EwfMetadata) -> dict[str, str]:
    """The key -> value mapping shared by header2 and header, cleaned and defaulted."""
    acquired = meta.acquired or datetime.now(UTC)
    if acquired.tzinfo is None:
        acquired = acquired.replace(tzinfo=UTC)
    stamp = str(int(acquired.timestamp()))
    return {
        "a": _clean(meta.description), "c": _clean(meta.case_number),
        "n": _clean(meta.evidence_number), "e": _clean(meta.examiner), "t": _clean(meta.notes),
        "md": _clean(meta.model), "sn": _clean(meta.serial),
        "av": _clean(meta.software_version or _software_version(), 11),
        "ov": _clean(meta.operating_system or host.system_name(), 23),
        "m": stamp, "u": stamp, "p": "0", "dc": "",
    }


def header2_text(fields: dict[str, str]) -> bytes:
    """UTF-16LE with BOM and LF line ends, three categories (§4.1); not yet compressed."""
    text = (
        "3\nmain\n" + "\t".join(HEADER2_KEYS) + "\n"
        + "\t".join(fields[k] for k in HEADER2_KEYS) + "\n\n" + _SRCE_SUB
    )
    return b"\xff\xfe" + text.encode("utf-16-le")


def header_text(fields: dict[str, str]) -> bytes:
    """ASCII/cp1252 with CRLF, EnCase key order, dates as ``YYYY M D h m s`` (§4.2)."""
    when = datetime.fromtimestamp(int(fields["m"]), UTC)
    date = f"{when.year} {when.month} {when.day} {when.hour} {when.minute} {when.second}"
    values = {**fields, "m": date, "u": date}
    text = (
        "1\r\nmain\r\n" + "\t".join(HEADER_KEYS) + "\r\n"
        + "\t".join(values[k] for k in HEADER_KEYS) + "\r\n\r\n"
    )
    return text.encode("cp1252", "replace")


def compress_header(text: bytes) -> bytes:
    """Header sections are one zlib stream at the default level, as ewfacquire writes them."""
    return zlib.compress(text, 6)


# --- reading ---------------------------------------------------------------------------------


def decode_header_text(raw: bytes) -> str:
    """Text of a decompressed header2 (UTF-16 with BOM) or header (cp1252) body."""
    if raw.startswith(b"\xff\xfe"):
        return raw[2:].decode("utf-16-le", "replace")
    if raw.startswith(b"\xfe\xff"):
        return raw[2:].decode("utf-16-be", "replace")
    return raw.decode("cp1252", "replace")


def parse_header(text: str) -> dict[str, str]:
    """Key -> value of the ``main`` category (raw values, dates not yet converted).

    A value may hold a line break (ewfacquire writes a description typed over two lines as it
    is): ``header`` ends its lines with CR LF, so a bare LF is part of a value; ``header2`` ends
    them with LF, and its values run on to the blank line that ends the category. Read a line
    at a time, such a header gave the first line of the description and lost every field after
    it (case and evidence numbers, examiner, notes, dates), as libewf loses all but the first
    three."""
    separator = "\r\n" if "\r\n" in text else "\n"
    lines = text.split(separator)
    for i, line in enumerate(lines):
        if line.strip() == "main" and i + 2 < len(lines):
            keys = lines[i + 1].split("\t")
            end = i + 2  # the values go on while they have fewer fields than the keys
            tabs = lines[end].count("\t")
            while tabs < len(keys) - 1 and end + 1 < len(lines) and lines[end + 1] != "":
                end += 1
                tabs += lines[end].count("\t")
            values = separator.join(lines[i + 2:end + 1]).split("\t")
            return {k.strip(): (values[j] if j < len(values) else "")
                    for j, k in enumerate(keys) if k.strip()}
    raise ValueError("no 'main' category in header text")


#: Keys ``header_values`` adds beside each date it holds (``acquiry_date`` ->
#: ``acquiry_date_stored``, ``acquiry_date_zone``); not libewf names, so that the libewf-named
#: values stay what pyewf gives.
STORED_SUFFIX = "_stored"
ZONE_SUFFIX = "_zone"
#: The ``_zone`` of a date stored as the acquiring machine's local wall-clock time without a
#: zone (docs/EWF.md §4.2): the instant cannot be known, so no offset is invented.
UNKNOWN_ZONE = "unknown"
#: The date values, by libewf name.
DATE_NAMES = ("acquiry_date", "system_date")
#: A zone a writer put after the six numbers that says the offset itself (``+0100``,
#: ``-05:00``, ``UTC``, ``GMT``, ``Z``); a name such as ``EST`` is kept as recorded, never
#: converted (abbreviations are ambiguous: ``CST`` is US, Chinese or Cuban time).
_OFFSET = re.compile(r"^(?:(?P<utc>UTC|GMT|Z)|(?P<sign>[+-])(?P<hh>\d\d):?(?P<mm>\d\d))$",
                     re.IGNORECASE)


def date_zone(value: str) -> str:
    """The zone a stored header date is in: ``UTC`` for POSIX seconds (header2, and linen's
    header), the writer's own token after ``YYYY M D h m s`` where there is one, else
    :data:`UNKNOWN_ZONE` (``header`` sections: the acquiring machine's local time, §4.2)."""
    parts = value.split()
    if len(parts) == 1 and parts[0].isdigit():
        return "UTC"
    if len(parts) > 6:
        return " ".join(parts[6:])
    return UNKNOWN_ZONE


def _fixed_offset(zone: str) -> timezone | None:
    """The offset a zone token states by itself, or None (a name, or unknown)."""
    found = _OFFSET.match(zone)
    if found is None:
        return None
    if found.group("utc"):
        return UTC
    minutes = int(found.group("hh")) * 60 + int(found.group("mm"))
    if minutes >= 24 * 60:
        return None
    return timezone(timedelta(minutes=-minutes if found.group("sign") == "-" else minutes))


def _date_value(value: str) -> str:
    """Render a header date like libewf: ``Thu Jul 22 15:33:18 2021``.

    header2 dates are POSIX seconds (shown in UTC here); header dates are ``YYYY M D h m s`` in the
    acquiring machine's local time, shown as written (:func:`date_zone` says which).
    """
    parts = value.split()
    try:
        if len(parts) == 1:
            when = datetime.fromtimestamp(int(parts[0]), UTC)
        elif len(parts) >= 6:
            year, month, day, hour, minute, second = (int(p) for p in parts[:6])
            when = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
        else:
            return value
    except (ValueError, OverflowError, OSError):
        return value
    return when.strftime("%a %b ") + f"{when.day:2d}" + when.strftime(" %H:%M:%S %Y")


def header_values(fields: dict[str, str]) -> dict[str, str]:
    """libewf-named values; empty values, the password hash and unknown keys are left out."""
    out: dict[str, str] = {}
    for key, value in fields.items():
        name = KEY_NAMES.get(key)
        if name is None or name in ("password", "unknown_dc") or value == "":
            continue
        if key in ("m", "u"):
            out[name] = _date_value(value)
            out[name + STORED_SUFFIX] = value
            out[name + ZONE_SUFFIX] = date_zone(value)
        else:
            out[name] = value
    return out


def acquired_time(fields: dict[str, str]) -> datetime | None:
    """Acquisition time as UTC when the header stores an instant (POSIX seconds, or the six
    numbers followed by an offset the writer recorded), else ``None``: a local wall-clock time
    of an unknown zone is no instant."""
    value = fields.get("m", "").strip()
    if value.isdigit():
        with contextlib.suppress(ValueError, OverflowError, OSError):
            return datetime.fromtimestamp(int(value), UTC)
        return None
    parts = value.split()
    offset = _fixed_offset(date_zone(value)) if len(parts) > 6 else None
    if offset is None:
        return None
    with contextlib.suppress(ValueError, OverflowError):
        year, month, day, hour, minute, second = (int(p) for p in parts[:6])
        return datetime(year, month, day, hour, minute, second, tzinfo=offset).astimezone(UTC)
    return None


def format_name(header2: dict[str, str] | None, header: dict[str, str] | None,
                header_style: str = "", *, smart: bool = False) -> str:
    """Which writer profile the headers look like, named as ``ewfacquire -f`` names them.

    With a header2: EnCase 4 to 7 by its keys. Without one, the ``header`` section's own form
    says (``header_style``: its first line and line end, e.g. ``"1\\r\\n"``): category count 3 is
    linen's (``md``/``sn`` keys: linen 6); CR LF is EnCase's (no ``av`` key: EnCase 1, else
    EnCase 2/3, which write the same header); LF with a SMART volume is SMART (no ``av``: the
    original ``ewf``), else FTK Imager's."""
    if header2 is not None:
        keys = list(header2)
        sixth = keys[5] if len(keys) > 5 else ""
        if "l" in keys:
            return "encase7"
        if sixth == "av":
            return "encase5" if "dc" in keys else "encase4"
        return "encase6" if sixth == "md" else "encase"
    if header is None:
        return "smart" if smart else "ewf"
    return _header_profile(list(header), header_style, smart=smart)


def _header_profile(keys: list[str], style: str, *, smart: bool) -> str:
    """:func:`format_name` for a set whose only header is a ``header`` section."""
    if style.startswith("3"):
        return "linen6" if "md" in keys else "linen5"
    if style.endswith("\r\n"):
        return "encase2" if "av" in keys else "encase1"
    if smart:
        return "smart" if "av" in keys else "ewf"
    return "ftk" if "r" in keys else "encase"
