"""The restore log pair (``BASE.json`` + ``BASE.txt``, operation "restore") and where it goes.

Every hash a log states is checked against md5sum/sha1sum/sha256sum run on the restored target
and on the image's media (a raw file is its media; for the E01 fixture, the shared manifest holds
hashes computed outside BitWitness). Refusals must leave no log and no target.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pytest
from conftest import make_disk_bytes, require_root, require_tool, run_bitwitness, snapshot


def _digest(tool: str, path: Path, length: int | None = None) -> str:
    """``tool`` (md5sum, sha1sum, sha256sum) over the file, or its first ``length`` bytes."""
    require_tool(tool, "head")
    with path.open("rb") as fh:
        if length is None:
            proc = subprocess.run([tool], stdin=fh, capture_output=True, text=True, check=True)
        else:
            head = subprocess.Popen(["head", "-c", str(length)], stdin=fh,
                                    stdout=subprocess.PIPE)
            proc = subprocess.run([tool], stdin=head.stdout, capture_output=True, text=True,
                                  check=True)
            assert head.stdout is not None
            head.stdout.close()
            head.wait()
    return proc.stdout.split()[0]


def _sums(path: Path, length: int | None = None) -> dict[str, str]:
    return {alg: _digest(f"{alg}sum", path, length) for alg in ("md5", "sha1", "sha256")}


def _restore_logs(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.restore-*"))


def test_log_pair_for_an_e01_restore_matches_independent_hashes(
        third_party: Path, manifest: dict, tmp_path: Path) -> None:
    src = third_party / "dfvfs_ext2.E01"
    before = snapshot([src])
    target, base = tmp_path / "copy.img", tmp_path / "logs" / "restore1"
    base.parent.mkdir()
    result = run_bitwitness("restore", src, target, "--yes", "--verify", "--json", "--log", base)
    assert result.exit_code == 0, result.stderr
    out = result.json()
    json_log, text_log = base.with_name("restore1.json"), base.with_name("restore1.txt")
    assert out["logs"] == [str(json_log), str(text_log)]
    assert out["status"] == "completed"
    assert out["exit_code"] == 0
    doc = json.loads(json_log.read_text())
    assert (doc["schema"], doc["operation"], doc["status"], doc["error"]) == (
        "bitwitness.acquisition/1", "restore", "completed", None)
    want = manifest["dfvfs_ext2.E01"]
    media = want["media_size"]
    # written hashes = the target's (md5sum & co.) = the image's media (manifest, from outside)
    target_sums = _sums(target)
    assert doc["media"]["hashes"] == target_sums
    assert target_sums == {a: want[a] for a in ("md5", "sha1", "sha256")}
    assert doc["verification"]["verdict"] == "VERIFIED"
    assert doc["verification"]["hashes"] == target_sums
    assert doc["media"]["size"] == media == target.stat().st_size
    assert doc["progress"]["media_bytes_done"] == media
    assert doc["source"]["kind"] == "image"
    assert doc["source"]["path"] == str(src)
    assert doc["image"]["format"] == "ewf"
    recorded = doc["image"]["recorded_hashes"]
    assert [(r["algorithm"], r["expected"], r["match"]) for r in recorded] == [
        ("md5", want["stored_hashes"]["MD5"].lower(), True)]
    assert doc["target"]["path"] == str(target)
    assert doc["target"]["kind"] == "file"
    assert doc["target"]["bytes_written"] == media
    assert doc["target"]["existed"] is False
    assert doc["metadata"]["examiner"] == want["header_values"]["examiner_name"]
    assert doc["tool"]["name"] == "BitWitness"
    assert doc["tool"]["version"]
    started, ended = (datetime.fromisoformat(doc[k]) for k in ("started", "ended"))
    assert started.utcoffset() is not None
    assert started <= ended
    text = text_log.read_text()
    assert "Status: COMPLETED" in text
    assert target_sums["sha256"] in text
    assert str(target) in text
    assert snapshot([src]) == before


def test_default_log_goes_next_to_the_image(tmp_path: Path) -> None:
    image = tmp_path / "img" / "disk.raw"
    image.parent.mkdir()
    image.write_bytes(make_disk_bytes(3 << 20, seed=4))
    before = snapshot([image])
    target = tmp_path / "copy.bin"
    result = run_bitwitness("restore", image, target, "--yes", "--json")
    assert result.exit_code == 0, result.stderr
    logs = _restore_logs(image.parent)
    assert [p.suffix for p in logs] == [".json", ".txt"]
    assert logs[0].name.startswith("disk.raw.restore-")
    assert logs[0].name.endswith("Z.json")
    assert result.json()["logs"] == [str(p) for p in logs]
    doc = json.loads(logs[0].read_text())
    media_sums = _sums(image)  # a raw file is its media
    assert doc["media"]["hashes"] == media_sums == _sums(target)
    assert doc["verification"] is None  # not read back without --verify
    assert doc["warnings"]  # no recorded hash for a bare raw file: said in the log
    assert not (image.parent / "disk.raw.json").exists()  # never where verify looks for hashes
    # a second restore of the same image gets its own pair, the first is kept
    first = logs[0].read_bytes()
    assert run_bitwitness("restore", image, target, "--yes", "--overwrite").exit_code == 0
    assert len(_restore_logs(image.parent)) == 4
    assert logs[0].read_bytes() == first
    assert snapshot([image]) == before


def test_refusals_write_no_log_and_no_target(tmp_path: Path) -> None:
    image = tmp_path / "img" / "disk.raw"
    image.parent.mkdir()
    image.write_bytes(make_disk_bytes(1 << 20, seed=5))
    target = tmp_path / "t.bin"
    # not confirmed (off a terminal without --yes)
    result = run_bitwitness("restore", image, target)
    assert result.exit_code == 2
    assert not target.exists()
    assert _restore_logs(image.parent) == []
    # an existing log is never replaced, not even with --overwrite
    (tmp_path / "old.json").write_text("keep")
    result = run_bitwitness("restore", image, target, "--yes", "--overwrite",
                            "--log", tmp_path / "old")
    assert result.exit_code == 2
    assert "already exists" in result.stderr
    assert (tmp_path / "old.json").read_text() == "keep"
    assert not target.exists()
    # a --log folder that does not exist
    result = run_bitwitness("restore", image, target, "--yes", "--log", tmp_path / "no" / "x")
    assert result.exit_code == 2
    assert not target.exists()
    # the default folder marked read-only: refused even for root, with the way out named
    image.parent.chmod(0o555)
    try:
        result = run_bitwitness("restore", image, target, "--yes")
        assert result.exit_code == 2
        assert "--log" in result.stderr
        assert not target.exists()
        assert _restore_logs(image.parent) == []
    finally:
        image.parent.chmod(0o755)


def test_mismatch_against_the_stored_hash_logs_failed(third_party: Path, manifest: dict,
                                                        tmp_path: Path) -> None:
    target, base = tmp_path / "t.bin", tmp_path / "mismatch"
    result = run_bitwitness("restore", third_party / "dissect_ewf.E01", target, "--yes",
                            "--json", "--log", base)
    assert result.exit_code == 1
    out = result.json()
    assert out["status"] == "failed"
    assert out["verdict"] == "MISMATCH"
    doc = json.loads(Path(out["logs"][0]).read_text())
    assert doc["status"] == "failed"
    assert "records" in doc["error"]
    want = manifest["dissect_ewf.E01"]
    assert doc["media"]["hashes"]["md5"] == want["md5"] == _digest("md5sum", target)
    [ref] = doc["image"]["recorded_hashes"]
    assert ref["expected"] == want["stored_hashes"]["MD5"].lower()
    assert ref["match"] is False
    assert "Status: FAILED" in base.with_name("mismatch.txt").read_text()


@dataclass
class _ActAfterFirstBlock:
    """A mediator that does ``act()`` once the first block is written (a Ctrl-C, say)."""

    act: Callable[[], object]
    notices: list[str] = field(default_factory=list)

    def begin(self, label: str, total: int | None) -> _ActAfterFirstBlock:
        return self

    def advance(self, nbytes: int) -> None:
        self.act()

    def set_errors(self, count: int) -> None:
        pass

    def finish(self, *, complete: bool = True) -> None:
        pass

    def notice(self, message: str, *, level: str = "info") -> None:
        self.notices.append(message)

    def confirm(self, question: str) -> bool:
        return True


def _big_image(tmp_path: Path) -> Path:
    image = tmp_path / "big.raw"
    image.write_bytes(make_disk_bytes(1 << 20, seed=7) + bytes(23 << 20))  # 24 one-MiB blocks
    return image


def test_interrupted_restore_logs_what_was_written(tmp_path: Path) -> None:
    from bitwitness.acquire.convert.restore import restore_image
    from bitwitness.errors import ExitCode
    from bitwitness.verdict import Verdict as RestoreVerdict

    image = _big_image(tmp_path)
    target, base = tmp_path / "t.bin", tmp_path / "stopped"
    stop = threading.Event()
    result = restore_image(image, target, _ActAfterFirstBlock(stop.set), log=base, stop=stop)
    assert result.exit_code is ExitCode.INTERRUPTED
    assert result.verdict is RestoreVerdict.INCOMPLETE
    done = result.bytes_written
    assert 0 < done < image.stat().st_size
    assert target.stat().st_size == done
    doc = json.loads(base.with_name("stopped.json").read_text())
    assert (doc["status"], doc["media"]["hashes"]) == ("interrupted", {})
    assert doc["progress"]["media_bytes_done"] == doc["target"]["bytes_written"] == done
    assert "interrupted" in doc["error"]
    # what is on the target is exactly the image's first `done` bytes
    assert _digest("sha256sum", target) == _digest("sha256sum", image, done)
    assert "Status: INTERRUPTED" in base.with_name("stopped.txt").read_text()


def test_sigint_stops_after_the_current_block(tmp_path: Path) -> None:
    """A real SIGINT (as Ctrl-C sends) mid-restore: stop cleanly, log "interrupted"."""
    from bitwitness.acquire.convert.restore import restore_image

    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers need the main thread")
    image = _big_image(tmp_path)
    target, base = tmp_path / "t.bin", tmp_path / "sig"
    sent: list[int] = []

    def ctrl_c() -> None:
        if not sent:
            sent.append(1)
            os.kill(os.getpid(), signal.SIGINT)

    result = restore_image(image, target, _ActAfterFirstBlock(ctrl_c), log=base)
    assert sent
    assert result.status.value == "interrupted"
    doc = json.loads(base.with_name("sig.json").read_text())
    assert doc["status"] == "interrupted"
    assert doc["target"]["bytes_written"] == target.stat().st_size < image.stat().st_size
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler put back


def test_interrupted_exit_code_and_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Through the command line (a stop already requested when the writing starts): the JSON
    document still names the logs, and the exit status is 130."""
    from bitwitness.acquire.convert import restore as restore_mod

    image = tmp_path / "disk.raw"
    image.write_bytes(make_disk_bytes(1 << 20, seed=8))
    stopped = threading.Event()
    stopped.set()
    original = restore_mod.restore_image
    monkeypatch.setattr(restore_mod, "restore_image",
                        lambda *a, **k: original(*a, **k, stop=stopped))
    result = run_bitwitness("restore", image, tmp_path / "t", "--yes", "--json",
                            "--log", tmp_path / "int")
    assert result.exit_code == 130
    out = result.json()
    assert out["status"] == "interrupted"
    assert out["exit_code"] == 130
    assert out["logs"] == [str(tmp_path / "int.json"), str(tmp_path / "int.txt")]
    assert json.loads((tmp_path / "int.json").read_text())["progress"]["media_bytes_done"] == 0


def test_case_restore_logs_in_evidence_folder_and_custody(tmp_path: Path) -> None:
    from bitwitness.case import Case
    from bitwitness.templates import load_template

    case = Case.create(tmp_path / "case", load_template("default", environ={}),
                       {"case_number": "C-7", "examiner": "Ann"})
    folder = case.evidence_dir("USB1")
    folder.mkdir(parents=True, exist_ok=True)
    image = folder / "usb.raw"
    image.write_bytes(make_disk_bytes(1 << 20, seed=9))
    target = tmp_path / "copy"
    result = run_bitwitness("restore", image, target, "--yes", "--verify", "--json")
    assert result.exit_code == 0, result.stderr
    logs = _restore_logs(folder / "restore-logs")
    assert len(logs) == 2
    assert _restore_logs(folder) == []
    doc = json.loads(logs[0].read_text())
    assert doc["case"]["evidence_id"] == "USB1"
    assert doc["case"]["fields"]["case_number"] == "C-7"
    assert doc["media"]["hashes"] == _sums(image) == doc["verification"]["hashes"]
    event = case.custody.events()[-1]
    assert (event.action, event.evidence_id, event.seq) == (
        "restore", "USB1", result.json()["custody_seq"])
    assert event.details["log"] == str(logs[0])
    assert event.details["log_sha256"] == _digest("sha256sum", logs[0])
    assert event.details["status"] == "completed"
    # the restore log is not taken for the item's acquisition record
    [item] = case.evidence_items()
    assert item.acquisition_log is None
    assert item.logs == ()
    # the report still builds and shows the restore event
    report = tmp_path / "report.json"
    rendered = run_bitwitness("report", case.root, "--format", "json", "-o", report)
    assert rendered.exit_code == 0, rendered.stderr
    text = report.read_text()
    assert '"restore"' in text
    assert str(logs[0]) in text


@pytest.mark.root
def test_failing_target_logs_failed_and_exits_2(tmp_path: Path) -> None:
    require_root()
    require_tool("mount", "umount")
    image = tmp_path / "disk.raw"
    image.write_bytes(make_disk_bytes(4 << 20, seed=10))
    small = tmp_path / "small"
    small.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(small)],
                             capture_output=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {mounted.stderr.decode().strip()}")
    try:
        target = small / "t.bin"
        result = run_bitwitness("restore", image, target, "--yes", "--json",
                                "--log", tmp_path / "full")
        assert result.exit_code == 2
        out = result.json()
        assert out["status"] == "failed"
        assert out["verdict"] == "INCOMPLETE"
        doc = json.loads((tmp_path / "full.json").read_text())
        assert doc["status"] == "failed"
        assert "no space" in doc["error"]
        written = doc["target"]["bytes_written"]
        assert written == target.stat().st_size < image.stat().st_size
        assert _digest("sha256sum", target) == _digest("sha256sum", image, written)
    finally:
        subprocess.run(["umount", str(small)], check=False)


def test_unreadable_image_sectors_are_logged_as_ewfverify_finds_them(tmp_path: Path) -> None:
    """An E01 with one damaged chunk: the log says completed-with-errors (exit 1) and lists the
    sectors ewfverify names; the target holds zeros there and the original bytes elsewhere."""
    import hashlib
    import re

    from bitwitness.ewf import EwfMetadata, EwfWriter

    require_tool("ewfverify")
    data = make_disk_bytes(1 << 20, seed=11)
    writer = EwfWriter(tmp_path / "img", media_size=len(data), metadata=EwfMetadata())
    writer.write(data)
    writer.close(md5=hashlib.md5(data, usedforsecurity=False).hexdigest(),
                 sha1=hashlib.sha1(data, usedforsecurity=False).hexdigest())
    e01 = tmp_path / "img.E01"
    damaged = bytearray(e01.read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF  # inside the chunk data
    e01.write_bytes(bytes(damaged))
    proc = subprocess.run(["ewfverify", "-q", str(e01)], capture_output=True, text=True,
                          check=False)
    found = re.findall(r"at sector\(s\): (\d+) - (\d+)", proc.stdout + proc.stderr)
    assert found, proc.stdout
    expected = [{"first_sector": int(a), "sector_count": int(b) - int(a) + 1} for a, b in found]
    target, base = tmp_path / "t.bin", tmp_path / "bad"
    result = run_bitwitness("restore", e01, target, "--yes", "--json", "--log", base)
    assert result.exit_code == 1
    doc = json.loads(base.with_name("bad.json").read_text())
    assert doc["status"] == "completed-with-errors"
    assert doc["read_errors"] == expected
    want = bytearray(data)  # the original bytes, zeros where ewfverify says the image is bad
    for e in expected:
        start, end = e["first_sector"] * 512, (e["first_sector"] + e["sector_count"]) * 512
        want[start:end] = bytes(end - start)
    assert target.read_bytes() == bytes(want)
    assert doc["media"]["hashes"]["md5"] == _digest("md5sum", target)
