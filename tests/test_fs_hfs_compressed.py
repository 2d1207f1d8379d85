"""HFS+ compressed files (decmpfs): cat, export, stat, mount and random reads give the
uncompressed bytes, checked against Debian's ``icat`` (TSK built with zlib) and libyal's
pyfshfs (LZFSE, which TSK does not decode: pyfshfs alone), never against the bytes the test
wrote; what we do not decode is a named doubt; hostile records fail closed (bounded time and
memory, one line, exit 1 or 2) and leave the image as it was.

The volume is written by tests/builders/hfsplus.py (nothing on Linux writes HFS+ files).
"""

from __future__ import annotations

import json
import os
import random
import struct
import subprocess
import zlib
from pathlib import Path

import lzfse
import pytest
from builders.hfsplus import (
    Node,
    compressed,
    decmpfs_header,
    hfsplus_volume,
    lzfse_blocks,
    lzfse_stored,
    lzvn_blocks,
    lzvn_inline,
    lzvn_literals,
    offset_fork,
    zlib_blocks,
    zlib_fork,
    zlib_inline,
)
from conftest import cat_bytes, require_tool, run_bitwitness, snapshot
from test_fs_ext_hostile import fails_closed

from bitwitness.errors import FileSystemError
from bitwitness.report.browse import decmpfs, tsk

pyfshfs = pytest.importorskip("pyfshfs")

TEXT = b"".join(b"line %05d of a compressed text file\n" % n for n in range(6000))  # 216 KB
NOISE = random.Random(3).randbytes(150_000)  # units that do not compress: stored blocks
SMALL = b"small inline text, compressed with zlib; " * 40

#: An LZVN stream with an opcode of each kind (see test_lzvn_matches_of_every_kind)
MATCHES = (bytes([0xE3]) + b"abc" + bytes([0x30, 3])  # L0 M9 D3 (overlapping)
           + bytes([0xA0 | (1 << 3), (4 << 2) | 1, 0]) + b"X"  # medium: L1 M4 D4
           + bytes([0x46]) + b"Y"  # previous distance: L1 M3
           + bytes([0xF2])  # match only, M2
           + bytes([0x07, 10, 0])  # large distance 10: L0 M3
           + b"\x06" + bytes(7))

#: name -> the node; the decoded ones first
DECODED = {
    "z3.txt": compressed("z3.txt", 0, zlib_inline(SMALL)),
    "z3-stored.txt": compressed("z3-stored.txt", 0, zlib_inline(b"too short to shrink",
                                                                stored=True)),
    "z4.txt": compressed("z4.txt", 0, decmpfs_header(4, len(TEXT)),
                         zlib_fork(zlib_blocks(TEXT))),
    "z4-mixed.bin": compressed("z4-mixed.bin", 0, decmpfs_header(4, len(NOISE)),
                               zlib_fork(zlib_blocks(NOISE, stored=(0, 2)))),
    "v7.txt": compressed("v7.txt", 0, lzvn_inline(SMALL)),
    "v7-stored.txt": compressed("v7-stored.txt", 0, lzvn_inline(b"stored LZVN", stored=True)),
    "v7-matches.txt": compressed("v7-matches.txt", 0, decmpfs_header(7, 26) + MATCHES),
    "v8.bin": compressed("v8.bin", 0, decmpfs_header(8, len(NOISE)),
                         offset_fork(lzvn_blocks(NOISE))),
    "v8-small.txt": compressed("v8-small.txt", 0, decmpfs_header(8, 3000),
                               offset_fork([lzvn_literals(TEXT[:3000])])),
}
#: LZFSE, which TSK does not decode: checked against pyfshfs alone
LZFSE = {
    "f11.txt": compressed("f11.txt", 0, decmpfs_header(11, len(SMALL)) + lzfse.compress(SMALL)),
    "f11-stored.txt": compressed("f11-stored.txt", 0, decmpfs_header(11, len(SMALL))
                                 + lzfse_stored(SMALL)),
    "f12.txt": compressed("f12.txt", 0, decmpfs_header(12, len(TEXT)),
                          offset_fork(lzfse_blocks(TEXT))),
}
#: name -> (node, the method stat names)
REFUSED = {
    "r9.txt": (compressed("r9.txt", 0, decmpfs_header(9, 5) + b"\xccraw!"), "uncompressed"),
    "r10.bin": (compressed("r10.bin", 0, decmpfs_header(10, 5),
                           offset_fork([b"\xccraw!"])), "uncompressed"),
    "b13.txt": (compressed("b13.txt", 0, decmpfs_header(13, 4) + b"\xffabcd"), "LZBITMAP"),
    "d5.txt": (compressed("d5.txt", 0, decmpfs_header(5, 4096)), "dataless"),
    "u99.txt": (compressed("u99.txt", 0, decmpfs_header(99, 10) + b"0123456789"),
                "unknown decmpfs type 99"),
}


def _nodes() -> list[Node]:
    return [Node("plain.txt", data=b"not compressed\n"),
            Node("Docs", folder=True),
            Node("inner.txt", data=TEXT[:5000], parent="Docs"),
            *DECODED.values(), *LZFSE.values(), *(node for node, _ in REFUSED.values())]


@pytest.fixture(scope="module")
def volume(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("hfsc") / "hfs.img"
    path.write_bytes(hfsplus_volume(_nodes()))
    return path


def _inodes(image: Path) -> dict[str, int]:
    """Name -> inode, as ``fls -r`` lists them (every file here has a unique name)."""
    out = subprocess.run(["fls", "-r", "-p", os.fspath(image)], capture_output=True, text=True,
                         check=True).stdout
    found = {}
    for line in out.splitlines():
        head, _, path = line.partition("\t")
        found[path.rsplit("/", 1)[-1]] = int(head.split()[-1].rstrip(":"))
    return found


def _icat(image: Path, inode: int) -> bytes:
    return subprocess.run(["icat", os.fspath(image), str(inode)], capture_output=True,
                          check=True).stdout


def _pyfshfs(image: Path, path: str) -> bytes:
    vol = pyfshfs.volume()
    vol.open(os.fspath(image))
    try:
        entry = vol.get_file_entry_by_path(path)
        return bytes(entry.read_buffer(entry.get_size()))
    finally:
        vol.close()


def test_the_build_has_zlib_and_the_decmpfs_guards() -> None:
    assert tsk.has_indirect_fix(), "run scripts/build-pytsk3.sh"


def test_sizes_are_the_uncompressed_sizes_fls_shows(volume: Path) -> None:
    require_tool("fls")
    out = subprocess.run(["fls", "-r", "-p", "-l", os.fspath(volume)], capture_output=True,
                         text=True, check=True).stdout
    theirs = {line.split("\t")[1].lstrip("/"): int(line.split("\t")[6])
              for line in out.splitlines() if line.startswith("r/r")}
    listed = json.loads(run_bitwitness("ls", "-r", "--json", volume).stdout)
    ours = {e["path"].lstrip("/"): e["size"] for e in listed["entries"] if e["kind"] == "file"}
    for name in [*DECODED, *LZFSE, *REFUSED, "Docs/inner.txt"]:
        assert ours[name] == theirs[name], name
    assert theirs["z4.txt"] > 200_000  # the data fork itself is empty


@pytest.mark.parametrize("name", list(DECODED))
def test_cat_gives_what_icat_and_pyfshfs_give(volume: Path, name: str) -> None:
    require_tool("fls", "icat")
    ours = cat_bytes(volume, f"/{name}")
    theirs = _icat(volume, _inodes(volume)[name])
    assert ours, name
    assert ours == theirs
    assert ours == _pyfshfs(volume, f"/{name}")


@pytest.mark.parametrize("name", list(LZFSE))
def test_lzfse_gives_what_pyfshfs_gives(volume: Path, name: str) -> None:
    """TSK has no LZFSE decoder; libfshfs's (libfmos) is the independent one here, ours the
    reference implementation's."""
    ours = cat_bytes(volume, f"/{name}")
    assert ours
    assert ours == _pyfshfs(volume, f"/{name}")


def test_random_reads_cross_blocks_as_icat_has_them(volume: Path) -> None:
    """``fs.read`` (what mount and the browser use) from inside one block into the next."""
    require_tool("fls", "icat")
    from bitwitness.image import open_image
    from bitwitness.report.browse.filesystem import open_filesystem

    inodes = _inodes(volume)
    for name in ("z4.txt", "z4-mixed.bin", "v8.bin", "z3.txt", "f12.txt"):
        whole = _pyfshfs(volume, f"/{name}") if name in LZFSE else _icat(volume, inodes[name])
        with open_image(volume) as stream:
            fs = open_filesystem(stream)
            entry = fs.lookup(f"/{name}")
            for offset, size in ((0, 10), (65530, 20), (65536, 65536), (131000, 5000),
                                 (len(whole) - 7, 100), (100, 200_000)):
                assert fs.read(entry, offset, size) == whole[offset:offset + size], (name, offset)


def test_stat_names_the_compression(volume: Path) -> None:
    result = run_bitwitness("stat", volume, "/z4.txt")
    assert result.exit_code == 0, result.stderr
    fork = next(line for line in result.stdout.splitlines() if line.startswith("stored:"))
    blocks = -(-len(TEXT) // 65536)
    assert "compressed: zlib in the resource fork (" in fork
    assert f"{blocks} blocks, {len(TEXT):,} bytes (type 4)" in fork
    document = json.loads(run_bitwitness("stat", "--json", volume, "/v7.txt").stdout)
    assert document["stored"].startswith("compressed: LZVN inline in com.apple.decmpfs")
    assert document["doubts"] == []
    plain = json.loads(run_bitwitness("stat", "--json", volume, "/plain.txt").stdout)
    assert plain["stored"] is None


@pytest.mark.parametrize("name", list(REFUSED))
def test_what_is_not_decoded_is_a_named_doubt(volume: Path, name: str) -> None:
    method = REFUSED[name][1]
    result = run_bitwitness("cat", volume, f"/{name}")
    assert result.exit_code == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert method.split()[0] in result.stderr or "dataless" in result.stderr
    document = json.loads(run_bitwitness("stat", "--json", volume, f"/{name}").stdout)
    assert method in document["stored"]
    assert len(document["doubts"]) == 1
    shown = run_bitwitness("stat", volume, f"/{name}").stdout
    assert "doubt:" in shown


def test_export_writes_the_decoded_bytes_and_counts_the_doubts(volume: Path,
                                                               tmp_path: Path) -> None:
    require_tool("fls", "icat")
    before = snapshot([volume])
    atime = volume.stat().st_atime_ns
    target = tmp_path / "out"
    result = run_bitwitness("export", volume, "/", "--to", target)
    assert result.exit_code == 1, result.stderr
    assert f"{len(REFUSED)} file(s) exported with a doubt" in result.stderr
    assert result.stdout.count("DOUBTED") == len(REFUSED)
    assert "NOT EXPORTED" not in result.stdout
    inodes = _inodes(volume)
    for name in DECODED:
        assert (target / name).read_bytes() == _icat(volume, inodes[name]), name
    for name in LZFSE:
        assert (target / name).read_bytes() == _pyfshfs(volume, f"/{name}"), name
    manifest = json.loads((target / "manifest.json").read_text())
    failed = {Path(f["source"]).name for f in manifest["failed"]}
    assert failed == set(REFUSED)
    assert snapshot([volume]) == before
    assert volume.stat().st_atime_ns == atime


def test_mount_serves_the_decoded_bytes_and_refuses_the_rest(volume: Path,
                                                            tmp_path: Path) -> None:
    """``mount --files``: each decoded file reads as icat has it, through FUSE's own reads of
    128 KiB; one not decoded is listed with its size, fails to open (EIO) and says why."""
    from test_mount import Foreground, require_fuse

    from bitwitness.report.mount.tree import CONTENT_XATTR

    require_fuse()
    require_tool("fls", "icat")
    before = snapshot([volume])
    inodes = _inodes(volume)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    fg = Foreground(volume, mnt, "--files")
    try:
        files = mnt / "files" / "0"
        for name in DECODED:
            assert (files / name).read_bytes() == _icat(volume, inodes[name]), name
        assert (files / "f12.txt").read_bytes() == _pyfshfs(volume, "/f12.txt")
        refused = files / "b13.txt"
        assert refused.stat().st_size == 4
        with pytest.raises(OSError, match="Input/output error"):
            refused.read_bytes()
        assert b"LZBITMAP" in os.getxattr(refused, CONTENT_XATTR)
    finally:
        code, _, err = fg.stop()
    assert code == 0, err
    assert snapshot([volume]) == before


def test_a_build_without_the_fixes_refuses_hfs(volume: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tsk, "has_indirect_fix", lambda: False)
    result = run_bitwitness("ls", volume)
    assert result.exit_code == 2
    assert "zlib" in result.stderr
    assert "build-pytsk3.sh" in result.stderr


# --- the decoder on its own -------------------------------------------------------------------

def test_lzvn_matches_of_every_kind() -> None:
    """Literals, then a small-distance match overlapping itself, a medium-distance one, a
    previous-distance one, a match-only opcode and a large-distance one (icat and pyfshfs
    decode the same stream in test_cat_gives_what_icat_and_pyfshfs_give[v7-matches.txt])."""
    expected = bytearray(b"abc")
    for distance, match, literal in ((3, 9, b""), (4, 4, b"X"), (4, 3, b"Y"), (4, 2, b""),
                                     (10, 3, b"")):
        expected += literal
        for _ in range(match):
            expected.append(expected[-distance])
    assert decmpfs.lzvn_decode(MATCHES, len(expected)) == bytes(expected)


@pytest.mark.parametrize("stream", [
    bytes([0x30, 3]) + b"\x06" + bytes(7),  # a match before any byte
    bytes([0xE1]) + b"a" + bytes([0x07, 0xFF, 0xFF]) + b"\x06" + bytes(7),  # 65535 back
    bytes([0x1E]) + b"\x06" + bytes(7),  # undefined opcode
    bytes([0xE5]) + b"ab",  # cut short
    bytes([0xE2]) + b"ab",  # no end of stream
    bytes([0xF0, 255]),  # match only, nothing before
])
def test_lzvn_damage_is_one_error(stream: bytes) -> None:
    with pytest.raises(FileSystemError):
        decmpfs.lzvn_decode(stream, 100)


def test_lzfse_blocks_stored_after_0x06_are_read() -> None:
    """A unit LZFSE does not shrink is stored after 0x06, as for LZVN (hfsfuse reads it so;
    pyfshfs does not, so this is checked here on its own): a fork of a stored unit, a
    compressed one and a short last one."""
    data = NOISE[:65536] + TEXT[:65536] + TEXT[:1000]
    blocks = lzfse_blocks(data)
    assert blocks[0][0] == 0x06
    assert blocks[1][:4] == b"bvx2"
    fork = offset_fork(blocks)
    record = decmpfs.parse(decmpfs_header(12, len(data)))
    read = b"".join(decmpfs.content(record, len(fork), lambda o, s: fork[o:o + s], 1 << 30))
    assert read == data


def test_a_zlib_bomb_inflates_no_further_than_its_block() -> None:
    bomb = zlib.compress(bytes(50_000_000), 9)
    record = decmpfs.parse(decmpfs_header(3, 1000) + bomb)
    with pytest.raises(FileSystemError, match="inflates to more than"):
        list(decmpfs.content(record, 0, lambda o, s: b"", 1 << 30))


# --- hostile records --------------------------------------------------------------------------

def _hostile(tmp_path: Path, node: Node) -> Path:
    path = tmp_path / "hostile.img"
    path.write_bytes(hfsplus_volume([Node("plain.txt", data=b"fine\n"), node]))
    return path


HOSTILE = {
    "inline size 2^63": compressed("h.txt", 0, decmpfs_header(3, 1 << 63)
                                   + zlib.compress(b"x" * 100)),
    "inline size 8 GiB": compressed("h.txt", 0, decmpfs_header(7, 8 << 30)
                                    + lzvn_literals(b"x" * 100)),
    "stored shorter than declared": compressed("h.txt", 0, decmpfs_header(3, 1 << 20)
                                               + b"\xff" + b"x" * 10),
    "fork size 2^63": compressed("h.txt", 0, decmpfs_header(4, 1 << 63),
                                 zlib_fork(zlib_blocks(b"y" * 1000))),
    "table past the fork": compressed("h.txt", 0, decmpfs_header(8, 1 << 40),
                                      struct.pack("<I", 0xFFFFFFF0) + bytes(100)),
    "block past the fork": compressed("h.txt", 0, decmpfs_header(4, 1000), zlib_fork(
        [zlib.compress(b"z" * 1000)]).replace(
            struct.pack("<II", 12, len(zlib.compress(b"z" * 1000))),
            struct.pack("<II", 1 << 30, 5000))),
    "empty table": compressed("h.txt", 0, decmpfs_header(4, 5000), zlib_fork([])),
    "zlib bomb in a block": compressed("h.txt", 0, decmpfs_header(4, 65536),
                                       zlib_fork([zlib.compress(bytes(60_000_000), 9)[:65000]])),
    "short block": compressed("h.txt", 0, decmpfs_header(4, 3 * 65536),
                              zlib_fork(zlib_blocks(b"w" * 65536 + b"s" * 100 + b"w" * 65536))),
    "LZVN match before the start": compressed("h.txt", 0, decmpfs_header(8, 65536),
                                              offset_fork([bytes([0x07, 0xFF, 0xFF]) + bytes(8)])),
    "LZFSE empty block": compressed("h.txt", 0, decmpfs_header(11, 1000) + b"bvx2" + bytes(40)),
    "LZFSE declaring 4 GiB": compressed("h.txt", 0, decmpfs_header(11, 0xFFFFFFFF)
                                        + b"bvxn" + struct.pack("<II", 0xFFFFFFFF, 8)
                                        + b"\xe1a" + b"\x06" + bytes(5) + b"bvx$"),
    "LZFSE block declaring more than its unit": compressed(
        "h.txt", 0, decmpfs_header(12, 65536),
        offset_fork([b"bvxn" + struct.pack("<II", 1 << 30, 8) + b"\xe1a\x06" + bytes(5)
                     + b"bvx$"])),
    "LZFSE with a back-reference before the start": compressed(
        "h.txt", 0, decmpfs_header(11, 100),
        b"bvxn" + struct.pack("<II", 100, 11) + bytes([0x07, 0xFF, 0x0F]) + b"\x06" + bytes(7)
        + b"bvx$"),
    "record shorter than its header": compressed("h.txt", 0, b"fpmc\x03\0\0\0"),
    "no magic": compressed("h.txt", 0, b"XXXX" + decmpfs_header(3, 10)[4:] + b"\xffabc"),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_decmpfs_fails_closed(tmp_path: Path, case: str) -> None:
    image = _hostile(tmp_path, HOSTILE[case])
    before = snapshot([image])
    fails_closed("ls", "-r", image)
    code, _ = fails_closed("cat", image, "/h.txt")
    assert code in (1, 2)
    fails_closed("stat", image, "/h.txt")
    fails_closed("export", image, "/", "--to", tmp_path / "out")
    assert run_bitwitness("cat", image, "/plain.txt").stdout == "fine\n"
    assert snapshot([image]) == before
