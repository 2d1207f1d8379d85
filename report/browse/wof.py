"""NTFS files compressed by the Windows Overlay Filter (WOF: "CompactOS", ``compact /exe``).

Windows 10 and 11 compress system files (and any file ``compact /exe`` is given) outside NTFS's
own compression: the file's unnamed ``$DATA`` is left sparse, all zeros at the file's size; the
content is in the named stream ``WofCompressedData`` (a table of chunk offsets, then chunks of
4 KiB to 32 KiB, each XPRESS Huffman (LZXPRESS Huffman, MS-XCA) or LZX, or stored as it is when
it did not shrink); and a reparse point tagged ``IO_REPARSE_TAG_WOF`` says which provider holds
the data and with which algorithm. The Sleuth Kit knows none of it and hands out the zeros, so
that ``cat``/``export`` of ``C:\\Windows\\System32\\*.dll`` of such a system would give a clean
hash of nothing. Here the reparse point is read (:func:`parse_reparse`) and the content is read
through libyal's libfsntfs (pyfsntfs), which decompresses WOF data (both XPRESS and LZX), opened
read-only on our own stream; the tests check it against wimlib, which writes the same chunks.

A WIM-backed file (provider 1: ``DISM /Apply-Image /WIMBoot``) holds its data in a WIM file
outside the volume: that is said, never read as the zeros.
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from bitwitness.errors import BitWitnessError, FileSystemError
from bitwitness.report.browse.libyalio import FileObject, short_reason
from bitwitness.stream import ImageStream, SliceStream

REPARSE_TAG_WOF = 0x80000017  #: IO_REPARSE_TAG_WOF
ATTR_REPARSE_POINT = 192  #: the NTFS attribute type of ``$REPARSE_POINT``
STREAM = "WofCompressedData"  #: the named ``$DATA`` stream that holds the chunks
PROVIDER_WIM = 1  #: WOF_PROVIDER_WIM: the data is in an external WIM file
PROVIDER_FILE = 2  #: WOF_PROVIDER_FILE: the data is in ``WofCompressedData``
#: FILE_PROVIDER_EXTERNAL_INFO_V1's algorithm: (name, chunk size in bytes)
ALGORITHMS = {0: ("XPRESS4K", 4096), 1: ("LZX", 32768), 2: ("XPRESS8K", 8192),
              3: ("XPRESS16K", 16384)}
_HEADER = struct.Struct("<IHH")  #: reparse tag, data length, reserved
_EXTERNAL = struct.Struct("<II")  #: WOF_EXTERNAL_INFO: version, provider
_FILE_INFO = struct.Struct("<II")  #: FILE_PROVIDER_EXTERNAL_INFO_V1: version, algorithm
_WIM_INFO = struct.Struct("<IIq")  #: WIM_PROVIDER_EXTERNAL_INFO: version, flags, data source
#: What pyfsntfs raises on a damaged or crafted volume or stream
_LIBYAL_FAILURES: tuple[type[Exception], ...] = (OSError, ValueError, TypeError, MemoryError,
                                                 RuntimeError, OverflowError)


@dataclass(frozen=True)
class WofFile:
    """What a WOF reparse point says of one file, and why its content cannot be read if so.

    ``refusal`` is set for anything but a file-provider file with a known algorithm and its
    ``WofCompressedData`` stream: the zeros of the unnamed ``$DATA`` are then never handed out.
    """

    provider: int
    algorithm: int | None = None  #: file provider only
    stream_size: int | None = None  #: bytes of ``WofCompressedData``; None when it is missing
    data_source: int | None = None  #: WIM provider only: the WIM's data source id
    refusal: str | None = None

    @property
    def chunk_size(self) -> int | None:
        known = ALGORITHMS.get(self.algorithm) if self.algorithm is not None else None
        return known[1] if known else None

    def describe(self) -> str:
        """One line for ``stat``: how the file is stored and what is shown instead."""
        if self.provider == PROVIDER_WIM:
            return (f"WOF: WIM-backed (data source {self.data_source}); its content is in a WIM "
                    "file outside this volume")
        if self.algorithm in ALGORITHMS:
            name, chunk = ALGORITHMS[self.algorithm]
            head = (f"WOF-compressed ({name}, {chunk}-byte chunks) in the stream {STREAM} "
                    f"({self.stream_size} bytes)")
            if self.refusal is None:
                return head + "; content shown decompressed"
            return f"{head}: {self.refusal}"
        return f"WOF: {self.refusal}"


def parse_reparse(data: bytes, stream_size: int | None, file_size: int) -> WofFile | None:
    """The WOF reparse point in ``data`` (a ``$REPARSE_POINT`` attribute's bytes), or None
    when it is another kind of reparse point.

    ``stream_size`` is the size of the file's ``WofCompressedData`` stream (None when it has
    none) and ``file_size`` that of its unnamed ``$DATA``: a stream too short for the chunk
    table the file's size calls for is refused here, before any reader sizes a table by it.
    """
    if len(data) < _HEADER.size:
        return None
    tag, length, _reserved = _HEADER.unpack_from(data)
    if tag != REPARSE_TAG_WOF:
        return None
    body = data[_HEADER.size:_HEADER.size + length]
    if len(body) < _EXTERNAL.size:
        return WofFile(provider=0, refusal=f"its WOF reparse data is cut short ({len(body)} "
                                          "bytes): not read")
    version, provider = _EXTERNAL.unpack_from(body)
    return _provider_record(version, provider, body[_EXTERNAL.size:], stream_size, file_size)


def _provider_record(version: int, provider: int, rest: bytes, stream_size: int | None,
                     file_size: int) -> WofFile:
    """The record of one provider's data (``rest``, after WOF_EXTERNAL_INFO)."""
    if provider == PROVIDER_WIM:
        source = _WIM_INFO.unpack_from(rest)[2] if len(rest) >= _WIM_INFO.size else None
        return WofFile(provider=provider, data_source=source,
                       refusal=f"WIM-backed WOF file: its content is in an external WIM file "
                               f"(data source {source}), not in this volume: not read")
    if provider != PROVIDER_FILE:
        return WofFile(provider=provider,
                       refusal=f"unknown WOF provider {provider} (version {version}): not read")
    if len(rest) < _FILE_INFO.size:
        return WofFile(provider=provider, refusal="its WOF file-provider data is cut short: "
                                                  "not read")
    algorithm = _FILE_INFO.unpack_from(rest)[1]
    found = WofFile(provider=provider, algorithm=algorithm, stream_size=stream_size)
    refusal = _file_refusal(found, file_size)
    return WofFile(provider=provider, algorithm=algorithm, stream_size=stream_size,
                   refusal=refusal) if refusal else found


def _file_refusal(wof: WofFile, file_size: int) -> str | None:
    """Why a file-provider WOF file cannot be decompressed, from what its records say."""
    if wof.algorithm not in ALGORITHMS:
        return f"unknown WOF compression algorithm {wof.algorithm}: not read"
    if wof.stream_size is None:
        return f"WOF-compressed but it has no {STREAM} stream: its content is not in this volume"
    chunk = wof.chunk_size or 1
    chunks = -(-file_size // chunk)
    entry = 8 if file_size > 0xFFFF_FFFF else 4
    table = max(chunks - 1, 0) * entry
    if wof.stream_size < table or (chunks and wof.stream_size <= table):
        return (f"its {STREAM} stream ({wof.stream_size} bytes) is shorter than the chunk "
                f"table of {chunks} chunks it needs: not read")
    return None


#: Bytes read (and dropped) at a time when a read skips forward to its offset
_SKIP = 1 << 20


class WofVolume:
    """Decompressed content of WOF files by MFT entry, read with pyfsntfs on our own stream.

    libfsntfs decodes WOF chunks right only when a file is read from its start onwards: on the
    volume object that read a file, a read at an earlier or a later offset fails or, worse,
    gives other bytes than the file's (seen with libfsntfs-python 20260827, XPRESS and LZX,
    and checked by ``tests/test_ntfs_wof.py``). So each pass over a file opens the volume
    afresh (under a millisecond) and reads it in order from byte 0; :meth:`read` keeps the last
    pass open, so that the in-order reads of a mount or a preview go on where they stopped.
    """

    def __init__(self, stream: ImageStream, offset: int, length: int) -> None:
        self._stream = stream
        self._offset = offset
        self._length = max(0, min(length, stream.size - offset))
        #: the pass :meth:`read` goes on with: inode, its file entry, the offset it reached
        self._pass: tuple[int, Any, FileObject, int] | None = None
        self._lock = threading.Lock()

    def _entry(self, inode: int, what: str) -> tuple[Any, FileObject]:
        """MFT entry ``inode`` on a volume object of its own, not read yet."""
        import pyfsntfs

        source = FileObject(SliceStream(self._stream, self._offset, self._length))
        volume = pyfsntfs.volume()
        try:
            volume.open_file_object(source)
            return volume.get_file_entry(inode), source
        except _LIBYAL_FAILURES as exc:
            _raise_source(source, exc)
            raise FileSystemError(f"{what}: libfsntfs cannot open this NTFS volume or its MFT "
                                  f"entry {inode}: {short_reason(exc)}") from None

    @staticmethod
    def _read(entry: Any, source: FileObject, offset: int, size: int, what: str) -> bytes:
        try:
            data = bytes(entry.read_buffer_at_offset(size, offset))
        except BitWitnessError:
            raise
        except _LIBYAL_FAILURES as exc:
            _raise_source(source, exc)
            raise FileSystemError(f"{what}: WOF-compressed data not readable at byte "
                                  f"{offset}: {short_reason(exc)}") from None
        if len(data) != size:  # zeros or a cut file must not pass for the content
            raise FileSystemError(f"{what}: WOF-compressed data gave {len(data)} of {size} "
                                  f"bytes at byte {offset}")
        return data

    def content(self, inode: int, size: int, block: int, what: str) -> Iterator[bytes]:
        """The decompressed content of ``inode`` (``size`` bytes) in blocks of ``block``, in
        one pass from its start. Raises :class:`FileSystemError` naming ``what`` where the
        chunks cannot be read (a chunk table pointing outside its stream, a chunk that does not
        decode to its size)."""
        entry, source = self._entry(inode, what)
        offset = 0
        while offset < size:
            want = min(block, size - offset)
            yield self._read(entry, source, offset, want, what)
            offset += want

    def read(self, inode: int, offset: int, size: int, what: str) -> bytes:
        """``size`` decompressed bytes of ``inode`` from ``offset`` (which the caller keeps
        within the file): the last pass goes on when it has not passed ``offset`` yet, else a
        new pass starts at byte 0 and reads up to it."""
        with self._lock:
            kept, self._pass = self._pass, None  # a pass that fails is not gone on with
            if kept is not None and kept[0] == inode and kept[3] <= offset:
                _inode, entry, source, reached = kept
            else:
                entry, source = self._entry(inode, what)
                reached = 0
            while reached < offset:  # read in order up to the offset; those bytes are dropped
                step = min(_SKIP, offset - reached)
                self._read(entry, source, reached, step, what)
                reached += step
            data = self._read(entry, source, offset, size, what)
            self._pass = (inode, entry, source, offset + size)
            return data


def _raise_source(source: FileObject, exc: BaseException) -> None:
    """Raise the evidence's own read error where libfsntfs failed because of it."""
    cause = source.take_error()
    if cause is not None:
        raise cause from exc
