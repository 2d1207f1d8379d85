"""btrfs through our own reader (report/browse/btrfs.py), checked against the kernel's btrfs
driver and btrfs-progs, never against numbers written here.

The image is made by ``mkfs.btrfs`` and filled through a loop mount (``noatime``, so that
reading the files for their hashes changes nothing): inline, large, sparse, preallocated,
zlib-, zstd- and LZO-compressed files, a symlink, deep folders, non-ASCII names, a subvolume
and a snapshot of it. What the kernel shows (names, types, sizes, modes, owners, times, bytes
by SHA-256) is recorded before unmounting, then compared with ``ls -r``/``stat``/``cat``.
Damaged copies (placed with ``dump-super``/``dump-tree``, not with our parser) must end in one
line with exit 1 or 2, in bounded time and memory.
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
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import cat_bytes, require_root, require_tool, run_bitwitness, snapshot
from test_fs_ext_hostile import _measured, fails_closed
from test_hostile_images import MAX_SECONDS

from bitwitness.images.crc32c import crc32c

SUPER = 0x10000
BIG = random.Random(11).randbytes(3_000_000)
_KINDS = {0o100000: "r", 0o040000: "d", 0o120000: "l"}


def _run(*args: str | Path) -> str:
    return subprocess.run([os.fspath(a) for a in args], capture_output=True, text=True,
                          check=True).stdout


def _fill(root: Path) -> None:
    (root / "small.txt").write_bytes(b"hello\n")  # inline
    (root / "big.bin").write_bytes(BIG)
    (root / "text.txt").write_bytes(b"compress me please " * 40_000)  # zstd (mount option)
    with (root / "sparse.bin").open("wb") as out:
        out.seek(20 << 20)
        out.write(b"the end")
    subprocess.run(["fallocate", "-l", "1M", root / "prealloc.bin"], check=True)
    (root / "zlib").mkdir()
    _run("btrfs", "property", "set", root / "zlib", "compression", "zlib")
    (root / "zlib" / "z.txt").write_bytes(b"zlib zlib zlib " * 30_000)
    (root / "lzo").mkdir()
    _run("btrfs", "property", "set", root / "lzo", "compression", "lzo")
    (root / "lzo" / "l.txt").write_bytes(b"lzo lzo lzo " * 30_000)
    words = random.Random(5)  # text that compresses some: long and short matches, literals
    (root / "lzo" / "words.txt").write_bytes(b" ".join(
        words.choice([b"alpha", b"beta", b"gamma", b"delta", b"epsilon", b"zeta"])
        + str(words.randrange(1000)).encode() for _ in range(120_000)))
    (root / "lzo" / "tiny.txt").write_bytes(b"inline lzo " * 30)  # an inline compressed extent
    (root / "link").symlink_to("small.txt")
    deep = root / "a" / "b" / "c" / "d" / "e"
    deep.mkdir(parents=True)
    (deep / "leaf.txt").write_bytes(b"deep\n")
    (root / "a" / "café ünïcode ✓.txt").write_bytes(b"names\n")
    many = root / "many"
    many.mkdir()
    for index in range(600):  # several leaves: the FS tree gets a level-1 node
        (many / f"file-{index:04d}").write_bytes(b"m" * (index % 7))
    (root / "small.txt").chmod(0o640)
    os.chown(root / "a", 1234, 5678)
    _run("btrfs", "subvolume", "create", root / "sub")
    (root / "sub" / "in-sub.txt").write_bytes(b"inside the subvolume\n")
    _run("btrfs", "subvolume", "snapshot", root / "sub", root / "snap")
    (root / "sub" / "later.txt").write_bytes(b"after the snapshot\n")


def _facts(root: Path) -> dict[str, dict[str, Any]]:
    """What the kernel shows of every entry below ``root``."""
    found: dict[str, dict[str, Any]] = {}
    for folder, dirs, files in os.walk(root):
        for name in sorted(dirs + files):
            path = Path(folder) / name
            st = path.lstat()
            rel = "/" + path.relative_to(root).as_posix()
            kind = _KINDS.get(st.st_mode & 0o170000, "?")
            fact: dict[str, Any] = {"type": kind, "size": st.st_size,
                                    "mode": st.st_mode & 0o7777, "uid": st.st_uid,
                                    "gid": st.st_gid, "ino": st.st_ino,
                                    "links": st.st_nlink,
                                    "times": [st.st_mtime_ns // 1000, st.st_atime_ns // 1000,
                                              st.st_ctime_ns // 1000],
                                    "born": int(_run("stat", "-c", "%W", path))}
            if kind == "r":
                fact["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
            if kind == "l":
                fact["link"] = str(path.readlink())
            found[rel] = fact
    return found


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, dict[str, Any]]]:
    require_root()
    require_tool("mkfs.btrfs", "btrfs")
    base = tmp_path_factory.mktemp("btrfs")
    image = base / "btrfs.img"
    _run("truncate", "-s", "300M", image)
    _run("mkfs.btrfs", "-q", image)
    where = base / "mnt"
    where.mkdir()
    _run("mount", "-o", "loop,noatime,compress=zstd", image, where)
    try:
        _fill(where)
        _run("sync")
        facts = _facts(where)
    finally:
        _run("umount", where)
    return image, facts


def _micros(text: str | None) -> int | None:
    if text is None:
        return None
    from datetime import datetime

    moment = datetime.fromisoformat(text)
    return (moment.timestamp().__floor__() * 1_000_000) + moment.microsecond


def test_listing_matches_the_kernel(made: tuple[Path, dict[str, dict[str, Any]]]) -> None:
    image, facts = made
    result = run_bitwitness("ls", "-r", "--json", image)
    assert result.exit_code == 0, result.stderr
    listed = {e["path"]: e for e in json.loads(result.stdout)["entries"]}
    assert set(listed) == set(facts)
    for path, fact in facts.items():
        entry = listed[path]
        assert entry["type"] == f"{fact['type']}/{fact['type']}", path
        assert entry["size"] == fact["size"], path
        assert entry["meta_address"] & ((1 << 48) - 1) == fact["ino"], path
        assert [_micros(entry[k]) for k in ("modified", "accessed", "changed")] == \
            fact["times"], path
        born = _micros(entry["born"])
        assert born is not None, path
        assert born // 1_000_000 == fact["born"], path
    order = [p for p in listed if p.startswith("/many/")]
    assert order == sorted(order)  # written in that order: DIR_INDEX order


def test_stat_matches_the_kernel(made: tuple[Path, dict[str, dict[str, Any]]]) -> None:
    image, facts = made
    for path in ("/small.txt", "/a", "/link", "/sub", "/snap/in-sub.txt", "/big.bin"):
        result = run_bitwitness("stat", "--json", image, path)
        assert result.exit_code == 0, result.stderr
        found = json.loads(result.stdout)
        fact = facts[path]
        assert (found["uid"], found["gid"], found["links"]) == (fact["uid"], fact["gid"],
                                                                 fact["links"]), path
        perms = "".join(c if fact["mode"] & (1 << (8 - i)) else "-"
                        for i, c in enumerate("rwxrwxrwx"))
        assert found["mode"] == perms, path
        if "link" in fact:
            assert found["link"] == fact["link"]
    big = json.loads(run_bitwitness("stat", "--json", image, "/big.bin").stdout)
    runs = big["attributes"][0]["runs"]
    assert sum(blocks for _first, blocks in runs) * 4096 >= len(BIG)
    assert all(first is not None for first, _blocks in runs)


def test_cat_gives_the_kernels_bytes(made: tuple[Path, dict[str, dict[str, Any]]]) -> None:
    image, facts = made
    for path, fact in facts.items():
        if fact["type"] != "r" or (path.startswith("/many/") and not path.endswith("7")):
            continue
        assert hashlib.sha256(cat_bytes(image, path)).hexdigest() == fact["sha256"], path


def test_compression_is_where_the_kernel_put_it(
        made: tuple[Path, dict[str, dict[str, Any]]]) -> None:
    """The files meant to be compressed are (dump-tree says so): the checks above read them."""
    image, _facts = made
    dump = _run("btrfs", "inspect-internal", "dump-tree", "-t", "fs", image)
    assert "compression 1" in dump
    assert "compression 2" in dump
    assert "compression 3" in dump
    assert "inline extent" in dump


def test_reading_changes_nothing(made: tuple[Path, dict[str, dict[str, Any]]],
                                 tmp_path: Path) -> None:
    image, _facts = made
    before = snapshot([image])
    for args in (("ls", "-r", "-l", image), ("stat", image, "/big.bin"),
                 ("cat", image, "/text.txt"), ("timeline", image),
                 ("export", image, "/a", "--to", tmp_path / "out")):
        assert run_bitwitness(*args).exit_code == 0, args
    assert snapshot([image]) == before


# --- hostile copies ----------------------------------------------------------------------------


def _chunks(image: Path) -> list[tuple[int, int, int]]:
    """(logical, length, physical of stripe 0) of every chunk, as dump-tree prints them."""
    dump = _run("btrfs", "inspect-internal", "dump-tree", "-t", "chunk", image)
    found = []
    for match in re.finditer(r"CHUNK_ITEM (\d+)\) itemoff \d+ itemsize \d+\s+"
                             r"length (\d+).*?stripe 0 devid \d+ offset (\d+)", dump, re.S):
        found.append((int(match.group(1)), int(match.group(2)), int(match.group(3))))
    assert found, dump
    return found


def _physical(image: Path, logical: int) -> int:
    for start, length, physical in _chunks(image):
        if start <= logical < start + length:
            return physical + logical - start
    raise AssertionError(logical)


def _reseal_node(data: bytearray, at: int, nodesize: int = 16384) -> None:
    struct.pack_into("<I", data, at, crc32c(bytes(data[at + 32:at + nodesize])))
    data[at + 4:at + 32] = bytes(28)


def _reseal_super(data: bytearray) -> None:
    _reseal_node(data, SUPER, 4096)


def _bad_magic(data: bytearray, image: Path) -> None:
    data[SUPER + 0x40:SUPER + 0x48] = b"_BHRfS_X"


def _bad_csum(data: bytearray, image: Path) -> None:
    data[SUPER + 0x12B] ^= 0xFF  # the label, checksum left as it was


def _two_devices(data: bytearray, image: Path) -> None:
    struct.pack_into("<Q", data, SUPER + 0x88, 2)
    _reseal_super(data)


def _chunk_outside(data: bytearray, image: Path) -> None:
    struct.pack_into("<Q", data, SUPER + 0x32B + 17 + 56, 1 << 50)  # sys chunk's stripe 0
    _reseal_super(data)


def _fs_root(image: Path) -> tuple[int, int]:
    """(logical, physical) of the FS tree's root node, which is an internal node here."""
    dump = _run("btrfs", "inspect-internal", "dump-tree", "-t", "fs", image)
    match = re.search(r"^node (\d+) level (\d+)", dump, re.M)
    assert match, dump[:500]
    assert int(match.group(2)) >= 1, dump[:500]
    logical = int(match.group(1))
    return logical, _physical(image, logical)


def _self_loop(data: bytearray, image: Path) -> None:
    logical, at = _fs_root(image)
    struct.pack_into("<Q", data, at + 0x65 + 17, logical)  # first child: the node itself
    _reseal_node(data, at)


def _huge_inline(data: bytearray, image: Path) -> None:
    dump = _run("btrfs", "inspect-internal", "dump-tree", "-t", "fs", image)
    key = None
    for block in re.split(r"\n(?=leaf \d+)", dump):
        if "name: small.txt" in block:
            key = int(block.split()[1])
            break
    assert key is not None
    at = _physical(image, key)
    leaf_bytes = bytes(data[at:at + 16384])
    count = int.from_bytes(leaf_bytes[0x60:0x64], "little")
    for n in range(count):
        _objectid, kind, _offset, start, _size = struct.unpack_from("<QBQII", leaf_bytes,
                                                                  0x65 + 25 * n)
        if kind == 108 and leaf_bytes[0x65 + start + 20] == 0:  # an inline extent
            struct.pack_into("<Q", data, at + 0x65 + start + 8, 1 << 40)  # ram_bytes
    _reseal_node(data, at)


def _cut(data: bytearray, image: Path) -> None:
    del data[len(data) // 8:]


CASES: dict[str, Callable[[bytearray, Path], None]] = {
    "bad-magic": _bad_magic, "bad-csum": _bad_csum, "two-devices": _two_devices,
    "chunk-outside": _chunk_outside, "self-loop": _self_loop, "huge-inline": _huge_inline,
    "cut": _cut}


@pytest.mark.parametrize("case", sorted(CASES))
def test_damaged_btrfs_fails_closed(case: str, made: tuple[Path, dict[str, dict[str, Any]]],
                                    tmp_path: Path) -> None:
    pristine, _facts = made
    data = bytearray(pristine.read_bytes())
    CASES[case](data, pristine)
    image = tmp_path / f"{case}.img"
    image.write_bytes(bytes(data))
    before = snapshot([image])
    for args in (("ls", "-r", image), ("stat", image, "/small.txt"), ("timeline", image),
                 ("cat", image, "/small.txt"), ("cat", image, "/big.bin"),
                 ("export", image, "/a", "--to", tmp_path / "out")):
        code, digest = fails_closed(*args)
        if args[0] == "cat" and code == 0:
            want = BIG if args[2] == "/big.bin" else b"hello\n"
            assert digest == hashlib.sha256(want).hexdigest(), (case, args)
    assert snapshot([image]) == before
    if case in ("bad-magic", "bad-csum", "two-devices", "chunk-outside", "self-loop"):
        code, stderr, _digest, _rss = _measured("ls", "-r", image)
        assert code in (1, 2), (case, stderr)
    if case == "two-devices":
        assert "2 devices" in stderr


def test_mount_files_gives_the_kernels_bytes(made: tuple[Path, dict[str, dict[str, Any]]],
                                            tmp_path: Path) -> None:
    """``mount --files`` serves the btrfs through the same reader: the files have the
    kernel's bytes, subvolumes and snapshot included."""
    from test_mount import Foreground, require_fuse

    require_fuse()
    image, facts = made
    before = snapshot([image])
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    fg = Foreground(image, mnt, "--files")
    try:
        live = mnt / "files" / "0"
        for path in ("/big.bin", "/text.txt", "/zlib/z.txt", "/lzo/words.txt", "/sparse.bin",
                     "/sub/later.txt",
                     "/snap/in-sub.txt", "/a/café ünïcode ✓.txt"):
            data = (live / path.lstrip("/")).read_bytes()
            assert hashlib.sha256(data).hexdigest() == facts[path]["sha256"], path
        assert not (live / "snap" / "later.txt").exists()
    finally:
        fg.stop()
    assert snapshot([image]) == before


def test_lzo_garbage_is_refused_quickly() -> None:
    """Our LZO decoder on random and truncated input: an LzoError, bounded output, fast."""
    from bitwitness.report.browse.btrfs_lzo import LzoError, btrfs_lzo, lzo1x

    rng = random.Random(3)
    started = time.monotonic()
    for _ in range(2000):
        blob = rng.randbytes(rng.randrange(1, 600))
        try:
            out = lzo1x(blob, 4096)
        except LzoError:
            continue
        assert len(out) <= 4096
    with pytest.raises(LzoError):
        btrfs_lzo(struct.pack("<II", 12, 1 << 30) + b"\0" * 4, 4096, 4096)
    assert time.monotonic() - started < MAX_SECONDS
