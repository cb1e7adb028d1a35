"""fastconv's GEMM on 1 and 2 threads against numpy.matmul, on square sizes and on the shapes the
convolutions give it: the measurements behind gemm.c's rule for how the team splits C.

    python bench/gemm_threads.py

Prints GFLOP/s (best of 7), float32, for fastconv on 1 thread, on 2 threads, and numpy.matmul (its
BLAS on its own thread count).
"""
import timeit

import numpy as np

import fastconv
from fastconv import functional

# M x N x K: squares; the im2col GEMMs of seed002-c4 (one image), strided, LeNet's C3 and a chunk of
# vgg-ish; LeNet's first dense layer and its weight gradient
SHAPES = [(256, 256, 256), (512, 512, 512), (1024, 1024, 1024), (128, 64, 576), (64, 256, 288),
          (16, 100, 150), (128, 1024, 576), (64, 120, 400), (400, 120, 64)]


def gflops(call, m, n, k):
    number = max(3, int(2e8 / (m * n * k)))
    return 2 * m * n * k / (min(timeit.repeat(call, number=number, repeat=7)) / number) / 1e9


def main():
    rng = np.random.default_rng(0)
    print(f"{fastconv.build_info()['simd']}, GFLOP/s: fastconv 1 thread / 2 threads / numpy")
    for m, n, k in SHAPES:
        a = rng.standard_normal((m, k)).astype(np.float32)
        b = rng.standard_normal((k, n)).astype(np.float32)
        row = []
        for threads in (1, 2):
            fastconv.set_num_threads(threads)
            row.append(gflops(lambda: functional.gemm(a, b), m, n, k))  # noqa: B023
        row.append(gflops(lambda: a @ b, m, n, k))  # noqa: B023
        print(f"{m}x{n}x{k}: " + " / ".join(f"{value:6.1f}" for value in row))


if __name__ == "__main__":
    main()
