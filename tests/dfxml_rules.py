"""The rules of DFXML 1.1 that a document BitWitness writes must keep, checked without any schema.

The DFXML working group's ``dfxml.xsd`` cannot be installed here (no package ships it), so CI
cannot validate against it. These rules restate, as our own code, what that schema requires of
the elements BitWitness writes and of their neighbours in the same content models: which
children an element may have, in which order and how often (the schema's content models are
XML Schema 1.0 sequences, so order matters), which are required, which attributes exist, and
the value types (bool01, non-negative and positive integers, xs:dateTime, the ``name_type`` and
``hashdigest`` enumerations). ``tests/test_report_dfxml.py`` applies them to every shape of
document we produce, checks that they reject the mistakes a writer can make, and, where
``BITWITNESS_DFXML_XSD`` names the official schema, that it judges the same documents the same
way. Elements the schema has but BitWitness never writes (``volume``, ``parent_object``) are
reported as not covered rather than guessed at.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime

NS = "http://www.forensicswiki.org/wiki/Category:Digital_Forensics_XML"
DC = "http://purl.org/dc/elements/1.1/"
XML_NS = "http://www.w3.org/XML/1998/namespace"

#: The fifteen Dublin Core 1.1 elements: ``metadata`` holds exactly one element of that namespace,
#: validated strictly, so it must be one that the Dublin Core schema declares.
DC_ELEMENTS = frozenset({"title", "creator", "subject", "description", "publisher", "contributor",
                         "date", "type", "format", "identifier", "source", "language",
                         "relation", "coverage", "rights"})
#: ``name_type``: TSK's name-type letters, except its virtual directory "V".
NAME_TYPES = frozenset("-pcdbrlshwv")
#: ``hashdigest/@type``: five algorithms, each in lower or upper case only.
DIGEST_TYPES = frozenset({"md5", "sha1", "sha256", "md6", "other",
                          "MD5", "SHA1", "SHA256", "MD6", "OTHER"})

Check = Callable[[str], str | None]  # a value check: None when fine, else what is wrong

_INTEGER = re.compile(r"[+-]?[0-9]+")
_DATETIME = re.compile(r"(-?[0-9]{4,})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})"
                       r"(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})?")
_DATE = re.compile(r"(-?[0-9]{4,})-([0-9]{2})-([0-9]{2})(Z|[+-][0-9]{2}:[0-9]{2})?")


def string(_value: str) -> str | None:
    return None


def integer(value: str) -> str | None:
    return None if _INTEGER.fullmatch(value.strip()) else f"{value!r} is not an integer"


def non_negative(value: str) -> str | None:
    if integer(value) is not None or int(value) < 0:
        return f"{value!r} is not a non-negative integer"
    return None


def positive(value: str) -> str | None:
    if integer(value) is not None or int(value) < 1:
        return f"{value!r} is not a positive integer"
    return None


def bool01(value: str) -> str | None:
    """0 or 1, as a non-negative integer (so "01" and "+1" pass, "true" does not)."""
    if non_negative(value) is not None or int(value) > 1:
        return f"{value!r} is not 0 or 1"
    return None


def date_time(value: str) -> str | None:
    """xs:dateTime of XML Schema 1.0: a real calendar date, no year 0000, 24:00:00 only."""
    m = _DATETIME.fullmatch(value.strip())
    if m is None:
        return f"{value!r} is not an xs:dateTime"
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    if year == 0 or hour > 24 or minute > 59 or second > 59 or (
            hour == 24 and (minute, second, float(m.group(7) or 0)) != (0, 0, 0)):
        return f"{value!r} is not an xs:dateTime"
    try:
        date(max(year, 1) if year > 0 else 4, month, day)  # leap rule of a positive year
    except ValueError:
        return f"{value!r} has no such day"
    return None


def xs_date(value: str) -> str | None:
    m = _DATE.fullmatch(value.strip())
    if m is None or int(m.group(1)) == 0:
        return f"{value!r} is not an xs:date"
    try:
        datetime(int(m.group(1)), int(m.group(2)), int(m.group(3)))  # noqa: DTZ001 - a date
    except ValueError:
        return f"{value!r} has no such day"
    return None


def one_of(allowed: frozenset[str]) -> Check:
    def check(value: str) -> str | None:
        return None if value in allowed else f"{value!r} is not one of {sorted(allowed)}"
    return check


@dataclass(frozen=True)
class Particle:
    """One element of a content model: its name, how often it may occur (``most`` None for
    unbounded) and the rule for its own content."""

    name: str
    least: int
    most: int | None
    rule: str  # key into RULES


@dataclass(frozen=True)
class Rule:
    """An element's content: simple text of a type, or children (a sequence or an ``all``
    group), and the attributes it may carry with their types (``required`` among them)."""

    text: Check | None = None  # simple content of this type; None: element-only content
    children: tuple[Particle, ...] = ()
    unordered: bool = False  # xs:all: each child at most as often as allowed, any order
    attributes: tuple[tuple[str, Check], ...] = ()
    required: frozenset[str] = frozenset()
    covered: bool = True  # False: the schema defines it, these rules do not check it


def _p(name: str, least: int = 0, most: int | None = 1, rule: str | None = None) -> Particle:
    return Particle(name, least, most, rule or name)


_DFTIME = Rule(text=date_time, attributes=(("prec", non_negative),))
_DIGEST = Rule(text=string, attributes=(("type", one_of(DIGEST_TYPES)), ("base", non_negative)))

RULES: dict[str, Rule] = {
    "dfxml": Rule(children=(_p("metadata", 1), _p("creator"), _p("source", 1),
                            _p("volume", 0, None), _p("fileobject", 0, None)),
                  attributes=(("version", string), ("catalogDesignDate", xs_date)),
                  required=frozenset({"version"})),
    "creator": Rule(children=(_p("program"), _p("version"), _p("build_environment"),
                              _p("execution_environment"), _p("library", 0, None)),
                    attributes=(("version", string),)),
    "program": Rule(text=string),
    "version": Rule(text=string),  # untyped in the schema; we only ever write text
    "build_environment": Rule(children=(_p("compiler"), _p("compilation_date"),
                                        _p("library", 0, None))),
    "compiler": Rule(text=string),
    "compilation_date": Rule(text=date_time),
    "library": Rule(attributes=(("name", string), ("version", string))),
    "execution_environment": Rule(
        children=tuple(_p(n) for n in ("os_sysname", "os_release", "os_version", "host", "arch",
                                       "command_line", "uid", "username", "start_time")),
        unordered=True),
    "os_sysname": Rule(text=string), "os_release": Rule(text=string),
    "os_version": Rule(text=string), "host": Rule(text=string), "arch": Rule(text=string),
    "command_line": Rule(text=string), "uid": Rule(text=non_negative),
    "username": Rule(text=string), "start_time": Rule(text=date_time),
    "source": Rule(children=(_p("image_filename", 0, None),)),
    "image_filename": Rule(text=string),
    "volume": Rule(covered=False),
    "parent_object": Rule(covered=False),
    "fileobject": Rule(children=(
        _p("parent_object"), _p("filename", 1, None), _p("partition"), _p("id"),
        _p("name_type", 1), _p("filesize"), _p("unalloc"), _p("alloc"), _p("used"),
        _p("unused"), _p("orphan"), _p("compressed"), _p("inode"), _p("meta_type"), _p("mode"),
        _p("nlink"), _p("uid"), _p("gid"), _p("mtime"), _p("ctime"), _p("atime"), _p("crtime"),
        _p("seq"), _p("dtime"), _p("bkup_time"), _p("link_target"), _p("libmagic"),
        _p("byte_runs"), _p("hashdigest", 0, None))),
    "filename": Rule(text=string, attributes=((f"{{{XML_NS}}}lang", string),)),
    "partition": Rule(text=positive),
    "id": Rule(text=string),
    "name_type": Rule(text=one_of(NAME_TYPES)),
    "filesize": Rule(text=integer),
    "unalloc": Rule(text=bool01), "alloc": Rule(text=bool01), "used": Rule(text=bool01),
    "unused": Rule(text=bool01), "orphan": Rule(text=bool01), "compressed": Rule(text=bool01),
    "inode": Rule(text=non_negative), "meta_type": Rule(text=non_negative),
    "mode": Rule(text=non_negative), "nlink": Rule(text=non_negative),
    "gid": Rule(text=non_negative), "seq": Rule(text=non_negative),
    "mtime": _DFTIME, "ctime": _DFTIME, "atime": _DFTIME, "crtime": _DFTIME,
    "dtime": _DFTIME, "bkup_time": _DFTIME,
    "link_target": Rule(text=string), "libmagic": Rule(text=string),
    "byte_runs": Rule(children=(_p("byte_run", 0, None),)),
    "byte_run": Rule(children=(_p("hashdigest", 0, None),),
                     attributes=(*((a, non_negative) for a in (
                         "file_offset", "fs_offset", "img_offset", "len", "uncompressed_len")),
                         ("fill", string), ("type", string))),
    "hashdigest": _DIGEST,
    "metadata": Rule(),  # a wildcard: see _metadata
}


def _local(tag: str, where: str, problems: list[str]) -> str | None:
    if not tag.startswith(f"{{{NS}}}"):
        problems.append(f"{where}: {tag} is not in the DFXML namespace")
        return None
    return tag[len(NS) + 2:]


def _sequence(children: list[str], model: tuple[Particle, ...], where: str) -> list[str]:
    """Match child names against a sequence; the schema's sequences are deterministic, so a
    greedy walk decides (each name appears once in a model)."""
    problems: list[str] = []
    at, count = 0, 0
    for name in children:
        while at < len(model) and model[at].name != name:
            if count < model[at].least:
                problems.append(f"{where}: {model[at].name} missing before {name}")
            at, count = at + 1, 0
        if at == len(model):
            known = {p.name for p in model}
            problems.append(f"{where}: {name} " + ("out of order" if name in known
                                                   else "not allowed here"))
            return problems
        count += 1
        most = model[at].most
        if most is not None and count > most:
            problems.append(f"{where}: {name} more than {most} time(s)")
    for particle in model[at:]:
        if count < particle.least:
            problems.append(f"{where}: {particle.name} missing")
        count = 0
    return problems


def _unordered(children: list[str], model: tuple[Particle, ...], where: str) -> list[str]:
    problems = []
    allowed = {p.name: p for p in model}
    for name in set(children):
        if name not in allowed:
            problems.append(f"{where}: {name} not allowed here")
        elif (most := allowed[name].most) is not None and children.count(name) > most:
            problems.append(f"{where}: {name} more than {most} time(s)")
    problems += [f"{where}: {p.name} missing" for p in model
                 if p.least and p.name not in children]
    return problems


def _attributes(element: ET.Element, rule: Rule, where: str, problems: list[str]) -> None:
    known = dict(rule.attributes)
    for attr, value in element.attrib.items():
        if attr not in known:
            problems.append(f"{where}: attribute {attr} not allowed")
        elif (wrong := known[attr](value)) is not None:
            problems.append(f"{where}/@{attr}: {wrong}")
    problems += [f"{where}: attribute {a} missing" for a in rule.required
                 if a not in element.attrib]


def _simple(element: ET.Element, rule: Rule, where: str, problems: list[str]) -> None:
    """Text of a type, or (no text rule) an empty element such as ``library``."""
    if len(element):
        problems.append(f"{where}: has child elements, the schema allows text only")
    if rule.text is not None and (wrong := rule.text(element.text or "")) is not None:
        problems.append(f"{where}: {wrong}")
    if rule.text is None and (element.text or "").strip():
        problems.append(f"{where}: has text, the schema allows none")


def _element(element: ET.Element, name: str, where: str, problems: list[str]) -> None:
    if name == "metadata":
        _metadata(element, problems)
        return
    rule = RULES[name]
    if not rule.covered:
        problems.append(f"{where}: {name} is not covered by these rules")
        return
    _attributes(element, rule, where, problems)
    if rule.text is not None or not rule.children:
        _simple(element, rule, where, problems)
        return
    kids = list(element)
    if (element.text or "").strip() or any((k.tail or "").strip() for k in kids):
        problems.append(f"{where}: text between child elements")
    names = [_local(kid.tag, where, problems) for kid in kids]
    match = _unordered if rule.unordered else _sequence
    problems += match([n for n in names if n is not None], rule.children, where)
    allowed = {p.name: p.rule for p in rule.children}
    seen: dict[str, int] = {}
    for kid, local in zip(kids, names, strict=True):
        if local in allowed:
            seen[local] = seen.get(local, 0) + 1
            _element(kid, allowed[local], f"{where}/{local}[{seen[local]}]", problems)


def _metadata(element: ET.Element, problems: list[str]) -> None:
    """``metadata``: exactly one element, of the Dublin Core namespace and known to it (the
    schema's strict wildcard), holding text only."""
    kids = list(element)
    if element.attrib:
        problems.append("/dfxml/metadata: attributes not allowed")
    if len(kids) != 1:
        problems.append(f"/dfxml/metadata: {len(kids)} elements, the schema wants exactly one")
    for kid in kids:
        if not kid.tag.startswith(f"{{{DC}}}") or kid.tag[len(DC) + 2:] not in DC_ELEMENTS:
            problems.append(f"/dfxml/metadata: {kid.tag} is not a Dublin Core element")
        elif len(kid) or set(kid.attrib) - {f"{{{XML_NS}}}lang"}:
            problems.append(f"/dfxml/metadata/{kid.tag}: Dublin Core elements hold text only")


def violations(document: bytes) -> list[str]:
    """Every way ``document`` breaks the rules above (empty when it keeps them all)."""
    root = ET.fromstring(document)  # noqa: S314 - documents the tests made
    if root.tag != f"{{{NS}}}dfxml":
        return [f"the root is {root.tag}, not dfxml in the DFXML namespace"]
    problems: list[str] = []
    _element(root, "dfxml", "/dfxml", problems)
    return problems
