"""``bitwitness report`` end to end over a real case folder, checked with outside tools.

The case is made with :class:`bitwitness.case.Case`; its acquisition log records hashes computed
by md5sum/sha1sum/sha256sum over a generated image, so every hash the report must show comes from
an independent tool. PDF text is read with pdftotext, pages rendered with pdftoppm, the HTML parsed
with html.parser, and report hashes recomputed with sha256sum.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from conftest import CliResult, make_disk_bytes, require_tool, snapshot

EXAMINER = "Zoë Ångström"
DESCRIPTION = "証拠ディスク"
CASE_NUMBER = "2025-0042"

Bw = Callable[..., CliResult]


def tool_hash(tool: str, path: Path) -> str:
    out = subprocess.run([tool, str(path)], capture_output=True, text=True, check=True).stdout
    return out.split()[0]


def make_case(root: Path) -> dict[str, Any]:
    """A case with one acquired item (E1), one verification and one export; returns the facts
    the report must show, all computed by outside tools."""
    require_tool("md5sum", "sha1sum", "sha256sum")
    from bitwitness.case import Case
    from bitwitness.templates import load_template

    case = Case.create(root, load_template("default"), {
        "case_number": CASE_NUMBER, "examiner": EXAMINER,
        "organisation": "Laboratoire médico-légal", "description": DESCRIPTION})
    folder = case.evidence_dir("E1")
    image = folder / "E1.raw"
    image.write_bytes(make_disk_bytes(256 * 1024, seed=7))
    hashes = {a: tool_hash(f"{a}sum", image) for a in ("md5", "sha1", "sha256")}
    log = {
        "schema": "bitwitness.acquisition/1", "operation": "acquire", "status": "completed",
        "error": None,
        "tool": {"name": "BitWitness", "version": "0.1.0", "python": "3.11",
                 "libraries": {"libewf": "20240506", "isal": "1.7"}},
        "host": {"hostname": "lab-1", "os": "Linux", "user": "examiner"},
        "started": "2025-03-01T10:00:00Z", "ended": "2025-03-01T10:00:42Z",
        "duration_seconds": 42.0, "case": None,
        "source": {"path": "/dev/sdz", "kind": "device", "size": image.stat().st_size,
                   "logical_sector_size": 512, "physical_sector_size": 4096,
                   "model": "Disque Été", "serial": "WD-12345", "vendor": "WD",
                   "transport": "usb", "removable": True,
                   "hpa": {"checked": True, "present": False, "detail": "hdparm -N"}},
        "options": {"format": "raw", "hashes": ["md5", "sha1", "sha256"]},
        "media": {"size": image.stat().st_size, "sector_size": 512,
                  "sectors": image.stat().st_size // 512, "hashes": hashes},
        "source_hashes": None,
        "outputs": [{"path": str(image), "size": image.stat().st_size, "hashes": hashes}],
        "read_errors": [{"first_sector": 40, "sector_count": 3}],
        "verification": None,
    }
    (folder / "E1.json").write_text(json.dumps(log), encoding="utf-8")
    case.record("acquire", evidence_id="E1", details={"log": str(folder / "E1.json")})
    case.record("verify", evidence_id="E1", details={"verdict": "VERIFIED", "image": str(image),
                                                     "hashes": hashes})
    manifest = case.exports_dir / "export-1.manifest.json"
    manifest.write_text('{"files": ["a.txt"]}\n', encoding="utf-8")
    manifest_sha = tool_hash("sha256sum", manifest)
    case.record("export", evidence_id="E1", details={"manifest": str(manifest),
                                                     "manifest_sha256": manifest_sha})
    case.record("sealed", evidence_id="E1", details={"note": "bag 77"})
    return {"root": root, "hashes": hashes, "manifest_sha": manifest_sha, "image": image,
            "events": [json.loads(line) for line in
                       (root / "custody.jsonl").read_text(encoding="utf-8").splitlines()]}


def pdf_text(path: Path, *, first_page_only: bool = False) -> str:
    require_tool("pdftotext")
    pages = ["-f", "1", "-l", "1"] if first_page_only else []
    return subprocess.run(["pdftotext", "-layout", *pages, str(path), "-"], capture_output=True,
                          text=True, check=True).stdout


def custody_events(root: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in
            (root / "custody.jsonl").read_text(encoding="utf-8").splitlines()]


@pytest.fixture
def case(tmp_path: Path) -> dict[str, Any]:
    return make_case(tmp_path / "case")


def test_all_formats_written_and_recorded(bw: Bw, case: dict[str, Any]) -> None:
    root = case["root"]
    before = snapshot([case["image"], root / "evidence/E1/E1.json"])
    result = bw("report", root, "--format", "all", "--json")
    assert result.exit_code == 0, result.stderr
    doc = result.json()
    assert {r["format"] for r in doc["reports"]} == {"pdf", "html", "json"}
    events = custody_events(root)
    recorded = {e["details"]["sha256"]: e for e in events if e["action"] == "report"}
    for report in doc["reports"]:
        path = Path(report["path"])
        assert path.parent == root / "reports"
        assert path.suffix == "." + report["format"]
        digest = tool_hash("sha256sum", path)
        assert report["sha256"] == digest
        assert report["recorded"]
        assert recorded[digest]["details"]["format"] == report["format"]
        assert recorded[digest]["details"]["path"] == str(path)
    assert before == snapshot([case["image"], root / "evidence/E1/E1.json"])
    from bitwitness.custody import CustodyLog

    assert CustodyLog(root / "custody.jsonl").verify().ok  # our appends kept the chain whole


def test_pdf_holds_case_hashes_events_and_unicode(bw: Bw, case: dict[str, Any],
                                                 tmp_path: Path) -> None:
    out = tmp_path / "r.pdf"
    result = bw("report", case["root"], "-o", out)
    assert result.exit_code == 0, result.stderr
    text = pdf_text(out)
    assert CASE_NUMBER in text
    for value in [*case["hashes"].values(), case["manifest_sha"]]:
        assert value in text
    for event in case["events"]:
        stamp = event["time"][:19].replace("T", " ")
        row = re.compile(rf"^\s*{event['seq']}\s+{stamp}\s+.*\b{event['action']}\b", re.M)
        assert row.search(text), event
    assert EXAMINER in text
    assert DESCRIPTION in text
    assert "Disque Été" in text
    assert "Laboratoire médico-légal" in text
    assert "INTACT" in pdf_text(out, first_page_only=True)
    assert "sectors 40-42" in text
    pages = [ln for ln in text.splitlines() if "Page " in ln and " of " in ln]
    count = int(pages[0].split(" of ")[1].split()[0])
    assert [f"Page {n} of {count}" in p for n, p in enumerate(pages, 1)] == [True] * count


def test_pdftoppm_renders_every_page(bw: Bw, case: dict[str, Any], tmp_path: Path) -> None:
    require_tool("pdftoppm", "pdfinfo")
    from PIL import Image

    out = tmp_path / "r.pdf"
    assert bw("report", case["root"], "-o", out).exit_code == 0
    info = subprocess.run(["pdfinfo", str(out)], capture_output=True, text=True, check=True)
    pages = int(next(ln for ln in info.stdout.splitlines() if ln.startswith("Pages:")).split()[1])
    assert pages >= 2
    subprocess.run(["pdftoppm", "-r", "30", "-gray", str(out), str(tmp_path / "pg")], check=True)
    images = sorted(tmp_path.glob("pg-*.pgm"))
    assert len(images) == pages
    for img in images:
        lo, hi = Image.open(img).getextrema()
        assert lo < 128 <= hi, f"{img.name} is blank"


class _Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []
        self.styles: list[str] = []
        self.tags: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self._in_style = tag == "style"
        for name, value in attrs:
            if name in {"src", "href", "srcset", "action", "data", "poster"}:
                self.refs.append(value or "")
            if name == "style":
                self.styles.append(value or "")

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.styles.append(data)


def test_html_self_contained_and_escaped(bw: Bw, tmp_path: Path) -> None:
    case = make_case(tmp_path / "case")
    from bitwitness.case import Case

    Case.load(case["root"]).record("sealed", evidence_id="E1",
                                   details={"note": "<script>alert(1)</script>"})
    out = tmp_path / "r.html"
    assert bw("report", case["root"], "--format", "html", "-o", out).exit_code == 0
    body = out.read_text(encoding="utf-8")
    parser = _Refs()
    parser.feed(body)
    parser.close()
    assert parser.refs == []
    assert "script" not in parser.tags
    assert "link" not in parser.tags
    assert "img" not in parser.tags
    css = "\n".join(parser.styles)
    assert "@media print" in css
    for bad in ("url(", "@import", "http:", "https:", "file:"):
        assert bad not in css
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    for value in [*case["hashes"].values(), case["manifest_sha"], CASE_NUMBER, EXAMINER,
                  DESCRIPTION]:
        assert value in body


def test_json_report_schema_and_facts(bw: Bw, case: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    assert bw("report", case["root"], "--format", "json", "-o", out).exit_code == 0
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["schema"] == "bitwitness.report/1"
    assert doc["integrity"]["state"] == "intact"
    assert doc["integrity"]["ok"] is True
    assert doc["case"]["fields"]["examiner"]["value"] == EXAMINER
    item = doc["evidence"][0]
    assert item["acquisition"]["media_hashes"] == case["hashes"]
    assert item["source"]["serial"] == "WD-12345"
    assert doc["verifications"][0]["verdict"] == "VERIFIED"
    assert doc["exports"][0]["manifest_sha256"] == case["manifest_sha"]
    assert doc["exports"][0]["manifest_state"] == "matches"
    assert [e["seq"] for e in doc["custody"]] == [e["seq"] for e in case["events"]]


def test_tampered_log_is_said_first_and_exits_1(bw: Bw, case: dict[str, Any],
                                               tmp_path: Path) -> None:
    log = case["root"] / "custody.jsonl"
    lines = log.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[2] = lines[2].replace('"VERIFIED"', '"VERIFlED"')  # a quiet edit of the verify line
    log.write_text("".join(lines), encoding="utf-8")
    result = bw("report", case["root"], "--format", "all", "-o", tmp_path / "t", "--json")
    assert result.exit_code == 1
    doc = result.json()
    assert doc["integrity"]["ok"] is False
    # the log may accept the report events (the break stays visible) or refuse them; either way
    # the outcome is stated per file
    assert all(r["recorded"] or r["not_recorded_reason"] for r in doc["reports"])
    first = pdf_text(tmp_path / "t.pdf", first_page_only=True)
    assert "TAMPERED" in first
    html_body = (tmp_path / "t.html").read_text(encoding="utf-8")
    assert html_body.index("TAMPERED") < html_body.index("<section")
    report = json.loads((tmp_path / "t.json").read_text(encoding="utf-8"))
    assert next(iter(report)) == "schema"
    assert list(report)[1] == "integrity"
    assert report["integrity"]["state"] == "tampered"
    assert report["integrity"]["first_bad_line"] is not None
    assert any(e["suspect"] for e in report["custody"])


def test_refuses_to_overwrite(bw: Bw, case: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    assert bw("report", case["root"], "--format", "json", "-o", out).exit_code == 0
    first = out.read_bytes()
    again = bw("report", case["root"], "--format", "json", "-o", out)
    assert again.exit_code == 2
    assert "already exists" in again.stderr
    assert "Traceback" not in again.stderr
    assert out.read_bytes() == first
    assert bw("report", case["root"], "--format", "json", "-o", out,
              "--overwrite").exit_code == 0
    assert out.read_bytes() != first  # the new report lists the first one's custody event


def test_bad_inputs_are_one_line(bw: Bw, case: dict[str, Any], tmp_path: Path) -> None:
    missing = bw("report", case["root"], "--evidence", "NOPE")
    assert missing.exit_code == 2
    assert "NOPE" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1
    not_case = bw("report", tmp_path)
    assert not_case.exit_code == 2
    assert "not a BitWitness case" in not_case.stderr


def test_evidence_filter(bw: Bw, case: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "e1.json"
    assert bw("report", case["root"], "--format", "json", "--evidence", "E1",
              "-o", out).exit_code == 0
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["case"]["evidence_filter"] == "E1"
    assert [i["evidence_id"] for i in doc["evidence"]] == ["E1"]
    report_event = custody_events(case["root"])[-1]
    assert report_event["action"] == "report"
    assert report_event["evidence_id"] == "E1"
