"""The court-ready PDF report (fpdf2).

Layout: a title page (agency header, title, the custody-log integrity statement in a coloured box,
the case identifiers), then the sections the template lists, each starting on its own line of
flow; every page carries the case number in its header and "Page X of Y" plus the generation time
(UTC) in its footer. Hashes are set in DejaVu Sans Mono in two-column tables wide enough for a
whole SHA-256 on one line; a value too long for its column wraps at character boundaries only.
Fonts come from :mod:`bitwitness.report.fonts` (CJK through fpdf2's fallback fonts).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from fpdf import FPDF
from fpdf.enums import TableCellFillMode, WrapMode, XPos, YPos
from fpdf.fonts import FontFace

from bitwitness.report import text as t
from bitwitness.report.fonts import FontSet, find_fonts, refuse_missing
from bitwitness.report.model import (
    ITEM_SECTIONS,
    EvidenceItem,
    Export,
    HashValue,
    ReportData,
    Verification,
)

_SANS = "bw-sans"
_MONO = "bw-mono"
_CJK = "bw-cjk"
_RED = (176, 0, 32)
_RED_FILL = (253, 228, 228)
_GREEN_FILL = (226, 242, 230)
_AMBER_FILL = (255, 244, 214)
_GREY_FILL = (238, 238, 238)
_LABEL_W = 55.0  # mm, label column of key/value tables
_ALGO_W = 22.0  # mm, algorithm column of hash tables


class _ReportPDF(FPDF):
    """A4 portrait; header and footer on every page."""

    def __init__(self, data: ReportData, fonts: FontSet) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        self.data = data
        self.set_margins(18, 20, 18)
        self.set_auto_page_break(auto=True, margin=20)
        self.add_font(_SANS, "", fonts.sans)
        self.add_font(_SANS, "B", fonts.sans_bold)
        self.add_font(_MONO, "", fonts.mono)
        self.add_font(_MONO, "B", fonts.mono_bold or fonts.mono)
        fallbacks = [_SANS, _MONO]
        if fonts.cjk is not None:
            self.add_font(_CJK, "", fonts.cjk)
            fallbacks.append(_CJK)
        # Every font is every other's fallback: a cell is set in one font (the custody details
        # in DejaVu Sans Mono, which has no Hebrew, no emoji), and fpdf2 then takes each
        # character it lacks from the first font that has it instead of leaving it out.
        self.set_fallback_fonts(fallbacks, exact_match=False)
        self.set_title(data.settings.title)
        self.set_subject(f"Case {data.case_number}")
        self.set_author(data.examiner)
        self.set_creator(f"BitWitness {data.tool_version}")
        self.set_creation_date(data.generated)

    def header(self) -> None:
        if self.page_no() == 1:
            return
        self.set_font(_SANS, "", 8)
        self.set_text_color(90)
        agency = self.data.settings.agency_header.splitlines()
        self.cell(self.epw / 2, 5, agency[0] if agency else "", new_x=XPos.RIGHT)
        self.cell(self.epw / 2, 5, f"Case {self.data.case_number}", align="R",
                  new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.line(self.l_margin, self.get_y(), self.w - self.r_margin, self.get_y())
        self.set_text_color(0)
        self.ln(4)

    def footer(self) -> None:
        """Title (shortened to its column), page number and generation time in three columns
        that never overlap: each text is measured against its own column's width."""
        self.set_y(-14)
        self.set_font(_SANS, "", 8)
        self.set_text_color(90)
        self.line(self.l_margin, self.get_y(), self.w - self.r_margin, self.get_y())
        generated = f"Generated {t.when(self.data.generated)}"
        page = f"Page {self.page_no()} of {{nb}}"
        right = self.get_string_width(generated) + 2
        middle = self.get_string_width("Page 9999 of 9999") + 4
        left = self.epw - right - middle
        self.cell(left, 6, _fit(self, self.data.settings.title, left - 2), new_x=XPos.RIGHT)
        self.cell(middle, 6, page, align="C", new_x=XPos.RIGHT)
        self.cell(right, 6, generated, align="R")
        self.set_text_color(0)

    def normalize_text(self, text: str) -> str:
        """Every string fpdf2 draws or measures passes here: evidence-derived text is printed in
        its visible spelling (:func:`~bitwitness.report.text.visible`), so no cell, heading or
        footer can drop a control character or reverse a name with a bidirectional override."""
        return super().normalize_text(t.visible(text))

    def missing_glyphs(self) -> list[str]:
        """Characters laid out so far that no font (nor its fallbacks) could draw.

        fpdf2 notes them per font as it lays text out and, left alone, only logs them while
        writing the file, leaving the letters out of the page; asking here lets the report be
        refused instead, before anything is written.
        """
        missing: dict[str, None] = {}
        for font in self.fonts.values():
            for code in getattr(font, "missing_glyphs", ()):
                missing[chr(code)] = None
        return list(missing)

    # --- building blocks -----------------------------------------------------------------

    def heading(self, title: str, level: int = 1) -> None:
        sizes = {1: 14, 2: 11.5, 3: 10}
        if self.will_page_break(30):
            self.add_page()
        self.ln(3 if level > 1 else 5)
        self.set_font(_SANS, "B", sizes[level])
        self.multi_cell(0, sizes[level] * 0.5, title, align="L", new_x=XPos.LMARGIN,
                        new_y=YPos.NEXT)
        if level == 1:
            self.line(self.l_margin, self.get_y() + 0.5, self.w - self.r_margin, self.get_y() + 0.5)
        self.ln(2)

    def paragraph(self, body: str, size: float = 9.5, *, bold: bool = False,
                  color: tuple[int, int, int] | None = None) -> None:
        self.set_font(_SANS, "B" if bold else "", size)
        if color:
            self.set_text_color(*color)
        self.multi_cell(0, size * 0.5, body, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_text_color(0)
        self.ln(1.5)

    def key_values(self, rows: Sequence[tuple[str, str]]) -> None:
        self.set_font(_SANS, "", 9)
        label = FontFace(emphasis="B", fill_color=_GREY_FILL)
        with self.table(col_widths=(_LABEL_W, self.epw - _LABEL_W), first_row_as_headings=False,
                        text_align="LEFT", line_height=4.6, padding=1.2, v_align="TOP") as table:
            for key, value in rows:
                row = table.row()
                row.cell(key, style=label)
                row.cell(value)
        self.ln(2)

    def hash_table(self, hashes: Sequence[HashValue], caption: str = "") -> None:
        """Algorithm | value, monospace; the value column fits a SHA-256 on one line."""
        if not hashes:
            return
        if caption:
            self.paragraph(caption, 9, bold=True)
        self.set_font(_MONO, "", 8.5)
        head = FontFace(family=_SANS, emphasis="B", fill_color=_GREY_FILL)
        with self.table(col_widths=(_ALGO_W, self.epw - _ALGO_W), text_align="LEFT",
                        headings_style=head, line_height=4.4, padding=1.2,
                        wrapmode=WrapMode.CHAR) as table:
            header = table.row()
            header.cell("Algorithm")
            header.cell("Hash value")
            for h in hashes:
                row = table.row()
                row.cell(h.algorithm.upper())
                row.cell(h.value)
        self.ln(2)


def _fit(pdf: FPDF, text: str, width: float) -> str:
    """``text`` shortened with an ellipsis until it fits ``width`` mm in the current font."""
    if pdf.get_string_width(text) <= width:
        return text
    while text and pdf.get_string_width(text + "...") > width:
        text = text[:-1]
    return text.rstrip() + "..."


def render_pdf(data: ReportData, fonts: FontSet | None = None) -> bytes:
    """The report as PDF bytes. Raises :class:`~bitwitness.errors.InputError` on missing fonts.

    Sections appear in the order the template lists them; the per-item ones (evidence,
    acquisition, hashes, read errors, verifications, exports) are grouped under each item.
    """
    fonts = fonts or find_fonts()
    pdf = _ReportPDF(data, fonts)
    _title_page(pdf, data)
    items_done = False
    for section in data.settings.sections:
        if section in ITEM_SECTIONS:
            if not items_done:
                _evidence(pdf, data)
                items_done = True
        elif section in _CASE_SECTIONS:
            _CASE_SECTIONS[section](pdf, data)
    refuse_missing(pdf.missing_glyphs(), fonts)
    return bytes(pdf.output())


def _summary(pdf: _ReportPDF, data: ReportData) -> None:
    pdf.heading(t.SECTION_TITLES["summary"])
    for line in t.summary_lines(data):
        pdf.paragraph(line, 9.5)


def _case(pdf: _ReportPDF, data: ReportData) -> None:
    pdf.heading(t.SECTION_TITLES["case"])
    pdf.key_values(t.case_rows(data))


def _environment(pdf: _ReportPDF, data: ReportData) -> None:
    pdf.heading(t.SECTION_TITLES["environment"])
    pdf.key_values(t.environment_rows(data))


def _disclaimer(pdf: _ReportPDF, data: ReportData) -> None:
    if data.settings.disclaimer:
        pdf.heading(t.SECTION_TITLES["disclaimer"])
        pdf.paragraph(data.settings.disclaimer, 9)


def _title_page(pdf: _ReportPDF, data: ReportData) -> None:
    pdf.add_page()
    if data.settings.agency_header:
        pdf.set_font(_SANS, "B", 12)
        pdf.multi_cell(0, 6, data.settings.agency_header, align="C",
                       new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.ln(8)
    pdf.set_font(_SANS, "B", 22)
    pdf.multi_cell(0, 11, data.settings.title, align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font(_SANS, "", 12)
    pdf.cell(0, 8, f"Case {data.case_number}", align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(6)
    _integrity_box(pdf, data)
    pdf.ln(4)
    pdf.key_values(t.title_rows(data))
    pdf.add_page()  # the title page stands alone


def _integrity_box(pdf: _ReportPDF, data: ReportData) -> None:
    bad = not data.integrity.ok
    amber = not bad and bool(data.integrity.acknowledged)  # broken, and acknowledged
    pdf.set_fill_color(*(_RED_FILL if bad else _AMBER_FILL if amber else _GREEN_FILL))
    pdf.set_draw_color(*(_RED if bad else (138, 90, 0) if amber else (40, 120, 60)))
    pdf.set_line_width(0.6 if bad else 0.3)
    pdf.set_font(_SANS, "B", 11 if bad else 9.5)
    if bad:
        pdf.set_text_color(*_RED)
    pdf.multi_cell(0, 6 if bad else 5, data.integrity.statement(), border=1, fill=True,
                   padding=3, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_text_color(0)
    pdf.set_draw_color(0)
    pdf.set_fill_color(255)
    pdf.set_line_width(0.2)


def _evidence(pdf: _ReportPDF, data: ReportData) -> None:
    pdf.heading(t.SECTION_TITLES["evidence"])
    if not data.evidence:
        pdf.paragraph("The case holds no evidence items.")
    for item in data.evidence:
        _item(pdf, data, item)
    other_v, other_e = data.unassigned()
    other_v = other_v if data.shows("verification") else ()
    other_e = other_e if data.shows("exports") else ()
    if other_v or other_e:
        pdf.heading("Not tied to an evidence item", 2)
        _verifications(pdf, other_v)
        _exports(pdf, other_e)


def _item(pdf: _ReportPDF, data: ReportData, item: EvidenceItem) -> None:
    pdf.heading(t.item_heading(item), 2)
    for problem in item.problems:
        pdf.paragraph(f"Problem: {problem}", 9, bold=True, color=_RED)
    sections = [s for s in data.settings.sections if s in ITEM_SECTIONS]
    if data.shows("exports") and "exports" not in sections:
        sections.append("exports")
    for section in sections:
        _ITEM_PARTS[section](pdf, data, item)


def _folder(pdf: _ReportPDF, data: ReportData, item: EvidenceItem) -> None:
    pdf.key_values([("Evidence folder", item.folder)])


def _acquisition(pdf: _ReportPDF, data: ReportData, item: EvidenceItem) -> None:
    if item.source is not None:
        pdf.heading("Source", 3)
        pdf.key_values(t.source_rows(item.source))
    pdf.heading("Acquisition", 3)
    if item.acquisition is None:
        pdf.paragraph("No acquisition log was found for this item.", 9)
    else:
        pdf.key_values(t.acquisition_rows(item.acquisition))
        if t.run_rows(item.acquisition):
            pdf.heading("Acquisition history (every run, oldest first)", 3)
            pdf.key_values(t.run_rows(item.acquisition))
    if item.signatures:
        pdf.key_values(t.signature_rows(item))


def _read_errors(pdf: _ReportPDF, data: ReportData, item: EvidenceItem) -> None:
    acq = item.acquisition
    if acq is not None:
        pdf.paragraph(t.read_error_text(acq), 9, bold=bool(acq.read_errors),
                      color=_RED if acq.read_errors else None)


def _item_verifications(pdf: _ReportPDF, data: ReportData, item: EvidenceItem) -> None:
    _verifications(pdf, data.verifications_of(item.evidence_id))


def _item_exports(pdf: _ReportPDF, data: ReportData, item: EvidenceItem) -> None:
    _exports(pdf, data.exports_of(item.evidence_id))


def _hashes(pdf: _ReportPDF, data: ReportData, item: EvidenceItem) -> None:
    acq = item.acquisition
    if acq is None:
        return
    pdf.hash_table(acq.media_hashes, "Media hashes (whole acquired media)")
    pdf.hash_table(acq.source_hashes,
                   f"Source hashes (first {t.size(acq.source_hashed_size)}, before padding)")
    pdf.hash_table(acq.verification_hashes, "Hashes computed by verification after writing")
    for out in acq.outputs:
        if out.hashes:
            pdf.hash_table(out.hashes, f"Output file {out.path} - {t.size(out.size)}")
        else:
            pdf.paragraph(f"Output file {out.path} - {t.size(out.size)}", 9)


def _verifications(pdf: _ReportPDF, items: Sequence[Verification]) -> None:
    if not items:
        return
    pdf.heading(t.SECTION_TITLES["verification"], 3)
    for v in items:
        pdf.paragraph(t.verification_summary(v), 9, bold=True,
                      color=_RED if t.flagged(v) else None)
        if v.details:
            pdf.key_values(list(v.details))
        pdf.hash_table(v.hashes)


def _exports(pdf: _ReportPDF, items: Sequence[Export]) -> None:
    if not items:
        return
    pdf.heading(t.SECTION_TITLES["exports"], 3)
    for e in items:
        pdf.paragraph(t.export_summary(e), 9, bold=True, color=_RED if t.flagged(e) else None)
        pdf.key_values([("Manifest", e.manifest or "-"), *e.details])
        hashes = []
        if e.manifest_sha256:
            hashes.append(HashValue("sha256", e.manifest_sha256))
        if e.recorded_sha256 and e.recorded_sha256 != e.manifest_sha256:
            hashes.append(HashValue("recorded", e.recorded_sha256))
        pdf.hash_table(hashes, "Manifest hash")


def _custody(pdf: _ReportPDF, data: ReportData) -> None:
    pdf.heading(t.SECTION_TITLES["custody"])
    if not data.custody:
        pdf.paragraph("The custody log holds no entries.")
        return
    pdf.set_font(_SANS, "", 8.5)
    head = FontFace(emphasis="B", fill_color=_GREY_FILL)
    detail = FontFace(family=_MONO, size_pt=7)
    suspect = FontFace(color=_RED, emphasis="B")
    widths = (10, 42, 36, 32, pdf.epw - 120)
    with pdf.table(col_widths=widths, text_align="LEFT", headings_style=head, line_height=4.2,
                   padding=1.1, cell_fill_mode=TableCellFillMode.NONE) as table:
        row = table.row()
        for title in ("#", "Recorded", "Actor", "Action", "Evidence"):
            row.cell(title)
        for entry in data.custody:
            style = suspect if entry.suspect else None
            row = table.row()
            row.cell(t.text(entry.seq), style=style)
            row.cell(t.when(entry.time), style=style)
            row.cell(t.text(entry.actor), style=style)
            action = entry.action + (" (UNRELIABLE)" if entry.suspect else "")
            row.cell(action, style=style)
            row.cell(t.text(entry.evidence_id), style=style)
            if entry.details:
                row = table.row()
                row.cell("\n".join(t.custody_detail_lines(entry)), colspan=5, style=detail)
    pdf.ln(2)


def _custody_and_integrity(pdf: _ReportPDF, data: ReportData) -> None:
    _custody(pdf, data)
    _integrity(pdf, data)


def _integrity(pdf: _ReportPDF, data: ReportData) -> None:
    check = data.integrity
    pdf.heading("Custody log integrity", 2)
    bad = not check.ok
    pdf.paragraph(check.statement(), 9.5, bold=bad, color=_RED if bad else None)
    pdf.key_values(t.integrity_rows(check))


def _signatures(pdf: _ReportPDF, data: ReportData) -> None:
    if pdf.will_page_break(90):
        pdf.add_page()
    pdf.heading(t.SECTION_TITLES["signature"])
    pdf.paragraph("I certify that this report is a true account of the examination and of the "
                  "chain of custody recorded for this case.", 9)
    for role, name in (("Examiner", data.examiner), ("Reviewer", "")):
        pdf.ln(6)
        pdf.set_font(_SANS, "B", 10)
        pdf.cell(0, 6, role, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.set_font(_SANS, "", 9.5)
        for label, value in (("Name", name), ("Signature", ""), ("Date (UTC)", "")):
            pdf.ln(5)
            pdf.cell(28, 7, f"{label}:", new_x=XPos.RIGHT)
            x, y = pdf.get_x(), pdf.get_y() + 7
            pdf.cell(110, 7, value, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
            pdf.line(x, y, x + 110, y)


_CASE_SECTIONS: dict[str, Callable[[_ReportPDF, ReportData], None]] = {
    "summary": _summary,
    "case": _case,
    "custody": _custody_and_integrity,
    "environment": _environment,
    "disclaimer": _disclaimer,
    "signature": _signatures,
}

_ITEM_PARTS: dict[str, Callable[[_ReportPDF, ReportData, EvidenceItem], None]] = {
    "evidence": _folder,
    "acquisition": _acquisition,
    "hashes": _hashes,
    "read-errors": _read_errors,
    "verification": _item_verifications,
    "exports": _item_exports,
}
