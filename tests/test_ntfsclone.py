"""ntfsclone special images, read as the NTFS volume they hold, checked against ntfsclone itself.

Every volume is made by ``mkntfs -F -q -c CLUSTER`` on a file whose size is not a multiple of the
cluster size (and one that is), files are copied in with ``ntfscp``, and a file is written and
deleted through ntfs-3g's FUSE driver (its clusters freed: ntfsclone does not save them). The
images are ``ntfsclone --save-image -o IMG VOL`` (and ``-o -``, to standard output); the media our
reader gives must be what ``ntfsclone --restore-image -O OUT IMG`` writes (ntfs-3g's reader, not
ours), hashed by ``sha256sum``. Damaged images are made by changing the bytes of real ones at the
places the published layout gives (ntfs-3g's ``ntfsprogs/ntfsclone.c``: the header, then
``0x00`` + 64-bit count for a gap, ``0x01`` + a cluster for a stored one); :func:`commands`
finds those places, to aim the damage (the reader is checked against ntfsclone, not this).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import struct
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import pytest
from conftest import require_root, require_tool, run_bitwitness
from contract import check_stream_contract
from test_mount import strict_atime_dir  # noqa: F401 - a fixture

from bitwitness.errors import (
    BitWitnessError,
    CorruptImageError,
    ExitCode,
    NoSecondReader,
    UnsupportedFormatError,
)
from bitwitness.evidence_io import read_head
from bitwitness.images import ntfsclone
from bitwitness.images.ntfsclone import FORMAT, NtfscloneStream, ntfsclone_checks
from bitwitness.stream import ImageStream

HEADER = struct.Struct("<16sBBIqqqI")
#: header fields' offsets (ntfsclone.c's struct image_hdr, packed)
MINOR_AT, CLUSTER_AT, DEVICE_AT, CLUSTERS_AT, INUSE_AT, DATA_AT = 17, 18, 22, 30, 38, 46
MIB = 1 << 20
#: cluster size -> volume size (not a multiple of the cluster size), and one that is
VOLUMES = {"512": (512, 6 * MIB + 700), "4096": (4096, 12 * MIB + 1536),
           "65536": (65536, 40 * MIB + 2560), "4096-exact": (4096, 8 * MIB)}
#: what the deleted file holds, and nothing else on the volume
MARKER = b"BitWitness deleted ntfsclone evidence\n"
#: the most a hostile image may take to be refused
QUICK_S = 5.0


class Volume(NamedTuple):
    cluster: int
    volume: Path  #: the NTFS volume itself
    image: Path  #: ntfsclone --save-image -o
    piped: Path  #: ntfsclone --save-image -o - (standard output)
    restored: Path  #: ntfsclone --restore-image of ``image``
    deleted: bool  #: a file was written and deleted through FUSE


def _run(*args: str | Path) -> subprocess.CompletedProcess[bytes]:
    done = subprocess.run([str(a) for a in args], capture_output=True, check=False)
    assert done.returncode == 0, (args, done.stdout[-400:], done.stderr[-400:])
    return done


def restore(image: Path, out: Path) -> Path:
    """What ntfs-3g's own reader makes of ``image``."""
    _run("ntfsclone", "-q", "--restore-image", "--overwrite", out, image)
    return out


def sha256sum(path: Path) -> str:
    return _run("sha256sum", path).stdout.split()[0].decode()


def media_sha256(stream: ImageStream) -> str:
    digest = hashlib.sha256()
    for block in stream.iter_blocks(1 << 20):
        digest.update(block)
    return digest.hexdigest()


def _delete_through_fuse(volume: Path, mount: Path) -> bool:
    """Write a file of :data:`MARKER` through ntfs-3g, unmount, mount again and delete it:
    its clusters hold the marker and are free. False where FUSE cannot mount here."""
    if os.geteuid() != 0 or not Path("/dev/fuse").exists() or not shutil.which("ntfs-3g"):
        return False
    mount.mkdir(exist_ok=True)
    for step in ("write", "delete"):
        if subprocess.run(["ntfs-3g", str(volume), str(mount)], capture_output=True,
                          check=False).returncode != 0:
            return False
        try:
            if step == "write":
                (mount / "gone.bin").write_bytes(MARKER * (300_000 // len(MARKER)))
            else:
                (mount / "gone.bin").unlink()
        finally:
            _run("umount", mount)
    return True


@pytest.fixture(scope="module")
def volumes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Volume]:
    require_tool("mkntfs", "ntfscp", "ntfsclone", "sha256sum")
    base = tmp_path_factory.mktemp("ntfsclone")
    rng = random.Random(10)
    kept = base / "kept.bin"
    kept.write_bytes(rng.randbytes(300_000))
    notes = base / "notes.txt"
    notes.write_bytes(b"ntfsclone evidence notes\n" * 400)
    made = {}
    for name, (cluster, size) in VOLUMES.items():
        volume = base / f"{name}.vol"
        with volume.open("wb") as fh:
            fh.truncate(size)
        _run("mkntfs", "-F", "-q", "-c", cluster, volume)
        _run("ntfscp", "-f", volume, kept, "kept.bin")
        _run("ntfscp", "-f", volume, notes, "notes.txt")
        deleted = _delete_through_fuse(volume, base / "mnt")
        image = base / f"{name}.ntfsclone"
        _run("ntfsclone", "-q", "--save-image", "-o", image, volume)
        piped = base / f"{name}-stdout.ntfsclone"
        with piped.open("wb") as out:
            assert subprocess.run(["ntfsclone", "-q", "--save-image", "-o", "-", str(volume)],
                                  stdout=out, stderr=subprocess.DEVNULL,
                                  check=False).returncode == 0
        made[name] = Volume(cluster, volume, image, piped, restore(image, base / f"{name}.raw"),
                            deleted)
    return made


class Command(NamedTuple):
    at: int  #: file offset of the command byte
    kind: int  #: 0 gap, 1 cluster
    value: int  #: a gap's count; a cluster's number in the volume


def commands(data: bytes) -> list[Command]:
    """The commands of an image, by the published layout."""
    _magic, _major, _minor, cluster, device, clusters, _inuse, at = HEADER.unpack_from(data)
    pos, out = 0, []
    while pos <= clusters and at < len(data):
        if data[at] == 0:
            (count,) = struct.unpack_from("<q", data, at + 1)
            out.append(Command(at, 0, count))
            pos, at = pos + count, at + 9
        else:
            size = min(cluster, device - pos * cluster) if pos == clusters else cluster
            out.append(Command(at, 1, pos))
            pos, at = pos + 1, at + 1 + size
    return out


def damaged(tmp_path: Path, source: Path, change: Callable[[bytearray], bytes | bytearray]
            ) -> Path:
    data = bytearray(source.read_bytes())
    path = tmp_path / f"damaged-{source.name}"
    path.write_bytes(bytes(change(data)))
    return path


# --- the media ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(VOLUMES))
def test_media_is_what_restore_image_writes(volumes: dict[str, Volume], name: str) -> None:
    """Whole media (size, SHA-256) and reads at odd offsets and lengths, against ntfsclone's
    own restore; the image saved to standard output reads the same."""
    vol = volumes[name]
    expected = vol.restored.read_bytes()
    assert vol.volume.stat().st_size % vol.cluster or name == "4096-exact"
    with NtfscloneStream(vol.image) as stream:
        assert stream.size == len(expected) == vol.restored.stat().st_size
        assert media_sha256(stream) == sha256sum(vol.restored)
        rng = random.Random(vol.cluster)
        for _ in range(300):
            offset = rng.randrange(0, stream.size + 3000)
            n = rng.choice([1, 3, 511, 513, vol.cluster - 1, vol.cluster + 7, 3 * vol.cluster + 5,
                            200_001])
            assert stream.pread(offset, n) == expected[offset : offset + n], (offset, n)
        assert stream.walked.last_record, "a 10.1 image keeps the backup boot sector's cluster"
    with NtfscloneStream(vol.piped) as stream:
        assert media_sha256(stream) == sha256sum(vol.restored)


def test_stream_contract(volumes: dict[str, Volume]) -> None:
    vol = volumes["512"]
    with NtfscloneStream(vol.image) as stream:
        check_stream_contract(stream, vol.restored.read_bytes())


@pytest.mark.parametrize("name", ["512", "65536"])
def test_small_windows_give_the_same_media_and_index(volumes: dict[str, Volume], name: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs of stored clusters measured across many window boundaries (a window of three
    records and a bit) are indexed as when one window holds them, and read the same."""
    vol = volumes[name]
    with NtfscloneStream(vol.image) as stream:
        index = (list(stream.walked.starts), list(stream.walked.offsets),
                 list(stream.walked.counts))
    monkeypatch.setattr(ntfsclone, "_WINDOW", 3 * (vol.cluster + 1) + 5)
    with NtfscloneStream(vol.image) as stream:
        assert (list(stream.walked.starts), list(stream.walked.offsets),
                list(stream.walked.counts)) == index
        assert media_sha256(stream) == sha256sum(vol.restored)


def test_deleted_content_is_absent_and_info_says_why(volumes: dict[str, Volume]) -> None:
    """The deleted file's clusters hold its bytes on the volume, but ntfsclone did not save
    them (not in use): the media has zeros there, and ``info`` says such bytes are not
    evidence."""
    vol = volumes["4096"]
    if not vol.deleted:
        pytest.skip("cannot mount NTFS through FUSE here (root, /dev/fuse and ntfs-3g needed)")
    assert MARKER in vol.volume.read_bytes()
    with NtfscloneStream(vol.image) as stream:
        media = stream.read()
        info = stream.info
    assert MARKER not in media
    assert info.format == "ntfsclone"
    assert info.files == (vol.image,)
    header = HEADER.unpack_from(vol.image.read_bytes())
    assert info.details["cluster_size"] == header[3] == 4096
    assert info.details["clusters"] == header[5]
    assert "not evidence" in info.details["not_saved"]
    assert "absent" in info.details["not_saved"]
    assert info.details["backup_boot_sector"].startswith("saved")


def test_a_10_0_image_without_the_backup_boot_sector(volumes: dict[str, Volume],
                                                     tmp_path: Path) -> None:
    """Images before 10.1 end after the volume's clusters: the media is the volume, what
    ntfsclone restores of them, zeros after the last cluster it wrote (its file ends there: it
    seeks over a last gap), and the checks pass; the same file calling itself 10.1 fails them.
    The second reader reads ntfsclone's file up to the volume's size ntfsclone reports."""
    vol = volumes["4096"]
    data = vol.image.read_bytes()
    clusters = HEADER.unpack_from(data)[5]
    last = commands(data)[-1]
    assert last.kind == 1

    def as_10_0(data: bytearray) -> bytearray:
        data[MINOR_AT] = 0
        return data[: last.at]

    old = damaged(tmp_path, vol.image, as_10_0)
    written = restore(old, tmp_path / "old.raw").read_bytes()
    assert len(written) <= clusters * vol.cluster
    expected = written + bytes(clusters * vol.cluster - len(written))
    assert expected[: len(written)] == vol.restored.read_bytes()[: len(written)]
    with NtfscloneStream(old) as stream:
        assert not stream.walked.last_record
        assert stream.size == clusters * vol.cluster
        assert media_sha256(stream) == hashlib.sha256(expected).hexdigest()
        assert "not saved" in stream.info.details["backup_boot_sector"]
        other = FORMAT.second_reader(old, stream)
        assert other is not None
        with other:
            assert other.size == stream.size
            assert media_sha256(other) == hashlib.sha256(expected).hexdigest()
    assert ntfsclone_checks(old)[0].ok, ntfsclone_checks(old)
    mislabeled = damaged(tmp_path, vol.image, lambda data: data[: last.at])
    (check,) = ntfsclone_checks(mislabeled)
    assert not check.ok
    assert "backup boot sector" in check.detail
    assert f"file offset {last.at}" in check.detail


def test_a_last_record_shorter_than_512_bytes(volumes: dict[str, Volume], tmp_path: Path) -> None:
    """A device ending 100 bytes after the volume: the last record holds 100 bytes, and so
    does ntfsclone's restore after the volume; what follows the 100 bytes is not a command
    (ntfsclone stops), and the checks name those bytes."""
    vol = volumes["512"]
    data = vol.image.read_bytes()
    clusters = HEADER.unpack_from(data)[5]

    def short_device(data: bytearray) -> bytearray:
        struct.pack_into("<q", data, DEVICE_AT, clusters * vol.cluster + 100)
        return data

    short = damaged(tmp_path, vol.image, short_device)
    expected = restore(short, tmp_path / "short.raw")
    with NtfscloneStream(short) as stream:
        assert stream.size == expected.stat().st_size == clusters * vol.cluster + 100
        assert media_sha256(stream) == sha256sum(expected)
    (check,) = ntfsclone_checks(short)
    assert not check.ok
    assert f"{vol.cluster - 100} bytes after the last command" in check.detail


def test_a_gap_split_in_two_reads_but_is_reported(volumes: dict[str, Volume],
                                                 tmp_path: Path) -> None:
    """Two gaps in a row: ntfsclone writes none, but restores them without a word; so do we,
    and the checks name the second, with its file offset."""
    vol = volumes["4096"]
    gap = next(c for c in commands(vol.image.read_bytes()) if c.kind == 0 and c.value > 1)
    split = (b"\x00" + struct.pack("<q", 1)) + (b"\x00" + struct.pack("<q", gap.value - 1))
    odd = damaged(tmp_path, vol.image,
                  lambda data: data[: gap.at] + split + data[gap.at + 9 :])
    expected = restore(odd, tmp_path / "odd.raw")
    with NtfscloneStream(odd) as stream:
        assert media_sha256(stream) == sha256sum(expected) == sha256sum(vol.restored)
    (check,) = ntfsclone_checks(odd)
    assert not check.ok
    assert f"1 gap(s) right after another gap, the first at file offset {gap.at + 9}" in (
        check.detail)


# --- what verify checks ------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(VOLUMES))
def test_checks_pass_on_ntfsclone_images(volumes: dict[str, Volume], name: str) -> None:
    for image in (volumes[name].image, volumes[name].piped):
        (check,) = ntfsclone_checks(image)
        assert check.ok, check
        assert "the boot sector agrees with the header" in check.detail
        with NtfscloneStream(image) as stream:
            assert FORMAT.self_checks(image, stream) == (check,)


def _boot_sector_at(data: bytes) -> int:
    first = commands(data)[0]
    assert (first.kind, first.value) == (1, 0)  # cluster 0 is stored first
    return first.at + 1


@pytest.mark.parametrize(("change", "words"), [
    ("inuse", "says {inuse} clusters were in use; the commands store {stored}"),
    ("trailing", "17 bytes after the last command, from file offset {end}"),
    ("oem", "does not hold an NTFS boot sector"),
    ("sectors", "the boot sector gives a volume of"),
])
def test_checks_report_what_does_not_add_up(volumes: dict[str, Volume], tmp_path: Path,
                                            change: str, words: str) -> None:
    vol = volumes["4096"]
    original = vol.image.read_bytes()
    inuse = HEADER.unpack_from(original)[6]
    boot = _boot_sector_at(original)

    def edit(data: bytearray) -> bytearray:
        if change == "inuse":
            struct.pack_into("<q", data, INUSE_AT, inuse + 3)
        elif change == "trailing":
            data += b"\x01" * 17
        elif change == "oem":
            data[boot + 3 : boot + 11] = b"EXFAT   "
        else:
            (sectors,) = struct.unpack_from("<q", data, boot + 0x28)
            struct.pack_into("<q", data, boot + 0x28, sectors * 2)
        return data

    path = damaged(tmp_path, vol.image, edit)
    (check,) = ntfsclone_checks(path)
    assert not check.ok
    assert words.format(inuse=inuse + 3, stored=inuse, end=len(original)) in check.detail
    assert "\n" not in check.detail


def test_checks_report_what_the_reader_refuses(volumes: dict[str, Volume],
                                               tmp_path: Path) -> None:
    path = damaged(tmp_path, volumes["4096"].image, lambda data: data[:-5000])
    (check,) = ntfsclone_checks(path)
    assert not check.ok
    assert "runs past the end" in check.detail or "file ends" in check.detail


# --- hostile images ----------------------------------------------------------------------------


def refused(path: Path, kind: type[BitWitnessError], match: str) -> BitWitnessError:
    """Opening ``path`` fails quickly, with ``kind``, in one line naming the file."""
    started = time.monotonic()
    with pytest.raises(kind, match=match) as caught:
        NtfscloneStream(path)
    assert time.monotonic() - started < QUICK_S
    assert str(path) in str(caught.value)
    assert "\n" not in str(caught.value)
    return caught.value


def _header_field(at: int, fmt: str, value: int) -> Callable[[bytearray], bytearray]:
    def change(data: bytearray) -> bytearray:
        struct.pack_into(fmt, data, at, value)
        return data
    return change


HEADER_DAMAGE: dict[str, tuple[Callable[[bytearray], bytes | bytearray],
                               type[BitWitnessError], str, int | None]] = {
    "shorter than the header": (lambda d: d[:40], CorruptImageError, "shorter than", None),
    "bad magic": (lambda d: b"\x01" + d[1:], CorruptImageError, "no ntfsclone magic", None),
    "version 3.1": (_header_field(16, "<H", 1 << 8 | 3), UnsupportedFormatError,
                    "version 3.1", None),
    "version 11.0": (_header_field(16, "<H", 11), UnsupportedFormatError, "version 11.0",
                     None),
    "cluster size 3000": (_header_field(CLUSTER_AT, "<I", 3000), CorruptImageError,
                          "cluster size 3000", CLUSTER_AT),
    "cluster size 256": (_header_field(CLUSTER_AT, "<I", 256), CorruptImageError,
                         "cluster size 256", CLUSTER_AT),
    "cluster size 128 KiB": (_header_field(CLUSTER_AT, "<I", 1 << 17), CorruptImageError,
                             "cluster size 131072", CLUSTER_AT),
    "petabytes": (_header_field(CLUSTERS_AT, "<q", 1 << 40), CorruptImageError,
                  r"\$Bitmap of", CLUSTERS_AT),
    "negative clusters": (_header_field(CLUSTERS_AT, "<q", -5), CorruptImageError,
                          "a volume of -5 clusters", CLUSTERS_AT),
    "device smaller than the volume": (_header_field(DEVICE_AT, "<q", 4096), CorruptImageError,
                                       "a device of 4096 bytes", DEVICE_AT),
    "more in use than clusters": (_header_field(INUSE_AT, "<q", 1 << 40), CorruptImageError,
                                  "clusters in use", INUSE_AT),
    "commands before the header's end": (_header_field(DATA_AT, "<I", 12), CorruptImageError,
                                         "commands begin at file offset 12", DATA_AT),
    "commands past the file": (_header_field(DATA_AT, "<I", 0xFFFFFFF0), CorruptImageError,
                               "commands begin", DATA_AT),
}


@pytest.mark.parametrize("case", sorted(HEADER_DAMAGE))
def test_hostile_headers_are_refused(volumes: dict[str, Volume], tmp_path: Path,
                                     case: str) -> None:
    change, kind, match, offset = HEADER_DAMAGE[case]
    error = refused(damaged(tmp_path, volumes["4096"].image, change), kind, match)
    if offset is not None:
        assert isinstance(error, CorruptImageError)
        assert error.offset == offset
        assert f"file offset {offset}" in str(error)


def test_hostile_commands_are_refused_where_they_lie(volumes: dict[str, Volume],
                                                     tmp_path: Path) -> None:
    """Each damaged command is refused naming its own file offset."""
    source = volumes["4096"].image
    data = source.read_bytes()
    cmds = commands(data)
    header = HEADER.unpack_from(data)
    cluster, device, clusters, inuse = header[3], header[4], header[5], header[6]
    gap = next(c for c in cmds if c.kind == 0)
    stored = [c for c in cmds if c.kind == 1 and c.value < clusters]
    middle = stored[len(stored) // 2]
    mid_gap = next(c for c in cmds if c.kind == 0 and c.at > middle.at)

    def at(offset: int, value: bytes) -> Callable[[bytearray], bytearray]:
        def change(d: bytearray) -> bytearray:
            d[offset : offset + len(value)] = value
            return d
        return change

    cases: list[tuple[Callable[[bytearray], bytes | bytearray], type[BitWitnessError], str,
                      int]] = [
        (at(gap.at, b"\x02"), CorruptImageError, "command byte 0x02", gap.at),
        (at(gap.at + 1, struct.pack("<q", 0)), CorruptImageError, "a gap of zero clusters",
         gap.at),
        (at(gap.at + 1, struct.pack("<q", 1 << 62)), CorruptImageError,
         "runs past the end of the volume", gap.at),
        (at(gap.at + 1, struct.pack("<q", -3)), UnsupportedFormatError, "--metadata image",
         gap.at),
        (_header_field(INUSE_AT, "<q", inuse - 1), CorruptImageError,
         f"stored cluster {inuse}; the header says {inuse - 1}", stored[-1].at),
        (_header_field(CLUSTERS_AT, "<q", clusters - 1), CorruptImageError,
         "runs past the end of the volume", cmds[-2].at),
        (_header_field(CLUSTERS_AT, "<q", clusters + 1), CorruptImageError,
         "smaller than the volume", DEVICE_AT),
        (lambda d: _header_field(DEVICE_AT, "<q", device + cluster)(
            _header_field(CLUSTERS_AT, "<q", clusters + 1)(d)), CorruptImageError,
         f"a cluster of {cluster} bytes runs past the end", cmds[-1].at),
        (lambda d: d[: middle.at + 100], CorruptImageError,
         f"a cluster of {cluster} bytes runs past the end", middle.at),
        (lambda d: d[: mid_gap.at + 4], CorruptImageError, "a gap record runs past the end",
         mid_gap.at),
        (lambda d: d[: mid_gap.at], CorruptImageError, "the file ends at offset", mid_gap.at),
        (lambda d: d[:-1], CorruptImageError, "run past the end", cmds[-1].at),
    ]
    for change, kind, match, offset in cases:
        error = refused(damaged(tmp_path, source, change), kind, match)
        if isinstance(error, CorruptImageError):
            assert error.offset is not None
            if offset >= 0:
                assert error.offset == offset, (match, str(error))


def test_a_refused_image_releases_its_descriptor_once(volumes: dict[str, Volume],
                                                     tmp_path: Path) -> None:
    """The half-made stream lives while its error does; when it goes, IOBase's finaliser must
    not close the descriptor number again (by then another file's: the lowest free number)."""
    import gc

    bad = damaged(tmp_path, volumes["4096"].image, lambda data: data[:-5000])
    try:
        NtfscloneStream(bad)
    except CorruptImageError as exc:
        error = exc
    else:
        pytest.fail("the truncated image was opened")
    other = tmp_path / "other"
    other.write_bytes(b"x")
    with other.open("rb") as fh:
        del error
        gc.collect()
        assert fh.read() == b"x"  # still open


def test_a_metadata_image_is_refused_by_name(volumes: dict[str, Volume], tmp_path: Path) -> None:
    """``ntfsclone --metadata --save-image`` stores clusters out of order (negative gaps) with
    data wiped: not a copy of the volume."""
    image = tmp_path / "metadata.ntfsclone"
    _run("ntfsclone", "-q", "--metadata", "--save-image", "-o", image, volumes["4096"].volume)
    if not any(c.kind == 0 and c.value < 0 for c in commands(image.read_bytes())):
        pytest.skip("this ntfsclone wrote the metadata image in order")
    refused(image, UnsupportedFormatError, "--metadata image")


def test_too_many_records_are_refused(volumes: dict[str, Volume],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ntfsclone, "MAX_RECORDS", 3)
    refused(volumes["512"].image, UnsupportedFormatError, "more than 3 gaps and runs")


def test_a_fragmented_image_walks_in_bounded_time(tmp_path: Path) -> None:
    """50,000 one-cluster runs, each between gaps (the most records a file of that size can
    hold): walked and indexed, each run read where it lies."""
    cluster, runs = 512, 50_000
    clusters = 2 * runs
    head = HEADER.pack(b"\x00ntfsclone-image", 10, 1, cluster, (clusters + 1) * cluster,
                       clusters, runs, 56) + bytes(6)
    body = b"".join(b"\x01" + struct.pack("<I", n) * (cluster // 4) + b"\x00"
                    + struct.pack("<q", 1) for n in range(runs))
    path = tmp_path / "fragmented.ntfsclone"
    path.write_bytes(head + body + b"\x01" + bytes(cluster))
    started = time.monotonic()
    with NtfscloneStream(path) as stream:
        assert time.monotonic() - started < QUICK_S
        assert len(stream.walked.starts) == runs + 1
        for n in (0, 1, 777, runs - 1):
            assert stream.pread(2 * n * cluster, 2 * cluster) == (
                struct.pack("<I", n) * (cluster // 4) + bytes(cluster))


# --- the second reader -------------------------------------------------------------------------


def test_second_reader_agrees(volumes: dict[str, Volume]) -> None:
    vol = volumes["65536"]
    with NtfscloneStream(vol.image) as stream:
        other = FORMAT.second_reader(vol.image, stream)
        assert other is not None
        with other:
            assert other.size == stream.size
            assert other.info.details["reader"].startswith("ntfsclone v")
            assert media_sha256(stream) == hashlib.sha256(other.read()).hexdigest()


def test_second_reader_says_what_ntfsclone_refuses(volumes: dict[str, Volume],
                                                   tmp_path: Path) -> None:
    source = volumes["4096"].image
    gap = next(c for c in commands(source.read_bytes()) if c.kind == 0)
    bad = damaged(tmp_path, source, lambda d: d[: gap.at] + b"\x07" + d[gap.at + 1 :])
    with NtfscloneStream(source) as stream, pytest.raises(CorruptImageError,
                                                          match="Invalid command code"):
        FORMAT.second_reader(bad, stream)


def test_second_reader_not_made_without_ntfsclone_or_room(volumes: dict[str, Volume],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    vol = volumes["512"]
    with NtfscloneStream(vol.image) as stream:
        with monkeypatch.context() as patch:
            patch.setattr(shutil, "which", lambda name: None)
            with pytest.raises(UnsupportedFormatError, match="ntfsclone is not installed"):
                FORMAT.second_reader(vol.image, stream)

        class Usage(NamedTuple):
            total: int
            used: int
            free: int

        monkeypatch.setattr(shutil, "disk_usage", lambda folder: Usage(1 << 30, 1 << 30, 1000))
        with pytest.raises(NoSecondReader, match="1000 are free"):
            FORMAT.second_reader(vol.image, stream)


# --- the evidence ------------------------------------------------------------------------------


def _noatime_sha256(path: Path) -> str:
    fd = os.open(path, os.O_RDONLY | os.O_NOATIME)  # the check itself must not move atime
    with os.fdopen(fd, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


@pytest.mark.root
def test_evidence_bytes_and_times_unchanged(volumes: dict[str, Volume],
                                            strict_atime_dir: Path) -> None:  # noqa: F811
    """Opening, reading, the checks and the second reader (handed a copy) keep the image's
    content, mtime and atime, on a strictatime mount where any other read would move it."""
    require_root()
    image = strict_atime_dir / "evidence.ntfsclone"
    shutil.copyfile(volumes["4096"].image, image)
    os.utime(image, ns=(1_000_000_000, 2_000_000_000))  # atime older than mtime
    before = image.stat()
    digest = _noatime_sha256(image)
    assert FORMAT.probe(image, read_head(image, 4096))
    with FORMAT.open(image) as stream:
        stream.read()
        _ = stream.info
        assert FORMAT.self_checks(image, stream)[0].ok
        other = FORMAT.second_reader(image, stream)
        assert other is not None
        with other:
            assert hashlib.sha256(other.read()).hexdigest() == media_sha256(stream)
    after = image.stat()
    assert (after.st_atime_ns, after.st_mtime_ns, after.st_size) == (
        before.st_atime_ns, before.st_mtime_ns, before.st_size)
    assert _noatime_sha256(image) == digest


# --- the registry ------------------------------------------------------------------------------


def test_detected_and_opened_by_its_signature(volumes: dict[str, Volume]) -> None:
    """An ntfsclone image is opened by this reader (not refused by name, never taken for raw),
    whatever its file name."""
    from bitwitness.image import detect, open_image

    vol = volumes["4096"]
    detected = detect(vol.image)
    assert (detected.format.name, detected.by) == ("ntfsclone", "magic")
    with open_image(vol.image) as stream:
        assert stream.info.format == "ntfsclone"
        assert media_sha256(stream) == sha256sum(vol.restored)


# --- through the command line -----------------------------------------------------------------


def test_info_verify_ls_and_cat_through_the_cli(volumes: dict[str, Volume]) -> None:
    """``info``, ``verify``, ``ls`` and ``cat`` open an ntfsclone image as the volume ntfsclone
    restores: its size and hashes, the listing fls gives of the restored volume, icat's bytes."""
    require_tool("fls", "icat")
    vol = volumes["4096"]
    want = vol.restored.read_bytes()
    info = run_bitwitness("info", vol.image, "--json")
    assert info.exit_code == ExitCode.OK, info.stderr
    doc = info.json()
    assert doc["format"] == "ntfsclone"
    assert doc["media_size"] == len(want)
    assert "not evidence" in json.dumps(doc["details"])
    done = run_bitwitness("verify", vol.image, "--json")
    assert done.exit_code == ExitCode.EVIDENCE, done.stderr  # no media hash is recorded
    got = done.json()["images"][0]
    assert got["verdict"] == "UNVERIFIED", got["problems"]
    assert got["computed"]["sha256"] == hashlib.sha256(want).hexdigest()
    listing = run_bitwitness("ls", vol.image, "-r", "--all")
    assert listing.exit_code == ExitCode.OK, listing.stderr
    fls = _run("fls", "-r", "-p", vol.restored).stdout.decode("utf-8", "surrogateescape")
    assert Counter(listing.stdout.splitlines()) == Counter(fls.splitlines())
    long = run_bitwitness("ls", vol.image, "-r", "-l", "--json")
    files = [e for e in long.json()["entries"] if e["kind"] == "file" and not e["deleted"]
             and e["size"] > 1000 and not e["name"].startswith("$") and not e["stream"]]
    assert files, long.stdout[:2000]
    entry = files[0]
    ours = run_bitwitness("cat", vol.image, entry["path"])
    assert ours.exit_code == ExitCode.OK, ours.stderr
    icat = _run("icat", vol.restored, str(entry["inode"])).stdout
    assert ours.output == icat
    assert len(icat) == entry["size"]


def test_second_reader_through_the_cli(volumes: dict[str, Volume]) -> None:
    done = run_bitwitness("verify", "--second-reader", volumes["512"].image, "--json")
    assert done.exit_code == ExitCode.EVIDENCE, done.stderr
    second = done.json()["images"][0]["second_reader"]
    assert second is not None, done.json()["images"][0]["notes"]
    assert second["agree"], second
    assert second["reader"].startswith("ntfsclone")


def test_a_split_image_names_the_command_that_joins_it(volumes: dict[str, Volume],
                                                       tmp_path: Path) -> None:
    """``sda1.ntfs-img.aa``, ``.ab``... (split, uncompressed): each piece is refused (exit 2)
    with the command that joins them; run as given, it yields the image, read as before."""
    require_tool("split", "sh")
    vol = volumes["512"]
    folder = tmp_path / "split"
    folder.mkdir()
    _run("split", "-b", "64K", vol.image, folder / "sda1.ntfs-img.")
    pieces = sorted(folder.iterdir())
    assert len(pieces) > 2
    for piece in (pieces[0], pieces[-1]):
        done = run_bitwitness("info", piece)
        assert done.exit_code == ExitCode.USAGE, done.stderr
        assert f"one of the {len(pieces)} pieces of a split ntfsclone image" in done.stderr
    command = done.stderr.split("join them (", 1)[1].split("), then open", 1)[0]
    subprocess.run(["sh", "-c", command], cwd=folder, check=True)
    with NtfscloneStream(folder / "sda1.ntfs-img") as ours:
        assert ours.read() == vol.restored.read_bytes()
