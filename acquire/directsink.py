"""Raw images written around the page cache: :class:`DirectRawSink`.

Why: see :mod:`bitwitness.directwrite`. An acquisition or a conversion to raw writes its image
file once, front to back, and never reads it while writing; the kernel's copy into the page
cache is CPU that the hashing needs (and varies from run to run), so the image goes to the disk
through :class:`~bitwitness.directwrite.DirectFile`. Everything else (names, ``.partial`` files,
sidecars, split sets, resuming, fsyncs, hashes) is :class:`~bitwitness.acquire.sinks.RawSink`'s.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bitwitness.acquire.sinks import Keep, OutputFile, RawSink, Resumed
from bitwitness.directwrite import DirectFile


class DirectRawSink(RawSink):
    """:class:`~bitwitness.acquire.sinks.RawSink` whose one image file (no ``split``) is written
    through :class:`DirectFile`; split sets, a resumed output and file systems without
    ``O_DIRECT`` are written as :class:`RawSink` writes them. Names, sidecars, fsyncs and
    hashes are :class:`RawSink`'s."""

    def __init__(self, base: Path, *, media_size: int, algorithms: Sequence[str],
                 split: int | None = None, overwrite: bool = False) -> None:
        super().__init__(base, media_size=media_size, algorithms=algorithms, split=split,
                         overwrite=overwrite)
        self._direct: DirectFile | None = None

    def prepare(self) -> None:
        super().prepare()
        if self.split is None and hasattr(os, "O_DIRECT"):
            with contextlib.suppress(OSError):  # EINVAL: no O_DIRECT here, buffered it is
                self._direct = DirectFile(self.partial_paths()[0])

    def resume(self, limit: int) -> Resumed:
        self._close_direct()
        return super().resume(limit)

    def write(self, encoded: Any, data: memoryview, keep: Keep | None = None) -> None:
        if self._direct is None:
            super().write(encoded, data, keep)
            return
        part = memoryview(data)[:self.media_size - self.written]
        self._direct.write(part)
        self.written += len(part)

    def make_durable(self) -> int:
        if self._direct is not None:
            self._direct.flush()
        return super().make_durable()

    def durable_soon(self) -> Callable[[], int]:
        """:meth:`RawSink.durable_soon` with the staged bytes: their write is started here
        (:meth:`DirectFile.flush_soon`) and waited for, then fsynced, by the returned function.
        The fsync goes through a duplicate of the sink's own descriptor: fsync covers the file,
        however it was written."""
        if self._direct is None or self._fd is None:
            return super().durable_soon()
        written = self._direct.flush_soon()
        fd = os.dup(self._fd)

        def wait() -> int:
            try:
                media = written()
                os.fsync(fd)
            finally:
                os.close(fd)
            return media
        return wait

    def finish(self, *, hashes: dict[str, str],
               errors: Sequence[tuple[int, int]]) -> list[OutputFile]:
        self._close_direct()
        return super().finish(hashes=hashes, errors=errors)

    def abort(self) -> list[OutputFile]:
        # the job failed already (often this very file's write): what is staged is written if
        # it can be, and the output is left unfinished either way, as RawSink leaves it
        with contextlib.suppress(OSError):
            self._close_direct()
        return super().abort()

    def _close_direct(self) -> None:
        direct, self._direct = self._direct, None
        if direct is not None:
            direct.close()
