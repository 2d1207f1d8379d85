"""Block buffers lent to the E01 writer instead of copied (``keep``), and the pieces around it.

The acquisition reuses a few block buffers. The E01 writer keeps a group's raw chunks until the
group is written; it either copies them or borrows the buffer through ``keep`` and gives it back
once the group is on the file. These tests reuse (scribble over) every buffer the moment it is
given back, as the pipeline does, so a buffer given back too early shows up as wrong media in
libewf's reading of the image.
"""

from __future__ import annotations

import errno
import os
import platform
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import make_disk_bytes, pyewf_media, require_tool, run_bitwitness

from bitwitness import host
from bitwitness.acquire import pipeline
from bitwitness.acquire.encoders import EncoderPool
from bitwitness.ewf import Compression, EwfMetadata, EwfWriter, encode_chunks
from bitwitness.ewf.gather import GatherWriter

CHUNK = 32 * 1024
BLOCK = 8 * CHUNK


class _Lender:
    """Lends block buffers like the pipeline: a buffer is held by its caller while
    ``write_chunks`` runs and by each loan; it is scribbled over (reused) when the last lets go."""

    def __init__(self, *, refuse: bool = False) -> None:
        self.refuse = refuse
        self.loans = 0
        self.returned = 0
        self.holds: dict[int, int] = {}
        self.lock = threading.Lock()

    def lend(self, buffer: bytearray) -> Callable[[], Callable[[], None] | None]:
        """The caller's hold starts; returns the ``keep`` for this buffer."""
        self.holds[id(buffer)] = 1

        def keep() -> Callable[[], None] | None:
            if self.refuse:
                return None
            with self.lock:
                self.loans += 1
                self.holds[id(buffer)] += 1
            given_back = False

            def give_back() -> None:
                nonlocal given_back
                assert not given_back, "a loan was given back twice"
                given_back = True
                with self.lock:
                    self.returned += 1
                self.let_go(buffer)
            return give_back
        return keep

    def let_go(self, buffer: bytearray) -> None:
        with self.lock:
            self.holds[id(buffer)] -= 1
            last = self.holds[id(buffer)] == 0
        if last:
            buffer[:] = b"\xa5" * len(buffer)  # reused at once, as the pipeline would


def _write_image(path: Path, data: bytes, lender: _Lender, *, abort: bool = False) -> None:
    with EwfWriter(path, media_size=len(data), metadata=EwfMetadata(),
                   segment_size=1 << 20) as writer:
        for at in range(0, len(data), BLOCK):
            buffer = bytearray(data[at:at + BLOCK])
            chunks = encode_chunks(memoryview(buffer), CHUNK, Compression.FAST)
            writer.write_chunks(chunks, lender.lend(buffer))
            lender.let_go(buffer)
        if abort:
            writer.abort()
            return
        writer.close(md5="0" * 32, sha1="0" * 40)


@pytest.mark.parametrize("refuse", [False, True], ids=["lent", "copied"])
def test_the_image_holds_the_media_whatever_happens_to_given_back_buffers(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, refuse: bool) -> None:
    monkeypatch.setattr("bitwitness.ewf.writer.GROUP_CHUNKS", 12)  # groups end inside blocks
    data = os.urandom(40 * CHUNK) + make_disk_bytes(3 << 20, 4)  # raw chunks: the views kept
    lender = _Lender(refuse=refuse)
    _write_image(tmp_path / "img", data, lender)
    assert pyewf_media(tmp_path / "img.E01") == data
    assert lender.returned == lender.loans
    if refuse:
        assert lender.loans == 0
    else:
        # one loan per group a block's raw chunks land in; blocks spanning two groups have two
        assert lender.loans > (40 * CHUNK) // BLOCK


def test_a_writer_aborted_mid_group_gives_every_loan_back(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("bitwitness.ewf.writer.GROUP_CHUNKS", 64)
    lender = _Lender()
    _write_image(tmp_path / "img", os.urandom(40 * CHUNK), lender, abort=True)
    assert lender.loans > 0
    assert lender.returned == lender.loans


@pytest.mark.parametrize("background", [False, True], ids=["inline", "background"])
def test_gather_writer_calls_back_once_the_pieces_are_on_the_file(tmp_path: Path,
                                                                  background: bool) -> None:
    path = tmp_path / "out"
    seen: list[int] = []
    writer = GatherWriter(path.open("xb", buffering=0), background=background)
    writer.write(b"a" * 1000)
    writer.write(memoryview(b"b" * 3000))
    writer.after_written([lambda: seen.append(path.stat().st_size)])
    writer.write(b"c" * 10)
    writer.close()
    assert seen == [4000]
    assert path.read_bytes() == b"a" * 1000 + b"b" * 3000 + b"c" * 10


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_gather_writer_gives_back_even_when_the_disk_is_full() -> None:
    calls: list[str] = []
    writer = GatherWriter(Path("/dev/full").open("ab", buffering=0),  # noqa: SIM115 - closes it
                          background=True)
    writer.write(b"x" * 4096)
    writer.after_written([lambda: calls.append("first")])
    writer.write(b"y" * 4096)
    writer.after_written([lambda: calls.append("second")])
    with pytest.raises(OSError, match="No space") as failure:
        writer.close()
    assert failure.value.errno == errno.ENOSPC
    assert sorted(calls) == ["first", "second"]


def test_acquisition_stays_exact_when_loans_run_out(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """SINK_LOANS = 1: most blocks are refused a loan and copied; the image is still the media
    and passes ewfverify."""
    require_tool("ewfverify", "md5sum")
    monkeypatch.setattr(pipeline, "SINK_LOANS", 1)
    monkeypatch.setattr("bitwitness.ewf.writer.GROUP_CHUNKS", 16)
    src = tmp_path / "disk.bin"
    data = os.urandom(2 << 20) + make_disk_bytes(4 << 20, 8)
    src.write_bytes(data)
    res = run_bitwitness("acquire", src, "-o", tmp_path / "img", "--hash", "md5,sha1", "--json")
    assert res.exit_code == 0, res.stderr
    assert pyewf_media(tmp_path / "img.E01") == data
    check = subprocess.run(["ewfverify", "-q", str(tmp_path / "img.E01")], capture_output=True,
                           text=True, check=False)
    assert check.returncode == 0, check.stdout


def test_buffers_lent_are_replaced_once_and_reused_when_back() -> None:
    buffers = pipeline._Buffers(2, 16)
    stop = threading.Event()
    first = buffers.take(stop)
    assert first is not None
    lease = pipeline._Lease(first, buffers)
    lease.lend()
    lease.lend()  # the same block kept by a second group: no second replacement
    taken = [buffers.take(stop), buffers.take(stop)]  # one left + the replacement
    assert all(b is not None and b is not first for b in taken)
    lease.release()  # the reader's hold
    lease.release()
    lease.release()  # the last loan: retired to the spares, not back into circulation
    assert buffers._free.empty()
    buffers.replace()  # the next loan's replacement is that spare
    assert buffers.take(stop) is first


def test_encoder_pool_returns_each_result_to_its_block_and_raises_errors_there() -> None:
    def work(n: int) -> int:
        if n == 3:
            raise ValueError("three")
        time.sleep(0.001 * (n % 2))  # finish out of order
        return n * n

    pool = EncoderPool(work, 2)
    try:
        pending = [pool.submit(n) for n in range(8)]
        results = []
        for n, item in enumerate(pending):
            if n == 3:
                with pytest.raises(ValueError, match="three"):
                    item.result()
            else:
                results.append(item.result())
        assert results == [n * n for n in range(8) if n != 3]
    finally:
        pool.shutdown()


def test_encoder_pool_shutdown_drops_tasks_not_started() -> None:
    started: list[int] = []
    gate = threading.Event()

    def work(n: int) -> int:
        started.append(n)
        gate.wait(5)
        return n

    pool = EncoderPool(work, 1)
    pending = [pool.submit(n) for n in range(20)]
    while not started:
        time.sleep(0.001)
    gate.set()
    pool.shutdown()
    assert len(started) < 20
    assert pending[0].ready()
    assert pending[0].result() == 0


def test_platform_name_is_what_platform_gives() -> None:
    assert host.platform_name() == platform.platform()
    assert host.system_name() == platform.system()


def test_platform_name_asks_platform_when_libc_does_not_say(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def no_answer(name: str) -> str:
        raise ValueError(name)

    monkeypatch.setattr(os, "confstr", no_answer)
    monkeypatch.setattr(platform, "platform", lambda: "Asked-platform")
    assert host.platform_name() == "Asked-platform"


def _table_counts(first: Path) -> list[int]:
    """Entries of every table of a one-segment set, read straight from the file."""
    from bitwitness.ewf import structures as sx

    raw = first.read_bytes()
    counts, offset = [], sx.FILE_HEADER_SIZE
    while True:
        desc = sx.unpack_descriptor(raw[offset:offset + sx.DESCRIPTOR_SIZE], offset)
        if desc.type == "table":
            counts.append(sx.unpack_table_header(raw[desc.body_offset:desc.body_offset + 24])[0])
        if desc.next == offset:
            return counts
        offset = desc.next


def test_a_group_of_compressed_chunks_grows_until_it_takes_a_loan(tmp_path: Path) -> None:
    """200 compressed zero chunks share one group (they are small); the first raw chunk lent
    to it is its last, and groups of lent raw chunks close at GROUP_CHUNKS (128) as before, so
    no loan outlives 128 chunks. libewf reads the media back exactly."""
    lender = _Lender()
    zeros = bytes(200 * CHUNK)
    noise = os.urandom(300 * CHUNK)
    with EwfWriter(tmp_path / "mix", media_size=len(zeros) + len(noise),
                   metadata=EwfMetadata()) as writer:
        writer.write_chunks(encode_chunks(zeros, CHUNK, Compression.FAST))
        for at in range(0, len(noise), BLOCK):
            buffer = bytearray(noise[at:at + BLOCK])
            writer.write_chunks(encode_chunks(memoryview(buffer), CHUNK, Compression.FAST),
                                lender.lend(buffer))
            lender.let_go(buffer)
        writer.close(md5="0" * 32, sha1="0" * 40)
    assert _table_counts(tmp_path / "mix.E01") == [201, 128, 128, 43]
    assert lender.returned == lender.loans > 0
    assert pyewf_media(tmp_path / "mix.E01") == zeros + noise
