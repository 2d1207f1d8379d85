"""The console markup our commands print (``[bold]...[/]``): escaping text into it, and the
plain text it stands for.

The commands write rich's markup. On a terminal rich renders it; anywhere else (a pipe, a file,
a test) rich would only drop the tags, and importing rich to do that cost a quarter of a short
command's time (~40 ms of ``info``), so :func:`plain` does it: the same text rich writes off a
terminal, held equal to rich by the tests on generated markup.

The markup language, as rich reads it: a tag is ``[`` then a letter, ``#``, ``/`` or ``@``, then
anything but ``[`` up to the first ``]``. A run of backslashes right before a tag prints half of
itself, and an odd run makes the tag literal text. Elsewhere a backslash right before ``[`` is
dropped, and every other backslash prints as itself.

:func:`escape` puts text into markup so that it prints exactly as it is whatever markup comes
before or after it. rich's own escape does not: a name ending in a backslash prints with two
backslashes at the end of a line, and with one fewer before a tag (``name\\\\`` as ``name\\``);
and ``\\[1]`` prints as ``[1]``.
"""

from __future__ import annotations

import re

#: A tag with the run of backslashes before it: (backslashes, tag text inside the brackets).
_TAG = re.compile(r"(\\*)\[([a-z#/@][^\[]*?)]")
#: What may follow ``[`` in a tag.
_TAG_START = re.compile(r"[a-z#/@]")
#: A ``[`` and the backslashes before it, or the backslashes that end the text.
_BRACKET_OR_END = re.compile(r"(\\*)(\[|\Z)")
#: An empty styled span: prints nothing, and parts what is before it from what follows.
_GUARD = "[dim][/]"


def escape(text: str) -> str:
    """``text`` as markup that prints as ``text`` before and after any other markup.

    A ``[`` that could open a tag is followed by :data:`_GUARD` (an empty span), so it opens
    none, here or with whatever follows the text; the backslashes before any ``[`` are
    written so that they print as they are; a run of backslashes at the end is doubled and
    closed by the guard, so the markup after it cannot take it for an escape.
    """
    if "[" not in text and not text.endswith("\\"):
        return text  # nearly every name and message
    return _BRACKET_OR_END.sub(lambda m: _escaped(m, text), text)


def _escaped(match: re.Match[str], text: str) -> str:
    backslashes, bracket = match.groups()
    if not bracket:  # the end of the text
        return backslashes * 2 + _GUARD if backslashes else ""
    # "\[" outside a tag prints "[": one more backslash keeps the run whole
    run = backslashes + "\\" if backslashes else ""
    after = match.end()
    if after == len(text) or _TAG_START.match(text, after):
        return run + "[" + _GUARD
    return run + "["


def plain(markup: str) -> str:
    """The text rich prints for ``markup`` on a stream that is no terminal: the tags dropped,
    the escapes undone.

    ``markup`` is ours (tags opened and closed in order, text through :func:`escape`); rich
    refuses a closing tag that closes nothing, this keeps what is around it."""
    if "[" not in markup:
        return markup
    out: list[str] = []
    position = 0
    for tag in _TAG.finditer(markup):
        out.append(markup[position:tag.start()].replace("\\[", "["))
        backslashes = len(tag.group(1))
        out.append("\\" * (backslashes // 2))
        if backslashes % 2:  # an escaped tag: its text is printed
            out.append(tag.group()[backslashes:])
        position = tag.end()
    out.append(markup[position:].replace("\\[", "["))
    return "".join(out)
