"""Sets left behind when ``ewfacquire`` or ``ewfacquirestream`` is killed mid-write.

libewf writes a placeholder ``sectors`` descriptor (valid checksum, ``next`` at its own end, no
body) before a group's chunks and rewrites it once the group's tables are written; a killed
writer leaves that placeholder and a partly written last segment (docs/EWF.md §3, §8). Such a
set is read as far as it holds together: ``info`` shows what it records and that it is
unfinished, ``verify`` says INCOMPLETE, the missing sectors are the very range ``ewfverify``
names, and the sectors it holds are the source's bytes. Real damage to a complete set stays
CORRUPT. Real kills land where they land; the kill points inside a group (its chunks, its
``table``, its ``table2``) are made exactly by cutting a complete set as a kill there leaves it.
"""

from __future__ import annotations

import os
import re
import struct
import subprocess
import time
import zlib
from pathlib import Path

import pytest
from conftest import require_tool, run_bitwitness

from bitwitness.errors import ExitCode, IncompleteImageError
from bitwitness.ewf import open_ewf

SEGMENT = 1 << 20
SECTORS_PER_CHUNK = 16
_RANGE = re.compile(r"at sector\(s\): (\d+) - (\d+)")


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("killed") / "src.bin"
    path.write_bytes(os.urandom(24 << 20))
    return path


def _acquire(tool: str, source: Path, target: Path) -> subprocess.Popen[bytes]:
    common = ["-q", "-t", str(target), "-S", str(SEGMENT), "-c", "best",
              "-b", str(SECTORS_PER_CHUNK)]
    if tool == "ewfacquirestream":
        with source.open("rb") as stdin:
            return subprocess.Popen([tool, *common], stdin=stdin, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
    return subprocess.Popen([tool, "-u", *common, str(source)], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _kill_when(proc: subprocess.Popen[bytes], path: Path, min_size: int = 0) -> None:
    deadline = time.monotonic() + 60
    while not (path.exists() and path.stat().st_size >= min_size):
        assert proc.poll() is None, "the writer finished before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.001)
    proc.kill()
    proc.wait()


def _ewfverify_missing(first: Path) -> tuple[int, int] | None:
    out = subprocess.run(["ewfverify", "-q", str(first)], capture_output=True, text=True,
                         check=False)
    assert "FAILURE" in out.stdout + out.stderr
    found = _RANGE.findall(out.stdout)
    assert len(found) <= 1, out.stdout
    return (int(found[0][0]), int(found[0][1])) if found else None


def _check_unfinished(first: Path, source: Path, *, size_known: bool) -> None:
    """Ours against ewfverify and the source, through the library and the CLI."""
    with open_ewf(first, allow_incomplete=True) as img:
        assert not img.complete
        assert img.read() == source.read_bytes()[:img.size]  # what it holds is the source
        missing = img.missing_sectors
        reason = img.incomplete_reason
    theirs = _ewfverify_missing(first)
    if size_known:
        assert missing == theirs, reason
        assert missing is not None
        assert f"sectors {missing[0]} - {missing[1]} (number: {missing[1] - missing[0] + 1})" \
            in reason
    else:
        assert missing is None
        assert "records no media size" in reason
    with pytest.raises(IncompleteImageError):
        open_ewf(first)
    info = run_bitwitness("info", first, "--json")
    assert info.exit_code == ExitCode.EVIDENCE, info.stderr
    doc = info.json()
    assert doc["ewf"]["complete"] is False
    assert doc["ewf"]["sectors_per_chunk"] == SECTORS_PER_CHUNK
    assert doc["header_values"]["acquiry_software_version"]
    assert doc["ewf"]["incomplete_reason"] == reason
    assert "INCOMPLETE" in info.stderr
    assert "Traceback" not in info.stderr
    text = run_bitwitness("info", first)
    assert "UNFINISHED ACQUISITION" in text.stdout
    assert "Sectors per chunk:" in text.stdout
    verify = run_bitwitness("verify", first, "--json")
    assert verify.exit_code == ExitCode.EVIDENCE
    assert verify.json()["images"][0]["verdict"] == "INCOMPLETE", verify.stdout
    said = run_bitwitness("verify", first).stdout
    if size_known:  # the range ewfverify names, in verify's own reason
        assert missing is not None
        assert f"sectors {missing[0]} - {missing[1]}" in said


@pytest.mark.parametrize("tool", ["ewfacquire", "ewfacquirestream"])
@pytest.mark.parametrize("segment", [1, 4])
def test_killed_writer_leaves_an_incomplete_set(tmp_path: Path, source: Path, tool: str,
                                                segment: int) -> None:
    """Killed once segment 1 exists (segment 1 incomplete) or once segment 4 does (several
    segments); ewfacquirestream does not know the media size, so no range can be named."""
    require_tool(tool, "ewfverify")
    target = tmp_path / "img"
    proc = _acquire(tool, source, target)
    _kill_when(proc, tmp_path / f"img.E0{segment}", 2000)
    _check_unfinished(tmp_path / "img.E01", source, size_known=tool == "ewfacquire")


def _sections(path: Path) -> list[tuple[str, int, int, int]]:
    data = path.read_bytes()
    out, offset = [], 13
    while True:
        kind, following, size = struct.unpack_from("<16sQQ", data, offset)
        name = kind.rstrip(b"\0").decode()
        out.append((name, offset, following, size))
        if name in ("next", "done"):
            return out
        offset = following


def _placeholder(path: Path, at: int) -> None:
    """Make the ``sectors`` descriptor at ``at`` what libewf writes before the chunks."""
    with path.open("r+b") as f:
        f.seek(at)
        head = f.read(16) + struct.pack("<QQ", at + 76, 76) + bytes(40)
        f.seek(at)
        f.write(head + struct.pack("<I", zlib.adler32(head)))


@pytest.fixture(scope="module")
def complete_set(tmp_path_factory: pytest.TempPathFactory, source: Path) -> list[Path]:
    require_tool("ewfacquire")
    folder = tmp_path_factory.mktemp("complete")
    small = folder / "src6.bin"
    small.write_bytes(source.read_bytes()[:6 << 20])
    subprocess.run(["ewfacquire", "-u", "-q", "-t", str(folder / "img"), "-S", str(SEGMENT),
                    "-c", "best", "-b", str(SECTORS_PER_CHUNK), str(small)], check=True,
                   capture_output=True)
    return sorted(folder.glob("img.E*"))


@pytest.mark.parametrize("where", ["chunks", "table descriptor", "table body", "after table",
                                   "table2 body", "after table2"])
@pytest.mark.parametrize("rewritten", [False, True])
def test_killed_inside_a_group(tmp_path: Path, source: Path, complete_set: list[Path],
                               where: str, rewritten: bool) -> None:
    """Segment 3 cut as a kill inside its group leaves it: the ``sectors`` descriptor still the
    placeholder, or (``rewritten``) already the final one; later segments never written."""
    require_tool("ewfverify")
    for segment in complete_set[:3]:
        (tmp_path / segment.name).write_bytes(segment.read_bytes())
    last = tmp_path / "img.E03"
    sections = {name: (offset, size) for name, offset, _, size in _sections(last)}
    table, table2 = sections["table"], sections["table2"]
    cut = {"chunks": table[0] - 5000, "table descriptor": table[0] + 40,
           "table body": table[0] + 100, "after table": table2[0],
           "table2 body": table2[0] + 200, "after table2": table2[0] + table2[1]}[where]
    if not rewritten:
        _placeholder(last, sections["sectors"][0])
    os.truncate(last, cut)
    _check_unfinished(tmp_path / "img.E01", source, size_known=True)
    with open_ewf(tmp_path / "img.E01", allow_incomplete=True) as img:
        assert img.missing_sectors == (img.size // 512, 12287)


def test_a_segment_killed_before_its_file_header(tmp_path: Path, complete_set: list[Path],
                                                 source: Path) -> None:
    for segment in complete_set[:2]:
        (tmp_path / segment.name).write_bytes(segment.read_bytes())
    (tmp_path / "img.E03").write_bytes(complete_set[2].read_bytes()[:7])
    with open_ewf(tmp_path / "img.E01", allow_incomplete=True) as img:
        assert "img.E03 holds no segment yet (7 bytes" in img.incomplete_reason
        assert img.read() == source.read_bytes()[:img.size]


def test_damage_to_a_complete_set_is_still_corrupt(tmp_path: Path,
                                                   complete_set: list[Path]) -> None:
    """A flipped byte in a chunk, and one in the last segment's ``sectors`` descriptor (its
    checksum fails: never taken for a placeholder), are CORRUPT, not INCOMPLETE."""
    for where in ("chunk", "descriptor"):
        folder = tmp_path / where
        folder.mkdir()
        for segment in complete_set:
            (folder / segment.name).write_bytes(segment.read_bytes())
        last = folder / complete_set[-1].name
        at = {n: o for n, o, _, _ in _sections(last)}["sectors"]
        at += 30 if where == "descriptor" else 76 + 3000
        data = bytearray(last.read_bytes())
        data[at] ^= 0x01
        last.write_bytes(bytes(data))
        verify = run_bitwitness("verify", folder / "img.E01", "--json")
        assert verify.exit_code == ExitCode.EVIDENCE
        assert verify.json()["images"][0]["verdict"] == "CORRUPT", verify.stdout


def test_convert_refuses_a_killed_set(tmp_path: Path, complete_set: list[Path]) -> None:
    for segment in complete_set[:3]:
        (tmp_path / segment.name).write_bytes(segment.read_bytes())
    last = tmp_path / "img.E03"
    sectors = {n: o for n, o, _, _ in _sections(last)}["sectors"]
    _placeholder(last, sectors)
    os.truncate(last, sectors + 76 + 10000)
    done = run_bitwitness("convert", tmp_path / "img.E01", "-o", tmp_path / "out", "--to", "raw")
    assert done.exit_code == ExitCode.EVIDENCE
    assert "INCOMPLETE" in done.stderr
    assert "sectors" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not list(tmp_path.glob("out*"))


@pytest.mark.parametrize("kept", [0, 4, 12])
def test_a_first_segment_stopped_before_its_file_header_is_incomplete(tmp_path: Path,
                                                                      kept: int) -> None:
    """A destination full on the first segment leaves it created with none or part of its
    13-byte file header: INCOMPLETE (an unfinished write), not CORRUPT; a file that is no
    header's beginning is still not a segment."""
    first = tmp_path / "img.E01"
    first.write_bytes(b"EVF\x09\x0d\x0a\xff\x00\x01\x01\x00\x00\x00"[:kept])
    verify = run_bitwitness("verify", first, "--json")
    assert verify.exit_code == ExitCode.EVIDENCE
    assert verify.json()["images"][0]["verdict"] == "INCOMPLETE"
    other = tmp_path / "other.E01"
    other.write_bytes(b"not an E01")
    assert run_bitwitness("verify", other, "--json").json()["images"][0]["verdict"] == "CORRUPT"
