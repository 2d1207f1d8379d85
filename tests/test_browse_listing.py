"""``ls`` against The Sleuth Kit: the same entries as ``fls -r -p`` (live and reference listings).

"The same entries" means: for every entry the same ``fls`` line, i.e. the same name type and
meta type, deleted mark ``*``, inode address (``inode-type-id`` on NTFS, one line per ``$DATA``
stream and per index, named streams as ``name:stream``), ``(realloc)`` mark and full path with
control characters shown as ``^``. The comparison is of the two multisets of lines: order is
directory order in both, but TSK versions differ in how they order some ext4 folders (fls
4.11 vs the 4.15 inside pytsk3), and order carries no evidence.
``ls -r`` (allocated) is compared with ``fls -r -p -u``, ``--deleted`` with ``-d``, ``--all``
with plain ``fls -r -p``.
"""

from __future__ import annotations

import subprocess
from collections import Counter
from pathlib import Path

import pytest
from conftest import snapshot
from test_browse_disks import EXT_START, FAT_START, Disks, make_disks

SELECTIONS = {"": ["-u"], "--deleted": ["-d"], "--all": []}

@pytest.fixture(scope="session")
def disks(tmp_path_factory: pytest.TempPathFactory) -> Disks:
    return make_disks(tmp_path_factory)



def fls_lines(image: Path, *args: str) -> Counter[str]:
    out = subprocess.run(["fls", "-r", "-p", *args, str(image)], capture_output=True,
                         check=True).stdout
    return Counter(out.decode("utf-8", "surrogateescape").splitlines())


def sanitize(text: str) -> str:
    return "".join("^" if ord(c) < 0x20 else c for c in text)


def as_fls(entry: dict) -> str:
    star = "* " if entry["deleted"] else ""
    realloc = "(realloc)" if entry["realloc"] else ""
    return f"{entry['type']} {star}{entry['inode']}{realloc}:\t{sanitize(entry['path'][1:])}"


def ls_lines(bw, image: Path, *args: str) -> Counter[str]:
    result = bw("ls", image, "-r", "--json", *[a for a in args if a])
    assert result.exit_code == 0, result.stderr
    return Counter(as_fls(e) for e in result.json()["entries"])


@pytest.mark.parametrize("selection", list(SELECTIONS))
@pytest.mark.parametrize(("part", "sector"), [(4, FAT_START), (5, EXT_START)])
def test_ls_matches_live_fls_on_gpt_disk(disks: Disks, bw, selection: str, part: int,
                                          sector: int) -> None:
    before = snapshot([disks.gpt])
    expected = fls_lines(disks.gpt, "-o", str(sector), *SELECTIONS[selection])
    assert ls_lines(bw, disks.gpt, "-p", str(part), selection) == expected
    assert ls_lines(bw, disks.gpt, "--offset", str(sector), selection) == expected
    assert snapshot([disks.gpt]) == before


def test_deleted_entries_are_there_and_marked(disks: Disks, bw) -> None:
    fat = bw("ls", disks.gpt, "-p", "4", "--deleted").stdout
    assert "* " in fat
    assert "odelete.txt" in fat
    ext = bw("ls", disks.gpt, "-p", "5", "/home/ana", "--all").stdout.splitlines()
    assert any(line.startswith("r/r * ") and line.endswith("home/ana/gone.txt") for line in ext)
    plain = bw("ls", disks.gpt, "-p", "5", "/home/ana").stdout
    assert "gone.txt" not in plain


def test_ls_long_shows_times_in_utc_and_flags(disks: Disks, bw) -> None:
    result = bw("ls", disks.ext4, "/home/ana", "-l", "--all")
    assert result.exit_code == 0, result.stderr
    line = next(x for x in result.stdout.splitlines() if x.endswith("gone.txt"))
    assert " deleted " in line
    assert "m=20" in line
    assert "Z a=" in line
    doc = bw("ls", disks.ext4, "/home/ana", "--json").json()
    notes = next(e for e in doc["entries"] if e["name"] == "notes.txt")
    assert notes["modified"].endswith("+00:00")
    assert notes["size"] == 13


@pytest.mark.parametrize("selection", list(SELECTIONS))
def test_ls_matches_fls_on_ext4_without_partition_table(disks: Disks, bw,
                                                        selection: str) -> None:
    assert ls_lines(bw, disks.ext4, selection) == fls_lines(disks.ext4, *SELECTIONS[selection])


def test_unicode_paths(disks: Disks, bw) -> None:
    doc = bw("ls", disks.gpt, "-p", "4", "/", "--json").json()
    assert "Ünïcødé файл.txt" in [e["name"] for e in doc["entries"]]
    result = bw("ls", disks.ext4, "home/ana/", "--json")  # leading slash optional
    assert "Ωmega ünï.txt" in [e["name"] for e in result.json()["entries"]]


@pytest.mark.parametrize(("image", "args", "listing"), [
    ("dfvfs_ext2.splitraw.000", [], "dfvfs_ext2.fls.txt"),
    ("dfvfs_hfsplus.raw", [], "dfvfs_hfsplus.fls.txt"),
    ("dfvfs_iso9660.raw", [], "dfvfs_iso9660.fls.txt"),
    ("dfvfs_ext2.split.E01", [], "dfvfs_ext2.fls.txt"),
    ("dfvfs_ext2.vhd", [], "dfvfs_ext2.fls.txt"),
    ("tsk_imageformat_mmls_1.E01", ["-p", "2"], "tsk_imageformat_mmls_1.p128.fls.txt"),
    ("tsk_imageformat_mmls_1.E01", ["--offset", "55424"],
     "tsk_imageformat_mmls_1.p55424.fls.txt"),
])
def test_ls_matches_reference_listings(third_party: Path, bw, image: str, args: list[str],
                                       listing: str) -> None:
    if image.endswith(".E01"):
        pytest.importorskip("bitwitness.images.ewf")
    files = sorted(third_party.glob(image.rsplit(".", 1)[0] + ".*"))
    before = snapshot(files)
    expected = Counter((third_party / "listings" / listing).read_text().splitlines())
    assert ls_lines(bw, third_party / image, "--all", *args) == expected
    assert snapshot(files) == before


def test_ls_matches_live_fls_on_ntfs_e01(third_party: Path, bw) -> None:
    pytest.importorskip("bitwitness.images.ewf")
    image = third_party / "tsk_imageformat_mmls_1.E01"
    for selection, flags in SELECTIONS.items():
        expected = fls_lines(image, "-o", "128", *flags)
        assert ls_lines(bw, image, "-p", "2", selection) == expected


def test_several_file_systems_need_a_choice(disks: Disks, bw) -> None:
    result = bw("ls", disks.gpt)
    assert result.exit_code == 2
    assert "-p 4 (fat32 at sector 2048)" in result.stderr
    assert "-p 5 (ext4 at sector 100352)" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["-p", "5", "/no/such/file"], "no such file or folder"),
    (["-p", "0"], "holds no file system"),
    (["-p", "9"], "no partition 9"),
    (["--offset", "1"], "cannot open a file system at sector 1"),
    (["-p", "5", "/home/ana/notes.txt"], "not a directory"),
    (["-p", "4", "--offset", "2048"], "either -p or --offset"),
    (["-p", "5", "/home/../etc"], "'..' is not allowed"),
    (["-p", "5", "--deleted", "--all"], "exclude each other"),
])
def test_errors_are_one_line_exit_2(disks: Disks, bw, args: list[str], message: str) -> None:
    result = bw("ls", disks.gpt, *args)
    assert result.exit_code == 2, result.stdout
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_damaged_and_unknown_file_systems(disks: Disks, bw, tmp_path: Path) -> None:
    broken = tmp_path / "broken.img"
    data = bytearray(disks.ext4.read_bytes()[: 4 << 20])
    data[1024:2048] = bytes(1024)  # the ext4 superblock
    broken.write_bytes(bytes(data))
    result = bw("ls", broken)
    assert result.exit_code == 2
    assert "no file system found" in result.stderr
    noise = tmp_path / "noise.img"
    noise.write_bytes(bytes(range(256)) * 4096)
    assert bw("ls", noise, "--offset", "0").exit_code == 2


def test_encrypted_volume_is_named(bw, tmp_path: Path) -> None:
    image = tmp_path / "bitlocker.img"
    data = bytearray(1 << 20)
    data[3:11] = b"-FVE-FS-"
    data[510:512] = b"\x55\xaa"
    image.write_bytes(bytes(data))
    result = bw("ls", image)
    assert result.exit_code == 2
    assert "encrypted (BitLocker)" in result.stderr
    doc = bw("partitions", image, "--json").json()
    assert doc["partitions"][0]["encrypted"] == "BitLocker"
