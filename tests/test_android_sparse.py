"""Android sparse images, read as the media they describe, checked against Android's own tools.

Every image starts from an ext4 file system written by ``mkfs.ext4 -d`` (files of random bytes,
a file of one repeated 4-byte word, empty space) and is made sparse by libsparse's own tools
(Debian ``android-sdk-libsparse-utils``): ``img2simg`` with 4096- and 1024-byte blocks (it writes
RAW chunks, and FILL chunks for runs of one repeated word, zeros included), and ``simg2simg``,
which splits an image into pieces whose blocks kept elsewhere are DONT_CARE chunks. The media
each must give is what ``simg2img`` writes (libsparse's reader, not ours), hashed by
``md5sum``/``sha1sum``/``sha256sum``; its files are what ``fls`` lists on that raw output.

No tool here writes CRC32 chunks or an image checksum (img2simg 29 has no option for them): those
images are img2simg's with a CRC32 chunk appended and the header's checksum set, built from the
published layout (libsparse ``sparse_format.h``) with the CRC-32 that zlib computes over
``simg2img``'s output.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import struct
import subprocess
import time
import zlib
from collections import Counter
from pathlib import Path

import pytest
from conftest import require_tool, run_bitwitness
from contract import check_stream_contract
from test_mount import strict_atime_dir  # noqa: F401 - a fixture

from bitwitness.errors import ExitCode
from bitwitness.image import detect, open_image

HEADER = struct.Struct("<IHHHHIIII")
CHUNK = struct.Struct("<HHII")
RAW, FILL, DONT_CARE, CRC32 = 0xCAC1, 0xCAC2, 0xCAC3, 0xCAC4
#: header fields' offsets (sparse_format.h)
FILE_HDR_AT, CHUNK_HDR_AT, BLOCK_AT, BLOCKS_AT, CHUNKS_AT, CHECKSUM_AT = 8, 10, 12, 16, 20, 24


def _run(*args: str | Path) -> subprocess.CompletedProcess[bytes]:
    done = subprocess.run([str(a) for a in args], capture_output=True, check=False)
    assert done.returncode == 0, done.stderr
    return done


def _sum(tool: str, path: Path) -> str:
    return _run(tool, path).stdout.split()[0].decode()


def chunk_types(image: Path) -> Counter[int]:
    """The chunk types the file holds, by the published layout (to know the sample has what a
    test needs; the reader is checked against simg2img, not against this)."""
    data = image.read_bytes()
    _m, _ma, _mi, file_hdr, _ch, _bs, _tb, chunks, _ck = HEADER.unpack_from(data)
    at, kinds = file_hdr, Counter[int]()
    for _ in range(chunks):
        kind, _r, _n, total = CHUNK.unpack_from(data, at)
        kinds[kind] += 1
        at += total
    return kinds


@pytest.fixture(scope="module")
def ext4(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 24 MiB ext4 image with files: random, one repeated word (a FILL run), empty."""
    require_tool("mkfs.ext4", "img2simg", "simg2img", "simg2simg", "fls")
    base = tmp_path_factory.mktemp("simg")
    tree = base / "tree"
    (tree / "docs" / "deep").mkdir(parents=True)
    (tree / "docs" / "random.bin").write_bytes(os.urandom(300_000))
    (tree / "docs" / "deep" / "note.txt").write_text("Android sparse evidence\n" * 50)
    (tree / "words.bin").write_bytes(b"\xde\xad\xbe\xef" * (256 << 10))  # 1 MiB of one word
    (tree / "empty").write_bytes(b"")
    image = base / "ext4.img"
    _run("truncate", "-s", "24M", image)
    _run("mkfs.ext4", "-q", "-F", "-b", "4096", "-d", tree, image)
    return image


def _simg2img(image: Path, out: Path) -> Path:
    _run("simg2img", image, out)
    return out


def _with_crc(source: Path, target: Path, raw: Path, *, chunk_crc: int | None = None,
              image_checksum: int | None = None) -> Path:
    """``source`` with a CRC32 chunk appended (the CRC-32 of all the media, ``raw``, unless
    ``chunk_crc`` says otherwise) and the header's image checksum set."""
    crc = zlib.crc32(raw.read_bytes())
    data = bytearray(source.read_bytes())
    chunks = struct.unpack_from("<I", data, CHUNKS_AT)[0]
    struct.pack_into("<I", data, CHUNKS_AT, chunks + 1)
    struct.pack_into("<I", data, CHECKSUM_AT, crc if image_checksum is None else image_checksum)
    data += CHUNK.pack(CRC32, 0, 0, CHUNK.size + 4)
    data += struct.pack("<I", crc if chunk_crc is None else chunk_crc)
    target.write_bytes(bytes(data))
    return target


@pytest.fixture(scope="module")
def samples(ext4: Path) -> dict[str, tuple[Path, Path]]:
    """Each kind of sparse image and the raw media simg2img gives for it."""
    base = ext4.parent
    out: dict[str, tuple[Path, Path]] = {}
    s4k = base / "s4k.simg"
    _run("img2simg", ext4, s4k)
    out["img2simg-4096"] = (s4k, _simg2img(s4k, base / "s4k.raw"))
    s1k = base / "s1k.simg"
    _run("img2simg", ext4, s1k, "1024")
    out["img2simg-1024"] = (s1k, _simg2img(s1k, base / "s1k.raw"))
    _run("simg2simg", s4k, base / "part.simg", str(s4k.stat().st_size // 3 + 1))
    parts = sorted(base.glob("part.simg.*"), key=lambda p: int(p.suffix[1:]))
    assert len(parts) >= 3, parts
    lone = base / "lone.simg"  # a piece alone: its blocks kept in the others are DONT_CARE
    shutil.copyfile(parts[1], lone)
    out["simg2simg-piece"] = (lone, _simg2img(lone, base / "lone.raw"))
    set_raw = base / "set.raw"
    _run("simg2img", *parts, set_raw)
    out["simg2simg-set"] = (parts[1], set_raw)  # any piece opens the whole set
    crc = _with_crc(s4k, base / "crc.simg", out["img2simg-4096"][1])
    out["crc32"] = (crc, out["img2simg-4096"][1])
    return out


KINDS = ["img2simg-4096", "img2simg-1024", "simg2simg-piece", "simg2simg-set", "crc32"]


def test_the_samples_hold_every_chunk_type(samples: dict[str, tuple[Path, Path]]) -> None:
    """RAW, FILL (zeros and a non-zero word), DONT_CARE and CRC32 all occur in the samples."""
    seen: Counter[int] = Counter()
    for image, _raw in samples.values():
        seen.update(chunk_types(image))
    assert all(seen[k] for k in (RAW, FILL, DONT_CARE, CRC32)), seen
    data = samples["img2simg-4096"][0].read_bytes()
    assert CHUNK.pack(FILL, 0, 256, CHUNK.size + 4) + b"\xde\xad\xbe\xef" in data


@pytest.mark.parametrize("kind", KINDS)
def test_info_and_verify_give_what_simg2img_gives(samples: dict[str, tuple[Path, Path]],
                                                  kind: str) -> None:
    image, raw = samples[kind]
    assert detect(image).format.name == "android-sparse"
    info = run_bitwitness("info", image, "--json")
    assert info.exit_code == ExitCode.OK, info.stderr
    doc = info.json()
    assert doc["format"] == "android-sparse"
    assert doc["media_size"] == raw.stat().st_size
    assert "not evidence" in doc["details"]["dont_care_bytes"]
    res = run_bitwitness("verify", image, "--json")
    assert res.exit_code == ExitCode.EVIDENCE, res.stderr  # nothing but CRC-32 is recorded
    got = res.json()["images"][0]
    assert got["verdict"] == "UNVERIFIED", got["problems"]
    assert got["computed"] == {"md5": _sum("md5sum", raw), "sha1": _sum("sha1sum", raw),
                               "sha256": _sum("sha256sum", raw)}
    with open_image(image) as stream:
        check_stream_contract(stream, raw.read_bytes())


def test_dont_care_is_counted_apart(samples: dict[str, tuple[Path, Path]]) -> None:
    """A split piece's blocks kept in the other pieces are DONT_CARE: info says how many bytes,
    as zeros that are not evidence; the piece's RAW and FILL bytes are the rest."""
    image, raw = samples["simg2simg-piece"]
    assert chunk_types(image)[DONT_CARE]
    doc = run_bitwitness("info", image, "--json").json()["details"]
    dont_care = int(doc["dont_care_bytes"].split()[0])
    stored = int(doc["stored_bytes"].split()[0])
    filled = int(doc["filled_bytes"].split()[0])
    assert 0 < dont_care < raw.stat().st_size
    assert dont_care + stored + filled == raw.stat().st_size


@pytest.mark.parametrize("kind", ["img2simg-4096", "simg2simg-set"])
def test_second_reader_agrees(samples: dict[str, tuple[Path, Path]], kind: str) -> None:
    image, _raw = samples[kind]
    res = run_bitwitness("verify", "--second-reader", image, "--json")
    assert res.exit_code == ExitCode.EVIDENCE, res.stderr
    doc = res.json()["images"][0]
    second = doc["second_reader"]
    assert second is not None, doc["notes"]
    assert second["agree"], second
    assert second["reader"].startswith("simg2img")
    assert doc["verdict"] == "UNVERIFIED", doc["problems"]


def test_a_lying_second_reader_is_a_mismatch(samples: dict[str, tuple[Path, Path]],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """The comparison is real: a second reader that returns other bytes is reported."""
    from bitwitness.images import android_sparse
    from bitwitness.verify.verifier import VerifyOptions, verify_image

    real = android_sparse.Simg2imgStream._read_aligned

    def lying(self: android_sparse.Simg2imgStream, offset: int, length: int) -> bytes:
        data = bytearray(real(self, offset, length))
        if offset == 0 and data:
            data[0] ^= 1
        return bytes(data)

    monkeypatch.setattr(android_sparse.Simg2imgStream, "_read_aligned", lying)
    result = verify_image(samples["img2simg-4096"][0], VerifyOptions(second_reader=True))
    assert result.second_reader is not None
    assert not result.second_reader.agree


def test_ls_lists_what_fls_lists_on_the_raw(samples: dict[str, tuple[Path, Path]]) -> None:
    for kind in ("img2simg-4096", "img2simg-1024"):
        image, raw = samples[kind]
        ours = run_bitwitness("ls", image, "-r", "--all")
        assert ours.exit_code == ExitCode.OK, ours.stderr
        fls = _run("fls", "-r", "-p", raw).stdout.decode("utf-8", "surrogateescape")
        assert Counter(ours.stdout.splitlines()) == Counter(fls.splitlines())
        assert "docs/deep/note.txt" in ours.stdout


def test_convert_to_raw_and_e01_keeps_the_media(samples: dict[str, tuple[Path, Path]],
                                                tmp_path: Path) -> None:
    require_tool("ewfverify")
    image, raw = samples["simg2simg-set"]
    md5 = _sum("md5sum", raw)
    done = run_bitwitness("convert", image, "--to", "raw", "-o", tmp_path / "out")
    assert done.exit_code == ExitCode.OK, done.stderr
    assert _sum("md5sum", tmp_path / "out.raw") == md5
    done = run_bitwitness("convert", image, "--to", "e01", "-o", tmp_path / "e")
    assert done.exit_code == ExitCode.OK, done.stderr
    ewf = _run("ewfverify", "-q", "-d", "sha1", tmp_path / "e.E01").stdout.decode()
    assert md5 in ewf
    assert _sum("sha1sum", raw) in ewf


def test_mount_serves_the_media(samples: dict[str, tuple[Path, Path]], tmp_path: Path) -> None:
    from test_mount import Foreground, require_fuse

    require_fuse()
    image, raw = samples["img2simg-1024"]
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    fg = Foreground(image, mnt)
    try:
        digest = hashlib.sha256((mnt / "media.raw").read_bytes()).hexdigest()
    finally:
        code, _out, err = fg.stop()
    assert code == 0, err
    assert digest == _sum("sha256sum", raw)


def test_a_set_of_pieces_is_the_media_of_all_of_them(samples: dict[str, tuple[Path, Path]]
                                                     ) -> None:
    """Any piece of simg2simg's set opens the whole set: its files are every piece, its media
    what simg2img writes from all of them (the image before it was split), no block left as
    DONT_CARE."""
    image, raw = samples["simg2simg-set"]
    doc = run_bitwitness("info", image, "--json").json()
    pieces = sorted(image.parent.glob("part.simg.*"))
    files = {f["path"] if isinstance(f, dict) else f for f in doc["files"]}
    assert files == {str(p) for p in pieces}
    assert doc["details"]["dont_care_bytes"].startswith("0 bytes no piece holds")
    assert raw.read_bytes() == samples["img2simg-4096"][1].read_bytes()


def test_a_missing_piece_is_named(samples: dict[str, tuple[Path, Path]],
                                  tmp_path: Path) -> None:
    pieces = sorted(samples["simg2simg-set"][0].parent.glob("part.simg.*"),
                    key=lambda p: int(p.suffix[1:]))
    for piece in pieces:
        if piece != pieces[1]:
            shutil.copyfile(piece, tmp_path / piece.name)
    res = run_bitwitness("info", tmp_path / pieces[0].name)
    assert res.exit_code == ExitCode.EVIDENCE, res.stderr
    assert "piece part.simg.1 of the Android sparse set is missing" in res.stderr


def test_pieces_that_both_hold_a_block_are_refused(samples: dict[str, tuple[Path, Path]],
                                                   tmp_path: Path) -> None:
    """Two pieces that both hold data for one block are not a set any writer makes."""
    for n in (0, 1):
        shutil.copyfile(samples["img2simg-4096"][0], tmp_path / f"twice.simg.{n}")
    res = run_bitwitness("info", tmp_path / "twice.simg.0")
    assert res.exit_code == ExitCode.EVIDENCE, res.stderr
    assert "both hold block 0" in res.stderr


# --- what the image records about its media ----------------------------------------------------


def test_crc32_chunk_and_image_checksum_are_verified(samples: dict[str, tuple[Path, Path]]
                                                     ) -> None:
    image, _raw = samples["crc32"]
    doc = run_bitwitness("verify", image, "--json").json()["images"][0]
    checks = {c["what"]: c for c in doc["container_checks"]}
    assert checks["Android sparse CRC-32"]["ok"], checks
    assert "2 recorded CRC-32 values match" in checks["Android sparse CRC-32"]["detail"]


@pytest.mark.parametrize("which", ["chunk", "header"])
def test_a_wrong_crc32_is_reported(samples: dict[str, tuple[Path, Path]], tmp_path: Path,
                                   which: str) -> None:
    source, raw = samples["img2simg-4096"]
    wrong = zlib.crc32(raw.read_bytes()) ^ 0x1000
    image = _with_crc(source, tmp_path / "bad.simg", raw,
                      **({"chunk_crc": wrong} if which == "chunk" else {"image_checksum": wrong}))
    res = run_bitwitness("verify", image)
    assert res.exit_code == ExitCode.EVIDENCE, res.stderr
    assert "verdict: CORRUPT" in res.stdout
    said = "CRC32 chunk" if which == "chunk" else "image checksum"
    assert said in res.stdout
    assert f"0x{wrong:08x}" in res.stdout


def test_evidence_bytes_and_times_are_unchanged(samples: dict[str, tuple[Path, Path]],
                                                strict_atime_dir: Path) -> None:  # noqa: F811
    """info, verify (with its CRC-32 checks and the second reader's copy) and ls read the image
    through the read-only opener: content, mtime and atime stay. Run on a strictatime mount,
    where any other read would move the access time."""
    where = strict_atime_dir
    image = where / "evidence.simg"
    shutil.copyfile(samples["crc32"][0], image)
    os.utime(image, ns=(1_000_000_000, 2_000_000_000))
    before = image.stat()
    digest = _sha256_noatime(image)
    for args in (("info", image), ("verify", image), ("verify", "--second-reader", image),
                 ("ls", "-r", image)):
        done = run_bitwitness(*args)
        assert done.exit_code in (ExitCode.OK, ExitCode.EVIDENCE), (args, done.stderr)
        after = image.stat()
        assert (after.st_atime_ns, after.st_mtime_ns, after.st_size) == (
            before.st_atime_ns, before.st_mtime_ns, before.st_size), args
    assert _sha256_noatime(image) == digest


def _sha256_noatime(path: Path) -> str:
    fd = os.open(path, os.O_RDONLY | os.O_NOATIME)
    with os.fdopen(fd, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()


# --- hostile images ---------------------------------------------------------------------------


def _patched(source: Path, target: Path, at: int, fmt: str, value: int) -> Path:
    data = bytearray(source.read_bytes())
    struct.pack_into(fmt, data, at, value)
    target.write_bytes(bytes(data))
    return target


def _first_chunk_at(image: Path) -> int:
    return struct.unpack_from("<H", image.read_bytes(), FILE_HDR_AT)[0]


def _blocks(image: Path) -> int:
    """The media's blocks as the header records them."""
    return int(struct.unpack_from("<I", image.read_bytes(), BLOCKS_AT)[0])


def _truncated(source: Path, target: Path) -> Path:
    data = source.read_bytes()
    target.write_bytes(data[: len(data) - 5000])
    return target


#: (case, how to damage img2simg's 4096-byte image, info exit, what the one line says)
LIES = {
    "block-size-not-multiple-of-4": (lambda s, t: _patched(s, t, BLOCK_AT, "<I", 4098), 1,
                                     "block size 4098 is not a multiple of 4"),
    "block-size-zero": (lambda s, t: _patched(s, t, BLOCK_AT, "<I", 0), 1, "block size 0"),
    "block-size-huge": (lambda s, t: _patched(s, t, BLOCK_AT, "<I", 0xFFFF_FFFC), 1,
                        "its header says"),
    "billions-of-chunks": (lambda s, t: _patched(s, t, CHUNKS_AT, "<I", 0xFFFF_FFFF), 1,
                           "declares 4294967295 chunks"),
    "too-few-chunks": (lambda s, t: _patched(s, t, CHUNKS_AT, "<I", 1), 1,
                       "the header declares {blocks}"),
    "total-blocks-more": (lambda s, t: _patched(s, t, BLOCKS_AT, "<I", _blocks(s) + 1), 1,
                          "cover {blocks} blocks; the header declares {more}"),
    "total-blocks-fewer": (lambda s, t: _patched(s, t, BLOCKS_AT, "<I", 7), 1,
                           "past the 7 blocks the header declares"),
    "total-blocks-max": (lambda s, t: _patched(s, t, BLOCKS_AT, "<I", 0xFFFF_FFFF), 1,
                         "the header declares 4294967295"),
    "file-header-size": (lambda s, t: _patched(s, t, FILE_HDR_AT, "<H", 10), 1,
                         "file header size 10"),
    "file-header-size-huge": (lambda s, t: _patched(s, t, FILE_HDR_AT, "<H", 0xFFFF), 1,
                              "chunk 0"),
    "chunk-header-size": (lambda s, t: _patched(s, t, CHUNK_HDR_AT, "<H", 4), 1,
                          "chunk header size 4"),
    "chunk-size-lies": (lambda s, t: _patched(s, t, _first_chunk_at(s) + 8, "<I", 1 << 31), 1,
                        "its header says 2147483648"),
    "chunk-blocks-lie": (lambda s, t: _patched(s, t, _first_chunk_at(s) + 4, "<I", 0xFFFF_FFFF),
                         1, "chunk 0"),
    "chunk-type-unknown": (lambda s, t: _patched(s, t, _first_chunk_at(s), "<H", 0xDEAD), 1,
                           "type 0xDEAD is none the format defines"),
    "chunk-beyond-the-file": (_truncated, 1, "past the end of the"),
    "version-2": (lambda s, t: _patched(s, t, 4, "<H", 2), 2, "version 2.0 is not read"),
}


@pytest.mark.parametrize("case", sorted(LIES))
def test_lying_headers_fail_closed_in_one_line(samples: dict[str, tuple[Path, Path]],
                                               tmp_path: Path, case: str) -> None:
    from test_hostile_images import MAX_RSS, MAX_SECONDS, run_measured

    make, code, said = LIES[case]
    source = samples["img2simg-4096"][0]
    said = said.format(blocks=_blocks(source), more=_blocks(source) + 1)
    image = make(source, tmp_path / f"{case}.simg")
    before = image.read_bytes()
    for command in ("info", "verify"):
        started = time.monotonic()
        got, stdout, stderr, rss = run_measured(command, image)
        assert time.monotonic() - started < MAX_SECONDS, command
        assert rss < MAX_RSS, f"{command} peaked at {rss >> 20} MiB"
        assert "Traceback" not in stderr
        if command == "info" or code == 2:
            assert got == code, (command, stdout, stderr)
            assert len(stderr.strip().splitlines()) == 1, stderr
            assert said in stderr
            assert "Android sparse" in stderr
        else:
            assert got == ExitCode.EVIDENCE, (stdout, stderr)
            assert "verdict: CORRUPT" in stdout
            assert said in stdout
    assert image.read_bytes() == before


def _many_chunks(path: Path, chunks: int) -> Path:
    """A valid image of ``chunks`` one-block FILL chunks of 4-byte blocks, each its own word:
    the most chunks a file of its size can hold, none mergeable."""
    body = b"".join(CHUNK.pack(FILL, 0, 1, CHUNK.size + 4) + struct.pack("<I", i)
                    for i in range(chunks))
    path.write_bytes(HEADER.pack(0xED26FF3A, 1, 0, 28, 12, 4, chunks, chunks, 0) + body)
    return path


def test_a_million_chunks_in_bounded_time_and_memory(tmp_path: Path) -> None:
    from test_hostile_images import MAX_RSS, MAX_SECONDS, run_measured

    chunks = 1_000_000
    image = _many_chunks(tmp_path / "many.simg", chunks)
    expected = b"".join(struct.pack("<I", i) for i in range(chunks))
    for command in ("info", "verify"):
        started = time.monotonic()
        got, stdout, stderr, rss = run_measured(command, image, "--json")
        assert time.monotonic() - started < MAX_SECONDS, command
        assert rss < MAX_RSS, f"{command} peaked at {rss >> 20} MiB"
        assert got in (ExitCode.OK, ExitCode.EVIDENCE), stderr
    assert f'"md5": "{hashlib.md5(expected, usedforsecurity=False).hexdigest()}"' in stdout
    with open_image(image) as stream:
        assert stream.pread(4 * 777_777, 8) == struct.pack("<II", 777_777, 777_778)


def test_crc_of_long_runs_is_zlibs() -> None:
    """The CRC-32 of a FILL or DONT_CARE run, computed without making the run, is what zlib
    computes over the bytes themselves (runs past the direct path's MiB included)."""
    from bitwitness.images.android_sparse import _crc_repeat

    for word in (bytes(4), b"\xde\xad\xbe\xef"):
        for count in (1, 3, (1 << 18) + 1, 3_000_001):
            for start in (0, 0x1234_5678):
                assert _crc_repeat(start, word, count) == zlib.crc32(word * count, start)


def test_no_room_for_simg2img_is_noted_not_a_mismatch(samples: dict[str, tuple[Path, Path]],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Without room in TMPDIR for simg2img's raw output the second reader is not run: verify
    notes why instead of recording a disagreement."""
    from collections import namedtuple

    from bitwitness.verify.verifier import VerifyOptions, verify_image

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda _p: usage(1 << 20, 1 << 20, 4096))
    result = verify_image(samples["img2simg-4096"][0], VerifyOptions(second_reader=True))
    assert result.second_reader is None
    assert any("set TMPDIR" in note for note in result.notes), result.notes
