"""An XFS folder's size is the one its inode records (``di_size``), as the kernel shows it:
libfsxfs gives 0 for every folder, and ``stat``, ``ls -l`` and timelines said 0. Folders of a
few entries (short form, in the inode), of a block, and of thousands (several blocks), in more
than one allocation group, checked against ``os.stat`` on a read-only loop mount."""

from __future__ import annotations

import subprocess
from pathlib import Path

import fsimages
from conftest import require_root, require_tool, run_bitwitness


def test_folder_sizes_are_the_kernels(tmp_path: Path) -> None:
    require_root()
    require_tool("mkfs.xfs")
    image = fsimages.blank(tmp_path / "xfs.img", 512 << 20)
    subprocess.run(["mkfs.xfs", "-q", "-f", image], check=True, capture_output=True)
    with fsimages.loop_mounted(image, tmp_path / "m") as mnt:
        for name, count in (("few", 5), ("block", 60), ("many", 3000)):
            folder = mnt / name
            folder.mkdir()
            for number in range(count):
                (folder / f"entry-{number}").write_bytes(b"x")
        (mnt / "few" / "inner").mkdir()
    with fsimages.loop_mounted(image, tmp_path / "m", "loop,ro") as mnt:
        kernel = {"/" + str(p.relative_to(mnt)): p.stat().st_size
                  for p in mnt.rglob("*") if p.is_dir()}
    entries = run_bitwitness("ls", "-r", "--json", image).json()["entries"]
    ours = {e["path"]: e["size"] for e in entries if e["kind"] == "directory"}
    assert ours == kernel
    assert len(set(kernel.values())) >= 3
    assert 0 not in kernel.values()
