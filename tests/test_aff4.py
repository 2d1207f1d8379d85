"""AFF4 v1.0 volumes read by our own reader.

The volumes here are written by ``tests/builders/aff4_writer.py``, a committed writer made from
the AFF4 Standard's description, for the variants and the damage pyaff4's writer cannot make
(tests/test_aff4_pyaff4.py has pyaff4 write volumes, and read these). The media a reader must
return is the file the writer was given: ``md5sum`` of that file is the judge for
``info``/``verify``/``convert --to raw``; the stored MD5/SHA-1 are checked by ``verify``;
damaged and lying volumes fail closed in one line.
"""

from __future__ import annotations

import os
import re
import struct
import subprocess
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from builders.aff4_writer import Written, build_aff4
from conftest import require_tool, run_bitwitness
from contract import check_stream_contract

from bitwitness.errors import CorruptImageError, ExitCode, UnsupportedFormatError
from bitwitness.image import detect, open_image

KiB = 1024


def _media(size: int = 150 * KiB + 1234) -> bytes:
    """Random, compressible, zero and text runs; the last chunk short."""
    data = bytearray(size)
    data[: 20 * KiB] = os.urandom(20 * KiB)
    data[20 * KiB : 60 * KiB] = b"evidence text " * (40 * KiB // 14) + b"e" * (40 * KiB % 14)
    data[100 * KiB :] = os.urandom(size - 100 * KiB)
    return bytes(data)


def _md5sum(path: Path) -> str:
    return subprocess.run(["md5sum", str(path)], capture_output=True, text=True,
                          check=True).stdout.split()[0]


def _write(tmp_path: Path, **options: object) -> tuple[Written, Path]:
    media = options.pop("media", None) or _media()
    source = tmp_path / "media.raw"
    source.write_bytes(media)  # type: ignore[arg-type]
    return build_aff4(tmp_path / "disk.aff4", media, **options), source  # type: ignore[arg-type]


@pytest.mark.parametrize("compression", ["deflate", "snappy", "lz4"])
def test_info_verify_convert_give_the_media(tmp_path: Path, compression: str) -> None:
    require_tool("md5sum")
    written, source = _write(tmp_path, compression=compression, gap=(60 * KiB, 100 * KiB))
    md5 = _md5sum(source)
    info = run_bitwitness("info", written.path, "--json")
    assert info.exit_code == ExitCode.OK, info.stderr
    doc = info.json()
    assert doc["format"] == "aff4"
    assert doc["media_size"] == source.stat().st_size
    assert doc["stored_hashes"]["md5"] == md5
    assert doc["details"]["compression"] == compression
    assert doc["details"]["gap_stream"] == "Zero"
    res = run_bitwitness("verify", written.path, "--json")
    image = res.json()["images"][0]
    assert res.exit_code == ExitCode.OK, image["problems"]
    assert image["verdict"] == "VERIFIED"
    assert image["computed"]["md5"] == image["stored"]["md5"] == md5
    assert image["stored"]["sha1"] == image["computed"]["sha1"]
    conv = run_bitwitness("convert", written.path, "--to", "raw", "-o", tmp_path / "out")
    assert conv.exit_code == ExitCode.OK, conv.stderr
    assert _md5sum(tmp_path / "out.raw") == md5


VARIANTS: dict[str, dict[str, object]] = {
    "zlib": {"compression": "zlib"},
    "stored": {"compression": "stored"},
    "padded-last-chunk": {"pad_last": True},
    "one-bevy-per-chunk": {"chunks_in_segment": 1},
    "large-bevies": {"chunks_in_segment": 64},
    "zip-deflated-members": {"zip_deflate_members": True, "compression": "snappy"},
    "pre-standard-index": {"legacy": True, "with_map": False, "compression": "zlib"},
    "no-map": {"with_map": False, "compression": "lz4"},
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_stream_contract(tmp_path: Path, variant: str) -> None:
    written, source = _write(tmp_path, **VARIANTS[variant])
    with open_image(written.path) as stream:
        assert stream.info.format == "aff4"
        check_stream_contract(stream, source.read_bytes())


def test_gap_reads_from_the_named_gap_stream(tmp_path: Path) -> None:
    """aff4:UnknownData: ``UNKNOWN`` repeated from the start of every MiB."""
    size = 2 * 1024 * KiB + 4096
    gap = (4096, size - 4096)
    tile = (b"UNKNOWN" * (1024 * KiB // 7 + 1))[: 1024 * KiB]
    pattern = (tile * 3)[:size]
    media = os.urandom(4096) + pattern[4096 : size - 4096] + os.urandom(4096)
    written, _source = _write(tmp_path, media=media, gap=gap, gap_stream="UnknownData",
                              chunk_size=32 * KiB)
    with open_image(written.path) as stream:
        assert stream.info.details["gap_stream"] == "UnknownData"
        check_stream_contract(stream, media)


def test_zip64_volume_read_through_the_readonly_opener(tmp_path: Path) -> None:
    """The writer forces Zip64 headers (as the standard asks); reading keeps mtime and atime."""
    written, source = _write(tmp_path)
    with zipfile.ZipFile(written.path) as zf:  # the test's own look at the volume
        first = zf.getinfo(written.members["bevy0"])
    with written.path.open("rb") as f:
        f.seek(first.header_offset)
        local = f.read(30)
        name_len, extra_len = struct.unpack("<HH", local[26:30])
        f.seek(first.header_offset + 30 + name_len)
        assert f.read(extra_len).startswith(b"\x01\x00")  # the Zip64 extra field
    before = written.path.stat()
    os.utime(written.path, ns=(before.st_atime_ns - 10**9 * 3600, before.st_mtime_ns))
    before = written.path.stat()
    for command in ("info", "verify"):
        assert run_bitwitness(command, written.path).exit_code == ExitCode.OK
    after = written.path.stat()
    assert (after.st_atime_ns, after.st_mtime_ns) == (before.st_atime_ns, before.st_mtime_ns)
    assert written.path.read_bytes() == written.path.read_bytes()
    with open_image(written.path) as stream:
        assert stream.pread(0, stream.size) == source.read_bytes()


def test_map_entries_in_any_order(tmp_path: Path) -> None:
    """pyaff4 writes a map's entries in the order of its interval tree, not media order."""
    written, source = _write(tmp_path, gap=(60 * KiB, 100 * KiB))
    _mutate_member(written, "map", lambda d: d[28:] + d[:28])
    with open_image(written.path) as stream:
        assert stream.info.details["map_runs"] == 2
        check_stream_contract(stream, source.read_bytes())


def test_several_images_read_the_first_by_urn_and_say_so(tmp_path: Path) -> None:
    written, source = _write(tmp_path, extra_images=2)
    with open_image(written.path) as stream:
        details = stream.info.details
        assert details["image_urn"] == written.image
        assert details["images"].startswith("3 in this volume")
        assert stream.pread(0, stream.size) == source.read_bytes()


@pytest.mark.parametrize("stream_sorts_first", [True, False])
def test_pre_standard_image_is_chosen_the_same_on_every_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stream_sorts_first: bool) -> None:
    """A pre-standard stream is typed aff4:image like the image whose map names it: the image
    is read (its stored MD5 and SHA-1 found, verify VERIFIED) whether the stream's URN sorts
    before or after the image's, under several hash seeds (rdflib's iteration order)."""
    import hashlib
    import json
    import sys
    import uuid

    from builders import aff4_writer

    # build_aff4 draws the URNs of the volume, stream, map and image in that order
    low, high = "00000000-0000-4000-8000-", "ffffffff-ffff-4fff-bfff-"
    stream_id, image_id = (low, high) if stream_sorts_first else (high, low)
    ids = iter(uuid.UUID(f"{p}{n:012d}") for p, n in
               ((low, 1), (stream_id, 2), ("77777777-7777-4777-8777-", 3), (image_id, 4)))
    monkeypatch.setattr(aff4_writer.uuid, "uuid4", lambda: next(ids))
    written, source = _write(tmp_path, legacy=True, compression="zlib")
    assert (written.stream < written.image) == stream_sorts_first
    media = source.read_bytes()
    expected = {"md5": hashlib.md5(media, usedforsecurity=False).hexdigest(),
                "sha1": hashlib.sha1(media, usedforsecurity=False).hexdigest()}
    for seed in ("0", "1", "2", "3", "42"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        info = subprocess.run([sys.executable, "-m", "bitwitness", "info", "--json",
                               str(written.path)], check=False, capture_output=True,
                              text=True, env=env)
        assert info.returncode == 0, info.stderr
        doc = json.loads(info.stdout)
        assert doc["details"]["image_urn"] == written.image, seed
        assert doc["stored_hashes"] == expected, seed
        verify = subprocess.run([sys.executable, "-m", "bitwitness", "verify",
                                 str(written.path)], check=False, capture_output=True,
                              text=True, env=env)
        assert verify.returncode == 0, (seed, verify.stdout, verify.stderr)
        assert "verdict: VERIFIED" in verify.stdout


def _mutate_member(written: Written, role_or_name: str,
                   change: Callable[[bytes], bytes]) -> None:
    """Rewrite one member of the volume (the others copied as they are)."""
    name = written.members.get(role_or_name, role_or_name)
    copy = written.path.with_suffix(".tmp")
    with zipfile.ZipFile(written.path) as src, zipfile.ZipFile(copy, "w") as dst:
        dst.comment = src.comment
        for info in src.infolist():
            data = src.read(info)
            if info.filename == name:
                data = change(data)
            dst.writestr(info, data)
    copy.replace(written.path)


def _chunk_file_offset(written: Written, number: int) -> int:
    member, within, _length = written.chunks[number]
    with zipfile.ZipFile(written.path) as zf:
        info = zf.getinfo(member)
    with written.path.open("rb") as f:
        f.seek(info.header_offset)
        head = f.read(30)
    name_len, extra_len = struct.unpack("<HH", head[26:30])
    return info.header_offset + 30 + name_len + extra_len + within


def test_a_changed_byte_in_a_chunk_is_corrupt_with_where(tmp_path: Path) -> None:
    written, _source = _write(tmp_path, compression="deflate", chunk_size=4096)
    at = _chunk_file_offset(written, 6)  # in the text: deflated
    data = bytearray(written.path.read_bytes())
    data[at:at + 8] = b"\xff" * 8  # a deflate block of the reserved type 3
    written.path.write_bytes(bytes(data))
    res = run_bitwitness("verify", written.path, "--json")
    assert res.exit_code == ExitCode.EVIDENCE
    image = res.json()["images"][0]
    assert image["verdict"] == "CORRUPT"
    problems = " ".join(image["problems"])
    assert "chunk 6" in problems, problems
    assert f"media offset {6 * 4096}" in problems, problems


def test_a_changed_stored_chunk_is_a_mismatch(tmp_path: Path) -> None:
    written, _source = _write(tmp_path, compression="stored")
    at = _chunk_file_offset(written, 2) + 100
    data = bytearray(written.path.read_bytes())
    data[at] ^= 0x01
    written.path.write_bytes(bytes(data))
    res = run_bitwitness("verify", written.path, "--json")
    assert res.exit_code == ExitCode.EVIDENCE
    image = res.json()["images"][0]
    assert image["verdict"] == "MISMATCH"
    assert image["stored"]["md5"] != image["computed"]["md5"]


def test_a_changed_stored_hash_is_a_mismatch(tmp_path: Path) -> None:
    written, _source = _write(tmp_path)

    def lie(turtle: bytes) -> bytes:
        return re.sub(rb'"[0-9a-f]{32}"\^\^aff4:MD5', b'"' + b"0" * 32 + b'"^^aff4:MD5', turtle)

    _mutate_member(written, "turtle", lie)
    res = run_bitwitness("verify", written.path, "--json")
    assert res.exit_code == ExitCode.EVIDENCE
    image = res.json()["images"][0]
    assert image["verdict"] == "MISMATCH"
    assert image["stored"]["md5"] == "0" * 32


def _set_turtle(pattern: bytes, replacement: bytes) -> Callable[[bytes], bytes]:
    def change(turtle: bytes) -> bytes:
        changed = re.sub(pattern, replacement, turtle)
        assert changed != turtle, pattern
        return changed
    return change


#: (member role, change): each must end in one line, exit 1 (damaged) or 2 (not read).
HOSTILE: dict[str, tuple[str, Callable[[bytes], bytes]]] = {
    "turtle-garbage": ("turtle", lambda t: t[: len(t) // 2] + b" <<< ;;; ."),
    "turtle-not-utf8": ("turtle", lambda t: t + b"\xff\xfe"),
    "size-huge": ("turtle", _set_turtle(rb'(ImageStream ;\n    aff4:size )"\d+"',
                                        rb'\1"9223372036854775807"')),
    "size-negative": ("turtle", _set_turtle(rb'(ImageStream ;\n    aff4:size )"\d+"',
                                            rb'\1"-5"')),
    "map-size-larger": ("turtle", _set_turtle(rb'(aff4:Map ;\n    aff4:size )"\d+"',
                                              rb'\1"99999999999"')),
    "chunk-size-huge": ("turtle", _set_turtle(rb'chunkSize "\d+"', rb'chunkSize "4294967296"')),
    "chunk-size-zero": ("turtle", _set_turtle(rb'chunkSize "\d+"', rb'chunkSize "0"')),
    "chunks-in-segment-huge": ("turtle", _set_turtle(rb'chunksInSegment "\d+"',
                                                     rb'chunksInSegment "4294967295"')),
    "unknown-compression": ("turtle", _set_turtle(rb"<https://tools.ietf.org/html/rfc1951>",
                                                  rb"<https://example.org/zstd>")),
    "no-image": ("turtle", _set_turtle(rb"a aff4:DiskImage, aff4:ContiguousImage, aff4:Image",
                                       rb"a aff4:Thing")),
    "index-offset-huge": ("index0", lambda d: struct.pack("<QI", 2**63, 10) + d[12:]),
    "index-length-huge": ("index0", lambda d: struct.pack("<QI", 0, 2**32 - 1) + d[12:]),
    "index-truncated": ("index0", lambda d: d[:-5]),
    "map-entry-past-end": ("map", lambda d: struct.pack("<QQQI", 2**63, 2**63, 0, 0)),
    "map-target-past-stream": ("map", lambda d: struct.pack("<QQQI", 0, 4096, 2**40, 0)
                               + d[28:]),
    "map-target-id-unknown": ("map", lambda d: d[:24] + struct.pack("<I", 7) + d[28:]),
    "map-partial-entry": ("map", lambda d: d + b"\x01\x02"),
    "map-overlapping": ("map", lambda d: d[:28] + struct.pack("<Q", 4096) + d[36:]),
    "idx-foreign-stream": ("idx", lambda d: b"aff4://00000000-other-volume\n"),
    "idx-not-utf8": ("idx", lambda d: b"\xff\xfe\n"),
    "bevy-truncated": ("bevy0", lambda d: d[: len(d) // 3]),
    "bevy-garbage": ("bevy0", lambda d: os.urandom(len(d))),
    "version-2": ("version.txt", lambda d: b"major=2\nminor=0\n"),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_volumes_fail_closed(tmp_path: Path, case: str) -> None:
    written, _source = _write(tmp_path, gap=(60 * KiB, 100 * KiB))
    role, change = HOSTILE[case]
    _mutate_member(written, role, change)
    for command in ("info", "verify"):
        res = run_bitwitness(command, written.path)
        if command == "info" and res.exit_code == ExitCode.OK:
            continue  # damage inside the data shows when the data is read
        assert res.exit_code in (ExitCode.EVIDENCE, ExitCode.USAGE), (command, res.stderr,
                                                                      res.stdout)
        assert "Traceback" not in res.stderr + res.stdout
        if res.exit_code == ExitCode.USAGE or command == "info":
            assert len(res.stderr.strip().splitlines()) == 1, res.stderr


def test_truncated_and_non_zip_volumes(tmp_path: Path) -> None:
    written, _source = _write(tmp_path)
    data = written.path.read_bytes()
    written.path.write_bytes(data[: len(data) - 100])
    with pytest.raises((CorruptImageError, UnsupportedFormatError)), open_image(written.path):
        pass
    fake = tmp_path / "fake.aff4"
    fake.write_bytes(b"PK\x03\x04" + bytes(64) + b"information.turtle" + bytes(64)
                     + b"PK\x05\x06" + bytes(18))
    assert detect(fake).format.name == "aff4"
    res = run_bitwitness("info", fake)
    assert res.exit_code == ExitCode.EVIDENCE
    assert "AFF4" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(("extra", "word"), [
    ("<aff4://k> a aff4:EncryptedStream .\n", "encrypted"),
    ("<aff4://k> a aff4:PasswordWrappedKeyBag .\n", "encrypted"),
])
def test_encrypted_volumes_are_refused_by_name(tmp_path: Path, extra: str, word: str) -> None:
    written, _source = _write(tmp_path, turtle_extra=extra)
    res = run_bitwitness("info", written.path)
    assert res.exit_code == ExitCode.USAGE
    assert word in res.stderr


def test_logical_only_volume_is_refused_by_name(tmp_path: Path) -> None:
    written, _source = _write(tmp_path, turtle_extra=(
        '<aff4://f> a aff4:FileImage ; aff4:originalFileName "a.txt" .\n'))
    _mutate_member(written, "turtle", _set_turtle(
        rb"a aff4:DiskImage, aff4:ContiguousImage, aff4:Image", rb"a aff4:Thing"))
    res = run_bitwitness("info", written.path)
    assert res.exit_code == ExitCode.USAGE
    assert "logical AFF4" in res.stderr

