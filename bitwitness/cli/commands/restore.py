"""``bitwitness restore``: write an image's media onto a device or a file."""

from __future__ import annotations

from pathlib import Path

import click

from bitwitness.cli.output import escape, json_option, print_json, stdout
from bitwitness.errors import ExitCode


@click.command("restore")
@click.argument("image", type=click.Path(path_type=Path, dir_okay=False))
@click.argument("target", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--verify", is_flag=True,
              help="Read the target back and compare its hashes over the media's length.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (needed off a terminal).")
@click.option("--overwrite", is_flag=True, help="Allow TARGET to be an existing regular file.")
@json_option
@click.pass_context
def command(ctx: click.Context, *, image: Path, target: Path, verify: bool, yes: bool,
            overwrite: bool, as_json: bool) -> None:
    """Write the media of IMAGE onto TARGET (a block device or a file).

    Refuses (exit 2) a target smaller than the media, a mounted one, and one that is or holds
    the image or is the device it was acquired from. Exit 1 when the written media does not match
    the image's recorded hashes or the target does not read back as written.
    """
    from bitwitness.cli.progress import cli_mediator
    from bitwitness.convert.restore import restore_image

    with cli_mediator(as_json) as mediator:
        result = restore_image(image, target, mediator, verify=verify, yes=yes,
                               overwrite=overwrite)
    if as_json:
        print_json(result)
    else:
        stdout.print(f"{result.verdict.value}: {escape(str(image))} -> {escape(str(target))} "
                     f"({result.media_size} bytes, {result.target_kind})")
        for name, value in result.hashes.items():
            stdout.print(f"  {name:7} {value}")
        if result.target_hashes is not None:
            same = result.target_hashes == result.hashes
            stdout.print(f"  target read back: {'identical' if same else 'DIFFERENT'}")
        if result.error:
            stdout.print(f"  error: {escape(result.error)}")
    if not result.ok:
        ctx.exit(ExitCode.EVIDENCE)
