"""Output whose reader leaves early (``| head``): exit 141, as SIGPIPE ends ``fls`` and
coreutils, nothing on stderr, and never 0 or 1.

click answered a ``BrokenPipeError`` with exit 1, the code of an evidence problem; and with
``PYTHONUNBUFFERED`` (stdout straight on its ``FileIO``) a large write the pipe took part of
was dropped silently, so ``ls --json | head -c 10`` and ``cat | head -c 10`` exited 0 as if
everything had been read (see bitwitness/cli/streams.py).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import pytest
from conftest import require_tool

from bitwitness.cli import main as cli_main
from bitwitness.errors import ExitCode

#: What a shell reports for a process SIGPIPE ended
SIGPIPE_STATUS = 128 + signal.SIGPIPE
BIG = 3 << 20  #: a file far larger than a pipe holds (64 KiB)


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An ext4 (``mkfs.ext4 -d``) of 3,000 files in 40 folders, whose listing (~150 KiB) and
    JSON overflow a pipe, and one file of 3 MiB. (Small folders: TSK 4.11's fls reads no
    folder whose extents need a tree block, which one of 3,000 names on 1 KiB blocks does.)"""
    require_tool("mkfs.ext4")
    folder = tmp_path_factory.mktemp("pipe")
    tree = folder / "tree"
    for n in range(3000):
        sub = tree / f"folder-{n % 40:02d}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"a-file-with-a-longish-name-{n:05d}.txt").write_bytes(b"x")
    (tree / "big.bin").write_bytes(os.urandom(BIG))
    path = folder / "fs.img"
    path.write_bytes(bytes(32 << 20))
    subprocess.run(["mkfs.ext4", "-q", "-F", "-b", "4096", "-d", str(tree), str(path)], check=True,
                   capture_output=True, timeout=60)
    return path


def _read_some(argv: list[str], *, keep: int, unbuffered: bool
               ) -> tuple[int, bytes, bytes]:
    """Run ``argv``, read ``keep`` bytes of its stdout, close the pipe; its exit status (as a
    shell reports it), the bytes read and its stderr."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    if unbuffered:
        env["PYTHONUNBUFFERED"] = "1"
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert proc.stdout is not None
    assert proc.stderr is not None
    head = proc.stdout.read(keep)
    proc.stdout.close()
    stderr = proc.stderr.read()
    code = proc.wait(timeout=120)
    return (128 - code if code < 0 else code), head, stderr


def _ours(*args: str) -> list[str]:
    return [sys.executable, "-m", "bitwitness", *args]


@pytest.mark.parametrize("unbuffered", [False, True], ids=["buffered", "unbuffered"])
@pytest.mark.parametrize("args", [["ls", "-r", "--all"], ["ls", "-r", "--all", "--json"],
                                  ["timeline"]], ids=["ls", "ls-json", "timeline"])
def test_listing_cut_short(image: Path, args: list[str], unbuffered: bool) -> None:
    code, head, stderr = _read_some(_ours(*args, str(image)), keep=10, unbuffered=unbuffered)
    assert stderr == b""
    assert code == SIGPIPE_STATUS
    assert len(head) == 10


def test_fls_ends_the_same_way(image: Path) -> None:
    """The peer's status for the same cut, and for a whole read the same listing."""
    require_tool("fls")
    code, _, _ = _read_some(["fls", "-r", "-p", str(image)], keep=10, unbuffered=False)
    assert code == SIGPIPE_STATUS
    fls = subprocess.run(["fls", "-r", "-p", str(image)], capture_output=True, check=True,
                         timeout=60).stdout
    code, ours, stderr = _read_some(_ours("ls", "-r", "--all", str(image)), keep=len(fls) + 1,
                                    unbuffered=False)
    assert (code, stderr, ours) == (0, b"", fls)
    assert len(fls) > 128 << 10


@pytest.mark.parametrize("unbuffered", [False, True], ids=["buffered", "unbuffered"])
def test_cat_cut_short(image: Path, unbuffered: bool) -> None:
    code, head, stderr = _read_some(_ours("cat", str(image), "/big.bin"), keep=10,
                                    unbuffered=unbuffered)
    assert stderr == b""
    assert code == SIGPIPE_STATUS
    assert len(head) == 10


@pytest.mark.parametrize("unbuffered", [False, True], ids=["buffered", "unbuffered"])
def test_read_whole_exits_0_with_every_byte(image: Path, unbuffered: bool) -> None:
    """A reader that takes everything gets every byte and exit 0 (the cut above is the
    reader's doing, not ours)."""
    require_tool("icat", "fls")
    code, data, stderr = _read_some(_ours("cat", str(image), "/big.bin"), keep=BIG + 1,
                                    unbuffered=unbuffered)
    assert (code, stderr) == (0, b"")
    inode = next(line.split(b":")[0].split()[-1]
                 for line in subprocess.run(["fls", str(image)], capture_output=True,
                                            check=True, timeout=60).stdout.splitlines()
                 if line.endswith(b"\tbig.bin"))
    assert data == subprocess.run(["icat", str(image), inode.decode()], capture_output=True,
                                  check=True, timeout=60).stdout


def test_other_pipes_are_internal_errors(monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    """A broken pipe that is not stdout's or stderr's (a helper process of our own) is a bug,
    said in one line, not passed off as a closed output."""
    @click.command("pipe-test")
    def broken() -> None:
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setitem(cli_main.cli.commands, "pipe-test", broken)
    monkeypatch.setattr(cli_main, "_silence_closed_output", lambda: False)
    assert cli_main._run(["pipe-test"], debug=False) == ExitCode.INTERNAL
    assert "internal error: BrokenPipeError" in capsys.readouterr().err


def test_closed_output_code(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where standard output did lose its reader, the code is 141."""
    @click.command("pipe-test")
    def broken() -> None:
        raise BrokenPipeError(32, "Broken pipe")

    seen: list[Any] = []
    monkeypatch.setitem(cli_main.cli.commands, "pipe-test", broken)
    monkeypatch.setattr(cli_main, "_silence_closed_output", lambda: seen.append(1) or True)
    assert cli_main._run(["pipe-test"], debug=False) == SIGPIPE_STATUS == ExitCode.OUTPUT_CLOSED
    assert seen == [1]
