"""``--verify``: re-read the finished image with the reader and compare every hash.

The image is opened the way any examiner would open it later (:func:`bitwitness.image.open_image`),
every media byte is read back and hashed, and the result is compared with the hashes computed
while acquiring and, for E01, with the hashes stored inside the image.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from bitwitness.errors import (
    BitWitnessError,
    CorruptImageError,
    IncompleteImageError,
    MissingSegmentError,
)
from bitwitness.hashing import ThreadedHasher
from bitwitness.progress import Mediator
from bitwitness.stream import ImageStream

EWF_MAGIC = b"EVF\x09\x0d\x0a\xff\x00"


class Verdict(StrEnum):
    """The same words as :mod:`bitwitness.verify` uses."""

    VERIFIED = "VERIFIED"
    MISMATCH = "MISMATCH"
    CORRUPT = "CORRUPT"
    INCOMPLETE = "INCOMPLETE"
    UNVERIFIED = "UNVERIFIED"


@dataclass(frozen=True)
class Verification:
    """One output set read back: verdict, the hashes read, the hashes the image stores."""

    path: Path
    verdict: Verdict
    hashes: dict[str, str]
    stored_hashes: dict[str, str] = field(default_factory=dict)
    detail: str = ""


def _open(path: Path) -> ImageStream:
    from bitwitness.image import detect

    detected = detect(path)
    if detected.format.name == "raw" and _is_ewf(path):
        # the E01 format is not registered in this build: use the EWF reader directly
        from bitwitness.ewf import open_ewf

        return open_ewf(path)
    return detected.format.open(path)


def _is_ewf(path: Path) -> bool:
    with path.open("rb") as fh:
        return fh.read(len(EWF_MAGIC)) == EWF_MAGIC


def verify_image(path: Path, expected: dict[str, str], algorithms: Sequence[str],
                 mediator: Mediator) -> Verification:
    """Read ``path``'s whole image back; compare with ``expected`` (and the stored hashes)."""
    try:
        stream = _open(path)
    except (IncompleteImageError, MissingSegmentError) as exc:
        return Verification(path, Verdict.INCOMPLETE, {}, detail=str(exc))
    except BitWitnessError as exc:
        return Verification(path, Verdict.CORRUPT, {}, detail=str(exc))
    task = mediator.begin(f"verify {path.name}", stream.size)
    hasher = ThreadedHasher(algorithms, depth=8)
    try:
        for block in stream.iter_blocks(1 << 20):
            hasher.update(block)
            task.advance(len(block))
    except CorruptImageError as exc:
        hasher.close()
        return Verification(path, Verdict.CORRUPT, {}, detail=str(exc))
    except BitWitnessError as exc:
        hasher.close()
        return Verification(path, Verdict.CORRUPT, {}, detail=str(exc))
    finally:
        task.finish()
        stored = dict(getattr(stream, "stored_hashes", {}) or {})
        stream.close()
    computed = hasher.close()
    problems = [f"{name}: computed {computed[name]}, expected {want}"
                for name, want in expected.items() if computed.get(name) != want]
    problems += [f"{name}: stored in the image {value}, computed {computed[name]}"
                 for name, value in stored.items() if name in computed and computed[name] != value]
    if problems:
        return Verification(path, Verdict.MISMATCH, computed, stored, "; ".join(problems))
    return Verification(path, Verdict.VERIFIED, computed, stored,
                        "every hash of the image read back matches")
