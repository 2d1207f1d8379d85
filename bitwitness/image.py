"""Opening images: one registry of formats, detection by signature first, name second, raw last.

Each format lives in its own module under :mod:`bitwitness.images` and is listed once in
:data:`FORMATS`. Adding a format touches that module and one line there.

A file that carries the signature of a container (:mod:`bitwitness.images.signatures`) that no
format here reads is refused naming that container: it is never taken for raw media. Raw is the
last resort, for data with no container signature, or on purpose (``forced="raw"``, the CLI's
``--format raw``).

``open_image(path)`` accepts any piece of a multi-file image (``x.E02``, ``x.002``) and returns an
:class:`~bitwitness.stream.ImageStream` over the whole media, opened read-only.
"""

from __future__ import annotations

import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from bitwitness.errors import CorruptImageError, InputError, UnsupportedFormatError, UsageError
from bitwitness.images.snapshot_choice import chosen_snapshot
from bitwitness.stream import ImageStream

if TYPE_CHECKING:
    from bitwitness.images.signatures import Container

#: How many bytes of the file detection looks at.
HEAD_SIZE = 4096
#: Formats whose images keep internal snapshots, read with ``--snapshot``.
SNAPSHOT_FORMATS = frozenset({"qcow"})


class ImageFormat(Protocol):
    """What each format module provides (as module-level attributes or a class)."""

    name: str

    def probe(self, path: Path, head: bytes) -> bool:
        """True when ``path`` (whose first bytes are ``head``) is this format, by content."""

    def claims_name(self, path: Path) -> bool:
        """True when the file name alone says this format (``.E01``, ``.001``)."""

    def files(self, path: Path) -> list[Path]:
        """Every file of the image set that ``path`` belongs to, in order."""

    def open(self, path: Path) -> ImageStream:
        """Open the whole image set read-only."""


@dataclass(frozen=True)
class Detected:
    """The format chosen for a path and how it was chosen."""

    format: ImageFormat
    by: str  #: "magic", "name", "fallback" (raw: no container signature) or "forced"

    @property
    def description(self) -> str:
        """How ``info`` and ``verify`` name what was chosen, raw saying why it is raw."""
        from bitwitness.images import RAW

        if self.format is not RAW:
            return self.format.name
        if self.by == "forced":
            return "raw (forced with --format raw)"
        return "raw (no container signature)"


def _formats() -> Sequence[ImageFormat]:
    # Imported lazily so that "bitwitness --help" does not load every format.
    from bitwitness.images import FORMATS

    return FORMATS


def _read_head(path: Path) -> bytes:
    """The first bytes of ``path``, read through the one read-only evidence opener."""
    from bitwitness.evidence_io import read_head

    return read_head(path, HEAD_SIZE)


def format_names() -> list[str]:
    """The names ``--format`` accepts."""
    return [fmt.name for fmt in _formats()]


def detect(path: str | Path, forced: str | None = None) -> Detected:
    """Choose the format of ``path``: its signature first, file name second, raw last.

    ``forced`` names a format to use whatever the content says (``"raw"``: read the file as the
    media, on purpose). An internal snapshot chosen for the command (``--snapshot``) is read by
    the formats that keep them (QCOW2); any other image is refused here, rather than read in its
    current state in the snapshot's place.
    """
    detected = _detect(Path(path), forced)
    wanted = chosen_snapshot()
    if wanted is not None and detected.format.name not in SNAPSHOT_FORMATS:
        raise InputError(f"{path}: --snapshot {wanted!r}: a {detected.format.name} image keeps "
                         "no internal snapshots (QCOW2 images keep them)")
    return detected


def _detect(path: Path, forced: str | None) -> Detected:
    """:func:`detect` before the snapshot choice is checked."""
    from bitwitness.images import RAW

    if not path.exists():
        raise InputError(f"{path}: no such file or device")
    if forced is not None:
        return Detected(_named(forced), "forced")
    if path.is_dir():
        from bitwitness.images import signatures

        bundle = signatures.identify_directory(path)
        if bundle is None:
            raise InputError(f"{path}: is a directory, not an image")
        return Detected(_reader_for(path, bundle), "magic")
    head = _read_head(path)
    by_content = _by_content(path, head)
    if by_content is not None:
        return by_content
    mode = path.stat().st_mode
    for fmt in _formats():
        if fmt.claims_name(path):
            _refuse_empty_claimed(fmt, path, head)
            return Detected(fmt, "name")
    if not (stat.S_ISREG(mode) or stat.S_ISBLK(mode)):
        raise UnsupportedFormatError(f"{path}: not a regular file or block device")
    _refuse_empty(path, head)
    _refuse_misnamed(path, mode)
    return Detected(RAW, "fallback")


#: File name endings of containers that are never raw media, and what they name: a file so
#: named whose signature is not there is a damaged container (or a misnamed file), not a disk.
_CONTAINER_SUFFIXES = {
    ".qcow2": "QCOW2", ".qcow": "QCOW", ".qed": "QED", ".vdi": "VirtualBox VDI",
    ".vhdx": "VHDX", ".avhdx": "VHDX (Hyper-V checkpoint)", ".vhd": "VHD",
    ".avhd": "VHD (Hyper-V checkpoint)", ".hds": "Parallels", ".aff": "AFF", ".aff4": "AFF4",
    ".ova": "OVA", ".sparseimage": "Apple sparse image",
}


def _refuse_misnamed(path: Path, mode: int) -> None:
    """Refuse a file named as a container (``x.qcow2``) whose content has no container
    signature: read as raw, its media would be the container's own bytes, hashed and browsed as
    if they were the disk's (one damaged byte of a header did that silently). ``--format raw``
    reads it so on purpose."""
    what = _CONTAINER_SUFFIXES.get(path.suffix.lower())
    if what is not None and stat.S_ISREG(mode):
        raise UnsupportedFormatError(
            f"{path}: named as a {what} image, but it does not begin (or end) as one: a damaged "
            f"header or a misnamed file; not read as raw media (--format raw reads the file's "
            "own bytes as the media, on purpose)")


def _by_content(path: Path, head: bytes) -> Detected | None:
    """The format the content says: a reader's own probe, else a known container signature
    (read by the format that lists it, or refused). A block device is media whatever its first
    bytes look like. The probes run in the registry's order, each format loaded as its turn
    comes (:func:`~bitwitness.images.probe_order`)."""
    from bitwitness.images import probe_order

    for fmt in probe_order():
        if fmt.probe(path, head):
            return Detected(fmt, "magic")
    if stat.S_ISBLK(path.stat().st_mode):
        return None
    container = _identify(path, head)
    return None if container is None else Detected(_reader_for(path, container), "magic")


def _identify(path: Path, head: bytes) -> Container | None:
    """The container signature of the image ``path`` belongs to. A later piece of a split raw
    set (``x.002``) starts mid-media, where any bytes may lie: the set's first piece speaks."""
    from bitwitness.errors import MissingSegmentError
    from bitwitness.images import signatures, splitraw

    try:
        pieces = splitraw.split_pieces(path)
    except MissingSegmentError:
        pieces = None
    if pieces and pieces[0] != path:
        path, head = pieces[0], _read_head(pieces[0])
    return signatures.identify(path, head)


def _named(name: str) -> ImageFormat:
    for fmt in _formats():
        if fmt.name == name:
            return fmt
    raise UsageError(f"unknown format {name!r} (known: {', '.join(format_names())})")


def _reader_for(path: Path, container: Container) -> ImageFormat:
    """The format that reads ``container``; a container nothing here reads is refused by name."""
    for fmt in _formats():
        if container.name in getattr(fmt, "containers", ()):
            return fmt
    raise UnsupportedFormatError(
        f"{path}: {container.label}: BitWitness recognises this container but cannot read it; "
        "it is not raw media (convert it to raw or E01 with a tool that reads it, or pass "
        "--format raw to read the container file itself as the media)")


def _refuse_empty_claimed(fmt: ImageFormat, path: Path, head: bytes) -> None:
    """An empty file a format claims by its name: raw is no image (:func:`_refuse_empty`); an
    empty ``x.vhd``/``x.vmdk`` is a copy or a write that failed, damaged evidence as an empty
    E01 is (whose reader says so), where libvhdi and libvmdk only said they could not read
    "file information data at offset: 0"."""
    from bitwitness.images import RAW

    if fmt is RAW:
        _refuse_empty(path, head)
    elif not head and fmt.name in ("vhd", "vmdk") and path.is_file():
        raise CorruptImageError(f"{path}: empty file (0 bytes): named as a {fmt.name.upper()} "
                                "image, it holds nothing of one (not even its header or "
                                "footer)")


def _refuse_empty(path: Path, head: bytes) -> None:
    """A 0-byte file read as raw would pass for empty media (and 'verify' as a hash of nothing):
    it is a wrong path or a failed copy, so it is refused as input. Empty E01/VHD/VMDK files
    are left to their readers, which call them damaged (an evidence problem)."""
    if not head and path.is_file():
        raise InputError(f"{path}: empty file (0 bytes), not an image")


def open_image(path: str | Path, forced: str | None = None) -> ImageStream:
    """Open any supported image (or device) read-only; the caller closes it.

    ``forced`` names the format to use regardless of the content (see :func:`detect`). An
    internal snapshot chosen for the command (``--snapshot``) is read by the formats that keep
    them (QCOW2); any other image refuses it rather than give its current state in its place.
    """
    return detect(path, forced).format.open(Path(path))


def image_files(path: str | Path, forced: str | None = None) -> list[Path]:
    """Every file that makes up the image ``path`` belongs to."""
    return detect(path, forced).format.files(Path(path))
