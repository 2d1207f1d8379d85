"""``bitwitness timestamp``: RFC 3161 tokens from the lab's TSA, obtained now or checked offline.

Thin adapters over :mod:`bitwitness.timestamping`. ``add`` is how work done while the TSA was
unreachable gets its token later; ``verify`` checks tokens against ``BITWITNESS_TSA_CERT``.
"""

from __future__ import annotations

from pathlib import Path

import click

from bitwitness.cli.output import escape, json_option, print_json, stdout, warn
from bitwitness.errors import ExitCode, UsageError


@click.group("timestamp")
def command() -> None:
    """Trusted time for logs, reports and custody anchors (RFC 3161).

    The TSA is configured with BITWITNESS_TSA_URL and its certificate with BITWITNESS_TSA_CERT.
    """


def _targets(files: tuple[Path, ...], case_dir: Path | None) -> None:
    if not files and case_dir is None:
        raise UsageError("give FILE... or --case CASE_DIR")
    for path in files:
        if not path.is_file():
            raise UsageError(f"{path} is not a file")


@command.command("add")
@click.argument("files", nargs=-1, type=click.Path(path_type=Path, dir_okay=False))
@click.option("--case", "case_dir", type=click.Path(path_type=Path, file_okay=False),
              help="Also timestamp the case's custody anchor as it is now.")
@click.option("--tsa", "url", metavar="URL", help="TSA URL [env BITWITNESS_TSA_URL].")
@json_option
def add(files: tuple[Path, ...], case_dir: Path | None, url: str | None, as_json: bool) -> int:
    """Get a token for each FILE (written as FILE.tsr). Exit 1 when any could not be obtained."""
    from bitwitness import timestamping

    _targets(files, case_dir)
    url = url or timestamping.configured_url()
    if url is None:
        raise UsageError(f"no TSA: give --tsa URL or set {timestamping.URL_ENV}")
    stamps = [timestamping.stamp_file(p, url) for p in files]
    if case_dir is not None:
        from bitwitness.case import Case

        stamps.append(timestamping.stamp_anchor(Case.load(case_dir).root, url))
    if as_json:
        print_json({"stamps": [{"file": s.path, "token": s.token, "time": s.time,
                                "error": s.error} for s in stamps]})
    else:
        for s in stamps:
            if s.token:
                stdout.print(escape(s.sentence()))
            else:
                warn(s.sentence())
    return int(ExitCode.OK if all(s.token for s in stamps) else ExitCode.EVIDENCE)


@command.command("verify")
@click.argument("files", nargs=-1, type=click.Path(path_type=Path, dir_okay=False))
@click.option("--case", "case_dir", type=click.Path(path_type=Path, file_okay=False),
              help="Check every timestamped custody anchor of the case against the log.")
@json_option
def verify(files: tuple[Path, ...], case_dir: Path | None, as_json: bool) -> int:
    """Check FILE.tsr for each FILE offline against the TSA certificate; exit 1 if any fails."""
    from bitwitness import timestamping

    _targets(files, case_dir)
    checks = []
    for path in files:
        check = timestamping.check_file(path)
        if check is None:
            raise UsageError(f"{path} has no timestamp token ({path.name}.tsr)")
        checks.append(check)
    problems: list[str] = [c.sentence() for c in checks if not c.valid]
    if case_dir is not None:
        from bitwitness.case import Case

        case = Case.load(case_dir)
        lines = case.custody.path.read_bytes().splitlines(keepends=True)
        anchors = timestamping.check_anchors(case.root, lines)
        checks += anchors.checks
        problems += anchors.problems
    if as_json:
        print_json({"ok": not problems, "problems": problems,
                    "tokens": [{"file": c.path, "token": c.token, "valid": c.valid,
                                "time": c.time, "tsa": c.tsa, "reason": c.reason}
                               for c in checks]})
    else:
        for c in checks:
            if c.valid:
                stdout.print(escape(c.sentence()))
        for problem in problems:
            warn(problem)
    return int(ExitCode.EVIDENCE if problems else ExitCode.OK)
