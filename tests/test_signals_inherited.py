"""The suite passes whatever signal dispositions it inherits: started with SIGINT and SIGTERM
ignored, as ``nohup`` and some CI runners do, every real-signal test still runs and passes
(tests/conftest.py gives every test the dispositions of a terminal)."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def _ignoring() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


#: Every test that sends the process under test a real SIGINT/SIGTERM.
SIGNAL_TESTS = ("test_acquire_interrupt.py", "test_restore_logs.py", "test_job_runner.py",
                "test_acquire_rescue.py", "test_acquire_faultydrive.py", "test_mount.py")
SELECT = "sigint or sigterm or ctrl_c"


def test_real_signal_tests_pass_when_the_suite_starts_with_sigint_ignored() -> None:
    """Every real-signal test, run in a pytest started with both signals ignored: none may
    fail, and the number that pass is the number that pass in a pytest that inherits nothing
    unusual (those that skip here, for want of FUSE say, skip in both)."""
    def run(preexec: object) -> str:
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
             *(str(TESTS / name) for name in SIGNAL_TESTS), "-k", SELECT],
            preexec_fn=preexec, capture_output=True, text=True,  # type: ignore[arg-type]
            check=False, timeout=600, cwd=TESTS.parent)
        assert proc.returncode == 0, proc.stdout[-3000:]
        return proc.stdout.strip().splitlines()[-1]

    ignoring, plain = run(_ignoring), run(None)
    passed = re.search(r"(\d+) passed", ignoring)
    assert passed, ignoring
    assert int(passed.group(1)) >= 3, ignoring
    assert re.sub(r" in [\d.]+s.*", "", ignoring) == re.sub(r" in [\d.]+s.*", "", plain)
