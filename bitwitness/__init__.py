"""BitWitness: forensic acquisition, verification and evidence browsing.

``__version__`` below is the one source of truth for the version: pyproject.toml reads it
(``[tool.setuptools.dynamic]``) into the package metadata. A plain constant, not a lookup through
``importlib.metadata``, because that import alone cost ~20 ms of every command's start-up.
"""

from __future__ import annotations

__version__ = "0.1.0"

TOOL_NAME = "BitWitness"

__all__ = ["TOOL_NAME", "__version__"]
