"""Evidence whose file names print alike, spell each other's escapes, or are not UTF-8.

The names are the ones the output sweep used: an ext4 made by ``mkfs.ext4 -d`` from a folder
holding them, so the kernel, not our code, decides the bytes stored. Each file holds its own name
(the bytes, then a newline), so that ``icat`` of an inode says, independently of any name
spelling, which name that inode has.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from conftest import require_tool

#: File names (bytes, as ext4 stores them) and what each tests.
HOSTILE = {
    "literal": b"x\\xffy",  # backslash, x, f, f: how the byte 0xFF is spelled in escapes
    "byte": b"x\xffy",  # the byte 0xFF
    "tab": b"a\tb",  # a control character: printed ^ as fls prints it
    "caret": b"a^b",  # what the tab prints as
    "soh": b"a\x01b",  # another control character printed ^
    "hangul": "한국어.txt".encode(),
    "hebrew": "שלום.txt".encode(),
    "del": b"d\x7fe",
    "c1": "c\u0085d".encode(),
    "rlo": "\u202egnp.exe".encode(),  # a right-to-left override: printed \u202e
    "pipe": b"p|q",  # mactime's field separator
    "pipe-spelled": b"p\\x7cq",  # what an escape of | as \x7c would print
    "pipe-percent": b"p%7Cq",  # what mactime decodes to p|q
    "percent": b"100%",  # a percent sign mactime leaves alone
    "nfc": "caf\u00e9".encode(),  # café composed
    "nfd": "cafe\u0301".encode(),  # café decomposed: another file that looks the same
}


def hostile_image(tmp: Path) -> Path:
    """An 8 MiB ext4 holding one file per :data:`HOSTILE` name in its root (skips the test when
    mkfs.ext4 is missing); the names as the kernel wrote them are :func:`stored_names`."""
    require_tool("mkfs.ext4")
    tree = tmp / "tree"
    tree.mkdir()
    for name in HOSTILE.values():
        (tree / os.fsdecode(name)).write_bytes(name + b"\n")  # bytes kept as stored
    image = tmp / "ext.img"
    image.write_bytes(bytes(8 << 20))
    subprocess.run(["mkfs.ext4", "-q", "-d", str(tree), str(image)], capture_output=True,
                   check=True)
    return image


def stored_names(tmp: Path) -> set[bytes]:
    """The names as the tree given to mkfs.ext4 holds them, read by the kernel (bytes)."""
    return {os.fsencode(p.name) for p in (tmp / "tree").iterdir()}


def icat_name(image: Path, inode: str) -> bytes:
    """The name of ``inode`` as its content (``icat``) records it."""
    data = subprocess.run(["icat", str(image), inode], capture_output=True,
                          check=True).stdout
    assert data.endswith(b"\n"), (inode, data)
    return data[:-1]
