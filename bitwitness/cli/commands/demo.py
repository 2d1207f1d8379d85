"""``bitwitness demo``: the whole job on the packaged sample disk, as a guided tour.

The demo runs the real commands, in order, exactly as a user would type them (each step prints
its command line first): it writes the sample disk (standing in for a seized drive), creates a
case, acquires the disk into the case as an E01, verifies it, lists partitions and file systems
(deleted files included), exports one file with its hashes, writes the chain-of-custody reports in
PDF, HTML and JSON, and checks the custody log. Any failing step stops the demo with that step's
error and exit code, so the demo is also an end-to-end smoke test of the installation.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import click

from bitwitness.cli.output import escape, stdout
from bitwitness.errors import BitWitnessError, ExitCode, OutputExistsError

DEMO_MARKER = ".bitwitness-demo"
EVIDENCE_ID = "disk01"


class DemoStepError(BitWitnessError):
    """A demo step ended with a non-zero exit code."""

    def __init__(self, argv: list[str], code: int) -> None:
        known = {int(c) for c in ExitCode}
        self.exit_code = ExitCode(code) if code in known else ExitCode.INTERNAL
        super().__init__(f"demo step failed (exit {code}): bitwitness {shlex.join(argv)}")


def _run(argv: list[str], title: str) -> None:
    """Run one bitwitness command in-process, through the same click group users invoke."""
    from bitwitness.cli.main import cli

    stdout.rule(f"[bold]{escape(title)}")
    stdout.print(f"[dim]$ bitwitness {escape(shlex.join(argv))}[/]")
    try:
        rv = cli.main(args=argv, prog_name="bitwitness", standalone_mode=False)
        code = int(rv) if isinstance(rv, int) else 0
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    if code != 0:
        raise DemoStepError(argv, code)
    stdout.print()


def _prepare(folder: Path, overwrite: bool) -> None:
    from bitwitness.cli.output import check_output_path

    check_output_path(folder, folder=True)
    if folder.exists() and any(folder.iterdir()):
        if not overwrite or not (folder / DEMO_MARKER).is_file():
            raise OutputExistsError(folder)
        import shutil

        shutil.rmtree(folder)  # only ever a folder an earlier demo made (it carries the marker)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / DEMO_MARKER).write_text("made by 'bitwitness demo'; safe to delete\n")


DEFAULT_FOLDER = Path("bitwitness-demo")


def _free_default() -> Path:
    """``bitwitness-demo``, or ``bitwitness-demo-2``, ``-3``... when taken: running the README's
    demo command again works without overwriting the earlier run."""
    candidate, n = DEFAULT_FOLDER, 1
    while candidate.exists() and (not candidate.is_dir() or any(candidate.iterdir())):
        n += 1
        candidate = DEFAULT_FOLDER.with_name(f"{DEFAULT_FOLDER.name}-{n}")
    return candidate


@click.command("demo")
@click.argument("folder", required=False, type=click.Path(path_type=Path))
@click.option("--overwrite", is_flag=True,
              help="Replace FOLDER if an earlier demo made it (never any other folder).")
def command(folder: Path | None, overwrite: bool) -> None:
    """Run the whole job on the packaged sample disk inside FOLDER.

    Without FOLDER: ./bitwitness-demo, or the next free ./bitwitness-demo-N.

    Sample disk -> case -> acquire (E01) -> verify -> partitions, file listings -> export one
    file -> reports (PDF, HTML, JSON) -> custody log check. Each step shows its command line.
    """
    from bitwitness.casefolder import CUSTODY_FILE, EXPORTS, REPORTS, evidence_folder
    from bitwitness.sample import description, materialize

    folder = (folder if folder is not None else _free_default()).absolute()
    _prepare(folder, overwrite)
    sample = description()
    drive = materialize(folder / "seized-drive.img")
    case = folder / "case"
    image = evidence_folder(case, EVIDENCE_ID) / f"{EVIDENCE_ID}.E01"
    stdout.print(f"Sample disk (standing in for a seized drive): [bold]{escape(str(drive))}[/] "
                 f"({sample.size} bytes, MD5 {sample.md5})\n")

    _run(["case", "new", str(case), "--template", "default",
          "--set", "case_number=DEMO-2026-001", "--set", "examiner=Demo Examiner",
          "--set", "description=BitWitness demonstration case"], "1. Create the case")
    _run(["custody", "add", str(case), "--action", "seized", "--evidence", EVIDENCE_ID,
          "--location", "Evidence room A", "--note", "sample disk seized for the demo"],
         "2. Record the seizure")
    _run(["acquire", str(drive), "--case", str(case), "--evidence", EVIDENCE_ID,
          "--description", "sample disk"], "3. Acquire the drive into the case (E01)")
    _run(["verify", "--case", str(case)], "4. Verify the image against its recorded hashes")
    _run(["info", str(image)], "5. What the image records")
    _run(["partitions", str(image)], "6. Partitions and file systems")
    for part in sample.partitions:
        _run(["ls", str(image), "--offset", str(part.start_sector), "-r", "--all"],
             f"7. Files on partition {part.index} ({part.fs_type}), deleted ones included")
    first = sample.partitions[0]
    wanted = next(f for f in sample.files_on(first.index, deleted=False)
                  if not f.path.isascii())
    exports = case / EXPORTS / EVIDENCE_ID
    _run(["export", str(image), wanted.path, "--offset", str(first.start_sector),
          "--to", str(exports), "--case", str(case), "--evidence", EVIDENCE_ID],
         "8. Export one file with its hashes")
    _run(["report", str(case), "--format", "all"], "9. Chain-of-custody reports")
    _run(["custody", "verify", str(case)], "10. Check the custody log")

    stdout.rule("[bold]Where things are")
    for label, path in [
        ("sample disk", drive), ("case", case), ("E01 image", image),
        ("acquisition logs", image.with_suffix(".json")), ("exports", exports),
        ("reports", case / REPORTS), ("custody log", case / CUSTODY_FILE),
    ]:
        stdout.print(f"  {label:<17} {escape(str(path))}")
