"""Options and helpers shared by the browsing commands (ls, stat, cat, export, timeline, browse).

Not a command itself (the leading underscore keeps it out of discovery).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click

from bitwitness.cli.image_options import chosen_format, format_option_in_context
from bitwitness.errors import UsageError
from bitwitness.report.browse.entries import Entry, Selection

F = TypeVar("F", bound=Callable[..., Any])
#: A row index then one ``nameN`` per level: ``2/vss3``, ``0/luks1/apfs2``; ``0/udf`` is the UDF
#: side of a bridge disc and ``0/md`` a RAID1 member's data (one at most, so unnumbered).
_VOLUME_PATH = re.compile(r"^-?\d+(?:/(?:[a-z]+\d+|udf|md))+$")


def image_argument(func: F) -> F:
    return click.argument("image", type=click.Path(path_type=Path))(func)


class VolumePath(click.ParamType):
    """``-p``: a row number as before (an int) or a path of the volume tree (``2/vss3``)."""

    name = "N|PATH"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> int | str:
        if isinstance(value, int):
            return value
        text = str(value).strip()
        try:
            return int(text)
        except ValueError:
            pass
        if not _VOLUME_PATH.match(text):
            self.fail(f"{value!r} is neither a partition index nor a volume path such as "
                      "2/vss3 or 1/apfs2", param, ctx)
        return text


def _keep_key(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """Key options go to the context, not to the command: only :func:`volume_keys` sees them."""
    if value is not None and value is not False:
        ctx.meta.setdefault("bitwitness.keys", {})[param.name] = value
    return value


def key_options(func: F) -> F:
    """Keys for encrypted volumes (LUKS, BitLocker, APFS): never echoed, logged or recorded,
    only their kind."""
    for option in reversed((
        click.option("--passphrase", "passphrase", default=None, metavar="TEXT",
                     expose_value=False, callback=_keep_key,
                     help="Passphrase of an encrypted volume: LUKS, APFS, BitLocker password "
                          "or recovery password (visible to other local users; prefer "
                          "--passphrase-file or --ask-passphrase)."),
        click.option("--passphrase-file", "passphrase_file", default=None,
                     type=click.Path(path_type=Path), expose_value=False, callback=_keep_key,
                     help="File whose first line is the passphrase."),
        click.option("--key-file", "key_file", default=None, type=click.Path(path_type=Path),
                     expose_value=False, callback=_keep_key,
                     help="Key file, used whole (as cryptsetup --key-file), or a BitLocker "
                          "startup key (.BEK) file."),
        click.option("--ask-passphrase", "ask_passphrase", is_flag=True, expose_value=False,
                     callback=_keep_key, help="Ask for the passphrase on the terminal."),
        click.option("--fvek-file", "fvek_file", default=None, type=click.Path(path_type=Path),
                     expose_value=False, callback=_keep_key,
                     help="File holding a BitLocker volume's Full Volume Encryption Key "
                          "(hexadecimal)."),
        click.option("--luks-header", "luks_header", default=None,
                     type=click.Path(path_type=Path), expose_value=False, callback=_keep_key,
                     help="LUKS header kept apart from its data (cryptsetup --header): it "
                          "opens the one partition, or the whole media, in which nothing else "
                          "is recognised."),
    )):
        func = option(func)
    return func


def volume_keys() -> Any:
    """The :class:`~bitwitness.report.browse.volumekeys.VolumeKeys` the command line gave."""
    from bitwitness.report.browse.volumekeys import from_options

    ctx = click.get_current_context(silent=True)
    given = dict(ctx.meta.get("bitwitness.keys", {})) if ctx is not None else {}
    prompted = None
    if given.pop("ask_passphrase", False):
        prompted = click.prompt("Passphrase", hide_input=True, err=True)
    return from_options(prompted=prompted, **given)


def fs_options(func: F) -> F:
    """``-p N|PATH`` / ``--offset SECTOR``: which file system of the image; ``--format``; keys
    to open an encrypted volume."""
    func = key_options(func)
    func = format_option_in_context(func)
    func = click.option("--offset", "offset", type=click.IntRange(min=0), default=None,
                        metavar="SECTOR",
                        help="File system starting at this sector, in the sectors the "
                             "partition table counts (as 'partitions' lists starts; fls -o "
                             "counts 512-byte units unless given -b).")(func)
    return click.option("-p", "--partition", "partition", type=VolumePath(), default=None,
                        metavar="N|PATH",
                        help="Partition index or volume path (2, 2/vss3, 1/apfs2), as "
                             "'bitwitness partitions' prints it.")(func)


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
def opened(image: Path, partition: int | str | None, offset: int | None) -> Iterator[Any]:
    """Open ``image`` read-only and the chosen file system in it; closes the image after.

    For the commands that show no file's content (``ls``): the unreadable sectors are not
    looked up (describing the image for them costs a tenth of a large listing)."""
    with _opened(image, partition, offset, checked=False) as (fs, _):
        yield fs


@contextmanager
def opened_checked(image: Path, partition: int | str | None,
                   offset: int | None) -> Iterator[tuple[Any, Any]]:
    """As :func:`opened`, with the media's unreadable sectors (an
    :class:`~bitwitness.report.browse.doubts.UnreadableSectors`, or None when the image
    lists none) for the commands that hand out a file's content."""
    with _opened(image, partition, offset, checked=True) as found:
        yield found


@contextmanager
def _opened(image: Path, partition: int | str | None, offset: int | None, *,
            checked: bool) -> Iterator[tuple[Any, Any]]:
    from bitwitness.image import open_image
    from bitwitness.report.browse.doubts import unreadable_sectors
    from bitwitness.report.browse.volumetree import choose, read_tree

    keys = volume_keys()
    stream = open_image(image, chosen_format())
    _remember_state(stream)
    try:
        tree = read_tree(stream, keys)
        try:
            fs = choose(tree, partition=partition, offset=offset)
            _warn_missing(tree, [fs])
            yield fs, (unreadable_sectors(image, stream, chosen_format()) if checked else None)
        finally:
            tree.close()
    finally:
        stream.close()


@contextmanager
def opened_all(image: Path, partition: int | str | None,
               offset: int | None) -> Iterator[list[Any]]:
    """The file system ``-p``/``--offset`` names, or without either every one in ``image``
    (each shadow-copy store included, so that a timeline shows each file's history; an ISO's
    earlier sessions not: a drive presents the last, and ``-p N/sessionK`` reads one)."""
    from bitwitness.image import open_image
    from bitwitness.report.browse.volumetree import (
        choose,
        current_filesystems,
        open_node,
        read_tree,
    )

    keys = volume_keys()
    stream = open_image(image, chosen_format())
    _remember_state(stream)
    try:
        tree = read_tree(stream, keys)
        try:
            if partition is not None or offset is not None or not tree.filesystems:
                chosen = [choose(tree, partition=partition, offset=offset)]
            else:
                chosen = [open_node(tree, node) for node in current_filesystems(tree)]
                _warn_locked(tree)
            _warn_missing(tree, chosen)
            yield chosen
        finally:
            tree.close()
    finally:
        stream.close()


def _warn_locked(tree: Any) -> None:
    """Every file system of the image was asked for: a volume that stays locked is not among
    them, which must not pass unsaid."""
    from bitwitness.cli.output import warn
    from bitwitness.report.browse.volumetree import still_locked

    for node in tree.walk():
        if node.locked:
            warn(f"{still_locked(node)}; its file systems are not read")


def _warn_missing(tree: Any, chosen: list[Any]) -> None:
    """A warning for each chosen file system whose partition, or whose own extent as its
    superblock states it, runs past the media's end (an image cut short): its files there
    read as nothing, which must not pass unsaid."""
    from bitwitness.cli.output import warn

    for said in tree.layout.notes:
        warn(said)
    notes = {node.row.index: note for node in tree.nodes
             if (note := node.missing_note()) is not None}
    rows = {fs.partition.index for fs in chosen}
    for node in tree.walk():
        if node.warning is not None and node.row.index in rows:
            warn(node.warning)
    for fs in chosen:
        note = notes.pop(fs.partition.index, None)  # the row's, once
        if note is None and fs.partition.index not in notes:
            own = getattr(fs, "missing_note", None)  # the file system's own size (TSK's)
            note = own() if own is not None else None
        if note is not None:
            warn(note)


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


_STATE_KEY = "bitwitness.image_state"


def _remember_state(stream: Any) -> None:
    """Keep, for the running command, the state of the image read when it is not the current
    one (a QCOW2 internal snapshot chosen with ``--snapshot``): outputs say which they show."""
    state = stream.info.details.get("snapshot")
    ctx = click.get_current_context(silent=True)
    if ctx is not None and state:
        ctx.meta[_STATE_KEY] = str(state)


def image_state() -> str | None:
    """The image's state the running command reads when not its current one, else None."""
    ctx = click.get_current_context(silent=True)
    return None if ctx is None else ctx.meta.get(_STATE_KEY)


def filesystem_json(fs: Any, image: Path) -> dict[str, Any]:
    doc = {"image": str(image), "partition": fs.partition.index,
           "volume": fs.partition.volume or str(fs.partition.index),
           "offset_sector": fs.partition.start, "filesystem": fs.type,
           "times_note": getattr(fs, "times_note", None)}
    if (state := image_state()) is not None:
        doc["image_state"] = state
    return doc
