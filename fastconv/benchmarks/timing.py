"""Timing: how long each (case, implementation) is run, and the runner that fills one result row.

Each implementation of a case is timed in one block (rounds back to back), PyTorch next, the NumPy
baselines last and then a settle pause, because OpenBLAS's threads keep spinning after a call and take
the cores from the next OpenMP kernel. A round is timed with the standard library's timeit (one timer,
garbage collection off during the round); the repeat policy (warm-up, rounds until a time budget or a
round cap, median) is below because timeit's autorange would spend 0.2 s per round on every case.
"""
import dataclasses
import math
import statistics
import time
import timeit

from . import impls
from .cases import PEAK_GEMM_SIZE, BASELINES, Case, GemmShape

# Long enough for OpenBLAS's spinning threads to go to sleep (docs/performance.md has the measurement).
SETTLE_AFTER_BASELINE_S = 0.3


@dataclasses.dataclass(frozen=True)
class Settings:
    """How long to time each (case, implementation).

    budget_s: time spent repeating after the warm-up; max_rounds caps the repeats, baseline_max_rounds
    caps them for the reference / numpy (slow on big shapes); a round of a fast call repeats it until
    the round lasts min_round_s (timer resolution; the per-call time is the round's mean); settle_s
    is the pause after a baseline's rounds (SETTLE_AFTER_BASELINE_S)."""
    budget_s: float
    max_rounds: int
    baseline_max_rounds: int
    min_round_s: float = 2e-3
    peak_size: int = PEAK_GEMM_SIZE
    settle_s: float = SETTLE_AFTER_BASELINE_S


QUICK = Settings(budget_s=0.2, max_rounds=15, baseline_max_rounds=2)
FULL = Settings(budget_s=1.5, max_rounds=100, baseline_max_rounds=5)
# A first call at least this long is kept as a sample: warming up by running it twice would double
# the cost of the slowest cases for nothing (their first-call effects are a negligible fraction).
KEEP_FIRST_CALL_S = 0.25


def measure(bench, budget_s, max_rounds, min_round_s=2e-3):
    """Time `bench.fn`: {"median_s", "min_s", "rounds"}, seconds per call, after a warm-up."""
    samples = []
    if bench.warmup is not None:
        bench.warmup()
        cost = _timed(bench.fn, 1)
        samples.append(cost)
    else:
        cost = _timed(bench.fn, 1)  # the warm-up call
        if cost >= KEEP_FIRST_CALL_S:
            samples.append(cost)
        else:  # the first call paid one-time costs; a second one tells how many calls fill a round
            cost = min(cost, _timed(bench.fn, 1))
    number = max(1, min(100_000, math.ceil(min_round_s / max(cost, 1e-9))))
    start = time.perf_counter()
    while len(samples) < max_rounds and (not samples or time.perf_counter() - start < budget_s):
        samples.append(_timed(bench.fn, number))
    return {"median_s": statistics.median(samples), "min_s": min(samples), "rounds": len(samples)}


def _timed(fn, number):
    """Mean seconds per call over `number` back-to-back calls."""
    return timeit.Timer(fn).timeit(number) / number


def measure_peak(settings):
    """GFLOP/s of numpy.matmul float32 on square matrices of settings.peak_size: the '% of peak' basis."""
    size = settings.peak_size
    case = Case("gemm", f"{size}^3", GemmShape(size, size, size))
    timing = measure(impls.prepare(case, "numpy"), settings.budget_s, settings.max_rounds, settings.min_round_s)
    time.sleep(settings.settle_s)
    return case.flops() / timing["median_s"] / 1e9


def run_case(case, settings, torch_available, peak_gflops):
    """Time the fastconv / baseline (/ torch) implementations of `case`: one result row (a dict)."""
    main_impl, baseline_impl, torch_impl = case.roles
    row = {"name": case.name, "kind": case.kind, "shape": case.shape_name, "dims": case.describe(),
           "fastconv_impl": main_impl, "baseline": baseline_impl}
    times = {}
    for role, impl in (("fastconv", main_impl), ("torch", torch_impl), ("reference", baseline_impl)):
        if impl is None or (impl == "torch" and not torch_available):
            continue
        try:
            bench = impls.prepare(case, impl)
        except impls.Unavailable as exc:
            row[f"{role}_unavailable"] = str(exc)
            continue
        rounds = settings.baseline_max_rounds if impl in BASELINES else settings.max_rounds
        timing = measure(bench, settings.budget_s, rounds, settings.min_round_s)
        times[role] = timing["median_s"]
        row[f"{role}_rounds"] = timing["rounds"]
        if impl in BASELINES:
            time.sleep(settings.settle_s)
    return _fill_row(row, times, case.flops(), peak_gflops)


def _fill_row(row, times, flops, peak_gflops):
    fast, ref, torch_s = times.get("fastconv"), times.get("reference"), times.get("torch")
    row["fastconv_s"], row["reference_s"] = fast, ref
    row["speedup"] = ref / fast if fast and ref else None
    if torch_s is not None:
        row["torch_s"] = torch_s
        row["torch_ratio"] = fast / torch_s if fast else None  # < 1: fastconv is faster
    if flops and fast:
        row["gflops"] = flops / fast / 1e9
        if peak_gflops:
            row["peak_percent"] = 100.0 * row["gflops"] / peak_gflops
    return row


def run_cases(cases, settings, torch_available, peak_gflops, on_row=None):
    """run_case over `cases`; on_row(row) is called as each row completes (the table streams)."""
    rows = []
    for case in cases:
        row = run_case(case, settings, torch_available, peak_gflops)
        rows.append(row)
        if on_row is not None:
            on_row(row)
    return rows
