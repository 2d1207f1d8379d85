"""The L01/Lx01 builder (tests/builders/logical.py) against libewf: what it writes must be what
libewf reads as a logical evidence file holding exactly the builder's files.

Two libewf versions judge, independently of each other and of our code: pyewf (libewf-python
2026, L01 and Lx01) lists the file tree through its file entry API (names, sizes, the four times,
the stored MD5, contents); ``ewfinfo``/``ewfexport -f files`` (libewf-tools 20140813, L01 only:
their glob does not know ``.Lx01`` and they do not read an EWF2 file header) list the same tree and
export the same bytes. No tool on this machine writes either format, so a builder that libewf
rejects is the builder's bug: these tests keep it honest.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from builders.logical import Built, Item, build_l01, build_lx01
from conftest import require_tool

KIB = 1024


def sample_items() -> list[Item]:
    """A folder tree with an empty file, an empty folder, a file spanning several 32 KiB chunks
    (random then zeros, so compressed and stored chunks both occur), non-ASCII names."""
    return [
        Item("Evidence", None, 1_500_000_000, 1_500_000_001, 1_500_000_002, 1_500_000_003),
        Item("Evidence/docs", None, 1_500_000_010, 1_500_000_011, 1_500_000_012, 1_500_000_013),
        Item("Evidence/docs/readme.txt", b"hello world\n", 1_600_000_000, 1_600_000_100,
             1_600_000_200, 1_600_000_300),
        Item("Evidence/docs/empty.bin", b"", 1_610_000_000, 1_610_000_100, 1_610_000_200,
             1_610_000_300),
        Item("Evidence/big.bin", os.urandom(100 * KIB) + bytes(60 * KIB) + b"tail", 1_620_000_000,
             1_620_000_100, 1_620_000_200, 1_620_000_300),
        Item("Evidence/Zürich", None, 1_630_000_000, 1_630_000_100, 1_630_000_200,
             1_630_000_300),
        Item("Evidence/Zürich/naïve €ünïcode 文件.txt", "grüße\n".encode(), 1_640_000_000,
             1_640_000_100, 1_640_000_200, 1_640_000_300),
        Item("Evidence/emptydir", None, 1_650_000_000, 1_650_000_100, 1_650_000_200,
             1_650_000_300),
    ]


BUILDS = {
    "l01-encase6": lambda p, items: build_l01(p / "files.L01", items),
    "l01-encase7": lambda p, items: build_l01(p / "files.L01", items, encase7=True),
    "lx01": lambda p, items: build_lx01(p / "files.Lx01", items),
}


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def _when(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC).replace(tzinfo=None)


def _stored_md5(entry: Any) -> str | None:
    """The MD5 the ltree stores for an entry (``ha``); pyewf raises where there is none."""
    try:
        return str(entry.get_hash_value_md5())
    except OSError:
        return None


def pyewf_tree(path: Path) -> dict[str, dict[str, Any]]:
    """Every entry below libewf's root as path -> what pyewf says of it."""
    import pyewf

    handle = pyewf.handle()
    handle.open([str(path)])
    out: dict[str, dict[str, Any]] = {}

    def visit(entry: Any, prefix: str) -> None:
        for i in range(entry.get_number_of_sub_file_entries()):
            child = entry.get_sub_file_entry(i)
            name = child.get_name()
            where = f"{prefix}/{name}" if prefix else name
            size = child.get_size()
            out[where] = {
                "size": size, "children": child.get_number_of_sub_file_entries(),
                "data": bytes(child.read_buffer(size)) if size else b"",
                "md5": _stored_md5(child),
                "times": (child.get_creation_time(), child.get_access_time(),
                          child.get_modification_time(), child.get_entry_modification_time()),
            }
            visit(child, where)

    try:
        visit(handle.get_root_file_entry(), "")
        out[""] = {"hashes": dict(handle.get_hash_values()), "media": handle.get_media_size()}
    finally:
        handle.close()
    return out


@pytest.mark.parametrize("kind", sorted(BUILDS))
def test_pyewf_lists_the_builders_tree(tmp_path: Path, kind: str) -> None:
    items = sample_items()
    built: Built = BUILDS[kind](tmp_path, items)
    tree = pyewf_tree(built.path)
    whole = tree.pop("")
    assert sorted(tree) == sorted(item.path for item in items)
    for item in items:
        seen = tree[item.path]
        times = (_when(item.created), _when(item.accessed), _when(item.modified),
                 _when(item.changed))
        assert seen["times"] == times, item.path
        if item.data is None:
            assert seen["size"] == 0
            assert seen["md5"] is None
            continue
        assert seen["children"] == 0
        assert seen["size"] == len(item.data), item.path
        assert seen["data"] == item.data, item.path
        assert seen["md5"] == _md5(item.data)
    assert whole["media"] == len(built.media)
    assert whole["hashes"]["MD5"] == _md5(built.media)
    assert whole["hashes"]["SHA1"] == hashlib.sha1(built.media, usedforsecurity=False).hexdigest()
    assert len(built.media) > 4 * 32 * KIB  # the big file spans several chunks


@pytest.mark.parametrize("encase7", [False, True])
def test_ewfinfo_and_ewfexport_accept_the_l01(tmp_path: Path, encase7: bool) -> None:
    require_tool("ewfinfo", "ewfexport")
    items = sample_items()
    built = build_l01(tmp_path / "files.L01", items, encase7=encase7)
    info = subprocess.run(["ewfinfo", str(built.path)], capture_output=True, text=True,
                          check=True).stdout
    assert "Media type:\t\tsingle files" in info
    assert f"({len(built.media)} bytes)" in info
    assert f"MD5:\t\t\t{_md5(built.media)}" in info
    listed = info.split("Single files\n", 1)[1].splitlines()
    expected = []
    for item in items:
        depth = item.path.count("/") + 1
        expected.append("\t" + " " * depth + item.path.rsplit("/", 1)[-1])
    assert [line for line in listed if line.strip()] == expected
    target = tmp_path / "exported"
    subprocess.run(["ewfexport", "-q", "-u", "-f", "files", "-t", str(target), str(built.path)],
                   capture_output=True, check=True, cwd=tmp_path)
    for item in items:
        there = target / item.path
        if item.data is None:
            assert there.is_dir(), item.path
        else:
            assert there.read_bytes() == item.data, item.path
