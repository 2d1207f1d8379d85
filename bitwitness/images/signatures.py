"""What a file is, by its own bytes: the signatures of every disk container BitWitness knows.

Detection never trusts a file name alone. A file that carries a container's signature is that
container, whether or not BitWitness can read it: the registry then either opens it with the
format's reader or refuses it naming the format (exit 2), so that a container file is never hashed
and browsed as if it were the disk it holds. Raw is what remains: data with none of these
signatures.

Signatures are checked at fixed places only (the first bytes, the last 512 bytes, a sparsebundle's
``Info.plist``), so identifying a file costs at most two small reads whatever its size.
"""

from __future__ import annotations

import lzma
import re
import shlex
import struct
import zlib
from dataclasses import dataclass, replace
from pathlib import Path

from bitwitness.errors import InputError
from bitwitness.images.raw import read_at

#: How much of a sparsebundle's or Parallels bundle's descriptor identification reads.
_PLIST_LIMIT = 64 * 1024
#: How much of a ZIP file's end is searched for the AFF4 volume marks.
_ZIP_TAIL = 256 * 1024


@dataclass(frozen=True)
class Container:
    """A recognised container: its short name (as ``info`` shows it) and a readable label."""

    name: str  #: "qcow2", "vhdx", "dmg", ...
    label: str  #: "QCOW2 (QEMU copy-on-write, version 3)"


_HEAD_MAGICS: tuple[tuple[bytes, Container], ...] = (
    (b"vhdxfile", Container("vhdx", "VHDX (Hyper-V virtual hard disk)")),
    (b"conectix", Container("vhd", "VHD (Microsoft virtual hard disk)")),
    (b"KDMV", Container("vmdk", "VMDK sparse extent (VMware)")),
    (b"COWD", Container("vmdk", "VMDK COWD sparse extent (VMware ESX)")),
    # SEsparse: the constant header's magic 0xCAFEBABE as a little-endian 64-bit number.
    (b"\xbe\xba\xfe\xca\x00\x00\x00\x00",
     Container("vmdk-sesparse", "VMDK SEsparse extent (VMware ESXi snapshot)")),
    (b"# Disk DescriptorFile", Container("vmdk", "VMDK descriptor (VMware)")),
    (b"sprs", Container("sparseimage", "Apple sparse disk image (.sparseimage)")),
    (b"WithoutFreeSpace", Container("parallels", "Parallels disk image")),
    (b"WithouFreSpacExt", Container("parallels", "Parallels disk image (extended)")),
    (b"AFF10\r\n\x00", Container("aff", "AFF (Advanced Forensic Format, version 1-3)")),
    (b"AFM10\r\n\x00", Container("afm", "AFF multi-file set (AFM)")),
    (b"QED\x00", Container("qed", "QED (QEMU enhanced disk)")),
    (b"EVF\x09\x0d\x0a\xff\x00", Container("ewf", "EWF (E01)")),
    (b"LVF\x09\x0d\x0a\xff\x00", Container("ewf", "EWF logical evidence (L01)")),
    (b"EVF2\x0d\x0a\x81\x00", Container("ewf", "EWF2 (Ex01)")),
    (b"LEF2\x0d\x0a\x81\x00", Container("ewf", "EWF2 logical evidence (Lx01)")),
    # libsparse's sparse_format.h: the magic 0xED26FF3A, little-endian, opens the file header
    (b"\x3a\xff\x26\xed", Container("android-sparse", "Android sparse image (simg)")),
    # Containers of files, not of a disk, that nothing here reads: each refused by name.
    # AD1: every segment opens with "ADSEGMENTEDFILE" (NUL-ended); the first segment holds
    # "ADLOGICALIMAGE" at offset 512
    (b"ADSEGMENTEDFILE",
     Container("ad1", "AccessData AD1 logical image (open it with FTK Imager; it holds files, "
                      "not a disk)")),
    # WIM (and ESD, the same header with LZMS): ImageTag "MSWIM\0\0\0"; wimlib's pipable WIM
    # writes "WLPWM\0\0\0" instead
    (b"MSWIM\x00\x00\x00", Container("wim", "Windows Imaging archive (WIM/ESD; extract it with "
                                          "wimapply)")),
    (b"WLPWM\x00\x00\x00", Container("wim", "Windows Imaging archive (pipable WIM; extract it "
                                          "with wimapply)")),
    # Apple encrypted disk image, version 2 ("encrcdsa" opens the file; version 1 ends with
    # "cdsaencr", see _by_tail)
    (b"encrcdsa", Container("encrypted-dmg", "encrypted Apple disk image (decrypt it with "
                                             "hdiutil first)")),
    # Backups of a file system's blocks in use, not a disk: ntfsclone's special image (a NUL,
    # then "ntfsclone-image", then version 10.x and its header) and partclone's (Clonezilla's
    # for every other file system: "partclone-image" then its version). Read as the volume
    # (images/ntfsclone.py, images/partclone.py); hashed as raw, either would pass its header
    # and command stream for the volume.
    (b"\x00ntfsclone-image",
     Container("ntfsclone", "ntfsclone image (the clusters an NTFS volume had in use, no "
                            "others)")),
    (b"partclone-image",
     Container("partclone", "partclone image (the blocks a file system had in use, as "
                            "Clonezilla saves them)")),
    # adb backup: a text line "ANDROID BACKUP", then version, compression and encryption lines
    (b"ANDROID BACKUP\n", Container("android-backup", "Android backup (adb backup .ab; it "
                                                       "holds app data, not a disk)")),
)

#: Compressed files and archives: checked after the trailers, because a UDIF image's data fork
#: may begin with a bzip2 or zlib stream of its first chunk.
_ARCHIVE_MAGICS: tuple[tuple[bytes, Container], ...] = (
    # ID1 ID2 and CM = 8 (deflate, the only method RFC 1952 defines): two bytes alone begin
    # one disk in 65,536 by chance, and such a disk is not a gzip file
    (b"\x1f\x8b\x08", Container("gzip", "gzip-compressed file (decompress it first)")),
    (b"\xfd7zXZ\x00", Container("xz", "xz-compressed file (decompress it first)")),
    (b"BZh", Container("bzip2", "bzip2-compressed file (decompress it first)")),
    (b"\x28\xb5\x2f\xfd", Container("zstd", "zstd-compressed file (decompress it first)")),
    (b"7z\xbc\xaf\x27\x1c", Container("7z", "7-Zip archive (extract it first)")),
    # RAR 1.5 to 4 ("Rar!" 1A 07 00) and RAR 5 ("Rar!" 1A 07 01 00)
    (b"Rar!\x1a\x07\x00", Container("rar", "RAR archive (extract it first)")),
    (b"Rar!\x1a\x07\x01\x00", Container("rar", "RAR archive (version 5; extract it first)")),
    # lz4's legacy frame (magic 0x184C2102), used by the Linux kernel's lz4 images
    (b"\x02\x21\x4c\x18", Container("lz4", "lz4-compressed file (legacy frame; decompress it "
                                             "first)")),
    # lzop: its nine-byte magic (89 "LZO" 00 0D 0A 1A 0A)
    (b"\x89LZO\x00\r\n\x1a\n", Container("lzop", "lzop-compressed file (decompress it "
                                                    "first)")),
    # cpio's portable ASCII headers: "070701" (newc), "070702" (newc with CRC), "070707" (odc)
    (b"070701", Container("cpio", "cpio archive (extract it first)")),
    (b"070702", Container("cpio", "cpio archive (extract it first)")),
    (b"070707", Container("cpio", "cpio archive (extract it first)")),
    # ar (and the .deb packages made with it)
    (b"!<arch>\n", Container("ar", "ar archive (extract it first)")),
)

#: lz4 frame format: magic 0x184D2204 (little-endian), then the FLG byte whose top two bits are
#: the version, 01: six bytes a disk begins with by chance far less often than the four alone.
_LZ4_MAGIC = b"\x04\x22\x4d\x18"
#: lzip: "LZIP", then the version number (1; 0 in the first, pre-1.0 releases).
_LZIP_MAGIC = b"LZIP"
#: POSIX ustar and GNU tar: "ustar" at offset 257 of the first header, then NUL ("ustar\0",
#: POSIX, version "00" follows) or a space (GNU's "ustar  \0").
_TAR_MAGIC_AT = 257

#: A piece of a Clonezilla image folder: ``sda1.ext4-ptcl-img.gz.aa`` (partclone),
#: ``sda1.ntfs-img.zst`` (ntfsclone), ``sda1.dd-ptcl-img.xz.ab``: the image's name, its
#: compression, and split's two-letter suffix when it was cut into pieces.
_CLONEZILLA_PIECE = re.compile(
    r"^(?P<image>.+-(?:ptcl-)?img)\.(?P<compression>gz|zst|xz|bz2|lz4|lzo|lzma|lzip)"
    r"(?:\.[a-z]{2,3})?$")
#: The command that decompresses each of Clonezilla's compressions to standard output.
_DECOMPRESS = {"gz": "gunzip", "zst": "zstd -d", "xz": "xz -d", "bz2": "bzip2 -d",
               "lz4": "lz4 -d", "lzo": "lzop -d", "lzma": "xz -d --format=lzma",
               "lzip": "lzip -d"}

#: VirtualBox VDI: the image signature is at offset 0x40, after a 64-byte text banner.
_VDI_SIGNATURE = struct.pack("<I", 0xBEDA107F)


def _qcow(head: bytes) -> Container | None:
    if not head.startswith(b"QFI\xfb") or len(head) < 8:
        return None
    (version,) = struct.unpack(">I", head[4:8])
    if version == 1:
        return Container("qcow", "QCOW version 1 (QEMU copy-on-write)")
    if version in (2, 3):
        return Container("qcow2", f"QCOW2 (QEMU copy-on-write, version {version})")
    return Container("qcow2", f"QCOW (QEMU copy-on-write, unknown version {version})")


def _tail(path: Path, length: int) -> bytes:
    """The last ``length`` bytes of ``path`` (fewer for a smaller file)."""
    try:
        return read_at(path, -length, length)
    except (OSError, InputError):
        return b""


def _is_aff4_zip(path: Path) -> bool:
    """An AFF4 volume is a ZIP file whose comment is the volume's ``aff4://`` URN and which holds
    ``information.turtle``; either mark, near the end where the central directory lives, is
    enough."""
    tail = _tail(path, _ZIP_TAIL)
    return b"information.turtle" in tail or (b"PK\x05\x06" in tail and b"aff4://" in tail)


def identify_directory(path: Path) -> Container | None:
    """A bundle folder: an Apple sparsebundle (``Info.plist`` + ``bands/``), a Parallels
    ``.hdd`` folder (``DiskDescriptor.xml``) or an AFD folder (named ``.afd``, as afflib
    requires; its reader lists and checks the ``.aff`` files inside)."""
    if path.suffix.lower() == ".afd":
        return Container("afd", "AFD (AFF in a folder of .aff files, afflib's multi-file form)")
    plist = path / "Info.plist"
    if plist.is_file() and (path / "bands").is_dir() and _mentions(plist, b"sparsebundle"):
        return Container("sparsebundle", "Apple sparse bundle disk image (.sparsebundle)")
    descriptor = path / "DiskDescriptor.xml"
    if descriptor.is_file() and _mentions(descriptor, b"Parallels_disk_image"):
        return Container("parallels", "Parallels disk image bundle (.hdd)")
    return None


def _mentions(path: Path, word: bytes) -> bool:
    try:
        return word in read_at(path, 0, _PLIST_LIMIT)
    except (OSError, InputError):
        return False


def identify(path: Path, head: bytes) -> Container | None:
    """The container ``path`` (whose first bytes are ``head``) is, or ``None`` for none known."""
    if path.is_dir():
        return identify_directory(path)
    return _by_head(path, head) or _by_tail(path, head) or _archive(path, head)


def _by_head(path: Path, head: bytes) -> Container | None:
    """Signatures in the first bytes (and a sparse bundle's ``Info.plist`` by its folder)."""
    found = _qcow(head)
    for magic, container in _HEAD_MAGICS:
        if found is None and head.startswith(magic):
            found = container
    if found is None and head[0x40:0x44] == _VDI_SIGNATURE:
        found = Container("vdi", "VDI (VirtualBox disk image)")
    if found is None and head.startswith(b"<?xml") and b"Parallels_disk_image" in head:
        found = Container("parallels", "Parallels disk descriptor (DiskDescriptor.xml)")
    if found is None and path.name == "Info.plist":
        found = identify_directory(path.parent)
    return found


def _by_tail(path: Path, head: bytes) -> Container | None:
    """Signatures at the end of the file: UDIF's ``koly`` trailer, a fixed VHD's footer."""
    tail = _tail(path, 512)
    if tail.startswith(b"koly") and len(tail) == 512:
        return Container("dmg", "Apple disk image (UDIF .dmg)")
    if tail.startswith(b"conectix") or tail[1:].startswith(b"conectix"):
        # a fixed VHD: the media, then the footer (511 bytes in some old Virtual PC images)
        return Container("vhd", "VHD (Microsoft virtual hard disk, fixed)")
    if tail.endswith(b"cdsaencr"):  # version 1: the encryption header ends the file
        return Container("encrypted-dmg", "encrypted Apple disk image (version 1; decrypt it "
                                          "with hdiutil first)")
    return None


def _archive(path: Path, head: bytes) -> Container | None:
    """Compressed files and ZIP archives; an AFF4 volume is a ZIP told apart by its central
    directory at the end."""
    if head.startswith(b"PK\x03\x04"):
        if _is_aff4_zip(path):
            return Container("aff4", "AFF4 (Advanced Forensic Format 4)")
        return Container("zip", "ZIP archive (extract it first)")
    for magic, container in _ARCHIVE_MAGICS:
        if head.startswith(magic):
            return _clonezilla(path, container)
    found = _checked_archive(head)
    return _clonezilla(path, found) if found is not None else None


def _clonezilla(path: Path, container: Container) -> Container:
    """A compressed file named as a piece of a Clonezilla image says how to get the image:
    the pieces joined, decompressed, give an ntfsclone or partclone image BitWitness reads."""
    piece = _CLONEZILLA_PIECE.match(path.name)
    if piece is None:
        return container
    image, compression = piece.group("image"), piece.group("compression")
    whole = f"{image}.{compression}"
    # quoted: the names are the evidence's, and the line is one an examiner may paste
    out, tool = shlex.quote(image), _DECOMPRESS[compression]
    how = (f"{tool} < {shlex.quote(whole)} > {out}" if path.name == whole else
           f"cat {shlex.quote(whole)}.* | {tool} > {out}")
    return replace(container, label=(
        f"{container.name}-compressed Clonezilla image{'' if path.name == whole else ' piece'} "
        f"({how}, then open {out})"))


def _checked_archive(head: bytes) -> Container | None:
    """Archives whose magic is checked with a byte beside it (lz4, lzip, compress, lrzip), lies
    at an offset (tar), or is too short to trust alone and is checked by decoding the first
    bytes (zlib, lzma) or by a header checksum (a tar without the ustar magic)."""
    if head.startswith(_LZ4_MAGIC) and len(head) > 4 and head[4] >> 6 == 1:
        return Container("lz4", "lz4-compressed file (decompress it first)")
    if head.startswith(_LZIP_MAGIC) and len(head) > 4 and head[4] in (0, 1):
        return Container("lzip", "lzip-compressed file (decompress it first)")
    # compress (.Z): 1F 9D, then a flags byte: the block-mode bit, two unused bits that are
    # zero, and the largest code width, 9 to 16
    if head.startswith(b"\x1f\x9d") and len(head) > 2 and not head[2] & 0x60 \
            and 9 <= head[2] & 0x1F <= 16:
        return Container("compress", "compress (.Z) file (decompress it first: uncompress or "
                                     "gzip -d)")
    # lrzip: "LRZI", then the major version, 0
    if head.startswith(b"LRZI") and len(head) > 4 and head[4] == 0:
        return Container("lrzip", "lrzip-compressed file (decompress it first)")
    ustar = head[_TAR_MAGIC_AT:_TAR_MAGIC_AT + 6]
    if ustar in (b"ustar\x00", b"ustar ") or _old_tar(head):
        return Container("tar", "tar archive (extract it first)")
    return _decoded_stream(head)


def _old_tar(head: bytes) -> bool:
    """A tar header without the ustar magic (Unix V7's format, ``tar --format=v7``): a name, and
    the header's own checksum (octal at 148, the sum of its 512 bytes with those eight counted
    as spaces) right; a disk's first sector passes by chance one time in some 2^20 at worst,
    and then only with a printable name before its first NUL."""
    if len(head) < 512 or head[0] in (0, 0xFF):
        return False
    field = head[148:156].replace(b"\x00", b" ").strip()
    if not field or any(c not in b"01234567" for c in field):
        return False
    name = head[:100].split(b"\x00", 1)[0]
    if not all(32 <= c < 127 for c in name):
        return False
    header = head[:148] + b" " * 8 + head[156:512]
    return int(field, 8) in (sum(header), sum(b - 256 if b > 127 else b for b in header))


def _decoded_stream(head: bytes) -> Container | None:
    """A zlib stream (two header bytes: CMF 0x78, the pair a multiple of 31) or a legacy
    ``.lzma`` file (properties, dictionary size, uncompressed size: thirteen bytes, no magic):
    each only when the first bytes also decode as such a stream, so a disk that begins with
    those bytes by chance stays raw."""
    if len(head) > 2 and head[0] == 0x78 and (head[0] << 8 | head[1]) % 31 == 0:
        try:
            if zlib.decompressobj().decompress(head, 1 << 16):
                return Container("zlib", "zlib-compressed file (decompress it first)")
        except zlib.error:
            pass
    # the uncompressed size: unknown (all ones) or below 2^56
    if len(head) > 13 and head[0] < 225 and _lzma_dictionary(head[1:5]) \
            and (head[5:13] == b"\xff" * 8 or head[12] == 0):
        try:
            if lzma.LZMADecompressor(lzma.FORMAT_ALONE).decompress(head, 1 << 16):
                return Container("lzma", "lzma-compressed file (decompress it first: xz -d "
                                         "--format=lzma)")
        except lzma.LZMAError:
            pass
    return None


def _lzma_dictionary(field: bytes) -> bool:
    """An ``.lzma`` header's dictionary size as its writers set it: 2^n or 2^n + 2^(n-1),
    from 4 KiB to 1.5 GiB."""
    size = int.from_bytes(field, "little")
    return any(size in (1 << n, 3 << (n - 1)) for n in range(12, 31))
