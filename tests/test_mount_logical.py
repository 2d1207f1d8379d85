"""``bitwitness mount --files`` of logical evidence files (L01, Lx01), through a real FUSE mount.

The sets are written by tests/builders/logical.py; what the mount shows is read back by tools
that know nothing of BitWitness (``find``, ``stat``, ``sha256sum``, ``md5sum``, ``mmls``) and
compared with the builder's own source files, with pyewf's reading of the set, with ``bitwitness
cat`` and, for L01 (libewf-tools 20140813 do not open EWF2), with ``ewfexport -f files`` and
``ewfexport -f raw``. Writes through every path are refused with EROFS, and the evidence's
bytes and times (on a strictatime file system) are compared before and after.
"""

from __future__ import annotations

import errno
import hashlib
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from builders.logical import Built, Item, build_l01, build_lx01
from conftest import REPO, require_tool, snapshot
from test_logical_builder import pyewf_tree, sample_items
from test_mount import Foreground, require_fuse, strict_atime_dir  # noqa: F401 - a fixture

from bitwitness.report.mount.tree import mount_name

pytestmark = pytest.mark.slow

BUILDS: dict[str, Callable[[Path, list[Item]], Built]] = {
    "l01": lambda folder, items: build_l01(folder / "files.L01", items),
    "l01-encase7": lambda folder, items: build_l01(folder / "files.L01", items, encase7=True),
    "lx01": lambda folder, items: build_lx01(folder / "files.Lx01", items),
}


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _expected(items: list[Item]) -> dict[str, Item]:
    """Each item at the path the mount shows it: ``files/0/`` and each name as the mount
    escapes names from the evidence."""
    return {"/".join(mount_name(part) for part in item.parts): item for item in items}


def _find(root: Path) -> dict[str, tuple[str, int]]:
    """``find``'s view: relative path -> (type letter, size)."""
    out = subprocess.run(["find", str(root), "-mindepth", "1", "-printf", r"%P\0%y\0%s\0"],
                         capture_output=True, check=True).stdout
    fields = out.split(b"\0")[:-1]
    return {os.fsdecode(fields[i]): (fields[i + 1].decode(), int(fields[i + 2]))
            for i in range(0, len(fields), 3)}


def _stat(path: Path) -> tuple[int, int, int, int, str]:
    """``stat``'s view: size, mtime, atime, ctime (whole seconds), type."""
    out = subprocess.run(["stat", "-c", "%s|%Y|%X|%Z|%F", str(path)], capture_output=True,
                         text=True, check=True).stdout.strip()
    size, mtime, atime, ctime, kind = out.split("|")
    return int(size), int(mtime), int(atime), int(ctime), kind


def _sha256sum(paths: list[Path]) -> dict[Path, str]:
    out = subprocess.run(["sha256sum", "-z", *map(str, paths)], capture_output=True,
                         check=True).stdout
    rows = [row.split(b"  ", 1) for row in out.split(b"\0") if row]
    return {Path(os.fsdecode(name)): digest.decode() for digest, name in rows}


def _cat(image: Path, path: str) -> bytes:
    """``bitwitness cat`` in its own process (binary output)."""
    done = subprocess.run([sys.executable, "-m", "bitwitness", "cat", str(image), path],
                          capture_output=True, check=True, cwd=REPO)
    return done.stdout


@pytest.mark.parametrize("kind", sorted(BUILDS))
def test_files_are_the_builders_files(tmp_path: Path, kind: str) -> None:
    require_fuse()
    require_tool("find", "stat", "sha256sum", "md5sum")
    items = sample_items()
    built = BUILDS[kind](tmp_path, items)
    before = snapshot([built.path])
    tree = pyewf_tree(built.path)
    whole = tree.pop("")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    fg = Foreground(built.path, mnt, "--files")
    try:
        # media.raw is libewf's media; there is no partitions/ and no files/0.deleted/
        assert sorted(p.name for p in mnt.iterdir()) == ["files", "media.raw"]
        assert sorted(p.name for p in (mnt / "files").iterdir()) == ["0"]
        root = mnt / "files" / "0"
        expected = _expected(items)
        found = _find(root)
        assert found == {path: ("f", len(item.data)) if item.data is not None else ("d", 0)
                         for path, item in expected.items()}
        for path, item in expected.items():
            size, mtime, atime, ctime, kind_name = _stat(root / path)
            assert (mtime, atime, ctime) == (item.modified, item.accessed, item.changed), path
            assert kind_name == ("directory" if item.data is None else
                                 "regular file" if item.data else "regular empty file")
            if item.data is not None:
                assert size == len(item.data)
            # pyewf's times (created, accessed, modified, entry modified; naive UTC)
            _, accessed, modified, changed = tree["/".join(item.parts)]["times"]
            assert (modified, accessed, changed) == tuple(
                datetime.fromtimestamp(t, UTC).replace(tzinfo=None) for t in (mtime, atime, ctime))
        files = {path: item for path, item in expected.items() if item.data is not None}
        sums = _sha256sum([root / path for path in files])
        for path, item in files.items():
            assert item.data is not None
            assert sums[root / path] == _sha256(item.data), path  # the source file
            assert tree["/".join(item.parts)]["data"] == item.data  # pyewf reads the same
            assert _cat(built.path, "/" + "/".join(item.parts)) == item.data
        media = mnt / "media.raw"
        assert _sha256sum([media])[media] == _sha256(built.media)
        md5 = subprocess.run(["md5sum", str(media)], capture_output=True, text=True,
                             check=True).stdout.split()[0]
        assert md5 == whole["hashes"]["MD5"]  # what the set records for its media
    finally:
        code, _, err = fg.stop()
    assert code == 0, err
    assert snapshot([built.path]) == before


def test_l01_files_and_media_as_ewfexport_writes_them(tmp_path: Path) -> None:
    """libewf-tools' own export of the files (``-f files``) and of the media (``-f raw``) hold
    exactly what the mount shows."""
    require_fuse()
    require_tool("ewfexport", "sha256sum")
    built = build_l01(tmp_path / "files.L01", sample_items())
    theirs = tmp_path / "theirs"
    subprocess.run(["ewfexport", "-q", "-u", "-f", "files", "-t", str(theirs), str(built.path)],
                   capture_output=True, check=True, cwd=tmp_path)
    raw = tmp_path / "raw"
    subprocess.run(["ewfexport", "-q", "-u", "-f", "raw", "-t", str(raw), str(built.path)],
                   capture_output=True, check=True, cwd=tmp_path)
    exported = sorted(p for p in theirs.rglob("*") if p.is_file())
    assert exported
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    fg = Foreground(built.path, mnt, "--files")
    try:
        root = mnt / "files" / "0"
        ours = sorted(p for p in root.rglob("*") if p.is_file())
        assert [p.relative_to(root) for p in ours] == [p.relative_to(theirs) for p in exported]
        mine, others = _sha256sum(ours), _sha256sum(exported)
        assert [mine[p] for p in ours] == [others[p] for p in exported]
        media = mnt / "media.raw"
        raw_file = tmp_path / "raw.raw"
        assert _sha256sum([media])[media] == _sha256sum([raw_file])[raw_file]
    finally:
        code, _, err = fg.stop()
    assert code == 0, err


@pytest.mark.parametrize("kind", ["l01", "lx01"])
def test_every_write_is_refused(tmp_path: Path, kind: str) -> None:
    require_fuse()
    built = BUILDS[kind](tmp_path, sample_items())
    before = snapshot([built.path])
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    fg = Foreground(built.path, mnt, "--files")
    try:
        folder = mnt / "files" / "0" / "Evidence"
        target = folder / "docs" / "readme.txt"
        media = mnt / "media.raw"
        attempts = {
            "write": lambda: target.open("r+b").write(b"x"),
            "append": lambda: target.open("ab").write(b"x"),
            "truncate": lambda: os.truncate(target, 0),
            "create": lambda: (folder / "new.txt").write_bytes(b"x"),
            "mkdir": (folder / "new").mkdir,
            "rmdir": (folder / "emptydir").rmdir,
            "unlink": target.unlink,
            "rename": lambda: target.rename(folder / "renamed.txt"),
            "chmod": lambda: target.chmod(0o777),
            "chown": lambda: os.chown(target, 1, 1),
            "utime": lambda: os.utime(target, (0, 0)),
            "symlink": lambda: (folder / "l").symlink_to("docs"),
            "setxattr": lambda: os.setxattr(target, "user.x", b"1"),
            "write-media": lambda: media.open("r+b").write(b"x"),
        }
        for name, attempt in attempts.items():
            with pytest.raises(OSError, match="Read-only file system") as caught:
                attempt()
            assert caught.value.errno == errno.EROFS, name
        assert not os.access(target, os.W_OK)
        assert target.read_bytes() == b"hello world\n"
    finally:
        code, _, err = fg.stop()
    assert code == 0, err
    assert snapshot([built.path]) == before


@pytest.mark.parametrize("kind", ["l01", "lx01"])
def test_image_bytes_and_times_unchanged(strict_atime_dir: Path, tmp_path: Path,  # noqa: F811
                                         kind: str) -> None:
    """On a strictatime file system any read without O_NOATIME would move the image's atime."""
    require_fuse()
    built = BUILDS[kind](strict_atime_dir, sample_items())
    image = built.path
    os.utime(image, ns=(1_000_000_000, 2_000_000_000))  # atime older than mtime
    stat_before = image.stat()
    digest = _sha256(image.read_bytes())
    os.utime(image, ns=(stat_before.st_atime_ns, stat_before.st_mtime_ns))
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    fg = Foreground(image, mnt, "--files")
    try:
        everything = sorted(p for p in (mnt / "files").rglob("*") if p.is_file())
        assert len(everything) == sum(i.data is not None for i in sample_items())
        for path in [*everything, mnt / "media.raw"]:
            path.read_bytes()
    finally:
        code, _, err = fg.stop()
    assert code == 0, err
    after = image.stat()
    assert (after.st_mtime_ns, after.st_atime_ns, after.st_size) == (
        stat_before.st_mtime_ns, stat_before.st_atime_ns, stat_before.st_size)
    with image.open("rb") as fh:  # this read may move atime; it is the last one
        assert _sha256(fh.read()) == digest


@pytest.mark.parametrize("kind", ["l01", "lx01"])
def test_hostile_names_are_one_component_each(tmp_path: Path, kind: str) -> None:
    """Names holding "/", "..", ".", "%" and control characters: each is one entry of its
    folder, escaped as the mount escapes names of file systems, with its own content."""
    require_fuse()
    items = [Item(("..",), None), Item(("..", "escape.txt"), b"out?"), Item(("a/b",), b"slash"),
             Item(("50%/x",), b"percent"), Item(("\x1b[31mred",), b"esc"), Item((".",), b"dot")]
    built = BUILDS[kind](tmp_path, items)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    fg = Foreground(built.path, mnt, "--files")
    try:
        root = mnt / "files" / "0"
        assert sorted(p.name for p in root.iterdir()) == sorted(
            ["%2E%2E", "a%2Fb", "50%25%2Fx", "\x1b[31mred", "%2E"])
        assert (root / "%2E%2E" / "escape.txt").read_bytes() == b"out?"
        assert (root / "a%2Fb").read_bytes() == b"slash"
        assert (root / "50%25%2Fx").read_bytes() == b"percent"
        assert (root / "\x1b[31mred").read_bytes() == b"esc"
        assert (root / "%2E").read_bytes() == b"dot"
        assert not (mnt / "escape.txt").exists()  # nothing escapes the tree
    finally:
        code, _, err = fg.stop()
    assert code == 0, err


def test_a_disk_image_stored_as_the_first_file_is_not_taken_for_the_evidences_disk(
        tmp_path: Path) -> None:
    """The first file is a disk with a DOS partition table: ``mmls`` finds that table at the
    start of media.raw (the media is the files end to end), so the mount builds no partitions/
    from it; the disk is files/0/disk.img, byte for byte."""
    require_fuse()
    require_tool("sfdisk", "mmls")
    disk = tmp_path / "disk.img"
    disk.write_bytes(bytes(2 << 20))
    subprocess.run(["sfdisk", "-q", str(disk)], input=b"label: dos\nstart=2048, type=83\n",
                   capture_output=True, check=True)
    data = disk.read_bytes()
    built = build_l01(tmp_path / "files.L01", [Item("disk.img", data),
                                               Item("notes.txt", b"seized from desk 4\n")])
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    fg = Foreground(built.path, mnt, "--files")
    try:
        table = subprocess.run(["mmls", str(mnt / "media.raw")], capture_output=True,
                               text=True, check=False).stdout
        assert "DOS Partition Table" in table  # what TSK would have taken for the disk
        assert not (mnt / "partitions").exists()
        assert (mnt / "files" / "0" / "disk.img").read_bytes() == data
        assert (mnt / "files" / "0" / "notes.txt").read_bytes() == b"seized from desk 4\n"
    finally:
        code, _, err = fg.stop()
    assert code == 0, err


def test_without_files_only_the_media_is_shown(tmp_path: Path) -> None:
    require_fuse()
    built = build_lx01(tmp_path / "files.Lx01", sample_items())
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    fg = Foreground(built.path, mnt)
    try:
        assert [p.name for p in mnt.iterdir()] == ["media.raw"]
        assert (mnt / "media.raw").read_bytes() == built.media
    finally:
        code, _, err = fg.stop()
    assert code == 0, err


def test_concurrent_reads_of_files_and_media_are_exact(tmp_path: Path) -> None:
    """Files (pyewf's file entries) and media.raw (pyewf's media) read through one libewf
    handle from several FUSE threads at once: every read gets exactly the builder's bytes."""
    import random

    require_fuse()
    items = [Item("d", None), *(Item(f"d/f{n}.bin", random.Random(n).randbytes(70_000 + n))
                                for n in range(6))]
    built = build_lx01(tmp_path / "files.Lx01", items)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    fg = Foreground(built.path, mnt, "--files")
    errors: list[str] = []

    def media_worker(seed: int) -> None:
        rng = random.Random(seed)
        fd = os.open(mnt / "media.raw", os.O_RDONLY)
        try:
            for _ in range(200):
                size = rng.choice([1, 4096, 65536, 200_000])
                offset = rng.randrange(len(built.media))
                if os.pread(fd, size, offset) != built.media[offset:offset + size]:
                    errors.append(f"media {offset}+{size}")
        finally:
            os.close(fd)

    def file_worker(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(100):
            item = rng.choice(items[1:])
            assert item.data is not None
            offset = rng.randrange(len(item.data))
            with (mnt / "files" / "0" / str(item.path)).open("rb") as fh:
                fh.seek(offset)
                if fh.read(5000) != item.data[offset:offset + 5000]:
                    errors.append(f"{item.path}@{offset}")

    try:
        threads = [threading.Thread(target=media_worker, args=(n,)) for n in range(3)]
        threads += [threading.Thread(target=file_worker, args=(n,)) for n in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        code, _, err = fg.stop()
    assert code == 0, err
    assert errors == []
