"""Human sizes on the command line: ``512``, ``640MB``, ``1.4GiB``, ``2G``.

Decimal suffixes (kB, MB, GB, TB) are powers of 1000 and binary ones (KiB, MiB, GiB, TiB) powers
of 1024, as the IEC says. A bare letter (``K``, ``M``, ``G``, ``T``) means binary, as dd, split
and ewfacquire read it. Fractions are allowed and rounded down to a whole byte.
"""

from __future__ import annotations

import re

from bitwitness.errors import UsageError

_UNITS: dict[str, int] = {
    "": 1,
    "b": 1,
    "k": 1024,
    "kb": 1000,
    "kib": 1024,
    "m": 1024**2,
    "mb": 1000**2,
    "mib": 1024**2,
    "g": 1024**3,
    "gb": 1000**3,
    "gib": 1024**3,
    "t": 1024**4,
    "tb": 1000**4,
    "tib": 1024**4,
    "p": 1024**5,
    "pb": 1000**5,
    "pib": 1024**5,
}

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?|\.\d+)\s*([A-Za-z]*)\s*$")


def parse_size(text: str | int) -> int:
    """Return the number of bytes ``text`` names; raise :class:`UsageError` when it names none."""
    if isinstance(text, int):
        if text < 0:
            raise UsageError(f"size must not be negative: {text}")
        return text
    match = _SIZE.match(text)
    if not match:
        raise UsageError(f"not a size: {text!r} (examples: 512, 640MB, 1.4GiB, 2G)")
    number, unit = match.groups()
    factor = _UNITS.get(unit.lower())
    if factor is None:
        raise UsageError(f"unknown size unit {unit!r} in {text!r} (use B, K, M, G, kB, MiB...)")
    if number.isdigit():
        return int(number) * factor
    # a fraction (1.4GiB) is computed exactly in decimal; imported only then (~2.5 ms)
    from decimal import Decimal, InvalidOperation

    try:
        return int(Decimal(number) * factor)
    except InvalidOperation as exc:  # pragma: no cover - the regex admits only decimals
        raise UsageError(f"not a size: {text!r}") from exc


def format_size(n: int) -> str:
    """Short binary rendering for people (``1.5 GiB``); exact byte counts go in logs."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{n} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"  # pragma: no cover
