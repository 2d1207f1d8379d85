"""Segment file names: ``x.E01`` ... ``x.E99``, then ``x.EAA`` ... ``x.ZZZ`` (docs/EWF.md §2.2).

Sorting the names in plain ASCII order gives the segment order. The reader does not trust names
alone: it orders segments by the number in each file header and requires 1..N without gaps.
"""

from __future__ import annotations

import re
from pathlib import Path

from bitwitness.errors import UsageError

#: The last segment number a name exists for (``.ZZZ``), as libewf.
MAX_SEGMENTS = 14_971

_SUFFIX = re.compile(r"^\.([E-Ze-z])([0-9A-Za-z]{2})$")


def segment_suffix(number: int) -> str:
    """Extension (with the dot) of segment ``number`` (1-based), upper case."""
    if not 1 <= number <= MAX_SEGMENTS:
        raise UsageError(f"segment number {number} is outside 1..{MAX_SEGMENTS} (.E01 .. .ZZZ); "
                         "choose a larger segment size")
    if number <= 99:
        return f".E{number:02d}"
    k = number - 100
    first = chr(ord("E") + k // 676)
    return f".{first}{chr(ord('A') + (k // 26) % 26)}{chr(ord('A') + k % 26)}"


def segment_path(base: Path, number: int) -> Path:
    """``base`` ``x`` (or ``x.E01``) -> ``x.E01`` for 1, ``x.EAA`` for 100, ... ."""
    base = Path(base)
    if suffix_number(base.suffix) is not None:
        base = base.with_suffix("")
    return base.with_name(base.name + segment_suffix(number))


def suffix_number(suffix: str) -> int | None:
    """Segment number an extension stands for (``.e02`` -> 2, ``.EAB`` -> 101), else ``None``."""
    m = _SUFFIX.match(suffix)
    if not m:
        return None
    first, rest = m.group(1).upper(), m.group(2).upper()
    if rest.isdigit():
        return int(rest) if first == "E" and int(rest) > 0 else None
    if not rest.isalpha():
        return None
    k = (ord(first) - ord("E")) * 676 + (ord(rest[0]) - 65) * 26 + (ord(rest[1]) - 65)
    return 100 + k


def set_members(path: Path) -> dict[int, Path]:
    """Files next to ``path`` that share its stem and carry a segment extension, by number."""
    path = Path(path)
    stem = path.with_suffix("").name if suffix_number(path.suffix) is not None else path.name
    upper = path.suffix[1:].isupper() if suffix_number(path.suffix) is not None else True
    members: dict[int, Path] = {}
    if not path.parent.is_dir():
        return members
    for candidate in path.parent.glob(f"{_glob_escape(stem)}.*"):
        if candidate.with_suffix("").name != stem:
            continue
        if candidate.suffix[1:].isupper() != upper:
            continue  # x.E01 and x.vhd: the case of the extensions tells the set apart
        number = suffix_number(candidate.suffix)
        if number is not None and candidate.is_file():
            members.setdefault(number, candidate)
    return members


def _glob_escape(text: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", text)
