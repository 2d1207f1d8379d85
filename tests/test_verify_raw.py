"""Verifying raw, split raw and VHD images: sidecars per piece and for the whole media, a changed
byte, missing pieces, dual verification against the source (checked with ``cmp``), exit codes,
and the evidence untouched afterwards. Expected hashes come from coreutils."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from conftest import make_disk_bytes, require_tool, run_bitwitness, snapshot
from test_verify_logs import tool_hash

from bitwitness.verify import Match, Verdict, VerifyOptions, verify_image

PIECE = 1 << 20


@pytest.fixture
def split_set(tmp_path: Path) -> list[Path]:
    """``disk.001..003`` made by coreutils ``split``, with an md5sum sidecar for every piece and
    a line for the whole media (``md5sum`` of the concatenation, named by the set's stem)."""
    whole = tmp_path / "source.bin"
    whole.write_bytes(make_disk_bytes(3 * PIECE - 4096, seed=5))
    subprocess.run(["split", "-b", str(PIECE), "-a", "3", "--numeric-suffixes=1", whole.name,
                    "disk."], cwd=tmp_path, check=True)
    pieces = sorted(tmp_path.glob("disk.0*"))
    lines = subprocess.run(["md5sum", *(p.name for p in pieces)], cwd=tmp_path,
                           capture_output=True, text=True, check=True).stdout
    lines += f"{tool_hash('md5sum', whole)[0]}  disk\n"
    (tmp_path / "disk.md5").write_text(lines)
    return pieces


def test_split_set_verifies_per_piece_and_whole(split_set: Path) -> None:
    before = snapshot([*split_set, split_set[0].parent / "disk.md5"])
    r = run_bitwitness("verify", split_set[2], "--json")
    assert r.exit_code == 0, r.stdout + r.stderr
    doc = r.json()["images"][0]
    assert doc["verdict"] == "VERIFIED"
    assert doc["format"] == "split-raw"
    scopes = sorted(c["reference"]["scope"] for c in doc["comparisons"])
    assert scopes == ["file disk.001", "file disk.002", "file disk.003", "media"]
    assert all(c["match"] == "match" for c in doc["comparisons"])
    assert snapshot([*split_set, split_set[0].parent / "disk.md5"]) == before


def test_changed_byte_in_one_piece_is_a_mismatch_named_by_piece(split_set: Path) -> None:
    piece = split_set[1]
    data = bytearray(piece.read_bytes())
    data[12345] ^= 0x40
    piece.write_bytes(bytes(data))
    result = verify_image(split_set[0])
    assert result.verdict is Verdict.MISMATCH
    bad = sorted(c.reference.scope for c in result.comparisons if c.match is Match.MISMATCH)
    assert bad == ["file disk.002", "media"]
    r = run_bitwitness("verify", split_set[0])
    assert r.exit_code == 1
    assert "MISMATCH" in r.stdout


def test_missing_middle_piece_is_a_clear_error(split_set: Path) -> None:
    split_set[1].unlink()
    r = run_bitwitness("verify", split_set[0], "--json")
    assert r.exit_code == 1
    doc = r.json()["images"][0]
    assert doc["verdict"] == "INCOMPLETE"
    assert any(".002 is missing" in p for p in doc["problems"])
    human = run_bitwitness("verify", split_set[0])
    assert human.exit_code == 1
    assert ".002 is missing" in human.stdout
    assert "Traceback" not in human.stdout + human.stderr


def test_middle_piece_cut_short_is_corrupt_not_joined(split_set: Path) -> None:
    """A piece before the last that is shorter than the others (a copy cut short) would shift
    every later byte if joined as found: the piece-size check names it and the verdict is
    CORRUPT, beside the sidecar's mismatches; the pieces split made pass it."""
    ok = verify_image(split_set[0])
    assert [(c.what, c.ok) for c in ok.container_checks] == [("split raw piece sizes", True)]
    with split_set[1].open("r+b") as fh:
        fh.truncate(PIECE - 512)
    result = verify_image(split_set[0])
    assert result.verdict is Verdict.CORRUPT
    assert any("disk.002 holds 1048064 bytes" in p and "shifted" in p for p in result.problems)
    r = run_bitwitness("verify", split_set[0])
    assert r.exit_code == 1
    assert "CORRUPT" in r.stdout
    # every other command refuses the set alike (info, convert and ls read it as whole,
    # exit 0, while verify said CORRUPT), and convert writes nothing
    out = split_set[0].parent / "converted"
    for args in (("info", split_set[0]), ("partitions", split_set[2]),
                 ("convert", "--to", "raw", "-o", out, split_set[0])):
        refused = run_bitwitness(*args)
        assert refused.exit_code == 1, (args, refused.stdout)
        assert "damaged split raw set: disk.002 holds 1048064 bytes" in refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert not list(out.parent.glob("converted*"))


def test_empty_pieces_are_no_image(tmp_path: Path) -> None:
    """A set of empty pieces is refused as an empty raw file is (exit 2), and an empty first
    piece before full ones is a damaged set (exit 1); both were read (0 bytes, or shifted)."""
    (tmp_path / "d.001").write_bytes(b"")
    alone = run_bitwitness("info", tmp_path / "d.001")
    assert alone.exit_code == 2
    assert "every piece of the split raw set is empty" in alone.stderr
    (tmp_path / "e.000").write_bytes(b"")
    (tmp_path / "e.001").write_bytes(bytes(4096))
    first = run_bitwitness("info", tmp_path / "e.001")
    assert first.exit_code == 1
    assert "the first piece e.000 is empty" in first.stderr


def test_missing_last_piece_named_in_the_sidecar(split_set: Path) -> None:
    split_set[2].unlink()
    result = verify_image(split_set[0])
    assert result.verdict is Verdict.INCOMPLETE
    assert any("disk.003" in p and "missing" in p for p in result.problems)


def test_raw_changed_byte_mismatch_and_against_names_the_sector(tmp_path: Path) -> None:
    require_tool("cmp")
    source = tmp_path / "source.bin"
    source.write_bytes(make_disk_bytes(2 * PIECE, seed=8))
    image = tmp_path / "image.dd"
    image.write_bytes(source.read_bytes())
    sidecar = tmp_path / "image.dd.sha1"
    sidecar.write_text(subprocess.run(["sha1sum", image.name], cwd=tmp_path, text=True,
                                      capture_output=True, check=True).stdout)
    assert verify_image(image, VerifyOptions(against=source)).verdict is Verdict.VERIFIED
    data = bytearray(image.read_bytes())
    for offset in (700_001, 700_600, 1_500_000):  # sectors 1367-1368 (a run), then 2929
        data[offset] ^= 0xFF
    image.write_bytes(bytes(data))
    before = snapshot([image, source])
    result = verify_image(image, VerifyOptions(against=source))
    assert result.verdict is Verdict.MISMATCH
    # cmp -l lists every differing byte (1-based offsets): the independent account
    cmp = subprocess.run(["cmp", "-l", str(image), str(source)], capture_output=True, text=True,
                         check=False).stdout.split()
    sectors = sorted({(int(line) - 1) // 512 for line in cmp[0::3]})
    assert result.against is not None
    first = result.against.first_difference
    assert first is not None
    assert first.first_sector == sectors[0]
    run_end = sectors[0]
    while run_end + 1 in sectors:
        run_end += 1
    assert first.last_sector == run_end
    assert result.against.differing_sectors == len(sectors)
    r = run_bitwitness("verify", image, "--against", source)
    assert r.exit_code == 1
    assert f"sectors {sectors[0]}-{run_end}" in r.stdout
    assert snapshot([image, source]) == before


def test_against_a_shorter_source(tmp_path: Path) -> None:
    image = tmp_path / "image.dd"
    image.write_bytes(make_disk_bytes(PIECE, seed=9))
    source = tmp_path / "source.bin"
    source.write_bytes(image.read_bytes()[: PIECE - 2048])
    result = verify_image(image, VerifyOptions(against=source))
    assert result.verdict is Verdict.MISMATCH
    assert result.against is not None
    assert result.against.first_difference is not None
    assert result.against.first_difference.first_sector == (PIECE - 2048) // 512
    assert "sizes differ" in result.against.note
    said = run_bitwitness("verify", image, "--against", source).stdout
    assert f"(the {PIECE - 2048} bytes both hold are identical; sectors " in said
    assert "0 differing sectors" not in said


def test_unverified_shows_computed_hashes(tmp_path: Path) -> None:
    image = tmp_path / "plain.img"
    image.write_bytes(make_disk_bytes(PIECE, seed=4))
    r = run_bitwitness("verify", image, "--json")
    assert r.exit_code == 1
    doc = r.json()["images"][0]
    assert doc["verdict"] == "UNVERIFIED"
    assert doc["computed"]["md5"] == tool_hash("md5sum", image)[0]
    assert doc["computed"]["sha1"] == tool_hash("sha1sum", image)[0]
    assert doc["computed"]["sha256"] == tool_hash("sha256sum", image)[0]


def test_several_images_in_parallel_each_with_a_task(tmp_path: Path) -> None:
    from bitwitness.progress import RecordingMediator
    from bitwitness.verify import verify_images

    images = []
    for i in range(3):
        img = tmp_path / f"img{i}.dd"
        img.write_bytes(make_disk_bytes(PIECE, seed=20 + i))
        (tmp_path / f"img{i}.md5").write_text(f"{tool_hash('md5sum', img)[0]}  {img.name}\n")
        images.append(img)
    data = bytearray(images[1].read_bytes())
    data[0] ^= 1
    images[1].write_bytes(bytes(data))
    mediator = RecordingMediator()
    results = verify_images(images, VerifyOptions(parallel=3), mediator)
    assert [r.verdict for r in results] == [Verdict.VERIFIED, Verdict.MISMATCH,
                                            Verdict.VERIFIED]
    assert sorted(t.label for t in mediator.tasks) == [f"verify img{i}.dd" for i in range(3)]
    assert all(t.finished and t.done == PIECE for t in mediator.tasks)
    r = run_bitwitness("verify", *images)
    assert r.exit_code == 1
    assert "3 images: 1 MISMATCH, 2 VERIFIED" in r.stdout


def test_usage_errors_are_one_line_exit_2(tmp_path: Path) -> None:
    image = tmp_path / "a.dd"
    image.write_bytes(bytes(4096))
    for args in (["verify"], ["verify", tmp_path / "missing.dd"],
                 ["verify", image, "--log", tmp_path / "missing.md5"],
                 ["verify", image, image, "--against", image],
                 ["info", tmp_path / "missing.E01"]):
        r = run_bitwitness(*args)
        assert r.exit_code == 2, (args, r.stdout, r.stderr)
        assert "Traceback" not in r.stderr
        assert r.stderr.count("\n") <= 2


def test_vhd_media_and_container(tmp_path: Path) -> None:
    """A fixed VHD: its media is the raw part; a sidecar for the .vhd file is of the container."""
    require_tool("qemu-img")
    raw = tmp_path / "disk.raw"
    raw.write_bytes(make_disk_bytes(2 * PIECE, seed=6))
    vhd = tmp_path / "disk.vhd"
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "vpc", "-o",
                    "subformat=fixed,force_size=on", str(raw), str(vhd)], check=True,
                   capture_output=True)
    (tmp_path / "disk.vhd.md5").write_text(f"{tool_hash('md5sum', vhd)[0]}  disk.vhd\n")
    result = verify_image(vhd)
    assert result.format == "vhd"
    assert result.computed["md5"] == tool_hash("md5sum", raw)[0]  # the media, not the file
    assert result.verdict is Verdict.VERIFIED
    assert [c.reference.scope for c in result.comparisons] == ["file disk.vhd"]
