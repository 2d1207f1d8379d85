"""A socket is called a socket: TSK's name-type and meta-type alphabets differ on two letters
(a name's "s" is a socket, an inode's "s" a shadow inode and "h" a socket: fls prints ``s/h``),
and the inode's letter read with the name's meaning made every socket a "shadow" in ``stat``,
``--json`` kinds, manifests and DFXML."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import fsimages
from conftest import require_root, require_tool, run_bitwitness


def test_a_socket_is_a_socket(tmp_path: Path) -> None:
    require_root()
    require_tool("mkfs.ext4", "fls")
    image = fsimages.blank(tmp_path / "ext4.img", 32 << 20)
    subprocess.run(["mkfs.ext4", "-q", "-F", image], check=True, capture_output=True)
    with fsimages.loop_mounted(image, tmp_path / "m") as mnt:
        made = socket.socket(socket.AF_UNIX)
        made.bind(str(mnt / "sock1"))
        made.close()
        subprocess.run(["mkfifo", mnt / "fifo1"], check=True)
    fls = subprocess.run(["fls", image], check=True, capture_output=True, text=True).stdout
    assert "s/h" in fls
    entries = {e["name"]: e for e in run_bitwitness("ls", "--json", image).json()["entries"]}
    assert entries["sock1"]["type"] == "s/h"
    assert entries["sock1"]["kind"] == "socket"
    assert entries["fifo1"]["kind"] == "fifo"
    assert "type:            socket (s/h)" in run_bitwitness("stat", image, "/sock1").stdout
