"""Our own LVM2 reader (report/browse/lvm2.py) against physical volumes the LVM tools wrote on
loop devices: ``pvcreate``/``vgcreate``/``lvcreate --activate n``/``lvextend``, and
``vgcfgrestore`` of hand-written metadata for layouts ``lvcreate`` cannot make here (three
segments out of order, two stripes on one PV, a thin pool). Device-mapper is absent, so LVM runs
with activation off and a filter that sees only our loop devices.

Oracles: ``lvs --segments`` (where each segment's extents lie), ``pvs -o pe_start``, ``vgs -o
vg_seqno``. The data area is filled with random bytes by ``dd`` before reading, so a volume's
expected content is its PV ranges end to end (striped: chunk by chunk, as dm-stripe maps them).
"""

from __future__ import annotations

import hashlib
import itertools
import os
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import require_root, require_tool, run_bitwitness

from bitwitness.errors import FileSystemError
from bitwitness.report.browse import lvm2
from bitwitness.stream import BytesStream

pytestmark = pytest.mark.root

MIB = 1 << 20
EXTENT = 256 * 1024
UUID1 = "aaaaaa-bbbb-cccc-dddd-eeee-ffff-gggggg"
UUID2 = "hhhhhh-iiii-jjjj-kkkk-llll-mmmm-nnnnnn"


@dataclass
class Loops:
    """Image files on loop devices that LVM (and only it) sees through a filter."""

    base: Path
    devices: list[str] = field(default_factory=list)
    images: list[Path] = field(default_factory=list)

    def add(self, size: int = 16 * MIB) -> str:
        image = self.base / f"pv{len(self.images)}.img"
        with image.open("wb") as out:
            out.truncate(size)
        done = subprocess.run(["losetup", "-f", "--show", str(image)], capture_output=True,
                              text=True, check=False)
        if done.returncode != 0:
            pytest.skip(f"no loop device: {done.stderr.strip()}")
        self.devices.append(done.stdout.strip())
        self.images.append(image)
        return self.devices[-1]

    def config(self) -> str:
        accept = "".join(f'"a|^{dev}$|",' for dev in self.devices)
        return (f'devices {{ filter=[{accept}"r|.*|"] obtain_device_list_from_udev=0 }} '
                "activation { udev_sync=0 udev_rules=0 } global { activation=0 } "
                "backup { backup=0 archive=0 }")

    def lvm(self, *args: str) -> str:
        env = {**os.environ, "LVM_SUPPRESS_FD_WARNINGS": "1"}
        done = subprocess.run([args[0], "--config", self.config(), *args[1:]],
                              capture_output=True, text=True, check=False, env=env)
        assert done.returncode == 0, f"{args}: {done.stderr}"
        return done.stdout

    def pv(self, uuid: str, *extra: str, small: bool = True) -> str:
        """A PV of ``uuid``; ``small``: a 60 KiB metadata area (LVM's least) and extents from
        64 KiB, else LVM's defaults (about 1 MiB of metadata, extents from 1 MiB)."""
        device = self.add()
        shape = ("--metadatasize", "32k", "--dataalignment", "64k") if small else ()
        self.lvm("pvcreate", "-q", "-u", uuid, "--norestorefile", *shape, *extra, device)
        return device

    def close(self) -> None:
        """Wipe the PV labels (no stray PV for the host's LVM to find), detach the loops."""
        env = {**os.environ, "LVM_SUPPRESS_FD_WARNINGS": "1"}
        for device in self.devices:
            subprocess.run(["pvremove", "--config", self.config(), "-ff", "-y", device],
                           capture_output=True, check=False, env=env)
        for device in self.devices:
            subprocess.run(["losetup", "-d", device], capture_output=True, check=False)


@pytest.fixture
def loops(tmp_path: Path) -> Iterator[Loops]:
    require_root()
    require_tool("pvcreate", "vgcreate", "lvcreate", "lvextend", "vgcfgrestore", "lvs", "pvs",
                 "vgs", "losetup", "dd")
    made = Loops(tmp_path)
    try:
        yield made
    finally:
        made.close()


def _fill(loops: Loops) -> dict[str, tuple[bytes, int]]:
    """Random bytes over every PV's data area (dd), then each device's image and pe_start."""
    out = {}
    for device, image in zip(loops.devices, loops.images, strict=True):
        start = int(loops.lvm("pvs", "--noheadings", "--units", "b", "--nosuffix", "-o",
                              "pe_start", device).strip())
        noise = image.with_suffix(".noise")
        noise.write_bytes(os.urandom(image.stat().st_size - start))
        subprocess.run(["dd", f"if={noise}", f"of={image}", "bs=64k", f"seek={start}",
                        "oflag=seek_bytes", "conv=notrunc", "status=none"], check=True)
        out[device] = (image.read_bytes(), start)
    return out


def _expected(loops: Loops, group: str, pvs: dict[str, tuple[bytes, int]]) -> dict[str, bytes]:
    """Each logical volume's bytes as ``lvs --segments`` places them, for those whose every
    range lies on one of ``pvs`` (thin volumes and pools have no ranges on a device)."""
    rows = loops.lvm("lvs", "-a", "--segments", "--noheadings", "--separator", ";", "--units",
                     "b", "--nosuffix", "-o",
                     "lv_name,seg_start_pe,seg_pe_ranges,seg_type,stripe_size,vg_extent_size",
                     group)
    pieces: dict[str, list[tuple[int, bytes | None]]] = {}
    for line in rows.splitlines():
        name, start, ranges, kind, stripe, extent = (c.strip() for c in line.split(";"))
        areas: list[bytes] | None = []
        for rng in ranges.split():
            device, span = rng.rsplit(":", 1)
            if device not in pvs or areas is None:
                areas = None
                continue
            first, last = (int(n) for n in span.split("-"))
            data, pe_start = pvs[device]
            areas.append(data[pe_start + first * int(extent):pe_start + (last + 1) * int(extent)])
        if not areas or kind not in ("linear", "striped"):
            areas = None
        pieces.setdefault(name.strip("[]"), []).append((int(start), _stripe(areas, int(stripe))))
    out = {}
    for name, parts in pieces.items():
        found = [p for _, p in sorted(parts, key=lambda part: part[0])]
        if all(p is not None for p in found):
            out[name] = b"".join(p for p in found if p is not None)
    return out


def _stripe(areas: list[bytes] | None, chunk: int) -> bytes | None:
    """dm-stripe's order: chunk 0 of each stripe in turn, then chunk 1..."""
    if areas is None or len(areas) == 1:
        return areas[0] if areas else None
    out = bytearray()
    for at in range(0, len(areas[0]), chunk):
        for area in areas:
            out += area[at:at + chunk]
    return bytes(out)


def _read(data: bytes, volume: lvm2.LvmVolume) -> bytes:
    stream = BytesStream(data)
    if volume.extents:
        joined = b"".join(data[e.offset:e.offset + e.size] for e in volume.extents)
        assert lvm2.open_volume(stream, volume).read() == joined
        return joined
    return lvm2.open_volume(stream, volume).read()


def _seqno(loops: Loops, group: str) -> int:
    return int(loops.lvm("vgs", "--noheadings", "-o", "vg_seqno", group).strip())


def test_lvextend_segments_read_as_lvs_places_them(loops: Loops) -> None:
    device = loops.pv(UUID1)
    loops.lvm("vgcreate", "-q", "-s", "256k", "bwseg", device)
    for name, extents in (("a", 2), ("b", 1), ("c", 2)):
        loops.lvm("lvcreate", "-q", "--activate", "n", "--zero", "n", "-l", str(extents), "-n",
                  name, "bwseg")
    loops.lvm("lvremove", "-q", "-y", "bwseg/b")
    loops.lvm("lvextend", "-q", "-l", "+4", "bwseg/a")  # the hole of b, then after c
    loops.lvm("lvcreate", "-q", "--activate", "n", "--zero", "n", "-l", "1", "-n", "d", "bwseg")
    pvs = _fill(loops)
    expected = _expected(loops, "bwseg", pvs)
    data = pvs[device][0]
    assert lvm2.find_label(BytesStream(data)) == 512
    group = lvm2.read_physical_volume(BytesStream(data))
    assert (group.name, group.seqno, group.extent_size) == ("bwseg", _seqno(loops, "bwseg"), 512)
    assert group.this.id == UUID1 == group.pv_id
    volumes = {v.name: v for v in group.volumes}
    assert set(volumes) == set(expected) == {"a", "c", "d"}
    assert len(volumes["a"].segments) >= 2
    assert len(volumes["a"].extents) >= 2
    for name, content in expected.items():
        assert volumes[name].unread is None
        assert volumes[name].visible
        assert volumes[name].size == len(content)
        assert _read(data, volumes[name]) == content, name
    assert "2 volume" not in group.describe()
    assert volumes["a"].describe().startswith("LVM linear volume 'a', ")


_RESTORED = """contents = "Text Format Volume Group"
version = 1
bwrest {
    id = "jnOh7p-1JRi-yKtp-Zp4E-sd2e-GLvy-vzqMTk"
    seqno = 7
    format = "lvm2"
    status = ["RESIZEABLE", "READ", "WRITE"]
    flags = []
    extent_size = 512   # 256 KiB
    max_lv = 0
    max_pv = 0
    metadata_copies = 0
    physical_volumes {
        pv0 {
            id = "%s"
            device = "/dev/loop-hint"
            status = ["ALLOCATABLE"]
            flags = []
            dev_size = 32768
            pe_start = 128
            pe_count = 60
        }
    }
    logical_volumes {
%s
    }
}
"""


def _lv(name: str, segments: list[str], visible: bool = True) -> str:
    status = '"READ", "WRITE", "VISIBLE"' if visible else '"READ", "WRITE"'
    body = "\n".join(f"segment{n} {{\n{s}\n}}" for n, s in enumerate(segments, start=1))
    raw = hashlib.sha256(name.encode()).hexdigest()[:32]
    lv_id = "-".join(raw[a:b] for a, b in itertools.pairwise((0, 6, 10, 14, 18, 22, 26, 32)))
    return (f'{name} {{\nid = "{lv_id}"\nstatus = [{status}]\nflags = []\n'
            f"segment_count = {len(segments)}\n{body}\n}}")


def _linear(start: int, count: int, first: int, pv: str = "pv0") -> str:
    return (f'start_extent = {start}\nextent_count = {count}\ntype = "striped"\n'
            f'stripe_count = 1\nstripes = ["{pv}", {first}]')


_LAYOUT = [
    _lv("three", [_linear(0, 2, 10), _linear(2, 1, 6), _linear(3, 2, 2)]),
    _lv("hidden", [_linear(0, 1, 0)], visible=False),
    _lv("wide", ['start_extent = 0\nextent_count = 4\ntype = "striped"\nstripe_count = 2\n'
                 'stripe_size = 128\nstripes = ["pv0", 30, "pv0", 20]']),
    _lv("pool", ['start_extent = 0\nextent_count = 4\ntype = "thin-pool"\n'
                 'metadata = "pool_tmeta"\npool = "pool_tdata"\ntransaction_id = 1\n'
                 'chunk_size = 128\ndiscards = "passdown"\nzero_new_blocks = 1']),
    _lv("thin", ['start_extent = 0\nextent_count = 8\ntype = "thin"\nthin_pool = "pool"\n'
                 "transaction_id = 0\ndevice_id = 1"]),
    _lv("pool_tmeta", [_linear(0, 1, 40)], visible=False),
    _lv("pool_tdata", [_linear(0, 4, 41)], visible=False),
]


def test_restored_layouts_read_as_lvs_places_them(loops: Loops) -> None:
    """Three segments out of order, a hidden volume, two stripes on this PV, a thin pool."""
    device = loops.pv(UUID1)
    config = loops.base / "vg.cfg"
    config.write_text(_RESTORED % (UUID1, "\n".join(_LAYOUT)))
    loops.lvm("vgcfgrestore", "-q", "--force", "-f", str(config), "bwrest")
    pvs = _fill(loops)
    expected = _expected(loops, "bwrest", pvs)
    data = pvs[device][0]
    group = lvm2.read_physical_volume(BytesStream(data))
    volumes = {v.name: v for v in group.volumes}
    assert set(expected) == {"three", "hidden", "wide", "pool_tmeta", "pool_tdata"}
    for name, content in expected.items():
        assert volumes[name].unread is None, volumes[name].unread
        assert _read(data, volumes[name]) == content, name
    assert [e.offset for e in volumes["three"].extents] == [
        65536 + n * EXTENT for n in (10, 6, 2)]
    assert not volumes["hidden"].visible
    assert "(hidden)" in volumes["hidden"].describe()
    assert volumes["wide"].stripes
    assert volumes["wide"].layout == "striped"
    assert volumes["thin"].unread is not None
    assert "thin volume" in volumes["thin"].unread
    assert volumes["pool"].unread is not None
    assert "thin-pool" in volumes["pool"].unread
    assert "not read by BitWitness" in volumes["pool"].describe()


def _mda(data: bytes) -> tuple[int, int, int, int]:
    """The first metadata area's place and size, and its committed text's offset and size."""
    header = data[4096:4096 + 512]
    start, size, text_at, text_size = struct.unpack_from("<QQQQ", header, 24)
    return start, size, text_at, text_size


def test_wrapped_circular_buffer_gives_the_latest_metadata(loops: Loops) -> None:
    device = loops.pv(UUID1)
    loops.lvm("vgcreate", "-q", "-s", "256k", "bwwrap", device)
    loops.lvm("lvcreate", "-q", "--activate", "n", "--zero", "n", "-l", "3", "-n", "kept",
              "bwwrap")
    wrapped = 0
    for number in range(200):
        loops.lvm("vgchange", "-q", "--addtag", f"tag{number}", "bwwrap")
        _, size, text_at, text_size = _mda(loops.images[0].read_bytes())
        if text_at + text_size > size:
            wrapped += 1
            break
    assert wrapped, "200 rewrites never wrapped the metadata area"
    backup = loops.base / "backup.cfg"
    loops.lvm("vgcfgbackup", "-f", str(backup), "bwwrap")
    seqno = next(int(line.split("=")[1]) for line in backup.read_text().splitlines()
                 if line.strip().startswith("seqno"))
    group = lvm2.read_physical_volume(BytesStream(loops.images[0].read_bytes()))
    assert group.seqno == seqno == _seqno(loops, "bwwrap") > 50
    assert [v.name for v in group.volumes] == ["kept"]


def test_group_over_two_pvs_names_the_other_pv(loops: Loops) -> None:
    one = loops.pv(UUID1)
    two = loops.pv(UUID2)
    loops.lvm("vgcreate", "-q", "-s", "256k", "bwtwo", one, two)
    for name, where in (("here", [one]), ("there", [two])):
        loops.lvm("lvcreate", "-q", "--activate", "n", "--zero", "n", "-l", "3", "-n", name,
                  "bwtwo", *where)
    loops.lvm("lvcreate", "-q", "--activate", "n", "--zero", "n", "-i", "2", "-I", "64k", "-l",
              "4", "-n", "across", "bwtwo")
    pvs = _fill(loops)
    expected = _expected(loops, "bwtwo", pvs)
    for device, mine, other, theirs in ((one, "here", "there", UUID2),
                                        (two, "there", "here", UUID1)):
        data = pvs[device][0]
        group = lvm2.read_physical_volume(BytesStream(data))
        volumes = {v.name: v for v in group.volumes}
        assert _read(data, volumes[mine]) == expected[mine]
        pv_name = next(p.name for p in group.physical_volumes if p.id == theirs)
        assert volumes[other].unread == (f"needs physical volume {theirs} ({pv_name}) of "
                                          "the group")
        assert volumes["across"].unread is not None
        assert theirs in volumes["across"].unread
    assert len(expected["across"]) == 4 * EXTENT  # the oracle saw the stripes on both


@pytest.fixture
def made_pv(loops: Loops) -> bytes:
    """A PV of a small group made by the tools, its data area filled: the base for damage."""
    device = loops.pv(UUID1, small=False)
    loops.lvm("vgcreate", "-q", "-s", "256k", "bwbase", device)
    loops.lvm("lvcreate", "-q", "--activate", "n", "--zero", "n", "-l", "4", "-n", "data",
              "bwbase")
    return _fill(loops)[device][0]


def _crc(data: bytes) -> int:
    return zlib.crc32(data, 0xF597A6CF ^ 0xFFFFFFFF) ^ 0xFFFFFFFF


def _with_text(image: bytes, text: bytes) -> bytes:
    """``image`` with its committed metadata text replaced by ``text`` (checksums made good,
    as a forger would), written where the old text started."""
    out = bytearray(image)
    start, size, text_at, _ = _mda(image)
    body = text + b"\x00"
    assert text_at + len(body) <= size, "test text too large for the area"
    out[start + text_at:start + text_at + len(body)] = body
    struct.pack_into("<QQI", out, start + 40, text_at, len(body), _crc(body))
    struct.pack_into("<I", out, start, _crc(bytes(out[start + 4:start + 512])))
    return bytes(out)


def test_forged_text_round_trip(made_pv: bytes) -> None:
    """The forging helper itself: the tools' own text put back reads the same."""
    start, _, text_at, text_size = _mda(made_pv)
    text = made_pv[start + text_at:start + text_at + text_size - 1]
    group = lvm2.read_physical_volume(BytesStream(_with_text(made_pv, text)))
    assert [v.name for v in group.volumes] == ["data"]


def test_damaged_label_crc_is_refused(made_pv: bytes) -> None:
    damaged = bytearray(made_pv)
    damaged[512 + 40] ^= 0x01  # the device size in the PV header, under the label's CRC
    assert lvm2.find_label(BytesStream(bytes(damaged))) is None
    with pytest.raises(FileSystemError, match="no valid LABELONE"):
        lvm2.read_physical_volume(BytesStream(bytes(damaged)))


def test_damaged_metadata_is_refused(made_pv: bytes) -> None:
    start, _, text_at, _ = _mda(made_pv)
    damaged = bytearray(made_pv)
    damaged[start + text_at + 10] ^= 0x20
    with pytest.raises(FileSystemError, match="text's CRC does not match"):
        lvm2.read_physical_volume(BytesStream(bytes(damaged)))
    damaged = bytearray(made_pv)
    damaged[start + 100] ^= 0x01
    with pytest.raises(FileSystemError, match="header's CRC does not match"):
        lvm2.read_physical_volume(BytesStream(bytes(damaged)))


def test_second_metadata_area_is_read_when_the_first_is_damaged(loops: Loops) -> None:
    device = loops.pv(UUID1, "--pvmetadatacopies", "2")
    loops.lvm("vgcreate", "-q", "-s", "256k", "bwcopy", device)
    loops.lvm("lvcreate", "-q", "--activate", "n", "--zero", "n", "-l", "2", "-n", "data",
              "bwcopy")
    damaged = bytearray(loops.images[0].read_bytes())
    damaged[4096 + 100] ^= 0x01
    group = lvm2.read_physical_volume(BytesStream(bytes(damaged)))
    assert group.seqno == _seqno(loops, "bwcopy")
    assert group.metadata_offset > 4096
    (note,) = group.notes
    assert "header's CRC does not match" in note
    assert [v.name for v in group.volumes] == ["data"]


def test_image_cut_short_names_the_volume(made_pv: bytes) -> None:
    group = lvm2.read_physical_volume(BytesStream(made_pv[:MIB + 300_000]))
    (volume,) = group.volumes
    assert volume.unread is not None
    assert "past the end of the image" in volume.unread


def _group_text(volumes: str, seqno: str = "3", extra: str = "") -> bytes:
    return (f'contents = "Text Format Volume Group"\nversion = 1\nbwbase {{\nid = "x"\n'
            f"seqno = {seqno}\nextent_size = 512\n{extra}physical_volumes {{\npv0 {{\n"
            f'id = "{UUID1}"\npe_start = 2048\npe_count = 60\n}}\n}}\n'
            f"logical_volumes {{\n{volumes}\n}}\n}}\n").encode()


_HOSTILE: dict[str, tuple[bytes, str]] = {
    "deep nesting": (b"a {\n" * 100_000 + b"}\n" * 100_000, "nested more than"),
    "huge number": (_group_text(_lv("data", [_linear(0, 4, 0)]), seqno="9" * 40),
                    "is not a value"),
    "extents beyond the PV": (_group_text(_lv("data", [_linear(0, 4, 58)])),
                              "which has 60"),
    "segments not end to end": (_group_text(_lv("data", [_linear(0, 2, 0), _linear(3, 2, 4)])),
                                "not at 2"),
    "too many volumes": (_group_text("\n".join(_lv(f"v{n}", [_linear(0, 1, 0)])
                                              for n in range(1025))), "more than 1024"),
    "too many segments": (_group_text(_lv("data", [_linear(n, 1, 0) for n in range(1025)])),
                          "more than 1024"),
    "segment count lies": (_group_text(_lv("data", [_linear(0, 1, 0)]).replace(
        "segment_count = 1", "segment_count = 2")), "are not segment1 to segment2"),
    "unknown physical volume": (_group_text(_lv("data", [_linear(0, 1, 0, pv="pv9")])),
                                "no physical volume of the group"),
    "stripes without extents": (_group_text(_lv("data", [
        'start_extent = 0\nextent_count = 4\ntype = "striped"\nstripe_count = 2\n'
        'stripe_size = 128\nstripes = ["pv0"]'])), "does not list its 2 stripes"),
    "unclosed string": (b'x = "' + b"a" * 200_000, "unexpected"),
    "unclosed section": (_group_text("")[:-2], "not closed"),
    "two groups": (_group_text("") + b"other {\n}\n", "2 volume group sections"),
    "not this PV": (_group_text("").replace(UUID1.encode(), UUID2.encode()),
                    "0 physical volumes with this one's UUID"),
}


@pytest.mark.parametrize("case", sorted(_HOSTILE))
def test_hostile_metadata_is_refused_quickly(made_pv: bytes, case: str) -> None:
    text, message = _HOSTILE[case]
    forged = _with_text(made_pv, text)
    began = time.monotonic()
    with pytest.raises(FileSystemError, match=message):
        lvm2.read_physical_volume(BytesStream(forged))
    assert time.monotonic() - began < 5


def test_parse_config_reads_lvm_values() -> None:
    parsed = lvm2.parse_config('a = "x \\"q\\" y"  # note\nb = [1, "two", -3]\nc { d = 1.5 }\n')
    assert parsed == {"a": 'x "q" y', "b": [1, "two", -3], "c": {"d": 1.5}}


def test_a_file_system_across_segments_out_of_order_is_browsed(loops: Loops) -> None:
    """Through the commands: a FAT file system written over a logical volume of three segments
    out of order (what libvslvm refused, making every command on the disk fail) lists as
    ``fls`` lists the plain file system and its file reads as ``icat`` reads it."""
    require_tool("mkfs.vfat", "mcopy", "fls", "icat")
    loops.pv(UUID1)
    config = loops.base / "vg.cfg"
    config.write_text(_RESTORED % (UUID1, _LAYOUT[0]))  # "three": PV extents 10-11, 6, 2-3
    loops.lvm("vgcfgrestore", "-q", "--force", "-f", str(config), "bwrest")
    plain = loops.base / "plain.fat"
    subprocess.run(["mkfs.vfat", "-C", str(plain), str(5 * EXTENT // 1024)], check=True,
                   capture_output=True)
    note = loops.base / "NOTE.TXT"
    note.write_bytes(b"across three segments\n" * 3000)  # 66 KB: more than one extent's worth
    subprocess.run(["mcopy", "-i", str(plain), str(note), "::/NOTE.TXT"], check=True,
                   env={**os.environ, "MTOOLS_SKIP_CHECK": "1"})
    content = plain.read_bytes()
    image = loops.images[0]
    with image.open("r+b") as out:
        for index, pv_extent in enumerate((10, 11, 6, 2, 3)):
            out.seek(65536 + pv_extent * EXTENT)
            out.write(content[index * EXTENT:(index + 1) * EXTENT])
    loops.lvm("lvs", "bwrest")  # the tools still read the group we wrote into
    tree = run_bitwitness("partitions", "--json", image)
    assert tree.exit_code == 0, tree.stderr
    (volume,) = tree.json()["partitions"][0]["volumes"]
    assert volume["description"] == "LVM logical volume bwrest/three"
    assert volume["filesystem"] == "fat12"
    listing = run_bitwitness("ls", image, "-p", volume["path"])
    assert listing.exit_code == 0, listing.stderr
    theirs = subprocess.run(["fls", str(plain)], capture_output=True, text=True,
                            check=True).stdout
    assert "NOTE.TXT" in listing.stdout
    assert "NOTE.TXT" in theirs
    inode = next(line.split()[1].rstrip(":") for line in theirs.splitlines()
                 if "NOTE.TXT" in line)
    icat = subprocess.run(["icat", str(plain), inode], capture_output=True, check=True).stdout
    ours = subprocess.run([sys.executable, "-m", "bitwitness", "cat", str(image), "-p",
                           volume["path"], "/NOTE.TXT"], capture_output=True, check=True).stdout
    assert ours == icat == note.read_bytes()


def test_libvslvm_reads_the_same_bytes_where_it_can(loops: Loops) -> None:
    """libvslvm, the independent reader, on the volumes it reads (one segment each): the same
    bytes as ours. (It refuses the whole group once a volume has two segments.)"""
    import pyvslvm

    device = loops.pv(UUID1)
    loops.lvm("vgcreate", "-q", "-s", "256k", "bwlib", device)
    for name, extents in (("one", 3), ("two", 2)):
        loops.lvm("lvcreate", "-q", "--activate", "n", "--zero", "n", "-l", str(extents), "-n",
                  name, "bwlib")
    data = _fill(loops)[device][0]
    ours = {v.name: _read(data, v) for v in lvm2.read_physical_volume(BytesStream(data)).volumes}
    handle = pyvslvm.handle()
    handle.open(str(loops.images[0]))
    handle.open_physical_volume_files([str(loops.images[0])])
    try:
        group = handle.get_volume_group()
        theirs = {}
        for index in range(group.get_number_of_logical_volumes()):
            volume = group.get_logical_volume(index)
            theirs[volume.get_name()] = volume.read_buffer_at_offset(volume.get_size(), 0)
    finally:
        handle.close()
    assert set(theirs) == {"one", "two"}
    assert ours == theirs
