"""Benchmark: browsing a file system of many files against The Sleuth Kit, same E01, same run.

Usage: ``python bench/bench_browse.py [--size 400MiB | --files 100000] [--fs ext4|ntfs]
[--deleted PERCENT] [--repeat 1] [--dir DIR]``

Builds an ext4 file system holding ``--files`` small files (default: one per 4 KiB of
``--size``, so 400MiB gives 102,400) in folders of 500 (``mkfs.ext4 -d``
from a generated tree), or with ``--fs ntfs`` an NTFS one (``mkntfs``, the tree written
through ``ntfs-3g``: needs root and /dev/fuse). With ``--deleted``, that share of the files
(every k-th) is removed once written (through ntfs-3g, or ``debugfs rm`` on ext4), so the
listings hold deleted names as seized drives do. It acquires the file system into an E01 with
``bitwitness acquire``, then times, in interleaved rounds (each tool's best kept):

* ``bitwitness ls -r --all``   against ``fls -r -p`` (target: at most 1.5x fls's time);
* ``bitwitness timeline``      against ``fls -r -m /`` (target: at most 1.5x);
* ``bitwitness export --all``  (MD5 and SHA-256 of every file, manifest) against
  ``tsk_recover -a`` (``-e`` with ``--deleted``: the deleted files too, as ``--all``; target:
  at least as fast), with a ``sync`` before (the previous round's trees are removed) and
  after, for both.

Each pair's outputs are compared (the same lines as fls, the same number of files as
tsk_recover), so that a fast wrong answer cannot pass. Prints times, ratios (BitWitness time /
TSK time: below 1, BitWitness is faster) and BitWitness's peak memory.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _args import BenchParser, work_folder
from _tool import bitwitness_command

PER_FOLDER = 500


def make_tree(root: Path, files: int) -> None:
    """``files`` small files (sizes 0 to a few KiB, distinct contents) in folders of 500."""
    for n in range(files):
        folder = root / f"d{n // PER_FOLDER:05d}"
        if n % PER_FOLDER == 0:
            folder.mkdir(parents=True)
        (folder / f"file{n:07d}.txt").write_bytes(f"{n}\n".encode() * (n % 97))


def removed(files: int, percent: int) -> list[str]:
    """The paths (below the tree's root) of every k-th file, ``percent`` of ``files``."""
    if percent <= 0:
        return []
    step = max(1, round(100 / percent))
    return [f"d{n // PER_FOLDER:05d}/file{n:07d}.txt" for n in range(1, files, step)]


def make_ntfs(fs: Path, mount: Path, files: int, deleted: int = 0) -> None:
    """An NTFS file system on the file ``fs`` (``mkntfs``) holding :func:`make_tree`'s
    ``files`` under ``tree``, written through ``ntfs-3g`` mounted at ``mount`` (root, FUSE),
    ``deleted`` percent of them removed again."""
    subprocess.run(["mkntfs", "-q", "-F", "-Q", str(fs)], check=True, capture_output=True)
    mount.mkdir(exist_ok=True)
    subprocess.run(["ntfs-3g", str(fs), str(mount)], check=True)
    try:
        make_tree(mount / "tree", files)
        for path in removed(files, deleted):
            (mount / "tree" / path).unlink()
    finally:
        subprocess.run(["umount", str(mount)], check=True)
    mount.rmdir()


def build(work: Path, files: int, kind: str = "ext4", deleted: int = 0) -> Path:
    image = work / "fs.E01"
    if image.exists():
        return image
    fs = work / "fs.img"
    size_mib = max(64, files * 6 // 1024 + 64)  # inodes and blocks for small files
    subprocess.run(["truncate", "-s", f"{size_mib}M", str(fs)], check=True)
    if kind == "ntfs":
        make_ntfs(fs, work / "mnt", files, deleted)
    else:
        tree = work / "tree"
        make_tree(tree, files)
        subprocess.run(["mkfs.ext4", "-q", "-N", str(files + 1024), "-d", str(tree), str(fs)],
                       check=True)
        shutil.rmtree(tree)
        gone = removed(files, deleted)
        if gone:  # one debugfs for all of them
            commands = work / "remove.debugfs"
            commands.write_text("".join(f"rm /{path}\n" for path in gone))
            subprocess.run(["debugfs", "-w", "-f", str(commands), str(fs)], check=True,
                           capture_output=True)
            commands.unlink()
    subprocess.run([*bitwitness_command(), "acquire", str(fs), "-o", str(work / "fs")],
                   check=True, capture_output=True)
    fs.unlink()
    return image


def timed(cmd: list[str], out: Path | None = None, *, sync: bool = False,
          ok: tuple[int, ...] = (0,)) -> tuple[float, int]:
    """Wall seconds of ``cmd`` (stdout to ``out``) and its peak RSS in KiB; an exit status
    outside ``ok`` stops the benchmark."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if sync:
        # what an earlier command, or the removal of a round's output trees, left dirty is
        # written back here, not charged to this command (tsk_recover runs right after the
        # removal of two trees of 100,000 files)
        os.sync()
    start = time.perf_counter()
    with (out or Path(os.devnull)).open("wb") as sink:
        status = subprocess.run(cmd, check=False, stdout=sink,
                                stderr=subprocess.DEVNULL).returncode
    if status not in ok:
        raise subprocess.CalledProcessError(status, cmd)
    if sync:
        subprocess.run(["sync"], check=True)
    seconds = time.perf_counter() - start
    return seconds, max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)


def lines(path: Path) -> list[str]:
    return sorted(path.read_text(errors="replace").splitlines())


def count_files(folder: Path) -> int:
    return sum(len(files) for _, _, files in os.walk(folder))


def main() -> int:
    parser = BenchParser(__doc__, size="400MiB", repeat=1,
                         dir_help="work folder, kept, its E01 reused by the next run "
                                  "(default: a temporary folder under /var/tmp, removed at the "
                                  "end)")
    parser.add_argument("--files", type=int, help="files in the file system (default: one per "
                                                   "4 KiB of --size)")
    parser.add_argument("--fs", choices=("ext4", "ntfs"), default="ext4",
                        help="file system to build (ntfs: written through ntfs-3g, needs root "
                             "and /dev/fuse)")
    parser.add_argument("--deleted", type=int, default=0, metavar="PERCENT",
                        help="share of the files removed once written (default 0)")
    args = parser.parse()
    extra = parser.parse_args()
    files = extra.files or args.size // 4096
    builders = ("mkntfs", "ntfs-3g") if extra.fs == "ntfs" else ("mkfs.ext4",)
    missing = [t for t in ("fls", "tsk_recover", *builders) if shutil.which(t) is None]
    if missing:
        print(f"cannot run here: {', '.join(missing)} missing", file=sys.stderr)
        return 2
    with work_folder(args.dir, "bw-bench-browse-") as work:
        bw = bitwitness_command()
        image = build(work, files, extra.fs, extra.deleted)
        best: dict[str, float] = {}
        # the peer of export --all: allocated files only where none was deleted (-a), else
        # allocated and deleted ones (-e), as --all exports them
        recover_flag = "-e" if extra.deleted else "-a"
        recover = f"tsk_recover {recover_flag}"
        peak = 0

        def keep(name: str, seconds: float) -> None:
            best[name] = min(best.get(name, seconds), seconds)

        for _ in range(args.repeat):
            keep("fls -r -p", timed(["fls", "-r", "-p", str(image)], work / "fls.txt")[0])
            seconds, rss = timed([*bw, "ls", "-r", "--all", str(image)], work / "ls.txt")
            keep("ls -r --all", seconds)
            peak = max(peak, rss)
            keep("fls -r -m /", timed(["fls", "-r", "-m", "/", str(image)], work / "fls.body")[0])
            seconds, rss = timed([*bw, "timeline", str(image)], work / "ours.body")
            keep("timeline", seconds)
            peak = max(peak, rss)
            for name in ("recovered", "exported"):
                shutil.rmtree(work / name, ignore_errors=True)
            keep(recover, timed(["tsk_recover", recover_flag, str(image),
                                          str(work / "recovered")], sync=True)[0])
            # exit 1: deleted entries with nothing to recover (NTFS orphans of size 0) are
            # listed as not exported, as they must be; the files are all written
            seconds, rss = timed([*bw, "export", str(image), "/", "--all", "--to",
                                  str(work / "exported")], sync=True, ok=(0, 1))
            keep("export --all", seconds)
            peak = max(peak, rss)
        same_ls = lines(work / "ls.txt") == lines(work / "fls.txt")
        same_body = len(lines(work / "ours.body")) == len(lines(work / "fls.body"))
        recovered, exported = count_files(work / "recovered"), count_files(work / "exported")
        print(f"{extra.fs} with {files} files ({extra.deleted}% removed) in an E01, best of "
              f"{args.repeat}; load average "
              f"{os.getloadavg()[0]:.1f}")
        for ours, theirs, target in (("ls -r --all", "fls -r -p", "<= 1.5"),
                                     ("timeline", "fls -r -m /", "<= 1.5"),
                                     ("export --all", recover, "<= 1.0")):
            print(f"{ours:14} {best[ours]:7.2f} s   {theirs:15} {best[theirs]:7.2f} s   "
                  f"ratio {best[ours] / best[theirs]:5.2f} (target {target})")
        print(f"ls output equals fls: {same_ls}; timeline rows {len(lines(work / 'ours.body'))}"
              f" vs fls {len(lines(work / 'fls.body'))}; files exported {exported} (with the "
              f"manifest) vs recovered {recovered}")
        print(f"BitWitness peak memory: {peak / 1024:.0f} MiB")
        return 0 if same_ls and same_body else 1


if __name__ == "__main__":
    sys.exit(main())
