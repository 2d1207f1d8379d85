"""Verification: recorded hashes found and bound, media read once, one verdict per image.

``verify_image``/``verify_images`` return :class:`ImageVerification` records; ``image_info``
describes an image the way ``ewfinfo`` does. Nothing here prints or writes to evidence.
"""

from __future__ import annotations

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
