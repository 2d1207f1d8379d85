"""``bitwitness mount --files`` over the file-system images of the parity tests
(``tests/fsimages.py``): NTFS streams and deleted folders, an ext4 deleted name whose inode a
newer file took over and a FAT12 deleted file whose first cluster another file took (listed,
never served: ``sha256sum``, ``cat``, ``cp`` and ``rsync`` report EIO for them and go on,
``getfattr`` says why), and an ext2 whose names are hostile (``.``, ``..``, ``/`` inside, not
UTF-8, control bytes). Contents are checked against ``icat``, sizes against ``istat``."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import fsimages
import pytest
from conftest import REPO, require_tool, snapshot
from test_mount import Foreground, require_fuse

from bitwitness.report.mount.tree import CONTENT_XATTR, mount_name

pytestmark = pytest.mark.slow


def _build(name: str, folder: Path) -> Path:
    try:
        return fsimages.BUILDERS[name](folder / f"{name}.img")
    except fsimages.Unavailable as exc:
        pytest.skip(f"{name} cannot be built here: {exc}")


def _icat(image: Path, address: str) -> bytes:
    return subprocess.run(["icat", str(image), address], capture_output=True,
                          check=True).stdout


def _inode(image: Path, path: str) -> str:
    return subprocess.run(["ifind", "-n", path, str(image)], capture_output=True, text=True,
                          check=True).stdout.strip()


def test_ntfs_streams_and_deleted_folders(tmp_path: Path) -> None:
    require_fuse()
    require_tool("icat", "ifind")
    image = _build("ntfs", tmp_path)
    before = snapshot([image])
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    fg = Foreground(image, mnt, "--files")
    try:
        live, gone = mnt / "files" / "0", mnt / "files" / "0.deleted"
        stream = live / "dir" / "small.txt:Zone.Identifier"
        assert stream.read_bytes() == b"[ZoneTransfer]\nZoneId=3\n"
        address = _inode(image, "/dir/small.txt")
        assert (live / "dir" / "small.txt").read_bytes() == _icat(image, address)
        assert (live / "dir" / "big.bin").read_bytes() == bytes(range(256)) * 800
        assert (live / "dir" / "sub" / "comp.txt").read_bytes() == b"compress me " * 9000
        sparse = (live / "dir" / "sparse.bin").read_bytes()
        assert sparse == bytes(409600) + b"after a hole\n"
        assert not (live / "gone").exists()
        assert (gone / "gone").is_dir()
        assert {p.name for p in (gone / "gone").iterdir()} >= {"o0.txt", "o1.txt", "o2.txt"}
        assert (gone / "dir" / "deleted.txt").exists()
        assert not (live / "dir" / "deleted.txt").exists()
    finally:
        code, _, err = fg.stop()
    assert code == 0, err
    assert snapshot([image]) == before


def _fls(image: Path) -> dict[str, tuple[str, bool, bool]]:
    """Regular and virtual files (``$FAT1``) as ``fls -r -p`` lists them: path -> (address,
    deleted, realloc)."""
    out = subprocess.run(["fls", "-r", "-p", str(image)], capture_output=True, check=True)
    found = {}
    for line in out.stdout.decode("utf-8").splitlines():
        head, _, path = line.partition(":\t")
        kind, *rest = head.split()
        if kind not in ("r/r", "v/v"):
            continue
        address = rest[-1]
        found[path] = (address.removesuffix("(realloc)"), rest[0] == "*",
                       address.endswith("(realloc)"))
    return found


def _istat_size(image: Path, address: str) -> int:
    out = subprocess.run(["istat", str(image), address], capture_output=True, text=True,
                         check=True).stdout
    return int(next(line.split(":")[1] for line in out.splitlines()
                    if line.lower().startswith("size:")))


def _content_xattr(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["getfattr", "--only-values", "-n", CONTENT_XATTR, str(path)],
                          capture_output=True, text=True, check=False)


def _unserved(image: Path, mnt: Path, lost: list[str], served: dict[str, str],
              links: dict[str, bytes] | None = None) -> None:
    """The files ``lost`` (paths under ``files/``) are listed with the size ``istat`` gives, and
    every tool an examiner sweeps a mount with reports an error for each and goes on: the other
    files (``served``: path under ``files/`` -> address) hash as ``icat`` gives them, symbolic
    links (``links``: path -> target) as their target (TSK reads a fast link as zeros)."""
    links = links or {}
    files = mnt / "files"
    fls = _fls(image)

    def one_error_each(stderr: str, *, quoted: bool = False) -> None:
        lines = stderr.splitlines()
        for path in lost:
            shown = str(files / path) if quoted else f"./{path}"
            assert len([x for x in lines if shown in x and "Input/output error" in x]) == 1, \
                (path, lines)

    sweep = subprocess.run(["find", ".", "-type", "f", "-exec", "sha256sum", "{}", "+"],
                           cwd=files, capture_output=True, text=True, check=False)
    assert sweep.returncode == 1
    one_error_each(sweep.stderr)
    assert len(sweep.stderr.splitlines()) == len(lost)
    hashed = {line.split("  ", 1)[1].removeprefix("./"): line.split("  ", 1)[0]
              for line in sweep.stdout.splitlines()}
    assert set(hashed) == set(served) | set(links)
    for path, target in links.items():
        assert hashed[path] == hashlib.sha256(target).hexdigest(), path
    for path, address in served.items():
        assert hashed[path] == hashlib.sha256(_icat(image, address)).hexdigest(), path
    for path in lost:
        # the name stays, with the size its file system records
        address = fls[path.split("/", 1)[1]][0]
        assert (files / path).stat().st_size == _istat_size(image, address), path
        cat = subprocess.run(["cat", str(files / path)], capture_output=True, text=True,
                             check=False)
        assert (cat.returncode, cat.stdout) == (1, ""), path
        assert "Input/output error" in cat.stderr
        # why, as an extended attribute
        why = _content_xattr(files / path)
        assert why.returncode == 0, why.stderr
        assert why.stdout.startswith("not recoverable: ")
        listed = subprocess.run(["getfattr", "-d", "-m", "-", str(files / path)],
                                capture_output=True, text=True, check=True).stdout
        assert f"{CONTENT_XATTR}=" in listed
    for path in served:
        assert _content_xattr(files / path).returncode == 1  # no such attribute: served
    copied = mnt.parent / "copied"
    cp = subprocess.run(["cp", "-r", str(files), str(copied)], capture_output=True, text=True,
                        check=False)
    assert cp.returncode == 1
    one_error_each(cp.stderr, quoted=True)
    assert len(cp.stderr.splitlines()) == len(lost)
    synced = mnt.parent / "synced"
    rsync = subprocess.run(["rsync", "-a", f"{files}/", str(synced)], capture_output=True,
                           text=True, check=False)
    assert rsync.returncode == 23  # "partial transfer due to error"
    one_error_each(rsync.stderr, quoted=True)
    for path in lost:
        assert not (copied / path).exists()
        assert not (synced / path).exists()
    for path in served:
        assert hashlib.sha256((copied / path).read_bytes()).hexdigest() == hashed[path], path
        assert hashlib.sha256((synced / path).read_bytes()).hexdigest() == hashed[path], path


def _served(image: Path, skip: set[str]) -> dict[str, str]:
    """Mount path -> address of every regular file fls lists, but those in ``skip``."""
    return {f"0{'.deleted' if deleted else ''}/{path}": address
            for path, (address, deleted, _realloc) in _fls(image).items() if path not in skip}


def test_ext4_reused_inode_is_listed_but_never_served(tmp_path: Path) -> None:
    """A deleted name whose inode a newer file took over (fls: ``(realloc)``) keeps its name and
    istat's size; reading it fails (EIO) for sha256sum, cat, cp and rsync alike, which go on with
    the other files (hashed as icat gives them); getfattr tells why."""
    require_fuse()
    require_tool("icat", "ifind", "fls", "istat", "getfattr", "rsync", "sha256sum")
    image = _build("ext4", tmp_path)
    before = snapshot([image])
    listed = _fls(image)
    assert listed["reused.txt"][1:] == (True, True)  # deleted, inode reused
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    fg = Foreground(image, mnt, "--files")
    try:
        _unserved(image, mnt, ["0.deleted/reused.txt"], _served(image, {"reused.txt"}),
                  {"0/home/ana/link": b"notes.txt"})
        newer = mnt / "files" / "0" / "a-much-longer-name-that-needs-a-new-slot.txt"
        assert newer.read_bytes() == b"second owner, who took the inode over\n"
        why = _content_xattr(mnt / "files" / "0.deleted" / "reused.txt").stdout
        assert "reused by another file" in why
    finally:
        code, _, err = fg.stop()
    assert code == 0, err
    said = [line for line in err.splitlines() if "reused.txt" in line]
    assert len(said) == 1  # said once, however often it was opened
    assert "content not recoverable" in said[0]
    cat = subprocess.run([sys.executable, "-m", "bitwitness", "cat", str(image), "/reused.txt"],
                         capture_output=True, text=True, check=False, cwd=REPO)
    assert cat.returncode == 1
    assert why.strip() in cat.stderr
    assert snapshot([image]) == before


def test_fat_deleted_file_whose_cluster_was_reused_is_never_served(tmp_path: Path) -> None:
    """FAT12 as mtools leaves it: a deleted file's first cluster given to new.bin (istat lists
    that sector for both; icat hands out new.bin's bytes as the deleted file's). The mount
    lists the deleted name with istat's size and refuses to serve it; the other files, deleted
    ones included, hash as icat gives them."""
    require_fuse()
    require_tool("icat", "ifind", "fls", "istat", "getfattr", "rsync", "sha256sum")
    try:
        image = fsimages.intact_copy(fsimages.BUILDERS["crafted_fat12"](tmp_path / "fat.img"))
    except fsimages.Unavailable as exc:
        pytest.skip(f"FAT12 cannot be built here: {exc}")
    listed = _fls(image)
    lost = sorted(p for p in listed if p.rpartition("/")[2].startswith("overwritten"))
    assert lost == ["docs/overwritten n", "overwritten n"]  # in / and in /docs

    def sectors(address: str) -> list[str]:
        out = subprocess.run(["istat", str(image), address], capture_output=True, text=True,
                             check=True).stdout
        return out.split("Sectors:", 1)[1].split()

    for path in lost:
        lost_at = listed[path][0]
        newer_at = _inode(image, f"/{path.rpartition('/')[0]}/new.bin".replace("//", "/"))
        assert sectors(lost_at)[0] in sectors(newer_at)  # its first cluster is new.bin's now
        size = _istat_size(image, lost_at)
        assert _icat(image, lost_at) == _icat(image, newer_at)[:size]  # what icat passes off
    before = snapshot([image])
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    fg = Foreground(image, mnt, "--files")
    try:
        _unserved(image, mnt, [f"0.deleted/{p}" for p in lost], _served(image, set(lost)))
        for path in lost:
            assert "first cluster" in _content_xattr(mnt / "files" / "0.deleted" / path).stdout
    finally:
        code, _, err = fg.stop()
    assert code == 0, err
    assert snapshot([image]) == before


def test_hostile_names_are_one_component_each(tmp_path: Path) -> None:
    require_fuse()
    image = _build("hostile_ext2", tmp_path)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    fg = Foreground(image, mnt, "--files")
    try:
        root = mnt / "files" / "0"
        names = {p.name for p in root.iterdir()}
        for raw, content in fsimages.HOSTILE_EXT2.items():
            name = mount_name(raw.decode("utf-8", "surrogateescape"))
            assert name in names, raw
            assert (root / name).read_bytes() == content, raw
        assert (root / "ok.txt").read_bytes() == b"an ordinary file\n"
        assert not (mnt / "etc").exists()  # nothing escapes the tree
    finally:
        code, _, err = fg.stop()
    assert code == 0, err
