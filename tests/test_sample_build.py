"""scripts/make-sample-disk.sh rebuilds the packaged sample, byte for byte with the same tools.

The build needs no root and no mounting; it takes about two seconds. Where the installed
dosfstools/mtools/e2fsprogs/util-linux/xz versions are the ones recorded in the packaged
description, the rebuilt disk must be identical (same MD5/SHA-1/SHA-256, same xz file); with
other versions the files, partitions and contents must still match and the byte check is skipped.
"""

from __future__ import annotations

import json
import subprocess
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, require_tool, sha256_of

from bitwitness.sample import DESCRIPTION_FILE, description

SCRIPT = REPO / "scripts" / "make-sample-disk.sh"
TOOLS = ("bash", "sfdisk", "mkfs.vfat", "mlabel", "mmd", "mcopy", "mdel", "mkfs.ext4", "debugfs",
         "xz", "md5sum", "sha1sum", "sha256sum")


def build(outdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(SCRIPT), *args, str(outdir)], capture_output=True,
                          text=True, timeout=120, check=False)


def packaged() -> dict[str, Any]:
    return json.loads((resources.files("bitwitness.sample") / DESCRIPTION_FILE).read_text("utf-8"))


def test_rebuild_matches_the_packaged_sample(tmp_path: Path) -> None:
    require_tool(*TOOLS)
    result = build(tmp_path, "--keep-raw")
    assert result.returncode == 0, result.stderr
    rebuilt = json.loads((tmp_path / DESCRIPTION_FILE).read_text("utf-8"))
    shipped = packaged()
    raw = tmp_path / "sample-disk.img"
    assert raw.stat().st_size == rebuilt["size"]
    assert sha256_of(raw) == rebuilt["hashes"]["sha256"]  # the script's sha256sum is honest
    for key in ("size", "partitions", "directories", "files", "formatted", "disk_id"):
        assert rebuilt[key] == shipped[key], key
    if rebuilt["tools"] != shipped["tools"]:
        pytest.skip(f"tool versions {rebuilt['tools']} differ from the packaged build's "
                    f"{shipped['tools']}: byte identity not expected")
    assert rebuilt["hashes"] == shipped["hashes"]
    assert rebuilt == shipped
    shipped_xz = resources.files("bitwitness.sample") / description().image_file
    assert (tmp_path / "sample-disk.img.xz").read_bytes() == shipped_xz.read_bytes()


def test_script_refuses_to_overwrite_its_outputs(tmp_path: Path) -> None:
    require_tool("bash")
    existing = tmp_path / "sample-disk.json"
    existing.write_text("mine")
    result = build(tmp_path)
    assert result.returncode == 2
    assert "already exists" in result.stderr
    assert "--overwrite" in result.stderr
    assert existing.read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sample-disk.json"]


def test_script_rejects_unknown_options(tmp_path: Path) -> None:
    require_tool("bash")
    result = build(tmp_path, "--frobnicate")
    assert result.returncode == 2
    assert "unknown option --frobnicate" in result.stderr
    assert list(tmp_path.iterdir()) == []
