"""The HTML report: one self-contained file that prints well.

No external assets of any kind (no scripts, images, fonts, links or ``url()``): the file must read
the same in ten years on an offline machine. All CSS is inline in one ``<style>`` element with an
``@media print`` block (A4 margins, no background colours lost on the integrity banner, tables not
split mid-row). Every value from the case is written in its visible spelling
(:func:`bitwitness.report.text.visible`: control and bidirectional characters as the terminal
shows them) and then escaped with :func:`html.escape`; nothing from the case is ever emitted as
markup.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from html import escape

from bitwitness.report import text as t
from bitwitness.report.model import (
    ITEM_SECTIONS,
    EvidenceItem,
    Export,
    HashValue,
    ReportData,
    Verification,
)

_CSS = """
body { font-family: "DejaVu Sans", "Noto Sans", Arial, sans-serif; font-size: 10.5pt;
       color: #111; max-width: 60em; margin: 2em auto; padding: 0 1em; line-height: 1.35; }
header.title { text-align: center; margin-bottom: 1.5em; }
.agency { font-weight: bold; white-space: pre-line; font-size: 12pt; }
h1 { font-size: 20pt; margin: .6em 0 .2em; }
h2 { font-size: 14pt; border-bottom: 1px solid #444; margin-top: 1.6em; }
h3 { font-size: 12pt; margin-top: 1.2em; }
h4 { font-size: 10.5pt; margin: .9em 0 .3em; }
table { border-collapse: collapse; width: 100%; margin: .3em 0 .8em; }
th, td { border: 1px solid #999; padding: 2px 5px; text-align: left; vertical-align: top; }
table.kv td { white-space: pre-line; }
th { background: #eee; }
table.kv th { width: 30%; }
.mono, table.hashes td.value { font-family: "DejaVu Sans Mono", Consolas, monospace;
       font-size: 9pt; overflow-wrap: anywhere; }
.details { font-family: "DejaVu Sans Mono", Consolas, monospace; font-size: 8pt;
       white-space: pre-wrap; overflow-wrap: anywhere; color: #333; }
.integrity { border: 2px solid; padding: .6em .8em; margin: 1em 0; font-weight: bold; }
.integrity.ok { border-color: #286e3c; background: #e2f2e6; font-weight: normal; }
.integrity.bad { border-color: #b00020; background: #fde4e4; color: #b00020; font-size: 12pt; }
.integrity.acknowledged { border-color: #8a5a00; background: #fff4d6; }
.problem, .bad-verdict, tr.suspect td { color: #b00020; font-weight: bold; }
.signature { display: flex; gap: 3em; margin-top: 2.5em; }
.signature div { flex: 1; }
.line { border-bottom: 1px solid #000; height: 2em; margin-bottom: .2em; }
footer { margin-top: 3em; font-size: 8.5pt; color: #555; border-top: 1px solid #999; }
@media print {
  @page { size: A4; margin: 18mm 16mm 20mm; }
  body { max-width: none; margin: 0; padding: 0; font-size: 9.5pt; }
  h2 { break-after: avoid; }
  h3, h4 { break-after: avoid; }
  tr, .integrity, .signature { break-inside: avoid; }
  thead { display: table-header-group; }
  .integrity, th { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
}
"""


def _e(value: object) -> str:
    """Any value for the document: its visible spelling first (no raw control character, which
    XML and HTML forbid or browsers fold, no bidirectional override), then HTML-escaped."""
    return escape(t.visible(str(value)), quote=True)


def _kv(rows: Sequence[tuple[str, str]]) -> str:
    body = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows)
    return f'<table class="kv">{body}</table>'


def _hashes(hashes: Sequence[HashValue], caption: str = "") -> str:
    if not hashes:
        return ""
    cap = f"<h4>{_e(caption)}</h4>" if caption else ""
    body = "".join(
        f'<tr><td>{_e(h.algorithm.upper())}</td><td class="value">{_e(h.value)}</td></tr>'
        for h in hashes
    )
    return (f'{cap}<table class="hashes"><thead><tr><th>Algorithm</th><th>Hash value</th></tr>'
            f"</thead><tbody>{body}</tbody></table>")


def render_html(data: ReportData) -> bytes:
    """The report as one UTF-8 HTML document (sections in the template's order, as the PDF)."""
    parts = [_head(data), _title(data)]
    items_done = False
    for section in data.settings.sections:
        if section in ITEM_SECTIONS:
            if not items_done:
                parts.append(_evidence(data))
                items_done = True
        elif section in _CASE_SECTIONS:
            parts.append(_CASE_SECTIONS[section](data))
    parts.append(f"<footer>{_e(data.settings.title)} - case {_e(data.case_number)} - generated "
                 f"{_e(t.when(data.generated))} by BitWitness {_e(data.tool_version)}</footer>"
                 "</body></html>\n")
    return "".join(parts).encode("utf-8")


def _section(name: str, body: str) -> str:
    return f'<section id="{_e(name)}"><h2>{_e(t.SECTION_TITLES[name])}</h2>{body}</section>'


def _summary(data: ReportData) -> str:
    return _section("summary", "".join(f"<p>{_e(line)}</p>" for line in t.summary_lines(data)))


def _case(data: ReportData) -> str:
    return _section("case", _kv(t.case_rows(data)))


def _environment(data: ReportData) -> str:
    return _section("environment", _kv(t.environment_rows(data)))


def _disclaimer(data: ReportData) -> str:
    if not data.settings.disclaimer:
        return ""
    return _section("disclaimer",
                    f'<p style="white-space: pre-line">{_e(data.settings.disclaimer)}</p>')


def _head(data: ReportData) -> str:
    title = f"{data.settings.title} - case {data.case_number}"
    return ('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="generator" content="BitWitness {_e(data.tool_version)}">'
            f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>")


def _title(data: ReportData) -> str:
    agency = (f'<div class="agency">{_e(data.settings.agency_header)}</div>'
              if data.settings.agency_header else "")
    bad = not data.integrity.ok
    state = "bad" if bad else "acknowledged" if data.integrity.acknowledged else "ok"
    banner = (f'<div class="integrity {state}" id="integrity-status" '
              f'role="{"alert" if bad else "status"}">{_e(data.integrity.statement())}</div>')
    rows = t.title_rows(data)
    return (f'<header class="title">{agency}<h1>{_e(data.settings.title)}</h1>'
            f"<div>Case {_e(data.case_number)}</div></header>{banner}{_kv(rows)}")


def _evidence(data: ReportData) -> str:
    out = [f"<section id=\"evidence\"><h2>{_e(t.SECTION_TITLES['evidence'])}</h2>"]
    if not data.evidence:
        out.append("<p>The case holds no evidence items.</p>")
    out.extend(_item(data, item) for item in data.evidence)
    other_v, other_e = data.unassigned()
    other_v = other_v if data.shows("verification") else ()
    other_e = other_e if data.shows("exports") else ()
    if other_v or other_e:
        out.append("<h3>Not tied to an evidence item</h3>")
        out.append(_verifications(other_v))
        out.append(_exports(other_e))
    out.append("</section>")
    return "".join(out)


def _item(data: ReportData, item: EvidenceItem) -> str:
    out = [f"<h3>{_e(t.item_heading(item))}</h3>"]
    out += [f'<p class="problem">Problem: {_e(p)}</p>' for p in item.problems]
    sections = [s for s in data.settings.sections if s in ITEM_SECTIONS]
    if data.shows("exports") and "exports" not in sections:
        sections.append("exports")
    out.extend(_ITEM_PARTS[section](data, item) for section in sections)
    return "".join(out)


def _folder(data: ReportData, item: EvidenceItem) -> str:
    return _kv([("Evidence folder", item.folder)])


def _acquisition(data: ReportData, item: EvidenceItem) -> str:
    out = []
    if item.source is not None:
        out.append("<h4>Source</h4>" + _kv(t.source_rows(item.source)))
    out.append("<h4>Acquisition</h4>")
    if item.acquisition is None:
        out.append("<p>No acquisition log was found for this item.</p>")
    else:
        out.append(_kv(t.acquisition_rows(item.acquisition)))
        if t.run_rows(item.acquisition):
            out.append("<h4>Acquisition history (every run, oldest first)</h4>"
                       + _kv(t.run_rows(item.acquisition)))
    if item.signatures:
        out.append(_kv(t.signature_rows(item)))
    return "".join(out)


def _item_hashes(data: ReportData, item: EvidenceItem) -> str:
    acq = item.acquisition
    if acq is None:
        return ""
    out = [
        _hashes(acq.media_hashes, "Media hashes (whole acquired media)"),
        _hashes(acq.source_hashes,
                f"Source hashes (first {t.size(acq.source_hashed_size)}, before padding)"),
        _hashes(acq.verification_hashes, "Hashes computed by verification after writing"),
    ]
    for f in acq.outputs:
        caption = f"Output file {f.path} - {t.size(f.size)}"
        out.append(_hashes(f.hashes, caption) if f.hashes else f"<p>{_e(caption)}</p>")
    return "".join(out)


def _read_errors(data: ReportData, item: EvidenceItem) -> str:
    acq = item.acquisition
    if acq is None:
        return ""
    cls = ' class="problem"' if acq.read_errors else ""
    return f"<p{cls}>{_e(t.read_error_text(acq))}</p>"


def _verifications(items: Sequence[Verification]) -> str:
    if not items:
        return ""
    out = [f"<h4>{_e(t.SECTION_TITLES['verification'])}</h4>"]
    for v in items:
        cls = "bad-verdict" if t.flagged(v) else ""
        out.append(f'<p class="{cls}"><strong>{_e(t.verification_summary(v))}</strong></p>')
        if v.details:
            out.append(_kv(list(v.details)))
        out.append(_hashes(v.hashes))
    return "".join(out)


def _exports(items: Sequence[Export]) -> str:
    if not items:
        return ""
    out = [f"<h4>{_e(t.SECTION_TITLES['exports'])}</h4>"]
    for e in items:
        cls = "problem" if t.flagged(e) else ""
        out.append(f'<p class="{cls}"><strong>{_e(t.export_summary(e))}</strong></p>')
        out.append(_kv([("Manifest", e.manifest or "-"), *e.details]))
        hashes = [HashValue("sha256", e.manifest_sha256)] if e.manifest_sha256 else []
        if e.recorded_sha256 and e.recorded_sha256 != e.manifest_sha256:
            hashes.append(HashValue("recorded", e.recorded_sha256))
        out.append(_hashes(hashes, "Manifest hash"))
    return "".join(out)


def _custody(data: ReportData) -> str:
    out = [f"<section id=\"custody\"><h2>{_e(t.SECTION_TITLES['custody'])}</h2>"]
    if not data.custody:
        out.append("<p>The custody log holds no entries.</p>")
        out.append(_integrity(data) + "</section>")
        return "".join(out)
    out.append('<table class="custody"><thead><tr><th>#</th><th>Recorded</th><th>Actor</th>'
               "<th>Action</th><th>Evidence</th><th>Details</th></tr></thead><tbody>")
    for entry in data.custody:
        cls = ' class="suspect"' if entry.suspect else ""
        action = entry.action + (" (UNRELIABLE)" if entry.suspect else "")
        details = "\n".join(t.custody_detail_lines(entry))
        out.append(
            f"<tr{cls}><td>{_e(t.text(entry.seq))}</td><td>{_e(t.when(entry.time))}</td>"
            f"<td>{_e(t.text(entry.actor))}</td><td>{_e(action)}</td>"
            f"<td>{_e(t.text(entry.evidence_id))}</td>"
            f'<td class="details">{_e(details)}</td></tr>'
        )
    out.append("</tbody></table>")
    out.append(_integrity(data) + "</section>")
    return "".join(out)


def _integrity(data: ReportData) -> str:
    check = data.integrity
    cls = "bad" if not check.ok else "acknowledged" if check.acknowledged else "ok"
    rows = t.integrity_rows(check)
    return (f'<h3>Custody log integrity</h3><div class="integrity {cls}">'
            f"{_e(check.statement())}</div>{_kv(rows)}")


def _signatures(data: ReportData) -> str:
    blocks = []
    for role, name in (("Examiner", data.examiner), ("Reviewer", "")):
        blocks.append(
            f"<div><h4>{_e(role)}</h4>"
            f'<div class="line">{_e(name)}</div>Name'
            '<div class="line"></div>Signature<div class="line"></div>Date (UTC)</div>'
        )
    return _section("signature",
                    "<p>I certify that this report is a true account of the examination and of "
                    "the chain of custody recorded for this case.</p>"
                    f'<div class="signature">{"".join(blocks)}</div>')


_CASE_SECTIONS: dict[str, Callable[[ReportData], str]] = {
    "summary": _summary,
    "case": _case,
    "custody": _custody,
    "environment": _environment,
    "disclaimer": _disclaimer,
    "signature": _signatures,
}

_ITEM_PARTS: dict[str, Callable[[ReportData, EvidenceItem], str]] = {
    "evidence": _folder,
    "acquisition": _acquisition,
    "hashes": _item_hashes,
    "read-errors": _read_errors,
    "verification": lambda data, item: _verifications(data.verifications_of(item.evidence_id)),
    "exports": lambda data, item: _exports(data.exports_of(item.evidence_id)),
}
