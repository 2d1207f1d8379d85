"""``bitwitness mount``: the image as a read-only FUSE file system (media, partitions, files)."""

from __future__ import annotations

from pathlib import Path

import click

from bitwitness.cli.commands._browse import key_options, volume_keys
from bitwitness.cli.image_options import chosen_format, format_option_in_context
from bitwitness.cli.output import escape, stdout, warn


@click.command("mount")
@click.argument("paths", nargs=-1, required=True, metavar="[IMAGE] MOUNTPOINT",
                type=click.Path(path_type=Path))
@click.option("--files", "with_files", is_flag=True,
              help="Also show files/<partition>/ (file trees, deleted entries in "
                   "files/<partition>.deleted/, NTFS streams as name:stream).")
@click.option("--background", is_flag=True,
              help="Return once mounted; unmount with 'bitwitness umount MOUNTPOINT'.")
@click.option("--case", "case_dir", type=click.Path(path_type=Path), default=None,
              help="Record mount and unmount in this case's custody log (default: the case "
                   "folder holding IMAGE).")
@click.option("--evidence", "evidence_id", default=None,
              help="Evidence ID for the custody events (default: the item holding IMAGE).")
@click.option("--cache-mib", type=click.IntRange(min=1, max=65536), default=64, show_default=True,
              help="Memory for the chunk cache, in MiB.")
@key_options
@format_option_in_context
def command(*, paths: tuple[Path, ...], with_files: bool, background: bool,
            case_dir: Path | None, evidence_id: str | None, cache_mib: int) -> None:
    """Mount IMAGE read-only at MOUNTPOINT (an empty folder) with FUSE.

    IMAGE may be left out with --case and --evidence: the evidence item's image is mounted.

    MOUNTPOINT shows media.raw (the whole media, any format BitWitness reads) and
    partitions/N.raw (N as 'bitwitness partitions' numbers them), for sha256sum, mmls, fls,
    qemu-img or 'mount -o ro,loop'. Nothing can be written. Runs in the foreground until Ctrl-C
    (which unmounts) unless --background is given.

    With --files, volumes inside the partitions show too (files/0_bde1/ for the file system
    of volume 0/bde1, partitions/0_bde1.raw for its bytes); an encrypted volume's key is given
    as to 'ls' (foreground mounts only).

    An L01/Lx01 logical evidence file holds files, not a disk: media.raw is its media (the files
    end to end, what its stored hashes cover), files/0/ its file tree with --files, and there is
    no partitions/.
    """
    from bitwitness.errors import MountError
    from bitwitness.image import open_image
    from bitwitness.report.mount.service import (
        MountRequest,
        case_link,
        check_mountpoint,
        fuse_available,
        mount_in_background,
        serve,
    )

    image, mountpoint = _image_and_mountpoint(paths, case_dir, evidence_id)
    why = fuse_available()
    if why:
        raise MountError(why)
    check_mountpoint(mountpoint.absolute())
    open_image(image, chosen_format()).close()  # a missing or unreadable image fails here
    link = case_link(image, case_dir, evidence_id)
    from bitwitness import signing

    # the mount and unmount events of a case that trusts keys are signed: the key is checked now,
    # not when the mount is up (or, for the unmount, hours later)
    signing.prepare(link.case_dir if link is not None else None)
    request = MountRequest(image, mountpoint, files=with_files, case=link,
                           cache_bytes=cache_mib * 1024 * 1024, keys=volume_keys(),
                           image_format=chosen_format())
    if background:
        pid = mount_in_background(request)
        stdout.print(f"mounted {escape(str(image))} at {escape(str(mountpoint))} (pid {pid}); "
                     f"unmount with: bitwitness umount {escape(str(mountpoint))}")
        return
    serve(request, notice=warn, ready=lambda: stdout.print(
        f"mounted {escape(str(image))} at {escape(str(mountpoint))} read-only; "
        "Ctrl-C unmounts"))
    stdout.print(f"unmounted {escape(str(mountpoint))}")


def _image_and_mountpoint(paths: tuple[Path, ...], case_dir: Path | None,
                          evidence_id: str | None) -> tuple[Path, Path]:
    from bitwitness.errors import UsageError
    from bitwitness.report.mount.service import evidence_image

    if len(paths) == 2:
        return paths[0], paths[1]
    if len(paths) == 1 and case_dir is not None and evidence_id is not None:
        return evidence_image(case_dir, evidence_id), paths[0]
    raise UsageError("give IMAGE MOUNTPOINT, or --case CASE_DIR --evidence ID MOUNTPOINT")
