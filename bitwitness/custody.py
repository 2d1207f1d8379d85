"""The custody log: an append-only, hash-chained JSON Lines file, anchored against truncation.

File format (``custody.jsonl``, schema ``bitwitness.custody/1``). One event per line, UTF-8,
ending in ``\\n``, keys in this order::

    {"seq":1,"time":"2025-01-01T12:00:00.000000+00:00","actor":"...","action":"case-created",
     "evidence_id":null,"details":{...,"tool_version":"0.1.0","host":"..."},"prev":"000...0"}

* ``seq`` is the 1-based line number; ``time`` is UTC ISO-8601, taken under the lock so that
  times follow the order of ``seq`` (unless the clock itself is set back).
* ``prev`` is the SHA-256 (hex) of the previous line's exact bytes *including* its ``\\n``; the
  first line carries :data:`GENESIS` (64 zeros).
* ``custody.head`` (the anchor, beside the log) records how many events the log holds and the
  SHA-256 of its last line. It is replaced atomically after every append, under the same lock.

What is detected (``CustodyLog.verify``), and how:

* an edited line: the next line's ``prev`` (or, for the last line, the anchor) no longer matches;
* a deleted, inserted or moved line: ``seq`` no longer equals the line number, and the chain breaks;
* whole lines cut from the end: the log holds fewer lines than the anchor records;
* a line cut in the middle: the last line has no ``\\n`` (and usually is not JSON any more);
* a deleted anchor while the log has events.

Threat model, honestly: this is *tamper-evident*, not tamper-proof. There is no secret key, so
someone with write access who rewrites a line *and* recomputes every later ``prev`` *and* the
anchor, or replaces the whole log with a consistent forgery, is not detected by the files alone.
That is why ``verify`` reports the head hash (SHA-256 of the last line): an examiner who writes
it in notes, a report or an e-mail pins the whole history up to that point, and any later
rewrite of it shows. What the chain guarantees is that silent edits, deletions and truncations
by anyone who does not recompute the chain, and accidents (an editor, a sync tool, a crash),
never go unnoticed.

Concurrency: appends take an exclusive ``flock`` on the log file, re-read it, write one line with a
single ``write`` call, ``fsync``, then replace the anchor and ``fsync`` its folder. Readers take a
shared lock. ``flock`` is per open file, so threads and processes both exclude each other (on local
file systems; NFS without lock support is not covered). An append interrupted between the
log's ``fsync`` and the anchor's replacement leaves one correctly chained line past the anchor;
``verify`` reports it as a warning (it could equally have been anchored by whoever wrote it) and
the next append anchors it. An append never covers up evidence of tampering: it refuses to add to
a log that is cut or that disagrees with its anchor.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import socket
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from datetime import UTC, datetime
from enum import Enum, StrEnum
from pathlib import Path
from typing import Any

from bitwitness import __version__
from bitwitness.errors import CustodyError, UsageError
from bitwitness.fileio import fsync_path, write_all

SCHEMA = "bitwitness.custody/1"
GENESIS = "0" * 64
HEAD_SUFFIX = ".head"  # custody.jsonl -> custody.head
_KEYS = ("seq", "time", "actor", "action", "evidence_id", "details", "prev")


class CustodyAction(StrEnum):
    """What happened: digital actions come from the engines, physical ones from ``custody add``."""

    CASE_CREATED = "case-created"
    ACQUIRE = "acquire"
    VERIFY = "verify"
    EXPORT = "export"
    REPORT = "report"
    CONVERT = "convert"
    RESTORE = "restore"
    MOUNT = "mount"
    UNMOUNT = "unmount"
    SEIZED = "seized"
    SEALED = "sealed"
    TRANSFERRED = "transferred"
    CHECKED_IN = "checked-in"
    CHECKED_OUT = "checked-out"
    STORED = "stored"
    RETURNED = "returned"
    DESTROYED = "destroyed"


PHYSICAL_ACTIONS: tuple[CustodyAction, ...] = (
    CustodyAction.SEIZED, CustodyAction.SEALED, CustodyAction.TRANSFERRED,
    CustodyAction.CHECKED_IN, CustodyAction.CHECKED_OUT, CustodyAction.STORED,
    CustodyAction.RETURNED, CustodyAction.DESTROYED,
)


@dataclass(frozen=True)
class CustodyEvent:
    """One line of the log, as written."""

    seq: int
    time: str
    actor: str
    action: str
    evidence_id: str | None
    details: dict[str, Any] = field(hash=False)
    prev: str

    @property
    def timestamp(self) -> datetime:
        return datetime.fromisoformat(self.time)

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in _KEYS}


@dataclass(frozen=True)
class CustodyCheck:
    """The outcome of verifying a log.

    ``events`` is the number of lines read; ``first_bad_line`` (1-based) and ``reason`` say where
    and why the log is broken (``first_bad_line`` is ``None`` when the problem is not one line,
    e.g. a missing anchor). ``head`` is the SHA-256 of the last line: write it down to pin the
    history. ``warnings`` are oddities that do not break the chain (an unanchored last line).
    """

    ok: bool
    events: int
    first_bad_line: int | None = None
    reason: str | None = None
    head: str | None = None
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Anchor:
    count: int
    last: str


def line_digest(line: bytes) -> str:
    """SHA-256 hex of a line's exact bytes (with its ``\\n``): the value in the next ``prev``."""
    return hashlib.sha256(line).hexdigest()


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _plain(value: Any) -> Any:
    """Details as plain JSON types: paths, enums, datetimes and dataclasses are converted."""
    if is_dataclass(value) and not isinstance(value, type):
        value = {f.name: getattr(value, f.name) for f in fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def encode_event(event: CustodyEvent) -> bytes:
    """The exact bytes of the event's line: compact JSON, fixed key order, UTF-8, ``\\n``."""
    text = json.dumps(event.to_dict(), ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.encode("utf-8") + b"\n"


class CustodyLog:
    """A custody log file and its anchor (``custody.jsonl`` -> ``custody.head``, same folder)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.head_path = self.path.with_suffix(HEAD_SUFFIX)

    # --- writing -------------------------------------------------------------------------------

    @classmethod
    def create(cls, path: Path | str) -> CustodyLog:
        """Create an empty log and its anchor; refuses when the log already exists."""
        log = cls(path)
        try:
            fd = os.open(log.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError as exc:
            raise CustodyError(f"{log.path} already exists; a custody log is never "
                               "replaced") from exc
        os.close(fd)
        log._write_anchor(_Anchor(0, GENESIS))
        return log

    def append(self, action: str | CustodyAction, *, actor: str, evidence_id: str | None = None,
               details: Mapping[str, Any] | None = None) -> CustodyEvent:
        """Append one event under an exclusive lock and return it as written.

        ``details`` gets ``tool_version`` and ``host`` added (they always describe the process that
        writes the line). Raises :class:`CustodyError` when the log is missing, cut, or disagrees
        with its anchor: adding to it then would hide that.
        """
        try:
            action = CustodyAction(action)
        except ValueError as exc:
            known = ", ".join(a.value for a in CustodyAction)
            raise UsageError(f"unknown custody action {action!r} (known: {known})") from exc
        if not actor or not actor.strip():
            raise UsageError("a custody event needs an actor")
        body = dict(_plain(dict(details or {})))
        body["tool_version"] = __version__
        body["host"] = socket.gethostname()
        with self._locked(exclusive=True) as fd:
            data = _read_all(fd)
            lines = data.splitlines(keepends=True)
            self._check_appendable(lines)
            prev = line_digest(lines[-1]) if lines else GENESIS
            event = CustodyEvent(seq=len(lines) + 1, time=utc_now(), actor=actor.strip(),
                                 action=action.value, evidence_id=evidence_id, details=body,
                                 prev=prev)
            line = encode_event(event)
            try:
                write_all(fd, line)
                os.fsync(fd)
                self._write_anchor(_Anchor(event.seq, line_digest(line)))
            except OSError as exc:  # a torn line stays visible to verify: that is intended
                raise CustodyError(f"cannot write to the custody log {self.path}: "
                                   f"{exc.strerror or exc}") from exc
        return event

    def _check_appendable(self, lines: list[bytes]) -> None:
        if lines and not lines[-1].endswith(b"\n"):
            raise CustodyError(f"{self.path}: the last line is cut off; run 'bitwitness custody "
                               f"verify' (nothing was appended)", line=len(lines))
        anchor = self._read_anchor()
        if anchor is None:
            raise CustodyError(f"{self.path}: its anchor {self.head_path.name} is missing; run "
                               "'bitwitness custody verify' (nothing was appended)")
        problem = _anchor_problem(anchor, lines)
        if problem is not None:
            raise CustodyError(f"{problem[1]} (nothing was appended)", line=problem[0])

    def _write_anchor(self, anchor: _Anchor) -> None:
        """Replace the anchor atomically (temporary file, fsync, rename, fsync of the folder)."""
        doc = {"schema": SCHEMA, "count": anchor.count, "last_sha256": anchor.last,
               "updated": utc_now()}
        fd, tmp = tempfile.mkstemp(prefix=f".{self.head_path.name}.", dir=self.path.parent)
        try:
            write_all(fd, (json.dumps(doc) + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            Path(tmp).chmod(0o644)
            Path(tmp).replace(self.head_path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        fsync_path(self.path.parent)

    # --- reading -------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self, *, exclusive: bool) -> Iterator[int]:
        flags = os.O_RDWR | os.O_APPEND if exclusive else os.O_RDONLY
        try:
            fd = os.open(self.path, flags)
        except FileNotFoundError as exc:
            raise CustodyError(f"custody log {self.path} is missing") from exc
        except OSError as exc:
            raise CustodyError(f"cannot open custody log {self.path}: {exc.strerror}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            yield fd
        finally:
            os.close(fd)  # closing releases the lock

    def _read_anchor(self) -> _Anchor | None:
        try:
            doc = json.loads(self.head_path.read_text(encoding="utf-8"))
            return _Anchor(int(doc["count"]), str(doc["last_sha256"]))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise CustodyError(f"the anchor {self.head_path} is unreadable: {exc}") from exc

    def _snapshot(self) -> tuple[list[bytes], _Anchor | None]:
        with self._locked(exclusive=False) as fd:
            lines = _read_all(fd).splitlines(keepends=True)
            try:
                anchor = self._read_anchor()
            except CustodyError:
                anchor = _Anchor(-1, "")
        return lines, anchor

    def events(self, *, strict: bool = True) -> list[CustodyEvent]:
        """Every event in the log. ``strict``: raise on a line that is not an event; otherwise skip
        it (for showing what is left of a damaged log). This does not check the chain: use
        :meth:`verify` for that."""
        lines, _ = self._snapshot()
        out = []
        for number, line in enumerate(lines, 1):
            event, problem = _parse_line(line)
            if event is not None:
                out.append(event)
            elif strict:
                raise CustodyError(problem or "not an event", line=number)
        return out

    def verify(self) -> CustodyCheck:
        """Check every line, the chain and the anchor; never raises for a broken log."""
        lines, anchor = self._snapshot()
        return check_lines(lines, anchor)

    def head(self) -> str | None:
        """SHA-256 of the last line as it is now (``None`` for an empty log)."""
        lines, _ = self._snapshot()
        return line_digest(lines[-1]) if lines else None


# --- checking ----------------------------------------------------------------------------------


def _parse_line(line: bytes) -> tuple[CustodyEvent | None, str | None]:  # noqa: PLR0911
    """An event from one line, or why it is not one."""
    if not line.endswith(b"\n"):
        return None, "the line is cut off (no line end): the log was truncated or a write torn"
    try:
        doc = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None, "not a valid JSON line"
    if not isinstance(doc, dict) or tuple(doc) != _KEYS:
        return None, f"not a custody event (keys must be {', '.join(_KEYS)} in that order)"
    seq, time, actor, action = doc["seq"], doc["time"], doc["actor"], doc["action"]
    if not isinstance(seq, int) or isinstance(seq, bool):
        return None, "seq is not a number"
    if not all(isinstance(v, str) and v for v in (time, actor, action)):
        return None, "time, actor and action must be non-empty text"
    if not (doc["evidence_id"] is None or isinstance(doc["evidence_id"], str)):
        return None, "evidence_id must be text or null"
    if not isinstance(doc["details"], dict) or not isinstance(doc["prev"], str):
        return None, "details must be a mapping and prev text"
    try:
        stamp = datetime.fromisoformat(time)
    except ValueError:
        return None, f"time {time!r} is not ISO-8601"
    if stamp.utcoffset() is None or stamp.utcoffset().total_seconds() != 0:  # type: ignore[union-attr]
        return None, f"time {time!r} is not UTC"
    return CustodyEvent(seq, time, actor, action, doc["evidence_id"], doc["details"],
                        doc["prev"]), None


def _anchor_problem(anchor: _Anchor, lines: list[bytes]) -> tuple[int | None, str] | None:
    """Where the log and its anchor disagree (line, reason), or ``None``."""
    if anchor.count < 0:
        return None, "the anchor custody.head is unreadable"
    if len(lines) < anchor.count:
        missing = anchor.count - len(lines)
        return len(lines) + 1, (f"the log ends after line {len(lines)} but its anchor records "
                                f"{anchor.count} events: {missing} line(s) were removed from the "
                                "end")
    if anchor.count == 0:
        return None
    if line_digest(lines[anchor.count - 1]) != anchor.last:
        return anchor.count, (f"line {anchor.count} differs from the SHA-256 its anchor recorded "
                              "(the line was altered or replaced)")
    return None


def _line_problem(number: int, line: bytes, prev: str) -> tuple[int, str] | None:
    """The first bad line and why, when line ``number`` breaks a rule; ``prev`` is its expected
    ``prev``. An altered line shows in the *next* line's ``prev``, so that earlier line is named."""
    event, problem = _parse_line(line)
    if event is None:
        return number, problem or "not an event"
    if event.seq != number:
        return number, (f"seq is {event.seq} on line {number}: lines were removed, inserted or "
                        "reordered here")
    if event.prev != prev:
        if number == 1:
            return number, "prev is not the genesis value"
        return number - 1, (f"line {number - 1} no longer matches the SHA-256 recorded in line "
                            f"{number} (line {number - 1} was altered, or line {number}'s prev)")
    if (event.action == CustodyAction.CASE_CREATED) != (number == 1):
        return number, ("the first event must be case-created" if number == 1 else
                        "case-created appears after the first line")
    return None


def check_lines(lines: list[bytes], anchor: _Anchor | None) -> CustodyCheck:
    """Verify raw log lines against the chain rules and the anchor (see the module docstring)."""
    prev = GENESIS
    for number, line in enumerate(lines, 1):
        bad = _line_problem(number, line, prev)
        if bad is not None:
            return CustodyCheck(False, len(lines), bad[0], bad[1])
        prev = line_digest(line)
    head = prev if lines else None
    if anchor is None:
        if lines:
            return CustodyCheck(False, len(lines), None,
                                "the anchor custody.head is missing, so truncation cannot be ruled "
                                "out", head)
        return CustodyCheck(True, 0, head=head)
    problem = _anchor_problem(anchor, lines)
    if problem is not None:
        return CustodyCheck(False, len(lines), problem[0], problem[1], head)
    warnings: tuple[str, ...] = ()
    if len(lines) > anchor.count:
        warnings = (f"line(s) {anchor.count + 1}-{len(lines)} are chained correctly but not yet "
                    "recorded in the anchor (an append was interrupted); the next append anchors "
                    "them",)
    return CustodyCheck(True, len(lines), head=head, warnings=warnings)


def _read_all(fd: int) -> bytes:
    os.lseek(fd, 0, os.SEEK_SET)
    chunks = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)
