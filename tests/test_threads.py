"""Threads: OpenMP thread count never changes a result (bit for bit), concurrent calls from
several Python threads are safe, adaptive threading gives way to a busy neighbour, and the thread /
build-info accessors behave."""

import concurrent.futures
import os
import subprocess
import sys
import time

import numpy as np
import pytest

import fastconv as fc
from fastconv import functional

ALGOS = ("direct", "im2col", "auto")
DTYPES = (np.float64, np.float32)


@pytest.fixture
def restore_threads():
    """Fixed thread counts for the test (adaptive threading off), restored after it."""
    saved, adaptive = fc.get_num_threads(), fc.get_adaptive_threads()
    fc.set_adaptive_threads(False)
    yield
    fc.set_num_threads(saved)
    fc.set_adaptive_threads(adaptive)


def bitwise_equal(a, b):
    """Same dtype, shape and bytes (so NaN payloads and the sign of zero count too)."""
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def kernel_calls(dtype, algo, batch=4, seed=0):
    """name -> zero-argument call of every kernel on inputs big enough to be split across threads."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, 6, 20, 18)).astype(dtype)
    weight = rng.standard_normal((8, 6, 3, 3)).astype(dtype)
    bias = rng.standard_normal(8).astype(dtype)
    grad_conv = rng.standard_normal((batch, 8, 10, 9)).astype(dtype)   # conv, stride 2, padding 1
    _, indices = fc.max_pool2d(x, 3, 2, 1)
    grad_pool = rng.standard_normal(indices.shape).astype(dtype)      # 3x3 pool, stride 2, padding 1
    _, indices_2x2 = fc.max_pool2d(x, 2)
    grad_2x2 = rng.standard_normal(indices_2x2.shape).astype(dtype)
    return {
        "conv2d": lambda: fc.conv2d(x, weight, bias, 2, 1, algo=algo),
        "conv2d-stride1": lambda: fc.conv2d(x, weight, None, 1, (1, 0), algo=algo),
        "conv2d_backward": lambda: fc.conv2d_backward(grad_conv, x, weight, 2, 1, algo=algo),
        "max_pool2d": lambda: fc.max_pool2d(x, 3, 2, 1),
        "max_pool2d-2x2": lambda: fc.max_pool2d(x, 2),
        "max_pool2d_backward": lambda: fc.max_pool2d_backward(grad_pool, indices, x.shape),
        "max_pool2d_backward-2x2": lambda: fc.max_pool2d_backward(grad_2x2, indices_2x2, x.shape),
        "avg_pool2d": lambda: fc.avg_pool2d(x, 3, 2, 1),
        "avg_pool2d_backward": lambda: fc.avg_pool2d_backward(grad_pool, x.shape, 3, 2, 1),
    }


def as_tuple(result):
    return result if isinstance(result, tuple) else (result,)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("algo", ALGOS)
def test_results_do_not_depend_on_the_thread_count(algo, dtype, restore_threads):
    calls = kernel_calls(dtype, algo, batch=9)
    results = {}
    for threads in (1, 2):
        fc.set_num_threads(threads)
        results[threads] = {name: as_tuple(call()) for name, call in calls.items()}
    for name in calls:
        for part, (one, two) in enumerate(zip(results[1][name], results[2][name])):
            assert bitwise_equal(one, two), f"{name} output {part} algo={algo} dtype={np.dtype(dtype).name}"


def test_concurrent_calls_from_python_threads(restore_threads):
    # Expected results single-threaded; then 4 Python threads, each running OpenMP kernels with 2
    # threads, call every kernel/dtype/algo mix many times in an interleaved order.
    fc.set_num_threads(1)
    calls = {}
    for dtype in DTYPES:
        for algo in ALGOS:
            for name, call in kernel_calls(dtype, algo, batch=2, seed=1).items():
                calls[(name, np.dtype(dtype).name, algo)] = call
    expected = {key: as_tuple(call()) for key, call in calls.items()}
    keys = list(calls) * 4
    np.random.default_rng(2).shuffle(keys)

    fc.set_num_threads(2)

    def run(key):
        return key, as_tuple(calls[key]())

    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        outcomes = list(pool.map(run, keys))
    assert len(outcomes) == len(keys)
    for key, result in outcomes:
        assert all(bitwise_equal(got, want) for got, want in zip(result, expected[key])), key


def test_num_threads_round_trip(restore_threads):
    openmp = fc.build_info()["openmp"]
    for threads in (1, 2, 3, np.int64(2)):
        fc.set_num_threads(threads)
        assert fc.get_num_threads() == (int(threads) if openmp else 1)
        assert isinstance(fc.get_num_threads(), int)
        assert fc.build_info()["num_threads"] == fc.get_num_threads()


def test_build_info_keys_and_types(monkeypatch):
    monkeypatch.delenv("FASTCONV_SIMD", raising=False)
    info = fc.build_info()
    expected_types = {"version": str, "openmp": bool, "simd": str, "simd_available": list, "compiler": str,
                      "flags": str, "num_threads": int}
    for key, kind in expected_types.items():
        assert isinstance(info.get(key), kind), f"build_info()[{key!r}] = {info.get(key)!r}"
    assert info["version"] == fc.__version__
    assert info["num_threads"] == fc.get_num_threads() >= 1
    levels = ("scalar", "avx2", "avx512")
    assert info["simd_available"][0] == "scalar"
    assert set(info["simd_available"]) <= set(levels)
    # Unset FASTCONV_SIMD means the best level available.
    assert info["simd"] == max(info["simd_available"], key=levels.index)


@pytest.mark.parametrize("level", ["scalar", "avx2", "avx512"])
def test_build_info_reports_the_requested_simd_level(level, monkeypatch):
    available = fc.build_info()["simd_available"]
    monkeypatch.setenv("FASTCONV_SIMD", level)
    # A level the CPU lacks is capped to the best it has (fastconv.h: fc_simd_resolve).
    assert fc.build_info()["simd"] == (level if level in available else available[-1])


def test_a_serial_build_says_so_when_threads_are_asked_for(restore_threads, monkeypatch):
    # pip shows the build's own warning only with -v: the run-time warning is what a user sees.
    monkeypatch.setattr(functional._kernels, "have_openmp", lambda: False)
    with pytest.warns(RuntimeWarning, match="without OpenMP"):
        fc.set_num_threads(2)
    assert fc.get_num_threads() == 1


# ---- adaptive threading --------------------------------------------------------------------------

@pytest.mark.parametrize("cpus, others_busy, expected", [
    (2, 0.0, 2), (2, 0.4, 2), (2, 0.67, 1), (2, 1.0, 1), (2, 3.5, 1), (2, -0.2, 2),
    (8, 2.2, 6), (8, 0.0, 8), (1, 0.0, 1),
])
def test_free_core_rule(cpus, others_busy, expected):
    from fastconv import _kernels

    assert _kernels.threads_free_cores(cpus, others_busy) == expected


def test_adaptive_threads_switch_and_argument_check():
    from fastconv import _kernels

    saved = fc.get_adaptive_threads()
    try:
        fc.set_adaptive_threads(False)
        assert fc.get_adaptive_threads() is False and fc.build_info()["adaptive_threads"] is False
        assert _kernels.threads_for_call(7) == 7
        fc.set_adaptive_threads(True)
        assert fc.get_adaptive_threads() is True
        assert 1 <= _kernels.threads_for_call(2) <= 2
        assert _kernels.threads_for_call(1) == 1
        with pytest.raises(TypeError, match="enabled"):
            fc.set_adaptive_threads("yes")
    finally:
        fc.set_adaptive_threads(saved)


def seconds_until_threads(count, limit_s=2.0):
    """Seconds until a 2-thread request gets `count` threads, asking every 2 ms (None: not within limit_s)."""
    from fastconv import _kernels

    start = time.monotonic()
    while time.monotonic() - start < limit_s:
        if _kernels.threads_for_call(2) == count:
            return time.monotonic() - start
        time.sleep(0.002)
    return None


@pytest.mark.skipif(not sys.platform.startswith("linux") or len(os.sched_getaffinity(0)) != 2,
                    reason="the check is for a Linux machine with exactly 2 usable cores")
def test_a_busy_neighbour_leaves_one_thread_on_two_cores_within_a_quarter_second():
    """One CPU-bound process beside us takes a whole core: calls get one thread, not two, a quarter
    second after it starts at the latest, and two again as soon after it stops (threads.c samples a
    100 ms window every 25 ms)."""
    from fastconv import _kernels

    saved = fc.get_adaptive_threads()
    fc.set_adaptive_threads(True)           # starts a fresh window
    _kernels.threads_for_call(2)
    time.sleep(0.15)
    if seconds_until_threads(2) is None:
        fc.set_adaptive_threads(saved)
        pytest.skip("another process keeps a core busy already")
    busy = subprocess.Popen([sys.executable, "-c", "print('spinning', flush=True)\nwhile True: pass"],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert busy.stdout.readline() == "spinning\n"
        took = seconds_until_threads(1)
        assert took is not None and took < 0.25, f"one thread after {took} s"
    finally:
        busy.kill()
        busy.wait()
    try:
        took = seconds_until_threads(2)
        assert took is not None and took < 0.25, f"two threads again after {took} s"
    finally:
        fc.set_adaptive_threads(saved)
