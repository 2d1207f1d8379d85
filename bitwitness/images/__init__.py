"""Image format implementations; :data:`FORMATS` is the one registry, in probe order.

The registry is built on first use (``bitwitness.images.FORMATS``), not when this package is
imported: acquiring a device or a file needs only :mod:`bitwitness.images.raw`, and loading every
format (the EWF reader with it) used to cost a third of ``bitwitness acquire``'s start-up. The
format modules are also reachable as attributes (``bitwitness.images.vhd``) as before.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bitwitness.images import raw
from bitwitness.lazymodules import submodule

if TYPE_CHECKING:
    from bitwitness.image import ImageFormat

RAW = raw.FORMAT

#: Probe order matters only for name claims; magic probes are unambiguous. Built by ``_load``.
FORMATS: list[ImageFormat]


def _load() -> list[ImageFormat]:
    from bitwitness.images import (
        aff,
        aff4,
        android_sparse,
        modi,
        parallels,
        qcow,
        splitraw,
        vdi,
        vhdi,
        vmdk_libyal,
    )

    formats: list[ImageFormat] = [
        vhdi.VHD_FORMAT,
        vhdi.VHDX_FORMAT,
        vmdk_libyal.FORMAT,
        qcow.FORMAT,
        modi.FORMAT,
        parallels.FORMAT,
        vdi.FORMAT,
        android_sparse.FORMAT,
        aff.FORMAT,
        aff4.FORMAT,
        splitraw.FORMAT,
        raw.FORMAT,
    ]
    try:  # The EWF format registers itself here once bitwitness.images.ewf exists.
        from bitwitness.images import ewf

        formats.insert(0, ewf.FORMAT)
    except ImportError:  # pragma: no cover - during development only
        pass
    return formats


def __getattr__(name: str) -> Any:
    if name == "FORMATS":
        # setdefault: threads racing on the first use all get the same list
        return globals().setdefault("FORMATS", _load())
    return submodule(__name__, name)  # as when every submodule was imported eagerly


def __dir__() -> list[str]:
    return sorted({*globals(), "FORMATS"})


__all__ = ["FORMATS", "RAW"]
