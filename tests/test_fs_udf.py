"""UDF through our own reader (report/browse/udf.py), checked against 7-Zip's UDF reader
(``7z l -slt`` for names, sizes and times, ``7z x`` for the bytes), ``udfinfo`` and the tools
that wrote the volumes, never against numbers written here.

The volumes: a bridge disc from ``genisoimage -udf -R -J`` (UDF 1.02 beside ISO 9660: nested
folders, non-ASCII and long names, an empty file, a file of a few MiB, a hard link and a
symbolic link as genisoimage keeps them); empty volumes from ``mkudffs`` of several revisions and
sector sizes; and UDF 2.50 volumes with a Metadata Partition from our committed writer
(tests/builders/udf.py: no tool here writes one), which 7-Zip reads too. Damaged copies must end
in one line with exit 0, 1 or 2, in bounded time and memory, the evidence unchanged.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import struct
import subprocess
import sys
from binascii import crc_hqx
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from builders.udf import BS, File, Folder, build_udf
from conftest import cat_bytes, require_tool, run_bitwitness, snapshot
from test_fs_ext_hostile import _measured, fails_closed

BIG = random.Random(11).randbytes(3_000_000)
NAMES = ("café ünïcode ✓.txt", "日本語のファイル名.txt", "L" * 60 + ".txt")


def _run(*args: str | Path, env: dict[str, str] | None = None) -> str:
    return subprocess.run([os.fspath(a) for a in args], capture_output=True, text=True,
                          check=False, env=env).stdout


def _sevenzip(image: Path) -> dict[str, dict[str, str]]:
    """What ``7z l -slt`` shows of each entry (times in UTC), by ``/path``."""
    out = _run("7z", "l", "-slt", "-tudf", image, env={**os.environ, "TZ": "UTC"})
    found: dict[str, dict[str, str]] = {}
    body = out.split("\n----------\n", 1)[1]
    for block in body.split("\n\n"):
        fields = dict(line.split(" = ", 1) for line in block.splitlines() if " = " in line)
        if "Path" in fields:
            found["/" + fields["Path"]] = fields
    return found


def _extracted(image: Path, where: Path) -> dict[str, tuple[int, str]]:
    """Size and SHA-256 of each file ``7z x`` extracts, by ``/path``."""
    subprocess.run(["7z", "x", "-tudf", "-y", f"-o{where}", os.fspath(image)],
                   capture_output=True, check=False)
    return {"/" + p.relative_to(where).as_posix(): (p.stat().st_size,
                                                     hashlib.sha256(p.read_bytes()).hexdigest())
            for p in where.rglob("*") if p.is_file() and not p.is_symlink()}


def _time(text: str) -> datetime | None:
    """A 7-Zip time (``2024-03-05 07:09:11.123400``, UTC) or None where it shows none."""
    if not text.strip():
        return None
    return datetime.fromisoformat(text.strip()).replace(tzinfo=UTC)


def _ours(image: Path, *options: str) -> dict[str, dict[str, Any]]:
    result = run_bitwitness("ls", "-r", "--json", *options, image)
    assert result.exit_code == 0, result.stderr
    return {e["path"]: e for e in json.loads(result.stdout)["entries"]}


def _agree(image: Path, tmp: Path, *options: str) -> dict[str, dict[str, Any]]:
    """Listing, times and bytes as 7-Zip gives them; returns our listing (all entries)."""
    theirs = _sevenzip(image)
    assert theirs, "7-Zip lists nothing"
    ours = _ours(image, *options)
    allocated = {p: e for p, e in ours.items() if not e["deleted"] and not e["stream"]}
    assert set(allocated) == set(theirs)
    for path, fact in theirs.items():
        entry = allocated[path]
        assert (entry["kind"] == "directory") == (fact["Folder"] == "+"), path
        if fact["Folder"] == "-":
            assert entry["size"] == int(fact["Size"]), path
        for ours_key, their_key in (("modified", "Modified"), ("accessed", "Accessed"),
                                    ("changed", "Metadata Changed"), ("born", "Created")):
            mine = datetime.fromisoformat(entry[ours_key]) if entry[ours_key] else None
            assert mine == _time(fact.get(their_key, "")), (path, ours_key)
    digests = _extracted(image, tmp / "7z")
    for path, (size, digest) in digests.items():
        if size != int(theirs[path]["Size"]):
            continue  # 7-Zip gives nothing for a file with an unrecorded extent (sparse.bin)
        assert hashlib.sha256(cat_bytes(*options, image, path)).hexdigest() == digest, path
    return ours


# --- a bridge disc from genisoimage -------------------------------------------------------------


@pytest.fixture(scope="module")
def bridge(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_tool("genisoimage", "7z")
    base = tmp_path_factory.mktemp("udf-bridge")
    src = base / "src"
    deep = src / "a" / "b" / "c"
    deep.mkdir(parents=True)
    (deep / "leaf.txt").write_bytes(b"deep\n")
    (src / "small.txt").write_bytes(b"hello\n")
    (src / "empty").write_bytes(b"")
    (src / "big.bin").write_bytes(BIG)
    for n, name in enumerate(NAMES):
        (src / "a" / name).write_bytes(f"name {n}\n".encode())
    (src / "link").symlink_to("small.txt")
    os.link(src / "small.txt", src / "hard.txt")
    image = base / "bridge.iso"
    subprocess.run(["genisoimage", "-quiet", "-udf", "-R", "-J", "-o", image, src],
                   check=True, capture_output=True)
    return image


def test_bridge_disc_shows_both_file_systems(bridge: Path) -> None:
    result = run_bitwitness("partitions", bridge)
    assert result.exit_code == 0, result.stderr
    assert "iso9660" in result.stdout
    assert "0/udf" in result.stdout
    refused = run_bitwitness("ls", bridge)
    assert refused.exit_code == 2
    assert "several file systems" in refused.stderr
    assert "-p 0/udf" in refused.stderr
    iso = run_bitwitness("ls", "-p", "0", bridge)
    assert iso.exit_code == 0, iso.stderr


def test_bridge_disc_agrees_with_7zip(bridge: Path, tmp_path: Path) -> None:
    ours = _agree(bridge, tmp_path, "-p", "0/udf")
    assert {f"/a/{name}" for name in NAMES} <= set(ours)
    assert "/a/b/c/leaf.txt" in ours
    assert ours["/big.bin"]["size"] == len(BIG)
    assert ours["/empty"]["size"] == 0


def test_bridge_stat_and_address(bridge: Path) -> None:
    listed = _ours(bridge, "-p", "0/udf")
    result = run_bitwitness("stat", "--json", "-p", "0/udf", bridge, "/big.bin")
    assert result.exit_code == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["filesystem"] == "udf"
    assert found["size"] == len(BIG)
    runs = found["attributes"][0]["runs"]
    assert sum(blocks for _first, blocks in runs) * 2048 >= len(BIG)
    by_inode = subprocess.run([sys.executable, "-m", "bitwitness", "cat", "-p", "0/udf",
                               "--inode", listed["/big.bin"]["inode"], os.fspath(bridge)],
                              capture_output=True, check=False)
    assert by_inode.returncode == 0, by_inode.stderr
    assert by_inode.stdout == BIG
    human = run_bitwitness("stat", "-p", "0/udf", "--inode", listed["/small.txt"]["inode"], bridge)
    assert human.exit_code == 0, human.stderr


# --- empty volumes from mkudffs ------------------------------------------------------------------


@pytest.mark.parametrize(("revision", "block"), [("1.02", 2048), ("1.50", 2048),
                                                 ("2.00", 2048), ("2.01", 2048),
                                                 ("2.01", 512), ("2.01", 4096)])
def test_mkudffs_volumes(revision: str, block: int, tmp_path: Path) -> None:
    require_tool("mkudffs", "udfinfo")
    image = tmp_path / "empty.udf"
    with image.open("wb") as out:
        out.truncate(32 << 20)
    subprocess.run(["mkudffs", "--media-type=hd", f"--udfrev={revision}",
                    f"--blocksize={block}", "--label=EMPTYVOL", "--mode=0750", "--uid=1234",
                    image], check=True, capture_output=True)
    info = dict(line.split("=", 1) for line in _run("udfinfo", image).splitlines()
                if "=" in line and not line.startswith("start="))
    assert info["blocksize"] == str(block)
    assert info["udfrev"] == revision
    listed = run_bitwitness("ls", "--json", image)
    assert listed.exit_code == 0, listed.stderr
    found = json.loads(listed.stdout)
    assert found["filesystem"] == "udf"
    assert found["entries"] == []
    root = json.loads(run_bitwitness("stat", "--json", image, "/").stdout)
    assert root["kind"] == "directory"
    assert (root["mode"], root["uid"]) == ("rwxr-x---", 1234)  # as mkudffs was told


@pytest.mark.parametrize(("media", "revision"), [("cdr", "2.01"), ("dvdr", "2.01"),
                                                 ("bdr", "2.50"), ("cdr", "1.50")])
def test_virtual_partition_through_its_vat(media: str, revision: str, tmp_path: Path) -> None:
    """A CD-R/DVD-R/BD-R volume by ``mkudffs`` (a virtual partition: blocks looked up in the
    VAT at the last written sector), cut where the written part ends as a disc image is, so
    that ``udfinfo`` finds the VAT too; and the same volume uncut (zeros to 32 MiB, as
    mkudffs leaves the file). Without its VAT the volume is one line."""
    require_tool("mkudffs", "udfinfo")
    sparse = tmp_path / f"{media}.udf"
    with sparse.open("wb") as out:
        out.truncate(32 << 20)
    subprocess.run(["mkudffs", f"--media-type={media}", f"--udfrev={revision}", "--uid=555",
                    "--label=VATVOL", sparse], check=True, capture_output=True)
    data = sparse.read_bytes().rstrip(b"\0")
    image = tmp_path / f"{media}-cut.udf"
    image.write_bytes(data + bytes(-len(data) % BS))
    info = dict(line.split("=", 1) for line in _run("udfinfo", image).splitlines()
                if "=" in line and not line.startswith("start="))
    assert info["vatblock"] == str(len(data) // BS - (0 if len(data) % BS else 1))
    assert (info["numfiles"], info["numdirs"]) == ("0", "1")
    for each in (image, sparse):
        listed = run_bitwitness("ls", "--json", each)
        assert listed.exit_code == 0, listed.stderr
        assert json.loads(listed.stdout)["entries"] == []
        root = json.loads(run_bitwitness("stat", "--json", each, "/").stdout)
        assert (root["kind"], root["uid"]) == ("directory", 555)
    vat = int(info["vatblock"]) * BS
    broken = bytearray(image.read_bytes())
    broken[vat:vat + BS] = bytes(BS)
    broken[vat - BS:vat] = b"\x01" * BS  # the last written sector is then no VAT
    image.write_bytes(bytes(broken))
    refused = run_bitwitness("ls", image)
    assert refused.exit_code == 2
    assert len(refused.stderr.strip().splitlines()) == 1
    assert "virtual allocation table" in refused.stderr


def test_udf_in_a_partition(tmp_path: Path) -> None:
    """A hard disk formatted UDF inside an MBR partition (as Windows can format one): the
    partition row is named ``udf`` and read, 512-byte blocks."""
    require_tool("mkudffs", "sfdisk", "udfinfo")
    disk, part = tmp_path / "disk.img", tmp_path / "part.img"
    with disk.open("wb") as out:
        out.truncate(24 << 20)
    subprocess.run(["sfdisk", "-q", disk], input=b"start=2048, type=7\n", check=True,
                   capture_output=True)
    with part.open("wb") as out:
        out.truncate((24 << 20) - 2048 * 512)
    subprocess.run(["mkudffs", "--media-type=hd", "--blocksize=512", "--gid=77", part],
                   check=True, capture_output=True)
    assert "blocksize=512" in _run("udfinfo", part)
    with disk.open("r+b") as out:
        out.seek(2048 * 512)
        out.write(part.read_bytes())
    listed = json.loads(run_bitwitness("partitions", "--json", disk).stdout)
    assert "udf" in json.dumps(listed)
    root = json.loads(run_bitwitness("stat", "--json", disk, "/").stdout)
    assert (root["filesystem"], root["gid"], root["offset_sector"]) == ("udf", 77, 2048)


def _udfinfo_places(image: Path) -> dict[str, list[int]]:
    """Where ``udfinfo`` says each kind of area starts (``STABLE``, ``PSPACE``, ...)."""
    places: dict[str, list[int]] = {}
    for line in _run("udfinfo", image).splitlines():
        if line.startswith("start="):
            fields = dict(part.strip().split("=", 1) for part in line.split(",") if "=" in part)
            places.setdefault(fields["type"].strip(), []).append(int(fields["start"]))
    return places


def test_strategy_4096_reads_the_latest_entry(tmp_path: Path) -> None:
    """A write-once volume (``mkudffs --strategy=4096``): the root's entry is rewritten as a
    write-once writer does it, a new entry elsewhere and an indirect entry in the block after
    the old one; the new entry is read. Indirect entries pointing back are one line."""
    require_tool("mkudffs", "udfinfo")
    image = tmp_path / "worm.udf"
    with image.open("wb") as out:
        out.truncate(16 << 20)
    subprocess.run(["mkudffs", "--media-type=hd", "--strategy=4096", "--uid=100", image],
                   check=True, capture_output=True)
    info = dict(line.split("=", 1) for line in _run("udfinfo", image).splitlines()
                if "=" in line and not line.startswith("start="))
    block_size = int(info["blocksize"])
    start = _udfinfo_places(image)["PSPACE"][0]
    before = json.loads(run_bitwitness("stat", "--json", image, "/").stdout)
    assert before["uid"] == 100
    root = int(before["inode"])
    data = bytearray(image.read_bytes())
    old, new = (start + root) * block_size, (start + root + 64) * block_size
    assert not any(data[new:new + 2 * block_size])
    data[new:new + block_size] = data[old:old + block_size]
    struct.pack_into("<I", data, new + 12, root + 64)  # its tag location
    struct.pack_into("<I", data, new + 36, 200)  # and a new owner, to tell it from the old
    _retag(data, new)

    def indirect(at: int, location: int, target: int) -> None:
        data[at:at + block_size] = bytes(block_size)
        data[at:at + 4] = data[old:old + 4]  # the version of the entries around it
        struct.pack_into("<H", data, at, 259)
        struct.pack_into("<I", data, at + 12, location)
        data[at + 16:at + 36] = data[old + 16:old + 36]
        data[at + 16 + 11] = 3  # file type: indirect entry
        data[at + 36:at + 52] = struct.pack("<IIH6x", block_size, target, 0)
        struct.pack_into("<H", data, at + 10, 36)
        _retag(data, at)

    indirect(old + block_size, root + 1, root + 64)
    image.write_bytes(bytes(data))
    after = json.loads(run_bitwitness("stat", "--json", image, "/").stdout)
    assert after["uid"] == 200
    indirect(new + block_size, root + 65, root)  # and back: a loop
    image.write_bytes(bytes(data))
    looped = run_bitwitness("ls", image)
    assert looped.exit_code == 2
    assert len(looped.stderr.strip().splitlines()) == 1
    assert "loop" in looped.stderr


def test_sparable_partition_follows_its_sparing_table(tmp_path: Path) -> None:
    """A CD-RW volume by ``mkudffs --media-type=cdrw`` (a sparable partition, two sparing
    tables where ``udfinfo`` places them): its root lists empty; then the root folder's packet
    is moved to the first spare, its old place zeroed and both tables told so (as a drive that
    found the packet defective would): the root is read from the spare, as before."""
    require_tool("mkudffs", "udfinfo")
    image = tmp_path / "cdrw.udf"
    with image.open("wb") as out:
        out.truncate(40 << 20)
    subprocess.run(["mkudffs", "--media-type=cdrw", "--uid=4321", image], check=True,
                   capture_output=True)
    places = _udfinfo_places(image)
    assert len(places["STABLE"]) == 2
    before = json.loads(run_bitwitness("stat", "--json", image, "/").stdout)
    assert before["uid"] == 4321  # as mkudffs was told
    assert json.loads(run_bitwitness("ls", "--json", image).stdout)["entries"] == []
    data = bytearray(image.read_bytes())
    block = int(before["inode"])
    packet = block - block % 32
    table = places["STABLE"][0] * BS
    spare = int.from_bytes(data[table + 60:table + 64], "little")  # entry 0's spare sector
    original = (places["PSPACE"][0] + packet) * BS
    data[spare * BS:(spare + 32) * BS] = data[original:original + 32 * BS]
    data[original:original + 32 * BS] = bytes(32 * BS)
    for sector in places["STABLE"]:
        struct.pack_into("<I", data, sector * BS + 56, packet)
        _retag(data, sector * BS)
    image.write_bytes(bytes(data))
    after = json.loads(run_bitwitness("stat", "--json", image, "/").stdout)
    assert (after["uid"], after["modified"]) == (4321, before["modified"])
    for sector in places["STABLE"]:  # without its tables the volume is refused
        data[sector * BS + 20] ^= 0xFF
    image.write_bytes(bytes(data))
    refused = run_bitwitness("ls", image)
    assert refused.exit_code == 2
    assert "sparing table" in refused.stderr


# --- UDF 2.50 with a metadata partition, from our writer ----------------------------------------

MEDIUM = random.Random(7).randbytes(600_000)


def _tree(symlinks: bool) -> Folder:
    links = [File("link", symlink="small.txt"), File("abs", symlink="/sub/deep.txt")]
    return Folder("", [
        File("small.txt", b"hello\n", embedded=True,
             streams={"Zone.Identifier": b"[ZoneTransfer]\r\nZoneId=3\r\n"}),
        File("big.bin", MEDIUM, pieces=3),  # the later extents in an AED
        File("sparse.bin", b"s" * 4096 + b"t" * 1000, pieces=2, hole=2 * BS),
        File("empty"),
        File(NAMES[0], b"names\n"),
        File(NAMES[1], b"16-bit\n"),
        File("hard.txt", link_to="/big.bin"),
        *(links if symlinks else []),
        File("deleted.txt", b"gone but here\n", deleted=True),
        File("vanished.txt", gone=True),
        Folder("sub", [File("deep.txt", b"deep\n", mode=0o600, uid=1000, gid=100)]
               + [File(f"file-{n:03d}-" + "x" * 40, bytes([n]) * n) for n in range(60)]),
    ])


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_udf(tmp_path_factory.mktemp("udf250") / "udf250.img", _tree(False), zone=-300)


def test_metadata_partition_agrees_with_7zip(built: Path, tmp_path: Path) -> None:
    require_tool("7z")
    comment = _run("7z", "l", "-slt", "-tudf", built)
    assert "*UDF Metadata Partition" in comment  # 7-Zip went through the metadata file
    ours = _agree(built, tmp_path)
    assert ours["/hard.txt"]["inode"] == ours["/big.bin"]["inode"]
    assert ours["/sub/deep.txt"]["born"] is not None  # an EFE's creation time


def test_unrecorded_extent_reads_as_zeros(built: Path) -> None:
    """7-Zip extracts nothing for a file with an unrecorded extent (ECMA-167 4/14.14.1.1:
    type 1 or 2, read as zeros); the writer's input is the reference here."""
    result = subprocess.run([sys.executable, "-m", "bitwitness", "cat", os.fspath(built),
                             "/sparse.bin"], capture_output=True, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"s" * 4096 + bytes(2 * BS) + b"t" * 1000


def test_type1_variant_agrees_with_7zip(tmp_path: Path) -> None:
    require_tool("7z")
    image = build_udf(tmp_path / "type1.img", _tree(False), metadata=False, zone=120)
    _agree(image, tmp_path)


def test_deleted_names_are_listed(built: Path) -> None:
    ours = _ours(built, "--all")
    assert ours["/deleted.txt"]["deleted"] is True
    assert ours["/vanished.txt"]["deleted"] is True
    assert "/deleted.txt" not in _ours(built)
    kept = run_bitwitness("cat", built, "/deleted.txt")  # the bytes, and a warning (exit 1)
    assert kept.stdout == "gone but here\n"
    assert kept.exit_code == 1
    assert "deleted" in kept.stderr
    note = json.loads(run_bitwitness("stat", "--json", built, "/deleted.txt").stdout)
    assert note["note"]
    gone = run_bitwitness("cat", built, "/vanished.txt")
    assert gone.exit_code in (1, 2)
    assert len(gone.stderr.strip().splitlines()) == 1


def test_named_streams(built: Path) -> None:
    """A named stream (the EFE's stream directory, which 7-Zip does not read): listed as
    ``fls`` lists an NTFS stream, read by ``path:stream``, the writer's bytes."""
    result = run_bitwitness("ls", "--json", built)
    streams = [e for e in json.loads(result.stdout)["entries"] if e["stream"]]
    assert [(e["path"], e["stream"]) for e in streams] == [
        ("/small.txt:Zone.Identifier", "Zone.Identifier")]
    content = run_bitwitness("cat", built, "/small.txt:Zone.Identifier")
    assert content.exit_code == 0, content.stderr
    assert content.stdout == "[ZoneTransfer]\r\nZoneId=3\r\n"
    plain = run_bitwitness("cat", built, "/small.txt")
    assert plain.stdout == "hello\n"


def test_links_owners_and_modes(built: Path, tmp_path: Path) -> None:
    image = build_udf(tmp_path / "links.img", _tree(True))
    ours = _ours(image)
    assert ours["/link"]["link"] == "small.txt"
    assert ours["/abs"]["link"] == "/sub/deep.txt"
    assert ours["/link"]["type"] == "l/l"  # as Rock Ridge and ext list links (was r/l)
    hard = json.loads(run_bitwitness("stat", "--json", built, "/hard.txt").stdout)
    assert hard["links"] == 2
    deep = json.loads(run_bitwitness("stat", "--json", built, "/sub/deep.txt").stdout)
    assert (deep["uid"], deep["gid"], deep["mode"]) == (1000, 100, "rw-------")
    # the fixture's writer was told zone -300; the times are UTC (7-Zip agrees, above)
    assert deep["time_zones"] == dict.fromkeys(("modified", "accessed", "changed", "born"),
                                               "-05:00")
    text = run_bitwitness("stat", built, "/sub/deep.txt").stdout
    assert "recorded in:     modified -05:00, accessed -05:00" in text


def test_commands_leave_the_evidence_unchanged(built: Path, bridge: Path,
                                               tmp_path: Path) -> None:
    before = snapshot([built, bridge])
    atimes = {p: p.stat().st_atime_ns for p in (built, bridge)}
    for args in (("ls", "-r", "-l", built), ("stat", built, "/big.bin"),
                 ("cat", built, "/sparse.bin"), ("timeline", built),
                 ("timeline", "-p", "0/udf", bridge),
                 ("export", built, "/sub", "/big.bin", "--to", tmp_path / "out"),
                 ("export", "-p", "0/udf", bridge, "/a", "--to", tmp_path / "out2")):
        result = run_bitwitness(*args)
        assert result.exit_code == 0, (args, result.stderr)
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    text = json.dumps(manifest)
    assert hashlib.sha256(MEDIUM).hexdigest() in text
    assert hashlib.md5(MEDIUM).hexdigest() in text  # noqa: S324 - the manifest's own MD5
    body = run_bitwitness("timeline", built).stdout
    assert "sub/deep.txt" in body
    assert snapshot([built, bridge]) == before
    assert {p: p.stat().st_atime_ns for p in (built, bridge)} == atimes


def test_mount_files_gives_7zips_bytes(built: Path, bridge: Path, tmp_path: Path) -> None:
    """``mount --files`` serves UDF through the same reader: a pure UDF volume as
    ``files/0``, a bridge disc's UDF side beside its ISO 9660 side."""
    from test_mount import Foreground, require_fuse

    require_fuse()
    before = snapshot([built, bridge])
    for image, files in ((built, "0"), (bridge, "0_udf")):
        mnt = tmp_path / f"mnt-{image.stem}"
        mnt.mkdir()
        digests = _extracted(image, tmp_path / f"7z-{image.stem}")
        facts = _sevenzip(image)
        fg = Foreground(image, mnt, "--files")
        try:
            live = mnt / "files" / files
            for path, (size, digest) in digests.items():
                if size != int(facts[path]["Size"]):
                    continue
                data = (live / path.lstrip("/")).read_bytes()
                assert hashlib.sha256(data).hexdigest() == digest, path
        finally:
            fg.stop()
    assert snapshot([built, bridge]) == before


# --- hostile copies ----------------------------------------------------------------------------


def _retag(data: bytearray, at: int) -> None:
    """Recompute the descriptor CRC and tag checksum of the descriptor at ``at`` (its CRC
    length unchanged), as a writer would have: the damage is then in the fields, not the tag."""
    length = int.from_bytes(data[at + 10:at + 12], "little")
    struct.pack_into("<H", data, at + 8, crc_hqx(bytes(data[at + 16:at + 16 + length]), 0))
    data[at + 4] = (sum(data[at:at + 4]) + sum(data[at + 5:at + 16])) & 0xFF


def _descriptors(data: bytes, ident: int) -> list[int]:
    """Byte offsets of the blocks starting with a tag of ``ident`` (tag checksum valid)."""
    found = []
    for at in range(0, len(data) - 16, BS):
        head = data[at:at + 16]
        if int.from_bytes(head[:2], "little") == ident and (
                sum(head[0:4]) + sum(head[5:16])) & 0xFF == head[4]:
            found.append(at)
    return found


def _fid(data: bytes, name: str) -> int:
    at = data.find(b"\x08" + name.encode())
    assert at > 38
    return at - 38


def _efe_of(data: bytes, size: int) -> int:
    return next(at for at in _descriptors(data, 266)
                if int.from_bytes(data[at + 56:at + 64], "little") == size)


def _fid_crc(data: bytearray) -> None:
    data[_fid(data, "small.txt") + 40] ^= 0x01  # the name, tag left as it was


def _fid_overrun(data: bytearray) -> None:
    at = _fid(data, "file-059-" + "x" * 40)
    data[at + 19] = 255
    _retag(data, at)


def _aed_loop(data: bytearray) -> None:
    aed = _descriptors(data, 258)[0]
    block = int.from_bytes(data[aed + 12:aed + 16], "little")
    length = int.from_bytes(data[aed + 20:aed + 24], "little")
    data[aed + 24 + length:aed + 24 + length + 16] = struct.pack("<IIH6x", 3 << 30 | BS,
                                                                 block, 1)
    struct.pack_into("<I", data, aed + 20, length + 16)
    struct.pack_into("<H", data, aed + 10, 8 + length + 16)
    _retag(data, aed)


def _outside(data: bytearray) -> None:
    at = _efe_of(data, len(MEDIUM))
    struct.pack_into("<I", data, at + 216 + 4, 0xFFFFFF00)
    _retag(data, at)


def _absurd_length(data: bytearray) -> None:
    at = _efe_of(data, len(MEDIUM))
    struct.pack_into("<Q", data, at + 56, 1 << 60)
    _retag(data, at)


def _dir_cycle(data: bytearray) -> None:
    """A file of /sub made a folder naming the root's ICB: / -> /sub -> / ..."""
    at = _fid(data, "file-000-" + "x" * 40)
    fsd = _descriptors(data, 256)[0]
    data[at + 18] = 0x02
    data[at + 20:at + 36] = data[fsd + 400:fsd + 416]
    _retag(data, at)


def _indirect_loop(data: bytearray) -> None:
    at = _efe_of(data, 6)  # small.txt
    block = int.from_bytes(data[at + 12:at + 16], "little")
    data[at:at + BS] = bytes(BS)
    struct.pack_into("<HH", data, at, 259, 3)
    struct.pack_into("<I", data, at + 12, block)
    data[at + 36:at + 52] = struct.pack("<IIH6x", BS, block, 1)
    struct.pack_into("<H", data, at + 10, 52 - 16)
    _retag(data, at)


def _vds_loop(data: bytearray) -> None:
    for start in (32, 48):
        at = start * BS
        data[at:at + BS] = bytes(BS)
        struct.pack_into("<HH", data, at, 3, 3)
        struct.pack_into("<I", data, at + 12, start)
        struct.pack_into("<III", data, at + 16, 1, BS * 16, start)
        struct.pack_into("<H", data, at + 10, 496)
        _retag(data, at)


def _cut(data: bytearray) -> None:
    del data[len(data) // 3:]


CASES: dict[str, Callable[[bytearray], None]] = {
    "fid-crc": _fid_crc, "fid-overrun": _fid_overrun, "aed-loop": _aed_loop,
    "outside": _outside, "absurd-length": _absurd_length, "dir-cycle": _dir_cycle,
    "indirect-loop": _indirect_loop, "vds-loop": _vds_loop, "cut": _cut}


def test_reserve_sequence_when_the_main_one_is_damaged(built: Path, tmp_path: Path) -> None:
    """The Main Volume Descriptor Sequence (where the anchor says) zeroed: the Reserve one is
    read and the listing is the same."""
    data = bytearray(built.read_bytes())
    anchor = 256 * BS
    length, main = struct.unpack_from("<II", data, anchor + 16)
    data[main * BS:main * BS + length] = bytes(length)
    image = tmp_path / "no-main.img"
    image.write_bytes(bytes(data))
    assert _ours(image, "--all") == _ours(built, "--all")


@pytest.mark.parametrize("case", sorted(CASES))
def test_damaged_udf_fails_closed(case: str, built: Path, tmp_path: Path) -> None:
    data = bytearray(built.read_bytes())
    CASES[case](data)
    assert bytes(data) != built.read_bytes()
    image = tmp_path / f"{case}.img"
    image.write_bytes(bytes(data))
    before = snapshot([image])
    for args in (("ls", "-r", "--all", image), ("stat", image, "/big.bin"),
                 ("timeline", image), ("cat", image, "/small.txt"), ("cat", image, "/big.bin"),
                 ("export", image, "/sub", "--to", tmp_path / "out")):
        code, digest = fails_closed(*args)
        if args[0] == "cat" and code == 0:
            want = MEDIUM if args[2] == "/big.bin" else b"hello\n"
            assert digest == hashlib.sha256(want).hexdigest(), (case, args)
    assert snapshot([image]) == before
    if case in ("aed-loop", "outside", "absurd-length"):
        code, stderr, _digest, _rss = _measured("cat", image, "/big.bin")
        assert code == 2, stderr
        assert "udf:" in stderr
