"""The hashes recorded for a source image's media, and their comparison with a conversion's.

Recorded hashes come from the image itself (an E01 stores MD5 and SHA-1) and from the logs next to
it, found and bound to the image by :mod:`bitwitness.verify.references` (the verifier's own
logic, so that convert and verify agree on what a log says). Only references that cover the whole
media count here: a conversion hashes the media, not the container files or pieces.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bitwitness.stream import ImageStream


@dataclass(frozen=True)
class MediaReference:
    """One recorded media hash and what the conversion computed for it."""

    source: str  #: "E01 stored hashes", "x.json", "x.md5", ...
    algorithm: str
    expected: str
    computed: str | None  #: None when the conversion did not compute that algorithm
    match: bool


@dataclass(frozen=True)
class Recorded:
    source: str
    algorithm: str
    value: str


def media_references(stream: ImageStream, files: Sequence[Path]
                     ) -> tuple[list[Recorded], list[str]]:
    """Every recorded hash of the whole media, and notes about logs that were left out."""
    from bitwitness.verify.references import (
        ImageLayout,
        bind_all,
        load_logs,
        stored_references,
    )

    stored = getattr(stream, "stored_hashes", None) or {}
    refs = list(stored_references({k.lower(): v for k, v in stored.items()}))
    logs, notes = load_logs(files)
    layout = ImageLayout(files=tuple(files), media_size=stream.size,
                         sector_size=stream.sector_size, pieces=stream.info.pieces)
    bound = bind_all(logs, layout)
    for ref in bound.references:
        whole = ref.start in (None, 0) and ref.end in (None, stream.size)
        if ref.file is None and whole:
            refs.append(ref)
    found: list[Recorded] = []
    for ref in refs:
        item = Recorded(ref.source, ref.algorithm, ref.value.lower())
        if item not in found:
            found.append(item)
    return found, [*notes, *bound.notes]


def compare(references: Iterable[Recorded], hashes: dict[str, str]) -> list[MediaReference]:
    """Each recorded hash against the computed one, judged by the verification engine
    (:func:`bitwitness.verify.verifier.compare_hashes`; a missing algorithm is a failure)."""
    from bitwitness.verify.model import HashReference, Match
    from bitwitness.verify.verifier import compare_hashes

    recorded = [HashReference(r.source, r.algorithm, r.value) for r in references]
    computed = {name: value.lower() for name, value in hashes.items()}
    return [MediaReference(c.reference.source, c.reference.algorithm, c.reference.value,
                           c.computed, c.match is Match.MATCH)
            for c in compare_hashes(recorded, computed)]
