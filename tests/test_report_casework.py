"""The report over a case built by the real commands: acquire, verify --case, export, convert.

Nothing is hand-written into the custody log: every event is recorded by the command that owns
it, so the report is checked against the keys those commands really write. Expected hashes come
from md5sum/sha1sum/sha256sum over the source and the export manifest; the FAT image is made with
mkfs.vfat and mcopy. Then one line of the log is altered: what was recorded from that line on
must read UNRELIABLE in the sections and the summary too, not only in the timeline.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import require_tool, run_bitwitness

Doc = dict[str, Any]


def digest(tool: str, path: Path) -> str:
    out = subprocess.run([tool, str(path)], capture_output=True, text=True, check=True).stdout
    return out.split()[0]


def ok(*args: str | Path) -> Doc:
    result = run_bitwitness(*args, "--json")
    assert result.exit_code == 0, result.stderr
    return result.json()


def custody(root: Path) -> list[Doc]:
    return [json.loads(line) for line in (root / "custody.jsonl").read_text().splitlines()]


@pytest.fixture
def worked_case(tmp_path: Path) -> Doc:
    """case-created, acquire, verify, export, convert, verify: all by the commands."""
    require_tool("mkfs.vfat", "mcopy", "md5sum", "sha1sum", "sha256sum")
    source = tmp_path / "stick.img"
    subprocess.run(["dd", "if=/dev/zero", f"of={source}", "bs=512", "count=4096"],
                   capture_output=True, check=True)
    subprocess.run(["mkfs.vfat", "-n", "EVIDENCE", str(source)], capture_output=True,
                   check=True)
    note = tmp_path / "note.txt"
    note.write_text("meet at the harbour\n")
    subprocess.run(["mcopy", "-i", str(source), str(note), "::/note.txt"], check=True)
    root = tmp_path / "case"
    assert run_bitwitness("case", "new", root, "--set", "case_number=R-6",
                          "--set", "examiner=Ann Example").exit_code == 0
    ok("acquire", source, "--case", root, "--evidence", "E1")
    image = root / "evidence/E1/E1.E01"
    ok("verify", "--case", root)
    ok("export", image, "/note.txt", "--to", tmp_path / "out", "--case", root)
    (tmp_path / "conv").mkdir()
    ok("convert", image, "--to", "raw", "-o", tmp_path / "conv/E1")
    return {"root": root, "image": image, "source": source,
            "manifest": tmp_path / "out/manifest.json",
            "hashes": {a: digest(f"{a}sum", source) for a in ("md5", "sha1", "sha256")}}


def report_json(root: Path, out: Path, expect: int = 0) -> Doc:
    result = run_bitwitness("report", root, "--format", "json", "-o", out)
    assert result.exit_code == expect, result.stderr
    return json.loads(out.read_text(encoding="utf-8"))


def no_reprs(rows: dict[str, str]) -> None:
    """Details read as text, never as Python reprs of what the event stored."""
    for key, value in rows.items():
        assert not re.search(r"[{\[]'|': ", value), (key, value)


def test_events_of_the_real_commands_read_sensibly(worked_case: Doc, tmp_path: Path) -> None:
    doc = report_json(worked_case["root"], tmp_path / "r.json")
    (v,) = doc["verifications"]
    assert v["verdict"] == "VERIFIED"
    assert v["target"] == str(worked_case["image"])  # from image_files
    assert v["hashes"] == worked_case["hashes"]
    assert v["details"]["media_size"] == f"{worked_case['source'].stat().st_size} bytes"
    compared = v["details"]["compared"].split("; ")
    assert "md5 of media (stored in the image): match" in compared
    assert "sha1 of media (acquisition log E1.json): match" in compared
    assert "problems" not in v["details"]  # VERIFIED: nothing to list, no empty row
    assert "libewf_agrees" not in v["details"]  # not asked for: not shown as an empty value
    assert not v["suspect"]
    no_reprs(v["details"])
    (e,) = doc["exports"]
    manifest_sha = digest("sha256sum", worked_case["manifest"])
    assert (e["manifest"], e["manifest_sha256"], e["recorded_sha256"], e["manifest_state"]) == (
        str(worked_case["manifest"]), manifest_sha, manifest_sha, "matches")
    assert e["details"]["files"] == "1"
    assert e["details"]["paths"] == "/note.txt"
    timeline = {c["action"]: c for c in doc["custody"]}
    convert = timeline["convert"]["details"]
    assert convert["verdict"] == "VERIFIED"
    assert convert["to"] == "raw"
    assert {a: convert[f"hashes.{a}"] for a in ("md5", "sha1", "sha256")} == \
        worked_case["hashes"]
    for entry in doc["custody"]:
        no_reprs(entry["details"])
    assert timeline["verify"]["details"]["compared"] == v["details"]["compared"]
    summary = doc["integrity"]["statement"]
    assert "INTACT" in summary


def test_entries_after_the_tamper_point_are_unreliable_everywhere(worked_case: Doc,
                                                                 tmp_path: Path) -> None:
    require_tool("pdftotext")
    root = worked_case["root"]
    # a second verification that finds a problem: the acquisition log now claims another MD5
    log_path = root / "evidence/E1/E1.json"
    log = json.loads(log_path.read_text())
    claimed = digest("md5sum", worked_case["manifest"])
    log["media"]["hashes"]["md5"] = claimed
    log_path.write_text(json.dumps(log))
    assert run_bitwitness("verify", "--case", root).exit_code == 1
    events = custody(root)
    actions = [e["action"] for e in events]
    assert actions == ["case-created", "acquire", "verify", "export", "convert", "verify"]
    # alter the export line (line 4): it and everything after it become unreliable
    path = root / "custody.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    lines[3] = lines[3].replace('"files":1,', '"files":2,')
    path.write_text("".join(lines))

    doc = report_json(root, tmp_path / "r.json", expect=1)
    assert doc["integrity"]["state"] == "tampered"
    bad_line = doc["integrity"]["first_bad_line"]
    assert bad_line is not None
    assert bad_line <= 4
    first, second = doc["verifications"]
    assert (first["line"], first["suspect"], first["verdict"]) == (3, False, "VERIFIED")
    assert (second["line"], second["suspect"], second["verdict"]) == (6, True, "MISMATCH")
    assert any(claimed in p and "E1.json" in p
               for p in second["details"]["problems"].split("; "))
    (export,) = doc["exports"]
    assert export["suspect"] is True
    timeline = {c["line"]: c["suspect"] for c in doc["custody"]}
    assert (timeline[first["line"]], timeline[second["line"]]) == (False, True)

    pdf = tmp_path / "r.pdf"
    assert run_bitwitness("report", root, "-o", pdf).exit_code == 1
    # words joined by single spaces: long paths wrap, so patterns match across line breaks
    text = " ".join(subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True,
                                   text=True, check=True).stdout.split())
    summary = text[text.index("Summary"):text.index("Case details")]
    assert "last verification MISMATCH (UNRELIABLE" in summary
    assert "last reliable verification VERIFIED" in summary
    section = text[text.index("Verifications"):text.index("Chain of custody")]
    assert re.search(r"MISMATCH of [^()]* \(by Ann Example\) - UNRELIABLE", section)
    assert not re.search(r"VERIFIED of [^()]* \(by Ann Example\) - UNRELIABLE", section)
    assert re.search(r"matches the hash recorded at export - UNRELIABLE", section)

    html = tmp_path / "r.html"
    assert run_bitwitness("report", root, "--format", "html", "-o", html).exit_code == 1
    body = " ".join(html.read_text(encoding="utf-8").split())
    assert re.search(r'class="bad-verdict"><strong>[^<]*MISMATCH[^<]*UNRELIABLE', body)
    assert "last reliable verification VERIFIED" in body
