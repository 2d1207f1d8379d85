"""``report --format dfxml``: every shape of document we write keeps DFXML 1.1's rules, and says
what the case holds, checked against independent tools.

Three judges of validity:

* ``tests/dfxml_rules.py``: the DFXML schema's content models (order, required elements, value
  types, enumerations) restated as our own code; always run, so CI catches a regression without
  the schema;
* ``tests/schemas/dfxml-1.1-subset.xsd`` through ``xmllint --schema`` (libxml2), always run;
* the DFXML working group's own ``dfxml.xsd`` through ``xmllint --schema``, when
  ``BITWITNESS_DFXML_XSD`` names a local copy (no package ships it, so it cannot be installed
  here): the tests that need it skip, with that reason, when it is not set.

The shapes: an empty case; acquisitions only (an E01 set of several segments, a raw image with
its hash sidecar files); an acquisition with unreadable sectors (as the model holds them, and,
as root, from a real failing drive); exports of allocated, deleted and virtual files from FAT and
of a folder from ext4; hostile file names. Facts come from outside tools: md5sum/sha256sum for
hashes, the fault map and hashlib for the failing drive, and fiwalk (The Sleuth Kit's DFXML
writer) for how each exported file is described.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from conftest import require_tool, run_bitwitness
from dfxml_rules import violations
from faultydrive.drive import MakeDrive
from faultydrive.faultmap import FaultMap

from bitwitness.errors import FormatError
from bitwitness.report.model import ErrorRange, ExportedFile

SUBSET = Path(__file__).parent / "schemas" / "dfxml-1.1-subset.xsd"
NS = "http://www.forensicswiki.org/wiki/Category:Digital_Forensics_XML"
DF = f"{{{NS}}}"
SHAPES = ("empty", "acquired", "read-errors", "exports", "hostile-names")


def official_schema() -> Path | None:
    """The official dfxml.xsd named by ``BITWITNESS_DFXML_XSD``; a wrong path fails, never
    passes unnoticed."""
    value = os.environ.get("BITWITNESS_DFXML_XSD")
    if not value:
        return None
    path = Path(value)
    if not path.is_file():
        pytest.fail(f"BITWITNESS_DFXML_XSD={value} is not a file")
    return path


def need_official_schema() -> Path:
    path = official_schema()
    if path is None:
        pytest.skip("BITWITNESS_DFXML_XSD is not set (the official dfxml.xsd cannot be "
                    "installed here; point it at a local copy to run this test)")
    return path


def xmllint(document: bytes, schema: Path, tmp_path: Path, name: str = "doc") -> str | None:
    """None when ``schema`` accepts ``document``, else xmllint's complaint."""
    require_tool("xmllint")
    path = tmp_path / f"{name}.xml"
    path.write_bytes(document)
    check = subprocess.run(["xmllint", "--noout", "--schema", str(schema), str(path)],
                           capture_output=True, text=True, check=False)
    return None if check.returncode == 0 else check.stderr.strip()


def digest(tool: str, path: Path) -> str:
    return subprocess.run([tool, str(path)], capture_output=True, text=True,
                          check=True).stdout.split()[0]


def ok(*args: Any) -> None:
    result = run_bitwitness(*args)
    assert result.exit_code == 0, (args, result.stderr)


def dfxml_of(root: Path, out: Path) -> bytes:
    ok("report", root, "--format", "dfxml", "-o", out)
    return out.read_bytes()


def new_case(root: Path) -> Path:
    ok("case", "new", root, "--set", "case_number=DF-1", "--set", "examiner=Ann Example")
    return root


def fat_stick(tmp: Path) -> Path:
    """A FAT image with a file, a deleted file and TSK's virtual files ($MBR, $FAT1...)."""
    require_tool("mkfs.vfat", "mcopy", "mdel")
    stick = tmp / "stick.img"
    stick.write_bytes(bytes(4096 * 512))
    subprocess.run(["mkfs.vfat", "-n", "EVIDENCE", str(stick)], capture_output=True, check=True)
    (tmp / "note.txt").write_text("meet at the harbour <b>&amp;</b>\n")
    (tmp / "old.txt").write_text("to be deleted\n" * 100)
    for name in ("note.txt", "old.txt"):
        subprocess.run(["mcopy", "-i", str(stick), str(tmp / name), f"::/{name}"], check=True)
    subprocess.run(["mdel", "-i", str(stick), "::/old.txt"], check=True)
    return stick


def ext_image(tmp: Path) -> Path:
    require_tool("mkfs.ext4")
    tree = tmp / "tree"
    (tree / "dir").mkdir(parents=True)
    (tree / "dir/a.txt").write_text("alpha\n")
    (tree / "b.bin").write_bytes(bytes(range(256)) * 20)
    image = tmp / "ext.img"
    image.write_bytes(bytes(8 << 20))
    subprocess.run(["mkfs.ext4", "-q", "-d", str(tree), str(image)], capture_output=True,
                   check=True)
    return image


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Real cases made by the commands, and the DFXML document of every shape."""
    tmp = tmp_path_factory.mktemp("dfxml")
    stick, ext = fat_stick(tmp), ext_image(tmp)
    docs: dict[str, bytes] = {"empty": dfxml_of(new_case(tmp / "empty"), tmp / "empty.xml")}

    root = new_case(tmp / "case")
    ok("acquire", stick, "--case", root, "--evidence", "E1", "--segment-size", "1MiB",
       "--compress", "none", "--description", "stick <with> & markup")
    ok("acquire", ext, "--case", root, "--evidence", "E2", "--format", "raw")
    ok("verify", "--case", root)
    docs["acquired"] = dfxml_of(root, tmp / "acquired.xml")

    from bitwitness.report.dfxml import render_dfxml
    from bitwitness.report.gather import gather

    data = gather(root)
    item = data.evidence[0]
    assert item.acquisition is not None
    bad = replace(item.acquisition, read_errors=(ErrorRange(40, 3), ErrorRange(100, 1)))
    docs["read-errors"] = render_dfxml(replace(data, evidence=(replace(item, acquisition=bad),
                                                               *data.evidence[1:])))

    ok("export", root / "evidence/E1/E1.E01", "/", "--all", "--to", tmp / "out1", "--case", root)
    ok("export", root / "evidence/E2/E2.raw", "/dir", "/b.bin", "--to", tmp / "out2",
       "--case", root)
    ok("export", root / "evidence/E1/E1.E01", "/note.txt", "--to", tmp / "out3", "--case", root)
    docs["exports"] = dfxml_of(root, tmp / "exports.xml")

    data = gather(root)
    export = next(e for e in data.exports if e.files)
    hostile = ExportedFile(source="/evil\x01<b>&amp;\udc80\x7f\r.txt", target="evil.txt", size=3)
    docs["hostile-names"] = render_dfxml(replace(data, exports=(replace(export,
                                                                        files=(hostile,)),)))
    return {"docs": docs, "root": root, "tmp": tmp, "stick": stick, "ext": ext}


def objects(document: bytes) -> dict[str, ET.Element]:
    root = ET.fromstring(document)  # noqa: S314 - our own output
    found = {o.findtext(f"{DF}id"): o for o in root.iter(f"{DF}fileobject")}
    assert len(found) == len(list(root.iter(f"{DF}fileobject"))), "fileobject ids repeat"
    return {k: v for k, v in found.items() if k is not None}


def digests(obj: ET.Element) -> dict[str | None, str | None]:
    return {d.get("type"): d.text for d in obj.findall(f"{DF}hashdigest")}


# --- validity -------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES)
def test_every_shape_keeps_the_dfxml_rules(made: dict[str, Any], shape: str,
                                           tmp_path: Path) -> None:
    document = made["docs"][shape]
    assert violations(document) == []
    assert xmllint(document, SUBSET, tmp_path) is None


@pytest.mark.parametrize("shape", SHAPES)
def test_every_shape_is_valid_against_the_official_schema(made: dict[str, Any], shape: str,
                                                          tmp_path: Path) -> None:
    schema = need_official_schema()
    assert xmllint(made["docs"][shape], schema, tmp_path) is None


def _element(tag: str) -> re.Pattern[str]:
    return re.compile(rf"<{tag}\b[^>]*>[^<]*</{tag}>")


def _note(change: Callable[[str], str]) -> Callable[[str], str]:
    """``change`` applied to the first fileobject of note.txt only."""
    def mutate(document: str) -> str:
        start = document.rindex("<fileobject>", 0, document.index("<filename>note.txt<"))
        end = document.index("</fileobject>", start)
        return document[:start] + change(document[start:end]) + document[end:]
    return mutate


def _swap(first: str, second: str) -> Callable[[str], str]:
    def change(block: str) -> str:
        a, b = sorted((_element(first).search(block), _element(second).search(block)),
                      key=lambda m: m.start() if m else -1)
        assert a is not None
        assert b is not None
        return (block[:a.start()] + b.group() + block[a.end():b.start()] + a.group()
                + block[b.end():])
    return change


def _drop(tag: str) -> Callable[[str], str]:
    return lambda block: _element(tag).sub("", block, count=1)


def _text(tag: str, new: str) -> Callable[[str], str]:
    return lambda block: _element(tag).sub(
        lambda m: m.group()[:m.group().index(">") + 1] + new + f"</{tag}>", block, count=1)


def _after(tag: str, extra: str) -> Callable[[str], str]:
    return lambda block: _element(tag).sub(lambda m: m.group() + extra, block, count=1)


def _between(document: str, start: str, end: str, new: str) -> str:
    head, rest = document.split(start, 1)
    return head + start + new + end + rest.split(end, 1)[1]


def _move_creator_after_source(document: str) -> str:
    head, rest = document.split("<creator", 1)
    creator, tail = rest.split("</creator>", 1)
    source_end = tail.index("</source>") + len("</source>")
    return head + tail[:source_end] + "<creator" + creator + "</creator>" + tail[source_end:]


#: Documents a careless writer could produce, each breaking one rule of the schema: the rules,
#: and the official schema where it is named, must refuse every one.
BROKEN: dict[str, Callable[[str], str]] = {
    "name_type before filename": _note(_swap("filename", "name_type")),
    "no name_type": _note(_drop("name_type")),
    "no filename": _note(_drop("filename")),
    "filesize before name_type": _note(_swap("name_type", "filesize")),
    "alloc after inode": _note(_swap("alloc", "inode")),
    "hashes before times": _note(_swap("mtime", "hashdigest")),
    "atime before mtime": _note(_swap("mtime", "atime")),
    "digest type crc32": _note(lambda b: b.replace('type="md5"', 'type="crc32"')),
    "digest type in mixed case": _note(lambda b: b.replace('type="sha256"', 'type="Sha256"')),
    "alloc 2": _note(_text("alloc", "2")),
    "alloc true": _note(_text("alloc", "true")),
    "alloc twice": _note(_after("alloc", "<alloc>1</alloc>")),
    "no such day": _note(_text("mtime", "2025-02-30T10:00:00Z")),
    "time with a space": _note(_text("mtime", "2025-01-01 10:00:00Z")),
    "negative prec": _note(lambda b: b.replace('prec="2"', 'prec="-2"')),
    "negative inode": _note(_text("inode", "-4")),
    "inode in another script": _note(_text("inode", "\u0664")),
    "filesize not a number": _note(_text("filesize", "20 bytes")),
    "element unknown to DFXML": _note(_after("alloc", "<sha256>00</sha256>")),
    "attribute unknown to DFXML": _note(lambda b: b.replace("<fileobject>",
                                                            '<fileobject kind="r">')),
    "text among children": _note(lambda b: b.replace("<fileobject>", "<fileobject>loose")),
    "partition 0": _note(_after("filename", "<partition>0</partition>")),
    "name_type V": lambda d: d.replace("<name_type>v</name_type>", "<name_type>V</name_type>",
                                       1),
    "negative offset": lambda d: d.replace('img_offset="20480"', 'img_offset="-1"', 1),
    "digest directly in byte_runs": lambda d: d.replace(
        "<byte_runs>", '<byte_runs><hashdigest type="md5">00</hashdigest>', 1),
    "empty metadata": lambda d: _between(d, "<metadata>", "</metadata>", ""),
    "two metadata elements": lambda d: d.replace("</dc:type>",
                                                 "</dc:type><dc:title>t</dc:title>", 1),
    "metadata not Dublin Core": lambda d: _between(d, "<metadata>", "</metadata>",
                                                   "<program>x</program>"),
    "no source": lambda d: d.replace(d[d.index("<source>"):d.index("</source>") + 9], "", 1),
    "creator after source": _move_creator_after_source,
    "no version attribute": lambda d: d.replace(' version="1.1.0"', "", 1),
    "start_time twice": lambda d: d.replace(
        "</execution_environment>",
        "<start_time>2025-01-01T00:00:00Z</start_time></execution_environment>", 1),
    "fileobject in no namespace": lambda d: d.replace("<fileobject>",
                                                      '<fileobject xmlns="">', 1),
}

#: Mistakes under DFXML 1.1.0rfc1, which the rules follow, that a later revision of dfxml.xsd
#: allows (it makes ``filename`` and ``name_type`` optional): that schema may accept them.
ALLOWED_LATER = frozenset({"no filename", "no name_type"})

#: Documents the schema accepts although we do not write them so: the rules must accept them
#: too (they are not stricter than the schema where a reader could meet such documents).
ALSO_VALID: dict[str, Callable[[str], str]] = {
    "execution_environment in another order": lambda d: d.replace(
        "<execution_environment>",
        "<execution_environment><username>ann</username><uid>0</uid><host>h</host>", 1),
    "digest types in upper case": lambda d: d.replace('type="sha256"', 'type="SHA256"'),
    "two file names, one with a language": _note(_after(
        "filename", '<filename xml:lang="en">NOTE.TXT</filename>')),
    "creator with libraries": lambda d: d.replace(
        "<execution_environment>",
        '<build_environment><compiler>cc</compiler><library name="x" version="1"/>'
        "</build_environment><execution_environment>", 1),
    "every flag of a file": _note(lambda b: _after("inode", (
        "<meta_type>1</meta_type><mode>511</mode><nlink>1</nlink><uid>0</uid><gid>0</gid>"))(
        _after("alloc", "<used>1</used><unused>0</unused><orphan>0</orphan>"
                        "<compressed>0</compressed>")(b))),
    "later times, libmagic and a file's byte runs": _note(_after("crtime", (
        "<seq>1</seq><dtime>2025-01-01T00:00:00</dtime><bkup_time prec='1'>"
        "2025-01-01T00:00:00+02:00</bkup_time><link_target>x</link_target>"
        "<libmagic>ASCII text</libmagic><byte_runs><byte_run file_offset='0' fs_offset='1' "
        "img_offset='2' len='3'><hashdigest type='md5'>00</hashdigest></byte_run>"
        "</byte_runs>"))),
    "catalogDesignDate": lambda d: d.replace(' version="1.1.0"',
                                             ' version="1.1.0" catalogDesignDate="2025-03-01"', 1),
}


@pytest.fixture(scope="module")
def sample(made: dict[str, Any]) -> str:
    """One document with every element we write: the export case, plus unreadable sectors
    (byte runs) on its first media."""
    document = made["docs"]["exports"].decode()
    runs = ('<byte_runs><byte_run img_offset="20480" len="1536" fill="0" type="unreadable" />'
            "</byte_runs>")
    head, rest = document.split("<id>E1/media</id>", 1)
    first_digest = rest.index("<hashdigest")
    document = head + "<id>E1/media</id>" + rest[:first_digest] + runs + rest[first_digest:]
    assert violations(document.encode()) == []
    return document


@pytest.mark.parametrize("mistake", sorted(BROKEN))
def test_the_rules_refuse_what_dfxml_forbids(sample: str, mistake: str, tmp_path: Path) -> None:
    broken = BROKEN[mistake](sample)
    assert broken != sample, "the mistake was not made"
    assert violations(broken.encode()), mistake
    schema = official_schema()
    if schema is not None and mistake not in ALLOWED_LATER:  # the official schema agrees
        assert xmllint(broken.encode(), schema, tmp_path) is not None, mistake


@pytest.mark.parametrize("variant", sorted(ALSO_VALID))
def test_the_rules_accept_what_dfxml_allows(sample: str, variant: str, tmp_path: Path) -> None:
    document = ALSO_VALID[variant](sample)
    assert document != sample
    assert violations(document.encode()) == [], variant
    schema = official_schema()
    if schema is not None:
        assert xmllint(document.encode(), schema, tmp_path) is None, variant


def test_the_subset_schema_refuses_what_dfxml_forbids(sample: str, tmp_path: Path) -> None:
    """The test schema is no rubber stamp either: it refuses every mistake of the list."""
    accepted = [m for m in sorted(BROKEN)
                if xmllint(BROKEN[m](sample).encode(), SUBSET, tmp_path) is None]
    assert accepted == []


# --- what the documents say -------------------------------------------------------------------


def test_media_image_files_and_exports_hold_the_hashes(made: dict[str, Any]) -> None:
    root, tmp = made["root"], made["tmp"]
    found = objects(made["docs"]["exports"])
    media = found["E1/media"]
    assert media.findtext(f"{DF}filesize") == str(made["stick"].stat().st_size)
    assert digests(media) == {"md5": digest("md5sum", made["stick"]),
                              "sha1": digest("sha1sum", made["stick"]),
                              "sha256": digest("sha256sum", made["stick"])}
    segments = sorted((root / "evidence/E1").glob("E1.E0*"))
    assert len(segments) > 1
    for segment in segments:
        obj = found[f"E1/image/{segment.name}"]
        assert obj.findtext(f"{DF}name_type") == "r"
        assert obj.findtext(f"{DF}filesize") == str(segment.stat().st_size)
        assert digests(obj)["sha256"] == digest("sha256sum", segment)
    assert digests(found["E2/image/E2.raw"])["md5"] == digest("md5sum", made["ext"])
    sidecar = found["E2/sidecar/E2.md5"]
    assert digests(sidecar)["sha256"] == digest("sha256sum", root / "evidence/E2/E2.md5")
    document = ET.fromstring(made["docs"]["exports"])  # noqa: S314 - our own output
    sources = [s.text for s in document.iter(f"{DF}image_filename")]
    assert sources == [str(made["stick"]), *map(str, segments), str(made["ext"]),
                       str(root / "evidence/E2/E2.raw")]  # images only, no sidecar
    exported = [o for k, o in found.items() if "/export-" in k and k.endswith("/note.txt")]
    assert len(exported) == 2  # two exports of one file: two objects, two ids
    for obj in exported:
        assert obj.findtext(f"{DF}filename") == "note.txt"
        assert digests(obj)["sha256"] == digest("sha256sum", tmp / "out1/note.txt")
    a_txt = next(o for k, o in found.items() if k.endswith("/dir/a.txt"))
    assert a_txt.findtext(f"{DF}filename") == "dir/a.txt"
    assert digests(a_txt)["md5"] == digest("md5sum", tmp / "out2/dir/a.txt")


def test_creator_describes_the_report_run(made: dict[str, Any]) -> None:
    """The report's program, version and time, not the acquisition's host or libraries."""
    from bitwitness import __version__

    before = datetime.now(UTC)
    document = dfxml_of(made["root"], made["tmp"] / "again.xml")
    creator = ET.fromstring(document).find(f"{DF}creator")  # noqa: S314 - our own output
    assert creator is not None
    assert [c.tag[len(DF):] for c in creator] == ["program", "version", "execution_environment"]
    assert creator.findtext(f"{DF}program") == "BitWitness"
    assert creator.findtext(f"{DF}version") == __version__
    started = creator.findtext(f"{DF}execution_environment/{DF}start_time")
    assert started is not None
    assert started.endswith("Z")
    assert before - timedelta(seconds=1) <= datetime.fromisoformat(started) \
        <= datetime.now(UTC)


def test_read_errors_are_zero_filled_byte_runs(made: dict[str, Any]) -> None:
    media = objects(made["docs"]["read-errors"])["E1/media"]
    runs = [(r.get("img_offset"), r.get("len"), r.get("fill"))
            for r in media.iter(f"{DF}byte_run")]
    assert runs == [("20480", "1536", "0"), ("51200", "512", "0")]


def test_hostile_file_names_stay_text(made: dict[str, Any]) -> None:
    """Control characters, a carriage return, an undecodable byte (its surrogate escape, as
    names hold them: ``\\x80``) and markup in a name from evidence stay visible text, read back
    exactly as written."""
    document = ET.fromstring(made["docs"]["hostile-names"])  # noqa: S314 - our own output
    names = [f.text for f in document.iter(f"{DF}filename")]
    assert "evil\\x01<b>&amp;\\x80\x7f\\x0d.txt" in names


@pytest.mark.root
def test_a_failing_drive_gives_its_bad_sectors_as_byte_runs(faulty_drive: MakeDrive,
                                                            tmp_path: Path) -> None:
    """A real acquisition of a drive that fails in the kernel (tests/faultydrive): the byte
    runs are the fault map's sectors, the hashes those of the drive's bytes with them zeroed."""
    faults = FaultMap(bad=((1000, 8), (5000, 1)))
    drive = faulty_drive(faults, size=4 << 20)
    root = new_case(tmp_path / "case")
    result = run_bitwitness("acquire", drive.device, "--case", root, "--evidence", "D1",
                            "--retries", "0")
    assert result.exit_code == 1, result.stderr  # read errors are an evidence problem
    document = dfxml_of(root, tmp_path / "drive.xml")
    assert violations(document) == []
    assert xmllint(document, SUBSET, tmp_path) is None
    schema = official_schema()
    if schema is not None:
        assert xmllint(document, schema, tmp_path, "official") is None
    media = objects(document)["D1/media"]
    runs = [(int(r.get("img_offset") or -1), int(r.get("len") or -1))
            for r in media.iter(f"{DF}byte_run")]
    assert runs == [(first * 512, count * 512) for first, count in faults.bad]
    expected = drive.expected_image()
    assert digests(media)["sha256"] == hashlib.sha256(expected).hexdigest()
    assert media.findtext(f"{DF}filesize") == str(len(expected))


def test_a_value_dfxml_cannot_hold_is_a_typed_error(made: dict[str, Any]) -> None:
    """A damaged log or manifest fails closed: never an invalid document, never a traceback."""
    from bitwitness.report.dfxml import render_dfxml
    from bitwitness.report.gather import gather

    data = gather(made["root"])
    item = data.evidence[0]
    assert item.acquisition is not None
    negative = replace(item.acquisition, read_errors=(ErrorRange(-1, 3),))
    with pytest.raises(FormatError, match="cannot be a DFXML byte run"):
        render_dfxml(replace(data, evidence=(replace(item, acquisition=negative),)))
    export = next(e for e in data.exports if e.files)
    early = datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1)))
    file = ExportedFile(source="/a", target="a", size=1, modified=early)
    with pytest.raises(FormatError, match="cannot be written in UTC"):
        render_dfxml(replace(data, exports=(replace(export, files=(file,)),)))
    other_digits = ExportedFile(source="/a", target="a", size=1, inode="\u0661\u0662")
    document = render_dfxml(replace(data, exports=(replace(export, files=(other_digits,)),)))
    assert violations(document) == []  # no inode rather than one the schema refuses


def test_a_damaged_log_is_one_line_and_exit_1(made: dict[str, Any], tmp_path: Path) -> None:
    import json
    import shutil

    root = tmp_path / "case"
    shutil.copytree(made["root"], root)
    log = root / "evidence/E2/E2.json"
    doc = json.loads(log.read_text())
    doc["read_errors"] = [{"first_sector": -5, "sector_count": 1}]
    log.write_text(json.dumps(doc))
    out = tmp_path / "r.xml"
    result = run_bitwitness("report", root, "--format", "dfxml", "-o", out)
    assert result.exit_code == 1
    assert "cannot be a DFXML byte run" in result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists()


# --- agreement with fiwalk --------------------------------------------------------------------


def _utc(env: dict[str, str], *args: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, env=env,
                          check=False, timeout=300)


def _fiwalk_time(element: ET.Element | None) -> tuple[datetime, str | None] | None:
    """fiwalk writes FAT times without a zone (with TZ=UTC they are UTC) and others with Z."""
    if element is None or not element.text:
        return None
    value = datetime.fromisoformat(element.text.replace("Z", "+00:00"))
    return (value if value.tzinfo else value.replace(tzinfo=UTC)), element.get("prec")


def test_exported_files_are_described_as_fiwalk_describes_them(tmp_path: Path) -> None:
    """The same image walked by fiwalk (TSK's own DFXML writer): for every file we exported,
    the fileobject with the same file name agrees on type, size, allocation, inode, times (to
    the second, FAT's coarse ones with the same ``prec``) and MD5."""
    require_tool("fiwalk", "mkfs.vfat", "mcopy", "mdel", "mkfs.ext4")
    env = {**os.environ, "TZ": "UTC"}  # FAT keeps local times: one zone for both tools
    bw = [sys.executable, "-m", "bitwitness"]
    root = tmp_path / "case"
    stick, ext = fat_stick(tmp_path), ext_image(tmp_path)
    for args in (("case", "new", root, "--set", "case_number=F-1", "--set", "examiner=A"),
                 ("acquire", stick, "--case", root, "--evidence", "E1"),
                 ("acquire", ext, "--case", root, "--evidence", "E2", "--format", "raw"),
                 ("export", root / "evidence/E1/E1.E01", "/", "--all", "--to", tmp_path / "o1",
                  "--case", root),
                 ("export", root / "evidence/E2/E2.raw", "/", "--all", "--to", tmp_path / "o2",
                  "--case", root),
                 ("report", root, "--format", "dfxml", "-o", tmp_path / "ours.xml")):
        done = _utc(env, *bw, *args)
        assert done.returncode == 0, (args, done.stderr)
    ours = ET.parse(tmp_path / "ours.xml").getroot()  # noqa: S314 - our own output
    compared = 0
    for evidence, image in (("E1", stick), ("E2", ext)):
        walked = _utc(env, "fiwalk", "-X", tmp_path / f"{evidence}.fiwalk.xml", "-f", image)
        assert walked.returncode == 0, walked.stderr
        theirs = {o.findtext(f"{DF}filename"): o for o in ET.parse(  # noqa: S314 - fiwalk's
            tmp_path / f"{evidence}.fiwalk.xml").getroot().iter(f"{DF}fileobject")}
        mine = [o for o in ours.iter(f"{DF}fileobject")
                if (o.findtext(f"{DF}id") or "").startswith(f"{evidence}/export-")]
        assert mine
        for obj in mine:
            name = obj.findtext(f"{DF}filename")
            other = theirs[name]
            for tag in ("name_type", "filesize", "alloc", "unalloc", "inode"):
                assert obj.findtext(f"{DF}{tag}") == other.findtext(f"{DF}{tag}"), (name, tag)
            if digests(other).get("md5"):  # fiwalk hashes files with content
                assert digests(obj)["md5"] == digests(other)["md5"], name
            for tag in ("mtime", "ctime", "atime", "crtime"):
                here, there = (_fiwalk_time(obj.find(f"{DF}{tag}")),
                               _fiwalk_time(other.find(f"{DF}{tag}")))
                if here is None or there is None:
                    assert here == there, (name, tag)
                    continue
                assert here[0].replace(microsecond=0) == there[0], (name, tag)
                # a zone only where fiwalk writes one: FAT's local times carry none
                assert (obj.findtext(f"{DF}{tag}") or "").endswith("Z") == (
                    other.findtext(f"{DF}{tag}") or "").endswith("Z"), (name, tag, "zone")
                if tag in ("mtime", "atime"):
                    assert here[1] == there[1], (name, tag, "prec")
            compared += 1
    assert compared >= 8  # FAT: file, deleted file, volume label, $MBR, $FAT1/2; ext4 files
