"""FAT damage that made BitWitness give another file's bytes, or repeated ones, without a word.

* Two 8.3 entries of the same letters (``CASE.TXT``, and ``case.txt`` by the NT lower-case
  flag) where TSK lists only one: ``/case.txt`` opened TSK's ``CASE.TXT`` (its name matched
  ignoring case before the raw directory's exact name was looked at), so ``cat`` printed the
  other file's content with exit 0. The exact name now wins wherever it is listed.
* A loop in the FAT (``fsck.fat``: "Circular cluster chain"): TSK reads the same cluster again
  until the size is covered; ``cat`` and ``export`` gave those bytes as the file's, exit 0.
  Now a doubt says how many bytes are clusters read again (exit 1, export DOUBTED).
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
from pathlib import Path

from conftest import require_tool, run_bitwitness

from bitwitness.errors import ExitCode

ROOT_DIR = 67584  # FAT16, 32 MiB, 4 sectors a cluster: the root folder's first byte


def _run(*args: str | Path) -> str:
    env = {**os.environ, "MTOOLS_SKIP_CHECK": "1"}
    return subprocess.run([str(a) for a in args], capture_output=True, check=True, text=True,
                          env=env).stdout


def _fat16(image: Path, files: dict[str, bytes]) -> None:
    require_tool("mkfs.fat", "mcopy")
    image.write_bytes(b"")
    os.truncate(image, 32 << 20)
    _run("mkfs.fat", "-F", "16", "-s", "4", image)
    for name, data in files.items():
        source = image.parent / f"src-{name}"
        source.write_bytes(data)
        _run("mcopy", "-i", image, source, f"::{name}")


def test_an_exact_name_wins_over_another_entry_of_the_same_letters(tmp_path: Path) -> None:
    image = tmp_path / "case.img"
    _fat16(image, {"LO.TXT": b"LOWER-CONTENT\n", "UP.TXT": b"UPPER-CONTENT\n"})
    with image.open("r+b") as fh:  # LO.TXT -> "case.txt" (NT lower-case flags), chain broken
        fh.seek(ROOT_DIR)
        fh.write(b"CASE    TXT")
        fh.seek(ROOT_DIR + 12)
        fh.write(b"\x18")
        fh.seek(ROOT_DIR + 26)
        fh.write(struct.pack("<H", 0xFFF0))
        fh.seek(ROOT_DIR + 32)  # UP.TXT -> CASE.TXT
        fh.write(b"CASE    TXT")
    require_tool("fls", "fsck.fat")
    assert "CASE.TXT" in _run("fls", image)
    checked = subprocess.run(["fsck.fat", "-n", str(image)], capture_output=True, text=True,
                             check=False).stdout
    assert "beyond limit" in checked.lower() or "start cluster" in checked.lower(), checked
    upper = run_bitwitness("cat", image, "/CASE.TXT")
    assert upper.exit_code == ExitCode.OK, upper.stderr
    assert upper.output == b"UPPER-CONTENT\n"
    lower = run_bitwitness("cat", image, "/case.txt")
    assert lower.output == b""  # its chain is broken: nothing of UP.TXT's content
    assert lower.exit_code == ExitCode.EVIDENCE, lower.stderr
    assert "cluster chain breaks" in lower.stderr
    stat = run_bitwitness("stat", image, "/case.txt", "--json")
    assert stat.json()["inode"] == "3"
    ambiguous = run_bitwitness("cat", image, "/Case.txt")
    assert ambiguous.exit_code == ExitCode.USAGE
    assert "names more than one entry" in ambiguous.stderr


def test_a_looping_chain_is_a_doubt_not_the_content(tmp_path: Path) -> None:
    image = tmp_path / "loop.img"
    data = b"A" * 2048 + b"B" * 346
    _fat16(image, {"A.BIN": data, "OK.BIN": b"C" * 5000})
    first_fat, second_fat = 4 * 512, 68 * 512
    with image.open("r+b") as fh:  # A.BIN's first cluster (2) points at itself, in both FATs
        for fat in (first_fat, second_fat):
            fh.seek(fat + 2 * 2)
            fh.write(struct.pack("<H", 2))
    require_tool("fsck.fat", "icat", "fls")
    checked = subprocess.run(["fsck.fat", "-n", str(image)], capture_output=True, text=True,
                             check=False).stdout
    assert "Circular cluster chain" in checked
    inode = next(line.split()[1].rstrip(":") for line in _run("fls", image).splitlines()
                 if line.endswith("A.BIN"))
    icat = subprocess.run(["icat", str(image), inode], capture_output=True, check=True).stdout
    assert icat == b"A" * len(data)  # TSK reads cluster 2 again, without a word
    cat = run_bitwitness("cat", image, "/A.BIN")
    assert cat.exit_code == ExitCode.EVIDENCE
    assert "loop in the FAT): 346 of its bytes" in cat.stderr
    out = tmp_path / "out"
    export = run_bitwitness("export", image, "/", "--to", out)
    assert export.exit_code == ExitCode.EVIDENCE
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert [f["source"] for f in manifest["failed"]] == ["/A.BIN"]
    assert manifest["failed"][0]["reason"].startswith("exported, but its cluster chain")
    healthy = run_bitwitness("cat", image, "/OK.BIN")  # a chain of two clusters, no loop
    assert healthy.exit_code == ExitCode.OK, healthy.stderr
    assert healthy.output == b"C" * 5000


def test_the_boot_sector_of_a_4096_byte_sector_volume_is_read(tmp_path: Path) -> None:
    """On FAT of 4096-byte sectors TSK gives ``$MBR`` (512 bytes) a run of no sector: icat
    writes nothing, and ``cat`` failed, so ``export --all`` of a healthy volume exited 1 with
    "1 file(s) not exported". Its bytes are the volume's first 512."""
    require_tool("mkfs.fat", "mcopy", "fls", "icat")
    image = tmp_path / "k.img"
    image.write_bytes(b"")
    os.truncate(image, 64 << 20)
    _run("mkfs.fat", "-F", "16", "-S", "4096", "-s", "1", image)
    (tmp_path / "a.txt").write_bytes(b"hi\n")
    _run("mcopy", "-i", image, tmp_path / "a.txt", "::A.TXT")
    inode = next(line.split()[1].rstrip(":") for line in _run("fls", image).splitlines()
                 if line.endswith("$MBR"))
    icat = subprocess.run(["icat", str(image), inode], capture_output=True, check=False)
    assert icat.stdout == b""  # TSK reads none of it
    cat = run_bitwitness("cat", image, "/$MBR")
    assert cat.exit_code == ExitCode.OK, cat.stderr
    assert cat.output == image.read_bytes()[:512]
    out = tmp_path / "out"
    export = run_bitwitness("export", image, "/", "--all", "--to", out)
    assert export.exit_code == ExitCode.OK, export.stderr
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["failed"] == []


def test_fat_copies_that_differ_are_said(tmp_path: Path) -> None:
    """The second FAT holding another value for a cluster (fsck.fat: "FATs differ ... Using
    first FAT") was read without a word; every browsing command now warns, naming how many
    cluster entries differ. A healthy volume says nothing."""
    require_tool("fsck.fat")
    image = tmp_path / "f2.img"
    _fat16(image, {"A.TXT": b"hi\n"})
    assert "FAT copies" not in run_bitwitness("ls", image).stderr
    with image.open("r+b") as fh:
        boot = fh.read(512)
        reserved = struct.unpack_from("<H", boot, 14)[0]
        size = struct.unpack_from("<H", boot, 22)[0]
        fh.seek((reserved + size) * 512 + 7 * 2)  # cluster 7's entry in the second copy
        fh.write(struct.pack("<H", 0x1234))
    checked = subprocess.run(["fsck.fat", "-n", str(image)], capture_output=True, text=True,
                             check=False).stdout
    assert "FATs differ" in checked
    listed = run_bitwitness("ls", image)
    assert listed.exit_code == ExitCode.OK, listed.stderr
    assert "two FAT copies differ in 1 cluster entry" in listed.stderr
    assert "A.TXT" in listed.stdout
