"""Acquiring into a case: evidence folder, metadata from the case, one custody event."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest
from conftest import make_disk_bytes, require_tool, run_bitwitness

from bitwitness.templates import ENV_VAR


@pytest.fixture(autouse=True)
def _no_env_templates(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)


def test_acquire_into_a_case_records_custody(tmp_path: Path) -> None:
    require_tool("ewfinfo")
    case_dir = tmp_path / "case"
    made = run_bitwitness("case", "new", case_dir, "--set", "case_number=C-2025-9",
                          "--set", "examiner=Ann Example")
    assert made.exit_code == 0, made.stderr
    src = tmp_path / "stick.bin"
    src.write_bytes(make_disk_bytes(512 * 1024, seed=41))
    res = run_bitwitness("acquire", src, "--case", case_dir, "--evidence", "usb01",
                         "--description", "blue USB stick", "--json")
    assert res.exit_code == 0, res.stderr
    folder = case_dir / "evidence" / "usb01"
    assert (folder / "usb01.E01").is_file()
    log_path = folder / "usb01.json"
    log = json.loads(log_path.read_text())
    assert log["case"]["evidence_id"] == "usb01"
    assert log["metadata"]["case_number"] == "C-2025-9"
    info = subprocess.run(["ewfinfo", str(folder / "usb01.E01")], capture_output=True, text=True,
                          check=True).stdout
    for value in ("C-2025-9", "Ann Example", "usb01", "blue USB stick"):
        assert value in info
    events = [json.loads(line) for line in (case_dir / "custody.jsonl").read_text().splitlines()]
    acquired = [e for e in events if e["action"] == "acquire"]
    assert len(acquired) == 1
    event = acquired[0]
    assert event["evidence_id"] == "usb01"
    assert event["actor"] == "Ann Example"
    details = event["details"]
    assert details["status"] == "completed"
    assert details["hashes"]["md5"] == hashlib.md5(src.read_bytes()).hexdigest()  # noqa: S324
    assert details["log_sha256"] == hashlib.sha256(log_path.read_bytes()).hexdigest()
    assert details["read_errors"] == 0
    assert run_bitwitness("custody", "verify", case_dir).exit_code == 0


def test_case_options_must_come_together(tmp_path: Path) -> None:
    src = tmp_path / "x.bin"
    src.write_bytes(bytes(4096))
    res = run_bitwitness("acquire", src, "--case", tmp_path)
    assert res.exit_code == 2
    res = run_bitwitness("acquire", src, "--case", tmp_path, "--evidence", "e1")
    assert res.exit_code == 2
    assert "not a BitWitness case" in res.stderr
