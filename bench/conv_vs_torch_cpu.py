"""fastconv's convolutions against PyTorch's on the shapes of `fastconv bench`, timed in CPU time.

    python bench/conv_vs_torch_cpu.py [--threads 1] [--algos auto im2col direct] [--shapes NAME ...]
                                      [--passes fwd bwd grad_x grad_w]

On one thread, CPU time (time.process_time) is the time the kernel ran whatever else shares the
machine, so this compares the kernels on a busy machine where wall-clock bench rows are noise. The two
sides alternate in blocks; each keeps its best block. Prints ms per call and fastconv / torch for each
pass: the forward, the backward (grad_x, grad_w and grad_b, as `fastconv bench` times it), or grad_x or
grad_w (+ grad_b) alone (torch: aten.convolution_backward with that output mask; fastconv: the binding
with the other gradient left out, so each runs the kernel conv2d_plan names for it). Needs torch
(comparison only).
"""
import argparse
import time

import numpy as np
import torch

import fastconv
from fastconv import _kernels
from fastconv.functional import _conv_geometry, _simd_level

# `fastconv bench`'s shapes: N, C, H, W, K, kernel, stride, padding
SHAPES = {
    "lenet-c1": (64, 1, 28, 28, 6, 5, 1, 2),
    "lenet-c3": (64, 6, 14, 14, 16, 5, 1, 0),
    "seed000-c2": (100, 25, 13, 13, 50, 3, 1, 0),
    "seed002-c4": (64, 64, 10, 10, 128, 3, 1, 0),
    "vgg-ish": (32, 64, 32, 32, 128, 3, 1, 1),
    "strided": (32, 32, 31, 31, 64, 3, 2, 1),
}


def best_block(call, number, blocks=3):
    best = float("inf")
    for _ in range(blocks):
        start = time.process_time()
        for _ in range(number):
            call()
        best = min(best, (time.process_time() - start) / number)
    return best * 1e3


def calls(shape, algo):
    """{pass: (fastconv call, torch call)} on one seeded problem of `shape`."""
    rng = np.random.default_rng(0)
    n, c, h, w, k, r, stride, pad = shape
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    wt = rng.standard_normal((k, c, r, r)).astype(np.float32) * 0.1
    y = fastconv.conv2d(x, wt, None, stride, pad, algo=algo)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    tx, tw, tdy = torch.from_numpy(x), torch.from_numpy(wt), torch.from_numpy(dy)
    geometry, code = _conv_geometry(x.shape, wt.shape, stride, pad), _kernels.ALGOS[algo]
    simd, threads = _simd_level(), fastconv.get_num_threads()
    grad_x, grad_w, grad_b = np.empty_like(x), np.empty_like(wt), np.empty(k, np.float32)

    def ours_grads(want_x, want_w):
        return lambda: _kernels.conv2d_backward(code, geometry, dy, x, wt, grad_x if want_x else None,
                                                grad_w if want_w else None, grad_b if want_w else None,
                                                threads, simd)

    def theirs_grads(want_x, want_w):
        return lambda: torch.ops.aten.convolution_backward(tdy, tx, tw, [k], [stride, stride], [pad, pad],
                                                           [1, 1], False, [0, 0], 1, [want_x, want_w, want_w])

    def torch_fwd():
        with torch.no_grad():
            torch.nn.functional.conv2d(tx, tw, None, stride, pad)

    return {"fwd": (lambda: fastconv.conv2d(x, wt, None, stride, pad, algo=algo), torch_fwd),
            "bwd": (lambda: fastconv.conv2d_backward(dy, x, wt, stride, pad, algo=algo), theirs_grads(True, True)),
            "grad_x": (ours_grads(True, False), theirs_grads(True, False)),
            "grad_w": (ours_grads(False, True), theirs_grads(False, True))}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--algos", nargs="+", default=["auto"])
    parser.add_argument("--shapes", nargs="+", default=list(SHAPES))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--passes", nargs="+", default=["fwd", "bwd"], choices=["fwd", "bwd", "grad_x", "grad_w"])
    args = parser.parse_args()
    fastconv.set_num_threads(args.threads)
    torch.set_num_threads(args.threads)
    print(f"fastconv {fastconv.build_info()['simd']}, torch {torch.__version__}, {args.threads} thread(s), CPU time")
    for name in args.shapes:
        for algo in args.algos:
            pairs = calls(SHAPES[name], algo)
            for case in args.passes:
                ours_call, theirs_call = pairs[case]
                ours_call(), theirs_call()
                start = time.process_time()
                theirs_call()
                number = max(1, int(0.05 / max(time.process_time() - start, 1e-4)))
                ours = theirs = float("inf")
                for _ in range(args.rounds):
                    ours = min(ours, best_block(ours_call, number))
                    theirs = min(theirs, best_block(theirs_call, number))
                print(f"{name:<12} {case:<6} {algo:<7} fastconv {ours:8.3f} ms  torch {theirs:8.3f} ms  "
                      f"ratio {ours / theirs:5.2f}", flush=True)


if __name__ == "__main__":
    main()
