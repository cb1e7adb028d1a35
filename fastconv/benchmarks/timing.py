"""Timing: how long each (case, implementation) is run, and the runner that fills one result row.

Each implementation of a case is timed in one block (rounds back to back), PyTorch next, the NumPy
baselines last and then a settle pause, because OpenBLAS's threads keep spinning after a call and take
the cores from the next OpenMP kernel. With `pairs` > 1 the blocks of fastconv and its comparisons
(PyTorch; numpy.matmul for gemm) alternate `pairs` times and each ratio is the median of the per-pair
ratios, with their range: on a shared host a slow minute then moves one pair, not the verdict.
A round is timed with the standard library's timeit (one timer, garbage collection off during the
round); the repeat policy (warm-up, rounds until a time budget or a round cap, median) is below
because timeit's autorange would spend 0.2 s per round on every case.
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
    pairs: int = 1


QUICK = Settings(budget_s=0.2, max_rounds=15, baseline_max_rounds=2)
FULL = Settings(budget_s=1.5, max_rounds=100, baseline_max_rounds=5)
# A first call at least this long is kept as a sample: warming up by running it twice would double
# the cost of the slowest cases for nothing (their first-call effects are a negligible fraction).
KEEP_FIRST_CALL_S = 0.25


def warm_up(bench):
    """Warm `bench` up: (seconds of one call, whether that call may count as a timed round)."""
    if bench.warmup is not None:
        bench.warmup()
        return time_calls(bench.fn, 1), True
    cost = time_calls(bench.fn, 1)
    if cost >= KEEP_FIRST_CALL_S:
        return cost, True
    return min(cost, time_calls(bench.fn, 1)), False  # the first call paid one-time costs


def measure(bench, budget_s, max_rounds, min_round_s=2e-3):
    """Time `bench.fn`: {"median_s", "min_s", "rounds"}, seconds per call, after a warm-up."""
    cost, counts = warm_up(bench)
    samples = [cost] if counts else []
    number = max(1, min(100_000, math.ceil(min_round_s / max(cost, 1e-9))))
    start = time.perf_counter()
    while len(samples) < max_rounds and (not samples or time.perf_counter() - start < budget_s):
        samples.append(time_calls(bench.fn, number))
    return {"median_s": statistics.median(samples), "min_s": min(samples), "rounds": len(samples)}


def time_calls(fn, number):
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
    if case.family == "conv" and impls.have_plan():
        row["plan"] = impls.conv_plan(case.shape)
    roles = [("fastconv", main_impl), ("torch", torch_impl if torch_available else None),
             ("reference", baseline_impl)]
    benches = {}
    for role, impl in roles:
        if impl is None:
            continue
        try:
            benches[role] = (impl, impls.prepare(case, impl))
        except impls.Unavailable as exc:
            row[f"{role}_unavailable"] = str(exc)
    samples = {role: [] for role in benches}
    for pair in range(settings.pairs):
        for role, (impl, bench) in benches.items():
            if pair > 0 and impl == "reference":
                continue  # the reference is the slow oracle: one block, it decides no ratio that is paired
            samples[role].append(_time_block(bench, impl, settings))
    return _fill_row(row, samples, case.flops(), peak_gflops)


def _time_block(bench, impl, settings):
    """One block of rounds of `bench`: its median seconds per call (a baseline is followed by the settle pause)."""
    rounds = settings.baseline_max_rounds if impl in BASELINES else settings.max_rounds
    timing = measure(bench, settings.budget_s, rounds, settings.min_round_s)
    if impl in BASELINES:
        time.sleep(settings.settle_s)
    return timing["median_s"]


def _paired_ratio(numerators, denominators):
    """(median, min, max) of the ratios of blocks timed side by side, over the blocks both have."""
    ratios = [a / b for a, b in zip(numerators, denominators) if a and b]
    return (statistics.median(ratios), min(ratios), max(ratios)) if ratios else (None, None, None)


def _fill_row(row, samples, flops, peak_gflops):
    """The row's times (median over its blocks) and ratios (median of the paired blocks' ratios)."""
    times = {role: statistics.median(values) for role, values in samples.items() if values}
    fast, ref, torch_s = times.get("fastconv"), times.get("reference"), times.get("torch")
    row["fastconv_s"], row["reference_s"] = fast, ref
    row["speedup"] = ref / fast if fast and ref else None
    if len(samples.get("reference", [])) > 1:  # numpy.matmul: timed beside every block of fastconv
        row["speedup"], *row["speedup_range"] = _paired_ratio(samples["reference"], samples["fastconv"])
    if torch_s is not None:
        row["torch_s"] = torch_s
        row["torch_ratio"], low, high = _paired_ratio(samples["fastconv"], samples["torch"])  # < 1: faster
        if len(samples["torch"]) > 1:
            row["torch_ratio_range"] = [low, high]
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
