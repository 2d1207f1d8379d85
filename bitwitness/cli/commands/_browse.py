"""Options and helpers shared by the browsing commands (ls, stat, cat, export, timeline, browse).

Not a command itself (the leading underscore keeps it out of discovery).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click

from bitwitness.cli.image_options import chosen_format, format_option_in_context
from bitwitness.errors import UsageError
from bitwitness.report.browse.entries import Entry, Selection

F = TypeVar("F", bound=Callable[..., Any])


def image_argument(func: F) -> F:
    return click.argument("image", type=click.Path(path_type=Path))(func)


def fs_options(func: F) -> F:
    """``-p N`` / ``--offset SECTOR``: which file system of the image; ``--format``."""
    func = format_option_in_context(func)
    func = click.option("--offset", "offset", type=click.IntRange(min=0), default=None,
                        metavar="SECTOR",
                        help="File system starting at this sector (as fls -o).")(func)
    return click.option("-p", "--partition", "partition", type=int, default=None, metavar="N",
                        help="Partition index, as 'bitwitness partitions' prints it.")(func)


def selection_options(func: F) -> F:
    func = click.option("--all", "show_all", is_flag=True,
                        help="Allocated and deleted entries (deleted ones are marked).")(func)
    return click.option("--deleted", "deleted_only", is_flag=True,
                        help="Only deleted entries.")(func)


def selection(deleted_only: bool, show_all: bool) -> Selection:
    if deleted_only and show_all:
        raise UsageError("--deleted and --all exclude each other")
    if show_all:
        return Selection.ALL
    return Selection.DELETED if deleted_only else Selection.ALLOCATED


@contextmanager
def opened(image: Path, partition: int | None, offset: int | None) -> Iterator[Any]:
    """Open ``image`` read-only and the chosen file system in it; closes the image after."""
    from bitwitness.image import open_image
    from bitwitness.report.browse.filesystem import open_filesystem

    stream = open_image(image, chosen_format())
    try:
        yield open_filesystem(stream, partition=partition, offset=offset)
    finally:
        stream.close()


@contextmanager
def opened_all(image: Path, partition: int | None, offset: int | None) -> Iterator[list[Any]]:
    """The file system ``-p``/``--offset`` names, or without either every one in ``image``."""
    from bitwitness.image import open_image
    from bitwitness.report.browse.filesystem import FileSystem, open_filesystem
    from bitwitness.report.browse.tsk import TskImage
    from bitwitness.report.browse.volumes import read_layout

    stream = open_image(image, chosen_format())
    try:
        if partition is not None or offset is not None:
            yield [open_filesystem(stream, partition=partition, offset=offset)]
            return
        tsk = TskImage(stream)
        found = read_layout(tsk).filesystems
        if not found:
            yield [open_filesystem(stream)]  # raises the one clear error
            return
        yield [FileSystem(tsk, part) for part in found]
    finally:
        stream.close()


def printable(text: str) -> str:
    """A name for the terminal: control characters as ``^`` (as TSK prints names), bytes that
    are not UTF-8 as ``\\xNN`` (see :func:`~bitwitness.report.browse.safenames.shown`)."""
    from bitwitness.report.browse.safenames import shown

    return shown(text)


def iso(value: Any) -> str:
    return value.isoformat().replace("+00:00", "Z") if value is not None else "-"


def entry_json(entry: Entry) -> dict[str, Any]:
    """The stable JSON form of an entry (documented in the README)."""
    from bitwitness.report.browse.export import escaped
    from bitwitness.report.browse.safenames import is_exact, raw_bytes

    t = entry.times
    exact = is_exact(entry.display_path)
    return {
        "path": escaped(entry.display_path), "name": escaped(entry.name),
        "path_hex": None if exact else raw_bytes(entry.display_path).hex(),
        "name_hex": None if is_exact(entry.name) else raw_bytes(entry.name).hex(),
        "stream": entry.stream,
        "inode": entry.address, "meta_address": entry.inode, "kind": entry.kind,
        "type": f"{entry.name_type}/{entry.meta_type}", "deleted": entry.deleted,
        "realloc": entry.realloc, "size": entry.size,
        "modified": t.modified, "accessed": t.accessed, "changed": t.changed, "born": t.born,
        "link": escaped(entry.link) if entry.link is not None else None,
    }


def filesystem_json(fs: Any, image: Path) -> dict[str, Any]:
    return {"image": str(image), "partition": fs.partition.index,
            "offset_sector": fs.partition.start, "filesystem": fs.type}
