"""The sample disk that ships inside BitWitness: a small, fully known disk to practise on.

The demo, the acquisition tests and the README need a disk whose every byte is known in advance,
without root, loop devices or a download. ``scripts/make-sample-disk.sh`` builds it (40 MiB, MBR,
a FAT32 and an ext4 partition, nested folders, a non-ASCII name and one deleted file on each file
system, fixed ids and time stamps) and stores it here xz-compressed, next to ``sample-disk.json``:
what the build tools measured (size, MD5/SHA-1/SHA-256 of the raw disk, the partition table, each
file's path, size, SHA-256 and modification time). Nothing in the JSON is typed by hand, so a test
that compares an independent tool's view of the disk with :func:`description` is a real check.

:func:`materialize` writes the raw disk to a path and checks it against the recorded hashes before
it appears there, so a damaged installation can never pass itself off as the sample.
"""

from __future__ import annotations

import contextlib
import json
import lzma
import os
import tempfile
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from bitwitness.errors import (
    CorruptImageError,
    HashMismatchError,
    InputError,
    OutputExistsError,
    UsageError,
)
from bitwitness.hashing import MultiHasher

SAMPLE_NAME = "sample-disk"
DESCRIPTION_FILE = f"{SAMPLE_NAME}.json"
_CHUNK = 1 << 20


class FileSystemType(StrEnum):
    """The file systems on the sample disk, named as the description records them."""

    FAT32 = "fat32"
    EXT4 = "ext4"


@dataclass(frozen=True)
class SamplePartition:
    """One entry of the partition table; ``index`` is 1-based, in table order."""

    index: int
    start_sector: int
    sector_count: int
    sector_size: int
    type: str  #: MBR partition type as hex, "0x0c" or "0x83"
    fs_type: FileSystemType
    label: str
    volume_id: str  #: FAT volume serial (hex digits) or ext4 UUID

    @property
    def offset(self) -> int:
        """Start of the partition in bytes from the start of the disk."""
        return self.start_sector * self.sector_size

    @property
    def size(self) -> int:
        """Length of the partition in bytes."""
        return self.sector_count * self.sector_size


@dataclass(frozen=True)
class SampleFile:
    """A file the build put on a partition; ``deleted`` ones were removed after copying.

    ``path`` is absolute inside its file system ("/Documents/Notes/x.txt"); ``size`` and
    ``sha256`` are those of the content written, which for a deleted file is what a recovery
    (``icat`` of its freed inode or directory entry) should give back.
    """

    partition: int
    path: str
    size: int
    sha256: str
    modified: datetime  #: UTC
    deleted: bool

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class SampleDirectory:
    """A folder the build created (every parent of a :class:`SampleFile`)."""

    partition: int
    path: str


@dataclass(frozen=True)
class SampleDescription:
    """What is on the packaged sample disk, as measured when it was built."""

    name: str
    image_file: str  #: the compressed resource inside this package
    compression: str
    size: int  #: bytes of the raw disk
    sector_size: int
    md5: str
    sha1: str
    sha256: str
    partition_table: str  #: "dos" (MBR)
    disk_id: str
    partitions: tuple[SamplePartition, ...]
    directories: tuple[SampleDirectory, ...]
    files: tuple[SampleFile, ...]
    formatted: datetime  #: when the build says the volumes were made (UTC)
    tools: dict[str, str]  #: versions of the tools that built it
    notes: tuple[str, ...]

    @property
    def hashes(self) -> dict[str, str]:
        """``{"md5": ..., "sha1": ..., "sha256": ...}`` of the raw disk, lower-case hex."""
        return {"md5": self.md5, "sha1": self.sha1, "sha256": self.sha256}

    def partition(self, index: int) -> SamplePartition:
        """The partition with this 1-based index; a :class:`UsageError` when there is none."""
        for part in self.partitions:
            if part.index == index:
                return part
        raise UsageError(f"the sample disk has no partition {index}")

    def files_on(self, index: int, *, deleted: bool | None = None) -> tuple[SampleFile, ...]:
        """Files of one partition; ``deleted`` True/False keeps only deleted/live ones."""
        return tuple(f for f in self.files
                     if f.partition == index and (deleted is None or f.deleted == deleted))


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _parse(doc: dict[str, Any]) -> SampleDescription:
    sector = int(doc["sector_size"])
    return SampleDescription(
        name=doc["name"],
        image_file=doc["image_file"],
        compression=doc["compression"],
        size=int(doc["size"]),
        sector_size=sector,
        md5=doc["hashes"]["md5"],
        sha1=doc["hashes"]["sha1"],
        sha256=doc["hashes"]["sha256"],
        partition_table=doc["partition_table"],
        disk_id=doc["disk_id"],
        partitions=tuple(
            SamplePartition(index=p["index"], start_sector=p["start_sector"],
                            sector_count=p["sector_count"], sector_size=sector, type=p["type"],
                            fs_type=FileSystemType(p["fs_type"]), label=p["label"],
                            volume_id=p["volume_id"])
            for p in doc["partitions"]),
        directories=tuple(SampleDirectory(d["partition"], d["path"]) for d in doc["directories"]),
        files=tuple(
            SampleFile(partition=f["partition"], path=f["path"], size=f["size"],
                       sha256=f["sha256"], modified=_utc(f["modified"]), deleted=f["deleted"])
            for f in doc["files"]),
        formatted=_utc(doc["formatted"]),
        tools=dict(doc["tools"]),
        notes=tuple(doc["notes"]),
    )


@cache
def description() -> SampleDescription:
    """The packaged sample's description (read once; the record is immutable).

    Raises :class:`InputError` when the installation lacks the file or it cannot be parsed.
    """
    resource = resources.files(__name__) / DESCRIPTION_FILE
    try:
        return _parse(json.loads(resource.read_text(encoding="utf-8")))
    except FileNotFoundError as exc:
        raise InputError(f"the packaged sample description {DESCRIPTION_FILE} is missing "
                         "(broken installation?)") from exc
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(f"the packaged sample description {DESCRIPTION_FILE} is invalid: "
                         f"{exc}") from exc


def materialize(dest: Path, *, overwrite: bool = False) -> Path:
    """Write the raw sample disk to ``dest`` and return ``dest``.

    The disk is decompressed into a hidden temporary file beside ``dest``, checked against the
    recorded size, MD5, SHA-1 and SHA-256, and only then put in place, so ``dest`` never holds a
    partial or wrong image. An existing ``dest`` raises :class:`OutputExistsError` unless
    ``overwrite``; the check and the final step are one atomic operation where the file system
    supports hard links. A damaged package raises :class:`CorruptImageError` (does not decode) or
    :class:`HashMismatchError`.
    """
    dest = Path(dest)
    if dest.is_dir():
        raise UsageError(f"{dest} is a folder: give the path of the image file to write")
    if (dest.exists() or dest.is_symlink()) and not overwrite:
        raise OutputExistsError(dest)
    if not dest.parent.is_dir():
        raise InputError(f"{dest.parent}: no such folder")
    desc = description()
    _publish(_decompress_checked(desc, dest), dest, overwrite=overwrite)
    return dest


def _decompress_checked(desc: SampleDescription, dest: Path) -> Path:
    """Decompress the packaged image next to ``dest``; the temporary path once it checks out."""
    resource = resources.files(__name__) / desc.image_file
    try:
        fd, name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".partial", dir=dest.parent)
    except OSError as exc:
        raise UsageError(f"cannot write in {dest.parent}: {exc.strerror or exc}") from exc
    tmp = Path(name)
    hasher = MultiHasher(("md5", "sha1", "sha256"))
    try:
        with os.fdopen(fd, "wb") as out, resource.open("rb") as packed, \
                lzma.open(packed, "rb") as raw:
            while chunk := raw.read(_CHUNK):
                out.write(chunk)
                hasher.update(chunk)
        tmp.chmod(0o644)
        _check(desc, hasher)
    except FileNotFoundError as exc:
        tmp.unlink(missing_ok=True)
        raise InputError(f"the packaged sample image {desc.image_file} is missing "
                         "(broken installation?)") from exc
    except (lzma.LZMAError, EOFError) as exc:
        tmp.unlink(missing_ok=True)
        raise CorruptImageError(f"the packaged sample image does not decompress: {exc}",
                                path=desc.image_file) from exc
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise UsageError(f"cannot write {dest}: {exc.strerror or exc}") from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def _check(desc: SampleDescription, hasher: MultiHasher) -> None:
    if hasher.bytes_hashed != desc.size:
        raise CorruptImageError(
            f"the packaged sample image decompresses to {hasher.bytes_hashed} bytes, "
            f"not {desc.size}", path=desc.image_file)
    computed = hasher.hexdigests()
    for algorithm, expected in desc.hashes.items():
        if computed[algorithm] != expected:
            raise HashMismatchError(algorithm, expected, computed[algorithm],
                                    "the packaged sample image")


def _publish(tmp: Path, dest: Path, *, overwrite: bool) -> None:
    """Move the checked image to ``dest``: replace when allowed, never clobber otherwise."""
    try:
        if overwrite:
            tmp.replace(dest)
            return
        try:
            os.link(tmp, dest)  # fails if dest appeared meanwhile: no race with another writer
        except FileExistsError:
            raise OutputExistsError(dest) from None
        except OSError:
            # no hard links here (some FUSE or FAT mounts): check, then rename
            if dest.exists() or dest.is_symlink():
                raise OutputExistsError(dest) from None
            tmp.replace(dest)
    except OSError as exc:
        raise UsageError(f"cannot write {dest}: {exc.strerror or exc}") from exc
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
