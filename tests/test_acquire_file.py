"""Acquiring regular files: raw, split raw and E01, checked with md5sum/sha*sum, ewfverify, ewfinfo
and pyewf; the source's bytes and times stay unchanged; refusals leave nothing behind."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from conftest import make_disk_bytes, pyewf_media, require_tool, run_bitwitness

SIZE = 3 * 1024 * 1024 + 4096


def _tool_hash(tool: str, path: Path) -> str:
    out = subprocess.run([tool, str(path)], capture_output=True, text=True, check=True).stdout
    return out.split()[0]


def _evidence(tmp_path: Path, size: int = SIZE, name: str = "evidence.bin") -> Path:
    src = tmp_path / name
    src.write_bytes(make_disk_bytes(size, seed=size))
    st = src.stat()
    # atime older than mtime: a plain read would update it under relatime, O_NOATIME must not
    os.utime(src, ns=(st.st_mtime_ns - 10**12, st.st_mtime_ns))
    return src


def _times(path: Path) -> tuple[int, int, str]:
    """atime, mtime and content hash, read with O_NOATIME so that looking changes nothing."""
    import hashlib

    st = path.stat()
    fd = os.open(path, os.O_RDONLY | os.O_NOATIME)
    try:
        digest = hashlib.sha256(os.read(fd, st.st_size + 1)).hexdigest()
    finally:
        os.close(fd)
    return st.st_atime_ns, st.st_mtime_ns, digest


def test_raw_single_file_hashes_equal_the_coreutils(tmp_path: Path) -> None:
    require_tool("md5sum", "sha1sum", "sha256sum")
    src = _evidence(tmp_path)
    before = _times(src)
    res = run_bitwitness("acquire", src, "-o", tmp_path / "img", "--format", "raw", "--json",
                         "--verify")
    assert res.exit_code == 0, res.stderr
    assert _times(src) == before  # first: the checks below read the file with plain tools
    doc = res.json()
    assert doc["status"] == "completed"
    assert [v["verdict"] for v in doc["verification"]] == ["VERIFIED"]
    for tool, name in (("md5sum", "md5"), ("sha1sum", "sha1"), ("sha256sum", "sha256")):
        assert doc["hashes"][name] == _tool_hash(tool, src)
    assert (tmp_path / "img.raw").read_bytes() == src.read_bytes()
    for algo in ("md5", "sha1", "sha256"):
        check = subprocess.run([f"{algo}sum", "-c", f"img.{algo}"], cwd=tmp_path,
                               capture_output=True, text=True, check=False)
        assert check.returncode == 0, check.stdout + check.stderr
    log = json.loads((tmp_path / "img.json").read_text())
    assert log["schema"] == "bitwitness.acquisition/1"
    assert log["status"] == "completed"
    assert log["media"]["hashes"]["sha256"] == _tool_hash("sha256sum", src)
    assert log["source"]["size"] == SIZE
    assert {Path(o["path"]).name for o in log["outputs"]} == {
        "img.raw", "img.md5", "img.sha1", "img.sha256"}
    assert "Status: COMPLETED" in (tmp_path / "img.txt").read_text()


def test_split_raw_concatenates_to_the_source_and_its_sidecars_pass(tmp_path: Path) -> None:
    require_tool("md5sum", "sha1sum")
    src = _evidence(tmp_path, SIZE + 100)  # not a whole number of sectors: raw keeps it exact
    res = run_bitwitness("acquire", src, "-o", tmp_path / "img", "--format", "raw",
                         "--split", "1MiB", "--hash", "md5,sha1")
    assert res.exit_code == 0, res.stderr
    pieces = sorted(tmp_path.glob("img.0*"))
    assert [p.name for p in pieces] == ["img.001", "img.002", "img.003", "img.004"]
    assert b"".join(p.read_bytes() for p in pieces) == src.read_bytes()
    assert not list(tmp_path.glob("*.partial"))
    lines = (tmp_path / "img.md5").read_text().splitlines()
    assert len(lines) == 4
    for algo in ("md5", "sha1"):
        check = subprocess.run([f"{algo}sum", "-c", f"img.{algo}"], cwd=tmp_path,
                               capture_output=True, text=True, check=False)
        assert check.returncode == 0, check.stdout + check.stderr
    log = json.loads((tmp_path / "img.json").read_text())
    assert log["media"]["hashes"]["md5"] == _tool_hash("md5sum", src)


def test_e01_passes_ewfverify_and_shows_the_case_fields(tmp_path: Path) -> None:
    require_tool("ewfverify", "ewfinfo")
    src = _evidence(tmp_path)
    before = _times(src)
    res = run_bitwitness("acquire", src, "-o", tmp_path / "img", "--case-number", "CASE-42",
                         "--evidence-number", "EV-7", "--examiner", "Ann Examiner",
                         "--description", "USB stick", "--notes", "seized 2024", "--json",
                         "--verify")
    assert res.exit_code == 0, res.stderr
    assert _times(src) == before
    doc = res.json()
    assert doc["verification"][0]["verdict"] == "VERIFIED"
    assert doc["hashes"]["md5"] == _tool_hash("md5sum", src)
    verify = subprocess.run(["ewfverify", "-q", "-d", "sha1", str(tmp_path / "img.E01")],
                            capture_output=True, text=True, check=False)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert _tool_hash("sha1sum", src) in verify.stdout
    info = subprocess.run(["ewfinfo", str(tmp_path / "img.E01")], capture_output=True, text=True,
                          check=True).stdout
    for value in ("CASE-42", "EV-7", "Ann Examiner", "USB stick", "seized 2024"):
        assert value in info


def test_e01_of_an_odd_sized_file_is_padded_and_both_hashes_logged(tmp_path: Path) -> None:
    pytest.importorskip("pyewf")
    require_tool("md5sum")
    src = _evidence(tmp_path, 1_000_003)
    res = run_bitwitness("acquire", src, "-o", tmp_path / "img", "--hash", "md5", "--json")
    assert res.exit_code == 0, res.stderr
    media = pyewf_media(tmp_path / "img.E01")
    assert media == src.read_bytes() + bytes(512 - 1_000_003 % 512)
    log = json.loads((tmp_path / "img.json").read_text())
    assert log["source_hashes"] == {"size": 1_000_003,
                                    "hashes": {"md5": _tool_hash("md5sum", src),
                                               "sha1": _tool_hash("sha1sum", src)}}
    padded = tmp_path / "padded"
    padded.write_bytes(media)
    assert log["media"]["hashes"]["md5"] == _tool_hash("md5sum", padded)
    assert log["media"]["size"] == len(media)
    assert log["source"]["size"] == 1_000_003
    # the printed report keeps the two apart, so that whoever reads it back (bitwitness verify
    # reads FTK-style "MD5 checksum" lines) compares the image with the media hashes only
    verdict = run_bitwitness("verify", tmp_path / "img.E01")
    assert verdict.exit_code == 0, verdict.stdout + verdict.stderr


def test_second_output_is_an_identical_copy(tmp_path: Path) -> None:
    require_tool("ewfverify")
    src = _evidence(tmp_path, 2 * 1024 * 1024)
    res = run_bitwitness("acquire", src, "-o", tmp_path / "a" / "img", "--second-output",
                         tmp_path / "b" / "img", "--hash", "md5")
    assert res.exit_code == 0, res.stderr
    for side in ("a", "b"):
        check = subprocess.run(["ewfverify", "-q", str(tmp_path / side / "img.E01")],
                               capture_output=True, text=True, check=False)
        assert check.returncode == 0, check.stdout
        assert _tool_hash("md5sum", src) in check.stdout
    assert (tmp_path / "b" / "img.json").is_file()
    # the two copies are the same bytes (one set identifier and acquisition time for both)
    same = subprocess.run(["cmp", str(tmp_path / "a" / "img.E01"), str(tmp_path / "b" / "img.E01")],
                          capture_output=True, text=True, check=False)
    assert same.returncode == 0, same.stdout


def test_existing_output_is_refused_and_left_untouched(tmp_path: Path) -> None:
    src = _evidence(tmp_path, 65536)
    (tmp_path / "img.E01").write_bytes(b"do not touch")
    res = run_bitwitness("acquire", src, "-o", tmp_path / "img")
    assert res.exit_code == 2
    assert "already exists" in res.stderr
    assert "Traceback" not in res.stderr
    assert (tmp_path / "img.E01").read_bytes() == b"do not touch"
    assert not (tmp_path / "img.json").exists()
    res = run_bitwitness("acquire", src, "-o", tmp_path / "img", "--overwrite")
    assert res.exit_code == 0, res.stderr


def test_the_evidence_itself_is_never_an_output(tmp_path: Path) -> None:
    src = _evidence(tmp_path, 65536, name="disk.raw")
    before = _times(src)
    res = run_bitwitness("acquire", src, "-o", tmp_path / "disk", "--format", "raw",
                         "--overwrite")
    assert res.exit_code == 2
    assert "evidence itself" in res.stderr
    assert _times(src) == before
    assert not (tmp_path / "disk.json").exists()


@pytest.mark.parametrize("args", [
    ["--format", "e01", "--split", "1M"],
    ["--retries", "-1"],
    ["--hash", "crc32"],
    ["--chunk-sectors", "3"],
])
def test_bad_options_are_one_line_usage_errors(tmp_path: Path, args: list[str]) -> None:
    src = _evidence(tmp_path, 4096)
    res = run_bitwitness("acquire", src, "-o", tmp_path / "img", *args)
    assert res.exit_code == 2
    assert "Traceback" not in res.stderr
    assert not list(tmp_path.glob("img*"))


def test_missing_source_is_an_input_error(tmp_path: Path) -> None:
    res = run_bitwitness("acquire", tmp_path / "nope", "-o", tmp_path / "img")
    assert res.exit_code == 2
    assert "no such file" in res.stderr


def test_stale_pieces_of_an_older_split_set_count_as_existing_output(tmp_path: Path) -> None:
    src = _evidence(tmp_path, 2 * 1024 * 1024)
    (tmp_path / "img.005").write_bytes(b"left over from a bigger acquisition")
    res = run_bitwitness("acquire", src, "-o", tmp_path / "img", "--format", "raw",
                         "--split", "1MiB")
    assert res.exit_code == 2
    assert "img.005" in res.stderr
    res = run_bitwitness("acquire", src, "-o", tmp_path / "img", "--format", "raw",
                         "--split", "1MiB", "--overwrite")
    assert res.exit_code == 0, res.stderr
    assert sorted(p.name for p in tmp_path.glob("img.0*")) == ["img.001", "img.002"]


def test_every_e01_segment_is_logged_with_its_file_hash(tmp_path: Path) -> None:
    require_tool("sha256sum", "ewfverify")
    src = tmp_path / "random.bin"
    src.write_bytes(os.urandom(3 * 1024 * 1024 + 512))  # incompressible: several segments
    res = run_bitwitness("acquire", src, "-o", tmp_path / "img", "--segment-size", "1MiB",
                         "--hash", "md5")
    assert res.exit_code == 0, res.stderr
    log = json.loads((tmp_path / "img.json").read_text())
    segments = sorted(tmp_path.glob("img.E??"))
    assert len(segments) >= 4
    logged = {Path(o["path"]).name: o for o in log["outputs"]}
    assert set(logged) == {p.name for p in segments}
    for path in segments:
        assert logged[path.name]["size"] == path.stat().st_size
        assert logged[path.name]["hashes"]["sha256"] == _tool_hash("sha256sum", path)
    check = subprocess.run(["ewfverify", "-q", str(segments[0])], capture_output=True, text=True,
                           check=False)
    assert check.returncode == 0, check.stdout


def test_a_former_acquisition_of_another_format_is_no_part_of_the_new_one(tmp_path: Path) -> None:
    """A raw acquisition's BASE.raw and BASE.md5 left where an E01 of another source is then
    written: they were taken for the new image's record (verify: MISMATCH against the stale
    sidecar, while ewfverify said SUCCESS). Without --overwrite the new acquisition refuses,
    naming them; with it they go, a split set whole, and the new image verifies."""
    first, second = tmp_path / "a.bin", tmp_path / "b.bin"
    first.write_bytes(make_disk_bytes(3 << 20, 1))
    second.write_bytes(make_disk_bytes(4 << 20, 2))
    out = tmp_path / "o"
    out.mkdir()
    assert run_bitwitness("acquire", first, "-o", out / "r", "--format", "raw", "--split",
                          "1MiB").exit_code == 0
    (out / "r.json").unlink()
    (out / "r.txt").unlink()
    refused = run_bitwitness("acquire", second, "-o", out / "r")
    assert refused.exit_code == 2
    assert "r.001 already exists" in refused.stderr or "r.md5 already exists" in refused.stderr
    assert not (out / "r.E01").exists()
    replaced = run_bitwitness("acquire", second, "-o", out / "r", "--overwrite")
    assert replaced.exit_code == 0, replaced.stderr
    assert sorted(p.name for p in out.iterdir()) == ["r.E01", "r.json", "r.txt"]
    verified = run_bitwitness("verify", out / "r.E01")
    assert verified.exit_code == 0, verified.stdout
    assert "verdict: VERIFIED" in verified.stdout


def test_the_evidence_named_like_a_former_output_is_never_removed(tmp_path: Path) -> None:
    """An image disk.raw acquired to the base disk (E01): disk.raw is the source, not a former
    raw output, and stays whole, --overwrite or not."""
    source = tmp_path / "disk.raw"
    data = make_disk_bytes(2 << 20, 3)
    source.write_bytes(data)
    for extra in ((), ("--overwrite",)):
        done = run_bitwitness("acquire", source, "-o", tmp_path / "disk", *extra)
        assert done.exit_code == 0, done.stderr
        assert source.read_bytes() == data
