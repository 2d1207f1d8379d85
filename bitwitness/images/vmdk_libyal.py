"""VMDK as the registry sees it: our reader first, libvmdk (pyvmdk) for what ours does not read.

Our reader (:mod:`bitwitness.images.vmdk`) reads monolithic and split sparse and flat disks and
stream-optimized ones; libvmdk then serves as its independent second reader. Ours also reads
SESPARSE extents (ESXi 6.5+ snapshots) over their parents, which libvmdk does not read: QEMU
is their second reader. Other children (snapshots, ``parentCID``), ESX COWD (VMFSSPARSE)
extents and whatever else ours refuses are read through libvmdk; an SEsparse variant ours
does not read (a journal to replay) is refused by name. Extent and parent files are opened
by us, inside the descriptor's own folder only (:func:`~bitwitness.images.libyal.contained`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bitwitness.errors import (
    CorruptImageError,
    InputError,
    NoReaderError,
    UnsupportedFormatError,
)
from bitwitness.images import vmdk, vmdk_sesparse
from bitwitness.images.checks import ContainerCheck
from bitwitness.images.libyal import (
    LibyalStream,
    binding,
    contained,
    find_parent,
    open_file_object,
    open_handle,
)
from bitwitness.images.raw import read_at
from bitwitness.images.truncation import Truncation
from bitwitness.stream import ImageStream

#: pyvmdk extent types whose descriptor names no data file.
_NO_FILE = {"ZERO"}


def _open_one(pyvmdk: Any, path: Path, owned: list[Any]) -> tuple[Any, list[Path]]:
    """One VMDK (descriptor or monolithic sparse file) and its extent files."""
    handle, fobj = open_handle(pyvmdk.handle, path, "the VMDK")
    owned += [handle, fobj]
    extent_files: list[Path] = []
    objects: list[Any] = []
    named = [d for d in handle.extent_descriptors
             if d.filename and str(getattr(d, "type", "")).upper() not in _NO_FILE]
    # A monolithic sparse file embeds a descriptor naming itself as it was first called; a copy
    # renamed since ("ext2.vmdk" kept as "case-ext2.vmdk") is still its own one extent.
    embedded = read_at(path, 0, 4) == b"KDMV" and len(named) == 1
    for descriptor in named:
        extent = path if embedded else contained(path.parent, str(descriptor.filename))
        name = descriptor.filename
        if not extent.is_file():
            raise InputError(f"{path}: VMDK extent file {name!r} is missing "
                             f"(looked for {extent})")
        extent_files.append(extent)
    try:
        for extent in extent_files:
            objects.append(open_file_object(extent))
        owned.extend(objects)
        handle.open_extent_data_files_as_file_objects(objects)
    except (OSError, ValueError, TypeError) as exc:
        raise CorruptImageError(f"libvmdk cannot open the extents: {exc}", path=path) from exc
    return handle, [f for f in extent_files if f != path]


def open_libvmdk(path: Path) -> ImageStream:
    """Open a VMDK (and its parents) through libvmdk."""
    pyvmdk = binding("pyvmdk", "libvmdk-python", f"{path}: VMDK image")
    owned: list[Any] = []
    files: list[Path] = [path]
    parents: list[Path] = []
    try:
        top, extents = _open_one(pyvmdk, path, owned)
        owned.remove(top)
        files += extents
        handle, current = top, path
        while handle.get_parent_content_identifier() not in (None, 0xFFFFFFFF):
            recorded = handle.get_parent_filename()
            if not recorded:
                raise CorruptImageError("a child VMDK that names no parent", path=current)
            parent = find_parent(current, str(recorded), [path, *parents])
            below, below_extents = _open_one(pyvmdk, parent, owned)
            if below.get_content_identifier() != handle.get_parent_content_identifier():
                raise CorruptImageError(
                    f"{parent.name} is not this VMDK's parent (its CID differs from the "
                    "parentCID the child records)", path=current)
            handle.set_parent(below)
            parents.append(parent)
            files += [parent, *below_extents]
            handle, current = below, parent
        return LibyalStream(top, fmt="vmdk", files=files,
                            reader=f"libvmdk {pyvmdk.get_version()}",
                            details={"disk_type": top.get_disk_type()}, owned=owned,
                            parents=parents)
    except BaseException:
        for item in reversed(owned):
            item.close()
        raise


class VmdkFormat:
    """Every VMDK kind: ours where it reads it, libvmdk for the rest."""

    name = "vmdk"
    #: ``vmdk-sesparse``: an SEsparse extent file named alone, refused with the way to read it.
    containers = ("vmdk", "vmdk-sesparse")
    qemu_driver = "vmdk"

    def probe(self, path: Path, head: bytes) -> bool:
        return vmdk.FORMAT.probe(path, head) or head.startswith(b"COWD")

    def claims_name(self, path: Path) -> bool:
        return vmdk.FORMAT.claims_name(path)

    def files(self, path: Path) -> list[Path]:
        with self.open(path) as stream:
            return list(stream.info.files)

    def open(self, path: Path) -> ImageStream:
        if read_at(path, 0, len(vmdk_sesparse.HEAD)) == vmdk_sesparse.HEAD:
            raise NoReaderError(
                f"{path}: a VMDK SEsparse extent (ESXi snapshot) holds only what changed since "
                "its snapshot; open the descriptor that names it (NAME.vmdk beside it), which "
                "also names the parent disk it is read over")
        try:
            return vmdk.FORMAT.open(path)
        except NoReaderError:
            raise
        except UnsupportedFormatError as ours:
            try:
                return open_libvmdk(path)
            except UnsupportedFormatError:
                raise ours from None

    def second_reader(self, path: Path, stream: ImageStream) -> ImageStream | None:
        """libvmdk for what our reader read; QEMU (given the same parent chain) for what
        libvmdk read, for SEsparse disks, which libvmdk does not read, and for disks holding
        zeroed-grain entries, which libvmdk misreads (:meth:`vmdk.SparseExtent.grain_counts`):
        a valid disk would be called a mismatch."""
        from bitwitness.images.qemu import QemuNbdStream

        why = ""
        if isinstance(stream, LibyalStream):
            why = "libvmdk read the image first"
        elif isinstance(stream, vmdk.VmdkStream):
            details = stream.info.details
            if details.get("sesparse"):
                why = "libvmdk does not read SEsparse extents"
            elif details.get("zeroed_grains"):
                why = (f"the disk holds {details['zeroed_grains']} zeroed-grain entries "
                       "(grain-table value 1), which libvmdk reads as sector 1 (the header's "
                       "bytes) instead of zeros; QEMU reads them as zeros")
        if why:
            return QemuNbdStream(path, "vmdk", [path, *getattr(stream, "parents", ())],
                                 extents=stream.info.files, why=why)
        return open_libvmdk(path)

    def truncation(self, path: Path, stream: ImageStream) -> list[Truncation]:
        """The sparse extents our reader read that are cut short
        (:meth:`vmdk.VmdkStream.truncation`)."""
        return vmdk.FORMAT.truncation(path, stream)

    def self_checks(self, path: Path, stream: ImageStream) -> tuple[ContainerCheck, ...]:
        """The redundant grain directory and tables of every sparse extent of the disk (and
        of its parents), against the primary copies."""
        return tuple(c for p in stream.info.files for c in vmdk.vmdk_checks(p))


FORMAT = VmdkFormat()
