"""The E01 format in the image registry: our own reader first, pyewf for what ours does not read.

Detection is by magic (``EVF\\x09\\x0d\\x0a\\xff\\x00``, plus the Ex01/L01 magics so that those are
recognised as EWF too) and by the ``.E01``/``.Ex01``/``.L01``/``.s01`` names. BitWitness reads EWF1
(E01, and SMART ``.s01``, which shares the E01 magic: docs/EWF.md §12) itself, with libewf as the
second reader the verifier runs; for Ex01 (EWF2), L01 and Lx01 it hands the set to libewf through
pyewf (our EWF2 reader second for Ex01 and Lx01), and when neither can read a file it says so in
one line.

The reader modules are imported inside the methods: ``bitwitness.ewf`` itself uses
``bitwitness.images.raw``, and the registry imports this module while loading.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from bitwitness.errors import CorruptImageError, UnsupportedFormatError
from bitwitness.ewf import structures as st
from bitwitness.stream import ImageStream, StreamInfo

_MAGICS = (st.EVF_MAGIC, st.EVF2_MAGIC, st.LVF_MAGIC, st.LEF2_MAGIC)
_DIGIT_NAME = re.compile(r"^\.(?:[Ee]\d\d|[Ee]x\d\d|[Ll]x?\d\d|[Ss]\d\d)$")
_LETTER_NAME = re.compile(r"^\.[E-Z][A-Z]{2}$")
_SMART_LETTER_NAME = re.compile(r"^\.[s-z][a-z]{2}$")


#: The container each EWF file signature starts, as examiners name them (by the extension
#: EnCase gives it). EVF is E01, or SMART (``.s01``), which shares it.
CONTAINERS = {st.EVF_MAGIC: "ewf", st.EVF2_MAGIC: "Ex01", st.LVF_MAGIC: "L01",
              st.LEF2_MAGIC: "Lx01"}
#: Logical evidence files: files and folders, not a disk (see bitwitness.images.ewf_logical).
LOGICAL = ("L01", "Lx01")


class PyewfStream(ImageStream):
    """An EWF set read through libewf (pyewf): Ex01, L01 and Lx01.

    ``container`` names what the first segment's signature says it is ("Ex01", "L01", "Lx01";
    "ewf" for the E01/SMART signature); for a logical evidence file (``logical``) the media is
    the files' contents end to end and :meth:`logical_tree` lists the files.
    """

    alignment = 1

    def __init__(self, files: list[str], handle: Any, objects: list[Any] | None = None) -> None:
        from bitwitness.evidence_io import read_head

        self._handle = handle
        self._objects = objects or []  #: the file objects libewf reads through (closed here)
        self._files = tuple(Path(f) for f in files)
        self.container = CONTAINERS.get(read_head(self._files[0], 8), "ewf")
        self.logical = self.container in LOGICAL
        self._tree: Any = None
        super().__init__(int(handle.get_media_size()),
                         sector_size=int(handle.get_bytes_per_sector() or 512))
        #: what the set stores, as libewf reads it: the media hashes convert checks its pass
        #: against, and the case fields it carries over (libewf's names, as our reader's)
        self.stored_hashes: dict[str, str] = {}
        for alg, name in (("md5", "MD5"), ("sha1", "SHA1"), ("sha256", "SHA256")):
            value = handle.get_hash_value(name)
            if value:
                self.stored_hashes[alg] = str(value).lower()
        self.header_values = {k: str(v) for k, v in (handle.get_header_values() or {}).items()
                              if v}

    def _read_aligned(self, offset: int, length: int) -> bytes:
        try:
            data = bytes(self._handle.read_buffer_at_offset(length, offset))
        except OSError as exc:
            raise CorruptImageError(f"libewf cannot read the media ({exc})", path=self._files[0],
                                    media_offset=offset) from exc
        if len(data) != length:
            raise CorruptImageError(f"libewf returned {len(data)} of {length} bytes",
                                    path=self._files[0], media_offset=offset)
        return data

    def logical_tree(self) -> Any:
        """The file tree of a logical evidence file (a
        :class:`~bitwitness.images.ewf_logical.LogicalTree`, indexed on first use).

        Raises :class:`CorruptImageError` when the set is not one or libewf cannot list it.
        """
        from bitwitness.images.ewf_logical import LogicalTree

        if not self.logical:
            raise CorruptImageError(f"a {self.container} set holds a disk image, not files",
                                    path=self._files[0])
        if self._tree is None:
            try:
                root = self._handle.get_root_file_entry()
            except (OSError, ValueError, TypeError) as exc:
                raise CorruptImageError(f"libewf finds no file tree in this {self.container} "
                                        f"({' '.join(str(exc).split())})",
                                        path=self._files[0]) from None
            if root is None:
                raise CorruptImageError(f"libewf finds no file tree in this {self.container}",
                                        path=self._files[0])
            self._tree = LogicalTree(root, self._files[0].name)
        return self._tree

    @property
    def info(self) -> StreamInfo:
        details: dict[str, Any] = {"reader": "pyewf"}
        if self.logical:
            details["container"] = f"{self.container} logical evidence file"
        return StreamInfo(format="ewf", files=self._files, media_size=self.size,
                          sector_size=self.sector_size, details=details)

    def close(self) -> None:
        if not self.closed:
            self._tree = None  # its entries belong to the handle
            self._handle.close()
            for obj in self._objects:
                obj.close()
        super().close()


def open_with_pyewf(path: Path, why: str) -> PyewfStream:
    """Open ``path`` with pyewf; ``why`` says why our reader passed it on (for the error)."""
    try:
        import pyewf
    except ImportError as exc:  # pragma: no cover - pyewf is a dependency
        raise UnsupportedFormatError(f"{why}, and pyewf (libewf) is not installed") from exc
    from bitwitness.evidence_io import confine_part, open_file_objects
    from bitwitness.images.ewf_ltree import check_ltree

    try:
        files = pyewf.glob(str(path))
    except (OSError, TypeError) as exc:
        raise UnsupportedFormatError(f"{why}; libewf (pyewf) cannot read it either: "
                                     f"{str(exc).splitlines()[0] if str(exc) else exc}") from exc
    for name in files:
        if Path(name) != path:
            confine_part(path.parent, Path(name).name, what="EWF segment")
    # libewf parses a set's whole file list (L01/Lx01 ltree) while it opens it: judged first
    check_ltree(files)
    # libewf reads through descriptors of the evidence opener (O_NOATIME), not its own opens.
    objects = open_file_objects(files)
    try:
        handle = pyewf.handle()
        handle.open_file_objects(objects, "r")
    except (OSError, TypeError) as exc:
        for obj in objects:
            obj.close()
        raise UnsupportedFormatError(f"{why}; libewf (pyewf) cannot read it either: "
                                     f"{str(exc).splitlines()[0] if str(exc) else exc}") from exc
    return PyewfStream(files, handle, objects)


class EwfFormat:
    """E01 and SMART sets (ours, ewfacquire, FTK Imager, EnCase); Ex01, L01, Lx01 through pyewf."""

    name = "ewf"

    def probe(self, path: Path, head: bytes) -> bool:
        return head.startswith(_MAGICS)

    def claims_name(self, path: Path) -> bool:
        from bitwitness.ewf.naming import SMART, segment_path

        if _DIGIT_NAME.match(path.suffix):
            return True
        if _SMART_LETTER_NAME.match(path.suffix):
            return segment_path(path, 1, SMART).exists()
        return bool(_LETTER_NAME.match(path.suffix)) and segment_path(path, 1).exists()

    def files(self, path: Path) -> list[Path]:
        from bitwitness.ewf.layout import find_segments

        try:
            return find_segments(path)
        except UnsupportedFormatError:
            import pyewf

            return [Path(p) for p in pyewf.glob(str(path))]

    def open(self, path: Path) -> ImageStream:
        from bitwitness.evidence_io import read_head
        from bitwitness.ewf.reader import open_ewf

        head = read_head(path, 8)
        if not head.startswith(_MAGICS):
            return open_ewf(path)  # says clearly that this is not an E01 segment
        try:
            return open_ewf(path)
        except UnsupportedFormatError as exc:
            return open_with_pyewf(path, str(exc))

    def second_reader(self, path: Path, stream: ImageStream) -> ImageStream | None:
        """Our own EWF2 reader for an Ex01 or Lx01 set libewf read (E01 and SMART sets, read
        by ours, have libewf itself as the second reader, run by the verifier); none for L01."""
        from bitwitness.images.ewf2 import Ewf2Stream, is_ewf2

        if isinstance(stream, PyewfStream) and is_ewf2(stream.info.files[0]):
            return Ewf2Stream(stream.info.files[0])
        return None


FORMAT = EwfFormat()
