"""Overlays and their parents: QCOW v1 over a backing file, QCOW2 chains recorded by relative
names, and a parent (backing file, extent) that is missing, for every kind of chain we read.

The overlays are written by ``qemu-img create -b`` and ``qemu-io`` (guest writes, compressed
clusters, zero writes); the differencing VHD/VHDX and the ESX vmfsSparse snapshot by the builders
under ``tests/builders/`` (no tool here writes them). The media each must give is QEMU's reading
(``qemu-img convert -O raw`` + ``md5sum``), and QEMU through ``qemu-nbd`` re-reads it as
``verify --second-reader``. A missing parent is bad input: one line naming the missing file,
exit 2, no traceback, nothing written (README, "Exit codes").
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from builders.vhd_differencing import make_differencing as make_vhd_differencing
from builders.vhdx_differencing import make_differencing as make_vhdx_differencing
from builders.vmdk_cowd import build_vmfs_flat, build_vmfs_sparse
from conftest import require_tool, run_bitwitness
from contract import check_stream_contract

from bitwitness.errors import ExitCode
from bitwitness.image import open_image

MiB = 1 << 20


def _media() -> bytes:
    data = bytearray(4 * MiB)
    data[:MiB] = os.urandom(MiB)
    data[3 * MiB : 3 * MiB + 100_000] = b"parent " * (100_000 // 7) + b"p" * (100_000 % 7)
    return bytes(data)


def _run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([os.fspath(a) for a in args], capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def _qemu_io(driver: str, image: Path, *writes: str) -> None:
    proc = _run("qemu-io", "-f", driver, *(a for w in writes for a in ("-c", f"write -q {w}")),
                image)
    assert not proc.stdout.strip(), proc.stdout  # -q: any output is a failed write


def _md5sum(path: Path) -> str:
    return _run("md5sum", path).stdout.split()[0]


def _qemu_md5(image: Path, driver: str, folder: Path) -> str:
    raw = folder / f"{image.name}.qemu.raw"
    _run("qemu-img", "convert", "-f", driver, "-O", "raw", image, raw)
    md5 = _md5sum(raw)
    raw.unlink()
    return md5


@pytest.mark.parametrize("base_kind", ["raw", "qcow", "qcow-over-qcow"])
def test_qcow1_over_a_backing_file(tmp_path: Path, base_kind: str) -> None:
    """A QCOW v1 overlay (QEMU gives it 512-byte clusters) over a raw or QCOW v1 base (itself
    an overlay of a QCOW v1 base: a chain of depth 2), with plain, compressed and zero writes,
    and one reaching past a base shorter than the overlay (which reads as zeros there): info,
    verify and convert give QEMU's media."""
    require_tool("qemu-img", "qemu-io", "qemu-nbd", "md5sum")
    raw = tmp_path / "base.raw"
    raw.write_bytes(_media()[: 3 * MiB])
    base = raw
    chain = [base]
    if base_kind != "raw":
        base = tmp_path / "base.qcow"
        _run("qemu-img", "convert", "-f", "raw", "-O", "qcow", raw, base)
        chain = [base]
    if base_kind == "qcow-over-qcow":
        mid = tmp_path / "mid.qcow"
        _run("qemu-img", "create", "-q", "-f", "qcow", "-b", base.name, "-F", "qcow", mid)
        _qemu_io("qcow", mid, "-P 0x77 600k 200k", "-c -P 0x78 1536k 512")
        base, chain = mid, [mid, base]
    top = tmp_path / "top.qcow"
    _run("qemu-img", "create", "-q", "-f", "qcow", "-b", base.name, "-F",
         "raw" if base == raw else "qcow", top, "4M")
    _qemu_io("qcow", top, "-P 0x5a 700k 300k", "-c -P 0x33 1M 512", "-z 2048k 8k",
             "-P 0x11 3584k 4k")
    md5 = _qemu_md5(top, "qcow", tmp_path)

    info = run_bitwitness("info", top, "--json")
    assert info.exit_code == ExitCode.OK, info.stderr
    doc = info.json()
    assert doc["format"] == "qcow"
    assert doc["media_size"] == 4 * MiB
    assert [Path(f["path"]) for f in doc["files"]] == [top, *chain]
    with open_image(top) as stream:
        assert stream.info.details["qcow_version"] == 1
        assert stream.info.details["parents"] == [str(p) for p in chain]
        expected = tmp_path / "expected.raw"
        _run("qemu-img", "convert", "-f", "qcow", "-O", "raw", top, expected)
        check_stream_contract(stream, expected.read_bytes())

    verify = run_bitwitness("verify", "--second-reader", top, "--json").json()["images"][0]
    assert verify["computed"]["md5"] == md5
    assert all(c["ok"] for c in verify["container_checks"])
    if base_kind != "raw":  # QEMU re-reads a chain of QCOW files only
        assert verify["second_reader"]["agree"] is True, verify["second_reader"]
        assert verify["second_reader"]["hashes"]["md5"] == md5

    res = run_bitwitness("convert", top, "-o", tmp_path / "out", "--to", "raw", "--json")
    assert res.exit_code == ExitCode.OK, res.stderr
    assert res.json()["hashes"]["md5"] == md5
    assert _md5sum(tmp_path / "out.raw") == md5


def test_qcow2_chain_of_relative_names_read_from_elsewhere(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """base <- mid <- top, each recording its backing file by a relative name (as ``qemu-img
    create -b NAME`` records it): the names are resolved beside the overlay that records them,
    not in the working folder."""
    require_tool("qemu-img", "qemu-io", "qemu-nbd", "md5sum")
    folder = tmp_path / "case"
    folder.mkdir()
    raw = folder / "base.raw"
    raw.write_bytes(_media())
    base, mid, top = (folder / n for n in ("base.qcow2", "mid.qcow2", "top.qcow2"))
    _run("qemu-img", "convert", "-f", "raw", "-O", "qcow2", "-c", raw, base)
    _run("qemu-img", "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", mid)
    _qemu_io("qcow2", mid, "-P 0x5a 512k 300k", "-z 3M 64k")
    _run("qemu-img", "create", "-q", "-f", "qcow2", "-b", "mid.qcow2", "-F", "qcow2", top)
    _qemu_io("qcow2", top, "-P 0xa5 700k 1M", "-c -P 0x44 2M 64k")
    info = json.loads(_run("qemu-img", "info", "--output=json", top).stdout)
    assert info["backing-filename"] == "mid.qcow2"
    md5 = _qemu_md5(top, "qcow2", tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "mid.qcow2").write_bytes(b"not the parent")  # a decoy in the working folder
    monkeypatch.chdir(elsewhere)
    with open_image(top) as stream:
        assert stream.info.details["parents"] == [str(mid), str(base)]
    doc = run_bitwitness("verify", "--second-reader", top, "--json").json()["images"][0]
    assert doc["computed"]["md5"] == md5
    assert doc["second_reader"]["agree"] is True
    assert [Path(f) for f in doc["files"]] == [top, mid, base]


@pytest.mark.parametrize("grain_sectors", [1, 8])
@pytest.mark.parametrize("with_parent", [False, True], ids=["alone", "snapshot"])
def test_esx_vmfssparse_reads_as_qemu_reads_it(tmp_path: Path, grain_sectors: int,
                                               with_parent: bool) -> None:
    """An ESX vmfsSparse disk (COWD extent; tests/builders/vmdk_cowd.py), alone or as the
    snapshot of a vmfs flat disk, with grains of 8 sectors and of 1 (two grain tables then):
    libvmdk reads it first, QEMU's vmdk driver (through qemu-nbd) second, and both give the
    media of ``qemu-img convert``."""
    require_tool("qemu-img", "qemu-nbd", "md5sum")
    media = _media()
    parent = build_vmfs_flat(tmp_path, "esx", media) if with_parent else None
    top = bytearray(media)
    top[700_000:1_000_000] = b"\x5a" * 300_000
    top[3 * MiB : 3 * MiB + 512] = bytes(512)  # zeros the snapshot holds over the parent's data
    top[-4096:] = b"\x11" * 4096
    written = [(700_000, 300_000), (3 * MiB, 512), (len(top) - 4096, 4096)]
    image = build_vmfs_sparse(tmp_path, "esx-000001", bytes(top), grain_sectors=grain_sectors,
                              written=written if parent else None, parent=parent,
                              parent_cid=0x0BA5EC1D if parent else 0xFFFFFFFF)
    assert _qemu_md5(image, "vmdk", tmp_path) == _md5sum_of(bytes(top), tmp_path)
    with open_image(image) as stream:
        assert stream.info.details["reader"].startswith("libvmdk")
        check_stream_contract(stream, bytes(top))
    doc = run_bitwitness("verify", "--second-reader", image, "--json").json()["images"][0]
    assert doc["second_reader"]["reader"].startswith("qemu-nbd")
    assert doc["second_reader"]["agree"] is True, doc["second_reader"]
    expected_files = [image, tmp_path / "esx-000001-delta.vmdk"]
    if parent:
        expected_files += [parent, tmp_path / "esx-flat.vmdk"]
    assert [Path(f) for f in doc["files"]] == expected_files


def _md5sum_of(data: bytes, folder: Path) -> str:
    path = folder / "md5sum.input"
    path.write_bytes(data)
    md5 = _md5sum(path)
    path.unlink()
    return md5


def _qcow1(folder: Path) -> tuple[Path, Path]:
    base = folder / "base.raw"
    base.write_bytes(_media())
    top = folder / "top.qcow"
    _run("qemu-img", "create", "-q", "-f", "qcow", "-b", base.name, "-F", "raw", top)
    _qemu_io("qcow", top, "-P 0x5a 0 4k")
    return top, base


def _qcow2_mid(folder: Path) -> tuple[Path, Path]:
    """The middle of a chain of depth 2 is missing."""
    base, mid, top = (folder / n for n in ("base.qcow2", "mid.qcow2", "top.qcow2"))
    _run("qemu-img", "create", "-q", "-f", "qcow2", base, "4M")
    _run("qemu-img", "create", "-q", "-f", "qcow2", "-b", base, "-F", "qcow2", mid)
    _run("qemu-img", "create", "-q", "-f", "qcow2", "-b", mid, "-F", "qcow2", top)
    return top, mid


def _vhd(folder: Path) -> tuple[Path, Path]:
    parent, child = folder / "parent.vhd", folder / "child.vhd"
    for path in (parent, child):
        _run("qemu-img", "create", "-q", "-f", "vpc", "-o", "force_size=on", path, "4M")
    _qemu_io("vpc", child, "-P 0x62 0 64k")
    make_vhd_differencing(child, parent)
    return child, parent


def _vhdx(folder: Path) -> tuple[Path, Path]:
    parent, child = folder / "parent.vhdx", folder / "child.vhdx"
    for path in (parent, child):
        _run("qemu-img", "create", "-q", "-f", "vhdx", path, "4M")
    _qemu_io("vhdx", child, "-P 0x62 0 64k")
    make_vhdx_differencing(child, parent)
    return child, parent


def _vmdk_child(folder: Path) -> tuple[Path, Path]:
    parent, child = folder / "parent.vmdk", folder / "child.vmdk"
    _run("qemu-img", "create", "-q", "-f", "vmdk", parent, "4M")
    _run("qemu-img", "create", "-q", "-f", "vmdk", "-b", parent, "-F", "vmdk", child)
    return child, parent


def _vmfs_sparse(folder: Path) -> tuple[Path, Path]:
    media = _media()
    base = build_vmfs_flat(folder, "esx", media)
    snapshot = build_vmfs_sparse(folder, "esx-000001", media, written=[(0, 4096)], parent=base,
                                 parent_cid=0x0BA5EC1D)
    return snapshot, base


def _vmfs_sparse_delta(folder: Path) -> tuple[Path, Path]:
    snapshot, _ = _vmfs_sparse(folder)
    return snapshot, folder / "esx-000001-delta.vmdk"


def _vmfs_flat_of_parent(folder: Path) -> tuple[Path, Path]:
    snapshot, _ = _vmfs_sparse(folder)
    return snapshot, folder / "esx-flat.vmdk"


MISSING: dict[str, Callable[[Path], tuple[Path, Path]]] = {
    "qcow1-raw-backing": _qcow1, "qcow2-middle-of-chain": _qcow2_mid,
    "vhd-differencing": _vhd, "vhdx-differencing": _vhdx, "vmdk-child": _vmdk_child,
    "vmfssparse-parent": _vmfs_sparse, "vmfssparse-delta-extent": _vmfs_sparse_delta,
    "vmfssparse-parent-flat-extent": _vmfs_flat_of_parent,
}


@pytest.mark.parametrize("kind", list(MISSING))
def test_a_missing_parent_is_one_line_naming_it(tmp_path: Path, kind: str) -> None:
    """info, verify and convert: exit 2, one line on stderr naming the missing file, no
    traceback, nothing written (neither zeros for the parent's part nor a partial output). A
    parent kept elsewhere and named with ``--parent`` gives the media it gave beside the image
    (an extent is not looked for elsewhere: ``--part`` accepts a file the descriptor names)."""
    require_tool("qemu-img", "qemu-io")
    image, missing = MISSING[kind](tmp_path)
    md5 = run_bitwitness("verify", image, "--json").json()["images"][0]["computed"]["md5"]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    moved = missing.rename(elsewhere / missing.name)
    if kind == "vmfssparse-parent":  # the base disk kept elsewhere: descriptor and extent
        (tmp_path / "esx-flat.vmdk").rename(elsewhere / "esx-flat.vmdk")
    before = sorted(p.name for p in tmp_path.iterdir())
    for args in (("info",), ("verify",), ("convert", "-o", tmp_path / "out", "--to", "e01")):
        res = run_bitwitness(args[0], image, *args[1:])
        assert res.exit_code == ExitCode.USAGE, (args, res.stdout, res.stderr)
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1, res.stderr
        assert lines[0].startswith("bitwitness: error: "), res.stderr
        assert missing.name in lines[0]
        assert "Traceback" not in res.stderr
        assert sorted(p.name for p in tmp_path.iterdir()) == before
    if "extent" in kind:
        return
    # the parent's own parent is looked for beside it, unless named too
    below = ("--parent", tmp_path / "base.qcow2") if kind == "qcow2-middle-of-chain" else ()
    res = run_bitwitness("convert", "--parent", moved, *below, image, "-o", tmp_path / "out",
                         "--to", "raw", "--json")
    assert res.exit_code == ExitCode.OK, res.stderr
    assert res.json()["hashes"]["md5"] == md5 == _md5sum(tmp_path / "out.raw")


def test_an_sesparse_variant_we_do_not_read_is_refused_by_name(tmp_path: Path) -> None:
    """SEsparse snapshots are read (tests/test_vmdk_sesparse.py); an extent whose constant
    header declares a grain size other than ESXi's 8 sectors (here 0; QEMU refuses it too) is
    refused through its descriptor in one line naming SEsparse and the extent, exit 2, and so
    is the extent file named alone (it holds only a snapshot's changes: its descriptor names
    the parent). libvmdk is not tried (it said "unsupported extent type", exit 1, as if the
    image were damaged). The header starts as QEMU checks (magic 0xCAFEBABE, version 2.1):
    QEMU's vmdk driver takes it for a seSparse extent."""
    require_tool("qemu-img")
    extent = tmp_path / "snap-sesparse.vmdk"
    header = bytearray(512)
    header[:16] = (0xCAFEBABE).to_bytes(8, "little") + (0x200000001).to_bytes(8, "little")
    extent.write_bytes(bytes(header) + bytes(MiB))
    descriptor = tmp_path / "snap.vmdk"
    descriptor.write_text(
        "# Disk DescriptorFile\nversion=1\nencoding=\"UTF-8\"\nCID=fffffffe\n"
        "parentCID=ffffffff\ncreateType=\"seSparse\"\n\n# Extent description\n"
        f"RW 8192 SESPARSE \"{extent.name}\"\n\n# The Disk Data Base\n#DDB\n\n")
    qemu = subprocess.run(["qemu-img", "info", str(descriptor)], capture_output=True,
                          text=True, check=False)
    assert "const header magic" not in qemu.stderr  # QEMU took the header for SEsparse's
    before = sorted(p.name for p in tmp_path.iterdir())
    for image in (descriptor, extent):
        for args in (("info",), ("verify",), ("convert", "-o", tmp_path / "out", "--to", "raw")):
            res = run_bitwitness(args[0], image, *args[1:])
            assert res.exit_code == ExitCode.USAGE, (image, args, res.stdout, res.stderr)
            assert len(res.stderr.strip().splitlines()) == 1, res.stderr
            assert "SEsparse" in res.stderr
            assert extent.name in res.stderr
            assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_a_file_changed_in_a_qcow1_overlay_is_read_through_it(tmp_path: Path) -> None:
    """A FAT file system in a raw base; the overlay holds the sectors a later copy of it
    changed (a file rewritten), written by ``qemu-io``: ``cat`` reads the new content through the
    overlay, as TSK's ``icat`` reads it from QEMU's raw export, and ``ls`` lists what ``fls``
    lists."""
    require_tool("qemu-img", "qemu-io", "mkfs.vfat", "mcopy", "fls", "icat")
    base = tmp_path / "base.raw"
    _run("mkfs.vfat", "-C", base, "4096")
    note = tmp_path / "note.txt"
    note.write_text("before the overlay\n")
    _run("mcopy", "-i", base, note, "::/NOTE.TXT")
    later = tmp_path / "later.raw"
    later.write_bytes(base.read_bytes())
    note.write_text("written into the QCOW v1 overlay\n" * 40)
    _run("mcopy", "-o", "-i", later, note, "::/NOTE.TXT")
    _run("mcopy", "-i", later, note, "::/ADDED.TXT")
    top = tmp_path / "top.qcow"
    _run("qemu-img", "create", "-q", "-f", "qcow", "-b", base.name, "-F", "raw", top)
    old, new = base.read_bytes(), later.read_bytes()
    sectors = tmp_path / "sectors"
    sectors.mkdir()
    writes = []
    for at in range(0, len(new), 512):
        if new[at : at + 512] != old[at : at + 512]:
            (sectors / str(at)).write_bytes(new[at : at + 512])
            writes.append(f"-s {sectors / str(at)} {at} 512")
    assert writes
    _qemu_io("qcow", top, *writes)
    exported = tmp_path / "exported.raw"
    _run("qemu-img", "convert", "-f", "qcow", "-O", "raw", top, exported)
    assert exported.read_bytes() == new
    fls = _run("fls", "-r", "-p", exported).stdout
    inode = next(line.split()[1].rstrip(":") for line in fls.splitlines()
                 if line.endswith("\tNOTE.TXT"))
    icat = subprocess.run(["icat", str(exported), inode], capture_output=True, check=True).stdout
    cat = run_bitwitness("cat", top, "NOTE.TXT")
    assert cat.exit_code == ExitCode.OK, cat.stderr
    assert cat.stdout.encode() == icat == note.read_bytes()
    listed = run_bitwitness("ls", "-r", "--json", top)
    names = {e["path"].lstrip("/") for e in listed.json()["entries"]}
    assert names == {line.split("\t", 1)[1] for line in fls.splitlines()
                     if not line.split()[1].startswith("*")}
    assert "ADDED.TXT" in names
