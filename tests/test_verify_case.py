"""``verify --case``: every evidence item verified, one custody event per item with its verdict,
the custody chain still intact, exit 1 when any item is not VERIFIED. Images come from
ewfacquire and coreutils; hashes from md5sum/sha1sum."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from conftest import make_disk_bytes, require_tool, run_bitwitness, snapshot
from test_verify_logs import base_json

MIB = 1 << 20


@pytest.fixture
def case_dir(tmp_path: Path) -> Path:
    """A case with an E01 item (ewfacquire) and a raw item with an acquisition log."""
    require_tool("ewfacquire")
    from bitwitness.case import Case
    from bitwitness.templates import load_template

    root = tmp_path / "case"
    case = Case.create(root, load_template("default"),
                       {"case_number": "2025-17", "examiner": "A. Examiner"})
    source = tmp_path / "disk.raw"
    source.write_bytes(make_disk_bytes(2 * MIB, seed=41))
    e1 = case.evidence_dir("E1")
    subprocess.run(["ewfacquire", "-u", "-q", "-t", str(e1 / "E1"), "-c", "fast", "-d", "sha1",
                    str(source)], capture_output=True, check=True)
    e2 = case.evidence_dir("E2")
    raw = e2 / "E2.dd"
    raw.write_bytes(make_disk_bytes(MIB, seed=42))
    (e2 / "acquisition.json").write_text(json.dumps(base_json(raw)))
    return root


def events(root: Path) -> list[dict[str, object]]:
    lines = (root / "custody.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def test_case_items_verified_and_recorded(case_dir: Path) -> None:
    files = sorted(p for p in (case_dir / "evidence").rglob("*") if p.is_file())
    before = snapshot(files)
    r = run_bitwitness("verify", "--case", case_dir, "--json")
    assert r.exit_code == 0, r.stdout + r.stderr
    doc = r.json()
    assert [(i["evidence_id"], i["verdict"]) for i in doc["images"]] == [
        ("E1", "VERIFIED"), ("E2", "VERIFIED")]
    e2 = doc["images"][1]
    # E2's acquisition log has another name than the image: it was used all the same
    assert {c["reference"]["algorithm"] for c in e2["comparisons"]} == {"md5", "sha1", "sha256"}
    verify_events = [e for e in events(case_dir) if e["action"] == "verify"]
    assert [(e["evidence_id"], e["details"]["verdict"]) for e in verify_events] == [
        ("E1", "VERIFIED"), ("E2", "VERIFIED")]
    raw = case_dir / "evidence" / "E2" / "E2.dd"
    md5 = subprocess.run(["md5sum", str(raw)], capture_output=True, text=True,
                         check=True).stdout.split()[0]
    assert verify_events[1]["details"]["hashes"]["md5"] == md5
    assert verify_events[1]["details"]["image_files"] == [str(raw)]
    assert snapshot(files) == before
    check = run_bitwitness("custody", "verify", case_dir)
    assert check.exit_code == 0, check.stdout + check.stderr


def test_case_with_a_bad_item_exits_1_and_records_it(case_dir: Path) -> None:
    raw = case_dir / "evidence" / "E2" / "E2.dd"
    data = bytearray(raw.read_bytes())
    data[MIB // 2] ^= 1
    raw.write_bytes(bytes(data))
    r = run_bitwitness("verify", "--case", case_dir)
    assert r.exit_code == 1
    assert "MISMATCH" in r.stdout
    verdicts = {e["evidence_id"]: e["details"]["verdict"] for e in events(case_dir)
                if e["action"] == "verify"}
    assert verdicts == {"E1": "VERIFIED", "E2": "MISMATCH"}


def test_case_usage_errors(tmp_path: Path, case_dir: Path) -> None:
    r = run_bitwitness("verify", "--case", tmp_path / "not-a-case")
    assert r.exit_code == 2
    r = run_bitwitness("verify", "--case", case_dir, tmp_path / "x.dd")
    assert r.exit_code == 2
