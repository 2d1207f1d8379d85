"""Names from evidence in the case reports: every letter printed, none silently changed.

A case's custody details, export manifests and acquisition logs carry names chosen by whoever
made the evidence: Hebrew, emoji, Hangul, control characters, bidirectional overrides, bytes
that are not UTF-8. The PDF is read back with pdftotext (poppler), the HTML with xmllint and
html.parser, the JSON with json; each test states the text a reader must find.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from conftest import require_tool, run_bitwitness
from hostile_names import hostile_image, icat_name, stored_names
from test_report_cli import make_case, pdf_text

#: Names set in the custody table's monospace details: DejaVu Sans Mono has none of these
#: letters, DejaVu Sans (Hebrew, emoji) and the CJK font (Japanese) have them.
MONO_LACKS = ("שלום.txt", "😀.txt", "証拠.txt")


def logical(text: str) -> str:
    """pdftotext's text in reading order: it writes a right-to-left run as drawn (visual order,
    last letter first) between U+202B and U+202C; reversing each such run gives the name back."""
    return re.sub("\u202b([^\u202c]*)\u202c", lambda m: m.group(1)[::-1], text)


def record(root: Path, action: str, details: dict[str, Any]) -> None:
    from bitwitness.case import Case

    Case.load(root).record(action, evidence_id="E1", details=details)


def render(root: Path, out: Path, fmt: str) -> subprocess.CompletedProcess[str]:
    """The real command in a child process, so that anything written on stderr is seen."""
    return subprocess.run([sys.executable, "-m", "bitwitness", "report", str(root), "--format",
                           fmt, "-o", str(out)], capture_output=True, text=True, check=False)


def test_custody_details_keep_letters_the_monospace_font_lacks(tmp_path: Path) -> None:
    """Each character is drawn from a font that has it: the Hebrew, emoji and Japanese names
    set in the monospace custody details come out of pdftotext whole, and fpdf2 reports no
    glyph it left out."""
    root = make_case(tmp_path / "case")["root"]
    record(root, "export", {"paths": ", ".join(f"/{n}" for n in MONO_LACKS)})
    out = tmp_path / "r.pdf"
    result = render(root, out, "pdf")
    assert result.returncode == 0, result.stderr
    assert "missing the following glyphs" not in result.stderr
    text = logical(pdf_text(out))
    for name in MONO_LACKS:
        assert name in text, name


def test_a_character_no_font_draws_refuses_the_pdf(tmp_path: Path) -> None:
    """A letter no installed font has (Linear B here) is never dropped: the PDF is refused,
    nothing is written, and the message names the character."""
    require_tool("pdftotext")
    root = make_case(tmp_path / "case")["root"]
    record(root, "export", {"paths": "/\U00010000.txt"})
    out = tmp_path / "r.pdf"
    result = render(root, out, "pdf")
    assert result.returncode == 2
    assert "U+10000" in result.stderr
    assert not out.exists()



#: Names that printed raw lose or hide what they are; each with the spelling the terminal gives.
CONTROL_NAMES = {
    "/a\tb": "/a^b",
    "/\u202egnp.exe": "/\\u202egnp.exe",
    "/esc\x1b[31mred": "/esc^[31mred",
    "/bel\x07bs\x08vt\x0bff\x0ccr\r": "/bel^bs^vt^ff^cr^",
    "/c1\x85del\x7f": "/c1\\u0085del^",
}


def control_case(tmp_path: Path) -> Path:
    root = make_case(tmp_path / "case")["root"]
    for number, name in enumerate(CONTROL_NAMES):
        record(root, "export", {f"path_{number}": name})
    return root


def test_pdf_spells_control_and_bidi_characters_visibly(tmp_path: Path) -> None:
    """A tab, escape, bell, carriage return, DEL, a C1 control, a right-to-left override and a
    byte that is not UTF-8 each print as the terminal shows them; none is dropped."""
    root = control_case(tmp_path)
    out = tmp_path / "r.pdf"
    result = render(root, out, "pdf")
    assert result.returncode == 0, result.stderr
    text = pdf_text(out)
    for spelled in CONTROL_NAMES.values():
        assert spelled in text, spelled
    assert "\u202e" not in text


def test_html_holds_no_raw_control_character_and_spells_them(tmp_path: Path) -> None:
    """xmllint --html finds no invalid character (HTML5's elements aside, which its HTML 4
    parser does not know); the text a browser shows (html.parser) holds
    each name's visible spelling, and the file holds no C0/C1 control but line feeds, no
    bidirectional override."""
    require_tool("xmllint")
    root = control_case(tmp_path)
    out = tmp_path / "r.html"
    result = render(root, out, "html")
    assert result.returncode == 0, result.stderr
    lint = subprocess.run(["xmllint", "--html", "--noout", str(out)], capture_output=True,
                          text=True, check=False)
    errors = set(re.findall(r"HTML parser error : (.*)", lint.stderr))
    # libxml2's parser is HTML 4's: HTML5 elements are its only other complaint
    assert errors <= {f"Tag {tag} invalid" for tag in ("header", "section", "footer")}, errors
    raw = out.read_text(encoding="utf-8")
    assert not re.search("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]", raw)
    text = "".join(Text.of(raw))
    for spelled in CONTROL_NAMES.values():
        assert spelled in text, spelled


class Text(HTMLParser):
    """The character data of a document, entities decoded, as a browser reads it."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)

    @classmethod
    def of(cls, document: str) -> list[str]:
        parser = cls()
        parser.feed(document)
        return parser.parts


def ok(*args: str | Path) -> None:
    result = run_bitwitness(*args)
    assert result.exit_code == 0, (args, result.stderr)


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """An ext4 made by ``mkfs.ext4 -d`` from a tree of hostile names, acquired into a case
    and exported whole (``export / --all --case``), as the sweep that found these defects did."""
    require_tool("fls")
    tmp = tmp_path_factory.mktemp("hostile")
    image = hostile_image(tmp)
    root = tmp / "case"
    ok("case", "new", root, "--set", "case_number=H-1", "--set", "examiner=Ann Example")
    ok("acquire", image, "--case", root, "--evidence", "E1", "--format", "raw")
    ok("export", root / "evidence/E1/E1.raw", "/", "--all", "--to", tmp / "out", "--case", root)
    return {"root": root, "image": image, "tmp": tmp}


def test_names_the_pdf_does_not_print_cannot_refuse_it(hostile: dict[str, Path],
                                                      tmp_path: Path) -> None:
    """The export listed Hangul (which Droid Sans Fallback lacks), DEL and C1 names; the PDF
    prints no exported file name, so it is written, exit 0."""
    out = tmp_path / "r.pdf"
    result = render(hostile["root"], out, "pdf")
    assert result.returncode == 0, result.stderr
    assert "missing the following glyphs" not in result.stderr
    assert "H-1" in pdf_text(out)


def test_a_printed_glyph_no_font_has_names_the_package(tmp_path: Path) -> None:
    """Hangul the PDF does print (a custody detail) and the CJK font lacks refuses the PDF,
    saying which Debian font package has it."""
    from bitwitness.report.fonts import find_fonts

    require_tool("pdftotext")
    fonts = find_fonts()
    if fonts.cjk is None or fonts.cjk.name.startswith("NotoSansCJK"):
        pytest.skip("needs Droid Sans Fallback as the CJK font (fonts-droid-fallback)")
    root = make_case(tmp_path / "case")["root"]
    record(root, "export", {"paths": "/한국어.txt"})
    out = tmp_path / "r.pdf"
    result = render(root, out, "pdf")
    assert result.returncode == 2
    assert "U+D55C" in result.stderr
    assert "fonts-noto-cjk" in result.stderr
    assert not out.exists()


def test_json_report_carries_the_exact_bytes_of_a_name(hostile: dict[str, Path],
                                                       tmp_path: Path) -> None:
    """Both ext4 names spelled ``x\\xffy`` are listed; the one holding the byte 0xFF carries
    ``source_hex``, and each name's exact bytes (hex, else UTF-8) are the bytes mkfs stored."""
    out = tmp_path / "r.json"
    assert render(hostile["root"], out, "json").returncode == 0
    files = json.loads(out.read_text(encoding="utf-8"))["exports"][0]["files"]
    same = [f for f in files if f["source"] == "/x\\xffy"]
    assert sorted(f["source_hex"] for f in same) == ["", b"/x\xffy".hex()]
    exact = {bytes.fromhex(f["source_hex"]) if f["source_hex"] else f["source"].encode()
             for f in files}
    assert {b"/" + n for n in stored_names(hostile["tmp"])} <= exact


def read_dfxml_name(spelled: str) -> bytes:
    """The documented DFXML spelling read back: ``\\\\`` a backslash, ``\\xNN`` one byte."""
    out, i = bytearray(), 0
    while i < len(spelled):
        if spelled.startswith("\\\\", i):
            out += b"\\"
            i += 2
        elif spelled.startswith("\\x", i):
            out.append(int(spelled[i + 2:i + 4], 16))
            i += 4
        else:
            out += spelled[i].encode()
            i += 1
    return bytes(out)


def test_dfxml_names_read_back_to_the_stored_bytes(hostile: dict[str, Path],
                                                   tmp_path: Path) -> None:
    """Every exported file's ``filename`` (parsed by ElementTree after xmllint accepts the
    document as XML) reads back to the exact name mkfs stored; the two ``x\\xffy`` differ."""
    require_tool("xmllint")
    out = tmp_path / "r.dfxml"
    assert render(hostile["root"], out, "dfxml").returncode == 0
    subprocess.run(["xmllint", "--noout", str(out)], check=True)
    ns = "{http://www.forensicswiki.org/wiki/Category:Digital_Forensics_XML}"
    names = [e.text or "" for e in ET.parse(out).iter(f"{ns}filename")]  # noqa: S314
    assert "x\\\\xffy" in names
    assert "x\\xffy" in names
    assert stored_names(hostile["tmp"]) <= {read_dfxml_name(n) for n in names}


UCO = "https://ontology.unifiedcyberontology.org/uco/"


class Read:
    """A CASE report as rdflib's JSON-LD parser reads it (not by walking our JSON): terms by
    their full IRIs, ``ns`` ``core``, ``observable`` or ``action``."""

    def __init__(self, path: Path) -> None:
        import rdflib

        self.rdflib = rdflib
        self.graph = rdflib.Graph().parse(path, format="json-ld")

    def term(self, ns: str, name: str) -> Any:
        if ns == "drafting":
            return self.rdflib.URIRef(f"http://example.org/ontology/drafting/{name}")
        return self.rdflib.URIRef(f"{UCO}{ns}/{name}")

    def values(self, node: Any, ns: str, name: str) -> list[Any]:
        return list(self.graph.objects(node, self.term(ns, name)))

    def one(self, node: Any, ns: str, name: str) -> Any:
        (value,) = self.values(node, ns, name)
        return value

    def facet(self, node: Any, kind: str) -> Any:
        (found,) = [f for f in self.values(node, "core", "hasFacet")
                    if (f, self.rdflib.RDF.type, self.term("observable", kind)) in self.graph]
        return found

    def links(self, kind: str) -> list[tuple[Any, Any]]:
        """(source, target) of every relationship of ``kind``."""
        return [(self.one(r, "core", "source"), self.one(r, "core", "target"))
                for r in self.graph.subjects(self.term("core", "kindOfRelationship"),
                                             self.rdflib.Literal(kind))]


def test_case_report_ties_each_exported_copy_to_its_original(hostile: dict[str, Path],
                                                             tmp_path: Path) -> None:
    """Each exported copy (``café~17``, ``a%09b``) is "Copied_From" an original File whose path
    (exact: ``drafting:filePathHex`` where it is not UTF-8) and ext inode are the ones ``icat``
    confirms (each file holds its own name), "Contained_Within" the evidence, object of the
    export action whose result is the copy; the copy holds what ``icat`` reads from that inode.
    case_validate (case-utils) finds the graph conforming."""
    from test_report_standards import case_validate

    require_tool("icat")
    out = tmp_path / "r.jsonld"
    result = render(hostile["root"], out, "case")
    assert result.returncode == 0, result.stderr
    check = subprocess.run([case_validate(), str(out)], capture_output=True, text=True,
                           check=False, timeout=600)
    assert check.returncode == 0, check.stdout[-3000:]
    report = Read(out)
    copied = report.links("Copied_From")
    within = dict(report.links("Contained_Within"))
    (export,) = list(report.graph.subjects(report.term("core", "name"),
                                           report.rdflib.Literal("export")))
    objects = set(report.values(export, "action", "object"))
    results = set(report.values(export, "action", "result"))
    files = json.loads(render_json(hostile, tmp_path))["exports"][0]["files"]
    assert len(copied) == len(files) == len(stored_names(hostile["tmp"]))
    (evidence,) = {within[original] for _, original in copied}
    assert str(report.one(evidence, "core", "description")).startswith("evidence E1")
    exact, printed = set(), []
    for copy, original in copied:
        assert original in objects
        assert copy in results
        facet = report.facet(original, "FileFacet")
        spelled = str(report.one(facet, "observable", "filePath"))
        hexes = report.values(facet, "drafting", "filePathHex")
        path = hexes[0].toPython() if hexes else spelled.encode()
        inode = str(report.one(report.facet(original, "ExtInodeFacet"), "observable",
                               "extInodeID").toPython())
        assert path == b"/" + icat_name(hostile["image"], inode), (spelled, inode)
        copy_path = report.one(report.facet(copy, "FileFacet"), "observable", "filePath")
        assert Path(str(copy_path)).read_bytes() == path[1:] + b"\n"
        exact.add(path)
        printed.append(spelled)
    assert exact == {b"/" + n for n in stored_names(hostile["tmp"])}
    assert printed.count("/x\\xffy") == 2  # the literal name and the byte 0xFF: hex tells


def render_json(hostile: dict[str, Path], tmp_path: Path) -> str:
    out = tmp_path / "r.json"
    assert render(hostile["root"], out, "json").returncode == 0
    return out.read_text(encoding="utf-8")
