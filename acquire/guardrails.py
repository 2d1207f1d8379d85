"""Guardrails an examiner's slip must not get past: outputs into kernel pseudo file systems, a
source mounted writable, and the kernel read-only flag a killed run left set.

- **Outputs** inside ``/dev``, ``/proc`` or ``/sys``, or on a devtmpfs/procfs/sysfs (or other
  kernel pseudo file system) mount, are refused: swapping source and output (``acquire /dev/sdb
  -o /dev/sdb``) otherwise writes an "image" into RAM, or worse, into a device node.
- **A source mounted writable** changes while it is read (journal replays, atime, the live file
  system's writes): it is refused unless the examiner says ``--allow-mounted``, which is logged.
- **The read-only flag ledger**: when BitWitness raises a device's kernel read-only flag it
  notes, under ``/run/bitwitness/readonly`` (cleared at boot, as the flag is), the device's
  identity, the flag's state before, and the run's log. A run that is killed leaves the note
  behind, so that the next run can tell the examiner that the flag was left set by BitWitness
  (with that run's log), a resumed run knows the state before BitWitness first touched it and
  puts it back; ``bitwitness devices`` lists such flags with that log, and
  ``bitwitness devices --restore-readonly DEV`` puts the flag back as it was, on request.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bitwitness.acquire.devices import MOUNTINFO, BlockDevice, MountEntry
from bitwitness.errors import DestinationError, UsageError

#: Path prefixes that never hold an image, whatever is mounted there.
PSEUDO_ROOTS = (Path("/dev"), Path("/proc"), Path("/sys"))
#: Kernel file systems that are views of the running system, not storage.
PSEUDO_FSTYPES = frozenset({
    "devtmpfs", "proc", "sysfs", "devpts", "cgroup", "cgroup2", "debugfs", "tracefs",
    "securityfs", "configfs", "bpf", "pstore", "efivarfs", "mqueue", "hugetlbfs", "fusectl",
    "binfmt_misc", "autofs", "rpc_pipefs", "nsfs"})
LEDGER = Path(os.environ.get("BITWITNESS_RUN_DIR", "/run/bitwitness")) / "readonly"


# --- outputs ---------------------------------------------------------------------------------


def _mount_of(path: Path) -> tuple[str, str]:
    """(mount point, file system type) of the mount holding ``path`` (an existing path)."""
    best, fstype = "", ""
    try:
        text = MOUNTINFO.read_text(errors="replace")
    except OSError:
        return best, fstype
    target = str(path)
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        fields, after = left.split(), right.split()
        if not sep or len(fields) < 5 or not after:
            continue
        point = fields[4].replace("\\040", " ")
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, fstype = point, after[0]
    return best, fstype


def _existing(path: Path) -> Path:
    current = path.absolute()
    while not current.exists() and current != current.parent:
        current = current.parent
    return current.resolve()


def check_output_locations(paths: Iterable[Path]) -> None:
    """Refuse (:class:`DestinationError`, exit 2) any output under ``/dev``, ``/proc`` or
    ``/sys`` or on a kernel pseudo file system, before anything is written."""
    for path in paths:
        absolute = Path(os.path.abspath(path))  # noqa: PTH100 - '..' folded, links kept
        real = _existing(absolute.parent) / absolute.name
        for candidate in (absolute, real):
            for root in PSEUDO_ROOTS:
                if candidate == root or root in candidate.parents:
                    raise DestinationError(
                        f"{path} lies inside {root}, which holds the kernel's devices and "
                        "state, not files: choose an output on a storage file system",
                        path=path)
        point, fstype = _mount_of(_existing(absolute.parent))
        if fstype in PSEUDO_FSTYPES:
            raise DestinationError(
                f"{path} lies on {point}, a {fstype} file system (the kernel's, not storage): "
                "choose an output on a storage file system", path=path)


# --- mounted sources -------------------------------------------------------------------------


def check_mounted(mounts: Iterable[MountEntry], *, allowed: bool) -> list[str]:
    """Refuse (:class:`UsageError`, exit 2) a source mounted writable unless ``allowed``; with
    it, the warnings that go to the examiner and into the log."""
    writable = [m for m in mounts if m.writable]
    if writable and not allowed:
        where = ", ".join(f"{m.device} at {m.mountpoint}" for m in writable)
        raise UsageError(f"the source is mounted writable ({where}): it may change while it is "
                         "read. Unmount it (or remount it read-only) first, or pass "
                         "--allow-mounted to acquire it live (logged)")
    return [f"{m.device} (on the source) is mounted WRITABLE at {m.mountpoint}: acquired live "
            "with --allow-mounted; the evidence may change while it is read" for m in writable]


# --- the read-only flag ledger ---------------------------------------------------------------


@dataclass(frozen=True)
class FlagNote:
    """BitWitness raised this device's read-only flag and has not put it back (yet)."""

    device: str
    was: bool  #: the flag's state before BitWitness first touched it
    log: str  #: the JSON log of the run that raised it
    since: str  #: when (UTC, ISO 8601)
    identity: dict[str, Any]
    partitions: tuple[str, ...] = ()

    def describe(self) -> str:
        return f"left set by an earlier BitWitness run (log {self.log}, {self.since})"


def _identity(dev: BlockDevice | None, devnum: int, size: int) -> dict[str, Any]:
    return {"devnum": f"{os.major(devnum)}:{os.minor(devnum)}", "size": size,
            "serial": dev.serial if dev else "", "model": dev.model if dev else "",
            "backing_file": dev.backing_file if dev else ""}


def _note_path(devnum: int) -> Path:
    return LEDGER / f"{os.major(devnum)}-{os.minor(devnum)}.json"


def note_raised(path: str, devnum: int, dev: BlockDevice | None, size: int, *, was: bool,
                log: str, partitions: Iterable[str] = ()) -> str | None:
    """Record that we raised the flag; returns why it could not be recorded, or None."""
    doc = {"device": path, "was": was, "log": log, "since": datetime.now(UTC).isoformat(),
           "identity": _identity(dev, devnum, size), "partitions": list(partitions)}
    target = _note_path(devnum)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc))
        tmp.replace(target)
    except OSError as exc:
        return f"the flag's note could not be written: {exc.strerror or exc}"
    return None


def find_note(devnum: int, dev: BlockDevice | None, size: int, *,
              drop_stale: bool = True) -> FlagNote | None:
    """The note of a flag BitWitness raised on this very device (a stale note, of a device
    number now used by another device, is dropped unless ``drop_stale`` is false)."""
    target = _note_path(devnum)
    try:
        doc = json.loads(target.read_text())
    except (OSError, ValueError):
        return None
    if doc.get("identity") != _identity(dev, devnum, size):
        if drop_stale:
            target.unlink(missing_ok=True)
        return None
    return FlagNote(device=str(doc.get("device", "")), was=bool(doc.get("was")),
                    log=str(doc.get("log", "")), since=str(doc.get("since", "")),
                    identity=doc["identity"], partitions=tuple(doc.get("partitions") or ()))


def left_set(dev: BlockDevice) -> FlagNote | None:
    """For the device list: the note of a read-only flag an earlier BitWitness run raised on
    ``dev`` and never put back (it was killed); the list only reads, so nothing is dropped."""
    if not dev.readonly:
        return None
    return find_note(dev.devnum, dev, dev.size, drop_stale=False)


def drop_note(devnum: int) -> None:
    """The flag is back as it was: forget the note."""
    _note_path(devnum).unlink(missing_ok=True)
