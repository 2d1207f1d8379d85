"""ext2/ext3 files mapped through the triple-indirect pointer or split into tens of thousands
of runs, read with the pytsk3 that scripts/build-pytsk3.sh builds: listed, stated and read in
bounded time, every byte as written.

TSK's own walk of indirect blocks (fls, icat and istat of TSK 4.11 to 4.15, and PyPI's pytsk3)
does not stop at a file's end past the triple-indirect pointer: icat takes 15 s of CPU on the
70 MiB file below and hours on the sparse 4 GiB one, and pytsk3 makes that walk for every entry
of a folder it lists. The independent readers here are debugfs (``dump``, and ``bmap`` for the
block behind a logical block) and the bytes written; every command runs in its own process with
a timeout, so an unfixed TSK fails these tests instead of hanging them. (The file of 61,440
runs costs an unfixed TSK only seconds: what bounds its time is the run list's end, which the
build check below stands for.)
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import random
import re
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import require_tool, run_bitwitness

from bitwitness.errors import FileSystemError
from bitwitness.image import open_image
from bitwitness.report.browse import tsk
from bitwitness.report.browse.filesystem import open_filesystem

#: Past this many seconds a command is taken as hung (each takes well under 5 s here).
HUNG = 120


def _bitwitness(*args: str | Path) -> bytes:
    """stdout of ``bitwitness ARGS`` in a process of its own, killed when it hangs."""
    done = subprocess.run([sys.executable, "-m", "bitwitness", *map(os.fspath, args)],
                          capture_output=True, timeout=HUNG, check=False)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return done.stdout


def _debugfs(image: Path, request: str, *, write: bool = False) -> str:
    args = ["debugfs", *(["-w"] if write else []), "-R", request, os.fspath(image)]
    return subprocess.run(args, capture_output=True, text=True, check=True,
                          timeout=HUNG).stdout


def _ext3(path: Path, size: str, block: int, source: Path) -> Path:
    subprocess.run(["truncate", "-s", size, os.fspath(path)], check=True)
    subprocess.run(["mkfs.ext3", "-q", "-F", "-b", str(block), os.fspath(path)], check=True)
    _debugfs(path, f"write {source} file", write=True)
    return path


@pytest.fixture(scope="module")
def one_k(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    """1 KiB blocks, one file of 70 MiB: its last 5.7 MiB hang off the triple-indirect pointer
    (12 + 256 + 65,536 blocks before it)."""
    require_tool("mkfs.ext3", "debugfs")
    base = tmp_path_factory.mktemp("ext-1k")
    data = random.Random(70).randbytes(70 << 20)
    source = base / "source.bin"
    source.write_bytes(data)
    return _ext3(base / "ext3-1k.img", "100M", 1024, source), data


#: Where the sparse file holds data: its first bytes, the double-indirect region, past the
#: triple-indirect pointer (block 12 + 1,024 + 1,048,576) and its last bytes.
SPARSE_SIZE = (4 << 30) + (64 << 20)
TRIPLE = (12 + 1024 + 1024 * 1024) * 4096
SPARSE_DATA = {0: 65536, 8 << 20: 65536, TRIPLE + (1 << 20): 65536, SPARSE_SIZE - 65536: 65536}


@pytest.fixture(scope="module")
def sparse(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """4 KiB blocks, one sparse file of 4 GiB + 64 MiB holding 256 KiB of data."""
    require_tool("mkfs.ext3", "debugfs")
    base = tmp_path_factory.mktemp("ext-sparse")
    source = base / "sparse.bin"
    chunks = random.Random(4)
    with source.open("wb") as out:
        out.truncate(SPARSE_SIZE)
        for offset, length in SPARSE_DATA.items():
            out.seek(offset)
            out.write(chunks.randbytes(length))
    return _ext3(base / "ext3-4k.img", "64M", 4096, source), source


def test_the_installed_pytsk3_carries_the_indirect_block_fix() -> None:
    """The README's commands run scripts/build-pytsk3.sh; without it ext is refused."""
    assert tsk.has_indirect_fix(), "run scripts/build-pytsk3.sh"


def test_a_file_past_the_triple_indirect_pointer_reads_as_debugfs_dumps_it(
        one_k: tuple[Path, bytes], tmp_path: Path) -> None:
    image, data = one_k
    listing = _bitwitness("ls", "-l", image).decode()
    assert f" {len(data)} " in next(line for line in listing.splitlines()
                                    if line.endswith(" file"))
    dumped = tmp_path / "dumped"
    _debugfs(image, f"dump /file {dumped}")
    ours = hashlib.sha256(_bitwitness("cat", image, "/file")).hexdigest()
    assert ours == hashlib.sha256(dumped.read_bytes()).hexdigest()
    assert ours == hashlib.sha256(data).hexdigest()


def _block_at(runs: list[tuple[int | None, int]], logical: int) -> int:
    """The block behind logical block ``logical`` in ``runs``; 0 for a hole, as bmap says."""
    for start, length in runs:
        if logical < length:
            return 0 if start is None else start + logical
        logical -= length
    return 0


def test_a_sparse_file_beyond_4_gib_lists_stats_and_reads_in_bounded_time(
        sparse: tuple[Path, Path]) -> None:
    image, source = sparse
    listing = _bitwitness("ls", "-l", image).decode()
    assert f" {SPARSE_SIZE} " in listing
    stat = json.loads(_bitwitness("stat", "--json", image, "/file"))
    data = next(a for a in stat["attributes"] if a["type"] == 1)
    runs = [(start, length) for start, length in data["runs"]]
    inode = stat["meta_address"]
    last = (SPARSE_SIZE - 1) // 4096
    logical = sorted({0, 11, 12, 1035, 1036, 2048, 1049611, 1049612, TRIPLE // 4096 + 256,
                      (TRIPLE + (1 << 20)) // 4096, last - 15, last})
    for block in logical:
        said = _debugfs(image, f"bmap <{inode}> {block}").split()
        assert _block_at(runs, block) == int(said[-1]), block
    shown = _bitwitness("stat", image, "/file").decode()
    folded = [part.split("+") for part in shown.split("  runs:", 1)[1].split("\n")[0].split()]
    assert sum(int(length) for _, length in folded) == sum(length for _, length in runs)
    assert len(folded) < len(runs) / 10  # one run per indirect block, folded for reading
    assert all(not (a == b == "sparse") for (a, _), (b, _) in itertools.pairwise(folded))
    with open_image(image) as stream, source.open("rb") as written:
        fs = open_filesystem(stream)
        entry = fs.lookup("/file")
        for offset, length in SPARSE_DATA.items():
            written.seek(offset - 4096 if offset else 0)
            want = written.read(length + 8192)
            assert fs.read(entry, max(offset - 4096, 0), len(want)) == want, offset


@pytest.fixture(scope="module")
def fragmented(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """1 KiB blocks, a 60 MiB file whose indirect blocks are rewritten to name every other
    block from 1,000 on: 61,440 runs of one block (the blocks hold other data; debugfs follows
    the same pointers). Where its indirect blocks lie comes from debugfs."""
    require_tool("mkfs.ext2", "debugfs")
    base = tmp_path_factory.mktemp("ext-fragmented")
    source = base / "source.bin"
    source.write_bytes(random.Random(61).randbytes(60 << 20))
    image = base / "ext2-fragmented.img"
    subprocess.run(["truncate", "-s", "200M", os.fspath(image)], check=True)
    subprocess.run(["mkfs.ext2", "-q", "-F", "-b", "1024", os.fspath(image)], check=True)
    _debugfs(image, f"write {source} file", write=True)
    pointers = [int(b) for b in re.findall(r"\(IND\):(\d+)", _debugfs(image, "stat /file"))]
    assert len(pointers) == 240
    with image.open("r+b") as raw:
        for index, block in enumerate(pointers):
            raw.seek(block * 1024)
            raw.write(struct.pack("<256I", *(1000 + 2 * (index * 256 + i) % 190_000
                                             for i in range(256))))
    return image


def test_a_file_of_sixty_thousand_runs_reads_as_debugfs_dumps_it(fragmented: Path,
                                                                   tmp_path: Path) -> None:
    dumped = tmp_path / "dumped"
    _debugfs(fragmented, f"dump /file {dumped}")
    ours = _bitwitness("cat", fragmented, "/file")
    assert hashlib.sha256(ours).hexdigest() == hashlib.sha256(dumped.read_bytes()).hexdigest()
    stat = json.loads(_bitwitness("stat", "--json", fragmented, "/file"))
    data = next(a for a in stat["attributes"] if a["type"] == 1)
    assert len(data["runs"]) > 60_000
    for block in (12, 268, 269, 30_000, 61_439):
        said = _debugfs(fragmented, f"bmap <{stat['meta_address']}> {block}").split()
        assert _block_at(data["runs"], block) == int(said[-1]), block


def test_an_unfixed_pytsk3_is_refused_on_ext_with_the_script_named(
        one_k: tuple[Path, bytes], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tsk, "has_indirect_fix", lambda: False)
    image, _ = one_k
    with open_image(image) as stream, pytest.raises(FileSystemError,
                                                     match=r"scripts/build-pytsk3\.sh"):
        open_filesystem(stream)
    result = run_bitwitness("ls", image)
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1
    assert "build-pytsk3.sh" in result.stderr


def test_a_folder_whose_extents_need_a_tree_block_lists_as_debugfs_does(tmp_path: Path) -> None:
    """A folder of 3,000 names on 1 KiB blocks (``mkfs.ext4 -d`` spreads its blocks: more
    extents than the inode holds, so a tree block indexes them): TSK 4.11's fls lists nothing
    in it ("No filler entry for 0"); the pytsk3 built here lists every name, and ``ls`` and
    ``stat`` give what debugfs gives."""
    require_tool("mkfs.ext4", "debugfs")
    tree = tmp_path / "tree"
    (tree / "many").mkdir(parents=True)
    names = {f"a-file-with-a-longish-name-{n:05d}.txt" for n in range(3000)}
    for name in names:
        (tree / "many" / name).write_bytes(name.encode())
    image = tmp_path / "fs.img"
    image.write_bytes(bytes(32 << 20))
    subprocess.run(["mkfs.ext4", "-q", "-F", "-b", "1024", "-d", str(tree), str(image)],
                   check=True, capture_output=True, timeout=HUNG)
    stat = subprocess.run(["debugfs", "-R", "stat /many", str(image)], capture_output=True,
                          text=True, check=True, timeout=HUNG).stdout
    assert "(ETB0)" in stat  # the folder's extents do need a tree block
    listed = subprocess.run(["debugfs", "-R", "ls -p /many", str(image)], capture_output=True,
                            text=True, check=True, timeout=HUNG).stdout
    theirs = {fields[5]: int(fields[1]) for fields in
              (line.split("/") for line in listed.splitlines() if line.startswith("/"))
              if fields[5] not in (".", "..")}
    assert set(theirs) == names
    doc = json.loads(_bitwitness("ls", "--json", image, "/many"))
    ours = {e["name"]: int(e["inode"]) for e in doc["entries"]}
    assert ours == theirs
    assert _bitwitness("cat", image, "/many/a-file-with-a-longish-name-02999.txt") == \
        b"a-file-with-a-longish-name-02999.txt"
