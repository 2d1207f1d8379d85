"""QCOW (version 1) and QCOW2 (versions 2 and 3), read through libqcow (pyqcow).

libqcow reads zlib-compressed clusters, version 3's extended headers and backing chains. A
backing file is looked for in the overlay's own folder only (see
:func:`~bitwitness.images.libyal.find_parent`) and must itself be QCOW: libqcow stacks only its
own files, so a raw backing file is refused with a clear message. The independent second reader
is QEMU's own (:mod:`bitwitness.images.qemu`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bitwitness.errors import UnsupportedFormatError
from bitwitness.images.libyal import LibyalStream, binding, find_parent, open_handle
from bitwitness.stream import ImageStream

_QCOW_MAGIC = b"QFI\xfb"


def _open_chain(pyqcow: Any, path: Path) -> tuple[Any, list[Any], list[Path]]:
    """Open ``path`` and every backing file beneath it; returns the top handle, everything to
    close (handles and file objects) and the parents in order."""
    owned: list[Any] = []
    parents: list[Path] = []
    try:
        top, fobj = open_handle(pyqcow.file, path, "the QCOW image")
        owned += [fobj]
        handle, current = top, path
        while True:
            recorded = handle.get_backing_filename()
            if not recorded:
                break
            parent = find_parent(current, str(recorded), [path, *parents])
            with parent.open("rb") as fh:
                if fh.read(4) != _QCOW_MAGIC:
                    raise UnsupportedFormatError(
                        f"{current}: its backing file {parent.name} is not QCOW; libqcow stacks "
                        "QCOW files only (convert the chain with 'qemu-img convert -O raw')")
            below, below_fobj = open_handle(pyqcow.file, parent, "the QCOW backing file")
            owned += [below, below_fobj]
            handle.set_parent(below)
            parents.append(parent)
            handle, current = below, parent
    except BaseException:
        for item in reversed(owned):
            item.close()
        raise
    return top, owned, parents


def open_qcow(path: Path) -> ImageStream:
    pyqcow = binding("pyqcow", "libqcow-python", f"{path}: QCOW image")
    with path.open("rb") as fh:
        head = fh.read(8)
    version = int.from_bytes(head[4:8], "big")
    top, owned, parents = _open_chain(pyqcow, path)
    try:
        return LibyalStream(top, fmt="qcow2" if version >= 2 else "qcow",
                            files=[path, *parents], reader=f"libqcow {pyqcow.get_version()}",
                            details={"qcow_version": version}, owned=owned, parents=parents)
    except BaseException:
        top.close()
        for item in reversed(owned):
            item.close()
        raise


class QcowFormat:
    """QCOW v1/v2/v3 images (QEMU, KVM, OpenStack and most cloud disks)."""

    name = "qcow"
    containers = ("qcow", "qcow2")
    qemu_driver = "qcow2"

    def probe(self, path: Path, head: bytes) -> bool:
        return head.startswith(_QCOW_MAGIC)

    def claims_name(self, path: Path) -> bool:
        return False  # recognised by its signature only

    def files(self, path: Path) -> list[Path]:
        with open_qcow(path) as stream:
            return list(stream.info.files)

    def open(self, path: Path) -> ImageStream:
        return open_qcow(path)

    def second_reader(self, path: Path, stream: ImageStream) -> ImageStream | None:
        """QEMU's qcow/qcow2 drivers, given the backing chain libqcow resolved."""
        from bitwitness.images.qemu import QemuNbdStream

        parents = stream.parents if isinstance(stream, LibyalStream) else ()
        return QemuNbdStream(path, stream.info.format, [path, *parents])


FORMAT = QcowFormat()
