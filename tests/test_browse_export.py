"""``export``: files and folders recreated under DIR with a manifest whose hashes agree with
md5sum/sha256sum of what was written and with ``icat`` of the image; hostile names stay inside
DIR; a custody event lands in the case."""

from __future__ import annotations

import csv
import hashlib
import json
import subprocess
from pathlib import Path

import pytest
from conftest import require_root, require_tool, run_bitwitness, snapshot
from test_browse_disks import EXT_START, HOSTILE_NAMES, Disks, make_disks

from bitwitness.report.browse.safenames import MAX_NAME_BYTES, safe_name


@pytest.fixture(scope="session")
def disks(tmp_path_factory: pytest.TempPathFactory) -> Disks:
    return make_disks(tmp_path_factory)



def _sum(tool: str, path: Path) -> str:
    return subprocess.run([tool, str(path)], capture_output=True, text=True,
                          check=True).stdout.split()[0]


def _all_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def test_export_folder_and_file_with_manifest(disks: Disks, bw, tmp_path: Path) -> None:
    out = tmp_path / "out"
    before = snapshot([disks.gpt])
    result = bw("export", disks.gpt, "-p", "5", "/home/ana", "/we:ird.txt", "--to", out,
                "--json")
    assert result.exit_code == 0, result.stderr
    assert snapshot([disks.gpt]) == before
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["schema"] == "bitwitness.export/1"
    assert manifest["image"] == str(disks.gpt.absolute())
    assert manifest["filesystem"] == "ext4"
    by_source = {f["source"]: f for f in manifest["files"]}
    for path, data in disks.ext_files.items():
        if path.startswith("/home/ana") or path == "/we:ird.txt":
            item = by_source[path]
            written = out / item["target"]
            assert written.read_bytes() == data
            assert item["md5"] == _sum("md5sum", written)
            assert item["sha256"] == _sum("sha256sum", written)
            icat = subprocess.run(["icat", "-o", str(EXT_START), str(disks.gpt), item["inode"]],
                                  capture_output=True, check=True).stdout
            assert hashlib.sha256(icat).hexdigest() == item["sha256"]
            assert item["size"] == len(data)
            assert item["modified"].endswith("+00:00")
    assert (out / "home/ana/projects/big.bin").is_file()
    assert (out / "we%3Aird.txt").is_file()  # ':' is unsafe on some hosts
    assert "/home/ana/gone.txt" not in by_source  # deleted: only with --all
    link = out / by_source["/home/ana/link"]["target"]
    assert not link.is_symlink()
    assert link.read_bytes() == b"notes.txt"
    rows = list(csv.DictReader((out / "manifest.csv").open(encoding="utf-8")))
    assert [(r["source"], r["sha256"]) for r in rows] == [
        (f["source"], f["sha256"]) for f in manifest["files"]]
    assert result.json()["manifest_sha256"] == _sum("sha256sum", out / "manifest.json")
    again = bw("export", disks.gpt, "-p", "5", "/home/ana", "--to", out)
    assert again.exit_code == 2
    assert "already exists" in again.stderr


def test_export_deleted_with_all(disks: Disks, bw, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert bw("export", disks.gpt, "-p", "4", "/", "--all", "--to", out).exit_code == 0
    manifest = json.loads((out / "manifest.json").read_text())
    deleted = [f for f in manifest["files"] if f["deleted"]]
    assert [f["source"] for f in deleted] == ["/_odelete.txt"]
    for path, data in disks.fat_files.items():
        item = next(f for f in manifest["files"] if f["source"] == path)
        assert (out / item["target"]).read_bytes() == data


def test_hostile_names_stay_inside(disks: Disks, bw, tmp_path: Path) -> None:
    outer = tmp_path / "outer"
    out = outer / "out"
    before = sorted(p.name for p in tmp_path.iterdir())
    result = bw("export", disks.hostile, "/dir", "--to", out)
    assert result.exit_code == 0, result.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    targets = {f["source"].rsplit("/", 1)[1]: f["target"] for f in manifest["files"]}
    assert set(targets) == set(HOSTILE_NAMES)
    real_out = out.resolve()
    for number, name in enumerate(HOSTILE_NAMES):
        written = out / targets[name]
        assert written.resolve().parent == real_out / "dir"
        assert written.read_bytes() == f"hostile {number}\n".encode()
        assert len(written.name.encode()) <= MAX_NAME_BYTES
    assert sorted(p.name for p in outer.iterdir()) == ["out"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*before, "outer"])
    assert len(_all_files(out)) == len(HOSTILE_NAMES) + 2  # + the two manifests


@pytest.mark.parametrize("name", ["../../x", "..", ".", "/etc/passwd", "a/b", "a\x00b", "CON",
                                  "con.txt", "x" * 300, "é" * 200, "\udcff", "trail.", "%2F",
                                  "aux", "nul", ""])
def test_safe_name_is_one_plain_component(name: str, tmp_path: Path) -> None:
    safe = safe_name(name)
    assert safe not in ("", ".", "..")
    assert "/" not in safe
    assert "\x00" not in safe
    assert len(safe.encode()) <= MAX_NAME_BYTES
    assert safe.split(".")[0].upper() not in {"CON", "AUX", "NUL", "PRN"}
    target = tmp_path / safe
    target.write_bytes(b"x")
    assert [p.name for p in tmp_path.iterdir()] == [safe]
    if name and len(name.encode("utf-8", "surrogateescape")) < 60:  # untruncated: reversible
        from urllib.parse import unquote_to_bytes

        assert unquote_to_bytes(safe) == name.encode("utf-8", "surrogateescape")


def test_export_records_custody_in_case(disks: Disks, bw, tmp_path: Path) -> None:
    from bitwitness.case import Case
    from bitwitness.custody import CustodyLog
    from bitwitness.templates import load_template

    try:
        template = load_template("default")
    except Exception as exc:  # the case engineer's API may still move
        pytest.skip(f"no default case template: {exc}")
    case = Case.create(tmp_path / "case", template, {"case_number": "C-1", "examiner": "ana"})
    out = tmp_path / "exp"
    result = bw("export", disks.ext4, "/home/ana/notes.txt", "--to", out, "--case", case.root)
    assert result.exit_code == 0, result.stderr
    events = CustodyLog(case.root / "custody.jsonl").events()
    event = events[-1]
    assert event.action == "export"
    digest = hashlib.sha256((out / "manifest.json").read_bytes()).hexdigest()
    assert event.details["manifest_sha256"] == digest
    assert event.details["manifest"] == str((out / "manifest.json").resolve())
    assert Path(event.details["manifest"]).exists()


def test_symbolic_links_in_the_destination_are_not_followed(disks: Disks, bw,
                                                            tmp_path: Path) -> None:
    """A link already in --to, where the export makes a folder or writes a file, is refused,
    with --overwrite too: nothing lands where it points (export remembers the folders it
    checked, so each file is not resolved again; this checks that the first one is)."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = tmp_path / "out"
    (out / "home").mkdir(parents=True)
    (out / "home" / "ana").symlink_to(elsewhere)
    folder = bw("export", disks.gpt, "-p", "5", "/home", "--to", out, "--overwrite")
    assert folder.exit_code != 0
    assert "symbolic link" in folder.stderr
    assert list(elsewhere.iterdir()) == []
    target = elsewhere / "notes.txt"
    target.write_bytes(b"not the evidence")
    out2 = tmp_path / "out2"
    (out2 / "home" / "ana").mkdir(parents=True)
    (out2 / "home" / "ana" / "notes.txt").symlink_to(target)
    file = bw("export", disks.gpt, "-p", "5", "/home/ana", "--to", out2, "--overwrite",
              "--json")
    assert file.exit_code == 1, file.stderr
    failed = {f["source"]: f["reason"] for f in file.json()["failed"]}
    assert "/home/ana/notes.txt" in failed
    assert target.read_bytes() == b"not the evidence"
    assert (out2 / "home" / "ana" / "notes.txt").is_symlink()


def test_names_differing_only_in_case_stay_two_files_on_a_case_insensitive_target(
        tmp_path: Path) -> None:
    """Evidence from ext4 holding A.txt and a.txt (and folders D and d) exported onto exFAT
    (exfat-fuse on a loop device): each file keeps its own bytes, the second of a pair under
    ``~ADDRESS``, and every manifest hash is the hash of the file written (the second had
    replaced the first while the manifest listed both). The names are the kernel's ext4."""
    require_root()
    require_tool("mkfs.ext4", "mkfs.exfat", "mount.exfat-fuse", "losetup", "fusermount")
    source = tmp_path / "case.raw"
    subprocess.run(["truncate", "-s", "16M", str(source)], check=True)
    staging = tmp_path / "staging"
    (staging / "D").mkdir(parents=True)
    (staging / "d").mkdir()
    (staging / "A.txt").write_bytes(b"upper\n")
    (staging / "a.txt").write_bytes(b"lower\n")
    (staging / "D" / "f").write_bytes(b"1\n")
    (staging / "d" / "f").write_bytes(b"2\n")
    subprocess.run(["mkfs.ext4", "-q", "-F", "-d", str(staging), str(source)], check=True)
    target = tmp_path / "tgt.img"
    subprocess.run(["truncate", "-s", "32M", str(target)], check=True)
    subprocess.run(["mkfs.exfat", str(target)], check=True, capture_output=True)
    loop = subprocess.run(["losetup", "-f", "--show", str(target)], capture_output=True,
                          text=True, check=True).stdout.strip()
    mounted = tmp_path / "mnt"
    mounted.mkdir()
    try:
        subprocess.run(["mount.exfat-fuse", loop, str(mounted)], check=True,
                       capture_output=True)
        try:
            out = mounted / "e"
            result = run_bitwitness("export", source, "/", "--to", out)
            assert result.exit_code == 0, result.stderr
            files = json.loads((out / "manifest.json").read_text(encoding="utf-8"))["files"]
            assert {f["source"] for f in files} == {"/A.txt", "/a.txt", "/D/f", "/d/f"}
            assert len({f["target"].casefold() for f in files}) == 4
            for listed in files:
                data = (out / listed["target"]).read_bytes()
                assert hashlib.sha256(data).hexdigest() == listed["sha256"], listed
                assert data == (staging / listed["source"].lstrip("/")).read_bytes()
        finally:
            subprocess.run(["fusermount", "-u", str(mounted)], check=False)
    finally:
        subprocess.run(["losetup", "-d", loop], check=False)
