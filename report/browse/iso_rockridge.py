"""SUSP (IEEE P1281) and Rock Ridge (RRIP, IEEE P1282) fields of ISO 9660 directory records,
read by our own code from the two specifications: what names, types, modes, owners, times and
link targets the files of a Linux-made ISO really have, which The Sleuth Kit ignores.

A record's System Use area is a list of entries (two signature bytes, a length, a version);
a ``CE`` entry says where the list goes on (block, offset, length) once this area ends. The
chain is followed with bounds: at most :data:`MAX_CONTINUATIONS` areas, :data:`MAX_SU_BYTES`
bytes in all, never the same area twice, never outside the image; names and link targets are
at most :data:`MAX_NAME` / :data:`MAX_LINK` bytes. Past a bound, or on a piece whose
continuation never comes, the record is refused with a one-line
:class:`~bitwitness.errors.FileSystemError` naming it: a hostile image costs bounded time and
memory, and nothing half-read is shown as if it were whole.
"""

from __future__ import annotations

import stat as statmod
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from bitwitness.errors import FileSystemError

#: System Use areas one record may chain through CE entries (a 255-byte name needs one)
MAX_CONTINUATIONS = 64
#: bytes of System Use data one record may have, its own and its continuation areas'
MAX_SU_BYTES = 1 << 20
#: longest Rock Ridge name accepted (Linux allows 255 bytes; other systems somewhat more)
MAX_NAME = 4096
#: longest symbolic link target accepted (PATH_MAX)
MAX_LINK = 4096
#: extension identifiers an ER entry gives for Rock Ridge (RRIP 1.09, 1.10, 1.12)
RRIP_IDS = (b"RRIP_1991A", b"IEEE_P1282", b"IEEE_1282")
#: entries that only Rock Ridge writes (RRIP 1.09 "RR" included)
RRIP_SIGNATURES = (b"PX", b"PN", b"SL", b"NM", b"CL", b"PL", b"RE", b"TF", b"SF", b"RR")
_SECTOR = 2048
_QUARTER = timedelta(minutes=15)
#: TF flag bits, in the order their stamps follow one another
_TF_ORDER = ("created", "modified", "accessed", "attributes", "backup", "expires", "effective")
_TF_LONG = 0x80

#: reads ``size`` bytes at a byte offset of the volume (b"" or fewer bytes past its end)
ReadAt = Callable[[int, int], bytes]


@dataclass(slots=True)
class RockRidge:
    """What the Rock Ridge entries of one record say (None: the entry is absent)."""

    name: bytes | None = None
    mode: int | None = None  #: st_mode, type bits included (PX)
    nlink: int | None = None
    uid: int | None = None
    gid: int | None = None
    serial: int | None = None  #: PX file serial number (RRIP 1.12), libisofs' inode
    device: tuple[int, int] | None = None  #: PN (high, low)
    link: bytes | None = None  #: SL target
    times: dict[str, datetime | None] = field(default_factory=dict)  #: TF, by _TF_ORDER name
    child: int | None = None  #: CL: block of the relocated folder this record stands for
    parent: int | None = None  #: PL
    relocated: bool = False  #: RE: this folder is shown where a CL points at it
    #: ZF or Z2 (algorithm, header/4, log2 block, uncompressed size)
    zisofs: tuple[bytes, int, int, int] | None = None
    sparse: bool = False  #: SF
    seen: bool = False  #: any Rock Ridge entry at all


@dataclass(frozen=True)
class Susp:
    """What the root's ``.`` record announces: SUSP in use (SP) and its skip, and Rock Ridge."""

    skip: int
    rock_ridge: bool


def both_endian32(data: bytes, at: int) -> int:
    """A 32-bit both-byte-order field (ECMA-119 7.3.3), read from its little-endian half."""
    return int.from_bytes(data[at:at + 4], "little")


def entries(area: bytes, read_at: ReadAt, where: str, volume_size: int) -> list[
        tuple[bytes, int, bytes]]:
    """(signature, version, payload) of every SUSP entry of a record's System Use ``area``
    and of the continuation areas its CE entries chain to, in order."""
    found: list[tuple[bytes, int, bytes]] = []
    seen: set[tuple[int, int]] = set()
    total = len(area)
    hops = 0
    while True:
        following = _one_area(area, found)
        if following is None:
            return found
        block, offset, length = following
        hops += 1
        if hops > MAX_CONTINUATIONS:
            raise FileSystemError(f"{where}: more than {MAX_CONTINUATIONS} SUSP continuation "
                                  "areas (CE)")
        if (block, offset) in seen:
            raise FileSystemError(f"{where}: its SUSP continuation (CE) at block {block} "
                                  f"offset {offset} loops back on itself")
        seen.add((block, offset))
        start = block * _SECTOR + offset
        total += length
        if offset >= _SECTOR or total > MAX_SU_BYTES or start + length > volume_size:
            raise FileSystemError(f"{where}: SUSP continuation (CE) of {length} bytes at block "
                                  f"{block} offset {offset} lies outside the image or beyond "
                                  f"{MAX_SU_BYTES} bytes")
        area = read_at(start, length)
        if len(area) != length:
            raise FileSystemError(f"{where}: SUSP continuation (CE) at block {block} is cut "
                                  "short")


def _one_area(area: bytes, found: list[tuple[bytes, int, bytes]]) -> tuple[int, int, int] | None:
    """Append the entries of one area; the CE it names (block, offset, length), if any.

    An entry too short or running past the area ends it (padding bytes of zero do)."""
    following = None
    at = 0
    while at + 4 <= len(area):
        sig, length, version = area[at:at + 2], area[at + 2], area[at + 3]
        if length < 4 or at + length > len(area):
            break
        payload = area[at + 4:at + length]
        at += length
        if sig == b"ST":
            break
        if sig == b"CE" and len(payload) >= 24:
            following = (both_endian32(payload, 0), both_endian32(payload, 8),
                         both_endian32(payload, 16))
        elif sig != b"PD":
            found.append((sig, version, payload))
    return following


def root_susp(dot_area: bytes, read_at: ReadAt, volume_size: int) -> Susp | None:
    """SUSP as the root folder's ``.`` record announces it (SUSP 5.3: an SP entry first), or
    None when the volume does not use SUSP."""
    if len(dot_area) < 7 or dot_area[:2] != b"SP" or dot_area[4:6] != b"\xbe\xef":
        return None
    listed = entries(dot_area, read_at, "root folder '.'", volume_size)
    rock_ridge = any(sig in RRIP_SIGNATURES for sig, _v, _p in listed) or any(
        sig == b"ER" and _er_id(payload) in RRIP_IDS for sig, _v, payload in listed)
    return Susp(skip=dot_area[6], rock_ridge=rock_ridge)


def _er_id(payload: bytes) -> bytes:
    if len(payload) < 4:
        return b""
    return payload[4:4 + payload[0]]


def rock_ridge(listed: list[tuple[bytes, int, bytes]], where: str) -> RockRidge:
    """The Rock Ridge fields of one record from its SUSP entries (:func:`entries`)."""
    rr = RockRidge()
    name = _Name(where)
    link = _Link(where)
    for sig, _version, payload in listed:
        if sig in RRIP_SIGNATURES:
            rr.seen = True
        if sig == b"NM" and payload:
            name.add(payload)
        elif sig == b"SL" and payload:
            link.add(payload)
        else:
            field_reader = _FIELDS.get(sig)
            if field_reader is not None:
                field_reader(rr, payload)
    rr.name = name.done()
    rr.link = link.done()
    return rr


def _px(rr: RockRidge, payload: bytes) -> None:
    if len(payload) >= 32:
        rr.mode, rr.nlink = both_endian32(payload, 0), both_endian32(payload, 8)
        rr.uid, rr.gid = both_endian32(payload, 16), both_endian32(payload, 24)
        if len(payload) >= 40:
            rr.serial = both_endian32(payload, 32)


def _pn(rr: RockRidge, payload: bytes) -> None:
    if len(payload) >= 16:
        rr.device = (both_endian32(payload, 0), both_endian32(payload, 8))


def _tf(rr: RockRidge, payload: bytes) -> None:
    if payload:
        rr.times.update(_stamps(payload))


def _cl(rr: RockRidge, payload: bytes) -> None:
    if len(payload) >= 8:
        rr.child = both_endian32(payload, 0)


def _pl(rr: RockRidge, payload: bytes) -> None:
    if len(payload) >= 8:
        rr.parent = both_endian32(payload, 0)


def _re(rr: RockRidge, payload: bytes) -> None:
    rr.relocated = True


def _zf(rr: RockRidge, payload: bytes) -> None:
    if len(payload) >= 12:
        rr.zisofs = (payload[0:2], payload[2], payload[3], both_endian32(payload, 4))


def _z2(rr: RockRidge, payload: bytes) -> None:
    """zisofs2's own entry (xorriso ``susp_z2=on``): ZF's fields with the uncompressed size as
    64 bits, little-endian, for files of 4 GiB and more. Ignored, the file would pass for its
    compressed bytes."""
    if len(payload) >= 12:
        rr.zisofs = (payload[0:2], payload[2], payload[3],
                     int.from_bytes(payload[4:12], "little"))


def _sf(rr: RockRidge, payload: bytes) -> None:
    rr.sparse = True


_FIELDS: dict[bytes, Callable[[RockRidge, bytes], None]] = {
    b"PX": _px, b"PN": _pn, b"TF": _tf, b"CL": _cl, b"PL": _pl, b"RE": _re, b"ZF": _zf,
    b"Z2": _z2, b"SF": _sf}


class _Name:
    """A name built from NM entries (RRIP 4.1.4): pieces joined while CONTINUE is set; the
    first complete name stands."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.name: bytearray | None = None
        self.open = False

    def add(self, payload: bytes) -> None:
        if self.name is not None and not self.open:
            return
        flags = payload[0]
        piece = b"." if flags & 0x02 else b".." if flags & 0x04 else payload[1:]
        self.name = (self.name or bytearray()) + piece
        if len(self.name) > MAX_NAME:
            raise FileSystemError(f"{self.where}: Rock Ridge name (NM) longer than {MAX_NAME} "
                                  "bytes")
        self.open = bool(flags & 0x01)

    def done(self) -> bytes | None:
        if self.open:
            raise FileSystemError(f"{self.where}: Rock Ridge name (NM) continues in a piece "
                                  "that never comes")
        return None if self.name is None else bytes(self.name)


class _Link:
    """A symbolic link target built from SL entries and their components (RRIP 4.1.3)."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.parts: list[bytearray] | None = None
        self.absolute = False
        self.component_open = False
        self.entry_open = False
        self.size = 0

    def add(self, payload: bytes) -> None:
        if self.parts is not None and not self.entry_open:
            return  # a second complete link record: the first one stands
        if self.parts is None:
            self.parts = []
        self.entry_open = bool(payload[0] & 0x01)
        at = 1
        while at + 2 <= len(payload):
            flags, length = payload[at], payload[at + 1]
            content = payload[at + 2:at + 2 + length]
            at += 2 + length
            if flags & 0x08:  # ROOT
                if not self.parts:
                    self.absolute = True
                continue
            text = b"." if flags & 0x02 else b".." if flags & 0x04 else content
            if flags & 0x10:  # VOLROOT: the mount point, unknown here
                text = b"."
            if self.component_open and self.parts:
                self.parts[-1] += text
            else:
                self.parts.append(bytearray(text))
            self.component_open = bool(flags & 0x01)
            self.size += len(text) + 1
            if self.size > MAX_LINK:
                raise FileSystemError(f"{self.where}: symbolic link target (SL) longer than "
                                      f"{MAX_LINK} bytes")

    def done(self) -> bytes | None:
        if self.parts is None:
            return None
        if self.entry_open or self.component_open:
            raise FileSystemError(f"{self.where}: symbolic link target (SL) continues in a "
                                  "piece that never comes")
        joined = b"/".join(bytes(p) for p in self.parts)
        return b"/" + joined if self.absolute else joined


def _stamps(payload: bytes) -> dict[str, datetime | None]:
    flags = payload[0]
    size = 17 if flags & _TF_LONG else 7
    found: dict[str, datetime | None] = {}
    at = 1
    for bit, name in enumerate(_TF_ORDER):
        if not flags & (1 << bit):
            continue
        raw = payload[at:at + size]
        at += size
        if len(raw) < size:
            break
        found[name] = long_date(raw) if size == 17 else short_date(raw)
    return found


def short_date(raw: bytes) -> datetime | None:
    """A 7-byte recording date (ECMA-119 9.1.5): years since 1900, month, day, hour, minute,
    second, and the offset from Greenwich in signed 15-minute steps; in UTC. None when zero
    or not a date (a field out of range: shown as no time rather than a wrong one)."""
    if len(raw) < 7 or not any(raw[:6]):
        return None
    quarters = raw[6] - 256 if raw[6] > 127 else raw[6]
    try:
        local = datetime(1900 + raw[0], raw[1], raw[2], raw[3], raw[4], raw[5], tzinfo=UTC)
    except ValueError:
        return None
    return local - quarters * _QUARTER


def long_date(raw: bytes) -> datetime | None:
    """A 17-byte date (ECMA-119 8.4.26.1): 16 ASCII digits YYYYMMDDhhmmsscc and the offset
    from Greenwich in 15-minute steps; in UTC. None when unset (all zeros) or not a date."""
    digits = raw[:16]
    if len(raw) < 17 or not digits.isdigit() or int(digits[:4]) == 0:
        return None
    quarters = raw[16] - 256 if raw[16] > 127 else raw[16]
    try:
        local = datetime(int(digits[0:4]), int(digits[4:6]), int(digits[6:8]), int(digits[8:10]),
                         int(digits[10:12]), int(digits[12:14]), int(digits[14:16]) * 10_000,
                         tzinfo=UTC)
    except ValueError:
        return None
    return local - quarters * _QUARTER


_TYPES = {statmod.S_IFREG: "r", statmod.S_IFDIR: "d", statmod.S_IFLNK: "l",
          statmod.S_IFIFO: "p", statmod.S_IFCHR: "c", statmod.S_IFBLK: "b",
          statmod.S_IFSOCK: "s"}


def kind_of(mode: int | None, folder: bool) -> str:
    """TSK's type letter for a PX mode, or from the record's folder flag without one."""
    if mode is not None and statmod.S_IFMT(mode) in _TYPES:
        return _TYPES[statmod.S_IFMT(mode)]
    return "d" if folder else "r"
