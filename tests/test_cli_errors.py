"""Rule 5 across every command: bad input gets one clear line and its documented exit code.

Each case runs the real command line through the one error boundary (``main``) and asserts: the
documented exit code (2 usage/input, 1 evidence problem), stderr is exactly one line starting with
``bitwitness: error:`` (or click's documented ``Usage: ... Error: ...`` block for option errors,
also exit 2), no traceback anywhere, stdout empty or one valid JSON document with ``--json``,
and every input file and folder byte-for-byte and mtime unchanged, with nothing new created (a
refusal leaves nothing behind, not even a preliminary log or a custody event).

The inputs are built once per module: the packaged sample disk (FAT32 + ext4 in an MBR), a MiB
of random bytes, an E01 of it, that E01 cut in half, an empty file, a folder, a plain file (a
path "under" it can never be created: how we test unwritable destinations as root), a folder
that is not a case, and a real case with one evidence item.
"""

from __future__ import annotations

import errno
import json
import os
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import CliResult, require_tool, run_bitwitness, run_subprocess, snapshot


@dataclass(frozen=True)
class World:
    root: Path
    fat: int  #: the -p index of the sample disk's FAT32 file system
    fat_start: int  #: its first sector

    def argv(self, template: str) -> list[str]:
        return [part.replace("{w}", str(self.root)) for part in shlex.split(template)]

    def state(self) -> tuple[frozenset[Path], dict[Path, tuple[str, int]]]:
        """Every path under the world, and the hash and mtime of every file."""
        paths = frozenset(self.root.rglob("*"))
        return paths, snapshot(sorted(p for p in paths if p.is_file()))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    from bitwitness.sample import materialize

    root = tmp_path_factory.mktemp("bad-input")
    materialize(root / "disk.img")
    (root / "random.bin").write_bytes(os.urandom(1 << 20))
    (root / "empty.bin").write_bytes(b"")
    (root / "dir").mkdir()
    (root / "afile").write_text("a regular file, so nothing can be created below it\n")
    (root / "notcase").mkdir()
    (root / "notcase" / "notes.txt").write_text("a folder, but not a case\n")
    for argv in (["acquire", root / "random.bin", "-o", root / "small", "--hash", "md5"],
                 ["case", "new", root / "case", "--set", "case_number=C-1",
                  "--set", "examiner=Examiner"],
                 ["acquire", root / "random.bin", "--case", root / "case", "--evidence", "d1"]):
        result = run_bitwitness(*argv)
        assert result.exit_code == 0, result.stderr
    data = (root / "small.E01").read_bytes()
    (root / "trunc.E01").write_bytes(data[: len(data) // 2])
    layout = run_bitwitness("partitions", root / "disk.img", "--json").json()
    fat = next(p for p in layout["partitions"] if p["filesystem"] == "fat32")
    return World(root, fat["index"], fat["start"])


def assert_one_clear_error(result: CliResult, code: int, needle: str, *,
                           output_allowed: bool = False) -> None:
    """The documented exit code and one clear line; stdout empty (or one JSON document)."""
    assert result.exit_code == code, (result.exit_code, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    if lines and lines[0].startswith("Usage: "):  # click's option errors: documented, exit 2
        assert code == 2
        assert lines[-1].startswith("Error: ")
        assert sum(line.startswith("Error: ") for line in lines) == 1
    else:
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith("bitwitness: error: ")
    assert needle in result.stderr, result.stderr
    if result.stdout.strip() and not output_allowed:
        json.loads(result.stdout)  # only a --json document may be on stdout


# (id, command line with {w} for the world folder, exit code, words of the one error line)
USAGE = 2
EVIDENCE = 1
CASES: list[tuple[str, str, int, str]] = [
    # images that are missing, folders, empty, damaged
    ("info-missing", "info {w}/missing.E01", USAGE, "no such file"),
    ("info-dir", "info {w}/dir", USAGE, "is a directory"),
    ("info-empty", "info {w}/empty.bin", USAGE, "empty file (0 bytes)"),
    ("info-under-file", "info {w}/afile/x.E01", USAGE, "no such file"),
    ("info-json-missing", "info --json {w}/missing.E01", USAGE, "no such file"),
    ("verify-missing", "verify {w}/missing.E01", USAGE, "no such file"),
    ("verify-dir", "verify {w}/dir", USAGE, "is a directory"),
    ("verify-empty", "verify --json {w}/empty.bin", USAGE, "empty file"),
    ("verify-nothing", "verify", USAGE, "give at least one IMAGE"),
    ("verify-against-missing", "verify {w}/small.E01 --against {w}/nope", USAGE, "no such"),
    ("verify-against-dir", "verify {w}/small.E01 --against {w}/dir", USAGE, "is a directory"),
    ("verify-log-missing", "verify {w}/small.E01 --log {w}/nope.json", USAGE, "no such log"),
    ("verify-log-random", "verify {w}/small.E01 --log {w}/random.bin", USAGE,
     "not a hash log"),
    ("verify-notcase", "verify --case {w}/notcase", USAGE, "not a BitWitness case"),
    ("verify-case-and-image", "verify --case {w}/case {w}/small.E01", USAGE, "not both"),
    ("partitions-missing", "partitions {w}/missing.E01", USAGE, "no such file"),
    ("partitions-empty", "partitions --json {w}/empty.bin", USAGE, "empty file"),
    ("partitions-truncated", "partitions {w}/trunc.E01", EVIDENCE, "INCOMPLETE"),
    ("ls-truncated", "ls --json {w}/trunc.E01", EVIDENCE, "INCOMPLETE"),
    ("cat-truncated", "cat {w}/trunc.E01 /x", EVIDENCE, "INCOMPLETE"),
    ("convert-truncated", "convert {w}/trunc.E01 -o {w}/out --to raw", EVIDENCE, "INCOMPLETE"),
    ("restore-truncated", "restore {w}/trunc.E01 {w}/out.raw --yes", EVIDENCE, "INCOMPLETE"),
    ("ls-random", "ls {w}/random.bin", USAGE, "no file system"),
    ("timeline-random", "timeline {w}/random.bin", USAGE, "no file system"),
    ("browse-missing", "browse {w}/missing.E01", USAGE, "no such file"),
    ("browse-no-terminal", "browse {w}/disk.img", USAGE, "needs a terminal"),
    # file systems and paths inside them
    ("ls-several-fs", "ls {w}/disk.img", USAGE, "choose one with -p"),
    ("ls-p-out-of-range", "ls {w}/disk.img -p 99", USAGE, "no partition 99"),
    ("ls-p-negative", "ls --json {w}/disk.img -p -1", USAGE, "no partition -1"),
    ("ls-p-not-a-number", "ls {w}/disk.img -p abc", USAGE, "'-p'"),
    ("ls-offset-beyond", "ls {w}/disk.img --offset 999999999", USAGE, "beyond the end"),
    ("ls-offset-negative", "ls {w}/disk.img --offset -5", USAGE, "--offset"),
    ("ls-offset-no-fs", "ls {w}/disk.img --offset 1", USAGE, "cannot open a file system"),
    ("ls-no-such-path", "ls --json {w}/disk.img -p FAT /no/such", USAGE, "no such file"),
    ("ls-file-as-folder", "ls {w}/disk.img -p FAT /README.TXT/x", USAGE, "not a directory"),
    ("ls-deleted-and-all", "ls {w}/disk.img -p FAT --deleted --all", USAGE, "exclude"),
    ("stat-no-target", "stat {w}/disk.img -p FAT", USAGE, "give either PATH or --inode"),
    ("stat-no-such-path", "stat {w}/disk.img -p FAT /nope", USAGE, "no such file"),
    ("stat-inode-range", "stat --json {w}/disk.img -p FAT --inode 99999999", USAGE,
     "out of range"),
    ("stat-inode-zero", "stat {w}/disk.img -p FAT --inode 0", USAGE, "out of range"),
    ("stat-inode-garbage", "stat {w}/disk.img -p FAT --inode 5-x-y", USAGE,
     "not an inode address"),
    ("cat-folder", "cat {w}/disk.img -p FAT /Documents", USAGE, "is a folder"),
    ("cat-no-such-stream", "cat {w}/disk.img -p FAT /README.TXT:nostream", USAGE, "no such"),
    ("cat-inode-negative", "cat {w}/disk.img -p FAT --inode -3", USAGE,
     "not an inode address"),
    ("timeline-bad-format", "timeline {w}/disk.img -p FAT --format xml", USAGE, "--format"),
    # exports
    ("export-no-such-path", "export --json {w}/disk.img -p FAT /nope --to {w}/out", USAGE,
     "no such file"),
    ("export-to-file", "export {w}/disk.img -p FAT /README.TXT --to {w}/afile", USAGE,
     "not a folder"),
    ("export-under-file", "export {w}/disk.img -p FAT /README.TXT --to {w}/afile/sub", USAGE,
     "is a file, not a folder"),
    ("export-notcase", "export {w}/disk.img -p FAT /README.TXT --to {w}/out "
     "--case {w}/notcase", USAGE, "not a BitWitness case"),
    ("export-unknown-evidence", "export {w}/disk.img -p FAT /README.TXT --to {w}/out "
     "--case {w}/case --evidence nosuch", USAGE, "no evidence item 'nosuch'"),
    ("export-evidence-no-case", "export {w}/disk.img -p FAT /README.TXT --to {w}/out "
     "--evidence d1", USAGE, "give --case too"),
    # acquisition
    ("acquire-missing", "acquire {w}/missing.bin -o {w}/out", USAGE, "no such file"),
    ("acquire-dir", "acquire {w}/dir -o {w}/out", USAGE, "is a directory"),
    ("acquire-empty", "acquire {w}/empty.bin -o {w}/out", USAGE, "empty"),
    ("acquire-no-output", "acquire {w}/random.bin", USAGE, "give either -o"),
    ("acquire-exists", "acquire {w}/random.bin -o {w}/small", USAGE, "already exists"),
    ("acquire-json-exists", "acquire --json {w}/random.bin -o {w}/small", USAGE,
     "already exists"),
    ("acquire-under-file", "acquire {w}/random.bin -o {w}/afile/sub", USAGE,
     "is a file, not a folder"),
    ("acquire-second-under-file", "acquire {w}/random.bin -o {w}/out "
     "--second-output {w}/afile/x", USAGE, "is a file, not a folder"),
    ("acquire-size-unit", "acquire {w}/random.bin -o {w}/out --segment-size 12XB", USAGE,
     "unknown size unit"),
    ("acquire-size-negative", "acquire {w}/random.bin -o {w}/out --segment-size -1", USAGE,
     "not a size"),
    ("acquire-segment-zero", "acquire {w}/random.bin -o {w}/out --segment-size 0", USAGE,
     "at least 1.0 MiB"),
    ("acquire-segment-small", "acquire {w}/random.bin -o {w}/out --segment-size 1000", USAGE,
     "at least 1.0 MiB"),
    ("acquire-split-tiny", "acquire {w}/random.bin -o {w}/out --format raw --split 1", USAGE,
     "at least 1.0 MiB"),
    ("acquire-chunk-small", "acquire {w}/random.bin -o {w}/out --chunk-sectors 4", USAGE,
     "--chunk-sectors"),
    ("acquire-chunk-vs-segment", "acquire {w}/random.bin -o {w}/out --chunk-sectors 32768 "
     "--segment-size 4M", USAGE, "--segment-size must be at least"),
    ("acquire-hash-unknown", "acquire {w}/random.bin -o {w}/out --hash md6", USAGE,
     "unknown hash algorithm"),
    ("acquire-json-hash-unknown", "acquire --json {w}/random.bin -o {w}/out --hash sha1,crc",
     USAGE, "unknown hash algorithm"),
    ("acquire-hash-empty", "acquire {w}/random.bin -o {w}/out --hash ''", USAGE,
     "at least one hash"),
    ("acquire-retries-negative", "acquire {w}/random.bin -o {w}/out --retries -1", USAGE,
     "--retries"),
    ("acquire-resume-nothing", "acquire {w}/random.bin -o {w}/out --resume", USAGE,
     "cannot resume"),
    ("acquire-notcase", "acquire {w}/random.bin --case {w}/notcase --evidence x", USAGE,
     "not a BitWitness case"),
    ("acquire-case-no-evidence", "acquire {w}/random.bin --case {w}/case", USAGE,
     "go together"),
    ("acquire-evidence-exists", "acquire {w}/random.bin --case {w}/case --evidence d1", USAGE,
     "already exists"),
    ("acquire-evidence-empty", "acquire {w}/random.bin --case {w}/case --evidence ''", USAGE,
     "bad evidence ID"),
    ("acquire-evidence-path", "acquire {w}/random.bin --case {w}/case --evidence ../x", USAGE,
     "bad evidence ID"),
    # conversion and restore
    ("convert-missing", "convert {w}/missing.E01 -o {w}/out --to raw", USAGE, "no such file"),
    ("convert-empty", "convert {w}/empty.bin -o {w}/out --to raw", USAGE, "empty file"),
    ("convert-bad-to", "convert {w}/small.E01 -o {w}/out --to xyz", USAGE, "--to"),
    ("convert-onto-source", "convert --json {w}/small.E01 -o {w}/small --to e01", USAGE,
     "part of the source"),
    ("convert-exists", "convert {w}/small.E01 -o {w}/small --to raw", USAGE, "already exists"),
    ("convert-segment-zero", "convert {w}/small.E01 -o {w}/out --to e01 --segment-size 0",
     USAGE, "at least 1.0 MiB"),
    ("convert-split-zero", "convert {w}/small.E01 -o {w}/out --to raw --split 0", USAGE,
     "at least 1.0 MiB"),
    ("convert-split-e01", "convert {w}/small.E01 -o {w}/out --to vhd --split 1M", USAGE,
     "--split applies to raw"),
    ("convert-under-file", "convert {w}/small.E01 -o {w}/afile/sub --to raw", USAGE,
     "is a file, not a folder"),
    ("restore-missing", "restore {w}/missing.E01 {w}/out.raw --yes", USAGE, "no such file"),
    ("restore-exists", "restore --json {w}/small.E01 {w}/afile --yes", USAGE,
     "already exists"),
    ("restore-onto-evidence", "restore {w}/small.E01 {w}/random.bin --yes --overwrite", USAGE,
     "is the evidence this image was acquired from"),
    ("restore-onto-image", "restore {w}/random.bin {w}/random.bin --yes", USAGE,
     "the image itself"),
    ("restore-under-file", "restore {w}/small.E01 {w}/afile/sub --yes", USAGE, "afile"),
    ("restore-unconfirmed", "restore {w}/small.E01 {w}/out.raw", USAGE, "not confirmed"),
    # cases, templates, custody, reports
    ("case-new-notempty", "case new {w}/notcase --set case_number=1 --set examiner=x", USAGE,
     "not empty"),
    ("case-new-under-file", "case new {w}/afile/c --set case_number=1 --set examiner=x",
     USAGE, "afile"),
    ("case-new-template", "case new --json {w}/out --template nosuch", USAGE,
     "no template named 'nosuch'"),
    ("case-new-missing-fields", "case new {w}/out", USAGE, "missing required fields"),
    ("case-new-unknown-field", "case new {w}/out --set case_number=1 --set examiner=x "
     "--set colour=red", USAGE, "unknown field colour"),
    ("case-new-bad-set", "case new {w}/out --set bad", USAGE, "NAME=VALUE"),
    ("case-new-templates-file", "case new {w}/out --templates {w}/afile --set case_number=1 "
     "--set examiner=x", USAGE, "is not a folder"),
    ("case-show-notcase", "case show --json {w}/notcase", USAGE, "not a BitWitness case"),
    ("case-show-missing", "case show {w}/missing", USAGE, "not a BitWitness case"),
    ("case-templates-unknown", "case templates --json nosuch", USAGE, "no template named"),
    ("custody-verify-notcase", "custody verify --json {w}/notcase", USAGE,
     "not a BitWitness case"),
    ("custody-show-file", "custody show {w}/afile", USAGE, "not a BitWitness case"),
    ("custody-show-evidence", "custody show {w}/case --evidence nosuch", USAGE,
     "no evidence 'nosuch'"),
    ("custody-add-notcase", "custody add {w}/notcase --action seized", USAGE,
     "not a BitWitness case"),
    ("custody-add-action", "custody add --json {w}/case --action bogus", USAGE,
     "not a physical custody action"),
    ("custody-add-transfer", "custody add {w}/case --action transferred", USAGE,
     "needs both --from and --to"),
    ("custody-add-actor", "custody add {w}/case --action seized --actor ''", USAGE,
     "--actor must not be empty"),
    ("report-notcase", "report --json {w}/notcase", USAGE, "not a BitWitness case"),
    ("report-file", "report {w}/afile", USAGE, "CASE_DIR"),
    ("report-evidence", "report {w}/case --evidence nosuch", USAGE,
     "no evidence item 'nosuch'"),
    ("report-format", "report {w}/case --format doc", USAGE, "--format"),
    ("report-exists", "report {w}/case -o {w}/afile", USAGE, "already exists"),
    ("report-under-file", "report {w}/case -o {w}/afile/r.pdf", USAGE,
     "is a file, not a folder"),
    # the rest
    ("demo-file", "demo {w}/afile", USAGE, "is a file, not a folder"),
    ("demo-existing", "demo {w}/notcase", USAGE, "already exists"),
    ("devices-bad-option", "devices --bogus", USAGE, "No such option"),
    ("formats-extra", "formats extra", USAGE, "unexpected extra argument"),
    ("unknown-command", "nosuchcommand", USAGE, "No such command"),
]


@pytest.mark.parametrize(("args", "code", "needle"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_bad_input_gives_one_clear_line(world: World, args: str, code: int,
                                        needle: str) -> None:
    args = args.replace("-p FAT", f"-p {world.fat}")
    before = world.state()
    result = run_bitwitness(*world.argv(args))
    assert_one_clear_error(result, code, needle)
    assert world.state() == before  # inputs unchanged, nothing created


def test_truncated_e01_is_an_evidence_problem_for_info_and_verify(world: World) -> None:
    """info shows what the cut E01 still says, then exits 1 in one line; verify gives the
    INCOMPLETE verdict as its result (exit 1, valid JSON). ewfverify agrees it is damaged."""
    require_tool("ewfverify")
    theirs = subprocess.run(["ewfverify", "-q", str(world.root / "trunc.E01")],
                            capture_output=True, check=False)
    assert theirs.returncode != 0
    before = world.state()
    info = run_bitwitness("info", world.root / "trunc.E01")
    assert_one_clear_error(info, 1, "INCOMPLETE", output_allowed=True)
    info_json = run_bitwitness("info", "--json", world.root / "trunc.E01")
    assert_one_clear_error(info_json, 1, "INCOMPLETE")
    assert info_json.json()["ewf"]["complete"] is False
    verify = run_bitwitness("verify", "--json", world.root / "trunc.E01")
    assert verify.exit_code == 1
    assert "Traceback" not in verify.stderr + verify.stdout
    assert [i["verdict"] for i in verify.json()["images"]] == ["INCOMPLETE"]
    assert world.state() == before


def test_complete_third_party_e01_info_still_exits_0(third_party: Path) -> None:
    """The incomplete-image exit of info does not fire on finished sets made by ewfacquire."""
    result = run_bitwitness("info", third_party / "dfvfs_ext2.E01")
    assert result.exit_code == 0, result.stderr


def test_debug_shows_the_traceback(world: World) -> None:
    result = run_bitwitness("--debug", "info", world.root / "missing.E01")
    assert result.exit_code == 2
    assert "Traceback" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("bitwitness: error:")


@pytest.mark.parametrize("debug", [False, True], ids=["plain", "debug"])
def test_unexpected_exception_is_exit_3_in_one_line(world: World, debug: bool,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    import bitwitness.verify.info

    def broken(path: object) -> None:
        raise RuntimeError("engine exploded")

    monkeypatch.setattr(bitwitness.verify.info, "image_info", broken)
    result = run_bitwitness(*(["--debug"] if debug else []), "info", world.root / "small.E01")
    assert result.exit_code == 3
    if debug:
        assert "Traceback" in result.stderr
        assert "RuntimeError: engine exploded" in result.stderr
    else:
        assert_one_clear_error(result, 3, "internal error: RuntimeError: engine exploded")
        assert "--debug" in result.stderr


@pytest.mark.parametrize(("number", "code"), [(errno.EACCES, 2), (errno.ENOSPC, 2),
                                              (errno.EIO, 3)],
                         ids=["permission", "disk-full", "io-error"])
def test_unwrapped_os_errors(world: World, number: int, code: int,
                             monkeypatch: pytest.MonkeyPatch) -> None:
    """The boundary's safety net: an OSError about the user's files no engine wrapped is an
    input error naming the file; any other OSError stays a bug (exit 3)."""
    import bitwitness.verify.info

    def failing(path: object) -> None:
        raise OSError(number, os.strerror(number), "/evidence/out.E01")

    monkeypatch.setattr(bitwitness.verify.info, "image_info", failing)
    result = run_bitwitness("info", world.root / "small.E01")
    needle = (f"/evidence/out.E01: {os.strerror(number)}" if code == 2
              else "internal error: OSError")
    assert_one_clear_error(result, code, needle)


def test_permission_denied_on_the_image(world: World, tmp_path: Path) -> None:
    """A mode-000 image (root reads anything, so this only runs as another user)."""
    if os.geteuid() == 0:
        pytest.skip("root is never denied a read; the path-under-a-file cases cover refusals")
    locked = tmp_path / "locked.raw"
    shutil.copyfile(world.root / "random.bin", locked)
    locked.chmod(0)
    result = run_bitwitness("verify", locked)
    assert_one_clear_error(result, 2, "permission denied")


@pytest.mark.parametrize(("args", "code", "needle"), [
    ("info {w}/missing.E01", 2, "no such file"),
    ("ls --json {w}/trunc.E01", 1, "INCOMPLETE"),
    ("acquire {w}/random.bin -o {w}/out --segment-size 12XB", 2, "unknown size unit"),
], ids=["missing", "truncated", "click-usage"])
def test_separate_process_exit_codes(world: World, args: str, code: int, needle: str) -> None:
    """The same boundary seen from outside: the process's own exit status and streams."""
    before = world.state()
    result = run_subprocess(*world.argv(args), timeout=60)
    assert_one_clear_error(result, code, needle)
    assert world.state() == before
