"""``bitwitness stat``: metadata of one file inside an image (as ``istat``, in short)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from bitwitness.cli.commands._browse import (
    entry_json,
    filesystem_json,
    fs_options,
    image_argument,
    iso,
    opened_checked,
    printable,
)
from bitwitness.cli.output import json_option, print_json
from bitwitness.errors import UsageError

if TYPE_CHECKING:
    from bitwitness.report.browse.entries import FileStat


@click.command("stat")
@image_argument
@click.argument("path", required=False)
@click.option("--inode", metavar="N", help="Inode address instead of a path (N or N-TYPE-ID).")
@fs_options
@json_option
def command(*, image: Path, path: str | None, inode: str | None, partition: int | str | None,
            offset: int | None, as_json: bool) -> None:
    """Show type, inode, size, MACB times (UTC), owner, mode and attributes of one file.

    Also, where the file system keeps them, the inode's deletion time (ext) and the backup
    date (HFS+); exFAT and ISO 9660 times are moved to UTC by the offset they record."""
    from bitwitness.report.browse.doubts import doubts
    from bitwitness.report.browse.safenames import escaped

    if (path is None) == (inode is None):
        raise UsageError("give either PATH or --inode N")
    with opened_checked(image, partition, offset) as (fs, unreadable):
        info = fs.stat(fs.target(path, inode))
        doubted = doubts(fs, info.entry, unreadable)
    entry = info.entry
    if as_json:
        print_json({**filesystem_json(fs, image), **entry_json(entry),
                    "allocated": info.allocated, "mode": info.mode, "uid": info.uid,
                    "gid": info.gid, "links": info.links, "attributes": info.attributes,
                    "standard_information": info.standard_information,
                    "file_names": [{"name": escaped(name), "times": times}
                                   for name, times in info.file_names],
                    "deleted_time": info.deleted_time, "backup_time": info.backup_time,
                    "short_name": info.short_name, "stored": info.stored,
                    "device": None if info.device is None else {
                        "major": info.device[0], "minor": info.device[1]},
                    "time_zones": dict(info.time_zones) or None,
                    "note": info.note, "doubts": doubted})
        return
    out = sys.stdout
    rows = _rows(info, doubted)
    if (note := getattr(fs, "times_note", None)) is not None:
        at = next(n for n, (key, _) in enumerate(rows) if key == "born") + 1
        rows.insert(at, ("times", note))
    for key, value in rows:
        out.write(f"{key + ':':<17}{value}\n")
    out.flush()


def _rows(info: FileStat, doubted: list[str]) -> list[tuple[str, str]]:
    """The lines of the text output, in order."""
    entry = info.entry
    t = entry.times
    rows = [
        ("path", printable(entry.display_path) or "-"),
        *((("8.3 name", printable(info.short_name)),) if info.short_name is not None else ()),
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
    optional = (
        ("inode deleted", iso(info.deleted_time) if info.deleted_time is not None else None),
        ("backed up", iso(info.backup_time) if info.backup_time is not None else None),
        ("recorded in", ", ".join(f"{k} {z}" for k, z in info.time_zones) or None),
        ("device", f"{info.device[0]},{info.device[1]}" if info.device is not None else None),
        ("link to", printable(entry.link) if entry.link else None),
        ("stored", info.stored or None), ("content", info.note or None))
    rows.extend((key, value) for key, value in optional if value is not None)
    rows.extend(("doubt", doubt) for doubt in doubted)
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
                for start, length in _joined(attr.runs))))
    return rows


def _joined(runs: Any) -> list[tuple[int | None, int]]:
    """``runs`` with each run that continues the one before it (the next blocks, or sparse
    after sparse) folded into it: TSK keeps one run per indirect block, so a sparse 5 GiB ext3
    file would print five thousand ``sparse+1024``. The JSON output keeps TSK's runs."""
    joined: list[tuple[int | None, int]] = []
    for start, length in runs:
        if joined:
            last_start, last_length = joined[-1]
            if (start is None and last_start is None) or (
                    start is not None and last_start is not None
                    and last_start + last_length == start):
                joined[-1] = (last_start, last_length + length)
                continue
        joined.append((start, length))
    return joined


def _macb(times: Any) -> str:
    return (f"m={iso(times.modified)} a={iso(times.accessed)} c={iso(times.changed)} "
            f"b={iso(times.born)}")
