"""``bitwitness info``: what an image says about itself, as ``ewfinfo`` shows it.

A thin adapter over :func:`bitwitness.verify.info.image_info`. Nothing is hashed: this reads
metadata only (E01 headers, tables, hash and error sections; hash logs next to raw images).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from bitwitness.cli.image_options import format_option
from bitwitness.cli.output import escape, json_option, print_json, stdout
from bitwitness.errors import CorruptImageError, IncompleteImageError
from bitwitness.ewf.headers import DATE_NAMES, STORED_SUFFIX, UNKNOWN_ZONE, ZONE_SUFFIX
from bitwitness.images.raw import PARTIAL_SUFFIX
from bitwitness.sizes import format_size

if TYPE_CHECKING:
    from bitwitness.verify.info import ImageInfo, Unfinished

#: ewfinfo's labels for the header values, in its order.
HEADER_LABELS = (
    ("case_number", "Case number"), ("description", "Description"),
    ("examiner_name", "Examiner name"), ("evidence_number", "Evidence number"),
    ("notes", "Notes"), ("acquiry_date", "Acquisition date"), ("system_date", "System date"),
    ("acquiry_operating_system", "Operating system used"),
    ("acquiry_software_version", "Software version used"), ("model", "Model"),
    ("serial_number", "Serial number"),
)


@click.command("info")
@click.argument("image", type=click.Path(path_type=Path))
@format_option
@json_option
def command(image: Path, image_format: str | None, as_json: bool) -> None:
    """Show what IMAGE records: case fields, format, media, stored hashes, error ranges, files.

    For raw and split raw images: the size, the files and any hash log found next to them.

    Exits 1 (after showing everything) when the image is an unfinished acquisition: an E01 set
    that was never finished, or raw output still named *.partial (BASE.raw.partial,
    BASE.001.partial, ...). Its media size is then what the E01 set or the acquisition log
    declares, and the readable media what the image actually holds. Exits 1 too when a file
    is cut short (QCOW, QED, VMDK or VHDX tables mapping data past its end), naming the media
    ranges whose data is missing, and when its tables are damaged (a table or data placed
    where no file of it reaches; verify calls it CORRUPT). Exits 0 otherwise, 2 when IMAGE
    cannot be opened.
    """
    from bitwitness.verify.info import image_info

    info = image_info(image) if image_format is None else image_info(image, image_format)
    if as_json:
        print_json(info)
    else:
        _render(info)
    if info.unfinished is not None:  # shown in full above, but it is an evidence problem
        raise IncompleteImageError(_incomplete_message(info, info.unfinished), path=image)
    if info.truncated:
        said = "; ".join(t.sentence() for t in info.truncated)
        raise IncompleteImageError(f"the image is INCOMPLETE: {said}", path=image)
    if info.damaged is not None:
        raise CorruptImageError(f"the image's tables are damaged: {info.damaged}", path=image)


def _incomplete_message(info: ImageInfo, unfinished: Unfinished) -> str:
    """The one stderr line: that the image is INCOMPLETE, why, and how much of it there is."""
    held, size = info.readable_media_size, info.media_size
    if info.ewf:
        of = (f"{held} media bytes; it does not record how many it was meant to hold"
              if unfinished.declared_media_size is None else f"{held} of its {size} media bytes")
        return ("the image is INCOMPLETE: the E01 set was never finished (interrupted write or "
                f"truncated file); it holds {of}")
    log = unfinished.log
    said = (f"{log.name} records it as {unfinished.status or 'unfinished'}" if log is not None
            else "no acquisition log next to it")
    held_of = (f"{held} bytes" if unfinished.declared_media_size is None
               else f"{held} of the {size} media bytes the log declares")
    return (f"the image is INCOMPLETE: an unfinished raw acquisition (still named "
            f"*{PARTIAL_SUFFIX}; {said}); its files hold {held_of}")


def _field(label: str, value: object) -> None:
    """One ``label: value`` line; a line break in the value (a case field typed over two
    lines) is shown as ``^``, as any control character, so that the value cannot pass for
    lines of its own."""
    stdout.print(f"  {label + ':':<24}{escape(_plain(value).replace(chr(10), chr(13)))}")


def _plain(value: object) -> str:
    """A detail as people read it: a mapping as ``cylinders 963, heads 8``, a list joined
    with commas (never Python's own rendering of either)."""
    if isinstance(value, dict):
        return ", ".join(f"{str(k).replace('_', ' ')} {_plain(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(_plain(v) for v in value)
    return str(value)


def _title(text: str) -> None:
    stdout.print(f"\n[bold]{text}[/]")


def _render(info: ImageInfo) -> None:
    """ewfinfo's sections, in its order, then what only we show (logs, files)."""
    stdout.print(f"[bold]{escape(str(info.image))}[/]  ({escape(info.format)})")
    if info.unfinished is not None:
        _render_unfinished(info.unfinished)
    if info.truncated:
        _render_truncated(info)
    if info.header_values:
        _title("Acquiry information")
        values = info.header_values
        # a date's stored form and zone are shown within the date's own line
        known = {key for key, _ in HEADER_LABELS} | {
            name + suffix for name in DATE_NAMES for suffix in (STORED_SUFFIX, ZONE_SUFFIX)}
        labels = list(HEADER_LABELS) + [(k, k) for k in values if k not in known]
        for key, label in labels:
            if key in values:
                _field(label, _zoned(key, values) if key in DATE_NAMES else values[key])
    if info.ewf:
        _title("EWF information")
        for key, value in info.ewf.items():
            _field(key.replace("_", " ").capitalize(), value)
    _render_media(info)
    _render_hashes(info)
    _title("Files")
    for f in info.files:
        stdout.print(f"  {escape(str(f.path))}  {f.size} bytes")
    for note in info.notes:
        stdout.print(f"[dim]note: {escape(note)}[/]")


def _render_unfinished(unfinished: Unfinished) -> None:
    """First, before anything else: the examiner must not read on as if the image were whole."""
    _title("[red]UNFINISHED ACQUISITION[/]")
    _field("Why", unfinished.reason)
    if unfinished.log is None:
        _field("Acquisition log", "none found next to the image")
        return
    _field("Acquisition log", unfinished.log.name)
    _field("Status in the log", unfinished.status or "(none recorded)")
    if unfinished.error:
        _field("Error in the log", unfinished.error)


def _render_truncated(info: ImageInfo) -> None:
    """First, as an unfinished acquisition is: the media below is not all in the image."""
    _title("[red]FILE CUT SHORT: the image is INCOMPLETE[/]")
    for cut in info.truncated:
        _field("File", cut.file)
        _field("Holds", f"{cut.file_size} bytes")
        _field("Its tables need", f"{cut.needed} bytes")
    sectors = sum(r.sector_count for r in info.missing_ranges)
    _field("Missing media", f"{sectors} sectors in {len(info.missing_ranges)} range(s); "
                            "no reader can give their data")
    for r in info.missing_ranges:
        stdout.print(f"  missing: sector(s) {r.first_sector} - {r.last_sector} "
                     f"(number: {r.sector_count})")


def _render_media(info: ImageInfo) -> None:
    _title("Media information")
    _field("Bytes per sector", info.sector_size)
    _field("Number of sectors", info.sectors)
    _field("Media size", f"{format_size(info.media_size)} ({info.media_size} bytes)")
    if info.unfinished is not None:
        readable = info.readable_media_size
        where = "complete chunk groups" if info.ewf else f"its *{PARTIAL_SUFFIX} files"
        _field("Readable media", f"{format_size(readable)} ({readable} bytes) in {where}: "
                                 "the image is INCOMPLETE")
    for key, value in info.details.items():
        _field(key.replace("_", " ").capitalize(), value)


def _render_hashes(info: ImageInfo) -> None:
    if info.stored_hashes:
        _title("Digest hash information")
        for alg, value in info.stored_hashes.items():
            _field(alg.upper(), value)
    if info.recorded_hashes:
        _title("Hashes recorded in logs")
        for ref in info.recorded_hashes:
            stdout.print(f"  {ref.algorithm.upper():<7}{ref.value}  {escape(ref.scope)} "
                         f"({escape(ref.source)})")
    if info.error_ranges:
        _title("Read errors during acquisition")
        for r in info.error_ranges:
            stdout.print(f"  at sector(s): {r.first_sector} - {r.last_sector} "
                         f"(number: {r.sector_count})")


def _zoned(key: str, values: dict[str, str]) -> str:
    """A date with the zone it is in, since a time without its zone cannot be placed.

    header2 stores POSIX seconds, shown in UTC; a ``header`` section stores the acquiring
    machine's local wall-clock time and no zone (docs/EWF.md §4.2): shown as written and said
    to be of an unknown zone, never labelled UTC (an acquisition in New York would read five
    hours wrong). A zone the writer recorded is shown as recorded. Dates without a ``_zone``
    entry come from libewf (sets our reader hands to pyewf), which renders them in this
    machine's local time."""
    value, zone = values[key], values.get(key + ZONE_SUFFIX)
    if zone is None:
        return f"{value} (this machine's local time, as libewf renders it)"
    if zone == UNKNOWN_ZONE:
        return f"{value} (local time of the acquiring machine; zone not recorded)"
    return f"{value} {zone}"
