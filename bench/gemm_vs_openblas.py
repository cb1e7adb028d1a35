"""fastconv.gemm against numpy.matmul (OpenBLAS) on the squares and the im2col GEMMs of `fastconv bench`.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/gemm_vs_openblas.py [--threads 1 2]

Needs threadpoolctl (to pin OpenBLAS's thread count and to report which kernels it runs). The two
sides alternate in paired rounds: a block of fastconv calls, a block of numpy calls, each block about
20 ms of work. On one thread both are timed in CPU time (time.process_time), which a busy neighbour on
a shared machine barely moves. On more threads they are timed in wall time, and each block is followed
by a pause that lets the library's idle threads stop spinning before the other side's block: OpenBLAS's
spin for about 0.1 s (fastconv.benchmarks.timing.SETTLE_AFTER_BASELINE_S; 1024^3 on 2 threads: 25 ms
per call right after numpy.matmul, 11 ms after the pause), OpenMP's for a few ms (SETTLE_AFTER_OURS_S).
Prints GFLOP/s (median block of each side) and the ratio fastconv / numpy as the median over the
rounds of each round's ratio, with its quartiles: on a virtual machine whose host takes the cores
away now and then, both sides of a round see nearly the same conditions, and a disturbed round moves
the median little.
FASTCONV_SIMD=avx2 (or scalar) measures a lower SIMD level of fastconv.
"""
import argparse
import math
import os
import statistics
import time

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

import fastconv
from fastconv import functional
from fastconv.benchmarks.timing import SETTLE_AFTER_BASELINE_S

# M x N x K: the squares, then the im2col GEMMs (weights x columns of one image) of `fastconv bench`
SHAPES = [
    ("256^3", 256, 256, 256), ("512^3", 512, 512, 512), ("1024^3", 1024, 1024, 1024),
    ("2048^3", 2048, 2048, 2048),
    ("lenet-c1", 6, 784, 25), ("lenet-c3", 16, 100, 150), ("seed000-c2", 50, 121, 225),
    ("seed002-c4", 128, 64, 576), ("vgg-ish", 128, 1024, 576), ("strided", 64, 256, 288),
]


# After a block of fastconv calls on more than one thread: OpenMP's idle threads spin about 4 ms
# (process CPU time during a sleep right after a 512^3 call, 2 threads) and would slow numpy's block.
SETTLE_AFTER_OURS_S = 0.01
# Work in one timed block, in floating-point operations (a 512^3 block: 12 calls, about 20 ms on 2 threads).
BLOCK_FLOPS = 3e9


def block_time(call, clock, number):
    start = clock()
    for _ in range(number):
        call()
    return (clock() - start) / number


def compare(m, n, k, threads, rounds):
    """(fastconv GFLOP/s, numpy GFLOP/s, quartiles of the per-round ratio fastconv / numpy)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    clock = time.process_time if threads == 1 else time.perf_counter
    flops = 2 * m * n * k
    number = max(1, math.ceil(BLOCK_FLOPS / flops))
    fastconv.set_num_threads(threads)
    ours, theirs = [], []
    with threadpool_limits(limits=threads, user_api="blas"):
        sides = ((ours, lambda: functional.gemm(a, b), SETTLE_AFTER_OURS_S),
                 (theirs, lambda: a @ b, SETTLE_AFTER_BASELINE_S))
        for times, call, _ in sides:
            call()   # first-call costs (allocations, OpenBLAS's threads starting)
        for _ in range(rounds):
            for times, call, settle in sides:
                times.append(block_time(call, clock, number))
                if threads > 1:
                    time.sleep(settle)
    ratios = [theirs_s / ours_s for ours_s, theirs_s in zip(ours, theirs)]
    return (flops / statistics.median(ours) / 1e9, flops / statistics.median(theirs) / 1e9,
            statistics.quantiles(ratios, n=4))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--shapes", nargs="+", help="names from the list (default: all)")
    parser.add_argument("--rounds", type=int, default=9, help="paired rounds per shape (default 9, at least 2)")
    args = parser.parse_args()
    if args.rounds < 2:
        parser.error(f"--rounds must be at least 2 (quartiles of the rounds' ratios), got {args.rounds}")
    blas = [lib for lib in threadpool_info() if lib["user_api"] == "blas"]
    print(f"fastconv simd={fastconv.build_info()['simd']} "
          f"(FASTCONV_SIMD={os.environ.get('FASTCONV_SIMD', '')!r}); numpy BLAS: "
          + ", ".join(f"{lib['internal_api']} {lib.get('version')} {lib.get('architecture')}" for lib in blas))
    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        if var in os.environ:
            print(f"WARNING: {var}={os.environ[var]} forces OpenBLAS's kernel choice: not its best baseline")
    print(f"{'shape':<12}{'M x N x K':>18}{'thr':>5}{'fastconv':>10}{'numpy':>10}{'ratio':>8}{'p25-p75':>12}")
    for name, m, n, k in SHAPES:
        if args.shapes and name not in args.shapes:
            continue
        for threads in args.threads:
            ours, theirs, (low, ratio, high) = compare(m, n, k, threads, args.rounds)
            print(f"{name:<12}{f'{m}x{n}x{k}':>18}{threads:>5}{ours:>10.1f}{theirs:>10.1f}{ratio:>8.2f}"
                  f"{f'{low:.2f}-{high:.2f}':>12}", flush=True)


if __name__ == "__main__":
    main()
