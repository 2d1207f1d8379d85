"""How bench/run_all.py measures one process: wall time with a final sync, CPU time, peak memory;
and start-up times, with hyperfine where it is installed.

Why a module of its own: run_all.py builds the jobs and prints the table; what a measurement is
(what it includes, where each figure comes from) is said once, here.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

#: GNU time, which reports its child's ``ru_maxrss`` as the child's own. Why not take it from
#: ``os.wait4`` here: Linux keeps a process's peak RSS across ``execve``, so a tool started from
#: this Python process (fork + exec) would report at least this process's peak (~30 MiB).
#: GNU time is small: the floor it leaves under its child's figure is ~2 MiB.
GNU_TIME = Path("/usr/bin/time")
PIN = ("taskset", "-c", "0")


class MeasureError(Exception):
    """A measured command failed: the benchmark reports no figure for it."""


@dataclass(frozen=True)
class Run:
    """One process's cost: wall seconds (with the final sync), CPU seconds, peak RSS in bytes."""

    wall: float
    cpu: float
    rss: int


def pinned(cmd: list[str], pin: bool) -> list[str]:
    """``cmd`` pinned to core 0 with ``taskset`` when ``pin``, as it is otherwise."""
    return [*PIN, *cmd] if pin else cmd


def measure(cmd: list[str], cwd: Path, pin: bool, stdout: Path | None = None, *,
            ok: tuple[int, ...] = (0,)) -> Run:
    """Run ``cmd`` (pinned to core 0 with ``pin``; its standard output into ``stdout`` if given),
    wait for it with ``os.wait4`` for its CPU time (user + system, its threads and children
    included), then ``sync``: the wall time includes writing back whatever the command left
    dirty, for every tool alike (BitWitness fsyncs its outputs; most peers do not). Peak memory is
    the ``ru_maxrss`` GNU time saw for ``cmd`` where it is installed. Raises
    :class:`MeasureError` when ``cmd`` exits with a status outside ``ok``."""
    full = pinned(cmd, pin)
    os.sync()  # nothing an earlier command left dirty is charged to this one
    with tempfile.TemporaryFile() as log, tempfile.NamedTemporaryFile("r") as rss, \
            (stdout.open("wb") if stdout is not None else tempfile.TemporaryFile()) as out:
        if GNU_TIME.exists():
            full = [str(GNU_TIME), "-q", "-f", "%M", "-o", rss.name, *full]
        start = time.perf_counter()
        proc = subprocess.Popen(full, cwd=cwd, stdout=out if stdout is not None else log,
                                stderr=log)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        os.sync()
        wall = time.perf_counter() - start
        if proc.returncode not in ok:
            log.seek(0)
            raise MeasureError(f"{shlex.join(full)} failed ({proc.returncode}):\n"
                               f"{log.read().decode(errors='replace')[-4000:]}")
        reported = rss.read().split()
        peak_kib = int(reported[-1]) if reported and reported[-1].isdigit() else usage.ru_maxrss
    return Run(wall, usage.ru_utime + usage.ru_stime, peak_kib * 1024)


def best(runs: list[Run]) -> Run:
    """The run with the least wall time (the least disturbed by other jobs on the machine)."""
    return min(runs, key=lambda r: r.wall)


@dataclass(frozen=True)
class Startup:
    """Times of one short command run many times, in seconds: wall (mean, standard deviation,
    fastest) and CPU (user + system, mean)."""

    mean: float
    stddev: float
    fastest: float
    cpu: float
    runs: int


def startup_times(commands: list[list[str]], runs: int, cwd: Path) -> tuple[list[Startup], str]:
    """Time each of ``commands`` ``runs`` times (after 3 warm-up runs): with hyperfine (no shell
    between it and the command) where it is installed, else by starting each command in turn from
    here. Returns the times in the order given and how they were taken."""
    for cmd in commands:  # a failing command would be timed as a fast one
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, check=False)
        if proc.returncode != 0:
            raise MeasureError(f"{shlex.join(cmd)} failed ({proc.returncode}):\n"
                               f"{proc.stderr.decode(errors='replace')[-4000:]}")
    if shutil.which("hyperfine"):
        return _hyperfine(commands, runs, cwd), "hyperfine"
    return [_repeated(cmd, runs, cwd) for cmd in commands], \
        "repeated timing from Python (hyperfine is not installed)"


def _hyperfine(commands: list[list[str]], runs: int, cwd: Path) -> list[Startup]:
    with tempfile.NamedTemporaryFile("r", suffix=".json") as report:
        subprocess.run(["hyperfine", "-N", "--style", "none", "--warmup", "3", "--runs",
                        str(runs), "--export-json", report.name,
                        *(shlex.join(cmd) for cmd in commands)],
                       cwd=cwd, check=True, stdout=subprocess.DEVNULL)
        results = json.load(report)["results"]
    return [Startup(r["mean"], r["stddev"] or 0.0, r["min"], r["user"] + r["system"],
                    len(r["times"])) for r in results]


def _repeated(cmd: list[str], runs: int, cwd: Path) -> Startup:
    times, cpu = [], []
    for n in range(runs + 3):
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        if proc.returncode != 0:
            raise MeasureError(f"{shlex.join(cmd)} failed ({proc.returncode})")
        if n >= 3:  # the first three warm the caches, as hyperfine's --warmup 3
            times.append(time.perf_counter() - start)
            cpu.append(usage.ru_utime + usage.ru_stime)
    return Startup(statistics.fmean(times), statistics.pstdev(times), min(times),
                   statistics.fmean(cpu), len(times))


def installed_copy(repo: Path, folder: Path) -> Path | None:
    """``bitwitness`` as ``pip install`` puts it (not editable, bytecode compiled), in a new
    virtual environment under ``folder`` that reaches this interpreter's dependencies through a
    ``.pth`` line; built from a copy of the checkout's files, so the checkout gets no ``build/``
    folder. Returns the console script, or None where pip cannot build it here."""
    source = folder / "source"
    ignore = shutil.ignore_patterns(".git", ".venv*", "__pycache__", "build", "*.egg-info",
                                    ".*_cache", ".hypothesis", "bench-out")
    shutil.copytree(repo, source, ignore=ignore, symlinks=True)
    venv = folder / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; "
                           "print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    # every site folder this interpreter reads, as it reads them: its own, and those a .pth
    # line adds (a test's environment); .pth files inside those are not read, so an editable
    # install of the checkout stays out
    deps = [p for p in dict.fromkeys(sys.path) if Path(p).name in ("site-packages", "dist-packages")
            and Path(p).is_dir()]
    Path(site, "bench-dependencies.pth").write_text("".join(f"{p}\n" for p in deps))
    pip = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install",
                          "--quiet", "--no-deps", str(source)],
                         capture_output=True, text=True, check=False)
    script = venv / "bin" / "bitwitness"
    if pip.returncode != 0 or not script.exists():
        print(f"pip could not install a copy for the start-up times:\n{pip.stderr[-2000:]}",
              file=sys.stderr)
        return None
    return script
