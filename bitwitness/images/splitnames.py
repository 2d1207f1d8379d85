"""How split raw pieces are named, and each name's place in its set.

Three ways are found on evidence:

* fixed width: ``x.001 .. x.999`` (FTK Imager, dcfldd, ``split -d -a 3``), ``x.aa .. x.zz``
  (``split -a 2``); a numbered set that outgrows its width goes on with wider numbers
  (``x.999``, ``x.1000``), which continue the count. Lettered names of three letters and more
  (dc3dd's ``ofs=x.aaa``, ``split -a 3``) are a set only where its first piece is found with
  another near it (``x.aaa``, ``x.aab``), and then only the run of names from there
  (:func:`lettered_run`): ``x.log`` and ``x.txt`` beside the pieces are not pieces;
* GNU ``split`` without ``-a`` (the default): two characters, widened as the names run out:
  ``aa .. yz`` then ``zaaa .. zyzz`` then ``zzaaaaa ..``, and with ``-d`` ``00 .. 89`` then
  ``9000 .. 9899`` then ``990000 ..``: each widening puts one more last character (``z``, ``9``)
  in front of a suffix one character longer, so that the names still sort in order. A set of
  more than 650 lettered (90 numbered) pieces, a 2 TB disk cut in 2 GB pieces, has such names;
  read as two-character names only, the set ended at ``yz`` and the media was cut short.

:class:`Scheme` gives a suffix's index in the set (None when the scheme has no such name) and
the name of an index (for the piece that is missing).
"""

from __future__ import annotations

import string
from dataclasses import dataclass

DIGITS = string.digits
LETTERS = string.ascii_lowercase


@dataclass(frozen=True)
class Scheme:
    """One naming of pieces: its alphabet, the first piece's suffix width, and whether the
    names widen as GNU split's default ones do."""

    alphabet: str
    width: int
    widening: bool

    @property
    def numeric(self) -> bool:
        return self.alphabet == DIGITS

    def index(self, suffix: str) -> int | None:
        """The place of ``suffix`` in the set (the first name 0), or None when no piece of
        this scheme is named so."""
        if not suffix or any(c not in self.alphabet for c in suffix):
            return None
        if not self.widening:
            return self._fixed_index(suffix)
        extra = len(suffix) - self.width
        if extra < 0 or extra % 2:
            return None
        level, last = extra // 2, self.alphabet[-1]
        if suffix[:level] != last * level or suffix[level] == last:
            return None
        return self._before(level) + _value(suffix[level:], self.alphabet)

    def _fixed_index(self, suffix: str) -> int | None:
        if len(suffix) == self.width:
            return _value(suffix, self.alphabet)
        # a numbered set going on past its width: x.999, x.1000 (no leading zero)
        if self.numeric and len(suffix) > self.width and suffix[0] != "0":
            return int(suffix)
        return None

    def name(self, index: int) -> str:
        """The suffix of the piece at ``index``."""
        base = len(self.alphabet)
        if not self.widening:
            if self.numeric and index >= base ** self.width:
                return str(index)
            return _digits(index, self.width, self.alphabet)
        level = 0
        while index >= self._before(level + 1):
            level += 1
        rest = index - self._before(level)
        return self.alphabet[-1] * level + _digits(rest, self.width + level, self.alphabet)

    def _before(self, level: int) -> int:
        """How many names come before the first of widening ``level`` (0: the first names):
        each level's first character is any but the last."""
        base = len(self.alphabet)
        return sum((base - 1) * base ** (self.width - 1 + k) for k in range(level))


def _value(text: str, alphabet: str) -> int:
    value = 0
    for char in text:
        value = value * len(alphabet) + alphabet.index(char)
    return value


def _digits(value: int, width: int, alphabet: str) -> str:
    base = len(alphabet)
    out = []
    for _ in range(width):
        value, digit = divmod(value, base)
        out.append(alphabet[digit])
    return "".join(reversed(out))


def scheme_for(suffixes: list[str]) -> Scheme | None:
    """The naming of a set whose pieces have these suffixes (all of one alphabet), or None
    when they are no split set's. Two-character names are GNU split's widening default unless
    a two-character name begins with the last character (``za``, ``90``), which only
    ``split -a 2`` writes; longer first names are of a fixed width."""
    if not suffixes:
        return None
    alphabet = DIGITS if suffixes[0][0] in DIGITS else LETTERS
    if any(c not in alphabet for s in suffixes for c in s):
        return None
    width = min(len(s) for s in suffixes)
    if width < 2:
        return None
    if width == 2:
        fixed = any(len(s) == 2 and s[0] == alphabet[-1] for s in suffixes)
        return Scheme(alphabet, 2, not fixed)
    if alphabet == LETTERS and not _lettered_start(suffixes, width):
        # three letters and more (dc3dd's ``ofs=x.aaa``, ``split -a 3``) are also every log's
        # and text file's extension beside the pieces: a set only where its first piece is
        # found with another near it, and then only the run of names from the first (see
        # LETTERED_REACH)
        return None
    return Scheme(alphabet, width, False)


def _lettered_start(suffixes: list[str], width: int) -> bool:
    """Whether the names hold a lettered set's first piece (``aaa``) and another piece within
    :data:`LETTERED_REACH` of it (``aab``; ``aac`` where ``aab`` is missing)."""
    values = {_value(s, LETTERS) for s in suffixes if len(s) == width}
    return 0 in values and any(0 < value <= LETTERED_REACH for value in values)


#: A lettered set of three letters and more is the run of names from ``aaa`` on; a name of
#: its width at most this many places past the run's end is a piece after a missing one
#: (x.aaa, x.aab, x.aad: x.aac is missing), one farther away is another file (x.log, x.txt).
LETTERED_REACH = 26


def lettered_run(scheme: Scheme, indexes: list[int]) -> list[int]:
    """The pieces of a lettered set of three letters and more among the sorted ``indexes`` of
    the names found: the run from the first name on. Raises ValueError with the index of the
    first missing piece when a name lies within :data:`LETTERED_REACH` past the run."""
    run = 0
    while run < len(indexes) and indexes[run] == run:
        run += 1
    if any(index - run < LETTERED_REACH for index in indexes[run:]):
        raise ValueError(run)
    return indexes[:run]
