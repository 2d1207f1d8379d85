"""exFAT whose allocation bitmap is damaged (a zeroed sector; ``fsck.exfat -n`` reports the
volume corrupted): The Sleuth Kit takes allocation from the bitmap, so every live file became
"deleted" (``ls`` listed none of them, exit 0, no word) and a fragmented live file was read as
contiguous clusters from its first one, other files' bytes with exit 0. A file whose directory
entry is in use (0x85) is now live, read along its FAT chain, with a doubt naming the bitmap
(report/browse/exfatraw.py).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import fsimages
import pytest
from conftest import require_tool, run_bitwitness

from bitwitness.errors import ExitCode

PIECE = 40000


def _written(folder: Path) -> tuple[Path, dict[str, bytes]]:
    """exFAT (exfat-fuse) holding f0..f5 with f1 and f3 deleted, then frag.bin written into
    the holes they left (fragmented), and live.txt."""
    image = folder / "x.img"
    files: dict[str, bytes] = {}
    try:
        with fsimages.fresh_exfat(image, 64 << 20, folder / "m") as mounted:
            for n in range(6):
                (mounted / f"f{n}").write_bytes(bytes([65 + n]) * PIECE)
            os.sync()
            for n in (1, 3):
                (mounted / f"f{n}").unlink()
            os.sync()
            files = {"frag.bin": os.urandom(150000), "live.txt": b"hello\n",
                     "f0": b"A" * PIECE, "f5": b"F" * PIECE}
            (mounted / "frag.bin").write_bytes(files["frag.bin"])
            (mounted / "live.txt").write_bytes(files["live.txt"])
    except fsimages.Unavailable as exc:
        pytest.skip(str(exc))
    return image, files


def _bitmap_sector(image: Path, listing: str) -> int:
    """The first sector of the allocation bitmap, as istat gives ``$ALLOC_BITMAP``'s."""
    stat = subprocess.run(["istat", str(image), _inode(listing, "$ALLOC_BITMAP")],
                          capture_output=True, text=True, check=True).stdout.splitlines()
    return int(stat[stat.index("Sectors:") + 1].split()[0])


def _inode(listing: str, name: str) -> str:
    line = next(line for line in listing.splitlines() if line.endswith(f"\t{name}"))
    return line.split(":", 1)[0].split()[-1]


def test_live_files_stay_live_and_are_read_along_their_chain(tmp_path: Path) -> None:
    require_tool("fls", "istat", "icat", "fsck.exfat")
    image, files = _written(tmp_path)
    intact = subprocess.run(["fls", str(image)], capture_output=True, text=True,
                            check=True).stdout
    assert "*" not in intact.split("$OrphanFiles")[0]  # nothing deleted before the damage
    sector = _bitmap_sector(image, intact)
    frag = _inode(intact, "frag.bin")
    clean = tmp_path / "clean.img"
    clean.write_bytes(image.read_bytes())
    with image.open("r+b") as fh:
        fh.seek(sector * 512)
        fh.write(bytes(512))
    checked = subprocess.run(["fsck.exfat", "-n", str(image)], capture_output=True, text=True,
                             check=False)
    assert checked.returncode != 0  # fsck.exfat finds the volume damaged
    damaged = subprocess.run(["fls", str(image)], capture_output=True, text=True,
                             check=True).stdout
    assert f"* {frag}:" in damaged  # TSK: deleted
    icat = subprocess.run(["icat", str(image), frag], capture_output=True, check=True).stdout
    assert icat != files["frag.bin"]  # TSK reads contiguous clusters: other files' bytes
    listed = run_bitwitness("ls", image)
    assert listed.exit_code == ExitCode.OK, listed.stderr
    for name in files:
        assert f"r/r {_inode(intact, name)}:\t{name}" in listed.stdout
    for name, data in files.items():
        cat = run_bitwitness("cat", image, f"/{name}")
        assert cat.output == data, name
        assert cat.exit_code == ExitCode.EVIDENCE, name
        assert "allocation bitmap marks it free" in cat.stderr
        intact_cat = run_bitwitness("cat", clean, f"/{name}")  # no damage, no doubt
        assert (intact_cat.exit_code, intact_cat.output) == (ExitCode.OK, data), name


def test_a_deleted_file_whose_first_cluster_was_taken_is_not_recovered(tmp_path: Path) -> None:
    """TSK reads a deleted exFAT file as clusters from its first one: once a newer file has
    taken them, icat gives that file's bytes (and stops short) under the deleted name, and
    BitWitness exported them as "exported, but only 4,096 of its 10,500 bytes". The allocation
    bitmap says the first cluster is taken: not recoverable (export lists it under failed,
    nothing written), as on FAT; a deleted file whose clusters are still free is recovered."""
    require_tool("fls", "icat")
    image = tmp_path / "r.img"
    pieces = {n: (b"XFRAG%d-" % n) * 1500 for n in range(6)}
    try:
        with fsimages.fresh_exfat(image, 64 << 20, tmp_path / "m") as mounted:
            for n, data in pieces.items():
                (mounted / f"f{n}.bin").write_bytes(data)
            os.sync()
            for n in (1, 3):
                (mounted / f"f{n}.bin").unlink()
            os.sync()
            (mounted / "big.bin").write_bytes(os.urandom(300000))  # into f1's and f3's holes
            os.sync()
            (mounted / "f5.bin").unlink()  # nothing written after: its clusters stay free
    except fsimages.Unavailable as exc:
        pytest.skip(str(exc))
    listing = subprocess.run(["fls", str(image)], capture_output=True, text=True,
                             check=True).stdout
    taken = _inode(listing, "f3.bin")
    assert f"* {taken}:" in listing
    icat = subprocess.run(["icat", str(image), taken], capture_output=True, check=True).stdout
    assert icat != pieces[3][:len(icat)]  # the newer file's bytes
    out = tmp_path / "out"
    export = run_bitwitness("export", image, "/", "--deleted", "--to", out)
    assert export.exit_code == ExitCode.EVIDENCE
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    failed = {f["source"]: f["reason"] for f in manifest["failed"]}
    assert failed["/f3.bin"].startswith("not recoverable: the first cluster of the deleted file")
    recovered = {f["source"]: f for f in manifest["files"]}
    assert "/f3.bin" not in recovered
    assert (out / recovered["/f5.bin"]["target"]).read_bytes() == pieces[5]
    cat = run_bitwitness("cat", image, "/f3.bin")
    assert cat.exit_code == ExitCode.EVIDENCE
    assert "first cluster of the deleted file is allocated again" in cat.stderr


def test_a_stream_extension_outside_the_heap_is_named(tmp_path: Path) -> None:
    """Bitmap zeroed and a live file's stream extension naming cluster 0 (TSK drops the name,
    lists an orphan of size 0): cat wrote nothing, exit 1, saying the file was "read along its
    FAT chain". It now names the cluster outside the heap and the bytes recorded."""
    require_tool("fls")
    image, _files = _written(tmp_path)
    intact = subprocess.run(["fls", str(image)], capture_output=True, text=True,
                            check=True).stdout
    inode = _inode(intact, "live.txt")
    sector = _bitmap_sector(image, intact)
    data = bytearray(image.read_bytes())
    data[sector * 512:sector * 512 + 512] = bytes(512)
    at = data.find("live.txt".encode("utf-16-le")) - 2 - 64  # its file entry (0x85)
    assert data[at] == 0x85
    data[at + 32 + 20:at + 32 + 24] = bytes(4)  # the stream extension's first cluster: 0
    fsimages.exfat_set_checksum(data, at)
    image.write_bytes(bytes(data))
    cat = run_bitwitness("cat", "--inode", inode, image)
    assert cat.exit_code == ExitCode.EVIDENCE, cat.stderr
    assert cat.output == b""
    assert "from cluster 0, outside the cluster heap" in cat.stderr
    assert f"inode {inode}" in cat.stderr
