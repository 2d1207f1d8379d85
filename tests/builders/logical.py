"""EWF logical evidence files, L01 (EWF1, ``LVF``) and Lx01 (EWF2, ``LEF2``), built from libyal's
public descriptions of the formats ("Expert Witness Compression Format (EWF)" and "... 2 (EWF2)",
the ltree / single files sections). No tool on this machine writes either: ``ewfacquire`` and
``ewfacquirestream`` (libewf-tools 20140813) write E01/Ex01 only, and libewf-python opens no file
for writing. libewf is the judge that what this writes is valid: ``ewfinfo``/``ewfexport -f
files`` (20140813, L01 only: they do not open EWF2) and pyewf (libewf 2026) must list the same
tree, names, sizes, times and contents.

What a logical evidence file is: the files' contents laid end to end form the "media" (chunks,
tables and media hashes exactly as in an E01/Ex01), and a UTF-16LE text, the ltree (L01: the
``ltree`` section, after a 48-byte header holding the text's MD5, size and an Adler-32; Lx01: the
"single files data" section 0x20), describes the files: five categories, each a name line, a
count line, a tab-separated line of type tags, then entries of two lines (``0<TAB>children``, the
values): ``rec`` (``tb``: the media's byte count), ``perm`` (permission groups; the root has
``pr`` 10), ``srce`` (acquisition sources, identifiers 1..n), ``sub`` (subjects) and ``entry``
(the file tree, depth first: a nameless root, then each folder (``p`` 1) followed by its
children). A file's data is ``be``: ``1 <offset> <size>`` in hexadecimal, offset into the media;
times are POSIX seconds (``cr`` created, ``ac`` accessed, ``wr`` written, ``mo`` entry changed);
``ha`` its MD5. EnCase 5/6 order the tags ``p n id opr src sub ...`` (``be`` 22nd), EnCase 7
``mid ls be ...`` (``be`` third, and an ``ltypes`` section precedes the ``ltree``); libewf tells
the versions apart by where ``be`` stands.

L01 sections, in order: header2 twice, header, volume (media type 0x0e, logical: not physical),
sectors, table, table2, [ltypes], ltree, data, digest, hash, done. Lx01: case data, device
information (drive type ``l``), sector data, sector table, single files data, MD5, SHA-1, done.
"""

from __future__ import annotations

import hashlib
import struct
import uuid
import zlib
from dataclasses import dataclass, field
from pathlib import Path

SECTOR = 512
SECTORS_PER_CHUNK = 64
CHUNK = SECTOR * SECTORS_PER_CHUNK
MEDIA_LOGICAL = 0x0E
FLAG_IMAGE = 0x01


@dataclass(frozen=True)
class Item:
    """One file or folder of the evidence: ``path`` inside it ("/"-separated, or a tuple of names
    when a name itself holds "/"), ``data`` for a file (``None`` for a folder); times as POSIX
    seconds; ``recorded_md5`` records another MD5 than the data's (a file whose stored hash does
    not match its bytes)."""

    path: str | tuple[str, ...]
    data: bytes | None = None
    created: int = 1_600_000_000
    accessed: int = 1_600_000_100
    modified: int = 1_600_000_200
    changed: int = 1_600_000_300
    recorded_md5: str | None = None

    @property
    def parts(self) -> tuple[str, ...]:
        return self.path if isinstance(self.path, tuple) else tuple(self.path.split("/"))


@dataclass
class _Node:
    name: str
    item: Item | None = None
    children: dict[str, _Node] = field(default_factory=dict)
    offset: int = 0  #: where its data starts in the media

    @property
    def is_folder(self) -> bool:
        return self.item is None or self.item.data is None


@dataclass(frozen=True)
class Built:
    """What the builder wrote: the first segment, the media (files end to end) and where each
    file's data lies in it."""

    path: Path
    media: bytes
    offsets: dict[str, int]


def _adler(data: bytes) -> int:
    return zlib.adler32(data) & 0xFFFFFFFF


def _tree(items: list[Item]) -> _Node:
    root = _Node("")
    for item in items:
        parts = item.parts
        node = root
        for part in parts[:-1]:
            node = node.children.setdefault(part, _Node(part))
        leaf = node.children.setdefault(parts[-1], _Node(parts[-1]))
        leaf.item = item
    return root


def _lay_out(root: _Node) -> tuple[bytes, dict[str, int]]:
    """The media: every file's data in tree order, end to end."""
    media = bytearray()
    offsets: dict[str, int] = {}

    def visit(node: _Node, prefix: str) -> None:
        for child in node.children.values():
            path = f"{prefix}/{child.name}"
            if child.is_folder:
                visit(child, path)
            else:
                assert child.item is not None
                assert child.item.data is not None
                child.offset = len(media)
                offsets[path] = len(media)
                media.extend(child.item.data)

    visit(root, "")
    return bytes(media), offsets


# --- the ltree text ---------------------------------------------------------------------------

TYPES_ENCASE6 = ("p", "n", "id", "opr", "src", "sub", "cid", "jq", "cr", "ac", "wr", "mo", "dl",
                 "aq", "ha", "ls", "du", "lo", "po", "mid", "cfi", "be", "pm", "lpt")
TYPES_ENCASE7 = ("mid", "ls", "be", "id", "cr", "ac", "wr", "mo", "dl", "sig", "ha", "sha", "ent",
                 "snh", "p", "n", "du", "lo", "po", "pm", "oes", "opr", "src", "sub", "cid", "jq",
                 "alt", "ep", "aq", "cfi", "sg", "ea", "lpt")


def _entry_values(node: _Node, ident: int, acquired: int) -> dict[str, str]:
    item = node.item
    values = {"id": str(ident), "src": "1", "sub": "1", "cid": "0", "aq": str(acquired),
              "lo": "-1", "po": "-1", "pm": "-1", "mid": uuid.uuid5(uuid.NAMESPACE_URL,
                                                                     f"{ident}").hex.upper()}
    values["n"] = node.name
    values["p"] = "1" if node.is_folder else ""
    if item is not None:
        values.update(cr=str(item.created), ac=str(item.accessed), wr=str(item.modified),
                      mo=str(item.changed))
    if not node.is_folder:
        assert item is not None
        assert item.data is not None
        size = len(item.data)
        values["ls"] = str(size)
        values["ha"] = item.recorded_md5 or hashlib.md5(item.data,
                                                       usedforsecurity=False).hexdigest()
        values["sha"] = hashlib.sha1(item.data, usedforsecurity=False).hexdigest()
        values["opr"] = "0"
        if size:
            values["be"] = f"1 {node.offset:x} {size:x}"
    return values


def ltree_text(root: _Node, media_size: int, *, encase7: bool, acquired: int = 1_700_000_000,
               media_md5: str = "", media_sha1: str = "") -> str:
    """The five categories, LF line ends (libewf also takes CRLF)."""
    types = TYPES_ENCASE7 if encase7 else TYPES_ENCASE6
    lines = ["5", "rec", "tb\tcl", f"{media_size}\t1", ""]
    perm_types = ("p", "n", "s", "pr", "nta", "nti")
    lines += ["perm", "0\t1", "\t".join(perm_types), "0\t0", "1\t\t\t10\t\t", ""]
    srce_types = ("p", "n", "id", "ev", "tb", "lo", "po", "ah", "sh", "gu", "aq")
    lines += ["srce", "1\t1", "\t".join(srce_types), "0\t1", "1\t\t\t\t\t-1\t-1\t\t\t\t",
              "0\t0", f"\tsource\t1\tEV-1\t{media_size}\t-1\t-1\t{media_md5}\t{media_sha1}\t0"
              f"\t{acquired}", ""]
    sub_types = ("p", "n", "id", "nu", "co", "gu")
    lines += ["sub", "1\t1", "\t".join(sub_types), "0\t1", "1\t\t\t\t\t", "0\t0",
              "\tsubject\t1\t1\t\t0", ""]
    count = [0]

    def entry(node: _Node) -> None:
        count[0] += 1
        values = _entry_values(node, count[0], acquired)
        lines.append(f"{26 if encase7 else 0}\t{len(node.children)}")
        lines.append("\t".join(values.get(t, "") for t in types))
        for child in node.children.values():
            entry(child)

    entry_lines_at = len(lines)
    lines += ["entry", "", "\t".join(types)]
    entry(root)
    lines[entry_lines_at + 1] = f"{count[0]}\t1"
    lines += ["", ""]
    return "\n".join(lines)


# --- EWF1: L01 ----------------------------------------------------------------------------------


def _chunks(media: bytes) -> list[tuple[bytes, bool]]:
    """Chunks of the media padded to whole sectors: even chunks zlib-compressed, odd ones stored
    with their Adler-32 (both kinds must be read); a chunk that does not shrink is stored, as
    EnCase stores it (libewf refuses a compressed chunk larger than the chunk: zlib makes one
    of about 1,500 random chunks so)."""
    padded = media + bytes(-len(media) % SECTOR)
    out = []
    for n, start in enumerate(range(0, len(padded), CHUNK)):
        piece = padded[start:start + CHUNK]
        body = zlib.compress(piece)
        if n % 2 == 0 and len(body) < len(piece):
            out.append((body, True))
        else:
            out.append((piece + struct.pack("<I", _adler(piece)), False))
    return out


def _header2(description: str, case_number: str, examiner: str, acquired: int) -> bytes:
    keys = ("a", "c", "n", "e", "t", "md", "sn", "av", "ov", "m", "u", "p", "dc")
    values = (description, case_number, "EV-1", examiner, "", "", "", "6.19", "Linux", "", "",
              "0", "")
    text = ("3\nmain\n" + "\t".join(keys) + "\n" + "\t".join(values) + "\n\n"
            "srce\n0\t1\np\tn\tid\tev\ttb\tlo\tpo\tah\tgu\taq\n0\t0\n\t\t\t\t\t-1\t-1\t\t\t\n\n"
            "sub\n0\t1\np\tn\tid\tnu\tco\tgu\n0\t0\n\t\t\t\t1\t\n\n")
    del acquired  # L01: EnCase leaves the acquiry and system dates empty
    return zlib.compress(b"\xff\xfe" + text.encode("utf-16-le"))


def _header(description: str, case_number: str, examiner: str) -> bytes:
    keys = ("c", "n", "a", "e", "t", "av", "ov", "m", "u", "p")
    values = (case_number, "EV-1", description, examiner, "", "6.19", "Linux", "", "", "0")
    text = "1\r\nmain\r\n" + "\t".join(keys) + "\r\n" + "\t".join(values) + "\r\n\r\n"
    return zlib.compress(text.encode("ascii"))


def _volume(chunks: int, sectors: int, guid: bytes) -> bytes:
    head = struct.pack("<B3xIIIQIIIB3xIIIB3xII16s", MEDIA_LOGICAL, chunks, SECTORS_PER_CHUNK,
                       SECTOR, sectors, 0, 0, 0, FLAG_IMAGE, 0, 0, 0, 1, SECTORS_PER_CHUNK, 0, guid)
    body = head + bytes(1048 - len(head))
    return body + struct.pack("<I", _adler(body))


def _write_with_holes(path: Path, out: bytearray, holes: list[tuple[int, int]]) -> None:
    """Write ``out`` with ``holes`` ((position in ``out``, bytes)) left unwritten: the file is
    sparse there and reads as zeros, so a section may declare a gigabyte without taking it."""
    with path.open("wb") as fh:
        done = 0
        for at, size in holes:
            fh.write(out[done:at])
            fh.seek(size, 1)
            done = at
        fh.write(out[done:])
        fh.truncate()


def build_l01(path: Path, items: list[Item], *, encase7: bool = False, case_number: str = "",
              examiner: str = "", description: str = "", stored_md5: str | None = None,
              ltree_override: str | None = None, ltree_declared: int | None = None) -> Built:
    """Write ``path`` (``NAME.L01``), one segment, holding ``items``. ``encase7`` writes the
    EnCase 7 variant (tag order with ``be`` third, ``ltypes`` section); ``stored_md5`` records
    another media MD5 than the real one (to test that the mismatch is found);
    ``ltree_declared`` makes the ltree section that many bytes of text long, the text followed
    by a hole (a sparse file: the size is declared and really there, the disk holds nothing)."""
    root = _tree(items)
    media, offsets = _lay_out(root)
    md5 = hashlib.md5(media, usedforsecurity=False).digest()
    sha1 = hashlib.sha1(media, usedforsecurity=False).digest()
    text = ltree_override if ltree_override is not None else ltree_text(
        root, len(media), encase7=encase7, media_md5=md5.hex(), media_sha1=sha1.hex())
    chunks = _chunks(media)
    sectors = -(-len(media) // SECTOR)
    guid = uuid.uuid4().bytes

    out = bytearray(b"LVF\x09\x0d\x0a\xff\x00\x01" + struct.pack("<HH", 1, 0))
    holes: list[tuple[int, int]] = []

    def here() -> int:
        return len(out) + sum(size for _, size in holes)

    def section(kind: str, body: bytes, *, last: bool = False, hole: int = 0) -> None:
        start = here()
        size = 76 + len(body) + hole
        following = start if last else start + size
        head = kind.encode("ascii").ljust(16, b"\x00") + struct.pack("<QQ", following,
                                                                    0 if last else size)
        head += bytes(40)
        out.extend(head + struct.pack("<I", _adler(head)) + body)
        if hole:
            holes.append((len(out), hole))

    section("header2", _header2(description, case_number, examiner, 0))
    section("header2", _header2(description, case_number, examiner, 0))
    section("header", _header(description, case_number, examiner))
    section("volume", _volume(len(chunks), sectors, guid))
    sectors_start = len(out)
    stored = b"".join(body for body, _ in chunks)
    # entries are relative to the table's base offset: the start of the sectors section
    entries = bytearray()
    position = 0
    for body, compressed in chunks:
        entries += struct.pack("<I", (76 + position) | (0x80000000 if compressed else 0))
        position += len(body)
    section("sectors", bytes(stored))
    head = struct.pack("<I4xQ4x", len(chunks), sectors_start)
    table = head + struct.pack("<I", _adler(head)) + bytes(entries) + struct.pack(
        "<I", _adler(bytes(entries)))
    section("table", table)
    section("table2", table)
    if encase7:
        section("ltypes", struct.pack("<HHH", 1, 0, 0))
    data = text.encode("utf-16-le")
    lhead = hashlib.md5(data, usedforsecurity=False).digest() + struct.pack("<Q", len(data))
    lhead_full = lhead + bytes(4) + bytes(20)
    checksum = _adler(lhead_full)
    lhead = lhead + struct.pack("<I", checksum) + bytes(20)
    section("ltree", lhead + data, hole=max(0, (ltree_declared or 0) - len(data)))
    section("data", _volume(len(chunks), sectors, guid))
    record_md5 = bytes.fromhex(stored_md5) if stored_md5 else md5
    digest = record_md5 + sha1 + bytes(40)
    section("digest", digest + struct.pack("<I", _adler(digest)))
    hash_body = record_md5 + bytes(16)
    section("hash", hash_body + struct.pack("<I", _adler(hash_body)))
    section("done", b"", last=True)
    _write_with_holes(path, out, holes)
    return Built(path, media, offsets)


# --- EWF2: Lx01 ---------------------------------------------------------------------------------

DEVICE_INFORMATION, CASE_DATA, SECTOR_DATA, SECTOR_TABLE = 1, 2, 3, 4
MD5_HASH, SHA1_HASH, DONE, SINGLE_FILES_DATA = 8, 9, 15, 0x20
COMPRESSED, CHECKSUMMED = 1, 2
MD5HASHED = 1


def _pad16(data: bytes) -> bytes:
    return data + bytes(-len(data) % 16)


def _object(tags: list[str], values: list[str]) -> bytes:
    text = "1\nmain\n" + "\t".join(tags) + "\n" + "\t".join(values) + "\n\n"
    return zlib.compress(b"\xff\xfe" + text.encode("utf-16-le"))


def build_lx01(path: Path, items: list[Item], *, case_number: str = "", examiner: str = "",
               description: str = "", stored_md5: str | None = None,
               acquired: int = 1_700_000_000, ltree_declared: int | None = None) -> Built:
    """Write ``path`` (``NAME.Lx01``), one segment, holding ``items``: the Ex01 layout with drive
    type ``l`` and the ltree text (EnCase 7 tags, no header: the section descriptor's MD5 covers
    it) as section 0x20 before the hashes. ``ltree_declared`` as for :func:`build_l01` (the
    section then carries no MD5)."""
    root = _tree(items)
    media, offsets = _lay_out(root)
    md5 = hashlib.md5(media, usedforsecurity=False).digest()
    sha1 = hashlib.sha1(media, usedforsecurity=False).digest()
    text = ltree_text(root, len(media), encase7=True, acquired=acquired,
                      media_md5=md5.hex(), media_sha1=sha1.hex())
    padded = media + bytes(-len(media) % SECTOR)
    chunk_count = -(-len(padded) // CHUNK)
    sectors = len(padded) // SECTOR
    guid = uuid.uuid4().bytes_le
    out = bytearray(b"LEF2\r\n\x81\x00" + bytes([2, 1]) + struct.pack("<HI", 1, 1) + guid)
    previous = 0
    holes: list[tuple[int, int]] = []

    def here() -> int:
        return len(out) + sum(size for _, size in holes)

    def section(kind: str | int, data: bytes, *, hashed: bool = False, hole: int = 0) -> None:
        nonlocal previous
        assert isinstance(kind, int)
        body = _pad16(data)
        start = here()
        out.extend(body)
        if hole:
            hole += -hole % 16
            holes.append((len(out), hole))
            hashed = False
        integrity = hashlib.md5(body, usedforsecurity=False).digest() if hashed else bytes(16)
        descriptor = struct.pack("<IIQQII", kind, MD5HASHED if hashed else 0, previous,
                                 len(body) + hole, 64, len(body) - len(data)) + integrity
        descriptor += bytes(12)
        out.extend(descriptor + struct.pack("<I", _adler(descriptor)))
        previous = start + len(body) + hole

    section(DEVICE_INFORMATION, _object(
        ["sn", "md", "lb", "ts", "hs", "dc", "dt", "pid", "rs", "ls", "bp", "ph"],
        ["", "", "", str(sectors), "0", "0", "l", "", "", "", str(SECTOR), "0"]))
    section(CASE_DATA, _object(
        ["nm", "cn", "en", "ex", "nt", "av", "os", "tt", "at", "tb", "cp", "sb", "gr", "wb"],
        [description, case_number, "EV-1", examiner, "", "7.10", "Linux", str(acquired),
         str(acquired), str(chunk_count), "1", str(SECTORS_PER_CHUNK), str(SECTORS_PER_CHUNK),
         ""]))
    data_start = here()
    stored = bytearray()
    entries = bytearray()
    for n in range(chunk_count):
        piece = padded[n * CHUNK:(n + 1) * CHUNK]
        body, flags = zlib.compress(piece), COMPRESSED
        if n % 2 or len(body) >= len(piece):  # stored, also when it does not shrink (as above)
            body, flags = piece + struct.pack("<I", _adler(piece)), CHECKSUMMED
        entries += struct.pack("<QII", data_start + len(stored), len(body), flags)
        stored += _pad16(body)
    section(SECTOR_DATA, bytes(stored))
    header = struct.pack("<QII", 0, chunk_count, 0)
    section(SECTOR_TABLE, _pad16(header + struct.pack("<I", _adler(header)))
            + _pad16(bytes(entries) + struct.pack("<I", _adler(bytes(entries)))))
    data = text.encode("utf-16-le")
    section(SINGLE_FILES_DATA, data, hashed=True,
            hole=max(0, (ltree_declared or 0) - len(_pad16(data))))
    record_md5 = bytes.fromhex(stored_md5) if stored_md5 else md5
    section(MD5_HASH, record_md5 + struct.pack("<I", _adler(record_md5)))
    section(SHA1_HASH, sha1 + struct.pack("<I", _adler(sha1)))
    section(DONE, b"")
    _write_with_holes(path, out, holes)
    return Built(path, media, offsets)
