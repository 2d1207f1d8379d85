"""Reading evidence changes nothing, not even its access time (issue 14, point 5).

The evidence lives on an ext4 file system loop-mounted with ``strictatime``, where every read
through a descriptor opened without ``O_NOATIME`` updates the access time (the test proves that
first with a plain ``open``). Every read-only command is then run on the sample disk as raw,
split raw, E01 (written by ewfacquire), VHD and VMDK (written by qemu-img), and every file of the
image must keep its content, mtime and atime. Needs root (mount); skipped cleanly otherwise.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import require_root, require_tool, run_bitwitness

from bitwitness.image import image_files
from bitwitness.sample import materialize

#: An access time well before every other time of the files: any read would move it.
OLD = 1_000_000_000


@pytest.fixture(scope="module")
def strict_mount(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    require_root()
    require_tool("mkfs.ext4", "mount", "umount")
    base = tmp_path_factory.mktemp("atime")
    backing = base / "fs.img"
    with backing.open("wb") as fh:
        fh.truncate(400 << 20)
    subprocess.run(["mkfs.ext4", "-q", "-F", str(backing)], check=True)
    mnt = base / "mnt"
    mnt.mkdir()
    done = subprocess.run(["mount", "-o", "loop,strictatime", str(backing), str(mnt)],
                          capture_output=True, text=True, check=False)
    if done.returncode:
        pytest.skip(f"cannot loop-mount a file system here: {done.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


@pytest.fixture(scope="module")
def images(strict_mount: Path) -> dict[str, Path]:
    """The sample disk in every format, on the strictatime mount."""
    require_tool("ewfacquire", "qemu-img", "split")
    raw = materialize(strict_mount / "disk.img")
    split_dir = strict_mount / "split"
    split_dir.mkdir()
    subprocess.run(["split", "-d", "-a", "3", "--numeric-suffixes=1", "-b", "16M", str(raw),
                    str(split_dir / "disk.")], check=True)
    e01_dir = strict_mount / "e01"
    e01_dir.mkdir()
    subprocess.run(["ewfacquire", "-u", "-q", "-t", str(e01_dir / "disk"), "-c", "none",
                    "-S", "16M", str(raw)], check=True, capture_output=True)
    vhd = strict_mount / "disk.vhd"
    subprocess.run(["qemu-img", "convert", "-O", "vpc", "-o", "subformat=dynamic,force_size=on",
                    str(raw), str(vhd)], check=True)
    vmdk = strict_mount / "disk.vmdk"
    subprocess.run(["qemu-img", "convert", "-O", "vmdk", str(raw), str(vmdk)], check=True)
    return {"raw": raw, "split": split_dir / "disk.001", "e01": e01_dir / "disk.E01",
            "vhd": vhd, "vmdk": vmdk}


def _state(files: list[Path]) -> dict[Path, tuple[str, int, int]]:
    out = {}
    for path in files:
        digest = hashlib.sha256()
        fd = os.open(path, os.O_RDONLY | os.O_NOATIME)  # the check itself must not move atime
        with os.fdopen(fd, "rb") as fh:
            while block := fh.read(1 << 20):
                digest.update(block)
        st = path.stat()
        out[path] = (digest.hexdigest(), st.st_mtime_ns, st.st_atime_ns)
    return out


def _age(files: list[Path]) -> None:
    for path in files:
        os.utime(path, ns=(OLD * 10**9, path.stat().st_mtime_ns))


def test_the_mount_records_every_read(strict_mount: Path) -> None:
    """Without this, the checks below could not fail: a plain read moves the access time."""
    probe = strict_mount / "probe.bin"
    probe.write_bytes(b"x" * 4096)
    _age([probe])
    with probe.open("rb") as fh:
        fh.read()
    assert probe.stat().st_atime_ns > OLD * 10**9


COMMANDS = {
    "verify": lambda img, out: ["verify", img],
    "info": lambda img, out: ["info", img],
    "partitions": lambda img, out: ["partitions", img],
    "ls": lambda img, out: ["ls", "-p", "2", img, "/Documents"],
    "cat": lambda img, out: ["cat", "-p", "2", img, "/README.TXT"],
    "stat": lambda img, out: ["stat", "-p", "2", img, "/README.TXT"],
    "timeline": lambda img, out: ["timeline", "-p", "2", img],
    "export": lambda img, out: ["export", "-p", "2", img, "/Documents", "--to", out],
}


@pytest.mark.slow
@pytest.mark.root
@pytest.mark.parametrize("fmt", ["raw", "split", "e01", "vhd", "vmdk"])
def test_read_only_commands_keep_content_mtime_and_atime(fmt: str, images: dict[str, Path],
                                                         tmp_path: Path) -> None:
    image = images[fmt]
    files = image_files(image)
    assert files, fmt
    if fmt in ("split", "e01"):
        assert len(files) > 1, files  # every piece of the set is checked
    _age(files)
    before = _state(files)
    commands = dict(COMMANDS)
    if fmt == "e01":  # the second reader, libewf, reads through the same opener
        commands["verify --libewf"] = lambda img, out: ["verify", "--libewf", img]
    for name, args in commands.items():
        out = tmp_path / name
        result = run_bitwitness(*args(image, out))
        # raw/VHD/VMDK record no hash: verify says UNVERIFIED (exit 1)
        allowed = (0, 1) if name == "verify" else (0,)
        assert result.exit_code in allowed, (fmt, name, result.stdout[-500:], result.stderr)
        after = _state(files)
        changed = {p.name: (before[p], after[p]) for p in files if before[p] != after[p]}
        assert not changed, f"{name} on {fmt} changed {changed}"
    shutil.rmtree(tmp_path, ignore_errors=True)
