"""The mount's parts without a kernel: the chunk cache (stream contract, bounded memory,
concurrent exact reads, errors not cached), the operations' answers (EROFS for every change,
ENOENT, EIO for a corrupt read) and the names made from evidence."""

from __future__ import annotations

import errno
import os
import random
import threading
import time
from pathlib import Path

import pytest
from conftest import make_disk_bytes, run_bitwitness
from contract import check_stream_contract

from bitwitness.errors import CorruptImageError
from bitwitness.report.mount.cache import CachedStream
from bitwitness.report.mount.fusefs import EvidenceOperations
from bitwitness.report.mount.tree import CONTENT_XATTR, MountTree, Node, mount_name
from bitwitness.stream import BytesStream, ImageStream


class CountingStream(BytesStream):
    """Counts reads, fails inside ``bad`` and is not thread-safe on purpose (shared position)."""

    def __init__(self, data: bytes, bad: range | None = None) -> None:
        super().__init__(data)
        self.reads = 0
        self.ahead_reads = 0  #: reads made by the mount's read-ahead thread
        self.bad = bad
        self._busy = False

    def _read_aligned(self, offset: int, length: int) -> bytes:
        assert not self._busy, "two threads inside the stream at once"
        self._busy = True
        try:
            self.reads += 1
            if threading.current_thread().name == "mount-read-ahead":
                self.ahead_reads += 1
            if self.bad is not None and offset < self.bad.stop and offset + length > \
                    self.bad.start:
                raise CorruptImageError("bad chunk", media_offset=offset)
            return super()._read_aligned(offset, length)
        finally:
            self._busy = False


def test_cached_stream_meets_the_stream_contract() -> None:
    data = make_disk_bytes(700_000, seed=3)
    check_stream_contract(CachedStream(BytesStream(data), chunk_size=4096, cache_bytes=65536),
                          data)


def test_cache_is_bounded_and_serves_repeats() -> None:
    data = make_disk_bytes(1 << 20, seed=4)
    inner = CountingStream(data)
    cached = CachedStream(inner, chunk_size=8192, cache_bytes=8 * 8192, read_ahead=0)
    for offset in range(0, len(data), 8192):
        assert cached.pread(offset, 8192) == data[offset:offset + 8192]
    assert len(cached.cache) == 8
    reads = inner.reads
    for _ in range(50):  # 4 KiB reads inside the last chunks: no new read of the stream
        offset = len(data) - 8192 * 4 + random.randrange(0, 8192 * 4 - 4096)
        assert cached.pread(offset, 4096) == data[offset:offset + 4096]
    assert inner.reads == reads


def test_concurrent_reads_are_exact_and_never_overlap_in_the_stream() -> None:
    data = make_disk_bytes(2 << 20, seed=5)
    inner = CountingStream(data)
    cached = CachedStream(inner, chunk_size=16384, cache_bytes=16 * 16384)
    wrong: list[tuple[int, int]] = []

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(400):
            offset, size = rng.randrange(len(data)), rng.choice([1, 4096, 50_000])
            if cached.pread(offset, size) != data[offset:offset + size]:
                wrong.append((offset, size))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wrong == []


class BlockCountingStream(CountingStream):
    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.block_calls = 0

    def iter_blocks(self, block_size: int = 1 << 20, start: int = 0,
                    end: int | None = None):
        self.block_calls += 1
        yield from super().iter_blocks(block_size * 3, start, end)  # sizes unlike the chunks


def _demand_reads(stream: CountingStream) -> int:
    return stream.reads - stream.ahead_reads


def test_sequential_reading_is_read_ahead_and_exact() -> None:
    data = make_disk_bytes(3 << 20, seed=10)
    inner = BlockCountingStream(data)
    cached = CachedStream(inner, chunk_size=16384, cache_bytes=1 << 20, read_ahead=256 * 1024)
    out = bytearray()
    for offset in range(0, len(data), 65536):
        out += cached.pread(offset, 65536)
    cached.stop_read_ahead()
    assert bytes(out) == data
    assert inner.block_calls >= 1
    assert inner.ahead_reads > 0
    # a fresh reader: after chunk 0 the next window is read before anyone asks for it, and
    # the read-ahead stays within a window of the reader
    inner = BlockCountingStream(data)
    cached = CachedStream(inner, chunk_size=16384, cache_bytes=1 << 20, read_ahead=256 * 1024)
    assert cached.pread(0, 16384) == data[:16384]
    deadline = time.monotonic() + 10
    while not cached.cache.peek(16) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert cached.cache.peek(16)
    time.sleep(0.2)
    assert not cached.cache.peek(40)
    demand = _demand_reads(inner)
    assert cached.pread(16384, 8 * 16384) == data[16384:9 * 16384]
    assert _demand_reads(inner) == demand
    # a jump elsewhere ends it; reads there are exact
    assert cached.pread(2 << 20, 100) == data[2 << 20:(2 << 20) + 100]
    cached.stop_read_ahead(timeout=10)
    assert cached.pread(3 << 19, 70000) == data[3 << 19:(3 << 19) + 70000]


def test_read_errors_propagate_and_are_not_cached() -> None:
    data = make_disk_bytes(256 * 1024, seed=6)
    inner = CountingStream(data, bad=range(70_000, 70_001))
    cached = CachedStream(inner, chunk_size=32768, cache_bytes=1 << 20)
    with pytest.raises(CorruptImageError):
        cached.pread(65536, 10)
    inner.bad = None
    assert cached.pread(65536, 10) == data[65536:65546]


def ops_names(tree: MountTree) -> list[str]:
    return sorted(tree.root.children or {})


def _ops(stream: ImageStream, tmp_path: Path) -> EvidenceOperations:
    image = tmp_path / "x.raw"
    image.write_bytes(b"")
    return EvidenceOperations(MountTree(CachedStream(stream), image))


def test_operations_answer_reads_and_refuse_every_change(tmp_path: Path) -> None:
    data = make_disk_bytes(300_000, seed=8)
    ops = _ops(BytesStream(data), tmp_path)
    assert set(ops.readdir("/", 0)) == {".", "..", "media.raw", "partitions"}
    attrs = ops.getattr("/media.raw")
    assert attrs["st_size"] == len(data)
    assert attrs["st_mode"] & 0o222 == 0
    assert ops.read("/media.raw", 4096, 1000, 0) == data[1000:5096]
    assert ops.read("/media.raw", 4096, len(data) - 10, 0) == data[-10:]
    assert ops.read("/media.raw", 4096, len(data) + 10, 0) == b""
    with pytest.raises(OSError, match="No such file") as caught:
        ops.getattr("/nothing")
    assert caught.value.errno == errno.ENOENT
    for flags in (os.O_WRONLY, os.O_RDWR, os.O_RDONLY | os.O_TRUNC, os.O_RDONLY | os.O_APPEND):
        with pytest.raises(OSError, match="Read-only") as caught:
            ops.open("/media.raw", flags)
        assert caught.value.errno == errno.EROFS
    changes = {
        "write": ("/media.raw", b"x", 0, 0), "truncate": ("/media.raw", 0),
        "create": ("/new", 0o644), "mkdir": ("/d", 0o755), "mknod": ("/n", 0o644, 0),
        "unlink": ("/media.raw",), "rmdir": ("/partitions",),
        "rename": ("/media.raw", "/m"), "symlink": ("/l", "/media.raw"),
        "link": ("/l", "/media.raw"), "chmod": ("/media.raw", 0o777),
        "chown": ("/media.raw", 0, 0), "utimens": ("/media.raw", None),
        "setxattr": ("/media.raw", "user.a", b"1", 0), "removexattr": ("/media.raw", "user.a"),
        "fallocate": ("/media.raw", 0, 0, 10, 0),
    }
    for name, args in changes.items():
        with pytest.raises(OSError, match="Read-only") as caught:
            getattr(ops, name)(*args)
        assert caught.value.errno == errno.EROFS, name
    with pytest.raises(OSError, match="Read-only") as caught:
        ops.access("/media.raw", os.W_OK)
    assert caught.value.errno == errno.EROFS


def test_a_file_with_a_note_is_listed_but_not_served(tmp_path: Path) -> None:
    """A node carrying a content note (a deleted file whose inode was cleared, size 0 as ext4
    leaves it, or reused): getattr gives its recorded size, open and read answer EIO, the note
    is the one extended attribute, said once through notice; other files have no attribute."""
    notices: list[str] = []
    ops = _ops(BytesStream(make_disk_bytes(65536, seed=3)), tmp_path)
    ops.notice = notices.append
    note = "not recoverable: the deleted inode records no content (size 0)"
    files = ops.tree.root
    for name, size in (("cleared.txt", 0), ("reused.txt", 38)):
        files.add(Node(name, ops.tree.stamp, size=size, note=note,
                       reader=lambda _o, _s: b"must never be served"))
        assert ops.getattr(f"/{name}")["st_size"] == size
        for _ in range(2):
            with pytest.raises(OSError, match="Input/output error") as caught:
                ops.open(f"/{name}", os.O_RDONLY)
            assert caught.value.errno == errno.EIO
        with pytest.raises(OSError, match="Input/output error") as caught:
            ops.read(f"/{name}", 4096, 0, 0)  # a handle never given out: refused all the same
        assert caught.value.errno == errno.EIO
        assert ops.listxattr(f"/{name}") == [CONTENT_XATTR]
        assert ops.getxattr(f"/{name}", CONTENT_XATTR) == note.encode()
        with pytest.raises(OSError, match="No data available") as caught:
            ops.getxattr(f"/{name}", "security.selinux")
        assert caught.value.errno == errno.ENODATA
    assert notices == [f"/{name}: content {note}; not served (EIO)"
                       for name in ("cleared.txt", "reused.txt")]
    assert ops.listxattr("/media.raw") == []
    with pytest.raises(OSError, match="No data available") as caught:
        ops.getxattr("/media.raw", CONTENT_XATTR)
    assert caught.value.errno == errno.ENODATA
    assert ops.open("/media.raw", os.O_RDONLY) == 0


def test_a_corrupt_read_is_eio_not_bytes(tmp_path: Path) -> None:
    data = make_disk_bytes(300_000, seed=9)
    notices: list[str] = []
    image = tmp_path / "x.raw"
    image.write_bytes(b"")
    tree = MountTree(CachedStream(CountingStream(data, bad=range(200_000, 200_001))), image,
                     notice=notices.append)
    # TSK's file-system probes hit the damage: partitions/ stays empty, media.raw is served
    assert notices
    assert notices[0].startswith("partitions not read")
    assert ops_names(tree) == ["media.raw", "partitions"]
    ops = EvidenceOperations(tree, notice=notices.append)
    assert ops.read("/media.raw", 4096, 0, 0) == data[:4096]
    with pytest.raises(OSError, match="Input/output error") as caught:
        ops.read("/media.raw", 4096, 199_000, 0)
    assert caught.value.errno == errno.EIO
    assert "199000" in notices[-1]


@pytest.mark.parametrize(("name", "expected"), [
    ("plain.txt", "plain.txt"), ("a/b", "a%2Fb"), ("nul\0x", "nul%00x"), (".", "%2E"),
    ("..", "%2E%2E"), ("", "%00"), ("50%/x", "50%25%2Fx"), ("50%", "50%"),
])
def test_names_from_evidence_are_one_path_component(name: str, expected: str) -> None:
    assert mount_name(name) == expected


def test_missing_fuse_is_one_line_exit_2(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from bitwitness.report.mount import service

    monkeypatch.setattr(service, "fuse_available",
                        lambda: "FUSE is not available here: /dev/fuse is missing")
    image = tmp_path / "x.raw"
    image.write_bytes(bytes(4096))
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    result = run_bitwitness("mount", image, mnt)
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        "bitwitness: error: FUSE is not available here: /dev/fuse is missing"]


def test_evidence_image_is_the_one_the_typed_log_names(tmp_path: Path) -> None:
    """``mount --case C --evidence ID`` mounts the image the acquisition log's ``outputs`` name
    (read through bitwitness.acquisitionlog), not the first ``*.E01`` of the folder; a log
    that cannot be read falls back to the folder's images."""
    from bitwitness import acquisitionlog
    from bitwitness.report.mount.service import evidence_image

    case_dir = tmp_path / "case"
    made = run_bitwitness("case", "new", case_dir, "--set", "case_number=C-1",
                          "--set", "examiner=Ann Example")
    assert made.exit_code == 0, made.stderr
    source = tmp_path / "stick.img"
    source.write_bytes(make_disk_bytes(1 << 20))
    done = run_bitwitness("acquire", source, "--case", case_dir, "--evidence", "usb01",
                          "--format", "raw")
    assert done.exit_code == 0, done.stderr
    folder = case_dir / "evidence" / "usb01"
    [log_path] = folder.glob("*.json")
    outputs = acquisitionlog.load(log_path).outputs
    [named] = [Path(o.path) for o in outputs if o.role == "image"]
    assert named.suffix != ".E01"
    (folder / "a-decoy.E01").write_bytes(b"not the image")  # first by the folder's order
    assert evidence_image(case_dir, "usb01") == named
    log_path.write_text("{not json", encoding="utf-8")
    assert evidence_image(case_dir, "usb01") == folder / "a-decoy.E01"
