"""The parity contract with The Sleuth Kit, checked on every file system the tests can build and
on every third-party image in ``../shared/fixtures/third-party``:

- ``ls -r --all`` prints the lines ``fls -r -p`` prints (types, deleted marks, inode-type-id,
  reused inodes, orphans; a name's bytes that are not UTF-8 shown as ``\\xNN``);
- ``timeline`` writes the lines ``fls -r -m /`` writes, NTFS ``($FILE_NAME)`` rows included,
  and ``mactime -b`` prints the same timeline from both;
- the content of every file, deleted ones included, equals ``icat``'s, looked up by inode
  and by path;
- ``stat`` shows what ``istat -z UTC`` shows, per inode (deleted ones included), on every file
  system: allocation, size, every time istat prints (FAT/exFAT written/accessed/created, ext
  and UFS accessed/modified/inode-modified/created/deleted, ISO 9660 created (the recording
  date), HFS+ created/content-modified/attributes-modified/accessed/backed-up, NTFS
  ``$STANDARD_INFORMATION`` and every ``$FILE_NAME``) at the precision istat prints, mode,
  uid/gid, links, link target, attributes (NTFS, HFS+), and the block lists (``Sectors:``,
  ``Direct Blocks:``, ``Indirect Blocks:``, ``Data Fork Blocks:``, ``Resource Fork Blocks:``,
  NTFS runs) position by position against our runs.

Known differences, on purpose, where TSK (fls and istat 4.11) is wrong:

- exFAT modification and creation times carry a 10 ms increment that fls and istat 4.11 drop
  (pytsk3's TSK, and so we, keep it; see _exfat_seconds_as_fls).
- exFAT and ISO 9660 record the zone of their wall-clock times (exFAT specification 7.4.10,
  ECMA-119 9.1.5); TSK ignores it and shows the wall-clock time as UTC, we show UTC. The
  comparison moves TSK's times by the recorded zone (Target.recorded_zone); the builders write
  both in +05:30 and test_recorded_zones_are_applied checks the instants the files were given.
- NTFS times before 1970 or after 2106 are the instants recorded (TSK's 32-bit seconds show
  1965 as 2033, 2200 as 2063; tests/test_ntfs_times_out_of_range.py); the images here hold none.
- Where NTFS records no time (a zero FILETIME, as in the
  ``$MFT`` record mkntfs writes), fls 4.11 prints 3373865674 (the subtraction of the 1601 epoch
  wrapping around 64 bits, read as 2076-11-29); we record no time. The comparison maps that
  value to 0 in fls's output.
- ISO 9660 records no permissions: istat prints ``r-xr-xr-x`` of its own where TSK's metadata
  holds mode 0, so the mode is not compared there.

Lines are compared as multisets: both list in directory order, but TSK versions order some
folders differently (fls 4.11 against the 4.15 inside pytsk3) and order carries no evidence.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import fsimages
import pytest
import pytsk3
from conftest import THIRD_PARTY, require_tool, snapshot

TSK_ZERO_FILETIME = "3373865674"
ONE_SECOND = timedelta(seconds=1)
PARITY_IMAGES = ["ntfs", "fat12", "fat16", "fat32", "exfat", "ext2", "ext3", "ext4", "iso9660",
                 "ufs1", "ufs2"]


@pytest.fixture(scope="session")
def built_images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path | str]:
    """Every parity image, or the reason it cannot be built here."""
    base = tmp_path_factory.mktemp("parity")
    found: dict[str, Path | str] = {}
    for name in PARITY_IMAGES:
        try:
            found[name] = fsimages.BUILDERS[name](base / f"{name}.img")
        except fsimages.Unavailable as exc:
            found[name] = str(exc)
    return found


@dataclass
class Ran:
    returncode: int
    stdout: bytes
    stderr: bytes


def _bitwitness(*args: str | os.PathLike[str]) -> Ran:
    """The command line in-process (through the error boundary), its output as bytes."""
    from click.testing import CliRunner

    from bitwitness.cli.main import main

    with CliRunner().isolation() as streams:
        try:
            main([os.fspath(a) for a in args])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        return Ran(code, streams[0].getvalue(), streams[1].getvalue())


def _tsk(tool: str, *args: str | os.PathLike[str]) -> bytes:
    return subprocess.run([tool, *(os.fspath(a) for a in args)], capture_output=True, check=True,
                          timeout=300).stdout


def _as_shown(line: bytes) -> str:
    """An fls line as ``ls`` shows it: bytes that are not UTF-8 as ``\\xNN``."""
    text = line.decode("utf-8", "surrogateescape")
    return "".join(f"\\x{ord(c) - 0xDC00:02x}" if 0xDC80 <= ord(c) <= 0xDCFF else c
                   for c in text)


def _no_wrapped_zero(line: bytes) -> bytes:
    fields = line.split(b"|")
    if len(fields) == 11:
        fields[7:] = [b"0" if f == TSK_ZERO_FILETIME.encode() else f for f in fields[7:]]
    return b"|".join(fields)


class Target:
    """One file system to compare: the image and what fls/icat/istat need to find it."""

    def __init__(self, image: list[Path], sector: int, fs_type: str, partition: int,
                 zone: timedelta | None = None, *, tsk_image: list[Path] | None = None) -> None:
        self.image = image
        #: what The Sleuth Kit reads: the image itself, or for a container TSK cannot open,
        #: its media as ``qemu-img convert -O raw`` writes it
        self.tsk = tsk_image or image
        self.sector = sector
        self.fs_type = fs_type
        self.ours = ["-p", str(partition)]
        tsk_type = {"fat12": "fat", "fat16": "fat", "fat32": "fat", "ffs1": "ufs1",
                    "ffs1b": "ufs1", "ffs2": "ufs2", "hfs": "hfs"}.get(fs_type, fs_type)
        self.theirs = ["-o", str(sector), "-f", tsk_type]
        self.zone = zone
        self._iso_zones: dict[str, timedelta] | None = None

    def fls(self, *args: str) -> bytes:
        return _tsk("fls", *self.theirs, *args, *self.tsk)

    def recorded_zone(self, path: str) -> timedelta | None:
        """The zone the file system records with ``path``'s times, which TSK (istat and fls
        4.11 alike) does not apply: it shows the wall-clock time as if it were UTC.

        exFAT: the UtcOffset bytes of the file entry (exFAT specification 7.4.10); the built
        image is written in one zone (fsimages.EXFAT_ZONE), given as ``zone``. ISO 9660: the
        offset from Greenwich ending each recording date (ECMA-119 9.1.5), read here by
        pycdlib, an ISO 9660 reader of its own."""
        if self.fs_type == "exfat":
            return self.zone
        if self.fs_type == "iso9660":
            if self._iso_zones is None:
                self._iso_zones = _iso_record_zones(self.tsk[0], self.sector)
            return self._iso_zones.get(path.removesuffix(" (deleted)"))
        return None


def _iso_record_zones(image: Path, sector: int) -> dict[str, timedelta]:
    """Each path's recording-date offset as pycdlib reads it (Joliet names where there are,
    else the primary ones without their ``;1`` version, as fls names them)."""
    import pycdlib

    assert sector == 0, "pycdlib reads an ISO 9660 image from its first byte"
    iso = pycdlib.PyCdlib()
    with image.open("rb") as fh:
        iso.open_fp(fh)
        try:
            kind = "joliet_path" if iso.has_joliet() else "iso_path"
            zones = {}
            for folder, dirs, files in iso.walk(**{kind: "/"}):
                for name in dirs + files:
                    full = f"{folder.rstrip('/')}/{name}"
                    shown = full.partition(";")[0].removesuffix(".")
                    date = iso.get_record(**{kind: full}).date
                    zones[shown] = date.gmtoffset * timedelta(minutes=15)
        finally:
            iso.close()
    return zones


def _targets(image: list[Path], zone: timedelta | None,
             tsk_image: list[Path] | None = None) -> list[Target]:
    result = _bitwitness("partitions", image[0], "--json")
    if result.returncode != 0:
        pytest.skip(f"{image[0].name}: {result.stderr.decode(errors='replace').strip()}")
    layout = json.loads(result.stdout)
    return [Target(image, p["start"], p["filesystem"], p["index"], zone, tsk_image=tsk_image)
            for p in layout["partitions"] if p["filesystem"]]


def check_listing(target: Target) -> list[dict[str, Any]]:
    result = _bitwitness("ls", target.image[0], *target.ours, "-r", "--all")
    assert result.returncode == 0, result.stderr
    ours = Counter(result.stdout.decode("utf-8").splitlines())
    theirs = Counter(_as_shown(line) for line in target.fls("-r", "-p").splitlines())
    assert ours == theirs
    listed = _bitwitness("ls", target.image[0], *target.ours, "-r", "--all", "--json")
    return list(json.loads(listed.stdout)["entries"])


def _mactime(body: bytes, folder: Path, name: str) -> bytes:
    path = folder / name
    path.write_bytes(body)
    return subprocess.run(["mactime", "-b", str(path), "-d", "-y", "-z", "UTC"],
                          capture_output=True, check=True).stdout


def check_timeline(target: Target, folder: Path) -> None:
    result = _bitwitness("timeline", target.image[0], *target.ours)
    assert result.returncode == 0, result.stderr
    theirs = b"\n".join(_in_recorded_zone(target, _no_wrapped_zero(line))
                        for line in target.fls("-z", "UTC", "-r", "-m", "/").splitlines()
                        ) + b"\n"
    ours = result.stdout
    if target.fs_type == "exfat":
        ours = _exfat_seconds_as_fls(ours, theirs)
    if target.fs_type == "iso9660":
        ours = _rock_ridge_as_fls(ours, theirs)
    assert Counter(ours.splitlines()) == Counter(theirs.splitlines())
    assert _mactime(ours, folder, "ours.body") == _mactime(theirs, folder, "theirs.body")


def _in_recorded_zone(target: Target, line: bytes) -> bytes:
    """An fls -m line with its times moved to UTC by the zone the file system records (see
    Target.recorded_zone): fls, as istat, shows the wall-clock time as UTC."""
    fields = line.split(b"|")
    if len(fields) != 11:
        return line
    zone = target.recorded_zone(fields[1].decode("utf-8", "surrogateescape"))
    if zone is not None:
        fields[7:] = [b"%d" % (int(f) - int(zone.total_seconds())) if int(f) else f
                      for f in fields[7:]]
    return b"|".join(fields)


def _rock_ridge_as_fls(ours: bytes, theirs: bytes) -> bytes:
    """An ISO with Rock Ridge is read by our reader (iso9660.py), which shows the mode, owner
    and the modified/accessed/changed times Rock Ridge records and TSK ignores (fls writes
    no permissions and 0 there). Where fls has nothing, take fls's value; the name, inode,
    size, type and the created time (the recording date) must match as they are.
    test_fs_iso_rockridge.py checks those Rock Ridge fields against xorriso."""
    known = {tuple(line.split(b"|")[1:3]): line.split(b"|") for line in theirs.splitlines()}
    out = []
    for line in ours.splitlines():
        fields = line.split(b"|")
        other = known.get(tuple(fields[1:3]))
        if other is not None and len(other) == len(fields) == 11:
            if other[3].endswith(b"---------") and other[3][:3] == fields[3][:3]:
                fields[3] = other[3]
            for at in (4, 5, 7, 8, 9):  # uid, gid, atime, mtime, ctime
                if other[at] == b"0":
                    fields[at] = other[at]
        out.append(b"|".join(fields))
    return b"\n".join(out) + b"\n"


def _exfat_seconds_as_fls(ours: bytes, theirs: bytes) -> bytes:
    """exFAT keeps modification and creation times to 10 ms (a 2-second DOS time plus an
    increment of up to 1.99 s); fls 4.11 drops the increment, pytsk3's TSK (and we) keep it.
    Where ours is exactly that one second later, take fls's value; anything else must match."""
    known = {tuple(line.split(b"|")[1:3]): line.split(b"|") for line in theirs.splitlines()}
    out = []
    for line in ours.splitlines():
        fields = line.split(b"|")
        other = known.get(tuple(fields[1:3]))
        if other is not None and len(other) == len(fields) == 11:
            for at in (8, 10):  # mtime, crtime
                if int(fields[at]) - int(other[at]) == 1:
                    fields[at] = other[at]
        out.append(b"|".join(fields))
    return b"\n".join(out) + b"\n"


def check_content(target: Target, entries: list[dict[str, Any]]) -> int:
    """Every file's bytes, by inode and by path, against icat; returns how many were read."""
    from bitwitness.image import open_image
    from bitwitness.report.browse.filesystem import open_filesystem

    paths = Counter(e["path"] for e in entries)
    stream = open_image(target.image[0])
    checked = 0
    try:
        fs = _open_as_cli(target, stream) or open_filesystem(stream,
                                                             partition=int(target.ours[1]))
        for item in entries:
            if item["kind"] in ("directory", "virtual-directory") and not item["stream"]:
                continue
            if item["kind"] == "unknown" or item["type"][-1] in "vV":
                continue
            run = subprocess.run(["icat", *target.theirs, *map(str, target.tsk),
                                  item["inode"]], capture_output=True, check=False, timeout=300)
            if run.returncode != 0:  # icat finds nothing to read: we must not pass one off
                _assert_refused(fs, item["inode"])
                continue
            by_inode = fs.by_address(item["inode"])
            icat = run.stdout
            assert b"".join(fs.iter_content(by_inode)) == icat, item["path"]
            unique = paths[item["path"]] == 1 and item["path_hex"] is None
            if unique and "/." not in item["path"] and "//" not in item["path"]:
                by_path = fs.lookup(item["path"])
                assert by_path.address == item["inode"], item["path"]
                assert b"".join(fs.iter_content(by_path)) == icat, item["path"]
            checked += 1
    finally:
        stream.close()
    return checked


def _open_as_cli(target: Target, stream: Any) -> Any:
    """An ISO 9660 volume as the command line opens it (through the volume tree: one with
    Rock Ridge is read by iso9660.py, not TSK), so that our reader is what istat and icat
    check; None for the other file systems (opened through TSK as before)."""
    if target.fs_type != "iso9660":
        return None
    from bitwitness.report.browse.volumetree import choose, read_tree

    return choose(read_tree(stream), partition=int(target.ours[1]))


def _assert_refused(fs: Any, address: str) -> None:
    from bitwitness.errors import BitWitnessError

    try:
        entry = fs.by_address(address)
        data = b"".join(fs.iter_content(entry))
    except BitWitnessError:
        return
    assert data == b"", address
    assert fs.content_note(entry) is not None, address


_ISTAT_TIME = re.compile(
    r"^([A-Z][A-Za-z ]*):\t(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)(?:\.(\d+))? \(UTC\)$")
_TIME_SECTIONS = ("Inode Times:", "File Times:", "Directory Entry Times:", "Times:")
_NTFS_KEYS = {"Created": "born", "File Modified": "modified", "MFT Modified": "changed",
              "Accessed": "accessed"}
#: Every time label istat prints outside NTFS, per family, and the field of ours it shows.
_TIME_KEYS = {
    "fat": {"Written": "modified", "Accessed": "accessed", "Created": "born"},
    "unix": {"Accessed": "accessed", "File Modified": "modified", "Inode Modified": "changed",
             "File Created": "born", "Deleted": "deleted_time"},
    "iso9660": {"Created": "born", "File Modified": "modified", "Accessed": "accessed"},
    "hfs": {"Created": "born", "Content Modified": "modified", "Attributes Modified": "changed",
            "Accessed": "accessed", "Backed Up": "backup_time"},
}
_ATTR = re.compile(r"^Type: \S+ \((\d+)-(\d+)\)\s+Name: (.*?)\s+(Non-Resident|Resident)"
                   r"(?:, \w+)*\s+size: (\d+)(?:\s+init_size: (\d+))?")
#: The block lists istat prints outside NTFS, and the attribute (TSK type) each lists.
_BLOCK_LISTS = {
    "Sectors": int(pytsk3.TSK_FS_ATTR_TYPE_DEFAULT),
    "Direct Blocks": int(pytsk3.TSK_FS_ATTR_TYPE_DEFAULT),
    "Indirect Blocks": int(pytsk3.TSK_FS_ATTR_TYPE_UNIX_INDIR),
    "Extent Blocks": int(pytsk3.TSK_FS_ATTR_TYPE_UNIX_EXTENT),
    "Data Fork Blocks": int(pytsk3.TSK_FS_ATTR_TYPE_HFS_DATA),
    "Resource Fork Blocks": int(pytsk3.TSK_FS_ATTR_TYPE_HFS_RSRC),
}
#: The other lines both show: istat's line -> our fields (ISO 9660 and FAT print no mode of
#: their own: see _compare_fields)
_FIELD_LINES = (
    (re.compile(r"^(?:mode|Mode):\s+(\S+)$"), ("mode",)),
    (re.compile(r"^uid / gid: (\d+) / (\d+)$"), ("uid", "gid")),
    (re.compile(r"^(?:Owner-ID|\* UID): (\d+)$"), ("uid",)),
    (re.compile(r"^(?:Group-ID|\* GID): (\d+)$"), ("gid",)),
    (re.compile(r"^(?:num of links|Link count|Links):\s+(\d+)$"), ("links",)),
    (re.compile(r"^(?:[Ss]ize):\s+(\d+)$"), ("size",)),
    (re.compile(r"^[Ss]ymbolic link to:\s+(.*)$"), ("link",)),
)


def _family(fs_type: str) -> str:
    if fs_type.startswith(("fat", "exfat")):
        return "fat"
    if fs_type.startswith(("ext", "ffs")):
        return "unix"
    return fs_type


@dataclass
class IstatTime:
    value: datetime | None  #: None: istat prints zeros (no time)
    precise: bool  #: istat printed a fraction of a second


def _istat_time(match: re.Match[str]) -> IstatTime:
    if match.group(2).startswith("0000") or match.group(2) == "2076-11-29 08:54:34":
        return IstatTime(None, True)  # unset; the second is TSK's wrapped zero FILETIME
    fraction = (match.group(3) or "").ljust(6, "0")[:6]
    moment = datetime.fromisoformat(f"{match.group(2)}.{fraction}+00:00")
    return IstatTime(moment, match.group(3) is not None)


def _our_time(value: str | None, precise: bool) -> datetime | None:
    if value is None:
        return None
    moment = datetime.fromisoformat(value)
    return moment if precise else moment.replace(microsecond=0)


@dataclass
class Istat:
    """What one ``istat -z UTC`` prints, parsed."""

    text: str
    allocated: bool | None = None  #: None: istat does not say (ISO 9660)
    sections: list[tuple[str, dict[str, IstatTime]]] = field(default_factory=list)
    attributes: list[tuple[int, int, str | None, bool, int, int | None, list[int]]] = field(
        default_factory=list)
    blocks: dict[str, list[int]] = field(default_factory=dict)
    fields: dict[str, list[str]] = field(default_factory=dict)


def _parse_istat(text: str) -> Istat:
    """The time blocks, allocation, fields, attributes and block lists istat prints."""
    found = Istat(text)
    times: dict[str, IstatTime] | None = None
    numbers: list[int] | None = None
    for line in text.splitlines():
        if line in ("Allocated", "Not Allocated"):
            found.allocated = line == "Allocated"
        if not line:
            times = None  # a time block ends at a blank line (NTFS puts fields inside it)
        if line.endswith("Attribute Values:") or line in _TIME_SECTIONS:
            times = {}
            found.sections.append((line, times))
            continue
        if (match := _ISTAT_TIME.match(line)) and times is not None:
            assert match.group(1) not in times, line
            times[match.group(1)] = _istat_time(match)
            continue
        if line.endswith(":") and line[:-1] in _BLOCK_LISTS:
            numbers = found.blocks.setdefault(line[:-1], [])
            continue
        if match := _ATTR.match(line):
            name = None if match.group(3) == "N/A" else match.group(3)
            init = int(match.group(6)) if match.group(6) else None
            numbers = []
            found.attributes.append((int(match.group(1)), int(match.group(2)), name,
                                     match.group(4) == "Resident", int(match.group(5)), init,
                                     numbers))
            continue
        if numbers is not None and re.fullmatch(r"[\d ]+", line.strip() or "x"):
            numbers.extend(int(b) for b in line.split())
            continue
        numbers = None
        _parse_field(found, line)
    return found


def _parse_field(found: Istat, line: str) -> None:
    for pattern, names in _FIELD_LINES:
        if match := pattern.match(line):
            for name, value in zip(names, match.groups(), strict=True):
                found.fields.setdefault(name, []).append(value)


def check_stat(target: Target, entries: list[dict[str, Any]]) -> None:
    """Each inode once through the engine against istat, and the first through the command."""
    from bitwitness.cli.output import to_jsonable
    from bitwitness.image import open_image
    from bitwitness.report.browse.filesystem import open_filesystem

    seen: set[int] = set()
    stream = open_image(target.image[0])
    try:
        fs = _open_as_cli(target, stream) or open_filesystem(stream,
                                                             partition=int(target.ours[1]))
        for item in entries:
            inode = int(item["meta_address"])
            if inode in seen or item["type"][-1] in "V-":
                continue
            seen.add(inode)
            info = fs.stat(fs.by_address(str(inode)))
            ours = json.loads(json.dumps(to_jsonable(
                {**dataclasses.asdict(info.entry.times), "kind": info.entry.kind,
                 "size": info.entry.size, "allocated": info.allocated, "mode": info.mode,
                 "uid": info.uid, "gid": info.gid, "links": info.links,
                 "link": info.entry.link, "deleted_time": info.deleted_time,
                 "backup_time": info.backup_time, "attributes": info.attributes,
                 "standard_information": info.standard_information,
                 "file_names": [{"name": n, "times": t} for n, t in info.file_names]})))
            if not seen - {inode}:  # the command shows the same as the engine
                cli = json.loads(_bitwitness("stat", target.image[0], *target.ours, "--inode",
                                             str(inode), "--json").stdout)
                cli["kind"] = ours["kind"]
                assert {k: cli[k] for k in ours if k != "kind"} == {
                    k: v for k, v in ours.items() if k != "kind"}
            _compare_istat(target, ours, inode, item["path"], fs.block_size)
    finally:
        stream.close()


def _compare_istat(target: Target, ours: dict[str, Any], inode: int, path: str,
                   block_size: int) -> None:
    text = _tsk("istat", "-z", "UTC", *target.theirs, *target.tsk, str(inode)).decode(
        "utf-8", "replace")
    theirs = _parse_istat(text)
    if theirs.allocated is not None:
        assert ours["allocated"] == theirs.allocated, path
    if target.fs_type == "ntfs":
        _check_ntfs_stat(ours, theirs, path)
        return
    _compare_times(target, ours, theirs, path)
    _compare_fields(target, ours, theirs, path)
    _compare_attributes(ours, theirs, path)
    for section, numbers in theirs.blocks.items():
        if target.fs_type == "iso9660" and ours["kind"] == "directory":
            # with Joliet, TSK's number of a folder is its Joliet records' (block), while
            # our reader lists the primary tree's records of the same folder (Rock Ridge)
            continue
        _compare_blocks(ours, _BLOCK_LISTS[section], numbers, block_size=block_size,
                        error="Error" in text, where=(path, section))
    if "Error" not in text and target.fs_type != "hfs":
        # every block of ours inside the data is one istat lists (on HFS+ istat lists the
        # forks of user files only, not those of the special files such as $ExtentsFile)
        listed = {_BLOCK_LISTS[s] for s in theirs.blocks}
        for attr in ours["attributes"]:
            if attr["type"] not in listed and attr["type"] in _BLOCK_LISTS.values():
                assert _blocks_within(attr, block_size) == [], (path, attr["type"])


def _compare_times(target: Target, ours: dict[str, Any], theirs: Istat, path: str) -> None:
    """Each time istat prints equals ours: at istat's precision, moved by the zone the file
    system records where TSK does not apply it (see Target.recorded_zone)."""
    keys = _TIME_KEYS[_family(target.fs_type)]
    sections = [times for name, times in theirs.sections if name in _TIME_SECTIONS]
    assert len(sections) == 1, (path, theirs.text)
    zone = target.recorded_zone(path)
    for label, shown in sections[0].items():
        assert label in keys, (path, label)  # a time istat shows that we do not compare
        expected = shown.value
        if expected is None and target.fs_type == "iso9660":
            continue  # TSK ignores Rock Ridge's TF times (checked against xorriso instead)
        if expected is not None and zone is not None:
            expected -= zone
        mine = _our_time(ours[keys[label]], shown.precise)
        if target.fs_type == "exfat" and keys[label] in ("modified", "born") and (
                mine is not None and expected is not None and mine - expected == ONE_SECOND):
            continue  # the 10 ms increment istat 4.11 drops (see _exfat_seconds_as_fls)
        assert mine == expected, (path, label, mine, expected)


def _compare_fields(target: Target, ours: dict[str, Any], theirs: Istat, path: str) -> None:
    for name, values in theirs.fields.items():
        if name == "mode" and target.fs_type == "iso9660":
            # ISO 9660 records no permissions: without an extended attribute record TSK's
            # metadata holds mode 0 and istat prints "r-xr-xr-x" of its own (make_unix_perm)
            continue
        if name in ("links", "uid", "gid") and target.fs_type == "iso9660":
            continue  # Rock Ridge's PX, which TSK ignores (checked against xorriso instead)
        assert len(values) == 1, (path, name, values)
        value = values[0]
        if name == "mode":  # istat adds the type letter before the nine permission letters
            assert ours["mode"] == value[1:], (path, value)
        elif name == "link":
            assert ours["link"] == value, path
        else:
            assert str(ours[name]) == value, (path, name)


def _compare_attributes(ours: dict[str, Any], theirs: Istat, path: str) -> None:
    """HFS+ lists its forks and extended attributes as NTFS lists attributes."""
    listed = {(a["type"], a["id"]): a for a in ours["attributes"]}
    for kind, ident, name, resident, size, _, numbers in theirs.attributes:
        mine = listed[(kind, ident)]
        assert (mine["name"], mine["resident"], mine["size"]) == (name, resident, size), path
        assert numbers == [], path  # outside NTFS istat lists blocks in sections


def _expanded(attr: dict[str, Any]) -> list[int | None]:
    return [None if start is None else start + i for start, length in attr["runs"]
            for i in range(length)]


def _blocks_within(attr: dict[str, Any], block_size: int) -> list[int]:
    """The blocks (not sparse) of ``attr`` that hold its data (its size, rounded up)."""
    count = -(-attr["size"] // block_size)
    if attr["type"] in (int(pytsk3.TSK_FS_ATTR_TYPE_UNIX_INDIR),
                        int(pytsk3.TSK_FS_ATTR_TYPE_UNIX_EXTENT)):
        count = len(_expanded(attr))  # blocks of pointers: all of them
    return [b for b in _expanded(attr)[:count] if b is not None]


def _compare_blocks(ours: dict[str, Any], kind: int, numbers: list[int], *, block_size: int,
                    error: bool, where: Any) -> None:
    """istat's list against our runs of that attribute, position by position.

    istat walks the data block by block: it prints 0 for a sparse block and past the end of
    the data in the last cluster (or fragment run), and stops at the size; we give the runs
    as TSK holds them, which may run past the size. So: a number istat prints is our block at
    that position; a 0 is a sparse block of ours or lies past the data; and every block of
    ours inside the data is printed."""
    attrs = [a for a in ours["attributes"] if a["type"] == kind]
    if not numbers:
        assert error or not attrs or _blocks_within(attrs[0], block_size) == [], where
        return
    assert len(attrs) == 1, where
    attr = attrs[0]
    mine = _expanded(attr)
    inside = -(-attr["size"] // block_size)
    if kind in (int(pytsk3.TSK_FS_ATTR_TYPE_UNIX_INDIR),
                int(pytsk3.TSK_FS_ATTR_TYPE_UNIX_EXTENT)):
        inside = len(mine)
    for at, number in enumerate(numbers):
        if number or (at < len(mine) and mine[at] == 0):  # 0 is a block too ($MBR)
            assert at < len(mine), (where, at, number)
            assert mine[at] == number, (where, at, number)
        else:
            assert at >= inside or at >= len(mine) or mine[at] is None, (where, at)
    if not error:
        assert all(at < len(numbers) and numbers[at] == block
                   for at, block in enumerate(mine[:inside]) if block is not None), where


def _check_ntfs_stat(ours: dict[str, Any], theirs: Istat, path: str) -> None:
    si = [t for name, t in theirs.sections if name.startswith("$STANDARD")]
    names = [t for name, t in theirs.sections if name.startswith("$FILE_NAME")]
    if si:
        for key, field_name in _NTFS_KEYS.items():
            assert _our_time(ours["standard_information"][field_name], True) == (
                si[0][key].value), (path, "$SI", key)
    assert len(ours["file_names"]) == len(names), path
    for mine, their in zip(ours["file_names"], names, strict=True):
        for key, field_name in _NTFS_KEYS.items():
            assert _our_time(mine["times"][field_name], True) == their[key].value, (
                path, "$FN", key)
    listed = {(a["type"], a["id"]): a for a in ours["attributes"]}
    for kind, ident, name, resident, size, _, blocks in theirs.attributes:
        mine = listed[(kind, ident)]
        assert (mine["name"], mine["resident"], mine["size"]) == (name, resident, size), path
        if blocks:
            expanded = _expanded(mine)
            # istat prints 0 for sparse blocks and past the initialised end
            assert [b for b, t in zip(expanded, blocks, strict=False) if t] == [
                t for t in blocks[: len(expanded)] if t], (path, kind, ident)
            assert not any(blocks[len(expanded):]), (path, kind, ident, len(expanded))


def run_parity(image: list[Path], folder: Path, zone: timedelta | None = None,
               tsk_image: list[Path] | None = None) -> None:
    """Every parity check on every file system of ``image``; ``zone``: the one zone an exFAT
    image's times were written in (see Target.recorded_zone); ``tsk_image``: what TSK reads
    instead of ``image`` (a container's media, written by another tool)."""
    require_tool("fls", "icat", "istat", "mactime")
    before = snapshot(image)
    targets = _targets(image, zone, tsk_image)
    assert targets, f"{image[0].name}: no file system found"
    for target in targets:
        probe = subprocess.run(["fls", *target.theirs, *map(str, target.tsk)],
                               capture_output=True, check=False, timeout=300)
        if probe.returncode != 0:
            pytest.skip(f"The Sleuth Kit here cannot read {image[0].name}: "
                        f"{probe.stderr.decode(errors='replace').strip()}")
        entries = check_listing(target)
        check_timeline(target, folder)
        assert check_content(target, entries) > 0
        check_stat(target, entries)
    assert snapshot(image) == before


@pytest.mark.parametrize("name", PARITY_IMAGES)
def test_parity_on_built_image(built_images: dict[str, Path | str], name: str,
                               tmp_path: Path) -> None:
    image = built_images[name]
    if isinstance(image, str):
        pytest.skip(f"{name} cannot be built here: {image}")
    run_parity([image], tmp_path, fsimages.EXFAT_ZONE if name == "exfat" else None)


def _third_party_images() -> list[str]:
    if not (THIRD_PARTY / "manifest.json").is_file():
        return []
    manifest = json.loads((THIRD_PARTY / "manifest.json").read_text())
    return sorted(manifest)


@pytest.mark.parametrize("first", _third_party_images() or ["(absent)"])
def test_parity_on_third_party_image(third_party: Path, first: str, tmp_path: Path) -> None:
    manifest = json.loads((third_party / "manifest.json").read_text())
    files = [third_party / f for f in manifest[first]["files"]]
    tsk_files = None
    shown = json.loads(_bitwitness("info", files[0], "--json").stdout)
    if shown["format"] in _QEMU_CONTAINERS:
        # TSK here reads no VMDK or VHD: it reads the media qemu-img writes from the container
        require_tool("qemu-img")
        media = tmp_path / "media.raw"
        subprocess.run(["qemu-img", "convert", "-O", "raw", str(files[0]), str(media)],
                       check=True, capture_output=True, timeout=300)
        tsk_files = [media]
    probe = subprocess.run(["img_stat", *map(str, tsk_files or files)], capture_output=True,
                           check=False)
    if probe.returncode != 0:
        pytest.skip(f"The Sleuth Kit here cannot open {first}")
    result = _bitwitness("partitions", files[0], "--json")
    if result.returncode == 0 and not any(
            p["filesystem"] for p in json.loads(result.stdout)["partitions"]):
        pytest.skip(f"{first} holds no file system")
    run_parity(files, tmp_path, tsk_image=tsk_files)


#: Containers whose media The Sleuth Kit is given as qemu-img writes it.
_QEMU_CONTAINERS = ("vmdk", "vhd", "vhdx", "qcow", "qcow2", "vdi", "parallels")


def _stat_of(image: Path, path: str) -> Any:
    from bitwitness.image import open_image
    from bitwitness.report.browse.filesystem import open_filesystem

    stream = open_image(image)
    try:
        fs = open_filesystem(stream)
        return fs.stat(fs.lookup(path))
    finally:
        stream.close()


def _epoch(moment: datetime | None) -> float | None:
    return None if moment is None else moment.timestamp()


def test_recorded_zones_are_applied(built_images: dict[str, Path | str]) -> None:
    """exFAT and ISO 9660 times are the instants the files were given (the builders write
    them in +05:30), where istat shows the wall-clock time of that zone as UTC."""
    require_tool("istat")
    exfat, iso = built_images["exfat"], built_images["iso9660"]
    if isinstance(exfat, str) or isinstance(iso, str):
        pytest.skip(f"cannot be built here: {exfat if isinstance(exfat, str) else iso}")
    info = _stat_of(exfat, "/dir/a.txt")
    accessed, modified = fsimages.EXFAT_TIMES
    assert (_epoch(info.entry.times.accessed), _epoch(info.entry.times.modified)) == (
        accessed, modified)
    shown = _parse_istat(_tsk("istat", "-z", "UTC", exfat, info.entry.address).decode())
    [(_, times)] = shown.sections
    assert times["Accessed"].value == info.entry.times.accessed + fsimages.EXFAT_ZONE
    for path in ("/big.bin", "/Documents/readme.txt", "/Documents/Deep Folder"):
        info = _stat_of(iso, path)
        assert _epoch(info.entry.times.born) == fsimages.ISO_TIME, path
        shown = _parse_istat(_tsk("istat", "-z", "UTC", iso, info.entry.address).decode())
        [(_, times)] = shown.sections
        assert times["Created"].value == info.entry.times.born + fsimages.EXFAT_ZONE, path


@pytest.fixture
def host_zone(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The process in Newfoundland (UTC-03:30) until the test ends."""
    monkeypatch.setenv("TZ", "America/St_Johns")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_times_do_not_depend_on_the_host_zone(built_images: dict[str, Path | str],
                                              host_zone: Any) -> None:
    """TSK converts FAT's zone-less times with the process's zone; ours are those of
    ``istat -z UTC`` whatever the examiner's TZ (sleuthkit issue 2317)."""
    require_tool("istat")
    image = built_images["fat12"]
    if isinstance(image, str):
        pytest.skip(f"fat12 cannot be built here: {image}")
    assert time.localtime(0).tm_gmtoff == -(3 * 3600 + 1800)
    info = _stat_of(image, "/docs/report.txt")
    shown = _parse_istat(subprocess.run(
        ["istat", "-z", "UTC", image, info.entry.address], capture_output=True, check=True,
        env={**os.environ, "TZ": "UTC"}).stdout.decode())
    [(_, times)] = shown.sections
    assert info.entry.times.modified is not None
    assert (info.entry.times.modified, info.entry.times.born) == (
        times["Written"].value, times["Created"].value)


def test_hfs_catalog_lookup_finds_each_files_record(third_party: Path) -> None:
    """The backup date comes from the catalog record our lookup finds by CNID; the record's
    creation date (at offset 12, beside it) is the one istat prints for every file, so the
    lookup lands on the record istat reads (the image's backup dates are all zero)."""
    from bitwitness.image import open_image
    from bitwitness.report.browse.filesystem import open_filesystem
    from bitwitness.report.browse.moretimes import CREATED, HfsCatalog

    require_tool("istat", "fls")
    image = third_party / "dfvfs_hfsplus.raw"
    if not image.is_file():
        pytest.skip("no HFS+ image among the third-party fixtures")
    stream = open_image(image)
    try:
        fs = open_filesystem(stream)
        catalog_file = fs._file_at(4)  # $CatalogFile, read through TSK
        catalog = HfsCatalog(lambda offset, size: bytes(catalog_file.read_random(offset, size)))
        inodes = {int(e.inode) for e in fs.walk("/", recursive=True)} | {fs.root_inum}
        found = 0
        for inode in sorted(inodes):
            shown = _parse_istat(_tsk("istat", "-z", "UTC", image, str(inode)).decode())
            [(_, times)] = shown.sections
            assert catalog.date(inode, CREATED) == times["Created"].value, inode
            found += times["Created"].value is not None
        assert found >= 10  # the folders and files, not only the special files
    finally:
        stream.close()


@pytest.mark.parametrize("name", PARITY_IMAGES)
def test_fast_walk_equals_the_general_one(built_images: dict[str, Path | str], name: str,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The record walk (``_walk_records``: each folder's ``records()``, NTFS attributes
    included, one entry per name through ``_record_entry`` off NTFS) and the lazily made times
    give what the general way (``_walk_files``: ``_entries_of``/``_entry`` of each pytsk3
    ``File``, datetimes at once) gives, entry for entry, ``$FILE_NAME`` rows, times and
    bodyfile seconds included; the ext inode-table blocks checked at once (``ExtTimes``)
    change no time."""
    from bitwitness.image import open_image
    from bitwitness.report.browse import filesystem, moretimes
    from bitwitness.report.browse.entries import Selection

    image = built_images[name]
    if isinstance(image, str):
        pytest.skip(f"{name} cannot be built here: {image}")

    def walked() -> list[tuple[Any, ...]]:
        stream = open_image(image)
        try:
            fs = filesystem.open_filesystem(stream)
            found = []
            for entry in fs.walk("/", recursive=True, selection=Selection.ALL, file_names=True):
                seconds = entry.times.epoch_seconds()  # before the datetimes are made
                times = entry.times
                found.append((entry, seconds, (times.modified, times.accessed, times.changed,
                                               times.born), repr(times)))
            return found
        finally:
            stream.close()

    fast = walked()
    with monkeypatch.context() as m:  # a pytsk3 without records(): each File read in Python
        from bitwitness.report.browse.tsk import record_of

        def slow_records(found: Any, *, attributes: bool = False) -> list[Any]:
            return [record_of(f, attributes=attributes) for f in found]

        m.setattr(filesystem, "records_of", slow_records)
        m.setattr(filesystem, "records_and_named", lambda found, **_: None)
        assert walked() == fast
    with monkeypatch.context() as m:
        def general(self: Any, record: Any, prefix: str, folder: Any, index: int) -> Any:
            file = folder.file(index)
            return self._entry(file, prefix, None, meta_file=file)

        m.setattr(filesystem.FileSystem, "_record_entry", general)
        m.setattr(filesystem.FileSystem, "_by_records", False)
        m.setattr(moretimes.ExtTimes, "reads_right", lambda self, inode: False)
        m.setattr(filesystem.Times, "of_tsk", staticmethod(_eager_times))
        plain = walked()
    assert fast == plain
    for entry, seconds, _, _ in fast:
        t = entry.times
        assert seconds == tuple((v - EPOCH) // ONE_SECOND if v is not None else 0
                                for v in (t.modified, t.accessed, t.changed, t.born))


@pytest.mark.parametrize("name", PARITY_IMAGES)
def test_folder_records_equal_the_files(built_images: dict[str, Path | str], name: str) -> None:
    """``Directory.records()``, the C listing our pytsk3 build adds, gives for every folder
    what iterating its ``File`` objects reads field by field (``tsk.record_of``), in the same
    order: every name, deleted ones included; ``records(True)`` adds each inode's attributes
    as iterating them gives them, a ``$FILE_NAME``'s bytes as ``read_random`` reads them."""
    from bitwitness.image import open_image
    from bitwitness.report.browse import filesystem
    from bitwitness.report.browse.entries import Selection
    from bitwitness.report.browse.tsk import RECORD_ATTRIBUTES, RECORD_META, record_of

    image = built_images[name]
    if isinstance(image, str):
        pytest.skip(f"{name} cannot be built here: {image}")
    assert hasattr(pytsk3.Directory, "records"), "pytsk3 lacks scripts/build-pytsk3.sh's build"
    stream = open_image(image)
    try:
        fs = filesystem.open_filesystem(stream)
        folders = [fs.root_inum, *{e.inode for e in fs.walk("/", recursive=True,
                                                              selection=Selection.ALL)
                                   if e.is_dir}]
        names = metas = attributes = file_names = 0
        for inum in folders:
            try:
                directory = fs._fs.open_dir(inode=inum)
            except OSError:
                continue  # a folder TSK cannot open: both ways fail alike
            records = directory.records()
            assert records == [record_of(f) for f in fs._fs.open_dir(inode=inum)], inum
            with_attributes = directory.records(True)
            assert with_attributes == [record_of(f, attributes=True)
                                       for f in fs._fs.open_dir(inode=inum)], inum
            assert [r[:RECORD_ATTRIBUTES] for r in with_attributes] == [
                r[:RECORD_ATTRIBUTES] for r in records]
            assert {r[RECORD_ATTRIBUTES] for r in records} <= {None}
            names += len(records)
            metas += sum(r[RECORD_META] is not None for r in records)
            attributes += sum(len(r[RECORD_ATTRIBUTES] or ()) for r in with_attributes)
            file_names += sum(a[0] == 48 and a[5] is not None
                              for r in with_attributes for a in r[RECORD_ATTRIBUTES] or ())
        assert names > 10
        assert metas > 10
        assert attributes > metas // 2  # most inodes have one at least (data or index)
        if name == "ntfs":
            assert file_names >= metas // 2
    finally:
        stream.close()


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _eager_times(raw: tuple[int, ...]) -> Any:
    """``Times.of_tsk`` as ``Times.from_meta`` was: the four datetimes made at once."""
    from bitwitness.report.browse.entries import Times, _tsk_time

    return Times(*(_tsk_time(raw[n], raw[n + 1]) for n in range(0, 8, 2)))


def test_file_name_times_from_the_listing(built_images: dict[str, Path | str]) -> None:
    """``file_name_times`` of an NTFS entry just listed (what ``export`` asks of every file)
    comes from the ``$FILE_NAME`` bytes the listing's records held, and equals what reading
    the attributes again gives."""
    from bitwitness.image import open_image
    from bitwitness.report.browse.entries import Selection
    from bitwitness.report.browse.filesystem import open_filesystem

    image = built_images["ntfs"]
    if isinstance(image, str):
        pytest.skip(f"ntfs cannot be built here: {image}")
    stream = open_image(image)
    try:
        fs = open_filesystem(stream)
        found = []
        for entry in fs.walk("/", recursive=True, selection=Selection.ALL):
            listed = fs._listed_of(entry.inode)
            if listed is not None and listed.file_names is not None:
                found.append((entry, fs.file_name_times(entry)))
        assert len(found) > 10
        assert sum(times is not None for _, times in found) > 10
        fs._listed.clear()
        fs._listed_before.clear()
        for entry, times in found:
            assert fs.file_name_times(entry) == times, entry.path
    finally:
        stream.close()


def test_listed_attributes_kept_in_two_generations(built_images: dict[str, Path | str],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """What a listing keeps of each NTFS inode's attributes (asked by ``export`` right after
    the entry is listed) is there for every listed inode right after its entry, however few
    are kept, and never more than twice the number kept is held."""
    from bitwitness.image import open_image
    from bitwitness.report.browse import filesystem
    from bitwitness.report.browse.entries import Selection
    from bitwitness.report.browse.filesystem import open_filesystem

    image = built_images["ntfs"]
    if isinstance(image, str):
        pytest.skip(f"ntfs cannot be built here: {image}")

    def kept_after_each(fs: Any) -> list[tuple[int, bool]]:
        return [(entry.inode, fs._listed_of(entry.inode) is not None)
                for entry in fs.walk("/", recursive=True, selection=Selection.ALL)]

    stream = open_image(image)
    try:
        plenty = kept_after_each(open_filesystem(stream))
        monkeypatch.setattr(filesystem, "_ENCRYPTION_REMEMBERED", 4)
        fs = open_filesystem(stream)
        few = []
        for entry in fs.walk("/", recursive=True, selection=Selection.ALL):
            few.append((entry.inode, fs._listed_of(entry.inode) is not None))
            assert len(fs._listed) + len(fs._listed_before) <= 8
        assert few == plenty
        assert sum(kept for _, kept in few) > 10
        assert len({inode for inode, kept in few if kept}) > 8  # more than fit at once
    finally:
        stream.close()
