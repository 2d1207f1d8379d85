"""The on-disk structures of UDF (ECMA-167 3rd edition, OSTA UDF 2.60), parsed and checked.

Kept apart from :mod:`~bitwitness.report.browse.udf` (which walks them) so that each structure
is declared once, with its byte offsets, and every parser checks what it reads before anything
trusts it: a descriptor's tag (checksum, CRC, location), lengths against the bytes there are.
Every failure is a one-line :class:`~bitwitness.errors.FileSystemError` naming what and where.
"""

from __future__ import annotations

import struct
from binascii import crc_hqx
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

from bitwitness.errors import FileSystemError
from bitwitness.report.browse.entries import Times

#: Descriptor tag identifiers (ECMA-167 3/7.2.1, 4/7.2.1)
PVD, AVDP, VDP, IUVD, PD, LVD, USD, TD, LVID = 1, 2, 3, 4, 5, 6, 7, 8, 9
FSD, FID, AED, IE, TE, FE, EAHD, USE, SBD, PIE, EFE = (256, 257, 258, 259, 260, 261, 262,
                                                       263, 264, 265, 266)
_TAG = struct.Struct("<HHBBHHHI")
_LONG_AD = struct.Struct("<IIH")
#: ICB file types (ECMA-167 4/14.6.6, OSTA UDF 2.60 2.3.5.2) as fls letters
FILE_TYPES = {0: "r", 4: "d", 5: "r", 6: "b", 7: "c", 9: "p", 10: "s", 12: "l", 13: "V"}
TYPE_DIRECTORY, TYPE_SYMLINK, TYPE_STREAM_DIR = 4, 12, 13
#: allocation descriptor forms in the ICB tag's flags (low 3 bits)
SHORT, LONG, EXTENDED, EMBEDDED = 0, 1, 2, 3
#: extent types (top two bits of an extent length)
RECORDED, ALLOCATED, UNALLOCATED, NEXT = 0, 1, 2, 3
#: File Identifier characteristics (ECMA-167 4/14.4.3)
FID_HIDDEN, FID_DIRECTORY, FID_DELETED, FID_PARENT, FID_METADATA = 1, 2, 4, 8, 16
#: bytes of an extent length that are its length (the top two bits are its type)
_LENGTH_MASK = (1 << 30) - 1
_TIMEZONE_UNSET = -2047


def check_tag(data: bytes, wanted: tuple[int, ...], location: int | None, where: str) -> int:
    """The tag identifier of the descriptor at the start of ``data``, after checking its tag
    checksum, its descriptor CRC (over the bytes the CRC length names, which must be in
    ``data``) and, when ``location`` is given, that the tag says it lies at that block.

    Why all three: the checksum alone passes a block of zeros, the CRC alone a descriptor
    copied to another block; a reader trusting either has followed a pointer into data.
    """
    if len(data) < 16:
        raise FileSystemError(f"udf: {where}: cut short ({len(data)} bytes, a tag needs 16)")
    ident, _version, checksum, _res, _serial, crc, crc_length, tag_location = \
        _TAG.unpack_from(data)
    if (sum(data[0:4]) + sum(data[5:16])) & 0xFF != checksum:
        raise FileSystemError(f"udf: {where}: no descriptor (tag checksum fails)")
    if ident not in wanted:
        names = "/".join(str(w) for w in wanted)
        raise FileSystemError(f"udf: {where}: descriptor {ident} where {names} is expected")
    if 16 + crc_length > len(data):
        raise FileSystemError(f"udf: {where}: descriptor CRC length {crc_length} runs past "
                              "the descriptor")
    if crc_hqx(data[16:16 + crc_length], 0) != crc:
        raise FileSystemError(f"udf: {where}: descriptor {ident} fails its CRC")
    if location is not None and tag_location != location:
        raise FileSystemError(f"udf: {where}: descriptor says it lies at block {tag_location}")
    return ident


def u16(data: bytes, at: int) -> int:
    return int.from_bytes(data[at:at + 2], "little")


def u32(data: bytes, at: int) -> int:
    return int.from_bytes(data[at:at + 4], "little")


def u64(data: bytes, at: int) -> int:
    return int.from_bytes(data[at:at + 8], "little")


def long_ad(data: bytes, at: int) -> tuple[int, int, int, int]:
    """(extent type, length in bytes, logical block, partition reference) of a long_ad."""
    length, block, ref = _LONG_AD.unpack_from(data, at)
    return length >> 30, length & _LENGTH_MASK, block, ref


def timestamp(raw: bytes) -> tuple[datetime | None, int | None]:
    """A UDF timestamp (ECMA-167 1/7.3) in UTC and the zone it was recorded in (minutes east
    of UTC, None when the writer left it unspecified, the time then taken as UTC).

    A zero or impossible date (month 13, hour 25) is None: it records no moment, and what the
    writer meant cannot be known."""
    kind_zone, year = struct.unpack_from("<Hh", raw, 0)
    month, day, hour, minute, second, centi, hundreds, micro = raw[4:12]
    if year == 0 and month == 0 and day == 0:
        return None, None
    zone: int | None = kind_zone & 0xFFF
    assert zone is not None
    if zone & 0x800:
        zone -= 0x1000
    if kind_zone >> 12 != 1 or zone == _TIMEZONE_UNSET or not -1440 <= zone <= 1440:
        zone = None
    micros = centi * 10_000 + hundreds * 100 + micro
    try:
        local = datetime(year, month, day, hour, minute, second,
                         tzinfo=timezone(timedelta(minutes=zone or 0)))
        return (local + timedelta(microseconds=micros)).astimezone(UTC), zone
    except (ValueError, OverflowError):
        return None, None


def osta_name(raw: bytes, where: str) -> str:
    """A name in OSTA compressed Unicode (OSTA UDF 2.1.1): a compression byte, then 8-bit
    (Latin-1) or 16-bit big-endian (UTF-16) characters; 254 and 255 are 8 and 16 bit too
    (UDF 2.60 marks a deleted name so). A lone UTF-16 surrogate is kept as data."""
    if not raw:
        return ""
    method, body = raw[0], raw[1:]
    if method in (8, 254):
        return body.decode("latin-1")
    if method in (16, 255):
        if len(body) % 2:
            raise FileSystemError(f"udf: {where}: a 16-bit name of an odd byte count")
        return body.decode("utf-16-be", "surrogatepass")
    raise FileSystemError(f"udf: {where}: name compressed with unknown method {method}")


def dstring(raw: bytes, where: str) -> str:
    """A fixed-size dstring (ECMA-167 1/7.2.12): its last byte is the length used."""
    if not raw:
        return ""
    used = raw[-1]
    if used == 0 or used >= len(raw):
        return ""
    return osta_name(raw[:used], where)


@dataclass(frozen=True, slots=True)
class Extent:
    """One allocation descriptor: ``length`` bytes at logical block ``block`` of partition
    reference ``ref`` (``kind`` RECORDED, ALLOCATED, UNALLOCATED or NEXT)."""

    kind: int
    length: int
    block: int
    ref: int


def allocation_descriptors(area: bytes, form: int, ref: int, where: str) -> list[Extent]:
    """The descriptors of one allocation area (short_ad, long_ad or ext_ad); a zero length
    ends the list (ECMA-167 4/12.1). ``ref`` is the partition of a short_ad: the ICB's."""
    size = {SHORT: 8, LONG: 16, EXTENDED: 20}.get(form)
    if size is None:
        raise FileSystemError(f"udf: {where}: allocation descriptor form {form} is unknown")
    found: list[Extent] = []
    for at in range(0, len(area) - size + 1, size):
        if form == SHORT:
            length, block = struct.unpack_from("<II", area, at)
            part = ref
        elif form == LONG:
            length, block, part = _LONG_AD.unpack_from(area, at)
        else:
            length = u32(area, at)
            block, part = struct.unpack_from("<IH", area, at + 12)
        if length & _LENGTH_MASK == 0:
            break
        found.append(Extent(length >> 30, length & _LENGTH_MASK, block, part))
    return found


@dataclass(frozen=True, slots=True)
class Icb:
    """A File Entry or Extended File Entry (ECMA-167 4/14.9, 4/14.17), the fields we show."""

    ref: int
    block: int
    file_type: int
    form: int  #: allocation descriptor form (SHORT, LONG, EXTENDED, EMBEDDED)
    flags: int
    uid: int
    gid: int
    permissions: int
    links: int
    size: int
    times: Times
    zones: tuple[int | None, ...]  #: recorded zone of each time (modified, accessed, attr, born)
    ad_area: bytes  #: the allocation descriptors, or the data itself when EMBEDDED
    stream_dir: tuple[int, int, int, int] | None  #: EFE's stream directory ICB (long_ad)
    extended: bool
    unique_id: int

    @property
    def mode(self) -> int:
        """The permissions as POSIX bits: ECMA-167 keeps five bits per class (execute, write,
        read, change attributes, delete) and the set-ID and sticky bits in the ICB flags."""
        p = self.permissions
        mode = ((p >> 10) & 7) << 6 | ((p >> 5) & 7) << 3 | (p & 7)
        if self.flags & 0x40:
            mode |= 0o4000
        if self.flags & 0x80:
            mode |= 0o2000
        if self.flags & 0x100:
            mode |= 0o1000
        return mode


def parse_icb(block: bytes, ref: int, lbn: int, where: str) -> Icb:
    """A File Entry or Extended File Entry read from its block (tag already checked)."""
    ident = u16(block, 0)
    extended = ident == EFE
    base = 216 if extended else 176
    if len(block) < base:
        raise FileSystemError(f"udf: {where}: file entry cut short")
    file_type = block[16 + 11]
    flags = u16(block, 16 + 18)
    uid, gid, perms = struct.unpack_from("<III", block, 36)
    links = u16(block, 48)
    size = u64(block, 56)
    if extended:
        stamps = [timestamp(block[at:at + 12]) for at in (92, 80, 116, 104)]
        ea_length, ad_length = u32(block, 208), u32(block, 212)
        kind, length, sblock, sref = long_ad(block, 152)
        stream_dir = (kind, length, sblock, sref) if length else None
        unique = u64(block, 200)
    else:
        stamps = [timestamp(block[at:at + 12]) for at in (84, 72, 96)] + [(None, None)]
        ea_length, ad_length = u32(block, 168), u32(block, 172)
        stream_dir = None
        unique = u64(block, 160)
    if base + ea_length + ad_length > len(block):
        raise FileSystemError(f"udf: {where}: extended attributes ({ea_length} bytes) and "
                              f"allocation descriptors ({ad_length}) run past the block")
    if size >= 1 << 62:
        raise FileSystemError(f"udf: {where}: information length {size} is absurd")
    start = base + ea_length
    times = Times(modified=stamps[0][0], accessed=stamps[1][0], changed=stamps[2][0],
                  born=stamps[3][0])
    return Icb(ref=ref, block=lbn, file_type=file_type, form=flags & 7, flags=flags, uid=uid,
               gid=gid, permissions=perms, links=links, size=size, times=times,
               zones=tuple(s[1] for s in stamps), ad_area=block[start:start + ad_length],
               stream_dir=stream_dir, extended=extended, unique_id=unique)


@dataclass(frozen=True, slots=True)
class FileId:
    """One File Identifier Descriptor of a folder (ECMA-167 4/14.4)."""

    characteristics: int
    name: str
    icb: tuple[int, int, int, int]  #: long_ad of the file's ICB (type, length, block, ref)
    offset: int  #: where in the folder's bytes it starts

    @property
    def deleted(self) -> bool:
        return bool(self.characteristics & FID_DELETED)

    @property
    def parent(self) -> bool:
        return bool(self.characteristics & FID_PARENT)


def path_components(data: bytes, where: str) -> str:
    """A symbolic link's target from its path components (ECMA-167 4/14.16): root, ``..``,
    ``.`` and names, joined with ``/``."""
    parts: list[str] = []
    rooted = False
    at = 0
    while at + 4 <= len(data):
        kind, length = data[at], data[at + 1]
        if at + 4 + length > len(data):
            raise FileSystemError(f"udf: {where}: a path component runs past the link")
        ident = data[at + 4:at + 4 + length]
        if kind in (1, 2):
            parts, rooted = [], True
        elif kind == 3:
            parts.append("..")
        elif kind == 4:
            parts.append(".")
        elif kind == 5:
            parts.append(osta_name(ident, where))
        else:
            raise FileSystemError(f"udf: {where}: path component of unknown type {kind}")
        at += 4 + length
    return ("/" if rooted else "") + "/".join(parts)
