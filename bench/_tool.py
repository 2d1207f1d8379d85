"""How the benchmarks run BitWitness: as an installed tool, with its bytecode compiled.

Why: ``pip install`` compiles every module to bytecode, so an installed ``bitwitness`` starts
from ``.pyc`` files. A checkout run with ``PYTHONDONTWRITEBYTECODE`` set (as on some CI and
sandbox machines) would instead compile ~40 modules from source at every start, ~30 ms that no
installed copy pays, on measurements of a few seconds. So the benchmarks compile the sources
once (what pip does) and let the child processes use and keep bytecode.
"""

from __future__ import annotations

import compileall
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
#: The source folders that make up the ``bitwitness`` package (see pyproject.toml).
SOURCES = ("bitwitness", "acquire", "verify", "report")


def compile_sources() -> None:
    """Compile the package's sources to bytecode, as ``pip install`` does (also what the test
    suite does before its tests start ``python -m bitwitness``: tests/conftest.py)."""
    for folder in SOURCES:
        path = REPO / folder
        if path.is_dir():
            compileall.compile_dir(path, quiet=1)


def bitwitness_command() -> list[str]:
    """The command line that starts BitWitness, after making sure its bytecode is compiled."""
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)  # inherited by every child process
    compile_sources()
    return [sys.executable, "-m", "bitwitness"]
