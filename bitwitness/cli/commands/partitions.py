"""``bitwitness partitions``: the partition table and the file system found in each partition."""

from __future__ import annotations

from pathlib import Path

import click

from bitwitness.cli.commands._browse import image_argument
from bitwitness.cli.image_options import format_option
from bitwitness.cli.output import escape, json_option, print_json, stdout


@click.command("partitions")
@image_argument
@format_option
@json_option
def command(image: Path, image_format: str | None, as_json: bool) -> None:
    """List the partitions of IMAGE (rows numbered as mmls does) and their file systems.

    The index is what -p takes in ls, stat, cat, export and timeline.
    """
    from bitwitness.image import open_image
    from bitwitness.report.browse.tsk import TskImage
    from bitwitness.report.browse.volumes import read_layout

    stream = open_image(image, image_format)
    try:
        layout = read_layout(TskImage(stream))
    finally:
        stream.close()
    if as_json:
        print_json({
            "image": str(image), "scheme": layout.scheme, "sector_size": layout.sector_size,
            "media_size": layout.media_size,
            "partitions": [{"index": p.index, "kind": p.kind, "start": p.start, "end": p.end,
                            "length": p.length, "description": p.description,
                            "filesystem": p.filesystem, "encrypted": p.encrypted}
                           for p in layout.partitions]})
        return
    stdout.print(f"{escape(str(image))}: partition table {layout.scheme}, "
                 f"{layout.sector_size}-byte sectors")
    stdout.print(f"{'index':>5}  {'kind':<11} {'start':>12} {'end':>12} {'length':>12}  "
                 f"{'file system':<12} description")
    for p in layout.partitions:
        found = p.filesystem or (f"encrypted ({p.encrypted})" if p.encrypted else "-")
        stdout.print(f"{p.index:>5}  {p.kind:<11} {p.start:>12} {p.end:>12} {p.length:>12}  "
                     f"{escape(found):<12} {escape(p.description)}")
