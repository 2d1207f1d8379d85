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
  SHA-256 of its first and last lines. It is replaced atomically twice per append, under the same
  lock: first with ``pending`` (the seq and SHA-256 of the line about to be written), then, once
  the line is on disk, with the new count and no ``pending``. When an examiner key is in use the
  anchor carries its Ed25519 signature (:mod:`bitwitness.signing`).
* ``details.occurred_at`` (physical events, ``custody add --at``) is when the event happened, in
  UTC; ``time`` stays when it was recorded.
* A ``break-acknowledged`` event names a break found by verification (its line and reason, what
  the anchor held): the only way to append to a log that fails verification. Verification then
  skips from the break to that event and lists every acknowledgement.

What is detected (``CustodyLog.verify``), and how:

* an edited line: the next line's ``prev`` (or, for the last line, the anchor) no longer matches;
* a deleted, inserted or moved line: ``seq`` no longer equals the line number, and the chain breaks;
* whole lines cut from the end: the log holds fewer lines than the anchor records;
* a line cut in the middle: the last line has no ``\\n`` (and usually is not JSON any more);
* a deleted anchor while the log has events;
* lines past the anchor: an error, unless the anchor's ``pending`` proves they are the one line an
  interrupted append was writing (then a warning, and the next append anchors it);
* event times that run backwards (a warning: the clock was set back, or the line was forged);
* with signing on, an anchor that is unsigned, or signed by a key the case does not trust, or
  whose signature does not cover the log as it is: a chain recomputed by someone without the
  examiner's private key fails there.

Threat model, honestly: without a key this is *tamper-evident*, not tamper-proof: someone with
write access who rewrites a line *and* recomputes every later ``prev`` *and* the anchor is not
detected by the files alone. ``verify`` reports the head hash (SHA-256 of the last line) so that
an examiner can pin the history by writing it down. With signing on (trusted keys in the case),
the anchor must carry a valid signature by a trusted key over the count, the last line's SHA-256
and the first line's SHA-256, so a recomputed chain is detected without any hash written down.
What signing cannot rule out is a log cut back to an older, genuinely signed state together with
that older anchor (a copy of it), or a trust list replaced by someone who can write the case
folder (a lab keeps its list outside the case with ``BITWITNESS_TRUSTED_KEYS``); an RFC 3161
timestamp token on the anchor dates it.

Concurrency: appends take an exclusive ``flock`` on the log file, re-read it, write one line with a
single ``write`` call, ``fsync``, then replace the anchor and ``fsync`` its folder. Readers take a
shared lock. ``flock`` is per open file, so threads and processes both exclude each other (on local
file systems; NFS without lock support is not covered). An append interrupted between the
log's ``fsync`` and the anchor's final replacement leaves one correctly chained line past the
anchor, and the anchor's ``pending`` names that line's SHA-256: ``verify`` reports it as a warning
and the next append anchors it. An append never covers up evidence of tampering: it runs the full
verification first and refuses a log that fails it (:class:`CustodyError`, exit 1), unless it is
the acknowledgement of that break (:meth:`CustodyLog.acknowledge`).
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
    BREAK_ACKNOWLEDGED = "break-acknowledged"
    KEY_TRUSTED = "key-trusted"
    TIMESTAMPED = "timestamped"


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
    history. ``warnings`` are oddities that do not break the chain (an interrupted append the
    anchor proves, times running backwards). ``acknowledged`` lists the breaks an examiner
    recorded with a ``break-acknowledged`` event; ``signer`` names who signed the anchor (the
    trusted key's name) when it is signed.
    """

    ok: bool
    events: int
    first_bad_line: int | None = None
    reason: str | None = None
    head: str | None = None
    warnings: tuple[str, ...] = ()
    acknowledged: tuple[AcknowledgedBreak, ...] = ()
    signer: str | None = None
    signed: bool = False


@dataclass(frozen=True)
class AcknowledgedBreak:
    """A break an examiner acknowledged: the line it names, why, and the event that says so."""

    line: int | None
    reason: str
    event_seq: int
    actor: str
    note: str


@dataclass(frozen=True)
class _Anchor:
    count: int
    last: str
    pending: tuple[int, str] | None = None
    first: str | None = None        # SHA-256 of line 1 (what ties a signature to this case)
    updated: str = ""
    signature: Mapping[str, Any] | None = None

    def statement(self) -> bytes:
        """The exact bytes an examiner key signs: the anchor without its signature."""
        doc = {"schema": SCHEMA, "count": self.count, "last_sha256": self.last,
               "first_sha256": self.first,
               "pending": None if self.pending is None else {"seq": self.pending[0],
                                                             "sha256": self.pending[1]},
               "updated": self.updated}
        return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


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
        writes the line). Raises :class:`CustodyError` when the log is missing or fails
        verification: adding to it then would hide that (see :meth:`acknowledge`).
        """
        action = _action(action)
        if action == CustodyAction.BREAK_ACKNOWLEDGED:
            raise UsageError("a break is acknowledged with 'bitwitness custody acknowledge'")
        return self._append(action, actor=actor, evidence_id=evidence_id, details=details)

    def acknowledge(self, *, actor: str, line: int | None, note: str) -> CustodyEvent:
        """Record that the examiner has seen the break verification reports, naming it.

        ``line`` must be the first bad line verification names (``None`` for a break that is not
        one line, such as a missing anchor). The event records the break's line, reason and what
        the anchor held, then chains onto the log as it is; later appends are accepted again.
        Raises :class:`UsageError` when the log is intact or ``line`` names another break.
        """
        if not note or not note.strip():
            raise UsageError("an acknowledgement needs a note saying what happened")
        return self._append(CustodyAction.BREAK_ACKNOWLEDGED, actor=actor, evidence_id=None,
                            details={"note": note.strip()}, acknowledge=(line,))

    def _append(self, action: CustodyAction, *, actor: str, evidence_id: str | None,
                details: Mapping[str, Any] | None,
                acknowledge: tuple[int | None] | None = None) -> CustodyEvent:
        from bitwitness import signing

        if not actor or not actor.strip():
            raise UsageError("a custody event needs an actor")
        body = dict(_plain(dict(details or {})))
        trust = signing.trusted_keys(self.path.parent)
        signer = signing.session_signer(required=bool(trust))
        if trust and signer is not None and signer.fingerprint not in trust:
            # an anchor signed by a key the case does not trust would fail every verification
            # from now on
            raise UsageError(f"the key of {signer.name} ({signer.fingerprint[:16]}...) is not one "
                             f"the case {self.path.parent} trusts: nothing was appended")
        with self._locked(exclusive=True) as fd:
            data = _read_all(fd)
            lines = data.splitlines(keepends=True)
            anchor = self._read_anchor_lenient()
            check = check_lines(lines, anchor, trust)
            prefix = b""
            if acknowledge is not None:
                body["break"] = _break_record(check, acknowledge[0], anchor, lines)
                if lines and not lines[-1].endswith(b"\n"):
                    prefix = b"\n"  # end the torn fragment: it stays, as a bad line
                    lines[-1] += prefix
            elif not check.ok:
                where = f"line {check.first_bad_line}: " if check.first_bad_line else ""
                raise CustodyError(f"{self.path}: {where}{check.reason} (nothing was appended; "
                                   "run 'bitwitness custody verify', and record what happened "
                                   "with 'bitwitness custody acknowledge' to go on)")
            body["tool_version"] = __version__
            body["host"] = socket.gethostname()
            prev = line_digest(lines[-1]) if lines else GENESIS
            event = CustodyEvent(seq=len(lines) + 1, time=utc_now(),
                                 actor=actor.strip(), action=action.value,
                                 evidence_id=evidence_id, details=body, prev=prev)
            line = encode_event(event)
            first = line_digest(lines[0]) if lines else line_digest(line)
            pending = _Anchor(len(lines), prev, (event.seq, line_digest(line)), first)
            if acknowledge is not None and anchor is not None and anchor.count >= 0:
                # until the acknowledgement is on disk the anchor keeps showing the break
                pending = _Anchor(anchor.count, anchor.last, pending.pending, anchor.first)
            try:
                self._write_anchor(pending, signer)
                write_all(fd, prefix + line)
                os.fsync(fd)
                self._write_anchor(_Anchor(event.seq, line_digest(line), None, first), signer)
            except OSError as exc:  # a torn line stays visible to verify: that is intended
                raise CustodyError(f"cannot write to the custody log {self.path}: "
                                   f"{exc.strerror or exc}") from exc
        return event

    def _write_anchor(self, anchor: _Anchor, signer: Any = None) -> None:
        """Replace the anchor atomically (temporary file, fsync, rename, fsync of the folder),
        signed by ``signer`` (a :class:`bitwitness.signing.Signer`) when there is one."""
        anchor = _Anchor(anchor.count, anchor.last, anchor.pending, anchor.first, utc_now())
        doc: dict[str, Any] = {"schema": SCHEMA, "count": anchor.count,
                               "last_sha256": anchor.last, "first_sha256": anchor.first,
                               "updated": anchor.updated}
        if anchor.pending is not None:
            doc["pending"] = {"seq": anchor.pending[0], "sha256": anchor.pending[1]}
        if signer is not None:
            doc["signature"] = signer.sign(anchor.statement())
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
            pending = doc.get("pending")
            signature = doc.get("signature")
            first = doc.get("first_sha256")
            return _Anchor(int(doc["count"]), str(doc["last_sha256"]),
                           None if pending is None else (int(pending["seq"]),
                                                         str(pending["sha256"])),
                           None if first is None else str(first), str(doc.get("updated", "")),
                           signature if isinstance(signature, dict) else None)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise CustodyError(f"the anchor {self.head_path} is unreadable: {exc}") from exc

    def _read_anchor_lenient(self) -> _Anchor | None:
        """The anchor; an unreadable one is count -1 (verification reports it)."""
        try:
            return self._read_anchor()
        except CustodyError:
            return _Anchor(-1, "")

    def _snapshot(self) -> tuple[list[bytes], _Anchor | None]:
        with self._locked(exclusive=False) as fd:
            lines = _read_all(fd).splitlines(keepends=True)
            anchor = self._read_anchor_lenient()
        return lines, anchor

    def anchor_bytes(self) -> bytes | None:
        """The anchor file's exact bytes (what a timestamp token on the anchor covers)."""
        try:
            return self.head_path.read_bytes()
        except FileNotFoundError:
            return None

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
        """Check every line, the chain, the anchor and its signature (when the case trusts keys);
        never raises for a broken log."""
        from bitwitness import signing

        lines, anchor = self._snapshot()
        return check_lines(lines, anchor, signing.trusted_keys(self.path.parent))

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
    if anchor.count and line_digest(lines[anchor.count - 1]) != anchor.last:
        return anchor.count, (f"line {anchor.count} differs from the SHA-256 its anchor recorded "
                              "(the line was altered or replaced)")
    if anchor.first is not None and lines and line_digest(lines[0]) != anchor.first:
        return 1, "line 1 differs from the SHA-256 its anchor recorded (the log was replaced)"
    if len(lines) > anchor.count and not _pending_proves(anchor, lines):
        first, last = anchor.count + 1, len(lines)
        span = f"line {first}" if first == last else f"lines {first}-{last}"
        return first, (f"{span} past the {anchor.count} event(s) its anchor covers: appended "
                       "without updating the anchor (an append the anchor did not announce as "
                       "pending)")
    return None


def _pending_proves(anchor: _Anchor, lines: list[bytes]) -> bool:
    """The one line past the anchor is the line the anchor announced before it was written."""
    return (anchor.pending is not None and len(lines) == anchor.count + 1
            and anchor.pending[0] == len(lines) and line_digest(lines[-1]) == anchor.pending[1])


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


@dataclass
class _Walk:
    """What walking the chain found: the break (if any), acknowledgements, warnings, keys."""

    prev: str = GENESIS
    bad: tuple[int | None, str] | None = None
    acknowledged: list[AcknowledgedBreak] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    recorded_keys: dict[str, int] = field(default_factory=dict)


def _walk(lines: list[bytes]) -> _Walk:
    """Check every line's rules and chain, skipping from a break to its acknowledgement."""
    walk = _Walk()
    last_time: tuple[int, datetime] | None = None
    number = 1
    while number <= len(lines):
        line = lines[number - 1]
        bad = _line_problem(number, line, walk.prev)
        if bad is not None:
            ack = _acknowledgement(lines, number, bad[0])
            if ack is None:
                walk.bad = bad
                return walk
            number, walk.prev, last_time = ack, line_digest(lines[ack - 2]), None
            continue
        event, _ = _parse_line(line)
        assert event is not None  # _line_problem parsed it
        if event.action == CustodyAction.BREAK_ACKNOWLEDGED:
            walk.acknowledged.append(_acknowledged(event))
        elif event.action == CustodyAction.KEY_TRUSTED:
            walk.recorded_keys.setdefault(str(event.details.get("fingerprint")), number)
        stamp = event.timestamp
        if last_time is not None and stamp < last_time[1]:
            walk.warnings.append(f"line {number} was recorded at {event.time}, before line "
                                 f"{last_time[0]} ({last_time[1].isoformat()}): the clock ran "
                                 "backwards, or the line was not written by this log's appends")
        last_time = (number, stamp)
        walk.prev = line_digest(line)
        number += 1
    return walk


def check_lines(lines: list[bytes], anchor: _Anchor | None,
                trust: Mapping[str, Any] | None = None) -> CustodyCheck:
    """Verify raw log lines against the chain rules, the anchor and (when ``trust`` lists keys,
    fingerprint -> :class:`bitwitness.signing.PublicKey`) the anchor's signature."""
    walk = _walk(lines)
    done = tuple(walk.acknowledged)
    if walk.bad is not None:
        return CustodyCheck(False, len(lines), walk.bad[0], walk.bad[1], acknowledged=done)
    head = walk.prev if lines else None
    problem = _whole_log_problem(lines, anchor, trust, walk)
    if problem is not None:
        return CustodyCheck(False, len(lines), problem[0], problem[1], head,
                            tuple(walk.warnings), done)
    if anchor is None:
        return CustodyCheck(True, 0, head=head)
    if len(lines) > anchor.count:
        walk.warnings.append(f"line {len(lines)} is chained correctly and is the append its "
                             "anchor announced as pending, but the append was interrupted before "
                             "the anchor recorded it; the next append anchors it")
    signer, signed, _ = _signature_problem(anchor, trust)
    return CustodyCheck(True, len(lines), head=head, warnings=tuple(walk.warnings),
                        acknowledged=done, signer=signer, signed=signed)


def _whole_log_problem(lines: list[bytes], anchor: _Anchor | None,
                       trust: Mapping[str, Any] | None,
                       walk: _Walk) -> tuple[int | None, str] | None:
    """A problem of the log as a whole (anchor, trusted keys, signature), or ``None``."""
    if anchor is None:
        if lines:
            return None, ("the anchor custody.head is missing, so truncation cannot be ruled "
                          "out")
        return None
    problem = _anchor_problem(anchor, lines)
    if problem is not None:
        return problem
    for fp, number in walk.recorded_keys.items():
        if fp not in (trust or {}):
            return number, (f"the key {fp[:16]}... the case trusted here is missing from its "
                            "trusted keys: signing was switched off by removing it")
    _, _, reason = _signature_problem(anchor, trust)
    return None if reason is None else (None, reason)


def _signature_problem(anchor: _Anchor, trust: Mapping[str, Any] | None
                       ) -> tuple[str | None, bool, str | None]:
    """(signer name, signed, problem): a case that trusts keys needs a valid trusted signature."""
    from bitwitness import signing

    if anchor.signature is None:
        if trust:
            return None, False, ("the anchor custody.head is not signed, but the case trusts "
                                 "examiner keys: it was rewritten without a trusted key")
        return None, False, None
    outcome = signing.check_signature(anchor.statement(), anchor.signature, trust or {})
    if trust and not outcome.valid:
        return outcome.signer, False, f"the anchor custody.head: {outcome.reason}"
    return (outcome.signer if outcome.valid else None), outcome.valid, None


def _acknowledgement(lines: list[bytes], after: int, bad_line: int) -> int | None:
    """The line number of a later ``break-acknowledged`` event naming ``bad_line``, if any."""
    for number in range(after + 1, len(lines) + 1):
        event, _ = _parse_line(lines[number - 1])
        if event is None or event.action != CustodyAction.BREAK_ACKNOWLEDGED:
            continue
        named = event.details.get("break")
        if isinstance(named, dict) and named.get("first_bad_line") == bad_line:
            return number
    return None


def _acknowledged(event: CustodyEvent) -> AcknowledgedBreak:
    named = event.details.get("break")
    named = named if isinstance(named, dict) else {}
    line = named.get("first_bad_line")
    return AcknowledgedBreak(line if isinstance(line, int) else None, str(named.get("reason", "")),
                             event.seq, event.actor, str(event.details.get("note", "")))


def _break_record(check: CustodyCheck, line: int | None, anchor: _Anchor | None,
                  lines: list[bytes]) -> dict[str, Any]:
    """What an acknowledgement records about the break it names (refusing a wrong name)."""
    if check.ok:
        raise UsageError("the custody log verifies: there is no break to acknowledge")
    if line != check.first_bad_line:
        named = "no line" if check.first_bad_line is None else f"line {check.first_bad_line}"
        raise UsageError(f"the break is at {named} ({check.reason}); the acknowledgement must "
                         "name it")
    return {"first_bad_line": check.first_bad_line, "reason": check.reason,
            "lines": len(lines),
            "log_last_line_sha256": line_digest(lines[-1]) if lines else None,
            "anchor": None if anchor is None else {"count": anchor.count,
                                                    "last_sha256": anchor.last}}


def _action(action: str | CustodyAction) -> CustodyAction:
    try:
        return CustodyAction(action)
    except ValueError as exc:
        known = ", ".join(a.value for a in CustodyAction)
        raise UsageError(f"unknown custody action {action!r} (known: {known})") from exc


def _read_all(fd: int) -> bytes:
    os.lseek(fd, 0, os.SEEK_SET)
    chunks = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)
