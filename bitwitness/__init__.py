"""BitWitness: forensic acquisition, verification and evidence browsing.

The version comes from the installed package metadata (one source of truth: pyproject.toml).
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("bitwitness")
except PackageNotFoundError:  # pragma: no cover - running from an uninstalled checkout
    __version__ = "0+unknown"

TOOL_NAME = "BitWitness"

__all__ = ["TOOL_NAME", "__version__"]
