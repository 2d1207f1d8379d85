"""The report as DFXML (Digital Forensics XML, schema version 1.1.0).

One document for the case, valid against the DFXML working group's schema (``dfxml.xsd``, whose
content models are sequences: every element below is written in the order they fix, and the
tests check that order with and without the schema). ``creator`` names the program that wrote
*this document*: BitWitness, its version and the report's time (the acquisition's host and
libraries describe another run, so they stay in the JSON and PDF reports). ``source`` lists every
evidence source and the image files made from it (hash sidecar files are no images). Then one
``fileobject`` per thing a court may ask about:

* each evidence item's acquired media (``name_type`` ``-``: not a file of a file system), its size
  and whole-media hashes, and its unreadable sectors as ``byte_runs`` (``img_offset`` and ``len``
  in bytes, ``fill="0"``: written as zeros);
* each file the acquisition wrote (``r``): image segments and hash sidecars, with the hashes its
  acquisition log recorded;
* each file an export wrote (from its manifest, when the manifest still has the hash the custody
  log recorded), the way fiwalk describes a file: its path relative to the file system's root,
  its TSK name type, size, allocation, inode, times and hashes. Times FAT keeps at a coarser
  grain carry ``prec`` (seconds): 2 for the modification time, 86400 for the access date.

Text is written by :mod:`xml.etree.ElementTree`, which escapes every value: names from evidence
never become markup. Characters XML 1.0 cannot hold (control characters, lone surrogates, which
hostile file names do contain) are written as ``\\xNN`` / ``\\uNNNN`` text instead, and so is a
carriage return, which a reader would otherwise get back as a line feed. A value the schema
cannot hold (a negative sector in a damaged log, a time outside the years it can write) is a
:class:`~bitwitness.errors.FormatError` naming the log or manifest, never an invalid document.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime

from bitwitness.errors import FormatError
from bitwitness.report.model import (
    EvidenceItem,
    Export,
    ExportedFile,
    HashValue,
    ReportData,
)

NS = "http://www.forensicswiki.org/wiki/Category:Digital_Forensics_XML"
DC = "http://purl.org/dc/elements/1.1/"
VERSION = "1.1.0"
#: The hash names DFXML 1.1 knows; others are left out (the JSON report has them all).
_DIGESTS = {"md5": "md5", "sha1": "sha1", "sha256": "sha256"}
#: The manifest's kinds (TSK's meta type, see report/browse/entries.py) as DFXML ``name_type``
#: letters. TSK's virtual directory ("V") has no letter in DFXML: it is a virtual entry ("v").
_NAME_TYPES = {"file": "r", "directory": "d", "link": "l", "fifo": "p", "char-device": "c",
               "block-device": "b", "socket": "s", "shadow": "h", "whiteout": "w",
               "virtual": "v", "virtual-directory": "v"}
#: Precision in seconds of the times FAT keeps coarser than a second (fiwalk writes the same).
_FAT_PRECISION = {"mtime": "2", "atime": "86400"}
_FAT = ("fat12", "fat16", "fat32")
#: An inode as the manifest writes it: ``12``, or on NTFS ``8-128-1`` (entry-type-id, whose
#: entry number is what DFXML's ``inode`` holds). ASCII digits only: ``str.isdigit`` takes
#: other scripts' digits, which xs:nonNegativeInteger does not.
_INODE = re.compile(r"([0-9]+)(?:-[0-9]+-[0-9]+)?")


def _tag(name: str) -> str:
    return f"{{{NS}}}{name}"


_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\r\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _xml_safe(text: str) -> str:
    """``text`` with every character XML 1.0 forbids (or would not give back) written as a
    visible escape."""
    return _NOT_XML.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100
                        else f"\\u{ord(m.group()):04x}", text)


def dfxml_name(name: str) -> str:
    """A file name for ``<filename>``: a backslash as ``\\\\``, a byte that is not UTF-8 as
    ``\\xNN``, then what XML cannot hold as :func:`_xml_safe` writes it.

    DFXML's ``filename`` is a plain string (its schema allows no attribute there for the raw
    bytes); doubling the backslash is what keeps an ext4 name holding ``\\xff`` literally apart
    from one holding the byte 0xFF, and makes every spelling read back to one name."""
    out = name.replace("\\", "\\\\")
    return _UNDECODED.sub(lambda m: f"\\x{ord(m.group()) - 0xDC00:02x}", out)


_UNDECODED = re.compile("[\udc80-\udcff]")


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, _tag(tag), {k: _xml_safe(v) for k, v in attrs.items()})
    if text is not None:
        element.text = _xml_safe(text)
    return element


def _time(value: datetime, where: str, *, zoned: bool = True) -> str:
    """``value`` as an xs:dateTime in UTC (``Z``); a naive time is taken as UTC.

    ``zoned=False`` writes the same clock reading with no zone, as fiwalk does for FAT: FAT
    records local times of an unknown zone, which a ``Z`` would falsely claim to be UTC.
    """
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    try:
        utc = value.astimezone(UTC)
        return utc.isoformat().replace("+00:00", "Z") if zoned else \
            utc.replace(tzinfo=None).isoformat()
    except OverflowError as exc:  # year 1 or 9999 moved across midnight by its offset
        raise FormatError(f"time {value.isoformat()} cannot be written in UTC", path=where) from exc


def _digests(parent: ET.Element, hashes: tuple[HashValue, ...]) -> None:
    for h in hashes:
        kind = _DIGESTS.get(h.algorithm.lower())
        if kind is not None:
            _sub(parent, "hashdigest", h.value.lower(), type=kind)


def _creator(root: ET.Element, data: ReportData) -> None:
    creator = _sub(root, "creator", version="1.0")
    _sub(creator, "program", "BitWitness")
    _sub(creator, "version", data.tool_version)
    env = _sub(creator, "execution_environment")
    _sub(env, "start_time", _time(data.generated, "report time"))


def _media(root: ET.Element, item: EvidenceItem) -> None:
    acq = item.acquisition
    if acq is None:
        return
    source = item.source.path if item.source is not None else ""
    obj = _sub(root, "fileobject")
    _sub(obj, "filename", f"evidence {item.evidence_id}: acquired media of {source}".strip())
    _sub(obj, "id", f"{item.evidence_id}/media")
    _sub(obj, "name_type", "-")
    if acq.media_size is not None:
        _sub(obj, "filesize", str(acq.media_size))
    sector = acq.media_sector_size or 512
    if acq.read_errors:
        runs = _sub(obj, "byte_runs")
        for r in acq.read_errors:
            if sector < 0 or r.first_sector < 0 or r.sector_count < 0:
                raise FormatError(f"read error range {r.first_sector} (+{r.sector_count}) of "
                                  f"{sector}-byte sectors cannot be a DFXML byte run",
                                  path=acq.log_path)
            _sub(runs, "byte_run", img_offset=str(r.first_sector * sector),
                 len=str(r.sector_count * sector), fill="0", type="unreadable")
    _digests(obj, acq.media_hashes)


def _image_files(root: ET.Element, item: EvidenceItem) -> None:
    acq = item.acquisition
    for out in acq.outputs if acq is not None else ():
        obj = _sub(root, "fileobject")
        _sub(obj, "filename", out.path)
        _sub(obj, "id", f"{item.evidence_id}/{out.role}/{out.path.rsplit('/', 1)[-1]}")
        _sub(obj, "name_type", "r")
        if out.size is not None:
            _sub(obj, "filesize", str(out.size))
        _digests(obj, out.hashes)


def _exported(root: ET.Element, export: Export, f: ExportedFile) -> None:
    """One exported file; ``id`` names the evidence item, the custody line that recorded the
    export and the file written, so two exports of one file are two distinct objects."""
    obj = _sub(root, "fileobject")
    path = f.source_name
    _sub(obj, "filename", dfxml_name(path.lstrip("/") or path))
    _sub(obj, "id", f"{export.evidence_id or '-'}/export-{export.line or 0}/{f.target}")
    _sub(obj, "name_type", _NAME_TYPES.get(f.kind, "-" if f.kind else "r"))
    if f.size is not None:
        _sub(obj, "filesize", str(f.size))
    _sub(obj, "unalloc" if f.deleted else "alloc", "1")
    inode = _INODE.fullmatch(f.inode)
    if inode is not None:
        _sub(obj, "inode", inode.group(1))
    fat = export.filesystem in _FAT
    for name, value in (("mtime", f.modified), ("ctime", f.changed), ("atime", f.accessed),
                        ("crtime", f.born)):
        if value is not None:
            prec = _FAT_PRECISION.get(name) if fat else None
            _sub(obj, name, _time(value, export.manifest, zoned=not fat),
                 **({"prec": prec} if prec else {}))
    _digests(obj, f.hashes)


def render_dfxml(data: ReportData) -> bytes:
    """The case as a DFXML document (UTF-8, with an XML declaration).

    Raises :class:`~bitwitness.errors.FormatError` for a log or manifest value that no valid
    DFXML can state.
    """
    ET.register_namespace("", NS)
    ET.register_namespace("dc", DC)
    root = ET.Element(_tag("dfxml"), {"version": VERSION})
    metadata = _sub(root, "metadata")
    ET.SubElement(metadata, f"{{{DC}}}type").text = "Disk image acquisition and export report"
    _creator(root, data)
    source = _sub(root, "source")
    for item in data.evidence:
        if item.source is not None and item.source.path:
            _sub(source, "image_filename", item.source.path)
        for out in item.acquisition.outputs if item.acquisition else ():
            if out.role == "image":
                _sub(source, "image_filename", out.path)
    for item in data.evidence:
        _media(root, item)
        _image_files(root, item)
    for export in data.exports:
        if not export.suspect:
            for f in export.files:
                _exported(root, export, f)
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"
