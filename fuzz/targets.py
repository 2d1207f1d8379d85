"""The fuzz targets: one function per parser of untrusted input, each taking the raw bytes.

Every target feeds the input to the real entry point (the same code ``verify``, ``info`` and
the browsers run) and reads what it can; a :class:`~bitwitness.errors.BitWitnessError` is the
parser saying no, which is fine. Anything else escaping (``MemoryError``, ``OverflowError``,
``struct.error``, ...) is a finding: hostile input must end in a typed error.

Why files at all: the readers open evidence by path (through :mod:`bitwitness.evidence_io`),
so each input is written to a RAM-backed folder (``/dev/shm``, tmpfs) first. That costs a few
microseconds, keeps every path under test, and lets a target run thousands of inputs a second.
Reads are sampled (start, middle, end), so that an input claiming a petabyte of sparse media
costs no more than a small one.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from bitwitness.errors import BitWitnessError
from bitwitness.stream import ImageStream, StreamInfo

if TYPE_CHECKING:
    from bitwitness.report.browse.entries import Entry
    from bitwitness.report.browse.interface import BrowsableFileSystem

#: Bytes read from each sampled place of the media.
SAMPLE = 64 << 10


class Scratch:
    """A private RAM-backed folder that holds the current input as files."""

    def __init__(self) -> None:
        base = "/dev/shm" if Path("/dev/shm").is_dir() else None  # noqa: S108 - RAM, private
        self.root = Path(tempfile.mkdtemp(prefix="bitwitness-fuzz-", dir=base))
        atexit.register(shutil.rmtree, self.root, True)

    def folder(self, name: str) -> Path:
        """An empty folder ``name`` inside the scratch folder."""
        folder = self.root / name
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir()
        return folder

    def put(self, name: str, data: bytes) -> Path:
        path = self.root / name
        path.write_bytes(data)
        return path


_SCRATCH: Scratch | None = None


def scratch() -> Scratch:
    global _SCRATCH  # noqa: PLW0603 - one folder per process, made on first use
    if _SCRATCH is None:
        _SCRATCH = Scratch()
    return _SCRATCH


def read_samples(stream: ImageStream) -> None:
    """Read the start, the middle and the end of the media, and its description."""
    _ = stream.info
    size = stream.size
    for offset in {0, max(0, size // 2 - SAMPLE // 2), max(0, size - SAMPLE)}:
        if offset < size:
            stream.pread(offset, min(SAMPLE, size - offset))


# --- images ------------------------------------------------------------------------------------


def ewf(data: bytes) -> None:
    """E01: segment header, section chain, header/header2 text, volume, tables, chunks."""
    from bitwitness.ewf.reader import open_ewf

    path = scratch().put("fuzz.E01", data)
    try:
        image = open_ewf(path, allow_incomplete=True, zero_bad_chunks=True)
    except BitWitnessError:
        return
    with image:
        _ = image.header_values, image.stored_hashes, image.error_ranges
        try:
            read_samples(image)
        except BitWitnessError:
            return


def ewf_ltree(data: bytes) -> None:
    """The file-list estimate run before libewf opens any EWF set (L01, Lx01, E01, Ex01): the
    section chains walked forward (EWF1) or back from the end (EWF2), the ltree text counted."""
    from bitwitness.images.ewf_ltree import check_ltree

    try:
        check_ltree([scratch().put("fuzz.L01", data)])
    except BitWitnessError:
        return


def vhd(data: bytes) -> None:
    """VHD: footer (either copy), dynamic header, block allocation table, blocks; the
    self-checks ``verify`` runs (checksums, footer copies, BAT consistency)."""
    from bitwitness.images.vhd import open_vhd, vhd_checks

    path = scratch().put("fuzz.vhd", data)
    _open_and_sample(lambda: open_vhd(path))
    _checks(lambda: vhd_checks(path))


def _sesparse_snapshot(data: bytes) -> Path:
    """An SEsparse extent (the input) as ESXi leaves it: named by a snapshot descriptor whose
    parent (a descriptor of zeros) lies beside it, both sized by the extent's capacity."""
    capacity = min(int.from_bytes(data[16:24].ljust(8, b"\0"), "little") or 1, 1 << 40)
    put = scratch().put
    put("fuzz-sesparse.vmdk", data)
    put("fuzz-parent.vmdk", (f'# Disk DescriptorFile\nversion=1\nCID=11111111\nparentCID=ffffffff\n'
                             f'createType="vmfs"\nRW {capacity} ZERO\n').encode())
    return put("fuzz.vmdk", (f'# Disk DescriptorFile\nversion=1\nCID=22222222\nparentCID=11111111\n'
                             f'parentFileNameHint="fuzz-parent.vmdk"\ncreateType="seSparse"\n'
                             f'RW {capacity} SESPARSE "fuzz-sesparse.vmdk"\n').encode())


def vmdk(data: bytes) -> None:
    """VMDK: sparse header, embedded or text descriptor, grain directory and tables, grains,
    and the check of the redundant grain directory and tables that ``verify`` runs. An input
    starting with the SEsparse magic is the extent of a snapshot over a parent of zeros (the
    SEsparse headers, directory, tables, grains and the reads through to the parent)."""
    from bitwitness.images.vmdk import open_vmdk, vmdk_checks
    from bitwitness.images.vmdk_sesparse import HEAD

    sesparse = data.startswith(HEAD)
    path = _sesparse_snapshot(data) if sesparse else scratch().put("fuzz.vmdk", data)
    try:
        stream = open_vmdk(path)
    except BitWitnessError:
        return
    with stream:
        try:
            read_samples(stream)
        except BitWitnessError:
            return
    try:
        vmdk_checks(path)
    except BitWitnessError:
        return


def split_raw(data: bytes) -> None:
    """Split-raw detection: a folder of pieces named by the input (one name a line), each
    holding a few bytes; the first name is the one given on the command line."""
    from bitwitness.image import detect

    folder = scratch().folder("split")
    names = [n for n in data.decode("latin-1").split("\n")[:32]
             if n and "/" not in n and "\0" not in n and n not in (".", "..")]
    for i, name in enumerate(names):
        try:
            (folder / name).write_bytes(bytes([i]) * (i + 1))
        except OSError:
            return  # a name the file system refuses (too long): not a parser input
    if not names:
        return
    path = folder / names[0]
    try:
        detected = detect(path)
        files = detected.format.files(path)
        with detected.format.open(path) as stream:
            assert stream.size >= 0
            _ = stream.info
        assert all(f.parent == folder for f in files), files
    except BitWitnessError:
        return


# --- containers read by our own code ----------------------------------------------------------
#
# Each target opens the file with our reader (never libyal's or QEMU's: those are other
# projects' code), runs what ``verify`` checks of the container (its self-checks, its stored
# hashes) and reads the sampled places, as :func:`read_samples` does. Signature detection
# (:mod:`bitwitness.images.signatures`), which ``detect`` runs on every file first, runs too.
# Multi-file inputs (bundles, segment sets) are one input cut at a marker, each piece a file.

#: Where a multi-file input is cut into its files.
PART = b"\0--part--\0"


def _identify(path: Path) -> None:
    """What ``detect`` asks first: the container signature (a typed refusal is fine)."""
    from bitwitness.evidence_io import read_head
    from bitwitness.images import signatures

    try:
        signatures.identify(path, read_head(path, 4096))
    except BitWitnessError:
        return


def _open_and_sample(opener: Callable[[], ImageStream]) -> None:
    """Open with ``opener``; then the stored hashes, the description and the sampled reads."""
    try:
        stream = opener()
    except BitWitnessError:
        return
    with stream:
        try:
            _ = dict(getattr(stream, "stored_hashes", None) or {})
            read_samples(stream)
        except BitWitnessError:
            return


def _checks(run: Callable[[], object]) -> None:
    """A format's self-checks, which ``verify`` runs on every file of an opened image: they
    report damage as failed checks and may refuse only with a typed error."""
    try:
        run()
    except BitWitnessError:
        return


#: The raw backing file beside a fuzzed QCOW image (what a seed's overlay names).
BACKING = bytes(range(256)) * 16


def qcow(data: bytes) -> None:
    """QCOW v1/v2/v3: header, extensions, backing name and format, L1/L2 tables, clusters
    (compressed ones inflated), the table consistency check, and the same read and checked as
    internal snapshots 1 and 2 (``--snapshot``: the snapshot table, each entry's L1 table and
    disk size); ``base.img`` (raw) lies beside it for a backing chain."""
    from bitwitness.images.qcow import open_qcow, qcow_checks
    from bitwitness.images.snapshot_choice import choose_snapshot

    folder = scratch().folder("qcow")
    (folder / "base.img").write_bytes(BACKING)
    path = folder / "fuzz.qcow2"
    path.write_bytes(data)
    _identify(path)
    _open_and_sample(lambda: open_qcow(path))
    _checks(lambda: qcow_checks([path]))
    for snapshot in ("1", "2"):
        undo = choose_snapshot(snapshot)
        try:
            _open_and_sample(lambda: open_qcow(path))
        finally:
            undo()
        _checks(lambda snapshot=snapshot: qcow_checks([path], snapshot))  # type: ignore[misc]



def ova(data: bytes) -> None:
    """OVA archives: the tar walk (ustar, GNU long names, pax headers, checksums, member
    spans), the disk member read in place as a stream-optimized VMDK, and the manifest's
    digests checked."""
    from bitwitness.images.ova import open_ova, ova_checks

    path = scratch().put("fuzz.ova", data)
    _identify(path)
    _open_and_sample(lambda: open_ova(path))
    _checks(lambda: ova_checks(path))


def vhdx(data: bytes) -> None:
    """VHDX: both headers and region tables (CRC-32C), the log replayed in memory (entries,
    the active sequence, zero and data descriptors, data sectors, the overlay every later read
    goes through), metadata items, parent locator, BAT, sector bitmaps, blocks; the
    self-checks (CRC-32C, log, BAT inside the file)."""
    from bitwitness.images.vhdx import log_pending, open_vhdx, vhdx_checks

    path = scratch().folder("vhdx") / "fuzz.vhdx"
    path.write_bytes(data)
    _identify(path)
    log_pending(path)
    _open_and_sample(lambda: open_vhdx(path))
    _checks(lambda: vhdx_checks(path))


def vdi(data: bytes) -> None:
    """VDI: banner, signature, version, geometry, block map, blocks; the block map's
    consistency check that ``verify`` runs."""
    from bitwitness.images.vdi import VdiStream, vdi_checks

    path = scratch().put("fuzz.vdi", data)
    _identify(path)
    _open_and_sample(lambda: VdiStream(path))
    _checks(lambda: vdi_checks(path))


def qed(data: bytes) -> None:
    """QED: header, features, backing name, L1/L2 tables read a page at a time, data and zero
    clusters; the table check ``verify`` runs; ``base.img`` (raw) lies beside it for a
    backing chain."""
    from bitwitness.images.qed import open_qed, qed_checks

    folder = scratch().folder("qed")
    (folder / "base.img").write_bytes(BACKING)
    path = folder / "fuzz.qed"
    path.write_bytes(data)
    _identify(path)
    _open_and_sample(lambda: open_qed(path))
    _checks(lambda: qed_checks(path))


def android_sparse(data: bytes) -> None:
    """Android sparse image: file header, the chunk walk (RAW, FILL, DONT_CARE, CRC32), the
    chunk index and reads through it; the CRC-32 checks that ``verify`` runs."""
    from bitwitness.images.android_sparse import AndroidSparseStream, sparse_checks

    path = scratch().put("fuzz.simg", data)
    _identify(path)
    _open_and_sample(lambda: AndroidSparseStream(path))
    _checks(lambda: sparse_checks(path))


def partclone(data: bytes) -> None:
    """partclone image (0001 and 0002): header, map walk and index, reads through the ranks,
    the checksums ``verify`` checks. A 0002 input is run a second time with its header and
    map CRC-32s made right, as partclone writes them, so mutations reach past the CRCs."""
    from bitwitness.images.partclone import PartcloneStream, partclone_checks, with_crcs

    for variant in dict.fromkeys((data, with_crcs(data))):
        path = scratch().put("fuzz.pcl", variant)
        _identify(path)
        _open_and_sample(lambda path=path: PartcloneStream(path))
        _checks(lambda path=path: partclone_checks(path))


def ntfsclone(data: bytes) -> None:
    """ntfsclone special image: header, the command walk (gap records, runs of stored clusters
    measured by strided slices), the run index and reads through it; the checks ``verify``
    runs (counts against the header, the boot sector against it). The walk is made again with
    a window of 1031 bytes, whose edges every run and record then crosses: the index must come
    out the same (a difference is a finding)."""
    from bitwitness.evidence_io import open_readonly
    from bitwitness.images.ntfsclone import NtfscloneStream, ntfsclone_checks, read_header, walk

    path = scratch().put("fuzz.ntfsclone", data)
    _identify(path)
    _open_and_sample(lambda: NtfscloneStream(path))
    _checks(lambda: ntfsclone_checks(path))
    fd = open_readonly(path)
    try:
        header = read_header(fd, path, len(data))
        whole = walk(fd, path, header, len(data))
        small = walk(fd, path, header, len(data), window=1031)
    except BitWitnessError:
        return
    finally:
        os.close(fd)
    if (whole.starts, whole.offsets, whole.counts, whole.end) != (
            small.starts, small.offsets, small.counts, small.end):
        raise AssertionError("the ntfsclone index depends on the walk's window")


def udif(data: bytes) -> None:
    """UDIF (.dmg): the ``koly`` trailer, the property list (XML or binary), the ``mish``
    block tables, chunks (raw, zlib, bzip2, ADC, LZFSE); the data fork CRC-32 check."""
    from bitwitness.images.modi import udif_checks
    from bitwitness.images.udif import UdifStream

    path = scratch().put("fuzz.dmg", data)
    _identify(path)
    _open_and_sample(lambda: UdifStream(path))
    _checks(lambda: udif_checks(path))


def apple_sparse(data: bytes) -> None:
    """Apple sparse image (``sprs`` header and band table) when the input starts with
    ``sprs``; else a sparse bundle: ``Info.plist``, then each :data:`PART` the band file of
    that index (an empty part: no band file)."""
    from bitwitness.images import signatures
    from bitwitness.images.apple_sparse import SparseBundleStream, SparseImageStream

    if data.startswith(b"sprs"):
        path = scratch().put("fuzz.sparseimage", data)
        _identify(path)
        _open_and_sample(lambda: SparseImageStream(path))
        return
    bundle = scratch().folder("fuzz.sparsebundle")
    (bundle / "bands").mkdir()
    plist, *bands = data.split(PART)[:65]
    (bundle / "Info.plist").write_bytes(plist)
    for index, band in enumerate(bands):
        if band:
            (bundle / "bands" / f"{index:x}").write_bytes(band)
    signatures.identify_directory(bundle)
    _open_and_sample(lambda: SparseBundleStream(bundle))


def parallels(data: bytes) -> None:
    """Parallels: a lone sparse extent (header, cluster table, clusters) when the input starts
    with its signature; else a ``.hdd`` bundle read by our own code: ``DiskDescriptor.xml``,
    then after :data:`PART` the bytes of ``disk.hds`` (the extent the seeds' descriptors
    name); each sparse extent's cluster-table check that ``verify`` runs."""
    from bitwitness.images import signatures
    from bitwitness.images.parallels import (
        ParallelsBundleStream,
        SparseExtentStream,
        parallels_checks,
    )

    if data.startswith((b"WithoutFreeSpace", b"WithouFreSpacExt")):
        path = scratch().put("fuzz.hds", data)
        _identify(path)
        _open_and_sample(lambda: SparseExtentStream(path))
        _checks(lambda: parallels_checks(path))
        return
    bundle = scratch().folder("fuzz.hdd")
    descriptor, _, extent = data.partition(PART)
    (bundle / "DiskDescriptor.xml").write_bytes(descriptor)
    (bundle / "disk.hds").write_bytes(extent)
    signatures.identify_directory(bundle)
    _open_and_sample(lambda: ParallelsBundleStream(bundle / "DiskDescriptor.xml"))
    _checks(lambda: parallels_checks(bundle / "disk.hds"))


def ewf2(data: bytes) -> None:
    """Ex01 and Lx01 (EWF2): file header, the section chain walked back from the end
    (descriptor Adler-32), device information and case data object strings, sector tables, an
    Lx01's recorded media size (its file list's ``rec``), the stored MD5/SHA-1, chunks. Each
    :data:`PART` is the next segment (``.Ex02``, ...)."""
    from bitwitness.images.ewf2 import Ewf2Stream, segment_name

    folder = scratch().folder("ewf2")
    first = folder / "fuzz.Ex01"
    for number, piece in enumerate(data.split(PART)[:8], 1):
        (first if number == 1 else segment_name(first, number)).write_bytes(piece)
    _identify(first)
    _open_and_sample(lambda: Ewf2Stream(first))


def aff(data: bytes) -> None:
    """AFF1: header, segment chain, page size, image size, stored hashes, pages (zlib, LZMA,
    zero, stored)."""
    from bitwitness.images.aff import AffStream

    path = scratch().put("fuzz.aff", data)
    _identify(path)
    _open_and_sample(lambda: AffStream(path))


def aff4(data: bytes) -> None:
    """AFF4: the ZIP volume (central directory, local headers), ``version.txt``, the volume
    URN, ``information.turtle`` (rdflib), image streams (bevies, indexes, chunk codecs), maps
    and their target index, symbolic streams, stored hashes."""
    from bitwitness.images.aff4 import Aff4Stream

    path = scratch().put("fuzz.aff4", data)
    _identify(path)
    _open_and_sample(lambda: Aff4Stream(path))


# --- what verify reads next to an image --------------------------------------------------------


def logs(data: bytes) -> None:
    """Hash logs: BitWitness JSON and text, dc3dd, FTK Imager, ewfacquire, md5sum sidecars,
    then binding them to an image (the names, sector ranges and sizes they give)."""
    from bitwitness.verify.logs import parse_log
    from bitwitness.verify.references import ImageLayout, bind_all

    path = scratch().put("fuzz.log", data)
    try:
        log = parse_log(path)
    except BitWitnessError:
        return
    layouts = (
        ImageLayout((Path("img.E01"),), 1 << 20, 512),
        ImageLayout((Path("img.001"), Path("img.002")), 2048, 512, ((0, 1024), (1024, 2048))),
    )
    for layout in layouts:
        try:
            bind_all([log], layout)
        except BitWitnessError:
            continue


# --- partition tables ----------------------------------------------------------------------------


class MemoryStream(ImageStream):
    """An image held in memory (partition-table inputs are whole small disks)."""

    alignment = 1

    def __init__(self, data: bytes, sector_size: int = 512) -> None:
        self._data = data
        super().__init__(len(data), sector_size=sector_size)

    def _read_aligned(self, offset: int, length: int) -> bytes:
        return self._data[offset:offset + length]

    @property
    def info(self) -> StreamInfo:
        return StreamInfo(format="memory", files=(), media_size=self.size,
                          sector_size=self.sector_size)


def partitions(data: bytes) -> None:
    """Partition tables (MBR, GPT, BSD, ...) read through TSK into the volume tree the command
    line reads (:func:`read_tree`): each row probed for a file system (TSK's, XFS, btrfs, ext
    beyond TSK), an encrypted volume, LVM, an APFS container or shadow copies; then described
    as ``partitions`` prints it and chosen from as ``ls`` without ``-p`` chooses."""
    from bitwitness.report.browse.volumes import choose_filesystem
    from bitwitness.report.browse.volumes import describe as describe_rows
    from bitwitness.report.browse.volumetree import describe, read_tree

    try:
        tree = read_tree(MemoryStream(data))
    except BitWitnessError:
        return
    try:
        describe_rows(tree.layout.partitions)
        describe(tree)
        for node in tree.walk():
            _ = (node.path, node.description, node.filesystem, node.encrypted)
        choose_filesystem(tree.layout)
    except BitWitnessError:
        return
    finally:
        tree.close()


def fs_times(data: bytes) -> None:
    """The raw readers behind stat's times (``report/browse/zones.py``, ``moretimes.py``):
    exFAT UtcOffset bytes, ISO 9660 recording-date offsets and ext ``i_dtime`` with the input
    as a volume, the HFS+ catalog B-tree with the input as the catalog file. They answer None
    (or the times unchanged) for what they cannot read; nothing may escape. The ext block
    bitmaps behind a deleted file's doubts (``extalloc.py``) read the same volume and may only
    refuse it as a file-system error."""
    from datetime import UTC, datetime

    from bitwitness.errors import FileSystemError
    from bitwitness.report.browse.entries import Times
    from bitwitness.report.browse.extalloc import ExtBitmaps
    from bitwitness.report.browse.moretimes import HfsCatalog, ext_deletion_time
    from bitwitness.report.browse.zones import ExfatZones, IsoZones

    stream = MemoryStream(data)
    moment = datetime(2020, 1, 1, tzinfo=UTC)
    times = Times(moment, moment, moment, moment)
    exfat, iso = ExfatZones(stream, 0), IsoZones(stream, 0)
    for inode in (1, 2, 3, 5, 11, 12, 16, 19, 1000, 1 << 31):
        exfat.adjust(inode, times, lambda: None)
        iso.adjust(inode, times, lambda inode=inode: (inode, 0))
        ext_deletion_time(stream, 0, inode)
    try:
        bitmaps = ExtBitmaps(stream, 0)
        for first, count in ((0, 1), (1, 64), (100, 5000), (1 << 20, 8), (1 << 40, 3)):
            bitmaps.allocated(first, count)
    except FileSystemError:
        pass
    try:
        catalog = HfsCatalog(lambda offset, size: data[offset : offset + size])
    except ValueError:
        return
    for cnid in (1, 2, 3, 16, 18, 19, 20, 1000):
        catalog.backup_time(cnid)


def luks(data: bytes) -> None:
    """LUKS1 and LUKS2 headers with the input as the volume, opened with the seeds' passphrase
    so that key slots, the key derivation, the anti-forensic merge, the digest and a first
    sector's decryption are all reached. The derivation costs the readers allow (50 M PBKDF2
    iterations, 1 GiB Argon2 memory: what cryptsetup may write) are lowered here to keep each
    run short; what is fuzzed is the parsing around them."""
    from bitwitness.report.browse import luks1, luks2

    luks1.MAX_ITERATIONS = luks2.MAX_ITERATIONS = 4096
    luks2.MAX_ARGON_MEMORY_KIB, luks2.MAX_ARGON_TIME = 64, 4
    stream = MemoryStream(data)
    for unlock in (luks1.unlock, luks2.unlock):
        try:
            cipher, segment = unlock(stream, LUKS_PASSPHRASE, "fuzz volume")
            cipher.decrypt(stream.pread(segment.offset, 4096), iv_sector=segment.iv_tweak,
                           sector_size=segment.sector_size)
        except BitWitnessError:
            pass


#: The passphrase the LUKS seeds are made with.
LUKS_PASSPHRASE = b"fuzz"
def ext_superblock(data: bytes) -> None:
    """The ext superblock's feature flags (``report/browse/extfeatures.py``), which decide
    whether TSK or libfsext reads an ext file system, with the input as a volume's first bytes:
    the parser, the rule, the volume tree marking the node, and, where the rule picks libfsext,
    libfsext opening the input and listing its root through the browsing interface; and the
    ext times TSK misreads, decoded from the input's inodes (``moretimes.ExtTimes``)."""
    from datetime import UTC, datetime

    from bitwitness.report.browse.entries import Times
    from bitwitness.report.browse.extfeatures import (
        SUPERBLOCK_OFFSET,
        SUPERBLOCK_SIZE,
        parse_superblock,
        read_superblock,
        reader_for,
    )
    from bitwitness.report.browse.moretimes import ExtTimes
    from bitwitness.report.browse.volumes import Partition, PartitionKind, VolumeLayout
    from bitwitness.report.browse.volumetree import (
        VolumeNode,
        VolumeTree,
        ext_beyond_tsk,
        open_node,
    )

    stream = MemoryStream(data)
    moment = datetime(2020, 1, 1, tzinfo=UTC)
    ext_times = ExtTimes(stream, 0)  # the inode times TSK misreads, decoded from the inode
    for inode in (1, 2, 3, 11, 12, 13, 16, 17, 1000, 1 << 31):
        ext_times.adjust(inode, Times(moment, moment, moment, moment), lambda: None)
    found = parse_superblock(data[SUPERBLOCK_OFFSET:SUPERBLOCK_OFFSET + SUPERBLOCK_SIZE])
    if found != read_superblock(stream):
        raise AssertionError("the stream and the bytes disagree")
    if found is None:
        return
    _ = (found.features, found.kind, found.tsk_lacks, found.libfsext_refuses, reader_for(found))
    row = Partition(index=0, kind=PartitionKind.WHOLE, start=0, length=-(-len(data) // 512),
                    description="", sector_size=512)
    node = VolumeNode(path="0", kind="whole", description="", offset=0, size=len(data), row=row,
                      stream=stream)
    ext_beyond_tsk(node, data[:2048])
    if node.reader is None:
        return
    tree = VolumeTree(stream, VolumeLayout("none", 512, len(data), (row,)), [node])
    try:
        for index, _entry in enumerate(open_node(tree, node).walk("/", recursive=True)):
            if index >= 64:
                break
    except BitWitnessError:
        return
    finally:
        tree.close()



# --- whole file systems --------------------------------------------------------------------------
#
# A file-system image is mostly zeros (an 8 MiB NTFS holds a few hundred KiB of structures), so
# the input holds only its pieces: the first at byte 0, each later one (after :data:`PART`)
# starting with its place in 512-byte sectors (4 bytes, little-endian); what lies between is
# zeros and the media ends where the farthest piece ends, :data:`FS_MEDIA` at most: TSK reads
# some whole volumes (FAT's orphan search reads every sector of the data area), which costs time
# in proportion to the media, as it should; past that size a run would time out on zeros.

#: The largest media a file-system input makes (the file system may claim more).
FS_MEDIA = 64 << 20
#: Media up to this size are laid out in one buffer (larger ones are read from the pieces).
FS_FLAT = 16 << 20
#: Entries of a walk that are stat'ed, read and looked up again (the walk itself is whole).
FS_ENTRIES = 64
#: Bytes of each entry's content read (``iter_content`` in blocks of a quarter of this).
FS_READ = 64 << 10


class PiecesStream(ImageStream):
    """A media made of pieces at given places, zeros elsewhere (see above)."""

    alignment = 1

    def __init__(self, data: bytes) -> None:
        first, *rest = data.split(PART)
        self._pieces = [(0, first)]
        for piece in rest[:256]:
            place = int.from_bytes(piece[:4].ljust(4, b"\0"), "little") * 512
            self._pieces.append((place, piece[4:]))
        size = min(FS_MEDIA, max(place + len(piece) for place, piece in self._pieces))
        super().__init__(size)
        self._flat: bytearray | None = None
        if size <= FS_FLAT:  # reads then slice one buffer
            self._flat = bytearray(size)
            for place, piece in self._pieces:
                if place < size:
                    self._flat[place : place + len(piece)] = piece[: size - place]

    def _read_aligned(self, offset: int, length: int) -> bytes:
        if self._flat is not None:
            return bytes(self._flat[offset : offset + length])
        out = bytearray(length)
        end = offset + length
        for place, piece in self._pieces:
            low, high = max(offset, place), min(end, place + len(piece))
            if low < high:
                out[low - offset : high - offset] = piece[low - place : high - place]
        return bytes(out)

    @property
    def info(self) -> StreamInfo:
        return StreamInfo(format="memory", files=(), media_size=self.size,
                          sector_size=self.sector_size)


def pack_pieces(image: bytes, block: int = 4096) -> bytes:
    """``image`` as a :class:`PiecesStream` input: its blocks that hold anything but zeros,
    neighbours less than two blocks apart joined, and a last piece where the image ends."""
    runs: list[list[int]] = []
    for at in range(0, len(image), block):
        if not any(image[at : at + block]):
            continue
        if runs and at - runs[-1][1] <= 2 * block:
            runs[-1][1] = min(at + block, len(image))
        else:
            runs.append([at, min(at + block, len(image))])
    if not runs or runs[0][0]:
        runs.insert(0, [0, 0])
    parts = [image[runs[0][0] : runs[0][1]]]
    parts += [(a // 512).to_bytes(4, "little") + image[a:b] for a, b in runs[1:]]
    end = len(image) // 512
    parts.append(end.to_bytes(4, "little") + image[end * 512 :])  # the size, to the byte
    if any(PART in part for part in parts):
        raise ValueError("the image holds the part marker")
    return PART.join(parts)


class _Notices:
    """A mediator that keeps the walk's warnings (each must be one line: names come escaped)."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def begin(self, label: str, total: int | None) -> object:
        from bitwitness.progress import NullMediator

        return NullMediator().begin(label, total)

    def notice(self, message: str, *, level: str = "info") -> None:
        _one_line(message)
        self.messages.append(message)

    def confirm(self, question: str) -> bool:
        return False


def _one_line(message: str) -> None:
    """A message about hostile input is one line of text (names shown escaped)."""
    if "\n" in message or "\r" in message:
        raise AssertionError(f"a message of more than one line: {message!r}")


def _refused(exc: BitWitnessError) -> None:
    _one_line(str(exc))


def filesystem(data: bytes) -> None:
    """A whole file system as ``ls -r``, ``stat``, ``cat`` and ``export`` browse it, opened the
    way the command line opens one: the volume tree (:func:`read_tree`: TSK's partition table,
    then every node probed for a file system, an encrypted or logical volume), then every file
    system it found (:func:`open_node`), each read by its own reader: TSK (ext2/3/4, FAT, exFAT,
    NTFS, HFS+, ISO 9660), libfsxfs (XFS), libfsapfs (APFS), libfsext (ext4 with bigalloc) and
    ours (btrfs). Each is walked recursively with every entry (allocated and deleted, NTFS
    ``$FILE_NAME`` rows; FAT's raw directory reader, NTFS attribute parsing, the zone and time
    readers of :mod:`.moretimes` along the way), then each of the first :data:`FS_ENTRIES`
    entries stat'ed, read (a preview and up to :data:`FS_READ` bytes of content), looked up
    again by path and by address, its data's place and its doubts asked; and the export plan
    of the whole tree (the safe names). Every refusal must be a typed error of one line, every
    warning one line."""
    from bitwitness.report.browse.volumetree import open_node, read_tree

    stream = PiecesStream(data)
    try:
        tree = read_tree(stream)
    except BitWitnessError as exc:
        _refused(exc)
        return
    try:
        for node in tree.filesystems:
            try:
                fs = open_node(tree, node)
            except BitWitnessError as exc:
                _refused(exc)
                continue
            _browse_filesystem(fs, stream)
    finally:
        tree.close()


def _browse_filesystem(fs: BrowsableFileSystem, stream: ImageStream) -> None:
    """One opened file system of the :func:`filesystem` target, browsed as its docstring says."""
    from itertools import islice

    from bitwitness.report.browse.entries import Selection
    from bitwitness.report.browse.export import plan
    from bitwitness.report.browse.filesystem import FileSystem
    from bitwitness.report.browse.safenames import safe_name, shown

    if isinstance(fs, FileSystem) and fs.type.startswith("ext") and tsk_triple_indirect(stream,
                                                                 fs.partition.byte_offset):
        return  # TSK's own unbounded case, not ours to bound (see tsk_triple_indirect)
    notices = _Notices()
    try:
        entries = list(fs.walk("/", recursive=True, selection=Selection.ALL, mediator=notices,
                               file_names=True))
    except BitWitnessError as exc:
        _refused(exc)
        entries = []
    for entry in islice(entries, FS_ENTRIES):
        safe_name(entry.name)
        shown(entry.path)
        _browse_entry(fs, entry)
    try:
        for job in plan(fs, ["/"], Selection.ALL, notices):  # type: ignore[arg-type]
            _ = job.target
    except BitWitnessError as exc:
        _refused(exc)


def btrfs(data: bytes) -> None:
    """A whole btrfs (our own reader, :mod:`~bitwitness.report.browse.btrfs`), as the
    filesystem target browses a TSK one: the pieces as media, opened, walked recursively, the
    first :data:`FS_ENTRIES` entries stat'ed, read, looked up again by path and by address.
    Every refusal must be a typed error of one line, every warning one line."""
    from itertools import islice

    from bitwitness.report.browse.btrfs import BtrfsFileSystem
    from bitwitness.report.browse.safenames import safe_name, shown
    from bitwitness.report.browse.volumes import Partition, PartitionKind

    stream = PiecesStream(data)
    row = Partition(index=0, kind=PartitionKind.WHOLE, start=0,
                    length=-(-stream.size // 512), description="btrfs", sector_size=512,
                    filesystem="btrfs")
    try:
        fs = BtrfsFileSystem(stream, row)
        entries = list(fs.walk("/", recursive=True, mediator=_Notices()))
    except BitWitnessError as exc:
        _refused(exc)
        return
    for entry in islice(entries, FS_ENTRIES):
        safe_name(entry.name)
        shown(entry.path)
        steps: list[Callable[[], object]] = [
            lambda e=entry: fs.stat(e), lambda e=entry: fs.read(e, 0, 4096),
            lambda e=entry: fs.by_address(str(e.inode)), lambda e=entry: fs.lookup(e.path),
            lambda e=entry: fs.names(e.path), lambda e=entry: _content(fs, e)]  # type: ignore[arg-type]
        for step in steps:
            try:
                step()
            except BitWitnessError as exc:
                _refused(exc)


#: Inodes :func:`tsk_triple_indirect` reads at most (more: it answers True, unread).
_TRAP_SCAN = 1 << 16


def tsk_triple_indirect(stream: ImageStream, base: int) -> bool:
    """An inode of the ext volume at ``base`` whose block map reaches the triple-indirect
    block (or more inodes than :data:`_TRAP_SCAN`, not read): a case The Sleuth Kit takes
    unbounded time over, in native code. Building such a file's runs, its
    ``unix_make_data_run_indirect`` walks every pointer slot of the triple-indirect tree (p^2
    level-1 calls for p pointers a block, past the file's end too) and appends each run to a
    list it walks from the start (quadratic): 26 s for an honest sparse 80 MiB file on 1 KiB
    blocks, hours on 4 KiB blocks. pytsk3 builds the runs of every file it hands out (the
    ``File`` constructor asks for the attribute count), so listing the folder (or
    ``$OrphanFiles``) that holds such an inode stalls inside TSK, where no bound of ours
    reaches. Inputs with one are left out here; the fix belongs to TSK (stop at the file's
    length) or to a reader of our own. The inodes are found where TSK finds them: the group
    descriptors right after the superblock, whatever ``s_first_data_block`` says."""
    import struct

    from bitwitness.report.browse.moretimes import ext_geometry

    geometry = ext_geometry(stream, base)
    if geometry is None:
        return False
    block, first_data, per_group, inode_size, desc_size, _ = geometry
    count = struct.unpack("<I", stream.pread(base + 1024, 4).ljust(4, b"\0"))[0]
    if count > _TRAP_SCAN or count * inode_size > 64 << 20:
        return True
    pointers = block // 4
    limit = (12 + pointers + pointers * pointers) * block
    del first_data  # TSK finds the descriptors after the superblock, whatever this says
    table = base + max(2048, block)
    for group in range(-(-count // per_group)):
        desc = stream.pread(table + group * desc_size, desc_size).ljust(64, b"\0")
        first = struct.unpack_from("<I", desc, 8)[0]
        if desc_size >= 64:
            first |= struct.unpack_from("<I", desc, 40)[0] << 32
        inodes = stream.pread(base + first * block, min(per_group, count) * inode_size)
        for at in range(0, len(inodes) - 127, inode_size):
            flags = struct.unpack_from("<I", inodes, at + 32)[0]
            size = struct.unpack_from("<I", inodes, at + 4)[0] | struct.unpack_from(
                "<I", inodes, at + 108)[0] << 32
            if not flags & 0x1008_0000 and size > limit:  # neither extents nor inline data
                return True
    return False


def _browse_entry(fs: BrowsableFileSystem, entry: Entry) -> None:
    """What ``stat``, ``cat`` and ``export`` ask of one entry; each may refuse on its own (the
    data's place and the overwritten note only where the reader has them: TSK's)."""
    from bitwitness.report.browse.filesystem import FileSystem

    steps: list[Callable[[], object]] = [
        lambda: fs.stat(entry), lambda: fs.read(entry, 0, 4096),
        lambda: fs.content_note(entry), lambda: fs.file_name_times(entry),
        lambda: fs.by_address(str(entry.inode)), lambda: _content(fs, entry)]
    if isinstance(fs, FileSystem):
        tsk = fs
        steps += [lambda: tsk.overwritten_note(entry), lambda: tsk.media_extents(entry),
                  lambda: tsk.compressed_note(entry), lambda: tsk.encrypted_note(entry)]
    if entry.path:
        steps += [lambda: fs.lookup(entry.path), lambda: fs.names(entry.path)]
    for step in steps:
        try:
            step()
        except BitWitnessError as exc:
            _refused(exc)


def _content(fs: BrowsableFileSystem, entry: Entry) -> None:
    read = 0
    for block in fs.iter_content(entry, FS_READ // 4):
        read += len(block)
        if read >= FS_READ:
            break


# --- case files ----------------------------------------------------------------------------------


def case_yaml(data: bytes) -> None:
    """``case.yaml``: the case file every case command loads."""
    from bitwitness.case import Case

    folder = scratch().folder("case")
    (folder / "case.yaml").write_bytes(data)
    try:
        case = Case.load(folder)
        _ = case.examiner, case.fields
    except BitWitnessError:
        return


def custody(data: bytes) -> None:
    """``custody.jsonl`` and its anchor ``custody.head``: the input's first line is the anchor,
    the rest the log; the chain is checked and what is left of the events read."""
    from bitwitness.custody import CustodyLog

    folder = scratch().folder("custody")
    head, _, log = data.partition(b"\n")
    (folder / "custody.head").write_bytes(head)
    (folder / "custody.jsonl").write_bytes(log)
    custody_log = CustodyLog(folder / "custody.jsonl")
    try:
        check = custody_log.verify()
        json.dumps([check.ok, check.first_bad_line, check.reason, list(check.warnings)])
        custody_log.events(strict=False)
    except BitWitnessError:
        return


#: Every target by name, with the largest input it is fuzzed with.
TARGETS: dict[str, tuple[Callable[[bytes], None], int]] = {
    "ewf": (ewf, 1 << 16),
    "ewf-ltree": (ewf_ltree, 1 << 16),
    "vhd": (vhd, 1 << 16),
    "vmdk": (vmdk, 1 << 16),
    "split-raw": (split_raw, 4096),
    "logs": (logs, 1 << 16),
    "partitions": (partitions, 1 << 18),
    "case-yaml": (case_yaml, 1 << 15),
    "custody": (custody, 1 << 16),
    "fs-times": (fs_times, 1 << 17),
    "ext-superblock": (ext_superblock, 1 << 16),
    "qcow": (qcow, 1 << 16),
    "ova": (ova, 1 << 17),
    "vhdx": (vhdx, 5 << 18),
    "vdi": (vdi, 1 << 16),
    "qed": (qed, 1 << 16),
    "android-sparse": (android_sparse, 1 << 16),
    "ntfsclone": (ntfsclone, 1 << 20),
    "partclone": (partclone, 1 << 16),
    "udif": (udif, 1 << 16),
    "apple-sparse": (apple_sparse, 1 << 16),
    "parallels": (parallels, 1 << 16),
    "ewf2": (ewf2, 1 << 16),
    "aff": (aff, 1 << 16),
    "aff4": (aff4, 1 << 16),
    "luks": (luks, 1 << 18),
    "filesystem": (filesystem, 1 << 19),
    "btrfs": (btrfs, 1 << 19),
}

#: Targets the checksum-keeping mutator applies to (see :mod:`fuzz.checksums`).
CHECKSUMMED = ("ewf", "vhd", "vhdx", "ewf2", "udif", "btrfs", "filesystem", "partitions")


def run_file(target: str, path: Path) -> None:
    """Run one target on one input file (for replays and regression tests)."""
    TARGETS[target][0](path.read_bytes())


def environment() -> dict[str, str]:
    """What a worker process needs: the repository on the import path."""
    repo = str(Path(__file__).resolve().parent.parent)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (repo, env.get("PYTHONPATH", "")) if p)
    return env
