"""Cost model of data-parallel training (fastconv.distributed) on N machines: where it stops paying.

    python bench/scaling_model.py [--batch-size 64] [--steps 3] [--latency-us 30]

For each zoo model: parameters and FLOPs per image counted from fastconv.models, the measured
training time of one global batch on one process (1 thread, CPU time, best of --steps), and the
ring-allreduce time per step, 2(N-1)*latency + 2(N-1)/N * parameter bytes / bandwidth, at a few
network bandwidths. With the global batch fixed, a step on N machines takes compute/N + allreduce;
the table gives that step's speedup over one machine, and the N where it is fastest.
"""
import argparse
import time

import numpy as np

import fastconv
from fastconv import layers, models, optim

MODELS = ("lenet5", "lenet5_classic", "keras_cnn", "keras_cnn_30_60", "dense_net", "deep_cnn")
BANDWIDTHS_GBIT = (1, 10, 100)
RANKS = (2, 4, 8, 16, 32)


def forward_flops_per_image(model):
    """Multiply-adds x 2 of the convolutions (connected channel pairs only) and dense layers."""
    flops = 0
    for layer in model.layers:
        if isinstance(layer, layers.Conv2D):
            filters, out_h, out_w = layer.output_shape
            kh, kw = layer.kernel_size
            pairs = layer.connections.sum() if layer.connections is not None else filters * layer.input_shape[0]
            flops += 2 * int(pairs) * kh * kw * out_h * out_w
        elif isinstance(layer, layers.Dense):
            flops += 2 * layer.input_shape[0] * layer.units
    return flops


def step_seconds(model, batch_size, steps):
    """Best CPU time of one training step (forward, backward, SGD update) on a batch of random images."""
    rng = np.random.default_rng(0)
    x = rng.random((batch_size,) + model.input_shape, dtype=np.float32)
    y = rng.integers(0, 10, batch_size)
    model.optimizer = optim.SGD(lr=0.01, momentum=0.9)
    model.train_step(x, y)  # warm-up: buffers, optimizer state
    best = float("inf")
    for _ in range(steps):
        start = time.process_time()
        model.train_step(x, y)
        best = min(best, time.process_time() - start)
    return best


def allreduce_seconds(ranks, parameter_bytes, gbit, latency):
    return 2 * (ranks - 1) * latency + 2 * (ranks - 1) / ranks * parameter_bytes / (gbit * 1e9 / 8)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--latency-us", type=float, default=30.0, help="per-message network latency")
    args = parser.parse_args()
    fastconv.set_num_threads(1)
    latency = args.latency_us * 1e-6
    print(f"global batch {args.batch_size}, 1 thread, float32, latency {args.latency_us:g} us per message")
    for name in MODELS:
        model = models.get(name, seed=0)
        params = model.count_params()
        parameter_bytes = 4 * sum(p.size for p in model.parameters())
        flops = forward_flops_per_image(model)
        compute = step_seconds(model, args.batch_size, args.steps)
        rate = 3 * flops * args.batch_size / compute / 1e9  # training ~ 3 x the forward's FLOPs
        print(f"\n{name}: {params:,} parameters ({parameter_bytes / 1e6:.2f} MB), {flops / 1e6:.2f} MFLOP forward "
              f"per image; one step {1e3 * compute:.1f} ms ({rate:.1f} GFLOP/s training)")
        print("  Gbit/s  " + "  ".join(f"N={n:<2} allreduce ms / speedup" for n in RANKS) + "  best N")
        for gbit in BANDWIDTHS_GBIT:
            cells, best = [], (1, compute)
            for n in RANKS:
                reduce = allreduce_seconds(n, parameter_bytes, gbit, latency)
                step = compute / n + reduce
                best = min(best, (n, step), key=lambda pair: pair[1])
                cells.append(f"{1e3 * reduce:8.2f} / {compute / step:5.2f}x      ")
            print(f"  {gbit:>6}  " + "  ".join(cells) + f"  {best[0]}")


if __name__ == "__main__":
    main()
