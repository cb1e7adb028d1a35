"""A bounded run of the atheris fuzz target of the functional API (tests/fuzz/fuzz_functional.py).

Ten thousand inputs from an empty corpus with a fixed seed (so a failure reproduces), in a
subprocess: libFuzzer ends the process at the first finding and saves the input, whose path the
failure message gives. Its docstring says how to run a long campaign by hand.
"""

import importlib.util
import pathlib
import subprocess
import sys

import pytest

FUZZ_TARGET = pathlib.Path(__file__).parent / "fuzz" / "fuzz_functional.py"
RUNS = 10000
SEED = 1
HANG_SECONDS = 600   # the run takes about a minute


@pytest.mark.skipif(importlib.util.find_spec("atheris") is None,
                    reason="atheris is not installed (it comes with the test extra: pip install -e '.[test]')")
def test_fuzz_functional_bounded_run(tmp_path):
    # No -timeout: libFuzzer's timer (SIGALRM every timeout / 2 s) can fire while the interpreter
    # exits after the last run, killing a passing run; a hang ends in TimeoutExpired here instead.
    command = [sys.executable, str(FUZZ_TARGET), f"-atheris_runs={RUNS}", f"-seed={SEED}", "-rss_limit_mb=2048",
               f"-artifact_prefix={tmp_path}/"]
    run = subprocess.run(command, capture_output=True, text=True, timeout=HANG_SECONDS)
    assert run.returncode == 0, (f"{' '.join(command)} failed (the input is saved in {tmp_path}):\n"
                                 f"{run.stderr[-6000:]}")
    assert f"Done {RUNS} in" in run.stderr, run.stderr[-2000:]
