"""OVA (an Open Virtualization Format archive): a virtual machine exported by VirtualBox, VMware
(ovftool), Proxmox and others, read in place.

An OVA is a tar archive (DMTF DSP0243, section 5.3: POSIX ustar; GNU and pax long names occur)
whose first member is the OVF descriptor (``.ovf``), followed by the disks it references, then
optionally a manifest (``.mf``: the SHA-1 or SHA-256 of every other member) and a certificate.
The disks are stream-optimized VMDKs stored uncompressed and contiguous in the archive, so each
is a window of the OVA file: it is read there, through our sparse-extent reader, never extracted
(which would need room and a copy that is not the evidence). It was refused as a tar archive.

The tar headers are walked by our own code rather than :mod:`tarfile`, which reads a pax
header's data whole whatever size it declares: every header's checksum is checked, member data
must lie in the file, long names (GNU ``L``, pax ``path``) are bounded, at most
:data:`MAX_MEMBERS` members are listed. The first VMDK member is the media; an OVA holding
several disks says so in ``info``, naming each with the command that extracts it. ``verify``
checks the manifest's digest of every member it lists (the disk's bytes in the archive, as the
exporting tool wrote them). QEMU reads the same window as the second reader (its ``raw`` driver
with ``offset`` and ``size`` under its ``vmdk`` driver).
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bitwitness.errors import CorruptImageError, UnsupportedFormatError
from bitwitness.evidence_io import open_readonly
from bitwitness.images.checks import ContainerCheck
from bitwitness.images.vmdk import MAGIC as VMDK_MAGIC
from bitwitness.images.vmdk import (
    Descriptor,
    SparseExtent,
    VmdkStream,
    parse_descriptor,
)
from bitwitness.stream import ImageStream, StreamInfo

BLOCK = 512
#: Members listed at most (an OVA holds a descriptor, a few disks, a manifest, a certificate).
MAX_MEMBERS = 10_000
#: Longest member name read from a GNU long-name member or a pax header.
MAX_NAME = 4096
#: Largest pax extended header read (its records: path, size, times).
MAX_PAX = 64 * 1024
#: Largest manifest read.
MAX_MANIFEST = 1 << 20
_USTAR = (b"ustar\x00", b"ustar ")
_REGULAR = (b"0", b"\x00", b"7")
_DISK_SUFFIXES = (".vmdk",)
#: Other disk formats an OVF may reference, refused by name (extracted, they are read).
_OTHER_DISKS = (".vhd", ".vhdx", ".qcow2", ".img", ".raw", ".vdi")
_MANIFEST_LINE = re.compile(r"^\s*(SHA1|SHA256|SHA512)\s*\((.+)\)\s*=\s*([0-9a-fA-F]+)\s*$")


@dataclass(frozen=True)
class Member:
    """A regular file stored in the archive: its name and where its data lies."""

    name: str
    offset: int  #: file offset of its data
    size: int


def _octal(field: bytes, what: str, at: int, path: Path) -> int:
    """A tar number: octal digits (NUL/space padded), or GNU's base-256 (high bit set)."""
    if field and field[0] & 0x80:
        return int.from_bytes(field[1:], "big") | ((field[0] & 0x7F) << (8 * (len(field) - 1)))
    text = field.split(b"\x00", 1)[0].strip(b" ")
    if not text:
        return 0
    if not re.fullmatch(rb"[0-7]+", text):
        raise CorruptImageError(f"tar header at file offset {at}: its {what} field is not an "
                                "octal number", path=path, offset=at)
    return int(text, 8)


def _valid_header(block: bytes) -> bool:
    """Whether ``block`` is a ustar header whose checksum holds (summed as unsigned bytes, or
    as signed ones, as some old tar programs wrote it and GNU tar accepts)."""
    if len(block) < BLOCK or block[257:263] not in _USTAR:
        return False
    text = block[148:156].split(b"\x00", 1)[0].strip(b" ")
    if not re.fullmatch(rb"[0-7]+", text):
        return False
    rest = block[:148] + b" " * 8 + block[156:BLOCK]
    unsigned = sum(rest)
    return int(text, 8) in (unsigned, unsigned - 256 * sum(1 for b in rest if b & 0x80))


def _pax_path(data: bytes) -> str | None:
    """The ``path`` record of a pax extended header (records ``LEN key=value\\n``)."""
    found = None
    pos = 0
    while pos < len(data):
        space = data.find(b" ", pos)
        if space < 0:
            break
        try:
            length = int(data[pos:space])
        except ValueError:
            break
        if length <= 0 or pos + length > len(data):
            break
        record = data[space + 1:pos + length - 1]
        key, _, value = record.partition(b"=")
        if key == b"path":
            found = value.decode("utf-8", "surrogateescape")
        pos += length
    return found


def members(path: Path, read: Callable[[int, int], bytes], size: int,
            limit: int = MAX_MEMBERS) -> list[Member]:
    """The regular files of the tar archive ``path`` (``read(offset, length)`` of its ``size``
    bytes), in their order, each header's checksum checked and each member's data checked to
    lie in the file; the walk ends at the end-of-archive blocks or the file's end."""
    found: list[Member] = []
    at, long_name = 0, None
    while at + BLOCK <= size and len(found) < limit:
        block = read(at, BLOCK)
        if block == bytes(BLOCK):
            break
        if not _valid_header(block):
            raise CorruptImageError(f"no valid tar header at file offset {at} (the magic or "
                                    "the checksum does not hold)", path=path, offset=at)
        length = _octal(block[124:136], "size", at, path)
        data_at = at + BLOCK
        if data_at + length > size:
            raise CorruptImageError(f"tar member at file offset {at} declares {length} bytes, "
                                    f"past the end of the file ({size} bytes)", path=path,
                                    offset=at)
        kind = block[156:157]
        if kind in (b"L", b"x"):
            if length > (MAX_NAME if kind == b"L" else MAX_PAX):
                raise CorruptImageError(f"tar header at file offset {at} declares a long name "
                                        f"of {length} bytes", path=path, offset=at)
            data = read(data_at, length)
            long_name = (data.split(b"\x00", 1)[0].decode("utf-8", "surrogateescape")
                         if kind == b"L" else _pax_path(data)) or long_name
        elif kind in _REGULAR:
            name = long_name
            if name is None:
                plain = block[:100].split(b"\x00", 1)[0]
                prefix = block[345:500].split(b"\x00", 1)[0] if block[257:263] == _USTAR[0] \
                    else b""
                name = (prefix + b"/" + plain if prefix else plain).decode("utf-8",
                                                                          "surrogateescape")
            found.append(Member(name, data_at, length))
            long_name = None
        else:
            long_name = None  # a folder, link or global header: nothing to read
        at = data_at + -(-length // BLOCK) * BLOCK
    return found


def _is_ovf(name: str) -> bool:
    return name.lower().endswith(".ovf")


def _base(name: str) -> str:
    return name.rsplit("/", 1)[-1].lower()


def _shown(name: str) -> str:
    return name.encode("utf-8", "backslashreplace").decode("ascii", "backslashreplace") \
        if not name.isprintable() else name


class OvaStream(VmdkStream):
    """The first disk of an OVA: a stream-optimized VMDK read inside the archive."""

    def __init__(self, path: Path, listed: list[Member], disk: Member, extent: SparseExtent,
                 descriptor: Descriptor) -> None:
        self.members = listed
        self.disk = disk
        super().__init__(path, descriptor, [extent])

    @property
    def files(self) -> tuple[Path, ...]:
        return (self.path,)

    @property
    def info(self) -> StreamInfo:
        base = super().info
        details: dict[str, Any] = dict(base.details)
        disks = [m for m in self.members if _base(m.name).endswith(_DISK_SUFFIXES)]
        details["ova_disk"] = (f"{_shown(self.disk.name)} ({self.disk.size} bytes at file "
                               f"offset {self.disk.offset})")
        details["ova_members"] = [_shown(m.name) for m in self.members[:50]]
        if len(disks) > 1:
            others = [m for m in disks if m is not self.disk]
            details["ova_other_disks"] = (
                f"this OVA holds {len(disks)} disks; the media read is the first. Each other "
                "disk, extracted, is read as an image of its own: " + "; ".join(
                    f"tar -xf {shlex.quote(str(self.path))} {shlex.quote(m.name)}"
                    for m in others[:10]))
        return StreamInfo(format="ova", files=(self.path,), media_size=self.size,
                          sector_size=self.sector_size, details=details)


def _read_from(fd: int) -> Callable[[int, int], bytes]:
    def read(offset: int, length: int) -> bytes:
        return os.pread(fd, length, offset)

    return read


def _listing(path: Path, fd: int) -> list[Member]:
    """The members of the OVA ``path``, open as ``fd``."""
    return members(path, _read_from(fd), os.fstat(fd).st_size)


def _first_disk(path: Path, listed: list[Member]) -> Member:
    """The disk the media is read from: the first VMDK member, or a refusal naming what the
    archive holds instead."""
    for member in listed:
        if _base(member.name).endswith(_DISK_SUFFIXES):
            return member
    other = next((m for m in listed if _base(m.name).endswith(_OTHER_DISKS)), None)
    if other is not None:
        raise UnsupportedFormatError(
            f"{path}: this OVA's disk {_shown(other.name)} is not a VMDK; extract it and read it "
            f"as an image of its own: tar -xf {shlex.quote(str(path))} "
            f"{shlex.quote(other.name)}")
    compressed = next((m for m in listed if _base(m.name).endswith((".gz", ".vmdk.gz"))), None)
    if compressed is not None:
        raise UnsupportedFormatError(
            f"{path}: this OVA's disk {_shown(compressed.name)} is gzip-compressed; extract and "
            f"decompress it first: tar -xOf {shlex.quote(str(path))} "
            f"{shlex.quote(compressed.name)} | gunzip > disk.vmdk")
    raise UnsupportedFormatError(f"{path}: this OVA holds no disk (members: "
                                 f"{', '.join(_shown(m.name) for m in listed[:10]) or 'none'})")


def open_ova(path: Path) -> OvaStream:
    """The first disk of the OVA ``path``, read in place."""
    fd = open_readonly(path)
    try:
        listed = _listing(path, fd)
        disk = _first_disk(path, listed)
        head = os.pread(fd, 4, disk.offset)
        if head[:2] == b"\x1f\x8b":
            raise UnsupportedFormatError(
                f"{path}: this OVA's disk {_shown(disk.name)} is gzip-compressed; extract and "
                f"decompress it first: tar -xOf {shlex.quote(str(path))} "
                f"{shlex.quote(disk.name)} | gunzip > disk.vmdk")
        if head != VMDK_MAGIC:
            raise UnsupportedFormatError(
                f"{path}: this OVA's disk {_shown(disk.name)} is not a sparse VMDK extent (an "
                "OVA holds stream-optimized disks); extract it and read it as an image of its "
                f"own: tar -xf {shlex.quote(str(path))} {shlex.quote(disk.name)}")
    finally:
        os.close(fd)
    extent = SparseExtent(path, window=(disk.offset, disk.size), member=disk.name)
    try:
        text = extent.descriptor_text()
        descriptor = parse_descriptor(text) if text else Descriptor({}, ())
        if len(descriptor.extents) > 1:
            raise UnsupportedFormatError(f"{path}: this OVA's disk {_shown(disk.name)} is one "
                                         "extent of several, which an OVA does not hold")
        return OvaStream(path, listed, disk, extent, descriptor)
    except BaseException:
        extent.close()
        raise


def _manifest(path: Path, fd: int,
              listed: list[Member]) -> tuple[Member, dict[str, tuple[str, str]]] | None:
    """The manifest member and its digests (member name -> (algorithm, hex)), or None."""
    manifest = next((m for m in listed if _base(m.name).endswith(".mf")), None)
    if manifest is None:
        return None
    if manifest.size > MAX_MANIFEST:
        raise CorruptImageError(f"the manifest {_shown(manifest.name)} declares "
                                f"{manifest.size} bytes", path=path, offset=manifest.offset)
    text = os.pread(fd, manifest.size, manifest.offset).decode("utf-8", "replace")
    digests: dict[str, tuple[str, str]] = {}
    for line in text.splitlines():
        match = _MANIFEST_LINE.match(line)
        if match:
            digests[match.group(2).strip()] = (match.group(1).lower(), match.group(3).lower())
    return manifest, digests


def _digest(fd: int, member: Member, algorithm: str) -> str:
    digest = hashlib.new(algorithm)
    done = 0
    while done < member.size:
        chunk = os.pread(fd, min(8 << 20, member.size - done), member.offset + done)
        if not chunk:
            raise CorruptImageError(f"member {_shown(member.name)} is truncated",
                                    offset=member.offset + done)
        digest.update(chunk)
        done += len(chunk)
    return digest.hexdigest()


def ova_checks(path: Path, listed: list[Member] | None = None) -> tuple[ContainerCheck, ...]:
    """The manifest's digest of every member it lists, against the member's bytes in the
    archive; a manifest naming a member the archive lacks fails too. ``listed``: the members
    as an open stream walked them (else the archive is walked here)."""
    fd = open_readonly(path)
    try:
        return _manifest_checks(path, fd, _listing(path, fd) if listed is None else listed)
    finally:
        os.close(fd)


def _manifest_checks(path: Path, fd: int, listed: list[Member]) -> tuple[ContainerCheck, ...]:
    found = _manifest(path, fd, listed)
    if found is None:
        return (ContainerCheck("OVA manifest", True,
                               "none in the archive: no recorded digest of its members"),)
    manifest, digests = found
    if not digests:
        return (ContainerCheck(f"OVA manifest {_shown(manifest.name)}", False,
                               "holds no digest line (SHA1(name)= hex)"),)
    by_name = {m.name: m for m in listed}
    checks = []
    for name, (algorithm, expected) in list(digests.items())[:100]:
        what = f"OVA manifest digest of {_shown(name)}"
        member = by_name.get(name)
        if member is None:
            checks.append(ContainerCheck(what, False, "the archive holds no such member"))
            continue
        computed = _digest(fd, member, algorithm)
        checks.append(ContainerCheck(
            what, computed == expected,
            f"{algorithm} {computed}" + ("" if computed == expected
                                         else f", the manifest records {expected}")))
    return tuple(checks)


class OvaFormat:
    """OVA archives: a tar whose first member is an OVF descriptor."""

    name = "ova"
    containers = ("ova",)

    def probe(self, path: Path, head: bytes) -> bool:
        if not _valid_header(head[:BLOCK]):
            return False
        try:  # the first member's name from the head (its data may lie past it)
            size = path.stat().st_size
            first = members(path, lambda o, n: head[o:o + n], size, limit=1)
        except (CorruptImageError, OSError):
            return path.suffix.lower() == ".ova"
        return (bool(first) and _is_ovf(first[0].name)) or path.suffix.lower() == ".ova"

    def claims_name(self, path: Path) -> bool:
        return False  # recognised by its content only

    def files(self, path: Path) -> list[Path]:
        return [path]

    def open(self, path: Path) -> ImageStream:
        return open_ova(path)

    def second_reader(self, path: Path, stream: ImageStream) -> ImageStream | None:
        """QEMU's vmdk driver over its raw driver's window of the archive: the same bytes,
        found by our tar walk, decoded by QEMU."""
        from bitwitness.images.qemu import QemuNbdStream

        if not isinstance(stream, OvaStream):
            return None
        return QemuNbdStream(path, "vmdk", [path],
                             window=(stream.disk.offset, stream.disk.size))

    def self_checks(self, path: Path, stream: ImageStream) -> tuple[ContainerCheck, ...]:
        """The manifest's digests, and the disk's own checks (its header, its redundant grain
        tables) as for any sparse VMDK."""
        checks = list(ova_checks(path, stream.members if isinstance(stream, OvaStream)
                                 else None))
        if isinstance(stream, OvaStream):
            extent = SparseExtent(path, window=(stream.disk.offset, stream.disk.size),
                                  member=stream.disk.name)
            try:
                checks += [extent.header_check(), extent.redundant_check()]
            finally:
                extent.close()
        return tuple(checks)


FORMAT = OvaFormat()
