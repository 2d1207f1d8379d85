"""``bitwitness timeline``: MACB times of every entry, as a TSK bodyfile or a CSV."""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path
from typing import Any, BinaryIO

import click

from bitwitness.cli.commands._browse import fs_options, image_argument, opened_all
from bitwitness.cli.output import warn
from bitwitness.cli.progress import cli_mediator, fail_if_unread


@click.command("timeline")
@image_argument
@fs_options
@click.option("--format", "fmt", type=click.Choice(["bodyfile", "csv"]), default="bodyfile",
              show_default=True, help="bodyfile: for TSK's mactime; csv: sorted events.")
def command(*, image: Path, partition: int | str | None, offset: int | None, fmt: str) -> None:
    """Write a timeline of every entry (deleted ones included) to stdout.

    The bodyfile is what `fls -r -m /` writes (NTFS $FILE_NAME rows included) and feeds
    `mactime -b`; the CSV has one row per time and entry, sorted, in UTC, with the partition
    and file system of each, and in path_hex the exact bytes (hex) of a path that its path
    column cannot show as stored. Without -p/--offset every file system of the image goes into one
    timeline; bodyfile paths then start with p5-ext4 (partition 5, ext4), as
    `fls -m p5-ext4 -o START` writes them. FAT records local wall-clock times with no zone:
    they are written as if UTC in the bodyfile (as fls does), without an offset in the CSV, and
    a warning names each such file system.
    """
    from bitwitness.report.browse.timeline import (
        CSV_FIELDS,
        bodyfile,
        csv_rows,
        image_bodyfile,
    )

    out = sys.stdout.buffer
    with opened_all(image, partition, offset) as systems, cli_mediator(False) as mediator:
        for fs in systems:
            if (note := getattr(fs, "times_note", None)) is not None:
                warn(f"{_label(fs)}: {note}")
        if fmt == "bodyfile":
            lines = (bodyfile(systems[0], mediator=mediator) if len(systems) == 1
                     else image_bodyfile(systems, mediator=mediator))
            batch: list[str] = []
            try:  # some lines per write: stdout may be unbuffered (PYTHONUNBUFFERED)
                for line in lines:
                    batch.append(line)
                    if len(batch) == _BATCH:
                        _write_lines(out, batch)
            finally:  # the lines before a failure are written, as they were one at a time
                _write_lines(out, batch)
                out.flush()
            fail_if_unread(mediator, "the timeline")
            return
        text = io.TextIOWrapper(out, encoding="utf-8", newline="")  # flushed below
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(CSV_FIELDS)
        writer.writerows(csv_rows(systems, mediator=mediator))
        text.flush()
        text.detach()
        fail_if_unread(mediator, "the timeline")


def _label(fs: Any) -> str:
    """``partition 5 (fat32)``: which file system a warning is about."""
    where = fs.partition.volume or str(fs.partition.index)
    return f"partition {where} ({fs.type})"


#: Bodyfile lines written per ``write``.
_BATCH = 256


def _write_lines(out: BinaryIO, batch: list[str]) -> None:
    """Write ``batch`` (and empty it); names keep their bytes, as fls writes them."""
    if batch:
        out.write(("\n".join(batch) + "\n").encode("utf-8", "surrogateescape"))
        batch.clear()
