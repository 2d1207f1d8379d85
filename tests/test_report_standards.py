"""Standard exports: CASE/UCO JSON-LD checked by ``case_validate`` (the CASE community's SHACL
validator, from the case-utils package).

The case is made by the real commands (acquire, verify, export, a physical transfer recorded with
``--at``); expected hashes come from md5sum/sha256sum over the source and the exported file.
DFXML, the other standard export, has its own tests: tests/test_report_dfxml.py.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from conftest import require_tool, run_bitwitness


def digest(tool: str, path: Path) -> str:
    return subprocess.run([tool, str(path)], capture_output=True, text=True,
                          check=True).stdout.split()[0]


@pytest.fixture(scope="module")
def worked(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    require_tool("mkfs.vfat", "mcopy", "md5sum", "sha256sum")
    tmp = tmp_path_factory.mktemp("standards")
    source = tmp / "stick.img"
    subprocess.run(["dd", "if=/dev/zero", f"of={source}", "bs=512", "count=4096"],
                   capture_output=True, check=True)
    subprocess.run(["mkfs.vfat", "-n", "EVIDENCE", str(source)], capture_output=True, check=True)
    note = tmp / "note.txt"
    note.write_text("meet at the harbour <b>&amp;</b>\n")
    subprocess.run(["mcopy", "-i", str(source), str(note), "::/note.txt"], check=True)
    root = tmp / "case"
    assert run_bitwitness("case", "new", root, "--set", "case_number=S-5",
                          "--set", "examiner=Ann Example").exit_code == 0
    assert run_bitwitness("acquire", source, "--case", root, "--evidence", "E1",
                          "--description", "stick <with> & markup").exit_code == 0
    assert run_bitwitness("verify", "--case", root).exit_code == 0
    assert run_bitwitness("export", root / "evidence/E1/E1.E01", "/note.txt", "--to",
                          tmp / "out", "--case", root).exit_code == 0
    assert run_bitwitness("custody", "add", root, "--action", "transferred", "--evidence", "E1",
                          "--from", "Ann Example", "--to", "Bob Courier",
                          "--at", "2025-03-02T09:30:00Z").exit_code == 0
    return {"root": root, "tmp": tmp, "source": source, "exported": tmp / "out/note.txt"}


def case_validate() -> str:
    found = shutil.which("case_validate") or str(Path(sys.executable).parent / "case_validate")
    if not Path(found).exists():
        pytest.fail("case_validate (pip package case-utils, in the test extras) is missing")
    return found


def device_variant(root: Path, out: Path) -> Path:
    """The same case as if its source had been a block device (Device, model, serial)."""
    from bitwitness.report.case_uco import render_case
    from bitwitness.report.gather import gather

    data = gather(root)
    item = data.evidence[0]
    assert item.source is not None
    device = replace(item.source, path="/dev/sdz", kind="device", model="Cruzer Blade",
                     serial="4C530001<&>")
    data = replace(data, case_root=f"{data.case_root}-device",
                   evidence=(replace(item, source=device),))
    out.write_bytes(render_case(data))
    return out


def test_case_uco_export_validates(worked: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "case.jsonld"
    result = run_bitwitness("report", worked["root"], "--format", "case", "-o", out)
    assert result.exit_code == 0, result.stderr
    device = device_variant(worked["root"], tmp_path / "device.jsonld")
    # one validator run for both graphs (loading the ontology is what takes the time); the
    # device variant is another case folder, so no node of one is a node of the other
    check = subprocess.run([case_validate(), str(out), str(device)], capture_output=True,
                           text=True, check=False, timeout=600)
    assert check.returncode == 0, check.stdout[-3000:]
    assert "Conforms: True" in check.stdout
    graph = json.loads(device.read_text())["@graph"]
    (node,) = [n for n in graph if n["@type"] == "uco-observable:Device"]
    facet = next(f for f in node["uco-core:hasFacet"]
                 if f["@type"] == "uco-observable:DeviceFacet")
    assert (facet["uco-observable:model"], facet["uco-observable:serialNumber"]) == (
        "Cruzer Blade", "4C530001<&>")

    graph = json.loads(out.read_text())["@graph"]
    by_type: dict[str, list[dict[str, Any]]] = {}
    for node in graph:
        by_type.setdefault(node["@type"], []).append(node)
    actions = {n["uco-core:name"] for n in by_type["case-investigation:InvestigativeAction"]}
    assert {"acquire", "verify", "export", "transfer"} <= actions
    (tool,) = by_type["uco-tool:Tool"]
    assert tool["uco-core:name"] == "BitWitness"
    (record,) = by_type["case-investigation:ProvenanceRecord"]
    assert record["case-investigation:exhibitNumber"] == "E1"
    hashes = {(h["uco-types:hashMethod"], h["uco-types:hashValue"]["@value"])
              for n in graph for f in n.get("uco-core:hasFacet", [])
              for h in f.get("uco-observable:hash", [])}
    assert ("MD5", digest("md5sum", worked["source"])) in hashes
    assert ("SHA256", digest("sha256sum", worked["exported"])) in hashes
    transfer = next(n for n in by_type["case-investigation:InvestigativeAction"]
                    if n["uco-core:name"] == "transfer")
    assert transfer["uco-action:startTime"]["@value"] == "2025-03-02T09:30:00Z"
    acquire = next(n for n in by_type["case-investigation:InvestigativeAction"]
                   if n["uco-core:name"] == "acquire")
    assert {"@id": record["@id"]} in acquire["uco-action:result"]
