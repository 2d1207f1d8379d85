"""A deleted NTFS file whose clusters were allocated again is not passed off as recovered.

Its MFT record keeps the runs and ``icat`` reads them, but the clusters now hold another file's
data. The volume is filled after the deletion so that the freed clusters must be reused; which
of them are allocated again is asked of The Sleuth Kit's ``blkstat``, cluster by cluster (the
independent reader), and ``cat``/``stat``/``export`` must name that count.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
from contextlib import suppress
from pathlib import Path

import fsimages
import pytest
from conftest import require_tool
from test_browse_parity import _bitwitness


def _fill(folder: Path) -> None:
    """Grow ``filler.bin`` until the volume is full (appending allocates no MFT record)."""
    chunk = bytes(range(256)) * 256
    with (folder / "filler.bin").open("ab") as fh:
        try:
            while True:
                fh.write(chunk)
                fh.flush()
        except OSError:
            pass  # ENOSPC: every free cluster is taken
        with suppress(OSError):
            os.fsync(fh.fileno())


@pytest.fixture(scope="module")
def ntfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_tool("mkntfs", "ntfs-3g", "blkstat", "istat", "fls")
    image = tmp_path_factory.mktemp("overwritten") / "ntfs.img"
    subprocess.run(["truncate", "-s", "8M", str(image)], check=True)
    subprocess.run(["mkntfs", "-q", "-F", "-Q", "-c", "4096", str(image)], check=True,
                   capture_output=True)
    with tempfile.TemporaryDirectory() as tmp:
        mount = Path(tmp)
        try:
            fsimages._fuse_mount(["ntfs-3g", os.fspath(image), tmp], mount)
        except fsimages.Unavailable as exc:
            pytest.skip(f"ntfs-3g cannot mount here: {exc}")
        try:
            (mount / "filler.bin").write_bytes(b"f" * 4096)
            (mount / "kept.bin").write_bytes(bytes(range(256)) * 256)
            (mount / "victim.bin").write_bytes(bytes(range(255, -1, -1)) * 256)
            (mount / "untouched.bin").write_bytes(b"u" * 3000)  # resident: no clusters
            os.sync()
            (mount / "victim.bin").unlink()
            os.sync()
            _fill(mount)
        finally:
            fsimages._umount(mount)
    return image


def _inode(image: Path, name: str) -> str:
    listing = subprocess.run(["fls", "-d", str(image)], capture_output=True, text=True,
                             check=True).stdout
    found = re.search(rf"([0-9-]+):\s+{re.escape(name)}$", listing, re.MULTILINE)
    assert found is not None, listing
    return found.group(1)


def _reused_clusters(image: Path, inode: str) -> tuple[int, int]:
    """(allocated again, all) of the clusters istat lists for the deleted file's $DATA."""
    stat = subprocess.run(["istat", str(image), inode], capture_output=True, text=True,
                          check=True).stdout
    clusters = [int(c) for c in re.findall(r"\d+", stat.split("Non-Resident", 1)[1]
                                           .split("\n", 1)[1])]
    taken = 0
    for cluster in clusters:
        shown = subprocess.run(["blkstat", str(image), str(cluster)], capture_output=True,
                               text=True, check=True).stdout
        taken += "Not Allocated" not in shown
    return taken, len(clusters)


def test_reused_clusters_are_named(ntfs: Path, tmp_path: Path) -> None:
    inode = _inode(ntfs, "victim.bin")
    taken, total = _reused_clusters(ntfs, inode)
    assert total == 16
    assert taken > 0  # the volume was filled after the deletion
    said = f"{taken} of the {total} cluster(s) its runs name are allocated again"

    cat = _bitwitness("cat", ntfs, "--inode", inode)
    icat = subprocess.run(["icat", str(ntfs), inode], capture_output=True, check=True).stdout
    assert cat.stdout == icat  # the bytes are still given, as icat gives them
    assert cat.returncode == 1
    assert said in cat.stderr.decode()

    stat = json.loads(_bitwitness("stat", ntfs, "--inode", inode, "--json").stdout)
    assert [d for d in stat["doubts"] if said in d]

    out = tmp_path / "out"
    exported = _bitwitness("export", ntfs, "/", "--all", "--to", out)
    assert exported.returncode == 1
    manifest = json.loads((out / "manifest.json").read_text())
    reasons = {f["source"]: f["reason"] for f in manifest["failed"]}
    assert said in reasons["/victim.bin"]
    assert reasons["/victim.bin"].startswith("exported, but ")
    assert not {"/kept.bin", "/untouched.bin", "/filler.bin"} & set(reasons)


def test_live_files_are_never_doubted(ntfs: Path) -> None:
    for name in ("kept.bin", "untouched.bin"):
        done = _bitwitness("cat", ntfs, f"/{name}")
        assert done.returncode == 0, done.stderr
        assert json.loads(_bitwitness("stat", ntfs, f"/{name}", "--json").stdout)[
            "doubts"] == []


def test_mount_serves_the_bytes_and_says_the_doubt(ntfs: Path, tmp_path: Path) -> None:
    """The mount serves the deleted file (as ``icat`` reads it) and gives the doubt ``cat``
    names as the extended attribute ``user.bitwitness.doubts``; live files carry none."""
    from test_mount import Foreground, require_fuse

    from bitwitness.report.mount.tree import DOUBTS_XATTR

    require_fuse()
    require_tool("getfattr", "icat")
    inode = _inode(ntfs, "victim.bin")
    said = _bitwitness("cat", ntfs, "--inode", inode).stderr.decode().strip()
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    fg = Foreground(ntfs, mnt, "--files")
    try:
        victim = mnt / "files" / "0.deleted" / "victim.bin"
        icat = subprocess.run(["icat", str(ntfs), inode], capture_output=True, check=True)
        assert victim.read_bytes() == icat.stdout
        why = subprocess.run(["getfattr", "--only-values", "-n", DOUBTS_XATTR, str(victim)],
                             capture_output=True, text=True, check=False)
        assert why.returncode == 0, why.stderr
        assert why.stdout
        assert why.stdout in said
        for name in ("kept.bin", "untouched.bin"):
            none = subprocess.run(["getfattr", "-d", "-m", "-", str(mnt / "files" / "0" / name)],
                                  capture_output=True, text=True, check=True).stdout
            assert DOUBTS_XATTR not in none
    finally:
        code, _, err = fg.stop()
    assert code == 0, err


def test_bitmap_claiming_exabytes_is_read_no_further_than_the_media(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A hostile NTFS can state a $Bitmap of 2^60 bytes and a deleted run of 2^62 clusters:
    the allocation count then reads the bitmap a window at a time and no further than the
    media holds clusters (beyond, clusters count as allocated), never one read of the whole
    claim (pytsk3 would allocate it)."""
    from bitwitness.report.browse import filesystem as module
    from bitwitness.report.browse.filesystem import FileSystem

    monkeypatch.setattr(module, "_BITMAP_WINDOW", 1000)
    asked: list[int] = []

    class Bitmap:  # what pytsk3 gives for MFT entry 6: its size, and reads
        info = type("Info", (), {"meta": type("Meta", (), {"size": 1 << 60})()})()

        def read_random(self, offset: int, size: int) -> bytes:
            asked.append(size)
            return b"\x0f" * size

    class Image:  # the TskImage the error wrapper asks
        stream = type("Stream", (), {"size": 64 << 20})()

        def take_error(self) -> None:
            return None

    fs = FileSystem.__new__(FileSystem)
    fs._bitmap, fs.block_size, fs.image = Bitmap(), 512, Image()
    read = (64 << 20) // 512 // 8 + 1  # bytes of bitmap the media can need, and one more
    assert fs._allocated_clusters(0, 1 << 62) == read * 4 + (1 << 62) - read * 8
    assert max(asked) == 1000
    assert sum(asked) == read
