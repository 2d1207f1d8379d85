"""``--resume``: continue an interrupted acquisition from its partial output and its log.

What is trusted and why: the log of the interrupted run says how many media bytes every output
received and which sectors were unreadable until then. A run that was stopped writes that in its
final log; a run that was killed (SIGKILL, power loss) left it at its last checkpoint (every 256
MiB the outputs are fsynced and the log rewritten, see ``engine._checkpoint``). The output is cut
back to what is durable (each sink's ``resume``: raw keeps the logged byte count, E01 the complete
sectors groups up to that count, decided by the EWF writer), the kept prefix is re-hashed *from
the output itself*, and reading resumes from the source at that offset. The final hashes
therefore cover exactly the bytes in the image files, and equal those of an uninterrupted run when
the source did not change (the log records that it was resumed).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bitwitness.acquire.logs import Status, log_paths, read_log
from bitwitness.acquire.source import SourceFacts
from bitwitness.acquisitionlog import SCHEMA, AcquisitionLog, LogFormatError
from bitwitness.errors import DestinationError, ReadError, UsageError

if TYPE_CHECKING:
    from bitwitness.acquire.engine import AcquisitionRequest, _Run
    from bitwitness.acquire.pipeline import Pipeline

RESUMABLE = (Status.INTERRUPTED.value, Status.FAILED.value)


def load(base: Path) -> AcquisitionLog:
    """The interrupted run's log, checked to be resumable."""
    json_path = log_paths(base)[0]
    if not json_path.is_file():
        raise UsageError(f"cannot resume: {json_path} does not exist")
    try:
        log = read_log(json_path)
    except LogFormatError as exc:
        raise UsageError(f"cannot resume: {json_path} is not a readable {SCHEMA} log "
                         f"({exc})") from exc
    if log.status not in RESUMABLE:
        raise UsageError(f"cannot resume: the log says the acquisition is {log.status or None}")
    done_bytes(log)
    return log


def done_bytes(log: AcquisitionLog) -> int:
    """The media bytes the interrupted run's outputs hold, as its log vouches (see :func:`load`)."""
    done = log.progress.media_bytes_done if log.progress is not None else None
    if done is None:
        raise UsageError("cannot resume: the log does not record where the run stopped "
                         "(the process was killed before its first checkpoint); start again "
                         "with --overwrite")
    return done


def request_from_log(request: AcquisitionRequest, log: AcquisitionLog) -> AcquisitionRequest:
    """The interrupted run's options win: the result must be the same image."""
    from bitwitness.acquire.engine import OutputFormat

    opts = log.options
    if opts.format is None or not opts.hashes:
        raise UsageError("cannot resume: the log does not record the output format and hashes")
    try:
        output_format = OutputFormat(opts.format)
    except ValueError as exc:
        raise UsageError(f"cannot resume: the log's output format {opts.format!r} is not one "
                         "acquisition writes") from exc
    return replace(
        request, format=output_format, hashes=opts.hashes,
        compression=opts.compress or request.compression,
        segment_size=opts.segment_size or request.segment_size,
        split=opts.split, sector_size=opts.sector_size,
        chunk_sectors=opts.chunk_sectors or request.chunk_sectors,
        retries=request.retries,
        second_output=Path(opts.second_output) if opts.second_output else None)


def check_source(log: AcquisitionLog, facts: SourceFacts) -> None:
    """The source must be the one the interrupted run read."""
    src = log.source
    if src.size != facts.size:
        raise UsageError(f"cannot resume: the source is {facts.size} bytes, the interrupted run "
                         f"read {src.size} bytes")
    if src.serial != facts.serial:
        raise UsageError("cannot resume: the source's serial number differs from the log's")
    if Path(src.path).name != Path(facts.path).name:
        raise UsageError(f"cannot resume: the log's source is {src.path}, "
                         f"not {facts.path}")


def known_errors(log: AcquisitionLog, sector_size: int, start: int) -> list[tuple[int, int]]:
    ranges = []
    for first, count in log.read_errors:
        offset = first * sector_size
        end = min(offset + count * sector_size, start)
        if offset < end:
            ranges.append((offset, end - offset))
    return ranges


def reopen(run: _Run, pipeline: Pipeline) -> int:
    """Reopen every sink, re-hash the kept prefix; returns the media offset to continue from."""
    log = run.resume_log
    assert log is not None
    # no further than the log vouches for: read errors past it would be unknown
    kept = [sink.resume(done_bytes(log)) for sink in run.sinks]
    if len({k.media_bytes for k in kept}) != 1:
        raise DestinationError("cannot resume: the outputs hold different amounts of media")
    start = kept[0].media_bytes
    errors = known_errors(log, run.sector_size, start)
    pipeline.feed_prefix(same_source(kept[0], pipeline.source, start, errors))
    pipeline.add_known_errors(errors)
    run.resumed_from = start
    return start


#: How much of the kept prefix, at its start and at its end, is compared with the source.
SAMPLE = 1 << 20


def same_source(prefix: Iterable[bytes], source: Any, kept: int,
                errors: list[tuple[int, int]]) -> Iterator[bytes]:
    """The kept prefix's blocks, in order, compared on the way with the source: its first and
    last :data:`SAMPLE` bytes (what does not lie in a recorded read error, which the output
    holds as zeros) must be the source's bytes there.

    Why: size, serial number and name say a source is the same kind of thing, not that it is the
    same evidence (files and many devices have no serial; another disk of the same model can
    sit at the same /dev name), and the bytes read after the resume would be joined to another
    medium's first part into an image of no medium that ever existed. A changed byte is refused
    before anything is added to the output."""
    windows = [(0, min(SAMPLE, kept)), (max(0, kept - SAMPLE), kept)]
    offset = 0
    for block in prefix:
        end = offset + len(block)
        for low, high in windows:
            lo, hi = max(low, offset), min(high, end)
            if lo >= hi or any(e < hi and lo < e + n for e, n in errors):
                continue
            try:
                theirs = source.read(lo, hi - lo)
            except ReadError:
                continue  # unreadable now (a failing drive): not evidence of another medium
            if theirs != bytes(block[lo - offset:hi - offset]):
                raise UsageError(f"cannot resume: the source's bytes at offset {lo} differ from "
                                 "what the interrupted run wrote there: it is not the medium "
                                 "that run read, or it has changed since")
        yield block
        offset = end
