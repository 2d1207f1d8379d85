"""ISO 9660 with Rock Ridge read by our own reader (report/browse/iso9660.py), checked against
independent readers on images made on the fly, never against numbers written here:

- names, types, modes, owners, sizes and link targets against libisofs
  (``xorriso -indev X -find / -exec lsdl``), modification times against the files the image
  was made from (lsdl prints minutes only);
- contents (SHA-256) against ``osirrox -extract``;
- inode numbers against ``fls -r -p`` (and ``icat``) on the same image: TSK's numbers for
  every file TSK lists, numbers of their own for the others;
- hostile copies (a CE that loops, a folder extent pointing at the root, an NM CONTINUE chain
  of 100,000 pieces, absurd sizes) end in one line, exit 1 or 2, in bounded time and memory.

Images: ``-R`` (no Joliet), ``-R -J``, ``-R -J -joliet-long``, deep folders relocated to
``rr_moved`` (``-compliance deep_paths_off``) and zisofs (``--zisofs`` filter).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import struct
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import THIRD_PARTY, cat_bytes, require_root, require_tool, run_bitwitness, snapshot
from test_fs_ext_hostile import _measured, fails_closed

LONG_NAME = "l" * 150 + "-é-" + "ü" * 30 + ".txt"  # 220 bytes of UTF-8
DEEP = "/".join(f"d{n}" for n in range(1, 11))
BIG = bytes(range(256)) * 1200
_LSDL = re.compile(r"^(\S{10})\s+(\d+)\s+(\d+)\s+(\d+)\s+(\S+)\s+\w{3}\s+\d+\s+[\d:]+\s+"
                   r"'(.*?)'(?: -> '(.*)')?$")
_TYPES = {"-": "r", "d": "d", "l": "l", "c": "c", "b": "b", "p": "p", "s": "s"}


def _run(*args: str | Path, env: dict[str, str] | None = None) -> str:
    return subprocess.run([os.fspath(a) for a in args], capture_output=True, check=True,
                          env=env, timeout=300).stdout.decode("utf-8", "surrogateescape")


def _fill(root: Path) -> None:
    (root / "docs").mkdir()
    (root / "docs/readme.txt").write_bytes(b"hello\n")
    (root / "docs/café ünïcode.txt").write_bytes(b"unicode\n")
    (root / LONG_NAME).write_bytes(b"long name\n")
    (root / "big.bin").write_bytes(BIG)
    (root / "empty").write_bytes(b"")
    (root / "hard1").write_bytes(b"linked\n")
    os.link(root / "hard1", root / "hard2")
    (root / "abs").symlink_to("/etc/passwd")
    (root / "rel").symlink_to("docs/readme.txt")
    (root / "docs/up").symlink_to("../big.bin")
    (root / "docs/self").symlink_to("./readme.txt")
    os.mknod(root / "null", 0o620 | 0o020000, os.makedev(1, 3))
    os.mknod(root / "loop", 0o640 | 0o060000, os.makedev(7, 0))
    os.mkfifo(root / "fifo", 0o600)
    (root / DEEP).mkdir(parents=True)
    (root / DEEP / "deep.txt").write_bytes(b"deep\n")
    os.chown(root / "hard1", 1234, 5678)
    (root / "hard1").chmod(0o4750)
    (root / "docs").chmod(0o751)
    for n, path in enumerate(sorted(root.rglob("*"), reverse=True)):
        os.utime(path, (1_500_000_000 + n, 1_600_000_000 + 7 * n), follow_symlinks=False)


def _make(kind: str, staging: Path, image: Path) -> Path:
    if kind.startswith("zisofs"):
        # zisofs 1; zisofs2 with its own Z2 entry (64-bit size), and in a ZF entry ("PZ")
        zisofs = {"zisofs": [],
                  "zisofs2": ["-zisofs", "version_2=on:susp_z2=on:block_size_v2=128k"],
                  "zisofs2zf": ["-zisofs", "version_2=on:susp_z2=off:block_size_v2=1m"]}[kind]
        _run("xorriso", "-outdev", image, "-rockridge", "on", *zisofs, "-map", staging, "/",
             "-set_filter_r", "--zisofs", "/big.bin", "/docs", "--", "-commit")
    elif kind == "deep":
        _run("xorriso", "-compliance", "deep_paths_off", "-rr_reloc_dir", "rr_moved",
             "-rockridge", "on", "-outdev", image, "-map", staging, "/", "-commit")
    else:
        flags = {"r": ["-R"], "rj": ["-R", "-J"], "rjl": ["-R", "-J", "-joliet-long"]}[kind]
        _run("xorriso", "-as", "mkisofs", "-quiet", *flags, "-o", image, staging)
    return image


KINDS = ("r", "rj", "rjl", "deep", "zisofs", "zisofs2", "zisofs2zf")


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Path]]:
    """The staging tree and one image of each kind."""
    require_root()
    require_tool("xorriso", "osirrox", "fls", "icat")
    base = tmp_path_factory.mktemp("iso-rr")
    staging = base / "staging"
    staging.mkdir()
    _fill(staging)
    return staging, {kind: _make(kind, staging, base / f"{kind}.iso") for kind in KINDS}


def _libisofs(image: Path) -> dict[str, dict[str, Any]]:
    """What libisofs (xorriso) lists: path -> type, mode, links, uid, gid, size, target."""
    found = {}
    for line in _run("xorriso", "-indev", image, "-find", "/", "-exec", "lsdl").splitlines():
        match = _LSDL.match(line)
        if match is None or match.group(6) == "/":
            continue
        perms, _links, uid, gid, size, path, target = match.groups()
        found[path] = {"type": _TYPES[perms[0]], "mode": perms[1:], "uid": int(uid),
                       "gid": int(gid), "size": size, "link": target}
    return found


def _ours(image: Path) -> list[dict[str, Any]]:
    result = run_bitwitness("ls", image, "-r", "--json")
    assert result.exit_code == 0, result.stderr
    return [e for e in json.loads(result.stdout)["entries"]
            if not e["path"].startswith("/$OrphanFiles")]


@pytest.mark.parametrize("kind", KINDS)
def test_listing_matches_libisofs(made: tuple[Path, dict[str, Path]], kind: str) -> None:
    staging, images = made
    theirs = _libisofs(images[kind])
    ours = {e["path"]: e for e in _ours(images[kind])}
    assert set(ours) == set(theirs)
    for path, want in theirs.items():
        entry = ours[path]
        assert entry["type"] == f"{want['type']}/{want['type']}", path
        stat = json.loads(run_bitwitness("stat", images[kind], path, "--json").stdout)
        assert stat["mode"] == want["mode"], path
        assert (stat["uid"], stat["gid"]) == (want["uid"], want["gid"]), path
        assert entry["link"] == want["link"], path
        if want["type"] == "r":
            assert str(entry["size"]) == want["size"], path
        if want["type"] in "cb":  # lsdl prints MAJOR,MINOR where the size goes
            assert f"{stat['device']['major']},{stat['device']['minor']}" == want["size"], path
        source = os.lstat(staging / path.lstrip("/"))
        modified = entry["modified"]
        assert modified is not None, path
        assert int(datetime.fromisoformat(modified).timestamp()) == int(source.st_mtime), path
    assert ours[f"/{LONG_NAME}"]["name"] == LONG_NAME


@pytest.mark.parametrize("kind", KINDS)
def test_contents_match_osirrox(made: tuple[Path, dict[str, Path]], kind: str,
                                tmp_path: Path) -> None:
    _staging, images = made
    out = tmp_path / "extracted"
    _run("osirrox", "-indev", images[kind], "-extract", "/", out)
    checked = 0
    for entry in _ours(images[kind]):
        if entry["type"] != "r/r":
            continue
        got = cat_bytes(images[kind], entry["path"])
        want = (out / entry["path"].lstrip("/")).read_bytes()
        assert hashlib.sha256(got).hexdigest() == hashlib.sha256(want).hexdigest(), (
            entry["path"])
        checked += 1
    assert checked >= 7


def _fls(image: Path) -> dict[str, tuple[str, int]]:
    """fls -r -p: path -> (type, inode), $OrphanFiles' numbered orphans included."""
    found = {}
    for line in _run("fls", "-r", "-p", image).splitlines():
        head, _tab, path = line.partition("\t")
        kind, _star, number = head.rpartition(" ")[0], "", head.rpartition(" ")[2]
        found[path] = (kind.replace(" *", ""), int(number.rstrip(":")))
    return found


@pytest.mark.parametrize("kind", KINDS)
def test_addresses_are_tsks(made: tuple[Path, dict[str, Path]], kind: str) -> None:
    """Every file whose path fls lists has fls's number; every other file a number TSK gives
    no listed file, or the number TSK lists it by among its orphans; icat of a number gives
    our bytes."""
    _staging, images = made
    image = images[kind]
    fls = _fls(image)
    by_number = {number: path for path, (_k, number) in fls.items()}
    orphans = {n for p, (_k, n) in fls.items() if p.startswith("$OrphanFiles/")}
    highest = max(by_number)
    ours = _ours(image)
    seen: set[int] = set()
    for entry in ours:
        number = int(entry["inode"])
        path = entry["path"].lstrip("/")
        assert number not in seen, entry["path"]
        seen.add(number)
        if path in fls:
            assert fls[path][1] == number, path
        elif number in by_number:  # TSK lists it by its 8.3 or cut Joliet name, or as orphan
            listed = by_number[number]
            want = "d/d" if entry["type"] == "d/d" else "r/r"
            assert number in orphans or fls[listed][0] == want, (path, listed)
        else:
            assert number > highest, (path, number)
        if entry["type"] == "r/r" and not kind.startswith("zisofs") and number <= highest:
            icat = subprocess.run(["icat", image, str(number)], capture_output=True,
                                  check=True, timeout=60).stdout
            ours_bytes = cat_bytes(image, "--inode", str(number))
            assert icat == ours_bytes, path
    if kind in ("rj", "rjl"):
        assert sum(1 for p in fls if not p.startswith("$") and p in
                   {e["path"].lstrip("/") for e in ours}) >= 10


def test_joliet_names_give_way_to_rock_ridge(made: tuple[Path, dict[str, Path]]) -> None:
    """TSK shows the 8.3 or Joliet names and no symlink; we show the Rock Ridge tree."""
    _staging, images = made
    plain = _fls(images["r"])
    assert "ABS" in plain
    assert "abs" not in plain
    ours = {e["path"]: e for e in _ours(images["r"])}
    assert ours["/abs"]["type"] == "l/l"
    assert ours["/abs"]["link"] == "/etc/passwd"
    assert ours["/docs/up"]["link"] == "../big.bin"
    assert ours["/docs/self"]["link"] == "./readme.txt"
    assert ours["/null"]["type"] == "c/c"
    assert ours["/loop"]["type"] == "b/b"
    assert ours["/fifo"]["type"] == "p/p"
    assert f"/{LONG_NAME}" in ours
    assert f"/{DEEP}/deep.txt" in ours


def test_relocated_folders_are_shown_once_where_they_belong(
        made: tuple[Path, dict[str, Path]]) -> None:
    _staging, images = made
    fls = _fls(images["deep"])
    assert any(p.upper().startswith("RR_MOVED") for p in fls)  # TSK shows the relocation
    paths = [e["path"] for e in _ours(images["deep"])]
    assert f"/{DEEP}/deep.txt" in paths
    assert not [p for p in paths if "rr_moved" in p.lower()]
    assert len(paths) == len(set(paths))


def test_timeline_export_and_stat(made: tuple[Path, dict[str, Path]], tmp_path: Path) -> None:
    """timeline, export (hashes, manifest) and stat --json go through the same reader."""
    staging, images = made
    image = images["rj"]
    timeline = run_bitwitness("timeline", image)
    assert timeline.exit_code == 0, timeline.stderr
    assert "|/abs -> /etc/passwd|" in timeline.stdout
    assert f"|/{LONG_NAME}|" in timeline.stdout
    out = tmp_path / "out"
    exported = run_bitwitness("export", image, "/docs", "--to", out)
    assert exported.exit_code == 0, exported.stderr
    manifest = json.loads(next(out.rglob("manifest.json")).read_text())
    rows = {Path(f["source"]).name: f for f in manifest["files"]}
    want = hashlib.sha256((staging / "docs/café ünïcode.txt").read_bytes()).hexdigest()
    assert rows["café ünïcode.txt"]["sha256"] == want
    stat = json.loads(run_bitwitness("stat", image, "/docs", "--json").stdout)
    assert stat["mode"] == "rwxr-x--x"
    human = run_bitwitness("stat", image, "/hard1")
    assert human.exit_code == 0, human.stderr
    assert "rwsr-x---" in human.stdout
    assert "1234/5678" in human.stdout
    long_listing = run_bitwitness("ls", "-l", image, "/docs")
    assert long_listing.exit_code == 0, long_listing.stderr
    assert "café ünïcode.txt" in long_listing.stdout


def test_mount_serves_rock_ridge(made: tuple[Path, dict[str, Path]], tmp_path: Path) -> None:
    from test_mount import Foreground, require_fuse

    require_fuse()
    staging, images = made
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    fg = Foreground(images["rj"], mnt, "--files")
    try:
        live = mnt / "files" / "0"
        assert (live / LONG_NAME).read_bytes() == (staging / LONG_NAME).read_bytes()
        assert (live / "big.bin").read_bytes() == BIG
    finally:
        fg.stop()


def test_iso_without_rock_ridge_stays_with_tsk(tmp_path: Path) -> None:
    require_tool("xorriso")
    staging = tmp_path / "s"
    staging.mkdir()
    (staging / "a.txt").write_bytes(b"a\n")
    image = tmp_path / "plain.iso"
    _run("xorriso", "-rockridge", "off", "-joliet", "off", "-outdev", image, "-map", staging,
         "/", "-commit")
    from bitwitness.image import open_image
    from bitwitness.report.browse.volumetree import read_tree

    with open_image(image) as stream:
        tree = read_tree(stream)
        assert [n.reader for n in tree.walk() if n.filesystem] == [None]
    listed = run_bitwitness("ls", image)
    assert "A.TXT" in listed.stdout


def test_third_party_iso_is_read_as_before() -> None:
    fixture = THIRD_PARTY / "dfvfs_iso9660.raw"
    if not fixture.exists():
        pytest.skip("../shared fixtures are absent")
    require_tool("fls")
    ours = run_bitwitness("ls", "-r", fixture)
    assert ours.exit_code == 0, ours.stderr
    theirs = _run("fls", "-r", "-p", fixture)
    assert sorted(ours.stdout.splitlines()) == sorted(theirs.splitlines())


# --- hostile copies --------------------------------------------------------------------------


def _records(data: bytes, extent: int, size: int) -> list[tuple[int, bytes]]:
    found = []
    for base in range(extent * 2048, extent * 2048 + size, 2048):
        at = base
        while at < base + 2048 and data[at]:
            found.append((at, data[at:at + data[at]]))
            at += data[at]
    return found


def _root(data: bytes) -> tuple[int, int]:
    pvd = 16 * 2048
    return struct.unpack_from("<I", data, pvd + 156 + 2)[0], struct.unpack_from(
        "<I", data, pvd + 156 + 10)[0]


def _named(data: bytes, name: bytes) -> tuple[int, bytes]:
    root = _root(data)
    for at, record in _records(data, *root):
        if record[33:33 + record[32]].split(b";")[0].rstrip(b".") == name:
            return at, record
    raise AssertionError(name)


def _both(value: int) -> bytes:
    return struct.pack("<I", value) + struct.pack(">I", value)


def _su_start(record: bytes) -> int:
    return 33 + record[32] + (0 if record[32] % 2 else 1)


def _append(data: bytearray, payload: bytes) -> int:
    """``payload`` in sectors added at the end of the image; its first block."""
    block = -(-len(data) // 2048)
    data.extend(bytes(block * 2048 - len(data)))
    data.extend(payload + bytes(-len(payload) % 2048))
    return block


def _with_ce(data: bytearray, name: bytes, area: bytes, self_loop: bool = False) -> None:
    """The record ``name`` continues (CE) into ``area`` appended to the image."""
    at, record = _named(data, name)
    block = _append(data, area)
    if self_loop:
        ce = b"CE\x1c\x01" + _both(block) + _both(0) + _both(28)
        data[block * 2048:block * 2048 + 28] = ce
    start = at + _su_start(record)
    length = len(area) if not self_loop else 28
    ce = b"CE\x1c\x01" + _both(block) + _both(0) + _both(length)
    end = at + record[0]
    data[start:end] = ce.ljust(end - start, b"\0")  # the record's own entries: only the CE


def _ce_self_loop(data: bytearray) -> None:
    _with_ce(data, b"BIG.BIN", bytes(28), self_loop=True)


def _ce_outside(data: bytearray) -> None:
    at, record = _named(data, b"BIG.BIN")
    start = at + _su_start(record)
    data[start:start + 28] = b"CE\x1c\x01" + _both(0x7FFFFFFF) + _both(0) + _both(4096)


def _nm_without_end(data: bytearray) -> None:
    _with_ce(data, b"BIG.BIN", b"NM\x06\x01\x01x" * 100_000)


def _sl_without_end(data: bytearray) -> None:
    _with_ce(data, b"ABS", b"SL\x08\x01\x01\x00\x01a")


def _folder_is_root(data: bytearray) -> None:
    at, _record = _named(data, b"DOCS")
    extent, _size = _root(data)
    data[at + 2:at + 10] = _both(extent)


def _absurd_size(data: bytearray) -> None:
    at, _record = _named(data, b"BIG.BIN")
    data[at + 10:at + 18] = _both(0xFFFFF000)


def _absurd_folder(data: bytearray) -> None:
    at, _record = _named(data, b"DOCS")
    data[at + 2:at + 18] = _both(0x7FFFFF00) + _both(0xFFFFF000)


HOSTILE = {"ce-self-loop": _ce_self_loop, "ce-outside": _ce_outside,
           "nm-100000-pieces": _nm_without_end, "sl-without-end": _sl_without_end,
           "folder-is-root": _folder_is_root, "absurd-size": _absurd_size,
           "absurd-folder": _absurd_folder}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_iso_fails_closed(case: str, made: tuple[Path, dict[str, Path]],
                                  tmp_path: Path) -> None:
    _staging, images = made
    data = bytearray(images["r"].read_bytes())
    HOSTILE[case](data)
    image = tmp_path / f"{case}.iso"
    image.write_bytes(bytes(data))
    before = snapshot([image])
    for args in (("ls", "-r", image), ("stat", image, "/big.bin"), ("timeline", image),
                 ("cat", image, "/big.bin"), ("export", image, "/docs", "--to",
                                              tmp_path / "out")):
        code, digest = fails_closed(*args)
        if args[0] == "cat" and code == 0:
            assert digest == hashlib.sha256(BIG).hexdigest(), case
    code, stderr, _digest, _rss = _measured("ls", "-r", image)
    assert code in (1, 2), (case, stderr)
    assert snapshot([image]) == before


@pytest.mark.parametrize(("case", "damaged"), [("absurd-size", "/big.bin"),
                                              ("folder-is-root", "/docs"),
                                              ("absurd-folder", "/docs")])
def test_one_damaged_record_leaves_the_rest_browsable(
        case: str, damaged: str, made: tuple[Path, dict[str, Path]], tmp_path: Path) -> None:
    """One record's damage is that entry's (as TSK, and fls, take it): the entry is listed
    and named in a warning (exit 1: the listing is incomplete), a folder reached twice is
    not walked again, and every other file lists and reads as the intact image's."""
    _staging, images = made
    data = bytearray(images["r"].read_bytes())
    HOSTILE[case](data)
    image = tmp_path / f"{case}.iso"
    image.write_bytes(bytes(data))
    listing = run_bitwitness("ls", "-r", "--json", image)
    assert listing.exit_code == 1, listing.stderr
    assert f"warning: {damaged}: " in listing.stderr
    paths = {e["path"] for e in listing.json()["entries"]}
    intact = {e["path"] for e in _ours(images["r"])}
    kept = {p for p in intact if not p.startswith("/docs/")}
    assert kept <= paths
    assert damaged in paths
    assert run_bitwitness("cat", image, "/hard1").stdout == "linked\n"
    assert run_bitwitness("cat", image, f"/{DEEP}/deep.txt").stdout == "deep\n"


def test_files_hidden_from_rock_ridge_are_shown(tmp_path: Path) -> None:
    """A file only in the Joliet tree (``xorriso -hide iso_rr``: libisofs and the kernel do
    not see it) is listed where TSK lists it, with TSK's number and its bytes."""
    require_tool("xorriso", "fls", "icat")
    staging = tmp_path / "s"
    staging.mkdir()
    (staging / "open.txt").write_bytes(b"open\n")
    (staging / "secret.txt").write_bytes(b"secret\n")
    (staging / "stash/inner").mkdir(parents=True)
    (staging / "stash/inner/deep.txt").write_bytes(b"deeper\n")
    image = tmp_path / "hidden.iso"
    _run("xorriso", "-outdev", image, "-rockridge", "on", "-joliet", "on", "-map", staging, "/",
         "-hide", "iso_rr", "/secret.txt", "/stash", "--", "-commit")
    assert "/secret.txt" not in _libisofs(image)
    assert "/stash/inner/deep.txt" not in _libisofs(image)
    fls = _fls(image)
    ours = {e["path"]: e for e in _ours(image)}
    for path in ("secret.txt", "stash", "stash/inner", "stash/inner/deep.txt"):
        assert int(ours[f"/{path}"]["inode"]) == fls[path][1], path
    assert run_bitwitness("cat", image, "/stash/inner/deep.txt").stdout == "deeper\n"
    cat = run_bitwitness("cat", image, "/secret.txt")
    assert cat.stdout == "secret\n"


def _repack(data: bytearray, extent: int, size: int, records: list[bytes]) -> None:
    """Write ``records`` as the folder at ``extent`` (none crossing a sector)."""
    out = bytearray()
    for record in records:
        if len(out) % 2048 + len(record) > 2048:
            out.extend(bytes(-len(out) % 2048))
        out.extend(record)
    out.extend(bytes(-len(out) % 2048))
    assert len(out) <= size, "no room left in the folder"
    data[extent * 2048:extent * 2048 + size] = out.ljust(size, b"\0")


def test_a_file_of_several_extents_is_one_file(made: tuple[Path, dict[str, Path]],
                                               tmp_path: Path) -> None:
    """A file in several records (flag 0x80 on all but the last, ECMA-119 9.1.6; what files
    over 4 GiB need) is listed once with the size of all its pieces and their bytes in order.
    Made by splitting big.bin's record in two (the second without Rock Ridge fields)."""
    staging, images = made
    data = bytearray(images["r"].read_bytes())
    extent, size = _root(data)
    records = [record for _at, record in _records(data, extent, size)]
    at = next(n for n, r in enumerate(records) if r[33:33 + r[32]].startswith(b"BIG.BIN"))
    whole = records[at]
    block, length = struct.unpack_from("<I", whole, 2)[0], struct.unpack_from("<I", whole, 10)[0]
    head = 40 * 2048
    first = bytearray(whole)
    first[10:18] = _both(head)
    first[25] |= 0x80
    second = bytearray(whole[:33 + whole[32] + (0 if whole[32] % 2 else 1)])
    second[0] = len(second)
    second[2:10] = _both(block + 40)
    second[10:18] = _both(length - head)
    records[at:at + 1] = [bytes(first), bytes(second)]
    _repack(data, extent, size, records)
    image = tmp_path / "multi.iso"
    image.write_bytes(bytes(data))
    ours = [e for e in _ours(image) if e["name"] == "big.bin"]
    assert len(ours) == 1
    assert ours[0]["size"] == len((staging / "big.bin").read_bytes())
    result = subprocess.run([sys.executable, "-m", "bitwitness", "cat", image, "/big.bin"],
                            capture_output=True, check=True, timeout=60)
    assert result.stdout == (staging / "big.bin").read_bytes()


def test_time_stamps_short_and_long_with_their_offsets() -> None:
    """TF in both forms (RRIP 4.1.6: 7-byte and 17-byte ECMA-119 dates), each local time
    with its offset from Greenwich, read as the instant it names."""
    from datetime import UTC, timedelta, timezone

    from bitwitness.report.browse import iso_rockridge as rrip

    instant = datetime(2021, 7, 4, 23, 15, 42, 250_000, tzinfo=UTC)
    east = timezone(timedelta(hours=5, minutes=45))  # Nepal: 23 quarters
    local = instant.astimezone(east)
    quarters = 23
    short = bytes([local.year - 1900, local.month, local.day, local.hour, local.minute,
                   local.second, quarters])
    long_form = local.strftime("%Y%m%d%H%M%S").encode() + b"%02d" % (
        local.microsecond // 10_000) + bytes([quarters])
    west = bytes(short[:6]) + bytes([256 - quarters])  # the same wall clock 11:30 west
    for flags, stamps in ((0x02, short), (0x82, long_form), (0x06, short + west)):
        entry = b"TF" + bytes([5 + len(stamps), 1, flags]) + stamps
        rr = rrip.rock_ridge(rrip.entries(entry, lambda _o, _s: b"", "t", 0), "t")
        want = instant if flags & 0x80 else instant.replace(microsecond=0)
        assert rr.times["modified"] == want
        if flags & 0x04:
            assert rr.times["accessed"] == want + timedelta(minutes=15 * 2 * quarters)


def test_names_and_links_in_pieces() -> None:
    """NM pieces (CONTINUE) and SL components (CONTINUE, CURRENT, PARENT, ROOT) split across
    several entries give the name and the target they spell."""
    from bitwitness.report.browse import iso_rockridge as rrip

    def entry(sig: bytes, body: bytes) -> bytes:
        return sig + bytes([4 + len(body), 1]) + body

    def component(flags: int, text: bytes = b"") -> bytes:
        return bytes([flags, len(text)]) + text

    name = "ünïcode-" * 40
    raw = name.encode()
    area = b"".join(entry(b"NM", bytes([1]) + raw[n:n + 100]) for n in range(0, len(raw), 100))
    area += entry(b"NM", bytes([0]))
    target = "/usr/../lib/./very-long-component/x"
    area += entry(b"SL", bytes([1]) + component(0x08) + component(0, b"usr")
                  + component(0x04) + component(0, b"lib") + component(0x02)
                  + component(0x01, b"very-lo"))
    area += entry(b"SL", bytes([0]) + component(0, b"ng-component") + component(0, b"x"))
    rr = rrip.rock_ridge(rrip.entries(area, lambda _o, _s: b"", "t", 0), "t")
    assert rr.name == raw
    assert rr.link == target.encode()


def test_names_are_data(made: tuple[Path, dict[str, Path]], tmp_path: Path) -> None:
    """A Rock Ridge name holding a slash and terminal escapes is listed escaped, never acted
    on, and found again by the spelling ls prints."""
    _staging, images = made
    data = bytearray(images["r"].read_bytes())
    name = b"evil/\x1b[31mname\x07.bin"
    _with_ce(data, b"BIG.BIN", b"NM" + bytes([5 + len(name), 1, 0]) + name)
    image = tmp_path / "names.iso"
    image.write_bytes(bytes(data))
    listed = run_bitwitness("ls", image)
    assert listed.exit_code == 0, listed.stderr
    assert "\x1b" not in listed.stdout
    assert "evil/^[31mname^.bin" in listed.stdout
    cat = subprocess.run([sys.executable, "-m", "bitwitness", "cat", image,
                          "/evil%2F%1B[31mname%07.bin"], capture_output=True, timeout=60,
                         check=False)
    assert cat.stdout == BIG, cat.stderr


_BSDTAR = re.compile(r"^(\S)\S{9}\s+\d+\s+\S+\s+\S+\s+\S+\s+\w{3}\s+\d+\s+[\d:]+\s+(.*?)"
                     r"(?: -> (.*)|( link to .*))?$")


@pytest.mark.parametrize("kind", [k for k in KINDS if not k.startswith("zisofs2")])
def test_libarchive_reads_the_same(made: tuple[Path, dict[str, Path]], kind: str) -> None:
    """libarchive (``bsdtar``), a second reader of Rock Ridge: the same paths, types, link
    targets and, for every file, the same bytes (zisofs decompressed by libarchive too; it
    does not decode zisofs2, whose bytes test_contents_match_osirrox holds to libisofs')."""
    require_tool("bsdtar")
    _staging, images = made
    image = images[kind]
    theirs: dict[str, tuple[str, str | None]] = {}
    hard_links = set()  # tar's model: the second name of a file carries no bytes of its own
    for line in _run("bsdtar", "-tvf", image).splitlines():
        match = _BSDTAR.match(line)
        assert match is not None, line
        kind_letter, path, target, hard = match.groups()
        if path != ".":
            theirs["/" + path] = (_TYPES.get(kind_letter, kind_letter), target)
        if hard:
            hard_links.add("/" + path)
    ours = {e["path"]: e for e in _ours(image)}
    assert set(ours) == set(theirs)
    for path, (letter, target) in theirs.items():
        assert ours[path]["type"] == f"{letter}/{letter}", path
        assert ours[path]["link"] == target, path
        if letter == "r" and path not in hard_links:
            want = subprocess.run(["bsdtar", "-xOf", image, path.lstrip("/")],
                                  capture_output=True, check=True, timeout=60).stdout
            got = cat_bytes(image, path)
            assert got == want, path


def test_unknown_zisofs_is_refused_not_passed_off(made: tuple[Path, dict[str, Path]],
                                                  tmp_path: Path) -> None:
    """A ZF entry of an algorithm other than zisofs 1 (``pz``): cat refuses the file in one
    line (never the compressed bytes as its content); the listing still works."""
    _staging, images = made
    data = bytearray(images["zisofs"].read_bytes())
    at, record = _named(data, b"BIG.BIN")
    where = record.index(b"ZF")
    assert record[where + 4:where + 6] == b"pz"
    data[at + where + 4:at + where + 6] = b"zz"
    image = tmp_path / "zz.iso"
    image.write_bytes(bytes(data))
    assert run_bitwitness("ls", image).exit_code == 0
    code, stderr, _digest, _rss = _measured("cat", image, "/big.bin")
    assert code == 2
    assert len(stderr.strip().splitlines()) == 1
    assert "zisofs" in stderr


def test_numbers_follow_tsk_where_it_drops_a_joliet_name(tmp_path: Path) -> None:
    """TSK stops reading a Joliet folder's sector at a name longer than 128 bytes of UTF-8
    (50 CJK characters); the file then has the number of its primary record, which fls lists
    among its orphans. Ours are TSK's: icat of each number gives that file's bytes."""
    require_tool("xorriso", "fls", "icat")
    staging = tmp_path / "s"
    staging.mkdir()
    names = ["a.txt", "日" * 50 + ".txt", "b.txt", "zz" + "本" * 30 + ".txt", "zzz.txt"]
    for n, name in enumerate(names):
        (staging / name).write_bytes(b"x" * (n + 1))
    image = tmp_path / "cjk.iso"
    _run("xorriso", "-as", "mkisofs", "-quiet", "-R", "-J", "-joliet-long", "-o", image,
         staging)
    ours = {e["name"]: int(e["inode"]) for e in _ours(image)}
    assert set(ours) == set(names)
    assert len(set(ours.values())) == len(names)
    for name, number in ours.items():
        icat = subprocess.run(["icat", image, str(number)], capture_output=True, check=True,
                              timeout=60).stdout
        assert icat == (staging / name).read_bytes(), name
