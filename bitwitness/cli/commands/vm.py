"""``bitwitness vm``: boot an image as a virtual machine through a copy-on-write overlay."""

from __future__ import annotations

import shlex
from pathlib import Path

import click

from bitwitness.cli.commands._browse import image_argument
from bitwitness.cli.output import escape, stdout
from bitwitness.errors import OutputExistsError


@click.command("vm")
@image_argument
@click.option("--overlay", "overlay_path", type=click.Path(path_type=Path), default=None,
              help="QCOW2 overlay to create (default: IMAGE's name + .overlay.qcow2 in the "
                   "current folder).")
@click.option("--mount-at", "mount_at", type=click.Path(path_type=Path), default=None,
              help="Empty folder to mount IMAGE on (default: the overlay's name + .mnt).")
@click.option("--run", "run_it", is_flag=True,
              help="Start qemu-system-x86_64 now, and unmount when it stops.")
@click.option("--memory", "memory_mib", type=click.IntRange(min=16), default=1024,
              show_default=True, help="Guest memory in MiB.")
@click.option("--accel", type=click.Choice(["auto", "kvm", "tcg"]), default="auto",
              show_default=True, help="KVM, software emulation (tcg), or KVM where available.")
@click.option("--nographic", is_flag=True, help="No window: serial console on the terminal.")
@click.option("--qemu-arg", "qemu_args", multiple=True, metavar="ARG",
              help="Extra argument for qemu (repeat for several).")
@click.option("--case", "case_dir", type=click.Path(path_type=Path), default=None,
              help="Record mount and unmount in this case's custody log.")
@click.option("--evidence", "evidence_id", default=None, help="Evidence ID for custody events.")
@click.option("--overwrite", is_flag=True, help="Replace an existing overlay.")
def command(*, image: Path, overlay_path: Path | None, mount_at: Path | None, run_it: bool,
            memory_mib: int, accel: str, nographic: bool, qemu_args: tuple[str, ...],
            case_dir: Path | None, evidence_id: str | None, overwrite: bool) -> None:
    """Boot IMAGE in a hypervisor without touching it.

    IMAGE is mounted read-only (in the background) and a QCOW2 overlay is created whose backing
    file is the mounted media.raw: the guest's writes go to the overlay only. Prints the qemu
    command line and how to attach the disk to VirtualBox or VMware; --run starts qemu.
    IMAGE may also be the media.raw of an existing 'bitwitness mount'.
    """
    from bitwitness.image import open_image
    from bitwitness.report.mount.service import (
        MountRequest,
        case_link,
        check_mountpoint,
        mount_in_background,
        mounted_media,
        unmount,
    )
    from bitwitness.report.mount.vm import (
        create_overlay,
        hypervisor_notes,
        qemu_command,
        run_qemu,
    )

    overlay_path = overlay_path or Path(f"{image.name}.overlay.qcow2")
    if overlay_path.exists() and not overwrite:
        raise OutputExistsError(overlay_path)
    mountpoint = None
    if mounted_media(image):
        backing = image.absolute()
    else:
        open_image(image).close()  # a missing or unreadable image fails here, in one line
        mountpoint = (mount_at or Path(f"{overlay_path}.mnt")).absolute()
        if mount_at is None:
            mountpoint.mkdir(exist_ok=True)
        check_mountpoint(mountpoint)
        mount_in_background(MountRequest(image, mountpoint,
                                         case=case_link(image, case_dir, evidence_id)))
        backing = mountpoint / "media.raw"
    try:
        overlay = create_overlay(backing, overlay_path, overwrite=overwrite)
        qemu = qemu_command(overlay.path, memory_mib=memory_mib, nographic=nographic,
                               accel=accel, extra=qemu_args)
    except BaseException:
        if mountpoint is not None:
            unmount(mountpoint)
        raise
    stdout.print(f"overlay: {escape(str(overlay.path))} (backing file "
                 f"{escape(str(overlay.backing))}, read-only)")
    stdout.print(f"qemu: {escape(shlex.join(qemu))}")
    for line in hypervisor_notes(overlay):
        stdout.print(escape(line))
    if not run_it:
        if mountpoint is not None:
            stdout.print(f"the evidence stays mounted at {escape(str(mountpoint))}; when done: "
                         f"bitwitness umount {escape(str(mountpoint))}")
        return
    try:
        status = run_qemu(qemu)
    finally:
        if mountpoint is not None:
            unmount(mountpoint)
    stdout.print(f"qemu exited with status {status}"
                 + (f"; unmounted {escape(str(mountpoint))}" if mountpoint is not None else ""))
