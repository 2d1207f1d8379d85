"""A Parallels ``.hdd`` bundle around extents ``qemu-img`` wrote (QEMU writes a lone ``.hds``
extent and no bundle; Parallels Desktop writes the bundle, which no tool here does).

From the format's public description: the folder holds ``DiskDescriptor.xml`` and the extent
files. The descriptor's ``Disk_Parameters/Disk_size`` is the media size in sectors; each
``StorageData/Storage`` covers sectors ``Start`` to ``End`` and names, per snapshot, an
``Image`` (``GUID``, ``Type`` ``Compressed`` for a sparse extent or ``Plain`` for raw bytes,
``File``); ``Snapshots`` lists each snapshot (``Shot``: ``GUID``, ``ParentGUID``), the one no
other names as parent being the one in use. The descriptor is written one element a line, with
a physical sector size of 4096, as Parallels Desktop writes it (libphdi refuses other layouts).
"""

from __future__ import annotations

import struct
import uuid
from pathlib import Path


def to_sector_units(extent: Path) -> None:
    """Rewrite a sparse extent ``qemu-img`` wrote (signature ``WithouFreSpacExt``, table entries
    counting clusters) as the older variant Parallels Desktop keeps in bundles (signature
    ``WithoutFreeSpace``, entries counting 512-byte sectors); the data stays where it is."""
    data = bytearray(extent.read_bytes())
    assert data[:16] == b"WithouFreSpacExt"
    cluster_sectors, entries = struct.unpack_from("<II", data, 28)
    data[:16] = b"WithoutFreeSpace"
    for i in range(entries):
        value = struct.unpack_from("<I", data, 64 + 4 * i)[0]
        struct.pack_into("<I", data, 64 + 4 * i, value * cluster_sectors)
    extent.write_bytes(bytes(data))


def build_bundle(folder: Path, extents: list[tuple[int, int, str, Path]]) -> Path:
    """``folder`` as a bundle of ``extents``: (start sector, end sector, "Compressed" or
    "Plain", file already inside ``folder``)."""
    guid = "{" + str(uuid.uuid4()) + "}"
    size = max(end for _, end, _, _ in extents)
    lines = ["<?xml version='1.0' encoding='UTF-8'?>", '<Parallels_disk_image Version="1.0">',
             " <Disk_Parameters>", f"  <Disk_size>{size}</Disk_size>",
             f"  <Cylinders>{max(1, size // 512)}</Cylinders>",
             "  <PhysicalSectorSize>4096</PhysicalSectorSize>", "  <Heads>16</Heads>",
             "  <Sectors>32</Sectors>", "  <Padding>0</Padding>", "  <Encryption>",
             "   <Engine>{00000000-0000-0000-0000-000000000000}</Engine>", "   <Data></Data>",
             "  </Encryption>", f"  <UID>{{{uuid.uuid4()}}}</UID>", "  <Name>disk</Name>",
             "  <Miscellaneous>", "   <CompatLevel>level2</CompatLevel>",
             "   <Bootable>1</Bootable>", "   <SuspendState>0</SuspendState>",
             "  </Miscellaneous>", " </Disk_Parameters>", " <StorageData>"]
    for start, end, kind, path in extents:
        lines += ["  <Storage>", f"   <Start>{start}</Start>", f"   <End>{end}</End>",
                  "   <Blocksize>2048</Blocksize>", "   <Image>", f"    <GUID>{guid}</GUID>",
                  f"    <Type>{kind}</Type>", f"    <File>{path.name}</File>", "   </Image>",
                  "  </Storage>"]
    lines += [" </StorageData>", " <Snapshots>", "  <Shot>",
              f"   <GUID>{guid}</GUID>",
              "   <ParentGUID>{00000000-0000-0000-0000-000000000000}</ParentGUID>", "  </Shot>",
              " </Snapshots>", "</Parallels_disk_image>", ""]
    (folder / "DiskDescriptor.xml").write_text("\n".join(lines))
    return folder
