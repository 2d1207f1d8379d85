"""The options every benchmark in bench/ shares: ``--size SIZE``, ``--repeat N``, ``--dir DIR``,
and where a benchmark works when ``--dir`` is not given (:func:`work_folder`).

Why a module of its own: every benchmark declares its defaults here and gets the same options,
parsing (sizes through :func:`bitwitness.sizes.parse_size`), checks and help texts, so that the
spellings cannot drift apart between benchmarks.

The old spellings (``--runs``, ``--workdir``, a bare number of MiB) keep working for one release
as deprecated aliases: each prints a one-line note on stderr naming the new spelling.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # run as "python bench/x.py" from a checkout, installed or not
from bitwitness.errors import UsageError  # noqa: E402
from bitwitness.sizes import parse_size  # noqa: E402

_MIB = 1 << 20

#: Where the work folder goes without ``--dir``: a disk. Not /dev/shm: acquisition refuses any
#: output under /dev (acquire/guardrails.py), and a raw copy's floor is the disk it is written to.
#: Not /tmp: it is a RAM file system on many machines.
DISK_SCRATCH = Path("/var/tmp")  # noqa: S108 - a temporary folder of our own, removed after


def scratch_parent() -> Path:
    """The folder that holds a benchmark's temporary work folder when no ``--dir`` is given:
    :data:`DISK_SCRATCH` where it is a writable folder, else the system's temporary folder."""
    if DISK_SCRATCH.is_dir() and os.access(DISK_SCRATCH, os.W_OK | os.X_OK):
        return DISK_SCRATCH
    return Path(tempfile.gettempdir())


@contextmanager
def work_folder(given: Path | None, prefix: str, *, inside: bool = False) -> Iterator[Path]:
    """The folder a benchmark works in, announced on stdout (``work folder: PATH``).

    Without ``given`` (no ``--dir``): a new temporary folder under :func:`scratch_parent`,
    removed at the end whatever happens. With ``given``: that folder itself, created if missing
    and kept (so a script can reuse what an earlier run built there), or, with ``inside``, a new
    temporary folder inside it, removed at the end."""
    if given is not None and not inside:
        folder = given.absolute()
        folder.mkdir(parents=True, exist_ok=True)
        print(f"work folder: {folder} (kept)", flush=True)
        yield folder
        return
    parent = given.absolute() if given is not None else scratch_parent()
    parent.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    print(f"work folder: {folder} (removed at the end)", flush=True)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@dataclass(frozen=True)
class BenchOptions:
    """What a benchmark was asked to do."""

    size: int  #: bytes of generated data
    repeat: int  #: interleaved rounds (each tool runs once per round; its best time is kept)
    dir: Path | None  #: the work folder given with --dir, or None for the script's default


def _size(text: str) -> int:
    try:
        size = parse_size(text)
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc
    if size < _MIB:
        hint = f"; did you mean {text.strip()}MiB?" if text.strip().isdigit() else ""
        raise argparse.ArgumentTypeError(f"{text!r} is {size} bytes, less than 1 MiB{hint}")
    return size


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {value}")
    return value


class BenchParser(argparse.ArgumentParser):
    """An argument parser with the shared options, their defaults and the deprecated aliases."""

    def __init__(self, doc: str | None, *, size: str, repeat: int,
                 dir_help: str | None = None) -> None:
        """``doc`` is the script's docstring (its first paragraph becomes the description);
        ``size`` and ``repeat`` are the script's defaults; ``dir_help`` adds ``--dir`` when the
        script has a work folder, and is its help text (saying where the folder is by default)."""
        super().__init__(description=(doc or "").strip().split("\n\n")[0])
        self._default_size = parse_size(size)
        self._default_repeat = repeat
        #: (dest, old spelling, new spelling) of each deprecated alias
        self._aliases: list[tuple[str, str, str]] = []
        self.add_argument("--size", type=_size, metavar="SIZE",
                          help=f"data size, e.g. 512MiB or 1GiB (default {size})")
        self.add_argument("--repeat", type=_count, metavar="N",
                          help="interleaved rounds; each tool's best time is kept "
                               f"(default {repeat})")
        if dir_help is not None:
            self.add_argument("--dir", type=Path, metavar="DIR", help=dir_help)

    def deprecated_option(self, old: str, new: str) -> None:
        """Accept ``old`` (e.g. ``--runs``) for one more release as an alias of ``new``."""
        action = next(a for a in self._actions if new in a.option_strings)
        dest = "legacy_" + old.lstrip("-").replace("-", "_")
        self.add_argument(old, dest=dest, type=action.type or str, help=argparse.SUPPRESS)
        self._aliases.append((dest, old, new))

    def deprecated_mib(self) -> None:
        """Accept a bare positional number of MiB (the old ``SIZE_MiB``) as ``--size``."""
        self.add_argument("legacy_mib", nargs="?", type=_count, help=argparse.SUPPRESS)

    def parse(self, argv: Sequence[str] | None = None) -> BenchOptions:
        """Parse ``argv`` (default: ``sys.argv[1:]``), noting any deprecated spelling on stderr."""
        args = self.parse_args(argv)
        for dest, old, new in self._aliases:
            value = getattr(args, dest)
            if value is None:
                continue
            new_dest = new.lstrip("-").replace("-", "_")
            if getattr(args, new_dest) is not None:
                self.error(f"{old} is the old spelling of {new}: give only {new}")
            self._note(f"{old} is deprecated (removed in the next release); use {new} {value}")
            setattr(args, new_dest, value)
        mib = getattr(args, "legacy_mib", None)
        if mib is not None:
            if args.size is not None:
                self.error("give the size once, as --size SIZE (a bare number of MiB is the "
                           "old spelling)")
            args.size = mib * _MIB
            self._note("a bare SIZE_MiB is deprecated (removed in the next release); "
                       f"use --size {mib}MiB")
        return BenchOptions(
            size=self._default_size if args.size is None else args.size,
            repeat=self._default_repeat if args.repeat is None else args.repeat,
            dir=getattr(args, "dir", None),
        )

    def _note(self, text: str) -> None:
        print(f"{self.prog}: note: {text}", file=sys.stderr)

