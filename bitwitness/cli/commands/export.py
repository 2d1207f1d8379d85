"""``bitwitness export``: copy files and folders out of an image with a hashed manifest."""

from __future__ import annotations

import csv
import itertools
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import click

from bitwitness.cli.commands._browse import (
    fs_options,
    image_argument,
    image_state,
    opened_checked,
    printable,
    selection,
    selection_options,
)
from bitwitness.cli.output import (
    check_output_path,
    escape,
    json_option,
    print_json,
    render_proofs,
    stamp_documents,
    stdout,
)
from bitwitness.cli.progress import cli_mediator
from bitwitness.errors import NotRecoveredError, UsageError


@click.command("export")
@image_argument
@click.argument("paths", nargs=-1, required=True)
@click.option("--to", "destination", required=True, type=click.Path(path_type=Path),
              help="Folder to export into (created if missing).")
@fs_options
@selection_options
@click.option("--case", "case_dir", type=click.Path(path_type=Path), default=None,
              help="Record a custody event in this case.")
@click.option("--evidence", "evidence_id", default=None,
              help="Evidence ID for the custody event (default: the item holding IMAGE).")
@click.option("--overwrite", is_flag=True, help="Replace files that already exist in --to.")
@json_option
def command(*, image: Path, paths: tuple[str, ...], destination: Path, partition: int | str | None,
            offset: int | None, deleted_only: bool, show_all: bool, case_dir: Path | None,
            evidence_id: str | None, overwrite: bool, as_json: bool) -> None:
    """Export PATHS (files or whole folders) from IMAGE into --to, read-only.

    Paths are recreated under --to with unsafe names escaped (%XX); nothing is written outside
    it and nothing existing is replaced without --overwrite. manifest.json and manifest.csv list
    every file with inode, size, MACB times (UTC), MD5 and SHA-256. Folders export their
    allocated entries; --all adds deleted ones.
    """
    from bitwitness.image import image_files
    from bitwitness.report.browse.export import export, manifest_document, record_custody

    check_output_path(destination, folder=True)
    if case_dir is not None:
        from bitwitness.case import Case

        _check_evidence(Case.load(case_dir), evidence_id)  # fails before anything is written
        from bitwitness import signing

        signing.prepare(case_dir)  # a case that trusts keys: the export's event must be signed
    elif evidence_id is not None:
        raise UsageError("--evidence names an item of a case: give --case too")
    chosen = selection(deleted_only, show_all)
    with opened_checked(image, partition, offset) as (fs, unreadable), \
            cli_mediator(as_json) as mediator:
        result = export(fs, paths, destination, image=image.absolute(),
                        image_files=[p.absolute() for p in image_files(image)],
                        selection=chosen, overwrite=overwrite, mediator=mediator,
                        unreadable=unreadable, image_state=image_state())
    event = None
    stamps: list[Any] = []
    if case_dir is not None:
        event = record_custody(case_dir, result, evidence_id=evidence_id, paths=paths)
        from bitwitness import timestamping

        # the manifest and the anchor that now records its hash, when the lab has a TSA
        stamps = timestamping.stamp_outputs([Path(result.manifest_json)],
                                            Path(case_dir).absolute())
    if as_json:
        document = manifest_document(result)  # names as in the manifest: text plus exact hex
        print_json({"destination": result.destination, "files": document["files"],
                    "folders": document["folders"], "failed": document["failed"],
                    "no_content": document["no_content"],
                    "manifest_json": result.manifest_json,
                    "manifest_csv": result.manifest_csv,
                    "manifest_sha256": result.manifest_sha256,
                    "custody_event": event.seq if event is not None else None,
                    "timestamps": stamp_documents(stamps)})
    else:
        _print_result(result, event, case_dir)
        render_proofs([], stamps, indent="")
    if result.failed:
        from bitwitness.report.browse.export import EXPORTED_BUT

        doubted = sum(1 for f in result.failed if f.reason.startswith(EXPORTED_BUT))
        missing = len(result.failed) - doubted
        said = [f"{missing} file(s) not exported"] if missing else []
        said += [f"{doubted} file(s) exported with a doubt about their content"] if doubted else []
        raise NotRecoveredError(f"{', '.join(said)} (listed under 'failed' in "
                                f"{result.manifest_json})")


def _print_result(result: Any, event: Any, case_dir: Path | None) -> None:
    from bitwitness.report.browse.export import EXPORTED_BUT

    _print_files(result.manifest_csv)
    for failure in result.failed:
        label = "DOUBTED" if failure.reason.startswith(EXPORTED_BUT) else "NOT EXPORTED"
        stdout.print(f"{label}  {escape(printable(failure.source))}: "
                     f"{escape(printable(failure.reason))}")
    for empty in result.no_content:
        stdout.print(f"NO CONTENT  {escape(printable(empty.source))}: "
                     f"{escape(printable(empty.reason))}")
    stdout.print(f"exported {result.file_count} file(s), {result.folder_count} folder(s) to "
                 f"{escape(str(result.destination))}")
    stdout.print(f"manifest: {escape(str(result.manifest_json))} (sha256 "
                 f"{result.manifest_sha256})")
    if event is not None:
        stdout.print(f"custody event {event.seq} recorded in {escape(str(case_dir))}")


def _check_evidence(case: Any, evidence_id: str | None) -> None:
    """An ``--evidence`` ID must name an item of the case: a typo must not enter the custody log."""
    if evidence_id is None:
        return
    known = [item.id for item in case.evidence_items()]
    if evidence_id not in known:
        raise UsageError(f"no evidence item {evidence_id!r} in {case.root} "
                         f"(items: {', '.join(known) or 'none'})")


def _print_files(manifest_csv: Path) -> None:
    """``SHA-256  target`` for each exported file, read back from ``manifest.csv`` a row at a
    time (memory stays flat at any file count) and written as plain text, many lines per
    write: rich's rendering of one line per file took a quarter of an export of small files.
    Targets are ``%XX``-escaped names (no markup, no control characters), so rich printed them
    unchanged too. (``shown`` is what :func:`printable` calls, taken once rather than per row.)"""
    from bitwitness.report.browse.safenames import shown

    with manifest_csv.open(newline="", encoding="utf-8") as fh:
        reader = _csv_rows(fh)
        header = next(reader)
        sha256, target = header.index("sha256"), header.index("target")
        out = sys.stdout
        lines: list[str] = []
        for row in reader:
            lines.append(f"{row[sha256]}  {shown(row[target])}\n")
            if len(lines) == 256:
                out.write("".join(lines))
                lines.clear()
        out.write("".join(lines))
        out.flush()


def _csv_rows(fh: IO[str]) -> Iterator[list[str]]:
    """The rows ``csv.reader`` gives for ``fh`` (opened with ``newline=""``), a line without a
    quote (or NUL) split by hand. Why: csv.reader was most of the listing's time, and nearly
    every row has no quote; csv.writer quotes every field holding a comma, a quote or a line
    end, so such a line is one whole row (any other goes to csv.reader, which reads on through
    the lines of a quoted line end)."""
    for line in fh:
        if '"' in line or "\0" in line:
            yield next(csv.reader(itertools.chain((line,), fh)))
        else:
            fields = line.rstrip("\r\n")
            yield fields.split(",") if fields else []
