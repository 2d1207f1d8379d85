"""Reading evidence changes nothing, not even its access time (issue 14, point 5).

The evidence lives on an ext4 file system loop-mounted with ``strictatime``, where every read
through a descriptor opened without ``O_NOATIME`` updates the access time (the test proves that
first with a plain ``open``). Every read-only command is then run on the sample disk as raw,
split raw, E01 (written by ewfacquire), VHD and VMDK (written by qemu-img), OVA (a tar of a
descriptor and a stream-optimized VMDK), and every file of the
image must keep its content, mtime and atime. Needs root (mount); skipped cleanly otherwise.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import require_root, require_tool, run_bitwitness

from bitwitness.image import image_files
from bitwitness.sample import materialize

#: An access time well before every other time of the files: any read would move it.
OLD = 1_000_000_000


@pytest.fixture(scope="module")
def strict_mount(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    require_root()
    require_tool("mkfs.ext4", "mount", "umount")
    base = tmp_path_factory.mktemp("atime")
    backing = base / "fs.img"
    with backing.open("wb") as fh:
        fh.truncate(400 << 20)
    subprocess.run(["mkfs.ext4", "-q", "-F", str(backing)], check=True)
    mnt = base / "mnt"
    mnt.mkdir()
    done = subprocess.run(["mount", "-o", "loop,strictatime", str(backing), str(mnt)],
                          capture_output=True, text=True, check=False)
    if done.returncode:
        pytest.skip(f"cannot loop-mount a file system here: {done.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


@pytest.fixture(scope="module")
def images(strict_mount: Path) -> dict[str, Path]:
    """The sample disk in every format, on the strictatime mount."""
    require_tool("ewfacquire", "qemu-img", "split")
    raw = materialize(strict_mount / "disk.img")
    split_dir = strict_mount / "split"
    split_dir.mkdir()
    subprocess.run(["split", "-d", "-a", "3", "--numeric-suffixes=1", "-b", "16M", str(raw),
                    str(split_dir / "disk.")], check=True)
    e01_dir = strict_mount / "e01"
    e01_dir.mkdir()
    subprocess.run(["ewfacquire", "-u", "-q", "-t", str(e01_dir / "disk"), "-c", "none",
                    "-S", "16M", str(raw)], check=True, capture_output=True)
    vhd = strict_mount / "disk.vhd"
    subprocess.run(["qemu-img", "convert", "-O", "vpc", "-o", "subformat=dynamic,force_size=on",
                    str(raw), str(vhd)], check=True)
    vmdk = strict_mount / "disk.vmdk"
    subprocess.run(["qemu-img", "convert", "-O", "vmdk", str(raw), str(vmdk)], check=True)
    ova_dir = strict_mount / "ova"  # a VM export: descriptor, stream-optimized disk, in a tar
    ova_dir.mkdir()
    (ova_dir / "vm.ovf").write_text('<?xml version="1.0"?>\n<Envelope/>\n')
    subprocess.run(["qemu-img", "convert", "-O", "vmdk", "-o", "subformat=streamOptimized",
                    str(raw), str(ova_dir / "vm-disk1.vmdk")], check=True)
    ova = strict_mount / "vm.ova"
    subprocess.run(["tar", "--format=ustar", "-cf", str(ova), "-C", str(ova_dir), "vm.ovf",
                    "vm-disk1.vmdk"], check=True)
    return {"raw": raw, "split": split_dir / "disk.001", "e01": e01_dir / "disk.E01",
            "vhd": vhd, "vmdk": vmdk, "ova": ova}


def _state(files: list[Path]) -> dict[Path, tuple[str, int, int]]:
    out = {}
    for path in files:
        digest = hashlib.sha256()
        fd = os.open(path, os.O_RDONLY | os.O_NOATIME)  # the check itself must not move atime
        with os.fdopen(fd, "rb") as fh:
            while block := fh.read(1 << 20):
                digest.update(block)
        st = path.stat()
        out[path] = (digest.hexdigest(), st.st_mtime_ns, st.st_atime_ns)
    return out


def _age(files: list[Path]) -> None:
    for path in files:
        os.utime(path, ns=(OLD * 10**9, path.stat().st_mtime_ns))


def test_the_mount_records_every_read(strict_mount: Path) -> None:
    """Without this, the checks below could not fail: a plain read moves the access time."""
    probe = strict_mount / "probe.bin"
    probe.write_bytes(b"x" * 4096)
    _age([probe])
    with probe.open("rb") as fh:
        fh.read()
    assert probe.stat().st_atime_ns > OLD * 10**9


COMMANDS = {
    "verify": lambda img, out: ["verify", img],
    "info": lambda img, out: ["info", img],
    "partitions": lambda img, out: ["partitions", img],
    "ls": lambda img, out: ["ls", "-p", "2", img, "/Documents"],
    "cat": lambda img, out: ["cat", "-p", "2", img, "/README.TXT"],
    "stat": lambda img, out: ["stat", "-p", "2", img, "/README.TXT"],
    "timeline": lambda img, out: ["timeline", "-p", "2", img],
    "export": lambda img, out: ["export", "-p", "2", img, "/Documents", "--to", out],
}


@pytest.mark.slow
@pytest.mark.root
@pytest.mark.parametrize("fmt", ["raw", "split", "e01", "vhd", "vmdk", "ova"])
def test_read_only_commands_keep_content_mtime_and_atime(fmt: str, images: dict[str, Path],
                                                         tmp_path: Path) -> None:
    image = images[fmt]
    files = image_files(image)
    assert files, fmt
    if fmt in ("split", "e01"):
        assert len(files) > 1, files  # every piece of the set is checked
    _age(files)
    before = _state(files)
    commands = dict(COMMANDS)
    if fmt == "e01":  # the second reader, libewf, reads through the same opener
        commands["verify --libewf"] = lambda img, out: ["verify", "--libewf", img]
    for name, args in commands.items():
        out = tmp_path / name
        result = run_bitwitness(*args(image, out))
        # raw/VHD/VMDK record no hash: verify says UNVERIFIED (exit 1)
        allowed = (0, 1) if name == "verify" else (0,)
        assert result.exit_code in allowed, (fmt, name, result.stdout[-500:], result.stderr)
        after = _state(files)
        changed = {p.name: (before[p], after[p]) for p in files if before[p] != after[p]}
        assert not changed, f"{name} on {fmt} changed {changed}"
    shutil.rmtree(tmp_path, ignore_errors=True)


@pytest.mark.root
def test_verify_keeps_the_times_of_the_hash_logs_it_reads(strict_mount: Path) -> None:
    """The logs beside an image are evidence too: an md5sum sidecar and our acquisition log,
    read by verify (and info), keep content, mtime and atime."""
    folder = strict_mount / "logs"
    folder.mkdir()
    source = folder / "src.bin"
    source.write_bytes(os.urandom(1 << 20))
    result = run_bitwitness("acquire", source, "-o", folder / "ev", "--format", "raw",
                            "--hash", "md5,sha1")
    assert result.exit_code == 0, result.stderr
    logs = [folder / "ev.md5", folder / "ev.sha1", folder / "ev.json"]
    assert all(p.is_file() for p in logs), sorted(folder.iterdir())
    _age(logs)
    before = _state(logs)
    for args in (["verify", folder / "ev.raw"], ["info", folder / "ev.raw"]):
        assert run_bitwitness(*args).exit_code == 0
        assert _state(logs) == before, args


def _second_reader_images(folder: Path) -> dict[str, list[Path]]:
    """Images whose independent second reader is an outside program that opens files itself:
    QEMU (QCOW2 and one of its internal snapshots, QED over a QED over a raw file, VDI,
    Parallels, VHDX, an OVA's disk), affcat (AFF), simg2img (Android sparse). Each: the image's
    files, the first the one to verify."""
    require_tool("qemu-img", "qemu-nbd", "qemu-io", "affconvert", "affcat", "img2simg",
                 "simg2img")
    raw = materialize(folder / "disk.img")
    made: dict[str, list[Path]] = {}
    base = folder / "base.raw"
    shutil.copyfile(raw, base)
    for name, fmt in (("qcow2", "qcow2"), ("qed", "qed"), ("vdi", "vdi"), ("hds", "parallels"),
                      ("vhdx", "vhdx")):
        image = folder / f"disk.{name}"
        subprocess.run(["qemu-img", "convert", "-O", fmt, str(raw), str(image)], check=True)
        made[name] = [image]
    middle, top = folder / "middle.qed", folder / "top.qed"
    for image, below, fmt in ((middle, base, "raw"), (top, middle, "qed")):
        subprocess.run(["qemu-img", "create", "-q", "-f", "qed", "-b", below.name, "-F", fmt,
                        str(image)], check=True, cwd=folder)
    subprocess.run(["qemu-io", "-c", "write -P 0xab 1M 64k", str(top)], check=True,
                   capture_output=True)
    made["qed chain"] = [top, middle, base]
    aff = folder / "disk.aff"
    subprocess.run(["affconvert", "-q", "-o", str(aff), str(base)], check=True,
                   capture_output=True)  # (affconvert refuses a source named .img)
    made["aff"] = [aff]
    simg = folder / "disk.simg"
    subprocess.run(["img2simg", str(raw), str(simg)], check=True, capture_output=True)
    made["android-sparse"] = [simg]
    snapshotted = folder / "snapshots.qcow2"  # QEMU applies a snapshot on its copy first
    shutil.copyfile(made["qcow2"][0], snapshotted)
    subprocess.run(["qemu-img", "snapshot", "-c", "one", str(snapshotted)], check=True)
    subprocess.run(["qemu-io", "-c", "write -P 0xcd 0 64k", str(snapshotted)], check=True,
                   capture_output=True)
    made["qcow2 snapshot"] = [snapshotted]
    ova_dir = folder / "ova"
    ova_dir.mkdir()
    (ova_dir / "vm.ovf").write_text('<?xml version="1.0"?>\n<Envelope/>\n')
    subprocess.run(["qemu-img", "convert", "-O", "vmdk", "-o", "subformat=streamOptimized",
                    str(raw), str(ova_dir / "vm-disk1.vmdk")], check=True)
    ova = folder / "vm.ova"  # QEMU reads the disk's window of the archive
    subprocess.run(["tar", "--format=ustar", "-cf", str(ova), "-C", str(ova_dir), "vm.ovf",
                    "vm-disk1.vmdk"], check=True)
    made["ova"] = [ova]
    return made


@pytest.mark.root
def test_outside_second_readers_keep_content_mtime_and_atime(strict_mount: Path) -> None:
    """``verify --second-reader`` where the second reader is an outside program: it is
    handed copies made through the read-only opener (evidence_io.copies_for), so the evidence
    keeps its access time; the second reading still agrees. QEMU and affcat were given the
    evidence itself, and its access time moved."""
    folder = strict_mount / "second"
    folder.mkdir()
    for kind, files in _second_reader_images(folder).items():
        _age(files)
        before = _state(files)
        extra = ["--snapshot", "one"] if kind == "qcow2 snapshot" else []
        result = run_bitwitness("verify", "--second-reader", *extra, files[0], "--json")
        assert result.exit_code in (0, 1), (kind, result.stderr)
        reader = result.json()["images"][0]["second_reader"]
        assert reader is not None, kind
        assert reader["agree"] is True, (kind, reader)
        after = _state(files)
        changed = {p.name: (before[p], after[p]) for p in files if before[p] != after[p]}
        assert not changed, f"the second reader of {kind} changed {changed}"
