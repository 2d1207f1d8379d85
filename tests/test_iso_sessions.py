"""Multi-session ISO 9660 images (report/browse/iso_sessions.py), checked against independent
readers on images made on the fly:

- a dd image of a multi-session CD-R, made as its sessions are burned: ``genisoimage -C 0,N
  -M previous`` writes each later session with addresses counting from the disc's start, and
  the image is the sessions end to end. What a drive presents (the last session) is what
  ``isoinfo -l -R -T N`` lists and ``osirrox -load sbsector N -extract`` extracts; session 1 is
  what ``isoinfo -l -R`` and TSK (``fls``, ``icat``) read at sector 16;
- an image grown with ``xorriso -dev`` (libisoburn's emulated multi-session: the descriptors at
  sector 16 are a copy of the last session's): each session's start from ``xorriso -indev X
  -toc``, its files from ``xorriso -load sbsector N -indev X -find / -exec lsdl``;
- a single-session ISO is read as before (no session children, no warning, TSK's numbers);
- hostile chains of sessions end in bounded time and say that the scan stopped.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
from pathlib import Path

import pytest
from conftest import cat_bytes, require_tool, run_bitwitness
from test_fs_ext_hostile import fails_closed

_ISOINFO_FILE = re.compile(r"^([-d])\S{9}\s+\d+\s+\d+\s+\d+\s+(\d+)\s+\w{3}\s+\d+\s+\d+\s+"
                           r"\[\s*\d+\s+\d+\]\s+(.*?)\s*$")
_LSDL = re.compile(r"^(\S)\S{9}\s+\d+\s+\d+\s+\d+\s+(\d+)\s+\w{3}\s+\d+\s+[\d:]+\s+'(.*?)'")
_SECTOR = 2048


def _run(*args: str | Path) -> str:
    return subprocess.run([os.fspath(a) for a in args], capture_output=True, check=True,
                          timeout=300).stdout.decode("utf-8", "surrogateescape")


def _write(folder: Path, files: dict[str, bytes]) -> None:
    folder.mkdir(parents=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)


def _burned(tmp: Path, rock_ridge: bool) -> tuple[Path, list[int]]:
    """Three sessions burned as a CD-R is (``-C`` the last session's start and the next one's,
    as ``cdrecord -msinfo`` gives them), the image being them end to end; their starts."""
    flags = ["-R"] if rock_ridge else []
    _write(tmp / "s1", {"a.txt": b"one\n", "keep.txt": b"keep\n", "gone.txt": b"gone\n"})
    _write(tmp / "s2", {"a.txt": b"two-changed-content\n", "new.txt": b"new\n"})
    _write(tmp / "s3", {"third.txt": b"third session\n"})
    starts = [0]
    pieces: list[Path] = []
    previous: Path | None = None
    for n in (1, 2, 3):
        piece = tmp / f"s{n}.iso"
        joined = tmp / f"upto{n - 1}.iso"
        if previous is None:
            _run("genisoimage", "-quiet", *flags, "-o", piece, tmp / f"s{n}")
        else:
            joined.write_bytes(b"".join(p.read_bytes() for p in pieces))
            _run("genisoimage", "-quiet", *flags, "-C", f"{starts[-2]},{starts[-1]}", "-M", joined,
                 "-o", piece, tmp / f"s{n}")
        pieces.append(piece)
        starts.append(starts[-1] + piece.stat().st_size // _SECTOR)
        previous = piece
    image = tmp / "burned.iso"
    image.write_bytes(b"".join(p.read_bytes() for p in pieces))
    return image, starts[:3]


def _grown(tmp: Path) -> Path:
    _write(tmp / "g1", {"a.txt": b"one\n", "keep.txt": b"keep\n", "gone.txt": b"gone\n"})
    _write(tmp / "g2", {"a.txt": b"two-changed-content\n"})
    _write(tmp / "g3", {"t.txt": b"three\n"})
    image = tmp / "grown.iso"
    _run("xorriso", "-dev", image, "-map", tmp / "g1", "/d1", "-commit")
    _run("xorriso", "-dev", image, "-map", tmp / "g2/a.txt", "/d1/a.txt", "-rm", "/d1/gone.txt",
         "--", "-map", tmp / "g2/a.txt", "/new.txt", "-commit")
    _run("xorriso", "-dev", image, "-map", tmp / "g3/t.txt", "/t.txt", "-commit")
    return image


def _isoinfo(image: Path, start: int, rock_ridge: bool) -> dict[str, int]:
    """isoinfo's listing of the session at ``start``: path -> size (files only)."""
    args = ["isoinfo", "-l", "-i", image, *(["-R"] if rock_ridge else [])]
    if start:
        args += ["-T", str(start)]
    found: dict[str, int] = {}
    folder = "/"
    for line in _run(*args).splitlines():
        if line.startswith("Directory listing of "):
            folder = line[len("Directory listing of "):].strip()
            continue
        match = _ISOINFO_FILE.match(line)
        if match is None or match.group(1) == "d":
            continue
        name = match.group(3).split(";", 1)[0]
        found[folder.rstrip("/") + "/" + name] = int(match.group(2))
    return found


def _lsdl(image: Path, start: int) -> dict[str, int]:
    found = {}
    out = _run("xorriso", "-load", "sbsector", str(start), "-indev", image, "-find", "/",
               "-exec", "lsdl")
    for line in out.splitlines():
        match = _LSDL.match(line)
        if match is not None and match.group(1) == "-":
            found[match.group(3)] = int(match.group(2))
    return found


def _ours(image: Path, *where: str) -> tuple[dict[str, dict[str, object]], str]:
    result = run_bitwitness("ls", "-r", "--json", image, *where)
    assert result.exit_code == 0, result.stderr
    entries = {e["path"]: e for e in json.loads(result.stdout)["entries"]
               if e["type"] == "r/r"}
    return entries, result.stderr


def _tree(image: Path) -> dict[str, object]:
    result = run_bitwitness("partitions", "--json", image)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)["partitions"][0]


@pytest.mark.parametrize("rock_ridge", [True, False], ids=["rr", "plain"])
def test_burned_sessions_match_isoinfo(tmp_path: Path, rock_ridge: bool) -> None:
    """The last session by default, each earlier one as -p 0/sessionK, each as isoinfo -T
    lists it; the contents as osirrox (Rock Ridge) or isoinfo -x extracts them."""
    require_tool("genisoimage", "isoinfo", "osirrox")
    image, starts = _burned(tmp_path, rock_ridge)
    row = _tree(image)
    children = row["volumes"]
    assert [c["path"] for c in children] == ["0/session1", "0/session2"]
    assert row["iso_session"]["number"] == 3
    assert row["iso_session"]["start"] == starts[2]
    assert [c["iso_session"]["start"] for c in children] == starts[:2]
    assert "-p 0 is session 3" in str(row["warning"])
    for where, start in ((("-p", "0/session1"), starts[0]), (("-p", "0/session2"), starts[1]),
                         ((), starts[2])):
        ours, stderr = _ours(image, *where)
        theirs = _isoinfo(image, start, rock_ridge)
        got = {path if rock_ridge else path.upper(): e["size"] for path, e in ours.items()
               if not path.startswith("/$")}
        assert got == theirs, where
        assert "3 ISO 9660 sessions" in stderr
        assert "-p 0/session1" in stderr
        out = tmp_path / f"x{start}"
        if rock_ridge:
            _run("osirrox", "-load", "sbsector", str(start), "-indev", image, "-extract", "/",
                 out)
        for path in ours:
            if path.startswith("/$"):
                continue
            if rock_ridge:
                want = (out / path.lstrip("/")).read_bytes()
            else:
                want = subprocess.run(
                    ["isoinfo", "-i", image, *(["-T", str(start)] if start else []),
                     "-x", f"{path.upper()};1"], capture_output=True, check=True,
                    timeout=60).stdout
            got_bytes = cat_bytes(image, *where, path)
            assert hashlib.sha256(got_bytes).digest() == hashlib.sha256(want).digest(), path
    last, _ = _ours(image)
    assert cat_bytes(image, "/a.txt" if rock_ridge else "/A.TXT") == b"two-changed-content\n"
    assert ("/gone.txt" if rock_ridge else "/GONE.TXT") in last  # genisoimage -M keeps it


def test_numbers_never_collide_with_tsks(tmp_path: Path) -> None:
    """Session 1 (what TSK reads at sector 16) keeps TSK's numbers, icat giving our bytes;
    the sessions TSK does not read are numbered from K << 32, each number found again by
    --inode and none a number of TSK's."""
    require_tool("genisoimage", "fls", "icat")
    image, _starts = _burned(tmp_path, True)
    fls = {}
    for line in _run("fls", "-r", "-p", image).splitlines():
        head, _tab, path = line.partition("\t")
        fls[path.lower()] = int(head.rsplit(" ", 1)[1].rstrip(":"))
    first, _ = _ours(image, "-p", "0/session1")
    for path, entry in first.items():
        if path.startswith("/$"):
            continue
        number = int(str(entry["inode"]))
        assert fls[path.lstrip("/")] == number, path
        icat = subprocess.run(["icat", image, str(number)], capture_output=True, check=True,
                              timeout=60).stdout
        assert icat == cat_bytes(image, "-p", "0/session1", "--inode", str(number)), path
    seen: set[int] = set()
    for k, where in ((2, ("-p", "0/session2")), (3, ())):
        ours, _ = _ours(image, *where)
        for path, entry in ours.items():
            number = int(str(entry["inode"]))
            assert number >> 32 == k, (path, number)
            assert number not in seen, (path, number)
            seen.add(number)
            if not path.startswith("/$"):
                assert cat_bytes(image, *where, "--inode", str(number)) == \
                    cat_bytes(image, *where, path)


def test_grown_image_sessions_match_xorriso(tmp_path: Path) -> None:
    """xorriso -dev: sector 16 is the last session (as before, TSK's numbers), the older
    trees -p 0/session1 and 0/session2, at the starts xorriso's TOC names, each listing and
    content as libisofs reads that session."""
    require_tool("xorriso", "osirrox", "fls")
    image = _grown(tmp_path)
    toc = [int(m.group(1)) for m in
           re.finditer(r"ISO session\s*:\s*\d+\s*,\s*(\d+)\s*,", _run("xorriso", "-indev",
                                                                       image, "-toc"))]
    assert len(toc) == 3
    row = _tree(image)
    assert [c["path"] for c in row["volumes"]] == ["0/session1", "0/session2"]
    assert [c["iso_session"]["start"] for c in row["volumes"]] == toc[:2]
    assert row["iso_session"]["start"] == toc[2]
    assert row["iso_session"]["read_by_tsk"]
    for where, start in ((("-p", "0/session1"), toc[0]), (("-p", "0/session2"), toc[1]),
                         ((), toc[2])):
        ours, stderr = _ours(image, *where)
        got = {p: e["size"] for p, e in ours.items() if not p.startswith("/$")}
        assert got == _lsdl(image, start), where
        assert "3 ISO 9660 sessions" in stderr
        out = tmp_path / f"x{start}"
        _run("osirrox", "-load", "sbsector", str(start), "-indev", image, "-extract", "/", out)
        for path in got:
            assert cat_bytes(image, *where, path) == (out / path.lstrip("/")).read_bytes()
    assert "/d1/gone.txt" in _ours(image, "-p", "0/session1")[0]
    fls = {}
    for line in _run("fls", "-r", "-p", image).splitlines():
        head, _tab, path = line.partition("\t")
        fls[path.lower()] = int(head.rsplit(" ", 1)[1].rstrip(":"))
    last, _ = _ours(image)
    for path, entry in last.items():
        if path.lstrip("/") in fls:
            assert fls[path.lstrip("/")] == int(str(entry["inode"])), path


def test_every_browsing_command_says_the_session(tmp_path: Path) -> None:
    require_tool("genisoimage")
    image, _starts = _burned(tmp_path, True)
    text = run_bitwitness("partitions", image)
    assert "0/session1" in text.stdout
    assert "session 3 of 3" in text.stdout
    for args in (("ls", image), ("cat", image, "/a.txt"), ("stat", image, "/a.txt"),
                 ("timeline", image), ("export", image, "/", "--to", tmp_path / "out")):
        result = run_bitwitness(*args)
        assert result.exit_code == 0, (args, result.stderr)
        assert "-p 0 is session 3 (the last" in result.stderr, args
    timeline = run_bitwitness("timeline", image).stdout
    assert "third.txt" in timeline
    assert "session1" not in timeline


def test_single_session_iso_is_unchanged(tmp_path: Path) -> None:
    require_tool("genisoimage", "xorriso", "fls")
    _write(tmp_path / "s", {"a.txt": b"a\n", "b.txt": b"b\n"})
    plain, rr = tmp_path / "plain.iso", tmp_path / "rr.iso"
    _run("genisoimage", "-quiet", "-o", plain, tmp_path / "s")
    _run("xorriso", "-outdev", rr, "-map", tmp_path / "s", "/", "-commit")
    for image in (plain, rr):
        assert _tree(image)["volumes"] == []
        result = run_bitwitness("ls", "-r", image)
        assert result.exit_code == 0
        assert "session" not in result.stderr
    assert sorted(run_bitwitness("ls", "-r", plain).stdout.splitlines()) == sorted(
        _run("fls", "-r", "-p", plain).splitlines())


def _fake_session(start: int, template: bytes) -> dict[int, bytes]:
    """Sectors of a minimal session at ``start``: a primary descriptor (``template``'s, its
    volume size and root moved), a terminator, a root folder and its path table."""
    pvd = bytearray(template)
    pvd[80:88] = (20).to_bytes(4, "little") + (20).to_bytes(4, "big")
    root = start + 18
    pvd[158:166] = root.to_bytes(4, "little") + root.to_bytes(4, "big")
    pvd[132:140] = (10).to_bytes(4, "little") + (10).to_bytes(4, "big")
    pvd[140:144] = (start + 19).to_bytes(4, "little")
    pvd[148:152] = (start + 19).to_bytes(4, "big")
    dot = bytearray(34)
    dot[0] = 34
    dot[2:10] = root.to_bytes(4, "little") + root.to_bytes(4, "big")
    dot[10:18] = _SECTOR.to_bytes(4, "little") + _SECTOR.to_bytes(4, "big")
    dot[25], dot[32] = 2, 1
    dotdot = bytearray(dot)
    dotdot[33] = 1
    table = bytes([1, 0]) + root.to_bytes(4, "big") + (1).to_bytes(2, "big") + b"\0\0"
    return {start + 16: bytes(pvd), start + 17: b"\xffCD001\x01".ljust(_SECTOR, b"\0"),
            root: bytes(dot + dotdot).ljust(_SECTOR, b"\0"), start + 19: table.ljust(
                _SECTOR, b"\0")}


def test_a_hostile_chain_of_sessions_is_bounded(tmp_path: Path) -> None:
    """600 sessions of 20 sectors: 512 are read, the warning says a later one may exist, in
    bounded time and memory; a candidate whose root lies outside its session is none."""
    require_tool("genisoimage")
    _write(tmp_path / "s", {"a.txt": b"a\n"})
    base = tmp_path / "base.iso"
    _run("genisoimage", "-quiet", "-o", base, tmp_path / "s")
    data = bytearray(base.read_bytes())
    first = len(data) // _SECTOR
    template = bytes(data[16 * _SECTOR:17 * _SECTOR])
    sectors: dict[int, bytes] = {}
    for n in range(600):
        sectors.update(_fake_session(first + 20 * n, template))
    data.extend(bytes((600 * 20 + 40) * _SECTOR))
    for sector, block in sectors.items():
        data[sector * _SECTOR:(sector + 1) * _SECTOR] = block
    bogus = _fake_session(first + 600 * 20, template)
    pvd = bytearray(bogus[first + 600 * 20 + 16])
    pvd[158:166] = (3).to_bytes(4, "little") + (3).to_bytes(4, "big")  # root before it
    data[(first + 600 * 20 + 16) * _SECTOR:(first + 600 * 20 + 17) * _SECTOR] = pvd
    image = tmp_path / "many.iso"
    image.write_bytes(bytes(data))
    code, _digest = fails_closed("ls", "-r", image)
    assert code == 0
    result = run_bitwitness("ls", image)
    assert "more than 512 ISO 9660 sessions" in result.stderr
    assert "session 512 (the last the scan found)" in result.stderr
    # partitions never calls it the last a drive presents (it said so, with no note)
    rows = run_bitwitness("partitions", image)
    assert "the last the scan found, which stopped short" in rows.stdout
    assert "the last, as a drive presents it" not in rows.stdout
    from bitwitness.image import open_image
    from bitwitness.report.browse import iso_sessions

    with open_image(image) as stream:
        saved = iso_sessions.MAX_SESSIONS
        iso_sessions.MAX_SESSIONS = 1000
        try:
            scan = iso_sessions.find_sessions(stream)
        finally:
            iso_sessions.MAX_SESSIONS = saved
    assert len(scan.sessions) == 601
    assert scan.note is None
    assert [s.start for s in scan.sessions[1:3]] == [first, first + 20]
