"""One file system inside an image: listing (with deleted entries), lookup, stat and content.

:class:`FileSystem` is what ``ls``, ``stat``, ``cat``, ``export``, ``timeline`` and the browser
share. Its listing follows ``fls -r -p`` rule for rule (see :meth:`FileSystem.walk`) so that the
two can be compared line by line: entries are returned in directory order, ``.`` and ``..`` are
left out, NTFS files give one entry per ``$DATA`` stream and directories one per index, and the
recursion descends exactly where TSK's directory walk does.

Paths are absolute, ``/``-separated and may hold any Unicode; a final ``:name`` selects an NTFS
alternate data stream when no file of that exact name exists. A name no path can spell as it is
stored (bytes that are not UTF-8, a ``/`` inside it, an entry named ``.``, ``..`` or nothing) is
spelled as the listings and export manifests print it: ``\\xNN`` for a byte that is not UTF-8
(``ls``, JSON, CSV), ``%XX`` for each unsafe byte (``safe_name``: the export's target names,
``%2F`` for ``/``, ``%2E`` for ``.``, ``%00`` for an empty name), or ``ls``'s ``^`` for a
control character when only one name reads so (see :meth:`FileSystem._child`).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, TypeVar

import pytsk3

from bitwitness.errors import BitWitnessError, ContentReadError, FileSystemError
from bitwitness.progress import UNREAD, Mediator, NullMediator
from bitwitness.report.browse import decmpfs
from bitwitness.report.browse.entries import (
    META_TYPES,
    NAME_TYPES,
    NO_TIMES,
    Attribute,
    Entry,
    FileStat,
    Selection,
    Times,
    frozen_record,
    make_entry,
    permissions,
)
from bitwitness.report.browse.exfatraw import ExfatVolume
from bitwitness.report.browse.extalloc import ExtBitmaps
from bitwitness.report.browse.extfeatures import read_superblock
from bitwitness.report.browse.fatraw import FatVolume, RawFatEntry
from bitwitness.report.browse.moretimes import ExtTimes, HfsCatalog, ext_deletion_time
from bitwitness.report.browse.namedlist import NamedList
from bitwitness.report.browse.ntfs import (
    ATTR_FILE_NAME,
    ATTR_STANDARD_INFORMATION,
    FileName,
    TimelineName,
    parse_file_name,
    standard_information_times,
    timeline_file_name_of,
    wtf8_name,
)
from bitwitness.report.browse.orphans import find_orphans
from bitwitness.report.browse.safenames import is_exact, shown, spellings
from bitwitness.report.browse.tsk import (
    RECORD_ATTRIBUTES,
    RECORD_META,
    TSK_FAILURES,
    Record,
    TskImage,
    inode_fields,
    record_of,
    records_and_named,
    records_of,
    require_fixes,
    text,
    tsk_errors,
)
from bitwitness.report.browse.tskenters import DIR_META_TYPES, ENTERED_NAME_TYPES, enters
from bitwitness.report.browse.volumes import FS_NAMES, Partition, choose_filesystem, read_layout
from bitwitness.report.browse.wof import ATTR_REPARSE_POINT, WofFile, WofVolume, parse_reparse
from bitwitness.report.browse.zones import ExfatZones, IsoZones
from bitwitness.stream import ImageStream

ATTR_NTFS_DATA = 128
ATTR_NTFS_INDEX_ROOT = 144
_NAME_ALLOC = int(pytsk3.TSK_FS_NAME_FLAG_ALLOC)
_NAME_UNALLOC = int(pytsk3.TSK_FS_NAME_FLAG_UNALLOC)
_META_ALLOC = int(pytsk3.TSK_FS_META_FLAG_ALLOC)
_META_UNALLOC = int(pytsk3.TSK_FS_META_FLAG_UNALLOC)
_RESIDENT = int(pytsk3.TSK_FS_ATTR_RES)
#: Runs that occupy no block (sparse, or filler for a part not read): no first block
_RUN_NO_BLOCKS = int(pytsk3.TSK_FS_ATTR_RUN_FLAG_SPARSE) | int(pytsk3.TSK_FS_ATTR_RUN_FLAG_FILLER)
_NTFS_DATA = int(pytsk3.TSK_FS_ATTR_TYPE_NTFS_DATA)
_ATTR_ENCRYPTED = int(pytsk3.TSK_FS_ATTR_ENC)  #: an NTFS attribute header's "encrypted" flag
_ATTR_NONRESIDENT = int(pytsk3.TSK_FS_ATTR_NONRES)  #: an attribute whose data lies in runs
_EXT4_ENCRYPT_FL = 0x800  #: i_flags of an inode fscrypt encrypts
#: Inodes whose attributes a file system remembers from its listings, at least (at most twice
#: as many are kept: a few MiB)
_ENCRYPTION_REMEMBERED = 4096


class _ListedAttributes:
    """What a listing read of an NTFS inode's attributes that later reads ask again.

    Kept as the listing had them, each answer worked out when asked: ``export`` asks of every
    file it writes, ``ls`` and ``timeline`` of none, and working them out for every listed
    inode was a tenth of the Python of an NTFS listing."""

    __slots__ = ("_attrs", "_held")

    def __init__(self, attrs: tuple[tuple[Any, ...], ...], held: bool) -> None:
        #: (type, id, flags, ...) of each attribute; with ``held``, :data:`~.tsk.Record`
        #: attribute tuples, whose last field holds the bytes of a resident ``$FILE_NAME``
        self._attrs = attrs
        self._held = held

    @staticmethod
    def of(attrs: Iterable[tuple[int, int, int]]) -> _ListedAttributes:
        """Of the ``(type, id, flags)`` of an inode's attributes (no ``$FILE_NAME`` bytes)."""
        return _ListedAttributes(tuple(attrs), False)

    @staticmethod
    def of_record(attrs: tuple[tuple[Any, ...], ...]) -> _ListedAttributes:
        """Of a record's attribute tuples (:data:`~.tsk.RECORD_ATTRIBUTES`)."""
        return _ListedAttributes(attrs, True)

    @property
    def encrypted(self) -> tuple[int, ...]:
        """The ids of its EFS-encrypted ``$DATA`` streams."""
        return tuple(a[1] for a in self._attrs if a[0] == _NTFS_DATA and a[2] & _ATTR_ENCRYPTED)

    @property
    def reparse(self) -> bool:
        """Whether it has a reparse point (a WOF file has one)."""
        return any(a[0] == ATTR_REPARSE_POINT for a in self._attrs)

    @property
    def file_names(self) -> tuple[tuple[int, bytes], ...] | None:
        """(id, bytes) of each ``$FILE_NAME``, from a record that held them all; else None."""
        return _held_file_names(self._attrs) if self._held else None


#: the attribute types TSK reads by default: ext/FAT/ISO data, NTFS unnamed $DATA, HFS+ data fork
_DEFAULT_DATA = (int(pytsk3.TSK_FS_ATTR_TYPE_DEFAULT), _NTFS_DATA,
                 int(pytsk3.TSK_FS_ATTR_TYPE_HFS_DATA))
#: the letters of the name types TSK's walk may enter: an entry of any other is not looked at
_ENTERED_NAME_LETTERS = frozenset(NAME_TYPES[kind] for kind in ENTERED_NAME_TYPES)
#: the inode types of a ``.``/``..`` name that is a folder's own link: folder or no type
_LINK_META_TYPES = frozenset({*DIR_META_TYPES, int(pytsk3.TSK_FS_META_TYPE_UNDEF)})
_HFS_CATALOG = 4  #: the catalog file's CNID
_HFS_COMP_REC = int(pytsk3.TSK_FS_ATTR_TYPE_HFS_COMP_REC)  #: TSK's com.apple.decmpfs attribute
_HFS_RSRC = int(pytsk3.TSK_FS_ATTR_TYPE_HFS_RSRC)  #: the resource fork
_MAX_DECMPFS_RECORD = 1 << 16  #: an inline record lies in one attributes B-tree node
_META_COMP = int(pytsk3.TSK_FS_META_FLAG_COMP)  #: HFS+: the catalog's UF_COMPRESSED
_ATTR_STATE_ERROR = 2  #: TSK_FS_META_ATTR_ERROR: loading the inode's attributes failed
_NTFS_BITMAP = 6  #: the MFT entry of $Bitmap, one bit per cluster, set when allocated
_BITMAP_WINDOW = 1 << 20  #: bytes of $Bitmap read at a time
_CASE_INSENSITIVE = ("ntfs", "fat", "exfat", "hfs", "iso9660")
#: Deeper than this is a loop or a hostile image; TSK stops there too.
MAX_DEPTH = 128
_ADDRESS = re.compile(r"^(\d+)(?:-(\d+)(?:-(\d+))?)?$")
_T = TypeVar("_T")


@dataclass(frozen=True)
class _Target:
    """A resolved file: the pytsk3 object plus the entry (stream) that was asked for."""

    file: Any  #: the directory entry (its name); the inode itself for the root
    entry: Entry
    meta_file: Any = None  #: the inode, when TSK left it out of ``file``
    raw: RawFatEntry | None = None  #: an entry only the raw FAT directory holds (``file`` None)
    folders: tuple[int, ...] = ()  #: inodes of the folders on the way to it, root first
    names: tuple[str, ...] = ()  #: the stored name of each component of its path


class _RecordFolder:
    """A folder :meth:`FileSystem._walk_records` is in: its records, numbered, and its pytsk3
    ``File`` objects, opened on first need."""

    __slots__ = ("_files", "_fs", "counted", "inum", "prefix", "records", "walked")

    def __init__(self, fs: FileSystem, inum: int, prefix: str,
                 records: Iterator[tuple[int, Record]]) -> None:
        self._fs = fs
        self.inum = inum
        self.prefix = prefix
        self.records = records
        self._files: list[Any] | None = None
        #: whether TSK's own walk lists this folder (its names go into a :class:`NamedList`)
        self.counted = False
        #: (inode type, inode flags) by index of the names whose inode TSK's walk loads where
        #: their record has none (:func:`~.tsk.records_of`)
        self.walked: dict[int, tuple[int, int]] = {}

    def file(self, index: int) -> Any:
        """The ``File`` of record ``index`` (TSK lists a folder in the same order each time)."""
        if self._files is None:
            self._files = self._fs._open_dir(self.inum)
        return self._files[index]


class _OneFile:
    """One ``File`` where :meth:`FileSystem._record_entry` asks for a folder's."""

    __slots__ = ("_file",)

    def __init__(self, file: Any) -> None:
        self._file = file

    def file(self, index: int) -> Any:
        del index
        return self._file


#: The longest symbolic link target read from a link's data (Linux's PATH_MAX).
MAX_LINK_TARGET = 4096
#: File systems whose deletion leaves a file's recorded size in place (NTFS's MFT record, the
#: FAT and exFAT directory entry): a deleted entry of size 0 there was an empty file.
SIZES_KEPT_ON_DELETE = frozenset({"ntfs", "fat12", "fat16", "fat32", "exfat"})
#: Why a name with no inode gives no content: deleted, or (NTFS) a stale index entry whose
#: sequence number is not its MFT record's, the record given to another file since.
_NO_INODE_DELETED = "not recoverable: the deleted name points at no readable inode"
_SIZE_CLEARED = "not recoverable: the deleted inode records no content (size 0)"
#: :meth:`FileSystem.content_note` of a deleted NTFS record that holds no data attribute and no
#: attribute list (the reserved records 16-23 of every volume, never used): it had no content,
#: so nothing of it is lost. ``export`` lists it under ``no_content``, not ``failed``.
NO_DATA_ATTRIBUTE = "the deleted NTFS record holds no data attribute (no content, nothing lost)"
_NTFS_ATTRIBUTE_LIST = int(pytsk3.TSK_FS_ATTR_TYPE_NTFS_ATTRLIST)
_NO_INODE = "not readable: the name points at no inode The Sleuth Kit reads"
_NO_INODE_NTFS = (f"{_NO_INODE} (a stale index entry whose sequence number is not its MFT "
                  "record's: the record was given to another file)")


class FileSystem:
    """A file system found by :func:`open_filesystem`; the stream stays the caller's."""

    #: Whether walks off FAT read each folder's records (:meth:`_walk_records`); the general
    #: walk of pytsk3 ``File`` objects gives the same entries (tests compare the two).
    _by_records = True

    def __init__(self, image: TskImage, partition: Partition) -> None:
        self.image = image
        self.partition = partition
        with tsk_errors(image, f"open a file system at sector {partition.start}"):
            self._fs = pytsk3.FS_Info(image, offset=partition.byte_offset)
        info = self._fs.info
        self.type: str = FS_NAMES.get(int(info.ftype), f"type-{int(info.ftype):#x}")
        require_fixes(self.type)
        self.root_inum = int(info.root_inum)
        self.first_inum = int(info.first_inum)
        self.last_inum = int(info.last_inum)
        if self.root_inum >= self.last_inum:
            # TSK's last inode is the $OrphanFiles folder it adds; a volume where that is the
            # root (an ISO 9660 whose path table TSK found empty) makes TSK wait forever on a
            # lock it already holds when the root is listed (fls hangs the same way)
            raise FileSystemError(
                f"{self.type} file system at sector {partition.start}: The Sleuth Kit finds no "
                f"inode but the root ({self.root_inum}) and cannot list it (damaged metadata)")
        self.block_size = int(info.block_size)
        self._ntfs = self.type == "ntfs"
        self._fat: FatVolume | None = None
        if self.type in ("fat12", "fat16", "fat32"):
            try:
                self._fat = FatVolume(image.stream, partition.byte_offset, self.type)
            except FileSystemError:
                self._fat = None  # TSK opened it; without a sane geometry we add nothing
        #: entries only the raw FAT directory shows (TSK refuses them), by address
        self._raw: dict[int, tuple[RawFatEntry, Entry]] = {}
        #: the recorded zones TSK leaves unapplied (see :mod:`.zones`)
        self._zones: ExfatZones | IsoZones | ExtTimes | None = None
        #: exFAT's directory entries, where TSK's allocation (from the bitmap) is not theirs
        self._exfat: ExfatVolume | None = None
        if self.type.startswith("ext"):  # TSK misreads times before 1970 and after 2106
            self._zones = ExtTimes(image.stream, partition.byte_offset)
        elif self.type == "exfat":
            self._zones = ExfatZones(image.stream, partition.byte_offset)
            exfat = ExfatVolume(self._zones)
            self._exfat = exfat if exfat.ok else None
        elif self.type == "iso9660":
            self._zones = IsoZones(image.stream, partition.byte_offset)
        #: ext with the filetype feature: every live directory entry records its type
        self._typed_names = "filetype" in self._ext_features
        self._hfs: HfsCatalog | None = None  #: the catalog, read on first use
        self._hfs_read = False
        self._bitmap: Any = None  #: NTFS $Bitmap, opened on first use
        self._ext_bitmaps: ExtBitmaps | None = None  #: ext block bitmaps, read on first use
        self._orphans: list[Any] | None = None  #: ext $OrphanFiles where libtsk fails on it
        #: NTFS: what the listing read of recently listed inodes' attributes
        self._listed: dict[int, _ListedAttributes] = {}
        #: the generation before ``_listed`` (see :meth:`_remember_listed`)
        self._listed_before: dict[int, _ListedAttributes] = {}
        self._wof_volume: WofVolume | None = None  #: pyfsntfs, opened for the first WOF file

    # --- listing ---------------------------------------------------------------------------

    def walk(self, path: str = "/", *, recursive: bool = False,
             selection: Selection = Selection.ALLOCATED,
             mediator: Mediator | None = None, file_names: bool = False) -> Iterator[Entry]:
        """The entries of the directory ``path`` (and below it with ``recursive``).

        Mirrors ``fls [-r] -p`` (``-u`` for allocated, ``-d`` for deleted): a directory is entered
        when its name and inode both say directory, the name is allocated (or name and inode are
        both unallocated), it is not ``.``/``..`` and it is not already being walked (loops).
        A directory that cannot be read is reported to ``mediator`` as a warning and skipped,
        as TSK skips it. With ``file_names`` NTFS entries also give their ``($FILE_NAME)`` row,
        where ``fls -m`` prints it.

        Unlike ``fls``, entries *named* ``.`` or ``..`` are listed unless they are the folder's
        own links (pointing at the folder itself or at a folder on the way to it): a crafted
        image can give those names to files that hold data.
        """
        mediator = mediator or NullMediator()
        target = self._resolve(path)
        start = target.entry
        if not start.is_dir:
            raise FileSystemError(f"{shown(start.display_path)}: not a directory")
        prefix = "" if start.path == "/" else start.path
        if target.raw is not None:
            yield from self._raw_fat_folder(target.raw, prefix, mediator, len(target.folders),
                                            {target.raw.first_cluster}, selection=selection,
                                            recursive=recursive)
            return
        stack = [*target.folders, start.inode]
        entries = self._walk(start.inode, prefix, recursive=recursive, selection=selection,
                             mediator=mediator, stack=stack, file_names=file_names,
                             deleted=start.deleted)
        if self._typed_names:
            # TSK reads the interior blocks of a two-level hashed ext folder (dx nodes: a
            # fake empty entry, then hash/block pairs) as entries: names like "^" or "+^"
            # carrying real files' inode numbers, listed as allocated (fls lists them too).
            # Where every live entry records its type (the filetype feature), a live entry of
            # no type is no entry the kernel, debugfs or e2fsck see.
            entries = (e for e in entries if e.deleted or e.name_type != "-")
        if isinstance(self._zones, ExtTimes) and self._ext_encrypt():
            entries = self._say_encrypted_names(start, entries, mediator)
        yield from entries

    def _say_encrypted_names(self, start: Entry, entries: Iterator[Entry],
                             mediator: Mediator) -> Iterator[Entry]:
        """``entries``, with a warning for each folder listed whose names fscrypt encrypts
        (``EXT4_ENCRYPT_FL``): the names shown are their bytes on the disk (ciphertext), not
        the names its user saw; fls shows them so too, saying nothing."""
        assert isinstance(self._zones, ExtTimes)
        zones = self._zones

        def say(entry: Entry) -> None:
            if (zones.flags(entry.inode) or 0) & _EXT4_ENCRYPT_FL:
                mediator.notice(f"{shown(entry.display_path) or '/'}: the names in this folder "
                                "are encrypted by ext4 (fscrypt): shown as their bytes on the "
                                "disk (ciphertext), not the names its user saw", level="warning")

        say(start)
        for entry in entries:
            yield entry
            if entry.is_dir and not entry.deleted:
                say(entry)

    def _walk(self, inum: int, prefix: str, *, recursive: bool, selection: Selection,
              mediator: Mediator, stack: list[int], file_names: bool,
              deleted: bool = False) -> Iterator[Entry]:
        """``deleted``: the folder is a deleted one (reading it may fail with no damage: ext
        clears a removed folder's blocks)."""
        walk = self._walk_records if self._by_records and self._fat is None else self._walk_files
        yield from walk(inum, prefix, recursive=recursive, selection=selection,
                        mediator=mediator, stack=stack, file_names=file_names, deleted=deleted)

    def _walk_files(self, inum: int, prefix: str, *, recursive: bool, selection: Selection,
                    mediator: Mediator, stack: list[int], file_names: bool,
                    deleted: bool = False) -> Iterator[Entry]:
        """:meth:`_walk` from the folder's pytsk3 ``File`` objects: on FAT, whose names are
        compared with the raw folder's, and the general way the record walk is held to."""
        try:
            files = self._open_dir(inum)
        except FileSystemError as exc:
            mediator.notice(f"{shown(prefix) or '/'}: directory not readable: {exc}",
                            level=_unread_level(deleted))
            return
        listed: set[int] = set()
        raw_names = self._raw_names(inum, mediator, prefix)
        plain = not (self._ntfs or raw_names)  # a FAT folder with no raw entries to compare
        for file in files:
            info = file.info
            name = info.name
            if name is None:
                continue
            address = int(name.meta_addr)
            listed.add(address)
            stored = name.name
            if stored in (b".", b"..") and self._own_link(file, stack, name):
                yield from self._dot_streams(file, name, prefix, selection)
                continue
            if plain and info.meta is not None:
                record = record_of(file)
                first = self._record_entry(record, prefix, _OneFile(file), 0)
                if selection.wants(first.deleted):
                    yield first
                descend = recursive and _record_enters(record)
            else:
                entries, meta_file = self._name_entries(file, name, prefix, raw_names,
                                                        mediator, file_names=file_names)
                first = _named(entries)
                if selection.wants(first.deleted):
                    yield from entries
                descend = recursive and self._descends(file, meta_file, first)
            if descend and first.inode not in stack:
                yield from self._descend(first, selection=selection, mediator=mediator,
                                         stack=stack, file_names=file_names)
        if self._fat is not None:
            unlisted = [r for a, r in raw_names.items() if a not in listed]
            yield from self._unlisted_fat(unlisted, prefix, mediator, recursive=recursive,
                                          depth=len(stack), selection=selection)

    def _walk_records(self, inum: int, prefix: str, *, recursive: bool, selection: Selection,
                      mediator: Mediator, stack: list[int], file_names: bool,
                      deleted: bool = False) -> Iterator[Entry]:
        """:meth:`_walk` off FAT, from each folder's :data:`~.tsk.Record` tuples (on NTFS with
        each inode's attributes), in the same order (depth first, a folder's entries after its
        own).

        Why apart: it makes no pytsk3 object for most names, and it walks the sub-folders in
        this one generator, from a list of open folders, where the general walk nests one
        generator per level that every entry below passes through. A name TSK loaded no
        inode for, an ISO 9660 time that needs the file's extent, and the NTFS names
        :meth:`_ntfs_record_entries` leaves, take the folder's ``File`` objects (opened once,
        on the first such name) and go the general way.

        A recursive walk from the root collects the list TSK's orphan search starts from and
        hands it over before it opens ``$OrphanFiles`` (:mod:`.namedlist`), so TSK does not
        walk every folder again to make it."""
        named = NamedList() if recursive and inum == self.root_inum else None
        first_folder = self._open_record_folder(inum, prefix, mediator, named, deleted=deleted)
        open_folders = [] if first_folder is None else [first_folder]
        wants = selection.wants
        entry_of = self._record_entry
        own_link = self._own_record
        dots = (b".", b"..")
        ntfs = self._ntfs
        while open_folders:
            folder = open_folders[-1]
            step = next(folder.records, None)
            if step is None:
                open_folders.pop()
                if open_folders:
                    stack.pop()
                continue
            index, record = step
            stored = record[0]
            if stored in dots and own_link(record, stack):
                yield from self._dot_record_streams(folder, index, record, selection)
                continue
            if ntfs or stored is None or record[RECORD_META] is None:
                entries, first, descend = self._record_entries(folder, index, record, mediator,
                                                               file_names=file_names)
                if wants(first.deleted):
                    yield from entries
                descend = recursive and descend
            else:
                first = entry_of(record, folder.prefix, folder, index)
                if wants(first.deleted):
                    yield first
                descend = recursive and _record_enters(record)
            counted = (self._counted(named, folder, index, record, first,
                                     enters=descend and first.inode not in stack,
                                     depth=len(open_folders))
                       if named is not None and folder.counted
                       and (descend or record[3] in ENTERED_NAME_TYPES) else None)
            if descend and first.inode not in stack:
                below = self._record_folder(first, stack, mediator, counted)
                if below is not None:
                    stack.append(first.inode)
                    open_folders.append(below)

    def _record_entries(self, folder: _RecordFolder, index: int, record: Record,
                        mediator: Mediator, *,
                        file_names: bool) -> tuple[list[Entry], Entry, bool]:
        """The entries of an NTFS name, or of a name TSK loaded no inode for, the one that
        stands for the name (:func:`_named`), and whether a recursive walk enters it: from the
        record where :meth:`_ntfs_record_entries` can, else the general way.

        A deleted NTFS name whose MFT entry's sequence number moved on (every deleted file's:
        NTFS counts it up on deletion) has no inode in its record; the inode
        :meth:`_meta_file` opens for it joins the record (:meth:`_with_inode`), so it takes
        the record way too, not the general one that opens every name of its folder again."""
        if self._ntfs and record[0] is not None:
            listed = record if record[RECORD_META] is not None else self._with_inode(
                record, lambda: int(folder.file(index).info.name.meta_seq))
            if listed is not None:
                entries = self._ntfs_record_entries(listed, folder.prefix,
                                                    file_names=file_names)
                if entries is not None:
                    first = _named(entries)
                    return entries, first, _record_enters(listed)
        return self._general_entries(folder, index, mediator, file_names=file_names)

    def _with_inode(self, record: Record, name_seq: Callable[[], int]) -> Record | None:
        """``record`` of a name TSK loaded no inode for, with the inode :meth:`_meta_file`
        opens for the name (its fields and attributes, :func:`~.tsk.inode_fields`); None where
        it opens none. A live-looking name whose file was deleted (:meth:`_inode_of`) becomes
        the deleted name it is."""
        opened = self._inode_of(record[1], record[2], name_seq)
        if opened is None:
            return None
        flags = record[2]
        if flags & _NAME_ALLOC:  # a name left in a freed index block: its file is deleted
            flags = (flags & ~_NAME_ALLOC) | _NAME_UNALLOC
        return (*record[:2], flags, *record[3:RECORD_META],
                *inode_fields(opened, opened.info.meta, attributes=True))

    def _dot_record_streams(self, folder: _RecordFolder, index: int, record: Record,
                            selection: Selection) -> list[Entry]:
        """:meth:`_dot_streams` of a folder's own link (``.`` or ``..``): the ``$DATA``
        streams of an NTFS folder's ``.``, nothing else."""
        if not (self._ntfs and record[0] == b"."
                and selection.wants(bool(record[2] & _NAME_UNALLOC))):
            return []
        entries = None
        if record[RECORD_META] is not None:
            entries = self._ntfs_record_entries(record, folder.prefix, file_names=False)
        if entries is None:
            file = folder.file(index)
            return self._dot_streams(file, file.info.name, folder.prefix, selection)
        return [e for e in entries if e.attr_type == ATTR_NTFS_DATA]

    def _general_entries(self, folder: _RecordFolder, index: int, mediator: Mediator, *,
                         file_names: bool) -> tuple[list[Entry], Entry, bool]:
        """The entries of record ``index`` of ``folder`` made the general way, from its pytsk3
        ``File`` (a name TSK loaded no inode for), the one that stands for the name, and
        whether a recursive walk enters it."""
        file = folder.file(index)
        entries, meta_file = self._name_entries(file, file.info.name, folder.prefix, {},
                                                mediator, file_names=file_names)
        first = _named(entries)
        return entries, first, self._descends(file, meta_file, first)

    def _counted(self, named: NamedList, folder: _RecordFolder, index: int, record: Record,
                 first: Entry, *, enters: bool, depth: int) -> NamedList | None:
        """:meth:`_walk_records`' list checked against its choice (``enters``) for a name of
        a folder TSK's walk lists; the list for the folder below, or None where TSK's walk
        does not enter it. Entering ``$OrphanFiles``, the root's last name, the list goes to
        TSK (and counts nothing more)."""
        if not named.check(record, enters=enters, path=first.path, depth=depth,
                           walked=folder.walked.get(index)):
            return None
        if first.inode == self.last_inum and depth == 1:
            named.hand_over(self._fs)
            return None
        return named

    def _record_folder(self, folder: Entry, stack: list[int], mediator: Mediator,
                       named: NamedList | None = None) -> _RecordFolder | None:
        """:meth:`_descend` for :meth:`_walk_records`: ``folder`` opened, unless ``stack`` is
        :data:`MAX_DEPTH` deep or TSK cannot read it (None, and a warning)."""
        if self._too_deep(folder, stack, mediator):
            if named is not None:
                named.give_up()
            return None
        return self._open_record_folder(folder.inode, folder.path, mediator, named,
                                        deleted=folder.deleted)

    @staticmethod
    def _too_deep(folder: Entry, stack: list[int], mediator: Mediator) -> bool:
        """Whether ``folder`` lies :data:`MAX_DEPTH` folders deep (then a warning says so)."""
        if len(stack) < MAX_DEPTH:
            return False
        mediator.notice(f"{shown(folder.path)}: deeper than {MAX_DEPTH} folders, not walked",
                        level=UNREAD)
        return True

    def _open_record_folder(self, inum: int, prefix: str, mediator: Mediator,
                            named: NamedList | None = None, *,
                            deleted: bool = False) -> _RecordFolder | None:
        """Folder ``inum``'s records, opened for :meth:`_walk_records` (and added to
        ``named``); None (and a warning) where TSK cannot read it, as the general walk skips
        it."""
        walked: list[tuple[int, int, int]] = []
        try:
            records = self._open_records(inum, named, walked)
        except FileSystemError as exc:
            mediator.notice(f"{shown(prefix) or '/'}: directory not readable: {exc}",
                            level=_unread_level(deleted))
            if named is not None:
                named.give_up()
            return None
        folder = _RecordFolder(self, inum, prefix, enumerate(records))
        folder.counted = named is not None and named.whole
        if walked:
            folder.walked = {index: (kind, flags) for index, kind, flags in walked}
        return folder

    def _dot_streams(self, file: Any, name: Any, prefix: str,
                     selection: Selection) -> list[Entry]:
        """The ``$DATA`` streams of an NTFS folder once more under its ``.`` entry
        (``dir/.:stream``), as ``fls`` lists them: it hides ``.`` and ``..`` but for the
        streams of ``.``. Only the streams: the folder's index and ``$FILE_NAME`` stay hidden."""
        if not (self._ntfs and name.name == b"."
                and selection.wants(bool(int(name.flags) & _NAME_UNALLOC))):
            return []
        meta_file = self._meta_file(file, name)
        if meta_file.info.meta is None:
            return []
        return [e for e in self._entries_of(file, prefix, meta_file)
                if e.attr_type == ATTR_NTFS_DATA]

    def _name_entries(self, file: Any, name: Any, prefix: str,
                      raw_names: dict[int, RawFatEntry], mediator: Mediator, *,
                      file_names: bool) -> tuple[list[Entry], Any]:
        """The entries of one listed name (one per NTFS stream) and the file with its inode."""
        meta_file = self._meta_file(file, name)
        entries = self._entries_of(file, prefix, meta_file, file_names=file_names)
        if raw_names:
            entries = self._renamed(file, entries, raw_names, prefix, mediator)
            entries = _fat_times(entries, raw_names.get(int(name.meta_addr)))
        return entries, meta_file

    def _descend(self, folder: Entry, *, selection: Selection, mediator: Mediator,
                 stack: list[int], file_names: bool) -> Iterator[Entry]:
        """The recursive walk of ``folder``, unless ``stack`` is :data:`MAX_DEPTH` deep."""
        if self._too_deep(folder, stack, mediator):
            return
        stack.append(folder.inode)
        yield from self._walk(folder.inode, folder.path, recursive=True, selection=selection,
                              mediator=mediator, stack=stack, file_names=file_names,
                              deleted=folder.deleted)
        stack.pop()

    def _raw_names(self, inum: int, mediator: Mediator | None = None,
                   prefix: str = "") -> dict[int, RawFatEntry]:
        """FAT: the raw entries of folder ``inum`` by address (empty off FAT)."""
        if self._fat is None:
            return {}
        try:
            return {raw.inode: raw for raw in self._unlisted_raw(inum, set())}
        except FileSystemError as exc:
            if mediator is not None:
                mediator.notice(f"{shown(prefix) or '/'}: raw directory not readable: {exc}",
                                level=UNREAD)
            return {}

    @staticmethod
    def _fat_name(tsk_name: str, raw: RawFatEntry | None) -> str:
        """The name of a FAT entry TSK lists: TSK's, except where TSK loses it.

        TSK prints each byte outside ASCII of an 8.3 name as ``^`` (``^lan.txt``): the name
        is then the raw one, read as code page 437 (see :mod:`.fatraw`). And TSK checks no long
        name's checksum, so a long name left by an entry it refused is glued onto the next
        entry it accepts: an allocated entry TSK names so gets its raw name too."""
        if raw is None or tsk_name in (".", ".."):
            return tsk_name
        if FileSystem._tsk_short_name(tsk_name, raw):
            return raw.short_name
        if raw.deleted:
            return tsk_name
        return tsk_name if tsk_name == (raw.long_name or _as_tsk(raw.short_name)) else raw.name

    @staticmethod
    def _tsk_short_name(tsk_name: str, raw: RawFatEntry) -> bool:
        """Whether TSK named ``raw`` by its 8.3 name (``^`` for each byte outside ASCII)."""
        return raw.long_name is None and tsk_name == _as_tsk(raw.short_name)

    def _renamed(self, file: Any, entries: list[Entry], raw_names: dict[int, RawFatEntry],
                 prefix: str, mediator: Mediator) -> list[Entry]:
        tsk_name = text(file.info.name.name)
        raw = raw_names.get(int(file.info.name.meta_addr))
        name = self._fat_name(tsk_name, raw)
        if name == tsk_name:
            return entries
        path = f"{prefix}/{name}"
        if raw is not None and raw.long_name is not None and not is_exact(raw.long_name):
            mediator.notice(f"{shown(path)}: a long name that is not well-formed UTF-16 (a "
                            f"lone surrogate half; The Sleuth Kit shows {shown(tsk_name)!r})",
                            level="warning")
        elif raw is None or not self._tsk_short_name(tsk_name, raw):
            mediator.notice(f"{shown(path)}: The Sleuth Kit names this entry "
                            f"{shown(tsk_name)!r}, {_fat_name_difference(tsk_name, raw)}",
                            level="warning")
        return [Entry(**{**e.__dict__, "name": name, "path": path}) for e in entries]

    def _unlisted_raw(self, inum: int, listed: set[int]) -> list[RawFatEntry]:
        """The raw entries of folder ``inum`` that TSK did not list (see :mod:`.fatraw`)."""
        assert self._fat is not None
        with tsk_errors(self.image, f"read the runs of folder {inum}"):
            folder = self._fs.open_meta(inode=inum)
            runs = [(int(r.addr), int(r.len)) for a in folder for r in a]
        return [raw for raw in self._fat.entries(runs) if raw.inode not in listed
                and not (raw.is_dir and raw.short_name in (".", ".."))]

    def _unlisted_fat(self, raw_entries: list[RawFatEntry], prefix: str, mediator: Mediator,
                      *, recursive: bool, depth: int, selection: Selection) -> Iterator[Entry]:
        """Entries of the folder that TSK did not list, allocated and deleted, with their long
        names (see :mod:`.fatraw`); an allocated folder among them is walked from the raw
        directory too."""
        for raw in raw_entries:
            entry = self._remember_raw(raw, prefix)
            if selection.wants(raw.deleted):
                mediator.notice(f"{shown(entry.path)}: a FAT entry The Sleuth Kit does not "
                                f"list (inode {raw.inode}), read from the raw directory",
                                level="warning")
                yield entry
            if raw.is_dir and not raw.deleted and recursive:
                yield from self._raw_fat_folder(raw, entry.path, mediator, depth + 1,
                                                {raw.first_cluster}, selection=selection)

    def _raw_fat_folder(self, folder: RawFatEntry, path: str, mediator: Mediator, depth: int,
                        walking: set[int], *, selection: Selection,
                        recursive: bool = True) -> Iterator[Entry]:
        """The entries of a folder TSK cannot open, read along its cluster chain."""
        if depth >= MAX_DEPTH:
            mediator.notice(f"{shown(path)}: deeper than {MAX_DEPTH} folders, not walked",
                            level=UNREAD)
            return
        try:
            raw_entries = self._raw_children(folder)
        except FileSystemError as exc:
            mediator.notice(f"{shown(path)}: raw directory not readable: {exc}",
                            level=UNREAD)
            return
        for raw in raw_entries:
            entry = self._remember_raw(raw, path)
            if selection.wants(raw.deleted):
                yield entry
            if recursive and raw.is_dir and not raw.deleted and (
                    raw.first_cluster not in walking):
                walking.add(raw.first_cluster)
                yield from self._raw_fat_folder(raw, entry.path, mediator, depth + 1, walking,
                                                selection=selection)

    def _raw_children(self, folder: RawFatEntry) -> list[RawFatEntry]:
        assert self._fat is not None
        return [raw for raw in self._fat.entries(self._fat.folder_runs(folder))
                if not (raw.is_dir and raw.short_name in (".", ".."))]

    def _remember_raw(self, raw: RawFatEntry, prefix: str) -> Entry:
        entry = self._raw_entry(raw, prefix)
        self._raw[raw.inode] = (raw, entry)
        return entry

    def _raw_at(self, inum: int) -> Entry | None:
        """The entry only the raw FAT directory has at address ``inum`` (TSK refuses it)."""
        if self._fat is None:
            return None
        if inum not in self._raw:
            try:
                with tsk_errors(self.image, f"open inode {inum}"):
                    self._fs.open_meta(inode=inum)
                return None  # TSK reads it: not ours to add
            except FileSystemError:
                raw = self._fat.entry_at(inum)
            if raw is None:
                return None
            self._remember_raw(raw, "")
        return Entry(**{**self._raw[inum][1].__dict__, "path": ""})

    @staticmethod
    def _raw_entry(raw: RawFatEntry, prefix: str) -> Entry:
        kind = "d" if raw.is_dir else "r"
        return Entry(path=f"{prefix}/{raw.name}", name=raw.name, inode=raw.inode,
                     attr_type=None, attr_id=None, stream=None, name_type=kind,
                     meta_type=kind, deleted=raw.deleted, realloc=False,
                     size=0 if raw.is_dir else raw.size,
                     times=Times(raw.modified, raw.accessed, None, raw.born), mode=0o777)

    def _raw_of(self, entry: Entry) -> RawFatEntry | None:
        found = self._raw.get(entry.inode)
        if found is None or entry.attr_type is not None or found[0].name != entry.name:
            return None
        return found[0]

    @staticmethod
    def _own_link(file: Any, stack: list[int], name: Any = None) -> bool:
        """A folder's ``.`` or ``..`` link (to itself or a folder above it), as ``fls`` hides.
        ``name`` is ``file.info.name`` when the caller has it already."""
        if name is None:
            name = file.info.name
        if name.name not in (b".", b".."):
            return False
        if int(name.meta_addr) in stack:
            return True
        meta = file.info.meta
        return FileSystem._links_up(None if meta is None else int(meta.type))

    @staticmethod
    def _own_record(record: Record, stack: list[int]) -> bool:
        """:meth:`_own_link` for a ``.`` or ``..`` :data:`~.tsk.Record`."""
        return record[1] in stack or FileSystem._links_up(record[RECORD_META + 1])

    @staticmethod
    def _links_up(meta_type: int | None) -> bool:
        """Whether a ``.``/``..`` name not pointing up the walk is still a folder's link: its
        inode is missing, a folder, or of no type."""
        return meta_type is None or meta_type in _LINK_META_TYPES

    def _meta_file(self, file: Any, name: Any = None) -> Any:
        """The file with its inode loaded: the one TSK gave, or the inode the name points at.

        TSK leaves out the inode of a deleted NTFS name whose MFT entry has a newer sequence
        number and of ``$OrphanFiles`` entries; ``fls``, ``icat`` and ``istat`` still read that
        inode, so it is opened here.
        """
        info = file.info
        if info.meta is not None:
            return file
        name = name if name is not None else info.name
        opened = self._inode_of(int(name.meta_addr), int(name.flags),
                                lambda: int(name.meta_seq))
        return opened if opened is not None else file

    def _inode_of(self, addr: int, name_flags: int,
                  name_seq: Callable[[], int] | None = None) -> Any | None:
        """The inode a deleted name (its meta address and flags) points at, opened by address
        (``open_meta``: no sequence number compared, as fls, icat and istat read it); None
        where the name points at none (address 0, or out of range) or TSK opens no inode there.

        A name TSK lists as allocated but gave no inode, on NTFS, is a name whose sequence
        number is not its MFT record's: an entry of an index block the folder no longer uses.
        Its record is the file's own, deleted, where the record is free and its sequence
        number is the name's plus one (NTFS counts it up when it frees a record): opened, as
        icat and ntfsundelete read it (the caller makes the name a deleted one). Otherwise
        (``name_seq`` not given, the record in use by another file or freed again after that)
        it is a stale name, None: ``fls`` prints it ``r/-``; opened by address it passed for a
        live file holding the other file's bytes."""
        if not addr or not self.first_inum <= addr <= self.last_inum:
            return None
        if name_flags & _NAME_ALLOC and (not self._ntfs or name_seq is None):
            return None
        try:
            with tsk_errors(self.image, f"open inode {addr}"):
                opened = self._fs.open_meta(inode=addr)
        except FileSystemError:
            return None
        meta = opened.info.meta
        if meta is None:
            return None
        if name_flags & _NAME_ALLOC:
            assert name_seq is not None
            freed = bool(int(meta.flags) & _META_UNALLOC)
            if not (freed and int(meta.seq) == (name_seq() + 1) & 0xFFFF):
                return None  # a stale name: the record is another file's
        return opened

    @staticmethod
    def _descends(file: Any, meta_file: Any, entry: Entry) -> bool:
        """Whether TSK's recursive walk enters the name of ``file`` (:mod:`.tskenters`), whose
        inode ``meta_file`` holds and whose (first) entry is ``entry``."""
        if entry.name_type not in _ENTERED_NAME_LETTERS:  # first: no pytsk3 call for most
            return False
        meta = meta_file.info.meta
        if meta is None:
            return False
        name = file.info.name
        return enters(int(name.type), int(name.flags), int(meta.type), int(meta.flags))

    def _record_entry(self, record: Record, prefix: str, folder: _RecordFolder | _OneFile,
                      index: int) -> Entry:
        """``_entry(file, prefix, None)`` for a name whose inode TSK loaded, made of its
        :data:`~.tsk.Record`: the one entry of a name off NTFS. ``folder.file(index)`` gives
        the pytsk3 ``File``, for the rare time that needs its extent.

        Why apart: a listing calls it once per entry, so it reads the record's fields and
        asks nothing the entry does not hold; tests hold it equal to :meth:`_entry`."""
        (stored, address, name_flags, name_type, meta_addr, meta_type, meta_flags, size, mode,
         uid, gid, _, _, _, _, _, _, _, _, link, _) = record
        name_text = text(stored)
        if b"^" in stored:  # a name TSK lost part of?
            if type(self._zones) is ExfatZones:
                name_text = self._zones.name(address) or name_text
            elif self.type == "hfs":
                name_text = self._hfs_name(address) or name_text
        deleted = bool(name_flags & _NAME_UNALLOC)
        if deleted and self._exfat is not None and self._exfat.in_use(address):
            deleted = False  # a damaged bitmap (see exfatraw.py)
        times = Times.of_tsk(record[11:19])
        zones = self._zones
        if zones is not None and not (type(zones) is ExtTimes and zones.reads_right(meta_addr)):
            times = zones.adjust(meta_addr, times, lambda: self._extent(folder.file(index)))
        return frozen_record(Entry, {
            "path": f"{prefix}/{name_text}", "name": name_text, "inode": address,
            "attr_type": None, "attr_id": None, "stream": None,
            "name_type": NAME_TYPES[name_type], "meta_type": META_TYPES[meta_type],
            "deleted": deleted, "realloc": deleted and bool(meta_flags & _META_ALLOC),
            "size": size, "times": times, "mode": mode & 0o7777,
            "uid": uid, "gid": gid, "link": text(link) if link else None,
            "file_name_times": None})

    def _open_dir(self, inum: int) -> list[Any]:
        """The pytsk3 ``File`` of every name in folder ``inum``."""
        return self._opened(inum, list)

    def _open_records(self, inum: int, named: NamedList | None = None,
                      walked: list[tuple[int, int, int]] | None = None) -> list[Record]:
        """The :data:`~.tsk.Record` of every name in folder ``inum``, as :meth:`_open_dir`
        lists them; with ``named``, the folder's part of its list collected (``walked`` as
        :func:`~.tsk.records_and_named` fills it), or ``named`` given up where the binding
        cannot."""
        def take(found: Any) -> list[Record]:
            if named is not None and walked is not None:
                listed = records_and_named(found, attributes=self._ntfs,
                                           named=named.addresses, walked=walked)
                if listed is not None:
                    return listed
                named.give_up()
            return records_of(found, attributes=self._ntfs)

        return self._opened(inum, take)

    def _opened(self, inum: int, take: Callable[[Any], list[_T]]) -> list[_T]:
        try:
            with tsk_errors(self.image, f"read directory inode {inum}"):
                return take(self._fs.open_dir(inode=inum))
        except FileSystemError:
            if inum != self.last_inum or not self.type.startswith("ext"):
                raise
        # $OrphanFiles that libtsk fails to build (see orphans.py); a stream error raised above
        if self._orphans is None:
            with tsk_errors(self.image, "find the orphan files"):
                self._orphans = find_orphans(self._fs, root_inum=self.root_inum,
                                             first_inum=self.first_inum,
                                             last_inum=self.last_inum,
                                             scan_end=self._inodes_held())
        return take(self._orphans)

    def _inodes_held(self) -> int:
        """One past the last inode number whose slot in the inode tables can lie inside the
        volume: a superblock may declare far more (a damaged or hostile one: 2^31), and the
        orphan search, one lookup per inode, would take hours over numbers no table holds."""
        from bitwitness.report.browse.moretimes import ext_geometry

        geometry = ext_geometry(self.image.stream, self.partition.byte_offset)
        inode_size = geometry[3] if geometry is not None else 128
        volume = self.partition.length * self.partition.sector_size
        return min(self.last_inum, self.first_inum + volume // inode_size)

    def _entries_of(self, file: Any, prefix: str, meta_file: Any | None = None, *,
                    file_names: bool = False) -> list[Entry]:
        """One entry per stream as ``fls`` prints them (one entry off NTFS).

        ``file`` carries the name (a directory entry), ``meta_file`` the inode (``file``
        itself unless :meth:`_meta_file` had to open it).
        """
        meta_file = meta_file if meta_file is not None else file
        if self._ntfs and meta_file.info.meta is not None:
            attrs = self._attributes(meta_file)
            self._remember_attributes(int(meta_file.info.meta.addr), attrs)
            si_times = self._si_times(meta_file, attrs)
            chosen = self._timeline_file_name(meta_file, attrs) if file_names else None
            named = self._ntfs_name(file, meta_file, attrs)
            found = []
            for attr in attrs:
                kind = int(attr.info.type)
                if kind in (ATTR_NTFS_DATA, ATTR_NTFS_INDEX_ROOT):
                    found.append(self._entry(file, prefix, attr, meta_file=meta_file,
                                             times=si_times, named=named))
                elif chosen is not None and kind == ATTR_FILE_NAME and (
                        int(attr.info.id) == chosen.attr_id):
                    main = self._entry(file, prefix, None, meta_file=meta_file, times=si_times,
                                       named=named)
                    found.append(frozen_record(Entry, {
                        **main.__dict__, "attr_type": ATTR_FILE_NAME, "attr_id": chosen.attr_id,
                        "size": chosen.size, "times": chosen.times,
                        "file_name_times": chosen.times}))
                    # one row: TSK can give two $FILE_NAMEs one id when an attribute list
                    # brings them from extension records
                    chosen = None
            if any(not e.is_file_name_row for e in found):
                return found
            return [*found, self._entry(file, prefix, None, meta_file=meta_file, times=si_times,
                                        named=named)]
        return [self._entry(file, prefix, None, meta_file=meta_file)]

    def _ntfs_record_entries(self, record: Record, prefix: str, *,
                             file_names: bool) -> list[Entry] | None:
        """:meth:`_entries_of` of an NTFS name, made of its record with its attributes
        (:data:`~.tsk.RECORD_ATTRIBUTES`); None where that needs the pytsk3 objects: no
        inode or no attributes given, a name TSK lost part of (``^``, see :meth:`_ntfs_name`),
        ``$STANDARD_INFORMATION`` times TSK left out (read from the attribute), or a
        ``$FILE_NAME`` the record holds no bytes of."""
        attrs = record[RECORD_ATTRIBUTES]
        if attrs is None or b"^" in record[0]:
            return None
        times = Times.of_tsk(record[11:19])
        if not times.complete():
            return None
        chosen = None
        if file_names:
            held = _held_file_names(attrs)
            if held is None:
                return None
            chosen = timeline_file_name_of(held)
        self._remember_listed(record[RECORD_META], _ListedAttributes.of_record(attrs))
        found = []
        named = False  # whether an entry is not the ($FILE_NAME) row
        for attr in attrs:
            kind = attr[0]
            if kind in (ATTR_NTFS_DATA, ATTR_NTFS_INDEX_ROOT):
                found.append(self._ntfs_record_entry(record, prefix, attr, times))
                named = True
            elif chosen is not None and kind == ATTR_FILE_NAME and attr[1] == chosen.attr_id:
                # the main entry with the $FILE_NAME's fields, set before anyone sees it
                row = self._ntfs_record_entry(record, prefix, None, chosen.times)
                row.__dict__.update(attr_type=ATTR_FILE_NAME, attr_id=chosen.attr_id,
                                    size=chosen.size, file_name_times=chosen.times)
                found.append(row)
                chosen = None  # one row, as _entries_of gives it
        if named:
            return found
        return [*found, self._ntfs_record_entry(record, prefix, None, times)]

    @staticmethod
    def _ntfs_record_entry(record: Record, prefix: str, attr: tuple[Any, ...] | None,
                           times: Times) -> Entry:
        """``_entry(file, prefix, attr, times=times)`` of an NTFS name whose inode TSK loaded,
        made of its record and one attribute tuple of it (None: the name's main entry)."""
        (stored, address, name_flags, name_type, _, meta_kind, meta_flags, size, mode, uid, gid,
         _, _, _, _, _, _, _, _, link, _) = record
        name_text = stored.decode("utf-8", "surrogateescape")  # text(stored), without the call
        meta_type = META_TYPES[meta_kind]
        stream = attr_type = attr_id = None
        folder_stream = False
        if attr is not None:
            attr_type, attr_id, _, size, attr_name, _ = attr
            if attr_name or meta_type == "d":  # else _stream_of gives (None, meta_type, False)
                stream, meta_type, folder_stream = _stream_of(
                    attr_type, text(attr_name) if attr_name else None, meta_type)
        deleted = bool(name_flags & _NAME_UNALLOC)
        return frozen_record(Entry, {
            "path": f"{prefix}/{name_text}", "name": name_text, "inode": address,
            "attr_type": attr_type, "attr_id": attr_id, "stream": stream,
            "name_type": NAME_TYPES[name_type], "meta_type": meta_type, "deleted": deleted,
            "realloc": deleted and bool(meta_flags & _META_ALLOC), "size": size,
            "times": times, "mode": mode & 0o7777, "uid": uid, "gid": gid,
            "link": text(link) if link else None, "file_name_times": None,
            "folder_stream": folder_stream})

    def _ntfs_name(self, file: Any, meta_file: Any, attrs: list[Any]) -> str | None:
        """The name in the ``$FILE_NAME`` attribute where TSK's rendering of it lost part of
        it, else None.

        NTFS stores names as any 16-bit units; TSK turns a lone surrogate half into ``^`` and
        drops the unit after it (``zzqq<U+D800>.txt`` lists as ``zzqq^txt``), so such a name
        is wrong in ``fls`` and two names can become one. Only a name TSK shows with ``^`` is
        checked: the file's ``$FILE_NAME`` under the same parent folder whose units are not
        well-formed UTF-16 is taken (:func:`~.ntfs.wtf8_name`) when there is exactly one."""
        name = file.info.name
        if name is None or b"^" not in name.name:
            return None
        parent = int(name.par_addr) & 0xFFFF_FFFF_FFFF
        found = [fn.name for fn in self._file_names(meta_file, attrs)
                 if fn.parent & 0xFFFF_FFFF_FFFF == parent and not is_exact(fn.name)]
        return found[0] if len(found) == 1 else None

    def _utf16_name_of(self, file: Any) -> str | None:
        """:meth:`_ntfs_name` for a listed name whose inode is not loaded yet (lookups); on
        exFAT the name of the entry set (:meth:`.ExfatZones.name`)."""
        if b"^" not in file.info.name.name:
            return None
        if type(self._zones) is ExfatZones:
            return self._zones.name(int(file.info.name.meta_addr))
        if self.type == "hfs":
            return self._hfs_name(int(file.info.name.meta_addr))
        if not self._ntfs:
            return None
        meta_file = self._meta_file(file)
        if meta_file.info.meta is None:
            return None
        return self._ntfs_name(file, meta_file, self._attributes(meta_file))

    def _si_times(self, meta_file: Any, attrs: list[Any]) -> Times | None:
        """$STANDARD_INFORMATION times read from the attribute when TSK's meta lacks one."""
        times = Times.from_meta(meta_file.info.meta)
        if times.complete():  # asked without making the datetimes
            return times
        for attr in attrs:
            if int(attr.info.type) == ATTR_STANDARD_INFORMATION:
                data = self._attr_bytes(meta_file, attr)
                return standard_information_times(data) if data else times
        return times

    def _attr_bytes(self, meta_file: Any, attr: Any) -> bytes:
        size = min(int(attr.info.size), 4096)
        try:
            with tsk_errors(self.image, "read an NTFS attribute"):
                return bytes(meta_file.read_random(0, size, int(attr.info.type),
                                                   int(attr.info.id)))
        except FileSystemError:
            return b""

    def _file_names(self, meta_file: Any, attrs: list[Any]) -> list[FileName]:
        """Every ``$FILE_NAME`` of the inode, each with its own name and times.

        TSK reads an attribute by (type, id), which names the first match: a file with many
        hard links keeps its further ``$FILE_NAME`` attributes in extension records, where
        their ids repeat (48-0 again and again), and every one read as the first of them
        (``stat`` showed one link's name sixty times and none of the others). Such names are
        taken from a folder listing of our build (``records(True)``: each attribute's own
        resident bytes), the folder one of the file's links lies in."""
        fn_attrs = [a for a in attrs if int(a.info.type) == ATTR_FILE_NAME]
        found = []
        for attr in fn_attrs:
            parsed = parse_file_name(int(attr.info.id), self._attr_bytes(meta_file, attr))
            if parsed is not None:
                found.append(parsed)
        if len({int(a.info.id) for a in fn_attrs}) == len(fn_attrs) or not found:
            return found
        held = self._held_names_of(int(meta_file.info.meta.addr), {fn.parent for fn in found})
        return held if held is not None else found

    def _held_names_of(self, inum: int, parents: set[int]) -> list[FileName] | None:
        """The ``$FILE_NAME`` attributes of inode ``inum`` as a listing of one of ``parents``
        (folders that name it) holds them; None where none of them gives its record whole."""
        for parent in sorted(parents)[:8]:
            try:
                with tsk_errors(self.image, f"read directory inode {parent}"):
                    records = records_of(self._fs.open_dir(inode=parent), attributes=True)
            except FileSystemError:
                continue
            for record in records:
                if record[RECORD_META] != inum or record[RECORD_ATTRIBUTES] is None:
                    continue
                held = _held_file_names(record[RECORD_ATTRIBUTES])
                if held is None:
                    return None
                parsed = [parse_file_name(attr_id, data) for attr_id, data in held]
                return [fn for fn in parsed if fn is not None]
        return None

    def _timeline_file_name(self, meta_file: Any, attrs: list[Any]) -> TimelineName | None:
        return timeline_file_name_of((int(attr.info.id), self._attr_bytes(meta_file, attr))
                                     for attr in attrs if int(attr.info.type) == ATTR_FILE_NAME)

    def _attributes(self, file: Any) -> list[Any]:
        with tsk_errors(self.image, "read the attributes of a file"):
            return list(file)

    def _entry(self, file: Any, prefix: str, attr: Any | None, path: str | None = None, *,
               meta_file: Any | None = None, times: Times | None = None,
               named: str | None = None) -> Entry:
        # Called once per entry of a listing: each pytsk3 attribute is read once (every read
        # makes a new wrapper object), and the Entry is built by make_entry. ``named``: the
        # name where TSK's lost part of it (see _ntfs_name).
        name = file.info.name
        meta = (meta_file if meta_file is not None else file).info.meta
        if name is not None:
            name_text = named if named is not None else text(name.name)
            name_flags = int(name.flags)
        else:
            name_text, name_flags = "", 0
        meta_type = META_TYPES[int(meta.type)] if meta is not None else "-"
        name_type = NAME_TYPES[int(name.type)] if name is not None else meta_type
        stream = attr_type = attr_id = None
        folder_stream = False
        size = int(meta.size) if meta is not None else 0
        if attr is not None:
            attr_info = attr.info
            attr_type, attr_id = int(attr_info.type), int(attr_info.id)
            attr_name = attr_info.name
            stream, meta_type, folder_stream = _stream_of(
                attr_type, text(attr_name) if attr_name else None, meta_type)
            size = int(attr_info.size)
        mode = uid = gid = 0
        link = None
        if meta is not None:
            deleted = bool(name_flags & _NAME_UNALLOC) if name is not None else bool(
                int(meta.flags) & _META_UNALLOC)
            if not deleted and meta_file is not None and int(meta.flags) & _META_UNALLOC:
                deleted = True  # a name left in a freed NTFS index block (see _inode_of)
            inode = int(name.meta_addr) if name is not None else int(meta.addr)
            if deleted and self._exfat is not None and self._exfat.in_use(inode):
                deleted = False  # a damaged bitmap (see exfatraw.py)
            realloc = deleted and bool(int(meta.flags) & _META_ALLOC)
            if times is None:
                times = Times.from_meta(meta)
                if self._zones is not None:
                    owner = meta_file if meta_file is not None else file
                    times = self._zones.adjust(int(meta.addr), times,
                                               lambda: self._extent(owner))
            mode, uid, gid = int(meta.mode) & 0o7777, int(meta.uid), int(meta.gid)
            meta_link = meta.link
            link = text(meta_link) if meta_link else None
            if link is None and meta_type == "l" and 0 < int(meta.size) <= MAX_LINK_TARGET:
                link = self._link_from_data(meta_file if meta_file is not None else file,
                                            int(meta.size))
        else:
            deleted, realloc, times = bool(name_flags & _NAME_UNALLOC), False, NO_TIMES
            inode = int(name.meta_addr) if name is not None else 0
        full = path if path is not None else f"{prefix}/{name_text}"
        return make_entry(path=full, name=name_text, inode=inode, attr_type=attr_type,
                          attr_id=attr_id, stream=stream, name_type=name_type,
                          meta_type=meta_type, deleted=deleted, realloc=realloc, size=size,
                          times=times, mode=mode, uid=uid, gid=gid, link=link,
                          folder_stream=folder_stream)

    @staticmethod
    def _link_from_data(file: Any, size: int) -> str | None:
        """A symbolic link's target stored in a data block rather than the inode: TSK 4.x
        leaves ``meta.link`` empty for an ext4 link of 60 bytes or more (mapped by extents),
        where the kernel, debugfs and ``cat`` read the target from that block."""
        try:
            data = file.read_random(0, size)
        except TSK_FAILURES:
            return None
        return text(data.split(b"\0", 1)[0]) if data else None

    def _extent(self, file: Any) -> tuple[int, int] | None:
        """(first block, size) of the file's data: how ISO 9660 records are matched."""
        size = int(file.info.meta.size)
        for attr in self._attributes(file):
            for block, _ in self._runs(attr):
                return (block, size) if block is not None else None
        return None

    # --- lookup ----------------------------------------------------------------------------

    def lookup(self, path: str) -> Entry:
        """The entry at ``path`` (its main stream); raises :class:`FileSystemError` if absent."""
        return self._resolve(path).entry

    def names(self, path: str) -> list[str]:
        """The stored name of each component of ``path`` (however it was spelled), the last
        one with its ``:stream``: what an export names its targets after."""
        target = self._resolve(path)
        names = list(target.names)
        if names and target.entry.stream:
            names[-1] = f"{names[-1]}:{target.entry.stream}"
        return names

    def _resolve(self, path: str) -> _Target:
        parts = split_path(path)
        if not parts:
            return self._root()
        try:
            return self._resolve_parts(parts)
        except FileSystemError as exc:
            if not self._ntfs:
                raise
            failure = exc
        last = parts[-1]
        for sep in (":", "%3A", "%3a"):  # name:stream as typed, or as an export target
            head, found, stream = last.rpartition(sep)
            if not found or not head or not stream:
                continue
            try:
                target = self._resolve_parts([*parts[:-1], head])
            except FileSystemError:
                continue
            if target.file is None:
                continue
            for entry in self._entries_of(target.file, target.entry.path.rpartition("/")[0],
                                          target.meta_file):
                if entry.stream is not None and (
                        entry.stream == stream or stream in spellings(entry.stream)):
                    return _Target(target.file, entry, target.meta_file,
                                   folders=target.folders, names=target.names)
            raise FileSystemError(
                f"{shown(target.entry.path)}: no stream named {shown(stream)!r}")
        raise failure

    def _root(self) -> _Target:
        with tsk_errors(self.image, "open the root folder"):
            file = self._fs.open_meta(inode=self.root_inum)
        return _Target(file, self._main(self._entries_of_root(file)))

    def _entries_of_root(self, file: Any) -> list[Entry]:
        entries = [e for e in self._entries_of(file, "") if e.stream is None] or [
            self._entry(file, "", None)]
        return [Entry(**{**e.__dict__, "path": "/", "name": "", "deleted": False,
                         "realloc": False, "name_type": "d"}) for e in entries]

    def _resolve_parts(self, parts: list[str]) -> _Target:
        current = self._root()
        walked = ""
        folders: list[int] = []
        names: list[str] = []
        for part in parts:
            if not current.entry.is_dir:
                raise FileSystemError(f"{shown(walked)}: not a directory")
            folders.append(current.entry.inode)
            current = self._child(current, part, walked, folders)
            names.append(current.entry.name)
            walked = current.entry.path
            current = _Target(current.file, current.entry, current.meta_file, current.raw,
                              tuple(folders), tuple(names))
        return current

    def _child(self, folder: _Target, part: str, walked: str, folders: list[int]) -> _Target:
        """The entry of ``folder`` that ``part`` names.

        Tried in turn, the first that finds one wins: the name exactly as stored (allocated
        before deleted), the same ignoring case (FAT, NTFS, exFAT, HFS+, ISO 9660), then the
        spellings of :func:`~bitwitness.report.browse.safenames.spellings` (how listings and
        export manifests print a name). Entries named ``.`` or ``..`` that are not the
        folder's own links are reached only by a spelling (``%2E``, ``%2E%2E``); on FAT, the
        entries only the raw directory holds are looked at last. A spelling that fits two
        different names is refused, naming both inodes.
        """
        if folder.raw is not None:
            raws = self._raw_children(folder.raw)
            raw = self._pick(raws, part, walked, name=lambda r: r.name,
                             deleted=lambda r: r.deleted, address=lambda r: r.inode)
            if raw is None:
                raise FileSystemError(f"{shown(walked + '/' + part)}: no such file or folder")
            return _Target(None, self._remember_raw(raw, walked), raw=raw)
        files = [f for f in self._open_dir(folder.entry.inode)
                 if f.info.name is not None and not self._own_link(f, folders)]
        raw_names = self._raw_names(folder.entry.inode)

        def name_of(f: Any) -> str:
            fixed = self._utf16_name_of(f)
            if fixed is not None:
                return fixed
            return self._fat_name(text(f.info.name.name),
                                  raw_names.get(int(f.info.name.meta_addr)))

        # on FAT the entries only the raw directory holds compete in the same tiers: an exact
        # name there wins over TSK's entry of the same letters in another case
        candidates: list[tuple[Any, RawFatEntry | None]] = [(f, None) for f in files]
        if self._fat is not None:
            listed = {int(f.info.name.meta_addr) for f in files}
            candidates += [(None, r) for a, r in raw_names.items() if a not in listed]
        picked = self._pick(
            candidates, part, walked,
            name=lambda c: name_of(c[0]) if c[1] is None else c[1].name,
            deleted=lambda c: (bool(int(c[0].info.name.flags) & _NAME_UNALLOC)
                               if c[1] is None else c[1].deleted),
            address=lambda c: int(c[0].info.name.meta_addr) if c[1] is None else c[1].inode)
        if picked is None:
            raise FileSystemError(f"{shown(walked + '/' + part)}: no such file or folder")
        file, raw = picked
        if raw is not None:
            return _Target(None, self._remember_raw(raw, walked), raw=raw)
        meta_file = self._meta_file(file)
        entries = self._entries_of(file, walked, meta_file)
        name = name_of(file)
        if name != entries[0].name:
            entries = [Entry(**{**e.__dict__, "name": name, "path": f"{walked}/{name}"})
                       for e in entries]
        return _Target(file, self._main(entries), meta_file)

    def _pick(self, items: list[_T], part: str, walked: str, *, name: Callable[[_T], str],
              deleted: Callable[[_T], bool], address: Callable[[_T], int]) -> _T | None:
        """The item whose name ``part`` names, by the rules of :meth:`_child`."""
        fold = self.type.startswith(_CASE_INSENSITIVE)
        folded = part.casefold()
        plain = [i for i in items if name(i) not in (".", "..")]
        tiers: list[tuple[list[_T], Callable[[str], bool]]] = [
            (plain, lambda n: n == part)]
        if fold:
            tiers.append((plain, lambda n: n.casefold() == folded))
        tiers.append((items, lambda n: part in spellings(n)))
        if fold:
            tiers.append((items, lambda n: folded in {s.casefold() for s in spellings(n)}))
        # last, the same characters composed otherwise: HFS+ stores names decomposed (NFD)
        # and a name typed on a keyboard comes composed (NFC); other file systems keep what
        # was written, and an exact spelling above wins where both forms exist
        composed = _nfc(folded if fold else part)
        tiers.append((plain, lambda n: _nfc(n.casefold() if fold else n) == composed))
        for pool, matches in tiers:
            found = [i for i in pool if matches(name(i))]
            if not found:
                continue
            if len({name(i) for i in found}) > 1:
                choices = ", ".join(f"{shown(name(i))!r} (inode {address(i)})" for i in found)
                raise FileSystemError(f"{shown(walked + '/' + part)} names more than one "
                                      f"entry: {choices}; give it by --inode")
            found.sort(key=deleted)
            return found[0]
        return None

    @staticmethod
    def _main(entries: list[Entry]) -> Entry:
        for entry in entries:
            if entry.stream is None:
                return entry
        return entries[0]

    def by_address(self, address: str) -> Entry:
        """The file at inode ``address`` (``15`` or NTFS ``8-128-1``, as ``icat`` takes it)."""
        return self._by_address(address).entry

    def _by_address(self, address: str) -> _Target:
        match = _ADDRESS.match(address.strip())
        if not match:
            raise FileSystemError(f"{address!r} is not an inode address (N or N-TYPE-ID)")
        inum = int(match.group(1))
        if match.group(2) is None and (raw := self._raw_at(inum)) is not None:
            return _Target(None, raw, raw=self._raw[inum][0])
        if not self.first_inum <= inum <= self.last_inum:
            raise FileSystemError(f"inode {inum} is out of range ({self.first_inum}-"
                                  f"{self.last_inum}) for this {self.type} file system")
        with tsk_errors(self.image, f"open inode {inum}"):
            file = self._fs.open_meta(inode=inum)
        if file.info.meta is None:
            raise FileSystemError(f"inode {inum} has no metadata")
        entries = self._entries_of(file, "")
        entries = [Entry(**{**e.__dict__, "path": ""}) for e in entries]
        if match.group(2) is None:
            return _Target(file, self._main(entries))
        kind, ident = int(match.group(2)), match.group(3)
        for attr in self._attributes(file):
            if int(attr.info.type) == kind and (ident is None or int(attr.info.id) == int(ident)):
                entry = self._entry(file, "", attr, path="")
                return _Target(file, entry)
        raise FileSystemError(f"inode {inum} has no attribute {match.group(0).split('-', 1)[1]}")

    def target(self, path: str | None = None, address: str | None = None) -> Entry:
        """The entry named by a path or by an inode address (exactly one of the two)."""
        if (path is None) == (address is None):
            raise FileSystemError("give either a path or an inode, not both")
        return self.lookup(path) if path is not None else self.by_address(address or "")

    # --- metadata and content --------------------------------------------------------------

    def stat(self, entry: Entry) -> FileStat:
        """Metadata of the inode behind ``entry`` (as ``istat``), NTFS times of both kinds."""
        if (raw := self._raw_of(entry)) is not None:
            note = self.content_note(entry)
            return FileStat(entry=entry, filesystem=self.type, allocated=not raw.deleted,
                            mode="rwxrwxrwx", uid=0, gid=0, links=0 if raw.deleted else 1,
                            attributes=(), short_name=raw.short_name,
                            note=(note + "; " if note else "") + "read from the raw FAT "
                                 "directory: The Sleuth Kit refuses this entry's name")
        if self._fat is not None:  # a 2107 date TSK gives as none
            entry = _fat_times([entry], self._fat_entry(self._fat, entry))[0]
        file = self._file(entry)
        meta = file.info.meta
        raw_attrs = self._attributes(file) if meta is not None else []
        attrs = tuple(
            Attribute(type=int(a.info.type), id=int(a.info.id),
                      name=text(a.info.name) if a.info.name else None, size=int(a.info.size),
                      resident=bool(int(a.info.flags) & _RESIDENT),
                      runs=() if int(a.info.flags) & _RESIDENT else self._runs(a))
            for a in raw_attrs)
        si = names = wof = None
        stored = None
        if self.type == "hfs" and meta is not None:
            try:
                found = self._decmpfs_of(file, entry, raw_attrs)
            except FileSystemError as exc:
                stored = str(exc).split(": ", 1)[-1]
            else:
                if found is not None:
                    record, fork = found
                    stored = record.describe(int(fork.info.size) if fork is not None else None)
        if self._ntfs and meta is not None:
            wof = self._wof_of(file, raw_attrs)
            si = self._si_times(file, raw_attrs)
            names = tuple((n.name, n.times) for n in self._file_names(file, raw_attrs))
        return FileStat(entry=entry, filesystem=self.type,
                        allocated=bool(int(meta.flags) & _META_ALLOC) if meta else False,
                        mode=permissions(int(meta.mode)) if meta else "---------",
                        uid=int(meta.uid) if meta else 0, gid=int(meta.gid) if meta else 0,
                        links=int(meta.nlink) if meta else 0, attributes=attrs,
                        standard_information=si, file_names=names or (),
                        note=self.content_note(entry),
                        stored=wof.describe() if wof is not None else stored,
                        deleted_time=self._deleted_time(entry.inode) if meta else None,
                        backup_time=self._backup_time(entry.inode) if meta else None,
                        short_name=self._short_name(entry))

    def _short_name(self, entry: Entry) -> str | None:
        """FAT: the 8.3 name in the directory slot TSK gives ``entry`` (None elsewhere, and for
        TSK's virtual files)."""
        if self._fat is None:
            return None
        try:
            raw = self._fat.entry_at(entry.inode)
        except (BitWitnessError, OSError):
            return None  # the slot is unreadable: the rest of stat still stands
        return raw.short_name if raw is not None else None

    def _deleted_time(self, inode: int) -> datetime | None:
        if not self.type.startswith("ext"):
            return None
        return ext_deletion_time(self.image.stream, self.partition.byte_offset, inode)

    def _hfs_name(self, cnid: int) -> str | None:
        """HFS+: the exact name of ``cnid`` where it holds a lone surrogate half (which TSK
        shows as ``^``), as WTF-8 like NTFS's (:func:`.ntfs.wtf8_name`), ``/`` shown as ``:``
        as TSK shows it; None for a name that is valid UTF-16 (its ``^`` is a real one)."""
        catalog = self._catalog()
        units = catalog.name(cnid) if catalog is not None else None
        if units is None:
            return None
        try:
            units.decode("utf-16-be")
        except UnicodeDecodeError:
            return wtf8_name(units.decode("utf-16-be", "surrogatepass").encode(
                "utf-16-le", "surrogatepass")).replace("/", ":")
        return None

    def _backup_time(self, inode: int) -> datetime | None:
        if self.type != "hfs":
            return None
        catalog = self._catalog()
        return catalog.backup_time(inode) if catalog is not None else None

    def _catalog(self) -> HfsCatalog | None:
        """HFS+: the catalog, opened on first use (None where it cannot be read)."""
        if not self._hfs_read:
            self._hfs_read = True
            try:
                catalog, image = self._file_at(_HFS_CATALOG), self.image

                def read(offset: int, size: int) -> bytes:
                    # not through self: the catalog kept in self would keep self alive in a
                    # cycle that held each closed file system's TSK handles until a full GC
                    with tsk_errors(image, "read the HFS+ catalog"):
                        return bytes(catalog.read_random(offset, size))

                self._hfs = HfsCatalog(read)
            except (ValueError, FileSystemError):
                self._hfs = None
        return self._hfs

    def file_name_times(self, entry: Entry) -> Times | None:
        """The NTFS ``$FILE_NAME`` times TSK's timeline uses for ``entry`` (None off NTFS)."""
        if not self._ntfs:
            return None
        if entry.file_name_times is not None:
            return entry.file_name_times
        listed = self._listed_of(entry.inode)
        held = listed.file_names if listed is not None else None
        if held is not None:  # export, after the listing
            named = timeline_file_name_of(held)
            return named.times if named is not None else None
        file = self._file(entry)
        if file.info.meta is None:
            return None
        chosen = self._timeline_file_name(file, self._attributes(file))
        return chosen.times if chosen is not None else None

    def _runs(self, attr: Any) -> tuple[tuple[int | None, int], ...]:
        try:
            with tsk_errors(self.image, "read the runs of an attribute"):
                return tuple((None if int(r.flags) & _RUN_NO_BLOCKS else int(r.addr),
                              int(r.len)) for r in attr)
        except FileSystemError:
            return ()

    def media_extents(self, entry: Entry) -> list[tuple[int, int]] | None:
        """Where the data of ``entry``'s stream lies in this file system's stream, as (byte
        offset, length) pairs clipped to the stream's size; None where it lies in no run of
        blocks (a folder, resident NTFS data, an entry only the raw FAT reader lists).

        Sparse and filler runs hold no blocks and are left out. For compressed NTFS data the
        pairs cover the compressed units as stored, and for a WOF file's main stream (zeros on
        the disk) those of ``WofCompressedData``, which its content is decompressed from.
        """
        if entry.is_dir or self._raw_of(entry) is not None:
            return None
        file = self._file(entry)
        attr = self._data_attribute(file, entry)
        if self._wof_main(file, entry) is not None:
            attr = next((a for a in self._attributes(file) if int(a.info.type) == _NTFS_DATA
                         and a.info.name == b"WofCompressedData"), None)
        if attr is None or int(attr.info.flags) & _RESIDENT:
            return None
        size, block, base = int(attr.info.size), self.block_size, self.partition.byte_offset
        extents: list[tuple[int, int]] = []
        with tsk_errors(self.image, "read the runs of an attribute"):
            for run in attr:
                start = int(run.offset) * block
                if int(run.flags) & _RUN_NO_BLOCKS or start >= size:
                    continue
                extents.append((base + int(run.addr) * block,
                                min(int(run.len) * block, size - start)))
        return extents

    def overwritten_note(self, entry: Entry) -> str | None:
        """How much of a deleted file's data now lies in blocks allocated again, or None.

        A deleted NTFS file whose MFT record survives keeps its runs, as a deleted ext2 inode
        keeps its block pointers, and ``icat`` reads them; but the blocks were freed with the
        file and may since hold another file's data. NTFS's ``$Bitmap`` (MFT entry 6) and
        ext's block bitmaps (:mod:`.extalloc`) say which are allocated now: any of them under
        this file's runs belongs to something else, so those bytes are likely not this file's.
        """
        if not entry.deleted or entry.is_dir or entry.realloc or not (
                self._ntfs or self.type.startswith("ext") or self._exfat is not None):
            return None
        extents = self.media_extents(entry)
        if not extents:
            return None
        block, base = self.block_size, self.partition.byte_offset
        total = taken = 0
        for start, length in extents:
            first, count = (start - base) // block, -(-length // block)
            total += count
            taken += self._allocated_blocks(first, count)
        if not taken:
            return None
        unit, record = (("cluster", "$Bitmap") if self._ntfs else
                        ("sector", "the allocation bitmap") if self._exfat is not None else
                        ("block", "the block bitmap"))
        return (f"{taken} of the {total} {unit}(s) its runs name are allocated again (to "
                f"another file, per {record}): their bytes are likely not this file's")

    def allocation_note(self, entry: Entry) -> str | None:
        """Damage to a FAT or exFAT volume's allocation records under a live file, or None.

        A loop in the FAT (``fsck.fat`` reports a "circular cluster chain") makes The Sleuth
        Kit read the same clusters again until the file's size is covered, with no error: the
        bytes after the loop are clusters already given, not the file's content. Its runs then
        name some clusters twice; the bytes they cover again are counted. An exFAT file whose
        directory entry is in use where the allocation bitmap marks it free (a damaged bitmap)
        is read along its FAT chain here (exfatraw.py), where TSK would take it for deleted:
        said, as the volume's records disagree."""
        if entry.is_dir or entry.deleted:
            return None
        if self._exfat is not None:
            if entry.stream is None and self._bitmap_free(entry, self._file(entry)):
                return ("its directory entry is in use but the allocation bitmap marks it free "
                        "(a damaged bitmap, as fsck.exfat reports it): read along its FAT "
                        "chain, as the directory entry gives it")
            return None
        return self._repeated_note(entry) if self._fat is not None else None

    def _repeated_note(self, entry: Entry) -> str | None:
        """The bytes a FAT file's runs cover twice (see :meth:`allocation_note`)."""
        extents = self.media_extents(entry)
        if not extents or len(extents) < 2:
            return None
        again = 0
        covered = -1
        for start, length in sorted(extents):
            end = start + length
            if start < covered:
                again += min(end, covered) - start
            covered = max(covered, end)
        if not again:
            return None
        return (f"its cluster chain comes back to clusters it has already passed (a loop in "
                f"the FAT): {again:,} of its bytes are those clusters read again, not its "
                "content")

    @property
    def times_note(self) -> str | None:
        """What the times of this file system are, where they are not UTC: FAT records the
        wall clock of the machine that wrote each time, with no zone (exFAT records an offset,
        moved to UTC by :mod:`.zones`). Outputs print such times as if UTC, as ``istat -z UTC``
        does, and carry this note so that no one reads them as UTC."""
        if self.type in ("fat12", "fat16", "fat32"):
            return ("FAT records local time with no zone: these times are the writing machine's "
                    "wall clock, printed as if UTC")
        return None

    def missing_note(self) -> str | None:
        """That the file system runs past the end of the media, as TSK finds it (``fsstat``'s
        "Total Range in Image" short of its "Block Range"), or None when it is whole; on FAT
        also that its two FAT copies differ (damage, or a write cut short), as ``fsck.fat``
        reports it: the first copy is the one read, by TSK and by us."""
        differ = self._fat.copies_differ() if self._fat is not None else None
        if differ:
            copies = (f"the {self.type} file system at sector {self.partition.start}: its two "
                      f"FAT copies differ in {differ} cluster entr"
                      f"{'y' if differ == 1 else 'ies'} (as fsck.fat reports 'FATs differ'); "
                      "the first copy is read")
            return copies if (short := self._missing_media()) is None else f"{short}; {copies}"
        return self._missing_media()

    def _missing_media(self) -> str | None:
        info = self._fs.info
        last, present = int(info.last_block), int(info.last_block_act)
        if present >= last:
            return None
        return (f"the {self.type} file system at sector {self.partition.start} runs past the "
                f"end of the media: {last - present} of its {last + 1} blocks of "
                f"{self.block_size} bytes are not in the image (blocks {present + 1}-{last}); "
                f"reads there give no data")

    def encrypted_note(self, entry: Entry) -> str | None:
        """That ``entry``'s data is stored encrypted by the file system, or None.

        The bytes handed out are then the ciphertext on the disk, which is the evidence and is
        exported as it is, but must not pass for the file's content as its user saw it:
        NTFS marks an EFS-encrypted stream in its attribute header (TSK's ``TSK_FS_ATTR_ENC``;
        the keys are in the ``$EFS`` stream, sealed with the user's private key), ext4 marks
        an fscrypt-encrypted inode with ``EXT4_ENCRYPT_FL`` (on a volume with the ``encrypt``
        feature; its names are encrypted too, and are shown as their bytes)."""
        if entry.is_dir or entry.meta_type == "-":
            return None
        if self._ntfs:
            if not self._efs_stream(entry):
                return None
            return ("its data is EFS-encrypted: these are the bytes on the disk (ciphertext); "
                    "the plaintext needs the owner's EFS private key")
        if isinstance(self._zones, ExtTimes) and self._ext_encrypt():
            flags = self._zones.flags(entry.inode)
            if flags is not None and flags & _EXT4_ENCRYPT_FL:
                return ("its data is encrypted by ext4 (fscrypt): these are the bytes on the "
                        "disk (ciphertext); the plaintext needs the folder's key")
        return None

    def sparse_throughout(self, entry: Entry) -> bool:
        """Whether NTFS stores ``entry``'s stream as one sparse run of the whole volume, which
        TSK drops on purpose and reads as nothing (``icat`` and ``tsk_recover`` give no bytes).

        That is ``$BadClus:$Bad`` on a volume with no bad clusters: its size is the volume's and
        every byte of it is a zero no cluster holds (ntfs-3g and libfsntfs read it so). Nothing
        is lost when such a stream gives no bytes, so no doubt is raised for it; writing the
        volume's size in zeros for it would make every export of a volume as big as the
        volume."""
        if not self._ntfs or entry.is_dir:
            return False
        if entry.size != (int(self._fs.info.last_block) + 1) * self.block_size:
            return False  # TSK drops only a sparse run as long as the volume
        try:
            attr = self._data_attribute(self._file(entry), entry)
            if attr is None or not int(attr.info.flags) & _ATTR_NONRESIDENT:
                return False
            return next(iter(attr), None) is None
        except FileSystemError:
            return False

    def compressed_note(self, entry: Entry) -> str | None:
        """Why an HFS+ compressed file's content is not read, or None (not compressed, or of
        a type :mod:`.decmpfs` decodes): LZBITMAP, uncompressed-record, dataless
        and unknown types hand out no bytes, and that must not pass for an empty file."""
        if self.type != "hfs" or entry.is_dir or entry.meta_type == "-" or (
                entry.attr_type is not None):
            return None
        try:
            found = self._decmpfs_of(self._file(entry), entry)
        except FileSystemError:
            return None  # reading the content says what is wrong
        return found[0].refusal if found is not None else None

    def _decmpfs_of(self, file: Any, entry: Entry,
                    attrs: list[Any] | None = None) -> tuple[decmpfs.Decmpfs, Any] | None:
        """HFS+: the decmpfs record of ``entry``'s data and the resource-fork attribute (None
        when it has none), or None when the file is not compressed (or ``entry`` is another
        stream). TSK loads the record as an attribute of its own type whether or not the
        catalog sets UF_COMPRESSED, and so do we; a record that is not one raises."""
        if self.type != "hfs" or entry.attr_type is not None or entry.is_dir or (
                file.info.meta is None):
            return None
        attrs = self._attributes(file) if attrs is None else attrs
        record = next((a for a in attrs if int(a.info.type) == _HFS_COMP_REC), None)
        if record is None:
            meta = file.info.meta
            if int(meta.attr_state) == _ATTR_STATE_ERROR:  # TSK refused the record, or more
                raise FileSystemError(
                    f"{shown(entry.display_path) or entry.address}: The Sleuth Kit could not "
                    f"load its forks and attributes (damaged, or a com.apple.decmpfs record "
                    f"declaring sizes its data cannot hold): its content cannot be read")
            if int(meta.flags) & _META_COMP:
                raise FileSystemError(
                    f"{shown(entry.display_path) or entry.address}: it is flagged compressed "
                    f"(UF_COMPRESSED) but has no com.apple.decmpfs record: its content is not "
                    f"on this volume as such")
            return None
        size = min(int(record.info.size), _MAX_DECMPFS_RECORD)
        with tsk_errors(self.image, "read a com.apple.decmpfs record"):
            raw = bytes(file.read_random(0, size, _HFS_COMP_REC, int(record.info.id)))
        fork = next((a for a in attrs if int(a.info.type) == _HFS_RSRC), None)
        return decmpfs.parse(raw), fork

    def _decmpfs_content(self, file: Any, entry: Entry, found: tuple[decmpfs.Decmpfs, Any],
                         block: int, first: int = 0) -> Iterator[bytes]:
        """The decoded content of a compressed HFS+ file (see :mod:`.decmpfs`); nothing where
        :meth:`compressed_note` names why it is not read."""
        record, fork = found
        if record.refusal is not None:
            return
        where = shown(entry.display_path) or entry.address
        fork_size = int(fork.info.size) if fork is not None else 0
        if record.in_fork and fork is None:
            raise FileSystemError(f"{where}: its decmpfs record puts the data in a resource "
                                  f"fork it does not have")

        def read_fork(offset: int, size: int) -> bytes:
            with tsk_errors(self.image, f"read the resource fork of {where}"):
                return bytes(file.read_random(offset, size, _HFS_RSRC, int(fork.info.id)))

        volume = self.partition.length * self.partition.sector_size
        try:
            yield from decmpfs.content(record, fork_size, read_fork, volume, block=block,
                                       first=first)
        except FileSystemError as exc:
            if str(exc).startswith(where):
                raise
            raise FileSystemError(f"{where}: {exc}") from exc

    def _efs_stream(self, entry: Entry) -> bool:
        """Whether NTFS stores ``entry``'s stream encrypted (EFS)."""
        known = self._listed_of(entry.inode)
        if known is not None:  # the listing that made the entry looked already
            return entry.attr_id in known.encrypted
        try:
            attr = self._data_attribute(self._file(entry), entry)
        except FileSystemError:
            return False  # nothing claimed where the record cannot be read
        return attr is not None and bool(int(attr.info.flags) & _ATTR_ENCRYPTED)

    def _remember_attributes(self, inode: int, attrs: list[Any]) -> None:
        """Keep which ``$DATA`` streams of ``inode`` are encrypted, for :meth:`encrypted_note`,
        and whether it has no reparse point, for :meth:`_wof_main` (both asked of every file
        ``export`` writes, right after the listing made its entry: the attributes are read
        once). About the last :data:`_ENCRYPTION_REMEMBERED` inodes are kept."""
        self._remember_listed(inode, _ListedAttributes.of(
            (int(a.info.type), int(a.info.id), int(a.info.flags)) for a in attrs))

    def _remember_listed(self, inode: int, listed: _ListedAttributes) -> None:
        """Keep ``listed`` for ``inode``: between the last :data:`_ENCRYPTION_REMEMBERED` and
        twice that many inodes are kept, in two generations, the older dropped whole when the
        newer is full. Why not the oldest one at a time: deleting a dict's first key leaves a
        hole its next first-key lookup steps over, so that grew with every listed name."""
        kept = self._listed
        kept[inode] = listed
        if len(kept) >= _ENCRYPTION_REMEMBERED:
            self._listed_before = kept
            self._listed = {}

    def _listed_of(self, inode: int) -> _ListedAttributes | None:
        """What :meth:`_remember_listed` keeps of ``inode``, if it is kept still."""
        found = self._listed.get(inode)
        return found if found is not None else self._listed_before.get(inode)

    def _ext_encrypt(self) -> bool:
        """Whether this ext volume has the ``encrypt`` feature."""
        return "encrypt" in self._ext_features

    @functools.cached_property
    def _ext_features(self) -> frozenset[str]:
        """The ext superblock's feature names (none off ext), read once."""
        if not self.type.startswith("ext"):
            return frozenset()
        found = read_superblock(self.image.stream, self.partition.byte_offset)
        return frozenset(found.features) if found is not None else frozenset()

    def _allocated_blocks(self, first: int, count: int) -> int:
        if self._ntfs:
            return self._allocated_clusters(first, count)
        if self._exfat is not None:  # TSK's exFAT blocks are sectors
            return self._exfat.allocated_sectors(first, count) or 0
        if self._ext_bitmaps is None:
            self._ext_bitmaps = ExtBitmaps(self.image.stream, self.partition.byte_offset)
        return self._ext_bitmaps.allocated(first, count)

    def _allocated_clusters(self, first: int, count: int) -> int:
        """How many of clusters ``first`` .. ``first + count - 1`` ``$Bitmap`` marks allocated;
        a cluster past the bitmap counts as allocated (it cannot be this file's free space).

        The bitmap is read :data:`_BITMAP_WINDOW` bytes at a time, and no further than the
        media holds clusters: ``$Bitmap`` and a deleted file's runs both state their sizes, and
        a hostile volume can make them exabytes."""
        if self._bitmap is None:
            self._bitmap = self._file_at(_NTFS_BITMAP)
        meta = self._bitmap.info.meta
        clusters = -(-self.image.stream.size // max(self.block_size, 1))
        size = min(int(meta.size) if meta is not None else 0, clusters // 8 + 1)
        taken, cluster, end = 0, first, first + count
        while cluster < end:
            low = cluster // 8
            if low >= size:
                break
            high = min((end - 1) // 8 + 1, size, low + _BITMAP_WINDOW)
            with tsk_errors(self.image, "read the NTFS $Bitmap"):
                bits = bytes(self._bitmap.read_random(low, high - low))
            known = min(end - cluster, len(bits) * 8 - cluster % 8)  # clusters read here
            if known <= 0:
                break
            window = (int.from_bytes(bits, "little") >> (cluster % 8)) & ((1 << known) - 1)
            taken += window.bit_count()
            cluster += known
        return taken + (end - cluster)

    def _data_attribute(self, file: Any, entry: Entry) -> Any | None:
        """The attribute ``iter_content`` reads: the entry's stream, else the default data."""
        for attr in self._attributes(file):
            kind = int(attr.info.type)
            if entry.attr_type is not None:
                if kind == entry.attr_type and entry.attr_id in (None, int(attr.info.id)):
                    return attr
            elif kind in _DEFAULT_DATA and not (kind == _NTFS_DATA and attr.info.name):
                return attr
        return None

    # --- WOF (see wof.py) -------------------------------------------------------------------

    def _wof_of(self, file: Any, attrs: list[Any]) -> WofFile | None:
        """What the WOF reparse point of NTFS ``file`` says (None: it has none)."""
        reparse = main = stream = None
        for attr in attrs:
            kind, name = int(attr.info.type), attr.info.name
            if kind == ATTR_REPARSE_POINT:
                reparse = attr
            elif kind == _NTFS_DATA and not name:
                main = main or attr
            elif kind == _NTFS_DATA and name == b"WofCompressedData":
                stream = attr
        if reparse is None or main is None:
            return None
        return parse_reparse(self._attr_bytes(file, reparse),
                             int(stream.info.size) if stream is not None else None,
                             int(main.info.size))

    def _wof_main(self, file: Any, entry: Entry) -> WofFile | None:
        """The WOF record when ``entry`` is the unnamed ``$DATA`` of a WOF file (whose bytes
        on the disk are zeros): its content is then read decompressed, or refused."""
        listed = self._listed_of(entry.inode)
        if not self._ntfs or (listed is not None and not listed.reparse) or (
                file.info.meta is None):
            return None
        attrs = self._attributes(file)
        if not any(int(a.info.type) == ATTR_REPARSE_POINT for a in attrs):
            return None
        if entry.attr_type is not None and not any(
                int(a.info.type) == entry.attr_type == _NTFS_DATA and not a.info.name
                and entry.attr_id in (None, int(a.info.id)) for a in attrs):
            return None  # another stream (WofCompressedData itself): read as it is
        return self._wof_of(file, attrs)

    def _wof_reader(self, entry: Entry, wof: WofFile) -> WofVolume:
        """The reader of WOF content; raises the record's refusal as a one-line error."""
        if wof.refusal is not None:
            raise FileSystemError(f"{shown(entry.display_path) or entry.address}: "
                                  f"{wof.refusal}")
        if self._wof_volume is None:
            self._wof_volume = WofVolume(self.image.stream, self.partition.byte_offset,
                                         self.partition.length * self.partition.sector_size)
        return self._wof_volume

    def content_note(self, entry: Entry) -> str | None:
        """Why ``entry``'s content cannot be trusted as this file's, or None when it can.

        A deleted name keeps pointing at its inode, but the inode may have been reused (its
        content now belongs to another file), may be gone, or may have lost its size (ext2,
        ext3 and ext4 clear it on delete, UFS too): then nothing of the deleted file is
        recoverable from here, and an empty or foreign file must not pass as its content.
        NTFS, FAT and exFAT keep a deleted file's size where it was (the MFT record's
        attribute, the directory entry): a size of 0 there is a file that was empty, and it
        reads as one, as ``icat`` reads it; an NTFS record with no data attribute at all (the
        reserved records 16-23 every volume holds, never used) has no content to give, as
        ``icat`` says too (:data:`NO_DATA_ATTRIBUTE`: no loss, where its record also holds no
        attribute list; with one, the data attribute may have been in an extension record
        that is gone). On FAT the same holds for
        a deleted entry whose first cluster the FAT gives to a file again: TSK still reads from
        that cluster on (``icat`` hands out the newer file's bytes), so the entry is checked
        here as the raw reader recovers it, whether TSK listed it or not.
        """
        if entry.is_dir:
            return None
        if entry.meta_type == "-":
            return (_NO_INODE_DELETED if entry.deleted
                    else _NO_INODE_NTFS if self._ntfs else _NO_INODE)
        if not entry.deleted:
            return None
        if entry.realloc:
            return ("not recoverable: the inode was reused by another file (what it holds now "
                    "is that file's content)")
        if entry.size == 0:
            note = self._empty_note(entry)
            if note is not None:
                return note
        return self._fat_note(entry) if self._exfat is None else self._exfat_note(entry)

    def _exfat_note(self, entry: Entry) -> str | None:
        """A deleted exFAT file whose first cluster is allocated again: TSK reads a deleted
        file as clusters from its first one on, so it would hand out the new owner's bytes
        (and stop short where they end) under this file's name."""
        assert self._exfat is not None
        if entry.stream is None and self._exfat.first_cluster_allocated(int(entry.inode)):
            return ("not recoverable: the first cluster of the deleted file is allocated again "
                    "(per the allocation bitmap): what it holds now is another file's content")
        return None

    def _empty_note(self, entry: Entry) -> str | None:
        """Why a deleted file of size 0 gives no content (see :meth:`content_note`): where the
        size is cleared on delete, or an NTFS record that holds no data attribute of the
        stream (read once: its attributes' types and whether each is named)."""
        if self.type not in SIZES_KEPT_ON_DELETE:
            return _SIZE_CLEARED
        if not self._ntfs or (entry.attr_type is not None and (
                entry.attr_type == _NTFS_DATA or entry.stream is not None)):
            return None
        try:
            held = [(int(a.info.type), bool(a.info.name))
                    for a in self._attributes(self._file(entry))]
        except FileSystemError:
            return _SIZE_CLEARED
        if entry.attr_type is None and (_NTFS_DATA, False) in held:
            return None  # its unnamed data attribute: a file that was empty
        # with an attribute list, the data attribute may have lived in an extension record
        # that is gone
        if any(kind == _NTFS_ATTRIBUTE_LIST for kind, _named in held):
            return _SIZE_CLEARED
        return NO_DATA_ATTRIBUTE

    def _fat_note(self, entry: Entry) -> str | None:
        """Why a deleted FAT file's clusters cannot be its content (see :meth:`content_note`)."""
        if self._fat is None:
            return None
        raw = self._raw_of(entry) or self._fat_entry(self._fat, entry)
        if raw is None or not raw.deleted:
            return None
        try:
            self._fat.recovered_clusters(raw)
        except FileSystemError as exc:
            return str(exc).split(": ", 1)[1]
        return None

    def _fat_entry(self, fat: FatVolume, entry: Entry) -> RawFatEntry | None:
        """The raw directory entry at the address TSK gave ``entry``, or None when that slot
        does not hold the same entry (a file of another size, or not a folder where ``entry``
        is one: a folder's entry records size 0, TSK gives its chain's) or cannot be read."""
        try:
            raw = fat.entry_at(entry.inode)
        except (BitWitnessError, OSError):
            return None  # the slot is unreadable: reading the content will say so
        if raw is None or raw.is_dir != entry.is_dir or (not raw.is_dir
                                                         and raw.size != entry.size):
            return None
        return raw

    def _file(self, entry: Entry) -> Any:
        return self._file_at(entry.inode)

    def _file_at(self, inode: int) -> Any:
        with tsk_errors(self.image, f"open inode {inode}"):
            return self._fs.open_meta(inode=inode)

    def iter_content(self, entry: Entry, block: int = 1 << 20) -> Iterator[bytes]:
        """The bytes of ``entry``'s stream (its main data when it has none), as ``icat``.

        Raises :class:`FileSystemError` for folders; reads stop at the stream's size.
        """
        if entry.is_dir:
            raise FileSystemError(f"{shown(entry.display_path) or entry.address}: is a folder")
        raw = self._raw_of(entry)
        if raw is not None and self._fat is not None:
            if raw.deleted and self.content_note(entry) is not None:
                return  # nothing recoverable: the caller reports the note
            yield from self._fat.content(raw, block)
            return
        file = self._file(entry)
        if (wof := self._wof_main(file, entry)) is not None:
            yield from self._wof_reader(entry, wof).content(
                entry.inode, entry.size, block, shown(entry.display_path) or entry.address)
            return
        if (found := self._decmpfs_of(file, entry)) is not None:
            yield from self._decmpfs_content(file, entry, found, block)
            return
        yield from self._tsk_content(entry, file, block)

    def _fat_boot_sector(self, entry: Entry) -> bytes | None:
        """The bytes of FAT's ``$MBR`` virtual file (the boot sector, 512 bytes as TSK sizes
        it), read from the volume's start: on a volume of 4096-byte sectors TSK gives it a run
        of no sector and fails to read it (``icat`` writes nothing), so ``cat`` failed and
        ``export`` of a healthy volume listed it as not exported. None for any other entry."""
        if self._fat is None or entry.inode != self.last_inum - 3 or entry.name != "$MBR":
            return None
        data = self.image.stream.pread(self.partition.byte_offset, entry.size)
        if len(data) != entry.size:
            raise ContentReadError(f"{entry.name}: the volume's first sector lies past the end "
                                   "of the image")
        return data

    def _bitmap_free(self, entry: Entry, file: Any) -> bool:
        """Whether ``entry`` is an exFAT file live by its directory entry that TSK took for
        deleted (its bitmap marks it free): its content is read by exfatraw.py, along the FAT
        chain, where TSK would read contiguous clusters as for a deleted file."""
        if self._exfat is None or entry.deleted or entry.stream is not None:
            return False
        meta = file.info.meta
        return meta is not None and bool(int(meta.flags) & _META_UNALLOC)

    def _tsk_content(self, entry: Entry, file: Any, block: int) -> Iterator[bytes]:
        """The bytes of ``entry``'s stream as TSK reads them, ``block`` at a time (an exFAT
        file TSK takes for deleted by a damaged bitmap: as exfatraw.py reads it)."""
        if self._exfat is not None and self._bitmap_free(entry, file):
            try:
                yield from self._exfat.content(int(entry.inode), entry.size, block)
            except ContentReadError as exc:  # named by its path too, as TSK's read errors are
                raise ContentReadError(f"{shown(entry.display_path) or entry.address}: "
                                       f"{exc}") from exc
            return
        if (boot := self._fat_boot_sector(entry)) is not None:
            yield boot
            return
        kind = entry.attr_type if entry.attr_type is not None else int(
            pytsk3.TSK_FS_ATTR_TYPE_DEFAULT)
        ident = entry.attr_id if entry.attr_id is not None else -1
        size = entry.size
        offset = 0
        while offset < size:
            want = min(block, size - offset)
            try:
                with tsk_errors(self.image, "read"):
                    data = file.read_random(offset, want, kind, ident)
            except FileSystemError:
                # block by block up to the one that fails (ContentReadError)
                start = offset
                for data in self._read_by_blocks(entry, file, (kind, ident), offset, want):
                    yield data
                    offset += len(data)
                if offset == start:
                    break
                continue
            if not data:
                break
            yield data
            offset += len(data)

    def _read_by_blocks(self, entry: Entry, file: Any, stream: tuple[int, int],
                        offset: int, want: int) -> Iterator[bytes]:
        """After a read of ``want`` bytes at ``offset`` failed: the same bytes a file-system
        block at a time, up to the first block that cannot be read, which raises
        :class:`ContentReadError` naming its byte in the file, as ``icat`` writes what it read
        before its error (TSK fails a whole request at its first bad block)."""
        unit = max(512, int(self._fs.info.block_size or 0))
        end = offset + want
        while offset < end:
            step = min(unit - offset % unit, end - offset)
            try:
                with tsk_errors(self.image, "read"):
                    data = file.read_random(offset, step, *stream)
            except FileSystemError as exc:
                reason = str(exc).removeprefix("cannot read: ")
                raise ContentReadError(f"cannot read {shown(entry.display_path) or entry.address}"
                                       f" at byte {offset}: {reason}") from exc
            if not data:
                return
            yield data
            offset += len(data)

    def read(self, entry: Entry, offset: int = 0, size: int = 4096) -> bytes:
        """Up to ``size`` bytes of ``entry`` from ``offset`` (for previews)."""
        if entry.is_dir or offset >= entry.size:
            return b""
        if (boot := self._fat_boot_sector(entry)) is not None:
            return boot[offset:offset + size]
        file = None if self._raw_of(entry) is not None else self._file(entry)
        # read along the chain up to what is asked: an entry only the raw FAT directory holds,
        # an exFAT file a damaged bitmap made TSK take for deleted
        if file is None or self._bitmap_free(entry, file):
            kept, end = bytearray(), offset + size
            for block in self.iter_content(entry):
                kept += block
                if len(kept) >= end:
                    break
            return bytes(kept[offset:end])
        if (wof := self._wof_main(file, entry)) is not None:
            return self._wof_reader(entry, wof).read(
                entry.inode, offset, min(size, entry.size - offset),
                shown(entry.display_path) or entry.address)
        if (found := self._decmpfs_of(file, entry)) is not None:
            first = offset // decmpfs.UNIT if found[0].in_fork else 0
            kept, start, end = bytearray(), first * decmpfs.UNIT, offset + size
            for piece in self._decmpfs_content(file, entry, found, decmpfs.UNIT, first):
                kept += piece
                if start + len(kept) >= end:
                    break
            return bytes(kept[offset - start:end - start])
        kind = entry.attr_type if entry.attr_type is not None else int(
            pytsk3.TSK_FS_ATTR_TYPE_DEFAULT)
        ident = entry.attr_id if entry.attr_id is not None else -1
        with tsk_errors(self.image, f"read {shown(entry.display_path) or entry.address}"):
            return bytes(file.read_random(offset, min(size, entry.size - offset), kind, ident))


def _fat_name_difference(tsk_name: str, raw: RawFatEntry | None) -> str:
    """Why TSK's name of a FAT entry is not the entry's own, as far as the raw entry tells:
    a long name TSK cut short (it keeps at most some 247 characters), a long name that is not
    this entry's (TSK checks no checksum, so one left by an entry it refused is glued onto the
    next one), or, where the entry has a long name of its own, simply another name."""
    if raw is not None and raw.long_name and raw.long_name.startswith(tsk_name):
        return (f"its long name cut to {len(tsk_name)} of its {len(raw.long_name)} "
                "characters")
    if raw is None or raw.long_name is None:
        return "a long name whose checksum does not match its 8.3 entry"
    return "where its long-name entries hold another name"


def _fat_times(entries: list[Entry], raw: RawFatEntry | None) -> list[Entry]:
    """FAT times TSK gives none of where the directory entry records one: TSK's 32-bit seconds
    end in 2106, and a date of 2107 (the last year FAT's 7-bit field holds) came out as no time
    at all; the raw entry's decoding (:mod:`.fatraw`) holds it. The times TSK does give stay."""
    if raw is None or not entries or not any(
            when is not None and when >= _TSK_TIME_END
            for when in (raw.modified, raw.accessed, raw.born)):
        return entries  # the usual case, decided without making the entry's datetimes
    times = entries[0].times
    fixed = replace(times, modified=times.modified or raw.modified,
                    accessed=times.accessed or raw.accessed, born=times.born or raw.born)
    if fixed == times:
        return entries
    return [Entry(**{**e.__dict__, "times": fixed}) for e in entries]


#: Where TSK's 32-bit seconds end (2106-02-07T06:28:16Z): a FAT date from then on it gives as
#: no time.
_TSK_TIME_END = datetime.fromtimestamp(1 << 32, tz=UTC)


def _unread_level(deleted: bool) -> str:
    """How a folder that cannot be read is reported: a live one is evidence left unread
    (UNREAD: the output is incomplete); a deleted one is a warning only, its content gone with
    it more often than damaged (ext clears a removed folder's blocks; fls reads it as empty)."""
    return "warning" if deleted else UNREAD


def _nfc(name: str) -> str:
    """``name`` in Unicode normalization form C (surrogate-escaped bytes kept as they are)."""
    return unicodedata.normalize("NFC", name)


def _held_file_names(attrs: tuple[tuple[Any, ...], ...]) -> tuple[tuple[int, bytes], ...] | None:
    """(id, bytes) of each ``$FILE_NAME`` among a record's attribute tuples; None where one
    is not resident (its bytes are not in the record)."""
    held = tuple((a[1], a[5]) for a in attrs if a[0] == ATTR_FILE_NAME)
    return held if all(content is not None for _, content in held) else None


def _stream_of(attr_type: int, attr_name: str | None,
               meta_type: str) -> tuple[str | None, str, bool]:
    """(stream, meta type, folder stream) of an entry for one NTFS attribute: named streams
    but a folder's ``$I30`` index, and a folder's ``$DATA`` stream shown as a file, as ``fls``
    shows them."""
    stream = None
    if attr_name and not (attr_type == ATTR_NTFS_INDEX_ROOT and attr_name == "$I30"):
        stream = attr_name
    if attr_type == ATTR_NTFS_DATA and meta_type == "d":
        return stream, "r", True
    return stream, meta_type, False


def _record_enters(record: Record) -> bool:
    """:meth:`FileSystem._descends` for a :data:`~.tsk.Record` whose inode TSK loaded."""
    return enters(record[3], record[2], record[RECORD_META + 1], record[RECORD_META + 2])


def _named(entries: list[Entry]) -> Entry:
    """The entry that stands for a listed name: its first that is not a ``($FILE_NAME)`` row
    (:attr:`.Entry.is_file_name_row`, read here as its field: asked once a listed name)."""
    for entry in entries:
        if entry.attr_type != ATTR_FILE_NAME:
            return entry
    return entries[0]


def _as_tsk(short_name: str) -> str:
    """An 8.3 name as TSK prints it: ``^`` for each character outside ASCII."""
    return "".join("^" if ord(c) > 0x7E else c for c in short_name)


def split_path(path: str) -> list[str]:
    """``/home//ana/./notes.txt`` -> ``["home", "ana", "notes.txt"]``; ``..`` is refused."""
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise FileSystemError(f"{shown(path)}: '..' is not allowed in a path inside the image")
    return parts


def open_filesystem(stream: ImageStream, *, partition: int | None = None,
                    offset: int | None = None) -> FileSystem:
    """Open the file system ``-p``/``--offset`` names (or the only one) in ``stream``."""
    image = TskImage(stream)
    chosen = choose_filesystem(read_layout(image), partition=partition, offset=offset)
    return FileSystem(image, chosen)
