"""Timelines of evidence whose names print alike: every file told apart, exactly.

The evidence is tests/hostile_names.py's ext4 (``mkfs.ext4 -d``); each file holds its own name,
so ``icat`` of a row's inode says which name the row must stand for, independently of how any
of our outputs spells it. The CSV is read with :mod:`csv`.
"""

from __future__ import annotations

import csv
import io
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
