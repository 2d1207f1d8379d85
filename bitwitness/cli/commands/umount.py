"""``bitwitness umount``: unmount a BitWitness mount and wait for its server to finish."""

from __future__ import annotations

from pathlib import Path

import click

from bitwitness.cli.output import escape, stdout


@click.command("umount")
@click.argument("mountpoint", type=click.Path(path_type=Path))
def command(mountpoint: Path) -> None:
    """Unmount MOUNTPOINT (a 'bitwitness mount'); a busy mount stays mounted (exit 2).

    Returns once the server has stopped, and with it recorded the unmount in the custody log.
    """
    from bitwitness.report.mount.service import unmount

    unmount(mountpoint)
    stdout.print(f"unmounted {escape(str(mountpoint))}")
