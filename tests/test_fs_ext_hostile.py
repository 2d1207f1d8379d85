"""A bigalloc ext4 (read through libfsext, not TSK) cut short or with its structures
overwritten: every browsing command ends in a listing, the file's true bytes, or one line
with exit 1 or 2; never an internal error, never invented bytes, under 300 MiB and 30 s.

The file system is made here by ``mkfs.ext4`` and filled through a loop mount; where its
structures lie comes from ``dumpe2fs`` (group descriptors, inode table) and ``debugfs``
(the root folder's and a folder's blocks, a file's extents), not from our parser. Also: an
ext2/ext4 superblock declaring 2^31 inodes (TSK's path, our orphan search).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import require_root, require_tool, snapshot
from test_hostile_images import MAX_RSS, MAX_SECONDS

BLOCK = 1024
#: Runs a command, then prints its exit code, stderr, the SHA-256 of its stdout (bytes: cat
#: prints a file's) and the peak RSS of the child, as one JSON line.
_MEASURE = (
    "import hashlib, json, resource, subprocess, sys\n"
    "p = subprocess.run(sys.argv[1:], capture_output=True)\n"
    "print(json.dumps([p.returncode, p.stderr.decode('utf-8', 'replace'),\n"
    "                  hashlib.sha256(p.stdout).hexdigest(),\n"
    "                  resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024]))\n"
)
BIG = random.Random(7).randbytes(3_000_000)


def _measured(*args: str | Path) -> tuple[int, str, str, int]:
    """``bitwitness ARGS`` in a fresh process: exit code, stderr, SHA-256 of stdout, peak RSS."""
    out = subprocess.run([sys.executable, "-c", _MEASURE, sys.executable, "-m", "bitwitness",
                          *map(os.fspath, args)], capture_output=True, text=True, timeout=120,
                         check=True)
    code, stderr, digest, rss = json.loads(out.stdout)
    return code, stderr, digest, rss


def fails_closed(*args: str | Path) -> tuple[int, str]:
    """``bitwitness ARGS`` on hostile input, held to how it must end: within
    :data:`MAX_SECONDS` and :data:`MAX_RSS`, exit 0, 1 or 2, no traceback or internal error,
    one error line on stderr when it fails (after warnings naming what it could not read).
    Its exit code and the SHA-256 of its stdout."""
    started = time.monotonic()
    code, stderr, digest, rss = _measured(*args)
    assert time.monotonic() - started < MAX_SECONDS, args
    assert code in (0, 1, 2), (args, stderr)
    assert "Traceback" not in stderr
    assert "internal error" not in stderr
    assert rss < MAX_RSS, f"{args[0]} peaked at {rss >> 20} MiB"
    if code:  # one error line, after the warnings naming what could not be read
        lines = stderr.strip().splitlines()
        assert lines[-1].startswith("bitwitness: error: "), stderr
        assert all(line.startswith("warning: ") for line in lines[:-1]), stderr
    return code, digest


def _run(*args: str | Path) -> str:
    return subprocess.run([os.fspath(a) for a in args], capture_output=True, text=True,
                          check=True).stdout


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, dict[str, int]]:
    """The image's bytes and where its structures lie (in blocks)."""
    require_root()
    require_tool("mkfs.ext4", "dumpe2fs", "debugfs")
    base = tmp_path_factory.mktemp("ext-hostile")
    image = base / "bigalloc.img"
    _run("truncate", "-s", "16M", image)
    _run("mkfs.ext4", "-q", "-F", "-b", str(BLOCK), "-O", "bigalloc", "-C", "16384", image)
    where = base / "mnt"
    where.mkdir()
    _run("mount", "-o", "loop", image, where)
    try:
        (where / "big.bin").write_bytes(BIG)
        (where / "d").mkdir()
        for index in range(50):
            (where / "d" / f"f{index}").write_bytes(b"x" * index)
    finally:
        _run("umount", where)
    layout = _run("dumpe2fs", image)
    table = re.search(r"Inode table at (\d+)-(\d+)", layout)
    groups = re.search(r"Group descriptors at (\d+)-", layout)
    assert table, layout
    assert groups, layout
    places = {"table": int(table.group(1)), "table_end": int(table.group(2)),
              "descriptors": int(groups.group(1)),
              "root": _first_block(image, "/"), "folder": _first_block(image, "/d")}
    return image.read_bytes(), places


def _first_block(image: Path, path: str) -> int:
    found = re.search(r"EXTENTS:\n\(0\):(\d+)", _run("debugfs", "-R", f"stat {path}", image))
    assert found, path
    return int(found.group(1))


def _cut(data: bytes, at: dict[str, int]) -> bytes:
    return data[: len(data) // 8]  # the files' data and most clusters are gone


def _descriptors(data: bytes, at: dict[str, int]) -> bytes:
    out = bytearray(data)
    out[at["descriptors"] * BLOCK:(at["descriptors"] + 1) * BLOCK] = b"\xff" * BLOCK
    return bytes(out)


def _inode_table(data: bytes, at: dict[str, int]) -> bytes:
    out = bytearray(data)
    start, end = at["table"] * BLOCK, (at["table_end"] + 1) * BLOCK
    out[start:end] = random.Random(1).randbytes(end - start)
    return bytes(out)


def _counts(data: bytes, at: dict[str, int]) -> bytes:
    out = bytearray(data)  # s_inodes_count, s_blocks_count, s_inodes_per_group all-ones
    for offset in (0, 4, 40):
        struct.pack_into("<I", out, 1024 + offset, 0xFFFFFFFF)
    return bytes(out)


def _folder_block(data: bytes, at: dict[str, int]) -> bytes:
    out = bytearray(data)
    out[at["folder"] * BLOCK:(at["folder"] + 1) * BLOCK] = random.Random(2).randbytes(BLOCK)
    return bytes(out)


def _root_extents(data: bytes, at: dict[str, int]) -> bytes:
    out = bytearray(data)  # inode 2 (256-byte inodes): an extent header of depth 65535
    struct.pack_into("<HHHH", out, at["table"] * BLOCK + 256 + 40, 0xF30A, 0xFFFF, 0xFFFF,
                     0xFFFF)
    return bytes(out)


def _cluster_size(data: bytes, at: dict[str, int]) -> bytes:
    out = bytearray(data)  # s_log_cluster_size 40: a cluster of 2^50 bytes
    struct.pack_into("<I", out, 1024 + 28, 40)
    return bytes(out)


CASES: dict[str, Callable[[bytes, dict[str, int]], bytes]] = {
    "cut": _cut, "descriptors": _descriptors, "inode-table": _inode_table, "counts": _counts,
    "folder-block": _folder_block, "root-extents": _root_extents, "cluster-size": _cluster_size}


@pytest.mark.parametrize("case", sorted(CASES))
def test_damaged_bigalloc_fails_closed(case: str, pristine: tuple[bytes, dict[str, int]],
                                       tmp_path: Path) -> None:
    data, places = pristine
    image = tmp_path / f"{case}.img"
    image.write_bytes(CASES[case](data, places))
    before = snapshot([image])
    for args in (("ls", "-r", "--all", image), ("stat", image, "/d"), ("timeline", image),
                 ("cat", image, "/big.bin"), ("cat", image, "/d/f10"),
                 ("export", image, "/d", "--to", tmp_path / "out", "--all")):
        code, digest = fails_closed(*args)
        if args[0] == "cat" and code == 0:  # only ever the file's own bytes
            want = BIG if args[2] == "/big.bin" else b"x" * 10
            assert digest == hashlib.sha256(want).hexdigest(), args
    assert snapshot([image]) == before


@pytest.mark.parametrize("kind", ["ext2", "ext4"])
def test_a_superblock_declaring_2_to_the_31_inodes_lists_in_bounded_time(
        tmp_path: Path, kind: str) -> None:
    """A superblock whose inode count is 2^31 - 1 on an 8 MiB volume: libtsk's $OrphanFiles
    fails to open and our orphan search (one inode lookup per number) spun for hours; it now
    stops at the inodes whose table slots can lie in the volume, none being lost. The listing
    is fls's, within the bounds, for ls -r, timeline and export."""
    require_tool(f"mkfs.{kind}", "fls")
    tree = tmp_path / "tree"
    (tree / "dir").mkdir(parents=True)
    (tree / "dir" / "kept.txt").write_bytes(b"kept\n" * 100)
    image = tmp_path / f"{kind}.raw"
    with image.open("wb") as fh:
        fh.truncate(8 << 20)
    subprocess.run([f"mkfs.{kind}", "-q", "-F", "-d", str(tree), str(image)], check=True,
                   capture_output=True)
    data = bytearray(image.read_bytes())
    struct.pack_into("<I", data, 1024, 0x7FFF_FFFF)  # s_inodes_count
    image.write_bytes(bytes(data))
    fls = subprocess.run(["fls", "-r", "-p", str(image)], capture_output=True, text=True,
                         check=False).stdout
    assert fails_closed("ls", "-r", image)[0] == 0
    listed = subprocess.run([sys.executable, "-m", "bitwitness", "ls", "-r", str(image)],
                            capture_output=True, text=True, timeout=MAX_SECONDS, check=True)
    assert sorted(listed.stdout.splitlines()) == sorted(fls.splitlines())
    assert fails_closed("timeline", image)[0] == 0
    assert fails_closed("export", "--all", image, "/", "--to", tmp_path / "out")[0] == 0
    assert (tmp_path / "out" / "dir" / "kept.txt").read_bytes() == b"kept\n" * 100
