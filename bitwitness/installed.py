"""Versions of installed distributions: ``importlib.metadata.version``'s answer, found cheaply.

Acquisition logs record the versions of the libraries the evidence depends on. Importing
:mod:`importlib.metadata` costs ~15 ms (it loads ``email``, ``zipfile``, ``csv``...), a tenth of
``bitwitness acquire``'s fixed start-up, to read one header of one file per library.
:func:`version` walks :data:`sys.path` the way importlib.metadata's path finder does and reads the
``Version`` header of the first matching ``NAME-VERSION.dist-info/METADATA`` itself. Whatever that
plain path cannot decide exactly as importlib.metadata would (another distribution finder on
:data:`sys.meta_path`, a zip file or egg on the path, an ``.egg-info`` match, an unusual METADATA
file) is handed to importlib.metadata, so the answer is always the one it gives.
"""

from __future__ import annotations

import os
import re
import sys
from importlib.machinery import PathFinder
from pathlib import Path

#: importlib.metadata's ``Prepared.normalize`` (PEP 503 names, ``-`` as ``_``).
_SEPARATORS = re.compile(r"[-_.]+")
#: A header line as the ``email`` parser recognises one (field name, then a colon).
_HEADER = re.compile(r"[\041-\071\073-\176]+:")


class _Undecided(Exception):  # noqa: N818 - internal signal, not an error
    """The plain path cannot tell; importlib.metadata decides."""


def version(dist: str) -> str:
    """The version of the installed distribution ``dist``, as ``importlib.metadata.version``.

    Raises :class:`LookupError` when ``dist`` is not installed.
    """
    try:
        return _version_from_path(dist)
    except _Undecided:
        pass
    from importlib import metadata  # only here: sparing this import is the point of the module

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError as exc:
        raise LookupError(dist) from exc


def _normalize(name: str) -> str:
    return _SEPARATORS.sub("-", name).lower().replace("-", "_")


def _version_from_path(dist: str) -> str:
    finders = [f for f in sys.meta_path if getattr(f, "find_distributions", None) is not None]
    if not dist or finders != [PathFinder]:
        raise _Undecided
    wanted = _normalize(dist)
    for entry in sys.path:
        if not isinstance(entry, str) or Path(entry).name.lower().endswith(".egg"):
            raise _Undecided
        root = Path(entry or ".")
        try:
            # os.listdir, not Path.iterdir: the same listing order as importlib.metadata's Lookup
            children = os.listdir(root)  # noqa: PTH208
        except OSError:
            if root.exists():  # a zip file, say: importlib.metadata looks inside it
                raise _Undecided from None
            continue
        for child in children:  # the first match in listing order wins
            low = child.lower()
            if low.endswith((".dist-info", ".egg-info")) and \
                    _normalize(low.rpartition(".")[0].partition("-")[0]) == wanted:
                if not low.endswith(".dist-info"):
                    raise _Undecided
                return _metadata_version(root / child)
    raise LookupError(dist)


def _metadata_version(dist_info: Path) -> str:
    """The first ``Version`` header of ``dist_info/METADATA``, as the ``email`` parser reads it."""
    try:
        text = (dist_info / "METADATA").read_text(encoding="utf-8")
    except (OSError, ValueError):
        raise _Undecided from None
    lines = text.split("\n")
    for number, line in enumerate(lines):
        if not line or line.startswith("From ") or not (
                line[0] in " \t" or _HEADER.match(line)):
            break  # the end of the headers (or something only the real parser should judge)
        name, _, value = line.partition(":")
        if line[0] not in " \t" and name.lower() == "version":
            following = lines[number + 1] if number + 1 < len(lines) else ""
            if following[:1] in (" ", "\t"):  # folded onto a second line
                break
            return value.lstrip(" \t")
    raise _Undecided
