"""The list of named unallocated inodes a whole walk hands TSK before it opens $OrphanFiles
(report/browse/namedlist.py): TSK then finds the same orphans it finds when it makes the list
itself by walking every folder again, the list it takes is the one its orphan search uses (a
list missing a name changes what $OrphanFiles holds), and a walk that is not TSK's hands
nothing over."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fsimages
import pytest
import pytsk3
from conftest import require_tool

from bitwitness.image import open_image
from bitwitness.report.browse.entries import Selection
from bitwitness.report.browse.filesystem import FileSystem, open_filesystem
from bitwitness.report.browse.namedlist import NamedList, tsk_enters
from bitwitness.report.browse.tsk import records_of

pytestmark = pytest.mark.skipif(not hasattr(pytsk3.FS_Info, "name_unallocated"),
                                reason="pytsk3 without scripts/build-pytsk3.sh's eighth change")


def _built(build: Callable[[Path], Path], tmp: Path) -> Path:
    try:
        return build(tmp)
    except fsimages.Unavailable as exc:
        pytest.skip(f"cannot be built here: {exc}")


@pytest.fixture(scope="module", params=["ntfs", "ext4"])
def image(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp(request.param)
    if request.param == "ntfs":
        return _built(lambda p: fsimages.ntfs(p / "ntfs.img"), folder)
    require_tool("mkfs.ext4", "debugfs")
    return _ext4_with_orphan(folder)


def _debugfs(image: Path, command: str) -> str:
    return subprocess.run(["debugfs", "-w", "-R", command, str(image)], check=True,
                          capture_output=True, text=True).stdout


def _ext4_with_orphan(folder: Path) -> Path:
    """ext4 with a removed file whose name stays (a named unallocated inode) and one whose name
    a newer name overwrote (an orphan): the last name of the root folder, removed, leaves its
    slot to the next name made there."""
    staging, image, content = folder / "tree", folder / "ext4.img", folder / "lost"
    (staging / "a").mkdir(parents=True)
    (staging / "b").mkdir()
    (staging / "a/one.txt").write_bytes(b"one\n")
    (staging / "a/two.txt").write_bytes(b"two, to be removed\n")
    (staging / "b/three.txt").write_bytes(b"three\n")
    content.write_bytes(b"a file nothing names any more\n")
    subprocess.run(["truncate", "-s", "8M", str(image)], check=True)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-T", "small", "-d", str(staging), str(image)],
                   check=True, capture_output=True)
    _debugfs(image, f"write {content} lost.txt")
    found = re.search(r"Inode: (\d+)", _debugfs(image, "stat lost.txt"))
    assert found is not None
    inode = found.group(1)
    for command in ("unlink lost.txt", f"kill_file <{inode}>", f"seti <{inode}>",
                    f"write {content} newer.txt", f"freei <{inode}>", "rm a/two.txt"):
        _debugfs(image, command)
    return image


def _opened(image: Path) -> FileSystem:
    return open_filesystem(open_image(image))


def _orphans(fs: FileSystem) -> list[tuple[Any, ...]]:
    """$OrphanFiles of ``fs`` as TSK lists it: (name, inode) of each entry, sorted."""
    folder = fs._fs.open_dir(inode=fs.last_inum)
    return sorted((r[0], r[1]) for r in records_of(folder))


def _walked(fs: FileSystem, monkeypatch: pytest.MonkeyPatch, path: str = "/", *,
            recursive: bool = True) -> tuple[list[Any], list[bool]]:
    """The entries of a walk of ``fs`` and what each hand-over returned."""
    handed: list[bool] = []
    hand_over = NamedList.hand_over

    def spied(self: NamedList, raw: Any) -> bool:
        handed.append(hand_over(self, raw))
        return handed[-1]

    monkeypatch.setattr(NamedList, "hand_over", spied)
    return list(fs.walk(path, recursive=recursive, selection=Selection.ALL)), handed


def test_a_whole_walk_hands_tsk_the_list_and_the_orphans_stay_tsks(
        image: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    entries, handed = _walked(_opened(image), monkeypatch)
    assert handed == [True]
    listed = sorted(e.path for e in entries if e.path.startswith("/$OrphanFiles/"))
    alone = _opened(image)  # nothing handed over: TSK walks every folder for its own list
    theirs = _orphans(alone)
    assert listed == sorted(f"/$OrphanFiles/{name.decode()}" for name, _ in theirs)
    assert listed  # the test images hold orphans (NTFS: its unused system records)
    assert any(e.deleted for e in entries  # and removed files still named
               if not e.path.startswith("/$OrphanFiles/"))


def test_the_list_decides_what_is_an_orphan(image: Path) -> None:
    """A list without the deleted names' inodes makes those files orphans too: the walk's list
    must hold every one of them (the first test shows it does: the orphans stay TSK's)."""
    alone = _orphans(_opened(image))
    fs = _opened(image)
    assert fs._fs.name_unallocated([]) is True  # "nothing is named", as an empty list
    wrong = _orphans(fs)
    assert set(alone) < set(wrong)


def test_tsk_keeps_a_list_it_has(image: Path) -> None:
    fs = _opened(image)
    first = _orphans(fs)  # TSK makes its own list here
    assert fs._fs.name_unallocated([]) is False
    assert _orphans(fs) == first


def test_a_walk_not_from_the_root_or_not_recursive_hands_nothing(
        image: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    top, handed = _walked(_opened(image), monkeypatch, "/", recursive=False)
    assert top
    assert handed == []
    [folder, *_] = [e.path for e in top if e.is_dir and not e.deleted
                    and e.path != "/$OrphanFiles" and not e.name.startswith("$")
                    and e.name != "lost+found"]
    below, handed = _walked(_opened(image), monkeypatch, folder)
    assert below
    assert handed == []


def _record(name: bytes, name_type: int, name_flags: int, meta_type: int | None,
            meta_flags: int = 0) -> tuple[Any, ...]:
    meta = None if meta_type is None else 99
    return (name, 99, name_flags, name_type, meta, meta_type, meta_flags, *([None] * 14))


_DIR, _REG = int(pytsk3.TSK_FS_NAME_TYPE_DIR), int(pytsk3.TSK_FS_NAME_TYPE_REG)
_UNDEF = int(pytsk3.TSK_FS_NAME_TYPE_UNDEF)
_MDIR, _MREG = int(pytsk3.TSK_FS_META_TYPE_DIR), int(pytsk3.TSK_FS_META_TYPE_REG)
_NA, _NU = int(pytsk3.TSK_FS_NAME_FLAG_ALLOC), int(pytsk3.TSK_FS_NAME_FLAG_UNALLOC)
_MA, _MU = int(pytsk3.TSK_FS_META_FLAG_ALLOC), int(pytsk3.TSK_FS_META_FLAG_UNALLOC)


@pytest.mark.parametrize(("record", "entered"), [
    (_record(b"d", _DIR, _NA, _MDIR, _MA), True),
    (_record(b"d", _UNDEF, _NA, _MDIR, _MA), True),  # fs_dir.c enters an undefined name type
    (_record(b"d", _DIR, _NU, _MDIR, _MU), True),  # deleted name and deleted folder
    (_record(b"d", _DIR, _NU, _MDIR, _MA), False),  # deleted name of a reused inode
    (_record(b"d", _REG, _NA, _MDIR, _MA), False),
    (_record(b"d", _DIR, _NA, _MREG, _MA), False),
    (_record(b"d", _DIR, _NA, None), False),
    (_record(b".", _DIR, _NA, _MDIR, _MA), False),
    (_record(b"..", _DIR, _NA, _MDIR, _MA), False),
])
def test_tsk_enters_as_fs_dir_c_decides(record: tuple[Any, ...], entered: bool) -> None:
    assert tsk_enters(record) is entered


def test_names_only_tsk_enters_count_and_a_folder_it_enters_is_needed() -> None:
    named = NamedList()
    folder = _record(b"d", _DIR, _NA, _MDIR, _MA)
    assert named.check(folder, enters=True, path="/d", depth=1) is True
    # a folder the walk enters and TSK does not: walked, its names not counted, list whole
    assert named.check(_record(b".", _DIR, _NA, _MDIR, _MA), enters=True, path="/.",
                       depth=1) is False
    assert named.whole
    assert named.check(folder, enters=False, path="/d", depth=1) is False  # TSK's, not ours
    assert not named.whole
    assert named.hand_over(object()) is False
    deep = NamedList()
    assert deep.check(folder, enters=True, path="/d" * 500, depth=3) is False
    assert not deep.whole  # near TSK's 4096-byte path, where its walk stops a folder early
