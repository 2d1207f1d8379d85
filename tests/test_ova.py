"""OVA archives (VMs exported by VirtualBox, VMware, Proxmox) are read in place: the first disk,
a stream-optimized VMDK stored in the tar, is the media; they were refused as tar archives.

Checked against QEMU on the disk extracted by GNU tar (an independent reading of both the
archive and the VMDK), on archives GNU tar writes in the ustar, GNU (long names) and pax formats;
``verify`` checks the manifest's digests (as ``sha256sum`` computes them) and the disk's own
tables, and QEMU reads the same window of the archive as the second reader; ``ls``/``cat``
agree with ``fls``/``icat`` on the extracted disk. Damaged archives, a compressed disk, a disk
of another format and an archive with no disk are refused in one line; several disks are named
by ``info`` with the command that extracts each."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest
from conftest import require_tool, run_bitwitness
from contract import check_stream_contract

from bitwitness.errors import CorruptImageError, ExitCode
from bitwitness.image import detect, open_image
from bitwitness.images.ova import members

MIB = 1 << 20
OVF = (b'<?xml version="1.0"?>\n<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" '
       b'xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1"><References>'
       b'<File ovf:href="{disk}" ovf:id="file1"/></References></Envelope>\n')


def _media(size: int, seed: int) -> bytes:
    """Disk-like bytes: runs of zeros, of a repeated byte and of random data."""
    rng = os.urandom(size // 3)
    pattern = bytes([seed]) * (size // 3)
    return (pattern + bytes(size // 3) + rng).ljust(size, b"\x00")


def _vmdk(raw: Path, out: Path) -> None:
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "vmdk", "-o",
                    "subformat=streamOptimized", raw, out], check=True, capture_output=True)


def _ova(folder: Path, disks: list[tuple[str, bytes]], *, tar_format: str = "ustar",
         manifest: bool = True, name: str = "vm.ova") -> Path:
    """An OVA as the exporting tools lay it out: the .ovf first, the disks, the manifest."""
    folder.mkdir(parents=True, exist_ok=True)
    members_in_order = ["vm.ovf"]
    (folder / "vm.ovf").write_bytes(OVF.replace(b"{disk}", disks[0][0].encode()))
    for disk_name, media in disks:
        raw = folder / "media.tmp"
        raw.write_bytes(media)
        _vmdk(raw, folder / disk_name)
        raw.unlink()
        members_in_order.append(disk_name)
    if manifest:
        lines = [f"SHA256({m})= {hashlib.sha256((folder / m).read_bytes()).hexdigest()}\n"
                 for m in members_in_order]
        (folder / "vm.mf").write_text("".join(lines))
        members_in_order.append("vm.mf")
    out = folder / name
    subprocess.run(["tar", f"--format={tar_format}", "-cf", out, "-C", folder,
                    *members_in_order], check=True, capture_output=True)
    return out


def _extracted_by_qemu(ova: Path, member: str, folder: Path) -> bytes:
    """The disk as GNU tar extracts it and QEMU reads it: the independent reading."""
    work = folder / "extracted"
    work.mkdir(exist_ok=True)
    subprocess.run(["tar", "-xf", ova, "-C", work, member], check=True, capture_output=True)
    out = work / "media.out"
    subprocess.run(["qemu-img", "convert", "-O", "raw", work / member, out], check=True,
                   capture_output=True)
    return out.read_bytes()


@pytest.mark.parametrize("tar_format", ["ustar", "gnu", "pax"])
def test_the_first_disk_reads_as_tar_and_qemu_read_it(tmp_path: Path, tar_format: str) -> None:
    require_tool("qemu-img", "tar")
    # a name past ustar's 100 bytes takes a GNU long-name member or a pax header
    disk = ("vm-disk1.vmdk" if tar_format == "ustar"
            else "a-virtual-machine-exported-with-a-long-name-" + "x" * 80 + "-disk1.vmdk")
    media = _media(6 * MIB, 0x5A)
    ova = _ova(tmp_path / "export", [(disk, media)], tar_format=tar_format)
    assert detect(ova).format.name == "ova"
    assert _extracted_by_qemu(ova, disk, tmp_path) == media
    with open_image(ova) as stream:
        check_stream_contract(stream, media)
        assert stream.info.format == "ova"
        assert stream.info.files == (ova,)
        assert stream.info.details["ova_disk"].startswith(disk)


def test_tar_walk_finds_the_members_tar_lists(tmp_path: Path) -> None:
    require_tool("qemu-img", "tar")
    ova = _ova(tmp_path / "export", [("vm-disk1.vmdk", _media(MIB, 1)),
                                     ("vm-disk2.vmdk", _media(MIB, 2))], tar_format="gnu")
    listed = subprocess.run(["tar", "-tvf", ova], check=True, capture_output=True,
                            text=True).stdout.splitlines()
    data = ova.read_bytes()
    found = members(ova, lambda o, n: data[o:o + n], len(data))
    assert [m.name for m in found] == [line.split()[-1] for line in listed]
    assert [m.size for m in found] == [int(line.split()[2]) for line in listed]
    for member in found:
        assert data[member.offset:member.offset + member.size] == \
            (ova.parent / member.name).read_bytes()


def test_verify_checks_the_manifest_and_qemu_reads_the_same_window(tmp_path: Path) -> None:
    require_tool("qemu-img", "qemu-nbd", "tar")
    media = _media(4 * MIB, 0x33)
    ova = _ova(tmp_path / "export", [("vm-disk1.vmdk", media)])
    done = run_bitwitness("verify", ova, "--second-reader", "--json")
    result = done.json()["images"][0]
    assert result["verdict"] == "UNVERIFIED", done.stderr  # an OVA records no media hash
    assert result["computed"]["md5"] == hashlib.md5(media).hexdigest()  # noqa: S324
    assert result["second_reader"]["agree"] is True, result["second_reader"]
    checks = {c["what"]: c for c in result["container_checks"]}
    disk_sha = hashlib.sha256((ova.parent / "vm-disk1.vmdk").read_bytes()).hexdigest()
    assert checks["OVA manifest digest of vm-disk1.vmdk"] == {
        "what": "OVA manifest digest of vm-disk1.vmdk", "ok": True, "detail": f"sha256 {disk_sha}"}
    assert checks["OVA manifest digest of vm.ovf"]["ok"] is True
    assert checks["VMDK redundant grain tables"]["ok"] is True

    # one byte of the disk's stored data changed: the manifest no longer holds
    data = bytearray(ova.read_bytes())
    start = data.find(b"KDMV", 1024)
    data[start + 70_000] ^= 0xFF
    damaged = tmp_path / "damaged.ova"
    damaged.write_bytes(bytes(data))
    done = run_bitwitness("verify", damaged, "--json")
    assert done.exit_code != ExitCode.OK
    checks = {c["what"]: c for c in done.json()["images"][0]["container_checks"]}
    failed = checks["OVA manifest digest of vm-disk1.vmdk"]
    assert failed["ok"] is False
    assert f"the manifest records {disk_sha}" in failed["detail"]


def test_browsing_a_file_system_inside_the_ova(tmp_path: Path) -> None:
    require_tool("qemu-img", "tar", "mkfs.ext4", "debugfs", "fls", "icat")
    fs = tmp_path / "fs.raw"
    with fs.open("wb") as fh:
        fh.truncate(16 * MIB)
    subprocess.run(["mkfs.ext4", "-q", "-F", fs], check=True, capture_output=True)
    note = tmp_path / "note.txt"
    note.write_bytes(b"a file inside the exported VM\n" * 50)
    subprocess.run(["debugfs", "-w", "-R", f"write {note} note.txt", fs], check=True,
                   capture_output=True)
    ova = _ova(tmp_path / "export", [("vm-disk1.vmdk", fs.read_bytes())])
    restored = tmp_path / "restored.raw"
    restored.write_bytes(_extracted_by_qemu(ova, "vm-disk1.vmdk", tmp_path))
    fls = subprocess.run(["fls", "-r", "-p", restored], check=True, capture_output=True,
                         text=True).stdout
    listed = run_bitwitness("ls", "-r", ova)
    assert listed.exit_code == ExitCode.OK, listed.stderr
    assert sorted(listed.stdout.splitlines()) == sorted(fls.splitlines())
    inode = next(line.split()[1].rstrip(":") for line in fls.splitlines()
                 if line.endswith("\tnote.txt"))
    icat = subprocess.run(["icat", restored, inode], check=True, capture_output=True).stdout
    assert run_bitwitness("cat", ova, "/note.txt").output == icat == note.read_bytes()


def test_info_names_every_disk_of_a_multi_disk_ova(tmp_path: Path) -> None:
    require_tool("qemu-img", "tar")
    first, second = _media(MIB, 1), _media(2 * MIB, 2)
    ova = _ova(tmp_path / "export", [("vm-disk1.vmdk", first), ("vm-disk2.vmdk", second)])
    doc = run_bitwitness("info", ova, "--json").json()
    assert doc["media_size"] == MIB
    note = doc["details"]["ova_other_disks"]
    assert note.startswith("this OVA holds 2 disks; the media read is the first")
    command = note.rsplit(": ", 1)[1]
    work = tmp_path / "other"
    work.mkdir()
    subprocess.run(command, shell=True, check=True, cwd=work, capture_output=True)  # noqa: S602
    with open_image(work / "vm-disk2.vmdk") as stream:
        assert stream.pread(0, stream.size) == second


def test_refusals_are_one_line(tmp_path: Path) -> None:
    require_tool("qemu-img", "tar", "gzip")
    media = _media(2 * MIB, 7)
    ova = _ova(tmp_path / "export", [("vm-disk1.vmdk", media)])
    data = ova.read_bytes()
    cases: dict[str, tuple[bytes, str]] = {}
    disk = members(ova, lambda o, n: data[o:o + n], len(data))[1]
    cases["truncated"] = (data[:disk.offset + disk.size // 2], "past the end of the file")
    bad = bytearray(data)
    header = disk.offset - 512
    bad[header + 124] ^= 0x01  # the disk member's size digit: its header checksum fails
    cases["checksum"] = (bytes(bad), f"no valid tar header at file offset {header}")
    for name, (content, message) in cases.items():
        path = tmp_path / f"{name}.ova"
        path.write_bytes(content)
        with pytest.raises(CorruptImageError, match=message):
            open_image(path)
        done = run_bitwitness("info", path)
        assert done.exit_code != ExitCode.OK
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert "Traceback" not in done.stderr

    folder = tmp_path / "gz"
    folder.mkdir()
    (folder / "vm.ovf").write_bytes(OVF.replace(b"{disk}", b"vm-disk1.vmdk"))
    raw = folder / "m.raw"
    raw.write_bytes(media)
    _vmdk(raw, folder / "vm-disk1.vmdk")
    subprocess.run(["gzip", "-n", folder / "vm-disk1.vmdk"], check=True)
    (folder / "vm-disk1.vmdk.gz").rename(folder / "vm-disk1.vmdk")
    subprocess.run(["tar", "--format=ustar", "-cf", folder / "gz.ova", "-C", folder, "vm.ovf",
                    "vm-disk1.vmdk"], check=True)
    done = run_bitwitness("info", folder / "gz.ova")
    assert done.exit_code == ExitCode.USAGE
    assert "is gzip-compressed; extract and decompress it first: tar -xOf" in done.stderr

    (folder / "disk.vhd").write_bytes(b"\x00" * 1024)
    subprocess.run(["tar", "--format=ustar", "-cf", folder / "vhd.ova", "-C", folder, "vm.ovf",
                    "disk.vhd"], check=True)
    done = run_bitwitness("info", folder / "vhd.ova")
    assert done.exit_code == ExitCode.USAGE
    assert "disk disk.vhd is not a VMDK; extract it" in done.stderr
    subprocess.run(["tar", "--format=ustar", "-cf", folder / "none.ova", "-C", folder,
                    "vm.ovf"], check=True)
    done = run_bitwitness("info", folder / "none.ova")
    assert done.exit_code == ExitCode.USAGE
    assert "holds no disk (members: vm.ovf)" in done.stderr


def test_an_ova_renamed_with_a_large_descriptor_is_still_an_ova(tmp_path: Path) -> None:
    """Detection goes by content: the first member is an .ovf, whose data (VMware and
    VirtualBox write descriptors of 5-10 KB) runs past the bytes detection reads."""
    require_tool("qemu-img", "tar")
    media = _media(MIB, 3)
    ova = _ova(tmp_path / "export", [("vm-disk1.vmdk", media)], manifest=False)
    folder = ova.parent
    (folder / "vm.ovf").write_bytes(OVF + b"<!-- " + b"x" * 9000 + b" -->\n")
    renamed = tmp_path / "evidence.bin"
    subprocess.run(["tar", "--format=ustar", "-cf", renamed, "-C", folder, "vm.ovf",
                    "vm-disk1.vmdk"], check=True)
    assert detect(renamed).format.name == "ova"
    with open_image(renamed) as stream:
        assert stream.pread(0, stream.size) == media


def test_a_plain_tar_is_still_refused_as_an_archive(tmp_path: Path) -> None:
    require_tool("tar")
    (tmp_path / "a.txt").write_bytes(b"x" * 2000)
    archive = tmp_path / "files.tar"
    subprocess.run(["tar", "--format=ustar", "-cf", archive, "-C", tmp_path, "a.txt"],
                   check=True)
    done = run_bitwitness("info", archive)
    assert done.exit_code != ExitCode.OK
    assert "tar archive (extract it first)" in done.stderr
