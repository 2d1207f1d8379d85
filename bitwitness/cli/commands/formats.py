"""``bitwitness formats``: which image formats this installation reads."""

from __future__ import annotations

import click

from bitwitness.cli.output import json_option, print_json, stdout


@click.command("formats")
@json_option
def command(as_json: bool) -> None:
    """List the image formats BitWitness can open."""
    from bitwitness.images import FORMATS

    names = [fmt.name for fmt in FORMATS]
    if as_json:
        print_json({"formats": names})
        return
    for name in names:
        stdout.print(name)
