"""Image format implementations; :data:`FORMATS` is the one registry, in probe order.

The registry is built on first use (``bitwitness.images.FORMATS``), not when this package is
imported: acquiring a device or a file needs only :mod:`bitwitness.images.raw`, and loading every
format (the EWF reader with it) used to cost a third of ``bitwitness acquire``'s start-up. The
format modules are also reachable as attributes (``bitwitness.images.vhd``) as before.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from bitwitness.images import raw
from bitwitness.lazymodules import submodule

if TYPE_CHECKING:
    from bitwitness.image import ImageFormat

RAW = raw.FORMAT

#: Every format, in probe order, as (module under this package, attribute). Probe order
#: matters only for name claims; magic probes are unambiguous. EWF comes first: it is the
#: format most evidence arrives in, and its probe needs only its own module loaded.
_REGISTRY = (
    ("ewf", "FORMAT"),
    ("vhdi", "VHD_FORMAT"),
    ("vhdi", "VHDX_FORMAT"),
    ("vmdk_libyal", "FORMAT"),
    ("ova", "FORMAT"),
    ("qcow", "FORMAT"),
    ("modi", "FORMAT"),
    ("parallels", "FORMAT"),
    ("vdi", "FORMAT"),
    ("qed", "FORMAT"),
    ("android_sparse", "FORMAT"),
    ("ntfsclone", "FORMAT"),
    ("partclone", "FORMAT"),
    ("aff", "FORMAT"),
    ("aff4", "FORMAT"),
    ("splitraw", "FORMAT"),
    ("raw", "FORMAT"),
)

#: The registry as a list, built by ``__getattr__`` on first use.
FORMATS: list[ImageFormat]


def probe_order() -> Iterator[ImageFormat]:
    """The formats of :data:`FORMATS`, in its order, each module imported only when the
    iteration reaches it.

    Why: detection stops at the first probe that matches, and an E01 matches the first; loading
    the ten other format modules (cramjam, plistlib, lzma, subprocess with them) cost ~20 ms of
    every ``info``, ``ls`` and ``cat`` of an E01 (``tests/test_startup.py``)."""
    for module, attribute in _REGISTRY:
        yield getattr(importlib.import_module(f"{__name__}.{module}"), attribute)


def __getattr__(name: str) -> Any:
    if name == "FORMATS":
        # setdefault: threads racing on the first use all get the same list
        return globals().setdefault("FORMATS", list(probe_order()))
    return submodule(__name__, name)  # as when every submodule was imported eagerly


def __dir__() -> list[str]:
    return sorted({*globals(), "FORMATS"})


__all__ = ["FORMATS", "RAW"]
