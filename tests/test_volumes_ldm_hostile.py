"""Dynamic disks (LDM) that are damaged or crafted, and the layouts read from one disk only.

A database that does not hold together (VBLK sizes and counts out of range, records cut short,
a record's pieces missing or given twice) is named on its 0x42 row and not read: ``partitions``
still lists the table, browsing ends in one line with exit 2. A volume whose partitions lie
outside the disk or over another volume's, or on another disk (striped, RAID-5, a spanned
volume's part elsewhere), is listed by its name and not read. Every run stays within the time
and memory of ``fails_closed`` (tests/test_fs_ext_hostile.py). The databases are written by
tests/builders/ldm.py (checked against ldmtool in test_volumes_ldm.py), then damaged here.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path

import pytest
from builders.ldm import Layout, Part, Volume, write_disk, write_gpt_disk
from conftest import require_tool, run_bitwitness
from test_fs_ext_hostile import fails_closed

SECTOR = 512
DISK_SECTORS = 384
CONFIG = 64  #: a small database, so that the disks are small
CONFIG_START = DISK_SECTORS - CONFIG
VMDB = (CONFIG_START + 17) * SECTOR
FIRST_VBLK = VMDB + SECTOR


def _layout() -> Layout:
    return Layout([Volume("Volume1", [[Part(0, 64)]], hint="E:"),
                   Volume("Volume2", [[Part(64, 32), Part(128, 32)]]),
                   Volume("Volume3", [[Part(96, 32)]])])


def _disk(path: Path, layout: Layout | None = None, config: int = CONFIG,
          sectors: int = DISK_SECTORS) -> bytearray:
    with path.open("wb") as out:
        out.truncate(sectors * SECTOR)
    write_disk(path, layout or _layout(), config=config)
    return bytearray(path.read_bytes())


def _vblks(data: bytearray) -> list[int]:
    """Byte offsets of the VBLKs that hold a record (not blank)."""
    out = []
    at = FIRST_VBLK
    while data[at:at + 4] == b"VBLK":
        if data[at + 19] & 0x0F:
            out.append(at)
        at += 128
    return out


def _record(data: bytearray, kind: int) -> int:
    """The first VBLK holding a record of ``kind`` (1 volume, 3 partition...)."""
    return next(at for at in _vblks(data) if data[at + 19] & 0x0F == kind)


def _vblk_size(data: bytearray) -> None:
    struct.pack_into(">I", data, VMDB + 8, 0xFFFFFFF0)


def _first_offset(data: bytearray) -> None:
    struct.pack_into(">I", data, VMDB + 12, 0xFFFFFF00)


def _counts(data: bytearray) -> None:
    struct.pack_into(">I", data, VMDB + 133, 0xFFFFFFFF)


def _piece_beyond(data: bytearray) -> None:
    struct.pack_into(">HH", data, _vblks(data)[0] + 12, 5, 2)


def _piece_missing(data: bytearray) -> None:
    struct.pack_into(">HH", data, _vblks(data)[0] + 12, 0, 60000)


def _piece_twice(data: bytearray) -> None:
    first, second = _vblks(data)[:2]
    for at in (first, second):
        struct.pack_into(">IHH", data, at + 8, 77, 0, 2)


def _long_number(data: bytearray) -> None:
    data[_record(data, 1) + 24] = 0xFF


def _name_past_record(data: bytearray) -> None:
    at = _record(data, 3) + 24
    data[at + 1 + data[at]] = 0xFF


def _unknown_type(data: bytearray) -> None:
    data[_record(data, 2) + 19] = 0x39


def _no_vmdb(data: bytearray) -> None:
    data[VMDB:VMDB + 4] = b"XXXX"


CASES: dict[str, Callable[[bytearray], None]] = {
    "VBLK size out of range": _vblk_size, "first VBLK past the area": _first_offset,
    "counts out of range": _counts, "piece number beyond its count": _piece_beyond,
    "record missing pieces": _piece_missing, "record split two ways": _piece_twice,
    "255-byte number": _long_number, "name past the record's end": _name_past_record,
    "record of no LDM type": _unknown_type, "no VMDB": _no_vmdb,
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_damaged_database_is_named_not_read(case: str, tmp_path: Path) -> None:
    image = tmp_path / "disk.img"
    data = _disk(image)
    CASES[case](data)
    image.write_bytes(data)
    code, _ = fails_closed("partitions", image)
    assert code == 0
    listed = run_bitwitness("partitions", "--json", image).json()
    row = listed["partitions"][-1]
    assert row["volumes"] == []
    assert "Windows dynamic disk (LDM) whose database is not read: LDM database" in (
        run_bitwitness("partitions", image).stdout)
    code, _ = fails_closed("ls", "-r", image)
    assert code == 2
    code, _ = fails_closed("ls", "-p", "2/ldm1", image)
    assert code == 2


@pytest.mark.parametrize(("case", "volume3", "why"), [
    ("over another volume", [Part(0, 32)], "its partitions overlap those of volume 'Volume1'"),
    ("past the data area", [Part(1 << 62, 32)], "partition 'Disk1-04' lies outside the disk's "
                                                 "data area"),
    ("huge", [Part(96, 1 << 60)], "partition 'Disk1-04' lies outside the disk's data area"),
    ("a gap in the volume", [Part(96, 16), Part(200, 16)], None),
])
def test_a_volume_outside_its_place_is_named_not_read(case: str, volume3: list[Part],
                                                      why: str | None, tmp_path: Path) -> None:
    layout = _layout()
    layout.volumes[2].plexes = [volume3]
    image = tmp_path / "disk.img"
    _disk(image, layout)
    if case == "a gap in the volume":  # the second part's volume offset says 20, not 16
        data = bytearray(image.read_bytes())
        at = [a for a in _vblks(data) if data[a + 19] & 0x0F == 3][-1] + 24
        at += 1 + data[at]  # the id
        at += 1 + data[at] + 12  # the name, zeros, log commit id
        struct.pack_into(">Q", data, at + 8, 20)
        image.write_bytes(data)
        why = "partition 'Disk1-05' is not where the partitions before it end"
    code, _ = fails_closed("partitions", image)
    assert code == 0
    volumes = run_bitwitness("partitions", "--json", image).json()["partitions"][-1]["volumes"]
    assert [v["path"] for v in volumes] == ["2/ldm1", "2/ldm2", "2/ldm3"]
    assert volumes[2]["unread"] == f"LDM simple volume 'Volume3': {why}" or (
        volumes[2]["unread"] == f"LDM spanned volume 'Volume3': {why}")
    assert volumes[0]["unread"] is None
    code, _ = fails_closed("ls", "-p", "2/ldm3", image)
    assert code == 2


def test_a_damaged_first_privhead_is_read_from_its_copy(tmp_path: Path) -> None:
    """Windows' 2048-sector database: its PRIVHEAD copies lie 1856 and 2047 sectors in."""
    image = tmp_path / "disk.img"
    data = _disk(image, config=2048, sectors=4096)
    data[6 * SECTOR:7 * SECTOR] = bytes(SECTOR)
    image.write_bytes(data)
    listed = run_bitwitness("partitions", image)
    assert listed.exit_code == 0, listed.stderr
    assert "PRIVHEAD in sector 6 damaged; read from its copy at sector 3904" in listed.stdout
    assert "2/ldm3" in listed.stdout


def test_records_split_over_several_vblks_are_joined(tmp_path: Path) -> None:
    name = "A volume whose name is long enough to split its record over three VBLKs" * 2
    layout = _layout()
    layout.volumes[1].name = name[:200]
    image = tmp_path / "disk.img"
    data = _disk(image, layout)
    assert any(struct.unpack_from(">H", data, at + 14)[0] > 2 for at in _vblks(data))
    volumes = run_bitwitness("partitions", "--json", image).json()["partitions"][-1]["volumes"]
    assert f"LDM spanned volume '{name[:200]}'" in volumes[1]["description"]
    assert volumes[1]["unread"] is None


def _two_disks(volume: Volume, this: str) -> Layout:
    return Layout([Volume("Volume1", [[Part(0, 64)]]), volume], disks=["Disk1", "Disk2"],
                  this_disk=this)


@pytest.mark.parametrize(("volume", "unread"), [
    (Volume("Stripe", [[Part(64, 32), Part(0, 32, "Disk2")]], kind="striped"),
     "LDM striped volume 'Stripe': its data is striped over Disk1, Disk2: it needs every "
     "disk's image"),
    (Volume("Parity", [[Part(64, 32), Part(0, 32, "Disk2"), Part(32, 32, "Disk2")]],
            kind="raid5"),
     "LDM RAID-5 volume 'Parity': its data is striped over Disk1, Disk2: it needs every "
     "disk's image"),
    (Volume("Across", [[Part(64, 32), Part(0, 32, "Disk2")]]),
     "LDM spanned volume 'Across': it lies on Disk2, not on this disk"),
])
def test_a_volume_needing_another_disk_is_named_with_it(volume: Volume, unread: str,
                                                        tmp_path: Path) -> None:
    image = tmp_path / "disk.img"
    _disk(image, _two_disks(volume, "Disk1"))
    volumes = run_bitwitness("partitions", "--json", image).json()["partitions"][-1]["volumes"]
    assert volumes[1]["unread"] == unread
    assert volumes[1]["filesystem"] is None
    refused = run_bitwitness("ls", "-p", "2/ldm2", image)
    assert refused.exit_code == 2
    assert "ldm2" in refused.stderr


@pytest.mark.parametrize("this", ["Disk1", "Disk2"])
def test_a_mirror_is_read_from_the_plex_on_this_disk(this: str, tmp_path: Path) -> None:
    """RAID1: each disk holds a whole copy; either disk's image gives the volume, from the
    partition on that disk (the other copy is not compared)."""
    mirror = Volume("Mirror", [[Part(64, 32)], [Part(128, 32, "Disk2")]])
    image = tmp_path / "disk.img"
    _disk(image, _two_disks(mirror, this))
    volumes = run_bitwitness("partitions", "--json", image).json()["partitions"][-1]["volumes"]
    start = 63 + (64 if this == "Disk1" else 128)
    assert volumes[1]["unread"] is None
    assert (f"LDM mirrored volume 'Mirror', 1 extent (disk sectors {start}-{start + 31})"
            in volumes[1]["description"])
    assert volumes[1]["size"] == 32 * SECTOR


def test_a_hostile_volume_name_cannot_drive_the_terminal(tmp_path: Path) -> None:
    layout = _layout()
    layout.volumes[1].name = "\x1b[31mred\x1b]0;x\x07[bold]"
    image = tmp_path / "disk.img"
    _disk(image, layout)
    table = run_bitwitness("partitions", image)
    assert table.exit_code == 0, table.stderr
    assert "\x1b" not in table.stdout
    assert "\x07" not in table.stdout
    listed = run_bitwitness("partitions", "--json", image).json()
    assert layout.volumes[1].name in listed["partitions"][-1]["volumes"][1]["description"]


def test_thousands_of_volumes_are_bounded_in_time_and_listed_so(tmp_path: Path) -> None:
    """A database of 1,900 volumes (as large as Windows' 1 MiB database holds), overlapping
    each other: the overlap check is not quadratic, and the tree lists the first 512 and says
    how many there are."""
    volumes = [Volume(f"V{n}", [[Part(n % 50, 1)]]) for n in range(1900)]
    image = tmp_path / "disk.img"
    _disk(image, Layout(volumes), config=2048, sectors=4096)
    code, _ = fails_closed("partitions", image)
    assert code == 0
    listed = run_bitwitness("partitions", "--json", image).json()
    row = listed["partitions"][-1]
    assert len(row["volumes"]) == 512
    text = run_bitwitness("partitions", image).stdout
    assert "(only the first 512 of its 1900 volumes are listed)" in text
    assert row["volumes"][60]["unread"] == (
        "LDM simple volume 'V60': its partitions overlap those of volume 'V10'")


def test_an_image_cut_short_names_what_it_lacks(tmp_path: Path) -> None:
    """MBR: the database lies at the disk's end, so an image cut short has none: the row says
    so. The volumes' data is still where TSK finds it; nothing is guessed."""
    image = tmp_path / "disk.img"
    data = _disk(image)
    image.write_bytes(data[:200 * SECTOR])
    listed = run_bitwitness("partitions", image)
    assert listed.exit_code == 0, listed.stderr
    assert ("Windows dynamic disk (LDM) whose database is not read: LDM database: sectors "
            "320-383 lie past the end of the image (cut short?)") in listed.stdout
    data[6 * SECTOR:7 * SECTOR] = bytes(SECTOR)
    image.write_bytes(data)
    listed = run_bitwitness("partitions", image)
    assert ("whose database is not read: LDM: no PRIVHEAD in sector 6 nor in its copies at "
            "the disk's end") in listed.stdout


def test_a_gpt_image_cut_short_reads_the_volumes_it_holds(tmp_path: Path) -> None:
    """GPT: the database lies near the disk's start, so an image cut short keeps it: the
    volumes wholly inside the image are read, the others named as past its end."""
    require_tool("sgdisk")
    image = tmp_path / "disk.img"
    with image.open("wb") as out:
        out.truncate(8 << 20)
    write_gpt_disk(image, Layout([Volume("Volume1", [[Part(0, 2048)]]),
                                  Volume("Volume2", [[Part(4096, 4096)]])]))
    with image.open("r+b") as out:
        out.truncate((4096 + 4096) * SECTOR)  # Volume2 starts at 8192: not in the image
    volumes = run_bitwitness("partitions", "--json", image).json()["partitions"]
    (row,) = [p for p in volumes if p["volumes"]]
    first, second = row["volumes"]
    assert first["unread"] is None
    assert second["unread"] == ("LDM simple volume 'Volume2': its partitions lie past the end "
                                "of the image")
