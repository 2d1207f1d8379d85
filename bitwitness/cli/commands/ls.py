"""``bitwitness ls``: list a folder of a file system inside an image (as ``fls``)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from bitwitness.cli.commands._browse import (
    entry_json,
    filesystem_json,
    fs_options,
    image_argument,
    iso,
    opened,
    selection,
    selection_options,
)
from bitwitness.cli.output import json_option, print_json_listing
from bitwitness.cli.progress import cli_mediator, fail_if_unread
from bitwitness.report.browse.entries import Entry
from bitwitness.report.browse.safenames import shown


@click.command("ls")
@image_argument
@click.argument("path", default="/")
@fs_options
@click.option("-r", "--recursive", is_flag=True, help="Walk sub-folders too (as fls -r).")
@click.option("-l", "--long", "long_format", is_flag=True,
              help="Type, inode, size, MACB times (UTC) and the deleted flag.")
@selection_options
@json_option
def command(*, image: Path, path: str, partition: int | str | None, offset: int | None,
            recursive: bool, long_format: bool, deleted_only: bool, show_all: bool,
            as_json: bool) -> None:
    """List PATH (default: the root folder) of a file system in IMAGE, read-only.

    Without --deleted/--all only allocated entries are shown; `ls -r --all` lists the same
    entries as `fls -r -p`, deleted ones marked with '*', reused ones with '(realloc)'.
    """
    chosen = selection(deleted_only, show_all)
    with opened(image, partition, offset) as fs, cli_mediator(as_json) as mediator:
        entries = fs.walk(path, recursive=recursive, selection=chosen, mediator=mediator)
        if as_json:
            print_json_listing({**filesystem_json(fs, image), "path": path,
                                "selection": chosen, "recursive": recursive}, "entries",
                               (entry_json(e) for e in entries))
            fail_if_unread(mediator, "the listing")
            return
        out = sys.stdout
        batch: list[str] = []
        try:  # written some lines at a time (one write per line cost a tenth of the time)
            for entry in entries:
                batch.append(_line(entry, long_format))
                if len(batch) == _BATCH:
                    out.write("\n".join(batch) + "\n")
                    batch.clear()
        finally:  # the lines before a failure are written, as they were one at a time
            if batch:
                out.write("\n".join(batch) + "\n")
            out.flush()
        fail_if_unread(mediator, "the listing")


#: Lines of a listing written per ``write``.
_BATCH = 256


def _line(entry: Entry, long_format: bool) -> str:
    mark = "* " if entry.deleted else ""
    realloc = "(realloc)" if entry.realloc else ""
    name = shown(entry.display_path.removeprefix("/"))  # as fls -p: a name's own "/" stays
    kind = f"{entry.name_type}/{entry.meta_type}"
    if not long_format:
        return f"{kind} {mark}{entry.address}{realloc}:\t{name}"
    t = entry.times
    deleted = "deleted" if entry.deleted else "-"
    return (f"{kind} {entry.address + realloc:<14} {entry.size:>12}  m={iso(t.modified)} "
            f"a={iso(t.accessed)} c={iso(t.changed)} b={iso(t.born)}  {deleted:<7}  {name}")
