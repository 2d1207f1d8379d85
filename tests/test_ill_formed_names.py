"""NTFS, FAT and exFAT names that are not well-formed UTF-16 (a lone surrogate half: all store
any 16-bit units, and such a name hides a file from tools that cannot show it).

The Sleuth Kit turns a lone half into ``^`` and drops the unit after it, so ``same<D800>.txt``
and ``same<DBFF>.txt`` both list as ``same^txt`` in ``fls``: two files under one wrong name.
BitWitness takes the name from the ``$FILE_NAME`` attribute and keeps the lone half as its
WTF-8 bytes (shown ``\\xed\\xa0\\x80``, exported as ``%ED%A0%80``): each file keeps a name of
its own, which names it back. A name TSK shows with ``^`` for a control character stays as
``fls`` prints it. FAT long names (UTF-16 too) are read from the raw directory the same way.

The volume is made by ``mkntfs`` and written through ``ntfs-3g``; the names' units are then
changed in place in the image (the ``$FILE_NAME`` attribute and the folder's index hold the
name, both rewritten) - the truth is the units written here, and ``fls`` reading the changed
names (as ``same^txt``) shows the change took.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import require_root, require_tool, run_bitwitness

#: (name written through ntfs-3g, the unit that replaces its "1", the content)
NAMES = (("same1.txt", 0xD800, b"high half\n"), ("same2.txt", 0xDBFF, b"other high half\n"),
         ("tail1.txt", 0xDC00, b"low half\n"))


def _wtf8(unit: int) -> str:
    """How BitWitness shows a lone half: its WTF-8 bytes as ``\\xNN``."""
    return "".join(f"\\x{b:02x}" for b in chr(unit).encode("utf-8", "surrogatepass"))


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_root()
    require_tool("mkntfs", "ntfs-3g", "fls")
    if not Path("/dev/fuse").exists():
        pytest.skip("no /dev/fuse")
    work = tmp_path_factory.mktemp("ill-formed")
    path, mount = work / "ntfs.img", work / "mnt"
    mount.mkdir()
    with path.open("wb") as out:
        out.truncate(16 << 20)
    subprocess.run(["mkntfs", "-q", "-F", "-Q", path], check=True, capture_output=True)
    subprocess.run(["ntfs-3g", path, mount], check=True)
    try:
        for name, _, content in NAMES:
            (mount / name).write_bytes(content)
        (mount / "ctl\x01.txt").write_bytes(b"control\n")
    finally:
        subprocess.run(["sync"], check=False)
        subprocess.run(["umount", mount], check=True)
    data = bytearray(path.read_bytes())
    counts = dict.fromkeys((n for n, _, _ in NAMES), 0)
    for kind, size in ((b"FILE", 1024), (b"INDX", 4096)):
        for at in range(0, len(data) - size + 1, 512):
            if data[at:at + 4] == kind:
                data[at:at + size] = _renamed(bytes(data[at:at + size]), counts)
    assert all(c >= 2 for c in counts.values()), counts  # $FILE_NAME and the index entry
    path.write_bytes(bytes(data))
    return path


def _renamed(record: bytes, counts: dict[str, int]) -> bytes:
    """``record`` (a FILE or INDX record, protected by its update sequence: the last two bytes
    of each 512-byte sector are kept in an array and replaced by a check value) with each
    name of :data:`NAMES` given its lone half, the update sequence undone and done again."""
    usa_at, usa_count = int.from_bytes(record[4:6], "little"), int.from_bytes(record[6:8],
                                                                             "little")
    out = bytearray(record)
    sectors = [512 * i - 2 for i in range(1, usa_count)]
    for i, end in enumerate(sectors, 1):  # undo: the sectors' own last bytes back
        out[end:end + 2] = out[usa_at + 2 * i:usa_at + 2 * i + 2]
    for name, unit, _ in NAMES:
        old = name.encode("utf-16-le")
        digit = ("1" if "1" in name else "2").encode("utf-16-le")
        new = old.replace(digit, unit.to_bytes(2, "little"))
        counts[name] += out.count(old)
        out = bytearray(bytes(out).replace(old, new))
    check = out[usa_at:usa_at + 2]
    for i, end in enumerate(sectors, 1):  # again: each sector's last bytes into the array
        out[usa_at + 2 * i:usa_at + 2 * i + 2] = out[end:end + 2]
        out[end:end + 2] = check
    return bytes(out)


def _shown(name: str, unit: int) -> str:
    digit = "1" if "1" in name else "2"
    return name.replace(digit, _wtf8(unit))


def test_tsk_loses_the_names(image: Path) -> None:
    """The construction took: fls reads the changed names, and makes two of them one."""
    listed = subprocess.run(["fls", image], capture_output=True, check=True,
                            text=True).stdout
    assert listed.count("\tsame^txt") == 2


def test_each_file_keeps_its_own_name(image: Path) -> None:
    result = run_bitwitness("ls", image)
    assert result.exit_code == 0, result.stderr
    names = {line.split("\t", 1)[1] for line in result.stdout.splitlines()}
    for name, unit, _ in NAMES:
        assert _shown(name, unit) in names
    assert "same^txt" not in names
    assert "ctl^.txt" in names  # a control character stays as fls prints it


def test_the_names_lead_back_to_each_files_bytes(image: Path, tmp_path: Path) -> None:
    for name, unit, content in NAMES:
        shown = _shown(name, unit)
        cat = subprocess.run([sys.executable, "-m", "bitwitness", "cat", image, "/" + shown],
                             capture_output=True, check=False)
        assert (cat.returncode, cat.stdout) == (0, content), shown
        stat = run_bitwitness("stat", "--json", image, "/" + shown).json()
        assert [f["name"] for f in stat["file_names"]] == [shown]
    out = tmp_path / "out"
    result = run_bitwitness("export", image, "/", "--to", out)
    assert result.exit_code == 0, result.stderr
    for name, unit, content in NAMES:
        written = os.fsencode(name).replace(b"1" if "1" in name else b"2",
                                            chr(unit).encode("utf-8", "surrogatepass"))
        target = out / "".join(f"%{b:02X}" if b >= 0x80 else chr(b) for b in written)
        assert target.read_bytes() == content
    manifest = json.loads((out / "manifest.json").read_text())
    assert {f["size"] for f in manifest["files"] if f["source"].startswith("/same")} == {
        len(NAMES[0][2]), len(NAMES[1][2])}


@pytest.fixture(scope="module")
def fat(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A FAT16 by mkfs.fat and mcopy holding two long names, each then given a lone half in
    its long-name entry (no checksum covers a long name's units: the 8.3 checksum stays)."""
    require_tool("mkfs.fat", "mcopy", "fls")
    work = tmp_path_factory.mktemp("ill-formed-fat")
    path = work / "fat.img"
    with path.open("wb") as out:
        out.truncate(20 << 20)
    subprocess.run(["mkfs.fat", "-F", "16", path], check=True, capture_output=True)
    for name, _, content in LONG:
        (work / name).write_bytes(content)
        subprocess.run(["mcopy", "-i", path, work / name, "::/"], check=True)
    data = bytearray(path.read_bytes())
    for name, unit, _ in LONG:
        old = name[:5].encode("utf-16-le")  # the first five units: one piece of the entry
        at = data.find(old)
        assert at > 0, name
        data[at + 8:at + 10] = unit.to_bytes(2, "little")  # the fifth unit
    path.write_bytes(bytes(data))
    return path


#: FAT long names (the fifth character is replaced by the unit), their content
LONG = (("same1 long.txt", 0xD800, b"one\n"), ("same2 long.txt", 0xDBFF, b"two\n"))


def test_fat_long_names_keep_their_units(fat: Path) -> None:
    listed = subprocess.run(["fls", fat], capture_output=True, check=True, text=True).stdout
    assert listed.count("\tsame^long.txt") == 2  # TSK: both the same name, a unit dropped
    result = run_bitwitness("ls", fat)
    assert result.exit_code == 0, result.stderr
    assert "a long name that is not well-formed UTF-16" in result.stderr
    for name, unit, content in LONG:
        shown = name[:4] + _wtf8(unit) + name[5:]
        assert f"\t{shown}" in result.stdout
        cat = subprocess.run([sys.executable, "-m", "bitwitness", "cat", fat, "/" + shown],
                             capture_output=True, check=False)
        assert (cat.returncode, cat.stdout) == (0, content), shown


def _set_checksum(entries: bytes) -> int:
    """exFAT's SetChecksum (the file entry's own two bytes left out), as the spec gives it."""
    total = 0
    for index, byte in enumerate(entries):
        if index not in (2, 3):
            total = (((total << 15) | (total >> 1)) + byte) & 0xFFFF
    return total


@pytest.fixture(scope="module")
def exfat(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An exFAT by mkfs.exfat, written through exfat-fuse on a loop device, two long names
    then given a lone half in their file name entry and the entry set's checksum redone."""
    require_root()
    require_tool("mkfs.exfat", "mount.exfat-fuse", "losetup", "fls")
    work = tmp_path_factory.mktemp("ill-formed-exfat")
    path, mount = work / "exfat.img", work / "mnt"
    mount.mkdir()
    with path.open("wb") as out:
        out.truncate(4 << 20)
    subprocess.run(["mkfs.exfat", path], check=True, capture_output=True)
    loop = subprocess.run(["losetup", "-f", "--show", path], capture_output=True, text=True,
                          check=True).stdout.strip()
    try:
        if subprocess.run(["mount.exfat-fuse", loop, mount], capture_output=True,
                          check=False).returncode != 0:
            pytest.skip("exfat-fuse cannot mount here")
        try:
            for name, _, content in LONG:
                (mount / name).write_bytes(content)
        finally:
            subprocess.run(["sync"], check=False)
            subprocess.run(["umount", mount], check=True)
    finally:
        subprocess.run(["losetup", "-d", loop], check=False)
    data = bytearray(path.read_bytes())
    for name, unit, _ in LONG:
        at = data.find(name[:5].encode("utf-16-le"))
        assert at > 0, name
        assert data[at - 2] == 0xC1, name  # the first file name entry
        data[at + 8:at + 10] = unit.to_bytes(2, "little")
        first = at - 2 - 64  # file entry, stream extension, then the name
        assert data[first] == 0x85
        end = first + 32 * (data[first + 1] + 1)
        data[first + 2:first + 4] = _set_checksum(bytes(data[first:end])).to_bytes(2, "little")
    path.write_bytes(bytes(data))
    return path


def test_exfat_names_keep_their_units(exfat: Path) -> None:
    listed = subprocess.run(["fls", exfat], capture_output=True, check=True, text=True).stdout
    assert listed.count("\tsame^long.txt") == 2  # TSK: both the same name, a unit dropped
    result = run_bitwitness("ls", exfat)
    assert result.exit_code == 0, result.stderr
    for name, unit, content in LONG:
        shown = name[:4] + _wtf8(unit) + name[5:]
        assert f"\t{shown}" in result.stdout
        cat = subprocess.run([sys.executable, "-m", "bitwitness", "cat", exfat, "/" + shown],
                             capture_output=True, check=False)
        assert (cat.returncode, cat.stdout) == (0, content), shown
