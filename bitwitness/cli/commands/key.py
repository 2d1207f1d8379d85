"""``bitwitness key``: make an examiner key, and list it among a case's trusted keys.

Thin adapters over :mod:`bitwitness.signing`. The passphrase of a new key comes from
``--passphrase``, ``BITWITNESS_KEY_PASSPHRASE`` or a prompt (asked twice); it is never printed or
recorded.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import click

from bitwitness.cli.output import escape, json_option, print_json, stdout
from bitwitness.errors import OutputExistsError, UsageError


@click.group("key")
def command() -> None:
    """Examiner keys: sign custody anchors, acquisition logs and reports.

    Make a key with 'key new', list its public half in a case with 'key trust', then give the
    private key to any command with 'bitwitness --key KEY.key ...' (or BITWITNESS_KEY).
    """


def _passphrase(given: str | None) -> str:
    from bitwitness.signing import PASSPHRASE_ENV

    if given is not None:
        return given
    if os.environ.get(PASSPHRASE_ENV) is not None:
        return os.environ[PASSPHRASE_ENV]
    if not sys.stdin.isatty():
        raise UsageError(f"a new key needs a passphrase: --passphrase, {PASSPHRASE_ENV}, or run "
                         "on a terminal to be asked")
    text: str = click.prompt("Passphrase for the new key", hide_input=True,
                             confirmation_prompt=True, err=True)
    return text


@command.command("new")
@click.argument("base", type=click.Path(path_type=Path))
@click.option("--name", required=True, help="The examiner's name, as signatures will show it.")
@click.option("--x509", is_flag=True, help="Also make a self-signed X.509 certificate.")
@click.option("--passphrase", metavar="TEXT",
              help="Passphrase protecting the private key [env BITWITNESS_KEY_PASSPHRASE; asked "
                   "when missing].")
@json_option
def new(base: Path, name: str, x509: bool, passphrase: str | None, as_json: bool) -> None:
    """Make an Ed25519 key pair: BASE.key (private, encrypted) and BASE.pub (public).

    Refuses to replace existing files.
    """
    from bitwitness.signing import new_key

    private_path, public_path = base.with_suffix(".key"), base.with_suffix(".pub")
    for path in (private_path, public_path):
        if path.exists():
            raise OutputExistsError(path)
    pem, public = new_key(name, _passphrase(passphrase), x509=x509)
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    public_path.write_text(json.dumps(public.to_dict(), indent=2) + "\n", encoding="utf-8")
    if as_json:
        print_json({"private_key": private_path, "public_key": public_path,
                    "name": public.name, "fingerprint": public.fingerprint,
                    "certificate": public.certificate_pem is not None})
        return
    stdout.print(f"Private key: {escape(str(private_path))} (encrypted with your passphrase)")
    stdout.print(f"Public key:  {escape(str(public_path))}")
    stdout.print(f"Examiner {escape(public.name)}, fingerprint {public.fingerprint}")


@command.command("trust")
@click.argument("case_dir", type=click.Path(path_type=Path))
@click.argument("public_key", type=click.Path(path_type=Path, dir_okay=False))
@json_option
def trust(case_dir: Path, public_key: Path, as_json: bool) -> None:
    """List PUBLIC_KEY among CASE_DIR's trusted keys and record it in the custody log.

    From then on every custody anchor of the case must be signed by a trusted key. The first
    key signs its own trust event; later keys are trusted by a key the case already trusts.
    """
    from bitwitness.case import Case
    from bitwitness.signing import load_public_key, session_signer, trust_folder, trusted_keys

    case = Case.load(case_dir)
    key = load_public_key(public_key)
    signer = session_signer(required=True)
    assert signer is not None
    trusted = trusted_keys(case.root)
    if trusted and signer.fingerprint not in trusted:
        raise UsageError("this case already trusts examiner keys: a new key is trusted by one of "
                         "them (bitwitness --key TRUSTED_KEY key trust ...), not by itself or a "
                         "stranger")
    if not trusted and signer.fingerprint != key.fingerprint:
        raise UsageError("the first key a case trusts signs its own trust event (bitwitness --key "
                         "KEY key trust CASE KEY.pub): the custody anchor must stay signed by a "
                         "trusted key")
    folder = trust_folder(case.root)
    target = folder / f"{key.fingerprint[:16]}.pub"
    # recorded (and the anchor signed by this key) first, then listed: the log never trusts a
    # key it has not recorded, and verification finds a recorded key missing from the list
    event = case.record("key-trusted", details={"name": key.name, "fingerprint": key.fingerprint,
                                                "file": target.name})
    folder.mkdir(parents=True, exist_ok=True)
    if not target.exists():
        tmp = target.with_name(f".{target.name}.tmp")
        shutil.copyfile(public_key, tmp)
        tmp.replace(target)
    if as_json:
        print_json({"name": key.name, "fingerprint": key.fingerprint, "file": target,
                    "custody_seq": event.seq})
        return
    stdout.print(f"Trusted {escape(key.name)} ({key.fingerprint}) in {escape(str(folder))}; "
                 f"custody event {event.seq}")
