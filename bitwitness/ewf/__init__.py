"""The Expert Witness format (E01, EnCase 6 flavour): our own writer and a fast reader.

The public API (see ``docs/DESIGN.md``, section EWF) is re-exported here; the on-disk layouts live
once in :mod:`bitwitness.ewf.structures` and are shared by :mod:`~bitwitness.ewf.writer` and
:mod:`~bitwitness.ewf.reader`; ``docs/EWF.md`` describes the format as this code relies on it.
pyewf stays outside, as the independent implementation that checks ours in the tests and reads
what ours does not (Ex01, L01).

Each re-export is imported on first use (PEP 562 ``__getattr__``): writing an E01 loads the
writer without the reader, and a raw acquisition loads neither (``tests/test_startup.py``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bitwitness.ewf.chunks import (
        EncodedChunk,
        decode_chunk,
        encode_chunk,
        encode_chunks,
    )
    from bitwitness.ewf.headers import EwfMetadata, MediaType
    from bitwitness.ewf.layout import SectionProblem
    from bitwitness.ewf.naming import segment_path
    from bitwitness.ewf.options import DEFAULT_SEGMENT_SIZE, Compression
    from bitwitness.ewf.reader import ChunkProblem, EwfImage, ScanBlock, open_ewf
    from bitwitness.ewf.writer import EwfWriter, EwfWriteResult

#: Public name -> the submodule that defines it.
_EXPORTS = {
    "Compression": "options",
    "EncodedChunk": "chunks",
    "decode_chunk": "chunks",
    "encode_chunk": "chunks",
    "encode_chunks": "chunks",
    "EwfMetadata": "headers",
    "MediaType": "headers",
    "SectionProblem": "layout",
    "segment_path": "naming",
    "ChunkProblem": "reader",
    "EwfImage": "reader",
    "ScanBlock": "reader",
    "open_ewf": "reader",
    "DEFAULT_SEGMENT_SIZE": "options",
    "EwfWriter": "writer",
    "EwfWriteResult": "writer",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is not None:
        value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
        # kept, so later lookups are plain attribute reads (and monkeypatch can restore it)
        return globals().setdefault(name, value)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})


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
