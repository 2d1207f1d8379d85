"""``convert --format`` and ``restore --format``: the source read as a registry format whatever its
content says, as ``verify`` and ``info`` take it.

``--format raw`` reads a container file itself as the media (its bytes, judged by ``md5sum`` of
the file); without it the same file gives the disk inside (judged by ``qemu-img convert -O raw``).
The log records the forced format; a name the registry does not know is refused before anything
is written.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from conftest import require_tool, run_bitwitness

from bitwitness.errors import ExitCode

MiB = 1 << 20


def _md5sum(path: Path) -> str:
    return subprocess.run(["md5sum", str(path)], capture_output=True, text=True,
                          check=True).stdout.split()[0]


@pytest.fixture
def qcow2(tmp_path: Path) -> tuple[Path, str]:
    """A QCOW2 written by qemu-img and the md5 of its media as QEMU reads it."""
    require_tool("qemu-img", "md5sum")
    media = tmp_path / "media.raw"
    media.write_bytes(os.urandom(MiB) + bytes(MiB))
    image = tmp_path / "disk.qcow2"
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", str(media), str(image)],
                   check=True)
    back = tmp_path / "qemu.raw"
    subprocess.run(["qemu-img", "convert", "-O", "raw", str(image), str(back)], check=True)
    return image, _md5sum(back)


def test_convert_format_raw_reads_the_container_file(tmp_path: Path,
                                                     qcow2: tuple[Path, str]) -> None:
    image, media_md5 = qcow2
    res = run_bitwitness("convert", image, "-o", tmp_path / "inside", "--to", "raw", "--json")
    assert res.exit_code == ExitCode.OK, res.stderr
    assert _md5sum(tmp_path / "inside.raw") == media_md5

    res = run_bitwitness("convert", "--format", "raw", image, "-o", tmp_path / "file",
                         "--to", "raw", "--json")
    assert res.exit_code == ExitCode.OK, res.stderr
    assert _md5sum(tmp_path / "file.raw") == _md5sum(image)
    assert _md5sum(tmp_path / "file.raw") != media_md5
    log = json.loads((tmp_path / "file.json").read_text())
    assert log["options"]["forced_source_format"] == "raw"
    assert "forced_source_format" not in json.loads(
        (tmp_path / "inside.json").read_text())["options"]


def test_convert_format_names_a_registry_format(tmp_path: Path,
                                                qcow2: tuple[Path, str]) -> None:
    """The same registry names as verify/info; an unknown one is one line, exit 2, no output."""
    image, media_md5 = qcow2
    renamed = tmp_path / "evidence.bin"
    image.rename(renamed)
    res = run_bitwitness("convert", "--image-format", "qcow", renamed, "-o", tmp_path / "out",
                         "--to", "vhd", "--json")
    assert res.exit_code == ExitCode.OK, res.stderr
    back = tmp_path / "back.raw"
    subprocess.run(["qemu-img", "convert", "-f", "vpc", "-O", "raw", str(tmp_path / "out.vhd"),
                    str(back)], check=True)
    assert _md5sum(back) == media_md5
    bad = run_bitwitness("convert", "--format", "nonsense", renamed, "-o", tmp_path / "bad",
                         "--to", "raw")
    assert bad.exit_code == ExitCode.USAGE
    assert "unknown format 'nonsense'" in bad.stderr
    assert "Traceback" not in bad.stderr
    assert not list(tmp_path.glob("bad*"))


def test_restore_format_raw(tmp_path: Path, qcow2: tuple[Path, str]) -> None:
    image, media_md5 = qcow2
    inside = tmp_path / "inside.img"
    res = run_bitwitness("restore", image, inside, "--yes", "--verify", "--json",
                         "--log", tmp_path / "log-inside")
    assert res.exit_code == ExitCode.OK, res.stderr
    assert _md5sum(inside) == media_md5

    whole = tmp_path / "whole.img"
    res = run_bitwitness("restore", "--format", "raw", image, whole, "--yes", "--verify",
                         "--json", "--log", tmp_path / "log-whole")
    assert res.exit_code == ExitCode.OK, res.stderr
    assert _md5sum(whole) == _md5sum(image)
    log = json.loads((tmp_path / "log-whole.json").read_text())
    assert log["options"]["forced_source_format"] == "raw"

    bad = run_bitwitness("restore", "--format", "nonsense", image, tmp_path / "no.img", "--yes")
    assert bad.exit_code == ExitCode.USAGE
    assert "unknown format 'nonsense'" in bad.stderr
    assert not (tmp_path / "no.img").exists()


def test_restore_from_a_bundle_folder(tmp_path: Path) -> None:
    """An image that is a folder (a sparse bundle) restores as any other image: its media."""
    import hashlib

    from builders.apple import build_sparsebundle

    media = os.urandom(MiB) + bytes(MiB)
    bundle = build_sparsebundle(tmp_path / "disk.sparsebundle", media)
    target = tmp_path / "restored.img"
    res = run_bitwitness("restore", bundle, target, "--yes", "--verify", "--json",
                         "--log", tmp_path / "log")
    assert res.exit_code == ExitCode.OK, res.stderr
    assert _md5sum(target) == hashlib.md5(media, usedforsecurity=False).hexdigest()
