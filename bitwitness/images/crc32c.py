"""CRC-32C (Castagnoli, reflected polynomial 0x82F63B78): the checksum MS-VHDX gives its headers,
region tables and log entries.

google-crc32c's C implementation (about 1 GiB/s) where it is installed, as it is with BitWitness:
a VHDX log of up to 1 GiB, and the hostile ones the search may checksum up to four times over,
take minutes at the pure-Python loop's 1-3 MiB/s. The pure-Python version stays (below) for a
platform without the wheel, and as what the tests compare both with.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache

# The table and the zero-run operators below are made on first use, not on import: only the
# pure-Python path reads them, and making them cost ~7 ms of every process that imports this
# module (the btrfs and VHDX readers), google-crc32c's C code present or not.


@cache
def crc_table() -> tuple[int, ...]:
    """The byte-at-a-time table of the reflected polynomial."""
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return tuple(table)


def _crc_bytes(crc: int, data: bytes) -> int:
    table = crc_table()
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc


def _apply(operator: tuple[int, ...], crc: int) -> int:
    """``operator`` (32 columns over GF(2)) applied to the 32-bit CRC register ``crc``."""
    out, bit = 0, 0
    while crc:
        if crc & 1:
            out ^= operator[bit]
        crc >>= 1
        bit += 1
    return out


@cache
def _zero_operators() -> list[tuple[int, ...]]:
    """What 1, 2, 4, ... 2^47 zero bytes do to the CRC register: feeding a zero byte is
    linear over GF(2) (the table is), so each is a 32x32 bit matrix, the next the square of
    the one before."""
    one = tuple(_crc_bytes(1 << bit, b"\0") for bit in range(32))
    operators = [one]
    for _ in range(47):
        last = operators[-1]
        operators.append(tuple(_apply(last, column) for column in last))
    return operators


#: Zero runs at least this long are skipped with the operators instead of fed byte by byte.
_ZERO_RUN = re.compile(rb"\x00{64,}")


def crc32c_python_update(crc: int, data: bytes) -> int:
    """The CRC-32C of what ``crc`` covered followed by ``data`` (``crc`` 0 to begin), so that
    a structure too large to hold (a VHDX log entry of up to the log's length) is checksummed
    a piece at a time, as ``zlib.crc32(data, value)`` does.

    Byte by byte through a table, except runs of zeros, which are applied in O(log n) as
    matrices: a 64 KiB region table is a few hundred bytes of entries and zero padding, and
    ``verify`` and every fuzzed input check four such structures."""
    crc, pos = crc ^ 0xFFFFFFFF, 0
    operators = _zero_operators()
    for run in _ZERO_RUN.finditer(data):
        crc = _crc_bytes(crc, data[pos:run.start()])
        length, power = run.end() - run.start(), 0
        while length:
            if length & 1:
                crc = _apply(operators[power], crc)
            length >>= 1
            power += 1
        pos = run.end()
    return _crc_bytes(crc, data[pos:]) ^ 0xFFFFFFFF


def _c_extend() -> Callable[[int, bytes], int] | None:
    """google-crc32c's ``extend`` when its C code is there (its own fallback is a pure-Python
    loop too)."""
    try:
        import google_crc32c
    except ImportError:  # pragma: no cover - installed with BitWitness
        return None
    if google_crc32c.implementation != "c":  # pragma: no cover
        return None
    extend: Callable[[int, bytes], int] = google_crc32c.extend
    return extend


_C_EXTEND = _c_extend()


def crc32c_update(crc: int, data: bytes) -> int:
    """:func:`crc32c_python_update`, through google-crc32c's C code where it is installed."""
    if _C_EXTEND is not None:
        return int(_C_EXTEND(crc, data))
    return crc32c_python_update(crc, data)


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli), as VHDX checksums its headers, region tables and log entries."""
    return crc32c_update(0, data)
