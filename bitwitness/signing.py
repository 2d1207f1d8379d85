"""Examiner keys and signatures: who vouches for a custody anchor, an acquisition log or a report.

An examiner key is an Ed25519 key pair made by ``bitwitness key new``: the private key is a PKCS #8
PEM file encrypted with the examiner's passphrase (``NAME.key``, readable by ``openssl pkey``);
the public half is ``NAME.pub`` (schema ``bitwitness.key/1``: the examiner's name, the key's
fingerprint, the public key as PEM, and optionally a self-signed X.509 certificate). A key's
fingerprint is the SHA-256 of its 32 raw public key bytes, in hex.

A case trusts the public keys in its ``trusted-keys/`` folder (``bitwitness key trust``), or, when
``BITWITNESS_TRUSTED_KEYS`` names a folder, the keys there instead: a lab that keeps its list
outside the case folder takes it out of reach of anyone who can only write the case. Once a case
trusts a key, every custody anchor must be signed by a trusted key.

Signatures are over exact bytes: the custody anchor's canonical statement
(:mod:`bitwitness.custody`), or, for a file, a detached ``FILE.sig`` (schema
``bitwitness.signature/1``) whose ``statement`` names the file, its size and SHA-256 and when it
was signed. The signer's name shown by ``verify`` and ``report`` is the name in the *trusted*
key, never only the name a signature claims.

The signing key for a run comes from ``bitwitness --key KEY`` or ``BITWITNESS_KEY``; its passphrase
from ``--key-passphrase``, ``BITWITNESS_KEY_PASSPHRASE`` or a prompt. The passphrase is kept only
in memory for as long as it takes to decrypt the key, and is never written to any log.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bitwitness.errors import UsageError

KEY_SCHEMA = "bitwitness.key/1"
SIGNATURE_SCHEMA = "bitwitness.signature/1"
TRUST_DIR = "trusted-keys"
TRUST_ENV = "BITWITNESS_TRUSTED_KEYS"
KEY_ENV = "BITWITNESS_KEY"
PASSPHRASE_ENV = "BITWITNESS_KEY_PASSPHRASE"  # noqa: S105 - a variable name
KEY_FD_ENV = "BITWITNESS_KEY_FD"  #: set only for a child process by :func:`hand_over`
SIG_SUFFIX = ".sig"
ALGORITHM = "Ed25519"
_KEY_SUFFIXES = (".pub", ".pem", ".crt")


@dataclass(frozen=True)
class PublicKey:
    """A public key with the name of the examiner it belongs to."""

    name: str
    fingerprint: str
    key: Any  # cryptography's Ed25519PublicKey
    certificate_pem: str | None = None

    def verify(self, data: bytes, signature: bytes) -> bool:
        from cryptography.exceptions import InvalidSignature

        try:
            self.key.verify(signature, data)
        except InvalidSignature:
            return False
        return True

    def public_pem(self) -> str:
        from cryptography.hazmat.primitives import serialization

        return str(self.key.public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode())

    def to_dict(self) -> dict[str, Any]:
        return {"schema": KEY_SCHEMA, "name": self.name, "algorithm": ALGORITHM,
                "fingerprint": self.fingerprint, "public_key": self.public_pem(),
                "certificate": self.certificate_pem}


@dataclass(frozen=True)
class Signer:
    """A decrypted private key: signs bytes, naming its key."""

    name: str
    fingerprint: str
    key: Any  # cryptography's Ed25519PrivateKey

    def sign(self, data: bytes) -> dict[str, Any]:
        """A signature record: algorithm, signer, key fingerprint, base64 signature."""
        return {"algorithm": ALGORITHM, "signer": self.name, "key": self.fingerprint,
                "signature": base64.b64encode(self.key.sign(data)).decode()}


@dataclass(frozen=True)
class SignatureOutcome:
    """Whether a signature is valid and trusted, and by whom (the trusted key's name)."""

    valid: bool
    signer: str | None
    fingerprint: str | None
    reason: str | None = None


@dataclass(frozen=True)
class FileSignature:
    """The check of a file's detached signature (``present`` False: there is none)."""

    path: Path
    present: bool
    valid: bool = False
    signer: str | None = None
    fingerprint: str | None = None
    signed_at: str | None = None
    reason: str | None = None
    trusted: bool = False  #: by a key the case (or lab) trusts; else by the key it embeds

    def to_dict(self) -> dict[str, Any]:
        return {"file": str(self.path), "signature": str(signature_path(self.path)),
                "present": self.present, "valid": self.valid, "trusted": self.trusted,
                "signer": self.signer, "key": self.fingerprint, "signed_at": self.signed_at,
                "reason": self.reason}

    def sentence(self) -> str:
        """One line for people: who signed, whether the key is trusted, or what is wrong."""
        name = self.path.name
        if not self.present:
            return f"{name}: not signed"
        if not self.valid:
            return f"{name}: SIGNATURE INVALID: {self.reason}"
        if self.trusted:
            return f"{name}: signed by {self.signer} (trusted key {self.fingerprint}) at " \
                   f"{self.signed_at}"
        return f"{name}: signed by a key that is not in the trust list, claiming to be " \
               f"{self.signer} (key {self.fingerprint}) at {self.signed_at}"


def fingerprint(public_key: Any) -> str:
    from cryptography.hazmat.primitives import serialization

    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


# --- making and loading keys -------------------------------------------------------------------


def new_key(name: str, passphrase: str, *, x509: bool = False,
            days: int = 3650) -> tuple[bytes, PublicKey]:
    """A new Ed25519 key: (encrypted PKCS #8 PEM of the private key, its public key)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    if not name.strip():
        raise UsageError("a key needs the examiner's name (--name)")
    if len(passphrase) < 8:
        raise UsageError("the key's passphrase must have at least 8 characters")
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.BestAvailableEncryption(passphrase.encode()))
    public = private.public_key()
    certificate = _self_signed(private, name.strip(), days) if x509 else None
    return pem, PublicKey(name.strip(), fingerprint(public), public, certificate)


def _self_signed(private: Any, name: str, days: int) -> str:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.x509.oid import NameOID

    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(private.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=days))
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=True,
                                         key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, key_cert_sign=False, crl_sign=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .sign(private, None))
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def load_public_key(path: Path) -> PublicKey:
    """A ``bitwitness.key/1`` file, a PEM public key or a PEM X.509 certificate."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read the key {path}: {exc.strerror}") from exc
    name, cert_pem = path.stem, None
    try:
        if data.lstrip().startswith(b"{"):
            doc = json.loads(data)
            if not isinstance(doc, dict) or doc.get("schema") != KEY_SCHEMA:
                raise ValueError(f"not a {KEY_SCHEMA} file")
            name, cert_pem = str(doc["name"]), doc.get("certificate")
            key = serialization.load_pem_public_key(str(doc["public_key"]).encode())
        elif b"CERTIFICATE" in data:
            cert = x509.load_pem_x509_certificate(data)
            key = cert.public_key()
            names = cert.subject.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME)
            name = str(names[0].value) if names else name
            cert_pem = data.decode()
        else:
            key = serialization.load_pem_public_key(data)
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path} is not a public key: {exc}") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise UsageError(f"{path} is not an Ed25519 key")
    return PublicKey(name, fingerprint(key), key, cert_pem)


def load_signer(path: Path, passphrase: str) -> Signer:
    """Decrypt the private key at ``path``; the examiner's name is in ``NAME.pub`` beside it."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read the key {path}: {exc.strerror}") from exc
    try:
        key = serialization.load_pem_private_key(data, passphrase.encode())
    except (ValueError, TypeError) as exc:
        raise UsageError(f"cannot open the key {path}: wrong passphrase, or not a private "
                         "key") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise UsageError(f"{path} is not an Ed25519 private key")
    fp = fingerprint(key.public_key())
    name = fp[:16]
    public = path.with_suffix(".pub")
    if public.is_file():
        known = load_public_key(public)
        if known.fingerprint == fp:
            name = known.name
    return Signer(name, fp, key)


# --- trust -------------------------------------------------------------------------------------


def trust_folder(case_root: Path) -> Path:
    """Where the case's trusted keys are: ``BITWITNESS_TRUSTED_KEYS`` or ``CASE/trusted-keys``."""
    configured = os.environ.get(TRUST_ENV)
    return Path(configured) if configured else case_root / TRUST_DIR


def trusted_keys(case_root: Path) -> dict[str, PublicKey]:
    """The keys a case trusts, by fingerprint (empty: the case does not use signing)."""
    folder = trust_folder(case_root)
    if not folder.is_dir():
        return {}
    keys = {}
    for path in sorted(folder.iterdir()):
        if path.suffix in _KEY_SUFFIXES and path.is_file():
            key = load_public_key(path)
            keys[key.fingerprint] = key
    return keys


def check_signature(data: bytes, record: Mapping[str, Any],
                    trust: Mapping[str, PublicKey]) -> SignatureOutcome:
    """Check a signature record over ``data`` against the trusted keys."""
    fp = record.get("key")
    if record.get("algorithm") != ALGORITHM or not isinstance(fp, str):
        return SignatureOutcome(False, None, None, "the signature is not an Ed25519 signature "
                                                   "record")
    key = trust.get(fp)
    if key is None:
        return SignatureOutcome(False, None, fp, f"signed by key {fp[:16]}... (claiming "
                                                 f"{record.get('signer')!r}), which the case "
                                                 "does not trust")
    try:
        raw = base64.b64decode(str(record.get("signature", "")), validate=True)
    except ValueError:
        return SignatureOutcome(False, key.name, fp, "the signature is not base64")
    if not key.verify(data, raw):
        return SignatureOutcome(False, key.name, fp, f"the signature by {key.name} does not match "
                                                     "(the signed content was changed)")
    return SignatureOutcome(True, key.name, fp)


# --- the run's signing key ---------------------------------------------------------------------

_session: dict[str, Any] = {"key": None, "passphrase": None, "signer": None}


def configure(key: Path | None, passphrase: str | None) -> None:
    """Set the run's signing key (from the command line); loaded only when something signs."""
    _session.update(key=key, passphrase=passphrase, signer=None)


def session_signer(*, required: bool = False) -> Signer | None:
    """The run's signer, or ``None`` when no key is configured (an error when ``required``)."""
    if _session["signer"] is not None:
        return _session["signer"]  # type: ignore[no-any-return]
    handed = os.environ.get(KEY_FD_ENV)
    if handed:  # a parent process handed its key over: that is the run's key
        signer = _taken_over(handed)
        _session.update(signer=signer, passphrase=None)
        return signer
    key = _session["key"] or os.environ.get(KEY_ENV)
    if not key:
        if required:
            raise UsageError("this case trusts examiner keys, so what is recorded must be signed: "
                             f"give 'bitwitness --key KEY' or set {KEY_ENV}")
        return None
    passphrase = _session["passphrase"] or os.environ.get(PASSPHRASE_ENV)
    if passphrase is None:
        if not sys.stdin.isatty():
            raise UsageError(f"the key {key} needs its passphrase: --key-passphrase, "
                             f"{PASSPHRASE_ENV}, or run on a terminal to be asked")
        import getpass

        passphrase = getpass.getpass(f"Passphrase for {key}: ")
    signer = load_signer(Path(key), passphrase)
    _session.update(signer=signer, passphrase=None)
    return signer


# --- detached file signatures ------------------------------------------------------------------


def signature_path(path: Path) -> Path:
    return path.with_name(path.name + SIG_SUFFIX)


def _file_statement(path: Path, signed_at: str) -> dict[str, Any]:
    from bitwitness.hashing import file_sha256

    return {"file": path.name, "size": path.stat().st_size, "sha256": file_sha256(path),
            "signed_at": signed_at}


def _canonical(doc: Mapping[str, Any]) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sign_file(path: Path, signer: Signer) -> Path:
    """Write ``FILE.sig`` for ``path`` (replacing the signature of an earlier version)."""
    statement = _file_statement(path, datetime.now(UTC).isoformat(timespec="seconds"))
    doc = {"schema": SIGNATURE_SCHEMA, "statement": statement,
           **signer.sign(_canonical(statement)), "public_key": _public_pem(signer)}
    target = signature_path(path)
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    tmp.replace(target)
    return target


def check_file(path: Path, trust: Mapping[str, PublicKey]) -> FileSignature:
    """Check ``FILE.sig`` against the file as it is now and the trusted keys."""
    sig = signature_path(path)
    if not sig.is_file():
        return FileSignature(path, False)
    try:
        doc = json.loads(sig.read_text(encoding="utf-8"))
        statement = doc["statement"]
        if doc.get("schema") != SIGNATURE_SCHEMA or not isinstance(statement, dict):
            raise ValueError(f"not a {SIGNATURE_SCHEMA} file")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return FileSignature(path, True, reason=f"{sig.name} is unreadable: {exc}")
    outcome = check_signature(_canonical(statement), doc, trust)
    trusted = outcome.valid
    if not outcome.valid and outcome.fingerprint not in trust:
        outcome = _check_embedded(_canonical(statement), doc)
    signed_at = str(statement.get("signed_at"))
    if not outcome.valid:
        return FileSignature(path, True, False, outcome.signer, outcome.fingerprint, signed_at,
                             outcome.reason)
    try:
        now = _file_statement(path, signed_at)
    except OSError as exc:
        return FileSignature(path, True, False, outcome.signer, outcome.fingerprint, signed_at,
                             f"cannot read {path.name}: {exc.strerror}")
    if (now["sha256"], now["size"], now["file"]) != (statement.get("sha256"),
                                                     statement.get("size"),
                                                     statement.get("file")):
        return FileSignature(path, True, False, outcome.signer, outcome.fingerprint, signed_at,
                             f"{path.name} was changed after {outcome.signer} signed it")
    return FileSignature(path, True, True, outcome.signer, outcome.fingerprint, signed_at,
                         trusted=trusted)


def _public_pem(signer: Signer) -> str:
    from cryptography.hazmat.primitives import serialization

    return signer.key.public_key().public_bytes(  # type: ignore[no-any-return]
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def _check_embedded(data: bytes, doc: Mapping[str, Any]) -> SignatureOutcome:
    """Integrity only: the signature against the public key the signature file carries."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        key = serialization.load_pem_public_key(str(doc.get("public_key", "")).encode())
    except (ValueError, TypeError):
        return SignatureOutcome(False, None, str(doc.get("key")), "signed by a key that is not "
                                "trusted and not included in the signature file")
    if not isinstance(key, Ed25519PublicKey) or fingerprint(key) != doc.get("key"):
        return SignatureOutcome(False, None, str(doc.get("key")), "the signature file's key does "
                                "not match its fingerprint")
    embedded = PublicKey(str(doc.get("signer", "")), fingerprint(key), key)
    return check_signature(data, doc, {embedded.fingerprint: embedded})


def trust_for(path: Path) -> dict[str, PublicKey]:
    """The trusted keys for a file: those of the case folder it lies in, or the lab's list."""
    for folder in path.absolute().parents:
        if (folder / "case.yaml").is_file() and (folder / "custody.jsonl").is_file():
            return trusted_keys(folder)
    configured = os.environ.get(TRUST_ENV)
    return trusted_keys(Path(configured)) if configured else {}


def check_files(paths: list[Path]) -> list[FileSignature]:
    """The signature check of each file (``present`` False where there is no ``.sig``)."""
    return [check_file(p, trust_for(p)) for p in paths]


def prepare(case_root: Path | None) -> Signer | None:
    """Before long work: the run's signer, asked for now (passphrase prompt included).

    Required when the case trusts keys, and then it must be one of them: the custody event at
    the end of an acquisition, export, conversion or mount must not be the first thing to find
    a missing key, a wrong passphrase or a key whose signature the case would reject.
    """
    if case_root is None:
        return session_signer()
    trust = trusted_keys(Path(case_root).absolute())
    signer = session_signer(required=bool(trust))
    if trust and signer is not None and signer.fingerprint not in trust:
        names = ", ".join(sorted(k.name for k in trust.values()))
        raise UsageError(f"the key of {signer.name} ({signer.fingerprint[:16]}...) is not one the "
                         f"case {case_root} trusts ({names}): its custody events could not be "
                         "signed")
    return signer


def prepare_for_image(image: Path) -> Signer | None:
    """:func:`prepare` for the case an image lies in (``CASE/evidence/ID/``), if any."""
    from bitwitness import casefolder

    found = casefolder.evidence_of(image)
    return prepare(found[0] if found is not None else None)


# --- handing the run's key to a child process --------------------------------------------------


def hand_over() -> int | None:
    """The read end of a pipe holding the run's decrypted key, for one child process this run
    starts (``KEY_FD_ENV`` names it there); ``None`` when the run has no key loaded.

    A background mount records its unmount long after the command returned, in a process of its
    own: the key goes to it through a pipe only the two processes hold, so neither the
    passphrase nor the key appears in a command line, an environment or a file.
    """
    signer = _session["signer"]
    if signer is None:
        return None
    from cryptography.hazmat.primitives import serialization

    pem = signer.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption()).decode()
    payload = json.dumps({"name": signer.name, "key": pem}).encode()
    read_end, write_end = os.pipe()
    try:
        os.write(write_end, payload)  # a few hundred bytes: well within a pipe's buffer
    finally:
        os.close(write_end)
    return read_end


def _taken_over(value: str) -> Signer:
    """The signer a parent process handed over on file descriptor ``value``."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    os.environ.pop(KEY_FD_ENV, None)  # for this process only, never for its own children
    try:
        fd = int(value)
        with os.fdopen(fd, "rb") as pipe:
            doc = json.loads(pipe.read(65536))
        key = serialization.load_pem_private_key(str(doc["key"]).encode(), None)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"{KEY_FD_ENV}: no examiner key handed over on descriptor "
                         f"{value!r}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise UsageError(f"{KEY_FD_ENV}: the key handed over is not an Ed25519 private key")
    return Signer(str(doc.get("name") or ""), fingerprint(key.public_key()), key)


def sign_with_session(paths: list[Path]) -> list[Path]:
    """Sign each existing file with the run's key, if there is one; the ``.sig`` paths."""
    signer = session_signer()
    if signer is None:
        return []
    return [sign_file(p, signer) for p in paths if p.is_file()]
