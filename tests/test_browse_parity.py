"""The parity contract with The Sleuth Kit, checked on every file system the tests can build and
on every third-party image in ``../shared/fixtures/third-party``:

- ``ls -r --all`` prints the lines ``fls -r -p`` prints (types, deleted marks, inode-type-id,
  reused inodes, orphans; a name's bytes that are not UTF-8 shown as ``\\xNN``);
- ``timeline`` writes the lines ``fls -r -m /`` writes, NTFS ``($FILE_NAME)`` rows included,
  and ``mactime -b`` prints the same timeline from both;
- the content of every file, deleted ones included, equals ``icat``'s, looked up by inode
  and by path;
- ``stat`` shows what ``istat`` shows: allocation, sizes, times (``$STANDARD_INFORMATION`` and
  every ``$FILE_NAME`` on NTFS), attributes and their runs.

Two known differences, on purpose. exFAT modification and creation times carry a 10 ms
increment that fls 4.11 drops (pytsk3's TSK, and so we, keep it; see _exfat_seconds_as_fls).
And where NTFS records no time (a zero FILETIME, as in the
``$MFT`` record mkntfs writes), fls 4.11 prints 3373865674 (the subtraction of the 1601 epoch
wrapping around 64 bits, read as 2076-11-29); we record no time. The comparison maps that value
to 0 in fls's output.

Lines are compared as multisets: both list in directory order, but TSK versions order some
folders differently (fls 4.11 against the 4.15 inside pytsk3) and order carries no evidence.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import fsimages
import pytest
from conftest import THIRD_PARTY, require_tool, snapshot

TSK_ZERO_FILETIME = "3373865674"
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

    def __init__(self, image: list[Path], sector: int, fs_type: str, partition: int) -> None:
        self.image = image
        self.sector = sector
        self.fs_type = fs_type
        self.ours = ["-p", str(partition)]
        tsk_type = {"fat12": "fat", "fat16": "fat", "fat32": "fat", "ffs1": "ufs1",
                    "ffs1b": "ufs1", "ffs2": "ufs2", "hfs": "hfs"}.get(fs_type, fs_type)
        self.theirs = ["-o", str(sector), "-f", tsk_type]

    def fls(self, *args: str) -> bytes:
        return _tsk("fls", *self.theirs, *args, *self.image)


def _targets(image: list[Path]) -> list[Target]:
    result = _bitwitness("partitions", image[0], "--json")
    if result.returncode != 0:
        pytest.skip(f"{image[0].name}: {result.stderr.decode(errors='replace').strip()}")
    layout = json.loads(result.stdout)
    return [Target(image, p["start"], p["filesystem"], p["index"])
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
    theirs = b"\n".join(_no_wrapped_zero(line)
                        for line in target.fls("-r", "-m", "/").splitlines()) + b"\n"
    ours = result.stdout
    if target.fs_type == "exfat":
        ours = _exfat_seconds_as_fls(ours, theirs)
    assert Counter(ours.splitlines()) == Counter(theirs.splitlines())
    assert _mactime(ours, folder, "ours.body") == _mactime(theirs, folder, "theirs.body")


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
        fs = open_filesystem(stream, partition=int(target.ours[1]))
        for item in entries:
            if item["kind"] in ("directory", "virtual-directory") and not item["stream"]:
                continue
            if item["kind"] == "unknown" or item["type"][-1] in "vV":
                continue
            run = subprocess.run(["icat", *target.theirs, *map(str, target.image),
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
    r"^(Created|File Modified|MFT Modified|Accessed|Inode Modified|File Created|Written):"
    r"\t(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)(?:\.(\d+))? \(UTC\)$")
_NTFS_KEYS = {"Created": "born", "File Modified": "modified", "MFT Modified": "changed",
              "Accessed": "accessed"}
_EXT_KEYS = {"Accessed": "accessed", "File Modified": "modified", "Inode Modified": "changed",
             "File Created": "born"}
_ATTR = re.compile(r"^Type: \S+ \((\d+)-(\d+)\)\s+Name: (.*?)\s+(Non-Resident|Resident)"
                   r"(?:, \w+)*\s+size: (\d+)")


def _istat_time(match: re.Match[str]) -> str | None:
    if match.group(2).startswith("0000") or match.group(2) == "2076-11-29 08:54:34":
        return None  # unset; the second is TSK's wrapped zero FILETIME (see the docstring)
    fraction = (match.group(3) or "").ljust(6, "0")[:6]
    return f"{match.group(2).replace(' ', 'T')}.{fraction}"


def _our_time(value: str | None, precise: bool) -> str | None:
    if value is None:
        return None
    moment = datetime.fromisoformat(value)
    if not precise:
        moment = moment.replace(microsecond=0)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")


def _istat_sections(text: str) -> dict[str, Any]:
    """The time blocks, allocation and attributes istat prints."""
    sections: list[tuple[str, dict[str, str | None]]] = []
    attrs: list[tuple[int, int, str | None, bool, int, list[int]]] = []
    current: dict[str, str | None] | None = None
    for line in text.splitlines():
        if line.endswith("Attribute Values:") or line in ("Inode Times:", "File Times:",
                                                          "Directory Entry Times:"):
            current = {}
            sections.append((line, current))
        elif (match := _ISTAT_TIME.match(line)) and current is not None:
            current[match.group(1)] = _istat_time(match)
        elif match := _ATTR.match(line):
            name = None if match.group(3) == "N/A" else match.group(3)
            attrs.append((int(match.group(1)), int(match.group(2)), name,
                          match.group(4) == "Resident", int(match.group(5)), []))
        elif attrs and re.fullmatch(r"[\d ]+", line.strip() or "x"):
            attrs[-1][5].extend(int(b) for b in line.split())
    return {"allocated": "\nNot Allocated" not in f"\n{text}", "sections": sections,
            "attributes": attrs}


def check_stat(target: Target, entries: list[dict[str, Any]]) -> None:
    """Each inode once through the engine, and the first file through the command too."""
    from bitwitness.cli.output import to_jsonable
    from bitwitness.image import open_image
    from bitwitness.report.browse.filesystem import open_filesystem

    seen: set[int] = set()
    stream = open_image(target.image[0])
    try:
        fs = open_filesystem(stream, partition=int(target.ours[1]))
        for item in entries:
            inode = int(item["meta_address"])
            if inode in seen or item["type"][-1] in "vV-":
                continue
            seen.add(inode)
            info = fs.stat(fs.by_address(str(inode)))
            ours = json.loads(json.dumps(to_jsonable(
                {**info.entry.times.__dict__, "kind": info.entry.kind,
                 "size": info.entry.size, "allocated": info.allocated,
                 "attributes": info.attributes,
                 "standard_information": info.standard_information,
                 "file_names": [{"name": n, "times": t} for n, t in info.file_names]})))
            if not seen - {inode}:  # the command shows the same as the engine
                cli = json.loads(_bitwitness("stat", target.image[0], *target.ours, "--inode",
                                             str(inode), "--json").stdout)
                assert {k: cli[k] for k in ours} == ours
            _compare_istat(target, ours, inode, item["path"])
    finally:
        stream.close()


def _compare_istat(target: Target, ours: dict[str, Any], inode: int, path: str) -> None:
    text = _tsk("istat", "-z", "UTC", *target.theirs, *target.image, str(inode)).decode(
        "utf-8", "replace")
    theirs = _istat_sections(text)
    assert ours["allocated"] == theirs["allocated"], path
    if target.fs_type == "ntfs":
        _check_ntfs_stat(ours, theirs, path)
    elif target.fs_type.startswith("ext"):
        [(_, times)] = [s for s in theirs["sections"] if s[0] == "Inode Times:"]
        for key, field in _EXT_KEYS.items():
            assert _our_time(ours[field], True) == times.get(key), (path, key)
    else:
        size = re.search(r"^[Ss]ize: (\d+)$", text, re.MULTILINE)
        if size is not None and ours["kind"] == "file":
            assert ours["size"] == int(size.group(1)), path


def _check_ntfs_stat(ours: dict[str, Any], theirs: dict[str, Any], path: str) -> None:
    si = [t for name, t in theirs["sections"] if name.startswith("$STANDARD")]
    names = [t for name, t in theirs["sections"] if name.startswith("$FILE_NAME")]
    if si:
        for key, field in _NTFS_KEYS.items():
            assert _our_time(ours["standard_information"][field], True) == si[0][key], (
                path, "$SI", key)
    assert len(ours["file_names"]) == len(names), path
    for mine, their in zip(ours["file_names"], names, strict=True):
        for key, field in _NTFS_KEYS.items():
            assert _our_time(mine["times"][field], True) == their[key], (path, "$FN", key)
    listed = {(a["type"], a["id"]): a for a in ours["attributes"]}
    for kind, ident, name, resident, size, blocks in theirs["attributes"]:
        mine = listed[(kind, ident)]
        assert (mine["name"], mine["resident"], mine["size"]) == (name, resident, size), path
        if blocks:
            expanded = [0 if start is None else start + i for start, length in mine["runs"]
                        for i in range(length)]
            # istat prints 0 for sparse blocks and past the initialised end
            assert [b for b, t in zip(expanded, blocks, strict=False) if t] == [
                t for t in blocks[: len(expanded)] if t], (path, kind, ident)
            assert not any(blocks[len(expanded):]), (path, kind, ident, len(expanded))


def run_parity(image: list[Path], folder: Path) -> None:
    require_tool("fls", "icat", "istat", "mactime")
    before = snapshot(image)
    targets = _targets(image)
    assert targets, f"{image[0].name}: no file system found"
    for target in targets:
        probe = subprocess.run(["fls", *target.theirs, *map(str, image)], capture_output=True,
                               check=False, timeout=300)
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
    run_parity([image], tmp_path)


def _third_party_images() -> list[str]:
    if not (THIRD_PARTY / "manifest.json").is_file():
        return []
    manifest = json.loads((THIRD_PARTY / "manifest.json").read_text())
    return sorted(manifest)


@pytest.mark.parametrize("first", _third_party_images() or ["(absent)"])
def test_parity_on_third_party_image(third_party: Path, first: str, tmp_path: Path) -> None:
    manifest = json.loads((third_party / "manifest.json").read_text())
    files = [third_party / f for f in manifest[first]["files"]]
    probe = subprocess.run(["img_stat", *map(str, files)], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip(f"The Sleuth Kit here cannot open {first}")
    result = _bitwitness("partitions", files[0], "--json")
    if result.returncode == 0 and not any(
            p["filesystem"] for p in json.loads(result.stdout)["partitions"]):
        pytest.skip(f"{first} holds no file system")
    run_parity(files, tmp_path)
