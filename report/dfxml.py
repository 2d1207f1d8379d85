"""The report as DFXML (Digital Forensics XML, schema version 1.1.0).

One document for the case. ``creator`` names BitWitness, the libraries of the first acquisition
and the host; ``source`` lists every evidence source and image file. Then one ``fileobject`` per
thing a court may ask about, in the element order the DFXML schema fixes:

* each evidence item's acquired media (``name_type`` ``-``: not a file of a file system), its size
  and whole-media hashes, and its unreadable sectors as ``byte_runs`` (``img_offset`` and ``len``
  in bytes, ``fill="0"``: written as zeros);
* each image file (``r``) with the hashes its acquisition log recorded;
* each file an export wrote (from its manifest, when the manifest still has the hash the custody
  log recorded): its path inside the evidence, size, inode, times and hashes, ``unalloc`` for a
  deleted one.

Text is written by :mod:`xml.etree.ElementTree`, which escapes every value: names from evidence
never become markup. Characters XML 1.0 cannot hold at all (control characters, lone surrogates,
which hostile file names do contain) are written as ``\\xNN`` / ``\\uNNNN`` text instead.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime

from bitwitness.report.model import EvidenceItem, ExportedFile, HashValue, ReportData

NS = "http://www.forensicswiki.org/wiki/Category:Digital_Forensics_XML"
DC = "http://purl.org/dc/elements/1.1/"
VERSION = "1.1.0"
#: The hash names DFXML 1.1 knows; others are left out (the JSON report has them all).
_DIGESTS = {"md5": "md5", "sha1": "sha1", "sha256": "sha256"}


def _tag(name: str) -> str:
    return f"{{{NS}}}{name}"


_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _xml_safe(text: str) -> str:
    """``text`` with every character XML 1.0 forbids written as a visible escape."""
    return _NOT_XML.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100
                        else f"\\u{ord(m.group()):04x}", text)


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, _tag(tag), {k: _xml_safe(v) for k, v in attrs.items()})
    if text is not None:
        element.text = _xml_safe(text)
    return element


def _time(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _digests(parent: ET.Element, hashes: tuple[HashValue, ...]) -> None:
    for h in hashes:
        kind = _DIGESTS.get(h.algorithm.lower())
        if kind is not None:
            _sub(parent, "hashdigest", h.value.lower(), type=kind)


def _creator(root: ET.Element, data: ReportData) -> None:
    creator = _sub(root, "creator", version="1.0")
    _sub(creator, "program", "BitWitness")
    _sub(creator, "version", data.tool_version)
    acq = next((i.acquisition for i in data.evidence if i.acquisition is not None), None)
    if acq is not None and acq.libraries:
        build = _sub(creator, "build_environment")
        for name, version in acq.libraries:
            if version:
                _sub(build, "library", name=name, version=version)
    env = _sub(creator, "execution_environment")
    if acq is not None and acq.hostname:
        _sub(env, "host", acq.hostname)
    _sub(env, "start_time", _time(data.generated))


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
            _sub(runs, "byte_run", img_offset=str(r.first_sector * sector),
                 len=str(r.sector_count * sector), fill="0", type="unreadable")
    _digests(obj, acq.media_hashes)


def _image_files(root: ET.Element, item: EvidenceItem) -> None:
    acq = item.acquisition
    for out in acq.outputs if acq is not None else ():
        obj = _sub(root, "fileobject")
        _sub(obj, "filename", out.path)
        _sub(obj, "id", f"{item.evidence_id}/image/{out.path.rsplit('/', 1)[-1]}")
        _sub(obj, "name_type", "r")
        if out.size is not None:
            _sub(obj, "filesize", str(out.size))
        _digests(obj, out.hashes)


def _exported(root: ET.Element, evidence_id: str | None, f: ExportedFile) -> None:
    obj = _sub(root, "fileobject")
    _sub(obj, "filename", f.source)
    _sub(obj, "id", f"{evidence_id or '-'}/export/{f.target}")
    _sub(obj, "name_type", "r")
    if f.size is not None:
        _sub(obj, "filesize", str(f.size))
    if f.deleted:
        _sub(obj, "unalloc", "1")
    else:
        _sub(obj, "alloc", "1")
    if f.inode.isdigit():
        _sub(obj, "inode", f.inode)
    for name, value in (("mtime", f.modified), ("ctime", f.changed), ("atime", f.accessed),
                        ("crtime", f.born)):
        if value is not None:
            _sub(obj, name, _time(value))
    _digests(obj, f.hashes)


def render_dfxml(data: ReportData) -> bytes:
    """The case as a DFXML document (UTF-8, with an XML declaration)."""
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
            _sub(source, "image_filename", out.path)
    for item in data.evidence:
        _media(root, item)
        _image_files(root, item)
    for export in data.exports:
        if not export.suspect:
            for f in export.files:
                _exported(root, export.evidence_id, f)
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"
