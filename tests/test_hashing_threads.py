"""ThreadedHasher's two ways of working: a thread per algorithm, or some hashed in the caller's
thread (``inline``); both give hashlib's digests, and ``done`` tells when a lent buffer is free."""

from __future__ import annotations

import hashlib
import threading

import pytest

from bitwitness.hashing import ThreadedHasher


@pytest.mark.parametrize("inline", [(), ("sha1",), ("sha1", "sha256"), ("md5", "sha1", "sha256")])
def test_digests_match_hashlib_however_the_work_is_split(inline: tuple[str, ...]) -> None:
    blocks = [bytes([i]) * (1000 + 4096 * i) for i in range(20)]
    hasher = ThreadedHasher(("md5", "sha1", "sha256"), depth=2, inline=inline)
    assert hasher.width == 3 - len(inline)
    for block in blocks:
        hasher.update(memoryview(block))
    whole = b"".join(blocks)
    assert hasher.close() == {name: hashlib.new(name, whole).hexdigest()
                              for name in ("md5", "sha1", "sha256")}


def test_done_is_called_once_per_thread_after_the_buffer_was_hashed() -> None:
    hasher = ThreadedHasher(("md5", "sha1", "sha256"), depth=4, inline=("sha1",))
    buffer = bytearray(b"a" * 100_000)
    calls: list[str] = []
    freed = threading.Event()

    def done() -> None:
        calls.append(threading.current_thread().name)
        if len(calls) == hasher.width:
            freed.set()

    hasher.update(memoryview(buffer), done)
    assert freed.wait(10)
    buffer[:] = b"b" * 100_000  # free to reuse: must not change the digests of what was lent
    digests = hasher.close()
    assert sorted(calls) == ["hash-md5", "hash-sha256"]
    assert digests["md5"] == hashlib.md5(b"a" * 100_000).hexdigest()  # noqa: S324
    assert digests["sha256"] == hashlib.sha256(b"a" * 100_000).hexdigest()
