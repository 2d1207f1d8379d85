"""Trusted time: RFC 3161 timestamp tokens from the time-stamping authority (TSA) a lab configures.

A token proves that given bytes existed no later than the time the TSA signed, independently of
the examiner's clock and keys. BitWitness asks for one over the SHA-256 of:

* an acquisition log (``BASE.json`` -> ``BASE.json.tsr``) when the acquisition ends;
* a report file (``report.pdf`` -> ``report.pdf.tsr``) when it is written;
* the custody anchor as it is after an append: its exact bytes are kept in
  ``CASE/timestamps/anchor-<count>-<UTC time>.head`` beside the token (``.tsr``), because the
  anchor itself is replaced by the next append. Each kept anchor names the log's line count and the
  SHA-256 of its last line, so a later rewrite of any line up to there contradicts a dated record.

The lab configures the TSA with ``BITWITNESS_TSA_URL`` (HTTP, ``application/timestamp-query``)
and the certificate that verifies its tokens with ``BITWITNESS_TSA_CERT`` (a PEM file: the TSA's
certificate or the CA that issued it). Tokens are verified offline with ``openssl ts -verify``
against that certificate: the token's signature, the TSA certificate's time-stamping purpose and
the hash of the file as it is now.

The network, subprocess and temporary-file modules are imported only when a token is asked for or
checked: an acquisition without a TSA does not pay for them.

Without a reachable TSA nothing fails: the work is done and kept, the caller is told that no
token was obtained, and ``bitwitness timestamp add`` obtains one later (dating the file then, not
when it was made: the token's time says so).
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bitwitness.errors import UsageError

URL_ENV = "BITWITNESS_TSA_URL"
CERT_ENV = "BITWITNESS_TSA_CERT"
TOKEN_SUFFIX = ".tsr"  # noqa: S105 - a file suffix
ANCHOR_DIR = "timestamps"
TIMEOUT = 15.0
_SHA256_OID = bytes.fromhex("0609608648016503040201")  # 2.16.840.1.101.3.4.2.1


class TimestampError(Exception):
    """No token could be obtained (unreachable TSA, refusal, garbage): said, never fatal."""


@dataclass(frozen=True)
class Stamp:
    """The outcome of asking for a token: where it is and when, or why there is none."""

    path: Path
    token: Path | None = None
    time: str | None = None
    error: str | None = None

    def sentence(self) -> str:
        if self.token is not None:
            return f"{self.path.name}: timestamped by the TSA at {self.time}"
        return (f"{self.path.name}: NOT timestamped ({self.error}); the work is complete, run "
                f"'bitwitness timestamp add {self.path}' when the TSA is reachable")


@dataclass(frozen=True)
class TokenCheck:
    """The offline check of one token against the file (or kept anchor) it covers."""

    path: Path
    token: Path
    valid: bool
    time: str | None = None
    tsa: str | None = None
    reason: str | None = None

    def sentence(self) -> str:
        if self.valid:
            return f"{self.path.name}: timestamp by {self.tsa} at {self.time} verified"
        return f"{self.path.name}: TIMESTAMP INVALID: {self.reason}"


def configured_url() -> str | None:
    return os.environ.get(URL_ENV) or None


def token_path(path: Path) -> Path:
    return path.with_name(path.name + TOKEN_SUFFIX)


# --- asking ------------------------------------------------------------------------------------


def _der(tag: int, body: bytes) -> bytes:
    if len(body) < 0x80:
        return bytes([tag, len(body)]) + body
    size = len(body).to_bytes((len(body).bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + body


def query(sha256: bytes, nonce: int) -> bytes:
    """A DER ``TimeStampReq`` (RFC 3161 section 2.4.1): version 1, SHA-256 imprint, nonce, and
    the TSA's certificate requested in the reply."""
    algorithm = _der(0x30, _SHA256_OID + b"\x05\x00")
    imprint = _der(0x30, algorithm + _der(0x04, sha256))
    nonce_bytes = nonce.to_bytes((nonce.bit_length() + 8) // 8, "big")  # leading 0: positive
    return _der(0x30, _der(0x02, b"\x01") + imprint + _der(0x02, nonce_bytes) + b"\x01\x01\xff")


def fetch(sha256: bytes, url: str, *, timeout: float = TIMEOUT) -> bytes:
    """Ask the TSA at ``url`` for a token over ``sha256``; the DER ``TimeStampResp``."""
    import secrets
    import urllib.error
    import urllib.request

    if not url.startswith(("http://", "https://")):
        raise UsageError(f"{URL_ENV} must be an http(s) URL, not {url!r}")
    request = urllib.request.Request(  # noqa: S310 - the scheme is checked above
        url, data=query(sha256, secrets.randbits(63)), method="POST",
        headers={"Content-Type": "application/timestamp-query"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            body: bytes = response.read(1 << 20)
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        raise TimestampError(f"the TSA {url} is unreachable: {reason}") from exc
    _granted(body)
    return body


def _reply_text(token: bytes) -> str:
    import subprocess
    import tempfile

    with tempfile.NamedTemporaryFile(suffix=TOKEN_SUFFIX) as fh:
        fh.write(token)
        fh.flush()
        result = subprocess.run(["openssl", "ts", "-reply", "-in", fh.name, "-text"],
                                capture_output=True, text=True, check=False, timeout=60)
    if result.returncode != 0:
        raise TimestampError("the TSA's reply is not an RFC 3161 response")
    return result.stdout


def _granted(token: bytes) -> str:
    """The token's time (UTC ISO-8601) when the TSA granted it; raises otherwise."""
    text = _reply_text(token)
    status = re.search(r"^Status: (.+)$", text, re.MULTILINE)
    if status is None or not status.group(1).startswith("Granted"):
        raise TimestampError(f"the TSA refused: {status.group(1) if status else 'no status'}")
    return _gen_time(text)


def _gen_time(text: str) -> str:
    match = re.search(r"^Time stamp: (.+?) GMT$", text, re.MULTILINE)
    if match is None:
        raise TimestampError("the TSA's reply has no time")
    stamp = datetime.strptime(" ".join(match.group(1).split()).split(".")[0],
                              "%b %d %H:%M:%S %Y").replace(tzinfo=UTC)
    return stamp.isoformat()


def stamp_file(path: Path, url: str | None = None) -> Stamp:
    """Get a token for ``path`` and write ``path.tsr``; a missing TSA is an outcome, not an
    error."""
    url = url or configured_url()
    if url is None:
        return Stamp(path, error=f"no TSA configured ({URL_ENV})")
    try:
        digest = hashlib.sha256(path.read_bytes()).digest()
        token = fetch(digest, url)
        when = _granted(token)
    except TimestampError as exc:
        return Stamp(path, error=str(exc))
    target = token_path(path)
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_bytes(token)
    tmp.replace(target)
    return Stamp(path, target, when)


def stamp_anchor(case_root: Path, url: str | None = None) -> Stamp:
    """Keep a copy of the custody anchor as it is now and get a token for it."""
    anchor = case_root / "custody.head"
    if (url or configured_url()) is None:
        return Stamp(anchor, error=f"no TSA configured ({URL_ENV})")
    try:
        data = anchor.read_bytes()
    except OSError as exc:
        return Stamp(anchor, error=f"cannot read {anchor}: {exc.strerror}")
    count = _anchor_count(data)
    folder = case_root / ANCHOR_DIR
    folder.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    kept = folder / f"anchor-{count:06d}-{stamp}.head"
    kept.write_bytes(data)
    outcome = stamp_file(kept, url)
    if outcome.token is None:
        kept.unlink()
        return Stamp(anchor, error=outcome.error)
    return Stamp(anchor, outcome.token, outcome.time)


def _anchor_count(data: bytes) -> int:
    import json

    try:
        return int(json.loads(data)["count"])
    except (ValueError, KeyError, TypeError):
        return 0


def stamp_finished(result: Any, paths: list[Path], case_root: Path | None) -> list[Stamp]:
    """:func:`stamp_outputs` for a conversion or restore that ended (nothing for one that failed
    or was interrupted: its log is not the final word)."""
    status = getattr(getattr(result, "status", None), "value", None)
    if status in ("failed", "interrupted"):
        return []
    return stamp_outputs(paths, case_root)


def stamp_outputs(paths: list[Path], case_root: Path | None) -> list[Stamp]:
    """After work is written: tokens for ``paths`` and the case's anchor, when a TSA is
    configured (none asked for otherwise)."""
    if configured_url() is None:
        return []
    stamps = [stamp_file(p) for p in paths if p.is_file()]
    if case_root is not None and (case_root / "custody.head").is_file():
        stamps.append(stamp_anchor(case_root))
    return stamps


# --- checking ----------------------------------------------------------------------------------


def check_token(path: Path, token: Path, cert: Path | None = None) -> TokenCheck:
    """Verify ``token`` over ``path`` offline against the lab's TSA certificate."""
    import subprocess

    cert_name = str(cert) if cert is not None else os.environ.get(CERT_ENV)
    if not cert_name:
        return TokenCheck(path, token, False, reason=f"no TSA certificate configured "
                                                     f"({CERT_ENV}) to check it against")
    try:
        text = _reply_text(token.read_bytes())
        when = _gen_time(text)
    except (OSError, TimestampError) as exc:
        return TokenCheck(path, token, False, reason=str(exc))
    tsa = re.search(r"^TSA: (?:DirName:)?(.+)$", text, re.MULTILINE)
    result = subprocess.run(["openssl", "ts", "-verify", "-data", str(path), "-in", str(token),
                             "-CAfile", cert_name], capture_output=True, text=True, check=False,
                            timeout=60)
    if result.returncode != 0 or "Verification: OK" not in result.stdout:
        why = (result.stderr.strip().splitlines() or ["verification failed"])[-1]
        if "message imprint mismatch" in result.stderr:
            why = f"{path.name} was changed after it was timestamped at {when}"
        return TokenCheck(path, token, False, when, reason=why)
    return TokenCheck(path, token, True, when, tsa.group(1).strip() if tsa else "the TSA")


def check_file(path: Path) -> TokenCheck | None:
    """The check of ``path.tsr`` (``None`` when the file has no token)."""
    token = token_path(path)
    return check_token(path, token) if token.is_file() else None


@dataclass(frozen=True)
class AnchorTokens:
    """Every kept, timestamped anchor of a case checked: tokens and agreement with the log."""

    checks: tuple[TokenCheck, ...]
    problems: tuple[str, ...]  #: invalid tokens, or kept anchors the log now contradicts
    latest: str | None = None  #: time of the newest valid token


def check_anchors(case_root: Path, lines: list[bytes]) -> AnchorTokens:
    """Check each kept anchor's token, and that the log still has, at the kept anchor's count,
    the last line it recorded (a rewritten or cut history contradicts a dated anchor)."""
    import json

    folder = case_root / ANCHOR_DIR
    checks, problems = [], []
    for kept in sorted(folder.glob("anchor-*.head")) if folder.is_dir() else []:
        token = token_path(kept)
        if not token.is_file():
            continue
        check = check_token(kept, token)
        checks.append(check)
        if not check.valid:
            problems.append(f"timestamped anchor {kept.name}: {check.reason}")
            continue
        try:
            doc = json.loads(kept.read_bytes())
            count, last = int(doc["count"]), str(doc["last_sha256"])
        except (OSError, ValueError, KeyError, TypeError):
            problems.append(f"timestamped anchor {kept.name} is unreadable")
            continue
        if count > len(lines):
            problems.append(f"the log held {count} events at {check.time} (timestamped) but "
                            f"holds {len(lines)} now: lines were removed")
        elif count and hashlib.sha256(lines[count - 1]).hexdigest() != last:
            problems.append(f"line {count} differs from the one timestamped at {check.time}: "
                            "the history up to there was rewritten")
    times = [c.time for c in checks if c.valid and c.time]
    return AnchorTokens(tuple(checks), tuple(problems), max(times) if times else None)
