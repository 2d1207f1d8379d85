"""``bitwitness acquire``: image a drive or a file into E01 or raw, read-only and bit-exact.

A thin adapter: options become an :class:`~bitwitness.acquire.engine.AcquisitionRequest`, the
engine does the work through the CLI mediator, and the result is rendered here (one summary, or
one JSON document with ``--json``). Exit status: 0 complete; 1 unreadable sectors or a failed
verification; 2 refused (existing output, destination on the source, bad option, full disk);
130 interrupted.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from bitwitness.cli.output import (
    PIECE_SIZE,
    check_output_path,
    escape,
    json_option,
    print_json,
    to_jsonable,
)
from bitwitness.ewf.options import COMPRESSION_NAMES, DEFAULT_SEGMENT_SIZE
from bitwitness.signals import shielded
from bitwitness.verdict import Verdict

if TYPE_CHECKING:
    from bitwitness.cli.output import TextConsole

@click.command("acquire")
@click.argument("source", type=click.Path(path_type=Path, dir_okay=False))
@click.option("-o", "--output", type=click.Path(path_type=Path),
              help="Output base name: BASE.E01... or BASE.raw / BASE.001..., BASE.json, BASE.txt.")
@click.option("--case", "case_dir", type=click.Path(path_type=Path, file_okay=False),
              help="Acquire into this case folder (with --evidence).")
@click.option("--evidence", "evidence_id", help="Evidence ID inside the case (folder and base).")
@click.option("--format", "fmt", type=click.Choice(["e01", "raw"]), default="e01",
              show_default=True, help="Image format.")
@click.option("--hash", "hashes", default="md5,sha1,sha256", show_default=True,
              help="Hashes of the media (E01 always adds md5 and sha1, which it stores).")
@click.option("--compress", type=click.Choice(COMPRESSION_NAMES), default="fast", show_default=True,
              help="E01 chunk compression.")
@click.option("--segment-size", type=PIECE_SIZE, default=f"{DEFAULT_SEGMENT_SIZE >> 20}MiB",
              show_default=True,
              help="E01 segment file size.")
@click.option("--split", type=PIECE_SIZE,
              help="Raw: split into BASE.001, BASE.002... of this size.")
@click.option("--sector-size", type=click.Choice(["512", "1024", "2048", "4096"]),
              help="Bytes per sector (default: the device's logical sector size, 512 for files).")
@click.option("--chunk-sectors", type=int, default=64, show_default=True,
              help="E01 sectors per chunk.")
@click.option("--case-number", help="Case number (overrides the case's).")
@click.option("--evidence-number", help="Evidence number (default with --case: the ID).")
@click.option("--examiner", help="Examiner name (overrides the case's).")
@click.option("--description", help="Description of the evidence.")
@click.option("--notes", help="Notes.")
@click.option("--write-blocker", metavar="TEXT",
              help="The write-blocker between the source and this machine (make, model, serial; "
                   "'none' to record that there was none); recorded in the logs and reports.")
@click.option("--retries", type=click.IntRange(min=0), default=2, show_default=True,
              help="Extra attempts for a failed read, down to single sectors.")
@click.option("--verify", is_flag=True, help="Read the finished image back and compare hashes.")
@click.option("--second-output", type=click.Path(path_type=Path),
              help="Write a second identical copy (another base) in the same pass.")
@click.option("--resume", is_flag=True, help="Continue an interrupted acquisition of BASE.")
@click.option("--overwrite", is_flag=True, help="Replace existing output files.")
@click.option("--rescue", is_flag=True,
              help="Rescue a failing drive as ddrescue does (good data first: skip past bad "
                   "areas, then trim, scrape and retry) into BASE.raw with a map BASE.map; "
                   "--resume continues it.")
@click.option("--retry-bad", is_flag=True,
              help="With --rescue: re-read only the bad sectors of a finished rescue.")
@click.option("--read-timeout", type=click.FloatRange(min=0, min_open=True), metavar="SECONDS",
              help="A read with no answer within SECONDS is abandoned, logged and counted as "
                   "a read error (a stalling drive).")
@click.option("--allow-mounted", is_flag=True,
              help="Acquire a source that is mounted writable (live; it may change while read; "
                   "logged).")
@json_option
def command(*, source: Path, output: Path | None, case_dir: Path | None, evidence_id: str | None,
            fmt: str, hashes: str, compress: str, segment_size: int, split: int | None,
            sector_size: str | None, chunk_sectors: int, case_number: str | None,
            evidence_number: str | None, examiner: str | None, description: str | None,
            notes: str | None, write_blocker: str | None, retries: int, verify: bool,
            second_output: Path | None, resume: bool, overwrite: bool, rescue: bool,
            retry_bad: bool, read_timeout: float | None, allow_mounted: bool,
            as_json: bool) -> int:
    """Image SOURCE (a block device or a file) read-only into E01 or raw.

    Unreadable sectors are retried, zero-filled and listed in the logs (exit 1). Ctrl-C stops
    cleanly (exit 130) and leaves the output marked unfinished; --resume continues it.
    """
    from bitwitness.acquire.engine import AcquisitionRequest, CaseTarget, OutputFormat, acquire
    from bitwitness.cli.progress import cli_mediator
    from bitwitness.errors import Interrupted, UsageError
    from bitwitness.hashing import parse_algorithms

    if (case_dir is None) != (evidence_id is None):
        raise UsageError("--case and --evidence go together")
    if (output is None) == (case_dir is None):
        raise UsageError("give either -o OUTPUT_BASE or --case CASE_DIR --evidence ID")
    for base in (output, second_output):
        if base is not None:
            check_output_path(base)
    metadata = {k: v for k, v in {"case_number": case_number, "evidence_number": evidence_number,
                                  "examiner": examiner, "description": description,
                                  "notes": notes, "write_blocker": write_blocker}.items() if v}
    request = AcquisitionRequest(
        source=source.absolute(), output=output,
        case=CaseTarget(case_dir, evidence_id) if case_dir is not None and evidence_id is not None
        else None,
        format=OutputFormat(fmt), hashes=parse_algorithms(hashes), compression=compress,
        segment_size=segment_size, split=split,
        sector_size=int(sector_size) if sector_size else None, chunk_sectors=chunk_sectors,
        metadata=metadata, retries=retries, verify=verify, second_output=second_output,
        resume=resume, overwrite=overwrite, allow_mounted=allow_mounted,
        read_timeout=read_timeout)
    if retry_bad and not rescue:
        raise UsageError("--retry-bad goes with --rescue")
    if rescue and fmt == "e01" and click.get_current_context().get_parameter_source(
            "fmt") is not click.core.ParameterSource.DEFAULT:
        raise UsageError("--rescue writes a raw image (convert it to E01 when finished)")
    from bitwitness import signing

    signing.prepare(case_dir)  # a wrong passphrase fails now, not after hours of reading
    with cli_mediator(as_json) as mediator:
        if rescue:
            from dataclasses import replace

            from bitwitness.acquire.rescue import RescueOptions
            from bitwitness.acquire.rescue import rescue as rescue_drive

            result = rescue_drive(replace(request, format=OutputFormat.RAW), mediator,
                                  RescueOptions(retry_bad=retry_bad))
        else:
            result = acquire(request, mediator)
    signatures = signing.sign_with_session(
        [p for p in (result.log_json, result.log_text) if p is not None])
    stamps = _timestamp(result, case_dir)
    # the outcome is decided and logged: a late signal (the second Ctrl-C) must not cut its
    # summary, or a --json document, in half
    with shielded():
        if as_json:
            print_json({**result_document(result), "signatures": signatures,
                        "timestamps": [{"file": s.path, "token": s.token, "time": s.time,
                                        "error": s.error} for s in stamps]})
        else:
            render(result)
            from bitwitness.cli.output import render_proofs

            render_proofs(signatures, stamps, indent="  ")
    if result.status.value == "interrupted":
        raise Interrupted(f"interrupted: the output is left unfinished and marked so in "
                          f"{result.log_json} (continue with --resume)")
    return int(result.exit_code)


def _timestamp(result: Any, case_dir: Path | None) -> list[Any]:
    """RFC 3161 tokens for the log (and the case's anchor) when the lab configured a TSA."""
    from bitwitness import timestamping

    if result.status.value in ("failed", "interrupted"):
        return []
    root = None
    if case_dir is not None:
        from bitwitness.case import Case

        root = Case.load(case_dir).root
    return timestamping.stamp_outputs([p for p in (result.log_json,) if p is not None], root)


def result_document(result: Any) -> dict[str, Any]:
    """The ``--json`` document: the result record plus the exit code."""
    doc = to_jsonable(result)
    doc["read_errors"] = [{"first_sector": f, "sector_count": c} for f, c in result.read_errors]
    doc["source"].pop("device", None)
    doc["exit_code"] = int(result.exit_code)
    return doc


def render(result: Any) -> None:
    """The human summary, printed once at the end."""
    from bitwitness.cli.output import stdout  # made on first use: not needed with --json
    from bitwitness.sizes import format_size

    colour = {"completed": "green", "completed-with-errors": "red",
              "interrupted": "yellow", "failed": "red"}[result.status.value]
    seconds = max((result.ended - result.started).total_seconds(), 1e-6)
    stdout.print(f"[bold {colour}]{result.status.value.upper()}[/]  {escape(result.source.path)}"
                 f" -> {escape(str(result.base))} ({result.format.value})")
    stdout.print(f"  media: {result.media_size} bytes ({format_size(result.media_size)}), "
                 f"{result.sector_size}-byte sectors")
    imaged = "" if result.media_bytes_done >= result.media_size else \
        f" (the image holds media bytes 0-{result.media_bytes_done - 1} only)"
    if result.rescue and result.media_bytes_done < result.media_size:
        imaged = (f" ({result.media_bytes_done} bytes rescued so far: see the map "
                  f"{escape(str(result.base))}.map)")
    stdout.print(f"  read: {result.bytes_read} bytes ({format_size(result.bytes_read)}) in "
                 f"{seconds:.1f} s, {format_size(int(result.bytes_read / seconds))}/s{imaged}")
    if result.resumed_from is not None:
        stdout.print(f"  resumed at media byte {result.resumed_from}")
    _render_hashes(result, stdout)
    _render_errors(result, stdout)
    for item in result.verification:
        style = "green" if item.verdict is Verdict.VERIFIED else "bold red"
        stdout.print(f"  verify {escape(str(item.path))}: [{style}]{item.verdict}[/] "
                     f"{escape(item.detail)}")
    for out in result.outputs:
        stdout.print(f"  wrote {escape(str(out.path))} ({out.size} bytes)")
    stdout.print(f"  logs: {escape(str(result.log_json))}, {escape(str(result.log_text))}")
    for warning in result.warnings:
        stdout.print(f"[bold yellow]  warning:[/] {escape(warning)}")


def _render_hashes(result: Any, stdout: TextConsole) -> None:
    for name, value in result.hashes.items():
        stdout.print(f"  {name:<7}{value}")
    if result.source_hashes:
        stdout.print("  source's own bytes (before padding to whole sectors):")
        for name, value in result.source_hashes.items():
            stdout.print(f"  {name:<7}{value}")


def _render_errors(result: Any, stdout: TextConsole) -> None:
    if not result.read_errors:
        return
    stdout.print(f"[bold red]  {result.bad_sectors} unreadable sector(s) "
                 f"({result.bytes_zero_filled} bytes), zero-filled:[/]")
    for first, count in result.read_errors[:20]:
        stdout.print(f"    sectors {first}-{first + count - 1} ({count})")
    if len(result.read_errors) > 20:
        stdout.print(f"    ... {len(result.read_errors) - 20} more ranges in the log")
