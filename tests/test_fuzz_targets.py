"""The fuzz targets without the fuzzer: seeds, every past finding, and the checksum mutator.

Each target must take its seeds (built by ``fuzz/seeds.py``) and every input that ever failed
(``fuzz/regressions/TARGET/``) without an exception other than a BitWitnessError. The seeds
themselves are checked against independent tools, so that the fuzzer starts from real inputs:
qemu-img reads the VMDK and VHD seeds as the same media our readers give, ewfverify accepts the
E01 seeds. The mutator's checksum repair must give inputs that pass the checks it repairs.
"""

from __future__ import annotations

import hashlib
import random
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, pyewf_media, require_tool

sys.path.insert(0, str(REPO))

from fuzz import checksums, seeds, targets

REGRESSIONS = REPO / "fuzz" / "regressions"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("seeds")
    for target in targets.TARGETS:
        assert seeds.build(target, out / target), target
    return out


def test_vhdx_mutator_repairs_log_entries(corpus: Path, tmp_path: Path) -> None:
    """The dirty-log seed replays; a byte changed inside its first log entry (a data sector's
    payload) fails that entry's CRC-32C, so no sequence is left to replay, until the mutator
    recomputes it: then the changed byte is what the replayed media holds."""
    from bitwitness.errors import CorruptImageError
    from bitwitness.images.vhdx import open_vhdx

    original = (corpus / "vhdx" / "dirty-log.vhdx").read_bytes()
    assert checksums.fix_vhdx(original) == original
    path = tmp_path / "d.vhdx"
    path.write_bytes(original)
    with open_vhdx(path) as stream:
        assert stream.replay is not None
        assert stream.pread(4096, 4096) == bytes(range(256)) * 16
    data = bytearray(original)
    data[512 * 1024 + 4096 + 100] ^= 0xFF  # entry 5's data sector: byte 100 of the update
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptImageError, match="no valid sequence"):
        open_vhdx(path)
    path.write_bytes(checksums.fix_vhdx(bytes(data)))
    with open_vhdx(path) as stream:
        assert stream.pread(4096 + 100, 1) == bytes([100 ^ 0xFF])


@pytest.mark.parametrize("target", sorted(targets.TARGETS))
def test_target_takes_its_seeds_and_past_findings(target: str, corpus: Path) -> None:
    inputs = sorted((corpus / target).iterdir())
    if (REGRESSIONS / target).is_dir():
        inputs += sorted((REGRESSIONS / target).iterdir())
    for path in inputs:
        targets.run_file(target, path)


def test_every_regression_folder_names_a_target() -> None:
    if REGRESSIONS.is_dir():
        assert {p.name for p in REGRESSIONS.iterdir()} <= set(targets.TARGETS)


def test_vmdk_and_vhd_seeds_read_as_qemu_img_reads_them(corpus: Path, tmp_path: Path) -> None:
    require_tool("qemu-img")
    from bitwitness.image import open_image

    for name, fmt in (("sparse.vmdk", "vmdk"), ("stream.vmdk", "vmdk"), ("fixed.vhd", "vpc"),
                      ("dynamic.vhd", "vpc")):
        folder = corpus / ("vmdk" if fmt == "vmdk" else "vhd")
        image = tmp_path / ("fuzz.vmdk" if fmt == "vmdk" else name)
        image.write_bytes((folder / name).read_bytes())
        raw = tmp_path / f"{name}.raw"
        subprocess.run(["qemu-img", "convert", "-f", fmt, "-O", "raw", str(image), str(raw)],
                       check=True)
        with open_image(image) as stream:
            ours = stream.pread(0, stream.size)
        assert hashlib.sha256(ours).digest() == hashlib.sha256(
            raw.read_bytes()[:len(ours)]).digest(), name
        assert any(ours), name


def test_sesparse_seed_reads_as_qemu_img_reads_it(corpus: Path, tmp_path: Path) -> None:
    """The SEsparse seed, as the vmdk target lays it out (a snapshot over a parent of zeros),
    is the media QEMU's vmdk driver reads, with data in it: the fuzzer starts from a snapshot
    that reaches the grain tables and grains."""
    require_tool("qemu-img")
    from bitwitness.images.vmdk import open_vmdk

    image = targets._sesparse_snapshot((corpus / "vmdk" / "sesparse.vmdk").read_bytes())
    raw = tmp_path / "sesparse.raw"
    subprocess.run(["qemu-img", "convert", "-f", "vmdk", "-O", "raw", str(image), str(raw)],
                   check=True)
    with open_vmdk(image) as stream:
        ours = stream.pread(0, stream.size)
        assert stream.info.details["parents"]
    assert len(ours) == 16 << 20
    assert hashlib.sha256(ours).digest() == hashlib.sha256(raw.read_bytes()).digest()
    assert any(ours[:4096])
    assert any(ours[4095 * 4096:])


def test_e01_seeds_pass_ewfverify(corpus: Path, tmp_path: Path) -> None:
    require_tool("ewfverify")
    for name in ("ours-fast.E01", "ours-none.E01"):
        image = tmp_path / name
        image.write_bytes((corpus / "ewf" / name).read_bytes())
        out = subprocess.run(["ewfverify", "-q", str(image)], capture_output=True, text=True,
                             check=False)
        assert out.returncode == 0, (name, out.stdout, out.stderr)


def test_ewf_mutator_repairs_every_checksum(corpus: Path, tmp_path: Path) -> None:
    """Flipped bytes inside descriptors and tables no longer fail their Adler-32 once fixed."""
    from bitwitness.ewf.layout import load_layout

    original = (corpus / "ewf" / "ours-fast.E01").read_bytes()
    rng = random.Random(14)
    fixed_opened = 0
    for _ in range(40):
        data = bytearray(original)
        at = rng.randrange(13, len(data))
        data[at] ^= 1 << rng.randrange(8)
        image = tmp_path / "m.E01"
        image.write_bytes(checksums.fix_ewf(bytes(data)))
        failure = ""
        try:
            load_layout(image, allow_incomplete=True)
        except Exception as exc:  # any failure, but never a checksum one
            failure = str(exc)
        assert "Adler-32" not in failure
        fixed_opened += not failure
    assert fixed_opened > 0
    assert checksums.fix_ewf(original) == original


def test_smart_seeds_read_as_libewf_reads_them_and_mutants_get_past_checksums(
        corpus: Path, tmp_path: Path) -> None:
    """The SMART (.s01) seeds reach our reader's S01 layout and give libewf's media; ewfverify
    accepts them. Fixed mutants of the SMART volume no longer fail its Adler-32, and the fixer
    leaves the first chunk (right after a SMART table's entries, where an E01 table keeps its
    entries' checksum) alone: fixing the seed changes nothing."""
    require_tool("ewfverify")
    from bitwitness.ewf.layout import load_layout
    from bitwitness.ewf.reader import open_ewf

    for name in ("ewfacquire-smart-fast.s01", "ewfacquire-smart-none.s01"):
        original = (corpus / "ewf" / name).read_bytes()
        assert checksums.fix_ewf(original) == original, name
        image = tmp_path / name
        image.write_bytes(original)
        out = subprocess.run(["ewfverify", "-q", str(image)], capture_output=True, text=True,
                             check=False)
        assert out.returncode == 0, (name, out.stdout)
        with open_ewf(image) as img:
            assert img.smart
            assert img.read() == pyewf_media(image)
        volume = original.index(b"volume\0") + 76
        rng = random.Random(name)
        for _ in range(10):
            data = bytearray(original)
            data[volume + rng.randrange(4, 20)] ^= 1 << rng.randrange(8)  # counts and sizes
            mutant = tmp_path / "m.s01"
            mutant.write_bytes(checksums.fix_ewf(bytes(data)))
            failure = ""
            try:
                load_layout(mutant, allow_incomplete=True)
            except Exception as exc:  # any failure, but never a checksum one
                failure = str(exc)
            assert "Adler-32" not in failure, failure


def test_lx01_seed_reads_as_libewf_reads_it(corpus: Path, tmp_path: Path) -> None:
    """The ewf2 target's Lx01 seed takes our EWF2 reader's logical path (media: the file list's
    ``rec`` ``tb``) and gives libewf's media."""
    pyewf = pytest.importorskip("pyewf")
    from bitwitness.images.ewf2 import Ewf2Stream

    image = tmp_path / "files.Lx01"
    image.write_bytes((corpus / "ewf2" / "files.Lx01").read_bytes())
    handle = pyewf.handle()
    handle.open([str(image)])
    try:
        theirs = handle.read_buffer(handle.get_media_size())
    finally:
        handle.close()
    with Ewf2Stream(image) as ours:
        assert ours.logical
        assert ours.size % 512
        assert ours.pread(0, ours.size) == theirs


def test_vhd_mutator_repairs_footer_and_header(corpus: Path) -> None:
    from bitwitness.images import vhd

    original = (corpus / "vhd" / "dynamic.vhd").read_bytes()
    assert checksums.fix_vhd(original) == original
    data = bytearray(original)
    data[-512 + 40] ^= 0x55  # the footer's original size
    data[512 + 34] ^= 0x30  # the dynamic header's block size: 4 KiB to 8 KiB (still valid)
    repaired = checksums.fix_vhd(bytes(data))
    vhd.unpack_footer(repaired[-512:])
    with pytest.raises(Exception, match="checksum"):
        vhd.unpack_footer(bytes(data[-512:]))
    vhd.unpack_dynamic_header(repaired[512:1536])


@pytest.mark.parametrize("target", sorted(targets.TARGETS))
def test_target_survives_random_damage_to_its_seeds(target: str, corpus: Path) -> None:
    """Without the fuzzer: flipped bytes, cut files and repaired checksums on every seed (a
    fixed random sequence, so that a failure here reproduces)."""
    rng = random.Random(f"issue-14-{target}")
    function = targets.TARGETS[target][0]
    for seed in sorted((corpus / target).iterdir()):
        original = seed.read_bytes()
        for _ in range(25):
            data = bytearray(original)
            for _ in range(rng.randrange(1, 8)):
                if data:
                    data[rng.randrange(len(data))] = rng.randrange(256)
            if rng.random() < 0.3:
                data = data[: rng.randrange(len(data) + 1)]
            mutated = checksums.fix(target, bytes(data)) if rng.random() < 0.7 else bytes(data)
            function(mutated)


def test_ci_runs_every_fuzz_target_and_the_readme_says_how() -> None:
    commands = [line for line in (REPO / ".ci" / "run").read_text().splitlines()
                if line and not line.startswith("#")]
    assert ".venv/bin/python -m fuzz.run --all --seconds 5" in commands
    readme = (REPO / "README.md").read_text()
    assert "python -m fuzz.run vmdk --minutes 30" in readme
    for target in targets.TARGETS:
        assert f"`{target}`" in readme, target


@pytest.mark.parametrize("pattern", ["[a-z]{0,61111111111}", "(" * 2000 + ")" * 2000])
def test_case_file_with_an_impossible_pattern_is_one_line(pattern: str, tmp_path: Path) -> None:
    """Found by the case-yaml target: a field pattern whose repeat count overflows the regex
    engine (or nests too deep) ended in exit 3; it is a bad case file (exit 2, one line)."""
    from conftest import run_bitwitness

    doc = (REGRESSIONS / "case-yaml" / "pattern-repeat-overflow.yaml").read_text(
        errors="replace")
    assert "61111111111" in doc
    case = tmp_path / "case"
    case.mkdir()
    (case / "case.yaml").write_text(
        "schema: bitwitness.case/1\nfields: {case_number: '1'}\ntemplate:\n  name: t\n"
        "  fields:\n  - name: case_number\n    pattern: '" + pattern + "'\n")
    result = run_bitwitness("case", "show", case)
    assert result.exit_code == 2, result.stderr
    assert "bad pattern" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


# --- the container targets (issue 14, item 6) -----------------------------------------------

CONTAINERS = ("qcow", "vhdx", "vdi", "qed", "android-sparse", "ntfsclone", "partclone", "udif",
              "apple-sparse", "parallels", "ewf2", "aff", "aff4")


def _qemu_raw(image: Path, fmt: str, tmp_path: Path) -> bytes:
    raw = tmp_path / f"{image.name}.raw"
    subprocess.run(["qemu-img", "convert", "-f", fmt, "-O", "raw", str(image), str(raw)],
                   check=True, capture_output=True)
    return raw.read_bytes()


def _ours(opener: object, path: Path) -> bytes:
    with opener(path) as stream:  # type: ignore[operator]
        return bytes(stream.pread(0, stream.size))


@pytest.mark.parametrize("target", CONTAINERS)
def test_every_container_target_has_seeds_and_is_fuzzed_with_coverage(target: str,
                                                                      corpus: Path) -> None:
    """Each container target has seeds that fit its input size, and the modules it reaches are
    imported under atheris' instrumentation (else libFuzzer fuzzes blind)."""
    from fuzz.run import _INSTRUMENTED

    if target in ("qcow", "vhdx", "vdi", "qed", "parallels"):
        require_tool("qemu-img", "qemu-io")
    if target == "aff":
        require_tool("affconvert")
    if target == "android-sparse":
        require_tool("img2simg", "simg2simg")
    if target == "ntfsclone":
        require_tool("mkntfs", "ntfsclone")
    found = sorted((corpus / target).iterdir())
    assert len(found) >= 2, target
    assert all(p.stat().st_size <= targets.TARGETS[target][1] for p in found), target
    module = {"apple-sparse": "apple_sparse", "android-sparse": "android_sparse"}.get(target,
                                                                                  target)
    assert f"bitwitness.images.{module}" in _INSTRUMENTED
    assert "bitwitness.images.signatures" in _INSTRUMENTED


@pytest.mark.parametrize("target", CONTAINERS)
def test_container_seeds_open_and_read_whole(target: str, corpus: Path, tmp_path: Path) -> None:
    """The seeds are valid images: our reader opens each and reads all of its media (a seed our
    reader refused would leave the fuzzer at the door)."""
    from bitwitness.images.aff import AffStream
    from bitwitness.images.aff4 import Aff4Stream
    from bitwitness.images.android_sparse import AndroidSparseStream
    from bitwitness.images.apple_sparse import SparseBundleStream, SparseImageStream
    from bitwitness.images.ewf2 import Ewf2Stream
    from bitwitness.images.ntfsclone import NtfscloneStream
    from bitwitness.images.parallels import ParallelsBundleStream, SparseExtentStream
    from bitwitness.images.partclone import PartcloneStream
    from bitwitness.images.qcow import open_qcow
    from bitwitness.images.qed import open_qed
    from bitwitness.images.udif import UdifStream
    from bitwitness.images.vdi import VdiStream
    from bitwitness.images.vhdx import VhdxStream
    from fuzz.targets import BACKING, PART

    (tmp_path / "base.img").write_bytes(BACKING)
    for seed in sorted((corpus / target).iterdir()):
        data = seed.read_bytes()
        path = tmp_path / seed.name
        path.write_bytes(data)
        if target == "apple-sparse" and not data.startswith(b"sprs"):
            bundle = tmp_path / "b.sparsebundle"
            (bundle / "bands").mkdir(parents=True)
            plist, *bands = data.split(PART)
            (bundle / "Info.plist").write_bytes(plist)
            for i, band in enumerate(bands):
                if band:
                    (bundle / "bands" / f"{i:x}").write_bytes(band)
            path, opener = bundle, SparseBundleStream
        elif target == "parallels" and PART in data:
            bundle = tmp_path / seed.name
            path.unlink()
            bundle.mkdir()
            descriptor, _, extent = data.partition(PART)
            (bundle / "DiskDescriptor.xml").write_bytes(descriptor)
            (bundle / "disk.hds").write_bytes(extent)
            path, opener = bundle / "DiskDescriptor.xml", ParallelsBundleStream
        elif target == "ewf2":
            path = tmp_path / f"{seed.name}.Ex01"
            for number, piece in enumerate(data.split(PART), 1):
                path.with_suffix(f".Ex{number:02d}").write_bytes(piece)
            opener = Ewf2Stream
        elif target == "vhdx" and seed.name.startswith("differencing"):
            continue  # its parent is not in the corpus (checked below against qemu-img)
        else:
            opener = {"qcow": open_qcow, "qed": open_qed, "vhdx": VhdxStream, "vdi": VdiStream,
                      "udif": UdifStream, "apple-sparse": SparseImageStream,
                      "parallels": SparseExtentStream, "aff": AffStream,
                      "aff4": Aff4Stream, "android-sparse": AndroidSparseStream,
                      "ntfsclone": NtfscloneStream, "partclone": PartcloneStream}[target]
        media = _ours(opener, path)
        assert media, seed.name
        assert any(media) or seed.name.startswith("empty"), seed.name


def test_android_sparse_seeds_read_as_simg2img_reads_them(corpus: Path, tmp_path: Path) -> None:
    require_tool("img2simg", "simg2simg", "simg2img")
    from bitwitness.images.android_sparse import AndroidSparseStream

    seeds = sorted((corpus / "android-sparse").iterdir())
    assert len(seeds) >= 4, seeds
    for seed in seeds:
        raw = tmp_path / f"{seed.name}.raw"
        subprocess.run(["simg2img", str(seed), str(raw)], check=True, capture_output=True)
        assert _ours(AndroidSparseStream, seed) == raw.read_bytes(), seed.name


def test_qcow_and_parallels_seeds_read_as_qemu_reads_them(corpus: Path, tmp_path: Path) -> None:
    require_tool("qemu-img", "qemu-io")
    from bitwitness.images.parallels import SparseExtentStream
    from bitwitness.images.qcow import open_qcow
    from fuzz.targets import BACKING

    (tmp_path / "base.img").write_bytes(BACKING)
    checked = 0
    for target, opener in (("qcow", open_qcow), ("parallels", SparseExtentStream)):
        for seed in sorted((corpus / target).iterdir()):
            if target == "parallels" and not seed.name.endswith(".hds"):
                continue
            path = tmp_path / seed.name
            path.write_bytes(seed.read_bytes())
            fmt = {"qcow": "qcow", "qcow2": "qcow2", "hds": "parallels"}[seed.suffix[1:]]
            assert _ours(opener, path) == _qemu_raw(path, fmt, tmp_path), seed.name
            checked += 1
    assert checked >= 9


def test_compact_vhdx_seeds_hold_what_qemu_wrote(tmp_path: Path) -> None:
    """The VHDX seeds are qemu-img's files laid out small; our reading of the compact file is
    qemu's reading of the original, and every CRC-32C the compaction rewrote holds."""
    require_tool("qemu-img", "qemu-io")
    from bitwitness.images.vhdx import VhdxStream, vhdx_checks

    for subformat in ("dynamic", "fixed"):
        original = tmp_path / f"{subformat}.vhdx"
        subprocess.run(["qemu-img", "create", "-q", "-f", "vhdx", "-o",
                        f"block_size=1M,log_size=1M,subformat={subformat}", str(original),
                        "16K"], check=True)
        subprocess.run(["qemu-io", "-f", "vhdx", "-c", "write -P 0x5a 0 4k", "-c",
                        "write -P 0xc3 15k 1k", str(original)], check=True, capture_output=True)
        compact = tmp_path / f"compact-{subformat}.vhdx"
        compact.write_bytes(seeds.compact_vhdx(original.read_bytes()))
        assert compact.stat().st_size < targets.TARGETS["vhdx"][1]
        theirs = _qemu_raw(original, "vhdx", tmp_path)
        assert theirs[:4096] == b"\x5a" * 4096
        assert _ours(VhdxStream, compact) == theirs
        results = {c.what: c.ok for c in vhdx_checks(compact)}
        assert all(v for k, v in results.items() if "CRC-32C" in k), results


def test_small_vdi_seeds_read_as_qemus_vdi(tmp_path: Path) -> None:
    """qemu reads only 1 MiB VDI blocks; the seeds keep qemu's header around 4 KiB and 512-byte
    blocks. Our reading of them is the media qemu reads from its own VDI of the same data."""
    require_tool("qemu-img")
    from bitwitness.images.vdi import VdiStream

    media = bytes(range(256)) * 32 + bytes(4096) + b"\xee" * 4096
    raw = tmp_path / "m.raw"
    raw.write_bytes(media)
    for static in ("off", "on"):
        made = tmp_path / f"q-{static}.vdi"
        subprocess.run(["qemu-img", "convert", "-q", "-f", "raw", "-O", "vdi", "-o",
                        f"static={static}", str(raw), str(made)], check=True)
        theirs = _qemu_raw(made, "vdi", tmp_path)
        assert theirs == media
        for block in (4096, 512):
            small = tmp_path / f"s-{static}-{block}.vdi"
            small.write_bytes(seeds.small_vdi(made.read_bytes()[:1024], theirs, block=block))
            assert _ours(VdiStream, small) == theirs, (static, block)


def test_udif_seeds_read_as_qemu_reads_them(corpus: Path, tmp_path: Path) -> None:
    """QEMU's dmg driver reads the zlib seed (XML property list); our reader gives the same
    media from it and from every other seed (binary property lists, ADC, bzip2, LZFSE)."""
    require_tool("qemu-img")
    from bitwitness.images.udif import UdifStream

    zlib_seed = tmp_path / "zlib.dmg"
    zlib_seed.write_bytes((corpus / "udif" / "zlib.dmg").read_bytes())
    theirs = _qemu_raw(zlib_seed, "dmg", tmp_path)
    for seed in sorted((corpus / "udif").iterdir()):
        path = tmp_path / seed.name
        path.write_bytes(seed.read_bytes())
        assert _ours(UdifStream, path) == theirs, seed.name


def test_apple_and_parallels_bundle_seeds_read_as_libyal_reads_them(corpus: Path,
                                                                    tmp_path: Path) -> None:
    """libmodi reads the sparse image and bundle seeds, libphdi the Parallels bundle seeds, as
    our readers do."""
    pytest.importorskip("pymodi")
    pytest.importorskip("pyphdi")
    from bitwitness.images.apple_sparse import SparseBundleStream, SparseImageStream
    from bitwitness.images.modi import open_modi
    from bitwitness.images.parallels import ParallelsBundleStream, open_phdi
    from fuzz.targets import PART

    image = tmp_path / "image.sparseimage"
    image.write_bytes((corpus / "apple-sparse" / "image.sparseimage").read_bytes())
    assert _ours(SparseImageStream, image) == _ours(open_modi, image)
    bundle = tmp_path / "b.sparsebundle"
    (bundle / "bands").mkdir(parents=True)
    plist, *bands = (corpus / "apple-sparse" / "bundle").read_bytes().split(PART)
    (bundle / "Info.plist").write_bytes(plist)
    for i, band in enumerate(bands):
        if band:
            (bundle / "bands" / f"{i:x}").write_bytes(band)
    assert _ours(SparseBundleStream, bundle) == _ours(open_modi, bundle)
    if not (corpus / "parallels" / "bundle-compressed").is_file():
        pytest.skip("qemu-img is not installed")
    folder = tmp_path / "p.hdd"
    folder.mkdir()
    descriptor, _, extent = (corpus / "parallels" / "bundle-compressed").read_bytes().partition(
        PART)
    (folder / "DiskDescriptor.xml").write_bytes(descriptor)
    (folder / "disk.hds").write_bytes(extent)
    theirs = _ours(open_phdi, folder)
    assert any(theirs)
    assert _ours(ParallelsBundleStream, folder / "DiskDescriptor.xml") == theirs


def test_ewf2_seeds_read_as_libewf_reads_them(corpus: Path, tmp_path: Path) -> None:
    from bitwitness.images.ewf2 import Ewf2Stream
    from fuzz.targets import PART

    for seed in sorted((corpus / "ewf2").iterdir()):
        first = tmp_path / seed.name / "set.Ex01"
        first.parent.mkdir()
        for number, piece in enumerate(seed.read_bytes().split(PART), 1):
            first.with_suffix(f".Ex{number:02d}").write_bytes(piece)
        with Ewf2Stream(first) as ours:
            assert ours.pread(0, ours.size) == pyewf_media(first), seed.name
            assert set(ours.stored_hashes) == {"md5", "sha1"}


def test_aff_seeds_read_as_affcat_reads_them(corpus: Path, tmp_path: Path) -> None:
    require_tool("affconvert", "affcat")
    from bitwitness.images.aff import AffStream

    for seed in sorted((corpus / "aff").iterdir()):
        path = tmp_path / seed.name
        path.write_bytes(seed.read_bytes())
        theirs = subprocess.run(["affcat", str(path)], check=True, capture_output=True).stdout
        assert _ours(AffStream, path) == theirs, seed.name


def test_aff4_seeds_hold_the_hashes_the_writer_recorded(corpus: Path, tmp_path: Path) -> None:
    """No second AFF4 reader installs here: each seed's media hashes to the MD5 its writer
    recorded from the media it was given, and the stored-turtle copy reads the same."""
    from bitwitness.images.aff4 import Aff4Stream

    checked = 0
    for seed in sorted((corpus / "aff4").iterdir()):
        path = tmp_path / seed.name
        path.write_bytes(seed.read_bytes())
        with Aff4Stream(path) as stream:
            media = stream.pread(0, stream.size)
            md5 = stream.stored_hashes.get("md5")
        assert md5 is not None, seed.name  # pre-standard too: its image, not its stream
        assert hashlib.md5(media, usedforsecurity=False).hexdigest() == md5, seed.name
        twin = corpus / "aff4" / seed.name.replace("-stored.aff4", ".aff4")
        if twin != seed:
            other = tmp_path / f"twin-{twin.name}"
            other.write_bytes(twin.read_bytes())
            assert _ours(Aff4Stream, other) == media
            checked += 1
    assert checked >= 8


def test_vhdx_mutator_repairs_headers_and_region_tables(corpus: Path, tmp_path: Path) -> None:
    from bitwitness.images import vhdx

    original = (corpus / "vhdx" / "dynamic.vhdx").read_bytes()
    assert checksums.fix_vhdx(original) == original
    data = bytearray(original)
    data[vhdx.HEADER_OFFSETS[0] + 8] ^= 1  # sequence number
    data[vhdx.REGION_OFFSETS[1] + 16 + 32 * 2] ^= 0x80  # an entry past the table's two
    broken, repaired = tmp_path / "broken.vhdx", tmp_path / "repaired.vhdx"
    broken.write_bytes(bytes(data))
    repaired.write_bytes(checksums.fix_vhdx(bytes(data)))
    crc = {c.what: c.ok for c in vhdx.vhdx_checks(broken) if "CRC" in c.what}
    assert crc["VHDX header 1 CRC-32C"] is False
    assert crc["VHDX region table 2 CRC-32C"] is False
    assert all(c.ok for c in vhdx.vhdx_checks(repaired) if "CRC" in c.what)


def test_ewf2_mutator_repairs_every_adler32(corpus: Path, tmp_path: Path) -> None:
    """A changed case number (inside a compressed object: not checksummed) and a changed
    sector table entry's flags pass their Adler-32 once fixed; the data then differs."""
    from bitwitness.errors import CorruptImageError
    from bitwitness.images.ewf2 import Ewf2Stream

    original = (corpus / "ewf2" / "one.Ex01").read_bytes()
    assert checksums.fix_ewf2(original) == original
    data = bytearray(original)
    data[-64 + 20] ^= 0x01  # the last descriptor's data size
    path = tmp_path / "m.Ex01"
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptImageError, match="Adler-32"):
        Ewf2Stream(path)
    path.write_bytes(checksums.fix_ewf2(bytes(data)))
    failure = ""
    try:
        Ewf2Stream(path).close()
    except CorruptImageError as exc:  # any failure, but never a checksum one
        failure = str(exc)
    assert "Adler-32" not in failure


def test_udif_mutator_repairs_the_data_fork_crc(corpus: Path, tmp_path: Path) -> None:
    from bitwitness.images.modi import udif_checks

    original = (corpus / "udif" / "zlib.dmg").read_bytes()
    assert checksums.fix_udif(original) == original
    data = bytearray(original)
    data[10] ^= 0xFF  # inside the data fork
    path = tmp_path / "m.dmg"
    path.write_bytes(bytes(data))
    assert [c.ok for c in udif_checks(path)] == [False]
    path.write_bytes(checksums.fix_udif(bytes(data)))
    assert [c.ok for c in udif_checks(path)] == [True]


@pytest.mark.parametrize("value", ["<integer>1000000000000</integer>", "<string>mish</string>",
                                   "<dict/>", "<true/>"])
def test_udif_block_table_that_is_not_data_is_corrupt(value: str, tmp_path: Path) -> None:
    """Found by the udif target: a block table given as another plist type than <data> went to
    bytes() (a TypeError, or for an <integer> an allocation of that many bytes); it is a
    corrupt image naming the table, read from an XML and from a binary property list."""
    import plistlib
    import re

    from bitwitness.errors import CorruptImageError
    from bitwitness.images.udif import UdifStream

    sys.path.insert(0, str(REPO / "tests"))
    from builders.apple import build_udif

    image = build_udif(tmp_path / "m.dmg", bytes(range(256)) * 16)
    data = image.read_bytes()
    koly = bytearray(data[-512:])
    at, length = struct.unpack_from(">QQ", koly, 216)
    xml = re.sub(rb"<key>Data</key><data>[^<]*</data>", b"<key>Data</key>" + value.encode(),
                 data[at:at + length])
    for plist in (xml, plistlib.dumps(plistlib.loads(xml), fmt=plistlib.FMT_BINARY)):
        struct.pack_into(">QQ", koly, 216, at, len(plist))
        image.write_bytes(data[:at] + plist + bytes(koly))
        with pytest.raises(CorruptImageError, match="block table 0 of the property list is"):
            UdifStream(image)


# --- the whole-file-system target -----------------------------------------------------------


def test_filesystem_pieces_give_back_the_image_and_the_seeds_walk(corpus: Path,
                                                                  tmp_path: Path) -> None:
    """The pieces format gives back every byte of an image (its zeros too, and its size); each
    filesystem seed is found in the volume tree as the file system it was made as (by the
    reader that opens it: TSK, libfsxfs, libfsext, libfsapfs), fits the target's input size and
    lists what ``fls -r -p`` lists, deleted entries included, with more entries only where the
    raw FAT reader adds those TSK refuses; the seeds TSK cannot open list the files their
    builder put in."""
    from bitwitness.report.browse.entries import Selection
    from bitwitness.report.browse.volumetree import open_node, read_tree
    from fuzz.targets import PiecesStream, pack_pieces

    image = bytes(8192) + b"\x01" * 100 + bytes(20000) + b"\x02" * 5 + bytes(3000)
    stream = PiecesStream(pack_pieces(image))
    assert stream.size == len(image)
    assert stream.pread(0, len(image)) == image
    found = {p.name: p for p in (corpus / "filesystem").iterdir()}
    expected = {"fat12": "fat12", "fat16": "fat16", "fat32": "fat32", "ext2": "ext2",
                "ext4": "ext4", "iso9660": "iso9660", "mbr-fat12": "fat12",
                "crafted-fat12": "fat12"}
    beyond = {"xfs": ("xfs", None), "ext4-bigalloc": ("ext4", "libfsext"),
              "iso9660-rockridge": ("iso9660", "rockridge"),
              "udf-bridge": ("udf", None), "udf250": ("udf", None)}
    #: the suite's ISO (fsimages.iso9660) is made with -J -R: Rock Ridge, read by iso9660.py
    readers = {"iso9660": "rockridge"}
    empty = {"udf-cdrw": "udf", "udf-cdr": "udf"}  # mkudffs volumes: a root folder only
    assert set(expected) <= set(found)
    assert {n for n in beyond if shutil.which("mkfs." + n.split("-")[0])} <= set(found)
    assert "iso9660-rockridge" in found or not shutil.which("xorriso")
    assert "udf250" in found
    for name, path in sorted(found.items()):
        data = path.read_bytes()
        assert len(data) <= targets.TARGETS["filesystem"][1], name
        media = PiecesStream(data)
        tree = read_tree(media)
        try:
            nodes = tree.filesystems
            if name == "udf-bridge":  # ISO 9660, and UDF as its child: the UDF side is checked
                assert [n.filesystem for n in nodes] == ["iso9660", "udf"], name
                nodes = nodes[1:]
            assert len(nodes) == 1, name
            kind, reader = beyond.get(name, (expected.get(name, empty.get(
                name, nodes[0].filesystem)), readers.get(name)))
            assert (nodes[0].filesystem, nodes[0].reader) == (kind, reader), name
            ours = list(open_node(tree, nodes[0]).walk("/", recursive=True,
                                                        selection=Selection.ALL))
        finally:
            tree.close()
        assert ours or name in empty, name
        if name in beyond:
            assert {"/small.txt", "/folder", "/folder/data.bin"} <= {e.path for e in ours}, name
        if name in expected and shutil.which("fls") and not name.startswith("mbr"):
            raw = tmp_path / f"{name}.img"
            raw.write_bytes(media.pread(0, media.size))
            listed = subprocess.run(["fls", "-r", "-p", str(raw)], capture_output=True,
                                    text=True, check=True).stdout.splitlines()
            assert len(ours) >= len(listed), name
            if not name.startswith("crafted"):
                assert len(ours) == len(listed), name


def test_filesystem_target_leaves_out_what_tsk_cannot_bound(tmp_path: Path) -> None:
    """An honest ext2 (1 KiB blocks) holding a sparse file of 80 MiB, whose block map reaches
    the triple-indirect block: The Sleuth Kit spends tens of seconds building its runs (see
    ``fuzz.targets.tsk_triple_indirect``), so the target leaves such inputs out; one of 20 MiB
    stays in."""
    require_tool("mkfs.ext2")
    from fuzz.targets import PiecesStream, pack_pieces, tsk_triple_indirect

    for size, trap in (("80M", True), ("20M", False)):
        staging = tmp_path / size
        staging.mkdir()
        subprocess.run(["truncate", "-s", size, str(staging / "sparse")], check=True)
        image = tmp_path / f"{size}.img"
        subprocess.run(["truncate", "-s", "4M", str(image)], check=True)
        subprocess.run(["mkfs.ext2", "-q", "-F", "-b", "1024", "-d", str(staging), str(image)],
                       check=True, capture_output=True)
        stream = PiecesStream(pack_pieces(image.read_bytes()))
        assert tsk_triple_indirect(stream, 0) is trap, size


def test_unreadable_entry_named_with_a_newline_is_refused_in_one_line() -> None:
    """Found by the filesystem target (fuzz/regressions/filesystem/fat12-name-with-newline-
    unreadable): a FAT entry named ``\\b\\n.^\\x01`` whose content TSK cannot read was refused
    with its name raw in the message, a line break and a backspace on the examiner's
    terminal. The name is now shown as listings show it (``^`` for a control character)."""
    from bitwitness.errors import FileSystemError
    from bitwitness.report.browse.entries import Selection
    from bitwitness.report.browse.filesystem import open_filesystem
    from fuzz.targets import PiecesStream

    data = (REGRESSIONS / "filesystem" / "fat12-name-with-newline-unreadable").read_bytes()
    fs = open_filesystem(PiecesStream(data))
    refused = []
    for entry in fs.walk("/", recursive=True, selection=Selection.ALL):
        if "\n" not in entry.path:
            continue
        try:
            fs.read(entry, 0, 100)
        except FileSystemError as exc:
            refused.append(str(exc))
    assert refused
    assert all(m.startswith("cannot read /^^.^^: ") and len(m.splitlines()) == 1
               for m in refused)


def test_udf_tags_are_put_back(tmp_path: Path) -> None:
    """``fix_udf`` leaves the UDF seed as it is; after a mutation inside descriptors (every
    copy of the volume's label: PVD, IUVD, LVD and FSD, Main and Reserve) the volume is refused,
    and once fixed it opens again: mutated inputs reach what lies behind the tags."""
    from bitwitness.errors import FileSystemError
    from bitwitness.report.browse.volumetree import open_node, read_tree
    from fuzz.targets import PiecesStream, pack_pieces

    files = tmp_path / "files"
    (files / "folder").mkdir(parents=True)
    (files / "small.txt").write_bytes(b"small\n")
    made = seeds._udf_images(tmp_path, files)
    for name, image in made.items():  # the seeds' descriptors, and bytes that only look alike
        packed = pack_pieces(image.read_bytes())
        assert checksums.fix_udf(packed) == packed, name
    data = pack_pieces(made["udf250"].read_bytes())
    damaged = data.replace("BW UDF250".encode("latin-1"), b"BW UDF251")
    assert damaged != data

    def opened(blob: bytes) -> bool:
        tree = read_tree(PiecesStream(blob))
        try:
            node = next(n for n in tree.filesystems if n.filesystem == "udf")
            open_node(tree, node).lookup("/folder/data.bin")
        except (FileSystemError, StopIteration):
            return False
        finally:
            tree.close()
        return True

    assert opened(data)
    assert not opened(damaged)
    assert opened(checksums.fix_udf(damaged))
