"""What libewf will need to read an EWF set's file list (ltree), judged before pyewf opens it.

A logical evidence file (L01, Lx01) lists its files in a UTF-16LE text: the ``ltree`` section of
an EWF1 segment, the single files data section (type 0x20) of an EWF2 one. libewf parses that
text completely while it opens the set, before any of our own bounds can apply, and keeps every
entry it finds: a file entry, a source, a subject, a permission, an extended attribute each take
a structure of their own. What it costs was measured (pyewf 20260924, the peak RSS the
open alone adds; ``bench/bench_ltree_memory.py`` measures it again):

- one entry per two lines of a few characters (``0<TAB>0``, ``<TAB>a``): about 400 bytes of
  memory per line, 5.6 MB of text (800 000 lines) took 304 MiB;
- long names and extended attributes (hex in the text, one structure per 13 bytes): at most
  1.25 bytes of memory per byte of text (104 MB of attributes took 124 MiB);
- the tags EnCase 6 writes (tests/builders/logical.py): 100 000 files, 35 MB of text, took
  102 MiB.

So neither the section's size alone nor its line count alone says what the text will cost: a
bound on the size that stops the dense case would refuse any real set of more than ten thousand
files. :func:`check_ltree` therefore reads the sections' sizes from their descriptors, and counts
the text's lines (a bounded read, block by block) only when the size alone does not already
exceed the budget; the estimate is :data:`BYTES_PER_LINE` per line plus
:data:`BYTES_PER_TEXT_BYTE` per byte (the measured worst cases, a fifth or more to spare). A set
whose estimate exceeds the budget (:data:`DEFAULT_BUDGET`, or the examiner's ``bitwitness
--max-ltree SIZE``) is refused in one line (:class:`LtreeBudgetError`, exit 2) before libewf sees
it.

The walk over the sections decides nothing about the set's integrity (libewf does, when it
opens it): a descriptor whose checksum fails is still followed, so that no section libewf might
read is left out of the estimate; a chain that turns back or leaves the file ends the walk.
Every EWF set goes through the check (libewf reads an ltree in an E01 or Ex01 too), which costs
one small read per section.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path

from bitwitness.errors import UsageError
from bitwitness.evidence_io import open_readonly
from bitwitness.ewf import structures as st
from bitwitness.sizes import format_size

#: Memory libewf needs per line of the ltree text, at most (measured 400-470, see above).
BYTES_PER_LINE = 600
#: Memory libewf needs per byte of the text beyond its lines, at most (measured 1.25): numerator
#: and denominator, so that the estimate stays an integer.
BYTES_PER_TEXT_BYTE = (3, 2)
#: What libewf may take for the list unless the examiner allows more (``--max-ltree``): with the
#: interpreter, our own index of the tree and a mount's cache the process stays below 300 MiB.
DEFAULT_BUDGET = 200 << 20
#: Sections followed per segment at most (an E01 segment of 2 GiB holds a few thousand).
MAX_SECTIONS = 1 << 20
#: Bytes of text read at a time while counting lines (even: a line feed is two bytes).
_BLOCK = 1 << 20
_LINE_FEED = b"\n\x00"  # UTF-16LE; libewf reads no other byte order and no other line end
_LTREE_HEADER = 48  # EWF1: MD5, text size, Adler-32 and padding before the text
_EWF2_DESCRIPTOR = 64
_EWF2_SINGLE_FILES = 0x20
_EWF1_MAGICS = (st.EVF_MAGIC, st.LVF_MAGIC)
_EWF2_MAGICS = (st.EVF2_MAGIC, st.LEF2_MAGIC)

_MAX_LTREE: ContextVar[int | None] = ContextVar("max_ltree", default=None)


class LtreeBudgetError(UsageError):
    """libewf would need more memory for a set's file list than allowed; ``--max-ltree``."""


def set_max_ltree(limit: int | None) -> Callable[[], None]:
    """Allow libewf up to ``limit`` bytes for a file list for the rest of this context (the
    CLI's ``--max-ltree``, once per command line); returns what undoes it."""
    token = _MAX_LTREE.set(limit)
    return lambda: _MAX_LTREE.reset(token)


def budget() -> int:
    """The memory a file list may take: ``--max-ltree`` if given, else the default."""
    limit = _MAX_LTREE.get()
    return DEFAULT_BUDGET if limit is None else limit


@dataclass(frozen=True)
class LtreeSection:
    """One file-list text in a segment: where it starts and how many bytes it declares."""

    path: Path
    offset: int  #: file offset of the text
    size: int  #: bytes of text the descriptor declares (beyond the file, if it says so)


def text_cost(size: int, lines: int) -> int:
    """Bytes of memory libewf is estimated to need for a text of ``size`` bytes and ``lines``
    lines (an upper bound of what was measured)."""
    num, den = BYTES_PER_TEXT_BYTE
    return lines * BYTES_PER_LINE + -(-size * num // den)


def check_ltree(files: Iterable[Path | str]) -> int:
    """Refuse (:class:`LtreeBudgetError`) a set whose file lists libewf would need more than
    :func:`budget` bytes to read; otherwise return the estimate (0 without a list).

    ``files`` are the set's segment files, in any order. Nothing but descriptors and the lists'
    text is read, through the evidence opener.
    """
    sections = [s for path in files for s in ltree_sections(Path(path))]
    if not sections:
        return 0
    limit = budget()
    declared = sum(s.size for s in sections)
    if text_cost(declared, 0) > limit:  # the size alone says it: nothing more is read
        _refuse(sections[0].path, limit, text_cost(declared, 0),
                f"declares {declared} bytes of file list (ltree)")
    lines = sum(count_lines(s) for s in sections)
    cost = text_cost(declared, lines)
    if cost > limit:
        _refuse(sections[0].path, limit, cost,
                f"its file list (ltree) holds {lines} lines in {declared} bytes")
    return cost


def _refuse(path: Path, limit: int, cost: int, what: str) -> None:
    allow = -(-cost // (1 << 20))
    raise LtreeBudgetError(
        f"{path}: {what}; libewf would need about {format_size(cost)} of memory to read it, "
        f"more than the {format_size(limit)} allowed: pass bitwitness --max-ltree {allow}MiB "
        f"to open it anyway")


def count_lines(section: LtreeSection) -> int:
    """Line feeds in a section's text, read a block at a time (what lies beyond the file is not
    there to count). Blocks are even-sized from the text's start, so a line feed (two bytes at
    an even offset) never straddles two blocks; two bytes that merely look like one across two
    characters are counted too, which only raises the estimate."""
    fd = open_readonly(section.path)
    try:
        count, at, end = 0, section.offset, section.offset + section.size
        while at < end:
            block = os.pread(fd, min(_BLOCK, end - at), at)
            if not block:
                break
            count += block.count(_LINE_FEED)
            at += len(block)
        return count
    finally:
        os.close(fd)


def ltree_sections(path: Path) -> list[LtreeSection]:
    """The file-list sections of one segment file (none when it is not an EWF segment)."""
    fd = open_readonly(path)
    try:
        size = os.fstat(fd).st_size
        head = os.pread(fd, 8, 0)
        if head in _EWF1_MAGICS:
            return [LtreeSection(path, offset + st.DESCRIPTOR_SIZE + _LTREE_HEADER,
                                 max(0, length - st.DESCRIPTOR_SIZE - _LTREE_HEADER))
                    for kind, offset, length in _ewf1_sections(fd, size) if kind == b"ltree"]
        if head in _EWF2_MAGICS:
            return [LtreeSection(path, start, length)
                    for kind, start, length in _ewf2_sections(fd, size)
                    if kind == _EWF2_SINGLE_FILES]
        return []
    finally:
        os.close(fd)


def _ewf1_sections(fd: int, size: int) -> Iterator[tuple[bytes, int, int]]:
    """(type, descriptor offset, declared size) along an EWF1 segment's chain of ``next``
    offsets, from the file header on."""
    offset = st.FILE_HEADER_SIZE
    for _ in range(MAX_SECTIONS):
        raw = os.pread(fd, st.DESCRIPTOR_SIZE, offset)
        if len(raw) < st.DESCRIPTOR_SIZE:
            return
        kind = raw[:16].split(b"\x00", 1)[0]
        following, declared = struct.unpack_from("<QQ", raw, 16)
        yield kind, offset, declared
        if kind in (b"next", b"done") or following <= offset or following >= size:
            return
        offset = following


def _ewf2_sections(fd: int, size: int) -> Iterator[tuple[int, int, int]]:
    """(type, data offset, declared data size) of an EWF2 segment's sections, from the last
    descriptor (at the file's end) back along their ``previous`` offsets."""
    at = size - _EWF2_DESCRIPTOR
    for _ in range(MAX_SECTIONS):
        if at <= 0:
            return
        raw = os.pread(fd, _EWF2_DESCRIPTOR, at)
        if len(raw) < _EWF2_DESCRIPTOR:
            return
        kind, _flags, previous, declared = struct.unpack_from("<IIQQ", raw)
        yield kind, max(0, at - declared), declared
        if not previous or previous >= at:
            return
        at = previous
