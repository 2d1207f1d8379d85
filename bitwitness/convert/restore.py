"""Restore: write an image's media onto a block device or a file, and optionally prove it.

Before the first byte, the target is refused (exit 2) when it:

* is smaller than the media (a device; a file simply grows);
* is mounted, or one of its partitions or holders is (``/proc/self/mountinfo`` + sysfs);
* is the image itself, holds the image (an image file lives on the target device, or the target
  is a loop device over an image file), or is the device the image was acquired from (the
  ``source.path`` of the image's ``BASE.json``);
* is an existing regular file and ``overwrite`` was not given.

Then the mediator is asked to confirm (``yes`` skips the question; a mediator that cannot ask
answers no, so off a terminal ``--yes`` is required). The media is written through the
acquisition pipeline, hashed in the same pass, flushed, and, with ``verify``, the target's first
``media_size`` bytes are read back (after dropping them from the page cache) and hashed again.
The written hashes are also compared with the image's stored or logged hashes. When the image
belongs to a case, a ``restore`` custody event records it all.
"""

from __future__ import annotations

import contextlib
import os
import stat
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from bitwitness.acquire.pipeline import Pipeline
from bitwitness.acquire.source import open_source
from bitwitness.convert.casework import find_case, record_event
from bitwitness.convert.outputs import OutputError, close_synced, write_all
from bitwitness.convert.references import MediaReference, compare, media_references
from bitwitness.errors import BitWitnessError, Interrupted, OutputExistsError, UsageError
from bitwitness.hashing import DEFAULT_ALGORITHMS, ThreadedHasher
from bitwitness.image import open_image
from bitwitness.images.raw import fd_size, open_readonly
from bitwitness.progress import Mediator
from bitwitness.stream import ImageStream


class RestoreRefusedError(UsageError):
    """The target cannot safely receive the media (exit 2): nothing was written."""


class RestoreVerdict(StrEnum):
    VERIFIED = "VERIFIED"  #: the target re-read equals what was written, and every record
    WRITTEN = "WRITTEN"  #: written and matching the records, not re-read (no --verify)
    MISMATCH = "MISMATCH"  #: the target or the media differs from what it should be


@dataclass(frozen=True)
class RestoreResult:
    image: Path
    target: Path
    target_kind: str  #: "device" or "file"
    media_size: int
    hashes: dict[str, str]  #: of the media as written
    references: tuple[MediaReference, ...]
    target_hashes: dict[str, str] | None  #: of the target's first media_size bytes (--verify)
    verdict: RestoreVerdict
    error: str | None
    started: datetime
    ended: datetime
    custody_seq: int | None = None

    @property
    def ok(self) -> bool:
        return self.verdict is not RestoreVerdict.MISMATCH


def restore_image(image: Path, target: Path, mediator: Mediator, *, verify: bool = False,
                  yes: bool = False, overwrite: bool = False,
                  stop: threading.Event | None = None) -> RestoreResult:
    """Write the media of ``image`` onto ``target``; see the module docstring for the checks."""
    stream = open_image(image)
    try:
        files = list(stream.info.files) or [image]
        kind = check_target(target, stream, files, overwrite=overwrite)
        if not yes and not mediator.confirm(
                f"Write {stream.size} bytes of {image.name} onto {target}, destroying what it "
                "holds?"):
            raise RestoreRefusedError(
                f"not confirmed: nothing was written to {target} (use --yes to skip the question)")
        return _restore(stream, image=image, target=target, kind=kind, files=files,
                        mediator=mediator, verify=verify, stop=stop or threading.Event())
    finally:
        stream.close()


def check_target(target: Path, stream: ImageStream, files: list[Path], *,
                 overwrite: bool) -> str:
    """Refuse an unsafe target (:class:`RestoreRefusedError`); return "device" or "file"."""
    if not target.exists():
        if not target.parent.is_dir():
            raise RestoreRefusedError(f"{target.parent}: folder does not exist")
        return "file"
    st = target.stat()
    for f in files:
        with contextlib.suppress(OSError):
            if target.samefile(f):
                raise RestoreRefusedError(f"{target} is the image itself")
    if stat.S_ISREG(st.st_mode):
        if not overwrite:
            raise OutputExistsError(target)
        return "file"
    if not stat.S_ISBLK(st.st_mode):
        raise RestoreRefusedError(f"{target} is neither a block device nor a regular file")
    _check_device(target, st.st_rdev, stream, files)
    return "device"


def _check_device(target: Path, devnum: int, stream: ImageStream, files: list[Path]) -> None:
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
        if backing and Path(backing).exists() and Path(backing).samefile(f):
            raise RestoreRefusedError(f"{target} is a loop device over the image file {f}")
    source = _logged_source(files)
    if source is not None:
        with contextlib.suppress(OSError):
            src = Path(source).stat()
            if stat.S_ISBLK(src.st_mode) and src.st_rdev in related:
                raise RestoreRefusedError(f"{target} is the device this image was acquired from "
                                          f"({source}); restoring would overwrite the evidence")


def _logged_source(files: list[Path]) -> str | None:
    """``source.path`` of the image's acquisition log (``BASE.json`` next to it), if any."""
    import json

    first = files[0]
    for stem in (first.name, first.stem):
        log = first.with_name(stem + ".json")
        if log.is_file() and log.stat().st_size < (8 << 20):
            try:
                doc = json.loads(log.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            source = doc.get("source") if isinstance(doc, dict) else None
            if isinstance(source, dict) and isinstance(source.get("path"), str):
                return str(source["path"])
    return None


class TargetSink:
    """The pipeline's sink for a restore target: plain writes from offset 0."""

    def __init__(self, target: Path, kind: str, overwrite: bool) -> None:
        self.target = target
        flags = os.O_WRONLY | getattr(os, "O_CLOEXEC", 0)
        if kind == "device":
            flags |= os.O_EXCL  # Linux: fails with EBUSY while anything holds the device
        else:
            flags |= os.O_CREAT | os.O_TRUNC if overwrite else os.O_CREAT | os.O_EXCL
        try:
            self._fd: int | None = os.open(target, flags, 0o644)
        except FileExistsError as exc:
            raise OutputExistsError(target) from exc
        except OSError as exc:
            raise RestoreRefusedError(f"{target}: cannot open for writing "
                                      f"({exc.strerror or exc})") from exc

    def encode(self, data: bytes) -> Any:
        return None

    def write(self, encoded: Any, data: bytes) -> None:
        assert self._fd is not None
        write_all(self._fd, data, self.target)

    def close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            close_synced(fd, self.target)


def _restore(stream: ImageStream, *, image: Path, target: Path, kind: str, files: list[Path],
             mediator: Mediator, verify: bool, stop: threading.Event) -> RestoreResult:
    started = datetime.now(UTC)
    references, _notes = media_references(stream, files)
    sink = TargetSink(target, kind, overwrite=True)
    task = mediator.begin(f"restore {image.name} -> {target}", stream.size)
    pipeline = Pipeline(source=open_source(stream), sinks=[sink], media_size=stream.size,
                        read_granularity=stream.sector_size, retries=0,
                        algorithms=DEFAULT_ALGORITHMS, task=task, stop=stop, encode=False)
    try:
        outcome = pipeline.run()
        sink.close()
    except KeyboardInterrupt as exc:
        with contextlib.suppress(BitWitnessError):
            sink.close()
        raise Interrupted(f"restore interrupted; {target} holds a partial copy") from exc
    finally:
        task.finish()
    if not outcome.complete:
        raise Interrupted(f"restore stopped; {target} holds a partial copy")
    checks = tuple(compare(references, outcome.hashes))
    error = None
    if outcome.bad_byte_ranges:
        error = "the image could not be read in full; the target holds zeros where it failed"
    elif bad := [c for c in checks if not c.match]:
        error = (f"{bad[0].algorithm} of the restored media is {bad[0].computed}, but "
                 f"{bad[0].source} records {bad[0].expected}")
    target_hashes = None
    if verify:
        target_hashes = hash_target(target, stream.size, mediator)
        if error is None and target_hashes != outcome.hashes:
            error = f"{target} does not read back as written (hashes differ)"
    if error is not None:
        verdict = RestoreVerdict.MISMATCH
        mediator.notice(error, level="error")
    else:
        verdict = RestoreVerdict.VERIFIED if verify else RestoreVerdict.WRITTEN
    seq = record_event(find_case(image), "restore", {
        "image": str(image), "target": str(target), "target_kind": kind,
        "media_size": stream.size, "hashes": outcome.hashes, "verify": verify,
        "verdict": verdict.value, **({"error": error} if error else {})})
    return RestoreResult(image=image, target=target, target_kind=kind, media_size=stream.size,
                         hashes=outcome.hashes, references=checks, target_hashes=target_hashes,
                         verdict=verdict, error=error, started=started,
                         ended=datetime.now(UTC), custody_seq=seq)


def hash_target(target: Path, length: int, mediator: Mediator,
                block: int = 1 << 20) -> dict[str, str]:
    """Hash the first ``length`` bytes of ``target``, read back from the device, not the cache."""
    fd = open_readonly(target)
    try:
        with contextlib.suppress(OSError, AttributeError):
            os.posix_fadvise(fd, 0, length, os.POSIX_FADV_DONTNEED)
        hasher = ThreadedHasher(DEFAULT_ALGORITHMS, depth=8)
        task = mediator.begin(f"verify {target}", length)
        pos = 0
        try:
            while pos < length:
                data = os.pread(fd, min(block, length - pos), pos)
                if not data:
                    raise OutputError(f"{target} ended at byte {pos}, before the media's end")
                hasher.update(data)
                task.advance(len(data))
                pos += len(data)
        finally:
            task.finish()
            digests = hasher.close()
        return digests
    finally:
        os.close(fd)
