"""The sessions of a multi-session ISO 9660 image, found without a TOC.

A CD-R or DVD±R written in several sessions keeps every one: each later session is a whole new
volume descriptor set and tree (``genisoimage -C start,next -M previous``, ``xorriso -as
mkisofs -C/-M``) whose block addresses count from the disc's start, and whose tree usually
repeats the files kept and leaves out the files removed. A drive presents the last session (the
TOC's multi-session pointer: its descriptors at that session's start + 16); a dd image of the disc
holds them all, but no TOC, and The Sleuth Kit reads the descriptors at sector 16, which are the
first session's. An image grown on overwritable media or in a file (``xorriso -dev``, libisoburn's
multi-session emulation) is the other way round: the descriptors at sector 16 are a copy of the
last session's, rewritten at each growth, and the older sessions lie past sector 32, each with
its own descriptors at its start + 16.

So the sessions are found by a scan, the way libisoburn's TOC emulation walks them: a session
starting at sector ``X`` has a primary volume descriptor at ``X + 16`` whose root folder lies past
its descriptors and inside its volume space; the next session starts at or after
``X + volume space size`` (what genisoimage and libisofs write there, measured: the session's
own length), and is looked for at every sector up to :data:`MAX_GAP` sectors further, which
covers a CD-R's lead-out/lead-in gaps (11,400 sectors after the first session, 6,900 after
later ones) and libisoburn's 32-sector alignment. When sector 32 starts such a session and one
of the sessions walked from there has the very root record of the descriptors at sector 16,
those are an emulated TOC's copy: the sessions are the ones from sector 32 on. Otherwise the
first session is the one at sector 0.

Bounds: at most :data:`MAX_SESSIONS` sessions and :data:`MAX_SCANNED` sectors read looking for
them; past either the scan stops and says so (:attr:`SessionScan.note`), so that a hostile image
costs bounded time and memory and a later session that may exist is not passed over silently.
"""

from __future__ import annotations

from dataclasses import dataclass

from bitwitness.stream import ImageStream

SECTOR = 2048
#: a session's volume descriptor set begins this many sectors after the session's start
DESCRIPTORS_AT = 16
#: where libisoburn writes the first session of an emulated multi-session image
EMULATED_FIRST = 32
#: sessions read from one image at most (a CD holds 99 tracks; DVD+R some 150)
MAX_SESSIONS = 512
#: sectors past a session's end looked through for the next session's start
MAX_GAP = 32768
#: sectors read in all while looking for sessions (512 MiB)
MAX_SCANNED = 1 << 18
_PRIMARY = b"\x01CD001\x01"  # type 1, standard identifier, version 1
_ROOT_AT = 156
_ROOT_LENGTH = 34
_CHUNK = 64  # sectors read at a time while scanning


@dataclass(frozen=True)
class IsoSession:
    """One session: where it starts and what its primary volume descriptor records."""

    number: int  #: 1 for the first in the image, in the order the sessions lie
    count: int  #: sessions found in the image
    start: int  #: its first sector (2048 bytes); its descriptors begin at ``start + 16``
    blocks: int  #: the volume space size its primary descriptor records (its own length)
    #: the descriptors at sector 16 describe this session's tree (its root record is theirs):
    #: The Sleuth Kit reads this session, and its inode numbers are TSK's
    head: bool

    @property
    def descriptors(self) -> int:
        """The sector its volume descriptor set is read from: 16 for the session TSK reads
        (so that what is read is exactly what TSK reads), else ``start + 16``."""
        return DESCRIPTORS_AT if self.head else self.start + DESCRIPTORS_AT

    @property
    def last(self) -> bool:
        """The session a drive presents."""
        return self.number == self.count

    @property
    def end(self) -> int:
        """The sector after its volume space, counted from the image's start."""
        return self.start + self.blocks

    @property
    def address_base(self) -> int:
        """What its inode numbers start from: 0 for the session TSK reads (TSK's own numbers,
        always below 2^32), ``number << 32`` for the others, so that no number of one session
        is also a number of another or of TSK's."""
        return 0 if self.head else self.number << 32

    def describe(self) -> str:
        """``session 1 of 3, sectors 0-177``."""
        return (f"session {self.number} of {self.count}, sectors {self.start}-{self.end - 1}"
                f"{', its descriptors copied to sector 16' if self.head and self.start else ''}")


@dataclass(frozen=True)
class SessionScan:
    """The sessions found in order, and why the scan stopped early if it did."""

    sessions: tuple[IsoSession, ...]
    #: a bound reached (more sessions, or more sectors to look through): a later session
    #: may exist that is not listed
    note: str | None = None

    @property
    def several(self) -> bool:
        return len(self.sessions) > 1 or (self.note is not None and bool(self.sessions))


def _le32(data: bytes, at: int) -> int:
    return int.from_bytes(data[at:at + 4], "little")


def _session_blocks(block: bytes, start: int, total: int) -> int | None:
    """The volume space size of ``block`` when it is the primary volume descriptor of a
    session starting at sector ``start``, else None: 2048-byte blocks, a root record whose
    folder lies past the descriptor set (``start + 18`` at the least), inside the session's
    volume space and inside the image. An ISO image stored as a file inside a session has its
    root near its own start (its addresses count from there) and is not taken for one."""
    if block[:7] != _PRIMARY or len(block) < SECTOR:
        return None
    if int.from_bytes(block[128:130], "little") != SECTOR:
        return None
    blocks = _le32(block, 80)
    root = block[_ROOT_AT:_ROOT_AT + _ROOT_LENGTH]
    extent = _le32(root, 2)
    if root[0] != _ROOT_LENGTH or blocks <= 0:
        return None
    if not start + DESCRIPTORS_AT + 2 <= extent < min(start + blocks, total):
        return None
    return blocks


@dataclass
class _Scanner:
    stream: ImageStream
    total: int  #: sectors in the image
    scanned: int = 0

    def at(self, start: int) -> tuple[int, bytes] | None:
        """(volume space size, root record) of a session starting exactly at ``start``."""
        block = self.stream.pread((start + DESCRIPTORS_AT) * SECTOR, SECTOR)
        blocks = _session_blocks(block, start, self.total)
        return None if blocks is None else (blocks, block[_ROOT_AT:_ROOT_AT + _ROOT_LENGTH])

    def next(self, cursor: int) -> tuple[int, int, bytes] | None:
        """(start, volume space size, root record) of the first session starting between
        ``cursor`` and ``cursor + MAX_GAP``; None when there is none or the scan's budget is
        spent (:attr:`exhausted`)."""
        sector = cursor + DESCRIPTORS_AT
        last = min(cursor + MAX_GAP + DESCRIPTORS_AT, self.total - 1)
        while sector <= last and not self.exhausted:
            count = min(_CHUNK, last - sector + 1, MAX_SCANNED - self.scanned)
            data = self.stream.pread(sector * SECTOR, count * SECTOR)
            self.scanned += count
            for k in range(len(data) // SECTOR):
                if data[k * SECTOR:k * SECTOR + 7] != _PRIMARY:
                    continue
                start = sector + k - DESCRIPTORS_AT
                block = data[k * SECTOR:(k + 1) * SECTOR]
                blocks = _session_blocks(block, start, self.total)
                if blocks is not None:
                    return start, blocks, block[_ROOT_AT:_ROOT_AT + _ROOT_LENGTH]
            if len(data) < count * SECTOR:
                return None
            sector += count
        return None

    @property
    def exhausted(self) -> bool:
        return self.scanned >= MAX_SCANNED

    def chain(self, first: tuple[int, int, bytes]) -> tuple[list[tuple[int, int, bytes]],
                                                            str | None]:
        """The sessions from ``first`` on, each found past the previous one's end."""
        found = [first]
        while True:
            start, blocks, _root = found[-1]
            following = self.next(start + blocks)
            if following is None:
                break
            if len(found) == MAX_SESSIONS:
                return found, (f"more than {MAX_SESSIONS} ISO 9660 sessions: only the first "
                               f"{MAX_SESSIONS} are read; later ones are not listed")
            found.append(following)
        if self.exhausted:
            return found, (f"the scan for ISO 9660 sessions stopped after {MAX_SCANNED} "
                           "sectors; a later session may exist that is not listed")
        return found, None


def find_sessions(stream: ImageStream) -> SessionScan:
    """The sessions of the ISO 9660 image ``stream`` (see the module's doc); none when the
    descriptors at sector 16 are no primary volume descriptor of ours to judge (TSK's then).
    Never raises on damage: a session that does not hold together is not one."""
    total = stream.size // SECTOR
    scanner = _Scanner(stream, total)
    head = scanner.at(0)
    if head is None:
        return SessionScan(())
    head_blocks, head_root = head
    found: list[tuple[int, int, bytes]] | None = None
    note = None
    emulated = scanner.at(EMULATED_FIRST)
    if emulated is not None:
        walked, said = scanner.chain((EMULATED_FIRST, *emulated))
        if any(root == head_root for _start, _blocks, root in walked):
            found, note = walked, said
    if found is None:
        found, note = scanner.chain((0, head_blocks, head_root))
    count = len(found)
    sessions = tuple(IsoSession(number=n, count=count, start=start, blocks=blocks,
                                head=root == head_root)
                     for n, (start, blocks, root) in enumerate(found, 1))
    return SessionScan(sessions, note)
