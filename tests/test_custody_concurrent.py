"""Several processes (and threads) appending to one custody log at once never break the chain."""

from __future__ import annotations

import hashlib
import itertools
import json
import multiprocessing
import threading
from pathlib import Path

from conftest import run_bitwitness

from bitwitness.case import Case
from bitwitness.custody import GENESIS, CustodyLog
from bitwitness.templates import load_template

WORKERS = 4
APPENDS = 50


def _append_many(log_path: str, worker: int, start: multiprocessing.synchronize.Event) -> None:
    log = CustodyLog(log_path)
    start.wait(30)
    for n in range(APPENDS):
        log.append("stored", actor=f"worker-{worker}", evidence_id=f"E{worker}",
                   details={"worker": worker, "n": n, "note": "x" * (n * 37 % 3000)})


def _check_independently(path: Path, expected: int) -> list[dict]:
    """Parse every line and recompute the chain with hashlib, without our verifier."""
    raw = path.read_bytes()
    assert raw.endswith(b"\n")
    lines = raw.splitlines(keepends=True)
    assert len(lines) == expected
    prev = GENESIS
    docs = []
    for number, line in enumerate(lines, 1):
        doc = json.loads(line)  # an interleaved write would not parse
        assert doc["seq"] == number
        assert doc["prev"] == prev
        prev = hashlib.sha256(line).hexdigest()
        docs.append(doc)
    head = json.loads(path.with_suffix(".head").read_text())
    assert (head["count"], head["last_sha256"]) == (expected, prev)
    return docs


def test_concurrent_appends_from_several_processes(tmp_path: Path) -> None:
    case = Case.create(tmp_path / "c", load_template("default", environ={}),
                       {"case_number": "C-1", "examiner": "Ann"})
    ctx = multiprocessing.get_context("fork")
    start = ctx.Event()
    procs = [ctx.Process(target=_append_many, args=(str(case.custody.path), w, start))
             for w in range(WORKERS)]
    for proc in procs:
        proc.start()
    start.set()
    for proc in procs:
        proc.join(120)
        assert proc.exitcode == 0
    total = 1 + WORKERS * APPENDS
    docs = _check_independently(case.custody.path, total)
    for worker in range(WORKERS):
        mine = [d["details"]["n"] for d in docs if d["details"].get("worker") == worker]
        assert mine == list(range(APPENDS))  # each process's events in its own order
    actors = [d["actor"] for d in docs[1:]]
    switches = sum(a != b for a, b in itertools.pairwise(actors))
    assert switches >= WORKERS  # more than run one after the other: they really overlapped
    times = [d["time"] for d in docs]
    assert times == sorted(times)  # taken under the lock, so in seq order
    check = case.custody.verify()
    assert (check.ok, check.events) == (True, total)
    assert run_bitwitness("custody", "verify", case.root).exit_code == 0


def test_concurrent_appends_from_threads(tmp_path: Path) -> None:
    """flock is per open file, so threads of one process exclude each other too."""
    case = Case.create(tmp_path / "c", load_template("default", environ={}),
                       {"case_number": "C-1", "examiner": "Ann"})
    barrier = threading.Barrier(3)

    def work(worker: int) -> None:
        barrier.wait()
        for n in range(20):
            case.record("verify", evidence_id=f"E{worker}", details={"n": n})

    threads = [threading.Thread(target=work, args=(w,)) for w in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    _check_independently(case.custody.path, 61)
    assert case.custody.verify().ok
