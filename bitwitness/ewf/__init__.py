"""The Expert Witness format (E01, EnCase 6 flavour): our own writer and a fast reader.

The public API (see ``docs/DESIGN.md``, section EWF) is re-exported here; the on-disk layouts live
once in :mod:`bitwitness.ewf.structures` and are shared by :mod:`~bitwitness.ewf.writer` and
:mod:`~bitwitness.ewf.reader`. pyewf stays outside, as the independent implementation that checks
ours in the tests and reads what ours does not (Ex01, L01).
"""

from __future__ import annotations

from bitwitness.ewf.chunks import (
    Compression,
    EncodedChunk,
    decode_chunk,
    encode_chunk,
    encode_chunks,
)
from bitwitness.ewf.headers import EwfMetadata, MediaType
from bitwitness.ewf.layout import SectionProblem
from bitwitness.ewf.naming import segment_path
from bitwitness.ewf.reader import ChunkProblem, EwfImage, ScanBlock, open_ewf
from bitwitness.ewf.writer import DEFAULT_SEGMENT_SIZE, EwfWriter, EwfWriteResult

__all__ = [
    "DEFAULT_SEGMENT_SIZE",
    "ChunkProblem",
    "Compression",
    "EncodedChunk",
    "EwfImage",
    "EwfMetadata",
    "EwfWriteResult",
    "EwfWriter",
    "MediaType",
    "ScanBlock",
    "SectionProblem",
    "decode_chunk",
    "encode_chunk",
    "encode_chunks",
    "open_ewf",
    "segment_path",
]
