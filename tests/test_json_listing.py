"""``--json`` listings written one entry at a time: the same document ``print_json`` writes,
in bounded memory (a quarter of a million entries held as one list cost 1.2 GiB), and still
one document or nothing on stdout when the walk fails midway."""

from __future__ import annotations

import json
import sys
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from bitwitness.cli.output import print_json, print_json_listing


def _entries(count: int, fail_at: int | None = None) -> Iterator[dict[str, object]]:
    for n in range(count):
        if n == fail_at:
            raise RuntimeError("the walk failed here")
        yield {"path": f"/folder/file-{n:07d}.txt", "inode": str(n), "size": n * 3,
               "deleted": bool(n % 2), "name": "ünïcode"}


@pytest.mark.parametrize("count", [0, 1, 5])
def test_the_same_document_as_print_json(capsys: pytest.CaptureFixture[str],
                                         count: int) -> None:
    head = {"image": "x.E01", "path": "/", "recursive": True}
    print_json({**head, "entries": list(_entries(count))})
    whole = capsys.readouterr().out
    print_json_listing(head, "entries", _entries(count))
    assert capsys.readouterr().out == whole
    assert len(json.loads(whole)["entries"]) == count


def test_memory_stays_flat_with_the_entry_count(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """40,000 entries (about 9 MiB of JSON): past the spool's 8 MiB, on disk; held as one list
    of entry dictionaries they would take about a hundred MiB."""
    out = tmp_path / "listing.json"
    with out.open("w", encoding="utf-8") as handle:
        monkeypatch.setattr(sys, "stdout", handle)
        tracemalloc.start()
        try:
            print_json_listing({"path": "/"}, "entries", _entries(40_000))
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert len(json.loads(out.read_text(encoding="utf-8"))["entries"]) == 40_000
    assert peak < 16 << 20, peak


def test_a_walk_failing_midway_leaves_stdout_empty(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(RuntimeError):
        print_json_listing({"path": "/"}, "entries", _entries(20_000, fail_at=15_000))
    assert capsys.readouterr().out == ""
