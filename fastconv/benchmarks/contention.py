"""Speed under load: LeNet-5 `fit` images/s on an idle machine and beside one CPU-bound process.

Laptops, CI runners and workers of a cluster share their cores, so the rate beside a busy neighbour
is the one most users see. `fastconv bench --contention` alternates idle and loaded epochs (the
neighbour is started before each loaded epoch and stopped after it, so a drift in the machine's own
load hits both sides alike) and reports the medians, their ratio, and PyTorch's idle rate.
"""
import contextlib
import os
import statistics
import subprocess
import sys
import time

from . import impls, machine, timing
from .cases import Case, LeNetRun

RUN = LeNetRun(2560, 64)
ROUNDS = {"quick": 3, "full": 7}
# Targets of the project: keep at least this share of the idle rate beside one busy process ...
LOADED_OVER_IDLE_TARGET = 0.55
# ... and train at least this many times as fast as PyTorch's plain loop on an idle machine.
IDLE_OVER_TORCH_TARGET = 2.0
# Time for the neighbour's interpreter to start and reach its loop before an epoch is timed.
NEIGHBOUR_START_S = 0.2
# Pause after stopping it, longer than the 100 ms the adaptive thread count looks back over.
NEIGHBOUR_STOP_S = 0.3
# A 1-minute load average above this many runnable processes per core means "idle" was not idle.
BUSY_LOAD_PER_CORE = 0.5
_SPIN = "while True:\n    pass\n"


@contextlib.contextmanager
def busy_neighbour():
    """One CPU-bound process (a Python spin loop) beside this one, killed on exit."""
    process = subprocess.Popen([sys.executable, "-c", _SPIN], stdin=subprocess.DEVNULL)
    try:
        time.sleep(NEIGHBOUR_START_S)
        if process.poll() is not None:
            raise RuntimeError(f"the busy neighbour exited at once (code {process.returncode})")
        yield process
    finally:
        process.kill()
        process.wait()
        time.sleep(NEIGHBOUR_STOP_S)


def _epoch_seconds(bench, loaded):
    with busy_neighbour() if loaded else contextlib.nullcontext():
        return timing.time_calls(bench.fn, 1)


def measure(rounds, run=None, with_torch=True):
    """The contention result (a dict): idle and loaded images/s (medians over `rounds` alternating
    epochs of `run`, default RUN), their ratio, and PyTorch's idle images/s when with_torch and torch
    is importable."""
    run = run or RUN
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    case = Case("lenet5-epoch", f"{run.images}img", run)
    bench = impls.prepare(case, "model")
    bench.warmup()
    seconds = {"idle": [], "loaded": []}
    for _ in range(rounds):
        for state in seconds:
            seconds[state].append(_epoch_seconds(bench, state == "loaded"))
    rate = {state: run.images / statistics.median(values) for state, values in seconds.items()}
    result = {"case": case.name, "dims": case.describe(), "rounds": rounds, "neighbours": 1,
              "idle_images_per_s": rate["idle"], "loaded_images_per_s": rate["loaded"],
              "loaded_over_idle": rate["loaded"] / rate["idle"],
              "loaded_over_idle_target": LOADED_OVER_IDLE_TARGET,
              "idle_s": seconds["idle"], "loaded_s": seconds["loaded"], "loadavg_1min_before": load_before,
              "cores": machine.usable_cores()}
    if with_torch and impls.load_torch() is not None:
        torch_bench = impls.prepare(case, "torch")
        torch_bench.warmup()
        torch_s = statistics.median(timing.time_calls(torch_bench.fn, 1) for _ in range(rounds))
        result.update(torch_idle_images_per_s=run.images / torch_s,
                      idle_over_torch=rate["idle"] * torch_s / run.images,
                      idle_over_torch_target=IDLE_OVER_TORCH_TARGET)
    return result


def format_result(result):
    """The contention report as text lines."""
    verdict = lambda ok: "meets" if ok else "MISSES"  # noqa: E731
    ratio = result["loaded_over_idle"]
    lines = [f"contention: LeNet-5 fit, {result['dims']}, median of {result['rounds']} alternating rounds",
             f"  idle                 {result['idle_images_per_s']:>9,.0f} img/s",
             f"  beside 1 busy process{result['loaded_images_per_s']:>9,.0f} img/s  loaded / idle = {ratio:.2f}"
             f" ({verdict(ratio >= LOADED_OVER_IDLE_TARGET)} the target >= {LOADED_OVER_IDLE_TARGET:.2f})"]
    if "torch_idle_images_per_s" in result:
        speedup = result["idle_over_torch"]
        lines.append(f"  torch idle           {result['torch_idle_images_per_s']:>9,.0f} img/s  fastconv / torch = "
                     f"{speedup:.2f}x ({verdict(speedup >= IDLE_OVER_TORCH_TARGET)} the target >= "
                     f"{IDLE_OVER_TORCH_TARGET:.1f}x)")
    else:
        lines.append("  torch idle           not measured (PyTorch is not importable)")
    load, cores = result["loadavg_1min_before"], result["cores"]
    if load is not None and load > BUSY_LOAD_PER_CORE * cores:
        lines.append(f"WARNING: the machine was already busy (1-minute load average {load:.1f} on {cores} cores): "
                     f"the idle rate is not an idle machine's")
    return lines
