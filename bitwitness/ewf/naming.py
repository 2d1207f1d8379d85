"""Segment file names: ``x.E01`` ... ``x.E99``, then ``x.EAA`` ... ``x.ZZZ`` (docs/EWF.md §2.2);
SMART (EWF-S01) sets the same way from ``x.s01``: ``.s99``, ``.saa`` ... ``.zzz`` (§12).

Sorting the names in plain ASCII order gives the segment order. The reader does not trust names
alone: it orders segments by the number in each file header and requires 1..N without gaps.
Which family a name belongs to is decided once per set (:func:`family`): ``.SAB`` is segment 101
of a SMART set and segment 9565 of an E01 set, and only the set's first segment tells them apart.
"""

from __future__ import annotations

import re
from pathlib import Path

from bitwitness.errors import UsageError

#: The family letters: E01 sets (EnCase, ours) and SMART sets (EWF-S01).
E01 = "E"
SMART = "S"
#: The last segment number a name exists for (``.ZZZ``), as libewf.
MAX_SEGMENTS = 14_971
#: The last SMART name is ``.zzz`` too, but the letters start at ``s``: 99 + 8 x 676.
MAX_SMART_SEGMENTS = 5_507

_SUFFIX = re.compile(r"^\.([E-Ze-z])([0-9A-Za-z]{2})$")


def segment_suffix(number: int, kind: str = E01) -> str:
    """Extension (with the dot) of segment ``number`` (1-based): upper case for E01 (as we
    write), lower case for SMART (as ewfacquire writes)."""
    last = MAX_SMART_SEGMENTS if kind == SMART else MAX_SEGMENTS
    if not 1 <= number <= last:
        names = ".s01 .. .zzz" if kind == SMART else ".E01 .. .ZZZ"
        raise UsageError(f"segment number {number} is outside 1..{last} ({names}); "
                         "choose a larger segment size")
    if number <= 99:
        return f".s{number:02d}" if kind == SMART else f".E{number:02d}"
    k = number - 100
    first = chr(ord(kind) + k // 676)
    name = f".{first}{chr(ord('A') + (k // 26) % 26)}{chr(ord('A') + k % 26)}"
    return name.lower() if kind == SMART else name


def family(path: Path) -> str:
    """:data:`SMART` when ``path`` names a SMART set (``.s01``..``.s99``, or a letter name whose
    stem has a ``.s01`` and no ``.E01``), else :data:`E01`."""
    suffix = Path(path).suffix
    m = _SUFFIX.match(suffix)
    if m is None:
        return E01
    if m.group(2).isdigit():
        return SMART if m.group(1) in "sS" else E01
    if m.group(1).upper() < SMART:
        return E01
    stem = Path(path).with_suffix("")
    if any(stem.with_name(stem.name + s).exists() for s in (".E01", ".e01")):
        return E01
    smart = any(stem.with_name(stem.name + s).exists() for s in (".s01", ".S01"))
    return SMART if smart else E01


def segment_path(base: Path, number: int, kind: str = E01) -> Path:
    """``base`` ``x`` (or ``x.E01``) -> ``x.E01`` for 1, ``x.EAA`` for 100, ... ; with
    ``kind=SMART`` ``x`` (or ``x.s01``) gives ``x.s01``, ``x.saa``, ... in the case it is given.
    Writers name E01 sets only; readers pass the set's :func:`family`."""
    base = Path(base)
    upper = False
    if suffix_number(base.suffix, kind) is not None:
        upper = base.suffix[1:].isupper()
        base = base.with_suffix("")
    suffix = segment_suffix(number, kind)
    if kind == SMART and upper:
        suffix = suffix.upper()
    return base.with_name(base.name + suffix)


def suffix_number(suffix: str, kind: str = E01) -> int | None:
    """Segment number an extension stands for in family ``kind`` (``.e02`` -> 2, ``.EAB`` ->
    101; SMART: ``.s02`` -> 2, ``.sab`` -> 101), else ``None``."""
    m = _SUFFIX.match(suffix)
    if not m:
        return None
    first, rest = m.group(1).upper(), m.group(2).upper()
    if rest.isdigit():
        return int(rest) if first == kind and int(rest) > 0 else None
    if not rest.isalpha() or first < kind:
        return None
    k = (ord(first) - ord(kind)) * 676 + (ord(rest[0]) - 65) * 26 + (ord(rest[1]) - 65)
    return 100 + k


def set_members(path: Path) -> dict[int, Path]:
    """Files next to ``path`` that share its stem and carry a segment extension of its family
    (:func:`family`), by number."""
    path = Path(path)
    kind = family(path)
    numbered = suffix_number(path.suffix, kind) is not None
    stem = path.with_suffix("").name if numbered else path.name
    upper = path.suffix[1:].isupper() if numbered else kind == E01
    members: dict[int, Path] = {}
    if not path.parent.is_dir():
        return members
    for candidate in path.parent.glob(f"{_glob_escape(stem)}.*"):
        if candidate.with_suffix("").name != stem:
            continue
        if candidate.suffix[1:].isupper() != upper:
            continue  # x.E01 and x.vhd: the case of the extensions tells the set apart
        number = suffix_number(candidate.suffix, kind)
        if number is not None and candidate.is_file():
            members.setdefault(number, candidate)
    return members


def _glob_escape(text: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", text)
