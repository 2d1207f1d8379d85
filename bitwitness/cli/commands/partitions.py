"""``bitwitness partitions``: the volume tree of an image (partition table, volumes inside the
partitions) and the file system found at each node."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from bitwitness.cli.commands._browse import (
    image_argument,
    iso,
    key_options,
    printable,
    volume_keys,
)
from bitwitness.cli.image_options import format_option
from bitwitness.cli.output import escape, json_option, print_json, stdout, warn


@click.command("partitions")
@image_argument
@format_option
@key_options
@json_option
def command(image: Path, image_format: str | None, as_json: bool) -> None:
    """List the partitions of IMAGE (rows numbered as mmls does), the volumes inside them
    (decrypted LUKS and BitLocker volumes with their key protectors, LVM, APFS volumes,
    shadow copies) and their file systems.

    The first column is what -p takes in ls, stat, cat, export and timeline: a row number, or
    a path such as 2/vss3 or 1/apfs2.
    """
    from bitwitness.image import open_image
    from bitwitness.report.browse.volumetree import read_tree

    keys = volume_keys()
    stream = open_image(image, image_format)
    try:
        tree = read_tree(stream, keys)
        short, missing = _short_disk(tree)
        tree.close()  # everything printed below was read while the tree was open
    finally:
        stream.close()
    layout = tree.layout
    for said in layout.notes:
        warn(said)
    for node in tree.walk():
        if node.refused is not None:
            warn(f"{node.refused}; it stays locked")
    if as_json:
        print_json({
            "image": str(image), "scheme": layout.scheme, "sector_size": layout.sector_size,
            "media_size": layout.media_size, "key": keys.kind,
            "missing_disk_sectors": missing, "notes": list(layout.notes),
            "partitions": [{"index": n.row.index, "path": n.path, "kind": n.row.kind,
                            "slot": n.row.slot, "start": n.row.start, "end": n.row.end,
                            "length": n.row.length,
                            "description": n.row.description, "filesystem": n.filesystem,
                            "reader": n.reader, "unread": n.unread,
                            "encrypted": n.encrypted, "locked": n.locked,
                            "refused": n.refused, "protectors": n.protectors,
                            "missing_sectors": n.missing_sectors,
                            "iso_session": _session_json(n), "warning": n.warning,
                            "volumes": [_node_json(c) for c in n.children]}
                           for n in tree.nodes]})
        return
    stdout.print(f"{escape(str(image))}: partition table {layout.scheme}, "
                 f"{layout.sector_size}-byte sectors")
    stdout.print(f"{'index':>5}  {'kind':<11} {'slot':<7} {'start':>12} {'end':>12} "
                 f"{'length':>12}  {'file system':<12} description")
    for node in tree.walk():
        if "/" not in node.path:
            p = node.row
            stdout.print(f"{p.index:>5}  {p.kind:<11} {p.slot or '':<7} {p.start:>12} "
                         f"{p.end:>12} {p.length:>12}  {escape(_found(node)):<12} "
                         f"{escape(printable(node.description))}")
            _print_protectors(node)
            continue
        depth = node.path.count("/")
        when = f", created {iso(node.created)}" if node.created else ""
        row = node.table_row
        where = (f" (slot {row.slot}, sectors {row.start}-{row.end} of that table)"
                 if row is not None else "")
        stdout.print(f"{'  ' * depth}{escape(node.path)}  {node.kind:<6} {node.size:>14} bytes  "
                     f"{escape(_found(node)):<12} {escape(printable(node.description))}{when}"
                     f"{where}")
        _print_protectors(node)
    for node in tree.nodes:
        if (note := node.missing_note()) is not None:
            warn(note)
    if short is not None:
        warn(short)


def _short_disk(tree: Any) -> tuple[str | None, int]:
    """That the image holds fewer sectors than the disk its GPT was written for (the backup
    header's place says how many), and how many it lacks: an acquisition cut short, even where
    no partition reaches the missing part."""
    from bitwitness.report.browse.gpt import disk_sectors

    layout = tree.layout
    if layout.scheme != "gpt":
        return None, 0
    wanted = disk_sectors(tree.stream, layout.sector_size)
    held = layout.media_size // layout.sector_size
    if wanted is None or wanted <= held:
        return None, 0
    return (f"the GPT was written for a disk of {wanted} sectors (its backup header at sector "
            f"{wanted - 1}); the image holds {held}: {wanted - held} sectors are missing",
            wanted - held)


def _print_protectors(node: Any) -> None:
    indent = "  " * (node.path.count("/") + 1)
    for protector in node.protectors:
        stdout.print(f"{indent}key protector: {escape(printable(protector))}")


def _found(node: Any) -> str:
    if node.filesystem:
        return str(node.filesystem)
    if node.encrypted:
        return f"encrypted ({node.encrypted}{', locked' if node.locked else ''})"
    return "-"


def _node_json(node: Any) -> dict[str, Any]:
    row = node.table_row
    table = {} if row is None else {"slot": row.slot, "start": row.start, "end": row.end,
                                    "length": row.length, "sector_size": row.sector_size}
    return {"path": node.path, "kind": node.kind, "description": node.description,
            "offset": node.offset, **table,
            "size": node.size, "filesystem": node.filesystem, "reader": node.reader,
            "unread": node.unread, "encrypted": node.encrypted,
            "locked": node.locked, "refused": node.refused,
            "created": iso(node.created) if node.created else None,
            "identifier": node.identifier, "protectors": node.protectors,
            "key": node.key, "iso_session": _session_json(node),
            "volumes": [_node_json(c) for c in node.children]}


def _session_json(node: Any) -> dict[str, Any] | None:
    """Which session of a multi-session ISO 9660 image the node reads (sectors of 2048
    bytes from the image's start), or None."""
    session = node.iso_session
    if session is None:
        return None
    return {"number": session.number, "of": session.count, "start": session.start,
            "end": session.end - 1, "last": session.last, "read_by_tsk": session.head}
