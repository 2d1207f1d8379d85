"""``bitwitness restore``: write an image's media onto a device or a file, with a log pair."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from bitwitness.cli.image_options import format_option, max_media_option
from bitwitness.cli.output import (
    error_line,
    escape,
    json_option,
    print_json,
    reference_sentence,
    render_proofs,
    stamp_documents,
    stdout,
    to_jsonable,
)
from bitwitness.signals import shielded


@click.command("restore")
@click.argument("image", type=click.Path(path_type=Path))
@click.argument("target", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--verify", is_flag=True,
              help="Read the target back and compare its hashes over the media's length.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (needed off a terminal).")
@click.option("--overwrite", is_flag=True, help="Allow TARGET to be an existing regular file.")
@click.option("--log", "log_base", type=click.Path(path_type=Path, dir_okay=False),
              metavar="BASE",
              help="Write the log as BASE.json and BASE.txt (default: next to the image as "
                   "IMAGE.restore-<UTC>, or in the case's evidence/<ID>/restore-logs/).")
@format_option
@max_media_option
@json_option
@click.pass_context
def command(ctx: click.Context, *, image: Path, target: Path, verify: bool, yes: bool,
            overwrite: bool, log_base: Path | None, image_format: str | None,
            as_json: bool) -> None:
    """Write the media of IMAGE onto TARGET (a block device or a file).

    Refuses (exit 2, nothing written, no log) a target smaller than the media, a mounted one, one
    that is or holds the image or is the device it was acquired from, and a log that cannot be
    written or would lie on the target. Otherwise a log pair records the run, whatever its end:
    exit 1 when the written media does not match the image's recorded hashes, the image has
    unreadable sectors or the target does not read back as written; 2 when writing the target
    fails; 130 when interrupted (Ctrl-C or SIGTERM stop after the current block).
    """
    from bitwitness import signing
    from bitwitness.acquire.convert.restore import restore_image
    from bitwitness.cli.progress import cli_mediator
    from bitwitness.errors import ExitCode, Interrupted

    # an image in a case: its restore event is signed; the key is checked before the target
    # is touched (and before the confirmation question)
    signing.prepare_for_image(image)
    with cli_mediator(as_json) as mediator:
        result = restore_image(image, target, mediator, verify=verify, yes=yes,
                               overwrite=overwrite, log=log_base, image_format=image_format)
    signatures = signing.sign_with_session(list(result.logs))
    from bitwitness import timestamping
    from bitwitness.casefolder import evidence_of

    in_case = evidence_of(image)
    stamps = timestamping.stamp_finished(result, [p for p in (result.log_json,) if p],
                                         in_case[0] if in_case is not None else None)
    # the outcome is decided and logged: a late signal (the second Ctrl-C) must not cut its
    # summary, or a --json document, in half
    with shielded():
        if as_json:
            print_json({**result_document(result), "signatures": signatures,
                        "timestamps": stamp_documents(stamps)})
        else:
            render(result)
            render_proofs(signatures, stamps, indent="  ")
    if result.exit_code is ExitCode.INTERRUPTED:
        raise Interrupted(f"interrupted: {target} holds {result.bytes_written} of "
                          f"{result.media_size} bytes; see {result.log_json}")
    if result.exit_code is not ExitCode.OK:
        if result.error:  # the one error line on stderr, as every command's
            error_line(result.error)
        ctx.exit(int(result.exit_code))


def result_document(result: Any) -> dict[str, Any]:
    """The ``--json`` document: the result record, the log paths and the exit code."""
    doc: dict[str, Any] = to_jsonable(result)
    doc["logs"] = [str(p) for p in result.logs]
    doc["exit_code"] = int(result.exit_code)
    return doc


def render(result: Any) -> None:
    """The human summary, printed once at the end."""
    stdout.print(f"{result.status.value}, {result.verdict.value}: {escape(str(result.image))} -> "
                 f"{escape(str(result.target))} ({result.bytes_written} of {result.media_size} "
                 f"bytes, {result.target_kind})")
    for name, value in result.hashes.items():
        stdout.print(f"  {name:7} {value}")
    for check in result.references:
        if check.computed is not None:
            stdout.print("  " + escape(reference_sentence(bool(check.match), check.algorithm,
                                                          check.source)))
    if result.target_hashes is not None:
        same = result.target_hashes == result.hashes
        stdout.print(f"  target read back: {'identical' if same else 'DIFFERENT'}")
    for log in result.logs:
        stdout.print(f"  log   {escape(str(log))}")
    if result.custody_seq is not None:
        stdout.print(f"  custody event #{result.custody_seq}")
    for warning in result.warnings:
        stdout.print(f"  warning: {escape(warning)}")
    if result.error:
        stdout.print(f"  error: {escape(result.error)}")
