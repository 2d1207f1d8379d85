"""A symbolic link on XFS reads as its target, as ``icat`` reads an ext link and as export
writes it: ``cat`` refused it (libfsxfs reads no data of a link: "not a regular file"). Short
(inline) and long targets, checked against ``readlink`` on a read-only loop mount."""

from __future__ import annotations

import subprocess
from pathlib import Path

import fsimages
from conftest import cat_bytes, require_root, require_tool


def test_links_read_as_their_targets(tmp_path: Path) -> None:
    require_root()
    require_tool("mkfs.xfs")
    image = fsimages.blank(tmp_path / "xfs.img", 300 << 20)
    subprocess.run(["mkfs.xfs", "-q", "-f", image], check=True, capture_output=True)
    targets = {"short": "small.txt", "long": "/a/longer/target/" + "x" * 200}
    with fsimages.loop_mounted(image, tmp_path / "m") as mnt:
        (mnt / "small.txt").write_bytes(b"hi\n")
        for name, target in targets.items():
            (mnt / name).symlink_to(target)
    with fsimages.loop_mounted(image, tmp_path / "m", "loop,ro") as mnt:
        kernel = {name: str((mnt / name).readlink()) for name in targets}
    for name, target in kernel.items():
        assert cat_bytes(image, f"/{name}") == target.encode()
