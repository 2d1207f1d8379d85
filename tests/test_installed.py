"""``bitwitness.installed.version`` answers exactly as ``importlib.metadata.version`` does.

The acquisition log records library versions through it; it exists only to spare every run the
import of importlib.metadata, so any difference from importlib.metadata is a bug.
"""

from __future__ import annotations

import sys
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

from bitwitness import installed

INSTALLED = sorted({dist.metadata["Name"] for dist in metadata.distributions()})


def expected(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def actual(name: str) -> str | None:
    try:
        return installed.version(name)
    except LookupError:
        return None


@pytest.mark.parametrize("name", INSTALLED)
def test_every_installed_distribution(name: str) -> None:
    assert actual(name) == expected(name)
    assert actual(name.upper().replace("-", "_")) == expected(name)


@pytest.mark.parametrize("name", ["rich", "click", "isal", "libewf-python", "pytsk3"])
def test_the_logged_libraries_take_the_fast_path(name: str) -> None:
    """Without importlib.metadata: a fallback here would bring the import cost back."""
    assert installed._version_from_path(name) == metadata.version(name)


def test_not_installed() -> None:
    with pytest.raises(LookupError):
        installed.version("no-such-distribution-bitwitness")


def dist_info(folder: Path, name: str, metadata_text: str) -> Path:
    info = folder / f"{name}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(metadata_text, encoding="utf-8")
    return info


@pytest.mark.parametrize("text", [
    "Metadata-Version: 2.1\nName: demo\nVersion: 1.2.3\n\nVersion: 9\n",
    "Metadata-Version: 2.1\nName: demo\nversion:\t1.0  \n",  # case, tab, trailing spaces
    "Metadata-Version: 2.1\nSummary: one\n  two\nVersion: 2.0\nVersion: 3.0\n",
    "Metadata-Version: 2.1\nName: demo\nVersion: 1.2\n .3\n",  # folded
    "Metadata-Version: 2.1\r\nName: demo\r\nVersion: 4.0\r\n",
    "Metadata-Version: 2.1\nName: demo\nVersion: 5.0",  # no final newline
])
def test_metadata_headers_read_as_the_email_parser_reads_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    dist_info(tmp_path, "demo-0", text)
    monkeypatch.setattr(sys, "path", [str(tmp_path)])
    assert actual("demo") == expected("demo")
    assert actual("demo") is not None


def test_first_path_entry_and_name_normalisation(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dist_info(tmp_path / "a", "Demo_Pkg-2.0", "Name: Demo.Pkg\nVersion: 2.0\n")
    dist_info(tmp_path / "b", "demo_pkg-1.0", "Name: demo-pkg\nVersion: 1.0\n")
    monkeypatch.setattr(sys, "path", [str(tmp_path / "missing"), str(tmp_path / "a"),
                                      str(tmp_path / "b")])
    for name in ("demo-pkg", "DEMO_PKG", "demo.pkg", "Demo__Pkg"):
        assert actual(name) == expected(name) == "2.0"


def test_what_the_fast_path_leaves_to_importlib_metadata(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    egg = tmp_path / "egg"
    egg.mkdir()
    (egg / "eggy-1.0.egg-info").write_text("Name: eggy\nVersion: 1.0\n", encoding="utf-8")
    pkgy = dist_info(tmp_path / "pkginfo", "pkgy-1.0", "")  # empty METADATA: PKG-INFO counts
    (pkgy / "PKG-INFO").write_text("Name: pkgy\nVersion: 1.1\n", encoding="utf-8")
    with zipfile.ZipFile(tmp_path / "zipped.zip", "w") as archive:
        archive.writestr("zippy-3.0.dist-info/METADATA", "Name: zippy\nVersion: 3.0\n")
    monkeypatch.setattr(sys, "path", [str(egg), str(tmp_path / "pkginfo"),
                                      str(tmp_path / "zipped.zip")])
    assert actual("eggy") == expected("eggy") == "1.0"
    assert actual("pkgy") == expected("pkgy") == "1.1"
    assert actual("zippy") == expected("zippy") == "3.0"
