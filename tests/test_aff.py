"""AFF images written by afflib's ``affconvert`` (zlib, LZMA, uncompressed, small pages): read
exactly (md5sum of the source), their stored MD5/SHA-1 verified, and ``affcat`` (afflib's own
reader) agreeing as the second reader; a changed page is caught."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from conftest import require_tool, run_bitwitness
from contract import check_stream_contract

from bitwitness.errors import ExitCode
from bitwitness.image import open_image

MiB = 1 << 20


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("aff") / "media.raw"
    data = bytearray(3 * MiB + 7 * 512)
    data[:MiB] = os.urandom(MiB)
    data[2 * MiB : 2 * MiB + 100_000] = b"x" * 100_000
    path.write_bytes(bytes(data))
    return path


VARIANTS = {"zlib": [], "lzma": ["-L"], "uncompressed": ["-x"], "64k-pages": ["-s", "64k"]}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_affconvert_images(tmp_path: Path, source: Path, variant: str) -> None:
    require_tool("affconvert", "affcat", "md5sum")
    image = tmp_path / "disk.aff"
    subprocess.run(["affconvert", "-q", *VARIANTS[variant], "-o", str(image), str(source)],
                   check=True, capture_output=True)
    md5 = subprocess.run(["md5sum", str(source)], capture_output=True, text=True,
                         check=True).stdout.split()[0]
    with open_image(image) as stream:
        assert stream.info.format == "aff"
        check_stream_contract(stream, source.read_bytes())
    res = run_bitwitness("verify", "--second-reader", image, "--json")
    doc = res.json()["images"][0]
    assert res.exit_code == ExitCode.OK, doc["problems"]
    assert doc["verdict"] == "VERIFIED"
    assert doc["stored"]["md5"] == md5 == doc["computed"]["md5"]
    assert "sha1" in doc["stored"]
    assert doc["second_reader"]["reader"].startswith("affcat")
    assert doc["second_reader"]["agree"] is True


def test_a_changed_page_is_a_mismatch(tmp_path: Path, source: Path) -> None:
    require_tool("affconvert")
    image = tmp_path / "disk.aff"
    subprocess.run(["affconvert", "-q", "-x", "-o", str(image), str(source)], check=True,
                   capture_output=True)
    data = bytearray(image.read_bytes())
    at = data.index(b"page0") + 5 + 1000
    data[at] ^= 0xFF
    image.write_bytes(bytes(data))
    res = run_bitwitness("verify", image, "--json")
    assert res.exit_code == ExitCode.EVIDENCE
    assert res.json()["images"][0]["verdict"] == "MISMATCH"


def test_an_aff_that_records_no_size_and_no_page_is_corrupt(tmp_path: Path,
                                                            source: Path) -> None:
    """Cut before its first page (and so before the image size, written last): no media size
    can be known. A typed, one-line refusal (exit 1), not a negative size (found by the hostile
    mutations)."""
    require_tool("affconvert")
    image = tmp_path / "whole.aff"
    subprocess.run(["affconvert", "-q", "-o", str(image), str(source)], check=True,
                   capture_output=True)
    data = image.read_bytes()
    cut = data.rfind(b"AFF\x00", 0, data.find(b"page0"))
    assert cut > 0
    short = tmp_path / "short.aff"
    short.write_bytes(data[:cut])
    res = run_bitwitness("verify", short)
    assert res.exit_code == ExitCode.EVIDENCE
    assert "neither an image size nor a single page" in res.stdout + res.stderr
    assert "Traceback" not in res.stderr


def test_reads_of_huge_pages_take_what_they_read(tmp_path: Path) -> None:
    """A file declaring 64 MiB pages (the largest accepted): reading 64 KiB of a page never
    written, of a page of zeros or of a stored page allocates about 64 KiB, not the page
    (found by the aff fuzz target: reads were aligned to whole pages, and 200 MiB pages
    went past 300 MiB of memory). A stored page cut short in the middle of the media is
    corrupt; the last page may stop early. The file is fuzz/regressions/aff/pages-of-64-mib."""
    import tracemalloc

    from bitwitness.errors import CorruptImageError
    from bitwitness.images.aff import AffStream

    page = 64 << 20
    image = Path(__file__).resolve().parent.parent / "fuzz/regressions/aff/pages-of-64-mib"
    with AffStream(image) as stream:
        assert stream.size == 5 * page
        tracemalloc.start()
        try:
            for number in (0, 1, 3, 4):
                data = stream.pread(number * page + page // 2, 64 << 10)
                assert data == bytes(64 << 10)
            assert stream.pread(4 * page, 8) == b"last" + bytes(4)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 4 << 20
        with pytest.raises(CorruptImageError, match="page 2 holds 1200 bytes"):
            stream.pread(2 * page, 512)


def test_affcat_ending_early_is_a_failed_second_reading(tmp_path: Path, source: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """affcat that stops part way (a page afflib cannot read, a crash) is a second reading that
    failed at a named offset, never zeros standing in for the rest. The stand-in affcat writes
    the real affcat's first MiB and exits 1."""
    require_tool("affconvert", "affcat")
    image = tmp_path / "disk.aff"
    subprocess.run(["affconvert", "-q", "-o", str(image), str(source)], check=True,
                   capture_output=True)
    real = subprocess.run(["which", "affcat"], capture_output=True, text=True,
                          check=True).stdout.strip()
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "affcat").write_text(f"#!/bin/sh\n{real} \"$1\" | head -c {MiB}\nexit 1\n")
    (fake / "affcat").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}{os.pathsep}{os.environ['PATH']}")
    res = run_bitwitness("verify", "--second-reader", image, "--json")
    doc = res.json()["images"][0]
    assert res.exit_code == ExitCode.EVIDENCE
    assert doc["second_reader"]["agree"] is False
    assert f"affcat stopped at media offset {MiB} of" in doc["second_reader"]["error"]
