"""``bitwitness mount`` / ``umount``: the image as a read-only FUSE file system.

Checked against independent tools reading through the mount: ``sha256sum`` and ``cmp`` against
the image itself, ``mmls`` and ``fls`` against the same tools on the image, ``qemu-img info``,
the kernel's own ext4 and vfat drivers (``mount -o ro,loop`` of a partition file), ``icat``
for file contents; writes through every path are refused with EROFS, and the evidence's bytes
and times (on a strictatime file system) are compared before and after.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import REPO, require_root, require_tool, run_bitwitness, sha256_of, snapshot
from test_browse_disks import EXT_START, Disks, make_disks

pytestmark = pytest.mark.slow


def require_fuse() -> None:
    if not Path("/dev/fuse").exists():
        pytest.skip("/dev/fuse is missing (no FUSE in this kernel or container)")
    require_tool("fusermount3")


@pytest.fixture(scope="module")
def disks(tmp_path_factory: pytest.TempPathFactory) -> Disks:
    return make_disks(tmp_path_factory)


def _mounts() -> str:
    return Path("/proc/self/mountinfo").read_text()


def _wait(predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.05)


def _is_mount(path: Path) -> bool:
    escaped = str(path).replace("\\", "\\134").replace(" ", "\\040")
    return f" {escaped} " in _mounts()


class Foreground:
    """``bitwitness mount`` in the foreground as a child process (what a user runs)."""

    def __init__(self, image: Path, mountpoint: Path, *args: str) -> None:
        self.mountpoint = mountpoint
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bitwitness", "mount", str(image), str(mountpoint), *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
        try:
            _wait(lambda: (_is_mount(mountpoint) and (mountpoint / "media.raw").exists())
                  or self.proc.poll() is not None)
        except AssertionError:
            self.stop()
            raise
        if self.proc.poll() is not None:
            raise AssertionError(f"mount failed: {self.proc.stderr.read()}")

    def stop(self, sig: int = signal.SIGINT) -> tuple[int, str, str]:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            out, err = self.proc.communicate(timeout=30)
        finally:
            if _is_mount(self.mountpoint):
                subprocess.run(["fusermount3", "-u", "-z", str(self.mountpoint)], check=False)
        return self.proc.returncode, out, err


@pytest.fixture
def mounted(disks: Disks, tmp_path: Path) -> Iterator[Path]:
    require_fuse()
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    fg = Foreground(disks.gpt, mnt, "--files")
    yield mnt
    code, _, err = fg.stop()
    assert code == 0, err
    assert not _is_mount(mnt)


def test_media_and_partitions_read_by_independent_tools(mounted: Path, disks: Disks,
                                                        tmp_path: Path) -> None:
    require_tool("sha256sum", "mmls", "fls", "qemu-img")
    media = mounted / "media.raw"
    out = subprocess.run(["sha256sum", str(media)], capture_output=True, text=True,
                         check=True).stdout
    assert out.split()[0] == sha256_of(disks.gpt)
    ours = subprocess.run(["mmls", str(media)], capture_output=True, text=True, check=True).stdout
    theirs = subprocess.run(["mmls", str(disks.gpt)], capture_output=True, text=True,
                            check=True).stdout
    assert ours == theirs
    fls = ["fls", "-r", "-p", "-o", str(EXT_START)]
    assert subprocess.run([*fls, str(media)], capture_output=True, check=True).stdout == \
        subprocess.run([*fls, str(disks.gpt)], capture_output=True, check=True).stdout
    info = json.loads(subprocess.run(["qemu-img", "info", "--output=json", str(media)],
                                     capture_output=True, text=True, check=True).stdout)
    assert info["virtual-size"] == disks.gpt.stat().st_size
    assert info["format"] == "raw"
    # partitions/N.raw: N and extent as 'bitwitness partitions' (and mmls) give them
    layout = run_bitwitness("partitions", disks.gpt, "--json").json()
    data = disks.gpt.read_bytes()
    expected = {f"{p['index']}.raw": data[p["start"] * 512:(p["end"] + 1) * 512]
                for p in layout["partitions"] if p["kind"] == "partition"}
    assert sorted(p.name for p in (mounted / "partitions").iterdir()) == sorted(expected)
    for name, content in expected.items():
        got = (mounted / "partitions" / name).read_bytes()
        assert hashlib.sha256(got).hexdigest() == hashlib.sha256(content).hexdigest(), name


def _kernel_has(fstype: str) -> bool:
    return any(line.split()[-1] == fstype
               for line in Path("/proc/filesystems").read_text().splitlines() if line.strip())


@pytest.mark.parametrize(("part", "fstype", "probe", "expected"), [
    ("5.raw", "ext4", "home/ana/notes.txt", b"notes of ana\n"),
    ("4.raw", "vfat", "docs/hello.txt", b"hello\n"),
])
def test_partition_files_mount_with_the_kernel(mounted: Path, tmp_path: Path, *, part: str,
                                              fstype: str, probe: str, expected: bytes) -> None:
    require_root()
    if not _kernel_has(fstype):
        pytest.skip(f"this kernel has no {fstype} driver")
    inner = tmp_path / "inner"
    inner.mkdir()
    done = subprocess.run(["mount", "-t", fstype, "-o", "ro,loop",
                           str(mounted / "partitions" / part), str(inner)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0 and "loop" in done.stderr:
        pytest.skip(f"no loop devices here: {done.stderr.strip()}")
    assert done.returncode == 0, done.stderr
    try:
        assert (inner / probe).read_bytes() == expected
    finally:
        subprocess.run(["umount", str(inner)], check=True)


def test_file_trees_with_deleted_files_and_times(mounted: Path, disks: Disks) -> None:
    require_tool("icat", "ifind")
    files = mounted / "files"
    assert sorted(p.name for p in files.iterdir()) == ["4", "4.deleted", "5", "5.deleted"]
    for path, content in disks.ext_files.items():
        assert (files / "5" / path.lstrip("/")).read_bytes() == content, path
    for path, content in disks.fat_files.items():
        assert (files / "4" / path.lstrip("/")).read_bytes() == content, path
    # the deleted ext4 file sits in the deleted folder at its former path; its bytes are
    # what icat recovers from its inode (ext4 may have cleared the block pointers: then empty)
    gone = files / "5.deleted" / "home" / "ana" / "gone.txt"
    assert gone.exists()
    assert not (files / "5" / "home" / "ana" / "gone.txt").exists()
    inode = subprocess.run(["ifind", "-o", str(EXT_START), "-n", "/home/ana/gone.txt",
                            str(disks.gpt)], capture_output=True, text=True, check=True)
    recovered = subprocess.run(["icat", "-o", str(EXT_START), str(disks.gpt),
                                inode.stdout.strip()], capture_output=True, check=True).stdout
    assert gone.read_bytes() == recovered
    assert any(p.name.endswith("odelete.txt") for p in (files / "4.deleted").iterdir())
    # sizes and times from the file system (as 'bitwitness stat' reports them)
    notes = run_bitwitness("stat", disks.gpt, "-p", "5", "/home/ana/notes.txt", "--json").json()
    st = (files / "5" / "home" / "ana" / "notes.txt").stat()
    entry = notes.get("entry", notes)
    assert st.st_size == entry["size"]
    modified = entry["modified"].replace("Z", "+00:00")
    from datetime import datetime

    assert abs(st.st_mtime - datetime.fromisoformat(modified).timestamp()) < 1e-3
    assert (files / "5" / "home" / "ana" / "link").read_bytes() == b"notes.txt"
    # a time the evidence does not record (FAT's virtual $MBR) is the epoch, never the image
    # file's own time
    assert (files / "4" / "$MBR").stat().st_mtime == 0


def test_every_write_is_refused_and_evidence_untouched(mounted: Path, disks: Disks) -> None:
    before = snapshot([disks.gpt])
    media = mounted / "media.raw"
    target = mounted / "files" / "5" / "home" / "ana" / "notes.txt"
    attempts = {
        "write": lambda: media.open("r+b").write(b"x"),
        "append": lambda: media.open("ab").write(b"x"),
        "truncate": lambda: os.truncate(media, 0),
        "create": lambda: (mounted / "new.txt").write_bytes(b"x"),
        "mkdir": (mounted / "folder").mkdir,
        "chmod": lambda: media.chmod(0o777),
        "chown": lambda: os.chown(media, 1, 1),
        "rename": lambda: media.rename(mounted / "other.raw"),
        "unlink": media.unlink,
        "utime": lambda: os.utime(media, (0, 0)),
        "symlink": lambda: (mounted / "l").symlink_to("media.raw"),
        "write-file": lambda: target.write_bytes(b"changed"),
        "rmdir": (mounted / "partitions").rmdir,
        "setxattr": lambda: os.setxattr(media, "user.x", b"1"),
    }
    for name, attempt in attempts.items():
        with pytest.raises(OSError, match="Read-only file system") as caught:
            attempt()
        assert caught.value.errno == errno.EROFS, name
    assert not os.access(media, os.W_OK)
    assert (mounted / "files" / "5" / "home" / "ana" / "notes.txt").read_bytes() == \
        b"notes of ana\n"
    assert snapshot([disks.gpt]) == before


def test_concurrent_random_reads_are_exact(mounted: Path, disks: Disks) -> None:
    """Threads reading media.raw and files at once (the mount serves them on several FUSE
    threads) all get exactly the image's bytes."""
    import random

    data = disks.gpt.read_bytes()
    errors: list[str] = []

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        fd = os.open(mounted / "media.raw", os.O_RDONLY)
        try:
            for _ in range(300):
                size = rng.choice([1, 511, 4096, 65536, 300_000])
                offset = rng.randrange(0, len(data))
                got = os.pread(fd, size, offset)
                if got != data[offset:offset + size]:
                    errors.append(f"{offset}+{size}")
        finally:
            os.close(fd)

    big = disks.ext_files["/home/ana/projects/big.bin"]
    secret = disks.fat_files["/docs/deep/secret.txt"]

    def file_worker(seed: int) -> None:  # file contents come through pytsk3, under its lock
        rng = random.Random(seed)
        for _ in range(100):
            path, content = rng.choice([
                (mounted / "files/5/home/ana/projects/big.bin", big),
                (mounted / "files/4/docs/deep/secret.txt", secret)])
            offset = rng.randrange(len(content))
            with path.open("rb") as fh:
                fh.seek(offset)
                if fh.read(5000) != content[offset:offset + 5000]:
                    errors.append(f"{path.name}@{offset}")

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    threads += [threading.Thread(target=file_worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


@pytest.fixture
def strict_atime_dir(tmp_path: Path) -> Iterator[Path]:
    """A small ext4 loop-mounted with strictatime: any read that is not O_NOATIME moves atime."""
    require_root()
    require_tool("mkfs.ext4")
    backing = tmp_path / "atime.fs"
    subprocess.run(["truncate", "-s", "64M", str(backing)], check=True)
    subprocess.run(["mkfs.ext4", "-q", "-F", str(backing)], check=True)
    where = tmp_path / "atime"
    where.mkdir()
    done = subprocess.run(["mount", "-o", "loop,strictatime", str(backing), str(where)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot loop-mount here: {done.stderr.strip()}")
    try:
        # the mount does record reads: a test finding atime unchanged proves something
        probe = where / ".probe"
        probe.write_bytes(b"x")
        os.utime(probe, ns=(1_000_000_000, 2_000_000_000))
        probe.read_bytes()
        assert probe.stat().st_atime_ns != 1_000_000_000
        probe.unlink()
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=False)


@pytest.mark.parametrize("fmt", ["raw", "e01"])
def test_image_bytes_and_times_unchanged(strict_atime_dir: Path, disks: Disks, tmp_path: Path,
                                         fmt: str) -> None:
    require_fuse()
    if fmt == "raw":
        image = strict_atime_dir / "disk.img"
        image.write_bytes(disks.ext4.read_bytes())
    else:
        made = run_bitwitness("acquire", disks.ext4, "-o", strict_atime_dir / "disk")
        assert made.exit_code == 0, made.stderr
        image = strict_atime_dir / "disk.E01"
    os.utime(image, ns=(1_000_000_000, 2_000_000_000))  # atime older than mtime
    stat_before = image.stat()
    digest = hashlib.sha256(image.read_bytes()).hexdigest()
    os.utime(image, ns=(stat_before.st_atime_ns, stat_before.st_mtime_ns))
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    fg = Foreground(image, mnt, "--files")
    try:
        assert sha256_of(mnt / "media.raw") == sha256_of(disks.ext4)
        assert len(list((mnt / "files").rglob("*"))) > 5
    finally:
        code, _, err = fg.stop()
    assert code == 0, err
    after = image.stat()
    assert (after.st_mtime_ns, after.st_atime_ns, after.st_size) == (
        stat_before.st_mtime_ns, stat_before.st_atime_ns, stat_before.st_size)
    with image.open("rb") as fh:  # this read may move atime; it is the last one
        assert hashlib.sha256(fh.read()).hexdigest() == digest


def test_background_mount_umount_and_custody(disks: Disks, tmp_path: Path) -> None:
    require_fuse()
    case_dir = tmp_path / "case"
    made = run_bitwitness("case", "new", case_dir, "--set", "case_number=C-20",
                          "--set", "examiner=Ann Example")
    assert made.exit_code == 0, made.stderr
    src = tmp_path / "stick.img"
    src.write_bytes(disks.ext4.read_bytes())
    acquired = run_bitwitness("acquire", src, "--case", case_dir, "--evidence", "usb01")
    assert acquired.exit_code == 0, acquired.stderr
    image = case_dir / "evidence" / "usb01" / "usb01.E01"
    before = snapshot([image])
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    cmd = [sys.executable, "-m", "bitwitness"]
    # no --case: the image lies in a case folder, which is found
    done = subprocess.run([*cmd, "mount", str(image), str(mnt), "--background"],
                          capture_output=True, text=True, timeout=120, check=False, cwd=REPO)
    assert done.returncode == 0, done.stderr
    try:
        assert _is_mount(mnt)
        assert sha256_of(mnt / "media.raw") == sha256_of(src)
        # busy: a second mount on the same folder, and an unmount while a process works inside
        again = subprocess.run([*cmd, "mount", str(image), str(mnt)], capture_output=True,
                               text=True, check=False, cwd=REPO)
        assert again.returncode == 2
        assert len(again.stderr.strip().splitlines()) == 1
        assert "busy" in again.stderr
        holder = subprocess.Popen(["sleep", "30"], cwd=mnt)
        try:
            busy = subprocess.run([*cmd, "umount", str(mnt)], capture_output=True, text=True,
                                  check=False, cwd=REPO)
        finally:
            holder.kill()
            holder.wait()
        assert busy.returncode == 2, busy.stderr
        assert len(busy.stderr.strip().splitlines()) == 1
        assert _is_mount(mnt)
    finally:
        gone = subprocess.run([*cmd, "umount", str(mnt)], capture_output=True, text=True,
                              check=False, cwd=REPO)
    assert gone.returncode == 0, gone.stderr
    assert not _is_mount(mnt)
    events = [json.loads(line) for line in (case_dir / "custody.jsonl").read_text().splitlines()]
    actions = [(e["action"], e["evidence_id"]) for e in events]
    assert actions[-2:] == [("mount", "usb01"), ("unmount", "usb01")]
    assert events[-2]["details"]["mountpoint"] == str(mnt)
    assert events[-2]["details"]["image"] == str(image)
    # the same item named by case and evidence ID instead of by path
    done = subprocess.run([*cmd, "mount", "--case", str(case_dir), "--evidence", "usb01",
                           str(mnt), "--background"], capture_output=True, text=True,
                          timeout=120, check=False, cwd=REPO)
    assert done.returncode == 0, done.stderr
    try:
        assert sha256_of(mnt / "media.raw") == sha256_of(src)
    finally:
        gone = subprocess.run([*cmd, "umount", str(mnt)], capture_output=True, text=True,
                              check=False, cwd=REPO)
    assert gone.returncode == 0, gone.stderr
    events = [json.loads(line) for line in (case_dir / "custody.jsonl").read_text().splitlines()]
    assert [e["action"] for e in events[-4:]] == ["mount", "unmount", "mount", "unmount"]
    assert events[-2]["details"]["image"] == str(image)
    wrong = run_bitwitness("mount", "--case", case_dir, "--evidence", "usb99", mnt)
    assert wrong.exit_code == 2
    assert "no evidence item 'usb99'" in wrong.stderr
    assert run_bitwitness("custody", "verify", case_dir).exit_code == 0
    assert snapshot([image]) == before


def test_stale_and_unusable_mount_points_are_one_line_errors(disks: Disks,
                                                             tmp_path: Path) -> None:
    require_fuse()
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    fg = Foreground(disks.ext4, mnt)
    os.kill(fg.proc.pid, signal.SIGKILL)  # the server dies: the mount point goes stale
    fg.proc.wait()
    try:
        assert _is_mount(mnt)
        with pytest.raises(OSError, match="not connected") as caught:
            mnt.stat()
        assert caught.value.errno == errno.ENOTCONN
        stale = run_bitwitness("mount", disks.ext4, mnt)
        assert stale.exit_code == 2
        assert "stale" in stale.stderr
        assert len(stale.stderr.strip().splitlines()) == 1
        cleaned = run_bitwitness("umount", mnt)
        assert cleaned.exit_code == 0, cleaned.stderr
        assert not _is_mount(mnt)
    finally:
        subprocess.run(["fusermount3", "-u", "-z", str(mnt)], check=False,
                       capture_output=True)
    (mnt / "x").write_text("x")
    not_empty = run_bitwitness("mount", disks.ext4, mnt)
    assert not_empty.exit_code == 2
    assert "not empty" in not_empty.stderr
    missing = run_bitwitness("mount", disks.ext4, tmp_path / "nowhere")
    assert missing.exit_code == 2
    assert len(missing.stderr.strip().splitlines()) == 1
    not_ours = run_bitwitness("umount", tmp_path)
    assert not_ours.exit_code == 2
    assert "nothing is mounted" in not_ours.stderr


def test_sigterm_unmounts_cleanly(disks: Disks, tmp_path: Path) -> None:
    require_fuse()
    mnt = tmp_path / "mount point ü"  # mountinfo escapes the space; the name is UTF-8
    mnt.mkdir()
    fg = Foreground(disks.ext4, mnt)
    again = run_bitwitness("mount", disks.ext4, mnt)
    assert again.exit_code == 2
    assert "busy" in again.stderr
    code, out, err = fg.stop(signal.SIGTERM)
    assert code == 0, err
    assert "unmounted" in out
    assert err == ""  # nothing but what we print: libfuse's noise line is filtered
    assert not _is_mount(mnt)


def test_third_party_images_mount_with_their_recorded_hashes(third_party: Path,
                                                             manifest: dict,
                                                             tmp_path: Path) -> None:
    """Every container format of the held images (E01 sets, split raw, VHD, VMDK, raw): the
    mounted media.raw hashes (sha256sum) to the manifest's media hash, or for VHD and VMDK
    (whose manifest hashes are of the container file) to qemu-img's conversion to raw."""
    require_fuse()
    require_tool("sha256sum", "qemu-img")
    checked = []
    for name, item in manifest.items():
        if not item.get("sha256"):
            continue
        files = [third_party / f for f in item["files"]]
        expected = item["sha256"]
        if "container file" in item.get("filesystem", ""):
            converted = tmp_path / "converted.raw"
            subprocess.run(["qemu-img", "convert", "-O", "raw", str(files[0]), str(converted)],
                           check=True)
            expected = sha256_of(converted)
            converted.unlink()
        before = snapshot(files)
        mnt = tmp_path / f"mnt-{len(checked)}"
        mnt.mkdir()
        fg = Foreground(third_party / name, mnt)
        try:
            out = subprocess.run(["sha256sum", str(mnt / "media.raw")], capture_output=True,
                                 text=True, check=True).stdout
        finally:
            code, _, err = fg.stop()
        assert code == 0, err
        assert out.split()[0] == expected, name
        assert snapshot(files) == before
        checked.append(name)
    assert len(checked) >= 5


def test_ntfs_streams_appear_as_name_colon_stream(third_party: Path, tmp_path: Path) -> None:
    """An NTFS E01 (made by another tool): ``$Secure:$SDS`` reads as ``icat 9-128-8`` does."""
    require_fuse()
    require_tool("icat")
    image = third_party / "tsk_imageformat_mmls_1.E01"
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    fg = Foreground(image, mnt, "--files")
    try:
        root = mnt / "files" / "2"
        names = {p.name for p in root.iterdir()}
        assert {"$Secure:$SDS", "$Secure:$SDH", "$Secure:$SII", "$MFT"} <= names
        assert "$Secure" not in names  # fls lists its streams only, and so do we
        expected = subprocess.run(["icat", "-o", "128", str(image), "9-128-8"],
                                  capture_output=True, check=True).stdout
        assert (root / "$Secure:$SDS").read_bytes() == expected
        assert (root / "$Secure:$SDS").stat().st_size == len(expected)
    finally:
        code, _, err = fg.stop()
    assert code == 0, err


def test_kernel_reads_ahead_a_mebibyte_on_our_mount(mounted: Path) -> None:
    """As root, the mount's backing device reads ahead 1 MiB (the kernel's FUSE default is
    128 KiB), so sequential readers reach the server in 1 MiB requests."""
    require_root()
    escaped = str(mounted).replace("\\", "\\134").replace(" ", "\\040")
    device = next(line.split()[2] for line in _mounts().splitlines()
                  if line.split()[4] == escaped)
    assert Path(f"/sys/class/bdi/{device}/read_ahead_kb").read_text().strip() == "1024"
