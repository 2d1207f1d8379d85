"""Guardrails (issue 18.6): outputs into the kernel's pseudo file systems refused, a source
mounted writable refused unless --allow-mounted, and the kernel read-only flag a killed run
left set: reported with that run's log, held and put back by ``--resume``, cleared on request.
The flag is checked with ``blockdev --getro`` (util-linux), not with our own ioctl."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import require_root, require_tool, run_bitwitness, run_subprocess
from faultydrive.drive import MakeDrive
from faultydrive.faultmap import FaultMap

pytestmark = pytest.mark.root
MIB = 1 << 20


def getro(device: str) -> str:
    return subprocess.run(["blockdev", "--getro", device], capture_output=True, text=True,
                          check=True).stdout.strip()


@pytest.mark.parametrize("where", ["/dev", "/proc", "/sys"])
def test_an_output_inside_a_kernel_tree_is_refused(tmp_path: Path, where: str) -> None:
    src = tmp_path / "disk.bin"
    src.write_bytes(bytes(range(256)) * 64)
    target = Path(where) / f"bitwitness-test-{tmp_path.name}"
    res = run_bitwitness("acquire", src, "-o", target, "--format", "raw")
    assert res.exit_code == 2, res.stderr
    assert f"inside {where}" in res.stderr
    assert not list(Path(where).glob(f"bitwitness-test-{tmp_path.name}*"))


def test_source_and_output_mixed_up_is_refused(faulty_drive: MakeDrive) -> None:
    """The issue's slip: ``acquire /dev/loopN -o /dev/loopN`` wrote .E01/.json/.txt into /dev."""
    drive = faulty_drive(FaultMap(), size=MIB)
    res = run_bitwitness("acquire", drive.device, "-o", drive.device)
    assert res.exit_code == 2, res.stderr
    assert not list(Path("/dev").glob(Path(drive.device).name + ".*"))
    assert getro(drive.device) == "0"


def test_an_output_through_a_link_into_dev_is_refused(tmp_path: Path) -> None:
    src = tmp_path / "disk.bin"
    src.write_bytes(bytes(4096))
    (tmp_path / "link").symlink_to("/dev")
    res = run_bitwitness("acquire", src, "-o", tmp_path / "link" / f"bw-{tmp_path.name}",
                         "--format", "raw")
    assert res.exit_code == 2, res.stderr
    assert not list(Path("/dev").glob(f"bw-{tmp_path.name}*"))


def test_an_output_on_a_procfs_mounted_elsewhere_is_refused(tmp_path: Path) -> None:
    require_root()
    src = tmp_path / "disk.bin"
    src.write_bytes(bytes(4096))
    mnt = tmp_path / "proc"
    mnt.mkdir()
    proc = subprocess.run(["mount", "-t", "proc", "proc", str(mnt)], capture_output=True,
                          text=True, check=False)
    if proc.returncode:
        pytest.skip(f"cannot mount a procfs: {proc.stderr.strip()}")
    try:
        res = run_bitwitness("acquire", src, "-o", mnt / "img", "--format", "raw")
        assert res.exit_code == 2, res.stderr
        assert "a proc file system" in res.stderr
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


_KILLED = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    import bitwitness.acquire.pipeline as pl
    from bitwitness.acquire.engine import AcquisitionRequest, OutputFormat, acquire
    from bitwitness.progress import NullMediator

    device, base = sys.argv[1:3]
    real_write = pl.Pipeline._write

    def dying_write(self, block, future):
        done = real_write(self, block, future)
        if done >= 3 << 20:
            os.kill(os.getpid(), signal.SIGKILL)  # no final log, no cleanup
        return done

    pl.Pipeline._write = dying_write
    acquire(AcquisitionRequest(source=device, output=Path(base), format=OutputFormat.RAW,
                               hashes=("md5",), block_size=256 * 1024,
                               checkpoint_every=1 << 20), NullMediator())
    sys.exit("not killed")
""")


def _killed_run(device: str, base: Path) -> None:
    proc = subprocess.run([sys.executable, "-c", _KILLED, device, str(base)],
                          capture_output=True, text=True, check=False, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr


def test_a_flag_left_by_a_killed_run_is_reported_kept_and_put_back_by_resume(
        faulty_drive: MakeDrive, tmp_path: Path) -> None:
    require_tool("blockdev", "md5sum")
    drive = faulty_drive(FaultMap(), size=8 * MIB)
    assert getro(drive.device) == "0"
    _killed_run(drive.device, tmp_path / "killed")
    assert getro(drive.device) == "1"  # left set: the safe state

    # another acquisition meanwhile: told who left the flag, and it stays set
    res = run_bitwitness("acquire", drive.device, "-o", tmp_path / "other", "--format", "raw")
    assert res.exit_code == 0, res.stderr
    earlier = str(tmp_path / "killed.json")
    assert "left set by an earlier BitWitness run" in res.stderr
    assert earlier in res.stderr
    other = json.loads((tmp_path / "other.json").read_text())
    flag = other["source"]["readonly_flag"]
    assert (flag["was"], flag["set"], flag["restored"]) == (True, False, False)
    assert earlier in flag["detail"]
    assert any(earlier in w for w in other["warnings"])
    assert getro(drive.device) == "1"

    # resuming the killed run: the state before BitWitness first touched it comes back
    res = run_bitwitness("acquire", drive.device, "-o", tmp_path / "killed", "--resume")
    assert res.exit_code == 0, res.stderr
    assert getro(drive.device) == "0"
    log = json.loads((tmp_path / "killed.json").read_text())
    flag = log["source"]["readonly_flag"]
    assert (flag["was"], flag["set"], flag["restored"]) == (False, True, True)
    assert earlier in flag["detail"]
    md5 = subprocess.run(["md5sum", str(drive.backing)], capture_output=True, text=True,
                         check=True).stdout.split()[0]
    assert log["media"]["hashes"]["md5"] == md5
    assert (tmp_path / "killed.raw").read_bytes() == drive.data


def test_a_flag_left_by_a_killed_run_is_cleared_on_request(faulty_drive: MakeDrive,
                                                           tmp_path: Path) -> None:
    require_tool("blockdev")
    drive = faulty_drive(FaultMap(), size=8 * MIB)
    _killed_run(drive.device, tmp_path / "killed")
    assert getro(drive.device) == "1"
    res = run_bitwitness("devices", "--restore-readonly", drive.device)
    assert res.exit_code == 0, res.stderr
    assert str(tmp_path / "killed.json") in res.stdout.replace("\n", "")
    assert getro(drive.device) == "0"
    # a flag BitWitness did not set is someone's decision: not touched
    subprocess.run(["blockdev", "--setro", drive.device], check=True)
    res = run_bitwitness("devices", "--restore-readonly", drive.device)
    assert res.exit_code == 2
    assert getro(drive.device) == "1"
    subprocess.run(["blockdev", "--setrw", drive.device], check=True)


def test_nothing_set_is_never_logged_as_restored(faulty_drive: MakeDrive,
                                                 tmp_path: Path) -> None:
    drive = faulty_drive(FaultMap(), size=MIB)
    subprocess.run(["blockdev", "--setro", drive.device], check=True)
    try:
        res = run_subprocess("acquire", drive.device, "-o", tmp_path / "img", "--format", "raw")
        assert res.exit_code == 0, res.stderr
        flag = json.loads((tmp_path / "img.json").read_text())["source"]["readonly_flag"]
        assert (flag["was"], flag["set"], flag["restored"]) == (True, False, False)
        text = (tmp_path / "img.txt").read_text()
        assert "restored True" not in text
    finally:
        subprocess.run(["blockdev", "--setrw", drive.device], check=True)


def test_the_device_list_names_a_flag_a_killed_run_left_set(faulty_drive: MakeDrive,
                                                            tmp_path: Path) -> None:
    """``bitwitness devices`` (a loop device, SIGKILLed acquisition): the flag blockdev reports
    set is listed as BitWitness's, with the killed run's log and the command that puts it back;
    once put back, blockdev reports it clear and the list no longer names it."""
    require_tool("blockdev")
    drive = faulty_drive(FaultMap(), size=8 * MIB)
    assert getro(drive.device) == "0"
    _killed_run(drive.device, tmp_path / "killed")
    assert getro(drive.device) == "1"
    earlier = str(tmp_path / "killed.json")

    res = run_bitwitness("devices", "--json")
    assert res.exit_code == 0, res.stderr
    entry = next(d for d in res.json()["devices"] if d["path"] == drive.device)
    assert entry["readonly"] is True
    left = entry["readonly_left_by_bitwitness"]
    assert left is not None
    assert (left["log"], left["was"]) == (earlier, False)
    res = run_bitwitness("devices")
    assert res.exit_code == 0, res.stderr
    text = res.stdout.replace("\n", " ")
    assert f"{drive.device}: read-only flag left set by an earlier BitWitness run" in text
    assert earlier in res.stdout.replace("\n", "")
    assert f"--restore-readonly {drive.device}" in text

    res = run_bitwitness("devices", "--restore-readonly", drive.device)
    assert res.exit_code == 0, res.stderr
    assert getro(drive.device) == "0"
    entry = next(d for d in run_bitwitness("devices", "--json").json()["devices"]
                 if d["path"] == drive.device)
    assert (entry["readonly"], entry["readonly_left_by_bitwitness"]) == (False, None)
