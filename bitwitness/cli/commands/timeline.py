"""``bitwitness timeline``: MACB times of every entry, as a TSK bodyfile or a CSV."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import click

from bitwitness.cli.commands._browse import fs_options, image_argument, opened
from bitwitness.cli.progress import cli_mediator


@click.command("timeline")
@image_argument
@fs_options
@click.option("--format", "fmt", type=click.Choice(["bodyfile", "csv"]), default="bodyfile",
              show_default=True, help="bodyfile: for TSK's mactime; csv: sorted events.")
def command(*, image: Path, partition: int | None, offset: int | None, fmt: str) -> None:
    """Write a timeline of every entry (deleted ones included) to stdout.

    The bodyfile is what `fls -r -m /` writes (without NTFS $FILE_NAME lines) and feeds
    `mactime -b`; the CSV has one row per time and entry, sorted, in UTC.
    """
    from bitwitness.report.browse.timeline import CSV_FIELDS, bodyfile, csv_row, events

    out = sys.stdout
    with opened(image, partition, offset) as fs, cli_mediator(False) as mediator:
        if fmt == "bodyfile":
            for line in bodyfile(fs, mediator=mediator):
                out.write(line.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
                          + "\n")
            out.flush()
            return
        writer = csv.DictWriter(out, fieldnames=CSV_FIELDS, lineterminator="\n")
        writer.writeheader()
        for event in events(fs, mediator=mediator):
            writer.writerow(csv_row(event))
        out.flush()
