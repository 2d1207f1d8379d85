"""The volume tree of an image: partition tables, then the volumes inside partitions.

The Sleuth Kit reads the partition table (the rows of :mod:`~bitwitness.report.browse.volumes`,
numbered as ``mmls`` numbers them); inside each row we look for what TSK cannot open, with the
libyal readers: a LUKS or BitLocker volume (decrypted with the analyst's key; a BitLocker volume
lists its key protectors even while locked), an APFS container (one child per APFS volume) and the
Volume Shadow Copy stores of an NTFS volume (one child per store, oldest first, as ``vshadowinfo``
numbers them). Each node has a path made of the row's index and one name per level, ``2``,
``2/vss3``, ``1/apfs2``, ``0/luks1``, ``0/bde1``; ``-p`` takes those paths, and a plain ``-p N``
still names row ``N``.

A partition table inside a partition (a BSD disklabel in an MBR slice, as ``mmls -r`` finds it)
or inside a decrypted or logical volume gives one child ``pK`` per allocated row, ``K`` the row's
index as ``mmls -o START`` numbers the rows of that table.

Decrypted bytes stay in memory: a child's stream reads through the libyal object on demand.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bitwitness.errors import BitWitnessError, FileSystemError, FormatError, InputError
from bitwitness.report.browse.extfeatures import (
    SUPERBLOCK_OFFSET,
    SUPERBLOCK_SIZE,
    Reader,
    parse_superblock,
    read_superblock,
    reader_for,
)
from bitwitness.report.browse.filesystem import FileSystem
from bitwitness.report.browse.interface import BrowsableFileSystem
from bitwitness.report.browse.libyalio import FileObject, LibyalStream, short_reason
from bitwitness.report.browse.tsk import TskImage
from bitwitness.report.browse.unreadable import unreadable_kind
from bitwitness.report.browse.volumekeys import NO_KEYS, VolumeKeys
from bitwitness.report.browse.volumes import (
    Partition,
    PartitionKind,
    VolumeLayout,
    encryption_at,
    filesystem_type,
    is_bitlocker_to_go,
    read_layout,
)
from bitwitness.stream import ConcatStream, ImageStream, SliceStream

if TYPE_CHECKING:
    # The readers of what few images hold (dynamic disks, LUKS, md members, btrfs, UDF,
    # damaged boot sectors) are imported where a volume turns out to need them: together
    # they were ~45 ms of every ``ls`` of a plain file system (tests/test_startup.py).
    from bitwitness.report.browse import dmcrypt, ldm, luks2
    from bitwitness.report.browse.iso_sessions import IsoSession
    from bitwitness.report.browse.mdraid import MdMember

    #: a LUKS reader: (volume, key bytes, what) -> (the data's keyed cipher, its segment)
    _Unlock = Callable[[ImageStream, bytes, str], tuple[dmcrypt.SectorCipher, luks2.Segment]]

#: Volumes inside volumes deeper than this are a loop or a hostile image.
MAX_NESTING = 8
#: More shadow-copy stores or APFS volumes than this in one volume is not a real one.
MAX_CHILDREN = 512
_APFS_MAGIC = b"NXSB"  # at byte 32 of an APFS container's superblock
_NOT_OPENED = (OSError, ValueError, TypeError, MemoryError, RuntimeError)
_ROW = re.compile(r"^-?\d+$")
#: File systems read by libyal (fs_libyal.py) instead of TSK.
LIBYAL_FILE_SYSTEMS = ("apfs", "xfs")
#: File systems read by a reader of our own (btrfs.py, udf.py), neither TSK nor libyal reads them.
OWN_FILE_SYSTEMS = ("btrfs", "udf")
#: ``VolumeNode.reader`` of an ext file system with a feature TSK cannot read (extfeatures.py)
LIBFSEXT = "libfsext"
#: ``VolumeNode.reader`` of a volume TSK reads through its backup boot sector (bootbackup.py)
BACKUP_BOOT = "backup boot sector"
#: ``VolumeNode.reader`` of an ISO 9660 volume with Rock Ridge, read by iso9660.py (TSK ignores
#: Rock Ridge: its names, types, modes, owners, times and links would be lost)
ROCKRIDGE = "rockridge"
#: ``VolumeNode.kind`` of an earlier session of a multi-session ISO 9660 image (``N/sessionK``)
SESSION = "session"
#: The file trees of logical evidence files, read by libewf (logical.py): no file system at all.
LOGICAL_FILE_SYSTEMS = ("l01", "lx01")
_LVM_LABEL = b"LABELONE"  # at the start of one of the first four sectors of an LVM2 PV
_BDE_SIGNATURE = b"-FVE-FS-"  # at byte 3 of a BitLocker volume
#: volumes whose bytes may start with a partition table of their own
_HOLD_TABLES = ("luks", "bitlocker", "lvm")
#: BitLocker recovery password: eight groups of six digits
_RECOVERY = re.compile(r"^\d{6}(?:-\d{6}){7}$")
#: libbde's key protection types (pybde.key_protection_types) as we print them
_PROTECTION = {0x0000: "clear key", 0x0100: "TPM", 0x0200: "startup key",
               0x0500: "TPM and PIN", 0x0800: "recovery password", 0x2000: "password"}
#: libbde's encryption methods (pybde.encryption_methods)
_BDE_METHODS = {0x8000: "AES-CBC 128 with Elephant diffuser",
                0x8001: "AES-CBC 256 with Elephant diffuser", 0x8002: "AES-CBC 128",
                0x8003: "AES-CBC 256", 0x8004: "AES-XTS 128", 0x8005: "AES-XTS 256"}


@dataclass
class VolumeNode:
    """One node of the tree: a partition-table row or a volume found inside one."""

    path: str  #: "2", "2/vss3", "1/apfs2", "0/luks1"
    kind: str  #: a row's kind ("partition", "whole", ...) or "luks", "apfs", "vss"
    description: str
    offset: int  #: first byte in its parent (the media for a row)
    size: int  #: bytes
    row: Partition  #: the partition-table row it lies in
    filesystem: str | None = None  #: "ntfs", "ext4", "apfs", ...: the file system at this node
    encrypted: str | None = None  #: "LUKS", "BitLocker", "APFS" when the node is encrypted
    locked: bool = False  #: encrypted and not opened (no key given, or the key did not open it)
    #: why the key given did not open this volume (the one line a command browsing it says);
    #: None where no key was tried or it opened the volume
    refused: str | None = None
    created: datetime | None = None  #: a shadow-copy store's creation time (UTC)
    identifier: str | None = None  #: volume or store identifier (GUID) where one exists
    #: the row of a partition table inside the parent that this node is (``N/pK``), as TSK
    #: reads the table there: its start and length count the table's sectors
    table_row: Partition | None = None
    key: str | None = None  #: the kind of key that decrypted this node or one above it
    #: who reads the file system when it is not its type's usual reader: ``"libfsext"`` for
    #: an ext file system with a feature The Sleuth Kit cannot read (extfeatures.py)
    reader: str | None = None
    #: an encrypted volume's key protectors ("password", "recovery password", ...) with their
    #: identifiers, as the volume lists them (BitLocker)
    protectors: list[str] = field(default_factory=list)
    children: list[VolumeNode] = field(default_factory=list)
    stream: ImageStream | None = field(default=None, repr=False)  #: this node's bytes
    #: the whole media as this row's file system is read, where it differs from the image's
    #: (a boot sector taken from its backup: bootbackup.py)
    media: ImageStream | None = field(default=None, repr=False)
    #: what every command browsing this node must say (how its file system is read)
    warning: str | None = None
    #: what the volume holds that nothing here reads ("Linux swap space", "ZFS pool member
    #: (vdev)"), by its signature (unreadable.py); None where a reader opened it or none matched
    unread: str | None = None
    handle: Any = field(default=None, repr=False)  #: the libyal object behind a volume
    #: the session of a multi-session ISO 9660 image this node reads (iso_sessions.py): on
    #: the ISO's own node the last one, on an ``N/sessionK`` child an earlier one; None for
    #: an ISO of one session
    iso_session: IsoSession | None = field(default=None, repr=False)

    @property
    def snapshot(self) -> bool:
        """An earlier state of its parent (a shadow-copy store, an earlier ISO session)."""
        return self.kind in ("vss", SESSION)

    def walk(self) -> Iterator[VolumeNode]:
        yield self
        for child in self.children:
            yield from child.walk()

    @property
    def missing_sectors(self) -> int:
        """Sectors of a partition-table row that lie past the end of the media (0 for a
        volume inside another): an image cut short, or a table that claims more than the
        disk held. Its file system reads nothing there; ``partitions`` and the browsing
        commands say so instead of listing the row as if it were whole."""
        if "/" in self.path or self.kind not in (PartitionKind.PARTITION, PartitionKind.WHOLE):
            return 0
        wanted = self.row.length * self.row.sector_size
        return max(0, wanted - self.size) // max(self.row.sector_size, 1)

    def missing_note(self) -> str | None:
        """One line on :attr:`missing_sectors`, or None when the row is whole."""
        missing = self.missing_sectors
        if not missing:
            return None
        last = self.row.start + self.row.length - 1
        return (f"partition {self.path} (sectors {self.row.start}-{last}) runs past the end of "
                f"the media: {missing} of its {self.row.length} sectors are not in the image "
                f"(cut short, or a table claiming more than the disk held); reads there give "
                f"no data")


@dataclass
class VolumeTree:
    """Every node of an image; close it to release the libyal objects (not the stream)."""

    stream: ImageStream
    layout: VolumeLayout
    nodes: list[VolumeNode]
    keys: VolumeKeys = NO_KEYS
    _handles: list[Any] = field(default_factory=list, repr=False)
    #: the LDM database of a Windows dynamic disk (ldm.py), or why it could not be read
    ldm: ldm.LdmDisk | str | None = field(default=None, repr=False)

    def walk(self) -> Iterator[VolumeNode]:
        for node in self.nodes:
            yield from node.walk()

    @property
    def filesystems(self) -> list[VolumeNode]:
        return [n for n in self.walk() if n.filesystem]

    def find(self, path: str) -> VolumeNode:
        wanted = normalise(path)
        for node in self.walk():
            if node.path == wanted:
                return node
        for node in self.walk():
            if node.locked and wanted.startswith(node.path + "/"):
                raise still_locked(node)
        raise FileSystemError(f"-p {path}: no such volume in this image; volumes: "
                              f"{', '.join(n.path for n in self.walk()) or 'none'}")

    def close(self) -> None:
        for handle in reversed(self._handles):
            with suppress(*_NOT_OPENED):  # closing is best effort; nothing was written
                handle.close()
        self._handles.clear()


def normalise(path: str) -> str:
    """``"2/"``, ``" 2 / vss3"`` -> ``"2"``, ``"2/vss3"``."""
    return "/".join(part.strip() for part in path.strip().split("/") if part.strip())


def read_tree(stream: ImageStream, keys: VolumeKeys = NO_KEYS) -> VolumeTree:
    """The partition table of ``stream`` and every volume found inside its rows.

    Raises :class:`~bitwitness.errors.InputError` when ``keys`` does not open an encrypted
    volume (the message names the volume, never the key).
    """
    if getattr(stream, "logical", False):
        return _logical(stream, keys)
    image = TskImage(stream)
    layout = read_layout(image)
    tree = VolumeTree(stream, layout, [], keys)
    if layout.scheme in ("dos", "gpt"):
        tree.ldm = _read_ldm(stream, layout.sector_size)
    try:
        for row in layout.partitions:
            offset = row.byte_offset
            size = max(0, min(row.length * row.sector_size, stream.size - offset))
            node = VolumeNode(path=str(row.index), kind=str(row.kind),
                              description=row.description, offset=offset, size=size, row=row,
                              filesystem=row.filesystem, encrypted=row.encrypted)
            if row.kind in (PartitionKind.PARTITION, PartitionKind.WHOLE) and size > 0:
                node.stream = stream if offset == 0 and size == stream.size else SliceStream(
                    stream, offset, size)
                _expand(tree, node, depth=1)
            tree.nodes.append(node)
        if keys.luks_header is not None:
            _detached_luks(tree, keys.luks_header)
        _refuse_useless_key(tree)
    except BaseException:
        tree.close()
        raise
    return tree


def _refuse_useless_key(tree: VolumeTree) -> None:
    """A key that opened none of the volumes it was tried on is an error (a mistyped
    passphrase); one that opened some leaves the others locked, each saying why, so that a disk
    whose volumes have different keys is browsed one key at a time."""
    refused = [node for node in tree.walk() if node.refused is not None]
    if refused and not any(node.key for node in tree.walk()):
        raise InputError(str(refused[0].refused))


def _unlocking(tree: VolumeTree, node: VolumeNode, unlock: Callable[[], None]) -> None:
    """Run ``unlock`` (which opens ``node`` with the tree's key and expands what it holds);
    a key it refuses leaves ``node`` locked with the reason (:attr:`VolumeNode.refused`) rather
    than ending the whole tree. A volume inside ``node`` that refuses the key was marked by its
    own call already, so what reaches here is about ``node`` itself."""
    try:
        unlock()
    except InputError as exc:
        node.locked, node.refused = True, str(exc)


def still_locked(node: VolumeNode) -> BitWitnessError:
    """The error for browsing inside the locked ``node``: the key's refusal where one was
    tried, else the options that give one."""
    if node.refused is not None:
        return InputError(node.refused)
    return FileSystemError(f"volume {node.path} is encrypted ({node.encrypted}); give its key "
                           f"with {KEY_OPTIONS}")


def _detached_luks(tree: VolumeTree, header: Path) -> None:
    """The volume whose LUKS header is the file ``header`` (``cryptsetup --header``): its data,
    encrypted from its first byte, has no signature, so it is the one row in which nothing was
    recognised. Several such rows are refused rather than guessed (any bytes decrypt)."""
    rows = [node for node in tree.nodes
            if node.stream is not None and not node.filesystem and not node.encrypted
            and not node.children and node.kind in (PartitionKind.PARTITION.value,
                                                    PartitionKind.WHOLE.value)]
    if len(rows) != 1:
        found = ", ".join(node.path for node in rows) or "none"
        raise InputError(f"--luks-header {header}: its data must be the one partition in which "
                         f"nothing is recognised; such partitions: {found}")
    node = rows[0]
    node.encrypted = "LUKS"
    if not tree.keys.given:
        node.locked = True
        return
    from bitwitness.images.raw import RawStream
    from bitwitness.report.browse import luks1, luks2

    with RawStream(header) as stream:
        head = stream.pread(0, 8)
        if head[:6] != b"LUKS\xba\xbe":
            raise InputError(f"--luks-header {header}: not a LUKS header")
        unlock = luks2.unlock if luks2.is_luks2(head) else luks1.unlock
        version = "LUKS2" if luks2.is_luks2(head) else "LUKS1"
        _unlocking(tree, node, lambda: _luks_ours(tree, node, 1, unlock, version,
                                                  header=stream))


def _logical(stream: Any, keys: VolumeKeys) -> VolumeTree:
    """A logical evidence file (L01, Lx01): one node, its file tree. Its media is the files'
    bytes end to end, not a disk: TSK is not asked for a partition table or a file system in it
    (the first file could be a disk image, which would then pass for the evidence's own)."""
    tree = stream.logical_tree()  # lists the files now: a tree libewf cannot read fails here
    name = str(stream.container)
    sectors = -(-stream.size // stream.sector_size)
    row = Partition(index=0, kind=PartitionKind.WHOLE, start=0, length=sectors,
                    description=f"{name} logical evidence file: {tree.files} files, "
                                f"{tree.folders} folders", sector_size=stream.sector_size,
                    filesystem=name.lower())
    layout = VolumeLayout(scheme="logical", sector_size=stream.sector_size,
                          media_size=stream.size, partitions=(row,))
    node = VolumeNode(path="0", kind=str(row.kind), description=row.description, offset=0,
                      size=stream.size, row=row, filesystem=row.filesystem, stream=stream)
    return VolumeTree(stream, layout, [node], keys)


def _read_ldm(stream: ImageStream, sector: int) -> ldm.LdmDisk | str | None:
    """The LDM database of an MBR dynamic disk; its one-line refusal when it does not hold
    together (the volume tree still lists the partition table); None: not a dynamic disk."""
    from bitwitness.report.browse import ldm

    try:
        return ldm.read_disk(stream, sector)
    except FileSystemError as exc:
        return str(exc)


def _ldm(tree: VolumeTree, node: VolumeNode, depth: int) -> bool:
    """The 0x42 row (MBR) or "LDM data" partition (GPT) of a Windows dynamic disk: each volume
    of its database becomes the child ``ldmK`` (ldm.py), read over its extents (end to end for a
    spanned volume) and expanded like any volume. TSK's file system at the row's start is the
    first volume's: the row itself holds none, so that no volume is offered twice. True when
    ``node`` is that row."""
    if tree.ldm is None or "/" in node.path or node.kind != PartitionKind.PARTITION.value:
        return False
    from bitwitness.report.browse import ldm

    if isinstance(tree.ldm, str):
        if node.row.start not in ldm.host_rows(tree.stream):
            return False
        said = f"Windows dynamic disk (LDM) whose database is not read: {tree.ldm}"
        node.description += f"{', ' if node.description else ''}{said}"
        if node.filesystem:
            node.warning = (f"partition {node.path}: {said}; only the file system at the "
                            "row's start is seen")
        else:
            node.unread = said
        return False
    disk = tree.ldm
    if node.row.start != _ldm_row(tree, disk):
        return False
    node.filesystem = None
    node.description += f"{', ' if node.description else ''}{disk.describe()}"
    for note in disk.notes:
        node.description += f" ({note})"
    if len(disk.volumes) > MAX_CHILDREN:
        node.description += (f" (only the first {MAX_CHILDREN} of its {len(disk.volumes)} "
                             "volumes are listed)")
    for volume in disk.volumes[:MAX_CHILDREN]:
        name = f"ldm{volume.number}"
        if volume.unread is not None:
            node.children.append(VolumeNode(
                path=f"{node.path}/{name}", kind="ldm",
                description=volume.describe(node.row.sector_size),
                offset=0, size=volume.size, row=node.row, identifier=volume.guid,
                unread=f"LDM {volume.layout} volume '{volume.name}': {volume.unread}",
                key=node.key))
            continue
        pieces: list[ImageStream] = [SliceStream(tree.stream, e.offset, e.size)
                                     for e in volume.extents]
        stream = pieces[0] if len(pieces) == 1 else ConcatStream(pieces)
        child = _child(node, name, "ldm", volume.describe(node.row.sector_size),
                       stream=stream, handle=None)
        child.offset = volume.extents[0].offset - node.offset
        child.identifier = volume.guid
        _probe(child)
        node.children.append(child)
        _expand(tree, child, depth + 1)
    return True


def _ldm_row(tree: VolumeTree, disk: ldm.LdmDisk) -> int | None:
    """The first sector of the row a dynamic disk's volumes are listed under: the partition
    starting where the PRIVHEAD says the data area starts, else the first 0x42 or "LDM data"
    row (a data area that starts elsewhere must not leave the volumes unlisted)."""
    from bitwitness.report.browse import ldm

    start, rest = divmod(disk.data_start, tree.layout.sector_size)
    rows = [r.start for r in tree.layout.partitions if r.kind is PartitionKind.PARTITION]
    if not rest and start in rows:
        return start
    hosts = [r for r in ldm.host_rows(tree.stream) if r in rows]
    return hosts[0] if hosts else None


def _expand(tree: VolumeTree, node: VolumeNode, depth: int) -> None:
    """Add the volumes inside ``node`` (its stream is set)."""
    if depth > MAX_NESTING or node.stream is None or _ldm(tree, node, depth):
        return
    head = node.stream.pread(0, 2048)
    _beyond_tsk(node, head)
    _iso_sessions(node)
    rock_ridge(node)
    _udf_bridge(node)
    if not node.filesystem and not node.encrypted:
        ext_beyond_tsk(node, head)
    _backup_boot(tree, node)
    if node.encrypted == "LUKS" or head[:6] == b"LUKS\xba\xbe":
        _unlocking(tree, node, lambda: _luks(tree, node, depth))
    elif (node.encrypted == "BitLocker" or head[3:11] == _BDE_SIGNATURE
          or is_bitlocker_to_go(head)):
        _unlocking(tree, node, lambda: _bitlocker(tree, node, depth))
    elif not node.filesystem and any(head[at : at + 8] == _LVM_LABEL
                                     for at in range(0, 2048, 512)):
        _lvm(tree, node, depth)
    elif head[32:36] == _APFS_MAGIC and not node.filesystem:
        _apfs(tree, node)
    elif node.filesystem == "ntfs":
        _shadow_copies(tree, node)
    elif not node.filesystem and (node.kind in _HOLD_TABLES or _dos_row(tree, node)):
        _partition_table(tree, node, depth)
    if not (node.filesystem or node.encrypted or node.children):
        _beyond_known(tree, node, depth)


def _beyond_known(tree: VolumeTree, node: VolumeNode, depth: int) -> None:
    """A volume where nothing above found anything: an md member's data (mdraid.py), else
    named by what its signature says it holds."""
    from bitwitness.report.browse.mdraid import find_member

    assert node.stream is not None
    member = find_member(node.stream)
    if member is not None:
        _md_member(tree, node, member, depth)
    if not node.children:
        _name_unread(node)


def _md_member(tree: VolumeTree, node: VolumeNode, member: MdMember, depth: int) -> None:
    """A Linux md member (mdraid.py): a RAID1 member's data region is the child ``md``,
    browsed like any volume (LVM, a file system...); a member of another level is named only."""
    assert node.stream is not None
    said = member.describe()
    size = min(member.data_size, node.stream.size - member.data_offset)
    if not member.whole_copy or size <= 0:
        why = ("its data lies outside the member" if member.whole_copy
               else "it holds a share of the array, which needs its other members")
        node.unread = f"Linux software RAID: {said}; {why}"
        node.description += (f"{', ' if node.description else ''}{node.unread} (not read by "
                             "BitWitness)")
        return
    node.description += f"{', ' if node.description else ''}{said}"
    child = _child(node, "md", "md", f"data of {said} at byte {member.data_offset}",
                   stream=SliceStream(node.stream, member.data_offset, size), handle=None)
    child.offset, child.identifier = member.data_offset, member.array_uuid
    _probe(child)
    node.children.append(child)
    _expand(tree, child, depth + 1)


def _name_unread(node: VolumeNode) -> None:
    """A volume nothing here opened, named by what it holds where a signature says (swap,
    F2FS, ZFS, a RAID member...; unreadable.py): its description says so, and that it is not
    read, so that the row does not pass for empty."""
    assert node.stream is not None
    if node.unread is not None:  # named already (an md member of another level)
        return
    node.unread = unreadable_kind(node.stream)
    if node.unread is not None:
        if node.unread.endswith("(a partition table)") and node.kind == PartitionKind.WHOLE:
            node.description = ""  # not "no partition table": one TSK does not read
        node.description += (f"{', ' if node.description else ''}{node.unread} (not read by "
                             "BitWitness)")


def _beyond_tsk(node: VolumeNode, head: bytes) -> None:
    """XFS, btrfs and UDF by their magic: TSK names none of them."""
    assert node.stream is not None
    if node.filesystem or node.encrypted:
        return
    from bitwitness.report.browse.btrfs import is_btrfs
    from bitwitness.report.browse.udf import is_udf

    if head[:4] == b"XFSB":
        node.filesystem = "xfs"
    elif is_btrfs(node.stream):
        node.filesystem = "btrfs"
    elif is_udf(node.stream):
        node.filesystem = "udf"


def _udf_bridge(node: VolumeNode) -> None:
    """A bridge disc (ISO 9660 and UDF over the same files, as Windows ISOs and most discs
    burned on Windows are): the ISO 9660 side stays the node's, the UDF side is the child
    ``udf``, a file system of its own that ``-p N/udf`` chooses. The ISO 9660 side may hold
    only a README saying the disc is UDF, so neither is preferred silently."""
    assert node.stream is not None
    if node.filesystem != "iso9660":
        return
    from bitwitness.report.browse.udf import is_udf

    if is_udf(node.stream):
        child = _child(node, "udf", "udf", "UDF file system of a bridge disc",
                       stream=node.stream, handle=None)
        child.filesystem = "udf"
        node.children.append(child)


def _backup_boot(tree: VolumeTree, node: VolumeNode) -> None:
    """An NTFS or exFAT volume whose boot sector is damaged, read through its backup copy
    (bootbackup.py): the node then reads through an overlay of the media, never written."""
    assert node.stream is not None
    if node.filesystem in ("fat32", "exfat"):
        from bitwitness.report.browse.bootbackup import first_sector_damaged

        if first_sector_damaged(node.stream, node.filesystem):
            node.warning = (f"volume {node.path} ({node.filesystem}): its boot sector is "
                            "damaged; The Sleuth Kit read it with the backup copy")
    if node.filesystem or node.encrypted:
        return
    from bitwitness.report.browse.bootbackup import BootOverlay, find_backup

    found = find_backup(node.stream)
    if found is None:
        return
    if "/" not in node.path:  # a row: TSK reads it at its offset in the whole media
        media = BootOverlay(tree.stream, node.offset + found.at, found.data)
        stream: ImageStream = SliceStream(media, node.offset, node.size)
    else:
        media, stream = None, BootOverlay(node.stream, found.at, found.data)
    kind = filesystem_type(TskImage(stream), 0)
    if kind is None:
        return
    node.filesystem, node.reader, node.stream, node.media = kind, BACKUP_BOOT, stream, media
    said = found.describe(node.row.sector_size)
    node.description += f"{', ' if node.description else ''}{said}"
    node.warning = f"volume {node.path} ({kind}): {said}; TSK alone finds no file system there"


def _dos_row(tree: VolumeTree, node: VolumeNode) -> bool:
    """A partition of the media's DOS table, where ``mmls -r`` looks for a table (a BSD
    disklabel in an 0xa5/0xa6/0xa9 slice)."""
    return ("/" not in node.path and tree.layout.scheme == "dos"
            and node.kind == PartitionKind.PARTITION.value)


def _partition_table(tree: VolumeTree, node: VolumeNode, depth: int) -> None:
    """The partitions of an MBR, GPT, BSD disklabel... inside a partition or a decrypted or
    logical volume: ``p2`` is row 2 of its table as ``mmls`` numbers it on the volume's bytes
    (``mmls -o START`` on the media for a partition).

    A BSD disklabel in a slice may count its offsets from the disk's start (OpenBSD, NetBSD,
    FreeBSD before 5.0, util-linux's ``fdisk``) rather than from the slice's (FreeBSD since):
    its raw partition ``c`` then starts where the slice starts, and its rows are moved back by
    that much before their bytes are read, as the BSD kernels read them (TSK does not, and
    ``mmls -o`` shows such rows that far past their data). Rows lying outside the volume are
    not children (there are no bytes of the volume to read); the table's own numbers stay in
    ``table_row``.
    """
    assert node.stream is not None
    layout = read_layout(TskImage(node.stream))
    if layout.scheme == "none":
        return
    node.description += f", partition table {layout.scheme}"
    shift = _bsd_shift(layout, node)
    for row in layout.partitions[:MAX_CHILDREN]:
        if row.kind is not PartitionKind.PARTITION:
            continue
        offset = (row.start - shift) * row.sector_size
        size = max(0, min(row.length * row.sector_size, node.stream.size - offset))
        if offset < 0 or size <= 0:
            continue
        child = _child(node, f"p{row.index}", "partition", row.description or "partition",
                       stream=SliceStream(node.stream, offset, size), handle=None)
        child.offset, child.table_row = offset, row
        if shift:
            _probe(child)  # read_layout probed the rows where TSK places them
        else:
            child.filesystem, child.encrypted = row.filesystem, row.encrypted
        node.children.append(child)
        _expand(tree, child, depth + 1)


def _bsd_shift(layout: VolumeLayout, node: VolumeNode) -> int:
    """The slice's first sector when ``layout`` is a BSD disklabel counting from the disk's
    start (its raw partition ``c``, slot 2, starts where the slice does), else 0."""
    if layout.scheme != "bsd" or "/" in node.path:
        return 0
    first, rest = divmod(node.offset, layout.sector_size)
    raw = next((r for r in layout.partitions if r.slot == "002"), None)
    return first if first and not rest and raw is not None and raw.start == first else 0


def _child(node: VolumeNode, name: str, kind: str, description: str, *, stream: ImageStream,
           handle: Any) -> VolumeNode:
    return VolumeNode(path=f"{node.path}/{name}", kind=kind, description=description, offset=0,
                      size=stream.size, row=node.row, stream=stream, handle=handle, key=node.key)


def _probe(child: VolumeNode) -> None:
    """The file system (or encryption) TSK sees at the start of ``child``; XFS, btrfs and UDF
    by their magic (:func:`_beyond_tsk`)."""
    assert child.stream is not None
    image = TskImage(child.stream)
    child.encrypted = encryption_at(image, 0)
    if not child.encrypted:
        child.filesystem = filesystem_type(image, 0)
    head = child.stream.pread(0, 2048)
    _beyond_tsk(child, head)
    if not child.filesystem and not child.encrypted:
        ext_beyond_tsk(child, head)
    _iso_sessions(child)
    rock_ridge(child)


def rock_ridge(node: VolumeNode) -> None:
    """An ISO 9660 volume whose root announces Rock Ridge: still named ``iso9660`` (as
    ``fsstat`` names it), read by iso9660.py rather than TSK, which ignores Rock Ridge. A
    session TSK does not read (it reads the one the descriptors at sector 16 give) is read by
    iso9660.py whatever its tree holds."""
    if node.filesystem != "iso9660" or node.stream is None or node.reader:
        return
    from bitwitness.report.browse.iso9660 import has_rock_ridge, joliet_loses_names

    session = node.iso_session
    if session is not None and not session.head:
        node.reader = ROCKRIDGE
        rr = "Rock Ridge" if has_rock_ridge(node.stream, session) else "no Rock Ridge"
        node.description += (f"{', ' if node.description else ''}{rr} (read by BitWitness: "
                             "The Sleuth Kit reads only the session at sector 16)")
    elif has_rock_ridge(node.stream):
        node.reader = ROCKRIDGE
        node.description += f"{', ' if node.description else ''}Rock Ridge (read by BitWitness)"
    elif joliet_loses_names(node.stream):
        node.reader = ROCKRIDGE  # the same reader, through the Joliet tree
        node.description += (f"{', ' if node.description else ''}Joliet names The Sleuth Kit "
                             "drops (read by BitWitness)")


def _iso_sessions(node: VolumeNode) -> None:
    """A multi-session ISO 9660 image (iso_sessions.py): the node reads the last session, as
    a drive presents the disc, and each earlier session is the child ``sessionK`` (K counted
    from the image's start), an earlier state of the disc as a shadow copy is of a volume:
    chosen with ``-p N/sessionK``, never without ``-p``. The node's warning, said by every
    browsing command, names which ``-p`` is which session."""
    assert node.stream is not None
    if node.filesystem != "iso9660" or node.reader or node.iso_session is not None:
        return  # not an ISO, or read already (a volume probed, then expanded)
    from bitwitness.report.browse.iso_sessions import find_sessions

    scan = find_sessions(node.stream)
    if not scan.several:
        return
    shown = scan.sessions[-1]
    node.iso_session = shown
    count = len(scan.sessions)
    last = ("the last, as a drive presents it" if scan.note is None else
            f"the last the scan found, which stopped short: {scan.note}")
    node.description += f"{', ' if node.description else ''}ISO 9660 {shown.describe()} ({last})"
    for session in scan.sessions[:-1]:
        child = _child(node, f"session{session.number}", SESSION,
                       f"ISO 9660 {session.describe()} (an earlier session)",
                       stream=node.stream, handle=None)
        child.filesystem, child.iso_session = "iso9660", session
        rock_ridge(child)
        node.children.append(child)
    earlier = ", ".join(f"-p {node.path}/session{s.number}" for s in scan.sessions[:-1][:8])
    if count > 9:
        earlier += f" ... -p {node.path}/session{count - 1}"
    which = ("the last, what a drive presents" if scan.note is None
             else "the last the scan found")
    node.warning = (f"volume {node.path} (iso9660): the image holds {count} ISO 9660 sessions; "
                    f"-p {node.path} is session {count} ({which}), the earlier ones are "
                    f"{earlier}")
    if scan.note is not None:
        node.warning += f"; {scan.note}"


def ext_beyond_tsk(node: VolumeNode, head: bytes) -> None:
    """An ext file system TSK did not open because of a feature it cannot read (bigalloc):
    named as ``fsstat`` would, read by libfsext (the rule: extfeatures.py)."""
    found = parse_superblock(head[SUPERBLOCK_OFFSET:SUPERBLOCK_OFFSET + SUPERBLOCK_SIZE])
    if found is None or reader_for(found) is not Reader.LIBFSEXT:
        return
    node.filesystem, node.reader = found.kind, LIBFSEXT
    node.description += (f"{', ' if node.description else ''}{found.kind} with "
                         f"{', '.join(found.tsk_lacks)} (read by libfsext)")


def _lvm(tree: VolumeTree, node: VolumeNode, depth: int) -> None:
    """The logical volumes of the LVM2 volume group ``node`` is a physical volume of, read by
    our own reader (lvm2.py; libvslvm refuses a logical volume of two segments or more, what
    ``lvextend`` leaves). A volume whose extents lie on another physical volume, or of a kind
    not read (thin, snapshot, RAID...), is listed and named, not read; metadata that does not
    hold together leaves the physical volume named, the rest of the disk browsed."""
    from bitwitness.report.browse import lvm2

    assert node.stream is not None
    try:
        group = lvm2.read_physical_volume(node.stream)
    except FileSystemError as exc:
        node.unread = f"LVM physical volume whose metadata is not read: {exc}"
        node.description = node.unread
        node.warning = f"volume {node.path}: {node.unread}"
        return
    count = len(group.volumes)
    node.description = f"LVM physical volume of {group.name} ({count} logical)"
    node.description += "".join(f" ({note})" for note in group.notes)
    node.identifier = group.id
    if count > MAX_CHILDREN:
        node.description += f" (only the first {MAX_CHILDREN} of its {count} volumes are listed)"
    for index, volume in enumerate(group.volumes[:MAX_CHILDREN]):
        name = f"lv{index + 1}"
        said = f"LVM logical volume {group.name}/{volume.name}"
        if volume.unread is not None:
            node.children.append(VolumeNode(
                path=f"{node.path}/{name}", kind="lvm", description=volume.describe(),
                offset=0, size=volume.size, row=node.row, identifier=volume.id,
                unread=f"{said}: {volume.unread}", key=node.key))
            continue
        child = _child(node, name, "lvm", said if volume.visible else f"{said} (hidden)",
                       stream=lvm2.open_volume(node.stream, volume), handle=None)
        child.offset = volume.extents[0].offset if volume.extents else 0
        child.identifier = volume.id
        _probe(child)
        node.children.append(child)
        _expand(tree, child, depth + 1)


def _luks(tree: VolumeTree, node: VolumeNode, depth: int) -> None:
    import pyluksde

    from bitwitness.report.browse import dmcrypt, luks1, luks2

    assert node.stream is not None
    node.encrypted = "LUKS"
    if not tree.keys.given:
        node.locked = True
        return
    if luks2.is_luks2(node.stream.pread(0, 8)):
        _luks_ours(tree, node, depth, luks2.unlock, "LUKS2")
        return
    try:  # ours reads every AES cipher of dm-crypt and any key; libluksde the others
        dmcrypt.check(luks1.cipher_spec(node.stream.pread(0, luks1.HEADER)), "")
    except FormatError:
        pass
    else:
        _luks_ours(tree, node, depth, luks1.unlock, "LUKS1")
        return
    source = FileObject(node.stream)
    volume = pyluksde.volume()
    spec = luks1.cipher_spec(node.stream.pread(0, luks1.HEADER))
    try:
        passphrase = tree.keys.text(f"volume {node.path} (LUKS)")
    except InputError as exc:
        raise InputError(f"{exc} (cipher {spec!r} is read by libluksde only)") from None
    try:
        volume.set_password(passphrase)
        volume.open_file_object(source)
    except _NOT_OPENED as exc:
        _raise_source(source, exc)
        raise FileSystemError(f"volume {node.path}: not a LUKS volume libluksde can read "
                              f"(cipher {spec!r}): {_message(exc)}") from None
    tree._handles.append(volume)
    if volume.is_locked():  # libluksde cannot tell a wrong key from a cipher it misreads
        ascii_only = "" if passphrase.isascii() else ", ASCII passphrases only"
        raise InputError(f"volume {node.path} (LUKS): the {tree.keys.kind} does not unlock it "
                         f"(cipher {spec!r}, read by libluksde only: key slot 0{ascii_only})")
    node.identifier = _text(volume.get_volume_identifier())
    stream = LibyalStream(volume, int(volume.get_size()), what=f"volume {node.path}/luks1",
                          source=source)
    child = _child(node, "luks1", "luks", f"decrypted LUKS volume ({_method(volume)})",
                   stream=stream, handle=volume)
    child.key = tree.keys.kind
    _probe(child)
    node.children.append(child)
    _expand(tree, child, depth + 1)


def _luks_ours(tree: VolumeTree, node: VolumeNode, depth: int, unlock: _Unlock,
               version: str, *, header: ImageStream | None = None) -> None:
    """A LUKS volume through our reader (:mod:`luks1`, :mod:`luks2`); a key file is used as
    its bytes, as cryptsetup uses it (a key of random bytes included). ``header``: the header
    kept apart from the data (the data segment's offset counts from the node's first byte)."""
    assert node.stream is not None
    keys = tree.keys
    secret = (keys.key_data if keys.key_data is not None and keys.fvek is None
              else keys.text(f"volume {node.path} (LUKS)").encode("utf-8"))
    try:
        cipher, segment = unlock(header or node.stream, secret, f"volume {node.path}")
    except FileSystemError:
        raise InputError(f"volume {node.path} (LUKS): the {keys.kind} does not unlock "
                         "it") from None
    from bitwitness.report.browse.luks2 import Luks2Stream

    node.identifier = _uuid(header or node.stream)
    stream = Luks2Stream(node.stream, cipher, segment, f"volume {node.path}/luks1")
    apart = f", header {header.info.files[0]}" if header is not None and header.info.files else ""
    child = _child(node, "luks1", "luks", f"decrypted {version} volume ({cipher.spec}{apart})",
                   stream=stream, handle=None)
    child.key = keys.kind
    _probe(child)
    node.children.append(child)
    _expand(tree, child, depth + 1)


def _bitlocker(tree: VolumeTree, node: VolumeNode, depth: int) -> None:
    """A BitLocker volume through libbde: its protectors always, its contents with a key."""
    import pybde

    assert node.stream is not None
    kind = _bitlocker_kind(node)
    source = FileObject(node.stream)
    volume = pybde.volume()
    startup = tree.keys.startup_key and tree.keys.key_file is not None
    if startup:  # libbde takes a startup key only before the volume is opened
        try:
            volume.read_startup_key(str(tree.keys.key_file))
        except _NOT_OPENED:
            raise InputError(f"volume {node.path} (BitLocker): the key file is not a startup "
                             "key libbde can read") from None
    try:
        volume.open_file_object(source)
        protectors = _protectors(volume)
        method = _BDE_METHODS.get(int(volume.get_encryption_method()), "unknown cipher")
        identifier = _text(volume.get_volume_identifier())
    except _NOT_OPENED as exc:
        _raise_source(source, exc)
        if startup and _opens_without_key(node.stream):  # libbde fails the open itself
            raise InputError(f"volume {node.path} (BitLocker): the {tree.keys.kind} does not "
                             "unlock it") from None
        if not tree.keys.given:  # listed as what it claims to be; opening it is the error
            node.locked = True
            node.description = (f"{kind} (metadata libbde cannot read: "
                                f"{_message(exc)})")
            return
        raise FileSystemError(f"volume {node.path}: a {kind} libbde cannot read: "
                              f"{_message(exc)}") from None
    tree._handles.append(volume)
    node.identifier = identifier
    node.protectors = protectors
    kinds = sorted({p.rsplit(" {", 1)[0] for p in protectors})
    node.description = (f"{kind} ({method}; protectors: "
                        f"{', '.join(kinds) or 'none'})")
    if not tree.keys.given:
        node.locked = True
        return
    what = f"volume {node.path}/bde1"
    if tree.keys.fvek is not None:
        stream, method = _with_fvek(node, tree.keys.fvek, what, tree.keys.kind)
        used: str | None = "FVEK"
    else:
        used = "startup key" if startup and not volume.is_locked() else _unlock_bitlocker(
            volume, tree.keys, source)
        if used is None:
            raise InputError(f"volume {node.path} (BitLocker): the {tree.keys.kind} does not "
                             "unlock it")
        stream = LibyalStream(volume, int(volume.get_size()), what=what, source=source)
    assert stream is not None
    child = _child(node, "bde1", "bitlocker", f"decrypted BitLocker volume ({method})",
                   stream=stream, handle=volume)
    child.key = f"{used} ({tree.keys.kind})"
    _probe(child)
    node.children.append(child)
    _expand(tree, child, depth + 1)


def _bitlocker_kind(node: VolumeNode) -> str:
    """Mark ``node`` encrypted by BitLocker and say which kind: a FAT drive's BitLocker To Go,
    whose discovery volume TSK took for the file system (no longer shown as one), or not."""
    assert node.stream is not None
    node.encrypted = "BitLocker"
    if is_bitlocker_to_go(node.stream.pread(0, 512)):
        node.filesystem = None
        return "BitLocker To Go volume"
    return "BitLocker volume"


def _protectors(volume: Any) -> list[str]:
    """``password {GUID}``, ... for each key protector libbde lists."""
    protectors = []
    count = int(volume.get_number_of_key_protectors())
    for index in range(min(count, MAX_CHILDREN)):
        protector = volume.get_key_protector(index)
        kind = _PROTECTION.get(int(protector.get_type()),
                               f"protection {int(protector.get_type()):#06x}")
        protectors.append(f"{kind} {{{_text(protector.get_identifier()) or '?'}}}")
    return protectors


def _with_fvek(node: VolumeNode, key: bytes, what: str,
               kind: str | None) -> tuple[ImageStream, str]:
    """The decrypted volume through our own reader (see bitlocker.py), or a wrong-key error."""
    from bitwitness.report.browse import bitlocker

    assert node.stream is not None
    layout = bitlocker.read_layout(node.stream, f"volume {node.path}")
    decrypted = bitlocker.FvekStream(node.stream, key, layout, what)
    if not bitlocker.looks_decrypted(decrypted):
        raise InputError(f"volume {node.path} (BitLocker): the {kind} does not unlock it")
    size = bitlocker.ntfs_size(decrypted)
    if size is None or size == decrypted.size:
        return decrypted, decrypted.method
    return SliceStream(decrypted, 0, size), decrypted.method


def _opens_without_key(stream: ImageStream) -> bool:
    import pybde

    source = FileObject(stream)
    volume = pybde.volume()
    try:
        volume.open_file_object(source)
    except _NOT_OPENED:
        _raise_source(source, ValueError("BitLocker volume"))
        return False
    with suppress(*_NOT_OPENED):
        volume.close()
    return True


def _unlock_bitlocker(volume: Any, keys: VolumeKeys, source: FileObject) -> str | None:
    """Hand the key to libbde as what it can be; the protector kind that opened it, or None.

    A passphrase of the recovery-password form is tried as one first, then as a password (a
    startup key was given before the volume was opened).
    """
    tries: list[tuple[str, Any]] = []
    if keys.passphrase is not None and not keys.startup_key:
        text = keys.passphrase
        if _RECOVERY.match(text.strip()):
            tries.append(("recovery password",
                          lambda: volume.set_recovery_password(text.strip())))
        tries.append(("password", lambda: volume.set_password(text)))
    for name, give in tries:
        try:
            give()
            if volume.unlock():
                return name
        except _NOT_OPENED:
            cause = source.take_error()
            if cause is not None:
                raise cause from None
    return None


def _uuid(stream: ImageStream) -> str | None:
    """The UUID field of a LUKS binary header (bytes 168-208)."""
    raw = stream.pread(168, 40).split(b"\0", 1)[0]
    return raw.decode("ascii", "replace") or None


def _apfs(tree: VolumeTree, node: VolumeNode) -> None:
    import pyfsapfs

    assert node.stream is not None
    source = FileObject(node.stream)
    container = pyfsapfs.container()
    try:
        container.open_file_object(source)
        count = int(container.get_number_of_volumes())
    except _NOT_OPENED as exc:
        _raise_source(source, exc)
        raise FileSystemError(f"volume {node.path}: an APFS container libfsapfs cannot read: "
                              f"{_message(exc)}") from None
    tree._handles.append(container)
    node.description = f"APFS container ({count} volume{'s' if count != 1 else ''})"
    node.identifier = _text(container.get_identifier())
    for index in range(min(count, MAX_CHILDREN)):
        try:
            volume = container.get_volume(index)
            name = _text(volume.get_name()) or ""
            locked = bool(volume.is_locked())
            identifier = _text(volume.get_identifier())
        except _NOT_OPENED as exc:
            _raise_source(source, exc)
            raise FileSystemError(f"volume {node.path}/apfs{index + 1}: libfsapfs cannot read "
                                  f"it: {_message(exc)}") from None
        refused = None
        unlocked_with = node.key
        if locked and tree.keys.given:
            try:
                refused = _unlock_apfs(volume, tree.keys, f"volume {node.path}/apfs{index + 1}")
            except InputError as exc:
                refused = str(exc)
            if refused is None:
                locked, unlocked_with = False, tree.keys.kind
        child = VolumeNode(path=f"{node.path}/apfs{index + 1}", kind="apfs",
                           description=f"APFS volume {name!r}", offset=0,
                           size=_apfs_size(volume, node.size), row=node.row,
                           filesystem=None if locked else "apfs",
                           encrypted="APFS" if locked else None,
                           locked=locked, refused=refused, identifier=identifier,
                           handle=volume, key=unlocked_with)
        node.children.append(child)


def _unlock_apfs(volume: Any, keys: VolumeKeys, what: str) -> str | None:
    """Unlock an encrypted APFS volume with ``keys``; None, or why it stays locked."""
    volume.set_password(keys.text(f"{what} (APFS)"))
    return None if volume.unlock() else f"{what} (APFS): the {keys.kind} does not unlock it"


def _apfs_size(volume: Any, container_size: int) -> int:
    """An APFS volume shares its container's space; libfsapfs knows no size for some."""
    try:
        return int(volume.get_size())
    except _NOT_OPENED:
        return container_size


def _shadow_copies(tree: VolumeTree, node: VolumeNode) -> None:
    import pyvshadow

    assert node.stream is not None
    source = FileObject(node.stream)
    volume = pyvshadow.volume()
    try:
        volume.open_file_object(source)
        count = int(volume.get_number_of_stores())
    except _NOT_OPENED:
        cause = source.take_error()
        if cause is not None:
            raise cause from None
        return  # an NTFS volume without shadow copies: nothing to add
    tree._handles.append(volume)
    for index in range(min(count, MAX_CHILDREN)):
        store = volume.get_store(index)
        created = store.get_creation_time()
        if created is not None and created.tzinfo is None:
            created = created.replace(tzinfo=UTC)
        stream = LibyalStream(store, int(store.get_volume_size()),
                              what=f"volume {node.path}/vss{index + 1}", source=source)
        child = _child(node, f"vss{index + 1}", "vss",
                       f"shadow copy {index + 1} of {count}", stream=stream, handle=store)
        child.created = created
        child.identifier = _text(store.get_identifier())
        _probe(child)
        node.children.append(child)


def _raise_source(source: FileObject, exc: BaseException) -> None:
    cause = source.take_error()
    if cause is not None:
        raise cause from exc


def _message(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def _method(volume: Any) -> str:
    try:
        return str(volume.get_encryption_method())
    except _NOT_OPENED:
        return "unknown cipher"



# --- choosing and opening a file system -------------------------------------------------------

KEY_OPTIONS = "--passphrase, --passphrase-file, --key-file, --ask-passphrase or --fvek-file"


def open_node(tree: VolumeTree, node: VolumeNode) -> BrowsableFileSystem:
    """The file system at ``node``, through TSK or, for APFS, through libfsapfs."""
    if node.locked:
        raise still_locked(node)
    if not node.filesystem:
        raise FileSystemError(f"volume {node.path} ({node.description}) holds no file system "
                              f"that can be read; file systems: {describe(tree)}")
    if node.filesystem in LOGICAL_FILE_SYSTEMS:
        from bitwitness.report.browse.logical import LogicalFileSystem

        return LogicalFileSystem(tree.stream.logical_tree(),  # type: ignore[attr-defined]
                                 node.row, node.filesystem)
    if "/" not in node.path:  # a row of the partition table: as TSK sees it
        where = replace(node.row, filesystem=node.filesystem)
        if not by_libyal(node):  # node.media: its boot sector from the backup copy
            return FileSystem(TskImage(node.media or tree.stream), node.row)
    else:
        where = Partition(index=node.row.index, kind=PartitionKind.PARTITION, start=0,
                          length=-(-node.size // 512), description=node.description,
                          sector_size=512, filesystem=node.filesystem, volume=node.path,
                          key=node.key)
    own = _own_reader(node, where)
    if own is not None:
        return own
    if by_libyal(node):
        from bitwitness.report.browse.fs_libyal import ExtLibyalFileSystem, LibyalFileSystem

        volume = _libyal_volume(tree, node)
        if node.reader == LIBFSEXT:
            assert node.stream is not None
            found = read_superblock(node.stream)
            return ExtLibyalFileSystem(volume, where, node.filesystem or "",
                                       found.block_size if found else 1024)
        return LibyalFileSystem(volume, where, node.filesystem or "", node.stream)
    assert node.stream is not None
    return FileSystem(TskImage(node.stream), where)


def _own_reader(node: VolumeNode, where: Partition) -> BrowsableFileSystem | None:
    """The file system at ``node`` when a reader of our own reads it (btrfs, UDF, ISO 9660
    with Rock Ridge or a session TSK does not read), or an earlier ISO session TSK reads at
    sector 16 (over the ISO's whole stream, not a row of the table), else None."""
    if node.reader == ROCKRIDGE:
        from bitwitness.report.browse.iso9660 import Iso9660FileSystem

        assert node.stream is not None
        return Iso9660FileSystem(node.stream, where, node.iso_session)
    if node.kind == SESSION:  # the session TSK reads at sector 16, without Rock Ridge
        assert node.stream is not None
        return FileSystem(TskImage(node.stream), where)
    if node.filesystem == "udf":
        from bitwitness.report.browse.udf import UdfFileSystem

        assert node.stream is not None
        return UdfFileSystem(node.stream, where)
    if node.filesystem in OWN_FILE_SYSTEMS:
        from bitwitness.report.browse.btrfs import BtrfsFileSystem

        assert node.stream is not None
        return BtrfsFileSystem(node.stream, where)
    return None


def by_libyal(node: VolumeNode) -> bool:
    """Whether ``node``'s file system is read by a libyal library (or a reader of our own,
    btrfs) rather than by TSK: such a node is opened by :func:`open_node`, never by TSK."""
    return (node.filesystem in LIBYAL_FILE_SYSTEMS + OWN_FILE_SYSTEMS
            or node.reader in (LIBFSEXT, ROCKRIDGE))


def _libyal_volume(tree: VolumeTree, node: VolumeNode) -> Any:
    """The libyal volume object of an APFS volume (opened with its container), of an XFS or of
    an ext file system TSK cannot read."""
    if node.filesystem == "apfs":
        return node.handle
    assert node.stream is not None
    source = FileObject(node.stream)
    if node.reader == LIBFSEXT:
        import pyfsext

        volume = pyfsext.volume()
        what = _libfsext_refusal(node)
    else:
        import pyfsxfs

        volume = pyfsxfs.volume()
        what = "an XFS file system libfsxfs cannot read"
    try:
        volume.open_file_object(source)
    except _NOT_OPENED as exc:
        _raise_source(source, exc)
        raise FileSystemError(f"volume {node.path}: {what}: {short_reason(exc)}") from None
    tree._handles.append(volume)
    return volume


def _libfsext_refusal(node: VolumeNode) -> str:
    """What an ext file system libfsext does not open is, for the one-line error."""
    assert node.stream is not None
    found = read_superblock(node.stream)
    lacks = ", ".join(found.tsk_lacks) if found else "a feature"
    refused = ", ".join(found.libfsext_refuses) if found else ""
    either = f" ({refused} too)" if refused else ""
    return (f"an {node.filesystem} file system with {lacks}, which The Sleuth Kit cannot read, "
            f"and libfsext cannot read it either{either}")


def choose(tree: VolumeTree, *, partition: int | str | None = None,
           offset: int | None = None) -> BrowsableFileSystem:
    """The file system ``-p``/``--offset`` names, or the only one (shadow copies aside).

    ``-p N`` and ``--offset`` keep their meaning (a row as ``mmls`` numbers it, a start sector);
    ``-p 2/vss3`` names a node of the tree. A logical evidence file has one node, its files.
    """
    if tree.layout.scheme == "logical":
        return _logical_node(tree, partition, offset)
    return _choose_in_disk(tree, partition, offset)


def _choose_in_disk(tree: VolumeTree, partition: int | str | None,
                    offset: int | None) -> BrowsableFileSystem:
    if offset is not None or (partition is None and not tree.filesystems):
        return _at_offset(tree, partition, offset)
    if partition is None:
        current = [n for n in tree.filesystems if not _in_snapshot(n)]
        if len(current) == 1:
            return open_node(tree, current[0])
        raise FileSystemError(f"several file systems; choose one with -p N: {describe(tree)}")
    path = normalise(str(partition))
    if "/" not in path and _ROW.match(path):
        node = next((n for n in tree.nodes if n.path == path), None)
        if node is None:
            raise FileSystemError(f"no partition {path}; file systems: {describe(tree)}")
        if by_libyal(node) or node.media is not None:
            return open_node(tree, node)
        if not (node.filesystem or node.encrypted or node.children):
            # the tree, not TSK's layout alone, names the file systems there are: btrfs, XFS
            # and ext with bigalloc are rows TSK does not open
            raise FileSystemError(f"partition {path} ({node.description or 'unnamed'}) holds "
                                  f"no file system BitWitness reads; file systems: "
                                  f"{describe(tree)}")
        if node.filesystem or (not node.children and not node.locked):
            return FileSystem(TskImage(tree.stream), _row(tree, int(path), None))
        inside = [n for n in node.walk() if n.filesystem and not _in_snapshot(n)]
        if node.locked or not inside:
            return open_node(tree, node)
        raise FileSystemError(f"partition {path} is {node.description}; its file systems: "
                              f"{describe(tree, inside)}")
    return open_node(tree, tree.find(path))


def _refuse_unread(tree: VolumeTree) -> None:
    """With no file system to choose: refuse naming what the volumes hold where their
    signatures say (swap, ZFS...), rather than TSK's plain "no file system found"."""
    unread = [n for n in tree.walk() if n.unread is not None]
    if unread and not any(n.locked for n in tree.walk()):
        raise FileSystemError("no file system BitWitness reads in this image; it holds: "
                              + ", ".join(f"{n.unread} (-p {n.path})" for n in unread))


def _at_offset(tree: VolumeTree, partition: int | str | None,
               offset: int | None) -> BrowsableFileSystem:
    """The file system at ``--offset`` (a start sector, as ``fls -o``): TSK's, or a row's that
    TSK cannot open but libyal reads (XFS, bigalloc ext4) when the offset is that row's start.
    With neither ``-p`` nor ``--offset`` (the tree found no file system), what TSK says is
    preceded by what the volumes hold, where their signatures say."""
    if partition is None and offset is None:
        _refuse_unread(tree)
    if offset is not None and partition is None:
        row = next((n for n in tree.nodes if (by_libyal(n) or n.media is not None)
                    and n.row.start == offset), None)
        if row is not None:
            return open_node(tree, row)
    return FileSystem(TskImage(tree.stream), _row(tree, partition, offset))


def _logical_node(tree: VolumeTree, partition: int | str | None,
                  offset: int | None) -> BrowsableFileSystem:
    """The one file tree of a logical evidence file; ``--offset`` and other rows refused."""
    if offset is not None:
        raise FileSystemError("a logical evidence file holds files, not a disk: --offset does "
                              "not apply")
    if partition is not None and normalise(str(partition)) != "0":
        raise FileSystemError(f"-p {partition}: a logical evidence file has one file tree, -p 0")
    return open_node(tree, tree.nodes[0])


def _row(tree: VolumeTree, partition: int | str | None, offset: int | None) -> Partition:
    from bitwitness.report.browse.volumes import choose_filesystem

    locked = [n for n in tree.walk() if n.locked]
    if partition is None and offset is None and locked:
        raise still_locked(locked[0])
    index = int(partition) if partition is not None else None
    return choose_filesystem(tree.layout, partition=index, offset=offset)


def _in_snapshot(node: VolumeNode) -> bool:
    """Inside an earlier state of a volume (a shadow copy, an earlier ISO session): such a
    node is chosen with ``-p`` only."""
    return any(part.startswith("vss") or part.startswith(SESSION)
               for part in node.path.split("/")[1:])


def current_filesystems(tree: VolumeTree) -> list[VolumeNode]:
    """The file-system nodes commands read without ``-p`` when they read every file system
    (``timeline``): shadow copies included (each file's history), earlier ISO sessions not
    (a drive presents the last; ``-p N/sessionK`` reads one)."""
    return [n for n in tree.filesystems
            if not any(part.startswith(SESSION) for part in n.path.split("/")[1:])]


def describe(tree: VolumeTree, nodes: list[VolumeNode] | None = None) -> str:
    """``-p 0 (ntfs), -p 0/vss1 (ntfs, shadow copy of 2013-12-03 06:35:09)`` for messages."""
    found = tree.filesystems if nodes is None else nodes
    parts = []
    for node in found:
        if "/" not in node.path:
            parts.append(f"-p {node.path} ({node.filesystem} at sector {node.row.start})")
            continue
        extra = f", shadow copy of {node.created:%Y-%m-%d %H:%M:%S}" if node.created else ""
        if node.iso_session is not None:
            extra = f", {node.iso_session.describe()}"
        parts.append(f"-p {node.path} ({node.filesystem}{extra})")
    return ", ".join(parts) or "none"
