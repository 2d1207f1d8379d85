"""pyaff4 for the tests: installed once per checkout, without its dependency pins.

pyaff4 0.34 (the last release) pins dependencies that do not build on Python 3.11 (PyYAML 5.4
with Cython 3, rdflib 4.2.2, aff4-snappy 0.5.1, ...); its code runs on the current releases of
what it imports, which the ``pyaff4-deps`` extra (part of ``test``) installs at exact versions.
pip's extras cannot say ``--no-deps``, so the wheel itself is installed here, at first use:
``pip install --no-deps --require-hashes --target DIR`` into ``.pytest_cache`` (private to the
checkout, never the venv's site-packages), under a file lock so that xdist workers install it
once. The folder is then put first on ``sys.path``; the second reader's child process finds it
through :func:`bitwitness.images.aff4_pyaff4.pyaff4_folder`, as it would find a pyaff4 the
examiner installed. Without PyPI (an offline machine) the tests that need pyaff4 skip, saying
why; CI reaches PyPI, so nothing is skipped there.
"""

from __future__ import annotations

import fcntl
import importlib
import subprocess
import sys
import warnings
from pathlib import Path
from types import ModuleType

import pytest

from bitwitness.images.aff4_pyaff4 import PYAFF4_VERSION

#: The wheel's digest as published on PyPI (pip refuses any other file).
WHEEL_SHA256 = "e89ecda38a354689425c910bea63ef3106513c7f4829cdfbbd65d892a57f4a52"


def _install(folder: Path) -> str | None:
    """Install the pyaff4 wheel into ``folder``; the reason when it cannot be."""
    requirement = folder.parent / f"pyaff4-{PYAFF4_VERSION}.txt"
    requirement.write_text(f"pyaff4=={PYAFF4_VERSION} --hash=sha256:{WHEEL_SHA256}\n")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--only-binary",
         ":all:", "--require-hashes", "--timeout", "20", "--retries", "1", "--target",
         str(folder), "-r", str(requirement)],
        capture_output=True, text=True, timeout=300, check=False)
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.startswith("ERROR")]
        return (lines or done.stderr.strip().splitlines() or ["pip failed"])[-1][:300]
    return None


def ensure_pyaff4(cache_dir: Path) -> ModuleType:
    """pyaff4, importable in this process (installed into ``cache_dir`` when needed); skips
    the calling test when it cannot be installed."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return importlib.import_module("pyaff4.container")
    except ImportError as exc:
        if exc.name != "pyaff4":
            raise  # pyaff4 is there, one of its dependencies is not: the extra is missing
    folder = cache_dir / f"pyaff4-{PYAFF4_VERSION}"
    with (cache_dir / "install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (folder / "pyaff4" / "container.py").is_file():
            reason = _install(folder)
            if reason is not None:
                pytest.skip(f"pyaff4 {PYAFF4_VERSION} could not be installed from PyPI: "
                            f"{reason}")
    sys.path.insert(0, str(folder))
    importlib.invalidate_caches()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pyaff4 warns about rdflib's XSD names on import
        return importlib.import_module("pyaff4.container")
