"""The one interface a browsable file system offers: what ``ls``, ``stat``, ``cat``, ``export``,
``timeline``, the browser and a read-only mount use, whatever reads the file system.

:class:`~bitwitness.report.browse.filesystem.FileSystem` (The Sleuth Kit through pytsk3) is one
implementation; a file system TSK lacks (APFS, XFS, one inside LUKS or BitLocker) implements the
same methods over its own reader and the commands work on it unchanged. Records are the frozen
ones of :mod:`~bitwitness.report.browse.entries`; failures are
:class:`~bitwitness.errors.FileSystemError` (or the stream's own evidence error).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from bitwitness.progress import Mediator
from bitwitness.report.browse.entries import Entry, FileStat, Selection, Times
from bitwitness.report.browse.volumes import Partition


class BrowsableFileSystem(Protocol):
    """A file system inside an image, read-only."""

    type: str  #: "ntfs", "fat32", "ext4", ... (as ``fsstat`` names it)
    partition: Partition  #: where it lies in the image

    def walk(self, path: str = "/", *, recursive: bool = False,
             selection: Selection = Selection.ALLOCATED, mediator: Mediator | None = None,
             file_names: bool = False) -> Iterator[Entry]:
        """Entries of a folder (and below it), in directory order, as ``fls -p`` lists them."""
        ...

    def lookup(self, path: str) -> Entry:
        """The entry at an absolute ``/``-separated path (``name:stream`` for a stream)."""
        ...

    def names(self, path: str) -> list[str]:
        """The stored name of each component of ``path`` (``name:stream`` last for a stream),
        however the path spelled them."""
        ...

    def by_address(self, address: str) -> Entry:
        """The entry at an inode address (``15``, NTFS ``8-128-1``), as ``icat`` takes it."""
        ...

    def target(self, path: str | None = None, address: str | None = None) -> Entry:
        """``lookup(path)`` or ``by_address(address)``: exactly one is given."""
        ...

    def stat(self, entry: Entry) -> FileStat:
        """Inode metadata, as ``istat`` shows it."""
        ...

    def iter_content(self, entry: Entry, block: int = 1 << 20) -> Iterator[bytes]:
        """The entry's bytes (its stream's), as ``icat`` gives them."""
        ...

    def read(self, entry: Entry, offset: int = 0, size: int = 4096) -> bytes:
        """Up to ``size`` bytes from ``offset`` (previews)."""
        ...

    def content_note(self, entry: Entry) -> str | None:
        """Why the content cannot be this file's (deleted, inode reused or cleared), or None."""
        ...

    def file_name_times(self, entry: Entry) -> Times | None:
        """Second set of times where the file system keeps one (NTFS ``$FILE_NAME``)."""
        ...
