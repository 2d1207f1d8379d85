"""A checkout runs as installed: from the repository root, with no install or a non-editable one.

From the root, Python imports the checkout's ``bitwitness/`` before any installed copy, and there
the three stages stand beside it rather than inside it (``bitwitness/__init__.py`` resolves
them). Each test runs a fresh interpreter whose environment holds BitWitness's dependencies
(those of the interpreter running the tests, reached through a ``.pth`` line, which Python does
not scan for further ``.pth`` files, so the test environment's editable install stays out) and:

* ``bare``: nothing else; outside the checkout, ``import bitwitness`` fails;
* ``installed``: BitWitness as ``pip install .`` puts it (a wheel built from a copy of the
  tracked files, so the checkout gets no ``build/`` folder).

PYTHONPATH is unset in every child.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from conftest import REPO, require_root, require_tool

STAGES = ("acquire", "verify", "report")
IMPORT_STAGES = ("import bitwitness.acquire, bitwitness.verify, bitwitness.report, "
                 "bitwitness.case_templates; "
                 "print(*(m.__file__ for m in (bitwitness, bitwitness.acquire, bitwitness.verify, "
                 "bitwitness.report, bitwitness.case_templates)), sep='\\n')")


def _child_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


def _run(python: Path, *args: str, cwd: Path,
         timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(python), *args], cwd=cwd, env=_child_env(), capture_output=True,
                          text=True, timeout=timeout, check=False)


def _environment(folder: Path) -> tuple[Path, Path]:
    """A fresh venv that sees the test interpreter's dependencies: (python, its site-packages)."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True,
                   env=_child_env(), timeout=120)
    python = folder / "bin" / "python"
    site = Path(subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True, env=_child_env()).stdout.strip())
    deps = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (site / "test-dependencies.pth").write_text("".join(f"{p}\n" for p in sorted(deps)))
    return python, site


def _copy_tracked(destination: Path) -> Path:
    """The checkout's files as a clone would hold them (tracked, plus new files git does not
    ignore), copied; the checkout itself where there is no git."""
    if shutil.which("git") is None or not (REPO / ".git").exists():
        return REPO
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=REPO, capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return destination


@pytest.fixture(scope="module")
def bare(tmp_path_factory: pytest.TempPathFactory) -> Path:
    python, _ = _environment(tmp_path_factory.mktemp("bare") / "venv")
    outside = _run(python, "-c", "import bitwitness", cwd=tmp_path_factory.getbasetemp())
    assert outside.returncode != 0
    assert "No module named 'bitwitness'" in outside.stderr
    return python


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("installed")
    python, site = _environment(folder / "venv")
    source = _copy_tracked(folder / "source")
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                          "--no-compile", "--target", str(site), str(source)],
                         capture_output=True, text=True, check=False, timeout=600)
    if pip.returncode != 0:
        pytest.fail(f"pip install . failed:\n{pip.stdout}{pip.stderr}")
    assert not (site / "bitwitness" / "__init__.py").is_symlink()
    for stage in STAGES:
        assert (site / "bitwitness" / stage / "__init__.py").is_file()
    return python


@pytest.fixture(params=["bare", "installed"])
def python(request: pytest.FixtureRequest) -> Path:
    return Path(request.getfixturevalue(request.param))


@pytest.mark.slow
def test_the_stages_import_from_the_root(python: Path) -> None:
    proc = _run(python, "-c", f"import bitwitness; {IMPORT_STAGES}", cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    files = [Path(line) for line in proc.stdout.splitlines()]
    # all from the checkout: no stage from an installed copy under the checkout's core
    assert files == [REPO / "bitwitness" / "__init__.py",
                     *(REPO / stage / "__init__.py" for stage in STAGES),
                     REPO / "bitwitness" / "case_templates" / "__init__.py"]


@pytest.mark.slow
def test_the_installed_package_holds_the_stages(installed: Path, tmp_path: Path) -> None:
    proc = _run(installed, "-c", f"import bitwitness; {IMPORT_STAGES}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    package = Path(proc.stdout.splitlines()[0]).parent
    assert REPO not in package.parents
    assert [Path(line) for line in proc.stdout.splitlines()[1:]] == [
        *(package / stage / "__init__.py" for stage in STAGES),
        package / "case_templates" / "__init__.py"]


@pytest.mark.slow
def test_demo_runs_from_the_root(python: Path, tmp_path: Path) -> None:
    require_tool("ewfverify")
    proc = _run(python, "-m", "bitwitness", "demo", str(tmp_path / "demo"), cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    image = tmp_path / "demo" / "case" / "evidence" / "disk01" / "disk01.E01"
    check = subprocess.run(["ewfverify", "-q", str(image)], capture_output=True, text=True,
                           check=False)
    assert check.returncode == 0, check.stdout + check.stderr


#: (benchmark, the peer tools it runs, a line its output must hold)
BENCHMARKS = [
    ("bench_ltree_memory.py", (), "margin"),
    ("bench_acquire.py", ("ewfacquire", "dc3dd"), "E01"),
    ("bench_convert.py", ("ewfacquire", "ewfexport"), "raw -> E01"),
    ("bench_ewf_size.py", ("ewfacquire", "ewfverify"), "verify"),
    ("bench_verify.py", ("ewfacquire", "ewfverify"), "ratio"),
    ("bench_mount.py", ("ewfmount", "fusermount3"), "mount/direct"),
    ("bench_rescue.py", ("ddrescue", "losetup", "fusermount3"), "ratio"),
    ("bench_browse.py", ("fls", "tsk_recover", "mkfs.ext4"), "ratio"),
    ("bench_scale.py", ("ewfinfo",), "| info 1.0 GiB |"),
    ("run_all.py", ("ewfacquire", "ewfverify", "ewfexport", "ewfinfo", "dc3dd", "md5sum", "fls",
                    "icat", "tsk_recover", "mkfs.ext4", "taskset"),
     "| `bitwitness info small.E01` (1 core) |"),
]
#: The smallest run of a benchmark whose options are not --size/--repeat.
SMALLEST = {"bench_ltree_memory.py": ("--scale", "0.001"),
            "bench_scale.py": ("--size", "1GiB", "--sizes", "1MiB,2MiB", "--repeat", "1")}
_WORK_FOLDER = re.compile(r"^work folder: (.+) \(removed at the end\)$", re.MULTILINE)


def test_every_benchmark_is_checked() -> None:
    scripts = [*(REPO / "bench").glob("bench_*.py"), REPO / "bench" / "run_all.py"]
    assert sorted(p.name for p in scripts if p.is_file()) == sorted(
        name for name, _, _ in BENCHMARKS)


@pytest.mark.slow
@pytest.mark.parametrize(("name", "tools", "expected"), BENCHMARKS)
def test_benchmark_runs_from_the_root(installed: Path, name: str, tools: tuple[str, ...],
                                      expected: str) -> None:
    """As the README shows (``python bench/NAME --size SIZE --repeat N``), on the smallest size
    and with no ``--dir``: the default work folder is what a reader of the README gets. (This
    test used to pass ``--dir``, so a default that acquisition refuses, /dev/shm, went unseen.)
    The folder it announces must be on a storage file system and gone at the end."""
    require_tool(*tools)
    if name == "bench_mount.py" and not Path("/dev/fuse").exists():
        pytest.skip("/dev/fuse is missing (no FUSE mounts here)")
    if "losetup" in tools:  # the faulty drive: a FUSE mount and a loop device
        require_root()
    smallest = SMALLEST.get(name, ("--size", "1MiB", "--repeat", "1"))
    proc = _run(installed, f"bench/{name}", *smallest, cwd=REPO, timeout=900)
    assert "Traceback" not in proc.stderr, proc.stderr
    # a ratio below its target on 1 MiB is no failure of the run; anything else is
    assert proc.returncode == 0 or "BELOW TARGET" in proc.stdout, proc.stdout + proc.stderr
    assert expected in proc.stdout
    if name == "run_all.py":  # the NTFS rows, where ntfs-3g can write the file system
        ntfs = (os.geteuid() == 0 and Path("/dev/fuse").exists()
                and all(shutil.which(t) for t in ("mkntfs", "ntfs-3g")))
        assert ("| NTFS ls -r --all" in proc.stdout) is ntfs, proc.stdout
    announced = _WORK_FOLDER.findall(proc.stdout)
    assert len(announced) == 1, proc.stdout
    work = Path(announced[0])
    assert work.is_absolute()
    assert Path("/dev") not in work.parents
    assert not work.exists(), f"{work} was left behind"
