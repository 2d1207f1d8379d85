"""Output helpers shared by every command: the rich consoles, ``--json``, sizes, errors.

``--json`` means: exactly one JSON document on stdout and nothing else there (progress and
notices go to stderr). Keys are stable and documented in the README.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console

from bitwitness.errors import UsageError
from bitwitness.sizes import parse_size

F = TypeVar("F", bound=Callable[..., Any])

stdout = Console(highlight=False, soft_wrap=True)
stderr = Console(stderr=True, highlight=False, soft_wrap=True)


def error_line(message: str) -> None:
    """One clear line on stderr; no markup interpretation of the message."""
    first = " ".join(str(message).split())
    stderr.print(f"[bold red]bitwitness: error:[/] {escape(first)}", soft_wrap=True)


def warn(message: str) -> None:
    stderr.print(f"[bold yellow]warning:[/] {escape(message)}")


def escape(text: str) -> str:
    from rich.markup import escape as _escape

    return _escape(text)


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


def json_option(func: F) -> F:
    """``--json``: print one JSON document on stdout instead of the human rendering."""
    return click.option("--json", "as_json", is_flag=True,
                        help="Print one JSON document on stdout.")(func)


class SizeType(click.ParamType):
    """A click parameter type for sizes: ``512``, ``640MB``, ``1.4GiB``, ``2G``."""

    name = "size"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        try:
            return parse_size(str(value))
        except UsageError as exc:
            self.fail(str(exc), param, ctx)


SIZE = SizeType()
