"""``bitwitness browse``: the interactive, read-only evidence browser (textual)."""

from __future__ import annotations

from pathlib import Path

import click

from bitwitness.cli.commands._browse import image_argument


@click.command("browse")
@image_argument
@click.option("--to", "export_to", type=click.Path(path_type=Path), default=None,
              help="Where 'e' exports (default: the case's exports/ when IMAGE is in a case, "
                   "else ./exports).")
@click.option("--case", "case_dir", type=click.Path(path_type=Path), default=None,
              help="Case for custody events (default: the case folder holding IMAGE).")
def command(image: Path, export_to: Path | None, case_dir: Path | None) -> None:
    """Browse IMAGE: partitions and folders, entries with times, metadata, hex/text preview.

    Keys: e export the selection (hashed manifest, custody event in a case), / search names,
    x hex/text, q quit.
    """
    from bitwitness.browse.tui import run  # textual is loaded only here

    run(image, export_to=export_to, case_dir=case_dir)
