"""The acquisition log read back as typed records (``bitwitness.acquisitionlog``): what an
acquisition writes loads with the values md5sum/sha1sum and the file system give, and a damaged or
foreign log loads defensively or is refused with one clear reason."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from conftest import make_disk_bytes, require_tool, run_bitwitness

from bitwitness import acquisitionlog

SIZE = 1024 * 1024 + 512


def _tool_hash(tool: str, path: Path) -> str:
    return subprocess.run([tool, str(path)], capture_output=True, text=True,
                          check=True).stdout.split()[0]


def test_an_acquisition_log_loads_with_the_values_of_independent_tools(tmp_path: Path) -> None:
    require_tool("md5sum", "sha1sum")
    src = tmp_path / "evidence.bin"
    src.write_bytes(make_disk_bytes(SIZE, seed=13))
    res = run_bitwitness("acquire", src, "-o", tmp_path / "img", "--format", "raw",
                         "--hash", "md5,sha1", "--json", "--examiner", "J. Doe")
    assert res.exit_code == 0, res.stderr
    log = acquisitionlog.load(tmp_path / "img.json")
    assert log.schema == acquisitionlog.SCHEMA
    assert (log.operation, log.status, log.error) == ("acquire", "completed", None)
    assert log.media.hashes == {"md5": _tool_hash("md5sum", src),
                                "sha1": _tool_hash("sha1sum", src)}
    assert log.media.size == src.stat().st_size == log.source.size
    assert log.source.path == str(src.absolute())
    assert log.options.format == "raw"
    assert log.options.hashes == ("md5", "sha1")
    assert log.metadata["examiner"] == "J. Doe"
    image = [o for o in log.outputs if o.role == "image"]
    assert [Path(o.path).name for o in image] == ["img.raw"]
    assert image[0].size == (tmp_path / "img.raw").stat().st_size
    assert log.progress is not None
    assert log.progress.media_bytes_done == SIZE
    assert log.started is not None
    assert log.ended is not None
    assert log.started <= log.ended
    assert log.read_errors == ()


def test_a_damaged_log_reads_what_it_can(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text(json.dumps({
        "schema": acquisitionlog.SCHEMA, "operation": "restore", "status": 7,
        "media": {"size": "big", "hashes": {"md5": "ab" * 16, "sha1": None}},
        "read_errors": [{"first_sector": 8, "sector_count": 2}, {"first_sector": "x"}, 5],
        "outputs": [{"path": "a.raw", "size": True}, {"size": 3}, "junk"],
        "source": {"path": "/dev/sdz", "hpa": {"checked": 1, "present": "yes"}},
        "target": {"path": "/dev/sdy"}}), encoding="utf-8")
    log = acquisitionlog.load(path)
    assert log.status == ""
    assert log.media.size is None
    assert log.media.hashes == {"md5": "ab" * 16}
    assert log.read_errors == ((8, 2),)
    assert [(o.path, o.size) for o in log.outputs] == [("a.raw", None)]
    assert (log.source.hpa_checked, log.source.hpa_present) == (True, None)
    assert log.extra == {"target": {"path": "/dev/sdy"}}
    assert log.progress is None
    assert log.verification is None


@pytest.mark.parametrize(("text", "reason"), [
    ("{not json", "cannot be read"),
    ("[1, 2]", "is not a BitWitness acquisition log"),
    ('{"schema": "bitwitness.case/1"}', "is not a BitWitness acquisition log"),
    ('{"schema": "bitwitness.acquisition/2"}', "is not a BitWitness acquisition log"),
])
def test_a_foreign_file_is_refused_with_its_reason(tmp_path: Path, text: str,
                                                    reason: str) -> None:
    path = tmp_path / "x.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(acquisitionlog.LogFormatError, match=reason):
        acquisitionlog.load(path)


def test_a_newer_schema_version_is_read_when_asked(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text('{"schema": "bitwitness.acquisition/2", "status": "completed"}',
                    encoding="utf-8")
    assert acquisitionlog.load(path, any_version=True).status == "completed"


def test_what_the_writer_dumps_the_model_loads_field_for_field() -> None:
    """``logs.to_document`` (the dump) and ``acquisitionlog.parse`` (the load) agree on every
    field a record carries, so no stage reads a log differently from how it was written."""
    from datetime import UTC, datetime, timedelta

    from bitwitness.acquire.logs import LogRecord, Status, to_document
    from bitwitness.acquire.sinks import OutputFile
    from bitwitness.acquire.source import HpaInfo, SourceFacts, SourceKind

    started = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    facts = SourceFacts(path="/dev/sdz", kind=SourceKind.DEVICE, size=10_000_000,
                        logical_sector_size=512, physical_sector_size=4096, model="M",
                        serial="S1", vendor="V", transport="usb", removable=True,
                        hpa=HpaInfo(checked=True, present=False, detail="none"))
    record = LogRecord(
        operation="acquire", status=Status.COMPLETED_WITH_ERRORS, error=None, started=started,
        ended=started + timedelta(seconds=90), source=facts,
        options={"format": "e01", "hashes": ["md5", "sha1"], "compress": "best",
                 "segment_size": 1 << 30, "split": None, "sector_size": 512,
                 "chunk_sectors": 64, "second_output": "/mnt/b/x"},
        media_size=10_000_384, sector_size=512, hashes={"md5": "a" * 32, "sha1": "b" * 40},
        source_hashes={"md5": "c" * 32},
        outputs=(OutputFile(Path("/mnt/a/x.E01"), 123, {"sha256": "d" * 64}),
                 OutputFile(Path("/mnt/a/x.md5"), 45, {}, role="sidecar")),
        read_errors=((8, 2), (100, 1)),
        verification={"verdict": "VERIFIED", "hashes": {"md5": "a" * 32}, "detail": "ok"},
        case={"case_dir": "/cases/c1", "evidence_id": "E1", "fields": {"examiner": "J"}},
        progress={"media_bytes_done": 10_000_384, "resumed_from": 4096},
        warnings=("w1",), metadata={"case_number": "42"})
    log = acquisitionlog.parse(json.loads(json.dumps(to_document(record))))
    assert (log.schema, log.operation, log.status, log.error) == (
        acquisitionlog.SCHEMA, "acquire", "completed-with-errors", None)
    assert (log.started, log.ended, log.duration_seconds) == (
        record.started, record.ended, 90.0)
    assert (log.source.path, log.source.kind, log.source.size, log.source.serial,
            log.source.physical_sector_size, log.source.removable, log.source.hpa_checked,
            log.source.hpa_present) == ("/dev/sdz", "device", 10_000_000, "S1", 4096, True,
                                        True, False)
    assert log.options.values == record.options
    assert (log.options.format, log.options.hashes, log.options.compress,
            log.options.segment_size, log.options.split, log.options.chunk_sectors,
            log.options.second_output) == ("e01", ("md5", "sha1"), "best", 1 << 30, None, 64,
                                           "/mnt/b/x")
    assert (log.media.size, log.media.sector_size, log.media.sectors, log.media.hashes) == (
        10_000_384, 512, 19_532, record.hashes)
    assert log.source_hashes == acquisitionlog.LoggedSourceHashes(10_000_000, {"md5": "c" * 32})
    assert log.outputs == (acquisitionlog.LoggedOutput("/mnt/a/x.E01", 123, {"sha256": "d" * 64}),
                           acquisitionlog.LoggedOutput("/mnt/a/x.md5", 45, {}, "sidecar"))
    assert log.read_errors == record.read_errors
    assert log.verification == acquisitionlog.LoggedVerification("VERIFIED", {"md5": "a" * 32},
                                                                 "ok")
    assert log.case == acquisitionlog.LoggedCase("/cases/c1", "E1", {"examiner": "J"})
    assert log.progress == acquisitionlog.LoggedProgress(10_000_384, 4096)
    assert (log.warnings, log.metadata, log.extra) == (("w1",), {"case_number": "42"}, {})
    assert log.tool.name
    assert log.host.hostname
