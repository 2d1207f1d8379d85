"""The jobs bench/run_all.py times, the data they read, and the check of each pair's outputs.

Every source image is made by the peers' side (ewfacquire, mkfs.ext4), never by BitWitness, so
that both tools read the same independent input. Each job names its lower bound and the target
issue 21 sets for it; each pair's outputs are compared after the timings, so that a fast wrong
answer cannot pass.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from _data import disk_blocks, make_disk_file
from bench_browse import make_ntfs, make_tree

#: ewfacquire's options for an E01 made without questions (case fields given, one segment).
EWFACQUIRE = ("ewfacquire", "-u", "-q", "-d", "sha1", "-S", "8GiB", "-C", "bench", "-D", "bench",
              "-E", "1", "-e", "bench", "-N", "bench", "-m", "fixed", "-M", "physical")
BIG_FILE = "big.bin"  #: the one file of the file system ``cat`` reads
#: Zero bytes become 0xFF in that file: ``mkfs.ext4 -d`` leaves a hole for every zero block, and
#: icat (TSK 4.11) fails on such a file of many extents ("fs_attr_add_run: error adding
#: additional run ... No filler entry for 0"); runs of 0xFF compress as the zeros did.
_NO_ZERO = bytes.maketrans(b"\x00", b"\xff")


@dataclass(frozen=True)
class Sources:
    """What the jobs read, made once per run in the work folder."""

    media: Path  #: disk-like raw media (bench/_data.py)
    e01: Path  #: ``media`` acquired by ewfacquire (deflate fast, MD5 + SHA-1)
    browse: Path  #: an E01 of an ext4 file system holding ``files`` small files
    browse_size: int  #: bytes of that file system
    files: int
    catfs: Path  #: an E01 of an ext4 file system holding one large file, :data:`BIG_FILE`
    cat_size: int  #: bytes of that file
    cat_inode: str  #: its inode, as ``fls`` names it
    small: Path  #: a 1 MiB E01, for start-up times
    #: an E01 of an NTFS file system holding the same ``files`` small files, None where it
    #: cannot be built here (``ntfs_note`` says why)
    browse_ntfs: Path | None = None
    ntfs_note: str | None = None


@dataclass(frozen=True)
class Target:
    """What issue 21 asks of a job: a least ratio (peer time ÷ ours), a most ``ours ÷ bound``,
    a most output size (ours ÷ peer's); ``text`` says it in the table."""

    text: str
    min_ratio: float | None = None
    max_bound: float | None = None
    max_size: float | None = None

    def met(self, ratio: float, over_bound: float, size: float | None) -> bool | None:
        """Whether the figures meet the target; None where there is none."""
        if self.min_ratio is None and self.max_bound is None and self.max_size is None:
            return None
        return ((self.min_ratio is None or ratio >= self.min_ratio)
                and (self.max_bound is None or over_bound <= self.max_bound)
                and (self.max_size is None or (size is not None and size < self.max_size)))


NO_TARGET = Target("—")


@dataclass(frozen=True)
class Job:
    """A BitWitness command and its peer's, each made for a fresh output folder.

    ``bound`` names the job's lower bound: ``md5`` the larger of ``md5sum`` of the media alone and
    BitWitness's CPU ÷ cores; ``floor`` that and ``cp`` + ``sync`` of the media (a job that writes
    a raw copy); ``cpu`` BitWitness's CPU ÷ cores alone. ``data`` is the bytes the job reads, that
    CPU seconds per GiB are per. With ``stdout`` each tool's standard output goes to a file in
    its folder; ``output`` is a glob of the files whose sizes are compared; ``check`` compares
    the two folders after the timings and returns what differs, or None."""

    name: str
    peer: str
    ours: Callable[[Path], list[str]]
    theirs: Callable[[Path], list[str]]
    data: int
    bound: str
    target: Target = NO_TARGET
    pinned_target: Target | None = None  #: the target on one core, where it differs
    stdout: bool = False
    output: tuple[str, str] | None = None  #: (our glob, the peer's glob)
    check: Callable[[Path, Path], str | None] | None = field(default=None, repr=False)
    #: BitWitness's exit statuses that are no failure of the run (export's 1: some files
    #: listed as not exported, NTFS's reserved MFT entries among them with ``--all``)
    ours_ok: tuple[int, ...] = (0,)


def _ext4_e01(folder: Path, tree: Path, size: int, inodes: int) -> Path:
    """An ext4 file system of ``size`` bytes built from ``tree`` (``mkfs.ext4 -d``), acquired
    into ``folder/fs.E01`` by ewfacquire; the tree and the raw file system are removed."""
    fs = folder / "fs.img"
    with fs.open("wb") as fh:
        fh.truncate(size)
    subprocess.run(["mkfs.ext4", "-q", "-N", str(inodes), "-d", str(tree), str(fs)], check=True)
    shutil.rmtree(tree)
    subprocess.run([*EWFACQUIRE, "-c", "deflate:fast", "-t", str(folder / "fs"), str(fs)],
                   check=True, capture_output=True)
    fs.unlink()
    return folder / "fs.E01"


def _ntfs_missing() -> str | None:
    """Why an NTFS file system cannot be built here (``mkntfs``, then the tree written through
    ``ntfs-3g``: root and /dev/fuse), or None."""
    missing = [t for t in ("mkntfs", "ntfs-3g", "umount") if shutil.which(t) is None]
    if missing:
        return f"{', '.join(missing)} not installed"
    if os.geteuid() != 0 or not Path("/dev/fuse").exists():
        return "writing it through ntfs-3g needs root and /dev/fuse"
    return None


#: The share of the NTFS's files removed once written, in percent: seized drives hold deleted
#: names (and TSK lists and recovers them), so its listings and exports carry some.
NTFS_DELETED = 10


def _ntfs_e01(folder: Path, files: int, size: int) -> Path:
    """An NTFS file system of ``size`` bytes (``mkntfs``) holding ``files`` small files written
    through ``ntfs-3g``, :data:`NTFS_DELETED` percent of them removed again, acquired into
    ``folder/fs.E01`` by ewfacquire."""
    fs = folder / "fs.img"
    with fs.open("wb") as fh:
        fh.truncate(size)
    make_ntfs(fs, folder / "mnt", files, NTFS_DELETED)
    subprocess.run([*EWFACQUIRE, "-c", "deflate:fast", "-t", str(folder / "fs"), str(fs)],
                   check=True, capture_output=True)
    fs.unlink()
    return folder / "fs.E01"


def prepare(work: Path, size: int, files: int) -> Sources:
    """Make every source in ``work``: the media and its E01, the two file systems, a small E01."""
    media = make_disk_file(work / "media.raw", size)
    subprocess.run([*EWFACQUIRE, "-c", "deflate:fast", "-t", str(work / "image"), str(media)],
                   check=True, capture_output=True)
    browse_dir = work / "browse"
    browse_dir.mkdir()
    make_tree(browse_dir / "tree", files)
    browse_size = (max(64, files * 6 // 1024 + 64)) << 20  # inodes and blocks for small files
    browse = _ext4_e01(browse_dir, browse_dir / "tree", browse_size, files + 1024)
    cat_dir = work / "cat"
    (cat_dir / "tree").mkdir(parents=True)
    cat_size = max(1 << 20, size // 4)
    with (cat_dir / "tree" / BIG_FILE).open("wb") as fh:
        for block in disk_blocks(cat_size, seed=2):
            fh.write(block.translate(_NO_ZERO))
    catfs = _ext4_e01(cat_dir, cat_dir / "tree", cat_size + cat_size // 8 + (32 << 20), 1024)
    listing = subprocess.run(["fls", "-p", str(catfs)], capture_output=True, text=True,
                             check=True).stdout
    found = re.search(rf"^r/r (\d+(?:-\d+-\d+)?):\t{re.escape(BIG_FILE)}$", listing, re.M)
    if found is None:
        raise RuntimeError(f"fls does not list {BIG_FILE} in {catfs}:\n{listing}")
    small_media = make_disk_file(work / "small.raw", 1 << 20, seed=3)
    subprocess.run([*EWFACQUIRE, "-c", "deflate:fast", "-t", str(work / "small"),
                    str(small_media)], check=True, capture_output=True)
    small_media.unlink()
    ntfs_note = _ntfs_missing()
    browse_ntfs = None
    if ntfs_note is None:
        (work / "ntfs").mkdir()
        browse_ntfs = _ntfs_e01(work / "ntfs", files, browse_size)
    return Sources(media=media, e01=work / "image.E01", browse=browse, browse_size=browse_size,
                   files=files, catfs=catfs, cat_size=cat_size, cat_inode=found.group(1),
                   small=work / "small.E01", browse_ntfs=browse_ntfs, ntfs_note=ntfs_note)


def _sorted_lines(path: Path) -> list[str]:
    return sorted(path.read_text(errors="replace").splitlines())


def _same_lines(ours: Path, theirs: Path) -> str | None:
    if _sorted_lines(ours / "stdout") != _sorted_lines(theirs / "stdout"):
        return "its listing differs from the peer's"
    return None


def _same_count(ours: Path, theirs: Path) -> str | None:
    mine, peer = len(_sorted_lines(ours / "stdout")), len(_sorted_lines(theirs / "stdout"))
    return None if mine == peer else f"{mine} rows against the peer's {peer}"


def _file_hashes(folder: Path, skip: frozenset[str] = frozenset()) -> dict[str, str]:
    """SHA-256 of every non-empty file under ``folder`` (tsk_recover writes no empty file)."""
    found = {}
    for root, _, names in os.walk(folder):
        for name in names:
            path = Path(root, name)
            if name in skip or path.stat().st_size == 0:
                continue
            found[str(path.relative_to(folder))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def _same_files(ours: Path, theirs: Path, under: str = "") -> str | None:
    mine = _file_hashes(ours / "exported" / under, frozenset({"manifest.json", "manifest.csv"}))
    peer = _file_hashes(theirs / "recovered" / under)
    if mine != peer:
        return (f"{len(mine)} non-empty files exported, {len(peer)} recovered, "
                f"{len(set(mine.items()) ^ set(peer.items()))} differ")
    return None


def _same_tree_files(ours: Path, theirs: Path) -> str | None:
    """:func:`_same_files` below ``tree``: on NTFS the metadata files (``$MFT``, ``$Secure``,
    ...) are exported by BitWitness as any file and left out by ``tsk_recover``."""
    return _same_files(ours, theirs, "tree")


def _digest(path: Path) -> bytes:
    """SHA-256 of ``path``, read in blocks (the file may be GiBs at large sizes)."""
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").digest()


def _same_bytes(ours: Path, theirs: Path) -> str | None:
    if _digest(ours / "stdout") != _digest(theirs / "stdout"):
        return "its output differs from icat's"
    return None


def _raw_size(expected: int) -> Callable[[Path, Path], str | None]:
    def check(ours: Path, theirs: Path) -> str | None:
        sizes = [p.stat().st_size for p in (ours / "bw.raw", *theirs.glob("*.raw"))]
        return None if sizes == [expected, expected] else f"raw outputs of {sizes} bytes"
    return check


def jobs(src: Sources, bw: list[str]) -> list[Job]:
    """Every job of issue 21's table that has a peer, on ``src``; ``bw`` starts BitWitness."""
    size = src.media.stat().st_size
    media, e01 = str(src.media), str(src.e01)

    def acquire(*options: str) -> Callable[[Path], list[str]]:
        return lambda out: [*bw, "acquire", media, "-o", str(out / "bw"), "--hash", "md5,sha1",
                            *options, "--json"]

    def ewfacquire(level: str) -> Callable[[Path], list[str]]:
        return lambda out: [*EWFACQUIRE, "-c", f"deflate:{level}", "-t", str(out / "ewf"), media]

    e01_out = ("bw.E??", "ewf.E??")
    return [
        Job("acquire E01 fast", "ewfacquire -c deflate:fast", acquire("--compress", "fast"),
            ewfacquire("fast"), size, "md5", Target("≥ 5x, ≤ 1.1 bound", 5.0, 1.1),
            output=e01_out),
        Job("acquire E01 best", "ewfacquire -c deflate:best", acquire("--compress", "best"),
            ewfacquire("best"), size, "md5", Target("≥ 3x, smaller", 3.0, max_size=1.0),
            output=e01_out),
        Job("acquire raw", "dc3dd", acquire("--format", "raw"),
            lambda out: ["dc3dd", f"if={media}", f"of={out / 'dc3dd.raw'}", "hash=md5",
                         "hash=sha1", f"log={out / 'dc3dd.log'}"],
            size, "floor", Target("≤ 1.1 floor", max_bound=1.1),
            pinned_target=Target("≥ 1x (1 core)", 1.0), check=_raw_size(size)),
        Job("verify", "ewfverify -d sha1", lambda out: [*bw, "verify", "--json", e01],
            lambda out: ["ewfverify", "-q", "-d", "sha1", e01], size, "md5", Target("≥ 2x", 2.0)),
        Job("verify --second-reader", "ewfverify -d sha1",
            lambda out: [*bw, "verify", "--second-reader", "--json", e01],
            lambda out: ["ewfverify", "-q", "-d", "sha1", e01], size, "md5", Target("≥ 1x", 1.0)),
        Job("convert E01 -> raw", "ewfexport -f raw",
            lambda out: [*bw, "convert", e01, "-o", str(out / "bw"), "--to", "raw",
                         "--hash", "md5,sha1"],
            lambda out: ["ewfexport", "-u", "-q", "-f", "raw", "-d", "sha1", "-t",
                         str(out / "ewf"), e01],
            size, "floor", Target("≥ 1.5x", 1.5), check=_raw_size(size)),
        Job("convert raw -> E01", "ewfacquire -c deflate:fast",
            lambda out: [*bw, "convert", media, "-o", str(out / "bw"), "--to", "e01",
                         "--compress", "fast", "--hash", "md5,sha1"],
            ewfacquire("fast"), size, "md5", Target("≥ 5x (as acquire)", 5.0), output=e01_out),
        Job(f"ls -r --all ({src.files:,} files)", "fls -r -p",
            lambda out: [*bw, "ls", "-r", "--all", str(src.browse)],
            lambda out: ["fls", "-r", "-p", str(src.browse)], src.browse_size, "cpu",
            Target("≥ 0.67x (≤ 1.5x fls time)", 1 / 1.5), stdout=True, check=_same_lines),
        Job("timeline", "fls -r -m /", lambda out: [*bw, "timeline", str(src.browse)],
            lambda out: ["fls", "-r", "-m", "/", str(src.browse)], src.browse_size, "cpu",
            Target("≥ 0.67x (≤ 1.5x fls time)", 1 / 1.5), stdout=True, check=_same_count),
        Job("export --all (MD5 + SHA-256)", "tsk_recover -a",
            lambda out: [*bw, "export", str(src.browse), "/", "--all", "--to",
                         str(out / "exported")],
            lambda out: ["tsk_recover", "-a", str(src.browse), str(out / "recovered")],
            src.browse_size, "cpu", Target("≥ 1x", 1.0), check=_same_files),
        Job(f"cat of a {src.cat_size >> 20} MiB file", "icat",
            lambda out: [*bw, "cat", str(src.catfs), f"/{BIG_FILE}"],
            lambda out: ["icat", str(src.catfs), src.cat_inode], src.cat_size, "cpu",
            stdout=True, check=_same_bytes),
        *_ntfs_jobs(src, bw),
    ]


def _ntfs_jobs(src: Sources, bw: list[str]) -> list[Job]:
    """The three browsing jobs on the NTFS file system, where it was built."""
    ntfs = str(src.browse_ntfs)
    if src.browse_ntfs is None:
        return []
    return [
        Job(f"NTFS ls -r --all ({src.files:,} files, {NTFS_DELETED}% deleted)", "fls -r -p",
            lambda out: [*bw, "ls", "-r", "--all", ntfs], lambda out: ["fls", "-r", "-p", ntfs],
            src.browse_size, "cpu", Target("≥ 0.67x (≤ 1.5x fls time)", 1 / 1.5), stdout=True,
            check=_same_lines),
        Job("NTFS timeline", "fls -r -m /", lambda out: [*bw, "timeline", ntfs],
            lambda out: ["fls", "-r", "-m", "/", ntfs], src.browse_size, "cpu",
            Target("≥ 0.67x (≤ 1.5x fls time)", 1 / 1.5), stdout=True, check=_same_count),
        # -e: allocated and deleted files, as --all (-a would leave the deleted ones out)
        Job("NTFS export --all (MD5 + SHA-256)", "tsk_recover -e",
            lambda out: [*bw, "export", ntfs, "/", "--all", "--to", str(out / "exported")],
            lambda out: ["tsk_recover", "-e", ntfs, str(out / "recovered")],
            src.browse_size, "cpu", Target("≥ 1x", 1.0), check=_same_tree_files,
            ours_ok=(0, 1)),
    ]
