"""``bitwitness devices``: the block devices this machine sees, with what the log would record."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from bitwitness.cli.output import escape, json_option, print_json, stdout, to_jsonable
from bitwitness.sizes import format_size

if TYPE_CHECKING:
    from bitwitness.acquire.guardrails import FlagNote


@click.command("devices")
@click.option("--all", "include_empty", is_flag=True,
              help="Also list empty devices (unattached loop devices, empty card readers).")
@click.option("--restore-readonly", "restore", metavar="DEVICE",
              help="Clear the kernel read-only flag that a killed BitWitness run left set on "
                   "DEVICE (a flag BitWitness did not set is not touched).")
@json_option
def command(include_empty: bool, restore: str | None, as_json: bool) -> None:
    """List block devices: size, sector sizes, model, serial, transport, mount state.

    Nothing is opened; the facts come from sysfs, udev and /proc/self/mountinfo.
    """
    from rich.table import Table

    from bitwitness.acquire.devices import list_devices

    if restore is not None:
        from bitwitness.acquire.source import restore_readonly

        done = restore_readonly(restore)
        if as_json:
            print_json({"restored": restore, "detail": done})
        else:
            stdout.print(escape(done))
        return

    from bitwitness.acquire.guardrails import left_set

    devices = list_devices(include_empty=include_empty)
    notes = {dev.path: note for dev in devices if (note := left_set(dev)) is not None}
    if as_json:
        print_json({"devices": [{**to_jsonable(dev), "readonly_left_by_bitwitness":
                                 _note_doc(notes.get(dev.path))} for dev in devices]})
        return
    if not devices:
        stdout.print("no block devices found")
        return
    table = Table(box=None, header_style="bold")
    for column in ("DEVICE", "SIZE", "SECTOR", "MODEL", "SERIAL", "TRANSPORT", "RM", "RO",
                   "MOUNTED"):
        table.add_column(column)
    for dev in devices:
        mounts = ", ".join(f"{m.mountpoint} ({'rw' if m.writable else 'ro'})" for m in dev.mounts)
        if dev.backing_file:
            mounts = f"{mounts} [backing {dev.backing_file}]".strip()
        table.add_row(
            escape(dev.path), format_size(dev.size),
            f"{dev.logical_sector_size}/{dev.physical_sector_size}",
            escape(dev.model), escape(dev.serial), escape(dev.transport),
            "yes" if dev.removable else "no",
            ("yes*" if dev.path in notes else "yes") if dev.readonly else "no",
            escape(mounts) or "-",
        )
    stdout.print(table)
    for path, note in notes.items():
        stdout.print(f"* {escape(path)}: read-only flag {escape(note.describe())}; it was "
                     f"{'set' if note.was else 'clear'} before. Put it back with: bitwitness "
                     f"devices --restore-readonly {escape(path)}")


def _note_doc(note: FlagNote | None) -> dict[str, object] | None:
    if note is None:
        return None
    return {"log": note.log, "since": note.since, "was": note.was,
            "partitions": list(note.partitions)}
