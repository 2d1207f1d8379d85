"""Verifying images: one pass per image, every recorded hash, one verdict.

:func:`verify_image` opens the image read-only, gathers every recorded hash (stored in the E01,
``BASE.json``, sidecars, dc3dd logs, FTK Imager reports; see :mod:`.references`), reads the media
once (:mod:`.passes`), optionally compares it with its source and re-reads it through libewf, and
returns an :class:`~bitwitness.verify.model.ImageVerification`. Evidence problems (bad chunks, a
missing segment, a mismatch) are *outcomes* in that record, never exceptions; only usage errors
(no such file, a ``--log`` that is no hash log) raise. :func:`verify_images` runs several images
in parallel, each with its own progress task.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from bitwitness.errors import (
    BitWitnessError,
    FormatError,
    IncompleteImageError,
    InputError,
    MissingSegmentError,
    NoSecondReader,
)
from bitwitness.hashing import ALGORITHMS, DEFAULT_ALGORITHMS, hash_file
from bitwitness.image import detect
from bitwitness.images.checks import ContainerCheck
from bitwitness.images.truncation import Truncation, find_truncation
from bitwitness.media_budget import check_media_budget
from bitwitness.progress import Mediator, NullMediator
from bitwitness.ranges import merge_ranges
from bitwitness.stream import ImageStream
from bitwitness.verify import references as refs_mod
from bitwitness.verify.libewf import LibewfPass, libewf_compare
from bitwitness.verify.model import (
    AgainstResult,
    HashComparison,
    HashReference,
    ImageVerification,
    Match,
    ReaderCheck,
    SectorRange,
    Verdict,
)
from bitwitness.verify.opening import (
    Opened,
    acquisition_errors,
    declared_media_size,
    layout_of,
    open_for_verify,
)
from bitwitness.verify.passes import (
    RangeHashers,
    SourceComparer,
    chunk_ranges,
    run_pass,
)
from bitwitness.verify.second_reader import reader_check


@dataclass(frozen=True)
class VerifyOptions:
    """How to verify (the same for every image of one run)."""

    logs: tuple[Path, ...] = ()  #: hash logs named with --log
    against: Path | None = None  #: the original device or file, re-read for dual verification
    libewf: bool = False  #: a second pass through pyewf (EWF) or the format's second reader
    second_reader: bool = False  #: the same as ``libewf``: every format's independent reader
    format: str | None = None  #: a format forced by name (``--format raw``), else detected
    workers: int | None = None  #: decompression threads for E01 (None: one per core)
    parallel: int = 2  #: images verified at the same time
    cancel: threading.Event = field(default_factory=threading.Event)
    #: hashes recorded by the caller itself (a job checking what it just wrote), compared like
    #: any recorded hash
    expected: tuple[HashReference, ...] = ()
    #: look for hash logs next to the image; a job checking its own output before its final log
    #: exists says no (its preliminary log would read as an unfinished acquisition)
    find_logs: bool = True


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def verify_image(path: str | Path, options: VerifyOptions | None = None,
                 mediator: Mediator | None = None) -> ImageVerification:
    """Verify one image; evidence problems are in the result, usage errors raise."""
    options = options or VerifyOptions()
    mediator = mediator or NullMediator()
    path = Path(path)
    started, t0 = _now(), time.monotonic()
    try:
        opened = open_for_verify(path, options.format)
    except (MissingSegmentError, IncompleteImageError) as exc:
        return _unopened(path, Verdict.INCOMPLETE, str(exc), started, t0)
    except FormatError as exc:
        return _unopened(path, Verdict.CORRUPT, str(exc), started, t0)
    try:
        check_media_budget(path, opened.stream.size, opened.files)
        truncated = (find_truncation(opened.image_format, path, opened.stream)
                     if opened.image_format is not None else ())
        if truncated:
            return _verify_truncated(path, opened, options, truncated, started=started, t0=t0)
        return _verify_opened(path, opened, options, mediator, started=started, t0=t0)
    except IncompleteImageError as exc:  # data missing where a read met it
        return _unopened(path, Verdict.INCOMPLETE, str(exc), started, t0)
    except FormatError as exc:  # a reader that cannot go on (libewf-read sets): still a result
        return _unopened(path, Verdict.CORRUPT, str(exc), started, t0)
    finally:
        opened.stream.close()


def verify_media(stream: ImageStream, path: Path, options: VerifyOptions | None = None,
                 mediator: Mediator | None = None) -> ImageVerification:
    """Verify media the caller opened itself, as raw (a restore target's first bytes: what the
    device holds past them is not the media, and the media is never taken for a container)."""
    started, t0 = _now(), time.monotonic()
    opened = Opened(stream, None, stream.info.format, (path,))
    return _verify_opened(path, opened, options or VerifyOptions(), mediator or NullMediator(),
                          started=started, t0=t0)


def _unopened(path: Path, verdict: Verdict, message: str, started: str,
              t0: float) -> ImageVerification:
    return ImageVerification(image=path, format="unknown", files=(path,), media_size=0,
                             sector_size=512, verdict=verdict, computed={},
                             problems=(message,), started=started, ended=_now(),
                             duration_seconds=round(time.monotonic() - t0, 3))


def _verify_opened(path: Path, opened: Opened, options: VerifyOptions, mediator: Mediator,
                   *, started: str, t0: float) -> ImageVerification:
    layout = layout_of(opened)
    logs, notes = refs_mod.load_logs(opened.files, options.logs, find=options.find_logs)
    stored = opened.stored_hashes
    bound = refs_mod.bind_all(logs, layout)
    references = (refs_mod.stored_references(stored) + list(bound.references)
                  + list(options.expected))
    media_algs = _media_algorithms(references)
    ranges = _range_hashers(references)
    comparer, against_note = _comparer(options.against, layout, bound.source_size)
    task = mediator.begin(f"verify {path.name}", layout.media_size)
    wants_second = options.libewf or options.second_reader
    # libewf (in-process) reads the very ranges of our pass alongside it, compared byte for
    # byte; its own stop event is set when our pass ends early (options.cancel included)
    libewf_pass = None
    if wants_second and opened.ewf is not None:
        libewf_pass = LibewfPass(opened.files, media_algs,
                                 mediator.begin(f"libewf {path.name}", layout.media_size),
                                 threading.Event(), chunk_size=opened.ewf.chunk_size,
                                 interrupt=options.cancel)
    try:
        result = run_pass(opened.stream, ewf=opened.ewf, algorithms=media_algs, ranges=ranges,
                          comparer=comparer, task=task, cancel=options.cancel,
                          workers=options.workers,
                          peers=(libewf_pass,) if libewf_pass is not None else ())
    except BaseException:
        if libewf_pass is not None:
            with contextlib.suppress(BaseException):
                libewf_pass.stop()
        raise
    finally:
        task.finish()
        if comparer is not None:
            comparer.source.close()
    comparisons = compare_hashes(references, result.hashes, result.ranges)
    against = _against_result(options.against, comparer, layout, against_note)
    libewf = second = None
    if wants_second:
        if libewf_pass is not None:
            libewf = libewf_compare(
                libewf_pass.result(result.hashes, layout.media_size),
                media_size=layout.media_size, stored=stored, computed=result.hashes,
                byte_differences=libewf_pass.byte_differences(layout.sector_size))
        else:
            try:
                second = reader_check(
                    opened.image_format, path, opened.stream, media_algs,
                    computed=result.hashes, cancel=options.cancel, notes=notes,
                    task=mediator.begin(f"second reader {path.name}", layout.media_size))
            except NoSecondReader as exc:
                notes.append(f"--second-reader: {exc}")
            else:
                if second is None:
                    notes.append(f"--second-reader: there is no independent second reader "
                                 f"for {opened.format}")
    corrupt = chunk_ranges(result.bad_chunks, layout.sector_size)
    checks = _container_checks(opened, path)
    damaged = tuple(f"{p.section} section of {p.segment.name} at file offset {p.file_offset}: "
                    f"{p.reason}" for p in getattr(opened.ewf, "section_problems", ()))
    damaged += tuple(f"{c.what}: {c.detail}" for c in checks if not c.ok)
    verdict, problems = _verdict(
        opened=opened, comparisons=comparisons, bound=bound, bytes_read=result.bytes_read,
        layout=layout, corrupt=corrupt, damaged=damaged, against=against,
        readers=tuple(r for r in (libewf, second) if r is not None))
    return ImageVerification(
        image=path, format=opened.format, files=opened.files, media_size=layout.media_size,
        sector_size=layout.sector_size, verdict=verdict, computed=result.hashes,
        comparisons=tuple(comparisons), size_checks=bound.sizes,
        bad_chunks=tuple(result.bad_chunks), corrupt_ranges=tuple(corrupt),
        damaged_sections=damaged,
        acquisition_errors=acquisition_errors(opened, bound.error_ranges),
        against=against, libewf=libewf, second_reader=second, container_checks=checks,
        problems=tuple(problems), notes=tuple(notes) + bound.notes,
        logs=tuple(log.path for log in logs), started=started, ended=_now(),
        duration_seconds=round(time.monotonic() - t0, 3), bytes_read=result.bytes_read,
        stored=stored)


def _verify_truncated(path: Path, opened: Opened, options: VerifyOptions,
                      truncated: tuple[Truncation, ...], *, started: str,
                      t0: float) -> ImageVerification:
    """An image whose files are cut short: INCOMPLETE, naming each file, what it holds against
    what its tables need, and every media range whose data is missing. The media is not read
    nor hashed (a hash with the missing data read as zeros would be of no media that ever
    existed), so recorded hashes cannot be checked; the container's own checks still run."""
    layout = layout_of(opened)
    logs, notes = refs_mod.load_logs(opened.files, options.logs, find=options.find_logs)
    bound = refs_mod.bind_all(logs, layout)
    references = (refs_mod.stored_references(opened.stored_hashes) + list(bound.references)
                  + list(options.expected))
    size = layout.sector_size
    missing = tuple(SectorRange(first, first + count - 1, size) for first, count in
                    merge_ranges(run for t in truncated for run in t.missing))
    comparisons = compare_hashes(references, {}, {})
    comparisons = [replace(c, reason="the image is cut short: its media cannot be read whole")
                   if c.match is Match.NOT_COMPUTED else c for c in comparisons]
    checks = _container_checks(opened, path)
    damaged = tuple(f"{c.what}: {c.detail}" for c in checks if not c.ok)
    notes.append("the media was not read or hashed: the data of the missing sectors is not in "
                 "the image, and no reader can give it")
    if options.libewf or options.second_reader or options.against is not None:
        notes.append("--second-reader and --against were not run: they compare the whole media")
    verdict, problems = _verdict(
        opened=opened, comparisons=comparisons, bound=bound, bytes_read=layout.media_size,
        layout=layout, corrupt=(), damaged=damaged, against=None, readers=(),
        truncated=truncated, missing=missing)
    return ImageVerification(
        image=path, format=opened.format, files=opened.files, media_size=layout.media_size,
        sector_size=size, verdict=verdict, computed={}, comparisons=tuple(comparisons),
        size_checks=bound.sizes, truncated=truncated, missing_ranges=missing,
        damaged_sections=damaged, acquisition_errors=acquisition_errors(opened,
                                                                        bound.error_ranges),
        container_checks=checks, problems=tuple(problems), notes=tuple(notes) + bound.notes,
        logs=tuple(log.path for log in logs), started=started, ended=_now(),
        duration_seconds=round(time.monotonic() - t0, 3), stored=opened.stored_hashes)


def _container_checks(opened: Opened, path: Path) -> tuple[ContainerCheck, ...]:
    """The checks the format offers on what the container records about itself."""
    run = getattr(opened.image_format, "self_checks", None)
    if run is None:
        return ()
    try:
        return tuple(run(path, opened.stream))
    except (BitWitnessError, OSError) as exc:
        return (ContainerCheck("container records", False, f"cannot be checked: {exc}"),)


def _media_algorithms(references: Sequence[HashReference]) -> tuple[str, ...]:
    """Every algorithm recorded for the whole media; all of ours when nothing is recorded."""
    wanted = {r.algorithm for r in references if r.file is None and r.start is None}
    if not wanted:
        return DEFAULT_ALGORITHMS
    return tuple(a for a in ALGORITHMS if a in wanted)


def _range_hashers(references: Sequence[HashReference]) -> RangeHashers | None:
    wanted: dict[tuple[int, int], set[str]] = {}
    for r in references:
        if r.file is None and r.start is not None and r.end is not None:
            wanted.setdefault((r.start, r.end), set()).add(r.algorithm)
    if not wanted:
        return None
    return RangeHashers({k: tuple(a for a in ALGORITHMS if a in v) for k, v in wanted.items()})


def _comparer(against: Path | None, layout: refs_mod.ImageLayout,
              source_size: int | None) -> tuple[SourceComparer | None, str]:
    """Open the source read-only and decide how many bytes must be identical."""
    if against is None:
        return None, ""
    from bitwitness.images.raw import RawStream

    source = RawStream(against)
    note = ""
    limit = min(source.size, layout.media_size)
    if source.size != layout.media_size:
        if source_size == source.size and layout.media_size > source.size:
            note = (f"the image is padded by {layout.media_size - source.size} bytes past the "
                    "source's end, as its acquisition log records; the source's bytes compared")
        else:
            note = (f"sizes differ: source {source.size} bytes, image media "
                    f"{layout.media_size} bytes")
    return SourceComparer(source, limit, layout.sector_size), note


def _against_result(against: Path | None, comparer: SourceComparer | None,
                    layout: refs_mod.ImageLayout, note: str) -> AgainstResult | None:
    if against is None or comparer is None:
        return None
    size = comparer.source.size
    padded = note.startswith("the image is padded")
    same_size = size == layout.media_size or padded
    runs = list(comparer.runs)
    if not same_size and comparer.compared == comparer.limit and not runs:
        # identical as far as both go: the first difference is where the shorter one ends
        first = comparer.limit // layout.sector_size
        last = (max(size, layout.media_size) - 1) // layout.sector_size
        runs = [(first, last)]
    first_run = SectorRange(runs[0][0], runs[0][1], layout.sector_size) if runs else None
    identical = same_size and not comparer.runs and comparer.compared == comparer.limit
    return AgainstResult(source=against, source_size=size, compared_bytes=comparer.compared,
                         identical=identical, first_difference=first_run,
                         differing_sectors=comparer.differing, note=note)


def compare_hashes(references: Sequence[HashReference], media: dict[str, str],
                   ranges: dict[tuple[int, int], dict[str, str]] | None = None
                   ) -> list[HashComparison]:
    """Each recorded hash against the one computed (``media``: of the whole media; ``ranges``:
    of media ranges; container files are hashed here, once each). Verification and conversion
    judge hashes with this one function."""
    ranges = ranges or {}
    file_hashes: dict[Path, dict[str, str] | str] = {}
    out = []
    for ref in references:
        computed: str | None = None
        reason = ""
        if ref.file is not None:
            got = _file_hashes(ref, references, file_hashes)
            if isinstance(got, str):
                reason = got
            else:
                computed = got.get(ref.algorithm)
        elif ref.start is not None and ref.end is not None:
            computed = ranges.get((ref.start, ref.end), {}).get(ref.algorithm)
            reason = "" if computed else "the range lies beyond the end of the media"
        else:
            computed = media.get(ref.algorithm)
        if computed is None:
            out.append(HashComparison(ref, None, Match.NOT_COMPUTED, reason or "not computed"))
        else:
            match = Match.MATCH if computed == ref.value else Match.MISMATCH
            out.append(HashComparison(ref, computed, match))
    return out


def _file_hashes(ref: HashReference, references: Sequence[HashReference],
                 cache: dict[Path, dict[str, str] | str]) -> dict[str, str] | str:
    """Hashes of a container file (every algorithm any log records for it), read once."""
    assert ref.file is not None
    if ref.file not in cache:
        algs = sorted({r.algorithm for r in references if r.file == ref.file})
        if not ref.file.is_file():
            cache[ref.file] = f"{ref.file.name} is missing"
        else:
            try:
                cache[ref.file] = hash_file(str(ref.file), algs)
            except OSError as exc:
                cache[ref.file] = f"{ref.file.name}: cannot read ({exc.strerror or exc})"
    return cache[ref.file]


def _verdict(*, opened: Opened, comparisons: Sequence[HashComparison], bound: refs_mod.Bound,
             bytes_read: int, layout: refs_mod.ImageLayout, corrupt: Sequence[SectorRange],
             damaged: Sequence[str], against: AgainstResult | None,
             readers: Sequence[ReaderCheck], truncated: Sequence[Truncation] = (),
             missing: Sequence[SectorRange] = ()) -> tuple[Verdict, list[str]]:
    """The one verdict, and every reason it is not VERIFIED, most serious first."""
    cut = [t.sentence() for t in truncated]
    if missing:
        cut.append("missing: " + ", ".join(str(r) for r in missing))
    found = {
        Verdict.INCOMPLETE: cut + _incomplete(opened, bound, bytes_read, layout),
        Verdict.CORRUPT: [f"bad chunk data in {r} (media offset {r.media_offset})"
                          for r in corrupt] + [f"damaged {d}" for d in damaged],
        Verdict.MISMATCH: _mismatches(bound, against, readers),
    }
    for c in comparisons:
        ref = c.reference
        if c.match is Match.NOT_COMPUTED:
            found[Verdict.INCOMPLETE].append(f"{ref.algorithm} of {ref.scope} ({ref.source}) "
                                             f"cannot be checked: {c.reason}")
        elif c.match is Match.MISMATCH:
            found[Verdict.MISMATCH].append(
                f"{ref.algorithm} of {ref.scope}: {ref.source} records {ref.value}, "
                f"computed {c.computed}")
    problems = [p for reasons in found.values() for p in reasons]
    for verdict, reasons in found.items():
        if reasons:
            return verdict, problems
    checked = any(c.match is Match.MATCH for c in comparisons)
    if checked or (against is not None and against.identical):
        return Verdict.VERIFIED, []
    return Verdict.UNVERIFIED, ["no recorded hash to compare with; the computed hashes are shown"]


def _incomplete(opened: Opened, bound: refs_mod.Bound, bytes_read: int,
                layout: refs_mod.ImageLayout) -> list[str]:
    reasons = []
    if opened.ewf is not None and not opened.ewf.complete:
        why = getattr(opened.ewf, "incomplete_reason", "") or "no 'done' section"
        reasons.append(f"the E01 set was never finished ({why})"
                       + _held_of_declared(opened, layout))
    reasons += [f"{label} records the acquisition as {status}"
                for label, status in bound.statuses if status in ("interrupted", "failed")]
    if bytes_read != layout.media_size:
        reasons.append(f"only {bytes_read} of {layout.media_size} media bytes could be read")
    reasons += [f"media is {c.actual} bytes, {c.source} records {c.expected}"
                for c in bound.sizes if c.actual < c.expected]
    return reasons


def _held_of_declared(opened: Opened, layout: refs_mod.ImageLayout) -> str:
    """The part of its declared media an unfinished E01's complete chunk groups hold: verify reads
    only that part, so the reason also says what the set was meant to hold."""
    declared = declared_media_size(opened)
    if declared is None or declared == layout.media_size:
        return ""
    return (f": its complete chunk groups hold {layout.media_size} of the {declared} media "
            "bytes its volume section declares")


def _mismatches(bound: refs_mod.Bound, against: AgainstResult | None,
                readers: Sequence[ReaderCheck]) -> list[str]:
    reasons = [f"media is {c.actual} bytes, {c.source} records {c.expected}"
               for c in bound.sizes if c.actual > c.expected]
    if against is not None and not against.identical:
        where = (f"; first difference in {against.first_difference}"
                 if against.first_difference else "")
        reasons.append(f"the image differs from its source {against.source}{where}")
    for reader in readers:
        if not reader.agree:
            reasons += [f"readers disagree: {d}" for d in reader.differences]
    return reasons


def verify_images(paths: Sequence[str | Path], options: VerifyOptions | None = None,
                  mediator: Mediator | None = None, *,
                  extra_logs: Sequence[tuple[Path, ...]] | None = None
                  ) -> list[ImageVerification]:
    """Verify several images, up to ``options.parallel`` at a time, results in input order.

    ``extra_logs[i]`` are logs for ``paths[i]`` only (a case item's acquisition log), on top of
    ``options.logs``. Every path and log is checked first, so that a typo fails at once (usage
    error) rather than after hours of reading.
    """
    options = options or VerifyOptions()
    per_image = [replace(options, logs=options.logs + tuple(extra))
                 for extra in (extra_logs or [()] * len(paths))]
    for p in paths:
        detect(p, options.format)
    for log in {log for o in per_image for log in o.logs}:
        if not log.is_file():
            raise InputError(f"{log}: no such log file")
    if options.against is not None and not options.against.exists():
        raise InputError(f"{options.against}: no such source device or file")
    if len(paths) <= 1 or options.parallel <= 1:
        return [verify_image(p, o, mediator) for p, o in zip(paths, per_image, strict=True)]
    with ThreadPoolExecutor(max_workers=min(options.parallel, len(paths)),
                            thread_name_prefix="verify") as pool:
        # each worker runs in a copy of this context: --parent names reach it
        futures = [pool.submit(contextvars.copy_context().run, verify_image, p, o, mediator)
                   for p, o in zip(paths, per_image, strict=True)]
        try:
            return [f.result() for f in futures]
        except BaseException:
            options.cancel.set()  # the cancel event is shared by every per-image copy
            raise
