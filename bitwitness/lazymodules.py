"""Module-level ``__getattr__`` support for packages that import their parts on first use.

Why: ``bitwitness acquire`` starts in ~0.1 s because ``bitwitness.ewf`` and ``bitwitness.images``
no longer import every submodule up front. Code written when they did still says
``bitwitness.images.vhd`` after only ``import bitwitness.images``; this keeps that working, in one
place, for both packages.
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
