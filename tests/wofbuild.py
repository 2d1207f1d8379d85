"""WOF (CompactOS) files laid out on an NTFS as Windows lays them, for the tests and the fuzz
seeds: the chunks are wimlib's (a WIM resource, not solid, is a WOF stream: the same chunk
offset table and XPRESS/LZX chunks, a chunk that does not shrink stored as it is), written by
ntfs-3g as the named stream ``WofCompressedData``, the reparse point set through
``system.ntfs_reparse_data`` and the unnamed ``$DATA`` left sparse at the file's size.
Needs wimlib's tools, mkntfs and ntfs-3g with FUSE (root)."""

from __future__ import annotations

import hashlib
import os
import re
import struct
import subprocess
from pathlib import Path

#: wimlib's compression and chunk size for each WOF algorithm (FILE_PROVIDER_EXTERNAL_INFO_V1)
ALGORITHMS = {"xpress4k": ("XPRESS", 4096, 0), "lzx": ("LZX", 32768, 1),
              "xpress8k": ("XPRESS", 8192, 2), "xpress16k": ("XPRESS", 16384, 3)}


def _sh(*args: str | Path) -> str:
    return subprocess.run([os.fspath(a) for a in args], capture_output=True, text=True,
                          check=True).stdout


def _blobs(wim: Path) -> dict[str, tuple[int, int, int, bool]]:
    """wimlib's blob table: SHA-1 -> (offset, stored size, size, compressed)."""
    found = {}
    for block in _sh("wiminfo", wim, "--blobs").split("\n\n"):
        fields = dict(re.findall(r"^(.+?)\s+= (.*)$", block, re.MULTILINE))
        if "Hash" not in fields or "METADATA" in fields.get("Flags", ""):
            continue
        found[fields["Hash"].removeprefix("0x")] = (
            int(fields["Offset in WIM"].split()[0]), int(fields["Compressed size"].split()[0]),
            int(fields["Uncompressed size"].split()[0]), "COMPRESSED" in fields["Flags"])
    return found


def _raw_stream(data: bytes, chunk: int) -> bytes:
    """The WOF stream of ``data`` with every chunk stored as it is (what a resource wimlib left
    uncompressed, because it did not shrink, stands for)."""
    count = -(-len(data) // chunk)
    table = b"".join(struct.pack("<I", i * chunk) for i in range(1, count))
    return table + data


def wof_streams(work: Path, algorithm: str,
                sources: dict[str, bytes]) -> tuple[dict[str, bytes], Path]:
    """Each source's ``WofCompressedData`` as wimlib compresses it, and the WIM itself."""
    compress, chunk, _number = ALGORITHMS[algorithm]
    source = work / f"src-{algorithm}"
    source.mkdir()
    for name, data in sources.items():
        (source / name).write_bytes(data)
    wim = work / f"{algorithm}.wim"
    _sh("wimcapture", source, wim, f"--compress={compress}", f"--chunk-size={chunk}")
    blobs = _blobs(wim)
    held = wim.read_bytes()
    streams = {}
    for name, data in sources.items():
        offset, stored, size, compressed = blobs[hashlib.sha1(data).hexdigest()]  # noqa: S324
        assert size == len(data)
        blob = held[offset:offset + stored]
        streams[name] = blob if compressed else _raw_stream(blob, chunk)
    return streams, wim


def reparse(algorithm: int, provider: int = 2) -> bytes:
    """A WOF reparse buffer: tag, data length, reserved; WOF_EXTERNAL_INFO (version 1,
    provider); FILE_PROVIDER_EXTERNAL_INFO_V1 (version 1, algorithm), or for the WIM provider
    WIM_PROVIDER_EXTERNAL_INFO (version 1, flags, data source, resource hash)."""
    if provider == 1:
        body = struct.pack("<II", 1, 1) + struct.pack("<IIq", 1, 0, 3) + bytes(20)
    else:
        body = struct.pack("<II", 1, provider) + struct.pack("<II", 1, algorithm)
    return struct.pack("<IHH", 0x80000017, len(body), 0) + body


def make_wof(path: Path, size: int, stream: bytes | None, reparse_data: bytes) -> None:
    """Lay ``path`` out as a WOF file on a mounted ntfs-3g volume."""
    path.write_bytes(b"")
    os.truncate(path, size)
    if stream is not None:
        Path(f"{path}:WofCompressedData").write_bytes(stream)
    os.setxattr(path, "system.ntfs_reparse_data", reparse_data)


def wof_ntfs(work: Path, name: str, fill: dict[str, tuple[int, bytes | None, bytes]],
             plain: dict[str, bytes], size: int = 32 << 20) -> Path:
    """An NTFS of ``size`` bytes by mkntfs holding WOF files (path -> file size, stream,
    reparse data) and plain ones."""
    image, mount = work / f"{name}.img", work / f"mnt-{name}"
    mount.mkdir()
    with image.open("wb") as out:
        out.truncate(size)
    _sh("mkntfs", "-q", "-F", "-Q", image)
    _sh("ntfs-3g", "-o", "streams_interface=windows", image, mount)
    try:
        for path, data in plain.items():
            (mount / path).parent.mkdir(parents=True, exist_ok=True)
            (mount / path).write_bytes(data)
        for path, (length, stream, data) in fill.items():
            (mount / path).parent.mkdir(parents=True, exist_ok=True)
            make_wof(mount / path, length, stream, data)
    finally:
        subprocess.run(["sync"], check=False)
        _sh("umount", mount)
    return image




def small_wof_ntfs(work: Path) -> Path:
    """A 4 MiB NTFS holding one XPRESS4K and one LZX file (compressed chunks and one stored
    raw), a WIM-backed one and a plain one: the fuzz seed of the WOF reading path."""
    text = b"".join(b"%05d: WOF seed line of text\n" % i for i in range(1500))
    data = text[:20_000] + hashlib.sha256(b"raw").digest() * 160 + text[:9_999]
    fill: dict[str, tuple[int, bytes | None, bytes]] = {}
    for algorithm in ("xpress4k", "lzx"):
        streams, _wim = wof_streams(work, algorithm, {"f.bin": data})
        fill[f"{algorithm}.bin"] = (len(data), streams["f.bin"], reparse(ALGORITHMS[algorithm][2]))
    fill["wim.bin"] = (len(data), None, reparse(0, provider=1))
    return wof_ntfs(work, "seed-wof", fill, {"plain.txt": b"plain\n"}, size=4 << 20)
