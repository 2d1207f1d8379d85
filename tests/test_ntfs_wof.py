"""NTFS files compressed by the Windows Overlay Filter (WOF, "CompactOS") read as their content.

The files are laid out as Windows lays them (``report/browse/wof.py``): the unnamed ``$DATA``
sparse at the file's size, the chunks in the named stream ``WofCompressedData``, and a reparse
point tagged ``IO_REPARSE_TAG_WOF`` naming provider 2 (file) and the algorithm. No Windows here:

* the compressed stream is wimlib's. A WIM resource (not solid) is the same chunk offset table
  and chunks as a WOF stream, with the same XPRESS (LZXPRESS Huffman) and LZX codecs, and a
  chunk that does not shrink stored as it is. ``wimcapture --compress=XPRESS --chunk-size=4096``
  (8192, 16384) and ``--compress=LZX --chunk-size=32768`` write them; ``wiminfo --blobs`` says
  where each file's resource lies (offset, compressed size, SHA-1 of the content);
* ntfs-3g writes it (``streams_interface=windows``: ``file:WofCompressedData`` is the named
  stream), sets the reparse point through ``system.ntfs_reparse_data`` and leaves the unnamed
  ``$DATA`` sparse by truncating the empty file to the original size.

Truth is the source file itself (its SHA-256); TSK's ``icat`` reads zeros (the layout is what
TSK cannot read); wimlib's ``wimapply`` of the same WIM, a second decoder of the very chunks
libfsntfs decodes for us, gives the same bytes. Hostile streams end in one line, exit 1 or 2, in
bounded time and memory, evidence unchanged (bytes and atime).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import struct
import subprocess
import time
from pathlib import Path

import pytest
from conftest import require_root, require_tool, run_bitwitness
from test_fs_ext_hostile import _measured
from test_hostile_images import MAX_RSS, MAX_SECONDS
from wofbuild import ALGORITHMS, reparse, wof_ntfs, wof_streams

_RNG = random.Random(17)
_TEXT = b"".join(b"line %6d: the quick brown fox jumps over the lazy dog\n" % i
                 for i in range(6000))
SOURCES = {
    "tiny.txt": b"WOF\n",  # stored as it is: one chunk that cannot shrink
    "one.txt": _TEXT[:3000],  # one chunk, compressed
    # many chunks of every size, and a last partial one
    "many.txt": _TEXT[:200_003],
    # chunks that do not compress (stored raw) between chunks that do
    "mixed.bin": _TEXT[:50_000] + _RNG.randbytes(70_000) + _TEXT[:33_333],
    # more than the 1 MiB that cat and export read at a time
    "big.txt": _TEXT * 7 + _RNG.randbytes(100_000) + _TEXT[:1001],
    # exactly 8 chunks of 4 KiB: the hostile cases bend its stream
    "even.txt": _TEXT[:8 * 4096],
}
EVEN = SOURCES["even.txt"]


def _sh(*args: str | Path) -> str:
    return subprocess.run([os.fspath(a) for a in args], capture_output=True, text=True,
                          check=True).stdout


def _require() -> None:
    require_root()
    require_tool("mkntfs", "ntfs-3g", "wimcapture", "wiminfo", "wimapply", "icat", "ifind")
    if not Path("/dev/fuse").exists():
        pytest.skip("no /dev/fuse")


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Path]]:
    """The NTFS image, and each algorithm's WIM; files are ``/ALGORITHM/NAME`` (WOF) and
    ``/plain/NAME``."""
    _require()
    work = tmp_path_factory.mktemp("wof")
    fill, wims = {}, {}
    for algorithm, (_compress, _chunk, number) in ALGORITHMS.items():
        streams, wims[algorithm] = wof_streams(work, algorithm, SOURCES)
        for name, stream in streams.items():
            fill[f"{algorithm}/{name}"] = (len(SOURCES[name]), stream, reparse(number))
    image = wof_ntfs(work, "wof", fill, {f"plain/{n}": d for n, d in SOURCES.items()})
    return image, wims


def _cat(image: Path, path: str, *more: str) -> tuple[int, bytes, str]:
    """``bitwitness cat IMAGE PATH`` (or other arguments) in-process: exit code, the bytes
    written, stderr."""
    from click.testing import CliRunner

    from bitwitness.cli.main import main

    with CliRunner().isolation() as streams:
        try:
            main(["cat", os.fspath(image), path, *more])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        return code, streams[0].getvalue(), streams[1].getvalue().decode("utf-8", "replace")


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _icat(image: Path, path: str) -> bytes:
    inode = _sh("ifind", "-n", path, image).strip()
    return subprocess.run(["icat", image, inode], capture_output=True, check=True).stdout


def test_tsk_reads_zeros_where_the_content_is_compressed(
        made: tuple[Path, dict[str, Path]]) -> None:
    """The oracle for the layout: TSK's view of the main stream is zeros at the file's size,
    whatever the algorithm."""
    image, _wims = made
    for algorithm in ALGORITHMS:
        for name, data in SOURCES.items():
            seen = _icat(image, f"{algorithm}/{name}")
            assert seen == bytes(len(data)), (algorithm, name)


def _raw_chunks(stream: bytes, size: int, chunk: int) -> int:
    """How many chunks of a WOF stream are stored as they are (stored size = chunk size)."""
    count = -(-size // chunk)
    table = [0, *struct.unpack_from(f"<{count - 1}I", stream)]
    body = len(stream) - 4 * (count - 1)
    ends = [*table[1:], body]
    return sum(1 for i in range(count)
               if ends[i] - table[i] == min(chunk, size - i * chunk))


def test_the_layouts_cover_raw_and_compressed_chunks(tmp_path: Path) -> None:
    """The sizes asked for are there: wimlib stores some of mixed.bin's chunks raw and
    compresses others, and many.txt has many chunks."""
    _require()
    streams, _wim = wof_streams(tmp_path, "xpress4k", SOURCES)
    raw = _raw_chunks(streams["mixed.bin"], len(SOURCES["mixed.bin"]), 4096)
    assert 0 < raw < -(-len(SOURCES["mixed.bin"]) // 4096)
    assert len(streams["many.txt"]) < len(SOURCES["many.txt"]) // 2


@pytest.mark.parametrize("algorithm", list(ALGORITHMS))
def test_cat_gives_the_source_bytes_and_wimlib_agrees(
        made: tuple[Path, dict[str, Path]], algorithm: str, tmp_path: Path) -> None:
    """``cat`` of each WOF file gives the source file's bytes; ``wimapply`` of the same WIM
    (wimlib decoding the same chunks) gives them too; the raw stream reads as written."""
    image, wims = made
    streams, _wim = wof_streams(tmp_path, algorithm, SOURCES)  # the same WIM again
    _sh("wimapply", wims[algorithm], tmp_path / "applied")
    for name, data in SOURCES.items():
        code, out, err = _cat(image, f"/{algorithm}/{name}")
        assert code == 0, err
        assert _sha(out) == _sha(data), (algorithm, name)
        assert _sha((tmp_path / "applied" / name).read_bytes()) == _sha(data)
        assert _cat(image, f"/plain/{name}")[1] == data
        code, out, err = _cat(image, f"/{algorithm}/{name}:WofCompressedData")
        assert code == 0, err
        assert out == streams[name]


def test_ls_and_stat_show_the_streams_and_the_compression(
        made: tuple[Path, dict[str, Path]]) -> None:
    """``ls`` lists both streams as ``fls`` does; ``stat`` names algorithm and chunk size."""
    image, _wims = made
    fls = _sh("fls", "-r", "-p", image)
    listed = run_bitwitness("ls", "-r", image)
    assert listed.exit_code == 0
    for line in ("xpress8k/many.txt", "xpress8k/many.txt:WofCompressedData"):
        assert re.search(rf"\t{re.escape(line)}$", fls, re.MULTILINE)
        assert re.search(rf"\t{re.escape(line)}$", listed.stdout, re.MULTILINE)
    for algorithm, (_compress, chunk, _number) in ALGORITHMS.items():
        done = run_bitwitness("stat", "--json", image, f"/{algorithm}/many.txt")
        stored = json.loads(done.stdout)["stored"]
        assert f"({algorithm.upper()}, {chunk}-byte chunks)" in stored
        assert json.loads(run_bitwitness("stat", "--json", image,
                                         "/plain/many.txt").stdout)["stored"] is None


def test_timeline_is_fls_m_for_wof_files(made: tuple[Path, dict[str, Path]]) -> None:
    """``timeline`` is unchanged by WOF: the bodyfile rows of every WOF file (both streams and
    its ``$FILE_NAME``) are the ones ``fls -r -m /`` writes."""
    image, _wims = made
    done = run_bitwitness("timeline", image)
    assert done.exit_code == 0, done.stderr
    ours = {line for line in done.stdout.splitlines() if "/xpress" in line or "/lzx" in line}
    theirs = {line for line in _sh("fls", "-r", "-m", "/", image).splitlines()
              if "/xpress" in line or "/lzx" in line}
    assert len(theirs) >= 3 * len(ALGORITHMS) * len(SOURCES)
    assert ours == theirs


def test_export_hashes_the_decompressed_content(made: tuple[Path, dict[str, Path]],
                                                tmp_path: Path) -> None:
    """``export`` writes and hashes each WOF file's content; the raw stream is exported too."""
    image, _wims = made
    done = run_bitwitness("export", image, "/lzx", "/xpress4k", "--to", tmp_path / "out")
    assert done.exit_code == 0, done.stderr
    rows = {r["source"]: r for r in json.loads(
        (tmp_path / "out" / "manifest.json").read_bytes())["files"]}
    for algorithm in ("lzx", "xpress4k"):
        for name, data in SOURCES.items():
            row = rows[f"/{algorithm}/{name}"]
            assert row["sha256"] == _sha(data)
            assert (tmp_path / "out" / row["target"]).read_bytes() == data
            assert f"/{algorithm}/{name}:WofCompressedData" in rows


def test_reads_at_any_offset(made: tuple[Path, dict[str, Path]]) -> None:
    """Previews and the mount read pieces: any offset and length, across chunk boundaries,
    gives the source's bytes there (libfsntfs decodes the chunks the piece needs)."""
    from bitwitness.report.browse.filesystem import open_filesystem
    from bitwitness.stream import BytesStream

    image, _wims = made
    fs = open_filesystem(BytesStream(image.read_bytes()))
    rng = random.Random(3)
    for algorithm, (_compress, chunk, _number) in ALGORITHMS.items():
        for name, data in SOURCES.items():
            entry = fs.lookup(f"/{algorithm}/{name}")
            assert entry.size == len(data)
            for offset in {0, chunk - 1, chunk, len(data) - 1, rng.randrange(len(data))}:
                if 0 <= offset < len(data):
                    length = rng.choice((1, 100, chunk + 7, 70_000))
                    assert fs.read(entry, offset, length) == data[offset:offset + length]
            assert fs.read(entry, len(data), 10) == b""
    # the unreadable-sector doubts map a WOF file onto the clusters its content comes from
    main, stream = fs.lookup("/lzx/many.txt"), fs.lookup("/lzx/many.txt:WofCompressedData")
    assert fs.media_extents(main) == fs.media_extents(stream)
    assert fs.media_extents(stream)


def test_reparse_records_are_read_or_refused_without_a_volume() -> None:
    """The reparse parser on its own (no FUSE needed): a file-provider record gives algorithm
    and chunk size; every other kind is refused in words, and other reparse tags are not WOF."""
    from bitwitness.report.browse.wof import parse_reparse

    for name, (_compress, chunk, number) in ALGORITHMS.items():
        found = parse_reparse(reparse(number), 5000, 3 * chunk)
        assert found is not None
        assert found.refusal is None
        assert (found.algorithm, found.chunk_size) == (number, chunk)
        assert f"({name.upper()}, {chunk}-byte chunks)" in found.describe()
    symlink = struct.pack("<IHH", 0xA000000C, 0, 0)
    assert parse_reparse(symlink, None, 10) is None
    assert parse_reparse(b"\x17\x00", None, 10) is None
    refused = {
        "WIM file": parse_reparse(reparse(0, provider=1), None, 10),
        "provider 7": parse_reparse(reparse(0, provider=7), 10, 10),
        "algorithm 4": parse_reparse(reparse(4), 10, 10),
        "no WofCompressedData": parse_reparse(reparse(0), None, 10),
        "shorter than the chunk table": parse_reparse(reparse(0), 7, 3 * 4096),
        "cut short": parse_reparse(reparse(0)[:12], 10, 10),
    }
    for words, found in refused.items():
        assert found is not None
        assert found.refusal is not None
        assert words in found.refusal, (words, found.refusal)
        assert "\n" not in found.describe()


def _hostile_cases(work: Path) -> dict[str, tuple[int, bytes | None, bytes]]:
    """WOF files whose records lie, from the XPRESS4K stream of ``even.txt`` (8 chunks)."""
    streams, _wim = wof_streams(work, "xpress4k", SOURCES)
    good = streams["even.txt"]
    table = 7 * 4
    outside = bytearray(good)
    struct.pack_into("<I", outside, 0, 0x7FFF_0000)
    backwards = bytearray(good)
    struct.pack_into("<I", backwards, 8, 1)  # chunk 3 starts before chunk 2
    garbage = good[:table] + random.Random(5).randbytes(len(good) - table)
    size = len(EVEN)
    return {
        "outside.txt": (size, bytes(outside), reparse(0)),
        "backwards.txt": (size, bytes(backwards), reparse(0)),
        # the last chunk decodes to 4096 bytes where the file's size leaves it 3996
        "overlong.txt": (size - 100, good, reparse(0)),
        "algorithm.txt": (size, good, reparse(9)),
        "short.txt": (size, good[:10], reparse(0)),
        "huge.txt": (1 << 40, good, reparse(0)),  # TSK refuses the runs
        "long.txt": (24 << 20, good, reparse(0)),  # 6,144 chunks: a 24 KiB table
        "nostream.txt": (size, None, reparse(0)),
        "wim.txt": (size, None, reparse(0, provider=1)),
        "provider.txt": (size, good, reparse(0, provider=7)),
        "garbage.txt": (size, garbage, reparse(0)),
        "lzxnamed.txt": (size, good, reparse(1)),  # XPRESS chunks named LZX
    }


#: The cases whose bytes cannot be the file's: they must fail; the others may decode to
#: something (garbage chunks that happen to decode), never crash or run away
_MUST_FAIL = ("outside.txt", "backwards.txt", "algorithm.txt", "short.txt", "huge.txt", "long.txt",
              "nostream.txt", "wim.txt", "provider.txt")


def test_hostile_wof_streams_end_in_one_line(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Each hostile WOF file: ``cat``, ``stat`` and ``export`` end in exit 0, 1 or 2 within
    :data:`MAX_SECONDS` and :data:`MAX_RSS`, one line on stderr when they fail; a refused file
    is never zeros; the evidence keeps its bytes and atime."""
    _require()
    work = tmp_path_factory.mktemp("wof-hostile")
    cases = _hostile_cases(work)
    image = wof_ntfs(work, "hostile", cases, {"plain.txt": b"plain\n"})
    old = time.time() - 10 * 86400
    os.utime(image, (old, old))  # an atime that any read (relatime) would move
    before = _fingerprint(image)
    for name in cases:
        for args in (("cat", image, f"/{name}"), ("stat", image, f"/{name}"),
                     ("export", image, f"/{name}", "--to", work / f"out-{name}")):
            started = time.monotonic()
            code, stderr, digest, rss = _measured(*args)
            assert time.monotonic() - started < MAX_SECONDS, args
            assert code in (0, 1, 2), (args, stderr)
            assert "Traceback" not in stderr, stderr
            assert "internal error" not in stderr, stderr
            assert rss < MAX_RSS, f"{name} {args[0]}: {rss >> 20} MiB"
            if code:
                assert len(stderr.strip().splitlines()) == 1, (args, stderr)
            if args[0] == "cat" and name in _MUST_FAIL:
                assert code in (1, 2), (name, stderr)
                assert digest != _sha(bytes(min(cases[name][0], 1 << 20))), name
            if args[0] == "export" and code:  # a file whose read failed is not left behind
                assert not (work / f"out-{name}" / name).exists(), name
            if args[0] == "cat" and name == "overlong.txt" and code == 0:
                assert digest == _sha(EVEN[:len(EVEN) - 100])
    assert _fingerprint(image) == before


def _fingerprint(path: Path) -> tuple[str, int, int]:
    """Content hash, mtime and atime, read without moving the atime."""
    fd = os.open(path, os.O_RDONLY | os.O_NOATIME)
    try:
        digest = hashlib.sha256()
        while block := os.read(fd, 1 << 20):
            digest.update(block)
    finally:
        os.close(fd)
    st = path.stat()
    return digest.hexdigest(), st.st_mtime_ns, st.st_atime_ns


def test_mount_files_serves_the_content(made: tuple[Path, dict[str, Path]],
                                        tmp_path: Path) -> None:
    """``mount --files`` reads WOF files through the same reader, piece by piece as the
    kernel asks: each file has the source's bytes, the raw stream its own."""
    from test_mount import Foreground, require_fuse

    require_fuse()
    image, _wims = made
    before = _fingerprint(image)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    fg = Foreground(image, mnt, "--files")
    try:
        live = mnt / "files" / "0"
        for algorithm in ALGORITHMS:
            for name, data in SOURCES.items():
                assert (live / algorithm / name).read_bytes() == data, (algorithm, name)
    finally:
        fg.stop()
    assert _fingerprint(image)[:2] == before[:2]


def test_libfsntfs_reads_out_of_order_wrongly(made: tuple[Path, dict[str, Path]]) -> None:
    """Why :class:`~bitwitness.report.browse.wof.WofVolume` reads each file from its start on a
    fresh volume object: on one volume object, libfsntfs reads of a WOF file at offsets out of
    order fail or give other bytes. When this stops failing, the workaround can go."""
    import pyfsntfs

    image, _wims = made
    inodes = {path: int(_sh("ifind", "-n", path, image).strip())
              for path in ("xpress4k/tiny.txt", "xpress4k/many.txt", "lzx/many.txt",
                           "xpress16k/mixed.bin")}
    volume = pyfsntfs.volume()
    volume.open(os.fspath(image))
    entries = {path: volume.get_file_entry(inode) for path, inode in inodes.items()}
    rng = random.Random(1)
    wrong = 0
    for _ in range(300):
        path = rng.choice(list(entries))
        data = SOURCES[path.split("/")[1]]
        offset = rng.randrange(len(data))
        size = min(rng.choice((1, 100, 5000, 70_000)), len(data) - offset)
        try:
            wrong += entries[path].read_buffer_at_offset(size, offset) != data[offset:offset + size]
        except OSError:
            wrong += 1
    volume.close()
    assert wrong


def test_a_deleted_wof_file_is_recovered_decompressed(tmp_path: Path) -> None:
    """A WOF file deleted through ntfs-3g keeps its MFT record (``fls -d`` lists both streams):
    ``cat --inode`` gives its content decompressed, as wimlib's source held it."""
    _require()
    from wofbuild import small_wof_ntfs

    image = small_wof_ntfs(tmp_path)
    inode = _sh("ifind", "-n", "lzx.bin", image).strip()
    code, want, err = _cat(image, "/lzx.bin")
    assert code == 0, err
    mount = tmp_path / "mnt"
    mount.mkdir()
    _sh("ntfs-3g", image, mount)
    try:
        (mount / "lzx.bin").unlink()
    finally:
        _sh("umount", mount)
    assert re.search(rf"^-/r \* {inode}-128-\d+:\tlzx.bin$", _sh("fls", "-d", image),
                     re.MULTILINE)
    code, got, err = _cat(image, "--inode", inode)
    assert code == 0, err
    assert _sha(got) == _sha(want)
