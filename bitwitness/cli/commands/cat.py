"""``bitwitness cat``: the bytes of one file inside an image on stdout (as ``icat``)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from bitwitness.cli.commands._browse import fs_options, image_argument, opened_checked, printable
from bitwitness.errors import NotRecoveredError, UsageError


@click.command("cat")
@image_argument
@click.argument("path", required=False)
@click.option("--inode", metavar="N", help="Inode address instead of a path (N or N-TYPE-ID).")
@fs_options
def command(*, image: Path, path: str | None, inode: str | None, partition: int | str | None,
            offset: int | None) -> None:
    """Write the content of one file (or NTFS stream, PATH:stream) to stdout, byte for byte.

    Deleted files give what The Sleuth Kit recovers, as icat does; where that cannot be the
    deleted file's content (its inode was reused or cleared) the command says so and exits 1.
    So it does, after writing the bytes, when some of them lie in sectors the acquisition could
    not read (zeros in the image), naming those sectors, when a deleted NTFS file's clusters
    are allocated again, or when the file system gave fewer bytes than the file's size.
    """
    from bitwitness.report.browse.doubts import doubts, short_read_note

    if (path is None) == (inode is None):
        raise UsageError("give either PATH or --inode N")
    out = sys.stdout.buffer
    with opened_checked(image, partition, offset) as (fs, unreadable):
        entry = fs.target(path, inode)
        read = 0
        for block in fs.iter_content(entry):
            out.write(block)
            read += len(block)
        note = fs.content_note(entry)
        if note is None:
            found = doubts(fs, entry, unreadable)
            if (short := short_read_note(fs, entry, read)) is not None:
                found.append(short)
            note = "; ".join(found) or None
    out.flush()
    if note is not None:
        raise NotRecoveredError(f"{printable(entry.display_path or entry.address)}: {note}")
