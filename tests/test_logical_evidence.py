"""EWF logical evidence files (L01, Lx01): ``info``, ``verify`` and browsing their files.

The sets are written by tests/builders/logical.py (no tool here writes either format; that
libewf reads them as the builder meant is tests/test_logical_builder.py). What BitWitness shows
is checked against independent readers: pyewf (libewf 2026) for both formats, and for L01 also
libewf-tools 20140813 (``ewfinfo``, ``ewfverify``, ``ewfexport -f files``), and against the
builder's own source files and ``md5sum``.
"""

from __future__ import annotations

import hashlib
import json
import re
import struct
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from builders.logical import Built, Item, build_l01, build_lx01
from conftest import require_tool, run_bitwitness
from test_logical_builder import pyewf_tree, sample_items

from bitwitness.errors import ExitCode

BUILDS: dict[str, Callable[..., Built]] = {
    "l01": lambda p, items, **kw: build_l01(p / "files.L01", items, **kw),
    "l01-encase7": lambda p, items, **kw: build_l01(p / "files.L01", items, encase7=True, **kw),
    "lx01": lambda p, items, **kw: build_lx01(p / "files.Lx01", items, **kw),
}
KINDS = sorted(BUILDS)


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def _built(tmp_path: Path, kind: str, items: list[Item] | None = None, **kw: Any) -> Built:
    return BUILDS[kind](tmp_path, items if items is not None else sample_items(), **kw)


@pytest.mark.parametrize("kind", KINDS)
def test_info_names_the_container_and_counts_its_files(tmp_path: Path, kind: str) -> None:
    items = sample_items()
    built = _built(tmp_path, kind, items)
    tree = pyewf_tree(built.path)
    whole = tree.pop("")
    result = run_bitwitness("info", "--json", built.path)
    assert result.exit_code == 0, result.stderr
    doc = result.json()
    container = "Lx01" if kind == "lx01" else "L01"
    assert doc["format"] == f"{container} logical evidence file (read by libewf)"
    details = doc["details"]
    files = [p for p, e in tree.items() if not e["children"] and e["md5"] is not None]
    assert details["files_held"] == len(files) == sum(i.data is not None for i in items)
    assert details["folders_held"] == len(tree) - len(files)
    assert details["file_data_bytes"] == sum(tree[p]["size"] for p in files)
    assert doc["media_size"] == whole["media"] == len(built.media)
    assert doc["stored_hashes"] == {"md5": whole["hashes"]["MD5"],
                                    "sha1": whole["hashes"]["SHA1"]}
    text = run_bitwitness("info", built.path).stdout
    assert f"Files held:             {len(files)}" in text


@pytest.mark.parametrize("encase7", [False, True])
def test_info_agrees_with_ewfinfo(tmp_path: Path, encase7: bool) -> None:
    require_tool("ewfinfo")
    built = build_l01(tmp_path / "files.L01", sample_items(), encase7=encase7)
    theirs = subprocess.run(["ewfinfo", str(built.path)], capture_output=True, text=True,
                            check=True).stdout
    ours = run_bitwitness("info", "--json", built.path).json()
    assert f"({ours['media_size']} bytes)" in theirs
    assert f"MD5:\t\t\t{ours['stored_hashes']['md5']}" in theirs
    assert f"SHA1:\t\t\t{ours['stored_hashes']['sha1']}" in theirs
    listed = [line for line in theirs.split("Single files\n", 1)[1].splitlines() if line.strip()]
    assert len(listed) == ours["details"]["files_held"] + ours["details"]["folders_held"]


@pytest.mark.parametrize("kind", KINDS)
def test_verify_hashes_the_media_libewf_reads(tmp_path: Path, kind: str) -> None:
    built = _built(tmp_path, kind)
    result = run_bitwitness("verify", "--json", built.path)
    assert result.exit_code == 0, result.stdout + result.stderr
    image = result.json()["images"][0]
    assert image["verdict"] == "VERIFIED"
    assert image["computed"]["md5"] == _md5(built.media)
    assert image["stored"]["md5"] == _md5(built.media)
    assert image["computed"]["sha1"] == hashlib.sha1(built.media,
                                                     usedforsecurity=False).hexdigest()


def test_verify_agrees_with_ewfverify(tmp_path: Path) -> None:
    require_tool("ewfverify")
    built = build_l01(tmp_path / "files.L01", sample_items())
    theirs = subprocess.run(["ewfverify", "-q", str(built.path)], capture_output=True,
                            text=True, check=False)
    assert theirs.returncode == 0, theirs.stdout
    ours = run_bitwitness("verify", "--json", built.path).json()["images"][0]
    calculated = next(line.split()[-1] for line in theirs.stdout.splitlines()
                      if line.startswith("MD5 hash calculated over data:"))
    assert calculated == ours["computed"]["md5"] == _md5(built.media)


@pytest.mark.parametrize("kind", KINDS)
def test_verify_finds_a_stored_media_hash_that_does_not_match(tmp_path: Path, kind: str) -> None:
    built = _built(tmp_path, kind, stored_md5="00112233445566778899aabbccddeeff")
    result = run_bitwitness("verify", built.path)
    assert result.exit_code == ExitCode.EVIDENCE
    assert "MISMATCH" in result.stdout


@pytest.mark.parametrize("kind", KINDS)
def test_ls_lists_what_pyewf_lists(tmp_path: Path, kind: str) -> None:
    built = _built(tmp_path, kind)
    tree = pyewf_tree(built.path)
    tree.pop("")
    result = run_bitwitness("ls", "-r", "--json", built.path)
    assert result.exit_code == 0, result.stderr
    doc = result.json()
    assert doc["filesystem"] == ("lx01" if kind == "lx01" else "l01")
    entries = doc["entries"]
    assert [e["path"] for e in entries] == ["/" + p for p in tree]  # libewf's order
    for number, e in enumerate(entries, start=2):  # depth first, the root being 1
        seen = tree[e["path"][1:]]
        assert e["inode"] == str(number)
        assert e["size"] == seen["size"]
        assert e["kind"] == ("directory" if seen["md5"] is None else "file")
        born, accessed, modified, changed = (t.isoformat() + "+00:00" for t in seen["times"])
        assert (e["born"], e["accessed"], e["modified"], e["changed"]) == (
            born, accessed, modified, changed)


def test_ls_agrees_with_ewfinfos_listing(tmp_path: Path) -> None:
    require_tool("ewfinfo")
    built = build_l01(tmp_path / "files.L01", sample_items())
    theirs = subprocess.run(["ewfinfo", str(built.path)], capture_output=True, text=True,
                            check=True).stdout.split("Single files\n", 1)[1]
    listed = [(len(line) - len(line.lstrip(" ")) - 1, line.strip())
              for line in (raw[1:] for raw in theirs.splitlines() if raw.strip())]
    ours = run_bitwitness("ls", "-r", "--json", built.path).json()["entries"]
    assert [(e["path"].count("/") - 1, e["name"]) for e in ours] == listed


@pytest.mark.parametrize("kind", KINDS)
def test_cat_and_stat(tmp_path: Path, kind: str) -> None:
    items = sample_items()
    built = _built(tmp_path, kind, items)
    unicode_file = next(i for i in items if "naïve" in str(i.path))
    result = run_bitwitness("cat", built.path, f"/{unicode_file.path}")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.encode() == unicode_file.data
    by_inode = run_bitwitness("cat", built.path, "--inode", "4")  # /Evidence/docs/readme.txt
    assert by_inode.stdout.encode() == b"hello world\n"
    empty_dir = run_bitwitness("stat", built.path, "/Evidence/emptydir")
    assert "type:            directory" in empty_dir.stdout
    assert "shown as a folder" in empty_dir.stdout  # pyewf does not say folder or empty file
    assert run_bitwitness("cat", built.path, "/Evidence/nothing").exit_code == ExitCode.USAGE
    offset = run_bitwitness("ls", "--offset", "63", built.path)
    assert offset.exit_code == ExitCode.USAGE
    assert "holds files, not a disk" in offset.stderr


def _exported(target: Path) -> dict[str, bytes]:
    return {str(p.relative_to(target)): p.read_bytes() for p in sorted(target.rglob("*"))
            if p.is_file() and p.name not in ("manifest.json", "manifest.csv")}


@pytest.mark.parametrize("kind", KINDS)
def test_export_gives_the_source_files_and_pyewfs_bytes(tmp_path: Path, kind: str) -> None:
    items = sample_items()
    built = _built(tmp_path, kind, items)
    tree = pyewf_tree(built.path)
    out = tmp_path / "out"
    result = run_bitwitness("export", built.path, "/", "--to", out)
    assert result.exit_code == 0, result.stderr
    files = {str(i.path): i.data for i in items if i.data is not None}
    assert _exported(out) == files
    assert {p: tree[p]["data"] for p in files} == files  # pyewf reads the same bytes
    for item in items:
        if item.data is None:
            assert (out / str(item.path)).is_dir()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["complete"] is True
    assert manifest["filesystem"] == ("lx01" if kind == "lx01" else "l01")
    for row in manifest["files"]:
        source = row["source"][1:]
        assert row["md5"] == tree[source]["md5"] == _md5(files[source])
        assert row["size"] == len(files[source])
        assert (out / row["target"]).stat().st_mtime == next(
            i.modified for i in items if str(i.path) == source)


def test_export_agrees_with_ewfexport(tmp_path: Path) -> None:
    require_tool("ewfexport")
    built = build_l01(tmp_path / "files.L01", sample_items())
    theirs = tmp_path / "theirs"
    subprocess.run(["ewfexport", "-q", "-u", "-f", "files", "-t", str(theirs), str(built.path)],
                   capture_output=True, check=True, cwd=tmp_path)
    ours = tmp_path / "ours"
    assert run_bitwitness("export", built.path, "/", "--to", ours).exit_code == 0
    assert _exported(ours) == _exported(theirs)
    md5sum = subprocess.run(["md5sum", "Evidence/big.bin"], capture_output=True, text=True,
                            check=True, cwd=theirs).stdout.split()[0]
    rows = json.loads((ours / "manifest.json").read_text())["files"]
    assert next(r["md5"] for r in rows if r["target"] == "Evidence/big.bin") == md5sum


@pytest.mark.parametrize("kind", KINDS)
def test_export_flags_a_file_whose_bytes_are_not_what_the_evidence_records(
        tmp_path: Path, kind: str) -> None:
    items = [Item("case", None), Item("case/ok.txt", b"fine"),
             Item("case/bad.txt", b"changed", recorded_md5=_md5(b"original"))]
    built = _built(tmp_path, kind, items)
    out = tmp_path / "out"
    result = run_bitwitness("export", built.path, "/", "--to", out)
    assert result.exit_code == ExitCode.EVIDENCE
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["complete"] is False
    assert [f["source"] for f in manifest["failed"]] == ["/case/bad.txt"]
    reason = manifest["failed"][0]["reason"]
    assert _md5(b"changed") in reason
    assert _md5(b"original") in reason
    assert (out / "case" / "bad.txt").read_bytes() == b"changed"  # written, and flagged


@pytest.mark.parametrize("kind", ["l01", "lx01"])
def test_hostile_names_stay_inside_the_export_folder(tmp_path: Path, kind: str) -> None:
    items = [Item(("..",), None), Item(("..", "escape.txt"), b"out?"), Item(("a/b",), b"slash"),
             Item(("CON",), b"con"), Item(("\x1b[31mred",), b"esc"), Item((".",), b"dot")]
    built = _built(tmp_path, kind, items)
    names = sorted(p.split("/")[-1] if "/" not in p else p for p in pyewf_tree(built.path)
                   if p)
    assert "a/b" in names  # libewf keeps the name as stored, "/" included
    out = tmp_path / "box" / "out"
    result = run_bitwitness("export", built.path, "/", "--to", out)
    assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "box").iterdir()) == ["out"]
    assert _exported(out) == {"%2E%2E/escape.txt": b"out?", "a%2Fb": b"slash", "%43ON": b"con",
                              "%1B[31mred": b"esc", "%2E": b"dot"}
    listing = run_bitwitness("ls", "-r", built.path).stdout
    assert "\x1b" not in listing  # a terminal escape in a name is never printed as such
    # every spelling an export or listing prints names the file back
    assert run_bitwitness("cat", built.path, "/a%2Fb").stdout == "slash"
    assert run_bitwitness("cat", built.path, "/%2E%2E/escape.txt").stdout == "out?"
    assert run_bitwitness("cat", built.path, "/../escape.txt").exit_code == ExitCode.USAGE


def test_a_tree_beyond_the_bounds_is_refused_in_one_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The bounds (MAX_DEPTH 256: libewf itself opens no deeper tree; MAX_ENTRIES) are checked
    on a small tree with the bounds lowered, so the test does not take minutes."""
    import bitwitness.images.ewf_logical as logical

    deep = [Item(tuple(["d"] * n), None) for n in range(1, 41)]
    built = build_lx01(tmp_path / "deep.Lx01", [*deep, Item((*tuple(["d"] * 40), "f"), b"x")])
    assert run_bitwitness("ls", "-r", built.path).exit_code == 0
    monkeypatch.setattr(logical, "MAX_DEPTH", 30)
    result = run_bitwitness("ls", "-r", built.path)
    assert result.exit_code == ExitCode.EVIDENCE
    assert result.stderr.count("\n") == 1
    assert "deeper than 30" in result.stderr
    monkeypatch.setattr(logical, "MAX_DEPTH", 256)
    monkeypatch.setattr(logical, "MAX_ENTRIES", 10)
    result = run_bitwitness("info", built.path)
    assert "cannot be listed" in result.stdout
    assert "more than 10 entries" in result.stdout


@pytest.mark.parametrize("kind", KINDS)
def test_a_damaged_chunk_is_found_by_the_hashes(tmp_path: Path, kind: str) -> None:
    """A stored chunk whose Adler-32 fails. pyewf gives its bytes without an error (and reports no
    checksum errors), so what finds the damage is the hashes: verify's media MD5/SHA-1
    (MISMATCH, exit 1), and export's check of each file against the MD5 the evidence records
    for it: the damaged file is listed under failed (exit 1), the others are exported whole."""
    items = sample_items()
    built = _built(tmp_path, kind, items)
    raw = bytearray(built.path.read_bytes())
    big = next(i.data for i in items if str(i.path) == "Evidence/big.bin")
    assert big is not None
    at = bytes(raw).find(big[40_000:40_064])  # inside the second chunk, stored raw
    assert at > 0
    raw[at] ^= 0xFF
    built.path.write_bytes(bytes(raw))
    verify = run_bitwitness("verify", built.path)
    assert verify.exit_code == ExitCode.EVIDENCE
    assert "MISMATCH" in verify.stdout
    out = tmp_path / "out"
    result = run_bitwitness("export", built.path, "/", "--to", out)
    assert result.exit_code == ExitCode.EVIDENCE
    manifest = json.loads((out / "manifest.json").read_text())
    assert {f["source"] for f in manifest["failed"]} == {"/Evidence/big.bin"}
    assert f"not the {_md5(big)} the evidence file records" in manifest["failed"][0]["reason"]
    assert _exported(out)["Evidence/docs/readme.txt"] == b"hello world\n"


def _lx01_chunks(path: Path) -> list[tuple[int, int, int]]:
    """(file offset, stored size, flags) of every chunk, from the Lx01's sector table (found by
    walking the 64-byte section descriptors back from the end of the file)."""
    raw = path.read_bytes()
    at = len(raw) - 64
    while at > 0:
        kind, _flags, previous, size = struct.unpack_from("<IIQQ", raw, at)
        if kind == 4:  # sector table: first chunk, count, ..., 16-byte entries after 32 bytes
            count = struct.unpack_from("<I", raw, at - size + 8)[0]
            return [struct.unpack_from("<QII", raw, at - size + 32 + 16 * i)
                    for i in range(count)]
        at = previous
    raise AssertionError("no sector table")


def _text_items() -> list[Item]:
    """Text only: every chunk shrinks, so even chunks are stored compressed (the builder keeps
    odd ones raw); 2 chunks and 1001 bytes: the last chunk is compressed and holds 23 bytes of
    padding to the whole sector beyond the media."""
    text = b"".join(b"line %06d of the evidence\n" % i for i in range(4000))
    return [Item("Evidence", None), Item("Evidence/log.txt", text[:2 * 32768 + 1001])]


@pytest.mark.parametrize("items", [sample_items, _text_items], ids=["sample", "text"])
def test_lx01_second_reader_is_ours_and_agrees_with_libewf(
        tmp_path: Path, items: Callable[[], list[Item]]) -> None:
    """libewf (pyewf) reads an Lx01 first; our EWF2 reader is the second, and reads the same
    media: the files' bytes end to end, as many as the file list's ``rec`` ``tb`` counts (the
    chunks hold them padded to a whole sector)."""
    pyewf = pytest.importorskip("pyewf")
    from bitwitness.images.ewf2 import Ewf2Stream

    built = build_lx01(tmp_path / "files.Lx01", items())
    assert len(built.media) % 512, "the media must not be whole sectors"
    handle = pyewf.handle()
    handle.open([str(built.path)])
    try:
        theirs = handle.read_buffer(handle.get_media_size())
    finally:
        handle.close()
    with Ewf2Stream(built.path) as ours:
        assert ours.logical
        assert ours.pread(0, ours.size) == theirs == built.media
    result = run_bitwitness("verify", "--second-reader", "--json", built.path)
    assert result.exit_code == 0, result.stdout + result.stderr
    image = result.json()["images"][0]
    assert image["verdict"] == "VERIFIED"
    assert image["format"] == "Lx01 logical evidence file (read by libewf)"
    second = image["second_reader"]
    assert second["reader"] == "bitwitness (EWF2)"
    assert second["agree"] is True, second
    assert second["media_size"] == len(built.media)
    assert second["hashes"]["md5"] == image["computed"]["md5"] == _md5(built.media)


@pytest.mark.parametrize("flags", [1, 2], ids=["compressed", "stored"])
def test_lx01_changed_chunk_byte_is_caught_by_the_second_reader(tmp_path: Path,
                                                                 flags: int) -> None:
    """One byte changed inside a compressed (zlib) or a stored (raw + Adler-32) chunk: our EWF2
    reader refuses that chunk, so the second reading does not agree; the media hashes libewf's
    pass gives no longer match the ones the set records."""
    built = build_lx01(tmp_path / "files.Lx01", _text_items())
    chunks = _lx01_chunks(built.path)
    offset, size, _ = next(c for c in chunks if c[2] == flags)
    raw = bytearray(built.path.read_bytes())
    raw[offset + size // 2] ^= 0x04
    built.path.write_bytes(bytes(raw))
    result = run_bitwitness("verify", "--second-reader", "--json", built.path)
    assert result.exit_code == ExitCode.EVIDENCE, result.stdout + result.stderr
    image = result.json()["images"][0]
    assert image["verdict"] in ("MISMATCH", "CORRUPT")
    second = image["second_reader"]
    assert second["agree"] is False
    assert re.search(r"chunk \d+ (fails its Adler-32|does not decompress|decompresses to)",
                     second["error"]), second
