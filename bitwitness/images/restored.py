"""Second readers that are outside programs restoring an image into a raw file: ``simg2img``,
``ntfsclone --restore-image``, ``partclone.restore``.

Why one class: each such reader shares no code with ours (that is its worth), and each is run
the same way: on copies of the image's files made through the read-only evidence opener (the
programs open their input without ``O_NOATIME``, and the evidence's access time must not move),
into a temporary folder (``TMPDIR``) that needs room for the copies and the media
(:func:`~bitwitness.evidence_io.copies_for` says when it has none: the second reading is then
noted as not made), the raw file they write read as the media and removed on close. A program
that is not installed, or that refuses the image, is a recorded disagreement, as DESIGN.md asks
of every second reader. A subclass names the program and says how to run it, what its failure
line is, which version ran and how large the media is when the file ends early.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from bitwitness.errors import CorruptImageError, UnsupportedFormatError
from bitwitness.evidence_io import copies_for
from bitwitness.images.raw import read_exact
from bitwitness.stream import ImageStream, StreamInfo


class RestoredStream(ImageStream):
    """The media as an outside program restores it into a temporary raw file.

    Where the file ends before :meth:`media_size` (a program that seeks over a last gap without
    writing), the rest reads as zeros, as a restore onto a device of that size would hold it."""

    alignment = 1
    #: The program on PATH, and the Debian package that installs it.
    program: str = ""
    package: str = ""
    #: The format name ``info`` gives the second reading.
    format_name: str = ""

    def __init__(self, pieces: Sequence[Path], media_size: int) -> None:
        exe = shutil.which(self.program)
        if exe is None:
            raise UnsupportedFormatError(
                f"{self.program} is not installed (Debian package {self.package}): it is the "
                f"second reader of {self.format_name} images")
        self._path = pieces[0]
        self._pieces = tuple(pieces)
        self._fd = -1
        self._dir = tempfile.TemporaryDirectory(prefix=f"bitwitness-{self.format_name}-")
        try:
            self.ready(exe)
            folder = Path(self._dir.name)
            copies = copies_for(self.program, list(pieces), folder, extra=media_size)
            media = folder / "media.raw"
            done = subprocess.run(self.command(exe, copies, media, folder), capture_output=True,
                                  encoding="utf-8", errors="replace", check=False,
                                  stdin=subprocess.DEVNULL)
            for copy in copies:
                copy.unlink()
            said = f"{done.stderr}\n{done.stdout}"
            if done.returncode != 0 or not media.exists():
                reason = self.failure(done.stderr, done.stdout) or f"exit status {done.returncode}"
                raise CorruptImageError(f"{self.program} cannot read the image: {reason}",
                                        path=self._path)
            self._reader = self.version(exe, said)
            self._fd = os.open(media, os.O_RDONLY)
            self._written = os.fstat(self._fd).st_size
            size = max(self._written, self.media_size(said))
        except BaseException:
            if self._fd >= 0:
                os.close(self._fd)
            self._dir.cleanup()
            self._unmade()
            raise
        super().__init__(size)

    # --- what a subclass says ------------------------------------------------------------------

    def ready(self, exe: str) -> None:
        """Raise :class:`~bitwitness.errors.NoSecondReader` where the program cannot run here
        (it needs root, say); nothing by default."""

    def command(self, exe: str, copies: list[Path], media: Path, folder: Path) -> list[str]:
        """The command that restores ``copies`` (the image's files) into ``media``."""
        raise NotImplementedError

    def failure(self, stderr: str, stdout: str) -> str | None:
        """The line of the program's output that says why it failed; by default the last line
        of its standard error, else of its standard output."""
        lines = [line.strip() for line in (stderr.strip() or stdout).splitlines()
                 if line.strip()]
        return lines[-1] if lines else None

    def version(self, exe: str, said: str) -> str:
        """The reader as ``verify`` records it; by default the program's name."""
        return self.program

    def media_size(self, said: str) -> int:
        """The media's size where the file written may end before it; by default 0 (the
        file's size is the media's)."""
        return 0

    # --- the stream ---------------------------------------------------------------------------

    def _read_aligned(self, offset: int, length: int) -> bytes:
        n = max(0, min(length, self._written - offset))
        return read_exact(self._fd, offset, n, self._path) + bytes(length - n)

    @property
    def info(self) -> StreamInfo:
        return StreamInfo(format=self.format_name, files=self._pieces, media_size=self.size,
                          details={"reader": self._reader})

    def close(self) -> None:
        if not self.closed:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
            self._dir.cleanup()
        super().close()
