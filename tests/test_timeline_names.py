"""Timelines of evidence whose names print alike: every file told apart, exactly.

The evidence is tests/hostile_names.py's ext4 (``mkfs.ext4 -d``); each file holds its own name,
so ``icat`` of a row's inode says which name the row must stand for, independently of how any
of our outputs spells it. The CSV is read with :mod:`csv`, the bodyfile by TSK's ``mactime``
and compared with what ``fls -m`` writes.
"""

from __future__ import annotations

import csv
import io
import subprocess
from pathlib import Path

import pytest
from conftest import require_tool, run_bitwitness
from hostile_names import HOSTILE, hostile_image, icat_name, stored_names


@pytest.fixture(scope="module")
def evidence(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_tool("icat")
    return hostile_image(tmp_path_factory.mktemp("timeline-names"))


def csv_timeline(image: Path) -> list[dict[str, str]]:
    result = run_bitwitness("timeline", image, "--format", "csv")
    assert result.exit_code == 0, result.stderr
    return list(csv.DictReader(io.StringIO(result.output.decode("utf-8"), newline="")))


def exact_path(row: dict[str, str]) -> bytes:
    """What the README says a reader does: ``path_hex``'s bytes when set, else ``path``."""
    return bytes.fromhex(row["path_hex"]) if row["path_hex"] else row["path"].encode("utf-8")


def test_csv_path_hex_gives_each_file_its_exact_name(evidence: Path) -> None:
    """Every row's exact path is the name ``icat`` finds in that inode, so the three files
    printed ``/a^b`` (a tab, a caret, a 0x01), the two printed ``/x\\xffy`` and the NFC and NFD
    ``café`` are each their own; ``path_hex`` is empty where ``path`` is already exact."""
    rows = [r for r in csv_timeline(evidence) if r["inode"] not in ("2", "11")]  # root, l+f
    files = {r["inode"]: r for r in rows if r["mode"].startswith("r/")}
    assert {exact_path(r) for r in files.values()} == {b"/" + n for n in stored_names(
        evidence.parent)}
    for inode, row in files.items():
        assert exact_path(row) == b"/" + icat_name(evidence, inode), row
    printed = {exact_path(r): r["path"] for r in files.values()}
    assert {printed[b"/" + HOSTILE[k]] for k in ("tab", "caret", "soh")} == {"/a^b"}
    assert {printed[b"/" + HOSTILE[k]] for k in ("literal", "byte")} == {"/x\\xffy"}
    exact_rows = {exact_path(r) for r in rows if not r["path_hex"]}
    for key in ("caret", "literal", "pipe", "pipe-spelled", "nfc", "nfd", "hangul"):
        assert b"/" + HOSTILE[key] in exact_rows, key  # printed as stored: no hex needed
    for key in ("tab", "soh", "byte", "del", "c1", "rlo"):
        assert b"/" + HOSTILE[key] not in exact_rows, key


def bodyfile(image: Path) -> list[bytes]:
    result = run_bitwitness("timeline", image)
    assert result.exit_code == 0, result.stderr
    return result.output.splitlines()


def fls_m(image: Path) -> list[bytes]:
    return subprocess.run(["fls", "-r", "-m", "/", str(image)], capture_output=True,
                          check=True).stdout.splitlines()


def mactime(body: Path) -> dict[str, list[bytes]]:
    """``mactime -d``'s rows read with :mod:`csv`: inode -> the names it shows for it (bytes:
    mactime writes a name's bytes as they are)."""
    out = subprocess.run(["mactime", "-b", str(body), "-d", "-y", "-z", "UTC"],
                         capture_output=True, check=True).stdout
    rows = list(csv.reader(io.StringIO(out.decode("utf-8", "surrogateescape"))))
    assert rows[0][6:] == ["Meta", "File Name"]
    shown: dict[str, list[bytes]] = {}
    for row in rows[1:]:
        shown.setdefault(row[6], []).append(row[7].encode("utf-8", "surrogateescape"))
    return shown


#: Names holding what mactime splits a line on (``|``) or decodes (``%XX``), as the bodyfile
#: writes them.
FOR_MACTIME = {"pipe": b"/p%7Cq", "pipe-spelled": b"/p\\x7cq", "pipe-percent": b"/p%257Cq",
               "percent": b"/100%"}


def test_mactime_reads_every_bodyfile_name_back_as_stored(evidence: Path,
                                                         tmp_path: Path) -> None:
    """mactime shows each file under its own inode with the name ``icat`` finds there
    (control characters aside, ``^`` as fls writes them): ``p|q``, ``p\\x7cq`` and
    ``p%7Cq`` are three names, where our ``\\x7c`` escape showed the first two alike."""
    require_tool("mactime")
    body = tmp_path / "body"
    body.write_bytes(b"\n".join(bodyfile(evidence)) + b"\n")
    shown = mactime(body)
    seen = set()
    for inode in [i for i in shown if i not in ("2", "11")]:
        stored = icat_name(evidence, inode)
        seen.add(stored)
        as_fls = bytes(0x5E if b < 0x20 else b for b in stored)  # C0 controls: ^
        assert set(shown[inode]) == {b"/" + as_fls}, (inode, shown[inode])
    assert seen == set(HOSTILE.values())  # no row dropped
    printed = [n for inode, ns in shown.items() for n in set(ns)]
    for key in FOR_MACTIME:
        assert printed.count(b"/" + HOSTILE[key]) == 1, key


def test_bodyfile_is_fls_m_but_for_what_mactime_splits_or_decodes(evidence: Path) -> None:
    """Line for line what ``fls -r -m /`` writes, except the four names holding ``|`` or
    ``%XX``: fls writes ``p|q`` as it is (a line of 12 fields, which mactime drops: the inode
    field is ``q``) and ``p%7Cq`` as it is (which mactime shows as ``p|q``); ours are written
    ``p%7Cq`` and ``p%257Cq``."""
    require_tool("fls")
    ours, theirs = set(bodyfile(evidence)), set(fls_m(evidence))
    mine = {line for line in ours if line.split(b"|")[1] in FOR_MACTIME.values()}
    stored = {b"|/" + HOSTILE[k] + b"|" for k in FOR_MACTIME}
    fls_own = {line for line in theirs if any(name in line for name in stored)}
    assert len(mine) == len(fls_own) == len(FOR_MACTIME)
    assert ours - mine == theirs - fls_own
    for line in mine:  # each escaped name is on the line of the inode holding that name
        _, name, inode, *_ = line.split(b"|")
        key = next(k for k, v in FOR_MACTIME.items() if v == name)
        assert icat_name(evidence, inode.decode()) == HOSTILE[key], line
    assert all(line.count(b"|") == 10 for line in ours)
    assert [line.count(b"|") for line in fls_own if b"|/p|q|" in line] == [11]
    assert b"0|/p%7Cq|" in b"\n".join(fls_own)  # fls: the name p%7Cq, which mactime shows p|q


def test_mactime_decodes_every_short_name_of_percent_pipe_and_hex_back(tmp_path: Path) -> None:
    """Every name of up to four characters from ``%``, ``|``, ``7``, ``C``, ``c`` and ``x``
    (``%%7C``, ``%7|``, ``|%25``, ...) written by :func:`for_mactime` on a bodyfile line of its
    own: mactime splits each line into the right fields and shows each name as it was."""
    from itertools import product

    from bitwitness.report.browse.timeline import for_mactime

    require_tool("mactime")
    names = ["".join(p) for n in range(1, 5) for p in product("%|7Ccx", repeat=n)]
    body = tmp_path / "body"
    body.write_text("".join(f"0|/{for_mactime(name)}|{inode}|r/rrw-r--r--|0|0|1|1|1|1|1\n"
                            for inode, name in enumerate(names, start=100)), encoding="ascii")
    shown = mactime(body)
    assert len(shown) == len(names)
    for inode, name in enumerate(names, start=100):
        assert shown[str(inode)] == [f"/{name}".encode()], name
