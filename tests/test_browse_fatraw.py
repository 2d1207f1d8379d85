"""FAT entries The Sleuth Kit refuses, read from the raw directory with their long names and
deleted ones too, on images mtools wrote and ``tests/fsimages.py`` (``crafted_fat``) damaged.

Each damaged entry is compared with what ``fls``/``icat`` give for it on the same image before
the damage (kept beside it) and with what its bytes hold: a long name whose checksum still
matches its (damaged) 8.3 entry is the name ``fls`` listed before; one whose checksum no longer
matches is dropped for the 8.3 name; content is what mtools wrote, a deleted file's recovered
as TSK recovers it, and one whose clusters went to another file is not recoverable.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from collections import Counter
from pathlib import Path

import fsimages
import pytest
from conftest import require_tool, snapshot
from test_browse_parity import _as_shown, _bitwitness

#: fls's name before the damage -> what the damaged entry's bytes now read (a ``/`` as the
#: fourth character of the 8.3 name; its long name gone where its checksum no longer matches).
RENAMED = {"hello.txt": "hel/o.txt", "Orphan Long Name.txt": "ORP/AN~1.TXT",
           "_ONE.TXT": "_ON/.TXT"}
#: Name before the damage -> the content mtools wrote (deleted ones recovered).
CONTENT = {"Long Secret Name.txt": "Long Secret Name.txt", "hello.txt": "hello.txt",
           "Orphan Long Name.txt": "Orphan Long Name.txt",
           "gone long name.txt": "gone long name.txt", "_ONE.TXT": "GONE.TXT"}
_LINE = re.compile(r"^(\S+) (\* )?(\d+):\t(.*)$")


@pytest.fixture(scope="module", params=[12, 32])
def crafted(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_tool("fls", "icat", "istat")
    folder = tmp_path_factory.mktemp(f"crafted{request.param}")
    try:
        return fsimages.BUILDERS[f"crafted_fat{request.param}"](folder / "fat.img")
    except fsimages.Unavailable as exc:
        pytest.skip(f"crafted FAT cannot be built here: {exc}")


def _fls(image: Path) -> list[str]:
    out = subprocess.run(["fls", "-r", "-p", str(image)], capture_output=True, check=True)
    return [_as_shown(line) for line in out.stdout.splitlines()]


def _parsed(lines: list[str]) -> dict[str, tuple[str, bool, str]]:
    """path -> (address, deleted, type) of each fls-style line."""
    found = {}
    for line in lines:
        match = _LINE.match(line)
        assert match, line
        found[match.group(4)] = (match.group(3), bool(match.group(2)), match.group(1))
    return found


def _crafted_addresses(intact: dict[str, tuple[str, bool, str]]) -> dict[str, str]:
    """path before the damage -> address, for every damaged entry."""
    names = {*CONTENT, "overwritten n"}
    return {path: item[0] for path, item in intact.items() if path.rpartition("/")[2] in names}


def test_listing_reads_refused_entries_as_fls_did_before_the_damage(crafted: Path) -> None:
    before = snapshot([crafted])
    intact_lines = _fls(fsimages.intact_copy(crafted))
    intact = _parsed(intact_lines)
    damaged = _parsed(_fls(crafted))
    crafted_at = _crafted_addresses(intact)
    assert len(crafted_at) == 12  # six damaged entries in / and six in /docs
    listed_after = {address for address, _, _ in damaged.values()}
    for path, address in crafted_at.items():  # TSK refuses every damaged entry
        assert address not in listed_after, path
        run = subprocess.run(["icat", str(crafted), address], capture_output=True, check=False)
        assert run.returncode != 0 or run.stdout == b"", path
    result = _bitwitness("ls", crafted, "-r", "--all")
    assert result.returncode == 0, result.stderr
    ours = Counter(result.stdout.decode("utf-8").splitlines())
    expected = Counter()
    for line in intact_lines:
        head, _, name = line.partition(":\t")
        folder, _, base = name.rpartition("/")
        base = RENAMED.get(base, base)
        expected[f"{head}:\t{folder + '/' if folder else ''}{base}"] += 1
    assert ours == expected
    # TSK glues the long name of an entry it refused onto the next one it accepts; ours not
    for folder in ("", "docs/"):
        plain = intact[f"{folder}plain.txt"][0]
        assert damaged[f"{folder}gone long name.txt"][0] == plain
    assert b"The Sleuth Kit names this entry 'gone long name.txt'" in result.stderr
    assert snapshot([crafted]) == before


def test_refused_entries_read_by_path_and_inode(crafted: Path) -> None:
    intact = _parsed(_fls(fsimages.intact_copy(crafted)))
    for path, address in _crafted_addresses(intact).items():
        folder, _, base = path.rpartition("/")
        if base not in CONTENT:
            continue
        spelled = "/" + (folder + "/" if folder else "") + RENAMED.get(base, base).replace(
            "/", "%2F")
        content = fsimages.CRAFTED_FAT_FILES[CONTENT[base]]
        stat = json.loads(_bitwitness("stat", crafted, spelled, "--json").stdout)
        assert (stat["inode"], stat["deleted"], stat["size"]) == (
            address, intact[path][1], len(content)), path
        assert stat["allocated"] is not intact[path][1]
        assert _bitwitness("cat", crafted, spelled).stdout == content, path
        assert _bitwitness("cat", crafted, "--inode", address).stdout == content, path
        if intact[path][1]:  # deleted: recovered as icat recovered it before the damage
            icat = subprocess.run(["icat", str(fsimages.intact_copy(crafted)), address],
                                  capture_output=True, check=True).stdout
            assert icat == content, path


def test_deleted_entry_whose_clusters_were_reused_is_not_recoverable(crafted: Path,
                                                                     tmp_path: Path) -> None:
    """mtools gives a FAT12 file the lowest free cluster (the deleted file's: icat then hands
    out the new file's bytes as the deleted one's) and a FAT32 file the one after the last it
    gave (the deleted file's content stays): ours is exit 1 and "not recoverable" for the
    first, the content written for the second, never another file's bytes."""
    intact = _parsed(_fls(fsimages.intact_copy(crafted)))
    content = fsimages.CRAFTED_FAT_FILES["overwritten name.txt"]
    lost = set()
    for path in ("overwritten n", "docs/overwritten n"):
        address = intact[path][0]
        icat = subprocess.run(["icat", str(fsimages.intact_copy(crafted)), address],
                              capture_output=True, check=False).stdout
        cat = _bitwitness("cat", crafted, "--inode", address)
        if icat == content:
            assert (cat.returncode, cat.stdout) == (0, content), path
            continue
        lost.add(address)
        assert cat.returncode == 1
        assert cat.stdout == b""
        assert b"not recoverable" in cat.stderr
    assert lost or "32" in crafted.parent.name
    out = tmp_path / "out"
    result = _bitwitness("export", crafted, "/", "--all", "--to", out)
    assert result.returncode == (1 if lost else 0), result.stderr
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    failed = {f["inode"]: f for f in manifest["failed"]}
    assert lost == set(failed)
    assert all("not recoverable" in f["reason"] for f in failed.values())
    rows = {r["inode"]: r for r in manifest["files"]}
    for path, item in intact.items():
        base = path.rpartition("/")[2]
        if base in CONTENT:
            content = fsimages.CRAFTED_FAT_FILES[CONTENT[base]]
            row = rows[item[0]]
            assert row["md5"] == hashlib.md5(content).hexdigest(), path  # noqa: S324
            assert out.joinpath(*row["target"].split("/")).read_bytes() == content


def test_raw_reader_names_entries_as_fls_on_the_intact_image(crafted: Path) -> None:
    """The raw reader over the sectors istat gives for each folder, against fls: long names,
    lower-case flags, deleted entries (``_`` first) and addresses, allocated and deleted."""
    from bitwitness.image import open_image
    from bitwitness.report.browse.fatraw import FatVolume

    intact = fsimages.intact_copy(crafted)
    listing = _parsed(_fls(intact))
    kind = "fat12" if "12" in crafted.parent.name else "fat32"
    stream = open_image(intact)
    try:
        volume = FatVolume(stream, 0, kind)
        for folder, inode in (("", "2"), ("docs/", listing["docs"][0])):
            istat = subprocess.run(["istat", str(intact), inode], capture_output=True,
                                   check=True, text=True).stdout
            sectors = [int(s) for s in istat.split("Sectors:\n", 1)[1].split()]
            ours = {(folder + e.name, str(e.inode), e.deleted)
                    for e in volume.entries([(s, 1) for s in sectors])
                    if e.name not in (".", "..")}
            theirs = {(path, address, deleted) for path, (address, deleted, kind_) in
                      listing.items() if path.rpartition("/")[0] + "/" == folder or (
                          not folder and "/" not in path)
                      if kind_ in ("r/r", "d/d") and "Volume Label" not in path}
            assert ours == theirs, folder
    finally:
        stream.close()


def test_listed_deleted_entry_whose_first_cluster_was_reused_is_not_recoverable(
        crafted: Path, tmp_path: Path) -> None:
    """The same deleted files on the undamaged image, where TSK lists them itself: on FAT12
    their first cluster is new.bin's (istat lists that sector for both) and icat hands out
    new.bin's bytes for them; cat gives what icat gives but exits 1 with "not recoverable",
    export lists them as failed. On FAT32 their content is theirs: cat exits 0 with it."""
    intact = fsimages.intact_copy(crafted)
    listed = _parsed(_fls(intact))
    content = fsimages.CRAFTED_FAT_FILES["overwritten name.txt"]

    def sectors(address: str) -> list[str]:
        out = subprocess.run(["istat", str(intact), address], capture_output=True, text=True,
                             check=True).stdout
        return out.split("Sectors:", 1)[1].split()

    lost = set()
    for path in ("overwritten n", "docs/overwritten n"):
        address = listed[path][0]
        new_bin = listed[f"{path.rpartition('/')[0]}/new.bin".lstrip("/")][0]
        icat = subprocess.run(["icat", str(intact), address], capture_output=True,
                              check=True).stdout
        cat = _bitwitness("cat", intact, "--inode", address)
        assert cat.stdout == icat, path
        if sectors(address)[0] in sectors(new_bin):
            lost.add(address)
            assert icat != content
            assert cat.returncode == 1, path
            assert b"not recoverable: the first cluster" in cat.stderr
        else:
            assert (cat.returncode, icat) == (0, content), path
    assert bool(lost) == crafted.parent.name.startswith("crafted12")
    out = tmp_path / "out"
    result = _bitwitness("export", intact, "/", "--all", "--to", out)
    assert result.returncode == (1 if lost else 0), result.stderr
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert {f["inode"] for f in manifest["failed"]} == lost


class _CountingStream:
    """Counts the reads made of a stream (wraps :meth:`pread`)."""

    def __init__(self, stream: object) -> None:
        self.reads = 0
        inner = stream.pread  # type: ignore[attr-defined]

        def pread(offset: int, size: int) -> bytes:
            self.reads += 1
            return inner(offset, size)

        stream.pread = pread  # type: ignore[attr-defined]


def _raw_file(fs: object, deleted: bool) -> tuple[object, object]:
    """An entry only the raw reader lists (a deleted one whose first cluster is free)."""
    from bitwitness.report.browse.entries import Selection

    for entry in fs.walk("/", recursive=True, selection=Selection.ALL):  # type: ignore[attr-defined]
        raw = fs._raw_of(entry)  # type: ignore[attr-defined]
        if raw is None or raw.deleted is not deleted or raw.is_dir:
            continue
        if not deleted or fs._fat.is_free(raw.first_cluster):  # type: ignore[attr-defined]
            return entry, raw
    raise AssertionError("no such entry")


def _slot(fat: object, inode: int) -> int:
    """Byte offset of the directory entry TSK numbers ``inode``."""
    per_sector = fat.sector // 32  # type: ignore[attr-defined]
    sector = fat.inode_base + (inode - 3) // per_sector  # type: ignore[attr-defined]
    return sector * fat.sector + (inode - 3) % per_sector * 32  # type: ignore[attr-defined]


def test_looping_chain_of_4_gib_ends_in_one_line_after_a_few_reads(crafted: Path) -> None:
    """Found by the filesystem fuzz target (fuzz/regressions/filesystem/fat32-chain-looping-
    for-4-gib): an entry only the raw reader lists, claiming 4 GiB over a cluster pointing at
    itself, was read up to the volume's cluster count (seconds per GiB) and a preview joined
    all of it in memory (9 GiB). The loop is now found within twice the chain's length (a
    typed error naming the cluster), and a preview reads no further than it shows."""
    import struct

    from bitwitness.errors import FileSystemError
    from bitwitness.report.browse.filesystem import open_filesystem
    from bitwitness.stream import BytesStream

    data = bytearray(crafted.read_bytes())
    fs = open_filesystem(BytesStream(bytes(data)))
    fat = fs._fat
    assert fat is not None
    _, raw = _raw_file(fs, deleted=False)
    struct.pack_into("<I", data, _slot(fat, raw.inode) + 28, 0xFFFF_F000)  # type: ignore[attr-defined]
    cluster = raw.first_cluster  # type: ignore[attr-defined]
    if fat.bits == 12:
        at = fat.fat_start * fat.sector + cluster + cluster // 2
        pair = struct.unpack_from("<H", data, at)[0]
        pair = (pair & 0x000F) | cluster << 4 if cluster & 1 else (pair & 0xF000) | cluster
        struct.pack_into("<H", data, at, pair)
    else:
        struct.pack_into("<I", data, fat.fat_start * fat.sector + cluster * 4, cluster)
    stream = BytesStream(bytes(data))
    fs = open_filesystem(stream)
    entry, raw = _raw_file(fs, deleted=False)
    assert entry.size == 0xFFFF_F000  # type: ignore[attr-defined]
    counter = _CountingStream(stream)
    assert len(fs.read(entry, 0, 100)) == 100  # type: ignore[arg-type]
    with pytest.raises(FileSystemError, match=f"loops back to cluster {cluster}"):
        for _ in fs.iter_content(entry):  # type: ignore[arg-type]
            pass
    assert counter.reads < 100


def test_deleted_entry_of_4_gib_is_judged_in_one_pass_over_the_fat(crafted: Path) -> None:
    """Found by the filesystem fuzz target (fuzz/regressions/filesystem/fat32-deleted-entry-
    of-150-mib): a deleted entry claiming more than the volume's free clusters had its
    recoverability judged with one read per cluster, on every stat and listing doubt. The FAT
    is now read a window at a time and the answer kept."""
    import struct

    from bitwitness.report.browse.filesystem import open_filesystem
    from bitwitness.stream import BytesStream

    data = bytearray(crafted.read_bytes())
    fs = open_filesystem(BytesStream(bytes(data)))
    assert fs._fat is not None
    _, raw = _raw_file(fs, deleted=True)
    struct.pack_into("<I", data, _slot(fs._fat, raw.inode) + 28, 0xFFFF_F000)  # type: ignore[attr-defined]
    stream = BytesStream(bytes(data))
    fs = open_filesystem(stream)
    entry, raw = _raw_file(fs, deleted=True)
    counter = _CountingStream(stream)
    for _ in range(3):
        note = fs.content_note(entry)  # type: ignore[arg-type]
        assert note is not None
        assert "too few free clusters" in note
    fat_bytes = fs._fat.clusters * fs._fat.bits // 8  # type: ignore[union-attr]
    assert counter.reads <= 3 + fat_bytes // (64 << 10) + 1  # the first cluster, each time
