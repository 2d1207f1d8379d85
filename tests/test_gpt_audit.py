"""Both copies of a GPT checked, as firmware and sgdisk check them (UEFI 2.x section 5.3.2).

TSK, and ``mmls``, read the primary table without its entry array's CRC32 and fall back to the
backup without saying so: an entry changed after the table was written was shown as the
partition, and a damaged header passed unsaid. The truth here is gdisk's ``sgdisk``: ``-v``
says which copy fails, ``-p`` lists the table it loaded (the backup where the primary fails).
Every disk is written by sgdisk, then damaged with a few bytes.
"""

from __future__ import annotations

import re
import struct
import subprocess
import zlib
from pathlib import Path

import pytest
from conftest import require_tool, run_bitwitness, snapshot

from bitwitness.errors import ExitCode

MIB = 1 << 20
_SGDISK_ROW = re.compile(r"^\s+(\d+)\s+(\d+)\s+(\d+)\s")


def _run(*args: str | Path) -> str:
    """What the tool says, on either stream (sgdisk warns on stderr)."""
    done = subprocess.run([str(a) for a in args], capture_output=True, text=True, check=False)
    return done.stdout + done.stderr


def _disk(folder: Path, name: str, *extra: str) -> Path:
    """A 64 MiB GPT disk: partitions 3, 2, 1 out of order, a FAT in partition 1."""
    require_tool("sgdisk", "mkfs.vfat", "mcopy", "fls", "mmls")
    image = folder / f"{name}.img"
    subprocess.run(["truncate", "-s", str(64 * MIB), str(image)], check=True)
    subprocess.run(["sgdisk", *extra, "-n", "3:2048:+4M", "-n", "1:20480:+8M", "-t", "1:0700",
                    "-n", "2:10240:+2M", str(image)], check=True, capture_output=True)
    subprocess.run(["mkfs.vfat", "-F", "12", "--offset", "20480", str(image), "8192"],
                   check=True, capture_output=True)
    note = folder / "NOTE.TXT"
    note.write_bytes(b"in partition 1\n")
    subprocess.run(["mcopy", "-i", f"{image}@@{20480 * 512}", str(note), "::/NOTE.TXT"],
                   check=True, env={"MTOOLS_SKIP_CHECK": "1"})
    return image


def _sgdisk_table(image: Path) -> dict[int, tuple[int, int]]:
    """{entry number: (first, last)} of the table sgdisk loaded."""
    return {int(m.group(1)): (int(m.group(2)), int(m.group(3)))
            for line in _run("sgdisk", "-p", image).splitlines()
            if (m := _SGDISK_ROW.match(line))}


def _ours(image: Path) -> tuple[dict[int, tuple[int, int]], str, dict]:
    result = run_bitwitness("partitions", "--json", image)
    assert result.exit_code == ExitCode.OK, result.stderr
    doc = result.json()
    rows = {int(p["slot"]) + 1: (p["start"], p["end"]) for p in doc["partitions"]
            if p["kind"] == "partition"}
    return rows, result.stderr, doc


def _poke(image: Path, offset: int, data: bytes) -> None:
    image.chmod(0o644)
    with image.open("r+b") as handle:
        handle.seek(offset)
        handle.write(data)


def _fix_primary_crcs(image: Path) -> None:
    """Recompute the primary header's two CRC32s over what it now holds (a table altered
    by someone who knew to make it check out)."""
    with image.open("r+b") as handle:
        handle.seek(512)
        head = bytearray(handle.read(92))
        handle.seek(1024)
        struct.pack_into("<I", head, 88, zlib.crc32(handle.read(128 * 128)))
        struct.pack_into("<I", head, 16, 0)
        struct.pack_into("<I", head, 16, zlib.crc32(bytes(head)))
        handle.seek(512)
        handle.write(head)


def test_an_altered_primary_entry_is_said_and_the_backup_read(tmp_path: Path) -> None:
    image = _disk(tmp_path, "altered")
    _poke(image, 1024 + 32, struct.pack("<Q", 21000))  # entry 1 starts later; CRCs stale
    image.chmod(0o444)
    before = snapshot([image])
    assert "CRC mismatch" in _run("sgdisk", "-v", image)
    assert re.search(r"^007:\s+000\s+0*21000\s", _run("mmls", image), re.M)  # mmls: the lie
    rows, said, doc = _ours(image)
    assert rows == _sgdisk_table(image)
    assert rows[1] == (20480, 36863)
    assert "the primary GPT is damaged" in said
    assert "entry 1: sectors 20480-36863 in the backup, sectors 21000-36863" in said
    assert doc["notes"]
    assert "backup GPT (sector 131071)" in doc["notes"][0]
    index = next(p["index"] for p in doc["partitions"] if p["slot"] == "000")
    listing = run_bitwitness("ls", image, "-p", str(index))
    assert listing.exit_code == ExitCode.OK, listing.stderr
    assert "NOTE.TXT" in listing.stdout
    assert "the primary GPT is damaged" in listing.stderr  # every command says it
    assert "NOTE.TXT" in _run("fls", "-o", "20480", image)
    assert snapshot([image]) == before


def test_a_broken_primary_header_is_said(tmp_path: Path) -> None:
    image = _disk(tmp_path, "broken")
    _poke(image, 512, b"XXXXXXXX")
    image.chmod(0o444)
    assert "invalid main GPT header" in _run("sgdisk", "-v", image)
    rows, said, _ = _ours(image)
    assert rows == _sgdisk_table(image)
    assert "the primary GPT is missing (no signature at sector 1)" in said
    assert "the partitions shown are the backup's" in said


def test_a_backup_that_differs_from_a_sound_primary_is_said(tmp_path: Path) -> None:
    image = _disk(tmp_path, "backup")
    table = 131039 * 512  # the backup's entry array (sgdisk: 32 sectors before the header)
    _poke(image, table + 32, struct.pack("<Q", 21000))
    image.chmod(0o444)
    assert "Backup partition table: ERROR" in _run("sgdisk", "-v", image)
    rows, said, _ = _ours(image)
    assert rows == _sgdisk_table(image)  # sgdisk, as firmware, reads the sound primary
    assert "the backup GPT at sector 131071 is damaged" in said


def test_a_hybrid_mbr_names_the_partitions_only_its_gpt_lists(tmp_path: Path) -> None:
    image = _disk(tmp_path, "hybrid")
    subprocess.run(["sgdisk", "-h", "1:3", str(image)], check=True, capture_output=True)
    _poke(image, 512, b"XXXXXXXX")  # the primary header gone: TSK settles for the MBR
    image.chmod(0o444)
    result = run_bitwitness("partitions", "--json", image)
    assert result.exit_code == ExitCode.OK, result.stderr
    assert result.json()["scheme"] == "dos"
    gpt_only = re.search(r"^\d{3}:\s+001\s+0*(\d+)\s+0*(\d+)\s", _run("mmls", "-t", "gpt",
                                                                        image), re.M)
    assert gpt_only is not None
    assert (f"also lists entry 2 (sectors {int(gpt_only.group(1))}-{int(gpt_only.group(2))})"
            in result.stderr)


def test_slots_of_a_table_longer_than_128_entries_are_the_entries_numbers(
        tmp_path: Path) -> None:
    """TSK counts slots in 8 bits (``mmls`` prints entry 130 as 4294967169): the slot is the
    entry's number as sgdisk gives it, less one, as for every GPT."""
    require_tool("sgdisk")
    image = tmp_path / "long.img"
    subprocess.run(["truncate", "-s", str(64 * MIB), str(image)], check=True)
    subprocess.run(["sgdisk", "-o", "--resize-table=256", "-n", "200:4096:+4M",
                    "-n", "130:2048:+1M", "-n", "1:20480:+2M", str(image)],
                   check=True, capture_output=True)
    rows, _, _ = _ours(image)
    assert rows == _sgdisk_table(image)
    assert set(rows) == {1, 130, 200}


def test_an_entry_that_ends_before_it_starts_is_not_a_huge_partition(tmp_path: Path) -> None:
    image = _disk(tmp_path, "backwards")
    _poke(image, 1024 + 32, struct.pack("<QQ", 20480, 10000))
    _fix_primary_crcs(image)
    image.chmod(0o444)
    assert "20480" in _run("sgdisk", "-p", image)  # sgdisk lists it (16.0 EiB)
    result = run_bitwitness("partitions", "--json", image)
    assert result.exit_code == ExitCode.OK, result.stderr
    (row,) = [p for p in result.json()["partitions"] if p["slot"] == "000"]
    assert (row["start"], row["length"]) == (20480, 0)
    assert all(p["end"] < 1 << 63 and p["length"] < 1 << 63
               for p in result.json()["partitions"])
    assert "GPT entry 1 ends at sector 10000, before it starts (sector 20480)" in result.stderr
    assert "runs past the end" not in result.stderr


@pytest.mark.parametrize("damage", ["none", "header"])
def test_a_sound_gpt_says_nothing(tmp_path: Path, damage: str) -> None:
    """No note where both copies check out and agree (the common case stays quiet); the
    image cut short is said once, by its own warning, not as a damaged backup."""
    image = _disk(tmp_path, "sound")
    if damage == "header":
        subprocess.run(["truncate", "-s", str(48 * MIB), str(image)], check=True)
    _, said, doc = _ours(image)
    assert doc["notes"] == []
    assert "GPT" not in said or damage == "header"
    assert "damaged" not in said


def test_a_partition_name_cannot_forge_rows(tmp_path: Path) -> None:
    """A GPT name is evidence: a line break in it is shown as ``^`` (as names are), so that
    it cannot print rows of its own; JSON keeps it as stored."""
    require_tool("sgdisk")
    image = tmp_path / "named.img"
    subprocess.run(["truncate", "-s", str(20 * MIB), str(image)], check=True)
    forged = "Basic\n    9  partition   004"
    subprocess.run(["sgdisk", "-n1:2048:+8M", f"-c1:{forged}", str(image)], check=True,
                   capture_output=True)
    text = run_bitwitness("partitions", image).stdout
    assert "Basic^    9  partition   004" in text
    assert not any(line.startswith("    9  partition") for line in text.splitlines())
    doc = run_bitwitness("partitions", "--json", image).json()
    assert any(p["description"] == forged for p in doc["partitions"])
