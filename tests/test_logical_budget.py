"""The file list (ltree) of an EWF set is judged before libewf parses it: bounded memory.

libewf reads an L01's or Lx01's whole file list while it opens the set; what that costs is
estimated from the section descriptors and the text's lines (bitwitness/images/ewf_ltree.py,
whose constants ``bench/bench_ltree_memory.py`` measured). The hostile cases (a list declaring
256 MiB, a million entries in 14 MB) are in tests/hostile_images.py and run by
tests/test_hostile_images.py; here: that the walk finds the text the builder wrote, that the
option raises and lowers the limit, that an L01 of 100 000 files as EnCase writes it is read
under 300 MiB, and that entries are found by number as ``ls`` numbers them.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from builders.logical import Item, build_l01, build_lx01
from conftest import run_bitwitness
from test_hostile_images import MAX_RSS, run_measured
from test_logical_builder import sample_items

from bitwitness.errors import ExitCode
from bitwitness.images import ewf_ltree


def _read(section: ewf_ltree.LtreeSection) -> bytes:
    with section.path.open("rb") as fh:
        fh.seek(section.offset)
        return fh.read(section.size)


@pytest.mark.parametrize("kind", ["l01", "l01-encase7", "lx01"])
def test_the_walk_finds_the_text_the_builder_wrote(tmp_path: Path, kind: str) -> None:
    if kind == "lx01":
        built = build_lx01(tmp_path / "f.Lx01", sample_items())
    else:
        built = build_l01(tmp_path / "f.L01", sample_items(), encase7=kind == "l01-encase7")
    sections = ewf_ltree.ltree_sections(built.path)
    assert len(sections) == 1
    raw = _read(sections[0])
    text = raw.decode("utf-16-le").rstrip("\0")  # Lx01: padded to 16 bytes
    assert text.startswith("5\nrec\n")
    assert "\nentry\n" in text
    assert "readme.txt" in text
    if kind != "lx01":  # the L01 ltree header holds the text's MD5 and size (libyal's notes)
        header = built.path.read_bytes()[sections[0].offset - 48:sections[0].offset]
        assert header[:16] == hashlib.md5(raw, usedforsecurity=False).digest()
        assert int.from_bytes(header[16:24], "little") == len(raw)
    assert ewf_ltree.count_lines(sections[0]) == text.count("\n")
    assert ewf_ltree.check_ltree([built.path]) == ewf_ltree.text_cost(len(raw), text.count("\n"))


def test_an_e01_without_a_file_list_costs_nothing(tmp_path: Path) -> None:
    source = tmp_path / "disk.raw"
    source.write_bytes(bytes(range(256)) * 4096)
    made = run_bitwitness("acquire", source, "-o", tmp_path / "disk")
    assert made.exit_code == 0, made.stderr
    assert ewf_ltree.ltree_sections(tmp_path / "disk.E01") == []
    assert ewf_ltree.check_ltree([tmp_path / "disk.E01", source]) == 0


def test_the_option_lowers_and_raises_the_limit(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    built = build_l01(tmp_path / "f.L01", sample_items())
    assert run_bitwitness("ls", built.path).exit_code == 0
    refused = run_bitwitness("--max-ltree", "1KiB", "ls", built.path)
    assert refused.exit_code == ExitCode.USAGE
    assert refused.stderr.count("\n") == 1
    assert "more than the 1.0 KiB allowed: pass bitwitness --max-ltree" in refused.stderr
    assert run_bitwitness("ls", built.path).exit_code == 0  # the option was one command's
    monkeypatch.setattr(ewf_ltree, "DEFAULT_BUDGET", 1024)
    assert run_bitwitness("info", built.path).exit_code == ExitCode.USAGE
    allowed = run_bitwitness("--max-ltree", "64MiB", "ls", "-r", built.path)
    assert allowed.exit_code == 0, allowed.stderr
    assert "readme.txt" in allowed.stdout


def test_help_says_the_default() -> None:
    text = " ".join(run_bitwitness("--help").stdout.split())
    assert f"estimated above {ewf_ltree.DEFAULT_BUDGET >> 20} MiB is refused" in text


def test_a_background_mount_passes_the_limit_on(monkeypatch: pytest.MonkeyPatch,
                                                tmp_path: Path) -> None:
    from bitwitness.report.mount import service

    seen: list[list[str]] = []
    monkeypatch.setattr(service, "start_background", lambda argv, _mnt: seen.append(argv) or 1)
    request = service.MountRequest(tmp_path / "x.L01", tmp_path / "mnt", files=True)
    service.mount_in_background(request)
    undo = ewf_ltree.set_max_ltree(600 << 20)
    try:
        service.mount_in_background(request)
    finally:
        undo()
    assert "--max-ltree" not in seen[0]
    assert seen[1][:3] == ["--max-ltree", str(600 << 20), "mount"]


@pytest.mark.slow
def test_what_encase_writes_for_100000_files_is_read_under_the_bound(tmp_path: Path) -> None:
    """The default budget admits it (libewf took 102 MiB for it), and ``ls -r`` and ``verify``
    of it stay below 300 MiB (verify no longer opens the set with libewf twice)."""
    items: list[Item] = []
    for folder in range(100):
        items.append(Item(f"dir{folder:03d}", None))
        items += [Item(f"dir{folder:03d}/f{n:04d}.txt", f"{folder}-{n}\n".encode())
                  for n in range(1000)]
    built = build_l01(tmp_path / "big.L01", items)
    for command in (("ls", "-r"), ("verify",)):
        code, out, err, rss = run_measured(*command, built.path)
        assert code == 0, err
        assert rss < MAX_RSS, f"{command} peaked at {rss >> 20} MiB"
    assert out.count("VERIFIED") >= 1


@pytest.mark.parametrize("kind", ["l01", "lx01"])
def test_every_entry_is_found_by_its_number(tmp_path: Path, kind: str) -> None:
    """By number (``--inode``, and a mount's reads): the entry ``ls -r`` lists with that number,
    nested folders included."""
    from bitwitness.image import open_image
    from bitwitness.report.browse.volumetree import choose, read_tree

    items = [*sample_items(), Item("Evidence/a", None), Item("Evidence/a/b", None),
             Item("Evidence/a/b/deep.txt", b"deep\n"), Item("last.txt", b"last\n")]
    build = build_lx01 if kind == "lx01" else build_l01
    built = build(tmp_path / f"f.{'Lx01' if kind == 'lx01' else 'L01'}", items)
    listed = run_bitwitness("ls", "-r", "--json", built.path).json()["entries"]
    stream = open_image(built.path)
    try:
        fs = choose(read_tree(stream))
        for row in listed:
            entry = fs.by_address(row["inode"])
            assert (entry.path, entry.size) == (row["path"], row["size"])
            if not entry.is_dir:
                item = next(i for i in items if "/" + str(i.path) == row["path"])
                assert b"".join(fs.iter_content(entry)) == item.data
        assert fs.by_address("1").path == "/"
    finally:
        stream.close()
