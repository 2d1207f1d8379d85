"""An ISO 9660 whose path table TSK finds empty (its size zeroed in the primary volume
descriptor): TSK then holds no inode but the root, which is also its ``$OrphanFiles`` folder,
and listing the root waits forever on a lock TSK already holds (``fls`` hangs; SIGTERM cannot
reach a process blocked there). Found by the filesystem fuzz target. BitWitness refuses such a
volume in one line, exit 2, at once; a sound ISO and an empty one are read as before.
"""

from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

from conftest import require_tool

PVD = 16 * 2048


def _bitwitness(*args: str | Path) -> subprocess.CompletedProcess[str]:
    # a hang would be killed (SIGKILL) after the timeout and fail the test
    return subprocess.run([sys.executable, "-m", "bitwitness", *map(str, args)],
                          capture_output=True, text=True, timeout=60, check=False)


def test_an_iso_tsk_would_hang_on_is_refused_at_once(tmp_path: Path) -> None:
    require_tool("genisoimage", "fsstat")
    source = tmp_path / "src"
    source.mkdir()
    (source / "a.txt").write_bytes(b"a\n")
    sound = tmp_path / "sound.iso"
    subprocess.run(["genisoimage", "-quiet", "-o", sound, source], check=True,
                   capture_output=True)
    data = bytearray(sound.read_bytes())
    struct.pack_into("<I", data, PVD + 132, 0)  # path table size, both byte orders
    struct.pack_into(">I", data, PVD + 136, 0)
    damaged = tmp_path / "damaged.iso"
    damaged.write_bytes(bytes(data))
    stat = subprocess.run(["fsstat", damaged], capture_output=True, text=True,
                          check=True).stdout
    assert "Inode Range: 0 - 0" in stat  # TSK's view: the root alone
    for command in (["ls"], ["ls", "-r", "--all"], ["timeline"]):
        result = _bitwitness(*command, damaged)
        assert result.returncode == 2, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
        assert "finds no inode but the root" in result.stderr
    listed = _bitwitness("ls", sound)
    assert listed.returncode == 0
    assert "A.TXT" in listed.stdout
    empty = tmp_path / "empty.iso"
    (tmp_path / "none").mkdir()
    subprocess.run(["genisoimage", "-quiet", "-o", empty, tmp_path / "none"], check=True,
                   capture_output=True)
    assert _bitwitness("ls", empty).returncode == 0
