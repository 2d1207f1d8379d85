"""The suite passes whatever signal dispositions it inherits (issue 18.8): started with SIGINT
and SIGTERM ignored, as ``nohup`` and some CI runners do, the real-signal tests still run and
pass (tests/conftest.py gives every test the dispositions of a terminal)."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def _ignoring() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def test_real_signal_tests_pass_when_the_suite_starts_with_sigint_ignored() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
         str(TESTS / "test_restore_logs.py"), "-k", "sigint"],
        preexec_fn=_ignoring, capture_output=True, text=True, check=False, timeout=300,
        cwd=TESTS.parent)
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert "1 passed" in proc.stdout
