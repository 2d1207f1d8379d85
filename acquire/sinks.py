"""Where the media goes: E01 (through :class:`bitwitness.ewf.EwfWriter`) or raw, single or split.

A sink receives blocks strictly in media order. ``encode`` is pure and thread-safe (the pipeline
runs it in a pool); ``write``, ``finish`` and ``abort`` run in one thread. A block is a view of
one of the pipeline's reusable buffers: valid only until ``write`` returns, so a sink writes it
out (or copies what it keeps) before returning, and keeps no view of it, unless it borrows the
buffer with ``keep`` (and gives it back once written: the E01 writer, per group). ``finish``
makes the output final (E01 ``done``; raw files renamed from ``.partial`` and their sidecars
written); ``abort`` leaves it visibly unfinished (E01 without ``done``; raw files keep
``.partial``), so nothing interrupted can pose as a complete image.

Raw output choice (documented for court): while writing, every raw file is named
``<final>.partial``. Only a finished acquisition (with or without read errors) renames them and
writes the ``BASE.md5``/``.sha1``/``.sha256`` sidecars (``md5sum -c`` format, one line per file).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from glob import escape as glob_escape
from pathlib import Path
from typing import Any, Protocol, TypeAlias

from bitwitness.errors import OutputExistsError
from bitwitness.fileio import WriteBehind, fsync_path, write_all
from bitwitness.hashing import MultiHasher, ThreadedHasher, hash_file
from bitwitness.images.raw import PARTIAL_SUFFIX

PARTIAL = PARTIAL_SUFFIX  #: the one name for "not finished" (verify recognises it)


@dataclass(frozen=True)
class OutputFile:
    """One file an acquisition wrote: path, size, and (when known) its own hashes."""

    path: Path
    size: int
    hashes: dict[str, str] = field(default_factory=dict)
    role: str = "image"  #: "image" (part of the image set) or "sidecar"


#: ``keep()`` lends the block's buffer to a sink past ``write``: it returns the function to call
#: once the sink is done with it, or ``None`` (no loan: copy what you keep).
Keep: TypeAlias = Callable[[], Callable[[], None] | None]


@dataclass(frozen=True)
class Resumed:
    """What an output kept of an interrupted run: its first ``media_bytes`` media bytes, durable
    in its files. Iterating reads those bytes back from the output (to re-hash them, so that the
    final hashes cover exactly what the files hold); it changes nothing."""

    media_bytes: int
    read: Callable[[], Iterator[bytes]]

    def __iter__(self) -> Iterator[bytes]:
        return self.read()


class Sink(Protocol):
    """An output of a job, as the runner and the pipeline drive it.

    Order: :meth:`prepare` (a new output) or :meth:`resume` (continue an interrupted one), then
    :meth:`encode`/:meth:`write` per block in media order, with :meth:`make_durable` between
    blocks at checkpoints, then exactly one of :meth:`finish` or :meth:`abort`.
    """

    def planned_paths(self) -> list[Path]:
        """Every path this sink may create (for the overwrite check)."""

    def prepare(self) -> None:
        """Refuse or clear existing output (``overwrite``), then create the output."""

    def resume(self, limit: int) -> Resumed:
        """Reopen an interrupted output and keep at most ``limit`` media bytes (what the
        interrupted run's log vouches for); every change to the files is made before it returns.
        Outputs that cannot be continued raise :class:`~bitwitness.errors.UsageError`."""

    def encode(self, data: memoryview) -> Any:
        """Turn a block into what ``write`` takes; pure and thread-safe."""

    def write(self, encoded: Any, data: memoryview, keep: Keep | None = None) -> None:
        """Append one block (in media order); ``data`` is only valid during the call, unless
        borrowed through ``keep``."""

    def make_durable(self) -> int:
        """Put what was written on the disk for good; returns how many media bytes that is
        (what :meth:`resume` may later be trusted with; 0 when the output cannot be resumed)."""

    def durable_soon(self) -> Callable[[], int]:
        """:meth:`make_durable` in two halves: what was written so far is marked here (in the
        writing thread, between blocks), and the returned function, called once from any
        thread, waits until that is on the disk and returns its media bytes (see
        :func:`durable_now` for a sink that has nothing to wait for in the background)."""

    def finish(self, *, hashes: dict[str, str],
               errors: Sequence[tuple[int, int]]) -> list[OutputFile]:
        """Make the output final and return every file written."""

    def abort(self) -> list[OutputFile]:
        """Stop, leave the output marked unfinished, return what exists."""


def durable_now(sink: Sink) -> Callable[[], int]:
    """A ``durable_soon`` that does the work at once (for sinks where it costs nothing, or
    that are never resumed)."""
    media = sink.make_durable()
    return lambda: media


class ImageSink(Sink, Protocol):
    """An image set named by its base (``BASE.raw``, ``BASE.E01``...), its logs beside it."""

    base: Path


def _remove_if(path: Path) -> None:
    if path.exists():
        path.unlink()


def _read_prefix(path: Path, size: int, block: int = 1 << 20) -> Iterator[bytes]:
    """The first ``size`` bytes of ``path``, in blocks."""
    with path.open("rb") as fh:
        remaining = size
        while remaining:
            data = fh.read(min(block, remaining))
            if not data:
                raise OSError(f"{path} ended early")
            remaining -= len(data)
            yield data


class RawSink:
    """``BASE.raw`` or ``BASE.001, BASE.002, ...`` (``split`` bytes each) plus hash sidecars."""

    def __init__(self, base: Path, *, media_size: int, algorithms: Sequence[str],
                 split: int | None = None, overwrite: bool = False) -> None:
        self.base = base
        self.media_size = media_size
        self.algorithms = tuple(algorithms)
        self.split = split if split and split < max(media_size, 1) else None
        self.overwrite = overwrite
        self.written = 0
        self._fd: int | None = None
        self._behind: WriteBehind | None = None  #: the open piece's write-behind
        self._piece = -1
        self._piece_hasher: ThreadedHasher | None = None
        self._piece_hashes: dict[int, dict[str, str]] = {}

    # --- names ----------------------------------------------------------------------------

    def final_paths(self) -> list[Path]:
        if self.split is None:
            return [self.base.with_name(self.base.name + ".raw")]
        count = max(1, -(-self.media_size // self.split))
        width = max(3, len(str(count)))
        return [self.base.with_name(f"{self.base.name}.{i:0{width}d}") for i in range(1, count + 1)]

    def partial_paths(self) -> list[Path]:
        return [p.with_name(p.name + PARTIAL) for p in self.final_paths()]

    def sidecar_paths(self) -> list[Path]:
        return [self.base.with_name(f"{self.base.name}.{a}") for a in self.algorithms]

    def planned_paths(self) -> list[Path]:
        """Every name we write, plus stale pieces of an older, longer split set: a reader would
        take those for part of this set, so they count as existing output too."""
        planned = self.final_paths() + self.partial_paths() + self.sidecar_paths()
        if self.split is not None and self.base.parent.is_dir():
            pattern = f"{glob_escape(self.base.name)}.[0-9][0-9][0-9]*"
            planned += [p for p in sorted(self.base.parent.glob(pattern)) if p not in planned]
        return planned

    def _piece_size(self, index: int) -> int:
        if self.split is None:
            return self.media_size
        return min(self.split, self.media_size - index * self.split)

    # --- writing --------------------------------------------------------------------------

    def prepare(self) -> None:
        """Refuse or clear existing output, then create the first piece."""
        existing = [p for p in self.planned_paths() if p.exists()]
        if existing and not self.overwrite:
            raise OutputExistsError(existing[0])
        for path in existing:
            path.unlink()
        self._open_piece(0, truncate_to=0)

    def _open_piece(self, index: int, *, truncate_to: int,
                    hasher: ThreadedHasher | None = None) -> None:
        if self._fd is not None:
            self._close_piece()
        path = self.partial_paths()[index]
        flags = os.O_WRONLY | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
        self._fd = os.open(path, flags, 0o644)
        self._behind = WriteBehind(path)
        os.ftruncate(self._fd, truncate_to)
        os.lseek(self._fd, truncate_to, os.SEEK_SET)
        self._piece = index
        if self.split is not None:
            self._piece_hasher = hasher or ThreadedHasher(self.algorithms, depth=8)

    def _close_piece(self) -> None:
        assert self._fd is not None
        if self._behind is not None:
            self._behind.finish()
        os.fsync(self._fd)
        os.close(self._fd)
        self._fd = None
        if self._piece_hasher is not None:
            self._piece_hashes[self._piece] = self._piece_hasher.close()
            self._piece_hasher = None

    def encode(self, data: memoryview) -> Any:
        return None

    def make_durable(self) -> int:
        """Fsync the piece being written (finished pieces were fsynced when closed); returns the
        media bytes now on the disk for good, which :meth:`resume` can be trusted with."""
        if self._fd is not None:
            os.fsync(self._fd)
        return self.written

    def durable_soon(self) -> Callable[[], int]:
        """Fsync, in the caller of the returned function, a duplicate descriptor of the piece
        being written: every byte written so far is in the kernel already, and fsync puts all
        of it on the disk, whatever is written meanwhile."""
        media = self.written
        if self._fd is None:
            return lambda: media
        fd = os.dup(self._fd)

        def wait() -> int:
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            return media
        return wait

    def write(self, encoded: Any, data: memoryview, keep: Keep | None = None) -> None:
        view = memoryview(data)
        while view:
            piece_end = (self._piece + 1) * self.split if self.split else self.media_size
            room = piece_end - self.written
            if room <= 0:
                self._open_piece(self._piece + 1, truncate_to=0)
                continue
            if self._fd is None:  # never truncate a piece we did not open for this write
                raise RuntimeError("raw sink written before prepare() or resume()")
            part = view[:room]
            write_all(self._fd, part)
            if self._behind is not None:
                self._behind.wrote(len(part))
            if self._piece_hasher is not None:  # hashed later, in its threads: a copy
                self._piece_hasher.update(bytes(part))
            self.written += len(part)
            view = view[len(part):]

    def resume(self, limit: int) -> Resumed:
        """Reopen the ``.partial`` files and keep the first ``limit`` media bytes: complete
        pieces are cut to their size and re-hashed (their sidecar lines), the piece in progress is
        cut at ``limit`` and reopened, later pieces are deleted.
        """
        done = min(limit, self.media_size)
        self.written = 0
        partials = self.partial_paths()
        if done == 0:
            self._open_piece(0, truncate_to=0)
            return Resumed(0, lambda: iter(()))
        last = (done - 1) // self.split if self.split else 0
        for index in range(last + 1):
            keep = min(self._piece_size(index), done - self.written)
            path = partials[index]
            if not path.exists() or path.stat().st_size < keep:
                raise OSError(f"{path} is missing or shorter than the log says")
            hasher = ThreadedHasher(self.algorithms, depth=8) if self.split else None
            if hasher is not None:
                for block in _read_prefix(path, keep):
                    hasher.update(block)
            self.written += keep
            if keep == self._piece_size(index) and hasher is not None:
                self._piece_hashes[index] = hasher.close()
                self._piece = index
                # keep the complete piece at its size (drop anything written beyond the log)
                os.truncate(path, keep)
            else:
                self._open_piece(index, truncate_to=keep, hasher=hasher)
        for extra in partials[last + 1:]:
            _remove_if(extra)
        pieces = [(partials[i], min(self._piece_size(i), done - i * (self.split or 0)))
                  for i in range(last + 1)]
        return Resumed(done, lambda: (block for path, size in pieces
                                      for block in _read_prefix(path, size)))

    def finish(self, *, hashes: dict[str, str],
               errors: Sequence[tuple[int, int]]) -> list[OutputFile]:
        if self._fd is not None:
            self._close_piece()
        finals = self.final_paths()
        outputs: list[OutputFile] = []
        for index, (partial, final) in enumerate(zip(self.partial_paths(), finals, strict=True)):
            if not partial.exists():  # an empty media still gets its (empty) image file
                partial.touch()
            partial.replace(final)
            piece_hashes = self._piece_hashes.get(index, {}) if self.split else hashes
            outputs.append(OutputFile(final, final.stat().st_size, dict(piece_hashes)))
        images = list(outputs)
        for algorithm, sidecar in zip(self.algorithms, self.sidecar_paths(), strict=True):
            text = "".join(f"{o.hashes[algorithm]}  {o.path.name}\n" for o in images)
            sidecar.write_text(text, encoding="ascii")
            fsync_path(sidecar)
            digest = MultiHasher(self.algorithms)
            digest.update(text.encode("ascii"))
            outputs.append(OutputFile(sidecar, sidecar.stat().st_size, digest.hexdigests(),
                                      role="sidecar"))
        return outputs

    def abort(self) -> list[OutputFile]:
        if self._fd is not None:
            self._close_piece()
        return [OutputFile(p, p.stat().st_size) for p in self.partial_paths() if p.exists()]


#: E01 segment files get a SHA-256 of the file itself (for custody: "this file is unchanged");
#: the media hashes (MD5, SHA-1, ...) are inside the image and in the log.
SEGMENT_FILE_HASH = "sha256"


class EwfSink:
    """An E01 set through :class:`bitwitness.ewf.EwfWriter`; ``encode`` runs in the pool."""

    def __init__(self, base: Path, *, media_size: int, metadata: Any, compression: str,
                 segment_size: int, bytes_per_sector: int, sectors_per_chunk: int,
                 overwrite: bool = False, removable: bool = False,
                 guid: bytes | None = None) -> None:
        self.base = base
        self.media_size = media_size
        self.metadata = metadata
        self.guid = guid
        self.compression = compression
        self.segment_size = segment_size
        self.bytes_per_sector = bytes_per_sector
        self.sectors_per_chunk = sectors_per_chunk
        self.chunk_size = bytes_per_sector * sectors_per_chunk
        self.overwrite = overwrite
        self.removable = removable
        self._writer: Any = None
        self._ewf: Any = None

    def _api(self) -> Any:
        if self._ewf is None:
            from bitwitness import ewf

            self._ewf = ewf
        return self._ewf

    def planned_paths(self) -> list[Path]:
        ewf = self._api()
        stored = self.media_size + self.media_size // 8 + (1 << 20)  # generous upper bound
        count = max(1, -(-stored // self.segment_size)) + 1
        return [ewf.segment_path(self.base, n) for n in range(1, count + 1)]

    def prepare(self) -> None:
        ewf = self._api()
        media_type = ewf.MediaType.REMOVABLE if self.removable else ewf.MediaType.FIXED
        self._writer = ewf.EwfWriter(
            self.base, media_size=self.media_size, metadata=self.metadata,
            bytes_per_sector=self.bytes_per_sector, sectors_per_chunk=self.sectors_per_chunk,
            compression=ewf.Compression(self.compression), segment_size=self.segment_size,
            media_type=media_type, overwrite=self.overwrite, guid=self.guid,
            file_hashes=(SEGMENT_FILE_HASH,))

    def resume(self, limit: int) -> Resumed:
        """Reopen an interrupted set; it keeps the complete sectors groups within ``limit``
        media bytes (see :meth:`EwfWriter.resume`), read back through the EWF reader."""
        ewf = self._api()
        self._writer, durable = ewf.EwfWriter.resume(
            self.base, segment_size=self.segment_size,
            compression=ewf.Compression(self.compression), keep_media=limit)
        first = ewf.segment_path(self.base, 1)

        def read() -> Iterator[bytes]:
            image = ewf.open_ewf(first, allow_incomplete=True)
            try:
                yield from image.iter_blocks(1 << 20, 0, durable)
            finally:
                image.close()

        return Resumed(int(durable), read)

    def make_durable(self) -> int:
        """Media bytes now on the disk for good (see :meth:`EwfWriter.make_durable`)."""
        return int(self._writer.make_durable())

    def durable_soon(self) -> Callable[[], int]:
        """See :meth:`EwfWriter.durable_soon`."""
        return self._writer.durable_soon()  # type: ignore[no-any-return]

    def encode(self, data: memoryview) -> Any:
        ewf = self._api()
        return ewf.encode_chunks(data, self.chunk_size, ewf.Compression(self.compression))

    def write(self, encoded: Any, data: memoryview, keep: Keep | None = None) -> None:
        self._writer.write_chunks(encoded, keep)  # borrows (or copies) raw chunks' buffers

    def finish(self, *, hashes: dict[str, str],
               errors: Sequence[tuple[int, int]]) -> list[OutputFile]:
        """Close the set; each segment's SHA-256 is the one the writer computed while writing
        it, or (after a resume, or a patch) read back from the file."""
        result = self._writer.close(md5=hashes["md5"], sha1=hashes["sha1"], errors=list(errors))
        outputs = []
        for name in result.segments:
            path = Path(name)
            digest = result.file_hashes.get(path) or hash_file(path, (SEGMENT_FILE_HASH,))
            outputs.append(OutputFile(path, path.stat().st_size, dict(digest)))
        return outputs

    def abort(self) -> list[OutputFile]:
        if self._writer is None:
            return []
        self._writer.abort()
        return [OutputFile(Path(p), Path(p).stat().st_size) for p in self._writer.segments
                if Path(p).exists()]
