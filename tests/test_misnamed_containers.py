"""A file named as a container whose signature is gone (one damaged header byte) is refused by
name, not read as raw media: its "media" were the container's own bytes, hashed by verify
(UNVERIFIED, exit 1) and browsed by partitions (exit 0) as if they were the disk's. ``--format
raw`` still reads the file's bytes on purpose; files named as raw media stay raw."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from conftest import require_tool, run_bitwitness

from bitwitness.errors import ExitCode


@pytest.mark.parametrize(("fmt", "suffix", "what"), [
    ("qcow2", ".qcow2", "QCOW2"), ("qed", ".qed", "QED"), ("vdi", ".vdi", "VirtualBox VDI"),
    ("vhdx", ".vhdx", "VHDX"), ("parallels", ".hds", "Parallels"),
])
def test_a_container_with_its_signature_damaged_is_refused(tmp_path: Path, fmt: str,
                                                           suffix: str, what: str) -> None:
    require_tool("qemu-img")
    image = tmp_path / f"disk{suffix}"
    subprocess.run(["qemu-img", "create", "-q", "-f", fmt, image, "4M"], check=True)
    assert run_bitwitness("info", image).exit_code == ExitCode.OK
    data = bytearray(image.read_bytes())
    at = 0x40 if fmt == "vdi" else 0  # VDI's signature follows its 64-byte banner
    data[at] ^= 0x01
    image.write_bytes(bytes(data))
    for command in ("info", "verify", "partitions"):
        done = run_bitwitness(command, image)
        assert done.exit_code == ExitCode.USAGE, (command, done.stdout)
        assert f"named as a {what} image, but it does not begin (or end) as one" in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
    forced = run_bitwitness("info", image, "--format", "raw", "--json")
    assert forced.exit_code == ExitCode.OK
    assert forced.json()["media_size"] == image.stat().st_size


def test_files_named_as_raw_media_stay_raw(tmp_path: Path) -> None:
    for name in ("disk.img", "disk.dd", "disk.raw", "disk.bin", "evidence"):
        path = tmp_path / name
        path.write_bytes(b"\x01" * 4096)
        done = run_bitwitness("info", path, "--json")
        assert done.exit_code == ExitCode.OK, (name, done.stderr)
        assert done.json()["media_size"] == 4096
