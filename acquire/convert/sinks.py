"""The VHD and VMDK writers as sinks of the acquisition pipeline (``bitwitness.acquire``).

Conversion reuses the acquisition pipeline (reader thread, hash threads, in-order writer); raw and
E01 outputs use its own sinks. This adapter gives the virtual-disk writers the same interface.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bitwitness.acquire.convert.outputs import MediaSink
from bitwitness.acquire.sinks import Keep, OutputFile, Resumed, durable_now
from bitwitness.errors import OutputExistsError, UsageError


class WriterSink:
    """A :class:`~bitwitness.acquire.convert.outputs.MediaSink` behind the ``Sink`` contract
    (:class:`bitwitness.acquire.sinks.Sink`)."""

    def __init__(self, factory: Callable[[], MediaSink], planned: Sequence[Path], *,
                 overwrite: bool = False) -> None:
        self._factory = factory
        self._planned = list(planned)
        self._overwrite = overwrite
        self._writer: MediaSink | None = None

    def planned_paths(self) -> list[Path]:
        return list(self._planned)

    def prepare(self) -> None:
        if not self._overwrite:
            for path in self._planned:
                if path.exists() or path.is_symlink():
                    raise OutputExistsError(path)
        self._writer = self._factory()

    def resume(self, limit: int) -> Resumed:
        raise UsageError("a conversion to a virtual disk cannot be resumed; start it again")

    def make_durable(self) -> int:
        """Nothing of an unfinished virtual disk can be resumed (its tables are written at the
        end): 0."""
        return 0

    def durable_soon(self) -> Callable[[], int]:
        return durable_now(self)

    def encode(self, data: memoryview) -> Any:
        return None  # nothing to precompute: the writers store the media as it is

    def write(self, encoded: Any, data: memoryview, keep: Keep | None = None) -> None:
        assert self._writer is not None, "prepare() first"
        self._writer.write(data)

    def finish(self, *, hashes: dict[str, str],
               errors: Sequence[tuple[int, int]]) -> list[OutputFile]:
        assert self._writer is not None, "prepare() first"
        return [OutputFile(p, p.stat().st_size) for p in self._writer.finish()]

    def abort(self) -> list[OutputFile]:
        if self._writer is None:
            return []
        return [OutputFile(p, p.stat().st_size) for p in self._writer.abort() if p.exists()]
