"""The two bridges between our byte streams and the libyal bindings (pyluksde, pyvshadow, ...).

* :class:`FileObject` hands an :class:`~bitwitness.stream.ImageStream` to a libyal
  ``open_file_object``: libyal seeks and reads it like a Python file; a stream error is kept so
  that the evidence problem, not libyal's "read failed", is what the analyst sees.
* :class:`LibyalStream` is the other way round: a decrypted volume or a shadow-copy store that a
  libyal object reads becomes an ``ImageStream`` that TSK, hashing and export read like any other.
"""

from __future__ import annotations

import os
import re
import threading
from typing import Any

from bitwitness.errors import BitWitnessError, FormatError
from bitwitness.stream import ImageStream, SliceStream, StreamInfo

#: One clause of a libyal error message: ``function: reason.``
_CLAUSE = re.compile(r"(?:^|\. )[A-Za-z0-9_]+: (.+?)(?=\. [A-Za-z0-9_]+: |\.?$)")


def short_reason(exc: BaseException) -> str:
    """A libyal error shortened to what the analyst needs, on one line: the binding's own
    clause and the innermost reason. libyal lists the whole call chain (``function: reason.``
    from the binding down, then from the innermost function up), which would drown the line."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    clauses = _CLAUSE.findall(text)
    if len(clauses) < 2:
        return text
    return f"{clauses[0]}: {clauses[1]}"


class FileObject:
    """A file-like view (read, seek, tell, get_size) of a stream, for one libyal object."""

    def __init__(self, stream: ImageStream) -> None:
        # A slice of our own: libyal moves its position, nobody else may share it.
        self._stream = SliceStream(stream, 0, stream.size)
        self.error: BitWitnessError | None = None

    def read(self, size: int = -1) -> bytes:
        try:
            return self._stream.read(size)
        except BitWitnessError as exc:
            self.error = exc
            raise OSError(str(exc)) from exc

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return self._stream.seek(offset, whence)

    def tell(self) -> int:
        return self._stream.tell()

    def get_size(self) -> int:
        return self._stream.size

    def take_error(self) -> BitWitnessError | None:
        error, self.error = self.error, None
        return error


class LibyalStream(ImageStream):
    """An ``ImageStream`` over a libyal object with ``read_buffer_at_offset`` (one at a time)."""

    def __init__(self, handle: Any, size: int, *, what: str, source: FileObject,
                 sector_size: int = 512) -> None:
        super().__init__(size, sector_size=sector_size)
        self.alignment = 1
        self._handle = handle
        self._what = what
        self._source = source
        self._lock = threading.Lock()

    def _read_aligned(self, offset: int, length: int) -> bytes:
        with self._lock:
            self._source.take_error()
            try:
                data = bytes(self._handle.read_buffer_at_offset(length, offset))
            except (OSError, ValueError) as exc:
                cause = self._source.take_error()
                if cause is not None:
                    raise cause from exc
                raise FormatError(f"{self._what}: cannot read {length} bytes at offset "
                                  f"{offset}: {' '.join(str(exc).split())}") from exc
        if len(data) != length:
            raise FormatError(f"{self._what}: {len(data)} of {length} bytes at offset {offset}")
        return data

    @property
    def info(self) -> StreamInfo:
        return StreamInfo(format="volume", files=(), media_size=self.size,
                          sector_size=self.sector_size, details={"volume": self._what})
