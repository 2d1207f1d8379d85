"""``bitwitness verify``: recompute every recorded hash of one or more images; one verdict each.

A thin adapter over :mod:`bitwitness.verify`: it checks the options, runs the engine with the
command line's mediator and renders the records. Exit status 0 only when every image is VERIFIED
(and both readers agree with ``--second-reader``); 1 for any evidence problem; 2 for usage errors.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from bitwitness.cli.image_options import format_option, max_media_option
from bitwitness.cli.output import (
    escape,
    json_option,
    print_json,
    render_proofs,
    stamp_documents,
    stdout,
    to_jsonable,
)
from bitwitness.cli.progress import cli_mediator
from bitwitness.errors import ExitCode, InputError, UsageError
from bitwitness.sizes import format_size
from bitwitness.verdict import Verdict

if TYPE_CHECKING:
    from bitwitness.verify import ImageVerification

_STYLE = {Verdict.VERIFIED: "bold green", Verdict.UNVERIFIED: "bold yellow"}


@click.command("verify")
@click.argument("images", nargs=-1, type=click.Path(path_type=Path))
@click.option("--against", type=click.Path(path_type=Path), metavar="SOURCE",
              help="Re-read the original device or file (read-only) and compare it byte for "
                   "byte with the image; names the first differing sector range.")
@click.option("--log", "logs", multiple=True, type=click.Path(path_type=Path), metavar="FILE",
              help="A hash log to compare with (BASE.json, md5sum-style sidecar, dc3dd log, "
                   "FTK Imager report); logs next to the image are found on their own.")
@click.option("--second-reader", "--libewf", "second_reader", is_flag=True,
              help="Also recompute through an independent reader (libewf for E01 sets; "
                   "libvhdi/libvmdk or QEMU for virtual disks); any disagreement is an error. "
                   "--libewf is the older name.")
@max_media_option
@format_option
@click.option("--case", "case_dir", type=click.Path(path_type=Path), metavar="CASE_DIR",
              help="Verify every evidence item of a case and record a custody event for each.")
@json_option
def command(images: tuple[Path, ...], *, against: Path | None, logs: tuple[Path, ...],
            second_reader: bool, image_format: str | None, case_dir: Path | None,
            as_json: bool) -> int:
    """Verify IMAGE... (E01 sets, raw, split raw, VHD) against every recorded hash.

    Recorded hashes come from the E01 itself and from logs next to the image or named with
    --log. Verdicts: VERIFIED, MISMATCH, CORRUPT (with sector ranges), INCOMPLETE, UNVERIFIED
    (nothing recorded: the computed hashes are shown). Exit 0 only when all are VERIFIED.
    """
    from bitwitness.verify import VerifyOptions, verify_images
    from bitwitness.verify.casework import verify_case

    _check_options(images, against, logs, case_dir)
    if case_dir is not None:
        from bitwitness import signing

        signing.prepare(case_dir)  # a case that trusts keys: its custody events must be signed
    options = VerifyOptions(logs=logs, against=against, second_reader=second_reader,
                            format=image_format)
    with cli_mediator(as_json) as mediator:
        if case_dir is not None:
            items = verify_case(case_dir, options, mediator)
            results = [item.result for item in items]
            ids: list[str | None] = [item.evidence_id for item in items]
        else:
            results = verify_images(list(images), options, mediator)
            ids = [None] * len(results)
    from bitwitness import signing, timestamping

    # the anchor that now records the verifications, dated when the lab has a TSA
    anchor_stamps = timestamping.stamp_outputs([], case_dir.absolute()) if case_dir else []

    signatures = [signing.check_files(_signable(r)) for r in results]
    tokens = [_tokens(r) for r in results]
    signed_ok = all(s.valid for checks in signatures for s in checks if s.present)
    dated_ok = all(t.valid for checks in tokens for t in checks)
    ok = all(r.ok for r in results) and signed_ok and dated_ok
    if as_json:
        print_json({"verified": ok, "images": [
            {"evidence_id": i, "ok": r.ok, **_jsonable(r),
             "signatures": [s.to_dict() for s in sigs],
             "timestamps": [{"file": t.path, "token": t.token, "valid": t.valid, "time": t.time,
                             "tsa": t.tsa, "reason": t.reason} for t in stamps]}
            for i, r, sigs, stamps in zip(ids, results, signatures, tokens, strict=True)],
            "anchor_timestamps": stamp_documents(anchor_stamps)})
    else:
        for evidence_id, result, sigs, stamps in zip(ids, results, signatures, tokens,
                                                     strict=True):
            _render(result, evidence_id)
            for s in sigs:
                colour = "green" if s.valid else "bold red" if s.present else "yellow"
                stdout.print(f"  [{colour}]{escape(s.sentence())}[/]")
            for t in stamps:
                stdout.print(f"  [{'green' if t.valid else 'bold red'}]"
                             f"{escape(t.sentence())}[/]")
        if len(results) > 1:
            counts: dict[str, int] = {}
            for r in results:
                counts[r.verdict.value] = counts.get(r.verdict.value, 0) + 1
            stdout.print(f"{len(results)} images: " +
                         ", ".join(f"{n} {v}" for v, n in sorted(counts.items())))
        render_proofs([], anchor_stamps, indent="")
    return ExitCode.OK if ok and results else ExitCode.EVIDENCE


def _tokens(result: ImageVerification) -> list[Any]:
    """The RFC 3161 token check of each log read for the image that has one."""
    from bitwitness import timestamping

    checks = [timestamping.check_file(log) for log in result.logs]
    return [c for c in checks if c is not None]


def _signable(result: ImageVerification) -> list[Path]:
    """The logs read for an image and their text twins (the files an examiner key signs) that
    have a signature or should have one."""
    files: list[Path] = []
    for log in result.logs:
        for path in (log, log.with_suffix(".txt")):
            if path not in files and path.is_file():
                files.append(path)
    from bitwitness import signing

    # every log of a case that trusts keys should be signed; elsewhere only signed ones are shown
    return [p for p in files
            if signing.signature_path(p).is_file() or signing.trust_for(p)]


def _check_options(images: tuple[Path, ...], against: Path | None, logs: tuple[Path, ...],
                   case_dir: Path | None) -> None:
    """Refuse option combinations that cannot mean anything, before any image is read."""
    if not images and case_dir is None:
        raise UsageError("give at least one IMAGE, or --case CASE_DIR")
    if images and case_dir is not None:
        raise UsageError("give IMAGE... or --case CASE_DIR, not both")
    if against is not None and len(images) != 1:
        raise UsageError("--against compares one image with its source: give exactly one IMAGE")
    if against is not None and against.is_dir():
        raise InputError(f"{against}: is a directory, not a source device or file")
    if logs and len(images) > 1:
        raise UsageError("--log belongs to one image: give exactly one IMAGE with --log")


def _jsonable(result: ImageVerification) -> dict[str, Any]:
    doc: dict[str, Any] = to_jsonable(result)
    return doc


def _render(r: ImageVerification, evidence_id: str | None) -> None:  # noqa: C901, PLR0912
    """The human rendering: one section per kind of finding, the verdict last."""
    from bitwitness.verify import Match

    out = stdout.print
    label = f"{evidence_id}: " if evidence_id else ""
    if not r.files or r.format == "unknown":  # could not be opened: the reason is all there is
        out(f"[bold]{escape(label + str(r.image))}[/]")
        for problem in r.problems:
            out(f"  [red]{escape(problem)}[/]")
        out(f"  verdict: [bold red]{r.verdict.value}[/]")
        return
    out(f"[bold]{escape(label + str(r.image))}[/]  {escape(r.format)}, {len(r.files)} file(s), "
        f"{format_size(r.media_size)} ({r.media_size} bytes, sector {r.sector_size})")
    for alg, value in r.computed.items():
        out(f"  computed {alg:<7} {value}")
    if r.bad_chunks and r.computed:  # as ewfverify -w computes them, not plain ewfverify
        out(f"  (computed with the {len(r.bad_chunks)} bad chunk(s) below read as zeros)")
    for c in r.comparisons:  # mismatches and what could not be checked are listed as problems
        if c.match is Match.MATCH:
            ref = c.reference
            out(f"  [green]match[/]  {ref.algorithm} of {escape(ref.scope)}: "
                f"{escape(ref.source)} records {ref.value}")
    for b in r.bad_chunks:
        out(f"  [bold red]bad chunk[/] {b.chunk}: sectors {b.first_sector}-{b.last_sector} "
            f"(media offset {b.media_offset}) in {escape(b.segment.name)} at file offset "
            f"{b.file_offset}: {escape(b.reason)}")
    for e in r.acquisition_errors:
        out(f"  unreadable at acquisition: {e} ({e.sector_count} sectors, zero-filled)")
    if r.against is not None:
        a = r.against
        if a.identical:
            out(f"  source {escape(str(a.source))}: identical over {a.compared_bytes} bytes")
        elif not a.differing_sectors and a.first_difference is not None:
            # the same bytes as far as both go: the difference is the length
            out(f"  [bold red]source {escape(str(a.source))} differs[/] (the "
                f"{a.compared_bytes} bytes both hold are identical; "
                f"{a.first_difference} lie past the end of the shorter)")
        else:
            first = f"; first difference: {a.first_difference}" if a.first_difference else ""
            out(f"  [bold red]source {escape(str(a.source))} differs[/] "
                f"({a.differing_sectors} differing sectors{first})")
        if a.note:
            out(f"  note: {escape(a.note)}")
    for check in r.container_checks:
        state = "[green]ok[/]" if check.ok else "[bold red]FAILS[/]"
        out(f"  {escape(check.what)}: {state} ({escape(check.detail)})")
    for lib in (r.libewf, r.second_reader):
        if lib is None:
            continue
        state = "[green]agrees[/]" if lib.agree else "[bold red]DISAGREES[/]"
        out(f"  second reader {escape(lib.reader)}: {state} "
            + " ".join(f"{k}={v}" for k, v in lib.hashes.items()))
        for d in lib.differences:
            out(f"    {escape(d)}")
    for note in r.notes:
        out(f"  [dim]note: {escape(note)}[/]")
    for problem in r.problems:
        out(f"  [red]{escape(problem)}[/]")
    style = _STYLE.get(r.verdict, "bold red")
    out(f"  verdict: [{style}]{r.verdict.value}[/]")
