"""Hashing the media: several algorithms over one pass of the data.

:class:`MultiHasher` updates every algorithm in the caller's thread. :class:`ThreadedHasher` gives
each algorithm a thread of its own fed through a bounded queue (or, for those named ``inline``,
hashes them in the caller's thread), so the algorithms run on separate cores while the caller
reads and compresses (hashlib releases the GIL for large buffers). Both keep their input objects
alive only until hashed; a caller must not change a buffer it handed over until then (the
``done`` callback of :meth:`ThreadedHasher.update` says when).
"""

from __future__ import annotations

import hashlib
import os
import queue
import threading
from collections.abc import Callable, Iterable
from typing import Final, cast

from bitwitness.errors import UsageError
from bitwitness.threadpriority import slowest, step_aside

#: Algorithms BitWitness computes and compares, in the order reports list them.
ALGORITHMS: Final[tuple[str, ...]] = ("md5", "sha1", "sha256")
DEFAULT_ALGORITHMS: Final[tuple[str, ...]] = ("md5", "sha1", "sha256")


def parse_algorithms(text: str | Iterable[str]) -> tuple[str, ...]:
    """``"md5,sha1"`` -> ``("md5", "sha1")`` in canonical order; unknown names are a usage error."""
    names = text.split(",") if isinstance(text, str) else list(text)
    wanted = {n.strip().lower().replace("-", "") for n in names if n.strip()}
    unknown = wanted - set(ALGORITHMS)
    if unknown:
        raise UsageError(
            f"unknown hash algorithm(s): {', '.join(sorted(unknown))} "
            f"(choose from {', '.join(ALGORITHMS)})"
        )
    if not wanted:
        raise UsageError("at least one hash algorithm is needed")
    return tuple(a for a in ALGORITHMS if a in wanted)


class MultiHasher:
    """Every algorithm updated in the calling thread."""

    def __init__(self, algorithms: Iterable[str] = DEFAULT_ALGORITHMS) -> None:
        self.algorithms = parse_algorithms(algorithms)
        self._hashes = {name: hashlib.new(name) for name in self.algorithms}
        self.bytes_hashed = 0

    def update(self, data: bytes | bytearray | memoryview) -> None:
        for h in self._hashes.values():
            h.update(data)
        self.bytes_hashed += len(data)

    def hexdigests(self) -> dict[str, str]:
        return {name: h.hexdigest() for name, h in self._hashes.items()}

    def close(self) -> dict[str, str]:
        return self.hexdigests()

    def copy(self) -> MultiHasher:
        """A hasher in this one's state. Why: copying a fresh one costs a fifth of naming the
        algorithms again (an export makes one per file)."""
        twin = object.__new__(MultiHasher)
        twin.algorithms = self.algorithms
        twin._hashes = {name: h.copy() for name, h in self._hashes.items()}
        twin.bytes_hashed = self.bytes_hashed
        return twin


_STOP: Final = object()
Buffer = bytes | bytearray | memoryview


class ThreadedHasher:
    """One thread per algorithm; :meth:`update` returns at once unless the queues are full.

    Call :meth:`close` exactly once to wait for the threads and get the digests. ``depth`` bounds
    the memory held: at most ``depth`` buffers wait per algorithm. Algorithms named in
    ``inline`` get no thread: :meth:`update` hashes them itself, before returning (the
    acquisition hashes the cheap ones right after reading a block, while it is in cache).
    """

    def __init__(self, algorithms: Iterable[str] = DEFAULT_ALGORITHMS, depth: int = 16,
                 inline: Iterable[str] = ()) -> None:
        self.algorithms = parse_algorithms(algorithms)
        self.bytes_hashed = 0
        self._queues: dict[str, queue.Queue[object]] = {}
        self._hashes = {name: hashlib.new(name) for name in self.algorithms}
        self._inline = [self._hashes[name] for name in self.algorithms if name in set(inline)]
        self._threads: list[threading.Thread] = []
        self._closed = False
        threaded = [name for name in self.algorithms if name not in set(inline)]
        # the slowest algorithm's thread is the pass's longest chain: the others step aside
        critical = slowest(threaded) if len(threaded) > 1 else None
        for name in threaded:
            q: queue.Queue[object] = queue.Queue(maxsize=depth)
            self._queues[name] = q
            t = threading.Thread(
                target=self._run, args=(self._hashes[name], q,
                                         critical is not None and name != critical),
                name=f"hash-{name}", daemon=True
            )
            t.start()
            self._threads.append(t)

    @property
    def width(self) -> int:
        """How many threads take each buffer (so how many times ``done`` is called per update)."""
        return len(self._queues)

    @staticmethod
    def _run(h: hashlib._Hash, q: queue.Queue[object], aside: bool = False) -> None:
        if aside:
            step_aside()
        while True:
            item = q.get()
            if item is _STOP:
                return
            data, done = cast("tuple[Buffer, Callable[[], None] | None]", item)
            h.update(data)
            if done is not None:
                done()

    def update(self, data: bytes | bytearray | memoryview,
               done: Callable[[], None] | None = None) -> None:
        """Hash ``data`` in every algorithm's thread.

        Without ``done`` the caller must never change ``data`` afterwards. With it, each thread
        calls ``done()`` once it has finished with ``data`` (:attr:`width` calls in all): the
        acquisition pipeline uses that to put a reusable buffer back into service.
        """
        if self._closed:
            raise RuntimeError("hasher already closed")
        for q in self._queues.values():
            q.put((data, done))
        for h in self._inline:
            h.update(data)
        self.bytes_hashed += len(data)

    def close(self) -> dict[str, str]:
        if not self._closed:
            self._closed = True
            for q in self._queues.values():
                q.put(_STOP)
            for t in self._threads:
                t.join()
        return {name: h.hexdigest() for name, h in self._hashes.items()}

    def hexdigests(self) -> dict[str, str]:
        return self.close()


def hash_file(path: str | os.PathLike[str], algorithms: Iterable[str] = DEFAULT_ALGORITHMS,
              block: int = 1 << 20) -> dict[str, str]:
    """Hash a whole (small or large) regular file, read-only, in blocks of ``block`` bytes.

    Raises ``OSError`` when the file cannot be read: callers decide whether that is an evidence
    problem (a missing segment) or just "no hash" (a report listing a file that went away).
    """
    from bitwitness.evidence_io import os_open_readonly

    hasher = MultiHasher(algorithms)
    # Through the evidence opener (O_NOATIME): the files hashed here are often image segments.
    with os.fdopen(os_open_readonly(path), "rb") as fh:
        while chunk := fh.read(block):
            hasher.update(chunk)
    return hasher.hexdigests()


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 (lower-case hex) of a file: the one helper for logs, manifests and case files.

    Kept next to :func:`hash_file` so that every "hash of this file" in logs, custody details and
    reports is computed the same way. Raises ``OSError`` like :func:`hash_file`.
    """
    return hash_file(path, ("sha256",))["sha256"]
