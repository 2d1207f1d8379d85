"""Case templates: which fields a case records and how its reports are headed.

A template is a YAML file ``<name>.yaml`` (the key list is documented at the top of
``case_templates/default.yaml``). The built-in ones ship as package data
(``bitwitness.case_templates``); a lab adds its own folders with ``--templates DIR`` or the
environment variable ``BITWITNESS_TEMPLATES`` (folders separated by ``os.pathsep``).

Search order, first match wins: ``--templates`` folders in the order given, then the
``BITWITNESS_TEMPLATES`` folders in order, then the built-in templates. So a lab template named like
a built-in one replaces it, which is how a lab customises ``default`` without forking BitWitness.

A template is validated completely when it is loaded (field names, regular expressions, report
sections, placeholders), so that a typo in a lab template fails at ``case new`` with the file named,
not later inside a report for court.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from bitwitness.errors import CaseFieldError, InputError, TemplateError

ENV_VAR = "BITWITNESS_TEMPLATES"
BUILTIN_SOURCE = "built-in"

#: Report sections a template may list, in the order a report usually shows them. The report
#: engine (``bitwitness.report``) renders the listed ones in the listed order.
REPORT_SECTIONS: tuple[str, ...] = (
    "summary",        # one-paragraph outcome: items, verdicts, custody status
    "case",           # the case fields with their labels
    "evidence",       # the evidence items and their folders
    "acquisition",    # per item: source, device details, options, timings
    "hashes",         # per item: media hashes and output file hashes
    "read-errors",    # per item: unreadable sector ranges
    "verification",   # per item: verification verdicts
    "exports",        # per item: files exported from the evidence and their manifests
    "custody",        # the custody timeline and the result of verifying its hash chain
    "environment",    # tool, library and host versions
    "disclaimer",     # the template's disclaimer text
    "signature",      # examiner signature block
)

_FIELD_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
_TEMPLATE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_PLACEHOLDER = re.compile(r"\{([a-z][a-z0-9_]*)\}")
_TEMPLATE_KEYS = frozenset({"name", "description", "fields", "report"})
_FIELD_KEYS = frozenset({"name", "label", "required", "description", "pattern"})
_REPORT_KEYS = frozenset({"title", "agency_header", "disclaimer", "sections"})


@dataclass(frozen=True)
class TemplateField:
    """One field of a case: ``pattern`` (if any) must match the whole value."""

    name: str
    label: str
    required: bool
    description: str = ""
    pattern: str | None = None

    def problem(self, value: str) -> str | None:
        """Why ``value`` is not acceptable for this field, or ``None`` when it is."""
        if self.required and not value.strip():
            return f"{self.name} ({self.label}) is required"
        if value and self.pattern is not None and re.fullmatch(self.pattern, value) is None:
            return (f"field {self.name} ({self.label}): {value!r} does not match the pattern "
                    f"{self.pattern!r}")
        return None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "label": self.label, "required": self.required,
                               "description": self.description}
        if self.pattern is not None:
            out["pattern"] = self.pattern
        return out


@dataclass(frozen=True)
class ReportSettings:
    """What the report engine puts around the facts: title, agency header, disclaimer, sections.

    ``title``, ``agency_header`` and ``disclaimer`` may contain ``{field}`` placeholders; call
    :meth:`render` with the case fields to fill them.
    """

    title: str = "Forensic acquisition report"
    agency_header: str = ""
    disclaimer: str = ""
    sections: tuple[str, ...] = REPORT_SECTIONS

    def render(self, fields: Mapping[str, str]) -> ReportSettings:
        """These settings with ``{field}`` placeholders replaced by the case's values."""
        def fill(text: str) -> str:
            return _PLACEHOLDER.sub(lambda m: str(fields.get(m.group(1), m.group(0))), text)

        return ReportSettings(fill(self.title), fill(self.agency_header), fill(self.disclaimer),
                              self.sections)

    def to_dict(self) -> dict[str, Any]:
        return {"title": self.title, "agency_header": self.agency_header,
                "disclaimer": self.disclaimer, "sections": list(self.sections)}


@dataclass(frozen=True)
class CaseTemplate:
    """A validated template. ``source`` is ``"built-in"`` or the path of the lab's YAML file."""

    name: str
    description: str
    fields: tuple[TemplateField, ...]
    report: ReportSettings = field(default_factory=ReportSettings)
    source: str = BUILTIN_SOURCE

    def field_named(self, name: str) -> TemplateField | None:
        return next((f for f in self.fields if f.name == name), None)

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    def missing(self, values: Mapping[str, str]) -> list[TemplateField]:
        """The required fields ``values`` has no (non-blank) value for, in template order."""
        return [f for f in self.fields if f.required and not values.get(f.name, "").strip()]

    def check_values(self, values: Mapping[str, str]) -> None:
        """Refuse unknown fields and values that fail their pattern (missing ones are allowed).

        Raises :class:`CaseFieldError` naming the field, so the user knows what to fix.
        """
        unknown = [name for name in values if self.field_named(name) is None]
        if unknown:
            raise CaseFieldError(
                f"unknown field{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} for template "
                f"{self.name} (its fields: {', '.join(self.field_names)})", fields=unknown)
        for name, value in values.items():
            tf = self.field_named(name)
            if tf is not None and value and (msg := tf.problem(value)) is not None:
                raise CaseFieldError(msg, fields=[name])

    def complete(self, values: Mapping[str, str]) -> dict[str, str]:
        """All fields in template order, after checking them; raises naming every missing one."""
        self.check_values(values)
        missing = self.missing(values)
        if missing:
            names = ", ".join(f.name for f in missing)
            raise CaseFieldError(
                f"missing required field{'s' if len(missing) > 1 else ''}: {names} "
                f"(give {'them' if len(missing) > 1 else 'it'} with --set NAME=VALUE)",
                fields=[f.name for f in missing])
        return {f.name: values.get(f.name, "").strip() for f in self.fields}

    def to_dict(self) -> dict[str, Any]:
        """The template as stored in ``case.yaml`` (so a case never depends on a later edit)."""
        return {"name": self.name, "description": self.description,
                "fields": [f.to_dict() for f in self.fields], "report": self.report.to_dict()}

    @classmethod
    def from_dict(cls, data: Any, *, source: str, name: str | None = None) -> CaseTemplate:
        """Build and validate a template from parsed YAML; raises :class:`TemplateError`."""
        return _parse_template(data, source=source, name=name)


# --- parsing -----------------------------------------------------------------------------------


def _fail(source: str, message: str) -> TemplateError:
    return TemplateError(f"template {source}: {message}")


def _text(data: Mapping[str, Any], key: str, source: str, *, default: str | None = None) -> str:
    value = data.get(key, default)
    if value is None:
        raise _fail(source, f"{key!r} is missing")
    if not isinstance(value, str):
        raise _fail(source, f"{key!r} must be text")
    return value


def _parse_field(raw: Any, index: int, source: str) -> TemplateField:
    if not isinstance(raw, dict):
        raise _fail(source, f"field #{index} must be a mapping")
    extra = set(raw) - _FIELD_KEYS
    if extra:
        unknown = ", ".join(sorted(map(str, extra)))
        raise _fail(source, f"field #{index} has unknown keys: {unknown}")
    name = _text(raw, "name", source)
    if not _FIELD_NAME.fullmatch(name):
        raise _fail(source, f"field name {name!r} must be lower-case letters, digits and _")
    required = raw.get("required", False)
    if not isinstance(required, bool):
        raise _fail(source, f"field {name}: 'required' must be true or false")
    pattern = raw.get("pattern")
    if pattern is not None:
        if not isinstance(pattern, str):
            raise _fail(source, f"field {name}: 'pattern' must be text")
        try:
            re.compile(pattern)
        except (re.error, OverflowError, RecursionError) as exc:
            # OverflowError: a repeat count past the engine's limit ("x{0,61111111111}"),
            # found by fuzzing case.yaml; RecursionError: nesting too deep to parse.
            raise _fail(source, f"field {name}: bad pattern {pattern!r}: {exc}") from exc
    return TemplateField(name=name, label=_text(raw, "label", source, default=name),
                         required=required, description=_text(raw, "description", source,
                                                              default=""), pattern=pattern)


def _parse_report(raw: Any, source: str, names: set[str]) -> ReportSettings:
    if raw is None:
        return ReportSettings()
    if not isinstance(raw, dict):
        raise _fail(source, "'report' must be a mapping")
    extra = set(raw) - _REPORT_KEYS
    if extra:
        raise _fail(source, f"'report' has unknown keys: {', '.join(sorted(map(str, extra)))}")
    defaults = ReportSettings()
    sections = raw.get("sections", list(defaults.sections))
    if not isinstance(sections, list) or not all(isinstance(s, str) for s in sections):
        raise _fail(source, "'report.sections' must be a list of section names")
    unknown = [s for s in sections if s not in REPORT_SECTIONS]
    if unknown:
        raise _fail(source, f"unknown report section(s) {', '.join(unknown)} "
                            f"(known: {', '.join(REPORT_SECTIONS)})")
    settings = ReportSettings(
        title=_text(raw, "title", source, default=defaults.title),
        agency_header=_text(raw, "agency_header", source, default=""),
        disclaimer=_text(raw, "disclaimer", source, default=""),
        sections=tuple(sections),
    )
    for text in (settings.title, settings.agency_header, settings.disclaimer):
        for placeholder in _PLACEHOLDER.findall(text):
            if placeholder not in names:
                raise _fail(source, f"report text uses {{{placeholder}}} but there is no such "
                                    "field")
    return settings


def _parse_template(data: Any, *, source: str, name: str | None) -> CaseTemplate:
    if not isinstance(data, dict):
        raise _fail(source, "must be a YAML mapping")
    extra = set(data) - _TEMPLATE_KEYS
    if extra:
        raise _fail(source, f"unknown keys: {', '.join(sorted(map(str, extra)))}")
    declared = data.get("name", name)
    if not isinstance(declared, str) or not _TEMPLATE_NAME.fullmatch(declared):
        raise _fail(source, f"bad template name {declared!r}")
    if name is not None and declared != name:
        raise _fail(source, f"'name' is {declared!r} but the file is named {name}.yaml")
    raw_fields = data.get("fields")
    if not isinstance(raw_fields, list) or not raw_fields:
        raise _fail(source, "'fields' must be a non-empty list")
    fields = tuple(_parse_field(raw, i, source) for i, raw in enumerate(raw_fields, 1))
    names = [f.name for f in fields]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise _fail(source, f"duplicate field(s): {', '.join(duplicates)}")
    if "examiner" not in names:
        raise _fail(source, "every template needs an 'examiner' field (the default custody actor)")
    return CaseTemplate(name=declared, description=_text(data, "description", source, default=""),
                        fields=fields, report=_parse_report(data.get("report"), source, set(names)),
                        source=source)


def parse_template_text(text: str, *, source: str, name: str | None = None) -> CaseTemplate:
    """Parse one template from YAML text (``safe_load``: a template can never run code)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise _fail(source, f"not valid YAML: {' '.join(str(exc).split())}") from exc
    return _parse_template(data, source=source, name=name)


# --- discovery ---------------------------------------------------------------------------------


def lab_folders(extra: Sequence[Path | str] = (), *,
                environ: Mapping[str, str] | None = None) -> list[Path]:
    """The lab template folders in search order: ``extra`` first, then ``BITWITNESS_TEMPLATES``.

    A folder that does not exist is an input error: silently falling back to the built-in
    template would create a case with the wrong fields.
    """
    env = os.environ if environ is None else environ
    folders: list[tuple[Path, str]] = [(Path(p), "--templates") for p in extra]
    folders += [(Path(p), ENV_VAR) for p in env.get(ENV_VAR, "").split(os.pathsep) if p.strip()]
    for folder, origin in folders:
        if not folder.is_dir():
            raise InputError(f"template folder {folder} (from {origin}) is not a folder")
    return [folder for folder, _ in folders]


def _builtin_texts() -> Iterable[tuple[str, str]]:
    root = resources.files("bitwitness.case_templates")
    for entry in sorted(root.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".yaml") and entry.is_file():
            yield entry.name[: -len(".yaml")], entry.read_text(encoding="utf-8")


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TemplateError(f"template {path}: cannot read it: {exc}") from exc


def available_templates(extra: Sequence[Path | str] = (), *,
                        environ: Mapping[str, str] | None = None) -> dict[str, CaseTemplate]:
    """Every template by name, lab ones replacing built-in ones of the same name; sorted by name."""
    found: dict[str, CaseTemplate] = {}
    for name, text in _builtin_texts():
        found[name] = parse_template_text(text, source=BUILTIN_SOURCE, name=name)
    for folder in reversed(lab_folders(extra, environ=environ)):  # earlier folders win
        for path in sorted(folder.glob("*.yaml")):
            found[path.stem] = parse_template_text(_read(path), source=str(path), name=path.stem)
    return dict(sorted(found.items()))


def load_template(name: str, extra: Sequence[Path | str] = (), *,
                  environ: Mapping[str, str] | None = None) -> CaseTemplate:
    """The template called ``name``; raises :class:`TemplateError` listing the known ones."""
    if not _TEMPLATE_NAME.fullmatch(name):
        raise TemplateError(f"bad template name {name!r} (letters, digits, '.', '_', '-')")
    for folder in lab_folders(extra, environ=environ):
        path = folder / f"{name}.yaml"
        if path.is_file():
            return parse_template_text(_read(path), source=str(path), name=name)
    for builtin, text in _builtin_texts():
        if builtin == name:
            return parse_template_text(text, source=BUILTIN_SOURCE, name=name)
    known = ", ".join(available_templates(extra, environ=environ))
    raise TemplateError(f"no template named {name!r} (known: {known})")
