"""Walking an E01 set's section chains once, at open: what the reader needs to find every chunk.

:func:`load_layout` checks the segment numbering, every section descriptor's checksum and the
chain's shape (docs/EWF.md §10), and collects headers, volume, hashes, error ranges and one
:class:`ChunkGroup` per table. Every table is read and checked at open (both checksums, the
``table2`` fallback and comparison), but its entries are not kept: a group records where the
entries that passed lie and their Adler-32, and :func:`read_entries` reads them again (and checks
them against that Adler-32) when a chunk of the group is first needed. Why: 4 bytes per chunk is
128 MiB per TiB of media, which ``info`` never needs, while reading and checking them costs
~0.2 s per TiB. Damage that the reader can work around (a bad ``table`` with a good ``table2``,
a bad ``header2`` copy) becomes a :class:`SectionProblem`; damage it cannot (a broken
descriptor, both tables bad, a missing segment) raises a typed error naming the file and byte
offset.

SMART (EWF-S01) sets walk the same chains (docs/EWF.md §12): a 94-byte volume section, and each
``table`` section holds its chunks after its entries (no ``sectors``, no ``table2``), so that only
a table's header and entries are read at open, and its chunks end where the section ends.
"""

from __future__ import annotations

import os
import re
import sys
import zlib
from array import array
from dataclasses import dataclass, field
from pathlib import Path

from bitwitness.errors import (
    CorruptImageError,
    IncompleteImageError,
    InputError,
    MissingSegmentError,
    UnsupportedFormatError,
)
from bitwitness.evidence_io import MAX_OFFSET, confine_part, open_readonly, read_head
from bitwitness.ewf import structures as st
from bitwitness.ewf.headers import decode_header_text, parse_header
from bitwitness.ewf.naming import E01, family, segment_path, set_members, suffix_number

#: Header text (header2, header) inflates to at most this: EnCase caps each value at a few
#: thousand characters, and the largest real header2 (many ``srce``/``sub`` entries) is far
#: below it. A section inflating beyond it is damaged (or hostile), never held in memory.
MAX_HEADER_TEXT = 4 << 20
#: Largest chunk the reader accepts: ewfacquire's largest (32 768 sectors of 512 bytes).
#: Bigger claims (a crafted volume with 2^31 sectors per chunk) would size every buffer.
MAX_CHUNK_SIZE = 16 << 20
#: Section bodies read whole at open (headers, volume, tables, hashes, error2) are at most
#: this big; only ``sectors`` (never read at open) is larger. 64 MiB holds 16 M table entries.
MAX_SECTION_BODY = 64 << 20
#: Bytes read at once by the chain walk for a descriptor or a small body (see ``_Walker.read``).
READ_AHEAD = 4096


@dataclass(frozen=True)
class SectionProblem:
    """A damaged section the reader worked around (or ignored): recorded, never silent."""

    segment: Path
    file_offset: int
    section: str
    reason: str


@dataclass(slots=True)
class ChunkGroup:
    """One sectors/table pair: chunk ``first_chunk + i`` starts at ``base + entries[i] & mask``.

    The entries themselves are not held (see the module): ``entries_at`` is where the copy that
    passed its checks at open keeps them, ``adler`` their Adler-32 then. Slotted: a reader keeps
    one per group, and a terabyte written by older BitWitness versions (4 MiB groups) has
    262 144.
    """

    segment: int  #: index into the segment list
    first_chunk: int
    count: int  #: entries (chunks) in the group, at least 1
    base: int
    end: int  #: file offset where the last chunk's bytes end (the table's own offset)
    entries_at: int  #: file offset of the checked entries (in ``table``, ``table2`` or SMART)
    adler: int  #: Adler-32 of those ``4 * count`` bytes when they were checked at open
    table: int  #: file offset of the group's ``table`` descriptor (for error messages)


@dataclass
class Layout:
    """Everything found while walking the chains."""

    segments: list[Path]
    kind: str = E01  #: the naming family (``naming.E01`` or ``naming.SMART``)
    volume: st.Volume | None = None
    header2: dict[str, str] | None = None
    header: dict[str, str] | None = None
    #: the first ``header`` section's category count and line end (``"1\r\n"``, ``"3\n"``):
    #: which writer made it (headers.format_name)
    header_style: str = ""
    hashes: dict[str, str] = field(default_factory=dict)
    hash_sources: dict[str, str] = field(default_factory=dict)  #: the section each came from
    error_ranges: list[tuple[int, int]] = field(default_factory=list)
    groups: list[ChunkGroup] = field(default_factory=list)
    problems: list[SectionProblem] = field(default_factory=list)
    complete: bool = False
    allow_incomplete: bool = False
    incomplete_reason: str = ""
    chunk_total: int = 0
    #: an unfinished set's sectors its volume declares but its complete groups do not hold:
    #: (first, last), as ``ewfverify`` names them; None for a complete set or an unknown size
    missing_sectors: tuple[int, int] | None = None


def find_segments(path: Path) -> list[Path]:
    """The set ``path`` belongs to, ordered by the segment number in each file header."""
    path = Path(path)
    kind = family(path)
    members = set_members(path)
    if path not in members.values():
        members = {suffix_number(path.suffix, kind) or 1: path}
    if list(members.values()) == [path] and _has_magic(path) and _header_number(path) == 1:
        # a first segment alone under a name that is no segment's (evidence.raw, disk.img: a
        # three-letter extension reads as segment 8,910 or 3,122): its header is the truth
        members = {1: path}
    by_number: dict[int, Path] = {}
    for name_number, member in sorted(members.items()):
        if member != path:  # before opening it: a FIFO named x.E02 would block the open
            confine_part(path.parent, member.name, what="EWF segment")
        if member != path and not _has_magic(member):
            # a file that merely looks like a segment name (x.raw next to x.E01), or a segment
            # whose writer was stopped before its file header was whole (see _Walker._terminal)
            continue
        number = _header_number(member)
        if number != name_number:
            raise CorruptImageError(
                f"file header says segment {number} but the name says segment {name_number}",
                path=member, offset=9)
        by_number[number] = member
    if 1 not in by_number:
        first = segment_path(path, 1, kind).name
        raise MissingSegmentError(f"the first segment {first} is missing", path=path)
    for number in range(1, max(by_number) + 1):
        if number not in by_number:
            raise MissingSegmentError(
                f"segment {segment_path(path, number, kind).name} of {max(by_number)} is "
                "missing",
                path=path)
    return [by_number[n] for n in sorted(by_number)]


def _has_magic(path: Path) -> bool:
    """Whether ``path`` starts with a whole E01 file header (13 bytes, the EVF signature)."""
    try:
        head = read_head(path, st.FILE_HEADER_SIZE)
    except (OSError, InputError):
        return False
    return len(head) == st.FILE_HEADER_SIZE and head.startswith(st.EVF_MAGIC)


def _not_begun(path: Path) -> str:
    """Why the segment after a last ``next`` is not part of the set: absent, or a file whose
    writer was stopped before its 13-byte file header was whole (ewfacquire creates the file,
    then writes): that is an interrupted write, not a stray file."""
    try:
        size = path.stat().st_size
    except OSError:
        return f"{path.name} does not exist"
    if size < st.FILE_HEADER_SIZE:
        return (f"{path.name} holds no segment yet ({size} bytes, less than a file header: "
                "the write stopped there)")
    return f"{path.name} is not a segment (no E01 file header)"


def _header_number(path: Path) -> int:
    fd = open_readonly(path)
    try:
        head = os.pread(fd, st.FILE_HEADER_SIZE, 0)
    finally:
        os.close(fd)
    for magic, what in ((st.EVF2_MAGIC, "EWF2 (Ex01)"), (st.LVF_MAGIC, "logical evidence (L01)"),
                        (st.LEF2_MAGIC, "logical EWF2 (Lx01)")):
        if head.startswith(magic):
            raise UnsupportedFormatError(f"{path}: {what} is not read by BitWitness's own reader")
    if len(head) < st.FILE_HEADER_SIZE and st.pack_file_header(1).startswith(head):
        # created, then stopped before its 13-byte file header was whole (a disk full on the
        # first segment): an unfinished write, not damage
        raise IncompleteImageError(f"{path.name} holds no segment yet ({len(head)} bytes, less "
                                   "than a file header: the write stopped there)", path=path)
    try:
        return st.unpack_file_header(head)
    except ValueError as exc:
        raise CorruptImageError(str(exc), path=path, offset=0) from None


class _Walker:
    """Walks one segment's chain; a small state machine over its sections."""

    def __init__(self, layout: Layout, index: int, *, last: bool) -> None:
        self.layout = layout
        self.index = index
        self.path = layout.segments[index]
        self.last = last
        self.fd = open_readonly(self.path)
        self.size = os.fstat(self.fd).st_size
        self.pending_table: tuple[st.Descriptor, str] | None = None
        self.table_body: bytes | None = None
        self.sectors: st.Descriptor | None = None
        self._ahead = b""  #: the last read-ahead, from file offset ``_ahead_at``
        self._ahead_at = 0
        self._handlers = {
            "header2": self._header, "header": self._header, "volume": self._volume,
            "disk": self._volume, "data": self._volume, "sectors": self._sectors,
            "table": self._table, "table2": self._table2, "hash": self._hash,
            "digest": self._digest, "error2": self._error2, "xheader": self._xml,
            "xhash": self._xml,
        }

    def read(self, offset: int, length: int) -> bytes:
        """``length`` bytes at ``offset`` (fewer at the end of the file).

        Small reads are served from a :data:`READ_AHEAD` window: a group's ``table``, ``table2``
        and the next ``sectors`` descriptor usually lie in one, and a set written in small
        groups (older BitWitness: 262 144 per TiB) then costs one ``pread`` per group there."""
        start = offset - self._ahead_at
        if start >= 0 and start + length <= len(self._ahead):
            return self._ahead[start:start + length]
        if length >= READ_AHEAD:
            return os.pread(self.fd, length, offset)
        self._ahead = os.pread(self.fd, READ_AHEAD, offset)
        self._ahead_at = offset
        return self._ahead[:length]

    def problem(self, desc: st.Descriptor, reason: str) -> None:
        self.layout.problems.append(SectionProblem(self.path, desc.offset, desc.type, reason))

    def walk(self) -> None:
        try:
            self._walk()
        finally:
            os.close(self.fd)

    def _stop_incomplete(self, offset: int, what: str) -> None:
        message = f"{what} at byte {offset}"
        if not self.last:
            raise CorruptImageError(f"segment is cut short: {what}", path=self.path, offset=offset)
        self.layout.incomplete_reason = f"{self.path.name}: {message}"

    def _walk(self) -> None:
        head = self.read(0, st.FILE_HEADER_SIZE)
        if head[8:9] != b"\x01" or head[11:13] != b"\x00\x00":
            self.layout.problems.append(SectionProblem(
                self.path, 8, "file header", "unexpected field markers in the file header"))
        offset = st.FILE_HEADER_SIZE
        # locals: this loop runs once per section, 786 432 times for a TiB in 4 MiB groups
        read, unpack, section, file_size = self.read, st.unpack_descriptor, self._section, self.size
        descriptor_size, terminal = st.DESCRIPTOR_SIZE, st.TERMINAL_SECTIONS
        while True:
            raw = read(offset, descriptor_size)
            if len(raw) < descriptor_size:
                self._stop_incomplete(offset, "the file ends without a next/done section")
                return
            try:
                desc = unpack(raw, offset)
            except ValueError as exc:
                raise CorruptImageError(str(exc), path=self.path, offset=offset) from None
            kind, _, following, size = desc
            if kind == "sectors" and (following < offset or self._placeholder(desc)):
                self._stop_incomplete(offset, "an unfinished sectors section (interrupted write)")
                return
            if kind in terminal or (following == offset and size in (0, 76)):
                self._terminal(desc)
                return
            if following <= offset or (size and following != offset + size):
                raise CorruptImageError(
                    f"section '{kind}' has an inconsistent next/size "
                    f"(next {following}, size {size})", path=self.path, offset=offset)
            if following > file_size:
                self._stop_incomplete(offset, f"section '{kind}' runs past the end of "
                                              f"the file ({file_size} bytes)")
                return
            section(desc)
            offset = following

    def _placeholder(self, desc: st.Descriptor) -> bool:
        """Whether ``desc`` is the ``sectors`` descriptor libewf writes before a group's chunks
        and rewrites once the group's tables are written (docs/EWF.md §3): an empty body, a
        valid checksum, ``next`` at its own end, and what follows it not a descriptor (the
        chunks, or nothing yet). A set whose writer was killed before the rewrite ends there;
        reading on would take the first chunk's bytes for a descriptor and call the set
        corrupt. A group's ``sectors`` section always holds at least one chunk, so an empty one
        followed by a valid descriptor is left to the walk."""
        if desc.size != st.DESCRIPTOR_SIZE or desc.next != desc.offset + st.DESCRIPTOR_SIZE:
            return False
        try:
            st.unpack_descriptor(self.read(desc.next, st.DESCRIPTOR_SIZE), desc.next)
        except ValueError:
            return True
        return False

    def _terminal(self, desc: st.Descriptor) -> None:
        if self.pending_table is not None:
            self._bad_table_unrecovered()
        if desc.type == "done":
            if not self.last:
                raise CorruptImageError("a 'done' section before the last segment",
                                        path=self.path, offset=desc.offset)
            self.layout.complete = True
        elif self.last:
            following = segment_path(self.path, self.index + 2, self.layout.kind)
            missing = following.name
            if self.layout.allow_incomplete:
                self.layout.incomplete_reason = (f"{self.path.name} ends with 'next' but "
                                                 f"{_not_begun(following)}")
                return
            raise MissingSegmentError(
                f"ends with 'next' but the following segment {missing} is missing "
                "(or the image is incomplete)", path=self.path)

    def _section(self, desc: st.Descriptor) -> None:
        if self.pending_table is not None and desc.type != "table2":
            self._bad_table_unrecovered()
        handler = self._handlers.get(desc.type)
        if handler is not None:
            handler(desc)

    def _body(self, desc: st.Descriptor) -> bytes:
        """The section's body; its size was checked against the file by the walk."""
        size = desc.body_size
        if size > MAX_SECTION_BODY:
            raise CorruptImageError(
                f"section '{desc.type}' claims a {size}-byte body (at most "
                f"{MAX_SECTION_BODY} is read)", path=self.path, offset=desc.offset)
        return self.read(desc.offset + st.DESCRIPTOR_SIZE, size)

    def _header(self, desc: st.Descriptor) -> None:
        """Every copy is decoded, so that damage to a copy nobody reads is still reported."""
        if self.index != 0:
            return
        attr = "header2" if desc.type == "header2" else "header"
        try:
            text = decode_header_text(inflate_header(self._body(desc)))
            fields = parse_header(text)
        except (zlib.error, ValueError) as exc:
            self.problem(desc, f"{desc.type} section does not decode ({exc})")
            return
        known = getattr(self.layout, attr)
        if known is None:
            setattr(self.layout, attr, fields)
            if attr == "header":
                first, _, _ = text.partition("\n")
                self.layout.header_style = first.rstrip("\r") + (
                    "\r\n" if first.endswith("\r") else "\n")
        elif known != fields:
            self.problem(desc, f"this {desc.type} copy differs from the first one")

    def _xml(self, desc: st.Descriptor) -> None:
        """EWF-X's ``xheader`` and ``xhash`` (zlib-compressed XML, libewf's own): checked as the
        other header copies are (libewf refuses a set whose copy does not inflate), and the
        hashes ``xhash`` records are held against the other stored hashes."""
        try:
            text = decode_header_text(inflate_header(self._body(desc)))
        except (zlib.error, ValueError) as exc:
            self.problem(desc, f"{desc.type} section does not decode ({exc})")
            return
        if desc.type == "xhash":
            for tag, name in (("md5", "md5"), ("sha1", "sha1")):
                found = re.search(rf"<{tag}>\s*([0-9a-f]+)\s*</{tag}>", text, re.IGNORECASE)
                if found:
                    self._store_hash(desc, name, found.group(1).lower())

    def _volume(self, desc: st.Descriptor) -> None:
        smart = desc.body_size == st.SMART_VOLUME_BODY_SIZE
        if desc.body_size < st.VOLUME_BODY_SIZE and not smart:
            raise UnsupportedFormatError(
                f"{self.path}: a {desc.body_size}-byte {desc.type} section (EnCase's has 1052 "
                "bytes, SMART's 94) is not read by BitWitness's own reader")
        try:
            unpack = st.unpack_smart_volume if smart else st.unpack_volume
            volume, checksum_ok = unpack(self._body(desc))
        except ValueError as exc:
            raise CorruptImageError(str(exc), path=self.path, offset=desc.offset) from None
        known = self.layout.volume
        if (known is not None and known.smart != smart) or (smart and self.layout.groups):
            raise CorruptImageError(
                f"a {'SMART' if smart else 'EnCase'} {desc.type} section in a set whose "
                f"{'tables come first' if known is None else 'volume is of the other kind'}",
                path=self.path, offset=desc.offset)
        if not checksum_ok:
            self.problem(desc, f"{desc.type} section fails its Adler-32 checksum")
        if self.layout.volume is None:
            if not checksum_ok and desc.type != "data":
                raise CorruptImageError("volume section fails its Adler-32 checksum",
                                        path=self.path, offset=desc.offset)
            self.layout.volume = volume
        elif checksum_ok and volume.guid != self.layout.volume.guid:
            raise CorruptImageError("segment belongs to another image (set identifier differs)",
                                    path=self.path, offset=desc.offset)

    def _sectors(self, desc: st.Descriptor) -> None:
        self.sectors = desc

    def _table(self, desc: st.Descriptor) -> None:
        if self.layout.volume is not None and self.layout.volume.smart:
            self._smart_table(desc)
            return
        self.table_body = None
        try:
            self._add_group(desc, desc)
        except ValueError as exc:
            self.problem(desc, f"table {exc}; using table2")
            self.pending_table = (desc, str(exc))

    def _table2(self, desc: st.Descriptor) -> None:
        if self.pending_table is None:
            if self.table_body is not None and self._body(desc) != self.table_body:
                self.problem(desc, "table2 differs from its table (a damaged copy)")
            return
        table, _reason = self.pending_table
        self.pending_table = None
        try:
            self._add_group(desc, table)
        except ValueError as exc:
            raise CorruptImageError(f"table and table2 are both damaged ({exc})",
                                    path=self.path, offset=table.offset) from None

    def _bad_table_unrecovered(self) -> None:
        assert self.pending_table is not None
        table, reason = self.pending_table
        raise CorruptImageError(f"table is damaged ({reason}) and no table2 follows",
                                path=self.path, offset=table.offset)

    def _add_group(self, desc: st.Descriptor, table: st.Descriptor) -> None:
        """Check the table body at ``desc``; chunks end where ``table`` (the first copy) begins.

        The body is read whole (to compare it with ``table2``), its entries are not kept."""
        body = self._body(desc)
        if desc is table:
            self.table_body = body
        count, base = st.unpack_table_header(body[:st.TABLE_HEADER_SIZE])
        end = st.TABLE_HEADER_SIZE + 4 * count
        if len(body) < end:
            raise ValueError(f"holds {count} entries but its body is only {len(body)} bytes")
        raw = memoryview(body)[st.TABLE_HEADER_SIZE:end]
        adler = st.adler32(raw)
        if len(body) >= end + 4 and adler != int.from_bytes(body[end:end + 4], "little"):
            raise ValueError("entries fail their Adler-32 checksum")
        if base > min(self.size, MAX_OFFSET):
            raise ValueError(f"base offset {base} lies beyond the end of the file "
                             f"({self.size} bytes)")
        if count:
            self.layout.groups.append(ChunkGroup(
                self.index, self.layout.chunk_total, count, base, table.offset,
                desc.body_offset + st.TABLE_HEADER_SIZE, adler, table.offset))
            self.layout.chunk_total += count

    def _smart_table(self, desc: st.Descriptor) -> None:
        """A SMART table (§12.3): header, entries, then its chunks up to the section's end.

        There is no ``table2`` to fall back on, so a damaged header or entry count is corruption.
        Only the header and entries are read (the chunks can be a whole segment); the entries'
        own Adler-32 is checked where a writer left room for it before the first chunk
        (EnCase 1 does, ewfacquire's SMART does not).
        """
        section_end = desc.next
        try:
            count, base = st.unpack_table_header(self.read(desc.body_offset,
                                                           st.TABLE_HEADER_SIZE))
        except ValueError as exc:
            raise CorruptImageError(f"SMART table {exc}", path=self.path,
                                    offset=desc.offset) from None
        entries_at = desc.body_offset + st.TABLE_HEADER_SIZE
        entries_end = entries_at + 4 * count
        if entries_end > section_end or 4 * count > MAX_SECTION_BODY:
            raise CorruptImageError(
                f"SMART table holds {count} entries but its section ends at byte {section_end}",
                path=self.path, offset=desc.offset)
        if base > min(self.size, MAX_OFFSET):
            raise CorruptImageError(f"table base offset {base} lies beyond the end of the file "
                                    f"({self.size} bytes)", path=self.path, offset=desc.offset)
        if not count:
            return
        raw = self.read(entries_at, 4 * count)
        adler = st.adler32(raw)
        first = base + (int.from_bytes(raw[:4], "little") & st.OFFSET_MASK)
        if entries_end + 4 <= first <= section_end and adler != int.from_bytes(
                self.read(entries_end, 4), "little"):
            raise CorruptImageError("SMART table entries fail their Adler-32 checksum",
                                    path=self.path, offset=desc.offset)
        self.layout.groups.append(ChunkGroup(self.index, self.layout.chunk_total, count, base,
                                             section_end, entries_at, adler, desc.offset))
        self.layout.chunk_total += count

    def _hash(self, desc: st.Descriptor) -> None:
        try:
            md5 = st.unpack_hash(self._body(desc))
        except ValueError as exc:
            self.problem(desc, str(exc))
            return
        if md5:
            self._store_hash(desc, "md5", md5)

    def _digest(self, desc: st.Descriptor) -> None:
        try:
            md5, sha1 = st.unpack_digest(self._body(desc))
        except ValueError as exc:
            self.problem(desc, str(exc))
            return
        if md5:
            self._store_hash(desc, "md5", md5)
        if sha1:
            self._store_hash(desc, "sha1", sha1)

    def _store_hash(self, desc: st.Descriptor, name: str, value: str) -> None:
        """Keep the first section's value; a later section storing another is a problem that
        names both sections, since either may be the one changed after it was written."""
        known = self.layout.hashes.get(name)
        if known is not None and known != value:
            first = self.layout.hash_sources.get(name, "another")
            self.problem(desc, f"its {name.upper()} {value} differs from {known}, stored in the "
                               f"{first} section: one of the two was changed after the set "
                               "was written, which one the set cannot tell")
            return
        self.layout.hashes[name] = value
        self.layout.hash_sources[name] = desc.type

    def _error2(self, desc: st.Descriptor) -> None:
        try:
            self.layout.error_ranges = st.unpack_error2(self._body(desc))
        except ValueError as exc:
            self.problem(desc, str(exc))


def read_entries(fd: int, group: ChunkGroup, path: Path) -> array[int]:
    """The group's table entries, read from ``fd`` (its segment, open) and checked again.

    They passed their checks when the set was opened; what is read now must be those very
    bytes (same Adler-32): a segment changed or damaged since then raises
    :class:`CorruptImageError` naming the table, never gives other offsets.
    """
    length = 4 * group.count
    try:
        raw = os.pread(fd, length, group.entries_at)
    except OSError as exc:
        raise CorruptImageError(f"cannot read the table's entries ({exc.strerror or exc})",
                                path=path, offset=group.table) from None
    if len(raw) != length or st.adler32(raw) != group.adler:
        raise CorruptImageError("the table's entries changed since the image was opened (they "
                                "no longer match the checksum checked then)", path=path,
                                offset=group.table)
    entries = array("I")
    entries.frombytes(raw)
    if sys.byteorder == "big":
        entries.byteswap()
    return entries


def inflate_header(body: bytes) -> bytes:
    """A header section's text, inflated to at most :data:`MAX_HEADER_TEXT` bytes.

    ``ValueError`` when the stream inflates further (a decompression bomb) or is cut short.
    """
    inflater = zlib.decompressobj()
    text = inflater.decompress(body, MAX_HEADER_TEXT + 1)
    if len(text) > MAX_HEADER_TEXT:
        raise ValueError(f"inflates to more than {MAX_HEADER_TEXT} bytes")
    if not inflater.eof:
        raise ValueError("the compressed text is cut short")
    return text


def load_layout(path: Path, *, allow_incomplete: bool) -> Layout:
    """Walk every segment of the set ``path`` belongs to; see the module docstring."""
    layout = Layout(find_segments(path), family(Path(path)), allow_incomplete=allow_incomplete)
    count = len(layout.segments)
    for index in range(count):
        _Walker(layout, index, last=index == count - 1).walk()
    first = layout.segments[0]
    if layout.volume is None:
        if layout.incomplete_reason:
            raise IncompleteImageError(f"the image is incomplete ({layout.incomplete_reason}) "
                                       "and holds no media description yet", path=first)
        raise CorruptImageError("no volume section: not a usable E01 image", path=first)
    volume = layout.volume
    if volume.chunk_size <= 0:
        raise CorruptImageError("volume section gives a chunk size of 0", path=first)
    if volume.chunk_size > MAX_CHUNK_SIZE:
        raise CorruptImageError(
            f"volume section gives {volume.sectors_per_chunk} sectors of "
            f"{volume.bytes_per_sector} bytes per chunk ({volume.chunk_size} bytes; EWF "
            f"writers use at most {MAX_CHUNK_SIZE})", path=first)
    if not layout.complete:
        _name_missing(layout)
    if not layout.complete and not allow_incomplete:
        raise IncompleteImageError(
            f"the image is INCOMPLETE ({layout.incomplete_reason or 'no done section'}): "
            "it was never finished (interrupted write or truncated file)", path=first)
    return layout


def _name_missing(layout: Layout) -> None:
    """Record (and add to the reason) the sectors an unfinished set lacks: those its volume
    declares past what its complete chunk groups hold, the very range ``ewfverify`` reports
    (``at sector(s): FIRST - LAST``). An examiner needs the range, not only a byte count, to
    know which part of the disk the image cannot speak for. A volume that declares no size
    (written before the size was known) leaves the range open, and says so."""
    volume = layout.volume
    assert volume is not None
    held = layout.chunk_total * volume.sectors_per_chunk
    if volume.sector_count <= 0:
        missing = (f"the volume section records no media size: sectors from {held} on were "
                   "never written")
    elif held < volume.sector_count:
        layout.missing_sectors = (held, volume.sector_count - 1)
        missing = (f"sectors {held} - {volume.sector_count - 1} (number: "
                   f"{volume.sector_count - held}) are not in the set")
    else:
        return
    layout.incomplete_reason = "; ".join(
        part for part in (layout.incomplete_reason or "no 'done' section", missing) if part)
