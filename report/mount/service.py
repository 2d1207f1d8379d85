"""The life of a mount: checking the mount point, serving, background mounts, unmounting.

A mount serves until it is unmounted: Ctrl-C (or SIGTERM) in the foreground, ``bitwitness
umount`` (``fusermount3 -u``) for either. libfuse itself unmounts on those signals, so a stopped
mount never leaves a dead mount point behind. A background mount is the same foreground server
started as a child process in its own session; the parent returns once the mount answers.

Each serving process writes a small state file (its pid, the image, the mount point) in a
per-user runtime folder, so that ``umount`` can wait for the server to finish, and with it the
``unmount`` custody event, before it returns.

When the image belongs to a case (``--case``/``--evidence``, or an image inside a case's
folder), ``mount`` and ``unmount`` events are appended to the case's custody log: the mount
event once the kernel has the mount, the unmount event when the server has stopped.
"""

from __future__ import annotations

import ctypes.util
import errno
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bitwitness import acquisitionlog
from bitwitness.errors import MountError, UsageError
from bitwitness.report.mount.tree import Notice

#: The file-system type the kernel shows for our mounts (``fuse.bitwitness``).
SUBTYPE = "bitwitness"
#: mountinfo writes space, tab, newline and backslash in paths as \ooo
_OCTAL = re.compile(r"\\([0-7]{3})")
#: Kernel read-ahead asked for on our mounts (libfuse 3 takes requests of up to 1 MiB).
READ_AHEAD_KIB = 1024
#: How long ``--background`` and ``umount`` wait for the server.
WAIT_SECONDS = 60.0


@dataclass(frozen=True)
class CaseLink:
    """The case and evidence item a mounted image belongs to."""

    case_dir: Path
    evidence_id: str | None


@dataclass(frozen=True)
class MountRequest:
    """What to mount where."""

    image: Path
    mountpoint: Path
    files: bool = False
    case: CaseLink | None = None
    cache_bytes: int = 64 * 1024 * 1024
    #: keys for encrypted volumes (a VolumeKeys), for files/ inside them; held in memory only
    keys: Any = field(default=None, repr=False)
    #: ``--image-format`` (a format forced by name); None: detected
    image_format: str | None = None


# --- preconditions -------------------------------------------------------------------------


def fuse_available() -> str | None:
    """None when this machine can mount with FUSE, else why not (one line)."""
    if not Path("/dev/fuse").exists():
        return "FUSE is not available here: /dev/fuse is missing (load the fuse module)"
    if not (ctypes.util.find_library("fuse3") or ctypes.util.find_library("fuse")):
        return "FUSE is not available here: libfuse is not installed (install fuse3)"
    if not os.access("/dev/fuse", os.R_OK | os.W_OK) and not _fusermount():
        return "FUSE is not available here: /dev/fuse is not accessible and fusermount3 is missing"
    return None


def _fusermount() -> str | None:
    return shutil.which("fusermount3") or shutil.which("fusermount")


def check_mountpoint(mountpoint: Path) -> None:
    """Refuse a mount point that is missing, not a folder, stale, already mounted or not empty."""
    try:
        mountpoint.stat()
    except FileNotFoundError as exc:
        raise MountError(f"{mountpoint}: no such folder") from exc
    except OSError as exc:
        if exc.errno == errno.ENOTCONN:
            raise MountError(f"{mountpoint}: stale mount (its server is gone); run "
                             f"'bitwitness umount {mountpoint}' first") from exc
        raise MountError(f"{mountpoint}: cannot use as a mount point "
                         f"({exc.strerror or exc})") from exc
    if not mountpoint.is_dir():
        raise MountError(f"{mountpoint}: not a folder")
    if os.path.ismount(mountpoint) or is_mounted(mountpoint):
        raise MountError(f"{mountpoint}: busy (something is already mounted there)")
    if any(mountpoint.iterdir()):
        raise MountError(f"{mountpoint}: not empty; mount on an empty folder")


def mount_table() -> list[tuple[str, str, str]]:
    """(mount point, file-system type, device ``major:minor``) of every mount this process sees."""
    rows: list[tuple[str, str, str]] = []
    try:
        lines = Path("/proc/self/mountinfo").read_text(encoding="utf-8").splitlines()
    except OSError:
        return rows
    for line in lines:
        left, _, right = line.partition(" - ")
        fields = left.split()
        if len(fields) >= 5 and right:
            point = _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), fields[4])
            rows.append((point, right.split()[0], fields[2]))
    return rows


def is_mounted(mountpoint: Path) -> str | None:
    """The file-system type mounted at ``mountpoint`` (latest mount), or None."""
    where = str(mountpoint.absolute())
    found = None
    for point, fstype, _device in mount_table():
        if point == where:
            found = fstype
    return found


def raise_read_ahead(mountpoint: Path, kib: int = READ_AHEAD_KIB) -> bool:
    """Let the kernel read ahead ``kib`` KiB at a time on our mount (where it lets us: root).

    Called on the first request after the mount's start: the kernel sets the read-ahead while
    it takes libfuse's answer to its INIT request, after our ``init`` has run. The kernel gives
    a FUSE mount 128 KiB of read-ahead, so a sequential reader reaches the
    server in 128 KiB requests; each costs a round trip through the kernel and a Python call.
    The mount's own backing-device setting (``/sys/class/bdi/MAJOR:MINOR/read_ahead_kb``) raises
    that for this mount alone. Best effort: False when it could not be changed.
    """
    where = str(mountpoint.absolute())
    devices = [device for point, fstype, device in mount_table()
               if point == where and fstype == f"fuse.{SUBTYPE}"]
    if not devices:
        return False
    try:
        Path(f"/sys/class/bdi/{devices[-1]}/read_ahead_kb").write_text(str(kib))
    except OSError:
        return False
    return True


def case_link(image: Path, case_dir: Path | None, evidence_id: str | None) -> CaseLink | None:
    """The case to record custody in: the one given, or the one whose folder holds the image.

    An ``evidence_id`` must name an item of the case (a typo must not enter the custody log).
    """
    from bitwitness.case import Case
    from bitwitness.casefolder import case_root
    from bitwitness.report.browse.export import evidence_of

    if case_dir is None:
        case_dir = case_root(image)
        if case_dir is None:
            if evidence_id is not None:
                raise UsageError("--evidence names an item of a case: give --case too")
            return None
    case = Case.load(case_dir)
    if evidence_id is None:
        evidence_id = evidence_of(case, image)
    else:
        known = [item.id for item in case.evidence_items()]
        if evidence_id not in known:
            raise UsageError(f"no evidence item {evidence_id!r} in {case.root} "
                             f"(items: {', '.join(known) or 'none'})")
    return CaseLink(case.root, evidence_id)


def evidence_image(case_dir: Path, evidence_id: str) -> Path:
    """The image of a case's evidence item: the one its acquisition log names, else the first
    ``.E01``/raw file in its folder. Raises :class:`UsageError` when there is none."""
    from bitwitness.case import Case

    case = Case.load(case_dir)
    items = {item.id: item for item in case.evidence_items()}
    item = items.get(evidence_id)
    if item is None:
        raise UsageError(f"no evidence item {evidence_id!r} in {case.root} "
                         f"(items: {', '.join(items) or 'none'})")
    folder = Path(item.folder)
    if item.acquisition_log is not None:
        try:
            log = acquisitionlog.load(Path(item.acquisition_log), any_version=True)
        except acquisitionlog.LogFormatError:
            log = None  # an unreadable log names nothing: the folder's images are looked at
        for output in log.outputs if log is not None else ():
            if output.role == "image":
                named = Path(output.path)
                for candidate in (named, folder / named.name):
                    if candidate.is_file():
                        return candidate
    for suffix in (".E01", ".e01", ".raw", ".001", ".dd", ".img"):
        found = sorted(folder.glob(f"*{suffix}"))
        if found:
            return found[0]
    raise UsageError(f"evidence item {evidence_id!r} holds no image in {folder}")


# --- state files ---------------------------------------------------------------------------


def state_dir() -> Path:
    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    return Path(base) / f"bitwitness-mounts-{os.getuid()}"


def state_file(mountpoint: Path) -> Path:
    key = hashlib.sha256(os.fsencode(mountpoint.resolve())).hexdigest()[:24]
    return state_dir() / f"{key}.json"


def read_state(mountpoint: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(state_file(mountpoint).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _write_state(target: Path, data: dict[str, Any]) -> None:
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    tmp.write_text(json.dumps(data), encoding="utf-8")
    tmp.replace(target)


# --- serving -------------------------------------------------------------------------------


@contextmanager
def _fuse_signals() -> Iterator[None]:
    """Leave SIGTERM and SIGHUP to libfuse (it unmounts on them) while it serves."""
    saved = {}
    for sig in (signal.SIGTERM, signal.SIGHUP):
        with suppress(ValueError):
            saved[sig] = signal.signal(sig, signal.SIG_DFL)
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


#: What libfuse 3.14 prints on every mount through the API mfusepy calls (its legacy loop
#: configuration passes "no limit" as -1); it says nothing about the mount.
_LIBFUSE_NOISE = b"Ignoring invalid max threads value"


@contextmanager
def _quiet_libfuse() -> Iterator[None]:
    """Pass the process's stderr (fd 2) through a filter that drops libfuse's known noise line.

    Everything else (libfuse's real errors, our own notices) reaches stderr unchanged.
    """
    try:
        saved = os.dup(2)
        read_end, write_end = os.pipe()
    except OSError:
        yield
        return

    def forward() -> None:
        with os.fdopen(read_end, "rb", buffering=0) as pipe:
            pending = b""
            while chunk := pipe.read(65536):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    if _LIBFUSE_NOISE not in line:
                        os.write(saved, line + b"\n")
            if pending and _LIBFUSE_NOISE not in pending:
                os.write(saved, pending)

    thread = threading.Thread(target=forward, name="stderr-filter", daemon=True)
    thread.start()
    sys.stderr.flush()
    os.dup2(write_end, 2)
    os.close(write_end)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)  # closes the pipe's last write end: the filter drains and ends
        thread.join(timeout=5)
        os.close(saved)


def _load_binding() -> Any:
    """mfusepy, over libfuse 3 when it is installed (it goes with ``fusermount3``)."""
    if ctypes.util.find_library("fuse3") and not os.environ.get("FUSE_LIBRARY_PATH"):
        os.environ.setdefault("FUSE_LIBRARY_NAME", "fuse3")
    try:
        import mfusepy
    except (ImportError, OSError) as exc:
        raise MountError(f"FUSE is not available here: {exc}") from exc
    return mfusepy


def serve(request: MountRequest, *, notice: Notice | None = None,
          ready: Callable[[], None] | None = None) -> None:
    """Mount ``request.image`` and serve it until it is unmounted (blocks; foreground).

    Raises :class:`MountError` for an unusable mount point or a missing FUSE, and the image's
    own errors when it cannot be opened; all of that before anything is mounted.
    """
    from bitwitness.image import image_files, open_image
    from bitwitness.report.mount.cache import CachedStream
    from bitwitness.report.mount.fusefs import EvidenceOperations
    from bitwitness.report.mount.tree import MountTree

    why = fuse_available()
    if why:
        raise MountError(why)
    mountpoint = request.mountpoint.absolute()
    check_mountpoint(mountpoint)
    fuse = _load_binding()
    say: Notice = notice or (lambda _message: None)
    stream = open_image(request.image, request.image_format)
    try:
        files = [str(p.absolute()) for p in image_files(request.image, request.image_format)]
        cached = CachedStream(stream, cache_bytes=request.cache_bytes)
        tree = MountTree(cached, request.image, files=request.files, notice=say,
                         keys=request.keys)
        recorder = _Recorder(request, mountpoint, files, stream.info.format, stream.size,
                             state=stream.info.details.get("snapshot"))
        # Computed before mounting: resolving the mount point while serving would ask the
        # mount itself, whose first request (init) is still being answered: a deadlock.
        state_path = state_file(mountpoint)

        def started() -> None:
            recorder.mounted()
            _write_state(state_path, {"pid": os.getpid(), "image": str(request.image.absolute()),
                                      "mountpoint": str(mountpoint)})
            if ready is not None:
                ready()

        ops = EvidenceOperations(tree, notice=say, on_init=started,
                                 on_first_request=lambda: raise_read_ahead(mountpoint))
        try:
            with _fuse_signals(), _quiet_libfuse():
                fuse.FUSE(ops, str(mountpoint), foreground=True, ro=True, fsname=SUBTYPE,
                          subtype=SUBTYPE, kernel_cache=True)
        except RuntimeError as exc:
            # libfuse's main returns non-zero both when it cannot mount and when a signal
            # (Ctrl-C, SIGTERM) ended a mount that was serving: only the first is an error.
            if recorder.started is None:
                raise MountError(f"{mountpoint}: libfuse could not mount there "
                                 f"(status {exc})") from exc
        finally:
            cached.stop_read_ahead(timeout=10)
            with suppress(OSError):
                state_path.unlink()
            recorder.unmounted()
            tree.close()
    finally:
        stream.close()


class _Recorder:
    """Appends the mount and unmount events of one mount to its case's custody log."""

    def __init__(self, request: MountRequest, mountpoint: Path, files: list[str],
                 fmt: str, size: int, *, state: str | None = None) -> None:
        """``state``: the image's state mounted when not its current one (a QCOW2 internal
        snapshot), recorded as ``image_state``."""
        self.link = request.case
        self.details: dict[str, Any] = {
            "image": str(request.image.absolute()), "image_files": files, "format": fmt,
            "media_size": size, "mountpoint": str(mountpoint), "files": request.files,
            "read_only": True, "pid": os.getpid()}
        if state:
            self.details["image_state"] = str(state)
        self.started: datetime | None = None

    def _record(self, action: str, details: dict[str, Any]) -> None:
        if self.link is None:
            return
        from bitwitness.case import Case

        Case.load(self.link.case_dir).record(action, evidence_id=self.link.evidence_id,
                                             details=details)

    def mounted(self) -> None:
        started = datetime.now(UTC)
        self._record("mount", self.details)
        self.started = started

    def unmounted(self) -> None:
        if self.started is None:
            return
        seconds = (datetime.now(UTC) - self.started).total_seconds()
        self._record("unmount", {"image": self.details["image"],
                                 "mountpoint": self.details["mountpoint"],
                                 "mounted_seconds": round(seconds, 3)})


def mount_in_background(request: MountRequest) -> int:
    """Serve ``request`` from a detached ``bitwitness mount`` process; its pid once it serves.

    Keys are not handed to another process (they would have to travel on its command line or
    in its environment): an encrypted volume is mounted in the foreground.
    """
    if request.keys is not None and request.keys.given:
        raise UsageError("keys for encrypted volumes are taken by a foreground mount only; "
                         "leave out --background")
    from bitwitness.images.ewf_ltree import DEFAULT_BUDGET, budget

    # the examiner's --max-ltree (a global option) applies to the child's opening too
    limit = budget()
    allow = ["--max-ltree", str(limit)] if limit != DEFAULT_BUDGET else []
    argv = [*allow, "mount", str(request.image.absolute()), str(request.mountpoint.absolute()),
            "--cache-mib", str(max(1, request.cache_bytes // (1024 * 1024)))]
    # the image as this command opens it: a forced format, named parents, a snapshot
    from bitwitness.images.libyal import chosen_parents
    from bitwitness.images.snapshot_choice import chosen_snapshot

    if request.image_format is not None:
        argv += ["--image-format", request.image_format]
    for parent in chosen_parents():
        argv += ["--parent", str(parent.absolute())]
    if (snapshot := chosen_snapshot()) is not None:
        argv += ["--snapshot", snapshot]
    if request.files:
        argv.append("--files")
    if request.case is not None:
        argv += ["--case", str(request.case.case_dir)]
        if request.case.evidence_id is not None:
            argv += ["--evidence", request.case.evidence_id]
    return start_background(argv, request.mountpoint)


def start_background(argv: list[str], mountpoint: Path, *,
                     timeout: float = WAIT_SECONDS) -> int:
    """Start ``bitwitness ARGV`` (a foreground mount) detached; return its pid once it serves.

    The child's error (a bad image, a busy mount point) is raised here as one line.
    """
    from bitwitness import signing

    mountpoint = mountpoint.absolute()
    key_fd = signing.hand_over()  # the child signs the case's mount and unmount events
    env = dict(os.environ)
    if key_fd is not None:
        env[signing.KEY_FD_ENV] = str(key_fd)
    with tempfile.TemporaryFile() as errors:
        try:
            child = subprocess.Popen([sys.executable, "-m", "bitwitness", *argv],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=errors, start_new_session=True, env=env,
                                     pass_fds=(key_fd,) if key_fd is not None else ())
        finally:
            if key_fd is not None:
                os.close(key_fd)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            code = child.poll()
            if code is not None:
                errors.seek(0)
                lines = errors.read().decode("utf-8", "replace").strip().splitlines()
                last = lines[-1] if lines else f"exit status {code}"
                raise MountError(f"the background mount failed: {last.split('error: ')[-1]}")
            state = read_state(mountpoint)
            if state is not None and state.get("pid") == child.pid:
                return child.pid
            time.sleep(0.05)
        child.terminate()
        raise MountError(f"{mountpoint}: the mount did not answer within {timeout:.0f} s")


# --- unmounting ----------------------------------------------------------------------------


def unmount(mountpoint: Path, *, timeout: float = WAIT_SECONDS) -> dict[str, Any] | None:
    """Unmount a BitWitness mount; wait for its server (and its custody event) to finish.

    Returns the server's state (pid, image) when one was known. A busy mount (a process works
    inside it) stays mounted and raises :class:`MountError`; so does a mount that is not ours.
    """
    mountpoint = mountpoint.absolute()
    fstype = is_mounted(mountpoint)
    if fstype is None:
        raise MountError(f"{mountpoint}: nothing is mounted there")
    if fstype != f"fuse.{SUBTYPE}":
        raise MountError(f"{mountpoint}: not a BitWitness mount ({fstype}); not unmounted")
    state = read_state(mountpoint)
    tool = _fusermount()
    command = [tool, "-u", str(mountpoint)] if tool else ["umount", str(mountpoint)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        message = " ".join(done.stderr.split()) or f"{command[0]} failed"
        if "busy" in message.lower():
            raise MountError(f"{mountpoint}: busy (a process is using it); close it and retry")
        raise MountError(f"{mountpoint}: cannot unmount: {message}")
    if state is not None:
        _wait_gone(int(state.get("pid", 0)), timeout)
    return state


def _wait_gone(pid: int, timeout: float) -> None:
    if pid <= 0 or pid == os.getpid():
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        except PermissionError:
            return
        with suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.05)



def mounted_media(path: Path) -> bool:
    """True when ``path`` is the ``media.raw`` at the top of a BitWitness mount."""
    if path.name != "media.raw":
        return False
    return is_mounted(path.absolute().parent) == f"fuse.{SUBTYPE}"
