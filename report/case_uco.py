"""The report as CASE/UCO JSON-LD (CASE 1.x, the Cyber-investigation Analysis Standard Expression).

What a case knows becomes a graph that other forensic tools read: the investigation, the examiner
(``uco-identity:Person``), the tool (``uco-tool:Tool``), each evidence source (a
``uco-observable:Device`` with its model and serial, or the ``File`` it was read from) with the
hashes of its whole media, the image files with theirs, one ``case-investigation:
InvestigativeAction`` per custody event (acquire, verify, export, transfer and the other physical
events, with performer, instrument, object, result and times in UTC), and a
``ProvenanceRecord`` per evidence item naming its exhibit number and the files that stand for it.

Each exported file is two ``File`` objects: the original in the evidence (its path as the file
system stores it, its inode, an ``ExtInodeFacet`` or ``NTFSFileFacet`` where UCO has one for that
file system) and the copy the export wrote (path, size, hashes), joined by an
``ObservableRelationship`` "Copied_From"; the original is "Contained_Within" the evidence source
and is the export action's object, the copy its result. Why both: the copy's name is escaped for
the examiner's host (``DELETEME-%3Cb%3E``, ``café~17`` for the second of two names that differ
only in Unicode composition), so only the original says which file of the evidence it was. A
path that is not valid UTF-8 cannot be an ``xsd:string``: ``filePath`` then spells each
undecodable byte ``\\xNN`` (as the export manifest does), which a name holding those four
characters also reads as, so its exact bytes go in ``drafting:filePathHex`` (``xsd:hexBinary``;
UCO has no term for them, and ``drafting:`` is the namespace CASE keeps for terms it lacks),
declared in the graph.

Node identifiers end in a UUID (as UCO asks) derived from the case folder and what the node
stands for, so the same case gives the same identifiers in every report. Hashes use the
``HashNameVocab`` names (plain strings) and ``xsd:hexBinary`` values.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from bitwitness.report.model import (
    CustodyEntry,
    EvidenceItem,
    Export,
    ExportedFile,
    HashValue,
    ReportData,
)

CONTEXT = {
    "kb": "http://example.org/kb/",
    "drafting": "http://example.org/ontology/drafting/",
    "owl": "http://www.w3.org/2002/07/owl#",
    "rdfs": "http://www.w3.org/2000/01/rdf-schema#",
    "case-investigation": "https://ontology.caseontology.org/case/investigation/",
    "uco-action": "https://ontology.unifiedcyberontology.org/uco/action/",
    "uco-core": "https://ontology.unifiedcyberontology.org/uco/core/",
    "uco-identity": "https://ontology.unifiedcyberontology.org/uco/identity/",
    "uco-observable": "https://ontology.unifiedcyberontology.org/uco/observable/",
    "uco-tool": "https://ontology.unifiedcyberontology.org/uco/tool/",
    "uco-types": "https://ontology.unifiedcyberontology.org/uco/types/",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
}

#: Our algorithm names -> UCO's HashNameVocab.
_HASH_NAMES = {"md5": "MD5", "sha1": "SHA1", "sha224": "SHA224", "sha256": "SHA256",
               "sha384": "SHA384", "sha512": "SHA512"}

#: Custody actions -> the name of the investigative action.
_ACTION_NAMES = {"acquire": "acquire", "verify": "verify", "export": "export",
                 "transferred": "transfer", "convert": "convert", "restore": "restore",
                 "report": "report"}


class _Graph:
    """Nodes with stable UUID identifiers."""

    def __init__(self, case_root: str) -> None:
        self.namespace = uuid.uuid5(uuid.NAMESPACE_URL, f"bitwitness-case:{case_root}")
        self.nodes: list[dict[str, Any]] = []

    def node_id(self, kind: str, key: str) -> str:
        return f"kb:{kind}-{uuid.uuid5(self.namespace, f'{kind}:{key}')}"

    def add(self, kind: str, key: str, type_: str, **props: Any) -> str:
        node_id = self.node_id(kind, key)
        self.nodes.append({"@id": node_id, "@type": type_,
                           **{k: v for k, v in props.items() if v not in (None, "", [])}})
        return node_id


def _when(value: datetime | None) -> dict[str, str] | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return {"@type": "xsd:dateTime",
            "@value": value.astimezone(UTC).isoformat().replace("+00:00", "Z")}


def _integer(value: int | None) -> dict[str, str] | None:
    return None if value is None else {"@type": "xsd:integer", "@value": str(value)}


def _ref(node_id: str) -> dict[str, str]:
    return {"@id": node_id}


def _hashes(graph: _Graph, key: str, hashes: tuple[HashValue, ...]) -> list[dict[str, Any]]:
    out = []
    for h in hashes:
        name = _HASH_NAMES.get(h.algorithm.lower())
        if name is None:
            continue
        out.append({"@id": graph.node_id("Hash", f"{key}:{h.algorithm}"),
                    "@type": "uco-types:Hash",
                    "uco-types:hashMethod": name,
                    "uco-types:hashValue": {"@type": "xsd:hexBinary",
                                            "@value": h.value.lower()}})
    return out


def _content_facet(graph: _Graph, key: str, size: int | None,
                   hashes: tuple[HashValue, ...]) -> dict[str, Any]:
    facet: dict[str, Any] = {"@id": graph.node_id("ContentDataFacet", key),
                             "@type": "uco-observable:ContentDataFacet"}
    if size is not None:
        facet["uco-observable:sizeInBytes"] = _integer(size)
    listed = _hashes(graph, key, hashes)
    if listed:
        facet["uco-observable:hash"] = listed
    return facet


#: The one term of ours, for a path's exact bytes, declared in the graph that uses it.
PATH_HEX = "drafting:filePathHex"
_PATH_HEX_TERM = {
    "@id": PATH_HEX, "@type": "owl:DatatypeProperty",
    "rdfs:label": "filePathHex",
    "rdfs:range": {"@id": "xsd:hexBinary"},
    "rdfs:comment": "The exact bytes of a file's path in its file system, where they are not "
                    "valid UTF-8 and observable:filePath therefore spells each byte that is "
                    "not as \\xNN (as BitWitness export manifests do in source_hex).",
}


def _file(graph: _Graph, key: str, path: str, size: int | None,
          hashes: tuple[HashValue, ...] = ()) -> str:
    name = path.rsplit("/", 1)[-1]
    facets: list[dict[str, Any]] = [{
        "@id": graph.node_id("FileFacet", key), "@type": "uco-observable:FileFacet",
        "uco-observable:fileName": name, "uco-observable:filePath": path,
        **({"uco-observable:sizeInBytes": _integer(size)} if size is not None else {})}]
    if hashes:
        facets.append(_content_facet(graph, key, size, hashes))
    return graph.add("File", key, "uco-observable:File", **{"uco-core:hasFacet": facets})


def _inode_facet(graph: _Graph, key: str, filesystem: str,
                 inode: str) -> dict[str, Any] | None:
    """The file system's own facet holding the inode, where UCO has one: ext's inode number,
    NTFS's MFT entry (the first number of TSK's ``33-128-1``); None elsewhere (the original's
    description names the inode on every file system)."""
    number = inode.split("-", 1)[0]
    if not number.isdigit():
        return None
    if filesystem.startswith("ext"):
        return {"@id": graph.node_id("ExtInodeFacet", key),
                "@type": "uco-observable:ExtInodeFacet",
                "uco-observable:extInodeID": _integer(int(number))}
    if filesystem == "ntfs":
        return {"@id": graph.node_id("NTFSFileFacet", key),
                "@type": "uco-observable:NTFSFileFacet",
                "uco-observable:entryID": _integer(int(number))}
    return None


def _original(graph: _Graph, export: Export, f: ExportedFile) -> str:
    """The file as the evidence holds it: path as stored (``filePath``; its exact bytes in
    :data:`PATH_HEX` where it is not UTF-8), inode, size, allocation."""
    key = f"original:{export.manifest}:{f.inode}:{f.source_hex or f.source}"
    facet: dict[str, Any] = {
        "@id": graph.node_id("FileFacet", key), "@type": "uco-observable:FileFacet",
        "uco-observable:fileName": f.source.rsplit("/", 1)[-1],
        "uco-observable:filePath": f.source,
        "uco-observable:allocationStatus": "deleted" if f.deleted else "allocated"}
    if f.size is not None:
        facet["uco-observable:sizeInBytes"] = _integer(f.size)
    if f.source_hex:
        facet[PATH_HEX] = {"@type": "xsd:hexBinary", "@value": f.source_hex}
    facets = [facet]
    if (inode := _inode_facet(graph, key, export.filesystem, f.inode)) is not None:
        facets.append(inode)
    where = f" in the {export.filesystem} file system" if export.filesystem else ""
    exact = f" (path bytes in hex: {f.source_hex})" if f.source_hex else ""
    return graph.add("File", key, "uco-observable:File", **{
        "uco-core:description": f"{f.source}{exact}, inode {f.inode or 'unknown'}{where} of "
                                f"evidence {export.evidence_id or 'unknown'}, as exported",
        "uco-core:hasFacet": facets})


def _relationship(graph: _Graph, source: str, target: str, kind: str) -> str:
    """``source`` is ``kind`` ``target`` (UCO's ObservableObjectRelationshipVocab names)."""
    return graph.add("Relationship", f"{kind}:{source}:{target}",
                     "uco-observable:ObservableRelationship",
                     **{"uco-core:source": [_ref(source)], "uco-core:target": _ref(target),
                        "uco-core:kindOfRelationship": kind,
                        "uco-core:isDirectional": True})


def _source(graph: _Graph, item: EvidenceItem) -> str | None:
    """The evidence source: a Device (or the File read) with the whole media's hashes."""
    src, acq = item.source, item.acquisition
    if src is None:
        return None
    key = f"source:{item.evidence_id}"
    media = _content_facet(graph, key, acq.media_size if acq else src.size,
                           acq.media_hashes if acq else ())
    if src.kind == "file":
        file_facet = {"@id": graph.node_id("FileFacet", key), "@type": "uco-observable:FileFacet",
                      "uco-observable:fileName": src.path.rsplit("/", 1)[-1],
                      "uco-observable:filePath": src.path}
        return graph.add("File", key, "uco-observable:File",
                         **{"uco-core:description": f"evidence {item.evidence_id}: the file that "
                                                    "was acquired",
                            "uco-core:hasFacet": [file_facet, media]})
    device = {"@id": graph.node_id("DeviceFacet", key), "@type": "uco-observable:DeviceFacet",
              **{k: v for k, v in (("uco-observable:model", src.model),
                                   ("uco-observable:serialNumber", src.serial)) if v}}
    return graph.add("Device", key, "uco-observable:Device",
                     **{"uco-core:name": src.path,
                        "uco-core:description": item.description or None,
                        "uco-core:hasFacet": [device, media]})


def _event_time(entry: CustodyEntry) -> datetime | None:
    """When it happened: ``occurred_at`` for a physical event recorded later, else the record."""
    for key, value in entry.details:
        if key == "occurred_at":
            try:
                return datetime.fromisoformat(value)
            except ValueError:
                break
    return entry.time


def render_case(data: ReportData) -> bytes:
    """The case as CASE/UCO JSON-LD (UTF-8)."""
    graph = _Graph(data.case_root)
    examiner = graph.add("Person", data.examiner or "examiner", "uco-identity:Person",
                         **{"uco-core:name": data.examiner or "unknown examiner"})
    tool = graph.add("Tool", data.tool_version, "uco-tool:Tool",
                     **{"uco-core:name": "BitWitness", "uco-tool:version": data.tool_version,
                        "uco-tool:toolType": "forensic acquisition"})
    objects: dict[str, list[str]] = {}  # evidence ID -> the source, then its image files
    for item in data.evidence:
        found = [n for n in (_source(graph, item),) if n]
        acq = item.acquisition
        for out in acq.outputs if acq else ():
            found.append(_file(graph, f"image:{out.path}", out.path, out.size, out.hashes))
        objects[item.evidence_id] = found
    actions = []
    for entry in data.custody:
        actions.append(_action(graph, data, entry, objects=objects, examiner=examiner,
                               tool=tool))
    records = []
    for item in data.evidence:
        images = objects.get(item.evidence_id, [])[1:] or objects.get(item.evidence_id, [])
        records.append(graph.add(
            "ProvenanceRecord", item.evidence_id, "case-investigation:ProvenanceRecord",
            **{"case-investigation:exhibitNumber": item.evidence_id,
               "uco-core:description": item.description or None,
               "uco-core:object": [_ref(n) for n in images]}))
    for action_id, entry in zip(actions, data.custody, strict=True):
        if entry.action == "acquire" and entry.evidence_id in {i.evidence_id
                                                               for i in data.evidence}:
            node = next(n for n in graph.nodes if n["@id"] == action_id)
            record = graph.node_id("ProvenanceRecord", entry.evidence_id or "")
            node.setdefault("uco-action:result", []).append(_ref(record))
    graph.add("Investigation", data.case_number, "case-investigation:Investigation",
              **{"uco-core:name": data.case_number,
                 "uco-core:description": f"Case {data.case_number} as recorded in "
                                         f"{data.case_root}; custody log "
                                         f"{data.integrity.state.value}",
                 "uco-core:object": [_ref(n) for n in (*actions, *records)]})
    nodes = graph.nodes
    if any(PATH_HEX in facet for node in nodes for facet in node.get("uco-core:hasFacet", ())):
        nodes = [*nodes, _PATH_HEX_TERM]
    doc = {"@context": CONTEXT, "@graph": nodes}
    return (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode()


def _action(graph: _Graph, data: ReportData, entry: CustodyEntry, *,
            objects: dict[str, list[str]], examiner: str, tool: str) -> str:
    """One custody event as an investigative action."""
    targets = objects.get(entry.evidence_id or "", [])
    performer = examiner
    if entry.actor and entry.actor != data.examiner:
        performer = graph.add("Person", entry.actor, "uco-identity:Person",
                              **{"uco-core:name": entry.actor})
    props: dict[str, Any] = {
        "uco-core:name": _ACTION_NAMES.get(entry.action, entry.action),
        "uco-core:description": "; ".join(f"{k}: {v}" for k, v in entry.details
                                          if k not in ("tool_version", "host")) or None,
        "uco-action:startTime": _when(_event_time(entry)),
        "uco-action:performer": _ref(performer),
    }
    if entry.action in ("acquire", "verify", "export", "convert", "restore", "report"):
        props["uco-action:instrument"] = _ref(tool)
    if entry.action == "acquire" and targets:
        props["uco-action:object"] = [_ref(targets[0])]
        props["uco-action:result"] = [_ref(n) for n in targets[1:]]
    elif targets:
        props["uco-action:object"] = [_ref(n) for n in targets]
    if entry.action == "export":
        export = _export_for(data, entry)
        if export is not None and export.manifest:
            hashes = ((HashValue("sha256", export.manifest_sha256),)
                      if export.manifest_sha256 else ())
            results = [_file(graph, f"manifest:{export.manifest}", export.manifest, None, hashes)]
            folder = export.manifest.rsplit("/", 1)[0] if "/" in export.manifest else ""
            originals = []
            for f in export.files:
                original = _original(graph, export, f)
                copy = _file(graph, f"exported:{export.manifest}:{f.target}",
                             f"{folder}/{f.target}" if folder else f.target, f.size, f.hashes)
                _relationship(graph, copy, original, "Copied_From")
                if targets:  # the evidence source the original was read from
                    _relationship(graph, original, targets[0], "Contained_Within")
                originals.append(original)
                results.append(copy)
            props["uco-action:object"] = [*props.get("uco-action:object", ()),
                                          *(_ref(n) for n in originals)]
            props["uco-action:result"] = [_ref(n) for n in results]
    return graph.add("InvestigativeAction", f"event:{entry.line}:{entry.seq}",
                     "case-investigation:InvestigativeAction", **props)


def _export_for(data: ReportData, entry: CustodyEntry) -> Export | None:
    return next((e for e in data.exports if e.line == entry.line), None)
