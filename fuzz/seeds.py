"""Build the seed corpus: small valid inputs of every kind, made by our writers and real tools.

``python -m fuzz.seeds [OUT_DIR]`` writes ``OUT_DIR/TARGET/*`` (default ``fuzz/corpus``). Seeds
are built, never committed: E01 sets by our writer (compressed, stored, unfinished) and by
``ewfacquire`` when installed; VHDs and VMDKs by the structures' own packers (tiny geometries,
so that whole images fit in a fuzz input) and by ``qemu-img`` where the result is small; logs by
a real acquisition, ``md5sum``/``sha1sum`` and ``dc3dd`` when installed, plus an FTK Imager
report laid out as FTK writes it; partition tables by ``sfdisk``/``sgdisk`` on small disks; a
case folder by ``bitwitness case new``; the file-system time readers' inputs by ``xorriso``,
``mkfs.ext2``/``debugfs``, a hand-made exFAT entry and, where ../shared is present, the HFS+
fixture's catalog file (``icat``). Whole file systems by the test suite's builders
(``tests/fsimages.py``: mkfs.*, mtools, mkntfs and ntfs-3g, exFAT through FUSE, xorriso), an XFS
by ``mkfs.xfs -p``, an ext4 with bigalloc by ``mkfs.ext4 -d`` and the HFS+ and APFS fixtures, kept
as their pieces that are not zeros. Containers: QCOW, VHDX, VDI and Parallels
by ``qemu-img``/``qemu-io`` (16 KiB disks with data written; VHDX laid out compactly, VDI with
small blocks around qemu's header), UDIF, sparse images and bundles, Ex01 and AFF4 by the test
suite's committed builders (``tests/builders/``), AFF by afflib's ``affconvert``. A tool that is
not installed leaves its target with fewer seeds (or none: libFuzzer then starts from nothing).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
CASE_DATA = (b"BitWitness fuzz seed " * 200)[:3000]


def _media(size: int) -> bytes:
    """Disk-like bytes: text, zeros and noise (compressible and not)."""
    noise = hashlib.sha256(b"seed").digest() * (size // 32 + 1)
    third = size // 3
    text = (CASE_DATA * (size // len(CASE_DATA) + 1))[:third]
    return text + bytes(third) + noise[:size - 2 * third]


def _bitwitness(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bitwitness", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, check=False)


# --- E01 ---------------------------------------------------------------------------------------


def ewf_seeds(work: Path) -> dict[str, bytes]:
    from bitwitness.ewf import Compression, EwfMetadata, EwfWriter, segment_path

    seeds: dict[str, bytes] = {}
    data = _media(3 * 8192)
    for compression in (Compression.FAST, Compression.NONE, Compression.EMPTY):
        base = work / f"w-{compression.value}"
        with EwfWriter(base, media_size=len(data), sectors_per_chunk=16,
                       metadata=EwfMetadata(case_number="fuzz", examiner="seed", notes="n"),
                       compression=compression) as writer:
            writer.write(data)
            writer.close(md5=hashlib.md5(data, usedforsecurity=False).hexdigest(),
                         sha1=hashlib.sha1(data, usedforsecurity=False).hexdigest(),
                         errors=[(3, 2)])
        seeds[f"ours-{compression.value}.E01"] = segment_path(base, 1).read_bytes()
    full = seeds["ours-fast.E01"]
    seeds["ours-cut.E01"] = full[: len(full) * 2 // 3]
    if shutil.which("ewfacquire"):
        source = work / "source.raw"
        source.write_bytes(data)
        target = work / "ewfacquire"
        subprocess.run(["ewfacquire", "-u", "-q", "-t", str(target), "-c", "fast", "-b", "16",
                        "-C", "seed", "-D", "seed", "-E", "1", "-e", "fuzz", "-N", "n",
                        str(source)], capture_output=True, check=False)
        made = target.with_suffix(".E01")
        if made.is_file():
            seeds["ewfacquire.E01"] = made.read_bytes()
        # SMART (EWF-S01): 94-byte volume, chunks inside the table sections (docs/EWF.md §12)
        for compression in ("fast", "none"):
            smart = work / f"smart-{compression}"
            subprocess.run(["ewfacquire", "-u", "-q", "-t", str(smart), "-f", "smart", "-c",
                            compression, "-b", "16", "-C", "seed", "-e", "fuzz",
                            str(source)], capture_output=True, check=False)
            if smart.with_suffix(".s01").is_file():
                seeds[f"ewfacquire-smart-{compression}.s01"] = (
                    smart.with_suffix(".s01").read_bytes())
    return seeds


# --- VHD ---------------------------------------------------------------------------------------


def ltree_seeds(work: Path) -> dict[str, bytes]:
    """An L01 (EnCase 6 and 7 tag orders) and an Lx01 by the test builder, which libewf reads
    (tests/test_logical_builder.py), with a small file tree."""
    sys.path.insert(0, str(HERE.parent / "tests"))
    from builders.logical import Item, build_l01, build_lx01

    items = [Item("case", None), Item("case/a.txt", b"alpha\n"), Item("case/b.bin", bytes(700)),
             Item("empty", None)]
    return {"encase6.L01": build_l01(work / "6.L01", items).path.read_bytes(),
            "encase7.L01": build_l01(work / "7.L01", items, encase7=True).path.read_bytes(),
            "files.Lx01": build_lx01(work / "x.Lx01", items).path.read_bytes()}


def vhd_seeds(work: Path) -> dict[str, bytes]:
    from bitwitness.images import vhd

    data = _media(16 * 1024)
    fixed = vhd.pack_footer(vhd.VhdFooter(disk_type=vhd.DISK_FIXED, current_size=len(data),
                                          original_size=len(data),
                                          geometry=vhd.chs_geometry(len(data)),
                                          creator_app=b"win "))
    block = 4096
    blocks = len(data) // block
    footer = vhd.pack_footer(vhd.VhdFooter(disk_type=vhd.DISK_DYNAMIC, current_size=len(data),
                                           original_size=len(data),
                                           geometry=vhd.chs_geometry(len(data)),
                                           data_offset=512, creator_app=b"win "))
    head = struct.pack(">8sQQIII", vhd.DYNAMIC_COOKIE, 2**64 - 1, 1536, 0x0001_0000, blocks,
                       block).ljust(1024, b"\0")
    head = head[:36] + struct.pack(">I", vhd.vhd_checksum(head, 36)) + head[40:]
    first = 2048 // 512  # blocks start after footer copy, header and one BAT sector
    bat, stored = [], b""
    for index in range(blocks):
        if index % 2:
            bat.append(vhd.UNALLOCATED)
            continue
        bat.append(first + len(stored) // 512)
        stored += b"\xff" * 512 + data[index * block:(index + 1) * block]
    table = b"".join(struct.pack(">I", b) for b in bat).ljust(512, b"\xff")
    seeds = {"fixed.vhd": data + fixed, "dynamic.vhd": footer + head + table + stored + footer}
    if shutil.which("qemu-img"):
        raw = work / "v.raw"
        raw.write_bytes(data)
        out = work / "qemu-fixed.vhd"
        subprocess.run(["qemu-img", "convert", "-q", "-O", "vpc", "-o", "subformat=fixed",
                        str(raw), str(out)], check=False)
        if out.is_file():
            seeds["qemu-fixed.vhd"] = out.read_bytes()
    return seeds


# --- VMDK --------------------------------------------------------------------------------------


def _sparse_vmdk(data: bytes, *, compressed: bool) -> bytes:
    """A monolithic sparse extent with 4 KiB grains, 4 GTEs per table and every other grain."""
    from bitwitness.images import vmdk

    grain_sectors, gtes = 8, 4
    capacity = len(data) // 512
    gt_count = -(-capacity // (grain_sectors * gtes))
    text = ('# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\n'
            f'createType="{"streamOptimized" if compressed else "monolithicSparse"}"\n'
            f'RW {capacity} SPARSE "fuzz.vmdk"\n'
            'ddb.adapterType = "ide"\n').encode().ljust(512, b"\0")
    gd_sector = 2
    gt_first = gd_sector + 1
    grains_at = gt_first + gt_count
    gd = b"".join(struct.pack("<I", gt_first + i) for i in range(gt_count)).ljust(512, b"\0")
    gts, body = [], b""
    for index in range(gt_count * gtes):
        start = index * grain_sectors * 512
        if index % 2 or start >= len(data):
            gts.append(0)
            continue
        gts.append(grains_at + len(body) // 512)
        grain = data[start:start + grain_sectors * 512]
        if compressed:
            packed = zlib.compress(grain)
            piece = struct.pack("<QI", index * grain_sectors, len(packed)) + packed
            body += piece.ljust(-(-len(piece) // 512) * 512, b"\0")
        else:
            body += grain
    table = b"".join(struct.pack("<I", g) for g in gts).ljust(gt_count * 512, b"\0")
    flags = vmdk.FLAG_NEWLINE_TEST | (vmdk.FLAG_COMPRESSED | vmdk.FLAG_MARKERS if compressed
                                      else 0)
    header = vmdk.pack_header(vmdk.SparseHeader(
        capacity=capacity, grain_size=grain_sectors, descriptor_offset=1, descriptor_size=1,
        gtes_per_gt=gtes, gd_offset=gd_sector, overhead=grains_at, flags=flags,
        version=3 if compressed else 1, compress_algorithm=1 if compressed else 0))
    return header.ljust(512, b"\0") + text + gd + table + body


def _sesparse_vmdk() -> bytes:
    """An SEsparse extent by the committed builder (tests/builders/vmdk_sesparse.py), its
    areas packed (one 16 MiB grain table): stored, zero and unmapped grains, the rest
    unallocated (read from the target's parent of zeros)."""
    _builders()
    from builders.vmdk_sesparse import UNMAPPED, ZERO, sesparse_extent

    grains: dict[int, bytes | str] = {0: _media(4096), 3: b"\x5a" * 4096, 4: ZERO, 5: UNMAPPED,
                                      4095: _media(4096)[::-1]}
    return sesparse_extent(16 << 20, grains, order=[2, 0, 1], compact=True)


def vmdk_seeds(work: Path) -> dict[str, bytes]:
    data = _media(32 * 1024)
    return {
        "sesparse.vmdk": _sesparse_vmdk(),
        "sparse.vmdk": _sparse_vmdk(data, compressed=False),
        "stream.vmdk": _sparse_vmdk(data, compressed=True),
        "zero.vmdk": (b'# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\n'
                      b'createType="monolithicFlat"\nRW 64 ZERO\nRW 8 FLAT "fuzz.vmdk" 0\n'),
        "child.vmdk": (b'# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=12345678\n'
                       b'createType="monolithicSparse"\nRW 64 ZERO\n'),
    }


def ova_seeds(work: Path) -> dict[str, bytes]:
    """OVAs as GNU tar writes them (ustar; GNU long names; pax headers): a descriptor, a
    stream-optimized disk (our own packing, no outside tool needed) and a SHA-256 manifest."""
    import hashlib

    if not shutil.which("tar"):
        return {}
    folder = work / "ova"
    folder.mkdir()
    long_disk = "an-exported-machine-" + "y" * 90 + "-disk1.vmdk"
    seeds: dict[str, bytes] = {}
    for name, disk, tar_format in (("ustar.ova", "vm-disk1.vmdk", "ustar"),
                                   ("gnu.ova", long_disk, "gnu"),
                                   ("pax.ova", long_disk, "pax")):
        (folder / "vm.ovf").write_bytes(b'<?xml version="1.0"?>\n<Envelope/>\n')
        (folder / disk).write_bytes(_sparse_vmdk(_media(16 * 1024), compressed=True))
        (folder / "vm.mf").write_text("".join(
            f"SHA256({m})= {hashlib.sha256((folder / m).read_bytes()).hexdigest()}\n"
            for m in ("vm.ovf", disk)))
        out = work / name
        if _run("tar", f"--format={tar_format}", "-cf", out, "-C", folder, "vm.ovf", disk,
                "vm.mf"):
            seeds[name] = out.read_bytes()
        (folder / disk).unlink()
    return seeds


# --- split raw, logs, partition tables, cases --------------------------------------------------


def split_seeds(work: Path) -> dict[str, bytes]:
    return {
        "numeric": b"x.001\nx.002\nx.003\n",
        "from-zero": b"disk.000\ndisk.001\n",
        "alpha": b"img.aa\nimg.ab\nimg.ac\n",
        "partial": b"b.001.partial\nb.002.partial\nb.json\n",
        "gap": b"y.002\ny.001\ny.004\n",
        "not-split": b"photo.dd\nphoto.de\n",
        "e01-names": b"c.E01\nc.E02\nc.001\n",
    }


FTK_REPORT = (
    "Created By AccessData\u00ae FTK\u00ae Imager 4.7.1.2\r\n\r\nCase Information:\r\n"
    "Case Number: 42\r\nEvidence Number: 1\r\nExaminer: tester\r\n\r\n"
    "[Drive Geometry]\r\n Bytes per Sector: 512\r\n Sector Count: 96\r\n"
    "[Computed Hashes]\r\n MD5 checksum:    {md5}\r\n SHA1 checksum:   {sha1}\r\n\r\n"
    "Image Information:\r\n Segment list:\r\n  C:\\cases\\disk.001\r\n  C:\\cases\\disk.002\r\n"
    "\r\nImage Verification Results:\r\n MD5 checksum:    {md5} : verified\r\n"
    " SHA1 checksum:   {sha1} : verified\r\n")


#: A Guymager info file in its 0.8 layout (tests/test_verify_guymager.py writes the same), with
#: a bad-sector list, both hash rows and the per-file MD5 table.
GUYMAGER_INFO = (
    "\nGUYMAGER ACQUISITION INFO FILE\n==============================\n\nAcquisition\n"
    "===========\n\nDevice size         \t: {size} (0.0MB)                 \t \n"
    "During acquisition, 3 bad sectors have been encountered. They have been replaced by zeroed "
    "sectors. The sector numbers are:\n   2-3, 7\nState: Finished successfully (with 3 bad "
    "sectors)\n\nMD5 hash               \t: {md5}\t \nMD5 hash verified source   : {md5}\n"
    "MD5 hash verified image\t: {md5}\nSHA1 hash              \t: {sha1}\n\n"
    "Generated image files and their MD5 hashes\n==========================================\n\n"
    "MD5                           \tImage file\n{md5}\tsrc.raw\n")


def log_seeds(work: Path) -> dict[str, bytes]:
    data = _media(48 * 1024)
    source = work / "src.raw"
    source.write_bytes(data)
    md5 = hashlib.md5(data, usedforsecurity=False).hexdigest()
    sha1 = hashlib.sha1(data, usedforsecurity=False).hexdigest()
    seeds = {"ftk.txt": FTK_REPORT.format(md5=md5, sha1=sha1).encode("utf-8"),
             "ftk-utf16.txt": FTK_REPORT.format(md5=md5, sha1=sha1).encode("utf-16"),
             "md5sum": f"{md5}  disk.dd\n{md5} *disk.001\n".encode(),
             "sha1sum": f"{sha1}  img.E01\n".encode(),
             "ewf.log": (f"MD5 hash stored in file:\t\t{md5}\n"
                         f"MD5 hash calculated over data:\t\t{md5}\n"
                         f"SHA1 hash calculated over data:\t\t{sha1}\n").encode()}
    big = work / "big.raw"
    big.write_bytes(_media(5 << 19))
    for fmt, media, extra in (("e01", source, ()), ("raw", big, ("--split", "1MiB"))):
        base = work / f"acq-{fmt}"
        _bitwitness("acquire", media, "-o", base, "--format", fmt, *extra)
        for suffix in (".json", ".txt"):
            log = base.with_name(base.name + suffix)
            if log.is_file():
                seeds[f"bitwitness-{fmt}{suffix}"] = log.read_bytes()
    if shutil.which("dc3dd"):
        log = work / "dc3dd.log"
        subprocess.run(["dc3dd", f"if={source}", f"hofs={work}/piece.000", "ofsz=16k",
                        "hash=md5", "hash=sha1", f"log={log}"], capture_output=True, check=False)
        if log.is_file():
            seeds["dc3dd.log"] = log.read_bytes()
    seeds["guymager.info"] = GUYMAGER_INFO.format(md5=md5, sha1=sha1, size=len(data)).encode()
    if shutil.which("dcfldd"):
        hashlog = work / "dcfldd.hashlog"
        subprocess.run(["dcfldd", f"if={source}", f"of={work / 'dcfldd.img'}", "hash=md5,sha1",
                        "hashwindow=16k", f"hashlog={hashlog}"], capture_output=True, check=False)
        if hashlog.is_file():
            seeds["dcfldd.hashlog"] = hashlog.read_bytes()
    if shutil.which("ddrescue"):
        # a finished rescue of the same source (no bad area: the mutator makes them)
        mapfile = work / "rescue.map"
        subprocess.run(["ddrescue", "-q", source, work / "rescued.img", mapfile],
                       capture_output=True, check=False)
        if mapfile.is_file():
            seeds["ddrescue.map"] = mapfile.read_bytes()
    return seeds


def partition_seeds(work: Path) -> dict[str, bytes]:
    seeds: dict[str, bytes] = {}
    size = 256 * 1024
    scripts = {"mbr": "label: dos\nstart=8, size=200, type=83\nstart=220, size=200, type=c\n"
                      "start=430, size=60, type=5\nstart=440, size=40, type=83\n",
               "gpt": "label: gpt\nfirst-lba=34\nstart=40, size=200\nstart=250, size=200\n"}
    if shutil.which("sfdisk"):
        for name, script in scripts.items():
            disk = work / f"{name}.img"
            disk.write_bytes(bytes(size))
            subprocess.run(["sfdisk", "-q", str(disk)], input=script.encode(),
                           capture_output=True, check=False)
            seeds[f"{name}.img"] = disk.read_bytes()
    if shutil.which("mkfs.fat"):
        disk = work / "fat.img"
        disk.write_bytes(bytes(size))
        subprocess.run(["mkfs.fat", str(disk)], capture_output=True, check=False)
        seeds["fat.img"] = disk.read_bytes()
    seeds["ldm.img"] = _ldm_disk(work)
    if shutil.which("sgdisk"):
        seeds["ldm-gpt.img"] = _ldm_gpt_disk(work)
    seeds["lvm2-pv.img"] = lvm2_physical_volume()
    return seeds


def lvm2_physical_volume() -> bytes:
    """A small LVM2 physical volume as pvcreate/vgcfgrestore lay it out (label in sector 1, PV
    header, a metadata area at 4 KiB with its committed text, extents from 64 KiB): one
    volume group of two logical volumes, one of two segments out of order (what lvextend
    leaves), one striped over two ranges. Built here, so that the volume tree's LVM reader is
    fuzzed without device-mapper or root."""
    from bitwitness.report.browse.lvm2 import LABEL, LABEL_TYPE, MDA_MAGIC, lvm_crc

    extent, pe_start, size = 8 * 1024, 64 * 1024, 256 * 1024
    uuid = "Imqjr74iHi9YzTns06sbbBQILdw9ND5s"
    dashed = "-".join((uuid[:6], uuid[6:10], uuid[10:14], uuid[14:18], uuid[18:22],
                       uuid[22:26], uuid[26:]))
    text = ('vgfuzz {\nid = "Z9dwXN-3RJq-6GQt-Gvr9-0DqK-qY0e-ZlHm3G"\nseqno = 3\n'
            'format = "lvm2"\nstatus = ["RESIZEABLE", "READ", "WRITE"]\nflags = []\n'
            f'extent_size = {extent // 512}\nmax_lv = 0\nmax_pv = 0\nmetadata_copies = 0\n'
            f'physical_volumes {{\npv0 {{\nid = "{dashed}"\ndevice = "/dev/loop0"\n'
            f'status = ["ALLOCATABLE"]\nflags = []\ndev_size = {size // 512}\n'
            f'pe_start = {pe_start // 512}\npe_count = {(size - pe_start) // extent}\n}}\n}}\n'
            'logical_volumes {\n'
            'two {\nid = "aaaaaa-aaaa-aaaa-aaaa-aaaa-aaaa-aaaaaa"\n'
            'status = ["READ", "WRITE", "VISIBLE"]\nflags = []\nsegment_count = 2\n'
            'segment1 {\nstart_extent = 0\nextent_count = 2\ntype = "striped"\n'
            'stripe_count = 1\nstripes = ["pv0", 10]\n}\n'
            'segment2 {\nstart_extent = 2\nextent_count = 1\ntype = "striped"\n'
            'stripe_count = 1\nstripes = ["pv0", 3]\n}\n}\n'
            'wide {\nid = "bbbbbb-bbbb-bbbb-bbbb-bbbb-bbbb-bbbbbb"\n'
            'status = ["READ", "WRITE", "VISIBLE"]\nflags = []\nsegment_count = 1\n'
            'segment1 {\nstart_extent = 0\nextent_count = 4\ntype = "striped"\n'
            'stripe_count = 2\nstripe_size = 8\nstripes = ["pv0", 14, "pv0", 18]\n}\n}\n'
            '}\n}\ncontents = "Text Format Volume Group"\nversion = 1\n').encode() + b"\0"
    image = bytearray(size)
    for n in range(pe_start, size, 512):  # every sector of the data area says where it lies
        image[n:n + 16] = f"sector {n // 512:08d}".encode()
    mda_at, mda_size, text_at = 4096, pe_start - 4096, 512
    image[mda_at + text_at:mda_at + text_at + len(text)] = text
    header = bytearray(512)
    header[4:20] = MDA_MAGIC
    struct.pack_into("<IQQ", header, 20, 1, mda_at, mda_size)
    struct.pack_into("<QQII", header, 40, text_at, len(text), lvm_crc(text), 0)
    struct.pack_into("<I", header, 0, lvm_crc(bytes(header[4:])))
    image[mda_at:mda_at + 512] = header
    label = bytearray(512)
    label[:8] = LABEL
    struct.pack_into("<QI", label, 8, 1, 0)
    struct.pack_into("<I", label, 20, 32)
    label[24:32] = LABEL_TYPE
    label[32:64] = uuid.encode()
    struct.pack_into("<QQQQQQQQQ", label, 64, size, pe_start, 0, 0, 0, mda_at, mda_size, 0, 0)
    struct.pack_into("<I", label, 16, lvm_crc(bytes(label[20:])))
    image[512:1024] = label
    return bytes(image)


def _ldm_gpt_disk(work: Path) -> bytes:
    """A GPT dynamic disk (tests/builders/ldm.py) with a 64-sector database in its LDM
    metadata partition at sector 34: a simple volume and a spanned one."""
    _builders()
    from builders.ldm import Layout, Part, Volume, write_gpt_disk

    disk = work / "ldm-gpt.img"
    disk.write_bytes(bytes(384 * 512))
    write_gpt_disk(disk, Layout([Volume("Volume1", [[Part(0, 64)]], hint="E:"),
                                 Volume("Volume2", [[Part(64, 32), Part(128, 32)]])]),
                   config=64, metadata=34)
    return disk.read_bytes()


def _ldm_disk(work: Path) -> bytes:
    """A Windows dynamic disk (tests/builders/ldm.py) with a small database (64 sectors, not
    Windows' 2048, so that mutations land in it): a simple volume holding a FAT12, a spanned
    volume of two extents around a third volume, and split records (a long volume name)."""
    _builders()
    from builders.ldm import Layout, Part, Volume, extents, put, write_disk

    layout = Layout([Volume("Volume1", [[Part(0, 128)]], hint="E:"),
                     Volume("Volume2", [[Part(128, 32), Part(192, 32)]]),
                     Volume("Volume3 made after the others, with a long name", [[Part(160, 32)]],
                            hint="F:")])
    disk = work / "ldm.img"
    disk.write_bytes(bytes(384 * 512))
    write_disk(disk, layout, config=64)
    fat = work / "ldm-fat.img"
    if shutil.which("mkfs.fat") and _run("mkfs.fat", "-C", fat, "64"):
        put(disk, extents(layout, layout.volumes[0]), fat.read_bytes())
    return disk.read_bytes()


def _exfat_entries() -> bytes:
    """A minimal exFAT-like volume: the boot sector's geometry (512-byte sectors, the cluster
    heap at sector 2) and, at the heap, a file entry whose three times carry UTC offsets
    (+05:30, -03:30, none) and a deleted one (TSK inodes 3 and 5)."""
    boot = bytearray(512)
    boot[3:11] = b"EXFAT   "
    struct.pack_into("<I", boot, 88, 2)
    boot[108], boot[109] = 9, 0
    entry = bytearray(32)
    entry[0], entry[1] = 0x85, 2
    struct.pack_into("<III", entry, 8, 0x5D84716F, 0x5D84716F, 0x5D84716F)
    entry[22:25] = bytes((0x80 | 22, 0x80 | (0x80 - 14), 0x00))
    deleted = bytearray(entry)
    deleted[0] = 0x05
    heap = bytes(entry) + bytes(32) + bytes(deleted)
    return bytes(boot) + bytes(512) + heap.ljust(1024, b"\0")


def fs_time_seeds(work: Path) -> dict[str, bytes]:
    seeds = {"exfat-entries": _exfat_entries()}
    if shutil.which("xorriso"):
        staging = work / "iso"
        (staging / "folder").mkdir(parents=True)
        (staging / "folder" / "file.txt").write_bytes(b"seed\n")
        iso = work / "seed.iso"
        subprocess.run(["xorriso", "-compliance", "default:always_gmt_off", "-as", "mkisofs",
                        "-quiet", "-J", "-R", "-o", str(iso), str(staging)],
                       capture_output=True, check=False, env={**os.environ, "TZ": "Asia/Kolkata"})
        if iso.is_file():
            seeds["iso9660"] = iso.read_bytes()
    if shutil.which("mkfs.ext2") and shutil.which("debugfs"):
        disk = work / "ext2.img"
        disk.write_bytes(bytes(128 * 1024))
        subprocess.run(["mkfs.ext2", "-q", "-F", "-b", "1024", "-N", "16", str(disk)],
                       capture_output=True, check=False)
        (work / "gone").write_bytes(b"deleted\n")
        for command in (f"write {work / 'gone'} gone", "rm gone"):
            subprocess.run(["debugfs", "-w", "-R", command, str(disk)], capture_output=True,
                           check=False)
        seeds["ext2-deleted"] = disk.read_bytes()
    hfs = HERE.parent.parent / "shared" / "fixtures" / "third-party" / "dfvfs_hfsplus.raw"
    if hfs.is_file() and shutil.which("icat"):
        catalog = subprocess.run(["icat", str(hfs), "4"], capture_output=True, check=False)
        if catalog.returncode == 0 and catalog.stdout:
            seeds["hfs-catalog"] = catalog.stdout
    return seeds


#: mkfs.ext4 options of the ext-superblock seeds: bigalloc (read by libfsext), bigalloc with a
#: feature libfsext refuses, and features that stay with TSK
EXT_SEEDS = {"bigalloc": ("-b", "1024", "-O", "bigalloc", "-C", "16384"),
             "bigalloc-large-dir": ("-b", "1024", "-O", "bigalloc,large_dir", "-C", "16384"),
             "inline-data": ("-b", "1024", "-O", "inline_data"),
             "ext2": ("-t", "ext2", "-b", "1024")}


def ext_superblock_seeds(work: Path) -> dict[str, bytes]:
    """The first 64 KiB of small ext file systems made by mkfs.ext4 (superblock, group
    descriptors, the first inodes)."""
    seeds: dict[str, bytes] = {}
    if not shutil.which("mkfs.ext4"):
        return seeds
    for name, options in EXT_SEEDS.items():
        disk = work / f"{name}.img"
        disk.write_bytes(bytes(4 << 20))
        made = subprocess.run(["mkfs.ext4", "-q", "-F", "-N", "16", *options, str(disk)],
                              capture_output=True, check=False)
        if made.returncode == 0:
            seeds[name] = disk.read_bytes()[: 64 << 10]
    return seeds


def _case_folder(work: Path) -> Path:
    case = work / "case"
    _bitwitness("case", "new", case, "--set", "case_number=42", "--set", "examiner=seed",
                "--set", "description=fuzz")
    return case


def case_seeds(work: Path) -> dict[str, bytes]:
    case = _case_folder(work)
    seeds = {"minimal.yaml": b"schema: bitwitness.case/1\ntemplate: {}\nfields: {}\n"}
    if (case / "case.yaml").is_file():
        seeds["case.yaml"] = (case / "case.yaml").read_bytes()
    return seeds


def custody_seeds(work: Path) -> dict[str, bytes]:
    case = _case_folder(work)
    seeds: dict[str, bytes] = {}
    log, head = case / "custody.jsonl", case / "custody.head"
    if log.is_file() and head.is_file():
        _bitwitness("case", "show", case)
        one_line = head.read_bytes().replace(b"\n", b" ")
        seeds["case"] = one_line + b"\n" + log.read_bytes()
        seeds["no-anchor"] = b"\n" + log.read_bytes()
    return seeds


# --- containers read by our own code ----------------------------------------------------------


def _builders() -> None:
    """Make the test suite's committed builders (``tests/builders/``) importable."""
    tests = str(HERE.parent / "tests")
    if tests not in sys.path:
        sys.path.insert(0, tests)


def _run(*args: str | Path) -> bool:
    return subprocess.run(list(map(str, args)), capture_output=True, check=False).returncode == 0


def _qemu_io(image: Path, fmt: str, *commands: str) -> None:
    args: list[str | Path] = ["qemu-io", "-f", fmt]
    for command in commands:
        args += ["-c", command]
    _run(*args, image)


#: A few writes of different patterns, as qemu-io commands (offsets inside a 16 KiB disk).
_WRITES = ("write -P 0x5a 0 4k", "write -P 0x33 6k 1k", "write -P 0xc3 15k 1k")


def qcow_seeds(work: Path) -> dict[str, bytes]:
    """QCOW v1, QCOW2 v2 and v3 with 512-byte clusters (converted, compressed with zlib or
    zstd, written by qemu-io, zero clusters), an overlay on the raw ``base.img`` the target
    puts beside it, and an image with two internal snapshots of different disk sizes."""
    from fuzz.targets import BACKING

    if not (shutil.which("qemu-img") and shutil.which("qemu-io")):
        return {}
    raw = work / "q.raw"
    raw.write_bytes(_media(16 * 1024))
    seeds: dict[str, bytes] = {}
    for name, args in (("v1.qcow", ["-O", "qcow"]),
                       ("v2.qcow2", ["-O", "qcow2", "-o", "cluster_size=512,compat=0.10"]),
                       ("v3.qcow2", ["-O", "qcow2", "-o", "cluster_size=512"]),
                       ("v3-compressed.qcow2", ["-O", "qcow2", "-c", "-o", "cluster_size=4096"]),
                       ("v3-zstd.qcow2", ["-O", "qcow2", "-c", "-o",
                                          "cluster_size=4096,compression_type=zstd"]),
                       ("v1-compressed.qcow", ["-O", "qcow", "-c"])):
        out = work / name
        if _run("qemu-img", "convert", "-q", "-f", "raw", *args, raw, out):
            seeds[name] = out.read_bytes()
    written = work / "written.qcow2"
    if _run("qemu-img", "create", "-q", "-f", "qcow2", "-o", "cluster_size=512", written, "16K"):
        _qemu_io(written, "qcow2", *_WRITES, "write -z 8k 1k")
        seeds["qemu-io.qcow2"] = written.read_bytes()
    (work / "base.img").write_bytes(BACKING)
    overlay = work / "overlay.qcow2"
    if _run("qemu-img", "create", "-q", "-f", "qcow2", "-o", "cluster_size=512", "-b",
            "base.img", "-F", "raw", overlay, str(len(BACKING))):
        _qemu_io(overlay, "qcow2", "write -P 0x77 512 512")
        seeds["overlay.qcow2"] = overlay.read_bytes()
    snapshots = work / "snapshots.qcow2"  # two internal snapshots, the disk grown between them
    if _run("qemu-img", "create", "-q", "-f", "qcow2", "-o", "cluster_size=512", snapshots,
            "8K"):
        _qemu_io(snapshots, "qcow2", "write -P 0x11 0 1k")
        _run("qemu-img", "snapshot", "-c", "first", snapshots)
        _run("qemu-img", "resize", "-q", snapshots, "16K")
        _qemu_io(snapshots, "qcow2", "write -P 0x22 512 10k")
        _run("qemu-img", "snapshot", "-c", "second", snapshots)
        _qemu_io(snapshots, "qcow2", "write -P 0x33 0 512")
        seeds["snapshots.qcow2"] = snapshots.read_bytes()
    return seeds


def compact_vhdx(data: bytes) -> bytes:
    """A VHDX ``qemu-img`` wrote (regions at 2 and 3 MiB, blocks after its 1 MiB log), laid
    out again as small as the format allows: the metadata and the BAT right after the region
    tables (at 320 KiB), stored blocks from 1 MiB (the BAT counts in MiB), each cut at the end
    of the virtual disk. The region tables get the new offsets, the headers no log (a clean
    image's log holds nothing to replay), each its CRC-32C again. The media is unchanged (the
    tests compare our reading of this file with qemu's of the original; qemu itself refuses
    regions off 1 MiB boundaries) and the BAT self-check reports the block cut short."""
    from bitwitness.images import vhdx as v

    table_at = v.REGION_OFFSETS[0]
    count = struct.unpack_from("<I", data, table_at + 8)[0]
    regions = {}
    for i in range(count):
        guid, offset, length = struct.unpack_from("<16sQI", data, table_at + 16 + 32 * i)
        regions[guid] = (i, offset, length)
    _, meta, _ = regions[v.METADATA_REGION]
    items = struct.unpack_from("<H", data, meta + 10)[0]
    meta_end = max(sum(struct.unpack_from("<II", data, meta + 32 + 32 * i + 16))
                   for i in range(items))
    meta_end = -(-meta_end // 4096) * 4096
    params = {struct.unpack_from("<16s", data, meta + 32 + 32 * i)[0]:
              struct.unpack_from("<I", data, meta + 32 + 32 * i + 16)[0] for i in range(items)}
    block = struct.unpack_from("<I", data, meta + params[v.FILE_PARAMETERS])[0]
    disk = struct.unpack_from("<Q", data, meta + params[v.VIRTUAL_DISK_SIZE])[0]
    sector = struct.unpack_from("<I", data, meta + params[v.LOGICAL_SECTOR])[0]
    has_parent = struct.unpack_from("<I", data, meta + params[v.FILE_PARAMETERS] + 4)[0] & 2
    ratio = (1 << 23) * sector // block
    blocks = -(-disk // block)
    entries = (-(-blocks // ratio) * (ratio + 1) if has_parent
               else blocks + (blocks - 1) // ratio)
    _, bat, _ = regions[v.BAT_REGION]
    new_meta = v.REGION_OFFSETS[1] + v.REGION_SIZE
    new_bat = new_meta + meta_end
    bat_length = -(-8 * entries // 4096) * 4096
    out = bytearray(data[:new_meta])
    out += data[meta:meta + meta_end]
    out += bytes(bat_length)
    out += bytes(v.MiB - len(out))
    for index in range(entries):
        value = struct.unpack_from("<Q", data, bat + 8 * index)[0]
        state, where = value & 7, (value >> 20) * v.MiB
        if state in (v.FULLY_PRESENT, v.PARTIALLY_PRESENT) and where:
            number = index - index // (ratio + 1)
            keep = min(block, disk - number * block)
            out += bytes(-len(out) % v.MiB)
            value = (len(out) // v.MiB) << 20 | state
            out += data[where:where + keep]
        struct.pack_into("<Q", out, new_bat + 8 * index, value)
    for header in v.HEADER_OFFSETS:  # no log: qemu's 1 MiB log sat where the blocks now lie
        struct.pack_into("<IQ", out, header + 68, 0, 0)
        struct.pack_into("<I", out, header + 4, 0)
        struct.pack_into("<I", out, header + 4, v.crc32c(bytes(out[header:header + 4096])))
    for table in v.REGION_OFFSETS:
        for guid, (i, _, _) in regions.items():
            offset = new_meta if guid == v.METADATA_REGION else new_bat
            length = meta_end if guid == v.METADATA_REGION else bat_length
            if guid in (v.METADATA_REGION, v.BAT_REGION):
                struct.pack_into("<QI", out, table + 16 + 32 * i + 16, offset, length)
        struct.pack_into("<I", out, table + 4, 0)
        struct.pack_into("<I", out, table + 4, v.crc32c(bytes(out[table:table + v.REGION_SIZE])))
    return bytes(out)


def vhdx_seeds(work: Path) -> dict[str, bytes]:
    """Dynamic and fixed 16 KiB VHDX made by qemu-img (data written by qemu-io), a
    differencing one made from them by the committed builder, each compacted."""
    if not (shutil.which("qemu-img") and shutil.which("qemu-io")):
        return {}
    _builders()
    from builders.vhdx_differencing import make_differencing

    seeds: dict[str, bytes] = {}
    made = {}
    for name, subformat in (("dynamic.vhdx", "dynamic"), ("fixed.vhdx", "fixed")):
        out = work / name
        if _run("qemu-img", "create", "-q", "-f", "vhdx", "-o",
                f"block_size=1M,log_size=1M,subformat={subformat}", out, "16K"):
            _qemu_io(out, "vhdx", *_WRITES)
            made[name] = out
    if "dynamic.vhdx" in made:
        child = work / "child.vhdx"
        if _run("qemu-img", "create", "-q", "-f", "vhdx", "-o", "block_size=1M,log_size=1M",
                child, "16K"):
            _qemu_io(child, "vhdx", "write -P 0x99 1k 1k")
            # no partially present block: its sector bitmap would take another MiB of input
            make_differencing(child, made["dynamic.vhdx"])
            made["differencing.vhdx"] = child
    for name, path in made.items():
        seeds[name] = compact_vhdx(path.read_bytes())
    if "dynamic.vhdx" in seeds:
        seeds["dirty-log.vhdx"] = dirty_vhdx(seeds["dynamic.vhdx"])
    return seeds


def dirty_vhdx(data: bytes) -> bytes:
    """A compacted VHDX given a 16 KiB log (at 512 KiB, between the BAT and the blocks; the
    specification asks for 1 MiB, the reader takes any multiple of 4 KiB) holding a sequence of
    two entries (the committed builder's, MS-VHDX 2.3): a data descriptor rewriting the second
    4 KiB of the first stored block, a zero descriptor clearing the third, and, in the second
    entry, the BAT's first sector written back as it is. The headers name the log."""
    _builders()
    from builders.vhdx_log import GUID, SECTOR, Data, Zero, entry

    from bitwitness.images import vhdx as v

    out = bytearray(data)
    log_offset, log_length = 512 * 1024, 16 * 1024
    table_at = v.REGION_OFFSETS[0]
    bat = next(struct.unpack_from("<Q", out, table_at + 16 + 32 * i + 16)[0]
               for i in range(struct.unpack_from("<I", out, table_at + 8)[0])
               if out[table_at + 16 + 32 * i:table_at + 32 + 32 * i] == v.BAT_REGION)
    first = entry(5, 0, [Data(v.MiB + SECTOR, bytes(range(256)) * 16),
                         Zero(v.MiB + 2 * SECTOR, SECTOR)], flushed=len(out), last=len(out))
    second = entry(6, 0, [Data(bat, bytes(out[bat:bat + SECTOR]))], flushed=len(out),
                   last=len(out))
    body = first + second
    out[log_offset:log_offset + len(body)] = body
    for header in v.HEADER_OFFSETS:
        out[header + 48:header + 64] = GUID
        struct.pack_into("<IQ", out, header + 68, log_length, log_offset)
        struct.pack_into("<I", out, header + 4, 0)
        struct.pack_into("<I", out, header + 4, v.crc32c(bytes(out[header:header + 4096])))
    return bytes(out)


def small_vdi(header: bytes, media: bytes, block: int = 4096) -> bytes:
    """A VDI with ``block``-byte blocks (VirtualBox and QEMU use 1 MiB, which the format and
    our reader allow to differ), from the header ``qemu-img`` wrote: its banner, version and
    type kept, the geometry, block map and data rewritten. All-zero blocks stay unallocated
    unless the image is fixed (type 2)."""
    from bitwitness.images import vdi as v

    body = list(v._BODY.unpack_from(header, v._BODY_AT))
    kind = struct.unpack_from("<I", header, v._SIGNATURE_AT + 12)[0]
    blocks = -(-len(media) // block)
    map_at = body[0]
    data_at = -(-(map_at + 4 * blocks) // 512) * 512
    slots, stored = [], b""
    for index in range(blocks):
        piece = media[index * block:(index + 1) * block].ljust(block, b"\0")
        if kind != 2 and not any(piece):
            slots.append(0xFFFF_FFFF)
            continue
        slots.append(len(stored) // block)
        stored += piece
    body[0], body[1], body[7], body[8], body[9], body[10], body[11] = (
        map_at, data_at, len(media), block, 0, blocks, len(stored) // block)
    out = bytearray(header[:data_at].ljust(data_at, b"\0"))
    v._BODY.pack_into(out, v._BODY_AT, *body)
    struct.pack_into(f"<{blocks}I", out, map_at, *slots)
    return bytes(out) + stored


def vdi_seeds(work: Path) -> dict[str, bytes]:
    """Dynamic and fixed VDI: an empty one as qemu-img creates it, and qemu-img's header
    around 4 KiB blocks of data (qemu's own, of 1 MiB, would not fit an input)."""
    if not shutil.which("qemu-img"):
        return {}
    media = _media(16 * 1024)
    media = media[:4096] + bytes(4096) + media[8192:]
    raw = work / "d.raw"
    raw.write_bytes(media)
    seeds: dict[str, bytes] = {}
    empty = work / "empty.vdi"
    if _run("qemu-img", "create", "-q", "-f", "vdi", empty, "64K"):
        seeds["empty.vdi"] = empty.read_bytes()
    for name, static in (("dynamic.vdi", "off"), ("fixed.vdi", "on")):
        out = work / name
        if _run("qemu-img", "convert", "-q", "-f", "raw", "-O", "vdi", "-o", f"static={static}",
                raw, out):
            made = out.read_bytes()
            seeds[name] = small_vdi(made[:1024], media)
            seeds["block-512-" + name] = small_vdi(made[:1024], media[:6144], block=512)
    return seeds


def qed_seeds(work: Path) -> dict[str, bytes]:
    """QED with 4 KiB clusters and tables of 2 clusters (the smallest QEMU opens): converted
    (unwritten clusters left out), written by qemu-io (a zero cluster among data), and an
    overlay on the raw ``base.img`` the target puts beside it."""
    from fuzz.targets import BACKING

    if not (shutil.which("qemu-img") and shutil.which("qemu-io")):
        return {}
    small = "cluster_size=4096,table_size=2"
    raw = work / "q.raw"
    raw.write_bytes(_media(16 * 1024))
    seeds: dict[str, bytes] = {}
    converted = work / "converted.qed"
    if _run("qemu-img", "convert", "-q", "-f", "raw", "-O", "qed", "-o", small, raw, converted):
        seeds["converted.qed"] = converted.read_bytes()
    written = work / "written.qed"
    if _run("qemu-img", "create", "-q", "-f", "qed", "-o", small, written, "16K"):
        _qemu_io(written, "qed", "write -P 0x41 0 4k", "write -z 4k 4k",
                 "write -P 0x42 12k 4k")
        seeds["qemu-io.qed"] = written.read_bytes()
    (work / "base.img").write_bytes(BACKING)
    overlay = work / "overlay.qed"
    if _run("qemu-img", "create", "-q", "-f", "qed", "-o", small, "-b", "base.img", "-F", "raw",
            overlay, str(len(BACKING))):
        _qemu_io(overlay, "qed", "write -P 0x77 0 4k")
        seeds["overlay.qed"] = overlay.read_bytes()
    return seeds


def partclone_seeds(work: Path) -> dict[str, bytes]:
    """partclone 0002 images of a 1 MiB ext4 (1 KiB blocks, no journal) and FAT (512-byte
    blocks), as ``partclone.extfs``/``partclone.fat`` write them: CRC-32 every 256 blocks (the
    default), every 3 blocks carried on (``-k 3 -K``), none (``-a0``); and a 0001 image (no
    partclone here writes one) built by partclone.h's layout: a byte per block, ``BiTmAgIc``,
    each block followed by the CRC ``crc32_0001`` carries on (over the block's first byte)."""
    seeds: dict[str, bytes] = {"v1.pcl": _partclone_v1([bytes([0x41 + n]) * 512 if n % 3
                                                        else bytes(512) for n in range(8)])}
    vol = work / "ext4.vol"
    vol.write_bytes(b"")
    os.truncate(vol, 1 << 20)
    if shutil.which("partclone.extfs") and _run("mkfs.ext4", "-q", "-F", "-b", "1024", "-N",
                                                 "16", "-O", "^has_journal", vol):
        for name, extra in (("default", ()), ("k3K", ("-k", "3", "-K")), ("a0", ("-a0",))):
            image = work / f"ext4-{name}.pcl"
            if _run("partclone.extfs", "-c", "-s", vol, "-o", image, "-L", work / "log",
                    "-q", "-f", "0", *extra):
                seeds[f"ext4-{name}.pcl"] = image.read_bytes()
    fat = work / "fat.vol"
    fat.write_bytes(b"")
    os.truncate(fat, 1 << 20)
    if shutil.which("partclone.fat") and _run("mkfs.vfat", fat):
        image = work / "fat.pcl"
        if _run("partclone.fat", "-c", "-s", fat, "-o", image, "-L", work / "log", "-q",
                "-f", "0"):
            seeds["fat.pcl"] = image.read_bytes()
    return seeds


def _partclone_v1(blocks: list[bytes]) -> bytes:
    """A partclone 0001 image of 512-byte ``blocks`` (those not all zeros in use)."""
    used = [any(b) for b in blocks]
    parts = [b"partclone-image", b"EXTFS".ljust(15, b"\0"), b"0001", b"\0\0",
             struct.pack("<iQQQ", 512, 512 * len(blocks), len(blocks), sum(used)), bytes(4096),
             bytes(used), b"BiTmAgIc"]
    z = 0  # zlib's value; partclone's CRC state is its inversion
    for block, in_use in zip(blocks, used, strict=True):
        if in_use:
            z = zlib.crc32(block[:1] * 512, z)
            parts += [block, struct.pack("<I", z ^ 0xFFFFFFFF)]
    return b"".join(parts)


def _ntfsclone(cluster: int, clusters: int, stored: dict[int, bytes], *, last: bytes | None,
               minor: int = 1) -> bytes:
    """An ntfsclone image by the published layout (ntfsclone.c): the 56-byte header, then a
    gap record (0x00, 64-bit count) between runs and a 0x01 record per stored cluster; cluster
    0 an NTFS boot sector agreeing with the header; ``last`` the record after the volume (the
    device's bytes there: the backup boot sector), None for a 10.0 image."""
    boot = bytearray(cluster)
    boot[:11] = b"\xebR\x90NTFS    "
    struct.pack_into("<HB", boot, 11, 512, cluster // 512)
    struct.pack_into("<q", boot, 0x28, clusters * cluster // 512)
    blocks = {0: bytes(boot), **stored}
    device = clusters * cluster + (len(last) if last is not None else 512)
    parts = [b"\x00ntfsclone-image", struct.pack("<BBIqqqI", 10, minor, cluster, device,
                                                  clusters, len(blocks), 56), bytes(6)]
    position = 0
    for number in sorted(blocks):
        if number > position:
            parts.append(b"\x00" + struct.pack("<q", number - position))
        parts += [b"\x01", blocks[number].ljust(cluster, b"\0")[:cluster]]
        position = number + 1
    if position < clusters:
        parts.append(b"\x00" + struct.pack("<q", clusters - position))
    if last is not None:
        parts += [b"\x01", last]
    return b"".join(parts)


def ntfsclone_seeds(work: Path) -> dict[str, bytes]:
    """ntfsclone images: small ones by the published layout (512-byte clusters with runs and
    gaps, a short backup-boot record; 4096-byte clusters as a 10.0 image without that record),
    and ``ntfsclone --save-image`` of a 2 MiB ``mkntfs`` volume of 512-byte clusters (about
    700 KiB: its $LogFile and MFT) where ntfs-3g is installed."""
    media = _media(8 * 4096)
    seeds = {
        "runs-512.ntfsclone": _ntfsclone(
            512, 64, {n: media[n * 512 : (n + 1) * 512] for n in (1, 2, 3, 10, 40, 41, 63)},
            last=media[:512]),
        "short-last-512.ntfsclone": _ntfsclone(512, 24, {5: media[:512]}, last=media[:100]),
        "v10.0-4096.ntfsclone": _ntfsclone(
            4096, 16, {n: media[n * 4096 : (n + 1) * 4096] for n in (1, 2, 7)}, last=None,
            minor=0),
    }
    volume = work / "ntfs.vol"
    with volume.open("wb") as fh:
        fh.truncate(2 << 20)
    image = work / "ntfs.ntfsclone"
    if (shutil.which("mkntfs") and shutil.which("ntfsclone")
            and _run("mkntfs", "-F", "-q", "-c", "512", volume)
            and _run("ntfsclone", "-q", "--save-image", "-o", image, volume)):
        seeds["mkntfs-512.ntfsclone"] = image.read_bytes()
    return seeds


def android_sparse_seeds(work: Path) -> dict[str, bytes]:
    """Android sparse images by libsparse's own tools: ``img2simg`` at 4096 and 1024 bytes a
    block (RAW chunks, FILL for zeros and for a repeated word), ``simg2simg``'s pieces (their
    blocks kept in the other piece are DONT_CARE), and one with a CRC32 chunk and the header's
    image checksum (no tool here writes them: appended by the published layout)."""
    if not (shutil.which("img2simg") and shutil.which("simg2simg")):
        return {}
    media = _media(24 * 1024)
    media = media[:8192] + b"\xde\xad\xbe\xef" * 2048 + bytes(4096) + media[20480:]
    raw = work / "d.raw"
    raw.write_bytes(media)
    seeds: dict[str, bytes] = {}
    for block in (4096, 1024):
        out = work / f"b{block}.simg"
        if _run("img2simg", raw, out, str(block)):
            seeds[out.name] = out.read_bytes()
    if "b4096.simg" in seeds and _run("simg2simg", work / "b4096.simg", work / "part.simg",
                                      "12000"):
        for piece in sorted(work.glob("part.simg.*")):
            seeds[piece.name] = piece.read_bytes()
    if "b4096.simg" in seeds:
        data = bytearray(seeds["b4096.simg"])
        crc = zlib.crc32(media)
        chunks = struct.unpack_from("<I", data, 20)[0]
        struct.pack_into("<II", data, 20, chunks + 1, crc)
        seeds["crc32.simg"] = bytes(data) + struct.pack("<HHIII", 0xCAC4, 0, 0, 16, crc)
    return seeds


def binary_plist_udif(data: bytes) -> bytes:
    """The UDIF image ``data`` with its property list in Apple's binary form (which macOS
    reads and plistlib decodes): the block tables then lie in the file as raw bytes, where a
    mutation reaches them (in XML they are base64)."""
    import plistlib

    koly = bytearray(data[-512:])
    xml_at, xml_length = struct.unpack_from(">QQ", koly, 216)
    binary = plistlib.dumps(plistlib.loads(data[xml_at:xml_at + xml_length]),
                            fmt=plistlib.FMT_BINARY)
    struct.pack_into(">QQ", koly, 216, xml_at, len(binary))
    return data[:xml_at] + binary + data[xml_at + xml_length:-512] + bytes(koly)


def udif_seeds(work: Path) -> dict[str, bytes]:
    """UDIF images by the committed builder (tests/builders/apple.py): zlib, bzip2, ADC, LZFSE
    and LZMA chunks beside raw and zero ones, with XML and binary property lists."""
    _builders()
    from builders.apple import ADC, BZIP2, LZFSE, LZMA, ZLIB, build_udif

    media = _media(16 * 1024)
    media = media[:8192] + bytes(4096) + media[12288:]
    seeds: dict[str, bytes] = {}
    for name, kind in (("zlib", ZLIB), ("bzip2", BZIP2), ("adc", ADC), ("lzfse", LZFSE),
                       ("lzma", LZMA)):
        try:
            path = build_udif(work / f"{name}.dmg", media, compression=kind, chunk_sectors=8)
        except ImportError:  # lzfse is a test extra
            continue
        seeds[f"{name}.dmg"] = path.read_bytes()
        seeds[f"{name}-binary-plist.dmg"] = binary_plist_udif(path.read_bytes())
    return seeds


def apple_sparse_seeds(work: Path) -> dict[str, bytes]:
    """A sparse image and a sparse bundle (as the target takes it: ``Info.plist``, then the
    band files) by the committed builders."""
    from fuzz.targets import PART

    _builders()
    from builders.apple import build_sparsebundle, build_sparseimage

    media = _media(16 * 1024)
    media = media[:4096] + bytes(4096) + media[8192:]
    seeds = {"image.sparseimage": build_sparseimage(work / "s.sparseimage", media,
                                                    band_sectors=8).read_bytes()}
    bundle = build_sparsebundle(work / "b.sparsebundle", media[:-1000] + bytes(1000),
                                band_size=4096)
    count = -(-len(media) // 4096)
    bands = [(bundle / "bands" / f"{i:x}") for i in range(count)]
    seeds["bundle"] = PART.join([(bundle / "Info.plist").read_bytes(),
                                 *(b.read_bytes() if b.is_file() else b"" for b in bands)])
    return seeds


def parallels_seeds(work: Path) -> dict[str, bytes]:
    """Lone sparse extents by qemu-img (converted; created and written by qemu-io; rewritten to
    sector units by the committed builder) and ``.hdd`` bundles around one (sparse, plain)."""
    from fuzz.targets import PART

    if not (shutil.which("qemu-img") and shutil.which("qemu-io")):
        return {}
    _builders()
    from builders.parallels_bundle import build_bundle, to_sector_units

    raw = work / "p.raw"
    raw.write_bytes(_media(16 * 1024))
    seeds: dict[str, bytes] = {}
    converted = work / "converted.hds"
    if _run("qemu-img", "convert", "-q", "-f", "raw", "-O", "parallels", "-o",
            "cluster_size=4k", raw, converted):
        seeds["converted.hds"] = converted.read_bytes()
        sectors = work / "sectors.hds"
        sectors.write_bytes(converted.read_bytes())
        to_sector_units(sectors)
        seeds["sector-units.hds"] = sectors.read_bytes()
    written = work / "written.hds"
    if _run("qemu-img", "create", "-q", "-f", "parallels", "-o", "cluster_size=4k", written,
            "16K"):
        _qemu_io(written, "parallels", *_WRITES)
        seeds["qemu-io.hds"] = written.read_bytes()
    # bundles keep the older sector-unit extents (libphdi reads no other kind in a bundle)
    for kind, source in (("Compressed", work / "sectors.hds"), ("Plain", raw)):
        if not source.is_file():
            continue
        folder = work / f"{kind}.hdd"
        folder.mkdir()
        extent = folder / "disk.hds"
        extent.write_bytes(source.read_bytes())
        build_bundle(folder, [(0, 32, kind, extent)])
        seeds[f"bundle-{kind.lower()}"] = (folder / "DiskDescriptor.xml").read_bytes() + \
            PART + extent.read_bytes()
    return seeds


def ewf2_seeds(work: Path) -> dict[str, bytes]:
    """Ex01 sets by the committed builder (tests/builders/ex01.py): one segment, and two
    joined at the target's part marker; an Lx01 by tests/builders/logical.py."""
    from fuzz.targets import PART

    _builders()
    from builders.ex01 import build_ex01

    media = _media(16 * 1024)
    media = media[:4096] + bytes(4096) + media[8192:]
    one = build_ex01(work / "one.Ex01", media, chunk_sectors=8, case_number="42",
                     examiner="seed").read_bytes()
    two = build_ex01(work / "two.Ex01", media, chunk_sectors=8, segments=2)
    # an Lx01 (tests/builders/logical.py): the same reader, its media the file list's rec tb
    from builders.logical import Item, build_lx01

    text = b"".join(b"line %05d\n" % i for i in range(4000))
    lx01 = build_lx01(work / "x.Lx01", [Item("case", None), Item("case/a.txt", text[:33_001]),
                                       Item("case/b.bin", media[:5000])])
    return {"one.Ex01": one,
            "two-segments": two.read_bytes() + PART + two.with_suffix(".Ex02").read_bytes(),
            "files.Lx01": lx01.path.read_bytes()}


def aff_seeds(work: Path) -> dict[str, bytes]:
    """AFF files written by afflib's affconvert: zlib, LZMA and uncompressed pages."""
    if not shutil.which("affconvert"):
        return {}
    raw = work / "a.raw"
    media = _media(48 * 1024)
    raw.write_bytes(media[:16384] + bytes(16384) + media[32768:])
    seeds: dict[str, bytes] = {}
    for name, args in (("zlib.aff", ["-s", "16k"]), ("lzma.aff", ["-L", "-s", "16k"]),
                       ("stored.aff", ["-x", "-s", "16k"])):
        out = work / name
        if _run("affconvert", "-q", *args, "-o", out, raw) and out.is_file():
            seeds[name] = out.read_bytes()
    return seeds


def stored_turtle(path: Path) -> bytes:
    """The AFF4 volume ``path`` with every member stored (the writer deflates
    ``information.turtle``): the turtle's text then lies in the file as it is, where mutations
    reach rdflib instead of breaking the deflate stream."""
    import io
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(out, "w") as target:
        target.comment = source.comment
        for info in source.infolist():
            data = source.read(info)
            info.compress_type = zipfile.ZIP_STORED
            target.writestr(info, data)
    return out.getvalue()


def aff4_seeds(work: Path) -> dict[str, bytes]:
    """AFF4 volumes by the committed writer (tests/builders/aff4_writer.py): every chunk
    codec, a map gap, the pre-standard index, an image straight on its stream."""
    _builders()
    from builders.aff4_writer import build_aff4

    media = _media(16 * 1024)
    variants: dict[str, dict[str, object]] = {
        "deflate": {}, "snappy": {"compression": "snappy"}, "lz4": {"compression": "lz4"},
        "zlib": {"compression": "zlib"}, "stored": {"compression": "stored"},
        "gap": {"gap": (4096, 8192)}, "legacy": {"legacy": True, "pad_last": True},
        "no-map": {"with_map": False}, "two-images": {"extra_images": 1},
    }
    seeds: dict[str, bytes] = {}
    for name, options in variants.items():
        data = media
        if "gap" in options:
            data = media[:4096] + bytes(4096) + media[8192:]
        written = build_aff4(work / f"{name}.aff4", data[:-100], chunk_size=1024,
                             chunks_in_segment=4, **options)  # type: ignore[arg-type]
        seeds[f"{name}.aff4"] = written.path.read_bytes()
        seeds[f"{name}-stored.aff4"] = stored_turtle(written.path)
    return seeds


def luks_seeds(work: Path) -> dict[str, bytes]:
    """LUKS1 and LUKS2 volumes cryptsetup formats (PBKDF2 at 1000 iterations, small LUKS2
    metadata and key-slot areas), cut after the key material: headers, not payloads."""
    from fuzz.targets import LUKS_PASSPHRASE

    seeds: dict[str, bytes] = {}
    if not shutil.which("cryptsetup"):
        return seeds
    key = work / "passphrase"
    key.write_bytes(LUKS_PASSPHRASE)
    for name, options in (
            ("luks1-xts", ["--type", "luks1", "--cipher", "aes-xts-plain64", "--key-size", "256"]),
            ("luks1-cbc", ["--type", "luks1", "--cipher", "aes-cbc-essiv:sha256",
                           "--key-size", "128"]),
            ("luks2-xts", ["--type", "luks2", "--luks2-metadata-size", "16k",
                           "--luks2-keyslots-size", "128k", "--key-size", "256"])):
        volume = work / f"{name}.img"
        volume.write_bytes(bytes(4 << 20))
        done = subprocess.run(["cryptsetup", "luksFormat", "--batch-mode", *options, "--pbkdf",
                               "pbkdf2", "--pbkdf-force-iterations", "1000", "--key-file",
                               str(key), str(volume)], capture_output=True, check=False)
        if done.returncode == 0:
            seeds[name] = volume.read_bytes()[: 1 << 18]
    return seeds



def _fsimages() -> Any:
    """The test suite's file-system builders (``tests/fsimages.py``)."""
    tests = str(HERE.parent / "tests")
    if tests not in sys.path:
        sys.path.insert(0, tests)
    import fsimages

    return fsimages


def _blank_blocks(image: bytes, block: bytes) -> bytes:
    """``image`` with every aligned block equal to ``block`` made zeros."""
    out = bytearray(image)
    size = len(block)
    for at in range(0, len(out) - size + 1, size):
        if out[at : at + size] == block:
            out[at : at + size] = bytes(size)
    return bytes(out)


def filesystem_seeds(work: Path) -> dict[str, bytes]:
    """Whole small file systems, as the filesystem target's pieces (``pack_pieces``): the test
    suite's images (``tests/fsimages.py``: NTFS and ext with their large files cut short, FAT12,
    FAT16, FAT32 with long names and deleted entries, exFAT, ISO 9660, the hostile ext2 and FAT
    names, the FAT entries TSK refuses), an NTFS and an exFAT made by mkntfs and mkfs.exfat alone
    where those need FUSE that is missing, an NTFS with WOF-compressed files (``tests/wofbuild.py``,
    where wimlib and FUSE are there), an MBR disk holding a FAT12, the file systems other
    readers than TSK open (:func:`_beyond_tsk_images`, an md RAID1 member among them), an
    HFS+ with decmpfs-compressed files (:func:`_hfsplus_decmpfs`) and, where ../shared is
    present, the HFS+ and APFS fixtures. A builder whose tool is missing leaves its seed out."""
    from fuzz.targets import pack_pieces

    made = _filesystem_images(work)
    made.update(_beyond_tsk_images(work))
    made["hfsplus-decmpfs"] = _hfsplus_decmpfs(work)
    fixtures = HERE.parent.parent / "shared" / "fixtures"
    for name, path in (("hfsplus", fixtures / "third-party" / "dfvfs_hfsplus.raw"),
                       ("apfs", fixtures / "volumes" / "dfvfs_apfs.raw")):
        if path.is_file():
            made[name] = path
    seeds: dict[str, bytes] = {}
    for name, path in made.items():
        image = path.read_bytes()
        if "ntfs" in name:  # $LogFile, all 0xFF on a new volume and never read: left out
            image = _blank_blocks(image, b"\xff" * 4096)
        try:
            seeds[name] = pack_pieces(image)
        except ValueError:
            continue
    return seeds


def _hfsplus_decmpfs(work: Path) -> Path:
    """A 256 KiB HFS+ (tests/builders/hfsplus.py) with a folder and compressed files of the
    types read by :mod:`bitwitness.report.browse.decmpfs` (zlib inline and in a resource fork
    of two blocks, LZVN inline with matches and in a fork, LZFSE inline and in a fork), an
    LZBITMAP one it refuses, and a name holding a lone surrogate half (read from the catalog)."""
    _builders()
    from builders import hfsplus as h

    text = b"".join(b"line %04d\n" % n for n in range(9000))  # two 64 KiB units
    matches = bytes([0xE3]) + b"abc" + bytes([0x30, 3, 0xF2]) + b"\x06" + bytes(7)
    nodes = [h.Node("plain.txt", data=b"plain\n"), h.Node("Docs", folder=True),
             h.compressed("z3.txt", 0, h.zlib_inline(text[:2000]), parent="Docs"),
             h.compressed("z4.txt", 0, h.decmpfs_header(4, len(text)),
                          h.zlib_fork(h.zlib_blocks(text))),
             h.compressed("v7.txt", 0, h.decmpfs_header(7, 14) + matches),
             h.compressed("v8.txt", 0, h.decmpfs_header(8, 900),
                          h.offset_fork([h.lzvn_literals(text[:900])])),
             h.compressed("f11.txt", 0, h.decmpfs_header(11, 5) + h.lzfse_stored(b"lzfse")),
             h.compressed("f12.txt", 0, h.decmpfs_header(12, len(text)),
                          h.offset_fork(h.lzfse_blocks(text))),
             h.compressed("b13.txt", 0, h.decmpfs_header(13, 4) + b"\xffabcd"),
             h.Node("zz\ud800qq.txt", data=b"a name with a lone surrogate half\n")]
    image = work / "hfsplus-decmpfs.img"
    image.write_bytes(h.hfsplus_volume(nodes, blocks=64))
    return image


def _filesystem_images(work: Path) -> dict[str, Path]:
    images = _fsimages()
    made: dict[str, Path] = {}
    builders: dict[str, Callable[[Path], Path]] = {
        "ntfs": lambda p: images.ntfs(p, small=True),
        "fat12": lambda p: images.fat(p, 12), "fat16": lambda p: images.fat(p, 16),
        "fat32": lambda p: images.fat(p, 32), "exfat": images.exfat,
        "ext2": lambda p: images.ext(p, "ext2", small=True),
        "ext4": lambda p: images.ext(p, "ext4", small=True), "iso9660": images.iso9660,
        "hostile-ext2": images.hostile_ext2, "hostile-fat": images.hostile_fat,
        "crafted-fat12": lambda p: images.crafted_fat(p, 12),
        "crafted-fat32": lambda p: images.crafted_fat(p, 32)}
    for name, builder in builders.items():
        try:
            made[name] = builder(work / f"{name}.img")
        except (images.Unavailable, subprocess.CalledProcessError, OSError):
            continue
    for name, tool in (("ntfs", ["mkntfs", "-q", "-F", "-Q"]), ("exfat", ["mkfs.exfat"])):
        if name not in made and shutil.which(tool[0]):
            bare = work / f"bare-{name}.img"
            bare.write_bytes(bytes(2 << 20))
            if _run(*tool, bare):
                made[f"bare-{name}"] = bare
    if "ntfs" in made and shutil.which("wimcapture") and Path("/dev/fuse").exists():
        import wofbuild  # beside fsimages, in tests/

        try:  # an NTFS with WOF (CompactOS) files: the reading path through libfsntfs
            (work / "wof").mkdir()
            made["ntfs-wof"] = wofbuild.small_wof_ntfs(work / "wof")
        except (subprocess.CalledProcessError, OSError):
            pass
    if "fat12" in made and shutil.which("sfdisk"):
        disk = work / "mbr-fat12.img"
        disk.write_bytes(bytes(1 << 20) + made["fat12"].read_bytes())
        if subprocess.run(["sfdisk", "-q", str(disk)], input=b"start=2048, type=1\n",
                          capture_output=True, check=False).returncode == 0:
            made["mbr-fat12"] = disk
    return made

def _beyond_tsk_images(work: Path) -> dict[str, Path]:
    """File systems the volume tree hands to readers other than TSK: an ISO 9660 with Rock
    Ridge by xorriso (iso9660.py), an XFS of two allocation
    groups by ``mkfs.xfs -p`` (a prototype file naming a file, a symlink, a folder with a larger
    file), an ext4 with bigalloc (libfsext) by ``mkfs.ext4 -d`` and UDF (:func:`_udf_images`).
    A missing tool leaves its image out."""
    files = work / "beyond-tsk"
    (files / "folder").mkdir(parents=True, exist_ok=True)
    (files / "small.txt").write_bytes(b"small\n")
    (files / "folder" / "data.bin").write_bytes(_media(40_000))
    made: dict[str, Path] = {}
    if shutil.which("mkfs.xfs"):
        proto = work / "xfs.proto"
        proto.write_text("/dev/null\n0 0\nd--755 0 0\n"
                         f"small.txt ---644 0 0 {files / 'small.txt'}\n"
                         "link l--777 0 0 small.txt\n"
                         f"folder d--755 0 0\ndata.bin ---644 0 0 {files / 'folder' / 'data.bin'}\n"
                         "$\n$\n")
        image = work / "xfs.img"
        with image.open("wb") as out:
            out.truncate(32 << 20)  # two allocation groups of 16 MiB, the smallest there are
        # mkfs.xfs makes volumes under 300 MB only for fstests, which it knows by these
        small = {**os.environ, "TEST_DIR": str(work), "TEST_DEV": str(image),
                 "QA_CHECK_FS": "1"}
        if subprocess.run(["mkfs.xfs", "-q", "-f", "-d", "agcount=2", "-p", str(proto),
                           str(image)], env=small, capture_output=True,
                          check=False).returncode == 0:
            made["xfs"] = image
    if shutil.which("mkfs.ext4"):
        image = work / "ext4-bigalloc.img"
        with image.open("wb") as out:
            out.truncate(8 << 20)
        if _run("mkfs.ext4", "-q", "-F", "-O", "bigalloc", "-C", "16384", "-d", files, image):
            made["ext4-bigalloc"] = image
    if shutil.which("xorriso"):
        # Rock Ridge without Joliet, deep folders relocated to rr_moved (RE/CL/PL), a long
        # name (NM through a CE area) and a symlink (SL): read by iso9660.py, not TSK
        rr = work / "rockridge-files"
        shutil.copytree(files, rr, dirs_exist_ok=True)
        deep = rr / "/".join(f"d{n}" for n in range(1, 10))
        deep.mkdir(parents=True, exist_ok=True)
        (deep / "deep.txt").write_bytes(b"deep\n")
        (rr / ("long-" + "n" * 200 + ".txt")).write_bytes(b"long\n")
        if not (rr / "link").is_symlink():
            (rr / "link").symlink_to("folder/data.bin")
        image = work / "iso9660-rockridge.img"
        image.unlink(missing_ok=True)
        if _run("xorriso", "-compliance", "deep_paths_off", "-rr_reloc_dir", "rr_moved",
                "-rockridge", "on", "-outdev", image, "-map", rr, "/", "-commit"):
            made["iso9660-rockridge"] = image
    made.update(_udf_images(work, files))
    if shutil.which("mkfs.ext4"):
        # one disk of an md RAID1 (metadata 1.2, tests/builders/mdraid.py), an ext4 at its
        # data offset: the volume tree's md child (mdraid.py)
        _builders()
        from builders.mdraid import write_member

        image = work / "md-raid1.img"
        with image.open("wb") as out:
            out.truncate(4 << 20)
        data = write_member(image, level=1, raid_disks=2, data_offset=2048)
        if _run("mkfs.ext4", "-q", "-F", "-E", f"offset={data}", "-d", files, image, "3M"):
            made["md-raid1"] = image
    return made


def _udf_images(work: Path, files: Path) -> dict[str, Path]:
    """UDF, read by our own reader (udf.py): a bridge disc by ``genisoimage -udf`` (ISO 9660
    and UDF 1.02 over the same files: the volume tree gives it a ``udf`` child) and a UDF 2.50
    volume with a metadata partition by the committed writer (tests/builders/udf.py): embedded
    data, an AED, an unrecorded extent, a hard link, a symlink, deleted names, 16-bit names, a
    named stream; and empty CD-RW (sparable) and CD-R (VAT) volumes by ``mkudffs``."""
    made: dict[str, Path] = {}
    if shutil.which("genisoimage"):
        image = work / "udf-bridge.iso"
        if _run("genisoimage", "-quiet", "-udf", "-R", "-J", "-o", image, files):
            made["udf-bridge"] = image
    _builders()
    from builders.udf import File, Folder, build_udf

    tree = Folder("", [
        File("small.txt", b"small\n", embedded=True, streams={"Zone.Identifier": b"Zone"}),
        File("sparse.bin", b"s" * 2048 + b"t" * 10, pieces=2, hole=4096),
        File("link", symlink="small.txt"),
        File("deleted.txt", b"deleted\n", deleted=True), File("gone.txt", gone=True),
        Folder("folder", [File("data.bin", _media(40_000), pieces=3),
                          File("hard.txt", link_to="/folder/data.bin"),
                          File("caf\u00e9 \u2713.txt", b"name\n")])])
    made["udf250"] = build_udf(work / "udf250.img", tree, blocks=600)
    if shutil.which("mkudffs"):  # a sparable (CD-RW) and a virtual (CD-R, its VAT last) volume
        for media in ("cdrw", "cdr"):
            image = work / f"udf-{media}.img"
            with image.open("wb") as out:
                out.truncate(16 << 20)
            if _run("mkudffs", f"--media-type={media}", image):
                made[f"udf-{media}"] = image
    return made


def btrfs_seeds(work: Path) -> dict[str, bytes]:
    """A small btrfs made by ``mkfs.btrfs --rootdir`` (no mount needed), of mixed block
    groups (one chunk for data and metadata, as small volumes are made), holding an inline
    file, a larger file, folders and a symlink. Without mkfs.btrfs there is no seed."""
    from fuzz.targets import pack_pieces

    if not shutil.which("mkfs.btrfs"):
        return {}
    tree = work / "btrfs-files"
    (tree / "folder" / "inner").mkdir(parents=True, exist_ok=True)
    (tree / "small.txt").write_bytes(b"small\n")
    (tree / "folder" / "inner" / "data.bin").write_bytes(_media(40_000))
    (tree / "folder" / "caf\u00e9.txt").write_bytes(b"name\n")
    link = tree / "link"
    if not link.is_symlink():
        link.symlink_to("small.txt")
    seeds: dict[str, bytes] = {}
    # (a volume of separate data and metadata chunks is at least 109 MiB: its pieces are
    # larger than the target's inputs)
    for name, args in (("mixed", ["--mixed", "-b", "24M"]),):
        image = work / f"btrfs-{name}.img"
        image.write_bytes(b"")
        if _run("mkfs.btrfs", "-q", "-f", *args, "--rootdir", tree, image):
            try:
                seeds[name] = pack_pieces(image.read_bytes())
            except ValueError:
                continue
    return seeds


BUILDERS: dict[str, Callable[[Path], dict[str, bytes]]] = {
    "ewf": ewf_seeds, "ewf-ltree": ltree_seeds, "vhd": vhd_seeds, "vmdk": vmdk_seeds,
    "split-raw": split_seeds,
    "logs": log_seeds, "partitions": partition_seeds, "case-yaml": case_seeds,
    "custody": custody_seeds, "qcow": qcow_seeds, "ova": ova_seeds, "vhdx": vhdx_seeds,
    "vdi": vdi_seeds,
    "qed": qed_seeds,
    "android-sparse": android_sparse_seeds,
    "ntfsclone": ntfsclone_seeds,
    "partclone": partclone_seeds,
    "udif": udif_seeds, "apple-sparse": apple_sparse_seeds, "parallels": parallels_seeds,
    "ewf2": ewf2_seeds, "aff": aff_seeds, "aff4": aff4_seeds,
    "fs-times": fs_time_seeds, "ext-superblock": ext_superblock_seeds,
    "luks": luks_seeds, "filesystem": filesystem_seeds, "btrfs": btrfs_seeds,
}


def build(target: str, out: Path) -> list[Path]:
    """Write the seeds of ``target`` into ``out``; the paths written."""
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bitwitness-seeds-") as tmp:
        seeds = BUILDERS[target](Path(tmp))
    written = []
    for name, data in seeds.items():
        path = out / name
        path.write_bytes(data)
        written.append(path)
    return written


def main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else HERE / "corpus"
    for target in BUILDERS:
        written = build(target, out / target)
        print(f"{target}: {len(written)} seed(s) in {out / target}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONPATH", str(HERE.parent))
    sys.exit(main(sys.argv[1:]))
