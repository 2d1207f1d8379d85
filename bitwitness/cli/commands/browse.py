"""``bitwitness browse``: the interactive, read-only evidence browser (textual)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from bitwitness.cli.commands._browse import image_argument, key_options, volume_keys
from bitwitness.errors import UsageError


@click.command("browse")
@image_argument
@click.option("--to", "export_to", type=click.Path(path_type=Path), default=None,
              help="Where 'e' exports (default: the case's exports/ when IMAGE is in a case, "
                   "else ./exports).")
@click.option("--case", "case_dir", type=click.Path(path_type=Path), default=None,
              help="Case for custody events (default: the case folder holding IMAGE).")
@key_options
def command(image: Path, export_to: Path | None, case_dir: Path | None) -> None:
    """Browse IMAGE: partitions and folders, entries with times, metadata, hex/text preview.

    Keys: e export the selection (hashed manifest, custody event in a case), / search names,
    x hex/text, q quit.
    """
    from bitwitness.image import open_image

    open_image(image).close()  # a missing or unreadable image fails here, in one line
    if case_dir is not None:
        from bitwitness.case import Case

        Case.load(case_dir)
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UsageError("browse is interactive and needs a terminal; in scripts use ls, stat, "
                         "cat, export or timeline")
    from bitwitness import signing
    from bitwitness.casefolder import case_root

    # its exports record custody events: in a case that trusts keys the key is asked for now
    signing.prepare(case_dir if case_dir is not None else case_root(image))
    from bitwitness.report.browse.tui import run  # textual is loaded only here

    run(image, export_to=export_to, case_dir=case_dir, keys=volume_keys())
