"""An image dcfldd wrote, verified with dcfldd's own ``hashlog=`` beside it: the totals and the
per-window hashes (``hashwindow=``) are compared, so a changed byte is placed in its window.
dcfldd writes the image and the log; nothing here computes what the log records.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from conftest import require_tool, run_bitwitness

SIZE = 3_000_000  #: not a whole number of sectors: the last window ends in a partial sector


def _acquire(tmp_path: Path) -> Path:
    require_tool("dcfldd")
    source = tmp_path / "source.bin"
    source.write_bytes(os.urandom(SIZE))
    image = tmp_path / "evidence.img"
    subprocess.run(["dcfldd", f"if={source}", f"of={image}", "hash=md5,sha256",
                    "hashwindow=1M", f"hashlog={tmp_path / 'evidence.hashlog'}"],
                   capture_output=True, check=True)
    source.unlink()
    return image


def test_totals_and_windows_match(tmp_path: Path) -> None:
    image = _acquire(tmp_path)
    log = (tmp_path / "evidence.hashlog").read_text()
    windows = re.findall(r"^(\d+) - (\d+): [0-9a-f]+$", log, re.MULTILINE)
    assert len(windows) == 6  # three windows, md5 and sha256 each
    result = run_bitwitness("verify", image)
    out = result.stdout
    assert result.exit_code == 0, out + result.stderr
    assert "verdict: VERIFIED" in out
    assert re.search(r"match  md5 of media: dcfldd hash log evidence\.hashlog \(input\)", out)
    assert re.search(r"match  sha256 of media: dcfldd hash log evidence\.hashlog \(input\)", out)
    for start, end in {(int(a), int(b)) for a, b in windows}:
        scope = f"sectors {start // 512}-{(end - 1) // 512}"
        assert len(re.findall(rf"match  (?:md5|sha256) of {scope}:", out)) == 2, out


def test_a_changed_byte_is_placed_in_its_window(tmp_path: Path) -> None:
    image = _acquire(tmp_path)
    with image.open("r+b") as out:
        out.seek(1_500_000)  # in the second MiB
        out.write(bytes([image.read_bytes()[1_500_000] ^ 0xFF]))
    result = run_bitwitness("verify", image)
    out = result.stdout + result.stderr
    assert result.exit_code == 1
    assert "verdict: MISMATCH" in out
    assert len(re.findall(r"match  (?:md5|sha256) of sectors 0-2047:", out)) == 2
    assert len(re.findall(r"match  (?:md5|sha256) of sectors 4096-5859:", out)) == 2
    assert "sectors 2048-4095" in out
    assert not re.search(r"match  (?:md5|sha256) of sectors 2048-4095:", out)


def test_a_hashlog_that_is_not_dcfldd_s_is_no_log(tmp_path: Path) -> None:
    image = tmp_path / "evidence.img"
    image.write_bytes(os.urandom(4096))
    (tmp_path / "evidence.hashlog").write_text("Total (md5): 0123\nsomething else\n")
    result = run_bitwitness("verify", image)
    assert "evidence.hashlog: not a hash log, ignored" in result.stdout + result.stderr


def test_one_log_per_algorithm_is_found_beside_the_image(tmp_path: Path) -> None:
    """dcfldd's ``md5log=``/``sha256log=`` write one log per algorithm; named after the image's
    stem, they are found without ``--log``, as ``hashlog=`` is. A changed byte is then a
    mismatch against both."""
    require_tool("dcfldd")
    source = tmp_path / "source.bin"
    source.write_bytes(os.urandom(SIZE))
    image = tmp_path / "evidence.raw"
    subprocess.run(["dcfldd", f"if={source}", f"of={image}", "hash=md5,sha256",
                    f"md5log={tmp_path / 'evidence.md5log'}",
                    f"sha256log={tmp_path / 'evidence.sha256log'}"],
                   capture_output=True, check=True)
    md5 = subprocess.run(["md5sum", str(source)], capture_output=True, text=True,
                         check=True).stdout.split()[0]
    assert md5 in (tmp_path / "evidence.md5log").read_text()
    result = run_bitwitness("verify", image)
    assert result.exit_code == 0, result.stdout + result.stderr
    assert f"match  md5 of media: dcfldd hash log evidence.md5log (input) records {md5}" \
        in result.stdout
    assert "match  sha256 of media: dcfldd hash log evidence.sha256log" in result.stdout
    with image.open("r+b") as out:
        out.seek(SIZE // 2)
        out.write(b"\0" if source.read_bytes()[SIZE // 2] else b"\1")
    changed = run_bitwitness("verify", image)
    assert changed.exit_code == 1
    assert "verdict: MISMATCH" in changed.stdout
