"""Our own acquisition records: BASE.txt named for what it is, interrupted acquisitions INCOMPLETE.

Every image here is made by the real acquisition engine (``bitwitness.acquire.engine``), and an
interruption is the engine's own clean stop (the ``stop`` event the TUI's Cancel sets), fired from
a read hook once the reader has passed a chosen offset. Expected hashes come from
md5sum/sha1sum/sha256sum over the source and the written files, never from BitWitness.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import make_disk_bytes, require_tool, run_acquire, run_bitwitness, snapshot

from bitwitness.acquire.engine import CaseTarget, OutputFormat
from bitwitness.errors import ExitCode
from bitwitness.sizes import format_size
from bitwitness.verify import Match, Verdict, verify_image

SIZE = 3 << 20  # a whole number of sectors: the media is the source, no padding


def digest(tool: str, path: Path) -> str:
    out = subprocess.run([tool, str(path)], capture_output=True, text=True, check=True).stdout
    return out.split()[0]


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "source.bin"
    path.write_bytes(make_disk_bytes(SIZE, seed=73))
    return path


# --- BASE.txt ------------------------------------------------------------------------------


def test_own_text_report_is_not_an_ftk_report_and_not_compared_twice(
        tmp_path: Path, source: Path) -> None:
    require_tool("md5sum", "sha1sum", "sha256sum")
    result = run_acquire(source, tmp_path / "disk01", OutputFormat.E01)
    assert result.status.value == "completed"
    image, text = tmp_path / "disk01.E01", tmp_path / "disk01.txt"
    assert text.read_text().startswith("Created by BitWitness")
    verified = verify_image(image)
    assert verified.verdict is Verdict.VERIFIED, verified.problems
    assert verified.computed == {a: digest(f"{a}sum", source) for a in ("md5", "sha1", "sha256")}
    sources = {c.reference.source for c in verified.comparisons}
    assert not any("FTK" in s for s in sources), sources
    assert not any("disk01.txt" in s for s in sources)  # same record as disk01.json: once
    assert text not in verified.logs
    note = next(n for n in verified.notes if "disk01.txt" in n)
    assert note.startswith("BitWitness acquisition report disk01.txt")
    assert "disk01.json" in note
    # the JSON's hashes are all compared, the E01 file's SHA-256 against sha256sum
    file_refs = [c for c in verified.comparisons if c.reference.file is not None]
    assert [(c.reference.file, c.computed, c.match) for c in file_refs] == [
        (image, digest("sha256sum", image), Match.MATCH)]


def test_own_text_report_alone_is_checked_under_its_name(tmp_path: Path, source: Path) -> None:
    require_tool("md5sum", "sha1sum", "sha256sum")
    run_acquire(source, tmp_path / "disk01", OutputFormat.RAW)
    image, text = tmp_path / "disk01.raw", tmp_path / "disk01.txt"
    (tmp_path / "disk01.json").unlink()
    (tmp_path / "disk01.md5").unlink(missing_ok=True)  # only the text report records hashes
    for sidecar in tmp_path.glob("disk01.sha*"):
        sidecar.unlink()
    verified = verify_image(image)
    assert verified.verdict is Verdict.VERIFIED, verified.problems
    assert text in verified.logs
    checked = {(c.reference.source, c.reference.algorithm, c.reference.value)
               for c in verified.comparisons if c.match is Match.MATCH}
    label = "BitWitness acquisition report disk01.txt"
    for algorithm in ("md5", "sha1", "sha256"):
        assert (label, algorithm, digest(f"{algorithm}sum", source)) in checked
    assert verified.size_checks
    assert all(s.ok for s in verified.size_checks)
    # a report claiming another MD5 (that of a different file) is a mismatch under its name
    other = tmp_path / "other.bin"
    other.write_bytes(make_disk_bytes(4096, seed=5))
    text.write_text(re.sub(r"(MD5 checksum:\s+)[0-9a-f]{32}",
                           lambda m: m.group(1) + digest("md5sum", other), text.read_text()))
    changed = verify_image(image)
    assert changed.verdict is Verdict.MISMATCH
    assert [p for p in changed.problems if label in p and "md5 of media" in p]


def test_own_text_report_that_disagrees_with_its_json_is_kept(tmp_path: Path,
                                                             source: Path) -> None:
    require_tool("sha1sum")
    run_acquire(source, tmp_path / "disk01", OutputFormat.E01)
    text = tmp_path / "disk01.txt"
    wrong = digest("sha1sum", tmp_path / "disk01.json")  # a real SHA-1, of the wrong thing
    text.write_text(re.sub(r"(SHA1 checksum:\s+)[0-9a-f]{40}", lambda m: m.group(1) + wrong,
                           text.read_text()))
    verified = verify_image(tmp_path / "disk01.E01")
    assert verified.verdict is Verdict.MISMATCH
    bad = [c for c in verified.comparisons if c.match is Match.MISMATCH]
    assert [(c.reference.source, c.reference.algorithm, c.reference.value) for c in bad] == [
        ("BitWitness acquisition report disk01.txt", "sha1", wrong)]
    assert bad[0].computed == digest("sha1sum", source)


# --- interrupted acquisitions --------------------------------------------------------------


@pytest.mark.parametrize(("fmt", "split", "name"), [
    (OutputFormat.RAW, None, "img.raw.partial"),
    (OutputFormat.RAW, 1 << 20, "img.001.partial"),
    (OutputFormat.E01, None, "img.E01"),
])
def test_interrupted_acquisition_is_incomplete(tmp_path: Path, source: Path, fmt: OutputFormat,
                                               split: int | None, name: str) -> None:
    result = run_acquire(source, tmp_path / "img", fmt, stop_at=1 << 20, split=split)
    assert result.status.value == "interrupted"
    image = tmp_path / name
    assert image.is_file()
    log = json.loads((tmp_path / "img.json").read_text())
    assert log["status"] == "interrupted"
    before = snapshot(sorted(p for p in tmp_path.iterdir() if p.is_file()))
    verified = verify_image(image)
    assert verified.verdict is Verdict.INCOMPLETE, verified.problems
    assert "acquisition log img.json records the acquisition as interrupted" in verified.problems
    assert verified.media_size < SIZE
    cli = run_bitwitness("verify", image, "--json")
    assert cli.exit_code == 1
    assert cli.json()["images"][0]["verdict"] == "INCOMPLETE"
    assert before == snapshot(sorted(p for p in tmp_path.iterdir() if p.is_file()))


def test_finished_e01_whose_log_says_interrupted_is_incomplete(tmp_path: Path,
                                                                source: Path) -> None:
    require_tool("ewfverify")
    run_acquire(source, tmp_path / "img", OutputFormat.E01)
    # the set itself is complete and sound by libewf's own check ...
    subprocess.run(["ewfverify", "-q", str(tmp_path / "img.E01")], capture_output=True,
                   check=True)
    log_path = tmp_path / "img.json"
    log = json.loads(log_path.read_text())
    log["status"] = "interrupted"
    log_path.write_text(json.dumps(log))
    # ... but the record of how it was made says the acquisition did not finish
    verified = verify_image(tmp_path / "img.E01")
    assert verified.verdict is Verdict.INCOMPLETE
    assert "acquisition log img.json records the acquisition as interrupted" in verified.problems


def test_interrupted_acquisition_in_a_case_is_recorded_incomplete(tmp_path: Path,
                                                                 source: Path) -> None:
    case_dir = tmp_path / "case"
    made = run_bitwitness("case", "new", case_dir, "--set", "case_number=C-7",
                          "--set", "examiner=Ann Example")
    assert made.exit_code == 0, made.stderr
    result = run_acquire(source, None, OutputFormat.RAW, stop_at=1 << 20,
                         case=CaseTarget(case_dir, "usb01"))
    assert result.status.value == "interrupted"
    assert (case_dir / "evidence/usb01/usb01.raw.partial").is_file()
    cli = run_bitwitness("verify", "--case", case_dir, "--json")
    assert cli.exit_code == 1, cli.stderr
    (item,) = cli.json()["images"]
    assert (item["evidence_id"], item["verdict"]) == ("usb01", "INCOMPLETE")
    events = [json.loads(line) for line in (case_dir / "custody.jsonl").read_text().splitlines()]
    recorded = [e for e in events if e["action"] == "verify"]
    assert [e["details"]["verdict"] for e in recorded] == ["INCOMPLETE"]
    assert any("interrupted" in p for p in recorded[0]["details"]["problems"])


@pytest.mark.parametrize(("split", "name"), [(None, "img.raw.partial"),
                                             (1 << 20, "img.002.partial")])
def test_partial_name_without_a_log_is_noted(tmp_path: Path, source: Path, split: int | None,
                                             name: str) -> None:
    run_acquire(source, tmp_path / "img", OutputFormat.RAW, stop_at=2 << 20, split=split)
    for log in ("img.json", "img.txt"):
        (tmp_path / log).unlink()
    verified = verify_image(tmp_path / name)
    assert verified.verdict is Verdict.UNVERIFIED  # nothing recorded: the name alone proves nothing
    assert any(".partial" in n and "no acquisition log" in n for n in verified.notes)
    images = sorted(tmp_path.glob("img.*partial"))
    assert list(verified.files) == images  # the whole unfinished set, not the piece named
    assert verified.bytes_read == sum(p.stat().st_size for p in images)


def _md5_of_concatenation(paths: list[Path]) -> str:
    """md5sum over ``cat`` of the pieces: the outside check of what the set holds."""
    cat = subprocess.run(["cat", *map(str, paths)], capture_output=True, check=True).stdout
    return subprocess.run(["md5sum"], input=cat, capture_output=True, check=True
                          ).stdout.split()[0].decode()


def test_interrupted_split_raw_is_verified_as_its_whole_partial_set(tmp_path: Path,
                                                                     source: Path) -> None:
    """``verify BASE.001.partial`` reads every .partial piece (not just the first) and calls the
    set INCOMPLETE because its acquisition log says the run was interrupted."""
    require_tool("md5sum", "cat")
    result = run_acquire(source, tmp_path / "img", OutputFormat.RAW, stop_at=(2 << 20) + 4096,
                         split=1 << 20)
    assert result.status.value == "interrupted"
    pieces = sorted(tmp_path.glob("img.0??.partial"))
    assert [p.name for p in pieces] == ["img.001.partial", "img.002.partial", "img.003.partial"]
    held = sum(p.stat().st_size for p in pieces)
    assert 2 << 20 < held < SIZE
    before = snapshot(sorted(p for p in tmp_path.iterdir() if p.is_file()))
    for given in (pieces[0], pieces[-1]):
        verified = verify_image(given)
        assert verified.format == "split-raw"
        assert list(verified.files) == pieces
        assert verified.bytes_read == verified.media_size == held
        assert verified.computed["md5"] == _md5_of_concatenation(pieces)
        assert verified.verdict is Verdict.INCOMPLETE, verified.problems
        assert ("acquisition log img.json records the acquisition as interrupted"
                in verified.problems)
        assert f"media is {held} bytes, acquisition log img.json records {SIZE}" in (
            verified.problems)
    cli = run_bitwitness("verify", pieces[0], "--json")
    assert cli.exit_code == ExitCode.EVIDENCE
    (doc,) = cli.json()["images"]
    assert (doc["verdict"], doc["bytes_read"]) == ("INCOMPLETE", held)
    assert [Path(f).name for f in doc["files"]] == [p.name for p in pieces]
    human = run_bitwitness("verify", pieces[0])
    assert human.exit_code == ExitCode.EVIDENCE
    assert "3 file(s)" in human.stdout
    assert "records the acquisition as interrupted" in human.stdout
    assert before == snapshot(sorted(p for p in tmp_path.iterdir() if p.is_file()))


# --- info on an unfinished E01 ---------------------------------------------------------------


def _cut_short(tmp_path: Path, source: Path) -> list[Path]:
    """A finished E01 set (1 MiB segments, stored uncompressed) whose last segment is then cut
    in half, as a copy that ran out of room would leave it."""
    run_acquire(source, tmp_path / "img", OutputFormat.E01, segment_size=1 << 20,
                compression="none")
    segments = sorted(tmp_path.glob("img.E??"))
    last = segments[-1]
    with last.open("r+b") as fh:
        fh.truncate(last.stat().st_size // 2)
    return segments


def _interrupted_e01(tmp_path: Path, source: Path) -> list[Path]:
    result = run_acquire(source, tmp_path / "img", OutputFormat.E01, stop_at=2 << 20)
    assert result.status.value == "interrupted"
    return sorted(tmp_path.glob("img.E??"))


@pytest.mark.parametrize(("make", "holds_some"), [(_interrupted_e01, False), (_cut_short, True)])
def test_info_on_an_unfinished_e01_shows_declared_and_readable_media(
        tmp_path: Path, source: Path, make: Any, holds_some: bool) -> None:
    """``info`` shows the media the volume section declares (what the set was meant to hold), and
    separately what its complete chunk groups hold, which is exactly what a reader gets."""
    require_tool("md5sum", "cat")
    segments = make(tmp_path, source)
    before = snapshot(sorted(p for p in tmp_path.iterdir() if p.is_file()))
    info = run_bitwitness("info", segments[0], "--json")
    assert info.exit_code == ExitCode.EVIDENCE
    doc = info.json()
    assert (doc["media_size"], doc["sectors"], doc["sector_size"]) == (SIZE, SIZE // 512, 512)
    readable = doc["readable_media_size"]
    assert 0 <= readable < SIZE
    assert (readable > 0) is holds_some  # no group closed before the stop / segments kept
    assert readable % (64 * 512) == 0  # whole chunks of complete groups
    assert doc["ewf"]["complete"] is False
    assert doc["ewf"]["chunk_count"] == SIZE // (64 * 512)
    assert doc["ewf"]["incomplete_reason"]
    assert "INCOMPLETE" in info.stderr
    assert len(info.stderr.strip().splitlines()) == 1
    assert "Traceback" not in info.stderr
    # what is readable is what verify reads, and it is the start of the source
    verified = verify_image(segments[0])
    assert verified.verdict is Verdict.INCOMPLETE
    assert verified.bytes_read == readable
    head = tmp_path / "head.bin"
    head.write_bytes(source.read_bytes()[:readable])
    assert verified.computed["md5"] == _md5_of_concatenation([head])
    head.unlink()
    assert any(f"hold {readable} of the {SIZE} media bytes" in p for p in verified.problems)
    human = run_bitwitness("info", segments[0])
    assert human.exit_code == ExitCode.EVIDENCE
    assert f"({SIZE} bytes)" in human.stdout
    assert f"Readable media:         {format_size(readable)} ({readable} bytes)" in human.stdout
    assert "INCOMPLETE" in human.stdout
    assert f"holds {readable} of its {SIZE} media bytes" in human.stderr
    assert before == snapshot(sorted(p for p in tmp_path.iterdir() if p.is_file()))
