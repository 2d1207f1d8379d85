"""What a user chooses for an E01 output: the compression level and the segment size.

A module of its own, without the codec: the command line, the acquisition engine and convert
name these choices (option lists, defaults, checks) without loading zlib/isal, and a raw
acquisition never needs the EWF writer at all.
"""

from __future__ import annotations

from enum import StrEnum


class Compression(StrEnum):
    """Chunk compression levels, as ewfacquire names them."""

    NONE = "none"
    EMPTY = "empty"  #: only all-zero chunks are compressed
    FAST = "fast"
    BEST = "best"


#: The level names, in order: what ``--compress`` accepts.
COMPRESSION_NAMES: tuple[str, ...] = tuple(level.value for level in Compression)

#: 1500 MiB ("1.4 GiB"), ewfacquire's default segment file size.
DEFAULT_SEGMENT_SIZE = 1_572_864_000
