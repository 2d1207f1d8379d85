"""Hash logs from other tools: real dc3dd, md5sum/sha1sum/sha256sum and ewfacquire output, an
FTK Imager report laid out as FTK writes it, and our BASE.json; every expected hash comes from
md5sum/sha1sum/sha256sum, never from BitWitness."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from conftest import make_disk_bytes, require_tool

from bitwitness.errors import InputError
from bitwitness.verify import Match, Verdict, VerifyOptions, verify_image
from bitwitness.verify.logs import parse_log


def tool_hash(tool: str, *paths: Path) -> list[str]:
    """Hashes by the coreutils tool, in argument order."""
    out = subprocess.run([tool, *map(str, paths)], capture_output=True, text=True, check=True)
    return [line.split()[0] for line in out.stdout.splitlines()]


@pytest.fixture
def media(tmp_path: Path) -> Path:
    path = tmp_path / "disk.dd"
    path.write_bytes(make_disk_bytes(3 << 20, seed=11))
    return path


def test_dc3dd_log_with_pieces(tmp_path: Path, media: Path) -> None:
    require_tool("dc3dd")
    subprocess.run(["dc3dd", f"if={media}", f"hofs={tmp_path}/piece.000", "ofsz=1M",
                    "hash=md5", "hash=sha1", f"log={tmp_path}/piece.log"],
                   capture_output=True, check=True)
    log = parse_log(tmp_path / "piece.log")
    assert log.kind == "dc3dd"
    assert log.media_size == media.stat().st_size
    pieces = sorted(tmp_path.glob("piece.0*"))
    md5s = tool_hash("md5sum", *pieces)
    sha1s = tool_hash("sha1sum", *pieces)
    named = {(e.algorithm, Path(e.name).name): e.value for e in log.entries if e.name}
    for piece, md5, sha1 in zip(pieces, md5s, sha1s, strict=True):
        assert named[("md5", piece.name)] == md5
        assert named[("sha1", piece.name)] == sha1
    whole = {(e.algorithm, e.section): e.value for e in log.entries if e.first_sector is None}
    assert whole[("md5", "input")] == tool_hash("md5sum", media)[0]
    assert whole[("sha1", "output")] == tool_hash("sha1sum", media)[0]
    # bound to the split set, every piece and range is checked in the one pass
    result = verify_image(pieces[1], VerifyOptions(logs=(tmp_path / "piece.log",)))
    assert result.verdict is Verdict.VERIFIED, result.problems
    scopes = {c.reference.scope for c in result.comparisons}
    assert {f"file {p.name}" for p in pieces} <= scopes
    assert "sectors 0-2047" in scopes
    assert all(c.match is Match.MATCH for c in result.comparisons)


@pytest.mark.parametrize("tool", ["md5sum", "sha1sum", "sha256sum"])
@pytest.mark.parametrize("tag", [False, True])
def test_hashsum_sidecars(tmp_path: Path, media: Path, tool: str, tag: bool) -> None:
    args = [tool, "--tag", media.name] if tag else [tool, media.name]
    text = subprocess.run(args, cwd=media.parent, capture_output=True, text=True,
                          check=True).stdout
    sidecar = media.with_suffix("." + tool.removesuffix("sum"))
    sidecar.write_text(text)
    log = parse_log(sidecar)
    assert log.kind == "hashsum"
    assert [(e.name, e.value) for e in log.entries] == [(media.name, text.split()[-1]
                                                         if tag else text.split()[0])]
    result = verify_image(media)  # found next to the image by name
    assert result.verdict is Verdict.VERIFIED
    assert [c.reference.algorithm for c in result.comparisons] == [tool.removesuffix("sum")]


def test_ewfacquire_log(tmp_path: Path, media: Path) -> None:
    require_tool("ewfacquire")
    subprocess.run(["ewfacquire", "-u", "-t", str(tmp_path / "acq"), "-d", "sha256",
                    "-l", str(tmp_path / "acq.log"), str(media)], capture_output=True,
                   check=True)
    log = parse_log(tmp_path / "acq.log")
    assert log.kind == "ewf"
    values = {e.algorithm: e.value for e in log.entries}
    assert values["md5"] == tool_hash("md5sum", media)[0]
    assert values["sha256"] == tool_hash("sha256sum", media)[0]
    result = verify_image(media, VerifyOptions(logs=(tmp_path / "acq.log",)))
    assert result.verdict is Verdict.VERIFIED


FTK_REPORT = """Created By AccessData\u00ae FTK\u00ae Imager 4.7.1.2

Case Information:
Acquired using: ADI4.7.1.2
Case Number: 42
Evidence Number: 1
Unique Description: test
Examiner: tester
Notes:

--------------------------------------------------------------

Information for C:\\cases\\disk:

Physical Evidentiary Item (Source) Information:
[Device Info]
 Source Type: Physical
[Drive Geometry]
 Bytes per Sector: 512
 Sector Count: 6144
[Computed Hashes]
 MD5 checksum:    {md5}
 SHA1 checksum:   {sha1}

Image Information:
 Acquisition started:   Mon Jan 06 10:00:00 2025
 Acquisition finished:  Mon Jan 06 10:00:05 2025
 Segment list:
  C:\\cases\\disk.dd

Image Verification Results:
 Verification started:  Mon Jan 06 10:00:06 2025
 Verification finished: Mon Jan 06 10:00:08 2025
 MD5 checksum:    {md5} : verified
 SHA1 checksum:   {sha1} : verified
"""


def test_ftk_report(tmp_path: Path, media: Path) -> None:
    md5, sha1 = tool_hash("md5sum", media)[0], tool_hash("sha1sum", media)[0]
    report = media.parent / "disk.dd.txt"
    report.write_text(FTK_REPORT.format(md5=md5, sha1=sha1).replace("\n", "\r\n"),
                      encoding="utf-8")
    log = parse_log(report)
    assert log.kind == "ftk"
    assert log.label == "FTK Imager report disk.dd.txt"
    assert {(e.algorithm, e.section, e.value) for e in log.entries} == {
        ("md5", "computed", md5), ("sha1", "computed", sha1),
        ("md5", "verification", md5), ("sha1", "verification", sha1)}
    assert verify_image(media).verdict is Verdict.VERIFIED
    # one changed byte in the image: both recorded hash types now mismatch
    data = bytearray(media.read_bytes())
    data[5000] ^= 1
    media.write_bytes(bytes(data))
    result = verify_image(media)
    assert result.verdict is Verdict.MISMATCH
    assert {c.reference.algorithm for c in result.comparisons
            if c.match is Match.MISMATCH} == {"md5", "sha1"}


@pytest.mark.parametrize(("maker", "label"), [
    ("Created By Guymager 0.8.13", "Guymager report disk.dd.txt"),
    ("Created By ", "FTK Imager report disk.dd.txt"),  # no maker after it (fuzz finding)
    ("Created By\t\t", "FTK Imager report disk.dd.txt")])
def test_ftk_layout_names_its_maker(media: Path, maker: str, label: str) -> None:
    md5, sha1 = tool_hash("md5sum", media)[0], tool_hash("sha1sum", media)[0]
    report = media.parent / "disk.dd.txt"
    text = FTK_REPORT.format(md5=md5, sha1=sha1).replace(FTK_REPORT.splitlines()[0], maker)
    report.write_text(text.replace("\n", "\r\n"), encoding="utf-8")
    log = parse_log(report)
    assert log.kind == "ftk"
    assert log.label == label
    assert verify_image(media).verdict is Verdict.VERIFIED


def base_json(media: Path, *, status: str = "completed", size: int | None = None,
              read_errors: list[dict[str, int]] | None = None) -> dict[str, object]:
    """A minimal acquisition log per the schema in docs/DESIGN.md, hashes from coreutils."""
    return {
        "schema": "bitwitness.acquisition/1", "operation": "acquire", "status": status,
        "error": None,
        "media": {"size": size if size is not None else media.stat().st_size,
                  "sector_size": 512, "sectors": media.stat().st_size // 512,
                  "hashes": {"md5": tool_hash("md5sum", media)[0],
                             "sha256": tool_hash("sha256sum", media)[0]}},
        "outputs": [{"path": str(media), "size": media.stat().st_size,
                     "hashes": {"sha1": tool_hash("sha1sum", media)[0]}},
                    {"path": str(media.with_suffix(".md5")), "size": 40, "hashes": {}}],
        "read_errors": read_errors or [],
        "source": {"path": "/dev/sdz", "kind": "device", "size": media.stat().st_size},
        "verification": None,
    }


def test_base_json(tmp_path: Path, media: Path) -> None:
    (media.parent / "disk.json").write_text(json.dumps(base_json(
        media, read_errors=[{"first_sector": 100, "sector_count": 8}])))
    result = verify_image(media)
    assert result.verdict is Verdict.VERIFIED, result.problems
    assert {c.reference.algorithm for c in result.comparisons} == {"md5", "sha1", "sha256"}
    assert [(r.first_sector, r.last_sector) for r in result.acquisition_errors] == [(100, 107)]
    assert all(s.ok for s in result.size_checks)


def test_base_json_interrupted_and_short(tmp_path: Path, media: Path) -> None:
    doc = base_json(media, status="interrupted", size=media.stat().st_size + 512)
    (media.parent / "disk.json").write_text(json.dumps(doc))
    result = verify_image(media)
    assert result.verdict is Verdict.INCOMPLETE
    assert any("interrupted" in p for p in result.problems)
    assert any("records" in p and "bytes" in p for p in result.problems)


def test_unrecognised_log_is_usage_error(tmp_path: Path, media: Path) -> None:
    junk = tmp_path / "notes.txt"
    junk.write_text("nothing to see here\n")
    with pytest.raises(InputError, match="not a hash log"):
        parse_log(junk)
    # found next to the image by name, it is skipped with a note instead
    (media.parent / "disk.txt").write_text("examiner's notes, not hashes\n")
    result = verify_image(media)
    assert result.verdict is Verdict.UNVERIFIED
    assert any("not a hash log" in n for n in result.notes)
