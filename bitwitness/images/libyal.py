"""Containers read through the libyal Python bindings (libqcow, libvhdi, libvmdk, libmodi, libphdi).

The libyal libraries read these containers completely (compressed clusters, sparse tables,
differencing chains) and are maintained for forensic use; here they are wrapped in the one stream
contract. Every file a binding reads is opened by us, read-only and without touching its access
time (:func:`~bitwitness.images.raw.open_readonly`), and handed to the binding as a file object.

Parent (backing) files are looked for only inside the image's own folder: a recorded name that
is a plain relative path is taken as it is; an absolute path or one that climbs out with ``..``
is reduced to its last component, still inside the folder. Nothing outside the folder of the
evidence is opened unless the user names it (:func:`named_parents`, the CLI's ``--parent``): a
named file whose name is the recorded name's last component is used wherever it lies.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from bitwitness.errors import CorruptImageError, InputError, UnsupportedFormatError
from bitwitness.evidence_io import confine_part
from bitwitness.images.raw import open_readonly
from bitwitness.stream import ImageStream, StreamInfo

#: How many parents a differencing chain may have before it is taken as a loop or hostile.
MAX_CHAIN = 32

#: Parent files the user named (``--parent``), used in place of the image's own folder.
_NAMED_PARENTS: ContextVar[tuple[Path, ...]] = ContextVar("named_parents", default=())


@contextmanager
def named_parents(paths: Sequence[Path]) -> Iterator[None]:
    """Within the block, a recorded parent whose file name is one of ``paths``' is that path."""
    token = _NAMED_PARENTS.set(tuple(Path(p) for p in paths))
    try:
        yield
    finally:
        _NAMED_PARENTS.reset(token)


def chosen_parents() -> tuple[Path, ...]:
    """The parent files named for this context (``--parent``), for a process started to do the
    same work (a background mount)."""
    return _NAMED_PARENTS.get()


def set_named_parents(paths: Sequence[Path]) -> Callable[[], None]:
    """Name parent files for the rest of this context (the CLI, once per command); returns
    what undoes it."""
    token = _NAMED_PARENTS.set(tuple(Path(p) for p in paths))
    return lambda: _NAMED_PARENTS.reset(token)


def binding(module: str, package: str, what: str) -> Any:
    """Import a libyal binding, or refuse the container naming the package that reads it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise UnsupportedFormatError(
            f"{what}: reading it needs the Python package {package}, which is not installed "
            f"(pip install {package})") from exc


def open_file_object(path: Path) -> Any:
    """``path`` opened read-only (``O_NOATIME`` where permitted) as an unbuffered file object."""
    return os.fdopen(open_readonly(path), "rb", buffering=0)


def first_line(exc: BaseException) -> str:
    """libyal messages chain every calling function, outermost first ("pyx_open: unable to open
    handle. libx_read: unable to parse XML. ..."); the second says what went wrong."""
    parts = [p.strip() for p in str(exc).replace("\n", " ").split(". ") if p.strip()]
    if not parts:
        return type(exc).__name__
    inner = parts[1] if len(parts) > 1 else parts[0]
    return inner.split(": ", 1)[-1].rstrip(".")


def contained(folder: Path, recorded: str) -> Path:
    """Where a recorded parent or extent name lies inside ``folder`` (never outside it).

    Differencing disks record their parent as an absolute path on the machine that made them
    (``C:\\VMs\\base.vhdx``), so an absolute or ``..`` name is looked for by its last
    component in the image's own folder. A file found there is then held to the evidence
    opener's rules (:func:`bitwitness.evidence_io.confine_part`): no symbolic link out of the
    folder, nothing but a regular file, unless the examiner named it with ``--part``.
    """
    if not recorded or "\x00" in recorded:
        raise CorruptImageError(f"an empty or invalid file name is recorded: {recorded!r}")
    windows = "\\" in recorded or (len(recorded) > 1 and recorded[1] == ":")
    pure = PureWindowsPath(recorded) if windows else PurePosixPath(recorded)
    if pure.is_absolute() or pure.anchor or ".." in pure.parts:
        pure = PurePosixPath(pure.name)
    candidate = folder.joinpath(*pure.parts)
    try:
        present = candidate.exists() or candidate.is_symlink()
    except (OSError, ValueError) as exc:  # too long for a file name, or not encodable as one
        shown = recorded if len(recorded) <= 80 else f"{recorded[:80]}..."
        raise CorruptImageError(f"the recorded file name {shown!r} cannot name a file here: "
                                f"{getattr(exc, 'strerror', None) or exc}") from exc
    if present:
        confine_part(folder, "/".join(pure.parts), what="part")
    return candidate


class LibyalStream(ImageStream):
    """The media of a container, read through a libyal handle; owns the handle, its file objects
    and the streams of its parents."""

    alignment = 1

    def __init__(self, handle: Any, *, fmt: str, files: Sequence[Path], reader: str,
                 details: dict[str, Any] | None = None, sector_size: int = 512,
                 owned: Sequence[Any] = (), parents: Sequence[Path] = ()) -> None:
        self._handle = handle
        self._owned = list(owned)
        self._lock = threading.Lock()
        self._format = fmt
        self._files = tuple(files)
        self._reader = reader
        self._details = dict(details or {})
        self.parents = tuple(parents)
        super().__init__(int(handle.get_media_size()), sector_size=sector_size)

    def _read_aligned(self, offset: int, length: int) -> bytes:
        try:
            with self._lock:  # one handle: its offset and caches are not shared across threads
                data = bytes(self._handle.read_buffer_at_offset(length, offset))
        except (OSError, ValueError, MemoryError) as exc:
            raise CorruptImageError(f"{self._reader} cannot read the media: {first_line(exc)}",
                                    path=self._files[0], media_offset=offset) from exc
        if len(data) != length:
            raise CorruptImageError(f"{self._reader} returned {len(data)} of {length} bytes",
                                    path=self._files[0], media_offset=offset)
        return data

    @property
    def info(self) -> StreamInfo:
        details = {"reader": self._reader, **self._details}
        if self.parents:
            details["parents"] = [str(p) for p in self.parents]
        return StreamInfo(format=self._format, files=self._files, media_size=self.size,
                          sector_size=self.sector_size, details=details)

    def close(self) -> None:
        if not self.closed:
            with contextlib.suppress(OSError):
                self._handle.close()
            for item in reversed(self._owned):
                item.close()
        super().close()


def open_handle(factory: Callable[[], Any], path: Path, what: str) -> tuple[Any, Any]:
    """A new handle of ``factory`` opened on ``path``'s file object; closes both on failure."""
    fobj = open_file_object(path)
    handle = factory()
    try:
        handle.open_file_object(fobj)
    except (OSError, ValueError, TypeError, MemoryError) as exc:
        fobj.close()
        raise CorruptImageError(f"{what} cannot be read: {first_line(exc)}", path=path) from exc
    return handle, fobj


def find_parent(child: Path, recorded: str, chain: Sequence[Path]) -> Path:
    """The parent file ``child`` records, inside ``child``'s folder (or named by the user);
    loops and overlong chains are refused."""
    parent = contained(child.parent, recorded)
    for named in _NAMED_PARENTS.get():
        if named.name == parent.name:
            parent = named
            break
    if len(chain) >= MAX_CHAIN:
        raise CorruptImageError(f"more than {MAX_CHAIN} parents in the differencing chain",
                                path=child)
    if parent.resolve() in {p.resolve() for p in chain}:
        raise CorruptImageError(f"the differencing chain loops back to {parent.name}",
                                path=child)
    if not parent.is_file():
        raise InputError(
            f"{child}: its parent (backing) file {recorded!r} is not in the image's folder "
            f"(looked for {parent}); put the parent beside it or name it with --parent")
    return parent
