"""``info`` on an unfinished raw acquisition: said at once, in text and JSON, and exit status 1.

The images are made by the real acquisition engine, stopped cleanly (the ``stop`` event the TUI's
Cancel sets) from a :class:`FaultySource` read hook, so that the ``.partial`` names and the
acquisition log are exactly what an interrupted run leaves. ``info`` must read them without
changing a byte or an mtime.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import CliResult, make_disk_bytes, run_acquire, run_bitwitness, snapshot

from bitwitness.acquire.engine import OutputFormat
from bitwitness.errors import ExitCode
from bitwitness.sizes import format_size

SIZE = 3 << 20  # whole sectors: the media is the source
PIECE = 1 << 20


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "source.bin"
    path.write_bytes(make_disk_bytes(SIZE, seed=41))
    return path


def acquire_raw(source: Path, output: Path, *, split: int | None,
                stop_at: int | None = None, fmt: OutputFormat = OutputFormat.RAW) -> Any:
    """Acquire ``source`` with the engine; with ``stop_at`` the run stops cleanly there."""
    return run_acquire(source, output, fmt, stop_at=stop_at, split=split,
                       hashes=("md5", "sha1"))


def interrupted(tmp_path: Path, source: Path, split: int | None) -> list[Path]:
    """An interrupted raw acquisition past its first MiB; its ``.partial`` files in order."""
    result = acquire_raw(source, tmp_path / "img", split=split, stop_at=PIECE + 4096)
    assert result.status.value == "interrupted"
    files = sorted(tmp_path.glob("img.*partial"))
    assert files, "the interrupted run left no .partial output"
    assert not (tmp_path / "img.raw").exists()
    assert not list(tmp_path.glob("img.0??"))
    return files


def evidence(tmp_path: Path) -> dict[Path, tuple[str, int]]:
    return snapshot(sorted(p for p in tmp_path.iterdir() if p.is_file()))


def one_error_line(res: CliResult) -> str:
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert "Traceback" not in res.stderr
    return lines[0]


CASES = [pytest.param(None, 0, id="single"), pytest.param(PIECE, 0, id="split-first"),
         pytest.param(PIECE, -1, id="split-last")]


@pytest.mark.parametrize(("split", "given"), CASES)
def test_info_on_an_interrupted_raw_acquisition_says_so_and_exits_1(
        tmp_path: Path, source: Path, split: int | None, given: int) -> None:
    files = interrupted(tmp_path, source, split)
    if split is None:
        assert [f.name for f in files] == ["img.raw.partial"]
    else:
        assert [f.name for f in files] == ["img.001.partial", "img.002.partial"]
    held = sum(f.stat().st_size for f in files)
    log = json.loads((tmp_path / "img.json").read_text())
    assert log["status"] == "interrupted"
    assert held == sum(o["size"] for o in log["outputs"]) < SIZE
    before = evidence(tmp_path)

    res = run_bitwitness("info", files[given], "--json")
    assert res.exit_code == ExitCode.EVIDENCE
    doc = res.json()  # stdout is still exactly one JSON document
    assert [Path(f["path"]) for f in doc["files"]] == files  # the whole set, from any piece
    assert (doc["media_size"], doc["sectors"], doc["sector_size"]) == (SIZE, SIZE // 512, 512)
    assert doc["readable_media_size"] == held
    assert doc["unfinished"] == {
        "reason": "its name ends in .partial, which BitWitness gives raw output until the "
                  "acquisition finishes",
        "declared_media_size": SIZE,
        "status": "interrupted",
        "error": log["error"],
        "log": str(tmp_path / "img.json"),
    }
    error = one_error_line(res)
    assert "INCOMPLETE" in error
    assert "img.json records it as interrupted" in error
    assert f"hold {held} of the {SIZE} media bytes the log declares" in error

    human = run_bitwitness("info", files[given])
    assert human.exit_code == ExitCode.EVIDENCE
    out = human.stdout
    assert out.index("UNFINISHED ACQUISITION") < out.index("Media information")  # seen first
    assert "  Status in the log:      interrupted\n" in out
    assert "  Acquisition log:        img.json\n" in out
    assert f"  Media size:             {format_size(SIZE)} ({SIZE} bytes)\n" in out
    assert (f"  Readable media:         {format_size(held)} ({held} bytes) in its *.partial "
            "files: the image is INCOMPLETE\n") in out
    assert one_error_line(human) == error
    assert before == evidence(tmp_path)


@pytest.mark.parametrize("split", [None, PIECE])
def test_a_failed_acquisition_is_shown_with_its_log_status_and_error(
        tmp_path: Path, source: Path, split: int | None) -> None:
    """What a killed run leaves: the checkpoint log says ``failed`` (the engine's own words are
    kept), and only that log knows; ``info`` repeats the status and the error."""
    files = interrupted(tmp_path, source, split)
    log_path = tmp_path / "img.json"
    log = json.loads(log_path.read_text())
    log["status"], log["error"] = "failed", "the acquisition did not finish (no final log)"
    log_path.write_text(json.dumps(log))
    (tmp_path / "img.txt").unlink()  # the report would repeat "interrupted"
    before = evidence(tmp_path)

    res = run_bitwitness("info", files[0], "--json")
    assert res.exit_code == ExitCode.EVIDENCE
    unfinished = res.json()["unfinished"]
    assert (unfinished["status"], unfinished["error"]) == (
        "failed", "the acquisition did not finish (no final log)")
    assert "img.json records it as failed" in one_error_line(res)
    human = run_bitwitness("info", files[0])
    assert human.exit_code == ExitCode.EVIDENCE
    assert "  Status in the log:      failed\n" in human.stdout
    assert "  Error in the log:       the acquisition did not finish (no final log)\n" in (
        human.stdout)
    assert before == evidence(tmp_path)


def test_the_text_report_alone_still_gives_status_size_and_error(tmp_path: Path,
                                                                  source: Path) -> None:
    files = interrupted(tmp_path, source, None)
    error = json.loads((tmp_path / "img.json").read_text())["error"]
    (tmp_path / "img.json").unlink()
    res = run_bitwitness("info", files[0], "--json")
    assert res.exit_code == ExitCode.EVIDENCE
    doc = res.json()
    assert doc["media_size"] == SIZE
    assert doc["unfinished"]["log"] == str(tmp_path / "img.txt")
    assert (doc["unfinished"]["status"], doc["unfinished"]["error"]) == ("interrupted", error)
    assert "img.txt records it as interrupted" in one_error_line(res)


@pytest.mark.parametrize("split", [None, PIECE])
def test_the_name_alone_marks_it_unfinished_without_a_log(tmp_path: Path, source: Path,
                                                          split: int | None) -> None:
    files = interrupted(tmp_path, source, split)
    for name in ("img.json", "img.txt"):
        (tmp_path / name).unlink()
    held = sum(f.stat().st_size for f in files)
    before = evidence(tmp_path)

    res = run_bitwitness("info", files[-1], "--json")
    assert res.exit_code == ExitCode.EVIDENCE
    doc = res.json()
    assert doc["media_size"] == doc["readable_media_size"] == held  # nothing says more
    assert doc["unfinished"]["reason"].startswith("its name ends in .partial")
    assert doc["unfinished"]["log"] is None
    assert doc["unfinished"]["status"] is None
    assert doc["unfinished"]["declared_media_size"] is None
    assert doc["logs"] == []
    error = one_error_line(res)
    assert "INCOMPLETE" in error
    assert "still named *.partial; no acquisition log next to it" in error
    assert f"hold {held} bytes" in error

    human = run_bitwitness("info", files[-1])
    assert human.exit_code == ExitCode.EVIDENCE
    assert "UNFINISHED ACQUISITION" in human.stdout
    assert "  Acquisition log:        none found next to the image\n" in human.stdout
    assert "the image is INCOMPLETE" in human.stdout
    assert before == evidence(tmp_path)


@pytest.mark.parametrize(("split", "name"), [(None, "img.raw"), (PIECE, "img.002")])
def test_a_finished_raw_image_is_shown_as_before_and_exits_0(tmp_path: Path, source: Path,
                                                             split: int | None,
                                                             name: str) -> None:
    """Nothing of the unfinished case leaks into a finished image: no section, no note, the
    same media size, exit 0, and ``unfinished`` is null."""
    result = acquire_raw(source, tmp_path / "img", split=split)
    assert result.status.value == "completed"
    files = sorted(tmp_path.glob("img.raw" if split is None else "img.0??"))
    before = evidence(tmp_path)

    res = run_bitwitness("info", tmp_path / name, "--json")
    assert res.exit_code == ExitCode.OK, res.stderr
    assert res.stderr == ""
    doc = res.json()
    assert doc["unfinished"] is None
    assert doc["media_size"] == doc["readable_media_size"] == SIZE
    assert [Path(f["path"]) for f in doc["files"]] == files

    human = run_bitwitness("info", tmp_path / name)
    assert human.exit_code == ExitCode.OK, human.stderr
    assert human.stderr == ""
    lines = human.stdout.splitlines()
    fmt = "raw (no container signature)" if split is None else "split-raw"
    assert lines[:6] == [f"{tmp_path / name}  ({fmt})", "", "Media information",
                         "  Bytes per sector:       512",
                         f"  Number of sectors:      {SIZE // 512}",
                         f"  Media size:             {format_size(SIZE)} ({SIZE} bytes)"]
    for absent in ("UNFINISHED", "INCOMPLETE", "Readable media", ".partial"):
        assert absent not in human.stdout
    assert before == evidence(tmp_path)


def test_an_unfinished_e01_carries_the_same_record(tmp_path: Path, source: Path) -> None:
    """The ``unfinished`` record is the one place to look, for an E01 set as for raw."""
    result = acquire_raw(source, tmp_path / "img", split=None, stop_at=2 << 20,
                         fmt=OutputFormat.E01)
    assert result.status.value == "interrupted"
    res = run_bitwitness("info", tmp_path / "img.E01", "--json")
    assert res.exit_code == ExitCode.EVIDENCE
    doc = res.json()
    assert doc["ewf"]["complete"] is False
    unfinished = doc["unfinished"]
    assert unfinished["reason"].startswith("the E01 set was never finished")
    assert (unfinished["declared_media_size"], unfinished["status"]) == (SIZE, "interrupted")
    assert unfinished["log"] == str(tmp_path / "img.json")
    human = run_bitwitness("info", tmp_path / "img.E01")
    assert "UNFINISHED ACQUISITION" in human.stdout
    assert "the E01 set was never finished" in one_error_line(human)
