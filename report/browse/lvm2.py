"""LVM2 physical volumes: the volume group's metadata and where each logical volume's bytes lie.

Why: libvslvm (our first LVM reader) refuses a whole volume group as soon as one logical volume
is made of two or more segments ("invalid physical volume value already set"), which is what
``lvextend`` leaves whenever the free extents it takes are not next to the volume's last ones:
every volume of such a group went unseen. This module reads the physical volume itself.

The layout, every integer little-endian, sectors of 512 bytes:

* Label (one of the first four sectors): ``LABELONE``, the label's own sector number, a CRC of
  the rest of the sector (from byte 20), the offset of the PV header in the sector, ``LVM2 001``.
* PV header: the PV's UUID (32 characters, no dashes), the device's size in bytes, then two
  lists of (offset, size) byte ranges each ended by a zero pair: the data area (where extents
  start) and the metadata areas (one near the start; an optional copy at the end).
* Metadata area: a 512-byte header (CRC of bytes 4-511, `` LVM2 x[5A%r0N*>``, version 1, the
  area's own offset and size) with raw location descriptors (offset into the area, size, CRC of
  the text, flags); the first is the committed metadata. The area past its header is a circular
  buffer: text that runs past the area's end continues 512 bytes into the area.
* Metadata text: LVM's configuration format (``name { ... }`` sections, ``key = value`` with
  strings, integers and ``[ ... ]`` lists, ``#`` comments): one section per volume group, with
  its physical volumes (``pe_start`` in sectors, ``pe_count``) and logical volumes, each made of
  numbered segments (``start_extent``, ``extent_count`` in extents of ``extent_size`` sectors,
  a type and, for "striped", ``stripes = ["pv0", first extent, ...]``).

Every CRC is LVM's: CRC-32 (reflected polynomial 0xEDB88320) from 0xF597A6CF, not inverted at
the end; checked against what ``pvcreate`` writes. Linear volumes (segments "striped" with one
stripe) and striped volumes whose stripes all lie on this physical volume are read; volumes
with a segment on another physical volume, and thin, snapshot, mirror, RAID, cache and VDO
segments, are named with the reason and not read. Metadata that does not hold together raises
:class:`~bitwitness.errors.FileSystemError`; every count, size and offset is bounded before use.

Read from libvslvm's format documentation and LVM2's own metadata files; written here. ``pvs``,
``lvs --segments`` and ``vgcfgbackup`` are the test oracles.
"""

from __future__ import annotations

import itertools
import re
import struct
import zlib
from dataclasses import dataclass, field, replace
from typing import Union

from bitwitness.errors import FileSystemError
from bitwitness.stream import ImageStream, StreamInfo

SECTOR = 512
LABEL = b"LABELONE"
LABEL_TYPE = b"LVM2 001"
MDA_MAGIC = b" LVM2 x[5A%r0N*>"
#: The label lies in one of the first four sectors.
_LABEL_SECTORS = 4
_MDA_HEADER = 512
_CRC_INITIAL = 0xF597A6CF
#: The committed metadata text is held in memory: more than this is not a real group's.
MAX_METADATA = 16 << 20
MAX_VOLUMES = 1024
MAX_SEGMENTS = 1024
MAX_PHYSICAL_VOLUMES = 1024
#: Stripes of one segment (LVM allows 128).
MAX_STRIPES = 128
#: Sections nest four deep in a volume group's metadata; a little room, no more.
MAX_DEPTH = 16
#: Locations in one PV header list (LVM writes one data area and at most two metadata areas).
_MAX_LOCATIONS = 8
_INT64 = (1 << 63) - 1
_RAW_LOCN_IGNORED = 1

Value = Union[str, int, float, list["Value"], "Section"]
Section = dict[str, Value]


@dataclass(frozen=True)
class Extent:
    """A run of a logical volume's bytes on this physical volume."""

    offset: int  #: first byte, from the physical volume's start
    size: int  #: bytes


@dataclass(frozen=True)
class StripeSet:
    """One striped segment whose stripes all lie on this physical volume: the volume's bytes
    ``start`` to ``start + size`` go in chunks of ``chunk`` bytes to each stripe in turn."""

    start: int  #: first byte of the segment in the logical volume
    size: int  #: bytes of the logical volume
    chunk: int  #: bytes per chunk (the stripe size)
    offsets: tuple[int, ...]  #: where each stripe's first chunk lies on this physical volume


@dataclass(frozen=True)
class LvmSegment:
    """One segment as the metadata gives it (extents of the group's extent size)."""

    start_extent: int
    extent_count: int
    type: str  #: "striped" (one stripe: linear), "thin", "thin-pool", "raid1", ...
    stripe_count: int = 0
    stripe_size: int = 0  #: sectors; 0 when the segment has one stripe or no stripes
    #: (physical volume name, first extent) of each stripe; () for other types
    stripes: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class LvmPhysicalVolume:
    name: str  #: "pv0", as the metadata names it
    id: str  #: the PV UUID, with dashes
    pe_start: int  #: bytes from the physical volume's start to its first extent
    pe_count: int
    device: str | None  #: the device it was last seen on (a hint only)
    this: bool  #: whether it is the physical volume read


@dataclass(frozen=True)
class LvmVolume:
    """One logical volume, and how its bytes lie on this physical volume."""

    name: str  #: as LVM names it (evidence: escape where printed)
    id: str
    status: tuple[str, ...]  #: "READ", "WRITE", "VISIBLE"...
    flags: tuple[str, ...]
    size: int  #: bytes
    segments: tuple[LvmSegment, ...]
    #: the volume's bytes end to end on this physical volume when every segment is linear
    extents: tuple[Extent, ...] = ()
    #: every segment's stripes when one of them is striped (then ``extents`` is ())
    stripes: tuple[StripeSet, ...] = ()
    unread: str | None = None  #: why it is not read from this physical volume

    @property
    def visible(self) -> bool:
        """False for LVM's internal volumes (thin pool data, RAID images...), hidden from lvs."""
        return "VISIBLE" in self.status

    @property
    def layout(self) -> str:
        kinds = {s.type for s in self.segments}
        if kinds == {"striped"}:
            return "striped" if any(s.stripe_count > 1 for s in self.segments) else "linear"
        return "+".join(sorted(kinds)) or "empty"

    def describe(self, sector: int = SECTOR) -> str:
        """``LVM linear volume 'home', 2 extents (PV sectors 2048-4095, ...)``; sectors (of
        ``sector`` bytes) are the physical volume's."""
        hidden = "" if self.visible else " (hidden)"
        said = f"LVM {self.layout} volume '{self.name}'{hidden}"
        if self.unread is not None:
            return f"{said}: {self.unread} (not read by BitWitness)"
        if self.stripes:
            count = sum(len(s.offsets) for s in self.stripes)
            return f"{said}, {len(self.stripes)} segments, {count} stripes on this volume"
        where = ", ".join(f"{e.offset // sector}-{(e.offset + e.size) // sector - 1}"
                          for e in self.extents)
        count = len(self.extents)
        return f"{said}, {count} extent{'s' if count != 1 else ''} (PV sectors {where})"


@dataclass(frozen=True)
class LvmVolumeGroup:
    """The volume group as the committed metadata on one physical volume gives it."""

    name: str
    id: str
    seqno: int
    extent_size: int  #: sectors of 512 bytes
    physical_volumes: tuple[LvmPhysicalVolume, ...]
    volumes: tuple[LvmVolume, ...]
    pv_id: str  #: this physical volume's UUID, with dashes
    device_size: int  #: bytes, as the PV header gives it
    metadata_offset: int  #: bytes from the PV's start to the metadata area read
    notes: tuple[str, ...] = field(default=())

    @property
    def this(self) -> LvmPhysicalVolume:
        return next(pv for pv in self.physical_volumes if pv.this)

    def describe(self) -> str:
        count = len(self.volumes)
        return (f"LVM2 physical volume {self.this.name} of volume group '{self.name}' "
                f"(seqno {self.seqno}): {count} logical volume{'s' if count != 1 else ''}")


def lvm_crc(data: bytes, initial: int = _CRC_INITIAL) -> int:
    """LVM's checksum: CRC-32 from ``initial`` without the usual inversions (zlib's CRC-32
    inverts before and after, so both are undone here)."""
    return zlib.crc32(data, initial ^ 0xFFFFFFFF) ^ 0xFFFFFFFF


def find_label(stream: ImageStream) -> int | None:
    """The byte offset of the LVM label in the first four sectors: magic, its own sector
    number, type and CRC all hold; None when there is none (one read)."""
    head = stream.pread(0, _LABEL_SECTORS * SECTOR)
    for number in range(_LABEL_SECTORS):
        sector = head[number * SECTOR:(number + 1) * SECTOR]
        if len(sector) < SECTOR or sector[:8] != LABEL:
            continue
        (own, crc) = struct.unpack_from("<QI", sector, 8)
        if own == number and sector[24:32] == LABEL_TYPE and lvm_crc(sector[20:]) == crc:
            return number * SECTOR
    return None


def read_physical_volume(stream: ImageStream) -> LvmVolumeGroup:
    """The volume group of the LVM2 physical volume ``stream``, from its committed metadata.
    Raises :class:`FileSystemError` when no label is found or when the PV header, metadata
    area or metadata text is damaged or does not hold together."""
    at = find_label(stream)
    if at is None:
        raise FileSystemError("LVM: no valid LABELONE label in the first 4 sectors")
    uuid, device_size, data_areas, metadata_areas = _pv_header(stream.pread(at, SECTOR), at)
    notes: list[str] = []
    problems: list[str] = []
    for offset, size in metadata_areas:
        try:
            text = _metadata_text(stream, offset, size)
        except FileSystemError as exc:
            problems.append(str(exc))
            continue
        if problems:
            notes.append(f"metadata area at byte {metadata_areas[0][0]} not read "
                         f"({problems[0]}); read from its copy at byte {offset}")
        group = _group(parse_config(text), uuid, stream.size)
        if data_areas and data_areas[0][0] != group.this.pe_start:
            notes.append(f"the PV header's data area starts at byte {data_areas[0][0]}, the "
                         f"metadata's first extent at {group.this.pe_start}")
        return replace(group, device_size=device_size, metadata_offset=offset,
                       notes=tuple(notes))
    if problems:
        raise FileSystemError(problems[0] if len(problems) == 1 else "; ".join(problems))
    raise FileSystemError(f"LVM physical volume {_dashed(uuid)}: no metadata area (its "
                          "metadata lies on another physical volume of the group)")


def _pv_header(sector: bytes, at: int) -> tuple[str, int, list[tuple[int, int]],
                                                list[tuple[int, int]]]:
    """UUID, device size and the data and metadata areas of the PV header in the label's
    sector (the label's CRC covers all of it)."""
    (offset,) = struct.unpack_from("<I", sector, 20)
    if not 32 <= offset <= SECTOR - 40 - 32:
        raise FileSystemError(f"LVM label at byte {at}: PV header offset {offset} outside its "
                              "sector")
    raw_uuid = sector[offset:offset + 32]
    if not re.fullmatch(rb"[0-9A-Za-z!#&+.^_]{32}", raw_uuid):  # LVM's id characters
        raise FileSystemError(f"LVM PV header at byte {at + offset}: the PV UUID is not text")
    (device_size,) = struct.unpack_from("<Q", sector, offset + 32)
    cursor = offset + 40
    lists: list[list[tuple[int, int]]] = []
    for what in ("data", "metadata"):
        found: list[tuple[int, int]] = []
        while True:
            if cursor + 16 > SECTOR or len(found) > _MAX_LOCATIONS:
                raise FileSystemError(f"LVM PV header at byte {at + offset}: its {what} area "
                                      "list does not end in its sector")
            start, size = struct.unpack_from("<QQ", sector, cursor)
            cursor += 16
            if start == 0:
                break
            found.append((start, size))
        lists.append(found)
    return raw_uuid.decode("ascii"), device_size, lists[0], lists[1]


def _location(header: bytes, offset: int, size: int) -> tuple[int, int, int]:
    """Where the committed text lies in the metadata area whose header is ``header``: its
    offset in the area, its size, its CRC; the header's magic, CRC and own place checked."""
    where = f"LVM metadata area at byte {offset}"
    (crc,) = struct.unpack_from("<I", header, 0)
    if header[4:20] != MDA_MAGIC:
        raise FileSystemError(f"{where}: no metadata area header magic")
    if lvm_crc(header[4:]) != crc:
        raise FileSystemError(f"{where}: the header's CRC does not match")
    version, start, length = struct.unpack_from("<IQQ", header, 20)
    if version != 1 or start != offset or length != size:
        raise FileSystemError(f"{where}: header version {version}, start {start}, size "
                              f"{length} do not match the PV header")
    text_at, text_size, text_crc, flags = struct.unpack_from("<QQII", header, 40)
    if text_at == 0:
        raise FileSystemError(f"{where}: no committed metadata (a physical volume in no "
                              "volume group)")
    if flags & _RAW_LOCN_IGNORED:
        raise FileSystemError(f"{where}: marked ignored (pvchange --metadataignore)")
    if not _MDA_HEADER <= text_at < size or not 0 < text_size <= size - _MDA_HEADER:
        raise FileSystemError(f"{where}: metadata text of {text_size} bytes at {text_at} lies "
                              "outside the area")
    if text_size > MAX_METADATA:
        raise FileSystemError(f"{where}: {text_size} bytes of metadata text, more than "
                              f"{MAX_METADATA} are not read")
    return text_at, text_size, text_crc


def _metadata_text(stream: ImageStream, offset: int, size: int) -> str:
    """The committed metadata text of the metadata area at ``offset`` (bytes) of ``size``
    bytes: header and location CRCs checked, wrap-around of the circular buffer followed."""
    where = f"LVM metadata area at byte {offset}"
    if size < 2 * _MDA_HEADER:
        raise FileSystemError(f"{where}: {size} bytes, too small for a metadata area")
    header = stream.pread(offset, _MDA_HEADER)
    if len(header) < _MDA_HEADER:
        raise FileSystemError(f"{where}: its header lies past the end of the image")
    text_at, text_size, text_crc = _location(header, offset, size)
    first = min(text_size, size - text_at)
    raw = stream.pread(offset + text_at, first)
    if first < text_size:  # the circular buffer wrapped: the rest follows the header
        raw += stream.pread(offset + _MDA_HEADER, text_size - first)
    if len(raw) != text_size:
        raise FileSystemError(f"{where}: the metadata text lies past the end of the image")
    if lvm_crc(raw) != text_crc:
        raise FileSystemError(f"{where}: the metadata text's CRC does not match (damaged)")
    return raw.split(b"\x00", 1)[0].decode("utf-8", "replace")


# --- LVM's text configuration format -------------------------------------------------------

_TOKEN = re.compile(r"""
    (?P<skip>[ \t\r\n]+|\#[^\n]*)
  | (?P<string>"[^"\\]*(?:\\.[^"\\]*)*")
  | (?P<word>[A-Za-z0-9_.+\-]+)
  | (?P<mark>[{}\[\],=])
""", re.VERBOSE | re.DOTALL)
_INTEGER = re.compile(r"[-+]?[0-9]{1,19}")
_FLOAT = re.compile(r"[-+]?[0-9]{1,19}\.[0-9]{1,19}")


def _tokens(text: str) -> list[tuple[str, str, int]]:
    """(kind, text, offset) of every token; a character no token starts with is refused."""
    out: list[tuple[str, str, int]] = []
    at = 0
    while at < len(text):
        match = _TOKEN.match(text, at)
        if match is None:
            raise FileSystemError(f"LVM metadata: unexpected {text[at]!r} at character {at}")
        kind = match.lastgroup or "skip"
        if kind != "skip":
            out.append((kind, match.group(), at))
        at = match.end()
    return out


def _scalar(kind: str, lexeme: str, at: int) -> Value:
    if kind == "string":
        return re.sub(r"\\(.)", r"\1", lexeme[1:-1], flags=re.DOTALL)
    if kind == "word" and _INTEGER.fullmatch(lexeme):
        number = int(lexeme)
        if abs(number) <= _INT64:
            return number
    elif kind == "word" and _FLOAT.fullmatch(lexeme):
        return float(lexeme)
    raise FileSystemError(f"LVM metadata: {lexeme[:40]!r} at character {at} is not a value")


def parse_config(text: str) -> Section:
    """LVM's text configuration (metadata) as nested dicts: a section per ``name { }``,
    strings, integers (64-bit), floats and lists of those. No recursion; nesting beyond
    :data:`MAX_DEPTH`, a key given twice in a section and anything malformed are refused."""
    if len(text) > MAX_METADATA:
        raise FileSystemError(f"LVM metadata: {len(text)} characters, more than "
                              f"{MAX_METADATA} are not read")
    tokens = _tokens(text)
    root: Section = {}
    stack: list[Section] = [root]
    index = 0
    while index < len(tokens):
        kind, lexeme, at = tokens[index]
        if (kind, lexeme) == ("mark", "}"):
            if len(stack) == 1:
                raise FileSystemError(f"LVM metadata: '}}' at character {at} closes nothing")
            stack.pop()
            index += 1
            continue
        name = _name(kind, lexeme, at, stack[-1])
        following = tokens[index + 1][1] if index + 1 < len(tokens) else ""
        if following == "{":
            if len(stack) > MAX_DEPTH:
                raise FileSystemError(f"LVM metadata: sections nested more than {MAX_DEPTH} "
                                      f"deep at character {at}")
            child: Section = {}
            stack[-1][name] = child
            stack.append(child)
            index += 2
        elif following == "=":
            value, index = _value(tokens, index + 2)
            stack[-1][name] = value
        else:
            raise FileSystemError(f"LVM metadata: '{name[:40]}' at character {at} is followed "
                                  "by neither '=' nor '{'")
    if len(stack) != 1:
        raise FileSystemError("LVM metadata: a section is not closed before the end")
    return root


def _name(kind: str, lexeme: str, at: int, section: Section) -> str:
    """The key or section name ``lexeme``, new in ``section``."""
    if kind not in ("word", "string"):
        raise FileSystemError(f"LVM metadata: {lexeme!r} at character {at} where a name "
                              "belongs")
    name = lexeme[1:-1] if kind == "string" else lexeme
    if name in section:
        raise FileSystemError(f"LVM metadata: '{name[:40]}' given twice in one section "
                              f"(character {at})")
    return name


def _value(tokens: list[tuple[str, str, int]], index: int) -> tuple[Value, int]:
    """The value starting at ``tokens[index]`` (a scalar, or a flat list) and the index after
    it."""
    if index >= len(tokens):
        raise FileSystemError("LVM metadata: the text ends where a value belongs")
    kind, lexeme, at = tokens[index]
    if (kind, lexeme) != ("mark", "["):
        return _scalar(kind, lexeme, at), index + 1
    items: list[Value] = []
    index += 1
    while index < len(tokens) and tokens[index][1] != "]":
        kind, lexeme, at = tokens[index]
        items.append(_scalar(kind, lexeme, at))
        index += 1
        if index < len(tokens) and tokens[index][1] == ",":
            index += 1
        elif index < len(tokens) and tokens[index][1] != "]":
            raise FileSystemError(f"LVM metadata: list items not separated by ',' at "
                                  f"character {tokens[index][2]}")
    if index >= len(tokens):
        raise FileSystemError(f"LVM metadata: the list at character {at} is not closed")
    return items, index + 1


# --- the volume group in the metadata ------------------------------------------------------


def _number(section: Section, key: str, where: str, low: int = 0) -> int:
    value = section.get(key)
    if not isinstance(value, int):
        raise FileSystemError(f"LVM metadata: {where} has no integer '{key}'")
    if value < low:
        raise FileSystemError(f"LVM metadata: {where} has '{key}' = {value}, below {low}")
    return value


def _text(section: Section, key: str, where: str) -> str:
    value = section.get(key)
    if not isinstance(value, str):
        raise FileSystemError(f"LVM metadata: {where} has no text '{key}'")
    return value


def _sections(section: Section, key: str, where: str, limit: int) -> dict[str, Section]:
    value = section.get(key, {})
    if not isinstance(value, dict):
        raise FileSystemError(f"LVM metadata: {where}'s '{key}' is not a section")
    found = {name: child for name, child in value.items() if isinstance(child, dict)}
    if len(found) > limit:
        raise FileSystemError(f"LVM metadata: {where} has {len(found)} {key}, more than "
                              f"{limit} are not read")
    return found


def _words(section: Section, key: str) -> tuple[str, ...]:
    value = section.get(key, [])
    return tuple(str(item) for item in value) if isinstance(value, list) else ()


def _dashed(uuid: str) -> str:
    """A PV UUID as LVM prints it (6-4-4-4-4-4-6 characters)."""
    cuts = (0, 6, 10, 14, 18, 22, 26, 32)
    return "-".join(uuid[a:b] for a, b in itertools.pairwise(cuts))


def _group(config: Section, uuid: str, stream_size: int) -> LvmVolumeGroup:
    groups = {name: value for name, value in config.items() if isinstance(value, dict)}
    if len(groups) != 1:
        raise FileSystemError(f"LVM metadata: {len(groups)} volume group sections, not one")
    ((name, vg),) = groups.items()
    where = f"volume group '{name[:64]}'"
    extent_size = _number(vg, "extent_size", where, low=1)
    if extent_size > 1 << 32:
        raise FileSystemError(f"LVM metadata: {where} has extents of {extent_size} sectors")
    pvs = []
    for pv_name, pv in _sections(vg, "physical_volumes", where, MAX_PHYSICAL_VOLUMES).items():
        there = f"physical volume '{pv_name[:64]}'"
        pv_id = _text(pv, "id", there)
        device = pv.get("device")
        pvs.append(LvmPhysicalVolume(
            name=pv_name, id=pv_id, pe_start=_number(pv, "pe_start", there) * SECTOR,
            pe_count=_number(pv, "pe_count", there),
            device=device if isinstance(device, str) else None,
            this=pv_id.replace("-", "") == uuid))
    if sum(pv.this for pv in pvs) != 1:
        raise FileSystemError(f"LVM metadata: {where} lists {sum(pv.this for pv in pvs)} "
                              f"physical volumes with this one's UUID {_dashed(uuid)}")
    places = _Places({pv.name: pv for pv in pvs}, extent_size * SECTOR, stream_size)
    volumes = tuple(_volume(lv_name, lv, places)
                    for lv_name, lv in _sections(vg, "logical_volumes", where,
                                                 MAX_VOLUMES).items())
    return LvmVolumeGroup(name=name, id=_text(vg, "id", where),
                          seqno=_number(vg, "seqno", where), extent_size=extent_size,
                          physical_volumes=tuple(pvs), volumes=volumes, pv_id=_dashed(uuid),
                          device_size=0, metadata_offset=0)


@dataclass(frozen=True)
class _Places:
    pvs: dict[str, LvmPhysicalVolume]
    extent: int  #: bytes
    stream_size: int


def _segments(lv: Section, where: str) -> tuple[LvmSegment, ...]:
    count = _number(lv, "segment_count", where)
    if count > MAX_SEGMENTS:
        raise FileSystemError(f"LVM metadata: {where} has {count} segments, more than "
                              f"{MAX_SEGMENTS} are not read")
    found = {key: value for key, value in lv.items() if isinstance(value, dict)}
    if set(found) != {f"segment{n}" for n in range(1, count + 1)}:
        raise FileSystemError(f"LVM metadata: {where} counts {count} segments, its sections "
                              f"are not segment1 to segment{count}")
    out: list[LvmSegment] = []
    next_extent = 0
    for number in range(1, count + 1):
        seg = found[f"segment{number}"]
        there = f"{where} segment{number}"
        start = _number(seg, "start_extent", there)
        length = _number(seg, "extent_count", there, low=1)
        if start != next_extent:
            raise FileSystemError(f"LVM metadata: {there} starts at extent {start}, not at "
                                  f"{next_extent} where the segments before it end")
        next_extent = start + length
        kind = _text(seg, "type", there)
        if kind != "striped":
            out.append(LvmSegment(start, length, kind))
            continue
        stripe_count = _number(seg, "stripe_count", there, low=1)
        if stripe_count > MAX_STRIPES:
            raise FileSystemError(f"LVM metadata: {there} has {stripe_count} stripes")
        stripe_size = _number(seg, "stripe_size", there, low=1) if stripe_count > 1 else 0
        out.append(LvmSegment(start, length, kind, stripe_count, stripe_size,
                              _stripe_list(seg.get("stripes"), stripe_count, there)))
    return tuple(out)


def _stripe_list(stripes: Value | None, count: int, where: str) -> tuple[tuple[str, int], ...]:
    """``["pv0", 10, "pv1", 10]`` as (physical volume name, first extent) pairs."""
    pairs: list[tuple[str, int]] = []
    if isinstance(stripes, list) and len(stripes) == 2 * count:
        for pv, first in zip(stripes[::2], stripes[1::2], strict=True):
            if isinstance(pv, str) and isinstance(first, int) and first >= 0:
                pairs.append((pv, first))
    if len(pairs) != count:
        raise FileSystemError(f"LVM metadata: {where} does not list its {count} stripes as "
                              "physical volume and first extent")
    return tuple(pairs)


def _volume(name: str, lv: Section, places: _Places) -> LvmVolume:
    where = f"logical volume '{name[:64]}'"
    segments = _segments(lv, where)
    extents = segments[-1].start_extent + segments[-1].extent_count if segments else 0
    base = LvmVolume(name=name, id=_text(lv, "id", where), status=_words(lv, "status"),
                     flags=_words(lv, "flags"), size=extents * places.extent,
                     segments=segments)
    for number, seg in enumerate(segments, start=1):
        if seg.type == "striped":
            _check_stripes(seg, f"{where} segment{number}", places)
    why = _why_unread(segments, places)
    if why is not None:
        return replace(base, unread=why)
    sets = [_stripe_set(seg, places) for seg in segments]
    if any(len(s.offsets) > 1 for s in sets):
        return replace(base, stripes=tuple(sets))
    runs: list[Extent] = []
    for s in sets:
        if runs and runs[-1].offset + runs[-1].size == s.offsets[0]:
            runs[-1] = Extent(runs[-1].offset, runs[-1].size + s.size)
        else:
            runs.append(Extent(s.offsets[0], s.size))
    return replace(base, extents=tuple(runs))


def _check_stripes(seg: LvmSegment, where: str, places: _Places) -> None:
    """Each stripe names a physical volume of the group and lies inside its extents."""
    if seg.extent_count % seg.stripe_count:
        raise FileSystemError(f"LVM metadata: {where}'s {seg.extent_count} extents do not "
                              f"divide into its {seg.stripe_count} stripes")
    per_stripe = seg.extent_count // seg.stripe_count
    for pv_name, first in seg.stripes:
        pv = places.pvs.get(pv_name)
        if pv is None:
            raise FileSystemError(f"LVM metadata: {where} lies on '{pv_name[:64]}', no "
                                  "physical volume of the group")
        if first + per_stripe > pv.pe_count:
            raise FileSystemError(f"LVM metadata: {where} takes extents {first}-"
                                  f"{first + per_stripe - 1} of {pv_name}, which has "
                                  f"{pv.pe_count}")


def _why_unread(segments: tuple[LvmSegment, ...], places: _Places) -> str | None:
    """Why the volume is not read from this physical volume; None when it is."""
    if not segments:
        return "it has no segments"
    for seg in segments:
        if seg.type == "thin":
            return "a thin volume: its data lies in its thin pool's mappings"
        if seg.type != "striped":
            return f"its segments are of type '{seg.type[:40]}'"
    return _why_not_here(segments, places)


def _why_not_here(segments: tuple[LvmSegment, ...], places: _Places) -> str | None:
    """Why the striped segments are not read from this physical volume; None when they are."""
    for seg in segments:
        for pv_name, _ in seg.stripes:
            pv = places.pvs[pv_name]
            if not pv.this:
                return f"needs physical volume {pv.id} ({pv_name}) of the group"
    for seg in segments:
        if seg.stripe_count > 1:
            chunk = seg.stripe_size * SECTOR
            if chunk & (chunk - 1) or (seg.extent_count // seg.stripe_count
                                       * places.extent) % chunk:
                return (f"its stripe size of {seg.stripe_size} sectors does not divide its "
                        "stripes evenly")
        for pv_name, first in seg.stripes:
            pv = places.pvs[pv_name]
            end = pv.pe_start + (first + seg.extent_count // seg.stripe_count) * places.extent
            if end > places.stream_size:
                return "its extents lie past the end of the image (cut short?)"
    return None


def _stripe_set(seg: LvmSegment, places: _Places) -> StripeSet:
    offsets = tuple(places.pvs[name].pe_start + first * places.extent
                    for name, first in seg.stripes)
    size = seg.extent_count * places.extent
    chunk = seg.stripe_size * SECTOR if seg.stripe_count > 1 else size
    return StripeSet(start=seg.start_extent * places.extent, size=size, chunk=chunk,
                     offsets=offsets)


# --- reading a logical volume --------------------------------------------------------------


class LogicalVolumeStream(ImageStream):
    """A logical volume read from its physical volume: linear extents end to end, or striped
    segments chunk by chunk."""

    def __init__(self, parent: ImageStream, volume: LvmVolume) -> None:
        if volume.unread is not None:
            raise FileSystemError(f"LVM logical volume '{volume.name}': {volume.unread}")
        sets = list(volume.stripes)
        if not sets:
            at = 0
            for e in volume.extents:
                sets.append(StripeSet(start=at, size=e.size, chunk=e.size, offsets=(e.offset,)))
                at += e.size
        super().__init__(sum(s.size for s in sets), sector_size=parent.sector_size)
        self.alignment = 1
        self._parent = parent
        self._sets = tuple(sets)
        self._name = volume.name

    def _read_aligned(self, offset: int, length: int) -> bytes:
        out = bytearray()
        for piece in self._sets:
            if length <= 0:
                break
            if not piece.start <= offset < piece.start + piece.size:
                continue
            while length > 0 and offset < piece.start + piece.size:
                inside = offset - piece.start
                row, within = divmod(inside, piece.chunk)
                stripe = row % len(piece.offsets)
                place = piece.offsets[stripe] + (row // len(piece.offsets)) * piece.chunk
                take = min(length, piece.chunk - within, piece.start + piece.size - offset)
                data = self._parent.pread(place + within, take)
                if len(data) != take:
                    raise FileSystemError(f"LVM logical volume '{self._name}': its bytes at "
                                          f"{offset} lie past the end of the physical volume")
                out += data
                offset += take
                length -= take
        return bytes(out)

    @property
    def info(self) -> StreamInfo:
        parent = self._parent.info
        return StreamInfo(format=f"{parent.format}-lvm", files=parent.files,
                          media_size=self.size, sector_size=self.sector_size,
                          details={"volume": self._name})


def open_volume(stream: ImageStream, volume: LvmVolume) -> ImageStream:
    """The bytes of ``volume`` (read from the physical volume ``stream``) as a stream; raises
    :class:`FileSystemError` for a volume named unread."""
    return LogicalVolumeStream(stream, volume)
