"""Coverage-guided fuzzing of every parser of untrusted input (atheris / libFuzzer).

``python -m fuzz.run TARGET --minutes N`` fuzzes one target; ``python -m fuzz.run --all
--seconds 5`` runs each briefly (CI). ``python -m fuzz.seeds`` builds the seed corpus. The
targets themselves (:mod:`fuzz.targets`) need no atheris: the test suite replays the seeds and
every input that ever failed (``fuzz/regressions/TARGET/``) through them.
"""
