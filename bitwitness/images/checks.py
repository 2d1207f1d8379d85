"""What a container records about itself, checked: the outcome of one such check.

Formats that record checksums of their own structures or data (a UDIF image's data-fork CRC-32,
...) offer ``self_checks(path, stream)`` on the format object; ``verify`` runs them and a failed
check makes the verdict CORRUPT, saying what and where.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ContainerCheck:
    """One checksum or consistency check the container's own records allow."""

    what: str  #: "UDIF data fork CRC-32"
    ok: bool
    detail: str  #: recorded and computed values, or why it could not be checked
