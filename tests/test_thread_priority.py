"""Helper threads step aside for the slowest hash's thread (Linux: per-thread ``nice``).

The priorities are read from ``/proc/self/task/<tid>/stat`` (the kernel's own account), not from
our code: the helpers run :data:`HELPER_NICE` lower than the thread that made them, the
critical hash thread and the caller not at all.
"""

from __future__ import annotations

import hashlib
import os
import sys
import threading
import time
import zlib
from pathlib import Path

import pytest
from conftest import make_disk_bytes

from bitwitness.hashing import ThreadedHasher
from bitwitness.threadpriority import HELPER_NICE, slowest, step_aside

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="per-thread nice is Linux's")


def _nice(native_id: int) -> int:
    """The nice value of thread ``native_id`` of this process, as the kernel reports it."""
    stat = Path(f"/proc/self/task/{native_id}/stat").read_text()
    return int(stat[stat.rindex(")") + 2:].split()[16])  # field 19: nice


def _nice_of_threads(threads: list[threading.Thread]) -> dict[str, int]:
    return {t.name: _nice(t.native_id) for t in threads if t.native_id is not None}


def test_step_aside_lowers_only_the_calling_thread() -> None:
    own = _nice(threading.get_native_id())
    seen: list[int] = []
    ready, done = threading.Event(), threading.Event()

    def helper() -> None:
        step_aside()
        seen.append(_nice(threading.get_native_id()))
        ready.set()
        done.wait(10)

    t = threading.Thread(target=helper)
    t.start()
    assert ready.wait(10)
    try:
        assert seen == [min(19, own + HELPER_NICE)]
        assert _nice(threading.get_native_id()) == own  # the caller keeps its priority
        assert os.getpriority(os.PRIO_PROCESS, os.getpid()) == own
    finally:
        done.set()
        t.join()


def test_slowest_is_the_costliest_measured() -> None:
    from bitwitness.threadpriority import _cost

    names = ["sha1", "md5", "sha256"]
    assert slowest(names) == max(names, key=_cost)
    assert slowest(["sha1"]) == "sha1"
    assert slowest([]) is None


def test_hash_threads_other_than_the_slowest_step_aside() -> None:
    own = _nice(threading.get_native_id())
    algorithms = ("md5", "sha1", "sha256")
    critical = slowest(algorithms)
    expected = {f"hash-{name}": own if name == critical else min(19, own + HELPER_NICE)
                for name in algorithms}
    hasher = ThreadedHasher(algorithms, depth=2)
    try:
        hasher.update(bytes(1 << 20))
        for _ in range(100):  # each thread steps aside as it starts: wait for all three
            nices = _nice_of_threads(hasher._threads)
            if nices == expected:
                break
            time.sleep(0.05)
        assert nices == expected
    finally:
        digests = hasher.close()
    assert digests["md5"] == "b6d81b360a5672d80c27430f39153e2c"  # md5 of 1 MiB of zeros


def test_a_single_hash_thread_keeps_its_priority() -> None:
    own = _nice(threading.get_native_id())
    hasher = ThreadedHasher(("sha256",), depth=2)
    try:
        hasher.update(b"x")
        assert _nice_of_threads(hasher._threads) == {"hash-sha256": own}
    finally:
        hasher.close()


def test_encoder_and_scan_workers_step_aside(tmp_path: Path) -> None:
    """The acquisition's deflate workers, and the E01 reader's inflate workers."""
    from acquire.encoders import EncoderPool

    own = _nice(threading.get_native_id())
    seen: list[int] = []

    def work(data: bytes) -> bytes:
        seen.append(_nice(threading.get_native_id()))
        return zlib.compress(data, 1)

    pool = EncoderPool(work, 2)
    try:
        assert pool.submit(b"abc" * 100).result() == zlib.compress(b"abc" * 100, 1)
    finally:
        pool.shutdown()
    assert seen == [min(19, own + HELPER_NICE)]

    from bitwitness.ewf import EwfMetadata, EwfWriter, open_ewf, reader

    data = make_disk_bytes(16 * 32768, 5)
    with EwfWriter(tmp_path / "small", media_size=len(data), metadata=EwfMetadata()) as w:
        w.write(data)
        first = w.close(md5=hashlib.md5(data, usedforsecurity=False).hexdigest(),
                        sha1=hashlib.sha1(data, usedforsecurity=False).hexdigest()).segments[0]
    found: list[int] = []
    original = reader.EwfImage._scan_run

    def spy(self: reader.EwfImage, *args: object, **kwargs: object) -> object:
        found.append(_nice(threading.get_native_id()))
        return original(self, *args, **kwargs)

    with pytest.MonkeyPatch.context() as m:
        m.setattr(reader.EwfImage, "_scan_run", spy)
        with open_ewf(first) as image:
            assert b"".join(bytes(block.data) for block in image.scan(workers=2)) == data
    assert found
    assert set(found) == {min(19, own + HELPER_NICE)}


def test_an_acquisition_gives_the_slowest_measured_hash_its_own_thread() -> None:
    """The pipeline hashes every algorithm but the slowest in its reader thread (while the
    block is in that core's cache); the slowest, measured on this machine, has a thread."""
    from bitwitness.acquire.pipeline import _inline_algorithms
    from bitwitness.threadpriority import _cost

    for algorithms in (("md5", "sha1", "sha256"), ("sha256", "sha1"), ("sha1", "md5")):
        threaded = max(algorithms, key=_cost)
        assert set(_inline_algorithms(algorithms)) == set(algorithms) - {threaded}
    assert _inline_algorithms(("md5",)) == ()
