"""Build the seed corpus: small valid inputs of every kind, made by our writers and real tools.

``python -m fuzz.seeds [OUT_DIR]`` writes ``OUT_DIR/TARGET/*`` (default ``fuzz/corpus``). Seeds
are built, never committed: E01 sets by our writer (compressed, stored, unfinished) and by
``ewfacquire`` when installed; VHDs and VMDKs by the structures' own packers (tiny geometries,
so that whole images fit in a fuzz input) and by ``qemu-img`` where the result is small; logs by
a real acquisition, ``md5sum``/``sha1sum`` and ``dc3dd`` when installed, plus an FTK Imager
report laid out as FTK writes it; partition tables by ``sfdisk``/``sgdisk`` on small disks; a
case folder by ``bitwitness case new``; the file-system time readers' inputs by ``xorriso``,
``mkfs.ext2``/``debugfs``, a hand-made exFAT entry and, where ../shared is present, the HFS+
fixture's catalog file (``icat``).
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


def vmdk_seeds(work: Path) -> dict[str, bytes]:
    data = _media(32 * 1024)
    return {
        "sparse.vmdk": _sparse_vmdk(data, compressed=False),
        "stream.vmdk": _sparse_vmdk(data, compressed=True),
        "zero.vmdk": (b'# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\n'
                      b'createType="monolithicFlat"\nRW 64 ZERO\nRW 8 FLAT "fuzz.vmdk" 0\n'),
        "child.vmdk": (b'# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=12345678\n'
                       b'createType="monolithicSparse"\nRW 64 ZERO\n'),
    }


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
    return seeds


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


BUILDERS: dict[str, Callable[[Path], dict[str, bytes]]] = {
    "ewf": ewf_seeds, "ewf-ltree": ltree_seeds, "vhd": vhd_seeds, "vmdk": vmdk_seeds,
    "split-raw": split_seeds,
    "logs": log_seeds, "partitions": partition_seeds, "case-yaml": case_seeds,
    "custody": custody_seeds, "fs-times": fs_time_seeds,
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
