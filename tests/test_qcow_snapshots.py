"""A QCOW2 image's internal snapshots are named by ``info``: other states of the disk kept
inside the file (a VM's disk before an event), which the media read (the current state) does
not show. They were not mentioned at all. Checked against ``qemu-img snapshot -l``; a table
that cannot be read is said in ``info``, which still shows the image."""

from __future__ import annotations

import os
import re
import struct
import subprocess
from pathlib import Path

import pytest
from conftest import require_tool, run_bitwitness

from bitwitness.errors import ExitCode
from bitwitness.image import open_image


def _qemu(*args: str | Path) -> str:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, check=True,
                          timeout=60, env={**os.environ, "TZ": "UTC"}).stdout


@pytest.fixture
def image(tmp_path: Path) -> Path:
    require_tool("qemu-img", "qemu-io")
    path = tmp_path / "vm.qcow2"
    _qemu("qemu-img", "create", "-q", "-f", "qcow2", path, "8M")
    _qemu("qemu-io", "-c", "write -P 0x11 0 64k", path)
    _qemu("qemu-img", "snapshot", "-c", "before the event", path)
    _qemu("qemu-io", "-c", "write -P 0x22 0 64k", path)
    _qemu("qemu-img", "snapshot", "-c", "after", path)
    return path


def test_info_names_every_internal_snapshot_as_qemu_lists_them(image: Path) -> None:
    listed = _qemu("qemu-img", "snapshot", "-l", image).splitlines()[2:]
    rows = [re.match(r"\s*(\S+)\s+(.+?)\s{2,}.*?(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d)",
                     line) for line in listed]
    done = run_bitwitness("info", image, "--json")
    assert done.exit_code == ExitCode.OK, done.stderr
    note = done.json()["details"]["internal_snapshots"]
    assert note.startswith(f"{len(rows)} internal snapshots")
    assert len(rows) == 2
    for row in rows:
        assert row is not None, listed
        ident, name, day, time = row.groups()
        assert f"ID {ident} {name!r} taken {day}T{time}Z" in note, (row, note)
    # the media read is the current state, not a snapshot's
    with open_image(image) as stream:
        assert stream.pread(0, 4) == b"\x22" * 4
    text = run_bitwitness("info", image).stdout
    assert "Internal snapshots:" in text


def test_a_damaged_snapshot_table_is_said_not_raised(image: Path) -> None:
    data = bytearray(image.read_bytes())
    (table,) = struct.unpack_from(">Q", data, 64)
    struct.pack_into(">I", data, table + 36, 1 << 30)  # extra data of a gigabyte
    image.write_bytes(bytes(data))
    done = run_bitwitness("info", image, "--json")
    assert done.exit_code == ExitCode.OK, done.stderr
    note = done.json()["details"]["internal_snapshots"]
    assert "the snapshot table cannot be read" in note
    assert f"file offset {table}" in note


def test_a_name_is_shown_as_text(image: Path) -> None:
    data = bytearray(image.read_bytes())
    (table,) = struct.unpack_from(">Q", data, 64)
    (id_size,) = struct.unpack_from(">H", data, table + 12)
    (extra,) = struct.unpack_from(">I", data, table + 36)
    name_at = table + 40 + extra + id_size
    data[name_at:name_at + 3] = b"\x1b[2"  # an escape sequence where the name was
    image.write_bytes(bytes(data))
    note = run_bitwitness("info", image, "--json").json()["details"]["internal_snapshots"]
    assert "\x1b" not in note
    assert "\\x1b[2" in note
