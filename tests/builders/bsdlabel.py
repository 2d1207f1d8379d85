"""Test-only writer of a BSD disklabel (i386 layout), for a whole disk or an MBR slice.

No tool on Debian writes a whole-disk BSD label where The Sleuth Kit and the BSDs look for it:
``parted mklabel bsd`` puts the label at byte 64 of sector 0 (the Alpha layout, which TSK does
not read), ``fdisk`` writes one only nested in a DOS partition, and ``bsdlabel``/``disklabel``
are not packaged. This writer follows the public description of the label (FreeBSD's and
NetBSD's ``disklabel(5)``, ``<sys/disklabel.h>``), checked against the label ``parted`` writes:

- the label lies in the second sector of the disk or slice (``LABELSECTOR 1``, offset 0);
- ``d_magic`` (0x82564557) at byte 0 and again as ``d_magic2`` at byte 132, ``d_secsize`` at 40,
  ``d_secperunit`` at 60, ``d_checksum`` at 136 (the XOR of the label's 16-bit words, up to the
  last partition, computed with the field at zero), ``d_npartitions`` at 138, ``d_bbsize`` and
  ``d_sbsize`` at 140 and 144, then 16 bytes per partition from byte 148: ``p_size``,
  ``p_offset`` (sectors), ``p_fsize``, ``p_fstype`` (7 = 4.2BSD, 8 = MSDOS), ``p_frag``,
  ``p_cpg``; partition ``c`` (index 2) covers the whole disk or slice.

util-linux (``sfdisk -d``, ``fdisk -l``) reads the labels it writes back, which the tests use as
an independent check of this writer.
"""

from __future__ import annotations

import struct
from pathlib import Path

MAGIC = 0x82564557
SECTOR = 512
LABEL_SECTOR = 1
FS_UNUSED = 0
FS_BSDFFS = 7  # "4.2BSD"
FS_MSDOS = 8
RAW_PART = 2  # partition "c": the whole disk or slice
_PARTITIONS_AT = 148


def disklabel(partitions: dict[int, tuple[int, int, int]], *, sectors: int,
              raw_offset: int = 0, count: int = 8) -> bytes:
    """A 512-byte label sector. ``partitions`` maps an index (0 = ``a``) to ``(offset, size,
    fstype)`` in sectors; the raw partition ``c`` gets ``(raw_offset, sectors, unused)``.

    ``raw_offset`` is the slice's first sector when the offsets count from the disk's start (as
    OpenBSD, NetBSD, older FreeBSD and util-linux's nested labels count), 0 when they count from
    the slice's (FreeBSD's labels since 5.0, and every whole-disk label).
    """
    table = {RAW_PART: (raw_offset, sectors, FS_UNUSED), **partitions}
    label = bytearray(_PARTITIONS_AT + 16 * count)
    struct.pack_into("<I", label, 0, MAGIC)
    label[8:16] = b"SCSI".ljust(8, b"\0")
    label[24:40] = b"bitwitness-test".ljust(16, b"\0")
    # secsize, sectors/track, tracks/cylinder, cylinders, sectors/cylinder, sectors/unit
    struct.pack_into("<6I", label, 40, SECTOR, 63, 255, max(1, sectors // (63 * 255)),
                     63 * 255, sectors)
    struct.pack_into("<H", label, 72, 3600)  # d_rpm
    struct.pack_into("<I", label, 132, MAGIC)
    struct.pack_into("<HII", label, 138, count, 8192, 0)
    for index, (offset, size, fstype) in table.items():
        struct.pack_into("<IIIBBH", label, _PARTITIONS_AT + 16 * index, size, offset,
                         2048 if fstype == FS_BSDFFS else 0, fstype,
                         8 if fstype == FS_BSDFFS else 0, 0)
    checksum = 0
    for (word,) in struct.iter_unpack("<H", bytes(label)):
        checksum ^= word
    struct.pack_into("<H", label, 136, checksum)
    return bytes(label).ljust(SECTOR, b"\0")


def write_disklabel(image: Path, partitions: dict[int, tuple[int, int, int]], *,
                    first_sector: int = 0, sectors: int, absolute: bool = False) -> None:
    """Write a label into ``image`` for the disk or slice starting at ``first_sector``.

    With ``absolute`` the offsets given (relative to the slice) are stored counted from the
    disk's start, as OpenBSD/NetBSD and util-linux store them.
    """
    shift = first_sector if absolute else 0
    stored = {index: (offset + shift, size, fstype)
              for index, (offset, size, fstype) in partitions.items()}
    sector = disklabel(stored, sectors=sectors, raw_offset=shift)
    with image.open("r+b") as fh:
        fh.seek((first_sector + LABEL_SECTOR) * SECTOR)
        fh.write(sector)
