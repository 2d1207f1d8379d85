"""BitWitness: forensic acquisition, verification and evidence browsing.

The product has three stages, each a top-level folder of the repository and a subpackage once
installed: ``acquire/`` (``bitwitness.acquire``: acquire, convert, restore), ``verify/``
(``bitwitness.verify``) and ``report/`` (``bitwitness.report``: browsing and reports). This
package is the core that every stage uses.

``__version__`` below is the one source of truth for the version: pyproject.toml reads it
(``[tool.setuptools.dynamic]``) into the package metadata.
"""

from __future__ import annotations

from pathlib import Path

__version__ = "0.1.0"

TOOL_NAME = "BitWitness"

#: The stage folders: inside ``bitwitness/`` once installed, beside it in a checkout.
STAGES = ("acquire", "verify", "report")


def _checkout_stages() -> None:
    """Let a checkout run as installed (``python -m bitwitness`` from the repository root).

    From the root, Python imports this folder rather than the installed package, and here the
    stages stand beside ``bitwitness/``, not inside it. Adding the repository root to this
    package's search path makes ``bitwitness.acquire`` resolve to ``<root>/acquire`` exactly as
    the installed layout (pyproject's ``package-dir``) does. An installed package holds its
    stages inside itself and is left alone.
    """
    here = Path(__file__).resolve().parent
    if (here / STAGES[0]).is_dir():
        return
    root = here.parent
    if all((root / stage / "__init__.py").is_file() for stage in STAGES):
        __path__.append(str(root))


_checkout_stages()

__all__ = ["STAGES", "TOOL_NAME", "__version__"]
