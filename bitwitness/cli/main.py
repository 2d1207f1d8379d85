"""The ``bitwitness`` command and its single error boundary.

Subcommands live one module each in :mod:`bitwitness.cli.commands`; each module exposes
``command`` (a click command or group). They are discovered there, so adding a command touches one
new file. Every :class:`~bitwitness.errors.BitWitnessError` becomes one line on stderr and its exit
code; an unwrapped ``OSError`` about the user's files or machine (no such folder, a file where a
folder is needed, disk full, read-only) is an input error (exit 2) as a safety net; anything else is
a bug (exit 3). Tracebacks are shown only with ``--debug``.
"""

from __future__ import annotations

import errno
import gc
import importlib
import os
import re
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import Any

import click

from bitwitness import __version__
from bitwitness.errors import BitWitnessError, ExitCode

EXIT_CODES_HELP = (
    "Exit codes: 0 success; 1 evidence problem (hash mismatch, corrupt or incomplete image, "
    "unreadable sectors, broken custody log); 2 usage or input error; 3 internal error; "
    "130 interrupted; 141 output closed early (e.g. by | head)."
)


#: OSError numbers that describe the user's files or machine (a path that cannot exist, a full or
#: read-only disk), not a bug: they are input errors (exit 2) even where no engine wrapped them.
_ENVIRONMENT_ERRNOS = frozenset({
    errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.EEXIST, errno.EACCES, errno.EPERM,
    errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.ENAMETOOLONG, errno.ELOOP, errno.EXDEV,
})


def _discover() -> dict[str, str]:
    import pkgutil  # only to list the commands (help, a misspelt name): not for --version

    from bitwitness.cli import commands

    found = {}
    for info in pkgutil.iter_modules(commands.__path__):
        if not info.name.startswith("_"):
            found[info.name.replace("_", "-")] = f"bitwitness.cli.commands.{info.name}"
    return found


#: What a command's name may be for its module to be imported by that name.
_COMMAND_NAME = re.compile(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*")


class LazyGroup(click.Group):
    """Imports a subcommand's module only when that command (or the help list) needs it."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        names = set(self.commands)
        for module in _discover().values():
            cmd = self._load(module)
            if cmd is not None and cmd.name:
                names.add(cmd.name)
        return sorted(names)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        cmd = _named_module_command(cmd_name)
        if cmd is not None:
            return cmd
        modules = _discover()
        module = modules.get(cmd_name)
        if module is not None:
            cmd = self._load(module)
            if cmd is not None and cmd.name == cmd_name:
                return cmd
        for module in modules.values():  # a module may name its command differently
            cmd = self._load(module)
            if cmd is not None and cmd.name == cmd_name:
                return cmd
        return None

    def invoke(self, ctx: click.Context) -> Any:
        """The command, with a ``BrokenPipeError`` handed to :func:`_run` as
        :class:`_OutputClosed`: click's own handling of it (``sys.exit(1)``, the code of an
        evidence problem) never sees it."""
        try:
            return super().invoke(ctx)
        except BrokenPipeError as exc:
            raise _OutputClosed from exc

    @staticmethod
    def _load(module: str) -> click.Command | None:
        mod = importlib.import_module(module)
        cmd = getattr(mod, "command", None)
        return cmd if isinstance(cmd, click.Command) else None


def _named_module_command(cmd_name: str) -> click.Command | None:
    """The command defined by the module of its own name (``info`` in ``commands/info.py``,
    ``new-case`` in ``new_case.py``), or None: the common case, found without listing the
    folder (``pkgutil``, a few ms of every run's start-up)."""
    if _COMMAND_NAME.fullmatch(cmd_name) is None:
        return None
    module = f"bitwitness.cli.commands.{cmd_name.replace('-', '_')}"
    try:
        cmd = LazyGroup._load(module)
    except ModuleNotFoundError as exc:
        if exc.name != module:
            raise
        return None
    return cmd if cmd is not None and cmd.name == cmd_name else None


class _OutputClosed(Exception):  # noqa: N818 - a signal-like outcome, not an error
    """A command met a ``BrokenPipeError`` (raised from it, as its ``__cause__``)."""


def _terminate(signum: int, frame: FrameType | None) -> None:
    """SIGTERM is handled like Ctrl-C so that engines stop cleanly and mark output incomplete."""
    raise KeyboardInterrupt


def _limit_ltree(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    """``--max-ltree SIZE``: how much memory libewf may take for an EWF set's file list
    (:mod:`bitwitness.images.ewf_ltree`), for this command line."""
    if value is not None:
        from bitwitness.images.ewf_ltree import set_max_ltree
        from bitwitness.sizes import parse_size

        ctx.call_on_close(set_max_ltree(parse_size(value)))


@click.group(cls=LazyGroup, epilog=EXIT_CODES_HELP,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "-V", "--version", prog_name="bitwitness")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.option("--key", "key", type=click.Path(dir_okay=False), envvar="BITWITNESS_KEY",
              help="Examiner key (from 'bitwitness key new') that signs custody anchors, "
                   "acquisition logs and reports [env BITWITNESS_KEY].")
@click.option("--key-passphrase", envvar="BITWITNESS_KEY_PASSPHRASE", metavar="TEXT",
              help="The key's passphrase [env BITWITNESS_KEY_PASSPHRASE; asked when missing].")
@click.option("--part", "parts", multiple=True, type=click.Path(path_type=Path), metavar="FILE",
              help="Accept FILE as a part of a multi-file image (VMDK extent, split piece, "
                   "segment) although it lies outside the image's folder or is a device. "
                   "Repeatable.")
@click.option("--max-ltree", metavar="SIZE", default=None, expose_value=False,
              callback=_limit_ltree,
              help="Open an L01/Lx01 (or any EWF set holding a file list) even when libewf "
                   "would need up to SIZE of memory to parse that list (e.g. 600MiB); without "
                   "it a list estimated above 200 MiB is refused before libewf reads it.")
@click.pass_context
def cli(ctx: click.Context, debug: bool, key: str | None, key_passphrase: str | None,
        parts: tuple[Path, ...]) -> None:
    """BitWitness: forensic acquisition, verification and evidence browsing.

    Evidence is always opened read-only. Hashes cover the whole media. A multi-file image's
    parts are read only from the image's own folder, unless named with --part.
    """
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    if key or key_passphrase or "bitwitness.signing" in sys.modules:
        # Unloaded, the module's session is already "no key": a command that signs loads it
        # then (~5 ms of imports that --version, info or ls do not pay).
        from bitwitness import signing

        signing.configure(Path(key) if key else None, key_passphrase)
    if parts:
        from bitwitness.evidence_io import allow_parts

        allow_parts(parts)


def _run(args: list[str], debug: bool) -> int:  # noqa: PLR0911 - one return per outcome
    """Run the command line and map every outcome to an exit code (the error boundary)."""
    try:
        rv: Any = cli.main(args=args, prog_name="bitwitness", standalone_mode=False)
    except BitWitnessError as exc:
        if debug:
            import traceback  # only for --debug: ~3 ms of start-up otherwise

            traceback.print_exc()
        _error_line(str(exc))
        return int(exc.exit_code)
    except (click.exceptions.Abort, KeyboardInterrupt):
        _error_line("interrupted")
        return ExitCode.INTERRUPTED
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except _OutputClosed as exc:
        if _silence_closed_output():
            return ExitCode.OUTPUT_CLOSED
        cause = exc.__cause__  # a pipe of BitWitness's own (a helper process): a bug
        return _unexpected(cause if isinstance(cause, Exception) else exc, debug)
    except Exception as exc:  # the boundary: a bug, or an OSError no engine wrapped
        return _unexpected(exc, debug)
    return int(rv) if isinstance(rv, int) else ExitCode.OK


def _silence_closed_output() -> bool:
    """Whether standard output or error lost its reader (a pipe whose reading end is closed,
    as ``| head`` leaves it); each such stream is pointed at ``/dev/null``, so that what it
    still buffers is dropped there at exit, not raised again as the interpreter flushes it.

    Why: a listing cut short by ``head`` is the reader's choice, not an evidence problem
    (click answers it with exit 1) nor success; the process ends with the status SIGPIPE gives
    ``fls`` (141) after the command's own clean-up ran, with nothing on stderr."""
    import select  # only once a pipe broke

    closed = False
    for stream in (sys.stdout, sys.stderr):
        try:
            fd = stream.fileno()
        except (AttributeError, OSError, ValueError):
            continue
        poller = select.poll()
        poller.register(fd, 0)  # no events asked: poll reports errors and hang-ups only
        if any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0)):
            devnull = os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(devnull, fd)
            finally:
                os.close(devnull)
            closed = True
    return closed


def _flushed(code: int) -> int:
    """``code``, or :data:`ExitCode.OUTPUT_CLOSED` where what the command left in the standard
    streams' buffers finds their reader gone."""
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except BrokenPipeError:
            _silence_closed_output()
            return ExitCode.OUTPUT_CLOSED
    return code


def _error_line(text: str) -> None:
    """The one stderr line of a failure, through :func:`bitwitness.cli.output.error_line`,
    imported only when there is one (``--version`` does without it and its JSON support)."""
    from bitwitness.cli.output import error_line as write

    write(text)


def _unexpected(exc: Exception, debug: bool) -> int:
    """One line for an exception no engine turned into a BitWitnessError."""
    if debug:
        import traceback

        traceback.print_exception(exc)
    if isinstance(exc, OSError) and exc.errno in _ENVIRONMENT_ERRNOS:
        where = f"{exc.filename}: " if exc.filename else ""
        _error_line(f"{where}{exc.strerror or exc}")
        return ExitCode.USAGE
    _error_line(f"internal error: {type(exc).__name__}: {exc} (run with --debug for details)")
    return ExitCode.INTERNAL


def _utf8_output() -> None:
    """Standard output and error in UTF-8 whatever the locale says, as ``fls`` and ``mactime``
    write names (and as JSON must be exchanged, RFC 8259).

    Why: names come from evidence, in any script. Under an ASCII or Latin-1 locale (``LANG=C``
    where Python does not coerce it, ``PYTHONIOENCODING``, a legacy terminal) the first name
    that encoding lacks raised ``UnicodeEncodeError``: ``ls`` of a Chinese file name ended as
    an internal error (exit 3) and ``--json`` with no document. The error handler each stream
    had is kept."""
    for stream in (sys.stdout, sys.stderr):
        encoding = getattr(stream, "encoding", None)
        if not isinstance(encoding, str) or encoding.lower().replace("_", "-") in _UTF8:
            continue
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(encoding="utf-8", errors=stream.errors)


#: How Python names UTF-8 (``sys.stdout.encoding``).
_UTF8 = ("utf-8", "utf8")


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the command line inside the one error boundary, then exit."""
    args = list(sys.argv[1:] if argv is None else argv)
    if argv is None:  # the process's own streams (a caller's, a test's, are left alone)
        from bitwitness.cli.streams import write_whole

        write_whole()
    _utf8_output()
    try:
        previous = signal.signal(signal.SIGTERM, _terminate)
    except ValueError:  # not in the main thread (embedded use)
        previous = None
    try:
        code = _flushed(_run(args, debug="--debug" in args))
    finally:
        evidence_io = sys.modules.get("bitwitness.evidence_io")
        if evidence_io is not None:  # --part applies to one command line only
            evidence_io.clear_allowed_parts()
        if argv is None and previous is not None:
            # The outcome is decided and its log written: a late SIGINT/SIGTERM (the second
            # Ctrl-C of an impatient examiner) must neither kill the process with the signal's
            # status nor print a traceback on the way out; the exit code stays the command's.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        elif previous is not None:
            signal.signal(signal.SIGTERM, previous)
    if argv is None:  # the process's own command line: the process ends here
        # The interpreter's final collections would walk every object still alive (~8 ms, a
        # tenth of a small acquisition's whole run); frozen, they are simply released with the
        # process. Nothing depends on a collection: every command closed its own files.
        gc.freeze()
    sys.exit(code)
