"""``--verify``: a job checks what it wrote, through the verification engine.

The finished image is verified the way ``bitwitness verify`` would verify it later
(:func:`bitwitness.verify.verify_image`: opened through the format registry, every media byte
read back and hashed, the hashes stored inside an E01 compared), with the hashes the job computed
while writing as the recorded reference. Logs next to the image are not looked for: the job's own
log is still the preliminary one, which says the run did not finish.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from bitwitness.errors import Interrupted
from bitwitness.progress import Mediator
from bitwitness.verdict import Verdict

#: Where the expected hashes come from, as the verification names its references.
WRITTEN_REFERENCE = "hashes computed while writing"
#: The detail of a check stopped (SIGINT/SIGTERM) before the image was read back in full.
STOPPED = "stopped before the image was read back in full: written, not verified"


@dataclass(frozen=True)
class Verification:
    """One output read back: verdict, the hashes read, the hashes the image stores."""

    path: Path
    verdict: Verdict
    hashes: dict[str, str]
    stored_hashes: dict[str, str] = field(default_factory=dict)
    detail: str = ""


def verify_output(path: Path, expected: dict[str, str], mediator: Mediator, *,
                  stop: threading.Event | None = None) -> Verification:
    """Read ``path``'s whole image back; compare with ``expected`` (and the stored hashes).
    Setting ``stop`` ends the reading early, and so does a second SIGINT/SIGTERM (the
    :class:`KeyboardInterrupt` that :func:`bitwitness.signals.stop_on_signals` raises): the
    verdict is then INCOMPLETE (:data:`STOPPED`) and the job still writes its final log; the
    output itself stays finished, its hashes those computed while writing."""
    from bitwitness.verify.model import HashReference
    from bitwitness.verify.verifier import VerifyOptions, verify_image

    references = tuple(HashReference(WRITTEN_REFERENCE, algorithm, value)
                       for algorithm, value in expected.items())
    options = VerifyOptions(expected=references, find_logs=False,
                            cancel=stop or threading.Event())
    try:
        result = verify_image(path, options, mediator)
    except (Interrupted, KeyboardInterrupt):
        return Verification(path, Verdict.INCOMPLETE, {}, detail=STOPPED)
    detail = "; ".join(result.problems) or "every hash of the image read back matches"
    return Verification(path, result.verdict, dict(result.computed), dict(result.stored), detail)
