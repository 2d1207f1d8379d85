"""VHDX (fixed, dynamic, differencing) and differencing VHD, read through libvhdi (pyvhdi).

Every VHD (fixed, dynamic, differencing) is read by our own reader (:mod:`bitwitness.images.vhd`),
which then has libvhdi, resolving the parents itself, as its independent second reader; a fixed or
dynamic VHDX is read by libvhdi, with QEMU as the second. A differencing VHDX is read by our own
VHDX reader (:mod:`bitwitness.images.vhdx`), libvhdi second (QEMU reads none): libvhdi (20260901)
takes a block "not present" in the child, in a chunk whose sector bitmap block is not present
either, for a partially present block whose bitmap lies at file offset 0, and returns zeros for
the parent's sectors whose bit is set in the file's signature ``vhdxfile``. A VHDX whose log
holds writes is read by our reader alone, the log replayed in memory (and a differencing one's
parents' logs too). Parents are looked for in the child's own folder only, and each parent's
identifier must be the one the child records: a file of the same name from another chain is
refused rather than silently stacked.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bitwitness.errors import CorruptImageError, NoSecondReader, UnsupportedFormatError
from bitwitness.images import vhd
from bitwitness.images.checks import ContainerCheck
from bitwitness.images.libyal import LibyalStream, binding, find_parent, open_handle
from bitwitness.images.truncation import Truncation
from bitwitness.stream import ImageStream

VHDX_MAGIC = b"vhdxfile"
_DISK_TYPES = {2: "fixed", 3: "dynamic", 4: "differencing"}


def _open_chain(pyvhdi: Any, path: Path) -> tuple[Any, list[Any], list[Path]]:
    owned: list[Any] = []
    parents: list[Path] = []
    try:
        top, fobj = open_handle(pyvhdi.file, path, "the virtual disk")
        owned.append(fobj)
        handle, current = top, path
        while handle.get_disk_type() == 4:
            recorded = handle.get_parent_filename()
            if not recorded:
                raise CorruptImageError("a differencing disk that names no parent", path=current)
            parent = find_parent(current, str(recorded), [path, *parents])
            below, below_fobj = open_handle(pyvhdi.file, parent, "the parent disk")
            owned += [below, below_fobj]
            wanted, got = handle.get_parent_identifier(), below.get_identifier()
            if wanted and got and wanted != got:
                raise CorruptImageError(
                    f"{parent.name} is not this disk's parent (identifier {got}, the child "
                    f"records {wanted})", path=current)
            handle.set_parent(below)
            parents.append(parent)
            handle, current = below, parent
    except BaseException:
        for item in reversed(owned):
            item.close()
        raise
    return top, owned, parents


def open_vhdi(path: Path, fmt: str) -> ImageStream:
    """Open a VHDX, or a VHD our reader refuses, with its parents, through libvhdi."""
    pyvhdi = binding("pyvhdi", "libvhdi-python", f"{path}: {fmt.upper()} image")
    top, owned, parents = _open_chain(pyvhdi, path)
    try:
        details = {"disk_type": _DISK_TYPES.get(top.get_disk_type(), str(top.get_disk_type())),
                   "identifier": str(top.get_identifier() or "")}
        return LibyalStream(top, fmt=fmt, files=[path, *parents],
                            reader=f"libvhdi {pyvhdi.get_version()}", details=details,
                            sector_size=int(top.get_bytes_per_sector() or 512), owned=owned,
                            parents=parents)
    except BaseException:
        top.close()
        for item in reversed(owned):
            item.close()
        raise


class VhdxFormat:
    """Hyper-V's VHDX: fixed, dynamic and differencing, 512- or 4096-byte logical sectors."""

    name = "vhdx"
    containers = ("vhdx",)
    qemu_driver = "vhdx"

    def probe(self, path: Path, head: bytes) -> bool:
        return head.startswith(VHDX_MAGIC)

    def claims_name(self, path: Path) -> bool:
        return False

    def files(self, path: Path) -> list[Path]:
        with self.open(path) as stream:
            return list(stream.info.files)

    def open(self, path: Path) -> ImageStream:
        """libvhdi for a fixed or dynamic VHDX; our own reader for a differencing one (libvhdi
        misreads some blocks the parent holds: see the module's description), and where
        libvhdi refuses the file as damaged (it refuses a VHDX whose second region table fails
        its CRC-32C, which QEMU reads through the first), when ours can read the image;
        ``verify`` reports the damage through :meth:`self_checks`.

        A VHDX whose log holds writes (not closed cleanly) is read by our reader alone, the log
        replayed in memory: libvhdi ignores the log and would show the disk as it was before
        those writes (ours replays the parents' logs too). A log that cannot be replayed fails
        the open (MS-VHDX: such a file must not be opened), in one line."""
        from bitwitness.errors import BitWitnessError
        from bitwitness.images.vhdx import log_pending, open_vhdx

        if log_pending(path):
            return open_vhdx(path)
        try:
            stream = open_vhdi(path, self.name)
        except CorruptImageError as theirs:
            try:
                return open_vhdx(path)
            except BitWitnessError:
                raise theirs from None
        if stream.info.details.get("disk_type") != "differencing":
            return stream
        stream.close()
        return open_vhdx(path)

    def second_reader(self, path: Path, stream: ImageStream) -> ImageStream | None:
        """QEMU's vhdx driver; it reads no differencing VHDX, for which libvhdi, with the
        parents it finds itself, is the second to our reader (and ours the second where
        libvhdi read first). A VHDX with a log to replay has none: libvhdi ignores the log, and
        QEMU replays it only by writing it into the file (read-only, it refuses the image)."""
        from bitwitness.images.qemu import QemuNbdStream
        from bitwitness.images.vhdx import log_pending, open_vhdx

        if any(log_pending(p) for p in stream.info.files):
            raise NoSecondReader("a VHDX whose log holds writes has no independent second "
                                 "reader: libvhdi ignores the log, QEMU replays it only by "
                                 "writing into the file")
        if stream.info.details.get("parents"):
            if isinstance(stream, LibyalStream):
                return open_vhdx(path)
            return open_vhdi(path, self.name)
        return QemuNbdStream(path, "vhdx")

    def self_checks(self, path: Path, stream: ImageStream) -> tuple[ContainerCheck, ...]:
        """Headers' and region tables' CRC-32C, the log, the BAT of every file of the chain."""
        from bitwitness.images.vhdx import vhdx_checks

        cut = {t.file for t in self.truncation(path, stream)}
        return tuple(c for p in stream.info.files for c in vhdx_checks(p, p in cut))

    def truncation(self, path: Path, stream: ImageStream) -> list[Truncation]:
        """Each VHDX file of the chain whose BAT stores blocks past its end
        (:func:`vhdx.vhdx_truncation`), whichever reader reads the media."""
        from bitwitness.images.vhdx import vhdx_truncation

        found = (vhdx_truncation(p) for p in stream.info.files)
        return [t for t in found if t is not None]


class VhdFormat:
    """VHD: our reader for fixed and dynamic disks, libvhdi for differencing ones."""

    name = "vhd"
    containers = ("vhd",)
    qemu_driver = "vpc"

    def probe(self, path: Path, head: bytes) -> bool:
        return vhd.FORMAT.probe(path, head)

    def claims_name(self, path: Path) -> bool:
        return vhd.FORMAT.claims_name(path)

    def files(self, path: Path) -> list[Path]:
        with self.open(path) as stream:
            return list(stream.info.files)

    def open(self, path: Path) -> ImageStream:
        try:
            return vhd.FORMAT.open(path)
        except UnsupportedFormatError as ours:
            try:
                return open_vhdi(path, self.name)
            except UnsupportedFormatError:
                raise ours from None

    def second_reader(self, path: Path, stream: ImageStream) -> ImageStream | None:
        """libvhdi, with the parents it finds itself, for what our reader read (fixed,
        dynamic, differencing); what libvhdi read has none."""
        if isinstance(stream, LibyalStream):
            return None
        return open_vhdi(path, self.name)

    def self_checks(self, path: Path, stream: ImageStream) -> tuple[ContainerCheck, ...]:
        """The footer and dynamic-header checksums of every file of the chain."""
        return tuple(c for p in stream.info.files for c in vhd.vhd_checks(p))


VHDX_FORMAT = VhdxFormat()
VHD_FORMAT = VhdFormat()
