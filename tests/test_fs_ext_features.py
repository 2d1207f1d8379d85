"""ext4 features The Sleuth Kit cannot read (bigalloc), read through libfsext; and the features
that stay with TSK because it reads them right (the rule of ``report/browse/extfeatures.py``).

Images are made here by ``mkfs.ext4`` and filled through the kernel (a loop mount) or, where the
kernel here has no support (casefold: no Unicode tables), by ``debugfs -w``. Truths, all
independent of both readers: the kernel's ext4 driver (a read-only ``noload`` loop mount: names,
inode numbers, types, sizes, modes, owners, link counts and targets, modification, access and
change times in nanoseconds, every file's bytes) and ``debugfs`` (creation times, extents,
listings and bytes where the kernel cannot mount).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import fsimages
import pytest
from conftest import require_root, require_tool, run_bitwitness, snapshot

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
BW = (sys.executable, "-m", "bitwitness")
#: (feature options of mkfs.ext4, block size) of the bigalloc file systems
BIGALLOC = {"bigalloc-1k": ("-b", "1024", "-O", "bigalloc", "-C", "16384"),
            "bigalloc-4k": ("-b", "4096", "-O", "bigalloc", "-C", "65536")}


@dataclass(frozen=True)
class Built:
    image: Path
    truth: dict[str, dict[str, object]]  #: path -> what the kernel says
    md5: dict[str, str]  #: regular file path -> MD5 of its bytes through the kernel


def _run(*args: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([os.fspath(a) for a in args], capture_output=True, text=True,
                          check=check)


def _fill(root: Path) -> None:
    """Files of every shape: inline-sized, one cluster, many clusters, sparse, preallocated
    (unwritten extents over stale bytes), a 300-entry folder (htree), links, a non-ASCII name,
    times before 1970 and after 2038, and a file deleted before the image is taken."""
    (root / "stale.bin").write_bytes(b"STALE" * 200_000)
    os.sync()
    (root / "stale.bin").unlink()
    os.sync()
    (root / "tiny.txt").write_bytes(b"tiny\n")
    (root / "empty").write_bytes(b"")
    (root / "medium.bin").write_bytes(hashlib.sha256(b"m").digest() * 200)
    (root / "big.bin").write_bytes(hashlib.sha512(b"b").digest() * 9000)
    (root / "docs" / "deep").mkdir(parents=True)
    (root / "docs" / "deep" / "report.txt").write_bytes(b"quarterly numbers\n" * 50)
    (root / "ünïcødé.txt").write_bytes("ünï\n".encode())
    many = root / "many"
    many.mkdir()
    for index in range(300):
        (many / f"entry-{index:04d}-with-a-longer-name.txt").write_bytes(f"{index}\n".encode())
    with (root / "sparse.bin").open("wb") as handle:
        handle.seek(3_000_000)
        handle.write(b"end of a sparse file")
    fd = os.open(root / "prealloc.bin", os.O_CREAT | os.O_WRONLY, 0o600)
    try:
        os.posix_fallocate(fd, 0, 700_000)
        os.pwrite(fd, b"written in the middle", 40_960)
    finally:
        os.close(fd)
    (root / "short-link").symlink_to("tiny.txt")
    (root / "long-link").symlink_to("docs/" + "x" * 90 + "/target")
    os.chown(root / "docs", 1000, 100)
    (root / "docs" / "deep" / "report.txt").chmod(0o4751)
    for name, when in (("old.txt", -301_000_000_500_000_000), ("future.txt",
                                                               4_102_444_800_123_456_789)):
        (root / name).write_bytes(name.encode())
        os.utime(root / name, ns=(when, when))
    (root / "gone.txt").write_bytes(b"deleted before the image was taken\n" * 40)
    os.sync()
    (root / "gone.txt").unlink()


def _truth(root: Path) -> tuple[dict[str, dict[str, object]], dict[str, str]]:
    truth: dict[str, dict[str, object]] = {}
    md5: dict[str, str] = {}
    for folder, dirs, files in os.walk(root):
        for name in [*dirs, *files]:
            path = Path(folder) / name
            info = path.lstat()
            rel = "/" + str(path.relative_to(root))
            kind = {stat.S_IFDIR: "d/d", stat.S_IFREG: "r/r", stat.S_IFLNK: "l/l"}[
                stat.S_IFMT(info.st_mode)]
            truth[rel] = {"inode": str(info.st_ino), "type": kind,
                          "size": None if kind == "d/d" else info.st_size,
                          "modified": _when(info.st_mtime_ns),
                          "accessed": _when(info.st_atime_ns),
                          "changed": _when(info.st_ctime_ns),
                          "link": str(path.readlink()) if kind == "l/l" else None}
            if kind == "r/r":
                md5[rel] = _md5(path.read_bytes()).hexdigest()
    return truth, md5


def _when(ns: int) -> str | None:
    """A kernel time as our JSON writes it (microseconds, floored as we floor them)."""
    return (_EPOCH + timedelta(microseconds=ns // 1000)).isoformat() if ns else None


def build(base: Path, name: str, options: tuple[str, ...], size: str = "96M") -> Built:
    image = base / f"{name}.img"
    _run("truncate", "-s", size, image)
    _run("mkfs.ext4", "-q", "-F", *options, image)
    where = base / f"{name}-mnt"
    where.mkdir()
    with fsimages.loop_mounted(image, where, "loop") as root:
        _fill(root)
    with fsimages.loop_mounted(image, where, "ro,loop,noload") as root:
        truth, md5 = _truth(root)
    return Built(image, truth, md5)


@pytest.fixture(scope="module", params=sorted(BIGALLOC))
def bigalloc(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Built:
    require_root()
    require_tool("mkfs.ext4", "debugfs", "fls")
    name = request.param
    return build(tmp_path_factory.mktemp(name), name, BIGALLOC[name])


def _ls(image: Path, *extra: str) -> dict[str, dict[str, object]]:
    done = run_bitwitness("ls", image, "-r", "--all", "--json", *extra)
    assert done.exit_code == 0, done.stderr
    assert done.json()["filesystem"].startswith("ext")
    return {e["path"]: e for e in done.json()["entries"]}


# --- bigalloc: TSK cannot, libfsext does ----------------------------------------------------


def test_tsk_cannot_open_bigalloc(bigalloc: Built) -> None:
    """The premise of the rule, measured: were TSK to read bigalloc, it would go back to TSK."""
    done = _run("fls", bigalloc.image, check=False)
    assert done.returncode != 0
    assert "Cannot determine file system type" in done.stderr


def test_partitions_names_ext4_read_by_libfsext(bigalloc: Built) -> None:
    done = run_bitwitness("partitions", bigalloc.image, "--json")
    assert done.exit_code == 0, done.stderr
    (row,) = done.json()["partitions"]
    assert row["filesystem"] == "ext4"
    assert row["reader"] == "libfsext"
    text = run_bitwitness("partitions", bigalloc.image).stdout
    assert "ext4 with bigalloc (read by libfsext)" in text


def test_listing_matches_the_kernel(bigalloc: Built) -> None:
    before = snapshot([bigalloc.image])
    ours = _ls(bigalloc.image)
    keys = ("inode", "type", "size", "modified", "accessed", "changed", "link")
    got = {path: {k: (None if k == "size" and e["type"] == "d/d" else e[k]) for k in keys}
           for path, e in ours.items()}
    assert got == bigalloc.truth
    assert not any(e["deleted"] for e in ours.values())
    assert "/gone.txt" not in ours  # libfsext exposes no deleted entry (said in the README)
    assert run_bitwitness("ls", bigalloc.image, "/", "--deleted", "--json").json()[
        "entries"] == []
    assert snapshot([bigalloc.image]) == before


def test_stat_matches_the_kernel_and_debugfs(bigalloc: Built) -> None:
    for path in ("/big.bin", "/docs/deep/report.txt", "/prealloc.bin", "/sparse.bin", "/old.txt",
                 "/docs", "/long-link"):
        done = run_bitwitness("stat", bigalloc.image, path, "--json")
        assert done.exit_code == 0, done.stderr
        ours = done.json()
        theirs = _debugfs_stat(bigalloc.image, path)
        assert ours["inode"] == str(theirs["inode"])
        assert ours["mode"] == stat.filemode(int(theirs["mode"], 8))[1:]
        assert (ours["uid"], ours["gid"], ours["links"]) == (theirs["uid"], theirs["gid"],
                                                             theirs["links"])
        assert _iso(ours["born"]) == theirs["crtime"]
        assert _iso(ours["modified"]) == bigalloc.truth[path]["modified"]
        assert ours["deleted_time"] is None
        written = [(first, length) for attr in ours["attributes"] for first, length in
                   attr.get("runs") or () if first is not None]
        assert written == _debugfs_written_extents(bigalloc.image, path), path


def test_content_matches_the_kernel(bigalloc: Built) -> None:
    listing = _ls(bigalloc.image)
    for path, digest in bigalloc.md5.items():
        if path.startswith("/many/") and not path.endswith(("0000-with-a-longer-name.txt",
                                                              "0299-with-a-longer-name.txt")):
            continue  # every one of them is exported and hashed below: two are enough here
        by_path = subprocess.run([*BW, "cat", str(bigalloc.image), path],
                                 capture_output=True, check=False)
        assert by_path.returncode == 0, by_path.stderr
        assert _md5(by_path.stdout).hexdigest() == digest, path
    for path in ("/big.bin", "/prealloc.bin", "/sparse.bin"):
        by_inode = subprocess.run([*BW, "cat", str(bigalloc.image), "--inode",
                                   str(listing[path]["inode"])], capture_output=True,
                                  check=False)
        assert _md5(by_inode.stdout).hexdigest() == bigalloc.md5[path]


def test_export_and_timeline_match_the_kernel(bigalloc: Built, tmp_path: Path) -> None:
    out = tmp_path / "out"
    done = run_bitwitness("export", bigalloc.image, "/", "--to", out, "--all")
    assert done.exit_code == 0, done.stderr
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    exported = {row["source"]: row["md5"] for row in manifest["files"]}
    assert {p: exported.get(p) for p in bigalloc.md5} == bigalloc.md5
    for path, digest in bigalloc.md5.items():
        assert _md5((out / path.lstrip("/")).read_bytes()).hexdigest() == digest
    body = run_bitwitness("timeline", bigalloc.image)
    assert body.exit_code == 0, body.stderr
    rows = {line.split("|")[1].split(" -> ")[0]: line.split("|")
            for line in body.stdout.splitlines()}
    for path, fact in bigalloc.truth.items():
        row = rows[path]
        assert row[2] == fact["inode"]
        mtime = datetime.fromisoformat(str(fact["modified"]))
        assert int(row[8]) == int((mtime - _EPOCH) // timedelta(seconds=1)), path


def test_mount_serves_the_kernel_bytes(bigalloc: Built, tmp_path: Path) -> None:
    require_tool("fusermount3")
    if not Path("/dev/fuse").exists():
        pytest.skip("no /dev/fuse")
    where = tmp_path / "mnt"
    where.mkdir()
    done = subprocess.run([*BW, "mount", str(bigalloc.image), str(where), "--files",
                           "--background"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    try:
        root = where / "files" / "0"
        for path, digest in bigalloc.md5.items():
            assert _md5((root / path.lstrip("/")).read_bytes()).hexdigest() == digest
        # the mount serves a link as a file whose bytes are its target (report/mount/tree.py)
        assert (root / "long-link").read_text() == bigalloc.truth["/long-link"]["link"]
    finally:
        subprocess.run([*BW, "umount", str(where)], capture_output=True, check=False)


def test_in_a_partition_of_a_disk(bigalloc: Built, tmp_path: Path) -> None:
    """A GPT disk whose second partition is the bigalloc file system: ``-p`` and the tree."""
    require_tool("sgdisk")
    disk = tmp_path / "disk.img"
    size = bigalloc.image.stat().st_size
    _run("truncate", "-s", str(size + 4 * 1024 * 1024), disk)
    _run("sgdisk", "-n", "1:2048:4095", "-n", f"2:4096:+{size // 512}", disk)
    with disk.open("r+b") as out, bigalloc.image.open("rb") as source:
        out.seek(4096 * 512)
        while chunk := source.read(1 << 20):
            out.write(chunk)
    parts = run_bitwitness("partitions", disk, "--json").json()["partitions"]
    (row,) = [r for r in parts if r["filesystem"]]
    assert (row["start"], row["reader"]) == (4096, "libfsext")
    listing = _ls(disk, "-p", str(row["index"]))
    assert {p: e["inode"] for p, e in listing.items()} == {
        p: f["inode"] for p, f in bigalloc.truth.items()}
    cat = subprocess.run([*BW, "cat", str(disk), "/big.bin"], capture_output=True,
                         check=False)  # the only file system: no -p needed
    assert _md5(cat.stdout).hexdigest() == bigalloc.md5["/big.bin"]
    by_start = run_bitwitness("ls", disk, "/docs/deep", "--offset", "4096", "--json")
    assert by_start.exit_code == 0, by_start.stderr
    assert [e["inode"] for e in by_start.json()["entries"]] == [
        bigalloc.truth["/docs/deep/report.txt"]["inode"]]


def _md5(data: bytes) -> Any:
    return hashlib.md5(data)  # noqa: S324 - the MD5 evidence manifests record


def _iso(value: str) -> str:
    return value.replace("Z", "+00:00")


def _debugfs(image: Path, request: str) -> str:
    return _run("debugfs", "-R", request, image).stdout


def _debugfs_stat(image: Path, path: str) -> dict[str, object]:
    text = _debugfs(image, f"stat {path}")
    inode = re.search(r"Inode: (\d+)", text)
    mode = re.search(r"Mode:\s+(\d+)", text)
    owner = re.search(r"User:\s+(\d+)\s+Group:\s+(\d+)", text)
    links = re.search(r"Links: (\d+)", text)
    crtime = re.search(r"crtime: 0x([0-9a-f]+):([0-9a-f]+)", text)
    assert inode, text
    assert mode, text
    assert owner, text
    assert links, text
    assert crtime, text
    seconds, extra = int(crtime.group(1), 16), int(crtime.group(2), 16)
    signed = seconds - (1 << 32) if seconds >= 1 << 31 else seconds
    ns = (signed + ((extra & 3) << 32)) * 1_000_000_000 + (extra >> 2)
    return {"inode": int(inode.group(1)), "mode": mode.group(1),
            "uid": int(owner.group(1)), "gid": int(owner.group(2)),
            "links": int(links.group(1)), "crtime": _when(ns)}


def _debugfs_written_extents(image: Path, path: str) -> list[tuple[int, int]]:
    """(first block, blocks) of each leaf extent with data (not ``Uninit``), as ``ex`` lists
    them; a folder or link without extents has none."""
    found = []
    for line in _debugfs(image, f"ex {path}").splitlines():
        match = re.match(r"^\s*(\d+)/\s*(\d+)\s+\d+/\s*\d+\s+\d+ -\s+\d+\s+(\d+) -\s+\d+\s+(\d+)"
                         r"\s*(\S*)", line)
        if match and match.group(1) == match.group(2) and match.group(5) != "Uninit":
            found.append((int(match.group(3)), int(match.group(4))))
    return found


# --- the features that stay with TSK ----------------------------------------------------------

#: mkfs.ext4 options of file systems TSK reads as the kernel does (measured; the rule keeps them
#: with TSK, and libfsext refuses several of them)
TSK_READS = {"inline_data": ("-O", "inline_data"), "ea_inode": ("-O", "ea_inode"),
             "large_dir": ("-O", "large_dir"), "metadata_csum_seed": ("-O", "metadata_csum_seed"),
             "64bit,meta_bg": ("-O", "64bit,meta_bg,^resize_inode"),
             "huge_file,extra_isize": ("-O", "huge_file,extra_isize", "-I", "512"),
             "sparse_super2": ("-O", "sparse_super2"), "mmp": ("-O", "mmp"),
             "stable_inodes": ("-O", "stable_inodes"), "orphan_file": ("-O", "orphan_file"),
             "no journal": ("-O", "^has_journal"), "no extents": ("-O", "^extent,^64bit"),
             "verity": ("-O", "verity")}


def _small_fill(root: Path, *, big_attribute: bool) -> None:
    """Sizes around the inode's 60 bytes of inline data and its ``system.data`` attribute,
    folders small enough to be inline, links, one large file and a big extended attribute."""
    for size in (0, 1, 59, 60, 61, 100, 150, 200, 300, 5000, 300_000):
        (root / f"f{size}.bin").write_bytes(hashlib.sha256(str(size).encode()).digest()
                                            * (size // 32 + 1))
        os.truncate(root / f"f{size}.bin", size)
    for count in (1, 3, 8):
        folder = root / f"dir{count}"
        folder.mkdir()
        for index in range(count):
            (folder / f"n{index}").write_bytes(f"{count}/{index}\n".encode())
    (root / "link").symlink_to("f100.bin")
    if big_attribute:  # more than a block: only ea_inode stores it (in an inode of its own)
        os.setxattr(root / "f5000.bin", "user.big", b"x" * 6000)


@pytest.mark.parametrize("feature", sorted(TSK_READS))
def test_features_tsk_reads_stay_with_tsk(feature: str, tmp_path: Path) -> None:
    require_root()
    require_tool("mkfs.ext4", "fls")
    image = tmp_path / "fs.img"
    _run("truncate", "-s", "64M", image)
    _run("mkfs.ext4", "-q", "-F", *TSK_READS[feature], image)
    where = tmp_path / "mnt"
    where.mkdir()
    with fsimages.loop_mounted(image, where, "loop") as root:
        _small_fill(root, big_attribute=feature == "ea_inode")
    with fsimages.loop_mounted(image, where, "ro,loop,noload") as root:
        truth, md5 = _truth(root)
    (row,) = run_bitwitness("partitions", image, "--json").json()["partitions"]
    assert row["reader"] is None  # The Sleuth Kit's
    ours = {p: e for p, e in _ls(image).items() if not p.startswith("/$OrphanFiles")}
    assert {p: (e["inode"], e["type"]) for p, e in ours.items()} == {
        p: (f["inode"], f["type"]) for p, f in truth.items()}
    done = run_bitwitness("export", image, "/", "--to", tmp_path / "out", "--all")
    assert done.exit_code == 0, done.stderr
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text(encoding="utf-8"))
    exported = {row["source"]: row["md5"] for row in manifest["files"]}
    assert {p: exported.get(p) for p in md5} == md5, feature
    for path, digest in md5.items():
        assert _md5((tmp_path / "out" / path.lstrip("/")).read_bytes()).hexdigest() == digest


def test_casefold_stays_with_tsk(tmp_path: Path) -> None:
    """The kernel here has no Unicode tables (no casefold mount): debugfs writes and is the truth.
    Names are listed and found as stored."""
    require_tool("mkfs.ext4", "debugfs")
    image = tmp_path / "casefold.img"
    _run("truncate", "-s", "64M", image)
    _run("mkfs.ext4", "-q", "-F", "-O", "casefold", image)
    source = tmp_path / "hello.txt"
    source.write_bytes(b"hello casefold\n" * 9)
    _run("debugfs", "-w", "-R", "mkdir Folder", image)
    _run("debugfs", "-w", "-R", "set_inode_field Folder flags 0x40080000", image)  # +F, extents
    for name in ("MixedCase.TXT", "lower.txt", "ÜMLAUT.txt"):
        _run("debugfs", "-w", "-R", f"write {source} Folder/{name}", image)
    assert "casefold" in _run("dumpe2fs", "-h", image).stdout
    theirs = {}
    for line in _debugfs(image, "ls -l Folder").splitlines():
        parts = line.split()
        if len(parts) >= 8 and parts[-1] not in (".", ".."):
            theirs["/Folder/" + _unescape(parts[-1])] = parts[0]
    assert len(theirs) == 3
    ours = _ls(image)
    assert {p: e["inode"] for p, e in ours.items() if p.startswith("/Folder/")} == theirs
    for path in theirs:
        cat = subprocess.run([*BW, "cat", str(image), path], capture_output=True, check=False)
        assert cat.stdout == source.read_bytes()


def _unescape(name: str) -> str:
    """A name as debugfs prints it (bytes above 0x7f as ``\\xNN``)."""
    raw = re.sub(rb"\\x([0-9a-f]{2})", lambda m: bytes([int(m.group(1), 16)]),
                 name.encode("ascii", "surrogateescape"))
    return raw.decode("utf-8")


def test_bigalloc_with_a_feature_libfsext_refuses_fails_in_one_line(tmp_path: Path) -> None:
    """bigalloc + large_dir: TSK cannot (bigalloc), libfsext cannot (large_dir): one line."""
    require_tool("mkfs.ext4")
    image = tmp_path / "both.img"
    _run("truncate", "-s", "64M", image)
    _run("mkfs.ext4", "-q", "-F", "-O", "bigalloc,large_dir", "-C", "16384", image)
    for args in (("ls", image, "/"), ("cat", image, "/x"), ("timeline", image),
                 ("export", image, "/", "--to", tmp_path / "out", "--all")):
        done = subprocess.run([*BW, *map(str, args)], capture_output=True, text=True,
                              check=False)
        assert done.returncode == 2, (args, done.stderr)
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert "bigalloc, which The Sleuth Kit cannot read" in done.stderr
        assert "large_dir" in done.stderr


def test_encrypted_folder_is_listed_by_tsk(tmp_path: Path) -> None:
    """fscrypt (``encrypt``): names and bytes are ciphertext without the key; the listing must
    still hold every entry debugfs lists, under its encrypted name (no key is asked for)."""
    require_root()
    require_tool("mkfs.ext4", "e4crypt", "debugfs")
    image = tmp_path / "enc.img"
    _run("truncate", "-s", "64M", image)
    _run("mkfs.ext4", "-q", "-F", "-O", "encrypt", image)
    where = tmp_path / "mnt"
    where.mkdir()
    with fsimages.loop_mounted(image, where, "loop") as root:
        (root / "secret").mkdir()
        added = subprocess.run(["e4crypt", "add_key", "-S", "0x" + "12" * 8, str(root / "secret")],
                               input="not a real passphrase\n", capture_output=True, text=True,
                               check=False)
        if added.returncode != 0:
            pytest.skip(f"no fscrypt key here: {added.stderr.strip()}")
        for index in range(5):
            (root / "secret" / f"file{index}.txt").write_bytes(b"plain text\n" * index)
    theirs = [line.split()[0] for line in _debugfs(image, "ls -l secret").splitlines()
              if len(line.split()) >= 8 and line.split()[-1] not in (".", "..")]
    assert len(theirs) == 5
    ours = _ls(image)
    inside = {e["inode"] for p, e in ours.items() if p.startswith("/secret/")}
    assert inside == set(theirs)


def test_an_inode_libfsext_refuses_does_not_hide_its_folder(tmp_path: Path) -> None:
    """libfsext refuses an inode whose time lies after 2262-04-11 (its nanosecond count would
    not fit 64 bits); the kernel reads it. The rest of the folder is listed and the missing
    entry is named in a warning, and the listing ends with exit 1: it is incomplete."""
    require_root()
    require_tool("mkfs.ext4")
    image = tmp_path / "late.img"
    _run("truncate", "-s", "64M", image)
    _run("mkfs.ext4", "-q", "-F", "-O", "bigalloc", "-C", "16384", image)
    where = tmp_path / "mnt"
    where.mkdir()
    with fsimages.loop_mounted(image, where, "loop") as root:
        for name, when in (("a-2261.txt", "2261-01-01"), ("b-2300.txt", "2300-01-01"),
                           ("c-plain.txt", None)):
            (root / name).write_bytes(name.encode())
            if when:
                _run("touch", "-d", f"{when} 00:00:00 UTC", root / name)
    with fsimages.loop_mounted(image, where, "ro,loop,noload") as root:
        truth, _ = _truth(root)
    assert truth["/b-2300.txt"]["modified"].startswith("2300-01-01")  # the kernel reads it
    done = subprocess.run([*BW, "ls", str(image), "/", "--json"], capture_output=True,
                          text=True, check=False)
    assert done.returncode == 1, done.stderr  # the listing lacks an entry: it says so
    assert "the listing is incomplete" in done.stderr
    listed = {e["path"]: e["modified"] for e in json.loads(done.stdout)["entries"]}
    assert listed == {p: truth[p]["modified"] for p in ("/lost+found", "/a-2261.txt",
                                                        "/c-plain.txt")}
    assert "entry 3 of 4 not readable" in done.stderr
    assert "modification time value out of bounds" in done.stderr


# --- times TSK misreads on every ext4 --------------------------------------------------------

#: (name, nanoseconds since 1970) around the ends of each 32-bit epoch
TIMES = (("1901.txt", -2_145_916_800_000_000_000), ("1960.txt", -301_000_000_500_000_000),
         ("1969.txt", -1_000_000_000), ("2038.txt", 2_147_483_647_999_999_999),
         ("2100.txt", 4_102_444_800_123_456_789), ("2107.txt", 4_323_283_200_000_000_000),
         ("2150.txt", 5_680_281_600_000_000_000), ("2243.txt", 8_615_289_600_000_000_000),
         ("2400.txt", 13_569_465_600_000_000_000))


@pytest.mark.parametrize(("inode_size", "lead"), [(256, 0), (128, 0), (1024, 63), (256, 63)])
def test_ext4_times_as_the_kernel_decodes_them(inode_size: int, lead: int,
                                               tmp_path: Path) -> None:
    """TSK takes an inode's seconds as unsigned and ignores the epoch bits (``istat`` shows
    1960 as 2096, 2150 as 2013); ours are the kernel's, read from the inode (moretimes.py).
    128-byte inodes hold no epoch bits: the kernel clamps what it cannot store, and reads the
    seconds as signed. With ``lead`` sectors before the file system (a DOS-era partition at
    sector 63, off every 4 KiB boundary of the image), the inode-table blocks whose times are
    checked at once are the file system's, counted from its start: counted from the image's,
    1024-byte inode slots were checked 512 bytes off, and TSK's wrong times kept."""
    require_root()
    require_tool("mkfs.ext4", "debugfs", "istat")
    image = tmp_path / "times.img"
    _run("truncate", "-s", "64M", image)
    _run("mkfs.ext4", "-q", "-F", "-I", str(inode_size), image)
    where = tmp_path / "mnt"
    where.mkdir()
    with fsimages.loop_mounted(image, where, "loop") as root:
        for name, ns in TIMES:
            (root / name).write_bytes(name.encode())
            os.utime(root / name, ns=(ns, ns))
    with fsimages.loop_mounted(image, where, "ro,loop,noload") as root:
        truth, _ = _truth(root)
    at: tuple[str, ...] = ()
    listed = image
    if lead:
        listed = tmp_path / "disk.img"
        listed.write_bytes(bytes(lead * 512) + image.read_bytes())
        at = ("--offset", str(lead))
    ours = _ls(listed, *at)
    keys = ("modified", "accessed", "changed")
    assert {p: tuple(ours[p][k] for k in keys) for p in truth} == {
        p: tuple(truth[p][k] for k in keys) for p in truth}
    if inode_size >= 256:  # creation times exist only in the extra fields
        for name in ("/1960.txt", "/2150.txt"):
            assert _iso(ours[name]["born"]) == _debugfs_stat(image, name)["crtime"]
        istat = _run("istat", "-z", "UTC", image, ours["/1960.txt"]["inode"]).stdout
        assert "File Modified:\t2096-" in istat  # TSK's own reading, which we correct
    body = run_bitwitness("timeline", listed, *at).stdout
    seconds = {line.split("|")[1]: int(line.split("|")[8]) for line in body.splitlines()}
    for name, _ns in TIMES:
        when = datetime.fromisoformat(str(truth["/" + name]["modified"]))
        assert seconds["/" + name] == (when - _EPOCH) // timedelta(seconds=1), name


def test_browser_lists_previews_and_exports_bigalloc(bigalloc: Built, tmp_path: Path) -> None:
    pytest.importorskip("textual")
    import asyncio

    from textual.widgets import DataTable, Tree

    from bitwitness.report.browse.tui import EvidenceBrowser

    async def scenario() -> None:
        app = EvidenceBrowser(bigalloc.image, export_to=tmp_path / "exports")
        async with app.run_test(size=(160, 50)) as pilot:
            tree = app.query_one("#tree", Tree)
            assert [str(n.label) for n in tree.root.children] == [
                "0: ext4 (read by libfsext) at sector 0"]
            top = tree.root.children[0]
            tree.select_node(top)
            top.expand()
            await pilot.pause()
            docs = next(n for n in top.children if str(n.label) == "docs")
            docs.expand()
            await pilot.pause()
            deep = next(n for n in docs.children if str(n.label) == "deep")
            tree.select_node(deep)
            await pilot.pause()
            table = app.query_one("#entries", DataTable)
            rows = [table.get_row_at(i) for i in range(table.row_count)]
            assert [str(r[0]) for r in rows] == ["report.txt"]
            table.focus()
            table.move_cursor(row=0)
            await pilot.pause()
            await pilot.press("x")
            assert app.preview_text.startswith("quarterly numbers")
            await pilot.press("e")
            await pilot.pause()
            result = app.last_export
            assert result is not None
            manifest = json.loads(result.manifest_json.read_text())
            assert manifest["files"][0]["md5"] == bigalloc.md5["/docs/deep/report.txt"]
            await pilot.press("q")

    asyncio.run(scenario())


def test_a_free_inode_asked_for_by_number(tmp_path: Path) -> None:
    """libfsext lists no deleted name, but ``--inode N`` reaches a freed inode: it is shown
    deleted and unallocated with debugfs's deletion time, and ``cat`` refuses its cleared
    content (exit 1), as for TSK's deleted ext4 inodes."""
    require_root()
    require_tool("mkfs.ext4", "debugfs")
    image = tmp_path / "freed.img"
    _run("truncate", "-s", "64M", image)
    _run("mkfs.ext4", "-q", "-F", "-O", "bigalloc", "-C", "16384", image)
    where = tmp_path / "mnt"
    where.mkdir()
    with fsimages.loop_mounted(image, where, "loop") as root:
        (root / "kept.txt").write_bytes(b"kept\n")
        (root / "gone.txt").write_bytes(b"gone\n" * 100)
        inode = (root / "gone.txt").stat().st_ino
        os.sync()
        (root / "gone.txt").unlink()
    text = _debugfs(image, f"stat <{inode}>")
    dtime = re.search(r"dtime: 0x([0-9a-f]+)", text)
    assert dtime, text
    assert "Links: 0" in text
    done = run_bitwitness("stat", image, "--inode", str(inode), "--json")
    assert done.exit_code == 0, done.stderr
    ours = done.json()
    assert (ours["deleted"], ours["allocated"]) == (True, False)
    assert _iso(ours["deleted_time"]) == _when(int(dtime.group(1), 16) * 1_000_000_000)
    cat = subprocess.run([*BW, "cat", str(image), "--inode", str(inode)], capture_output=True,
                         text=True, check=False)
    assert cat.returncode == 1
    assert "not recoverable" in cat.stderr
    assert "/gone.txt" not in _ls(image)


@pytest.mark.parametrize("kind", ["ext2", "ext3", "ext4"])
def test_long_symlink_targets_are_read_from_their_block(tmp_path: Path, kind: str) -> None:
    """A link target of 60 bytes or more lies in a data block (ext4: mapped by extents),
    where TSK 4.x gives no target (istat shows none): ``stat``/``ls --json`` gave
    ``link: null``. The target is the one mke2fs -d copied (os.readlink of the source)."""
    require_tool(f"mkfs.{kind}")
    staging = tmp_path / "staging"
    staging.mkdir()
    target = "/this/is/a/very/long/symlink/target/that/exceeds/sixty/bytes/for/sure/indeed"
    (staging / "long").symlink_to(target)
    (staging / "short").symlink_to("near")
    image = tmp_path / f"{kind}.img"
    subprocess.run(["truncate", "-s", "16M", str(image)], check=True)
    subprocess.run([f"mkfs.{kind}", "-q", "-F", "-d", str(staging), str(image)], check=True)
    for name in ("long", "short"):
        done = run_bitwitness("stat", "--json", image, f"/{name}")
        assert done.exit_code == 0, done.stderr
        assert done.json()["link"] == str((staging / name).readlink())


def test_a_two_level_hashed_folder_lists_only_its_entries(tmp_path: Path) -> None:
    """5,000 names in a folder of 1 KiB blocks: the kernel indexes it in two levels, and TSK
    reads the interior index blocks as entries too (fls lists names like "^" carrying real
    files' inode numbers, as allocated). The listing is the kernel's: exactly the names it
    wrote, each with the inode the kernel gives it."""
    require_root()
    require_tool("mkfs.ext4", "debugfs", "fls")
    from fsimages import loop_mounted

    image = tmp_path / "htree.img"
    subprocess.run(["truncate", "-s", "64M", str(image)], check=True)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-b", "1024", "-E",
                    "hash_seed=11111111-2222-3333-4444-555555555555", str(image)], check=True)
    inodes = {}
    with loop_mounted(image, tmp_path / "m") as mounted:
        (mounted / "big").mkdir()
        for n in range(1, 5001):  # names and seed that give TSK's extra names
            (mounted / "big" / f"file_with_a_longish_name_{n}.txt").write_bytes(b"%d\n" % n)
        inodes = {p.name: p.stat().st_ino for p in (mounted / "big").iterdir()}
    htree = subprocess.run(["debugfs", "-R", "htree /big", str(image)], capture_output=True,
                           text=True, check=False).stdout
    assert "Indirect levels: 1" in htree
    folder = next(line.split()[1].rstrip(":") for line in subprocess.run(
        ["fls", str(image)], capture_output=True, text=True, check=True).stdout.splitlines()
        if line.endswith("\tbig"))
    theirs = subprocess.run(["fls", str(image), folder], capture_output=True, check=True
                            ).stdout.decode("utf-8", "replace").splitlines()
    assert len(theirs) > len(inodes)  # TSK's extra names: without them the test means nothing
    listing = run_bitwitness("ls", "--json", image, "/big")
    assert listing.exit_code == 0, listing.stderr
    ours = {e["name"]: int(e["inode"]) for e in listing.json()["entries"]}
    assert ours == inodes
