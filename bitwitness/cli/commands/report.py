"""``bitwitness report``: write a chain-of-custody report (PDF, HTML, JSON, CASE/UCO JSON-LD,
DFXML) for a case.

A thin adapter over :mod:`bitwitness.report`: gather the case, write the files, record each one's
SHA-256 in the custody log, and say where they are. Exit status: 0 when written and recorded;
1 when the report was written but the evidence has a problem it states (the custody log is
tampered with or the case file changed; the report says so on its first page) or when the custody
log refused to record it; 2 for usage errors, including an existing file without ``--overwrite``.
"""

from __future__ import annotations

from pathlib import Path

import click

from bitwitness.cli.output import check_output_path, escape, json_option, print_json, stdout, warn
from bitwitness.errors import ExitCode


@click.command("report")
@click.argument("case_dir", type=click.Path(path_type=Path, file_okay=False))
@click.option("--format", "fmt", type=click.Choice(["pdf", "html", "json", "case", "dfxml", "all"]),
              default="pdf", show_default=True,
              help="Report format: case is CASE/UCO JSON-LD, dfxml is Digital Forensics XML; "
                   "'all' writes pdf, html and json.")
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False),
              help="Output file (with --format all: base name, each format adds its extension). "
                   "Default: CASE_DIR/reports/report-<case>-<UTC time>.<ext>.")
@click.option("--evidence", "evidence_id", metavar="ID",
              help="Report on this evidence item only (the custody timeline stays complete).")
@click.option("--overwrite", is_flag=True, help="Replace existing report files.")
@json_option
def command(*, case_dir: Path, fmt: str, output: Path | None, evidence_id: str | None,
            overwrite: bool, as_json: bool) -> int:
    """Write a chain-of-custody report for CASE_DIR and record its SHA-256 in the custody log.

    A tampered custody log is stated on the first page and the report is still written
    (exit status 1).
    """
    from bitwitness.case import Case
    from bitwitness.report.gather import gather
    from bitwitness.report.writer import ALL_FORMATS, ReportFormat, target_paths, write_reports

    if output is not None:
        check_output_path(output)
    from bitwitness import signing

    case = Case.load(case_dir)
    signing.prepare(case.root)  # a signed case needs the key: ask before rendering
    data = gather(case.root, evidence_id=evidence_id)
    formats = list(ALL_FORMATS) if fmt == "all" else [ReportFormat(fmt)]
    targets = target_paths(formats, reports_dir=case.reports_dir, output=output, data=data)

    def record(report_format: ReportFormat, path: Path, sha256: str) -> int | None:
        event = case.record("report", evidence_id=evidence_id, details={
            "format": report_format.value, "path": str(path.absolute()), "sha256": sha256})
        return event.seq

    written = write_reports(data, targets, overwrite=overwrite, record=record)
    signatures = signing.sign_with_session([w.path for w in written])
    from bitwitness import timestamping

    stamps = timestamping.stamp_outputs([w.path for w in written], case.root)
    problem = not data.integrity.ok or not all(w.recorded for w in written)
    if as_json:
        print_json({
            "case_dir": case.root,
            "integrity": {"state": data.integrity.state, "ok": data.integrity.ok,
                          "statement": data.integrity.statement(),
                          "signer": data.integrity.signer},
            "reports": written,
            "signatures": signatures,
            "timestamps": [{"file": s.path, "token": s.token, "time": s.time, "error": s.error}
                           for s in stamps],
        })
    else:
        if data.integrity.signer:
            stdout.print(f"Custody anchor signed by {escape(data.integrity.signer)}")
        for w in written:
            stdout.print(f"{w.format.value.upper():4} {escape(str(w.path))}")
            stdout.print(f"     sha256 {w.sha256}"
                         + (f" (custody event {w.custody_seq})" if w.recorded else ""))
        from bitwitness.cli.output import render_proofs

        render_proofs(signatures, stamps, indent="     ")
        if not data.integrity.ok:
            warn(data.integrity.statement())
        for w in written:
            if not w.recorded:
                warn(f"{w.path} was written but NOT recorded in the custody log: "
                     f"{w.not_recorded_reason}")
    return int(ExitCode.EVIDENCE if problem else ExitCode.OK)
