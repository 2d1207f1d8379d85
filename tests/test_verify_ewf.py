"""Verifying E01 sets written by ewfacquire (formats, chunk sizes, sector sizes, segment sizes,
compression levels), bad chunks located like ewfverify locates them, missing and unfinished
segments, the libewf second pass, and ``info`` against ``ewfinfo``. The media hashes are from
md5sum/sha1sum; what ewfverify and ewfinfo print is the independent account."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import make_disk_bytes, require_tool, run_bitwitness, snapshot
from test_verify_logs import tool_hash

from bitwitness.verify import Verdict, VerifyOptions, verify_image

MIB = 1 << 20


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ewfsrc") / "media.raw"
    path.write_bytes(make_disk_bytes(3 * MIB, seed=31))
    return path


def ewfacquire(source: Path, target: Path, *options: str) -> list[Path]:
    """Run ewfacquire unattended; returns the segment files it wrote, in order."""
    require_tool("ewfacquire")
    target.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["ewfacquire", "-u", "-q", "-t", str(target), "-C", "case 7",
                    "-E", "item 3", "-e", "examiner", "-D", "a disk", "-N", "notes",
                    *options, str(source)], capture_output=True, check=True)
    return sorted(target.parent.glob(target.name + ".[EeLs]*"))


MATRIX = [
    ("-f", "encase6"), ("-f", "encase5"), ("-f", "encase4"), ("-f", "ftk"),
    ("-f", "linen6"), ("-f", "linen5"), ("-f", "ewfx"), ("-f", "encase7"), ("-f", "smart"),
    ("-b", "16", "-c", "best"), ("-b", "256", "-c", "empty-block"),
    ("-b", "1024", "-c", "fast", "-d", "sha1"), ("-P", "4096", "-c", "fast"),
    ("-c", "none", "-S", "1MiB", "-d", "sha1"),
]


@pytest.mark.parametrize("options", MATRIX, ids=[" ".join(o) for o in MATRIX])
def test_ewfacquire_images_verify(tmp_path: Path, source: Path, options: tuple[str, ...]) -> None:
    segments = ewfacquire(source, tmp_path / "img", *options)
    before = snapshot(segments)
    result = verify_image(segments[-1])  # any segment names the set
    assert result.verdict is Verdict.VERIFIED, result.problems
    # every one (SMART .s01 too) by our reader with every chunk checked
    assert result.format == "ewf"
    assert [f.name for f in result.files] == [s.name for s in segments]
    assert result.media_size == source.stat().st_size
    assert result.computed["md5"] == tool_hash("md5sum", source)[0]
    if "sha1" in options:
        assert result.computed["sha1"] == tool_hash("sha1sum", source)[0]
        assert {c.reference.algorithm for c in result.comparisons} == {"md5", "sha1"}
    if "-P" in options:
        assert result.sector_size == 4096
    assert snapshot(segments) == before


def flip_byte_in_chunk(segment: Path, offset: int) -> None:
    data = bytearray(segment.read_bytes())
    data[offset] ^= 0xFF
    segment.write_bytes(bytes(data))


def ewfverify_bad_sectors(segment: Path) -> list[tuple[int, int]]:
    out = subprocess.run(["ewfverify", "-q", str(segment)], capture_output=True, text=True,
                         check=False).stdout
    return [(int(a), int(b)) for a, b in re.findall(r"at sector\(s\): (\d+) - (\d+)", out)]


@pytest.mark.parametrize("options", [("-c", "fast"), ("-c", "none", "-b", "128")])
def test_flipped_byte_is_corrupt_at_the_sectors_ewfverify_names(
        tmp_path: Path, source: Path, options: tuple[str, ...]) -> None:
    require_tool("ewfverify")
    (segment,) = ewfacquire(source, tmp_path / "img", *options)
    flip_byte_in_chunk(segment, segment.stat().st_size // 3)
    expected = ewfverify_bad_sectors(segment)
    assert expected, "ewfverify found no bad chunk: the flip missed the chunk data"
    before = snapshot([segment])
    result = verify_image(segment)
    assert result.verdict is Verdict.CORRUPT
    assert [(r.first_sector, r.last_sector) for r in result.corrupt_ranges] == expected
    first = result.bad_chunks[0]
    assert first.media_offset == expected[0][0] * 512
    assert first.segment == segment
    r = run_bitwitness("verify", segment, "--json")
    assert r.exit_code == 1
    doc = r.json()["images"][0]
    assert doc["verdict"] == "CORRUPT"
    assert doc["corrupt_ranges"][0]["first_sector"] == expected[0][0]
    human = run_bitwitness("verify", segment)
    assert f"sectors {expected[0][0]}-{expected[0][1]}" in human.stdout
    # the hashes are over the bad chunks read as zeros, as ewfverify -w computes them, and
    # the output says so
    wiped = subprocess.run(["ewfverify", "-q", "-w", str(segment)], capture_output=True,
                           text=True, check=False).stdout
    found = re.search(r"MD5 hash calculated over data:\s+([0-9a-f]{32})", wiped)
    assert found is not None, wiped
    assert doc["computed"]["md5"] == found.group(1)
    assert "bad chunk(s) below read as zeros" in human.stdout
    assert snapshot([segment]) == before


def test_missing_middle_segment_is_a_clear_error(tmp_path: Path, source: Path) -> None:
    segments = ewfacquire(source, tmp_path / "img", "-c", "none", "-S", "1MiB")
    assert len(segments) >= 3
    segments[1].unlink()
    for given in (segments[0], segments[2]):
        r = run_bitwitness("verify", given)
        assert r.exit_code == 1
        assert f"{segments[1].name}" in r.stdout
        assert "missing" in r.stdout
        assert "INCOMPLETE" in r.stdout
        assert "Traceback" not in r.stdout + r.stderr


def test_missing_last_segment_is_incomplete(tmp_path: Path, source: Path) -> None:
    segments = ewfacquire(source, tmp_path / "img", "-c", "none", "-S", "1MiB")
    segments[-1].unlink()
    result = verify_image(segments[0])
    assert result.verdict is Verdict.INCOMPLETE
    assert any("never finished" in p for p in result.problems)


@pytest.mark.parametrize("options", [("-c", "fast", "-d", "sha1"), ("-c", "none", "-S", "1MiB")])
def test_libewf_second_pass_agrees(tmp_path: Path, source: Path, options: tuple[str, ...]) -> None:
    segments = ewfacquire(source, tmp_path / "img", *options)
    result = verify_image(segments[0], VerifyOptions(libewf=True))
    assert result.verdict is Verdict.VERIFIED
    assert result.libewf is not None
    assert result.libewf.agree, result.libewf.differences
    assert result.libewf.hashes["md5"] == tool_hash("md5sum", source)[0]
    r = run_bitwitness("verify", "--libewf", segments[0], "--json")
    assert r.exit_code == 0
    assert r.json()["images"][0]["libewf"]["agree"] is True


def test_libewf_disagreement_is_an_error(tmp_path: Path, source: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A reader that returns different bytes (one byte of chunk 1 changed, simulated in what
    libewf returns) must turn VERIFIED into an error that says where, and the record holds
    libewf's own digest of what it read (not ours)."""
    import bitwitness.verify.libewf as libewf_mod

    (segment,) = ewfacquire(source, tmp_path / "img", "-c", "fast")
    real = libewf_mod._read_range
    changed = 40_000  # inside chunk 1 (32 KiB chunks): media bytes 32768..65535

    def lying(handle: object, offset: int, length: int) -> bytes:
        data = real(handle, offset, length)
        if offset <= changed < offset + len(data):
            at = changed - offset
            data = data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1:]
        return data

    monkeypatch.setattr(libewf_mod, "_read_range", lying)
    result = verify_image(segment, VerifyOptions(libewf=True))
    assert result.libewf is not None
    assert not result.libewf.agree
    assert result.verdict is Verdict.MISMATCH
    assert not result.ok
    text = " ".join(result.libewf.differences)
    assert "differ from ours in 1 chunk(s) (32768 bytes of media), at media offset 32768 " \
        "(sectors 64-127)" in text
    assert result.computed["md5"] == tool_hash("md5sum", source)[0]
    assert result.libewf.hashes["md5"] != result.computed["md5"]
    assert f"computed md5: ours {result.computed['md5']}, libewf " in text


def test_against_source_for_e01(tmp_path: Path, source: Path) -> None:
    (segment,) = ewfacquire(source, tmp_path / "img", "-c", "fast")
    other = tmp_path / "other.raw"
    data = bytearray(source.read_bytes())
    data[2 * MIB + 700] ^= 1
    other.write_bytes(bytes(data))
    assert verify_image(segment, VerifyOptions(against=source)).verdict is Verdict.VERIFIED
    result = verify_image(segment, VerifyOptions(against=other))
    assert result.verdict is Verdict.MISMATCH
    assert result.against is not None
    assert result.against.first_difference is not None
    sector = (2 * MIB + 700) // 512
    assert (result.against.first_difference.first_sector,
            result.against.first_difference.last_sector) == (sector, sector)


def ewfinfo_fields(segment: Path) -> dict[str, str]:
    out = subprocess.run(["ewfinfo", str(segment)], capture_output=True, text=True,
                         check=True).stdout
    fields = {}
    for line in out.splitlines():
        if ":" in line and line.startswith("\t"):
            key, _, value = line.strip().partition(":")
            fields[key] = value.strip()
    return fields


def test_info_matches_ewfinfo(tmp_path: Path, source: Path) -> None:
    require_tool("ewfinfo")
    segments = ewfacquire(source, tmp_path / "img", "-c", "none", "-S", "1MiB", "-d", "sha1")
    theirs = ewfinfo_fields(segments[0])
    r = run_bitwitness("info", segments[1], "--json")
    assert r.exit_code == 0, r.stderr
    ours = r.json()
    assert ours["header_values"]["case_number"] == theirs["Case number"]
    assert ours["header_values"]["evidence_number"] == theirs["Evidence number"]
    assert ours["header_values"]["examiner_name"] == theirs["Examiner name"]
    assert ours["header_values"]["description"] == theirs["Description"]
    assert ours["header_values"]["notes"] == theirs["Notes"]
    assert ours["stored_hashes"]["md5"] == theirs["MD5"]
    assert ours["stored_hashes"]["sha1"] == theirs["SHA1"]
    assert ours["sector_size"] == int(theirs["Bytes per sector"])
    assert ours["sectors"] == int(theirs["Number of sectors"])
    assert f"({ours['media_size']} bytes)" in theirs["Media size"]
    assert ours["ewf"]["sectors_per_chunk"] == int(theirs["Sectors per chunk"])
    assert [Path(f["path"]).name for f in ours["files"]] == [s.name for s in segments]
    human = run_bitwitness("info", segments[0])
    assert human.exit_code == 0
    assert "Case number:" in human.stdout
    assert theirs["MD5"] in human.stdout


def test_info_raw_shows_size_and_logs(tmp_path: Path, source: Path) -> None:
    image = tmp_path / "copy.dd"
    shutil.copyfile(source, image)
    (tmp_path / "copy.md5").write_text(f"{tool_hash('md5sum', image)[0]}  copy.dd\n")
    r = run_bitwitness("info", image, "--json")
    assert r.exit_code == 0
    doc = r.json()
    assert doc["media_size"] == source.stat().st_size
    assert doc["recorded_hashes"][0]["value"] == tool_hash("md5sum", image)[0]
    assert doc["header_values"] == {}


def test_info_unfinished_e01_of_unknown_size(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A set begun without knowing the media size declares none until it is closed; unfinished,
    info can only show what its complete groups hold, and says so."""
    from bitwitness.ewf import EwfMetadata, EwfWriter

    require_tool("md5sum")
    monkeypatch.setattr("bitwitness.ewf.writer.GROUP_CHUNKS", 1024)
    monkeypatch.setattr("bitwitness.ewf.writer.GROUP_MAX_CHUNKS", 1024)  # compressed chunks too
    data = make_disk_bytes(12 * MIB, seed=32)
    writer = EwfWriter(tmp_path / "stream", media_size=None, metadata=EwfMetadata(),
                       sectors_per_chunk=16)  # 8 KiB chunks: a group closes every 8 MiB
    writer.write(data)
    writer.abort()
    r = run_bitwitness("info", tmp_path / "stream.E01", "--json")
    assert r.exit_code == 1
    doc = r.json()
    assert doc["media_size"] == doc["readable_media_size"] == 8 * MIB
    assert doc["ewf"]["complete"] is False
    assert any("declares no media size" in n for n in doc["notes"])
    verified = verify_image(tmp_path / "stream.E01")
    assert verified.verdict is Verdict.INCOMPLETE
    held = tmp_path / "held.raw"
    held.write_bytes(data[:8 * MIB])
    assert verified.computed["md5"] == tool_hash("md5sum", held)[0]


def test_error_ranges_recorded_at_acquisition(tmp_path: Path, source: Path) -> None:
    """An E01 whose error2 section records unreadable sectors (written by our EwfWriter, read
    back by ewfinfo): verify and info show the same ranges ewfinfo shows."""
    require_tool("ewfinfo")
    from bitwitness.ewf import EwfMetadata, EwfWriter

    data = source.read_bytes()
    writer = EwfWriter(tmp_path / "errs", media_size=len(data), metadata=EwfMetadata())
    writer.write(data)
    result = writer.close(md5=tool_hash("md5sum", source)[0],
                          sha1=tool_hash("sha1sum", source)[0], errors=[(128, 8), (4000, 64)])
    segment = result.segments[0]
    out = subprocess.run(["ewfinfo", str(segment)], capture_output=True, text=True,
                         check=True).stdout
    theirs = [(int(a), int(b)) for a, b in re.findall(r"at sector\(s\): (\d+) - (\d+)", out)]
    assert theirs == [(128, 135), (4000, 4063)]
    verified = verify_image(segment)
    assert verified.verdict is Verdict.VERIFIED  # recorded errors are shown, not a failure
    assert [(r.first_sector, r.last_sector) for r in verified.acquisition_errors] == theirs
    r = run_bitwitness("info", segment, "--json")
    assert [(e["first_sector"], e["last_sector"]) for e in r.json()["error_ranges"]] == theirs
    human = run_bitwitness("verify", segment)
    assert "unreadable at acquisition: sectors 128-135" in human.stdout


def test_sets_our_reader_passes_on_are_read_by_libewf(
        tmp_path: Path, source: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ex01/L01 (which this ewfacquire cannot write) take the libewf path; simulated here by an
    E01 our reader declines."""
    import bitwitness.ewf
    from bitwitness.errors import UnsupportedFormatError

    segments = ewfacquire(source, tmp_path / "img", "-c", "fast", "-d", "sha1")

    def decline(path: Path, **kwargs: object) -> None:
        raise UnsupportedFormatError(f"{path}: EWF2 is not read by our reader")

    monkeypatch.setattr(bitwitness.ewf, "open_ewf", decline)
    result = verify_image(segments[0])
    assert result.format == "ewf (read by libewf)"
    assert result.verdict is Verdict.VERIFIED
    assert result.stored == {"md5": tool_hash("md5sum", source)[0],
                             "sha1": tool_hash("sha1sum", source)[0]}


def test_libewf_reads_in_the_same_pass(tmp_path: Path, source: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """libewf starts reading before our reader's pass has ended (one pass, not two in a row),
    and its result still agrees with ewfverify's hash."""
    import threading

    import bitwitness.verify.libewf as libewf_mod
    import bitwitness.verify.verifier as verifier_mod

    (segment,) = ewfacquire(source, tmp_path / "img", "-c", "fast")
    our_pass_done = threading.Event()
    started_after_our_pass: list[bool] = []
    real_pass, real_open = verifier_mod.run_pass, libewf_mod._open_libewf

    def our_pass(*args: object, **kwargs: object) -> object:
        result = real_pass(*args, **kwargs)  # type: ignore[arg-type]
        our_pass_done.set()
        return result

    def libewf_open(*args: object, **kwargs: object) -> object:
        started_after_our_pass.append(our_pass_done.is_set())
        return real_open(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(verifier_mod, "run_pass", our_pass)
    monkeypatch.setattr(libewf_mod, "_open_libewf", libewf_open)
    result = verify_image(segment, VerifyOptions(second_reader=True))
    assert started_after_our_pass
    assert not any(started_after_our_pass)
    assert result.verdict is Verdict.VERIFIED
    assert result.libewf is not None
    assert result.libewf.agree
    ewfverify = subprocess.run(["ewfverify", "-d", "sha1", str(segment)], capture_output=True,
                               text=True, check=True).stdout
    assert f"MD5 hash calculated over data:\t\t{result.libewf.hashes['md5']}" in ewfverify


def test_libewf_stops_when_our_pass_is_interrupted(tmp_path: Path, source: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """An interrupted pass stops the libewf reader too: Interrupted, no result, no thread left."""
    import threading

    import bitwitness.verify.verifier as verifier_mod
    from bitwitness.errors import Interrupted

    (segment,) = ewfacquire(source, tmp_path / "img", "-c", "fast")

    def interrupted(*args: object, **kwargs: object) -> object:
        raise Interrupted("verification interrupted")

    monkeypatch.setattr(verifier_mod, "run_pass", interrupted)
    with pytest.raises(Interrupted):
        verify_image(segment, VerifyOptions(second_reader=True))
    assert not any(t.name == "libewf-pass" and t.is_alive() for t in threading.enumerate())


def test_smart_s01_ours_first_libewf_second(tmp_path: Path, source: Path) -> None:
    """SMART (.s01, ``ewfacquire -f smart``) is read by our own reader (docs/EWF.md §12), so
    libewf (pyewf) is the independent second reader ``--second-reader`` runs, and it agrees.
    One byte of a chunk changed: our reader names the chunk (CORRUPT, exit 1), libewf's pass
    no longer agrees, and ewfverify fails the set too. tests/test_ewf_smart.py has the matrix."""
    require_tool("ewfverify")
    (segment,) = ewfacquire(source, tmp_path / "img", "-f", "smart", "-c", "fast")
    assert segment.suffix == ".s01"
    r = run_bitwitness("verify", "--second-reader", segment, "--json")
    assert r.exit_code == 0, r.stdout
    doc = r.json()["images"][0]
    assert doc["verdict"] == "VERIFIED"
    assert doc["format"] == "ewf"
    assert doc["stored"] == {"md5": tool_hash("md5sum", source)[0]}
    assert doc["computed"]["md5"] == tool_hash("md5sum", source)[0]
    assert doc["libewf"]["agree"] is True
    assert not any("no independent second reader" in n for n in doc["notes"]), doc["notes"]

    flip_byte_in_chunk(segment, segment.stat().st_size // 2)
    assert subprocess.run(["ewfverify", "-q", str(segment)], capture_output=True,
                          check=False).returncode != 0
    r = run_bitwitness("verify", "--second-reader", segment, "--json")
    assert r.exit_code == 1
    doc = r.json()["images"][0]
    assert doc["verdict"] == "CORRUPT"
    assert len(doc["bad_chunks"]) == 1
    assert doc["libewf"]["agree"] is False
    assert doc["libewf"]["hashes"]["md5"] != tool_hash("md5sum", source)[0]


def test_hash_and_digest_sections_disagreeing_name_both(tmp_path: Path, source: Path) -> None:
    """ewfacquire -d sha1 stores the MD5 twice (digest and hash sections); one changed (its
    own checksum made right) is damage, said naming both sections, since the set cannot tell
    which was changed. ewfverify, reading the hash section only, still succeeds."""
    import struct
    import zlib

    require_tool("ewfverify")
    (segment,) = ewfacquire(source, tmp_path / "img", "-c", "none", "-d", "sha1")
    data = bytearray(segment.read_bytes())
    at = data.find(b"digest" + bytes(10))
    assert at > 0
    body = at + 76
    data[body] ^= 0xFF  # the first byte of the digest section's MD5
    struct.pack_into("<I", data, body + 76, zlib.adler32(bytes(data[body:body + 76])))
    segment.chmod(0o644)
    segment.write_bytes(bytes(data))
    assert "SUCCESS" in subprocess.run(["ewfverify", "-q", str(segment)], capture_output=True,
                                       text=True, check=False).stdout
    human = run_bitwitness("verify", segment)
    assert human.exit_code == 1
    assert "verdict: CORRUPT" in human.stdout
    assert "stored in the digest section" in human.stdout
    assert "which one the set cannot tell" in human.stdout


@pytest.mark.parametrize("name", ["evidence.raw", "disk.img", "evidence.E05"])
def test_a_lone_first_segment_under_another_name_is_read_by_its_header(
        tmp_path: Path, source: Path, name: str) -> None:
    """An E01 renamed ``evidence.raw`` or ``disk.img`` (one file, its header saying segment 1)
    was CORRUPT: "the name says segment 8910" (a three-letter extension read as a segment
    number past .E99). Alone, its header decides: VERIFIED as md5sum hashes the media; one that
    continues into a second segment is INCOMPLETE, not CORRUPT."""
    [segment] = ewfacquire(source, tmp_path / "img", "-c", "fast")
    renamed = tmp_path / "alone" / name
    renamed.parent.mkdir()
    shutil.copy(segment, renamed)
    result = verify_image(renamed)
    assert result.verdict is Verdict.VERIFIED, result.problems
    assert result.computed["md5"] == tool_hash("md5sum", source)[0]
    first, *_ = ewfacquire(source, tmp_path / "multi", "-c", "none", "-S", "1MiB")
    cut = tmp_path / "cut" / name
    cut.parent.mkdir()
    shutil.copy(first, cut)
    partial = verify_image(cut)
    assert partial.verdict is Verdict.INCOMPLETE, partial.problems
