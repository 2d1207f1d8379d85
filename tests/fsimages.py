"""Small file-system images for the parity tests, one builder per file system, built with the
file systems' own tools (and, for hostile names, raw directory entries written into them).

Each builder takes a target path and returns it, or raises :class:`Unavailable` (with the
reason) when a tool or privilege it needs is missing here, so that tests skip cleanly.
``scripts/make-test-filesystems.py`` builds them all into a folder for manual inspection.

What each holds:
- ``ntfs``: folders, resident and non-resident files, an alternate data stream, a hard link,
  a compressed file, a sparse file, a deleted file and a deleted folder with its files, and a
  file whose $STANDARD_INFORMATION times were set back (timestomped) while its $FILE_NAME
  times were not (written through ntfs-3g, the only NTFS writer on Linux), and a change journal
  ``$Extend/$UsnJrnl`` whose ``$J`` stream starts with a sparse run as Windows leaves it
  (ntfs-3g's FUSE driver refuses to create files in ``$Extend``; ``ntfscp``, which writes
  through libntfs-3g directly, does not, and the driver then writes into the existing stream);
- ``fat12``/``fat16``/``fat32``: long and short names, folders, deleted files (mtools);
- ``exfat``: folders and a deleted file (exfat-fuse, running in :data:`ZONE_NAME`, so that
  every time carries a UTC offset of +05:30), ``/dir/a.txt`` with :data:`EXFAT_TIMES`;
- ``ext2``/``ext3``/``ext4``: folders, a symbolic link, deleted files, and a deleted name
  ``/reused.txt`` whose inode a newer file took over (mkfs -d, debugfs), files and folders
  with set-user-ID, set-group-ID and sticky bits;
- ``iso9660``: Joliet and Rock Ridge names (xorriso, recording dates in :data:`ZONE_NAME`
  local time with their +05:30 offset, every file modified at :data:`ISO_TIME`);
- ``ufs1``/``ufs2``: folders, a symbolic link, set-user-ID, set-group-ID and sticky bits
  (makefs; nothing on Linux deletes from UFS);
- ``hostile_ext2``: entries named ``.`` and ``..`` that are regular files with data, a name
  starting with ``/``, a name holding ``/``, names that are not UTF-8 and hold control bytes,
  and a folder ``sub/dir`` (one name) holding ``inner.txt``;
- ``hostile_fat``: 8.3 entries whose 11 name bytes read ``../../X.TXT``, ``/ETC/PW.TXT``,
  ``..\\..\\X.TXT``, ``..`` as a file in the root, an empty name (eleven spaces), and a
  folder ``/HIDDEN`` holding
  ``INNER.TXT``;
- ``crafted_fat12``/``crafted_fat32``: long names, lower-case short names and deleted entries
  (mtools) whose 8.3 names are then damaged so that TSK refuses them (see :func:`crafted_fat`),
  with the undamaged image kept beside it.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

MTOOLS_ENV = {**os.environ, "MTOOLS_SKIP_CHECK": "1"}


class Unavailable(Exception):  # noqa: N818 - reads as the outcome: "ntfs: unavailable"
    """A builder cannot run here (missing tool, no root, no FUSE)."""


def _need(*tools: str) -> None:
    for tool in tools:
        if shutil.which(tool) is None:
            raise Unavailable(f"{tool} is not installed")


def _run(*args: str | Path, env: dict[str, str] | None = None) -> None:
    subprocess.run([os.fspath(a) for a in args], check=True, capture_output=True, env=env)


def _fuse_mount(command: list[str], mountpoint: Path, env: dict[str, str] | None = None) -> None:
    if os.geteuid() != 0 or not Path("/dev/fuse").exists():
        raise Unavailable("needs root and /dev/fuse to write through FUSE")
    proc = subprocess.run(command, capture_output=True, check=False, env=env)
    if proc.returncode != 0:
        raise Unavailable(f"{command[0]} cannot mount: {proc.stderr.decode(errors='replace')}")


def _umount(mountpoint: Path) -> None:
    subprocess.run(["sync"], check=False)
    _run("umount", mountpoint)


def blank(image: Path, size: int) -> Path:
    """``image`` made an empty (sparse) file of ``size`` bytes, for a mkfs to format."""
    image.write_bytes(b"")
    os.truncate(image, size)
    return image


@contextmanager
def loop_mounted(image: Path, mountpoint: Path, options: str = "loop") -> Iterator[Path]:
    """``image`` mounted by the kernel at ``mountpoint`` (made if missing) for the block,
    unmounted after it (root only)."""
    mountpoint.mkdir(exist_ok=True)
    _run("mount", "-o", options, image, mountpoint)
    try:
        yield mountpoint
    finally:
        _run("umount", mountpoint)


@contextmanager
def fresh_exfat(image: Path, size: int, mountpoint: Path) -> Iterator[Path]:
    """A new exFAT of ``size`` bytes at ``image`` (mkfs.exfat) on a loop device, mounted
    through exfat-fuse at ``mountpoint`` for the block (root and /dev/fuse, else
    :class:`Unavailable`)."""
    _need("mkfs.exfat", "mount.exfat-fuse", "losetup")
    _run("mkfs.exfat", blank(image, size))
    with _loop_device(image) as device:
        mountpoint.mkdir(exist_ok=True)
        _fuse_mount(["mount.exfat-fuse", device, os.fspath(mountpoint)], mountpoint)
        try:
            yield mountpoint
        finally:
            _umount(mountpoint)


@contextmanager
def _loop_device(image: Path) -> Iterator[str]:
    """A loop device over ``image`` for the block, detached after it (root only, else
    :class:`Unavailable`)."""
    if os.geteuid() != 0:
        raise Unavailable("needs root for a loop device")
    loop = subprocess.run(["losetup", "-f", "--show", os.fspath(image)], capture_output=True,
                          text=True, check=False)
    if loop.returncode != 0:
        raise Unavailable(f"no loop device: {loop.stderr.strip()}")
    device = loop.stdout.strip()
    try:
        yield device
    finally:
        _run("losetup", "-d", device)


@contextmanager
def fresh_ntfs(image: Path, size: int, mountpoint: Path) -> Iterator[Path]:
    """A new NTFS of ``size`` bytes at ``image`` (mkntfs), mounted through ntfs-3g at
    ``mountpoint`` (made if missing) for the block, unmounted after it: the tests write NTFS
    through ntfs-3g, the only NTFS writer here (root and /dev/fuse, else :class:`Unavailable`)."""
    _need("mkntfs", "ntfs-3g")
    _run("mkntfs", "-q", "-F", "-Q", blank(image, size))
    mountpoint.mkdir(exist_ok=True)
    _fuse_mount(["ntfs-3g", os.fspath(image), os.fspath(mountpoint)], mountpoint)
    try:
        yield mountpoint
    finally:
        _umount(mountpoint)


#: The time the NTFS image's ``/dir/stomped.txt`` claims in $STANDARD_INFORMATION (2001-09-09).
STOMPED = 1_000_000_000


#: Where the records of the NTFS image's ``$Extend/$UsnJrnl:$J`` start (all before is sparse).
USN_OFFSET = 1 << 20


def usn_records() -> bytes:
    """The bytes written at :data:`USN_OFFSET` of ``$J``: USN_RECORD_V2 records (60 bytes of
    header, the UTF-16 name, padded to 8 bytes), numbered by their offset as Windows does."""
    out = bytearray()
    for number, name in enumerate(("report.docx", "notes.txt", "secret.pdf") * 40):
        encoded = name.encode("utf-16-le")
        length = (60 + len(encoded) + 7) // 8 * 8
        usn = USN_OFFSET + len(out)
        header = struct.pack("<IHHQQqQIIIIHH", length, 2, 0, 64 + number, 5, usn,
                             STOMPED * 10_000_000 + 116444736000000000, 0x100, 0, 0, 0x20,
                             len(encoded), 60)
        out += (header + encoded).ljust(length, b"\0")
    return bytes(out)


def ntfs(image: Path, *, small: bool = False) -> Path:
    """``small``: the same tree with its large files cut to a few KiB (the fuzz seeds)."""
    scale = 16 if small else 1
    _need("mkntfs", "ntfs-3g", "ntfscp")
    _run("truncate", "-s", "8M", image)
    _run("mkntfs", "-q", "-F", "-Q", "-L", "evidence", image)
    with tempfile.TemporaryDirectory() as tmp:
        empty, maximum = Path(tmp) / "empty", Path(tmp) / "max"
        empty.write_bytes(b"")
        maximum.write_bytes(struct.pack("<QQqI4x", 32 << 20, 8 << 20, 0x01D9_0000_0000_0000, 0))
        _run("ntfscp", "-f", image, empty, "$Extend/$UsnJrnl")
        _run("ntfscp", "-f", "-N", "$J", image, empty, "$Extend/$UsnJrnl")
        _run("ntfscp", "-f", "-N", "$Max", image, maximum, "$Extend/$UsnJrnl")
    with tempfile.TemporaryDirectory() as tmp:
        m = Path(tmp)
        _fuse_mount(["ntfs-3g", os.fspath(image), tmp, "-o", "streams_interface=windows"], m)
        try:
            (m / "dir/sub").mkdir(parents=True)
            (m / "gone").mkdir()
            (m / "dir/small.txt").write_bytes(b"small resident\n")
            (m / "dir/big.bin").write_bytes(bytes(range(256)) * (800 // scale))
            (m / "dir/small.txt:Zone.Identifier").write_bytes(b"[ZoneTransfer]\nZoneId=3\n")
            os.link(m / "dir/small.txt", m / "dir/sub/hardlink.txt")
            # FILE_ATTRIBUTE_COMPRESSED on the folder: files created in it are compressed
            os.setxattr(m / "dir/sub", "system.ntfs_attrib_be", struct.pack(">I", 0x810))
            (m / "dir/sub/comp.txt").write_bytes(b"compress me " * (9000 // scale))
            with (m / "dir/sparse.bin").open("wb") as fh:
                fh.seek(409600)
                fh.write(b"after a hole\n")
            (m / "dir/deleted.txt").write_bytes(b"deleted content, still in the MFT record\n")
            (m / "dir/deleted big.bin").write_bytes(bytes(range(255, -1, -1))
                                                    * (4 if small else 64))
            for i in range(3):
                (m / f"gone/o{i}.txt").write_bytes(f"orphan {i}\n".encode())
            (m / "Ωmega ünï.txt").write_bytes("ünïcødé\n".encode())
            with (m / "$Extend/$UsnJrnl:$J").open("r+b") as fh:  # sparse up to USN_OFFSET
                fh.seek(USN_OFFSET)
                fh.write(usn_records())
            stomped = m / "dir/stomped.txt"
            stomped.write_bytes(b"times set back by a program\n")
            os.utime(stomped, (STOMPED, STOMPED))  # $STANDARD_INFORMATION only
            os.setxattr(stomped, "system.ntfs_crtime",
                        struct.pack("<Q", STOMPED * 10_000_000 + 116444736000000000))
            os.sync()
            (m / "dir/deleted.txt").unlink()
            (m / "dir/deleted big.bin").unlink()
            shutil.rmtree(m / "gone")
        finally:
            _umount(m)
    return image


FAT_FILES = {
    "/hello.txt": b"hello\n",
    "/Long File Name.text": b"a long name\n",
    "/docs/report.txt": b"report " * 700,
    "/docs/deep/nested.bin": bytes(range(256)) * 10,
    "/docs/gone.txt": b"deleted from FAT\n",
}


def fat(image: Path, bits: int) -> Path:
    _need("mkfs.fat", "mcopy", "mmd", "mdel")
    size = {12: "2M", 16: "20M", 32: "40M"}[bits]
    _run("truncate", "-s", size, image)
    _run("mkfs.fat", "-F", str(bits), "-n", f"FAT{bits}", image)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp)
        for path, data in FAT_FILES.items():
            folder = path.rpartition("/")[0]
            if folder:
                subprocess.run(["mmd", "-D", "s", "-i", os.fspath(image), f"::{folder}"],
                               capture_output=True, env=MTOOLS_ENV, check=False)
            local = src / "f"
            local.write_bytes(data)
            _run("mcopy", "-i", image, local, f"::{path}", env=MTOOLS_ENV)
    _run("mdel", "-i", image, "::/docs/gone.txt", env=MTOOLS_ENV)
    return image


#: The zone the exFAT and ISO 9660 images are written in (India: +05:30 all year, a zone of
#: half an hour): their drivers record local time with this offset, which TSK ignores.
ZONE_NAME = "Asia/Kolkata"
ZONE = {**os.environ, "TZ": ZONE_NAME}
EXFAT_ZONE = timedelta(hours=5, minutes=30)
#: Times set on ``/dir/a.txt`` of the exFAT image (access, modification; epoch seconds): the
#: modification time falls on an odd second, kept by exFAT's 10 ms increment.
EXFAT_TIMES = (1_000_000_000, 1_100_000_003)
#: The modification time of the ISO 9660 image's files, which xorriso records as their
#: recording date (2020-03-29 01:30 UTC, 07:00 in the zone it is written in).
ISO_TIME = 1_585_445_400


def exfat(image: Path) -> Path:
    _need("mkfs.exfat", "mount.exfat-fuse")
    _run("truncate", "-s", "4M", image)
    _run("mkfs.exfat", "-L", "EXF", image)
    with _loop_device(image) as device:
        _exfat_fill(device)
    return image


def exfat_set_checksum(data: bytearray, at: int) -> None:
    """Recompute in ``data`` the SetChecksum of the exFAT entry set whose file entry is at
    ``at`` (its secondary count at ``at + 1``), after a test changed the set's bytes."""
    checksum = 0
    for index, byte in enumerate(bytes(data[at:at + 32 * (data[at + 1] + 1)])):
        if index not in (2, 3):
            checksum = (((checksum << 15) | (checksum >> 1)) + byte) & 0xFFFF
    data[at + 2:at + 4] = checksum.to_bytes(2, "little")


def _exfat_fill(device: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        m = Path(tmp)
        _fuse_mount(["mount.exfat-fuse", device, tmp], m, env=ZONE)
        try:
            (m / "dir/sub").mkdir(parents=True)
            (m / "dir/a.txt").write_bytes(b"exfat a\n")
            os.utime(m / "dir/a.txt", EXFAT_TIMES)
            (m / "dir/sub/big.bin").write_bytes(bytes(range(256)) * 300)
            (m / "Ωmega.txt").write_bytes(b"unicode\n")
            (m / "dir/gone.txt").write_bytes(b"deleted from exfat\n")
            os.sync()
            (m / "dir/gone.txt").unlink()
        finally:
            _umount(m)


def ext(image: Path, kind: str, *, small: bool = False) -> Path:
    """``small``: the same tree with its large file cut to a few KiB (the fuzz seeds)."""
    _need(f"mkfs.{kind}", "debugfs")
    with tempfile.TemporaryDirectory() as tmp:
        staging = Path(tmp)
        (staging / "home/ana/projects").mkdir(parents=True)
        (staging / "home/ana/notes.txt").write_bytes(b"notes of ana\n")
        (staging / "home/ana/projects/big.bin").write_bytes(bytes(range(256))
                                                            * (24 if small else 1500))
        (staging / "home/ana/Ωmega ünï.txt").write_bytes("ünïcødé\n".encode())
        (staging / "home/ana/gone.txt").write_bytes(b"to be deleted\n")
        (staging / "home/ana/link").symlink_to("notes.txt")
        (staging / "empty").mkdir()
        _special_modes(staging / "home/ana", "shared")
        _run("truncate", "-s", "8M", image)
        _run(f"mkfs.{kind}", "-q", "-F", "-T", "small", "-d", staging, image)
    # a deleted name whose inode a newer file took over: fls marks it (realloc)
    with tempfile.TemporaryDirectory() as tmp:
        first, second = Path(tmp) / "first", Path(tmp) / "second"
        first.write_bytes(b"first owner of the inode\n")
        second.write_bytes(b"second owner, who took the inode over\n")
        for command in (f"write {first} reused.txt", f"write {first} zz.txt", "rm reused.txt",
                        f"write {second} a-much-longer-name-that-needs-a-new-slot.txt"):
            _run("debugfs", "-w", "-R", command, image)
    _run("debugfs", "-w", "-R", "rm /home/ana/gone.txt", image)
    return image


def _special_modes(folder: Path, shared: str) -> None:
    """Files and a folder with set-user-ID, set-group-ID and sticky bits, with and without
    the x they are shown in place of (``rwsr-s---``, ``rw-r-Sr--``, ``rwxrwxrwt``, ``T``)."""
    for name, mode in (("tool", 0o6750), ("sgid.txt", 0o2644)):
        (folder / name).write_bytes(b"#!/bin/sh\n")
        (folder / name).chmod(mode)
    for name, mode in ((shared, 0o1777), (f"{shared}-no-x", 0o1776)):
        (folder / name).mkdir()
        (folder / name).chmod(mode)


def iso9660(image: Path) -> Path:
    _need("xorriso")
    with tempfile.TemporaryDirectory() as tmp:
        staging = Path(tmp)
        (staging / "Documents/Deep Folder").mkdir(parents=True)
        (staging / "Documents/readme.txt").write_bytes(b"iso readme\n")
        (staging / "Documents/Deep Folder/Long name with spaces.txt").write_bytes(b"joliet\n")
        (staging / "Ωmega.txt").write_bytes(b"unicode\n")
        (staging / "big.bin").write_bytes(bytes(range(256)) * 200)
        for path in staging.rglob("*"):
            os.utime(path, (ISO_TIME, ISO_TIME))
        # always_gmt_off: the recording dates in local time with their offset, as mkisofs
        # and Windows write them (xorriso writes UTC by default)
        _run("xorriso", "-compliance", "default:always_gmt_off", "-as", "mkisofs", "-quiet",
             "-J", "-R", "-V", "EVIDENCE", "-o", image, staging, env=ZONE)
    return image


def _ufs(image: Path, options: str, size: str) -> Path:
    _need("makefs")
    with tempfile.TemporaryDirectory() as tmp:
        staging = Path(tmp)
        (staging / "usr/home").mkdir(parents=True)
        (staging / "usr/home/readme.txt").write_bytes(b"ufs readme\n")
        (staging / "big.bin").write_bytes(bytes(range(256)) * 300)
        (staging / "link").symlink_to("usr/home/readme.txt")
        _special_modes(staging / "usr/home", "tmp")
        _run("makefs", "-t", "ffs", "-o", options, "-s", size, image, staging)
    return image


def ufs1(image: Path) -> Path:
    """UFS1 (FFS) written by NetBSD's makefs."""
    return _ufs(image, "version=1", "4m")


def ufs2(image: Path) -> Path:
    """UFS2 written by NetBSD's makefs, laid out so that The Sleuth Kit finds it.

    makefs writes a UFS2 superblock at byte 8192 (where UFS1's lives); TSK looks for UFS1's
    magic there and for UFS2's only at 65536 and 262144, so it finds no file system in
    makefs's default UFS2. Each cylinder group keeps a copy of the superblock at fragment
    ``sblkno``, which makefs sets to the first block boundary after 8192 + 8192 bytes: with
    64 KiB blocks of 8 KiB fragments that is byte 65536, and TSK reads that copy.
    """
    return _ufs(image, "version=2,bsize=65536,fsize=8192", "8m")


#: ext2 entries written raw: the name stored -> the content of the regular file behind it.
HOSTILE_EXT2 = {
    b".": b"a regular file named dot\n",
    b"..": b"a regular file named dot-dot\n",
    b"/etc/shadowX": b"leading slash\n",
    b"a/b": b"a slash inside\n",
    b"bad\xff\xfe.txt": b"not UTF-8\n",
    b"bell\x07\x1b[31mred": b"control bytes\n",
    b"back\\slash": b"backslash\n",
}


#: A folder of the hostile ext2 whose name holds ``/``, and the file inside it.
HOSTILE_EXT2_FOLDER = b"sub/dir"
HOSTILE_EXT2_INNER = b"inside a folder whose name holds a slash\n"


def _rename_ext2_entry(data: bytearray, inode: int, placeholder: bytes, name: bytes,
                       file_type: int = 1) -> None:
    """Overwrite the name of the directory entry (inode, placeholder) with ``name``."""
    assert len(placeholder) == len(name)
    pattern = re.escape(struct.pack("<I", inode)) + b"..." + re.escape(
        bytes([file_type]) + placeholder)  # inode, rec_len, name_len, file type, name
    found = [m for m in re.finditer(pattern, bytes(data), re.DOTALL)
             if data[m.start() + 6] == len(name)]
    assert len(found) == 1, (placeholder, len(found))
    at = found[0].start() + 8
    data[at : at + len(name)] = name


def hostile_ext2(image: Path) -> Path:
    """ext2 (no checksums) whose root holds :data:`HOSTILE_EXT2`, plus ``ok.txt``."""
    _need("mkfs.ext2", "debugfs")
    _run("truncate", "-s", "4M", image)
    _run("mkfs.ext2", "-q", "-F", "-O", "^dir_index", image)
    renames = []
    with tempfile.TemporaryDirectory() as tmp:
        for number, (name, content) in enumerate(HOSTILE_EXT2.items()):
            placeholder = (b"P%dQ" % number + b"Z" * len(name))[: len(name)]
            if len(name) < 3:
                placeholder = b"QZ"[: len(name)] if number == 0 else b"RZ"[: len(name)]
            local = Path(tmp) / f"c{number}"
            local.write_bytes(content)
            out = subprocess.run(["debugfs", "-w", "-R",
                                  f"write {local} {placeholder.decode()}", os.fspath(image)],
                                 capture_output=True, check=True, text=True)
            found = re.search(r"Allocated inode: (\d+)", out.stdout + out.stderr)
            assert found is not None, out.stderr
            inode = int(found[1])
            renames.append((inode, placeholder, name))
        ok = Path(tmp) / "ok"
        ok.write_bytes(b"an ordinary file\n")
        _run("debugfs", "-w", "-R", f"write {ok} ok.txt", image)
        _run("debugfs", "-w", "-R", "mkdir subQdir", image)
        ok.write_bytes(HOSTILE_EXT2_INNER)
        _run("debugfs", "-w", "-R", f"write {ok} subQdir/inner.txt", image)
        out = subprocess.run(["debugfs", "-R", "stat subQdir", os.fspath(image)],
                             capture_output=True, check=True, text=True)
        found = re.search(r"Inode: (\d+)", out.stdout)
        assert found is not None, out.stderr
        folder = int(found[1])
    data = bytearray(image.read_bytes())
    for inode, placeholder, name in renames:
        _rename_ext2_entry(data, inode, placeholder, name)
    _rename_ext2_entry(data, folder, b"subQdir", HOSTILE_EXT2_FOLDER, file_type=2)
    image.write_bytes(data)
    return image


#: FAT 8.3 entries written raw (11 name bytes) -> content.
HOSTILE_FAT = {
    b"../../X TXT": b"dot-dot-slash in a short name\n",
    b"/ETC/PW TXT": b"leading slash in a short name\n",
    b"..\\..\\X TXT": b"backslashes in a short name\n",
    b"..         ": b"a file named dot-dot in the root\n",
    b"           ": b"a file with an empty name (eleven spaces)\n",
}


#: Content of ``/HIDDEN/INNER.TXT`` in the hostile FAT: a file inside a folder TSK refuses.
HIDDEN_INNER = b"inside a folder whose name The Sleuth Kit refuses\n"


def hostile_fat(image: Path) -> Path:
    _need("mkfs.fat", "mcopy")
    _run("truncate", "-s", "2M", image)
    _run("mkfs.fat", "-F", "12", "-n", "HOSTILE", image)
    with tempfile.TemporaryDirectory() as tmp:
        for number, content in enumerate(HOSTILE_FAT.values()):
            local = Path(tmp) / "c"
            local.write_bytes(content)
            _run("mcopy", "-i", image, local, f"::PLACE{number:02d}.TXT", env=MTOOLS_ENV)
        local.write_bytes(b"an ordinary file\n")
        _run("mcopy", "-i", image, local, "::OK.TXT", env=MTOOLS_ENV)
        _run("mmd", "-i", image, "::PLACEDIR", env=MTOOLS_ENV)
        local.write_bytes(HIDDEN_INNER)
        _run("mcopy", "-i", image, local, "::PLACEDIR/INNER.TXT", env=MTOOLS_ENV)
    data = bytearray(image.read_bytes())
    at = data.find(b"PLACEDIR   \x10")
    assert at > 0
    data[at : at + 11] = b"/HIDDEN    "  # a folder TSK refuses, with a file inside
    for number, raw in enumerate(HOSTILE_FAT):
        placeholder = b"PLACE%02d TXT" % number
        at = data.find(placeholder)
        assert at > 0
        assert data.find(placeholder, at + 1) < 0
        data[at : at + 11] = raw
    image.write_bytes(data)
    return image


#: Files of the crafted FAT, in ``/`` and in ``/docs``: the name written -> its content.
CRAFTED_FAT_FILES = {
    "Long Secret Name.txt": b"long name, short name damaged, checksum set anew\n" * 30,
    "hello.txt": b"short lower-case name, damaged\n",
    "Orphan Long Name.txt": b"long name whose checksum no longer matches\n",
    "overwritten name.txt": b"deleted, then its cluster taken by another file\n",
    "gone long name.txt": b"deleted long name, damaged, checksum set anew\n" * 20,
    "GONE.TXT": b"deleted short name, damaged\n",
    "plain.txt": b"left as mtools wrote it\n",
}
#: What the crafting does to each: the short name it writes (11 bytes, first byte as stored)
#: and whether the long-name checksums are set anew for it. Position 3 gets a ``/``, a byte
#: The Sleuth Kit refuses in an 8.3 name.
CRAFTED_FAT_DAMAGE = {
    "Long Secret Name.txt": True,
    "hello.txt": False,
    "Orphan Long Name.txt": False,
    "overwritten name.txt": True,
    "gone long name.txt": True,
    "GONE.TXT": False,
}


def intact_copy(image: Path) -> Path:
    """Where :func:`crafted_fat` keeps the image as mtools left it, before the damage."""
    return image.with_name(f"{image.stem}-intact{image.suffix}")


def _lfn_checksum(name11: bytes) -> int:
    total = 0
    for byte in name11:
        total = (((total & 1) << 7) + (total >> 1) + byte) & 0xFF
    return total


def crafted_fat(image: Path, bits: int) -> Path:
    """FAT entries The Sleuth Kit refuses, with long names and deleted ones among them.

    mtools writes :data:`CRAFTED_FAT_FILES` into ``/`` and ``/docs``, deletes the last three
    of them after a new file ``new.bin`` took the clusters of ``overwritten name.txt``; the image
    is copied to :func:`intact_copy`; then each short entry of :data:`CRAFTED_FAT_DAMAGE` gets a
    ``/`` as its fourth name byte, and where asked, the checksum in its long-name entries is
    set to that of the damaged name (for a deleted entry, with its first byte as it was).
    """
    _need("mkfs.fat", "mcopy", "mdel", "mmd")
    _run("truncate", "-s", {12: "2M", 32: "40M"}[bits], image)
    _run("mkfs.fat", "-F", str(bits), "-n", "CRAFTED", image)
    _run("mmd", "-i", image, "::/docs", env=MTOOLS_ENV)
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / "f"
        for folder in ("", "/docs"):
            for name, content in CRAFTED_FAT_FILES.items():
                local.write_bytes(content)
                _run("mcopy", "-i", image, local, f"::{folder}/{name}", env=MTOOLS_ENV)
        for folder in ("", "/docs"):
            _run("mdel", "-i", image, f"::{folder}/overwritten name.txt", env=MTOOLS_ENV)
            local.write_bytes(bytes(range(256)) * 24)
            _run("mcopy", "-i", image, local, f"::{folder}/new.bin", env=MTOOLS_ENV)
        for folder in ("", "/docs"):
            for name in ("gone long name.txt", "GONE.TXT"):
                _run("mdel", "-i", image, f"::{folder}/{name}", env=MTOOLS_ENV)
    shutil.copyfile(image, intact_copy(image))
    data = bytearray(image.read_bytes())
    for name, new_checksum in CRAFTED_FAT_DAMAGE.items():
        _damage_fat_entries(data, name, new_checksum)
    image.write_bytes(data)
    return image


def _damage_fat_entries(data: bytearray, name: str, new_checksum: bool) -> None:
    """Damage the two short entries (``/`` and ``/docs``) of the file mtools named ``name``."""
    base, _, ext = name.upper().partition(".")
    if len(base) <= 8 and " " not in base and name in ("hello.txt", "GONE.TXT"):
        short = base.ljust(8).encode() + ext.ljust(3).encode()
    else:
        short = (base.replace(" ", "")[:6] + "~1").ljust(8).encode() + ext[:3].ljust(3).encode()
    deleted = name in ("overwritten name.txt", "gone long name.txt", "GONE.TXT")
    stored = (b"\xe5" + short[1:]) if deleted else short
    found = [at for at in range(0, len(data), 32) if data[at : at + 11] == stored
             and data[at + 11] & 0x0F != 0x0F]
    assert len(found) == 2, (name, len(found))
    for at in found:
        old = _lfn_checksum(short)
        data[at + 3] = ord("/")
        damaged = short[:3] + b"/" + short[4:]
        slot = at - 32
        while new_checksum and slot >= 0 and data[slot + 11] == 0x0F and data[slot + 13] == old:
            data[slot + 13] = _lfn_checksum(damaged)
            slot -= 32


BUILDERS: dict[str, Callable[[Path], Path]] = {
    "ntfs": ntfs,
    "fat12": lambda p: fat(p, 12),
    "fat16": lambda p: fat(p, 16),
    "fat32": lambda p: fat(p, 32),
    "exfat": exfat,
    "ext2": lambda p: ext(p, "ext2"),
    "ext3": lambda p: ext(p, "ext3"),
    "ext4": lambda p: ext(p, "ext4"),
    "iso9660": iso9660,
    "ufs1": ufs1,
    "ufs2": ufs2,
    "hostile_ext2": hostile_ext2,
    "hostile_fat": hostile_fat,
    "crafted_fat12": lambda p: crafted_fat(p, 12),
    "crafted_fat32": lambda p: crafted_fat(p, 32),
}
