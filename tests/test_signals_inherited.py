"""The suite passes whatever signal dispositions it inherits: started with SIGINT and SIGTERM
ignored, as ``nohup`` and some CI runners do, every real-signal test still runs and passes
(tests/conftest.py gives every test the dispositions of a terminal)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent


#: Runs the command in its arguments with SIGINT and SIGTERM ignored (exec keeps an ignored
#: disposition; a ``preexec_fn`` would run in a fork of this threaded process).
_IGNORING = ("import os, signal, sys\n"
             "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
             "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
             "os.execv(sys.argv[1], sys.argv[1:])\n")


#: Every test that sends the process under test a real SIGINT/SIGTERM.
SIGNAL_TESTS = ("test_acquire_interrupt.py", "test_restore_logs.py", "test_job_runner.py",
                "test_acquire_rescue.py", "test_acquire_faultydrive.py", "test_mount.py")
SELECT = "sigint or sigterm or ctrl_c"


def test_real_signal_tests_pass_when_the_suite_starts_with_sigint_ignored() -> None:
    """Every real-signal test, run in a pytest started with both signals ignored: none may
    fail, and the number that pass is the number that pass in a pytest that inherits nothing
    unusual (those that skip here, for want of FUSE say, skip in both)."""
    def start(*before: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [*before, sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
             "-p", "no:xdist", *(str(TESTS / name) for name in SIGNAL_TESTS), "-k", SELECT],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=TESTS.parent)

    def last_line(proc: subprocess.Popen[str]) -> str:
        out, _ = proc.communicate(timeout=600)
        assert proc.returncode == 0, out[-3000:]
        return out.strip().splitlines()[-1]

    # both at once: the signal tests mostly wait on the processes they signal, and one run
    # after the other made this the suite's longest test
    runs = start(sys.executable, "-c", _IGNORING), start()
    try:
        ignoring, plain = (last_line(proc) for proc in runs)
    finally:
        for proc in runs:
            proc.kill()
            proc.wait()
    # and the started pytest did inherit both ignored
    seen = subprocess.run(
        [sys.executable, "-c", _IGNORING, sys.executable, "-c",
         "import signal as s; print(*(s.getsignal(n) == s.SIG_IGN for n in (2, 15)))"],
        capture_output=True, text=True, check=True).stdout.split()
    assert seen == ["True", "True"], seen
    passed = re.search(r"(\d+) passed", ignoring)
    assert passed, ignoring
    assert int(passed.group(1)) >= 3, ignoring
    assert re.sub(r" in [\d.]+s.*", "", ignoring) == re.sub(r" in [\d.]+s.*", "", plain)
