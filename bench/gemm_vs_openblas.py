"""fastconv.gemm against numpy.matmul (OpenBLAS) on the squares and the im2col GEMMs of `fastconv bench`.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/gemm_vs_openblas.py [--threads 1 2]

Needs threadpoolctl (to pin OpenBLAS's thread count and to report which kernels it runs). On one
thread both sides are timed in CPU time (time.process_time), which a busy neighbour on a shared
machine barely moves; on more threads in wall time. The two sides alternate in short blocks and each
keeps its best block, so a burst of load hits both; after numpy's blocks a pause lets OpenBLAS's
threads stop spinning (fastconv.benchmarks.timing.SETTLE_AFTER_BASELINE_S), else they take the cores
from fastconv's next block (1024^3 on 2 threads: 25 ms per call right after numpy.matmul, 11 ms after
the pause). Prints GFLOP/s and fastconv / numpy.
FASTCONV_SIMD=avx2 (or scalar) measures a lower SIMD level of fastconv.
"""
import argparse
import os
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


def best_block_time(call, clock, number, blocks):
    best = float("inf")
    for _ in range(blocks):
        start = clock()
        for _ in range(number):
            call()
        best = min(best, (clock() - start) / number)
    return best


def compare(m, n, k, threads, rounds=5):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    clock = time.process_time if threads == 1 else time.perf_counter
    number = max(1, int(5e7 / (m * n * k)))
    fastconv.set_num_threads(threads)
    ours, theirs = float("inf"), float("inf")
    with threadpool_limits(limits=threads, user_api="blas"):
        for _ in range(rounds):
            ours = min(ours, best_block_time(lambda: functional.gemm(a, b), clock, number, 3))
            theirs = min(theirs, best_block_time(lambda: a @ b, clock, number, 3))
            if threads > 1:
                time.sleep(SETTLE_AFTER_BASELINE_S)
    flops = 2 * m * n * k
    return flops / ours / 1e9, flops / theirs / 1e9


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--shapes", nargs="+", help="names from the list (default: all)")
    args = parser.parse_args()
    blas = [lib for lib in threadpool_info() if lib["user_api"] == "blas"]
    print(f"fastconv simd={fastconv.build_info()['simd']} "
          f"(FASTCONV_SIMD={os.environ.get('FASTCONV_SIMD', '')!r}); numpy BLAS: "
          + ", ".join(f"{lib['internal_api']} {lib.get('version')} {lib.get('architecture')}" for lib in blas))
    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        if var in os.environ:
            print(f"WARNING: {var}={os.environ[var]} forces OpenBLAS's kernel choice: not its best baseline")
    print(f"{'shape':<12}{'M x N x K':>18}{'thr':>5}{'fastconv':>10}{'numpy':>10}{'ratio':>8}")
    for name, m, n, k in SHAPES:
        if args.shapes and name not in args.shapes:
            continue
        for threads in args.threads:
            ours, theirs = compare(m, n, k, threads)
            print(f"{name:<12}{f'{m}x{n}x{k}':>18}{threads:>5}{ours:>10.1f}{theirs:>10.1f}{ours / theirs:>8.2f}",
                  flush=True)


if __name__ == "__main__":
    main()
