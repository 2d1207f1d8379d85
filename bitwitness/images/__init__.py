"""Image format implementations; :data:`FORMATS` is the one registry, in probe order."""

from __future__ import annotations

from bitwitness.images import raw, splitraw, vhd, vmdk

RAW = raw.FORMAT

#: Probe order matters only for name claims; magic probes are unambiguous.
FORMATS = [
    vhd.FORMAT,
    vmdk.FORMAT,
    splitraw.FORMAT,
    raw.FORMAT,
]

try:  # The EWF format registers itself here once bitwitness.images.ewf exists.
    from bitwitness.images import ewf

    FORMATS.insert(0, ewf.FORMAT)
except ImportError:  # pragma: no cover - during development only
    pass

__all__ = ["FORMATS", "RAW"]
