"""Choosing the sink for an output format, and marking a failed conversion's files unusable."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from bitwitness.acquire.convert.outputs import MediaSink
from bitwitness.acquire.convert.sinks import WriterSink
from bitwitness.acquire.convert.vhd_writer import VhdFixedWriter
from bitwitness.acquire.convert.vmdk_writer import VmdkFlatWriter, VmdkSparseWriter, flat_name
from bitwitness.acquire.directsink import DirectRawSink
from bitwitness.acquire.sinks import EwfSink, OutputFile, Sink
from bitwitness.errors import UsageError
from bitwitness.ewf.options import COMPRESSION_NAMES, DEFAULT_SEGMENT_SIZE
from bitwitness.stream import ImageStream

if TYPE_CHECKING:
    from bitwitness.acquire.convert.convert import ConvertOptions

#: Suffix appended to every file of a conversion whose media does not match the source's record.
UNUSABLE = ".unusable"


def build_sink(stream: ImageStream, base: Path, options: ConvertOptions,
               metadata: dict[str, str]) -> Sink:
    """The acquisition-pipeline sink that writes ``options.to`` at ``base``."""
    to = options.to.value
    if options.split is not None and to != "raw":
        raise UsageError("--split applies to raw output only (use --segment-size for E01)")
    if (options.segment_size is not None or options.compression is not None) and to != "e01":
        raise UsageError("--segment-size and --compress apply to E01 output only")
    if to == "raw":
        # written around the page cache (a conversion never reads its output back)
        return DirectRawSink(base, media_size=stream.size, algorithms=options.algorithms,
                             split=options.split, overwrite=options.overwrite)
    if to == "e01":
        return _ewf_sink(stream, base, options, metadata)
    whole_file = _whole_file_writer(to)
    if whole_file is not None:
        suffix, writer = whole_file
        path = base.with_name(base.name + suffix)
        return WriterSink(lambda: writer(path, stream.size, overwrite=options.overwrite),
                          [path], overwrite=options.overwrite)
    comment = _comment(metadata)
    if to == "vmdk":
        path = base.with_name(base.name + ".vmdk")
        if options.vmdk_type == "flat":
            return WriterSink(lambda: VmdkFlatWriter(path, stream.size, comment=comment,
                                                     overwrite=options.overwrite),
                              [path, flat_name(path)], overwrite=options.overwrite)
        if options.vmdk_type != "sparse":
            raise UsageError(f"unknown VMDK type {options.vmdk_type!r} (sparse or flat)")
        return WriterSink(lambda: VmdkSparseWriter(path, stream.size, comment=comment,
                                                   overwrite=options.overwrite),
                          [path], overwrite=options.overwrite)
    raise UsageError(f"unknown output format {to!r}")


def _whole_file_writer(to: str) -> tuple[str, Callable[..., MediaSink]] | None:
    """The suffix and writer of the outputs that are one file, with no options of their own."""
    if to == "vhd":
        return ".vhd", VhdFixedWriter
    if to == "qcow2":
        from bitwitness.acquire.convert.qcow2_writer import Qcow2Writer

        return ".qcow2", Qcow2Writer
    if to == "vhdx":
        from bitwitness.acquire.convert.vhdx_writer import VhdxWriter

        return ".vhdx", VhdxWriter
    return None


def _comment(metadata: dict[str, str]) -> str:
    keys = ("case_number", "evidence_number", "examiner")
    return "; ".join(f"{k}={metadata[k]}" for k in keys if metadata.get(k))


def _ewf_sink(stream: ImageStream, base: Path, options: ConvertOptions,
              metadata: dict[str, str]) -> EwfSink:
    from bitwitness.acquire.convert.convert import SOURCE_ACQUIRED, parse_header_date
    from bitwitness.ewf import EwfMetadata

    compression = options.compression or getattr(stream, "compression", None) or "fast"
    if compression not in COMPRESSION_NAMES:
        compression = "fast"
    if options.compression is not None and options.compression not in COMPRESSION_NAMES:
        raise UsageError(f"unknown compression {options.compression!r} "
                         f"(choose from {', '.join(COMPRESSION_NAMES)})")
    fields = {k: v for k, v in metadata.items() if k not in ("acquired", SOURCE_ACQUIRED)}
    acquired = parse_header_date(metadata.get("acquired", ""))
    bps = int(getattr(stream, "bytes_per_sector", 0) or stream.sector_size)
    spc = int(getattr(stream, "sectors_per_chunk", 0) or 64)
    if stream.size % bps:
        raise UsageError(f"the media ({stream.size} bytes) is not a whole number of "
                         f"{bps}-byte sectors; E01 cannot hold it bit-exactly")
    return EwfSink(base, media_size=stream.size, metadata=EwfMetadata(**fields, acquired=acquired),
                   compression=compression,
                   segment_size=options.segment_size or DEFAULT_SEGMENT_SIZE,
                   bytes_per_sector=bps, sectors_per_chunk=spc, overwrite=options.overwrite)


def mark_unusable(outputs: list[OutputFile]) -> list[OutputFile]:
    """Rename every file with :data:`UNUSABLE` appended (never replacing an existing file)."""
    marked = []
    for out in outputs:
        path = Path(out.path)
        if not path.exists():
            marked.append(out)
            continue
        target = path.with_name(path.name + UNUSABLE)
        n = 1
        while target.exists():
            target = path.with_name(f"{path.name}{UNUSABLE}.{n}")
            n += 1
        path.rename(target)
        marked.append(OutputFile(target, out.size, dict(out.hashes), out.role))
    return marked
