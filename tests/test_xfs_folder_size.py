"""An XFS folder's size is the one its inode records (``di_size``), as the kernel shows it:
libfsxfs gives 0 for every folder, and ``stat``, ``ls -l`` and timelines said 0. Folders of a
few entries (short form, in the inode), of a block, and of thousands (several blocks), in more
than one allocation group, checked against ``os.stat`` on a read-only loop mount."""

from __future__ import annotations

import subprocess
from pathlib import Path

from conftest import require_root, require_tool, run_bitwitness


def test_folder_sizes_are_the_kernels(tmp_path: Path) -> None:
    require_root()
    require_tool("mkfs.xfs")
    image = tmp_path / "xfs.img"
    with image.open("wb") as fh:
        fh.truncate(512 << 20)
    subprocess.run(["mkfs.xfs", "-q", "-f", image], check=True, capture_output=True)
    mnt = tmp_path / "m"
    mnt.mkdir()
    subprocess.run(["mount", "-o", "loop", image, mnt], check=True)
    try:
        for name, count in (("few", 5), ("block", 60), ("many", 3000)):
            folder = mnt / name
            folder.mkdir()
            for number in range(count):
                (folder / f"entry-{number}").write_bytes(b"x")
        (mnt / "few" / "inner").mkdir()
    finally:
        subprocess.run(["umount", mnt], check=True)
    subprocess.run(["mount", "-o", "loop,ro", image, mnt], check=True)
    try:
        kernel = {"/" + str(p.relative_to(mnt)): p.stat().st_size
                  for p in mnt.rglob("*") if p.is_dir()}
    finally:
        subprocess.run(["umount", mnt], check=True)
    entries = run_bitwitness("ls", "-r", "--json", image).json()["entries"]
    ours = {e["path"]: e["size"] for e in entries if e["kind"] == "directory"}
    assert ours == kernel
    assert len(set(kernel.values())) >= 3
    assert 0 not in kernel.values()
