"""pytest-benchmark plumbing of the benchmark suite (`python -m pytest bench --benchmark-only`).

The cases themselves live in fastconv.benchmarks (shared with `fastconv bench`); every test here is
one (case, implementation) pair, put in the pytest-benchmark group named after the case (e.g.
"conv2d-fwd lenet-c1") so the implementations line up side by side, and `--benchmark-compare`
matches runs by test name ("test_conv2d_fwd[lenet-c1-direct]").

Timing policy: calls shorter than AUTO_CALIBRATE_BELOW_S go to pytest-benchmark's own calibration
(many iterations per round, --benchmark-max-time etc. apply); longer calls run a fixed number of
rounds that fits FASTCONV_BENCH_BUDGET seconds (default 1), at most BASELINE_MAX_ROUNDS for the
NumPy reference / numpy.matmul, which take seconds on the big shapes. PyTorch and the training API
are optional: their benchmarks are skipped, not failed, when they cannot run.
"""
import os
import time

import pytest

import fastconv
from fastconv.benchmarks import cases, impls, machine, timing

BUDGET_S = float(os.environ.get("FASTCONV_BENCH_BUDGET", "1.0"))
AUTO_CALIBRATE_BELOW_S = 0.02
MAX_ROUNDS = 50
BASELINE_MAX_ROUNDS = 3


def pytest_benchmark_update_machine_info(config, machine_info):
    """Record what was measured with the saved runs (--benchmark-autosave / --benchmark-json)."""
    torch = impls.load_torch()
    machine_info["fastconv"] = fastconv.build_info()
    machine_info["cpu_model"] = machine.cpu_model()
    machine_info["torch"] = torch.__version__ if torch is not None else None


def _first_call_seconds(bench):
    """Warm up, and return an estimate of one call's time (a second call when the first was short)."""
    if bench.warmup is not None:
        bench.warmup()
    start = time.perf_counter()
    bench.fn()
    cost = time.perf_counter() - start
    if cost < timing.KEEP_FIRST_CALL_S:  # the first call may have paid one-time costs
        start = time.perf_counter()
        bench.fn()
        cost = min(cost, time.perf_counter() - start)
    return cost


@pytest.fixture
def run_case(benchmark):
    """run_case(case, impl, group=None): benchmark one implementation of a fastconv.benchmarks case
    (in the pytest-benchmark group named after the case unless `group` is given)."""

    def run(case, impl, group=None):
        if impl == "torch":
            pytest.importorskip("torch")
        try:
            bench = impls.prepare(case, impl)  # sets torch to fastconv's thread count
        except impls.Unavailable as exc:
            pytest.skip(str(exc))
        benchmark.group = group or case.group
        benchmark.extra_info.update(case=case.name, impl=impl, dims=case.describe(),
                                    threads=fastconv.get_num_threads())
        if case.flops():
            benchmark.extra_info["flops"] = case.flops()
        cost = _first_call_seconds(bench)
        if cost < AUTO_CALIBRATE_BELOW_S:
            return benchmark(bench.fn)
        max_rounds = BASELINE_MAX_ROUNDS if impl in cases.BASELINES else MAX_ROUNDS
        rounds = max(1, min(max_rounds, int(BUDGET_S / cost)))
        return benchmark.pedantic(bench.fn, rounds=rounds, iterations=1)

    return run
