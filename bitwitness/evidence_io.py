"""The one way evidence is opened and read: read-only, no access-time update, bounded.

Why one module: evidence comes from suspects. Every image reader, format probe and multi-file
set resolver goes through here, so that three rules hold everywhere at once:

* **Read-only, access time kept.** :func:`open_readonly` opens ``O_RDONLY`` with ``O_NOATIME``
  where the kernel allows it (the file's owner or root), so that reading changes neither the
  bytes nor the access time of the evidence.
* **Offsets checked before any read.** A header can claim any 64-bit offset or length;
  :func:`check_span` and :func:`pread_checked` refuse one that runs past the file (or past
  2^63, where ``os.pread`` itself fails) with a :class:`CorruptImageError` naming the place,
  before a byte is read or a buffer allocated.
* **Only the evidence.** A multi-file image names its other parts (VMDK extents, split pieces,
  EWF segments); :func:`confine_part` accepts only regular files inside the image's own folder,
  unless the examiner named that file on the command line (:func:`allow_parts`).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

from bitwitness.errors import CorruptImageError, InputError, NoSecondReader

#: ``os.pread`` takes a signed 64-bit offset; nothing in a real file lies beyond it.
MAX_OFFSET = (1 << 63) - 1

#: Files the examiner named explicitly (``bitwitness --part FILE``): accepted as parts of a
#: multi-file image even outside the image's folder.
_EXPLICIT: set[Path] = set()


def os_open_readonly(path: Path | str | os.PathLike[str]) -> int:
    """:func:`open_readonly` for callers that handle ``OSError`` themselves."""
    flags = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)
    noatime = getattr(os, "O_NOATIME", 0)
    try:
        return os.open(path, flags | noatime)
    except PermissionError:
        if not noatime:
            raise
        return os.open(path, flags)  # O_NOATIME needs ownership; fall back quietly


def open_readonly(path: Path | str) -> int:
    """Open ``path`` read-only (with ``O_NOATIME`` when permitted) and return the descriptor."""
    try:
        return os_open_readonly(path)
    except FileNotFoundError as exc:
        raise InputError(f"{path}: no such file or device") from exc
    except IsADirectoryError as exc:
        raise InputError(f"{path}: is a directory, not an image") from exc
    except PermissionError as exc:
        raise InputError(f"{path}: permission denied (run as root to read devices)") from exc
    except OSError as exc:
        raise InputError(f"{path}: cannot open ({exc.strerror or exc})") from exc


def open_file_objects(paths: Iterable[Path | str]) -> list[BinaryIO]:
    """Binary file objects over :func:`os_open_readonly` descriptors, for libraries that read
    evidence themselves (pyewf's ``open_file_objects``): their reads then keep the access time
    too. The caller closes them; on a failure the ones already open are closed here."""
    objects: list[BinaryIO] = []
    try:
        for path in paths:
            objects.append(os.fdopen(open_readonly(path), "rb"))
    except BaseException:
        for obj in objects:
            obj.close()
        raise
    return objects


def read_head(path: Path | str, size: int, offset: int = 0) -> bytes:
    """Up to ``size`` bytes of ``path`` at ``offset``, opened through :func:`open_readonly`.

    A FIFO or socket is refused before it is opened: opening a FIFO waits for a writer, and
    neither is an image.
    """
    try:
        mode = Path(path).stat().st_mode
    except OSError:
        mode = 0  # open_readonly says what is wrong
    if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
        raise InputError(f"{path}: is a FIFO or socket, not an image")
    fd = open_readonly(path)
    try:
        return os.pread(fd, size, offset)
    except IsADirectoryError as exc:
        raise InputError(f"{path}: is a directory, not an image") from exc
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    finally:
        os.close(fd)


def read_tail(path: Path | str, size: int) -> bytes:
    """The last ``size`` bytes of ``path`` (fewer when the file is shorter)."""
    fd = open_readonly(path)
    try:
        length = os.fstat(fd).st_size
        return os.pread(fd, min(size, length), max(0, length - size))
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    finally:
        os.close(fd)


def check_span(offset: int, length: int, file_size: int, *, path: Path | str | None,
               what: str) -> None:
    """Raise :class:`CorruptImageError` unless ``[offset, offset + length)`` lies in the file.

    ``what`` names the structure (``"grain directory"``) so that the message says what points
    where. Called with the sizes a header claims, before anything of that size is read.
    """
    if offset < 0 or length < 0 or offset + length > MAX_OFFSET:
        raise CorruptImageError(f"{what} at byte {offset} (+{length} bytes) is beyond any "
                                "possible file offset", path=path,
                                offset=offset if 0 <= offset <= MAX_OFFSET else None)
    if offset + length > file_size:
        raise CorruptImageError(f"{what} at byte {offset} (+{length} bytes) runs past the end "
                                f"of the file ({file_size} bytes)", path=path,
                                offset=offset)


def pread_checked(fd: int, offset: int, length: int, file_size: int, *,
                  path: Path | str | None, what: str) -> bytes:
    """``length`` bytes at ``offset`` after :func:`check_span`; a short read is corruption too."""
    check_span(offset, length, file_size, path=path, what=what)
    data = os.pread(fd, length, offset)
    if len(data) != length:
        raise CorruptImageError(f"{what} is truncated", path=path, offset=offset)
    return data


# --- multi-file images ------------------------------------------------------------------------


def allow_parts(paths: Iterable[Path | str]) -> None:
    """Accept these files as parts of an image wherever they are (named by the examiner)."""
    _EXPLICIT.update(Path(p).absolute() for p in paths)


def clear_allowed_parts() -> None:
    """Forget the files :func:`allow_parts` accepted (between commands run in one process)."""
    _EXPLICIT.clear()


def confine_part(folder: Path, name: str, *, what: str) -> Path:
    """The path of the part ``name`` that an image in ``folder`` names, checked.

    The evidence decides ``name``; it must not reach anything that is not evidence. Refused (as
    a one-line :class:`InputError`): an absolute name, a ``..`` component, a name whose real
    path (symbolic links followed) leaves ``folder``, and anything but a regular file (a device,
    a FIFO). A file named with ``--part`` is accepted as it is.
    """
    candidate = folder / name
    if candidate.absolute() in _EXPLICIT or Path(name).absolute() in _EXPLICIT:
        return candidate if candidate.absolute() in _EXPLICIT else Path(name)
    shown = repr(name)
    if not name or "\0" in name:
        raise InputError(f"{folder}: {what} {shown} is not a file name")
    pure = Path(name.replace("\\", "/"))
    if pure.is_absolute() or name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise InputError(f"{folder}: {what} {shown} is an absolute path; only files in the "
                         "image's own folder are read (name it with --part to read it)")
    if ".." in pure.parts:
        raise InputError(f"{folder}: {what} {shown} leaves the image's folder; only files in "
                         "the image's own folder are read (name it with --part to read it)")
    try:
        real = candidate.resolve(strict=True)
    except FileNotFoundError:
        raise InputError(f"{candidate}: {what} is missing") from None
    except (OSError, RuntimeError) as exc:
        raise InputError(f"{candidate}: {what} cannot be resolved ({exc})") from None
    if not real.is_relative_to(folder.resolve()):
        raise InputError(f"{candidate}: {what} is a link to {real}, outside the image's "
                         "folder (name it with --part to read it)")
    check_regular(candidate, what=what)
    return candidate


def same_file(path: Path | str, candidates: Iterable[Path | str]) -> Path | None:
    """The first of ``candidates`` that is the file ``path`` (by any name, hard link or
    symbolic link: the same inode on the same device), or None; a name that cannot be looked
    up is none of them. How outputs and restore targets are held apart from the evidence."""
    for candidate in candidates:
        try:
            if Path(path).samefile(candidate):
                return Path(candidate)
        except OSError:
            continue
    return None


def check_regular(path: Path, *, what: str) -> None:
    """Refuse a part that is not a regular file (a device or FIFO posing as a segment)."""
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise InputError(f"{path}: {what} cannot be read ({exc.strerror or exc})") from None
    if not stat.S_ISREG(mode) and path.absolute() not in _EXPLICIT:
        raise InputError(f"{path}: {what} is not a regular file (a device or FIFO is read "
                         "only when named with --part)")


def copies_for(program: str, sources: Iterable[Path], folder: Path, *,
               extra: int = 0) -> list[Path]:
    """Byte copies of ``sources`` in ``folder``, each read through :func:`open_readonly`: what
    an outside program that opens files itself (``qemu-nbd``, ``affcat``, ``simg2img``) is
    given instead of the evidence. Each copy keeps its file's name (a VMDK descriptor finds its
    extents by name), in a numbered sub-folder where a copy already took that name.

    Why: such a program opens the evidence without ``O_NOATIME``, and reading it updates the
    evidence's access time (measured: ``verify --second-reader`` of a QCOW2 or AFF moved it).
    Setting it back afterwards would write the inode (its change time moves). Raises
    :class:`NoSecondReader` when ``folder`` lacks room for the copies and ``extra`` bytes more
    (``TMPDIR`` chooses the folder): the second reading is then noted as not made."""
    import shutil

    sources = list(sources)
    need = sum(path.stat().st_size for path in sources) + extra
    free = shutil.disk_usage(folder).free
    if free < need:
        raise NoSecondReader(
            f"{program} needs {need} bytes in {folder.parent} for a copy of the image"
            f"{' and its output' if extra else ''} (it opens files itself, which would change "
            f"the evidence's access time); {free} are free (set TMPDIR to a larger folder)")
    copies = []
    for n, source in enumerate(sources):
        copy = folder / source.name
        if copy.exists():
            copy = folder / str(n) / source.name
            copy.parent.mkdir()
        _copy_readonly(source, copy)
        copies.append(copy)
    return copies


def _copy_readonly(source: Path, target: Path) -> None:
    """A byte copy of ``source``, read as evidence is read (no access-time update)."""
    fd = open_readonly(source)
    try:
        with target.open("wb") as out:
            offset = 0
            while piece := os.pread(fd, 4 << 20, offset):
                out.write(piece)
                offset += len(piece)
    finally:
        os.close(fd)
