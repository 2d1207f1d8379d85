"""A large E01 of zeros, written cheaply: the media of ``bench/bench_scale.py``'s ``info`` row.

Why a builder of its own: acquiring a 1 TB source would take an hour (MD5 alone runs at ~0.6
GiB/s), and ``info`` reads nothing of the media. The set is written by BitWitness's own E01
writer (the tables, groups and segments of a real 1 TB acquisition of zeros: 64-sector chunks,
16 375-chunk groups as the writer makes of compressed zeros, 1.4 GiB segments) from one encoded
zero chunk repeated, ~1 s per 40 GiB of media.

Its one departure from an acquisition: no ``digest``/``hash`` sections. The media's MD5 and
SHA-1 would take ~30 min per TB to compute and nothing the benchmark runs reads them; EWF makes
them optional (libewf's ``ewfinfo`` shows no hash then, and opens the set as usual).
"""

from __future__ import annotations

from pathlib import Path

from bitwitness.ewf import Compression, EwfMetadata, EwfWriter, encode_chunk
from bitwitness.ewf import structures as st

#: Chunks handed to the writer per call.
_BATCH = 4096


class _UnhashedWriter(EwfWriter):
    """The E01 writer, closed without the optional hash sections (see the module)."""

    def close_unhashed(self) -> None:
        self._flush_pending()
        sectors = self._media_bytes // self.bytes_per_sector
        if self._group_start is not None:
            self._close_group()
        self._patch_volumes(sectors)
        if len(self._paths) == 1:
            self._section("data", st.pack_volume(self._volume))
        self._emit(st.pack_descriptor("done", self._pos, 0))
        self._finish_file()
        self._closed = True


def write_zero_e01(base: Path, media_size: int) -> list[Path]:
    """Write ``base.E01``... holding ``media_size`` bytes (a multiple of 32 KiB) of zeros."""
    writer = _UnhashedWriter(base, media_size=media_size, overwrite=True, sync=False,
                             metadata=EwfMetadata(description="bench_scale: zeros",
                                                  case_number="bench"))
    if media_size % writer.chunk_size:
        raise ValueError(f"media size must be a multiple of {writer.chunk_size}")
    zero = encode_chunk(bytes(writer.chunk_size), Compression.FAST)
    batch = [zero] * _BATCH
    left = media_size // writer.chunk_size
    while left:
        count = min(_BATCH, left)
        writer.write_chunks(batch if count == _BATCH else batch[:count])
        left -= count
    writer.close_unhashed()
    return list(writer.segments)
