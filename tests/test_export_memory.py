"""``export`` of everything keeps memory flat as the file count grows: the manifests are
streamed to disk, not built in memory, and stay complete (checked against ``fls``).

Two ext4 file systems made by ``mkfs.ext4 -d``, one with ten times the files of the other, are
exported in-process under tracemalloc; the larger export's peak may exceed the smaller one's by
far less than what holding a manifest row (or a listed entry) per file would cost.
"""

from __future__ import annotations

import json
import subprocess
import tracemalloc
from pathlib import Path

from conftest import require_tool

from bitwitness.image import open_image
from bitwitness.report.browse.entries import Selection
from bitwitness.report.browse.export import export
from bitwitness.report.browse.filesystem import open_filesystem

PER_FOLDER = 100
SMALL, LARGE = 100, 1000
#: Allowed growth of the peak from SMALL to LARGE files: 256 bytes per added file (an 8-byte
#: digest of each target name in a set, the walk of one more folder per 100 files), where a
#: manifest row or a listed entry held per file costs several KiB each (> 4 MiB here).
ALLOWED = (LARGE - SMALL) * 256


def _ext4(folder: Path, files: int) -> Path:
    tree = folder / f"tree{files}"
    for n in range(files):
        sub = tree / f"d{n // PER_FOLDER:03d}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"file{n:05d}.txt").write_bytes(f"content of file {n}\n".encode())
    image = folder / f"fs{files}.img"
    subprocess.run(["mkfs.ext4", "-q", "-F", "-N", str(files + 200), "-d", str(tree),
                    str(image), "16M"], check=True, capture_output=True)
    return image


def _export_peak(image: Path, out: Path) -> tuple[int, dict]:
    stream = open_image(image)
    try:
        fs = open_filesystem(stream)
        tracemalloc.start()
        try:
            result = export(fs, ["/"], out, image=image, selection=Selection.ALLOCATED)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    finally:
        stream.close()
    assert result.file_count >= 1
    return peak, json.loads(result.manifest_json.read_bytes())


def test_export_memory_does_not_grow_with_file_count(tmp_path: Path) -> None:
    require_tool("mkfs.ext4", "fls")
    small, large = _ext4(tmp_path, SMALL), _ext4(tmp_path, LARGE)
    _export_peak(small, tmp_path / "warm")  # imports and caches, outside the measurement
    small_peak, _ = _export_peak(small, tmp_path / "small")
    large_peak, manifest = _export_peak(large, tmp_path / "large")
    # complete: every regular file fls lists is in the manifest, with its content's hash
    fls = subprocess.run(["fls", "-r", "-p", "-F", "-u", str(large)], capture_output=True,
                         text=True, check=True).stdout
    listed = {"/" + line.split("\t", 1)[1] for line in fls.splitlines()
              if line.startswith("r/r")}
    sources = {f["source"] for f in manifest["files"]}
    assert {s for s in listed if "/d" in s} <= sources
    assert len([s for s in sources if s.startswith("/d")]) == LARGE
    assert manifest["complete"] is True
    assert manifest["failed"] == []
    assert len(manifest["folders"]) >= LARGE // PER_FOLDER
    growth = large_peak - small_peak
    assert growth < ALLOWED, (f"peak grew by {growth} bytes from {SMALL} to {LARGE} files "
                              f"(allowed {ALLOWED})")
