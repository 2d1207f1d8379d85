"""Trusted time from a real RFC 3161 TSA: ``openssl ts -reply`` behind a small HTTP server on
loopback, started here. Tokens are checked by our ``timestamp verify`` and, independently, by
``openssl ts -verify`` against the TSA certificate.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from conftest import require_tool, run_bitwitness

from bitwitness.case import Case
from bitwitness.custody import CustodyEvent, encode_event
from bitwitness.templates import load_template

TSA_CONFIG = """
[ tsa ]
default_tsa = tsa_config1
[ tsa_config1 ]
dir = {dir}
serial = $dir/serial
crypto_device = builtin
signer_cert = $dir/tsa.crt
signer_key = $dir/tsa.key
signer_digest = sha256
default_policy = 1.2.3.4.1
other_policies = 1.2.3.4.5
digests = sha256, sha384, sha512
accuracy = secs:1
ordering = yes
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = sha256
"""


def make_tsa_identity(folder: Path, name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-keyout", str(folder / "tsa.key"), "-out",
                    str(folder / "tsa.crt"), "-nodes", "-days", "30", "-subj", f"/CN={name}",
                    "-addext", "extendedKeyUsage=critical,timeStamping",
                    "-addext", "keyUsage=critical,digitalSignature"],
                   capture_output=True, check=True)
    (folder / "serial").write_text("01\n")
    (folder / "tsa.cnf").write_text(TSA_CONFIG.format(dir=folder))
    return folder / "tsa.crt"


@pytest.fixture
def tsa(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """A TSA on 127.0.0.1: each POSTed query is answered by ``openssl ts -reply``."""
    require_tool("openssl")
    folder = tmp_path / "tsa"
    cert = make_tsa_identity(folder, "Loopback Test TSA")
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with lock, tempfile.TemporaryDirectory() as work:
                query = Path(work) / "q.tsq"
                query.write_bytes(body)
                reply = Path(work) / "r.tsr"
                subprocess.run(["openssl", "ts", "-reply", "-config", str(folder / "tsa.cnf"),
                                "-queryfile", str(query), "-out", str(reply)],
                               capture_output=True, check=True)
                data = reply.read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "application/timestamp-reply")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/tsa"
    monkeypatch.setenv("BITWITNESS_TSA_URL", url)
    monkeypatch.setenv("BITWITNESS_TSA_CERT", str(cert))
    try:
        yield {"url": url, "cert": cert, "folder": folder}
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def case(tmp_path: Path) -> Case:
    return Case.create(tmp_path / "case", load_template("default", environ={}),
                       {"case_number": "T-3", "examiner": "Ann Example"})


def openssl_verify(data: Path, token: Path, cert: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["openssl", "ts", "-verify", "-data", str(data), "-in", str(token),
                           "-CAfile", str(cert)], capture_output=True, text=True, check=False)


def source_file(tmp_path: Path) -> Path:
    source = tmp_path / "disk.bin"
    source.write_bytes(bytes(range(256)) * 2048)
    return source


def test_acquisition_log_and_anchor_are_timestamped(tsa: dict[str, Any], case: Case,
                                                    tmp_path: Path) -> None:
    result = run_bitwitness("acquire", source_file(tmp_path), "--case", case.root, "--evidence",
                            "E1")
    assert result.exit_code == 0, result.stderr
    assert "timestamped by the TSA" in result.stdout
    log = case.root / "evidence/E1/E1.json"
    token = log.with_name("E1.json.tsr")
    assert openssl_verify(log, token, tsa["cert"]).stdout.strip() == "Verification: OK"
    ours = run_bitwitness("timestamp", "verify", log, "--json")
    assert ours.exit_code == 0, ours.stderr
    (check,) = ours.json()["tokens"]
    assert check["valid"] is True
    assert "Loopback Test TSA" in check["tsa"]
    kept = sorted((case.root / "timestamps").glob("anchor-*.head"))
    assert kept
    assert openssl_verify(kept[-1], kept[-1].with_name(kept[-1].name + ".tsr"),
                          tsa["cert"]).returncode == 0
    custody = run_bitwitness("custody", "verify", case.root)
    assert custody.exit_code == 0, custody.stderr
    assert "Timestamped by the TSA" in custody.stdout

    # the log edited after it was timestamped
    log.write_text(log.read_text().replace('"acquire"', '"acquire" '))
    assert openssl_verify(log, token, tsa["cert"]).returncode != 0
    changed = run_bitwitness("timestamp", "verify", log)
    assert changed.exit_code == 1
    assert "was changed after it was timestamped" in changed.stderr


def test_no_reachable_tsa_still_acquires_and_can_be_timestamped_later(
        tsa: dict[str, Any], case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/tsa"
    monkeypatch.setenv("BITWITNESS_TSA_URL", dead)
    result = run_bitwitness("acquire", source_file(tmp_path), "--case", case.root, "--evidence",
                            "E1")
    assert result.exit_code == 0, result.stderr
    assert "NOT timestamped" in result.stderr
    assert "unreachable" in result.stderr
    assert "bitwitness timestamp add" in result.stderr
    log = case.root / "evidence/E1/E1.json"
    assert not log.with_name("E1.json.tsr").exists()
    assert run_bitwitness("verify", case.root / "evidence/E1/E1.E01").exit_code == 0
    later = run_bitwitness("timestamp", "add", log, "--case", case.root, "--tsa", tsa["url"])
    assert later.exit_code == 0, later.stderr
    assert openssl_verify(log, log.with_name("E1.json.tsr"), tsa["cert"]).returncode == 0
    assert run_bitwitness("timestamp", "verify", log, "--case", case.root).exit_code == 0


def test_a_recomputed_chain_contradicts_a_timestamped_anchor(tsa: dict[str, Any],
                                                             case: Case) -> None:
    """Without any key: the dated copy of the anchor pins line N's hash."""
    for action in ("seized", "sealed", "stored"):
        assert run_bitwitness("custody", "add", case.root, "--action", action).exit_code == 0
    assert run_bitwitness("custody", "verify", case.root).exit_code == 0
    path = case.root / "custody.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    lines[1] = lines[1].replace(b'"seized"', b'"returned"')
    prev, out = "0" * 64, []
    for line in lines:
        doc = json.loads(line)
        doc["prev"] = prev
        new = encode_event(CustodyEvent(**doc))
        out.append(new)
        prev = hashlib.sha256(new).hexdigest()
    path.write_bytes(b"".join(out))
    head = json.loads((case.root / "custody.head").read_text())
    head.update(last_sha256=prev, first_sha256=hashlib.sha256(out[0]).hexdigest())
    (case.root / "custody.head").write_text(json.dumps(head))
    result = run_bitwitness("custody", "verify", case.root)
    assert result.exit_code == 1
    assert "differs from the one timestamped" in result.stderr


def test_report_files_are_timestamped(tsa: dict[str, Any], case: Case, tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    result = run_bitwitness("report", case.root, "--format", "json", "-o", out)
    assert result.exit_code == 0, result.stderr
    assert openssl_verify(out, tmp_path / "r.json.tsr", tsa["cert"]).returncode == 0


def test_a_token_from_another_tsa_does_not_verify(tsa: dict[str, Any], case: Case,
                                                  tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "r.json"
    assert run_bitwitness("report", case.root, "--format", "json", "-o", out).exit_code == 0
    other = make_tsa_identity(tmp_path / "other", "Some Other TSA")
    monkeypatch.setenv("BITWITNESS_TSA_CERT", str(other))
    result = run_bitwitness("timestamp", "verify", out)
    assert result.exit_code == 1
    assert "TIMESTAMP INVALID" in result.stderr


def test_the_report_states_the_timestamps(tsa: dict[str, Any], case: Case,
                                          tmp_path: Path) -> None:
    assert run_bitwitness("acquire", source_file(tmp_path), "--case", case.root, "--evidence",
                          "E1").exit_code == 0
    out = tmp_path / "r.json"
    assert run_bitwitness("report", case.root, "--format", "json", "-o", out).exit_code == 0
    doc = json.loads(out.read_text())
    assert doc["integrity"]["timestamped"]
    assert "dated by a trusted timestamp" in doc["integrity"]["statement"]
    lines = [s["text"] for s in doc["evidence"][0]["signatures"]]
    assert any("E1.json: timestamp by" in t and "verified" in t for t in lines)


def test_verify_checks_the_log_token(tsa: dict[str, Any], case: Case, tmp_path: Path) -> None:
    assert run_bitwitness("acquire", source_file(tmp_path), "--case", case.root, "--evidence",
                          "E1").exit_code == 0
    image = case.root / "evidence/E1/E1.E01"
    good = run_bitwitness("verify", image)
    assert good.exit_code == 0, good.stderr
    assert "E1.json: timestamp by" in good.stdout
    log = case.root / "evidence/E1/E1.json"
    log.write_text(log.read_text().replace('"acquire"', '"acquire" '))
    bad = run_bitwitness("verify", image, "--json")
    assert bad.exit_code == 1
    (stamp,) = bad.json()["images"][0]["timestamps"]
    assert stamp["valid"] is False


def test_a_later_report_checks_the_earlier_reports(tsa: dict[str, Any], case: Case,
                                                   tmp_path: Path) -> None:
    first = tmp_path / "first.json"
    assert run_bitwitness("report", case.root, "--format", "json", "-o", first).exit_code == 0
    second = tmp_path / "second.json"
    assert run_bitwitness("report", case.root, "--format", "json", "-o", second).exit_code == 0
    doc = json.loads(second.read_text())
    assert any("first.json: timestamp by" in r for r in doc["integrity"]["earlier_reports"])
    first.write_text(first.read_text() + " ")
    third = tmp_path / "third.json"
    assert run_bitwitness("report", case.root, "--format", "json", "-o", third).exit_code == 1
    doc = json.loads(third.read_text())
    assert any("first.json: TIMESTAMP INVALID" in r for r in doc["integrity"]["bad_signatures"])


def test_every_command_that_records_an_event_dates_the_anchor(tsa: dict[str, Any], case: Case,
                                                              tmp_path: Path) -> None:
    """verify, convert, export and restore in a case: after each, the anchor that records its
    event is kept and timestamped; conversion and restore logs get tokens of their own. Every
    token checked by ``openssl ts -verify``."""
    require_tool("mkfs.vfat", "mcopy")
    source = tmp_path / "stick.img"
    subprocess.run(["dd", "if=/dev/zero", f"of={source}", "bs=512", "count=4096"],
                   capture_output=True, check=True)
    subprocess.run(["mkfs.vfat", "-n", "EVIDENCE", str(source)], capture_output=True, check=True)
    (tmp_path / "note.txt").write_text("meet at the harbour\n")
    subprocess.run(["mcopy", "-i", str(source), str(tmp_path / "note.txt"), "::/note.txt"],
                   check=True)
    assert run_bitwitness("acquire", source, "--case", case.root, "--evidence",
                          "E1").exit_code == 0
    image = case.root / "evidence/E1/E1.E01"
    restore_target = tmp_path / "restored.bin"
    steps = {
        "verify": ("verify", "--case", case.root),
        "convert": ("convert", image, "-o", tmp_path / "copy", "--to", "raw"),
        "export": ("export", image, "/note.txt", "--to", tmp_path / "out", "--case", case.root),
        "restore": ("restore", image, restore_target, "--yes"),
    }
    for action, command in steps.items():
        result = run_bitwitness(*command)
        assert result.exit_code == 0, (action, result.stderr)
        lines = (case.root / "custody.jsonl").read_text().splitlines()
        assert json.loads(lines[-1])["action"] == action
        kept = sorted((case.root / "timestamps").glob(f"anchor-{len(lines):06d}-*.head"))
        assert len(kept) == 1, (action, sorted(p.name for p in
                                                (case.root / "timestamps").iterdir()))
        assert json.loads(kept[0].read_text())["count"] == len(lines)
        token = kept[0].with_name(kept[0].name + ".tsr")
        assert openssl_verify(kept[0], token, tsa["cert"]).stdout.strip() == "Verification: OK"
    restore_logs = sorted((case.root / "evidence/E1/restore-logs").glob("*.json"))
    assert len(restore_logs) == 1
    for log in (tmp_path / "copy.json", *restore_logs):
        assert openssl_verify(log, log.with_name(log.name + ".tsr"),
                              tsa["cert"]).stdout.strip() == "Verification: OK", log
    manifest = tmp_path / "out/manifest.json"
    assert openssl_verify(manifest, manifest.with_name("manifest.json.tsr"),
                          tsa["cert"]).stdout.strip() == "Verification: OK"
    custody = run_bitwitness("custody", "verify", case.root)
    assert custody.exit_code == 0, custody.stderr
