"""Names from evidence in the case reports: every letter printed, none silently changed.

A case's custody details, export manifests and acquisition logs carry names chosen by whoever
made the evidence: Hebrew, emoji, Hangul, control characters, bidirectional overrides, bytes
that are not UTF-8. The PDF is read back with pdftotext (poppler), the HTML with xmllint and
html.parser, the JSON with json; each test states the text a reader must find.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

from conftest import require_tool
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
    return subprocess.run(["bitwitness", "report", str(root), "--format", fmt, "-o", str(out)],
                          capture_output=True, text=True, check=False)


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

