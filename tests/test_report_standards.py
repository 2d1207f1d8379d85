"""Standard exports: CASE/UCO JSON-LD checked by ``case_validate`` (the CASE community's SHACL
validator, from the case-utils package) and DFXML checked by ``xmllint --schema``.

The case is made by the real commands (acquire, verify, export, a physical transfer recorded with
``--at``); expected hashes come from md5sum/sha256sum over the source and the exported file.

DFXML: the DFXML working group's schema cannot be fetched on this machine and no package ships
it, so the document is validated against tests/schemas/dfxml-1.1-subset.xsd (the DFXML 1.1.0
content models of the elements we write) and, when ``BITWITNESS_DFXML_XSD`` names the official
dfxml.xsd, against that too.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from conftest import require_tool, run_bitwitness

from bitwitness.report.model import ErrorRange

SCHEMAS = Path(__file__).parent / "schemas"
DF = "{http://www.forensicswiki.org/wiki/Category:Digital_Forensics_XML}"


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


def xmllint(document: Path, schema: Path) -> None:
    check = subprocess.run(["xmllint", "--noout", "--schema", str(schema), str(document)],
                           capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stderr


def dfxml_valid(document: Path) -> None:
    """``document`` is valid against the subset schema and, when named, the official one."""
    xmllint(document, SCHEMAS / "dfxml-1.1-subset.xsd")
    official = os.environ.get("BITWITNESS_DFXML_XSD")
    if official:
        xmllint(document, Path(official))


def test_dfxml_export_validates_and_holds_the_hashes(worked: dict[str, Any],
                                                     tmp_path: Path) -> None:
    require_tool("xmllint")
    out = tmp_path / "case.dfxml.xml"
    result = run_bitwitness("report", worked["root"], "--format", "dfxml", "-o", out)
    assert result.exit_code == 0, result.stderr
    dfxml_valid(out)
    root = ET.parse(out).getroot()  # noqa: S314 - our own output
    assert root.get("version") == "1.1.0"
    objects = {o.findtext(f"{DF}id"): o for o in root.iter(f"{DF}fileobject")}
    media = objects["E1/media"]
    assert media.findtext(f"{DF}filesize") == str(worked["source"].stat().st_size)
    digests = {d.get("type"): d.text for d in media.iter(f"{DF}hashdigest")}
    assert digests["md5"] == digest("md5sum", worked["source"])
    assert digests["sha256"] == digest("sha256sum", worked["source"])
    exported = objects["E1/export/note.txt"]
    assert exported.findtext(f"{DF}filename") == "/note.txt"
    assert {d.get("type"): d.text for d in exported.iter(f"{DF}hashdigest")}["sha256"] == \
        digest("sha256sum", worked["exported"])
    image = objects["E1/image/E1.E01"]
    assert {d.get("type"): d.text for d in image.iter(f"{DF}hashdigest")}["sha256"] == \
        digest("sha256sum", worked["root"] / "evidence/E1/E1.E01")
    sources = [s.text for s in root.iter(f"{DF}image_filename")]
    assert str(worked["source"]) in sources


def test_dfxml_read_errors_are_zero_filled_byte_runs(worked: dict[str, Any],
                                                     tmp_path: Path) -> None:
    require_tool("xmllint")
    from bitwitness.report.dfxml import render_dfxml
    from bitwitness.report.gather import gather

    data = gather(worked["root"])
    item = data.evidence[0]
    assert item.acquisition is not None
    bad = replace(item.acquisition, read_errors=(ErrorRange(40, 3), ErrorRange(100, 1)))
    data = replace(data, evidence=(replace(item, acquisition=bad),))
    out = tmp_path / "errors.xml"
    out.write_bytes(render_dfxml(data))
    dfxml_valid(out)
    root = ET.parse(out).getroot()  # noqa: S314 - our own output
    runs = [(r.get("img_offset"), r.get("len"), r.get("fill")) for r in root.iter(f"{DF}byte_run")]
    assert runs == [("20480", "1536", "0"), ("51200", "512", "0")]


def test_the_subset_schema_rejects_what_dfxml_forbids(tmp_path: Path) -> None:
    """The test schema is not a rubber stamp: wrong order, missing name_type, bad digest type."""
    require_tool("xmllint")
    head = ('<dfxml xmlns="http://www.forensicswiki.org/wiki/Category:Digital_Forensics_XML" '
            'xmlns:dc="http://purl.org/dc/elements/1.1/" version="1.1.0"><metadata><dc:type>x'
            '</dc:type></metadata><source/>')
    bad = {
        "order": "<fileobject><name_type>r</name_type><filename>a</filename></fileobject>",
        "no name_type": "<fileobject><filename>a</filename></fileobject>",
        "digest": ("<fileobject><filename>a</filename><name_type>r</name_type>"
                   "<hashdigest type='crc'>00</hashdigest></fileobject>"),
    }
    for name, body in bad.items():
        path = tmp_path / f"{name.replace(' ', '_')}.xml"
        path.write_text(head + body + "</dfxml>")
        check = subprocess.run(["xmllint", "--noout", "--schema",
                                str(SCHEMAS / "dfxml-1.1-subset.xsd"), str(path)],
                               capture_output=True, text=True, check=False)
        assert check.returncode != 0, name


def test_dfxml_holds_hostile_file_names_as_text(worked: dict[str, Any], tmp_path: Path) -> None:
    """Control characters, lone surrogates and markup in a name from evidence stay text."""
    require_tool("xmllint")
    from bitwitness.report.dfxml import render_dfxml
    from bitwitness.report.gather import gather
    from bitwitness.report.model import ExportedFile

    data = gather(worked["root"])
    (export,) = data.exports
    hostile = ExportedFile(source="/evil\x01<b>&amp;\udc80\x7f.txt", target="evil.txt", size=3)
    data = replace(data, exports=(replace(export, files=(hostile,)),))
    out = tmp_path / "hostile.xml"
    out.write_bytes(render_dfxml(data))
    dfxml_valid(out)
    root = ET.parse(out).getroot()  # noqa: S314 - our own output
    names = [f.text for f in root.iter(f"{DF}filename")]
    assert "/evil\\x01<b>&amp;\\udc80\x7f.txt" in names
