"""Verification: recorded hashes found and bound, media read once, one verdict per image.

``verify_image``/``verify_images`` return :class:`ImageVerification` records; ``image_info``
describes an image the way ``ewfinfo`` does. Nothing here prints or writes to evidence.

Each re-export is imported on first use (PEP 562 ``__getattr__``), as in :mod:`bitwitness.ewf`:
``bitwitness info`` needs the records and the hash-log readers, not the verifier with its
thread pool, libewf pass and second readers (``tests/test_startup.py``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from bitwitness.lazymodules import submodule

if TYPE_CHECKING:
    from bitwitness.verify.model import (
        AgainstResult,
        BadChunk,
        HashComparison,
        HashReference,
        ImageVerification,
        Match,
        ReaderCheck,
        SectorRange,
        SizeCheck,
        Verdict,
    )
    from bitwitness.verify.verifier import VerifyOptions, verify_image, verify_images

#: Public name -> the submodule that defines it.
_EXPORTS = {
    "AgainstResult": "model",
    "BadChunk": "model",
    "HashComparison": "model",
    "HashReference": "model",
    "ImageVerification": "model",
    "Match": "model",
    "ReaderCheck": "model",
    "SectorRange": "model",
    "SizeCheck": "model",
    "Verdict": "model",
    "VerifyOptions": "verifier",
    "verify_image": "verifier",
    "verify_images": "verifier",
}

__all__ = [
    "AgainstResult",
    "BadChunk",
    "HashComparison",
    "HashReference",
    "ImageVerification",
    "Match",
    "ReaderCheck",
    "SectorRange",
    "SizeCheck",
    "Verdict",
    "VerifyOptions",
    "verify_image",
    "verify_images",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is not None:
        value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
        # kept, so later lookups are plain attribute reads (and monkeypatch can restore it)
        return globals().setdefault(name, value)
    return submodule(__name__, name)  # bitwitness.verify.verifier etc., as when imported eagerly


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
