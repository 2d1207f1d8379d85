"""VMDK SEsparse snapshots (ESXi 6.5+): our reader against QEMU, the one independent reader.

The snapshots are written by ``tests/builders/vmdk_sesparse.py`` (from QEMU's public
description; no tool here writes SEsparse) over bases written by ``qemu-img convert``
(monolithicFlat, monolithicSparse) or by ``tests/builders/vmdk_cowd.py`` (an ESX ``vmfs``
flat disk). The judge of the media is QEMU's vmdk driver: ``qemu-img convert -O raw`` of the
snapshot's descriptor, hashed by ``md5sum``, must equal what the test wrote (parent bytes under
unallocated grains, zeros for zero and unmapped grains) and what BitWitness reads; ``verify
--second-reader`` re-reads it through ``qemu-nbd``; ``convert`` output is judged by ``md5sum``,
``ewfverify`` and libewf. Damaged snapshots fail in one line with the documented exit code.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from builders.vmdk_cowd import build_vmfs_flat
from builders.vmdk_sesparse import GRAIN, UNMAPPED, ZERO, Layout, build_sesparse
from conftest import pyewf_media, require_tool, run_bitwitness
from contract import check_stream_contract

from bitwitness.errors import ExitCode
from bitwitness.image import open_image

MiB = 1 << 20
CAPACITY = 32 * MiB  # two grain tables
#: Grains the snapshot holds (a grain number past 4096 in the grains area exercises the
#: entry's split bits), zero and unmapped grains over the parent's non-zero data.
GRAINS: dict[int, bytes | str] = {
    0: b"\x5a" * GRAIN, 5: os.urandom(GRAIN), 6: b"snapshot" * (GRAIN // 8),
    4100: b"\xcc" * GRAIN, 10: ZERO, 11: UNMAPPED, 8191: b"\xdd" * GRAIN,
}
ORDER = [4097, 3, 5000, 0, 7000]


def _run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, check=False)


def _md5sum(path: Path) -> str:
    res = _run("md5sum", path)
    assert res.returncode == 0, res.stderr
    return res.stdout.split()[0]


def _md5sum_of(data: bytes, folder: Path) -> str:
    path = folder / "md5sum.input"
    path.write_bytes(data)
    md5 = _md5sum(path)
    path.unlink()
    return md5


def _qemu_md5(image: Path, folder: Path) -> str:
    out = folder / "qemu.raw"
    res = _run("qemu-img", "convert", "-f", "vmdk", "-O", "raw", image, out)
    assert res.returncode == 0, res.stderr
    md5 = _md5sum(out)
    out.unlink()
    return md5


def _parent_media() -> bytes:
    data = bytearray(os.urandom(CAPACITY))
    data[20 * MiB : 21 * MiB] = bytes(MiB)  # a hole in the parent
    return bytes(data)


def _qemu_base(kind: str) -> Callable[[Path, bytes], Path]:
    def build(folder: Path, media: bytes) -> Path:
        raw = folder / "base.raw"
        raw.write_bytes(media)
        base = folder / "base.vmdk"
        res = _run("qemu-img", "convert", "-f", "raw", "-O", "vmdk", "-o",
                   f"subformat={kind}", raw, base)
        assert res.returncode == 0, res.stderr
        raw.unlink()
        return base
    return build


BASES: dict[str, Callable[[Path, bytes], Path]] = {
    "monolithicFlat": _qemu_base("monolithicFlat"),
    "monolithicSparse": _qemu_base("monolithicSparse"),
    "vmfs": lambda folder, media: build_vmfs_flat(folder, "base", media),
}


def _overlay(media: bytes, grains: dict[int, bytes | str]) -> bytes:
    out = bytearray(media)
    for g, value in grains.items():
        out[g * GRAIN : (g + 1) * GRAIN] = value if isinstance(value, bytes) else bytes(GRAIN)
    return bytes(out)


def _snapshot(folder: Path, base_kind: str = "monolithicFlat") -> tuple[Path, bytes, bytes]:
    parent_media = _parent_media()
    base = BASES[base_kind](folder, parent_media)
    top = build_sesparse(folder, "snap", CAPACITY, GRAINS, parent=base, order=ORDER)
    return top, parent_media, _overlay(parent_media, GRAINS)


@pytest.mark.parametrize("base_kind", sorted(BASES))
def test_sesparse_snapshot_reads_as_qemu_reads_it(tmp_path: Path, base_kind: str) -> None:
    """The snapshot over each base: QEMU's media is the one the test wrote, and ours is the
    same bytes; unallocated grains (and a whole unallocated grain table) are the parent's,
    zero and unmapped grains zeros over the parent's data."""
    require_tool("qemu-img", "md5sum")
    top, parent_media, expected = _snapshot(tmp_path, base_kind)
    assert _qemu_md5(top, tmp_path) == _md5sum_of(expected, tmp_path)
    with open_image(top) as stream:
        assert stream.info.format == "vmdk"
        assert stream.info.details["parents"] == [str(tmp_path / "base.vmdk")]
        for grain in (10, 11):
            assert any(parent_media[grain * GRAIN : (grain + 1) * GRAIN])
            assert stream.pread(grain * GRAIN, GRAIN) == bytes(GRAIN)
        assert stream.pread(7 * GRAIN, 3 * GRAIN) == parent_media[7 * GRAIN : 10 * GRAIN]
        assert stream.pread(17 * MiB, MiB) == parent_media[17 * MiB : 18 * MiB]
        check_stream_contract(stream, expected)


def test_sesparse_chain_of_two_snapshots(tmp_path: Path) -> None:
    """ESXi keeps one SEsparse file per snapshot: a snapshot of a snapshot reads through both
    to the base, as QEMU reads the chain."""
    require_tool("qemu-img", "md5sum")
    first, _parent, middle = _snapshot(tmp_path)
    second = {5: b"\x77" * GRAIN, 6: ZERO, 8000: b"\x99" * GRAIN}
    top = build_sesparse(tmp_path, "snap2", CAPACITY, second, parent=first, cid=0x2222_2222)
    expected = _overlay(middle, second)
    assert _qemu_md5(top, tmp_path) == _md5sum_of(expected, tmp_path)
    with open_image(top) as stream:
        assert stream.info.details["parents"] == [str(first), str(tmp_path / "base.vmdk")]
        assert stream.pread(0, stream.size) == expected


def test_sesparse_commands(tmp_path: Path) -> None:
    """info, verify (with QEMU through qemu-nbd as the second reader) and convert to raw and
    E01 on a snapshot: every file of the chain listed, the media hash QEMU's."""
    require_tool("qemu-img", "qemu-nbd", "md5sum", "ewfverify")
    top, _parent, expected = _snapshot(tmp_path)
    md5 = _qemu_md5(top, tmp_path)
    info = run_bitwitness("info", top, "--json")
    assert info.exit_code == ExitCode.OK, info.stderr
    assert info.json()["media_size"] == CAPACITY
    res = run_bitwitness("verify", "--second-reader", top, "--json")
    assert res.exit_code == ExitCode.EVIDENCE, res.stderr  # nothing recorded to verify against
    doc = res.json()["images"][0]
    assert doc["verdict"] == "UNVERIFIED"
    assert doc["computed"]["md5"] == md5
    assert doc["second_reader"]["reader"].startswith("qemu-nbd")
    assert doc["second_reader"]["agree"] is True, doc["second_reader"]
    assert [Path(f).name for f in doc["files"]] == [
        "snap.vmdk", "snap-sesparse.vmdk", "base.vmdk", "base-flat.vmdk"]
    raw = run_bitwitness("convert", top, "-o", tmp_path / "out", "--to", "raw", "--json")
    assert raw.exit_code == ExitCode.OK, raw.stderr
    assert _md5sum(tmp_path / "out.raw") == md5
    e01 = run_bitwitness("convert", top, "-o", tmp_path / "ev", "--to", "e01", "--json")
    assert e01.exit_code == ExitCode.OK, e01.stderr
    check = _run("ewfverify", "-q", tmp_path / "ev.E01")
    assert check.returncode == 0, check.stdout + check.stderr
    assert md5 in check.stdout
    assert pyewf_media(tmp_path / "ev.E01") == expected


def _damage(kind: str, extent: Path) -> None:
    lay = Layout(CAPACITY // 512)
    data = bytearray(extent.read_bytes())
    if kind == "truncated-tables":
        del data[(lay.gts[0] + 32) * 512 :]
    elif kind == "grain-past-eof":
        del data[(lay.grains[0] + 8) * 512 :]
    elif kind == "directory-entry":  # a table number beyond the grain-tables area
        data[lay.gd[0] * 512 : lay.gd[0] * 512 + 8] = (0x1000_0000_0FFF_FFFF).to_bytes(8, "little")
    elif kind == "table-entry-kind":  # kind 7 is none of SEsparse's
        at = lay.gts[0] * 512  # table 0 is the one of media grains 4096-8191 (see builder)
        data[at + 4 * 8 : at + 5 * 8] = (7 << 60).to_bytes(8, "little")
    elif kind == "grain-number":  # grain beyond the grains area
        at = lay.gts[0] * 512
        data[at + 4 * 8 : at + 5 * 8] = (3 << 60 | 0xFFFF_FFFF).to_bytes(8, "little")
    elif kind == "volatile-magic":
        data[512:520] = bytes(8)
    elif kind == "directory-offset":
        data[16 * 8 : 17 * 8] = ((1 << 62) // 512).to_bytes(8, "little")
    extent.write_bytes(bytes(data))


@pytest.mark.parametrize("kind", ["truncated-tables", "grain-past-eof", "directory-entry",
                                  "table-entry-kind", "grain-number", "volatile-magic",
                                  "directory-offset"])
def test_damaged_sesparse_fails_closed(tmp_path: Path, kind: str) -> None:
    """A damaged snapshot (tables cut short, a grain past the end of the file, entries
    pointing outside their areas or of no known kind, a bad volatile header, a directory
    offset near 2^62): exit 1 (damaged evidence), no traceback. Damage found at open is one
    line on stderr naming the extent; damage met while reading is verify's CORRUPT verdict
    naming it, and convert renames its output ``*.unusable``."""
    top, _parent, _expected = _snapshot(tmp_path)
    extent = tmp_path / "snap-sesparse.vmdk"
    _damage(kind, extent)
    res = run_bitwitness("verify", top, "--json")
    assert res.exit_code == ExitCode.EVIDENCE, (res.stdout, res.stderr)
    assert "Traceback" not in res.stderr
    if res.stderr.strip():
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1, res.stderr
        said = lines[0]
    else:
        doc = res.json()["images"][0]
        assert doc["verdict"] == "CORRUPT"
        said = " ".join(doc["problems"])
    assert "SEsparse" in said
    assert extent.name in said
    out = tmp_path / "out"
    conv = run_bitwitness("convert", top, "-o", out, "--to", "raw")
    assert conv.exit_code == ExitCode.EVIDENCE, (conv.stdout, conv.stderr)
    assert "Traceback" not in conv.stderr
    assert not (tmp_path / "out.raw").exists()


@pytest.mark.parametrize(("fields", "journal", "says"), [
    ({}, 1, "journal needs replaying"),
    ({3: 16}, 0, "grains of 16 sectors"),
    ({5: 1}, 0, "flags 0x1"),
    ({1: 0x3_0000_0001}, 0, "version 0x300000001"),
], ids=["journal", "grain-size", "flags", "version"])
def test_unsupported_sesparse_refused_by_name(tmp_path: Path, fields: dict[int, int],
                                              journal: int, says: str) -> None:
    """What BitWitness does not read of SEsparse (a journal to replay after an unclean close,
    another grain size, flags, another version) is refused in one line saying so, exit 2."""
    base = BASES["monolithicFlat"](tmp_path, _parent_media())
    top = build_sesparse(tmp_path, "snap", CAPACITY, GRAINS, parent=base, order=ORDER,
                         replay_journal=journal, header_fields=fields)
    for command in ("info", "verify"):
        res = run_bitwitness(command, top)
        assert res.exit_code == ExitCode.USAGE, (command, res.stdout, res.stderr)
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1, res.stderr
        assert says in lines[0]
        assert "snap-sesparse.vmdk" in lines[0]


def test_parent_with_another_cid_is_refused(tmp_path: Path) -> None:
    """A parent whose CID is not the parentCID the snapshot records is not its parent: one
    line naming it, nothing read over it."""
    top, _parent, _expected = _snapshot(tmp_path)
    text = top.read_text()
    cid = text.split("parentCID=")[1][:8]
    top.write_text(text.replace(f"parentCID={cid}", "parentCID=0badc1d0"))
    res = run_bitwitness("info", top)
    assert res.exit_code == ExitCode.EVIDENCE, (res.stdout, res.stderr)
    assert len(res.stderr.strip().splitlines()) == 1
    assert "base.vmdk is not this VMDK's parent" in res.stderr


def test_parent_cid_without_leading_zeros(tmp_path: Path) -> None:
    """QEMU writes a CID without its leading zeros (``CID=ce314c3``), VMware with eight
    digits; the snapshot's ``parentCID=0ce314c3`` names that parent all the same, as QEMU
    (which reads both) agrees."""
    require_tool("qemu-img", "md5sum")
    parent_media = _parent_media()
    base = BASES["monolithicFlat"](tmp_path, parent_media)
    text = base.read_text()
    cid = text.split("\nCID=")[1].split("\n")[0]
    base.write_text(text.replace(f"\nCID={cid}\n", "\nCID=ce314c3\n"))
    top = build_sesparse(tmp_path, "snap", CAPACITY, GRAINS, parent=base, order=ORDER)
    assert "parentCID=0ce314c3" in top.read_text()
    expected = _overlay(parent_media, GRAINS)
    assert _qemu_md5(top, tmp_path) == _md5sum_of(expected, tmp_path)
    with open_image(top) as stream:
        assert stream.pread(0, stream.size) == expected


def test_unallocated_grain_table_reads_the_parent(tmp_path: Path) -> None:
    """A grain table never allocated (directory entry 0) is 16 MiB of the parent, read in
    one step; reads crossing into it from an allocated table's last grain are exact."""
    require_tool("qemu-img", "md5sum")
    parent_media = _parent_media()
    base = BASES["monolithicFlat"](tmp_path, parent_media)
    grains: dict[int, bytes | str] = {4095: b"\x42" * GRAIN, 3: ZERO}
    top = build_sesparse(tmp_path, "snap", CAPACITY, grains, parent=base)
    expected = _overlay(parent_media, grains)
    assert _qemu_md5(top, tmp_path) == _md5sum_of(expected, tmp_path)
    with open_image(top) as stream:
        edge = 16 * MiB
        assert stream.pread(edge - 100, 300) == expected[edge - 100 : edge + 200]
        start = edge - GRAIN
        assert stream.pread(start, 3 * MiB) == expected[start : start + 3 * MiB]
        assert stream.pread(0, stream.size) == expected


def test_missing_parent_is_one_line_naming_it(tmp_path: Path) -> None:
    """A snapshot whose parent is not beside it: bad input, one line naming the parent the
    descriptor records, exit 2, nothing written (as for every other kind of chain)."""
    top, _parent, _expected = _snapshot(tmp_path)
    (tmp_path / "base.vmdk").rename(tmp_path / "elsewhere.vmdk")
    before = sorted(p.name for p in tmp_path.iterdir())
    for command in ("info", "verify"):
        res = run_bitwitness(command, top)
        assert res.exit_code == ExitCode.USAGE, (command, res.stdout, res.stderr)
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1, res.stderr
        assert "'base.vmdk'" in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == before
