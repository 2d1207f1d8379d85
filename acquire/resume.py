"""``--resume``: continue an interrupted acquisition from its partial output and its log.

What is trusted and why: the log of the interrupted run says how many media bytes every output
received and which sectors were unreadable until then. A run that was stopped writes that in its
final log; a run that was killed (SIGKILL, power loss) left it at its last checkpoint (every 256
MiB the outputs are fsynced and the log rewritten, see ``engine._checkpoint``). The output is cut
back to what is durable (raw: the logged byte count; E01: the complete sectors groups up to that
count, decided by the EWF writer), the kept prefix is re-hashed *from the output itself*, and
reading resumes from the source at that offset. The final hashes therefore cover exactly the bytes
in the image files, and equal those of an uninterrupted run when the source did not change (the log
records that it was resumed).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bitwitness.acquire.logs import SCHEMA, log_paths, read_log
from bitwitness.acquire.source import SourceFacts
from bitwitness.errors import DestinationError, UsageError

if TYPE_CHECKING:
    from bitwitness.acquire.engine import AcquisitionRequest, _Run
    from bitwitness.acquire.pipeline import Pipeline

RESUMABLE = ("interrupted", "failed")


def load(base: Path) -> dict[str, Any]:
    """The interrupted run's log, checked to be resumable."""
    json_path = log_paths(base)[0]
    if not json_path.is_file():
        raise UsageError(f"cannot resume: {json_path} does not exist")
    try:
        log = read_log(json_path)
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot resume: {json_path} is not readable JSON ({exc})") from exc
    if log.get("schema") != SCHEMA:
        raise UsageError(f"cannot resume: {json_path} is not a {SCHEMA} log")
    if log.get("status") not in RESUMABLE:
        raise UsageError(f"cannot resume: the log says the acquisition is {log.get('status')}")
    progress = log.get("progress") or {}
    if progress.get("media_bytes_done") is None:
        raise UsageError("cannot resume: the log does not record where the run stopped "
                         "(the process was killed before its first checkpoint); start again "
                         "with --overwrite")
    return log


def request_from_log(request: AcquisitionRequest, log: dict[str, Any]) -> AcquisitionRequest:
    """The interrupted run's options win: the result must be the same image."""
    from bitwitness.acquire.engine import OutputFormat

    opts = log["options"]
    second = opts.get("second_output")
    return replace(
        request, format=OutputFormat(opts["format"]), hashes=tuple(opts["hashes"]),
        compression=opts.get("compress") or request.compression,
        segment_size=opts.get("segment_size") or request.segment_size,
        split=opts.get("split"), sector_size=opts.get("sector_size"),
        chunk_sectors=opts.get("chunk_sectors") or request.chunk_sectors,
        retries=request.retries, second_output=Path(second) if second else None)


def check_source(log: dict[str, Any], facts: SourceFacts) -> None:
    """The source must be the one the interrupted run read."""
    src = log["source"]
    if src.get("size") != facts.size:
        raise UsageError(f"cannot resume: the source is {facts.size} bytes, the interrupted run "
                         f"read {src.get('size')} bytes")
    if src.get("serial", "") != facts.serial:
        raise UsageError("cannot resume: the source's serial number differs from the log's")
    if Path(src.get("path", "")).name != Path(facts.path).name:
        raise UsageError(f"cannot resume: the log's source is {src.get('path')}, "
                         f"not {facts.path}")


def known_errors(log: dict[str, Any], sector_size: int, start: int) -> list[tuple[int, int]]:
    ranges = []
    for item in log.get("read_errors") or []:
        offset = int(item["first_sector"]) * sector_size
        end = min(offset + int(item["sector_count"]) * sector_size, start)
        if offset < end:
            ranges.append((offset, end - offset))
    return ranges


def reopen(run: _Run, pipeline: Pipeline) -> int:
    """Reopen every sink, re-hash the kept prefix; returns the media offset to continue from."""
    log = run.resume_log
    assert log is not None
    done = int(log["progress"]["media_bytes_done"])
    if run.request.format.value == "raw":
        start = min(done, run.media_size)
        prefixes = [sink.resume(start) for sink in run.sinks]
        pipeline.feed_prefix(prefixes[0])
        for other in prefixes[1:]:
            for _ in other:  # the second copy's own piece hashes are fed as it is read
                pass
    else:
        # no further than the log vouches for: read errors past it would be unknown
        durables = {sink.resume(limit=done) for sink in run.sinks}
        if len(durables) != 1:
            raise DestinationError("cannot resume: the outputs hold different amounts of media")
        start = durables.pop()
        from bitwitness.ewf import open_ewf, segment_path

        image = open_ewf(segment_path(run.base, 1), allow_incomplete=True)
        try:
            pipeline.feed_prefix(image.iter_blocks(1 << 20, 0, start))
        finally:
            image.close()
    pipeline.add_known_errors(known_errors(log, run.sector_size, start))
    run.resumed_from = start
    return start
