"""The examiner key is checked before the work, for every command that records custody events in
a case that trusts keys: export, convert, restore and mount (foreground and background).

A missing key, a wrong passphrase or a key the case does not trust fails in one line with exit 2,
before anything is written: no output, no log, no custody line, the anchor unchanged. With the
right key the events are signed: ``custody verify`` names the signer, and the anchor's signature
is checked again with ``openssl pkeyutl`` (an independent Ed25519 implementation).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, CliResult, require_tool, run_bitwitness

PASS = "correct horse battery"  # noqa: S105 - a test key's passphrase


@pytest.fixture(autouse=True)
def _no_signing_key_left_behind() -> Iterator[None]:
    """The CLI runs in-process here: forget the run's key after each test."""
    from bitwitness import signing

    yield
    signing.configure(None, None)


@pytest.fixture
def signed_case(tmp_path: Path) -> dict[str, Any]:
    """A case that trusts Ann's key, with one acquired item E1 (a FAT stick holding a note)."""
    require_tool("mkfs.vfat", "mcopy", "openssl")
    keys = {}
    for who, name in (("ann", "Ann Example"), ("eve", "Eve Forger")):
        base = tmp_path / "keys" / who
        base.parent.mkdir(exist_ok=True)
        made = run_bitwitness("key", "new", base, "--name", name, "--passphrase", PASS)
        assert made.exit_code == 0, made.stderr
        keys[who] = base
    root = tmp_path / "case"
    assert run_bitwitness("case", "new", root, "--set", "case_number=K-1",
                          "--set", "examiner=Ann Example").exit_code == 0
    ann = ("--key", keys["ann"].with_suffix(".key"), "--key-passphrase", PASS)
    trusted = run_bitwitness(*ann, "key", "trust", root, keys["ann"].with_suffix(".pub"))
    assert trusted.exit_code == 0, trusted.stderr
    source = tmp_path / "stick.img"
    subprocess.run(["dd", "if=/dev/zero", f"of={source}", "bs=512", "count=4096"],
                   capture_output=True, check=True)
    subprocess.run(["mkfs.vfat", "-n", "EVIDENCE", str(source)], capture_output=True, check=True)
    note = tmp_path / "note.txt"
    note.write_text("meet at the harbour\n")
    subprocess.run(["mcopy", "-i", str(source), str(note), "::/note.txt"], check=True)
    acquired = run_bitwitness(*ann, "acquire", source, "--case", root, "--evidence", "E1")
    assert acquired.exit_code == 0, acquired.stderr
    return {"root": root, "keys": keys, "source": source, "tmp": tmp_path,
            "image": root / "evidence/E1/E1.E01"}


def with_key(case: dict[str, Any], who: str, passphrase: str = PASS) -> tuple[Any, ...]:
    return ("--key", case["keys"][who].with_suffix(".key"), "--key-passphrase", passphrase)


def custody_state(root: Path) -> tuple[bytes, bytes]:
    return (root / "custody.jsonl").read_bytes(), (root / "custody.head").read_bytes()


def refusals(case: dict[str, Any]) -> list[tuple[tuple[Any, ...], str]]:
    """The global options of each bad key, with what the one-line error must say."""
    return [((), "must be signed"),
            (with_key(case, "ann", "not the passphrase"), "wrong passphrase"),
            (with_key(case, "eve"), "not one the case")]


def in_process(*args: Any) -> CliResult:
    return run_bitwitness(*args)


def assert_refused_up_front(case: dict[str, Any], command: tuple[Any, ...],
                            untouched: list[Path],
                            run: Callable[..., CliResult] = in_process) -> None:
    """Every bad key: exit 2, one line, and nothing written (custody log, anchor, outputs)."""
    before = custody_state(case["root"])
    for options, says in refusals(case):
        result = run(*options, *command)
        assert result.exit_code == 2, (options, result.stderr)
        assert says in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert "not the passphrase" not in result.stderr
        assert custody_state(case["root"]) == before
        for path in untouched:
            assert not path.exists(), path


def assert_signed_by_ann(case: dict[str, Any], actions: list[str]) -> None:
    """The last events are ``actions``; custody verify and openssl both accept Ann's anchor."""
    root = case["root"]
    events = [json.loads(line) for line in (root / "custody.jsonl").read_text().splitlines()]
    assert [e["action"] for e in events[-len(actions):]] == actions
    check = run_bitwitness("custody", "verify", root)
    assert check.exit_code == 0, check.stderr
    assert "Anchor signed by Ann Example" in check.stdout
    head = json.loads((root / "custody.head").read_text())
    public = json.loads(case["keys"]["ann"].with_suffix(".pub").read_text())
    assert head["signature"]["key"] == public["fingerprint"]
    assert head["count"] == len(events)
    from bitwitness.custody import CustodyLog

    anchor = CustodyLog(root / "custody.jsonl")._read_anchor()
    assert anchor is not None
    work = case["tmp"] / "anchor-check"
    work.mkdir(exist_ok=True)
    (work / "statement").write_bytes(anchor.statement())
    (work / "sig").write_bytes(base64.b64decode(head["signature"]["signature"]))
    (work / "pub.pem").write_text(public["public_key"])
    subprocess.run(["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", str(work / "pub.pem"),
                    "-rawin", "-in", str(work / "statement"), "-sigfile", str(work / "sig")],
                   check=True, capture_output=True)


def test_export_checks_the_key_before_exporting(signed_case: dict[str, Any]) -> None:
    out = signed_case["tmp"] / "out"
    command = ("export", signed_case["image"], "/note.txt", "--to", out,
               "--case", signed_case["root"], "--evidence", "E1")
    assert_refused_up_front(signed_case, command, [out])
    done = run_bitwitness(*with_key(signed_case, "ann"), *command)
    assert done.exit_code == 0, done.stderr
    assert (out / "note.txt").read_text() == "meet at the harbour\n"
    assert_signed_by_ann(signed_case, ["export"])


def test_convert_checks_the_key_before_converting(signed_case: dict[str, Any]) -> None:
    base = signed_case["tmp"] / "copy"
    command = ("convert", signed_case["image"], "-o", base, "--to", "raw")
    assert_refused_up_front(signed_case, command,
                            [base.with_suffix(".raw"), base.with_suffix(".json"),
                             base.with_suffix(".txt")])
    done = run_bitwitness(*with_key(signed_case, "ann"), *command)
    assert done.exit_code == 0, done.stderr
    assert hashlib.sha256(base.with_suffix(".raw").read_bytes()).digest() == \
        hashlib.sha256(signed_case["source"].read_bytes()).digest()
    assert_signed_by_ann(signed_case, ["convert"])
    # the conversion's log is signed by Ann too
    from bitwitness import signing

    log = base.with_suffix(".json")
    check = signing.check_file(log, signing.trusted_keys(signed_case["root"]))
    assert (check.valid, check.trusted, check.signer) == (True, True, "Ann Example")


def test_restore_checks_the_key_before_touching_the_target(signed_case: dict[str, Any]) -> None:
    target = signed_case["tmp"] / "restored.bin"
    logs = signed_case["root"] / "evidence/E1/restore-logs"
    command = ("restore", signed_case["image"], target, "--yes")
    assert_refused_up_front(signed_case, command, [target, logs])
    done = run_bitwitness(*with_key(signed_case, "ann"), *command)
    assert done.exit_code == 0, done.stderr
    assert target.read_bytes() == signed_case["source"].read_bytes()
    assert_signed_by_ann(signed_case, ["restore"])


def test_mount_checks_the_key_before_mounting(signed_case: dict[str, Any]) -> None:
    if not Path("/dev/fuse").exists():
        pytest.skip("/dev/fuse is missing (no FUSE in this kernel or container)")
    require_tool("fusermount3", "sha256sum")
    mnt = signed_case["tmp"] / "mnt"
    mnt.mkdir()
    cmd = [sys.executable, "-m", "bitwitness"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("BITWITNESS_KEY")}

    def separately(*args: Any) -> CliResult:
        """A foreground mount that went ahead would serve until unmounted: in its own process,
        so that it is a failure, not a test that never ends."""
        try:
            proc = subprocess.run([*cmd, *map(str, args)], capture_output=True, text=True,
                                  timeout=60, check=False, cwd=REPO, env=env)
        except subprocess.TimeoutExpired:
            subprocess.run(["fusermount3", "-u", str(mnt)], capture_output=True, check=False)
            pytest.fail(f"mount with a bad key went ahead: {args[:4]}")
        return CliResult(proc.returncode, proc.stdout, proc.stderr)

    for background in ((), ("--background",)):
        command = ("mount", signed_case["image"], mnt, *background)
        assert_refused_up_front(signed_case, command, [], run=separately)
        assert list(mnt.iterdir()) == []
        assert not mnt.is_mount()

    # the background mount's own process signs the mount and, when unmounted, the unmount event
    key = [str(a) for a in with_key(signed_case, "ann")]
    done = subprocess.run([*cmd, *key, "mount", str(signed_case["image"]), str(mnt),
                           "--background"], capture_output=True, text=True, timeout=120,
                          check=False, cwd=REPO, env=env)
    assert done.returncode == 0, done.stderr
    try:
        media = subprocess.run(["sha256sum", str(mnt / "media.raw")], capture_output=True,
                               text=True, check=True).stdout.split()[0]
        assert media == hashlib.sha256(signed_case["source"].read_bytes()).hexdigest()
    finally:
        gone = subprocess.run([*cmd, "umount", str(mnt)], capture_output=True, text=True,
                              check=False, cwd=REPO, env=env)
    assert gone.returncode == 0, gone.stderr
    assert_signed_by_ann(signed_case, ["mount", "unmount"])


def test_a_key_the_case_does_not_trust_records_nothing(signed_case: dict[str, Any]) -> None:
    """custody add, acquire, verify and report refuse Eve's key before writing; Eve cannot
    trust herself into Ann's case, and once Ann trusts her, Eve's events are accepted."""
    root = signed_case["root"]
    eve_pub = signed_case["keys"]["eve"].with_suffix(".pub")
    source = signed_case["tmp"] / "other.bin"
    source.write_bytes(bytes(range(256)) * 64)
    before = custody_state(root)
    for command in (("custody", "add", root, "--action", "stored", "--evidence", "E1"),
                    ("acquire", source, "--case", root, "--evidence", "E2"),
                    ("verify", "--case", root),
                    ("report", root, "--format", "json", "-o", signed_case["tmp"] / "r.json"),
                    ("key", "trust", root, eve_pub)):
        result = run_bitwitness(*with_key(signed_case, "eve"), *command)
        assert result.exit_code == 2, (command, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert custody_state(root) == before, command
    assert not (root / "evidence/E2").exists()
    assert not (signed_case["tmp"] / "r.json").exists()
    eve_fingerprint = json.loads(eve_pub.read_text())["fingerprint"]
    assert not (root / "trusted-keys" / f"{eve_fingerprint[:16]}.pub").exists()
    assert run_bitwitness("custody", "verify", root).exit_code == 0

    trusted = run_bitwitness(*with_key(signed_case, "ann"), "key", "trust", root, eve_pub)
    assert trusted.exit_code == 0, trusted.stderr
    added = run_bitwitness(*with_key(signed_case, "eve"), "custody", "add", root,
                           "--action", "stored", "--evidence", "E1")
    assert added.exit_code == 0, added.stderr
    check = run_bitwitness("custody", "verify", root)
    assert check.exit_code == 0, check.stderr
    assert "Anchor signed by Eve Forger" in check.stdout


def test_browse_checks_the_key_before_the_browser_opens(signed_case: dict[str, Any]) -> None:
    """browse runs on a terminal (a pseudo-terminal here); its exports record events, so a bad
    key stops it before the browser is drawn."""
    import pty

    before = custody_state(signed_case["root"])
    env = {k: v for k, v in os.environ.items() if not k.startswith("BITWITNESS_KEY")}
    for options, says in refusals(signed_case):
        leader, follower = pty.openpty()
        try:
            proc = subprocess.run(
                [sys.executable, "-m", "bitwitness", *map(str, options), "browse",
                 str(signed_case["image"])], stdin=follower, stdout=follower,
                stderr=subprocess.PIPE, text=True, timeout=60, check=False, cwd=REPO, env=env)
        except subprocess.TimeoutExpired:
            pytest.fail(f"browse with a bad key opened the browser: {options}")
        finally:
            os.close(leader)
            os.close(follower)
        assert proc.returncode == 2, (options, proc.stderr)
        assert says in proc.stderr, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        assert custody_state(signed_case["root"]) == before
