"""Block devices as the kernel describes them: sysfs facts, udev serials, mount state.

Everything here only *reads* (``/sys``, ``/run/udev/data``, ``/proc/self/mountinfo``); nothing opens
a device. The acquisition log and ``bitwitness devices`` both use these records, so what the
examiner saw in the list is exactly what the log records.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

SYS_BLOCK = Path("/sys/block")
SYS_DEV_BLOCK = Path("/sys/dev/block")
UDEV_DATA = Path("/run/udev/data")
MOUNTINFO = Path("/proc/self/mountinfo")


@dataclass(frozen=True)
class MountEntry:
    """One mount of a block device (from ``/proc/self/mountinfo``)."""

    device: str  #: e.g. /dev/sda1 (the kernel name of the mounted block device)
    devnum: int  #: st_rdev of that device
    mountpoint: str
    fstype: str
    options: str  #: per-mount options, e.g. "rw,relatime"
    writable: bool  #: mounted read-write (per-mount and superblock)


@dataclass(frozen=True)
class BlockDevice:
    """What the kernel knows of one whole disk (or a partition, when asked about one)."""

    name: str  #: kernel name: sda, nvme0n1, loop0, sda1
    path: str  #: /dev/<name>
    devnum: int
    size: int  #: bytes
    logical_sector_size: int
    physical_sector_size: int
    model: str
    serial: str
    vendor: str
    transport: str  #: usb, nvme, sata, virtio, loop, mmc, scsi, ... or "" when unknown
    removable: bool
    readonly: bool  #: the kernel's read-only flag (BLKROGET / sysfs ro)
    partition: bool  #: True for a partition, False for a whole disk
    parent: str  #: whole-disk name for a partition, "" otherwise
    partitions: tuple[str, ...]
    backing_file: str  #: loop devices: the file behind the device
    mounts: tuple[MountEntry, ...]  #: mounts of this device, its partitions and its holders


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace").strip()
    except OSError:
        return ""


def _read_int(path: Path, default: int = 0) -> int:
    try:
        return int(_read(path))
    except ValueError:
        return default


def _devnum(text: str) -> int:
    major, minor = (int(x) for x in text.split(":"))
    return os.makedev(major, minor)


def sysfs_dir(devnum: int) -> Path | None:
    """The sysfs folder of a block device number (``/sys/class/block/<name>``), if any."""
    link = SYS_DEV_BLOCK / f"{os.major(devnum)}:{os.minor(devnum)}"
    if not link.exists():
        return None
    return link.resolve()


def _udev(devnum: int) -> dict[str, str]:
    values: dict[str, str] = {}
    text = _read(UDEV_DATA / f"b{os.major(devnum)}:{os.minor(devnum)}")
    for line in text.splitlines():
        if line.startswith("E:") and "=" in line:
            key, _, value = line[2:].partition("=")
            values[key] = value
    return values


def _transport(disk_dir: Path, name: str, udev: dict[str, str]) -> str:
    real = str(disk_dir)
    checks = (("/usb", "usb"), ("/nvme", "nvme"), ("/mmc", "mmc"), ("/ata", "sata"),
              ("/virtio", "virtio"), ("/loop", "loop"), ("/md", "md"), ("/dm-", "dm"))
    for needle, label in checks:
        if needle in real:
            return label
    if name.startswith("loop"):
        return "loop"
    bus = udev.get("ID_BUS", "")
    if bus == "ata":
        return "sata"
    return bus or ("scsi" if name.startswith("sd") else "")


def _serial(disk_dir: Path, udev: dict[str, str]) -> str:
    for candidate in (disk_dir / "device" / "serial", disk_dir / "serial"):
        value = _read(candidate)
        if value:
            return value
    if udev.get("ID_SERIAL_SHORT"):
        return udev["ID_SERIAL_SHORT"]
    try:  # SCSI/SATA unit serial number page: 4-byte header, then the serial
        page = (disk_dir / "device" / "vpd_pg80").read_bytes()
    except OSError:
        return ""
    return page[4:].decode("ascii", "replace").strip(" \0")


def read_mounts() -> list[MountEntry]:
    """Every block-device mount of this process's mount namespace."""
    entries: list[MountEntry] = []
    for line in _read(MOUNTINFO).splitlines():
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        fields = left.split()
        after = right.split()
        if len(fields) < 6 or len(after) < 3:
            continue
        try:
            devnum = _devnum(fields[2])
        except ValueError:
            continue
        if os.major(devnum) == 0:  # tmpfs, proc, overlay...: no block device behind it
            continue
        options = fields[5]
        writable = options.split(",")[0] == "rw" and after[2].split(",")[0] == "rw"
        entries.append(MountEntry(device=after[1], devnum=devnum,
                                  mountpoint=fields[4].replace("\\040", " "),
                                  fstype=after[0], options=options, writable=writable))
    return entries


def related_devnums(devnum: int) -> set[int]:
    """The device, its partitions and everything stacked on them (dm, md holders), recursively."""
    found: set[int] = set()
    todo = [devnum]
    while todo:
        current = todo.pop()
        if current in found:
            continue
        found.add(current)
        folder = sysfs_dir(current)
        if folder is None:
            continue
        children = [p for p in folder.iterdir() if (p / "partition").exists()]
        holders_dir = folder / "holders"
        if holders_dir.is_dir():
            children += [p.resolve() for p in holders_dir.iterdir()]
        for child in children:
            dev = _read(child / "dev")
            if dev:
                todo.append(_devnum(dev))
    return found


def describe_devnum(devnum: int, mounts: list[MountEntry] | None = None) -> BlockDevice | None:
    """Facts of the block device ``devnum`` (a whole disk or a partition); None if unknown."""
    folder = sysfs_dir(devnum)
    if folder is None:
        return None
    name = folder.name
    is_partition = (folder / "partition").exists()
    disk_dir = folder.parent if is_partition else folder
    udev = _udev(devnum)
    queue = disk_dir / "queue"
    related = related_devnums(devnum)
    all_mounts = read_mounts() if mounts is None else mounts
    partitions = () if is_partition else tuple(
        sorted(p.name for p in folder.iterdir() if (p / "partition").exists()))
    device_dir = disk_dir / "device"
    return BlockDevice(
        name=name,
        path=f"/dev/{name}",
        devnum=devnum,
        size=_read_int(folder / "size") * 512,  # sysfs counts 512-byte units whatever the sector
        logical_sector_size=_read_int(queue / "logical_block_size", 512),
        physical_sector_size=_read_int(queue / "physical_block_size", 512),
        model=_read(device_dir / "model") or udev.get("ID_MODEL", ""),
        serial=_serial(disk_dir, udev),
        vendor=_read(device_dir / "vendor") or udev.get("ID_VENDOR", ""),
        transport=_transport(disk_dir, disk_dir.name, udev),
        removable=_read(disk_dir / "removable") == "1",
        readonly=_read(folder / "ro") == "1",
        partition=is_partition,
        parent=disk_dir.name if is_partition else "",
        partitions=partitions,
        backing_file=_read(disk_dir / "loop" / "backing_file"),
        mounts=tuple(m for m in all_mounts if m.devnum in related),
    )


def list_devices(*, include_empty: bool = False) -> list[BlockDevice]:
    """Every whole disk in ``/sys/block`` (unattached loop and zero-size devices left out)."""
    mounts = read_mounts()
    devices: list[BlockDevice] = []
    if not SYS_BLOCK.is_dir():
        return devices
    for entry in sorted(SYS_BLOCK.iterdir()):
        dev = _read(entry / "dev")
        if not dev:
            continue
        info = describe_devnum(_devnum(dev), mounts)
        if info is None or (info.size == 0 and not include_empty):
            continue
        devices.append(info)
    return devices
