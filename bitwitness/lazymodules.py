"""Module-level ``__getattr__`` support for a package that imports its parts on first use.

``bitwitness.images`` imports no format module up front (a file acquisition needs only
``images.raw``; ``tests/test_startup.py``), yet ``bitwitness.images.vhd`` after only
``import bitwitness.images`` still resolves: :func:`submodule` imports it then.
"""

from __future__ import annotations

import importlib
from types import ModuleType


def submodule(package: str, name: str) -> ModuleType:
    """``package.name`` imported on demand, or :class:`AttributeError` as for any missing name.

    Private names never import anything; a submodule that exists but fails to import raises
    its own error, not AttributeError.
    """
    if not name.startswith("_"):
        try:
            return importlib.import_module(f"{package}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{package}.{name}":
                raise
    raise AttributeError(f"module {package!r} has no attribute {name!r}")
