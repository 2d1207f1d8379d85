"""A test-only AFF4 writer, built from the AFF4 Standard v1.0's description, for the variants
pyaff4's writer does not make (deflate, named gap streams, the pre-standard layout, damage at
chosen places); pyaff4 reads what it writes as the independent check of the writer.

It writes what aff4imager and Evimetry write for a physical image: a Zip64 volume whose comment
and ``container.description`` hold the volume URN, ``version.txt`` (1.0), one
``aff4:ImageStream`` cut into chunks (each compressed on its own unless that does not save
16 bytes), grouped into bevies with their ``.index`` segments of (offset u64, length u32)
entries, an ``aff4:Map`` over it (``map``: 28-byte runs, ``idx``: target URNs), an
``aff4:DiskImage`` pointing to the map with linear MD5/SHA-1 hashes, and ``information.turtle``
saying all of it. Options make the variants the reader must handle: a gap left out of the map
(read from ``aff4:Zero`` or a named gap stream), the pre-standard layout (``aff4:image`` with
``chunk_size``, an index of u32 offsets, and no ``version.txt``, which came with the standard),
a short or padded last chunk, several images, an image pointing straight at the image stream.
pyaff4 reads every variant but deflate chunks and named gap streams, which it does not
implement (tests/test_aff4_pyaff4.py).
"""

from __future__ import annotations

import hashlib
import struct
import uuid
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import cramjam

NS = "http://aff4.org/Schema#"
COMPRESSION_URI = {
    "deflate": "https://tools.ietf.org/html/rfc1951",
    "zlib": "https://www.ietf.org/rfc/rfc1950.txt",
    "snappy": "http://code.google.com/p/snappy/",
    "lz4": "https://code.google.com/p/lz4/",
    "stored": "http://aff4.org/Schema#NullCompressor",
}


def compress(method: str, data: bytes) -> bytes:
    if method == "deflate":
        packer = zlib.compressobj(6, zlib.DEFLATED, -15)
        return packer.compress(data) + packer.flush()
    if method == "zlib":
        return zlib.compress(data)
    if method == "snappy":
        return bytes(cramjam.snappy.compress_raw(data))
    if method == "lz4":
        return bytes(cramjam.lz4.compress_block(data, store_size=False))
    return data


@dataclass
class Written:
    """What the writer put where, for tests that check or damage it."""

    path: Path
    volume: str
    image: str
    map: str
    stream: str
    media: bytes  #: the media a reader must return
    members: dict[str, str] = field(default_factory=dict)  #: role -> ZIP member name
    #: per chunk: (bevy member, offset of the chunk in the bevy, stored length)
    chunks: list[tuple[str, int, int]] = field(default_factory=list)


def escaped(urn: str) -> str:
    """The member name of an URN that does not start with the volume's URN."""
    return urn.replace("aff4://", "aff4%3A%2F%2F", 1)


def build_aff4(path: Path, media: bytes, *, compression: str = "deflate",
               chunk_size: int = 4096, chunks_in_segment: int = 4,
               gap: tuple[int, int] | None = None, gap_stream: str | None = None,
               legacy: bool = False, pad_last: bool = False, with_map: bool = True,
               hashes: bool = True, extra_images: int = 0, turtle_extra: str = "",
               zip_deflate_members: bool = False) -> Written:
    """Write ``media`` as an AFF4 volume at ``path``. ``gap=(start, end)``: that media range
    is left out of the map (the caller passes media whose range holds what the gap stream
    reads as)."""
    volume = f"aff4://{uuid.uuid4()}"
    stream = f"aff4://{uuid.uuid4()}"
    map_urn = f"aff4://{uuid.uuid4()}"
    image = f"aff4://{uuid.uuid4()}"
    runs: list[tuple[int, int, int]] = []  # (media offset, length, stream offset)
    if gap is not None and with_map:
        start, end = gap
        stored = media[:start] + media[end:]
        runs = [(0, start, 0), (end, len(media) - end, start)]
        runs = [r for r in runs if r[1]]
    else:
        stored = media
        runs = [(0, len(media), 0)] if media else []
    written = Written(path, volume, image, map_urn if with_map else stream, stream, media)
    ztype = 8 if zip_deflate_members else 0
    import zipfile

    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.comment = volume.encode()

        def put(name: str, data: bytes, deflate: bool = False) -> None:
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED if deflate or ztype else zipfile.ZIP_STORED
            with zf.open(info, "w", force_zip64=True) as out:
                out.write(data)

        put("container.description", volume.encode())
        if not legacy:  # version.txt came with the standard: pre-standard volumes have none
            put("version.txt", b"major=1\nminor=0\ntool=bitwitness test writer\n")
        chunks = [stored[i:i + chunk_size] for i in range(0, len(stored), chunk_size)]
        if pad_last and chunks and len(chunks[-1]) < chunk_size:
            chunks[-1] += bytes(chunk_size - len(chunks[-1]))
        for bevy in range(0, max(1, -(-len(chunks) // chunks_in_segment)) if chunks else 0):
            body, index = bytearray(), bytearray()
            name = f"{escaped(stream)}/{bevy:08d}"
            for chunk in chunks[bevy * chunks_in_segment:(bevy + 1) * chunks_in_segment]:
                packed = compress(compression, chunk)
                if compression == "stored" or len(packed) >= chunk_size - 16:
                    packed = chunk if len(chunk) == chunk_size else packed
                written.chunks.append((name, len(body), len(packed)))
                index += struct.pack("<I", len(body)) if legacy else struct.pack(
                    "<QI", len(body), len(packed))
                body += packed
            put(name, bytes(body))
            put(f"{name}/index" if legacy else f"{name}.index", bytes(index))
            written.members.setdefault("bevy0", name)
            written.members.setdefault("index0", f"{name}/index" if legacy else f"{name}.index")
        if with_map:
            entries = b"".join(struct.pack("<QQQI", at, n, target, 0) for at, n, target in runs)
            put(f"{escaped(map_urn)}/map", entries)
            put(f"{escaped(map_urn)}/idx", (stream + "\n").encode())
            written.members["map"] = f"{escaped(map_urn)}/map"
            written.members["idx"] = f"{escaped(map_urn)}/idx"
        turtle = _turtle(written, stored_size=len(stored), compression=compression,
                         chunk_size=chunk_size, chunks_in_segment=chunks_in_segment,
                         legacy=legacy, gap_stream=gap_stream, hashes=hashes,
                         extra_images=extra_images, with_map=with_map) + turtle_extra
        put("information.turtle", turtle.encode(), deflate=True)
        written.members["turtle"] = "information.turtle"
    return written


def _turtle(w: Written, *, stored_size: int, compression: str, chunk_size: int,
            chunks_in_segment: int, legacy: bool, gap_stream: str | None, hashes: bool,
            extra_images: int, with_map: bool) -> str:
    lines = [f"@prefix aff4: <{NS}> .",
             "@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .",
             "@prefix rdf: <http://www.w3.org/1999/02/22-rdf-syntax-ns#> .", ""]
    hash_text = ""
    if hashes:
        md5 = hashlib.md5(w.media, usedforsecurity=False).hexdigest()
        sha1 = hashlib.sha1(w.media, usedforsecurity=False).hexdigest()
        hash_text = f' ;\n    aff4:hash "{md5}"^^aff4:MD5, "{sha1}"^^aff4:SHA1'
    # the image's URN sorts first, so that extra images (made to sort later) are not read
    lines += [f"<{w.image}> a aff4:DiskImage, aff4:ContiguousImage, aff4:Image ;",
              f'    aff4:size "{len(w.media)}"^^xsd:long ;',
              f"    aff4:dataStream <{w.map}>{hash_text} .", ""]
    for number in range(extra_images):
        other = f"aff4://ffffffff-0000-0000-0000-{number:012d}"
        lines += [f"<{other}> a aff4:DiskImage, aff4:Image ;",
                  f"    aff4:dataStream <aff4://ffffffff-1111-0000-0000-{number:012d}> .", ""]
    if with_map:
        gap = f" ;\n    aff4:mapGapDefaultStream <{NS}{gap_stream}>" if gap_stream else ""
        lines += [f"<{w.map}> a aff4:Map ;", f'    aff4:size "{len(w.media)}"^^xsd:long ;',
                  f"    aff4:dependentStream <{w.stream}> ;",
                  f"    aff4:stored <{w.volume}>{gap} .", ""]
    if legacy:
        lines += [f"<{w.stream}> a aff4:image ;", f'    aff4:size "{stored_size}"^^xsd:long ;',
                  f'    aff4:chunk_size "{chunk_size}"^^xsd:int ;',
                  f'    aff4:chunks_per_segment "{chunks_in_segment}"^^xsd:int ;',
                  f"    aff4:compression <{COMPRESSION_URI[compression]}> .", ""]
    else:
        lines += [f"<{w.stream}> a aff4:ImageStream ;",
                  f'    aff4:size "{stored_size}"^^xsd:long ;',
                  f'    aff4:chunkSize "{chunk_size}"^^xsd:int ;',
                  f'    aff4:chunksInSegment "{chunks_in_segment}"^^xsd:int ;',
                  f"    aff4:compressionMethod <{COMPRESSION_URI[compression]}> ;",
                  f"    aff4:stored <{w.volume}> .", ""]
    return "\n".join(lines) + "\n"
