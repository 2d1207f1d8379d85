"""Shared fixtures: the third-party images, native tools, and running the command line.

Tests that need ``../shared`` skip when it is absent (a plain clone); tests that need a native tool
(ewfverify, fls, mkfs.ext4, ...) skip with the tool's name when it is missing. CI installs every
tool, so nothing is skipped there.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
THIRD_PARTY = SHARED / "fixtures" / "third-party"


def _fixture_state() -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(THIRD_PARTY)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(THIRD_PARTY.rglob("*"))}


@pytest.fixture(autouse=True)
def _third_party_untouched() -> Any:
    """Rule 1 for every test: the shared evidence fixtures are never written, added to or
    removed from (we run as root, so their read-only modes alone do not stop a stray write).
    Checked around each test, so a failure names the test that did it."""
    if not THIRD_PARTY.is_dir():
        yield
        return
    before = _fixture_state()
    yield
    after = _fixture_state()
    assert after == before, (
        "this test changed ../shared/fixtures/third-party: "
        f"added {sorted(set(after) - set(before))}, removed {sorted(set(before) - set(after))}, "
        f"changed {sorted(k for k in before.keys() & after.keys() if before[k] != after[k])}")


@pytest.fixture(autouse=True)
def _signals_as_a_terminal_gives_them() -> Any:
    """Every test starts with SIGINT and SIGTERM as a shell started from a terminal gives them
    (Python's KeyboardInterrupt handler, the default action), whatever the suite inherited:
    ``nohup`` and some CI runners start it with SIGINT ignored, which a child process keeps
    across exec, so a real Ctrl-C test would test nothing. Put back afterwards."""
    import signal

    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    if previous[signal.SIGINT] is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if previous[signal.SIGTERM] is signal.SIG_IGN:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    yield
    for sig, handler in previous.items():
        if handler is not None:
            signal.signal(sig, handler)


@pytest.fixture(scope="session")
def third_party() -> Path:
    """The folder of images made by other tools; skips where ../shared is absent."""
    if not (THIRD_PARTY / "manifest.json").is_file():
        pytest.skip("../shared/fixtures/third-party is absent (plain clone)")
    return THIRD_PARTY


@pytest.fixture(scope="session")
def manifest(third_party: Path) -> dict[str, Any]:
    """The third-party manifest: expected sizes and hashes for each image."""
    return json.loads((third_party / "manifest.json").read_text())


def require_tool(*names: str) -> None:
    """Skip the calling test when a native tool is missing."""
    for name in names:
        if shutil.which(name) is None:
            pytest.skip(f"{name} is not installed")


def require_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root")


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str
    output: bytes = b""  #: stdout as written (what ``cat`` gives), before any decoding

    def json(self) -> Any:
        return json.loads(self.stdout)


def run_bitwitness(*args: str | os.PathLike[str], input: str | None = None) -> CliResult:  # noqa: A002
    """Run the command line in-process, through the real error boundary (``main``)."""
    from bitwitness.cli.main import main

    runner = CliRunner()
    argv = [os.fspath(a) for a in args]
    with runner.isolation(input=input) as streams:
        try:
            main(argv)
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        out, err = streams[0].getvalue(), streams[1].getvalue()
    return CliResult(code, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"), out)


def cat_bytes(*args: str | os.PathLike[str]) -> bytes:
    """The bytes ``bitwitness cat ARGS`` writes, run in-process (a test reading many files
    pays no interpreter start-up per file); a failure fails the test with its message."""
    result = run_bitwitness("cat", *args)
    assert result.exit_code == 0, (args, result.stderr)
    return result.output


def run_subprocess(*args: str | os.PathLike[str], input: str | None = None,  # noqa: A002
                   timeout: float = 300) -> CliResult:
    """Run ``python -m bitwitness`` as a separate process (signals, real terminals, exit codes)."""
    proc = subprocess.run(
        [sys.executable, "-m", "bitwitness", *map(os.fspath, args)],
        input=input, capture_output=True, text=True, timeout=timeout, check=False,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def bw() -> Callable[..., CliResult]:
    """``bw("verify", path)`` runs bitwitness in-process and returns exit code, stdout, stderr."""
    return run_bitwitness


def sha256_of(path: Path) -> str:
    import hashlib

    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def snapshot(paths: list[Path]) -> dict[Path, tuple[str, int]]:
    """Content hash and mtime of files, to prove a command left evidence untouched."""
    return {p: (sha256_of(p), p.stat().st_mtime_ns) for p in paths}


def make_disk_bytes(size: int, seed: int = 1) -> bytes:
    """Deterministic disk-like data: runs of zeros, random bytes and text."""
    import random

    rng = random.Random(seed)
    out = bytearray()
    while len(out) < size:
        kind = rng.randrange(3)
        n = rng.choice([512, 4096, 32768, 70000])
        if kind == 0:
            out += bytes(n)
        elif kind == 1:
            out += rng.randbytes(n)
        else:
            words = [b"evidence", b"sector", b"chain", b"custody", b"witness", b"\n"]
            while n > 0:
                w = rng.choice(words) + b" "
                out += w
                n -= len(w)
    return bytes(out[:size])


def run_acquire(source: Path, output: Path | None, fmt: Any, *, stop_at: int | None = None,
                hashes: tuple[str, ...] = ("md5", "sha1", "sha256"), **options: Any) -> Any:
    """Acquire with the real engine (256 KiB blocks); with ``stop_at`` the run is stopped
    cleanly once a read reaches that offset (the TUI's Cancel: no signal), leaving a genuinely
    interrupted acquisition for the verify and info tests."""
    import threading

    from bitwitness.acquire.engine import AcquisitionRequest, acquire
    from bitwitness.acquire.faults import FaultySource
    from bitwitness.acquire.source import open_source
    from bitwitness.progress import RecordingMediator

    stop = threading.Event()

    def hook(offset: int, length: int) -> None:
        if stop_at is not None and offset >= stop_at:
            stop.set()

    src = FaultySource(open_source(source), before_read=hook)
    try:
        return acquire(AcquisitionRequest(source=src, output=output, format=fmt, hashes=hashes,
                                          block_size=256 * 1024, stop=stop, **options),
                       RecordingMediator())
    finally:
        src.close()


def pyewf_media(first: Path) -> bytes:
    """The whole media of the E01 set that ``first`` belongs to, as libewf reads it (pyewf, the
    independent second reader); skips the test where pyewf is not installed."""
    pyewf = pytest.importorskip("pyewf")
    handle = pyewf.handle()
    handle.open(pyewf.glob(str(first)))
    try:
        return handle.read_buffer(handle.get_media_size())
    finally:
        handle.close()


@pytest.fixture
def faulty_drive(tmp_path: Path) -> Any:
    """Real failing drives (a FUSE file behind a loop device): see tests/faultydrive/drive.py."""
    from faultydrive.drive import drives

    yield from drives(tmp_path)


@pytest.fixture(scope="session")
def pyaff4(request: pytest.FixtureRequest) -> Any:
    """pyaff4 (the AFF4 reference implementation) importable here and by the second reader's
    child process; installed once per checkout without its dependency pins (tests/pyaff4_env.py
    says why); the tests that use it skip, saying why, when PyPI cannot be reached."""
    from pyaff4_env import ensure_pyaff4

    cache = getattr(request.config, "cache", None)  # absent under -p no:cacheprovider
    if cache is not None:
        return ensure_pyaff4(cache.mkdir("pyaff4"))
    shared = request.getfixturevalue("tmp_path_factory").getbasetemp().parent / "pyaff4"
    shared.mkdir(exist_ok=True)  # the xdist workers' base folders share this parent
    return ensure_pyaff4(shared)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--exhaustive", action="store_true",
                     help="also run the cases marked exhaustive (the rest of a cross-product "
                          "matrix whose default run covers each pair once)")


def pytest_configure(config: pytest.Config) -> None:
    """Compile the package's sources to bytecode once, before any test starts a process.

    Why: hundreds of tests start ``python -m bitwitness``, and with ``PYTHONDONTWRITEBYTECODE``
    set (as on this CI's machines) each of those interpreters compiled every module it imports
    from source, never keeping the result: ~70 ms more for ``info``, ~220 ms for ``ls``, until
    a benchmark test happened to compile them. An installed BitWitness starts from the
    bytecode pip compiles; this gives the checkout's processes the same start, through the
    benchmarks' own step (bench/_tool.py ``compile_sources``). Done in the controller only
    (``workerinput`` marks an xdist worker), before the workers start."""
    if hasattr(config, "workerinput"):
        return
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_tool", REPO / "bench" / "_tool.py")
    assert spec is not None
    assert spec.loader is not None
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    tool.compile_sources()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Cases marked ``exhaustive`` are deselected (not skipped: nothing pretends to have run)
    unless ``--exhaustive`` is given."""
    if config.getoption("--exhaustive"):
        return
    kept = [item for item in items if item.get_closest_marker("exhaustive") is None]
    if len(kept) != len(items):
        config.hook.pytest_deselected(items=[i for i in items if i not in kept])
        items[:] = kept
