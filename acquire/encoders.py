"""The acquisition's encoder pool: a few threads that run one function on blocks, in any order,
and hand each result back to whoever waits for that block.

Why not :class:`concurrent.futures.ThreadPoolExecutor`: its machinery runs on the pipeline's
ordering thread for every block (a ``Future`` with its own ``Condition`` and ``RLock``, the
executor's bookkeeping, a ``notify`` per result), all of it Python code holding the GIL that the
hash and encoder threads need between their C calls; importing it also loads :mod:`logging`,
~6 ms of every run's start-up. Here a block's result travels through a
:class:`queue.SimpleQueue` of its own (C code, one lock), and waiting for it releases the GIL.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

from bitwitness.threadpriority import step_aside


class Pending:
    """The result of one submitted block: :meth:`ready` never waits, :meth:`result` does."""

    __slots__ = ("_box",)

    def __init__(self) -> None:
        self._box: queue.SimpleQueue[tuple[bool, Any]] = queue.SimpleQueue()

    def ready(self) -> bool:
        return not self._box.empty()

    def deliver(self, ok: bool, value: Any) -> None:
        """Called once, by the worker: the return value (``ok``) or the exception."""
        self._box.put((ok, value))

    def result(self) -> Any:
        """The function's return value, or its exception raised here; call it once."""
        ok, value = self._box.get()
        if ok:
            return value
        raise value


class EncoderPool:
    """``workers`` threads running ``function`` on what :meth:`submit` gets."""

    def __init__(self, function: Callable[[Any], Any], workers: int,
                 name: str = "encode") -> None:
        self._function = function
        self._tasks: queue.SimpleQueue[tuple[Any, Pending] | None] = queue.SimpleQueue()
        self._threads = [threading.Thread(target=self._run, name=f"{name}-{i}", daemon=True)
                         for i in range(max(1, workers))]
        for thread in self._threads:
            thread.start()

    def submit(self, argument: Any) -> Pending:
        pending = Pending()
        self._tasks.put((argument, pending))
        return pending

    def _run(self) -> None:
        step_aside()  # deflating beside the MD5 thread, the acquisition's longest chain
        function, tasks = self._function, self._tasks
        while (task := tasks.get()) is not None:
            argument, pending = task
            try:
                value = function(argument)
            except BaseException as exc:  # raised again by Pending.result in the waiting thread
                pending.deliver(False, exc)
            else:
                pending.deliver(True, value)

    def shutdown(self) -> None:
        """Drop the tasks not yet started (nobody will wait for them), let the running ones
        end, and stop the threads."""
        while True:
            try:
                self._tasks.get_nowait()
            except queue.Empty:
                break
        for _ in self._threads:
            self._tasks.put(None)
        for thread in self._threads:
            thread.join()
