"""Booting evidence as a virtual machine without touching it: a copy-on-write overlay.

The hypervisor gets a QCOW2 file whose *backing file* is the mounted, read-only ``media.raw``:
every sector the guest writes lands in the overlay, every sector it has not written is read
from the evidence through the mount. The image itself is never opened for writing, by us or by
the hypervisor (the mount refuses writes with ``EROFS`` in any case). ``qemu-img`` creates the
overlay, so that its format is exactly the one qemu reads.

VirtualBox and VMware do not follow a QCOW2 backing file; for them a VMDK *descriptor* (a text
file) names ``media.raw`` as one read-only flat extent, and the disk is attached as
``immutable`` (VirtualBox) or independent-nonpersistent (VMware), which keeps the guest's writes
in the hypervisor's own differencing file.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from bitwitness.errors import InputError, OutputExistsError, UsageError

QEMU = "qemu-system-x86_64"


@dataclass(frozen=True)
class Overlay:
    """An overlay made for one mounted media."""

    path: Path  #: the QCOW2 overlay
    backing: Path  #: the mounted media.raw it reads from
    size: int  #: virtual size in bytes (the media's)
    descriptor: Path  #: the VMDK descriptor over the same media.raw, for VirtualBox/VMware


def create_overlay(backing: Path, overlay: Path, *, overwrite: bool = False) -> Overlay:
    """Create ``overlay`` (QCOW2, backing file ``backing`` as raw) and its VMDK descriptor.

    Refuses an existing overlay or descriptor unless ``overwrite``; raises :class:`InputError`
    when ``qemu-img`` is missing or fails.
    """
    backing = backing.absolute()
    overlay = overlay.absolute()
    descriptor = overlay.with_suffix(".vmdk")
    for target in (overlay, descriptor):
        if target.exists() and not overwrite:
            raise OutputExistsError(target)
    tool = shutil.which("qemu-img")
    if tool is None:
        raise InputError("qemu-img is not installed (Debian package qemu-utils)")
    size = backing.stat().st_size
    done = subprocess.run([tool, "create", "-q", "-f", "qcow2", "-F", "raw", "-b", str(backing),
                           str(overlay)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        message = " ".join(done.stderr.split()) or f"exit status {done.returncode}"
        raise InputError(f"qemu-img could not create {overlay}: {message}")
    descriptor.write_text(vmdk_descriptor(backing, size), encoding="utf-8")
    return Overlay(overlay, backing, size, descriptor)


def vmdk_descriptor(backing: Path, size: int) -> str:
    """A monolithicFlat VMDK descriptor naming ``backing`` as its one flat extent.

    The extent is declared ``RW`` because qemu skips extents of any other access; the mount
    under ``backing`` refuses every write whatever the descriptor says. The size is rounded
    down to whole sectors (a VMDK extent counts 512-byte sectors).
    """
    sectors = size // 512
    heads, per_track = 16, 63
    cylinders = max(1, min(16383, sectors // (heads * per_track)))
    name = str(backing).replace("\\", "\\\\").replace('"', '\\"')
    return "\n".join([
        "# Disk DescriptorFile",
        "version=1",
        "CID=fffffffe",
        "parentCID=ffffffff",
        'createType="monolithicFlat"',
        "",
        "# Extent description",
        f'RW {sectors} FLAT "{name}" 0',
        "",
        "# The Disk Data Base",
        "#DDB",
        'ddb.virtualHWVersion = "4"',
        'ddb.adapterType = "ide"',
        f'ddb.geometry.cylinders = "{cylinders}"',
        f'ddb.geometry.heads = "{heads}"',
        f'ddb.geometry.sectors = "{per_track}"',
        "",
    ])


def qemu_command(overlay: Path, *, memory_mib: int = 1024, nographic: bool = False,
                 accel: str = "auto", extra: tuple[str, ...] = ()) -> list[str]:
    """The qemu command line that boots ``overlay``.

    ``accel`` "auto" takes KVM when this machine offers it, else software emulation (TCG).
    The disk is on IDE, which every guest since DOS can boot from without extra drivers.
    """
    if memory_mib < 16:
        raise UsageError("a virtual machine needs at least 16 MiB of memory")
    if accel == "auto":
        accel = "kvm" if os.access("/dev/kvm", os.R_OK | os.W_OK) else "tcg"
    command = [QEMU, "-accel", accel, "-m", str(memory_mib),
               "-drive", f"file={overlay.absolute()},format=qcow2,if=ide,index=0,media=disk",
               "-boot", "c"]
    if nographic:
        command.append("-nographic")
    return [*command, *extra]


def hypervisor_notes(overlay: Overlay) -> list[str]:
    """How to attach the same evidence to VirtualBox and VMware, as lines to print."""
    vmdk = shlex.quote(str(overlay.descriptor))
    return [
        f"VirtualBox: VBoxManage storageattach VM --storagectl IDE --port 0 --device 0 "
        f"--type hdd --mtype immutable --medium {vmdk}",
        f"VMware: add {vmdk} as an existing disk in independent-nonpersistent mode",
        "both read media.raw through the mount and keep the guest's writes in their own "
        "differencing file",
    ]


def run_qemu(command: list[str]) -> int:
    """Run the hypervisor in the foreground (its console is the terminal); its exit status."""
    if shutil.which(command[0]) is None:
        raise InputError(f"{command[0]} is not installed (Debian package qemu-system-x86)")
    return subprocess.run(command, check=False).returncode
