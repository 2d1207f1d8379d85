"""``--format`` / ``--image-format``: the option every command that opens an image takes.

Detection goes by the container's signature; ``--format NAME`` overrides it on purpose, chiefly
``--format raw`` to read a container file itself as the media (its bytes, not the disk it holds).
``--image-format`` is the same option everywhere; the browsing commands take only that spelling,
because ``timeline --format`` already names its output format. ``--parent FILE`` names a parent
(backing) file kept outside the image's folder; ``--snapshot ID|NAME`` an internal snapshot of a
QCOW2 image to read instead of its current state.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


_HELP = ("Read IMAGE as this format whatever its content says ('raw': the file's own bytes as "
         "the media); 'bitwitness formats' lists the names.")
_META_KEY = "bitwitness.image_format"


def _name_parents(ctx: click.Context, _param: click.Parameter,
                  value: tuple[Path, ...]) -> None:
    if value:
        from bitwitness.images.libyal import set_named_parents

        ctx.call_on_close(set_named_parents(value))


def _choose_snapshot(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value is not None:
        from bitwitness.images.snapshot_choice import choose_snapshot

        ctx.call_on_close(choose_snapshot(value))


def _parent_option(func: F) -> F:
    """``--parent FILE`` and ``--snapshot ID|NAME``: which files and which state of them."""
    func = click.option(
        "--snapshot", metavar="ID|NAME", default=None, expose_value=False,
        callback=_choose_snapshot,
        help="Read this internal snapshot of a QCOW2 image (an ID, else a name, as 'info' "
             "lists them) instead of its current state: the disk as it was then.")(func)
    return click.option(
        "--parent", "parents", multiple=True, type=click.Path(path_type=Path, dir_okay=False),
        metavar="FILE", expose_value=False, callback=_name_parents,
        help="A parent (backing) file of a differencing image, used where the image records a "
             "parent of that file name; without it parents are looked for only beside the "
             "image.")(func)


def format_option(func: F) -> F:
    """``--format NAME``, passed to the command as ``image_format``; and ``--parent FILE``."""
    func = _parent_option(func)
    return click.option("--format", "--image-format", "image_format", default=None,
                        metavar="NAME", help=_HELP)(func)


def _remember(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    ctx.meta[_META_KEY] = value


def format_option_in_context(func: F) -> F:
    """``--format NAME`` kept in the click context (:func:`chosen_format`) for commands whose
    image is opened by a shared helper rather than by the command itself."""
    func = _parent_option(func)
    return click.option("--image-format", "image_format", default=None, metavar="NAME",
                        help=_HELP, expose_value=False, callback=_remember)(func)


def chosen_format() -> str | None:
    """The ``--format`` given to the running command, if any."""
    ctx = click.get_current_context(silent=True)
    return None if ctx is None else ctx.meta.get(_META_KEY)


def _limit_media(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value is not None:
        from bitwitness.media_budget import set_max_media
        from bitwitness.sizes import parse_size

        ctx.call_on_close(set_max_media(parse_size(value)))


def max_media_option(func: F) -> F:
    """``--max-media SIZE``: how much media a command that reads it whole may read from an image
    that declares far more than its files hold (see :mod:`bitwitness.media_budget`)."""
    return click.option(
        "--max-media", metavar="SIZE", default=None, expose_value=False, callback=_limit_media,
        help="Read up to SIZE of media (e.g. 2TiB) from an image that declares far more media "
             "than its files hold (sparse or hostile); without it such images are refused "
             "before reading.")(func)
