"""A symbolic link on XFS reads as its target, as ``icat`` reads an ext link and as export
writes it: ``cat`` refused it (libfsxfs reads no data of a link: "not a regular file"). Short
(inline) and long targets, checked against ``readlink`` on a read-only loop mount."""

from __future__ import annotations

import subprocess
from pathlib import Path

from conftest import cat_bytes, require_root, require_tool


def test_links_read_as_their_targets(tmp_path: Path) -> None:
    require_root()
    require_tool("mkfs.xfs")
    image = tmp_path / "xfs.img"
    with image.open("wb") as fh:
        fh.truncate(300 << 20)
    subprocess.run(["mkfs.xfs", "-q", "-f", image], check=True, capture_output=True)
    mnt = tmp_path / "m"
    mnt.mkdir()
    targets = {"short": "small.txt", "long": "/a/longer/target/" + "x" * 200}
    subprocess.run(["mount", "-o", "loop", image, mnt], check=True)
    try:
        (mnt / "small.txt").write_bytes(b"hi\n")
        for name, target in targets.items():
            (mnt / name).symlink_to(target)
    finally:
        subprocess.run(["umount", mnt], check=True)
    subprocess.run(["mount", "-o", "loop,ro", image, mnt], check=True)
    try:
        kernel = {name: str((mnt / name).readlink()) for name in targets}
    finally:
        subprocess.run(["umount", mnt], check=True)
    for name, target in kernel.items():
        assert cat_bytes(image, f"/{name}") == target.encode()
