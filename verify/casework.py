"""Verifying every evidence item of a case and writing each verdict into its custody log.

Each evidence folder's image is found from its acquisition log (``outputs``), or, when there is
none, by the usual image names in the folder. Every item gets one custody event ``verify`` with
its verdict, computed hashes and image files, whatever the verdict: a failed verification is as
much part of the custody history as a passed one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bitwitness import acquisitionlog
from bitwitness.progress import Mediator, NullMediator
from bitwitness.verify.model import ImageVerification, Verdict
from bitwitness.verify.verifier import VerifyOptions, verify_images

#: Names an image may have in an evidence folder when no acquisition log says which it is.
IMAGE_PATTERNS = ("*.E01", "*.e01", "*.Ex01", "*.001", "*.000", "*.dd", "*.raw", "*.img",
                  "*.aa", "*.vhd", "*.vmdk")


@dataclass(frozen=True)
class ItemVerification:
    """One evidence item: its ID, the image found (if any) and the verification."""

    evidence_id: str
    image: Path | None
    result: ImageVerification
    custody_seq: int | None = None  #: the custody event recorded for it


def find_image(folder: Path, acquisition_log: Path | None) -> Path | None:
    """The image of an evidence folder: the acquisition log's first output, else by name."""
    if acquisition_log is not None:
        try:
            outputs = acquisitionlog.load(acquisition_log).outputs
        except acquisitionlog.LogFormatError:
            outputs = ()
        for output in outputs:
            recorded = Path(output.path)
            if recorded.suffix.lower() in (".json", ".txt", ".md5", ".sha1", ".sha256", ".log"):
                continue
            for candidate in (recorded, folder / recorded.name):
                if candidate.is_file():
                    return candidate
    for pattern in IMAGE_PATTERNS:
        found = sorted(folder.glob(pattern))
        if found:
            return found[0]
    return None


def verify_case(case_dir: Path, options: VerifyOptions | None = None,
                mediator: Mediator | None = None) -> list[ItemVerification]:
    """Verify every evidence item of the case and record a custody event for each."""
    from bitwitness.case import Case

    options = options or VerifyOptions()
    mediator = mediator or NullMediator()
    case = Case.load(case_dir)
    items = case.evidence_items()
    found = [(item, find_image(item.folder, item.acquisition_log)) for item in items]
    present = [(item, image) for item, image in found if image is not None]
    verified = iter(verify_images(
        [image for _, image in present], options, mediator,
        extra_logs=[(item.acquisition_log,) if item.acquisition_log else ()
                    for item, _ in present]))
    out = []
    for item, image in found:
        if image is None:
            result = ImageVerification(
                image=item.folder, format="none", files=(), media_size=0, sector_size=512,
                verdict=Verdict.INCOMPLETE, computed={},
                problems=(f"no image file found in evidence folder {item.folder}",))
        else:
            result = next(verified)
        event = case.record("verify", evidence_id=item.id, details=custody_details(result))
        out.append(ItemVerification(item.id, image, result, getattr(event, "seq", None)))
    return out


def custody_details(result: ImageVerification) -> dict[str, Any]:
    """What the custody event records about a verification."""
    return {
        "verdict": result.verdict.value,
        "hashes": dict(result.computed),
        "image_files": [str(f) for f in result.files],
        "media_size": result.media_size,
        "compared": [{"algorithm": c.reference.algorithm, "scope": c.reference.scope,
                      "source": c.reference.source, "match": c.match.value}
                     for c in result.comparisons],
        "problems": list(result.problems),
        "libewf_agrees": None if result.libewf is None else result.libewf.agree,
        "second_reader_agrees": (None if result.second_reader is None
                                 else result.second_reader.agree),
    }
