"""ntfsclone special images (``ntfsclone --save-image``), read as the NTFS volume they hold, by our
own code; ``ntfsclone --restore-image`` is the second reader.

Why a reader and not raw: the file is not the volume. ntfsclone (ntfs-3g's ntfsprogs) saves only
the clusters the volume's ``$Bitmap`` marks in use, as a stream of commands that walks the volume
from cluster 0 (all little-endian, the format ntfsclone has written since image version 10.0):

* a header: the magic ``"\\0ntfsclone-image"`` (16 bytes), major and minor version (10.0 or
  10.1), the cluster size (32 bits), the device size in bytes, the volume's clusters and how many
  of them were in use (64 bits each), then at offset 46 the file offset where the commands
  begin (56 in every writer: the 50-byte header padded to 8);
* the commands: ``0x00`` and a 64-bit count, a gap of that many clusters not in use (nothing
  stored); ``0x01`` and one cluster's bytes, the next cluster in use.

The commands cover the volume's clusters exactly. Image version 10.1 adds one more ``0x01``
record after them, the "cluster" that follows the volume, which holds the backup boot sector
(NTFS leaves the device's last sector outside the volume); it holds only the device's bytes
there (``device size - clusters * cluster size``, at most a cluster), and it is not counted in the
header's clusters in use. 10.0 images end without it. The media here is what
``ntfsclone --restore-image -O out`` writes: the stored clusters in place and zeros for the
rest (it seeks over the gaps of a sparse file), ``clusters * cluster size`` bytes and then the
bytes of the record after the volume, when there is one. Only where no record follows the volume
(a 10.0 image) does ntfsclone's file end before the volume does, at the last cluster it wrote
(2022's; the 2012 one padded it to 512 bytes past the volume): the media still covers the volume
the header declares, its free clusters at the end read as zeros like the others. Those zeros are
not evidence: the clusters were free, and what a deleted file left in them was never saved (said
in ``info``).

The commands are walked once when the image is opened, read from the file 8 MiB at a time. A run
of consecutive ``0x01`` records has a fixed stride (1 + cluster size), so a run is measured by
taking every stride-th byte of the window (a C-speed slice) and counting the leading ``0x01``
bytes, not one Python step per cluster. Each run of stored clusters is indexed in three arrays
(first cluster, file offset of its first byte, clusters: 24 bytes a run, at most
:data:`MAX_RECORDS` gap records and runs together), the gaps being what lies between them; a read
finds its run by bisection. What does not add up fails closed in one line naming the file offset:
a version other than 10.x (earlier images are in their maker's byte order), a cluster size that
is not a power of two from 512 to 64 KiB (what ntfsclone writes and reads), a header whose
clusters need a ``$Bitmap`` larger than the file (a header claiming petabytes), a device smaller
than the volume, an unknown command byte, a gap of zero clusters (ntfsclone refuses it too) or
past the volume's end, a negative gap (a ``--metadata`` image, whose clusters come out of order:
not a copy of the volume), a stream that ends before covering the volume, more stored clusters
than the header says were in use. Fewer stored clusters than that, two gaps in a row and bytes
after the commands are left for ``verify`` to report (:func:`ntfsclone_checks`):
``--restore-image`` reads such a file without a word, and so do we.
"""

from __future__ import annotations

import os
import re
import struct
from array import array
from bisect import bisect_right
from dataclasses import dataclass
from pathlib import Path

from bitwitness.errors import (
    BitWitnessError,
    CorruptImageError,
    UnsupportedFormatError,
)
from bitwitness.images.checks import ContainerCheck, Findings
from bitwitness.images.filestream import FileImageStream
from bitwitness.images.raw import read_exact
from bitwitness.images.restored import RestoredStream
from bitwitness.images.splitraw import refuse_split_container
from bitwitness.stream import ImageStream, StreamInfo

MAGIC = b"\x00ntfsclone-image"
#: magic, major, minor, cluster size, device size, clusters, clusters in use, data offset
HEADER = struct.Struct("<16sBBIqqqI")
MAJOR = 10
GAP, DATA = 0x00, 0x01
_COUNT = struct.Struct("<q")
GAP_RECORD = 1 + _COUNT.size
#: Cluster sizes ntfsclone writes and restores (its buffers hold 64 KiB).
MIN_CLUSTER, MAX_CLUSTER = 512, 65536
#: Gap records and stored runs indexed at most: 24 bytes a run (192 MiB for this many). A real
#: image has one gap and one run per free-space fragment of the volume; a file needing more is
#: refused in one line rather than indexed.
MAX_RECORDS = 1 << 23
#: The commands are read from the file this many bytes at a time (at least two records).
_WINDOW = 8 << 20
#: The header's fields' offsets, for the messages.
_AT_CLUSTER, _AT_DEVICE, _AT_CLUSTERS, _AT_INUSE, _AT_DATA = 18, 22, 30, 38, 46


@dataclass(frozen=True)
class NtfscloneHeader:
    """The header, checked against the format's rules and the file."""

    major: int
    minor: int
    cluster_size: int
    device_size: int
    clusters: int  #: the volume's clusters (the commands cover this many, then the last record)
    inuse: int  #: clusters in use, as ntfsclone counted them (the last record not included)
    data_offset: int  #: file offset of the first command

    @property
    def last_size(self) -> int:
        """Bytes the record after the volume's clusters holds: the device's bytes there."""
        return min(self.cluster_size, self.device_size - self.clusters * self.cluster_size)


def read_header(fd: int, path: Path, file_size: int) -> NtfscloneHeader:
    """The header, checked: what this reader reads, or one line saying why not."""
    if file_size < HEADER.size:
        raise CorruptImageError(f"ntfsclone header: the file of {file_size} bytes is shorter "
                                f"than the {HEADER.size}-byte header", path=path)
    (magic, major, minor, cluster, device, clusters, inuse,
     data_at) = HEADER.unpack(read_exact(fd, 0, HEADER.size, path))
    if magic != MAGIC:
        raise CorruptImageError("no ntfsclone magic (\\0ntfsclone-image) at offset 0", path=path)
    if major != MAJOR:
        raise UnsupportedFormatError(
            f"{path}: ntfsclone image version {major}.{minor} is not read by BitWitness (10.x "
            "is; images before 10.0 are in the byte order of the computer that made them: "
            "restore it with the ntfsclone that made it)")
    header = NtfscloneHeader(major, minor, cluster, device, clusters, inuse, data_at)
    _check_header(header, path, file_size)
    return header


def _check_header(header: NtfscloneHeader, path: Path, file_size: int) -> None:
    """The header's numbers against the format's rules and the file's size."""
    cluster, clusters = header.cluster_size, header.clusters

    def fail(what: str, at: int) -> CorruptImageError:
        return CorruptImageError(f"ntfsclone header: {what}", path=path, offset=at)

    if not MIN_CLUSTER <= cluster <= MAX_CLUSTER or cluster & (cluster - 1):
        raise fail(f"cluster size {cluster} (a power of two from {MIN_CLUSTER} to "
                   f"{MAX_CLUSTER} expected)", _AT_CLUSTER)
    if not HEADER.size <= header.data_offset <= file_size:
        raise fail(f"the commands begin at file offset {header.data_offset}, not between the "
                   f"end of the {HEADER.size}-byte header and the end of the {file_size}-byte "
                   "file", _AT_DATA)
    if clusters < 1:
        raise fail(f"a volume of {clusters} clusters", _AT_CLUSTERS)
    # Every volume's $Bitmap (a bit a cluster) is in use, so the image holds it whole.
    room = file_size - header.data_offset
    if -(-clusters // 8) > room:
        raise fail(f"a volume of {clusters} clusters of {cluster} bytes has a $Bitmap of "
                   f"{-(-clusters // 8)} bytes, which the image would hold; the file holds "
                   f"{room} bytes of commands", _AT_CLUSTERS)
    if header.device_size < clusters * cluster:
        raise fail(f"a device of {header.device_size} bytes, smaller than the volume's "
                   f"{clusters} clusters of {cluster} bytes", _AT_DEVICE)
    if not 0 <= header.inuse <= clusters:
        raise fail(f"{header.inuse} clusters in use, of a volume of {clusters}", _AT_INUSE)


@dataclass
class Walk:
    """What the walk of the commands found: the index of the stored runs and the counts the
    checks report."""

    starts: array[int]  #: first cluster of each run of stored clusters
    offsets: array[int]  #: file offset of the first byte of the run's first cluster
    counts: array[int]  #: clusters in the run
    stored: int = 0  #: stored clusters among the volume's (the last record not counted)
    gaps: int = 0  #: gap records
    repeated_gaps: int = 0  #: gaps right after another gap (ntfsclone writes none)
    first_repeated_gap: int = -1  #: file offset of the first
    last_record: bool = False  #: the record after the volume (backup boot sector) is there
    end: int = 0  #: file offset after the last command


def walk(fd: int, path: Path, header: NtfscloneHeader, file_size: int, *,
         window: int | None = None) -> Walk:
    """Walk the commands once, checking each against the header and the file; index the runs
    of stored clusters. Runs of ``0x01`` records are measured a window of the file at a time
    (:data:`_WINDOW` bytes, or ``window``: the fuzzer makes it small, to cross its edges
    often); gap records are read one by one."""
    return _Walker(fd, path, header, file_size, window or _WINDOW).run()


class _Walker:
    """The state of one walk: where it is in the file (``at``) and in the volume (``pos``),
    the window of the file it reads from, and what it found."""

    def __init__(self, fd: int, path: Path, header: NtfscloneHeader, file_size: int,
                 window: int) -> None:
        self.fd, self.path, self.header, self.file_size = fd, path, header, file_size
        self.window_size = window
        self.stride = header.cluster_size + 1
        self.found = Walk(array("Q"), array("Q"), array("Q"))
        self.at, self.pos, self.records = header.data_offset, 0, 0
        self.window, self.window_at = b"", self.at
        self.after_gap = False

    def have(self, need: int) -> bool:
        """Whether the window holds ``need`` bytes at ``at``, reading it afresh if not."""
        if self.window_at <= self.at and self.at + need <= self.window_at + len(self.window):
            return True
        self.window, self.window_at = (os.pread(self.fd, max(self.window_size, need), self.at),
                                       self.at)
        return need <= len(self.window)

    def fail(self, what: str, cluster: int | None = None, at: int | None = None
             ) -> CorruptImageError:
        return CorruptImageError(
            f"ntfsclone command at cluster {self.pos if cluster is None else cluster} of "
            f"{self.header.clusters}: {what}", path=self.path,
            offset=self.at if at is None else at)

    def run(self) -> Walk:
        clusters = self.header.clusters
        while self.pos <= clusters:
            if not self.have(1):
                if self.pos == clusters:
                    break  # a 10.0 image: no record after the volume
                raise self.fail(f"the file ends at offset {self.at}; the commands cover "
                                f"{self.pos} of the volume's {clusters} clusters")
            self.records += 1
            if self.records > MAX_RECORDS:
                raise UnsupportedFormatError(
                    f"{self.path}: the ntfsclone image holds more than {MAX_RECORDS} gaps and "
                    "runs of clusters, more than BitWitness indexes (restore it with ntfsclone "
                    "--restore-image)")
            command = self.window[self.at - self.window_at]
            if command == GAP:
                self.gap()
            elif command != DATA:
                raise self.fail(f"command byte 0x{command:02x} (0x00, a gap, or 0x01, a "
                                "cluster, expected)")
            elif self.pos == clusters:
                self.last_record()
                break
            else:
                self.stored_run()
        self.found.end = self.at
        return self.found

    def gap(self) -> None:
        """A gap record: clusters not in use."""
        found, at = self.found, self.at
        if not self.have(GAP_RECORD):
            raise self.fail(f"a gap record runs past the end of the {self.file_size}-byte file")
        (count,) = _COUNT.unpack_from(self.window, at - self.window_at + 1)
        if count < 0:
            raise UnsupportedFormatError(
                f"{self.path}: a gap of {count} clusters at file offset {at}: clusters stored "
                "out of order, as in an ntfsclone --metadata image (its metadata only, with "
                "file names and times wiped): not a copy of the volume, not read by BitWitness")
        if count == 0:
            raise self.fail("a gap of zero clusters (ntfsclone writes none, and refuses one)")
        if count > self.header.clusters - self.pos:
            raise self.fail(f"a gap of {count} clusters runs past the end of the volume")
        found.gaps += 1
        if self.after_gap:
            found.repeated_gaps += 1
            if found.first_repeated_gap < 0:
                found.first_repeated_gap = at
        self.pos += count
        self.at += GAP_RECORD
        self.after_gap = True

    def stored_run(self) -> None:
        """A run of ``0x01`` records inside the volume, as far as the window holds it: every
        stride-th byte from here, the leading ``0x01`` bytes counted at C speed."""
        header, stride = self.header, self.stride
        self.after_gap = False
        if not self.have(stride):
            raise self.fail(f"a cluster of {header.cluster_size} bytes runs past the end of "
                            f"the {self.file_size}-byte file")
        rel = self.at - self.window_at
        fits = min(header.clusters - self.pos, (len(self.window) - rel) // stride)
        # a few records first, then 16 times more while they are all clusters: a short run
        # (a fragmented volume) costs no slice of the whole window
        run = probe = 0
        while run == probe < fits:
            probe = min(fits, 16 * probe or 16)
            marks = self.window[rel : rel + (probe - 1) * stride + 1 : stride]
            run = probe - len(marks.lstrip(b"\x01"))
        found = self.found
        if found.stored + run > header.inuse:
            extra = header.inuse - found.stored
            raise self.fail(f"stored cluster {header.inuse + 1}; the header says "
                            f"{header.inuse} were in use", self.pos + extra,
                            self.at + extra * stride)
        _add_run(found, self.pos, self.at + 1, run, stride)
        found.stored += run
        self.pos += run
        self.at += run * stride

    def last_record(self) -> None:
        """The record after the volume's clusters: the backup boot sector's cluster, holding
        only the device's bytes there."""
        size = self.header.last_size
        if self.at + 1 + size > self.file_size:
            raise self.fail(f"its {size} bytes run past the end of the {self.file_size}-byte "
                            "file")
        _add_run(self.found, self.pos, self.at + 1, 1, self.stride)
        self.found.last_record = True
        self.pos += 1
        self.at += 1 + size


def _add_run(found: Walk, first: int, offset: int, count: int, stride: int) -> None:
    """Index ``count`` clusters from ``first`` stored at file ``offset``: a new run, or the
    last one extended when they follow it in the volume and in the file (a run measured over
    two windows)."""
    if (found.starts and found.starts[-1] + found.counts[-1] == first
            and found.offsets[-1] + found.counts[-1] * stride == offset):
        found.counts[-1] += count
        return
    found.starts.append(first)
    found.offsets.append(offset)
    found.counts.append(count)


class NtfscloneStream(FileImageStream):
    """The NTFS volume an ntfsclone image holds, as ``ntfsclone --restore-image`` writes it:
    the stored clusters in place, zeros for the rest."""

    def _load(self) -> int:
        self.file_size = os.fstat(self._fd).st_size
        self.header = read_header(self._fd, self.path, self.file_size)
        self.walked = walk(self._fd, self.path, self.header, self.file_size)
        header = self.header
        self._volume = header.clusters * header.cluster_size
        self._last = header.last_size if self.walked.last_record else 0
        self.alignment = header.cluster_size
        #: one stored cluster and the command byte after it
        self._record = struct.Struct(f"{header.cluster_size}sx")
        return self._volume + self._last

    def _read_aligned(self, offset: int, length: int) -> bytes:
        """The media at ``offset`` (a whole number of clusters, the last one perhaps short),
        assembled in one buffer of zeros: only the stored clusters are read."""
        out = bytearray(length)
        cluster = self.header.cluster_size
        walked = self.walked
        starts, counts = walked.starts, walked.counts
        first, end = offset // cluster, -(-(offset + length) // cluster)
        i = max(0, bisect_right(starts, first) - 1)
        while i < len(starts) and starts[i] < end:
            lo, hi = max(starts[i], first), min(starts[i] + counts[i], end)
            if lo < hi:
                self._copy_run(out, offset, i, lo, hi)
            i += 1
        return bytes(out)

    def _copy_run(self, out: bytearray, offset: int, i: int, lo: int, hi: int) -> None:
        """Clusters ``lo`` to ``hi`` (excluded) of run ``i`` into ``out`` (which begins at media
        ``offset``): one read of the file, its command bytes stepped over."""
        cluster = self.header.cluster_size
        stride = cluster + 1
        at = self.walked.offsets[i] + (lo - self.walked.starts[i]) * stride
        full = min(hi, self.header.clusters) - lo
        dst = lo * cluster - offset
        if full > 0:
            # The file holds cluster, command byte, cluster...: one read, cut by struct at C
            # speed (2.4 GB/s for 512-byte clusters, where a slice a cluster gives 0.6); a zero
            # byte stands for the command byte after the last cluster, which may not be there.
            data = read_exact(self._fd, at, (full - 1) * stride + cluster, self.path) + b"\0"
            out[dst : dst + full * cluster] = b"".join(
                [piece for (piece,) in self._record.iter_unpack(data)])
        if hi > self.header.clusters:  # the record after the volume, the media's last bytes
            tail = self._volume - offset
            out[tail:] = read_exact(self._fd, at + full * stride, len(out) - tail, self.path)

    @property
    def info(self) -> StreamInfo:
        header, walked = self.header, self.walked
        cluster = header.cluster_size
        unsaved = self.size - walked.stored * cluster - self._last
        details: dict[str, object] = {
            "reader": "bitwitness",
            "ntfsclone_version": f"{header.major}.{header.minor}",
            "cluster_size": cluster,
            "clusters": header.clusters,
            "device_size": header.device_size,
            "clusters_in_use": (f"{header.inuse} (the header); {walked.stored} stored, "
                                f"{walked.gaps} gaps"),
            "not_saved": (f"{unsaved} bytes in clusters not in use, which ntfsclone does not "
                          "save: read as zeros, they are not evidence (what deleted files "
                          "left in free clusters is absent)"),
            "backup_boot_sector": (f"saved ({self._last} bytes after the volume)"
                                   if walked.last_record else
                                   "not saved (an image before version 10.1): the media ends "
                                   "with the volume"),
        }
        trailing = self.file_size - walked.end
        if trailing:
            details["bytes_after_the_commands"] = f"{trailing} (not part of the media, not read)"
        return StreamInfo(format="ntfsclone", files=(self.path,), media_size=self.size,
                          sector_size=self.sector_size, details=details)


# --- what verify checks -----------------------------------------------------------------------


#: The NTFS boot sector's OEM name, at offset 3.
_NTFS_OEM = b"NTFS    "


def ntfsclone_checks(path: Path, opened: NtfscloneStream | None = None
                     ) -> tuple[ContainerCheck, ...]:
    """The command stream against what the header and the volume record: the stored clusters
    against the header's count of clusters in use, the record after the volume that a 10.1
    image keeps (the backup boot sector), the volume's boot sector (cluster 0, in use in every
    NTFS) against the header's cluster size and clusters, and what ntfsclone never writes: two
    gaps in a row, bytes after the commands. What the reader refuses is reported as the
    check's failure. ``opened``: the image already open (its walk is used, not made again;
    it is left open)."""
    what = "ntfsclone command stream"
    if opened is not None:
        return (_check_walk(path, opened, what),)
    try:
        image = NtfscloneStream(path)
    except BitWitnessError as exc:
        return (ContainerCheck(what, False, str(exc)),)
    with image:
        return (_check_walk(path, image, what),)


def _check_walk(path: Path, image: NtfscloneStream, what: str) -> ContainerCheck:
    """What :func:`ntfsclone_checks` finds in the walk of an opened image."""
    header, walked = image.header, image.walked
    findings = Findings()
    if walked.stored != header.inuse:
        findings.add(f"the header (file offset {_AT_INUSE}) says {header.inuse} clusters "
                     f"were in use; the commands store {walked.stored}")
    if header.minor >= 1 and not walked.last_record:
        findings.add(f"a version {header.major}.{header.minor} image ends with the record "
                     "of the backup boot sector's cluster; this one ends without it (file "
                     f"offset {walked.end})")
    if walked.repeated_gaps:
        findings.add(f"{walked.repeated_gaps} gap(s) right after another gap, the first at "
                     f"file offset {walked.first_repeated_gap} (ntfsclone writes none)")
    trailing = image.file_size - walked.end
    if trailing:
        findings.add(f"{trailing} bytes after the last command, from file offset "
                     f"{walked.end} (ntfsclone writes none; --restore-image ignores them)")
    boot = _boot_sector_problem(image)
    if boot:
        findings.add(boot)
    clean = (f"{walked.stored} stored clusters and {walked.gaps} gaps cover the volume's "
             f"{header.clusters} clusters of {header.cluster_size} bytes, "
             f"{header.inuse} in use as the header says; "
             + ("the backup boot sector's cluster after them; " if walked.last_record
                else "no backup boot sector (a 10.0 image); ")
             + "the boot sector agrees with the header")
    return findings.check(what, path.name, clean)


def _boot_sector_problem(image: NtfscloneStream) -> str | None:
    """What the volume's boot sector (cluster 0) says against the header, or None when they
    agree: bytes per sector times sectors per cluster is the cluster size, and the volume's
    sectors make the header's clusters (ntfs-3g's own arithmetic)."""
    walked = image.walked
    if not walked.starts or walked.starts[0] != 0:
        return "cluster 0 (the NTFS boot sector, always in use) is not stored"
    boot = image.pread(0, 512)
    if boot[3:11] != _NTFS_OEM:
        return (f"cluster 0 (file offset {walked.offsets[0]}) does not hold an NTFS boot "
                "sector (no 'NTFS' name at its offset 3)")
    per_sector, code = struct.unpack_from("<HB", boot, 11)
    (sectors,) = struct.unpack_from("<q", boot, 0x28)
    per_cluster = 1 << (256 - code) if code > 0x80 else code
    header = image.header
    if per_sector * per_cluster != header.cluster_size:
        return (f"the boot sector gives clusters of {per_sector} x {per_cluster} bytes; the "
                f"header (file offset {_AT_CLUSTER}) says {header.cluster_size}")
    if sectors * per_sector // header.cluster_size != header.clusters:
        return (f"the boot sector gives a volume of {sectors} sectors of {per_sector} bytes, "
                f"{sectors * per_sector // header.cluster_size} clusters; the header (file "
                f"offset {_AT_CLUSTERS}) says {header.clusters}")
    return None


# --- the second reader ------------------------------------------------------------------------


class NtfscloneRestoreStream(RestoredStream):
    """The volume as ntfs-3g's own tool rebuilds it: ``ntfsclone --restore-image --overwrite``
    writes it to a temporary file (sparse: it seeks over the gaps) from a copy of the image
    (:class:`RestoredStream`). Where the file ends before the volume (a 10.0 image, with no
    record after the volume: ntfsclone seeks over a last gap without writing), it is read as
    zeros up to the volume's size that ntfsclone itself reports ("Image volume size"), as a
    restore onto a device of that size would hold it."""

    program = "ntfsclone"
    package = "ntfs-3g"
    format_name = "ntfsclone"

    def command(self, exe: str, copies: list[Path], media: Path, folder: Path) -> list[str]:
        return [exe, "--restore-image", "--overwrite", str(media), str(copies[0])]

    def failure(self, stderr: str, stdout: str) -> str | None:
        lines = [line.strip() for line in f"{stderr}\n{stdout}".splitlines() if "ERROR" in line]
        return lines[-1] if lines else None

    def version(self, exe: str, said: str) -> str:
        found = re.search(r"ntfsclone v\S+ \([^)]*\)", said)
        return found.group(0) if found else "ntfsclone"

    def media_size(self, said: str) -> int:
        reported = re.search(r"Image volume size\s*:\s*(\d+) bytes", said)
        return int(reported.group(1)) if reported else 0


class NtfscloneFormat:
    """ntfsclone special images (``ntfsclone --save-image``: Clonezilla's NTFS partitions,
    ntfs-3g users' backups)."""

    name = "ntfsclone"
    containers = ("ntfsclone",)

    def probe(self, path: Path, head: bytes) -> bool:
        return head.startswith(MAGIC)

    def claims_name(self, path: Path) -> bool:
        return False  # recognised by its signature only

    def files(self, path: Path) -> list[Path]:
        return [path]

    def open(self, path: Path) -> ImageStream:
        refuse_split_container(path, "ntfsclone image")
        return NtfscloneStream(path)

    def second_reader(self, path: Path, stream: ImageStream) -> ImageStream | None:
        """ntfs-3g's ``ntfsclone --restore-image``: it shares no code with ours."""
        return NtfscloneRestoreStream([path], stream.size)

    def self_checks(self, path: Path, stream: ImageStream) -> tuple[ContainerCheck, ...]:
        """The command stream against the header and the volume (:func:`ntfsclone_checks`),
        from the walk the opened stream made."""
        return ntfsclone_checks(path, stream if isinstance(stream, NtfscloneStream) else None)


FORMAT = NtfscloneFormat()
