"""The shortcuts large listings take give exactly what the plain forms give.

``ls -r`` and ``timeline`` build one :class:`Entry` and one :class:`Times` per entry without the
frozen dataclass ``__init__`` (``make_entry``), print names through a fast path of ``shown``
and cache permission strings; the listings themselves are checked against ``fls`` and
``mactime`` in test_browse_parity.py and test_browse_listing.py. Here each shortcut is held to
its specification on inputs no test image holds: every code point, undecodable bytes, every
mode.
"""

from __future__ import annotations

import dataclasses
import inspect
import stat
import struct
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bitwitness.report.browse.entries import NO_TIMES, Entry, Times, make_entry
from bitwitness.report.browse.ntfs import FileName, nt_time, parse_file_name
from bitwitness.report.browse.safenames import shown
from bitwitness.report.browse.timeline import body_line, mode_string


def _shown_spec(name: str) -> str:
    """``shown`` as its docstring states it, one character at a time."""
    out = []
    for c in name:
        code = ord(c)
        if code < 0x20 or code == 0x7F:
            out.append("^")
        elif 0xDC80 <= code <= 0xDCFF:
            out.append(f"\\x{code - 0xDC00:02x}")
        elif (0x80 <= code <= 0x9F or 0x202A <= code <= 0x202E or 0x2066 <= code <= 0x2069
              or 0xD800 <= code <= 0xDFFF):
            out.append(f"\\u{code:04x}")
        else:
            out.append(c)
    return "".join(out)


def test_shown_every_code_point() -> None:
    for code in range(0x110000):
        c = chr(code)
        assert shown(f"a{c}b") == _shown_spec(f"a{c}b"), hex(code)


@given(st.binary(max_size=64))
def test_shown_undecodable_bytes(data: bytes) -> None:
    name = data.decode("utf-8", "surrogateescape")
    assert shown(name) == _shown_spec(name)


@given(st.text(st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=()),
               max_size=32))
def test_shown_any_text(name: str) -> None:
    assert shown(name) == _shown_spec(name)


def _fields(**overrides: object) -> dict[str, object]:
    when = datetime(2024, 2, 29, 12, 0, 1, 250_000, tzinfo=UTC)
    fields: dict[str, object] = {
        "path": "/d/x\udcff", "name": "x\udcff", "inode": 12, "attr_type": 128, "attr_id": 3,
        "stream": "ads", "name_type": "r", "meta_type": "r", "deleted": True, "realloc": True,
        "size": 7, "times": Times(when, None, when, None), "mode": 0o4755, "uid": 1000,
        "gid": 100, "link": None, "file_name_times": NO_TIMES}
    fields.update(overrides)
    return fields


def test_make_entry_takes_every_field_of_entry() -> None:
    taken = set(inspect.signature(make_entry).parameters)
    assert taken == {f.name for f in dataclasses.fields(Entry)}


def test_make_entry_equals_entry() -> None:
    for overrides in ({}, {"file_name_times": None, "link": "../t", "stream": None}):
        fields = _fields(**overrides)
        fast, plain = make_entry(**fields), Entry(**fields)  # type: ignore[arg-type]
        assert fast == plain
        assert hash(fast) == hash(plain)
        assert repr(fast) == repr(plain)
        assert dataclasses.asdict(fast) == dataclasses.asdict(plain)
        assert dataclasses.replace(fast, size=9) == dataclasses.replace(plain, size=9)
        try:
            fast.size = 9  # type: ignore[misc]
        except dataclasses.FrozenInstanceError:
            pass
        else:
            raise AssertionError("an entry from make_entry is not frozen")


def test_times_from_meta_equals_times() -> None:
    meta = SimpleNamespace(mtime=1_700_000_000, mtime_nano=123_456_789, atime=0, atime_nano=5,
                           ctime=0xFFFFFFFF, ctime_nano=0, crtime=None, crtime_nano=None)
    times = Times.from_meta(meta)
    expected = Times(datetime(2023, 11, 14, 22, 13, 20, 123_456, tzinfo=UTC), None,
                     datetime(2106, 2, 7, 6, 28, 15, tzinfo=UTC), None)
    assert times == expected
    assert repr(times) == repr(expected)
    assert hash(times) == hash(expected)


def test_body_line_controls_as_carets() -> None:
    name = "".join(chr(c) for c in range(0x30)) + "\x7f\x85\u202e\udcff"
    entry = make_entry(**_fields(path=f"/{name}", name=name, stream=None,  # type: ignore[arg-type]
                                 attr_type=None, deleted=False, realloc=False))
    shown_name = body_line(entry).split("|")[1]
    kept = "".join(chr(c) for c in range(0x20, 0x30)) + "\x7f\x85\u202e\udcff"
    expected = "/" + "^" * 0x20 + kept  # as TSK: only C0 controls change in a bodyfile
    assert shown_name == expected


def test_mode_string_every_mode() -> None:
    """Against the standard library's ``stat.filemode`` (``ls -l``'s letters)."""
    for mode in range(0o10000):
        entry = make_entry(**_fields(mode=mode, name_type="d", meta_type="d"))  # type: ignore[arg-type]
        assert mode_string(entry) == "d/d" + stat.filemode(mode)[1:], oct(mode)


def test_interactive_agrees_with_rich(monkeypatch: pytest.MonkeyPatch) -> None:
    """``interactive`` skips rich only where rich's own answer is no."""
    import io

    from rich.console import Console

    from bitwitness.cli import output, progress

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    for stream in (io.StringIO(), Tty()):
        for variables in ({}, {"FORCE_COLOR": "1"}, {"TTY_COMPATIBLE": "1"},
                          {"TTY_COMPATIBLE": "0"}, {"FORCE_COLOR": ""}):
            with monkeypatch.context() as m:
                for name in output.TERMINAL_VARIABLES:
                    m.delenv(name, raising=False)
                for name, value in variables.items():
                    m.setenv(name, value)
                m.setattr("sys.stderr", stream)
                m.setattr("bitwitness.cli.output.stderr", Console(file=stream), raising=False)
                expected = Console(file=stream).is_terminal
                assert progress.interactive() is expected, (type(stream), variables)


@given(st.integers(min_value=116444736000000000 + 10_000_000,
                   max_value=116444736000000000 + (0xFFFFFFFF * 10_000_000)))
def test_nt_time_is_filetime_in_utc(value: int) -> None:
    """A FILETIME counts 100 ns from 1601-01-01 UTC (below the 32-bit wrap of TSK's seconds)."""
    expected = datetime(1601, 1, 1, tzinfo=UTC) + timedelta(microseconds=value // 10)
    assert nt_time(value) == expected


def test_parse_file_name_equals_file_name() -> None:
    name = "résumé.txt".encode("utf-16-le")
    stamps = [116444736000000000 + n * 10_000_123 for n in (1, 2, 3, 4)]
    data = (struct.pack("<Q4Q", 5 | (3 << 48), *stamps) + bytes(24)
            + bytes([len(name) // 2, 1]) + name)
    parsed = parse_file_name(7, data)
    c, m, ch, a = (nt_time(v) for v in stamps)
    expected = FileName(attr_id=7, size=len(data), parent=5, namespace=1, name="résumé.txt",
                        times=Times(m, a, ch, c))
    assert parsed == expected
    assert repr(parsed) == repr(expected)


@given(st.lists(st.integers(min_value=0, max_value=(1 << 64) - 1) | st.integers(0, 40),
                max_size=3000))
def test_digest_set_is_a_set(keys: list[int]) -> None:
    """The export's compact digest table answers as a set does (through several growths)."""
    from bitwitness.report.browse.export import _DigestSet

    table, plain = _DigestSet(), set()
    for n, key in enumerate(keys):
        assert (key in table) == ((key or 1) in plain)
        if n % 3:
            table.add(key)
            plain.add(key or 1)
            assert len(table) == len(plain)
    for key in range(64):
        assert (key in table) == ((key or 1) in plain)


_TIME_VALUES = st.one_of(st.none(), st.integers(0, 0xFFFFFFFF), st.sampled_from(
    [0, 1, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 1 << 32, (1 << 32) + 5]))
_NANO_VALUES = st.one_of(st.none(), st.integers(0, 0xFFFFFFFF), st.sampled_from(
    [0, 999_999_999, 1_000_000_000, 3_999_999_999]))


@given(st.lists(st.tuples(_TIME_VALUES, _NANO_VALUES), min_size=4, max_size=4))
def test_lazy_times_equal_times(pairs: list[tuple[int | None, int | None]]) -> None:
    """``Times.from_meta`` keeps TSK's integers and makes the datetimes on first read: equal
    to, hashed and shown as the Times made at once, and its bodyfile seconds are theirs."""
    from bitwitness.report.browse.entries import _tsk_time

    (m, mn), (a, an), (c, cn), (b, bn) = pairs
    meta = SimpleNamespace(mtime=m, mtime_nano=mn, atime=a, atime_nano=an, ctime=c,
                           ctime_nano=cn, crtime=b, crtime_nano=bn)
    eager = Times(_tsk_time(m, mn), _tsk_time(a, an), _tsk_time(c, cn), _tsk_time(b, bn))
    _assert_lazy_equals(lambda: Times.from_meta(meta), eager)


def _assert_lazy_equals(lazy_times: Callable[[], Times], eager: Times) -> None:
    """Times made lazily (``lazy_times()``, called twice: each is read once) are equal to,
    hashed and shown as ``eager``, and give its bodyfile seconds and completeness both before
    and after their datetimes are made, and once replaced."""
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    seconds = tuple((v - epoch) // timedelta(seconds=1) if v is not None else 0
                    for v in (eager.modified, eager.accessed, eager.changed, eager.born))
    lazy = lazy_times()
    assert lazy.complete() == eager.complete()  # from the integers
    assert lazy.epoch_seconds() == seconds
    assert hash(lazy) == hash(eager)
    assert lazy == eager
    assert eager == lazy
    assert repr(lazy) == repr(eager)
    assert lazy.epoch_seconds() == seconds  # from the datetimes
    assert dataclasses.asdict(lazy) == dataclasses.asdict(eager)
    assert vars(lazy) == vars(eager)
    replaced = dataclasses.replace(lazy_times(), born=None)
    assert replaced == dataclasses.replace(eager, born=None)
    assert replaced.epoch_seconds() == (*seconds[:3], 0)


_FILETIMES = st.one_of(st.integers(0, (1 << 64) - 1), st.sampled_from(
    [0, 116444736000000000 - 1, 116444736000000000, 116444736000000000 + 9_999_999,
     116444736000000000 + 10_000_000, 116444736000000000 + (1 << 32) * 10_000_000,
     116444736000000000 + ((1 << 32) + 1) * 10_000_000 + 5, (1 << 64) - 1]))


@given(st.lists(_FILETIMES, min_size=4, max_size=4))
def test_lazy_nt_times_equal_times(values: list[int]) -> None:
    """The ``$FILE_NAME``/``$STANDARD_INFORMATION`` times keep the FILETIMEs and make the
    datetimes on first read (``nt_time`` each): equal to, hashed and shown as the Times made
    at once, and their bodyfile seconds and completeness are those of the datetimes."""
    data = struct.pack("<4Q", *values[:4])
    crtime, mtime, ctime, atime = values[:4]
    eager = Times(nt_time(mtime), nt_time(atime), nt_time(ctime), nt_time(crtime))

    def lazy_times() -> Times:
        found = parse_file_name(1, bytes(8) + data + bytes(32) + b"\x01\x01a\x00")
        assert found is not None
        return found.times

    _assert_lazy_equals(lazy_times, eager)


_FILE_NAME_ATTRS = st.lists(st.tuples(
    st.integers(0, 0xFFFF), st.sampled_from([0, 1, 2, 3, 7]),
    st.integers(0, 40), st.integers(-10, 20)), max_size=4)


@given(_FILE_NAME_ATTRS, st.data())
def test_timeline_file_name_of_equals_parsing_each(
        attrs: list[tuple[int, int, int, int]], data: st.DataObject) -> None:
    """``timeline_file_name_of`` (what a timeline takes of each NTFS file's ``$FILE_NAME``
    bytes, parsing only the one it chooses) gives the attribute id, size and times of TSK's
    rule applied to every one parsed, the last that is not a DOS alias: DOS aliases, names too
    short to parse and names longer than their bytes included."""
    from bitwitness.report.browse.ntfs import NAMESPACE_DOS, timeline_file_name_of

    held = []
    for attr_id, namespace, length, extra in attrs:
        times = data.draw(st.lists(_FILETIMES, min_size=4, max_size=4))
        body = (bytes(8) + struct.pack("<4Q", *times) + bytes(24)
                + bytes([length, namespace]) + "n".encode("utf-16-le") * length)
        held.append((attr_id, body[:max(0, len(body) + extra)] if extra < 0 else body
                     + bytes(extra)))
    parsed = [p for p in (parse_file_name(i, b) for i, b in held) if p is not None]
    chosen = ([p for p in parsed if p.namespace != NAMESPACE_DOS] or [None])[-1]
    named = timeline_file_name_of(held)
    if chosen is None:
        assert named is None
    else:
        assert named is not None
        assert (named.attr_id, named.size) == (chosen.attr_id, chosen.size)
        assert named.times == chosen.times
        assert named.times.epoch_seconds() == chosen.times.epoch_seconds()


def test_file_name_cut_short_keeps_its_whole_units() -> None:
    """A ``$FILE_NAME`` whose name runs past the attribute's bytes, ending in half a UTF-16
    unit (a damaged or crafted MFT record), parses to the whole units it holds; it raised
    ``UnicodeDecodeError`` before."""
    found = parse_file_name(3, bytes(64) + bytes([3, 1]) + "ab".encode("utf-16-le") + b"c")
    assert found is not None
    assert (found.attr_id, found.size, found.namespace, found.name) == (3, 71, 1, "ab")


def _slot_right(block: bytes, inode_size: int) -> bool:
    from bitwitness.report.browse.moretimes import _EXT_TIME_BYTES, _tsk_reads_right

    for at in range(0, len(block), inode_size):
        raw = block[at:at + min(inode_size, _EXT_TIME_BYTES)]
        extra_size = 128 + struct.unpack_from("<H", raw, 128)[0] if len(raw) >= 130 else 128
        if not _tsk_reads_right(raw, extra_size):
            return False
    return True


_SLOT_BYTES = st.sampled_from([0, 1, 3, 4, 0x20, 0x7F, 0x80, 0xFF])


@given(st.sampled_from([128, 256, 512, 1024]), st.data())
def test_block_check_is_never_looser_than_each_slot(inode_size: int, data: st.DataObject
                                                     ) -> None:
    """An inode-table block counts as read right at once only when every inode slot in it
    would, asked alone (the check that decides whether an ext time is decoded again)."""
    from bitwitness.report.browse.moretimes import _block_reads_right

    block = bytearray(4096)
    places = (8, 11, 12, 15, 16, 19, 128, 129, 132, 136, 140, 144, 147, 148)
    for slot in range(0, 4096, inode_size):
        for at in data.draw(st.lists(st.sampled_from(places), max_size=4)):
            if at < inode_size:
                block[slot + at] = data.draw(_SLOT_BYTES)
    if _block_reads_right(bytes(block), inode_size):
        assert _slot_right(bytes(block), inode_size)


def test_block_check_passes_a_common_block() -> None:
    """A block of ordinary ext4 inodes (times after 1970, no epoch bits) is read right."""
    from bitwitness.report.browse.moretimes import _block_reads_right

    slot = bytearray(256)
    struct.pack_into("<iii", slot, 8, 1_700_000_000, 1_700_000_001, 1_700_000_002)
    struct.pack_into("<H", slot, 128, 32)
    struct.pack_into("<IIIiI", slot, 132, 4 << 2, 8 << 2, 12 << 2, 1_700_000_003, 16 << 2)
    assert _block_reads_right(bytes(slot) * 16, 256)
    assert _slot_right(bytes(slot) * 16, 256)
    slot[148] |= 1  # an epoch bit of the creation time
    assert not _block_reads_right(bytes(slot) * 16, 256)


def _safe_chars_spec(name: str) -> str:
    """The escaping step of ``safe_name`` as its docstrings state it, a character at a time."""
    from bitwitness.report.browse.safenames import _escape_char

    return "".join(_escape_char(c) if c in '%/\\<>:"|?*' or ord(c) < 0x20 or ord(c) == 0x7F
                   or 0xD800 <= ord(c) <= 0xDFFF else c for c in name)


def test_name_forms_every_code_point() -> None:
    """``safe_name``, ``is_exact`` and ``escaped`` take a regular expression where they looped
    over each character; every code point gives what the loop gave."""
    from bitwitness.report.browse.safenames import escaped, is_exact, safe_name

    for code in range(0x110000):
        name = f"a{chr(code)}b"
        try:
            expected: str | type = _safe_chars_spec(name)
        except UnicodeEncodeError:  # a lone surrogate no decoded name holds
            expected = UnicodeEncodeError
        try:
            got: str | type = safe_name(name)
        except UnicodeEncodeError:
            got = UnicodeEncodeError
        assert got == expected, hex(code)
        undecoded = 0xDC80 <= code <= 0xDCFF
        assert is_exact(name) is not undecoded, hex(code)
        assert escaped(name) == (f"a\\x{code - 0xDC00:02x}b" if undecoded else name), hex(code)


def test_hasher_copy_is_independent() -> None:
    """The export copies an untouched hasher per file: each copy hashes alone."""
    import hashlib

    from bitwitness.hashing import MultiHasher

    blank = MultiHasher(("md5", "sha256", "sha1"))
    first, second = blank.copy(), blank.copy()
    first.update(b"abc")
    second.update(b"de")
    second.update(b"f")
    for hasher, data in ((blank, b""), (first, b"abc"), (second, b"def")):
        assert hasher.hexdigests() == {name: hashlib.new(name, data).hexdigest()
                                       for name in ("md5", "sha256", "sha1")}
        assert hasher.bytes_hashed == len(data)


def test_digest_set_insert_says_whether_new() -> None:
    """``insert`` (one probe) answers as ``in`` then ``add`` did (the export's ``claim``)."""
    from bitwitness.report.browse.export import _DigestSet

    table = _DigestSet()
    for key in [*range(3000), *range(0, 3000, 7), 0, 1]:
        was_in = key in table
        assert table.insert(key) is not was_in
        assert key in table


_NAMES = st.text(st.characters(codec="utf-8") | st.sampled_from(
    [",", '"', "\r", "\n", "\x00", "\x7f", "\\", "\udc80", "\udcff", "\u2028", " "]))
_WHEN = st.none() | st.datetimes(timezones=st.sampled_from(
    [UTC, timezone(timedelta(hours=2)), timezone(timedelta(0))]))


@given(source=_NAMES, target=_NAMES, inode=_NAMES, kind=_NAMES, deleted=st.booleans(),
       size=st.integers(0, 1 << 64), times=st.lists(_WHEN, min_size=8, max_size=8),
       fn=st.booleans())
def test_manifest_row_by_hand_equals_json_and_csv(
        *, source: str, target: str, inode: str, kind: str, deleted: bool, size: int,
        times: list[datetime | None], fn: bool) -> None:
    """A manifest row formatted by hand is what ``json.dumps`` of the row's object and
    ``csv.writer`` give, for any names (quotes, commas, line ends, controls, undecodable
    bytes) and times in any zone (kept ISO strings included)."""
    import csv
    import io
    import json

    from bitwitness.report.browse.entries import Times
    from bitwitness.report.browse.export import (
        CSV_FIELDS,
        ExportedFile,
        _csv_line,
        _file_values,
        _IsoTimes,
        _json_row,
        escaped,
    )
    from bitwitness.report.browse.safenames import is_exact, raw_bytes

    f = ExportedFile(source=source, target=target, inode=inode, kind=kind, deleted=deleted,
                     size=size, modified=times[0], accessed=times[1], changed=times[2],
                     born=times[3], md5="0" * 32, sha256="f" * 64,
                     file_name_times=Times(*times[4:]) if fn else None)
    iso = _IsoTimes()
    for _ in range(2):  # the second time from the kept strings
        values = _file_values(f, iso)
        plain = [t.isoformat() if t is not None else "" for t in times]
        expected = {"source": escaped(source),
                    "source_hex": "" if is_exact(source) else raw_bytes(source).hex(),
                    "target": target, "inode": inode, "kind": kind, "deleted": deleted,
                    "size": size, "modified": plain[0], "accessed": plain[1],
                    "changed": plain[2], "born": plain[3],
                    "fn_modified": plain[4] if fn else "", "fn_accessed": plain[5] if fn else "",
                    "fn_changed": plain[6] if fn else "", "fn_born": plain[7] if fn else "",
                    "md5": "0" * 32, "sha256": "f" * 64}
        assert list(expected) == list(CSV_FIELDS)
        assert values == list(expected.values())
        assert _json_row(values) == json.dumps(expected, ensure_ascii=False)
        out = io.StringIO()
        csv.writer(out).writerow(values)
        line = _csv_line(values)
        assert line is None or line == out.getvalue()
        if _plain_csv(source, target, inode, kind):
            assert line is not None  # the usual names take the short way


def _plain_csv(*fields: str) -> bool:
    """No comma, quote or control character (C0 or DEL) in any field."""
    return not any(c in ',"\x7f' or ord(c) < 0x20 for field in fields for c in field)


@given(st.lists(st.lists(st.text(st.sampled_from(
    ["a", "é", ",", '"', "\r", "\n", " ", "\x00", "\x01", "z"])),
    min_size=1, max_size=4), min_size=1, max_size=6))
def test_export_listing_reads_csv_as_csv_reader(rows: list[list[str]]) -> None:
    """``export``'s listing reads manifest.csv back as csv.reader does, the lines it splits
    by hand included (quotes, commas, line ends, NUL in any field)."""
    import csv
    import io

    from bitwitness.cli.commands.export import _csv_rows

    written = io.StringIO(newline="")
    csv.writer(written).writerows(rows)
    text = written.getvalue()
    assert list(_csv_rows(io.StringIO(text, newline=""))) == list(
        csv.reader(io.StringIO(text, newline="")))
