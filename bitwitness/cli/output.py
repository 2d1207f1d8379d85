"""Output helpers shared by every command: the consoles, ``--json``, sizes, errors.

``--json`` means: exactly one JSON document on stdout and nothing else there (progress and
notices go to stderr). Keys are stable and documented in the README.

The consoles :data:`stdout` and :data:`stderr` print markup (:mod:`.markup`): through rich on a
terminal, as plain text elsewhere. rich costs ~40 ms to import and set up, a quarter of a short
command's time, and off a terminal it would only drop the tags.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import os
import sys
import threading
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

import click

from bitwitness.cli import markup
from bitwitness.errors import DestinationError, UsageError
from bitwitness.sizes import format_size, parse_size

if TYPE_CHECKING:
    from rich.console import Console

F = TypeVar("F", bound=Callable[..., Any])

#: Environment variables with which rich may take a stream that is no TTY for a terminal.
TERMINAL_VARIABLES = ("TTY_COMPATIBLE", "FORCE_COLOR", "TTY_INTERACTIVE")


def no_terminal(stream: TextIO | None) -> bool:
    """True when rich would take ``stream`` for no terminal without being asked: it is no TTY
    and none of :data:`TERMINAL_VARIABLES` is set (with one, rich decides). False for a closed
    stream and for none at all (``sys.stdout`` is None when the program starts with its
    descriptor closed): rich knows what to do with those."""
    if stream is None or any(name in os.environ for name in TERMINAL_VARIABLES):
        return False
    try:
        return not stream.isatty()
    except ValueError:  # closed
        return False


class TextConsole:
    """Standard output or error for markup: ``print`` writes plain text (:func:`.markup.plain`)
    where rich would write no control sequence, and hands everything else to a rich console
    made on first need: a terminal, a table, text holding a control character (rich drops some
    and expands tabs), any other method (``rule``, ``is_terminal``, ...).

    The stream is looked up on every call, as rich does, so a test that swaps ``sys.stdout``
    reads what was printed."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._rich: Console | None = None
        self._making = threading.Lock()

    def rich(self) -> Console:
        """The rich console on the same stream, with this program's settings; one, also when
        threads (an engine's notices) ask for it first at the same time."""
        if self._rich is None:
            with self._making:
                if self._rich is None:
                    from rich.console import Console

                    # emoji=False: markup escaping leaves emoji codes alone, so an evidence
                    # name such as ":smile:.txt" would otherwise be printed as an emoji
                    self._rich = Console(stderr=self.name == "stderr", highlight=False,
                                         soft_wrap=True, emoji=False)
        return self._rich

    def print(self, *objects: Any, sep: str = " ", end: str = "\n",
              soft_wrap: bool = True) -> None:
        stream = sys.stderr if self.name == "stderr" else sys.stdout
        if (soft_wrap and all(type(o) is str and _plain_text(o) for o in (*objects, sep, end))
                and no_terminal(stream)):
            stream.write(sep.join(markup.plain(o) for o in objects) + end)
            stream.flush()
            return
        self.rich().print(*objects, sep=sep, end=end, soft_wrap=soft_wrap)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.rich(), name)


def _plain_text(text: str) -> bool:
    """No control character but line breaks: text rich writes as it is, tags aside."""
    return text.isprintable() or text.replace("\n", "").isprintable()


#: The consoles for standard output and standard error.
stdout = TextConsole("stdout")
stderr = TextConsole("stderr")


def error_line(message: str) -> None:
    """One clear line on stderr; no markup interpretation of the message."""
    first = " ".join(str(message).split())
    stderr.print(f"[bold red]bitwitness: error:[/] {escape(first)}", soft_wrap=True)


def warn(message: str) -> None:
    stderr.print(f"[bold yellow]warning:[/] {escape(message)}")


def escape(text: str) -> str:
    """``text`` for a console: no markup interpreted, and no control sequence either.

    Messages carry names read from evidence (a partition's or an md array's name, a volume
    label, a path): a terminal must neither act on an escape sequence in them nor be driven by
    a bidirectional override, so each line goes through the same rule as listed names
    (:func:`~bitwitness.report.browse.safenames.shown`); line breaks are kept."""
    from bitwitness.report.browse.safenames import shown

    return markup.escape("\n".join(shown(line) for line in text.split("\n")))


def to_jsonable(value: Any) -> Any:
    """Dataclasses, enums, paths and datetimes to plain JSON types (recursively)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(v) for v in value]
    for kind, convert in _SCALARS:
        if isinstance(value, kind):
            return convert(value)
    return value


_SCALARS: tuple[tuple[type, Callable[[Any], Any]], ...] = (
    (enum.Enum, lambda v: v.value),
    (Path, str),
    (datetime, lambda v: v.isoformat()),
    (bytes, lambda v: v.hex()),
)


def print_json(document: Any) -> None:
    """Write one JSON document to stdout."""
    sys.stdout.write(json.dumps(to_jsonable(document), indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def print_json_listing(head: dict[str, Any], key: str, items: Iterable[Any]) -> None:
    """Write one JSON document on stdout: ``head`` with ``key`` (its last member) holding
    ``items``, formatted as :func:`print_json` formats it.

    Why: a listing of a million entries held as one list cost ~5 KiB an entry (1.2 GiB at
    250,000): the items are encoded one at a time into a spooled file (memory up to 8 MiB, then
    disk), and copied to stdout only once every item was encoded, so that a failure midway
    still leaves stdout with one document or nothing."""
    import shutil
    import tempfile

    shape = json.dumps(to_jsonable({**head, key: []}), indent=2, ensure_ascii=False)
    opening = shape[:shape.rindex("[]")]
    with tempfile.SpooledTemporaryFile(max_size=8 << 20, mode="w+", encoding="utf-8") as spool:
        spool.write(opening + "[")
        count = 0
        for item in items:
            text = json.dumps(to_jsonable(item), indent=2, ensure_ascii=False)
            spool.write(("," if count else "") + "\n    " + text.replace("\n", "\n    "))
            count += 1
        spool.write(("\n  ]" if count else "]") + "\n}\n")
        spool.seek(0)
        shutil.copyfileobj(spool, sys.stdout)
    sys.stdout.flush()


def json_option(func: F) -> F:
    """``--json``: print one JSON document on stdout instead of the human rendering."""
    return click.option("--json", "as_json", is_flag=True,
                        help="Print one JSON document on stdout.")(func)


class SizeType(click.ParamType):
    """A click parameter type for sizes: ``512``, ``640MB``, ``1.4GiB``, ``2G``.

    ``minimum`` rejects sizes below it at the command line, before any engine runs: a zero
    ``--segment-size`` would divide by zero, and a one-byte ``--split`` would make one file per
    byte of the media.
    """

    name = "size"

    def __init__(self, minimum: int = 0) -> None:
        self.minimum = minimum

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        try:
            size = parse_size(value if isinstance(value, int) else str(value))
        except UsageError as exc:
            self.fail(str(exc), param, ctx)
        if size < self.minimum:
            self.fail(f"must be at least {format_size(self.minimum)} ({self.minimum} bytes), "
                      f"got {value}", param, ctx)
        return size


SIZE = SizeType()
#: Sizes of output pieces (E01 segments, split raw files): at least 1 MiB, as ewfacquire demands.
PIECE_SIZE = SizeType(minimum=1 << 20)


def check_output_path(path: Path, *, folder: bool = False) -> None:
    """Refuse, before anything is written, an output whose parent folders cannot exist.

    A path under a regular file (``notes.txt/out``) can never be created; without this check the
    engines met it as a raw ``NotADirectoryError`` or ``FileExistsError`` deep inside. With
    ``folder`` the path itself must be (or become) a folder, so an existing file there is refused.
    """
    if folder and path.exists() and not path.is_dir():
        raise DestinationError(f"{path} is a file, not a folder", path=path)
    for parent in path.absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise DestinationError(f"cannot write {path}: {parent} is a file, not a folder",
                                       path=path)
            return


def reference_sentence(match: bool, algorithm: str, source: str) -> str:
    """``match: md5 equals the value stored in the image`` (or ``... recorded in LOG``)."""
    where = source if source.startswith(("stored ", "recorded ")) else f"recorded in {source}"
    if match:
        return f"match: {algorithm} equals the value {where}"
    return f"MISMATCH: {algorithm} differs from the value {where}"


def stamp_documents(stamps: list[Any]) -> list[dict[str, Any]]:
    """The ``--json`` form of timestamp tokens obtained (or why not)."""
    return [{"file": s.path, "token": s.token, "time": s.time, "error": s.error} for s in stamps]


def render_proofs(signatures: list[Any], stamps: list[Any], *, indent: str) -> None:
    """The signature files written and the timestamp tokens obtained (or why not: a warning)."""
    if not signatures and not stamps:
        return
    for sig in signatures:
        stdout.print(f"{indent}signed: {escape(str(sig))}")
    for s in stamps:
        if s.token:
            stdout.print(f"{indent}{escape(s.sentence())}")
        else:
            warn(s.sentence())
