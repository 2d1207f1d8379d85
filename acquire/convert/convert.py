"""Bit-exact conversion between image formats, hashed in the same pass and checked on the spot.

The source image is opened read-only through the format registry and fed through the acquisition
pipeline (``bitwitness.acquire.pipeline``: reader thread, one hash thread per algorithm, encoder
pool, in-order writer) into one sink: raw (single or split) and E01 use the acquisition sinks,
VHD and VMDK the writers of this package. The media hashes computed during that pass are compared
with every hash recorded for the *media* of the source: the hashes an E01 stores, and those logged
next to the image (``BASE.json``, md5sum/sha1sum sidecars, dc3dd/FTK/ewfacquire logs, found and
bound by :mod:`bitwitness.verify.references`).

What "unusable" means (decided for court): when a recorded hash differs, or the source could not
be read in full, every file the conversion wrote is renamed with the suffix ``.unusable``
(``x.E01`` -> ``x.E01.unusable``), so no tool opens it by accident, and the log (``BASE.json``,
``BASE.txt``) says ``status: failed`` with the reason and the renamed paths. The command then
exits 1. Without any recorded hash the conversion completes, and the log's verification verdict
is ``UNVERIFIED`` with the computed hashes, for the examiner to compare.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from bitwitness.acquire.convert.casework import CaseLink, case_document, find_case, record_event
from bitwitness.acquire.convert.references import (
    MediaReference,
    Recorded,
    compare,
    media_references,
)
from bitwitness.acquire.convert.targets import UNUSABLE, build_sink, mark_unusable
from bitwitness.acquire.logs import LogRecord, Status, log_paths, write_logs
from bitwitness.acquire.pipeline import Pipeline, PipelineOutcome, byte_ranges_to_sectors
from bitwitness.acquire.runner import INTERRUPTED, JobResult, run_job
from bitwitness.acquire.sinks import OutputFile, Sink
from bitwitness.acquire.source import Source, check_destination, open_source
from bitwitness.errors import BitWitnessError, OutputExistsError, UsageError
from bitwitness.ewf.headers import ZONE_SUFFIX
from bitwitness.ewf.options import COMPRESSION_NAMES
from bitwitness.hashing import ALGORITHMS, DEFAULT_ALGORITHMS, file_sha256, parse_algorithms
from bitwitness.image import open_image
from bitwitness.media_budget import check_media_budget
from bitwitness.progress import Mediator, ProgressTask
from bitwitness.stream import ImageStream
from bitwitness.verdict import Verdict

__all__ = ["UNUSABLE", "ConvertOptions", "ConvertResult", "OutputFormat", "Verdict",
           "convert_image"]


class OutputFormat(StrEnum):
    RAW = "raw"
    E01 = "e01"
    VHD = "vhd"
    VMDK = "vmdk"
    QCOW2 = "qcow2"
    VHDX = "vhdx"


@dataclass(frozen=True)
class ConvertOptions:
    """What to write. ``None`` means: keep the source's value, or the default."""

    to: OutputFormat
    split: int | None = None  #: raw: piece size in bytes
    segment_size: int | None = None  #: E01: segment size in bytes
    compression: str | None = None  #: E01: none, empty, fast, best
    vmdk_type: str = "sparse"  #: "sparse" (monolithicSparse) or "flat" (monolithicFlat)
    metadata: dict[str, str] = field(default_factory=dict)  #: case_number, examiner, ... to set
    overwrite: bool = False
    #: asked for (``--hash``); the pass adds what the source's records and an E01 output need
    algorithms: tuple[str, ...] = DEFAULT_ALGORITHMS
    image_format: str | None = None  #: read the source as this registry format (``--format``)


@dataclass(frozen=True, kw_only=True)
class ConvertResult(JobResult):
    """The outcome of one conversion, as recorded in its log (``read_errors``: the sectors the
    source lacked)."""

    image: Path
    image_format: str
    output_format: OutputFormat
    base: Path
    references: tuple[MediaReference, ...]
    metadata: dict[str, str]
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.status is Status.COMPLETED


def convert_image(image: Path, base: Path, options: ConvertOptions, mediator: Mediator,
                  *, stop: threading.Event | None = None, volume: str | None = None,
                  keys: Any = None) -> ConvertResult:
    """Convert ``image`` to ``options.to`` at ``base`` (``base.E01``, ``base.vhd``, ...).

    Raises :class:`~bitwitness.errors.BitWitnessError` for problems found before the first byte
    (bad options, existing output, unreadable image) and when writing fails (after the log
    records it). A mismatch or an unreadable source ends in a result with ``status`` failed (the
    output renamed ``.unusable``); SIGINT/SIGTERM or ``stop`` in one with ``status``
    interrupted (the output left unfinished), as for every job (:mod:`bitwitness.acquire.runner`).
    """
    stream = open_image(image, options.image_format)
    tree = None
    try:
        check_media_budget(image, stream.size, stream.info.files or (image,))
        media, origin = stream, None
        if volume is not None:
            tree, media, origin = _volume(stream, image, volume, keys)
        return _convert(media, image=image, base=base, options=options, mediator=mediator,
                        stop=stop or threading.Event(), origin=origin)
    finally:
        if tree is not None:
            tree.close()
        stream.close()


def _volume_event(options: dict[str, Any]) -> dict[str, Any]:
    """What a custody event says of a converted volume: its path and the kind of key."""
    origin = options.get("volume")
    return {"volume": origin["volume"], "key": origin["key"]} if origin else {}


def _volume(stream: ImageStream, image: Path, path: str,
            keys: Any) -> tuple[Any, ImageStream, dict[str, Any]]:
    """The volume-tree node ``path`` of ``image`` as the media to convert (decrypted in memory),
    and what the log records of it: the image, the volume, the kind of key (never the key)."""
    from bitwitness.report.browse.volumekeys import NO_KEYS
    from bitwitness.report.browse.volumetree import KEY_OPTIONS, read_tree

    tree = read_tree(stream, keys or NO_KEYS)
    try:
        node = tree.find(path)
        if node.locked:
            raise UsageError(f"volume {node.path} is encrypted ({node.encrypted}); give its key "
                             f"with {KEY_OPTIONS}")
        if node.stream is None:
            raise UsageError(f"volume {node.path} ({node.description}) has no bytes of its own "
                             "to convert")
    except BaseException:
        tree.close()
        raise
    origin = {"image": str(image.absolute()), "image_format": stream.info.format,
              "volume": node.path, "description": node.description, "key": node.key,
              "size": node.stream.size}
    return tree, node.stream, origin


def _convert(stream: ImageStream, *, image: Path, base: Path, options: ConvertOptions,
             mediator: Mediator, stop: threading.Event,
             origin: dict[str, Any] | None = None) -> ConvertResult:
    files = list(stream.info.files) or [image]
    if origin is None:
        references, notes = media_references(stream, files)
    else:  # the image's records hash the whole media, never one volume inside it
        references, notes = [], [f"volume {origin['volume']}: no recorded hash of it to check"]
    options = replace(options, algorithms=pass_algorithms(options, references))
    link = find_case(image)
    metadata = _metadata(stream, options.metadata)
    sink = build_sink(stream, base, options, metadata)
    json_log, text_log = log_paths(base)
    _check_outputs([*sink.planned_paths(), json_log, text_log], files, options.overwrite)
    source = open_source(stream)
    check_destination(source.facts, [*sink.planned_paths(), json_log, text_log], files)
    record = LogRecord(
        operation="convert", status=Status.FAILED, error="did not finish",
        started=datetime.now(UTC), ended=datetime.now(UTC), source=source.facts,
        options={**_options_doc(stream, options), **({"volume": origin} if origin else {})},
        media_size=stream.size,
        sector_size=stream.sector_size, hashes={}, case=case_document(link),
        metadata=metadata)
    job = _ConvertJob(stream=stream, source=source, sink=sink, image=image, base=base,
                      options=options, record=record, link=link, references=references,
                      notes=tuple(notes), mediator=mediator)
    return run_job(job, mediator, stop)


def pass_algorithms(options: ConvertOptions, references: list[Recorded]) -> tuple[str, ...]:
    """The hashes the pass computes: those asked for, every algorithm in which the source
    records a hash of its media (each record is checked whatever ``--hash`` says: a narrower
    choice saves time, never a check), and MD5 and SHA-1 for an E01, which stores both."""
    # the records' names are canonical already (verify.logs and stored_references make them so)
    wanted = [*options.algorithms, *(r.algorithm for r in references if r.algorithm in ALGORITHMS)]
    if options.to is OutputFormat.E01:
        wanted += ["md5", "sha1"]
    return parse_algorithms(wanted)


@dataclass
class _ConvertJob:
    """A conversion as the runner's :class:`~bitwitness.acquire.runner.Job`."""

    stream: ImageStream
    source: Source
    sink: Sink
    image: Path
    base: Path
    options: ConvertOptions
    record: LogRecord
    link: CaseLink | None
    references: list[Recorded]
    notes: tuple[str, ...]
    mediator: Mediator

    @property
    def title(self) -> str:
        return f"convert {self.image.name} -> {self.options.to.value}"

    @property
    def media_size(self) -> int:
        return self.stream.size

    def write_preliminary(self) -> None:
        write_logs(self.base, self.record, reserve=True)

    def make_pass(self, task: ProgressTask, stop: threading.Event) -> Pipeline:
        return Pipeline(source=self.source, sinks=[self.sink], media_size=self.stream.size,
                        read_granularity=self.stream.sector_size, retries=0,
                        algorithms=self.options.algorithms, task=task, stop=stop,
                        encode=self.options.to is OutputFormat.E01)

    def start(self, pipeline: Pipeline) -> int:
        self.sink.prepare()
        return 0

    def completed(self, outcome: PipelineOutcome, stop: threading.Event) -> ConvertResult:
        unreadable = tuple(byte_ranges_to_sectors(outcome.bad_byte_ranges,
                                                  self.stream.sector_size))
        checks = tuple(compare(self.references, outcome.hashes))
        verdict, error = _judge(checks, unreadable)
        # An unreadable source leaves the output unfinished (E01 without "done", raw ".partial").
        outputs = (self.sink.abort() if unreadable
                   else self.sink.finish(hashes=outcome.hashes, errors=()))
        status = Status.COMPLETED
        if error is not None:
            status = Status.FAILED
            outputs = mark_unusable(outputs)
            self.mediator.notice(f"{error}; output renamed *{UNUSABLE}", level="error")
        elif verdict is Verdict.UNVERIFIED:
            self.mediator.notice("no stored or logged hash for this image: the conversion could "
                                 "not be checked against the source's record", level="warning")
        self.record = replace(self.record, verification={
            "verdict": verdict.value, "hashes": outcome.hashes,
            "references": [_ref_doc(c) for c in checks]})
        return self._conclude(status, verdict, error, outputs, hashes=outcome.hashes,
                              unreadable=unreadable, checks=checks)

    def stopped(self, pipeline: Pipeline) -> ConvertResult:
        return self._conclude(Status.INTERRUPTED, Verdict.INCOMPLETE, INTERRUPTED,
                              self.sink.abort(), hashes={})

    def failed(self, pipeline: Pipeline, exc: BitWitnessError | OSError) -> ConvertResult:
        self._conclude(Status.FAILED, Verdict.INCOMPLETE, str(exc), self.sink.abort(),
                       hashes={})
        raise exc

    def _conclude(self, status: Status, verdict: Verdict, error: str | None,
                  outputs: list[OutputFile], *, hashes: dict[str, str],
                  unreadable: tuple[tuple[int, int], ...] = (),
                  checks: tuple[MediaReference, ...] = ()) -> ConvertResult:
        """The final log, then the custody event; the result."""
        record = replace(self.record, status=status, error=error, ended=datetime.now(UTC),
                         hashes=hashes, outputs=tuple(outputs), read_errors=unreadable)
        log_json, log_text = write_logs(self.base, record)
        # Absolute paths, as acquire and export record them: the custody log outlives any cwd.
        seq = record_event(self.link, "convert", {
            "image": str(self.image.absolute()), "to": self.options.to.value,
            "status": status.value, "verdict": verdict.value, "hashes": hashes,
            "outputs": [str(o.path.absolute()) for o in outputs],
            "log": str(log_json.absolute()), "log_sha256": file_sha256(log_json),
            **_state_event(self.stream), **_volume_event(self.record.options)})
        return ConvertResult(
            status=status, verdict=verdict, error=error, image=self.image,
            image_format=self.stream.info.format, output_format=self.options.to,
            base=self.base, media_size=self.stream.size, hashes=hashes, references=checks,
            outputs=tuple(outputs), log_json=log_json, log_text=log_text,
            metadata=record.metadata, started=record.started, ended=datetime.now(UTC),
            read_errors=unreadable, custody_seq=seq, notes=self.notes)


def _state_event(stream: ImageStream) -> dict[str, str]:
    """The custody event's ``image_state``: the image's state read when it was not its current
    one (a QCOW2 internal snapshot), as the log's source records it."""
    state = stream.info.details.get("snapshot")
    return {"image_state": str(state)} if state else {}


def _check_outputs(paths: list[Path], inputs: list[Path], overwrite: bool) -> None:
    resolved = {p.resolve() for p in inputs}
    for path in paths:
        if path.resolve() in resolved:
            raise UsageError(f"{path} is part of the source image; choose another output")
        if not overwrite and path.exists():
            raise OutputExistsError(path)
    if not paths[0].parent.is_dir():
        raise UsageError(f"{paths[0].parent}: output folder does not exist")


def _judge(checks: tuple[MediaReference, ...],
           unreadable: tuple[tuple[int, int], ...]) -> tuple[Verdict, str | None]:
    if unreadable:
        first, count = unreadable[0]
        return Verdict.CORRUPT, (f"the source image could not be read in full "
                                 f"({len(unreadable)} range(s), first: {count} sectors at "
                                 f"sector {first}); the conversion is not bit-exact")
    bad = [c for c in checks if not c.match]
    if bad:
        c = bad[0]
        return Verdict.MISMATCH, (f"{c.algorithm} of the converted media is {c.computed}, "
                                  f"but {c.source} records {c.expected}")
    return (Verdict.VERIFIED if checks else Verdict.UNVERIFIED), None


def _ref_doc(check: MediaReference) -> dict[str, Any]:
    return {"source": check.source, "algorithm": check.algorithm, "expected": check.expected,
            "computed": check.computed, "match": check.match}


def _options_doc(stream: ImageStream, options: ConvertOptions) -> dict[str, Any]:
    doc: dict[str, Any] = {"format": options.to.value, "hashes": list(options.algorithms),
                           "source_format": stream.info.format}
    if options.to is OutputFormat.RAW:
        doc["split"] = options.split
    if options.to is OutputFormat.E01:
        doc["compress"] = options.compression or _source_compression(stream) or "fast"
        doc["segment_size"] = options.segment_size
    if options.to is OutputFormat.VMDK:
        doc["vmdk_type"] = options.vmdk_type
    if options.image_format is not None:
        doc["forced_source_format"] = options.image_format
    return doc


def _source_compression(stream: ImageStream) -> str | None:
    value = getattr(stream, "compression", None)
    return value if value in COMPRESSION_NAMES else None


#: libewf header names -> our metadata keys (``EwfMetadata`` field names).
HEADER_KEYS = {"case_number": "case_number", "evidence_number": "evidence_number",
               "description": "description", "examiner_name": "examiner", "notes": "notes",
               "model": "model", "serial_number": "serial"}
#: The log's metadata key for a source acquisition date that is no instant (not written into
#: the output, whose date must be one).
SOURCE_ACQUIRED = "source_acquired"
METADATA_KEYS = ("case_number", "evidence_number", "description", "examiner", "notes", "model",
                 "serial")


def _metadata(stream: ImageStream, overrides: dict[str, str]) -> dict[str, str]:
    """The case metadata the output carries: the source's E01 header values, then overrides."""
    values: dict[str, str] = {}
    header = getattr(stream, "header_values", None)
    if isinstance(header, dict):
        for name, key in HEADER_KEYS.items():
            if header.get(name):
                values[key] = str(header[name])
        # a date of the acquiring machine's local time, zone not recorded (EWF header
        # sections), is no instant: written as UTC it would move by that machine's offset, so
        # the output carries only dates that are instants (docs/EWF.md 4.2); the other is
        # kept, as stored, in the conversion's log (SOURCE_ACQUIRED)
        if header.get("acquiry_date"):
            if header.get(f"acquiry_date{ZONE_SUFFIX}", "UTC") == "UTC":
                values["acquired"] = str(header["acquiry_date"])
            else:
                values[SOURCE_ACQUIRED] = (f"{header['acquiry_date']} (local time of the "
                                           "acquiring machine; zone not recorded)")
    for key, value in overrides.items():
        if key not in (*METADATA_KEYS, "acquired"):
            raise UsageError(f"unknown case field {key!r}")
        if value is not None:
            values[key] = value
    return values


def parse_header_date(text: str) -> datetime | None:
    """``Thu Jul 22 15:33:18 2021`` (libewf's rendering, our reader's: UTC) -> datetime."""
    try:
        return datetime.strptime(" ".join(text.split()), "%a %b %d %H:%M:%S %Y").replace(
            tzinfo=UTC)
    except ValueError:
        return None

