"""Converting from every disk container BitWitness reads, to every output it writes; ``qemu-img
compare`` is the judge (against the source itself where QEMU reads it), ``ewfverify`` and libewf
judge the E01 outputs, ``qemu-img check`` checks the QCOW2 and VHDX it writes, and ``verify
--second-reader`` reads those back through a second, independent reader. The media hashes of the
same pass are checked: against ``md5sum`` of the media, and, for sources that record hashes (EWF,
AFF, AFF4), by the verdict ``VERIFIED``.

Sources are written by the tools of their format (qemu-img, afflib's ``affconvert``, libewf's
``ewfacquire``) or by the committed builders where no tool here writes them (UDIF DMG, sparse image
and bundle, AFF4, Ex01). The expected media is what QEMU reads from the source, or the input given
to the tool or builder where QEMU does not write the source (QEMU still judges a DMG's outputs
against the DMG). QEMU cannot write QCOW v1 compressed clusters through ``qemu-img convert -c``,
so ``qemu-io`` writes them one cluster at a time. L01 is not a disk and is not converted.

Chains are sources too: QCOW v1 and QCOW2 overlays and a VMDK child written by ``qemu-img create
-b`` and ``qemu-io``, ESX vmfs and vmfsSparse (COWD) disks (tests/builders/vmdk_cowd.py), which
QEMU reads and so judges directly; differencing VHD and VHDX (tests/builders/), which QEMU does not
read, judged against QEMU's reading of the parent overlaid with the child's stored blocks.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from builders.aff4_writer import build_aff4
from builders.apple import ADC, BZIP2, ZLIB, build_sparsebundle, build_sparseimage, build_udif
from builders.ex01 import build_ex01
from builders.parallels_bundle import build_bundle, to_sector_units
from builders.vhd_differencing import make_differencing as make_vhd_differencing
from builders.vhdx_differencing import make_differencing as make_vhdx_differencing
from builders.vmdk_cowd import build_vmfs_flat, build_vmfs_sparse
from conftest import pyewf_media, require_tool, run_bitwitness

from bitwitness.errors import ExitCode

MiB = 1 << 20
OUTPUTS = {"raw": ("raw", ".raw"), "e01": (None, ".E01"), "vhd": ("vpc", ".vhd"),
           "vmdk": ("vmdk", ".vmdk"), "qcow2": ("qcow2", ".qcow2"), "vhdx": ("vhdx", ".vhdx")}

# kind -> (qemu-img output format, its options); QEMU reads all of these back.
QEMU_WRITTEN = {
    "qcow2-compressed": ("qcow2", ["-c"]),
    "vhdx": ("vhdx", []),
    "vmdk-sparse": ("vmdk", ["-o", "subformat=monolithicSparse"]),
    "vmdk-stream": ("vmdk", ["-o", "subformat=streamOptimized"]),
    "vmdk-split": ("vmdk", ["-o", "subformat=twoGbMaxExtentSparse"]),  # variants: see CASES
    "vmdk-flat": ("vmdk", ["-o", "subformat=monolithicFlat"]),
    "vhdx-fixed": ("vhdx", ["-o", "subformat=fixed"]),
    "qcow2-v2": ("qcow2", ["-o", "compat=0.10"]),
    "vhd-dynamic": ("vpc", ["-o", "subformat=dynamic"]),  # CHS-rounded size, as QEMU makes it
    "vhd-fixed": ("vpc", ["-o", "subformat=fixed"]),
    "qcow1": ("qcow", []),
    "qcow1-compressed": ("qcow", ["compressed"]),  # written cluster by cluster: see below
    "parallels": ("parallels", []),
    "vdi-dynamic": ("vdi", []),
    "vdi-static": ("vdi", ["-o", "static=on"]),
}
BUILT = ["dmg", "sparseimage", "sparsebundle", "aff", "aff4", "ex01", "e01", "smart",
         "dmg-bzip2", "dmg-adc", "aff4-snappy", "parallels-bundle"]
# Chains and ESX disks (see _chain_source): overlays over parents, the parents' media beneath.
# QEMU reads the QCOW chains and the ESX disks (so it judges the outputs against the source);
# it reads no differencing VHD/VHDX, whose media is QEMU's reading of parent and child combined.
CHAINS = {"qcow1-backing-raw": "qcow", "qcow1-backing-qcow": "qcow", "qcow2-chain": "qcow2",
          "vmdk-child": "vmdk", "vmdk-vmfs": "vmdk", "vmdk-vmfssparse": "vmdk",
          "vhd-differencing": None,
          "vhdx-differencing": None}
RECORDS_HASHES = {"aff", "aff4", "aff4-snappy", "ex01", "e01", "smart"}
# Variants of a container converted to every output; until issue 15's second round they went to
# raw and E01 only.
VARIANTS = {"vmdk-split", "vmdk-flat", "vhdx-fixed", "qcow2-v2", "dmg-bzip2", "dmg-adc",
            "aff4-snappy", "parallels-bundle"}
SIZES = {"aligned": 4 * MiB, "unaligned": 3 * MiB + 7 * 512}  # a short last chunk, cluster, block


def _cases() -> list[object]:
    """Every source to every output at both sizes (35 x 6 x 2). The pairs added in the second
    round (variants to VHD/VMDK/QCOW2/VHDX, the chains to everything) run at the unaligned size
    by default and at the aligned one too with ``--exhaustive``, so the default run still takes
    every source to every output."""
    cases: list[object] = []
    for size in SIZES:
        for kind in [*QEMU_WRITTEN, *BUILT, *CHAINS]:
            for to in OUTPUTS:
                added = kind in CHAINS or (kind in VARIANTS and to not in ("raw", "e01"))
                marks = [pytest.mark.exhaustive] if added and size == "aligned" else []
                cases.append(pytest.param(size, kind, to, marks=marks,
                                          id=f"{size}-{kind}-{to}"))
    return cases


def _media(size: int) -> bytes:
    """``size`` bytes of whole sectors: random data, text, a lone sector at the end, zeros
    between (so that sparse sources leave holes)."""
    data = bytearray(size)
    data[:MiB] = os.urandom(MiB)
    data[2 * MiB : 2 * MiB + 300_000] = b"evidence " * (300_000 // 9) + b"e" * (300_000 % 9)
    data[size - 1536 : size - 1024] = os.urandom(512)
    return bytes(data)


def _run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([os.fspath(a) for a in args], capture_output=True, text=True,
                          check=False)


def _md5sum(path: Path) -> str:
    res = _run("md5sum", path)
    assert res.returncode == 0, res.stderr
    return res.stdout.split()[0]


def _virtual_size(image: Path, driver: str) -> int:
    res = _run("qemu-img", "info", "--output=json", "-f", driver, image)
    assert res.returncode == 0, res.stderr
    return int(json.loads(res.stdout)["virtual-size"])


def _qcow1_compressed(image: Path, media: bytes, folder: Path) -> None:
    """QEMU writes QCOW v1 compressed clusters one whole cluster (4 KiB) at a time only, so
    ``qemu-img convert -c -O qcow`` fails: ``qemu-io`` writes every non-zero cluster compressed
    (the random ones QEMU stores uncompressed, as they do not shrink)."""
    require_tool("qemu-io")
    cluster = 4096
    res = _run("qemu-img", "create", "-q", "-f", "qcow", image, str(len(media)))
    assert res.returncode == 0, res.stderr
    info = _run("qemu-img", "info", "--output=json", "-f", "qcow", image)
    assert json.loads(info.stdout)["cluster-size"] == cluster
    chunks = folder / "clusters"
    chunks.mkdir()
    commands: list[str] = []
    for offset in range(0, len(media), cluster):
        data = media[offset : offset + cluster]
        if any(data):
            (chunks / str(offset)).write_bytes(data)
            compress = "-c " if len(data) == cluster else ""  # a short last cluster is not
            commands += ["-c", f"write -q {compress}-s {chunks / str(offset)} {offset} {len(data)}"]
    res = _run("qemu-io", "-f", "qcow", *commands, image)
    assert res.returncode == 0, res.stdout + res.stderr
    assert not res.stdout.strip(), res.stdout  # -q: any output is a failed write


def _parallels_bundle(bundle: Path, media: bytes) -> Path:
    """A bundle of two extents: the first 2 MiB a sparse extent qemu-img wrote (in the sector
    units bundles use), the rest a plain extent."""
    bundle.mkdir()
    head = bundle.parent / "head.raw"
    head.write_bytes(media[: 2 * MiB])
    res = _run("qemu-img", "convert", "-f", "raw", "-O", "parallels", head, bundle / "a.hds")
    assert res.returncode == 0, res.stderr
    to_sector_units(bundle / "a.hds")
    (bundle / "b.raw").write_bytes(media[2 * MiB :])
    sectors = len(media) // 512
    return build_bundle(bundle, [(0, 4096, "Compressed", bundle / "a.hds"),
                                 (4096, sectors, "Plain", bundle / "b.raw")])


def _qemu_io(driver: str, image: Path, *commands: str) -> None:
    """Guest writes into an overlay, through QEMU (``-c`` before ``write``: compressed)."""
    require_tool("qemu-io")
    args = [a for c in commands for a in ("-c", f"write -q {c}")]
    res = _run("qemu-io", "-f", driver, *args, image)
    assert res.returncode == 0, res.stdout + res.stderr
    assert not res.stdout.strip(), res.stdout


def _overlay_media(parent: bytes, child: Path, folder: Path) -> bytearray:
    """What a differencing VHD ``child`` over ``parent`` gives: the child's blocks where QEMU,
    reading the child as a plain dynamic VHD, maps data (``qemu-img map``), the parent's
    elsewhere."""
    driver = "vpc"
    child_raw = folder / f"{child.name}.plain.raw"
    res = _run("qemu-img", "convert", "-f", driver, "-O", "raw", child, child_raw)
    assert res.returncode == 0, res.stderr
    plain = child_raw.read_bytes()
    child_raw.unlink()
    mapped = _run("qemu-img", "map", "--output=json", "-f", driver, child)
    assert mapped.returncode == 0, mapped.stderr
    media = bytearray(parent)
    for extent in json.loads(mapped.stdout):
        if extent["data"]:
            s, n = extent["start"], extent["length"]
            media[s : s + n] = plain[s : s + n]
    return media


def _chain_source(kind: str, media: bytes, folder: Path) -> tuple[Path, Path]:
    """An overlay (QCOW v1 over a raw or QCOW v1 base; QCOW2 over QCOW2 over QCOW2, recorded
    relative and absolute; a VMDK child of a VMDK) or ESX disk (a vmfs flat descriptor; a
    vmfsSparse COWD snapshot of one), or a differencing VHD/VHDX over a parent holding
    ``media``; the image and a raw file of the media it must give (QEMU's reading, or parent
    and child combined where QEMU reads no differencing disk)."""
    size = len(media)
    end = size - 4096  # writes reach into the last cluster/grain/block, short or not
    base_raw = folder / "base.raw"
    base_raw.write_bytes(media)
    if kind.startswith("qcow1-backing"):
        base = base_raw
        if kind == "qcow1-backing-qcow":
            base = folder / "base.qcow"
            res = _run("qemu-img", "convert", "-f", "raw", "-O", "qcow", base_raw, base)
            assert res.returncode == 0, res.stderr
        image = folder / "top.qcow"
        res = _run("qemu-img", "create", "-q", "-f", "qcow", "-b", base.name, "-F",
                   "raw" if base == base_raw else "qcow", image, str(size))
        assert res.returncode == 0, res.stderr
        _qemu_io("qcow", image, "-P 0x5a 700k 300k", f"-P 0x11 {end} 4096",
                 "-c -P 0x33 2M 512", "-z 100k 8k")
    elif kind == "qcow2-chain":
        base, mid, image = folder / "base.qcow2", folder / "mid.qcow2", folder / "top.qcow2"
        res = _run("qemu-img", "convert", "-f", "raw", "-O", "qcow2", base_raw, base)
        assert res.returncode == 0, res.stderr
        for overlay, backing in ((mid, base.name), (image, mid)):  # relative, then absolute
            res = _run("qemu-img", "create", "-q", "-f", "qcow2", "-b", backing, "-F", "qcow2",
                       overlay, str(size))
            assert res.returncode == 0, res.stderr
        _qemu_io("qcow2", mid, "-P 0x5a 512k 300k", f"-P 0x22 {end} 4096")
        _qemu_io("qcow2", image, "-P 0xa5 700k 1M", "-c -P 0x44 2M 64k", "-z 3000k 4k")
    elif kind == "vmdk-child":  # a hosted snapshot: monolithicSparse over monolithicSparse
        base, image = folder / "base.vmdk", folder / "child.vmdk"
        res = _run("qemu-img", "convert", "-f", "raw", "-O", "vmdk", base_raw, base)
        assert res.returncode == 0, res.stderr
        res = _run("qemu-img", "create", "-q", "-f", "vmdk", "-b", base.name, "-F", "vmdk",
                   image, str(size))
        assert res.returncode == 0, res.stderr
        _qemu_io("vmdk", image, "-P 0x5a 700k 300k", f"-P 0x11 {end} 4096", "-z 2M 64k")
    elif kind == "vmdk-vmfs":
        image = build_vmfs_flat(folder, "esx", media)
    elif kind == "vmdk-vmfssparse":
        base = build_vmfs_flat(folder, "esx", media)
        top = bytearray(media)
        top[700_000:1_000_000] = b"\x5a" * 300_000
        top[end:] = b"\x11" * (size - end)
        top[2 * MiB : 2 * MiB + 512] = bytes(512)  # a guest's zeros over the base's data
        image = build_vmfs_sparse(folder, "esx-000001", bytes(top), parent=base,
                                  parent_cid=0x0BA5EC1D,
                                  written=[(700_000, 300_000), (end, size - end),
                                           (2 * MiB, 512)])
        expected = folder / "expected.raw"
        expected.write_bytes(bytes(top))
        return image, expected
    else:
        driver, suffix = ("vpc", "vhd") if kind == "vhd-differencing" else ("vhdx", "vhdx")
        opts = ["-o", "force_size=on"] if driver == "vpc" else ["-o", "block_size=1M"]
        parent, image = folder / f"parent.{suffix}", folder / f"child.{suffix}"
        res = _run("qemu-img", "convert", "-f", "raw", "-O", driver, *opts, base_raw, parent)
        assert res.returncode == 0, res.stderr
        parent_media = folder / "parent.raw"
        res = _run("qemu-img", "convert", "-f", driver, "-O", "raw", parent, parent_media)
        assert res.returncode == 0, res.stderr
        res = _run("qemu-img", "create", "-q", "-f", driver, *opts, image,
                   str(parent_media.stat().st_size))
        assert res.returncode == 0, res.stderr
        _qemu_io(driver, image, "-P 0x62 1M 512k", "-P 0x63 3000k 3k", f"-P 0x64 {end} 4096")
        if driver == "vpc":
            combined = _overlay_media(parent_media.read_bytes(), image, folder)
            make_vhd_differencing(image, parent)
        else:  # QEMU maps every VHDX block as data: the blocks the child stores are the builder's
            plain = folder / "child.raw"
            res = _run("qemu-img", "convert", "-f", driver, "-O", "raw", image, plain)
            assert res.returncode == 0, res.stderr
            combined = bytearray(parent_media.read_bytes())
            for block in make_vhdx_differencing(image, parent):
                combined[block * MiB : (block + 1) * MiB] = plain.read_bytes()[
                    block * MiB : (block + 1) * MiB]
            plain.unlink()
        expected = folder / "expected.raw"
        expected.write_bytes(bytes(combined))
        return image, expected
    expected = folder / "expected.raw"
    res = _run("qemu-img", "convert", "-f", CHAINS[kind] or "raw", "-O", "raw", image, expected)
    assert res.returncode == 0, res.stderr
    return image, expected


def _source(kind: str, size: int, folder: Path) -> tuple[Path, str | None, Path]:
    """The source image, the QEMU driver that reads it (None where QEMU does not) and a raw file
    of the media it holds (as QEMU reads it, where it does)."""
    raw = folder / "media.raw"
    raw.write_bytes(_media(size))
    if kind in QEMU_WRITTEN:
        fmt, opts = QEMU_WRITTEN[kind]
        image = folder / f"src.{fmt}"
        if opts == ["compressed"]:
            _qcow1_compressed(image, raw.read_bytes(), folder)
        else:
            res = _run("qemu-img", "convert", "-f", "raw", "-O", fmt, *opts, raw, image)
            assert res.returncode == 0, res.stderr
        # QEMU's own reading of the source is the expected media (a dynamic VHD's size is
        # rounded up to its CHS geometry, for instance).
        expected = folder / "expected.raw"
        res = _run("qemu-img", "convert", "-f", fmt, "-O", "raw", image, expected)
        assert res.returncode == 0, res.stderr
        return image, fmt, expected
    media = raw.read_bytes()
    if kind.startswith("dmg"):
        compression = {"dmg": ZLIB, "dmg-bzip2": BZIP2, "dmg-adc": ADC}[kind]
        image = build_udif(folder / "src.dmg", media, compression=compression)
    elif kind == "sparseimage":
        image = build_sparseimage(folder / "src.sparseimage", media)
    elif kind == "sparsebundle":
        image = build_sparsebundle(folder / "src.sparsebundle", media)
    elif kind.startswith("aff4"):
        compression = "snappy" if kind == "aff4-snappy" else "deflate"
        image = build_aff4(folder / "src.aff4", media, compression=compression).path
    elif kind == "parallels-bundle":
        image = _parallels_bundle(folder / "src.hdd", media)
    elif kind == "ex01":
        image = build_ex01(folder / "src.Ex01", media)
    elif kind == "aff":
        require_tool("affconvert")
        image = folder / "src.aff"
        res = _run("affconvert", "-q", "-o", image, raw)
        assert res.returncode == 0, res.stderr
    else:
        require_tool("ewfacquire")
        fmt = {"e01": "encase6", "smart": "smart"}[kind]
        res = _run("ewfacquire", "-u", "-q", "-f", fmt, "-c", "deflate:fast", "-t",
                   folder / "src", raw)
        assert res.returncode == 0, res.stdout + res.stderr
        image = folder / ("src.E01" if kind == "e01" else "src.s01")
    return image, "dmg" if kind == "dmg" else None, raw  # this QEMU reads zlib UDIF chunks only


#: A source as the tests use it: the image, the QEMU driver that reads it (or None), a raw file
#: of its media and that media's MD5.
_Source = tuple[Path, str | None, Path, str]


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str, str], _Source]:
    """Each (size, kind) source made once per worker and converted to all six outputs:
    building it (qemu-img or a builder, then QEMU's reading) was a large part of each case's
    time. Sharing is safe because evidence opens read-only (``tests/test_evidence_atime.py``)."""
    made: dict[tuple[str, str], _Source] = {}

    def source(size: str, kind: str) -> _Source:
        if (size, kind) not in made:
            folder = tmp_path_factory.mktemp(f"{size}-{kind}")
            if kind in CHAINS:
                image, expected = _chain_source(kind, _media(SIZES[size]), folder)
                driver = CHAINS[kind]
            else:
                image, driver, expected = _source(kind, SIZES[size], folder)
            made[size, kind] = (image, driver, expected, _md5sum(expected))
        return made[size, kind]

    return source


@pytest.mark.parametrize(("size", "kind", "to"), _cases())
def test_convert_from_containers(tmp_path: Path, sources: Callable[[str, str], _Source],
                                 size: str, kind: str, to: str) -> None:
    require_tool("qemu-img", "md5sum")
    source, source_driver, expected, md5 = sources(size, kind)
    base = tmp_path / "out"
    res = run_bitwitness("convert", source, "-o", base, "--to", to, "--json")
    assert res.exit_code == ExitCode.OK, res.stderr
    doc = res.json()
    # The hashes of the one pass: the media's, and checked against what the source records.
    assert doc["hashes"]["md5"] == md5
    assert doc["verdict"] == ("VERIFIED" if kind in RECORDS_HASHES else "UNVERIFIED")
    driver, suffix = OUTPUTS[to]
    out = base.with_name(base.name + suffix)
    if driver is None:
        require_tool("ewfverify")
        check = _run("ewfverify", "-q", out)
        assert check.returncode == 0, check.stdout + check.stderr
        stored = re.search(r"MD5 hash stored in file:\s+([0-9a-f]{32})", check.stdout)
        assert stored is not None, check.stdout
        assert stored.group(1) == md5
        assert pyewf_media(out) == expected.read_bytes()
        return
    # qemu-img compare reads past the shorter image as zeros: the sizes are checked apart.
    judge, judge_driver = (source, source_driver) if source_driver else (expected, "raw")
    assert _virtual_size(out, driver) == _virtual_size(judge, judge_driver)
    cmp = _run("qemu-img", "compare", "-f", driver, "-F", judge_driver, out, judge)
    assert cmp.returncode == 0, cmp.stdout + cmp.stderr
    if to == "raw":
        assert _md5sum(out) == md5
    if to in ("qcow2", "vhdx"):
        check = _run("qemu-img", "check", "-f", driver, out)
        assert check.returncode == 0, check.stdout + check.stderr
        assert "No errors were found" in check.stdout
        info = run_bitwitness("verify", "--second-reader", out, "--json").json()["images"][0]
        assert info["second_reader"]["agree"] is True


def test_qcow2_output_of_a_sparse_media_stores_only_data(tmp_path: Path) -> None:
    """All-zero clusters are left out (QEMU maps them as zero), and the file stays small."""
    require_tool("qemu-img")
    raw = tmp_path / "sparse.raw"
    data = bytearray(64 * MiB)
    data[40 * MiB : 40 * MiB + 5] = b"alive"
    raw.write_bytes(bytes(data))
    run_bitwitness("convert", raw, "-o", tmp_path / "s", "--to", "qcow2")
    out = tmp_path / "s.qcow2"
    assert subprocess.run(["qemu-img", "compare", "-F", "raw", str(out), str(raw)],
                          capture_output=True, check=False).returncode == 0
    assert out.stat().st_blocks * 512 < 2 * MiB


def _aff_with_a_wrong_md5(folder: Path, raw: Path) -> Path:
    """An AFF whose ``md5`` segment (16 bytes after its name) has its first byte flipped."""
    require_tool("affconvert")
    image = folder / "src.aff"
    res = _run("affconvert", "-q", "-o", image, raw)
    assert res.returncode == 0, res.stderr
    data = bytearray(image.read_bytes())
    at = data.find(b"AFF\x00")
    while at >= 0:
        name_len = int.from_bytes(data[at + 4 : at + 8], "big")
        if data[at + 16 : at + 16 + name_len] == b"md5":
            data[at + 16 + name_len] ^= 0xFF
            image.write_bytes(bytes(data))
            return image
        at = data.find(b"AFF\x00", at + 1)
    raise AssertionError("affconvert wrote no md5 segment")


@pytest.mark.parametrize("kind", ["ex01", "aff"])
def test_a_recorded_hash_that_differs_leaves_no_usable_output(tmp_path: Path, kind: str) -> None:
    """The hashes of the one pass are held against the source's recorded MD5: a difference is
    exit 1 and the E01 renamed ``*.unusable`` (so ewfverify has no ``out.E01`` to open)."""
    raw = tmp_path / "media.raw"
    raw.write_bytes(_media(SIZES["unaligned"]))
    md5 = _md5sum(raw)
    if kind == "ex01":
        source = build_ex01(tmp_path / "src.Ex01", raw.read_bytes(), stored_md5="11" * 16)
    else:
        source = _aff_with_a_wrong_md5(tmp_path, raw)
    res = run_bitwitness("convert", source, "-o", tmp_path / "out", "--to", "e01", "--json")
    assert res.exit_code == ExitCode.EVIDENCE, res.stderr
    doc = res.json()
    assert doc["verdict"] == "MISMATCH"
    assert doc["hashes"]["md5"] == md5
    assert not (tmp_path / "out.E01").exists()
    assert (tmp_path / "out.E01.unusable").exists()
