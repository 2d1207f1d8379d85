"""AFF4 (Advanced Forensic Format 4, Standard v1.0) physical images: our own reader.

An AFF4 volume is a ZIP file (:mod:`bitwitness.images.aff4_zip`) whose ``information.turtle``
describes, in RDF, what it holds; ``version.txt`` gives the standard's version (1.0) and the
writing tool, the ZIP comment or ``container.description`` the volume's URN. A disk image is an
``aff4:Image`` (``aff4:DiskImage``, ``aff4:ContiguousImage``...) whose ``aff4:dataStream`` is an
``aff4:Map`` or an ``aff4:ImageStream`` (:mod:`bitwitness.images.aff4_streams`); a stream's
members are named by its URN, relative to the volume's URN when it starts with it, else with
``aff4://`` written ``aff4%3A%2F%2F``. The pre-standard layout of aff4imager (an
``aff4:image`` that is itself the stream, ``chunk_size`` ...) is read too.

The turtle is parsed by rdflib. Linear hashes recorded on the image (``aff4:hash`` typed
``aff4:MD5``, ``aff4:SHA1``, ``aff4:SHA256``) are the stored hashes ``verify`` compares;
others (SHA-512, BLAKE2b, block-map hashes) are listed in ``info`` as not checked.

Several images in one volume: the first by URN (in sorted order) is read and ``info`` lists the
others; an object another names as its data (``aff4:dataStream``, ``aff4:dependentStream``) is
that object's stream, never an image, whatever its type (:func:`_images`). Refused by name
(exit 2): encrypted streams and logical-only volumes (files, no disk image), streams stored in
another volume (striped or split containers), compressions other than deflate, zlib, snappy,
LZ4 and stored.

The independent second reader (``verify --second-reader``) is pyaff4, the reference
implementation, run in a child process (:mod:`bitwitness.images.aff4_pyaff4`): it reads the same
data stream by URN and its media is hashed again; where pyaff4 cannot read an image (deflate
chunks, non-zero gaps, a map whose last run ends early) ``verify`` says so in a note.
"""

from __future__ import annotations

import contextlib
import re
import struct
from pathlib import Path
from typing import Any

from bitwitness.errors import CorruptImageError, NoSecondReader, UnsupportedFormatError
from bitwitness.images.aff4_streams import (
    MAX_CHUNK,
    MAX_CHUNKS_IN_SEGMENT,
    MAX_IDX,
    MAX_MAP,
    ChunkError,
    ImageStreamReader,
    MapReader,
    Segment,
    Source,
    StreamLayout,
    Symbolic,
)
from bitwitness.images.aff4_zip import ZipVolume
from bitwitness.stream import ImageStream, StreamInfo

NS = "http://aff4.org/Schema#"
_RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
_IMAGE_TYPES = ("Image", "DiskImage", "ContiguousImage", "image")
_LOGICAL_TYPES = ("FileImage", "LogicalImage", "LogicalAcquisitionTask")
_ENCRYPTED_TYPES = ("EncryptedStream", "KeyBag", "PasswordWrappedKeyBag",
                    "CertEncryptedKeyBag")
_TURTLE_LIMIT = 16 << 20
_SMALL_LIMIT = 64 << 10
#: Linear hashes ``verify`` computes; the others are listed, not checked.
_CHECKED = {"MD5": ("md5", 32), "SHA1": ("sha1", 40), "SHA256": ("sha256", 64)}
_COMPRESSION_URIS = {
    "tools.ietf.org/html/rfc1951": "deflate", "www.ietf.org/rfc/rfc1951.txt": "deflate",
    "www.ietf.org/rfc/rfc1950.txt": "zlib", "tools.ietf.org/html/rfc1950": "zlib",
    "code.google.com/p/snappy": "snappy", "code.google.com/p/lz4": "lz4",
    "aff4.org/schema#nullcompressor": "stored", "aff4.org/schema#stored": "stored",
    "aff4.org/schema#compression/stored": "stored",  # pyaff4's name for it
}
_SYMBOLIC_TEXT = {"UnknownData": b"UNKNOWN", "UnreadableData": b"UNREADABLEDATA"}
_DEFAULT_CHUNKS_IN_SEGMENT = 1024
_DEFAULT_CHUNK = 32 * 1024


class Graph:
    """The statements of ``information.turtle`` as plain strings: subject -> predicate ->
    values (URIs as text, literals as (text, datatype))."""

    def __init__(self, text: str, path: Path) -> None:
        import rdflib

        graph = rdflib.Graph()
        try:
            graph.parse(data=text, format="turtle")
        except Exception as exc:  # rdflib raises many kinds on malformed turtle
            first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
            raise CorruptImageError(f"AFF4 information.turtle does not parse as RDF Turtle "
                                    f"({type(exc).__name__}: {first})", path=path) from None
        self.facts: dict[str, dict[str, list[Any]]] = {}
        for subject, predicate, value in graph:
            if isinstance(value, rdflib.Literal):
                item: Any = (str(value), str(value.datatype or ""))
            else:
                item = str(value)
            self.facts.setdefault(str(subject), {}).setdefault(str(predicate), []).append(item)

    def types(self, subject: str) -> set[str]:
        return {t[len(NS):] for t in self.facts.get(subject, {}).get(_RDF_TYPE, [])
                if isinstance(t, str) and t.startswith(NS)}

    def of_type(self, *names: str) -> list[str]:
        return sorted(s for s in self.facts if self.types(s) & set(names))

    def values(self, subject: str, *names: str) -> list[Any]:
        found: list[Any] = []
        for name in names:
            found += self.facts.get(subject, {}).get(NS + name, [])
        return found

    def number(self, subject: str, *names: str, path: Path) -> int | None:
        values = self.values(subject, *names)
        if not values:
            return None
        text = values[0][0] if isinstance(values[0], tuple) else values[0]
        if not re.fullmatch(r"\s*\+?\d{1,19}\s*", text):
            raise CorruptImageError(f"AFF4 {subject}: {names[0]} is {text[:40]!r}, not a "
                                    "non-negative integer", path=path)
        return int(text)


def _images(graph: Graph) -> list[str]:
    """The volume's disk images, sorted by URN (the first is read).

    A pre-standard image stream is typed ``aff4:image``, as an image is: an object that another
    object names as its data (an image's ``aff4:dataStream``, a map's ``aff4:dependentStream``)
    is that object's data, not an image of its own. Choosing by this rule, not by where the
    stream's random URN happens to sort, makes the image read, and so the stored hashes
    found, the same on every run.
    """
    data = {v for subject in graph.facts
            for v in graph.values(subject, "dataStream", "dependentStream")
            if isinstance(v, str) and v != subject}
    return [i for i in graph.of_type(*_IMAGE_TYPES) if i not in data]


class Aff4Stream(ImageStream):
    """The media of the disk image an AFF4 volume holds."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._volume = ZipVolume(path)
        self.stored_hashes: dict[str, str] = {}
        self._details: dict[str, Any] = {"reader": "bitwitness"}
        #: the image read, its data stream (a map or an image stream), and the compression
        #: of every image stream read: what the second reader is given and judged by
        self.image_urn = ""
        self.data_urn = ""
        self.compressions: set[str] = set()
        self.map_reader: MapReader | None = None
        try:
            self._source = self._load()
        except BaseException:
            self._volume.close()
            self._unmade()
            raise
        super().__init__(self._media)
        self.alignment = 1

    # --- metadata ------------------------------------------------------------------------

    def _load(self) -> Source:
        volume = self._volume
        self._check_version()
        self._urn = self._volume_urn()
        turtle = volume.find("information.turtle")
        if turtle is None:
            raise CorruptImageError("AFF4 volume holds no information.turtle", path=self.path)
        raw = volume.read_member(turtle, _TURTLE_LIMIT, "information.turtle")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CorruptImageError(f"AFF4 information.turtle is not UTF-8 text ({exc})",
                                    path=self.path) from None
        graph = Graph(text, self.path)
        self._graph = graph
        if graph.of_type(*_ENCRYPTED_TYPES):
            raise UnsupportedFormatError(f"{self.path}: an encrypted AFF4 volume "
                                         f"({graph.of_type(*_ENCRYPTED_TYPES)[0]}); BitWitness "
                                         "reads unencrypted AFF4 images")
        images = _images(graph)
        if not images:
            logical = graph.of_type(*_LOGICAL_TYPES)
            what = ("a logical AFF4 container (files, no disk image)" if logical
                    else "an AFF4 volume that describes no aff4:Image")
            raise UnsupportedFormatError(f"{self.path}: {what}; BitWitness reads AFF4 disk "
                                         "images")
        image = images[0]
        self._details.update(volume_urn=self._urn or "(none recorded)", image_urn=image)
        if len(images) > 1:
            self._details["images"] = (f"{len(images)} in this volume; the first by URN is "
                                       f"read: {', '.join(images)}")
        streams = sorted(v for v in graph.values(image, "dataStream") if isinstance(v, str))
        data_urn = streams[0] if streams else image  # pre-standard: the image is the stream
        self.image_urn, self.data_urn = image, data_urn
        self._hashes(image, data_urn)
        return self._open_top(data_urn)

    def _check_version(self) -> None:
        member = self._volume.find("version.txt")
        if member is None:
            self._details["version"] = "none recorded (pre-standard volume)"
            return
        text = self._volume.read_member(member, _SMALL_LIMIT, "version.txt").decode(
            "utf-8", "replace")
        fields = dict(line.split("=", 1) for line in re.split(r"\r\n|\r|\n", text)
                      if "=" in line)
        major, minor = fields.get("major", "").strip(), fields.get("minor", "").strip()
        if major != "1":
            raise UnsupportedFormatError(f"{self.path}: AFF4 version {major or '?'}."
                                         f"{minor or '?'}; BitWitness reads AFF4 1.x")
        self._details["version"] = f"{major}.{minor}"
        if fields.get("tool"):
            self._details["tool"] = fields["tool"].strip()[:200]

    def _volume_urn(self) -> str:
        comment = self._volume.comment.split(b"\0")[0].decode("utf-8", "replace").strip()
        if comment.startswith("aff4://"):
            return comment
        member = self._volume.find("container.description")
        if member is not None:
            text = self._volume.read_member(member, _SMALL_LIMIT, "container.description")
            urn = text.decode("utf-8", "replace").strip()
            if urn.startswith("aff4://"):
                return urn
        return ""

    def _hashes(self, image: str, data_urn: str) -> None:
        unchecked = []
        for subject in (image, data_urn):
            for value in self._graph.values(subject, "hash"):
                if not isinstance(value, tuple):
                    continue
                text, datatype = value
                kind = datatype[len(NS):] if datatype.startswith(NS) else datatype
                checked = _CHECKED.get(kind)
                text = text.strip().lower()
                if checked and len(text) == checked[1] and re.fullmatch(r"[0-9a-f]+", text):
                    self.stored_hashes.setdefault(checked[0], text)
                else:
                    unchecked.append(f"{kind} {text[:140]}")
        if unchecked:
            self._details["hashes_not_checked"] = "; ".join(sorted(set(unchecked)))

    # --- streams ------------------------------------------------------------------------

    def _open_top(self, urn: str) -> Source:
        types = self._graph.types(urn)
        if "Map" in types:
            source: Source = self._open_map(urn)
        else:
            source = self._image_stream(urn)
            self._details["map"] = "none (the image is one image stream)"
        self._media = source.size if source.size is not None else 0
        return source

    def _image_stream(self, urn: str) -> ImageStreamReader:
        graph = self._graph
        types = graph.types(urn)
        if not types & {"ImageStream", "image", "Image"} and not graph.values(urn, "chunkSize",
                                                                             "chunk_size"):
            if graph.types(urn) & {"Map"}:
                raise UnsupportedFormatError(f"{self.path}: AFF4 map {urn} targets another "
                                             "map, which BitWitness does not read")
            raise UnsupportedFormatError(
                f"{self.path}: AFF4 stream {urn} is not described in this volume (stored in "
                "another volume of a striped or split container?); BitWitness reads "
                "single-volume AFF4 images")
        legacy = not graph.values(urn, "chunkSize", "chunksInSegment", "compressionMethod") \
            and bool(graph.values(urn, "chunk_size", "chunks_per_segment", "compression"))
        size = graph.number(urn, "size", path=self.path)
        chunk = graph.number(urn, "chunkSize", "chunk_size", path=self.path) or _DEFAULT_CHUNK
        per = graph.number(urn, "chunksInSegment", "chunks_per_segment",
                           path=self.path) or _DEFAULT_CHUNKS_IN_SEGMENT
        if size is None:
            raise CorruptImageError(f"AFF4 image stream {urn} records no aff4:size",
                                    path=self.path)
        if not 1 <= chunk <= MAX_CHUNK:
            raise CorruptImageError(f"AFF4 image stream {urn}: chunk size {chunk} (1 to "
                                    f"{MAX_CHUNK} expected)", path=self.path)
        if not 1 <= per <= MAX_CHUNKS_IN_SEGMENT:
            raise CorruptImageError(f"AFF4 image stream {urn}: {per} chunks a bevy (1 to "
                                    f"{MAX_CHUNKS_IN_SEGMENT} expected)", path=self.path)
        layout = StreamLayout(urn, size, chunk, per, self._compression(urn), legacy)
        self.compressions.add(layout.compression)
        chunks = -(-size // chunk)
        bevies = -(-chunks // per)
        if bevies > len(self._volume.members):
            raise CorruptImageError(
                f"AFF4 image stream {urn}: {size} bytes in chunks of {chunk}, {per} a bevy, "
                f"need {bevies} bevies; the volume holds {len(self._volume.members)} members",
                path=self.path)
        members = []
        for bevy in range(bevies):
            name = f"{urn}/{bevy:08d}"
            data = self._member(name)
            index = self._member(f"{name}/index" if legacy else f"{name}.index")
            if data is None or index is None:
                raise CorruptImageError(f"AFF4 image stream {urn}: bevy {bevy} or its index "
                                        "is missing from the volume", path=self.path)
            members.append((data, index))
        self._details.update(compression=layout.compression, chunk_size=chunk,
                             chunks_per_bevy=per, bevies=bevies,
                             index=("pre-standard (u32 offsets)" if legacy
                                    else "AFF4 1.0 (offset, length)"))
        return ImageStreamReader(self._volume, layout, members)

    def _member(self, urn: str) -> Any:
        """The ZIP member holding the segment ``urn``: relative to the volume's URN when it
        starts with it, else under its own escaped URN."""
        if self._urn and urn.startswith(self._urn + "/"):
            found = self._volume.find(urn[len(self._urn) + 1:])
            if found is not None:
                return found
        return self._volume.find(urn)

    def _compression(self, urn: str) -> str:
        values = self._graph.values(urn, "compressionMethod", "compression")
        if not values:
            return "stored"
        uri = values[0][0] if isinstance(values[0], tuple) else values[0]
        key = re.sub(r"^https?://", "", uri.strip().lower()).rstrip("/")
        method = _COMPRESSION_URIS.get(key)
        if method is None:
            raise UnsupportedFormatError(f"{self.path}: AFF4 image stream {urn} is compressed "
                                         f"with {uri[:100]!r}, which BitWitness does not read "
                                         "(deflate, zlib, snappy, LZ4 and stored are read)")
        return method

    def _symbolic(self, urn: str) -> Symbolic | None:
        if not urn.startswith(NS):
            return None
        name = urn[len(NS):]
        if name == "Zero":
            return Symbolic(name, b"\0")
        if name in _SYMBOLIC_TEXT:
            return Symbolic(name, _SYMBOLIC_TEXT[name])
        match = re.fullmatch(r"SymbolicStream([0-9A-Fa-f]{2})", name)
        return Symbolic(name, bytes([int(match.group(1), 16)])) if match else None

    def _target(self, urn: str, opened: dict[str, Source]) -> Source:
        if urn not in opened:
            opened[urn] = self._symbolic(urn) or self._segment(urn) or self._image_stream(urn)
        return opened[urn]

    def _segment(self, urn: str) -> Segment | None:
        """A target the turtle does not describe but the volume holds as a member: the map's
        data stored as it is (what pyaff4 and aff4imager write for an uncompressed map)."""
        if self._graph.types(urn) or self._graph.values(urn, "chunkSize", "chunk_size"):
            return None
        member = self._member(urn)
        if member is None:
            return None
        self.compressions.add("stored")
        return Segment(self._volume, urn, member)

    def _open_map(self, urn: str) -> MapReader:
        graph = self._graph
        size = graph.number(urn, "size", path=self.path)
        if size is None:
            raise CorruptImageError(f"AFF4 map {urn} records no aff4:size", path=self.path)
        map_member, idx_member = self._member(f"{urn}/map"), self._member(f"{urn}/idx")
        if map_member is None or idx_member is None:
            raise CorruptImageError(f"AFF4 map {urn}: its map or idx segment is missing from "
                                    "the volume", path=self.path)
        entries = self._volume.read_member(map_member, MAX_MAP, f"map of {urn}")
        idx = self._volume.read_member(idx_member, MAX_IDX, f"target index of {urn}")
        try:
            names = [line.strip() for line in idx.decode("utf-8").split("\n")]
        except UnicodeDecodeError as exc:
            raise CorruptImageError(f"AFF4 map {urn}: target index is not UTF-8 ({exc})",
                                    path=self.path) from None
        while names and not names[-1]:
            names.pop()
        used = _target_ids(entries)
        opened: dict[str, Source] = {}
        targets: dict[int, Source] = {}
        for number in sorted(used):
            if number < len(names):
                targets[number] = self._target(names[number], opened)
        gaps = sorted(v for v in graph.values(urn, "mapGapDefaultStream") if isinstance(v, str))
        gap_urn = gaps[0] if gaps else NS + "Zero"
        gap = self._symbolic(gap_urn)
        if gap is None:
            raise UnsupportedFormatError(f"{self.path}: AFF4 map {urn} fills its gaps from "
                                         f"{gap_urn}, which BitWitness does not read")
        reader = MapReader(self.path, urn, size, entries, targets=targets, gap=gap)
        self.map_reader = reader
        streams = [u for u in opened if not isinstance(opened[u], Symbolic)]
        self._details.update(map=urn, map_runs=reader.runs, gap_stream=gap_urn[len(NS):],
                             image_streams=", ".join(streams) or "none")
        return reader

    # --- the stream contract ------------------------------------------------------------

    def _read_aligned(self, offset: int, length: int) -> bytes:
        try:
            return self._source.read(offset, length)
        except ChunkError as exc:  # the data stream is an image stream: its offsets are media
            raise CorruptImageError(exc.message, path=self.path,
                                    media_offset=max(offset, exc.stream_offset)) from exc

    @property
    def info(self) -> StreamInfo:
        return StreamInfo(format="aff4", files=(self.path,), media_size=self.size,
                          sector_size=self.sector_size, details=dict(self._details))

    def close(self) -> None:
        if not self.closed:
            with contextlib.suppress(OSError):
                self._volume.close()
        super().close()


def _target_ids(entries: bytes) -> set[int]:
    """The target ids the map's entries use (whole entries only; :class:`MapReader` refuses
    a partial one)."""
    whole = len(entries) - len(entries) % 28
    return {struct.unpack_from("<I", entries, at + 24)[0] for at in range(0, whole, 28)
            if struct.unpack_from("<Q", entries, at + 8)[0]}


class Aff4Format:
    """AFF4 v1.0 volumes as aff4imager, pyaff4 and Evimetry write them (one ZIP file)."""

    name = "aff4"
    containers = ("aff4",)

    def probe(self, path: Path, head: bytes) -> bool:
        return False  # a ZIP told apart by its central directory: signatures.py decides

    def claims_name(self, path: Path) -> bool:
        return False

    def files(self, path: Path) -> list[Path]:
        return [path]

    def open(self, path: Path) -> ImageStream:
        return Aff4Stream(path)

    def second_reader(self, path: Path, stream: ImageStream) -> ImageStream | None:
        """pyaff4, in a child process, reading the data stream our reader read. Raises
        :class:`NoSecondReader` where pyaff4 cannot read this image (and says why), and
        :class:`UnsupportedFormatError` where it is not installed."""
        from bitwitness.images.aff4_pyaff4 import Pyaff4Stream, pyaff4_obstacle

        if not isinstance(stream, Aff4Stream):
            return None
        mapped = stream.map_reader
        obstacle = pyaff4_obstacle(
            stream.compressions, stream.info.details.get("gap_stream"),
            None if mapped is None else mapped.covered,
            None if mapped is None else mapped.last_end, stream.size)
        if obstacle is not None:
            raise NoSecondReader(f"no second reader for this AFF4 image: {obstacle}")
        return Pyaff4Stream(path, stream.data_urn)


FORMAT = Aff4Format()
