"""Partitions whose boot sectors claim NTFS, FAT or ext with absurd fields (issue 14): every
browsing command ends in a listing, "no file system" or one line, never an internal error.

The disks come from ``tests/hostile_volumes.py`` (a committed builder); the partition rows are
checked against ``mmls`` and "no file system" against ``fsstat``, which fails on them too.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import hostile_volumes
import pytest
from conftest import require_tool, snapshot
from test_hostile_images import MAX_RSS, run_measured

from bitwitness.errors import FileSystemError


@pytest.fixture(scope="module")
def disks(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    require_tool("sfdisk", "mmls", "fsstat")
    folder = tmp_path_factory.mktemp("hostile-volumes")
    return [build(folder) for build in hostile_volumes.BUILDERS.values()]


def _mmls_rows(image: Path) -> list[tuple[int, int, str]]:
    out = subprocess.run(["mmls", str(image)], capture_output=True, text=True,
                         check=True).stdout
    rows = []
    for line in out.splitlines():
        parts = line.split(None, 5)
        if len(parts) == 6 and parts[0].rstrip(":").isdigit() and ":" in parts[1]:
            rows.append((int(parts[2]), int(parts[4]), parts[5].strip()))
    return rows


def test_partitions_match_mmls_and_find_no_file_system(disks: list[Path]) -> None:
    for image in disks:
        code, out, err, rss = run_measured("partitions", "--json", image)
        assert code == 0, err
        assert rss < MAX_RSS
        rows = [r for r in json.loads(out)["partitions"] if r["kind"] == "partition"]
        assert [(r["start"], r["length"], r["description"]) for r in rows] == _mmls_rows(image)
        for row in rows:
            fsstat = subprocess.run(["fsstat", "-o", str(row["start"]), str(image)],
                                    capture_output=True, check=False)
            if fsstat.returncode != 0:
                assert row["filesystem"] is None, (image.name, row)


def test_browsing_commands_fail_in_one_line(disks: list[Path], tmp_path: Path) -> None:
    before = snapshot(disks)
    for image in disks:
        for index, start in zip((2, 3, 4), hostile_volumes.STARTS, strict=True):
            for args in (("ls", "-r", "--all", "-p", str(index), image),
                         ("ls", "-l", "--offset", str(start), image),
                         ("timeline", "--offset", str(start), image),
                         ("export", "-p", str(index), "--to", tmp_path / f"out-{index}",
                          image, "/")):
                code, _out, err, rss = run_measured(*args)
                assert code in (0, 1, 2), (args, err)
                assert "internal error" not in err
                assert "Traceback" not in err
                assert rss < MAX_RSS
                if code:
                    assert len(err.strip().splitlines()) == 1, err
        code, _out, err, _rss = run_measured("timeline", image)
        assert code in (0, 1, 2), err
        assert "internal error" not in err
    assert snapshot(disks) == before


def test_tsk_runtime_error_is_no_file_system_or_one_line(
        disks: list[Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """pytsk3 raises RuntimeError for some TSK failures: a probe takes it as "no file system",
    an open as a FileSystemError naming the sector, never an internal error."""
    import pytsk3

    from bitwitness.image import open_image
    from bitwitness.report.browse.filesystem import FileSystem
    from bitwitness.report.browse.tsk import TskImage
    from bitwitness.report.browse.volumes import read_layout

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("tsk_fs_open_img: crafted boot sector")

    with open_image(disks[0]) as stream:
        image = TskImage(stream)
        monkeypatch.setattr(pytsk3, "FS_Info", refuse)
        layout = read_layout(image)
        assert all(p.filesystem is None for p in layout.partitions)
        with pytest.raises(FileSystemError, match="open a file system at sector 2048"):
            FileSystem(image, layout.partitions[2])
