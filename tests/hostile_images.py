"""Builders of hostile images: every attack on the image parsers that issue 14 lists, made here.

Each builder writes one small file (a few MB at most) that claims something absurd: header text
inflating to 3 GiB, a chunk inflating to 6 GiB, 2^31 sectors per chunk, offsets of 2^64-1, a VMDK
extent named ``/etc/passwd``. The tests open them with every command and expect a verdict or a
one-line error within bounded memory and time. Run as a script to write them all to a folder::

    python tests/hostile_images.py OUT_DIR

Deflate bombs are built without ever holding the inflated bytes: after a full flush, deflate's
output for another MiB of zeros is the same 1 KiB every time, so that block is repeated.
"""

from __future__ import annotations

import struct
import sys
import zlib
from collections.abc import Callable
from functools import cache
from pathlib import Path

from bitwitness.ewf import structures as st
from bitwitness.images import vhd, vmdk

MIB = 1 << 20
GIB = 1 << 30
U64_MAX = (1 << 64) - 1


# --- deflate bombs ---------------------------------------------------------------------------


@cache
def _zero_blocks() -> tuple[bytes, bytes]:
    """Raw deflate of one MiB of zeros after a full flush, and the closing empty block."""
    deflater = zlib.compressobj(9, zlib.DEFLATED, -15)
    deflater.compress(bytes(MIB))
    deflater.flush(zlib.Z_FULL_FLUSH)
    block = deflater.compress(bytes(MIB)) + deflater.flush(zlib.Z_FULL_FLUSH)
    return block, deflater.flush()


def zlib_bomb(mebibytes: int) -> bytes:
    """A valid zlib stream (header, deflate, Adler-32) inflating to ``mebibytes`` MiB of zeros."""
    block, final = _zero_blocks()
    total = mebibytes * MIB
    adler = ((total % 65521) << 16) | 1  # Adler-32 of n zero bytes: A = 1, B = n mod 65521
    return b"\x78\xda" + block * mebibytes + final + struct.pack(">I", adler)


# --- E01 ------------------------------------------------------------------------------------


def e01(path: Path, chunks: list[tuple[bytes, bool]], *, sectors_per_chunk: int = 64,
        bytes_per_sector: int = 512, sector_count: int | None = None,
        header2: bytes | None = None, table_base: int | None = None) -> Path:
    """A one-segment E01: [header2], volume, sectors, table, table2, done.

    ``chunks`` are ``(stored bytes, compressed)``; raw chunks carry their Adler-32 already.
    ``table_base`` replaces the table's base offset (the entries then count from 0).
    """
    out = bytearray(st.pack_file_header(1))

    def section(kind: str, body: bytes) -> int:
        at = len(out)
        size = st.DESCRIPTOR_SIZE + len(body)
        out.extend(st.pack_descriptor(kind, at + size, size) + body)
        return at

    if header2 is not None:
        section("header2", header2)
    if sector_count is None:
        sector_count = len(chunks) * sectors_per_chunk
    volume = st.Volume(media_type=1, chunk_count=len(chunks),
                       sectors_per_chunk=sectors_per_chunk, bytes_per_sector=bytes_per_sector,
                       sector_count=sector_count, media_flags=1, compression_level=1,
                       error_granularity=min(sectors_per_chunk, 0xFFFF_FFFF),
                       guid=b"hostile-image-14")
    section("volume", st.pack_volume(volume))
    sectors_at = len(out) + st.DESCRIPTOR_SIZE
    offsets, at = [], sectors_at
    for stored, _ in chunks:
        offsets.append(at)
        at += len(stored)
    section("sectors", b"".join(stored for stored, _ in chunks))
    base = 0 if table_base is None else table_base
    entries = b"".join(
        struct.pack("<I", ((offset if table_base is None else offset - sectors_at)
                           & st.OFFSET_MASK) | (st.COMPRESSED_FLAG if compressed else 0))
        for offset, (_, compressed) in zip(offsets, chunks, strict=True))
    table = st.pack_table(base, entries)
    section("table", table)
    section("table2", table)
    done = len(out)
    out.extend(st.pack_descriptor("done", done, st.DESCRIPTOR_SIZE))
    path.write_bytes(bytes(out))
    return path


def raw_chunk(data: bytes) -> tuple[bytes, bool]:
    return data + struct.pack("<I", zlib.adler32(data) & 0xFFFF_FFFF), False


def e01_header2_bomb(folder: Path) -> Path:
    """header2 inflating to 3 GiB (issue: 3 GB of memory, 18 s, then MemoryError)."""
    return e01(folder / "header2-bomb.E01", [raw_chunk(bytes(32768))],
               header2=zlib_bomb(3 * 1024))


def e01_chunk_bomb(folder: Path) -> Path:
    """A 16 MiB chunk (the largest EWF writers make) whose stream inflates to 6 GiB."""
    return e01(folder / "chunk-bomb.E01", [(zlib_bomb(6 * 1024), True)],
               sectors_per_chunk=32768)


def e01_chunk_1gib(folder: Path) -> Path:
    """A volume declaring 1 GiB chunks with one chunk inflating to 6 GiB (the issue's case)."""
    return e01(folder / "chunk-1gib.E01", [(zlib_bomb(6 * 1024), True)],
               sectors_per_chunk=GIB // 512)


def e01_huge_sectors_per_chunk(folder: Path) -> Path:
    """2^31 sectors per chunk and one tiny stored chunk (issue: the reader allocates it)."""
    return e01(folder / "spc-2p31.E01", [raw_chunk(b"tiny chunk")],
               sectors_per_chunk=1 << 31, sector_count=1)


def e01_table_base(folder: Path) -> Path:
    """Table and table2 with base offset 2^64-1 (issue: OverflowError in os.pread)."""
    return e01(folder / "table-base.E01", [raw_chunk(bytes(32768))], table_base=U64_MAX)


# --- VMDK -----------------------------------------------------------------------------------


def _sparse(path: Path, header: vmdk.SparseHeader, tail: bytes = b"") -> Path:
    path.write_bytes(vmdk.pack_header(header).ljust(512, b"\0") + tail)
    return path


def vmdk_gtes(folder: Path) -> Path:
    """A 1 KiB sparse extent declaring 0xFFFFFFFF GTEs per grain table."""
    header = vmdk.SparseHeader(capacity=1 << 30, gtes_per_gt=0xFFFF_FFFF, gd_offset=1)
    return _sparse(folder / "gtes.vmdk", header, bytes(512))


def _compressed_disk(path: Path, stored: bytes, marker_size: int | None = None) -> Path:
    """One 64 KiB grain, stored compressed behind a marker at sector 6."""
    header = vmdk.SparseHeader(
        capacity=128, grain_size=128, gtes_per_gt=512, gd_offset=1, overhead=6, version=3,
        flags=vmdk.FLAG_NEWLINE_TEST | vmdk.FLAG_COMPRESSED | vmdk.FLAG_MARKERS,
        compress_algorithm=1)
    gd = struct.pack("<I", 2).ljust(512, b"\0")
    gt = struct.pack("<I", 6).ljust(2048, b"\0")
    marker = struct.pack("<QI", 0, len(stored) if marker_size is None else marker_size)
    return _sparse(path, header, gd + gt + marker + stored)


def vmdk_grain_bomb(folder: Path) -> Path:
    """A compressed grain inflating to 2 GiB (its marker gives the stream's true size)."""
    return _compressed_disk(folder / "grain-bomb.vmdk", zlib_bomb(2 * 1024))


def vmdk_grain_overflow(folder: Path) -> Path:
    """A compressed grain small enough to pass the size check that inflates to 64 MiB."""
    return _compressed_disk(folder / "grain-overflow.vmdk", zlib_bomb(64))


def vmdk_grain_marker_zero(folder: Path) -> Path:
    """A grain table entry pointing at a marker of 0 stored bytes (a metadata marker, as the
    end-of-stream one): it was read as a grain of zeros, the damage unseen."""
    return _compressed_disk(folder / "grain-marker-zero.vmdk", zlib.compress(b"x" * 65536),
                            marker_size=0)


def vmdk_gd_offset(folder: Path) -> Path:
    """A grain directory at sector 2^64-2 (times 512 it is past 2^63)."""
    header = vmdk.SparseHeader(capacity=128, gd_offset=U64_MAX - 1)
    return _sparse(folder / "gd-offset.vmdk", header)


def vmdk_capacity(folder: Path) -> Path:
    """A capacity of 2^54-1 sectors: the grain directory alone would be 2 TiB."""
    header = vmdk.SparseHeader(capacity=(1 << 54) - 1, gd_offset=1)
    return _sparse(folder / "capacity.vmdk", header, bytes(512))


def vmdk_capacity_max(folder: Path) -> Path:
    """A capacity of 2^64-1 sectors."""
    header = vmdk.SparseHeader(capacity=U64_MAX, gd_offset=1)
    return _sparse(folder / "capacity-max.vmdk", header, bytes(512))


def _descriptor(path: Path, extent: str) -> Path:
    path.write_text('# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\n'
                    'createType="monolithicFlat"\n\n# Extent description\n'
                    f'RW 2 FLAT "{extent}" 0\n')
    return path


def vmdk_extent_passwd(folder: Path) -> Path:
    """A descriptor whose extent is /etc/passwd (issue: opened and hashed as evidence)."""
    return _descriptor(folder / "passwd.vmdk", "/etc/passwd")


def vmdk_extent_parent(folder: Path) -> Path:
    """A descriptor whose extent is ../other.E01, which exists."""
    inner = folder / "inner"
    inner.mkdir(exist_ok=True)
    (folder / "other.E01").write_bytes(b"not evidence of this image" * 64)
    return _descriptor(inner / "dotdot.vmdk", "../other.E01")


# --- VHD ------------------------------------------------------------------------------------


def vhd_dynamic(path: Path, *, table_offset: int, size: int = 2 * MIB,
                block_size: int = 2 * MIB, entries: int = 1) -> Path:
    """A dynamic VHD with no blocks stored and the given BAT position."""
    footer = vhd.pack_footer(vhd.VhdFooter(disk_type=vhd.DISK_DYNAMIC, current_size=size,
                                           original_size=size, geometry=vhd.chs_geometry(size),
                                           data_offset=512))
    head = struct.pack(">8sQQIII", vhd.DYNAMIC_COOKIE, U64_MAX, table_offset, 0x0001_0000,
                       entries, block_size).ljust(1024, b"\0")
    checksum = vhd.vhd_checksum(head, 36)
    head = head[:36] + struct.pack(">I", checksum) + head[40:]
    bat = struct.pack(">I", vhd.UNALLOCATED) * 128  # one sector of it, whatever is claimed
    path.write_bytes(footer + head + bat + footer)
    return path


def vhd_table_offset(folder: Path) -> Path:
    """A dynamic VHD whose BAT lies at 2^64-1 (issue: OverflowError)."""
    return vhd_dynamic(folder / "table-offset.vhd", table_offset=U64_MAX)


def vhd_huge_size(folder: Path) -> Path:
    """A dynamic VHD declaring 2^62 bytes of media: its BAT would be 8 TiB."""
    return vhd_dynamic(folder / "huge-size.vhd", table_offset=1536, size=1 << 62,
                       entries=0xFFFF_FFFF)


def vhd_block_size(folder: Path) -> Path:
    """A dynamic VHD whose one BAT entry covers a 2 GiB block (every writer uses 2 MiB)."""
    return vhd_dynamic(folder / "block-size.vhd", table_offset=1536, size=2 * GIB,
                       block_size=1 << 31)


def vhd_beyond_2040(folder: Path) -> Path:
    """A dynamic VHD declaring 4 TiB, twice what a VHD can hold, with a BAT that covers it."""
    size = 4 << 40
    entries = size // (2 * MIB)
    path = vhd_dynamic(folder / "beyond-2040.vhd", table_offset=1536, size=size,
                       entries=entries)
    _grow_bat(path, entries)
    return path


def vhd_sparse_2040(folder: Path) -> Path:
    """A valid, never-written 2040 GiB dynamic VHD of 4 MiB: 2 TiB declared, nothing stored."""
    size = 2040 << 30
    entries = size // (2 * MIB)
    path = vhd_dynamic(folder / "sparse-2040.vhd", table_offset=1536, size=size,
                       entries=entries)
    _grow_bat(path, entries)
    return path


def _grow_bat(path: Path, entries: int) -> None:
    """Rewrite ``path`` (from :func:`vhd_dynamic`) with a BAT of ``entries`` unused entries."""
    data = path.read_bytes()
    footer, head = data[:512], data[512:1536]
    bat = (struct.pack(">I", vhd.UNALLOCATED) * entries).ljust(-(-entries * 4 // 512) * 512,
                                                                b"\xff")
    path.write_bytes(footer + head + bat + footer)


def vmdk_grain_size(folder: Path) -> Path:
    """A sparse extent with 2048-sector (1 MiB) grains: 512 MiB per directory entry."""
    header = vmdk.SparseHeader(capacity=1 << 20, grain_size=2048, gd_offset=1)
    return _sparse(folder / "grain-size.vmdk", header, bytes(512))


def vmdk_sparse_8tib(folder: Path) -> Path:
    """A valid 8 TiB sparse extent of 1 MiB: its grain directory names no grain table."""
    capacity = 1 << 34
    gd_entries = capacity // (512 * 128)
    header = vmdk.SparseHeader(capacity=capacity, gd_offset=1)
    return _sparse(folder / "sparse-8tib.vmdk", header, bytes(gd_entries * 4))


def vmdk_extent_beyond_capacity(folder: Path) -> Path:
    """A descriptor giving a 128-sector sparse extent 2^40 sectors."""
    header = vmdk.SparseHeader(capacity=128, gd_offset=1)
    _sparse(folder / "small-s001.vmdk", header, bytes(512))
    path = folder / "beyond.vmdk"
    path.write_text('# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\n'
                    'createType="twoGbMaxExtentSparse"\n\n# Extent description\n'
                    f'RW {1 << 40} SPARSE "small-s001.vmdk"\n')
    return path


def vmdk_zero_extent(folder: Path) -> Path:
    """A descriptor of one ZERO extent of 2^40 sectors (512 TiB) in 150 bytes."""
    path = folder / "zero.vmdk"
    path.write_text('# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\n'
                    'createType="monolithicFlat"\n\n# Extent description\n'
                    f'RW {1 << 40} ZERO\n')
    return path


def _sesparse(folder: Path, capacity: int, gd_entries: int, file_size: int) -> Path:
    """An SEsparse extent without a parent (its areas packed: GD at sector 2) and its
    descriptor; the file holds ``file_size`` bytes, whatever the header declares."""
    fields = [0xCAFEBABE, 0x2_0000_0001, capacity, 8, 64, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0,
              2, -(-gd_entries * 8 // 512), 0, 0, 0, 0, 0, 0, 0, capacity]
    extent = folder / "sesparse-sesparse.vmdk"
    with extent.open("wb") as out:
        out.write(struct.pack("<26Q", *fields).ljust(512, b"\0"))
        out.write(struct.pack("<4Q", 0xCAFECAFE, 0, 1, 0).ljust(512, b"\0"))
        out.truncate(file_size)
    path = folder / "sesparse.vmdk"
    path.write_text('# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\n'
                    'createType="seSparse"\n\n# Extent description\n'
                    f'RW {capacity} SESPARSE "{extent.name}"\n')
    return path


def vmdk_sesparse_capacity(folder: Path) -> Path:
    """An SEsparse extent of 1 KiB declaring 2^40 sectors (512 TiB) and a grain directory of
    the 2^25 entries (256 MiB) they need, which the file does not hold."""
    return _sesparse(folder, 1 << 40, 1 << 25, 1024)


def vmdk_sesparse_1tib(folder: Path) -> Path:
    """A well-formed SEsparse extent of 1 TiB with no grain: 512 KiB of empty directory, so
    2 million bytes of media per byte of file; verify must ask for --max-media."""
    entries = (1 << 40) // (16 << 20)
    return _sesparse(folder, (1 << 40) // 512, entries, 1024 + entries * 8)


# --- logical evidence files: the file list libewf parses whole while opening ---------------


def l01_ltree_256mib(folder: Path) -> Path:
    """An L01 whose ltree section declares 256 MiB of file list, what some 700 000 files would
    take (a hole after the real text: the file is sparse, a few KB on disk)."""
    from builders.logical import Item, build_l01

    return build_l01(folder / "list.L01", [Item("x", b"y")], ltree_declared=256 * MIB).path


def lx01_ltree_256mib(folder: Path) -> Path:
    """The same in an Lx01: its single files section declares 256 MiB."""
    from builders.logical import Item, build_lx01

    return build_lx01(folder / "list.Lx01", [Item("x", b"y")], ltree_declared=256 * MIB).path


def l01_ltree_dense(folder: Path) -> Path:
    """An L01 listing a million entries in 14 MB of ltree: two lines of a few characters each
    (``0<TAB>0``, ``<TAB>a``), which libewf would keep as a million file entries (~760 MiB)."""
    from builders.logical import Item, build_l01

    n = 1_000_000
    head = ["5", "rec", "tb\tcl", "1\t1", "", "perm", "0\t1", "p\tn\ts\tpr\tnta\tnti",
            "0\t0", "1\t\t\t10\t\t", "", "srce", "0\t1", "p\tn", "0\t0", "1\t", "",
            "sub", "0\t1", "p\tn", "0\t0", "1\t", "", "entry", f"{n + 1}\t1", "p\tn",
            f"0\t{n}", "1\t"]
    text = "\n".join(head) + "\n" + "0\t0\n\ta\n" * n + "\n"
    return build_l01(folder / "dense.L01", [Item("x", b"y")], ltree_override=text).path


#: Every builder, by the name the tests and the script use.
# --- Parallels lone sparse extents ------------------------------------------------------------

#: A Parallels header (``WithouFreSpacExt``): magic, version 2, heads, cylinders, sectors per
#: cluster, table entries, media sectors, in use, first data sector, flags, extension offset.
_PARALLELS_HEADER = struct.Struct("<16sIIIIIQIIIQ")
_PARALLELS_ENTRIES = 64 << 20


def _parallels(path: Path, cluster_sectors: int, entries: int, file_size: int) -> Path:
    """A lone extent of ``entries`` unallocated clusters, grown (sparsely) to ``file_size``."""
    header = _PARALLELS_HEADER.pack(b"WithouFreSpacExt", 2, 16, 1, cluster_sectors, entries,
                                    entries * cluster_sectors, 0, 1, 0, 0)
    with path.open("wb") as out:
        out.write(header)
        out.truncate(file_size)
    return path


def parallels_bat_64m(folder: Path) -> Path:
    """A real 256 MiB extent (sparse on disk) whose table holds 64M entries, every one valid:
    as a list of Python integers the table took more than 2 GiB."""
    return _parallels(folder / "bat-64m.hds", 2048, _PARALLELS_ENTRIES,
                      _PARALLELS_HEADER.size + 4 * _PARALLELS_ENTRIES)


def parallels_bat_past_end(folder: Path) -> Path:
    """A 4 KiB extent declaring a table of 64M entries (256 MiB) it cannot hold."""
    return _parallels(folder / "bat-past-end.hds", 1, _PARALLELS_ENTRIES, 4096)


def afd_many_files(folder: Path) -> Path:
    """An AFD folder of one .aff file more than a set may hold (each only the AFF header):
    refused as the folder is listed, before any file is opened or scanned."""
    from bitwitness.images.afd import MAX_PIECES

    image = folder / "many.afd"
    image.mkdir()
    for number in range(MAX_PIECES + 1):
        (image / f"file_{number:05d}.aff").write_bytes(b"AFF10\r\n\x00")
    return image


BUILDERS: dict[str, Callable[[Path], Path]] = {
    "e01-header2-bomb": e01_header2_bomb,
    "e01-chunk-bomb": e01_chunk_bomb,
    "e01-chunk-1gib": e01_chunk_1gib,
    "e01-spc-2p31": e01_huge_sectors_per_chunk,
    "e01-table-base": e01_table_base,
    "vmdk-gtes": vmdk_gtes,
    "vmdk-grain-bomb": vmdk_grain_bomb,
    "vmdk-grain-overflow": vmdk_grain_overflow,
    "vmdk-grain-marker-zero": vmdk_grain_marker_zero,
    "vmdk-gd-offset": vmdk_gd_offset,
    "vmdk-capacity": vmdk_capacity,
    "vmdk-capacity-max": vmdk_capacity_max,
    "vmdk-extent-passwd": vmdk_extent_passwd,
    "vmdk-extent-parent": vmdk_extent_parent,
    "vhd-table-offset": vhd_table_offset,
    "vhd-huge-size": vhd_huge_size,
    "vhd-block-size": vhd_block_size,
    "vhd-beyond-2040": vhd_beyond_2040,
    "vhd-sparse-2040": vhd_sparse_2040,
    "vmdk-grain-size": vmdk_grain_size,
    "vmdk-sparse-8tib": vmdk_sparse_8tib,
    "vmdk-extent-beyond-capacity": vmdk_extent_beyond_capacity,
    "vmdk-zero-extent": vmdk_zero_extent,
    "vmdk-sesparse-capacity": vmdk_sesparse_capacity,
    "vmdk-sesparse-1tib": vmdk_sesparse_1tib,
    "l01-ltree-256mib": l01_ltree_256mib,
    "lx01-ltree-256mib": lx01_ltree_256mib,
    "l01-ltree-dense": l01_ltree_dense,
    "parallels-bat-64m": parallels_bat_64m,
    "parallels-bat-past-end": parallels_bat_past_end,
    "afd-many-files": afd_many_files,
}


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__)
        return 2
    out = Path(argv[0])
    for name, build in BUILDERS.items():
        folder = out / name
        folder.mkdir(parents=True, exist_ok=True)
        print(f"{name}: {build(folder)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
