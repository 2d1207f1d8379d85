"""The machine an acquisition ran on, as logs record it: names read from the kernel, cheaply.

Why not :func:`platform.platform`: on Linux it runs ``uname -p`` in a subprocess and scans the
interpreter's binary for the glibc version, ~6 ms of every acquisition's start-up (plus ~2 ms to
import :mod:`platform`), for a string the kernel and libc give at once. :func:`platform_name`
returns what :func:`platform.platform` returns on Linux with glibc; elsewhere it asks
:func:`platform.platform` itself.
"""

from __future__ import annotations

import os

#: Characters :func:`platform.platform` replaces with ``-`` (a space becomes ``_``).
_UNSAFE = str.maketrans({" ": "_", "/": "-", "\\": "-", ":": "-", ";": "-", '"': "-",
                         "(": "-", ")": "-"})


def system_name() -> str:
    """The operating system's name (``Linux``), as :func:`platform.system` gives it."""
    return os.uname().sysname


def platform_name() -> str:
    """A one-line description of the system (``Linux-6.1.0-x86_64-with-glibc2.36``)."""
    libc = _glibc()
    uname = os.uname()
    if uname.sysname != "Linux" or libc is None:
        import platform

        return platform.platform()
    parts = (uname.sysname, uname.release, uname.machine, "with", libc)
    name = "-".join(part.translate(_UNSAFE) for part in parts if part)
    while "--" in name:
        name = name.replace("--", "-")
    return name


def _glibc() -> str | None:
    """``glibc2.36`` from the C library itself, or ``None`` (another libc, or no answer)."""
    try:
        value = os.confstr("CS_GNU_LIBC_VERSION")
    except (AttributeError, ValueError, OSError):
        return None
    if not value or not value.startswith("glibc "):
        return None
    return "glibc" + value.split(" ", 1)[1]
