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

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from bitwitness.acquire.logs import Status, log_paths, read_log
from bitwitness.acquire.source import SourceFacts
from bitwitness.acquisitionlog import SCHEMA, AcquisitionLog, LogFormatError
from bitwitness.errors import DestinationError, UsageError

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
    pipeline.feed_prefix(kept[0])
    pipeline.add_known_errors(known_errors(log, run.sector_size, start))
    run.resumed_from = start
    return start
