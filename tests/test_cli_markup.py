"""The consoles' markup without rich (``bitwitness.cli.markup``), held to rich itself.

Off a terminal the commands write :func:`~bitwitness.cli.markup.plain` of their markup instead
of asking rich: it must be the text rich writes there, byte for byte, for any markup; and text
put through :func:`~bitwitness.cli.markup.escape` must print as itself, through either, whatever
markup stands around it.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st
from rich.console import Console
from rich.errors import MarkupError

from bitwitness.cli import markup, output


def rich_text(*objects: str, sep: str = " ", end: str = "") -> str:
    """What rich writes for ``objects`` on a stream that is no terminal, with our settings."""
    stream = io.StringIO()
    Console(file=stream, highlight=False, soft_wrap=True, emoji=False).print(
        *objects, sep=sep, end=end)
    return stream.getvalue()


#: Pieces of markup: tags rich knows, and the characters its grammar turns on.
PIECES = st.sampled_from(["[bold]", "[dim]", "[/]", "[/bold]", "[red]", "[#ff0000]", "[b=1]",
                          "[", "]", "\\", "\\\\", "a", "b", "/", "#", "@", "=", " ", "1", "\n",
                          "é", "[[", "[1]", "[ ]"])


@given(st.lists(PIECES, max_size=24).map("".join))
@example("x\\\\[bold]y[/]")
@example("\\[1]")
@example("a\\\\[b")
def test_plain_is_what_rich_prints(text: str) -> None:
    try:
        expected = rich_text(text)
    except MarkupError:  # a closing tag with nothing open: ours never write one
        assume(False)
    assert markup.plain(text) == expected


#: Markup around escaped text, as the commands write it.
CONTEXTS = ["{}", "[bold]{}[/]", "[bold]{}[/] ({})", "  {}:  {}", "[dim]note: {}[/]",
            "{}[red]{}[/]", "{}{}"]

TEXT = st.text(st.sampled_from("ab/#@=1 é[]\\"), max_size=16) | st.text(max_size=16).filter(
    lambda t: t.isprintable())


@given(st.sampled_from(CONTEXTS), TEXT, TEXT)
@example("{}", "a\\", "")
@example("[bold]{}[/] ({})", "a\\\\", "b\\")
@example("{}{}", "[", "bold]")
@example("{}{}", "\\", "[1]")
def test_escaped_text_prints_as_itself(context: str, first: str, second: str) -> None:
    """Through rich and through ``plain``; rich's own escape fails the examples (a name ending
    in one or two backslashes, ``\\[1]``, a ``[`` whose tag the next text closes)."""
    made = context.format(markup.escape(first), markup.escape(second))
    bare = context
    for tag in ("[bold]", "[dim]", "[red]", "[/]"):
        bare = bare.replace(tag, "")
    wanted = bare.format(first, second)
    assert rich_text(made) == wanted
    assert markup.plain(made) == wanted


def test_escape_leaves_plain_text_alone() -> None:
    """Nearly every name: no ``[``, no backslash at the end, nothing added."""
    for text in ("report.txt", "C:\\Users\\x y", "a]b", ""):
        assert markup.escape(text) == text


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@given(st.lists(st.text(max_size=12) | st.lists(PIECES, max_size=8).map("".join), max_size=3),
       st.sampled_from([" ", "", ", ", "\t"]), st.sampled_from(["\n", "", "\r\n"]))
def test_console_writes_what_rich_writes(objects: list[str], sep: str, end: str) -> None:
    """``TextConsole.print`` against rich's ``print`` on a stream that is no terminal, with
    every kind of text: what it writes itself and what it hands to rich (controls, tabs)."""
    try:
        expected = rich_text(*objects, sep=sep, end=end)
    except MarkupError:
        assume(False)
    ours = io.StringIO()
    with contextlib.redirect_stdout(ours):
        output.TextConsole("stdout").print(*objects, sep=sep, end=end)
    assert ours.getvalue() == expected


def test_console_leaves_terminals_and_tables_to_rich(monkeypatch: pytest.MonkeyPatch) -> None:
    from rich.table import Table

    for name in output.TERMINAL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    console = output.TextConsole("stdout")
    monkeypatch.setattr("sys.stdout", io.StringIO())
    console.print("[bold]plain[/]")
    assert console._rich is None
    assert sys.stdout.getvalue() == "plain\n"
    table = Table("name")
    table.add_row("x")
    console.print(table)  # a table: rich lays it out
    assert console._rich is not None
    assert "x" in sys.stdout.getvalue()
    monkeypatch.setattr("sys.stdout", Tty())
    monkeypatch.setenv("FORCE_COLOR", "1")
    console = output.TextConsole("stdout")
    console.print("[bold]styled[/]")
    assert console._rich is not None
    assert "\x1b[1mstyled" in sys.stdout.getvalue()  # rich drew it, with its bold


@pytest.mark.parametrize("forced", [False, True])
def test_info_prints_without_rich_off_a_terminal(tmp_path: Path, forced: bool) -> None:
    """A fresh ``info`` into a pipe loads no rich module (as the start-up benchmark runs it);
    with FORCE_COLOR, rich draws it: the same lines, with its styles."""
    image = tmp_path / "small.raw"
    image.write_bytes(bytes(range(256)) * 64)
    code = ("import sys\nfrom bitwitness.cli.main import main\n"
            "try:\n    main(sys.argv[1:])\nexcept SystemExit as exc:\n    assert not exc.code\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'rich'), "
            "file=sys.stderr)")
    env = {k: v for k, v in os.environ.items() if k not in output.TERMINAL_VARIABLES}
    if forced:
        env["FORCE_COLOR"] = "1"
    proc = subprocess.run([sys.executable, "-c", code, "info", str(image)], env=env,
                          capture_output=True, text=True, check=False, timeout=120)
    assert proc.returncode == 0, proc.stderr
    loaded = proc.stderr.strip().splitlines()[-1]
    assert ("'rich.console'" in loaded) is forced
    assert (f"\x1b[1m{image}" in proc.stdout) is forced
    assert "  Media size:             16.0 KiB (16384 bytes)" in proc.stdout.replace(
        "\x1b[0m", "")


def test_info_with_its_output_closed(tmp_path: Path) -> None:
    """Started with standard output closed (``sys.stdout`` is None), ``info`` prints nothing and
    exits 0 as it did through rich, which writes such output nowhere; not an internal error."""
    image = tmp_path / "small.raw"
    image.write_bytes(bytes(512))
    proc = subprocess.run(["sh", "-c", 'exec "$0" -m bitwitness info "$1" >&-', sys.executable,
                           str(image)], capture_output=True, text=True, check=False, timeout=120)
    assert proc.stderr == ""
    assert proc.returncode == 0
