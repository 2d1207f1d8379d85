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
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, require_tool

sys.path.insert(0, str(REPO))

from fuzz import checksums, seeds, targets

REGRESSIONS = REPO / "fuzz" / "regressions"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("seeds")
    for target in targets.TARGETS:
        assert seeds.build(target, out / target), target
    return out


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
