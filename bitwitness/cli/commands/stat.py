"""``bitwitness stat``: metadata of one file inside an image (as ``istat``, in short)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from bitwitness.cli.commands._browse import (
    entry_json,
    filesystem_json,
    fs_options,
    image_argument,
    iso,
    opened,
    printable,
)
from bitwitness.cli.output import json_option, print_json
from bitwitness.errors import UsageError


@click.command("stat")
@image_argument
@click.argument("path", required=False)
@click.option("--inode", metavar="N", help="Inode address instead of a path (N or N-TYPE-ID).")
@fs_options
@json_option
def command(*, image: Path, path: str | None, inode: str | None, partition: int | str | None,
            offset: int | None, as_json: bool) -> None:
    """Show type, inode, size, MACB times (UTC), owner, mode and attributes of one file."""
    if (path is None) == (inode is None):
        raise UsageError("give either PATH or --inode N")
    with opened(image, partition, offset) as fs:
        info = fs.stat(fs.target(path, inode))
    entry = info.entry
    if as_json:
        print_json({**filesystem_json(fs, image), **entry_json(entry),
                    "allocated": info.allocated, "mode": info.mode, "uid": info.uid,
                    "gid": info.gid, "links": info.links, "attributes": info.attributes,
                    "standard_information": info.standard_information,
                    "file_names": [{"name": name, "times": times}
                                   for name, times in info.file_names],
                    "note": info.note})
        return
    t = entry.times
    rows = [
        ("path", printable(entry.display_path) or "-"),
        ("inode", entry.address),
        ("type", f"{entry.kind} ({entry.name_type}/{entry.meta_type})"),
        ("deleted", "yes" + (" (inode reused)" if entry.realloc else "") if entry.deleted
         else "no"),
        ("inode allocated", "yes" if info.allocated else "no"),
        ("size", str(entry.size)),
        ("modified", iso(t.modified)), ("accessed", iso(t.accessed)),
        ("changed", iso(t.changed)), ("born", iso(t.born)),
        ("mode", info.mode), ("uid/gid", f"{info.uid}/{info.gid}"), ("links", str(info.links)),
    ]
    if entry.link:
        rows.append(("link to", printable(entry.link)))
    if info.note:
        rows.append(("content", info.note))
    if info.standard_information is not None:
        rows.append(("$STANDARD_INFO", _macb(info.standard_information)))
    for name, times in info.file_names:
        rows.append(("$FILE_NAME", f"{_macb(times)}  {printable(name)}"))
    for attr in info.attributes:
        where = "resident" if attr.resident else "non-resident"
        rows.append(("attribute", f"{attr.type}-{attr.id} {printable(attr.name or '')} "
                     f"{attr.size} bytes {where}".replace("  ", " ")))
        if attr.runs:
            rows.append(("  runs", " ".join(
                f"{'sparse' if start is None else start}+{length}"
                for start, length in attr.runs)))
    out = sys.stdout
    for key, value in rows:
        out.write(f"{key + ':':<17}{value}\n")
    out.flush()


def _macb(times: Any) -> str:
    return (f"m={iso(times.modified)} a={iso(times.accessed)} c={iso(times.changed)} "
            f"b={iso(times.born)}")
