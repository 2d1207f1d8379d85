"""``bitwitness case``: create a case, show it, list the case templates.

Thin adapters over :mod:`bitwitness.case` and :mod:`bitwitness.templates`. The only thing done
here rather than in the library is asking a person for missing fields (prompting is the CLI's job).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from bitwitness.cli.output import escape, json_option, print_json, stdout
from bitwitness.errors import CustodyError, UsageError

_TEMPLATES_OPTION = click.option(
    "--templates", "template_dirs", multiple=True, type=click.Path(path_type=Path),
    help="A lab folder of templates (repeatable; also $BITWITNESS_TEMPLATES). Lab templates "
         "replace built-in ones of the same name.")


@click.group("case")
def command() -> None:
    """Create cases and show them and their templates.

    A case folder holds case.yaml, the custody log, evidence/, exports/ and reports/.
    """


def _parse_sets(pairs: tuple[str, ...]) -> dict[str, str]:
    values: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"--set expects NAME=VALUE, got {pair!r}")
        values[name.strip()] = value
    return values


def _prompt_missing(template: Any, values: dict[str, str]) -> None:
    """Ask for every missing required field, re-asking while a value fails its pattern."""
    for tf in template.missing(values):
        hint = f" ({tf.description})" if tf.description else ""
        while True:
            answer = click.prompt(f"{tf.label}{hint}", err=True).strip()
            problem = tf.problem(answer)
            if problem is None:
                values[tf.name] = answer
                break
            click.echo(f"  {problem}", err=True)


@command.command("new")
@click.argument("case_dir", type=click.Path(path_type=Path))
@click.option("--template", "template_name", default="default", show_default=True,
              help="Case template (see 'bitwitness case templates').")
@click.option("--set", "sets", multiple=True, metavar="FIELD=VALUE",
              help="A case field value (repeatable).")
@_TEMPLATES_OPTION
@json_option
def new(case_dir: Path, template_name: str, sets: tuple[str, ...],
        template_dirs: tuple[Path, ...], as_json: bool) -> None:
    """Create a case folder from a template.

    Writes case.yaml, custody.jsonl (first event: case-created), evidence/, exports/, reports/.

    Missing required fields are asked for on a terminal; elsewhere they are an error that names
    every one of them. Refuses an existing non-empty CASE_DIR.
    """
    from bitwitness.case import Case
    from bitwitness.templates import load_template

    template = load_template(template_name, template_dirs)
    values = _parse_sets(sets)
    template.check_values(values)
    if template.missing(values) and sys.stdin.isatty():
        _prompt_missing(template, values)
    case = Case.create(case_dir, template, values)
    if as_json:
        print_json(_case_document(case))
        return
    stdout.print(f"Created case [bold]{escape(str(case.root))}[/] "
                 f"(template {escape(case.template.name)})")


def _case_document(case: Any) -> dict[str, Any]:
    from bitwitness.custody import CustodyCheck

    try:
        check = case.custody.verify()
    except CustodyError as exc:  # the log is missing or unreadable: still show the case
        check = CustodyCheck(False, 0, None, str(exc))
    file_check = case.case_file_check()
    return {
        "case_dir": case.root,
        "created": case.created,
        "tool_version": case.tool_version,
        "template": {"name": case.template.name, "source": case.template.source},
        "fields": case.fields,
        "labels": {f.name: f.label for f in case.template.fields},
        "examiner": case.examiner,
        "report": case.template.report.render(case.fields),
        "evidence": [{"id": item.id, "folder": item.folder,
                      "acquisition_log": item.acquisition_log} for item in case.evidence_items()],
        "custody": {"ok": check.ok, "events": check.events,
                    "first_bad_line": check.first_bad_line, "reason": check.reason,
                    "head": check.head, "warnings": list(check.warnings)},
        "case_file": {"ok": file_check.ok, "expected_sha256": file_check.expected,
                      "sha256": file_check.actual},
    }


@command.command("show")
@click.argument("case_dir", type=click.Path(path_type=Path))
@json_option
def show(case_dir: Path, as_json: bool) -> None:
    """Show a case's fields, evidence and custody state.

    Exits 1 when the custody log or the case file fails its check (after showing everything).
    """
    from bitwitness.case import Case

    case = Case.load(case_dir)
    doc = _case_document(case)
    if as_json:
        print_json(doc)
    else:
        _render_case(doc)
    custody = doc["custody"]
    if not custody["ok"]:
        raise CustodyError(custody["reason"], line=custody["first_bad_line"])
    if doc["case_file"]["ok"] is False:
        raise CustodyError("case.yaml was changed after the case was created (its SHA-256 differs "
                           "from the one in the case-created event)")


def _render_case(doc: dict[str, Any]) -> None:
    # every value here is the examiner's or the template's text: shown as text, never markup
    table = Table(title=escape(f"Case {doc['case_dir']}"), show_header=False,
                  title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    table.add_row("Template", escape(f"{doc['template']['name']} ({doc['template']['source']})"))
    table.add_row("Created", escape(str(doc["created"])))
    for name, value in doc["fields"].items():
        table.add_row(escape(str(doc["labels"].get(name, name))),
                      escape(str(value)) if value else "[dim]-[/]")
    stdout.print(table)
    if doc["evidence"]:
        items = Table("Evidence", "Acquisition log", title="Evidence", title_justify="left")
        for item in doc["evidence"]:
            log = item["acquisition_log"]
            items.add_row(escape(item["id"]), escape(str(log)) if log else "[dim]none[/]")
        stdout.print(items)
    else:
        stdout.print("No evidence yet.")
    custody = doc["custody"]
    if custody["ok"]:
        stdout.print(f"Custody log: [green]intact[/], {custody['events']} events, "
                     f"head {custody['head']}")
    else:
        line = custody["first_bad_line"]
        where = f" at line {line}" if line else ""
        stdout.print(f"Custody log: [bold red]BROKEN{where}[/]: {escape(custody['reason'])}")


@command.command("templates")
@click.argument("name", required=False)
@_TEMPLATES_OPTION
@json_option
def templates(name: str | None, template_dirs: tuple[Path, ...], as_json: bool) -> None:
    """List case templates with their fields.

    Only template NAME when given. Lab folders come from --templates and $BITWITNESS_TEMPLATES.
    """
    from bitwitness.templates import available_templates, load_template

    found = ({name: load_template(name, template_dirs)} if name
             else available_templates(template_dirs))
    if as_json:
        print_json({"templates": [{**t.to_dict(), "source": t.source} for t in found.values()]})
        return
    for template in found.values():
        table = Table("Field", "Required", "Label: description",
                      title=(f"{escape(template.name)}: {escape(template.description)} "
                             f"[dim]({escape(template.source)})[/]"),
                      title_justify="left")
        table.columns[0].no_wrap = True
        table.columns[2].overflow = "fold"
        for tf in template.fields:
            text = f"[bold]{escape(tf.label)}[/]"
            if tf.description:
                text += f": {escape(tf.description)}"
            if tf.pattern:
                text += f"\n[dim]pattern:[/] {escape(tf.pattern)}"
            table.add_row(escape(tf.name), "yes" if tf.required else "no", text)
        stdout.print(table)
