"""The one verdict of the product: what a check of an image (or of a copy of its media) found.

``verify`` gives one per image; ``acquire --verify`` and ``convert`` one per output they check
through the same engine; ``restore`` one per target. Only VERIFIED means the evidence is proven
unchanged. Kept in the core, without imports, so that every stage (and the acquisition's start-up)
can name it without loading the verification engine.
"""

from __future__ import annotations

from enum import StrEnum


class Verdict(StrEnum):
    """One word that sums a check up; the record beside it says why."""

    VERIFIED = "VERIFIED"  #: every recorded hash recomputed and equal, nothing else wrong
    MISMATCH = "MISMATCH"  #: a recomputed hash (or size, or the source) differs from the record
    CORRUPT = "CORRUPT"  #: stored data fails its checksum or does not decode (ranges given)
    INCOMPLETE = "INCOMPLETE"  #: never finished, a piece is missing, or only part was written
    UNVERIFIED = "UNVERIFIED"  #: nothing to compare with; the computed hashes are shown
    #: restore without ``--verify``: written, matching what the image records, not read back
    WRITTEN = "WRITTEN"
