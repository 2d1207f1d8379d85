"""The restore target: refusing an unsafe one, writing it, and reading it back.

See :mod:`bitwitness.acquire.convert.restore` for the order of things; everything here either
refuses before a byte is written (:class:`RestoreRefusedError`, exit 2) or touches only the target.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bitwitness import acquisitionlog
from bitwitness.acquire.convert.outputs import OutputError, close_synced
from bitwitness.acquire.sinks import Keep, OutputFile, Resumed, durable_now
from bitwitness.acquire.verifying import WRITTEN_REFERENCE
from bitwitness.errors import BitWitnessError, Interrupted, OutputExistsError, UsageError
from bitwitness.evidence_io import same_file
from bitwitness.images.raw import fd_size, open_readonly
from bitwitness.progress import Mediator
from bitwitness.stream import ImageStream

if TYPE_CHECKING:
    from bitwitness.verify.model import ImageVerification


class RestoreRefusedError(UsageError):
    """The target cannot safely receive the media (exit 2): nothing was written."""


def check_target(target: Path, stream: ImageStream, files: list[Path], *,
                 overwrite: bool) -> str:
    """Refuse an unsafe target (:class:`RestoreRefusedError`); return "device" or "file"."""
    if not target.exists():
        if not target.parent.is_dir():
            raise RestoreRefusedError(f"{target.parent}: folder does not exist")
        return "file"
    st = target.stat()
    if same_file(target, files) is not None:
        raise RestoreRefusedError(f"{target} is the image itself")
    logged = _logged(files)
    if stat.S_ISREG(st.st_mode):
        evidence = same_file(target, _evidence_files(logged))
        if evidence is not None:
            raise RestoreRefusedError(f"{target} is the evidence this image was acquired from "
                                      f"({evidence}); restoring would overwrite it")
        if not overwrite:
            raise OutputExistsError(target)
        return "file"
    if not stat.S_ISBLK(st.st_mode):
        raise RestoreRefusedError(f"{target} is neither a block device nor a regular file")
    _check_device(target, st.st_rdev, stream, files, logged)
    return "device"


def _check_device(target: Path, devnum: int, stream: ImageStream, files: list[Path],
                  logged: acquisitionlog.LoggedSource | None) -> None:
    from bitwitness.acquire.devices import describe_devnum, related_devnums

    fd = open_readonly(target)
    try:
        size = fd_size(fd)
    finally:
        os.close(fd)
    if size < stream.size:
        raise RestoreRefusedError(
            f"{target} holds {size} bytes, less than the media's {stream.size}")
    device = describe_devnum(devnum)
    if device is not None and device.mounts:
        where = ", ".join(f"{m.device} on {m.mountpoint}" for m in device.mounts)
        raise RestoreRefusedError(f"{target} is mounted ({where}); unmount it first")
    related = related_devnums(devnum)
    for f in files:
        if f.stat().st_dev in related:
            raise RestoreRefusedError(f"{target} holds the image file {f}")
    backing = device.backing_file if device is not None else ""
    if backing and (image := same_file(backing, files)) is not None:
        raise RestoreRefusedError(f"{target} is a loop device over the image file {image}")
    source = logged.path if logged is not None else None
    if source is not None:
        with contextlib.suppress(OSError):
            src = Path(source).stat()
            if stat.S_ISBLK(src.st_mode) and src.st_rdev in related:
                raise RestoreRefusedError(f"{target} is the device this image was acquired from "
                                          f"({source}); restoring would overwrite the evidence")
    if backing and (evidence := same_file(backing, _evidence_files(logged))) is not None:
        raise RestoreRefusedError(f"{target} is a loop device over the evidence this image was "
                                  f"acquired from ({evidence}); restoring would overwrite it")


def _evidence_files(logged: acquisitionlog.LoggedSource | None) -> list[Path]:
    """The files the image's logged source is: the source itself when it was a file, the
    file behind it when it was a loop device (as the log records it, or as the device still
    attached shows it). The evidence reached another way (a second loop device over it, the
    file itself) must be refused as the device is."""
    if logged is None:
        return []
    from bitwitness.acquire.devices import describe_devnum

    source = logged.path
    # the file behind a loop device as the log recorded it (the loop may be gone since)
    found: list[Path] = [Path(logged.backing_file)] if logged.backing_file else []
    with contextlib.suppress(OSError):
        src = Path(source).stat()
        if stat.S_ISREG(src.st_mode):
            found.append(Path(source))
        elif stat.S_ISBLK(src.st_mode):
            device = describe_devnum(src.st_rdev)
            if device is not None and device.backing_file:
                found.append(Path(device.backing_file))
    return found


def _logged(files: list[Path]) -> acquisitionlog.LoggedSource | None:
    """The ``source`` of the image's acquisition log (``BASE.json`` next to it), if any."""
    first = files[0]
    for stem in (first.name, first.stem):
        log = first.with_name(stem + ".json")
        if log.is_file() and log.stat().st_size < (8 << 20):
            try:
                source = acquisitionlog.load(log).source
            except acquisitionlog.LogFormatError:
                continue
            if source.path:
                return source
    return None


class TargetSink:
    """The pipeline's sink for a restore target: plain writes from offset 0.

    Opening is the last refusal: a device is opened ``O_EXCL`` (Linux: EBUSY while anything holds
    it), a new file ``O_EXCL``; an existing file (``overwrite``) is only cut to zero by
    :meth:`prepare`, after the preliminary log exists.
    """

    def __init__(self, target: Path, kind: str, overwrite: bool) -> None:
        self.target = target
        self.kind = kind
        self.created = kind == "file" and not target.exists()
        self.written = 0  #: bytes the target took, from offset 0
        flags = os.O_WRONLY | getattr(os, "O_CLOEXEC", 0)
        if kind == "device":
            flags |= os.O_EXCL
        else:
            flags |= os.O_CREAT if overwrite else os.O_CREAT | os.O_EXCL
        try:
            self._fd: int | None = os.open(target, flags, 0o644)
        except FileExistsError as exc:
            raise OutputExistsError(target) from exc
        except OSError as exc:
            raise RestoreRefusedError(f"{target}: cannot open for writing "
                                      f"({exc.strerror or exc})") from exc

    def planned_paths(self) -> list[Path]:
        return [self.target]

    def prepare(self) -> None:
        """Cut an existing file target to zero, so it never keeps old bytes past the media."""
        if self.kind == "file" and self._fd is not None:
            try:
                os.ftruncate(self._fd, 0)
            except OSError as exc:
                raise OutputError(f"{self.target}: cannot truncate ({exc.strerror or exc})"
                                  ) from exc

    def discard(self) -> None:
        """Give up before the first byte: close, and remove the file only if we created it."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self.created:
            with contextlib.suppress(OSError):
                self.target.unlink()

    def encode(self, data: memoryview) -> Any:
        return None

    def write(self, encoded: Any, data: memoryview, keep: Keep | None = None) -> None:
        """Write the next block; ``written`` counts every byte the kernel took, so that after a
        failure the log says exactly how far the target was overwritten."""
        assert self._fd is not None
        view = memoryview(data)
        while view:
            try:
                n = os.write(self._fd, view)
            except OSError as exc:
                if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                    raise OutputError(f"{self.target}: no space left after {self.written} "
                                      "bytes") from exc
                raise OutputError(f"{self.target}: write failed after {self.written} bytes "
                                  f"({exc.strerror or exc})") from exc
            self.written += n
            view = view[n:]

    def make_durable(self) -> int:
        """Flush what the target took; a restore is never resumed, so nothing counts for that
        (0): an interrupted restore is started again."""
        if self._fd is not None:
            os.fsync(self._fd)
        return 0

    def durable_soon(self) -> Callable[[], int]:
        return durable_now(self)

    def resume(self, limit: int) -> Resumed:
        raise UsageError("a restore cannot be resumed; start it again")

    def finish(self, *, hashes: dict[str, str],
               errors: Sequence[tuple[int, int]]) -> list[OutputFile]:
        """Flush to the device and close; the target holds the media from offset 0."""
        self._close()
        return [OutputFile(self.target, self.written)]

    def abort(self) -> list[OutputFile]:
        """Flush and close what was written (the log says how far the target was overwritten)."""
        self._close()
        return [OutputFile(self.target, self.written)]

    def _close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            close_synced(fd, self.target)


def read_back(target: Path, length: int, written: dict[str, str], mediator: Mediator, *,
              stop: threading.Event | None = None) -> ImageVerification | None:
    """Verify the first ``length`` bytes of ``target``, read back from the device (not the page
    cache), against the hashes of what was ``written``, through the verification engine.

    Returns None when ``stop`` is set before the end; raises :class:`OutputError` when the
    target cannot be read or ends early.
    """
    from bitwitness.images.raw import RawStream
    from bitwitness.stream import SliceStream
    from bitwitness.verify.model import HashReference
    from bitwitness.verify.verifier import VerifyOptions, verify_media

    try:
        raw = RawStream(target)
    except (OSError, BitWitnessError) as exc:
        raise OutputError(f"{target}: cannot open to read back ({exc})") from exc
    try:
        with contextlib.suppress(OSError, AttributeError):
            os.posix_fadvise(raw.fileno(), 0, length, os.POSIX_FADV_DONTNEED)
        if raw.size < length:
            raise OutputError(f"{target} ended at byte {raw.size}, before the media's end")
        expected = tuple(HashReference(WRITTEN_REFERENCE, algorithm, value)
                         for algorithm, value in written.items())
        options = VerifyOptions(expected=expected, find_logs=False,
                                cancel=stop or threading.Event())
        try:
            return verify_media(SliceStream(raw, 0, length), target, options, mediator)
        except Interrupted:
            return None
        except (OSError, BitWitnessError) as exc:
            raise OutputError(f"{target}: reading back failed ({exc})") from exc
    finally:
        raw.close()
