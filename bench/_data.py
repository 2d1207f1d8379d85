"""Generated disk-like data for benchmarks: about 1/3 zeros, 1/3 random, 1/3 text-like.

Deterministic for a seed, written in large blocks so that multi-GiB files cost little memory.
Regions are 4 KiB .. 1 MiB long, so that chunk-based formats see whole-zero chunks, incompressible
chunks, compressible chunks and chunks that mix them, as on a real disk.
"""

from __future__ import annotations

import random
from pathlib import Path

_WORDS = (b"the evidence sector chain custody witness file system journal inode cluster "
          b"partition record user password http www com index html Program Files Windows "
          b"System32 dll exe config log 2026-11-25 10:30:05 INFO WARN ERROR 0x7fff 1234 5678 "
          b"lorem ipsum dolor sit amet\n").split(b" ")


def _text_pool(rng: random.Random, size: int = 4 << 20) -> bytes:
    out = bytearray()
    while len(out) < size:
        out += b" ".join(rng.choice(_WORDS) for _ in range(4096)) + b"\n"
    return bytes(out[:size])


def disk_blocks(size: int, seed: int = 1, block: int = 8 << 20):
    """Yield ``size`` bytes of disk-like data in blocks of at most ``block`` bytes."""
    rng = random.Random(seed)
    pool = _text_pool(rng)
    buf = bytearray()
    produced = 0
    kind = 0
    while produced < size:
        while len(buf) < block and produced + len(buf) < size:
            n = rng.choice([4096, 32768, 65536, 262144, 1 << 20])
            if kind == 0:
                buf += bytes(n)
            elif kind == 1:
                buf += rng.randbytes(n)
            else:
                start = rng.randrange(0, len(pool) - n)
                buf += pool[start:start + n]
            kind = (kind + 1) % 3
        take = min(len(buf), block, size - produced)
        yield bytes(buf[:take])
        del buf[:take]
        produced += take


def make_disk_file(path: Path, size: int, seed: int = 1) -> Path:
    """Write ``size`` bytes of disk-like data to ``path`` (size should be a multiple of 512)."""
    with path.open("wb") as fh:
        for chunk in disk_blocks(size, seed):
            fh.write(chunk)
    return path

