"""E01 output size and speed: BitWitness's writer and reader against ewfacquire/ewfverify.

    python bench/bench_ewf_size.py [--size 512MiB] [--repeat 3] [--dir DIR]

Generates one disk-like file (bench/_data.py: ~1/3 zeros, 1/3 random, 1/3 text), then on that same
data:

* size: ``ewfacquire -c deflate:fast`` against our ``fast`` (target: within 5 %), and best;
* write speed: ewfacquire against our writer fed the way acquisition feeds it (encode_chunks in a
  thread pool, write_chunks in order, MD5+SHA-1 on their own threads; no segment-file hashing);
* verify speed: ``ewfverify -d sha1`` against our parallel scan + MD5/SHA-1, both on the same
  ewfacquire-made image.

Each measurement alternates the two tools ``--repeat`` times and keeps each one's best time (the
machine may be shared). Our writer fsyncs every segment (ewfacquire does not): its time includes
that.
Prints one line per measurement with the ratio. Timing lives here, never in the tests.
"""

from __future__ import annotations

import resource
import subprocess
import sys
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _args import BenchOptions, BenchParser, work_folder
from _data import make_disk_file

from bitwitness.ewf import (
    Compression,
    EncodedChunk,
    EwfMetadata,
    EwfWriter,
    encode_chunks,
    open_ewf,
)
from bitwitness.hashing import ThreadedHasher

RUNS = 3  #: the default --repeat


def ewfacquire(src: Path, target: Path, mode: str) -> float:
    start = time.perf_counter()
    subprocess.run(["ewfacquire", "-u", "-q", "-t", str(target), "-c", f"deflate:{mode}",
                    "-d", "sha1", "-C", "bench", "-e", "bench", str(src)],
                   check=True, capture_output=True)
    return time.perf_counter() - start


def ours(src: Path, target: Path, compression: Compression, workers: int = 2,
         sync: bool = True) -> float:
    start = time.perf_counter()
    size = src.stat().st_size
    hasher = ThreadedHasher(("md5", "sha1"))
    with EwfWriter(target, media_size=size, metadata=EwfMetadata(case_number="bench"),
                   compression=compression, sync=sync) as w, src.open("rb") as fh, \
            ThreadPoolExecutor(workers) as pool:
        span = w.chunk_size * 64
        window: deque[Future[list[EncodedChunk]]] = deque()
        while block := fh.read(span):  # a bounded window, as the acquisition pipeline keeps one
            hasher.update(block)
            window.append(pool.submit(encode_chunks, block, w.chunk_size, compression))
            if len(window) >= 4 * workers:
                w.write_chunks(window.popleft().result())
        while window:
            w.write_chunks(window.popleft().result())
        digests = hasher.close()
        w.close(md5=digests["md5"], sha1=digests["sha1"])
    return time.perf_counter() - start


def ewfverify(first: Path) -> float:
    start = time.perf_counter()
    proc = subprocess.run(["ewfverify", "-q", "-d", "sha1", str(first)], capture_output=True,
                          text=True, check=False)
    if "SUCCESS" not in proc.stdout:
        raise SystemExit(f"ewfverify failed on {first}:\n{proc.stdout}{proc.stderr}")
    return time.perf_counter() - start


def our_verify(first: Path) -> tuple[float, bool]:
    start = time.perf_counter()
    hasher = ThreadedHasher(("md5", "sha1"))
    with open_ewf(first) as img:
        for block in img.scan():
            if block.problem:
                raise SystemExit(f"bad chunk: {block.problem}")
            hasher.update(block.data)
        digests = hasher.close()
        ok = digests == {k: v for k, v in img.stored_hashes.items() if k in digests}
    return time.perf_counter() - start, ok


def cpu_seconds(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def total_size(base: Path) -> int:
    return sum(p.stat().st_size for p in base.parent.glob(base.name + ".E*"))


def _options() -> BenchOptions:
    parser = BenchParser(__doc__, size="512MiB", repeat=RUNS,
                         dir_help="where the temporary work folder is made (default: "
                                  "/var/tmp, on disk)")
    parser.deprecated_mib()
    return parser.parse()


def main() -> None:
    args = _options()
    mib = args.size / (1 << 20)
    with work_folder(args.dir, "bw-bench-ewf-size-", inside=True) as work:
        src = make_disk_file(work / "disk.raw", args.size)
        src.read_bytes()  # warm the page cache for both sides alike
        print(f"data: {mib:g} MiB disk-like (1/3 zeros, 1/3 random, 1/3 text)")
        for mode, comp in (("fast", Compression.FAST), ("best", Compression.BEST)):
            t_peer = t_ours = float("inf")
            for _ in range(args.repeat):  # alternate and keep the best: the box may be shared
                for p in work.glob(f"*-{mode}.E*"):
                    p.unlink()
                t_peer = min(t_peer, ewfacquire(src, work / f"peer-{mode}", mode))
                t_ours = min(t_ours, ours(src, work / f"ours-{mode}", comp))
            s_peer, s_ours = total_size(work / f"peer-{mode}"), total_size(work / f"ours-{mode}")
            print(f"{mode:5s} size : ewfacquire {s_peer:>12,d}  BitWitness {s_ours:>12,d}  "
                  f"ratio {s_ours / s_peer:.3f} (target <= 1.05 for fast)")
            print(f"{mode:5s} write: ewfacquire {mib / t_peer:7.1f} MiB/s  BitWitness "
                  f"{mib / t_ours:7.1f} MiB/s  speed-up {t_peer / t_ours:.2f}x")
            if mode == "fast":
                t_nosync = float("inf")
                for _ in range(args.repeat):
                    for p in work.glob("nosync.E*"):
                        p.unlink()
                    t_nosync = min(t_nosync, ours(src, work / "nosync", comp, sync=False))
                print(f"fast  write without fsync (as ewfacquire): BitWitness "
                      f"{mib / t_nosync:7.1f} MiB/s  speed-up {t_peer / t_nosync:.2f}x")
            for p in work.glob(f"*-{mode}.E*"):
                if mode == "best":
                    p.unlink()
        first = work / "peer-fast.E01"
        t_peer = t_ours = c_peer = c_ours = float("inf")
        for _ in range(args.repeat):
            before = cpu_seconds(resource.RUSAGE_CHILDREN)
            t_peer = min(t_peer, ewfverify(first))
            c_peer = min(c_peer, cpu_seconds(resource.RUSAGE_CHILDREN) - before)
            before = cpu_seconds(resource.RUSAGE_SELF)
            t, ok = our_verify(first)
            c_ours = min(c_ours, cpu_seconds(resource.RUSAGE_SELF) - before)
            t_ours = min(t_ours, t)
        print(f"verify: ewfverify -d sha1 {mib / t_peer:7.1f} MiB/s  BitWitness scan+md5+sha1 "
              f"{mib / t_ours:7.1f} MiB/s  speed-up {t_peer / t_ours:.2f}x (target >= 1.3x)"
              f"{'' if ok else '  HASH MISMATCH'}")
        print(f"verify CPU seconds: ewfverify {c_peer:.2f}  BitWitness {c_ours:.2f} "
              "(wall-clock ratios need two idle cores: our pipeline uses both)")


if __name__ == "__main__":
    main()
