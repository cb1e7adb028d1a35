"""The forward and each convolution gradient alone, per algorithm: the measurements behind functional.py's
"auto" rules (grad_x and grad_w are separate kernels, and the faster algorithm differs between them).

    python bench/conv_parts.py [shape ...] [--threads N]

Prints, for each benchmark shape, the best-of-7 time (ms, mean of 3 calls) of the forward (fw), grad_x,
grad_w and grad_b with the direct kernels (D) and with im2col + GEMM (I), float32, at the best SIMD level.
"""
import argparse
import timeit

import numpy as np

import fastconv
from fastconv import _kernels, functional
from fastconv.benchmarks.cases import CONV_SHAPES


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("shapes", nargs="*", help="names from fastconv.benchmarks.cases.CONV_SHAPES (default: all)")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        fastconv.set_num_threads(args.threads)
    threads, simd = fastconv.get_num_threads(), functional._simd_level()
    rng = np.random.default_rng(0)
    for name in args.shapes or list(CONV_SHAPES):
        shape = CONV_SHAPES[name]
        n, c, h, w, k, r, stride, pad = (shape.n, shape.c, shape.h, shape.w, shape.k, shape.kernel,
                                         shape.stride, shape.pad)
        x = rng.standard_normal((n, c, h, w)).astype(np.float32)
        weight = rng.standard_normal((k, c, r, r)).astype(np.float32)
        geometry = functional._conv_geometry(x.shape, weight.shape, stride, pad)
        grad_y = rng.standard_normal((n, k, geometry[11], geometry[12])).astype(np.float32)
        outputs = {"gx": (np.empty_like(x), None, None), "gw": (None, np.empty_like(weight), None),
                   "gb": (None, None, np.empty(k, np.float32))}
        y = np.empty_like(grad_y)
        row = [f"{name:11s}"]
        for direct in (True, False):
            forward = lambda: _kernels.conv2d_forward(direct, geometry, x, weight, None, y, threads, simd)  # noqa
            row.append(f"{'D' if direct else 'I'}fw {min(timeit.repeat(forward, number=3, repeat=7)) / 3 * 1e3:7.3f}")
            for label, grads in outputs.items():
                call = lambda: _kernels.conv2d_backward(direct, geometry, grad_y, x, weight, *grads,  # noqa
                                                        threads, simd)
                seconds = min(timeit.repeat(call, number=3, repeat=7)) / 3
                row.append(f"{'D' if direct else 'I'}{label} {seconds * 1e3:7.3f}")
        print("  ".join(row), f"({threads} threads)")


if __name__ == "__main__":
    main()
