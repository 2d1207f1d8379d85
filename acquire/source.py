"""The evidence source: a block device, a regular file or an already-open image, read-only.

A :class:`Source` hands out bytes by offset and raises :class:`~bitwitness.errors.ReadError` for
a failed read (never returns wrong or short bytes), so that :mod:`bitwitness.acquire.retry` can
retry and zero-fill. Devices and files are opened ``O_RDONLY`` (+ ``O_NOATIME`` where allowed).
For a device the kernel read-only flag (``BLKROSET``) is raised for the duration and put back as it
was on :meth:`Source.close`, unless the device is mounted writable (then the flag would make the
live file system fail its writes, so we leave it, warn, and log why).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import stat
import struct
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path

from bitwitness.acquire.devices import BlockDevice, MountEntry, describe_devnum, related_devnums
from bitwitness.acquire.direct import DirectReader
from bitwitness.acquire.guardrails import FlagNote, drop_note, find_note, note_raised
from bitwitness.acquire.sequential import SequentialReads, has_sequential_path
from bitwitness.errors import (
    BitWitnessError,
    DestinationError,
    InputError,
    ReadError,
    SourceError,
    SourceGoneError,
    UsageError,
)
from bitwitness.evidence_io import same_file
from bitwitness.images.raw import RawStream, device_sector_size, fd_size, open_readonly
from bitwitness.stream import ImageStream

BLKROSET = 0x125D
BLKROGET = 0x125E
#: errno values that mean the device has gone away (not a bad sector)
_GONE = frozenset({errno.ENODEV, errno.ENXIO, getattr(errno, "ENOMEDIUM", errno.ENODEV)})


class SourceKind(StrEnum):
    DEVICE = "device"
    FILE = "file"
    IMAGE = "image"


@dataclass(frozen=True)
class HpaInfo:
    """Host Protected Area check (``hdparm -N``); ``present`` is None when it could not be told."""

    checked: bool = False
    present: bool | None = None
    detail: str = ""


@dataclass(frozen=True)
class ReadonlyFlag:
    """The kernel read-only flag of a device: as it was, whether we set and restored it."""

    set: bool = False  #: held set by this run (raised now, or left set by an earlier one)
    restored: bool = False  #: put back to ``was`` at the end (never True when nothing was set)
    was: bool | None = None  #: the state before BitWitness first touched it
    detail: str = ""
    earlier_log: str = ""  #: an earlier run that raised the flag and never put it back


@dataclass(frozen=True)
class SourceFacts:
    """Everything the acquisition log says about the source (schema ``source`` object)."""

    path: str
    kind: SourceKind
    size: int
    logical_sector_size: int = 512
    physical_sector_size: int = 512
    model: str = ""
    serial: str = ""
    vendor: str = ""
    transport: str = ""
    removable: bool = False
    hpa: HpaInfo = field(default_factory=HpaInfo)
    readonly_flag: ReadonlyFlag = field(default_factory=ReadonlyFlag)
    mounted: tuple[MountEntry, ...] = ()
    device: BlockDevice | None = None  #: the full sysfs record (not in the log schema)
    image_format: str = ""  #: for kind "image": the format of the opened image
    #: for kind "image": the state of it read when not its current one (a QCOW2 internal
    #: snapshot chosen with ``--snapshot``), as ``info`` describes it; "" for the current state
    image_state: str = ""


class Source:
    """Read-only bytes of the evidence, by offset; close to restore the device's flag."""

    def __init__(self, facts: SourceFacts, *, fd: int | None = None,
                 stream: ImageStream | None = None, owns_stream: bool = False,
                 partition_fds: Sequence[int] = (), owns_fd: bool = True) -> None:
        self._facts = facts
        self._fd = fd
        self._owns_fd = owns_fd  #: False: the descriptor of a raw image's stream (its owner's)
        self._stream = stream
        #: reads in media order through the format's own sequential path (see the module)
        self._sequential = (SequentialReads(stream) if stream is not None
                            and has_sequential_path(stream) else None)
        self._owns_stream = owns_stream
        self._partition_fds = list(partition_fds)  #: partitions we made read-only too
        self._direct: DirectReader | None = None  #: opened at the first read_direct
        self._direct_lock = threading.Lock()  #: timed reads may call read_direct at once
        self.closed = False

    @property
    def facts(self) -> SourceFacts:
        return self._facts

    @property
    def size(self) -> int:
        return self._facts.size

    @property
    def sector_size(self) -> int:
        return self._facts.logical_sector_size

    def read(self, offset: int, length: int) -> bytes:
        """Exactly ``length`` bytes at ``offset`` (within the source), or :class:`ReadError`."""
        if self._stream is not None:
            try:
                data = (self._sequential.pread(offset, length) if self._sequential is not None
                        else self._stream.pread(offset, length))
            except BitWitnessError as exc:
                raise ReadError(offset, length, str(exc)) from exc
            if len(data) != length:
                raise ReadError(offset, length, "image ended early")
            return data
        assert self._fd is not None
        parts: list[bytes] = []
        got = 0
        while got < length:
            try:
                part = os.pread(self._fd, length - got, offset + got)
            except OSError as exc:
                raise self._read_failure(exc, offset + got, length - got) from exc
            if not part:
                raise ReadError(offset + got, length - got, "source ended early (short read)")
            parts.append(part)
            got += len(part)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def read_direct(self, offset: int, length: int) -> bytes:
        """:meth:`read`, bypassing the page cache where the source allows it (``O_DIRECT``).

        Why: around a failing area, a buffered read fails a whole page or readahead window;
        a direct read fails only for the sectors the drive cannot read (see
        :mod:`bitwitness.acquire.direct`). Used for narrowing down failed blocks.
        """
        if self._stream is not None or self._fd is None:
            return self.read(offset, length)
        with self._direct_lock:
            direct = self._direct
            if direct is None:
                direct = self._direct = DirectReader(self._facts.path,
                                                     self._facts.logical_sector_size,
                                                     self._facts.size)
        try:
            data = direct.read(offset, length)
        except OSError as exc:
            raise self._read_failure(exc, offset, length) from exc
        return self.read(offset, length) if data is None else data

    def readinto(self, offset: int, view: memoryview) -> None:
        """Fill ``view`` with the bytes at ``offset``, or raise :class:`ReadError`.

        Why a second read method: the acquisition pipeline reads a whole device through a few
        reusable buffers. Reading into them (``preadv``) spares a fresh 1 MiB allocation per
        block, whose page faults and copy cost more CPU than the read itself.
        """
        if self._stream is not None:
            if self._sequential is not None:
                try:
                    filled = self._sequential.readinto(offset, view)
                except BitWitnessError as exc:
                    raise ReadError(offset, len(view), str(exc)) from exc
                if filled != len(view):
                    raise ReadError(offset, len(view), "image ended early")
                return
            view[:] = self.read(offset, len(view))
            return
        assert self._fd is not None
        length = len(view)
        got = 0
        while got < length:
            try:
                count = os.preadv(self._fd, [view[got:]], offset + got)
            except OSError as exc:
                raise self._read_failure(exc, offset + got, length - got) from exc
            if not count:
                raise ReadError(offset + got, length - got, "source ended early (short read)")
            got += count

    def _read_failure(self, exc: OSError, offset: int, length: int) -> Exception:
        """A failed ``pread`` as an error: a vanished device ends the acquisition, anything
        else is a read error that the retry logic narrows down."""
        if exc.errno in _GONE:  # unplugged or powered off: retrying cannot help
            return SourceGoneError(f"{self._facts.path}: the source is gone "
                               f"({os.strerror(exc.errno or errno.ENODEV)}) at byte {offset}")
        return ReadError(offset, length, os.strerror(exc.errno or errno.EIO))

    def close(self) -> None:
        """Close the source; a device gets its read-only flag back as it was."""
        if self.closed:
            return
        self.closed = True
        if self._direct is not None:
            self._direct.close()
        if self._fd is not None:
            flag = self._facts.readonly_flag
            if flag.set and flag.was is False:
                problems = [p for p in map(_lower_ro, [self._fd, *self._partition_fds]) if p]
                detail = flag.detail + (f"; restoring failed: {problems[0]}" if problems else "")
                self._facts = replace(self._facts, readonly_flag=replace(
                    flag, restored=not problems, detail=detail))
                if not problems:
                    drop_note(os.fstat(self._fd).st_rdev)
            for part_fd in self._partition_fds:
                os.close(part_fd)
            if self._owns_fd:
                os.close(self._fd)
        if self._sequential is not None:
            self._sequential.close()
        if self._stream is not None and self._owns_stream:
            self._stream.close()

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _get_ro(fd: int) -> bool:
    buf = fcntl.ioctl(fd, BLKROGET, struct.pack("i", 0))
    return bool(struct.unpack("i", buf)[0])


def _set_ro(fd: int, value: bool) -> None:
    fcntl.ioctl(fd, BLKROSET, struct.pack("i", 1 if value else 0))


def _lower_ro(fd: int) -> str | None:
    """Clear the flag we raised (we only raise it on devices that were writable); None if done,
    else what went wrong."""
    try:
        _set_ro(fd, False)
        return None if not _get_ro(fd) else "the flag is still set"
    except OSError as exc:
        return str(exc.strerror or exc)


def _raise_on_partitions(dev: BlockDevice) -> tuple[list[int], list[str]]:
    """The kernel flag of a whole disk does not cover its partitions' device nodes: raise theirs
    too. Returns the open descriptors (to restore on close) and the partitions' names."""
    fds: list[int] = []
    names: list[str] = []
    for name in dev.partitions:
        try:
            fd = os.open(f"/dev/{name}", os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except OSError:
            continue
        try:
            if _get_ro(fd):
                os.close(fd)
                continue
            _set_ro(fd, True)
        except OSError:
            os.close(fd)
            continue
        fds.append(fd)
        names.append(name)
    return fds, names


@dataclass(frozen=True)
class FlagPlan:
    """What the run is to do with the read-only flag: ``log`` (the run's JSON log) goes into
    the ledger note; ``resuming`` takes over a flag the interrupted run left set."""

    wanted: bool = True
    log: str = ""
    resuming: bool = False


def _raise_ro(fd: int, writable_mounts: list[MountEntry], note: FlagNote | None,
              plan: FlagPlan) -> ReadonlyFlag:
    try:
        was = _get_ro(fd)
    except OSError as exc:
        return ReadonlyFlag(detail=f"BLKROGET failed: {exc.strerror or exc}")
    if was:
        return _already_ro(note, plan)
    if writable_mounts:
        where = ", ".join(m.mountpoint for m in writable_mounts)
        return ReadonlyFlag(set=False, was=False, detail=f"not set: mounted writable at {where}")
    try:
        _set_ro(fd, True)
    except OSError as exc:
        return ReadonlyFlag(set=False, was=False,
                            detail=f"BLKROSET failed: {exc.strerror or exc}")
    return ReadonlyFlag(set=True, restored=False, was=False, detail="set for the acquisition")


def _already_ro(note: FlagNote | None, plan: FlagPlan) -> ReadonlyFlag:
    """The flag is set: by us in a run that never put it back (the ledger's note), or not."""
    if note is None:
        return ReadonlyFlag(set=False, was=True, detail="already read-only")
    if plan.resuming:  # ours, from the run being resumed: held, and put back at the end
        return ReadonlyFlag(set=True, was=note.was, earlier_log=note.log,
                            detail=f"{note.describe()}; held for the resumed acquisition")
    return ReadonlyFlag(set=False, was=True, earlier_log=note.log,
                        detail=f"already read-only: {note.describe()}; left set "
                               "(bitwitness devices --restore-readonly clears it)")


def restore_readonly(device: str | Path) -> str:
    """Clear a read-only flag that a BitWitness run raised and never put back (it was killed),
    on the examiner's request; returns what was done. A flag BitWitness did not raise is not
    touched (:class:`UsageError`): someone set it on purpose."""
    path = Path(device)
    fd = open_readonly(path)
    try:
        st = os.fstat(fd)
        if not stat.S_ISBLK(st.st_mode):
            raise InputError(f"{path}: not a block device")
        note = find_note(st.st_rdev, describe_devnum(st.st_rdev), fd_size(fd))
        if note is None:
            state = "set" if _get_ro(fd) else "clear"
            raise UsageError(f"{path}: its read-only flag is {state} and no BitWitness run left "
                             "it set; not touched")
        problems = [p for p in map(_lower_ro, [fd]) if p]
        for name in note.partitions:
            with contextlib.suppress(OSError):
                part = os.open(f"/dev/{name}", os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
                try:
                    problems += [p for p in [_lower_ro(part)] if p]
                finally:
                    os.close(part)
        if problems:
            raise SourceError(f"{path}: restoring the read-only flag failed: {problems[0]}")
        drop_note(st.st_rdev)
        return (f"{path}: read-only flag cleared, as it was before the BitWitness run of "
                f"{note.since} (log {note.log}) set it")
    finally:
        os.close(fd)


_HPA = re.compile(r"max sectors\s*=\s*(\d+)\s*/\s*(\d+)(?:,\s*HPA is (\w+))?")


def check_hpa(device: str) -> HpaInfo:
    """Ask ``hdparm -N`` (read-only query) whether a Host Protected Area hides sectors."""
    # imported here: only device sources get this far, and shutil + subprocess (with the
    # compression modules shutil loads) cost ~6 ms of every file acquisition's start-up
    import shutil
    import subprocess

    hdparm = shutil.which("hdparm")
    if hdparm is None:
        return HpaInfo(checked=False, detail="hdparm is not installed")
    try:
        proc = subprocess.run([hdparm, "-N", device], capture_output=True, text=True,
                              timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return HpaInfo(checked=False, detail=f"hdparm -N failed: {exc}")
    match = _HPA.search(proc.stdout)
    if match is None:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        reason = lines[-1].strip() if lines else f"exit status {proc.returncode}"
        return HpaInfo(checked=False, detail=f"hdparm -N: {reason}")
    visible, native = int(match.group(1)), int(match.group(2))
    present = match.group(3) == "enabled" or visible != native
    return HpaInfo(checked=True, present=present,
                   detail=f"max sectors {visible}/{native}"
                          + (f", HPA is {match.group(3)}" if match.group(3) else ""))


def _image_source(stream: ImageStream) -> Source:
    """An already-open image as the source (convert, restore): read through its stream, or,
    for a raw file, which is its media, through its descriptor straight into the block buffers
    (``preadv``), as acquiring the same file does: no copy through the stream."""
    info = stream.info
    name = str(info.files[0]) if info.files else "<stream>"
    facts = SourceFacts(path=name, kind=SourceKind.IMAGE, size=stream.size,
                        logical_sector_size=stream.sector_size,
                        physical_sector_size=stream.sector_size, image_format=info.format,
                        image_state=str(info.details.get("snapshot", "")))
    if type(stream) is RawStream:
        return Source(facts, fd=stream.fileno(), owns_fd=False)
    return Source(facts, stream=stream)


def open_source(source: str | Path | ImageStream, *, set_readonly: bool = True,
                check_hpa_flag: bool = True, flag_plan: FlagPlan | None = None) -> Source:
    """Open a device, a regular file or an already-open image as a read-only :class:`Source`."""
    if isinstance(source, ImageStream):
        return _image_source(source)
    path = Path(source)
    fd = open_readonly(path)
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISREG(mode):
            facts = SourceFacts(path=str(path), kind=SourceKind.FILE, size=fd_size(fd))
            return Source(facts, fd=fd)
        if not stat.S_ISBLK(mode):
            raise InputError(f"{path}: not a block device or regular file")
        plan = replace(flag_plan or FlagPlan(), wanted=set_readonly)
        facts, note = _device_facts(path, fd, plan, check_hpa_flag)
        part_fds: list[int] = []
        if facts.readonly_flag.set and facts.device is not None and not facts.device.partition:
            if note is not None:  # the resumed run's partitions: still raised, lower them later
                part_fds, names = _open_partitions(note.partitions), list(note.partitions)
            else:
                part_fds, names = _raise_on_partitions(facts.device)
            if names:
                flag = replace(facts.readonly_flag, detail=f"{facts.readonly_flag.detail} "
                               f"(and on its partitions {', '.join(names)})")
                facts = replace(facts, readonly_flag=flag)
            if note is None:
                problem = note_raised(facts.path, os.fstat(fd).st_rdev, facts.device, facts.size,
                                      was=False, log=plan.log, partitions=names)
                if problem:
                    facts = replace(facts, readonly_flag=replace(
                        facts.readonly_flag, detail=f"{facts.readonly_flag.detail}; {problem}"))
        return Source(facts, fd=fd, partition_fds=part_fds)
    except BaseException:
        os.close(fd)
        raise


def _open_partitions(names: Iterable[str]) -> list[int]:
    fds = []
    for name in names:
        with contextlib.suppress(OSError):
            fds.append(os.open(f"/dev/{name}", os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)))
    return fds


def _device_facts(path: Path, fd: int, plan: FlagPlan,
                  hpa: bool) -> tuple[SourceFacts, FlagNote | None]:
    try:
        size = fd_size(fd)
        logical = device_sector_size(fd)
    except OSError as exc:
        raise InputError(f"{path}: cannot query the device ({exc.strerror or exc})") from exc
    devnum = os.fstat(fd).st_rdev
    dev = describe_devnum(devnum)
    mounts = list(dev.mounts) if dev else []
    writable = [m for m in mounts if m.writable]
    note = find_note(devnum, dev, size)
    flag = _raise_ro(fd, writable, note, plan) if plan.wanted else \
        ReadonlyFlag(detail="not requested")
    held = note if flag.set and note is not None else None
    hpa_info = HpaInfo(detail="not checked")
    if hpa and dev is not None and not dev.partition and dev.transport not in ("loop", "dm", "md"):
        hpa_info = check_hpa(str(path))
    elif dev is not None:
        hpa_info = HpaInfo(checked=False, detail=f"not applicable to {dev.transport or 'this'}"
                           f" {'partition' if dev.partition else 'device'}")
    return SourceFacts(
        path=str(path), kind=SourceKind.DEVICE, size=size,
        logical_sector_size=logical,
        physical_sector_size=dev.physical_sector_size if dev else logical,
        model=dev.model if dev else "", serial=dev.serial if dev else "",
        vendor=dev.vendor if dev else "", transport=dev.transport if dev else "",
        removable=dev.removable if dev else False,
        hpa=hpa_info, readonly_flag=flag, mounted=tuple(mounts), device=dev,
    ), held


def _existing_ancestor(path: Path) -> Path:
    current = path.absolute()
    while not current.exists() and current != current.parent:
        current = current.parent
    return current


def check_destination(facts: SourceFacts, outputs: Iterable[Path],
                      source_stream_files: Iterable[Path] = ()) -> None:
    """Refuse (:class:`DestinationError`) an output that is the source or lies on its device."""
    outputs = list(outputs)
    evidence_files = [Path(p) for p in source_stream_files]
    if facts.kind is SourceKind.FILE:
        evidence_files.append(Path(facts.path))
    for out in outputs:
        if same_file(out, evidence_files) is not None:
            raise DestinationError(f"{out} is the evidence itself; choose another output",
                                   path=out)
    if facts.kind is not SourceKind.DEVICE:
        return
    st = Path(facts.path).stat()
    forbidden = related_devnums(st.st_rdev)
    for out in outputs:
        holder = _existing_ancestor(out.parent)
        if holder.stat().st_dev in forbidden:
            raise DestinationError(
                f"{out} lies on the source device {facts.path}; write the image elsewhere",
                path=out)
