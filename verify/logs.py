"""Parsers for the hash logs other tools (and we) write next to an image.

Each parser turns one file into a :class:`HashLog`: the hashes it records, what each covers as the
log says it (a file name, a sector range, or the whole media), the media size and the unreadable
sectors it records. Parsers know nothing about the image being verified; binding a log to an
image (which file is which piece, which range is which bytes) is :mod:`bitwitness.verify.
references`' job. Kinds recognised, by content (never by name alone):

* ``bitwitness``: our ``BASE.json`` (schema ``bitwitness.acquisition/1``);
* ``bitwitness-text``: our human ``BASE.txt`` (first line "Created by BitWitness ..."). It is laid
  out in the spirit of FTK Imager's report, so it is recognised before the FTK parser and named
  for what it is, never as an FTK Imager report;
* ``dc3dd``: a dc3dd ``log=`` file, with input/output results and per-piece hashes (``hofs=``);
* ``dcfldd``: a dcfldd ``hashlog=`` file (totals and per-window hashes);
* ``guymager``: a Guymager ``.info`` file (hashes of the acquired data and of the image's
  read-back, per-file MD5s, device size, bad sectors, state);
* ``ftk``: an FTK Imager ``.txt`` report ("MD5 checksum: ..." under Computed Hashes and
  Verification results);
* ``ewf``: an ewfacquire or ewfverify ``-l`` log ("MD5 hash calculated over data: ...");
* ``ddrescue``: a GNU ddrescue mapfile: no hash, but every area the rescue did not read (its
  unreadable sectors), the media size and whether the run finished;
* ``hashsum``: md5sum/sha1sum/sha256sum output (GNU ``hex  name`` / ``hex *name`` or BSD
  ``MD5 (name) = hex``), one line per file.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from bitwitness import TOOL_NAME
from bitwitness.errors import InputError
from bitwitness.evidence_io import os_open_readonly

#: Hex length -> algorithm, for logs that do not name the algorithm (md5sum-style lines).
_BY_LENGTH = {32: "md5", 40: "sha1", 64: "sha256"}
_ALGORITHM_NAMES = {"md5": "md5", "sha1": "sha1", "sha-1": "sha1", "sha256": "sha256",
                    "sha-256": "sha256"}
#: Hash logs are small; anything larger is not one (and is not read whole into memory).
MAX_LOG_SIZE = 8 << 20


@dataclass(frozen=True)
class LogEntry:
    """One recorded hash as the log states it.

    ``name`` is a file name as written in the log (``None``: the whole media); ``first_sector``
    and ``last_sector`` (inclusive) are given where the log names a sector range instead.
    """

    algorithm: str
    value: str
    name: str | None = None
    first_sector: int | None = None
    last_sector: int | None = None
    section: str = ""  #: "input", "output", "computed", "verification", "media", "outputs", ...


@dataclass(frozen=True)
class HashLog:
    """What one log file records."""

    path: Path
    kind: str
    entries: tuple[LogEntry, ...]
    media_size: int | None = None
    sector_size: int | None = None
    error_ranges: tuple[tuple[int, int], ...] = ()  #: (first_sector, sector_count)
    status: str | None = None  #: BASE.json "status"
    error: str | None = None  #: BASE.json "error": why an acquisition stopped, in its own words
    source_size: int | None = None  #: size of the source before padding (BASE.json)
    notes: tuple[str, ...] = ()
    title: str = ""  #: what the log calls its maker, where that differs from the kind's label

    @property
    def label(self) -> str:
        """How reports name this log: ``"dc3dd log x.log"``."""
        return f"{self.title or KIND_LABELS.get(self.kind, self.kind)} {self.path.name}"


KIND_LABELS = {
    "bitwitness": "acquisition log",
    "bitwitness-text": f"{TOOL_NAME} acquisition report",
    "dc3dd": "dc3dd log",
    "ftk": "FTK Imager report",
    "ewf": "libewf log",
    "hashsum": "hash sidecar",
    "ddrescue": "ddrescue mapfile",
    "guymager": "Guymager info file",
    "dcfldd": "dcfldd hash log",
}


def algorithm_name(text: str) -> str | None:
    """``"SHA-1"`` -> ``"sha1"``; ``None`` for algorithms we do not compute."""
    return _ALGORITHM_NAMES.get(text.strip().lower())


def _hex(text: str) -> str | None:
    value = text.strip().lower()
    return value if re.fullmatch(r"[0-9a-f]+", value) and len(value) in _BY_LENGTH else None


def read_text(path: Path) -> str:
    """The text of a log; an unreadable or oversized file is an input error."""
    try:
        if path.stat().st_size > MAX_LOG_SIZE:
            raise InputError(f"{path}: too large to be a hash log")
        with os.fdopen(os_open_readonly(path), "rb") as fh:  # a log is evidence: atime kept
            raw = fh.read()
    except FileNotFoundError as exc:
        raise InputError(f"{path}: no such file") from exc
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):  # FTK Imager on Windows may write UTF-16
        return raw.decode("utf-16", "replace")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("latin-1")  # Windows-1252 reports: the hex digits are ASCII anyway


def parse_log(path: Path) -> HashLog:
    """Recognise and parse ``path``; :class:`InputError` when it is no hash log we know."""
    text = read_text(path)
    for parser in (_parse_bitwitness, _parse_bitwitness_text, _parse_dc3dd, _parse_dcfldd,
                   _parse_guymager, _parse_ftk, _parse_ewf, _parse_ddrescue, _parse_hashsum):
        try:
            log = parser(path, text)
        except ValueError as exc:
            # a number no log of a real acquisition holds (Python reads at most 4,300 digits)
            raise InputError(f"{path}: not a hash log BitWitness can read (a number in it has "
                             f"more digits than any size or sector can)") from exc
        if log is not None:
            return log
    raise InputError(f"{path}: not a hash log BitWitness recognises (BASE.json, md5sum-style "
                     "sidecar, dc3dd log, dcfldd hash log, Guymager info file, FTK Imager "
                     "report, ewfacquire log, ddrescue mapfile)")


# --- BASE.json ---------------------------------------------------------------------------------


def _parse_bitwitness(path: Path, text: str) -> HashLog | None:
    if not text.lstrip().startswith("{"):
        return None
    # Here, not at the top: the log's model is ~15 ms of imports (its dataclasses) that
    # 'bitwitness info' on an image with no BASE.json next to it need not pay.
    from bitwitness.acquisitionlog import LogFormatError, loads

    try:
        doc = loads(text, source=str(path), any_version=True)
    except LogFormatError:
        return None
    entries: list[LogEntry] = []
    entries += _json_hashes(doc.media.hashes, None, "media")
    for output in doc.outputs:
        entries += _json_hashes(output.hashes, output.path, "outputs")
    return HashLog(path=path, kind="bitwitness", entries=tuple(entries),
                   media_size=doc.media.size, sector_size=doc.media.sector_size,
                   error_ranges=doc.read_errors, status=doc.status or None,
                   error=doc.error, source_size=doc.source.size)


def _json_hashes(hashes: object, name: str | None, section: str) -> list[LogEntry]:
    out = []
    if isinstance(hashes, dict):
        for alg, value in hashes.items():
            algorithm = algorithm_name(str(alg))
            hexvalue = _hex(str(value))
            if algorithm and hexvalue:
                out.append(LogEntry(algorithm, hexvalue, name=name, section=section))
    return out


# --- BASE.txt (our own human report) ----------------------------------------------------------

_OWN_HEADER = re.compile(rf"^Created by {TOOL_NAME} \S+\s*$")
_OWN_HASH = re.compile(r"^\s+(MD5|SHA1|SHA256) checksum:\s*([0-9a-fA-F]{32,64})\s*$")
_OWN_FILE = re.compile(r"^  (\S.*?)  \((\d+) bytes\)$")
_OWN_FILE_HASH = re.compile(r"^    (md5|sha1|sha256): ([0-9a-f]{32,64})$")
_OWN_ERRORS = re.compile(r"^  sectors (\d+)-(\d+) \((\d+) sectors")
_OWN_FACT = re.compile(
    r"^ ?(Acquired using|Media size|Sector size|Source data size|Status|Error):\s*(.*?)\s*$")
_OWN_TITLES = {"convert": f"{TOOL_NAME} conversion report",
               "restore": f"{TOOL_NAME} restore report"}


def _parse_bitwitness_text(path: Path, text: str) -> HashLog | None:
    """Our ``BASE.txt``: the hashes, sizes, errors and status it states, as ``BASE.json`` does.

    Recognised by its first line only (what :func:`bitwitness.acquire.logs.render_text` writes),
    so an FTK Imager report is never taken for ours nor ours for FTK Imager's. A report without
    hashes (an interrupted run) is still a log: its status makes the image INCOMPLETE.
    """
    lines = text.splitlines()
    if not lines or not _OWN_HEADER.match(lines[0]):
        return None
    entries: list[LogEntry] = []
    errors: list[tuple[int, int]] = []
    facts: dict[str, str] = {}
    section, current_file = "media", None
    for line in lines[1:]:
        if line.startswith("Image Verification Results"):
            section = "verification"
        elif m := _OWN_HASH.match(line):
            entries.append(LogEntry(algorithm_name(m.group(1)) or "", m.group(2).lower(),
                                    section=section))
        elif m := _OWN_FILE.match(line):
            current_file = m.group(1)
        elif (m := _OWN_FILE_HASH.match(line)) and current_file:
            entries.append(LogEntry(m.group(1), m.group(2), name=current_file, section="outputs"))
        elif m := _OWN_ERRORS.match(line):
            errors.append((int(m.group(1)), int(m.group(3))))
        elif m := _OWN_FACT.match(line):
            facts[m.group(1)] = m.group(2)
    operation = re.search(r"\((\w+)\)$", facts.get("Acquired using", ""))
    status = facts.get("Status")
    return HashLog(path=path, kind="bitwitness-text", entries=tuple(entries),
                   media_size=_leading_int(facts.get("Media size")),
                   sector_size=_leading_int(facts.get("Sector size")),
                   error_ranges=tuple(errors), status=status.lower() if status else None,
                   error=facts.get("Error") or None,
                   source_size=_leading_int(facts.get("Source data size")),
                   title=_OWN_TITLES.get(operation.group(1) if operation else "", ""))


def _leading_int(value: str | None) -> int | None:
    """``"3000320 bytes"`` -> 3000320; ``None`` when the text does not start with a number."""
    m = re.match(r"\d+", value or "")
    return int(m.group(0)) if m else None


# --- dc3dd -------------------------------------------------------------------------------------

_DC3DD_SECTION = re.compile(r"^(input|output) results for (?:file|files|device) `([^']*)'")
_DC3DD_HASH = re.compile(r"^\s*(?:\[[^\]]*\]\s*)?([0-9a-fA-F]{32,64}) \((md5|sha1|sha256|sha512)\)")
_DC3DD_PIECE = re.compile(
    r"^\s*(?:\[[^\]]*\]\s*)?([0-9a-fA-F]{32,64}), sectors (\d+) - (\d+)(?:, `([^']*)')?")
_DC3DD_SIZE = re.compile(r"^\s*(\d+) sectors(?: \+ (\d+) bytes)? (in|out)")
_DC3DD_SECTOR = re.compile(r"^sector size: (\d+) bytes")
_DC3DD_BAD = re.compile(r"^\s*(\d+) bad sectors? replaced by zeros")


def _parse_dc3dd(path: Path, text: str) -> HashLog | None:
    if not re.search(r"^dc3dd \S+ started at", text, re.MULTILINE):
        return None
    entries: list[LogEntry] = []
    section = ""
    algorithm: str | None = None  # piece lines follow the total line of their algorithm
    sector_size = 512
    sizes: dict[str, int] = {}
    notes: list[str] = []
    for line in text.splitlines():
        if m := _DC3DD_SECTOR.match(line):
            sector_size = int(m.group(1))
        elif m := _DC3DD_SECTION.match(line):
            section, algorithm = m.group(1), None
        elif m := _DC3DD_HASH.match(line):
            algorithm = algorithm_name(m.group(2))
            if algorithm:
                entries.append(LogEntry(algorithm, m.group(1).lower(), section=section))
        elif (m := _DC3DD_PIECE.match(line)) and algorithm:
            entries.append(LogEntry(algorithm, m.group(1).lower(), name=m.group(4),
                                    first_sector=int(m.group(2)), last_sector=int(m.group(3)),
                                    section=section))
        elif m := _DC3DD_SIZE.match(line):
            sizes[m.group(3)] = int(m.group(1)) * sector_size + int(m.group(2) or 0)
        elif (m := _DC3DD_BAD.match(line)) and int(m.group(1)):
            notes.append(f"dc3dd replaced {m.group(1)} bad sectors by zeros ({section} side)")
    notes += [f"{name} is recorded but not an algorithm BitWitness checks"
              for name in sorted(set(re.findall(r"\((sha384|sha512)\)$", text, re.MULTILINE)))]
    return HashLog(path=path, kind="dc3dd", entries=tuple(entries),
                   media_size=sizes.get("out", sizes.get("in")), sector_size=sector_size,
                   notes=tuple(notes))


# --- dcfldd ------------------------------------------------------------------------------------

_DCFLDD_TOTAL = re.compile(r"^Total \((md5|sha1|sha256|sha384|sha512)\): ([0-9a-fA-F]+)$")
_DCFLDD_WINDOW = re.compile(r"^(\d{1,20}) - (\d{1,20}): ([0-9a-fA-F]+)$")
_DCFLDD_SECTOR = 512


def _parse_dcfldd(path: Path, text: str) -> HashLog | None:
    """dcfldd's ``hashlog=`` (or ``md5log=``...) file: "Total (md5): hex" for the whole input
    and, with ``hashwindow=``, "start - end: hex" per window of bytes (the algorithm told by the
    hash's length). Every line must be one of those: dcfldd writes nothing else there. Windows
    are compared as sector ranges where they start on a 512-byte sector (dcfldd's are whole
    multiples of its block size); others are noted, not compared."""
    entries: list[LogEntry] = []
    notes: list[str] = []
    for line in (raw.strip() for raw in text.splitlines()):
        if not line:
            continue
        if m := _DCFLDD_TOTAL.match(line):
            algorithm = algorithm_name(m.group(1))
            if algorithm is None:
                notes.append(f"{m.group(1)} is recorded but not an algorithm BitWitness checks")
            elif (value := _hex(m.group(2))) is not None:
                entries.append(LogEntry(algorithm, value, section="input"))
        elif m := _DCFLDD_WINDOW.match(line):
            start, end, value = int(m.group(1)), int(m.group(2)), _hex(m.group(3))
            if value is None or end <= start:
                continue
            if start % _DCFLDD_SECTOR:
                notes.append(f"dcfldd window {start} - {end} does not start on a sector: "
                             "not compared")
                continue
            entries.append(LogEntry(_BY_LENGTH[len(value)], value,
                                    first_sector=start // _DCFLDD_SECTOR,
                                    last_sector=(end - 1) // _DCFLDD_SECTOR, section="window"))
        else:
            return None
    if not any(e.section == "input" for e in entries) and not notes:
        return None
    return HashLog(path=path, kind="dcfldd", entries=tuple(entries),
                   sector_size=_DCFLDD_SECTOR, notes=tuple(notes))


# --- Guymager ----------------------------------------------------------------------------------

_GUYMAGER = re.compile(r"^\s*GUYMAGER ACQUISITION INFO FILE\s*$", re.MULTILINE)
#: "MD5 hash : hex", "SHA1 hash verified image : hex" (padding of tabs and spaces before ':').
_GUYMAGER_HASH = re.compile(
    r"^(MD5|SHA1|SHA256) hash(?: verified (source|image))?\s*:\s*(\S*)", re.IGNORECASE)
_GUYMAGER_SIZE = re.compile(r"^Device size\s*:\s*(\d{1,20})(?!\d)")
_GUYMAGER_BAD = re.compile(
    r"^During acquisition, (\d{1,20}) bad sectors? ha(?:ve|s) been encountered")
_GUYMAGER_RANGE = re.compile(r"^(\d{1,20})(?:-(\d{1,20}))?$")
_GUYMAGER_STATE = re.compile(r"^State:\s*(.+?)\s*$")
_GUYMAGER_FILE = re.compile(r"^([0-9a-fA-F]{32})\s+(\S.*?)\s*$")


def _parse_guymager(path: Path, text: str) -> HashLog | None:
    """Guymager's ``IMAGE.info``: the hashes of what it acquired ("MD5 hash") and of its
    read-back of the image ("verified image"), the device size, the bad sectors it replaced by
    zeros and its final state; with "CalcImageFileMD5" on, each image file's MD5 too.

    The hash of its second read of the source ("verified source") is not a record of the image
    and is not compared; where it differs from the acquired data's, a note says so. Guymager
    numbers bad sectors in the source device's sectors, whose size the file does not state
    (2048 bytes for an optical disc): the image's sector size is used, and a note says so."""
    if not _GUYMAGER.search(text[:4096]):
        return None
    entries: list[LogEntry] = []
    source: dict[str, str] = {}
    media_size = state = None
    errors: list[tuple[int, int]] = []
    # the table of image files and their MD5s ends the file
    head, _, table = text.partition("Generated image files and their MD5 hashes")
    lines = head.splitlines()
    for at, raw in enumerate(lines):
        line = raw.strip()
        if m := _GUYMAGER_HASH.match(line):
            _guymager_hash(m, entries, source)
        elif (m := _GUYMAGER_SIZE.match(line)) and media_size is None:
            media_size = int(m.group(1))
        elif _GUYMAGER_BAD.match(line):
            errors += _guymager_ranges(lines[at + 1:])
        elif m := _GUYMAGER_STATE.match(line):
            state = m.group(1)
    entries += [LogEntry("md5", m.group(1).lower(), name=m.group(2), section="files")
                for line in table.splitlines() if (m := _GUYMAGER_FILE.match(line.strip()))]
    if not entries and state is None:
        return None
    notes = [f"Guymager's second read of the source gave {alg.upper()} {value}, not the "
             f"{entry.value} of the data it acquired"
             for alg, value in source.items() for entry in entries
             if entry.algorithm == alg and entry.section == "computed" and entry.value != value]
    if errors:
        notes.append("Guymager numbers bad sectors in the source device's sectors, whose size "
                     "its info file does not state: read with the image's sector size")
    return HashLog(path=path, kind="guymager", entries=tuple(entries), media_size=media_size,
                   error_ranges=tuple(errors), status=_guymager_status(state),
                   notes=tuple(notes))


def _guymager_hash(m: re.Match[str], entries: list[LogEntry], source: dict[str, str]) -> None:
    """One hash line: the acquired data's and the image read-back's are entries, the source
    read-back's goes to ``source``; "--" (not computed) is no hash."""
    algorithm, value = algorithm_name(m.group(1)), _hex(m.group(3))
    if algorithm is None or value is None:
        return
    if m.group(2) and m.group(2).lower() == "source":
        source[algorithm] = value
    else:
        entries.append(LogEntry(algorithm, value,
                                section="verification" if m.group(2) else "computed"))


def _guymager_ranges(lines: list[str]) -> list[tuple[int, int]]:
    """The indented "a-b, c, d-e" lines that follow a bad-sector sentence, as (first, count)."""
    found: list[tuple[int, int]] = []
    for raw in lines:
        if not raw[:1].isspace() or not raw.strip():
            break
        for part in raw.replace(",", " ").split():
            m = _GUYMAGER_RANGE.match(part)
            if m is None:
                return found
            first = int(m.group(1))
            last = int(m.group(2)) if m.group(2) else first
            if last >= first:
                found.append((first, last - first + 1))
    return found


def _guymager_status(state: str | None) -> str | None:
    """Guymager's "State:" line in the words verify weighs: finished, interrupted or failed."""
    if state is None:
        return None
    low = state.lower()
    if low.startswith("finished successfully"):
        return "completed"
    if low.startswith("abort"):
        return "interrupted"
    return "failed" if "mismatch" in low or "error" in low else low


# --- FTK Imager --------------------------------------------------------------------------------

_FTK_HASH = re.compile(r"^\s*(MD5|SHA1|SHA-1|SHA256|SHA-256) checksum:\s*([0-9a-fA-F]{32,64})",
                       re.IGNORECASE)


def _parse_ftk(path: Path, text: str) -> HashLog | None:
    if not _FTK_HASH.search(text) and "checksum:" not in text:
        return None
    entries: list[LogEntry] = []
    section = "computed"
    for line in text.splitlines():
        low = line.lower()
        if "computed hashes" in low:
            section = "computed"
        elif "verification results" in low:
            section = "verification"
        elif m := _FTK_HASH.match(line):
            algorithm = algorithm_name(m.group(1))
            if algorithm:
                entries.append(LogEntry(algorithm, m.group(2).lower(), section=section))
    if not entries:
        return None
    # Another tool imitating FTK Imager's layout: name the maker the report names.
    # (within one line: "\s" would run on into the next line, "." takes a lone "\r")
    maker = re.search(r"^[ \t]*Created by[ \t]+(\S[^\r\n]*?)[ \t\r]*$", text,
                      re.IGNORECASE | re.MULTILINE)
    title = ""
    if maker and not re.search(r"FTK|AccessData", maker.group(1)):
        title = f"{maker.group(1).split()[0]} report"
    return HashLog(path=path, kind="ftk", entries=tuple(entries), title=title)


# --- ewfacquire / ewfverify -l logs ------------------------------------------------------------

_EWF_LINE = re.compile(r"^(MD5|SHA1|SHA256) hash (stored in file|calculated over data):\s*(\S+)")


def _parse_ewf(path: Path, text: str) -> HashLog | None:
    stored: list[LogEntry] = []
    calculated: list[LogEntry] = []
    for line in text.splitlines():
        if m := _EWF_LINE.match(line):
            algorithm = algorithm_name(m.group(1))
            value = _hex(m.group(3))
            if not (algorithm and value):
                continue
            if m.group(2) == "stored in file":
                stored.append(LogEntry(algorithm, value, section="stored"))
            else:
                calculated.append(LogEntry(algorithm, value, section="calculated"))
    if not stored and not calculated:
        return None
    # An ewfverify log states what the image stores; what it calculated is its own result, not a
    # record from acquisition. An ewfacquire log only has what was calculated while acquiring.
    if stored:
        return HashLog(path=path, kind="ewf", entries=tuple(stored),
                       notes=("ewfverify log: only the hashes stored in the image are used",))
    return HashLog(path=path, kind="ewf", entries=tuple(calculated))


# --- GNU ddrescue mapfile ---------------------------------------------------------------------

_DDRESCUE = re.compile(r"^# (?:Mapfile|Rescue Logfile)\. Created by GNU ddrescue version (\S+)",
                       re.MULTILINE)
_DDRESCUE_NUMBER = r"(0[xX][0-9A-Fa-f]{1,16}|\d{1,20})"  # 64-bit at most
#: "pos  size  status" of one block; the current-position line has no size.
_DDRESCUE_BLOCK = re.compile(rf"^\s*{_DDRESCUE_NUMBER}\s+{_DDRESCUE_NUMBER}\s+([?*/\-+])\s*$")
_DDRESCUE_CURRENT = re.compile(rf"^\s*{_DDRESCUE_NUMBER}\s+([?*/\-+FG])(?:\s+\d+)?\s*$")
#: What ddrescue was doing when it wrote the mapfile last, by its current status character.
_DDRESCUE_PHASES = {"?": "copying", "*": "trimming", "/": "scraping", "-": "retrying",
                    "F": "filling", "G": "generating", "+": "finished"}
#: Block states that mean "not rescued": non-tried, non-trimmed, non-scraped, bad sector.
_DDRESCUE_UNREAD = {"?": "not tried", "*": "not trimmed", "/": "not scraped",
                    "-": "bad sectors"}
#: ddrescue's default sector size (``-b``); a mapfile records byte positions only.
_DDRESCUE_SECTOR = 512


def _parse_ddrescue(path: Path, text: str) -> HashLog | None:
    """A GNU ddrescue mapfile (``ddrescue SOURCE IMAGE MAPFILE``; "Rescue Logfile" before 1.20).

    It records no hash, but it is the rescue's account of every byte: each block's state, so the
    areas never read (bad sectors, and areas left untried, untrimmed or unscraped when the run
    stopped early) are what the image holds in place of the source there (zeros in a new image).
    Those are the log's unreadable sectors, in 512-byte sectors as ddrescue's default; the end of
    the last block is the media size; a run that did not finish is "interrupted"."""
    found = _DDRESCUE.search(text)
    read = _ddrescue_blocks(text) if found is not None else None
    if found is None or read is None:
        return None
    phase, blocks = read
    errors: list[tuple[int, int]] = []
    unread: dict[str, int] = {}
    for pos, size, state in blocks:
        if state in _DDRESCUE_UNREAD and size > 0:
            first = pos // _DDRESCUE_SECTOR
            errors.append((first, -(-(pos + size) // _DDRESCUE_SECTOR) - first))
            unread[state] = unread.get(state, 0) + size
    end = max(pos + size for pos, size, _ in blocks)
    notes = [f"ddrescue {found.group(1)} mapfile: {size:,} bytes {_DDRESCUE_UNREAD[state]}"
             for state, size in unread.items()]
    if phase != "+":
        notes.append(f"ddrescue stopped while {_DDRESCUE_PHASES[phase]}: the rescue did not "
                     "finish")
    return HashLog(path=path, kind="ddrescue", entries=(), media_size=end,
                   sector_size=_DDRESCUE_SECTOR, error_ranges=tuple(errors),
                   status="completed" if phase == "+" else "interrupted", notes=tuple(notes))


def _ddrescue_blocks(text: str) -> tuple[str, list[tuple[int, int, str]]] | None:
    """The current status and the (position, size, state) blocks of a mapfile; None when a
    line is neither (not a mapfile after all) or either part is missing. Bounded by the log's
    size (:data:`MAX_LOG_SIZE`)."""
    phase = None
    blocks: list[tuple[int, int, str]] = []
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        if phase is None and (m := _DDRESCUE_CURRENT.match(line)):
            phase = m.group(2)
            continue
        m = _DDRESCUE_BLOCK.match(line)
        if m is None:
            return None
        blocks.append((_ddrescue_int(m.group(1)), _ddrescue_int(m.group(2)), m.group(3)))
    return (phase, blocks) if phase is not None and blocks else None


def _ddrescue_int(text: str) -> int:
    """A mapfile number: hexadecimal with ``0x``, else decimal (leading zeros allowed, which
    Python's ``int(text, 0)`` refuses)."""
    return int(text[2:], 16) if text[:2] in ("0x", "0X") else int(text, 10)


# --- md5sum / sha1sum / sha256sum --------------------------------------------------------------

_GNU = re.compile(r"^\\?([0-9a-fA-F]{32,64})(?: [ *](.+))?$")
_BSD = re.compile(r"^(MD5|SHA1|SHA256|SHA-1|SHA-256) ?\((.+)\) ?= ?([0-9a-fA-F]{32,64})$",
                  re.IGNORECASE)


def _parse_hashsum(path: Path, text: str) -> HashLog | None:
    entries: list[LogEntry] = []
    suffix_algorithm = algorithm_name(path.suffix.lstrip(".").removesuffix("sum"))
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if m := _BSD.match(line):
            algorithm = algorithm_name(m.group(1))
            value, name = m.group(3).lower(), m.group(2)
        elif m := _GNU.match(line):
            value, name = m.group(1).lower(), m.group(2)
            algorithm = _BY_LENGTH.get(len(value))
            if suffix_algorithm and algorithm != suffix_algorithm:
                return None
        else:
            return None  # one line that is not a hash line: this is not a sidecar
        if algorithm is None or _BY_LENGTH.get(len(value)) != algorithm:
            return None
        entries.append(LogEntry(algorithm, value, name=name, section="sidecar"))
    if not entries:
        return None
    return HashLog(path=path, kind="hashsum", entries=tuple(entries))
