"""AFF4 physical images written by pyaff4 0.34's own writer classes, for the reader tests.

pyaff4 has no physical imager of its own (its command line makes logical containers), so this
does what an imager does with pyaff4's classes: a ZIP volume (``zip.ZipFile``) holding
``version.txt`` (1.0) and ``container.description``, an image stream (``AFF4Image``: pyaff4
cuts the chunks, compresses them, writes the bevies and their ``.index`` segments and pads the
last chunk), a map over it (``AFF4Map``: pyaff4 writes ``map`` and ``idx``) and an
``aff4:DiskImage`` naming the map as its ``aff4:dataStream``; ``information.turtle`` is pyaff4's
serialisation of its resolver. What pyaff4 leaves to the imager is added through its resolver:
the image's and the map's ``aff4:size`` (pyaff4's map writer records none; aff4imager does) and
the image's linear MD5 and SHA-1, computed here from the media given.

Two ways to fill the map, both pyaff4's: ``"linear"`` writes the media into the image stream
and adds one range over it (aff4imager's layout); ``"scattered"`` writes pieces through the
map itself (``SeekWrite``/``Write``) in a shuffled order and leaves ``holes`` unwritten, so that
pyaff4 decides the stream layout and the map's runs, and the holes are map gaps.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from pathlib import Path

#: Our names for the compressions pyaff4 0.34 writes (it writes no deflate).
COMPRESSIONS = ("zlib", "snappy", "lz4", "stored")


@dataclass(frozen=True)
class Pyaff4Written:
    path: Path
    volume: str
    image: str
    map: str
    stream: str


def write_with_pyaff4(path: Path, media: bytes, *, compression: str = "zlib",
                      chunk_size: int = 4096, chunks_in_segment: int = 8,
                      layout: str = "linear", holes: tuple[tuple[int, int], ...] = (),
                      piece: int = 12345,
                      symbolic: tuple[tuple[int, int, str], ...] = ()) -> Pyaff4Written:
    """Write ``media`` at ``path`` with pyaff4. ``holes`` (``scattered`` only): media ranges
    left out of the map, which must be zeros in ``media``. ``symbolic`` (``scattered`` only):
    (start, end, name) ranges mapped to the symbolic stream ``aff4:name`` (``Zero``,
    ``SymbolicStreamFF``...), as imagers map runs of one byte; ``media`` must hold that byte
    there, and the ranges must be left out by ``holes`` too."""
    from pyaff4 import aff4_image, aff4_map, data_store, lexicon, rdfvalue
    from pyaff4 import zip as aff4_zip
    from pyaff4.version import Version

    method = {"zlib": lexicon.AFF4_IMAGE_COMPRESSION_ZLIB,
              "snappy": lexicon.AFF4_IMAGE_COMPRESSION_SNAPPY,
              "lz4": lexicon.AFF4_IMAGE_COMPRESSION_LZ4,
              "stored": lexicon.AFF4_IMAGE_COMPRESSION_STORED}[compression]
    ns = lexicon.AFF4_NAMESPACE
    urn = rdfvalue.URN.FromFileName(str(path))
    version = Version(1, 0, "pyaff4")
    with data_store.MemoryDataStore() as resolver:
        resolver.Set(lexicon.transient_graph, urn, lexicon.AFF4_STREAM_WRITE_MODE,
                     rdfvalue.XSDString("truncate"))
        with aff4_zip.ZipFile.NewZipFile(resolver, version, urn) as volume:
            vol = volume.urn
            with volume.CreateMember(vol.Append("version.txt")) as member:
                member.Write(str(version).encode())
            with volume.CreateMember(vol.Append("container.description")) as member:
                member.Write(str(vol).encode())
            image = vol.Append("image")
            map_urn = image.Append("map")
            stream = map_urn.Append("data") if layout == "scattered" else image.Append("data")
            for predicate, value in ((lexicon.AFF4_IMAGE_CHUNK_SIZE, chunk_size),
                                     (lexicon.AFF4_IMAGE_CHUNKS_PER_SEGMENT,
                                      chunks_in_segment)):
                resolver.Set(vol, stream, predicate, rdfvalue.XSDInteger(value))
            resolver.Set(vol, stream, lexicon.AFF4_IMAGE_COMPRESSION, rdfvalue.URN(method))
            if layout == "linear":
                with aff4_image.AFF4Image.NewAFF4Image(resolver, stream, vol) as out:
                    out.chunk_size, out.chunks_per_segment = chunk_size, chunks_in_segment
                    out.setCompressionMethod(method)
                    out.Write(media)
                with aff4_map.AFF4Map.NewAFF4Map(resolver, map_urn, vol) as mapped:
                    mapped.AddRange(0, 0, len(media), stream)
            else:
                with aff4_map.AFF4Map.NewAFF4Map(resolver, map_urn, vol) as mapped:
                    for start, end in _pieces(len(media), holes, piece):
                        mapped.SeekWrite(start)
                        mapped.Write(media[start:end])
                    for start, end, name in symbolic:
                        mapped.AddRange(start, start, end - start, rdfvalue.URN(ns + name))
            resolver.Add(vol, image, lexicon.AFF4_TYPE, rdfvalue.URN(ns + "Image"))
            resolver.Add(vol, image, lexicon.AFF4_TYPE, rdfvalue.URN(ns + "DiskImage"))
            resolver.Add(vol, image, lexicon.standard.dataStream, map_urn)
            for subject in (image, map_urn):
                resolver.Set(vol, subject, lexicon.AFF4_STREAM_SIZE,
                             rdfvalue.XSDInteger(len(media)))
            md5 = hashlib.md5(media, usedforsecurity=False).hexdigest()
            sha1 = hashlib.sha1(media, usedforsecurity=False).hexdigest()
            resolver.Add(vol, image, lexicon.standard.hash, rdfvalue.MD5Hash(md5))
            resolver.Add(vol, image, lexicon.standard.hash, rdfvalue.SHA1Hash(sha1))
    return Pyaff4Written(path, str(vol), str(image), str(map_urn), str(stream))


def _pieces(size: int, holes: tuple[tuple[int, int], ...],
            piece: int) -> list[tuple[int, int]]:
    """The media ranges outside ``holes``, cut into ``piece``-byte pieces, shuffled (with a
    fixed seed: the layout is the test's, the randomness only its order)."""
    cuts = []
    at = 0
    for start, end in [*sorted(holes), (size, size)]:
        for first in range(at, start, piece):
            cuts.append((first, min(first + piece, start)))
        at = end
    random.Random(15).shuffle(cuts)
    return cuts
