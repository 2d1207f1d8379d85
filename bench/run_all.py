"""Every job against its peer, in one table: ratio, CPU per GiB, peak memory, lower bound.

    python bench/run_all.py [--size 512MiB] [--repeat 1] [--dir DIR] [--pin both|only|off]

Generates one disk-like media (bench/_data.py), then runs each job and its peer on it, every
tool a separate process started from the repository root:

* acquire E01 fast + MD5/SHA-1      vs ``ewfacquire -c deflate:fast -d sha1``
* acquire raw + MD5/SHA-1           vs ``dc3dd hash=md5 hash=sha1``
* verify an ewfacquire E01          vs ``ewfverify -d sha1``
* verify --second-reader (libewf)   vs ``ewfverify -d sha1``
* convert E01 -> raw                vs ``ewfexport -f raw -d sha1``
* convert raw -> E01 fast           vs ``ewfacquire -c deflate:fast -d sha1``

Each row gives the ratio (peer wall time / BitWitness wall time: above 1, BitWitness is faster),
the CPU seconds per GiB of media of both (user + system of the process and its threads, from
``os.wait4``), the peak memory of both (``ru_maxrss``) and the job's lower bound in seconds per
GiB: the larger of MD5 alone (``md5sum`` of the media; every job here computes MD5) and
BitWitness's CPU divided by the cores it had. ``ours/bound`` says how far the job is from it.

With ``--pin both`` (the default) every pair runs a second time with both tools pinned to one
core (``taskset -c 0``): a loaded machine gives a job one core, and the ratios must hold there
too. Wall times include a final ``sync`` for every tool (BitWitness fsyncs its outputs; the peers
do not). Rounds interleave the tools and keep each one's best wall time; the machine's load
average is printed with the table, as timings on a shared machine mean little.
Timing lives here, never in the tests.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _args import BenchParser
from _data import make_disk_file
from _tool import bitwitness_command

REPO = Path(__file__).resolve().parent.parent
_GIB = 1 << 30


@dataclass(frozen=True)
class Run:
    """One process's cost: wall seconds (with the final sync), CPU seconds, peak RSS in bytes."""

    wall: float
    cpu: float
    rss: int


@dataclass(frozen=True)
class Job:
    """A BitWitness command and its peer's, each made for a fresh output folder."""

    name: str
    peer: str
    ours: Callable[[Path], list[str]]
    theirs: Callable[[Path], list[str]]


#: GNU time, which reports its child's ``ru_maxrss`` as the child's own. Why not take it from
#: ``os.wait4`` here: Linux keeps a process's peak RSS across ``execve``, so a tool started from
#: this Python process (fork + exec) would report at least this process's peak (~30 MiB).
#: GNU time is small: the floor it leaves under its child's figure is ~2 MiB.
GNU_TIME = Path("/usr/bin/time")


def measure(cmd: list[str], cwd: Path, pin: bool) -> Run:
    """Run ``cmd`` (pinned to core 0 with ``pin``), wait for it with ``os.wait4`` for its CPU
    time (user + system, its threads and children included), sync, and fail the benchmark if it
    failed. Peak memory is the ``ru_maxrss`` GNU time saw for ``cmd`` where it is installed."""
    full = ["taskset", "-c", "0", *cmd] if pin else cmd
    with tempfile.TemporaryFile() as log, tempfile.NamedTemporaryFile("r") as rss:
        if GNU_TIME.exists():
            full = [str(GNU_TIME), "-q", "-f", "%M", "-o", rss.name, *full]
        start = time.perf_counter()
        proc = subprocess.Popen(full, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        os.sync()
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            log.seek(0)
            sys.exit(f"{' '.join(full)} failed ({proc.returncode}):\n"
                     f"{log.read().decode(errors='replace')}")
        reported = rss.read().split()
        peak_kib = int(reported[-1]) if reported and reported[-1].isdigit() else usage.ru_maxrss
    return Run(wall, usage.ru_utime + usage.ru_stime, peak_kib * 1024)


def _fresh(folder: Path) -> Path:
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    return folder


def _warm(path: Path) -> None:
    with path.open("rb") as fh:
        while fh.read(8 << 20):
            pass


def jobs(media: Path, e01: Path) -> list[Job]:
    """The jobs, reading ``media`` (raw) or ``e01`` (made by ewfacquire)."""
    bw = bitwitness_command()
    ewfacquire = ["ewfacquire", "-u", "-q", "-c", "deflate:fast", "-d", "sha1", "-S", "8GiB",
                  "-C", "bench", "-D", "bench", "-E", "1", "-e", "bench", "-N", "bench",
                  "-m", "fixed", "-M", "physical"]
    return [
        Job("acquire E01 fast", "ewfacquire",
            lambda out: [*bw, "acquire", str(media), "-o", str(out / "bw"), "--hash", "md5,sha1",
                         "--compress", "fast", "--json"],
            lambda out: [*ewfacquire, "-t", str(out / "ewf"), str(media)]),
        Job("acquire raw", "dc3dd",
            lambda out: [*bw, "acquire", str(media), "-o", str(out / "bw"), "--format", "raw",
                         "--hash", "md5,sha1", "--json"],
            lambda out: ["dc3dd", f"if={media}", f"of={out / 'dc3dd.raw'}", "hash=md5",
                         "hash=sha1", f"log={out / 'dc3dd.log'}"]),
        Job("verify", "ewfverify",
            lambda out: [*bw, "verify", "--json", str(e01)],
            lambda out: ["ewfverify", "-q", "-d", "sha1", str(e01)]),
        Job("verify --second-reader", "ewfverify",
            lambda out: [*bw, "verify", "--second-reader", "--json", str(e01)],
            lambda out: ["ewfverify", "-q", "-d", "sha1", str(e01)]),
        Job("convert E01 -> raw", "ewfexport",
            lambda out: [*bw, "convert", str(e01), "-o", str(out / "bw"), "--to", "raw"],
            lambda out: ["ewfexport", "-u", "-q", "-f", "raw", "-d", "sha1", "-t",
                         str(out / "ewf"), str(e01)]),
        Job("convert raw -> E01", "ewfacquire",
            lambda out: [*bw, "convert", str(media), "-o", str(out / "bw"), "--to", "e01",
                         "--compress", "fast"],
            lambda out: [*ewfacquire, "-t", str(out / "ewf"), str(media)]),
    ]


def best(runs: list[Run]) -> Run:
    """The run with the least wall time (the least disturbed by other jobs on the machine)."""
    return min(runs, key=lambda r: r.wall)


def table(rows: list[tuple[str, str, Run, Run, float, int]], size: int) -> list[str]:
    """The printed table: one line per (job, pinning)."""
    gib = size / _GIB
    head = (f"{'job':<32} {'peer':<11} {'ratio':>6} {'ours CPU':>9} {'peer CPU':>9} "
            f"{'ours peak':>10} {'peer peak':>10} {'bound':>7} {'ours/bound':>10}")
    lines = [head, f"{'':<32} {'':<11} {'':>6} {'s/GiB':>9} {'s/GiB':>9} {'MiB':>10} "
             f"{'MiB':>10} {'s/GiB':>7}", "-" * len(head)]
    for name, peer, ours, theirs, md5_alone, cores in rows:
        bound = max(md5_alone, ours.cpu / cores)
        lines.append(f"{name:<32} {peer:<11} {theirs.wall / ours.wall:6.2f} {ours.cpu / gib:9.2f} "
                     f"{theirs.cpu / gib:9.2f} {ours.rss / (1 << 20):10.1f} "
                     f"{theirs.rss / (1 << 20):10.1f} {bound / gib:7.2f} "
                     f"{ours.wall / bound:10.2f}")
    return lines


def main() -> int:
    parser = BenchParser(__doc__, size="512MiB", repeat=1,
                         dir_help="where the temporary work folder is made (default: /dev/shm "
                                  "when it has room, else the current folder)")
    parser.add_argument("--pin", choices=("both", "only", "off"), default="both",
                        help="run each pair also (both), only (only) or never (off) pinned to "
                             "one core with taskset (default both)")
    options = parser.parse()
    pin_mode = parser.parse_args().pin
    size = options.size - options.size % 512
    needed = ["ewfacquire", "ewfverify", "ewfexport", "dc3dd", "md5sum"]
    if pin_mode != "off":
        needed.append("taskset")
    missing = [tool for tool in needed if shutil.which(tool) is None]
    if missing:
        print(f"not installed: {', '.join(missing)} (scripts/install-tools.sh)", file=sys.stderr)
        return 2
    parent = options.dir
    if parent is None:
        shm = Path("/dev/shm")  # noqa: S108 - a scratch folder in RAM, for a benchmark
        room = shm.is_dir() and shutil.disk_usage(shm).free > 4 * size + (256 << 20)
        parent = shm if room else Path.cwd()
    parent.mkdir(parents=True, exist_ok=True)
    pinnings = {"both": (False, True), "only": (True,), "off": (False,)}[pin_mode]
    with tempfile.TemporaryDirectory(prefix="bw-bench-all-", dir=parent) as tmp:
        work = Path(tmp)
        media = make_disk_file(work / "media.raw", size)
        source = _fresh(work / "source")
        subprocess.run(["ewfacquire", "-u", "-q", "-c", "deflate:fast", "-d", "sha1", "-S",
                        "8GiB", "-t", str(source / "image"), str(media)],
                       check=True, capture_output=True)
        e01 = source / "image.E01"
        _warm(media)
        _warm(e01)
        rows: list[tuple[str, str, Run, Run, float, int]] = []
        for pin in pinnings:
            cores = 1 if pin else (os.cpu_count() or 1)
            md5_alone = best([measure(["md5sum", str(media)], work, pin)
                              for _ in range(options.repeat)]).cpu
            for job in jobs(media, e01):
                ours: list[Run] = []
                theirs: list[Run] = []
                for _ in range(options.repeat):  # interleaved: a busy moment hits both alike
                    theirs.append(measure(job.theirs(_fresh(work / "out")), work, pin))
                    ours.append(measure(job.ours(_fresh(work / "out")), work, pin))
                name = f"{job.name}{' (1 core)' if pin else ''}"
                rows.append((name, job.peer, best(ours), best(theirs), md5_alone, cores))
    print(f"media: {size} bytes of disk-like data (1/3 zeros, 1/3 random, 1/3 text); "
          f"cores: {os.cpu_count()}; best of {options.repeat} interleaved round(s); "
          f"date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
          f"load average: {os.getloadavg()[0]:.2f}")
    print("ratio = peer wall time / BitWitness wall time (above 1: BitWitness is faster); "
          "bound = max(MD5 alone, BitWitness CPU / cores)")
    print("\n".join(table(rows, size)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
