"""The forward's "auto" crossover on this machine: the direct kernel (kvec / wvec) against the fused
im2col + GEMM forward, over the number of output channels K, on a few layer shapes. The measurements
behind src_c/conv_plan.h's FC_PLAN_AUTO_MAX_VECTORS_AVX2 and its small-reduction variant.

    python bench/forward_k_sweep.py [--threads N] [--cpu-time]

Prints best-of-5 times (ms, mean of 3 calls), float32, and direct / im2col (< 1: direct is faster).
--cpu-time times in process CPU time instead of wall time: on one thread, on a shared machine, that is
the time the kernel ran whatever else is running.
"""
import argparse
import time
import timeit

import numpy as np

import fastconv

# (N, C, H=W, kernel, padding, stride): LeNet's C3, two VGG-like 3x3 layers, seed000-c2's, seed002-c4's,
# the strided benchmark shape and vgg-ish
LAYERS = [(64, 6, 14, 5, 0, 1), (64, 16, 14, 3, 1, 1), (64, 32, 16, 3, 1, 1), (100, 25, 13, 3, 0, 1),
          (64, 64, 10, 3, 0, 1), (32, 32, 31, 3, 1, 2), (32, 64, 32, 3, 1, 1)]
OUT_CHANNELS = (32, 48, 64, 96, 128)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--cpu-time", action="store_true", help="time.process_time instead of wall time")
    args = parser.parse_args()
    timer = time.process_time if args.cpu_time else time.perf_counter
    if args.threads:
        fastconv.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    print(f"{fastconv.build_info()['simd']}, {fastconv.get_num_threads()} threads, "
          f"{'CPU' if args.cpu_time else 'wall'} time")
    for n, c, side, kernel, pad, stride in LAYERS:
        for k in OUT_CHANNELS:
            x = rng.standard_normal((n, c, side, side)).astype(np.float32)
            w = rng.standard_normal((k, c, kernel, kernel)).astype(np.float32)
            times = []
            for algo in ("direct", "im2col"):
                call = lambda: fastconv.conv2d(x, w, None, stride, pad, algo=algo)  # noqa: E731
                times.append(min(timeit.repeat(call, number=3, repeat=5, timer=timer)) / 3 * 1e3)
            print(f"N{n} C{c} {side}x{side} {kernel}x{kernel} s{stride} K{k}: direct {times[0]:.3f} "
                  f"im2col {times[1]:.3f} ratio {times[0] / times[1]:.2f}")


if __name__ == "__main__":
    main()
