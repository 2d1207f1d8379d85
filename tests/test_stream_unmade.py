"""A reader that refuses an image releases its descriptors once, never a second time.

Every reader opens the evidence, reads its structures and, when they are refused, closes what it
opened and raises. The half-made stream object lives on while the error does (its traceback
holds it), and when it goes, IOBase's finaliser calls ``close()`` on it, as on every object not
marked closed: ``close()`` then closed the same descriptor numbers again, silently (the
finaliser swallows errors). By then the numbers may belong to other files: the next format
tried, another image, an output being written. Each case here keeps the error alive, opens a
file (the kernel hands out the lowest free number: the one the reader released), drops the
error, and checks that the file is still open.
"""

from __future__ import annotations

import gc
import io
import os
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from bitwitness.errors import BitWitnessError
from bitwitness.stream import ImageStream


def _qed(path: Path) -> ImageStream:
    from bitwitness.images.qed import open_qed

    return open_qed(path)


def _vdi(path: Path) -> ImageStream:
    from bitwitness.images.vdi import VdiStream

    return VdiStream(path)


def _parallels(path: Path) -> ImageStream:
    from bitwitness.images.parallels import SparseExtentStream

    return SparseExtentStream(path)


def _sparseimage(path: Path) -> ImageStream:
    from bitwitness.images.apple_sparse import SparseImageStream

    return SparseImageStream(path)


def _android(path: Path) -> ImageStream:
    from bitwitness.images.android_sparse import AndroidSparseStream

    return AndroidSparseStream(path)


def _ex01(path: Path) -> ImageStream:
    from bitwitness.images.ewf2 import Ewf2Stream

    return Ewf2Stream(path)


def _aff(path: Path) -> ImageStream:
    from bitwitness.images.aff import AffStream

    return AffStream(path)


def _udif(path: Path) -> ImageStream:
    from bitwitness.images.udif import UdifStream

    return UdifStream(path)


def _qcow(path: Path) -> ImageStream:
    from bitwitness.images.qcow import QcowStream

    return QcowStream(path)


def _vmdk(path: Path) -> ImageStream:
    from bitwitness.images.vmdk import open_vmdk

    return open_vmdk(path)


def _vhd(path: Path) -> ImageStream:
    from bitwitness.images.vhd import open_vhd

    return open_vhd(path)


def _partclone(path: Path) -> ImageStream:
    from bitwitness.images.partclone import PartcloneStream

    return PartcloneStream(path)


def _ntfsclone(path: Path) -> ImageStream:
    from bitwitness.images.ntfsclone import NtfscloneStream

    return NtfscloneStream(path)


def _ewf(path: Path) -> ImageStream:
    from bitwitness.ewf.reader import EwfImage

    return EwfImage(path)


def _aff4(path: Path) -> ImageStream:
    from bitwitness.images.aff4 import Aff4Stream

    return Aff4Stream(path)


def _zip_without_turtle() -> bytes:
    """A ZIP file (the AFF4 volume opens) holding no ``information.turtle`` (refused)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("readme.txt", "not an AFF4 volume")
    return buffer.getvalue()


def _dynamic_vhd() -> bytes:
    """A dynamic VHD footer (copy at the start and at the end) whose dynamic header is not one:
    the reader opens the file, reads the footer, then refuses the header."""
    footer = bytearray(512)
    footer[0:8] = b"conectix"
    struct.pack_into(">IIQ", footer, 8, 2, 0x00010000, 512)  # features, version, header offset
    struct.pack_into(">QQ", footer, 40, 1 << 20, 1 << 20)  # original and current size
    struct.pack_into(">I", footer, 60, 3)  # dynamic
    checksum = (~sum(footer)) & 0xFFFFFFFF
    struct.pack_into(">I", footer, 64, checksum)
    return bytes(footer) + b"cxsparse-not" + bytes(1012) + bytes(footer)


#: Each reader, and the start of a file it opens and then refuses.
CASES: dict[str, tuple[Callable[[Path], ImageStream], bytes]] = {
    "qed": (_qed, b"QED\x00" + bytes(4096)),
    "vdi": (_vdi, b"<<< Oracle VM VirtualBox Disk Image >>>\n".ljust(64, b"\0")
            + struct.pack("<I", 0xBEDA107F) + bytes(448)),
    "parallels": (_parallels, b"WithoutFreeSpace" + bytes(4096)),
    "sparseimage": (_sparseimage, b"sprs" + bytes(4096)),
    "android-sparse": (_android, struct.pack("<I", 0xED26FF3A) + bytes(4096)),
    "ex01": (_ex01, b"EVF2\x0d\x0a\x81\x00" + bytes(4096)),
    "aff": (_aff, b"AFF10\r\n\x00" + bytes(4096)),
    "aff4": (_aff4, _zip_without_turtle()),
    "dmg": (_udif, bytes(4096) + b"koly" + bytes(508)),
    "qcow2": (_qcow, b"QFI\xfb\x00\x00\x00\x03" + bytes(4096)),
    "vmdk": (_vmdk, b"KDMV" + bytes(4096)),
    "vhd": (_vhd, _dynamic_vhd()),
    "partclone": (_partclone, b"partclone-image\x000.3.23\x000002" + bytes(4096)),
    "ntfsclone": (_ntfsclone, b"\x00ntfsclone-image" + bytes(4096)),
    "e01": (_ewf, b"EVF\x09\x0d\x0a\xff\x00" + bytes(4096)),
}


@pytest.mark.parametrize("kind", sorted(CASES))
def test_a_refused_image_leaves_other_files_open(tmp_path: Path, kind: str) -> None:
    opener, content = CASES[kind]
    image = tmp_path / f"refused.{kind}"
    image.write_bytes(content)
    other = tmp_path / "other"
    other.write_bytes(b"another file")
    gc.collect()
    gc.disable()  # the half-made stream goes when the error does, not at a collection between
    try:
        error: BitWitnessError | None = None
        try:
            opener(image)
        except BitWitnessError as exc:
            error = exc
        assert error is not None, f"{kind}: the damaged file was not refused"
        fd = os.open(other, os.O_RDONLY)
        try:
            del error  # the traceback, and with it the half-made stream, goes here
            gc.collect()
            assert os.pread(fd, 64, 0) == b"another file"
        finally:
            os.close(fd)
    finally:
        gc.enable()
